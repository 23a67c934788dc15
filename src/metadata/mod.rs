//! Network metadata services: user-data, instance-id and the owner's SSH
//! keys for VPS and clouds that put no seed on a disk.
//!
//! The provider is recognised as cloud-init's ds-identify and Afterburn do
//! it, from DMI strings and the kernel command line, or named with
//! `--provider`. Each provider is one module behind [`Provider`]; what it
//! fetches becomes an ordinary [`Found`] (user-data, and meta-data made of
//! the instance-id and keys), so the rest of the pipeline validates and
//! applies it exactly as it would a local seed.

mod digitalocean;
mod ec2;
mod gce;
mod hetzner;
pub mod http;
mod openstack;

use std::path::{Path, PathBuf};

use crate::input::decode::MAX_USER_DATA_BYTES;
use crate::input::sources::Found;
use http::{Http, HttpError, Limits};

/// The link-local address every supported provider serves metadata on.
pub const METADATA_ADDRESS: &str = "http://169.254.169.254";

/// Most batten reads of a metadata document that is not user-data.
pub const MAX_DOCUMENT_BYTES: u64 = 1 << 20;

/// Most batten reads of user-data: what it would read from a disk.
pub const MAX_USER_DATA: u64 = MAX_USER_DATA_BYTES as u64;

/// What a provider gave.
#[derive(Debug, Default, PartialEq)]
pub struct Fetched {
    /// The user-data, as served (gzip and multipart are taken apart later);
    /// `None` when the instance has none.
    pub user_data: Option<Vec<u8>>,
    /// The instance-id, checked later with meta-data's grammar.
    pub instance_id: String,
    /// The owner's public keys, one OpenSSH line each, checked later.
    pub public_keys: Vec<String>,
}

/// Why a provider gave nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The service could not be reached or did not answer in time.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The service answered, but not as the provider documents.
    #[error("{url}: {why}")]
    Answer {
        /// What was asked.
        url: String,
        /// What was wrong with the answer.
        why: String,
    },
}

impl FetchError {
    fn answer(http: &Http, path: &str, why: impl Into<String>) -> FetchError {
        FetchError::Answer {
            url: format!("{}{path}", http.base()),
            why: why.into(),
        }
    }
}

/// One cloud's metadata service.
pub trait Provider {
    /// Its name in messages and on the command line (`--provider`).
    fn name(&self) -> &'static str;
    /// Fetch user-data, instance-id and keys. `default_user` is the image's
    /// default account, for providers whose keys name their user (GCE).
    fn fetch(&self, http: &Http, default_user: Option<&str>) -> Result<Fetched, FetchError>;
}

/// The providers batten knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Amazon EC2 and services that speak its IMDSv2 API.
    Ec2,
    /// OpenStack's metadata service (Nova).
    Openstack,
    /// Hetzner Cloud.
    Hetzner,
    /// DigitalOcean.
    Digitalocean,
    /// Google Compute Engine.
    Gce,
}

impl Kind {
    /// The provider's implementation.
    pub fn provider(self) -> Box<dyn Provider> {
        match self {
            Kind::Ec2 => Box::new(ec2::Ec2),
            Kind::Openstack => Box::new(openstack::OpenStack),
            Kind::Hetzner => Box::new(hetzner::Hetzner),
            Kind::Digitalocean => Box::new(digitalocean::DigitalOcean),
            Kind::Gce => Box::new(gce::Gce),
        }
    }

    /// Its name, as `--provider` spells it.
    pub fn name(self) -> &'static str {
        self.provider().name()
    }

    /// The provider a cloud-init datasource name or an Ignition platform id
    /// stands for.
    fn from_word(word: &str) -> Option<Kind> {
        match word.to_ascii_lowercase().as_str() {
            "ec2" | "aws" => Some(Kind::Ec2),
            "openstack" | "openstack-metadata" => Some(Kind::Openstack),
            "hetzner" => Some(Kind::Hetzner),
            "digitalocean" => Some(Kind::Digitalocean),
            "gce" | "gcp" => Some(Kind::Gce),
            _ => None,
        }
    }
}

/// What batten may learn about the machine it runs on. Tests give their
/// own DMI directory.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Usually `/sys/class/dmi/id`.
    pub dmi_dir: PathBuf,
    /// The kernel command line.
    pub cmdline: Option<String>,
}

impl Machine {
    /// The running machine, or DMI strings from `dmi_dir` when given.
    pub fn live(dmi_dir: Option<&Path>) -> Machine {
        Machine {
            dmi_dir: dmi_dir.map_or_else(|| PathBuf::from("/sys/class/dmi/id"), Path::to_path_buf),
            cmdline: std::fs::read_to_string("/proc/cmdline").ok(),
        }
    }

