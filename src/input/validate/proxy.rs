//! `batten.proxy`: the web panels put behind nginx, each with its port,
//! names, loopback upstream, users, TLS files and allowed sources, and the
//! checks that keep the sites off each other's ports and off sshd's.

use super::checker::Checker;
use super::firewall::sources;
use super::values::{checked, each_entry, index, item_path, port, some_of, string};
use crate::input::grammar;
use crate::input::model::{
    Acme, LETS_ENCRYPT, Protocol, ProxySite, ProxyUser, Tls, Upstream, UserData, site_name,
};
use crate::input::yaml::{Node, Value};

const PROXY_KEYS: &[&str] = &[
    "listen",
    "server_name",
    "upstream",
    "auth",
    "tls",
    "allow_from",
];
const AUTH_KEYS: &[&str] = &["realm", "users"];
const PROXY_USER_KEYS: &[&str] = &["name", "password_hash"];
const TLS_KEYS: &[&str] = &["certificate", "key", "acme"];
const ACME_KEYS: &[&str] = &["domain", "email", "server", "server_ca"];

/// One `batten.proxy` site; `None` when it has any problem, so that no site
/// goes online without an upstream and users to log in.
pub(super) fn proxy_site(c: &mut Checker, node: &Node, path: &str) -> Option<ProxySite> {
    let before = c.errors.len();
    let mut listen = 80;
    let mut server_names = Vec::new();
    let mut upstream = None;
    let mut realm = "Restricted".to_string();
    let mut users = Vec::new();
    let mut tls = Some(Tls::Auto);
    let mut allow_from = Vec::new();
    each_entry(c, node, path, PROXY_KEYS, |c, key, v, p| match key {
        "listen" => listen = port(c, v, &p).unwrap_or(80),
        "server_name" => {
            server_names = some_of(c, v, &p, "a name or a list of names")
                .into_iter()
                .filter_map(|(item, i)| {
                    checked(c, item, &item_path(&p, i), |s| {
                        grammar::server_name(s).map(str::to_string)
                    })
                })
                .collect()
        }
        "upstream" => upstream = upstream_value(c, v, &p),
        "auth" => each_entry(c, v, &p, AUTH_KEYS, |c, key, v, p| match key {
            "realm" => {
                if let Some(r) = checked(c, v, &p, |s| grammar::realm(s).map(str::to_string)) {
                    realm = r;
                }
            }
            "users" => match &v.value {
                Value::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(u) = proxy_user(c, item, &index(&p, i)) {
                            if users.iter().any(|x: &ProxyUser| x.name == u.name) {
                                c.error(
                                    item.pos,
                                    &index(&p, i),
                                    format!("the user {:?} is listed twice", u.name),
                                );
                            } else {
                                users.push(u);
                            }
                        }
                    }
                }
                _ => c.expected(v, &p, "a list of users like {name: admin}"),
            },
            _ => {} // each_entry hands over listed keys only
        }),
        "tls" => tls = tls_value(c, v, &p),
        "allow_from" => allow_from = sources(c, v, &p),
        _ => {} // each_entry hands over listed keys only
    });
    node.as_map()?;
    if upstream.is_none() && c.errors.len() == before {
        c.error(
            node.pos,
            path,
            "a proxy site needs an upstream, like 127.0.0.1:8080",
        );
    }
    if users.is_empty() && c.errors.len() == before {
        c.error(
            node.pos,
            path,
            "a proxy site needs auth.users: batten never puts a panel online without a password",
        );
    }
    if c.errors.len() != before {
        return None;
    }
    Some(ProxySite {
        listen,
        server_names,
        upstream: upstream?,
        realm,
        users,
        tls: tls?,
        allow_from,
    })
}

