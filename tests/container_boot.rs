//! The first boot at native speed: the Debian 12 image `images/debian-vm.sh`
//! builds, baked with batten (`scripts/vm-bake.sh`) and a NoCloud seed
//! directory, booted as a container (`systemd-nspawn --boot`). Its network
//! namespace is joined by a veth pair to a client namespace (test addresses
//! only); both are removed, and every process in them killed, even when
//! the test fails.
//!
//! What it proves is the boot's order, read from systemd's own timestamps
//! rather than timed: sshd is up long before the network is online (on this
//! link networkd waits ~13 s for a router that never answers, the condition
//! that once held sshd back through batten-metadata.service's ordering),
//! the work batten leaves until sshd is up is done by the verify stage
//! after sshd started, and the key logs in while passwords are never
//! offered.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{have, privileged, text};

const GUEST_V4: &str = "198.51.100.2";
const CLIENT_V4: &str = "198.51.100.1";

/// The container's and the client's namespaces, and the container itself:
/// everything of it runs in the guest namespace, so killing what is there
/// stops it.
struct Container {
    guest: String,
    client: String,
    nspawn: Option<Child>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        text(&out)
    );
}

impl Container {
    /// Namespaces and link; the guest end stays down until the
    /// container's networkd configures it.
    fn network() -> Container {
        let id = std::process::id();
        let c = Container {
            guest: format!("bt-ct-{id}-g"),
            client: format!("bt-ct-{id}-c"),
            nspawn: None,
        };
        ip(&["netns", "add", &c.guest]);
        ip(&["netns", "add", &c.client]);
        ip(&[
            "link", "add", "bt0", "netns", &c.guest, "type", "veth", "peer", "name", "bt1",
            "netns", &c.client,
        ]);
        ip(&[
            "-n",
            &c.client,
            "addr",
            "add",
            &format!("{CLIENT_V4}/24"),
            "dev",
            "bt1",
        ]);
        ip(&["-n", &c.client, "link", "set", "lo", "up"]);
        ip(&["-n", &c.client, "link", "set", "bt1", "up"]);
        c
    }

