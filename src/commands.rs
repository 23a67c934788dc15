//! One function per command: the pipeline stages wired together, and the
//! output people and scripts see. `main.rs` only parses and dispatches.

use std::io::Read as _;
use std::path::Path;
use std::time::Instant;

use log::{info, warn};
use serde::Serialize;

use crate::apply;
use crate::cli::{Format, MetadataArgs, RootArgs, SourceArgs};
use crate::concerns::accounts::files as account_files;
use crate::concerns::accounts::{self, Accounts};
use crate::concerns::ssh::HostKeysOwner;
use crate::exit::{Code, Failure};
use crate::host::distro::Distro;
use crate::host::exec::System;
use crate::host::root::{Backup, Root};
use crate::input::decode::MAX_USER_DATA_BYTES;
use crate::input::jinja::{InstanceData, Known};
use crate::input::sources::{self, Found, Host, InstanceId};
use crate::input::validate::Issue;
use crate::input::{self, Loaded, meta};
use crate::plan::{Action, Plan};
use crate::state::{self, Journal, RunLock, RunRecord, State};

/// Written (on the running system, in /run) when the first stage found
/// local user-data, so that batten-metadata.service skips this boot.
const LOCAL_USER_DATA_MARKER: &str = "/run/batten/local-user-data";

/// Why the metadata service gave nothing on this boot (live system only),
/// for `status`; /run, so it does not outlive the boot that tried.
const METADATA_FAILURE: &str = "/run/batten/metadata-failure";

/// Where the copy of the user-data batten acted on is kept (0600).
const USER_DATA_COPY: &str = "/var/lib/batten/user-data";

/// Where the instance data a jinja template was rendered with is kept
/// (0600), beside the user-data copy.
const INSTANCE_DATA_COPY: &str = "/var/lib/batten/instance-data.json";

fn read_input(path: &Path) -> Result<(String, Vec<u8>), Failure> {
    let mut bytes = Vec::new();
    let name = if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_USER_DATA_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::new(Code::Usage, format!("cannot read standard input: {e}")))?;
        "<stdin>".to_string()
    } else {
        let file = std::fs::File::open(path).map_err(|e| {
            Failure::new(Code::Usage, format!("cannot read {}: {e}", path.display()))
        })?;
        file.take(MAX_USER_DATA_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                Failure::new(Code::Usage, format!("cannot read {}: {e}", path.display()))
            })?;
        path.display().to_string()
    };
    if bytes.len() > MAX_USER_DATA_BYTES {
        return Err(Failure::new(
            Code::InvalidUserData,
            format!(
                "{name}: larger than {MAX_USER_DATA_BYTES} bytes; this is not user-data batten will read"
            ),
        ));
    }
    Ok((name, bytes))
}

fn print_issues(kind: &str, issues: &[Issue]) {
    for i in issues {
        eprintln!("{kind}: {i}");
    }
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
    left_to_cloud_init: Vec<String>,
    /// Parts batten does not read (scripts, `#include`, ...): the users,
    /// keys and settings in them are not batten's.
    other_parts: Vec<String>,
    /// Jinja templates rendered (with placeholder instance data unless
    /// --meta-data was given).
    rendered: Vec<String>,
    /// No SSH key in what batten reads while password login goes off: a run
    /// refuses the file unless the image or the meta-data gives a key.
    needs_keys_from_elsewhere: bool,
}

