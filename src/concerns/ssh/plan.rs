//! SSH's plan: the settings sshd must end with, the owners' key files,
//! the host keys this instance needs, and the refusal (safety rule 1) to
//! switch password login off unless some account sshd lets in ends up
//! with a key.

use super::sshd_config::{self, Setting, SshdConfig};
use super::{HostKeysOwner, Inputs, authorized_keys, host_keys};
use crate::host::distro::Distro;
use crate::host::root::{Owner, Root, RootError};
use crate::input::model::{
    AuthorizedKey, HostKeyType, PasswordAuth, ProvidedHostKey, UserData, UserSpec,
};
use crate::plan::{Action, PlanError, StepError};

fn refuse(e: impl std::fmt::Display) -> PlanError {
    PlanError::failed(format!("{e}; nothing was changed"))
}

/// Shells that let nobody in.
const NO_LOGIN_SHELLS: &[&str] = &[
    "/usr/sbin/nologin",
    "/sbin/nologin",
    "/bin/false",
    "/usr/bin/false",
];

/// The settings batten puts in effect. `old_sshd` adds the pre-8.7 name of
/// keyboard-interactive authentication.
pub fn settings(ud: &UserData, old_sshd: bool) -> Vec<Setting> {
    let mut s = Vec::new();
    let set = |s: &mut Vec<Setting>, keyword: &'static str, value: &str| {
        s.push(Setting {
            keyword,
            value: value.to_string(),
        })
    };
    match ud.ssh_pwauth {
        PasswordAuth::Default | PasswordAuth::Deny => {
            set(&mut s, "PasswordAuthentication", "no");
            set(&mut s, "KbdInteractiveAuthentication", "no");
            if old_sshd {
                set(&mut s, "ChallengeResponseAuthentication", "no");
            }
        }
        PasswordAuth::Allow => set(&mut s, "PasswordAuthentication", "yes"),
    }
    set(&mut s, "PermitEmptyPasswords", "no");
    set(&mut s, "PubkeyAuthentication", "yes");
    set(&mut s, "PermitRootLogin", root_login(ud));
    for port in &ud.batten.ssh.ports {
        set(&mut s, "Port", &port.to_string());
    }
    // What Lynis (test SSH-7408) and the CIS benchmark look for, none of
    // which costs a user anything. `AllowTcpForwarding` and the like do
    // cost (`ssh -L` to a panel on loopback) and stay as the image has them.
    for (keyword, value) in [
        // SSH-7408 LogLevel: VERBOSE logs the fingerprint of the key each
        // login used, so a leaked key can be told from its owner.
        ("LogLevel", "VERBOSE"),
        // SSH-7408 MaxAuthTries: 3 keys or attempts per connection; a
        // client with more keys in its agent names one with -i.
        ("MaxAuthTries", "3"),
        // SSH-7408 LoginGraceTime: an unauthenticated connection is
        // dropped after 30 s (OpenSSH's default is 120).
        ("LoginGraceTime", "30"),
        // SSH-7408 X11Forwarding: a server has no display to forward.
        ("X11Forwarding", "no"),
        // SSH-7408 PermitUserEnvironment: no LD_PRELOAD from ~/.ssh/environment.
        ("PermitUserEnvironment", "no"),
        // SSH-7408 ClientAliveInterval/CountMax: a client that has not
        // answered sshd's keepalive for 2 x 300 s (its network is gone) is
        // dropped; a live but idle session answers and is kept.
        ("ClientAliveInterval", "300"),
        ("ClientAliveCountMax", "2"),
        // SSH-7408 MaxStartups: past 10 unauthenticated connections sshd
        // refuses 30 % of new ones, rising to all at 60 (DHEat, brute force).
        ("MaxStartups", "10:30:60"),
        // SSH-7408 Compression: no compression state for an unauthenticated
        // peer to work on; what a server sends is rarely worth compressing.
        ("Compression", "no"),
        // SSH-7408 TCPKeepAlive: the encrypted ClientAlive messages above
        // find a dead client; TCP's own spoofable keepalive adds nothing.
        ("TCPKeepAlive", "no"),
    ] {
        set(&mut s, keyword, value);
    }
    // Paths batten makes from the key type, never text from user-data.
    for key in ud.ssh_keys.iter().filter(|k| k.certificate.is_some()) {
        set(
            &mut s,
            "HostCertificate",
            &host_keys::certificate_path(key.key_type),
        );
    }
    s
}

