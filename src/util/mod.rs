//! Small helpers shared by every layer: atomic file output, a deterministic random generator,
//! progress reporting.

pub mod atomic;
pub mod hash;
pub mod progress;
pub mod rng;