    /// Boot `root` (writes go to a tmpfs over it), the console into `log`;
    /// stopped after 15 minutes at most, longer than every wait below.
    fn boot(&mut self, root: &Path, log: &Path) {
        let console = std::fs::File::create(log).unwrap();
        let child = Command::new("timeout")
            .args([
                "900",
                "systemd-nspawn",
                "--quiet",
                "--boot",
                "--register=no",
                "--keep-unit",
            ])
            .args(["--capability=CAP_NET_ADMIN", "--volatile=overlay"])
            .arg(format!(
                "--network-namespace-path=/run/netns/{}",
                self.guest
            ))
            .arg("--machine=batten-test")
            .arg("-D")
            .arg(root)
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console)
            .spawn()
            .unwrap();
        self.nspawn = Some(child);
    }

    /// A command in the client namespace, bounded.
    fn client(&self, seconds: u32, program: &str) -> Command {
        let mut c = Command::new("timeout");
        c.args([
            &seconds.to_string(),
            "ip",
            "netns",
            "exec",
            &self.client,
            program,
        ]);
        c
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.guest])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        if let Some(mut child) = self.nspawn.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.guest, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The image baked with batten, copied into `dir/root` as a directory.
fn baked_root(work: &Path) -> PathBuf {
    let raw = work.join("baked.raw");
    common::bake_image(&raw, &[]);
    let (root, mnt) = (work.join("root"), work.join("mnt"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-euc"])
        .arg(r#"mount -o loop,ro "$1" "$2"; cp -a "$2/." "$3/""#)
        .arg("batten-test")
        .args([&raw, &mnt, &root])
        .output()
        .unwrap();
    assert!(out.status.success(), "copying the image: {}", text(&out));
    std::fs::remove_file(&raw).unwrap();
    root
}

/// The test's key, the seed, and a static address for the guest's link
/// (IPv6 router advertisements accepted, as networkd does by default: none
/// comes, so network-online.target is ~13 s away).
fn seed(work: &Path, root: &Path) {
    let key = work.join("key");
    let made = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "container-test",
            "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let public = std::fs::read_to_string(work.join("key.pub")).unwrap();
    let seed = root.join("var/lib/cloud/seed/nocloud");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(
        seed.join("user-data"),
        format!(
            "#cloud-config\nusers:\n  - name: admin\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    shell: /bin/bash\n    ssh_authorized_keys: [\"{}\"]\nssh_pwauth: false\nssh_genkeytypes: [ed25519]\n",
            public.trim()
        ),
    )
    .unwrap();
    std::fs::write(seed.join("meta-data"), "instance-id: iid-container-test\n").unwrap();
    std::fs::write(
        root.join("etc/systemd/network/05-test.network"),
        format!("[Match]\nName=bt0\n\n[Network]\nAddress={GUEST_V4}/24\n"),
    )
    .unwrap();
}

fn ssh_options(work: &Path) -> Vec<String> {
    [
        "-i",
        &work.join("key").to_string_lossy(),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=3",
        "-o",
        "LogLevel=ERROR",
    ]
    .map(String::from)
    .to_vec()
}

/// Run `script` as root inside the container, over SSH as admin.
fn inside(c: &Container, work: &Path, script: &str) -> Output {
    c.client(60, "ssh")
        .args(ssh_options(work))
        .arg(format!("admin@{GUEST_V4}"))
        .arg(format!("sudo sh -c '{script}'"))
        .output()
        .unwrap()
}

/// A systemd timestamp (microseconds, monotonic) inside the container;
/// 0 when it has not happened.
fn stamp(c: &Container, work: &Path, unit: &str, property: &str) -> u64 {
    let out = inside(
        c,
        work,
        &format!("systemctl show {unit} -p {property} --value"),
    );
    assert!(
        out.status.success(),
        "systemctl show {unit}: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn sshd_does_not_wait_for_the_network_and_what_can_wait_runs_after_it() {
    let test = "sshd_does_not_wait_for_the_network_and_what_can_wait_runs_after_it";
    if !privileged(test)
        || !["systemd-nspawn", "ssh", "ssh-keygen", "ip"]
            .iter()
            .all(|p| have(p, test))
    {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let root = baked_root(work);
    seed(work, &root);
    let mut c = Container::network();
    let console = work.join("console.log");
    c.boot(&root, &console);
    let console_text = || std::fs::read_to_string(&console).unwrap_or_default();

    // The first answer already refuses passwords; the key logs in.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut first = None;
    while first.is_none() && Instant::now() < deadline {
        let out = c
            .client(10, "ssh")
            .args(ssh_options(work))
            .args([
                "-o",
                "PreferredAuthentications=none",
                &format!("probe@{GUEST_V4}"),
                "true",
            ])
            .output()
            .unwrap();
        let said = text(&out);
        if said.contains("Permission denied") {
            first = Some(said);
        } else {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let first = first.unwrap_or_else(|| {
        panic!(
            "sshd never answered within 90 s; console:\n{}",
            console_text()
        )
    });
    assert!(
        !first.contains("password") && !first.contains("keyboard-interactive"),
        "sshd offered passwords at its first answer: {first}"
    );
    let login = inside(&c, work, "true");
    assert!(login.status.success(), "key login: {}", text(&login));

    // sshd came up before the network was online: nothing of batten's
    // holds it for the network when the user-data is local.
    let sshd = stamp(&c, work, "ssh.service", "ActiveEnterTimestampMonotonic");
    let online = stamp(
        &c,
        work,
        "network-online.target",
        "ActiveEnterTimestampMonotonic",
    );
    assert!(sshd > 0, "ssh.service is not active");
    assert!(
        online == 0 || sshd < online,
        "sshd became active at {sshd} µs, after network-online.target at {online} µs"
    );
    let metadata = stamp(
        &c,
        work,
        "batten-metadata.service",
        "InactiveExitTimestampMonotonic",
    );
    assert_eq!(
        metadata, 0,
        "batten-metadata.service ran although the user-data was local"
    );

    // The verify stage (after the network is online) does what the first
    // stage left: batten-updates.service started, after sshd.
    let deadline = Instant::now() + Duration::from_secs(120);
    let verified = loop {
        let out = inside(&c, work, "systemctl is-active batten-verify.service");
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if state == "active" || state == "failed" || Instant::now() > deadline {
            break state;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let journal = inside(
        &c,
        work,
        "journalctl -b -o cat -u batten.service -u batten-verify.service",
    );
    let journal = text(&journal);
    assert_eq!(
        verified, "active",
        "batten-verify.service: {verified}\n{journal}"
    );
    assert!(
        journal.contains(
            "left until sshd is up (batten-verify.service): systemctl start batten-updates.service"
        ),
        "{journal}"
    );
    let pending = inside(&c, work, "test -e /run/batten/after-sshd.json");
    assert!(
        !pending.status.success(),
        "the verify stage left the pending work undone"
    );
    let updates = stamp(
        &c,
        work,
        "batten-updates.service",
        "InactiveExitTimestampMonotonic",
    );
    assert!(
        updates > sshd,
        "batten-updates.service started at {updates} µs, sshd at {sshd} µs"
    );
    // multi-user.target (and cloud-final, batten-verify after it) does not
    // wait for the units batten writes for work after the network (the
    // same `NOT_WAITED_FOR` lines head batten-acme.service).
    let after = inside(
        &c,
        work,
        "systemctl show multi-user.target -p After --value",
    );
    let after = String::from_utf8_lossy(&after.stdout).to_string();
    assert!(
        after.contains("basic.target") && !after.contains("batten-updates.service"),
        "multi-user.target waits for batten-updates.service: After={after}"
    );
    // The ruleset is loaded once before sshd: nftables.service (enabled for
    // later boots) did not run on the way to it.
    let nft = stamp(
        &c,
        work,
        "nftables.service",
        "ExecMainStartTimestampMonotonic",
    );
    assert!(
        nft == 0 || nft > sshd,
        "nftables.service loaded the ruleset again before sshd ({nft} µs, sshd at {sshd} µs)"
    );
    // In a container the kernel is the host's: a warning, and the seal.
    let status = inside(&c, work, "batten status");
    assert!(
        text(&status).contains("sealed (batten will not run again"),
        "{}\n{journal}",
        text(&status)
    );
}
