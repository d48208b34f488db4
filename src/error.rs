//! The library's one error type.
//!
//! Every failure a user can cause (a bad file, a bad flag, a path that cannot be written) is an
//! [`Error`] whose message is one sentence naming the file or flag and what is wrong. The binary
//! maps errors to exit codes with [`Error::exit_code`]: `2` for bad input or usage, `1` for a
//! check that ran and failed (a checksum mismatch, a failed verification).

use std::io;
use std::path::{Path, PathBuf};

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the cbnn library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file exists but its contents are not what they must be.
    #[error("{}: {msg}", path.display())]
    BadFile {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A command-line value or combination of values is invalid.
    #[error("{0}")]
    Usage(String),
    /// A check ran and failed (checksum mismatch, verification failure).
    #[error("{0}")]
    CheckFailed(String),
    /// A download failed.
    #[error("{0}")]
    Network(String),
}

impl Error {
    /// A [`Error::BadFile`] for `path`.
    pub fn bad_file(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::BadFile {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A [`Error::Usage`] with `msg`.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// The process exit code this error maps to (see the command-line contract).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::CheckFailed(_) | Error::Network(_) => 1,
            Error::BadFile { .. } | Error::Io { .. } | Error::Usage(_) => 2,
        }
    }
}
