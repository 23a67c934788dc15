//! The plan: every change batten would make, computed before any is made.
//!
//! A plan is pure data (files with their full new contents, modes and
//! owners; commands with their arguments), computed from the validated
//! user-data and the current contents of the root. `batten plan` prints it
//! as a unified diff; `batten run` hands it to `apply`. Only changes are
//! planned, so the plan of a machine batten already converged is empty.

mod error;

pub use error::{PlanError, StepError};

use std::fmt::Write as _;

use serde::Serialize;

use crate::host::root::Owner;

/// Text that must never reach a log, a plan printout or a report.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// Which tool writes and loads the firewall's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirewallKind {
    /// One `inet` table for both families.
    Nftables,
    /// `iptables-restore` and `ip6tables-restore` files.
    Iptables,
}

impl FirewallKind {
    /// The tool's name, for the plan and messages.
    pub fn name(self) -> &'static str {
        match self {
            FirewallKind::Nftables => "nftables",
            FirewallKind::Iptables => "iptables",
        }
    }
}

/// A check a file must pass before it replaces the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// `visudo -cf FILE`: a broken sudoers file locks every admin out of sudo.
    Visudo,
}

/// One step of an [`Action::Accounts`] transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum AccountStep {
    /// `groupadd`, `useradd` or `usermod`, run with `--prefix` on the copy.
    Run {
        /// Program and arguments, without `--prefix`; run without a shell.
        argv: Vec<String>,
        /// The reason, in words, for the plan, the log and the journal.
        why: String,
    },
    /// Set an account's password field in the copy of /etc/shadow.
    SetPassword {
        /// The account whose /etc/shadow line is edited.
        user: String,
        /// The whole new password field: a hash, `!`-prefixed when locked.
        field: Secret,
        /// The reason, in words, for the plan, the log and the journal.
        why: String,
    },
    /// Lock a known default password found in the image (`!` before the
    /// hash, as `passwd -l` does: keys still log in). Its own step, so the
    /// run records which accounts it locked for status and the report.
    LockDefault {
        /// The account whose /etc/shadow line is edited.
        user: String,
        /// The whole new password field, `!`-prefixed.
        field: Secret,
        /// What the password was, in words (it is public knowledge).
        found: String,
    },
}

impl AccountStep {
    /// The one-line summary shown in plans, logs and the journal.
    pub fn summary(&self) -> String {
        match self {
            // batten makes these itself where it models them (see
            // accounts::native), and the command says what it does.
            AccountStep::Run { argv, why }
                if matches!(argv[0].as_str(), "useradd" | "groupadd") =>
            {
                format!("{why}: {}", shell_words(argv))
            }
            AccountStep::Run { argv, why } => format!("run {}: {why}", shell_words(argv)),
            AccountStep::SetPassword { user, why, .. } => {
                format!("set the password of {user}: {why}")
            }
            AccountStep::LockDefault { user, found, .. } => {
                format!("lock the password of {user}: it was {found}")
            }
        }
    }
}

