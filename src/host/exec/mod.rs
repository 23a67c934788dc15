//! The one place batten starts a program, behind the [`Runner`] trait.
//!
//! Everything that runs a program (useradd on the copy of the account
//! files, `systemctl reload`, `nft -f`, `sshd -T`, the image's own checks)
//! is handed a `&dyn Runner` by its caller instead of reaching for
//! `std::process::Command`: the real one is [`System`], and tests pass
//! [`fake::Fake`], which answers from a script and records every call, so
//! that apply's rollback and each concern's apply are proven without root.

mod child;
#[cfg(test)]
pub mod fake;
mod image;

use std::io::Write as _;
use std::process::{Command, Stdio};

pub use child::{Limits, SelfOutput, run_self};
pub use image::{
    Check, ExecError, Found, find_program, in_image, locate, static_only, take_static_only,
};

use crate::host::root::Root;

/// One start of a program of this machine's (not a check of an image).
pub struct Call<'a> {
    /// The program's name, looked up with [`find_program`].
    pub program: &'a str,
    /// Its arguments, passed as they are: no shell ever sees them.
    pub args: &'a [&'a str],
    /// What to give it on standard input; `None` closes it.
    pub stdin: Option<&'a [u8]>,
}

impl Call<'_> {
    /// The words of the call, for messages and for a fake's script.
    pub fn line(&self) -> String {
        std::iter::once(self.program)
            .chain(self.args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a program said.
#[derive(Debug)]
pub struct Output {
    /// It exited with status 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error, trimmed, for the failure message.
    pub stderr: String,
}

/// Starts programs. Callers take it as a parameter (a seam, not global
/// state), so a test decides what every program answers.
pub trait Runner {
    /// Run a program of this machine's and wait for it. `Err` only when it
    /// is not installed or could not be started; a refusal is an `Output`
    /// whose `success` is false.
    fn run(&self, call: &Call) -> Result<Output, ExecError>;

    /// Run a check for `root` with the program [`locate`] finds (for an
    /// image, its own, inside the image); its standard output when the
    /// check passes.
    fn check(&self, root: &Root, check: &Check) -> Result<String, ExecError>;
}

/// The real machine: `std::process::Command`.
pub struct System;

impl Runner for System {
    fn run(&self, call: &Call) -> Result<Output, ExecError> {
        // The program check_programs found, not whatever PATH finds now.
        let program =
            find_program(call.program).ok_or_else(|| ExecError::Missing(call.program.into()))?;
        let mut command = Command::new(program);
        command.args(call.args);
        let out = output(command, call.stdin).map_err(|error| ExecError::Io {
            program: call.program.to_string(),
            error,
        })?;
        Ok(Output {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    fn check(&self, root: &Root, check: &Check) -> Result<String, ExecError> {
        image::run_check(root, check)
    }
}

/// Run `command` to its end with `stdin` (or none) and its output piped.
/// The input goes in from another thread while the output is read, so
/// neither side waits on a full pipe.
fn output(mut command: Command, stdin: Option<&[u8]>) -> std::io::Result<std::process::Output> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = std::time::Instant::now();
    let mut child = command.spawn()?;
    let out = std::thread::scope(|scope| {
        if let (Some(bytes), Some(mut input)) = (stdin, child.stdin.take()) {
            scope.spawn(move || {
                // A program that stops reading early says why on stderr.
                let _ = input.write_all(bytes);
            });
        }
        child.wait_with_output()
    });
    // Every program batten starts, with its time: the benchmark lists them
    // (RUST_LOG=debug), since each one on sshd's path delays the first login.
    log::debug!(
        "ran {} in {} ms",
        command_line(&command),
        started.elapsed().as_millis()
    );
    out
}

/// A command as one line, for logs: a script given to a shell (the
/// namespace wrapper's) is shown as `<script>`.
fn command_line(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|s| {
            let s = s.to_string_lossy();
            if s.contains('\n') {
                "<script>".into()
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
