//! No secrets left on the card: a seed on the boot partition (FAT, which
//! anyone holding the SD card, and every local user, can read) loses its
//! password hashes, plain passwords and private keys once batten has
//! applied them. (A proxy user's `password_hash` stays, and is named: a
//! later run without it would give the panel a new password.) The file keeps everything else,
//! line for line (YAML 1.1 words such as `no` would change meaning if it
//! were re-serialised), and the meta-data with its instance-id stays, so
//! neither cloud-init nor batten runs again because of the rewrite. batten
//! keeps the original, root only, under `/var/lib/batten`.
//!
//! The rewrite is one step of the plan: it is undone with the rest when a
//! later step fails, so a Pi whose run failed keeps the seed it came with.

use crate::input::yaml::{self, Node, Value};
use crate::plan::{Action, PlanError};

use super::Planning;
use super::report::{Inputs, Report, Status};

/// Keys of a user entry (`users[*]`, `user:`) that hold a password.
const USER_SECRETS: &[&str] = &["passwd", "hashed_passwd", "plain_text_passwd"];

/// Top-level keys whose whole value is secret: cloud-init's password
/// modules, and host key pairs (`ssh_keys`, with their private halves).
const TOP_SECRETS: &[&str] = &["password", "chpasswd", "ssh_keys"];

/// The seed file rewritten without its secrets, when it is on a boot
/// partition and has any.
pub fn plan(cx: &Planning, notes: &mut Vec<String>) -> Result<Vec<Action>, PlanError> {
    let Some(path) = cx
        .seed
        .in_root
        .as_deref()
        .filter(|_| cx.seed.on_boot_partition())
    else {
        return Ok(Vec::new());
    };
    let Some(text) = std::str::from_utf8(&cx.seed.user_data)
        .ok()
        .filter(|t| t.starts_with("#cloud-config"))
    else {
        notes.push(format!(
            "{path} is not a plain #cloud-config file, so batten cannot take the password hashes out of it: anyone holding the card can read them; remove them by hand after the first boot"
        ));
        return Ok(Vec::new());
    };
    let Ok(doc) = yaml::parse(text) else {
        return Ok(Vec::new());
    };
    let secrets = secret_entries(&doc);
    if secrets.is_empty() {
        return Ok(Vec::new());
    }
    if doc.get("batten").and_then(|b| b.get("proxy")).is_some() && text.contains("password_hash") {
        notes.push(format!(
            "{path} keeps the proxy users' password_hash: a run without it would give the panel a new password; anyone holding the card can read it"
        ));
    }
    let Some(scrubbed) = without(text, &secrets).filter(|out| clean(&doc, &secrets, out)) else {
        notes.push(format!(
            "{path} keeps its password hashes: they are written in a way batten does not rewrite line by line (inline `{{...}}`, an anchor); anyone holding the card can read them, so remove them by hand after the first boot"
        ));
        return Ok(Vec::new());
    };
    let owner = cx
        .root
        .metadata(path)?
        .map(|m| m.owner())
        .unwrap_or(crate::host::root::Owner {
            uid: 0,
            gid: 0,
            mode: 0o644,
        });
    let scrubbed = scrubbed.into_bytes();
    if scrubbed == cx.seed.user_data {
        return Ok(Vec::new());
    }
    Ok(vec![Action::Scrub {
        path: path.to_string(),
        contents: scrubbed,
        owner,
        why: "take the password hashes and private keys out of the seed on the boot partition, which anyone holding the card can read (batten keeps the original in /var/lib/batten/user-data, root only)".into(),
    }])
}

