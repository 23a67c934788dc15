//! The kernel settings' plan: four small files, rendered by pure
//! functions, and the sysctl file loaded on the running system.

use super::{COREDUMP_FILE, LIMITS_FILE, MODPROBE_FILE, PROTOCOLS, SETTINGS, SYSCTL_FILE};
use crate::host::root::{Owner, Root};
use crate::input::model::UserData;
use crate::plan::{Action, PlanError};

const ROOT_0644: Owner = Owner {
    uid: 0,
    gid: 0,
    mode: 0o644,
};

/// The sysctl file: each setting under a comment naming its Lynis test
/// (systemd-sysctl and procps take comments on lines of their own only).
pub fn sysctl_text() -> String {
    let mut out = String::from(
        "# Written by batten (batten.kernel): kernel settings that cost a server\n\
         # nothing, each under the Lynis test that looks for it. Forwarding,\n\
         # strict rp_filter, sysrq and module loading stay as the image has them.\n",
    );
    for s in SETTINGS {
        out.push_str(&format!(
            "\n# {}: {}\n{} = {}\n",
            s.lynis, s.why, s.key, s.value
        ));
    }
    out
}

/// The modprobe file: the uncommon protocols are never loaded, in the form
/// Lynis NETW-3200 reads (`install X /bin/true`, exactly: 3.0.8 credits no
/// other command there), and blacklisted so no
/// alias loads them either.
pub fn modprobe_text() -> String {
    let mut out = String::from(
        "# Written by batten (batten.kernel): network protocols a server does not\n\
         # use are never loaded (Lynis NETW-3200).\n",
    );
    for p in PROTOCOLS {
        out.push_str(&format!("install {p} /bin/true\nblacklist {p}\n"));
    }
    out
}

/// The limits file: no core files for anyone (Lynis KRNL-5820 reads
/// `* hard core 0` in limits.conf and limits.d).
pub fn limits_text() -> String {
    "# Written by batten (batten.kernel): no core dumps (Lynis KRNL-5820).\n\
     * soft core 0\n\
     * hard core 0\n"
        .to_string()
}

/// systemd-coredump's drop-in: nothing stored (Lynis KRNL-5820 credits
/// `Storage=none` with `ProcessSizeMax=0`).
pub fn coredump_text() -> String {
    "# Written by batten (batten.kernel): no core dumps stored (Lynis KRNL-5820).\n\
     [Coredump]\n\
     Storage=none\n\
     ProcessSizeMax=0\n"
        .to_string()
}

