//! Accounts in the user-data: `users`, the legacy `user`, the image's
//! `default_user`, and per user its groups, sudo rules, passwords and keys,
//! read the way cloud-init reads them.

use super::checker::{Checker, Issue};
use super::ssh::authorized_keys;
use super::values::{boolean, checked, each_entry, index, item_path, one_or_many, string};
use crate::input::grammar;
use crate::input::model::{UserData, UserSpec};
use crate::input::yaml::{Node, Pos, Value};

const USER_KEYS: &[&str] = &[
    "name",
    "gecos",
    "groups",
    "sudo",
    "shell",
    "lock_passwd",
    "passwd",
    "hashed_passwd",
    "plain_text_passwd",
    "ssh_authorized_keys",
];

/// Per-user keys cloud-init knows and batten leaves to it.
const USER_KEYS_LEFT: &[&str] = &[
    "homedir",
    "primary_group",
    "uid",
    "system",
    "no_create_home",
    "no_user_group",
    "no_log_init",
    "expiredate",
    "inactive",
    "selinux_user",
    "ssh_import_id",
    "ssh_redirect_user",
    "doas",
    "snapuser",
    "create_groups",
];

/// `users` and the singular `user`, read the way cloud-init's `ug_util`
/// reads them. The default user's settings are merged later, when the
/// image's own `default_user` is known (`accounts::resolve_users`).
pub(super) fn users(c: &mut Checker, users: Option<&Node>, user: Option<&Node>, ud: &mut UserData) {
    let mut out: Vec<UserSpec> = Vec::new();
    match users {
        // cloud-init's own default is `users: [default]`.
        None => out.push(UserSpec::default_entry()),
        Some(node) => match &node.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(u) = user_entry(c, item, &index("users", i), true) {
                        out.push(u);
                    }
                }
            }
            Value::Str(s) => {
                c.warn(
                    node.pos,
                    "users",
                    "a comma-separated string is deprecated in cloud-init; use a list",
                );
                for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    match name {
                        "default" => out.push(UserSpec::default_entry()),
                        n => match grammar::account_name(n) {
                            Ok(n) => out.push(UserSpec::named(n)),
                            Err(e) => c.error(node.pos, "users", e),
                        },
                    }
                }
            }
            Value::Null => {}
            _ => c.expected(node, "users", "a list of users"),
        },
    }
    if let Some(node) = user {
        // The legacy `user:` configures the default user and makes sure
        // there is one.
        ud.legacy_user = match &node.value {
            Value::Str(name) => grammar::account_name(name)
                .map_err(|e| c.error(node.pos, "user", e))
                .ok()
                .map(UserSpec::named),
            Value::Map(_) => user_entry(c, node, "user", false),
            _ => {
                c.expected(node, "user", "a user name or a mapping");
                None
            }
        };
        if ud.legacy_user.is_some() && !out.iter().any(|u| u.default) {
            out.push(UserSpec::default_entry());
        }
    }
    ud.users = out;
}

impl UserSpec {
    fn default_entry() -> UserSpec {
        UserSpec {
            default: true,
            ..UserSpec::default()
        }
    }

    fn named(name: &str) -> UserSpec {
        UserSpec {
            name: Some(name.to_string()),
            ..UserSpec::default()
        }
    }
}

