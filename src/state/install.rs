//! Baking batten into an image (`install`, `install --generalize`), and
//! arming it again for the next boot (`rearm`).

use super::{JOURNAL_DIR, STATE_FILE, State, StateError};
use crate::host::root::{Owner, Root};

/// batten's units as shipped in `images/`: (unit path in the root, its
/// text, the enable link `systemctl enable` makes).
pub const UNITS: &[(&str, &str, &str)] = &[
    (
        "/etc/systemd/system/batten.service",
        include_str!("../../images/batten.service"),
        "/etc/systemd/system/sysinit.target.wants/batten.service",
    ),
    (
        "/etc/systemd/system/batten-verify.service",
        include_str!("../../images/batten-verify.service"),
        "/etc/systemd/system/multi-user.target.wants/batten-verify.service",
    ),
];

/// The network stage's unit: installed but never enabled. The first stage
/// starts it when it found no local user-data; enabled, it would hold sshd
/// until the network is online on every first boot, user-data or not,
/// since systemd waits for a unit's ordering before it checks its
/// conditions.
pub const METADATA_UNIT: (&str, &str) = (
    "/etc/systemd/system/batten-metadata.service",
    include_str!("../../images/batten-metadata.service"),
);

/// The enable link older images had for the network stage: removed by
/// `install`, `rearm` and the seal (see [`METADATA_UNIT`]).
pub(crate) const OLD_METADATA_LINK: &str =
    "/etc/systemd/system/multi-user.target.wants/batten-metadata.service";

/// Units that stay on after the seal: the drift check and its timer
/// (path, text, enable link if any). The seal leaves them alone.
pub const KEPT_UNITS: &[(&str, &str, Option<&str>)] = &[
    (
        "/etc/systemd/system/batten-drift.service",
        include_str!("../../images/batten-drift.service"),
        None,
    ),
    (
        "/etc/systemd/system/batten-verify.timer",
        include_str!("../../images/batten-verify.timer"),
        Some("/etc/systemd/system/timers.target.wants/batten-verify.timer"),
    ),
];

/// Where `install` puts the binary in the root.
pub const BINARY_PATH: &str = "/usr/local/sbin/batten";

/// Make the next boot run batten again: the units' enable links back, the
/// seal cleared. Returns what it did, for the console.
pub fn rearm(root: &Root) -> Result<Vec<String>, StateError> {
    let mut done = Vec::new();
    for (path, _, link) in UNITS {
        if root.metadata(path)?.is_none() {
            done.push(format!("{path} is not installed: run `batten install --root DIR` to bake batten into the image"));
            continue;
        }
        let dir = link.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
        root.create_dir_all(
            dir,
            Owner {
                uid: 0,
                gid: 0,
                mode: 0o755,
            },
        )?;
        if root.symlink(path, link, None)? {
            done.push(format!(
                "enabled {} ({link})",
                path.rsplit('/').next().unwrap_or(path)
            ));
        }
    }
    if root.remove_file(OLD_METADATA_LINK, None)? {
        done.push(format!(
            "removed {OLD_METADATA_LINK}: the first stage starts batten-metadata.service when it finds no local user-data"
        ));
    }
    let mut state = State::load(root)?;
    if state.sealed {
        state.sealed = false;
        state.save(root)?;
        done.push("cleared the seal: the next boot runs batten".to_string());
    }
    Ok(done)
}

/// Where `install` puts batten(8), so `man batten` works on the machine.
pub const MANUAL_PATH: &str = "/usr/local/share/man/man8/batten.8";

/// Put the manual page into the image (`man batten` on the machine).
pub fn install_manual(root: &Root, page: &[u8]) -> Result<Vec<String>, StateError> {
    root.create_dir_all(
        "/usr/local/share/man/man8",
        Owner {
            uid: 0,
            gid: 0,
            mode: 0o755,
        },
    )?;
    let written = root.write_atomic(
        MANUAL_PATH,
        page,
        Owner {
            uid: 0,
            gid: 0,
            mode: 0o644,
        },
        None,
    )?;
    Ok(if written {
        vec![format!("installed {MANUAL_PATH}")]
    } else {
        Vec::new()
    })
}

