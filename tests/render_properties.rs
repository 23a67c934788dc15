//! Property tests with the real parsers: random valid user-data renders
//! sshd, nftables and nginx text that `sshd -T`, `nft` and `nginx` accept,
//! and random strings in each field that reaches one of them are either
//! refused by validation or rendered so that the real program reads back
//! what batten's model says (ports, sources, realm, key fingerprint).
//!
//! The programs run inside private network namespaces (`unshare -n`): a
//! ruleset is loaded and nginx listens only there. Case counts are bounded;
//! `PROPTEST_CASES` raises them for a longer hunt.

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use batten::concerns::firewall::{Ruleset, nftables};
use batten::concerns::proxy::nginx;
use batten::input::grammar::{PortRange, Source};
use batten::input::model::{Protocol, ProxySite, UserData};
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const PASSWORD_HASH: &str = "$6$5pQ2vA9x$/XoPKDDNAg7A8B5m.Qk.ruEzNDEuC04e0/g3FqDH9JDhnX8eAbEVYmyDaqCOLOeAkd6xeEbn1I5iBcYRXmxOj.";

/// The programs and a scratch directory the properties share.
struct Tools {
    dir: tempfile::TempDir,
    key_line: String,
    key_fingerprint: String,
}

impl Tools {
    fn new(test: &str) -> Option<Tools> {
        if !privileged(test)
            || [
                "nft",
                "nginx",
                "sshd",
                "ssh-keygen",
                "unshare",
                "ip",
                "curl",
            ]
            .iter()
            .any(|p| !have(p, test))
        {
            return None;
        }
        // sshd -T wants its privilege separation directory, as Debian's
        // ssh.service makes it at start.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "host", "-f"])
            .arg(dir.path().join("host_key"))
            .status()
            .unwrap();
        assert!(made.success());
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "owner", "-f"])
            .arg(dir.path().join("owner"))
            .status()
            .unwrap();
        assert!(made.success());
        let key_line = std::fs::read_to_string(dir.path().join("owner.pub"))
            .unwrap()
            .trim()
            .to_string();
        let key_fingerprint = fingerprints(&dir.path().join("owner.pub"))[0].clone();
        Some(Tools {
            dir,
            key_line,
            key_fingerprint,
        })
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// `ssh-keygen -l`'s SHA256 fingerprints of the keys in an authorized_keys
/// file: sshd's own parser of that format.
fn fingerprints(file: &Path) -> Vec<String> {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

/// Run `script` under `sh` in a fresh network namespace (loopback up),
/// bounded to 20 s.
fn in_netns(script: &str) -> (bool, String) {
    let out = Command::new("timeout")
        .args(["20", "unshare", "-n", "sh", "-c"])
        .arg(format!("ip link set lo up; {script}"))
        .output()
        .unwrap();
    (out.status.success(), text(&out))
}

/// A user-data document from its parts; each argument is a YAML value as
/// written (already quoted where it needs to be).
#[derive(Clone, Debug)]
struct Doc {
    key: String,
    ssh_port: String,
    root_login: String,
    allow: Vec<(String, String, String)>,
    listen: String,
    server_name: String,
    upstream: String,
    realm: String,
    proxy_user: String,
    allow_from: String,
}

impl Doc {
    fn base(key: &str) -> Doc {
        Doc {
            key: quoted(key),
            ssh_port: "22".into(),
            root_login: "\"no\"".into(),
            allow: vec![("443".into(), "tcp".into(), "[]".into())],
            listen: "8081".into(),
            server_name: "panel.example.org".into(),
            upstream: "\"127.0.0.1:8080\"".into(),
            realm: "\"Admin panel\"".into(),
            proxy_user: "admin".into(),
            allow_from: "[]".into(),
        }
    }

    fn yaml(&self) -> String {
        let mut s = format!(
            "#cloud-config\nusers:\n  - name: admin\n    ssh_authorized_keys: [{}]\nssh_pwauth: false\nbatten:\n  ssh:\n    port: {}\n    permit_root_login: {}\n  firewall:\n    allow:{}\n",
            self.key,
            self.ssh_port,
            self.root_login,
            if self.allow.is_empty() { " []" } else { "" }
        );
        // No sources is written as no `from` at all: an empty list is
        // refused, never read as "everyone".
        for (port, proto, from) in &self.allow {
            let from = if from == "[]" {
                String::new()
            } else {
                format!(", from: {from}")
            };
            let _ = writeln!(s, "      - {{port: {port}, proto: {proto}{from}}}");
        }
        let allow_from = if self.allow_from == "[]" {
            String::new()
        } else {
            format!("      allow_from: {}\n", self.allow_from)
        };
        let _ = write!(
            s,
            "  proxy:\n    - listen: {}\n      server_name: {}\n      upstream: {}\n{allow_from}      auth:\n        realm: {}\n        users: [{{name: {}, password_hash: \"{PASSWORD_HASH}\"}}]\n",
            self.listen, self.server_name, self.upstream, self.realm, self.proxy_user
        );
        s
    }
}

/// A YAML double-quoted scalar holding exactly `s` (JSON's escapes are
/// YAML's too).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn load(yaml: &str) -> Option<UserData> {
    batten::input::load("property.yaml", yaml.as_bytes())
        .ok()
        .map(|l| l.user_data)
}

