//! Drift against the sealed state, in a scratch root (the static checks):
//! provision, seal, then a drop-in that turns passwords back on and
//! unattended-upgrades switched off. Each is found with its evidence, the
//! node_exporter textfile and `status --format json` say so; undoing it
//! makes the next check clean, and a check with nothing changed writes the
//! same textfile apart from its timestamp. The drift check changes nothing
//! but its own report files.

mod common;

use common::*;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDi/c0qxbedyyZUrZ9WZmCza4aMNTGgltZLVpTBOs90R admin@laptop";

fn drift(scratch: &Scratch) -> (std::process::Output, serde_json::Value) {
    let out = run(&[
        "verify",
        "--drift",
        "--root",
        &scratch.root_arg(),
        "--format",
        "json",
    ]);
    let findings = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    (out, findings)
}

fn status(scratch: &Scratch) -> (Option<i32>, serde_json::Value) {
    let out = run(&["status", "--root", &scratch.root_arg(), "--format", "json"]);
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out))),
    )
}

/// `status --format json`, asserted to say `word` with exit code `code`.
fn status_is(scratch: &Scratch, code: i32, word: &str) -> serde_json::Value {
    let (got, st) = status(scratch);
    assert_eq!(
        (got, st["status"].as_str()),
        (Some(code), Some(word)),
        "{st:#}"
    );
    st
}

fn textfile(scratch: &Scratch) -> String {
    std::fs::read_to_string(scratch.join("/var/lib/prometheus/node-exporter/batten.prom")).unwrap()
}

