//! `batten verify`: check the result on the real daemons and the loaded
//! ruleset, not on the files batten wrote, and report it.
//!
//! Every check gives pass, warn, fail or skip with what was looked at and
//! why. With `--root` only the static checks run (sshd -t, nginx -t, nft
//! -c, files and modes) and the live ones say they were skipped. `--seal`
//! records the instance as done, and switches the first-boot unit off, only
//! when nothing failed.

pub mod sockets;

use serde::Serialize;

use crate::concerns::accounts::{self, Accounts};
use crate::concerns::ssh::sshd_config::SshdConfig;
use crate::host::daemon::{self, CheckError, Daemon};
use crate::host::distro::Distro;
use crate::host::exec::Runner;
use crate::host::root::{FileKind, Root};
use crate::input::model::{PasswordAuth, UserData};

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As it should be.
    Pass,
    /// Not a failure, but someone should look.
    Warn,
    /// Not as batten promised; verify exits 1.
    Fail,
    /// Not checked here (say why).
    Skip,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `sshd.password-authentication`.
    pub id: String,
    /// The outcome.
    pub status: Status,
    /// What was checked, in words.
    pub what: String,
    /// Why it has this outcome.
    pub why: String,
}

/// The whole report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Every check in order.
    pub checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, id: &str, status: Status, what: impl Into<String>, why: impl Into<String>) {
        self.checks.push(Check {
            id: id.to_string(),
            status,
            what: what.into(),
            why: why.into(),
        });
    }

    /// True when no check failed.
    pub fn ok(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// The table for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let mark = match c.status {
                Status::Pass => "pass",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            out.push_str(&format!("{mark}  {:<34} {}: {}\n", c.id, c.what, c.why));
        }
        let fails = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count();
        let warns = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Warn)
            .count();
        out.push_str(&format!(
            "{} checks: {} failed, {} warnings\n",
            self.checks.len(),
            fails,
            warns
        ));
        out
    }
}

/// What verify needs to know about the intent: the user-data of the last
/// run (batten keeps a root-only copy) and the root.
pub struct Inputs<'a> {
    /// The root being verified.
    pub root: &'a Root,
    /// Its distribution.
    pub distro: &'a Distro,
    /// The user-data the last run acted on (defaults when there is none).
    pub user_data: &'a UserData,
    /// What starts the checking programs.
    pub runner: &'a dyn Runner,
}

/// Run every check that applies.
pub fn verify(inp: &Inputs) -> Report {
    let mut r = Report::default();
    sshd(inp, &mut r);
    sudo(inp, &mut r);
    host_keys(inp, &mut r);
    authorized_keys(inp, &mut r);
    firewall(inp, &mut r);
    proxy(inp, &mut r);
    if inp.root.is_host() {
        sockets(inp, &mut r);
    } else {
        r.add(
            "sockets",
            Status::Skip,
            "listening sockets",
            "--root: the image's sockets do not exist yet",
        );
    }
    r
}

/// `sshd -t` or `nginx -t` on the root's configuration, as check `id`.
fn config_check(inp: &Inputs, r: &mut Report, id: &str, daemon: Daemon) {
    let what = format!("{} -t", daemon.program());
    match daemon::check(inp.runner, inp.root, daemon) {
        Ok(()) => r.add(
            id,
            Status::Pass,
            what,
            format!("{} accepts its configuration", daemon.program()),
        ),
        Err(CheckError::Missing(missing)) => r.add(
            id,
            Status::Skip,
            what,
            format!("{missing} is not installed here"),
        ),
        Err(e @ CheckError::Foreign { .. }) => r.add(
            id,
            Status::Warn,
            what,
            format!("{e}; the machine's first boot checks it live before the seal"),
        ),
        Err(e) => r.add(id, Status::Fail, what, e.to_string()),
    }
}

