//! Starting the programs that check batten's work (`sshd -t`, `sshd -T`,
//! `nginx -t`, `nft -c`, `iptables-restore --test`, `visudo -c`) where
//! their answer means something.
//!
//! On the running system that is this machine's program. For an image
//! (`--root`) it is the image's own: this machine's nginx cannot load the
//! image's modules, another version reads the syntax differently, and
//! another architecture's image has other binaries altogether. So the
//! image's program runs inside the image: in a private mount namespace,
//! on a copy-on-write view of the root (overlayfs with a tmpfs on top, so
//! not one byte of the image changes, log files nginx opens included),
//! with this machine's /dev, a fresh /proc, /run and /tmp, then `chroot`.
//! Nothing outside that short-lived namespace sees any of its mounts.
//!
//! Two cases remain. An image without the program at all (a root made of
//! a few configuration files) is checked with this machine's program, its
//! configuration directory bound over this machine's, as before. An image
//! whose program cannot run here (another architecture and no binfmt_misc
//! handler such as qemu-user-static) cannot be checked live: the caller
//! records the check as static-only, and the machine's first boot makes
//! it live before anything is final.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::host::elf::{elf_interpreter, elf_machine, host_machine, machine_name};
use crate::host::root::Root;

/// Find `program` on PATH (or the usual sbin directories, which a non-root
/// PATH may lack).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// Where an image keeps its programs, in the order a root shell's PATH
/// looks.
const IMAGE_BIN_DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Which program answers a check for a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// This machine's: the live system, or an image without the program.
    Host(PathBuf),
    /// The image's own, at this path inside it, and it runs here.
    Image(String),
    /// The image's own, which cannot run on this machine.
    Foreign {
        /// Its path inside the image.
        path: String,
        /// Why not, in words.
        why: String,
    },
    /// Neither the image nor this machine has it.
    Missing,
}

/// Find the program that checks `root`'s files: see the module's words.
pub fn locate(root: &Root, program: &str) -> Found {
    if root.is_host() {
        return find_program(program).map_or(Found::Missing, Found::Host);
    }
    if let Some((path, bytes)) = in_image(root, program) {
        // A program whose loader the root lacks is a file copied into a
        // scratch directory, not an image's program: this machine's checks.
        let loader_missing = elf_interpreter(&bytes)
            .is_some_and(|interp| !matches!(root.read_following_within(&interp), Ok(Some(_))));
        if !loader_missing {
            return match runs_here(root, &bytes) {
                Ok(()) => Found::Image(path),
                Err(why) => Found::Foreign { path, why },
            };
        }
    }
    find_program(program).map_or(Found::Missing, Found::Host)
}

/// The image's own `program` (its path inside the image and its bytes),
/// where a root shell's PATH would find it; links are followed inside the
/// image (Debian's alternatives).
pub fn in_image(root: &Root, program: &str) -> Option<(String, Vec<u8>)> {
    IMAGE_BIN_DIRS.iter().find_map(|dir| {
        let path = format!("{dir}/{program}");
        let bytes = root.read_following_within(&path).ok().flatten()?;
        Some((path, bytes))
    })
}

/// Whether this machine can run a program of the image: its own machine
/// type, a script (its interpreter decides, at run time), or a type a
/// binfmt_misc handler takes. Anything else (an empty file, text without
/// `#!`) is not a program: the shell would run it as a script and the
/// check would pass having checked nothing.
fn runs_here(root: &Root, bytes: &[u8]) -> Result<(), String> {
    let Some((machine, wide)) = elf_machine(bytes) else {
        return if bytes.starts_with(b"#!") {
            Ok(())
        } else {
            Err("the image's file is neither an ELF program nor a script".to_string())
        };
    };
    if Some((machine, wide)) == host_machine() || binfmt_takes(root, bytes) {
        return Ok(());
    }
    Err(format!(
        "the image's program is {}, this machine is {}, and no binfmt_misc handler (qemu-user-static) is registered for it",
        machine_name(machine, wide),
        std::env::consts::ARCH
    ))
}

