//! The iptables backend: `iptables-restore` and `ip6tables-restore` files
//! for the filter table, one per family.
//!
//! A restore file replaces the whole filter table in one step (atomic per
//! table), which is how iptables-persistent and iptables-services load
//! them at boot. Unlike the nftables backend it therefore also replaces
//! filter rules other software added at run time (Docker adds its own on
//! start, after this).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::backend::{Backend, Persist, run_tool};
use super::rules::{
    Ruleset, SSH_BURST, SSH_LIMIT_COMMENT, ports_text, proto_name, split_by_family,
};
use crate::host::distro::Family;
use crate::host::exec::Runner;
use crate::input::grammar::Source;

/// The match for one source in iptables' syntax.
fn source_match(s: &Source) -> String {
    match s {
        Source::Address { address } => format!("-s {address}"),
        Source::Network { network } => format!("-s {network}"),
        Source::Range { first, last } => format!("-m iprange --src-range {first}-{last}"),
    }
}

/// `-A INPUT` lines accepting `what` from each source of this family (or
/// from anyone when the rule has no sources at all).
fn accept_from(out: &mut String, sources: &[Source], v6: bool, what: &str, comment: &str) {
    let what = if what.is_empty() {
        String::new()
    } else {
        format!("{what} ")
    };
    if sources.is_empty() {
        let _ = writeln!(
            out,
            "-A INPUT {what}-m comment --comment \"{comment}\" -j ACCEPT"
        );
        return;
    }
    let (v4s, v6s) = split_by_family(sources);
    for s in if v6 { v6s } else { v4s } {
        let _ = writeln!(
            out,
            "-A INPUT {} {what}-m comment --comment \"{comment}\" -j ACCEPT",
            source_match(s)
        );
    }
}

/// The ruleset as an `iptables-restore` (or, with `v6`, `ip6tables-restore`)
/// file. Every value passed a grammar before it got here.
pub fn render(r: &Ruleset, v6: bool) -> String {
    let family = if v6 { "IPv6" } else { "IPv4" };
    let mut out = format!(
        "# Written by batten from user-data: default deny in ({family}).\n\
         *filter\n\
         :INPUT DROP [0:0]\n\
         :FORWARD {} [0:0]\n\
         :OUTPUT ACCEPT [0:0]\n\
         -A INPUT -i lo -m comment --comment \"loopback\" -j ACCEPT\n\
         -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment \"replies to our own traffic\" -j ACCEPT\n\
         -A INPUT -m conntrack --ctstate INVALID -m comment --comment \"invalid conntrack state\" -j DROP\n",
        if r.forward_drop { "DROP" } else { "ACCEPT" }
    );
    if v6 {
        out.push_str("-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type echo-request -m limit --limit 10/sec -m comment --comment \"ping, rate-limited\" -j ACCEPT\n");
        for t in [
            "destination-unreachable",
            "packet-too-big",
            "time-exceeded",
            "parameter-problem",
            "router-advertisement",
            "neighbour-solicitation",
            "neighbour-advertisement",
            "130",
        ] {
            let _ = writeln!(
                out,
                "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type {t} -m comment --comment \"IPv6 cannot work without these\" -j ACCEPT"
            );
        }
    } else {
        out.push_str("-A INPUT -p icmp -m icmp --icmp-type echo-request -m limit --limit 10/sec -m comment --comment \"ping, rate-limited\" -j ACCEPT\n");
        for t in [
            "destination-unreachable",
            "time-exceeded",
            "parameter-problem",
        ] {
            let _ = writeln!(
                out,
                "-A INPUT -p icmp -m icmp --icmp-type {t} -m comment --comment \"IPv4 errors\" -j ACCEPT"
            );
        }
    }
    // Per source address (hashlimit's table, one per port: its name holds
    // at most 15 characters), new connections only.
    for port in &r.ssh_ports {
        let _ = writeln!(
            out,
            "-A INPUT -p tcp -m tcp --dport {port} -m conntrack --ctstate NEW -m hashlimit --hashlimit-above 1/sec --hashlimit-burst {SSH_BURST} --hashlimit-mode srcip --hashlimit-name batten-ssh{port} -m comment --comment \"{SSH_LIMIT_COMMENT}\" -j DROP"
        );
    }
    for port in &r.ssh_ports {
        let _ = writeln!(
            out,
            "-A INPUT -p tcp -m tcp --dport {port} -m comment --comment \"ssh: always accepted\" -j ACCEPT"
        );
    }
    for port in &r.upstream_ports {
        let _ = writeln!(
            out,
            "-A INPUT -p tcp -m tcp --dport {port} -m comment --comment \"proxy upstream: loopback only (nginx in front has the password)\" -j DROP"
        );
    }
    for (port, sources) in &r.proxy_ports {
        accept_from(
            &mut out,
            sources,
            v6,
            &format!("-p tcp -m tcp --dport {port}"),
            "proxy",
        );
    }
    for (i, rule) in r.allow.iter().enumerate() {
        let what = match &rule.ports {
            Some(p) => {
                let proto = proto_name(rule.protocol);
                format!("-p {proto} -m {proto} --dport {}", ports_text(p, ':'))
            }
            None => String::new(),
        };
        // A rule with sources only of the other family says nothing here.
        let (v4s, v6s) = split_by_family(&rule.from);
        if !rule.from.is_empty() && (if v6 { v6s.is_empty() } else { v4s.is_empty() }) {
            continue;
        }
        accept_from(&mut out, &rule.from, v6, &what, &format!("allow[{i}]"));
    }
    if r.log_drops {
        out.push_str("-A INPUT -m limit --limit 5/min -m comment --comment \"what is dropped, rate-limited\" -j LOG --log-prefix \"batten drop: \"\n");
    }
    out.push_str("COMMIT\n");
    out
}