/// `PermitRootLogin`: as configured, else `no` under `disable_root`, else
/// `prohibit-password`.
pub fn root_login(ud: &UserData) -> &'static str {
    use crate::input::model::RootLogin;
    match ud.batten.ssh.permit_root_login {
        Some(RootLogin::No) => "no",
        Some(RootLogin::ProhibitPassword) => "prohibit-password",
        Some(RootLogin::ForcedCommandsOnly) => "forced-commands-only",
        None if ud.disable_root => "no",
        None => "prohibit-password",
    }
}

/// Whether the root's openssh-server predates 8.7 (where
/// `ChallengeResponseAuthentication` was still its own keyword), from the
/// dpkg database; `true` when it cannot be told, since the old name is
/// accepted by new versions as an alias.
fn sshd_is_old(root: &Root) -> bool {
    let Ok(Some(status)) = root.read_to_string("/var/lib/dpkg/status") else {
        return true;
    };
    let version = status
        .split("\n\n")
        .find(|stanza| stanza.lines().any(|l| l == "Package: openssh-server"))
        .and_then(|stanza| stanza.lines().find_map(|l| l.strip_prefix("Version: ")));
    let Some(version) = version else {
        return true;
    };
    // "1:9.2p1-2+deb12u3" -> (9, 2)
    let upstream = version.split_once(':').map(|(_, v)| v).unwrap_or(version);
    let mut nums = upstream
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    match (
        nums.next().and_then(|n| n.parse::<u32>().ok()),
        nums.next().and_then(|n| n.parse::<u32>().ok()),
    ) {
        (Some(major), Some(minor)) => (major, minor) < (8, 7),
        _ => true,
    }
}

/// One account whose authorized_keys batten writes.
struct KeyTarget {
    user: String,
    home: String,
    uid: Option<u32>,
    keys: Vec<AuthorizedKey>,
    options: Option<String>,
}

fn key_targets(inp: &Inputs) -> Vec<KeyTarget> {
    let ud = inp.user_data;
    let mut out = Vec::new();
    let default_name = inp
        .users
        .iter()
        .find(|u| u.default)
        .and_then(|u| u.name.clone());
    for u in inp.users {
        let Some(name) = u.name.clone() else { continue };
        let mut keys = u.ssh_authorized_keys.clone();
        if u.default {
            keys.extend(ud.ssh_authorized_keys.iter().cloned());
        }
        let entry = inp.accounts.user(&name);
        out.push(KeyTarget {
            home: entry
                .map(|e| e.home.clone())
                .unwrap_or_else(|| format!("/home/{name}")),
            uid: entry.map(|e| e.uid),
            user: name,
            keys,
            options: None,
        });
    }
    // cloud-init gives root the top-level keys too, behind a redirect
    // unless disable_root is false.
    if !ud.ssh_authorized_keys.is_empty() && !out.iter().any(|t| t.user == "root") {
        let entry = inp.accounts.user("root");
        out.push(KeyTarget {
            user: "root".into(),
            home: entry
                .map(|e| e.home.clone())
                .unwrap_or_else(|| "/root".into()),
            uid: Some(0),
            keys: ud.ssh_authorized_keys.clone(),
            options: ud
                .disable_root
                .then(|| authorized_keys::root_redirect(default_name.as_deref())),
        });
    }
    out
}

