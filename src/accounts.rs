//! Accounts of the root: parsed from its own `/etc/passwd`, `/etc/group`
//! and `/etc/shadow`, never through NSS (the binary is static, and with
//! `--root` the host's accounts are not the image's), and the plan that
//! makes them match the user-data's `users`.

use serde::Serialize;

use crate::config::model::{Password, UserData, UserSpec};
use crate::config::yaml::{self, Value};
use crate::distro::Distro;
use crate::plan::{Action, Check, Secret};
use crate::root::{Owner, Root, RootError};

/// One line of /etc/passwd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

/// One line of /etc/group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// The root's account databases.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    pub users: Vec<PasswdEntry>,
    pub groups: Vec<GroupEntry>,
    /// (name, password field) from /etc/shadow.
    shadow: Vec<(String, String)>,
}

/// Why the account files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Root(#[from] RootError),
    #[error(
        "{path}:{line}: cannot parse this line ({why}); fix or remove it before running batten"
    )]
    Malformed {
        path: String,
        line: usize,
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

/// Parse /etc/passwd text.
pub fn parse_passwd(text: &str, path: &str) -> Result<Vec<PasswdEntry>, AccountsError> {
    records(text)
        .map(|(n, line)| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() != 7 {
                return Err(AccountsError::Malformed {
                    path: path.into(),
                    line: n,
                    why: "expected 7 fields".into(),
                });
            }
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
            let f: Vec<&str> = line.split(':').collect();
            if f.len() != 4 {
                return Err(AccountsError::Malformed {
                    path: path.into(),
                    line: n,
                    why: "expected 4 fields".into(),
                });
            }
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

/// The default user as the image configures it: `system_info.default_user`
/// in the root's `/etc/cloud/cloud.cfg` when cloud-init is installed,
/// otherwise the distribution's usual one.
pub fn default_user(root: &Root, distro: &Distro) -> UserSpec {
    let mut spec = UserSpec {
        name: Some(distro.default_user_name().to_string()),
        default: true,
        groups: distro.default_user_groups(),
        sudo: vec!["ALL=(ALL) NOPASSWD:ALL".to_string()],
        shell: Some("/bin/bash".to_string()),
        lock_passwd: true,
        ..UserSpec::default()
    };
    let cfg = root.read_to_string("/etc/cloud/cloud.cfg").ok().flatten();
    let node = cfg.as_deref().and_then(|t| yaml::parse(t).ok());
    let du = node
        .as_ref()
        .and_then(|n| n.get("system_info"))
        .and_then(|s| s.get("default_user"));
    if let Some(du) = du {
        if let Some(name) = du.get("name").and_then(|n| n.scalar_text())
            && crate::config::grammar::account_name(&name).is_ok()
        {
            spec.name = Some(name);
        }
        if let Some(groups) = du.get("groups") {
            let names: Vec<String> = match &groups.value {
                Value::Str(s) => s.split(',').map(|g| g.trim().to_string()).collect(),
                Value::Seq(items) => items.iter().filter_map(|i| i.scalar_text()).collect(),
                _ => Vec::new(),
            };
            let valid: Vec<String> = names
                .into_iter()
                .filter(|g| crate::config::grammar::account_name(g).is_ok())
                .collect();
            if !valid.is_empty() {
                spec.groups = valid;
            }
        }
        if let Some(shell) = du.get("shell").and_then(|s| s.scalar_text())
            && crate::config::grammar::absolute_path(&shell).is_ok()
        {
            spec.shell = Some(shell);
        }
    }
    spec
}

/// The users of the document with the default entry resolved against the
/// image: name, groups, sudo rule and shell from `default_user`, overridden
/// by whatever the user-data says.
pub fn resolve_users(ud: &UserData, root: &Root, distro: &Distro) -> Vec<UserSpec> {
    ud.users
        .iter()
        .map(|u| {
            if !u.default {
                return u.clone();
            }
            let mut d = default_user(root, distro);
            if u.name.is_some() {
                d.name = u.name.clone();
            }
            for g in &u.groups {
                if !d.groups.contains(g) {
                    d.groups.push(g.clone());
                }
            }
            if !u.sudo.is_empty() {
                d.sudo = u.sudo.clone();
            }
            d.shell = u.shell.clone().or(d.shell);
            d.gecos = u.gecos.clone();
            d.lock_passwd = u.lock_passwd;
            d.password = u.password.clone();
            d.ssh_authorized_keys = u.ssh_authorized_keys.clone();
            d.left_to_cloud_init = u.left_to_cloud_init.clone();
            d
        })
        .collect()
}

/// The sudoers drop-in cloud-init writes; batten writes the same file in the
/// same form, so whichever of the two runs second finds its rules present.
pub const SUDOERS_FILE: &str = "/etc/sudoers.d/90-cloud-init-users";

/// Plan the accounts: groups and users to create, sudo rules, passwords.
pub fn plan_users(
    users: &[UserSpec],
    accounts: &Accounts,
    root: &Root,
    notes: &mut Vec<String>,
) -> Result<Vec<Action>, RootError> {
    let mut actions = Vec::new();
    let prefix: Vec<String> = if root.is_host() {
        Vec::new()
    } else {
        vec!["--prefix".into(), root.path().display().to_string()]
    };
    let mut planned_groups: Vec<String> = Vec::new();
    for u in users {
        let Some(name) = u.name.as_deref() else {
            continue;
        };
        if accounts.user(name).is_some() {
            if !u.groups.is_empty() || u.shell.is_some() {
                notes.push(format!(
                    "{name} exists already: like cloud-init, batten leaves its groups and shell as they are"
                ));
            }
            continue;
        }
        for g in &u.groups {
            if accounts.group(g).is_none() && !planned_groups.contains(g) && g != name {
                planned_groups.push(g.clone());
                let mut argv = vec!["groupadd".to_string()];
                argv.extend(prefix.iter().cloned());
                argv.push(g.clone());
                actions.push(Action::Run {
                    argv,
                    why: format!("create group {g} for {name}"),
                });
            }
        }
        let mut argv = vec!["useradd".to_string()];
        argv.extend(prefix.iter().cloned());
        argv.push("--create-home".into());
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
        actions.push(Action::Run {
            argv,
            why: format!("create the account {name}"),
        });
    }
    for u in users {
        let Some(name) = u.name.as_deref() else {
            continue;
        };
        if let Some(action) = plan_password(u, name, accounts.shadow_field(name)) {
            actions.push(action);
        }
    }
    if let Some(action) = plan_sudoers(users, root)? {
        actions.push(action);
    }
    Ok(actions)
}

/// The shadow password field a user should end with, if it must change.
fn plan_password(u: &UserSpec, name: &str, current: Option<&str>) -> Option<Action> {
    let current_hash = current.map(|f| f.trim_start_matches('!'));
    let hash = match &u.password {
        Some(Password::Hash { hash }) => Some(hash.clone()),
        Some(Password::PlainText { text }) => {
            // Keep the existing hash when it already matches, so a second
            // run changes nothing despite the random salt.
            let matches = current_hash.is_some_and(|h| verify_sha_crypt(text, h));
            Some(if matches {
                current_hash.unwrap_or_default().to_string()
            } else {
                hash_sha512(text)
            })
        }
        None => None,
    };
    let desired = match (hash, u.lock_passwd) {
        (Some(h), false) => h,
        (Some(h), true) => format!("!{h}"),
        (None, true) => match current {
            Some(f) if f.starts_with('!') || f == "*" => return None,
            Some(f) => format!("!{f}"),
            // A new account: useradd leaves it locked already.
            None => return None,
        },
        (None, false) => return None,
    };
    if current == Some(desired.as_str()) {
        return None;
    }
    let why = match (&u.password, u.lock_passwd) {
        (Some(_), false) => "console password from user-data (SSH passwords stay off)",
        (Some(_), true) => "password from user-data, locked (lock_passwd is true)",
        (None, _) => "lock the password (lock_passwd is true)",
    };
    Some(Action::SetPassword {
        user: name.to_string(),
        field: Secret(desired),
        why: why.to_string(),
    })
}

fn verify_sha_crypt(text: &str, hash: &str) -> bool {
    use sha_crypt::{PasswordVerifier, ShaCrypt};
    (hash.starts_with("$6$") || hash.starts_with("$5$"))
        && ShaCrypt::default()
            .verify_password(text.as_bytes(), hash)
            .is_ok()
}

/// SHA-512 crypt with a random 16-character salt: every distribution's
/// crypt(3) checks it.
fn hash_sha512(text: &str) -> String {
    use sha_crypt::{PasswordHasher, ShaCrypt};
    const ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let salt: Vec<u8> = (0..16)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())])
        .collect();
    ShaCrypt::default()
        .hash_password_with_salt(text.as_bytes(), &salt)
        .map(|h| h.as_str().to_string())
        .unwrap_or_default()
}