/// Run `iptables-WHAT` (or `ip6tables-WHAT`).
fn run(
    runner: &dyn Runner,
    v6: bool,
    what: &str,
    args: &[&str],
    input: Option<&[u8]>,
) -> Result<String, String> {
    let name = format!("{}{what}", if v6 { "ip6tables" } else { "iptables" });
    run_tool(runner, &name, args, input, "iptables")
}

/// `iptables-restore FILE`: the filter table replaced in one step.
pub fn load(runner: &dyn Runner, file: &Path, v6: bool) -> Result<(), String> {
    run(runner, v6, "-restore", &[&file.display().to_string()], None).map(|_| ())
}

/// The filter table as loaded now, to restore it if the new one fails.
pub fn current(runner: &dyn Runner, v6: bool) -> Result<String, String> {
    run(runner, v6, "-save", &["-t", "filter"], None)
}

/// Put back what `current` returned.
pub fn restore(runner: &dyn Runner, previous: &str, v6: bool) -> Result<(), String> {
    run(runner, v6, "-restore", &[], Some(previous.as_bytes())).map(|_| ())
}

/// `iptables-save`'s text without what changes with time and traffic:
/// comment lines and each chain's `[packets:bytes]`.
fn without_state(saved: &str) -> String {
    saved
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.strip_prefix(':') {
            Some(chain) => {
                let words: Vec<&str> = chain
                    .split_whitespace()
                    .filter(|w| !w.starts_with('['))
                    .collect();
                format!(":{}\n", words.join(" "))
            }
            None => format!("{l}\n"),
        })
        .collect()
}

/// The lines of a filter table that batten's rules file sets: the
/// built-in chains' policies and the INPUT chain. Chains and rules others
/// keep beside them (fail2ban's bans in its own chain, Docker's FORWARD
/// and DOCKER chains) change all the time and are not batten's to report.
fn battens_part(saved: &str) -> String {
    const KEPT: &[&str] = &[
        "*",
        "COMMIT",
        ":INPUT ",
        ":FORWARD ",
        ":OUTPUT ",
        "-A INPUT ",
    ];
    saved
        .lines()
        .filter(|l| KEPT.iter().any(|k| l.starts_with(k)))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Whether a saved INPUT rule names `port` as its TCP destination.
fn names_port(line: &str, port: u16) -> bool {
    line.contains(" -p tcp") && line.contains(&format!("--dport {port} "))
}

/// INPUT drops by default and each port has a rule accepting it from
/// anywhere.
/// Every (protocol, first, last) port an INPUT rule accepts by `--dport`
/// (a port or `first:last`) or `--dports` (a list of either).
fn accepted_ports(text: &str) -> Vec<(String, u16, u16)> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("-A INPUT ") && l.ends_with("-j ACCEPT"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        let protocol = words
            .windows(2)
            .find(|w| w[0] == "-p")
            .map_or("tcp", |w| w[1])
            .to_string();
        for w in words
            .windows(2)
            .filter(|w| w[0] == "--dport" || w[0] == "--dports")
        {
            for spec in w[1].split(',') {
                let (a, b) = spec.split_once(':').unwrap_or((spec, spec));
                if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                    out.push((protocol.clone(), a, b));
                }
            }
        }
    }
    out
}

