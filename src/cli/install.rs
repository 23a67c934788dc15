//! `batten install`: bake batten into an image.

use std::path::PathBuf;

use clap::Args;

use crate::exit::{Code, Failure};
use crate::pipeline::open_path;
use crate::state;

/// `batten install --root DIR [--generalize]`
#[derive(Debug, Args)]
pub struct Install {
    /// The image's root (required: install never works on the running system by accident).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// Also make the image generic for cloning.
    #[arg(long)]
    pub generalize: bool,
}

impl Install {
    /// Put this binary, its units and the manual page into the image.
    pub fn run(&self) -> Result<Code, Failure> {
        let root = open_path(&self.root)?;
        if root.is_host() {
            return Err(Failure::new(
                Code::Usage,
                "install works on an image mounted elsewhere, not on the running system; pass --root /mnt/image",
            ));
        }
        let exe = std::env::current_exe()
            .and_then(std::fs::read)
            .map_err(|e| {
                Failure::new(
                    Code::ApplyFailed,
                    format!("cannot read the running batten binary: {e}"),
                )
            })?;
        let mut done = state::install(&root, &exe, self.generalize)
            .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
        let page = super::manual::page()?;
        let installed = state::install_manual(&root, &page)
            .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
        done.extend(installed);
        if done.is_empty() {
            println!("batten is already installed in {}", root.path().display());
        }
        for line in done {
            println!("{line}");
        }
        Ok(Code::Ok)
    }
}