// ---- what the real programs read back ---------------------------------

/// sshd's effective settings for batten's drop-in, from `sshd -T`.
fn sshd_reads(tools: &Tools, ud: &UserData) -> Result<Vec<String>, String> {
    let mut config = format!(
        "HostKey {}\nPidFile none\n",
        tools.dir.path().join("host_key").display()
    );
    for s in batten::concerns::ssh::settings(ud, false) {
        let _ = writeln!(config, "{} {}", s.keyword, s.value);
    }
    let file = tools.file("sshd_config", &config);
    let out = Command::new("sshd")
        .arg("-T")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(format!("sshd -T refused:\n{config}\n{}", text(&out)));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// Check that sshd reads the ports, root login and password settings the
/// model holds.
fn sshd_agrees(tools: &Tools, ud: &UserData) -> Result<(), TestCaseError> {
    let effective = sshd_reads(tools, ud).map_err(TestCaseError::fail)?;
    let want_ports: BTreeSet<String> = if ud.batten.ssh.ports.is_empty() {
        ["22".to_string()].into()
    } else {
        ud.batten.ssh.ports.iter().map(u16::to_string).collect()
    };
    let got_ports: BTreeSet<String> = effective
        .iter()
        .filter_map(|l| l.strip_prefix("port "))
        .map(str::to_string)
        .collect();
    prop_assert_eq!(got_ports, want_ports);
    // sshd -T still prints prohibit-password under its old name.
    let root = format!(
        "permitrootlogin {}",
        match batten::concerns::ssh::root_login(ud) {
            "prohibit-password" => "without-password",
            other => other,
        }
    );
    prop_assert!(effective.contains(&root), "{root} not in sshd -T");
    prop_assert!(effective.contains(&"passwordauthentication no".to_string()));
    prop_assert!(effective.contains(&"kbdinteractiveauthentication no".to_string()));
    Ok(())
}

/// (protocol, first, last) for every accept with a port in an nft listing.
fn nft_accepted_ports(listing: &str) -> BTreeSet<(String, u16, u16)> {
    let mut out = BTreeSet::new();
    let rules = listing
        .lines()
        .map(|l| l.split(" comment \"").next().unwrap().trim_end())
        .filter(|l| l.ends_with(" accept"));
    for line in rules {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        let Some(at) = words.iter().position(|w| *w == "dport") else {
            continue;
        };
        let proto = words[at - 1].to_string();
        let mut values = Vec::new();
        if words[at + 1] == "{" {
            values.extend(words[at + 2..].iter().take_while(|w| **w != "}"));
        } else {
            values.push(words[at + 1]);
        }
        for v in values {
            let (a, b) = v.split_once('-').unwrap_or((v, v));
            out.insert((proto.clone(), a.parse().unwrap(), b.parse().unwrap()));
        }
    }
    out
}

/// Load the ruleset in a private namespace and check nft lists exactly the
/// ports the model accepts.
fn nft_agrees(tools: &Tools, ud: &UserData) -> Result<(), TestCaseError> {
    let ssh_ports = if ud.batten.ssh.ports.is_empty() {
        vec![22]
    } else {
        ud.batten.ssh.ports.clone()
    };
    let rules = Ruleset::from_user_data(ud, ssh_ports.clone());
    let text = nftables::render(&rules);
    let file = tools.file("rules.nft", &text);
    let (ok, listing) = in_netns(&format!(
        "nft -c -f {0} && nft -f {0} && nft list ruleset",
        file.display()
    ));
    prop_assert!(ok, "nft refused:\n{text}\n{listing}");
    let mut want = BTreeSet::new();
    for p in &ssh_ports {
        want.insert(("tcp".to_string(), *p, *p));
    }
    for (port, _) in &rules.proxy_ports {
        want.insert(("tcp".to_string(), *port, *port));
    }
    for rule in &rules.allow {
        if let Some(PortRange { first, last }) = rule.ports {
            let proto = match rule.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            };
            want.insert((proto.to_string(), first, last));
        }
    }
    let got = nft_accepted_ports(&listing);
    prop_assert_eq!(
        got,
        want,
        "nft lists other ports than batten's model:\n{}",
        listing
    );
    Ok(())
}