/// One change. Its Debug output leaves out the contents of secret files.
#[derive(Clone, PartialEq)]
pub enum Action {
    /// Create or replace a file atomically.
    Write {
        /// Root-relative path, such as `/etc/sudoers.d/90-cloud-init-users`.
        path: String,
        /// The whole new file, not a patch.
        contents: Vec<u8>,
        /// Owner and mode the file must end with.
        owner: Owner,
        /// What is there now, for the diff: contents and owner.
        before: Option<(Vec<u8>, Owner)>,
        /// Contents are secret: the diff shows only that they change.
        secret: bool,
        /// A check the new contents must pass; every check runs before the
        /// first change.
        check: Option<Check>,
        /// The reason, in words, for the plan, the log and the journal.
        why: String,
    },
    /// Change the account files (passwd, shadow, group, gshadow, subuid,
    /// subgid) as one transaction: the steps run on a copy of the files,
    /// and the results replace the root's files together, through a
    /// record that a run killed half-way finishes first thing next time.
    Accounts {
        /// The steps, in order.
        steps: Vec<AccountStep>,
    },
    /// Write a file owned by an account (its authorized_keys). The owner
    /// is looked up in the root's /etc/passwd at apply time, because
    /// `useradd` earlier in the same plan may only then have made it.
    UserFile {
        /// The account that owns the file.
        user: String,
        /// The account's home: directories below it are created as the
        /// account's, 0700; the home must belong to the account.
        home: String,
        /// Root-relative path of the file.
        path: String,
        /// Full new contents.
        contents: Vec<u8>,
        /// What is there now, for the diff.
        before: Option<Vec<u8>>,
        /// The reason, in words.
        why: String,
    },
    /// Make a new account's home with a copy of the skeleton, whole or not
    /// at all. The owner is looked up at apply time, like `UserFile`'s.
    MakeHome {
        /// The account that owns the home.
        user: String,
        /// Root-relative path of the home.
        home: String,
        /// Its mode (`HOME_MODE` or `UMASK` of the root's login.defs).
        mode: u32,
        /// The skeleton directory to copy, when the root has one.
        skel: Option<String>,
        /// The reason, in words.
        why: String,
    },
    /// Remove a file (kept in the run's backup).
    Remove {
        /// Root-relative path.
        path: String,
        /// The reason, in words.
        why: String,
    },
    /// Rewrite a file holding secrets where its bytes lie: on FAT (a Pi's
    /// boot partition) a replacement would leave the old bytes in freed
    /// clusters for anyone holding the card. The new text goes over the
    /// old, padded with blank lines, then the file is cut to length, so a
    /// power cut leaves a readable file; the old one is kept in the run's
    /// backup and put back if the run fails.
    Scrub {
        /// Root-relative path.
        path: String,
        /// The whole new file.
        contents: Vec<u8>,
        /// Owner and mode the file must end with.
        owner: Owner,
        /// The reason, in words.
        why: String,
    },
    /// Create a symlink, as `systemctl enable` does for a unit.
    Symlink {
        /// Root-relative path of the link.
        path: String,
        /// What it points to, verbatim.
        target: String,
        /// The reason, in words.
        why: String,
    },
    /// Make the SSH host keys: remove the image's (when asked), then
    /// generate the missing types in parallel or install the given ones.
    HostKeys {
        /// Key files to remove first.
        remove: Vec<String>,
        /// Types to generate.
        generate: Vec<crate::input::model::HostKeyType>,
        /// Size of a generated RSA key (4096 under the modern crypto policy).
        rsa_bits: usize,
        /// Key pairs from user-data to install instead of generating.
        provided: Vec<crate::input::model::ProvidedHostKey>,
        /// The comment in the `.pub` files (`root@HOSTNAME`).
        comment: String,
        /// The `ssh_keys` group where it exists (RHEL family).
        ssh_keys_gid: Option<u32>,
        /// Do not print fingerprints (`ssh_quiet_keygen`).
        quiet: bool,
    },
    /// Load the firewall files (live system) or check them (image).
    Firewall {
        /// nftables or iptables.
        kind: FirewallKind,
        /// Root-relative files, in the backend's order (nft; or v4, v6).
        files: Vec<String>,
        /// Ports that must be accepted once loaded, or the load is undone.
        ssh_ports: Vec<u16>,
    },
    /// Check that the daemon accepts the configuration now in place; when
    /// it does not, the run is rolled back.
    CheckConfig(crate::host::daemon::Daemon),
    /// Prove with `sshd -T` (Match blocks applied) that at least one of
    /// these accounts can log in with a key and none with a password; the
    /// run is rolled back otherwise (safety rule 1, on the effective config).
    ProveKeyLogin {
        /// (account, root-relative path of the key file batten wrote).
        accounts: Vec<(String, String)>,
    },
    /// Reload a running service so it reads its new configuration (live
    /// system only; a reload keeps existing sessions).
    Reload {
        /// The systemd unit.
        unit: String,
    },
    /// Load a sysctl file into the running kernel with `sysctl -p` (live
    /// system only: an image's kernel is not this one, and its boot loads
    /// the file). Keys the kernel lacks are reported, not fatal.
    LoadSysctl {
        /// Root-relative path of the file.
        path: String,
    },
    /// Start units now, without waiting for them (live system only): after
    /// `systemctl daemon-reload`, `systemctl start --no-block`. The enable
    /// links planned beside it take effect at the next boot; this is the
    /// `--now` of `systemctl enable --now` for the boot under way.
    StartUnits {
        /// The systemd units.
        units: Vec<String>,
        /// The reason, in words.
        why: String,
    },
    /// Make systemd read units whose drop-ins changed, and restart those
    /// that run (live system only): `systemctl daemon-reload`, then
    /// `systemctl try-restart --no-block`. A drop-in written beside a
    /// loaded unit means nothing to systemd until it reloads, and a timer
    /// keeps its old period until it is restarted; one that does not run
    /// yet reads the new one when it starts.
    RestartUnits {
        /// The systemd units.
        units: Vec<String>,
        /// The reason, in words.
        why: String,
    },
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Write {
                path,
                contents,
                owner,
                secret,
                check,
                ..
            } => {
                let mut d = f.debug_struct("Write");
                d.field("path", path)
                    .field("owner", owner)
                    .field("check", check);
                if *secret {
                    d.field(
                        "contents",
                        &format_args!("<secret, {} bytes>", contents.len()),
                    );
                } else {
                    d.field("contents", &String::from_utf8_lossy(contents));
                }
                d.finish()
            }
            Action::Accounts { steps } => f.debug_struct("Accounts").field("steps", steps).finish(),
            other => f.write_str(&other.summary()),
        }
    }
}