/// `promtool check metrics` on the textfile a real drift check wrote
/// (`BATTEN_PROMTOOL`, set by scripts/test.sh, else promtool on PATH);
/// without one the check is skipped on a laptop and fails under CI.
fn promtool_accepts(path: &std::path::Path, test: &str) {
    let Some(promtool) = tool("BATTEN_PROMTOOL", "promtool", test) else {
        return;
    };
    let out = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(path).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool refuses {}: {}\n{}",
        path.display(),
        text(&out),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

fn without_timestamp(t: &str) -> String {
    t.lines()
        .filter(|l| !l.starts_with("batten_last_verify_timestamp_seconds "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn drift_is_found_with_its_evidence_and_undoing_it_clears_it() {
    const T: &str = "drift_is_found_with_its_evidence_and_undoing_it_clears_it";
    if !privileged(T) || !have("sshd", T) || !have("unshare", T) {
        return;
    }
    let scratch = Scratch::new();
    // The image has apt and the update tool's package, so batten
    // configures automatic updates and verify checks them.
    std::fs::create_dir_all(scratch.join("/usr/bin")).unwrap();
    for tool in ["apt-get", "unattended-upgrade"] {
        std::fs::write(scratch.join(&format!("/usr/bin/{tool}")), "#!/bin/sh\n").unwrap();
    }
    std::fs::create_dir_all(scratch.join("/lib/systemd/system")).unwrap();
    for timer in ["apt-daily.timer", "apt-daily-upgrade.timer"] {
        std::fs::write(
            scratch.join(&format!("/lib/systemd/system/{timer}")),
            "[Timer]\nOnCalendar=daily\n\n[Install]\nWantedBy=timers.target\n",
        )
        .unwrap();
    }
    // A Raspberry Pi's boot partition: the owner reads the drift there too.
    std::fs::create_dir_all(scratch.join("/boot/firmware")).unwrap();
    std::fs::write(scratch.join("/boot/firmware/config.txt"), "arm_64bit=1\n").unwrap();
    let ud = scratch.user_data(
        "ud.yaml",
        &format!("#cloud-config\nusers:\n  - name: admin\n    ssh_authorized_keys: [\"{KEY}\"]\n"),
    );
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));

    // Not sealed yet: nothing to compare with, and nothing written.
    let out = run(&["verify", "--drift", "--root", &scratch.root_arg()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("not sealed yet"), "{}", text(&out));
    assert_eq!(status(&scratch).1["status"], "running");

    let out = run(&["verify", "--seal", "--root", &scratch.root_arg()]);
    assert!(out.status.success(), "{}", text(&out));
    // Every check has an id of its own (one per timer, file, user,
    // socket): the drift check matches each with the baseline by id.
    let sealed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(scratch.join("/var/lib/batten/sealed.json")).unwrap(),
    )
    .unwrap();
    let mut ids: Vec<&str> = sealed["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let all = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all, "ids shared by two checks: {sealed:#}");
    assert!(ids.contains(&"updates.timer.apt-daily.timer"), "{ids:?}");

    // Nothing changed: clean, and the textfile says so.
    let (out, findings) = drift(&scratch);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        findings["items"].as_array().unwrap().len(),
        0,
        "{findings:#}"
    );
    let clean = textfile(&scratch);
    assert!(clean.contains("\nbatten_drift_items 0\n"), "{clean}");
    promtool_accepts(
        &scratch.join("/var/lib/prometheus/node-exporter/batten.prom"),
        T,
    );
    status_is(&scratch, 0, "done");

    // Drift 1: a drop-in, read before batten's, turns passwords back on.
    let before = snapshot(scratch.path());
    let oops = scratch.join("/etc/ssh/sshd_config.d/00-a-oops.conf");
    std::fs::write(&oops, "PasswordAuthentication yes\n").unwrap();
    // Drift 2: automatic updates switched off.
    let periodic = scratch.join("/etc/apt/apt.conf.d/20auto-upgrades");
    let periodic_text = std::fs::read_to_string(&periodic).unwrap();
    std::fs::write(&periodic, periodic_text.replace("\"1\"", "\"0\"")).unwrap();
    let (out, findings) = drift(&scratch);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let items = findings["items"].as_array().unwrap();
    let item = |prefix: &str| {
        items
            .iter()
            .find(|i| i["id"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}: {findings:#}"))
    };
    let pw = item("sshd.passwordauthentication.");
    assert_eq!(pw["kind"], "drifted");
    assert!(
        pw["now"]
            .as_str()
            .unwrap()
            .contains("/etc/ssh/sshd_config.d/00-a-oops.conf:1"),
        "the evidence names the drop-in: {pw}"
    );
    let updates = item("updates.config");
    assert_eq!(updates["kind"], "drifted", "{findings:#}");
    assert!(
        updates["what"] == "/etc/apt/apt.conf.d/20auto-upgrades"
            && updates["now"]
                .as_str()
                .unwrap()
                .contains("APT::Periodic::Unattended-Upgrade \"0\""),
        "the evidence names the file and the setting: {updates}"
    );
    let drifted = textfile(&scratch);
    assert!(
        drifted.contains("\nbatten_check_ok{check=\"sshd_passwordauthentication\"} 0\n"),
        "{drifted}"
    );
    assert!(
        drifted.contains("\nbatten_check_ok{check=\"updates_config\"} 0\n"),
        "{drifted}"
    );
    assert!(!drifted.contains("\nbatten_drift_items 0\n"), "{drifted}");
    assert!(
        drifted.contains("\nbatten_check_drifted{check=\"sshd_passwordauthentication\"} 1\n")
            && drifted.contains("\nbatten_check_drifted{check=\"updates_config\"} 1\n")
            && drifted.contains("\nbatten_check_drifted{check=\"sshd_pubkey\"} 0\n"),
        "{drifted}"
    );
    promtool_accepts(
        &scratch.join("/var/lib/prometheus/node-exporter/batten.prom"),
        T,
    );
    let st = status_is(&scratch, 2, "degraded");
    assert!(
        st["recoverable_errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("00-a-oops.conf")),
        "{st:#}"
    );
    let card = std::fs::read_to_string(scratch.join("/boot/firmware/batten-status.txt")).unwrap();
    assert!(
        card.starts_with("batten on this Raspberry Pi: degraded\n")
            && card.contains("00-a-oops.conf"),
        "{card}"
    );
    // The drift check changed nothing but its own report files.
    let moved: Vec<_> = changed(&before, &snapshot(scratch.path()))
        .into_iter()
        .filter(|p| {
            !p.starts_with("var/lib/batten")
                && !p.starts_with("var/lib/prometheus")
                && !p.starts_with("boot/firmware")
                && !p.starts_with("etc/ssh/sshd_config.d")
                && !p.ends_with("20auto-upgrades")
        })
        .collect();
    assert!(moved.is_empty(), "the drift check changed {moved:?}");

    // Undone: the next check is clean, and writes what it wrote before but
    // the timestamp.
    std::fs::remove_file(&oops).unwrap();
    std::fs::write(&periodic, periodic_text).unwrap();
    let (out, findings) = drift(&scratch);
    assert!(out.status.success(), "{}\n{findings:#}", text(&out));
    assert_eq!(
        without_timestamp(&textfile(&scratch)),
        without_timestamp(&clean)
    );
    assert_eq!(status(&scratch).1["status"], "done");

    // A drift check that cannot run (its user-data copy no longer
    // validates) is an error, with the reason, not a quiet `done`.
    let copy = scratch.join("/var/lib/batten/user-data");
    let copy_text = std::fs::read(&copy).unwrap();
    std::fs::write(&copy, "#cloud-config\nbatten:\n  ssh: {port: nope}\n").unwrap();
    let out = run(&["verify", "--drift", "--root", &scratch.root_arg()]);
    assert!(!out.status.success(), "{}", text(&out));
    let st = status_is(&scratch, 1, "error");
    assert!(
        st["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("the drift check could not run: "),
        "{st:#}"
    );
    std::fs::write(&copy, copy_text).unwrap();
    let (out, _) = drift(&scratch);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(status(&scratch).1["status"], "done");

    // A `run --force` after the seal that fails (another SSH port, and
    // sshd refuses a drop-in someone left) is an error too, while the
    // seal stays.
    let bad = scratch.join("/etc/ssh/sshd_config.d/00-a-bad.conf");
    std::fs::write(&bad, "NoSuchKeyword yes\n").unwrap();
    let ud2 = scratch.user_data(
        "ud2.yaml",
        &format!(
            "#cloud-config\nusers:\n  - name: admin\n    ssh_authorized_keys: [\"{KEY}\"]\nbatten:\n  ssh: {{port: 2222}}\n"
        ),
    );
    let out = scratch.batten("run", &ud2, &["--force"]);
    assert!(!out.status.success(), "{}", text(&out));
    let st = status_is(&scratch, 1, "error");
    assert_eq!(st["sealed"].as_bool(), Some(true), "{st:#}");
    assert!(
        st["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("check the sshd configuration")),
        "the failed step is sshd's check of the drop-in: {st:#}"
    );
    std::fs::remove_file(&bad).unwrap();
}

/// Runs `batten verify` live in the server namespace: /etc an overlay (the
/// machine's, nothing written to it), the scratch root's state, user-data
/// and node_exporter directory in /var/lib.
const LIVE: &str = "set -e
W=\"$1\"; R=\"$2\"; shift 2
mkdir -p \"$W/upper\" \"$W/work\"
mount -t overlay batten-test-etc -o lowerdir=/etc,upperdir=\"$W/upper\",workdir=\"$W/work\" /etc
mount --bind \"$R/var/lib\" /var/lib
exec \"$@\"";

/// Run by [`LIVE`] before the command: a stand-in for journald, /run a
/// tmpfs of this mount namespace's own and python3 receiving journald's
/// native protocol on its socket into `$1` (one datagram after another,
/// `\n--\n` between). Once the command is done an `END` datagram follows
/// everything it sent (datagrams from one sender arrive in order), and the
/// receiver is waited for: nothing sent is lost to a timer.
const JOURNAL: &str = "set -e
J=\"$1\"; shift
mount -t tmpfs batten-test-run /run
mkdir -p /run/systemd/journal
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(\"/run/systemd/journal/socket\")
s.settimeout(30)
out = open(sys.argv[1], \"ab\")
while True:
    d = s.recv(1 << 16)
    if d == b\"END\":
        break
    out.write(d + b\"\\n--\\n\")
    out.flush()
' \"$J\" &
receiver=$!
n=0
while [ ! -S /run/systemd/journal/socket ]; do
    n=$((n + 1))
    [ $n -le 200 ] || { echo 'the journal stand-in did not start in 10 s' >&2; exit 1; }
    sleep 0.05
done
set +e
\"$@\"
rc=$?
python3 -c 'import socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b\"END\", \"/run/systemd/journal/socket\")'
wait $receiver || exit 1
exit $rc";

#[test]
fn live_drift_names_the_table_the_rule_and_the_listener() {
    use common::net::{Daemon, Pair};
    const T: &str = "live_drift_names_the_table_the_rule_and_the_listener";
    if !privileged(T)
        || !have("nft", T)
        || !have("ip", T)
        || !have("unshare", T)
        || !have("python3", T)
    {
        return;
    }
    let scratch = Scratch::new();
    let ud = scratch.user_data(
        "ud.yaml",
        &format!("#cloud-config\nusers:\n  - name: admin\n    ssh_authorized_keys: [\"{KEY}\"]\n"),
    );
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let pair = Pair::new("drift");
    let rules = scratch.join("/etc/nftables.conf").display().to_string();
    let load = || {
        let out = pair
            .in_server(20, "nft")
            .args(["-f", &rules])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    };
    load();
    let work = tempfile::tempdir().unwrap();
    let batten_live = |args: &[&str]| {
        pair.in_server_mounts(60, LIVE)
            .arg(work.path())
            .arg(scratch.path())
            .arg(env!("CARGO_BIN_EXE_batten"))
            .args(args)
            .output()
            .unwrap()
    };
    // The baseline: this namespace's live report, recorded as the seal
    // records it (the machine's own sshd and accounts are not the scratch
    // root's, so some checks differ from a real machine's; only what gets
    // worse from here counts), and the state marked sealed.
    let out = batten_live(&["verify", "--format", "json"]);
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    let baseline = serde_json::json!({
        "at": "2026-12-04T00:00:00Z", "instance_id": "iid-drift", "version": "test",
        "checks": report["checks"], "ruleset": report["ruleset"],
    });
    assert!(
        report["ruleset"]["digest"]
            .as_str()
            .is_some_and(|d| d.len() == 64),
        "verify shows the loaded ruleset a seal would record: {report:#}"
    );
    std::fs::write(
        scratch.join("/var/lib/batten/sealed.json"),
        baseline.to_string(),
    )
    .unwrap();
    let state_path = scratch.join("/var/lib/batten/state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["sealed"] = true.into();
    std::fs::write(&state_path, state.to_string()).unwrap();
    let drift = || {
        let out = batten_live(&["verify", "--drift", "--format", "json"]);
        let findings: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
        (out.status.code(), findings)
    };
    let found = |findings: &serde_json::Value, id: &str| -> serde_json::Value {
        findings["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not found: {findings:#}"))
    };
    let (code, findings) = drift();
    assert_eq!(code, Some(0), "nothing changed yet: {findings:#}");

    // A listener on every address that nobody asked for.
    let listener = pair
        .in_server(120, "python3")
        .args(["-m", "http.server", "7777", "--bind", "0.0.0.0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let listener = Daemon(listener);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let item = loop {
        let (_, findings) = drift();
        if let Some(i) = findings["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == "sockets.tcp.0.0.0.0:7777")
        {
            break i.clone();
        }
        assert!(
            std::time::Instant::now() < until,
            "the listener is not found: {findings:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert_eq!(item["kind"], "newly-unsafe");
    assert!(
        item["what"].as_str().unwrap().contains("python3"),
        "the process is named: {item}"
    );
    // The textfile: a warning, so sockets stay ok, but they drifted; one
    // series for every socket, never one per socket.
    let prom_path = scratch.join("/var/lib/prometheus/node-exporter/batten.prom");
    let prom = std::fs::read_to_string(&prom_path).unwrap();
    assert!(
        prom.contains("\nbatten_check_drifted{check=\"sockets\"} 1\n")
            && prom.contains("\nbatten_check_ok{check=\"sockets\"} 1\n")
            && !prom.contains("7777"),
        "{prom}"
    );
    promtool_accepts(&prom_path, T);
    drop(listener);

    // A rule accepting a port nobody opened.
    let out = pair
        .in_server(20, "nft")
        .args([
            "insert", "rule", "inet", "batten", "input", "tcp", "dport", "9999", "accept",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let (code, findings) = drift();
    assert_eq!(code, Some(1));
    assert!(
        found(&findings, "firewall.accepts")["now"]
            .as_str()
            .unwrap()
            .contains("9999/tcp")
    );
    // The journal: one warning per item with its message id and check,
    // and the summary with its own id.
    let journal = work.path().join("journal");
    let out = pair
        .in_server_mounts(60, LIVE)
        .arg(work.path())
        .arg(scratch.path())
        .args(["sh", "-c", JOURNAL, "journal"])
        .arg(&journal)
        .arg(env!("CARGO_BIN_EXE_batten"))
        .args(["verify", "--drift"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let sent = std::fs::read_to_string(&journal).unwrap_or_default();
    let entries: Vec<&str> = sent.split("\n--\n").collect();
    assert!(
        entries.iter().any(
            |e| e.contains("MESSAGE_ID=5b8a3f0e9c2d4e71a6b0c4d2e8f1a9b3\n")
                && e.contains("PRIORITY=4\n")
                && e.contains("BATTEN_CHECK=firewall.accepts\n")
        ),
        "no item entry for firewall.accepts: {sent}"
    );
    let summaries: Vec<&&str> = entries
        .iter()
        .filter(|e| e.contains("MESSAGE_ID=0c7e2d9a4b6f4c1e8a3d5f7b9e1c2a46\n"))
        .collect();
    assert!(
        summaries.len() == 1
            && summaries[0].contains("PRIORITY=4\n")
            && summaries[0].contains("item(s) drifted since the seal"),
        "one summary per run, at warning level: {sent}"
    );
    let prom = std::fs::read_to_string(&prom_path).unwrap();
    assert!(
        prom.contains("\nbatten_check_ok{check=\"firewall_accepts\"} 0\n")
            && prom.contains("\nbatten_check_drifted{check=\"firewall_accepts\"} 1\n")
            && prom.contains("\nbatten_check_drifted{check=\"firewall_ruleset\"} 1\n")
            && !prom.contains("9999"),
        "{prom}"
    );
    promtool_accepts(&prom_path, T);
    // The ruleset's digest changed too, and the evidence is the new line.
    let digest = found(&findings, "firewall.ruleset");
    assert_eq!(digest["kind"], "drifted", "{digest}");
    assert!(
        digest["now"]
            .as_str()
            .unwrap()
            .contains("+ tcp dport 9999 accept"),
        "{digest}"
    );

    // batten's table deleted.
    let out = pair
        .in_server(20, "nft")
        .args(["delete", "table", "inet", "batten"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let (_, findings) = drift();
    let loaded = found(&findings, "firewall.loaded");
    assert_eq!(loaded["kind"], "drifted", "{findings:#}");
    // The evidence: batten's table cannot be read back, in nft's words.
    let said = loaded["now"].as_str().unwrap();
    assert!(
        said.starts_with("fail: batten's rules cannot be read back from the kernel")
            && said.contains("No such file or directory")
            && !said.contains('\n'),
        "{loaded}"
    );
    let table = found(&findings, "firewall.ruleset");
    assert!(
        table["now"]
            .as_str()
            .unwrap()
            .contains("batten's rules are not loaded any more"),
        "{table}"
    );
    let prom =
        std::fs::read_to_string(scratch.join("/var/lib/prometheus/node-exporter/batten.prom"))
            .unwrap();
    assert!(
        prom.contains("\nbatten_check_ok{check=\"firewall_loaded\"} 0\n"),
        "{prom}"
    );
    status_is(&scratch, 2, "degraded");

    // batten's ruleset back: clean again.
    load();
    let (code, findings) = drift();
    assert_eq!(code, Some(0), "{findings:#}");
}

#[test]
fn repair_puts_back_battens_own_files_and_leaves_the_rest_reported() {
    const T: &str = "repair_puts_back_battens_own_files_and_leaves_the_rest_reported";
    if !privileged(T) || !have("sshd", T) || !have("unshare", T) {
        return;
    }
    let scratch = Scratch::new();
    let ud = scratch.user_data(
        "ud.yaml",
        &format!(
            "#cloud-config\nusers:\n  - name: admin\n    ssh_authorized_keys: [\"{KEY}\"]\nbatten:\n  updates: false\n  assure: {{repair: true}}\n"
        ),
    );
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["verify", "--seal", "--root", &scratch.root_arg()]);
    assert!(out.status.success(), "{}", text(&out));

    // batten's own sysctl file edited: the timer's check puts it back.
    let sysctl = scratch.join("/etc/sysctl.d/zz-batten.conf");
    let original = std::fs::read_to_string(&sysctl).unwrap();
    std::fs::write(
        &sysctl,
        original.replace("kernel.dmesg_restrict = 1", "kernel.dmesg_restrict = 0"),
    )
    .unwrap();
    // The repair passes the sealed instance-id in memory: nothing with a
    // predictable name in the temporary directory (safety rule 4). TMPDIR
    // names a directory that does not exist, so a file written there (and
    // removed again) fails the repair instead of passing unseen.
    let tmp = tempfile::tempdir().unwrap();
    let absent = tmp.path().join("absent");
    let out = batten()
        .args([
            "verify",
            "--drift",
            "--root",
            &scratch.root_arg(),
            "--format",
            "json",
        ])
        .env("TMPDIR", &absent)
        .output()
        .unwrap();
    let findings: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the repair left files in $TMPDIR"
    );
    assert!(!absent.exists(), "the repair made $TMPDIR");
    assert!(text(&out).contains("re-applied"), "{}", text(&out));
    assert!(
        out.status.success(),
        "repaired, nothing left: {}\n{findings:#}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&sysctl).unwrap(), original);
    assert_eq!(status(&scratch).1["status"], "done");

    let runs = || {
        let state: serde_json::Value = serde_json::from_slice(
            &std::fs::read(scratch.join("/var/lib/batten/state.json")).unwrap(),
        )
        .unwrap();
        state["runs"].as_array().unwrap().len()
    };

    // batten's ruleset file flushed: written back (it is batten's, written
    // whole) and checked, in one run; the next period has nothing to do.
    let nft = scratch.join("/etc/nftables.conf");
    let rules = std::fs::read_to_string(&nft).unwrap();
    std::fs::write(&nft, "#!/usr/sbin/nft -f\nflush ruleset\n").unwrap();
    let before = runs();
    let (out, findings) = drift(&scratch);
    assert!(out.status.success(), "{}\n{findings:#}", text(&out));
    assert_eq!(std::fs::read_to_string(&nft).unwrap(), rules);
    assert_eq!(runs(), before + 1, "one repair run");
    let (out, _) = drift(&scratch);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(runs(), before + 1, "nothing to repair, no run");

    // Someone else's drop-in: not batten's to change; named and reported.
    let oops = scratch.join("/etc/ssh/sshd_config.d/00-a-oops.conf");
    std::fs::write(&oops, "PasswordAuthentication yes\n").unwrap();
    let (out, findings) = drift(&scratch);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("00-a-oops.conf"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&oops).unwrap(),
        "PasswordAuthentication yes\n"
    );
    assert!(
        findings["items"].as_array().unwrap().iter().any(|i| i["id"]
            .as_str()
            .unwrap()
            .starts_with("sshd.passwordauthentication.")),
        "{findings:#}"
    );
    assert_eq!(
        status(&scratch).1["sealed"],
        true,
        "a repair keeps the seal"
    );

    // A drift repair cannot undo is reported each period, never re-applied
    // and recorded as a run each period.
    let before = runs();
    for _ in 0..2 {
        let (out, _) = drift(&scratch);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    }
    assert_eq!(runs(), before, "a drift check recorded a run");
}
