//! DigitalOcean's metadata service: everything in one JSON document,
//! `/metadata/v1.json`.

use serde::Deserialize;

use super::http::{Http, Method};
use super::{FetchError, Fetched, MAX_USER_DATA, Provider};

/// The provider.
pub struct DigitalOcean;

#[derive(Deserialize)]
struct Document {
    droplet_id: u64,
    #[serde(default)]
    public_keys: Vec<String>,
    #[serde(default)]
    user_data: Option<String>,
}

impl Provider for DigitalOcean {
    fn name(&self) -> &'static str {
        "digitalocean"
    }

    fn fetch(&self, http: &Http, _default_user: Option<&str>) -> Result<Fetched, FetchError> {
        let path = "/metadata/v1.json";
        // The document carries the user-data, so it gets user-data's limit
        // (and a little room for the rest).
        let answer = http.request(Method::Get, path, &[], MAX_USER_DATA + (1 << 20))?;
        if answer.status != 200 {
            return Err(FetchError::answer(
                http,
                path,
                format!("HTTP {}", answer.status),
            ));
        }
        let doc: Document = serde_json::from_slice(&answer.body).map_err(|e| {
            FetchError::answer(http, path, format!("not the droplet's metadata: {e}"))
        })?;
        Ok(Fetched {
            user_data: doc
                .user_data
                .filter(|u| !u.is_empty())
                .map(String::into_bytes),
            instance_id: doc.droplet_id.to_string(),
            public_keys: doc.public_keys,
        })
    }
}