/// Whether 127.0.0.1 may reach the site, by the model.
fn loopback_allowed(site: &ProxySite) -> bool {
    site.allow_from.is_empty()
        || site
            .allow_from
            .iter()
            .flat_map(Source::networks)
            .any(|n| n.contains(&std::net::IpAddr::V4(Ipv4Addr::LOCALHOST)))
}

/// Start nginx with the site in a private namespace and ask it over
/// loopback: 401 with the model's realm, or 403 when `allow_from` leaves
/// loopback out.
fn nginx_agrees(tools: &Tools, site: &ProxySite) -> Result<(), TestCaseError> {
    let prefix = tools.dir.path().join("nginx");
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let htpasswd = tools.file("site.htpasswd", &format!("admin:{PASSWORD_HASH}\n"));
    // The site serves HTTPS (tls: auto) with a certificate made as batten
    // makes it; curl is told to accept it (-k), since the names are random.
    let made = batten::concerns::proxy::certificate::self_signed(&["localhost".to_string()])
        .expect("a certificate");
    let tls = site.tls.is_on().then(|| nginx::TlsFiles {
        certificate: tools
            .file("site.crt", &made.certificate_pem)
            .display()
            .to_string(),
        key: tools.file("site.key", &made.key_pem).display().to_string(),
        acme_webroot: None,
    });
    let site_text = nginx::render(site, &htpasswd.display().to_string(), tls.as_ref());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let site_file = tools.file("site.conf", &site_text);
    let conf = tools.file(
        "nginx.conf",
        &format!(
            "pid {0}/nginx.pid;\nerror_log {0}/logs/error.log;\nevents {{}}\nhttp {{\n    access_log off;\n{1}\n    include {2};\n}}\n",
            prefix.display(),
            nginx::UPGRADE_MAP,
            site_file.display()
        ),
    );
    let nginx = format!("nginx -q -p {} -c {}", prefix.display(), conf.display());
    // nginx in the foreground, a child of this script: it ends with the
    // script (or its timeout), never left behind in the namespace.
    let (ok, said) = in_netns(&format!(
        "{nginx} -t || exit 1; {nginx} -g 'daemon off;' & pid=$!; \
         for i in $(seq 50); do \
         curl -s -k -o /dev/null -D - --max-time 5 {scheme}://127.0.0.1:{}/ && break; sleep 0.1; \
         done; kill $pid; wait $pid; true",
        site.serving_port()
    ));
    prop_assert!(ok, "nginx refused:\n{site_text}\n{said}");
    if loopback_allowed(site) {
        prop_assert!(said.contains(" 401 "), "no 401:\n{site_text}\n{said}");
        let realm = format!("WWW-Authenticate: Basic realm=\"{}\"", site.realm);
        prop_assert!(said.contains(&realm), "want {realm}:\n{said}");
    } else {
        prop_assert!(said.contains(" 403 "), "no 403:\n{site_text}\n{said}");
    }
    Ok(())
}

