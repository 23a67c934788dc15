//! Exit codes (DESIGN.md) and the error that carries one to `main`.
//!
//! Scripts and systemd units act on the code, people on the message, so
//! every failure has both.

use std::fmt;

/// The exit codes batten promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Success, or nothing to do.
    Ok = 0,
    /// Verification found a failure.
    VerifyFailed = 1,
    /// The command line was wrong.
    Usage = 2,
    /// The user-data is invalid; nothing was changed.
    InvalidUserData = 65,
    /// A program batten needs is not installed.
    MissingProgram = 69,
    /// Applying failed; what could be rolled back was.
    ApplyFailed = 70,
}

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// The process's exit status.
    pub code: Code,
    /// What went wrong and what to do, printed after `batten: `.
    pub message: String,
    /// Each problem behind it, already printed on its own line (the
    /// user-data's errors), for reports that are read elsewhere.
    pub details: Vec<String>,
}

impl Failure {
    /// A failure with `code` and a message saying what to do.
    pub fn new(code: Code, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// The same failure, with the problems behind it.
    pub fn with_details(mut self, details: Vec<String>) -> Failure {
        self.details = details;
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit code of each way planning can fail: the one place a plan's
/// error becomes a code.
impl From<crate::plan::PlanError> for Failure {
    fn from(e: crate::plan::PlanError) -> Failure {
        use crate::plan::PlanError;
        let code = match &e {
            PlanError::Refused(_) => Code::InvalidUserData,
            PlanError::Missing(_) => Code::MissingProgram,
            PlanError::Root(_) | PlanError::Failed(_) => Code::ApplyFailed,
        };
        Failure::new(code, e.to_string())
    }
}
