//! SSH in the user-data: password login (`ssh_pwauth`), authorized keys,
//! the host keys to generate or install (`ssh_genkeytypes`, `ssh_keys`
//! with their certificates) and `batten.ssh`.

use super::checker::Checker;
use super::values::{bool_word, each_entry, item_path, join, one_or_many, port, some_of, string};
use crate::input::grammar;
use crate::input::model::{
    AuthorizedKey, HostKeyType, PasswordAuth, ProvidedHostKey, RootLogin, SshSettings,
};
use crate::input::yaml::{Node, Value};

const SSH_KEYS: &[&str] = &["port", "permit_root_login"];

/// `ssh_pwauth` is the one setting that can leave SSH's door open, so only
/// a value batten reads for certain is taken: a boolean (YAML 1.1 words
/// included). cloud-init leaves password login as the image has it for
/// `unchanged`, an empty value or any word it does not know; batten refuses
/// those (exit 65), since a typo must never leave passwords on.
pub(super) fn pwauth(c: &mut Checker, node: &Node, path: &str) -> PasswordAuth {
    const ASK: &str =
        "write false (password login off, batten's default) or true (passwords stay on)";
    let allow = match &node.value {
        Value::Bool(b) => Some(*b),
        Value::Int(1) => Some(true),
        Value::Int(0) => Some(false),
        Value::Str(s) => match bool_word(s) {
            Some(b) => Some(b),
            None if s.eq_ignore_ascii_case("unchanged") => {
                c.error(
                    node.pos,
                    path,
                    format!("\"unchanged\" would leave password login as the image has it, which batten never does; {ASK}"),
                );
                None
            }
            None => {
                c.error(
                    node.pos,
                    path,
                    format!("{s:?} is not true or false; batten does not guess about password login: {ASK}"),
                );
                None
            }
        },
        Value::Null => {
            c.error(node.pos, path, format!("no value; {ASK}"));
            None
        }
        _ => {
            c.expected(node, path, "true or false");
            None
        }
    };
    match allow {
        Some(true) => {
            c.warn(
                node.pos,
                path,
                "password login stays ON: SSH will accept passwords, and anyone can try to guess them; remove ssh_pwauth or set it to false unless you need this",
            );
            PasswordAuth::Allow
        }
        Some(false) => PasswordAuth::Deny,
        None => PasswordAuth::Default,
    }
}

/// Parse one `authorized_keys` line with the ssh-key crate.
pub fn parse_authorized_key(line: &str) -> Result<AuthorizedKey, String> {
    if line.contains(['\n', '\r', '\0']) {
        return Err("an SSH key must be on one line".into());
    }
    // The options are read as sshd reads them (the key crate splits them at
    // the first space, even inside quotes, and takes names sshd does not
    // know); what follows must be a key and nothing else, so no option can
    // hide in it.
    let (options, key_part) = crate::input::key_options::split(line)?;
    let key = ssh_key::PublicKey::from_openssh(key_part).map_err(|e| {
        format!("not a valid SSH public key ({e}); paste the whole line from the .pub file")
    })?;
    let openssh = key
        .to_openssh()
        .map_err(|e| format!("cannot re-encode this SSH key: {e}"))?;
    let mut parts = openssh.splitn(3, ' ');
    let algorithm = parts.next().unwrap_or_default().to_string();
    let base64 = parts.next().unwrap_or_default().to_string();
    if matches!(algorithm.as_str(), "ssh-dss") {
        return Err("DSA keys are refused by current OpenSSH; use an ed25519 key".into());
    }
    let comment = key.comment().to_string();
    if comment.chars().any(|ch| ch.is_control()) {
        return Err("the key's comment contains control characters".into());
    }
    Ok(AuthorizedKey {
        options: options.to_string(),
        algorithm,
        base64,
        comment,
        fingerprint: key.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
    })
}

/// `ssh_authorized_keys` (top level or a user's): one key or a list, each
/// line checked as sshd would read it, so a broken key is an error now and
/// not a lockout later.
pub(super) fn authorized_keys(c: &mut Checker, node: &Node, path: &str) -> Vec<AuthorizedKey> {
    let mut keys = Vec::new();
    for (item, i) in one_or_many(node) {
        let p = item_path(path, i);
        if let Some(line) = string(c, item, &p) {
            match parse_authorized_key(line) {
                Ok(k) => keys.push(k),
                Err(e) => c.error(item.pos, &p, e),
            }
        }
    }
    keys
}

