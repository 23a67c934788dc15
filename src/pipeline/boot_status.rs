//! `batten-status.txt` on a Raspberry Pi's boot partition: what the first
//! boot did, for an owner who never attaches a screen. The card goes back
//! into the laptop it was flashed on, and the file says whether the Pi is
//! hardened, what went wrong if it is not, and the SSH host key
//! fingerprints to check the first connection against. A JSON copy beside
//! it is for tools.
//!
//! The boot partition is FAT: anyone holding the card reads it. Nothing
//! secret goes in: no password, no hash, no user-data; errors are batten's
//! own messages, which never carry secrets.

use serde::{Deserialize, Serialize};

use crate::concerns::ssh::host_keys::{describe_public, public_path};
use crate::host::root::{Owner, Root, RootError};
use crate::input::model::HostKeyType;
use crate::input::pi_os::boot_partition;
use crate::state::now_utc;

/// What the status file says.
#[derive(Debug, Serialize, Deserialize)]
pub struct BootStatus {
    /// Which step wrote it: `run` or `verify`.
    pub phase: String,
    /// One word: `hardened`, `sealed`, `failed`, `refused`, `no-user-data`,
    /// `not-sealed`.
    pub result: String,
    /// What went wrong, in batten's words.
    pub errors: Vec<String>,
    /// What the owner should know besides (files left to Pi OS, what was
    /// left to cloud-init).
    pub notes: Vec<String>,
    /// The instance the run was for, when known.
    pub instance_id: Option<String>,
    /// The SSH host keys now in the root: (type, bits, SHA-256 fingerprint).
    pub host_keys: Vec<(String, u32, String)>,
    /// The proxy's HTTPS certificates as batten recorded them: (site,
    /// SHA-256 fingerprint, whether self-signed).
    #[serde(default)]
    pub certificates: Vec<(String, String, bool)>,
    /// The machine's addresses when batten looked (none before the network
    /// is up, nor for an image).
    pub addresses: Vec<String>,
    /// When, RFC 3339 UTC.
    pub time: String,
}

impl BootStatus {
    /// The status of `phase` with `result`, the root's host keys and this
    /// machine's addresses filled in.
    pub fn new(root: &Root, phase: &str, result: &str, errors: Vec<String>) -> BootStatus {
        BootStatus {
            phase: phase.to_string(),
            result: result.to_string(),
            errors,
            notes: Vec::new(),
            instance_id: None,
            host_keys: host_keys(root),
            certificates: crate::state::State::load(root)
                .map(|s| {
                    s.certificates
                        .into_iter()
                        .map(|c| (c.site, c.fingerprint, c.self_signed))
                        .collect()
                })
                .unwrap_or_default(),
            addresses: if root.is_host() {
                addresses()
            } else {
                Vec::new()
            },
            time: now_utc(),
        }
    }