/// Where the proxy keeps the keys and certificates it makes
/// (`concerns::proxy::tls::DIR`).
pub const MADE_CERTIFICATES: &str = "/etc/ssl/batten";

/// Bake batten into an image: this binary, the unit, its enable link.
/// `generalize` also makes every machine made from the image new: no host
/// keys, an empty machine-id, no batten state or generated passwords.
pub fn install(root: &Root, binary: &[u8], generalize: bool) -> Result<Vec<String>, StateError> {
    let mut done = Vec::new();
    let dir = |p: &str| {
        root.create_dir_all(
            p,
            Owner {
                uid: 0,
                gid: 0,
                mode: 0o755,
            },
        )
    };
    dir("/usr/local/sbin")?;
    if root.write_atomic(
        BINARY_PATH,
        binary,
        Owner {
            uid: 0,
            gid: 0,
            mode: 0o755,
        },
        None,
    )? {
        done.push(format!("installed {BINARY_PATH} ({} bytes)", binary.len()));
    }
    dir("/etc/systemd/system")?;
    let kept = KEPT_UNITS.iter().map(|(path, text, _)| (*path, *text, ""));
    let on_demand = std::iter::once((METADATA_UNIT.0, METADATA_UNIT.1, ""));
    for (path, text, _) in UNITS.iter().copied().chain(on_demand).chain(kept) {
        if root.write_atomic(
            path,
            text.as_bytes(),
            Owner {
                uid: 0,
                gid: 0,
                mode: 0o644,
            },
            None,
        )? {
            done.push(format!("installed {path}"));
        }
    }
    done.extend(rearm(root)?);
    dir("/etc/systemd/system/timers.target.wants")?;
    for (path, _, link) in KEPT_UNITS {
        if let Some(link) = link
            && root.symlink(path, link, None)?
        {
            done.push(format!(
                "enabled {} ({link})",
                path.rsplit('/').next().unwrap_or(path)
            ));
        }
    }
    if generalize {
        for name in root.list_dir("/etc/ssh")?.unwrap_or_default() {
            let path = format!("/etc/ssh/{name}");
            let is_file = root
                .metadata(&path)?
                .is_some_and(|m| m.kind == crate::host::root::FileKind::File);
            if name.starts_with("ssh_host_")
                && name.contains("key")
                && is_file
                && root.remove_file(&path, None)?
            {
                done.push(format!("removed {path}"));
            }
        }
        // An empty machine-id makes systemd write a new one at first boot.
        if root.metadata("/etc/machine-id")?.is_some()
            && root.write_atomic(
                "/etc/machine-id",
                b"",
                Owner {
                    uid: 0,
                    gid: 0,
                    mode: 0o444,
                },
                None,
            )?
        {
            done.push("emptied /etc/machine-id".to_string());
        }
        for path in [
            STATE_FILE,
            "/var/lib/batten/user-data",
            "/var/lib/batten/instance-data.json",
            "/var/lib/batten/credentials",
            "/var/lib/batten/sealed.json",
            "/var/lib/batten/drift.json",
            "/var/lib/batten/passwords-checked.json",
        ] {
            if root.remove_file(path, None)? {
                done.push(format!("removed {path}"));
            }
        }
        for name in root.list_dir(JOURNAL_DIR)?.unwrap_or_default() {
            root.remove_file(&format!("{JOURNAL_DIR}/{name}"), None)?;
        }
        // The proxy's made keys and certificates: each machine makes its own
        // at first boot, as with its SSH host keys.
        for name in root.list_dir(MADE_CERTIFICATES)?.unwrap_or_default() {
            let path = format!("{MADE_CERTIFICATES}/{name}");
            if (name.ends_with(".key") || name.ends_with(".crt"))
                && root.remove_file(&path, None)?
            {
                done.push(format!("removed {path}"));
            }
        }
        // cloud-init keys its per-instance work on this link; without it a
        // clone is a new instance to cloud-init too.
        if root.metadata("/var/lib/cloud/instance")?.is_some()
            && root.remove_file("/var/lib/cloud/instance", None)?
        {
            done.push("removed /var/lib/cloud/instance (cloud-init treats the next boot as a new instance)".to_string());
        }
    }
    Ok(done)
}

