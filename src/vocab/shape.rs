//! The shape of the ±1 values between two layers: height x width x channels.
//!
//! Vocabulary: layer kinds, the generator and the estimate all speak of it. Never: imports
//! anything of theirs.

use serde::{Deserialize, Serialize};

/// The shape of the ±1 values between two layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Values per position.
    pub channels: usize,
}

impl Shape {
    /// A flat vector of `n` values (what a dense layer produces).
    pub fn flat(n: usize) -> Shape {
        Shape {
            height: 1,
            width: 1,
            channels: n,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.height, self.width, self.channels)
    }
}
