//! Training of the full-precision counterpart: softmax cross-entropy, Adam with an
//! exponentially decaying learning rate, the epoch with the best validation accuracy kept.
//!
//! - A perceptron (`--hidden`, or `--arch` of dense layers only) is this module's own graph:
//!   `ReLU(W x + b)` layers whose forward and backward passes are GEMMs over the batch; the
//!   gradient is checked against finite differences in the tests.
//! - A convolutional network (`--arch` with convolutions or pooling) is the binary trainer's
//!   convolutional graph ([`crate::train::conv`]) in its full-precision mode: weights as they
//!   are, batch norm, `ReLU`, zero padding (its gradient is checked against finite differences
//!   there). Batch norm is folded into each layer's weights and bias on export.

use std::time::Instant;

use serde::Serialize;

use super::{
    Conv, Dense, Engine, FloatModel, FloatProvenance, Layer as FloatLayer, FORMAT, VERSION,
};
use crate::data::LabeledSet;
use crate::error::{Error, Result, Setting};
use crate::model::InputShape;
use crate::train::adam::Adam;
use crate::train::arch::Arch;
use crate::train::conv::{self, Activation, ConvNet};
use crate::train::net::{BatchNorm, Mode};
use crate::util::gemm::gemm;
use crate::util::progress;
use crate::util::rng::Rng;

/// Hyper-parameters of `cbnn train --float`.
#[derive(Clone, Debug, Serialize)]
pub struct FloatConfig {
    /// Hidden widths of a perceptron, input side first (when `arch` is `None`).
    pub hidden: Vec<usize>,
    /// A convolutional network's hidden layers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<Arch>,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Initial Adam learning rate.
    pub lr: f32,
    /// Final learning rate as a fraction of `lr`.
    pub lr_final: f32,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Print one line per epoch.
    #[serde(skip)]
    pub verbose: bool,
}

/// One epoch's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct FloatEpoch {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Validation accuracy.
    pub val_accuracy: f64,
    /// Wall-clock seconds of the training pass.
    pub seconds: f64,
    /// Images trained on.
    pub images: usize,
}

/// What [`train`] returns.
#[derive(Clone, Debug)]
pub struct FloatTrained {
    /// The model of the best epoch.
    pub model: FloatModel,
    /// Every epoch.
    pub history: Vec<FloatEpoch>,
    /// Training images per second over all epochs.
    pub images_per_second: f64,
}

/// A layer's parameters with their gradients and Adam moments.
#[derive(Clone, Debug)]
struct Layer {
    dense: Dense,
    gw: Vec<f32>,
    gb: Vec<f32>,
    mw: Vec<f32>,
    vw: Vec<f32>,
    mb: Vec<f32>,
    vb: Vec<f32>,
}

impl Layer {
    fn new(inputs: usize, outputs: usize, rng: &mut Rng) -> Layer {
        let a = (6.0 / inputs as f32).sqrt();
        let n = inputs * outputs;
        Layer {
            dense: Dense {
                inputs,
                outputs,
                weights: (0..n).map(|_| rng.uniform(-a, a)).collect(),
                bias: vec![0.0; outputs],
            },
            gw: vec![0.0; n],
            gb: vec![0.0; outputs],
            mw: vec![0.0; n],
            vw: vec![0.0; n],
            mb: vec![0.0; outputs],
            vb: vec![0.0; outputs],
        }
    }
}

/// Activations of one batch: `acts[0]` is the input, `acts[l + 1]` layer `l`'s output (after
/// ReLU for hidden layers, the logits for the last).
#[derive(Default)]
struct Pass {
    acts: Vec<Vec<f32>>,
    grad: Vec<f32>,
    next: Vec<f32>,
}

fn forward(layers: &[Layer], x: &[f32], n: usize, pass: &mut Pass) {
    pass.acts.resize_with(layers.len() + 1, Vec::new);
    pass.acts[0].clear();
    pass.acts[0].extend_from_slice(x);
    for (l, layer) in layers.iter().enumerate() {
        let d = &layer.dense;
        let (before, after) = pass.acts.split_at_mut(l + 1);
        let (input, out) = (&before[l], &mut after[0]);
        out.resize(n * d.outputs, 0.0);
        for row in out.chunks_exact_mut(d.outputs) {
            row.copy_from_slice(&d.bias);
        }
        gemm(
            n,
            d.inputs,
            d.outputs,
            input,
            (d.inputs, 1),
            &d.weights,
            (1, d.inputs),
            1.0,
            out,
            (d.outputs, 1),
        );
        if l + 1 < layers.len() {
            for z in out.iter_mut() {
                *z = z.max(0.0);
            }
        }
    }
}

