//! The policy against what real OpenSSH releases list (`ssh -Q`, kept
//! as fixtures beside this file), and against every kind of user key.

use super::*;
use crate::host::exec::fake::Fake;

const DEBIAN_11: &str = include_str!("fixtures/openssh-8.4-debian11.txt");
const DEBIAN_12: &str = include_str!("fixtures/openssh-9.2-debian12.txt");
const DEBIAN_13: &str = include_str!("fixtures/openssh-10.0-debian13.txt");

/// A fake whose `ssh -Q WHAT` answers from a fixture's `== WHAT` section
/// and refuses queries the fixture lacks, as that release's ssh does.
fn fake_ssh(fixture: &'static str) -> Fake {
    Fake::new(move |line| {
        let what = line
            .strip_prefix("check ssh -Q ")
            .ok_or_else(|| format!("unexpected call {line}"))?;
        let mut sections = fixture.split("== ").skip(1);
        sections
            .find_map(|s| s.strip_prefix(&format!("{what}\n")).map(str::to_string))
            .ok_or_else(|| format!("Unsupported query \"{what}\""))
    })
}

fn facts(fixture: &'static str, version: (u32, u32)) -> SshdFacts {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(dir.path()).unwrap();
    let mut f = SshdFacts::probe(&fake_ssh(fixture), &root);
    f.version = Some(version);
    f
}

fn value<'a>(s: &'a [Setting], keyword: &str) -> Option<&'a str> {
    s.iter()
        .find(|x| x.keyword == keyword)
        .map(|x| x.value.as_str())
}

fn modern(f: &SshdFacts, needs: &Needs) -> (Vec<Setting>, Vec<String>) {
    let mut notes = Vec::new();
    let s = settings(CryptoPolicy::Modern, f, needs, &mut notes);
    (s, notes)
}

fn host_keys() -> Needs {
    Needs {
        host_keys: vec![
            (HostKeyType::Rsa, "ssh-rsa".into()),
            (HostKeyType::Ed25519, "ssh-ed25519".into()),
        ],
        ..Needs::default()
    }
}

#[test]
fn debian_12_gets_the_guides_lists() {
    let f = facts(DEBIAN_12, (9, 2));
    assert!(f.listed.is_some());
    let (s, notes) = modern(&f, &host_keys());
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(
        value(&s, "KexAlgorithms"),
        Some(
            "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256"
        )
    );
    assert_eq!(
        value(&s, "Ciphers"),
        Some(
            "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-gcm@openssh.com,aes128-ctr"
        )
    );
    assert_eq!(
        value(&s, "MACs"),
        Some(
            "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com"
        )
    );
    let keys = "sk-ssh-ed25519-cert-v01@openssh.com,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,ssh-ed25519,rsa-sha2-512,rsa-sha2-256";
    assert_eq!(value(&s, "HostKeyAlgorithms"), Some(keys));
    assert_eq!(value(&s, "PubkeyAcceptedAlgorithms"), Some(keys));
    assert_eq!(value(&s, "RequiredRSASize"), Some("3072"));
    let host: Vec<&str> = s
        .iter()
        .filter(|x| x.keyword == "HostKey")
        .map(|x| x.value.as_str())
        .collect();
    assert_eq!(
        host,
        ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"],
        "Ed25519 first: sshd offers host keys in this order, as the guide has it"
    );
    // No SHA-1, CBC, NIST curve or arcfour anywhere.
    for x in &s {
        for bad in ["sha1", "cbc", "nistp", "arcfour", "ssh-rsa", "ssh-dss"] {
            assert!(!x.value.contains(bad), "{} {}", x.keyword, x.value);
        }
    }
}

