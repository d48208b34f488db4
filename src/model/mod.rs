//! The exported integer model: the one artefact every downstream layer consumes.
//!
//! A model is a stack of binary dense layers over the packed bit-plane features of
//! [`crate::bitslice`]. Each hidden layer is a matrix of ±1 weights (packed, `1` = `+1`) and one
//! integer threshold per neuron: the neuron outputs `+1` iff `popcount(XNOR(w, x)) >= T`. The
//! output layer is a matrix of ±1 weights whose popcounts are the class scores.
//!
//! This module owns the model's invariants and its JSON form (`docs/model-format.md`). It knows
//! nothing of training or of hardware.

mod json;

pub use json::{from_json, load, save, to_json as json_text, FORMAT, VERSION};

use serde::{Deserialize, Serialize};

use crate::bitslice::{words_for, PlaneSet};
use crate::error::{Error, Result};

/// A packed matrix of ±1 values: `rows` rows of `cols` bits, `1` meaning `+1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryMatrix {
    rows: usize,
    cols: usize,
    words: usize,
    bits: Vec<u64>,
}

impl BinaryMatrix {
    /// A matrix of all `-1`.
    pub fn new(rows: usize, cols: usize) -> BinaryMatrix {
        let words = words_for(cols);
        BinaryMatrix {
            rows,
            cols,
            words,
            bits: vec![0; rows * words],
        }
    }

    /// Number of rows (neurons).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Words per packed row.
    pub fn words_per_row(&self) -> usize {
        self.words
    }

    /// The packed bits of row `r` (padding bits zero).
    pub fn row(&self, r: usize) -> &[u64] {
        &self.bits[r * self.words..(r + 1) * self.words]
    }

    /// Mutable packed row `r`; callers must keep padding bits zero.
    pub(crate) fn row_mut(&mut self, r: usize) -> &mut [u64] {
        &mut self.bits[r * self.words..(r + 1) * self.words]
    }

    /// All packed rows, row after row.
    pub fn as_words(&self) -> &[u64] {
        &self.bits
    }

    /// Weight `(r, c)`: `true` means `+1`.
    pub fn get(&self, r: usize, c: usize) -> bool {
        (self.bits[r * self.words + c / 64] >> (c % 64)) & 1 == 1
    }

    /// Sets weight `(r, c)` (`true` = `+1`).
    pub fn set(&mut self, r: usize, c: usize, plus: bool) {
        let w = &mut self.bits[r * self.words + c / 64];
        let m = 1u64 << (c % 64);
        if plus {
            *w |= m;
        } else {
            *w &= !m;
        }
    }

    /// Inverts every weight of row `r` (padding stays zero).
    pub fn invert_row(&mut self, r: usize) {
        let cols = self.cols;
        for (i, w) in self.row_mut(r).iter_mut().enumerate() {
            *w = !*w & valid_mask(cols, i);
        }
    }
}

/// Mask of the bits of word `i` that hold one of `cols` columns.
pub(crate) fn valid_mask(cols: usize, i: usize) -> u64 {
    let rem = cols.saturating_sub(i * 64);
    if rem >= 64 {
        u64::MAX
    } else {
        (1u64 << rem) - 1
    }
}

/// A hidden layer: binary weights and one threshold per neuron.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HiddenLayer {
    /// `outputs x inputs` weights.
    pub weights: BinaryMatrix,
    /// Per neuron: output `+1` iff `popcount(XNOR(w, x)) >= threshold`; in `0..=inputs + 1`.
    pub thresholds: Vec<u32>,
}

/// Image shape the model expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputShape {
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// Channels per pixel.
    pub channels: usize,
}

impl InputShape {
    /// Bytes per image.
    pub fn pixels(&self) -> usize {
        self.height * self.width * self.channels
    }
}

/// Most inputs (or outputs) one layer of a model may have: 2^26, far beyond any model cbnn
/// trains (the 8-plane MNIST input has 6272), small enough that shape arithmetic cannot wrap.
pub const MAX_LAYER_INPUTS: usize = 1 << 26;

/// Most weight bits a model file may declare over all its layers (2^32 bits, 512 MiB).
pub const MAX_WEIGHT_BITS: u64 = 1 << 32;

/// Where a model came from. Informational: nothing in inference reads it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Provenance {
    /// The tool and version that wrote the model.
    pub tool: String,
    /// The command that produced it (`train`, `prune`, ...).
    pub command: String,
    /// Dataset name or directory.
    pub dataset: String,
    /// Random seed.
    pub seed: u64,
    /// Epochs trained.
    pub epochs: usize,
    /// Epoch whose weights were kept (best validation accuracy).
    pub best_epoch: usize,
    /// Training images used.
    pub train_images: usize,
    /// Validation images used.
    pub val_images: usize,
    /// Validation accuracy of this integer model (reference model), fraction in 0..1.
    pub val_accuracy: f64,
    /// Test accuracy of this integer model (reference model), fraction in 0..1.
    pub test_accuracy: Option<f64>,
    /// Training hyper-parameters, for the record.
    pub hyper: serde_json::Value,
}

