//! Running the real daemons (sshd, nginx) to check a configuration before
//! it is final, and reloading them on a live system.
//!
//! `sshd -t` and `nginx -t` read absolute paths (`Include
//! /etc/ssh/sshd_config.d/*.conf`, `include /etc/nginx/sites-enabled/*`)
//! and, for nginx, the modules its configuration loads: an image's
//! configuration is checked by the image's own daemon, inside the image
//! (`exec` says how, and what happens when it cannot run here).

use crate::host::exec::{self, Call, ExecError, Runner};
use crate::host::root::Root;

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

    /// The configuration directories bound from the root for a check, its
    /// own first (nginx also reads the proxy's certificates in /etc/ssl).
    fn config_dirs(self) -> &'static [&'static str] {
        match self {
            Daemon::Sshd => &["/etc/ssh"],
            Daemon::Nginx => &["/etc/nginx", "/etc/ssl"],
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
    #[error(
        "{0} is not installed on this machine or in the image, so the configuration cannot be checked"
    )]
    Missing(String),
    /// The image's daemon cannot run on this machine: the check is
    /// static-only here, and the machine's first boot makes it live.
    #[error("{program} -t could not run here ({why}); checked statically only")]
    Foreign {
        /// The daemon.
        program: &'static str,
        /// Why it cannot run here.
        why: String,
    },
    /// The check could not be run.
    #[error("could not run the check: {0}")]
    Io(String),
}

/// Run the daemon with `args` where its answer is about the root's
/// configuration (the image's own daemon inside the image; see `exec`).
fn run_in_root(
    runner: &dyn Runner,
    root: &Root,
    daemon: Daemon,
    args: &[&str],
) -> Result<String, CheckError> {
    let check = exec::Check {
        program: daemon.program(),
        args,
        stdin: None,
        config_dirs: daemon.config_dirs(),
    };
    runner.check(root, &check).map_err(|e| match e {
        ExecError::Missing(p) => CheckError::Missing(p),
        ExecError::Foreign { why, .. } => CheckError::Foreign {
            program: daemon.program(),
            why,
        },
        ExecError::Refused(text) | ExecError::CannotStart(text) => {
            CheckError::Refused(daemon.program(), text)
        }
        ExecError::Io { .. } => CheckError::Io(e.to_string()),
    })
}

/// Run `sshd -t` or `nginx -t` against the root's configuration.
pub fn check(runner: &dyn Runner, root: &Root, daemon: Daemon) -> Result<(), CheckError> {
    run_in_root(runner, root, daemon, &["-t"]).map(|_| ())
}

/// sshd's effective settings for a login by `user` from outside
/// (`sshd -T -C user=...`), Match blocks applied: keyword -> value.
pub fn sshd_effective_for(
    runner: &dyn Runner,
    root: &Root,
    user: &str,
) -> Result<Vec<(String, String)>, CheckError> {
    let spec = format!("user={user},host=batten-check,addr=203.0.113.1");
    let text = run_in_root(runner, root, Daemon::Sshd, &["-T", "-C", &spec])?;
    Ok(text
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect())
}

/// Whether a systemd unit is active, on the live system.
pub fn is_active(runner: &dyn Runner, unit: &str) -> bool {
    let call = Call {
        program: "systemctl",
        args: &["is-active", "--quiet", unit],
        stdin: None,
    };
    runner.run(&call).is_ok_and(|out| out.success)
}

/// `systemctl reload UNIT`; sshd re-reads its configuration and keeps every
/// existing session.
pub fn reload(runner: &dyn Runner, unit: &str) -> Result<(), String> {
    systemctl(runner, &["reload", unit])
}

/// `systemctl daemon-reload`, then `systemctl start --no-block UNITS`: the
/// units (enabled by links just written) start in this boot without
/// batten waiting for them, whatever they are ordered after.
pub fn start_now(runner: &dyn Runner, units: &[&str]) -> Result<(), String> {
    reload_then(runner, "start", units)
}

/// `systemctl daemon-reload`, then `systemctl try-restart --no-block
/// UNITS`: systemd reads the units' changed drop-ins, and those that run
/// (a timer keeps its old period until restarted) restart with them;
/// those that do not run are left stopped.
pub fn restart_running(runner: &dyn Runner, units: &[&str]) -> Result<(), String> {
    reload_then(runner, "try-restart", units)
}

/// `systemctl daemon-reload`, then `systemctl VERB --no-block UNITS`.
fn reload_then(runner: &dyn Runner, verb: &str, units: &[&str]) -> Result<(), String> {
    systemctl(runner, &["daemon-reload"])?;
    let mut call = vec![verb, "--no-block"];
    call.extend_from_slice(units);
    systemctl(runner, &call)
}

/// `systemctl start --no-block UNIT`, for a unit systemd already knows
/// (installed before this boot began, so no reload): queued, not waited for.
pub fn start_queued(runner: &dyn Runner, unit: &str) -> Result<(), String> {
    systemctl(runner, &["start", "--no-block", unit])
}

/// `systemctl ARGS`; a refusal names the command and what systemctl said.
fn systemctl(runner: &dyn Runner, args: &[&str]) -> Result<(), String> {
    let call = Call {
        program: "systemctl",
        args,
        stdin: None,
    };
    let out = runner.run(&call).map_err(|e| e.to_string())?;
    if out.success {
        Ok(())
    } else {
        Err(format!("{} failed: {}", call.line(), out.stderr))
    }
}

/// Properties of a unit on the live system (`systemctl show -p ...`):
/// name -> value; `None` when systemctl cannot be asked.
pub fn unit_properties(
    runner: &dyn Runner,
    unit: &str,
    names: &[&str],
) -> Option<Vec<(String, String)>> {
    let props = names.join(",");
    let call = Call {
        program: "systemctl",
        args: &["show", "-p", &props, unit],
        stdin: None,
    };
    let out = runner.run(&call).ok().filter(|o| o.success)?;
    Some(
        out.stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::exec::fake::Fake;

    #[test]
    fn units_start_after_a_reload_without_waiting() {
        let fake = Fake::agreeing();
        start_now(&fake, &["apt-daily.timer", "batten-updates.service"]).unwrap();
        assert_eq!(
            fake.calls(),
            [
                "systemctl daemon-reload",
                "systemctl start --no-block apt-daily.timer batten-updates.service"
            ]
        );
        let fake = Fake::new(|l| match l {
            "systemctl show -p ActiveState,Result batten-updates.service" => {
                Ok("ActiveState=failed\nResult=exit-code\n".into())
            }
            _ => Err("no".into()),
        });
        assert_eq!(
            unit_properties(&fake, "batten-updates.service", &["ActiveState", "Result"]),
            Some(vec![
                ("ActiveState".into(), "failed".into()),
                ("Result".into(), "exit-code".into())
            ])
        );
        assert!(
            start_now(&fake, &["x.timer"])
                .unwrap_err()
                .contains("systemctl daemon-reload failed: no")
        );
    }
}
