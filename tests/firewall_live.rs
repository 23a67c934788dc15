//! batten's rulesets in a real kernel: two network namespaces joined by a
//! veth pair, listeners in the server one, probes from the client one, over
//! IPv4 and IPv6, for both backends. Nothing leaves the namespaces.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::net::{self, Daemon, Pair};
use common::*;

/// batten takes its run lock on the root directory, and the live runs
/// here all work on this machine's `/` (in mount namespaces of their own):
/// one at a time, or the second is refused as a concurrent run.
static LIVE_ROOT: std::sync::Mutex<()> = std::sync::Mutex::new(());

const TCP_PORTS: &str = "22,80,8080,8081,5432,9999";
const UDP_PORTS: &str = "5353,5354";

fn user_data(backend: &str) -> String {
    format!(
        "#cloud-config\nusers: []\nssh_pwauth: true\nbatten:\n  firewall:\n    backend: {backend}\n    allow:\n      - {{port: 80}}\n      - {{port: 5432, from: [203.0.113.10, \"2001:db8:42::10\"]}}\n      - {{port: 5353, proto: udp}}\n      - {{from: [\"198.51.100.10-198.51.100.20\", \"2001:db8:42::12-2001:db8:42::20\"]}}\n  proxy:\n    - listen: 8081\n      upstream: 127.0.0.1:8080\n      auth: {{users: [{{name: admin}}]}}\n"
    )
}

