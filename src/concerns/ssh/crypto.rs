//! The crypto policy (`batten.ssh.crypto`): which key exchanges, ciphers,
//! MACs and key algorithms sshd offers, which host keys it serves, the
//! Diffie-Hellman groups it may pick, and the smallest RSA key it takes.
//!
//! `modern` is ssh-audit's hardening guide for current OpenSSH (the
//! Debian 12 and Ubuntu 24.04 server guides): no NIST curves, no SHA-1,
//! no CBC, no encrypt-and-MAC. `compatible` adds what older clients
//! still need and is still not broken (NIST curves, DH group 14 with
//! SHA-256, the non-EtM SHA-2 MACs). `image` writes nothing.
//!
//! Two rules keep the policy from locking anyone out:
//!
//! - every list is cut down to what the image's OpenSSH knows, so sshd
//!   never refuses to start over a name it has never heard of. sshd itself
//!   has no `-Q`; `ssh -Q` of the image's own openssh-client (the same
//!   release: Debian's and Fedora's openssh-server depend on it at the exact
//!   version) answers for it, run inside the image like sshd's checks.
//!   When it cannot run here (another architecture), a list known to be
//!   right for the image's OpenSSH version stands in;
//! - safety rule 7: the accepted public-key algorithms always include
//!   those of every key the user-data installs (an ECDSA key from a phone,
//!   a security key's `sk-` key), and the host key algorithms those of
//!   every host key sshd serves. Keys too weak to trust never get here:
//!   validation refuses them, naming the key.

use super::sshd_config::Setting;
use crate::host::exec::{self, Check, ExecError, Runner};
use crate::host::root::Root;
use crate::input::model::{CryptoPolicy, HostKeyType};

/// Key exchanges, most preferred first: ssh-audit's Debian 12 server guide
/// in its order (its built-in policy compares the lists in order), with
/// OpenSSH 9.9's post-quantum ML-KEM hybrid and standard sntrup name ahead
/// where the image has them.
const MODERN_KEX: &[&str] = &[
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
];

/// Ciphers: AEAD and counter modes only.
const MODERN_CIPHERS: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-gcm@openssh.com",
    "aes128-ctr",
];

/// MACs: encrypt-then-MAC with SHA-2 or UMAC-128 only, in the Debian 12
/// guide's order.
const MODERN_MACS: &[&str] = &[
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "umac-128-etm@openssh.com",
];

/// Host key and public key algorithms: Ed25519 (plain and on a security
/// key) and RSA with SHA-2, with their certificates.
const MODERN_KEYS: &[&str] = &[
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-ed25519",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

/// What `compatible` adds to each list, for clients without Curve25519 or
/// Ed25519 (older network gear, Java and Go SSH libraries).
const COMPATIBLE_KEX: &[&str] = &[
    "ecdh-sha2-nistp521",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp256",
    "diffie-hellman-group14-sha256",
];
const COMPATIBLE_MACS: &[&str] = &["hmac-sha2-512", "hmac-sha2-256", "umac-128@openssh.com"];
const COMPATIBLE_KEYS: &[&str] = &[
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// The RSA size ssh-audit's guide asks for (`RequiredRSASize`).
pub const REQUIRED_RSA_BITS: u32 = 3072;

/// Size of RSA host keys made under `modern`, as ssh-audit's guide makes
/// them (`ssh-keygen -t rsa -b 4096`); 3072 otherwise.
pub fn rsa_host_key_bits(policy: CryptoPolicy) -> usize {
    match policy {
        CryptoPolicy::Modern => 4096,
        _ => 3072,
    }
}

/// Diffie-Hellman group exchange moduli at least this large stay in
/// `/etc/ssh/moduli` (its fifth field is the size minus one: 3071).
const MODULI_MIN: u32 = 3071;

/// The algorithms an OpenSSH knows, one list per kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Supported {
    /// `ssh -Q kex`.
    pub kex: Vec<String>,
    /// `ssh -Q cipher`.
    pub ciphers: Vec<String>,
    /// `ssh -Q mac`.
    pub macs: Vec<String>,
    /// `ssh -Q key-sig`: key types and signature algorithms, certificates
    /// included (what HostKeyAlgorithms and PubkeyAcceptedAlgorithms take).
    pub keys: Vec<String>,
}

impl Supported {
    /// Whether every list has something: an empty one means ssh was not
    /// really asked (a wrapper, a broken program), not that it knows nothing.
    pub fn is_complete(&self) -> bool {
        !self.kex.is_empty()
            && !self.ciphers.is_empty()
            && !self.macs.is_empty()
            && !self.keys.is_empty()
    }
}

/// What batten knows about the image's sshd before it plans.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshdFacts {
    /// OpenSSH's (major, minor) version: from the package database, else
    /// from the version string inside the program.
    pub version: Option<(u32, u32)>,
    /// What `ssh -Q` listed, or why it could not be asked.
    pub listed: Option<Supported>,
    /// Why `listed` is missing, for the plan's notes.
    pub why_not_listed: Option<String>,
}

