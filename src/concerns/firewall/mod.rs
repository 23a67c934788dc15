//! The default-deny firewall: one rule model, two backends (nftables and
//! iptables), rendered as text by pure functions and loaded atomically.
//!
//! What is always accepted (safety rule 2) is not a choice the user-data
//! can take away: loopback, established traffic, the ICMP that IPv4 and
//! IPv6 need, and the port(s) sshd really listens on. Proxy upstream ports
//! (safety rule 3) are dropped for everything but loopback, before any
//! user rule is looked at.

pub mod backend;
pub mod iptables;
pub mod nftables;
pub mod rules;

pub use crate::plan::FirewallKind as Kind;
pub use backend::{Backend, Persist};
pub use rules::{Ruleset, split_by_family};

use crate::host::distro::Distro;
use crate::host::exec::{self, ExecError, Runner};
use crate::host::root::{Owner, Root};
use crate::input::model::{FirewallBackend, UserData};
use crate::plan::{Action, PlanError, StepError};

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
fn root_has(root: &Root, program: &str) -> bool {
    crate::host::exec::in_image(root, program).is_some()
}

/// The backend the root's tools and the user-data choose, and where the
/// distribution loads its rules at boot: one answer for the plan that
/// writes them and for verify, which reads them back.
pub fn backend(ud: &UserData, root: &Root, distro: &Distro) -> Result<(Kind, Persist), String> {
    let kind = choose(ud.batten.firewall.backend, |p| root_has(root, p))?;
    Ok((kind, of(kind).persist(distro.family)))
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
) -> Result<Vec<Action>, PlanError> {
    if !ud.batten.firewall.enabled {
        notes.push("WARNING: the firewall is off (batten.firewall.enabled: false): every listening port is reachable".into());
        return Ok(Vec::new());
    }
    let (kind, persist) = backend(ud, root, distro)
        .map_err(|e| PlanError::missing(format!("{e}; nothing was changed")))?;
    let rules = Ruleset::from_user_data(ud, ssh_ports.clone());
    let texts = of(kind).render(&rules);
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
        let owner = root.metadata(path)?.map(|m| m.owner()).unwrap_or(Owner {
            uid: 0,
            gid: 0,
            mode: 0o644,
        });
        let why = format!(
            "default-deny firewall ({}), loaded at boot by {}",
            kind.name(),
            persist.unit
        );
        actions.extend(Action::write_if_changed(
            root,
            path,
            text.into_bytes(),
            owner,
            false,
            &why,
        )?);
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
    match crate::host::systemd::find(root, persist.unit)? {
        None => notes.push(format!(
            "{} is not installed in the root, so nothing loads the firewall at later boots; install {}",
            persist.unit,
            of(kind).boot_package()
        )),
        Some(unit) if !crate::host::systemd::is_enabled(root, &unit)? => {
            for (path, target) in crate::host::systemd::enable_links(&unit) {
                if root.metadata(&path)?.is_none() {
                    actions.push(Action::Symlink { path, target, why: format!("enable {} so the firewall loads at every boot", persist.unit) });
                }
            }
        }
        Some(_) => {}
    }
    Ok(actions)
}

/// Carry out `Action::Firewall`: on the live system load the files with
/// the previous ruleset kept, read the result back from the kernel, and put
/// the previous one back unless every SSH port is accepted; for an image,
/// check the files with the tools.
pub fn apply(
    runner: &dyn Runner,
    root: &Root,
    kind: Kind,
    files: &[String],
    ssh_ports: &[u16],
) -> Result<bool, StepError> {
    let backend = of(kind);
    if !root.is_host() {
        return check(runner, root, backend, files).map(|()| false);
    }
    let paths: Vec<std::path::PathBuf> = files.iter().map(|f| root.host_path(f)).collect();
    Ok(backend.load(runner, &paths, ssh_ports)?)
}

/// Check an image's files with its own tools, without loading them (see
/// `exec`): `nft -c`, `iptables-restore --test`. A tool that cannot run
/// here leaves the check to the machine's first boot, which loads the files
/// and reads the result back before anything is final.
fn check(
    runner: &dyn Runner,
    root: &Root,
    backend: &dyn Backend,
    files: &[String],
) -> Result<(), StepError> {
    for ((program, args), file) in backend.image_checks().iter().zip(files) {
        let text = root
            .read(file)?
            .ok_or_else(|| format!("{file} is missing after it was written"))?;
        let run = exec::Check {
            program,
            args,
            stdin: Some(&text),
            config_dir: None,
        };
        match runner.check(root, &run) {
            Ok(_) => {}
            Err(ExecError::Foreign { why, .. }) => {
                exec::static_only(&format!("{program} {} < {file}", args.join(" ")), &why)
            }
            Err(e) => return Err(format!("{file}: {e}").into()),
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
