//! dnf-automatic's configuration: batten's keys set in the `[commands]`
//! section of `/etc/dnf/automatic.conf`, every other line of the image's
//! file kept as it is.
//!
//! dnf 4's dnf-automatic reads only that file (its package ships it whole);
//! dnf5's plugin reads its defaults from
//! `/usr/share/dnf5/dnf5-plugins/automatic.conf` and then that file's
//! overrides. `reboot` and `reboot_command` (dnf5, and the dnf 4 releases
//! that document them) are written only when the user-data asks for a
//! reboot time, so an older dnf-automatic never meets them otherwise.

use crate::input::model::{UpdatePackages, Updates};

/// The file both dnf-automatic and dnf5's plugin read.
pub const CONFIG: &str = "/etc/dnf/automatic.conf";

/// The `[commands]` keys batten sets, with their values.
pub fn settings(u: &Updates) -> Vec<(&'static str, String)> {
    let mut keys = vec![
        ("apply_updates", "yes".to_string()),
        (
            "upgrade_type",
            match u.packages {
                UpdatePackages::Security => "security",
                UpdatePackages::All => "default",
            }
            .to_string(),
        ),
    ];
    if let Some(t) = u.reboot {
        keys.push(("reboot", "when-needed".to_string()));
        keys.push((
            "reboot_command",
            format!("\"shutdown -r {t} 'Rebooting after applying package updates'\""),
        ));
    }
    keys
}

/// The section a line opens, if it is a section header.
fn section(line: &str) -> Option<&str> {
    line.trim()
        .strip_prefix('[')?
        .strip_suffix(']')
        .map(str::trim)
}

/// The key a line sets, if it sets one (`key = value`, not a comment).
fn key(line: &str) -> Option<&str> {
    let l = line.trim();
    if l.starts_with('#') || l.starts_with(';') {
        return None;
    }
    Some(l.split_once('=')?.0.trim())
}

/// `text` (the image's file, or empty) with `settings` set in
/// `[commands]`: a key's line replaced where it is, missing keys added at
/// the end of the section, the section added when there is none.
pub fn edit(text: &str, settings: &[(&str, String)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut in_commands = false;
    let mut seen = Vec::new();
    let mut end_of_commands = None;
    for (i, line) in lines.iter_mut().enumerate() {
        if let Some(name) = section(line) {
            in_commands = name == "commands";
            continue;
        }
        if !in_commands {
            continue;
        }
        end_of_commands = Some(i + 1);
        if let Some((k, v)) = key(line).and_then(|k| settings.iter().find(|(s, _)| *s == k)) {
            *line = format!("{k} = {v}");
            seen.push(*k);
        }
    }
    let missing: Vec<String> = settings
        .iter()
        .filter(|(k, _)| !seen.contains(k))
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    let header = lines.iter().position(|l| section(l) == Some("commands"));
    match (header, end_of_commands) {
        (Some(h), end) => {
            // After the section's last line that is not blank.
            let mut at = end.unwrap_or(h + 1);
            while at > h + 1 && lines[at - 1].trim().is_empty() {
                at -= 1;
            }
            lines.splice(at..at, missing);
        }
        (None, _) => {
            if lines.last().is_some_and(|l| !l.trim().is_empty()) {
                lines.push(String::new());
            }
            lines.push("[commands]".to_string());
            lines.extend(missing);
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The value `text` gives `key` in `[commands]`, the last one winning.
pub fn value(text: &str, wanted: &str) -> Option<String> {
    let mut in_commands = false;
    let mut found = None;
    for line in text.lines() {
        if let Some(name) = section(line) {
            in_commands = name == "commands";
        } else if in_commands && key(line) == Some(wanted) {
            found = line.split_once('=').map(|(_, v)| v.trim().to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::model::RebootTime;

    /// The start of dnf 4's shipped file, as Rocky 9 has it.
    const SHIPPED: &str = "[commands]\n#  What kind of upgrade to perform:\n# default                            = all available upgrades\n# security                           = only the security upgrades\nupgrade_type = default\nrandom_sleep = 0\n\n# Whether updates should be applied when they are available, by\n# dnf-automatic.timer. notifyonly.timer, download.timer and\n# install.timer override this setting.\napply_updates = no\n\n\n[emitters]\nemit_via = stdio\n\n[base]\ndebuglevel = 1\n";

    #[test]
    fn keys_are_set_in_place_and_the_rest_kept() {
        let out = edit(SHIPPED, &settings(&Updates::default()));
        assert_eq!(
            out,
            SHIPPED
                .replace("upgrade_type = default", "upgrade_type = security")
                .replace("apply_updates = no", "apply_updates = yes")
        );
        assert_eq!(
            edit(&out, &settings(&Updates::default())),
            out,
            "a second run changes nothing"
        );
        assert_eq!(value(&out, "upgrade_type").as_deref(), Some("security"));
        assert_eq!(value(&out, "debuglevel"), None, "only [commands] counts");
    }

    #[test]
    fn missing_keys_end_the_section_and_a_missing_section_is_added() {
        let u = Updates {
            packages: UpdatePackages::All,
            reboot: Some(RebootTime { hour: 4, minute: 0 }),
            ..Updates::default()
        };
        let out = edit(SHIPPED, &settings(&u));
        assert!(
            out.contains("apply_updates = yes\nreboot = when-needed\nreboot_command = \"shutdown -r 04:00 'Rebooting after applying package updates'\"\n\n\n[emitters]\n"),
            "{out}"
        );
        assert_eq!(
            edit("", &settings(&Updates::default())),
            "[commands]\napply_updates = yes\nupgrade_type = security\n"
        );
        assert_eq!(
            edit(
                "[emitters]\nemit_via = motd\n",
                &settings(&Updates::default())
            ),
            "[emitters]\nemit_via = motd\n\n[commands]\napply_updates = yes\nupgrade_type = security\n"
        );
    }
}
