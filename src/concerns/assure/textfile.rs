//! The drift check's figures for Prometheus' node_exporter textfile
//! collector: one file, written whole and renamed into place (the
//! collector never reads half a file), no timestamps on samples, names
//! and units by Prometheus' conventions, and few series: one label value
//! per kind of check, never one per socket, site or user.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::concerns::report::{Check, Status};
use crate::host::root::{Owner, Root, RootError};

/// The file batten writes there.
pub const FILE: &str = "batten.prom";

/// The figures of one drift check.
pub struct Figures<'a> {
    /// Every check of the run.
    pub checks: &'a [Check],
    /// The ids of the items that drifted or are newly unsafe (their count
    /// is `batten_drift_items`): `batten_check_drifted` says which kinds of
    /// check they are (a warning, such as a new public listener, never
    /// makes `batten_check_ok` 0).
    pub drifted: &'a [&'a str],
    /// When the run was, in seconds since the epoch.
    pub at: u64,
    /// The sealed instance, when there is one.
    pub instance_id: Option<&'a str>,
    /// Accounts whose default password batten locked.
    pub default_passwords_locked: usize,
}

/// The checks of a proxy site, after its name in the id.
const PROXY_CHECKS: &[&str] = &["tls", "http", "https", "login", "certificate", "redirect"];

/// The kind of check an id belongs to, as a label value: the parts of the
/// id that name a user, a site, a key or a socket are dropped, so the
/// series stay few (`sshd.pubkey.admin` → `sshd_pubkey`,
/// `proxy.batten-80.https` → `proxy_https`, `sockets.tcp.0.0.0.0:22` →
/// `sockets`).
pub fn kind_of(id: &str) -> String {
    let parts: Vec<&str> = id.split('.').collect();
    let kept: Vec<&str> = match parts.as_slice() {
        ["sockets", ..] => vec!["sockets"],
        ["keys" | "hostkeys", ..] => vec![parts[0]],
        // Site names hold dots: the check is the last part, if it is one.
        ["proxy", "config"] => vec!["proxy", "config"],
        ["proxy", .., last] if PROXY_CHECKS.contains(last) => vec!["proxy", last],
        ["proxy", ..] => vec!["proxy", "site"],
        ["sshd", "crypto", keyword, ..] => vec!["sshd", "crypto", keyword],
        // One id per timer or file (a path or a unit name after it).
        ["updates", "timer", ..] | ["kernel" | "firewall", "file", ..] => parts[..2].to_vec(),
        ["sshd", "effective" | "pubkey", ..] => vec!["sshd", parts[1]],
        ["sshd", keyword, _user, ..] => vec!["sshd", keyword],
        _ => parts.clone(),
    };
    kept.join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The file's text.
pub fn render(f: &Figures) -> String {
    let mut ok: BTreeMap<String, bool> = BTreeMap::new();
    for c in f.checks {
        let entry = ok.entry(kind_of(&c.id)).or_insert(true);
        *entry &= c.status != Status::Fail;
    }
    let mut drifted: BTreeMap<String, bool> = ok.keys().map(|k| (k.clone(), false)).collect();
    for id in f.drifted {
        drifted.insert(kind_of(id), true);
    }
    let mut out = String::new();
    per_kind(
        &mut out,
        "batten_check_ok",
        "Whether no check of this kind failed in the last drift check (1) or one failed (0); a warning (a new public listener the firewall drops) leaves it 1: see batten_check_drifted.",
        &ok,
    );
    per_kind(
        &mut out,
        "batten_check_drifted",
        "Whether a check of this kind left the sealed state or is newly unsafe (1), warnings included, or not (0).",
        &drifted,
    );
    let _ = write!(
        out,
        "# HELP batten_drift_items Items that left the sealed state or are newly unsafe.\n\
         # TYPE batten_drift_items gauge\n\
         batten_drift_items {}\n\
         # HELP batten_last_verify_timestamp_seconds When the last drift check ran.\n\
         # TYPE batten_last_verify_timestamp_seconds gauge\n\
         batten_last_verify_timestamp_seconds {}\n\
         # HELP batten_default_passwords_locked Accounts whose known default password batten locked.\n\
         # TYPE batten_default_passwords_locked gauge\n\
         batten_default_passwords_locked {}\n",
        f.drifted.len(),
        f.at,
        f.default_passwords_locked
    );
    if let Some(id) = f.instance_id {
        let _ = write!(
            out,
            "# HELP batten_sealed_info The sealed instance and the batten that checks it.\n\
             # TYPE batten_sealed_info gauge\n\
             batten_sealed_info{{instance_id=\"{}\",version=\"{}\"}} 1\n",
            escape(id),
            env!("CARGO_PKG_VERSION")
        );
    }
    out
}

/// One gauge family with a 0/1 sample per kind of check.
fn per_kind(out: &mut String, name: &str, help: &str, values: &BTreeMap<String, bool>) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n");
    for (kind, yes) in values {
        let _ = writeln!(out, "{name}{{check=\"{kind}\"}} {}", u8::from(*yes));
    }
}

