//! The strict grammars every user-data value passes before it can reach a
//! configuration file or a command line.
//!
//! Safety rule 6 of DESIGN.md: nothing from user-data reaches sshd, nftables,
//! nginx, sudoers or /etc/shadow syntax unless it matched one of these. Each
//! function is pure, takes the raw text and returns either the parsed value
//! or a sentence saying what is wrong and what would be accepted, which the
//! validator places next to the file position and key path.

use std::net::IpAddr;

use ipnet::IpNet;

mod acme;

pub use acme::{directory_url, domain, email};

/// Longest account name useradd accepts on every supported distribution.
pub const MAX_NAME_LEN: usize = 32;

/// An account or group name: the POSIX portable filename characters
/// (`A-Z a-z 0-9 . _ -`), not starting with `-` or `.`, not all digits (useradd
/// would read it as a uid), at most 32 characters. No `/` can appear, so a
/// name can never become a path outside `/home`.
pub fn account_name(s: &str) -> Result<&str, String> {
    if s.is_empty() {
        return Err("an account name cannot be empty".into());
    }
    if s.len() > MAX_NAME_LEN {
        return Err(format!(
            "{s:?} is {} characters long; account names have at most {MAX_NAME_LEN}",
            s.len()
        ));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{s:?} contains {bad:?}; account names use only letters, digits, '.', '_' and '-'"
        ));
    }
    if s.starts_with('-') || s.starts_with('.') {
        return Err(format!(
            "{s:?} starts with {:?}; start an account name with a letter, digit or '_'",
            &s[..1]
        ));
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{s:?} is all digits, which useradd would read as a user id; add a letter"
        ));
    }
    Ok(s)
}

/// A TCP or UDP port number, 1 to 65535.
pub fn port_number(n: i64) -> Result<u16, String> {
    if (1..=65535).contains(&n) {
        Ok(n as u16)
    } else {
        Err(format!("{n} is not a port: use a number from 1 to 65535"))
    }
}

/// A port written as text: `"22"`.
pub fn port_text(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) || s.len() > 5 {
        return Err(format!("{s:?} is not a port: use a number from 1 to 65535"));
    }
    port_number(s.parse::<i64>().unwrap_or(0))
}

/// An inclusive range of ports, as a firewall rule takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// Lowest port of the range; equal to `last` for a single port.
    pub first: u16,
    /// Highest port, included; never below `first`.
    pub last: u16,
}

/// A single port `8080` or a range `8000-8010`.
pub fn port_range(s: &str) -> Result<PortRange, String> {
    match s.split_once('-') {
        None => port_text(s).map(|p| PortRange { first: p, last: p }),
        Some((a, b)) => {
            let first = port_text(a.trim())?;
            let last = port_text(b.trim())?;
            if first > last {
                return Err(format!(
                    "the port range {s:?} runs backwards; write it as {last}-{first}"
                ));
            }
            Ok(PortRange { first, last })
        }
    }
}

/// Where traffic may come from: one address, a network, or an inclusive range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// One host, such as `203.0.113.10`.
    Address {
        /// IPv4 or IPv6.
        address: IpAddr,
    },
    /// A CIDR network, such as `203.0.113.0/24`.
    Network {
        /// Never has host bits set: `source` refuses those.
        network: IpNet,
    },
    /// An inclusive range, such as `198.51.100.10-198.51.100.20`.
    Range {
        /// Lowest address; the same family as `last`.
        first: IpAddr,
        /// Highest address, included; never below `first`.
        last: IpAddr,
    },
}

impl Source {
    /// The same addresses as CIDR networks, fewest first-to-last: one for an
    /// address or a network, as many as a range needs (nginx's `allow`
    /// takes no ranges).
    pub fn networks(&self) -> Vec<IpNet> {
        match *self {
            Source::Address { address } => vec![IpNet::from(address)],
            Source::Network { network } => vec![network],
            Source::Range {
                first: IpAddr::V4(first),
                last: IpAddr::V4(last),
            } => ipnet::Ipv4Subnets::new(first, last, 0)
                .map(IpNet::V4)
                .collect(),
            Source::Range {
                first: IpAddr::V6(first),
                last: IpAddr::V6(last),
            } => ipnet::Ipv6Subnets::new(first, last, 0)
                .map(IpNet::V6)
                .collect(),
            // `source` never pairs two families.
            Source::Range { .. } => Vec::new(),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Address { address } => write!(f, "{address}"),
            Source::Network { network } => write!(f, "{network}"),
            Source::Range { first, last } => write!(f, "{first}-{last}"),
        }
    }
}

