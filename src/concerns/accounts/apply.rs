//! The account files changed as one transaction.
//!
//! `useradd` and `groupadd` edit four to six files one after another
//! (passwd, shadow, group, gshadow, subuid, subgid). Killed between two of
//! them, they leave an account that is in `/etc/passwd` but has no line in
//! `/etc/gshadow`, and a later run that sees the account would take it as
//! made. So batten never lets them near the root's files: the steps run
//! with `--prefix` on a private copy, and the files that changed replace
//! the root's together, through a record (`accounts.pending`) written before
//! the first of them. A run killed half-way through the replacement finds
//! the record first thing next time and finishes the job; a run killed
//! before it left the root's files as they were.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use log::info;
use serde::{Deserialize, Serialize};

use crate::concerns::accounts::set_shadow_field;
use crate::host::exec::{Call, Runner};
use crate::host::root::{Backup, Owner, Root};
use crate::host::undo::UndoLog;
use crate::plan::{AccountStep, StepError};
use crate::state::{STATE_DIR, private_owner};

/// The files the steps change, in the order they are replaced: passwd last,
/// so an account never appears before its other lines.
const ACCOUNT_FILES: &[&str] = &[
    "/etc/subuid",
    "/etc/subgid",
    "/etc/group",
    "/etc/gshadow",
    "/etc/shadow",
    "/etc/passwd",
];

/// Settings the tools read from the root and never change.
const SETTINGS: &[&str] = &["/etc/login.defs", "/etc/default/useradd"];

/// The record of a replacement in progress.
pub const PENDING: &str = "/var/lib/batten/accounts.pending";

/// What `PENDING` holds: every file to replace, before and after.
#[derive(Serialize, Deserialize)]
struct Pending {
    files: Vec<PendingFile>,
}

#[derive(Serialize, Deserialize)]
struct PendingFile {
    path: String,
    /// Base64 of the bytes before; `None` when the file did not exist.
    before: Option<String>,
    /// Base64 of the bytes after.
    after: String,
    uid: u32,
    gid: u32,
    mode: u32,
}

/// The private copies live in batten's own directory (root only, 0700),
/// named with this prefix; copies a killed run left are removed by the next.
const STAGING_PREFIX: &str = "accounts.staging.";

/// A private directory for the copy, removed when dropped.
struct Staging(PathBuf);

impl Staging {
    fn new(root: &Root) -> Result<Staging, String> {
        let fail =
            |e: String| format!("cannot make a private directory for the account files: {e}");
        root.create_dir_all(STATE_DIR, private_owner(0o700))
            .map_err(|e| fail(e.to_string()))?;
        let template = root
            .host_path(STATE_DIR)
            .join(format!("{STAGING_PREFIX}XXXXXX"));
        nix::unistd::mkdtemp(&template)
            .map(Staging)
            .map_err(|e| fail(e.to_string()))
    }

