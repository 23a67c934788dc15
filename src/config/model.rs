//! What a validated user-data document means to batten.
//!
//! Every field here has passed its grammar (`grammar.rs`), so the code that
//! renders sshd, nftables, nginx or sudoers text can trust it. The types
//! describe intent, not the YAML spelling: `users: admin,ops`, a list of
//! strings and a list of mappings all end up as `Vec<UserSpec>`.

use serde::Serialize;

use super::grammar::{PortRange, Source};

/// A whole validated user-data document.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UserData {
    /// Accounts, in the order cloud-init would create them. The distro's
    /// default user appears as `UserSpec { default: true, .. }` and gets its
    /// name when the plan knows the root.
    pub users: Vec<UserSpec>,
    /// Top-level `ssh_authorized_keys`: keys for the default user (and root,
    /// with `disable_root`'s redirect), as cloud-init installs them.
    pub ssh_authorized_keys: Vec<AuthorizedKey>,
    pub ssh_pwauth: PasswordAuth,
    /// `disable_root` (default true): root's keys redirect to the default user.
    pub disable_root: bool,
    /// `ssh_deletekeys` (default true): remove host keys baked into the image.
    pub ssh_deletekeys: bool,
    /// `ssh_genkeytypes`: host key types to generate.
    pub ssh_genkeytypes: Vec<HostKeyType>,
    /// `ssh_keys`: host keys supplied by the user instead of generated ones.
    pub ssh_keys: Vec<ProvidedHostKey>,
    /// `ssh_quiet_keygen`: do not print fingerprints to the console.
    pub ssh_quiet_keygen: bool,
    /// The `batten:` section.
    pub batten: Batten,
    /// Top-level keys cloud-init handles and batten does not (packages,
    /// runcmd, ...), reported so the user knows who does what.
    pub left_to_cloud_init: Vec<String>,
}

/// One account from `users` (or the singular `user`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UserSpec {
    /// `None` for the distro's default user whose name comes from the root.
    pub name: Option<String>,
    /// True for the `default` entry (and `user:`), which also receives the
    /// top-level `ssh_authorized_keys`.
    pub default: bool,
    pub gecos: Option<String>,
    pub groups: Vec<String>,
    pub sudo: Vec<String>,
    pub shell: Option<String>,
    /// `lock_passwd` (default true): no console password login.
    pub lock_passwd: bool,
    pub password: Option<Password>,
    pub ssh_authorized_keys: Vec<AuthorizedKey>,
    /// Per-user keys that batten accepts but leaves to cloud-init.
    pub left_to_cloud_init: Vec<String>,
}

/// A console password from user-data. Never logged, never shown in a plan.
#[derive(Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Password {
    /// `passwd` / `hashed_passwd`: a crypt(3) hash, written as is.
    Hash {
        #[serde(skip)]
        hash: String,
    },
    /// `plain_text_passwd`: hashed (SHA-512 crypt) before it is written.
    PlainText {
        #[serde(skip)]
        text: String,
    },
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Password::Hash { .. } => f.write_str("Password::Hash(<hidden>)"),
            Password::PlainText { .. } => f.write_str("Password::PlainText(<hidden>)"),
        }
    }
}

/// One `authorized_keys` line, parsed for real.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuthorizedKey {
    /// The options before the key (`from="203.0.113.0/24",no-pty`), verbatim.
    pub options: String,
    /// Algorithm name, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// The base64 key blob: with `algorithm`, the key's identity.
    pub base64: String,
    pub comment: String,
    /// `SHA256:...` fingerprint, for reports.
    pub fingerprint: String,
}

impl AuthorizedKey {
    /// The line as it goes into an authorized_keys file.
    pub fn line(&self) -> String {
        let mut s = String::new();
        if !self.options.is_empty() {
            s.push_str(&self.options);
            s.push(' ');
        }
        s.push_str(&self.algorithm);
        s.push(' ');
        s.push_str(&self.base64);
        if !self.comment.is_empty() {
            s.push(' ');
            s.push_str(&self.comment);
        }
        s
    }
}

