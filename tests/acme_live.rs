//! ACME for real and offline: Debian's pebble (Let's Encrypt's test CA) in
//! the client namespace, with pebble-challtestsrv answering every name
//! with the machine's address; the machine (nginx on the site batten
//! wrote, and `batten acme` with Debian's certbot) in the server
//! namespace. A first round while nginx is down is refused by the CA and
//! leaves the self-signed certificate serving, with the reason in the
//! state and in verify's warning; with nginx up the CA's certificate is
//! obtained and served (curl checks the chain against pebble's own root)
//! and verify passes it; a forced renewal replaces it, nginx serves the new
//! key and not the old one. Everything outside the scratch root is an overlay or a temporary
//! directory that vanishes with the test.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::net::{self, Daemon, Pair};
use common::*;

const DOMAIN: &str = "panel.batten.test";
const SITE: &str = "batten-80-panel.batten.test";

/// nginx inside the server namespace: the scratch root's nginx
/// configuration, certificates and ACME webroot, /run shared with the
/// `batten acme` namespace (so `nginx -s reload` finds the pid), logs on a
/// tmpfs, /var/lib an overlay (nginx's temporary files) with the webroot
/// bound in.
const NGINX: &str = "set -e
R=\"$1\"; RUN=\"$2\"; W=\"$3\"; shift 3
mount --bind \"$R/etc/nginx\" /etc/nginx
mount --bind \"$R/etc/ssl\" /etc/ssl
mount --bind \"$RUN\" /run
mount -t tmpfs batten-test-log /var/log/nginx
mkdir -p \"$W/upper\" \"$W/work\"
mount -t overlay batten-test-lib -o lowerdir=/var/lib,upperdir=\"$W/upper\",workdir=\"$W/work\" /var/lib
mkdir -p /var/lib/batten-acme
mount --bind \"$R/var/lib/batten-acme\" /var/lib/batten-acme
exec \"$@\"";

/// `batten acme` inside the server namespace: /etc an overlay (certbot's
/// /etc/letsencrypt lands in it), the scratch root's nginx, certificates
/// and /var/lib (batten's state and user-data, certbot's work, the
/// webroot), the shared /run, and /var/log on a tmpfs.
const ACME: &str = "set -e
R=\"$1\"; RUN=\"$2\"; W=\"$3\"; shift 3
mkdir -p \"$W/upper\" \"$W/work\"
mount -t overlay batten-test-etc -o lowerdir=/etc,upperdir=\"$W/upper\",workdir=\"$W/work\" /etc
mount --bind \"$R/etc/nginx\" /etc/nginx
mount --bind \"$R/etc/ssl\" /etc/ssl
mount --bind \"$R/var/lib\" /var/lib
mount --bind \"$RUN\" /run
mount -t tmpfs batten-test-log /var/log
exec \"$@\"";

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
}

/// A test root CA and pebble's HTTPS certificate from it, for the address
/// the ACME directory listens on.
fn pebble_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=batten test root",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=batten test acme",
            "-keyout",
            "pebble.key",
            "-out",
            "pebble.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        format!(
            "subjectAltName=IP:{}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
            net::CLIENT_V4
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "pebble.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "pebble.pem",
        ],
    );
}