/// `batten validate FILE... [--meta-data FILE]`
pub fn validate(
    files: &[std::path::PathBuf],
    meta_data: Option<&Path>,
    format: Format,
) -> Result<Code, Failure> {
    let meta = match meta_data {
        Some(path) => {
            let (name, bytes) = read_input(path)?;
            meta::parse(&name, &bytes)
                .map_err(|e| Failure::new(Code::InvalidUserData, e))?
                .document
        }
        None => None,
    };
    let instance_data = InstanceData::placeholder(meta).rendered_by(renderer());
    let mut reports = Vec::new();
    for path in files {
        let (name, bytes) = read_input(path)?;
        let report = match input::load_with(&name, &bytes, &instance_data) {
            Ok(loaded) => {
                let ud = &loaded.user_data;
                let any_key = !ud.ssh_authorized_keys.is_empty()
                    || ud.users.iter().any(|u| !u.ssh_authorized_keys.is_empty())
                    || ud
                        .default_user_config
                        .as_ref()
                        .is_some_and(|u| !u.ssh_authorized_keys.is_empty());
                let passwords_off = ud.ssh_pwauth != crate::input::model::PasswordAuth::Allow;
                FileReport {
                    file: name,
                    valid: true,
                    errors: Vec::new(),
                    warnings: loaded.warnings,
                    left_to_cloud_init: loaded.user_data.left_to_cloud_init.clone(),
                    other_parts: loaded.other_parts,
                    rendered: loaded.rendered,
                    needs_keys_from_elsewhere: passwords_off && !any_key,
                }
            }
            Err(invalid) => FileReport {
                file: name,
                valid: false,
                errors: invalid.errors,
                warnings: invalid.warnings,
                left_to_cloud_init: Vec::new(),
                other_parts: Vec::new(),
                rendered: Vec::new(),
                needs_keys_from_elsewhere: false,
            },
        };
        reports.push(report);
    }
    let all_valid = reports.iter().all(|r| r.valid);
    match format {
        Format::Json => {
            let doc = serde_json::json!({ "valid": all_valid, "files": reports });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Human => {
            for r in &reports {
                print_issues("error", &r.errors);
                print_issues("warning", &r.warnings);
                if !r.valid {
                    println!("{}: invalid ({} problems)", r.file, r.errors.len());
                    continue;
                }
                if !r.rendered.is_empty() {
                    println!(
                        "note: rendered the jinja template in {} with {}",
                        r.rendered.join(", "),
                        if meta_data.is_some() {
                            "the meta-data given and placeholder values for the rest"
                        } else {
                            "placeholder instance data (give --meta-data FILE for the machine's)"
                        }
                    );
                }
                if !r.other_parts.is_empty() {
                    println!(
                        "note: batten does not read {} (cloud-init runs them): users, keys and settings in them are not batten's",
                        r.other_parts.join(", ")
                    );
                }
                if r.needs_keys_from_elsewhere {
                    println!(
                        "note: no SSH key in what batten reads, and password login goes off: `batten run` refuses this file unless the image or the meta-data gives a key for an account sshd lets in"
                    );
                }
                let mut line = if r.needs_keys_from_elsewhere {
                    format!("{}: valid, but it gives no SSH key (see the note)", r.file)
                } else {
                    format!("{}: valid", r.file)
                };
                if !r.left_to_cloud_init.is_empty() {
                    line.push_str(&format!(
                        "; left to cloud-init: {}",
                        r.left_to_cloud_init.join(", ")
                    ));
                }
                println!("{line}");
            }
        }
    }
    Ok(if all_valid {
        Code::Ok
    } else {
        Code::InvalidUserData
    })
}

/// Everything the plan and run commands share: the root, what was found,
/// what it means, and the plan.
struct Prepared {
    root: Root,
    found: Found,
    instance: InstanceId,
    plan: Plan,
    state: State,
    /// The run lock, held until the run has recorded itself.
    _lock: Option<RunLock>,
}

fn open_root(args: &RootArgs) -> Result<Root, Failure> {
    open_path(&args.root)
}

/// User-data from the provider's metadata service. `None` (after saying
/// why) when no provider is recognised: the machine stays as it is. A
/// provider that does not answer is a failure, and nothing is changed.
fn fetch_metadata(
    metadata: &MetadataArgs,
    default_user: Option<&str>,
) -> Result<Option<Found>, Failure> {
    let machine = crate::metadata::Machine::live(metadata.dmi_dir.as_deref());
    let detected = match metadata.provider {
        Some(kind) => crate::metadata::Detected {
            kind,
            why: "--provider".to_string(),
        },
        None => match crate::metadata::detect(&machine) {
            Some(d) => d,
            None => {
                warn!(
                    "no metadata service to ask: DMI and the kernel command line name no provider batten knows (ec2, openstack, hetzner, digitalocean, gce); nothing was changed, and --provider NAME names one"
                );
                return Ok(None);
            }
        },
    };
    println!(
        "metadata provider: {} ({})",
        detected.kind.name(),
        detected.why
    );
    let mut limits = crate::metadata::http::Limits::default();
    if let Some(seconds) = metadata.metadata_budget {
        limits.overall = std::time::Duration::from_secs(seconds);
        limits.per_request = limits.per_request.min(limits.overall);
    }
    crate::metadata::fetch(
        detected.kind,
        crate::metadata::METADATA_ADDRESS,
        limits,
        default_user,
    )
    .map(Some)
    .map_err(|e| {
        Failure::new(
            Code::ApplyFailed,
            format!(
                "the {} metadata service gave no user-data: {e}; nothing was changed, the machine stays armed (sshd as the image has it, the first stage's firewall loaded), and the next boot tries again",
                detected.kind.name()
            ),
        )
    })
}

/// Write a small file under /run (the live system's, gone at reboot) for
/// the units and `status`; a failure is only worth a warning.
fn write_run_file(path: &str, text: &str) {
    let path = Path::new(path);
    if let Err(e) = std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/run")))
        .and_then(|()| std::fs::write(path, text))
    {
        warn!("could not write {}: {e}", path.display());
    }
}

/// Find the user-data: `--user-data`, else the seed locations.
fn locate(root: &Root, source: &SourceArgs, host: &Host) -> Result<Option<Found>, Failure> {
    let mut found = match &source.user_data {
        Some(path) => {
            let (name, bytes) = read_input(path)?;
            Some(Found {
                source: format!("--user-data {name}"),
                user_data_name: name,
                user_data: bytes,
                meta_data: None,
                platform: "unknown",
            })
        }
        None => sources::find(root, host)
            .map_err(|e| Failure::new(Code::InvalidUserData, e.to_string()))?,
    };
    if let (Some(found), Some(path)) = (found.as_mut(), &source.meta_data) {
        let (name, bytes) = read_input(path)?;
        found.meta_data = Some((name, bytes));
    }
    Ok(found)
}

fn nothing_found() -> String {
    format!(
        "no user-data found; looked in: {}. Pass --user-data FILE to use another file",
        sources::searched_locations().join(", ")
    )
}

/// The instance data a jinja template in the user-data is rendered with:
/// what batten knows of this instance (see `input::jinja`).
fn instance_data(
    root: &Root,
    found: &Found,
    meta: &meta::MetaData,
    instance: &InstanceId,
) -> InstanceData {
    let meta_data = meta.document.clone();
    let from_meta = meta_data.as_ref().and_then(|m| {
        ["local-hostname", "local_hostname", "hostname"]
            .iter()
            .find_map(|k| m.get(*k).and_then(serde_json::Value::as_str))
            .map(str::to_string)
    });
    let from_image = root
        .read_to_string("/etc/hostname")
        .ok()
        .flatten()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    let hostname = from_meta.or(from_image);
    // The kernel's machine name, on the machine itself (an image's is not
    // known before it boots).
    let machine = root
        .is_host()
        .then(|| std::fs::read_to_string("/proc/sys/kernel/arch").ok())
        .flatten()
        .map(|m| m.trim().to_string())
        .or_else(|| root.is_host().then(|| std::env::consts::ARCH.to_string()));
    InstanceData::new(&Known {
        instance_id: &instance.id,
        platform: found.platform,
        subplatform: &found.source,
        local_hostname: hostname.as_deref(),
        meta_data,
        machine,
    })
    .rendered_by(renderer())
}

fn load_or_exit(found: &Found, instance_data: &InstanceData) -> Result<Loaded, Failure> {
    match input::load_with(&found.user_data_name, &found.user_data, instance_data) {
        Ok(loaded) => {
            print_issues("warning", &loaded.warnings);
            Ok(loaded)
        }
        Err(invalid) => {
            print_issues("error", &invalid.errors);
            print_issues("warning", &invalid.warnings);
            Err(Failure::new(
                Code::InvalidUserData,
                format!(
                    "{}: {} problems; nothing was changed. Fix them and run again (`batten validate FILE` checks a file)",
                    found.user_data_name,
                    invalid.errors.len()
                ),
            ))
        }
    }
}

/// What the caller of [`prepare`] will do with the plan.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
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
fn prepare(
    args: &RootArgs,
    source: &SourceArgs,
    purpose: Purpose,
    fetched: Option<Found>,
) -> Result<Option<Prepared>, Failure> {
    let root = open_root(args)?;
    let runs = purpose != Purpose::Show;
    let mut host = Host::live();
    if runs {
        // Only a run waits for an announced seed disk.
        host.seed_wait = sources::SEED_WAIT;
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
            None => return Ok(None),
        },
    };
    info!("user-data: {} ({})", found.user_data_name, found.source);
    let meta = match &found.meta_data {
        Some((name, bytes)) => {
            meta::parse(name, bytes).map_err(|e| Failure::new(Code::InvalidUserData, e))?
        }
        None => meta::MetaData::default(),
    };
    let cmdline = sources::cmdline_for(&root, &host);
    let instance = sources::instance_id(&root, meta.instance_id.as_deref(), cmdline.as_deref())
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
    if purpose == (Purpose::Run { force: false })
        && state.sealed
        && state.instance_id.as_deref() == Some(instance.id.as_str())
    {
        return Err(Failure::new(
            Code::Ok,
            format!(
                "instance {} is sealed: batten already ran here; nothing to do (use --force to run again)",
                instance.id
            ),
        ));
    }
    let host_keys = match &state.host_keys_instance {
        Some(id) if *id == instance.id => HostKeysOwner::ThisInstance,
        Some(id) if Some(id) == state::this_boot().as_ref() => {
            HostKeysOwner::ThisBoot(state.baseline_host_keys.clone())
        }
        _ => HostKeysOwner::Image,
    };
    let plan = build_plan(
        &root,
        &distro,
        &accounts,
        &loaded,
        &found,
        &instance_data,
        host_keys,
    )?;
    Ok(Some(Prepared {
        root,
        found,
        instance,
        plan,
        state,
        _lock: lock,
    }))
}

