//! A [`Runner`] for tests: answers from a script, records every call.

use std::sync::Mutex;

use super::{Call, Check, ExecError, Output, Runner};
use crate::host::root::Root;

/// What a scripted program answers: `Ok(stdout)` when it succeeds,
/// `Err(stderr)` when it refuses.
pub type Answer = Result<String, String>;

/// Answers each call with `script(line)`, where `line` is the program and
/// its arguments joined by spaces, and a check's line begins with
/// `check `. Every line is kept in `calls`, in order.
pub struct Fake {
    script: Box<dyn Fn(&str) -> Answer + Send + Sync>,
    /// The calls so far.
    pub calls: Mutex<Vec<String>>,
}

impl Fake {
    /// A fake whose programs answer as `script` says.
    pub fn new(script: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Fake {
        Fake {
            script: Box::new(script),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// A fake where every program succeeds and prints nothing.
    pub fn agreeing() -> Fake {
        Fake::new(|_| Ok(String::new()))
    }

    /// The calls so far, one line each.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn answer(&self, line: String) -> Answer {
        let answer = (self.script)(&line);
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
        answer
    }
}

impl Runner for Fake {
    fn run(&self, call: &Call) -> Result<Output, ExecError> {
        Ok(match self.answer(call.line()) {
            Ok(stdout) => Output {
                success: true,
                stdout,
                stderr: String::new(),
            },
            Err(stderr) => Output {
                success: false,
                stdout: String::new(),
                stderr,
            },
        })
    }

    fn check(&self, _root: &Root, check: &Check) -> Result<String, ExecError> {
        let line = std::iter::once("check")
            .chain(std::iter::once(check.program))
            .chain(check.args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        self.answer(line).map_err(ExecError::Refused)
    }
}
