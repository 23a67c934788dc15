//! nginx server blocks for the proxied panels, rendered as text.
//!
//! Every value placed in the text passed a grammar in `config::grammar`
//! (ports are numbers, names are DNS labels, the realm has no quotes or
//! `$`, paths are plain absolute paths), so nothing from user-data can add
//! a directive.

use std::fmt::Write as _;

use crate::input::grammar::Source;
use crate::input::model::{ProxySite, Upstream};

/// The map that turns a client's `Upgrade` into `Connection: upgrade`
/// (websockets), once for every site; http-level, so in conf.d.
pub const UPGRADE_MAP: &str = "# Written by batten: websocket upgrades for the proxied panels.\n\
map $http_upgrade $batten_connection_upgrade {\n\
    default upgrade;\n\
    ''      close;\n\
}\n";

fn upstream_url(u: &Upstream) -> String {
    match u {
        Upstream::Loopback { address, port } if address.is_ipv6() => {
            format!("http://[{address}]:{port}")
        }
        Upstream::Loopback { address, port } => format!("http://{address}:{port}"),
        Upstream::Unix { path } => format!("http://unix:{path}:"),
    }
}

/// Where a TLS site's certificate and key are, for nginx.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate (chain), PEM.
    pub certificate: String,
    /// Its private key, PEM.
    pub key: String,
    /// The directory the redirect server answers ACME HTTP-01 challenges
    /// from, for an ACME site.
    pub acme_webroot: Option<String>,
}

/// The server block(s) for one site: the proxy with basic auth, over HTTPS
/// when `tls` is given, and then for `listen: 80` or an ACME site a
/// plain-HTTP server on 80 that only redirects (and answers ACME
/// challenges), never asking for the password.
pub fn render(site: &ProxySite, htpasswd_path: &str, tls: Option<&TlsFiles>) -> String {
    let port = site.serving_port();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut out = format!(
        "# Written by batten from user-data: {scheme} on port {port} -> {}, basic auth.\n\
         # Edit the user-data and run `batten run --force` rather than this file.\n",
        upstream_url(&site.upstream)
    );
    let names = server_names(site).join(" ");
    let ssl = if tls.is_some() { " ssl" } else { "" };
    out.push_str("server {\n");
    let _ = writeln!(out, "    listen {port}{ssl};");
    let _ = writeln!(out, "    listen [::]:{port}{ssl};");
    let _ = writeln!(out, "    server_name {names};");
    if let Some(tls) = tls {
        let _ = writeln!(out, "    ssl_certificate {};", tls.certificate);
        let _ = writeln!(out, "    ssl_certificate_key {};", tls.key);
        out.push_str("    ssl_protocols TLSv1.2 TLSv1.3;\n");
        out.push_str(
            "    # Plain HTTP sent to this port is redirected, never asked for the password.\n",
        );
        out.push_str("    error_page 497 =301 https://$host:$server_port$request_uri;\n");
    }
    if !site.allow_from.is_empty() {
        out.push('\n');
        out.push_str(&allow_lines(site));
    }
    let _ = write!(
        out,
        "\n    auth_basic \"{}\";\n    auth_basic_user_file {htpasswd_path};\n\n\
         \x20   location / {{\n\
         \x20       proxy_pass {};\n\
         \x20       proxy_http_version 1.1;\n\
         \x20       proxy_set_header Host $host;\n\
         \x20       proxy_set_header X-Real-IP $remote_addr;\n\
         \x20       proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20       proxy_set_header X-Forwarded-Proto $scheme;\n\
         \x20       proxy_set_header Upgrade $http_upgrade;\n\
         \x20       proxy_set_header Connection $batten_connection_upgrade;\n\
         \x20   }}\n\
         }}\n",
        site.realm,
        upstream_url(&site.upstream)
    );
    if let (Some(redirect), Some(tls)) = (site.redirect_port(), tls) {
        let target = if port == 443 {
            "https://$host$request_uri".to_string()
        } else {
            format!("https://$host:{port}$request_uri")
        };
        let _ = write!(
            out,
            "\n# Plain HTTP only redirects to HTTPS: no password is ever asked for here.\n\
             server {{\n    listen {redirect};\n    listen [::]:{redirect};\n    server_name {names};\n"
        );
        if !site.allow_from.is_empty() && tls.acme_webroot.is_none() {
            out.push_str(&allow_lines(site));
        }
        if let Some(webroot) = &tls.acme_webroot {
            let _ = write!(
                out,
                "\n    location /.well-known/acme-challenge/ {{\n        root {webroot};\n        default_type text/plain;\n    }}\n"
            );
        }
        let _ = write!(
            out,
            "\n    location / {{\n        return 301 {target};\n    }}\n}}\n"
        );
    }
    out
}

