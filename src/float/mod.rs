//! The full-precision counterpart: a float32 MLP of the same shape as a binary network, on 8-bit
//! pixels (not bit planes), trained by `cbnn train --float` and run by a GEMM-based engine.
//!
//! It is the yardstick the binary networks' speed and accuracy are compared with (`cbnn
//! bench`); nothing in the binary path depends on it. Hidden layers are `ReLU(W x + b)`, the
//! output layer `W x + b` (its argmax is the class). Pixels enter as `value / 255`.

mod kernels;
pub mod train;

pub use kernels::has_avx2_fma;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::InputShape;
use crate::util::atomic;

/// Value of the `format` field of a full-precision model file.
pub const FORMAT: &str = "cbnn-float-mlp";
/// Version of the format this build reads and writes.
pub const VERSION: u32 = 1;

/// One dense layer: `outputs x inputs` weights, row-major, and a bias per output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dense {
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// Weights, row `o` holds output `o`'s `inputs` weights.
    pub weights: Vec<f32>,
    /// Biases.
    pub bias: Vec<f32>,
}

/// Where a full-precision model came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FloatProvenance {
    /// Tool and version.
    pub tool: String,
    /// Dataset as given.
    pub dataset: String,
    /// Random seed.
    pub seed: u64,
    /// Epochs trained.
    pub epochs: usize,
    /// Epoch kept (best validation accuracy).
    pub best_epoch: usize,
    /// Validation accuracy of the kept epoch.
    pub val_accuracy: f64,
    /// Test accuracy, when measured.
    pub test_accuracy: Option<f64>,
    /// Hyper-parameters.
    pub hyper: serde_json::Value,
}

/// A full-precision MLP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloatModel {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// Image shape.
    pub input: InputShape,
    /// Classes.
    pub classes: usize,
    /// Hidden layers then the output layer.
    pub layers: Vec<Dense>,
    /// Provenance.
    pub provenance: FloatProvenance,
}

impl FloatModel {
    /// Hidden widths, input side first.
    pub fn hidden_widths(&self) -> Vec<usize> {
        let n = self.layers.len().saturating_sub(1);
        self.layers[..n].iter().map(|l| l.outputs).collect()
    }

    /// Size of the parameters in bits (32 per weight and bias).
    pub fn size_bits(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| 32 * (l.weights.len() + l.bias.len()) as u64)
            .sum()
    }

    /// Checks shapes and values; `path` names the file in errors.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |msg: String| Error::bad_file(path, msg);
        if self.layers.is_empty() {
            return Err(bad("the model has no layers".into()));
        }
        let mut inputs = self.input.pixels();
        if inputs == 0 {
            return Err(bad("the input shape has no pixels".into()));
        }
        for (i, l) in self.layers.iter().enumerate() {
            if l.inputs != inputs {
                return Err(bad(format!(
                    "layer {i} has {} inputs but receives {inputs}",
                    l.inputs
                )));
            }
            if l.outputs == 0 {
                return Err(bad(format!("layer {i} has no outputs")));
            }
            if l.weights.len() != l.inputs * l.outputs {
                return Err(bad(format!(
                    "layer {i} has {} weights for {} x {}",
                    l.weights.len(),
                    l.outputs,
                    l.inputs
                )));
            }
            if l.bias.len() != l.outputs {
                return Err(bad(format!(
                    "layer {i} has {} biases for {} outputs",
                    l.bias.len(),
                    l.outputs
                )));
            }
            if l.weights.iter().chain(&l.bias).any(|x| !x.is_finite()) {
                return Err(bad(format!("layer {i} holds a value that is not finite")));
            }
            inputs = l.outputs;
        }
        if inputs != self.classes {
            return Err(bad(format!(
                "the output layer has {inputs} outputs for {} classes",
                self.classes
            )));
        }
        Ok(())
    }
}

/// Reads and validates a full-precision model file.
pub fn load(path: &Path) -> Result<FloatModel> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(path, format!("not valid JSON ({e})")))?;
    match value.get("format").and_then(|f| f.as_str()) {
        Some(FORMAT) => {}
        Some(crate::model::FORMAT) => {
            return Err(Error::bad_file(
                path,
                "is a binary model; a full-precision model is expected",
            ))
        }
        _ => {
            return Err(Error::bad_file(
                path,
                format!("not a full-precision cbnn model (no \"format\": \"{FORMAT}\")"),
            ))
        }
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(VERSION) => {}
        v => {
            return Err(Error::bad_file(
                path,
                format!(
                    "full-precision model version {} is not supported; this build reads version {VERSION}",
                    v.map_or("(missing)".to_string(), |v| v.to_string())
                ),
            ))
        }
    }
    let m: FloatModel = serde_json::from_value(value)
        .map_err(|e| Error::bad_file(path, format!("invalid full-precision model: {e}")))?;
    m.validate(path)?;
    Ok(m)
}

/// Writes a full-precision model atomically.
pub fn save(m: &FloatModel, path: &Path) -> Result<()> {
    atomic::write_json(path, m)
}

/// Whether the JSON file at `path` is a full-precision model (by its `format` field; `false`
/// when it cannot be read).
pub fn is_float_model(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            // The format field comes first in files this tool writes; parse only if present.
            t.contains(FORMAT)
                .then(|| serde_json::from_str::<serde_json::Value>(&t).ok())
                .flatten()
        })
        .is_some_and(|v| v.get("format").and_then(|f| f.as_str()) == Some(FORMAT))
}

/// Inference engine: batches through GEMM (`matrixmultiply`), single images through a
/// vectorised matrix-vector product. Pixels are converted to float on the way in; the `1/255`
/// input scaling is folded into the first layer's weights once, when the engine is built.
#[derive(Clone, Debug)]
pub struct Engine {
    layers: Vec<Dense>,
    classes: usize,
}