fn probe(pair: &Pair, kind: &str, src: &str, dst: &str, port: u16) -> bool {
    pair.in_client(10, "/usr/bin/python3")
        .arg(repo().join("tests/fixtures/netprobe.py"))
        .args([kind, src, dst, &port.to_string(), "1.0"])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn ping(pair: &Pair, dst: &str) -> bool {
    pair.in_client(10, "ping")
        .args(["-c", "1", "-W", "2", dst])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn network() -> (Pair, Daemon) {
    let pair = Pair::new("fw");
    pair.add_address(true, "203.0.113.1/24");
    for a in [
        "203.0.113.10/24",
        "203.0.113.11/24",
        "198.51.100.15/24",
        "198.51.100.25/24",
        "2001:db8:42::10/64",
        "2001:db8:42::11/64",
        "2001:db8:42::15/64",
        "2001:db8:42::25/64",
    ] {
        pair.add_address(false, a);
    }
    let listener = pair
        .in_server(300, "/usr/bin/python3")
        .arg(repo().join("tests/fixtures/netprobe.py"))
        .args(["serve", "240", TCP_PORTS, UDP_PORTS])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let daemon = Daemon(listener);
    net::wait_for_port(&pair, net::SERVER_V4, 22, Duration::from_secs(20));
    (pair, daemon)
}

/// What must be open and closed, from where.
fn matrix(pair: &Pair) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut expect = |kind: &str, src: &str, dst: &str, port: u16, open: bool| {
        if probe(pair, kind, src, dst, port) != open {
            wrong.push(format!(
                "{kind} {src} -> {dst}:{port} should be {}",
                if open { "open" } else { "closed" }
            ));
        }
    };
    for (dst, plain, allowed, other, in_range, out_of_range) in [
        (
            net::SERVER_V4,
            net::CLIENT_V4,
            "203.0.113.10",
            "203.0.113.11",
            "198.51.100.15",
            "198.51.100.25",
        ),
        (
            net::SERVER_V6,
            net::CLIENT_V6,
            "2001:db8:42::10",
            "2001:db8:42::11",
            "2001:db8:42::15",
            "2001:db8:42::25",
        ),
    ] {
        // 5432 from its allowed source goes to the IPv4 server address on
        // the 203.0.113.0/24 link too.
        let dst_5432 = if dst == net::SERVER_V4 {
            "203.0.113.1"
        } else {
            dst
        };
        expect("tcp", plain, dst, 22, true);
        expect("tcp", plain, dst, 80, true);
        expect("tcp", plain, dst, 8081, true);
        expect("tcp", plain, dst, 8080, false);
        expect("tcp", plain, dst, 5432, false);
        expect("tcp", plain, dst, 9999, false);
        expect("udp", plain, dst, 5353, true);
        expect("udp", plain, dst, 5354, false);
        expect("tcp", allowed, dst_5432, 5432, true);
        expect("tcp", other, dst_5432, 5432, false);
        expect("tcp", in_range, dst, 9999, true);
        expect("tcp", in_range, dst, 8080, false);
        expect("tcp", out_of_range, dst, 9999, false);
    }
    for dst in [net::SERVER_V4, net::SERVER_V6] {
        if !ping(pair, dst) {
            wrong.push(format!("ping {dst} should work"));
        }
    }
    wrong
}

/// How many of `count` TCP connections opened at once from `src` to
/// port 22 were established within `wait` seconds.
fn burst(pair: &Pair, src: &str, dst: &str, count: u32, wait: &str) -> u32 {
    let out = pair
        .in_client(20, "/usr/bin/python3")
        .arg(repo().join("tests/fixtures/netprobe.py"))
        .args(["burst", src, dst, "22", &count.to_string(), wait])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The per-source limit on new SSH connections, in the kernel: a burst of
/// 30 from one address gets about 10 in and the rest dropped, in both
/// families, while another address is not held back; after the window a
/// new connection from the same address works again. Bounded: one burst
/// per family, then one 11 s wait.
fn ssh_burst_is_limited(pair: &Pair) {
    let bursts = [
        ("198.51.100.40", net::SERVER_V4),
        ("2001:db8:42::40", net::SERVER_V6),
    ];
    for (src, dst) in bursts {
        pair.add_address(
            false,
            &format!("{src}/{}", if src.contains(':') { 64 } else { 24 }),
        );
        // Neighbour discovery first, so no SYN-ACK waits in the server's
        // queue for an unresolved address while the burst is timed.
        let resolved = pair
            .in_client(10, "ping")
            .args(["-c", "1", "-W", "2", "-I", src, dst])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(resolved, "ping {dst} from {src}");
    }
    // One family after the other: both reach the same [::]:22 listener,
    // whose accept queue must not be what drops connections.
    let got: Vec<u32> = bursts
        .iter()
        .map(|(src, dst)| burst(pair, src, dst, 30, "0.8"))
        .collect();
    for ((src, _), n) in bursts.iter().zip(&got) {
        eprintln!("a burst of 30 new SSH connections from {src}: {n} got in");
        assert!(
            (8..=13).contains(n),
            "{n} of 30 new connections from {src} got in; the limit lets about 10 through"
        );
    }
    assert!(
        probe(pair, "tcp", net::CLIENT_V4, net::SERVER_V4, 22),
        "another address is not held back by {}'s burst",
        bursts[0].0
    );
    std::thread::sleep(Duration::from_secs(11));
    for (src, dst) in bursts {
        assert!(
            probe(pair, "tcp", src, dst, 22),
            "{src} gets in again once its burst is over"
        );
    }
}

fn in_server(pair: &Pair, program: &str, args: &[&str]) -> String {
    let out = pair.in_server(20, program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A batten table from an earlier life of the machine that lets
/// everything in: what a live run replaces, or must put back.
fn old_accepting_table(pair: &Pair) {
    in_server(pair, "nft", &["add", "table", "inet", "batten"]);
    in_server(
        pair,
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "batten",
            "input",
            "{ type filter hook input priority 0; policy accept; }",
        ],
    );
}

fn required(test: &str, programs: &[&str]) -> bool {
    privileged(test) && programs.iter().all(|p| have(p, test))
}

#[test]
fn nftables_matrix_both_families() {
    const T: &str = "nftables_matrix_both_families";
    if !required(T, &["nft", "ip", "ping", "python3", "nginx"]) {
        return;
    }
    let scratch = Scratch::new();
    scratch.with_nginx();
    let ud = scratch.user_data("fw.yaml", &user_data("nftables"));
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let file = scratch.join("/etc/nftables.conf").display().to_string();

    let (pair, _listener) = network();
    // Another table (as Docker makes one) must survive batten's load.
    in_server(&pair, "nft", &["add", "table", "inet", "docker-like"]);
    in_server(&pair, "nft", &["-f", &file]);
    let first = rules_only(&in_server(&pair, "nft", &["list", "ruleset"]));
    in_server(&pair, "nft", &["-f", &file]);
    let second = rules_only(&in_server(&pair, "nft", &["list", "ruleset"]));
    assert_eq!(first, second, "loading twice changed the ruleset");
    assert!(first.contains("table inet docker-like"), "{first}");
    let wrong = matrix(&pair);
    assert!(wrong.is_empty(), "{wrong:#?}\n{first}");
    ssh_burst_is_limited(&pair);
}

#[test]
fn iptables_matrix_both_families() {
    const T: &str = "iptables_matrix_both_families";
    if !required(
        T,
        &[
            "iptables-restore",
            "ip6tables-restore",
            "ip",
            "ping",
            "python3",
        ],
    ) {
        return;
    }
    let scratch = Scratch::new();
    scratch.with_nginx();
    scratch.with_iptables();
    let ud = scratch.user_data("fw.yaml", &user_data("iptables"));
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let (pair, _listener) = network();
    let v4 = scratch.join("/etc/iptables/rules.v4").display().to_string();
    let v6 = scratch.join("/etc/iptables/rules.v6").display().to_string();
    in_server(&pair, "iptables-restore", &[&v4]);
    in_server(&pair, "ip6tables-restore", &[&v6]);
    let saved = |pair: &Pair| {
        let mut t = in_server(pair, "iptables-save", &[]);
        t.push_str(&in_server(pair, "ip6tables-save", &[]));
        rules_only(&t)
    };
    let first = saved(&pair);
    in_server(&pair, "iptables-restore", &[&v4]);
    in_server(&pair, "ip6tables-restore", &[&v6]);
    assert_eq!(first, saved(&pair), "loading twice changed the rules");
    let wrong = matrix(&pair);
    assert!(wrong.is_empty(), "{wrong:#?}\n{first}");
    ssh_burst_is_limited(&pair);
}

/// batten on a live system (here: inside the server namespace, with /etc
/// an overlay whose writes land in a scratch directory and /var/lib a
/// tmpfs, so nothing of this machine changes): the old batten table is
/// replaced, other tables stay, SSH is reachable from outside afterwards.
#[test]
fn live_run_replaces_only_its_table_and_keeps_ssh_open() {
    const T: &str = "live_run_replaces_only_its_table_and_keeps_ssh_open";
    if !required(T, &["nft", "ip", "unshare", "python3", "sshd"]) {
        return;
    }
    let _live = LIVE_ROOT.lock().unwrap_or_else(|e| e.into_inner());
    let work = tempfile::tempdir().unwrap();
    for d in ["upper", "work"] {
        std::fs::create_dir(work.path().join(d)).unwrap();
    }
    let ud = work.path().join("live.yaml");
    std::fs::write(&ud, "#cloud-config\nusers: []\nssh_pwauth: true\n").unwrap();
    let (pair, _listener) = network();
    in_server(&pair, "nft", &["add", "table", "inet", "docker-like"]);
    old_accepting_table(&pair);
    assert!(
        probe(&pair, "tcp", net::CLIENT_V4, net::SERVER_V4, 9999),
        "the old ruleset lets 9999 in"
    );

    // The machine's kernel modules are the machine's: a run in a namespace
    // of its own must not unload the legacy ip_tables it does not use.
    let modules = || {
        std::fs::read_to_string("/proc/modules")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|m| m.starts_with("ip") && m.ends_with("_tables"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let modules_before = modules();
    let script = "set -e
W=\"$1\"; shift
mount -t overlay batten-test-etc -o lowerdir=/etc,upperdir=\"$W/upper\",workdir=\"$W/work\" /etc
mount -t tmpfs batten-test-lib /var/lib
mount -t tmpfs batten-test-run /run
B=\"$1\"; shift
\"$B\" run \"$@\" >&2
exec \"$B\" verify --format json";
    let out = pair
        .in_server_mounts(120, script)
        .arg(work.path())
        .arg(env!("CARGO_BIN_EXE_batten"))
        .args(["--root", "/", "--user-data"])
        .arg(&ud)
        .output()
        .unwrap();
    // verify ran live in the same namespace: sshd -T, the loaded ruleset,
    // and the socket census (the test's listeners are public).
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(modules(), modules_before, "this machine's modules changed");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    let check = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no check {id}: {report:#}"))
    };
    assert_eq!(check("firewall.loaded")["status"], "pass", "{report:#}");
    // The live sshd took the crypto policy and the Lynis SSH-7408 settings.
    for id in [
        "sshd.crypto.kexalgorithms",
        "sshd.crypto.ciphers",
        "sshd.crypto.macs",
        "sshd.crypto.hostkeyalgorithms",
        "sshd.crypto.pubkeyacceptedalgorithms",
        "sshd.maxauthtries",
        "sshd.maxstartups",
        "sshd.loglevel",
    ] {
        assert_eq!(check(id)["status"], "pass", "{id}: {report:#}");
    }
    let ssh = check("sockets.tcp.[::]:22");
    assert_eq!(
        (ssh["status"].as_str(), ssh["why"].as_str()),
        (Some("pass"), Some("public, allowed by the firewall")),
        "{report:#}"
    );
    assert!(
        ssh["what"].as_str().unwrap().contains("python3"),
        "the owning process is named: {ssh}"
    );
    let other = check("sockets.tcp.[::]:9999");
    assert_eq!(other["status"], "warn", "{report:#}");
    let ruleset = in_server(&pair, "nft", &["list", "ruleset"]);
    assert!(ruleset.contains("table inet docker-like"), "{ruleset}");
    assert!(ruleset.contains("policy drop"), "{ruleset}");
    assert!(
        probe(&pair, "tcp", net::CLIENT_V4, net::SERVER_V4, 22),
        "SSH must stay reachable"
    );
    assert!(
        probe(&pair, "tcp", net::CLIENT_V6, net::SERVER_V6, 22),
        "SSH must stay reachable over IPv6"
    );
    assert!(!probe(&pair, "tcp", net::CLIENT_V4, net::SERVER_V4, 9999));
    let written = std::fs::read_to_string(work.path().join("upper/nftables.conf")).unwrap();
    assert!(written.contains("policy drop"), "{written}");
}

/// Safety rule 2's roll-back, driven for real: the new ruleset loads, but
/// reading it back from the kernel does not show SSH accepted (here `nft
/// -j` answers with an empty ruleset, through a wrapper in front of the
/// real nft). batten must put the previous table back in the kernel and
/// the previous files on disk, exit 70 saying so, and leave SSH reachable.
#[test]
fn a_load_that_reads_back_without_ssh_puts_the_previous_ruleset_back() {
    const T: &str = "a_load_that_reads_back_without_ssh_puts_the_previous_ruleset_back";
    if !required(T, &["nft", "ip", "unshare", "python3", "sshd"]) {
        return;
    }
    let _live = LIVE_ROOT.lock().unwrap_or_else(|e| e.into_inner());
    let work = tempfile::tempdir().unwrap();
    for d in ["upper", "work", "bin"] {
        std::fs::create_dir(work.path().join(d)).unwrap();
    }
    let nft = batten::host::exec::find_program("nft").unwrap();
    let wrapper = work.path().join("bin/nft");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n# The kernel's answer to a read-back: nothing of batten's table.\nif [ \"$1\" = -j ]; then echo '{{\"nftables\": []}}'; exit 0; fi\nexec {} \"$@\"\n",
            nft.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let ud = work.path().join("live.yaml");
    std::fs::write(&ud, "#cloud-config\nusers: []\nssh_pwauth: true\n").unwrap();
    let (pair, _listener) = network();
    old_accepting_table(&pair);
    let before = rules_only(&in_server(
        &pair,
        "nft",
        &["list", "table", "inet", "batten"],
    ));

    // The run, then what /etc/nftables.conf holds afterwards in its view.
    let script = "W=\"$1\"; shift
mount -t overlay batten-test-etc -o lowerdir=/etc,upperdir=\"$W/upper\",workdir=\"$W/work\" /etc || exit 99
mount -t tmpfs batten-test-lib /var/lib || exit 99
mount -t tmpfs batten-test-run /run || exit 99
PATH=\"$W/bin:$PATH\"; export PATH
\"$@\" >&2
code=$?
cat /etc/nftables.conf 2>/dev/null
exit $code";
    let out = pair
        .in_server_mounts(120, script)
        .arg(work.path())
        .arg(env!("CARGO_BIN_EXE_batten"))
        .args(["run", "--root", "/", "--user-data"])
        .arg(&ud)
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(70), "{said}");
    assert!(
        said.contains("does not accept SSH") && said.contains("the previous ruleset is back"),
        "{said}"
    );
    let after = rules_only(&in_server(
        &pair,
        "nft",
        &["list", "table", "inet", "batten"],
    ));
    assert_eq!(before, after, "the previous table must be back");
    let file_after = String::from_utf8_lossy(&out.stdout);
    let file_before = std::fs::read_to_string("/etc/nftables.conf").unwrap_or_default();
    assert_eq!(file_before, file_after, "the previous file must be back");
    assert!(
        probe(&pair, "tcp", net::CLIENT_V4, net::SERVER_V4, 22),
        "SSH must stay reachable"
    );
    assert!(
        probe(&pair, "tcp", net::CLIENT_V4, net::SERVER_V4, 9999),
        "the previous (accepting) table is the one in force"
    );
}

/// A live listing reduced to its rules: comments dropped, and the counters
/// that traffic moves (`[1:96]` in iptables-save, `counter packets 1 bytes
/// 96` in nft) cleared, since any packet leaving the namespace (an IPv6
/// router solicitation, say) changes them between two listings.
fn rules_only(listing: &str) -> String {
    listing
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut words: Vec<&str> = Vec::new();
            let mut it = l.split(' ').peekable();
            while let Some(w) = it.next() {
                let is_counter = w.starts_with('[')
                    && w.ends_with(']')
                    && w[1..w.len() - 1]
                        .split(':')
                        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                if is_counter {
                    continue;
                }
                if (w == "packets" || w == "bytes")
                    && it
                        .peek()
                        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                {
                    it.next();
                    continue;
                }
                words.push(w);
            }
            words.join(" ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn counters_are_not_rules() {
    assert_eq!(
        rules_only(":OUTPUT ACCEPT [1:96]\n# Generated by iptables-save\n-A INPUT -j DROP"),
        ":OUTPUT ACCEPT\n-A INPUT -j DROP"
    );
    assert_eq!(
        rules_only("\t\ttcp dport 22 counter packets 3 bytes 180 accept"),
        "\t\ttcp dport 22 counter accept"
    );
}
