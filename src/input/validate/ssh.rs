//! SSH in the user-data: password login (`ssh_pwauth`), authorized keys,
//! the host keys to generate or install (`ssh_genkeytypes`, `ssh_keys`
//! with their certificates) and `batten.ssh`.

use super::checker::Checker;
use super::values::{bool_word, each_entry, item_path, join, one_or_many, port, some_of, string};
use crate::input::grammar;
use crate::input::model::{
    AuthorizedKey, CryptoPolicy, HostKeyType, PasswordAuth, ProvidedHostKey, RootLogin, SshSettings,
};
use crate::input::yaml::{Node, Value};

const SSH_KEYS: &[&str] = &["port", "permit_root_login", "crypto"];

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
    let comment = key.comment().to_string();
    if comment.chars().any(|ch| ch.is_control()) {
        return Err("the key's comment contains control characters".into());
    }
    let fingerprint = key.fingerprint(ssh_key::HashAlg::Sha256).to_string();
    // Safety rule 7: the crypto policy never locks out a key the user
    // gives, so a key too weak to trust is refused here, named, before
    // anything changes, instead of being quietly locked out later.
    let named = || {
        if comment.is_empty() {
            fingerprint.clone()
        } else {
            format!("{comment:?} ({fingerprint})")
        }
    };
    if algorithm == "ssh-dss" {
        return Err(format!(
            "the DSA key {} is too weak to trust and current OpenSSH refuses it; make an ed25519 key (ssh-keygen -t ed25519) and give that",
            named()
        ));
    }
    if let Some(bits) = rsa_bits(&key)
        && bits < MIN_RSA_BITS
    {
        return Err(format!(
            "the {bits}-bit RSA key {} is too weak to trust (RSA keys need at least {MIN_RSA_BITS} bits); make an ed25519 key (ssh-keygen -t ed25519) or a 4096-bit RSA key and give that",
            named()
        ));
    }
    Ok(AuthorizedKey {
        options: options.to_string(),
        algorithm,
        base64,
        comment,
        fingerprint,
    })
}

/// RSA keys under this size are refused: NIST has not counted them safe
/// since 2015, and OpenSSH 9.1's own `RequiredRSASize` default is close.
pub const MIN_RSA_BITS: u32 = 2048;

/// The modulus size of an RSA key (certificates included), as
/// `ssh-keygen -l` counts it; `None` for other key types.
pub fn rsa_bits(key: &ssh_key::PublicKey) -> Option<u32> {
    let n = &key.key_data().rsa()?.n;
    let bytes = n.as_positive_bytes()?;
    let first = bytes.first()?;
    Some((bytes.len() as u32 - 1) * 8 + (8 - first.leading_zeros()))
}

