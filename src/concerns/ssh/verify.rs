//! Checking SSH: sshd's effective settings for every account (password
//! login off, a key for someone), the host keys, and the key files.

use crate::concerns::accounts::{self, Accounts};
use crate::concerns::report::{Inputs, Report, Status, config_check};
use crate::concerns::ssh::sshd_config::SshdConfig;
use crate::host::daemon::{self, CheckError, Daemon};
use crate::host::root::FileKind;
use crate::input::model::PasswordAuth;

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
            // The evidence: which file says so (a drop-in someone added).
            let set_in = if status == Status::Fail {
                let found = where_set(inp.root, k, &v);
                if found.is_empty() {
                    String::new()
                } else {
                    format!(", set in {}", found.join(", "))
                }
            } else {
                String::new()
            };
            r.add(
                &format!("sshd.{k}.{user}"),
                status,
                format!("{k} for {user} (sshd -T)"),
                format!("`{v}`{set_in}"),
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
            hardening(ud, &key_file_algorithms(inp), &get, r);
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

/// The lines of the root's sshd_config and its drop-ins that set `keyword`
/// (or, for keyboard-interactive, its old name) to `value`, as
/// `path:line`: the evidence when a setting is not what batten made it.
pub fn where_set(root: &crate::host::root::Root, keyword: &str, value: &str) -> Vec<String> {
    let names: &[&str] = if keyword == "kbdinteractiveauthentication" {
        &[
            "kbdinteractiveauthentication",
            "challengeresponseauthentication",
        ]
    } else {
        &[keyword]
    };
    let mut files = vec!["/etc/ssh/sshd_config".to_string()];
    let mut dropins: Vec<String> = root
        .list_dir("/etc/ssh/sshd_config.d")
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f.ends_with(".conf"))
        .map(|f| format!("/etc/ssh/sshd_config.d/{f}"))
        .collect();
    dropins.sort();
    files.extend(dropins);
    let mut found = Vec::new();
    for path in files {
        let Ok(Some(text)) = root.read_to_string(&path) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let mut words = line.split_whitespace();
            let (Some(k), Some(v)) = (words.next(), words.next()) else {
                continue;
            };
            if names.iter().any(|name| k.eq_ignore_ascii_case(name))
                && v.eq_ignore_ascii_case(value)
            {
                found.push(format!("{path}:{}", n + 1));
            }
        }
    }
    found
}

