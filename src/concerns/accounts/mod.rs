//! Accounts of the root: parsed from its own `/etc/passwd`, `/etc/group`
//! and `/etc/shadow`, never through NSS (the binary is static, and with
//! `--root` the host's accounts are not the image's), and the plan that
//! makes them match the user-data's `users`.

pub mod files;

use serde::Serialize;

use crate::host::distro::Distro;
use crate::host::root::{FileKind, Owner, Root, RootError};
use crate::input::model::{UserData, UserSpec};
use crate::input::yaml;
use crate::plan::{AccountStep, Action, Check, PlanError, Secret};

/// One line of /etc/passwd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PasswdEntry {
    /// Login name, the key the other account files and user-data use.
    pub name: String,
    /// Numeric user id, as this root's /etc/passwd numbers it (never looked up through NSS).
    pub uid: u32,
    /// Primary group, by number.
    pub gid: u32,
    /// Comment field, usually the full name.
    pub gecos: String,
    /// Home directory, a path inside the root.
    pub home: String,
    /// Login shell, a path inside the root.
    pub shell: String,
}

/// One line of /etc/group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupEntry {
    /// Group name, as user-data's `groups` lists it.
    pub name: String,
    /// Numeric group id, as this root's /etc/group numbers it.
    pub gid: u32,
    /// Supplementary members by login name; users whose primary group this
    /// is are usually not listed.
    pub members: Vec<String>,
}

/// The root's account databases.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    /// Every /etc/passwd entry in file order, system accounts included.
    pub users: Vec<PasswdEntry>,
    /// Every /etc/group entry in file order; empty when the file is missing.
    pub groups: Vec<GroupEntry>,
    /// (name, password field) from /etc/shadow.
    shadow: Vec<(String, String)>,
}

/// Why the account files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// An account file could not be read inside the root.
    #[error(transparent)]
    Root(#[from] RootError),
    /// A line batten cannot parse, or a missing /etc/passwd.
    #[error(
        "{path}:{line}: cannot parse this line ({why}); fix or remove it before running batten"
    )]
    Malformed {
        /// Host path of the file, as the message shows it.
        path: String,
        /// 1-based line number; 0 when the whole file is missing.
        line: usize,
        /// What is wrong with the line.
        why: String,
    },
}

fn parse_id(field: &str, path: &str, line: usize) -> Result<u32, AccountsError> {
    field.parse().map_err(|_| AccountsError::Malformed {
        path: path.to_string(),
        line,
        why: format!("{field:?} is not a numeric id"),
    })
}

/// Lines that are neither blank nor comments nor NIS `+`/`-` entries.
fn records(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#') && !l.starts_with(['+', '-']))
}

/// The `:`-separated fields of line `n`, which must number `count`.
fn fields<'a>(
    line: &'a str,
    count: usize,
    path: &str,
    n: usize,
) -> Result<Vec<&'a str>, AccountsError> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() != count {
        return Err(AccountsError::Malformed {
            path: path.into(),
            line: n,
            why: format!("expected {count} fields"),
        });
    }
    Ok(f)
}

