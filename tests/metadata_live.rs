//! User-data over the network: a fake metadata service for each provider on
//! 169.254.169.254 inside a network namespace pair the test makes, and
//! `batten run --from-metadata` in the other namespace with the provider's
//! DMI strings given through `--dmi-dir`. The user-data, instance-id and
//! the owner's key end up as from a local seed; a service that hangs, sends
//! 50 MB, redirects or fails is cut off within the bounds and changes
//! nothing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::net::{self, Daemon, Pair};
use common::*;

const OWNER_KEY: &str = "owner@panel";

/// DMI strings of each provider, as its machines show them.
fn dmi(provider: &str) -> Vec<(&'static str, &'static str)> {
    match provider {
        "ec2" => vec![
            ("sys_vendor", "Amazon EC2"),
            ("product_uuid", "EC2E1916-9099-7CAF-FD21-012345ABCDEF"),
        ],
        "openstack" => vec![
            ("sys_vendor", "OpenStack Foundation"),
            ("product_name", "OpenStack Nova"),
        ],
        "hetzner" => vec![("sys_vendor", "Hetzner"), ("product_serial", "4711")],
        "digitalocean" => vec![("sys_vendor", "DigitalOcean"), ("product_serial", "987654")],
        "gce" => vec![
            ("sys_vendor", "Google"),
            ("product_name", "Google Compute Engine"),
        ],
        other => panic!("no DMI strings for {other}"),
    }
}

/// A namespace pair with the metadata address on the server side.
struct Cloud {
    // Dropped first: the server stops before its namespace and files go.
    _server: Daemon,
    pair: Pair,
    work: tempfile::TempDir,
}

impl Cloud {
    fn new(provider: &str, mode: &str, user_data: &str) -> Cloud {
        Cloud::start(provider, mode, user_data.as_bytes())
    }