/// The sudo rules as sudo reads them (`visudo -c`: the main file and what
/// it includes), where batten wrote any: a rule sudo refuses locks every
/// rule out.
fn sudo(inp: &Inputs, r: &mut Report) {
    let users = accounts::resolve_users(inp.user_data, inp.root, inp.distro, &mut Vec::new());
    if !users
        .iter()
        .any(|u| u.sudo.as_ref().is_some_and(|s| !s.is_empty()))
    {
        return;
    }
    // This machine's visudo would read this machine's /etc/sudoers.
    if let crate::host::exec::Found::Host(_) = crate::host::exec::locate(inp.root, "visudo")
        && !inp.root.is_host()
    {
        r.add(
            "sudo.config",
            Status::Skip,
            "visudo -c",
            "the image has no visudo",
        );
        return;
    }
    let check = crate::host::exec::Check {
        program: "visudo",
        args: &["-c"],
        stdin: None,
        config_dir: None,
    };
    let (status, why) = match inp.runner.check(inp.root, &check) {
        Ok(_) => (Status::Pass, "sudo accepts its rules".to_string()),
        Err(e @ crate::host::exec::ExecError::Foreign { .. }) => (
            Status::Warn,
            format!("{e}; the machine's first boot checks it live before the seal"),
        ),
        Err(crate::host::exec::ExecError::Missing(p)) => {
            (Status::Skip, format!("{p} is not installed here"))
        }
        Err(e) => (Status::Fail, e.to_string()),
    };
    r.add("sudo.config", status, "visudo -c", why);
}