/// An IPv4 or IPv6 address, a CIDR network (`203.0.113.0/24`) or a range
/// (`198.51.100.10-198.51.100.20`). A network with host bits set is refused
/// with the network it probably meant, because the firewall would silently
/// widen or reject it.
pub fn source(s: &str) -> Result<Source, String> {
    let s = s.trim();
    if let Some((a, b)) = s.split_once('-') {
        let first: IpAddr = address(a.trim())?;
        let last: IpAddr = address(b.trim())?;
        if first.is_ipv4() != last.is_ipv4() {
            return Err(format!(
                "the range {s:?} mixes IPv4 and IPv6; write one range per family"
            ));
        }
        if first > last {
            return Err(format!(
                "the range {s:?} runs backwards; write it as {last}-{first}"
            ));
        }
        return Ok(Source::Range { first, last });
    }
    if s.contains('/') {
        let net: IpNet = s.parse().map_err(|_| {
            format!("{s:?} is not a network: write it as 203.0.113.0/24 or 2001:db8::/32")
        })?;
        if net.trunc() != net {
            return Err(format!(
                "{s:?} has host bits set; did you mean {}?",
                net.trunc()
            ));
        }
        return Ok(Source::Network { network: net });
    }
    address(s).map(|address| Source::Address { address })
}

/// A plain IPv4 or IPv6 address.
pub fn address(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not an IP address: write it as 203.0.113.10 or 2001:db8::10")
    })
}

/// An absolute filesystem path of plain characters (letters, digits,
/// `/ . _ - + @`), with no `..` component: safe to place unquoted in nginx,
/// sshd and sudoers syntax and never pointing outside where it says.
pub fn absolute_path(s: &str) -> Result<&str, String> {
    if !s.starts_with('/') {
        return Err(format!("{s:?} is not an absolute path; start it with '/'"));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '@')))
    {
        return Err(format!(
            "{s:?} contains {bad:?}; paths use only letters, digits and / . _ - + @"
        ));
    }
    if s.split('/').any(|c| c == "..") {
        return Err(format!("{s:?} contains '..'; write the path without it"));
    }
    Ok(s)
}

/// One label of a DNS name: 1 to 63 letters, digits and `-`, not starting
/// or ending with `-`.
pub fn dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A DNS name for nginx's `server_name`: labels of letters, digits and `-`,
/// optionally starting with a `*.` wildcard, or `_` for "any name".
pub fn server_name(s: &str) -> Result<&str, String> {
    if s == "_" {
        return Ok(s);
    }
    let body = s.strip_prefix("*.").unwrap_or(s);
    let ok = !body.is_empty() && body.len() <= 253 && body.split('.').all(dns_label);
    if ok {
        Ok(s)
    } else {
        Err(format!(
            "{s:?} is not a host name: use labels of letters, digits and '-', like panel.example.org"
        ))
    }
}

/// A realm for HTTP basic auth: shown by browsers, written into nginx's
/// `auth_basic`. Letters, digits, spaces and `. _ - : ( ) @ ,` only (no `$`,
/// which nginx would read as a variable), and never `off`, which nginx reads
/// (quoted or not) as "no password at all".
pub fn realm(s: &str) -> Result<&str, String> {
    if s.eq_ignore_ascii_case("off") {
        return Err(
            "\"off\" as a realm would switch nginx's password check off; name the realm something else, e.g. \"Admin panel\""
                .to_string(),
        );
    }
    let ok = !s.is_empty()
        && s.len() <= 100
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, ' ' | '.' | '_' | '-' | ':' | '(' | ')' | '@' | ',')
        });
    if ok {
        Ok(s)
    } else {
        Err(format!(
            "{s:?} is not a usable realm: use up to 100 letters, digits, spaces and . _ - : ( ) @ ,"
        ))
    }
}

