//! Work a first-boot run leaves until sshd is up.
//!
//! `batten.service` (and `batten-metadata.service`) are ordered before
//! sshd: every millisecond they take is a millisecond before the first
//! login. Some of what a run does guards nothing sshd needs: starting the
//! units it enabled (a `systemctl daemon-reload` alone takes ~150 ms, and
//! its transaction pulls the firewall's own unit in to load the ruleset a
//! second time) and unloading modules nothing uses. In those units such
//! work is written to [`PENDING`] in /run, and `batten verify --seal` (run
//! by `batten-verify.service` once sshd has started) does it first; a run
//! that fails and is rolled back leaves none. Anywhere else (a run by hand,
//! a test) it is done at once.

use std::path::Path;

use log::{info, warn};
use serde::{Deserialize, Serialize};

use super::exec::{Call, Runner};

/// Where a first-boot run leaves its pending work: /run, so it never
/// outlives the boot it was for.
pub const PENDING: &str = "/run/batten/after-sshd.json";

/// One piece of work that need not delay sshd.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "do")]
pub enum Later {
    /// `systemctl daemon-reload`, then `systemctl start --no-block UNITS`.
    StartUnits {
        /// The units, enabled by links the run wrote.
        units: Vec<String>,
    },
    /// `systemctl daemon-reload`, then `systemctl try-restart --no-block
    /// UNITS`: units whose drop-ins changed, restarted only where they run.
    RestartUnits {
        /// The units.
        units: Vec<String>,
    },
    /// `modprobe -r` each module, leaving those in use or built in.
    UnloadModules {
        /// The modules.
        modules: Vec<String>,
    },
}

/// Whether sshd waits for this process: it runs in one of batten's units
/// ordered before `ssh.service` (its cgroup says which).
pub fn sshd_waits() -> bool {
    std::fs::read_to_string("/proc/self/cgroup").is_ok_and(|text| in_first_stage(&text))
}

fn in_first_stage(cgroup: &str) -> bool {
    cgroup
        .lines()
        .any(|line| line.ends_with("/batten.service") || line.ends_with("/batten-metadata.service"))
}

/// Leave `later` to the verify stage when sshd waits for this process;
/// otherwise (or when /run cannot hold it) do it now. True when it was
/// left, or done and it worked.
pub fn defer_or_do(runner: &dyn Runner, later: Later) -> bool {
    if sshd_waits() && defer_to(Path::new(PENDING), &later) {
        info!(
            "left until sshd is up (batten-verify.service): {}",
            later.summary()
        );
        return true;
    }
    execute(runner, &later)
}

/// Forget the work a run left: it failed and was rolled back, so the
/// units it would start and the modules it would unload are not its to
/// touch any more.
pub fn discard() {
    if sshd_waits() {
        remove(Path::new(PENDING));
    }
}

fn defer_to(path: &Path, later: &Later) -> bool {
    let mut pending = read(path);
    pending.push(later.clone());
    // Written beside and renamed over: never a torn file.
    let next = path.with_extension("json.new");
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&next, serde_json::to_vec(&pending).unwrap_or_default()))
        .and_then(|()| std::fs::rename(&next, path));
    match written {
        Ok(()) => true,
        Err(e) => {
            warn!("could not write {}: {e}; doing it now", path.display());
            false
        }
    }
}

fn read(path: &Path) -> Vec<Later> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            warn!("cannot read {}: {e}", path.display());
            return Vec::new();
        }
    };
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        warn!(
            "{} is damaged ({e}); what it held starts at the next boot",
            path.display()
        );
        Vec::new()
    })
}

fn remove(path: &Path) -> bool {
    match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            warn!("cannot remove {}: {e}", path.display());
            false
        }
    }
}

/// Do the work a first-boot run left (see the module's documentation),
/// once: the file is removed first, so a failure is not repeated.
pub fn run_pending(runner: &dyn Runner) {
    run_pending_from(Path::new(PENDING), runner);
}

fn run_pending_from(path: &Path, runner: &dyn Runner) {
    let pending = read(path);
    if !remove(path) {
        return;
    }
    for later in &pending {
        execute(runner, later);
    }
}

