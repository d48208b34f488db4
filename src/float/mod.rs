//! The full-precision counterpart: a float32 network of the same shape as a binary network, on
//! 8-bit pixels (not bit planes), trained by `cbnn train --float` and run by a GEMM-based
//! engine.
//!
//! It is the yardstick the binary networks' speed and accuracy are compared with (`cbnn
//! bench`); nothing in the binary path depends on it. Its layers are dense (`W x + b`),
//! convolutions (`k x k` windows over `H x W x C` values, channels last, stride 1, window order
//! `(dy, dx, c)`, zero padding for "same") and max-pools (`p x p`, stride `p`). Every dense
//! layer and convolution but the last layer is followed by `ReLU`; the last layer's outputs are
//! the class scores (their argmax is the class). Pixels enter as `value / 255`.

mod kernels;
pub mod train;

pub use kernels::has_avx2_fma;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layers::{
    conv_notation, conv_output, pad_for, pool_output, window_rows, Padding, Shape,
};
use crate::model::InputShape;
use crate::util::atomic;

/// Value of the `format` field of a full-precision model file.
pub const FORMAT: &str = "cbnn-float-mlp";
/// Version of the format this build writes (version 2: layers of several kinds).
pub const VERSION: u32 = 2;
/// Oldest version this build reads (version 1: dense layers without a `kind`).
pub const OLDEST_VERSION: u32 = 1;

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

/// One convolution: `out_channels x (k * k * in_channels)` weights, row-major, columns in
/// window order `(dy, dx, c)`, and a bias per output channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv {
    /// Window side `k`.
    pub kernel: usize,
    /// Border handling ("same": zeros around the image).
    pub padding: Padding,
    /// Channels received.
    pub in_channels: usize,
    /// Channels produced.
    pub out_channels: usize,
    /// Weights, row `o` holds output channel `o`'s window.
    pub weights: Vec<f32>,
    /// Biases.
    pub bias: Vec<f32>,
}

/// One layer of a full-precision model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Layer {
    /// Dense.
    Dense(Dense),
    /// Convolution.
    Conv(Conv),
    /// Max-pool of `size x size` windows, stride `size`.
    Maxpool {
        /// Window side and stride.
        size: usize,
    },
}

impl Layer {
    /// The shape it hands on when it receives `input`.
    pub fn output(&self, input: Shape) -> Shape {
        match self {
            Layer::Dense(d) => Shape::flat(d.outputs),
            Layer::Conv(c) => conv_output(input, c.kernel, c.padding, c.out_channels),
            Layer::Maxpool { size } => pool_output(input, *size),
        }
    }

    /// Its weights and biases.
    fn params(&self) -> (&[f32], &[f32]) {
        match self {
            Layer::Dense(d) => (&d.weights, &d.bias),
            Layer::Conv(c) => (&c.weights, &c.bias),
            Layer::Maxpool { .. } => (&[], &[]),
        }
    }

    /// The architecture notation of `cbnn train --arch` (`d256`, `c32k5`, `p2`).
    fn notation(&self) -> String {
        match self {
            Layer::Dense(d) => format!("d{}", d.outputs),
            Layer::Conv(c) => conv_notation(c.out_channels, c.kernel, c.padding),
            Layer::Maxpool { size } => format!("p{size}"),
        }
    }
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

/// A full-precision network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloatModel {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when written by this build.
    pub version: u32,
    /// Image shape.
    pub input: InputShape,
    /// Classes.
    pub classes: usize,
    /// Hidden layers then the output layer (dense).
    pub layers: Vec<Layer>,
    /// Provenance.
    pub provenance: FloatProvenance,
}

impl FloatModel {
    /// The values the first layer receives: the image, one channel per pixel channel.
    pub fn input_values(&self) -> Shape {
        Shape {
            height: self.input.height,
            width: self.input.width,
            channels: self.input.channels,
        }
    }

    /// Widths of the hidden dense layers, input side first.
    pub fn hidden_widths(&self) -> Vec<usize> {
        let n = self.layers.len().saturating_sub(1);
        self.layers[..n]
            .iter()
            .filter_map(|l| match l {
                Layer::Dense(d) => Some(d.outputs),
                _ => None,
            })
            .collect()
    }

