//! The nftables backend: one `table inet batten` for IPv4 and IPv6.
//!
//! The file starts by creating and deleting batten's own table, so loading
//! it replaces exactly that table (atomically: `nft -f` is one
//! transaction) and leaves every other table alone, a Docker or libvirt
//! one included; loading it twice gives the same ruleset.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::backend::{Backend, Persist, run_tool};
use super::rules::{
    Ruleset, SSH_BURST, SSH_LIMIT_COMMENT, ports_text, proto_name, split_by_family,
};
use crate::host::distro::Family;
use crate::host::exec::Runner;
use crate::input::grammar::Source;

/// The family of the table batten owns: one table for IPv4 and IPv6.
const FAMILY: &str = "inet";
/// The name of the table batten owns.
const NAME: &str = "batten";

fn set(sources: &[&Source]) -> String {
    let items: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

/// `accept` lines for traffic from `sources` (anyone when empty) to
/// `what` (a `tcp dport 80` match, or nothing for every port).
fn accept_from(out: &mut String, sources: &[Source], what: &str, comment: &str) {
    let what = if what.is_empty() {
        String::new()
    } else {
        format!("{what} ")
    };
    if sources.is_empty() {
        let _ = writeln!(out, "\t\t{what}accept comment \"{comment}\"");
        return;
    }
    let (v4, v6) = split_by_family(sources);
    if !v4.is_empty() {
        let _ = writeln!(
            out,
            "\t\tip saddr {} {what}accept comment \"{comment}\"",
            set(&v4)
        );
    }
    if !v6.is_empty() {
        let _ = writeln!(
            out,
            "\t\tip6 saddr {} {what}accept comment \"{comment}\"",
            set(&v6)
        );
    }
}

/// The ruleset as an `nft -f` file. Every value in it passed a grammar
/// (ports are numbers, sources are parsed addresses); comments are batten's
/// own words.
pub fn render(r: &Ruleset) -> String {
    let mut out = String::from(
        "#!/usr/sbin/nft -f\n\
         # Written by batten from user-data: default deny in, IPv4 and IPv6.\n\
         # Only batten's own table is replaced; other tables are left alone.\n",
    );
    out.push_str(&replace_own_table());
    out.push_str(&format!("\ntable {FAMILY} {NAME} {{\n"));
    // One entry per source address that opened an SSH connection lately,
    // each with its own token bucket; bounded, and forgotten after a
    // minute of quiet.
    if !r.ssh_ports.is_empty() {
        for (set, kind) in [("ssh_rate_v4", "ipv4_addr"), ("ssh_rate_v6", "ipv6_addr")] {
            let _ = writeln!(
                out,
                "\tset {set} {{\n\t\ttype {kind}\n\t\tsize 65535\n\t\tflags dynamic,timeout\n\t\ttimeout 1m\n\t}}\n"
            );
        }
    }
    out.push_str(
        "\tchain input {\n\
         \t\ttype filter hook input priority filter; policy drop;\n\
         \t\tiif \"lo\" accept comment \"loopback\"\n\
         \t\tct state established,related accept comment \"replies to our own traffic\"\n\
         \t\tct state invalid drop comment \"invalid conntrack state\"\n\
         \t\ticmp type echo-request limit rate 10/second accept comment \"ping, rate-limited\"\n\
         \t\ticmp type { destination-unreachable, time-exceeded, parameter-problem } accept comment \"IPv4 errors\"\n\
         \t\ticmpv6 type echo-request limit rate 10/second accept comment \"ping, rate-limited\"\n\
         \t\ticmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query } accept comment \"IPv6 cannot work without these\"\n",
    );
    if !r.ssh_ports.is_empty() {
        let ports: Vec<String> = r.ssh_ports.iter().map(u16::to_string).collect();
        let ports = if ports.len() == 1 {
            ports[0].clone()
        } else {
            format!("{{ {} }}", ports.join(", "))
        };
        for (set, saddr) in [("ssh_rate_v4", "ip saddr"), ("ssh_rate_v6", "ip6 saddr")] {
            let _ = writeln!(
                out,
                "\t\ttcp dport {ports} ct state new update @{set} {{ {saddr} limit rate over 1/second burst {SSH_BURST} packets }} drop comment \"{SSH_LIMIT_COMMENT}\""
            );
        }
    }
    for port in &r.ssh_ports {
        let _ = writeln!(
            out,
            "\t\ttcp dport {port} accept comment \"ssh: always accepted\""
        );
    }
    for port in &r.upstream_ports {
        let _ = writeln!(
            out,
            "\t\ttcp dport {port} drop comment \"proxy upstream: loopback only (nginx in front has the password)\""
        );
    }
    for (port, sources) in &r.proxy_ports {
        accept_from(&mut out, sources, &format!("tcp dport {port}"), "proxy");
    }
    for (i, rule) in r.allow.iter().enumerate() {
        let what = match &rule.ports {
            Some(p) => format!("{} dport {}", proto_name(rule.protocol), ports_text(p, '-')),
            None => String::new(),
        };
        accept_from(&mut out, &rule.from, &what, &format!("allow[{i}]"));
    }
    if r.log_drops {
        out.push_str("\t\tlimit rate 5/minute log prefix \"batten drop: \" comment \"what is dropped, rate-limited\"\n");
    }
    out.push_str("\t}\n");
    if r.forward_drop {
        out.push_str(
            "\n\tchain forward {\n\
             \t\ttype filter hook forward priority filter; policy drop;\n\
             \t\tct state established,related accept\n\
             \t}\n",
        );
    }
    out.push_str("}\n");
    out
}

/// The lines that make sure batten's table exists and then delete it, so
/// that what follows in the same transaction replaces exactly that table.
fn replace_own_table() -> String {
    format!("table {FAMILY} {NAME}\ndelete table {FAMILY} {NAME}\n")
}

fn run(runner: &dyn Runner, args: &[&str], input: Option<&[u8]>) -> Result<String, String> {
    run_tool(runner, "nft", args, input, "nftables")
}

/// `nft -f FILE`: load in one transaction.
pub fn load(runner: &dyn Runner, file: &Path) -> Result<(), String> {
    run(runner, &["-f", &file.display().to_string()], None).map(|_| ())
}

/// batten's table as loaded now, to restore it if a new one fails.
pub fn current(runner: &dyn Runner) -> Result<Option<String>, String> {
    match run(runner, &["list", "table", FAMILY, NAME], None) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.contains("No such file or directory") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Put back what `current` returned (or remove batten's table).
pub fn restore(runner: &dyn Runner, previous: Option<&str>) -> Result<(), String> {
    let text = match previous {
        Some(t) => format!("{}{t}", replace_own_table()),
        None => replace_own_table(),
    };
    // Through standard input: no file anyone else could plant or swap.
    run(runner, &["-f", "-"], Some(text.as_bytes())).map(|_| ())
}

/// batten's table as the kernel holds it, read back as JSON (`nft -j`):
/// what the kernel took, not what the file said.
fn loaded_items(runner: &dyn Runner) -> Result<Vec<serde_json::Value>, String> {
    let listed = run(runner, &["-j", "list", "table", FAMILY, NAME], None)?;
    let json: serde_json::Value = serde_json::from_str(&listed).map_err(|e| e.to_string())?;
    Ok(json["nftables"].as_array().cloned().unwrap_or_default())
}

/// The rules of batten's input chain, in the kernel's order.
fn input_rules(items: &[serde_json::Value]) -> impl Iterator<Item = &Vec<serde_json::Value>> {
    items.iter().filter_map(|i| {
        let rule = &i["rule"];
        (rule["chain"] == "input")
            .then(|| rule["expr"].as_array())
            .flatten()
    })
}

fn names_port(expr: &[serde_json::Value], port: u16) -> bool {
    expr.iter()
        .any(|x| x["match"]["left"]["payload"]["field"] == "dport" && x["match"]["right"] == port)
}

fn from_anywhere(expr: &[serde_json::Value]) -> bool {
    !expr
        .iter()
        .any(|x| x["match"]["left"]["payload"]["field"] == "saddr")
}

/// Every (protocol, first, last) port an accepting rule of the input chain
/// names by destination port: a number, a range or a set of either.
fn accepted_ports(items: &[serde_json::Value]) -> Vec<(String, u16, u16)> {
    let mut out = Vec::new();
    for e in input_rules(items) {
        if !e.iter().any(|x| x.get("accept").is_some()) {
            continue;
        }
        for x in e {
            let m = &x["match"];
            let payload = &m["left"]["payload"];
            if payload["field"] != "dport" {
                continue;
            }
            let protocol = payload["protocol"].as_str().unwrap_or("tcp").to_string();
            let mut push = |v: &serde_json::Value| {
                let port = |v: &serde_json::Value| v.as_u64().and_then(|n| u16::try_from(n).ok());
                if let Some(p) = port(v) {
                    out.push((protocol.clone(), p, p));
                } else if let Some([a, b]) = v["range"].as_array().map(Vec::as_slice)
                    && let (Some(a), Some(b)) = (port(a), port(b))
                {
                    out.push((protocol.clone(), a, b));
                }
            };
            match m["right"]["set"].as_array() {
                Some(set) => set.iter().for_each(&mut push),
                None => push(&m["right"]),
            }
        }
    }
    out
}

/// Input drops by default and each port has a rule accepting it from
/// anywhere.
fn accepts(items: &[serde_json::Value], ssh_ports: &[u16]) -> bool {
    let policy_drop = items.iter().any(|i| {
        i["chain"]["name"] == "input"
            && i["chain"]["hook"] == "input"
            && i["chain"]["policy"] == "drop"
    });
    policy_drop
        && ssh_ports.iter().all(|port| {
            input_rules(items).any(|e| {
                names_port(e, *port)
                    && e.iter().any(|x| x.get("accept").is_some())
                    && from_anywhere(e)
            })
        })
}

/// For each port, walking batten's input chain in the kernel's order, the
/// first rule that names it drops it from anywhere, and no rule before it
/// lets the port's packets in: every earlier rule that accepts or jumps is
/// held to what they never are (loopback, replies, ICMP, another port).
fn drops(items: &[serde_json::Value], ports: &[u16]) -> bool {
    ports.iter().all(|port| {
        for e in input_rules(items) {
            if names_port(e, *port) {
                return e.iter().any(|x| x.get("drop").is_some()) && from_anywhere(e);
            }
            let lets_in = e.iter().any(|x| {
                ["accept", "jump", "goto"]
                    .iter()
                    .any(|v| x.get(*v).is_some())
            });
            if lets_in && !held_elsewhere(e, *port) {
                return false;
            }
        }
        false
    })
}

/// Whether a rule's matches keep TCP packets from outside to `port` out:
/// `iif "lo"`, a conntrack state that is not new, ICMP, UDP, or another
/// destination port (a number, a range or a set without `port`).
fn held_elsewhere(expr: &[serde_json::Value], port: u16) -> bool {
    expr.iter().any(|x| {
        let m = &x["match"];
        let (left, right) = (&m["left"], &m["right"]);
        let equal = m["op"] == "==" || m["op"] == "in";
        let strings = |v: &serde_json::Value| -> Vec<String> {
            match v {
                serde_json::Value::String(s) => vec![s.clone()],
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
                serde_json::Value::Object(o) => o
                    .get("set")
                    .map(|s| {
                        s.as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                _ => Vec::new(),
            }
        };
        let without_port = |v: &serde_json::Value| match v {
            serde_json::Value::Number(n) => n.as_u64() != Some(u64::from(port)),
            serde_json::Value::Object(o) => {
                if let Some([a, b]) = o.get("range").and_then(|r| r.as_array()).map(Vec::as_slice) {
                    let (a, b) = (a.as_u64().unwrap_or(0), b.as_u64().unwrap_or(u64::MAX));
                    !(a..=b).contains(&u64::from(port))
                } else if let Some(set) = o.get("set").and_then(|s| s.as_array()) {
                    set.iter()
                        .all(|v| v.as_u64().is_some_and(|n| n != u64::from(port)))
                } else {
                    false
                }
            }
            _ => false,
        };
        equal
            && ((["iif", "iifname"].iter().any(|k| left["meta"]["key"] == *k) && right == "lo")
                || (left["ct"]["key"] == "state"
                    && !strings(right).is_empty()
                    && strings(right)
                        .iter()
                        .all(|s| s != "new" && s != "untracked"))
                || ["icmp", "icmpv6", "udp"]
                    .iter()
                    .any(|p| left["payload"]["protocol"] == *p)
                || (left["payload"]["field"] == "dport" && without_port(right)))
    })
}

/// The nftables backend, for [`super::of`].
pub struct Nftables;

impl Backend for Nftables {
    fn programs(&self) -> &'static [&'static str] {
        &["nft"]
    }

    fn boot_package(&self) -> &'static str {
        "nftables"
    }

    fn render(&self, rules: &Ruleset) -> Vec<(&'static str, String)> {
        vec![("nft", render(rules))]
    }

    fn persist(&self, family: Family) -> Persist {
        let file = match family {
            Family::Debian => "/etc/nftables.conf",
            Family::Rhel => "/etc/sysconfig/nftables.conf",
            Family::Alpine => "/etc/nftables.d/batten.nft",
        };
        Persist {
            files: vec![(file, "nft")],
            unit: "nftables.service",
        }
    }

    fn image_checks(&self) -> &'static [(&'static str, &'static [&'static str])] {
        &[("nft", &["-c", "-f", "-"])]
    }

    fn load(
        &self,
        runner: &dyn Runner,
        files: &[PathBuf],
        ssh_ports: &[u16],
    ) -> Result<bool, String> {
        let previous = current(runner)?;
        load(runner, &files[0])?;
        // Anything short of reading back a ruleset that accepts SSH,
        // including a read-back that fails, puts the previous one back.
        let verdict = self.loaded_accepts(runner, ssh_ports).and_then(|accepts| {
            if accepts && previous.is_none() {
                // Nothing was there (a first boot): a change, without
                // another nft to say so.
                Ok(true)
            } else if accepts {
                current(runner).map(|now| previous != now)
            } else {
                Err(format!(
                    "the loaded ruleset does not accept SSH port(s) {ssh_ports:?}"
                ))
            }
        });
        match verdict {
            Ok(changed) => Ok(changed),
            Err(why) => Err(match restore(runner, previous.as_deref()) {
                Ok(()) => format!("{why}; the previous ruleset is back"),
                Err(e) => format!("{why}; restoring the previous ruleset ALSO failed: {e}"),
            }),
        }
    }

    /// Read back from the kernel.
    fn loaded_accepts(&self, runner: &dyn Runner, ssh_ports: &[u16]) -> Result<bool, String> {
        Ok(accepts(&loaded_items(runner)?, ssh_ports))
    }

    /// Read back from the kernel.
    fn loaded_drops(&self, runner: &dyn Runner, ports: &[u16]) -> Result<bool, String> {
        Ok(drops(&loaded_items(runner)?, ports))
    }

    /// Read back from the kernel.
    fn loaded_accepted_ports(
        &self,
        runner: &dyn Runner,
    ) -> Result<Vec<(String, u16, u16)>, String> {
        Ok(accepted_ports(&loaded_items(runner)?))
    }

    /// `nft -s -t list table inet batten`: stateless (no counters, no
    /// limits' state) and terse (no set elements: the SSH limit's sets
    /// fill with addresses as clients connect).
    fn loaded_listing(&self, runner: &dyn Runner) -> Result<String, String> {
        run(runner, &["-s", "-t", "list", "table", FAMILY, NAME], None)
    }

    /// systemd 252 (Debian 12), built with libiptc, loads the legacy
    /// `ip_tables` module at every boot, before any unit runs. Beside
    /// nftables it holds no rule, and Lynis takes it for the firewall:
    /// FIRE-4502 sees the module, FIRE-4512 counts `iptables --list` (the
    /// empty `ip filter` table, through iptables-nft) and warns "iptables
    /// module(s) loaded, but no rules active".
    fn unused_modules(&self) -> &'static [&'static str] {
        &["ip_tables"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concerns::firewall::rules::allow;
    use crate::input::grammar::source;
    use crate::input::model::Protocol;

    #[test]
    fn accepted_ports_read_back_from_the_json() {
        let items: Vec<serde_json::Value> = serde_json::from_str(
            r#"[
            {"chain": {"name": "input", "hook": "input", "policy": "drop"}},
            {"rule": {"chain": "input", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"accept": null}]}},
            {"rule": {"chain": "input", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}}, {"drop": null}]}},
            {"rule": {"chain": "input", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": {"set": [53, {"range": [60000, 61000]}]}}}, {"accept": null}]}},
            {"rule": {"chain": "input", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 9999}}, {"accept": null}]}}
            ]"#,
        )
        .unwrap();
        assert_eq!(
            accepted_ports(&items),
            [
                ("tcp".to_string(), 22, 22),
                ("udp".to_string(), 53, 53),
                ("udp".to_string(), 60000, 61000),
                ("tcp".to_string(), 9999, 9999)
            ]
        );
    }

    #[test]
    fn exact_text() {
        let r = Ruleset {
            ssh_ports: vec![22],
            proxy_ports: vec![
                (80, vec![]),
                (
                    443,
                    vec![
                        source("203.0.113.0/24").unwrap(),
                        source("2001:db8::/32").unwrap(),
                    ],
                ),
            ],
            upstream_ports: vec![8080],
            allow: vec![
                allow(Some((5432, 5432)), Protocol::Tcp, &["203.0.113.10"]),
                allow(Some((60000, 61000)), Protocol::Udp, &[]),
                allow(
                    None,
                    Protocol::Tcp,
                    &["198.51.100.10-198.51.100.20", "198.51.100.99"],
                ),
            ],
            log_drops: true,
            forward_drop: true,
        };
        let text = render(&r);
        let body: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("tcp dport 22"))
            .collect();
        assert_eq!(
            body.join("\n"),
            "\t\ttcp dport 22 ct state new update @ssh_rate_v4 { ip saddr limit rate over 1/second burst 10 packets } drop comment \"ssh: over 10 new connections in 10 s from one address\"\n\
             \t\ttcp dport 22 ct state new update @ssh_rate_v6 { ip6 saddr limit rate over 1/second burst 10 packets } drop comment \"ssh: over 10 new connections in 10 s from one address\"\n\
             \t\ttcp dport 22 accept comment \"ssh: always accepted\"\n\
             \t\ttcp dport 8080 drop comment \"proxy upstream: loopback only (nginx in front has the password)\"\n\
             \t\ttcp dport 80 accept comment \"proxy\"\n\
             \t\tip saddr 203.0.113.0/24 tcp dport 443 accept comment \"proxy\"\n\
             \t\tip6 saddr 2001:db8::/32 tcp dport 443 accept comment \"proxy\"\n\
             \t\tip saddr 203.0.113.10 tcp dport 5432 accept comment \"allow[0]\"\n\
             \t\tudp dport 60000-61000 accept comment \"allow[1]\"\n\
             \t\tip saddr { 198.51.100.10-198.51.100.20, 198.51.100.99 } accept comment \"allow[2]\"\n\
             \t\tlimit rate 5/minute log prefix \"batten drop: \" comment \"what is dropped, rate-limited\"\n\
             \t}\n\
             \n\
             \tchain forward {\n\
             \t\ttype filter hook forward priority filter; policy drop;\n\
             \t\tct state established,related accept\n\
             \t}\n\
             }"
        );
        assert!(text.starts_with("#!/usr/sbin/nft -f\n"));
        assert!(text.contains("table inet batten\ndelete table inet batten\n"));
        assert!(text.contains("policy drop;"));
        assert!(!text.contains("flush ruleset"), "other tables must survive");
        assert!(text.contains(
            "\tset ssh_rate_v6 {\n\t\ttype ipv6_addr\n\t\tsize 65535\n\t\tflags dynamic,timeout\n\t\ttimeout 1m\n\t}\n"
        ));
        // Established traffic is accepted before anything is counted.
        let established = text.find("ct state established,related accept").unwrap();
        assert!(established < text.find("update @ssh_rate_v4").unwrap());
        let two = render(&Ruleset {
            ssh_ports: vec![22, 2222],
            ..Ruleset::default()
        });
        assert!(two.contains("tcp dport { 22, 2222 } ct state new update @ssh_rate_v4"));
    }

    #[test]
    fn no_forward_chain_by_default() {
        let r = Ruleset {
            ssh_ports: vec![22],
            ..Ruleset::default()
        };
        let text = render(&r);
        assert!(!text.contains("forward"));
        assert!(!text.contains("log prefix"));
    }

    /// `nft -j list table inet batten` as nft 1.0.6 prints it for a
    /// ruleset with SSH, an upstream drop and a source-limited allow.
    const READ_BACK: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "batten", "handle": 1}}, {"chain": {"family": "inet", "table": "batten", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}, {"rule": {"family": "inet", "table": "batten", "chain": "input", "handle": 2, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iif"}}, "right": "lo"}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "batten", "chain": "input", "handle": 3, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "batten", "chain": "input", "handle": 4, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "batten", "chain": "input", "handle": 5, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "203.0.113.10"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 5432}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "batten", "chain": "input", "handle": 6, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 9000}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "batten", "chain": "input", "handle": 7, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 9000}}, {"drop": null}]}}]}"#;

    #[test]
    fn read_back_judges_what_the_kernel_holds() {
        let json: serde_json::Value = serde_json::from_str(READ_BACK).unwrap();
        let items = json["nftables"].as_array().unwrap();
        assert!(accepts(items, &[22]));
        // Accepted only from one source is not "SSH accepted".
        assert!(!accepts(items, &[22, 5432]));
        assert!(drops(items, &[8080]));
        // Not named at all, or accepted before the drop: not dropped.
        assert!(!drops(items, &[8081]));
        assert!(!drops(items, &[9000]));
        assert!(!drops(items, &[22]));
        // An accept for everyone ahead of the drop, with no port named.
        let mut opened = json.clone();
        let rules = opened["nftables"].as_array_mut().unwrap();
        let everyone: serde_json::Value = serde_json::from_str(
            r#"{"rule": {"family": "inet", "table": "batten", "chain": "input", "handle": 9, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "0.0.0.0", "len": 0}}}}, {"accept": null}]}}"#,
        )
        .unwrap();
        rules.insert(4, everyone);
        assert!(!drops(opened["nftables"].as_array().unwrap(), &[8080]));
        // A new-connection accept is not a conntrack reply rule.
        let mut opened = json.clone();
        let rules = opened["nftables"].as_array_mut().unwrap();
        let new_conn: serde_json::Value = serde_json::from_str(
            r#"{"rule": {"family": "inet", "table": "batten", "chain": "input", "handle": 9, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "new"]}}, {"accept": null}]}}"#,
        )
        .unwrap();
        rules.insert(4, new_conn);
        assert!(!drops(opened["nftables"].as_array().unwrap(), &[8080]));
    }
}