/// One entry of `users` (a name, `default`, or a mapping); `name_required`
/// is false for `user:` and `default_user`, whose name may come from the
/// image.
pub(super) fn user_entry(
    c: &mut Checker,
    node: &Node,
    path: &str,
    name_required: bool,
) -> Option<UserSpec> {
    match &node.value {
        Value::Str(s) if s == "default" => return Some(UserSpec::default_entry()),
        Value::Str(s) => {
            return grammar::account_name(s)
                .map_err(|e| c.error(node.pos, path, e))
                .ok()
                .map(UserSpec::named);
        }
        Value::Map(_) => {}
        _ => {
            c.expected(node, path, "a user name or a mapping with a name");
            return None;
        }
    }
    let mut u = UserSpec::default();
    let errors_at_start = c.errors.len();
    let known: Vec<&str> = USER_KEYS.iter().chain(USER_KEYS_LEFT).copied().collect();
    // cloud-init turns '-' into '_' in user keys; do the same before matching.
    let normalised = normalise_keys(node);
    each_entry(c, &normalised, path, &known, |c, key, v, p| match key {
        "name" => match &v.value {
            Value::Str(s) if s == "default" => u.default = true,
            _ => u.name = checked(c, v, &p, |s| grammar::account_name(s).map(str::to_string)),
        },
        "gecos" => u.gecos = checked(c, v, &p, |s| grammar::gecos(s).map(str::to_string)),
        "groups" => u.groups = groups(c, v, &p),
        "sudo" => u.sudo = Some(sudo(c, v, &p)),
        "shell" => u.shell = checked(c, v, &p, |s| grammar::absolute_path(s).map(str::to_string)),
        "lock_passwd" => u.lock_passwd = boolean(c, v, &p),
        "passwd" => u.passwords.on_create = hash(c, v, &p),
        "hashed_passwd" => u.passwords.hashed = hash(c, v, &p),
        "plain_text_passwd" => {
            if let Some(t) = string(c, v, &p) {
                if t.is_empty() || t.contains(['\n', '\r', '\0']) {
                    c.error(v.pos, &p, "a password must be one non-empty line");
                } else {
                    c.warn(v.pos, &p, "a plain-text password in user-data can be read by anyone who gets the file; batten hashes it before writing, but prefer `hashed_passwd`");
                    u.passwords.plain_text = Some(t.to_string());
                }
            }
        }
        "ssh_authorized_keys" => u.ssh_authorized_keys = authorized_keys(c, v, &p),
        other => {
            c.warn(
                v.pos,
                &p,
                "left to cloud-init: batten does not apply this user setting",
            );
            u.left_to_cloud_init.push(other.to_string());
        }
    });
    if name_required && node.get("name").is_none() {
        c.error(node.pos, path, "this user has no name; add `name: ...`");
    }
    if let (Some(name), Some(rules)) = (&u.name, &u.sudo)
        && !rules.is_empty()
        && let Err(e) = grammar::sudoers_user(name)
    {
        let at = node.get("name").map_or(node.pos, |n| n.pos);
        c.error(at, &format!("{path}.name"), e);
    }
    if u.passwords.any() && u.locked() {
        c.warn(
            node.pos,
            path,
            "a password is set but lock_passwd is true (the default), so it cannot be used; set lock_passwd: false for console login",
        );
    }
    (c.errors.len() == errors_at_start).then_some(u)
}

/// Read a `default_user` mapping from the image's cloud.cfg with the same
/// grammar as user-data; every problem is returned when it does not pass.
pub fn default_user_entry(node: &Node, file: &str) -> Result<UserSpec, Vec<Issue>> {
    let mut c = Checker::new(vec![file.to_string()]);
    match user_entry(&mut c, node, "system_info.default_user", false) {
        Some(u) if c.errors.is_empty() => Ok(UserSpec { default: true, ..u }),
        _ => Err(c.errors),
    }
}

fn hash(c: &mut Checker, node: &Node, path: &str) -> Option<String> {
    checked(c, node, path, |s| {
        grammar::shadow_hash(s).map(|_| s.to_string())
    })
}

/// A copy of a mapping node with `-` in its keys replaced by `_`.
fn normalise_keys(node: &Node) -> Node {
    let Value::Map(entries) = &node.value else {
        return node.clone();
    };
    let entries = entries
        .iter()
        .map(|(k, v)| {
            let k = match &k.value {
                Value::Str(s) => Node {
                    value: Value::Str(s.replace('-', "_")),
                    pos: k.pos,
                },
                _ => k.clone(),
            };
            (k, v.clone())
        })
        .collect();
    Node {
        value: Value::Map(entries),
        pos: node.pos,
    }
}

fn groups(c: &mut Checker, node: &Node, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut add =
        |c: &mut Checker, name: &str, pos: Pos, p: &str| match grammar::account_name(name.trim()) {
            Ok(g) => {
                if !out.iter().any(|x| x == g) {
                    out.push(g.to_string())
                }
            }
            Err(e) => c.error(pos, p, format!("group: {e}")),
        };
    match &node.value {
        Value::Str(s) => {
            for name in s.split(',').filter(|n| !n.trim().is_empty()) {
                add(c, name, node.pos, path);
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = index(path, i);
                if let Some(s) = string(c, item, &p) {
                    add(c, s, item.pos, &p);
                }
            }
        }
        Value::Map(entries) => {
            for (k, _) in entries {
                if let Value::Str(s) = &k.value {
                    add(c, s, k.pos, path);
                }
            }
        }
        Value::Null => {}
        _ => c.expected(node, path, "a list of groups or a comma-separated string"),
    }
    out
}