/// Whether an enabled binfmt_misc entry's magic (under its mask) matches
/// the program's first bytes, with an interpreter the chroot can reach:
/// loaded at registration (flag F, as Debian's qemu-user-static does), or
/// present in the image.
fn binfmt_takes(root: &Root, bytes: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc/sys/fs/binfmt_misc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            return false;
        };
        if text.lines().next() != Some("enabled") {
            return false;
        }
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
        };
        let hex = |s: &str| -> Option<Vec<u8>> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
                .collect()
        };
        let offset: usize = field("offset ").and_then(|o| o.parse().ok()).unwrap_or(0);
        let Some(magic) = field("magic ").and_then(hex) else {
            return false;
        };
        let mask = field("mask ").and_then(hex);
        let matches = magic.iter().enumerate().all(|(i, m)| {
            let k = mask
                .as_ref()
                .and_then(|mask| mask.get(i))
                .copied()
                .unwrap_or(0xff);
            offset
                .checked_add(i)
                .and_then(|at| bytes.get(at))
                .is_some_and(|b| b & k == m & k)
        });
        let reachable = field("flags:").is_some_and(|f| f.contains('F'))
            || field("interpreter ")
                .is_some_and(|i| matches!(root.read_following_within(i), Ok(Some(_))));
        matches && reachable
    })
}

/// The checks of this run that could only be static (the image's program
/// cannot run here), in the words `live_check` takes back.
static STATIC_ONLY: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Record that `check` could not run live on this machine, and say so.
pub fn static_only(check: &str, why: &str) {
    log::warn!(
        "checked statically only: `{check}`, since {why}; the machine's first boot runs it live"
    );
    STATIC_ONLY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(check.to_string());
}

/// The static-only checks recorded so far, emptied.
pub fn take_static_only() -> Vec<String> {
    std::mem::take(&mut *STATIC_ONLY.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Why a check's program gave no answer, or the answer it gave.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Neither the image nor this machine has the program.
    #[error("{0} is not installed here or in the image")]
    Missing(String),
    /// The image's program cannot run on this machine.
    #[error("{program} in the image cannot run on this machine: {why}")]
    Foreign {
        /// The program's name.
        program: String,
        /// Why not.
        why: String,
    },
    /// The program ran and refused (its words, trimmed).
    #[error("{0}")]
    Refused(String),
    /// The image's program is there but could not start inside the image
    /// (its loader or a library is missing there).
    #[error("{0}")]
    CannotStart(String),
    /// The program could not be started.
    #[error("cannot run {program}: {error}")]
    Io {
        /// The program's name.
        program: String,
        /// What the system said.
        error: std::io::Error,
    },
}

/// One run of a checking program.
pub struct Check<'a> {
    /// The program's name (`nginx`, `sshd`, `nft`, ...).
    pub program: &'a str,
    /// Its arguments. A file to check comes on standard input, never as a
    /// path: the same words then work inside the image and out.
    pub args: &'a [&'a str],
    /// What to give it on standard input (a file's new contents).
    pub stdin: Option<&'a [u8]>,
    /// The configuration directories it reads (`/etc/ssh`; `/etc/nginx`
    /// and `/etc/ssl`, where the proxy's certificates are), the first its
    /// own; such a program also gets a fresh /run (sshd's
    /// privilege-separation directory, nginx's pid file).
    pub config_dirs: &'a [&'a str],
}

