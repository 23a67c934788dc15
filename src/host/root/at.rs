//! Single steps on an open directory handle: the `*at` system calls that
//! every operation of [`Root`](super::Root) is built from. Each one looks at,
//! reads, lists, checks or flushes one entry of a directory batten already
//! holds, and none follows a link; keeping them in one place gives reading,
//! writing, backups and homes exactly one way of taking each step.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{Mode, fchmod, fstat, fstatat};
use nix::unistd::{Gid, Uid, fchown};

use super::error::{RootError, io_error};
use super::meta::{FileKind, FileMeta, Owner, meta_from_stat};

/// Flags for walking one directory component: a handle that can only be used
/// as a starting point for further `*at` calls, refusing links.
pub(super) fn walk_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Flags for reading a regular file: no link following, no blocking on a
/// FIFO swapped in at the last moment, no controlling terminal from a device.
pub(super) fn read_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC
}

/// lstat of `name` in `dir`; `None` when it does not exist.
pub(super) fn lstat_at(
    dir: BorrowedFd<'_>,
    name: &str,
    shown: &str,
) -> Result<Option<FileMeta>, RootError> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(meta_from_stat(&st))),
        Err(Errno::ENOENT) => Ok(None),
        Err(err) => Err(io_error(shown, "inspect", err)),
    }
}

/// The error for a component that `openat(O_DIRECTORY|O_NOFOLLOW)` would not
/// open as a directory: a link (refused) or something that is not a
/// directory.
pub(super) fn refuse_component(
    dir: BorrowedFd<'_>,
    name: &str,
    component: String,
    path: &str,
) -> RootError {
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

/// Reads the regular file `name` in `dir` with its metadata; `None` when it
/// does not exist. Links and non-regular files are refused; the type is
/// checked before opening (so that no device is ever opened) and again on the
/// open handle (in case it was swapped).
pub(super) fn read_at(
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
pub(super) fn read_link_at(
    dir: BorrowedFd<'_>,
    name: &str,
    shown: &str,
) -> Result<String, RootError> {
    let target = readlinkat(dir, name).map_err(|err| io_error(shown, "read symbolic link", err))?;
    target
        .into_string()
        .map_err(|_| RootError::NonUtf8LinkTarget {
            path: shown.to_string(),
        })
}

/// The names in the directory `dir` (without `.` and `..`).
pub(super) fn list_names(dir: BorrowedFd<'_>, shown: &str) -> Result<Vec<String>, RootError> {
    match read_names(dir, shown)? {
        (names, false) => Ok(names),
        (_, true) => Err(RootError::NonUtf8Name {
            path: shown.to_string(),
        }),
    }
}

/// The UTF-8 names in `dir`, sorted, and whether it holds others too.
pub(super) fn read_names(
    dir: BorrowedFd<'_>,
    shown: &str,
) -> Result<(Vec<String>, bool), RootError> {
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

/// Opens the directory `name` under `dir`, refusing a link (or anything
/// else) in its place.
pub(super) fn open_dir_at(
    dir: BorrowedFd<'_>,
    name: &str,
    shown: &str,
) -> Result<OwnedFd, RootError> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| io_error(shown, "open directory", err))
}

/// Refuses to write into a directory owned by a user other than root or the
/// new entry's owner: that user could rename or replace entries while batten
/// works in it.
pub(super) fn check_dir_owner(
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
pub(super) fn apply_owner(fd: BorrowedFd<'_>, owner: Owner, shown: &str) -> Result<(), RootError> {
    let st = fstat(fd).map_err(|err| io_error(shown, "inspect", err))?;
    if st.st_uid != owner.uid || st.st_gid != owner.gid {
        let changed = fchown(
            fd,
            Some(Uid::from_raw(owner.uid)),
            Some(Gid::from_raw(owner.gid)),
        );
        tolerate_no_owners(fd, changed).map_err(|err| io_error(shown, "change owner", err))?;
    }
    let changed = fchmod(fd, Mode::from_bits_truncate(owner.mode & 0o7777));
    tolerate_no_owners(fd, changed).map_err(|err| io_error(shown, "change mode", err))
}

/// A file system without Unix owners and modes (FAT, a Raspberry Pi's boot
/// partition; or a FUSE one that does not implement them) cannot be given
/// any: the call's refusal there is no failure, since what every file of
/// it shows is set by the mount, not by batten.
fn tolerate_no_owners(fd: BorrowedFd<'_>, result: nix::Result<()>) -> nix::Result<()> {
    match result {
        Err(Errno::ENOSYS | Errno::EOPNOTSUPP) => Ok(()),
        Err(Errno::EPERM)
            if nix::sys::statfs::fstatfs(fd)
                .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::MSDOS_SUPER_MAGIC) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Gives an open file or directory its owner and then its mode (in that
/// order: chown clears set-id bits).
pub(super) fn set_owner_mode(
    fd: BorrowedFd<'_>,
    owner: Owner,
    shown: &str,
) -> Result<(), RootError> {
    fchown(
        fd,
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
    )
    .map_err(|err| io_error(shown, "set the owner of", err))?;
    fchmod(fd, Mode::from_bits_truncate(owner.mode & 0o7777))
        .map_err(|err| io_error(shown, "set the mode of", err))
}

/// Flushes a directory so that a rename or unlink in it survives a crash.
/// The walking handles are `O_PATH`, which cannot be fsynced, so this opens
/// the same directory for reading through `.`.
pub(super) fn sync_dir(dir: BorrowedFd<'_>, shown: &str) -> Result<(), RootError> {
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