fn sudo(c: &mut Checker, node: &Node, path: &str) -> Vec<String> {
    match &node.value {
        Value::Null | Value::Bool(false) => Vec::new(),
        // PyYAML reads these plain words as booleans, so cloud-init does too.
        Value::Str(w) if ["no", "off"].contains(&w.to_ascii_lowercase().as_str()) => Vec::new(),
        Value::Str(w) if ["yes", "on"].contains(&w.to_ascii_lowercase().as_str()) => {
            c.error(node.pos, path, "sudo: yes is not a rule (cloud-init fails on it); write a rule such as \"ALL=(ALL) NOPASSWD:ALL\"");
            Vec::new()
        }
        Value::Bool(true) => {
            c.error(node.pos, path, "sudo: true is not a rule (cloud-init fails on it); write a rule such as \"ALL=(ALL) NOPASSWD:ALL\"");
            Vec::new()
        }
        _ => one_or_many(node)
            .into_iter()
            .filter_map(|(item, i)| {
                let p = item_path(path, i);
                checked(c, item, &p, |s| grammar::sudo_rule(s).map(str::to_string))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{KEY, run};

    #[test]
    fn user_forms() {
        let hash = format!("$6$saltsalt${}", "a".repeat(86));
        let text = format!(
            "user:\n  name: pi\n  passwd: \"{hash}\"\n  lock_passwd: false\nusers:\n  - default\n  - ops\n  - {{name: ops, groups: \"adm, sudo\"}}\n  - name: dev\n    groups: [adm, video]\n    sudo: [\"ALL=(ALL) NOPASSWD:ALL\"]\n    lock-passwd: no\n    homedir: /srv/dev\n"
        );
        let (ud, e, w) = run(&text);
        assert!(e.is_empty(), "{e:?}");
        let ud = ud.unwrap();
        let legacy = ud.legacy_user.unwrap();
        assert_eq!(legacy.name.as_deref(), Some("pi"));
        assert_eq!(legacy.lock_passwd, Some(false));
        assert!(legacy.passwords.on_create.is_some());
        let users = ud.users;
        assert!(users[0].default && users[0].name.is_none());
        let names: Vec<_> = users[1..].iter().map(|u| u.name.clone().unwrap()).collect();
        assert_eq!(
            names,
            ["ops", "ops", "dev"],
            "duplicates are resolved with the image"
        );
        assert_eq!(users[2].groups, ["adm", "sudo"]);
        assert_eq!(users[3].groups, ["adm", "video"]);
        assert_eq!(users[3].lock_passwd, Some(false));
        assert_eq!(
            users[3].sudo.as_deref(),
            Some(&["ALL=(ALL) NOPASSWD:ALL".to_string()][..])
        );
        assert_eq!(users[1].sudo, None, "not given is not the same as none");
        assert_eq!(users[3].left_to_cloud_init, ["homedir"]);
        assert!(
            w.iter()
                .any(|w| w.contains("users[3].homedir: left to cloud-init")),
            "{w:?}"
        );
    }

    #[test]
    fn user_typo_is_an_error_not_a_silent_lockout() {
        let (_, e, _) = run(&format!(
            "users:\n  - name: a\n    ssh_authorised_keys: [\"{KEY}\"]\n"
        ));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].contains("did you mean \"ssh_authorized_keys\""),
            "{}",
            e[0]
        );
    }

    #[test]
    fn sudo_true_is_refused_like_cloud_init() {
        let (_, e, _) = run("users:\n  - {name: a, sudo: true}\n");
        assert!(e[0].contains("sudo: true is not a rule"), "{e:?}");
        let (_, e, _) = run("users:\n  - {name: a, sudo: Yes}\n");
        assert!(e[0].contains("sudo: yes is not a rule"), "{e:?}");
        let (ud, e, _) = run("users:\n  - {name: a, sudo: no}\n");
        assert!(e.is_empty());
        assert_eq!(ud.unwrap().users[0].sudo, Some(vec![]), "an explicit none");
    }
}
