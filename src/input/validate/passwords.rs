//! `batten.passwords`, and refusing user-data that asks for a known
//! default password (pi/raspberry and the like): that is the owner asking
//! for the very hole batten closes, whichever key carries it, batten's own
//! or one left to cloud-init (`password`, `chpasswd`), since cloud-init
//! would set it after batten.

use super::checker::Checker;
use super::values::{boolean, each_entry, index, join};
use crate::crypt::Scheme;
use crate::crypt::defaults::{self, Match, Verdict};
use crate::input::yaml::{Node, Pos, Value};

const KEYS: &[&str] = &["allow_defaults"];

/// `batten.passwords`: `allow_defaults: true` is for a lab, and says so.
pub(super) fn settings(
    c: &mut Checker,
    node: &Node,
    path: &str,
) -> crate::input::model::DefaultPasswords {
    let mut s = crate::input::model::DefaultPasswords::default();
    each_entry(c, node, path, KEYS, |c, _, v, p| {
        s.allow_defaults = boolean(c, v, &p).unwrap_or(false);
        if s.allow_defaults {
            c.warn(
                v.pos,
                &p,
                "known default passwords (pi/raspberry and the like) are left in place: anyone who can reach a login can look them up; use this only in a lab",
            );
        }
    });
    s
}

/// A password found in the user-data, as written.
struct Given {
    pos: Pos,
    path: String,
    /// The account it is for, when the entry names one.
    user: Option<String>,
    /// A crypt(3) hash (`true`) or plain text.
    hashed: bool,
    value: String,
}

/// Report every password in `doc` that is a known default, each as an
/// error at its position. Hashes are checked with their own algorithm, all
/// of them at once in parallel.
pub(super) fn refuse_defaults(c: &mut Checker, doc: &Node) {
    let given = find(doc);
    let hashes: Vec<(String, String)> = given
        .iter()
        .filter(|g| g.hashed)
        .map(|g| (g.user.clone().unwrap_or_default(), g.value.clone()))
        .collect();
    let mut verdicts = defaults::check_all(&hashes).into_iter();
    for g in &given {
        let found = if g.hashed {
            match verdicts.next() {
                Some((_, Verdict::Default(m))) => Some(m),
                _ => None,
            }
        } else {
            defaults::plain_default(g.user.as_deref(), &g.value)
        };
        if let Some(m) = found {
            c.error(g.pos, &g.path, message(g, &m));
        }
    }
}

fn message(g: &Given, m: &Match) -> String {
    let what = if g.hashed {
        "this hash is of"
    } else {
        "this is"
    };
    format!(
        "{what} the known default password {} that anyone can look up; choose another, or leave the password out and log in with a key (batten.passwords.allow_defaults: true allows it in a lab)",
        m.describe()
    )
}

/// Every password the document gives, wherever cloud-init reads one.
fn find(doc: &Node) -> Vec<Given> {
    let mut out = Vec::new();
    if let Some(users) = doc.get("users") {
        match &users.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    user_entry(item, &index("users", i), &mut out);
                }
            }
            Value::Map(_) => user_entry(users, "users", &mut out),
            _ => {}
        }
    }
    if let Some(user) = doc.get("user") {
        user_entry(user, "user", &mut out);
    }
    if let Some(du) = doc.get("system_info").and_then(|s| s.get("default_user")) {
        user_entry(du, "system_info.default_user", &mut out);
    }
    // cloud-init's `password`: plain text for the default user.
    if let Some(p) = doc.get("password") {
        plain(p, "password", None, &mut out);
    }
    if let Some(ch) = doc.get("chpasswd") {
        chpasswd(ch, &mut out);
    }
    out
}

/// The password keys of one user entry (`-` and `_` alike, as cloud-init).
fn user_entry(node: &Node, path: &str, out: &mut Vec<Given>) {
    let Some(entries) = node.as_map() else {
        return;
    };
    let name = node.get("name").and_then(Node::scalar_text);
    for (k, v) in entries {
        let Some(key) = k.scalar_text() else { continue };
        let p = join(path, &key);
        match key.replace('-', "_").as_str() {
            "passwd" | "hashed_passwd" => hash(v, &p, name.clone(), out),
            "plain_text_passwd" => plain(v, &p, name.clone(), out),
            _ => {}
        }
    }
}

