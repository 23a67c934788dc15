//! The stages wired together: find the user-data (`sources`), load and
//! validate it, plan from it and the root (`build`), apply and record the
//! run (`run`). The commands in `cli` call these and print the results.

pub mod binary;
pub mod boot_status;
pub mod build;
pub mod options;
pub mod recorded;
pub mod run;
pub mod sources;

use std::path::Path;

use log::info;

use crate::concerns::accounts::Accounts;
use crate::concerns::accounts::apply as account_files;
use crate::concerns::ssh::HostKeysOwner;
use crate::exit::{Code, Failure};
use crate::host::distro::Distro;
use crate::host::root::{Backup, Root};
use crate::input::meta;
use crate::input::sources::{self as seeds, Found, Host, InstanceId};
use crate::input::validate::Issue;
use crate::plan::Plan;
use crate::state::LOCAL_USER_DATA_MARKER;
use crate::state::{self, RunLock, State};
use build::build_plan;
use options::{RootArgs, SourceArgs};
use sources::{instance_data, load_or_exit, locate, write_run_file};

/// Everything the plan and run commands share: the root, what was found,
/// what it means, and the plan.
pub struct Prepared {
    /// The root the plan is for.
    pub root: Root,
    /// Where the user-data came from.
    pub found: Found,
    /// The instance the user-data is for.
    pub instance: InstanceId,
    /// What would change.
    pub plan: Plan,
    /// batten's state in the root, as the plan found it.
    pub state: State,
    /// The run lock, held until the run has recorded itself.
    pub lock: Option<RunLock>,
    /// The proxy sites that serve HTTPS, by name, with their files: their
    /// certificates are recorded and shown once the run succeeded.
    pub tls_sites: Vec<(String, crate::concerns::proxy::nginx::TlsFiles)>,
}

/// What [`prepare`] found.
pub enum Prepare {
    /// A plan to show or carry out.
    Ready(Box<Prepared>),
    /// No user-data anywhere batten looks.
    NothingFound,
    /// The instance is sealed and the run was not forced: nothing to do.
    Sealed(String),
}

/// What the caller of [`prepare`] will do with the plan.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `batten plan`: show it. Nothing waits for a seed disk, takes the
    /// run lock or marks the boot.
    Show,
    /// `batten run`: carry it out. A sealed instance stops before planning
    /// unless `force`.
    Run {
        /// `--force`: run a sealed instance again.
        force: bool,
    },
}

