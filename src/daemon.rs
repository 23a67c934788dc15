//! Running the real daemons (sshd, nginx) to check a configuration before
//! it is final, and reloading them on a live system.
//!
//! `sshd -t` and `nginx -t` read absolute paths (`Include
//! /etc/ssh/sshd_config.d/*.conf`, `include /etc/nginx/sites-enabled/*`),
//! so to check an image's configuration the check runs in a private mount
//! namespace where the image's directory is bind-mounted over the
//! machine's, and `/run` is a fresh tmpfs (sshd insists on its
//! privilege-separation directory, nginx writes its pid there). Nothing
//! outside that short-lived namespace sees either mount.

use std::process::Command;

use crate::apply::find_program;
use crate::root::Root;

/// A daemon whose configuration batten writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Daemon {
    /// OpenSSH's server.
    Sshd,
    /// The reverse proxy.
    Nginx,
}

impl Daemon {
    /// The program's name.
    pub fn program(self) -> &'static str {
        match self {
            Daemon::Sshd => "sshd",
            Daemon::Nginx => "nginx",
        }
    }

    /// The configuration directory bound from the root for a check.
    fn config_dir(self) -> &'static str {
        match self {
            Daemon::Sshd => "/etc/ssh",
            Daemon::Nginx => "/etc/nginx",
        }
    }
}

/// Why a daemon refused the configuration, or could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The daemon read the configuration and refused it.
    #[error("{0} refused the configuration: {1}")]
    Refused(&'static str, String),
    /// A program needed for the check is missing.
    #[error("{0} is not installed on this machine, so the configuration cannot be checked")]
    Missing(&'static str),
    /// The check could not be run.
    #[error("could not run the sshd check: {0}")]
    Io(#[from] std::io::Error),
}

/// The shell script run inside the namespace. The paths arrive as `$1`
/// (the root's copy of the directory, empty on the live system), `$2` (the
/// machine's directory) and `$3` (the program), its arguments after them;
/// nothing is ever spliced into the script's text.
const IN_NAMESPACE: &str = "set -e
B=\"$1\"; D=\"$2\"; P=\"$3\"; shift 3
if [ -n \"$B\" ]; then mount --bind \"$B\" \"$D\"; fi
mount -t tmpfs -o mode=0755 batten-run /run
mkdir -m 0755 /run/sshd
exec \"$P\" \"$@\"";

/// Run the daemon with `args` in the namespace where the root's
/// configuration directory is the one it reads.
fn run_in_root(root: &Root, daemon: Daemon, args: &[&str]) -> Result<String, CheckError> {
    let program = find_program(daemon.program()).ok_or(CheckError::Missing(daemon.program()))?;
    let unshare = find_program("unshare").ok_or(CheckError::Missing("unshare (util-linux)"))?;
    let bound = if root.is_host() {
        String::new()
    } else {
        root.host_path(daemon.config_dir()).display().to_string()
    };
    let out = Command::new(unshare)
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            IN_NAMESPACE,
            "batten-check",
        ])
        .arg(bound)
        .arg(daemon.config_dir())
        .arg(program)
        .args(args)
        .output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(CheckError::Refused(daemon.program(), text))
    }
}

/// Run `sshd -t` or `nginx -t` against the root's configuration.
pub fn check(root: &Root, daemon: Daemon) -> Result<(), CheckError> {
    run_in_root(root, daemon, &["-t"]).map(|_| ())
}

/// sshd's effective settings for a login by `user` from outside
/// (`sshd -T -C user=...`), Match blocks applied: keyword -> value.
pub fn sshd_effective_for(root: &Root, user: &str) -> Result<Vec<(String, String)>, CheckError> {
    let spec = format!("user={user},host=batten-check,addr=203.0.113.1");
    let text = run_in_root(root, Daemon::Sshd, &["-T", "-C", &spec])?;
    Ok(text
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect())
}

/// Whether a systemd unit is active, on the live system.
pub fn is_active(unit: &str) -> bool {
    find_program("systemctl").is_some_and(|systemctl| {
        Command::new(systemctl)
            .args(["is-active", "--quiet", unit])
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// `systemctl reload UNIT`; sshd re-reads its configuration and keeps every
/// existing session.
pub fn reload(unit: &str) -> Result<(), String> {
    let systemctl = find_program("systemctl").ok_or("systemctl is not installed")?;
    let out = Command::new(systemctl)
        .args(["reload", unit])
        .output()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "systemctl reload {unit} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