/// The plan: pure computation from the validated user-data and the root.
fn build_plan(
    root: &Root,
    distro: &Distro,
    accounts: &Accounts,
    loaded: &Loaded,
    found: &Found,
    instance_data: &InstanceData,
    host_keys: HostKeysOwner,
) -> Result<Plan, Failure> {
    let ud = &loaded.user_data;
    let mut notes = vec![format!(
        "{} ({:?} family)",
        distro.pretty_name, distro.family
    )];
    if !ud.left_to_cloud_init.is_empty() {
        notes.push(format!(
            "left to cloud-init: {}",
            ud.left_to_cloud_init.join(", ")
        ));
    }
    if !loaded.other_parts.is_empty() {
        notes.push(format!(
            "batten does not read {} (cloud-init runs them): users, keys and settings in them are not batten's",
            loaded.other_parts.join(", ")
        ));
    }
    let users = accounts::resolve_users(ud, root, distro, &mut notes);
    let mut actions = accounts::plan_users(&users, accounts, root, &mut notes)?;
    let homes_made: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::MakeHome { home, .. } => Some(home.clone()),
            _ => None,
        })
        .collect();
    let ssh_inputs = crate::concerns::ssh::Inputs {
        user_data: ud,
        users: &users,
        accounts,
        root,
        distro,
        host_keys,
        homes_made: &homes_made,
    };
    actions.extend(crate::concerns::ssh::plan(&ssh_inputs, &mut notes)?);
    let ssh_ports = crate::concerns::ssh::listening_ports(root, ud)?;
    actions.extend(crate::concerns::firewall::plan(
        ud,
        root,
        distro,
        ssh_ports.clone(),
        &mut notes,
    )?);
    actions.extend(crate::concerns::proxy::plan(
        ud, root, distro, accounts, &ssh_ports, &mut notes,
    )?);
    actions.extend(plan_cloud_init(root, ud, &mut notes)?);
    actions.extend(
        Action::write_if_changed(
            root,
            USER_DATA_COPY,
            found.user_data.clone(),
            state::private_owner(0o600),
            true,
            "keep the user-data this run acted on, readable by root only",
        )
        .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?,
    );
    if !loaded.rendered.is_empty() {
        notes.push(format!(
            "rendered the jinja template in {} with this instance's data",
            loaded.rendered.join(", ")
        ));
        // verify renders the template again exactly as this run did.
        let json = serde_json::to_vec_pretty(&instance_data.to_json()).unwrap_or_default();
        actions.extend(
            Action::write_if_changed(
                root,
                INSTANCE_DATA_COPY,
                json,
                state::private_owner(0o600),
                true,
                "keep the instance data the jinja template was rendered with, readable by root only",
            )
            .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?,
        );
    }
    // Every file first; then the daemons' own checks (the firewall already
    // accepts sshd's new port); the reloads last of all, so nothing that
    // could still fail comes after a daemon took the new settings.
    actions.sort_by_key(|a| match a {
        Action::CheckConfig(_) | Action::ProveKeyLogin { .. } => 1,
        Action::Reload { .. } => 2,
        _ => 0,
    });
    Ok(Plan { actions, notes })
}

