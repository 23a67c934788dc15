//! What a validated user-data document means to batten.
//!
//! Every field here has passed its grammar (`grammar.rs`), so the code that
//! renders sshd, nftables, nginx or sudoers text can trust it. The types
//! describe intent, not the YAML spelling: `users: admin,ops`, a list of
//! strings and a list of mappings all end up as `Vec<UserSpec>`.

use super::grammar::{PortRange, Source};

/// A whole validated user-data document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserData {
    /// Accounts, in the order cloud-init would create them. The distro's
    /// default user appears as `UserSpec { default: true, .. }` and gets its
    /// name and settings when the plan knows the root.
    pub users: Vec<UserSpec>,
    /// The singular `user:`: settings for the default user, over the image's.
    pub legacy_user: Option<UserSpec>,
    /// `system_info.default_user` given in user-data, over the image's.
    pub default_user_config: Option<UserSpec>,
    /// Top-level `ssh_authorized_keys`: keys for the default user (and root,
    /// with `disable_root`'s redirect), as cloud-init installs them.
    pub ssh_authorized_keys: Vec<AuthorizedKey>,
    /// `ssh_pwauth`: whether sshd accepts password logins.
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

/// One account from `users`, the singular `user`, or the image's
/// `default_user`. Fields are `None` when the document does not set them, so
/// that layers (image default, `user:`, the `default` entry, an explicit entry
/// of the same name) can be merged the way cloud-init merges them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserSpec {
    /// `None` for the default user until its name is known.
    pub name: Option<String>,
    /// True for the `default` entry, which also receives the top-level
    /// `ssh_authorized_keys`.
    pub default: bool,
    /// The full-name field of /etc/passwd.
    pub gecos: Option<String>,
    /// Supplementary groups, applied when the account is created.
    pub groups: Vec<String>,
    /// Sudo rules; `Some(vec![])` is an explicit "none" (`sudo: false`).
    pub sudo: Option<Vec<String>>,
    /// Login shell, applied when the account is created.
    pub shell: Option<String>,
    /// `lock_passwd`; unset means true, as in cloud-init.
    pub lock_passwd: Option<bool>,
    /// Console passwords from user-data.
    pub passwords: Passwords,
    /// Keys for this account's authorized_keys.
    pub ssh_authorized_keys: Vec<AuthorizedKey>,
    /// Per-user keys that batten accepts but leaves to cloud-init.
    pub left_to_cloud_init: Vec<String>,
}

impl UserSpec {
    /// This spec with every field `upper` sets taking precedence; groups and
    /// keys are joined, as cloud-init unions them.
    pub fn overlaid_by(&self, upper: &UserSpec) -> UserSpec {
        let mut groups = self.groups.clone();
        for g in &upper.groups {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
        let mut keys = self.ssh_authorized_keys.clone();
        keys.extend(upper.ssh_authorized_keys.iter().cloned());
        let mut left = self.left_to_cloud_init.clone();
        left.extend(upper.left_to_cloud_init.iter().cloned());
        UserSpec {
            name: upper.name.clone().or_else(|| self.name.clone()),
            default: self.default || upper.default,
            gecos: upper.gecos.clone().or_else(|| self.gecos.clone()),
            groups,
            sudo: upper.sudo.clone().or_else(|| self.sudo.clone()),
            shell: upper.shell.clone().or_else(|| self.shell.clone()),
            lock_passwd: upper.lock_passwd.or(self.lock_passwd),
            passwords: Passwords {
                on_create: upper
                    .passwords
                    .on_create
                    .clone()
                    .or_else(|| self.passwords.on_create.clone()),
                hashed: upper
                    .passwords
                    .hashed
                    .clone()
                    .or_else(|| self.passwords.hashed.clone()),
                plain_text: upper
                    .passwords
                    .plain_text
                    .clone()
                    .or_else(|| self.passwords.plain_text.clone()),
            },
            ssh_authorized_keys: keys,
            left_to_cloud_init: left,
        }
    }

    /// Whether the console password is locked (`lock_passwd`, default true).
    pub fn locked(&self) -> bool {
        self.lock_passwd.unwrap_or(true)
    }
}

/// Console passwords as cloud-init takes them: `passwd` is handed to
/// useradd, so it only counts when the account is created;
/// `plain_text_passwd` and `hashed_passwd` are set on existing accounts too,
/// the hash winning when both are given. Never logged, never shown.
#[derive(Clone, Default, PartialEq)]
pub struct Passwords {
    /// `passwd`: a crypt hash for a new account.
    pub on_create: Option<String>,
    /// `hashed_passwd`: a crypt hash, for new and existing accounts.
    pub hashed: Option<String>,
    /// `plain_text_passwd`: hashed by batten before it is written.
    pub plain_text: Option<String>,
}

impl Passwords {
    /// True when any password is given.
    pub fn any(&self) -> bool {
        self.on_create.is_some() || self.hashed.is_some() || self.plain_text.is_some()
    }
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |o: &Option<String>| if o.is_some() { "<hidden>" } else { "none" };
        f.debug_struct("Passwords")
            .field("on_create", &shown(&self.on_create))
            .field("hashed", &shown(&self.hashed))
            .field("plain_text", &shown(&self.plain_text))
            .finish()
    }
}

