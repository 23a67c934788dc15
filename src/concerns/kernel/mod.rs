//! Kernel settings that cost a server nothing, each named by the Lynis
//! test that looks for it (issue 17, "What an auditor sees"):
//!
//! - sysctl (KRNL-6000; `fs.suid_dumpable` also KRNL-5820): ICMP redirects
//!   neither taken nor sent, no source routing, martians logged, SYN
//!   cookies, kernel pointers and the kernel log hidden from users, the
//!   `fs.protected_*` link and file rules, unprivileged BPF off, ptrace
//!   limited to a process's own children. Nothing that changes routing:
//!   `ip_forward`/`forwarding` and strict `rp_filter` stay as the image has
//!   them (a router, a VPN or a container host needs them), and so do
//!   `kernel.sysrq` (the console's emergency keys on a VPS) and
//!   `kernel.modules_disabled` (the firewall loads modules).
//! - the uncommon network protocols dccp, sctp, rds and tipc are never
//!   loaded (NETW-3200, which reads `install X /bin/true` in
//!   `/etc/modprobe.d`), nor FireWire (STRG-1846: its DMA reaches all of
//!   memory), nor the filesystems a server never mounts (FILE-6430:
//!   cramfs, freevxfs, hfs, hfsplus, jffs2; squashfs and udf stay, since
//!   snaps, ISO images and some clouds' provisioning media use them), nor
//!   USB storage (USB-1000) on a machine that has none attached when batten
//!   runs and is not a Raspberry Pi, which may boot from a USB disk;
//! - no core dumps of setuid programs (KRNL-5820: `* hard core 0` in
//!   `/etc/security/limits.d`, and systemd-coredump storing none).
//!
//! On the running system the sysctl file is loaded at once (`sysctl -p`);
//! for an image its boot loads it. Verify reads the live values back from
//! `/proc/sys`.

pub mod apply;
pub mod plan;
pub mod verify;

pub use plan::plan;

/// The sysctl file. It sorts after every file a distribution ships in
/// `/usr/lib/sysctl.d` (Debian 12's `99-protect-links.conf` sets
/// `fs.protected_fifos = 1` and, read after a `60-` file, would undo
/// batten's 2 at every boot), so it is named `zz-`. An administrator's
/// own override goes in a file that sorts after it, or in this one.
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/zz-batten.conf";
/// The modprobe file for the uncommon protocols.
pub const MODPROBE_FILE: &str = "/etc/modprobe.d/60-batten.conf";
/// The resource limits: no core files.
pub const LIMITS_FILE: &str = "/etc/security/limits.d/60-batten.conf";
/// systemd-coredump's drop-in: no core stored.
pub const COREDUMP_FILE: &str = "/etc/systemd/coredump.conf.d/60-batten.conf";

/// One sysctl batten sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The key, as `sysctl` spells it.
    pub key: &'static str,
    /// The value written.
    pub value: &'static str,
    /// The Lynis test(s) that look for it.
    pub lynis: &'static str,
    /// Why, in words.
    pub why: &'static str,
}

const fn s(
    key: &'static str,
    value: &'static str,
    lynis: &'static str,
    why: &'static str,
) -> Setting {
    Setting {
        key,
        value,
        lynis,
        why,
    }
}

