//! The collector every reader reports to: one `Issue` per problem or
//! warning, with the file, line, column and key path it was found at, so
//! that the whole list reaches the user in one go.

use std::fmt;

use serde::Serialize;

use crate::input::yaml::{Node, Pos};

/// One problem or warning in a user-data document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// The file as messages name it: its path or `<stdin>`, and the MIME
    /// part for a multipart file.
    pub file: String,
    /// 1-based line within the file or part; 0 when the YAML parser gave no
    /// position.
    pub line: u64,
    /// 1-based column; 0 when the YAML parser gave no position.
    pub column: u64,
    /// Key path inside the document, empty for the document itself.
    pub path: String,
    /// What is wrong and, where it can, what would be accepted.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Collects errors and warnings for one file while the tree is walked.
pub struct Checker {
    /// File label per cloud-config part (`Pos::part` indexes it).
    files: Vec<String>,
    /// Problems that make the document invalid.
    pub errors: Vec<Issue>,
    /// Things accepted but worth knowing.
    pub warnings: Vec<Issue>,
}

impl Checker {
    /// A checker for a document made of parts whose issues are named
    /// `files[part]` (a path, or a path and a MIME part).
    pub fn new(files: Vec<String>) -> Checker {
        Checker {
            files,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn issue(&self, pos: Pos, path: &str, message: String) -> Issue {
        Issue {
            file: self
                .files
                .get(pos.part)
                .or(self.files.first())
                .cloned()
                .unwrap_or_default(),
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            message,
        }
    }

    /// Record an error at `pos`.
    pub fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        let issue = self.issue(pos, path, message.into());
        self.errors.push(issue);
    }

    /// Record a warning at `pos`.
    pub fn warn(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        let issue = self.issue(pos, path, message.into());
        self.warnings.push(issue);
    }

    /// Record that `node` is not the `what` this place in the document
    /// wants, naming the kind of value found instead.
    pub(super) fn expected(&mut self, node: &Node, path: &str, what: &str) {
        self.error(
            node.pos,
            path,
            format!("expected {what}, found {}", node.value.kind()),
        );
    }
}
