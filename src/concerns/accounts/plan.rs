//! The accounts' plan: the users of the user-data merged as cloud-init
//! merges them, and the steps that make the root's accounts, homes,
//! passwords and sudo rules match them.

use super::Accounts;
use crate::host::distro::Distro;
use crate::host::root::{FileKind, Owner, Root, RootError};
use crate::input::model::{UserData, UserSpec};
use crate::input::yaml;
use crate::plan::{AccountStep, Action, Check, PlanError, Secret};

/// The default user as the image configures it: the distribution's usual
/// one, overridden by `system_info.default_user` in the root's
/// `/etc/cloud/cloud.cfg` and then `/etc/cloud/cloud.cfg.d/*.cfg` in order,
/// as cloud-init merges them. Values from those files pass the same grammar
/// as user-data; a file that does not is ignored with a note.
pub fn image_default_user(root: &Root, distro: &Distro, notes: &mut Vec<String>) -> UserSpec {
    let mut spec = UserSpec {
        name: Some(distro.default_user_name().to_string()),
        default: true,
        groups: distro.default_user_groups(),
        sudo: Some(vec!["ALL=(ALL) NOPASSWD:ALL".to_string()]),
        shell: Some("/bin/bash".to_string()),
        ..UserSpec::default()
    };
    let mut files = vec!["/etc/cloud/cloud.cfg".to_string()];
    if let Ok(Some(mut names)) = root.list_dir("/etc/cloud/cloud.cfg.d") {
        names.retain(|n| n.ends_with(".cfg"));
        files.extend(
            names
                .into_iter()
                .map(|n| format!("/etc/cloud/cloud.cfg.d/{n}")),
        );
    }
    for file in files {
        let Ok(Some(text)) = root.read_to_string(&file) else {
            continue;
        };
        let Ok(node) = yaml::parse(&text) else {
            notes.push(format!(
                "{file}: not valid YAML; its default_user is ignored"
            ));
            continue;
        };
        let Some(du) = node.get("system_info").and_then(|s| s.get("default_user")) else {
            continue;
        };
        match crate::input::validate::default_user_entry(du, &file) {
            Ok(image) => spec = spec.overlaid_by(&image),
            Err(problems) => notes.push(format!(
                "{file}: default_user ignored: {}",
                problems
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }
    spec
}

/// The accounts of the document, merged as cloud-init merges them: the
/// image's default user, then `system_info.default_user` and `user:` from
/// user-data, then the `default` entry; an explicit entry with the default
/// user's name wins over all of those; any other repeated name is ignored
/// after its first entry.
pub fn resolve_users(
    ud: &UserData,
    root: &Root,
    distro: &Distro,
    notes: &mut Vec<String>,
) -> Vec<UserSpec> {
    let mut base = image_default_user(root, distro, notes);
    for layer in [&ud.default_user_config, &ud.legacy_user]
        .into_iter()
        .flatten()
    {
        base = base.overlaid_by(layer);
    }
    let mut out: Vec<UserSpec> = Vec::new();
    for u in &ud.users {
        let spec = if u.default {
            base.overlaid_by(u)
        } else {
            u.clone()
        };
        match out.iter_mut().find(|e| e.name == spec.name) {
            Some(existing) if existing.default && !spec.default => {
                *existing = existing.overlaid_by(&spec)
            }
            Some(existing) if spec.default && !existing.default => {
                *existing = spec.overlaid_by(existing)
            }
            Some(_) => notes.push(format!(
                "{} is listed twice: the first entry counts, as in cloud-init",
                spec.name.as_deref().unwrap_or("the default user")
            )),
            None => out.push(spec),
        }
    }
    out
}

/// The sudoers drop-in cloud-init writes; batten writes the same file with
/// the same blocks, so whichever of the two runs second finds its rules
/// present and adds nothing.
pub const SUDOERS_FILE: &str = "/etc/sudoers.d/90-cloud-init-users";

/// The mode `useradd` gives a new home: `HOME_MODE` in the root's
/// login.defs, else what its `UMASK` leaves of 0777, else 0755.
fn home_mode(root: &Root) -> u32 {
    let defs = root
        .read_to_string("/etc/login.defs")
        .ok()
        .flatten()
        .unwrap_or_default();
    let setting = |key: &str| {
        super::login_defs_value(&defs, key).and_then(|v| u32::from_str_radix(v, 8).ok())
    };
    setting("HOME_MODE")
        .or_else(|| setting("UMASK").map(|umask| 0o777 & !umask))
        .map_or(0o755, |mode| mode & 0o777)
}

/// Plan the accounts: one transaction of account steps (groups and users
/// to create, passwords), the new homes, the sudo rules.
pub fn plan_users(
    users: &[UserSpec],
    accounts: &Accounts,
    root: &Root,
    notes: &mut Vec<String>,
) -> Result<Vec<Action>, PlanError> {
    let skel = root
        .metadata("/etc/skel")?
        .is_some_and(|m| m.kind == FileKind::Dir)
        .then(|| "/etc/skel".to_string());
    let mut steps = Vec::new();
    let mut homes = Vec::new();
    let mut planned_groups: Vec<String> = Vec::new();
    let mut new_users: Vec<&str> = Vec::new();
    for u in users {
        let Some(name) = u.name.as_deref() else {
            continue;
        };
        let home = format!("/home/{name}");
        match accounts.user(name) {
            // An account of the image, or one an earlier run made: its home
            // is made only where useradd would have put it.
            Some(entry) => {
                if entry.home != home || root.metadata(&home)?.is_some() {
                    continue;
                }
            }
            None => {
                new_users.push(name);
                for g in &u.groups {
                    if accounts.group(g).is_none() && !planned_groups.contains(g) && g != name {
                        planned_groups.push(g.clone());
                        steps.push(AccountStep::Run {
                            argv: vec!["groupadd".to_string(), g.clone()],
                            why: format!("create group {g} for {name}"),
                        });
                    }
                }
                steps.push(AccountStep::Run {
                    argv: useradd_argv(u, name, &home),
                    why: format!("create the account {name}"),
                });
            }
        }
        check_home(root, name)?;
        if root.metadata(&home)?.is_none() {
            homes.push(Action::MakeHome {
                user: name.to_string(),
                home,
                mode: home_mode(root),
                skel: skel.clone(),
                why: format!("{name}'s home, from the image's /etc/skel"),
            });
        }
    }
    for u in users {
        let Some(name) = u.name.as_deref() else {
            continue;
        };
        let is_new = new_users.contains(&name);
        if !is_new
            && u.passwords.on_create.is_some()
            && u.passwords.hashed.is_none()
            && u.passwords.plain_text.is_none()
        {
            notes.push(format!(
                "{name} exists already, and `passwd` only applies when an account is created (as in cloud-init); use hashed_passwd to change its password"
            ));
        }
        let current = if is_new {
            None
        } else {
            accounts.shadow_field(name)
        };
        if let Some(step) = plan_password(u, name, current, is_new).map_err(PlanError::failed)? {
            steps.push(step);
        }
    }
    let mut actions = Vec::new();
    if !steps.is_empty() {
        actions.push(Action::Accounts { steps });
    }
    actions.extend(homes);
    // The name and the rule of an account can come from different layers
    // (the image's default user, `user:`, `system_info`), so the check that
    // sudo reads the name as this account is made on the merged result.
    for user in users {
        if let (Some(name), Some(rules)) = (&user.name, &user.sudo)
            && !rules.is_empty()
            && let Err(why) = crate::input::grammar::sudoers_user(name)
        {
            return Err(PlanError::refused(format!("{why}; nothing was changed")));
        }
    }
    actions.extend(plan_sudoers(users, root, notes)?);
    Ok(actions)
}

/// `useradd` for a new account. The home is batten's own step, made whole
/// or not at all, so useradd does not make it.
pub(super) fn useradd_argv(u: &UserSpec, name: &str, home: &str) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        "useradd".into(),
        "--no-create-home".into(),
        "--home-dir".into(),
        home.to_string(),
    ];
    if let Some(shell) = &u.shell {
        argv.extend(["--shell".into(), shell.clone()]);
    }
    if let Some(gecos) = &u.gecos {
        argv.extend(["--comment".into(), gecos.clone()]);
    }
    let groups: Vec<&str> = u
        .groups
        .iter()
        .map(String::as_str)
        .filter(|g| *g != name)
        .collect();
    if !groups.is_empty() {
        argv.extend(["--groups".into(), groups.join(",")]);
    }
    argv.push(name.to_string());
    argv
}

/// useradd makes `/home/NAME`; refuse when `/home` or the home itself is a
/// symlink, which would put a new user's files outside the root.
fn check_home(root: &Root, name: &str) -> Result<(), RootError> {
    for path in ["/home".to_string(), format!("/home/{name}")] {
        if root
            .metadata(&path)?
            .is_some_and(|m| m.kind == FileKind::Symlink)
        {
            return Err(RootError::SymlinkRefused {
                link: path.clone(),
                path,
            });
        }
    }
    Ok(())
}

/// The shadow password field a user should end with, if it must change.
/// `hashed_passwd` wins over `plain_text_passwd`, which wins over `passwd`
/// (new accounts only), as cloud-init applies them in that order.
pub(super) fn plan_password(
    u: &UserSpec,
    name: &str,
    current: Option<&str>,
    is_new: bool,
) -> Result<Option<AccountStep>, String> {
    let current_hash = current.map(|f| f.trim_start_matches('!'));
    let p = &u.passwords;
    let hash = if let Some(h) = &p.hashed {
        Some(h.clone())
    } else if let Some(text) = &p.plain_text {
        // Keep the existing hash when it already matches, so a second run
        // changes nothing despite the random salt.
        match current_hash.filter(|h| crate::crypt::verifies(text, h)) {
            Some(h) => Some(h.to_string()),
            None => Some(
                crate::crypt::sha512_crypt(text)
                    .map_err(|e| format!("{e}; nothing was changed"))?,
            ),
        }
    } else if is_new {
        p.on_create.clone()
    } else {
        None
    };
    let desired = match (hash, u.locked()) {
        (Some(h), false) => h,
        (Some(h), true) => format!("!{h}"),
        (None, true) => match current {
            Some(f) if f.starts_with('!') || f == "*" => return Ok(None),
            Some(f) => format!("!{f}"),
            // A new account: useradd leaves it locked already.
            None => return Ok(None),
        },
        (None, false) => return Ok(None),
    };
    if current == Some(desired.as_str()) {
        return Ok(None);
    }
    let why = if desired.starts_with('!') {
        if p.any() {
            "password from user-data, locked (lock_passwd is true)"
        } else {
            "lock the password (lock_passwd is true)"
        }
    } else {
        "console password from user-data (SSH password login stays off)"
    };
    Ok(Some(AccountStep::SetPassword {
        user: name.to_string(),
        field: Secret(desired),
        why: why.to_string(),
    }))
}

/// One user's block in the sudoers drop-in, exactly as cloud-init writes it.
pub(super) fn sudo_block(name: &str, rules: &[String]) -> String {
    let mut block = format!("\n# User rules for {name}\n");
    for rule in rules {
        block.push_str(&format!("{name} {rule}\n"));
    }
    block
}

/// The drop-in with every user's block, appended when absent (cloud-init's
/// test), and the `#includedir` line in /etc/sudoers if it lacks one.
pub(super) fn plan_sudoers(
    users: &[UserSpec],
    root: &Root,
    notes: &mut Vec<String>,
) -> Result<Vec<Action>, RootError> {
    let blocks: Vec<String> = users
        .iter()
        .filter_map(|u| {
            Some(sudo_block(
                u.name.as_deref()?,
                u.sudo.as_deref().filter(|r| !r.is_empty())?,
            ))
        })
        .collect();
    if blocks.is_empty() {
        return Ok(Vec::new());
    }
    let mut actions = Vec::new();
    let before = root.read_with_owner(SUDOERS_FILE)?;
    let old = before
        .as_ref()
        .map(|(b, _)| String::from_utf8_lossy(b).into_owned());
    let mut text = old
        .clone()
        .unwrap_or_else(|| "# Created by batten from user-data\n".to_string());
    for block in &blocks {
        if !text.contains(block.as_str()) {
            text.push_str(block);
        }
    }
    if old.as_deref() != Some(text.as_str()) {
        actions.push(Action::Write {
            path: SUDOERS_FILE.to_string(),
            contents: text.into_bytes(),
            owner: Owner {
                uid: 0,
                gid: 0,
                mode: 0o440,
            },
            before,
            secret: false,
            check: Some(Check::Visudo),
            why: "sudo rules from user-data".to_string(),
        });
    }
    match root.read_with_owner("/etc/sudoers")? {
        None => notes.push(
            "sudo is not installed in the root: the sudo rules wait in /etc/sudoers.d for it"
                .into(),
        ),
        Some((bytes, owner)) => {
            let main = String::from_utf8_lossy(&bytes).into_owned();
            let includes = main.lines().any(|l| {
                let mut words = l.split_whitespace();
                matches!(words.next(), Some("#includedir" | "@includedir"))
                    && words.next() == Some("/etc/sudoers.d")
            });
            if !includes {
                let mut text = main.clone();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str("\n# Added by batten so the rules in /etc/sudoers.d apply\n#includedir /etc/sudoers.d\n");
                actions.push(Action::Write {
                    path: "/etc/sudoers".to_string(),
                    contents: text.into_bytes(),
                    owner,
                    before: Some((bytes, owner)),
                    secret: false,
                    check: Some(Check::Visudo),
                    why: "/etc/sudoers does not read /etc/sudoers.d".to_string(),
                });
            }
        }
    }
    Ok(actions)
}
