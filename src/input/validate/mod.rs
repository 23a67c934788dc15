//! From a position-carrying YAML tree to the typed `UserData`, collecting
//! every problem on the way.
//!
//! The validator never stops at the first error: a user fixing a file on a
//! Raspberry Pi's SD card wants the whole list in one go. Each problem names
//! the file, line, column and key path (`users[1].ssh_authorized_keys[0]`).
//! Warnings (things accepted but worth knowing) are collected the same way.
//!
//! One file per part of the document: `values` holds the readers every
//! part shares, `ssh`, `accounts`, `firewall`, `proxy`, `updates` and
//! `kernel` read their keys, and this file walks the top level and
//! `batten:`.

mod accounts;
mod assure;
mod checker;
mod firewall;
mod kernel;
mod passwords;
mod proxy;
mod ssh;
mod updates;
mod values;

pub use accounts::default_user_entry;
pub use checker::{Checker, Issue};
pub use ssh::{MIN_RSA_BITS, parse_authorized_key, rsa_bits_of_line};

use crate::input::grammar;
use crate::input::model::{Batten, CryptoPolicy, HostKeyType, UserData};
use crate::input::yaml::{Node, Value};
use accounts::{user_entry, users};
use firewall::firewall;
use proxy::{check_proxy_ports, proxy_site};
use ssh::{authorized_keys, genkeytypes, host_keys, pwauth, ssh_settings};
use values::{boolean, each_entry, index, one_or_many};

/// The cloud-init top-level keys batten implements.
pub const HONOURED_KEYS: &[&str] = &[
    "users",
    "user",
    "ssh_authorized_keys",
    "ssh_pwauth",
    "disable_root",
    "ssh_deletekeys",
    "ssh_genkeytypes",
    "ssh_keys",
    "ssh_quiet_keygen",
    "batten",
];

const BATTEN_KEYS: &[&str] = &[
    "ssh",
    "firewall",
    "proxy",
    "passwords",
    "updates",
    "kernel",
    "assure",
];

/// A module name as cloud-init compares them: `-` and `_` alike, `cc_` and
/// `.py` dropped, lower case.
pub fn module_key(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase().replace('-', "_");
    let n = n.strip_prefix("cc_").unwrap_or(&n);
    n.strip_suffix(".py").unwrap_or(n).to_string()
}

/// True for the modules batten takes over. It lives with the user-data's
/// keys because both readers need it: validation warns when a module list
/// in user-data brings one back, and the cloud-init concern leaves them out
/// of the image's lists.
pub fn is_batten_module(name: &str) -> bool {
    matches!(module_key(name).as_str(), "ssh" | "set_passwords")
}

