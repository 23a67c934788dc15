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
//!
//! The files below split that work by job: `at` holds the single steps on
//! an open directory handle that everything else is built from; `read` and
//! `write` the operations on root-relative paths; `temp` the temporary names
//! that make writes atomic; `backup` the copies kept of what a run replaces;
//! `home` the making and unmaking of new users' homes; `error` and `meta` the
//! values they all return.

mod at;
mod backup;
mod error;
mod home;
mod meta;
mod read;
mod temp;
#[cfg(test)]
mod test_support;
mod write;

pub use backup::Backup;
pub use error::RootError;
pub use meta::{FileKind, FileMeta, Owner};
#[cfg(test)]
pub use test_support::scratch_root;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use at::{refuse_component, walk_flags};
use error::io_error;

/// How many symbolic links [`Root::read_following_within`] follows before it
/// gives up. The kernel allows 40; 16 is plenty for real distribution links
/// and stops a loop quickly. Kept here because both the resolver (`read`)
/// and the message for a loop (`error`) use it.
const MAX_LINK_HOPS: usize = 16;

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
}

#[cfg(test)]
mod tests {
    use super::test_support::{me, scratch};
    use super::*;
    use std::os::unix::fs::symlink as host_symlink;

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