impl Later {
    /// The command it stands for, for the log.
    pub fn summary(&self) -> String {
        match self {
            Later::StartUnits { units } => format!("systemctl start {}", units.join(" ")),
            Later::RestartUnits { units } => {
                format!("systemctl try-restart {}", units.join(" "))
            }
            Later::UnloadModules { modules } => format!("modprobe -r {}", modules.join(" ")),
        }
    }
}

/// Best effort, both: enable links start the units at the next boot and
/// the modprobe file keeps the modules out, so a failure is only logged.
/// True unless the units did not start.
fn execute(runner: &dyn Runner, later: &Later) -> bool {
    match later {
        Later::StartUnits { units } | Later::RestartUnits { units } => {
            let names: Vec<&str> = units.iter().map(String::as_str).collect();
            let (done, otherwise) = if matches!(later, Later::StartUnits { .. }) {
                (super::daemon::start_now(runner, &names), "start")
            } else {
                (
                    super::daemon::restart_running(runner, &names),
                    "read their drop-ins",
                )
            };
            done.map_err(|e| warn!("{e}; {} {otherwise} at the next boot", names.join(" ")))
                .is_ok()
        }
        Later::UnloadModules { modules } => {
            for module in modules {
                let call = Call {
                    program: "modprobe",
                    args: &["-r", module],
                    stdin: None,
                };
                match runner.run(&call) {
                    Ok(out) if out.success => info!("unloaded the unused {module} module"),
                    Ok(out) => info!("{module} stays loaded: {}", out.stderr.trim()),
                    Err(e) => info!("{module} stays loaded: {e}"),
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::exec::fake::Fake;

    #[test]
    fn only_batten_units_before_sshd_count_as_the_first_stage() {
        assert!(in_first_stage("0::/system.slice/batten.service\n"));
        assert!(in_first_stage(
            "12:pids:/system.slice/batten-metadata.service\n0::/system.slice/batten-metadata.service"
        ));
        // The verify stage and the drift timer run after sshd; a shell does not wait.
        assert!(!in_first_stage("0::/system.slice/batten-verify.service\n"));
        assert!(!in_first_stage("0::/system.slice/batten-drift.service\n"));
        assert!(!in_first_stage(
            "0::/user.slice/user-0.slice/session-1.scope\n"
        ));
        assert!(!in_first_stage(""));
    }

    #[test]
    fn pending_work_is_kept_in_order_and_done_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("batten/after-sshd.json");
        let start = Later::StartUnits {
            units: vec!["batten-updates.service".into()],
        };
        let unload = Later::UnloadModules {
            modules: vec!["ip_tables".into()],
        };
        assert!(defer_to(&path, &start));
        assert!(defer_to(&path, &unload));
        assert_eq!(read(&path), [start, unload]);
        let fake = Fake::agreeing();
        run_pending_from(&path, &fake);
        assert_eq!(
            fake.calls(),
            [
                "systemctl daemon-reload",
                "systemctl start --no-block batten-updates.service",
                "modprobe -r ip_tables"
            ]
        );
        assert!(!path.exists());
        // Nothing left: a second verify does nothing.
        let again = Fake::agreeing();
        run_pending_from(&path, &again);
        assert!(again.calls().is_empty());
    }

    #[test]
    fn a_changed_drop_in_is_read_and_its_timer_restarted_where_it_runs() {
        let fake = Fake::agreeing();
        assert!(execute(
            &fake,
            &Later::RestartUnits {
                units: vec!["batten-verify.timer".into()],
            },
        ));
        assert_eq!(
            fake.calls(),
            [
                "systemctl daemon-reload",
                "systemctl try-restart --no-block batten-verify.timer"
            ]
        );
    }

    #[test]
    fn a_damaged_record_is_set_aside_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("after-sshd.json");
        std::fs::write(&path, b"[{\"do\": \"start_un").unwrap();
        assert!(read(&path).is_empty());
        let later = Later::StartUnits {
            units: vec!["a.service".into()],
        };
        assert!(defer_to(&path, &later));
        assert_eq!(read(&path), [later]);
        assert!(!path.with_extension("json.new").exists());
    }

    #[test]
    fn a_refused_unload_is_no_failure() {
        let busy = Fake::new(|_| Err("modprobe: FATAL: Module ip_tables is in use.".into()));
        assert!(execute(
            &busy,
            &Later::UnloadModules {
                modules: vec!["ip_tables".into()],
            },
        ));
        assert_eq!(busy.calls(), ["modprobe -r ip_tables"]);
    }
}
