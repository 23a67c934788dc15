//! Every listening socket on the live system with the process that owns
//! it, read from /proc through the procfs crate (what `netstat -plnt` and
//! `-plnu` show, for IPv4 and IPv6), and what the firewall makes of it.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::Serialize;

use crate::concerns::firewall::Ruleset;

/// One listening socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listener {
    /// `tcp` or `udp`.
    pub protocol: &'static str,
    /// Address and port it is bound to.
    pub local: SocketAddr,
    /// The owning process's pid and name, when /proc tells (not for
    /// sockets of processes in other pid namespaces).
    pub process: Option<(i32, String)>,
}

/// What the firewall makes of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reach {
    /// Bound to loopback: nobody outside can reach it.
    LoopbackOnly,
    /// Public, and the firewall lets anyone in.
    Allowed,
    /// Public, and the firewall lets in only listed sources.
    AllowedFromSome,
    /// Public, but the firewall drops it: it listens for nothing, or it is
    /// a proxy upstream that should be bound to loopback.
    Dropped,
}

/// Which pid owns each socket inode.
fn owners() -> HashMap<u64, (i32, String)> {
    let mut map = HashMap::new();
    let Ok(procs) = procfs::process::all_processes() else {
        return map;
    };
    for p in procs.flatten() {
        let name = p.stat().map(|s| s.comm).unwrap_or_default();
        let Ok(fds) = p.fd() else { continue };
        for fd in fds.flatten() {
            if let procfs::process::FDTarget::Socket(inode) = fd.target {
                map.entry(inode).or_insert((p.pid, name.clone()));
            }
        }
    }
    map
}

/// Every TCP socket in LISTEN and every bound UDP socket, both families.
pub fn listeners() -> Result<Vec<Listener>, String> {
    let owners = owners();
    let mut out = Vec::new();
    let tcp = procfs::net::tcp()
        .and_then(|mut v| {
            v.extend(procfs::net::tcp6()?);
            Ok(v)
        })
        .map_err(|e| format!("cannot read /proc/net/tcp: {e}"))?;
    for e in tcp {
        if e.state == procfs::net::TcpState::Listen {
            out.push(Listener {
                protocol: "tcp",
                local: e.local_address,
                process: owners.get(&e.inode).cloned(),
            });
        }
    }
    let udp = procfs::net::udp()
        .and_then(|mut v| {
            v.extend(procfs::net::udp6()?);
            Ok(v)
        })
        .map_err(|e| format!("cannot read /proc/net/udp: {e}"))?;
    for e in udp {
        // Unconnected UDP sockets (remote port 0) are the listening kind.
        if e.remote_address.port() == 0 {
            out.push(Listener {
                protocol: "udp",
                local: e.local_address,
                process: owners.get(&e.inode).cloned(),
            });
        }
    }
    out.sort_by_key(|l| (l.protocol, l.local.port(), l.local.to_string()));
    out.dedup_by(|a, b| a.protocol == b.protocol && a.local == b.local);
    Ok(out)
}

/// Classify a listener against the ruleset batten loaded.
pub fn reach(l: &Listener, rules: &Ruleset) -> Reach {
    if l.local.ip().is_loopback() {
        return Reach::LoopbackOnly;
    }
    let port = l.local.port();
    let tcp = l.protocol == "tcp";
    if tcp && rules.upstream_ports.contains(&port) {
        return Reach::Dropped;
    }
    if tcp && rules.ssh_ports.contains(&port) {
        return Reach::Allowed;
    }
    if tcp && let Some((_, sources)) = rules.proxy_ports.iter().find(|(p, _)| *p == port) {
        return if sources.is_empty() {
            Reach::Allowed
        } else {
            Reach::AllowedFromSome
        };
    }
    let mut from_some = false;
    for rule in &rules.allow {
        let proto_ok = rule.protocol
            == if tcp {
                crate::input::model::Protocol::Tcp
            } else {
                crate::input::model::Protocol::Udp
            };
        let port_ok = rule.ports.is_none_or(|r| r.first <= port && port <= r.last);
        if (rule.ports.is_none() || proto_ok) && port_ok {
            if rule.from.is_empty() {
                return Reach::Allowed;
            }
            from_some = true;
        }
    }
    if from_some {
        Reach::AllowedFromSome
    } else {
        Reach::Dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_census_sees_listeners_this_test_opens() {
        let public = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let local = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("[::]:0").unwrap();
        let all = listeners().unwrap();
        let me = std::process::id() as i32;
        for (proto, port) in [
            ("tcp", public.local_addr().unwrap().port()),
            ("tcp", local.local_addr().unwrap().port()),
            ("udp", udp.local_addr().unwrap().port()),
        ] {
            let found = all
                .iter()
                .find(|l| l.protocol == proto && l.local.port() == port);
            let found = found.unwrap_or_else(|| panic!("{proto}/{port} not in {all:?}"));
            assert_eq!(
                found.process.as_ref().map(|(pid, _)| *pid),
                Some(me),
                "{found:?}"
            );
        }
    }

    #[test]
    fn classification() {
        let ud = crate::input::load("u", b"#cloud-config\nbatten:\n  firewall:\n    allow:\n      - {port: 80}\n      - {port: 5432, from: 203.0.113.10}\n  proxy:\n    - {listen: 8081, upstream: 127.0.0.1:8080, auth: {users: [{name: a}]}}\n").unwrap().user_data;
        let rules = Ruleset::from_user_data(&ud, vec![22]);
        let l = |proto: &'static str, addr: &str| Listener {
            protocol: proto,
            local: addr.parse().unwrap(),
            process: None,
        };
        assert_eq!(
            reach(&l("tcp", "127.0.0.1:8080"), &rules),
            Reach::LoopbackOnly
        );
        assert_eq!(
            reach(&l("tcp", "0.0.0.0:8080"), &rules),
            Reach::Dropped,
            "an upstream bound publicly"
        );
        assert_eq!(reach(&l("tcp", "[::]:22"), &rules), Reach::Allowed);
        assert_eq!(reach(&l("tcp", "0.0.0.0:80"), &rules), Reach::Allowed);
        assert_eq!(reach(&l("tcp", "0.0.0.0:8081"), &rules), Reach::Allowed);
        assert_eq!(
            reach(&l("tcp", "0.0.0.0:5432"), &rules),
            Reach::AllowedFromSome
        );
        assert_eq!(
            reach(&l("udp", "0.0.0.0:80"), &rules),
            Reach::Dropped,
            "the allow is tcp"
        );
        assert_eq!(reach(&l("tcp", "0.0.0.0:9999"), &rules), Reach::Dropped);
    }
}
