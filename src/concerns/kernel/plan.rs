//! The kernel settings' plan: four small files, rendered by pure
//! functions, and the sysctl file loaded on the running system.

use std::path::Path;

use log::info;

use super::{
    COREDUMP_FILE, FILESYSTEMS, FIREWIRE, LIMITS_FILE, MODPROBE_FILE, PROTOCOLS, SETTINGS,
    SYSCTL_FILE, USB_STORAGE,
};
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

/// The modprobe file: what a server never loads, each module as
/// `install X /bin/true` (exactly: Lynis 3.0.8 credits no other command
/// there, and `modprobe -n -v` then names no `.ko`, which FILE-6430 reads)
/// and blacklisted so no alias loads it either. `usb_storage` adds USB
/// storage (USB-1000), which only [`usb_storage_unused`] decides.
pub fn modprobe_text(usb_storage: bool) -> String {
    let mut out = String::from(
        "# Written by batten (batten.kernel): modules a server does not use are\n\
         # never loaded. Lynis NETW-3200: uncommon network protocols; STRG-1846:\n\
         # FireWire (its DMA reaches all memory); FILE-6430: filesystems a server\n\
         # never mounts (squashfs and udf stay for snaps and provisioning media);\n\
         # USB-1000: USB storage, only where no disk was on USB and not on a Pi.\n",
    );
    let usb: &[&str] = if usb_storage { &[USB_STORAGE] } else { &[] };
    for (lynis, modules) in [
        ("NETW-3200", PROTOCOLS),
        ("STRG-1846", FIREWIRE),
        ("FILE-6430", FILESYSTEMS),
        ("USB-1000", usb),
    ] {
        if modules.is_empty() {
            continue;
        }
        out.push_str(&format!("\n# {lynis}\n"));
        for m in modules {
            out.push_str(&format!("install {m} /bin/true\nblacklist {m}\n"));
        }
    }
    out
}

/// The block devices under `sys_class_block` (`/sys/class/block` on the
/// machine) that sit on a USB bus, by name.
pub fn usb_block_devices(sys_class_block: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(sys_class_block) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .flatten()
        .filter(|e| {
            std::fs::canonicalize(e.path()).is_ok_and(|p| {
                p.components()
                    .any(|c| c.as_os_str().to_string_lossy().starts_with("usb"))
            })
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    found
}

/// Whether USB storage can be kept out: only on the running system (an
/// image's hardware is not known), not on a Raspberry Pi, and only when no
/// disk is on USB now. The reason it stays is logged.
pub fn usb_storage_unused(root: &Root) -> bool {
    if !root.is_host() {
        return false;
    }
    if crate::input::pi_os::boot_partition(root).is_some() {
        info!(
            "USB storage stays loadable: a Raspberry Pi may boot from a USB disk (Lynis USB-1000 not kept)"
        );
        return false;
    }
    let on_usb = usb_block_devices(Path::new("/sys/class/block"));
    if !on_usb.is_empty() {
        info!(
            "USB storage stays loadable: {} is on USB (Lynis USB-1000 not kept)",
            on_usb.join(", ")
        );
        return false;
    }
    true
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
            modprobe_text(usb_storage_unused(root)),
            "modules a server never uses not loaded (Lynis NETW-3200, STRG-1846, FILE-6430, USB-1000)",
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
        let m = modprobe_text(false);
        for p in [
            "dccp",
            "sctp",
            "rds",
            "tipc",
            "firewire-core",
            "firewire-ohci",
            "cramfs",
            "freevxfs",
            "hfs",
            "hfsplus",
            "jffs2",
        ] {
            assert!(
                m.contains(&format!("\ninstall {p} /bin/true\nblacklist {p}\n")),
                "{m}"
            );
        }
        for kept in ["squashfs", "udf", "usb-storage", "usb_storage", "uas"] {
            assert!(!m.contains(&format!("install {kept} ")), "{kept}: {m}");
        }
        let with_usb = modprobe_text(true);
        assert!(
            with_usb
                .ends_with("\n# USB-1000\ninstall usb-storage /bin/true\nblacklist usb-storage\n")
        );
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
    fn usb_disks_are_found_by_their_bus() {
        let dir = tempfile::tempdir().unwrap();
        let devices = dir.path().join("devices");
        let class = dir.path().join("class");
        std::fs::create_dir_all(&class).unwrap();
        for (name, bus) in [
            (
                "sda",
                "pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host0/target0:0:0/0:0:0:0/block/sda",
            ),
            ("vda", "pci0000:00/0000:00:04.0/virtio1/block/vda"),
            (
                "mmcblk0",
                "platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0",
            ),
        ] {
            let target = devices.join(bus);
            std::fs::create_dir_all(&target).unwrap();
            std::os::unix::fs::symlink(&target, class.join(name)).unwrap();
        }
        assert_eq!(usb_block_devices(&class), ["sda"]);
        std::fs::remove_file(class.join("sda")).unwrap();
        assert!(usb_block_devices(&class).is_empty());
        assert!(usb_block_devices(&dir.path().join("absent")).is_empty());
    }

    #[test]
    fn an_image_or_a_pi_keeps_usb_storage() {
        let (_d, root) = scratch_root(&[("/etc/os-release", "ID=debian\n")]);
        assert!(!usb_storage_unused(&root), "an image's hardware is unknown");
        let actions = plan(&ud("#cloud-config\n"), &root, &mut Vec::new()).unwrap();
        let written = actions.iter().find_map(|a| match a {
            Action::Write { path, contents, .. } if path == MODPROBE_FILE => Some(contents.clone()),
            _ => None,
        });
        assert_eq!(written, Some(modprobe_text(false).into_bytes()));
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
