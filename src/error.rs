//! The library's one error type.
//!
//! Every failure a user can cause (a bad file, a bad setting, a path that cannot be written) is
//! an [`Error`] whose message is one sentence naming the file or setting and what is wrong. The
//! binary maps errors to exit codes with [`Error::exit_code`]: `2` for bad input or usage, `1`
//! for a check that ran and failed (a checksum mismatch, a failed verification).
//!
//! The library does not know the command line: a bad setting is an [`Error::Invalid`] whose
//! [`Message`] names it as a [`Setting`]. Its `Display` words a setting with
//! [`Setting::name`]; the command line words it with its flag instead
//! ([`Message::render`]).

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
    /// A value or combination of values is invalid (words that name no setting).
    #[error("{0}")]
    Usage(String),
    /// A setting is out of range or does not go with another one.
    #[error("{}", .0.render(Setting::name))]
    Invalid(Message),
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

    /// An [`Error::Invalid`] made of `parts` (settings and words).
    pub fn invalid(parts: impl IntoIterator<Item = Part>) -> Self {
        Error::Invalid(Message(parts.into_iter().collect()))
    }

    /// The message with every setting worded by `name` (the command line passes its flags).
    pub fn render(&self, name: impl Fn(Setting) -> &'static str) -> String {
        match self {
            Error::Invalid(m) => m.render(name),
            e => e.to_string(),
        }
    }

    /// The process exit code this error maps to (see the command-line contract).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::CheckFailed(_) | Error::Network(_) => 1,
            Error::BadFile { .. } | Error::Io { .. } | Error::Usage(_) | Error::Invalid(_) => 2,
        }
    }
}

/// A setting of a library call that a message can name. The command line has a flag for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is worded by `name`
pub enum Setting {
    Hidden,
    Arch,
    Planes,
    Epochs,
    Batch,
    Lr,
    LrFinal,
    Augment,
    Limit,
    Validation,
    Seeds,
    Methods,
    MaxDrop,
    NoiseMargin,
    Fold,
    Pipe,
    TargetCycles,
    PixelsPerBeat,
    BitsPerBeat,
    ClockMhz,
    Count,
    Mirror,
    Repeats,
    BatchSizes,
    Output,
    Json,
    Plot,
    Report,
    Predictions,
    Vcd,
    Work,
    Float,
    Input,
}

impl Setting {
    /// The setting in words, as the library's messages name it.
    pub fn name(self) -> &'static str {
        use Setting::*;
        match self {
            Hidden => "hidden widths",
            Arch => "architecture",
            Planes => "planes",
            Epochs => "epochs",
            Batch => "batch size",
            Lr => "learning rate",
            LrFinal => "final learning rate",
            Augment => "augmentation shift",
            Limit => "training image limit",
            Validation => "validation images",
            Seeds => "seeds",
            Methods => "methods",
            MaxDrop => "accuracy budget",
            NoiseMargin => "noise margin",
            Fold => "folding",
            Pipe => "popcount register stages",
            TargetCycles => "target cycles",
            PixelsPerBeat => "pixels per beat",
            BitsPerBeat => "bits per beat",
            ClockMhz => "clock (MHz)",
            Count => "image count",
            Mirror => "mirror",
            Repeats => "repeats",
            BatchSizes => "batch sizes",
            Output => "the output",
            Json => "the JSON report",
            Plot => "the plot",
            Report => "the report",
            Predictions => "the predictions file",
            Vcd => "the waveform",
            Work => "the work directory",
            Float => "full-precision training",
            Input => "input shape",
        }
    }
}

/// One piece of a [`Message`].
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Words.
    Text(String),
    /// A setting, worded by whoever shows the message.
    Setting(Setting),
}

impl From<Setting> for Part {
    fn from(s: Setting) -> Self {
        Part::Setting(s)
    }
}

impl From<String> for Part {
    fn from(s: String) -> Self {
        Part::Text(s)
    }
}

impl From<&str> for Part {
    fn from(s: &str) -> Self {
        Part::Text(s.to_string())
    }
}

/// A sentence that names settings (see [`Error::Invalid`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Message(pub Vec<Part>);

impl Message {
    /// The sentence, each setting worded by `name`.
    pub fn render(&self, name: impl Fn(Setting) -> &'static str) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::Setting(s) => name(*s),
            })
            .collect()
    }

    /// Whether the message names `setting`.
    pub fn names(&self, setting: Setting) -> bool {
        self.0.contains(&Part::Setting(setting))
    }
}