#[test]
fn debian_11_loses_what_84_lacks_and_uses_the_old_keyword() {
    let f = facts(DEBIAN_11, (8, 4));
    let (s, notes) = modern(&f, &host_keys());
    assert!(notes.is_empty(), "{notes:?}");
    let kex = value(&s, "KexAlgorithms").unwrap();
    assert!(
        !kex.contains("sntrup761"),
        "8.4 has only sntrup4591761: {kex}"
    );
    assert!(kex.starts_with("curve25519-sha256,"), "{kex}");
    assert!(value(&s, "PubkeyAcceptedAlgorithms").is_none());
    let pubkey = value(&s, "PubkeyAcceptedKeyTypes").unwrap();
    // `key` + `sig` (no key-sig before 8.2... nor in this fixture) lack the
    // rsa-sha2 certificate names: they are left out, never guessed.
    assert_eq!(
        pubkey,
        "sk-ssh-ed25519-cert-v01@openssh.com,ssh-ed25519-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,ssh-ed25519,rsa-sha2-512,rsa-sha2-256"
    );
    assert!(
        value(&s, "RequiredRSASize").is_none(),
        "8.4 does not know RequiredRSASize"
    );
}

#[test]
fn openssh_10_puts_ml_kem_first() {
    let f = facts(DEBIAN_13, (10, 0));
    let (s, _) = modern(&f, &host_keys());
    assert!(
        value(&s, "KexAlgorithms")
            .unwrap()
            .starts_with("mlkem768x25519-sha256,sntrup761x25519-sha512,")
    );
    assert_eq!(value(&s, "RequiredRSASize"), Some("3072"));
}

#[test]
fn every_user_key_type_keeps_its_algorithm() {
    for (fixture, version) in [
        (DEBIAN_11, (8, 4)),
        (DEBIAN_12, (9, 2)),
        (DEBIAN_13, (10, 0)),
    ] {
        let f = facts(fixture, version);
        let keyword = f.pubkey_keyword();
        for (key_type, must) in [
            ("ssh-ed25519", vec!["ssh-ed25519"]),
            ("ecdsa-sha2-nistp256", vec!["ecdsa-sha2-nistp256"]),
            (
                "sk-ssh-ed25519@openssh.com",
                vec!["sk-ssh-ed25519@openssh.com"],
            ),
            (
                "sk-ecdsa-sha2-nistp256@openssh.com",
                vec!["sk-ecdsa-sha2-nistp256@openssh.com"],
            ),
            ("ssh-rsa", vec!["rsa-sha2-512", "rsa-sha2-256"]),
            (
                "ecdsa-sha2-nistp256-cert-v01@openssh.com",
                vec!["ecdsa-sha2-nistp256-cert-v01@openssh.com"],
            ),
        ] {
            let needs = Needs {
                user_keys: vec![("k".into(), key_type.into())],
                ..host_keys()
            };
            let (s, notes) = modern(&f, &needs);
            assert!(notes.is_empty(), "{version:?} {key_type}: {notes:?}");
            let accepted: Vec<&str> = value(&s, keyword).unwrap().split(',').collect();
            for m in must {
                assert!(
                    accepted.contains(&m),
                    "{version:?} {key_type}: {accepted:?}"
                );
            }
        }
    }
}

#[test]
fn rsa_keys_under_3072_bits_lower_required_rsa_size_with_a_note() {
    let f = facts(DEBIAN_12, (9, 2));
    for (bits, want) in [
        (2048, "2048"),
        (3071, "3071"),
        (4096, "3072"),
        (3072, "3072"),
    ] {
        let needs = Needs {
            user_keys: vec![("k".into(), "ssh-rsa".into())],
            smallest_rsa: Some(bits),
            ..host_keys()
        };
        let (s, notes) = modern(&f, &needs);
        assert_eq!(value(&s, "RequiredRSASize"), Some(want), "{bits}");
        assert_eq!(notes.len(), usize::from(bits < 3072), "{bits}: {notes:?}");
    }
}

#[test]
fn host_keys_the_user_data_gives_are_offered() {
    let f = facts(DEBIAN_12, (9, 2));
    let needs = Needs {
        host_keys: vec![(HostKeyType::Ecdsa, "ecdsa-sha2-nistp384".into())],
        certified: vec![HostKeyType::Ecdsa],
        ..Needs::default()
    };
    let (s, _) = modern(&f, &needs);
    let offered = value(&s, "HostKeyAlgorithms").unwrap();
    assert!(offered.ends_with(",ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp384"));
    assert_eq!(value(&s, "HostKey"), Some("/etc/ssh/ssh_host_ecdsa_key"));
}