/// The integer XNOR-popcount model.
#[derive(Clone, Debug, PartialEq)]
pub struct IntModel {
    /// Input image shape.
    pub input: InputShape,
    /// Kept planes, most significant first.
    pub planes: PlaneSet,
    /// Hidden layers, input side first.
    pub hidden: Vec<HiddenLayer>,
    /// Output layer: `classes x inputs` weights; class scores are the row popcounts.
    pub output: BinaryMatrix,
    /// Provenance.
    pub provenance: Provenance,
}

impl IntModel {
    /// Number of first-layer inputs (`pixels * K`).
    pub fn features(&self) -> usize {
        self.input.pixels() * self.planes.len()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.output.rows()
    }

    /// Hidden layer widths.
    pub fn hidden_widths(&self) -> Vec<usize> {
        self.hidden.iter().map(|l| l.weights.rows()).collect()
    }

    /// Model size in bits: every binary weight plus every threshold, a threshold of a layer with
    /// `N` inputs taking `ceil(log2(N + 2))` bits (it ranges over `0..=N+1`).
    pub fn size_bits(&self) -> u64 {
        size_bits_for(self.features(), &self.hidden_widths(), self.classes())
    }

    /// Checks every invariant; `path` names the file in errors.
    pub fn validate(&self, path: &std::path::Path) -> Result<()> {
        let bad = |msg: String| Err(Error::bad_file(path, msg));
        if self.input.pixels() == 0 {
            return bad("input shape has a zero dimension".into());
        }
        let mut inputs = self.features();
        for (i, l) in self.hidden.iter().enumerate() {
            if l.weights.cols() != inputs {
                return bad(format!(
                    "layer {i} has {} inputs but receives {inputs}",
                    l.weights.cols()
                ));
            }
            if l.weights.rows() == 0 {
                return bad(format!("layer {i} has no neurons"));
            }
            if l.thresholds.len() != l.weights.rows() {
                return bad(format!(
                    "layer {i} has {} thresholds for {} neurons",
                    l.thresholds.len(),
                    l.weights.rows()
                ));
            }
            if let Some((j, t)) = l
                .thresholds
                .iter()
                .enumerate()
                .find(|(_, &t)| t as usize > inputs + 1)
            {
                return bad(format!(
                    "layer {i} neuron {j} has threshold {t}, outside 0..={}",
                    inputs + 1
                ));
            }
            inputs = l.weights.rows();
        }
        if self.output.cols() != inputs {
            return bad(format!(
                "output layer has {} inputs but receives {inputs}",
                self.output.cols()
            ));
        }
        if self.output.rows() < 2 {
            return bad(format!(
                "output layer has {} classes; at least 2 needed",
                self.output.rows()
            ));
        }
        Ok(())
    }
}

/// Size in bits of a model with `features` inputs, these hidden widths and `classes` outputs:
/// one bit per binary weight plus `ceil(log2(N + 2))` bits per threshold of a layer with `N`
/// inputs.
pub fn size_bits_for(features: usize, hidden: &[usize], classes: usize) -> u64 {
    let mut inputs = features as u64;
    let mut bits = 0;
    for &w in hidden {
        bits += w as u64 * (inputs + threshold_bits(inputs) as u64);
        inputs = w as u64;
    }
    bits + classes as u64 * inputs
}

/// Bits needed for a threshold of a layer with `n` inputs (values `0..=n+1`).
pub fn threshold_bits(n: u64) -> u32 {
    64 - (n + 1).leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_bits_cover_range() {
        assert_eq!(threshold_bits(0), 1); // values 0..=1
        assert_eq!(threshold_bits(2), 2); // 0..=3
        assert_eq!(threshold_bits(6), 3); // 0..=7
        assert_eq!(threshold_bits(7), 4); // 0..=8
        assert_eq!(threshold_bits(256), 9);
    }

    #[test]
    fn invert_row_keeps_padding_zero() {
        let mut m = BinaryMatrix::new(2, 70);
        m.set(0, 3, true);
        m.invert_row(0);
        assert!(!m.get(0, 3));
        assert!(m.get(0, 69));
        assert_eq!(m.row(0)[1] >> 6, 0);
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn size_counts_weights_and_thresholds() {
        // 10 inputs -> 4 neurons (4 x (10 weights + 4 threshold bits)) -> 2 classes (2 x 4 weights)
        assert_eq!(size_bits_for(10, &[4], 2), 4 * (10 + 4) + 2 * 4);
        // the 8-plane MNIST baseline
        assert_eq!(size_bits_for(6272, &[256, 256, 256], 10), 1_747_200);
    }
}