/// `tls`: `auto` (also `true`), `off` (also `false`, warned: the password
/// then travels in clear), `{certificate, key}` or `{acme: {...}}`.
fn tls_value(c: &mut Checker, node: &Node, path: &str) -> Option<Tls> {
    let off = || "tls is off: this site's password travels in clear text with every request, readable by anyone on the path; remove `tls: off` unless a TLS proxy in front of this machine already encrypts it";
    match &node.value {
        Value::Bool(true) => Some(Tls::Auto),
        Value::Bool(false) => {
            c.warn(node.pos, path, off());
            Some(Tls::Off)
        }
        Value::Str(s) if s.eq_ignore_ascii_case("auto") => Some(Tls::Auto),
        Value::Str(s) if s.eq_ignore_ascii_case("off") => {
            c.warn(node.pos, path, off());
            Some(Tls::Off)
        }
        Value::Map(_) => {
            let before = c.errors.len();
            let mut certificate = None;
            let mut key_path = None;
            let mut acme = None;
            each_entry(c, node, path, TLS_KEYS, |c, key, v, p| match key {
                "certificate" => {
                    certificate =
                        checked(c, v, &p, |s| grammar::absolute_path(s).map(str::to_string))
                }
                "key" => {
                    key_path = checked(c, v, &p, |s| grammar::absolute_path(s).map(str::to_string))
                }
                "acme" => acme = acme_value(c, v, &p),
                _ => {} // each_entry hands over listed keys only
            });
            if c.errors.len() != before {
                return None;
            }
            match (certificate, key_path, acme) {
                (None, None, Some(acme)) => Some(Tls::Acme(acme)),
                (Some(certificate), Some(key), None) => Some(Tls::Files { certificate, key }),
                (_, _, Some(_)) => {
                    c.error(
                        node.pos,
                        path,
                        "tls takes either acme or certificate and key, not both",
                    );
                    None
                }
                _ => {
                    c.error(
                        node.pos,
                        path,
                        "tls needs both certificate and key (or acme, or the word auto)",
                    );
                    None
                }
            }
        }
        _ => {
            c.expected(
                node,
                path,
                "auto, off, {certificate: PATH, key: PATH} or {acme: {domain: NAME}}",
            );
            None
        }
    }
}

/// `tls.acme`: `domain` (required), `email`, `server`, `server_ca`.
fn acme_value(c: &mut Checker, node: &Node, path: &str) -> Option<Acme> {
    let before = c.errors.len();
    let mut domain = None;
    let mut email = None;
    let mut server = LETS_ENCRYPT.to_string();
    let mut server_ca = None;
    each_entry(c, node, path, ACME_KEYS, |c, key, v, p| match key {
        "domain" => domain = checked(c, v, &p, grammar::domain),
        "email" => email = checked(c, v, &p, |s| grammar::email(s).map(str::to_string)),
        "server" => {
            if let Some(url) = checked(c, v, &p, |s| grammar::directory_url(s).map(str::to_string))
            {
                server = url;
            }
        }
        "server_ca" => {
            server_ca = checked(c, v, &p, |s| grammar::absolute_path(s).map(str::to_string))
        }
        _ => {} // each_entry hands over listed keys only
    });
    if node.as_map().is_some() && domain.is_none() && c.errors.len() == before {
        c.error(
            node.pos,
            path,
            "acme needs the domain to ask a certificate for, like {domain: panel.example.org}",
        );
    }
    (c.errors.len() == before).then_some(Acme {
        domain: domain?,
        email,
        server,
        server_ca,
    })
}

fn upstream_value(c: &mut Checker, node: &Node, path: &str) -> Option<Upstream> {
    let s = string(c, node, path)?;
    let result = if let Some(p) = s.strip_prefix("unix:").or(s.starts_with('/').then_some(s)) {
        grammar::absolute_path(p).map(|p| Upstream::Unix {
            path: p.to_string(),
        })
    } else {
        parse_loopback(s)
    };
    result.map_err(|e| c.error(node.pos, path, e)).ok()
}