fn plan_sudoers(users: &[UserSpec], root: &Root) -> Result<Option<Action>, RootError> {
    let before = root.read(SUDOERS_FILE)?;
    let old = before
        .as_deref()
        .map(|b| String::from_utf8_lossy(b).into_owned());
    let mut text = old
        .clone()
        .unwrap_or_else(|| "# Created by batten: sudo rules from user-data\n".to_string());
    for u in users {
        let Some(name) = u.name.as_deref() else {
            continue;
        };
        for rule in &u.sudo {
            let line = format!("{name} {rule}");
            if !text.lines().any(|l| l.trim() == line) {
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&format!("\n# User rules for {name}\n{line}\n"));
            }
        }
    }
    if old.as_deref() == Some(text.as_str())
        || (old.is_none() && !users.iter().any(|u| !u.sudo.is_empty()))
    {
        return Ok(None);
    }
    let owner = Owner {
        uid: 0,
        gid: 0,
        mode: 0o440,
    };
    let before_owner = root.metadata(SUDOERS_FILE)?.map(|m| Owner {
        uid: m.uid,
        gid: m.gid,
        mode: m.mode,
    });
    Ok(Some(Action::Write {
        path: SUDOERS_FILE.to_string(),
        contents: text.into_bytes(),
        owner,
        before: before.zip(before_owner),
        secret: false,
        check: Some(Check::Visudo),
        why: "sudo rules from user-data".to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn spec(lock: bool, password: Option<Password>) -> UserSpec {
        UserSpec {
            name: Some("pi".into()),
            lock_passwd: lock,
            password,
            ..UserSpec::default()
        }
    }

    fn field(a: Option<Action>) -> Option<String> {
        a.map(|a| match a {
            Action::SetPassword { field, .. } => field.0,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn password_fields() {
        let h = format!("$6$saltsalt${}", "a".repeat(86));
        let hashed = Some(Password::Hash { hash: h.clone() });
        assert_eq!(
            field(plan_password(&spec(false, hashed.clone()), "pi", Some("!"))),
            Some(h.clone())
        );
        assert_eq!(
            field(plan_password(&spec(false, hashed.clone()), "pi", Some(&h))),
            None
        );
        assert_eq!(
            field(plan_password(&spec(true, hashed), "pi", Some("*"))),
            Some(format!("!{h}"))
        );
        assert_eq!(
            field(plan_password(&spec(true, None), "pi", Some("$6$old"))),
            Some("!$6$old".into())
        );
        assert_eq!(
            field(plan_password(&spec(true, None), "pi", Some("!$6$old"))),
            None
        );
        assert_eq!(
            field(plan_password(&spec(false, None), "pi", Some("$6$old"))),
            None
        );
    }

    #[test]
    fn plain_text_is_hashed_once() {
        let plain = Some(Password::PlainText {
            text: "correct horse".into(),
        });
        let first = field(plan_password(&spec(false, plain.clone()), "pi", Some("!"))).unwrap();
        assert!(first.starts_with("$6$") && !first.contains("correct"));
        assert!(verify_sha_crypt("correct horse", &first));
        assert_eq!(
            field(plan_password(&spec(false, plain), "pi", Some(&first))),
            None
        );
    }
}