/// `ssh_genkeytypes`: the host key types to generate; DSA is skipped with a
/// warning, as cloud-init skips it, and an unknown type is an error.
pub(super) fn genkeytypes(c: &mut Checker, node: &Node, path: &str) -> Vec<HostKeyType> {
    let mut out = Vec::new();
    for (item, i) in one_or_many(node) {
        let p = item_path(path, i);
        let Some(name) = string(c, item, &p) else {
            continue;
        };
        match name {
            "rsa" => out.push(HostKeyType::Rsa),
            "ecdsa" => out.push(HostKeyType::Ecdsa),
            "ed25519" => out.push(HostKeyType::Ed25519),
            "dsa" => c.warn(item.pos, &p, "DSA host keys are obsolete and not generated"),
            other => c.error(
                item.pos,
                &p,
                format!("unknown host key type {other:?}; use rsa, ecdsa or ed25519"),
            ),
        }
    }
    out.dedup();
    out
}

/// `ssh_keys`: host keys the owner provides, each pair checked (the public
/// key belongs to the private one, no passphrase, a certificate for that
/// key), so that sshd never starts with a key it cannot use.
pub(super) fn host_keys(c: &mut Checker, node: &Node, path: &str) -> Vec<ProvidedHostKey> {
    let Some(entries) = node.as_map() else {
        c.expected(
            node,
            path,
            "a mapping like {ed25519_private: ..., ed25519_public: ...}",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in HostKeyType::defaults() {
        let get = |suffix: &str| node.get(&format!("{}_{suffix}", t.name()));
        let (private, public) = (get("private"), get("public"));
        let key_path = |suffix: &str| join(path, &format!("{}_{suffix}", t.name()));
        let Some(private) = private else {
            if let Some(p) = public {
                c.error(
                    p.pos,
                    &key_path("public"),
                    "a public host key without its private key",
                );
            }
            continue;
        };
        let Some(private_text) = string(c, private, &key_path("private")) else {
            continue;
        };
        let parsed = match ssh_key::PrivateKey::from_openssh(private_text) {
            Ok(k) => k,
            Err(e) => {
                c.error(
                    private.pos,
                    &key_path("private"),
                    format!(
                        "not an OpenSSH private key ({e}); convert it with `ssh-keygen -p -f FILE`"
                    ),
                );
                continue;
            }
        };
        if parsed.is_encrypted() {
            c.error(
                private.pos,
                &key_path("private"),
                "host keys cannot have a passphrase",
            );
            continue;
        }
        let algorithm = parsed.algorithm();
        let matches_entry = match t {
            HostKeyType::Rsa => matches!(algorithm, ssh_key::Algorithm::Rsa { .. }),
            HostKeyType::Ecdsa => matches!(algorithm, ssh_key::Algorithm::Ecdsa { .. }),
            HostKeyType::Ed25519 => matches!(algorithm, ssh_key::Algorithm::Ed25519),
        };
        if !matches_entry {
            c.error(
                private.pos,
                &key_path("private"),
                format!(
                    "this is an {} key, not an {} key; put it under the matching entry",
                    algorithm.as_str(),
                    t.name()
                ),
            );
            continue;
        }
        let derived = parsed.public_key().clone();
        let public_line =
            match public.and_then(|p| string(c, p, &key_path("public")).map(|s| (p, s))) {
                Some((p, text)) => match ssh_key::PublicKey::from_openssh(text.trim()) {
                    Ok(pk) if pk.key_data() == derived.key_data() => text.trim().to_string(),
                    Ok(_) => {
                        c.error(
                            p.pos,
                            &key_path("public"),
                            "this public key does not belong to the private key beside it",
                        );
                        continue;
                    }
                    Err(e) => {
                        c.error(
                            p.pos,
                            &key_path("public"),
                            format!("not a valid SSH public key ({e})"),
                        );
                        continue;
                    }
                },
                None => derived.to_openssh().unwrap_or_default(),
            };
        // The line goes into the .pub file and its comment onto the console.
        if public_line.chars().any(char::is_control) {
            c.error(
                public.map_or(private.pos, |p| p.pos),
                &key_path("public"),
                "the public key's comment holds control characters (a newline or a terminal escape); remove them",
            );
            continue;
        }
        let certificate = match get("certificate") {
            None => None,
            Some(node) => {
                let Some(text) = string(c, node, &key_path("certificate")) else {
                    continue;
                };
                match host_certificate(text, &derived) {
                    Ok(line) => Some(line),
                    Err(why) => {
                        c.error(node.pos, &key_path("certificate"), why);
                        continue;
                    }
                }
            }
        };
        out.push(ProvidedHostKey {
            key_type: t,
            private: private_text.to_string(),
            public: public_line,
            certificate,
        });
    }
    let names: Vec<String> = ["rsa", "ecdsa", "ed25519"]
        .iter()
        .flat_map(|t| {
            ["private", "public", "certificate"]
                .iter()
                .map(move |s| format!("{t}_{s}"))
        })
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for (k, _) in entries {
        let Value::Str(name) = &k.value else {
            continue;
        };
        if names.contains(&name.as_str()) {
            continue;
        }
        // cloud-init's own names for keys batten does not install are
        // skipped with a warning, as cloud-init skips them; any other name
        // is a typo that would drop the key the owner meant to give.
        if name.starts_with("dsa_") || name.contains("_sk_") {
            c.warn(
                k.pos,
                &join(path, name),
                "ignored: batten installs rsa, ecdsa and ed25519 host keys only",
            );
        } else {
            let hint = grammar::suggest(name, &names)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_else(|| {
                    "; known names are {rsa,ecdsa,ed25519}_{private,public,certificate}".to_string()
                });
            c.error(
                k.pos,
                &join(path, name),
                format!("unknown key {name:?}{hint}"),
            );
        }
    }
    out
}

/// A host certificate from `ssh_keys` as sshd will load it: one line, a
/// host certificate for the key beside it (sshd pairs certificate and key
/// by the public key). The line, trimmed, goes into the `-cert.pub` file.
fn host_certificate(text: &str, key: &ssh_key::PublicKey) -> Result<String, String> {
    let line = text.trim();
    if line.chars().any(char::is_control) {
        return Err(
            "a certificate is one line; this one holds a newline or another control character"
                .into(),
        );
    }
    crate::input::host_certificate::check(line, key)?;
    Ok(line.to_string())
}

/// `batten.ssh`: sshd's ports and `PermitRootLogin`, refusing the values
/// that would let root log in with a password.
pub(super) fn ssh_settings(c: &mut Checker, node: &Node, path: &str) -> SshSettings {
    let mut s = SshSettings::default();
    each_entry(c, node, path, SSH_KEYS, |c, key, v, p| match key {
        "port" => {
            s.ports = some_of(c, v, &p, "a port or a list of ports")
                .into_iter()
                .filter_map(|(item, i)| port(c, item, &item_path(&p, i)))
                .collect();
            s.ports.dedup();
        }
        "permit_root_login" => {
            s.permit_root_login = match &v.value {
                Value::Bool(false) => Some(RootLogin::No),
                Value::Str(x) => match x.as_str() {
                    "no" => Some(RootLogin::No),
                    "prohibit-password" | "without-password" => Some(RootLogin::ProhibitPassword),
                    "forced-commands-only" => Some(RootLogin::ForcedCommandsOnly),
                    "yes" => {
                        c.error(v.pos, &p, "\"yes\" would let root log in with a password; use \"prohibit-password\" for key-only root login");
                        None
                    }
                    other => {
                        c.error(v.pos, &p, format!("{other:?} is not a PermitRootLogin value; use no, prohibit-password or forced-commands-only"));
                        None
                    }
                },
                Value::Bool(true) => {
                    c.error(v.pos, &p, "yes would let root log in with a password; use \"prohibit-password\" for key-only root login");
                    None
                }
                _ => {
                    c.expected(v, &p, "no, prohibit-password or forced-commands-only");
                    None
                }
            }
        }
        _ => {} // each_entry hands over listed keys only
    });
    s
}

#[cfg(test)]
mod tests {
    use super::super::tests::{KEY, run};
    use super::*;

    #[test]
    fn yaml_11_booleans_and_no_unchanged() {
        for (text, want) in [
            ("ssh_pwauth: yes", PasswordAuth::Allow),
            ("ssh_pwauth: Off", PasswordAuth::Deny),
            ("ssh_pwauth: NO", PasswordAuth::Deny),
            ("ssh_pwauth: \"false\"", PasswordAuth::Deny),
            ("ssh_pwauth: True", PasswordAuth::Allow),
            ("ssh_pwauth: 0", PasswordAuth::Deny),
        ] {
            let (ud, e, w) = run(text);
            assert!(e.is_empty(), "{text}: {e:?}");
            let ud = ud.unwrap();
            assert_eq!(ud.ssh_pwauth, want, "{text}");
            // The one setting that reopens the door is always named.
            let warned = w.iter().any(|w| w.contains("password login stays ON"));
            assert_eq!(warned, want == PasswordAuth::Allow, "{text}: {w:?}");
        }
        // What cloud-init reads as "leave it as it is" is refused: a typo
        // must not leave passwords on.
        for text in [
            "ssh_pwauth: unchanged",
            "ssh_pwauth: maybe",
            "ssh_pwauth: flase",
            "ssh_pwauth:",
            "ssh_pwauth: ~",
            "ssh_pwauth: 2",
            "ssh_pwauth: {}",
        ] {
            let (ud, e, _) = run(text);
            assert!(ud.is_none() && e.len() == 1, "{text}: {e:?}");
            assert!(e[0].contains("ssh_pwauth"), "{text}: {e:?}");
        }
        let (ud, _, _) = run("disable_root: off\nssh_quiet_keygen: ON\n");
        let ud = ud.unwrap();
        assert!(!ud.disable_root && ud.ssh_quiet_keygen);
    }

    #[test]
    fn keys_keep_options_and_fingerprints() {
        let text = format!("ssh_authorized_keys:\n  - from=\"203.0.113.0/24\",no-pty {KEY}\n");
        let (ud, e, _) = run(&text);
        assert!(e.is_empty(), "{e:?}");
        let key = &ud.unwrap().ssh_authorized_keys[0];
        assert_eq!(key.options, "from=\"203.0.113.0/24\",no-pty");
        assert_eq!(key.algorithm, "ssh-ed25519");
        assert_eq!(key.comment, "admin@laptop");
        assert!(key.fingerprint.starts_with("SHA256:"));
        assert_eq!(key.line(), format!("from=\"203.0.113.0/24\",no-pty {KEY}"));
    }

    #[test]
    fn a_host_key_comment_with_control_characters_is_refused() {
        let mut key = ssh_key::PrivateKey::random(
            &mut ssh_key::rand_core::OsRng,
            ssh_key::Algorithm::Ed25519,
        )
        .unwrap();
        key.set_comment("root@x\u{1b}[2J\nforged line");
        let private = key.to_openssh(ssh_key::LineEnding::LF).unwrap();
        let indented: String = private.lines().map(|l| format!("    {l}\n")).collect();
        let (_, e, _) = run(&format!("ssh_keys:\n  ed25519_private: |\n{indented}"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("control characters"), "{e:?}");
    }

    /// A certificate of `cert_type` for `subject`, signed by a fresh CA.
    fn certificate(
        subject: &ssh_key::PrivateKey,
        cert_type: ssh_key::certificate::CertType,
    ) -> String {
        let ca = ssh_key::PrivateKey::random(
            &mut ssh_key::rand_core::OsRng,
            ssh_key::Algorithm::Ed25519,
        )
        .unwrap();
        let mut builder = ssh_key::certificate::Builder::new(
            [7u8; 16],
            subject.public_key().key_data().clone(),
            1_700_000_000,
            2_000_000_000,
        )
        .unwrap();
        builder.cert_type(cert_type).unwrap();
        builder.valid_principal("host.example.org").unwrap();
        builder.sign(&ca).unwrap().to_openssh().unwrap()
    }

    #[test]
    fn a_host_certificate_must_be_one_for_the_key_beside_it() {
        use ssh_key::certificate::CertType;
        let key = ssh_key::PrivateKey::random(
            &mut ssh_key::rand_core::OsRng,
            ssh_key::Algorithm::Ed25519,
        )
        .unwrap();
        let other = ssh_key::PrivateKey::random(
            &mut ssh_key::rand_core::OsRng,
            ssh_key::Algorithm::Ed25519,
        )
        .unwrap();
        let private: String = key
            .to_openssh(ssh_key::LineEnding::LF)
            .unwrap()
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect();
        let with = |cert: &str| {
            run(&format!(
                "ssh_keys:\n  ed25519_private: |\n{private}  ed25519_certificate: \"{cert}\"\n"
            ))
        };
        let good = certificate(&key, CertType::Host);
        let (ud, e, w) = with(&good);
        assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
        assert_eq!(
            ud.unwrap().ssh_keys[0].certificate.as_deref(),
            Some(good.as_str())
        );
        for (cert, why) in [
            (certificate(&key, CertType::User), "user certificate"),
            (certificate(&other, CertType::Host), "for another key"),
            (
                KEY.to_string(),
                "needs a ssh-ed25519-cert-v01@openssh.com certificate",
            ),
            (
                format!("{good}\\nPasswordAuthentication yes"),
                "control character",
            ),
        ] {
            let (_, e, _) = with(&cert);
            assert_eq!(e.len(), 1, "{why}: {e:?}");
            assert!(e[0].contains(why), "{why}: {e:?}");
            assert!(e[0].contains("ssh_keys.ed25519_certificate"), "{e:?}");
        }
    }
}
