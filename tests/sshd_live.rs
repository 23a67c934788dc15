//! The real sshd on the configuration batten wrote, reached with the real
//! ssh client from another network namespace: keys get in, passwords do
//! not, whatever the image shipped.
//!
//! sshd runs in a private mount namespace where the scratch root's
//! /etc/ssh, account files and /home are bind-mounted over the machine's,
//! so it reads exactly what batten wrote and nothing on the host changes.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::net::{self, Daemon, Pair};
use common::*;

/// "Tr0ub4dor&3", SHA-512 crypt.
const HASH: &str = "$6$5pQ2vA9xKq$epS4X.7G3HpDOM7J4ecJlex5bWIQRNZ8N3EabU1Ee0fF1DXwHkkHjUw1XShpU8CB8ALRA2He8x.ryHSYLz3YM1";
const PASSWORD: &str = "Tr0ub4dor&3";

/// Bind the scratch root's files over the machine's, then run a program.
const IN_SCRATCH: &str = "set -e
R=\"$1\"; shift
for f in passwd group shadow gshadow; do mount --bind \"$R/etc/$f\" \"/etc/$f\"; done
mount --bind \"$R/etc/ssh\" /etc/ssh
mount --bind \"$R/home\" /home
mount -t tmpfs -o mode=0755 batten-test-run /run
mkdir -m 0755 /run/sshd
exec \"$@\"";

fn in_scratch(pair: &Pair, scratch: &Scratch, seconds: u32, argv: &[&str]) -> Command {
    let mut c = pair.in_server_mounts(seconds, IN_SCRATCH);
    c.arg(scratch.path());
    c.args(argv);
    c
}

fn start_sshd(pair: &Pair, scratch: &Scratch, extra: &[&str], log: &Path) -> Daemon {
    let mut argv = vec!["/usr/sbin/sshd", "-D", "-e"];
    argv.extend_from_slice(extra);
    let child = in_scratch(pair, scratch, 120, &argv)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("sshd starts");
    Daemon(child)
}

struct Client<'a> {
    pair: &'a Pair,
    key: &'a Path,
    known_hosts: &'a Path,
}

impl Client<'_> {
    fn ssh(&self, user: &str, port: u16, options: &[&str], password: Option<&str>) -> Output {
        let port = port.to_string();
        let kh = format!("UserKnownHostsFile={}", self.known_hosts.display());
        let mut args: Vec<&str> = vec![
            "-p",
            &port,
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &kh,
            "-o",
            "ConnectTimeout=5",
            "-o",
            "NumberOfPasswordPrompts=1",
        ];
        args.extend_from_slice(options);
        let dest = format!("{user}@{}", net::SERVER_V4);
        args.extend([dest.as_str(), "id", "-un"]);
        let mut cmd = match password {
            Some(p) => {
                let mut c = self.pair.in_client(20, "sshpass");
                c.args(["-p", p, "ssh"]);
                c
            }
            None => {
                let mut c = self.pair.in_client(20, "ssh");
                // Only this key: MaxAuthTries 3 counts every key offered.
                c.args(["-i", &self.key.display().to_string(), "-o", "BatchMode=yes"]);
                c.args(["-o", "IdentitiesOnly=yes"]);
                c
            }
        };
        cmd.args(&args).output().unwrap()
    }
}

fn password_only() -> [&'static str; 4] {
    [
        "-o",
        "PreferredAuthentications=password",
        "-o",
        "PubkeyAuthentication=no",
    ]
}

fn kbd_only() -> [&'static str; 4] {
    [
        "-o",
        "PreferredAuthentications=keyboard-interactive",
        "-o",
        "PubkeyAuthentication=no",
    ]
}

