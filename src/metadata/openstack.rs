//! OpenStack's metadata service (Nova): `meta_data.json` (the instance's
//! `uuid` and its `public_keys`) and `user_data`, under `openstack/latest`.
//! The config drive, the same files on a disk labelled `config-2`, is a
//! local source read by the first stage.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::http::{Http, Method};
use super::{FetchError, Fetched, MAX_DOCUMENT_BYTES, MAX_USER_DATA, Provider, optional};

/// The provider.
pub struct OpenStack;

#[derive(Deserialize)]
struct MetaData {
    uuid: String,
    #[serde(default)]
    public_keys: BTreeMap<String, String>,
}

impl Provider for OpenStack {
    fn name(&self) -> &'static str {
        "openstack"
    }

    fn fetch(&self, http: &Http, _default_user: Option<&str>) -> Result<Fetched, FetchError> {
        let path = "/openstack/latest/meta_data.json";
        let answer = http.request(Method::Get, path, &[], MAX_DOCUMENT_BYTES)?;
        if answer.status != 200 {
            return Err(FetchError::answer(
                http,
                path,
                format!("HTTP {}", answer.status),
            ));
        }
        let meta: MetaData = serde_json::from_slice(&answer.body)
            .map_err(|e| FetchError::answer(http, path, format!("not OpenStack meta-data: {e}")))?;
        let user_data = optional(http, "/openstack/latest/user_data", &[], MAX_USER_DATA, &[])?;
        Ok(Fetched {
            user_data,
            instance_id: meta.uuid,
            public_keys: meta
                .public_keys
                .into_values()
                .flat_map(|k| k.lines().map(str::to_string).collect::<Vec<_>>())
                .collect(),
        })
    }
}
