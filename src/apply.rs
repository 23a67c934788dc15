//! Carry out a plan: atomic writes with backups, commands, and a rollback of
//! the files when a step fails.
//!
//! Programs are run through the `Runner` trait so tests can see exactly
//! which commands would run without running them (a seam by parameter, not
//! global state).

use std::time::Instant;

use log::{debug, info, warn};

use crate::exit::{Code, Failure};
use crate::host::exec::{self, ExecError, Runner, find_program};
use crate::host::root::{Backup, Owner, Root};
use crate::host::undo::{Undo, UndoLog};
use crate::plan::{AccountStep, Action, Check, Plan, StepError};
use crate::state::Journal;

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
            Action::Firewall { kind, .. } => {
                for program in crate::concerns::firewall::of(*kind).programs() {
                    need(program, action.summary());
                }
            }
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
            Action::Write { path, contents, .. }
            | Action::UserFile { path, contents, .. }
            | Action::Scrub { path, contents, .. } => {
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
            run_check(runner, root, *check, contents).map_err(|e| {
                Failure::new(
                    Code::ApplyFailed,
                    format!("{path}: {e}; nothing was changed"),
                )
            })?;
        }
    }
    let mut undo = UndoLog::new();
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
                    Action::LoadSysctl { path } if changed => {
                        ran.push(format!("loaded {path} into the running kernel"))
                    }
                    Action::StartUnits { units, .. } if changed => {
                        ran.push(format!("started {}", units.join(" ")))
                    }
                    Action::RestartUnits { units, .. } if changed => {
                        ran.push(format!("restarted {}", units.join(" ")))
                    }
                    _ => {}
                }
            }
            Err(message) => {
                let restored = undo.roll_back(root, backup);
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
    undo: &mut UndoLog,
) -> Result<bool, StepError> {
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
                make_parents(root, &parent, crate::state::private_owner(mode), undo)?;
            }
            let before = root.read_with_owner(path)?;
            let changed = root.write_atomic(path, contents, *owner, Some(backup))?;
            if changed {
                undo.file(path, before);
            }
            Ok(changed)
        }
        Action::Accounts { steps } => {
            crate::concerns::accounts::apply::apply(root, backup, runner, steps, undo)
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
            let made = root.make_home(home, owner, skel.as_deref())?;
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
            let (before, link) = match root.read_link(path)? {
                Some(target) => (None, Some(target)),
                None => (root.read_with_owner(path)?, None),
            };
            let removed = root.remove_file(path, Some(backup))?;
            if removed {
                undo.push(Undo::File {
                    path: path.clone(),
                    before,
                    link,
                });
            }
            Ok(removed)
        }
        Action::Scrub {
            path,
            contents,
            owner,
            ..
        } => {
            let before = root.read_with_owner(path)?;
            let changed = root.rewrite_in_place(path, contents, b'\n', *owner, backup)?;
            if changed {
                undo.file(path, before);
            }
            Ok(changed)
        }
        Action::Symlink { path, target, .. } => {
            if let Some(parent) = std::path::Path::new(path).parent() {
                make_parents(
                    root,
                    &parent.to_string_lossy(),
                    Owner {
                        uid: 0,
                        gid: 0,
                        mode: 0o755,
                    },
                    undo,
                )?;
            }
            let made = root.symlink(target, path, Some(backup))?;
            if made {
                undo.file(path, None);
            }
            Ok(made)
        }
        Action::HostKeys {
            remove,
            generate,
            rsa_bits,
            provided,
            comment,
            ssh_keys_gid,
            quiet,
        } => crate::concerns::ssh::apply_host_keys(
            root,
            backup,
            remove,
            generate,
            *rsa_bits,
            provided,
            comment,
            *ssh_keys_gid,
            *quiet,
            undo,
        )
        .map(|()| true),
        Action::Firewall {
            kind,
            files,
            ssh_ports,
        } => crate::concerns::firewall::apply(runner, root, *kind, files, ssh_ports),
        Action::CheckConfig(daemon) => match crate::host::daemon::check(runner, root, *daemon) {
            Ok(()) => Ok(false),
            Err(crate::host::daemon::CheckError::Foreign { program, why }) => {
                exec::static_only(&format!("{program} -t"), &why);
                Ok(false)
            }
            Err(e) => Err(StepError::Failed(e.to_string())),
        },
        Action::ProveKeyLogin { accounts } => {
            crate::concerns::ssh::prove_key_login(runner, root, accounts).map(|()| false)
        }
        Action::Reload { unit } => {
            if !root.is_host() || !crate::host::daemon::is_active(runner, unit) {
                return Ok(false);
            }
            Ok(crate::host::daemon::reload(runner, unit).map(|()| true)?)
        }
        Action::LoadSysctl { path } => crate::concerns::kernel::apply::load(runner, root, path),
        Action::StartUnits { units, .. } | Action::RestartUnits { units, .. } => {
            if !root.is_host() {
                return Ok(false);
            }
            // Best effort, and after sshd at first boot: the enable links
            // start the units, and they read their new drop-ins, at the
            // next boot anyway, and a machine whose PID 1 is not systemd
            // cannot start them now; neither is a reason to undo the run.
            use crate::host::after_sshd::{Later, defer_or_do};
            let units = units.clone();
            let later = if matches!(action, Action::StartUnits { .. }) {
                Later::StartUnits { units }
            } else {
                Later::RestartUnits { units }
            };
            Ok(defer_or_do(runner, later))
        }
    }
}

