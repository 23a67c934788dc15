//! The undo log: what a run changed on the machine, newest last, so that a
//! failed step puts every file back and removes every home and directory
//! it made.
//!
//! One log for the whole run: the interpreter in `apply` and the concerns'
//! own apply steps (the account files, the host keys) add to the same log
//! as each change happens, so a failure half-way through a step is undone
//! as surely as one between steps.

use log::warn;

use crate::host::root::{Backup, Owner, Root};

/// One change this run made.
#[derive(Debug)]
pub enum Undo {
    /// A file as it was before this run touched it.
    File {
        /// Root-relative path.
        path: String,
        /// Its contents and owner; `None` when it did not exist.
        before: Option<(Vec<u8>, Owner)>,
        /// When the path was a symlink: its target, to make it again.
        link: Option<String>,
    },
    /// A directory this run made to hold a file (removed again only while
    /// it is empty).
    Dir {
        /// Root-relative path.
        path: String,
    },
    /// A home this run made from the skeleton.
    Home {
        /// Root-relative path of the home.
        home: String,
        /// The owner and mode it was made with.
        owner: Owner,
        /// The skeleton it was filled from.
        skel: Option<String>,
    },
}

/// The changes of one run, in the order they were made.
#[derive(Debug, Default)]
pub struct UndoLog(Vec<Undo>);

impl UndoLog {
    /// An empty log.
    pub fn new() -> UndoLog {
        UndoLog::default()
    }

    /// Record that `path` (a regular file, or nothing) was replaced.
    pub fn file(&mut self, path: &str, before: Option<(Vec<u8>, Owner)>) {
        self.0.push(Undo::File {
            path: path.to_string(),
            before,
            link: None,
        });
    }

    /// Record any change.
    pub fn push(&mut self, undo: Undo) {
        self.0.push(undo);
    }

    /// Whether nothing was changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The changes, oldest first.
    pub fn entries(&self) -> &[Undo] {
        &self.0
    }

    /// Put back every file and remove every home, newest first; say what
    /// happened, a line each.
    pub fn roll_back(self, root: &Root, backup: &Backup) -> String {
        let mut lines = Vec::new();
        for undo in self.0.into_iter().rev() {
            lines.push(match undo {
                Undo::Home { home, owner, skel } => {
                    match root.remove_made_home(&home, owner, skel.as_deref()) {
                        Ok(None) => format!("removed {home}, made by this run"),
                        Ok(Some(why)) => format!("kept {home}, made by this run: {why}"),
                        Err(e) => format!("could NOT remove {home}, made by this run: {e}"),
                    }
                }
                Undo::Dir { path } => match root.remove_empty_dir(&path) {
                    Ok(true) => format!("removed {path}, made by this run"),
                    Ok(false) => format!("kept {path}, made by this run: not empty"),
                    Err(e) => format!("could NOT remove {path}, made by this run: {e}"),
                },
                Undo::File { path, before, link } => {
                    match put_back(root, backup, &path, before, link) {
                        Ok(()) => format!("restored {path}"),
                        Err(e) => format!("could NOT restore {path}: {e}"),
                    }
                }
            });
        }
        if lines.is_empty() {
            "no file had been changed".to_string()
        } else {
            lines.join("\n")
        }
    }
}

/// Make `path` what it was: the link again, the old contents (the backup
/// copy moved back, which needs no space, else written), or nothing.
fn put_back(
    root: &Root,
    backup: &Backup,
    path: &str,
    before: Option<(Vec<u8>, Owner)>,
    link: Option<String>,
) -> Result<(), crate::host::root::RootError> {
    match (before, link) {
        (_, Some(target)) => root.symlink(&target, path, None).map(|_| ()),
        (Some((bytes, owner)), None) => {
            match root.restore_backup_copy(path, backup, &bytes, owner) {
                Ok(true) => Ok(()),
                Ok(false) => root.write_atomic(path, &bytes, owner, None).map(|_| ()),
                Err(e) => {
                    warn!(
                        "{path}: the backup copy could not be moved back ({e}); writing the previous contents instead"
                    );
                    root.write_atomic(path, &bytes, owner, None).map(|_| ())
                }
            }
        }
        (None, None) => root.remove_file(path, None).map(|_| ()),
    }
}
