//! cbnn: compact binary neural networks, from bit-sliced images to verified hardware.
//!
//! Layers, each depending only on those before it:
//! [`data`] → [`bitslice`] → [`train`] (float training of the binary network) → [`model`] →
//! [`reference`](mod@reference). [`float`] is the full-precision counterpart the benchmarks
//! compare with; the binary path does not depend on it.
//! See ARCHITECTURE.md for how data flows between them.

#![warn(missing_docs)]

pub mod bench;
pub mod bitslice;
pub mod cli;
pub mod cosim;
pub mod data;
pub mod error;
pub mod float;
pub mod model;
pub mod prune;
pub mod reference;
pub mod rtlgen;
pub mod sensitivity;
pub mod synth;
pub mod train;
pub mod util;

pub use error::{Error, Result};