/// With cloud-init in the root, the drop-in that leaves SSH to batten.
fn plan_cloud_init(
    root: &Root,
    ud: &crate::input::model::UserData,
    notes: &mut Vec<String>,
) -> Result<Option<Action>, Failure> {
    let fail = |e: crate::host::root::RootError| {
        Failure::new(Code::ApplyFailed, format!("{e}; nothing was changed"))
    };
    if !crate::concerns::cloud_init::present(root).map_err(fail)? {
        return Ok(None);
    }
    for key in ["password", "chpasswd"] {
        if ud.left_to_cloud_init.iter().any(|k| k == key) {
            notes.push(format!(
                "`{key}` is NOT applied: it belongs to cloud-init's set_passwords module, which batten switches off so that sshd's password setting stays batten's; use per-user hashed_passwd"
            ));
        }
    }
    let Some(text) = crate::concerns::cloud_init::dropin_text(root, notes).map_err(fail)? else {
        return Ok(None);
    };
    Action::write_if_changed(
        root,
        crate::concerns::cloud_init::DROPIN,
        text.into_bytes(),
        crate::host::root::Owner {
            uid: 0,
            gid: 0,
            mode: 0o644,
        },
        false,
        "cloud-init leaves host keys, SSH keys and sshd's password setting to batten",
    )
    .map_err(fail)
}