fn accepts(text: &str, ssh_ports: &[u16]) -> bool {
    text.lines().any(|l| l.starts_with(":INPUT DROP"))
        && ssh_ports.iter().all(|p| {
            text.lines().any(|l| {
                l.starts_with("-A INPUT ")
                    && names_port(l, *p)
                    && l.ends_with("-j ACCEPT")
                    && !l.contains(" -s ")
            })
        })
}

/// For each port, walking INPUT in order, the first rule that names it
/// drops it from anywhere, and no rule before it lets the port's packets
/// in: every earlier rule that accepts or jumps to another chain is held
/// to what they never are (loopback, replies, ICMP, UDP, another port).
fn drops(text: &str, ports: &[u16]) -> bool {
    ports.iter().all(|p| {
        for l in text.lines().filter(|l| l.starts_with("-A INPUT ")) {
            if names_port(l, *p) {
                return l.ends_with("-j DROP") && !l.contains(" -s ");
            }
            let target = l.rsplit_once(" -j ").map_or("", |(_, t)| t.trim());
            let lets_in = !matches!(target, "" | "DROP" | "REJECT" | "LOG" | "RETURN")
                && !target.starts_with("REJECT ")
                && !target.starts_with("LOG ");
            if lets_in && !held_elsewhere(l, *p) {
                return false;
            }
        }
        false
    })
}

/// Whether a saved rule's matches keep TCP packets from outside to `port`
/// out: `-i lo`, a conntrack state that is not NEW, ICMP, UDP, or another
/// single destination port.
fn held_elsewhere(line: &str, port: u16) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |flag: &str| {
        words
            .iter()
            .position(|w| *w == flag)
            .and_then(|i| words.get(i + 1))
            .copied()
    };
    after("-i") == Some("lo")
        || after("--ctstate")
            .or_else(|| after("--state"))
            .is_some_and(|s| s.split(',').all(|s| s != "NEW" && s != "UNTRACKED"))
        || after("-p").is_some_and(|p| matches!(p, "icmp" | "ipv6-icmp" | "icmpv6" | "udp"))
        || after("--dport").is_some_and(|d| d.parse::<u16>().is_ok_and(|d| d != port))
}

/// The iptables backend, for [`super::of`].
pub struct Iptables;