/// One `authorized_keys` line, parsed for real.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthorizedKey {
    /// The options before the key (`from="203.0.113.0/24",no-pty`), verbatim.
    pub options: String,
    /// Algorithm name, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// The base64 key blob: with `algorithm`, the key's identity.
    pub base64: String,
    /// Text after the key, usually `user@host`; may be empty.
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PasswordAuth {
    /// Absent: batten's default, password login off.
    #[default]
    Default,
    /// `true`/`yes`/`on`: passwords stay allowed (loudly warned).
    Allow,
    /// `false`/`no`/`off`: password login off.
    Deny,
}

/// Host key algorithms batten can generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKeyType {
    /// `rsa`: the type the oldest clients still understand.
    Rsa,
    /// `ecdsa`: NIST-curve keys, for clients without Ed25519.
    Ecdsa,
    /// `ed25519`: what current OpenSSH clients prefer.
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
#[derive(Clone, PartialEq)]
pub struct ProvidedHostKey {
    /// Which of the `rsa_`, `ecdsa_` or `ed25519_` entries this pair came from.
    pub key_type: HostKeyType,
    /// OpenSSH private key text, without a passphrase; hidden from Debug output.
    pub private: String,
    /// The public key line: as given, or derived from the private key.
    pub public: String,
    /// `<type>_certificate`: a host certificate for this key (one line,
    /// checked to be a host certificate of this very key).
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
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batten {
    /// `batten.ssh`: sshd settings beyond what cloud-init's keys cover.
    pub ssh: SshSettings,
    /// `batten.firewall`; on even when the section is absent.
    pub firewall: Firewall,
    /// `batten.proxy`: one entry per web panel published through nginx.
    pub proxy: Vec<ProxySite>,
    /// `batten.passwords`: what batten does about known default passwords.
    pub passwords: DefaultPasswords,
    /// `batten.updates`; on even when the section is absent.
    pub updates: Updates,
    /// `batten.kernel`; on even when the section is absent.
    pub kernel: Kernel,
    /// `batten.assure`: the drift checks after the seal.
    pub assure: Assure,
}

/// `batten.passwords`. Known default passwords (pi/raspberry and the
/// like) are locked wherever found, and user-data asking for one is
/// refused, unless a lab turns that off.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DefaultPasswords {
    /// `allow_defaults: true` leaves them as they are (warned everywhere).
    pub allow_defaults: bool,
}

/// `batten.ssh`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SshSettings {
    /// Ports sshd should listen on; empty keeps the image's.
    pub ports: Vec<u16>,
    /// `permit_root_login`; `None` when unset. `yes` is refused when the
    /// document is validated.
    pub permit_root_login: Option<RootLogin>,
    /// `crypto`: which algorithms sshd offers; `modern` unless set.
    pub crypto: CryptoPolicy,
}

/// `batten.ssh.crypto`: the key exchange, ciphers, MACs and key algorithms
/// sshd offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CryptoPolicy {
    /// ssh-audit's hardening guide, limited to what the image's sshd knows.
    #[default]
    Modern,
    /// A wider list for older clients: still no SHA-1, CBC or arcfour.
    Compatible,
    /// The image's own defaults: batten writes no algorithm settings.
    Image,
}

/// sshd's `PermitRootLogin` values batten accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootLogin {
    /// `no` (or `false`): root cannot log in over SSH at all.
    No,
    /// `prohibit-password` (or its old name `without-password`): root logs
    /// in with a key only.
    ProhibitPassword,
    /// `forced-commands-only`: root logs in with a key only, and only to run
    /// that key's `command=`.
    ForcedCommandsOnly,
}