/// What every run does before it reads the root to change it: take the run
/// lock, and finish account changes a killed run left half done.
fn lock_for_changes(root: &Root) -> Result<RunLock, Failure> {
    let lock = RunLock::take(root).map_err(|e| Failure::new(Code::ApplyFailed, e))?;
    let backup = Backup::new(&state::new_run_id());
    account_files::finish_pending(root, &backup).map_err(|e| Failure::new(Code::ApplyFailed, e))?;
    Ok(lock)
}

/// With no user-data (or user-data batten refused at boot) the first stage
/// still makes the machine safe and reachable: batten's default-deny
/// firewall with SSH allowed, so that nothing else is reachable while
/// batten-metadata.service waits for the network or until someone fixes
/// the user-data, and host keys of the types the root lacks (a generalized
/// image has none, and sshd does not start without them). sshd's settings,
/// accounts and everything else are left as the image has them, and a
/// sealed machine is left alone.
fn baseline(args: &RootArgs) -> Result<Code, Failure> {
    let root = open_root(args)?;
    let _lock = lock_for_changes(&root)?;
    let state = State::load(&root).map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
    if state.sealed {
        return Ok(Code::Ok);
    }
    let distro =
        Distro::detect(&root, args.family).map_err(|e| Failure::new(Code::Usage, e.to_string()))?;
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
    let mut notes = Vec::new();
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
    };
    let mut actions: Vec<Action> = crate::concerns::ssh::plan_missing_host_keys(&inputs)?
        .into_iter()
        .collect();
    let ssh_ports = crate::concerns::ssh::listening_ports(&root, ud)?;
    actions.extend(crate::concerns::firewall::plan(
        ud, &root, &distro, ssh_ports, &mut notes,
    )?);
    if actions.is_empty() {
        return Ok(Code::Ok);
    }
    println!(
        "batten's baseline only: host keys sshd lacks, and the default firewall (SSH allowed, everything else dropped); nothing else is changed"
    );
    let plan = Plan { actions, notes };
    apply::check_programs(&root, &plan)?;
    apply::check_space(&root, &plan)?;
    let run_id = state::new_run_id();
    let mut journal = Journal::new(&run_id);
    let mut state = state;
    let keys_before = (
        state.host_keys_instance.clone(),
        state.baseline_host_keys.clone(),
    );
    let mut keys_recorded = |action: &Action| {
        // Keys made here belong to this boot until an instance claims
        // them: recorded at once, as a full run records its own. An
        // instance's record stays: its keys are its own already, and the
        // one made here is this machine's too.
        let Action::HostKeys { generate, .. } = action else {
            return;
        };
        let record = state.host_keys_instance.as_deref();
        if record.is_some_and(|r| !r.starts_with(state::BOOT_RECORD)) {
            return;
        }
        let boot = state::this_boot();
        if record != boot.as_deref() {
            state.baseline_host_keys.clear();
        }
        state.host_keys_instance = boot;
        state.baseline_host_keys.extend(
            generate
                .iter()
                .map(|t| crate::concerns::ssh::host_keys::private_path(*t)),
        );
        if let Err(e) = state.save(&root) {
            warn!("could not record that the host keys were made: {e}");
        }
    };
    let result = apply::apply(
        &plan,
        &root,
        &Backup::new(&run_id),
        &System,
        &mut journal,
        &mut keys_recorded,
    );
    let now = (
        state.host_keys_instance.clone(),
        state.baseline_host_keys.clone(),
    );
    if result.is_err() && now != keys_before {
        // The roll-back took the keys away again.
        (state.host_keys_instance, state.baseline_host_keys) = keys_before;
        if let Err(e) = state.save(&root) {
            warn!("could not record that the host keys were rolled back: {e}");
        }
    }
    result?;
    Ok(Code::Ok)
}

/// `batten plan`
pub fn plan(args: &RootArgs, source: &SourceArgs) -> Result<Code, Failure> {
    let Some(prepared) = prepare(args, source, Purpose::Show, None)? else {
        println!("# {}", nothing_found());
        return Ok(Code::Ok);
    };
    println!(
        "# user-data: {} ({})",
        prepared.found.user_data_name, prepared.found.source
    );
    println!(
        "# instance-id: {} (from {})",
        prepared.instance.id, prepared.instance.origin
    );
    print!("{}", prepared.plan.render());
    Ok(Code::Ok)
}

