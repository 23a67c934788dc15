//! What batten leaves in /etc/ssh, the homes and systemd's links, checked
//! file by file; and the rollback when the real sshd refuses the result.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use common::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn debian_ssh_unit(scratch: &Scratch) {
    std::fs::create_dir_all(scratch.join("/lib/systemd/system")).unwrap();
    std::fs::write(
        scratch.join("/lib/systemd/system/ssh.service"),
        "[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\nExecStart=/usr/sbin/sshd -D\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n",
    )
    .unwrap();
}

#[test]
fn provided_host_keys_root_redirect_and_the_service_enabled() {
    const T: &str = "provided_host_keys_root_redirect_and_the_service_enabled";
    if !privileged(T) || !have("useradd", T) || !have("ssh-keygen", T) {
        return;
    }
    let scratch = Scratch::new();
    debian_ssh_unit(&scratch);
    std::fs::create_dir_all(scratch.join("/etc/ssh")).unwrap();
    std::fs::write(
        scratch.join("/etc/ssh/sshd_config"),
        "Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n",
    )
    .unwrap();
    std::fs::write(
        scratch.join("/etc/ssh/ssh_host_rsa_key"),
        "baked into the image\n",
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let host = work.path().join("host");
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "given@image", "-f"])
            .arg(&host)
            .status()
            .unwrap()
            .success()
    );
    let private = std::fs::read_to_string(&host).unwrap();
    let public = std::fs::read_to_string(host.with_extension("pub")).unwrap();
    let indent = |t: &str| t.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let ud = scratch.user_data("ud.yaml",
        &format!(
            "#cloud-config\nssh_authorized_keys: [\"{KEY}\"]\nssh_keys:\n  ed25519_private: |\n{}  ed25519_public: {}\n",
            indent(&private),
            public.trim()
        ),
    );
    let plan = run(&["plan", "--root", &scratch.root_arg(), "--user-data", &ud]);
    assert!(plan.status.success(), "{}", text(&plan));
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("enable ssh.service"),
        "{}",
        text(&plan)
    );
    let out = run(&["run", "--root", &scratch.root_arg(), "--user-data", &ud]);
    assert!(out.status.success(), "{}", text(&out));

    // Host keys: the image's are gone, the given pair is installed, nothing generated.
    assert!(!scratch.join("/etc/ssh/ssh_host_rsa_key").exists());
    assert!(!scratch.join("/etc/ssh/ssh_host_ecdsa_key").exists());
    assert_eq!(
        std::fs::read_to_string(scratch.join("/etc/ssh/ssh_host_ed25519_key")).unwrap(),
        private
    );
    assert_eq!(mode(&scratch.join("/etc/ssh/ssh_host_ed25519_key")), 0o600);
    assert_eq!(
        mode(&scratch.join("/etc/ssh/ssh_host_ed25519_key.pub")),
        0o644
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("given@image (ED25519)"),
        "{}",
        text(&out)
    );

    // The default user's keys: its own file, its own .ssh, 0600/0700.
    let passwd = std::fs::read_to_string(scratch.join("/etc/passwd")).unwrap();
    let uid: u32 = passwd
        .lines()
        .find(|l| l.starts_with("debian:"))
        .unwrap()
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    let keys = scratch.join("/home/debian/.ssh/authorized_keys");
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), format!("{KEY}\n"));
    assert_eq!(
        (mode(&keys), std::fs::metadata(&keys).unwrap().uid()),
        (0o600, uid)
    );
    assert_eq!(mode(&scratch.join("/home/debian/.ssh")), 0o700);
    assert_eq!(
        std::fs::metadata(scratch.join("/home/debian/.ssh"))
            .unwrap()
            .uid(),
        uid
    );

    // Root gets the same key behind cloud-init's redirect, and no root login.
    let root_keys = std::fs::read_to_string(scratch.join("/root/.ssh/authorized_keys")).unwrap();
    assert!(root_keys.starts_with("no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command=\"echo 'Please login as the user \\\"debian\\\" rather than the user \\\"root\\\".';echo;sleep 10;exit 142\" ssh-ed25519 "), "{root_keys}");
    let dropin =
        std::fs::read_to_string(scratch.join("/etc/ssh/sshd_config.d/00-batten.conf")).unwrap();
    assert!(
        dropin.contains("\nPermitRootLogin no\n")
            && dropin.contains("\nPasswordAuthentication no\n"),
        "{dropin}"
    );

    // ssh.service enabled as systemctl would.
    let wants = scratch.join("/etc/systemd/system/multi-user.target.wants/ssh.service");
    assert_eq!(
        std::fs::read_link(&wants).unwrap(),
        std::path::Path::new("/lib/systemd/system/ssh.service")
    );
    assert_eq!(
        std::fs::read_link(scratch.join("/etc/systemd/system/sshd.service")).unwrap(),
        std::path::Path::new("/lib/systemd/system/ssh.service")
    );

    // And a second run changes nothing.
    let before = snapshot(scratch.path());
    let again = run(&["run", "--root", &scratch.root_arg(), "--user-data", &ud]);
    assert!(again.status.success(), "{}", text(&again));
    assert_unchanged_outside_state(&before, scratch.path(), "a second run");
}