/// Every sysctl batten sets, in the file's order.
pub const SETTINGS: &[Setting] = &[
    s(
        "net.ipv4.conf.all.accept_redirects",
        "0",
        "KRNL-6000",
        "ICMP redirects cannot reroute this host's traffic",
    ),
    s(
        "net.ipv4.conf.default.accept_redirects",
        "0",
        "KRNL-6000",
        "nor on interfaces that appear later",
    ),
    s(
        "net.ipv6.conf.all.accept_redirects",
        "0",
        "KRNL-6000",
        "the same for IPv6",
    ),
    s(
        "net.ipv6.conf.default.accept_redirects",
        "0",
        "KRNL-6000",
        "the same for IPv6, later interfaces",
    ),
    s(
        "net.ipv4.conf.all.send_redirects",
        "0",
        "KRNL-6000",
        "a host that is not a router sends no redirects",
    ),
    s(
        "net.ipv4.conf.default.send_redirects",
        "0",
        "KRNL-6000",
        "nor on interfaces that appear later",
    ),
    s(
        "net.ipv4.conf.all.accept_source_route",
        "0",
        "KRNL-6000",
        "packets cannot choose their own route through this host",
    ),
    s(
        "net.ipv4.conf.default.accept_source_route",
        "0",
        "KRNL-6000",
        "nor on interfaces that appear later",
    ),
    s(
        "net.ipv6.conf.all.accept_source_route",
        "0",
        "KRNL-6000",
        "the same for IPv6",
    ),
    s(
        "net.ipv6.conf.default.accept_source_route",
        "0",
        "KRNL-6000",
        "the same for IPv6, later interfaces",
    ),
    s(
        "net.ipv4.conf.all.log_martians",
        "1",
        "KRNL-6000",
        "packets with impossible source addresses are logged",
    ),
    s(
        "net.ipv4.conf.default.log_martians",
        "1",
        "KRNL-6000",
        "on interfaces that appear later too",
    ),
    s(
        "net.ipv4.conf.all.bootp_relay",
        "0",
        "KRNL-6000",
        "no BOOTP relaying",
    ),
    s(
        "net.ipv4.icmp_echo_ignore_broadcasts",
        "1",
        "KRNL-6000",
        "no answer to broadcast pings (smurf amplification)",
    ),
    s(
        "net.ipv4.icmp_ignore_bogus_error_responses",
        "1",
        "KRNL-6000",
        "bogus ICMP error replies are not logged",
    ),
    s(
        "net.ipv4.tcp_syncookies",
        "1",
        "KRNL-6000",
        "SYN cookies when the SYN queue overflows (SYN floods)",
    ),
    s(
        "net.core.bpf_jit_harden",
        "2",
        "KRNL-6000",
        "the BPF JIT blinds constants (JIT spraying)",
    ),
    s(
        "kernel.kptr_restrict",
        "2",
        "KRNL-6000",
        "kernel addresses are hidden, even from root's /proc reads",
    ),
    s(
        "dev.tty.ldisc_autoload",
        "0",
        "KRNL-6000",
        "TTY line disciplines load only when root asks, not on any user's ioctl",
    ),
    s(
        "kernel.dmesg_restrict",
        "1",
        "KRNL-6000",
        "only root reads the kernel log",
    ),
    s(
        "kernel.unprivileged_bpf_disabled",
        "1",
        "KRNL-6000",
        "users cannot load BPF programs (cannot be undone until reboot)",
    ),
    s(
        "kernel.perf_event_paranoid",
        "3",
        "KRNL-6000",
        "users cannot use perf events",
    ),
    s(
        "kernel.yama.ptrace_scope",
        "1",
        "KRNL-6000",
        "a process can only trace its own children",
    ),
    s(
        "kernel.randomize_va_space",
        "2",
        "KRNL-6000",
        "full address space layout randomisation",
    ),
    s(
        "kernel.core_uses_pid",
        "1",
        "KRNL-6000",
        "core files, where allowed, do not overwrite each other",
    ),
    s(
        "kernel.ctrl-alt-del",
        "0",
        "KRNL-6000",
        "Ctrl-Alt-Del goes to init, not a hard reset",
    ),
    s(
        "fs.protected_hardlinks",
        "1",
        "KRNL-6000",
        "no hard links to files the user does not own",
    ),
    s(
        "fs.protected_symlinks",
        "1",
        "KRNL-6000",
        "no following other users' symlinks in sticky directories",
    ),
    s(
        "fs.protected_fifos",
        "2",
        "KRNL-6000",
        "no opening other users' FIFOs in sticky directories",
    ),
    s(
        "fs.protected_regular",
        "2",
        "KRNL-6000",
        "no opening other users' files in sticky directories",
    ),
    s(
        "fs.suid_dumpable",
        "0",
        "KRNL-5820, KRNL-6000",
        "setuid programs never dump core",
    ),
];

/// The protocols NETW-3200 calls uncommon.
pub const PROTOCOLS: &[&str] = &["dccp", "sctp", "rds", "tipc"];

/// FireWire's drivers, in the names STRG-1846 reads. A FireWire port gives
/// a device direct access to memory; no server needs one.
pub const FIREWIRE: &[&str] = &["firewire-core", "firewire-ohci", "firewire-sbp2"];

/// The filesystems FILE-6430 lists that a server never mounts. Its list
/// also has squashfs and udf, which stay: snaps and live images are
/// squashfs, and ISO 9660/UDF media carry some clouds' provisioning data.
pub const FILESYSTEMS: &[&str] = &["cramfs", "freevxfs", "hfs", "hfsplus", "jffs2"];

/// USB storage's driver (USB-1000). Only kept out where no disk is on USB
/// when batten runs and the machine is not a Raspberry Pi: a Pi or a small
/// server may boot from a USB disk, and a module kept out of the next
/// initramfs would leave it unbootable. `uas` needs it, so one line covers
/// both.
pub const USB_STORAGE: &str = "usb-storage";
