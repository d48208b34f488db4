//! The folding of one layer's unit (neurons `PE` and inputs per neuron `SIMD` a cycle, popcount
//! pipeline registers) and the unit's shape, which together give its steps per image.
//!
//! Vocabulary of the layer kinds, the generator, the estimate and the automatic folding.
//! Never: knows about models or layer kinds (the folding of a whole model is
//! [`crate::plan::fold`]'s).

use serde::{Deserialize, Serialize};

/// The folding of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerFold {
    /// Neurons computed in parallel.
    pub pe: usize,
    /// Inputs consumed per neuron per cycle.
    pub simd: usize,
    /// Register stages after the popcount tree (0 or 1); each adds one cycle per image.
    #[serde(default)]
    pub pipe: usize,
}

impl LayerFold {
    /// A folding without popcount pipeline registers.
    pub fn new(pe: usize, simd: usize) -> Self {
        LayerFold { pe, simd, pipe: 0 }
    }
}

/// Most popcount pipeline register stages a layer may have.
pub const MAX_PIPE: usize = 1;

/// Shape of one layer as the hardware sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LayerShape {
    /// Inputs per neuron.
    pub inputs: usize,
    /// Neurons.
    pub outputs: usize,
}

impl LayerShape {
    /// Neuron folds `ceil(outputs / pe)`.
    pub fn nf(&self, f: LayerFold) -> usize {
        self.outputs.div_ceil(f.pe)
    }
    /// Input folds `ceil(inputs / simd)`.
    pub fn sf(&self, f: LayerFold) -> usize {
        self.inputs.div_ceil(f.simd)
    }
    /// Compute cycles per image: one per (neuron fold, input fold) step, plus the pipeline.
    pub fn steps(&self, f: LayerFold) -> usize {
        self.nf(f) * self.sf(f) + f.pipe
    }
    /// Whether one cycle covers the whole layer (no folding).
    pub fn fully_parallel(&self, f: LayerFold) -> bool {
        self.nf(f) * self.sf(f) == 1
    }
}
