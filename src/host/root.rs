//! The rooted filesystem: every file batten reads or writes goes through here.
//!
//! batten works on a *root*: the live system (`/`), an image mounted for
//! baking, or a rescue mount (`--root DIR`). Two things must never happen,
//! whatever the files under that root contain (safety rule 4 of the design):
//!
//! - batten touches a file outside the root, and
//! - batten follows a symbolic link that someone planted, for example a user
//!   who points `~/.ssh/authorized_keys` at `/etc/shadow` and waits for root
//!   to write through it.
//!
//! Path strings cannot give that guarantee: between checking a path and
//! opening it, any component can be swapped for a link. So [`Root`] holds a
//! directory handle for the root and walks every path from that handle one
//! component at a time with `openat(O_NOFOLLOW)`. A symbolic link anywhere in
//! a path is refused with an error that says where it is, `..` is never
//! resolved, and nothing is looked up by absolute path. The only place links
//! are followed is [`Root::read_following_within`], which resolves them by
//! hand, clamped to the root, for read-only use on files such as
//! `/etc/os-release` that distributions ship as links.
//!
//! Writes are atomic (temporary file in the same directory, fsync, rename,
//! fsync of the directory) so that a machine that loses power at first boot
//! never has a half-written `sshd_config`, and every replaced or removed file
//! can be kept under `/var/lib/batten/backup/<run>/` inside the same root.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, getegid, geteuid, symlinkat, unlinkat};

/// How many symbolic links [`Root::read_following_within`] follows before it
/// gives up. The kernel allows 40; 16 is plenty for real distribution links
/// and stops a loop quickly.
const MAX_LINK_HOPS: usize = 16;

/// Where backups live inside the root. Fixed by the design so that an
/// administrator knows where to look after a run.
const BACKUP_BASE: &str = "/var/lib/batten/backup";

/// How many temporary names to try before giving up. A name can only be
/// taken if an earlier run was killed between creating and renaming it.
const TEMP_NAME_ATTEMPTS: u32 = 100;

/// Counter that makes temporary names unique within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Everything that can go wrong inside the root.
///
/// Paths in these errors are root-relative ("/etc/ssh/sshd_config"), which is
/// how the user-data and the plan talk about files; the caller knows the root
/// and adds it where that helps.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    /// The path given by the caller is not a plain root-relative path.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The text as the caller gave it: a path, a backup run name or a link
        /// target.
        path: String,
        /// Which rule it breaks, worded to follow a colon.
        reason: String,
    },

    /// A symbolic link was found where batten would have had to follow it.
    #[error(
        "{link} is a symbolic link (met while accessing {path}); batten does not follow \
         symbolic links inside the root, so that a planted link cannot redirect what it \
         reads or writes; remove the link or replace it with the real file or directory, \
         then run batten again"
    )]
    SymlinkRefused {
        /// The path batten was accessing.
        path: String,
        /// The component that is a link; may be `path` itself.
        link: String,
    },

    /// The directory batten would write into may be written by other users.
    #[error(
        "{path}: the directory {dir} has mode {mode:04o}, so users other than its owner \
         can change entries in it; remove group and other write permission (chmod go-w) \
         and run batten again"
    )]
    WritableByOthers {
        /// The file batten would write.
        path: String,
        /// Its directory, root-relative.
        dir: String,
        /// The directory's permission bits, shown in octal.
        mode: u32,
    },

    /// The directory batten would write into belongs to an ordinary user who
    /// is not the owner of the new file, so that user could swap entries in
    /// it while batten works.
    #[error(
        "{path}: the directory {dir} is owned by uid {dir_uid}, but the file would be owned \
         by uid {uid}; batten writes into a directory only when it belongs to root or to \
         the new file's owner, because anyone else could swap its entries underneath; \
         change the directory's owner or write the file as uid {dir_uid}"
    )]
    OwnedByOtherUser {
        /// The file batten would write.
        path: String,
        /// Its directory, root-relative.
        dir: String,
        /// Who owns the directory.
        dir_uid: u32,
        /// Who would own the new file.
        uid: u32,
    },

    /// A component that must be a directory is something else.
    #[error(
        "{component} is not a directory (met while accessing {path}); move it out of the \
         way or fix the path, then run batten again"
    )]
    NotADirectory {
        /// The path batten was accessing.
        path: String,
        /// The leading part of `path` that is not a directory.
        component: String,
    },

    /// The file is a directory, device, socket or FIFO where a regular file
    /// was expected.
    #[error(
        "{path} is {kind}, not a regular file; batten only reads and replaces regular files \
         here; move it out of the way, then run batten again"
    )]
    NotARegularFile {
        /// The path batten was to read or replace.
        path: String,
        /// What it is instead.
        kind: FileKind,
    },

    /// A file in a user's home that batten reads and rewrites has a second
    /// name, or belongs to somebody else: it may be another file (such as
    /// /etc/shadow) under a name the user controls, and its text would end
    /// up in the rewritten file.
    #[error(
        "{path} {why}, so batten will not read it into the file it writes; remove it \
         (batten writes a new one), then run batten again"
    )]
    NotTheUsersFile {
        /// The file in the home.
        path: String,
        /// What is wrong with it.
        why: String,
    },

    /// The directory of a file to be written does not exist. Writing never
    /// creates directories implicitly, because their owner and mode matter.
    #[error(
        "{path}: the directory {parent} does not exist; create it first with \
         Root::create_dir_all (choosing its owner and mode), then write the file"
    )]
    ParentMissing {
        /// The file batten was to write.
        path: String,
        /// Its directory; it, or a directory above it, does not exist.
        parent: String,
    },

    /// A text file that batten must parse or edit is not UTF-8.
    #[error(
        "{path} is not valid UTF-8 text; batten only edits UTF-8 text files; convert it to \
         UTF-8 (for example with iconv) or remove it, then run batten again"
    )]
    NotUtf8 {
        /// The file batten was to parse or edit.
        path: String,
    },

    /// A directory holds a name that is not UTF-8, so it cannot be reported
    /// or matched reliably.
    #[error(
        "{path} contains an entry whose name is not valid UTF-8; rename or remove that \
         entry, then run batten again"
    )]
    NonUtf8Name {
        /// The directory holding the entry.
        path: String,
    },

    /// A symbolic link's target is not UTF-8, so it cannot be resolved
    /// component by component.
    #[error(
        "{path} is a symbolic link whose target is not valid UTF-8; replace it with a link \
         to a UTF-8 path or with the real file"
    )]
    NonUtf8LinkTarget {
        /// Root-relative path of the link.
        path: String,
    },

    /// Too many links while resolving a path, most likely a loop.
    #[error(
        "{path}: more than {MAX_LINK_HOPS} symbolic links while resolving it inside the \
         root (a loop?); fix the links, then run batten again"
    )]
    TooManyLinks {
        /// The path being resolved.
        path: String,
    },

    /// The root directory itself could not be opened.
    #[error(
        "cannot open the root directory {root}: {source}; --root must name an existing \
         directory (a mounted image, a rescue mount, or /)"
    )]
    OpenRoot {
        /// The directory meant as the root, a host path.
        root: PathBuf,
        /// Why the kernel refused.
        #[source]
        source: io::Error,
    },

    /// Any other system call failure, with what batten was doing.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        /// The path the call was about, root-relative.
        path: String,
        /// What batten was doing, as a verb phrase such as `open directory`.
        action: &'static str,
        /// The system call's error.
        #[source]
        source: io::Error,
    },
}

/// Ownership and mode for a file or directory batten writes.
///
/// Passed explicitly on every write because the design requires files in a
/// user's home to be created as that user's, and secrets to be 0600.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Numeric user id, taken from the root's own `/etc/passwd`, never NSS.
    pub uid: u32,
    /// Numeric group id, taken from the root's own `/etc/group`.
    pub gid: u32,
    /// Permission bits (`0o7777` is the largest meaningful value).
    pub mode: u32,
}

/// What kind of object a path names, without following links, so callers can
/// tell a planted link from the real file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// A device, socket or FIFO.
    Other,
}

impl fmt::Display for FileKind {
    /// Words for error messages ("… is a directory, not a regular file").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = match self {
            FileKind::File => "a regular file",
            FileKind::Dir => "a directory",
            FileKind::Symlink => "a symbolic link",
            FileKind::Other => "a special file (device, socket or FIFO)",
        };
        f.write_str(words)
    }
}

/// The facts about a file that planning and verification compare: what it
/// is, who owns it and its permission bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// Kind of the last component itself (lstat semantics).
    pub kind: FileKind,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Permission bits only (`st_mode & 0o7777`).
    pub mode: u32,
    /// Size in bytes (for a link, the length of its target).
    pub len: u64,
    /// How many names the file has (`st_nlink`).
    pub links: u64,
}

impl FileMeta {
    /// Owner and mode as a write would set them.
    pub fn owner(&self) -> Owner {
        Owner {
            uid: self.uid,
            gid: self.gid,
            mode: self.mode,
        }
    }
}

/// Where replaced files are kept: `<root>/var/lib/batten/backup/<run>/<original path>`.
///
/// One `Backup` per run, so that an administrator can put back exactly what
/// a given run changed. The first copy of a path in a run is kept: it is the
/// file as it was before batten touched it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    run: String,
}

impl Backup {
    /// A backup area for the run called `run` (one path component, such as a
    /// timestamp). The name is checked when the first file is saved.
    pub fn new(run: &str) -> Backup {
        Backup {
            run: run.to_string(),
        }
    }

    /// The run name, for the journal and for messages.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// The root-relative directory holding this run's backups.
    pub fn dir(&self) -> String {
        format!("{}/{}", BACKUP_BASE, self.run)
    }

    /// Root-relative path of the backup copy of `path` (a shown path such as
    /// "/etc/foo").
    fn path_for(&self, shown: &str) -> Result<String, RootError> {
        let run = self.run.as_str();
        if run.is_empty() || run == "." || run == ".." || run.contains('/') || run.contains('\0') {
            return Err(RootError::InvalidPath {
                path: run.to_string(),
                reason: "a backup run name must be a single, non-empty path component".to_string(),
            });
        }
        Ok(format!("{}{}", self.dir(), shown))
    }
}

/// A handle on the root directory that every file operation starts from.
///
/// Holding the directory open (rather than its path) means a rename or a
/// link planted above the root cannot move batten somewhere else mid-run.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    dir: OwnedFd,
    host: bool,
}

/// A caller's path after checking: its components and how to show it.
struct RelPath<'a> {
    comps: Vec<&'a str>,
    shown: String,
}