/// Mean softmax cross-entropy of the logits; leaves d(loss)/d(logits) in `pass.grad`.
fn loss(pass: &mut Pass, labels: &[u8], classes: usize) -> f64 {
    let logits = pass.acts.last().expect("forward ran");
    let n = labels.len();
    pass.grad.resize(n * classes, 0.0);
    let mut total = 0.0f64;
    for ((z, g), &y) in logits
        .chunks_exact(classes)
        .zip(pass.grad.chunks_exact_mut(classes))
        .zip(labels)
    {
        let max = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let sum: f32 = z.iter().map(|&v| (v - max).exp()).sum();
        total += f64::from(sum.ln() + max - z[y as usize]);
        for (k, (gk, &zk)) in g.iter_mut().zip(z).enumerate() {
            let p = (zk - max).exp() / sum;
            *gk = (p - f32::from(u8::from(k == y as usize))) / n as f32;
        }
    }
    total / n as f64
}

/// Gradients of every layer from `pass.grad` (d loss / d logits).
fn backward(layers: &mut [Layer], n: usize, pass: &mut Pass) {
    for l in (0..layers.len()).rev() {
        let d = &layers[l].dense;
        let (inputs, outputs) = (d.inputs, d.outputs);
        let input = &pass.acts[l];
        // dW (out x in) = dZ^T (out x n) * A (n x in).
        gemm(
            outputs,
            n,
            inputs,
            &pass.grad,
            (1, outputs),
            input,
            (inputs, 1),
            0.0,
            &mut layers[l].gw,
            (inputs, 1),
        );
        let gb = &mut layers[l].gb;
        gb.fill(0.0);
        for row in pass.grad.chunks_exact(outputs) {
            for (g, r) in gb.iter_mut().zip(row) {
                *g += r;
            }
        }
        if l == 0 {
            break;
        }
        // dA (n x in) = dZ (n x out) * W (out x in), then through the ReLU.
        pass.next.resize(n * inputs, 0.0);
        gemm(
            n,
            outputs,
            inputs,
            &pass.grad,
            (outputs, 1),
            &layers[l].dense.weights,
            (inputs, 1),
            0.0,
            &mut pass.next,
            (inputs, 1),
        );
        for (g, &a) in pass.next.iter_mut().zip(input) {
            if a <= 0.0 {
                *g = 0.0;
            }
        }
        std::mem::swap(&mut pass.grad, &mut pass.next);
    }
}

fn adam_step(layers: &mut [Layer], lr: f32, t: i32) {
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let step = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
    let update = |w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
        for i in 0..w.len() {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            w[i] -= step * m[i] / (v[i].sqrt() + eps);
        }
    };
    for l in layers {
        update(&mut l.dense.weights, &l.gw, &mut l.mw, &mut l.vw);
        update(&mut l.dense.bias, &l.gb, &mut l.mb, &mut l.vb);
    }
}

fn model_of(layers: Vec<FloatLayer>, input: InputShape, classes: usize) -> FloatModel {
    FloatModel {
        format: FORMAT.into(),
        version: VERSION,
        input,
        classes,
        layers,
        provenance: FloatProvenance::default(),
    }
}

/// What the epoch loop trains.
trait Graph {
    /// One step on a batch (`x`: `labels.len()` images of `value / 255` pixels); the loss.
    fn step(&mut self, x: &[f32], labels: &[u8], lr: f32) -> f64;
    /// The model the graph computes in inference mode.
    fn layers(&self) -> Vec<FloatLayer>;
}

/// The perceptron.
struct Mlp {
    layers: Vec<Layer>,
    pass: Pass,
    t: i32,
    classes: usize,
}

impl Graph for Mlp {
    fn step(&mut self, x: &[f32], labels: &[u8], lr: f32) -> f64 {
        let n = labels.len();
        forward(&self.layers, x, n, &mut self.pass);
        let l = loss(&mut self.pass, labels, self.classes);
        backward(&mut self.layers, n, &mut self.pass);
        self.t += 1;
        adam_step(&mut self.layers, lr, self.t);
        l
    }

    fn layers(&self) -> Vec<FloatLayer> {
        self.layers
            .iter()
            .map(|l| FloatLayer::Dense(l.dense.clone()))
            .collect()
    }
}