/// Runs inside the namespace for a daemon of this machine's: pairs of the
/// image's copy of a configuration directory and the directory it is
/// bound over (none on the live system), then `--` and the program;
/// nothing is ever spliced into the script's text.
const HOST_DAEMON: &str = "set -e
while [ \"$1\" != -- ]; do mount --bind \"$1\" \"$2\"; shift 2; done
P=\"$2\"; shift 2
mount -t tmpfs -o mode=0755 batten-run /run
mkdir -m 0755 /run/sshd
exec \"$P\" \"$@\"";

/// Runs inside the namespaces for an image's program: `$1` an empty private
/// directory of this machine's, `$2` the root, then the program and its
/// arguments. The view is copy-on-write on a tmpfs; where overlayfs is not
/// available it is the root bound read-only, with tmpfs where programs
/// write (/var/log, /var/lib, /var/cache). /dev holds only the harmless
/// devices, /proc is the namespace's own (no way to this machine's
/// processes or their roots). Any step of this setup that fails exits 111,
/// which is not the program refusing anything.
const IN_IMAGE: &str = "T=\"$1\"; R=\"$2\"; shift 2
fail() { echo \"batten: cannot prepare the image's view: $*\" >&2; exit 111; }
mount -t tmpfs -o mode=0700 batten-view \"$T\" || fail tmpfs
mkdir \"$T/lower\" \"$T/upper\" \"$T/work\" \"$T/view\" || fail mkdir
mount --bind \"$R\" \"$T/lower\" || fail bind
if mount -t overlay batten-view -o \"lowerdir=$T/lower,upperdir=$T/upper,workdir=$T/work\" \"$T/view\" 2>/dev/null; then
  V=\"$T/view\"
  mkdir -p \"$V/dev\" \"$V/proc\" \"$V/run\" \"$V/tmp\" || fail mkdir
else
  mount -o remount,bind,ro \"$T/lower\" || fail read-only
  V=\"$T/lower\"
  for d in var/log var/lib var/cache; do
    if [ -d \"$V/$d\" ]; then mount -t tmpfs batten-scratch \"$V/$d\" || fail \"$d\"; fi
  done
fi
if [ -d \"$V/dev\" ]; then
  mount -t tmpfs -o mode=0755 batten-dev \"$V/dev\" || fail dev
  for n in null zero full random urandom; do
    : > \"$V/dev/$n\" && mount --bind \"/dev/$n\" \"$V/dev/$n\" || fail \"/dev/$n\"
  done
fi
if [ -d \"$V/proc\" ]; then mount -t proc batten-proc \"$V/proc\" || fail proc; fi
if [ -d \"$V/run\" ]; then mount -t tmpfs -o mode=0755 batten-run \"$V/run\" && mkdir -m 0755 \"$V/run/sshd\" || fail run; fi
if [ -d \"$V/tmp\" ]; then mount -t tmpfs -o mode=1777 batten-tmp \"$V/tmp\" || fail tmp; fi
exec chroot \"$V\" \"$@\"";

/// Run a check for `root` with the program [`locate`] finds; its standard
/// output when it succeeds.
pub(super) fn run_check(root: &Root, check: &Check) -> Result<String, ExecError> {
    let found = locate(root, check.program);
    match &found {
        Found::Missing => Err(ExecError::Missing(check.program.to_string())),
        Found::Foreign { why, .. } => Err(ExecError::Foreign {
            program: check.program.to_string(),
            why: why.clone(),
        }),
        Found::Host(program) => finish(check, &found, host_command(root, check, program)?),
        Found::Image(path) => {
            log::debug!(
                "{}: the image's own {path}, run inside the image",
                check.program
            );
            let view = PrivateDir::new()?;
            let mut c = namespace(IN_IMAGE, true)?;
            c.arg(&view.0).arg(root.path()).arg(path).args(check.args);
            match finish(check, &found, c) {
                // A root with the program's file but not what it needs to
                // start (its loader or libraries: a few files copied into a
                // scratch directory, not an image): this machine's program
                // checks it, as for a root without the program.
                // Only where this machine's program reads what the image's
                // would: the input on stdin, or a bound configuration
                // directory (`visudo -c` would read this machine's sudoers).
                Err(ExecError::CannotStart(why))
                    if check.stdin.is_some() || !check.config_dirs.is_empty() =>
                {
                    let Some(program) = find_program(check.program) else {
                        return Err(ExecError::Refused(why));
                    };
                    log::info!(
                        "{why}; checking with this machine's {} instead",
                        program.display()
                    );
                    finish(
                        check,
                        &Found::Host(program.clone()),
                        host_command(root, check, &program)?,
                    )
                }
                other => other,
            }
        }
    }
}

/// This machine's program for a check of `root`: run directly, or, for a
/// daemon, in a namespace where the root's configuration directory is
/// bound over this machine's and /run is fresh.
fn host_command(root: &Root, check: &Check, program: &Path) -> Result<Command, ExecError> {
    Ok(match check.config_dirs {
        [] => {
            let mut c = Command::new(program);
            c.args(check.args);
            c
        }
        [own, others @ ..] => {
            let mut c = namespace(HOST_DAEMON, false)?;
            if !root.is_host() {
                // The program's own directory always; the others where both
                // the image and this machine have them.
                c.arg(root.host_path(own)).arg(own);
                for dir in others {
                    let image = root.host_path(dir);
                    if image.is_dir() && Path::new(dir).is_dir() {
                        c.arg(image).arg(dir);
                    }
                }
            }
            c.arg("--").arg(program).args(check.args);
            c
        }
    })
}

/// `unshare` with a private mount namespace running `script`; for an
/// image's program (`isolated`) also its own process, network, IPC and
/// host-name namespaces, so it sees none of this machine's processes or
/// network (`nft -c` checks against the namespace's empty ruleset).
fn namespace(script: &str, isolated: bool) -> Result<Command, ExecError> {
    let unshare =
        find_program("unshare").ok_or(ExecError::Missing("unshare (util-linux)".into()))?;
    let mut c = Command::new(unshare);
    c.args(["--mount", "--propagation", "private"]);
    if isolated {
        c.args(["--pid", "--fork", "--net", "--ipc", "--uts"]);
    }
    c.args(["sh", "-c", script, "batten-check"]);
    Ok(c)
}

fn finish(check: &Check, found: &Found, command: Command) -> Result<String, ExecError> {
    let io = |error| ExecError::Io {
        program: check.program.to_string(),
        error,
    };
    let out = super::output(command, check.stdin).map_err(io)?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let image_path = match found {
        Found::Image(path) => Some(path),
        _ => None,
    };
    // nft and iptables check rules through a netlink socket, which an
    // emulator such as qemu-user (an arm64 image on an x86_64 laptop, or
    // batten itself emulated) does not have: that says nothing about the
    // rules, so the check waits for the machine's own first boot.
    if let Some(path) = image_path
        && stderr.contains("Protocol not supported")
        && (stderr.contains("Netlink") || stderr.contains("initialize nft"))
    {
        return Err(ExecError::Foreign {
            program: check.program.to_string(),
            why: format!("{path} in the image cannot open its netlink socket here ({stderr})"),
        });
    }
    // chroot could not start the image's program: another architecture
    // than runs_here could tell (a script whose interpreter is foreign).
    if let Some(path) = image_path
        && out.status.code() == Some(126)
        && stderr.contains("Exec format error")
    {
        return Err(ExecError::Foreign {
            program: check.program.to_string(),
            why: format!("{path} in the image is not a program this machine can run ({stderr})"),
        });
    }
    if image_path.is_some() && out.status.code() == Some(111) {
        return Err(ExecError::Io {
            program: check.program.to_string(),
            error: std::io::Error::other(stderr),
        });
    }
    if let Some(path) = image_path
        && out.status.code() == Some(127)
        && (stderr.starts_with("chroot:")
            || stderr.contains("error while loading shared libraries"))
    {
        return Err(ExecError::CannotStart(format!(
            "the image's {path} cannot start inside the image ({stderr})"
        )));
    }
    let whose = match image_path {
        Some(path) => format!("the image's {path}"),
        None => check.program.to_string(),
    };
    Err(ExecError::Refused(format!(
        "{whose} {}: {stderr}",
        check.args.join(" ")
    )))
}

/// An empty directory of this machine's, 0700, removed when dropped: the
/// place the image's view is mounted inside the private namespace (so it is
/// never inside the root, whatever the root's path).
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new() -> Result<PrivateDir, ExecError> {
        use std::os::unix::fs::DirBuilderExt as _;
        let base = std::env::temp_dir();
        let mut last = None;
        for attempt in 0..100u32 {
            let path = base.join(format!("batten-view-{}-{attempt}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateDir(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(error) => {
                    return Err(ExecError::Io {
                        program: "mkdir".into(),
                        error,
                    });
                }
            }
        }
        Err(ExecError::Io {
            program: "mkdir".into(),
            error: last.unwrap_or_else(|| std::io::Error::other("no free name")),
        })
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(machine: u16, wide: bool) -> Vec<u8> {
        let mut b = b"\x7fELF".to_vec();
        b.extend([if wide { 2 } else { 1 }, 1, 1, 0]);
        b.extend([0u8; 10]);
        b.extend(machine.to_le_bytes());
        b.extend([0u8; 40]);
        b
    }

    #[test]
    fn machines_are_read_from_the_elf_header() {
        assert_eq!(elf_machine(&header(183, true)), Some((183, true)));
        assert_eq!(elf_machine(b"#!/bin/sh\n"), None);
        assert_eq!(machine_name(40, false), "32-bit ARM");
        // A script runs (its interpreter decides); this machine's own kind runs.
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert!(runs_here(&root, b"#!/bin/sh\necho\n").is_ok());
        let (m, w) = host_machine().unwrap();
        assert!(runs_here(&root, &header(m, w)).is_ok());
        // Neither a program nor a script: not taken as one.
        assert!(runs_here(&root, b"").is_err());
        assert!(runs_here(&root, b"exit 0\n").is_err());
        // A machine no handler takes is named in the reason.
        let why = runs_here(&root, &header(0xBEEF, true)).unwrap_err();
        assert!(why.contains("ELF machine 48879"), "{why}");
    }

    #[test]
    fn the_loader_of_this_machines_programs_is_found() {
        let sh = std::fs::read("/bin/sh").unwrap();
        let interp = elf_interpreter(&sh).expect("/bin/sh is linked dynamically");
        assert!(interp.starts_with('/') && interp.contains("ld"), "{interp}");
        assert_eq!(elf_interpreter(&header(62, true)), None);
    }
}