/// A user name as a sudoers rule's first word. sudo's lexer reads some
/// words as syntax rather than a user: `ALL`, `Defaults`, the alias
/// keywords, any all-capitals word (an alias name), the digest names, and
/// `sudoedit`; a dotted quad reads as an address. A rule for an account so
/// named would be a rule for somebody else (`ALL`: every user), or a line
/// sudo cannot parse.
pub fn sudoers_user(name: &str) -> Result<(), String> {
    let keyword = matches!(
        name,
        "ALL"
            | "Defaults"
            | "Host_Alias"
            | "Cmnd_Alias"
            | "Cmd_Alias"
            | "User_Alias"
            | "Runas_Alias"
            | "sha224"
            | "sha256"
            | "sha384"
            | "sha512"
            | "sudoedit"
    );
    let alias = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    let address = name.split('.').count() == 4
        && name
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
    let reads_as = if keyword {
        "a keyword"
    } else if alias {
        "an alias name"
    } else if address {
        "an address"
    } else {
        return Ok(());
    };
    Err(format!(
        "sudo reads {name:?} at the start of a rule as {reads_as} rather than this account, so its rule would not be its own; use a lower-case account name"
    ))
}

/// A user name in an htpasswd file: no `:` (the field separator), no spaces.
pub fn proxy_user_name(s: &str) -> Result<&str, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(s)
    } else {
        Err(format!(
            "{s:?} is not a usable proxy user name: use up to 64 letters, digits and . _ - @"
        ))
    }
}

/// A sudo rule such as `ALL=(ALL) NOPASSWD:ALL`: one line of printable
/// text that starts with a host list and `=`, so that it can only be a rule
/// for the user it is written for (a rule starting `, ALL ALL=...` would
/// extend the user list to everyone). Its full sudoers meaning is checked
/// by `visudo -c` before it is installed.
pub fn sudo_rule(s: &str) -> Result<&str, String> {
    if s.trim().is_empty() {
        return Err("a sudo rule cannot be empty".into());
    }
    if let Some(bad) = s.chars().find(|c| c.is_control() || !c.is_ascii()) {
        return Err(format!(
            "the sudo rule {s:?} contains {bad:?}; a rule is one line of plain ASCII"
        ));
    }
    let shape = || {
        format!(
            "the sudo rule {s:?} must start with a host list and '=', such as ALL=(ALL) NOPASSWD:ALL"
        )
    };
    let (hosts, rest) = s.split_once('=').ok_or_else(shape)?;
    // A host starting with ':' would read as sudoers' separator of host
    // specifications (`alice :=...` is no rule); write an IPv6 address in
    // full (`0:0:0:0:0:0:0:1`) or by name.
    let host_ok = |h: &str| {
        let h = h.trim().strip_prefix('!').unwrap_or(h.trim());
        !h.is_empty()
            && !h.starts_with(':')
            && h.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '*' | '/' | ':' | '+')
            })
    };
    if !hosts.split(',').all(host_ok) {
        return Err(shape());
    }
    if rest.trim().is_empty() || s.trim_end().ends_with('\\') {
        return Err(format!(
            "the sudo rule {s:?} is incomplete; write a whole rule such as ALL=(ALL) NOPASSWD:ALL"
        ));
    }
    Ok(s)
}

/// A GECOS (full name) field: printable, no `:` (passwd's separator).
pub fn gecos(s: &str) -> Result<&str, String> {
    if let Some(bad) = s.chars().find(|c| c.is_control() || *c == ':') {
        return Err(format!(
            "the full name {s:?} contains {bad:?}, which /etc/passwd cannot hold"
        ));
    }
    Ok(s)
}

/// An instance-id from meta-data or the kernel command line: the
/// characters providers use (EC2 `i-0abc`, UUIDs, `iid-local01`), so it is
/// safe in file names, state and messages.
pub fn instance_id(s: &str) -> Result<&str, String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if ok {
        Ok(s)
    } else {
        Err(format!(
            "{s:?} is not a usable instance-id: use up to 128 letters, digits and . _ : -"
        ))
    }
}

/// The password hash formats batten recognises: some for /etc/shadow
/// (see `shadow_hash`), some for nginx's basic auth (see `htpasswd_hash`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptKind {
    /// `$y$` (or `$gy$`): console passwords only, since musl's crypt cannot
    /// check it for nginx on Alpine.
    Yescrypt,
    /// `$6$`, optionally with `rounds=`: what `openssl passwd -6` makes;
    /// accepted for console passwords and nginx basic auth.
    Sha512,
    /// `$5$`, optionally with `rounds=`: accepted for console passwords and
    /// nginx basic auth.
    Sha256,
    /// `$2a$`, `$2b$` or `$2y$` with a two-digit cost: accepted for console
    /// passwords and nginx basic auth.
    Bcrypt,
    /// `$1$`: nginx basic auth only; refused for console passwords.
    Md5,
    /// `$apr1$`, Apache's MD5 variant from `htpasswd -m`: nginx basic auth only.
    Apr1,
    /// `{SHA}`: unsalted SHA-1 in base64, nginx basic auth only.
    Sha1Base64,
    /// `{SSHA}`: salted SHA-1 in base64, nginx basic auth only.
    SaltedSha1Base64,
}