/// `chpasswd.users` (`name`, `password`, `type`) and the older
/// `chpasswd.list` of `name:password` lines.
fn chpasswd(node: &Node, out: &mut Vec<Given>) {
    if let Some(Value::Seq(users)) = node.get("users").map(|u| &u.value) {
        for (i, u) in users.iter().enumerate() {
            let at = format!("chpasswd.users[{i}].password");
            let (Some(pw), name) = (u.get("password"), u.get("name").and_then(Node::scalar_text))
            else {
                continue;
            };
            match u.get("type").and_then(Node::scalar_text).as_deref() {
                Some("hash") => hash(pw, &at, name, out),
                Some("RANDOM") => {}
                _ => plain(pw, &at, name, out),
            }
        }
    }
    let Some(list) = node.get("list") else { return };
    let lines: Vec<(Pos, String)> = match &list.value {
        Value::Str(s) => s.lines().map(|l| (list.pos, l.to_string())).collect(),
        Value::Seq(items) => items
            .iter()
            .filter_map(|i| Some((i.pos, i.scalar_text()?)))
            .collect(),
        _ => Vec::new(),
    };
    for (pos, line) in lines {
        let Some((name, pw)) = line.trim().split_once(':') else {
            continue;
        };
        if matches!(pw, "R" | "RANDOM") {
            continue;
        }
        out.push(Given {
            pos,
            path: "chpasswd.list".into(),
            user: Some(name.to_string()),
            hashed: pw.starts_with('$'),
            value: pw.to_string(),
        });
    }
}

fn hash(node: &Node, path: &str, user: Option<String>, out: &mut Vec<Given>) {
    if let Some(value) = node.scalar_text().filter(|h| {
        !matches!(
            Scheme::of(h),
            Scheme::Unknown | Scheme::Locked | Scheme::Empty
        )
    }) {
        out.push(Given {
            pos: node.pos,
            path: path.to_string(),
            user,
            hashed: true,
            value,
        });
    }
}

fn plain(node: &Node, path: &str, user: Option<String>, out: &mut Vec<Given>) {
    if let Some(value) = node.scalar_text() {
        out.push(Given {
            pos: node.pos,
            path: path.to_string(),
            user,
            hashed: false,
            value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{KEY, run};

    #[test]
    fn a_known_default_is_refused_wherever_it_is_given() {
        // `openssl passwd -6 -salt saltsalt raspberry` and Debian's
        // `mkpasswd -m yescrypt raspberry`.
        let sha = "$6$saltsalt$677q0O/U8ycKsbBfN68CgcyXcWEbi0J/eUf256PkkeGXfNX3CNnPlwFdNvdBgnSiHDx5X1Xozxf5lg9iVIVVu/";
        let yes = "$y$j9T$bueRBYFHX06XJDMnF8YUN1$we0SojwqKYp1AL5U.Vs4Ao4hfIjouUmD4qoYTlBQB94";
        let text = format!(
            "#cloud-config\nusers:\n  - name: pi\n    lock_passwd: false\n    hashed_passwd: \"{yes}\"\n    ssh_authorized_keys: [\"{KEY}\"]\n  - name: ops\n    plain_text_passwd: ops\n  - name: web\n    passwd: \"{sha}\"\npassword: changeme\nchpasswd:\n  users:\n    - {{name: root, password: toor, type: text}}\n  list: |\n    alarm:alarm\n"
        );
        let (ud, errors, _) = run(&text);
        assert!(ud.is_none());
        let want = [
            "ud.yaml:5:20: users[0].hashed_passwd: this hash is of the known default password \"raspberry\"",
            "ud.yaml:8:24: users[1].plain_text_passwd: this is the known default password \"ops\" (the account's own name)",
            "ud.yaml:11:11: password: this is the known default password \"changeme\"",
            "chpasswd.users[0].password: this is the known default password \"toor\"",
            "chpasswd.list: this is the known default password \"alarm\"",
        ];
        for w in want {
            assert!(errors.iter().any(|e| e.contains(w)), "{w}\n{errors:#?}");
        }
        // `web`'s hash is of "raspberry", which is a default only for pi
        // and not listed for any account: allowed.
        assert!(
            !errors.iter().any(|e| e.contains("users[2]")),
            "{errors:#?}"
        );
    }

    #[test]
    fn allow_defaults_lets_a_lab_have_them_with_a_warning() {
        let text = format!(
            "#cloud-config\nbatten:\n  passwords: {{allow_defaults: true}}\nusers:\n  - name: pi\n    plain_text_passwd: raspberry\n    ssh_authorized_keys: [\"{KEY}\"]\n"
        );
        let (ud, errors, warnings) = run(&text);
        assert!(ud.is_some(), "{errors:#?}");
        assert!(ud.unwrap().batten.passwords.allow_defaults);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("batten.passwords.allow_defaults: known default passwords")),
            "{warnings:#?}"
        );
        let (ud, errors, _) = run("#cloud-config\nbatten:\n  passwords: {allow_default: true}\n");
        assert!(ud.is_none());
        assert!(
            errors[0].contains("did you mean \"allow_defaults\""),
            "{errors:#?}"
        );
    }
}
