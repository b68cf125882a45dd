//! Diagnostics: every problem found in the schemas, tied to its file and JSON pointer.

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in a schema file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The schema file.
    pub file: PathBuf,
    /// A JSON pointer into it (`/properties/seed/type`); empty for the root.
    pub pointer: String,
}

impl Location {
    /// The root of `file`.
    pub fn root(file: &Path) -> Self {
        Location {
            file: file.to_path_buf(),
            pointer: String::new(),
        }
    }

    /// The member `key` of this place.
    pub fn key(&self, key: &str) -> Self {
        let mut pointer = self.pointer.clone();
        pointer.push('/');
        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
        Location {
            file: self.file.clone(),
            pointer,
        }
    }

    /// The item `index` of this place.
    pub fn index(&self, index: usize) -> Self {
        self.key(&index.to_string())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.file.display(), self.pointer)
    }
}

/// Where a problem is: a JSON pointer, or a line and column for a file that is not JSON.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// A node of a parsed file.
    Node(Location),
    /// A position in a file that could not be parsed, or the file itself (line 0).
    Text {
        /// The file.
        file: PathBuf,
        /// 1-based line; 0 when the problem is the whole file.
        line: usize,
        /// 1-based column.
        column: usize,
    },
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Where.
    pub place: Place,
    /// What, lowercase, no trailing period.
    pub message: String,
}

impl Diagnostic {
    /// The JSON pointer of the problem, when it has one.
    pub fn pointer(&self) -> Option<&str> {
        match &self.place {
            Place::Node(loc) => Some(&loc.pointer),
            Place::Text { .. } => None,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Place::Node(loc) => write!(f, "{loc}: {}", self.message),
            Place::Text { file, line: 0, .. } => write!(f, "{}: {}", file.display(), self.message),
            Place::Text { file, line, column } => {
                write!(f, "{}:{line}:{column}: {}", file.display(), self.message)
            }
        }
    }
}

/// Every problem found in one run, in file and pointer order: the errors that refuse a
/// schema, and the warnings of what was typed loosely or left unchecked (graceful mode).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records a problem at a node.
    pub fn error(&mut self, loc: &Location, message: impl Into<String>) {
        self.items.push(Diagnostic {
            place: Place::Node(loc.clone()),
            message: message.into(),
        });
    }

    /// Records a problem at a text position.
    pub fn text_error(
        &mut self,
        file: &Path,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) {
        self.items.push(Diagnostic {
            place: Place::Text {
                file: file.to_path_buf(),
                line,
                column,
            },
            message: message.into(),
        });
    }

    /// Records a warning at a node: something typed loosely or left unchecked, the rest of
    /// the schema still generated.
    pub fn warn(&mut self, loc: &Location, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            place: Place::Node(loc.clone()),
            message: message.into(),
        });
    }

    /// True when no error was recorded (warnings do not count).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The warnings, sorted by place, each once.
    pub fn warnings(&self) -> Vec<Diagnostic> {
        let mut w = self.warnings.clone();
        w.sort();
        w.dedup();
        w
    }

    /// The problems, sorted by place.
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    /// Adds all of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
        self.warnings.extend(other.warnings);
    }

    /// The number of errors recorded so far (a mark to compare against later).
    pub(crate) fn error_count(&self) -> usize {
        self.items.len()
    }

    /// `Ok(value)` when nothing was recorded, else all problems, sorted.
    pub fn check<T>(mut self, value: T) -> Result<T, Diagnostics> {
        if self.items.is_empty() {
            Ok(value)
        } else {
            self.items.sort();
            self.items.dedup();
            self.warnings = self.warnings();
            Err(self)
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.items {
            writeln!(f, "{d}")?;
        }
        for d in &self.warnings {
            writeln!(f, "warning: {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
