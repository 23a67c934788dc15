//! Google Compute Engine's metadata server: every request carries
//! `Metadata-Flavor: Google`; user-data and SSH keys are instance (and
//! project) attributes.

use serde_json::Value;

use super::http::Http;
use super::{FetchError, Fetched, MAX_USER_DATA, Provider, maybe_base64, optional, required_text};

/// The provider.
pub struct Gce;

const FLAVOR: [(&str, &str); 1] = [("Metadata-Flavor", "Google")];

/// The keys of an `ssh-keys` attribute (lines `USER:KEY`) that are meant
/// for this machine's owner, as cloud-init's GCE source picks them: lines
/// for the user `cloudinit` or for the image's default user, and not past
/// the expiry a Google-managed key carries. A key for anybody else is not
/// given to the default user (often a sudoer).
fn keys_of(attributes: &Value, name: &str, default_user: Option<&str>, now: u64) -> Vec<String> {
    attributes[name]
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.is_ascii())
        .filter_map(|l| l.split_once(':'))
        .filter(|(user, _)| *user == "cloudinit" || Some(*user) == default_user)
        .map(|(_, key)| key.trim().to_string())
        .filter(|k| !k.is_empty() && !expired(k, now))
        .collect()
}

/// Whether a key's `google-ssh {"expireOn": "..."}` comment says it has
/// expired; a key without one, or with one that cannot be read, has not.
fn expired(key: &str, now: u64) -> bool {
    let Some((_, json)) = key.split_once("google-ssh ") else {
        return false;
    };
    let expire_on = serde_json::from_str::<Value>(json.trim())
        .ok()
        .and_then(|v| v["expireOn"].as_str().map(str::to_string));
    expire_on
        .as_deref()
        .and_then(crate::state::parse_utc)
        .is_some_and(|at| at < now)
}

impl Provider for Gce {
    fn name(&self) -> &'static str {
        "gce"
    }

    fn fetch(&self, http: &Http, default_user: Option<&str>) -> Result<Fetched, FetchError> {
        let now = crate::state::now_secs();
        let keys_of = |attributes: &Value, name: &str| keys_of(attributes, name, default_user, now);
        let instance_id = required_text(http, "/computeMetadata/v1/instance/id", &FLAVOR, 1024)?;

        let attributes = |path: &str| -> Result<Value, FetchError> {
            match optional(http, path, &FLAVOR, MAX_USER_DATA + (1 << 20), &[])? {
                Some(body) => serde_json::from_slice(&body).map_err(|e| {
                    FetchError::answer(http, path, format!("not a JSON object of attributes: {e}"))
                }),
                None => Ok(Value::Null),
            }
        };
        let instance = attributes("/computeMetadata/v1/instance/attributes/?recursive=true")?;
        let user_data = instance["user-data"].as_str().map(|u| {
            let bytes = u.as_bytes().to_vec();
            if instance["user-data-encoding"].as_str() == Some("base64") {
                maybe_base64(bytes)
            } else {
                bytes
            }
        });
        // Project-wide keys count unless the instance blocks them or has
        // its own legacy `sshKeys`, as in cloud-init.
        let mut public_keys = keys_of(&instance, "ssh-keys");
        let legacy = keys_of(&instance, "sshKeys");
        let blocked = instance["block-project-ssh-keys"].as_str() == Some("true");
        let use_project = !blocked && legacy.is_empty();
        public_keys.extend(legacy);
        if use_project {
            let project = attributes("/computeMetadata/v1/project/attributes/?recursive=true")?;
            public_keys.extend(keys_of(&project, "ssh-keys"));
            public_keys.extend(keys_of(&project, "sshKeys"));
        }
        Ok(Fetched {
            user_data,
            instance_id,
            public_keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owners_unexpired_keys_are_taken() {
        let attributes = serde_json::json!({"ssh-keys": "cloudinit:ssh-ed25519 AAAA one\nmallory:ssh-ed25519 BBBB two\ndebian:ssh-ed25519 CCCC three\ndebian:ssh-ed25519 DDDD google-ssh {\"userName\":\"d@x\",\"expireOn\":\"2020-01-01T00:00:00+0000\"}\ndebian:ssh-ed25519 EEEE google-ssh {\"userName\":\"d@x\",\"expireOn\":\"2999-01-01T00:00:00+0000\"}"});
        let now = crate::state::parse_utc("2026-11-25T00:00:00+0000").unwrap();
        let keys = keys_of(&attributes, "ssh-keys", Some("debian"), now);
        let blobs: Vec<&str> = keys.iter().map(|k| k.split(' ').nth(1).unwrap()).collect();
        assert_eq!(blobs, ["AAAA", "CCCC", "EEEE"]);
        assert_eq!(keys_of(&attributes, "ssh-keys", None, now).len(), 1);
    }
}