    fn dmi(&self, field: &str) -> String {
        std::fs::read_to_string(self.dmi_dir.join(field))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }
}

/// A recognised provider and what gave it away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detected {
    /// The provider.
    pub kind: Kind,
    /// Why batten thinks so, for `status` and the console.
    pub why: String,
}

/// Asset tags OpenStack clouds put in DMI, as ds-identify lists them.
const OPENSTACK_ASSET_TAGS: &[&str] = &[
    "OpenTelekomCloud",
    "SAP CCloud VM",
    "HUAWEICLOUD",
    "Samsung Cloud Platform",
    "OpenStack Nova",
    "OpenStack Compute",
];

/// Recognise the provider: the kernel command line first (`ci.ds=`,
/// `ci.datasource=`, `ds=`, `ignition.platform.id=`), then DMI.
pub fn detect(machine: &Machine) -> Option<Detected> {
    if let Some(cmdline) = &machine.cmdline {
        for word in cmdline.split_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            if !["ci.ds", "ci.datasource", "ds", "ignition.platform.id"].contains(&key) {
                continue;
            }
            let name = value.split(';').next().unwrap_or_default();
            if let Some(kind) = Kind::from_word(name) {
                return Some(Detected {
                    kind,
                    why: format!("the kernel command line says {key}={name}"),
                });
            }
        }
    }
    let vendor = machine.dmi("sys_vendor");
    let product = machine.dmi("product_name");
    let serial = machine.dmi("product_serial");
    let asset = machine.dmi("chassis_asset_tag");
    let uuid = machine.dmi("product_uuid").to_ascii_lowercase();
    let found = |kind, why: String| Some(Detected { kind, why });
    if vendor == "Hetzner" {
        return found(Kind::Hetzner, "DMI sys_vendor is Hetzner".into());
    }
    if vendor == "DigitalOcean" {
        return found(Kind::Digitalocean, "DMI sys_vendor is DigitalOcean".into());
    }
    if product == "Google Compute Engine" || product == "Google" {
        return found(Kind::Gce, format!("DMI product_name is {product}"));
    }
    if serial.starts_with("GoogleCloud-") {
        return found(
            Kind::Gce,
            "DMI product_serial starts with GoogleCloud-".into(),
        );
    }
    if product == "OpenStack Nova" || product == "OpenStack Compute" {
        return found(Kind::Openstack, format!("DMI product_name is {product}"));
    }
    if OPENSTACK_ASSET_TAGS.contains(&asset.as_str()) {
        return found(Kind::Openstack, format!("DMI chassis_asset_tag is {asset}"));
    }
    if ec2_uuid(&uuid) {
        return found(Kind::Ec2, "DMI product_uuid begins with ec2".into());
    }
    None
}

/// EC2 system UUIDs begin with `ec2`, or, read little-endian, their first
/// group does (`45e12aec-...`).
fn ec2_uuid(uuid: &str) -> bool {
    if uuid.starts_with("ec2") {
        return true;
    }
    let first = uuid.split('-').next().unwrap_or_default();
    first.len() == 8
        && first.is_char_boundary(8)
        && (0..4)
            .rev()
            .map(|i| &first[i * 2..i * 2 + 2])
            .collect::<String>()
            .starts_with("ec2")
}

/// Fetch from `kind`'s service at `base` within `limits`, and turn the
/// answer into a [`Found`] the rest of the pipeline reads as a seed.
pub fn fetch(
    kind: Kind,
    base: &str,
    limits: Limits,
    default_user: Option<&str>,
) -> Result<Found, FetchError> {
    let provider = kind.provider();
    let http = Http::new(base, limits);
    log::info!(
        "asking the {} metadata service at {} for user-data",
        provider.name(),
        http.base()
    );
    let fetched = provider.fetch(&http, default_user)?;
    let meta = serde_json::json!({
        "instance-id": fetched.instance_id,
        "public-keys": fetched.public_keys,
    });
    let source = format!("{} metadata service ({})", provider.name(), http.base());
    Ok(Found {
        user_data_name: format!("{} user-data", provider.name()),
        user_data: fetched.user_data.unwrap_or_default(),
        meta_data: Some((
            format!("{} meta-data", provider.name()),
            serde_json::to_vec(&meta).unwrap_or_default(),
        )),
        source,
        platform: provider.name(),
        in_root: None,
    })
}

/// A document that must be there: GET `path`, HTTP 200, UTF-8 text,
/// trimmed (an instance-id, say).
fn required_text(
    http: &Http,
    path: &str,
    headers: &[(&str, &str)],
    limit: u64,
) -> Result<String, FetchError> {
    let answer = http.request(http::Method::Get, path, headers, limit)?;
    if answer.status != 200 {
        return Err(FetchError::answer(
            http,
            path,
            format!("HTTP {}", answer.status),
        ));
    }
    Ok(text(http, path, answer.body)?.trim().to_string())
}

