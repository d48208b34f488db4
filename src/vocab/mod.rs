//! The vocabulary the layer kinds, the generator, the estimate and the automatic folding share,
//! below all of them: shapes of values, packed binary matrices, foldings of a layer's unit,
//! bit widths, and the per-layer resource model.
//!
//! Never: imports a layer kind, the model, the generator or the estimate.

pub mod bits;
pub mod cost;
pub mod fold;
pub mod matrix;
pub mod shape;