/// The size of an RSA public key line (`ssh-rsa AAAA...`), for the crypto
/// policy's `RequiredRSASize`; `None` for other keys or text that is not
/// a key.
pub fn rsa_bits_of_line(algorithm: &str, base64: &str) -> Option<u32> {
    let key = ssh_key::PublicKey::from_openssh(&format!("{algorithm} {base64}")).ok()?;
    rsa_bits(&key)
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
        "crypto" => {
            const POLICIES: [&str; 3] = ["modern", "compatible", "image"];
            s.crypto = match &v.value {
                Value::Str(x) if x == "modern" => CryptoPolicy::Modern,
                Value::Str(x) if x == "compatible" => CryptoPolicy::Compatible,
                Value::Str(x) if x == "image" => CryptoPolicy::Image,
                // A typo must not leave the image's algorithms in place.
                Value::Str(other) => {
                    let hint = grammar::suggest(other, &POLICIES)
                        .map(|s| format!("; did you mean {s:?}?"))
                        .unwrap_or_default();
                    c.error(
                        v.pos,
                        &p,
                        format!("{other:?} is not a crypto policy: use modern, compatible or image{hint}"),
                    );
                    CryptoPolicy::Modern
                }
                _ => {
                    c.expected(v, &p, "modern, compatible or image");
                    CryptoPolicy::Modern
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

    /// Made with `ssh-keygen -t dsa`, `-t rsa -b 1024` and `-t rsa -b 2048`.
    const DSA: &str = concat!(
        "ssh-dss AAAAB3NzaC1kc3MAAACBAKSTBvLqkvW696sB438I2Cq1Rq349VCBPJGMnEUcjSWVUzVPICIZ",
        "iOP+oz1uXh0bkj3pWwUX4+8s3zZpON4Sgy0eOkKGv9D7CZ9JxcSZwtaTtCMFdB8YPHO3BId9lcdvracq",
        "0pO07ZMZ8NMSfkv26b4SD1cNx5AEK9HCHD4KEHM9AAAAFQCt5LarYVcasc8GI0SPUas93yzp0wAAAIEA",
        "n5npqFhHaS8lTcU1BMuXzYWvhfzv2WMl1B9jwN8JmYaTJKQ/ZDaDAHrgnMCxvBmUgX3EMLjEkrxXxrd4",
        "kxM90Lr/j72eaVDOeG8YGu2E0ECE0oTqN29YgXn6RIgHevAaapPkNZ5fVgXFuHOPBqIdutnY42kyh/IQ",
        "U3hmm8rC744AAACANh1rYXTqVHe3hbTL9YkNkzHExG1rEKuRPscOB3jneB0P1bZzBQX151mTDWWCjd6P",
        "t/kaXOSnCMXWurmcqwtHxXDQLivTpjoE/F9/5LyCRx7WAQSe5bKCETLmi4ZVGWcDOLCnjIe2aUoVNrQq",
        "c7F8qw4A/oEjIh6lZzBqs6C9OzM= old@dsa"
    );
    const RSA_1024: &str = concat!(
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC4+Ngv/7oaE6lW+Rtz5DFQj5lAQJs1zGu0v2G3V6Ew",
        "uJaiXdWZ2xuEj5831wyMr8YUoF2oz0yq8V7jqUxSW/xpvVzSXoaN70nuKSi6bC1KMqQZ9H5GCEZJe9Ha",
        "6i+H+XmV0PR6/rNJ284m0t49OjDfiPTWjdSeZVXlHFvxJPqTbQ== old@rsa1024"
    );
    const RSA_2048: &str = concat!(
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCjIO/bteSN+jyGsD8ZTS8tYdGNG2lW8RS9OzitlHip",
        "lFlXzbwwOrFtKPBsalnlHtSF/NAFsljWGUKGC8FNYnmu7NV2FAKpeNI1qTiE5FQ8VuHaux8rZNKo61ta",
        "HGoVxCfqVQpcHetuyd9NmNQYfVM00zJdbFF2YN/PHeOuT+m7mDP2DmnAxUMWK2drbKXAXXPV153o0HXM",
        "fHrNdoKLsq4SZCULjfRWfE1mraiY44ciyN2CEjFgys4sX1A9XjUpEiohbx/vBEFwuhzROTztz9DZDdZt",
        "hOSvwuPD0QV7hPHp0HFVf4O+eXkNKqiB5RhfzFx2L5t1Ow2LNE2I2e+aoz+1 ok@rsa2048"
    );

    #[test]
    fn keys_too_weak_to_trust_are_refused_by_name_and_place() {
        let text = format!(
            "users:\n  - name: admin\n    ssh_authorized_keys:\n      - {KEY}\n      - {DSA}\nssh_authorized_keys:\n  - {RSA_2048}\n  - {RSA_1024}\n"
        );
        let (ud, e, _) = run(&text);
        assert!(ud.is_none());
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e.iter()
                .any(|e| e.contains("users[0].ssh_authorized_keys[1]")
                    && e.contains("DSA key \"old@dsa\" (SHA256:")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|e| e.contains("ssh_authorized_keys[1]")
                && e.contains("1024-bit RSA key \"old@rsa1024\" (SHA256:")
                && e.contains("at least 2048 bits")),
            "{e:?}"
        );
        // 2048 bits is weak-ish but trusted: it stays, and the crypto
        // policy makes room for it.
        let (ud, e, _) = run(&format!("ssh_authorized_keys: [\"{RSA_2048}\"]\n"));
        assert!(e.is_empty(), "{e:?}");
        let k = &ud.unwrap().ssh_authorized_keys[0];
        assert_eq!(rsa_bits_of_line(&k.algorithm, &k.base64), Some(2048));
        assert_eq!(
            rsa_bits_of_line("ssh-ed25519", KEY.split(' ').nth(1).unwrap()),
            None
        );
    }

    #[test]
    fn crypto_policy_words() {
        for (word, want) in [
            ("modern", CryptoPolicy::Modern),
            ("compatible", CryptoPolicy::Compatible),
            ("image", CryptoPolicy::Image),
        ] {
            let (ud, e, _) = run(&format!("batten:\n  ssh: {{crypto: {word}}}\n"));
            assert!(e.is_empty(), "{e:?}");
            assert_eq!(ud.unwrap().batten.ssh.crypto, want);
        }
        let (ud, _, _) = run("ssh_pwauth: false\n");
        assert_eq!(ud.unwrap().batten.ssh.crypto, CryptoPolicy::Modern);
        for bad in ["modren", "legacy", "true", "{}"] {
            let (ud, e, _) = run(&format!("batten:\n  ssh: {{crypto: {bad}}}\n"));
            assert!(ud.is_none() && e.len() == 1, "{bad}: {e:?}");
            assert!(e[0].contains("batten.ssh.crypto"), "{e:?}");
        }
        // An explicit ssh_genkeytypes is honoured under modern.
        let (ud, _, _) = run("ssh_genkeytypes: [ecdsa, ed25519]\n");
        assert_eq!(
            ud.unwrap().ssh_genkeytypes,
            [HostKeyType::Ecdsa, HostKeyType::Ed25519]
        );
        let (ud, _, _) = run("batten:\n  ssh: {crypto: compatible}\n");
        assert_eq!(ud.unwrap().ssh_genkeytypes, HostKeyType::defaults());
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