/// Make `dir` and its missing parents, each recorded in the undo log so
/// that a rollback removes them again (a new `/etc/modprobe.d` in an image
/// without one must not outlive a failed run).
fn make_parents(root: &Root, dir: &str, owner: Owner, undo: &mut UndoLog) -> Result<(), StepError> {
    let mut missing = Vec::new();
    let mut at = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        if missing.is_empty() && root.metadata(&at)?.is_some() {
            continue;
        }
        missing.push(at.clone());
    }
    root.create_dir_all(dir, owner)?;
    for path in missing {
        undo.push(Undo::Dir { path });
    }
    Ok(())
}

/// Write a file owned by `user`, looked up in the root's own /etc/passwd
/// now (useradd may have just made the account). The home must belong to
/// the account; directories made below it are the account's, 0700.
fn write_user_file(
    root: &Root,
    backup: &Backup,
    undo: &mut UndoLog,
    user: &str,
    home: &str,
    path: &str,
    contents: &[u8],
) -> Result<bool, StepError> {
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
            .metadata(home)?
            .ok_or_else(|| format!("{user}'s home {home} does not exist"))?;
        if meta.kind != crate::host::root::FileKind::Dir || meta.uid != uid {
            return Err(format!(
                "{home} is not a directory owned by {user} (uid {uid}); batten writes a user's keys only into that user's own home"
            ).into());
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
    root.create_dir_all(&parent, dir_owner)?;
    let before = root.read_with_owner(path)?;
    let owner = Owner {
        uid,
        gid,
        mode: 0o600,
    };
    let changed = root.write_atomic(path, contents, owner, Some(backup))?;
    if changed {
        undo.file(path, before);
    }
    Ok(changed)
}

/// Check a file's new contents with its program before it is installed:
/// the image's own visudo, inside the image, reads them on its standard
/// input (see `exec`).
fn run_check(
    runner: &dyn Runner,
    root: &Root,
    check: Check,
    contents: &[u8],
) -> Result<(), StepError> {
    match check {
        Check::Visudo => {
            let run = exec::Check {
                program: "visudo",
                args: &["-cf", "-"],
                stdin: Some(contents),
                config_dirs: &[],
            };
            match runner.check(root, &run) {
                Ok(_) => Ok(()),
                Err(ExecError::Foreign { why, .. }) => {
                    exec::static_only("visudo -c", &why);
                    Ok(())
                }
                Err(ExecError::Refused(text)) => {
                    Err(format!("visudo refused the sudo rules: {text}").into())
                }
                Err(e) => Err(StepError::Failed(e.to_string())),
            }
        }
    }
}

/// The interpreter and its rollback, proven with a fake program runner on a
/// scratch root: no root privileges, no real sshd, useradd or nft.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::daemon::Daemon;
    use crate::host::exec::fake::Fake;
    use crate::host::root::scratch_root;
    use crate::plan::FirewallKind;

    /// Files owned by whoever runs the test, so it needs no privileges.
    fn mine(mode: u32) -> Owner {
        crate::state::private_owner(mode)
    }

    fn write(path: &str, text: &str) -> Action {
        Action::Write {
            path: path.into(),
            contents: text.as_bytes().to_vec(),
            owner: mine(0o644),
            before: None,
            secret: false,
            check: None,
            why: "test".into(),
        }
    }

    /// Apply `actions` with `runner`; the scratch root is returned with the
    /// result so the test can look at what is left.
    fn run(root: &Root, runner: &Fake, actions: Vec<Action>) -> Result<usize, Failure> {
        let plan = Plan {
            actions,
            notes: Vec::new(),
        };
        let backup = Backup::new("test-run");
        let mut journal = Journal::new("test-run");
        apply(&plan, root, &backup, runner, &mut journal, &mut |_| {})
    }

    fn text(root: &Root, path: &str) -> Option<String> {
        root.read_to_string(path).unwrap()
    }

    /// A fake where only the named program refuses.
    fn refusing(prefix: &'static str) -> Fake {
        Fake::new(move |line| {
            if line.starts_with(prefix) {
                Err(format!("{prefix}: refused by the test"))
            } else {
                Ok(String::new())
            }
        })
    }

    #[test]
    fn a_refused_check_puts_every_file_back() {
        let (_dir, root) = scratch_root(&[("/etc/ssh/sshd_config", "old\n")]);
        let runner = refusing("check sshd -t");
        let failure = run(
            &root,
            &runner,
            vec![
                write(
                    "/etc/ssh/sshd_config.d/50-batten.conf",
                    "PasswordAuthentication no\n",
                ),
                write("/etc/ssh/sshd_config", "new\n"),
                Action::CheckConfig(Daemon::Sshd),
                write("/etc/never", "not reached\n"),
            ],
        )
        .unwrap_err();
        assert_eq!(failure.code, Code::ApplyFailed);
        assert!(failure.message.contains("refused by the test"), "{failure}");
        assert!(
            failure.message.contains("restored /etc/ssh/sshd_config"),
            "{failure}"
        );
        assert_eq!(
            text(&root, "/etc/ssh/sshd_config").as_deref(),
            Some("old\n")
        );
        assert_eq!(text(&root, "/etc/ssh/sshd_config.d/50-batten.conf"), None);
        assert_eq!(text(&root, "/etc/never"), None);
        assert_eq!(runner.calls(), ["check sshd -t"]);
    }

    #[test]
    fn a_plan_that_passes_is_applied_and_an_image_is_never_reloaded() {
        let (_dir, root) = scratch_root(&[("/etc/ssh/sshd_config", "old\n")]);
        let runner = Fake::agreeing();
        let changed = run(
            &root,
            &runner,
            vec![
                write("/etc/ssh/sshd_config", "new\n"),
                write("/etc/ssh/sshd_config", "new\n"),
                Action::CheckConfig(Daemon::Sshd),
                Action::Reload {
                    unit: "ssh.service".into(),
                },
            ],
        )
        .unwrap();
        assert_eq!(changed, 1, "the second write finds the file as it wants it");
        assert_eq!(
            text(&root, "/etc/ssh/sshd_config").as_deref(),
            Some("new\n")
        );
        assert_eq!(
            runner.calls(),
            ["check sshd -t"],
            "no systemctl for an image"
        );
    }

    #[test]
    fn a_refused_sudo_rule_stops_the_run_before_the_first_change() {
        let (_dir, root) = scratch_root(&[]);
        let runner = refusing("check visudo");
        let mut sudo = write(
            "/etc/sudoers.d/90-cloud-init-users",
            "alice ALL=(ALL) ALL\n",
        );
        if let Action::Write { check, .. } = &mut sudo {
            *check = Some(Check::Visudo);
        }
        let failure = run(&root, &runner, vec![write("/etc/first", "x\n"), sudo]).unwrap_err();
        assert!(failure.message.contains("visudo refused"), "{failure}");
        assert!(failure.message.contains("nothing was changed"), "{failure}");
        assert_eq!(text(&root, "/etc/first"), None);
        assert_eq!(runner.calls(), ["check visudo -cf -"]);
    }

    #[test]
    fn a_failed_useradd_leaves_the_account_files_as_they_were() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\n";
        let (_dir, root) = scratch_root(&[("/etc/passwd", passwd), ("/etc/group", "root:x:0:\n")]);
        let runner = refusing("useradd");
        let failure = run(
            &root,
            &runner,
            vec![
                write("/etc/ssh/sshd_config", "new\n"),
                Action::Accounts {
                    steps: vec![AccountStep::Run {
                        argv: vec!["useradd".into(), "-m".into(), "alice".into()],
                        why: "test".into(),
                    }],
                },
            ],
        )
        .unwrap_err();
        assert!(
            failure.message.contains("useradd -m alice failed"),
            "{failure}"
        );
        assert_eq!(text(&root, "/etc/passwd").as_deref(), Some(passwd));
        assert_eq!(text(&root, "/etc/ssh/sshd_config"), None);
        let calls = runner.calls();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert!(
            calls[0].starts_with("useradd --prefix /") && calls[0].ends_with(" -m alice"),
            "useradd works on a copy of the account files: {calls:?}"
        );
    }

    #[test]
    fn a_home_made_by_the_run_is_removed_when_a_later_step_fails() {
        if !nix::unistd::geteuid().is_root() {
            // A home is made only under a root-owned /home; CI runs as root.
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "making a home needs root, and CI must run this test"
            );
            eprintln!("skipped: making a home under a root-owned /home needs root");
            return;
        }
        let me = mine(0o700);
        let passwd = format!("alice:x:{}:{}::/home/alice:/bin/sh\n", me.uid, me.gid);
        let (_dir, root) = scratch_root(&[("/etc/passwd", &passwd), ("/home/.keep", "")]);
        let runner = refusing("check sshd -t");
        let failure = run(
            &root,
            &runner,
            vec![
                Action::MakeHome {
                    user: "alice".into(),
                    home: "/home/alice".into(),
                    mode: 0o700,
                    skel: None,
                    why: "test".into(),
                },
                Action::CheckConfig(Daemon::Sshd),
            ],
        )
        .unwrap_err();
        assert!(
            failure
                .message
                .contains("removed /home/alice, made by this run"),
            "{failure}"
        );
        assert_eq!(root.metadata("/home/alice").unwrap(), None);
    }

    #[test]
    fn an_images_firewall_file_refused_by_its_nft_is_put_back() {
        let (_dir, root) = scratch_root(&[("/etc/nftables.conf", "old\n")]);
        let runner = refusing("check nft");
        let failure = run(
            &root,
            &runner,
            vec![
                write("/etc/nftables.conf", "new\n"),
                Action::Firewall {
                    kind: FirewallKind::Nftables,
                    files: vec!["/etc/nftables.conf".into()],
                    ssh_ports: vec![22],
                },
            ],
        )
        .unwrap_err();
        assert!(
            failure.message.contains("restored /etc/nftables.conf"),
            "{failure}"
        );
        assert_eq!(text(&root, "/etc/nftables.conf").as_deref(), Some("old\n"));
        assert_eq!(runner.calls(), ["check nft -c -f -"]);
    }

    #[test]
    fn a_scrubbed_seed_loses_its_old_bytes_and_comes_back_whole_on_failure() {
        use std::os::unix::fs::MetadataExt as _;
        let seed = "#cloud-config\nuser: {passwd: $y$secret}\n";
        let (dir, root) = scratch_root(&[("/boot/firmware/user-data", seed)]);
        let file = dir.path().join("boot/firmware/user-data");
        let scrub = || Action::Scrub {
            path: "/boot/firmware/user-data".into(),
            contents: b"#cloud-config\n".to_vec(),
            owner: mine(0o644),
            why: "test".into(),
        };
        // A run that fails later puts the seed back whole.
        let runner = refusing("check sshd -t");
        let failure = run(
            &root,
            &runner,
            vec![scrub(), Action::CheckConfig(Daemon::Sshd)],
        )
        .unwrap_err();
        assert!(
            failure
                .message
                .contains("restored /boot/firmware/user-data"),
            "{failure}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), seed);
        // One that succeeds rewrites the same file where it lies: no copy
        // of the old bytes is left behind under another name.
        let inode = std::fs::metadata(&file).unwrap().ino();
        assert_eq!(run(&root, &Fake::agreeing(), vec![scrub()]).unwrap(), 1);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "#cloud-config\n");
        assert_eq!(std::fs::metadata(&file).unwrap().ino(), inode, "in place");
    }
}