impl<'a> RelPath<'a> {
    /// Checks a root-relative path. `..`, `.`, empty components and NUL are
    /// refused rather than resolved: batten's own paths never need them, and
    /// resolving `..` is how a path leaves a root.
    fn parse(rel: &'a str) -> Result<RelPath<'a>, RootError> {
        let invalid = |reason: &str| RootError::InvalidPath {
            path: rel.to_string(),
            reason: reason.to_string(),
        };
        if rel.contains('\0') {
            return Err(invalid("it contains a NUL byte"));
        }
        let trimmed = rel.strip_prefix('/').unwrap_or(rel);
        let mut comps = Vec::new();
        if !trimmed.is_empty() {
            for comp in trimmed.split('/') {
                match comp {
                    "" => {
                        return Err(invalid(
                            "it has an empty component (a doubled or trailing '/')",
                        ));
                    }
                    "." => {
                        return Err(invalid("it has a '.' component; write the path without it"));
                    }
                    ".." => {
                        return Err(invalid(
                            "it has a '..' component; batten never resolves '..' inside the root",
                        ));
                    }
                    _ => comps.push(comp),
                }
            }
        }
        let shown = show(&comps);
        Ok(RelPath { comps, shown })
    }

    /// Splits into the parent directory's components and the final name, for
    /// operations that need a file rather than the root itself.
    fn split_last(&self) -> Result<(&[&'a str], &'a str), RootError> {
        match self.comps.split_last() {
            Some((name, parents)) => Ok((parents, *name)),
            None => Err(RootError::InvalidPath {
                path: self.shown.clone(),
                reason: "it names the root directory itself; give the path of a file inside it"
                    .to_string(),
            }),
        }
    }
}

/// The root-relative form of some components: "/" + joined.
fn show<S: AsRef<str>>(comps: &[S]) -> String {
    let mut out = String::new();
    for comp in comps {
        out.push('/');
        out.push_str(comp.as_ref());
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// `show` for a directory plus one name inside it.
fn show_child<S: AsRef<str>>(parents: &[S], name: &str) -> String {
    let mut out = show(parents);
    if !out.ends_with('/') {
        out.push('/');
    }
    out.push_str(name);
    out
}

/// Wraps a system call failure with the path and what batten was doing.
fn io_error(path: &str, action: &'static str, err: impl Into<io::Error>) -> RootError {
    RootError::Io {
        path: path.to_string(),
        action,
        source: err.into(),
    }
}

/// Flags for walking one directory component: a handle that can only be used
/// as a starting point for further `*at` calls, refusing links.
fn walk_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Flags for reading a regular file: no link following, no blocking on a
/// FIFO swapped in at the last moment, no controlling terminal from a device.
fn read_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC
}

/// Turns a stat result into the fields callers compare.
fn meta_from_stat(st: &FileStat) -> FileMeta {
    let fmt = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let kind = if fmt == SFlag::S_IFREG {
        FileKind::File
    } else if fmt == SFlag::S_IFDIR {
        FileKind::Dir
    } else if fmt == SFlag::S_IFLNK {
        FileKind::Symlink
    } else {
        FileKind::Other
    };
    FileMeta {
        kind,
        uid: st.st_uid,
        gid: st.st_gid,
        mode: st.st_mode & 0o7777,
        len: u64::try_from(st.st_size).unwrap_or(0),
        // nlink_t is 64 bits on x86_64 and 32 on the ARM targets.
        #[allow(clippy::useless_conversion)]
        links: u64::from(st.st_nlink),
    }
}

/// lstat of `name` in `dir`; `None` when it does not exist.
fn lstat_at(dir: BorrowedFd<'_>, name: &str, shown: &str) -> Result<Option<FileMeta>, RootError> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(meta_from_stat(&st))),
        Err(Errno::ENOENT) => Ok(None),
        Err(err) => Err(io_error(shown, "inspect", err)),
    }
}

/// The error for a component that `openat(O_DIRECTORY|O_NOFOLLOW)` would not
/// open as a directory: a link (refused) or something that is not a
/// directory.
fn refuse_component(dir: BorrowedFd<'_>, name: &str, component: String, path: &str) -> RootError {
    let is_link = matches!(
        lstat_at(dir, name, &component),
        Ok(Some(FileMeta {
            kind: FileKind::Symlink,
            ..
        }))
    );
    if is_link {
        RootError::SymlinkRefused {
            path: path.to_string(),
            link: component,
        }
    } else {
        RootError::NotADirectory {
            path: path.to_string(),
            component,
        }
    }
}

/// Refuses to write into a directory owned by a user other than root or the
/// new entry's owner: that user could rename or replace entries while batten
/// works in it.
fn check_dir_owner(
    dir: BorrowedFd<'_>,
    dir_shown: &str,
    path: &str,
    uid: u32,
) -> Result<(), RootError> {
    let st = fstat(dir).map_err(|err| io_error(dir_shown, "inspect directory", err))?;
    // Anyone who may write the directory (without the sticky bit) could
    // rename another file over the one batten just put there.
    if st.st_mode & 0o022 != 0 && st.st_mode & 0o1000 == 0 {
        return Err(RootError::WritableByOthers {
            path: path.to_string(),
            dir: dir_shown.to_string(),
            mode: st.st_mode & 0o7777,
        });
    }
    if st.st_uid != 0 && st.st_uid != uid {
        return Err(RootError::OwnedByOtherUser {
            path: path.to_string(),
            dir: dir_shown.to_string(),
            dir_uid: st.st_uid,
            uid,
        });
    }
    Ok(())
}

/// Sets owner and mode through an open handle. The owner is changed only when
/// it differs, so that unprivileged tests can write files as themselves; the
/// mode is set after the owner because chown clears set-id bits.
fn apply_owner(fd: BorrowedFd<'_>, owner: Owner, shown: &str) -> Result<(), RootError> {
    let st = fstat(fd).map_err(|err| io_error(shown, "inspect", err))?;
    if st.st_uid != owner.uid || st.st_gid != owner.gid {
        fchown(
            fd,
            Some(Uid::from_raw(owner.uid)),
            Some(Gid::from_raw(owner.gid)),
        )
        .map_err(|err| io_error(shown, "change owner", err))?;
    }
    fchmod(fd, Mode::from_bits_truncate(owner.mode & 0o7777))
        .map_err(|err| io_error(shown, "change mode", err))?;
    Ok(())
}

/// Flushes a directory so that a rename or unlink in it survives a crash.
/// The walking handles are `O_PATH`, which cannot be fsynced, so this opens
/// the same directory for reading through `.`.
fn sync_dir(dir: BorrowedFd<'_>, shown: &str) -> Result<(), RootError> {
    let fd = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| io_error(shown, "open directory to flush it", err))?;
    File::from(fd)
        .sync_all()
        .map_err(|err| io_error(shown, "flush directory", err))
}

/// A fresh name for a temporary entry next to `name`: hidden, recognisable
/// as batten's, and unique across processes and across boots (the pid alone
/// repeats from boot to boot this early).
fn temp_name(name: &str) -> String {
    let count = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}{}-{}-{}",
        temp_prefix(name),
        std::process::id(),
        count,
        nanos
    )
}

/// The part of every temporary name for `name` that does not change from
/// one process to the next.
fn temp_prefix(name: &str) -> String {
    let mut end = name.len().min(200);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!(".{}.batten-", &name[..end])
}

/// Removes temporary entries for `name` that an earlier batten left behind
/// when it was killed between creating and renaming them. Only entries of
/// other processes are touched (the run lock keeps other runs out), and only
/// files and links: temporary directories are swept where directories are
/// made (`make_dir_whole`, `make_home`).
fn sweep_stale_temps(dir: BorrowedFd<'_>, name: &str) {
    let ours = format!("{}{}-", temp_prefix(name), std::process::id());
    let stale: Vec<String> = temps_of(dir, name)
        .into_iter()
        .filter(|entry| !entry.starts_with(&ours))
        .collect();
    for entry in stale {
        if let Ok(Some(meta)) = lstat_at(dir, &entry, &entry)
            && matches!(meta.kind, FileKind::File | FileKind::Symlink)
            && unlinkat(dir, entry.as_str(), UnlinkatFlags::NoRemoveDir).is_ok()
        {
            log::info!("removed {entry}, left by an interrupted run");
        }
    }
}

