//! Carry out a plan: atomic writes with backups, commands, and a rollback of
//! the files when a step fails.
//!
//! Programs are run through the `Runner` trait so tests can see exactly
//! which commands would run without running them (a seam by parameter, not
//! global state).

use std::process::{Command, Stdio};
use std::time::Instant;

use log::{debug, info, warn};

use crate::exit::{Code, Failure};
use crate::host::root::{Backup, Owner, Root};
use crate::plan::{AccountStep, Action, Check, Plan};
use crate::state::Journal;

/// The result of running a program.
#[derive(Debug)]
pub struct Ran {
    /// The program exited with status 0.
    pub success: bool,
    /// Its standard error, trimmed, for the failure message.
    pub stderr: String,
}

/// Runs external programs.
pub trait Runner {
    /// Run `argv` and wait for it; `Err` only when it could not be started.
    fn run(&self, argv: &[String]) -> std::io::Result<Ran>;
}

/// The real thing: `std::process::Command`, stdin closed.
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&self, argv: &[String]) -> std::io::Result<Ran> {
        // The program check_programs found, not whatever PATH finds now.
        let program = find_program(&argv[0]).unwrap_or_else(|| argv[0].clone().into());
        let out = Command::new(program)
            .args(&argv[1..])
            .stdin(Stdio::null())
            .output()?;
        Ok(Ran {
            success: out.status.success(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

pub use crate::host::exec::find_program;

/// The Debian package that provides a program batten runs, for the
/// message that asks for it.
fn package_of(program: &str) -> &'static str {
    match program {
        "sshd" => "openssh-server",
        "nginx" => "nginx",
        "nft" => "nftables",
        "iptables-restore" | "ip6tables-restore" => "iptables",
        "unshare" => "util-linux",
        "visudo" => "sudo",
        _ => "passwd",
    }
}

/// Every program this plan will run, with what for.
fn programs_needed(plan: &Plan) -> Vec<(String, String)> {
    let mut needed = Vec::new();
    let mut need = |program: &str, why: String| {
        if !needed.iter().any(|(p, _)| p == program) {
            needed.push((program.to_string(), why));
        }
    };
    for action in &plan.actions {
        match action {
            Action::Accounts { steps } => {
                for step in steps {
                    if let AccountStep::Run { argv, .. } = step {
                        need(&argv[0], step.summary());
                    }
                }
            }
            Action::CheckConfig(daemon) => {
                need(daemon.program(), action.summary());
                need("unshare", action.summary());
            }
            Action::ProveKeyLogin { .. } => {
                need("sshd", action.summary());
                need("unshare", action.summary());
            }
            Action::Write {
                check: Some(Check::Visudo),
                ..
            } => need("visudo", action.summary()),
            Action::Firewall { kind, .. } => match kind {
                crate::concerns::firewall::Kind::Nftables => need("nft", action.summary()),
                crate::concerns::firewall::Kind::Iptables => {
                    need("iptables-restore", action.summary());
                    need("ip6tables-restore", action.summary());
                }
            },
            _ => {}
        }
    }
    needed
}

/// Fail with exit 69 before anything is changed when a program the plan
/// runs is missing: a check that cannot run must not be skipped, or
/// password login could go off unproven. A checking program counts when
/// the image has it (its own runs the check, see `exec`) or this machine
/// has it; useradd and the namespace tools are always this machine's.
pub fn check_programs(root: &Root, plan: &Plan) -> Result<(), Failure> {
    for (program, why) in programs_needed(plan) {
        let checks_the_root = matches!(
            program.as_str(),
            "sshd" | "nginx" | "nft" | "iptables-restore" | "ip6tables-restore" | "visudo"
        );
        let found = if checks_the_root {
            crate::host::exec::locate(root, &program) != crate::host::exec::Found::Missing
        } else {
            find_program(&program).is_some()
        };
        if !found {
            return Err(Failure::new(
                Code::MissingProgram,
                format!(
                    "{program} is not installed on this machine, and batten needs it to {why}; install it (Debian: apt-get install {}) and run again; nothing was changed",
                    package_of(&program)
                ),
            ));
        }
    }
    Ok(())
}

/// Room a run needs beyond its files' bytes: its journal, state, backups'
/// bookkeeping and what each file system needs to allocate blocks.
const SPACE_MARGIN: u64 = 256 * 1024;

/// Refuse, before anything is changed, a run whose files do not fit: a
/// full disk found half-way is undone, but found first it is a clear
/// message and no work. The estimate counts each new file twice (it and
/// the previous one kept as a backup under /var/lib/batten), the account
/// files twice in /etc (the new file beside the old until the rename) and
/// five times under /var/lib/batten (the private copy, the record of the
/// change with old and new text, the backup), a home's skeleton and host
/// keys, per file system. batten runs as root, so
/// the blocks a file system keeps for root count as free.
pub fn check_space(root: &Root, plan: &Plan) -> Result<(), Failure> {
    use std::collections::BTreeMap;
    let mut need: BTreeMap<String, u64> = BTreeMap::new();
    let mut add = |dir: &str, bytes: u64| *need.entry(dir.to_string()).or_default() += bytes;
    let parent = |path: &str| {
        path.rsplit_once('/')
            .map_or("/", |(p, _)| if p.is_empty() { "/" } else { p })
            .to_string()
    };
    for action in &plan.actions {
        match action {
            Action::Write { path, contents, .. } | Action::UserFile { path, contents, .. } => {
                add(&parent(path), contents.len() as u64);
                add(crate::state::STATE_DIR, contents.len() as u64);
            }
            Action::Accounts { .. } => {
                let size = ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"]
                    .iter()
                    .filter_map(|f| root.metadata(f).ok().flatten())
                    .map(|m| m.len)
                    .sum::<u64>();
                add("/etc", 2 * size);
                add(crate::state::STATE_DIR, 5 * size);
            }
            Action::MakeHome { home, .. } => add(&parent(home), 64 * 1024),
            Action::HostKeys { .. } => add("/etc/ssh", 32 * 1024),
            _ => {}
        }
    }
    add(crate::state::STATE_DIR, 0);
    let mut per_fs: BTreeMap<u64, (u64, u64, String)> = BTreeMap::new();
    for (dir, bytes) in need {
        let (fs, available) = root
            .free_space(&dir)
            .map_err(|e| Failure::new(Code::ApplyFailed, format!("{e}; nothing was changed")))?;
        let entry = per_fs.entry(fs).or_insert((0, available, dir.clone()));
        entry.0 += bytes;
    }
    for (needed, available, dir) in per_fs.into_values() {
        let needed = needed + SPACE_MARGIN;
        if available < needed {
            return Err(Failure::new(
                Code::ApplyFailed,
                format!(
                    "No space left on device for this run: the file system holding {} has {} KiB free and the run needs about {} KiB; free some space, then run batten again; nothing was changed",
                    root.host_path(&dir).display(),
                    available / 1024,
                    needed.div_ceil(1024)
                ),
            ));
        }
    }
    Ok(())
}

/// What this run changed, to put back if a later step fails.
enum Undo {
    /// A file as it was before this run touched it.
    File {
        path: String,
        before: Option<(Vec<u8>, Owner)>,
        /// When the path was a symlink: its target, to make it again.
        link: Option<String>,
    },
    /// A home this run made from the skeleton.
    Home {
        home: String,
        owner: Owner,
        skel: Option<String>,
    },
}

impl Undo {
    /// A regular file (or nothing) to put back as it was.
    fn file(path: &str, before: Option<(Vec<u8>, Owner)>) -> Undo {
        Undo::File {
            path: path.to_string(),
            before,
            link: None,
        }
    }
}

/// Apply every action in order. Returns how many changed something. On
/// failure, files written by this run are put back and the error says what
/// could not be undone (commands that already ran). `done` hears of every
/// action that succeeded, as it succeeds, so that what must survive a kill
/// (the host keys' instance) is recorded at once.
pub fn apply(
    plan: &Plan,
    root: &Root,
    backup: &Backup,
    runner: &dyn Runner,
    journal: &mut Journal,
    done: &mut dyn FnMut(&Action),
) -> Result<usize, Failure> {
    // Every file with a check is checked before the first change, so a bad
    // sudo rule stops the run before useradd has made anyone.
    for action in &plan.actions {
        if let Action::Write {
            path,
            contents,
            check: Some(check),
            ..
        } = action
        {
            run_check(root, *check, contents).map_err(|e| {
                Failure::new(
                    Code::ApplyFailed,
                    format!("{path}: {e}; nothing was changed"),
                )
            })?;
        }
    }
    let mut undo: Vec<Undo> = Vec::new();
    let mut ran: Vec<String> = Vec::new();
    let mut changes = 0;
    for action in &plan.actions {
        let started = Instant::now();
        let summary = action.summary();
        debug!("starting: {summary}");
        let result = apply_one(action, root, backup, runner, &mut undo);
        let ms = started.elapsed().as_millis();
        let ok = result.is_ok();
        info!(
            "{} {summary} ({ms} ms)",
            if ok { "done:" } else { "FAILED:" }
        );
        if let Err(e) = journal.record(root, &summary, ok, ms) {
            warn!("could not write the journal: {e}");
        }
        match result {
            Ok(changed) => {
                done(action);
                changes += usize::from(changed);
                match action {
                    Action::Reload { unit } if changed => ran.push(format!("reloaded {unit}")),
                    _ => {}
                }
            }
            Err(message) => {
                let restored = roll_back(root, backup, undo);
                let mut text = format!("{summary}: {message}\n{restored}");
                if !ran.is_empty() {
                    text.push_str(&format!(
                        "\nthese steps were not undone: {}",
                        ran.join("; ")
                    ));
                }
                return Err(Failure::new(Code::ApplyFailed, text));
            }
        }
    }
    Ok(changes)
}

fn apply_one(
    action: &Action,
    root: &Root,
    backup: &Backup,
    runner: &dyn Runner,
    undo: &mut Vec<Undo>,
) -> Result<bool, String> {
    match action {
        Action::Write {
            path,
            contents,
            owner,
            ..
        } => {
            if let Some(parent) = std::path::Path::new(path).parent() {
                let parent = parent.to_string_lossy();
                let mode = if parent.starts_with(crate::state::STATE_DIR) {
                    0o700
                } else {
                    0o755
                };
                root.create_dir_all(&parent, crate::state::private_owner(mode))
                    .map_err(|e| e.to_string())?;
            }
            let before = current(root, path)?;
            let changed = root
                .write_atomic(path, contents, *owner, Some(backup))
                .map_err(|e| e.to_string())?;
            if changed {
                undo.push(Undo::file(path, before));
            }
            Ok(changed)
        }
        Action::Accounts { steps } => {
            let mut replaced = Vec::new();
            let result =
                crate::concerns::accounts::files::apply(root, backup, runner, steps, &mut replaced);
            for (path, before) in replaced {
                undo.push(Undo::file(&path, before));
            }
            result
        }
        Action::UserFile {
            user,
            home,
            path,
            contents,
            ..
        } => write_user_file(root, backup, undo, user, home, path, contents),
        Action::MakeHome {
            user,
            home,
            mode,
            skel,
            ..
        } => {
            let accounts =
                crate::concerns::accounts::Accounts::load(root).map_err(|e| e.to_string())?;
            let entry = accounts
                .user(user)
                .ok_or_else(|| format!("{user} is not in /etc/passwd after useradd"))?;
            let owner = Owner {
                uid: entry.uid,
                gid: entry.gid,
                mode: *mode,
            };
            let made = root
                .make_home(home, owner, skel.as_deref())
                .map_err(|e| e.to_string())?;
            if made {
                undo.push(Undo::Home {
                    home: home.clone(),
                    owner,
                    skel: skel.clone(),
                });
            }
            Ok(made)
        }
        Action::Remove { path, .. } => {
            // A link (a site enabled in sites-enabled) is removed as a link;
            // its target is remembered, not read.
            let (before, link) = match root.read_link(path).map_err(|e| e.to_string())? {
                Some(target) => (None, Some(target)),
                None => (current(root, path)?, None),
            };
            let removed = root
                .remove_file(path, Some(backup))
                .map_err(|e| e.to_string())?;
            if removed {
                undo.push(Undo::File {
                    path: path.clone(),
                    before,
                    link,
                });
            }
            Ok(removed)
        }
        Action::Symlink { path, target, .. } => {
            if let Some(parent) = std::path::Path::new(path).parent() {
                root.create_dir_all(
                    &parent.to_string_lossy(),
                    Owner {
                        uid: 0,
                        gid: 0,
                        mode: 0o755,
                    },
                )
                .map_err(|e| e.to_string())?;
            }
            let made = root
                .symlink(target, path, Some(backup))
                .map_err(|e| e.to_string())?;
            if made {
                undo.push(Undo::file(path, None));
            }
            Ok(made)
        }
        Action::HostKeys {
            remove,
            generate,
            provided,
            comment,
            ssh_keys_gid,
            quiet,
        } => {
            let mut replaced = Vec::new();
            let result = crate::concerns::ssh::apply_host_keys(
                root,
                backup,
                remove,
                generate,
                provided,
                comment,
                *ssh_keys_gid,
                *quiet,
                &mut replaced,
            );
            for (path, before) in replaced {
                undo.push(Undo::File {
                    path,
                    before,
                    link: None,
                });
            }
            result.map(|()| true)
        }
        Action::Firewall {
            kind,
            files,
            ssh_ports,
        } => crate::concerns::firewall::apply(root, *kind, files, ssh_ports),
        Action::CheckConfig(daemon) => match crate::host::daemon::check(root, *daemon) {
            Ok(()) => Ok(false),
            Err(crate::host::daemon::CheckError::Foreign { program, why }) => {
                crate::host::exec::static_only(&format!("{program} -t"), &why);
                Ok(false)
            }
            Err(e) => Err(e.to_string()),
        },
        Action::ProveKeyLogin { accounts } => {
            crate::concerns::ssh::prove_key_login(root, accounts).map(|()| false)
        }
        Action::Reload { unit } => {
            if !root.is_host() || !crate::host::daemon::is_active(unit) {
                return Ok(false);
            }
            crate::host::daemon::reload(unit).map(|()| true)
        }
    }
}

/// Write a file owned by `user`, looked up in the root's own /etc/passwd
/// now (useradd may have just made the account). The home must belong to
/// the account; directories made below it are the account's, 0700.
fn write_user_file(
    root: &Root,
    backup: &Backup,
    undo: &mut Vec<Undo>,
    user: &str,
    home: &str,
    path: &str,
    contents: &[u8],
) -> Result<bool, String> {
    let accounts = crate::concerns::accounts::Accounts::load(root).map_err(|e| e.to_string())?;
    let entry = accounts.user(user).ok_or_else(|| {
        format!(
            "{user} is not in {}",
            root.host_path("/etc/passwd").display()
        )
    })?;
    let (uid, gid) = (entry.uid, entry.gid);
    let inside_home = path.starts_with(&format!("{}/", home.trim_end_matches('/')));
    if inside_home {
        let meta = root
            .metadata(home)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{user}'s home {home} does not exist"))?;
        if meta.kind != crate::host::root::FileKind::Dir || meta.uid != uid {
            return Err(format!(
                "{home} is not a directory owned by {user} (uid {uid}); batten writes a user's keys only into that user's own home"
            ));
        }
    }
    let parent = std::path::Path::new(path)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir_owner = if inside_home {
        Owner {
            uid,
            gid,
            mode: 0o700,
        }
    } else {
        Owner {
            uid: 0,
            gid: 0,
            mode: 0o755,
        }
    };
    root.create_dir_all(&parent, dir_owner)
        .map_err(|e| e.to_string())?;
    let before = current(root, path)?;
    let owner = Owner {
        uid,
        gid,
        mode: 0o600,
    };
    let changed = root
        .write_atomic(path, contents, owner, Some(backup))
        .map_err(|e| e.to_string())?;
    if changed {
        undo.push(Undo::file(path, before));
    }
    Ok(changed)
}

fn current(root: &Root, path: &str) -> Result<Option<(Vec<u8>, Owner)>, String> {
    root.read_with_owner(path).map_err(|e| e.to_string())
}

/// Check a file's new contents with its program before it is installed:
/// the image's own visudo, inside the image, reads them on its standard
/// input (see `exec`).
fn run_check(root: &Root, check: Check, contents: &[u8]) -> Result<(), String> {
    match check {
        Check::Visudo => {
            let run = crate::host::exec::Check {
                program: "visudo",
                args: &["-cf", "-"],
                stdin: Some(contents),
                config_dir: None,
            };
            match crate::host::exec::run(root, &run) {
                Ok(_) => Ok(()),
                Err(crate::host::exec::ExecError::Foreign { why, .. }) => {
                    crate::host::exec::static_only("visudo -c", &why);
                    Ok(())
                }
                Err(crate::host::exec::ExecError::Refused(text)) => {
                    Err(format!("visudo refused the sudo rules: {text}"))
                }
                Err(e) => Err(e.to_string()),
            }
        }
    }
}

/// Put back every file this run wrote and remove every home it made,
/// newest first; say what happened.
fn roll_back(root: &Root, backup: &Backup, undo: Vec<Undo>) -> String {
    let mut lines = Vec::new();
    for u in undo.into_iter().rev() {
        let (path, before, link) = match u {
            Undo::File { path, before, link } => (path, before, link),
            Undo::Home { home, owner, skel } => {
                lines.push(match root.remove_made_home(&home, owner, skel.as_deref()) {
                    Ok(None) => format!("removed {home}, made by this run"),
                    Ok(Some(why)) => format!("kept {home}, made by this run: {why}"),
                    Err(e) => format!("could NOT remove {home}, made by this run: {e}"),
                });
                continue;
            }
        };
        let result = match (&before, &link) {
            (_, Some(target)) => root.symlink(target, &path, None).map(|_| ()),
            // The backup copy moved back needs no space; writing does.
            (Some((bytes, owner)), None) => {
                match root.restore_backup_copy(&path, backup, bytes, *owner) {
                    Ok(true) => Ok(()),
                    Ok(false) => root.write_atomic(&path, bytes, *owner, None).map(|_| ()),
                    Err(e) => {
                        warn!(
                            "{path}: the backup copy could not be moved back ({e}); writing the previous contents instead"
                        );
                        root.write_atomic(&path, bytes, *owner, None).map(|_| ())
                    }
                }
            }
            (None, None) => root.remove_file(&path, None).map(|_| ()),
        };
        match result {
            Ok(()) => lines.push(format!("restored {path}")),
            Err(e) => lines.push(format!("could NOT restore {path}: {e}")),
        }
    }
    if lines.is_empty() {
        "no file had been changed".to_string()
    } else {
        lines.join("\n")
    }
}
