//! What can go wrong inside the root, and how each failure is worded:
//! every message names the root-relative path and what to do about it.

use std::io;
use std::path::PathBuf;

use super::MAX_LINK_HOPS;
use super::meta::FileKind;

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

/// Wraps a system call failure with the path and what batten was doing.
pub(super) fn io_error(path: &str, action: &'static str, err: impl Into<io::Error>) -> RootError {
    RootError::Io {
        path: path.to_string(),
        action,
        source: err.into(),
    }
}
