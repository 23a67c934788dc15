//! `batten.firewall`: whether the firewall is on, which backend writes it,
//! and the allow rules (ports, protocols, sources) it opens.

use super::checker::Checker;
use super::values::{boolean, checked, each_entry, index, item_path, some_of};
use crate::input::grammar::{self, Source};
use crate::input::model::{AllowRule, Firewall, FirewallBackend, Protocol};
use crate::input::yaml::{Node, Value};

const FIREWALL_KEYS: &[&str] = &["enabled", "backend", "allow", "log_drops", "forward"];
const ALLOW_KEYS: &[&str] = &["port", "proto", "from"];

/// `batten.firewall`: read so that a forgotten or misspelt setting is an
/// error, and turning the firewall off is always named in a warning.
pub(super) fn firewall(c: &mut Checker, node: &Node, path: &str) -> Firewall {
    let mut f = Firewall::default();
    each_entry(c, node, path, FIREWALL_KEYS, |c, key, v, p| {
        match key {
        "enabled" => {
            f.enabled = boolean(c, v, &p).unwrap_or(true);
            if !f.enabled {
                c.warn(
                    v.pos,
                    &p,
                    "the firewall is off: every listening port is reachable from the internet",
                );
            }
        }
        "backend" => {
            f.backend = match checked(c, v, &p, |s| Ok(s.to_string())).as_deref() {
                Some("auto") | None => FirewallBackend::Auto,
                Some("nftables") => FirewallBackend::Nftables,
                Some("iptables") => FirewallBackend::Iptables,
                Some(other) => {
                    c.error(
                        v.pos,
                        &p,
                        format!("unknown backend {other:?}; use auto, nftables or iptables"),
                    );
                    FirewallBackend::Auto
                }
            }
        }
        "log_drops" => f.log_drops = boolean(c, v, &p).unwrap_or(false),
        "forward" => {
            f.forward_drop = match &v.value {
                Value::Str(s) if s == "drop" => true,
                Value::Str(s) if s == "accept" => false,
                _ => {
                    c.error(v.pos, &p, "forward is either \"drop\" or \"accept\"");
                    false
                }
            }
        }
        "allow" => match &v.value {
            Value::Seq(items) => {
                f.allow = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| allow_rule(c, item, &index(&p, i)))
                    .collect()
            }
            Value::Null => c.error(
                v.pos,
                &p,
                "no value; list the rules like {port: 443}, write [] for none, or leave the key out",
            ),
            _ => c.expected(v, &p, "a list of rules like {port: 443}"),
        },
        _ => {} // each_entry hands over listed keys only
    }
    });
    f
}

fn allow_rule(c: &mut Checker, node: &Node, path: &str) -> Option<AllowRule> {
    let before = c.errors.len();
    let mut rule = AllowRule {
        ports: None,
        protocol: Protocol::Tcp,
        from: Vec::new(),
    };
    each_entry(c, node, path, ALLOW_KEYS, |c, key, v, p| match key {
        "port" => {
            rule.ports = match &v.value {
                Value::Int(n) => grammar::port_number(*n)
                    .map(|p| grammar::PortRange { first: p, last: p })
                    .map_err(|e| c.error(v.pos, &p, e))
                    .ok(),
                Value::Str(s) => grammar::port_range(s)
                    .map_err(|e| c.error(v.pos, &p, e))
                    .ok(),
                _ => {
                    c.expected(v, &p, "a port or a range like 8000-8010");
                    None
                }
            }
        }
        "proto" => {
            rule.protocol = match checked(c, v, &p, |s| Ok(s.to_ascii_lowercase())).as_deref() {
                Some("tcp") => Protocol::Tcp,
                Some("udp") => Protocol::Udp,
                Some(other) => {
                    c.error(
                        v.pos,
                        &p,
                        format!("unknown protocol {other:?}; use tcp or udp"),
                    );
                    Protocol::Tcp
                }
                None => Protocol::Tcp,
            }
        }
        "from" => rule.from = sources(c, v, &p),
        _ => {} // each_entry hands over listed keys only
    });
    if node.as_map().is_some()
        && rule.ports.is_none()
        && rule.from.is_empty()
        && c.errors.len() == before
    {
        c.error(
            node.pos,
            path,
            "a rule needs a port, a from, or both; {} would open everything",
        );
    }
    (c.errors.len() == before).then_some(rule)
}

/// `from` and `allow_from`: addresses, networks or ranges, one or a list;
/// none at all is an error, never read as "from anywhere".
pub(super) fn sources(c: &mut Checker, node: &Node, path: &str) -> Vec<Source> {
    some_of(c, node, path, "an address, a network or a range")
        .into_iter()
        .filter_map(|(item, i)| {
            let p = item_path(path, i);
            checked(c, item, &p, grammar::source)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::run;
    use super::*;

    #[test]
    fn firewall_and_proxy() {
        let text = "batten:\n  firewall:\n    allow:\n      - {port: 80}\n      - {port: 8000-8010, proto: udp}\n      - {port: 5432, from: 203.0.113.10}\n      - {from: [198.51.100.10-198.51.100.20, \"2001:db8::/32\"]}\n  proxy:\n    - listen: 8081\n      upstream: 127.0.0.1:8080\n      auth:\n        users: [{name: admin}]\n";
        let (ud, e, _) = run(text);
        assert!(e.is_empty(), "{e:?}");
        let b = ud.unwrap().batten;
        assert_eq!(b.firewall.allow.len(), 4);
        assert_eq!(b.firewall.allow[1].protocol, Protocol::Udp);
        assert_eq!(b.firewall.allow[3].from.len(), 2);
        assert_eq!(b.proxy[0].listen, 8081);
    }
}
