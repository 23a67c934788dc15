//! The rule model both backends render: what the firewall must accept and
//! drop, independent of the tool that loads it, and the small pieces of
//! text both tools write the same way.

use crate::input::grammar::{PortRange, Source};
use crate::input::model::{AllowRule, Protocol, Upstream, UserData};

/// Everything a ruleset says, independent of the tool that loads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ruleset {
    /// Ports sshd listens on once batten is done: always accepted.
    pub ssh_ports: Vec<u16>,
    /// Proxy `listen` ports, each with the sources allowed (empty: anyone).
    pub proxy_ports: Vec<(u16, Vec<Source>)>,
    /// Upstream ports behind the proxy: loopback only, explicitly dropped.
    pub upstream_ports: Vec<u16>,
    /// The user's allow rules.
    pub allow: Vec<AllowRule>,
    /// Log what is dropped (rate-limited).
    pub log_drops: bool,
    /// Add a forward chain that drops (off by default: see the README).
    pub forward_drop: bool,
}

impl Ruleset {
    /// The ruleset the user-data asks for, with `ssh_ports` the ports sshd
    /// will listen on (batten's `Port` when set, else the effective config).
    pub fn from_user_data(ud: &UserData, ssh_ports: Vec<u16>) -> Ruleset {
        let mut proxy_ports: Vec<(u16, Vec<Source>)> = Vec::new();
        let mut upstream_ports = Vec::new();
        for site in &ud.batten.proxy {
            // HTTPS on 443 for `listen: 80`, and 80 for its redirect. An
            // ACME CA validates from anywhere: an ACME site's port 80 is
            // open to all (it only redirects and answers challenges).
            let acme = matches!(site.tls, crate::input::model::Tls::Acme(_));
            for port in site.ports() {
                let allowed = if acme && Some(port) == site.redirect_port() {
                    Vec::new()
                } else {
                    site.allow_from.clone()
                };
                // Sites sharing a port share its sources: anyone if one of
                // them allows anyone, else every site's sources together.
                match proxy_ports.iter_mut().find(|(p, _)| *p == port) {
                    None => proxy_ports.push((port, allowed)),
                    Some((_, sources)) if sources.is_empty() => {}
                    Some((_, sources)) if allowed.is_empty() => sources.clear(),
                    Some((_, sources)) => {
                        for s in &allowed {
                            if !sources.contains(s) {
                                sources.push(s.clone());
                            }
                        }
                    }
                }
            }
            if let Upstream::Loopback { port, .. } = site.upstream
                && !upstream_ports.contains(&port)
            {
                upstream_ports.push(port);
            }
        }
        Ruleset {
            ssh_ports,
            proxy_ports,
            upstream_ports,
            allow: ud.batten.firewall.allow.clone(),
            log_drops: ud.batten.firewall.log_drops,
            forward_drop: ud.batten.firewall.forward_drop,
        }
    }
}

/// New SSH connections one source address may open: a burst of this many,
/// then one a second (about 10 per 10 s), as ssh-audit's guide throttles
/// them against DHEat and password guessing. Replies and established
/// sessions are never counted; a client within the limit is always let in
/// (safety rule 2).
pub const SSH_BURST: u32 = 10;

/// The comment on the rate limit's rules, in both backends.
pub const SSH_LIMIT_COMMENT: &str = "ssh: over 10 new connections in 10 s from one address";

/// Sources of one family, for rules that must be written per family.
pub fn split_by_family(sources: &[Source]) -> (Vec<&Source>, Vec<&Source>) {
    sources.iter().partition(|s| match s {
        Source::Address { address } => address.is_ipv4(),
        Source::Network { network } => matches!(network, ipnet::IpNet::V4(_)),
        Source::Range { first, .. } => first.is_ipv4(),
    })
}

/// A port range as both tools write it (`8000-8010`, `22`).
pub fn ports_text(p: &PortRange, separator: char) -> String {
    if p.first == p.last {
        p.first.to_string()
    } else {
        format!("{}{separator}{}", p.first, p.last)
    }
}

/// `tcp` or `udp`.
pub fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// An allow rule as the backends' render tests write it: `ports` as
/// (first, last), `from` as the user-data would give the sources.
#[cfg(test)]
pub fn allow(ports: Option<(u16, u16)>, protocol: Protocol, from: &[&str]) -> AllowRule {
    AllowRule {
        ports: ports.map(|(first, last)| PortRange { first, last }),
        protocol,
        from: from
            .iter()
            .map(|s| crate::input::grammar::source(s).expect("a valid source"))
            .collect(),
    }
}