/// Plan everything SSH: sshd settings, authorized keys, host keys, the
/// check, the reload and enabling the service.
pub fn plan(inp: &Inputs, notes: &mut Vec<String>) -> Result<Vec<Action>, PlanError> {
    let root = inp.root;
    let ud = inp.user_data;
    let config = SshdConfig::load(root).map_err(refuse)?;
    let sshd_installed = config.text_of(sshd_config::MAIN).is_some();
    let mut actions = Vec::new();
    let mut sshd_changed = false;

    let mut settings = settings(ud, sshd_is_old(root));
    if ud.ssh_pwauth == PasswordAuth::Allow {
        notes.push("WARNING: ssh_pwauth is true, so SSH still accepts passwords; anyone can try to guess them".into());
    }
    let password_off = matches!(ud.ssh_pwauth, PasswordAuth::Default | PasswordAuth::Deny);

    // The owners' keys.
    let mut key_files: Vec<(KeyTarget, usize, String)> = Vec::new();
    for target in key_targets(inp) {
        let path = match authorized_keys::keys_file(&config, &target.user, target.uid, &target.home)
        {
            Ok(p) => p,
            // No keys to install: nothing to write, and no key login.
            Err(_) if target.keys.is_empty() => continue,
            Err(authorized_keys::NoKeyFile::Disabled) => {
                return Err(PlanError::refused(format!(
                    "sshd's AuthorizedKeysFile is `none`, so the keys for {} would never be read; set AuthorizedKeysFile in the image's sshd_config; nothing was changed",
                    target.user
                )));
            }
            Err(authorized_keys::NoKeyFile::UidUnknown) => {
                return Err(PlanError::refused(format!(
                    "sshd's AuthorizedKeysFile uses %U, the uid of {}, which is only known once the account exists; run batten again after it is created, or use %u; nothing was changed",
                    target.user
                )));
            }
        };
        if let Some(uid) = target.uid
            && !inp.homes_made.contains(&target.home)
        {
            check_home(root, &target.user, uid, &target.home, &path).map_err(refuse)?;
        }
        let existing = root.read_user_text(&path, target.uid).map_err(refuse)?;
        let present = existing.as_deref().map(authorized_keys::count).unwrap_or(0);
        if let Some(text) =
            authorized_keys::merged(existing.as_deref(), &target.keys, target.options.as_deref())
        {
            actions.push(Action::UserFile {
                user: target.user.clone(),
                home: target.home.clone(),
                before: existing.map(String::into_bytes),
                contents: text.into_bytes(),
                why: format!("SSH keys for {} from user-data", target.user),
                path: path.clone(),
            });
        }
        key_files.push((target, present, path));
    }

    settings.extend(super::crypto::settings(
        ud.batten.ssh.crypto,
        inp.sshd,
        &crypto_needs(inp, &key_files),
        notes,
    ));
    if sshd_installed && let Some(action) = plan_moduli(inp, notes).map_err(refuse)? {
        actions.push(action);
        sshd_changed = true;
    }

    let usable = if password_off && sshd_installed {
        interlock(inp, &config, &settings, &key_files)?
    } else {
        Vec::new()
    };

    if sshd_installed {
        for edit in sshd_config::plan_edits(&config, &settings) {
            // An edited file keeps its owner and mode; a new drop-in is 0644.
            let owner = root
                .metadata(&edit.path)
                .map_err(refuse)?
                .map(|m| m.owner())
                .unwrap_or(Owner {
                    uid: 0,
                    gid: 0,
                    mode: 0o644,
                });
            let why = edit.changes.join("; ");
            actions.extend(
                Action::write_if_changed(
                    root,
                    &edit.path,
                    edit.text.into_bytes(),
                    owner,
                    false,
                    &why,
                )
                .map_err(refuse)?,
            );
            sshd_changed = true;
        }
    } else {
        notes.push(format!(
            "{} is missing (openssh-server not installed?): sshd settings were not written",
            sshd_config::MAIN
        ));
    }

    if let Some(action) = plan_host_keys(inp)? {
        actions.push(action);
        sshd_changed = true;
    }
    if sshd_installed
        && (sshd_changed || actions.iter().any(|a| matches!(a, Action::UserFile { .. })))
    {
        if usable.is_empty() {
            actions.push(Action::CheckConfig(crate::host::daemon::Daemon::Sshd));
        } else {
            // `sshd -T` checks the whole configuration as `sshd -t` does
            // (host keys loaded, every file parsed) before it prints the
            // settings: one sshd on the first boot's path, not two.
            let accounts = key_files
                .iter()
                .filter(|(t, _, _)| usable.contains(&t.user))
                .map(|(t, _, path)| (t.user.clone(), path.clone()))
                .collect();
            actions.push(Action::ProveKeyLogin { accounts });
        }
        if root.is_host() {
            actions.push(Action::Reload {
                unit: format!("{}.service", inp.distro.ssh_service()),
            });
        }
    }
    if key_files.iter().any(|(t, _, _)| !t.keys.is_empty()) {
        actions.extend(enable_ssh(root, inp.distro, notes).map_err(refuse)?);
    }
    Ok(actions)
}