fn sshd(inp: &Inputs, r: &mut Report) {
    config_check(inp, r, "sshd.config", Daemon::Sshd);
    let ud = inp.user_data;
    let users = accounts::resolve_users(ud, inp.root, inp.distro, &mut Vec::new());
    let mut names: Vec<String> = users.iter().filter_map(|u| u.name.clone()).collect();
    names.push("root".into());
    for user in names {
        let eff = match daemon::sshd_effective_for(inp.runner, inp.root, &user) {
            Ok(e) => e,
            Err(CheckError::Missing(_)) => return,
            Err(e @ CheckError::Foreign { .. }) => {
                r.add(
                    &format!("sshd.effective.{user}"),
                    Status::Warn,
                    format!("sshd -T for {user}"),
                    format!("{e}; the machine's first boot checks it live before the seal"),
                );
                continue;
            }
            Err(e) => {
                r.add(
                    &format!("sshd.effective.{user}"),
                    Status::Fail,
                    format!("sshd -T for {user}"),
                    e.to_string(),
                );
                continue;
            }
        };
        let get = |k: &str| {
            eff.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let passwords_wanted_off =
            matches!(ud.ssh_pwauth, PasswordAuth::Default | PasswordAuth::Deny);
        for k in ["passwordauthentication", "kbdinteractiveauthentication"] {
            let v = get(k);
            let status = match (passwords_wanted_off, v.as_str()) {
                (true, "no") => Status::Pass,
                (true, _) => Status::Fail,
                (false, "yes") => Status::Warn,
                (false, _) => Status::Pass,
            };
            r.add(
                &format!("sshd.{k}.{user}"),
                status,
                format!("{k} for {user} (sshd -T)"),
                format!("`{v}`"),
            );
        }
        let pubkey = get("pubkeyauthentication");
        let status = if pubkey == "yes" {
            Status::Pass
        } else {
            Status::Fail
        };
        r.add(
            &format!("sshd.pubkey.{user}"),
            status,
            format!("key login for {user}"),
            format!("pubkeyauthentication `{pubkey}`"),
        );
        if user == "root" {
            let wanted = crate::concerns::ssh::root_login(ud);
            let got = get("permitrootlogin");
            let same =
                got == wanted || (wanted == "prohibit-password" && got == "without-password");
            r.add(
                "sshd.permit-root-login",
                if same { Status::Pass } else { Status::Fail },
                "PermitRootLogin (sshd -T)",
                format!("`{got}`, batten wants `{wanted}`"),
            );
        }
    }
}

fn host_keys(inp: &Inputs, r: &mut Report) {
    let root = inp.root;
    let names = root.list_dir("/etc/ssh").ok().flatten().unwrap_or_default();
    let private: Vec<String> = names
        .iter()
        .filter(|n| n.starts_with("ssh_host_") && n.ends_with("_key"))
        .cloned()
        .collect();
    if private.is_empty() {
        r.add(
            "hostkeys",
            Status::Fail,
            "SSH host keys",
            "there are none in /etc/ssh",
        );
        return;
    }
    for name in private {
        let path = format!("/etc/ssh/{name}");
        match root.metadata(&path) {
            Ok(Some(m)) if m.kind == FileKind::File && m.uid == 0 && m.mode & 0o037 == 0 => {
                let has_pub = names.contains(&format!("{name}.pub"));
                r.add(
                    &format!("hostkeys.{name}"),
                    if has_pub { Status::Pass } else { Status::Warn },
                    path,
                    format!(
                        "mode {:04o}, owner root{}",
                        m.mode,
                        if has_pub { "" } else { "; the .pub is missing" }
                    ),
                );
            }
            Ok(Some(m)) => r.add(
                &format!("hostkeys.{name}"),
                Status::Fail,
                path,
                format!(
                    "mode {:04o}, uid {}: must be root-owned and private",
                    m.mode, m.uid
                ),
            ),
            other => r.add(
                &format!("hostkeys.{name}"),
                Status::Fail,
                path,
                format!("cannot be read safely: {other:?}"),
            ),
        }
    }
    // Certificates from ssh_keys: in place as given (HostCertificate names
    // them; sshd -T in the sshd check reads the configuration).
    for key in &inp.user_data.ssh_keys {
        let Some(line) = &key.certificate else {
            continue;
        };
        let path = crate::concerns::ssh::host_keys::certificate_path(key.key_type);
        let (status, why) = match root.read_to_string(&path) {
            Ok(Some(text)) if text.trim_end() == line => {
                (Status::Pass, "the host certificate from ssh_keys".into())
            }
            Ok(Some(_)) => (
                Status::Fail,
                "not the certificate ssh_keys gives".to_string(),
            ),
            Ok(None) => (Status::Fail, "missing".to_string()),
            Err(e) => (Status::Fail, e.to_string()),
        };
        let name = path.trim_start_matches("/etc/ssh/").to_string();
        r.add(&format!("hostkeys.{name}"), status, path, why);
    }
}

fn authorized_keys(inp: &Inputs, r: &mut Report) {
    let Ok(accounts) = Accounts::load(inp.root) else {
        r.add(
            "keys",
            Status::Fail,
            "accounts",
            "/etc/passwd cannot be read",
        );
        return;
    };
    let Ok(config) = SshdConfig::load(inp.root) else {
        return;
    };
    let users = accounts::resolve_users(inp.user_data, inp.root, inp.distro, &mut Vec::new());
    for u in users {
        let Some(name) = u.name.clone() else { continue };
        let mut keys = u.ssh_authorized_keys.clone();
        if u.default {
            keys.extend(inp.user_data.ssh_authorized_keys.iter().cloned());
        }
        if keys.is_empty() {
            continue;
        }
        let Some(entry) = accounts.user(&name) else {
            r.add(
                &format!("keys.{name}"),
                Status::Fail,
                format!("account {name}"),
                "it does not exist",
            );
            continue;
        };
        let Ok(path) = crate::concerns::ssh::authorized_keys::keys_file(
            &config,
            &name,
            Some(entry.uid),
            &entry.home,
        ) else {
            r.add(
                &format!("keys.{name}"),
                Status::Fail,
                format!("keys of {name}"),
                "AuthorizedKeysFile names no file",
            );
            continue;
        };
        let text = match (inp.root.metadata(&path), inp.root.read_to_string(&path)) {
            (Ok(Some(m)), Ok(Some(t))) if m.uid == entry.uid && m.mode & 0o022 == 0 => t,
            (Ok(Some(m)), _) => {
                r.add(
                    &format!("keys.{name}"),
                    Status::Fail,
                    path,
                    format!(
                        "owner {} mode {:04o}: sshd's StrictModes would ignore it",
                        m.uid, m.mode
                    ),
                );
                continue;
            }
            _ => {
                r.add(
                    &format!("keys.{name}"),
                    Status::Fail,
                    path,
                    "missing or unreadable",
                );
                continue;
            }
        };
        let missing = keys.iter().filter(|k| !text.contains(&k.base64)).count();
        r.add(
            &format!("keys.{name}"),
            if missing == 0 {
                Status::Pass
            } else {
                Status::Fail
            },
            path,
            if missing == 0 {
                format!("{} key(s) in place", keys.len())
            } else {
                format!("{missing} key(s) from user-data missing")
            },
        );
    }
}

fn firewall(inp: &Inputs, r: &mut Report) {
    let fw = &inp.user_data.batten.firewall;
    if !fw.enabled {
        r.add(
            "firewall",
            Status::Warn,
            "firewall",
            "off in user-data: every listening port is reachable",
        );
        return;
    }
    let ports =
        crate::concerns::ssh::listening_ports(inp.root, inp.user_data).unwrap_or_else(|_| vec![22]);
    let upstream = crate::concerns::firewall::Ruleset::from_user_data(inp.user_data, ports.clone())
        .upstream_ports;
    if inp.root.is_host() {
        let kind = match crate::concerns::firewall::backend(inp.user_data, inp.root, inp.distro) {
            Ok((kind, _)) => kind,
            Err(e) => {
                r.add("firewall.loaded", Status::Fail, "the loaded ruleset", e);
                return;
            }
        };
        let backend = crate::concerns::firewall::of(kind);
        let accepts = backend.loaded_accepts(inp.runner, &ports);
        let drops = backend.loaded_drops(inp.runner, &upstream);
        let (status, why) = match accepts {
            Ok(true) => (
                Status::Pass,
                format!("drops by default, accepts SSH on {ports:?}"),
            ),
            Ok(false) => (
                Status::Fail,
                format!("does not drop by default or does not accept SSH on {ports:?}"),
            ),
            Err(e) => (Status::Fail, e),
        };
        r.add("firewall.loaded", status, "the loaded ruleset", why);
        if !upstream.is_empty() {
            let (status, why) = match drops {
                Ok(true) => (
                    Status::Pass,
                    format!("drops the proxy upstream port(s) {upstream:?} from outside"),
                ),
                Ok(false) => (
                    Status::Fail,
                    format!(
                        "does not drop the proxy upstream port(s) {upstream:?} before accepting them"
                    ),
                ),
                Err(e) => (Status::Fail, e),
            };
            r.add("firewall.upstream", status, "the loaded ruleset", why);
        }
    } else {
        r.add(
            "firewall.loaded",
            Status::Skip,
            "the loaded ruleset",
            "--root: nothing is loaded for an image",
        );
        let persist = match crate::concerns::firewall::backend(inp.user_data, inp.root, inp.distro)
        {
            Ok((_, persist)) => persist,
            Err(e) => {
                r.add("firewall.file", Status::Fail, "firewall file", e);
                return;
            }
        };
        // Every file the boot loads (iptables has one per family) must
        // drop by default and accept SSH.
        for (path, _) in &persist.files {
            let (status, detail) = match inp.root.read_to_string(path) {
                Ok(Some(text)) => {
                    // The input chain's policy, not the forward chain's.
                    let drops = text.contains("hook input priority filter; policy drop;")
                        || text.lines().any(|l| l.starts_with(":INPUT DROP"));
                    let ssh = ports.iter().all(|p| text.contains(&format!("dport {p} ")));
                    let upstream_dropped = upstream.iter().all(|p| {
                        text.lines().any(|l| {
                            l.contains(&format!("dport {p} "))
                                && (l.contains(&format!("dport {p} drop"))
                                    || l.ends_with("-j DROP"))
                        })
                    });
                    if drops && ssh && upstream_dropped {
                        (Status::Pass, "default deny, SSH accepted".to_string())
                    } else {
                        (
                            Status::Fail,
                            "not batten's default-deny ruleset with SSH and the proxy upstreams dropped".to_string(),
                        )
                    }
                }
                Ok(None) => (
                    Status::Fail,
                    format!("missing: {} loads no ruleset from it at boot", persist.unit),
                ),
                Err(e) => (Status::Fail, e.to_string()),
            };
            r.add("firewall.file", status, *path, detail);
        }
    }
}

/// One HTTP/1.0 request to the proxy on loopback; the status code.
fn http_status(port: u16, host: &str, auth: Option<&str>) -> Result<u16, String> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("cannot connect: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut request = format!("GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: batten-verify\r\n");
    if let Some(a) = auth {
        use base64::Engine;
        request.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(a)
        ));
    }
    request.push_str("\r\n");
    conn.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut head = vec![0u8; 64];
    let n = conn.read(&mut head).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&head[..n]);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))
}

