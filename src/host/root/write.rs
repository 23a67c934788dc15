//! Changing the root: directories, files and links are made, replaced or
//! removed atomically (temporary entry, fsync, rename, fsync of the
//! directory), only in directories nobody else can change, and never through
//! a link.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{Mode, fstat, mkdirat};
use nix::unistd::{UnlinkatFlags, geteuid, unlinkat};

use super::at::{
    apply_owner, check_dir_owner, list_names, lstat_at, read_at, read_link_at, refuse_component,
    set_owner_mode, sync_dir, walk_flags,
};
use super::backup::Backup;
use super::error::{RootError, io_error};
use super::meta::{FileKind, FileMeta, Owner};
use super::temp::{
    create_temp_file, create_temp_link, sweep_stale_temps, temps_of, with_temp_name,
};
use super::{RelPath, Root, show};

impl Root {
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
        let Some((dir, meta)) = self.entry(&path)? else {
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

    /// Removes a directory this run made, if it is still empty (never
    /// following a link); `Ok(false)` when it is gone or not empty, since a
    /// rollback must not take what someone else put there.
    pub fn remove_empty_dir(&self, rel: &str) -> Result<bool, RootError> {
        let path = RelPath::parse(rel)?;
        let (parents, name) = path.split_last()?;
        let Some((dir, meta)) = self.entry(&path)? else {
            return Ok(false);
        };
        if meta.kind != FileKind::Dir {
            return Ok(false);
        }
        match unlinkat(dir.as_fd(), name, UnlinkatFlags::RemoveDir) {
            Ok(()) => {}
            Err(Errno::ENOENT | Errno::ENOTEMPTY | Errno::EEXIST) => return Ok(false),
            Err(err) => return Err(io_error(&path.shown, "remove directory", err)),
        }
        sync_dir(dir.as_fd(), &show(parents))?;
        log::debug!("removed directory {}", path.shown);
        Ok(true)
    }

    /// The directory holding `path` and what `path` is in it, without
    /// following a link; `None` when either is missing.
    fn entry(&self, path: &RelPath) -> Result<Option<(OwnedFd, FileMeta)>, RootError> {
        let (parents, name) = path.split_last()?;
        let Some(dir) = self.open_dir(parents, &path.shown)? else {
            return Ok(None);
        };
        Ok(lstat_at(dir.as_fd(), name, &path.shown)?.map(|meta| (dir, meta)))
    }

    /// Rewrites a file where its bytes lie, so that none of the old bytes
    /// stay on the device: on a file system that does not copy on write
    /// (FAT, a Pi's boot partition) a rename would leave them in freed
    /// clusters, and on a path-based FUSE one (fusefat) an old handle is
    /// no way back to them. The new contents go in first, padded with
    /// `pad` bytes to the old length and flushed (so every old byte is
    /// overwritten, and a power cut leaves a readable file: the new text
    /// and padding), then the file is cut to its new length and flushed.
    /// The old file is kept in `backup`. `Ok(false)` when it already holds
    /// `contents`; a missing file is written as `write_atomic` would.
    pub fn rewrite_in_place(
        &self,
        rel: &str,
        contents: &[u8],
        pad: u8,
        owner: Owner,
        backup: &Backup,
    ) -> Result<bool, RootError> {
        use std::io::Write as _;
        let path = RelPath::parse(rel)?;
        let (_, name) = path.split_last()?;
        let Some((dir, _)) = self.entry(&path)? else {
            return self.write_atomic(rel, contents, owner, Some(backup));
        };
        let Some((old, meta)) = read_at(dir.as_fd(), name, &path.shown)? else {
            return self.write_atomic(rel, contents, owner, Some(backup));
        };
        if old == contents {
            return Ok(false);
        }
        self.backup_file(backup, &path.shown, &old, &meta)?;
        let flags = OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(dir.as_fd(), name, flags, Mode::empty())
            .map_err(|err| io_error(&path.shown, "open to rewrite", err))?;
        let mut file = File::from(fd);
        let mut padded = contents.to_vec();
        padded.resize(old.len().max(contents.len()), pad);
        file.write_all(&padded)
            .and_then(|()| file.sync_all())
            .map_err(|err| io_error(&path.shown, "rewrite in place", err))?;
        file.set_len(contents.len() as u64)
            .and_then(|()| file.sync_all())
            .map_err(|err| io_error(&path.shown, "cut to its new length", err))?;
        Ok(true)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::test_support::{me, mkdirs, scratch, temp_leftovers};
    use nix::unistd::{Gid, Uid};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink as host_symlink};
    use std::path::Path;

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
}
