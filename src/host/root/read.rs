//! Reading the root: files, text, metadata, link targets, directory listings
//! and free space, each reached by walking from the root handle and refusing
//! links; and the one reader that does follow links, clamped to the root
//! ([`Root::read_following_within`]).

use std::collections::VecDeque;
use std::os::fd::AsFd;

use nix::sys::stat::fstat;
use nix::unistd::geteuid;

use super::at::{list_names, lstat_at, read_at, read_link_at};
use super::error::{RootError, io_error};
use super::meta::{FileKind, FileMeta, Owner, meta_from_stat};
use super::{MAX_LINK_HOPS, RelPath, Root, show, show_child};

impl Root {
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
                let device = device_of(&dir, &path.shown)?;
                // A file system that reports no size at all (some FUSE ones,
                // such as fusefat) says nothing about its free space.
                if st.blocks() == 0 {
                    #[allow(clippy::useless_conversion)]
                    return Ok((u64::from(device_of(&dir, &path.shown)?), u64::MAX));
                }
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
}

/// The device an open directory is on.
fn device_of(dir: &std::os::fd::OwnedFd, shown: &str) -> Result<nix::libc::dev_t, RootError> {
    Ok(fstat(dir.as_fd())
        .map_err(|err| io_error(shown, "inspect", err))?
        .st_dev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::test_support::{mkdirs, scratch};
    use std::os::unix::fs::symlink as host_symlink;

    #[test]
    fn read_to_string_refuses_invalid_utf8() {
        let (tmp, root) = scratch();
        std::fs::write(tmp.path().join("latin1"), b"caf\xe9\n").unwrap();
        let err = root.read_to_string("/latin1").unwrap_err();
        assert!(matches!(err, RootError::NotUtf8 { .. }), "{err}");
        assert!(err.to_string().contains("/latin1"), "{err}");
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
}