impl SshdFacts {
    /// Ask the root's OpenSSH what it knows (through `runner`, inside the
    /// image as sshd's own checks run), and read its version.
    pub fn probe(runner: &(dyn Runner + Sync), root: &Root) -> SshdFacts {
        let version = sshd_version(root);
        let query = |what: &str| -> Result<Vec<String>, ExecError> {
            let args = ["-Q", what];
            let check = Check {
                program: "ssh",
                args: &args,
                stdin: None,
                config_dirs: &[],
            };
            runner.check(root, &check).map(|out| words(&out))
        };
        // Four programs on the first boot's path: asked at once, not in turn.
        let listed = std::thread::scope(|scope| -> Result<Supported, ExecError> {
            let kex = scope.spawn(|| query("kex"));
            let ciphers = scope.spawn(|| query("cipher"));
            let macs = scope.spawn(|| query("mac"));
            // `key-sig` came with OpenSSH 8.2; before it, `key` and `sig`
            // together say the same.
            let keys = query("key-sig").or_else(|_| {
                let mut keys = query("key")?;
                keys.extend(query("sig")?);
                Ok::<_, ExecError>(keys)
            });
            let joined = |h: std::thread::ScopedJoinHandle<'_, Result<Vec<String>, ExecError>>| {
                h.join()
                    .unwrap_or_else(|_| Err(ExecError::Refused("ssh -Q panicked".into())))
            };
            Ok(Supported {
                kex: joined(kex)?,
                ciphers: joined(ciphers)?,
                macs: joined(macs)?,
                keys: keys?,
            })
        });
        let (listed, why_not_listed) = match listed {
            Ok(s) if s.is_complete() => (Some(s), None),
            Ok(_) => (None, Some("ssh -Q listed nothing".to_string())),
            Err(e) => (None, Some(e.to_string())),
        };
        SshdFacts {
            version,
            listed,
            why_not_listed,
        }
    }

    /// What the policy is cut down to: the listed algorithms, else those
    /// known for the version (OpenSSH 7.4's when even that is unknown).
    pub fn supported(&self) -> Supported {
        match &self.listed {
            Some(s) => s.clone(),
            None => known_for(self.version.unwrap_or((7, 4))),
        }
    }

    /// Whether sshd knows `RequiredRSASize` (OpenSSH 9.1).
    pub fn knows_required_rsa_size(&self) -> bool {
        self.version.is_some_and(|v| v >= (9, 1))
    }

    /// `PubkeyAcceptedAlgorithms` (OpenSSH 8.5), else its old name, which
    /// every later version still reads.
    pub fn pubkey_keyword(&self) -> &'static str {
        match self.version {
            Some(v) if v >= (8, 5) => "PubkeyAcceptedAlgorithms",
            _ => "PubkeyAcceptedKeyTypes",
        }
    }
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// The root's OpenSSH version: dpkg's record of openssh-server, else the
/// `OpenSSH_X.Y` string in the sshd program that checks the root (the
/// image's own, or this machine's for a root without one).
pub fn sshd_version(root: &Root) -> Option<(u32, u32)> {
    if let Some(v) = dpkg_version(root) {
        return Some(v);
    }
    let bytes = match exec::locate(root, "sshd") {
        exec::Found::Image(path) | exec::Found::Foreign { path, .. } => {
            root.read_following_within(&path).ok().flatten()?
        }
        exec::Found::Host(path) => std::fs::read(path).ok()?,
        exec::Found::Missing => return None,
    };
    version_in_program(&bytes)
}

