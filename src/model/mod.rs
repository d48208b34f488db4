//! The exported integer model: the one artefact every downstream layer consumes.
//!
//! A model is an input shape, the kept planes and an ordered list of layers of explicit kinds
//! ([`crate::layers`]) over the packed bit-plane features of [`crate::bitslice`]: shapes flow
//! from one layer to the next, and the last layer gives the class scores.
//!
//! This module owns the model's invariants and its JSON form (`docs/model-format.md`). It knows
//! nothing of training or of hardware, and no kind's internals: each kind checks itself.

mod json;

pub use json::{from_json, load, save, to_json as json_text, FORMAT, MAX_FILE_BYTES, VERSION};

use serde::{Deserialize, Serialize};

use crate::bitslice::PlaneSet;
use crate::error::{Error, Result};
pub use crate::layers::{Dense, Layer, Produces, Scores, Shape};
pub(crate) use crate::vocab::matrix::valid_mask;
pub use crate::vocab::matrix::{threshold_bits, BinaryMatrix};

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
    /// Layers, input side first; the last one gives the class scores.
    pub layers: Vec<Layer>,
    /// Provenance.
    pub provenance: Provenance,
}

impl IntModel {
    /// A multilayer perceptron: dense threshold layers, then the output layer.
    pub fn mlp(
        input: InputShape,
        planes: PlaneSet,
        hidden: Vec<Dense>,
        output: BinaryMatrix,
        provenance: Provenance,
    ) -> IntModel {
        let mut layers: Vec<Layer> = hidden.into_iter().map(Layer::Dense).collect();
        layers.push(Layer::Scores(Scores { weights: output }));
        IntModel {
            input,
            planes,
            layers,
            provenance,
        }
    }

    /// Number of first-layer inputs (`pixels * K`).
    pub fn features(&self) -> usize {
        self.input.pixels() * self.planes.len()
    }

    /// How many of the [`IntModel::features`] some first-layer neuron reads: all of them but
    /// for a logic-mapped first layer, whose neurons read a few each (what its accelerator's
    /// input port carries).
    pub fn input_bits(&self) -> usize {
        match self.layers.first() {
            Some(Layer::Lut(l)) => l.reads().len(),
            _ => self.features(),
        }
    }

    /// The shape of the first layer's input: the image with `channels x K` bit channels.
    pub fn input_values(&self) -> Shape {
        Shape {
            height: self.input.height,
            width: self.input.width,
            channels: self.input.channels * self.planes.len(),
        }
    }

    /// The shape each layer receives, input side first, then the shape of the scores.
    pub fn shapes(&self) -> Vec<Shape> {
        let mut shape = self.input_values();
        let mut out = vec![shape];
        for l in &self.layers {
            shape = l.semantics().output_shape(shape);
            out.push(shape);
        }
        out
    }

    /// Number of classes (the values of the last layer's output).
    pub fn classes(&self) -> usize {
        self.layers.last().map_or(0, |l| {
            let shapes = self.shapes();
            l.semantics().output_shape(shapes[shapes.len() - 2]).len()
        })
    }

    /// Widths of the dense threshold layers.
    pub fn hidden_widths(&self) -> Vec<usize> {
        self.layers
            .iter()
            .filter_map(Layer::as_dense)
            .map(|l| l.weights.rows())
            .collect()
    }

    /// The hidden layers in the architecture notation of `cbnn train --arch`
    /// (`c32,p2,c64,p2,d256`).
    pub fn arch(&self) -> String {
        self.layers
            .iter()
            .filter(|l| l.semantics().produces() == Produces::Bits)
            .map(|l| l.semantics().notation())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The dense layers and the output layer when the model is a multilayer perceptron (what
    /// the fast engines run); `None` for any other stack of kinds.
    pub fn as_mlp(&self) -> Option<(Vec<&Dense>, &Scores)> {
        let (last, rest) = self.layers.split_last()?;
        let hidden: Option<Vec<&Dense>> = rest.iter().map(Layer::as_dense).collect();
        Some((hidden?, last.as_scores()?))
    }

    /// Model size in bits: every binary weight plus every threshold, a threshold of a layer with
    /// `N` inputs taking `ceil(log2(N + 2))` bits (it ranges over `0..=N+1`).
    pub fn size_bits(&self) -> u64 {
        self.layers.iter().map(|l| l.semantics().size_bits()).sum()
    }

    /// Checks every invariant; `path` names the file in errors.
    pub fn validate(&self, path: &std::path::Path) -> Result<()> {
        let bad = |msg: String| Err(Error::bad_file(path, msg));
        if self.input.pixels() == 0 {
            return bad("input shape has a zero dimension".into());
        }
        if self.layers.is_empty() {
            return bad("model has no layers".into());
        }
        let mut shape = self.input_values();
        let count = self.layers.len();
        for (i, l) in self.layers.iter().enumerate() {
            let s = l.semantics();
            let name = match s.produces() {
                Produces::Scores => "output layer".to_string(),
                Produces::Bits => format!("layer {i}"),
            };
            // The scores end the model: exactly one layer gives them, the last.
            if (s.produces() == Produces::Scores) != (i + 1 == count) {
                return bad(match s.produces() {
                    Produces::Scores => format!(
                        "layer {i}: only the last layer may be of kind \"{}\"",
                        s.kind()
                    ),
                    Produces::Bits => format!(
                        "the last layer must give the class scores (kind \"output\"), not be of \
                         kind \"{}\"",
                        s.kind()
                    ),
                });
            }
            if let Err(msg) = s.check(shape) {
                return bad(format!("{name} {msg}"));
            }
            shape = s.output_shape(shape);
        }
        Ok(())
    }
}

/// Smallest `p` in `0..=n` with `pred(p)`, for a monotone `pred` (false, then true); `n + 1`
/// when there is none: the threshold search of every lowering to the integer model.
pub fn first_true(n: usize, pred: impl Fn(usize) -> bool) -> u32 {
    let (mut lo, mut hi) = (0usize, n + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo as u32
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