    /// Remove the copies a killed run left behind.
    fn sweep(root: &Root) {
        let Ok(Some(names)) = root.list_dir(STATE_DIR) else {
            return;
        };
        for name in names.iter().filter(|n| n.starts_with(STAGING_PREFIX)) {
            // remove_dir_all does not follow links; the directory is root's.
            let _ = std::fs::remove_dir_all(root.host_path(STATE_DIR).join(name));
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel.trim_start_matches('/'))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run `steps` on a copy of the root's account files and replace the files
/// that changed. `Ok(true)` when something changed. Every file replaced is
/// added to `undo` as it is, so a failure can be rolled back.
pub fn apply(
    root: &Root,
    backup: &Backup,
    runner: &dyn Runner,
    steps: &[AccountStep],
    undo: &mut UndoLog,
) -> Result<bool, StepError> {
    let staging = Staging::new(root)?;
    let mut originals = Vec::new();
    for rel in ACCOUNT_FILES.iter().chain(SETTINGS) {
        let copy = staging.path(rel);
        std::fs::create_dir_all(copy.parent().unwrap_or(Path::new("/")))
            .map_err(|e| format!("cannot copy {rel}: {e}"))?;
        let found = root.read_with_owner(rel)?;
        if let Some((bytes, owner)) = &found {
            write_copy(&copy, bytes, *owner).map_err(|e| format!("cannot copy {rel}: {e}"))?;
        }
        if ACCOUNT_FILES.contains(rel) {
            originals.push((rel.to_string(), found));
        }
    }
    let prefix = staging.0.display().to_string();
    for step in steps {
        match step {
            AccountStep::Run { argv, .. } if natively(&staging, argv)? => {}
            AccountStep::Run { argv, .. } => {
                let mut args = vec!["--prefix", prefix.as_str()];
                args.extend(argv[1..].iter().map(String::as_str));
                let call = Call {
                    program: &argv[0],
                    args: &args,
                    stdin: None,
                };
                let ran = runner
                    .run(&call)
                    .map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
                if !ran.success {
                    return Err(format!(
                        "{} failed: {}{}; the account files were not changed",
                        crate::plan::shell_words(argv),
                        ran.stderr.replace(&prefix, ""),
                        full_disk_hint(root)
                    )
                    .into());
                }
            }
            AccountStep::SetPassword { user, field, .. }
            | AccountStep::LockDefault { user, field, .. } => {
                let shadow = staging.path("/etc/shadow");
                let text = std::fs::read_to_string(&shadow)
                    .map_err(|_| format!("there is no /etc/shadow to set {user}'s password in"))?;
                let new = set_shadow_field(&text, user, &field.0)
                    .ok_or_else(|| format!("{user} has no line in /etc/shadow"))?;
                std::fs::write(&shadow, new).map_err(|e| format!("cannot edit the copy: {e}"))?;
            }
        }
    }
    let mut files = Vec::new();
    for (rel, before) in &originals {
        // The tools' own backups (`passwd-`) go first, then the file.
        for name in [format!("{rel}-"), rel.clone()] {
            let copy = staging.path(&name);
            let Ok(meta) = std::fs::symlink_metadata(&copy) else {
                continue;
            };
            let after = std::fs::read(&copy).map_err(|e| format!("cannot read the copy: {e}"))?;
            let old = if &name == rel {
                before.as_ref().map(|(b, _)| b.clone())
            } else {
                root.read(&name)?
            };
            if old.as_deref() == Some(after.as_slice()) {
                continue;
            }
            use std::os::unix::fs::MetadataExt as _;
            files.push(PendingFile {
                path: name,
                before: old.map(|b| encode(&b)),
                after: encode(&after),
                uid: meta.uid(),
                gid: meta.gid(),
                mode: meta.mode() & 0o7777,
            });
        }
    }
    if files.is_empty() {
        return Ok(false);
    }
    let record = serde_json::to_vec_pretty(&Pending { files })
        .map_err(|e| format!("cannot record the account files: {e}"))?;
    root.create_dir_all(STATE_DIR, private_owner(0o700))
        .and_then(|()| root.write_atomic(PENDING, &record, private_owner(0o600), None))
        .map_err(|e| format!("cannot record the account files: {e}"))?;
    let pending: Pending =
        serde_json::from_slice(&record).map_err(|e| format!("cannot read back the record: {e}"))?;
    if let Err(e) = replace(root, Some(backup), &pending, undo) {
        // The caller rolls back what was replaced: the record must not
        // make the next run finish what this one undid.
        let _ = root.remove_file(PENDING, None);
        return Err(e);
    }
    Ok(true)
}

/// Do `useradd` or `groupadd` in the copy without starting it, as
/// [`super::native`] models them; false (and why, at debug level) when the
/// tool must run instead.
fn natively(staging: &Staging, argv: &[String]) -> Result<bool, StepError> {
    use super::native::{self, Defaults, Files};
    if !matches!(argv[0].as_str(), "useradd" | "groupadd") {
        return Ok(false);
    }
    let read = |rel: &str| std::fs::read_to_string(staging.path(rel)).ok();
    let (Some(login_defs), Some(passwd), Some(shadow), Some(group), Some(gshadow)) = (
        read("/etc/login.defs"),
        read("/etc/passwd"),
        read("/etc/shadow"),
        read("/etc/group"),
        read("/etc/gshadow"),
    ) else {
        log::debug!("{} runs: an account file or login.defs is missing", argv[0]);
        return Ok(false);
    };
    let mut files = Files {
        passwd,
        shadow,
        group,
        gshadow,
        subuid: read("/etc/subuid"),
        subgid: read("/etc/subgid"),
    };
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86400);
    let done =
        Defaults::read(&login_defs, read("/etc/default/useradd").as_deref()).and_then(|defaults| {
            match argv[0].as_str() {
                "groupadd" => native::groupadd(&mut files, &defaults, argv),
                _ => native::useradd(&mut files, &defaults, argv, today),
            }
        });
    if let Err(native::NotModelled(why)) = done {
        log::debug!("{} runs: {why}", argv[0]);
        return Ok(false);
    }
    let write = |rel: &str, text: &str| {
        std::fs::write(staging.path(rel), text)
            .map_err(|e| format!("cannot edit the copy of {rel}: {e}"))
    };
    write("/etc/passwd", &files.passwd)?;
    write("/etc/shadow", &files.shadow)?;
    write("/etc/group", &files.group)?;
    write("/etc/gshadow", &files.gshadow)?;
    if let Some(text) = &files.subuid {
        write("/etc/subuid", text)?;
    }
    if let Some(text) = &files.subgid {
        write("/etc/subgid", text)?;
    }
    Ok(true)
}

/// Finish a replacement a killed run left half done, before anything reads
/// the account files. `Ok(false)` when there is none. A file that is
/// neither as it was nor as it should become (someone edited it since) is
/// not touched: the error says so, and the record stays for a person.
pub fn finish_pending(root: &Root, backup: &Backup) -> Result<bool, StepError> {
    Staging::sweep(root);
    let Some(record) = root.read(PENDING)? else {
        return Ok(false);
    };
    let shown = root.host_path(PENDING).display().to_string();
    let pending: Pending = serde_json::from_slice(&record).map_err(|e| {
        format!(
            "{shown} is damaged ({e}); compare the account files with it by hand, then remove it"
        )
    })?;
    for file in &pending.files {
        let now = root.read(&file.path)?;
        let now = now.as_deref().map(encode);
        if now.as_deref() != Some(file.after.as_str()) && now != file.before {
            return Err(format!(
                "{} changed since an interrupted run recorded its account changes in {shown}; check the account files, then remove {shown} and run again",
                root.host_path(&file.path).display()
            ).into());
        }
    }
    info!("finishing the account changes an interrupted run left in {shown}");
    replace(root, Some(backup), &pending, &mut UndoLog::new())?;
    Ok(true)
}

/// Write every file of the record, then remove the record.
fn replace(
    root: &Root,
    backup: Option<&Backup>,
    pending: &Pending,
    undo: &mut UndoLog,
) -> Result<(), StepError> {
    for file in &pending.files {
        let after = decode(&file.after)?;
        let owner = Owner {
            uid: file.uid,
            gid: file.gid,
            mode: file.mode,
        };
        let before = root.read_with_owner(&file.path)?;
        if root.write_atomic(&file.path, &after, owner, backup)? {
            undo.file(&file.path, before);
        }
    }
    root.remove_file(PENDING, None)
        .map_err(|e| format!("the account files were replaced, but the record stays: {e}"))?;
    Ok(())
}

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("the record of account changes is damaged: {e}"))
}

