//! The facts batten reads about a file and sets on one: its kind, owner
//! and mode, as plain values that plans and checks can compare.

use std::fmt;

use nix::sys::stat::{FileStat, SFlag};

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

/// Turns a stat result into the fields callers compare.
pub(super) fn meta_from_stat(st: &FileStat) -> FileMeta {
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
