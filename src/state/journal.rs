//! The journal of a run: every step as it finishes, on disk at once, so a
//! run killed half-way leaves a trace of how far it got.

use super::{JOURNAL_DIR, Step, now_utc, private_owner};
use crate::host::root::{Root, RootError};

/// The journal of one run: a line per step, written through as it goes.
pub struct Journal {
    path: String,
    text: String,
    /// The steps recorded so far, for the run's `RunRecord`.
    pub steps: Vec<Step>,
}

impl Journal {
    /// Start the journal of run `run`.
    pub fn new(run: &str) -> Journal {
        Journal {
            path: format!("{JOURNAL_DIR}/{run}.log"),
            text: String::new(),
            steps: Vec::new(),
        }
    }

    /// Record a finished step and write the journal to disk. Step texts are
    /// summaries, never secrets.
    pub fn record(
        &mut self,
        root: &Root,
        what: &str,
        ok: bool,
        millis: u128,
    ) -> Result<(), RootError> {
        let mark = if ok { "ok" } else { "FAILED" };
        self.text
            .push_str(&format!("{} {mark} {millis}ms {what}\n", now_utc()));
        self.steps.push(Step {
            what: what.to_string(),
            ok,
            millis,
        });
        root.create_dir_all(JOURNAL_DIR, private_owner(0o700))?;
        root.write_atomic(&self.path, self.text.as_bytes(), private_owner(0o600), None)?;
        Ok(())
    }
}
