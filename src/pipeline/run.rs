//! Carrying a plan out and recording the run: the host keys' owner as
//! soon as they exist, the run's record and journal, and the baseline
//! that keeps a machine safe and reachable when it has no usable
//! user-data.

use std::time::Instant;

use log::{info, warn};

use super::options::RootArgs;
use super::{Prepared, lock_for_changes, open_root};
use crate::apply;
use crate::concerns::accounts::Accounts;
use crate::concerns::ssh::HostKeysOwner;
use crate::exit::{Code, Failure};
use crate::host::distro::Distro;
use crate::host::exec::System;
use crate::host::root::{Backup, Root};
use crate::input;
use crate::input::sources::fingerprint_of;
use crate::plan::{AccountStep, Action, Plan};
use crate::state::{self, Journal, KeysFor, LockedDefault, RunRecord, State};

/// What a run did, for the command to tell.
pub struct Ran {
    /// The run's id: its journal's and backup directory's name.
    pub run_id: String,
    /// The instance it was for.
    pub instance: String,
    /// How many actions changed something.
    pub changes: usize,
    /// Where the files it replaced are kept, on this machine.
    pub backup_dir: String,
    /// Where its journal is, on this machine.
    pub journal_dir: String,
    /// Checks an image's programs could not run here.
    pub static_only: Vec<String>,
}

/// Apply `plan` to `root`, recording in `state` whose host keys the root
/// holds as soon as they are made, and putting the previous record back
/// when the rollback took them away again.
fn apply_recording_keys(
    plan: &Plan,
    root: &Root,
    backup: &Backup,
    journal: &mut Journal,
    state: &mut State,
    keys_for: &KeysFor,
) -> Result<usize, Failure> {
    let before = state.keys_record();
    let mut keys_made = |action: &Action| {
        // Recorded at once, so that a re-run after a kill keeps the keys
        // rather than making new ones.
        let Action::HostKeys { generate, .. } = action else {
            return;
        };
        let made: Vec<String> = generate
            .iter()
            .map(|t| crate::concerns::ssh::host_keys::private_path(*t))
            .collect();
        state.claim_host_keys(keys_for, &made);
        if let Err(e) = state.save(root) {
            warn!("could not record that the host keys were made: {e}");
        }
    };
    let result = apply::apply(plan, root, backup, &System, journal, &mut keys_made);
    if result.is_err() && root.is_host() {
        crate::host::after_sshd::discard();
    }
    if result.is_err() && state.restore_keys_record(before) {
        // The roll-back took the keys away again: they are not this
        // instance's (or boot's), and the next run must make new ones.
        if let Err(e) = state.save(root) {
            warn!("could not record that the host keys were rolled back: {e}");
        }
    }
    result
}

/// With no local user-data at first boot, queue the network stage
/// (`batten-metadata.service`, installed but not enabled: see
/// [`crate::state::METADATA_UNIT`]). It is ordered after this run and
/// before sshd and nginx, so they wait for it only on a machine that needs
/// it. Only in the first stage (sshd waits for it): a run by hand queues
/// nothing, as the enabled unit of older images ran only at boot. Nothing
/// for a sealed machine. On a cloud that gives keys only through its
/// metadata service a machine that never asks is one nobody can log in
/// to, so a failure is said loudly. (Not `OnFailure=` in batten.service:
/// that job pulls sysinit.target's wants in again, batten.service among
/// them, which fails again: a loop.)
pub fn queue_metadata_stage(args: &RootArgs) {
    if !crate::host::after_sshd::sshd_waits() {
        return;
    }
    // An unreadable state is no reason not to ask.
    let sealed = open_root(args)
        .ok()
        .and_then(|root| State::load(&root).ok())
        .is_some_and(|state| state.sealed);
    if sealed {
        return;
    }
    let unit = crate::state::METADATA_UNIT
        .0
        .rsplit('/')
        .next()
        .unwrap_or_default();
    match crate::host::daemon::start_queued(&System, unit) {
        Ok(()) => info!(
            "{unit} asks the cloud's metadata service for user-data once the network is up; sshd and nginx wait for it"
        ),
        Err(e) => eprintln!(
            "batten: {e}: no metadata service is asked this boot; start it by hand (systemctl start {unit}) if this machine gets its keys from one"
        ),
    }
}