/// `batten run`
pub fn run(
    args: &RootArgs,
    source: &SourceArgs,
    force: bool,
    metadata: &MetadataArgs,
) -> Result<Code, Failure> {
    let fetched_from_network = if metadata.from_metadata || metadata.provider.is_some() {
        // A root that cannot be used is a usage error before any request.
        let root = open_root(args)?;
        let live = root.is_host();
        // GCE's keys name their user: only the image's default user's count.
        let default_user = Distro::detect(&root, args.family)
            .ok()
            .and_then(|distro| accounts::image_default_user(&root, &distro, &mut Vec::new()).name);
        let fetched = fetch_metadata(metadata, default_user.as_deref());
        if live {
            match &fetched {
                Err(e) => write_run_file(METADATA_FAILURE, &e.to_string()),
                Ok(_) => {
                    let _ = std::fs::remove_file(METADATA_FAILURE);
                }
            }
        }
        match fetched? {
            Some(found) => Some(found),
            None => return Ok(Code::Ok),
        }
    } else {
        None
    };
    let started_at = state::now_utc();
    let started = Instant::now();
    let prepared = match prepare(args, source, Purpose::Run { force }, fetched_from_network) {
        Ok(Some(prepared)) => prepared,
        Ok(None) => {
            warn!("{}", nothing_found());
            return baseline(args);
        }
        // User-data found at boot and refused: it changes nothing, but the
        // machine still gets what sshd needs to start and the firewall, so
        // the owner can get in as the image allows and fix it. Given by
        // hand (--user-data), a refusal changes nothing at all.
        Err(failure)
            if failure.code == Code::InvalidUserData
                && source.user_data.is_none()
                && open_root(args)?.is_host() =>
        {
            baseline(args)?;
            return Err(failure);
        }
        Err(failure) => return Err(failure),
    };
    let Prepared {
        root,
        found,
        instance,
        plan,
        mut state,
        _lock: _held,
    } = prepared;
    // Notes go to the console whatever RUST_LOG says: they include where
    // generated passwords are and what batten left to cloud-init.
    for note in &plan.notes {
        println!("note: {note}");
    }
    apply::check_programs(&root, &plan)?;
    apply::check_space(&root, &plan)?;
    let run_id = state::new_run_id();
    let backup = Backup::new(&run_id);
    let mut journal = Journal::new(&run_id);
    let keys_before = state.host_keys_instance.clone();
    let mut keys_recorded = |action: &Action| {
        // This instance has its host keys now: recorded at once, so that a
        // re-run after a kill keeps them rather than making new ones.
        if matches!(action, Action::HostKeys { .. }) {
            state.host_keys_instance = Some(instance.id.clone());
            if let Err(e) = state.save(&root) {
                warn!("could not record that the host keys were made: {e}");
            }
        }
    };
    let result = apply::apply(
        &plan,
        &root,
        &backup,
        &System,
        &mut journal,
        &mut keys_recorded,
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
    state.host_keys_instance = match &result {
        // Also when no step made keys: the keys there are this instance's.
        Ok(_) => {
            state.baseline_host_keys.clear();
            Some(instance.id.clone())
        }
        // The roll-back put the previous keys back: they are not this
        // instance's, and the next run must make new ones.
        Err(_) => keys_before,
    };
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
        started: started_at,
        finished: state::now_utc(),
        instance_id: instance.id.clone(),
        source: found.source.clone(),
        outcome: outcome.to_string(),
        changes,
        millis: started.elapsed().as_millis(),
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
        started.elapsed().as_millis()
    );
    if !state.static_only.is_empty() {
        println!(
            "checked statically only, since the image's programs cannot run on this machine: {}; the machine's first boot checks them live before it seals",
            state.static_only.join(", ")
        );
    }
    if changes == 0 {
        println!(
            "nothing to change: the root already matches the user-data (instance {})",
            instance.id
        );
    } else {
        println!(
            "applied {changes} changes for instance {}; previous files are in {}, the journal in {}/{run_id}.log",
            instance.id,
            root.host_path(&backup.dir()).display(),
            root.host_path(state::JOURNAL_DIR).display()
        );
    }
    Ok(Code::Ok)
}

#[derive(Serialize)]
struct StatusReport {
    root: String,
    distro: Option<Distro>,
    distro_error: Option<String>,
    user_data: Option<String>,
    user_data_source: Option<String>,
    instance_id: Option<InstanceId>,
    sealed: bool,
    last_run: Option<RunRecord>,
    /// Generated proxy passwords (root only), when there are any.
    credentials: Option<String>,
    /// Where the last run kept the files it replaced.
    backups: Option<String>,
    /// The cloud provider this machine looks like, and why (live only).
    metadata_provider: Option<String>,
    /// Why the metadata service gave nothing on this boot, if it did not.
    metadata_failure: Option<String>,
    /// Checks the image build could only make statically; the first
    /// boot's verify makes them live before the seal.
    static_only: Vec<String>,
}

