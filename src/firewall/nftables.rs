//! The nftables backend: one `table inet batten` for IPv4 and IPv6.
//!
//! The file starts by creating and deleting batten's own table, so loading
//! it replaces exactly that table (atomically: `nft -f` is one
//! transaction) and leaves every other table alone, a Docker or libvirt
//! one included; loading it twice gives the same ruleset.

use std::fmt::Write as _;
use std::path::Path;

use super::{Ruleset, ports_text, proto_name, run_tool, split_by_family};
use crate::apply::find_program;
use crate::config::grammar::Source;

/// The table batten owns.
pub const TABLE: &str = "inet batten";

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
         # Only batten's own table is replaced; other tables are left alone.\n\
         table inet batten\n\
         delete table inet batten\n\n\
         table inet batten {\n\
         \tchain input {\n\
         \t\ttype filter hook input priority filter; policy drop;\n\
         \t\tiif \"lo\" accept comment \"loopback\"\n\
         \t\tct state established,related accept comment \"replies to our own traffic\"\n\
         \t\tct state invalid drop comment \"invalid conntrack state\"\n\
         \t\ticmp type echo-request limit rate 10/second accept comment \"ping, rate-limited\"\n\
         \t\ticmp type { destination-unreachable, time-exceeded, parameter-problem } accept comment \"IPv4 errors\"\n\
         \t\ticmpv6 type echo-request limit rate 10/second accept comment \"ping, rate-limited\"\n\
         \t\ticmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query } accept comment \"IPv6 cannot work without these\"\n",
    );
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

fn nft() -> Result<std::path::PathBuf, String> {
    find_program("nft").ok_or_else(|| "nft is not installed here; install nftables".to_string())
}

fn run(args: &[&str], file: Option<&Path>) -> Result<String, String> {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(file.map(|f| f.display().to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    run_tool(nft()?, &all, None)
}

/// `nft -c -f FILE`: parse and check against the kernel without loading.
pub fn check(file: &Path) -> Result<(), String> {
    run(&["-c", "-f"], Some(file)).map(|_| ())
}

/// `nft -f FILE`: load in one transaction.
pub fn load(file: &Path) -> Result<(), String> {
    run(&["-f"], Some(file)).map(|_| ())
}

/// batten's table as loaded now, to restore it if a new one fails.
pub fn current() -> Result<Option<String>, String> {
    match run(&["list", "table", "inet", "batten"], None) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.contains("No such file or directory") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Put back what `current` returned (or remove batten's table).
pub fn restore(previous: Option<&str>) -> Result<(), String> {
    let text = match previous {
        Some(t) => format!("table inet batten\ndelete table inet batten\n{t}"),
        None => "table inet batten\ndelete table inet batten\n".to_string(),
    };
    // Through standard input: no file anyone else could plant or swap.
    run_tool(nft()?, &["-f", "-"], Some(text.as_bytes())).map(|_| ())
}

/// Whether the loaded table drops by default and accepts every SSH port,
/// read back from the kernel (`nft -j`).
pub fn loaded_accepts(ssh_ports: &[u16]) -> Result<bool, String> {
    let json: serde_json::Value =
        serde_json::from_str(&run(&["-j", "list", "table", "inet", "batten"], None)?)
            .map_err(|e| e.to_string())?;
    let items = json["nftables"].as_array().cloned().unwrap_or_default();
    let drops = items.iter().any(|i| {
        i["chain"]["name"] == "input"
            && i["chain"]["hook"] == "input"
            && i["chain"]["policy"] == "drop"
    });
    let accepted = |port: u16| {
        items.iter().any(|i| {
            let rule = &i["rule"];
            rule["chain"] == "input"
                && rule["expr"].as_array().is_some_and(|e| {
                    e.iter().any(|x| {
                        x["match"]["left"]["payload"]["field"] == "dport"
                            && x["match"]["right"] == port
                    }) && e.iter().any(|x| x.get("accept").is_some())
                        && !e
                            .iter()
                            .any(|x| x["match"]["left"]["payload"]["field"] == "saddr")
                })
        })
    };
    Ok(drops && ssh_ports.iter().all(|p| accepted(*p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::grammar::{PortRange, source};
    use crate::config::model::{AllowRule, Protocol};

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
                AllowRule {
                    ports: Some(PortRange {
                        first: 5432,
                        last: 5432,
                    }),
                    protocol: Protocol::Tcp,
                    from: vec![source("203.0.113.10").unwrap()],
                },
                AllowRule {
                    ports: Some(PortRange {
                        first: 60000,
                        last: 61000,
                    }),
                    protocol: Protocol::Udp,
                    from: vec![],
                },
                AllowRule {
                    ports: None,
                    protocol: Protocol::Tcp,
                    from: vec![
                        source("198.51.100.10-198.51.100.20").unwrap(),
                        source("198.51.100.99").unwrap(),
                    ],
                },
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
            "\t\ttcp dport 22 accept comment \"ssh: always accepted\"\n\
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
    }

    #[test]
    fn no_forward_chain_by_default() {
        let r = Ruleset {
            ssh_ports: vec![22],
            proxy_ports: vec![],
            upstream_ports: vec![],
            allow: vec![],
            log_drops: false,
            forward_drop: false,
        };
        let text = render(&r);
        assert!(!text.contains("forward"));
        assert!(!text.contains("log prefix"));
    }
}
