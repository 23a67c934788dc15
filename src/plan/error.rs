//! Why a plan could not be made, or one of its steps failed. Planning changes nothing, so every one of
//! these leaves the root as it was; the exit code each maps to is chosen
//! at the edge (`exit`).

use crate::host::exec::ExecError;
use crate::host::root::RootError;

/// A plan that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The root could not be read.
    #[error("{0}; nothing was changed")]
    Root(#[from] RootError),
    /// The user-data asks for something this root makes impossible or
    /// unsafe (a lock-out, a port sshd holds); the user must change it.
    #[error("{0}")]
    Refused(String),
    /// A program the plan needs is not in the root.
    #[error("{0}")]
    Missing(String),
    /// Anything else that stopped planning.
    #[error("{0}")]
    Failed(String),
}

impl PlanError {
    /// The user-data must change.
    pub fn refused(message: impl Into<String>) -> PlanError {
        PlanError::Refused(message.into())
    }

    /// The root lacks a program.
    pub fn missing(message: impl Into<String>) -> PlanError {
        PlanError::Missing(message.into())
    }

    /// Planning failed for another reason.
    pub fn failed(message: impl Into<String>) -> PlanError {
        PlanError::Failed(message.into())
    }
}

/// Why one step of a plan failed while it was applied; the run is then
/// rolled back (`apply`), and the message says what the step met.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A file of the root could not be read or written.
    #[error(transparent)]
    Root(#[from] RootError),
    /// A program could not run, or refused.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The step found the root not as it must be, in words.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for StepError {
    fn from(message: String) -> StepError {
        StepError::Failed(message)
    }
}

impl From<&str> for StepError {
    fn from(message: &str) -> StepError {
        StepError::Failed(message.to_string())
    }
}