/// Reusable buffers of an [`Engine`].
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
}

impl Engine {
    /// An engine for `m` (which must be valid).
    pub fn new(m: &FloatModel) -> Engine {
        let mut layers = m.layers.clone();
        for w in &mut layers[0].weights {
            *w /= 255.0;
        }
        Engine {
            layers,
            classes: m.classes,
        }
    }

    /// Inputs per image.
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs
    }

    /// Classes of `pixels` (`n` images back to back) into `out[..n]`.
    pub fn classify_into(&self, pixels: &[u8], scratch: &mut Scratch, out: &mut [usize]) {
        let d = self.inputs();
        let n = pixels.len() / d;
        assert_eq!(
            pixels.len(),
            n * d,
            "pixel count is not a multiple of the image size"
        );
        scratch.a.clear();
        scratch.a.extend(pixels.iter().map(|&p| f32::from(p)));
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate() {
            scratch.b.resize(n * l.outputs, 0.0);
            if n == 1 {
                kernels::gemv(&l.weights, l.inputs, &scratch.a, &l.bias, &mut scratch.b);
            } else {
                for row in scratch.b.chunks_exact_mut(l.outputs) {
                    row.copy_from_slice(&l.bias);
                }
                // Z (n x out) = X (n x in) * W^T (in x out) + Z.
                crate::util::gemm::gemm(
                    n,
                    l.inputs,
                    l.outputs,
                    &scratch.a,
                    (l.inputs, 1),
                    &l.weights,
                    (1, l.inputs),
                    1.0,
                    &mut scratch.b,
                    (l.outputs, 1),
                );
            }
            if i < last {
                for z in scratch.b.iter_mut() {
                    *z = z.max(0.0);
                }
            }
            std::mem::swap(&mut scratch.a, &mut scratch.b);
        }
        for (o, scores) in out.iter_mut().zip(scratch.a.chunks_exact(self.classes)) {
            *o = argmax(scores);
        }
    }

    /// Class of every image in `pixels`, in batches of `batch`, one thread.
    pub fn classify(&self, pixels: &[u8], batch: usize) -> Vec<usize> {
        let d = self.inputs();
        let mut out = vec![0; pixels.len() / d];
        let mut scratch = Scratch::default();
        for (px, o) in pixels.chunks(batch * d).zip(out.chunks_mut(batch)) {
            self.classify_into(px, &mut scratch, o);
        }
        out
    }
}

/// Index of the largest score, the lowest on ties.
fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::Rng;

    pub(crate) fn random_model(seed: u64, shape: &[usize]) -> FloatModel {
        let mut rng = Rng::new(seed, 1);
        let layers = shape
            .windows(2)
            .map(|w| Dense {
                inputs: w[0],
                outputs: w[1],
                weights: (0..w[0] * w[1]).map(|_| rng.uniform(-1.0, 1.0)).collect(),
                bias: (0..w[1]).map(|_| rng.uniform(-0.1, 0.1)).collect(),
            })
            .collect();
        FloatModel {
            format: FORMAT.into(),
            version: VERSION,
            input: InputShape {
                height: shape[0],
                width: 1,
                channels: 1,
            },
            classes: *shape.last().unwrap(),
            layers,
            provenance: FloatProvenance::default(),
        }
    }

    /// The textbook forward pass in f64, one image.
    fn naive(m: &FloatModel, px: &[u8]) -> Vec<f64> {
        let mut x: Vec<f64> = px.iter().map(|&p| f64::from(p) / 255.0).collect();
        for (i, l) in m.layers.iter().enumerate() {
            x = (0..l.outputs)
                .map(|o| {
                    let z: f64 = (0..l.inputs)
                        .map(|j| f64::from(l.weights[o * l.inputs + j]) * x[j])
                        .sum::<f64>()
                        + f64::from(l.bias[o]);
                    if i + 1 < m.layers.len() {
                        z.max(0.0)
                    } else {
                        z
                    }
                })
                .collect();
        }
        x
    }

    #[test]
    fn batched_and_single_inference_match_the_textbook_pass() {
        let m = random_model(3, &[37, 19, 13, 5]);
        let e = Engine::new(&m);
        let mut rng = Rng::new(4, 1);
        let px: Vec<u8> = (0..37 * 64).map(|_| rng.below(256) as u8).collect();
        // The textbook class, or None on a near tie (where float rounding may decide).
        let want: Vec<Option<usize>> = px
            .chunks(37)
            .map(|p| {
                let s = naive(&m, p);
                let mut sorted = s.clone();
                sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
                (sorted[0] - sorted[1] > 1e-4).then(|| {
                    s.iter()
                        .enumerate()
                        .max_by(|a, b| a.1.partial_cmp(b.1).unwrap())
                        .unwrap()
                        .0
                })
            })
            .collect();
        assert!(want.iter().filter(|w| w.is_some()).count() > 60);
        for batch in [1, 7, 64] {
            let got = e.classify(&px, batch);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(w.is_none_or(|w| w == *g), "batch {batch}, image {i}");
            }
        }
    }

    #[test]
    fn files_round_trip_and_bad_ones_are_named() {
        let dir = std::env::temp_dir().join(format!("cbnn-float-{}", std::process::id()));
        let path = dir.join("f.json");
        let m = random_model(5, &[6, 4, 3]);
        save(&m, &path).unwrap();
        assert_eq!(load(&path).unwrap(), m);
        assert!(is_float_model(&path));
        let mut bad = m.clone();
        bad.layers[1].bias.pop();
        save(&bad, &path).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("layer 1 has 2 biases for 3 outputs"), "{err}");
        std::fs::write(&path, "{\"format\": \"cbnn-model\"}").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("is a binary model"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