/// The owner's authorized_keys line as batten writes it, read by
/// ssh-keygen: one key, the fingerprint batten computed.
fn keys_agree(tools: &Tools, ud: &UserData) -> Result<(), TestCaseError> {
    let keys = &ud.users[0].ssh_authorized_keys;
    prop_assert_eq!(keys.len(), 1);
    let line = keys[0].line();
    prop_assert!(!line.contains(['\n', '\r', '\0']), "{:?}", line);
    let file = tools.file("authorized_keys", &format!("{line}\n"));
    let read = fingerprints(&file);
    prop_assert_eq!(read, vec![keys[0].fingerprint.clone()], "line {:?}", line);
    prop_assert_eq!(&keys[0].fingerprint, &tools.key_fingerprint);
    Ok(())
}

/// Every check the document reaches.
fn all_agree(tools: &Tools, ud: &UserData) -> Result<(), TestCaseError> {
    sshd_agrees(tools, ud)?;
    nft_agrees(tools, ud)?;
    for site in &ud.batten.proxy {
        nginx_agrees(tools, site)?;
    }
    keys_agree(tools, ud)
}

// ---- strategies ----------------------------------------------------------

fn v4_source() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u8..=255).prop_map(|h| format!("203.0.113.{h}")),
        (8u8..=32, any::<u32>()).prop_map(|(len, bits)| {
            let net = ipnet::Ipv4Net::new(Ipv4Addr::from(bits), len)
                .unwrap()
                .trunc();
            net.to_string()
        }),
        (0u8..=255, 0u8..=255).prop_map(|(a, b)| {
            let (a, b) = (a.min(b), a.max(b));
            format!("198.51.100.{a}-198.51.100.{b}")
        }),
        Just("127.0.0.1".to_string()),
    ]
}

fn v6_source() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u16>().prop_map(|h| format!("2001:db8::{h:x}")),
        (32u8..=128, any::<u16>()).prop_map(|(len, h)| {
            let addr: std::net::Ipv6Addr = format!("2001:db8:{h:x}::1").parse().unwrap();
            ipnet::Ipv6Net::new(addr, len).unwrap().trunc().to_string()
        }),
    ]
}

fn sources() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof![v4_source(), v6_source()], 0..4).prop_map(|v| {
        format!(
            "[{}]",
            v.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(", ")
        )
    })
}

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?"
}

/// Valid documents: ports, ranges, sources of both families, site names,
/// realms from the realm grammar, with the ports kept apart as batten
/// requires (sshd, the proxy and its upstream each their own).
fn valid_doc(key: String) -> impl Strategy<Value = Doc> {
    let allow = proptest::collection::vec(
        (
            // Below the upstream ports (50001 and up): opening an
            // upstream to the world is refused, rightly.
            prop_oneof![
                (1u16..=50000).prop_map(|p| p.to_string()),
                (1u16..=48000, 0u16..2000).prop_map(|(a, n)| format!("\"{a}-{}\"", a + n)),
            ],
            prop_oneof![Just("tcp".to_string()), Just("udp".to_string())],
            sources(),
        ),
        0..5,
    );
    (
        prop_oneof![Just(22u16), 1024u16..=40000],
        40001u16..=50000,
        50001u16..=65535,
        allow,
        proptest::collection::vec(label(), 1..4),
        "[A-Za-z0-9][A-Za-z0-9 ._:()@,-]{0,30}",
        sources(),
        prop_oneof![
            Just("no"),
            Just("prohibit-password"),
            Just("forced-commands-only")
        ],
    )
        .prop_filter("a realm of off", |t| {
            !t.5.trim().eq_ignore_ascii_case("off")
        })
        .prop_map(
            move |(ssh, listen, upstream, allow, name, realm, from, root)| Doc {
                key: quoted(&key),
                ssh_port: ssh.to_string(),
                root_login: quoted(root),
                allow,
                listen: listen.to_string(),
                server_name: quoted(&name.join(".")),
                upstream: quoted(&format!("127.0.0.1:{upstream}")),
                realm: quoted(realm.trim_end()),
                proxy_user: "admin".into(),
                allow_from: from,
            },
        )
}

