//! Two network namespaces joined by a veth pair, on test addresses only
//! (198.51.100.0/24 and 2001:db8::/64), removed again when dropped, even
//! when the test fails.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server side's addresses.
pub const SERVER_V4: &str = "198.51.100.1";
/// The client side's addresses.
pub const CLIENT_V4: &str = "198.51.100.2";
/// The server's IPv6 address.
pub const SERVER_V6: &str = "2001:db8:42::1";
/// The client's IPv6 address.
pub const CLIENT_V6: &str = "2001:db8:42::2";

/// A server and a client namespace with a link between them.
pub struct Pair {
    /// Name of the server namespace.
    pub server: String,
    /// Name of the client namespace.
    pub client: String,
    /// The veth ends: (server's, client's).
    devices: (String, String),
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pair {
    /// Create both namespaces, the veth pair (one end in each), addresses
    /// and loopback.
    pub fn new(tag: &str) -> Pair {
        // Tests run in parallel threads of one process: a counter keeps
        // their namespaces apart.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{n}-{tag}", std::process::id());
        // The veth names live inside the namespaces, so they cannot clash.
        let (vs, vc) = ("bt-server".to_string(), "bt-client".to_string());
        let pair = Pair {
            server: format!("bt-{id}-s"),
            client: format!("bt-{id}-c"),
            devices: (vs.clone(), vc.clone()),
        };
        ip(&["netns", "add", &pair.server]);
        ip(&["netns", "add", &pair.client]);
        ip(&[
            "-n",
            &pair.server,
            "link",
            "add",
            &vs,
            "type",
            "veth",
            "peer",
            "name",
            &vc,
            "netns",
            &pair.client,
        ]);
        for (ns, dev, v4, v6) in [
            (&pair.server, &vs, SERVER_V4, SERVER_V6),
            (&pair.client, &vc, CLIENT_V4, CLIENT_V6),
        ] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                dev,
                "nodad",
            ]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        pair
    }

    /// Give the server (or the client) another address on the link, e.g.
    /// a second source for allow-list tests. `cidr` like "203.0.113.10/24".
    pub fn add_address(&self, on_server: bool, cidr: &str) {
        let (ns, dev) = if on_server {
            (&self.server, &self.devices.0)
        } else {
            (&self.client, &self.devices.1)
        };
        let mut args = vec!["-n", ns.as_str(), "addr", "add", cidr, "dev", dev.as_str()];
        if cidr.contains(':') {
            args.push("nodad");
        }
        ip(&args);
    }

    /// A command run inside the client namespace, bounded by `timeout`.
    pub fn in_client(&self, seconds: u32, program: &str) -> Command {
        in_namespace(&self.client, seconds, program)
    }

    /// A `sh` script run in the server namespace inside a private mount
    /// namespace, so the mounts it makes (a scratch root's files over the
    /// machine's) are seen by nothing else and vanish with it. The script
    /// takes its paths as arguments (`$1`...), never spliced into its text.
    pub fn in_server_mounts(&self, seconds: u32, script: &str) -> Command {
        let mut c = self.in_server(seconds, "unshare");
        c.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "batten-test",
        ]);
        c
    }

    /// A command run inside the server namespace, bounded by `timeout`.
    pub fn in_server(&self, seconds: u32, program: &str) -> Command {
        in_namespace(&self.server, seconds, program)
    }
}

/// `program` run inside the namespace `ns`, stopped after `seconds`.
fn in_namespace(ns: &str, seconds: u32, program: &str) -> Command {
    let mut c = Command::new("timeout");
    c.args([&seconds.to_string(), "ip", "netns", "exec", ns, program]);
    c
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A background process stopped when dropped. It runs under `timeout`,
/// which passes SIGTERM on to the program but cannot pass SIGKILL, so
/// SIGTERM comes first and SIGKILL only if it has not ended in 5 seconds.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait until `port` accepts TCP connections from the client namespace.
pub fn wait_for_port(pair: &Pair, host: &str, port: u16, within: Duration) {
    let start = Instant::now();
    while start.elapsed() < within {
        let ok = pair
            .in_client(3, "bash")
            .args(["-c", &format!("exec 3<>/dev/tcp/{host}/{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("nothing listens on {host}:{port} after {within:?}");
}
