//! Which network namespace batten runs in. A run inside a namespace of its
//! own (`ip netns exec`, a test harness, a container sharing the host's
//! kernel) may change that namespace's `net.*` settings, but the kernel's
//! other settings and its modules belong to the whole machine.

use std::path::Path;

/// Whether this thread (and the programs it starts) is in the machine's
/// first network namespace: only there are the machine-wide kernel
/// settings and modules batten's to change. It is when:
///
/// 1. its namespace's inode is `PROC_NET_INIT_INO` (0xEFFFFFF9), which
///    kernels that fix the first namespace's number give it, and which no
///    other namespace can have (theirs are allocated from 0xF0000000 up);
/// 2. else it is PID 1's, when PID 1's can be read (a sandbox may refuse);
/// 3. else `net.core.message_cost` is visible: the kernel registers it for
///    the first namespace only.
pub fn first_network_namespace() -> bool {
    let ns = |path: &str| {
        std::fs::read_link(path)
            .ok()
            .map(|l| l.to_string_lossy().into_owned())
    };
    let mine = ns("/proc/thread-self/ns/net");
    if mine.as_deref() == Some("net:[4026531833]") {
        return true;
    }
    if let (Some(mine), Some(init)) = (&mine, ns("/proc/1/ns/net")) {
        return *mine == init;
    }
    Path::new("/proc/sys/net/core/message_cost").exists()
}

/// Whether the machine-wide kernel settings and modules are batten's to
/// change: in the first network namespace, and not in a container (whose
/// kernel is its host's, whatever namespace it shares).
pub fn machine_wide() -> bool {
    container().is_none() && first_network_namespace()
}

/// The container manager batten runs under (`systemd-nspawn`, `lxc`,
/// `docker`...), as systemd records it in /run/systemd/container, else as
/// the manager tells PID 1 in its environment (`container=`).
pub fn container() -> Option<String> {
    if let Ok(text) = std::fs::read_to_string("/run/systemd/container") {
        let name = text.trim();
        if !name.is_empty() {
            return Some(name.to_string());
        }
    }
    let environ = std::fs::read("/proc/1/environ").ok()?;
    container_in_environ(&environ)
}

fn container_in_environ(environ: &[u8]) -> Option<String> {
    environ
        .split(|b| *b == 0)
        .filter_map(|v| v.strip_prefix(b"container="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .find(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_manager_is_read_from_pid_1s_environment() {
        assert_eq!(
            container_in_environ(b"PATH=/bin\0container=systemd-nspawn\0TERM=vt220\0"),
            Some("systemd-nspawn".into())
        );
        assert_eq!(container_in_environ(b"PATH=/bin\0TERM=vt220\0"), None);
        assert_eq!(container_in_environ(b"container=\0"), None);
        assert_eq!(container_in_environ(b""), None);
    }
}