impl CryptKind {
    /// The name people know the format by.
    pub fn name(self) -> &'static str {
        match self {
            CryptKind::Yescrypt => "yescrypt ($y$)",
            CryptKind::Sha512 => "SHA-512 crypt ($6$)",
            CryptKind::Sha256 => "SHA-256 crypt ($5$)",
            CryptKind::Bcrypt => "bcrypt ($2b$)",
            CryptKind::Md5 => "MD5 crypt ($1$)",
            CryptKind::Apr1 => "Apache MD5 ($apr1$)",
            CryptKind::Sha1Base64 => "{SHA}",
            CryptKind::SaltedSha1Base64 => "{SSHA}",
        }
    }
}

fn is_crypt64(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '/')
}

fn is_base64(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
}

/// Recognise a password hash by its shape. The checks are structural (the
/// prefix, salt and hash alphabets and lengths): enough to refuse text that
/// is not a hash, or that would break the shadow or htpasswd line.
pub fn crypt_hash(s: &str) -> Result<CryptKind, String> {
    let fail = || {
        "this is not a password hash batten recognises; make one with `mkpasswd -m yescrypt` or `openssl passwd -6`".to_string()
    };
    if let Some(rest) = s.strip_prefix("{SHA}") {
        return if rest.len() == 28 && is_base64(rest) {
            Ok(CryptKind::Sha1Base64)
        } else {
            Err(fail())
        };
    }
    if let Some(rest) = s.strip_prefix("{SSHA}") {
        return if rest.len() >= 28 && is_base64(rest) {
            Ok(CryptKind::SaltedSha1Base64)
        } else {
            Err(fail())
        };
    }
    let fields: Vec<&str> = s.split('$').collect();
    // "$id$...": fields[0] is empty.
    if fields.len() < 4 || !fields[0].is_empty() {
        return Err(fail());
    }
    let salted = |salt: &str, hash: &str, max_salt: usize, hash_len: usize| {
        !salt.is_empty()
            && salt.len() <= max_salt
            && is_crypt64(salt)
            && hash.len() == hash_len
            && is_crypt64(hash)
    };
    let kind = match (fields[1], fields.len()) {
        ("y" | "gy", 5) => {
            let ok = is_crypt64(fields[2])
                && !fields[2].is_empty()
                && is_crypt64(fields[3])
                && !fields[3].is_empty()
                && fields[4].len() == 43
                && is_crypt64(fields[4]);
            ok.then_some(CryptKind::Yescrypt)
        }
        ("6", 4) => salted(fields[2], fields[3], 16, 86).then_some(CryptKind::Sha512),
        ("6", 5) if is_rounds(fields[2]) => {
            salted(fields[3], fields[4], 16, 86).then_some(CryptKind::Sha512)
        }
        ("5", 4) => salted(fields[2], fields[3], 16, 43).then_some(CryptKind::Sha256),
        ("5", 5) if is_rounds(fields[2]) => {
            salted(fields[3], fields[4], 16, 43).then_some(CryptKind::Sha256)
        }
        ("2a" | "2b" | "2y", 4) => {
            let cost_ok = fields[2].len() == 2 && fields[2].chars().all(|c| c.is_ascii_digit());
            (cost_ok && fields[3].len() == 53 && is_crypt64(fields[3])).then_some(CryptKind::Bcrypt)
        }
        ("1", 4) => salted(fields[2], fields[3], 8, 22).then_some(CryptKind::Md5),
        ("apr1", 4) => salted(fields[2], fields[3], 8, 22).then_some(CryptKind::Apr1),
        _ => None,
    };
    kind.ok_or_else(fail)
}

fn is_rounds(s: &str) -> bool {
    s.strip_prefix("rounds=")
        .is_some_and(|n| !n.is_empty() && n.len() <= 9 && n.chars().all(|c| c.is_ascii_digit()))
}