/// A document that may be missing: GET `path`; its body on HTTP 200,
/// `None` on 404 (and on the other statuses in `none`), an error otherwise.
fn optional(
    http: &Http,
    path: &str,
    headers: &[(&str, &str)],
    limit: u64,
    none: &[u16],
) -> Result<Option<Vec<u8>>, FetchError> {
    let answer = http.request(http::Method::Get, path, headers, limit)?;
    match answer.status {
        200 => Ok(Some(answer.body)),
        404 => Ok(None),
        status if none.contains(&status) => Ok(None),
        status => Err(FetchError::answer(http, path, format!("HTTP {status}"))),
    }
}

/// Text of a metadata document, which must be UTF-8.
fn text(http: &Http, path: &str, body: Vec<u8>) -> Result<String, FetchError> {
    String::from_utf8(body)
        .map_err(|_| FetchError::answer(http, path, "the answer is not UTF-8 text"))
}

/// User-data some providers deliver base64-encoded (Hetzner, GCE with
/// `user-data-encoding: base64`): decoded when it is valid base64 and does
/// not look like a cloud-config or script already.
fn maybe_base64(body: Vec<u8>) -> Vec<u8> {
    use base64::Engine as _;
    if body.starts_with(b"#")
        || body.starts_with(&[0x1f, 0x8b])
        || body.starts_with(b"Content-Type")
    {
        return body;
    }
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(fields: &[(&str, &str)], cmdline: &str) -> (tempfile::TempDir, Machine) {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in fields {
            std::fs::write(dir.path().join(name), format!("{value}\n")).unwrap();
        }
        let m = Machine {
            dmi_dir: dir.path().to_path_buf(),
            cmdline: Some(cmdline.to_string()),
        };
        (dir, m)
    }

    fn kind(fields: &[(&str, &str)], cmdline: &str) -> Option<Kind> {
        let (_dir, m) = machine(fields, cmdline);
        detect(&m).map(|d| d.kind)
    }

    #[test]
    fn providers_are_recognised_by_dmi_as_ds_identify_does() {
        assert_eq!(kind(&[("sys_vendor", "Hetzner")], ""), Some(Kind::Hetzner));
        assert_eq!(
            kind(&[("sys_vendor", "DigitalOcean")], ""),
            Some(Kind::Digitalocean)
        );
        assert_eq!(
            kind(&[("product_name", "Google Compute Engine")], ""),
            Some(Kind::Gce)
        );
        assert_eq!(
            kind(&[("product_serial", "GoogleCloud-1234")], ""),
            Some(Kind::Gce)
        );
        assert_eq!(
            kind(&[("product_name", "OpenStack Nova")], ""),
            Some(Kind::Openstack)
        );
        assert_eq!(
            kind(&[("chassis_asset_tag", "HUAWEICLOUD")], ""),
            Some(Kind::Openstack)
        );
        assert_eq!(
            kind(
                &[("product_uuid", "EC2E1916-9099-7CAF-FD21-012345ABCDEF")],
                ""
            ),
            Some(Kind::Ec2)
        );
        assert_eq!(
            kind(
                &[("product_uuid", "45E12AEC-DCD1-B213-94ED-012345ABCDEF")],
                ""
            ),
            Some(Kind::Ec2)
        );
        assert_eq!(
            kind(
                &[("sys_vendor", "QEMU"), ("product_uuid", "12345678-0000")],
                ""
            ),
            None
        );
        assert_eq!(
            kind(&[("sys_vendor", "Hetzner Online")], ""),
            None,
            "exact match only"
        );
    }

    #[test]
    fn the_command_line_wins_and_names_the_reason() {
        let (_dir, m) = machine(&[("sys_vendor", "Hetzner")], "ro ci.ds=Ec2 quiet");
        let d = detect(&m).unwrap();
        assert_eq!(d.kind, Kind::Ec2);
        assert!(d.why.contains("ci.ds=Ec2"), "{}", d.why);
        assert_eq!(kind(&[], "ignition.platform.id=gcp"), Some(Kind::Gce));
        assert_eq!(kind(&[], "ds=nocloud;s=http://203.0.113.1/"), None);
    }

    #[test]
    fn base64_user_data_is_decoded_only_when_it_is_base64() {
        assert_eq!(
            maybe_base64(b"I2Nsb3VkLWNvbmZpZwo=".to_vec()),
            b"#cloud-config\n"
        );
        assert_eq!(
            maybe_base64(b"#cloud-config\n".to_vec()),
            b"#cloud-config\n"
        );
        assert_eq!(maybe_base64(b"not base64!".to_vec()), b"not base64!");
    }
}