/// The convolutional network.
struct Cnn {
    net: ConvNet,
    ws: conv::Workspace,
    adam: Adam,
}

/// The weights `w` (one row per output) and biases with batch norm folded in: output `j`'s
/// `(z - mean) * scale + beta` becomes `(scale * w_j) x + (beta - mean * scale)`.
fn folded(w: &[f32], bn: &BatchNorm) -> (Vec<f32>, Vec<f32>) {
    let mut weights = w.to_vec();
    let row = w.len() / bn.mean.len();
    let bias = weights
        .chunks_exact_mut(row)
        .enumerate()
        .map(|(j, r)| {
            let scale = bn.eval_scale(j);
            r.iter_mut().for_each(|x| *x *= scale);
            bn.beta.value[j] - bn.mean[j] * scale
        })
        .collect();
    (weights, bias)
}

impl Graph for Cnn {
    fn step(&mut self, x: &[f32], labels: &[u8], lr: f32) -> f64 {
        self.net.forward(x, Mode::Train, &mut self.ws);
        let (l, _) = self.net.loss(labels, &mut self.ws);
        if l.is_finite() {
            self.net.backward(&mut self.ws);
            self.adam.step_params(self.net.params_mut(), lr);
        }
        l
    }

    fn layers(&self) -> Vec<FloatLayer> {
        let mut out: Vec<FloatLayer> = self
            .net
            .layers
            .iter()
            .map(|l| match l {
                conv::Layer::Conv {
                    kernel,
                    padding,
                    input,
                    output,
                    w,
                    bn,
                } => {
                    let (weights, bias) = folded(&w.value, bn);
                    FloatLayer::Conv(Conv {
                        kernel: *kernel,
                        padding: *padding,
                        in_channels: input.channels,
                        out_channels: output.channels,
                        weights,
                        bias,
                    })
                }
                conv::Layer::Pool { size, .. } => FloatLayer::Maxpool { size: *size },
                conv::Layer::Dense {
                    inputs,
                    outputs,
                    w,
                    bn,
                } => {
                    let (weights, bias) = folded(&w.value, bn);
                    FloatLayer::Dense(Dense {
                        inputs: *inputs,
                        outputs: *outputs,
                        weights,
                        bias,
                    })
                }
            })
            .collect();
        let alpha = self.net.alpha();
        out.push(FloatLayer::Dense(Dense {
            inputs: self.net.last(),
            outputs: self.net.classes,
            weights: self.net.out.value.iter().map(|&w| alpha * w).collect(),
            bias: vec![0.0; self.net.classes],
        }));
        out
    }
}

/// Accuracy of `m` on `set`.
pub fn accuracy(m: &FloatModel, set: &LabeledSet) -> f64 {
    let pred = Engine::new(m).classify(&set.images.pixels, 1000);
    crate::reference::Evaluation::new(&pred, &set.labels, m.classes).accuracy
}