#[test]
fn keys_get_in_and_passwords_do_not() {
    const T: &str = "keys_get_in_and_passwords_do_not";
    if !privileged(T)
        || !have("sshd", T)
        || !have("ssh", T)
        || !have("sshpass", T)
        || !have("ip", T)
        || !have("unshare", T)
    {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    // Safety rule 7 under the default (modern) crypto policy: an ECDSA key
    // (what a phone makes) and a 2048-bit RSA key get in as well as the
    // ed25519 one, though the policy itself names neither.
    let keygen = |name: &str, args: &[&str]| {
        let key = work.path().join(name);
        assert!(
            Command::new("ssh-keygen")
                .args(["-q", "-N", "", "-C", name])
                .args(args)
                .arg("-f")
                .arg(&key)
                .status()
                .unwrap()
                .success()
        );
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        (key, public.trim().to_string())
    };
    let (key, public) = keygen("id_ed25519", &["-t", "ed25519"]);
    let (ecdsa_key, ecdsa_public) = keygen("id_ecdsa", &["-t", "ecdsa", "-b", "256"]);
    let (rsa_key, rsa_public) = keygen("id_rsa", &["-t", "rsa", "-b", "2048"]);

    let scratch = Scratch::new();
    // What a careless image ships: a cloud-init drop-in allowing passwords,
    // and root with a password.
    std::fs::create_dir_all(scratch.join("/etc/ssh/sshd_config.d")).unwrap();
    std::fs::write(
        scratch.join("/etc/ssh/sshd_config.d/50-cloud-init.conf"),
        "PasswordAuthentication yes\n",
    )
    .unwrap();
    let shadow = std::fs::read_to_string(scratch.join("/etc/shadow")).unwrap();
    let shadow = batten::concerns::accounts::set_shadow_field(&shadow, "root", HASH).unwrap();
    std::fs::write(scratch.join("/etc/shadow"), shadow).unwrap();
    let ud = scratch.user_data("ud.yaml", &format!(
            "#cloud-config\nusers:\n  - name: alice\n    shell: /bin/bash\n    lock_passwd: false\n    hashed_passwd: \"{HASH}\"\n    ssh_authorized_keys: [\"{public}\", \"{ecdsa_public}\", \"{rsa_public}\"]\nssh_pwauth: false\ndisable_root: false\n",
        ));
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        printed.contains("-----BEGIN SSH HOST KEY FINGERPRINTS-----"),
        "{printed}"
    );

    // The fingerprint printed is the one ssh-keygen sees on the new key.
    let keygen = Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(scratch.join("/etc/ssh/ssh_host_ed25519_key.pub"))
        .output()
        .unwrap();
    assert!(keygen.status.success(), "ssh-keygen -l: {}", text(&keygen));
    let line = String::from_utf8_lossy(&keygen.stdout).trim().to_string();
    assert!(line.contains("SHA256:"), "{line}");
    assert!(
        printed.contains(&line),
        "ssh-keygen says {line}; batten printed {printed}"
    );

    // The client trusts only the host key batten made.
    let host_pub =
        std::fs::read_to_string(scratch.join("/etc/ssh/ssh_host_ed25519_key.pub")).unwrap();
    let known_hosts = work.path().join("known_hosts");
    let mut kh = String::new();
    // ssh writes port 22 without brackets.
    kh.push_str(&format!("{} {}", net::SERVER_V4, host_pub));
    kh.push_str(&format!("[{}]:2222 {}", net::SERVER_V4, host_pub));
    std::fs::write(&known_hosts, kh).unwrap();

    let pair = Pair::new("sshd");
    let log = work.path().join("sshd.log");
    let _sshd = start_sshd(&pair, &scratch, &[], &log);
    // A control sshd on 2222 with passwords forced on: proves the password
    // is right, so the refusal on 22 means something.
    let control_log = work.path().join("control.log");
    let _control = start_sshd(
        &pair,
        &scratch,
        &[
            "-p",
            "2222",
            "-o",
            "PasswordAuthentication=yes",
            "-o",
            "KbdInteractiveAuthentication=yes",
            "-o",
            "PermitRootLogin=yes",
        ],
        &control_log,
    );
    net::wait_for_port(&pair, net::SERVER_V4, 22, Duration::from_secs(20));
    net::wait_for_port(&pair, net::SERVER_V4, 2222, Duration::from_secs(20));
    let client = Client {
        pair: &pair,
        key: &key,
        known_hosts: &known_hosts,
    };
    let sshd_log = || std::fs::read_to_string(&log).unwrap_or_default();

    for (kind, key) in [
        ("ed25519", &key),
        ("ECDSA", &ecdsa_key),
        ("RSA 2048", &rsa_key),
    ] {
        let with = Client { key, ..client };
        let ok = with.ssh("alice", 22, &[], None);
        assert!(
            ok.status.success(),
            "{kind} key login failed under the modern policy: {}\nsshd: {}",
            text(&ok),
            sshd_log()
        );
        assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "alice");
    }
    // What a scanner sees from outside: ssh-audit finds no failure and the
    // sshd passes its built-in Hardened Debian 12 policy (version 3 where
    // the OpenSSH has the standard sntrup761 name, as Debian 12's now has;
    // version 2 for an older 9.2 build).
    if let Some(audit) = ssh_audit(T) {
        let out = client
            .pair
            .in_client(120, &audit)
            .args(["-n", net::SERVER_V4])
            .output()
            .unwrap();
        // Its exit codes: 0 all good, 2 warnings only, 3 a failure.
        assert!(
            matches!(out.status.code(), Some(0 | 2)) && !text(&out).contains("[fail]"),
            "ssh-audit reports failures:\n{}",
            text(&out)
        );
        let policy = |name: &str| {
            client
                .pair
                .in_client(120, &audit)
                .args(["-P", name, net::SERVER_V4])
                .output()
                .unwrap()
        };
        let v3 = policy("Hardened Debian 12 (version 3)");
        let v2 = policy("Hardened Debian 12 (version 2)");
        assert!(
            v3.status.success() || v2.status.success(),
            "the Hardened Debian 12 policy fails:\n{}\n{}",
            text(&v3),
            text(&v2)
        );
    }
    // LogLevel VERBOSE: each login's key is in sshd's log.
    assert!(
        sshd_log().contains("Accepted key ECDSA SHA256:"),
        "{}",
        sshd_log()
    );

    let control = client.ssh("alice", 2222, &password_only(), Some(PASSWORD));
    assert!(
        control.status.success(),
        "the control sshd refused the right password: {}",
        text(&control)
    );
    let control_root = client.ssh("root", 2222, &password_only(), Some(PASSWORD));
    assert!(
        control_root.status.success(),
        "root's password is right: {}",
        text(&control_root)
    );

    for (user, opts) in [
        ("alice", password_only()),
        ("alice", kbd_only()),
        ("root", password_only()),
        ("root", kbd_only()),
    ] {
        let out = client.ssh(user, 22, &opts, Some(PASSWORD));
        assert!(
            !out.status.success(),
            "{user} got in with a password ({opts:?})"
        );
        assert!(text(&out).contains("Permission denied"), "{}", text(&out));
    }

    // sshd's own view of the effective configuration.
    let t = in_scratch(
        &pair,
        &scratch,
        20,
        &[
            "/usr/sbin/sshd",
            "-T",
            "-C",
            "user=alice,host=client,addr=198.51.100.2",
        ],
    )
    .output()
    .unwrap();
    let effective = String::from_utf8_lossy(&t.stdout).to_string();
    for line in [
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "permitemptypasswords no",
        "pubkeyauthentication yes",
        "permitrootlogin without-password",
        // The modern crypto policy, cut down to this sshd's lists.
        "kexalgorithms sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256",
        "ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-gcm@openssh.com,aes128-ctr",
        "macs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com",
        "hostkeyalgorithms sk-ssh-ed25519-cert-v01@openssh.com,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,ssh-ed25519,rsa-sha2-512,rsa-sha2-256",
        // ... with the ECDSA user key's algorithm added (safety rule 7).
        "pubkeyacceptedalgorithms sk-ssh-ed25519-cert-v01@openssh.com,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,ssh-ed25519,rsa-sha2-512,rsa-sha2-256,ecdsa-sha2-nistp256",
        // The 2048-bit key sets the floor rather than being locked out.
        "requiredrsasize 2048",
        "loglevel VERBOSE",
        "maxauthtries 3",
        "logingracetime 30",
        "x11forwarding no",
        "permituserenvironment no",
        "clientaliveinterval 300",
        "clientalivecountmax 2",
        "maxstartups 10:30:60",
        "compression no",
        "tcpkeepalive no",
        "hostkey /etc/ssh/ssh_host_ed25519_key",
        "hostkey /etc/ssh/ssh_host_rsa_key",
    ] {
        assert!(
            effective.lines().any(|l| l == line),
            "sshd -T lacks `{line}`:\n{}",
            text(&t)
        );
    }
    assert!(
        !effective.contains("ecdsa_key"),
        "no ECDSA host key is served:\n{effective}"
    );
    assert!(
        !scratch.join("/etc/ssh/ssh_host_ecdsa_key").exists(),
        "no ECDSA host key is made under the modern policy"
    );
    let rsa_host = Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(scratch.join("/etc/ssh/ssh_host_rsa_key.pub"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&rsa_host.stdout).starts_with("4096 "),
        "{}",
        text(&rsa_host)
    );
    let moduli = std::fs::read_to_string(scratch.join("/etc/ssh/moduli")).unwrap();
    assert!(
        moduli.lines().filter(|l| !l.starts_with('#')).all(|l| l
            .split_whitespace()
            .nth(4)
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 3071),
        "moduli under 3072 bits are gone"
    );
    let cloud =
        std::fs::read_to_string(scratch.join("/etc/ssh/sshd_config.d/50-cloud-init.conf")).unwrap();
    assert_eq!(cloud, "# disabled by batten: PasswordAuthentication yes\n");

    // Running again changes nothing outside batten's own state.
    let before = snapshot(scratch.path());
    let again = scratch.batten("run", &ud, &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        !String::from_utf8_lossy(&again.stdout).contains("FINGERPRINTS"),
        "host keys were made again"
    );
    assert_unchanged_outside_state(&before, scratch.path(), "a second run");
}