/// The certificate a site serves, as curl from the client sees it (subject
/// and issuer lines of `-v`), trusting nothing (`-k`).
fn served(pair: &Pair) -> String {
    let out = pair
        .in_client(20, "curl")
        .args([
            "-s",
            "-k",
            "-v",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
            "--resolve",
        ])
        .arg(format!("{DOMAIN}:443:{}", net::SERVER_V4))
        .arg(format!("https://{DOMAIN}/"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("subject:") || l.contains("issuer:"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn acme_round(pair: &Pair, scratch: &Scratch, run: &Path, work: &Path, extra: &[&str]) -> Output {
    pair.in_server_mounts(240, ACME)
        .arg(scratch.path())
        .arg(run)
        .arg(work)
        .arg(env!("CARGO_BIN_EXE_batten"))
        .arg("acme")
        .args(extra)
        .output()
        .unwrap()
}

fn state(scratch: &Scratch) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(scratch.join("/var/lib/batten/state.json")).unwrap())
        .unwrap()
}

#[test]
fn a_certificate_from_the_ca_replaces_the_self_signed_one_and_renews() {
    const T: &str = "a_certificate_from_the_ca_replaces_the_self_signed_one_and_renews";
    if !privileged(T) {
        return;
    }
    for tool in [
        "nginx",
        "curl",
        "ip",
        "unshare",
        "openssl",
        "pebble",
        "pebble-challtestsrv",
        "certbot",
    ] {
        if !have(tool, T) {
            return;
        }
    }
    let scratch = Scratch::new();
    scratch.with_nginx();
    let certs = tempfile::tempdir().unwrap();
    pebble_certificates(certs.path());
    // The CA file the user-data names for the directory's HTTPS, where the
    // machine has it.
    std::fs::create_dir_all(scratch.join("/etc/ssl")).unwrap();
    std::fs::copy(
        certs.path().join("root.pem"),
        scratch.join("/etc/ssl/batten-test-ca.pem"),
    )
    .unwrap();
    let ud = scratch.user_data(
        "acme.yaml",
        &format!(
            "#cloud-config\nusers: []\nssh_pwauth: true\nbatten:\n  proxy:\n    - listen: 80\n      server_name: {DOMAIN}\n      upstream: 127.0.0.1:8080\n      tls: {{acme: {{domain: {DOMAIN}, email: ops@batten.test, server: \"https://{}:14000/dir\", server_ca: /etc/ssl/batten-test-ca.pem}}}}\n      auth: {{users: [{{name: admin}}]}}\n",
            net::CLIENT_V4
        ),
    );
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    for unit in ["batten-acme.service", "batten-acme.timer"] {
        assert!(
            scratch
                .join(&format!("/etc/systemd/system/{unit}"))
                .exists(),
            "{unit}"
        );
    }
    let crt = scratch.join(&format!("/etc/ssl/batten/{SITE}.crt"));
    let self_signed = std::fs::read(&crt).unwrap();
    std::fs::create_dir_all(scratch.join("/var/lib/batten-acme")).unwrap();

    // The CA: pebble and its mock DNS, which sends every name to the machine.
    let pair = Pair::new("acme");
    let dns = pair
        .in_client(300, "pebble-challtestsrv")
        .args([
            "-dns01",
            "127.0.0.1:8053",
            "-defaultIPv4",
            net::SERVER_V4,
            "-defaultIPv6",
            "",
        ])
        .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
        .args(["-management", "127.0.0.1:8055"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _dns = Daemon(dns);
    let config = certs.path().join("pebble.json");
    std::fs::write(
        &config,
        serde_json::json!({"pebble": {
            "listenAddress": format!("{}:14000", net::CLIENT_V4),
            "managementListenAddress": format!("{}:15000", net::CLIENT_V4),
            "certificate": certs.path().join("pebble.pem"),
            "privateKey": certs.path().join("pebble.key"),
            "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }})
        .to_string(),
    )
    .unwrap();
    let pebble_log = tempfile::NamedTempFile::new().unwrap();
    let pebble = pair
        .in_client(300, "pebble")
        .arg("-config")
        .arg(&config)
        .args(["-dnsserver", "127.0.0.1:8053", "-strict=false"])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .env("PEBBLE_AUTHZREUSE", "0")
        .stdout(pebble_log.reopen().unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _pebble = Daemon(pebble);
    let until = Instant::now() + Duration::from_secs(20);
    while !pair
        .in_client(5, "curl")
        .args(["-s", "-o", "/dev/null", "--cacert"])
        .arg(certs.path().join("root.pem"))
        .arg(format!("https://{}:14000/dir", net::CLIENT_V4))
        .status()
        .unwrap()
        .success()
    {
        assert!(Instant::now() < until, "pebble never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
    let pebble_said = || std::fs::read_to_string(pebble_log.path()).unwrap_or_default();
    let run = tempfile::tempdir().unwrap();
    // One /etc overlay for every round: certbot's account and certificates
    // in /etc/letsencrypt carry over, as on a machine.
    let acme_work = tempfile::tempdir().unwrap();

    // 1. nginx is not up: the CA cannot fetch the challenge and refuses.
    let refused = acme_round(&pair, &scratch, run.path(), acme_work.path(), &[]);
    assert_eq!(
        refused.status.code(),
        Some(70),
        "{}\n{}",
        text(&refused),
        pebble_said()
    );
    assert!(
        text(&refused).contains("no certificate from the CA"),
        "{}",
        text(&refused)
    );
    assert_eq!(
        std::fs::read(&crt).unwrap(),
        self_signed,
        "the self-signed certificate stays"
    );
    let st = state(&scratch);
    assert_eq!(st["acme"][0]["ok"], false, "{st:#}");
    assert!(
        st["acme"][0]["said"]
            .as_str()
            .unwrap()
            .contains("onnection"),
        "the CA's reason is kept: {st:#}"
    );
    let status = run_status(&scratch);
    assert!(
        status.contains(&format!("acme:        {SITE} ({DOMAIN}) FAILED")),
        "{status}"
    );
    // verify: a warning (the self-signed certificate serves meanwhile) that
    // carries the CA's reason.
    let (verdict, why) = certificate_verdict(&scratch);
    assert_eq!(verdict, "warn", "{why}");
    assert!(
        why.contains("still the self-signed one") && why.contains("the last ACME round"),
        "{why}"
    );

    // 2. nginx up (serving the self-signed certificate), the round succeeds.
    let nginx_work = tempfile::tempdir().unwrap();
    let nginx_log = tempfile::NamedTempFile::new().unwrap();
    let nginx = pair
        .in_server_mounts(300, NGINX)
        .arg(scratch.path())
        .arg(run.path())
        .arg(nginx_work.path())
        .args(["/usr/sbin/nginx", "-g", "daemon off; error_log stderr;"])
        .stdout(Stdio::null())
        .stderr(nginx_log.reopen().unwrap())
        .spawn()
        .unwrap();
    let _nginx = Daemon(nginx);
    net::wait_for_port(&pair, net::SERVER_V4, 443, Duration::from_secs(20));
    assert!(
        served(&pair).contains(&format!("issuer: CN={DOMAIN}")),
        "{}",
        served(&pair)
    );
    let obtained = acme_round(&pair, &scratch, run.path(), acme_work.path(), &[]);
    assert!(
        obtained.status.success(),
        "{}\n{}\n{}",
        text(&obtained),
        pebble_said(),
        std::fs::read_to_string(nginx_log.path()).unwrap_or_default()
    );
    assert!(
        text(&obtained).contains("certificate installed"),
        "{}",
        text(&obtained)
    );
    let first = std::fs::read(&crt).unwrap();
    assert_ne!(first, self_signed);
    let st = state(&scratch);
    assert_eq!(st["acme"][0]["ok"], true, "{st:#}");
    assert_eq!(st["certificates"][0]["self_signed"], false, "{st:#}");
    // verify passes the CA's certificate, the one batten recorded.
    let (verdict, why) = certificate_verdict(&scratch);
    assert_eq!(verdict, "pass", "{why}");
    let fingerprint = st["certificates"][0]["fingerprint"].as_str().unwrap();
    assert!(
        why.starts_with(&format!("issued by a CA, SHA-256 {fingerprint}, ")),
        "{why}"
    );
    let first_pin = st["certificates"][0]["pin"].as_str().unwrap().to_string();
    let key = std::fs::metadata(scratch.join(&format!("/etc/ssl/batten/{SITE}.key"))).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((key.mode() & 0o7777, key.uid()), (0o600, 0));
    // nginx was reloaded and serves it; the chain checks out against the
    // CA's own root, fetched from pebble.
    let until = Instant::now() + Duration::from_secs(10);
    while served(&pair).contains(&format!("issuer: CN={DOMAIN}")) {
        assert!(
            Instant::now() < until,
            "nginx still serves the self-signed certificate"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let roots = pair
        .in_client(10, "curl")
        .args(["-s", "--cacert"])
        .arg(certs.path().join("root.pem"))
        .arg(format!("https://{}:15000/roots/0", net::CLIENT_V4))
        .output()
        .unwrap();
    let issuing_root = certs.path().join("issuing-root.pem");
    std::fs::write(&issuing_root, &roots.stdout).unwrap();
    let checked = pair
        .in_client(10, "curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            "--cacert",
        ])
        .arg(&issuing_root)
        .arg("--resolve")
        .arg(format!("{DOMAIN}:443:{}", net::SERVER_V4))
        .arg(format!("https://{DOMAIN}/"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&checked.stdout),
        "401",
        "{}",
        text(&checked)
    );
    // Plain HTTP still only redirects, and answers the CA's challenges.
    let plain = pair
        .in_client(10, "curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://{}/", net::SERVER_V4))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "301");

    // 3. A forced renewal replaces it.
    let renewed = acme_round(
        &pair,
        &scratch,
        run.path(),
        acme_work.path(),
        &["--force-renewal"],
    );
    assert!(
        renewed.status.success(),
        "{}\n{}",
        text(&renewed),
        pebble_said()
    );
    assert!(
        text(&renewed).contains("certificate installed"),
        "{}",
        text(&renewed)
    );
    assert_ne!(
        std::fs::read(&crt).unwrap(),
        first,
        "renewal made a new certificate"
    );
    // nginx serves the renewed one (certbot makes a new key for it), and
    // verify holds the site to it.
    let st = state(&scratch);
    let renewed_pin = st["certificates"][0]["pin"].as_str().unwrap().to_string();
    assert_ne!(renewed_pin, first_pin, "{st:#}");
    assert!(
        serves_key(&pair, &renewed_pin),
        "nginx does not serve the renewed certificate"
    );
    // Once the new key is served, the old pin is refused as a pin (curl's
    // 90), not for a connection that failed.
    assert_eq!(
        curl_pinned(&pair, &first_pin),
        Some(90),
        "nginx still serves the first certificate"
    );
    assert_eq!(certificate_verdict(&scratch).0, "pass");
}

/// What `verify --root` says of the site's certificate: (status, why).
fn certificate_verdict(scratch: &Scratch) -> (String, String) {
    let out = run(&["verify", "--root", &scratch.root_arg(), "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verify --format json: {e}: {}", text(&out)));
    let id = format!("proxy.{SITE}.certificate");
    let check = report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("no {id} in {report:#}"));
    (
        check["status"].as_str().unwrap_or_default().to_string(),
        check["why"].as_str().unwrap_or_default().to_string(),
    )
}

/// Whether the site serves the key `pin` (curl's --pinnedpubkey form),
/// within 10 s (nginx's reload takes a moment).
fn serves_key(pair: &Pair, pin: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if curl_pinned(pair, pin) == Some(0) {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// curl's exit code for one HTTPS request to the site that accepts only
/// the key `pin` (90: the site serves another key).
fn curl_pinned(pair: &Pair, pin: &str) -> Option<i32> {
    pair.in_client(10, "curl")
        .args([
            "-s",
            "-k",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
            "--pinnedpubkey",
            pin,
        ])
        .arg("--resolve")
        .arg(format!("{DOMAIN}:443:{}", net::SERVER_V4))
        .arg(format!("https://{DOMAIN}/"))
        .status()
        .unwrap()
        .code()
}

fn run_status(scratch: &Scratch) -> String {
    let out = run(&["status", "--root", &scratch.root_arg()]);
    String::from_utf8_lossy(&out.stdout).to_string()
}