/// With no user-data (or user-data batten refused at boot) the first stage
/// still makes the machine safe and reachable: batten's default-deny
/// firewall with SSH allowed, so that nothing else is reachable while
/// batten-metadata.service waits for the network or until someone fixes
/// the user-data, and host keys of the types the root lacks (a generalized
/// image has none, and sshd does not start without them). sshd's settings,
/// accounts and everything else are left as the image has them, and a
/// sealed machine is left alone. Returns what the owner should know.
pub fn baseline(args: &RootArgs) -> Result<Vec<String>, Failure> {
    let root = open_root(args)?;
    let _lock = lock_for_changes(&root)?;
    let mut state =
        State::load(&root).map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
    if state.sealed {
        return Ok(Vec::new());
    }
    let distro =
        Distro::detect(&root, args.family).map_err(|e| Failure::new(Code::Usage, e.to_string()))?;
    let mut notes = crate::input::pi_os::notes(&root);
    for note in &notes {
        println!("note: {note}");
    }
    // One ed25519 key is all sshd needs to start, and it takes milliseconds
    // where RSA takes a second (a minute under emulation): the run that
    // follows with user-data adds the types it asks for and keeps this one
    // if wanted (it is recorded as this boot's).
    let loaded = input::load(
        "(no user-data)",
        b"#cloud-config\nssh_genkeytypes: [ed25519]\n",
    )
    .map_err(|_| {
        Failure::new(
            Code::ApplyFailed,
            "the built-in baseline user-data did not validate; this is a bug in batten",
        )
    })?;
    let ud = &loaded.user_data;
    let accounts =
        Accounts::load(&root).map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
    let inputs = crate::concerns::ssh::Inputs {
        user_data: ud,
        users: &[],
        accounts: &accounts,
        root: &root,
        distro: &distro,
        host_keys: HostKeysOwner::ThisInstance,
        homes_made: &[],
        // Host keys only: the crypto policy is not planned here.
        sshd: &Default::default(),
    };
    let mut actions: Vec<Action> = crate::concerns::ssh::plan_missing_host_keys(&inputs)?
        .into_iter()
        .collect();
    let ssh_ports = crate::concerns::ssh::listening_ports(&root, ud)?;
    actions.extend(crate::concerns::firewall::plan(
        ud, &root, &distro, ssh_ports, &mut notes,
    )?);
    // Never a default password, not even until user-data comes.
    let mut locks = Vec::new();
    actions.extend(crate::concerns::passwords::plan_locks(
        &accounts,
        &[],
        &mut locks,
    ));
    actions.extend(crate::concerns::passwords::plan::plan_userconf(
        &root, &mut locks,
    )?);
    for note in &locks {
        println!("note: {note}");
    }
    notes.extend(locks);
    if actions.is_empty() {
        return Ok(notes);
    }
    println!(
        "batten's baseline only: host keys sshd lacks, the default firewall (SSH allowed, everything else dropped) and known default passwords locked; nothing else is changed"
    );
    let plan = Plan {
        actions,
        notes: notes.clone(),
    };
    apply::check_programs(&root, &plan)?;
    apply::check_space(&root, &plan)?;
    let run_id = state::new_run_id();
    // Keys made here belong to this boot until an instance claims them.
    apply_recording_keys(
        &plan,
        &root,
        &Backup::new(&run_id),
        &mut Journal::new(&run_id),
        &mut state,
        &KeysFor::Boot,
    )?;
    record_locked_defaults(&mut state, &plan, &run_id);
    state
        .save(&root)
        .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
    Ok(notes)
}

/// Remember the accounts whose known default password `plan` locked (an
/// account locked again replaces its older record).
fn record_locked_defaults(state: &mut State, plan: &Plan, run_id: &str) {
    for action in &plan.actions {
        let Action::Accounts { steps } = action else {
            continue;
        };
        for step in steps {
            if let AccountStep::LockDefault { user, found, .. } = step {
                state.default_passwords_locked.retain(|l| &l.user != user);
                state.default_passwords_locked.push(LockedDefault {
                    user: user.clone(),
                    was: found.clone(),
                    run: run_id.to_string(),
                });
            }
        }
    }
}