#[cfg(test)]
mod install_tests {
    use super::*;

    #[test]
    fn install_generalize_and_rearm_on_a_scratch_root() {
        let dir = tempfile::tempdir().unwrap();
        let p = |rel: &str| dir.path().join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(p("/etc/ssh")).unwrap();
        std::fs::create_dir_all(p("/var/lib/batten/journal")).unwrap();
        std::fs::write(p("/etc/ssh/ssh_host_ed25519_key"), "private").unwrap();
        std::fs::write(p("/etc/ssh/sshd_config"), "UsePAM yes\n").unwrap();
        std::fs::create_dir_all(p(MADE_CERTIFICATES)).unwrap();
        std::fs::write(p("/etc/ssl/batten/batten-80.key"), "private").unwrap();
        std::fs::write(p("/etc/ssl/batten/batten-80.crt"), "public").unwrap();
        std::fs::write(p("/etc/machine-id"), "0123456789abcdef0123456789abcdef\n").unwrap();
        // An image baked by an older batten, whose network stage was enabled.
        std::fs::create_dir_all(p("/etc/systemd/system/multi-user.target.wants")).unwrap();
        std::os::unix::fs::symlink(METADATA_UNIT.0, p(OLD_METADATA_LINK)).unwrap();
        std::fs::write(
            p("/var/lib/batten/state.json"),
            "{\"instance_id\":\"x\",\"sealed\":true,\"runs\":[]}",
        )
        .unwrap();
        std::fs::write(p("/var/lib/batten/journal/r1.log"), "ok").unwrap();
        let root = Root::open(dir.path()).unwrap();
        let done = install(&root, b"\x7fELF binary", true).unwrap();
        assert!(
            done.iter()
                .any(|d| d.starts_with("installed /usr/local/sbin/batten")),
            "{done:?}"
        );
        assert_eq!(
            std::fs::read_link(p(UNITS[0].2)).unwrap(),
            std::path::Path::new(UNITS[0].0)
        );
        assert!(
            std::fs::symlink_metadata(p(UNITS[1].2)).is_ok(),
            "the verify unit is enabled too"
        );
        // The network stage is there to be started, never enabled: an
        // older batten's link is gone, or sshd would wait for the network.
        assert!(p(METADATA_UNIT.0).is_file());
        assert!(std::fs::symlink_metadata(p(OLD_METADATA_LINK)).is_err());
        assert!(
            done.iter()
                .any(|d| d.starts_with(&format!("removed {OLD_METADATA_LINK}"))),
            "{done:?}"
        );
        assert!(!p("/etc/ssh/ssh_host_ed25519_key").exists());
        assert!(!p("/etc/ssl/batten/batten-80.key").exists());
        assert!(!p("/etc/ssl/batten/batten-80.crt").exists());
        assert!(p("/etc/ssh/sshd_config").exists());
        assert_eq!(std::fs::read(p("/etc/machine-id")).unwrap(), b"");
        assert!(!p("/var/lib/batten/state.json").exists());
        assert_eq!(
            std::fs::read_dir(p("/var/lib/batten/journal"))
                .unwrap()
                .count(),
            0
        );
        // Installing again changes nothing.
        assert_eq!(
            install(&root, b"\x7fELF binary", false).unwrap(),
            Vec::<String>::new()
        );

        // A sealed machine whose link was removed is armed again.
        std::fs::remove_file(p(UNITS[0].2)).unwrap();
        let mut state = State {
            instance_id: Some("i-1".into()),
            sealed: true,
            ..State::default()
        };
        state.save(&root).unwrap();
        let done = rearm(&root).unwrap();
        assert_eq!(
            done.len(),
            2,
            "the first-stage link back, the seal cleared: {done:?}"
        );
        assert!(!State::load(&root).unwrap().sealed);
        assert!(
            std::fs::symlink_metadata(p(UNITS[0].2)).is_ok(),
            "the link is back"
        );
    }
}