/// `openssh-server`'s upstream version from `/var/lib/dpkg/status`
/// (`1:9.2p1-2+deb12u3` is 9.2).
pub fn dpkg_version(root: &Root) -> Option<(u32, u32)> {
    let status = root.read_to_string("/var/lib/dpkg/status").ok()??;
    let version = status
        .split("\n\n")
        .find(|stanza| stanza.lines().any(|l| l == "Package: openssh-server"))
        .and_then(|stanza| stanza.lines().find_map(|l| l.strip_prefix("Version: ")))?;
    let upstream = version.split_once(':').map(|(_, v)| v).unwrap_or(version);
    major_minor(upstream)
}

fn major_minor(text: &str) -> Option<(u32, u32)> {
    let mut nums = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    Some((nums.next()?.parse().ok()?, nums.next()?.parse().ok()?))
}

/// The first `OpenSSH_X.Y` in a program's bytes (its version banner).
pub fn version_in_program(bytes: &[u8]) -> Option<(u32, u32)> {
    const TAG: &[u8] = b"OpenSSH_";
    // A plain byte search: the program is a megabyte or more.
    let mut from = 0;
    let at = loop {
        let at = from + bytes.get(from..)?.iter().position(|&b| b == b'O')?;
        let after = bytes.get(at + TAG.len()).copied().unwrap_or(0);
        if bytes[at..].starts_with(TAG) && after.is_ascii_digit() {
            break at;
        }
        from = at + 1;
    };
    let rest: String = bytes[at + TAG.len()..]
        .iter()
        .take(8)
        .map(|&b| b as char)
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    major_minor(&rest)
}

/// The algorithms an OpenSSH release is known to have, for when `ssh -Q`
/// cannot run here: only names of this module's lists, each from the
/// release that brought it.
pub fn known_for(v: (u32, u32)) -> Supported {
    let since = |names: &[(&str, (u32, u32))]| -> Vec<String> {
        names
            .iter()
            .filter(|(_, from)| v >= *from)
            .map(|(n, _)| n.to_string())
            .collect()
    };
    Supported {
        kex: since(&[
            ("mlkem768x25519-sha256", (9, 9)),
            ("sntrup761x25519-sha512", (9, 9)),
            ("sntrup761x25519-sha512@openssh.com", (8, 5)),
            ("curve25519-sha256", (7, 4)),
            ("curve25519-sha256@libssh.org", (6, 5)),
            ("diffie-hellman-group18-sha512", (7, 3)),
            ("diffie-hellman-group16-sha512", (7, 3)),
            ("diffie-hellman-group14-sha256", (7, 3)),
            ("diffie-hellman-group-exchange-sha256", (4, 4)),
            ("ecdh-sha2-nistp256", (5, 7)),
            ("ecdh-sha2-nistp384", (5, 7)),
            ("ecdh-sha2-nistp521", (5, 7)),
        ]),
        ciphers: since(&[
            ("chacha20-poly1305@openssh.com", (6, 5)),
            ("aes256-gcm@openssh.com", (6, 2)),
            ("aes128-gcm@openssh.com", (6, 2)),
            ("aes256-ctr", (3, 7)),
            ("aes192-ctr", (3, 7)),
            ("aes128-ctr", (3, 7)),
        ]),
        macs: since(&[
            ("hmac-sha2-512-etm@openssh.com", (6, 2)),
            ("hmac-sha2-256-etm@openssh.com", (6, 2)),
            ("umac-128-etm@openssh.com", (6, 2)),
            ("hmac-sha2-512", (5, 9)),
            ("hmac-sha2-256", (5, 9)),
            ("umac-128@openssh.com", (6, 2)),
        ]),
        keys: since(&[
            ("ssh-ed25519", (6, 5)),
            ("ssh-ed25519-cert-v01@openssh.com", (6, 5)),
            ("rsa-sha2-512", (7, 2)),
            ("rsa-sha2-256", (7, 2)),
            ("rsa-sha2-512-cert-v01@openssh.com", (7, 8)),
            ("rsa-sha2-256-cert-v01@openssh.com", (7, 8)),
            ("sk-ssh-ed25519@openssh.com", (8, 2)),
            ("sk-ssh-ed25519-cert-v01@openssh.com", (8, 2)),
            ("ecdsa-sha2-nistp256", (5, 7)),
            ("ecdsa-sha2-nistp384", (5, 7)),
            ("ecdsa-sha2-nistp521", (5, 7)),
            ("ecdsa-sha2-nistp256-cert-v01@openssh.com", (5, 7)),
            ("ecdsa-sha2-nistp384-cert-v01@openssh.com", (5, 7)),
            ("ecdsa-sha2-nistp521-cert-v01@openssh.com", (5, 7)),
            ("sk-ecdsa-sha2-nistp256@openssh.com", (8, 2)),
            ("sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", (8, 2)),
        ]),
    }
}