/// A hash for a console password in /etc/shadow: the formats that glibc's
/// and libxcrypt's crypt(3) check on every supported distribution.
pub fn shadow_hash(s: &str) -> Result<CryptKind, String> {
    let kind = crypt_hash(s)?;
    match kind {
        CryptKind::Yescrypt | CryptKind::Sha512 | CryptKind::Sha256 | CryptKind::Bcrypt => Ok(kind),
        other => Err(format!(
            "{} is not accepted for console passwords; use yescrypt ($y$), SHA-512 ($6$) or SHA-256 ($5$)",
            other.name()
        )),
    }
}

/// A hash for nginx's basic auth file: what nginx's `auth_basic_user_file`
/// verifies (its own `{SHA}`, `{SSHA}`, `$apr1$`, and the system crypt
/// formats). Yescrypt is refused because Alpine's musl crypt cannot check it,
/// and a proxy that nobody can log in to is worse than an error now.
pub fn htpasswd_hash(s: &str) -> Result<CryptKind, String> {
    let kind = crypt_hash(s)?;
    match kind {
        CryptKind::Yescrypt => Err(
            "nginx cannot check yescrypt ($y$) on every distribution; use SHA-512 ($6$) from `openssl passwd -6`"
                .into(),
        ),
        other => Ok(other),
    }
}

