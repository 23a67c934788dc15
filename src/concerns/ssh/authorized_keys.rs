//! The owners' public keys, in the file the effective sshd configuration
//! names for each account.
//!
//! Keys are appended, never overwritten: a key already in the file stays
//! where it is, and the same key (type and base64 data, whatever its
//! comment or options) is never added twice. A key line keeps its options
//! (`from="..."`), except root's keys under `disable_root`, which get
//! cloud-init's redirect in front so a login as root only says which account
//! to use.

use crate::input::model::AuthorizedKey;

use super::sshd_config::SshdConfig;

/// sshd's default when `AuthorizedKeysFile` is not set.
const DEFAULT_FILE: &str = ".ssh/authorized_keys";

/// Why an account's key file cannot be named.
#[derive(Debug, PartialEq, Eq)]
pub enum NoKeyFile {
    /// `AuthorizedKeysFile none`: sshd reads no key file at all.
    Disabled,
    /// The path uses `%U` and the account does not exist yet.
    UidUnknown,
}

/// The root-relative path of an account's authorized_keys file: the first
/// path of the effective `AuthorizedKeysFile`, with `%h`, `%u`, `%U` and
/// `%%` expanded and relative paths taken from the home directory, as sshd
/// does.
pub fn keys_file(
    config: &SshdConfig,
    user: &str,
    uid: Option<u32>,
    home: &str,
) -> Result<String, NoKeyFile> {
    let spec = config
        .effective("authorizedkeysfile")
        .and_then(|d| {
            d.args
                .split_whitespace()
                .next()
                .map(|s| s.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| DEFAULT_FILE.to_string());
    if spec == "none" {
        return Err(NoKeyFile::Disabled);
    }
    if spec.contains("%U") && uid.is_none() {
        return Err(NoKeyFile::UidUnknown);
    }
    Ok(expand(&spec, user, uid, home))
}

/// `%h`, `%u`, `%U` and `%%` in an AuthorizedKeysFile path, expanded in one
/// pass as sshd does (a `%u` inside the home stays as it is), and a relative
/// path taken from the home.
pub fn expand(spec: &str, user: &str, uid: Option<u32>, home: &str) -> String {
    let mut out = String::new();
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(home),
            Some('u') => out.push_str(user),
            Some('U') => out.push_str(&uid.map(|u| u.to_string()).unwrap_or_default()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    if out.starts_with('/') {
        out
    } else {
        format!("{}/{out}", home.trim_end_matches('/'))
    }
}

/// The options cloud-init puts before root's keys under `disable_root`, so
/// that logging in as root only prints which account to use.
pub fn root_redirect(default_user: Option<&str>) -> String {
    let user = default_user.unwrap_or("NONE");
    format!(
        "no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command=\"echo 'Please login as the user \\\"{user}\\\" rather than the user \\\"root\\\".';echo;sleep 10;exit 142\""
    )
}

/// The key's identity in an existing line: type and base64 data, found
/// where sshd finds them (options skipped as sshd skips them); `None` for a
/// comment, a blank line, or a line sshd would not read a key from.
fn identity(line: &str) -> Option<(String, String)> {
    let mut words = crate::input::key_options::key_start(line)?.split_whitespace();
    Some((words.next()?.to_string(), words.next()?.to_string()))
}

/// How many lines of an authorized_keys text sshd reads a key from.
pub fn count(text: &str) -> usize {
    text.lines().filter_map(identity).count()
}

/// The file's new text with every key not yet present appended; `None`
/// when nothing needs adding. Lines batten cannot parse are kept as they are.
pub fn merged(
    existing: Option<&str>,
    keys: &[AuthorizedKey],
    options: Option<&str>,
) -> Option<String> {
    let mut text = existing.unwrap_or("").to_string();
    let mut present: Vec<(String, String)> = text.lines().filter_map(identity).collect();
    let mut added = false;
    for key in keys {
        let id = (key.algorithm.clone(), key.base64.clone());
        if present.contains(&id) {
            continue;
        }
        let line = match options {
            Some(opts) => {
                let plain = AuthorizedKey {
                    options: opts.to_string(),
                    ..key.clone()
                };
                plain.line()
            }
            None => key.line(),
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&line);
        text.push('\n');
        present.push(id);
        added = true;
    }
    (added || (existing.is_none() && !keys.is_empty())).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::validate::parse_authorized_key;

    const K1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGBfY5Y7Dp1Dn4a4y6iJbBvYxVKJWB3H0cQ2m9bq6Tq3 admin@laptop";

    fn config(text: &str) -> SshdConfig {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/ssh")).unwrap();
        std::fs::write(dir.path().join("etc/ssh/sshd_config"), text).unwrap();
        SshdConfig::load(&crate::host::root::Root::open(dir.path()).unwrap()).unwrap()
    }

    #[test]
    fn paths_follow_authorized_keys_file() {
        let path = |c: &SshdConfig, uid| keys_file(c, "pi", uid, "/home/pi");
        assert_eq!(
            path(&config(""), Some(1000)).unwrap(),
            "/home/pi/.ssh/authorized_keys"
        );
        let c = config("AuthorizedKeysFile /etc/ssh/keys/%u .ssh/authorized_keys\n");
        assert_eq!(path(&c, Some(1000)).unwrap(), "/etc/ssh/keys/pi");
        let c = config("AuthorizedKeysFile %h/.ssh/keys_%U_%%\n");
        assert_eq!(path(&c, Some(1000)).unwrap(), "/home/pi/.ssh/keys_1000_%");
        assert_eq!(
            path(&c, None),
            Err(NoKeyFile::UidUnknown),
            "%U before the account exists"
        );
        let c = config("AuthorizedKeysFile none\n");
        assert_eq!(path(&c, Some(1000)), Err(NoKeyFile::Disabled));
    }

    #[test]
    fn append_never_duplicate_keep_options() {
        let k = parse_authorized_key(K1).unwrap();
        let existing = format!(
            "# mine\nfrom=\"198.51.100.7\" {}\n",
            K1.replace("admin@laptop", "other-comment")
        );
        assert_eq!(
            merged(Some(&existing), std::slice::from_ref(&k), None),
            None,
            "same key, other comment"
        );
        let with_opts = parse_authorized_key(&format!("from=\"203.0.113.0/24\" {K1}")).unwrap();
        let text = merged(Some("# mine\n"), &[with_opts.clone(), with_opts], None).unwrap();
        assert_eq!(text, format!("# mine\nfrom=\"203.0.113.0/24\" {K1}\n"));
        assert_eq!(merged(None, &[], None), None);
        assert_eq!(
            merged(Some("garbage line"), &[k], None).unwrap(),
            format!("garbage line\n{K1}\n")
        );
    }

    #[test]
    fn root_gets_the_redirect() {
        let k = parse_authorized_key(&format!("from=\"198.51.100.1\" {K1}")).unwrap();
        let text = merged(None, &[k], Some(&root_redirect(Some("admin")))).unwrap();
        assert!(text.starts_with("no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command=\"echo 'Please login as the user \\\"admin\\\" rather than the user \\\"root\\\".';echo;sleep 10;exit 142\" ssh-ed25519 "), "{text}");
        assert!(!text.contains("198.51.100.1"));
        // Its identity is still found, so a second run adds nothing.
        let again = parse_authorized_key(K1).unwrap();
        assert_eq!(
            merged(Some(&text), &[again], Some(&root_redirect(Some("admin")))),
            None
        );
    }
}