/// Validate a whole document (the merged top-level mapping of every
/// cloud-config part). Returns the model when there were no errors.
pub fn validate(c: &mut Checker, doc: &Node) -> Option<UserData> {
    let mut ud = UserData {
        disable_root: true,
        ssh_deletekeys: true,
        ssh_genkeytypes: HostKeyType::defaults(),
        ..UserData::default()
    };
    let Some(entries) = doc.as_map() else {
        c.expected(doc, "", "a mapping of cloud-config keys");
        return None;
    };
    let mut users_node = None;
    let mut user_node = None;
    for (k, v) in entries {
        let key = match &k.value {
            Value::Str(s) => s.as_str(),
            _ => {
                c.error(
                    k.pos,
                    "",
                    format!("top-level keys are words, found {}", k.value.kind()),
                );
                continue;
            }
        };
        let path = key.to_string();
        match key {
            "users" => users_node = Some(v),
            "user" => user_node = Some(v),
            "ssh_authorized_keys" => ud.ssh_authorized_keys = authorized_keys(c, v, &path),
            "ssh_pwauth" => ud.ssh_pwauth = pwauth(c, v, &path),
            "disable_root" => ud.disable_root = boolean(c, v, &path).unwrap_or(true),
            "ssh_deletekeys" => ud.ssh_deletekeys = boolean(c, v, &path).unwrap_or(true),
            "ssh_quiet_keygen" => ud.ssh_quiet_keygen = boolean(c, v, &path).unwrap_or(false),
            "ssh_genkeytypes" => ud.ssh_genkeytypes = genkeytypes(c, v, &path),
            "ssh_keys" => ud.ssh_keys = host_keys(c, v, &path),
            "batten" => ud.batten = batten(c, v, &path),
            "system_info" => {
                // Only `default_user` matters to batten; the rest is cloud-init's.
                if let Some(du) = v.get("default_user") {
                    ud.default_user_config = user_entry(c, du, "system_info.default_user", false);
                }
                ud.left_to_cloud_init.push(key.to_string());
            }
            "cloud_init_modules" | "cloud_config_modules" | "cloud_final_modules" => {
                let brings_back = one_or_many(v).iter().any(|(item, _)| {
                    let name = match &item.value {
                        Value::Seq(parts) => parts.first().and_then(Node::scalar_text),
                        _ => item.scalar_text(),
                    };
                    name.is_some_and(|n| is_batten_module(&n))
                });
                if brings_back {
                    c.warn(k.pos, key, "this list runs cloud-init's ssh or set_passwords module, which would replace batten's host keys or sshd password setting; leave those modules out");
                }
                ud.left_to_cloud_init.push(key.to_string());
            }
            other => {
                if let Some(s) = grammar::suggest(other, HONOURED_KEYS).filter(|s| *s != other) {
                    c.warn(
                        k.pos,
                        other,
                        format!("left to cloud-init; did you mean {s:?}?"),
                    );
                }
                ud.left_to_cloud_init.push(other.to_string());
            }
        }
    }
    users(c, users_node, user_node, &mut ud);
    check_proxy_ports(c, &ud, doc);
    if !ud.batten.passwords.allow_defaults {
        passwords::refuse_defaults(c, doc);
    }
    // The modern crypto policy serves no ECDSA host key (ssh-audit's
    // guide); a list the user-data gives is kept as given.
    if doc.get("ssh_genkeytypes").is_none() && ud.batten.ssh.crypto == CryptoPolicy::Modern {
        ud.ssh_genkeytypes = vec![HostKeyType::Rsa, HostKeyType::Ed25519];
    }
    // Report in file order, whatever order the keys were checked in.
    let order = |i: &Issue| (i.file.clone(), i.line, i.column);
    c.errors.sort_by_key(order);
    c.warnings.sort_by_key(order);
    c.errors.is_empty().then_some(ud)
}