/// The proxy refuses a request without credentials (401) and lets one with
/// a generated password through (502 only means the panel is down).
fn proxy_request(inp: &Inputs, site: &crate::input::model::ProxySite, name: &str, r: &mut Report) {
    let id = format!("proxy.{name}.http");
    if site.tls.is_some() {
        r.add(
            &id,
            Status::Skip,
            format!("a request to port {}", site.listen),
            "TLS sites are checked by nginx -t only in this build",
        );
        return;
    }
    let host = site
        .server_names
        .first()
        .filter(|n| *n != "_" && !n.starts_with('*'))
        .cloned()
        .unwrap_or_else(|| "localhost".into());
    match http_status(site.listen, &host, None) {
        Ok(401) => r.add(
            &id,
            Status::Pass,
            format!("a request to port {} without a password", site.listen),
            "401",
        ),
        Ok(code) => r.add(
            &id,
            Status::Fail,
            format!("a request to port {} without a password", site.listen),
            format!("{code}, not 401: the panel is open"),
        ),
        Err(e) => r.add(
            &id,
            Status::Fail,
            format!("a request to port {}", site.listen),
            e,
        ),
    }
    let credentials = inp
        .root
        .read_to_string(crate::concerns::proxy::htpasswd::CREDENTIALS)
        .ok()
        .flatten()
        .map(|t| crate::concerns::proxy::htpasswd::parse_credentials(&t))
        .unwrap_or_default();
    let Some(c) = credentials.iter().find(|c| c.site == name) else {
        return;
    };
    let id = format!("proxy.{name}.login");
    let what = format!("a request to port {} as {}", site.listen, c.user);
    match http_status(
        site.listen,
        &host,
        Some(&format!("{}:{}", c.user, c.password)),
    ) {
        Ok(401) => r.add(
            &id,
            Status::Fail,
            what,
            "401: the generated password does not work",
        ),
        Ok(502 | 504) => r.add(
            &id,
            Status::Warn,
            what,
            "the password works, but the panel behind it does not answer",
        ),
        Ok(code) => r.add(&id, Status::Pass, what, format!("{code}")),
        Err(e) => r.add(&id, Status::Fail, what, e),
    }
}