/// When a run began: the record's timestamp and the clock its duration
/// is measured with.
pub struct Started {
    /// RFC 3339 UTC.
    pub at: String,
    /// The monotonic clock then.
    pub instant: Instant,
}

impl Started {
    /// Now.
    pub fn now() -> Started {
        Started {
            at: state::now_utc(),
            instant: Instant::now(),
        }
    }
}

/// Carry out a prepared plan and record the run in the root's state.
pub fn carry_out(prepared: Prepared, started: Started, force: bool) -> Result<Ran, Failure> {
    let Prepared {
        root,
        found,
        instance,
        plan,
        mut state,
        lock: _held,
        tls_sites,
    } = prepared;
    apply::check_programs(&root, &plan)?;
    apply::check_space(&root, &plan)?;
    let run_id = state::new_run_id();
    let backup = Backup::new(&run_id);
    let mut journal = Journal::new(&run_id);
    let result = apply_recording_keys(
        &plan,
        &root,
        &backup,
        &mut journal,
        &mut state,
        &KeysFor::Instance(instance.id.clone()),
    );
    // An image's checks its programs could not run here: named now, kept
    // for the machine's first boot; a live run made every check live.
    state.static_only = if root.is_host() {
        Vec::new()
    } else {
        let mut left = crate::host::exec::take_static_only();
        left.dedup();
        left
    };
    if result.is_ok() {
        record_locked_defaults(&mut state, &plan, &run_id);
        let certificates = crate::concerns::proxy::tls::record(&root, &tls_sites);
        if certificates != state.certificates && !certificates.is_empty() {
            // On the console (batten.service's output goes there) beside
            // the SSH host keys: what the owner checks HTTPS against.
            print!(
                "{}",
                crate::concerns::proxy::tls::fingerprint_block(&certificates)
            );
        }
        state.certificates = certificates;
        // Also when no step made keys: the keys there are this instance's.
        state.baseline_host_keys.clear();
        state.host_keys_instance = Some(instance.id.clone());
        // The card as this run left it (its secrets taken out): the seal
        // takes only a card a run applied.
        if let Some(path) = found
            .in_root
            .as_deref()
            .filter(|_| found.on_boot_partition())
        {
            let meta = found.meta_data.as_ref().map(|m| m.1.as_slice());
            state.applied_seed = root
                .read(path)
                .ok()
                .flatten()
                .map(|now| fingerprint_of(&now, meta));
        }
    }
    let (outcome, changes) = match &result {
        Ok(0) => ("unchanged", 0),
        Ok(n) => ("applied", *n),
        Err(_) => ("failed", 0),
    };
    if state.instance_id.as_deref() != Some(instance.id.as_str()) {
        // A new instance (a clone, a new VPS from the image) is not sealed,
        // whatever the image's previous life recorded.
        state.sealed = false;
        state.instance_id = Some(instance.id.clone());
    } else if state.sealed && force {
        info!("re-running a sealed instance (--force)");
    }
    state.runs.push(RunRecord {
        id: run_id.clone(),
        started: started.at,
        finished: state::now_utc(),
        instance_id: instance.id.clone(),
        source: found.source.clone(),
        outcome: outcome.to_string(),
        changes,
        millis: started.instant.elapsed().as_millis(),
        steps: journal.steps.clone(),
    });
    if let Err(e) = state.save(&root) {
        // Say both when both went wrong: the apply error matters more.
        let message = match result {
            Err(failure) => format!("{failure}\nalso: could not record the run: {e}"),
            Ok(_) => format!("the changes were made, but the run could not be recorded: {e}"),
        };
        return Err(Failure::new(Code::ApplyFailed, message));
    }
    result?;
    info!(
        "run {run_id} finished in {} ms",
        started.instant.elapsed().as_millis()
    );
    Ok(Ran {
        run_id,
        instance: instance.id,
        changes,
        backup_dir: root.host_path(&backup.dir()).display().to_string(),
        journal_dir: root.host_path(state::JOURNAL_DIR).display().to_string(),
        static_only: state.static_only,
    })
}