/// Reads the regular file `name` in `dir` with its metadata; `None` when it
/// does not exist. Links and non-regular files are refused; the type is
/// checked before opening (so that no device is ever opened) and again on the
/// open handle (in case it was swapped).
fn read_at(
    dir: BorrowedFd<'_>,
    name: &str,
    shown: &str,
) -> Result<Option<(Vec<u8>, FileMeta)>, RootError> {
    let Some(meta) = lstat_at(dir, name, shown)? else {
        return Ok(None);
    };
    match meta.kind {
        FileKind::File => {}
        FileKind::Symlink => {
            return Err(RootError::SymlinkRefused {
                path: shown.to_string(),
                link: shown.to_string(),
            });
        }
        kind => {
            return Err(RootError::NotARegularFile {
                path: shown.to_string(),
                kind,
            });
        }
    }
    let fd = match openat(dir, name, read_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => {
            return Err(RootError::SymlinkRefused {
                path: shown.to_string(),
                link: shown.to_string(),
            });
        }
        Err(err) => return Err(io_error(shown, "open", err)),
    };
    let st = fstat(fd.as_fd()).map_err(|err| io_error(shown, "inspect", err))?;
    let meta = meta_from_stat(&st);
    if meta.kind != FileKind::File {
        return Err(RootError::NotARegularFile {
            path: shown.to_string(),
            kind: meta.kind,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len).unwrap_or(0));
    File::from(fd)
        .read_to_end(&mut bytes)
        .map_err(|err| io_error(shown, "read", err))?;
    Ok(Some((bytes, meta)))
}

/// Reads a link's target as UTF-8 text.
fn read_link_at(dir: BorrowedFd<'_>, name: &str, shown: &str) -> Result<String, RootError> {
    let target = readlinkat(dir, name).map_err(|err| io_error(shown, "read symbolic link", err))?;
    target
        .into_string()
        .map_err(|_| RootError::NonUtf8LinkTarget {
            path: shown.to_string(),
        })
}

#[cfg(test)]
thread_local! {
    /// Makes the next write or link replacement fail just before its rename,
    /// so tests can prove the temporary entry is removed on error.
    static FAIL_BEFORE_RENAME: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Test hook: an injected failure, or nothing in normal builds.
fn injected_failure(shown: &str) -> Result<(), RootError> {
    #[cfg(test)]
    {
        if FAIL_BEFORE_RENAME.with(|flag| flag.replace(false)) {
            return Err(io_error(
                shown,
                "rename the temporary file into place",
                io::Error::other("failure injected by a test"),
            ));
        }
    }
    let _ = shown;
    Ok(())
}

impl Root {
    /// Opens the root directory. `path` must be an existing directory; it may
    /// itself be reached through links (the administrator chose it), but
    /// nothing below it will be.
    pub fn open(path: &Path) -> Result<Root, RootError> {
        let dir = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|err| RootError::OpenRoot {
            root: path.to_path_buf(),
            source: err.into(),
        })?;
        let host = std::fs::canonicalize(path)
            .map(|canonical| canonical == Path::new("/"))
            .unwrap_or(false);
        Ok(Root {
            path: path.to_path_buf(),
            dir,
            host,
        })
    }

    /// Put back the previous version of `rel` by moving this run's backup
    /// copy of it into place. A rename needs no free space, so a roll-back
    /// after the disk filled up still works. `Ok(false)` when there is no
    /// copy holding exactly `contents`, or it is on another file system;
    /// the caller then writes the contents instead.
    pub fn restore_backup_copy(
        &self,
        rel: &str,
        backup: &Backup,
        contents: &[u8],
        owner: Owner,
    ) -> Result<bool, RootError> {
        let path = RelPath::parse(rel)?;
        let copy_rel = backup.path_for(&path.shown)?;
        let copy = RelPath::parse(&copy_rel)?;
        let (copy_parents, copy_name) = copy.split_last()?;
        let Some(copy_dir) = self.open_dir(copy_parents, &copy.shown)? else {
            return Ok(false);
        };
        match read_at(copy_dir.as_fd(), copy_name, &copy.shown)? {
            Some((bytes, _)) if bytes == contents => {}
            _ => return Ok(false),
        }
        let copied = fstatat(copy_dir.as_fd(), copy_name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|err| io_error(&copy.shown, "inspect", err))?;
        let (_, name) = path.split_last()?;
        let (dir, _) = self.open_parent(&path)?;
        match renameat(copy_dir.as_fd(), copy_name, dir.as_fd(), name) {
            Ok(()) => {}
            Err(Errno::EXDEV) => return Ok(false),
            Err(err) => return Err(io_error(&path.shown, "move the backup copy back to", err)),
        }
        sync_dir(dir.as_fd(), &path.shown)?;
        // Owner and mode go on the file just moved, and only if it is still
        // that file: in a directory others can write to, the name may have
        // been swapped since.
        let fd = openat(dir.as_fd(), name, read_flags(), Mode::empty())
            .map_err(|err| io_error(&path.shown, "open", err))?;
        let st = fstat(fd.as_fd()).map_err(|err| io_error(&path.shown, "inspect", err))?;
        if (st.st_dev, st.st_ino) != (copied.st_dev, copied.st_ino) {
            return Err(RootError::NotTheUsersFile {
                path: path.shown,
                why: "was replaced while batten put the previous version back".to_string(),
            });
        }
        apply_owner(fd.as_fd(), owner, &path.shown)?;
        Ok(true)
    }

    /// The file system holding the directory `rel` (or the nearest one
    /// above it that exists): its device and the bytes batten may still
    /// write there (for root, the blocks kept for root count too), for the
    /// run's space check.
    pub fn free_space(&self, rel: &str) -> Result<(u64, u64), RootError> {
        let path = RelPath::parse(rel)?;
        let mut comps: Vec<&str> = path.comps.clone();
        loop {
            if let Some(dir) = self.open_dir(&comps, &path.shown)? {
                let st = nix::sys::statvfs::fstatvfs(&dir)
                    .map_err(|err| io_error(&path.shown, "inspect the file system of", err))?;
                let device = fstat(dir.as_fd())
                    .map_err(|err| io_error(&path.shown, "inspect", err))?
                    .st_dev;
                // The fields are 32 bits on the 32-bit ARM target.
                #[allow(clippy::useless_conversion)]
                let (block, blocks) = (
                    u64::from(st.fragment_size()).max(1),
                    if geteuid().is_root() {
                        u64::from(st.blocks_free())
                    } else {
                        u64::from(st.blocks_available())
                    },
                );
                #[allow(clippy::useless_conversion)]
                return Ok((u64::from(device), blocks.saturating_mul(block)));
            }
            if comps.pop().is_none() {
                return Ok((0, u64::MAX));
            }
        }
    }

    /// The root as given, for messages and for external programs that need a
    /// path (`sshd -t -f`, `nginx -t -p`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the root is the running system, which decides if services may
    /// be reloaded and rules loaded into the kernel.
    pub fn is_host(&self) -> bool {
        self.host
    }

    /// The host path of a root-relative path, for messages and external
    /// commands only: batten's own I/O never goes through it.
    pub fn host_path(&self, rel: &str) -> PathBuf {
        self.path.join(rel.trim_start_matches('/'))
    }

    /// Walks `comps` from the root as directories, refusing links; `None` when
    /// a component is missing. `path` is the caller's full path, for errors.
    fn open_dir<S: AsRef<str>>(
        &self,
        comps: &[S],
        path: &str,
    ) -> Result<Option<OwnedFd>, RootError> {
        let mut cur = self
            .dir
            .try_clone()
            .map_err(|err| io_error(path, "duplicate the root directory handle", err))?;
        for (i, comp) in comps.iter().enumerate() {
            let name = comp.as_ref();
            match openat(cur.as_fd(), name, walk_flags(), Mode::empty()) {
                Ok(fd) => cur = fd,
                Err(Errno::ENOENT) => return Ok(None),
                Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {
                    return Err(refuse_component(
                        cur.as_fd(),
                        name,
                        show(&comps[..=i]),
                        path,
                    ));
                }
                Err(err) => return Err(io_error(&show(&comps[..=i]), "open directory", err)),
            }
        }
        Ok(Some(cur))
    }

    /// The directory `path` goes in, which must exist, and its name for
    /// messages.
    fn open_parent(&self, path: &RelPath) -> Result<(OwnedFd, String), RootError> {
        let (parents, _) = path.split_last()?;
        let parent_shown = show(parents);
        match self.open_dir(parents, &path.shown)? {
            Some(dir) => Ok((dir, parent_shown)),
            None => Err(RootError::ParentMissing {
                path: path.shown.clone(),
                parent: parent_shown,
            }),
        }
    }

    /// A regular file's bytes and what fstat says of it, from one handle;
    /// `None` when it (or a directory above it) does not exist. A link
    /// anywhere in the path is an error.
    fn read_meta(&self, rel: &str) -> Result<Option<(Vec<u8>, FileMeta)>, RootError> {
        let path = RelPath::parse(rel)?;
        let (parents, name) = path.split_last()?;
        let Some(dir) = self.open_dir(parents, &path.shown)? else {
            return Ok(None);
        };
        read_at(dir.as_fd(), name, &path.shown)
    }

    /// The contents of a regular file; `None` when it (or a directory above
    /// it) does not exist. A link anywhere in the path is an error.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, RootError> {
        Ok(self.read_meta(rel)?.map(|(bytes, _)| bytes))
    }

    /// Like [`Root::read`], with the file's owner and mode from the same
    /// open handle (no window between looking and reading).
    pub fn read_with_owner(&self, rel: &str) -> Result<Option<(Vec<u8>, Owner)>, RootError> {
        Ok(self
            .read_meta(rel)?
            .map(|(bytes, meta)| (bytes, meta.owner())))
    }

    /// The text of a file in a user's home, which batten will rewrite with
    /// its own additions (authorized_keys). Beyond [`Root::read_to_string`]'s
    /// rules, the file must have one name, since a hard link could be any
    /// file on the same file system, /etc/shadow included; and when the
    /// user's uid is known (`uid`), it must belong to that user or root.
    pub fn read_user_text(&self, rel: &str, uid: Option<u32>) -> Result<Option<String>, RootError> {
        let Some((bytes, meta)) = self.read_meta(rel)? else {
            return Ok(None);
        };
        let shown = RelPath::parse(rel)?.shown;
        let why = if meta.links > 1 {
            Some(format!("has {} names (a hard link)", meta.links))
        } else if let Some(uid) = uid.filter(|uid| meta.uid != *uid && meta.uid != 0) {
            Some(format!(
                "belongs to uid {}, not to its user (uid {uid})",
                meta.uid
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(RootError::NotTheUsersFile { path: shown, why });
        }
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| RootError::NotUtf8 { path: shown })
    }

    /// Like [`Root::read`] for text files. Invalid UTF-8 is an error rather
    /// than replaced, because editing a lossy copy would corrupt the file.
    pub fn read_to_string(&self, rel: &str) -> Result<Option<String>, RootError> {
        let path = RelPath::parse(rel)?;
        match self.read(rel)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| RootError::NotUtf8 { path: path.shown }),
        }
    }

    /// What the path names, without following a link in the last component
    /// (a link reports [`FileKind::Symlink`]); `None` when missing. Links in
    /// the directories above it are an error.
    pub fn metadata(&self, rel: &str) -> Result<Option<FileMeta>, RootError> {
        let path = RelPath::parse(rel)?;
        if path.comps.is_empty() {
            let st = fstat(self.dir.as_fd()).map_err(|err| io_error("/", "inspect", err))?;
            return Ok(Some(meta_from_stat(&st)));
        }
        let (parents, name) = path.split_last()?;
        let Some(dir) = self.open_dir(parents, &path.shown)? else {
            return Ok(None);
        };
        lstat_at(dir.as_fd(), name, &path.shown)
    }

    /// The target of the symbolic link `rel`, as text and never followed;
    /// `None` when nothing is there or it is not a link. Links in the
    /// directories above it are refused, as everywhere.
    pub fn read_link(&self, rel: &str) -> Result<Option<String>, RootError> {
        let path = RelPath::parse(rel)?;
        let (parents, name) = path.split_last()?;
        let Some(dir) = self.open_dir(parents, &path.shown)? else {
            return Ok(None);
        };
        match lstat_at(dir.as_fd(), name, &path.shown)? {
            Some(meta) if meta.kind == FileKind::Symlink => {
                read_link_at(dir.as_fd(), name, &path.shown).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The names in a directory (without `.` and `..`), sorted so that plans
    /// and diffs are stable; `None` when the directory is missing.
    pub fn list_dir(&self, rel: &str) -> Result<Option<Vec<String>>, RootError> {
        let path = RelPath::parse(rel)?;
        let Some(handle) = self.open_dir(&path.comps, &path.shown)? else {
            return Ok(None);
        };
        list_names(handle.as_fd(), &path.shown).map(Some)
    }

    /// Creates every missing directory of `rel` with `owner`; directories that
    /// already exist are left exactly as they are. A new directory is made
    /// only inside a directory owned by root or by `owner.uid` (see
    /// [`RootError::OwnedByOtherUser`]), under a temporary name whose owner
    /// and mode are set through a handle opened with `O_NOFOLLOW` (a link
    /// swapped in after `mkdir` is never chowned) before it is renamed into
    /// place, so a killed run never leaves it with the wrong owner.
    pub fn create_dir_all(&self, rel: &str, owner: Owner) -> Result<(), RootError> {
        let path = RelPath::parse(rel)?;
        let mut cur = self
            .dir
            .try_clone()
            .map_err(|err| io_error(&path.shown, "duplicate the root directory handle", err))?;
        for (i, name) in path.comps.iter().enumerate() {
            let here = show(&path.comps[..=i]);
            match openat(cur.as_fd(), *name, walk_flags(), Mode::empty()) {
                Ok(fd) => {
                    cur = fd;
                    continue;
                }
                Err(Errno::ENOENT) => {}
                Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {
                    return Err(refuse_component(cur.as_fd(), name, here, &path.shown));
                }
                Err(err) => return Err(io_error(&here, "open directory", err)),
            }

            check_dir_owner(cur.as_fd(), &show(&path.comps[..i]), &here, owner.uid)?;
            cur = make_dir_whole(cur.as_fd(), name, owner, &here, &path.shown)?;
        }
        Ok(())
    }

    /// Replaces (or creates) a regular file atomically with `contents`, owned
    /// and moded as `owner`. Returns `Ok(false)` and touches nothing when the
    /// file already has exactly these bytes, owner and mode, which is what
    /// makes a second run a no-op. With `backup`, the previous version is kept
    /// first (see [`Backup`]).
    ///
    /// The directory must exist; the final name must be absent or a regular
    /// file (a link is refused, never written through); and the directory
    /// must be owned by root or by `owner.uid`.
    pub fn write_atomic(
        &self,
        rel: &str,
        contents: &[u8],
        owner: Owner,
        backup: Option<&Backup>,
    ) -> Result<bool, RootError> {
        let path = RelPath::parse(rel)?;
        let (_, name) = path.split_last()?;
        let (dir, parent_shown) = self.open_parent(&path)?;
        check_dir_owner(dir.as_fd(), &parent_shown, &path.shown, owner.uid)?;

        if let Some((old, meta)) = read_at(dir.as_fd(), name, &path.shown)? {
            let same = old == contents
                && meta.uid == owner.uid
                && meta.gid == owner.gid
                && meta.mode == owner.mode & 0o7777;
            if same {
                return Ok(false);
            }
            if let Some(backup) = backup {
                self.backup_file(backup, &path.shown, &old, &meta)?;
            }
        }

        sweep_stale_temps(dir.as_fd(), name);
        let (file, temp) = create_temp_file(dir.as_fd(), name, &path.shown)?;
        let result = fill_and_rename(dir.as_fd(), file, &temp, name, contents, owner, &path.shown);
        if result.is_err() {
            // Best effort: the original error is the one worth reporting.
            let _ = unlinkat(dir.as_fd(), temp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        result?;
        sync_dir(dir.as_fd(), &parent_shown)?;
        log::debug!("wrote {}", path.shown);
        Ok(true)
    }

    /// Removes a file, or a symbolic link itself (the link is unlinked, never
    /// followed, so removing e.g. an nginx `sites-enabled` link is safe).
    /// `Ok(false)` when it is already gone. With `backup`, the file or link is
    /// copied first. Directories and special files are refused.
    pub fn remove_file(&self, rel: &str, backup: Option<&Backup>) -> Result<bool, RootError> {
        let path = RelPath::parse(rel)?;
        let (parents, name) = path.split_last()?;
        let Some(dir) = self.open_dir(parents, &path.shown)? else {
            return Ok(false);
        };
        let Some(meta) = lstat_at(dir.as_fd(), name, &path.shown)? else {
            return Ok(false);
        };
        match meta.kind {
            FileKind::File => {
                if let Some(backup) = backup {
                    match read_at(dir.as_fd(), name, &path.shown)? {
                        Some((old, meta)) => self.backup_file(backup, &path.shown, &old, &meta)?,
                        None => return Ok(false),
                    }
                }
            }
            FileKind::Symlink => {
                if let Some(backup) = backup {
                    let target = read_link_at(dir.as_fd(), name, &path.shown)?;
                    self.backup_link(backup, &path.shown, &target)?;
                }
            }
            kind => {
                return Err(RootError::NotARegularFile {
                    path: path.shown.clone(),
                    kind,
                });
            }
        }
        match unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => {}
            Err(Errno::ENOENT) => return Ok(false),
            Err(err) => return Err(io_error(&path.shown, "remove", err)),
        }
        sync_dir(dir.as_fd(), &show(parents))?;
        log::debug!("removed {}", path.shown);
        Ok(true)
    }

    /// Makes the directory `rel` (a new user's home) with `owner`, filled
    /// with a copy of the directory `skel` (files, directories and links,
    /// modes kept, everything owned by `owner`). The tree is built under a
    /// temporary name and renamed into place, so a run killed half-way
    /// leaves either no home or a whole one, never half a skeleton; a
    /// temporary tree an earlier killed run left is removed first.
    /// `Ok(false)` when `rel` exists already (whatever it holds).
    pub fn make_home(
        &self,
        rel: &str,
        owner: Owner,
        skel: Option<&str>,
    ) -> Result<bool, RootError> {
        let path = RelPath::parse(rel)?;
        let (_, name) = path.split_last()?;
        let (dir, parent_shown) = self.open_parent(&path)?;
        check_dir_owner(dir.as_fd(), &parent_shown, &path.shown, 0)?;
        match lstat_at(dir.as_fd(), name, &path.shown)? {
            None => {}
            Some(meta) if meta.kind == FileKind::Symlink => {
                return Err(RootError::SymlinkRefused {
                    path: path.shown.clone(),
                    link: path.shown.clone(),
                });
            }
            Some(_) => return Ok(false),
        }
        let source = match skel {
            Some(skel) => {
                let skel = RelPath::parse(skel)?;
                self.open_dir(&skel.comps, &skel.shown)?
                    .map(|fd| (fd, skel.shown))
            }
            None => None,
        };
        for stale in temps_of(dir.as_fd(), name) {
            log::info!("removing {parent_shown}/{stale}, left by an interrupted run");
            remove_tree(dir.as_fd(), &stale, &parent_shown)?;
        }
        let ((), temp) = with_temp_name(name, &path.shown, "create a temporary directory", |t| {
            mkdirat(dir.as_fd(), t, Mode::from_bits_truncate(0o700))
        })?;
        let built = (|| {
            let new = open_dir_at(dir.as_fd(), &temp, &path.shown)?;
            if let Some((skel_fd, skel_shown)) = &source {
                copy_tree(skel_fd.as_fd(), new.as_fd(), owner, skel_shown)?;
            }
            set_owner_mode(new.as_fd(), owner, &path.shown)?;
            File::from(new)
                .sync_all()
                .map_err(|err| io_error(&path.shown, "flush directory", err))?;
            renameat(dir.as_fd(), temp.as_str(), dir.as_fd(), name)
                .map_err(|err| io_error(&path.shown, "rename the new home into place", err))
        })();
        if let Err(e) = built {
            let _ = remove_tree(dir.as_fd(), &temp, &parent_shown);
            return Err(e);
        }
        sync_dir(dir.as_fd(), &parent_shown)?;
        log::debug!("made {}", path.shown);
        Ok(true)
    }

    /// Removes a home [`Root::make_home`] made in this run, for a run that
    /// failed later: a failed run leaves the root as it found it. The home
    /// goes only while it is still what batten put there: owned by `owner`,
    /// holding the copy of `skel` and nothing else but empty directories of
    /// the account's (the `.ssh` batten made, emptied by the roll-back).
    /// `Ok(Some(why))` names what keeps it; `Ok(None)` when it is gone.
    pub fn remove_made_home(
        &self,
        rel: &str,
        owner: Owner,
        skel: Option<&str>,
    ) -> Result<Option<String>, RootError> {
        let path = RelPath::parse(rel)?;
        let (_, name) = path.split_last()?;
        let (dir, parent_shown) = self.open_parent(&path)?;
        let Some(meta) = lstat_at(dir.as_fd(), name, &path.shown)? else {
            return Ok(None);
        };
        if meta.kind != FileKind::Dir {
            return Ok(Some(format!("{} is no longer a directory", path.shown)));
        }
        if meta.uid != owner.uid {
            return Ok(Some(format!("{} changed owner", path.shown)));
        }
        let home = open_dir_at(dir.as_fd(), name, &path.shown)?;
        let skel = match skel {
            Some(skel) => {
                let skel = RelPath::parse(skel)?;
                self.open_dir(&skel.comps, &skel.shown)?
            }
            None => None,
        };
        if let Some(why) = only_what_was_copied(
            home.as_fd(),
            skel.as_ref().map(|f| f.as_fd()),
            owner,
            &path.shown,
        )? {
            return Ok(Some(why));
        }
        remove_tree(dir.as_fd(), name, &parent_shown)?;
        sync_dir(dir.as_fd(), &parent_shown)?;
        log::debug!("removed {}, made by this run", path.shown);
        Ok(None)
    }

    /// Makes `rel` a symbolic link to `target` (stored as text, never
    /// resolved). `Ok(false)` when it already points there. An existing link
    /// or regular file is replaced atomically (a temporary link renamed over
    /// it) after an optional backup; a directory is refused. The directory
    /// must exist and be owned by root or by the user batten runs as.
    pub fn symlink(
        &self,
        target: &str,
        rel: &str,
        backup: Option<&Backup>,
    ) -> Result<bool, RootError> {
        if target.is_empty() || target.contains('\0') {
            return Err(RootError::InvalidPath {
                path: target.to_string(),
                reason: "a symbolic link target must be non-empty and free of NUL bytes"
                    .to_string(),
            });
        }
        let path = RelPath::parse(rel)?;
        let (_, name) = path.split_last()?;
        let (dir, parent_shown) = self.open_parent(&path)?;
        check_dir_owner(dir.as_fd(), &parent_shown, &path.shown, geteuid().as_raw())?;

        match lstat_at(dir.as_fd(), name, &path.shown)? {
            None => {}
            Some(meta) if meta.kind == FileKind::Symlink => {
                let old = read_link_at(dir.as_fd(), name, &path.shown)?;
                if old == target {
                    return Ok(false);
                }
                if let Some(backup) = backup {
                    self.backup_link(backup, &path.shown, &old)?;
                }
            }
            Some(meta) if meta.kind == FileKind::File => {
                if let Some(backup) = backup
                    && let Some((old, meta)) = read_at(dir.as_fd(), name, &path.shown)?
                {
                    self.backup_file(backup, &path.shown, &old, &meta)?;
                }
            }
            Some(meta) => {
                return Err(RootError::NotARegularFile {
                    path: path.shown.clone(),
                    kind: meta.kind,
                });
            }
        }

        sweep_stale_temps(dir.as_fd(), name);
        let temp = create_temp_link(dir.as_fd(), target, name, &path.shown)?;
        let result = injected_failure(&path.shown).and_then(|()| {
            renameat(dir.as_fd(), temp.as_str(), dir.as_fd(), name)
                .map_err(|err| io_error(&path.shown, "rename the temporary link into place", err))
        });
        if result.is_err() {
            let _ = unlinkat(dir.as_fd(), temp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        result?;
        sync_dir(dir.as_fd(), &parent_shown)?;
        log::debug!("linked {} -> {}", path.shown, target);
        Ok(true)
    }

    /// Reads a file, following symbolic links *lexically inside the root*:
    /// an absolute target starts again at the root, a relative one at the
    /// link's directory, and `..` stops at the root. This is for read-only
    /// files that distributions ship as links, such as `/etc/os-release ->
    /// ../usr/lib/os-release`; on a mounted image, following such a link the
    /// kernel's way would read the host's file instead. At most 16 links are
    /// followed. `None` when anything along the way is missing.
    pub fn read_following_within(&self, rel: &str) -> Result<Option<Vec<u8>>, RootError> {
        let path = RelPath::parse(rel)?;
        path.split_last()?;
        let mut pending: VecDeque<String> = path.comps.iter().map(|c| c.to_string()).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;

        while let Some(name) = pending.pop_front() {
            if name.is_empty() || name == "." {
                continue;
            }
            if name == ".." {
                resolved.pop();
                continue;
            }
            let here = show_child(&resolved, &name);
            let Some(dir) = self.open_dir(&resolved, &path.shown)? else {
                return Ok(None);
            };
            let Some(meta) = lstat_at(dir.as_fd(), &name, &here)? else {
                return Ok(None);
            };
            match meta.kind {
                FileKind::Symlink => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(RootError::TooManyLinks { path: path.shown });
                    }
                    let target = read_link_at(dir.as_fd(), &name, &here)?;
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    for comp in target.split('/').rev() {
                        pending.push_front(comp.to_string());
                    }
                }
                FileKind::Dir => resolved.push(name),
                _ => {
                    let more = pending.iter().any(|c| !c.is_empty() && c != ".");
                    if more {
                        return Err(RootError::NotADirectory {
                            path: path.shown,
                            component: here,
                        });
                    }
                    resolved.push(name);
                }
            }
        }

        let Some((name, parents)) = resolved.split_last() else {
            return Err(RootError::NotARegularFile {
                path: path.shown,
                kind: FileKind::Dir,
            });
        };
        let shown = show(&resolved);
        let Some(dir) = self.open_dir(parents, &shown)? else {
            return Ok(None);
        };
        Ok(read_at(dir.as_fd(), name, &shown)?.map(|(bytes, _)| bytes))
    }

    /// Makes sure the backup directory for a copy at `dest` exists: `/var/lib`
    /// as an ordinary 0755 directory if an image lacks it, everything from
    /// there down 0700 and owned by the user batten runs as, since backups
    /// may hold secrets.
    fn prepare_backup_dir(&self, dest: &str) -> Result<(), RootError> {
        let uid = geteuid().as_raw();
        let gid = getegid().as_raw();
        self.create_dir_all(
            "/var/lib",
            Owner {
                uid,
                gid,
                mode: 0o755,
            },
        )?;
        let parent = match dest.rfind('/') {
            Some(at) => &dest[..at],
            None => dest,
        };
        self.create_dir_all(
            parent,
            Owner {
                uid,
                gid,
                mode: 0o700,
            },
        )
    }

    /// Keeps the previous contents, owner and mode of a file about to be
    /// replaced or removed, unless this run already kept an older copy.
    fn backup_file(
        &self,
        backup: &Backup,
        shown: &str,
        old: &[u8],
        meta: &FileMeta,
    ) -> Result<(), RootError> {
        let dest = backup.path_for(shown)?;
        if self.metadata(&dest)?.is_some() {
            return Ok(());
        }
        self.prepare_backup_dir(&dest)?;
        let owner = Owner {
            uid: meta.uid,
            gid: meta.gid,
            mode: meta.mode,
        };
        self.write_atomic(&dest, old, owner, None)?;
        log::debug!("kept the previous {shown} as {dest}");
        Ok(())
    }

    /// Keeps a link about to be replaced or removed, as a link with the same
    /// target, unless this run already kept an older copy.
    fn backup_link(&self, backup: &Backup, shown: &str, target: &str) -> Result<(), RootError> {
        let dest = backup.path_for(shown)?;
        if self.metadata(&dest)?.is_some() {
            return Ok(());
        }
        self.prepare_backup_dir(&dest)?;
        self.symlink(target, &dest, None)?;
        log::debug!("kept the previous link {shown} as {dest}");
        Ok(())
    }
}

/// The names in the directory `dir` (without `.` and `..`).
fn list_names(dir: BorrowedFd<'_>, shown: &str) -> Result<Vec<String>, RootError> {
    match read_names(dir, shown)? {
        (names, false) => Ok(names),
        (_, true) => Err(RootError::NonUtf8Name {
            path: shown.to_string(),
        }),
    }
}

/// The UTF-8 names in `dir`, sorted, and whether it holds others too.
fn read_names(dir: BorrowedFd<'_>, shown: &str) -> Result<(Vec<String>, bool), RootError> {
    let mut listing = Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| io_error(shown, "open directory for listing", err))?;
    let (mut names, mut odd) = (Vec::new(), false);
    for entry in listing.iter() {
        let entry = entry.map_err(|err| io_error(shown, "list directory", err))?;
        let bytes = entry.file_name().to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        match std::str::from_utf8(bytes) {
            Ok(name) => names.push(name.to_string()),
            Err(_) => odd = true,
        }
    }
    names.sort();
    Ok((names, odd))
}

/// The temporary names for `name` in `dir` (see [`temp_prefix`]); other
/// names, whatever they are, do not matter here.
fn temps_of(dir: BorrowedFd<'_>, name: &str) -> Vec<String> {
    let prefix = temp_prefix(name);
    read_names(dir, name)
        .map(|(names, _)| names)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Makes the missing directory `name` in `dir` with `owner` and returns a
/// handle to it. It is made under a temporary name, given its owner and
/// mode there, and renamed into place, so a run killed half-way never
/// leaves a directory under the real name with batten's owner instead of
/// the account's (a re-run would take it as existing and leave it so).
/// Empty temporary directories an interrupted run left are removed first.
/// If `name` appeared in the meantime, what is there is used as found.
fn make_dir_whole(
    dir: BorrowedFd<'_>,
    name: &str,
    owner: Owner,
    here: &str,
    full: &str,
) -> Result<OwnedFd, RootError> {
    let parent = here.rsplit_once('/').map_or("", |(p, _)| p);
    for stale in temps_of(dir, name) {
        // rmdir removes only an empty directory, never a link's target.
        if unlinkat(dir, stale.as_str(), UnlinkatFlags::RemoveDir).is_ok() {
            log::info!("removed {parent}/{stale}, left by an interrupted run");
        }
    }
    let ((), temp) = with_temp_name(name, here, "create a temporary directory", |t| {
        mkdirat(dir, t, Mode::from_bits_truncate(0o700))
    })?;
    let fd = match openat(
        dir,
        temp.as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {
            return Err(refuse_component(dir, &temp, here.to_string(), full));
        }
        Err(err) => return Err(io_error(here, "open new directory", err)),
    };
    // Between mkdir and open the temporary name can be moved onto another
    // directory (rename replaces an empty one), even one of root's from
    // the same home. Ours is empty, its mode is what mkdir gave it and it
    // belongs to batten's own user; anything else is refused untouched.
    let ours = fstat(fd.as_fd())
        .is_ok_and(|st| st.st_uid == geteuid().as_raw() && st.st_mode & 0o7777 == 0o700)
        && list_names(fd.as_fd(), here).is_ok_and(|names| names.is_empty());
    if !ours {
        return Err(io_error(
            here,
            "create directory",
            io::Error::other("the new directory was replaced right after batten made it"),
        ));
    }
    set_owner_mode(fd.as_fd(), owner, here)?;
    // Never over something that appeared meanwhile: a plain rename would
    // replace an empty directory someone else made there.
    let mut placed = rustix::fs::renameat_with(
        dir,
        temp.as_str(),
        dir,
        name,
        rustix::fs::RenameFlags::NOREPLACE,
    );
    if placed == Err(rustix::io::Errno::INVAL) && matches!(lstat_at(dir, name, here), Ok(None)) {
        // A file system without RENAME_NOREPLACE (an old NFS home): the
        // name was just seen free, and the run lock keeps other runs out.
        placed = renameat(dir, temp.as_str(), dir, name)
            .map_err(|e| rustix::io::Errno::from_raw_os_error(e as i32));
    }
    match placed {
        Ok(()) => {
            sync_dir(dir, here)?;
            log::debug!("created directory {here}");
            Ok(fd)
        }
        Err(err) if err != rustix::io::Errno::EXIST => {
            let _ = unlinkat(dir, temp.as_str(), UnlinkatFlags::RemoveDir);
            Err(io_error(
                here,
                "rename the new directory into place",
                io::Error::from(err),
            ))
        }
        // Something took the name meanwhile: ours goes, and what is there
        // is used as found.
        Err(_) => {
            let _ = unlinkat(dir, temp.as_str(), UnlinkatFlags::RemoveDir);
            match openat(dir, name, walk_flags(), Mode::empty()) {
                Ok(fd) => Ok(fd),
                Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {
                    Err(refuse_component(dir, name, here.to_string(), full))
                }
                Err(err) => Err(io_error(here, "open directory", err)),
            }
        }
    }
}

/// Gives an open file or directory its owner and then its mode (in that
/// order: chown clears set-id bits).
fn set_owner_mode(fd: BorrowedFd<'_>, owner: Owner, shown: &str) -> Result<(), RootError> {
    fchown(
        fd,
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
    )
    .map_err(|err| io_error(shown, "set the owner of", err))?;
    fchmod(fd, Mode::from_bits_truncate(owner.mode & 0o7777))
        .map_err(|err| io_error(shown, "set the mode of", err))
}

/// Copies the tree under `from` into the empty directory `to`: files and
/// directories with their modes, links as links, everything else skipped;
/// all of it owned by `owner` (its mode is not used here).
fn copy_tree(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    owner: Owner,
    shown: &str,
) -> Result<(), RootError> {
    for name in list_names(from, shown)? {
        let here = format!("{shown}/{name}");
        let Some(meta) = lstat_at(from, &name, &here)? else {
            continue;
        };
        let mine = Owner {
            mode: meta.mode,
            ..owner
        };
        match meta.kind {
            FileKind::Dir => {
                mkdirat(to, name.as_str(), Mode::from_bits_truncate(0o700))
                    .map_err(|err| io_error(&here, "copy directory", err))?;
                let src = openat(
                    from,
                    name.as_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|err| io_error(&here, "open directory", err))?;
                let dst = open_dir_at(to, &name, &here)?;
                copy_tree(src.as_fd(), dst.as_fd(), owner, &here)?;
                set_owner_mode(dst.as_fd(), mine, &here)?;
            }
            FileKind::File => {
                let Some((bytes, _)) = read_at(from, &name, &here)? else {
                    continue;
                };
                let flags = OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC;
                let fd = openat(to, name.as_str(), flags, Mode::from_bits_truncate(0o600))
                    .map_err(|err| io_error(&here, "copy file", err))?;
                let mut file = File::from(fd);
                file.write_all(&bytes)
                    .map_err(|err| io_error(&here, "copy file", err))?;
                set_owner_mode(file.as_fd(), mine, &here)?;
                file.sync_all()
                    .map_err(|err| io_error(&here, "flush file", err))?;
            }
            FileKind::Symlink => {
                let target = read_link_at(from, &name, &here)?;
                symlinkat(target.as_str(), to, name.as_str())
                    .map_err(|err| io_error(&here, "copy link", err))?;
                nix::unistd::fchownat(
                    to,
                    name.as_str(),
                    Some(Uid::from_raw(owner.uid)),
                    Some(Gid::from_raw(owner.gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|err| io_error(&here, "set the owner of link", err))?;
            }
            FileKind::Other => log::debug!("not copying {here}: not a file, directory or link"),
        }
    }
    Ok(())
}

/// Removes `name` in `dir` and, when it is a directory, everything in it,
/// without following any link.
fn remove_tree(dir: BorrowedFd<'_>, name: &str, shown: &str) -> Result<(), RootError> {
    let here = format!("{shown}/{name}");
    let Some(meta) = lstat_at(dir, name, &here)? else {
        return Ok(());
    };
    if meta.kind == FileKind::Dir {
        let inner = openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|err| io_error(&here, "open directory", err))?;
        for entry in list_names(inner.as_fd(), &here)? {
            remove_tree(inner.as_fd(), &entry, &here)?;
        }
        unlinkat(dir, name, UnlinkatFlags::RemoveDir)
            .map_err(|err| io_error(&here, "remove directory", err))
    } else {
        unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
            .map_err(|err| io_error(&here, "remove", err))
    }
}

/// Opens the directory `name` under `dir`, refusing a link (or anything
/// else) in its place.
fn open_dir_at(dir: BorrowedFd<'_>, name: &str, shown: &str) -> Result<OwnedFd, RootError> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| io_error(shown, "open directory", err))
}

/// Whether the tree at `made` holds only what `copy_tree` put there from
/// `skel` for `owner` (same names, kinds, bytes and link targets, owned by
/// the account), plus empty directories of the account's. The first
/// difference is returned, in words.
fn only_what_was_copied(
    made: BorrowedFd<'_>,
    skel: Option<BorrowedFd<'_>>,
    owner: Owner,
    shown: &str,
) -> Result<Option<String>, RootError> {
    for name in list_names(made, shown)? {
        let here = format!("{shown}/{name}");
        let Some(meta) = lstat_at(made, &name, &here)? else {
            continue;
        };
        if meta.uid != owner.uid {
            return Ok(Some(format!("{here} is not the account's")));
        }
        let original = match skel {
            Some(skel) => lstat_at(skel, &name, &here)?.map(|m| (skel, m)),
            None => None,
        };
        let same = match (meta.kind, original) {
            (FileKind::Dir, Some((skel, o))) if o.kind == FileKind::Dir => {
                let inner = open_dir_at(made, &name, &here)?;
                let source = open_dir_at(skel, &name, &here)?;
                if let Some(why) =
                    only_what_was_copied(inner.as_fd(), Some(source.as_fd()), owner, &here)?
                {
                    return Ok(Some(why));
                }
                true
            }
            (FileKind::Dir, None) => {
                let inner = open_dir_at(made, &name, &here)?;
                list_names(inner.as_fd(), &here)?.is_empty()
            }
            (FileKind::File, Some((skel, o))) if o.kind == FileKind::File => {
                read_at(made, &name, &here)?.map(|(b, _)| b)
                    == read_at(skel, &name, &here)?.map(|(b, _)| b)
            }
            (FileKind::Symlink, Some((skel, o))) if o.kind == FileKind::Symlink => {
                read_link_at(made, &name, &here)? == read_link_at(skel, &name, &here)?
            }
            _ => false,
        };
        if !same {
            return Ok(Some(format!("{here} is not what batten put there")));
        }
    }
    Ok(None)
}

/// Tries fresh temporary names beside `name` until `make` creates one
/// (a name already taken is tried again: at first boot the pid is often the
/// same on every machine).
fn with_temp_name<T>(
    name: &str,
    shown: &str,
    what: &'static str,
    mut make: impl FnMut(&str) -> Result<T, Errno>,
) -> Result<(T, String), RootError> {
    for _ in 0..TEMP_NAME_ATTEMPTS {
        let temp = temp_name(name);
        match make(&temp) {
            Ok(made) => return Ok((made, temp)),
            Err(Errno::EEXIST) => continue,
            Err(err) => return Err(io_error(shown, what, err)),
        }
    }
    Err(io_error(
        shown,
        what,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "every temporary name tried was taken",
        ),
    ))
}

/// Creates a new, empty temporary file next to `name`, 0600 so nobody can
/// read it before its final mode is set.
fn create_temp_file(
    dir: BorrowedFd<'_>,
    name: &str,
    shown: &str,
) -> Result<(File, String), RootError> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    with_temp_name(name, shown, "create a temporary file beside it", |temp| {
        openat(dir, temp, flags, Mode::from_bits_truncate(0o600)).map(File::from)
    })
}

/// Creates a temporary link to `target` next to `name`.
fn create_temp_link(
    dir: BorrowedFd<'_>,
    target: &str,
    name: &str,
    shown: &str,
) -> Result<String, RootError> {
    with_temp_name(name, shown, "create a temporary link beside it", |temp| {
        symlinkat(target, dir, temp)
    })
    .map(|((), temp)| temp)
}

/// Writes the temporary file, gives it its owner and mode, flushes it and
/// renames it over `name`. The caller removes the temporary file on error.
fn fill_and_rename(
    dir: BorrowedFd<'_>,
    mut file: File,
    temp: &str,
    name: &str,
    contents: &[u8],
    owner: Owner,
    shown: &str,
) -> Result<(), RootError> {
    file.write_all(contents)
        .map_err(|err| io_error(shown, "write the temporary file", err))?;
    apply_owner(file.as_fd(), owner, shown)?;
    file.sync_all()
        .map_err(|err| io_error(shown, "flush the temporary file", err))?;
    drop(file);
    injected_failure(shown)?;
    renameat(dir, temp, dir, name)
        .map_err(|err| io_error(shown, "rename the temporary file into place", err))
}

/// A scratch root holding `files` (root-relative path, text), for the unit
/// tests of the modules that read roots.
#[cfg(test)]
pub fn scratch_root(files: &[(&str, &str)]) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (path, text) in files {
        let p = dir.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("its directory");
        std::fs::write(p, text).expect("the file");
    }
    let root = Root::open(dir.path()).expect("the scratch root opens");
    (dir, root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink as host_symlink};

    #[test]
    fn a_home_is_made_whole_from_skel_and_stale_halves_are_cleared() {
        let (dir, root) = scratch_root(&[
            ("/etc/skel/.profile", "umask 022\n"),
            ("/etc/skel/.config/app.conf", "x=1\n"),
            ("/home/.alice.batten-999-0-0/half", "left by a killed run"),
        ]);
        host_symlink(".profile", dir.path().join("etc/skel/.bashrc")).unwrap();
        let owner = Owner {
            uid: 1234,
            gid: 1234,
            mode: 0o750,
        };
        if !geteuid().is_root() {
            // Under CI a skipped test is a failure (CI runs as root).
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "giving a home to another user needs root, and CI must run this test"
            );
            eprintln!("skipped: giving a home to another user needs root");
            return;
        }
        assert!(
            root.make_home("/home/alice", owner, Some("/etc/skel"))
                .unwrap()
        );
        let home = dir.path().join("home/alice");
        let meta = std::fs::metadata(&home).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (1234, 0o750));
        assert_eq!(
            std::fs::read_to_string(home.join(".config/app.conf")).unwrap(),
            "x=1\n"
        );
        assert_eq!(
            std::fs::read_link(home.join(".bashrc")).unwrap(),
            Path::new(".profile")
        );
        let names: Vec<_> = std::fs::read_dir(dir.path().join("home"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["alice"], "the stale half was removed");
        assert!(
            !root
                .make_home("/home/alice", owner, Some("/etc/skel"))
                .unwrap()
        );
    }
    use tempfile::TempDir;

    /// A scratch root and an open handle on it.
    fn scratch() -> (TempDir, Root) {
        let tmp = tempfile::tempdir().expect("create temp dir");
        let root = Root::open(tmp.path()).expect("open root");
        (tmp, root)
    }

    /// Files owned by whoever runs the tests, so they pass with and without
    /// root.
    fn me(mode: u32) -> Owner {
        Owner {
            uid: geteuid().as_raw(),
            gid: getegid().as_raw(),
            mode,
        }
    }

    fn mkdirs(root: &Root, rel: &str) {
        root.create_dir_all(rel, me(0o755)).expect("create dirs");
    }

    /// Names in a host directory that look like batten's temporary entries.
    fn temp_leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".batten-"))
            .collect()
    }

    #[test]
    fn write_then_read_back() {
        let (tmp, root) = scratch();
        mkdirs(&root, "/etc/ssh");
        let changed = root
            .write_atomic("/etc/ssh/sshd_config", b"Port 22\n", me(0o644), None)
            .unwrap();
        assert!(changed);
        assert_eq!(
            root.read("/etc/ssh/sshd_config").unwrap().unwrap(),
            b"Port 22\n"
        );
        assert_eq!(
            root.read_to_string("etc/ssh/sshd_config").unwrap().unwrap(),
            "Port 22\n"
        );
        assert_eq!(
            std::fs::read(tmp.path().join("etc/ssh/sshd_config")).unwrap(),
            b"Port 22\n"
        );
        assert_eq!(root.read("/etc/ssh/missing").unwrap(), None);
        assert_eq!(root.read("/nope/missing").unwrap(), None);
        assert!(temp_leftovers(&tmp.path().join("etc/ssh")).is_empty());
    }

    #[test]
    fn read_to_string_refuses_invalid_utf8() {
        let (tmp, root) = scratch();
        std::fs::write(tmp.path().join("latin1"), b"caf\xe9\n").unwrap();
        let err = root.read_to_string("/latin1").unwrap_err();
        assert!(matches!(err, RootError::NotUtf8 { .. }), "{err}");
        assert!(err.to_string().contains("/latin1"), "{err}");
    }

    #[test]
    fn mode_is_applied() {
        let (tmp, root) = scratch();
        root.write_atomic("/secret", b"x", me(0o600), None).unwrap();
        let meta = root.metadata("/secret").unwrap().unwrap();
        assert_eq!(meta.kind, FileKind::File);
        assert_eq!(meta.mode, 0o600);
        assert_eq!(meta.len, 1);
        let host = std::fs::metadata(tmp.path().join("secret")).unwrap();
        assert_eq!(host.permissions().mode() & 0o7777, 0o600);

        // A mode change alone is a change.
        assert!(root.write_atomic("/secret", b"x", me(0o640), None).unwrap());
        assert_eq!(root.metadata("/secret").unwrap().unwrap().mode, 0o640);
    }

    #[test]
    fn unchanged_write_is_a_no_op() {
        let (tmp, root) = scratch();
        assert!(root.write_atomic("/f", b"same\n", me(0o644), None).unwrap());
        let before = std::fs::metadata(tmp.path().join("f")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let backup = Backup::new("run1");
        assert!(
            !root
                .write_atomic("/f", b"same\n", me(0o644), Some(&backup))
                .unwrap()
        );
        let after = std::fs::metadata(tmp.path().join("f")).unwrap();
        assert_eq!(before.ino(), after.ino());
        assert_eq!(before.mtime(), after.mtime());
        assert_eq!(before.mtime_nsec(), after.mtime_nsec());
        // Nothing changed, so nothing was backed up.
        assert_eq!(
            root.metadata("/var/lib/batten/backup/run1/f").unwrap(),
            None
        );
    }

    #[test]
    fn backup_keeps_the_original_across_writes() {
        let (_tmp, root) = scratch();
        mkdirs(&root, "/etc");
        root.write_atomic("/etc/motd", b"original\n", me(0o640), None)
            .unwrap();
        let backup = Backup::new("run1");
        assert_eq!(backup.run(), "run1");
        assert_eq!(backup.dir(), "/var/lib/batten/backup/run1");

        root.write_atomic("/etc/motd", b"second\n", me(0o644), Some(&backup))
            .unwrap();
        root.write_atomic("/etc/motd", b"third\n", me(0o644), Some(&backup))
            .unwrap();

        let kept = "/var/lib/batten/backup/run1/etc/motd";
        assert_eq!(root.read(kept).unwrap().unwrap(), b"original\n");
        assert_eq!(root.metadata(kept).unwrap().unwrap().mode, 0o640);
        assert_eq!(root.read("/etc/motd").unwrap().unwrap(), b"third\n");
        for dir in [
            "/var/lib/batten",
            "/var/lib/batten/backup/run1",
            "/var/lib/batten/backup/run1/etc",
        ] {
            let meta = root.metadata(dir).unwrap().unwrap();
            assert_eq!(meta.kind, FileKind::Dir, "{dir}");
            assert_eq!(meta.mode, 0o700, "{dir}");
            assert_eq!(meta.uid, geteuid().as_raw(), "{dir}");
        }
        // /var/lib itself is an ordinary directory, not a private one.
        assert_eq!(root.metadata("/var/lib").unwrap().unwrap().mode, 0o755);

        // A new run keeps its own original.
        let next = Backup::new("run2");
        root.write_atomic("/etc/motd", b"fourth\n", me(0o644), Some(&next))
            .unwrap();
        assert_eq!(
            root.read("/var/lib/batten/backup/run2/etc/motd")
                .unwrap()
                .unwrap(),
            b"third\n"
        );
    }

    #[test]
    fn bad_backup_run_name_is_refused() {
        let (_tmp, root) = scratch();
        root.write_atomic("/f", b"1", me(0o644), None).unwrap();
        let err = root
            .write_atomic("/f", b"2", me(0o644), Some(&Backup::new("..")))
            .unwrap_err();
        assert!(matches!(err, RootError::InvalidPath { .. }), "{err}");
        assert_eq!(root.read("/f").unwrap().unwrap(), b"1");
    }

    #[test]
    fn final_symlink_is_refused_and_target_untouched() {
        let (tmp, root) = scratch();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("shadow");
        std::fs::write(&secret, b"root:secret\n").unwrap();
        std::fs::create_dir(tmp.path().join("home")).unwrap();
        host_symlink(&secret, tmp.path().join("home/authorized_keys")).unwrap();

        let err = root
            .write_atomic("/home/authorized_keys", b"pwned\n", me(0o600), None)
            .unwrap_err();
        assert!(matches!(err, RootError::SymlinkRefused { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("/home/authorized_keys"), "{text}");
        assert!(text.contains("does not follow symbolic links"), "{text}");

        let err = root.read("/home/authorized_keys").unwrap_err();
        assert!(matches!(err, RootError::SymlinkRefused { .. }), "{err}");
        let err = root.read_to_string("/home/authorized_keys").unwrap_err();
        assert!(matches!(err, RootError::SymlinkRefused { .. }), "{err}");

        // metadata reports the link itself.
        assert_eq!(
            root.metadata("/home/authorized_keys")
                .unwrap()
                .unwrap()
                .kind,
            FileKind::Symlink
        );

        assert_eq!(std::fs::read(&secret).unwrap(), b"root:secret\n");
        assert!(
            std::fs::symlink_metadata(tmp.path().join("home/authorized_keys"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(temp_leftovers(&tmp.path().join("home")).is_empty());
    }

    #[test]
    fn intermediate_symlink_is_refused() {
        let (tmp, root) = scratch();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("passwd"), b"host\n").unwrap();
        host_symlink(outside.path(), tmp.path().join("etc")).unwrap();

        let err = root
            .write_atomic("/etc/passwd", b"x\n", me(0o644), None)
            .unwrap_err();
        match &err {
            RootError::SymlinkRefused { path, link } => {
                assert_eq!(path, "/etc/passwd");
                assert_eq!(link, "/etc");
            }
            other => panic!("unexpected {other}"),
        }
        for result in [
            root.read("/etc/passwd").map(|_| ()),
            root.metadata("/etc/passwd").map(|_| ()),
            root.list_dir("/etc").map(|_| ()),
            root.list_dir("/etc/sub").map(|_| ()),
            root.create_dir_all("/etc/new", me(0o755)),
            root.remove_file("/etc/passwd", None).map(|_| ()),
            root.symlink("x", "/etc/link", None).map(|_| ()),
        ] {
            let err = result.unwrap_err();
            assert!(matches!(err, RootError::SymlinkRefused { .. }), "{err}");
        }
        // Following links within the root re-roots the absolute host path the
        // link names, so the host's file is not read.
        assert_eq!(root.read_following_within("/etc/passwd").unwrap(), None);
        assert_eq!(
            std::fs::read(outside.path().join("passwd")).unwrap(),
            b"host\n"
        );
        let names: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn dot_dot_and_other_bad_paths_are_rejected() {
        let (tmp, root) = scratch();
        let inner = tmp.path().join("inner");
        std::fs::create_dir(&inner).unwrap();
        let root_inner = Root::open(&inner).unwrap();
        std::fs::write(tmp.path().join("outside"), b"keep\n").unwrap();

        for bad in [
            "/../outside",
            "../outside",
            "/a/../b",
            "/a//b",
            "/a/",
            "/./a",
            "/a\0b",
        ] {
            let err = root_inner.read(bad).unwrap_err();
            assert!(matches!(err, RootError::InvalidPath { .. }), "{bad}: {err}");
            let err = root_inner
                .write_atomic(bad, b"x", me(0o644), None)
                .unwrap_err();
            assert!(matches!(err, RootError::InvalidPath { .. }), "{bad}: {err}");
            assert!(root_inner.metadata(bad).is_err(), "{bad}");
            assert!(root_inner.create_dir_all(bad, me(0o755)).is_err(), "{bad}");
            assert!(root_inner.remove_file(bad, None).is_err(), "{bad}");
            assert!(root_inner.read_following_within(bad).is_err(), "{bad}");
        }
        assert_eq!(
            std::fs::read(tmp.path().join("outside")).unwrap(),
            b"keep\n"
        );
        // The root itself is not a file.
        assert!(root.write_atomic("/", b"x", me(0o644), None).is_err());
        assert!(root.read("").is_err());
    }

    #[test]
    fn directory_writable_by_others_is_refused_unless_sticky() {
        use std::os::unix::fs::PermissionsExt;
        let (tmp, root) = scratch();
        let dir = tmp.path().join("open");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let me = Owner {
            uid: geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            mode: 0o644,
        };
        let err = root.write_atomic("/open/f", b"x", me, None).unwrap_err();
        assert!(matches!(err, RootError::WritableByOthers { .. }), "{err}");
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(root.write_atomic("/open/f", b"x", me, None).unwrap());
    }

    #[test]
    fn directory_owned_by_another_user_is_refused() {
        if !geteuid().is_root() {
            // Under CI a skipped test is a failure (CI runs as root).
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "changing a directory's owner needs root, and CI must run this test"
            );
            eprintln!("skipped: changing a directory's owner needs root");
            return;
        }
        let (tmp, root) = scratch();
        let home = tmp.path().join("home");
        std::fs::create_dir(&home).unwrap();
        nix::unistd::chown(
            &home,
            Some(Uid::from_raw(12345)),
            Some(Gid::from_raw(12345)),
        )
        .unwrap();

        let as_root = Owner {
            uid: 0,
            gid: 0,
            mode: 0o600,
        };
        let err = root
            .write_atomic("/home/authorized_keys", b"k\n", as_root, None)
            .unwrap_err();
        match &err {
            RootError::OwnedByOtherUser {
                dir, dir_uid, uid, ..
            } => {
                assert_eq!(dir, "/home");
                assert_eq!(*dir_uid, 12345);
                assert_eq!(*uid, 0);
            }
            other => panic!("unexpected {other}"),
        }
        assert!(err.to_string().contains("/home/authorized_keys"), "{err}");
        assert!(!home.join("authorized_keys").exists());
        assert!(
            root.create_dir_all(
                "/home/.ssh",
                Owner {
                    uid: 0,
                    gid: 0,
                    mode: 0o700
                }
            )
            .is_err()
        );
        assert!(root.symlink("x", "/home/link", None).is_err());

        let as_user = Owner {
            uid: 12345,
            gid: 12345,
            mode: 0o600,
        };
        assert!(
            root.write_atomic("/home/authorized_keys", b"k\n", as_user, None)
                .unwrap()
        );
        let meta = root.metadata("/home/authorized_keys").unwrap().unwrap();
        assert_eq!((meta.uid, meta.gid, meta.mode), (12345, 12345, 0o600));

        root.create_dir_all(
            "/home/.ssh",
            Owner {
                uid: 12345,
                gid: 12345,
                mode: 0o700,
            },
        )
        .unwrap();
        let meta = root.metadata("/home/.ssh").unwrap().unwrap();
        assert_eq!((meta.uid, meta.gid, meta.mode), (12345, 12345, 0o700));
    }

    #[test]
    fn create_dir_all_applies_modes_and_leaves_existing_dirs() {
        let (tmp, root) = scratch();
        std::fs::create_dir(tmp.path().join("x")).unwrap();
        std::fs::set_permissions(tmp.path().join("x"), std::fs::Permissions::from_mode(0o751))
            .unwrap();

        root.create_dir_all("/x/a/b", me(0o750)).unwrap();
        assert_eq!(root.metadata("/x").unwrap().unwrap().mode, 0o751);
        for dir in ["/x/a", "/x/a/b"] {
            let meta = root.metadata(dir).unwrap().unwrap();
            assert_eq!(meta.kind, FileKind::Dir);
            assert_eq!(meta.mode, 0o750, "{dir}");
        }
        // Again: nothing to do, nothing changed.
        root.create_dir_all("/x/a/b", me(0o700)).unwrap();
        assert_eq!(root.metadata("/x/a/b").unwrap().unwrap().mode, 0o750);

        // A killed run's empty temporary directory goes; one with contents
        // is nobody's to remove; a name that is not UTF-8 is no obstacle.
        let stale = tmp.path().join("x/.c.batten-1-0-0");
        let kept = tmp.path().join("x/.c.batten-2-0-0");
        std::fs::create_dir(&stale).unwrap();
        std::fs::create_dir(&kept).unwrap();
        std::fs::write(kept.join("mine"), b"").unwrap();
        std::fs::write(tmp.path().join(std::ffi::OsStr::from_bytes(b"x/\xff")), b"").unwrap();
        root.create_dir_all("/x/c", me(0o700)).unwrap();
        assert!(!stale.exists() && kept.join("mine").exists());
        assert_eq!(root.metadata("/x/c").unwrap().unwrap().mode, 0o700);
        let left: Vec<String> = std::fs::read_dir(tmp.path().join("x"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".c.batten-"))
            .collect();
        assert_eq!(
            left,
            [".c.batten-2-0-0"],
            "no temporary of this run is left"
        );

        // A file in the way is an error naming it.
        std::fs::write(tmp.path().join("x/file"), b"").unwrap();
        let err = root.create_dir_all("/x/file/sub", me(0o755)).unwrap_err();
        assert!(matches!(err, RootError::NotADirectory { .. }), "{err}");
        assert!(err.to_string().contains("/x/file"), "{err}");
    }

    #[test]
    fn write_needs_an_existing_parent() {
        let (_tmp, root) = scratch();
        let err = root
            .write_atomic("/etc/ssh/sshd_config", b"", me(0o644), None)
            .unwrap_err();
        match &err {
            RootError::ParentMissing { path, parent } => {
                assert_eq!(path, "/etc/ssh/sshd_config");
                assert_eq!(parent, "/etc/ssh");
            }
            other => panic!("unexpected {other}"),
        }
        assert!(err.to_string().contains("create_dir_all"), "{err}");
    }

    #[test]
    fn write_refuses_a_directory_in_place_of_the_file() {
        let (tmp, root) = scratch();
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        let err = root.write_atomic("/d", b"x", me(0o644), None).unwrap_err();
        assert!(
            matches!(
                err,
                RootError::NotARegularFile {
                    kind: FileKind::Dir,
                    ..
                }
            ),
            "{err}"
        );
        assert!(temp_leftovers(tmp.path()).is_empty());
    }

    #[test]
    fn list_dir_is_sorted() {
        let (tmp, root) = scratch();
        mkdirs(&root, "/etc/sshd_config.d");
        for name in ["b.conf", "a.conf", "50-cloud-init.conf"] {
            std::fs::write(tmp.path().join("etc/sshd_config.d").join(name), b"").unwrap();
        }
        assert_eq!(
            root.list_dir("/etc/sshd_config.d").unwrap().unwrap(),
            vec!["50-cloud-init.conf", "a.conf", "b.conf"]
        );
        assert_eq!(root.list_dir("/").unwrap().unwrap(), vec!["etc"]);
        assert_eq!(root.list_dir("/missing").unwrap(), None);
    }

    #[test]
    fn remove_file_with_backup() {
        let (tmp, root) = scratch();
        mkdirs(&root, "/etc");
        root.write_atomic("/etc/old.conf", b"old\n", me(0o640), None)
            .unwrap();
        let backup = Backup::new("r");
        assert!(root.remove_file("/etc/old.conf", Some(&backup)).unwrap());
        assert!(!tmp.path().join("etc/old.conf").exists());
        let kept = "/var/lib/batten/backup/r/etc/old.conf";
        assert_eq!(root.read(kept).unwrap().unwrap(), b"old\n");
        assert_eq!(root.metadata(kept).unwrap().unwrap().mode, 0o640);
        assert!(!root.remove_file("/etc/old.conf", Some(&backup)).unwrap());
        assert!(!root.remove_file("/missing/dir/file", None).unwrap());

        // A link is removed itself, never its target.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("t"), b"keep\n").unwrap();
        host_symlink(outside.path().join("t"), tmp.path().join("etc/link")).unwrap();
        assert!(root.remove_file("/etc/link", Some(&backup)).unwrap());
        assert!(std::fs::symlink_metadata(tmp.path().join("etc/link")).is_err());
        assert_eq!(std::fs::read(outside.path().join("t")).unwrap(), b"keep\n");
        assert_eq!(
            root.metadata("/var/lib/batten/backup/r/etc/link")
                .unwrap()
                .unwrap()
                .kind,
            FileKind::Symlink
        );

        // A directory is not removed.
        let err = root.remove_file("/etc", None).unwrap_err();
        assert!(matches!(err, RootError::NotARegularFile { .. }), "{err}");
    }

    #[test]
    fn symlink_create_replace_and_idempotent() {
        let (tmp, root) = scratch();
        mkdirs(&root, "/etc/nginx/sites-enabled");
        let link = "/etc/nginx/sites-enabled/batten";
        let host_link = tmp.path().join("etc/nginx/sites-enabled/batten");

        assert!(
            root.symlink("../sites-available/batten", link, None)
                .unwrap()
        );
        assert_eq!(
            std::fs::read_link(&host_link).unwrap(),
            Path::new("../sites-available/batten")
        );
        assert!(
            !root
                .symlink("../sites-available/batten", link, None)
                .unwrap()
        );

        let backup = Backup::new("r");
        assert!(
            root.symlink("/etc/nginx/sites-available/other", link, Some(&backup))
                .unwrap()
        );
        assert_eq!(
            std::fs::read_link(&host_link).unwrap(),
            Path::new("/etc/nginx/sites-available/other")
        );
        let kept = tmp
            .path()
            .join("var/lib/batten/backup/r/etc/nginx/sites-enabled/batten");
        assert_eq!(
            std::fs::read_link(kept).unwrap(),
            Path::new("../sites-available/batten")
        );

        // A regular file is replaced by the link, after a backup.
        root.write_atomic(
            "/etc/nginx/sites-enabled/default",
            b"server {}\n",
            me(0o644),
            None,
        )
        .unwrap();
        assert!(
            root.symlink("x", "/etc/nginx/sites-enabled/default", Some(&backup))
                .unwrap()
        );
        assert_eq!(
            root.read("/var/lib/batten/backup/r/etc/nginx/sites-enabled/default")
                .unwrap()
                .unwrap(),
            b"server {}\n"
        );

        // A directory is not.
        mkdirs(&root, "/etc/nginx/sites-enabled/dir");
        assert!(
            root.symlink("x", "/etc/nginx/sites-enabled/dir", None)
                .is_err()
        );
        assert!(
            root.symlink("", "/etc/nginx/sites-enabled/empty", None)
                .is_err()
        );

        assert_eq!(
            root.list_dir("/etc/nginx/sites-enabled").unwrap().unwrap(),
            vec!["batten", "default", "dir"]
        );
    }

    #[test]
    fn read_following_within_relative_link() {
        let (tmp, root) = scratch();
        mkdirs(&root, "/usr/lib");
        mkdirs(&root, "/etc");
        std::fs::write(tmp.path().join("usr/lib/os-release"), b"ID=debian\n").unwrap();
        host_symlink("../usr/lib/os-release", tmp.path().join("etc/os-release")).unwrap();

        assert!(matches!(
            root.read("/etc/os-release"),
            Err(RootError::SymlinkRefused { .. })
        ));
        assert_eq!(
            root.read_following_within("/etc/os-release")
                .unwrap()
                .unwrap(),
            b"ID=debian\n"
        );
        // Plain files work too, and missing ones are None.
        assert_eq!(
            root.read_following_within("/usr/lib/os-release")
                .unwrap()
                .unwrap(),
            b"ID=debian\n"
        );
        assert_eq!(root.read_following_within("/etc/missing").unwrap(), None);
        host_symlink("nowhere", tmp.path().join("etc/dangling")).unwrap();
        assert_eq!(root.read_following_within("/etc/dangling").unwrap(), None);
    }

    #[test]
    fn read_following_within_stays_inside_the_root() {
        let (tmp, root) = scratch();
        mkdirs(&root, "/etc");
        std::fs::write(tmp.path().join("etc/passwd"), b"image:x:0:0::/:/bin/sh\n").unwrap();
        host_symlink("/../../etc/passwd", tmp.path().join("etc/x")).unwrap();
        host_symlink("../../../../etc/passwd", tmp.path().join("etc/y")).unwrap();
        // An intermediate link with an absolute target is re-rooted too.
        host_symlink("/etc", tmp.path().join("etc-link")).unwrap();

        for rel in ["/etc/x", "/etc/y", "/etc-link/passwd", "/etc-link/x"] {
            assert_eq!(
                root.read_following_within(rel).unwrap().unwrap(),
                b"image:x:0:0::/:/bin/sh\n",
                "{rel}"
            );
        }

        // A loop ends with an error, not a hang.
        host_symlink("b", tmp.path().join("etc/a")).unwrap();
        host_symlink("a", tmp.path().join("etc/b")).unwrap();
        let err = root.read_following_within("/etc/a").unwrap_err();
        assert!(matches!(err, RootError::TooManyLinks { .. }), "{err}");

        // A link to a directory is not a file.
        let err = root.read_following_within("/etc-link").unwrap_err();
        assert!(matches!(err, RootError::NotARegularFile { .. }), "{err}");
    }

    #[test]
    fn temp_file_is_removed_after_an_error() {
        let (tmp, root) = scratch();
        mkdirs(&root, "/etc");
        root.write_atomic("/etc/f", b"before\n", me(0o644), None)
            .unwrap();

        FAIL_BEFORE_RENAME.with(|flag| flag.set(true));
        let err = root
            .write_atomic("/etc/f", b"after\n", me(0o644), None)
            .unwrap_err();
        assert!(err.to_string().contains("/etc/f"), "{err}");
        assert_eq!(root.read("/etc/f").unwrap().unwrap(), b"before\n");
        assert!(temp_leftovers(&tmp.path().join("etc")).is_empty());

        FAIL_BEFORE_RENAME.with(|flag| flag.set(true));
        assert!(
            root.write_atomic("/etc/new", b"x\n", me(0o644), None)
                .is_err()
        );
        assert_eq!(root.metadata("/etc/new").unwrap(), None);

        root.symlink("one", "/etc/l", None).unwrap();
        FAIL_BEFORE_RENAME.with(|flag| flag.set(true));
        assert!(root.symlink("two", "/etc/l", None).is_err());
        assert_eq!(
            std::fs::read_link(tmp.path().join("etc/l")).unwrap(),
            Path::new("one")
        );

        assert_eq!(root.list_dir("/etc").unwrap().unwrap(), vec!["f", "l"]);
        assert!(temp_leftovers(&tmp.path().join("etc")).is_empty());
    }

    #[test]
    fn host_detection_and_paths() {
        let (tmp, root) = scratch();
        assert!(!root.is_host());
        assert_eq!(root.path(), tmp.path());
        assert_eq!(root.host_path("/etc/passwd"), tmp.path().join("etc/passwd"));
        assert_eq!(root.host_path("etc/passwd"), tmp.path().join("etc/passwd"));
        assert!(Root::open(Path::new("/")).unwrap().is_host());

        let err = Root::open(&tmp.path().join("missing")).unwrap_err();
        assert!(matches!(err, RootError::OpenRoot { .. }), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