/// What the crypto policy must make room for (safety rule 7): the type of
/// every key the user-data installs and of those already in the files
/// batten adds to, the smallest RSA key among them, and the host keys
/// sshd will serve.
fn crypto_needs(inp: &Inputs, key_files: &[(KeyTarget, usize, String)]) -> super::crypto::Needs {
    use crate::input::validate::rsa_bits_of_line;
    let ud = inp.user_data;
    let mut needs = super::crypto::Needs::default();
    let mut note_rsa = |bits: Option<u32>| {
        if let Some(b) = bits {
            needs.smallest_rsa = Some(needs.smallest_rsa.map_or(b, |s: u32| s.min(b)));
        }
    };
    let mut user_keys = Vec::new();
    for (target, _, path) in key_files {
        for k in &target.keys {
            note_rsa(rsa_bits_of_line(&k.algorithm, &k.base64));
            let name = if k.comment.is_empty() {
                k.fingerprint.clone()
            } else {
                format!("{:?} ({})", k.comment, k.fingerprint)
            };
            user_keys.push((name, k.algorithm.clone()));
        }
        // Keys already in the file stay usable too.
        let existing = inp
            .root
            .read_user_text(path, target.uid)
            .ok()
            .flatten()
            .unwrap_or_default();
        for line in existing.lines() {
            if let Ok(k) = crate::input::validate::parse_authorized_key(line.trim()) {
                note_rsa(rsa_bits_of_line(&k.algorithm, &k.base64));
                user_keys.push((format!("in {}'s key file", target.user), k.algorithm));
            }
        }
    }
    needs.user_keys = user_keys;
    let served: Vec<HostKeyType> = if ud.ssh_keys.is_empty() {
        ud.ssh_genkeytypes.clone()
    } else {
        ud.ssh_keys.iter().map(|k| k.key_type).collect()
    };
    for t in served {
        let given = ud.ssh_keys.iter().find(|k| k.key_type == t);
        let algorithm = match (t, given) {
            (_, Some(k)) => k.public.split_whitespace().next().unwrap_or("").to_string(),
            (HostKeyType::Rsa, None) => "ssh-rsa".into(),
            (HostKeyType::Ecdsa, None) => "ecdsa-sha2-nistp256".into(),
            (HostKeyType::Ed25519, None) => "ssh-ed25519".into(),
        };
        if given.is_some_and(|k| k.certificate.is_some()) {
            needs.certified.push(t);
        }
        needs.host_keys.push((t, algorithm));
    }
    needs
}

