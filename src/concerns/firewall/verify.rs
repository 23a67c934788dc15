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
            Err(e) => (Status::Fail, e),
        };
        r.add("firewall.loaded", status, "the loaded ruleset", why);
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
            r.add("firewall.file", status, *path, detail);
        }
    }
}