/// Strings heavy in the characters that mean something to sshd, nft,
/// nginx, YAML and shells, with some plain text and some non-ASCII.
fn hostile_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::char::range('a', 'z'),
            2 => proptest::char::range('0', '9'),
            4 => proptest::sample::select(vec![
                ';', '{', '}', '"', '\'', '\\', '$', '#', '`', ' ', '\n', '\r', '\t', '\0',
                '/', ':', ',', '.', '-', '*', '[', ']', '=', '@', '!', '|', '&', '<', '>',
                '(', ')', '%', '~', '\u{85}', '\u{2028}', '\u{feff}', 'é',
            ]),
        ],
        0..40,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// A random string, or `seed` with hostile characters put in at a random
/// place (so that many values get past the first checks and reach the
/// renderers), or `seed` with a hostile tail.
fn mutated(seed: String) -> impl Strategy<Value = String> {
    let insert_into = seed.clone();
    let append_to = seed;
    prop_oneof![
        hostile_string(),
        (any::<prop::sample::Index>(), hostile_string()).prop_map(move |(at, bad)| {
            let mut s = insert_into.clone();
            let mut at = at.index(s.len() + 1);
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            s.insert_str(at, &bad.chars().take(2).collect::<String>());
            s
        }),
        hostile_string().prop_map(move |bad| format!("{append_to}{bad}")),
    ]
}

