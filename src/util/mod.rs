//! Small helpers shared by every layer: atomic file output, a deterministic random generator,
//! progress reporting, a checked face on the GEMM library, scratch and run directories.

pub mod atomic;
pub mod gemm;
pub mod hash;
pub mod input;
pub mod output;
pub mod process;
pub mod progress;
pub mod rng;
pub mod rundir;
pub mod scratch;
pub mod shell;
pub mod target;
