//! The real nginx on the site batten wrote, in a network namespace, in
//! front of a small backend on 127.0.0.1:8080: no password, no entry; the
//! generated and the given passwords get through with the usual headers,
//! over HTTPS with the certificate batten made and printed (`tls: auto`),
//! while plain HTTP on 80 only redirects. nginx runs in a private mount
//! namespace where the scratch root's /etc/nginx and /etc/ssl are the ones
//! it reads and its logs go to a tmpfs.

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::net::{self, Daemon, Pair};
use common::*;

/// "Tr0ub4dor&3", SHA-512 crypt.
const HASH: &str = "$6$5pQ2vA9xKq$epS4X.7G3HpDOM7J4ecJlex5bWIQRNZ8N3EabU1Ee0fF1DXwHkkHjUw1XShpU8CB8ALRA2He8x.ryHSYLz3YM1";

const IN_SCRATCH: &str = "set -e
R=\"$1\"; shift
mount --bind \"$R/etc/nginx\" /etc/nginx
mount --bind \"$R/etc/ssl\" /etc/ssl
mount -t tmpfs batten-test-run /run
mount -t tmpfs batten-test-log /var/log/nginx
exec \"$@\"";

/// `curl -i` from the client namespace: `https` with the site's key pinned
/// (the certificate is self-signed, so only the pin vouches for it), or
/// plain `http`.
fn curl(pair: &Pair, url: &str, pin: Option<&str>, auth: Option<&str>) -> Output {
    let mut c = pair.in_client(20, "curl");
    c.args(["-s", "-i", "--max-time", "5"]);
    if let Some(pin) = pin {
        c.args(["--insecure", "--pinnedpubkey", pin]);
    }
    if let Some(a) = auth {
        c.args(["-u", a]);
    }
    c.arg(url);
    c.output().unwrap()
}