fn parse_loopback(s: &str) -> Result<Upstream, String> {
    let (host, port_text) = match s.strip_prefix('[') {
        Some(rest) => rest
            .split_once("]:")
            .ok_or_else(|| format!("{s:?}: write an IPv6 upstream as [::1]:PORT"))?,
        None => s.rsplit_once(':').ok_or_else(|| {
            format!("{s:?}: write the upstream as 127.0.0.1:PORT, [::1]:PORT or a unix socket path")
        })?,
    };
    let address: std::net::IpAddr = match host {
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        h => grammar::address(h)?,
    };
    if !address.is_loopback() {
        return Err(format!(
            "{s:?} is not on loopback; batten proxies to 127.0.0.1, [::1] or a unix socket, so the panel itself is never reachable from outside"
        ));
    }
    let port = grammar::port_text(port_text)?;
    Ok(Upstream::Loopback { address, port })
}

fn proxy_user(c: &mut Checker, node: &Node, path: &str) -> Option<ProxyUser> {
    let before = c.errors.len();
    let mut name = None;
    let mut password_hash = None;
    each_entry(c, node, path, PROXY_USER_KEYS, |c, key, v, p| match key {
        "name" => {
            name = checked(c, v, &p, |s| {
                grammar::proxy_user_name(s).map(str::to_string)
            })
        }
        "password_hash" => {
            password_hash = checked(c, v, &p, |s| {
                grammar::htpasswd_hash(s).map(|_| s.to_string())
            })
        }
        _ => {} // each_entry hands over listed keys only
    });
    if node.as_map().is_some() && name.is_none() && c.errors.len() == before {
        c.error(node.pos, path, "a proxy user needs a name");
    }
    (c.errors.len() == before).then_some(ProxyUser {
        name: name?,
        password_hash,
    })
}