impl Backend for Iptables {
    fn programs(&self) -> &'static [&'static str] {
        &["iptables-restore", "ip6tables-restore"]
    }

    fn boot_package(&self) -> &'static str {
        "iptables-persistent (Debian) or iptables-services (RHEL)"
    }

    fn render(&self, rules: &Ruleset) -> Vec<(&'static str, String)> {
        vec![("v4", render(rules, false)), ("v6", render(rules, true))]
    }

    fn persist(&self, family: Family) -> Persist {
        let (v4, v6, unit) = match family {
            Family::Debian => (
                "/etc/iptables/rules.v4",
                "/etc/iptables/rules.v6",
                "netfilter-persistent.service",
            ),
            Family::Rhel => (
                "/etc/sysconfig/iptables",
                "/etc/sysconfig/ip6tables",
                "iptables.service",
            ),
            Family::Alpine => (
                "/etc/iptables/rules-save",
                "/etc/iptables/rules6-save",
                "iptables.service",
            ),
        };
        Persist {
            files: vec![(v4, "v4"), (v6, "v6")],
            unit,
        }
    }

    fn image_checks(&self) -> &'static [(&'static str, &'static [&'static str])] {
        &[
            ("iptables-restore", &["--test"]),
            ("ip6tables-restore", &["--test"]),
        ]
    }

    fn load(
        &self,
        runner: &dyn Runner,
        files: &[PathBuf],
        ssh_ports: &[u16],
    ) -> Result<bool, String> {
        let previous = (current(runner, false)?, current(runner, true)?);
        let verdict = load(runner, &files[0], false)
            .and_then(|()| load(runner, &files[1], true))
            .and_then(|()| {
                // A read-back that fails counts as a refusal too.
                if self.loaded_accepts(runner, ssh_ports)? {
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
                restore(runner, &previous.0, false),
                restore(runner, &previous.1, true),
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
        // Whether the load changed the rules: not the dump's date line or
        // the packet counters, which differ at every read.
        Ok(
            without_state(&previous.0) != without_state(&current(runner, false)?)
                || without_state(&previous.1) != without_state(&current(runner, true)?),
        )
    }

    /// Both families' filter tables, read back with `iptables-save`.
    fn loaded_accepts(&self, runner: &dyn Runner, ssh_ports: &[u16]) -> Result<bool, String> {
        Ok(accepts(&current(runner, false)?, ssh_ports)
            && accepts(&current(runner, true)?, ssh_ports))
    }

    /// Both families' INPUT chains, read back with `iptables-save`.
    fn loaded_drops(&self, runner: &dyn Runner, ports: &[u16]) -> Result<bool, String> {
        Ok(drops(&current(runner, false)?, ports) && drops(&current(runner, true)?, ports))
    }

    /// Both families' INPUT chains, read back with `iptables-save`.
    fn loaded_accepted_ports(
        &self,
        runner: &dyn Runner,
    ) -> Result<Vec<(String, u16, u16)>, String> {
        let mut out = accepted_ports(&current(runner, false)?);
        out.extend(accepted_ports(&current(runner, true)?));
        Ok(out)
    }

    /// What batten sets in both families' filter tables, as `iptables-save`
    /// prints it: the built-in chains' policies and the INPUT chain's rules
    /// ([`battens_part`]), without comments (a date) or packet counters.
    fn loaded_listing(&self, runner: &dyn Runner) -> Result<String, String> {
        let mut out = String::new();
        for (v6, family) in [(false, "IPv4"), (true, "IPv6")] {
            out.push_str(&format!("# {family}\n"));
            out.push_str(&battens_part(&without_state(&current(runner, v6)?)));
        }
        Ok(out)
    }

    /// iptables-legacy needs `ip_tables`; iptables-nft loads what it uses.
    fn unused_modules(&self) -> &'static [&'static str] {
        &[]
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_listing_leaves_out_what_traffic_changes() {
        let saved = "# Generated by iptables-save v1.8.9 on Sat Dec  5 03:00:00 2026\n*filter\n:INPUT DROP [12:3456]\n:FORWARD DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n# Completed on Sat Dec  5 03:00:00 2026\n";
        assert_eq!(
            without_state(saved),
            "*filter\n:INPUT DROP\n:FORWARD DROP\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n"
        );
    }

    #[test]
    fn the_listing_is_what_battens_file_sets_not_what_others_add_beside_it() {
        let saved = "*filter\n:INPUT DROP\n:FORWARD DROP\n:OUTPUT ACCEPT\n:DOCKER -\n:f2b-sshd -\n-A INPUT -i lo -j ACCEPT\n-A FORWARD -j DOCKER\n-A f2b-sshd -s 198.51.100.7/32 -j REJECT\nCOMMIT\n";
        assert_eq!(
            battens_part(saved),
            "*filter\n:INPUT DROP\n:FORWARD DROP\n:OUTPUT ACCEPT\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n"
        );
    }

    #[test]
    fn accepted_ports_read_back_from_iptables_save() {
        let text = "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 8080 -j DROP\n-A INPUT -p udp -m multiport --dports 53,60000:61000 -j ACCEPT\nCOMMIT\n";
        assert_eq!(
            accepted_ports(text),
            [
                ("tcp".to_string(), 22, 22),
                ("udp".to_string(), 53, 53),
                ("udp".to_string(), 60000, 61000)
            ]
        );
    }
    use super::*;
    use crate::concerns::firewall::rules::allow;
    use crate::input::model::Protocol;

    fn rules() -> Ruleset {
        Ruleset {
            ssh_ports: vec![22],
            proxy_ports: vec![(80, vec![])],
            upstream_ports: vec![8080],
            allow: vec![
                allow(Some((5432, 5432)), Protocol::Tcp, &["203.0.113.10"]),
                allow(Some((8000, 8010)), Protocol::Udp, &[]),
                allow(
                    None,
                    Protocol::Tcp,
                    &["198.51.100.10-198.51.100.20", "2001:db8::/32"],
                ),
            ],
            log_drops: false,
            forward_drop: false,
        }
    }

    #[test]
    fn exact_v4_text() {
        let text = render(&rules(), false);
        let tail: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("--dport 22 "))
            .collect();
        assert_eq!(
            tail.join("\n"),
            "-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m hashlimit --hashlimit-above 1/sec --hashlimit-burst 10 --hashlimit-mode srcip --hashlimit-name batten-ssh22 -m comment --comment \"ssh: over 10 new connections in 10 s from one address\" -j DROP\n\
             -A INPUT -p tcp -m tcp --dport 22 -m comment --comment \"ssh: always accepted\" -j ACCEPT\n\
             -A INPUT -p tcp -m tcp --dport 8080 -m comment --comment \"proxy upstream: loopback only (nginx in front has the password)\" -j DROP\n\
             -A INPUT -p tcp -m tcp --dport 80 -m comment --comment \"proxy\" -j ACCEPT\n\
             -A INPUT -s 203.0.113.10 -p tcp -m tcp --dport 5432 -m comment --comment \"allow[0]\" -j ACCEPT\n\
             -A INPUT -p udp -m udp --dport 8000:8010 -m comment --comment \"allow[1]\" -j ACCEPT\n\
             -A INPUT -m iprange --src-range 198.51.100.10-198.51.100.20 -m comment --comment \"allow[2]\" -j ACCEPT\n\
             COMMIT"
        );
        assert!(text.contains(":INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"));
    }

    #[test]
    fn v6_keeps_only_its_family() {
        let text = render(&rules(), true);
        assert!(
            !text.contains("203.0.113.10"),
            "an IPv4-only rule has no IPv6 line"
        );
        assert!(
            text.contains(
                "-A INPUT -s 2001:db8::/32 -m comment --comment \"allow[2]\" -j ACCEPT\n"
            )
        );
        assert!(text.contains("--icmpv6-type neighbour-solicitation"));
        assert!(
            text.contains("-p udp -m udp --dport 8000:8010"),
            "a port rule without sources applies to both families"
        );
    }

    #[test]
    fn read_back_judges_what_the_kernel_holds() {
        let saved = render(&rules(), false);
        assert!(accepts(&saved, &[22]));
        assert!(!accepts(&saved, &[5432]), "accepted from one source only");
        assert!(drops(&saved, &[8080]));
        assert!(!drops(&saved, &[8081]), "not named at all");
        let accepted_first = saved.replacen(
            "-A INPUT -p tcp -m tcp --dport 8080",
            "-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 8080",
            1,
        );
        assert!(!drops(&accepted_first, &[8080]), "accepted before the drop");
        // Rules inserted ahead of the drop, as `iptables -I` puts them.
        let first_rule = saved.find("-A INPUT ").unwrap();
        for (rule, held) in [
            (
                "-A INPUT -s 203.0.113.0/24 -p tcp -m tcp --dport 8080 -j ACCEPT",
                false,
            ),
            ("-A INPUT -j ACCEPT", false),
            ("-A INPUT -s 203.0.113.0/24 -j ACCEPT", false),
            ("-A INPUT -m conntrack --ctstate NEW -j ACCEPT", false),
            ("-A INPUT -j SOMEWHERE", false),
            ("-A INPUT -p tcp -m tcp --dport 8081 -j ACCEPT", true),
            ("-A INPUT -p udp -m udp --dport 8080 -j ACCEPT", true),
            ("-A INPUT -j LOG --log-prefix x", true),
        ] {
            let mut text = saved.clone();
            text.insert_str(first_rule, &format!("{rule}\n"));
            assert_eq!(drops(&text, &[8080]), held, "{rule}");
        }
    }

    /// A load of the rules already there changes nothing, though every
    /// `iptables-save` prints another date and other counters; new rules
    /// are a change.
    #[test]
    fn a_load_is_a_change_only_when_the_rules_are() {
        use crate::host::exec::fake::Fake;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let files = [PathBuf::from("/r4"), PathBuf::from("/r6")];
        for (after_load, changed) in [("", false), ("-A INPUT -j LOG\n", true)] {
            let reads = Arc::new(AtomicUsize::new(0));
            let loaded = Arc::new(Mutex::new(false));
            let (r, l) = (reads.clone(), loaded.clone());
            let fake = Fake::new(move |line| {
                let v6 = line.starts_with("ip6tables");
                if line.contains("-restore") {
                    *l.lock().unwrap() = true;
                    return Ok(String::new());
                }
                let n = r.fetch_add(1, Ordering::SeqCst);
                let rules = render(&rules(), v6);
                let extra = if *l.lock().unwrap() { after_load } else { "" };
                Ok(format!(
                    "# Generated by iptables-save on read {n}\n{}",
                    rules
                        .replacen(":INPUT DROP", &format!(":INPUT DROP [{n}:{}]", n * 60), 1)
                        .replacen("COMMIT", &format!("{extra}COMMIT"), 1)
                ))
            });
            assert_eq!(
                Iptables.load(&fake, &files, &[22]),
                Ok(changed),
                "{after_load}"
            );
        }
    }
}