    /// The text a person reads.
    pub fn render(&self) -> String {
        let mut out = format!(
            "batten on this Raspberry Pi: {}\n\nphase:       {}\ntime:        {}\n",
            self.result, self.phase, self.time
        );
        if let Some(id) = &self.instance_id {
            out.push_str(&format!("instance-id: {id}\n"));
        }
        if !self.errors.is_empty() {
            out.push_str("\nwhat went wrong:\n");
            for e in &self.errors {
                for (i, line) in e.lines().enumerate() {
                    out.push_str(if i == 0 { "  - " } else { "    " });
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        if !self.notes.is_empty() {
            out.push_str("\nnotes:\n");
            for n in &self.notes {
                out.push_str(&format!("  - {n}\n"));
            }
        }
        out.push_str("\nSSH host keys (compare with what ssh shows at the first connection):\n");
        if self.host_keys.is_empty() {
            out.push_str("  none yet\n");
        }
        for (kind, bits, fingerprint) in &self.host_keys {
            out.push_str(&format!("  {fingerprint} ({kind}, {bits} bits)\n"));
        }
        if !self.certificates.is_empty() {
            out.push_str(
                "\nHTTPS certificates of the web panels (compare with what the browser shows):\n",
            );
        }
        for (site, fingerprint, self_signed) in &self.certificates {
            let kind = if *self_signed {
                "self-signed"
            } else {
                "issued by a CA"
            };
            out.push_str(&format!("  {site}: SHA256 {fingerprint} ({kind})\n"));
        }
        out.push_str("\naddresses batten saw:\n");
        if self.addresses.is_empty() {
            out.push_str("  none yet (batten runs before the network is up)\n");
        }
        for a in &self.addresses {
            out.push_str(&format!("  {a}\n"));
        }
        out
    }
}

/// What the status file said last, when there is one batten can read.
pub fn previous(root: &Root) -> Option<BootStatus> {
    let dir = boot_partition(root)?;
    let bytes = root.read(&format!("{dir}/batten-status.json")).ok()??;
    serde_json::from_slice(&bytes).ok()
}

impl BootStatus {
    /// Whether `other` tells the owner the same (the time aside).
    fn same_news(&self, other: &BootStatus) -> bool {
        (&self.phase, &self.result, &self.errors, &self.notes)
            == (&other.phase, &other.result, &other.errors, &other.notes)
            && (&self.instance_id, &self.host_keys, &self.addresses)
                == (&other.instance_id, &other.host_keys, &other.addresses)
            && self.certificates == other.certificates
    }
}

/// Write `batten-status.txt` and `batten-status.json` on the root's Pi
/// boot partition, unless they already say the same (a watched card is
/// verified at every boot, and FAT is best written seldom); `Ok(None)`
/// when the root is not a Pi's or nothing changed.
pub fn write(root: &Root, status: &BootStatus) -> Result<Option<String>, RootError> {
    let Some(dir) = boot_partition(root) else {
        return Ok(None);
    };
    if previous(root).is_some_and(|p| p.same_news(status)) {
        return Ok(None);
    }
    // FAT has no owners; these are what a vfat mount shows anyway.
    let owner = Owner {
        uid: 0,
        gid: 0,
        mode: 0o644,
    };
    let text = format!("{dir}/batten-status.txt");
    root.write_atomic(&text, status.render().as_bytes(), owner, None)?;
    let mut json = serde_json::to_string_pretty(status).unwrap_or_default();
    json.push('\n');
    root.write_atomic(
        &format!("{dir}/batten-status.json"),
        json.as_bytes(),
        owner,
        None,
    )?;
    Ok(Some(text))
}

/// Write the status where there is a Pi boot partition; a failure to write
/// it is only worth a warning, since the run itself is what matters.
pub fn record(root: &Root, status: &BootStatus) {
    match write(root, status) {
        Ok(Some(path)) => log::info!("status for the owner written to {path}"),
        Ok(None) => {}
        Err(e) => log::warn!("could not write the status file on the boot partition: {e}"),
    }
}

/// The host keys the root holds now, as ssh-keygen -l describes them.
fn host_keys(root: &Root) -> Vec<(String, u32, String)> {
    [HostKeyType::Ed25519, HostKeyType::Ecdsa, HostKeyType::Rsa]
        .into_iter()
        .filter_map(|t| {
            let text = root.read_to_string(&public_path(t)).ok()??;
            let (bits, fingerprint, label) = describe_public(&text)?;
            Some((label, bits, fingerprint))
        })
        .collect()
}

/// This machine's addresses, loopback and link-local left out.
fn addresses() -> Vec<String> {
    let Ok(all) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ifa in all {
        let Some(address) = ifa.address else {
            continue;
        };
        let ip: std::net::IpAddr = if let Some(v4) = address.as_sockaddr_in() {
            v4.ip().into()
        } else if let Some(v6) = address.as_sockaddr_in6() {
            v6.ip().into()
        } else {
            continue;
        };
        let link_local = match ip {
            std::net::IpAddr::V4(a) => a.is_link_local(),
            std::net::IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
        };
        if ip.is_loopback() || link_local {
            continue;
        }
        let line = format!("{ip} on {}", ifa.interface_name);
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@pi\n";

    #[test]
    fn a_pi_root_gets_the_status_with_fingerprints_and_no_other_root_does() {
        let (_dir, plain) = scratch_root(&[]);
        let status = BootStatus::new(&plain, "run", "hardened", Vec::new());
        assert_eq!(write(&plain, &status).unwrap(), None);

        let (dir, pi) = scratch_root(&[
            ("/boot/firmware/config.txt", "arm_64bit=1\n"),
            ("/etc/ssh/ssh_host_ed25519_key.pub", KEY),
        ]);
        let mut status = BootStatus::new(
            &pi,
            "run",
            "failed",
            vec!["sshd -t refused it\nline two".into()],
        );
        status.instance_id = Some("rpi-imager-1".into());
        status.certificates = vec![("batten-80".into(), "AB:CD".into(), true)];
        let path = write(&pi, &status).unwrap().unwrap();
        assert_eq!(path, "/boot/firmware/batten-status.txt");
        let text =
            std::fs::read_to_string(dir.path().join("boot/firmware/batten-status.txt")).unwrap();
        assert!(
            text.starts_with("batten on this Raspberry Pi: failed\n"),
            "{text}"
        );
        assert!(
            text.contains("  - sshd -t refused it\n    line two\n"),
            "{text}"
        );
        assert!(text.contains("SHA256:"), "{text}");
        assert!(text.contains("(ED25519, 256 bits)"), "{text}");
        assert!(text.contains("instance-id: rpi-imager-1"), "{text}");
        assert!(
            text.contains("\n  batten-80: SHA256 AB:CD (self-signed)\n"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("boot/firmware/batten-status.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(json["result"], "failed");
        assert_eq!(json["host_keys"][0][0], "ED25519");
    }
}
