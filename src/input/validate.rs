//! From a position-carrying YAML tree to the typed `UserData`, collecting
//! every problem on the way.
//!
//! The validator never stops at the first error: a user fixing a file on a
//! Raspberry Pi's SD card wants the whole list in one go. Each problem names
//! the file, line, column and key path (`users[1].ssh_authorized_keys[0]`).
//! Warnings (things accepted but worth knowing) are collected the same way.

use std::fmt;

use serde::Serialize;

use super::grammar::{self, Source};
use super::model::*;
use super::yaml::{Node, Pos, Value};

/// One problem or warning in a user-data document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// The file as messages name it: its path or `<stdin>`, and the MIME
    /// part for a multipart file.
    pub file: String,
    /// 1-based line within the file or part; 0 when the YAML parser gave no
    /// position.
    pub line: u64,
    /// 1-based column; 0 when the YAML parser gave no position.
    pub column: u64,
    /// Key path inside the document, empty for the document itself.
    pub path: String,
    /// What is wrong and, where it can, what would be accepted.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Collects errors and warnings for one file while the tree is walked.
pub struct Checker {
    /// File label per cloud-config part (`Pos::part` indexes it).
    files: Vec<String>,
    /// Problems that make the document invalid.
    pub errors: Vec<Issue>,
    /// Things accepted but worth knowing.
    pub warnings: Vec<Issue>,
}

impl Checker {
    /// A checker for a document made of parts whose issues are named
    /// `files[part]` (a path, or a path and a MIME part).
    pub fn new(files: Vec<String>) -> Checker {
        Checker {
            files,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn issue(&self, pos: Pos, path: &str, message: String) -> Issue {
        Issue {
            file: self
                .files
                .get(pos.part)
                .or(self.files.first())
                .cloned()
                .unwrap_or_default(),
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            message,
        }
    }

    /// Record an error at `pos`.
    pub fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        let issue = self.issue(pos, path, message.into());
        self.errors.push(issue);
    }

    /// Record a warning at `pos`.
    pub fn warn(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        let issue = self.issue(pos, path, message.into());
        self.warnings.push(issue);
    }

    fn expected(&mut self, node: &Node, path: &str, what: &str) {
        self.error(
            node.pos,
            path,
            format!("expected {what}, found {}", node.value.kind()),
        );
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

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

const BATTEN_KEYS: &[&str] = &["ssh", "firewall", "proxy"];
const SSH_KEYS: &[&str] = &["port", "permit_root_login"];
const FIREWALL_KEYS: &[&str] = &["enabled", "backend", "allow", "log_drops", "forward"];
const ALLOW_KEYS: &[&str] = &["port", "proto", "from"];
const PROXY_KEYS: &[&str] = &[
    "listen",
    "server_name",
    "upstream",
    "auth",
    "tls",
    "allow_from",
];
const AUTH_KEYS: &[&str] = &["realm", "users"];
const PROXY_USER_KEYS: &[&str] = &["name", "password_hash"];
const TLS_KEYS: &[&str] = &["certificate", "key"];

/// Walk a mapping, reporting keys outside `known` as errors with a
/// did-you-mean, and hand each known entry to `f`.
fn each_entry<'a>(
    c: &mut Checker,
    node: &'a Node,
    path: &str,
    known: &[&str],
    mut f: impl FnMut(&mut Checker, &str, &'a Node, String),
) {
    let Some(entries) = node.as_map() else {
        c.expected(node, path, "a mapping");
        return;
    };
    for (k, v) in entries {
        let Value::Str(key) = &k.value else {
            c.error(
                k.pos,
                path,
                format!("keys here are words, found {}", k.value.kind()),
            );
            continue;
        };
        let key_path = join(path, key);
        if known.contains(&key.as_str()) {
            f(c, key, v, key_path);
        } else {
            let hint = grammar::suggest(key, known)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_else(|| format!("; known keys: {}", known.join(", ")));
            c.error(k.pos, &key_path, format!("unknown key {key:?}{hint}"));
        }
    }
}

/// A boolean word in any case, as cloud-init's `translate_bool` reads it.
fn bool_word(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// A boolean as cloud-init reads it: YAML booleans, and the strings
/// true/false/yes/no/on/off/1/0 in any case (PyYAML's YAML 1.1 booleans
/// plus what cloud-init's `translate_bool` accepts).
fn boolean(c: &mut Checker, node: &Node, path: &str) -> Option<bool> {
    match &node.value {
        Value::Bool(b) => Some(*b),
        Value::Int(1) => Some(true),
        Value::Int(0) => Some(false),
        Value::Str(s) => match bool_word(s) {
            Some(b) => Some(b),
            None => {
                c.error(
                    node.pos,
                    path,
                    format!("expected true or false, found {s:?}"),
                );
                None
            }
        },
        _ => {
            c.expected(node, path, "true or false");
            None
        }
    }
}

fn string<'a>(c: &mut Checker, node: &'a Node, path: &str) -> Option<&'a str> {
    match &node.value {
        Value::Str(s) => Some(s),
        _ => {
            c.expected(node, path, "a string");
            None
        }
    }
}

/// A string checked by a grammar function.
fn checked<T>(
    c: &mut Checker,
    node: &Node,
    path: &str,
    grammar: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let s = string(c, node, path)?;
    match grammar(s) {
        Ok(v) => Some(v),
        Err(e) => {
            c.error(node.pos, path, e);
            None
        }
    }
}

fn port(c: &mut Checker, node: &Node, path: &str) -> Option<u16> {
    let r = match &node.value {
        Value::Int(n) => grammar::port_number(*n),
        Value::Str(s) => grammar::port_text(s),
        _ => {
            c.expected(node, path, "a port number");
            return None;
        }
    };
    r.map_err(|e| c.error(node.pos, path, e)).ok()
}

/// Like `one_or_many`, for a setting batten enforces where no item means
/// nothing sensible: an empty value (`from:` with the address forgotten)
/// or `[]` is an error, never read as "everyone" or "the default".
fn some_of<'a>(
    c: &mut Checker,
    node: &'a Node,
    path: &str,
    what: &str,
) -> Vec<(&'a Node, Option<usize>)> {
    let items = one_or_many(node);
    if items.is_empty() {
        c.error(
            node.pos,
            path,
            format!("no value; give {what}, or leave the key out"),
        );
    }
    items
}

/// A scalar or a list of scalars: cloud-init accepts both in many places.
fn one_or_many(node: &Node) -> Vec<(&Node, Option<usize>)> {
    match &node.value {
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, n)| (n, Some(i)))
            .collect(),
        Value::Null => Vec::new(),
        _ => vec![(node, None)],
    }
}

