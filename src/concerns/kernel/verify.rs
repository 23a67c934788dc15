//! Checking the kernel settings: the files in place (an image, and the
//! running system), and on the running system the live values read back
//! from `/proc/sys`.

use std::path::Path;

use super::plan::{coredump_text, limits_text, modprobe_text, sysctl_text};
use super::{COREDUMP_FILE, LIMITS_FILE, MODPROBE_FILE, SETTINGS, SYSCTL_FILE, Setting};
use crate::concerns::report::{Inputs, Report, Status};

/// The live value of `key` under `proc_sys` (`/proc/sys` on the machine),
/// whitespace collapsed; `None` when this kernel has no such setting.
pub fn live_value(proc_sys: &Path, key: &str) -> Option<String> {
    let path = proc_sys.join(key.replace('.', "/"));
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Every setting whose live value differs from batten's, and every one
/// this kernel lacks.
pub fn compare(proc_sys: &Path, settings: &[Setting]) -> (Vec<String>, Vec<String>) {
    let (mut differ, mut missing) = (Vec::new(), Vec::new());
    for s in settings {
        match live_value(proc_sys, s.key) {
            None => missing.push(s.key.to_string()),
            Some(v) if v != s.value => differ.push(format!("{} is {v}, not {}", s.key, s.value)),
            Some(_) => {}
        }
    }
    (differ, missing)
}

/// Every check of the kernel settings.
pub fn verify(inp: &Inputs, r: &mut Report) {
    if !inp.user_data.batten.kernel.enabled {
        r.add(
            "kernel",
            Status::Warn,
            "kernel settings",
            "off in user-data: ICMP redirects, source routing, kernel pointers and setuid core dumps are as the image has them",
        );
        return;
    }
    for (path, texts, lynis) in [
        (SYSCTL_FILE, vec![sysctl_text()], "KRNL-6000"),
        (
            MODPROBE_FILE,
            // USB storage is in it or not, as the machine was when batten ran.
            vec![modprobe_text(false), modprobe_text(true)],
            "NETW-3200, STRG-1846, FILE-6430, USB-1000",
        ),
        (LIMITS_FILE, vec![limits_text()], "KRNL-5820"),
        (COREDUMP_FILE, vec![coredump_text()], "KRNL-5820"),
    ] {
        let (status, why) = match inp.root.read_to_string(path) {
            Ok(Some(t)) if texts.contains(&t) => {
                (Status::Pass, format!("batten's settings (Lynis {lynis})"))
            }
            Ok(Some(_)) => (Status::Fail, "changed since batten wrote it".to_string()),
            Ok(None) => (Status::Fail, "missing".to_string()),
            Err(e) => (Status::Fail, e.to_string()),
        };
        // One id per file: the baseline matches each with its own.
        r.add(&format!("kernel.file.{path}"), status, path, why);
    }
    if !inp.root.is_host() {
        r.add(
            "kernel.sysctl",
            Status::Skip,
            "live kernel settings",
            "--root: the image's kernel is not the one running; its boot loads the file",
        );
        return;
    }
    let settings = if super::apply::own_machine() {
        SETTINGS.to_vec()
    } else {
        r.add(
            "kernel.sysctl-host",
            Status::Skip,
            "live kernel settings",
            "kernel.* and fs.* are the machine's own kernel's: this runs in a network namespace of its own or a container",
        );
        super::apply::namespaced()
    };
    let proc_sys = Path::new("/proc/sys");
    // In a container the settings it may not write are its host's kernel's
    // (/proc/sys mounted read-only): differing, they are the host's to
    // set, a warning. Those it may write are batten's, as on a machine.
    let container = crate::host::netns::container();
    let (settings, hosts): (Vec<Setting>, Vec<Setting>) = match &container {
        Some(_) => settings
            .into_iter()
            .partition(|s| writable(&proc_sys.join(s.key.replace('.', "/")))),
        None => (settings, Vec::new()),
    };
    let (differ, own_missing) = compare(proc_sys, &settings);
    let (hosts_differ, hosts_missing) = compare(proc_sys, &hosts);
    let set = settings.len() - own_missing.len();
    let missing = [own_missing, hosts_missing].concat();
    if let (Some(manager), false) = (&container, hosts_differ.is_empty()) {
        r.add(
            "kernel.sysctl-container",
            Status::Warn,
            "live kernel settings",
            format!(
                "in a container ({manager}) these are the host kernel's, read-only here: set them on the host: {}",
                hosts_differ.join("; ")
            ),
        );
    }
    let (status, why) = if differ.is_empty() {
        (Status::Pass, format!("{set} settings as batten set them"))
    } else {
        (Status::Fail, differ.join("; "))
    };
    if set > 0 || !differ.is_empty() {
        r.add("kernel.sysctl", status, "live kernel settings", why);
    }
    if !missing.is_empty() {
        r.add(
            "kernel.sysctl-missing",
            Status::Warn,
            "live kernel settings",
            format!("this kernel has no {}", missing.join(", ")),
        );
    }
}

/// Whether this process may write the setting's file (a read-only
/// mount says no whatever the file's mode).
fn writable(path: &Path) -> bool {
    nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_values_are_compared_and_missing_keys_named() {
        let dir = tempfile::tempdir().unwrap();
        let put = |key: &str, v: &str| {
            let p = dir.path().join(key.replace('.', "/"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        };
        put("kernel.kptr_restrict", "2\n");
        put("kernel.dmesg_restrict", "0\n");
        let settings = &SETTINGS
            .iter()
            .copied()
            .filter(|s| s.key.starts_with("kernel.") && s.key.contains("restrict"))
            .collect::<Vec<_>>();
        assert_eq!(settings.len(), 2);
        let (differ, missing) = compare(dir.path(), settings);
        assert_eq!(differ, ["kernel.dmesg_restrict is 0, not 1"]);
        assert!(missing.is_empty());
        let (_, missing) = compare(dir.path(), &SETTINGS[..1]);
        assert_eq!(missing, ["net.ipv4.conf.all.accept_redirects"]);
    }
}