    fn start(provider: &str, mode: &str, user_data: &[u8]) -> Cloud {
        let pair = Pair::new(&format!("md{}", &provider[..2]));
        pair.add_address(true, "169.254.169.254/16");
        pair.add_address(false, "169.254.10.2/16");
        let work = tempfile::tempdir().unwrap();
        std::fs::write(work.path().join("user-data"), user_data).unwrap();
        let dmi_dir = work.path().join("dmi");
        std::fs::create_dir(&dmi_dir).unwrap();
        for (field, value) in dmi(provider) {
            std::fs::write(dmi_dir.join(field), format!("{value}\n")).unwrap();
        }
        let mut child = pair
            .in_server(60, "/usr/bin/python3")
            .arg(repo().join("tests/fixtures/fake_metadata.py"))
            .args([provider, mode, "169.254.169.254", "55"])
            .arg(work.path().join("user-data"))
            .arg(work.path().join("requests.log"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(
            ready.trim(),
            "ready",
            "the fake {provider} service did not start"
        );
        Cloud {
            pair,
            work,
            _server: Daemon(child),
        }
    }

    /// A service whose user-data is exactly `bytes` (gzip, say).
    fn with_bytes(provider: &str, bytes: &[u8]) -> Cloud {
        Cloud::start(provider, "ok", bytes)
    }

    /// `batten run --from-metadata` on `scratch`, in the client namespace.
    fn run(&self, scratch: &Scratch, extra: &[&str]) -> (std::process::Output, Duration) {
        let started = Instant::now();
        let out = self
            .pair
            .in_client(120, env!("CARGO_BIN_EXE_batten"))
            .args([
                "run",
                "--root",
                &scratch.root_arg(),
                "--from-metadata",
                "--dmi-dir",
            ])
            .arg(self.work.path().join("dmi"))
            .args(extra)
            .output()
            .unwrap();
        (out, started.elapsed())
    }

    fn requests(&self) -> String {
        std::fs::read_to_string(self.work.path().join("requests.log")).unwrap_or_default()
    }

    /// A request from the client namespace with curl; the HTTP status.
    fn curl(&self, method: &str, path: &str, headers: &[&str]) -> String {
        let mut c = self.pair.in_client(10, "curl");
        c.args(CURL_STATUS).args(["-m", "5", "-X", method]);
        for h in headers {
            c.args(["-H", h]);
        }
        let out = c
            .arg(format!("http://169.254.169.254{path}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn ready(test: &str) -> bool {
    privileged(test) && have("ip", test) && have("curl", test) && have("useradd", test)
}

/// Every account's keys file under /home in the scratch root that holds
/// `needle`.
fn key_files_with(scratch: &Scratch, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(scratch.join("/home")).unwrap() {
        let file = entry.unwrap().path().join(".ssh/authorized_keys");
        if std::fs::read_to_string(&file).is_ok_and(|t| t.contains(needle)) {
            found.push(file.display().to_string());
        }
    }
    found
}

fn state(scratch: &Scratch) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(scratch.join("/var/lib/batten/state.json")).unwrap())
        .unwrap()
}

#[test]
fn each_provider_gives_user_data_instance_id_and_the_owners_key() {
    const T: &str = "each_provider_gives_user_data_instance_id_and_the_owners_key";
    if !ready(T) || !have("sshd", T) {
        return;
    }
    let user_data = format!(
        "#cloud-config\nusers:\n  - default\n  - {{name: ops, ssh_authorized_keys: [\"{KEY}\"]}}\nssh_pwauth: false\n"
    );
    for (provider, instance) in [
        ("ec2", "i-0123456789abcdef0"),
        ("openstack", "83679162-1378-4288-a2d4-70e13ec132aa"),
        ("hetzner", "4711"),
        ("digitalocean", "987654"),
        ("gce", "1234567890123"),
    ] {
        let cloud = Cloud::new(provider, "ok", &user_data);
        let scratch = Scratch::new();
        let (out, _) = cloud.run(&scratch, &[]);
        assert!(out.status.success(), "{provider}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("metadata provider: {provider} (DMI")),
            "{provider}: {}",
            text(&out)
        );
        assert_eq!(state(&scratch)["instance_id"], instance, "{provider}");
        assert!(
            std::fs::read_to_string(scratch.join("/home/ops/.ssh/authorized_keys"))
                .unwrap()
                .contains(KEY),
            "{provider}: the user-data's account and key"
        );
        assert_eq!(
            key_files_with(&scratch, OWNER_KEY).len(),
            1,
            "{provider}: the owner's key from the panel goes to the default user"
        );
        let leaked: Vec<_> = snapshot(scratch.path())
            .into_iter()
            .filter(|(_, seen)| String::from_utf8_lossy(&seen.content).contains("mallory@panel"))
            .map(|(path, _)| path)
            .collect();
        assert!(
            leaked.is_empty(),
            "{provider}: a key GCE names for another user reached {leaked:?}"
        );
        let requests = cloud.requests();
        if provider == "ec2" {
            assert!(
                requests.starts_with("PUT /latest/api/token 200\n"),
                "IMDSv2 asks for a token first: {requests}"
            );
        }
        assert!(
            !requests.contains(" 401") && !requests.contains(" 403"),
            "{provider}: every request carried the provider's header or token: {requests}"
        );
    }
}

#[test]
fn the_fakes_refuse_requests_without_the_providers_token_or_header() {
    const T: &str = "the_fakes_refuse_requests_without_the_providers_token_or_header";
    if !ready(T) {
        return;
    }
    let ec2 = Cloud::new("ec2", "ok", "#cloud-config\n");
    net::wait_for_port(&ec2.pair, "169.254.169.254", 80, Duration::from_secs(10));
    assert_eq!(ec2.curl("GET", "/latest/meta-data/instance-id", &[]), "401");
    assert_eq!(ec2.curl("PUT", "/latest/api/token", &[]), "400");
    drop(ec2);
    let gce = Cloud::new("gce", "ok", "#cloud-config\n");
    assert_eq!(
        gce.curl("GET", "/computeMetadata/v1/instance/id", &[]),
        "403"
    );
    assert_eq!(
        gce.curl(
            "GET",
            "/computeMetadata/v1/instance/id",
            &["Metadata-Flavor: Google"]
        ),
        "200"
    );
}

#[test]
fn only_a_key_in_the_panel_still_turns_password_login_off() {
    const T: &str = "only_a_key_in_the_panel_still_turns_password_login_off";
    if !ready(T) || !have("sshd", T) {
        return;
    }
    // Hetzner answers 204 when the instance has no user-data.
    let cloud = Cloud::new("hetzner", "nouserdata", "#cloud-config\n");
    let scratch = Scratch::new();
    let (out, _) = cloud.run(&scratch, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        key_files_with(&scratch, OWNER_KEY).len(),
        1,
        "{}",
        text(&out)
    );
    let dropin =
        std::fs::read_to_string(scratch.join("/etc/ssh/sshd_config.d/00-batten.conf")).unwrap();
    assert!(dropin.contains("PasswordAuthentication no"), "{dropin}");
}

#[test]
fn a_service_that_hangs_floods_redirects_or_fails_changes_nothing() {
    const T: &str = "a_service_that_hangs_floods_redirects_or_fails_changes_nothing";
    if !ready(T) {
        return;
    }
    let user_data = format!("#cloud-config\nssh_authorized_keys: [\"{KEY}\"]\n");
    for (provider, mode, expect) in [
        ("hetzner", "hang", "timed out"),
        ("ec2", "huge", "larger than"),
        ("digitalocean", "huge", "larger than"),
        ("openstack", "redirect", "HTTP 302"),
        ("hetzner", "truncated", "peer disconnected"),
        ("gce", "error", "HTTP 500"),
    ] {
        let cloud = Cloud::new(provider, mode, &user_data);
        let scratch = Scratch::new();
        let before = snapshot(scratch.path());
        let (out, took) = cloud.run(&scratch, &["--metadata-budget", "6"]);
        assert_eq!(
            out.status.code(),
            Some(70),
            "{provider} {mode}: {}",
            text(&out)
        );
        let said = text(&out);
        assert!(
            said.contains("nothing was changed") && said.contains("stays armed"),
            "{provider} {mode}: {said}"
        );
        assert!(
            said.to_lowercase().contains(&expect.to_lowercase()),
            "{provider} {mode}: expected {expect:?} in {said}"
        );
        assert!(
            took < Duration::from_secs(12),
            "{provider} {mode}: took {took:?}"
        );
        assert_unchanged(&before, scratch.path());
        if mode == "redirect" {
            // One request answered with the redirect, which is not retried
            // and not followed (the error names the 302 itself).
            assert_eq!(
                cloud.requests(),
                "GET /openstack/latest/meta_data.json 302\n",
                "a redirect is neither followed nor retried"
            );
        }
    }
}

#[test]
fn no_provider_recognised_leaves_the_root_alone() {
    const T: &str = "no_provider_recognised_leaves_the_root_alone";
    if !ready(T) {
        return;
    }
    // In a namespace of its own, so that a regression that asked anyway
    // could not reach this machine's own metadata service.
    let pair = Pair::new("mdnone");
    let scratch = Scratch::new();
    let dmi = tempfile::tempdir().unwrap();
    std::fs::write(dmi.path().join("sys_vendor"), "QEMU\n").unwrap();
    let before = snapshot(scratch.path());
    let out = pair
        .in_client(60, env!("CARGO_BIN_EXE_batten"))
        .args([
            "run",
            "--root",
            &scratch.root_arg(),
            "--from-metadata",
            "--dmi-dir",
        ])
        .arg(dmi.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("no metadata service to ask"),
        "{}",
        text(&out)
    );
    assert_unchanged(&before, scratch.path());
}

#[test]
fn user_data_from_the_network_makes_the_same_machine_as_a_local_seed() {
    const T: &str = "user_data_from_the_network_makes_the_same_machine_as_a_local_seed";
    if !ready(T) || !have("sshd", T) || !have("gzip", T) {
        return;
    }
    let user_data = format!(
        "#cloud-config\nusers:\n  - default\n  - {{name: ops, groups: [adm], ssh_authorized_keys: [\"{KEY}\"]}}\nssh_pwauth: false\nbatten:\n  firewall:\n    allow: [{{port: 443}}]\n"
    );
    // EC2 serves it gzipped, as user-data often is.
    let work = tempfile::tempdir().unwrap();
    let plain = work.path().join("user-data");
    std::fs::write(&plain, &user_data).unwrap();
    let gzipped = std::process::Command::new("gzip")
        .args(["-c", "-n"])
        .arg(&plain)
        .output()
        .unwrap()
        .stdout;
    let owner_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGBfY5Y7Dp1Dn4a4y6iJbBvYxVKJWB3H0cQ2m9bq6Tq3 owner@panel";
    for (provider, instance) in [("ec2", "i-0123456789abcdef0"), ("hetzner", "4711")] {
        let cloud = if provider == "ec2" {
            Cloud::with_bytes(provider, &gzipped)
        } else {
            Cloud::new(provider, "ok", &user_data)
        };
        let networked = Scratch::new();
        let (out, _) = cloud.run(&networked, &[]);
        assert!(out.status.success(), "{provider}: {}", text(&out));

        let local = Scratch::new();
        let meta = serde_json::json!({"instance-id": instance, "public-keys": [owner_key]});
        let meta_file = local.user_data("meta-data.json", &meta.to_string());
        let ud = local.user_data("user-data", &user_data);
        let out = local.batten("run", &ud, &["--meta-data", &meta_file]);
        assert!(out.status.success(), "local seed: {}", text(&out));

        // The copy of the user-data batten keeps is the bytes it was given
        // (gzipped from EC2), so it is compared apart from the rest.
        let copy = std::path::PathBuf::from("var/lib/batten/user-data");
        let mut want = comparable(local.path());
        let mut got = comparable(networked.path());
        want.remove(&copy);
        got.remove(&copy);
        let diff = differences(&want, &got);
        assert!(diff.is_empty(), "{provider}: {}", diff.join("\n"));
        assert_eq!(state(&networked)["instance_id"], instance);
    }
}