/// `batten.firewall`.
#[derive(Clone, Debug, PartialEq)]
pub struct Firewall {
    /// On unless the user turns it off; off is warned about in run and verify.
    pub enabled: bool,
    /// `backend`: which tool writes the rules; `auto` unless set.
    pub backend: FirewallBackend,
    /// `allow`: what may come in; everything else is dropped.
    pub allow: Vec<AllowRule>,
    /// `log_drops`: log the packets the firewall drops (off by default).
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FirewallBackend {
    /// `auto`: batten picks the tool.
    #[default]
    Auto,
    /// `nftables`: rules loaded with `nft`.
    Nftables,
    /// `iptables`: rules for iptables and ip6tables.
    Iptables,
}

/// Transport protocol of an allow rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// TCP, the default: SSH, web servers, databases.
    #[default]
    Tcp,
    /// UDP: DNS, WireGuard, game servers.
    Udp,
}

/// One `batten.firewall.allow` entry: a port (range) from anywhere, a port
/// from some sources, or every port from some sources.
#[derive(Clone, Debug, PartialEq)]
pub struct AllowRule {
    /// `port`: one port or a range; `None` means every port, from the
    /// sources in `from` only.
    pub ports: Option<PortRange>,
    /// `proto`: TCP unless the rule says `udp`.
    pub protocol: Protocol,
    /// Empty means from anywhere.
    pub from: Vec<Source>,
}

/// One `batten.proxy` entry: a web panel behind nginx with basic auth.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxySite {
    /// `listen`: the port nginx listens on (80 unless set); never sshd's.
    pub listen: u16,
    /// `server_name`: the host names the site answers to; may be empty.
    pub server_names: Vec<String>,
    /// `upstream`: where the panel itself listens.
    pub upstream: Upstream,
    /// `auth.realm`: the prompt browsers show; `Restricted` unless set.
    pub realm: String,
    /// `auth.users`: who may log in; never empty.
    pub users: Vec<ProxyUser>,
    /// `tls`: how the site serves HTTPS; `auto` unless the user-data says.
    pub tls: Tls,
    /// `allow_from`: the only sources that may reach the site; empty means
    /// anywhere.
    pub allow_from: Vec<Source>,
}

/// A site's name, used for its file names: `batten-8081`, or with the
/// first server name `batten-8081-panel.example.org`. Part of what a site
/// means, not only of nginx's text: validation refuses two sites with one
/// name, since their files would overwrite each other.
pub fn site_name(site: &ProxySite) -> String {
    match site.server_names.first() {
        Some(name) if name != "_" => {
            format!("batten-{}-{}", site.listen, name.replace('*', "wildcard"))
        }
        _ => format!("batten-{}", site.listen),
    }
}

/// Where nginx forwards requests: loopback only, by construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// A TCP port on a loopback address: `127.0.0.1:8080`, `[::1]:8080`,
    /// `localhost:8080`.
    Loopback {
        /// Always a loopback address; `localhost` becomes 127.0.0.1.
        address: std::net::IpAddr,
        /// The panel's port; never the one nginx listens on.
        port: u16,
    },
    /// A unix socket, written `unix:/path` or just `/path`.
    Unix {
        /// Absolute path of the socket, with no `..`.
        path: String,
    },
}

/// A basic-auth user; without a hash, batten generates a password.
#[derive(Clone, PartialEq)]
pub struct ProxyUser {
    /// The name typed at the browser's prompt.
    pub name: String,
    /// A hash nginx can check; `None` asks batten for a random password.
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for ProxyUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyUser")
            .field("name", &self.name)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// How a proxy site serves HTTPS (safety rule 10: a password never
/// travels in clear unless the user-data says `tls: off`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Tls {
    /// `auto`, the default: a key and a self-signed certificate batten
    /// makes at first boot, checked by the fingerprint it shows.
    #[default]
    Auto,
    /// `off`: plain HTTP, the password in clear; every report warns.
    Off,
    /// `{certificate, key}`: files the image has.
    Files {
        /// Absolute path of the certificate (chain) file on the target system.
        certificate: String,
        /// Absolute path of its private key on the target system.
        key: String,
    },
    /// `{acme: ...}`: a certificate from an ACME CA once the network is up,
    /// the self-signed one until then.
    Acme(Acme),
}