/// A command line as a shell would need it typed: words with spaces or
/// shell characters are single-quoted, so a printed plan is unambiguous.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./,=:@+%".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Action {
    /// A write of `contents` with `owner` to `path`, or `None` when the root
    /// already holds exactly that (bytes, owner and mode): the one way every
    /// module plans a whole-file write, so a converged root plans nothing.
    pub fn write_if_changed(
        root: &crate::host::root::Root,
        path: &str,
        contents: Vec<u8>,
        owner: Owner,
        secret: bool,
        why: &str,
    ) -> Result<Option<Action>, crate::host::root::RootError> {
        let before = root.read_with_owner(path)?;
        if before
            .as_ref()
            .is_some_and(|(b, o)| *b == contents && *o == owner)
        {
            return Ok(None);
        }
        Ok(Some(Action::Write {
            path: path.to_string(),
            contents,
            owner,
            before,
            secret,
            check: None,
            why: why.to_string(),
        }))
    }

    /// The one-line summary shown in plans, logs and the journal.
    pub fn summary(&self) -> String {
        match self {
            Action::Write {
                path, before, why, ..
            } => {
                let verb = if before.is_some() { "update" } else { "create" };
                format!("{verb} {path}: {why}")
            }
            Action::Accounts { steps } => format!(
                "accounts: {}",
                steps
                    .iter()
                    .map(AccountStep::summary)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Action::UserFile {
                path,
                user,
                before,
                why,
                ..
            } => {
                let verb = if before.is_some() { "update" } else { "create" };
                format!("{verb} {path} (owned by {user}): {why}")
            }
            Action::MakeHome { home, why, .. } => format!("make {home}: {why}"),
            Action::Remove { path, why } => format!("remove {path}: {why}"),
            Action::Scrub { path, why, .. } => {
                format!("rewrite {path} where its bytes lie: {why}")
            }
            Action::Symlink { path, target, why } => format!("link {path} -> {target}: {why}"),
            Action::HostKeys {
                remove,
                generate,
                provided,
                ..
            } => {
                let mut parts = Vec::new();
                if !remove.is_empty() {
                    parts.push(format!(
                        "remove the image's {} host key files",
                        remove.len()
                    ));
                }
                if !generate.is_empty() {
                    let names: Vec<&str> = generate.iter().map(|t| t.name()).collect();
                    parts.push(format!("generate {} host keys", names.join(", ")));
                }
                if !provided.is_empty() {
                    let names: Vec<&str> = provided.iter().map(|k| k.key_type.name()).collect();
                    parts.push(format!(
                        "install the {} host keys from user-data",
                        names.join(", ")
                    ));
                }
                parts.join("; ")
            }
            Action::Firewall { kind, files, .. } => format!(
                "load the {} firewall from {} (checked only for an image; undone unless SSH stays open)",
                kind.name(),
                files.join(" and ")
            ),
            Action::CheckConfig(d) => {
                format!("check the {0} configuration with {0} -t", d.program())
            }
            Action::ProveKeyLogin { accounts } => format!(
                "check the sshd configuration and prove with sshd -T that {} can log in with a key and nobody with a password",
                accounts
                    .iter()
                    .map(|(u, _)| u.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            Action::Reload { unit } => format!("reload {unit} if it is running"),
            Action::LoadSysctl { path } => {
                format!("load {path} into the running kernel (not for an image)")
            }
            Action::StartUnits { units, why } => {
                format!("start {} now (not for an image): {why}", units.join(" "))
            }
            Action::RestartUnits { units, why } => format!(
                "reload systemd and restart {} where it runs (not for an image): {why}",
                units.join(" ")
            ),
        }
    }
}

/// Everything one run would do, plus what it noticed on the way.
#[derive(Debug, Default)]
pub struct Plan {
    /// The changes, in the order they are applied.
    pub actions: Vec<Action>,
    /// Informational lines for the user (left to cloud-init, defaults taken).
    pub notes: Vec<String>,
}

fn owner_text(o: &Owner) -> String {
    format!("mode {:04o}, owner {}:{}", o.mode, o.uid, o.gid)
}

/// The `---`/`+++` labels of a file's diff.
fn labels(path: &str, old_attrs: Option<&str>, new_attrs: &str) -> (String, String) {
    let old = match old_attrs {
        Some(a) => format!("a{path}\t({a})"),
        None => "/dev/null".to_string(),
    };
    (old, format!("b{path}\t({new_attrs})"))
}

/// A unified diff of one file, with mode and owner in the labels.
fn diff(path: &str, old: Option<(&[u8], &str)>, new: &[u8], new_attrs: &str) -> String {
    let (old_label, new_label) = labels(path, old.map(|(_, a)| a), new_attrs);
    let old_text = old
        .map(|(b, _)| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let new_text = String::from_utf8_lossy(new);
    let text = similar::TextDiff::from_lines(old_text.as_str(), new_text.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&old_label, &new_label)
        .to_string();
    if text.is_empty() {
        format!("--- {old_label}\n+++ {new_label}\n@@ contents unchanged @@\n")
    } else if text.ends_with('\n') {
        text
    } else {
        format!("{text}\n")
    }
}

impl Plan {
    /// True when the root already matches the user-data.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// A unified diff of every file, then the commands, for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for note in &self.notes {
            let _ = writeln!(out, "# {note}");
        }
        if self.actions.is_empty() {
            out.push_str("# nothing to change: the root already matches the user-data\n");
            return out;
        }
        for action in &self.actions {
            match action {
                Action::Write {
                    path,
                    contents,
                    owner,
                    before,
                    secret,
                    why,
                    ..
                } => {
                    let _ = writeln!(out, "# {why}");
                    let old = before
                        .as_ref()
                        .map(|(bytes, o)| (bytes.as_slice(), owner_text(o)));
                    if *secret {
                        let (old_label, new_label) = labels(
                            path,
                            old.as_ref().map(|(_, l)| l.as_str()),
                            &owner_text(owner),
                        );
                        let _ = writeln!(out, "--- {old_label}\n+++ {new_label}");
                        let _ = writeln!(
                            out,
                            "@@ contents hidden: this file holds secrets ({} bytes) @@",
                            contents.len()
                        );
                    } else {
                        out.push_str(&diff(
                            path,
                            old.as_ref().map(|(b, l)| (*b, l.as_str())),
                            contents,
                            &owner_text(owner),
                        ));
                    }
                }
                Action::UserFile {
                    user,
                    path,
                    contents,
                    before,
                    why,
                    ..
                } => {
                    let _ = writeln!(out, "# {why}");
                    let attrs = format!("mode 0600, owner {user}");
                    let old = before.as_deref().map(|b| (b, attrs.as_str()));
                    out.push_str(&diff(path, old, contents, &attrs));
                }
                Action::MakeHome {
                    user,
                    home,
                    mode,
                    skel,
                    why,
                } => {
                    let from = skel
                        .as_deref()
                        .map_or(String::new(), |s| format!(", a copy of {s}"));
                    let _ = writeln!(
                        out,
                        "# {why}\n+ {home}/ (mode {mode:04o}, owner {user}{from})"
                    );
                }
                Action::Remove { path, why } => {
                    let _ = writeln!(out, "# {why}\n- {path} (kept in the run's backup)");
                }
                Action::Scrub { path, why, .. } => {
                    let _ = writeln!(
                        out,
                        "# {why}\n~ {path} (contents hidden; rewritten where its bytes lie, so no old byte stays on the device; kept in the run's backup)"
                    );
                }
                Action::Symlink { path, target, why } => {
                    let _ = writeln!(out, "# {why}\n+ {path} -> {target}");
                }
                action @ Action::HostKeys { .. } => {
                    let _ = writeln!(
                        out,
                        "# fresh host keys for this machine\n~ {}",
                        action.summary()
                    );
                }
                action @ Action::Firewall { .. } => {
                    let _ = writeln!(
                        out,
                        "# safety rule 2: SSH stays reachable\n~ {}",
                        action.summary()
                    );
                }
                action @ Action::ProveKeyLogin { .. } => {
                    let _ = writeln!(
                        out,
                        "# safety rule 1, on the effective configuration\n~ {}",
                        action.summary()
                    );
                }
                Action::CheckConfig(d) => {
                    let _ = writeln!(
                        out,
                        "# {0} must accept the new configuration, or the run is rolled back
$ {0} -t",
                        d.program()
                    );
                }
                Action::Reload { unit } => {
                    let _ = writeln!(
                        out,
                        "# a reload keeps existing SSH sessions\n$ systemctl reload {unit}   (only if it is running)"
                    );
                }
                Action::LoadSysctl { path } => {
                    let _ = writeln!(
                        out,
                        "# the running kernel takes the settings now; the boot loads them later\n$ sysctl -p {path}   (only on the running system)"
                    );
                }
                Action::StartUnits { units, why } => {
                    let _ = writeln!(
                        out,
                        "# {why}\n$ systemctl start --no-block {}   (only on the running system)",
                        units.join(" ")
                    );
                }
                Action::RestartUnits { units, why } => {
                    let _ = writeln!(
                        out,
                        "# {why}\n$ systemctl daemon-reload && systemctl try-restart --no-block {}   (only on the running system)",
                        units.join(" ")
                    );
                }
                Action::Accounts { steps } => {
                    let _ = writeln!(
                        out,
                        "# account files: the steps run on a copy, which then replaces them together"
                    );
                    for step in steps {
                        match step {
                            AccountStep::Run { argv, why } => {
                                let _ = writeln!(out, "# {why}\n$ {}", shell_words(argv));
                            }
                            AccountStep::SetPassword { user, why, .. } => {
                                let _ = writeln!(
                                    out,
                                    "# {why}\n~ /etc/shadow: password field of {user} (hidden)"
                                );
                            }
                            AccountStep::LockDefault { user, found, .. } => {
                                let _ = writeln!(
                                    out,
                                    "# {user}'s password was {found}: locked (keys still log in)\n~ /etc/shadow: password field of {user} (hidden)"
                                );
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT_0644: Owner = Owner {
        uid: 0,
        gid: 0,
        mode: 0o644,
    };

    #[test]
    fn diff_of_a_changed_file_and_a_new_one() {
        let plan = Plan {
            actions: vec![
                Action::Write {
                    path: "/etc/sudoers.d/90-cloud-init-users".into(),
                    contents: b"# one\nadmin ALL=(ALL) NOPASSWD:ALL\n".to_vec(),
                    owner: Owner {
                        mode: 0o440,
                        ..ROOT_0644
                    },
                    before: Some((b"# one\n".to_vec(), ROOT_0644)),
                    secret: false,
                    check: Some(Check::Visudo),
                    why: "sudo rules".into(),
                },
                Action::Write {
                    path: "/var/lib/batten/user-data".into(),
                    contents: b"passwd: x".to_vec(),
                    owner: Owner {
                        mode: 0o600,
                        ..ROOT_0644
                    },
                    before: None,
                    secret: true,
                    check: None,
                    why: "keep a copy".into(),
                },
                Action::Accounts {
                    steps: vec![
                        AccountStep::Run {
                            argv: vec!["useradd".into(), "admin".into()],
                            why: "create admin".into(),
                        },
                        AccountStep::SetPassword {
                            user: "admin".into(),
                            field: Secret("$6$x".into()),
                            why: "lock".into(),
                        },
                    ],
                },
            ],
            notes: vec!["runcmd is left to cloud-init".into()],
        };
        let text = plan.render();
        assert_eq!(
            text,
            "# runcmd is left to cloud-init\n\
             # sudo rules\n\
             --- a/etc/sudoers.d/90-cloud-init-users\t(mode 0644, owner 0:0)\n\
             +++ b/etc/sudoers.d/90-cloud-init-users\t(mode 0440, owner 0:0)\n\
             @@ -1 +1,2 @@\n\
             \x20# one\n\
             +admin ALL=(ALL) NOPASSWD:ALL\n\
             # keep a copy\n\
             --- /dev/null\n\
             +++ b/var/lib/batten/user-data\t(mode 0600, owner 0:0)\n\
             @@ contents hidden: this file holds secrets (9 bytes) @@\n\
             # account files: the steps run on a copy, which then replaces them together\n\
             # create admin\n\
             $ useradd admin\n\
             # lock\n\
             ~ /etc/shadow: password field of admin (hidden)\n"
        );
        assert!(!text.contains("$6$x"));
        assert!(!format!("{plan:?}").contains("$6$x"));
    }

    #[test]
    fn commands_are_printed_quoted() {
        let argv: Vec<String> = [
            "useradd",
            "--comment",
            "Ada Lovelace",
            "--shell",
            "/bin/bash",
            "it's",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            shell_words(&argv),
            "useradd --comment 'Ada Lovelace' --shell /bin/bash 'it'\\''s'"
        );
    }

    #[test]
    fn empty_plan_says_so() {
        assert!(Plan::default().render().contains("nothing to change"));
    }
}