/// The public-key algorithms sshd must accept for a key of type
/// `key_type` (the first word of its line): an `ssh-rsa` key signs with
/// `rsa-sha2-256`/`-512` (its SHA-1 `ssh-rsa` signature is what OpenSSH
/// 8.8 turned off), every other type with its own name.
pub fn algorithms_for_key(key_type: &str) -> Vec<String> {
    match key_type {
        "ssh-rsa" => vec!["rsa-sha2-512".into(), "rsa-sha2-256".into()],
        "ssh-rsa-cert-v01@openssh.com" => vec![
            "rsa-sha2-512-cert-v01@openssh.com".into(),
            "rsa-sha2-256-cert-v01@openssh.com".into(),
        ],
        other => vec![other.to_string()],
    }
}

/// What the policy must make room for, from the plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Each user key to install: its name for messages and its type word.
    pub user_keys: Vec<(String, String)>,
    /// Bits of the smallest RSA user key, if any.
    pub smallest_rsa: Option<u32>,
    /// The host keys sshd serves: type, and the algorithm of its public
    /// line (`ecdsa-sha2-nistp384` for a provided P-384 key).
    pub host_keys: Vec<(HostKeyType, String)>,
    /// Host key types that have a certificate (`HostCertificate`).
    pub certified: Vec<HostKeyType>,
}

/// `wanted` in its order, then `extra` that is not in it yet, cut down to
/// `known`.
fn list(wanted: &[&[&str]], extra: &[String], known: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in wanted
        .iter()
        .flat_map(|l| l.iter().map(|s| s.to_string()))
        .chain(extra.iter().cloned())
    {
        if known.contains(&name) && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The sshd settings of `policy` for this image and these keys, and what
/// the owner should know about them. `image` gives none.
pub fn settings(
    policy: CryptoPolicy,
    sshd: &SshdFacts,
    needs: &Needs,
    notes: &mut Vec<String>,
) -> Vec<Setting> {
    let wide = match policy {
        CryptoPolicy::Image => return Vec::new(),
        CryptoPolicy::Modern => false,
        CryptoPolicy::Compatible => true,
    };
    let known = sshd.supported();
    if sshd.listed.is_none() {
        notes.push(format!(
            "the image's OpenSSH could not be asked what it supports ({}); the crypto policy uses the algorithms OpenSSH {} is known to have",
            sshd.why_not_listed.as_deref().unwrap_or("unknown"),
            sshd.version
                .map(|(a, b)| format!("{a}.{b}"))
                .unwrap_or_else(|| "7.4 (the version is unknown)".into())
        ));
    }
    let pick = |modern: &'static [&'static str], more: &'static [&'static str]| {
        if wide {
            vec![modern, more]
        } else {
            vec![modern]
        }
    };
    // Safety rule 7: each user key's algorithms, whatever the policy.
    let mut user_algorithms = Vec::new();
    for (name, key_type) in &needs.user_keys {
        let algorithms = algorithms_for_key(key_type);
        if !algorithms.iter().any(|a| known.keys.contains(a)) {
            notes.push(format!(
                "the key {name} is of type {key_type}, which the image's OpenSSH does not know: it cannot log in whatever batten writes"
            ));
        }
        user_algorithms.extend(algorithms);
    }
    // The host keys sshd serves must each have an algorithm offered.
    let mut host_algorithms = Vec::new();
    for (t, algorithm) in &needs.host_keys {
        let plain = algorithms_for_key(algorithm);
        if needs.certified.contains(t) {
            host_algorithms.extend(plain.iter().map(|a| match a.as_str() {
                "rsa-sha2-512" | "rsa-sha2-256" => format!("{a}-cert-v01@openssh.com"),
                other => format!("{other}-cert-v01@openssh.com"),
            }));
        }
        host_algorithms.extend(plain);
    }
    let mut out = Vec::new();
    let mut set = |keyword: &'static str, values: Vec<String>, notes: &mut Vec<String>| {
        if values.is_empty() {
            // An empty list makes sshd refuse to start: keep the image's.
            notes.push(format!(
                "none of the crypto policy's {keyword} is known to the image's OpenSSH; {keyword} stays as the image has it"
            ));
            return;
        }
        out.push(Setting {
            keyword,
            value: values.join(","),
        });
    };
    set(
        "KexAlgorithms",
        list(&pick(MODERN_KEX, COMPATIBLE_KEX), &[], &known.kex),
        notes,
    );
    set(
        "Ciphers",
        list(&[MODERN_CIPHERS], &[], &known.ciphers),
        notes,
    );
    set(
        "MACs",
        list(&pick(MODERN_MACS, COMPATIBLE_MACS), &[], &known.macs),
        notes,
    );
    set(
        "HostKeyAlgorithms",
        list(
            &pick(MODERN_KEYS, COMPATIBLE_KEYS),
            &host_algorithms,
            &known.keys,
        ),
        notes,
    );
    set(
        sshd.pubkey_keyword(),
        list(
            &pick(MODERN_KEYS, COMPATIBLE_KEYS),
            &user_algorithms,
            &known.keys,
        ),
        notes,
    );
    // One HostKey line per key sshd serves: no ECDSA key under `modern`
    // unless the user-data asked for one. sshd offers host key algorithms
    // in the order of these lines: Ed25519 first, as the guide has it.
    let mut served: Vec<HostKeyType> = needs.host_keys.iter().map(|(t, _)| *t).collect();
    served.sort_by_key(|t| match t {
        HostKeyType::Ed25519 => 0,
        HostKeyType::Rsa => 1,
        HostKeyType::Ecdsa => 2,
    });
    for t in &served {
        out.push(Setting {
            keyword: "HostKey",
            value: super::host_keys::private_path(*t),
        });
    }
    if policy == CryptoPolicy::Modern && sshd.knows_required_rsa_size() {
        let bits = match needs.smallest_rsa {
            // Safety rule 7: never above a key the user gives.
            Some(b) if b < REQUIRED_RSA_BITS => {
                let b = b.max(crate::input::validate::MIN_RSA_BITS);
                notes.push(format!(
                    "RequiredRSASize is {b}, not ssh-audit's {REQUIRED_RSA_BITS}: the user-data installs a {b}-bit RSA key, which a higher value would lock out; replace it with an ed25519 or 4096-bit RSA key to get the full policy"
                ));
                b
            }
            _ => REQUIRED_RSA_BITS,
        };
        out.push(Setting {
            keyword: "RequiredRSASize",
            value: bits.to_string(),
        });
    }
    out
}