impl Tls {
    /// Whether the site serves HTTPS.
    pub fn is_on(&self) -> bool {
        !matches!(self, Tls::Off)
    }
}

/// Let's Encrypt's production directory, the default ACME server.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// `tls.acme`: what to ask an ACME CA for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acme {
    /// The name the certificate is for; it must resolve to this machine.
    pub domain: String,
    /// The account's contact address; `None` registers without one.
    pub email: Option<String>,
    /// The CA's directory URL; Let's Encrypt's unless set.
    pub server: String,
    /// A CA file to trust for the directory's own HTTPS (a private ACME CA).
    pub server_ca: Option<String>,
}

#[cfg(test)]
impl Acme {
    /// ACME for `domain` with what validation gives when nothing else is
    /// said (Let's Encrypt, no contact): where unit tests start.
    pub fn lets_encrypt(domain: &str) -> Acme {
        Acme {
            domain: domain.into(),
            email: None,
            server: LETS_ENCRYPT.into(),
            server_ca: None,
        }
    }
}

impl ProxySite {
    /// The port the site itself is served on: with TLS, `listen: 80` means
    /// HTTPS on 443 (80 then only redirects); any other port serves HTTPS
    /// there. With `tls: off`, plain HTTP on `listen`.
    pub fn serving_port(&self) -> u16 {
        if self.tls.is_on() && self.listen == 80 {
            443
        } else {
            self.listen
        }
    }

    /// The plain-HTTP port that only redirects to HTTPS (and answers ACME
    /// challenges): 80 for a TLS site that asked for 80, and for every
    /// ACME site, since HTTP-01 validation always comes to port 80.
    pub fn redirect_port(&self) -> Option<u16> {
        let acme = matches!(self.tls, Tls::Acme(_));
        (self.tls.is_on() && (self.listen == 80 || acme) && self.serving_port() != 80).then_some(80)
    }

    /// Every port the site makes nginx listen on.
    pub fn ports(&self) -> Vec<u16> {
        let mut ports = vec![self.serving_port()];
        ports.extend(self.redirect_port());
        ports
    }
}

/// `batten.updates`: automatic updates by the distribution's own tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Updates {
    /// On unless the user turns it off; off is warned about in run and verify.
    pub enabled: bool,
    /// `packages`: security updates only (the default) or every update.
    pub packages: UpdatePackages,
    /// `reboot`: when the tool may reboot after an update that needs it;
    /// `None` (the default) never reboots.
    pub reboot: Option<RebootTime>,
}

impl Default for Updates {
    fn default() -> Self {
        Updates {
            enabled: true,
            packages: UpdatePackages::Security,
            reboot: None,
        }
    }
}

/// Which updates install themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpdatePackages {
    /// `security`: what the distribution publishes as security updates.
    #[default]
    Security,
    /// `all`: every update the configured repositories offer.
    All,
}

/// A time of day, `HH:MM`, 24-hour clock. Made only from two numbers in
/// range, so its text (which reaches apt's and dnf's configuration) is
/// always two digits, a colon and two digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebootTime {
    /// 0 to 23.
    pub hour: u8,
    /// 0 to 59.
    pub minute: u8,
}

impl std::fmt::Display for RebootTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// `batten.assure`: how the drift checks after the seal run and report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assure {
    /// `interval`: minutes between drift checks (1 to 1440); 5 unless set.
    pub interval_minutes: u32,
    /// `textfile_dir`: where node_exporter's textfile collector reads.
    pub textfile_dir: String,
    /// `repair`: the timer re-applies batten's own files when they drifted.
    pub repair: bool,
}

/// The drift check's period unless the user-data sets one, in minutes.
pub const DEFAULT_INTERVAL: u32 = 5;

impl Default for Assure {
    fn default() -> Self {
        Assure {
            interval_minutes: DEFAULT_INTERVAL,
            textfile_dir: "/var/lib/prometheus/node-exporter".to_string(),
            repair: false,
        }
    }
}

/// `batten.kernel`: the kernel settings that cost a server nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// On unless the user turns it off; off is warned about in run and verify.
    pub enabled: bool,
}

impl Default for Kernel {
    fn default() -> Self {
        Kernel { enabled: true }
    }
}
