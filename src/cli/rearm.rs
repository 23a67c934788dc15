//! `batten rearm`: make the next boot run batten again.

use std::path::PathBuf;

use clap::Args;

use crate::exit::{Code, Failure};
use crate::pipeline::open_path;
use crate::state;

/// `batten rearm [--root DIR]`
#[derive(Debug, Args)]
pub struct Rearm {
    /// Work on the system mounted at DIR instead of the running one.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

impl Rearm {
    /// Put the units' enable links back and clear the seal.
    pub fn run(&self) -> Result<Code, Failure> {
        let root = open_path(&self.root)?;
        let done =
            state::rearm(&root).map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
        if done.is_empty() {
            println!("already armed: the next boot runs batten");
        }
        for line in done {
            println!("{line}");
        }
        Ok(Code::Ok)
    }
}