/// The effective crypto lists hold nothing outside the policy (plus the
/// algorithms of the keys the user-data installs), and the settings that
/// cost nothing (Lynis SSH-7408) are in effect.
fn hardening(
    ud: &crate::input::model::UserData,
    in_files: &[String],
    get: &dyn Fn(&str) -> String,
    r: &mut Report,
) {
    use crate::concerns::ssh::crypto;
    let user_algorithms: Vec<String> = ud
        .users
        .iter()
        .flat_map(|u| &u.ssh_authorized_keys)
        .chain(&ud.ssh_authorized_keys)
        .flat_map(|k| crypto::algorithms_for_key(&k.algorithm))
        .collect();
    // Keys already in the accounts' files were made room for too.
    let accepted_extra: Vec<String> = user_algorithms.iter().chain(in_files).cloned().collect();
    let host_algorithms: Vec<String> = ud
        .ssh_keys
        .iter()
        .filter_map(|k| k.public.split_whitespace().next())
        .flat_map(|a| {
            let plain = crypto::algorithms_for_key(a);
            let certs: Vec<String> = plain
                .iter()
                .map(|p| format!("{p}-cert-v01@openssh.com"))
                .collect();
            plain.into_iter().chain(certs)
        })
        .chain(
            ud.ssh_genkeytypes
                .iter()
                .filter(|t| **t == crate::input::model::HostKeyType::Ecdsa)
                .map(|_| "ecdsa-sha2-nistp256".to_string()),
        )
        .collect();
    let pubkey = if get("pubkeyacceptedalgorithms").is_empty() {
        "pubkeyacceptedkeytypes"
    } else {
        "pubkeyacceptedalgorithms"
    };
    for (keyword, extra) in [
        ("kexalgorithms", &Vec::new()),
        ("ciphers", &Vec::new()),
        ("macs", &Vec::new()),
        ("hostkeyalgorithms", &host_algorithms),
        (pubkey, &accepted_extra),
    ] {
        let Some(allowed) = crypto::allowed(ud.batten.ssh.crypto, keyword, extra) else {
            continue;
        };
        let effective = get(keyword);
        let outside: Vec<&str> = effective
            .split(',')
            .filter(|a| !a.is_empty() && !allowed.iter().any(|x| x == a))
            .collect();
        let missing = user_algorithms
            .iter()
            .filter(|a| keyword == pubkey && !effective.split(',').any(|e| e == a.as_str()))
            .count();
        let (status, why) = if effective.is_empty() {
            (Status::Fail, "sshd -T does not say".to_string())
        } else if !outside.is_empty() {
            (
                Status::Fail,
                format!("outside the crypto policy: {}", outside.join(", ")),
            )
        } else if missing > 0 {
            // Safety rule 7: a key the user gave would be locked out.
            (
                Status::Fail,
                format!("{missing} algorithm(s) of keys from user-data not accepted"),
            )
        } else {
            (Status::Pass, format!("`{effective}`"))
        };
        r.add(
            &format!("sshd.crypto.{keyword}"),
            status,
            format!("{keyword} (sshd -T)"),
            why,
        );
    }
    // Lynis SSH-7408: sshd -T spells values in lower case, times in seconds.
    for (keyword, wanted) in [
        ("loglevel", "VERBOSE"),
        ("maxauthtries", "3"),
        ("logingracetime", "30"),
        ("x11forwarding", "no"),
        ("permituserenvironment", "no"),
        ("clientaliveinterval", "300"),
        ("clientalivecountmax", "2"),
        ("maxstartups", "10:30:60"),
        ("compression", "no"),
        ("tcpkeepalive", "no"),
    ] {
        let got = get(keyword);
        r.add(
            &format!("sshd.{keyword}"),
            if got.eq_ignore_ascii_case(wanted) {
                Status::Pass
            } else {
                Status::Fail
            },
            format!("{keyword} (sshd -T; Lynis SSH-7408)"),
            format!("`{got}`, batten wants `{wanted}`"),
        );
    }
}

/// The algorithms of every key in the key files of the accounts batten
/// manages (and root's), which the crypto policy keeps accepting.
fn key_file_algorithms(inp: &Inputs) -> Vec<String> {
    let (Ok(accounts), Ok(config)) = (Accounts::load(inp.root), SshdConfig::load(inp.root)) else {
        return Vec::new();
    };
    let users = accounts::resolve_users(inp.user_data, inp.root, inp.distro, &mut Vec::new());
    let mut names: Vec<String> = users.iter().filter_map(|u| u.name.clone()).collect();
    names.push("root".into());
    let mut out = Vec::new();
    for name in names {
        let Some(path) = accounts
            .user(&name)
            .and_then(|entry| keys_path(&config, &name, entry))
        else {
            continue;
        };
        let text = inp
            .root
            .read_to_string(&path)
            .ok()
            .flatten()
            .unwrap_or_default();
        for line in text.lines() {
            if let Ok(k) = crate::input::validate::parse_authorized_key(line.trim()) {
                out.extend(crate::concerns::ssh::crypto::algorithms_for_key(
                    &k.algorithm,
                ));
            }
        }
    }
    out
}

/// The key file sshd reads for an account, if its AuthorizedKeysFile
/// names one.
fn keys_path(config: &SshdConfig, name: &str, entry: &accounts::PasswdEntry) -> Option<String> {
    crate::concerns::ssh::authorized_keys::keys_file(config, name, Some(entry.uid), &entry.home)
        .ok()
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
        let Some(path) = keys_path(&config, &name, entry) else {
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

/// Every check of SSH.
pub fn verify(inp: &Inputs, r: &mut Report) {
    sshd(inp, r);
    host_keys(inp, r);
    authorized_keys(inp, r);
}
