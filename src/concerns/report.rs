//! The words every concern's verification speaks: a check's outcome, the
//! report they add up to, and what they look at.
//!
//! Every check gives pass, warn, fail or skip with what was looked at and
//! why. With `--root` only the static checks run (sshd -t, nginx -t, nft
//! -c, files and modes) and the live ones say they were skipped.

use serde::{Deserialize, Serialize};

use crate::host::daemon::{self, CheckError, Daemon};
use crate::host::distro::Distro;
use crate::host::exec::Runner;
use crate::host::root::Root;
use crate::input::model::UserData;

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As it should be.
    Pass,
    /// Not a failure, but someone should look.
    Warn,
    /// Not as batten promised; verify exits 1.
    Fail,
    /// Not checked here (say why).
    Skip,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable identifier, e.g. `sshd.password-authentication`.
    pub id: String,
    /// The outcome.
    pub status: Status,
    /// What was checked, in words.
    pub what: String,
    /// Why it has this outcome.
    pub why: String,
}

/// The whole report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Every check in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// Add one check's outcome.
    pub fn add(
        &mut self,
        id: &str,
        status: Status,
        what: impl Into<String>,
        why: impl Into<String>,
    ) {
        self.checks.push(Check {
            id: id.to_string(),
            status,
            what: what.into(),
            why: why.into(),
        });
    }

    /// True when no check failed.
    pub fn ok(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// The table for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let mark = match c.status {
                Status::Pass => "pass",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            out.push_str(&format!("{mark}  {:<34} {}: {}\n", c.id, c.what, c.why));
        }
        let fails = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count();
        let warns = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Warn)
            .count();
        out.push_str(&format!(
            "{} checks: {} failed, {} warnings\n",
            self.checks.len(),
            fails,
            warns
        ));
        out
    }
}

/// What verify needs to know about the intent: the user-data of the last
/// run (batten keeps a root-only copy) and the root.
pub struct Inputs<'a> {
    /// The root being verified.
    pub root: &'a Root,
    /// Its distribution.
    pub distro: &'a Distro,
    /// The user-data the last run acted on (defaults when there is none).
    pub user_data: &'a UserData,
    /// What starts the checking programs.
    pub runner: &'a dyn Runner,
}

/// `sshd -t` or `nginx -t` on the root's configuration, as check `id`.
pub fn config_check(inp: &Inputs, r: &mut Report, id: &str, daemon: Daemon) {
    let what = format!("{} -t", daemon.program());
    match daemon::check(inp.runner, inp.root, daemon) {
        Ok(()) => r.add(
            id,
            Status::Pass,
            what,
            format!("{} accepts its configuration", daemon.program()),
        ),
        Err(CheckError::Missing(missing)) => r.add(
            id,
            Status::Skip,
            what,
            format!("{missing} is not installed here"),
        ),
        Err(e @ CheckError::Foreign { .. }) => r.add(
            id,
            Status::Warn,
            what,
            format!("{e}; the machine's first boot checks it live before the seal"),
        ),
        Err(e) => r.add(id, Status::Fail, what, e.to_string()),
    }
}