/// Whether the seeds on the boot partitions are free of secrets: a warning
/// names each that is not (batten could not rewrite it, or someone wrote
/// a hash there again).
pub fn verify(inp: &Inputs, r: &mut Report) {
    for path in ["/boot/firmware/user-data", "/boot/user-data"] {
        let Ok(Some(text)) = inp.root.read_to_string(path) else {
            continue;
        };
        let held = text
            .starts_with("#cloud-config")
            .then(|| yaml::parse(&text).ok())
            .flatten()
            .map(|doc| secret_entries(&doc).len());
        let Some(held) = held else {
            r.add(
                "card.secrets",
                Status::Warn,
                path,
                "not a plain #cloud-config file batten can read: any password hash in it is readable by anyone holding the card",
            );
            continue;
        };
        let (status, why) = if held == 0 {
            (Status::Pass, "no password hash or private key".to_string())
        } else {
            (
                Status::Warn,
                format!(
                    "{held} password or key entries, readable by anyone holding the card; remove them"
                ),
            )
        };
        r.add("card.secrets", status, path, why);
    }
}

/// The positions (line, column) of every secret key in the document.
fn secret_entries(doc: &Node) -> Vec<(u64, u64)> {
    let mut found = Vec::new();
    let Some(top) = doc.as_map() else {
        return found;
    };
    let mut users: Vec<&Node> = Vec::new();
    for (key, value) in top {
        match key.scalar_text().map(|k| k.replace('-', "_")).as_deref() {
            Some(k) if TOP_SECRETS.contains(&k) => found.push((key.pos.line, key.pos.column)),
            Some("user") => users.push(value),
            Some("users") => {
                if let Value::Seq(items) = &value.value {
                    users.extend(items.iter());
                }
            }
            Some("system_info") => users.extend(value.get("default_user")),
            _ => {}
        }
    }
    for user in users {
        found.extend(keys_named(user, USER_SECRETS));
    }
    found.sort_unstable();
    found
}

fn keys_named(map: &Node, names: &[&str]) -> Vec<(u64, u64)> {
    map.as_map()
        .unwrap_or_default()
        .iter()
        // cloud-init reads `hashed-passwd` as `hashed_passwd`, and so does batten.
        .filter(|(k, _)| {
            k.scalar_text()
                .is_some_and(|k| names.contains(&k.replace('-', "_").as_str()))
        })
        .map(|(k, _)| (k.pos.line, k.pos.column))
        .collect()
}

/// Whether `out`, the document without the entries at `removed`, is
/// still YAML, holds no secret key, and shows none of the removed values
/// (an anchor elsewhere would).
fn clean(doc: &Node, removed: &[(u64, u64)], out: &str) -> bool {
    let Ok(after) = yaml::parse(out) else {
        return false;
    };
    secret_entries(&after).is_empty()
        && secret_values(doc, removed)
            .iter()
            .all(|value| !out.contains(value.as_str()))
}

/// The text of every scalar under the keys at `positions`.
fn secret_values(doc: &Node, positions: &[(u64, u64)]) -> Vec<String> {
    fn walk(node: &Node, positions: &[(u64, u64)], inside: bool, out: &mut Vec<String>) {
        match &node.value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    let hit = inside || positions.contains(&(k.pos.line, k.pos.column));
                    walk(v, positions, hit, out);
                }
            }
            Value::Seq(items) => {
                for item in items {
                    walk(item, positions, inside, out);
                }
            }
            _ if inside => out.extend(node.scalar_text().filter(|s| s.len() >= 6)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, positions, false, &mut out);
    out
}