/// `batten status`
pub fn status(args: &RootArgs, format: Format) -> Result<Code, Failure> {
    let root = open_root(args)?;
    let host = Host::live();
    let state = State::load(&root).map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
    let (distro, distro_error) = match Distro::detect(&root, args.family) {
        Ok(d) => (Some(d), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let found = sources::find(&root, &host)
        .map_err(|e| Failure::new(Code::InvalidUserData, e.to_string()))?;
    let meta_id = found
        .as_ref()
        .and_then(|f| f.meta_data.as_ref())
        .and_then(|(name, bytes)| meta::parse(name, bytes).ok())
        .and_then(|m| m.instance_id);
    let cmdline = sources::cmdline_for(&root, &host);
    let report = StatusReport {
        root: root.path().display().to_string(),
        distro,
        distro_error,
        user_data: found.as_ref().map(|f| f.user_data_name.clone()),
        user_data_source: found.as_ref().map(|f| f.source.clone()),
        instance_id: sources::instance_id(&root, meta_id.as_deref(), cmdline.as_deref()),
        sealed: state.sealed,
        last_run: state.runs.last().cloned(),
        credentials: root
            .metadata(crate::concerns::proxy::htpasswd::CREDENTIALS)
            .ok()
            .flatten()
            .map(|_| {
                root.host_path(crate::concerns::proxy::htpasswd::CREDENTIALS)
                    .display()
                    .to_string()
            }),
        backups: state.runs.last().map(|r| {
            root.host_path(&Backup::new(&r.id).dir())
                .display()
                .to_string()
        }),
        metadata_provider: root
            .is_host()
            .then(|| crate::metadata::detect(&crate::metadata::Machine::live(None)))
            .flatten()
            .map(|d| format!("{} ({})", d.kind.name(), d.why)),
        metadata_failure: root
            .is_host()
            .then(|| std::fs::read_to_string(METADATA_FAILURE).ok())
            .flatten(),
        static_only: state.static_only.clone(),
    };
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Format::Human => {
            println!("root:        {}", report.root);
            match (&report.distro, &report.distro_error) {
                (Some(d), _) => println!("distro:      {} ({:?} family)", d.pretty_name, d.family),
                (None, Some(e)) => println!("distro:      unknown: {e}"),
                _ => {}
            }
            match (&report.user_data, &report.user_data_source) {
                (Some(f), Some(s)) => println!("user-data:   {f} ({s})"),
                _ => println!("user-data:   none found"),
            }
            match &report.instance_id {
                Some(i) => println!("instance-id: {} (from {})", i.id, i.origin),
                None => println!("instance-id: unknown"),
            }
            println!(
                "state:       {}",
                if report.sealed {
                    "sealed (batten will not run again for this instance)"
                } else {
                    "armed (batten runs at next boot)"
                }
            );
            match &report.last_run {
                Some(r) => println!(
                    "last run:    {} {} ({} changes, {})",
                    r.id, r.outcome, r.changes, r.source
                ),
                None => println!("last run:    never"),
            }
            if !report.static_only.is_empty() {
                println!(
                    "checked statically only when the image was built (its programs could not run there): {}; verify checks them live before the seal",
                    report.static_only.join(", ")
                );
            }
            if let Some(r) = &report.last_run {
                for step in &r.steps {
                    println!(
                        "             {} {:>6} ms  {}",
                        if step.ok { "ok  " } else { "FAIL" },
                        step.millis,
                        step.what
                    );
                }
            }
            if let Some(c) = &report.credentials {
                println!("credentials: {c} (root only: generated proxy passwords)");
            }
            if let Some(b) = &report.backups {
                println!("backups:     {b}");
            }
            if let Some(p) = &report.metadata_provider {
                println!("provider:    {p}");
            }
            if let Some(f) = &report.metadata_failure {
                println!("metadata:    FAILED this boot: {}", f.trim());
            }
        }
    }
    Ok(Code::Ok)
}

/// Open `--root`, made absolute, so that the path handed to useradd
/// --prefix and friends means the same wherever they run.
fn open_path(path: &Path) -> Result<Root, Failure> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Root::open(&path)
        .map_err(|e| Failure::new(Code::Usage, format!("--root {}: {e}", path.display())))
}

