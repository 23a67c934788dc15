//! The default-deny firewall: one rule model, two backends (nftables and
//! iptables), rendered as text by pure functions and loaded atomically.
//!
//! What is always accepted (safety rule 2) is not a choice the user-data
//! can take away: loopback, established traffic, the ICMP that IPv4 and
//! IPv6 need, and the port(s) sshd really listens on. Proxy upstream ports
//! (safety rule 3) are dropped for everything but loopback, before any
//! user rule is looked at.

pub mod apply;
pub mod backend;

pub mod iptables;

pub mod nftables;
pub mod plan;
pub mod preload;

pub mod rules;

pub mod verify;

pub use apply::apply;
pub use plan::plan;

pub use crate::plan::FirewallKind as Kind;
pub use backend::{Backend, Persist};
pub use rules::{Ruleset, split_by_family};

use crate::host::distro::Distro;
use crate::host::root::Root;
use crate::input::model::{FirewallBackend, UserData};

/// The backend for `kind`: the one place the two are told apart.
pub fn of(kind: Kind) -> &'static dyn Backend {
    match kind {
        Kind::Nftables => &nftables::Nftables,
        Kind::Iptables => &iptables::Iptables,
    }
}

/// The backend: as configured, or nftables where the root has `nft`,
/// else iptables where it has `iptables-restore`.
pub fn choose(configured: FirewallBackend, has: impl Fn(&str) -> bool) -> Result<Kind, String> {
    let usable = |kind: Kind| of(kind).programs().iter().all(|p| has(p));
    let (nft, ipt) = (usable(Kind::Nftables), usable(Kind::Iptables));
    match configured {
        FirewallBackend::Nftables if nft => Ok(Kind::Nftables),
        FirewallBackend::Nftables => Err("backend: nftables, but the root has no nft; install nftables".into()),
        FirewallBackend::Iptables if ipt => Ok(Kind::Iptables),
        FirewallBackend::Iptables => Err("backend: iptables, but the root has no iptables-restore and ip6tables-restore; install iptables".into()),
        FirewallBackend::Auto if nft => Ok(Kind::Nftables),
        FirewallBackend::Auto if ipt => Ok(Kind::Iptables),
        FirewallBackend::Auto => Err("the root has neither nft nor iptables-restore; install nftables (or iptables) so batten can load a firewall".into()),
    }
}

/// Whether the root has a program (an image's own tools decide the backend
/// it boots with).
pub(crate) fn root_has(root: &Root, program: &str) -> bool {
    crate::host::exec::in_image(root, program).is_some()
}

/// The backend the root's tools and the user-data choose, and where the
/// distribution loads its rules at boot: one answer for the plan that
/// writes them and for verify, which reads them back.
pub fn backend(ud: &UserData, root: &Root, distro: &Distro) -> Result<(Kind, Persist), String> {
    let kind = choose(ud.batten.firewall.backend, |p| root_has(root, p))?;
    Ok((kind, of(kind).persist(distro.family)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::grammar;

    #[test]
    fn the_ssh_port_is_always_in_whatever_the_user_data_says() {
        // batten.ssh.port moved and no allow rule mentions it: it is still accepted.
        let ud = crate::input::load(
            "u",
            b"#cloud-config\nbatten:\n  ssh: {port: 2222}\n  firewall: {allow: []}\n",
        )
        .unwrap()
        .user_data;
        let rules = Ruleset::from_user_data(&ud, ud.batten.ssh.ports.clone());
        assert_eq!(rules.ssh_ports, vec![2222]);
        for kind in [Kind::Nftables, Kind::Iptables] {
            for (_, text) in of(kind).render(&rules) {
                assert!(text.contains("dport 2222 "), "{text}");
                assert!(!text.contains("dport 22 "), "{text}");
            }
        }
    }

    #[test]
    fn sites_sharing_a_port_share_their_sources() {
        let text = "#cloud-config\nbatten:\n  proxy:\n    - {listen: 8443, server_name: a.example.org, upstream: 127.0.0.1:9001, allow_from: 203.0.113.0/24, auth: {users: [{name: a}]}}\n    - {listen: 8443, server_name: b.example.org, upstream: 127.0.0.1:9002, allow_from: \"198.51.100.1-198.51.100.9\", auth: {users: [{name: b}]}}\n    - {listen: 8444, server_name: c.example.org, upstream: 127.0.0.1:9003, allow_from: 203.0.113.0/24, auth: {users: [{name: c}]}}\n    - {listen: 8444, server_name: d.example.org, upstream: 127.0.0.1:9004, auth: {users: [{name: d}]}}\n";
        let ud = crate::input::load("u", text.as_bytes()).unwrap().user_data;
        let rules = Ruleset::from_user_data(&ud, vec![22]);
        assert_eq!(
            rules.proxy_ports[0].1.len(),
            2,
            "both sites' sources on 8443"
        );
        assert!(
            rules.proxy_ports[1].1.is_empty(),
            "one site on 8444 is open to anyone, so the port is"
        );
    }

    #[test]
    fn https_ports_follow_the_port_plan() {
        let text = "#cloud-config\nbatten:\n  proxy:\n    - {listen: 80, upstream: 127.0.0.1:9001, allow_from: 203.0.113.0/24, auth: {users: [{name: a}]}}\n    - {listen: 8443, server_name: b.example.org, tls: {acme: {domain: b.example.org}}, allow_from: 203.0.113.0/24, upstream: 127.0.0.1:9002, auth: {users: [{name: b}]}}\n    - {listen: 8080, server_name: c.example.org, tls: off, upstream: 127.0.0.1:9003, auth: {users: [{name: c}]}}\n";
        let ud = crate::input::load("u", text.as_bytes()).unwrap().user_data;
        let rules = Ruleset::from_user_data(&ud, vec![22]);
        let ports: Vec<(u16, usize)> = rules
            .proxy_ports
            .iter()
            .map(|(p, sources)| (*p, sources.len()))
            .collect();
        // HTTPS on 443 and the redirect on 80 for `listen: 80`; 8443 from the
        // allowed sources; 80 open to anyone since an ACME CA validates
        // there; plain HTTP on 8080.
        assert_eq!(ports, [(443, 1), (80, 0), (8443, 1), (8080, 0)]);
    }

    #[test]
    fn backend_choice() {
        assert_eq!(choose(FirewallBackend::Auto, |_| true), Ok(Kind::Nftables));
        assert_eq!(
            choose(FirewallBackend::Auto, |p| p != "nft"),
            Ok(Kind::Iptables)
        );
        assert_eq!(
            choose(FirewallBackend::Iptables, |_| true),
            Ok(Kind::Iptables)
        );
        assert!(
            choose(FirewallBackend::Nftables, |_| false)
                .unwrap_err()
                .contains("install nftables")
        );
        assert!(choose(FirewallBackend::Auto, |_| false).is_err());
    }

    #[test]
    fn families_split() {
        let sources = vec![
            grammar::source("203.0.113.0/24").unwrap(),
            grammar::source("2001:db8::/32").unwrap(),
        ];
        let (v4, v6) = split_by_family(&sources);
        assert_eq!((v4.len(), v6.len()), (1, 1));
    }
}
