//! cbnn: compact binary neural networks, from bit-sliced images to verified hardware.
//!
//! Layers, each depending only on those before it:
//! [`data`] → [`bitslice`] → [`train`] (the only float code) → [`model`] → [`reference`](mod@reference).
//! See ARCHITECTURE.md for how data flows between them.

#![warn(missing_docs)]

pub mod bitslice;
pub mod cli;
pub mod cosim;
pub mod data;
pub mod error;
pub mod model;
pub mod prune;
pub mod reference;
pub mod rtlgen;
pub mod sensitivity;
pub mod synth;
pub mod train;
pub mod util;

pub use error::{Error, Result};
