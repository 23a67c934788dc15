//! Scratch roots and owners shared by the unit tests of this module's files
//! (and, through [`scratch_root`], by the tests of modules that read roots).

use std::path::Path;

use nix::unistd::{getegid, geteuid};
use tempfile::TempDir;

use super::{Owner, Root};

/// A scratch root holding `files` (root-relative path, text), for the unit
/// tests of the modules that read roots.
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

/// A scratch root and an open handle on it.
pub(super) fn scratch() -> (TempDir, Root) {
    let tmp = tempfile::tempdir().expect("create temp dir");
    let root = Root::open(tmp.path()).expect("open root");
    (tmp, root)
}

/// Files owned by whoever runs the tests, so they pass with and without
/// root.
pub(super) fn me(mode: u32) -> Owner {
    Owner {
        uid: geteuid().as_raw(),
        gid: getegid().as_raw(),
        mode,
    }
}

pub(super) fn mkdirs(root: &Root, rel: &str) {
    root.create_dir_all(rel, me(0o755)).expect("create dirs");
}

/// Names in a host directory that look like batten's temporary entries.
pub(super) fn temp_leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".batten-"))
        .collect()
}
