//! Running the real sshd: checking a configuration before it is final.
//!
//! `sshd -t` reads absolute paths (`Include /etc/ssh/sshd_config.d/*.conf`,
//! `HostKey /etc/ssh/...`), so to check an image's configuration the check
//! runs in a private mount namespace where the image's `/etc/ssh` is
//! bind-mounted over `/etc/ssh`, and `/run` is a fresh tmpfs holding the
//! privilege-separation directory sshd insists on. Nothing outside that
//! short-lived namespace sees either mount.

use std::process::Command;

use crate::apply::find_program;
use crate::root::Root;

/// Why sshd refused the configuration, or could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// sshd read the configuration and refused it.
    #[error("sshd refused the configuration: {0}")]
    Refused(String),
    /// A program needed for the check is missing.
    #[error("{0} is not installed, so the sshd configuration cannot be checked")]
    Missing(&'static str),
    /// The check could not be run.
    #[error("could not run the sshd check: {0}")]
    Io(#[from] std::io::Error),
}

/// The shell script run inside the namespace. The root's path arrives as
/// `$1`, never inside the script text.
const IN_NAMESPACE: &str = "set -e
if [ -n \"$1\" ]; then mount --bind \"$1/etc/ssh\" /etc/ssh; fi
mount -t tmpfs -o mode=0755 batten-run /run
mkdir -m 0755 /run/sshd
exec \"$2\" -t";

/// Run `sshd -t` against the root's configuration.
pub fn check(root: &Root) -> Result<(), CheckError> {
    let sshd = find_program("sshd").ok_or(CheckError::Missing("sshd"))?;
    let unshare = find_program("unshare").ok_or(CheckError::Missing("unshare (util-linux)"))?;
    let root_arg = if root.is_host() {
        String::new()
    } else {
        root.path().display().to_string()
    };
    let out = Command::new(unshare)
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            IN_NAMESPACE,
            "batten-sshd-check",
        ])
        .arg(root_arg)
        .arg(sshd)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(CheckError::Refused(text))
    }
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