fn batten(c: &mut Checker, node: &Node, path: &str) -> Batten {
    let mut b = Batten::default();
    if matches!(node.value, Value::Null) {
        return b;
    }
    each_entry(c, node, path, BATTEN_KEYS, |c, key, v, p| match key {
        "ssh" => b.ssh = ssh_settings(c, v, &p),
        "firewall" => b.firewall = firewall(c, v, &p),
        "passwords" => b.passwords = passwords::settings(c, v, &p),
        "updates" => b.updates = updates::updates(c, v, &p),
        "kernel" => b.kernel = kernel::kernel(c, v, &p),
        "assure" => b.assure = assure::assure(c, v, &p),
        "proxy" => {
            b.proxy = match &v.value {
                Value::Seq(items) => items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| proxy_site(c, item, &index(&p, i)))
                    .collect(),
                Value::Map(_) => proxy_site(c, v, &p).into_iter().collect(),
                Value::Null => {
                    c.error(v.pos, &p, "no value; list the sites, or leave the key out");
                    Vec::new()
                }
                _ => {
                    c.expected(v, &p, "a list of proxy sites");
                    Vec::new()
                }
            }
        }
        _ => {} // each_entry hands over listed keys only
    });
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::model::PasswordAuth;

    pub(crate) const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGBfY5Y7Dp1Dn4a4y6iJbBvYxVKJWB3H0cQ2m9bq6Tq3 admin@laptop";

    /// Validate `text` as the file `ud.yaml`: the model, and the errors and
    /// warnings as the user reads them. Every part's tests use it.
    pub(super) fn run(text: &str) -> (Option<UserData>, Vec<String>, Vec<String>) {
        let node: Node = crate::input::yaml::parse(text).expect("test YAML parses");
        let mut c = Checker::new(vec!["ud.yaml".into()]);
        let ud = validate(&mut c, &node);
        let e = c.errors.iter().map(|i| i.to_string()).collect();
        let w = c.warnings.iter().map(|i| i.to_string()).collect();
        (ud, e, w)
    }

    #[test]
    fn minimal_document_gets_cloud_init_defaults() {
        let (ud, e, _) = run("ssh_pwauth: no\n");
        assert!(e.is_empty(), "{e:?}");
        let ud = ud.unwrap();
        assert_eq!(ud.ssh_pwauth, PasswordAuth::Deny);
        assert!(ud.disable_root && ud.ssh_deletekeys);
        assert_eq!(ud.users.len(), 1);
        assert!(ud.users[0].default && ud.users[0].locked());
        assert!(ud.batten.firewall.enabled);
        assert_eq!(
            ud.ssh_genkeytypes,
            [HostKeyType::Rsa, HostKeyType::Ed25519],
            "no ECDSA host key under the modern crypto policy"
        );
    }

    #[test]
    fn errors_are_all_reported_with_positions_and_paths() {
        let text = format!(
            "users:\n  - name: admin\n    ssh_authorized_keys: [\"{KEY}\"]\n  - name: \"bad/name\"\n    ssh_authorized_keys:\n      - ssh-ed25519 notbase64\nbatten:\n  firewal: {{}}\n  ssh: {{port: 70000}}\n"
        );
        let (ud, e, _) = run(&text);
        assert!(ud.is_none());
        assert_eq!(e.len(), 4, "{e:#?}");
        assert!(
            e[0].starts_with("ud.yaml:4:11: users[1].name: \"bad/name\" contains '/'"),
            "{}",
            e[0]
        );
        assert!(
            e[1].starts_with(
                "ud.yaml:6:9: users[1].ssh_authorized_keys[0]: not a valid SSH public key"
            ),
            "{}",
            e[1]
        );
        assert_eq!(
            e[2],
            "ud.yaml:8:3: batten.firewal: unknown key \"firewal\"; did you mean \"firewall\"?"
        );
        assert_eq!(
            e[3],
            "ud.yaml:9:15: batten.ssh.port: 70000 is not a port: use a number from 1 to 65535"
        );
    }

    #[test]
    fn unknown_top_level_keys_are_left_to_cloud_init() {
        let (ud, e, w) = run("packages: [nginx]\nruncmd: [\"echo hi\"]\nssh_pwauht: no\n");
        assert!(e.is_empty());
        assert_eq!(
            ud.unwrap().left_to_cloud_init,
            ["packages", "runcmd", "ssh_pwauht"]
        );
        assert!(w[0].contains("did you mean \"ssh_pwauth\""), "{w:?}");
    }

    proptest::proptest! {
        #[test]
        fn load_never_panics(text in "(#cloud-config\n)?[ -~\n]{0,300}") {
            let _ = crate::input::load("p.yaml", text.as_bytes());
        }

        #[test]
        fn accepted_values_carry_no_config_syntax(s in "[ -~\n\r\t\u{0}]{0,40}") {
            let forbidden = |v: &str| v.chars().any(|c| matches!(c, '\n' | '\r' | ';' | '{' | '}' | '"' | '\'' | '#' | '\0' | ' '));
            if let Ok(v) = grammar::account_name(&s) { proptest::prop_assert!(!forbidden(v)); }
            if let Ok(v) = grammar::absolute_path(&s) { proptest::prop_assert!(!forbidden(v)); }
            if let Ok(v) = grammar::server_name(&s) { proptest::prop_assert!(!forbidden(v)); }
            if let Ok(v) = grammar::proxy_user_name(&s) { proptest::prop_assert!(!forbidden(v)); }
            if let Ok(v) = grammar::instance_id(&s) { proptest::prop_assert!(!forbidden(v)); }
            if grammar::source(&s).is_ok() { proptest::prop_assert!(!forbidden(s.trim())); }
            if grammar::crypt_hash(&s).is_ok() { proptest::prop_assert!(!forbidden(&s) && !s.contains(':')); }
            if let Ok(v) = grammar::sudo_rule(&s) {
                proptest::prop_assert!(!v.contains(['\n', '\r', '\0']) && !v.trim_start().starts_with([',', ':', '#']));
            }
            if let Ok(v) = grammar::gecos(&s) { proptest::prop_assert!(!v.contains([':', '\n', '\r', '\0'])); }
        }
    }
}