#[test]
fn what_sshd_refuses_is_rolled_back() {
    const T: &str = "what_sshd_refuses_is_rolled_back";
    if !privileged(T) || !have("sshd", T) || !have("unshare", T) {
        return;
    }
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.join("/etc/ssh/sshd_config.d")).unwrap();
    std::fs::write(
        scratch.join("/etc/ssh/sshd_config"),
        "Include /etc/ssh/sshd_config.d/*.conf\n",
    )
    .unwrap();
    std::fs::write(
        scratch.join("/etc/ssh/sshd_config.d/50-cloud-init.conf"),
        "PasswordAuthentication yes\n",
    )
    .unwrap();
    std::fs::write(
        scratch.join("/etc/ssh/sshd_config.d/99-broken.conf"),
        "ThisIsNotAKeyword yes\n",
    )
    .unwrap();
    let ud = scratch.user_data(
        "ud.yaml",
        &format!(
            "#cloud-config\nusers: []\nssh_authorized_keys: [\"{KEY}\"]\ndisable_root: false\n"
        ),
    );
    let before = snapshot(&scratch.join("/etc"));
    let out = run(&["run", "--root", &scratch.root_arg(), "--user-data", &ud]);
    assert_eq!(out.status.code(), Some(70), "{}", text(&out));
    assert!(
        text(&out).contains("sshd refused the configuration"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("ThisIsNotAKeyword"),
        "sshd's own words are shown: {}",
        text(&out)
    );
    // Every file under /etc has its old bytes again, host keys included,
    // and nothing new is left (directories' times may differ).
    let files = |snap: std::collections::BTreeMap<std::path::PathBuf, Seen>| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        snap.into_iter().filter(|(_, s)| s.kind != "dir").map(|(p, s)| (p, s.content)).collect()
    };
    assert_eq!(files(snapshot(&scratch.join("/etc"))), files(before));
    assert_eq!(
        std::fs::read_to_string(scratch.join("/etc/ssh/sshd_config.d/50-cloud-init.conf")).unwrap(),
        "PasswordAuthentication yes\n"
    );
    assert!(
        !scratch
            .join("/etc/ssh/sshd_config.d/00-batten.conf")
            .exists()
    );
    assert!(!scratch.join("/root/.ssh/authorized_keys").exists());
}

/// A Match block the plan cannot judge (it turns key login off for the
/// only account) is caught by sshd -T before the run is final.
#[test]
fn a_match_block_that_locks_the_owner_out_is_caught() {
    const T: &str = "a_match_block_that_locks_the_owner_out_is_caught";
    if !privileged(T) || !have("sshd", T) || !have("useradd", T) {
        return;
    }
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.join("/etc/ssh/sshd_config.d")).unwrap();
    std::fs::write(
        scratch.join("/etc/ssh/sshd_config"),
        "Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n",
    )
    .unwrap();
    std::fs::write(
        scratch.join("/etc/ssh/sshd_config.d/50-image.conf"),
        "Match User alice\n    PubkeyAuthentication no\n",
    )
    .unwrap();
    let ud = scratch.user_data(
        "ud.yaml",
        &format!("#cloud-config\nusers:\n  - {{name: alice, ssh_authorized_keys: [\"{KEY}\"]}}\n"),
    );
    let out = scratch.batten("run", &ud, &[]);
    assert_eq!(out.status.code(), Some(70), "{}", text(&out));
    assert!(
        text(&out).contains("alice: PubkeyAuthentication is off for it"),
        "{}",
        text(&out)
    );
    assert!(
        !scratch
            .join("/etc/ssh/sshd_config.d/00-batten.conf")
            .exists(),
        "passwords must stay as they were"
    );
}

