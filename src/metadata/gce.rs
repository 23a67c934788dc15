//! Google Compute Engine's metadata server: every request carries
//! `Metadata-Flavor: Google`; user-data and SSH keys are instance (and
//! project) attributes.

use serde_json::Value;

use super::http::Http;
use super::{FetchError, Fetched, MAX_USER_DATA, Provider, maybe_base64, optional, required_text};

/// The provider.
pub struct Gce;

const FLAVOR: [(&str, &str); 1] = [("Metadata-Flavor", "Google")];

/// `ssh-keys` lines are `USER:KEY`; the key is what sshd needs.
fn keys_of(attributes: &Value, name: &str) -> Vec<String> {
    attributes[name]
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':').map(|(_, key)| key.trim().to_string()))
        .filter(|k| !k.is_empty())
        .collect()
}

impl Provider for Gce {
    fn name(&self) -> &'static str {
        "gce"
    }

    fn fetch(&self, http: &Http) -> Result<Fetched, FetchError> {
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
