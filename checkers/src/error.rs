//! Errors for unreadable or invalid input: each names the file, line and column.

use std::fmt;

/// Where in an input file something was found (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name as the user gave it (or `-` for stdin).
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// 1-based column number (in characters); 1 when only the line is known.
    pub column: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A history that cannot be read or does not follow the format's rules.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Malformed or invalid content at a location.
    #[error("{at}: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// What was wrong, and what was expected.
        message: String,
    },
}

impl InputError {
    /// An error at `file:line:column`.
    pub fn at(file: &str, line: u64, column: u64, message: impl Into<String>) -> InputError {
        InputError::Invalid {
            at: Location {
                file: file.to_string(),
                line,
                column,
            },
            message: message.into(),
        }
    }
}