#[test]
fn no_usable_key_means_sshd_is_left_alone() {
    let scratch = Scratch::new();
    let ud = scratch.user_data("nokey.yaml", "#cloud-config\nusers:\n  - name: alice\n  - {name: bob, shell: /usr/sbin/nologin, ssh_authorized_keys: [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGBfY5Y7Dp1Dn4a4y6iJbBvYxVKJWB3H0cQ2m9bq6Tq3 b@x\"]}\nssh_pwauth: false\n");
    let before = snapshot(scratch.path());
    let out = scratch.batten("run", &ud, &[]);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("refusing to turn SSH password login off"), "{t}");
    assert!(
        t.contains("alice (no key)") && t.contains("bob (its shell is /usr/sbin/nologin)"),
        "{t}"
    );
    assert_unchanged(&before, scratch.path());
}

#[test]
fn a_symlinked_dot_ssh_is_refused() {
    if !privileged("a_symlinked_dot_ssh_is_refused") || !have("useradd", "symlinked .ssh") {
        return;
    }
    let scratch = Scratch::new();
    let outside = tempfile::tempdir().unwrap();
    // First run makes carol; then someone plants a link as her ~/.ssh.
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGBfY5Y7Dp1Dn4a4y6iJbBvYxVKJWB3H0cQ2m9bq6Tq3 c@x";
    let ud = scratch.user_data(
        "carol.yaml",
        &format!("#cloud-config\nusers:\n  - {{name: carol, ssh_authorized_keys: [\"{key}\"]}}\n"),
    );
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_dir_all(scratch.join("/home/carol/.ssh")).unwrap();
    std::os::unix::fs::symlink(outside.path(), scratch.join("/home/carol/.ssh")).unwrap();
    let key2 =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAk9Qs4yULPnBEL2jFlPsC2H3I4WOYzuA5lS2rMKvvgd d@x";
    std::fs::write(
        &ud,
        format!("#cloud-config\nusers:\n  - {{name: carol, ssh_authorized_keys: [\"{key2}\"]}}\n"),
    )
    .unwrap();
    let out = scratch.batten("run", &ud, &["--force"]);
    assert_eq!(out.status.code(), Some(70), "{}", text(&out));
    assert!(
        text(&out).contains("/home/carol/.ssh is a symbolic link"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "batten wrote through the link"
    );
}

/// `ssh_keys` with a host certificate, made by the real `ssh-keygen -s -h`:
/// sshd serves it, so a client that trusts only the certificate authority
/// (`@cert-authority` in known_hosts, no host key) connects, and one that
/// trusts another authority does not.
#[test]
fn a_host_certificate_from_ssh_keys_is_served() {
    const T: &str = "a_host_certificate_from_ssh_keys_is_served";
    if !privileged(T)
        || !have("sshd", T)
        || !have("ssh", T)
        || !have("ssh-keygen", T)
        || !have("ip", T)
        || !have("unshare", T)
        || !have("useradd", T)
    {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let keygen = |args: &[&str], file: &str| {
        let out = Command::new("ssh-keygen")
            .args(args)
            .arg(work.path().join(file))
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-keygen {args:?}: {}", text(&out));
    };
    for (name, comment) in [
        ("user", "alice@laptop"),
        ("host", "root@host"),
        ("ca", "ca"),
        ("other-ca", "ca"),
    ] {
        keygen(
            &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"],
            name,
        );
    }
    let ca = work.path().join("ca").display().to_string();
    keygen(
        &[
            "-q",
            "-s",
            &ca,
            "-I",
            "test-host",
            "-h",
            "-n",
            net::SERVER_V4,
        ],
        "host.pub",
    );
    let read = |file: &str| std::fs::read_to_string(work.path().join(file)).unwrap();
    let indent = |text: String| -> String { text.lines().map(|l| format!("    {l}\n")).collect() };
    let scratch = Scratch::new();
    let ud = scratch.user_data(
        "cert.yaml",
        &format!(
            "#cloud-config\nusers:\n  - name: alice\n    shell: /bin/bash\n    ssh_authorized_keys: [\"{}\"]\nssh_pwauth: false\nssh_keys:\n  ed25519_private: |\n{}  ed25519_public: \"{}\"\n  ed25519_certificate: \"{}\"\n",
            read("user.pub").trim(),
            indent(read("host")),
            read("host.pub").trim(),
            read("host-cert.pub").trim(),
        ),
    );
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let written =
        std::fs::read_to_string(scratch.join("/etc/ssh/ssh_host_ed25519_key-cert.pub")).unwrap();
    assert_eq!(written, read("host-cert.pub"));
    let report = run(&["verify", "--root", &scratch.root_arg(), "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "hostkeys.ssh_host_ed25519_key-cert.pub" && c["status"] == "pass"),
        "{report:#}"
    );

    let pair = Pair::new("hostcert");
    let log = work.path().join("sshd.log");
    let _sshd = start_sshd(&pair, &scratch, &[], &log);
    net::wait_for_port(&pair, net::SERVER_V4, 22, Duration::from_secs(20));
    let login = |authority: &str| {
        let known_hosts = work.path().join(format!("known_hosts-{authority}"));
        std::fs::write(
            &known_hosts,
            format!(
                "@cert-authority {} {}",
                net::SERVER_V4,
                read(&format!("{authority}.pub"))
            ),
        )
        .unwrap();
        Client {
            pair: &pair,
            key: &work.path().join("user"),
            known_hosts: &known_hosts,
        }
        .ssh("alice", 22, &[], None)
    };
    let trusted = login("ca");
    assert!(
        trusted.status.success(),
        "the certificate's authority is trusted, yet: {}\nsshd: {}",
        text(&trusted),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(String::from_utf8_lossy(&trusted.stdout).trim(), "alice");
    let untrusted = login("other-ca");
    assert!(
        !untrusted.status.success(),
        "another authority was accepted"
    );
    assert!(
        text(&untrusted).contains("Host key verification failed"),
        "{}",
        text(&untrusted)
    );
    // sshd's own view lists the certificate, and a second run changes nothing.
    let t = in_scratch(&pair, &scratch, 20, &["/usr/sbin/sshd", "-T"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&t.stdout)
            .lines()
            .any(|l| l == "hostcertificate /etc/ssh/ssh_host_ed25519_key-cert.pub"),
        "{}",
        text(&t)
    );
    let before = snapshot(scratch.path());
    let again = scratch.batten("run", &ud, &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert_unchanged_outside_state(&before, scratch.path(), "a second run");
}