/// Host keys the baseline made before any user-data (a generalized image
/// waiting for its metadata service, or refused user-data) belong to this
/// boot: the run that follows in the same boot keeps those of a type it
/// wants, since sshd may already have shown them, makes the others it wants
/// and removes the rest. Keys the image shipped are replaced as on any
/// first run, and so are keys recorded for another boot (a clone of the
/// disk).
#[test]
fn host_keys_the_baseline_made_are_kept_by_a_run_in_the_same_boot() {
    const T: &str = "host_keys_the_baseline_made_are_kept_by_a_run_in_the_same_boot";
    if !privileged(T) || !have("useradd", T) || !have("nft", T) {
        return;
    }
    const ED25519: &str = "ssh_host_ed25519_key";
    const ECDSA: &str = "ssh_host_ecdsa_key";
    const RSA: &str = "ssh_host_rsa_key";
    struct Case {
        /// Host keys the image ships (the rest are deleted first).
        image: &'static [&'static str],
        /// A record for another boot put in place before the run.
        other_boot: bool,
        /// `ssh_genkeytypes` of the run.
        types: &'static str,
        /// Whether the baseline's ed25519 key is still there unchanged.
        kept: bool,
        /// The private keys there afterwards.
        want: &'static [&'static str],
    }
    let cases = [
        Case {
            image: &[],
            other_boot: false,
            types: "[ed25519, ecdsa]",
            kept: true,
            want: &[ECDSA, ED25519],
        },
        Case {
            image: &[],
            other_boot: false,
            types: "[ecdsa]",
            kept: false,
            want: &[ECDSA],
        },
        Case {
            image: &[],
            other_boot: true,
            types: "[ed25519]",
            kept: false,
            want: &[ED25519],
        },
        // The image's own RSA and ECDSA keys are not the baseline's.
        Case {
            image: &[RSA, ECDSA],
            other_boot: false,
            types: "[rsa, ecdsa, ed25519]",
            kept: true,
            want: &[ECDSA, ED25519, RSA],
        },
    ];
    for case in cases {
        let what = format!(
            "image {:?}, other boot {}, {}",
            case.image, case.other_boot, case.types
        );
        let scratch = Scratch::new();
        for name in host_keys(scratch.path()).keys() {
            if !case.image.iter().any(|k| name.starts_with(k)) {
                std::fs::remove_file(scratch.join(&format!("/etc/ssh/{name}"))).unwrap();
            }
        }
        let shipped = host_keys(scratch.path());
        assert_eq!(shipped.len(), case.image.len() * 2, "{what}: {shipped:?}");
        let out = run(&["run", "--root", &scratch.root_arg()]);
        assert!(out.status.success(), "{what}: {}", text(&out));
        let made = host_keys(scratch.path());
        assert!(
            made.contains_key(ED25519),
            "{what}: the baseline makes an ed25519 key"
        );
        assert_eq!(made.len(), shipped.len() + 2, "{what}: only that: {made:?}");
        let state_file = scratch.join("/var/lib/batten/state.json");
        let mut state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
        assert!(
            state["host_keys_instance"]
                .as_str()
                .is_some_and(|s| s.starts_with("boot:")),
            "{what}: {state:#}"
        );
        if case.other_boot {
            state["host_keys_instance"] = "boot:another-boot".into();
            std::fs::write(&state_file, state.to_string()).unwrap();
        }
        let ud = scratch.user_data(
            "owner.yaml",
            &format!(
                "#cloud-config\nusers:\n  - {{name: owner, ssh_authorized_keys: [\"{KEY}\"]}}\nssh_genkeytypes: {}\n",
                case.types
            ),
        );
        let out = scratch.batten("run", &ud, &[]);
        assert!(out.status.success(), "{what}: {}", text(&out));
        let after = host_keys(scratch.path());
        let private: Vec<&str> = after
            .keys()
            .map(String::as_str)
            .filter(|k| !k.ends_with(".pub"))
            .collect();
        assert_eq!(private, case.want, "{what}");
        assert_eq!(
            made.get(ED25519) == after.get(ED25519),
            case.kept,
            "{what}: the baseline's ed25519 key kept?"
        );
        for (name, bytes) in &shipped {
            assert_ne!(
                after.get(name),
                Some(bytes),
                "{what}: the image's {name} was kept"
            );
        }
    }
}