fn item_path(path: &str, i: Option<usize>) -> String {
    match i {
        Some(i) => index(path, i),
        None => path.to_string(),
    }
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
                    name.is_some_and(|n| crate::concerns::cloud_init::is_batten_module(&n))
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
    // Report in file order, whatever order the keys were checked in.
    let order = |i: &Issue| (i.file.clone(), i.line, i.column);
    c.errors.sort_by_key(order);
    c.warnings.sort_by_key(order);
    c.errors.is_empty().then_some(ud)
}

/// `ssh_pwauth` is the one setting that can leave SSH's door open, so only
/// a value batten reads for certain is taken: a boolean (YAML 1.1 words
/// included). cloud-init leaves password login as the image has it for
/// `unchanged`, an empty value or any word it does not know; batten refuses
/// those (exit 65), since a typo must never leave passwords on.
fn pwauth(c: &mut Checker, node: &Node, path: &str) -> PasswordAuth {
    const ASK: &str =
        "write false (password login off, batten's default) or true (passwords stay on)";
    let allow = match &node.value {
        Value::Bool(b) => Some(*b),
        Value::Int(1) => Some(true),
        Value::Int(0) => Some(false),
        Value::Str(s) => match bool_word(s) {
            Some(b) => Some(b),
            None if s.eq_ignore_ascii_case("unchanged") => {
                c.error(
                    node.pos,
                    path,
                    format!("\"unchanged\" would leave password login as the image has it, which batten never does; {ASK}"),
                );
                None
            }
            None => {
                c.error(
                    node.pos,
                    path,
                    format!("{s:?} is not true or false; batten does not guess about password login: {ASK}"),
                );
                None
            }
        },
        Value::Null => {
            c.error(node.pos, path, format!("no value; {ASK}"));
            None
        }
        _ => {
            c.expected(node, path, "true or false");
            None
        }
    };
    match allow {
        Some(true) => {
            c.warn(
                node.pos,
                path,
                "password login stays ON: SSH will accept passwords, and anyone can try to guess them; remove ssh_pwauth or set it to false unless you need this",
            );
            PasswordAuth::Allow
        }
        Some(false) => PasswordAuth::Deny,
        None => PasswordAuth::Default,
    }
}

/// Parse one `authorized_keys` line with the ssh-key crate.
pub fn parse_authorized_key(line: &str) -> Result<AuthorizedKey, String> {
    if line.contains(['\n', '\r', '\0']) {
        return Err("an SSH key must be on one line".into());
    }
    // The options are read as sshd reads them (the key crate splits them at
    // the first space, even inside quotes, and takes names sshd does not
    // know); what follows must be a key and nothing else, so no option can
    // hide in it.
    let (options, key_part) = super::key_options::split(line)?;
    let key = ssh_key::PublicKey::from_openssh(key_part).map_err(|e| {
        format!("not a valid SSH public key ({e}); paste the whole line from the .pub file")
    })?;
    let openssh = key
        .to_openssh()
        .map_err(|e| format!("cannot re-encode this SSH key: {e}"))?;
    let mut parts = openssh.splitn(3, ' ');
    let algorithm = parts.next().unwrap_or_default().to_string();
    let base64 = parts.next().unwrap_or_default().to_string();
    if matches!(algorithm.as_str(), "ssh-dss") {
        return Err("DSA keys are refused by current OpenSSH; use an ed25519 key".into());
    }
    let comment = key.comment().to_string();
    if comment.chars().any(|ch| ch.is_control()) {
        return Err("the key's comment contains control characters".into());
    }
    Ok(AuthorizedKey {
        options: options.to_string(),
        algorithm,
        base64,
        comment,
        fingerprint: key.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
    })
}