/// Parse /etc/passwd text.
pub fn parse_passwd(text: &str, path: &str) -> Result<Vec<PasswdEntry>, AccountsError> {
    records(text)
        .map(|(n, line)| {
            let f = fields(line, 7, path, n)?;
            Ok(PasswdEntry {
                name: f[0].to_string(),
                uid: parse_id(f[2], path, n)?,
                gid: parse_id(f[3], path, n)?,
                gecos: f[4].to_string(),
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// Parse /etc/group text.
pub fn parse_group(text: &str, path: &str) -> Result<Vec<GroupEntry>, AccountsError> {
    records(text)
        .map(|(n, line)| {
            let f = fields(line, 4, path, n)?;
            Ok(GroupEntry {
                name: f[0].to_string(),
                gid: parse_id(f[2], path, n)?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// Parse /etc/shadow text into (name, password field) pairs.
pub fn parse_shadow(text: &str) -> Vec<(String, String)> {
    records(text)
        .filter_map(|(_, line)| {
            let mut f = line.split(':');
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

/// Replace one account's password field in /etc/shadow text; `None` when
/// the account has no line.
pub fn set_shadow_field(text: &str, user: &str, field: &str) -> Option<String> {
    let mut found = false;
    let mut out = String::with_capacity(text.len() + field.len());
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let mut fields: Vec<&str> = body.split(':').collect();
        if fields.len() >= 2 && fields[0] == user && !found {
            fields[1] = field;
            found = true;
            out.push_str(&fields.join(":"));
        } else {
            out.push_str(body);
        }
        out.push_str(nl);
    }
    found.then_some(out)
}

impl Accounts {
    /// Read the root's account files. A missing /etc/shadow is allowed (an
    /// unusual root); a missing /etc/passwd is not.
    pub fn load(root: &Root) -> Result<Accounts, AccountsError> {
        let text = |rel: &str| -> Result<Option<String>, AccountsError> {
            Ok(root
                .read(rel)?
                .map(|b| String::from_utf8_lossy(&b).into_owned()))
        };
        let passwd_path = root.host_path("/etc/passwd").display().to_string();
        let passwd = text("/etc/passwd")?.ok_or_else(|| AccountsError::Malformed {
            path: passwd_path.clone(),
            line: 0,
            why: "the file is missing; is this the root of a Linux system?".into(),
        })?;
        let group_path = root.host_path("/etc/group").display().to_string();
        Ok(Accounts {
            users: parse_passwd(&passwd, &passwd_path)?,
            groups: parse_group(&text("/etc/group")?.unwrap_or_default(), &group_path)?,
            shadow: parse_shadow(&text("/etc/shadow")?.unwrap_or_default()),
        })
    }

    /// The passwd entry of `name`.
    pub fn user(&self, name: &str) -> Option<&PasswdEntry> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The group entry of `name`.
    pub fn group(&self, name: &str) -> Option<&GroupEntry> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The password field of `name` in /etc/shadow.
    pub fn shadow_field(&self, name: &str) -> Option<&str> {
        self.shadow
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| f.as_str())
    }
}

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
        defs.lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some(key))
                    .then(|| words.next())
                    .flatten()
                    .and_then(|v| u32::from_str_radix(v, 8).ok())
            })
            .next_back()
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
fn useradd_argv(u: &UserSpec, name: &str, home: &str) -> Vec<String> {
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
fn plan_password(
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
fn sudo_block(name: &str, rules: &[String]) -> String {
    let mut block = format!("\n# User rules for {name}\n");
    for rule in rules {
        block.push_str(&format!("{name} {rule}\n"));
    }
    block
}

/// The drop-in with every user's block, appended when absent (cloud-init's
/// test), and the `#includedir` line in /etc/sudoers if it lacks one.
fn plan_sudoers(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::model::Passwords;

    #[test]
    fn parse_the_three_files() {
        let p = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n# c\n\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n",
            "p",
        )
        .unwrap();
        assert_eq!(p[1].name, "pi");
        assert_eq!(p[1].uid, 1000);
        let e = parse_passwd("root:x:zero:0::/root:/bin/sh\n", "/etc/passwd")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/etc/passwd:1:"), "{e}");
        let g = parse_group("sudo:x:27:pi,admin\nadm:x:4:\n", "g").unwrap();
        assert_eq!(g[0].members, ["pi", "admin"]);
        assert!(g[1].members.is_empty());
        let s = parse_shadow("root:*:19000:0:99999:7:::\npi:$6$x:1::::::\n");
        assert_eq!(s[1], ("pi".to_string(), "$6$x".to_string()));
    }

    #[test]
    fn shadow_edit_touches_one_field() {
        let text = "root:*:19000:0:99999:7:::\npi:!:19000:0:99999:7:::\n";
        let out = set_shadow_field(text, "pi", "!$6$abc").unwrap();
        assert_eq!(
            out,
            "root:*:19000:0:99999:7:::\npi:!$6$abc:19000:0:99999:7:::\n"
        );
        assert_eq!(set_shadow_field(text, "nobody", "x"), None);
    }

    fn spec(lock: bool, passwords: Passwords) -> UserSpec {
        UserSpec {
            name: Some("pi".into()),
            lock_passwd: Some(lock),
            passwords,
            ..UserSpec::default()
        }
    }

    fn field(a: Result<Option<AccountStep>, String>) -> Option<String> {
        a.unwrap().map(|a| match a {
            AccountStep::SetPassword { field, .. } => field.0,
            other => panic!("{other:?}"),
        })
    }

    fn hashed(h: &str) -> Passwords {
        Passwords {
            hashed: Some(h.into()),
            ..Passwords::default()
        }
    }

    #[test]
    fn password_fields() {
        let h = format!("$6$saltsalt${}", "a".repeat(86));
        assert_eq!(
            field(plan_password(
                &spec(false, hashed(&h)),
                "pi",
                Some("!"),
                false
            )),
            Some(h.clone())
        );
        assert_eq!(
            field(plan_password(
                &spec(false, hashed(&h)),
                "pi",
                Some(&h),
                false
            )),
            None
        );
        assert_eq!(
            field(plan_password(
                &spec(true, hashed(&h)),
                "pi",
                Some("*"),
                false
            )),
            Some(format!("!{h}"))
        );
        let none = Passwords::default();
        assert_eq!(
            field(plan_password(
                &spec(true, none.clone()),
                "pi",
                Some("$6$old"),
                false
            )),
            Some("!$6$old".into())
        );
        assert_eq!(
            field(plan_password(
                &spec(true, none.clone()),
                "pi",
                Some("!$6$old"),
                false
            )),
            None
        );
        assert_eq!(
            field(plan_password(
                &spec(false, none),
                "pi",
                Some("$6$old"),
                false
            )),
            None
        );
    }

    #[test]
    fn passwd_counts_only_for_new_accounts_and_hashed_wins() {
        let h1 = format!("$6$saltsalt${}", "a".repeat(86));
        let h2 = format!("$6$saltsalt${}", "b".repeat(86));
        let on_create = Passwords {
            on_create: Some(h1.clone()),
            ..Passwords::default()
        };
        assert_eq!(
            field(plan_password(
                &spec(false, on_create.clone()),
                "pi",
                None,
                true
            )),
            Some(h1.clone())
        );
        assert_eq!(
            field(plan_password(
                &spec(false, on_create),
                "pi",
                Some("$6$old"),
                false
            )),
            None
        );
        let both = Passwords {
            hashed: Some(h2.clone()),
            plain_text: Some("x y z".into()),
            on_create: Some(h1),
        };
        assert_eq!(
            field(plan_password(&spec(false, both), "pi", None, true)),
            Some(h2)
        );
    }

    #[test]
    fn plain_text_is_hashed_once() {
        let plain = Passwords {
            plain_text: Some("correct horse".into()),
            ..Passwords::default()
        };
        let first = field(plan_password(
            &spec(false, plain.clone()),
            "pi",
            Some("!"),
            false,
        ))
        .unwrap();
        assert!(first.starts_with("$6$") && !first.contains("correct"));
        assert!(crate::crypt::verifies("correct horse", &first));
        assert_eq!(
            field(plan_password(
                &spec(false, plain),
                "pi",
                Some(&first),
                false
            )),
            None
        );
    }

    fn image(cloud_cfg: Option<&str>) -> (tempfile::TempDir, Root, Distro) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/cloud/cloud.cfg.d")).unwrap();
        std::fs::write(dir.path().join("etc/os-release"), "ID=debian\n").unwrap();
        if let Some(text) = cloud_cfg {
            std::fs::write(dir.path().join("etc/cloud/cloud.cfg"), text).unwrap();
        }
        let root = Root::open(dir.path()).unwrap();
        let distro = Distro::detect(&root, None).unwrap();
        (dir, root, distro)
    }

    fn resolved(root: &Root, distro: &Distro, user_data: &str) -> Vec<UserSpec> {
        let ud = crate::input::load("ud", format!("#cloud-config\n{user_data}").as_bytes())
            .unwrap()
            .user_data;
        resolve_users(&ud, root, distro, &mut Vec::new())
    }

    #[test]
    fn default_user_comes_from_the_image_then_user_data() {
        let (dir, root, distro) = image(Some(
            "system_info:\n  default_user:\n    name: admin\n    sudo: [\"ALL=(ALL) ALL\"]\n    groups: [adm]\n",
        ));
        std::fs::write(
            dir.path().join("etc/cloud/cloud.cfg.d/50-rename.cfg"),
            "system_info:\n  default_user: {name: captain}\n",
        )
        .unwrap();
        let users = resolved(&root, &distro, "users: [default]\n");
        assert_eq!(users[0].name.as_deref(), Some("captain"));
        assert_eq!(
            users[0].sudo.as_deref(),
            Some(&["ALL=(ALL) ALL".to_string()][..]),
            "the image's rule, not NOPASSWD"
        );
        let users = resolved(
            &root,
            &distro,
            "system_info:\n  default_user: {name: skipper}\n",
        );
        assert_eq!(users[0].name.as_deref(), Some("skipper"));
    }

    #[test]
    fn sudo_false_on_the_default_user_means_no_rule() {
        let (_d, root, distro) = image(None);
        let users = resolved(&root, &distro, "users:\n  - {name: default, sudo: false}\n");
        assert_eq!(users[0].name.as_deref(), Some("debian"));
        assert_eq!(users[0].sudo, Some(vec![]));
    }

    #[test]
    fn user_key_and_default_entry_layer_in_cloud_init_order() {
        let (_d, root, distro) = image(None);
        // `default` dict beats `user:`; an explicit lock_passwd: false survives.
        let users = resolved(
            &root,
            &distro,
            "user: {name: pi, lock_passwd: true, shell: /bin/sh}\nusers:\n  - {name: default, lock_passwd: false}\n",
        );
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].name.as_deref(), Some("pi"));
        assert_eq!(users[0].lock_passwd, Some(false));
        assert_eq!(users[0].shell.as_deref(), Some("/bin/sh"));
        // `user:` without a name keeps the image's name.
        let users = resolved(&root, &distro, "user: {lock_passwd: false}\n");
        assert_eq!(users[0].name.as_deref(), Some("debian"));
        assert!(!users[0].locked());
    }

    #[test]
    fn the_same_name_twice_is_one_account() {
        let (_d, root, distro) = image(None);
        let users = resolved(
            &root,
            &distro,
            "users:\n  - default\n  - {name: debian, shell: /bin/zsh, groups: [extra]}\n  - default\n",
        );
        assert_eq!(users.len(), 1, "{users:?}");
        assert_eq!(
            users[0].shell.as_deref(),
            Some("/bin/zsh"),
            "the explicit entry wins"
        );
        assert!(
            users[0].groups.contains(&"extra".to_string())
                && users[0].groups.contains(&"sudo".to_string())
        );
        let users = resolved(
            &root,
            &distro,
            "users:\n  - {name: ops, shell: /bin/sh}\n  - {name: ops, shell: /bin/zsh}\n",
        );
        assert_eq!(users.len(), 1);
        assert_eq!(
            users[0].shell.as_deref(),
            Some("/bin/sh"),
            "the first entry wins"
        );
    }

    #[test]
    fn sudo_blocks_match_cloud_init() {
        let rules = vec![
            "ALL=(ALL) NOPASSWD:ALL".to_string(),
            "ALL=(ALL) ALL".to_string(),
        ];
        assert_eq!(
            sudo_block("pi", &rules),
            "\n# User rules for pi\npi ALL=(ALL) NOPASSWD:ALL\npi ALL=(ALL) ALL\n"
        );
    }
}