/// The site's `server_name` words: an ACME site's domain first (the CA's
/// challenge request names it, and must reach this site's port-80 server,
/// not another site's redirect to a password), then the site's own names,
/// `_` when it has none.
fn server_names(site: &ProxySite) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if let crate::input::model::Tls::Acme(acme) = &site.tls {
        names.push(acme.domain.clone());
    }
    for n in &site.server_names {
        if !names.iter().any(|m| m.eq_ignore_ascii_case(n)) {
            names.push(n.clone());
        }
    }
    if site.server_names.is_empty() {
        names.push("_".to_string());
    }
    names
}

/// `allow_from` as nginx's allow and deny lines.
fn allow_lines(site: &ProxySite) -> String {
    let mut out = String::new();
    // nginx takes no ranges: a range is written as the networks it spans.
    for network in site.allow_from.iter().flat_map(Source::networks) {
        if network.prefix_len() == network.max_prefix_len() {
            let _ = writeln!(out, "    allow {};", network.addr());
        } else {
            let _ = writeln!(out, "    allow {network};");
        }
    }
    out.push_str("    deny all;\n");
    out
}

/// The ports a server file listens on (`listen 80 default_server;`,
/// `listen [::]:80;`, `listen 127.0.0.1:8080;`), to find a distribution
/// default site in the way.
pub fn listen_ports(text: &str) -> Vec<u16> {
    let mut ports = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix("listen") else {
            continue;
        };
        let Some(spec) = rest.split_whitespace().next() else {
            continue;
        };
        let spec = spec.trim_end_matches(';');
        let port = spec.rsplit(':').next().unwrap_or(spec);
        if let Ok(p) = port.parse::<u16>()
            && !ports.contains(&p)
        {
            ports.push(p);
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::grammar::source;
    use crate::input::model::{ProxyUser, Tls, site_name};

    fn site() -> ProxySite {
        ProxySite {
            listen: 8081,
            server_names: vec!["panel.example.org".into()],
            upstream: Upstream::Loopback {
                address: "127.0.0.1".parse().unwrap(),
                port: 8080,
            },
            realm: "Admin panel".into(),
            users: vec![ProxyUser {
                name: "admin".into(),
                password_hash: None,
            }],
            tls: Tls::Off,
            allow_from: vec![],
        }
    }

    #[test]
    fn exact_text() {
        assert_eq!(
            render(
                &site(),
                "/etc/nginx/batten-8081-panel.example.org.htpasswd",
                None
            ),
            "# Written by batten from user-data: http on port 8081 -> http://127.0.0.1:8080, basic auth.\n\
             # Edit the user-data and run `batten run --force` rather than this file.\n\
             server {\n\
             \x20   listen 8081;\n\
             \x20   listen [::]:8081;\n\
             \x20   server_name panel.example.org;\n\
             \n\
             \x20   auth_basic \"Admin panel\";\n\
             \x20   auth_basic_user_file /etc/nginx/batten-8081-panel.example.org.htpasswd;\n\
             \n\
             \x20   location / {\n\
             \x20       proxy_pass http://127.0.0.1:8080;\n\
             \x20       proxy_http_version 1.1;\n\
             \x20       proxy_set_header Host $host;\n\
             \x20       proxy_set_header X-Real-IP $remote_addr;\n\
             \x20       proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
             \x20       proxy_set_header X-Forwarded-Proto $scheme;\n\
             \x20       proxy_set_header Upgrade $http_upgrade;\n\
             \x20       proxy_set_header Connection $batten_connection_upgrade;\n\
             \x20   }\n\
             }\n"
        );
        assert_eq!(site_name(&site()), "batten-8081-panel.example.org");
    }

    fn files(acme: bool) -> TlsFiles {
        TlsFiles {
            certificate: "/etc/ssl/batten/x.crt".into(),
            key: "/etc/ssl/batten/x.key".into(),
            acme_webroot: acme.then(|| "/var/lib/batten-acme".to_string()),
        }
    }

    #[test]
    fn listen_80_serves_https_on_443_and_80_only_redirects() {
        let mut s = site();
        s.listen = 80;
        s.tls = Tls::Auto;
        s.allow_from = vec![source("203.0.113.0/24").unwrap()];
        let text = render(&s, "/etc/nginx/x.htpasswd", Some(&files(false)));
        let (https, redirect) = text.split_once("\n# Plain HTTP only redirects").unwrap();
        assert!(
            https.contains("    listen 443 ssl;\n    listen [::]:443 ssl;\n    server_name panel.example.org;\n    ssl_certificate /etc/ssl/batten/x.crt;\n    ssl_certificate_key /etc/ssl/batten/x.key;\n    ssl_protocols TLSv1.2 TLSv1.3;\n"),
            "{https}"
        );
        assert!(
            https.contains("    error_page 497 =301 https://$host:$server_port$request_uri;\n")
        );
        assert!(https.contains("auth_basic \"Admin panel\";"));
        assert!(
            redirect.ends_with(
                "server {\n    listen 80;\n    listen [::]:80;\n    server_name panel.example.org;\n    allow 203.0.113.0/24;\n    deny all;\n\n    location / {\n        return 301 https://$host$request_uri;\n    }\n}\n"
            ),
            "{redirect}"
        );
        assert!(
            !redirect.contains("auth_basic"),
            "the redirect never asks for the password"
        );
        assert!(!redirect.contains("acme-challenge"));
    }

    #[test]
    fn an_acme_sites_domain_is_one_of_its_server_names() {
        let mut s = site();
        s.tls = Tls::Acme(crate::input::model::Acme::lets_encrypt("cloud.example.net"));
        let text = render(&s, "/x", Some(&files(true)));
        let (https, redirect) = text.split_once("\n# Plain HTTP only redirects").unwrap();
        for block in [https, redirect] {
            assert!(
                block.contains("    server_name cloud.example.net panel.example.org;\n"),
                "{block}"
            );
        }
        s.server_names.clear();
        let text = render(&s, "/x", Some(&files(true)));
        assert!(
            text.contains("    server_name cloud.example.net _;\n"),
            "{text}"
        );
    }

    #[test]
    fn an_acme_site_on_another_port_redirects_there_and_answers_challenges_to_all() {
        let mut s = site();
        s.listen = 8443;
        s.allow_from = vec![source("203.0.113.0/24").unwrap()];
        s.tls = Tls::Acme(crate::input::model::Acme::lets_encrypt("panel.example.org"));
        let text = render(&s, "/x", Some(&files(true)));
        assert!(text.contains("    listen 8443 ssl;\n"), "{text}");
        let (_, redirect) = text.split_once("\n# Plain HTTP only redirects").unwrap();
        assert!(
            redirect.contains(
                "\n    location /.well-known/acme-challenge/ {\n        root /var/lib/batten-acme;\n        default_type text/plain;\n    }\n"
            ),
            "{redirect}"
        );
        assert!(redirect.contains("return 301 https://$host:8443$request_uri;"));
        assert!(
            !redirect.contains("deny all"),
            "the CA validates from anywhere"
        );
    }

    #[test]
    fn other_ports_serve_https_there_with_no_redirect_and_off_is_plain() {
        let mut s = site();
        s.tls = Tls::Auto;
        let text = render(&s, "/x", Some(&files(false)));
        assert!(text.contains("    listen 8081 ssl;\n"));
        assert!(!text.contains("listen 80;"), "{text}");
        s.listen = 80;
        s.tls = Tls::Off;
        let text = render(&s, "/x", None);
        assert!(
            text.contains("    listen 80;\n    listen [::]:80;\n"),
            "{text}"
        );
        assert!(
            !text.contains("ssl") && !text.contains("return 301"),
            "{text}"
        );
    }

    #[test]
    fn unix_socket_and_allow_from() {
        let mut s = site();
        s.listen = 443;
        s.server_names = vec![];
        s.tls = Tls::Files {
            certificate: "/etc/ssl/panel.crt".into(),
            key: "/etc/ssl/panel.key".into(),
        };
        s.upstream = Upstream::Unix {
            path: "/run/panel.sock".into(),
        };
        s.allow_from = vec![
            source("203.0.113.0/24").unwrap(),
            source("2001:db8::1").unwrap(),
        ];
        let tls = TlsFiles {
            certificate: "/etc/ssl/panel.crt".into(),
            key: "/etc/ssl/panel.key".into(),
            acme_webroot: None,
        };
        let text = render(&s, "/etc/nginx/x.htpasswd", Some(&tls));
        assert!(
            text.contains("    listen 443 ssl;\n    listen [::]:443 ssl;\n    server_name _;\n")
        );
        assert!(text.contains("ssl_certificate /etc/ssl/panel.crt;"));
        assert!(text.contains("proxy_pass http://unix:/run/panel.sock:;"));
        assert!(
            text.contains("    allow 203.0.113.0/24;\n    allow 2001:db8::1;\n    deny all;\n")
        );
        assert!(
            !text.contains("return 301"),
            "443 asked for: no redirect server"
        );
        assert_eq!(site_name(&s), "batten-443");
        s.allow_from
            .push(source("198.51.100.1-198.51.100.9").unwrap());
        // A range is written as the networks it spans, so nginx enforces
        // allow_from itself, whatever the firewall lets through.
        let text = render(&s, "/x", Some(&tls));
        assert!(
            text.contains(
                "    allow 198.51.100.1;\n    allow 198.51.100.2/31;\n    allow 198.51.100.4/30;\n    allow 198.51.100.8/31;\n    deny all;\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn listen_ports_of_debians_default_site() {
        let text = "server {\n\tlisten 80 default_server;\n\tlisten [::]:80 default_server;\n\t# listen 443 ssl default_server;\n}\n";
        assert_eq!(listen_ports(text), vec![80]);
        assert_eq!(
            listen_ports("listen 127.0.0.1:8080;\nlisten 8443 ssl;"),
            vec![8080, 8443]
        );
    }
}