/// Plan the kernel settings: the files, and on the running system the
/// sysctl file loaded (whenever batten runs, since the kernel may hold
/// other values than the file says).
pub fn plan(ud: &UserData, root: &Root, notes: &mut Vec<String>) -> Result<Vec<Action>, PlanError> {
    if !ud.batten.kernel.enabled {
        notes.push("WARNING: the kernel settings are off (batten.kernel.enabled: false): ICMP redirects, source routing, kernel pointers and setuid core dumps stay as the image has them".into());
        return Ok(Vec::new());
    }
    let mut actions = Vec::new();
    for (path, text, why) in [
        (
            SYSCTL_FILE,
            sysctl_text(),
            "kernel settings that cost a server nothing (Lynis KRNL-6000, KRNL-5820)",
        ),
        (
            MODPROBE_FILE,
            modprobe_text(),
            "uncommon network protocols never loaded (Lynis NETW-3200)",
        ),
        (
            LIMITS_FILE,
            limits_text(),
            "no core dumps (Lynis KRNL-5820)",
        ),
        (
            COREDUMP_FILE,
            coredump_text(),
            "systemd-coredump stores no core (Lynis KRNL-5820)",
        ),
    ] {
        actions.extend(Action::write_if_changed(
            root,
            path,
            text.into_bytes(),
            ROOT_0644,
            false,
            why,
        )?);
    }
    if root.is_host() {
        actions.push(Action::LoadSysctl {
            path: SYSCTL_FILE.to_string(),
        });
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    fn ud(text: &str) -> UserData {
        crate::input::load("u", text.as_bytes()).unwrap().user_data
    }

    #[test]
    fn every_setting_is_under_its_lynis_id_and_nothing_routes() {
        let text = sysctl_text();
        assert!(text.contains(
            "\n# KRNL-6000: ICMP redirects cannot reroute this host's traffic\nnet.ipv4.conf.all.accept_redirects = 0\n"
        ), "{text}");
        assert!(text.contains(
            "\n# KRNL-5820, KRNL-6000: setuid programs never dump core\nfs.suid_dumpable = 0\n"
        ));
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (key, value) = line.split_once(" = ").unwrap();
            assert!(
                !value.is_empty() && !key.contains(char::is_whitespace),
                "{line}"
            );
        }
        let settings: String = text.lines().filter(|l| !l.starts_with('#')).collect();
        for key in [
            "ip_forward",
            "forwarding",
            "rp_filter",
            "sysrq",
            "modules_disabled",
        ] {
            assert!(
                !settings.contains(key),
                "{key} changes routing or costs something"
            );
        }
        for key in [
            "net.ipv4.tcp_syncookies = 1",
            "kernel.kptr_restrict = 2",
            "kernel.dmesg_restrict = 1",
            "fs.protected_hardlinks = 1",
            "fs.protected_symlinks = 1",
            "fs.protected_fifos = 2",
            "fs.protected_regular = 2",
            "kernel.unprivileged_bpf_disabled = 1",
            "net.ipv6.conf.default.accept_source_route = 0",
            "net.ipv4.conf.all.log_martians = 1",
        ] {
            assert!(text.contains(&format!("{key}\n")), "{key}");
        }
    }

    #[test]
    fn the_other_files_in_the_forms_lynis_reads() {
        let m = modprobe_text();
        for p in ["dccp", "sctp", "rds", "tipc"] {
            assert!(
                m.contains(&format!("\ninstall {p} /bin/true\nblacklist {p}\n")),
                "{m}"
            );
        }
        assert!(limits_text().contains("\n* hard core 0\n"));
        assert!(coredump_text().contains("[Coredump]\nStorage=none\nProcessSizeMax=0\n"));
    }

    #[test]
    fn an_image_gets_the_files_and_nothing_loaded() {
        let (_d, root) = scratch_root(&[("/etc/os-release", "ID=debian\n")]);
        let mut notes = Vec::new();
        let actions = plan(&ud("#cloud-config\n"), &root, &mut notes).unwrap();
        let paths: Vec<String> = actions
            .iter()
            .map(|a| match a {
                Action::Write { path, owner, .. } => {
                    assert_eq!(*owner, ROOT_0644);
                    path.clone()
                }
                other => panic!("an image plans no {other:?}"),
            })
            .collect();
        assert_eq!(
            paths,
            [SYSCTL_FILE, MODPROBE_FILE, LIMITS_FILE, COREDUMP_FILE]
        );
        assert!(notes.is_empty());
    }

    #[test]
    fn the_running_system_loads_the_file_last() {
        // Planning only reads: the running system's root is safe to plan for.
        let root = Root::open(std::path::Path::new("/")).unwrap();
        assert!(root.is_host());
        let actions = plan(&ud("#cloud-config\n"), &root, &mut Vec::new()).unwrap();
        assert_eq!(
            actions.last(),
            Some(&Action::LoadSysctl {
                path: SYSCTL_FILE.to_string()
            })
        );
        let text = crate::plan::Plan {
            actions,
            notes: Vec::new(),
        }
        .render();
        assert!(
            text.contains(
                "$ sysctl -p /etc/sysctl.d/zz-batten.conf   (only on the running system)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn off_is_a_warning_and_nothing() {
        let (_d, root) = scratch_root(&[("/etc/os-release", "ID=debian\n")]);
        let mut notes = Vec::new();
        let actions = plan(
            &ud("#cloud-config\nbatten:\n  kernel: {enabled: false}\n"),
            &root,
            &mut notes,
        )
        .unwrap();
        assert!(actions.is_empty());
        assert!(
            notes[0].starts_with("WARNING: the kernel settings are off"),
            "{notes:?}"
        );
    }
}
