//! cbnn: compact binary neural networks, from bit-sliced images to verified hardware.
//!
//! Layers, each depending only on those before it:
//! [`data`] → [`bitslice`] → [`train`] (float training of the binary network) → [`model`] →
//! [`reference`](mod@reference). [`float`] is the full-precision counterpart the benchmarks
//! compare with; the binary path does not depend on it.
//!
//! The hardware side: [`vocab`] (shapes, binary matrices, foldings, widths, per-structure
//! costs) → [`layers`] (each kind's semantics and hardware) → [`model`] → [`plan`] (a design,
//! computed once) → [`rtlgen`] (writes it), [`cosim`] (checks it), [`synth`] (synthesizes it).
//! See ARCHITECTURE.md for how data flows between them.

#![warn(missing_docs)]

/// `eprintln!` that never panics: progress and notes on standard error
/// ([`util::progress::stderr_line`]).
macro_rules! errln {
    ($($arg:tt)*) => { $crate::util::progress::stderr_line(format_args!($($arg)*)) };
}

/// An [`Error::Invalid`] that starts with a setting: `invalid!(Setting::Epochs, " must be ...")`.
macro_rules! invalid {
    ($setting:expr, $($fmt:tt)*) => {
        $crate::error::Error::invalid([
            $crate::error::Part::from($setting),
            $crate::error::Part::from(format!($($fmt)*)),
        ])
    };
}

pub mod bench;
pub mod bitslice;
pub mod cli;
pub mod cosim;
pub mod data;
pub mod error;
pub mod float;
pub mod flow;
pub mod interop;
pub mod jobs;
pub mod layers;
pub mod model;
pub mod plan;
pub mod prune;
pub mod reference;
pub mod rtlgen;
pub mod sensitivity;
pub mod sweep;
pub mod synth;
pub mod train;
pub mod util;
pub mod vocab;

pub use error::{Error, Result};