/// `/etc/ssh/moduli` without the Diffie-Hellman groups under 3072 bits
/// (ssh-audit's guide), under the modern policy and only when that changes
/// it. A file left without any group would make sshd fall back to its
/// built-in groups silently: then the image's file stays, with a note.
fn plan_moduli(inp: &Inputs, notes: &mut Vec<String>) -> Result<Option<Action>, RootError> {
    const MODULI: &str = "/etc/ssh/moduli";
    if inp.user_data.batten.ssh.crypto != crate::input::model::CryptoPolicy::Modern {
        return Ok(None);
    }
    let Some(text) = inp.root.read_to_string(MODULI)? else {
        return Ok(None);
    };
    let Some(filtered) = super::crypto::filter_moduli(&text) else {
        return Ok(None);
    };
    if !super::crypto::has_groups(&filtered) {
        notes.push(format!(
            "{MODULI} has no Diffie-Hellman group of 3072 bits or more, so batten keeps it as it is rather than leave it empty; regenerate it with ssh-keygen -M generate -O bits=3072"
        ));
        return Ok(None);
    }
    let owner = inp
        .root
        .metadata(MODULI)?
        .map(|m| m.owner())
        .unwrap_or(Owner {
            uid: 0,
            gid: 0,
            mode: 0o644,
        });
    Action::write_if_changed(
        inp.root,
        MODULI,
        filtered.into_bytes(),
        owner,
        false,
        "Diffie-Hellman groups under 3072 bits removed (ssh-audit's hardening guide)",
    )
}

/// The ports sshd will listen on after this run: batten's `Port` when
/// set, else what the root's effective configuration says (22 by default).
pub fn listening_ports(root: &Root, ud: &UserData) -> Result<Vec<u16>, PlanError> {
    let config = SshdConfig::load(root).map_err(refuse)?;
    if ud.batten.ssh.ports.is_empty() {
        return Ok(config.ports());
    }
    // `ListenAddress host:port` keeps its own port whatever `Port` says,
    // so those stay open too.
    let mut ports = ud.batten.ssh.ports.clone();
    for p in config.listen_address_ports() {
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    Ok(ports)
}

/// An existing account's keys go into its own home only: the home must
/// exist and be a directory it owns (symlinks are refused).
fn check_home(
    root: &Root,
    user: &str,
    uid: u32,
    home: &str,
    keys_path: &str,
) -> Result<(), StepError> {
    if !keys_path.starts_with(&format!("{}/", home.trim_end_matches('/'))) {
        return Ok(());
    }
    match root.metadata(home)? {
        None => Err(format!(
            "{user}'s home {home} does not exist, so batten has nowhere to put {user}'s keys; create it (owned by {user}) or fix the home in /etc/passwd"
        ).into()),
        Some(m) if m.kind == crate::host::root::FileKind::Symlink => {
            Err(RootError::SymlinkRefused {
                path: keys_path.to_string(),
                link: home.to_string(),
            }
            .into())
        }
        Some(m) if m.kind != crate::host::root::FileKind::Dir || m.uid != uid => Err(format!(
            "{home} is not a directory owned by {user} (uid {uid}), so batten will not write {user}'s keys there; fix its owner (chown {user} {home})"
        ).into()),
        // sshd's StrictModes refuses keys under a home others can write to,
        // and so does batten's rooted writer: say so before changing anything.
        Some(m) if m.mode & 0o022 != 0 => Err(format!(
            "{home} can be written by others (mode {:04o}), so sshd would ignore {user}'s keys; chmod go-w {home}",
            m.mode
        ).into()),
        Some(_) => Ok(()),
    }
}

/// Simple sshd patterns (`*`, `?`), as AllowUsers and friends use them.
pub(super) fn pattern_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    // `user@host` patterns: only the user part decides here.
    let user_part = pattern.split('@').next().unwrap_or(pattern);
    go(user_part.as_bytes(), name.as_bytes())
}

/// Whether an account's password field will start with `!` (locked) after
/// this run, which sshd without PAM treats as "no login at all".
fn locked_after(spec: Option<&UserSpec>, current: Option<&str>) -> bool {
    match (spec, current) {
        // Locking leaves `*` (no password) as it is; sshd does not count it.
        (Some(s), Some("*")) if s.locked() => false,
        (Some(s), _) if s.locked() => true,
        (Some(s), _) if s.passwords.any() => false,
        (_, Some(f)) => f.starts_with('!'),
        // useradd makes new accounts with `!`.
        (_, None) => true,
    }
}