/// Every algorithm `policy` may put in effect for a kind (`sshd -T`'s
/// keyword), before it is cut down to the image's: what verify holds the
/// effective lists to. `None` for `image`, which leaves them alone.
pub fn allowed(policy: CryptoPolicy, keyword: &str, extra: &[String]) -> Option<Vec<String>> {
    let wide = match policy {
        CryptoPolicy::Image => return None,
        CryptoPolicy::Modern => false,
        CryptoPolicy::Compatible => true,
    };
    let (modern, more): (&[&str], &[&str]) = match keyword {
        "kexalgorithms" => (MODERN_KEX, COMPATIBLE_KEX),
        "ciphers" => (MODERN_CIPHERS, &[]),
        "macs" => (MODERN_MACS, COMPATIBLE_MACS),
        "hostkeyalgorithms" | "pubkeyacceptedalgorithms" | "pubkeyacceptedkeytypes" => {
            (MODERN_KEYS, COMPATIBLE_KEYS)
        }
        _ => return None,
    };
    let mut all: Vec<String> = modern.iter().map(|s| s.to_string()).collect();
    if wide {
        all.extend(more.iter().map(|s| s.to_string()));
    }
    all.extend(extra.iter().cloned());
    Some(all)
}

/// `/etc/ssh/moduli` without the groups under 3072 bits, or `None` when
/// nothing would change. Comments and blank lines stay.
pub fn filter_moduli(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut dropped = 0;
    for line in text.split_inclusive('\n') {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let is_group = fields.len() >= 7 && !line.trim_start().starts_with('#');
        if is_group && fields[4].parse::<u32>().is_ok_and(|size| size < MODULI_MIN) {
            dropped += 1;
            continue;
        }
        out.push_str(line);
    }
    (dropped > 0).then_some(out)
}

/// Whether a moduli file's text still holds a group.
pub fn has_groups(text: &str) -> bool {
    text.lines()
        .any(|l| !l.trim_start().starts_with('#') && l.split_whitespace().count() >= 7)
}

#[cfg(test)]
#[path = "crypto_tests.rs"]
mod tests;
