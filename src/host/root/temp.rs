//! Temporary names beside a file: how batten names the entry it builds
//! before renaming it into place, and how it clears the ones an interrupted
//! run left behind.

use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, symlinkat, unlinkat};

use super::at::{lstat_at, read_names};
use super::error::{RootError, io_error};
use super::meta::FileKind;

/// How many temporary names to try before giving up. A name can only be
/// taken if an earlier run was killed between creating and renaming it.
const TEMP_NAME_ATTEMPTS: u32 = 100;

/// Counter that makes temporary names unique within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

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

/// The temporary names for `name` in `dir` (see [`temp_prefix`]); other
/// names, whatever they are, do not matter here.
pub(super) fn temps_of(dir: BorrowedFd<'_>, name: &str) -> Vec<String> {
    let prefix = temp_prefix(name);
    read_names(dir, name)
        .map(|(names, _)| names)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Removes temporary entries for `name` that an earlier batten left behind
/// when it was killed between creating and renaming them. Only entries of
/// other processes are touched (the run lock keeps other runs out), and only
/// files and links: temporary directories are swept where directories are
/// made (`make_dir_whole`, `make_home`).
pub(super) fn sweep_stale_temps(dir: BorrowedFd<'_>, name: &str) {
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

/// Tries fresh temporary names beside `name` until `make` creates one
/// (a name already taken is tried again: at first boot the pid is often the
/// same on every machine).
pub(super) fn with_temp_name<T>(
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
pub(super) fn create_temp_file(
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
pub(super) fn create_temp_link(
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
