//! meta-data: the small file beside user-data that names the instance.
//!
//! The instance-id decides whether this boot is a first boot: a machine
//! sealed under one id runs again when it boots with another (a clone, a
//! new VPS from the same image). NoCloud seeds write `instance-id`, Raspberry
//! Pi OS images `instance_id`, and OpenStack's `meta_data.json` `uuid`.

use super::grammar;
use super::model::AuthorizedKey;
use super::validate::parse_authorized_key;
use super::yaml::{self, Node, Value};

/// What batten reads from meta-data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetaData {
    /// The instance-id, grammar-checked.
    pub instance_id: Option<String>,
    /// Keys the provider gives for the default user (`public-keys`).
    pub public_keys: Vec<AuthorizedKey>,
    /// The whole document as JSON, as jinja templates see it
    /// (`ds.meta_data`); `None` for an empty file.
    pub document: Option<serde_json::Value>,
}

/// Parse meta-data (YAML, or JSON, which YAML reads too). Returns a message
/// naming the file and position on failure.
pub fn parse(name: &str, bytes: &[u8]) -> Result<MetaData, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("{name}: meta-data is not UTF-8 text ({e})"))?;
    let text = text.trim_start_matches('\u{feff}').replace("\r\n", "\n");
    let node = yaml::parse(&text).map_err(|e| {
        format!(
            "{name}:{}:{}: invalid meta-data: {}",
            e.line, e.column, e.message
        )
    })?;
    let mut meta = MetaData::default();
    if matches!(node.value, Value::Null) {
        return Ok(meta);
    }
    meta.document = Some(yaml::to_json(&node));
    if node.as_map().is_none() {
        return Err(format!(
            "{name}:{}:{}: meta-data must be a mapping like `instance-id: iid-local01`",
            node.pos.line, node.pos.column
        ));
    }
    for key in ["instance-id", "instance_id", "uuid"] {
        if let Some(v) = node.get(key) {
            let text = v.scalar_text().unwrap_or_default();
            let id = grammar::instance_id(text.trim())
                .map_err(|e| format!("{name}:{}:{}: {key}: {e}", v.pos.line, v.pos.column))?;
            meta.instance_id = Some(id.to_string());
            break;
        }
    }
    for key in ["public-keys", "public_keys"] {
        if let Some(v) = node.get(key) {
            meta.public_keys = keys(name, v)?;
            break;
        }
    }
    Ok(meta)
}

/// `public-keys` comes as a string, a list, or (OpenStack) a name-to-key map.
fn keys(name: &str, node: &Node) -> Result<Vec<AuthorizedKey>, String> {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) => items.iter().collect(),
        Value::Map(entries) => entries.iter().map(|(_, v)| v).collect(),
        Value::Null => Vec::new(),
        _ => vec![node],
    };
    let mut out = Vec::new();
    for item in items {
        let Some(text) = item.scalar_text() else {
            continue;
        };
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let key = parse_authorized_key(line).map_err(|e| {
                format!(
                    "{name}:{}:{}: public-keys: {e}",
                    item.pos.line, item.pos.column
                )
            })?;
            out.push(key);
        }
    }
    Ok(out)
}

/// The NoCloud instance-id from the kernel command line
/// (`ds=nocloud;i=ID`, as Raspberry Pi Imager writes it; `instance-id=` is
/// the long form).
pub fn instance_id_from_cmdline(cmdline: &str) -> Option<String> {
    cmdline
        .split_whitespace()
        .filter_map(|arg| arg.strip_prefix("ds="))
        .filter(|ds| {
            let name = ds.split(';').next().unwrap_or("").to_ascii_lowercase();
            name == "nocloud" || name == "nocloud-net" || name == "nocloud_net"
        })
        .flat_map(|ds| ds.split(';').skip(1))
        .find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == "i" || k == "instance-id").then(|| v.to_string())
        })
        .filter(|id| grammar::instance_id(id).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_and_openstack() {
        let m = parse("m", b"instance-id: iid-local01\nlocal-hostname: pi\n").unwrap();
        assert_eq!(m.instance_id.as_deref(), Some("iid-local01"));
        let m = parse("m", b"instance_id: rpi-imager-1700000000\n").unwrap();
        assert_eq!(m.instance_id.as_deref(), Some("rpi-imager-1700000000"));
        let m = parse("m", br#"{"uuid": "83679162-1378-4288-a2d4-70e13ec132aa", "public_keys": {"k": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGBfY5Y7Dp1Dn4a4y6iJbBvYxVKJWB3H0cQ2m9bq6Tq3 a@b"}}"#).unwrap();
        assert_eq!(
            m.instance_id.as_deref(),
            Some("83679162-1378-4288-a2d4-70e13ec132aa")
        );
        assert_eq!(m.public_keys.len(), 1);
        assert_eq!(parse("m", b"").unwrap(), MetaData::default());
    }

    #[test]
    fn bad_meta_data_is_named() {
        let e = parse("seed/meta-data", b"instance-id: \"a b;c\"\n").unwrap_err();
        assert!(e.starts_with("seed/meta-data:1:14: instance-id:"), "{e}");
        assert!(parse("m", b"- a\n").unwrap_err().contains("mapping"));
    }

    #[test]
    fn cmdline() {
        let c = "console=serial0,115200 root=PARTUUID=1 ds=nocloud;i=rpi-imager-1732 quiet";
        assert_eq!(
            instance_id_from_cmdline(c).as_deref(),
            Some("rpi-imager-1732")
        );
        let c = "ds=nocloud-net;s=http://198.51.100.1/;instance-id=abc";
        assert_eq!(instance_id_from_cmdline(c).as_deref(), Some("abc"));
        assert_eq!(instance_id_from_cmdline("ds=ec2;i=x"), None);
        assert_eq!(instance_id_from_cmdline("quiet"), None);
    }
}