/// `batten install --root DIR [--generalize]`
pub fn install(root: &Path, generalize: bool) -> Result<Code, Failure> {
    let root = open_path(root)?;
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
    let mut done = state::install(&root, &exe, generalize)
        .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
    let page = crate::cli::manual::render().map_err(|e| {
        Failure::new(
            Code::ApplyFailed,
            format!("cannot make the manual page: {e}"),
        )
    })?;
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

/// `batten render-jinja` (hidden): the child that renders one template
/// under limits for the batten that started it.
pub fn render_jinja() -> Result<Code, Failure> {
    use std::io::Write as _;
    let mut input = Vec::new();
    std::io::stdin()
        .take(2 * MAX_USER_DATA_BYTES as u64)
        .read_to_end(&mut input)
        .map_err(|e| Failure::new(Code::Usage, format!("cannot read standard input: {e}")))?;
    let (code, output) = input::jinja::render_for_parent(&input);
    let _ = std::io::stdout().write_all(&output);
    Ok(match code {
        0 => Code::Ok,
        65 => Code::InvalidUserData,
        _ => Code::Usage,
    })
}

/// This binary, to render templates in a limited child of itself.
fn renderer() -> input::jinja::Renderer {
    std::env::current_exe().map_or(
        input::jinja::Renderer::InProcess,
        input::jinja::Renderer::Child,
    )
}

/// `batten manual`: the manual page, as roff, on standard output.
pub fn manual() -> Result<Code, Failure> {
    use std::io::Write as _;
    let page = crate::cli::manual::render().map_err(|e| {
        Failure::new(
            Code::ApplyFailed,
            format!("cannot make the manual page: {e}"),
        )
    })?;
    std::io::stdout().write_all(&page).map_err(|e| {
        Failure::new(
            Code::ApplyFailed,
            format!("cannot write the manual page: {e}"),
        )
    })?;
    Ok(Code::Ok)
}

/// `batten rearm [--root DIR]`
pub fn rearm(root: &Path) -> Result<Code, Failure> {
    let root = open_path(root)?;
    let done = state::rearm(&root).map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
    if done.is_empty() {
        println!("already armed: the next boot runs batten");
    }
    for line in done {
        println!("{line}");
    }
    Ok(Code::Ok)
}

/// `batten verify [--root DIR] [--seal] [--format human|json]`
pub fn verify(args: &RootArgs, seal: bool, format: Format) -> Result<Code, Failure> {
    let root = open_root(args)?;
    let distro =
        Distro::detect(&root, args.family).map_err(|e| Failure::new(Code::Usage, e.to_string()))?;
    // The intent is the user-data the last run acted on.
    let copy = root
        .read(USER_DATA_COPY)
        .map_err(|e| Failure::new(Code::VerifyFailed, e.to_string()))?
        .unwrap_or_default();
    let instance_data = root
        .read(INSTANCE_DATA_COPY)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .map_or_else(|| InstanceData::placeholder(None), InstanceData::from_json)
        .rendered_by(renderer());
    let user_data = match input::load_with(USER_DATA_COPY, &copy, &instance_data) {
        Ok(l) => l.user_data,
        Err(invalid) => {
            print_issues("error", &invalid.errors);
            return Err(Failure::new(
                Code::VerifyFailed,
                format!("{USER_DATA_COPY} no longer validates; run batten again"),
            ));
        }
    };
    let report = crate::verify::verify(&crate::verify::Inputs {
        root: &root,
        distro: &distro,
        user_data: &user_data,
        runner: &System,
    });
    match format {
        Format::Human => print!("{}", report.render()),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "ok": report.ok(), "checks": report.checks })
            )
            .unwrap_or_default()
        ),
    }
    if !report.ok() {
        if seal {
            eprintln!(
                "batten: not sealed: verification failed; the machine stays armed and batten runs at the next boot"
            );
        }
        return Ok(Code::VerifyFailed);
    }
    if seal {
        let mut state =
            State::load(&root).map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
        // A check the image build could make only statically is made live
        // by the machine's own verify; an image's verify cannot stand in.
        if !root.is_host() && !state.static_only.is_empty() {
            return Err(Failure::new(
                Code::VerifyFailed,
                format!(
                    "not sealed: {} could only be checked statically here; the machine's first boot checks them live and seals",
                    state.static_only.join(", ")
                ),
            ));
        }
        // Made live now: nothing is left for later.
        state.static_only.clear();
        state.sealed = true;
        state
            .save(&root)
            .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
        for (_, _, link) in state::UNITS {
            root.remove_file(link, None)
                .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?;
        }
        eprintln!(
            "sealed instance {}: batten will not run again for it (`batten rearm` undoes this)",
            state.instance_id.as_deref().unwrap_or("(unknown)")
        );
    }
    Ok(Code::Ok)
}

/// `batten schema`
pub fn schema() -> Result<Code, Failure> {
    print!("{}", crate::input::schema::schema_text());
    Ok(Code::Ok)
}