/// A label value as the exposition format quotes it.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Write the file into `dir` of the root (`batten.assure.textfile_dir`,
/// Debian's node_exporter directory unless set; made if missing), whole: a
/// temporary file renamed over the old one.
pub fn write(root: &Root, dir: &str, text: &str) -> Result<String, RootError> {
    let owner = |mode| Owner {
        uid: 0,
        gid: 0,
        mode,
    };
    root.create_dir_all(dir, owner(0o755))?;
    let path = format!("{dir}/{FILE}");
    root.write_atomic(&path, text.as_bytes(), owner(0o644), None)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, status: Status) -> Check {
        Check {
            id: id.into(),
            status,
            what: String::new(),
            why: String::new(),
        }
    }

    #[test]
    fn kinds_never_name_a_user_a_site_or_a_socket() {
        for (id, kind) in [
            ("sshd.passwordauthentication", "sshd_passwordauthentication"),
            ("sshd.pubkey.admin", "sshd_pubkey"),
            ("sshd.effective.admin", "sshd_effective"),
            ("sshd.permitrootlogin.admin", "sshd_permitrootlogin"),
            ("sshd.crypto.kexalgorithms", "sshd_crypto_kexalgorithms"),
            ("keys.admin", "keys"),
            ("hostkeys.ed25519", "hostkeys"),
            ("proxy.batten-80-panel.example.org", "proxy_site"),
            ("proxy.batten-80.https", "proxy_https"),
            ("proxy.batten-80-panel.example.org.login", "proxy_login"),
            ("proxy.config", "proxy_config"),
            ("sockets.tcp.0.0.0.0:22", "sockets"),
            ("firewall.loaded", "firewall_loaded"),
            ("kernel.sysctl-missing", "kernel_sysctl_missing"),
            ("updates.timer.apt-daily.timer", "updates_timer"),
            ("kernel.file./etc/sysctl.d/zz-batten.conf", "kernel_file"),
            ("firewall.file./etc/iptables/rules.v6", "firewall_file"),
        ] {
            assert_eq!(kind_of(id), kind, "{id}");
        }
    }

    #[test]
    fn the_text_is_stable_and_a_failure_shows() {
        let checks = vec![
            check("sshd.passwordauthentication", Status::Pass),
            check("sockets.tcp.0.0.0.0:22", Status::Pass),
            check("sockets.tcp.0.0.0.0:9999", Status::Fail),
        ];
        let figures = |at| Figures {
            checks: &checks,
            drifted: &["sockets.tcp.0.0.0.0:9999"],
            at,
            instance_id: Some("i-0abc"),
            default_passwords_locked: 1,
        };
        let text = render(&figures(1_700_000_000));
        assert!(
            text.contains("\nbatten_check_ok{check=\"sockets\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("\nbatten_check_ok{check=\"sshd_passwordauthentication\"} 1\n"));
        assert!(text.contains("\nbatten_check_drifted{check=\"sockets\"} 1\n"));
        assert!(text.contains("\nbatten_check_drifted{check=\"sshd_passwordauthentication\"} 0\n"));
        assert!(text.contains("\nbatten_drift_items 1\n"));
        assert!(text.contains("\nbatten_last_verify_timestamp_seconds 1700000000\n"));
        assert!(text.contains("batten_sealed_info{instance_id=\"i-0abc\",version=\""));
        let later = render(&figures(1_700_000_300));
        let strip = |t: &str| {
            t.lines()
                .filter(|l| !l.starts_with("batten_last_verify_timestamp_seconds"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(&text), strip(&later));
    }

    #[test]
    fn a_warning_that_drifted_shows_in_check_drifted_not_check_ok() {
        let checks = vec![check("sockets.tcp.0.0.0.0:7777", Status::Warn)];
        let text = render(&Figures {
            checks: &checks,
            drifted: &["sockets.tcp.0.0.0.0:7777"],
            at: 1_700_000_000,
            instance_id: None,
            default_passwords_locked: 0,
        });
        assert!(
            text.contains("\nbatten_check_ok{check=\"sockets\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("\nbatten_check_drifted{check=\"sockets\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn promtool_accepts_it() {
        let promtool = std::env::var_os("BATTEN_PROMTOOL")
            .map(std::path::PathBuf::from)
            .or_else(|| crate::host::exec::find_program("promtool"));
        let Some(promtool) = promtool else {
            assert!(std::env::var_os("CI").is_none(), "promtool is needed in CI");
            return;
        };
        let checks = vec![check("firewall.loaded", Status::Pass)];
        let text = render(&Figures {
            checks: &checks,
            drifted: &[],
            at: 1_700_000_000,
            instance_id: Some("i-1"),
            default_passwords_locked: 0,
        });
        let mut child = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