/// Every listening socket, and what the firewall makes of it.
fn sockets(inp: &Inputs, r: &mut Report) {
    use crate::verify::sockets::Reach;
    let listeners = match crate::verify::sockets::listeners() {
        Ok(l) => l,
        Err(e) => {
            r.add("sockets", Status::Fail, "listening sockets", e);
            return;
        }
    };
    let ssh_ports =
        crate::concerns::ssh::listening_ports(inp.root, inp.user_data).unwrap_or_else(|_| vec![22]);
    let rules = crate::concerns::firewall::Ruleset::from_user_data(inp.user_data, ssh_ports);
    let firewall_on = inp.user_data.batten.firewall.enabled;
    for l in listeners {
        let who = l
            .process
            .as_ref()
            .map(|(pid, name)| format!("{name} (pid {pid})"))
            .unwrap_or_else(|| "unknown process".into());
        let id = format!("sockets.{}.{}", l.protocol, l.local);
        let what = format!("{} {} {}", l.protocol, l.local, who);
        let reach = crate::verify::sockets::reach(&l, &rules);
        let upstream = l.protocol == "tcp" && rules.upstream_ports.contains(&l.local.port());
        let (status, why) = match reach {
            Reach::LoopbackOnly => (Status::Pass, "loopback only".to_string()),
            _ if !firewall_on => (Status::Warn, "public, and the firewall is off".to_string()),
            Reach::Allowed => (Status::Pass, "public, allowed by the firewall".to_string()),
            Reach::AllowedFromSome => (Status::Pass, "public, allowed from listed sources only".to_string()),
            Reach::Dropped if upstream => (
                Status::Warn,
                "a proxy upstream listening publicly; the firewall drops it, but bind it to 127.0.0.1".to_string(),
            ),
            Reach::Dropped => (Status::Warn, "listens publicly, but the firewall drops it".to_string()),
        };
        r.add(&id, status, what, why);
    }
}

fn proxy(inp: &Inputs, r: &mut Report) {
    if inp.user_data.batten.proxy.is_empty() {
        return;
    }
    config_check(inp, r, "proxy.config", Daemon::Nginx);
    for site in &inp.user_data.batten.proxy {
        let name = crate::input::model::site_name(site);
        let text = inp
            .root
            .read_following_within(&format!("/etc/nginx/sites-enabled/{name}"))
            .ok()
            .flatten()
            .or_else(|| {
                inp.root
                    .read_following_within(&format!("/etc/nginx/conf.d/{name}.conf"))
                    .ok()
                    .flatten()
            })
            .or_else(|| {
                inp.root
                    .read_following_within(&format!("/etc/nginx/http.d/{name}.conf"))
                    .ok()
                    .flatten()
            })
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        match text {
            Some(t) if t.contains("auth_basic \"") && t.contains("auth_basic_user_file") => r.add(
                &format!("proxy.{name}"),
                Status::Pass,
                format!("site {name}"),
                "enabled, behind basic auth",
            ),
            Some(_) => r.add(
                &format!("proxy.{name}"),
                Status::Fail,
                format!("site {name}"),
                "enabled without basic auth",
            ),
            None => r.add(
                &format!("proxy.{name}"),
                Status::Fail,
                format!("site {name}"),
                "not enabled",
            ),
        }
        if inp.root.is_host() {
            proxy_request(inp, site, &name, r);
        }
    }
}