fn runner(cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

// ---- the properties ------------------------------------------------------

#[test]
fn random_valid_documents_render_text_the_real_programs_accept_and_agree_with() {
    const T: &str = "random_valid_documents_render_text_the_real_programs_accept_and_agree_with";
    let Some(tools) = Tools::new(T) else { return };
    let checked = std::cell::Cell::new(0);
    runner(48)
        .run(&valid_doc(tools.key_line.clone()), |doc| {
            let yaml = doc.yaml();
            let loaded = batten::input::load("property.yaml", yaml.as_bytes());
            let ud = match loaded {
                Ok(l) => l.user_data,
                Err(e) => {
                    return Err(TestCaseError::fail(format!(
                        "a valid document was refused: {:?}\n{yaml}",
                        e.errors
                    )));
                }
            };
            checked.set(checked.get() + 1);
            all_agree(&tools, &ud)
        })
        .unwrap();
    assert!(checked.get() > 0, "no document was generated");
    hostile_summary(&format!(
        "{} random valid documents rendered and read back by sshd -T, nft, nginx and ssh-keygen as batten's model says",
        checked.get()
    ));
}

/// Each field that reaches sshd, nftables, nginx or authorized_keys, with a
/// template that puts a random string into it.
type Field = (&'static str, &'static str, Box<dyn Fn(&str) -> Doc>);

/// Each field's name, a valid value to mutate, and how a value goes in.
fn fields(key: &str) -> Vec<Field> {
    let base = Doc::base(key);
    let key = key.to_string();
    let (algorithm, rest) = key.split_once(' ').unwrap();
    let (algorithm, blob) = (
        algorithm.to_string(),
        rest.split(' ').next().unwrap().to_string(),
    );
    let with = |f: fn(&mut Doc, String)| {
        let base = base.clone();
        Box::new(move |v: &str| {
            let mut d = base.clone();
            f(&mut d, quoted(v));
            d
        }) as Box<dyn Fn(&str) -> Doc>
    };
    let (a1, b1) = (algorithm.clone(), blob.clone());
    let (a2, b2) = (algorithm.clone(), blob.clone());
    vec![
        ("batten.ssh.port", "2222", with(|d, v| d.ssh_port = v)),
        (
            "batten.ssh.permit_root_login",
            "prohibit-password",
            with(|d, v| d.root_login = v),
        ),
        (
            "firewall allow port",
            "5000-5100",
            with(|d, v| d.allow[0].0 = v),
        ),
        ("firewall allow proto", "udp", with(|d, v| d.allow[0].1 = v)),
        (
            "firewall allow from",
            "203.0.113.0/24",
            with(|d, v| d.allow[0].2 = format!("[{v}]")),
        ),
        ("proxy listen", "8081", with(|d, v| d.listen = v)),
        (
            "proxy server_name",
            "panel.example.org",
            with(|d, v| d.server_name = v),
        ),
        (
            "proxy upstream",
            "127.0.0.1:8080",
            with(|d, v| d.upstream = v),
        ),
        (
            "proxy allow_from",
            "198.51.100.10-198.51.100.20",
            with(|d, v| d.allow_from = format!("[{v}]")),
        ),
        (
            "proxy auth realm",
            "Admin panel (ops)",
            with(|d, v| d.realm = v),
        ),
        ("proxy auth user name", "ops", with(|d, v| d.proxy_user = v)),
        ("ssh_authorized_keys line", "", with(|d, v| d.key = v)),
        (
            "ssh_authorized_keys options",
            "from=\"203.0.113.0/24\",no-pty",
            Box::new({
                let base = base.clone();
                move |v: &str| {
                    let mut d = base.clone();
                    d.key = quoted(&format!("{v} {a1} {b1} owner"));
                    d
                }
            }),
        ),
        (
            "ssh_authorized_keys comment",
            "owner@laptop",
            Box::new({
                let base = base.clone();
                move |v: &str| {
                    let mut d = base.clone();
                    d.key = quoted(&format!("{a2} {b2} {v}"));
                    d
                }
            }),
        ),
    ]
}

#[test]
fn random_strings_in_every_field_are_refused_or_read_back_as_modelled() {
    const T: &str = "random_strings_in_every_field_are_refused_or_read_back_as_modelled";
    let Some(tools) = Tools::new(T) else { return };
    assert!(
        load(&Doc::base(&tools.key_line).yaml()).is_some(),
        "the template itself must be valid"
    );
    let mut tried = 0;
    let mut refused = 0;
    for (field, seed, make) in fields(&tools.key_line) {
        let seed = if seed.is_empty() {
            tools.key_line.clone()
        } else {
            seed.to_string()
        };
        // The field's own valid value passes and reads back, so a refusal
        // below is the random value's, not the template's.
        let valid = load(&make(&seed).yaml())
            .unwrap_or_else(|| panic!("{field}: the valid value {seed:?} was refused"));
        all_agree(&tools, &valid).unwrap_or_else(|e| panic!("{field} = {seed:?}: {e}"));
        let field_refused = std::cell::Cell::new(0);
        let field_tried = std::cell::Cell::new(0);
        runner(40)
            .run(&mutated(seed), |value| {
                field_tried.set(field_tried.get() + 1);
                let yaml = make(&value).yaml();
                match load(&yaml) {
                    None => {
                        field_refused.set(field_refused.get() + 1);
                        Ok(())
                    }
                    Some(ud) => all_agree(&tools, &ud)
                        .map_err(|e| TestCaseError::fail(format!("{field} = {value:?}: {e}"))),
                }
            })
            .unwrap_or_else(|e| panic!("{field}: {e}"));
        eprintln!(
            "{field}: {} random values, {} refused, the rest read back as modelled",
            field_tried.get(),
            field_refused.get()
        );
        tried += field_tried.get();
        refused += field_refused.get();
    }
    assert!(tried > 0, "no value was tried");
    hostile_summary(&format!(
        "{tried} random values in {} fields: {refused} refused by validation, {} accepted and read back by the real programs as batten's model says",
        fields(&tools.key_line).len(),
        tried - refused
    ));
}
