//! `batten.updates`: automatic updates on (the default) or off, security
//! updates only or every update, and the time of day the tool may reboot.
//!
//! The reboot time reaches apt's and dnf's configuration files, so it is
//! read by a strict grammar (`HH:MM`, nothing else) into numbers, and the
//! files get the numbers written back, never the user's text.

use super::checker::Checker;
use super::values::{boolean, each_entry};
use crate::input::model::{RebootTime, UpdatePackages, Updates};
use crate::input::yaml::{Node, Value};

const UPDATES_KEYS: &[&str] = &["enabled", "packages", "reboot"];

const OFF: &str =
    "automatic updates are off: security fixes are not installed until someone does it by hand";

/// `batten.updates`: `false`, `true`, or a mapping of the keys above.
pub(super) fn updates(c: &mut Checker, node: &Node, path: &str) -> Updates {
    let mut u = Updates::default();
    if !matches!(node.value, Value::Map(_)) {
        if let Some(on) = boolean(c, node, path) {
            u.enabled = on;
            if !on {
                c.warn(node.pos, path, OFF);
            }
        }
        return u;
    }
    each_entry(c, node, path, UPDATES_KEYS, |c, key, v, p| match key {
        "enabled" => {
            u.enabled = boolean(c, v, &p).unwrap_or(true);
            if !u.enabled {
                c.warn(v.pos, &p, OFF);
            }
        }
        "packages" => {
            u.packages = match &v.value {
                Value::Str(s) if s == "security" => UpdatePackages::Security,
                Value::Str(s) if s == "all" => UpdatePackages::All,
                _ => {
                    c.error(
                        v.pos,
                        &p,
                        format!(
                            "{} is not an update set; use security (the default) or all",
                            shown(v)
                        ),
                    );
                    UpdatePackages::Security
                }
            }
        }
        "reboot" => u.reboot = reboot(c, v, &p),
        _ => {} // each_entry hands over listed keys only
    });
    u
}

/// `reboot`: `"HH:MM"`, or false for never. A number is refused, never
/// turned into a time by guessing (YAML 1.1 readers such as cloud-init's
/// read an unquoted `03:30` as 210, base 60; batten's reader keeps it text).
fn reboot(c: &mut Checker, node: &Node, path: &str) -> Option<RebootTime> {
    match &node.value {
        Value::Bool(false) => None,
        Value::Bool(true) => {
            c.error(
                node.pos,
                path,
                "true names no time; write reboot: \"03:30\" (24-hour HH:MM), or false for never",
            );
            None
        }
        Value::Str(s) => reboot_time(s).map_err(|e| c.error(node.pos, path, e)).ok(),
        Value::Int(_) => {
            c.error(
                node.pos,
                path,
                format!(
                    "{} is a number, not a time; write reboot: \"03:30\" (24-hour HH:MM, quoted)",
                    shown(node)
                ),
            );
            None
        }
        _ => {
            c.error(
                node.pos,
                path,
                format!(
                    "{} is not a time; write reboot: \"03:30\" (24-hour HH:MM), or false for never",
                    shown(node)
                ),
            );
            None
        }
    }
}

/// A 24-hour `HH:MM`: exactly two digits, a colon, two digits.
pub(crate) fn reboot_time(s: &str) -> Result<RebootTime, String> {
    let bad = || format!("{s:?} is not a time; write 24-hour HH:MM, like \"03:30\"");
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
        return Err(bad());
    }
    let (hour, minute) = (
        (b[0] - b'0') * 10 + (b[1] - b'0'),
        (b[3] - b'0') * 10 + (b[4] - b'0'),
    );
    if hour > 23 || minute > 59 {
        return Err(bad());
    }
    Ok(RebootTime { hour, minute })
}

/// A value as the user wrote it, for messages.
fn shown(node: &Node) -> String {
    node.scalar_text()
        .map(|t| format!("{t:?}"))
        .unwrap_or_else(|| node.value.kind().to_string())
}

#[cfg(test)]
mod tests {
    use super::super::tests::run;
    use super::*;

    #[test]
    fn defaults_and_forms() {
        let (ud, e, w) = run("ssh_pwauth: no\n");
        assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
        assert_eq!(ud.unwrap().batten.updates, Updates::default());
        let (ud, e, w) = run("batten:\n  updates: false\n");
        assert!(e.is_empty(), "{e:?}");
        assert!(!ud.unwrap().batten.updates.enabled);
        assert!(
            w[0].contains("batten.updates: automatic updates are off"),
            "{w:?}"
        );
        let (ud, e, w) = run("batten:\n  updates: {enabled: off}\n");
        assert!(e.is_empty(), "{e:?}");
        assert!(!ud.unwrap().batten.updates.enabled);
        assert!(w[0].contains("batten.updates.enabled"), "{w:?}");
        let (ud, e, _) = run("batten:\n  updates: {packages: all, reboot: \"04:05\"}\n");
        assert!(e.is_empty(), "{e:?}");
        let u = ud.unwrap().batten.updates;
        assert_eq!(u.packages, UpdatePackages::All);
        assert_eq!(u.reboot.unwrap().to_string(), "04:05");
        let (ud, e, _) = run("batten:\n  updates: {reboot: 03:30}\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            ud.unwrap().batten.updates.reboot.unwrap().to_string(),
            "03:30"
        );
        let (ud, e, _) = run("batten:\n  updates: {reboot: false}\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(ud.unwrap().batten.updates.reboot, None);
    }

    #[test]
    fn bad_values_and_unknown_keys_are_errors() {
        for (text, want) in [
            (
                "batten:\n  updates: {packages: some}\n",
                "ud.yaml:2:23: batten.updates.packages: \"some\" is not an update set",
            ),
            (
                "batten:\n  updates: {reboot: 330}\n",
                "ud.yaml:2:21: batten.updates.reboot: \"330\" is a number, not a time",
            ),
            (
                "batten:\n  updates: {reboot: \"3:30\"}\n",
                "batten.updates.reboot: \"3:30\" is not a time",
            ),
            (
                "batten:\n  updates: {reboot: \"24:00\"}\n",
                "\"24:00\" is not a time",
            ),
            (
                "batten:\n  updates: {reboot: \"03:30\\n\"}\n",
                "is not a time",
            ),
            ("batten:\n  updates: {reboot: true}\n", "true names no time"),
            (
                "batten:\n  updates: {packges: all}\n",
                "batten.updates.packges: unknown key \"packges\"; did you mean \"packages\"?",
            ),
            (
                "batten:\n  updates: maybe\n",
                "batten.updates: expected true or false",
            ),
            (
                "batten:\n  updates: {enabled: 2}\n",
                "batten.updates.enabled: expected true or false",
            ),
        ] {
            let (ud, e, _) = run(text);
            assert!(ud.is_none(), "{text}");
            assert!(e.iter().any(|x| x.contains(want)), "{text}: {e:?}");
        }
    }

    #[test]
    fn the_time_grammar() {
        assert_eq!(reboot_time("00:00"), Ok(RebootTime { hour: 0, minute: 0 }));
        assert_eq!(reboot_time("23:59").unwrap().to_string(), "23:59");
        for bad in [
            "", "3:30", "03:3", "03:60", "24:00", "03-30", "03:30;", " 03:30", "０3:30", "now",
        ] {
            assert!(reboot_time(bad).is_err(), "{bad:?}");
        }
    }
}