/// Find, load and validate the user-data, and plan from it and the root.
/// A run plans under the run lock, held in the result until it is dropped.
pub fn prepare(
    args: &RootArgs,
    source: &SourceArgs,
    purpose: Purpose,
    fetched: Option<Found>,
) -> Result<Prepare, Failure> {
    let root = open_root(args)?;
    let runs = purpose != Purpose::Show;
    let mut host = Host::live();
    if runs {
        // Only a run waits for an announced seed disk.
        host.seed_wait = seeds::SEED_WAIT;
    }
    let found = match fetched {
        Some(found) => found,
        None => match locate(&root, source, &host)? {
            Some(found) => {
                if runs && root.is_host() {
                    // The first stage had local user-data, good or bad:
                    // batten-metadata.service has nothing to do this boot.
                    write_run_file(LOCAL_USER_DATA_MARKER, &found.source);
                }
                found
            }
            None => return Ok(Prepare::NothingFound),
        },
    };
    info!("user-data: {} ({})", found.user_data_name, found.source);
    let meta = match &found.meta_data {
        Some((name, bytes)) => {
            meta::parse(name, bytes).map_err(|e| Failure::new(Code::InvalidUserData, e))?
        }
        None => meta::MetaData::default(),
    };
    let cmdline = seeds::cmdline_for(&root, &host);
    let instance = seeds::instance_id(&root, meta.instance_id.as_deref(), cmdline.as_deref())
        .ok_or_else(|| Failure::new(
            Code::InvalidUserData,
            "no instance-id: add `instance-id: ...` to meta-data (or --meta-data FILE); /etc/machine-id is empty too",
        ))?;
    let instance_data = instance_data(&root, &found, &meta, &instance);
    let mut loaded = load_or_exit(&found, &instance_data)?;
    // Keys the provider gives count as the default user's, as in cloud-init.
    loaded
        .user_data
        .ssh_authorized_keys
        .extend(meta.public_keys.iter().cloned());
    let distro =
        Distro::detect(&root, args.family).map_err(|e| Failure::new(Code::Usage, e.to_string()))?;
    // A run plans under the lock, so that what it plans from is what it
    // changes. Taken only now: invalid user-data leaves the root untouched.
    let lock = if runs {
        Some(lock_for_changes(&root)?)
    } else {
        None
    };
    let accounts =
        Accounts::load(&root).map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
    let state = State::load(&root).map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
    let mut state = state;
    let mut edited_card = None;
    if purpose == (Purpose::Run { force: false })
        && state.sealed
        && state.instance_id.as_deref() == Some(instance.id.as_str())
    {
        let edited = found.on_boot_partition()
            && state
                .seed_fingerprint
                .as_ref()
                .is_some_and(|sealed| *sealed != found.fingerprint());
        if !edited {
            return Ok(Prepare::Sealed(instance.id));
        }
        // The Pi's recovery path: the owner edited the card elsewhere.
        edited_card = Some(format!(
            "{} changed since instance {} was sealed (edited on another computer): batten runs again with it",
            found.user_data_name, instance.id
        ));
        state.sealed = false;
    }
    if runs {
        // The firewall is loaded before sshd starts: its kernel modules
        // load meanwhile, beside the rest of the run.
        crate::concerns::firewall::preload::start(&root, &loaded.user_data);
    }
    let host_keys = match &state.host_keys_instance {
        Some(id) if *id == instance.id => HostKeysOwner::ThisInstance,
        Some(id) if Some(id) == state::this_boot().as_ref() => {
            HostKeysOwner::ThisBoot(state.baseline_host_keys.clone())
        }
        _ => HostKeysOwner::Image,
    };
    // The one question planning asks a program: what the image's OpenSSH
    // supports (read-only, inside the image), for the crypto policy.
    let sshd = crate::concerns::ssh::query_cache::facts(&crate::host::exec::System, &root);
    let mut plan = build_plan(
        &root,
        &distro,
        &accounts,
        &loaded,
        &found,
        &instance_data,
        host_keys,
        &sshd,
    )?;
    plan.notes.splice(0..0, edited_card);
    let tls_sites = crate::concerns::proxy::tls::sites(&loaded.user_data);
    Ok(Prepare::Ready(Box::new(Prepared {
        root,
        found,
        instance,
        plan,
        state,
        lock,
        tls_sites,
    })))
}

/// Open the root the command works on.
pub fn open_root(args: &RootArgs) -> Result<Root, Failure> {
    open_path(&args.root)
}

/// Open `--root`, made absolute, so that the path handed to useradd
/// --prefix and friends means the same wherever they run.
pub fn open_path(path: &Path) -> Result<Root, Failure> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Root::open(&path)
        .map_err(|e| Failure::new(Code::Usage, format!("--root {}: {e}", path.display())))
}

/// Print each issue on standard error, `kind` first (`error`, `warning`).
pub fn print_issues(kind: &str, issues: &[Issue]) {
    for i in issues {
        eprintln!("{kind}: {i}");
    }
}

/// What every run does before it reads the root to change it: take the run
/// lock, and finish account changes a killed run left half done.
pub fn lock_for_changes(root: &Root) -> Result<RunLock, Failure> {
    let lock = RunLock::take(root).map_err(|e| Failure::new(Code::ApplyFailed, e))?;
    let backup = Backup::new(&state::new_run_id());
    account_files::finish_pending(root, &backup)
        .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
    Ok(lock)
}
