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

/// The server block(s) for one site: the proxy with basic auth, and with
/// TLS a plain-HTTP server on 80 that only redirects.
pub fn render(site: &ProxySite, htpasswd_path: &str) -> String {
    let mut out = format!(
        "# Written by batten from user-data: port {} -> {}, basic auth.\n\
         # Edit the user-data and run `batten run --force` rather than this file.\n",
        site.listen,
        upstream_url(&site.upstream)
    );
    let names = if site.server_names.is_empty() {
        "_".to_string()
    } else {
        site.server_names.join(" ")
    };
    let ssl = if site.tls.is_some() { " ssl" } else { "" };
    out.push_str("server {\n");
    let _ = writeln!(out, "    listen {}{ssl};", site.listen);
    let _ = writeln!(out, "    listen [::]:{}{ssl};", site.listen);
    let _ = writeln!(out, "    server_name {names};");
    if let Some(tls) = &site.tls {
        let _ = writeln!(out, "    ssl_certificate {};", tls.certificate);
        let _ = writeln!(out, "    ssl_certificate_key {};", tls.key);
    }
    if !site.allow_from.is_empty() {
        out.push('\n');
        // nginx takes no ranges: a range is written as the networks it spans.
        for network in site.allow_from.iter().flat_map(Source::networks) {
            if network.prefix_len() == network.max_prefix_len() {
                let _ = writeln!(out, "    allow {};", network.addr());
            } else {
                let _ = writeln!(out, "    allow {network};");
            }
        }
        out.push_str("    deny all;\n");
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
    if site.tls.is_some() && site.listen != 80 {
        let _ = write!(
            out,
            "\nserver {{\n    listen 80;\n    listen [::]:80;\n    server_name {names};\n    return 301 https://$host$request_uri;\n}}\n"
        );
    }
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
            tls: None,
            allow_from: vec![],
        }
    }

    #[test]
    fn exact_text() {
        assert_eq!(
            render(&site(), "/etc/nginx/batten-8081-panel.example.org.htpasswd"),
            "# Written by batten from user-data: port 8081 -> http://127.0.0.1:8080, basic auth.\n\
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

    #[test]
    fn tls_unix_socket_and_allow_from() {
        let mut s = site();
        s.listen = 443;
        s.server_names = vec![];
        s.tls = Some(Tls {
            certificate: "/etc/ssl/panel.crt".into(),
            key: "/etc/ssl/panel.key".into(),
        });
        s.upstream = Upstream::Unix {
            path: "/run/panel.sock".into(),
        };
        s.allow_from = vec![
            source("203.0.113.0/24").unwrap(),
            source("2001:db8::1").unwrap(),
        ];
        let text = render(&s, "/etc/nginx/x.htpasswd");
        assert!(
            text.contains("    listen 443 ssl;\n    listen [::]:443 ssl;\n    server_name _;\n")
        );
        assert!(text.contains("ssl_certificate /etc/ssl/panel.crt;"));
        assert!(text.contains("proxy_pass http://unix:/run/panel.sock:;"));
        assert!(
            text.contains("    allow 203.0.113.0/24;\n    allow 2001:db8::1;\n    deny all;\n")
        );
        assert!(text.ends_with("    return 301 https://$host$request_uri;\n}\n"));
        assert_eq!(site_name(&s), "batten-443");
        s.allow_from
            .push(source("198.51.100.1-198.51.100.9").unwrap());
        // A range is written as the networks it spans, so nginx enforces
        // allow_from itself, whatever the firewall lets through.
        assert!(
            render(&s, "/x").contains(
                "    allow 198.51.100.1;\n    allow 198.51.100.2/31;\n    allow 198.51.100.4/30;\n    allow 198.51.100.8/31;\n    deny all;\n"
            ),
            "{}",
            render(&s, "/x")
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
