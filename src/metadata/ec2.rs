//! Amazon EC2's instance metadata service, version 2 only: a session token
//! asked for with a PUT (which a request forwarded through a misconfigured
//! proxy or a server-side request forgery cannot make), then sent with every
//! read. EC2-compatible services that speak IMDSv2 work the same way.

use super::http::{Http, Method};
use super::{
    FetchError, Fetched, MAX_DOCUMENT_BYTES, MAX_USER_DATA, Provider, optional, required_text, text,
};

/// The provider.
pub struct Ec2;

/// The session token's lifetime: six hours, as cloud-init and Afterburn ask.
const TOKEN_TTL: &str = "21600";

/// More keys than this is not an owner's list.
const MAX_KEYS: usize = 100;

impl Provider for Ec2 {
    fn name(&self) -> &'static str {
        "ec2"
    }

    fn fetch(&self, http: &Http, _default_user: Option<&str>) -> Result<Fetched, FetchError> {
        let path = "/latest/api/token";
        let answer = http.request(
            Method::Put,
            path,
            &[("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL)],
            4096,
        )?;
        if answer.status != 200 {
            return Err(FetchError::answer(
                http,
                path,
                format!(
                    "HTTP {} instead of a session token; batten speaks IMDSv2 only (enable it with HttpTokens=required or optional)",
                    answer.status
                ),
            ));
        }
        let token = text(http, path, answer.body)?.trim().to_string();
        if token.is_empty()
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=_-.".contains(&b))
        {
            return Err(FetchError::answer(
                http,
                path,
                "the session token is not a token",
            ));
        }
        let auth = [("X-aws-ec2-metadata-token", token.as_str())];

        let instance_id = required_text(http, "/latest/meta-data/instance-id", &auth, 1024)?;
        let user_data = optional(http, "/latest/user-data", &auth, MAX_USER_DATA, &[])?;
        let mut public_keys = Vec::new();
        let path = "/latest/meta-data/public-keys/";
        let listing = optional(http, path, &auth, MAX_DOCUMENT_BYTES, &[])?.unwrap_or_default();
        for line in text(http, path, listing)?.lines().take(MAX_KEYS) {
            // `0=keyname`: the index is all batten needs, and all it puts
            // in a path.
            let index = line
                .split('=')
                .next()
                .unwrap_or_default()
                .trim_end_matches('/');
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FetchError::answer(
                    http,
                    path,
                    format!("{line:?} is not `INDEX=NAME`"),
                ));
            }
            let key_path = format!("/latest/meta-data/public-keys/{index}/openssh-key");
            public_keys.extend(
                required_text(http, &key_path, &auth, MAX_DOCUMENT_BYTES)?
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
        Ok(Fetched {
            user_data,
            instance_id,
            public_keys,
        })
    }
}