    /// The hidden layers in the architecture notation of `cbnn train --arch`.
    pub fn arch(&self) -> String {
        let n = self.layers.len().saturating_sub(1);
        let v: Vec<String> = self.layers[..n].iter().map(Layer::notation).collect();
        v.join(",")
    }

    /// Size of the parameters in bits (32 per weight and bias).
    pub fn size_bits(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| {
                let (w, b) = l.params();
                32 * (w.len() + b.len()) as u64
            })
            .sum()
    }

    /// Checks shapes and values; `path` names the file in errors.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |msg: String| Error::bad_file(path, msg);
        if self.layers.is_empty() {
            return Err(bad("the model has no layers".into()));
        }
        let mut shape = self.input_values();
        if shape.is_empty() {
            return Err(bad("the input shape has no pixels".into()));
        }
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate() {
            match l {
                Layer::Dense(d) => {
                    if d.inputs != shape.len() {
                        return Err(bad(format!(
                            "layer {i} has {} inputs but receives {}",
                            d.inputs,
                            shape.len()
                        )));
                    }
                    if d.outputs == 0 {
                        return Err(bad(format!("layer {i} has no outputs")));
                    }
                    if d.inputs.checked_mul(d.outputs) != Some(d.weights.len()) {
                        return Err(bad(format!(
                            "layer {i} has {} weights for {} x {}",
                            d.weights.len(),
                            d.outputs,
                            d.inputs
                        )));
                    }
                    if d.bias.len() != d.outputs {
                        return Err(bad(format!(
                            "layer {i} has {} biases for {} outputs",
                            d.bias.len(),
                            d.outputs
                        )));
                    }
                }
                Layer::Conv(c) => {
                    let k = c.kernel;
                    if k == 0 || (c.padding == Padding::Same && k % 2 == 0) {
                        return Err(bad(format!(
                            "layer {i} has a kernel of {k}; \"same\" padding needs an odd kernel, \"valid\" one of at least 1"
                        )));
                    }
                    if c.in_channels != shape.channels {
                        return Err(bad(format!(
                            "layer {i} is for {} channels but receives {}",
                            c.in_channels, shape.channels
                        )));
                    }
                    if c.padding == Padding::Valid && (k > shape.height || k > shape.width) {
                        return Err(bad(format!(
                            "layer {i} has a {k}x{k} kernel but receives {}x{} positions",
                            shape.height, shape.width
                        )));
                    }
                    if c.out_channels == 0 {
                        return Err(bad(format!("layer {i} has no output channels")));
                    }
                    let window = k
                        .checked_mul(k)
                        .and_then(|kk| kk.checked_mul(c.in_channels))
                        .unwrap_or(usize::MAX);
                    if window.checked_mul(c.out_channels) != Some(c.weights.len()) {
                        return Err(bad(format!(
                            "layer {i} has {} weights for {} channels of {}",
                            c.weights.len(),
                            c.out_channels,
                            (k as u128) * (k as u128) * (c.in_channels as u128)
                        )));
                    }
                    if c.bias.len() != c.out_channels {
                        return Err(bad(format!(
                            "layer {i} has {} biases for {} output channels",
                            c.bias.len(),
                            c.out_channels
                        )));
                    }
                }
                Layer::Maxpool { size } => {
                    if *size == 0 || *size > shape.height || *size > shape.width {
                        return Err(bad(format!(
                            "layer {i} pools {size}x{size} windows of {}x{} positions",
                            shape.height, shape.width
                        )));
                    }
                }
            }
            let (w, b) = l.params();
            if w.iter().chain(b).any(|x| !x.is_finite()) {
                return Err(bad(format!("layer {i} holds a value that is not finite")));
            }
            if i == last && !matches!(l, Layer::Dense(_)) {
                return Err(bad(format!("the output layer (layer {i}) is not dense")));
            }
            shape = l.output(shape);
        }
        if shape.len() != self.classes {
            return Err(bad(format!(
                "the output layer has {} outputs for {} classes",
                shape.len(),
                self.classes
            )));
        }
        Ok(())
    }
}

