//! The HTTP client for metadata services: plain HTTP to one link-local
//! address, bounded in every way a hostile or broken service could stretch
//! it. No proxy (an environment variable must not send the owner's keys
//! elsewhere), no redirects, a time limit on each request that covers the
//! body too, a size limit on every body, and a retry budget for the whole
//! fetch, so that a service that hangs or streams forever costs a known,
//! short time.

use std::time::{Duration, Instant};

use log::{debug, info};

/// Limits of one fetch. The defaults suit a first boot: metadata services
/// answer in milliseconds once the network is up, and the machine stays
/// closed (default-deny firewall) while batten waits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest a single request may take, connecting and reading included.
    pub per_request: Duration,
    /// Longest the whole fetch may take, retries included.
    pub overall: Duration,
    /// How many times a request that could not be made, or got a 5xx, is
    /// tried in all.
    pub attempts: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_request: Duration::from_secs(5),
            overall: Duration::from_secs(60),
            attempts: 6,
        }
    }
}

/// What a request came back with.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body, at most the limit asked for.
    pub body: Vec<u8>,
}

/// Why a request got no answer worth reading.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connection refused, timed out, reset, or the budget ran out.
    #[error("{url}: {why}")]
    Unreachable {
        /// What was asked.
        url: String,
        /// What went wrong, last attempt's reason.
        why: String,
    },
    /// The body was larger than batten reads from this path.
    #[error("{url}: the answer is larger than the {limit} bytes batten reads there")]
    TooLarge {
        /// What was asked.
        url: String,
        /// The limit.
        limit: u64,
    },
}

/// A client bound to one metadata address.
pub struct Http {
    base: String,
    limits: Limits,
    started: Instant,
}

/// An agent whose every call ends within `timeout`, body included.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(3))))
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .user_agent(concat!("batten/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// The methods batten uses.
#[derive(Clone, Copy, Debug)]
pub enum Method {
    /// A read.
    Get,
    /// EC2's session token request.
    Put,
}

impl Http {
    /// A client for `base` (`http://169.254.169.254`), with `limits`.
    pub fn new(base: &str, limits: Limits) -> Http {
        Http {
            base: base.trim_end_matches('/').to_string(),
            limits,
            started: Instant::now(),
        }
    }

    /// The address this client talks to, for messages.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Make a request to `path` (starting with `/`) with `headers`, reading
    /// at most `limit` bytes. Retried while the service cannot be reached
    /// or answers 5xx, within the attempts and the overall budget; any other
    /// status is the caller's to judge.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        limit: u64,
    ) -> Result<Answer, HttpError> {
        let url = format!("{}{path}", self.base);
        let mut why = String::new();
        for attempt in 1..=self.limits.attempts.max(1) {
            if attempt > 1 {
                let pause = Duration::from_millis(250 << (attempt - 2).min(4));
                if self.started.elapsed() + pause >= self.limits.overall {
                    break;
                }
                info!(
                    "{url}: {why}; trying again ({attempt} of {})",
                    self.limits.attempts
                );
                std::thread::sleep(pause);
            }
            let left = self.limits.overall.saturating_sub(self.started.elapsed());
            if left.is_zero() {
                break;
            }
            let timeout = self.limits.per_request.min(left);
            match self.once(&agent(timeout), timeout, method, &url, headers, limit) {
                Ok(answer) if answer.status >= 500 => why = format!("HTTP {}", answer.status),
                Ok(answer) => {
                    debug!(
                        "{url}: HTTP {} ({} bytes)",
                        answer.status,
                        answer.body.len()
                    );
                    return Ok(answer);
                }
                Err(HttpError::Unreachable { why: w, .. }) => why = w,
                Err(e) => return Err(e),
            }
        }
        if why.is_empty() {
            why = format!(
                "no time left of the {} s allowed for the metadata service",
                self.limits.overall.as_secs()
            );
        }
        Err(HttpError::Unreachable { url, why })
    }

    fn once(
        &self,
        agent: &ureq::Agent,
        timeout: Duration,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        limit: u64,
    ) -> Result<Answer, HttpError> {
        let unreachable = |e: ureq::Error| HttpError::Unreachable {
            url: url.to_string(),
            why: match e {
                ureq::Error::Timeout(_) => {
                    format!(
                        "timed out: no whole answer within {} s",
                        timeout.as_secs_f32()
                    )
                }
                other => other.to_string(),
            },
        };
        let response = match method {
            Method::Get => {
                let mut request = agent.get(url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            Method::Put => {
                let mut request = agent.put(url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.send_empty()
            }
        }
        .map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => HttpError::TooLarge {
                    url: url.to_string(),
                    limit,
                },
                other => unreachable(other),
            })?;
        Ok(Answer { status, body })
    }
}
