//! Checking the firewall: the ruleset the kernel holds (live), or the
//! files the boot loads (an image).

use crate::concerns::report::{Inputs, Report, Status};

/// Every check of the firewall.
pub fn verify(inp: &Inputs, r: &mut Report) {
    let fw = &inp.user_data.batten.firewall;
    if !fw.enabled {
        r.add(
            "firewall",
            Status::Warn,
            "firewall",
            "off in user-data: every listening port is reachable",
        );
        return;
    }
    let ports =
        crate::concerns::ssh::listening_ports(inp.root, inp.user_data).unwrap_or_else(|_| vec![22]);
    let upstream = crate::concerns::firewall::Ruleset::from_user_data(inp.user_data, ports.clone())
        .upstream_ports;
    if inp.root.is_host() {
        let kind = match crate::concerns::firewall::backend(inp.user_data, inp.root, inp.distro) {
            Ok((kind, _)) => kind,
            Err(e) => {
                r.add("firewall.loaded", Status::Fail, "the loaded ruleset", e);
                return;
            }
        };
        let backend = crate::concerns::firewall::of(kind);
        let accepts = backend.loaded_accepts(inp.runner, &ports);
        let drops = backend.loaded_drops(inp.runner, &upstream);
        let (status, why) = match accepts {
            Ok(true) => (
                Status::Pass,
                format!("drops by default, accepts SSH on {ports:?}"),
            ),
            Ok(false) => (
                Status::Fail,
                format!("does not drop by default or does not accept SSH on {ports:?}"),
            ),
            // The tool's first line is the evidence (nft adds the command
            // and a caret under it).
            Err(e) => (
                Status::Fail,
                format!(
                    "batten's rules cannot be read back from the kernel (deleted or flushed?): {}",
                    e.lines().next().unwrap_or_default()
                ),
            ),
        };
        r.add("firewall.loaded", status, "the loaded ruleset", why);
        let rules =
            crate::concerns::firewall::Ruleset::from_user_data(inp.user_data, ports.clone());
        match backend.loaded_accepted_ports(inp.runner) {
            Ok(accepted) => {
                let extra: Vec<String> = accepted
                    .iter()
                    .filter(|(proto, first, last)| !asked_for(&rules, proto, *first, *last))
                    .map(|(proto, first, last)| {
                        if first == last {
                            format!("{first}/{proto}")
                        } else {
                            format!("{first}-{last}/{proto}")
                        }
                    })
                    .collect();
                if extra.is_empty() {
                    r.add(
                        "firewall.accepts",
                        Status::Pass,
                        "ports the loaded ruleset accepts",
                        "only the ports the user-data opens (SSH, the proxy, batten.firewall.allow)",
                    );
                } else {
                    r.add(
                        "firewall.accepts",
                        Status::Fail,
                        "ports the loaded ruleset accepts",
                        format!(
                            "also {}, which the user-data does not open (a rule added since batten loaded it)",
                            extra.join(", ")
                        ),
                    );
                }
            }
            Err(e) => r.add(
                "firewall.accepts",
                Status::Fail,
                "ports the loaded ruleset accepts",
                e,
            ),
        }
        if !upstream.is_empty() {
            let (status, why) = match drops {
                Ok(true) => (
                    Status::Pass,
                    format!("drops the proxy upstream port(s) {upstream:?} from outside"),
                ),
                Ok(false) => (
                    Status::Fail,
                    format!(
                        "does not drop the proxy upstream port(s) {upstream:?} before accepting them"
                    ),
                ),
                Err(e) => (Status::Fail, e),
            };
            r.add("firewall.upstream", status, "the loaded ruleset", why);
        }
    } else {
        r.add(
            "firewall.loaded",
            Status::Skip,
            "the loaded ruleset",
            "--root: nothing is loaded for an image",
        );
        let persist = match crate::concerns::firewall::backend(inp.user_data, inp.root, inp.distro)
        {
            Ok((_, persist)) => persist,
            Err(e) => {
                r.add("firewall.file", Status::Fail, "firewall file", e);
                return;
            }
        };
        // Every file the boot loads (iptables has one per family) must
        // drop by default and accept SSH.
        for (path, _) in &persist.files {
            let (status, detail) = match inp.root.read_to_string(path) {
                Ok(Some(text)) => {
                    // The input chain's policy, not the forward chain's.
                    let drops = text.contains("hook input priority filter; policy drop;")
                        || text.lines().any(|l| l.starts_with(":INPUT DROP"));
                    let ssh = ports.iter().all(|p| text.contains(&format!("dport {p} ")));
                    let upstream_dropped = upstream.iter().all(|p| {
                        text.lines().any(|l| {
                            l.contains(&format!("dport {p} "))
                                && (l.contains(&format!("dport {p} drop"))
                                    || l.ends_with("-j DROP"))
                        })
                    });
                    if drops && ssh && upstream_dropped {
                        (Status::Pass, "default deny, SSH accepted".to_string())
                    } else {
                        (
                            Status::Fail,
                            "not batten's default-deny ruleset with SSH and the proxy upstreams dropped".to_string(),
                        )
                    }
                }
                Ok(None) => (
                    Status::Fail,
                    format!("missing: {} loads no ruleset from it at boot", persist.unit),
                ),
                Err(e) => (Status::Fail, e.to_string()),
            };
            // One id per file (iptables has two): the baseline matches
            // each with its own.
            r.add(&format!("firewall.file.{path}"), status, *path, detail);
        }
    }
}

/// batten's rules as the running kernel holds them (see
/// `Backend::loaded_listing`): `None` where there is nothing of batten's
/// to hold (an image, the firewall off in user-data).
pub fn loaded_listing(inp: &Inputs) -> Option<Result<String, String>> {
    if !inp.root.is_host() || !inp.user_data.batten.firewall.enabled {
        return None;
    }
    Some(
        crate::concerns::firewall::backend(inp.user_data, inp.root, inp.distro)
            .and_then(|(kind, _)| crate::concerns::firewall::of(kind).loaded_listing(inp.runner)),
    )
}

/// Whether the user-data opens `first..=last` for `proto`: an SSH port, a
/// proxy port, or an allow rule (of that protocol, or of every port from
/// some sources).
fn asked_for(
    rules: &crate::concerns::firewall::Ruleset,
    proto: &str,
    first: u16,
    last: u16,
) -> bool {
    use crate::input::model::Protocol;
    let single = (first == last).then_some(first);
    let tcp = proto == "tcp";
    if tcp
        && let Some(p) = single
        && (rules.ssh_ports.contains(&p) || rules.proxy_ports.iter().any(|(q, _)| *q == p))
    {
        return true;
    }
    rules.allow.iter().any(|rule| {
        let proto_ok = match rule.protocol {
            Protocol::Tcp => tcp,
            Protocol::Udp => proto == "udp",
        };
        rule.ports
            .is_some_and(|r| proto_ok && r.first <= first && last <= r.last)
    })
}
