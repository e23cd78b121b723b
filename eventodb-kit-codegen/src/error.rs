//! What can go wrong while generating: reading the folder, parsing JSON, and schemas the
//! dialect does not accept.

use std::fmt;
use std::path::PathBuf;

/// A failed generation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("cannot access {}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A schema file is not valid JSON.
    #[error("{}: not valid JSON", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// One or more schemas the dialect does not accept; every one found is listed.
    #[error("{}", SchemaErrors(errors))]
    Schema {
        /// The errors, in file order.
        errors: Vec<SchemaError>,
    },
    /// A [`Settings`](crate::Settings) value that must be a Rust path is not one: the
    /// runtime crate's path (`crate_path`) or a derive (`derive`).
    #[error("`Settings::{setting}(\"{value}\")`: {message}")]
    Setting {
        /// The setting's method, `crate_path` or `derive`.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What is wrong, and what to write instead.
        message: String,
    },
    /// The generated code did not parse (a bug in the generator; please report it).
    #[error("generated code does not parse")]
    Syntax(#[source] syn::Error),
    /// `run()` was called outside a build script and no output folder was set.
    #[error("OUT_DIR is not set: call this from build.rs or set `Settings::out_dir`")]
    NoOutDir,
}

/// One problem in one schema: the file, the JSON pointer of the node, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// The schema file, relative to the schema folder, with `/` separators.
    pub file: String,
    /// JSON pointer of the offending node inside the file (empty for the root).
    pub pointer: String,
    /// What is wrong or unsupported, and what to write instead when there is a fix.
    pub message: String,
}

impl SchemaError {
    pub(crate) fn new(file: &str, pointer: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            pointer: pointer.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "(root)"
        } else {
            &self.pointer
        };
        write!(f, "{} at {}: {}", self.file, pointer, self.message)
    }
}

impl std::error::Error for SchemaError {}

struct SchemaErrors<'a>(&'a [SchemaError]);

impl fmt::Display for SchemaErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, "schema error: {one}"),
            many => {
                write!(f, "{} schema errors:", many.len())?;
                for error in many {
                    write!(f, "\n  {error}")?;
                }
                Ok(())
            }
        }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
