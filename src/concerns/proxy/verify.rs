//! Checking the proxy: nginx accepts its configuration, each site asks
//! for a password and answers with one, over TLS with the certificate in
//! place unless `tls: off` (warned), and plain HTTP never asks for it.

use super::certificate::Described;
use super::htpasswd::{self, Credential};
use super::nginx::TlsFiles;
use super::probe::{self, Https};
use super::tls;
use crate::concerns::report::{Inputs, Report, Status, config_check};
use crate::host::daemon::Daemon;
use crate::input::model::{ProxySite, Tls};

/// The host name requests are sent for: the site's first plain name.
fn request_host(site: &ProxySite) -> String {
    if let Tls::Acme(acme) = &site.tls {
        return acme.domain.clone();
    }
    site.server_names
        .first()
        .filter(|n| *n != "_" && !n.starts_with('*'))
        .cloned()
        .unwrap_or_else(|| "localhost".into())
}

/// The generated credential of the site, when batten made one.
fn credential(inp: &Inputs, name: &str) -> Option<Credential> {
    inp.root
        .read_to_string(htpasswd::CREDENTIALS)
        .ok()
        .flatten()
        .map(|t| htpasswd::parse_credentials(&t))
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.site == name)
}

/// What an answer to a request without credentials means.
fn judge_anonymous(r: &mut Report, id: &str, what: String, code: u16) {
    if code == 401 {
        r.add(id, Status::Pass, what, "401");
    } else {
        r.add(
            id,
            Status::Fail,
            what,
            format!("{code}, not 401: the panel is open"),
        );
    }
}

/// What an answer to a request with the generated password means.
fn judge_login(r: &mut Report, id: &str, what: String, code: u16) {
    match code {
        401 => r.add(
            id,
            Status::Fail,
            what,
            "401: the generated password does not work",
        ),
        502 | 504 => r.add(
            id,
            Status::Warn,
            what,
            "the password works, but the panel behind it does not answer",
        ),
        code => r.add(id, Status::Pass, what, format!("{code}")),
    }
}

/// A plain-HTTP site: 401 without a password, through with one.
fn plain_requests(inp: &Inputs, site: &ProxySite, name: &str, r: &mut Report) {
    let port = site.serving_port();
    let host = request_host(site);
    let id = format!("proxy.{name}.http");
    match probe::http(port, &host, None) {
        Ok((code, _)) => judge_anonymous(
            r,
            &id,
            format!("a request to port {port} without a password"),
            code,
        ),
        Err(e) => return r.add(&id, Status::Fail, format!("a request to port {port}"), e),
    }
    let Some(c) = credential(inp, name) else {
        return;
    };
    let id = format!("proxy.{name}.login");
    let what = format!("a request to port {port} as {}", c.user);
    match probe::http(port, &host, Some(&format!("{}:{}", c.user, c.password))) {
        Ok((code, _)) => judge_login(r, &id, what, code),
        Err(e) => r.add(&id, Status::Fail, what, e),
    }
}

/// A TLS site's certificate: in place, the one batten recorded, and
/// lasting 14 days more at least.
fn certificate_check(
    inp: &Inputs,
    site_tls: &Tls,
    name: &str,
    files: &TlsFiles,
    r: &mut Report,
) -> Option<Described> {
    let id = format!("proxy.{name}.certificate");
    let what = format!("{name}'s certificate {}", files.certificate);
    let Some(d) = tls::read(inp.root, &files.certificate) else {
        r.add(&id, Status::Fail, what, "missing, or not a PEM certificate");
        return None;
    };
    let left = d.not_after.saturating_sub(crate::state::now_secs());
    let kind = if d.self_signed {
        "self-signed"
    } else {
        "issued by a CA"
    };
    let recorded = crate::state::State::load(inp.root)
        .ok()
        .and_then(|s| s.certificates.into_iter().find(|c| c.site == name));
    if let Some(rec) = recorded.filter(|rec| rec.fingerprint != d.fingerprint) {
        r.add(
            &id,
            Status::Fail,
            what,
            format!(
                "not the certificate batten recorded (SHA256 {}, now {}): replaced since; `batten run --force` records the one in place",
                rec.fingerprint, d.fingerprint
            ),
        );
    } else if matches!(site_tls, Tls::Acme(_)) && d.self_signed {
        let last = crate::state::State::load(inp.root)
            .ok()
            .and_then(|s| s.acme.into_iter().find(|a| a.site == name))
            .map_or_else(
                || {
                    "batten-acme.service has not run yet (it runs once the network is up)"
                        .to_string()
                },
                |a| format!("the last ACME round ({}) said: {}", a.at, a.said),
            );
        r.add(
            &id,
            Status::Warn,
            what,
            format!(
                "still the self-signed one (SHA-256 {}) until the CA issues one; {last}",
                d.fingerprint
            ),
        );
    } else if left < 14 * 24 * 3600 {
        r.add(
            &id,
            Status::Fail,
            what,
            format!("{kind}, expires in {} day(s): `batten run --force` makes a new one, or see `batten acme` for an ACME site", left / 86400),
        );
    } else {
        r.add(
            &id,
            Status::Pass,
            what,
            format!(
                "{kind}, SHA-256 {}, {} more days",
                d.fingerprint,
                left / 86400
            ),
        );
    }
    Some(d)
}

