//! Keeping what a run replaces: every file or link batten overwrites or
//! removes can be kept under `/var/lib/batten/backup/<run>/` inside the same
//! root, and moved back into place when a run is rolled back.

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, openat, renameat};
use nix::sys::stat::{Mode, fstat, fstatat};
use nix::unistd::{getegid, geteuid};

use super::at::{apply_owner, read_at, read_flags, sync_dir};
use super::error::{RootError, io_error};
use super::meta::{FileMeta, Owner};
use super::{RelPath, Root};

/// Where backups live inside the root. Fixed by the design so that an
/// administrator knows where to look after a run.
const BACKUP_BASE: &str = "/var/lib/batten/backup";

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

impl Root {
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
    pub(super) fn backup_file(
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
    pub(super) fn backup_link(
        &self,
        backup: &Backup,
        shown: &str,
        target: &str,
    ) -> Result<(), RootError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::FileKind;
    use crate::host::root::test_support::{me, mkdirs, scratch};

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
}