/// Trains the full-precision network (a perceptron or a convnet) on `train`, keeping the epoch
/// that scores best on `val`.
pub fn train(
    cfg: &FloatConfig,
    input: InputShape,
    classes: usize,
    dataset: &str,
    train: &LabeledSet,
    val: &LabeledSet,
) -> Result<FloatTrained> {
    if cfg.hidden.contains(&0)
        || cfg.epochs == 0
        || cfg.batch < 2
        || cfg.lr.is_nan()
        || cfg.lr <= 0.0
    {
        return Err(Error::invalid([
            Setting::Float.into(),
            " needs hidden widths of at least 1, ".into(),
            Setting::Epochs.into(),
            " of at least 1, ".into(),
            Setting::Batch.into(),
            " of at least 2 and a positive ".into(),
            Setting::Lr.into(),
        ]));
    }
    if train.len() < 2 {
        return Err(Error::usage("too few training images"));
    }
    if cfg.batch > crate::train::MAX_BATCH
        || cfg.epochs > crate::train::MAX_EPOCHS
        || cfg.hidden.iter().any(|&w| w > crate::train::MAX_WIDTH)
    {
        return Err(Error::invalid([
            Setting::Float.into(),
            format!(" allows hidden widths up to {}, ", crate::train::MAX_WIDTH).into(),
            Setting::Epochs.into(),
            format!(" up to {} and ", crate::train::MAX_EPOCHS).into(),
            Setting::Batch.into(),
            format!(" up to {}", crate::train::MAX_BATCH).into(),
        ]));
    }
    let values = crate::layers::Shape {
        height: input.height,
        width: input.width,
        channels: input.channels,
    };
    let mut rng = Rng::new(cfg.seed, 11);
    let mut graph: Box<dyn Graph> = match cfg.arch.as_ref().filter(|a| a.is_conv()) {
        Some(arch) => {
            crate::train::check_conv_fits(values, arch, classes, cfg.batch)?;
            let mut net = ConvNet::new(values, arch, classes, cfg.seed);
            net.activation = Activation::Relu;
            Box::new(Cnn {
                net,
                ws: conv::Workspace::default(),
                adam: Adam::default(),
            })
        }
        None => {
            crate::train::check_size(input.pixels(), &cfg.hidden, classes)?;
            let mut sizes = vec![input.pixels()];
            sizes.extend(&cfg.hidden);
            sizes.push(classes);
            let layers = sizes
                .windows(2)
                .map(|w| Layer::new(w[0], w[1], &mut rng))
                .collect();
            Box::new(Mlp {
                layers,
                pass: Pass::default(),
                t: 0,
                classes,
            })
        }
    };
    let mut order: Vec<usize> = (0..train.len()).collect();
    let n_batches = order.chunks(cfg.batch).filter(|c| c.len() >= 2).count();
    let decay = cfg
        .lr_final
        .powf(1.0 / (n_batches * cfg.epochs).max(1) as f32);
    let mut lr = cfg.lr;
    let mut x = Vec::new();
    let mut labels = Vec::new();
    let mut history = Vec::new();
    let mut best: Option<(f64, FloatModel)> = None;
    let (mut seconds_total, mut images_total) = (0.0, 0usize);
    let pb = progress::bar((n_batches * cfg.epochs) as u64, "train --float");
    for epoch in 1..=cfg.epochs {
        rng.shuffle(&mut order);
        let start = Instant::now();
        let (mut loss_sum, mut seen) = (0.0, 0usize);
        for chunk in order.chunks(cfg.batch).filter(|c| c.len() >= 2) {
            x.clear();
            labels.clear();
            for &i in chunk {
                x.extend(train.images.image(i).iter().map(|&p| f32::from(p) / 255.0));
                labels.push(train.labels[i]);
            }
            let l = graph.step(&x, &labels, lr);
            if !l.is_finite() {
                return Err(Error::CheckFailed(format!(
                    "training diverged in epoch {epoch} (the loss is {l}); a smaller learning \
                     rate may help, and nothing was written"
                )));
            }
            lr *= decay;
            loss_sum += l * chunk.len() as f64;
            seen += chunk.len();
            pb.inc(1);
            pb.set_message(format!("epoch {epoch} loss {:.4}", loss_sum / seen as f64));
        }
        let seconds = start.elapsed().as_secs_f64();
        seconds_total += seconds;
        images_total += seen;
        let model = model_of(graph.layers(), input, classes);
        let val_accuracy = accuracy(&model, val);
        let e = FloatEpoch {
            epoch,
            loss: loss_sum / seen.max(1) as f64,
            val_accuracy,
            seconds,
            images: seen,
        };
        if cfg.verbose {
            progress::log(
                &pb,
                &format!(
                    "epoch {:>3}  loss {:.4}  val {:.2}%  lr {:.2e}  {:.1}s ({:.0} img/s)",
                    epoch,
                    e.loss,
                    100.0 * val_accuracy,
                    lr,
                    seconds,
                    seen as f64 / seconds.max(1e-9)
                ),
            );
        }
        history.push(e);
        if best.as_ref().is_none_or(|(acc, _)| val_accuracy > *acc) {
            best = Some((val_accuracy, model));
        }
    }
    pb.finish_and_clear();
    let (val_accuracy, mut model) = best.expect("at least one epoch");
    let best_epoch = history
        .iter()
        .find(|e| e.val_accuracy == val_accuracy)
        .map_or(0, |e| e.epoch);
    model.provenance = FloatProvenance {
        tool: format!("cbnn {}", env!("CARGO_PKG_VERSION")),
        dataset: dataset.into(),
        seed: cfg.seed,
        epochs: cfg.epochs,
        best_epoch,
        val_accuracy,
        test_accuracy: None,
        hyper: serde_json::to_value(cfg).expect("config serialises"),
    };
    Ok(FloatTrained {
        model,
        history,
        images_per_second: images_total as f64 / seconds_total.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exported convnet (batch norm folded, `1/255` folded by the engine) classifies as
    /// the training graph in inference mode, wherever the graph's top two logits are apart.
    #[test]
    fn convnet_export_matches_the_graph() {
        let mut rng = Rng::new(31, 2);
        for spec in ["c4k3,p2,d6", "c3k5v,c5,p2", "p2,c4k1v,d5"] {
            let arch: Arch = spec.parse().unwrap();
            let input = InputShape {
                height: 8,
                width: 7,
                channels: 2,
            };
            let values = crate::layers::Shape {
                height: 8,
                width: 7,
                channels: 2,
            };
            let classes = 4;
            let mut net = ConvNet::new(values, &arch, classes, 3);
            net.activation = Activation::Relu;
            for l in &mut net.layers {
                if let conv::Layer::Conv { bn, .. } | conv::Layer::Dense { bn, .. } = l {
                    for j in 0..bn.mean.len() {
                        bn.mean[j] = rng.uniform(-0.3, 0.3);
                        bn.var[j] = rng.uniform(0.2, 2.0);
                        bn.gamma.value[j] = rng.uniform(0.5, 1.5);
                        bn.beta.value[j] = rng.uniform(-0.2, 0.2);
                    }
                }
            }
            let n = 60;
            let px: Vec<u8> = (0..n * values.len())
                .map(|_| rng.below(256) as u8)
                .collect();
            let x: Vec<f32> = px.iter().map(|&p| f32::from(p) / 255.0).collect();
            let mut ws = conv::Workspace::default();
            net.forward(&x, Mode::Eval, &mut ws);
            let logits = net.logits(&ws).to_vec();
            let cnn = Cnn {
                net,
                ws: conv::Workspace::default(),
                adam: Adam::default(),
            };
            let m = model_of(cnn.layers(), input, classes);
            m.validate(std::path::Path::new("test")).unwrap();
            assert_eq!(m.arch(), spec.replace("k3,", ","));
            let got = Engine::new(&m).classify(&px, 7);
            let mut compared = 0;
            for (i, row) in logits.chunks(classes).enumerate() {
                let mut sorted = row.to_vec();
                sorted.sort_by(|a, b| b.total_cmp(a));
                if sorted[0] - sorted[1] > 1e-3 {
                    let want = row.iter().position(|&v| v == sorted[0]).unwrap();
                    assert_eq!(got[i], want, "{spec}, image {i}");
                    compared += 1;
                }
            }
            assert!(compared > n / 2, "{spec}: only {compared} images compared");
        }
    }
}

#[cfg(test)]
mod mlp_tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(21, 3);
        let sizes = [9usize, 7, 5, 4];
        let mut layers: Vec<Layer> = sizes
            .windows(2)
            .map(|w| Layer::new(w[0], w[1], &mut rng))
            .collect();
        for l in &mut layers {
            for b in &mut l.dense.bias {
                *b = rng.uniform(-0.3, 0.3);
            }
        }
        let n = 6;
        let x: Vec<f32> = (0..n * sizes[0]).map(|_| rng.uniform(0.0, 1.0)).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 4) as u8).collect();
        let mut pass = Pass::default();
        forward(&layers, &x, n, &mut pass);
        loss(&mut pass, &labels, 4);
        backward(&mut layers, n, &mut pass);
        let f = |layers: &[Layer]| {
            let mut p = Pass::default();
            forward(layers, &x, n, &mut p);
            loss(&mut p, &labels, 4)
        };
        let h = 1e-3f32;
        let mut checked = 0;
        for l in 0..layers.len() {
            let count = layers[l].dense.weights.len() + layers[l].dense.bias.len();
            for i in 0..count {
                let analytic = if i < layers[l].gw.len() {
                    layers[l].gw[i]
                } else {
                    layers[l].gb[i - layers[l].gw.len()]
                };
                let at = |delta: f32| {
                    let mut c = layers.clone();
                    let nw = c[l].dense.weights.len();
                    if i < nw {
                        c[l].dense.weights[i] += delta;
                    } else {
                        c[l].dense.bias[i - nw] += delta;
                    }
                    f(&c)
                };
                let numeric = ((at(h) - at(-h)) / (2.0 * f64::from(h))) as f32;
                let tol = 2e-3 + 2e-2 * numeric.abs();
                assert!(
                    (numeric - analytic).abs() <= tol,
                    "layer {l} parameter {i}: numeric {numeric}, analytic {analytic}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 9 * 7 + 7 + 7 * 5 + 5 + 5 * 4 + 4);
    }
}