/// A TLS site's requests: over TLS with the certificate's key pinned, 401
/// without a password and through with one; its plain-HTTP port only
/// redirecting.
fn tls_requests(inp: &Inputs, site: &ProxySite, name: &str, d: &Described, r: &mut Report) {
    let port = site.serving_port();
    let host = request_host(site);
    let id = format!("proxy.{name}.https");
    let what = format!("an HTTPS request to port {port} without a password");
    match probe::https(inp.runner, port, &host, &d.pin, None) {
        Ok(Https::Status(code)) => judge_anonymous(r, &id, what, code),
        Ok(Https::OtherKey) => r.add(
            &id,
            Status::Fail,
            what,
            format!("the site answers with another key than the certificate in place (SHA256 {})", d.fingerprint),
        ),
        Ok(Https::NoCurl) => r.add(
            &id,
            Status::Warn,
            what,
            "not checked: curl is not installed (install curl to have verify request the site over TLS)",
        ),
        Err(e) => r.add(&id, Status::Fail, what, e),
    }
    if let Some(c) = credential(inp, name) {
        let id = format!("proxy.{name}.login");
        let what = format!("an HTTPS request to port {port} as {}", c.user);
        match probe::https(
            inp.runner,
            port,
            &host,
            &d.pin,
            Some((&c.user, &c.password)),
        ) {
            Ok(Https::Status(code)) => judge_login(r, &id, what, code),
            Ok(Https::OtherKey | Https::NoCurl) => {}
            Err(e) => r.add(&id, Status::Fail, what, e),
        }
    }
    if let Some(redirect) = site.redirect_port() {
        let id = format!("proxy.{name}.redirect");
        let what = format!("a plain-HTTP request to port {redirect}");
        match probe::http(redirect, &host, None) {
            Ok((301 | 302 | 307 | 308, Some(to))) if to.starts_with("https://") => {
                r.add(&id, Status::Pass, what, format!("redirected to {to}"))
            }
            Ok((401, _)) => r.add(
                &id,
                Status::Fail,
                what,
                "401: plain HTTP asks for the password, which would then travel in clear",
            ),
            Ok((code, to)) => r.add(
                &id,
                Status::Fail,
                what,
                format!("{code} {}, not a redirect to HTTPS", to.unwrap_or_default()),
            ),
            Err(e) => r.add(&id, Status::Fail, what, e),
        }
    }
}

/// Every check of the proxy.
pub fn verify(inp: &Inputs, r: &mut Report) {
    if inp.user_data.batten.proxy.is_empty() {
        return;
    }
    config_check(inp, r, "proxy.config", Daemon::Nginx);
    for site in &inp.user_data.batten.proxy {
        let name = crate::input::model::site_name(site);
        let text = inp
            .root
            .read_following_within(&format!("/etc/nginx/sites-enabled/{name}"))
            .ok()
            .flatten()
            .or_else(|| {
                inp.root
                    .read_following_within(&format!("/etc/nginx/conf.d/{name}.conf"))
                    .ok()
                    .flatten()
            })
            .or_else(|| {
                inp.root
                    .read_following_within(&format!("/etc/nginx/http.d/{name}.conf"))
                    .ok()
                    .flatten()
            })
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        match text {
            Some(t) if t.contains("auth_basic \"") && t.contains("auth_basic_user_file") => r.add(
                &format!("proxy.{name}"),
                Status::Pass,
                format!("site {name}"),
                "enabled, behind basic auth",
            ),
            Some(_) => r.add(
                &format!("proxy.{name}"),
                Status::Fail,
                format!("site {name}"),
                "enabled without basic auth",
            ),
            None => r.add(
                &format!("proxy.{name}"),
                Status::Fail,
                format!("site {name}"),
                "not enabled",
            ),
        }
        match tls::files(site, &name) {
            None => r.add(
                &format!("proxy.{name}.tls"),
                Status::Warn,
                format!("site {name}"),
                "tls: off: its password travels in clear text with every request",
            ),
            Some(files) => {
                let served = certificate_check(inp, &site.tls, &name, &files, r);
                if let Some(d) = served.filter(|_| inp.root.is_host()) {
                    tls_requests(inp, site, &name, &d, r);
                }
            }
        }
        if inp.root.is_host() && !site.tls.is_on() {
            plain_requests(inp, site, &name, r);
        }
    }
}
