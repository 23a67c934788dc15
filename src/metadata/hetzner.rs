//! Hetzner Cloud's metadata service (`/hetzner/v1/`): no headers; the keys
//! as a JSON list; user-data that may come base64-encoded.

use super::http::Http;
use super::{
    FetchError, Fetched, MAX_DOCUMENT_BYTES, MAX_USER_DATA, Provider, maybe_base64, optional,
    required_text,
};

/// The provider.
pub struct Hetzner;

impl Provider for Hetzner {
    fn name(&self) -> &'static str {
        "hetzner"
    }

    fn fetch(&self, http: &Http, _default_user: Option<&str>) -> Result<Fetched, FetchError> {
        let instance_id = required_text(http, "/hetzner/v1/metadata/instance-id", &[], 1024)?;
        let path = "/hetzner/v1/metadata/public-keys";
        let public_keys = match optional(http, path, &[], MAX_DOCUMENT_BYTES, &[])? {
            Some(body) => serde_json::from_slice::<Vec<String>>(&body).map_err(|e| {
                FetchError::answer(http, path, format!("not a JSON list of keys: {e}"))
            })?,
            None => Vec::new(),
        };
        // 204 (or an empty body): the instance has no user-data.
        let user_data = optional(http, "/hetzner/v1/userdata", &[], MAX_USER_DATA, &[204])?
            .filter(|body| !body.is_empty())
            .map(maybe_base64);
        Ok(Fetched {
            user_data,
            instance_id,
            public_keys,
        })
    }
}