#[test]
fn basic_auth_in_front_of_the_panel() {
    const T: &str = "basic_auth_in_front_of_the_panel";
    if !privileged(T)
        || !have("nginx", T)
        || !have("curl", T)
        || !have("ip", T)
        || !have("unshare", T)
    {
        return;
    }
    let scratch = Scratch::new();
    let copied = std::process::Command::new("cp")
        .args(["-a", "/etc/nginx"])
        .arg(scratch.join("/etc"))
        .status()
        .unwrap();
    assert!(copied.success());
    let ud = scratch.user_data(
        "proxy.yaml",
        &format!(
            "#cloud-config\nusers: []\nssh_pwauth: true\nbatten:\n  proxy:\n    - listen: 80\n      upstream: 127.0.0.1:8080\n      auth:\n        realm: Admin panel\n        users:\n          - {{name: admin}}\n          - {{name: ops, password_hash: \"{HASH}\"}}\n"
        ),
    );
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("/var/lib/batten/credentials"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(HASH), "a hash reached the output");
    // The certificate's fingerprint and pin, printed for the owner.
    let said = text(&out);
    let line = said
        .lines()
        .skip_while(|l| *l != "-----BEGIN HTTPS CERTIFICATE FINGERPRINTS-----")
        .nth(1)
        .unwrap_or_else(|| panic!("no certificate block:\n{said}"))
        .to_string();
    assert!(line.starts_with("batten-80 SHA256 "), "{line}");
    assert!(line.contains("(self-signed, for "), "{line}");
    let pin = line
        .rsplit_once("--pinnedpubkey ")
        .map(|(_, p)| p.trim_end_matches(')').to_string())
        .unwrap_or_else(|| panic!("no pin in {line}"));
    assert!(pin.starts_with("sha256//"), "{pin}");
    let key = std::fs::metadata(scratch.join("/etc/ssl/batten/batten-80.key")).unwrap();
    assert_eq!((key.mode() & 0o7777, key.uid(), key.gid()), (0o600, 0, 0));
    let crt = std::fs::metadata(scratch.join("/etc/ssl/batten/batten-80.crt")).unwrap();
    assert_eq!((crt.mode() & 0o7777, crt.uid()), (0o644, 0));
    let key_text = std::fs::read_to_string(scratch.join("/etc/ssl/batten/batten-80.key")).unwrap();
    assert!(
        !said.contains(key_text.lines().nth(1).unwrap()),
        "the key reached the output"
    );

    // Files, modes, owners.
    let htpasswd = scratch.join("/etc/nginx/batten-80.htpasswd");
    let meta = std::fs::metadata(&htpasswd).unwrap();
    let group = std::fs::read_to_string(scratch.join("/etc/group")).unwrap();
    let www: u32 = group
        .lines()
        .find(|l| l.starts_with("www-data:"))
        .unwrap()
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        (meta.mode() & 0o777, meta.uid(), meta.gid()),
        (0o640, 0, www)
    );
    let credentials = std::fs::read_to_string(scratch.join("/var/lib/batten/credentials")).unwrap();
    assert_eq!(
        std::fs::metadata(scratch.join("/var/lib/batten/credentials"))
            .unwrap()
            .mode()
            & 0o777,
        0o600
    );
    let password = credentials
        .lines()
        .find(|l| l.starts_with("batten-80 admin "))
        .and_then(|l| l.split_whitespace().nth(2))
        .expect("admin's generated password is recorded")
        .to_string();
    assert!(password.len() >= 24);
    let status = run(&["status", "--root", &scratch.root_arg()]);
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.contains("credentials: ") && status.contains("/var/lib/batten/credentials"),
        "{status}"
    );
    assert!(
        status.contains("backups:     ") && status.contains("/var/lib/batten/backup/"),
        "{status}"
    );
    assert!(!status.contains(&password), "status shows a password");
    assert!(
        status.contains("https:       batten-80 SHA256 ") && status.contains(&pin),
        "{status}"
    );
    assert!(
        std::fs::symlink_metadata(scratch.join("/etc/nginx/sites-enabled/batten-80"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // The real nginx and a backend, in a namespace.
    let pair = Pair::new("proxy");
    let backend = pair
        .in_server(120, "/usr/bin/python3")
        .arg(repo().join("tests/fixtures/netprobe.py"))
        .args(["http", "100", "8080"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _backend = Daemon(backend);
    let log = tempfile::NamedTempFile::new().unwrap();
    let nginx = pair
        .in_server_mounts(120, IN_SCRATCH)
        .arg(scratch.path())
        .args(["/usr/sbin/nginx", "-g", "daemon off; error_log stderr;"])
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let _nginx = Daemon(nginx);
    net::wait_for_port(&pair, net::SERVER_V4, 443, Duration::from_secs(20));
    let nginx_log = || std::fs::read_to_string(log.path()).unwrap_or_default();
    let https = format!("https://{}/panel", net::SERVER_V4);
    let curl_https = |auth: Option<&str>| {
        String::from_utf8_lossy(&curl(&pair, &https, Some(&pin), auth).stdout).to_string()
    };

    // Plain HTTP only redirects: no password prompt, nothing proxied.
    let plain = String::from_utf8_lossy(
        &curl(
            &pair,
            &format!("http://{}/panel", net::SERVER_V4),
            None,
            Some("admin:x"),
        )
        .stdout,
    )
    .to_string();
    assert!(
        plain.starts_with("HTTP/1.1 301"),
        "{plain}\n{}",
        nginx_log()
    );
    assert!(
        plain.contains(&format!("Location: https://{}/panel", net::SERVER_V4)),
        "{plain}"
    );
    assert!(
        !plain.contains("WWW-Authenticate") && !plain.contains("backend saw"),
        "{plain}"
    );
    // Another key than the one batten printed: curl refuses the server.
    let other = curl(
        &pair,
        &https,
        Some("sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        None,
    );
    assert_eq!(other.status.code(), Some(90), "{}", text(&other));

    let none = curl_https(None);
    assert!(none.starts_with("HTTP/1.1 401"), "{none}\n{}", nginx_log());
    assert!(
        none.contains("WWW-Authenticate: Basic realm=\"Admin panel\""),
        "{none}"
    );
    let wrong = curl_https(Some("admin:not-the-password"));
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let generated = curl_https(Some(&format!("admin:{password}")));
    assert!(
        generated.starts_with("HTTP/1.1 200"),
        "{generated}\n{}",
        nginx_log()
    );
    assert!(generated.contains("backend saw:"), "{generated}");
    for header in [
        format!("x-real-ip: {}", net::CLIENT_V4),
        format!("x-forwarded-for: {}", net::CLIENT_V4),
        "x-forwarded-proto: https".to_string(),
        format!("host: {}", net::SERVER_V4),
    ] {
        assert!(
            generated.contains(&header),
            "the backend did not see `{header}`:\n{generated}"
        );
    }
    let given = curl_https(Some("ops:Tr0ub4dor&3"));
    assert!(given.starts_with("HTTP/1.1 200"), "{given}");

    // batten verify, live in the same network namespace (/etc an overlay,
    // the scratch root's nginx and state bound in): the request without a
    // password gets 401, the generated password gets through.
    let work = tempfile::tempdir().unwrap();
    for d in ["upper", "work"] {
        std::fs::create_dir(work.path().join(d)).unwrap();
    }
    let script = "set -e
W=\"$1\"; R=\"$2\"; shift 2
mount -t overlay batten-test-etc -o lowerdir=/etc,upperdir=\"$W/upper\",workdir=\"$W/work\" /etc
mount --bind \"$R/etc/nginx\" /etc/nginx
mount --bind \"$R/etc/ssl\" /etc/ssl
mount --bind \"$R/var/lib\" /var/lib
exec \"$@\"";
    // The firewall batten wrote, loaded where nginx runs: verify reads the
    // upstream's drop back from the kernel.
    let rules = scratch.join("/etc/nftables.conf").display().to_string();
    let loaded = pair
        .in_server(20, "nft")
        .args(["-f", &rules])
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{}", text(&loaded));
    let verify_live = || {
        let out = pair
            .in_server_mounts(60, script)
            .arg(work.path())
            .arg(scratch.path())
            .args([env!("CARGO_BIN_EXE_batten"), "verify", "--format", "json"])
            .output()
            .unwrap();
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
        (out, report)
    };
    let status_in = |report: &serde_json::Value, id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["status"].clone())
            .unwrap_or_else(|| panic!("no {id}: {report:#}"))
    };
    let (verify, report) = verify_live();
    let status = |id: &str| status_in(&report, id);
    assert_eq!(status("firewall.upstream"), "pass", "{report:#}");
    assert_eq!(status("firewall.accepts"), "pass", "{report:#}");
    for check in ["certificate", "https", "login", "redirect"] {
        assert_eq!(
            status(&format!("proxy.batten-80.{check}")),
            "pass",
            "{report:#}"
        );
    }
    assert_eq!(
        status("sockets.tcp.127.0.0.1:8080"),
        "pass",
        "the upstream is on loopback: {report:#}"
    );
    assert!(
        !String::from_utf8_lossy(&verify.stdout).contains(&password),
        "the report shows a password"
    );
    // Someone opens the panel's port ahead of batten's drop, by its number
    // or by letting a whole network in: verify fails either way.
    // batten's ruleset loaded afresh, then one rule inserted ahead of it.
    let reload_and_insert = |rule: &[&str]| {
        let reloaded = pair
            .in_server(20, "nft")
            .args(["-f", &rules])
            .output()
            .unwrap();
        assert!(reloaded.status.success(), "{}", text(&reloaded));
        let opened = pair
            .in_server(20, "nft")
            .args(["insert", "rule", "inet", "batten", "input"])
            .args(rule)
            .output()
            .unwrap();
        assert!(opened.status.success(), "{}", text(&opened));
    };
    for opening in [
        &["tcp", "dport", "8080", "accept"][..],
        &["ip", "saddr", "198.51.100.0/24", "accept"][..],
    ] {
        reload_and_insert(opening);
        let (verify, report) = verify_live();
        assert_eq!(verify.status.code(), Some(1), "{opening:?}: {report:#}");
        assert_eq!(
            status_in(&report, "firewall.upstream"),
            "fail",
            "{opening:?}: {report:#}"
        );
    }

    // A rule someone adds that accepts a port nobody opened is named.
    reload_and_insert(&["tcp", "dport", "9999", "accept"]);
    let (_, report) = verify_live();
    let accepts = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "firewall.accepts")
        .cloned()
        .unwrap_or_default();
    assert_eq!(accepts["status"], "fail", "{report:#}");
    assert!(
        accepts["why"]
            .as_str()
            .unwrap_or_default()
            .contains("9999/tcp"),
        "{accepts}"
    );

    // A second run keeps every password and file as they are.
    let before = snapshot(scratch.path());
    let again = scratch.batten("run", &ud, &[]);
    assert!(again.status.success(), "{}", text(&again));
    let moved: Vec<_> = changed(&before, &snapshot(scratch.path()))
        .into_iter()
        .filter(|p| {
            !p.starts_with("var/lib/batten/journal")
                && !p.ends_with("state.json")
                && p != std::path::Path::new("var/lib/batten")
        })
        .collect();
    assert!(moved.is_empty(), "a second run changed {moved:?}");
}

/// A site renamed in user-data does not leave the old one proxying.
#[test]
fn a_site_no_longer_listed_is_removed() {
    const T: &str = "a_site_no_longer_listed_is_removed";
    if !privileged(T) || !have("nginx", T) || !have("unshare", T) {
        return;
    }
    let scratch = Scratch::new();
    scratch.with_nginx();
    let site = |port: u16| {
        format!(
            "#cloud-config\nusers: []\nssh_pwauth: true\nbatten:\n  proxy:\n    - {{listen: {port}, upstream: 127.0.0.1:8080, auth: {{users: [{{name: admin}}]}}}}\n"
        )
    };
    let first = scratch.user_data("a.yaml", &site(8081));
    assert!(scratch.batten("run", &first, &[]).status.success());
    assert!(
        scratch
            .join("/etc/nginx/sites-available/batten-8081")
            .exists()
    );
    let second = scratch.user_data("b.yaml", &site(8082));
    let out = scratch.batten("run", &second, &["--force"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(scratch.join("/etc/ssl/batten/batten-8082.key").exists());
    for gone in [
        "/etc/nginx/sites-available/batten-8081",
        "/etc/nginx/batten-8081.htpasswd",
        "/etc/ssl/batten/batten-8081.crt",
        "/etc/ssl/batten/batten-8081.key",
    ] {
        assert!(!scratch.join(gone).exists(), "{gone} is still there");
    }
    assert!(
        std::fs::symlink_metadata(scratch.join("/etc/nginx/sites-enabled/batten-8081")).is_err()
    );
    assert!(
        scratch
            .join("/etc/nginx/sites-available/batten-8082")
            .exists()
    );
}