/// Safety rule 1: password login goes off only if some account sshd lets
/// in ends up with a key. Otherwise exit 65 naming every account and why.
fn interlock(
    inp: &Inputs,
    config: &SshdConfig,
    settings: &[Setting],
    targets: &[(KeyTarget, usize, String)],
) -> Result<Vec<String>, PlanError> {
    let words = |k: &str| -> Vec<String> {
        config
            .all(k)
            .iter()
            .flat_map(|d| {
                d.args
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (allow_users, deny_users) = (words("allowusers"), words("denyusers"));
    // sshd's own default is `UsePAM no`; distributions turn it on.
    let use_pam = config
        .effective("usepam")
        .is_some_and(|d| d.value() == "yes");
    let (allow_groups, deny_groups) = (words("allowgroups"), words("denygroups"));
    let permit_root = settings
        .iter()
        .find(|s| s.keyword == "PermitRootLogin")
        .map(|s| s.value.clone())
        .unwrap_or_default();
    let mut considered = Vec::new();
    let mut usable = Vec::new();
    for (t, present, _) in targets {
        let spec = inp
            .users
            .iter()
            .find(|u| u.name.as_deref() == Some(t.user.as_str()));
        let entry = inp.accounts.user(&t.user);
        // Shell and groups from user-data apply only when an account is
        // created; an existing account keeps its own.
        let shell = match entry {
            Some(e) => e.shell.clone(),
            None => spec.and_then(|s| s.shell.clone()).unwrap_or_default(),
        };
        let mut groups: Vec<String> = if entry.is_some() {
            Vec::new()
        } else {
            spec.map(|s| s.groups.clone()).unwrap_or_default()
        };
        groups.push(t.user.clone());
        for g in &inp.accounts.groups {
            if g.members.contains(&t.user) || entry.is_some_and(|e| e.gid == g.gid) {
                groups.push(g.name.clone());
            }
        }
        let why_not = if t.keys.is_empty() && *present == 0 {
            Some("no key".to_string())
        } else if t.user == "root" && t.options.is_some() {
            Some("its keys only print which account to use (disable_root)".to_string())
        } else if t.user == "root"
            && !matches!(
                permit_root.as_str(),
                "prohibit-password" | "yes" | "without-password"
            )
        {
            Some(format!("PermitRootLogin {permit_root}"))
        } else if !use_pam && locked_after(spec, inp.accounts.shadow_field(&t.user)) {
            Some("UsePAM is no, and without PAM sshd refuses key logins to an account whose password is locked (lock_passwd); set lock_passwd: false or UsePAM yes".to_string())
        } else if NO_LOGIN_SHELLS.contains(&shell.as_str()) {
            Some(format!("its shell is {shell}"))
        } else if deny_users.iter().any(|p| pattern_matches(p, &t.user)) {
            Some("DenyUsers".into())
        } else if !allow_users.is_empty()
            && !allow_users.iter().any(|p| pattern_matches(p, &t.user))
        {
            Some("not in AllowUsers".into())
        } else if deny_groups
            .iter()
            .any(|p| groups.iter().any(|g| pattern_matches(p, g)))
        {
            Some("DenyGroups".into())
        } else if !allow_groups.is_empty()
            && !allow_groups
                .iter()
                .any(|p| groups.iter().any(|g| pattern_matches(p, g)))
        {
            Some("not in AllowGroups".into())
        } else {
            None
        };
        match why_not {
            None => usable.push(t.user.clone()),
            Some(reason) => considered.push(format!("{} ({reason})", t.user)),
        }
    }
    if !usable.is_empty() {
        return Ok(usable);
    }
    let considered = if considered.is_empty() {
        "none".to_string()
    } else {
        considered.join(", ")
    };
    Err(PlanError::refused(format!(
        "refusing to turn SSH password login off: no account that sshd lets in would have a key, so nobody could log in. \
             Accounts considered: {considered}. Add ssh_authorized_keys to a user (or the top level for the default user); \
             nothing was changed"
    )))
}

/// Host keys of the wanted types the root lacks, and nothing else: what sshd
/// needs to start at all, for a machine batten leaves otherwise untouched
/// (no user-data, or user-data it refused). Existing keys are kept.
pub fn plan_missing_host_keys(inp: &Inputs) -> Result<Option<Action>, PlanError> {
    plan_host_keys(&Inputs {
        host_keys: HostKeysOwner::ThisInstance,
        ..*inp
    })
}

/// The host key action, when this instance needs one.
fn plan_host_keys(inp: &Inputs) -> Result<Option<Action>, PlanError> {
    let root = inp.root;
    let ud = inp.user_data;
    if root.metadata("/etc/ssh").map_err(refuse)?.is_none() {
        return Ok(None);
    }
    let existing: Vec<String> = root
        .list_dir("/etc/ssh")
        .map_err(refuse)?
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with("ssh_host_") && n.contains("key"))
        .filter(|n| {
            root.metadata(&format!("/etc/ssh/{n}"))
                .ok()
                .flatten()
                .is_some_and(|m| m.kind == crate::host::root::FileKind::File)
        })
        .map(|n| format!("/etc/ssh/{n}"))
        .collect();
    let remove = match &inp.host_keys {
        _ if !ud.ssh_deletekeys => Vec::new(),
        HostKeysOwner::ThisInstance => Vec::new(),
        HostKeysOwner::Image => existing.clone(),
        // The keys the baseline made this boot are this machine's own:
        // those of a type the user-data wants stay (sshd may have shown
        // them); the rest go, the image's among them, as on a first run.
        HostKeysOwner::ThisBoot(made) => {
            let wanted: Vec<HostKeyType> = if ud.ssh_keys.is_empty() {
                ud.ssh_genkeytypes.clone()
            } else {
                ud.ssh_keys.iter().map(|k| k.key_type).collect()
            };
            let kept: Vec<String> = wanted
                .iter()
                .map(|t| host_keys::private_path(*t))
                .filter(|p| made.contains(p))
                .collect();
            existing
                .iter()
                .filter(|p| !kept.iter().any(|k| p.starts_with(k.as_str())))
                .cloned()
                .collect()
        }
    };
    let remains =
        |path: &str| !remove.iter().any(|r| r == path) && existing.iter().any(|e| e == path);
    let mut provided: Vec<ProvidedHostKey> = Vec::new();
    for key in &ud.ssh_keys {
        let path = host_keys::private_path(key.key_type);
        // Compared as it will be written: ending in one newline.
        let wanted = format!("{}\n", key.private.trim_end_matches('\n'));
        let same_certificate = match &key.certificate {
            None => true,
            Some(line) => {
                let cert = host_keys::certificate_path(key.key_type);
                remains(&cert)
                    && root.read(&cert).map_err(refuse)?.as_deref()
                        == Some(format!("{line}\n").as_bytes())
            }
        };
        let same = same_certificate
            && remains(&path)
            && root.read(&path).map_err(refuse)?.as_deref() == Some(wanted.as_bytes());
        if !same {
            provided.push(key.clone());
        }
    }
    let generate: Vec<HostKeyType> = if ud.ssh_keys.is_empty() {
        ud.ssh_genkeytypes
            .iter()
            .copied()
            .filter(|t| !remains(&host_keys::private_path(*t)))
            .collect()
    } else {
        Vec::new()
    };
    if remove.is_empty() && provided.is_empty() && generate.is_empty() {
        return Ok(None);
    }
    let hostname = root
        .read_to_string("/etc/hostname")
        .ok()
        .flatten()
        .map(|h| h.trim().to_string())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 253
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .unwrap_or_else(|| "localhost".into());
    Ok(Some(Action::HostKeys {
        remove,
        generate,
        rsa_bits: super::crypto::rsa_host_key_bits(ud.batten.ssh.crypto),
        provided,
        comment: format!("root@{hostname}"),
        ssh_keys_gid: inp.accounts.group("ssh_keys").map(|g| g.gid),
        quiet: ud.ssh_quiet_keygen,
    }))
}

/// Enable the SSH service when it is installed but not enabled (Raspberry
/// Pi OS ships it off), so the keys just installed can be used.
fn enable_ssh(
    root: &Root,
    distro: &Distro,
    notes: &mut Vec<String>,
) -> Result<Vec<Action>, RootError> {
    let name = format!("{}.service", distro.ssh_service());
    if crate::host::systemd::is_masked(root, &name)? {
        notes.push(format!(
            "{name} is masked: batten leaves it so, and SSH will not start until it is unmasked"
        ));
        return Ok(Vec::new());
    }
    let Some(unit) = crate::host::systemd::find(root, &name)? else {
        return Ok(Vec::new());
    };
    if crate::host::systemd::is_enabled(root, &unit)? {
        return Ok(Vec::new());
    }
    // Ubuntu starts sshd from ssh.socket instead.
    if root
        .metadata("/etc/systemd/system/sockets.target.wants/ssh.socket")?
        .is_some()
    {
        return Ok(Vec::new());
    }
    notes.push(format!(
        "{name} was not enabled; batten enables it so the installed keys can be used"
    ));
    let mut actions = Vec::new();
    for (path, target) in crate::host::systemd::enable_links(&unit) {
        if root.metadata(&path)?.is_none() {
            actions.push(Action::Symlink {
                path,
                target,
                why: format!("enable {name}"),
            });
        }
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sshd_version_from_dpkg() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("var/lib/dpkg")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert!(sshd_is_old(&root), "unknown counts as old");
        let status = |v: &str| {
            format!(
                "Package: openssh-client\nVersion: 1:9.2p1-2\n\nPackage: openssh-server\nStatus: install ok installed\nVersion: {v}\n\n"
            )
        };
        std::fs::write(
            dir.path().join("var/lib/dpkg/status"),
            status("1:9.2p1-2+deb12u3"),
        )
        .unwrap();
        assert!(!sshd_is_old(&root));
        std::fs::write(
            dir.path().join("var/lib/dpkg/status"),
            status("1:8.4p1-5+deb11u3"),
        )
        .unwrap();
        assert!(sshd_is_old(&root));
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("adm*", "admin"));
        assert!(pattern_matches("admin@198.51.100.*", "admin"));
        assert!(!pattern_matches("ops", "admin"));
        assert!(pattern_matches("?i", "pi"));
    }

    /// The settings that cost nothing (Lynis SSH-7408), in every plan.
    const LYNIS: [&str; 10] = [
        "LogLevel VERBOSE",
        "MaxAuthTries 3",
        "LoginGraceTime 30",
        "X11Forwarding no",
        "PermitUserEnvironment no",
        "ClientAliveInterval 300",
        "ClientAliveCountMax 2",
        "MaxStartups 10:30:60",
        "Compression no",
        "TCPKeepAlive no",
    ];

    #[test]
    fn settings_follow_ssh_pwauth_and_disable_root() {
        let mut ud = UserData {
            disable_root: true,
            ..UserData::default()
        };
        let text = |s: Vec<Setting>| {
            s.iter()
                .map(|s| format!("{} {}", s.keyword, s.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            text(settings(&ud, false)),
            [
                &[
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitEmptyPasswords no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin no",
                ][..],
                &LYNIS[..]
            ]
            .concat()
        );
        ud.disable_root = false;
        ud.ssh_pwauth = PasswordAuth::Allow;
        ud.batten.ssh.ports = vec![22, 2222];
        assert_eq!(
            text(settings(&ud, true)),
            [
                &[
                    "PasswordAuthentication yes",
                    "PermitEmptyPasswords no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                ][..],
                &["Port 22", "Port 2222"][..],
                &LYNIS[..]
            ]
            .concat()
        );
        ud.ssh_pwauth = PasswordAuth::Deny;
        assert!(
            text(settings(&ud, true)).contains(&"ChallengeResponseAuthentication no".to_string())
        );
    }
}