/// The largest full-precision model file read: 4 GiB, room for the most weights training may
/// hold (2^28) as JSON numbers.
pub const MAX_FILE_BYTES: u64 = 4 << 30;

/// Reads and validates a full-precision model file.
pub fn load(path: &Path) -> Result<FloatModel> {
    let text =
        crate::util::input::read_text_capped(path, MAX_FILE_BYTES, "a full-precision model")?;
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
    let mut value = value;
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) if v == u64::from(OLDEST_VERSION) => {
            // Version 1 layers are dense layers without a kind.
            if let Some(layers) = value.get_mut("layers").and_then(|l| l.as_array_mut()) {
                for l in layers.iter_mut().filter_map(|l| l.as_object_mut()) {
                    l.insert("kind".into(), "dense".into());
                }
            }
        }
        v => {
            return Err(Error::bad_file(
                path,
                format!(
                    "full-precision model version {} is not supported; this build reads versions {OLDEST_VERSION} to {VERSION}",
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
    crate::util::input::read_text_capped(path, MAX_FILE_BYTES, "a full-precision model")
        .ok()
        .and_then(|t| {
            // The format field comes first in files this tool writes; parse only if present.
            t.contains(FORMAT)
                .then(|| serde_json::from_str::<serde_json::Value>(&t).ok())
                .flatten()
        })
        .is_some_and(|v| v.get("format").and_then(|f| f.as_str()) == Some(FORMAT))
}

/// Inference engine: dense layers batch by batch through GEMM (`matrixmultiply`), single
/// images through a vectorised matrix-vector product; convolutions image by image, the windows
/// gathered into rows (zeros outside the image) and multiplied by the weights in one GEMM.
/// Pixels are converted to float on the way in; the `1/255` input scaling is folded into the
/// first layer with weights once, when the engine is built (max-pool and `ReLU` commute with a
/// positive scale, zero padding is unchanged by it).
#[derive(Clone, Debug)]
pub struct Engine {
    steps: Vec<(Layer, Shape, Shape)>,
    inputs: usize,
    classes: usize,
}

/// Reusable buffers of an [`Engine`].
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    patches: Vec<f32>,
}

impl Engine {
    /// An engine for `m` (which must be valid).
    pub fn new(m: &FloatModel) -> Engine {
        let mut shape = m.input_values();
        let mut steps = Vec::new();
        let mut scaled = false;
        for l in &m.layers {
            let mut l = l.clone();
            if !scaled {
                match &mut l {
                    Layer::Dense(Dense { weights, .. }) | Layer::Conv(Conv { weights, .. }) => {
                        weights.iter_mut().for_each(|w| *w /= 255.0);
                        scaled = true;
                    }
                    Layer::Maxpool { .. } => {}
                }
            }
            let out = l.output(shape);
            steps.push((l, shape, out));
            shape = out;
        }
        Engine {
            steps,
            inputs: m.input_values().len(),
            classes: m.classes,
        }
    }

    /// Inputs per image.
    pub fn inputs(&self) -> usize {
        self.inputs
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
        let last = self.steps.len() - 1;
        for (i, (l, input, output)) in self.steps.iter().enumerate() {
            let (ilen, olen) = (input.len(), output.len());
            scratch.b.clear();
            scratch.b.resize(n * olen, 0.0);
            match l {
                Layer::Dense(l) => dense(l, n, &scratch.a, &mut scratch.b),
                Layer::Conv(c) => {
                    let positions = output.height * output.width;
                    let window = c.kernel * c.kernel * c.in_channels;
                    for (x, z) in scratch
                        .a
                        .chunks_exact(ilen)
                        .zip(scratch.b.chunks_exact_mut(olen))
                    {
                        gather(c, *input, *output, x, &mut scratch.patches);
                        for row in z.chunks_exact_mut(c.out_channels) {
                            row.copy_from_slice(&c.bias);
                        }
                        // Z (positions x out) = windows (positions x window) * W^T + Z.
                        crate::util::gemm::gemm(
                            positions,
                            window,
                            c.out_channels,
                            &scratch.patches,
                            (window, 1),
                            &c.weights,
                            (1, window),
                            1.0,
                            z,
                            (c.out_channels, 1),
                        );
                    }
                }
                Layer::Maxpool { size } => {
                    for (x, y) in scratch
                        .a
                        .chunks_exact(ilen)
                        .zip(scratch.b.chunks_exact_mut(olen))
                    {
                        max_pool(*size, *input, *output, x, y);
                    }
                }
            }
            if i < last && !matches!(l, Layer::Maxpool { .. }) {
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

/// `n` rows of `x` through dense layer `l` into `z` (`n x outputs`).
fn dense(l: &Dense, n: usize, x: &[f32], z: &mut [f32]) {
    if n == 1 {
        kernels::gemv(&l.weights, l.inputs, x, &l.bias, z);
        return;
    }
    for row in z.chunks_exact_mut(l.outputs) {
        row.copy_from_slice(&l.bias);
    }
    // Z (n x out) = X (n x in) * W^T (in x out) + Z.
    crate::util::gemm::gemm(
        n,
        l.inputs,
        l.outputs,
        x,
        (l.inputs, 1),
        &l.weights,
        (1, l.inputs),
        1.0,
        z,
        (l.outputs, 1),
    );
}

/// The windows of one image `x` as rows of `patches` (zeros outside the image).
fn gather(c: &Conv, input: Shape, output: Shape, x: &[f32], patches: &mut Vec<f32>) {
    let (k, ch) = (c.kernel, input.channels);
    let (window, pad) = (k * k * ch, pad_for(c.kernel, c.padding));
    patches.clear();
    patches.resize(output.height * output.width * window, 0.0);
    for y in 0..output.height {
        for xx in 0..output.width {
            let row = &mut patches[(y * output.width + xx) * window..][..window];
            for r in window_rows(input, pad, k, y, xx) {
                let (to, len) = ((r.dy * k + r.dx.start) * ch, r.dx.len() * ch);
                row[to..to + len].copy_from_slice(&x[r.source * ch..][..len]);
            }
        }
    }
}

/// Max-pool of one image `x` into `y`.
fn max_pool(p: usize, input: Shape, output: Shape, x: &[f32], y: &mut [f32]) {
    let c = input.channels;
    for oy in 0..output.height {
        for ox in 0..output.width {
            let o = &mut y[(oy * output.width + ox) * c..][..c];
            o.fill(f32::NEG_INFINITY);
            for dy in 0..p {
                for dx in 0..p {
                    let s = ((oy * p + dy) * input.width + ox * p + dx) * c;
                    for (v, &xv) in o.iter_mut().zip(&x[s..s + c]) {
                        *v = v.max(xv);
                    }
                }
            }
        }
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
            .map(|w| {
                Layer::Dense(Dense {
                    inputs: w[0],
                    outputs: w[1],
                    weights: (0..w[0] * w[1]).map(|_| rng.uniform(-1.0, 1.0)).collect(),
                    bias: (0..w[1]).map(|_| rng.uniform(-0.1, 0.1)).collect(),
                })
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
            let Layer::Dense(l) = l else {
                unreachable!("dense models only")
            };
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
        if let Layer::Dense(d) = &mut bad.layers[1] {
            d.bias.pop();
        }
        save(&bad, &path).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("layer 1 has 2 biases for 3 outputs"), "{err}");
        // A version-1 file: dense layers without a kind.
        let mut v1 = serde_json::to_value(&m).unwrap();
        v1["version"] = 1.into();
        for l in v1["layers"].as_array_mut().unwrap() {
            l.as_object_mut().unwrap().remove("kind");
        }
        std::fs::write(&path, v1.to_string()).unwrap();
        assert_eq!(load(&path).unwrap().layers, m.layers);
        // A convolution that does not fit what it receives is named.
        let conv = FloatModel {
            layers: vec![
                Layer::Conv(Conv {
                    kernel: 3,
                    padding: Padding::Same,
                    in_channels: 2,
                    out_channels: 2,
                    weights: vec![0.5; 2 * 18],
                    bias: vec![0.0; 2],
                }),
                m.layers[1].clone(),
            ],
            ..m.clone()
        };
        save(&conv, &path).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(
            err.contains("layer 0 is for 2 channels but receives 1"),
            "{err}"
        );
        std::fs::write(&path, "{\"format\": \"cbnn-model\"}").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("is a binary model"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
