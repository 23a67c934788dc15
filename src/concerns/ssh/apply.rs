//! SSH's own steps: making or installing the host keys, and proving the
//! key login on the effective configuration before anything is final.

use super::plan::pattern_matches;
use super::{authorized_keys, host_keys};
use crate::concerns::accounts::Accounts;
use crate::host::exec::Runner;
use crate::host::root::{Backup, Root};
use crate::host::undo::UndoLog;
use crate::input::model::{HostKeyType, ProvidedHostKey};
use crate::plan::StepError;

/// `Action::ProveKeyLogin`: ask sshd itself (`sshd -T`, Match blocks
/// applied) whether each account can log in with a key through the file
/// batten wrote, and whether passwords are really off for it. One usable
/// account is enough; a password left on for anyone fails the run.
pub fn prove_key_login(
    runner: &dyn Runner,
    root: &Root,
    accounts: &[(String, String)],
) -> Result<(), StepError> {
    let passwd = Accounts::load(root).map_err(|e| e.to_string())?;
    let mut reasons = Vec::new();
    let mut usable = false;
    for (user, path) in accounts {
        let settings = match crate::host::daemon::sshd_effective_for(runner, root, user) {
            Ok(settings) => settings,
            // The image's sshd cannot run here, and only the real sshd
            // proves a key login (Match blocks, AuthorizedKeysFile,
            // AuthenticationMethods): password login does not go off
            // unproven, so the run stops and everything is put back.
            Err(crate::host::daemon::CheckError::Foreign { why, .. }) => {
                return Err(format!(
                    "the image's sshd cannot run on this machine ({why}), so no key login can be proven before password login goes off; register qemu-user-static for the image's architecture (apt-get install qemu-user-static binfmt-support) and run again, or give the user-data to the machine itself (a seed on the image) so that its first boot proves it"
                ).into());
            }
            Err(e) => return Err(StepError::Failed(e.to_string())),
        };
        let get = |k: &str| {
            settings
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        for k in ["passwordauthentication", "kbdinteractiveauthentication"] {
            if get(k) != "no" {
                return Err(format!(
                    "sshd -T says {k} is `{}` for {user}: passwords are not off",
                    get(k)
                )
                .into());
            }
        }
        let entry = passwd.user(user);
        let home = entry.map(|e| e.home.clone()).unwrap_or_default();
        let uid = entry.map(|e| e.uid);
        let files: Vec<String> = get("authorizedkeysfile")
            .split_whitespace()
            .map(|f| authorized_keys::expand(f, user, uid, &home))
            .collect();
        let methods_ok = get("authenticationmethods")
            .split_whitespace()
            .any(|list| list == "any" || list.split(',').all(|m| m == "publickey"));
        let why_not = if get("pubkeyauthentication") != "yes" {
            Some("PubkeyAuthentication is off for it".to_string())
        } else if !files.contains(path) && get("authorizedkeyscommand").is_empty_or_none() {
            Some(format!("sshd reads {} for it, not {path}", files.join(" ")))
        } else if !methods_ok {
            Some(format!(
                "AuthenticationMethods {} needs more than a key",
                get("authenticationmethods")
            ))
        } else if user == "root"
            && !matches!(
                get("permitrootlogin"),
                "yes" | "prohibit-password" | "without-password"
            )
        {
            Some(format!("PermitRootLogin {}", get("permitrootlogin")))
        } else if get("denyusers")
            .split_whitespace()
            .any(|p| pattern_matches(p, user))
        {
            Some("DenyUsers".to_string())
        } else if !get("allowusers").is_empty()
            && !get("allowusers")
                .split_whitespace()
                .any(|p| pattern_matches(p, user))
        {
            Some("not in AllowUsers".to_string())
        } else {
            None
        };
        match why_not {
            None => usable = true,
            Some(r) => reasons.push(format!("{user}: {r}")),
        }
    }
    if usable {
        Ok(())
    } else {
        Err(format!(
            "sshd's effective configuration would let nobody in with a key ({}); the run is rolled back so passwords are not switched off",
            reasons.join("; ")
        ).into())
    }
}

/// sshd -T prints `none` for an unset AuthorizedKeysCommand.
trait EmptyOrNone {
    fn is_empty_or_none(&self) -> bool;
}

impl EmptyOrNone for &str {
    fn is_empty_or_none(&self) -> bool {
        self.is_empty() || *self == "none"
    }
}

/// Carry out `Action::HostKeys`: remove, generate (in parallel) or install,
/// write with safe modes, and print the fingerprints. Every file replaced
/// is added to `undo` as it happens, so a failure half-way can still be
/// rolled back completely.
#[allow(clippy::too_many_arguments)]
pub fn apply_host_keys(
    root: &Root,
    backup: &Backup,
    remove: &[String],
    generate: &[HostKeyType],
    rsa_bits: usize,
    provided: &[ProvidedHostKey],
    comment: &str,
    ssh_keys_gid: Option<u32>,
    quiet: bool,
    undo: &mut UndoLog,
) -> Result<(), StepError> {
    for path in remove {
        let before = root.read_with_owner(path)?;
        if root.remove_file(path, Some(backup))? {
            undo.file(path, before);
        }
    }
    let mut files = host_keys::generate(generate, rsa_bits, comment)?;
    for key in provided {
        files.push(host_keys::provided(key)?);
    }
    let mut lines = Vec::new();
    for f in &files {
        let certificate = f
            .certificate
            .as_ref()
            .map(|c| (host_keys::certificate_path(f.key_type), c));
        for (path, text, owner) in [
            (
                &f.private_path,
                &f.private,
                host_keys::private_owner(ssh_keys_gid),
            ),
            (&f.public_path, &f.public, host_keys::public_owner()),
        ]
        .into_iter()
        .chain(
            certificate
                .as_ref()
                .map(|(path, text)| (path, *text, host_keys::public_owner())),
        ) {
            let before = root.read_with_owner(path)?;
            if root.write_atomic(path, text.as_bytes(), owner, Some(backup))? {
                undo.file(path, before);
            }
        }
        lines.push(f.fingerprint_entry());
    }
    if !quiet && !lines.is_empty() {
        let block = host_keys::fingerprint_block(&lines);
        print!("{block}");
        if root.is_host() {
            // Also on the console, where the person at the first boot looks.
            use std::os::unix::fs::OpenOptionsExt;
            // Never become the console's controlling process, never block on
            // a stalled serial line at first boot.
            let flags = nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC;
            if let Ok(mut console) = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(flags)
                .open("/dev/console")
            {
                let _ = std::io::Write::write_all(&mut console, block.as_bytes());
            }
        }
    }
    Ok(())
}
