//! Accounts of the root: parsed from its own `/etc/passwd`, `/etc/group`
//! and `/etc/shadow`, never through NSS (the binary is static, and with
//! `--root` the host's accounts are not the image's), and the plan that
//! makes them match the user-data's `users`.

pub mod apply;
pub mod native;
pub mod plan;

pub mod verify;

pub use plan::{SUDOERS_FILE, image_default_user, plan_users, resolve_users};

use serde::Serialize;

use crate::host::root::{Root, RootError};

/// The value `login.defs` gives `key`: the second word of the last line
/// whose first word is the key (`Some("")` for a key without a value). A
/// quoted value keeps its quotes, where shadow-utils strips them: a caller
/// wanting a number then finds none and leaves the work to the image's own
/// tools. The one reader of that file's settings.
pub fn login_defs_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(key)).then(|| words.next().unwrap_or(""))
        })
        .next_back()
}

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
    pub shadow: Vec<(String, String)>,
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

#[cfg(test)]
mod tests {
    use super::plan::{plan_password, resolve_users, sudo_block};
    use super::*;
    use crate::host::distro::Distro;
    use crate::input::model::{Passwords, UserSpec};
    use crate::plan::AccountStep;

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