/// `ssh_pwauth`, as cloud-init reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordAuth {
    /// Absent: batten's default, password login off.
    #[default]
    Default,
    /// `true`/`yes`/`on`: passwords stay allowed (loudly warned).
    Allow,
    /// `false`/`no`/`off`: password login off.
    Deny,
    /// `unchanged` (or an unrecognised string, as cloud-init treats it).
    Unchanged,
}

/// Host key algorithms batten can generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostKeyType {
    Rsa,
    Ecdsa,
    Ed25519,
}

impl HostKeyType {
    /// The name used in file names and in `ssh_genkeytypes`.
    pub fn name(self) -> &'static str {
        match self {
            HostKeyType::Rsa => "rsa",
            HostKeyType::Ecdsa => "ecdsa",
            HostKeyType::Ed25519 => "ed25519",
        }
    }

    /// cloud-init's default set.
    pub fn defaults() -> Vec<HostKeyType> {
        vec![HostKeyType::Rsa, HostKeyType::Ecdsa, HostKeyType::Ed25519]
    }
}

/// A host key pair from `ssh_keys`, already checked to belong together.
#[derive(Clone, PartialEq, Serialize)]
pub struct ProvidedHostKey {
    pub key_type: HostKeyType,
    #[serde(skip)]
    pub private: String,
    pub public: String,
    pub certificate: Option<String>,
}

impl std::fmt::Debug for ProvidedHostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvidedHostKey")
            .field("key_type", &self.key_type)
            .field("private", &"<hidden>")
            .field("public", &self.public)
            .finish()
    }
}

/// batten's own settings: the `batten:` top-level key.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Batten {
    pub ssh: SshSettings,
    pub firewall: Firewall,
    pub proxy: Vec<ProxySite>,
}

/// `batten.ssh`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SshSettings {
    /// Ports sshd should listen on; empty keeps the image's.
    pub ports: Vec<u16>,
    pub permit_root_login: Option<RootLogin>,
}

/// sshd's `PermitRootLogin` values batten accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootLogin {
    No,
    ProhibitPassword,
    ForcedCommandsOnly,
}

impl RootLogin {
    /// The keyword as sshd_config spells it.
    pub fn keyword(self) -> &'static str {
        match self {
            RootLogin::No => "no",
            RootLogin::ProhibitPassword => "prohibit-password",
            RootLogin::ForcedCommandsOnly => "forced-commands-only",
        }
    }
}

/// `batten.firewall`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Firewall {
    /// On unless the user turns it off; off is warned about in run and verify.
    pub enabled: bool,
    pub backend: FirewallBackend,
    pub allow: Vec<AllowRule>,
    pub log_drops: bool,
    /// `forward: drop` adds a forward chain; by default there is none.
    pub forward_drop: bool,
}

impl Default for Firewall {
    fn default() -> Self {
        Firewall {
            enabled: true,
            backend: FirewallBackend::Auto,
            allow: Vec::new(),
            log_drops: false,
            forward_drop: false,
        }
    }
}

/// Which firewall tool writes the rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallBackend {
    #[default]
    Auto,
    Nftables,
    Iptables,
}

/// Transport protocol of an allow rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

/// One `batten.firewall.allow` entry: a port (range) from anywhere, a port
/// from some sources, or every port from some sources.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AllowRule {
    pub ports: Option<PortRange>,
    pub protocol: Protocol,
    /// Empty means from anywhere.
    pub from: Vec<Source>,
}

/// One `batten.proxy` entry: a web panel behind nginx with basic auth.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProxySite {
    pub listen: u16,
    pub server_names: Vec<String>,
    pub upstream: Upstream,
    pub realm: String,
    pub users: Vec<ProxyUser>,
    pub tls: Option<Tls>,
    pub allow_from: Vec<Source>,
}

/// Where nginx forwards requests: loopback only, by construction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Upstream {
    Loopback {
        address: std::net::IpAddr,
        port: u16,
    },
    Unix {
        path: String,
    },
}

/// A basic-auth user; without a hash, batten generates a password.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProxyUser {
    pub name: String,
    pub password_hash: Option<String>,
}

/// Certificate and key for `listen 443 ssl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tls {
    pub certificate: String,
    pub key: String,
}