fn authorized_keys(c: &mut Checker, node: &Node, path: &str) -> Vec<AuthorizedKey> {
    let mut keys = Vec::new();
    for (item, i) in one_or_many(node) {
        let p = item_path(path, i);
        if let Some(line) = string(c, item, &p) {
            match parse_authorized_key(line) {
                Ok(k) => keys.push(k),
                Err(e) => c.error(item.pos, &p, e),
            }
        }
    }
    keys
}

fn genkeytypes(c: &mut Checker, node: &Node, path: &str) -> Vec<HostKeyType> {
    let mut out = Vec::new();
    for (item, i) in one_or_many(node) {
        let p = item_path(path, i);
        let Some(name) = string(c, item, &p) else {
            continue;
        };
        match name {
            "rsa" => out.push(HostKeyType::Rsa),
            "ecdsa" => out.push(HostKeyType::Ecdsa),
            "ed25519" => out.push(HostKeyType::Ed25519),
            "dsa" => c.warn(item.pos, &p, "DSA host keys are obsolete and not generated"),
            other => c.error(
                item.pos,
                &p,
                format!("unknown host key type {other:?}; use rsa, ecdsa or ed25519"),
            ),
        }
    }
    out.dedup();
    out
}

fn host_keys(c: &mut Checker, node: &Node, path: &str) -> Vec<ProvidedHostKey> {
    let Some(entries) = node.as_map() else {
        c.expected(
            node,
            path,
            "a mapping like {ed25519_private: ..., ed25519_public: ...}",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in HostKeyType::defaults() {
        let get = |suffix: &str| node.get(&format!("{}_{suffix}", t.name()));
        let (private, public) = (get("private"), get("public"));
        let key_path = |suffix: &str| join(path, &format!("{}_{suffix}", t.name()));
        let Some(private) = private else {
            if let Some(p) = public {
                c.error(
                    p.pos,
                    &key_path("public"),
                    "a public host key without its private key",
                );
            }
            continue;
        };
        let Some(private_text) = string(c, private, &key_path("private")) else {
            continue;
        };
        let parsed = match ssh_key::PrivateKey::from_openssh(private_text) {
            Ok(k) => k,
            Err(e) => {
                c.error(
                    private.pos,
                    &key_path("private"),
                    format!(
                        "not an OpenSSH private key ({e}); convert it with `ssh-keygen -p -f FILE`"
                    ),
                );
                continue;
            }
        };
        if parsed.is_encrypted() {
            c.error(
                private.pos,
                &key_path("private"),
                "host keys cannot have a passphrase",
            );
            continue;
        }
        let algorithm = parsed.algorithm();
        let matches_entry = match t {
            HostKeyType::Rsa => matches!(algorithm, ssh_key::Algorithm::Rsa { .. }),
            HostKeyType::Ecdsa => matches!(algorithm, ssh_key::Algorithm::Ecdsa { .. }),
            HostKeyType::Ed25519 => matches!(algorithm, ssh_key::Algorithm::Ed25519),
        };
        if !matches_entry {
            c.error(
                private.pos,
                &key_path("private"),
                format!(
                    "this is an {} key, not an {} key; put it under the matching entry",
                    algorithm.as_str(),
                    t.name()
                ),
            );
            continue;
        }
        let derived = parsed.public_key().clone();
        let public_line =
            match public.and_then(|p| string(c, p, &key_path("public")).map(|s| (p, s))) {
                Some((p, text)) => match ssh_key::PublicKey::from_openssh(text.trim()) {
                    Ok(pk) if pk.key_data() == derived.key_data() => text.trim().to_string(),
                    Ok(_) => {
                        c.error(
                            p.pos,
                            &key_path("public"),
                            "this public key does not belong to the private key beside it",
                        );
                        continue;
                    }
                    Err(e) => {
                        c.error(
                            p.pos,
                            &key_path("public"),
                            format!("not a valid SSH public key ({e})"),
                        );
                        continue;
                    }
                },
                None => derived.to_openssh().unwrap_or_default(),
            };
        // The line goes into the .pub file and its comment onto the console.
        if public_line.chars().any(char::is_control) {
            c.error(
                public.map_or(private.pos, |p| p.pos),
                &key_path("public"),
                "the public key's comment holds control characters (a newline or a terminal escape); remove them",
            );
            continue;
        }
        let certificate = match get("certificate") {
            None => None,
            Some(node) => {
                let Some(text) = string(c, node, &key_path("certificate")) else {
                    continue;
                };
                match host_certificate(text, &derived) {
                    Ok(line) => Some(line),
                    Err(why) => {
                        c.error(node.pos, &key_path("certificate"), why);
                        continue;
                    }
                }
            }
        };
        out.push(ProvidedHostKey {
            key_type: t,
            private: private_text.to_string(),
            public: public_line,
            certificate,
        });
    }
    let names: Vec<String> = ["rsa", "ecdsa", "ed25519"]
        .iter()
        .flat_map(|t| {
            ["private", "public", "certificate"]
                .iter()
                .map(move |s| format!("{t}_{s}"))
        })
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for (k, _) in entries {
        let Value::Str(name) = &k.value else {
            continue;
        };
        if names.contains(&name.as_str()) {
            continue;
        }
        // cloud-init's own names for keys batten does not install are
        // skipped with a warning, as cloud-init skips them; any other name
        // is a typo that would drop the key the owner meant to give.
        if name.starts_with("dsa_") || name.contains("_sk_") {
            c.warn(
                k.pos,
                &join(path, name),
                "ignored: batten installs rsa, ecdsa and ed25519 host keys only",
            );
        } else {
            let hint = grammar::suggest(name, &names)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_else(|| {
                    "; known names are {rsa,ecdsa,ed25519}_{private,public,certificate}".to_string()
                });
            c.error(
                k.pos,
                &join(path, name),
                format!("unknown key {name:?}{hint}"),
            );
        }
    }
    out
}

/// A host certificate from `ssh_keys` as sshd will load it: one line, a
/// host certificate for the key beside it (sshd pairs certificate and key
/// by the public key). The line, trimmed, goes into the `-cert.pub` file.
fn host_certificate(text: &str, key: &ssh_key::PublicKey) -> Result<String, String> {
    let line = text.trim();
    if line.chars().any(char::is_control) {
        return Err(
            "a certificate is one line; this one holds a newline or another control character"
                .into(),
        );
    }
    crate::input::host_certificate::check(line, key)?;
    Ok(line.to_string())
}

/// `users` and the singular `user`, read the way cloud-init's `ug_util`
/// reads them. The default user's settings are merged later, when the
/// image's own `default_user` is known (`accounts::resolve_users`).
fn users(c: &mut Checker, users: Option<&Node>, user: Option<&Node>, ud: &mut UserData) {
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
fn user_entry(c: &mut Checker, node: &Node, path: &str, name_required: bool) -> Option<UserSpec> {
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

fn batten(c: &mut Checker, node: &Node, path: &str) -> Batten {
    let mut b = Batten::default();
    if matches!(node.value, Value::Null) {
        return b;
    }
    each_entry(c, node, path, BATTEN_KEYS, |c, key, v, p| match key {
        "ssh" => b.ssh = ssh_settings(c, v, &p),
        "firewall" => b.firewall = firewall(c, v, &p),
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

fn ssh_settings(c: &mut Checker, node: &Node, path: &str) -> SshSettings {
    let mut s = SshSettings::default();
    each_entry(c, node, path, SSH_KEYS, |c, key, v, p| match key {
        "port" => {
            s.ports = some_of(c, v, &p, "a port or a list of ports")
                .into_iter()
                .filter_map(|(item, i)| port(c, item, &item_path(&p, i)))
                .collect();
            s.ports.dedup();
        }
        "permit_root_login" => {
            s.permit_root_login = match &v.value {
                Value::Bool(false) => Some(RootLogin::No),
                Value::Str(x) => match x.as_str() {
                    "no" => Some(RootLogin::No),
                    "prohibit-password" | "without-password" => Some(RootLogin::ProhibitPassword),
                    "forced-commands-only" => Some(RootLogin::ForcedCommandsOnly),
                    "yes" => {
                        c.error(v.pos, &p, "\"yes\" would let root log in with a password; use \"prohibit-password\" for key-only root login");
                        None
                    }
                    other => {
                        c.error(v.pos, &p, format!("{other:?} is not a PermitRootLogin value; use no, prohibit-password or forced-commands-only"));
                        None
                    }
                },
                Value::Bool(true) => {
                    c.error(v.pos, &p, "yes would let root log in with a password; use \"prohibit-password\" for key-only root login");
                    None
                }
                _ => {
                    c.expected(v, &p, "no, prohibit-password or forced-commands-only");
                    None
                }
            }
        }
        _ => {} // each_entry hands over listed keys only
    });
    s
}

fn firewall(c: &mut Checker, node: &Node, path: &str) -> Firewall {
    let mut f = Firewall::default();
    each_entry(c, node, path, FIREWALL_KEYS, |c, key, v, p| {
        match key {
        "enabled" => {
            f.enabled = boolean(c, v, &p).unwrap_or(true);
            if !f.enabled {
                c.warn(
                    v.pos,
                    &p,
                    "the firewall is off: every listening port is reachable from the internet",
                );
            }
        }
        "backend" => {
            f.backend = match checked(c, v, &p, |s| Ok(s.to_string())).as_deref() {
                Some("auto") | None => FirewallBackend::Auto,
                Some("nftables") => FirewallBackend::Nftables,
                Some("iptables") => FirewallBackend::Iptables,
                Some(other) => {
                    c.error(
                        v.pos,
                        &p,
                        format!("unknown backend {other:?}; use auto, nftables or iptables"),
                    );
                    FirewallBackend::Auto
                }
            }
        }
        "log_drops" => f.log_drops = boolean(c, v, &p).unwrap_or(false),
        "forward" => {
            f.forward_drop = match &v.value {
                Value::Str(s) if s == "drop" => true,
                Value::Str(s) if s == "accept" => false,
                _ => {
                    c.error(v.pos, &p, "forward is either \"drop\" or \"accept\"");
                    false
                }
            }
        }
        "allow" => match &v.value {
            Value::Seq(items) => {
                f.allow = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| allow_rule(c, item, &index(&p, i)))
                    .collect()
            }
            Value::Null => c.error(
                v.pos,
                &p,
                "no value; list the rules like {port: 443}, write [] for none, or leave the key out",
            ),
            _ => c.expected(v, &p, "a list of rules like {port: 443}"),
        },
        _ => {} // each_entry hands over listed keys only
    }
    });
    f
}

fn allow_rule(c: &mut Checker, node: &Node, path: &str) -> Option<AllowRule> {
    let before = c.errors.len();
    let mut rule = AllowRule {
        ports: None,
        protocol: Protocol::Tcp,
        from: Vec::new(),
    };
    each_entry(c, node, path, ALLOW_KEYS, |c, key, v, p| match key {
        "port" => {
            rule.ports = match &v.value {
                Value::Int(n) => grammar::port_number(*n)
                    .map(|p| grammar::PortRange { first: p, last: p })
                    .map_err(|e| c.error(v.pos, &p, e))
                    .ok(),
                Value::Str(s) => grammar::port_range(s)
                    .map_err(|e| c.error(v.pos, &p, e))
                    .ok(),
                _ => {
                    c.expected(v, &p, "a port or a range like 8000-8010");
                    None
                }
            }
        }
        "proto" => {
            rule.protocol = match checked(c, v, &p, |s| Ok(s.to_ascii_lowercase())).as_deref() {
                Some("tcp") => Protocol::Tcp,
                Some("udp") => Protocol::Udp,
                Some(other) => {
                    c.error(
                        v.pos,
                        &p,
                        format!("unknown protocol {other:?}; use tcp or udp"),
                    );
                    Protocol::Tcp
                }
                None => Protocol::Tcp,
            }
        }
        "from" => rule.from = sources(c, v, &p),
        _ => {} // each_entry hands over listed keys only
    });
    if node.as_map().is_some()
        && rule.ports.is_none()
        && rule.from.is_empty()
        && c.errors.len() == before
    {
        c.error(
            node.pos,
            path,
            "a rule needs a port, a from, or both; {} would open everything",
        );
    }
    (c.errors.len() == before).then_some(rule)
}

fn sources(c: &mut Checker, node: &Node, path: &str) -> Vec<Source> {
    some_of(c, node, path, "an address, a network or a range")
        .into_iter()
        .filter_map(|(item, i)| {
            let p = item_path(path, i);
            checked(c, item, &p, grammar::source)
        })
        .collect()
}

fn proxy_site(c: &mut Checker, node: &Node, path: &str) -> Option<ProxySite> {
    let before = c.errors.len();
    let mut listen = 80;
    let mut server_names = Vec::new();
    let mut upstream = None;
    let mut realm = "Restricted".to_string();
    let mut users = Vec::new();
    let mut tls = None;
    let mut allow_from = Vec::new();
    each_entry(c, node, path, PROXY_KEYS, |c, key, v, p| match key {
        "listen" => listen = port(c, v, &p).unwrap_or(80),
        "server_name" => {
            server_names = some_of(c, v, &p, "a name or a list of names")
                .into_iter()
                .filter_map(|(item, i)| {
                    checked(c, item, &item_path(&p, i), |s| {
                        grammar::server_name(s).map(str::to_string)
                    })
                })
                .collect()
        }
        "upstream" => upstream = upstream_value(c, v, &p),
        "auth" => each_entry(c, v, &p, AUTH_KEYS, |c, key, v, p| match key {
            "realm" => {
                if let Some(r) = checked(c, v, &p, |s| grammar::realm(s).map(str::to_string)) {
                    realm = r;
                }
            }
            "users" => match &v.value {
                Value::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(u) = proxy_user(c, item, &index(&p, i)) {
                            if users.iter().any(|x: &ProxyUser| x.name == u.name) {
                                c.error(
                                    item.pos,
                                    &index(&p, i),
                                    format!("the user {:?} is listed twice", u.name),
                                );
                            } else {
                                users.push(u);
                            }
                        }
                    }
                }
                _ => c.expected(v, &p, "a list of users like {name: admin}"),
            },
            _ => {} // each_entry hands over listed keys only
        }),
        "tls" => {
            let mut certificate = None;
            let mut key_path = None;
            each_entry(c, v, &p, TLS_KEYS, |c, key, v, p| {
                let val = checked(c, v, &p, |s| grammar::absolute_path(s).map(str::to_string));
                if key == "certificate" {
                    certificate = val;
                } else {
                    key_path = val;
                }
            });
            match (certificate, key_path) {
                (Some(certificate), Some(key)) => tls = Some(Tls { certificate, key }),
                _ if v.as_map().is_some() => {
                    c.error(v.pos, &p, "tls needs both certificate and key")
                }
                _ => {}
            }
        }
        "allow_from" => allow_from = sources(c, v, &p),
        _ => {} // each_entry hands over listed keys only
    });
    node.as_map()?;
    if upstream.is_none() && c.errors.len() == before {
        c.error(
            node.pos,
            path,
            "a proxy site needs an upstream, like 127.0.0.1:8080",
        );
    }
    if users.is_empty() && c.errors.len() == before {
        c.error(
            node.pos,
            path,
            "a proxy site needs auth.users: batten never puts a panel online without a password",
        );
    }
    if c.errors.len() != before {
        return None;
    }
    Some(ProxySite {
        listen,
        server_names,
        upstream: upstream?,
        realm,
        users,
        tls,
        allow_from,
    })
}

fn upstream_value(c: &mut Checker, node: &Node, path: &str) -> Option<Upstream> {
    let s = string(c, node, path)?;
    let result = if let Some(p) = s.strip_prefix("unix:").or(s.starts_with('/').then_some(s)) {
        grammar::absolute_path(p).map(|p| Upstream::Unix {
            path: p.to_string(),
        })
    } else {
        parse_loopback(s)
    };
    result.map_err(|e| c.error(node.pos, path, e)).ok()
}

fn parse_loopback(s: &str) -> Result<Upstream, String> {
    let (host, port_text) = match s.strip_prefix('[') {
        Some(rest) => rest
            .split_once("]:")
            .ok_or_else(|| format!("{s:?}: write an IPv6 upstream as [::1]:PORT"))?,
        None => s.rsplit_once(':').ok_or_else(|| {
            format!("{s:?}: write the upstream as 127.0.0.1:PORT, [::1]:PORT or a unix socket path")
        })?,
    };
    let address: std::net::IpAddr = match host {
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        h => grammar::address(h)?,
    };
    if !address.is_loopback() {
        return Err(format!(
            "{s:?} is not on loopback; batten proxies to 127.0.0.1, [::1] or a unix socket, so the panel itself is never reachable from outside"
        ));
    }
    let port = grammar::port_text(port_text)?;
    Ok(Upstream::Loopback { address, port })
}

fn proxy_user(c: &mut Checker, node: &Node, path: &str) -> Option<ProxyUser> {
    let before = c.errors.len();
    let mut name = None;
    let mut password_hash = None;
    each_entry(c, node, path, PROXY_USER_KEYS, |c, key, v, p| match key {
        "name" => {
            name = checked(c, v, &p, |s| {
                grammar::proxy_user_name(s).map(str::to_string)
            })
        }
        "password_hash" => {
            password_hash = checked(c, v, &p, |s| {
                grammar::htpasswd_hash(s).map(|_| s.to_string())
            })
        }
        _ => {} // each_entry hands over listed keys only
    });
    if node.as_map().is_some() && name.is_none() && c.errors.len() == before {
        c.error(node.pos, path, "a proxy user needs a name");
    }
    (c.errors.len() == before).then_some(ProxyUser {
        name: name?,
        password_hash,
    })
}

/// Two sites on one port would fight over it, and a proxy listening on the
/// SSH port would take sshd's place.
fn check_proxy_ports(c: &mut Checker, ud: &UserData, doc: &Node) {
    let pos = doc
        .get("batten")
        .and_then(|b| b.get("proxy"))
        .map(|n| n.pos)
        .unwrap_or_default();
    let ssh_ports: Vec<u16> = if ud.batten.ssh.ports.is_empty() {
        vec![22]
    } else {
        ud.batten.ssh.ports.clone()
    };
    let mut names: Vec<String> = Vec::new();
    for (i, site) in ud.batten.proxy.iter().enumerate() {
        // The site's files are named after it: two alike would overwrite
        // each other's configuration and passwords.
        let name = crate::concerns::proxy::nginx::site_name(site);
        if names.contains(&name) {
            c.error(
                pos,
                &format!("batten.proxy[{i}]"),
                format!(
                    "another site before it is also named {name} (same listen port and first server_name); give one a different server_name or port"
                ),
            );
        }
        names.push(name);
        if ssh_ports.contains(&site.listen) {
            c.error(
                pos,
                &format!("batten.proxy[{i}].listen"),
                format!("port {} is sshd's; pick another", site.listen),
            );
        }
        let Upstream::Loopback { port, .. } = site.upstream else {
            continue;
        };
        if port == site.listen {
            c.error(
                pos,
                &format!("batten.proxy[{i}].upstream"),
                "the upstream port is the port nginx listens on",
            );
        }
        if ssh_ports.contains(&port) {
            c.error(
                pos,
                &format!("batten.proxy[{i}].upstream"),
                format!("port {port} is sshd's; the upstream must be another port"),
            );
        }
        // Safety rule 3: an upstream is never opened to the outside.
        let fw = doc
            .get("batten")
            .and_then(|b| b.get("firewall"))
            .and_then(|f| f.get("allow"));
        for (j, rule) in ud.batten.firewall.allow.iter().enumerate() {
            if rule
                .ports
                .is_some_and(|r| r.first <= port && port <= r.last)
                && rule.protocol == Protocol::Tcp
            {
                let rule_pos = match fw.map(|n| &n.value) {
                    Some(Value::Seq(items)) => items.get(j).map(|n| n.pos).unwrap_or(pos),
                    _ => pos,
                };
                c.error(
                    rule_pos,
                    &format!("batten.firewall.allow[{j}]"),
                    format!("this opens port {port}, the upstream behind batten.proxy[{i}]; a panel behind the proxy is reachable through nginx only"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGBfY5Y7Dp1Dn4a4y6iJbBvYxVKJWB3H0cQ2m9bq6Tq3 admin@laptop";

    fn run(text: &str) -> (Option<UserData>, Vec<String>, Vec<String>) {
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
        assert_eq!(ud.ssh_genkeytypes, HostKeyType::defaults());
    }

    #[test]
    fn yaml_11_booleans_and_no_unchanged() {
        for (text, want) in [
            ("ssh_pwauth: yes", PasswordAuth::Allow),
            ("ssh_pwauth: Off", PasswordAuth::Deny),
            ("ssh_pwauth: NO", PasswordAuth::Deny),
            ("ssh_pwauth: \"false\"", PasswordAuth::Deny),
            ("ssh_pwauth: True", PasswordAuth::Allow),
            ("ssh_pwauth: 0", PasswordAuth::Deny),
        ] {
            let (ud, e, w) = run(text);
            assert!(e.is_empty(), "{text}: {e:?}");
            let ud = ud.unwrap();
            assert_eq!(ud.ssh_pwauth, want, "{text}");
            // The one setting that reopens the door is always named.
            let warned = w.iter().any(|w| w.contains("password login stays ON"));
            assert_eq!(warned, want == PasswordAuth::Allow, "{text}: {w:?}");
        }
        // What cloud-init reads as "leave it as it is" is refused: a typo
        // must not leave passwords on.
        for text in [
            "ssh_pwauth: unchanged",
            "ssh_pwauth: maybe",
            "ssh_pwauth: flase",
            "ssh_pwauth:",
            "ssh_pwauth: ~",
            "ssh_pwauth: 2",
            "ssh_pwauth: {}",
        ] {
            let (ud, e, _) = run(text);
            assert!(ud.is_none() && e.len() == 1, "{text}: {e:?}");
            assert!(e[0].contains("ssh_pwauth"), "{text}: {e:?}");
        }
        let (ud, _, _) = run("disable_root: off\nssh_quiet_keygen: ON\n");
        let ud = ud.unwrap();
        assert!(!ud.disable_root && ud.ssh_quiet_keygen);
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
    fn keys_keep_options_and_fingerprints() {
        let text = format!("ssh_authorized_keys:\n  - from=\"203.0.113.0/24\",no-pty {KEY}\n");
        let (ud, e, _) = run(&text);
        assert!(e.is_empty(), "{e:?}");
        let key = &ud.unwrap().ssh_authorized_keys[0];
        assert_eq!(key.options, "from=\"203.0.113.0/24\",no-pty");
        assert_eq!(key.algorithm, "ssh-ed25519");
        assert_eq!(key.comment, "admin@laptop");
        assert!(key.fingerprint.starts_with("SHA256:"));
        assert_eq!(key.line(), format!("from=\"203.0.113.0/24\",no-pty {KEY}"));
    }

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
    fn firewall_and_proxy() {
        let text = "batten:\n  firewall:\n    allow:\n      - {port: 80}\n      - {port: 8000-8010, proto: udp}\n      - {port: 5432, from: 203.0.113.10}\n      - {from: [198.51.100.10-198.51.100.20, \"2001:db8::/32\"]}\n  proxy:\n    - listen: 8081\n      upstream: 127.0.0.1:8080\n      auth:\n        users: [{name: admin}]\n";
        let (ud, e, _) = run(text);
        assert!(e.is_empty(), "{e:?}");
        let b = ud.unwrap().batten;
        assert_eq!(b.firewall.allow.len(), 4);
        assert_eq!(b.firewall.allow[1].protocol, Protocol::Udp);
        assert_eq!(b.firewall.allow[3].from.len(), 2);
        assert_eq!(b.proxy[0].listen, 8081);
    }

    #[test]
    fn injection_attempts_are_refused() {
        let text = "batten:\n  proxy:\n    - upstream: \"127.0.0.1:8080; return 200\"\n      server_name: \"x.org; include /etc/shadow\"\n      auth: {realm: \"a\\\"b\", users: [{name: \"a:b\"}]}\n  firewall:\n    allow:\n      - {from: \"1.2.3.4 } accept\"}\n      - {}\n";
        let (_, e, _) = run(text);
        assert_eq!(e.len(), 6, "{e:#?}");
        let (_, e, _) = run(
            "batten:\n  proxy:\n    - {upstream: \"203.0.113.7:80\", auth: {users: [{name: a}]}}\n",
        );
        assert!(e[0].contains("not on loopback"), "{e:?}");
    }

    #[test]
    fn a_host_key_comment_with_control_characters_is_refused() {
        let mut key = ssh_key::PrivateKey::random(
            &mut ssh_key::rand_core::OsRng,
            ssh_key::Algorithm::Ed25519,
        )
        .unwrap();
        key.set_comment("root@x\u{1b}[2J\nforged line");
        let private = key.to_openssh(ssh_key::LineEnding::LF).unwrap();
        let indented: String = private.lines().map(|l| format!("    {l}\n")).collect();
        let (_, e, _) = run(&format!("ssh_keys:\n  ed25519_private: |\n{indented}"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("control characters"), "{e:?}");
    }

    /// A certificate of `cert_type` for `subject`, signed by a fresh CA.
    fn certificate(
        subject: &ssh_key::PrivateKey,
        cert_type: ssh_key::certificate::CertType,
    ) -> String {
        let ca = ssh_key::PrivateKey::random(
            &mut ssh_key::rand_core::OsRng,
            ssh_key::Algorithm::Ed25519,
        )
        .unwrap();
        let mut builder = ssh_key::certificate::Builder::new(
            [7u8; 16],
            subject.public_key().key_data().clone(),
            1_700_000_000,
            2_000_000_000,
        )
        .unwrap();
        builder.cert_type(cert_type).unwrap();
        builder.valid_principal("host.example.org").unwrap();
        builder.sign(&ca).unwrap().to_openssh().unwrap()
    }

    #[test]
    fn a_host_certificate_must_be_one_for_the_key_beside_it() {
        use ssh_key::certificate::CertType;
        let key = ssh_key::PrivateKey::random(
            &mut ssh_key::rand_core::OsRng,
            ssh_key::Algorithm::Ed25519,
        )
        .unwrap();
        let other = ssh_key::PrivateKey::random(
            &mut ssh_key::rand_core::OsRng,
            ssh_key::Algorithm::Ed25519,
        )
        .unwrap();
        let private: String = key
            .to_openssh(ssh_key::LineEnding::LF)
            .unwrap()
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect();
        let with = |cert: &str| {
            run(&format!(
                "ssh_keys:\n  ed25519_private: |\n{private}  ed25519_certificate: \"{cert}\"\n"
            ))
        };
        let good = certificate(&key, CertType::Host);
        let (ud, e, w) = with(&good);
        assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
        assert_eq!(
            ud.unwrap().ssh_keys[0].certificate.as_deref(),
            Some(good.as_str())
        );
        for (cert, why) in [
            (certificate(&key, CertType::User), "user certificate"),
            (certificate(&other, CertType::Host), "for another key"),
            (
                KEY.to_string(),
                "needs a ssh-ed25519-cert-v01@openssh.com certificate",
            ),
            (
                format!("{good}\\nPasswordAuthentication yes"),
                "control character",
            ),
        ] {
            let (_, e, _) = with(&cert);
            assert_eq!(e.len(), 1, "{why}: {e:?}");
            assert!(e[0].contains(why), "{why}: {e:?}");
            assert!(e[0].contains("ssh_keys.ed25519_certificate"), "{e:?}");
        }
    }

    #[test]
    fn two_sites_with_one_name_are_refused() {
        let text = "batten:\n  proxy:\n    - {listen: 8081, upstream: 127.0.0.1:8080, auth: {users: [{name: a}]}}\n    - {listen: 8081, upstream: 127.0.0.1:9090, auth: {users: [{name: b}]}}\n    - {listen: 8081, server_name: b.example.org, upstream: 127.0.0.1:9091, auth: {users: [{name: c}]}}\n";
        let (_, e, _) = run(text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("batten.proxy[1]: another site before it is also named batten-8081"),
            "{e:?}"
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

    #[test]
    fn an_upstream_port_cannot_be_opened() {
        let text = "batten:\n  firewall:\n    allow:\n      - {port: 8000-8100}\n  proxy:\n    - {upstream: 127.0.0.1:8080, auth: {users: [{name: a}]}}\n";
        let (_, e, _) = run(text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("ud.yaml:4:9: batten.firewall.allow[0]: this opens port 8080"),
            "{}",
            e[0]
        );
        let (_, e, _) =
            run("batten:\n  proxy:\n    - {upstream: 127.0.0.1:22, auth: {users: [{name: a}]}}\n");
        assert!(e[0].contains("port 22 is sshd's"), "{e:?}");
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
