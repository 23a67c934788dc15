//! The default-deny firewall: one rule model, two backends (nftables and
//! iptables), rendered as text by pure functions and loaded atomically.
//!
//! What is always accepted (safety rule 2) is not a choice the user-data
//! can take away: loopback, established traffic, the ICMP that IPv4 and
//! IPv6 need, and the port(s) sshd really listens on. Proxy upstream ports
//! (safety rule 3) are dropped for everything but loopback, before any
//! user rule is looked at.

pub mod iptables;
pub mod nftables;

use crate::exit::{Code, Failure};
use crate::host::distro::{Distro, Family};
use crate::host::root::{Owner, Root};
use crate::input::grammar::{PortRange, Source};
use crate::input::model::{AllowRule, FirewallBackend, Protocol, Upstream, UserData};
use crate::plan::Action;

/// Everything a ruleset says, independent of the tool that loads it.
#[derive(Clone, Debug, PartialEq)]
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
            let mut listen = vec![site.listen];
            if site.tls.is_some() && site.listen != 80 {
                // The redirect from plain HTTP.
                listen.push(80);
            }
            // Sites sharing a port share its sources: anyone if one of them
            // allows anyone, else every site's sources together.
            for port in listen {
                match proxy_ports.iter_mut().find(|(p, _)| *p == port) {
                    None => proxy_ports.push((port, site.allow_from.clone())),
                    Some((_, sources)) if sources.is_empty() => {}
                    Some((_, sources)) if site.allow_from.is_empty() => sources.clear(),
                    Some((_, sources)) => {
                        for s in &site.allow_from {
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

/// Which tool writes and loads the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One `inet` table for both families.
    Nftables,
    /// `iptables-restore` and `ip6tables-restore` files.
    Iptables,
}

/// Where the distribution loads rules from at boot, and the unit that
/// does it.
pub struct Persist {
    /// (root-relative path, which text: "nft", "v4" or "v6").
    pub files: Vec<(&'static str, &'static str)>,
    /// The systemd unit that loads them at boot.
    pub unit: &'static str,
}

/// The distribution's place for each backend.
pub fn persist(kind: Kind, distro: &Distro) -> Persist {
    match (kind, distro.family) {
        (Kind::Nftables, Family::Debian) => Persist {
            files: vec![("/etc/nftables.conf", "nft")],
            unit: "nftables.service",
        },
        (Kind::Nftables, Family::Rhel) => Persist {
            files: vec![("/etc/sysconfig/nftables.conf", "nft")],
            unit: "nftables.service",
        },
        (Kind::Nftables, Family::Alpine) => Persist {
            files: vec![("/etc/nftables.d/batten.nft", "nft")],
            unit: "nftables.service",
        },
        (Kind::Iptables, Family::Debian) => Persist {
            files: vec![
                ("/etc/iptables/rules.v4", "v4"),
                ("/etc/iptables/rules.v6", "v6"),
            ],
            unit: "netfilter-persistent.service",
        },
        (Kind::Iptables, Family::Rhel) => Persist {
            files: vec![
                ("/etc/sysconfig/iptables", "v4"),
                ("/etc/sysconfig/ip6tables", "v6"),
            ],
            unit: "iptables.service",
        },
        (Kind::Iptables, Family::Alpine) => Persist {
            files: vec![
                ("/etc/iptables/rules-save", "v4"),
                ("/etc/iptables/rules6-save", "v6"),
            ],
            unit: "iptables.service",
        },
    }
}

/// The backend: as configured, or nftables where the root has `nft`,
/// else iptables where it has `iptables-restore`.
pub fn choose(configured: FirewallBackend, has: impl Fn(&str) -> bool) -> Result<Kind, String> {
    let nft = has("nft");
    let ipt = has("iptables-restore") && has("ip6tables-restore");
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

/// The text of each file for `kind`: "nft", or "v4" and "v6".
pub fn render(kind: Kind, rules: &Ruleset) -> Vec<(&'static str, String)> {
    match kind {
        Kind::Nftables => vec![("nft", nftables::render(rules))],
        Kind::Iptables => vec![
            ("v4", iptables::render(rules, false)),
            ("v6", iptables::render(rules, true)),
        ],
    }
}

/// Whether the root has a program (an image's own tools decide the backend
/// it boots with).
fn root_has(root: &Root, program: &str) -> bool {
    crate::host::exec::in_image(root, program).is_some()
}

/// The backend the root's tools and the user-data choose, and where the
/// distribution loads its rules at boot: one answer for the plan that
/// writes them and for verify, which reads them back.
pub fn backend(ud: &UserData, root: &Root, distro: &Distro) -> Result<(Kind, Persist), String> {
    let kind = choose(ud.batten.firewall.backend, |p| root_has(root, p))?;
    Ok((kind, persist(kind, distro)))
}

/// Plan the firewall: its files where the distribution loads them at
/// boot, the unit that loads them enabled, and the load itself (checked
/// only, under `--root`).
pub fn plan(
    ud: &UserData,
    root: &Root,
    distro: &Distro,
    ssh_ports: Vec<u16>,
    notes: &mut Vec<String>,
) -> Result<Vec<Action>, Failure> {
    if !ud.batten.firewall.enabled {
        notes.push("WARNING: the firewall is off (batten.firewall.enabled: false): every listening port is reachable".into());
        return Ok(Vec::new());
    }
    let fail = |e: crate::host::root::RootError| {
        Failure::new(Code::ApplyFailed, format!("{e}; nothing was changed"))
    };
    let (kind, persist) = backend(ud, root, distro)
        .map_err(|e| Failure::new(Code::MissingProgram, format!("{e}; nothing was changed")))?;
    let rules = Ruleset::from_user_data(ud, ssh_ports.clone());
    let texts = render(kind, &rules);
    let mut actions = Vec::new();
    let mut files = Vec::new();
    for (path, which) in &persist.files {
        let text = texts
            .iter()
            .find(|(w, _)| w == which)
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        files.push(path.to_string());
        // The image's own file keeps its owner and mode.
        let owner = root
            .metadata(path)
            .map_err(fail)?
            .map(|m| m.owner())
            .unwrap_or(Owner {
                uid: 0,
                gid: 0,
                mode: 0o644,
            });
        let why = format!(
            "default-deny firewall ({}), loaded at boot by {}",
            kind_name(kind),
            persist.unit
        );
        actions.extend(
            Action::write_if_changed(root, path, text.into_bytes(), owner, false, &why)
                .map_err(fail)?,
        );
    }
    // Load (or, for an image, check) whenever the file changed; on the live
    // system always, since the kernel may hold something else.
    if !actions.is_empty() || root.is_host() {
        actions.push(Action::Firewall {
            kind,
            files,
            ssh_ports,
        });
    }
    match crate::host::systemd::find(root, persist.unit).map_err(fail)? {
        None => notes.push(format!(
            "{} is not installed in the root, so nothing loads the firewall at later boots; install {}",
            persist.unit,
            if kind == Kind::Nftables { "nftables" } else { "iptables-persistent (Debian) or iptables-services (RHEL)" }
        )),
        Some(unit) if !crate::host::systemd::is_enabled(root, &unit).map_err(fail)? => {
            for (path, target) in crate::host::systemd::enable_links(&unit) {
                if root.metadata(&path).map_err(fail)?.is_none() {
                    actions.push(Action::Symlink { path, target, why: format!("enable {} so the firewall loads at every boot", persist.unit) });
                }
            }
        }
        Some(_) => {}
    }
    Ok(actions)
}

/// The backend's name for messages.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Nftables => "nftables",
        Kind::Iptables => "iptables",
    }
}

/// Carry out `Action::Firewall`: on the live system load the files with
/// the previous ruleset kept, read the result back from the kernel, and put
/// the previous one back unless every SSH port is accepted; for an image,
/// check the files with the tools.
pub fn apply(root: &Root, kind: Kind, files: &[String], ssh_ports: &[u16]) -> Result<bool, String> {
    if !root.is_host() {
        return check(root, kind, files).map(|()| false);
    }
    let paths: Vec<std::path::PathBuf> = files.iter().map(|f| root.host_path(f)).collect();
    match kind {
        Kind::Nftables => {
            let previous = nftables::current()?;
            nftables::load(&paths[0])?;
            // Anything short of reading back a ruleset that accepts SSH,
            // including a read-back that fails, puts the previous one back.
            let verdict = nftables::loaded_accepts(ssh_ports).and_then(|accepts| {
                if accepts {
                    nftables::current()
                } else {
                    Err(format!(
                        "the loaded ruleset does not accept SSH port(s) {ssh_ports:?}"
                    ))
                }
            });
            match verdict {
                Ok(now) => Ok(previous != now),
                Err(why) => Err(match nftables::restore(previous.as_deref()) {
                    Ok(()) => format!("{why}; the previous ruleset is back"),
                    Err(e) => format!("{why}; restoring the previous ruleset ALSO failed: {e}"),
                }),
            }
        }
        Kind::Iptables => {
            let previous = (iptables::current(false)?, iptables::current(true)?);
            let verdict = iptables::load(&paths[0], false)
                .and_then(|()| iptables::load(&paths[1], true))
                .and_then(|()| {
                    // A read-back that fails counts as a refusal too.
                    let v4 = iptables::loaded_accepts(ssh_ports, false)?;
                    let v6 = iptables::loaded_accepts(ssh_ports, true)?;
                    if v4 && v6 {
                        Ok(())
                    } else {
                        Err(format!(
                            "the loaded rules do not accept SSH port(s) {ssh_ports:?}"
                        ))
                    }
                });
            if let Err(why) = verdict {
                // Both families are put back even if one of them fails.
                let restored: Vec<String> = [
                    iptables::restore(&previous.0, false),
                    iptables::restore(&previous.1, true),
                ]
                .into_iter()
                .filter_map(Result::err)
                .collect();
                return Err(if restored.is_empty() {
                    format!("{why}; the previous rules are back")
                } else {
                    format!(
                        "{why}; restoring the previous rules ALSO failed: {}",
                        restored.join("; ")
                    )
                });
            }
            Ok(previous != (iptables::current(false)?, iptables::current(true)?))
        }
    }
}

/// Run a firewall tool with `input` on its standard input; its standard
/// output, or its words on failure.
fn run_tool(
    program: std::path::PathBuf,
    args: &[&str],
    input: Option<&[u8]>,
) -> Result<String, String> {
    use std::io::Write;
    let mut child = std::process::Command::new(&program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(bytes).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} {}: {}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Check an image's files with its own tools, without loading them (see
/// `exec`): `nft -c`, `iptables-restore --test`. A tool that cannot run
/// here leaves the check to the machine's first boot, which loads the files
/// and reads the result back before anything is final.
fn check(root: &Root, kind: Kind, files: &[String]) -> Result<(), String> {
    let tools: &[(&str, &[&str])] = match kind {
        Kind::Nftables => &[("nft", &["-c", "-f", "-"])],
        Kind::Iptables => &[
            ("iptables-restore", &["--test"]),
            ("ip6tables-restore", &["--test"]),
        ],
    };
    for ((program, args), file) in tools.iter().zip(files) {
        let text = root
            .read(file)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{file} is missing after it was written"))?;
        let run = crate::host::exec::Check {
            program,
            args,
            stdin: Some(&text),
            config_dir: None,
        };
        match crate::host::exec::run(root, &run) {
            Ok(_) => {}
            Err(crate::host::exec::ExecError::Foreign { why, .. }) => {
                crate::host::exec::static_only(
                    &format!("{program} {} < {file}", args.join(" ")),
                    &why,
                )
            }
            Err(e) => return Err(format!("{file}: {e}")),
        }
    }
    Ok(())
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
            for (_, text) in render(kind, &rules) {
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