#[test]
fn compatible_adds_nist_and_sha2_macs_but_never_sha1_or_cbc() {
    let f = facts(DEBIAN_12, (9, 2));
    let mut notes = Vec::new();
    let s = settings(CryptoPolicy::Compatible, &f, &host_keys(), &mut notes);
    assert!(
        value(&s, "KexAlgorithms")
            .unwrap()
            .contains("ecdh-sha2-nistp256")
    );
    assert!(value(&s, "MACs").unwrap().contains(",hmac-sha2-256,"));
    assert!(
        value(&s, "PubkeyAcceptedAlgorithms")
            .unwrap()
            .contains("ecdsa-sha2-nistp256")
    );
    assert!(value(&s, "RequiredRSASize").is_none());
    for x in &s {
        for bad in ["sha1", "cbc", "arcfour", "ssh-dss", "md5"] {
            assert!(!x.value.contains(bad), "{} {}", x.keyword, x.value);
        }
    }
    assert!(settings(CryptoPolicy::Image, &f, &host_keys(), &mut notes).is_empty());
}

#[test]
fn without_ssh_q_the_version_decides() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(dir.path()).unwrap();
    let refusing = Fake::new(|_| Err("cannot execute binary file".into()));
    let mut f = SshdFacts::probe(&refusing, &root);
    assert!(f.listed.is_none());
    f.version = Some((8, 4));
    let (s, notes) = modern(&f, &host_keys());
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("OpenSSH 8.4"), "{notes:?}");
    assert_eq!(
        value(&s, "KexAlgorithms"),
        Some(
            "curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256"
        )
    );
    // Every name the fallback gives is one the real 8.4 lists.
    let real = facts(DEBIAN_11, (8, 4)).supported();
    let known = known_for((8, 4));
    for (ours, theirs) in [
        (&known.kex, &real.kex),
        (&known.ciphers, &real.ciphers),
        (&known.macs, &real.macs),
    ] {
        for name in ours {
            assert!(theirs.contains(name), "{name} is not in 8.4's list");
        }
    }
    let real12 = facts(DEBIAN_12, (9, 2)).supported();
    for name in known_for((9, 2)).keys.iter().chain(&known_for((9, 2)).kex) {
        assert!(
            real12.keys.contains(name) || real12.kex.contains(name),
            "{name} is not in 9.2's lists"
        );
    }
}

#[test]
fn versions_from_dpkg_and_programs() {
    assert_eq!(
        version_in_program(b"\0xxOpenSSH_9.2p1 Debian-2\0"),
        Some((9, 2))
    );
    assert_eq!(
        version_in_program(b"OpenSSH_*\0OpenSSH_10.0p2\0"),
        Some((10, 0))
    );
    assert_eq!(version_in_program(b"no banner"), None);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/dpkg")).unwrap();
    std::fs::write(
        dir.path().join("var/lib/dpkg/status"),
        "Package: openssh-server\nVersion: 1:8.4p1-5+deb11u3\n\n",
    )
    .unwrap();
    let root = Root::open(dir.path()).unwrap();
    assert_eq!(dpkg_version(&root), Some((8, 4)));
}

#[test]
fn moduli_keep_only_large_groups() {
    let text = "# Time Type Tests Tries Size Generator Modulus\n\
                20220714110357 2 6 100 2047 2 E98F\n\
                20220714110357 2 6 100 3071 2 C0FF\n\
                20220714110357 2 6 100 8191 5 F00D\n";
    let filtered = filter_moduli(text).unwrap();
    assert_eq!(
        filtered,
        "# Time Type Tests Tries Size Generator Modulus\n\
         20220714110357 2 6 100 3071 2 C0FF\n\
         20220714110357 2 6 100 8191 5 F00D\n"
    );
    assert!(has_groups(&filtered));
    assert_eq!(filter_moduli(&filtered), None, "already filtered");
    let small_only = "20220714110357 2 6 100 2047 2 E98F\n";
    assert!(!has_groups(&filter_moduli(small_only).unwrap()));
}