/// Two sites on one port would fight over it, and a proxy listening on the
/// SSH port would take sshd's place.
pub(super) fn check_proxy_ports(c: &mut Checker, ud: &UserData, doc: &Node) {
    let pos = doc
        .get("batten")
        .and_then(|b| b.get("proxy"))
        .map(|n| n.pos)
        .unwrap_or_default();
    let ssh_ports: Vec<u16> = if ud.batten.ssh.ports.is_empty() {
        vec![22]
    } else {
        ud.batten.ssh.ports.clone()
    };
    let mut names: Vec<String> = Vec::new();
    for (i, site) in ud.batten.proxy.iter().enumerate() {
        // The site's files are named after it: two alike would overwrite
        // each other's configuration and passwords.
        let name = site_name(site);
        if names.contains(&name) {
            c.error(
                pos,
                &format!("batten.proxy[{i}]"),
                format!(
                    "another site before it is also named {name} (same listen port and first server_name); give one a different server_name or port"
                ),
            );
        }
        names.push(name);
        for port in site.ports() {
            if ssh_ports.contains(&port) {
                let how = if port == site.listen {
                    String::new()
                } else if Some(port) == site.redirect_port() {
                    " (the site's redirect from plain HTTP)".to_string()
                } else {
                    " (HTTPS for listen: 80)".to_string()
                };
                c.error(
                    pos,
                    &format!("batten.proxy[{i}].listen"),
                    format!("port {port}{how} is sshd's; pick another"),
                );
            }
        }
        // One port speaks TLS or plain HTTP, not both: a redirect on 80
        // beside a `tls: off` site on 80, or HTTPS on 443 beside a plain
        // site there, would make nginx refuse its configuration.
        for (j, other) in ud.batten.proxy.iter().enumerate().take(i) {
            let plain = |s: &ProxySite| -> Vec<u16> {
                if s.tls.is_on() {
                    s.redirect_port().into_iter().collect()
                } else {
                    vec![s.serving_port()]
                }
            };
            let tls = |s: &ProxySite| -> Vec<u16> {
                if s.tls.is_on() {
                    vec![s.serving_port()]
                } else {
                    Vec::new()
                }
            };
            let clash = plain(site)
                .into_iter()
                .find(|p| tls(other).contains(p))
                .or_else(|| tls(site).into_iter().find(|p| plain(other).contains(p)));
            if let Some(port) = clash {
                c.error(
                    pos,
                    &format!("batten.proxy[{i}]"),
                    format!("port {port} would serve HTTPS for one site and plain HTTP for batten.proxy[{j}]; give one another listen port"),
                );
            }
        }
        let Upstream::Loopback { port, .. } = site.upstream else {
            continue;
        };
        if site.ports().contains(&port) {
            c.error(
                pos,
                &format!("batten.proxy[{i}].upstream"),
                "the upstream port is a port nginx listens on",
            );
        }
        if ssh_ports.contains(&port) {
            c.error(
                pos,
                &format!("batten.proxy[{i}].upstream"),
                format!("port {port} is sshd's; the upstream must be another port"),
            );
        }
        // Safety rule 3: an upstream is never opened to the outside.
        let fw = doc
            .get("batten")
            .and_then(|b| b.get("firewall"))
            .and_then(|f| f.get("allow"));
        for (j, rule) in ud.batten.firewall.allow.iter().enumerate() {
            if rule
                .ports
                .is_some_and(|r| r.first <= port && port <= r.last)
                && rule.protocol == Protocol::Tcp
            {
                let rule_pos = match fw.map(|n| &n.value) {
                    Some(Value::Seq(items)) => items.get(j).map(|n| n.pos).unwrap_or(pos),
                    _ => pos,
                };
                c.error(
                    rule_pos,
                    &format!("batten.firewall.allow[{j}]"),
                    format!("this opens port {port}, the upstream behind batten.proxy[{i}]; a panel behind the proxy is reachable through nginx only"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::run;

    #[test]
    fn injection_attempts_are_refused() {
        let text = "batten:\n  proxy:\n    - upstream: \"127.0.0.1:8080; return 200\"\n      server_name: \"x.org; include /etc/shadow\"\n      auth: {realm: \"a\\\"b\", users: [{name: \"a:b\"}]}\n  firewall:\n    allow:\n      - {from: \"1.2.3.4 } accept\"}\n      - {}\n";
        let (_, e, _) = run(text);
        assert_eq!(e.len(), 6, "{e:#?}");
        let (_, e, _) = run(
            "batten:\n  proxy:\n    - {upstream: \"203.0.113.7:80\", auth: {users: [{name: a}]}}\n",
        );
        assert!(e[0].contains("not on loopback"), "{e:?}");
    }

    #[test]
    fn two_sites_with_one_name_are_refused() {
        let text = "batten:\n  proxy:\n    - {listen: 8081, upstream: 127.0.0.1:8080, auth: {users: [{name: a}]}}\n    - {listen: 8081, upstream: 127.0.0.1:9090, auth: {users: [{name: b}]}}\n    - {listen: 8081, server_name: b.example.org, upstream: 127.0.0.1:9091, auth: {users: [{name: c}]}}\n";
        let (_, e, _) = run(text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("batten.proxy[1]: another site before it is also named batten-8081"),
            "{e:?}"
        );
    }

    #[test]
    fn an_upstream_port_cannot_be_opened() {
        let text = "batten:\n  firewall:\n    allow:\n      - {port: 8000-8100}\n  proxy:\n    - {upstream: 127.0.0.1:8080, auth: {users: [{name: a}]}}\n";
        let (_, e, _) = run(text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("ud.yaml:4:9: batten.firewall.allow[0]: this opens port 8080"),
            "{}",
            e[0]
        );
        let (_, e, _) =
            run("batten:\n  proxy:\n    - {upstream: 127.0.0.1:22, auth: {users: [{name: a}]}}\n");
        assert!(e[0].contains("port 22 is sshd's"), "{e:?}");
    }

    fn tls_of(tls: &str) -> (Option<crate::input::model::Tls>, Vec<String>, Vec<String>) {
        let text = format!(
            "batten:\n  proxy:\n    - {{upstream: 127.0.0.1:8080, auth: {{users: [{{name: a}}]}}{tls}}}\n"
        );
        let (ud, e, w) = run(&text);
        (
            ud.and_then(|ud| ud.batten.proxy.first().map(|s| s.tls.clone())),
            e,
            w,
        )
    }

    #[test]
    fn tls_is_auto_unless_said_and_off_is_warned() {
        use crate::input::model::Tls;
        assert_eq!(tls_of("").0, Some(Tls::Auto));
        assert_eq!(tls_of(", tls: auto").0, Some(Tls::Auto));
        assert_eq!(tls_of(", tls: true").0, Some(Tls::Auto));
        for off in [", tls: off", ", tls: false", ", tls: \"OFF\""] {
            let (tls, e, w) = tls_of(off);
            assert_eq!(tls, Some(Tls::Off), "{off}: {e:?}");
            assert!(
                w.iter()
                    .any(|w| w.contains("password travels in clear text")),
                "{w:?}"
            );
        }
        assert_eq!(
            tls_of(", tls: {certificate: /etc/ssl/a.crt, key: /etc/ssl/a.key}").0,
            Some(Tls::Files {
                certificate: "/etc/ssl/a.crt".into(),
                key: "/etc/ssl/a.key".into()
            })
        );
        let (tls, e, _) =
            tls_of(", tls: {acme: {domain: Panel.Example.org, email: ops@example.org}}");
        let Some(Tls::Acme(acme)) = tls else {
            panic!("{e:?}");
        };
        assert_eq!(acme.domain, "panel.example.org");
        assert_eq!(acme.email.as_deref(), Some("ops@example.org"));
        assert_eq!(acme.server, crate::input::model::LETS_ENCRYPT);
    }

    #[test]
    fn hostile_acme_values_and_mixed_forms_are_refused() {
        for (tls, why) in [
            (
                ", tls: {acme: {domain: \"panel.example.org; ssl off\"}}",
                "not a domain",
            ),
            (", tls: {acme: {domain: \"*.example.org\"}}", "not a domain"),
            (
                ", tls: {acme: {domain: a.example.org, email: \"a@b.org --server x\"}}",
                "not an e-mail",
            ),
            (
                ", tls: {acme: {domain: a.example.org, email: \"$(id)@b.org\"}}",
                "not an e-mail",
            ),
            (
                ", tls: {acme: {domain: a.example.org, server: \"http://ca.example.org/dir\"}}",
                "https://",
            ),
            (
                ", tls: {acme: {domain: a.example.org, server_ca: \"ca.pem\"}}",
                "absolute path",
            ),
            (
                ", tls: {acme: {email: a@example.org}}",
                "acme needs the domain",
            ),
            (
                ", tls: {acme: {domain: a.example.org}, certificate: /a, key: /b}",
                "not both",
            ),
            (", tls: {certificate: /a}", "needs both certificate and key"),
            (", tls: maybe", "auto, off"),
        ] {
            let (t, e, _) = tls_of(tls);
            assert_eq!(t, None, "{tls}");
            assert!(
                e.iter().any(|e| e.contains(why)),
                "{tls}: want {why:?} in {e:?}"
            );
        }
    }

    #[test]
    fn a_port_speaks_tls_or_plain_http_not_both() {
        let (_, e, _) = run(
            "batten:\n  proxy:\n    - {listen: 80, server_name: a.example.org, upstream: 127.0.0.1:8080, auth: {users: [{name: a}]}}\n    - {listen: 443, server_name: b.example.org, tls: off, upstream: 127.0.0.1:8081, auth: {users: [{name: a}]}}\n",
        );
        assert!(
            e.iter()
                .any(|e| e.contains("port 443 would serve HTTPS for one site and plain HTTP")),
            "{e:?}"
        );
        let (_, e, _) = run(
            "batten:\n  proxy:\n    - {listen: 80, upstream: 127.0.0.1:443, auth: {users: [{name: a}]}}\n",
        );
        assert!(
            e.iter()
                .any(|e| e.contains("the upstream port is a port nginx listens on")),
            "{e:?}"
        );
    }
}
