//! `batten install`: bake batten into an image.

use std::path::PathBuf;

use clap::Args;

use crate::exit::{Code, Failure};
use crate::pipeline::{binary, open_path};
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
    /// The batten binary to put in: by default this one when the image's
    /// programs are for the same machine, else the `batten-<target>` build
    /// beside it for the image's machine (a Raspberry Pi image baked on a
    /// laptop gets the ARM build).
    #[arg(long, value_name = "FILE")]
    pub binary: Option<PathBuf>,
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
        let exe = std::env::current_exe().map_err(|e| {
            Failure::new(
                Code::ApplyFailed,
                format!("cannot find the running batten binary: {e}"),
            )
        })?;
        let bytes = std::fs::read(&exe).map_err(|e| {
            Failure::new(
                Code::ApplyFailed,
                format!("cannot read the running batten binary: {e}"),
            )
        })?;
        let chosen = binary::choose(&root, self.binary.as_deref(), (&exe, bytes))
            .map_err(|e| Failure::new(Code::Usage, format!("{e}; nothing was installed")))?;
        for note in &chosen.notes {
            println!("note: {note}");
        }
        if chosen.path != exe {
            println!("the image's build: {}", chosen.path.display());
        }
        let mut done = state::install(&root, &chosen.bytes, self.generalize)
            .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
        let page = super::manual::page()?;
        let installed = state::install_manual(&root, &page)
            .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
        done.extend(installed);
        done.extend(remember_ssh_algorithms(&root));
        if done.is_empty() {
            println!("batten is already installed in {}", root.path().display());
        }
        for line in done {
            println!("{line}");
        }
        Ok(Code::Ok)
    }
}

/// Ask the image's ssh what it supports now, while baking, and keep the
/// answer for the first boot (`concerns::ssh::query_cache`): four programs
/// fewer before sshd starts. Where its ssh cannot run here (another
/// machine's image) the first boot asks it instead, as without a record.
fn remember_ssh_algorithms(root: &crate::host::root::Root) -> Option<String> {
    use crate::concerns::ssh::query_cache;
    match query_cache::ask_and_keep(&crate::host::exec::System, root) {
        Ok(query_cache::Kept::Written) => Some(format!(
            "kept what the image's ssh supports in {} (its first boot need not ask)",
            query_cache::PATH
        )),
        Ok(query_cache::Kept::Already) => None,
        Ok(query_cache::Kept::NotAsked(why)) => {
            println!(
                "note: the image's ssh could not be asked what it supports here ({why}): its first boot asks it"
            );
            None
        }
        Err(e) => {
            println!(
                "note: could not keep what the image's ssh supports ({e}): its first boot asks it"
            );
            None
        }
    }
}