/// `text` without the block-style entries whose keys start at `entries`:
/// the key's line and every following line indented deeper (its value).
/// A key written after a `- ` keeps the dash, so the list item stays.
/// `None` when an entry is not the first thing on its line but for dashes
/// (flow style), which this does not rewrite.
fn without(text: &str, entries: &[(u64, u64)]) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut drop = vec![false; lines.len()];
    let mut keep_prefix: Vec<Option<usize>> = vec![None; lines.len()];
    for &(line, column) in entries {
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        let start = usize::try_from(column).ok()?.checked_sub(1)?;
        let this = lines.get(index)?;
        let prefix = this.get(..start)?;
        if !prefix.chars().all(|c| c == ' ' || c == '-') {
            return None;
        }
        if prefix.contains('-') {
            keep_prefix[index] = Some(start);
        } else {
            drop[index] = true;
        }
        // The value: following lines more indented than the key, and the
        // blank lines among them.
        for (i, next) in lines.iter().enumerate().skip(index + 1) {
            let body = next.trim_end_matches(['\n', '\r']);
            let indent = body.len() - body.trim_start().len();
            // A comment may sit at any indentation inside a value.
            let comment = body.trim_start().starts_with('#');
            if !body.trim().is_empty() && !comment && indent <= start {
                break;
            }
            drop[i] = true;
        }
    }
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if drop[i] {
            continue;
        }
        match keep_prefix[i] {
            Some(start) => {
                out.push_str(line[..start].trim_end());
                out.push('\n');
            }
            None => out.push_str(line),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(node: &Node) -> Vec<&Node> {
        match &node.value {
            Value::Seq(items) => items.iter().collect(),
            _ => Vec::new(),
        }
    }

    fn scrub(text: &str) -> Option<String> {
        let doc = yaml::parse(text).unwrap();
        without(text, &secret_entries(&doc))
    }

    #[test]
    fn hashes_and_private_keys_go_and_every_other_line_stays() {
        let text = "#cloud-config\n# a comment stays\nuser:\n  name: pi\n  passwd: $y$j9T$abc$def\n  lock_passwd: no\nusers:\n  - passwd: $6$x$y\n    name: admin\n  - name: op\n    hashed_passwd: >-\n      $6$long$\n      hash\n    sudo: ALL=(ALL) ALL\nchpasswd:\n  expire: false\n  users:\n    - {name: pi, password: raspberry}\nssh_keys:\n  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    abc\n    -----END OPENSSH PRIVATE KEY-----\nssh_pwauth: false\n";
        let out = scrub(text).unwrap();
        assert_eq!(
            out,
            "#cloud-config\n# a comment stays\nuser:\n  name: pi\n  lock_passwd: no\nusers:\n  -\n    name: admin\n  - name: op\n    sudo: ALL=(ALL) ALL\nssh_pwauth: false\n"
        );
        // What is left still reads the same, but for the secrets.
        let doc = yaml::parse(&out).unwrap();
        assert!(secret_entries(&doc).is_empty());
        assert_eq!(
            doc.get("users").map(seq).unwrap()[0]
                .get("name")
                .and_then(Node::scalar_text)
                .as_deref(),
            Some("admin")
        );
    }

    #[test]
    fn inline_entries_are_not_rewritten_and_clean_files_are_left_alone() {
        assert_eq!(
            scrub("#cloud-config\nusers:\n  - {name: pi, passwd: $6$x$y}\n"),
            None
        );
        let clean = "#cloud-config\nusers:\n  - name: pi\n";
        assert!(secret_entries(&yaml::parse(clean).unwrap()).is_empty());
    }

    #[test]
    fn spellings_defaults_comments_and_anchors() {
        // cloud-init's hyphenated spelling and the default user of
        // system_info hold passwords too.
        let text = "#cloud-config\nsystem_info:\n  default_user:\n    name: pi\n    plain-text-passwd: raspberry\nusers:\n  - name: op\n    hashed-passwd: $6$x$y\n";
        assert_eq!(
            scrub(text).unwrap(),
            "#cloud-config\nsystem_info:\n  default_user:\n    name: pi\nusers:\n  - name: op\n"
        );
        // A comment inside a value does not end it early.
        let text = "#cloud-config\nuser:\n  name: pi\nssh_keys:\n  ed25519_public: ssh-ed25519 AAAA\n# the private half\n  ed25519_private: |\n    -----BEGIN-----\n";
        let out = scrub(text).unwrap();
        assert_eq!(out, "#cloud-config\nuser:\n  name: pi\n");
        // An anchor would leave the hash elsewhere: not rewritten.
        let text = "#cloud-config\nx: &pw $6$abcdefgh$hash\nuser:\n  name: pi\n  passwd: *pw\n";
        let doc = yaml::parse(text).unwrap();
        let secrets = secret_entries(&doc);
        let out = without(text, &secrets).unwrap();
        assert!(!clean(&doc, &secrets, &out), "{out}");
    }
}