/// Writes the private copy of a file with the root's owner and mode, so
/// the files the tools write beside it inherit them.
fn write_copy(path: &Path, bytes: &[u8], owner: Owner) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, bytes)?;
    std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(owner.mode))
}

/// useradd says only "failure while writing changes" when the disk is
/// full; name the cause when the file system of batten's state directory,
/// which holds the private copy, has no room (as the space check counts it).
fn full_disk_hint(root: &Root) -> String {
    match root.free_space(crate::state::STATE_DIR) {
        Ok((_, free)) if free < 64 * 1024 => format!(
            " (No space left on device: the file system holding {} is full)",
            root.host_path(crate::state::STATE_DIR).display()
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    fn record(root: &Root, before: &str, after: &str) {
        let pending = Pending {
            files: vec![PendingFile {
                path: "/etc/group".into(),
                before: Some(encode(before.as_bytes())),
                after: encode(after.as_bytes()),
                uid: nix::unistd::geteuid().as_raw(),
                gid: nix::unistd::getegid().as_raw(),
                mode: 0o644,
            }],
        };
        root.create_dir_all(STATE_DIR, private_owner(0o700))
            .unwrap();
        root.write_atomic(
            PENDING,
            &serde_json::to_vec(&pending).unwrap(),
            private_owner(0o600),
            None,
        )
        .unwrap();
    }

    #[test]
    fn a_half_done_replacement_is_finished_and_its_record_removed() {
        let (_dir, root) = scratch_root(&[("/etc/group", "adm:x:4:\n")]);
        record(&root, "adm:x:4:\n", "adm:x:4:\nadmin:x:1000:\n");
        let backup = Backup::new("test-run");
        assert!(finish_pending(&root, &backup).unwrap());
        assert_eq!(
            root.read_to_string("/etc/group").unwrap().unwrap(),
            "adm:x:4:\nadmin:x:1000:\n"
        );
        assert_eq!(root.read(PENDING).unwrap(), None);
        assert!(
            !finish_pending(&root, &backup).unwrap(),
            "nothing left to do"
        );
    }

    #[test]
    fn a_file_edited_since_is_left_alone_with_the_record() {
        let (_dir, root) = scratch_root(&[("/etc/group", "adm:x:4:edited\n")]);
        record(&root, "adm:x:4:\n", "adm:x:4:\nadmin:x:1000:\n");
        let e = finish_pending(&root, &Backup::new("test-run"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("changed since an interrupted run"), "{e}");
        assert_eq!(
            root.read_to_string("/etc/group").unwrap().unwrap(),
            "adm:x:4:edited\n"
        );
        assert!(root.read(PENDING).unwrap().is_some());
    }
}