/// Levenshtein distance, for did-you-mean suggestions on misspelt keys.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known key closest to a misspelt one, when it is close enough to be a
/// plausible typo.
pub fn suggest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    let unknown_l = unknown.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&unknown_l, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        for good in ["admin", "pi", "_svc", "deploy-bot", "a.b", "user1", "Admin"] {
            assert_eq!(account_name(good), Ok(good), "{good}");
        }
        assert!(account_name("").is_err());
        assert!(account_name("-rf").unwrap_err().contains("starts with"));
        assert!(account_name(".hidden").is_err());
        assert!(account_name("../etc").unwrap_err().contains("'/'"));
        assert!(account_name("a/b").is_err());
        assert!(account_name("a b").is_err());
        assert!(account_name("a;b").is_err());
        assert!(account_name("1000").unwrap_err().contains("all digits"));
        assert!(account_name(&"a".repeat(33)).unwrap_err().contains("33"));
        assert!(account_name("ünïcode").is_err());
        assert!(account_name("root\n").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(port_number(22), Ok(22));
        assert_eq!(port_number(65535), Ok(65535));
        assert!(port_number(0).is_err());
        assert!(port_number(65536).is_err());
        assert!(port_number(-1).is_err());
        assert_eq!(port_text("443"), Ok(443));
        assert!(port_text("44a").is_err());
        assert!(port_text("").is_err());
        assert!(port_text("999999").is_err());
        assert_eq!(
            port_range("8000-8010"),
            Ok(PortRange {
                first: 8000,
                last: 8010
            })
        );
        assert_eq!(
            port_range("80"),
            Ok(PortRange {
                first: 80,
                last: 80
            })
        );
        assert!(port_range("10-5").unwrap_err().contains("backwards"));
        assert!(port_range("1-99999").is_err());
    }

    #[test]
    fn sources() {
        assert_eq!(
            source("203.0.113.10"),
            Ok(Source::Address {
                address: "203.0.113.10".parse().unwrap()
            })
        );
        assert_eq!(
            source("2001:db8::/32"),
            Ok(Source::Network {
                network: "2001:db8::/32".parse().unwrap()
            })
        );
        assert!(
            source("203.0.113.5/24")
                .unwrap_err()
                .contains("did you mean 203.0.113.0/24")
        );
        assert!(source("203.0.113.0/33").is_err());
        let range = source("198.51.100.10-198.51.100.20").unwrap();
        assert_eq!(range.to_string(), "198.51.100.10-198.51.100.20");
        assert!(
            source("198.51.100.20-198.51.100.10")
                .unwrap_err()
                .contains("backwards")
        );
        assert!(
            source("198.51.100.1-2001:db8::1")
                .unwrap_err()
                .contains("mixes")
        );
        assert!(source("example.org").is_err());
        assert!(source("1.2.3.4; drop").is_err());
        assert!(source("2001:db8::1").unwrap().to_string() == "2001:db8::1");
    }

    #[test]
    fn paths_and_names() {
        assert!(absolute_path("/run/app.sock").is_ok());
        assert!(absolute_path("run/app.sock").is_err());
        assert!(absolute_path("/etc/../shadow").is_err());
        assert!(absolute_path("/a b").is_err());
        assert!(absolute_path("/a;b").is_err());
        assert!(server_name("panel.example.org").is_ok());
        assert!(server_name("*.example.org").is_ok());
        assert!(server_name("_").is_ok());
        assert!(server_name("bad_name.org").is_err());
        assert!(server_name("a.org; return 200").is_err());
        assert!(realm("Admin area").is_ok());
        assert!(realm("x\" ; deny all").is_err());
        assert!(realm("$host").is_err());
        let nets = |s: &str| -> Vec<String> {
            source(s)
                .unwrap()
                .networks()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            nets("198.51.100.10-198.51.100.20"),
            [
                "198.51.100.10/31",
                "198.51.100.12/30",
                "198.51.100.16/30",
                "198.51.100.20/32"
            ]
        );
        assert_eq!(nets("2001:db8::1"), ["2001:db8::1/128"]);
        assert_eq!(nets("203.0.113.0/24"), ["203.0.113.0/24"]);
        for off in ["off", "OFF", "Off"] {
            assert!(
                realm(off)
                    .unwrap_err()
                    .contains("switch nginx's password check off")
            );
        }
        assert!(proxy_user_name("ops").is_ok());
        assert!(proxy_user_name("a:b").is_err());
        assert!(sudo_rule("ALL=(ALL) NOPASSWD:ALL").is_ok());
        assert!(sudo_rule("ALL\nroot ALL=(ALL) ALL").is_err());
        assert!(sudo_rule("#include /tmp/x").is_err());
        assert!(sudo_rule("ALL = (root) /usr/bin/apt").is_ok());
        assert!(sudo_rule("web1, web2=(ALL) ALL").is_ok());
        assert!(
            sudo_rule(", ALL ALL=(ALL) NOPASSWD: ALL").is_err(),
            "would extend the user list"
        );
        assert!(sudo_rule("ALL ALL=(ALL) ALL").is_err());
        assert!(sudo_rule("ALL=(ALL) ALL \\").is_err());
        // Found by the property test: a host list of ':' alone.
        assert!(sudo_rule(":=A").is_err());
        assert!(sudo_rule("::1=(ALL) ALL").is_err());
        assert!(sudo_rule("NOPASSWD:ALL").is_err());
        assert!(instance_id("i-0abc123").is_ok());
        assert!(instance_id("a b").is_err());
        assert!(gecos("Ada Lovelace").is_ok());
        assert!(gecos("x:0:0").is_err());
    }

    #[test]
    fn hashes() {
        let sha512 = "$6$rounds=5000$saltsalt$".to_string() + &"a".repeat(86);
        assert_eq!(shadow_hash(&sha512), Ok(CryptKind::Sha512));
        let sha512_plain = "$6$saltsalt$".to_string() + &"b".repeat(86);
        assert_eq!(shadow_hash(&sha512_plain), Ok(CryptKind::Sha512));
        let sha256 = "$5$abc$".to_string() + &"c".repeat(43);
        assert_eq!(shadow_hash(&sha256), Ok(CryptKind::Sha256));
        let yes = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$".to_string() + &"X".repeat(43);
        assert_eq!(shadow_hash(&yes), Ok(CryptKind::Yescrypt));
        assert!(htpasswd_hash(&yes).unwrap_err().contains("yescrypt"));
        let apr1 = "$apr1$abcdefgh$".to_string() + &"d".repeat(22);
        assert_eq!(htpasswd_hash(&apr1), Ok(CryptKind::Apr1));
        assert!(shadow_hash(&apr1).is_err());
        assert_eq!(
            htpasswd_hash("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="),
            Ok(CryptKind::Sha1Base64)
        );
        assert!(shadow_hash("hunter2").is_err());
        assert!(shadow_hash("$6$salt$short").is_err());
        assert!(shadow_hash(&format!("{sha512}\nroot::0:0")).is_err());
        assert!(shadow_hash(&sha512.replace('a', ":")).is_err());
    }

    #[test]
    fn suggestions() {
        let known = ["ssh", "firewall", "proxy"];
        assert_eq!(suggest("firewal", &known), Some("firewall"));
        assert_eq!(suggest("prxy", &known), Some("proxy"));
        assert_eq!(suggest("zzzzzz", &known), None);
        assert_eq!(
            suggest("ssh_authorised_keys", &["ssh_authorized_keys", "sudo"]),
            Some("ssh_authorized_keys")
        );
    }
}
