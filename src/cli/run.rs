//! `batten run`: find the user-data, plan and apply it.

use clap::Args;
use log::warn;

use super::{MetadataArgs, RootArgs, SourceArgs};
use crate::concerns::accounts;
use crate::exit::{Code, Failure};
use crate::host::distro::Distro;
use crate::input::sources::Found;
use crate::pipeline::boot_status::{self, BootStatus};
use crate::pipeline::run::{Started, baseline, carry_out, queue_metadata_stage};
use crate::pipeline::sources::{fetch_metadata, nothing_found, write_run_file};
use crate::pipeline::{Prepare, Purpose, open_root, prepare};
use crate::state::METADATA_FAILURE;

/// What a run came to, when it did not fail.
enum Outcome {
    /// The user-data was applied (or already was) for this instance;
    /// the plan's notes.
    Hardened(String, Vec<String>),
    /// No user-data: only the baseline; what the owner should know.
    Baseline(Vec<String>),
    /// Nothing was done: a sealed instance, or no metadata provider.
    Nothing,
}

/// `batten run [--root DIR] [--user-data FILE] [--force] [--from-metadata]`
#[derive(Debug, Args)]
pub struct Run {
    /// The system to harden.
    #[command(flatten)]
    pub root: RootArgs,
    /// Where the user-data comes from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Run even when this instance was already sealed (recovery).
    #[arg(long)]
    pub force: bool,
    /// Where network metadata comes from.
    #[command(flatten)]
    pub metadata: MetadataArgs,
}

impl Run {
    /// Find, plan, apply, record; say what happened, and on a Raspberry
    /// Pi leave it on the boot partition too.
    pub fn run(&self) -> Result<Code, Failure> {
        let result = self.harden();
        match &result {
            Ok(Outcome::Hardened(instance, notes)) => {
                self.tell_owner("hardened", Vec::new(), notes.clone(), Some(instance))
            }
            Ok(Outcome::Baseline(notes)) => self.tell_owner(
                "no-user-data",
                vec![format!(
                    "{}; only the baseline was applied (the firewall, and host keys sshd lacked)",
                    nothing_found()
                )],
                notes.clone(),
                None,
            ),
            Ok(Outcome::Nothing) => {}
            Err(failure) => {
                // A first stage that failed before it could tell whether
                // there is local user-data (no seed could be read, the
                // root or the lock could not be had) still lets the
                // provider's user-data in: batten-metadata.service skips
                // itself where local user-data was found.
                if !self.metadata.from_metadata
                    && self.metadata.provider.is_none()
                    && self.source.user_data.is_none()
                    && !std::path::Path::new(crate::state::LOCAL_USER_DATA_MARKER).exists()
                {
                    queue_metadata_stage(&self.root);
                }
                let word = if failure.code == Code::InvalidUserData {
                    "refused"
                } else {
                    "failed"
                };
                let mut errors = vec![failure.message.clone()];
                errors.extend(failure.details.iter().cloned());
                let notes = open_root(&self.root)
                    .map(|root| crate::input::pi_os::notes(&root))
                    .unwrap_or_default();
                self.tell_owner(word, errors, notes, None);
            }
        }
        result.map(|_| Code::Ok)
    }

    /// The status file for a headless owner, where the root has a Pi boot
    /// partition.
    fn tell_owner(
        &self,
        result: &str,
        errors: Vec<String>,
        notes: Vec<String>,
        instance: Option<&String>,
    ) {
        // It tells of the first boot's own run: user-data given by hand is
        // answered on the terminal, and changes nothing when refused.
        if self.source.user_data.is_some() {
            return;
        }
        let Ok(root) = open_root(&self.root) else {
            return;
        };
        let mut status = BootStatus::new(&root, "run", result, errors);
        status.instance_id = instance.cloned();
        status.notes = notes;
        boot_status::record(&root, &status);
    }

    /// The run itself.
    fn harden(&self) -> Result<Outcome, Failure> {
        let fetched = if self.metadata.from_metadata || self.metadata.provider.is_some() {
            match self.fetch()? {
                Some(found) => Some(found),
                None => return Ok(Outcome::Nothing),
            }
        } else {
            None
        };
        let started = Started::now();
        let purpose = Purpose::Run { force: self.force };
        let prepared = match prepare(&self.root, &self.source, purpose, fetched) {
            Ok(Prepare::Ready(prepared)) => prepared,
            Ok(Prepare::NothingFound) => {
                warn!("{}", nothing_found());
                let made = baseline(&self.root);
                // Whether or not the baseline worked: the provider's
                // user-data may still make the machine what it should be.
                queue_metadata_stage(&self.root);
                return Ok(Outcome::Baseline(made?));
            }
            Ok(Prepare::Sealed(id)) => {
                eprintln!(
                    "batten: instance {id} is sealed: batten already ran here; nothing to do (use --force to run again)"
                );
                return Ok(Outcome::Nothing);
            }
            // User-data found at boot and refused: it changes nothing, but
            // the machine still gets what sshd needs to start and the
            // firewall, so the owner can get in as the image allows and fix
            // it. Given by hand (--user-data), a refusal changes nothing.
            Err(failure)
                if failure.code == Code::InvalidUserData
                    && self.source.user_data.is_none()
                    && open_root(&self.root)?.is_host() =>
            {
                baseline(&self.root)?;
                return Err(failure);
            }
            Err(failure) => return Err(failure),
        };
        // Notes go to the console whatever RUST_LOG says: they include
        // where generated passwords are and what batten left to cloud-init.
        for note in &prepared.plan.notes {
            println!("note: {note}");
        }
        let notes = prepared.plan.notes.clone();
        let ran = carry_out(*prepared, started, self.force)?;
        if !ran.static_only.is_empty() {
            println!(
                "checked statically only, since the image's programs cannot run on this machine: {}; the machine's first boot checks them live before it seals",
                ran.static_only.join(", ")
            );
        }
        if ran.changes == 0 {
            println!(
                "nothing to change: the root already matches the user-data (instance {})",
                ran.instance
            );
        } else {
            println!(
                "applied {} changes for instance {}; previous files are in {}, the journal in {}/{}.log",
                ran.changes, ran.instance, ran.backup_dir, ran.journal_dir, ran.run_id
            );
        }
        Ok(Outcome::Hardened(ran.instance, notes))
    }

    /// User-data from the metadata service; `None` when no provider is
    /// recognised. On the live system the outcome is left in /run for
    /// `status`.
    fn fetch(&self) -> Result<Option<Found>, Failure> {
        // A root that cannot be used is a usage error before any request.
        let root = open_root(&self.root)?;
        // GCE's keys name their user: only the image's default user's count.
        let default_user = Distro::detect(&root, self.root.family)
            .ok()
            .and_then(|distro| accounts::image_default_user(&root, &distro, &mut Vec::new()).name);
        let fetched = fetch_metadata(&self.metadata, default_user.as_deref());
        if root.is_host() {
            match &fetched {
                Err(e) => write_run_file(METADATA_FAILURE, &e.to_string()),
                Ok(_) => {
                    let _ = std::fs::remove_file(METADATA_FAILURE);
                }
            }
        }
        fetched
    }
}
