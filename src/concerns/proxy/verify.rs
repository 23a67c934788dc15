//! Checking the proxy: nginx accepts its configuration, each site asks
//! for a password and answers with one, over TLS where it should.

use crate::concerns::report::{Inputs, Report, Status, config_check};
use crate::host::daemon::Daemon;

/// One HTTP/1.0 request to the proxy on loopback; the status code.
fn http_status(port: u16, host: &str, auth: Option<&str>) -> Result<u16, String> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("cannot connect: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut request = format!("GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: batten-verify\r\n");
    if let Some(a) = auth {
        use base64::Engine;
        request.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(a)
        ));
    }
    request.push_str("\r\n");
    conn.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut head = vec![0u8; 64];
    let n = conn.read(&mut head).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&head[..n]);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))
}

/// The proxy refuses a request without credentials (401) and lets one with
/// a generated password through (502 only means the panel is down).
fn proxy_request(inp: &Inputs, site: &crate::input::model::ProxySite, name: &str, r: &mut Report) {
    let id = format!("proxy.{name}.http");
    if site.tls.is_some() {
        r.add(
            &id,
            Status::Skip,
            format!("a request to port {}", site.listen),
            "TLS sites are checked by nginx -t only in this build",
        );
        return;
    }
    let host = site
        .server_names
        .first()
        .filter(|n| *n != "_" && !n.starts_with('*'))
        .cloned()
        .unwrap_or_else(|| "localhost".into());
    match http_status(site.listen, &host, None) {
        Ok(401) => r.add(
            &id,
            Status::Pass,
            format!("a request to port {} without a password", site.listen),
            "401",
        ),
        Ok(code) => r.add(
            &id,
            Status::Fail,
            format!("a request to port {} without a password", site.listen),
            format!("{code}, not 401: the panel is open"),
        ),
        Err(e) => r.add(
            &id,
            Status::Fail,
            format!("a request to port {}", site.listen),
            e,
        ),
    }
    let credentials = inp
        .root
        .read_to_string(crate::concerns::proxy::htpasswd::CREDENTIALS)
        .ok()
        .flatten()
        .map(|t| crate::concerns::proxy::htpasswd::parse_credentials(&t))
        .unwrap_or_default();
    let Some(c) = credentials.iter().find(|c| c.site == name) else {
        return;
    };
    let id = format!("proxy.{name}.login");
    let what = format!("a request to port {} as {}", site.listen, c.user);
    match http_status(
        site.listen,
        &host,
        Some(&format!("{}:{}", c.user, c.password)),
    ) {
        Ok(401) => r.add(
            &id,
            Status::Fail,
            what,
            "401: the generated password does not work",
        ),
        Ok(502 | 504) => r.add(
            &id,
            Status::Warn,
            what,
            "the password works, but the panel behind it does not answer",
        ),
        Ok(code) => r.add(&id, Status::Pass, what, format!("{code}")),
        Err(e) => r.add(&id, Status::Fail, what, e),
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
        if inp.root.is_host() {
            proxy_request(inp, site, &name, r);
        }
    }
}
