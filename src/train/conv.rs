//! The float training graph of a fully binary convolutional network: forward and backward for
//! one batch, in the layout the integer model uses (values `height x width x channels`,
//! row-major, channels last, one image after another).
//!
//! - **Convolution**: the window of every output position is gathered into a row of ±1
//!   values (`-1` outside the image: the padding of the integer model), and the rows times the
//!   binarized weights `sign(W)` are the pre-activations, one GEMM for the whole batch; then
//!   batch norm per output channel (statistics over batch and positions) and `sign` with the
//!   straight-through estimator, exactly as a dense layer.
//! - **Max-pool** acts on the ±1 outputs of the layer before (after its sign); its gradient goes
//!   to the window's position of the largest batch-norm output of that layer (the same value,
//!   since the sign is monotone; where a pool before the sign would send it).
//! - **Dense** layers and the output layer (with its learned positive scale `alpha`) are those of
//!   the MLP graph ([`super::net`]).
//!
//! With [`Activation::HardTanh`] the graph becomes its smooth surrogate (weights as they are,
//! hard-tanh instead of sign), whose gradient is exact: the tests check it against finite
//! differences. With [`Activation::Relu`] it is the full-precision counterpart that `cbnn
//! train --float --arch` trains (weights as they are, ReLU). Work is split over fixed chunks of images and rows, so results do not depend on
//! the number of threads.

use rayon::prelude::*;

use super::arch::{Arch, Op};
pub use super::channel_norm::Activation;
use super::channel_norm::{self, Saved, Sums};
use super::net::{softmax_loss, BatchNorm, Mode, Param};
use crate::layers::{pad_for, window_rows, Padding, Shape};
use crate::model::BinaryMatrix;
use crate::reference::fast_layers::{ConvCounts, ConvScratch};
use crate::util::gemm::{gemm, gemm_at_b, gemm_rows};
use crate::util::rng::Rng;

/// A layer of the graph.
#[derive(Clone, Debug)]
pub enum Layer {
    /// Binary convolution, batch norm, sign.
    Conv {
        /// Kernel side.
        kernel: usize,
        /// Border handling.
        padding: Padding,
        /// The values it receives.
        input: Shape,
        /// The values it hands on.
        output: Shape,
        /// Latent weights, `out_channels x (k * k * in_channels)`, window order.
        w: Param,
        /// Per output channel.
        bn: BatchNorm,
    },
    /// Max-pool of ±1 values.
    Pool {
        /// Window side and stride.
        size: usize,
        /// The values it receives.
        input: Shape,
        /// The values it hands on.
        output: Shape,
    },
    /// Binary dense layer, batch norm, sign.
    Dense {
        /// Inputs.
        inputs: usize,
        /// Neurons.
        outputs: usize,
        /// Latent weights, `outputs x inputs`.
        w: Param,
        /// Per neuron.
        bn: BatchNorm,
    },
}

impl Layer {
    fn output(&self) -> Shape {
        match self {
            Layer::Conv { output, .. } | Layer::Pool { output, .. } => *output,
            Layer::Dense { outputs, .. } => Shape::flat(*outputs),
        }
    }
}

/// The network's parameters.
#[derive(Clone, Debug)]
pub struct ConvNet {
    /// The values the first layer receives (`height x width x channels * K`).
    pub input: Shape,
    /// Hidden layers, input side first.
    pub layers: Vec<Layer>,
    /// Output weights, `classes x last`.
    pub out: Param,
    /// Log of the output scale.
    pub theta: Param,
    /// Classes.
    pub classes: usize,
    /// The binary network ([`Activation::Sign`]), its surrogate or the float counterpart.
    pub activation: Activation,
}

/// Activations of one batch, kept for the backward pass.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    batch: usize,
    /// `acts[i]`: the values layer `i` receives (`acts[0]` the input), `batch x len`.
    acts: Vec<Vec<f32>>,
    /// Per layer with weights: its pre-activations, `batch * positions x channels`.
    zs: Vec<Vec<f32>>,
    /// Per layer with weights: `sign(W)`.
    wb: Vec<Vec<f32>>,
    /// Per layer with weights: its batch statistics.
    saved: Vec<Saved>,
    /// Per pool layer: for each output value, the input index of the maximum.
    argmax: Vec<Vec<u32>>,
    wb_out: Vec<f32>,
    /// A reused buffer for input gradients.
    dx: Vec<f32>,
    zout: Vec<f32>,
    logits: Vec<f32>,
    dlogits: Vec<f32>,
}

impl Workspace {
    /// The values layer `i` received in the last forward pass (`i = 0`: the input; `i = n`:
    /// what the output layer received), `batch x len`.
    pub fn activations(&self, i: usize) -> &[f32] {
        &self.acts[i]
    }
}

/// Rows of windows one parallel task of a convolution gathers and multiplies (a whole number
/// of images, at least one): small enough for a core's cache, so that the windows are
/// gathered where they are used and never stored for the whole batch. (Unit tests use small
/// tasks, so that their small images still make several tasks and a partial one.)
#[cfg(not(test))]
const TASK_ROWS: usize = 1024;
#[cfg(test)]
const TASK_ROWS: usize = 64;

/// Images per parallel task of a convolution with `positions` output positions. A function of
/// the shape only, so results do not depend on the number of threads.
fn images_per_task(positions: usize) -> usize {
    (TASK_ROWS / positions.max(1)).max(1)
}

/// Gathers every window of the images of `x` (`images x input.len()`) into `patches`, one
/// row per output position, `fill` outside the image.
#[allow(clippy::too_many_arguments)]
fn gather(
    x: &[f32],
    input: Shape,
    output: Shape,
    k: usize,
    pad: usize,
    fill: f32,
    patches: &mut Vec<f32>,
) {
    let (c, n) = (input.channels, k * k * input.channels);
    let positions = output.height * output.width;
    let images = x.len() / input.len();
    patches.clear();
    patches.resize(images * positions * n, fill);
    for (img, xi) in patches
        .chunks_exact_mut(positions * n)
        .zip(x.chunks_exact(input.len()))
    {
        for yy in 0..output.height {
            for xx in 0..output.width {
                let row = &mut img[(yy * output.width + xx) * n..][..n];
                for r in window_rows(input, pad, k, yy, xx) {
                    let (to, len) = ((r.dy * k + r.dx.start) * c, r.dx.len() * c);
                    row[to..to + len].copy_from_slice(&xi[r.source * c..][..len]);
                }
            }
        }
    }
}

/// Adds every window gradient of `dpatches` (laid out as [`gather`] lays out windows) onto
/// the inputs it came from, in `dx` (`images x input.len()`).
fn scatter(dpatches: &[f32], input: Shape, output: Shape, k: usize, pad: usize, dx: &mut [f32]) {
    let (c, n) = (input.channels, k * k * input.channels);
    let positions = output.height * output.width;
    for (img, di) in dpatches
        .chunks_exact(positions * n)
        .zip(dx.chunks_exact_mut(input.len()))
    {
        for yy in 0..output.height {
            for xx in 0..output.width {
                let row = &img[(yy * output.width + xx) * n..][..n];
                for r in window_rows(input, pad, k, yy, xx) {
                    let (from, len) = ((r.dy * k + r.dx.start) * c, r.dx.len() * c);
                    for (d, &g) in di[r.source * c..][..len].iter_mut().zip(&row[from..]) {
                        *d += g;
                    }
                }
            }
        }
    }
}

impl ConvNet {
    /// A freshly initialised network for `input` values (Glorot-uniform latent weights, unit
    /// batch norm).
    pub fn new(input: Shape, arch: &Arch, classes: usize, seed: u64) -> ConvNet {
        let mut rng = Rng::new(seed, 1);
        let mut shape = input;
        let mut layers = Vec::new();
        for op in &arch.0 {
            let layer = match *op {
                Op::Conv {
                    channels,
                    kernel,
                    padding,
                } => {
                    let output = op.output(shape);
                    let n = kernel * kernel * shape.channels;
                    Layer::Conv {
                        kernel,
                        padding,
                        input: shape,
                        output,
                        w: Param::glorot(channels, n, &mut rng),
                        bn: BatchNorm::new(channels),
                    }
                }
                Op::Pool(size) => Layer::Pool {
                    size,
                    input: shape,
                    output: op.output(shape),
                },
                Op::Dense(n) => Layer::Dense {
                    inputs: shape.len(),
                    outputs: n,
                    w: Param::glorot(n, shape.len(), &mut rng),
                    bn: BatchNorm::new(n),
                },
                Op::Lut { .. } => {
                    unreachable!("a logic-mapped layer stands alone and has its own graph")
                }
            };
            shape = layer.output();
            layers.push(layer);
        }
        let last = shape.len();
        ConvNet {
            input,
            layers,
            out: Param::glorot(classes, last, &mut rng),
            theta: Param::new(vec![-(last as f32).sqrt().ln()], false),
            classes,
            activation: Activation::Sign,
        }
    }

    /// Values the output layer receives.
    pub fn last(&self) -> usize {
        self.layers
            .last()
            .map_or(self.input.len(), Layer::output_len)
    }

    /// The output scale `alpha`.
    pub fn alpha(&self) -> f32 {
        self.theta.value[0].exp()
    }

    /// Every parameter, mutably (for the optimizer).
    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v: Vec<&mut Param> = Vec::new();
        for l in &mut self.layers {
            if let Layer::Conv { w, bn, .. } | Layer::Dense { w, bn, .. } = l {
                v.push(w);
                v.push(&mut bn.gamma);
                v.push(&mut bn.beta);
            }
        }
        v.push(&mut self.out);
        v.push(&mut self.theta);
        v
    }

    fn binarized(&self, w: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend(w.iter().map(|&x| self.activation.weight(x)));
    }

    /// Forward pass over a batch of ±1 inputs (`batch x input.len()`); logits end up in `ws`.
    pub fn forward(&mut self, x: &[f32], mode: Mode, ws: &mut Workspace) {
        let n = self.layers.len();
        let b = x.len() / self.input.len();
        ws.batch = b;
        ws.acts.resize(n + 1, Vec::new());
        ws.zs.resize(n, Vec::new());
        ws.wb.resize(n, Vec::new());
        ws.saved.resize(n, Saved::default());
        ws.argmax.resize(n, Vec::new());
        ws.acts[0].clear();
        ws.acts[0].extend_from_slice(x);
        let activation = self.activation;
        let fill = activation.padding();
        for i in 0..n {
            let (before, after) = ws.acts.split_at_mut(i + 1);
            let (input, act) = (&before[i], &mut after[0]);
            let (zs_before, zs_after) = ws.zs.split_at_mut(i);
            let (z, wb, saved) = (&mut zs_after[0], &mut ws.wb[i], &mut ws.saved[i]);
            // A pool after a convolution picks, in each window, the position of the largest
            // batch-norm output (sign(gamma) * z ranks them), not the first of equal signs:
            // the same value (the sign is monotone), and the gradient goes where a pool
            // before the sign would send it.
            let pool = matches!(self.layers[i], Layer::Pool { .. });
            let rank = match i.checked_sub(1).map(|j| &self.layers[j]) {
                Some(Layer::Conv { bn, .. }) if pool => Some((
                    &zs_before[i - 1],
                    bn.gamma
                        .value
                        .iter()
                        .map(|&g| if g < 0.0 { -1.0 } else { 1.0 })
                        .collect::<Vec<f32>>(),
                )),
                _ => None,
            };
            match &mut self.layers[i] {
                Layer::Conv {
                    kernel,
                    padding,
                    input: ishape,
                    output,
                    w,
                    bn,
                } => {
                    let (k, pad) = (*kernel, pad_for(*kernel, *padding));
                    let (cols, co) = (k * k * ishape.channels, output.channels);
                    let positions = output.height * output.width;
                    let g = images_per_task(positions);
                    wb.clear();
                    wb.extend(w.value.iter().map(|&x| activation.weight(x)));
                    z.clear();
                    z.resize(b * positions * co, 0.0);
                    let (ishape, output, wb) = (*ishape, *output, &*wb);
                    let sums = |zc: &[f32]| {
                        if mode == Mode::Eval {
                            Sums::default()
                        } else {
                            Sums::of(zc, co)
                        }
                    };
                    let parts: Vec<Sums> = if activation == Activation::Sign {
                        // ±1 values times ±1 weights: the sums are integers, counted with
                        // XOR and popcount (exactly the numbers the GEMM below gives).
                        let counts = ConvCounts::new(ishape, k, *padding, &signs(wb, co));
                        z.par_chunks_mut(g * positions * co)
                            .zip(input.par_chunks(g * ishape.len()))
                            .map_init(
                                || (ConvScratch::default(), Vec::new(), Vec::new()),
                                |(s, bits, agree), (zc, xc)| {
                                    agree.resize(positions * co, 0u32);
                                    for (zi, xi) in zc
                                        .chunks_exact_mut(positions * co)
                                        .zip(xc.chunks_exact(ishape.len()))
                                    {
                                        pack_signs(xi, bits);
                                        counts.image(bits, s, agree);
                                        for (z, &a) in zi.iter_mut().zip(agree.iter()) {
                                            *z = (2 * a as i32 - cols as i32) as f32;
                                        }
                                    }
                                    sums(zc)
                                },
                            )
                            .collect()
                    } else {
                        z.par_chunks_mut(g * positions * co)
                            .zip(input.par_chunks(g * ishape.len()))
                            .map_init(Vec::new, |patches, (zc, xc)| {
                                gather(xc, ishape, output, k, pad, fill, patches);
                                let rows = zc.len() / co;
                                gemm(
                                    rows,
                                    cols,
                                    co,
                                    patches,
                                    (cols, 1),
                                    wb,
                                    (1, cols),
                                    0.0,
                                    zc,
                                    (co, 1),
                                );
                                sums(zc)
                            })
                            .collect()
                    };
                    let sums = Sums::total(&parts);
                    channel_norm::forward(bn, z, co, &sums, mode, activation, saved, act);
                }
                Layer::Pool {
                    size,
                    input: ishape,
                    output,
                } => {
                    let (ilen, olen) = (ishape.len(), output.len());
                    act.clear();
                    act.resize(b * olen, 0.0);
                    let arg = &mut ws.argmax[i];
                    arg.clear();
                    arg.resize(b * olen, 0);
                    let (p, ishape, output) = (*size, *ishape, *output);
                    let ones = vec![1.0; ishape.channels];
                    let (keys, dir) = match &rank {
                        Some((z, dir)) => (&z[..], &dir[..]),
                        None => (&input[..], &ones[..]),
                    };
                    act.par_chunks_mut(olen)
                        .zip(arg.par_chunks_mut(olen))
                        .zip(input.par_chunks(ilen).zip(keys.par_chunks(ilen)))
                        .for_each(|((a, g), (xi, ki))| {
                            max_pool(xi, (ki, dir), ishape, output, p, a, g)
                        });
                }
                Layer::Dense {
                    inputs,
                    outputs,
                    w,
                    bn,
                } => {
                    wb.clear();
                    wb.extend(w.value.iter().map(|&x| activation.weight(x)));
                    z.clear();
                    z.resize(b * *outputs, 0.0);
                    gemm_rows(b, *inputs, *outputs, input, wb, (1, *inputs), z);
                    let sums = if mode == Mode::Eval {
                        Sums::default()
                    } else {
                        Sums::par_of(z, *outputs)
                    };
                    channel_norm::forward(bn, z, *outputs, &sums, mode, activation, saved, act);
                }
            }
        }
        let (last, c) = (self.last(), self.classes);
        let mut wb_out = std::mem::take(&mut ws.wb_out);
        self.binarized(&self.out.value, &mut wb_out);
        ws.zout.clear();
        ws.zout.resize(b * c, 0.0);
        gemm_rows(b, last, c, &ws.acts[n], &wb_out, (1, last), &mut ws.zout);
        ws.wb_out = wb_out;
        let alpha = self.alpha();
        ws.logits.clear();
        ws.logits.extend(ws.zout.iter().map(|&z| alpha * z));
    }

    /// Logits of the last forward pass, `batch x classes`.
    pub fn logits<'w>(&self, ws: &'w Workspace) -> &'w [f32] {
        &ws.logits
    }

    /// Softmax cross-entropy of the last forward pass: mean loss and correct predictions.
    pub fn loss(&self, labels: &[u8], ws: &mut Workspace) -> (f64, usize) {
        self.loss_with(labels, None, ws)
    }

    /// [`ConvNet::loss`] with the teacher's soft targets of the batch mixed in.
    pub fn loss_with(
        &self,
        labels: &[u8],
        soft: Option<super::distill::Soft>,
        ws: &mut Workspace,
    ) -> (f64, usize) {
        softmax_loss(&ws.logits, labels, self.classes, soft, &mut ws.dlogits)
    }

    /// Backward pass after [`ConvNet::forward`] (train mode) and [`ConvNet::loss`]: fills
    /// every parameter's `grad`.
    pub fn backward(&mut self, ws: &mut Workspace) {
        let b = ws.batch;
        let n = self.layers.len();
        let (last, c) = (self.last(), self.classes);
        let alpha = self.alpha();
        let fill = self.activation.padding();
        let dalpha: f64 = ws
            .dlogits
            .iter()
            .zip(&ws.zout)
            .map(|(&d, &z)| (d * z) as f64)
            .sum();
        self.theta.grad[0] = (dalpha * alpha as f64) as f32;
        let dzout: Vec<f32> = ws.dlogits.iter().map(|&d| d * alpha).collect();
        gemm_at_b(c, b, last, &dzout, &ws.acts[n], &mut self.out.grad);
        let mut dact = vec![0.0f32; b * last];
        gemm_rows(b, c, last, &dzout, &ws.wb_out, (last, 1), &mut dact);

        for i in (0..n).rev() {
            let need_input_grad = i > 0;
            let (z, saved) = (&ws.zs[i], &ws.saved[i]);
            match &mut self.layers[i] {
                Layer::Conv {
                    kernel,
                    padding,
                    input,
                    output,
                    w,
                    bn,
                } => {
                    let bw = channel_norm::backward(
                        bn,
                        self.activation,
                        output.channels,
                        &mut dact,
                        z,
                        saved,
                    );
                    let (k, pad) = (*kernel, pad_for(*kernel, *padding));
                    let (cols, co) = (k * k * input.channels, output.channels);
                    let positions = output.height * output.width;
                    let g = images_per_task(positions);
                    let mut dx = std::mem::take(&mut ws.dx);
                    dx.clear();
                    let dx_chunks: Vec<Option<&mut [f32]>> = if need_input_grad {
                        dx.resize(b * input.len(), 0.0);
                        dx.chunks_mut(g * input.len()).map(Some).collect()
                    } else {
                        (0..b.div_ceil(g)).map(|_| None).collect()
                    };
                    let (input, output, wb) = (*input, *output, &ws.wb[i]);
                    let parts: Vec<Vec<f32>> = dact
                        .par_chunks(g * positions * co)
                        .zip(z.par_chunks(g * positions * co))
                        .zip(ws.acts[i].par_chunks(g * input.len()))
                        .zip(dx_chunks)
                        .map_init(
                            || (Vec::new(), Vec::new(), Vec::new()),
                            |(dz, patches, dpatches), (((dc, zc), xc), dxc)| {
                                dz.clear();
                                dz.extend_from_slice(dc);
                                bw.dz(dz, zc);
                                gather(xc, input, output, k, pad, fill, patches);
                                let rows = dc.len() / co;
                                let mut part = vec![0.0f32; co * cols];
                                gemm(
                                    co,
                                    rows,
                                    cols,
                                    dz,
                                    (1, co),
                                    patches,
                                    (cols, 1),
                                    0.0,
                                    &mut part,
                                    (cols, 1),
                                );
                                if let Some(dxc) = dxc {
                                    dpatches.resize(rows * cols, 0.0);
                                    gemm(
                                        rows,
                                        co,
                                        cols,
                                        dz,
                                        (co, 1),
                                        wb,
                                        (cols, 1),
                                        0.0,
                                        dpatches,
                                        (cols, 1),
                                    );
                                    scatter(dpatches, input, output, k, pad, dxc);
                                }
                                part
                            },
                        )
                        .collect();
                    w.grad.fill(0.0);
                    for part in parts {
                        for (g, p) in w.grad.iter_mut().zip(part) {
                            *g += p;
                        }
                    }
                    ws.dx = std::mem::replace(&mut dact, dx);
                }
                Layer::Pool { input, output, .. } => {
                    if need_input_grad {
                        let (ilen, olen) = (input.len(), output.len());
                        let mut dx = std::mem::take(&mut ws.dx);
                        dx.clear();
                        dx.resize(b * ilen, 0.0);
                        dx.par_chunks_mut(ilen)
                            .zip(ws.argmax[i].par_chunks(olen))
                            .zip(dact.par_chunks(olen))
                            .for_each(|((di, g), d)| {
                                for (&s, &v) in g.iter().zip(d) {
                                    di[s as usize] += v;
                                }
                            });
                        ws.dx = std::mem::replace(&mut dact, dx);
                    }
                }
                Layer::Dense {
                    inputs,
                    outputs,
                    w,
                    bn,
                } => {
                    let bw =
                        channel_norm::backward(bn, self.activation, *outputs, &mut dact, z, saved);
                    bw.par_dz(&mut dact, z);
                    gemm_at_b(*outputs, b, *inputs, &dact, &ws.acts[i], &mut w.grad);
                    if need_input_grad {
                        let mut dx = std::mem::take(&mut ws.dx);
                        dx.resize(b * *inputs, 0.0);
                        gemm_rows(
                            b,
                            *outputs,
                            *inputs,
                            &dact,
                            &ws.wb[i],
                            (*inputs, 1),
                            &mut dx,
                        );
                        ws.dx = std::mem::replace(&mut dact, dx);
                    }
                }
            }
        }
    }

    /// Sets every batch norm's running statistics to the exact statistics of `rows` (packed
    /// training images) under the current weights, so that the inference graph (and the
    /// integer model) is the network the last steps trained rather than a blend of recent
    /// weights. Layers are calibrated in one pass, each on the batch statistics of the layers
    /// before it, 500 images at a time.
    pub fn recalibrate(&mut self, rows: &[&[u64]]) {
        let mut ws = Workspace::default();
        let mut x = Vec::new();
        for chunk in rows.chunks(500).filter(|c| c.len() >= 2) {
            unpack(chunk, self.input.len(), &mut x);
            self.forward(&x, Mode::Calibrate, &mut ws);
        }
        for l in &mut self.layers {
            if let Layer::Conv { bn, .. } | Layer::Dense { bn, .. } = l {
                bn.finish_calibration();
            }
        }
    }

    /// Predicted classes of the float graph in inference mode for packed feature rows
    /// (argmax of the logits, ties to the lowest class), 500 at a time.
    pub fn predict(&self, rows: &[&[u64]]) -> Vec<usize> {
        let mut net = self.clone();
        let mut ws = Workspace::default();
        let mut x = Vec::new();
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(500) {
            unpack(chunk, self.input.len(), &mut x);
            net.forward(&x, Mode::Eval, &mut ws);
            for row in ws.logits.chunks_exact(self.classes) {
                let mut best = 0;
                for k in 0..row.len() {
                    if row[k] > row[best] {
                        best = k;
                    }
                }
                out.push(best);
            }
        }
        out
    }
}

/// Max-pool of one image's values `xi` into `a`, with the input index of each maximum in
/// `arg`: in each window and channel the first position (window order) of the largest key,
/// `keys.0[i] * keys.1[channel]`, whose value must be a largest one of `xi` there.
fn max_pool(
    xi: &[f32],
    keys: (&[f32], &[f32]),
    input: Shape,
    output: Shape,
    p: usize,
    a: &mut [f32],
    arg: &mut [u32],
) {
    let c = input.channels;
    let (ki, dir) = (keys.0, &keys.1[..c]);
    let mut best = vec![0f32; c];
    for yy in 0..output.height {
        for xx in 0..output.width {
            let o = (yy * output.width + xx) * c;
            let (a, arg) = (&mut a[o..o + c], &mut arg[o..o + c]);
            let s0 = (yy * p * input.width + xx * p) * c;
            for ch in 0..c {
                best[ch] = ki[s0 + ch] * dir[ch];
                arg[ch] = (s0 + ch) as u32;
            }
            for dy in 0..p {
                for dx in (0..p).filter(|&dx| (dy, dx) != (0, 0)) {
                    let s = ((yy * p + dy) * input.width + xx * p + dx) * c;
                    let (k, idx) = (&ki[s..s + c], s as u32);
                    // Branch-free (the keys are random: a branch would mispredict half
                    // the time), so that the compiler vectorizes it.
                    for ch in 0..c {
                        let key = k[ch] * dir[ch];
                        let take = key > best[ch];
                        best[ch] = if take { key } else { best[ch] };
                        arg[ch] = if take { idx + ch as u32 } else { arg[ch] };
                    }
                }
            }
            for (a, &g) in a.iter_mut().zip(arg.iter()) {
                *a = xi[g as usize];
            }
        }
    }
}

impl Layer {
    fn output_len(&self) -> usize {
        self.output().len()
    }
}

/// The signs of `±1` weights `wb` (`rows x cols`) as a binary matrix.
fn signs(wb: &[f32], rows: usize) -> BinaryMatrix {
    let cols = wb.len() / rows;
    let mut m = BinaryMatrix::new(rows, cols);
    for (r, row) in wb.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            if v > 0.0 {
                m.set(r, c, true);
            }
        }
    }
    m
}

/// `±1` values packed one bit each (`1` for `+1`), into `bits`.
fn pack_signs(x: &[f32], bits: &mut Vec<u64>) {
    bits.clear();
    bits.extend(x.chunks(64).map(|c| {
        c.iter()
            .enumerate()
            .fold(0u64, |w, (i, &v)| w | (u64::from(v > 0.0) << i))
    }));
}

/// Unpacks packed feature rows into ±1 floats, one row after another.
pub fn unpack(rows: &[&[u64]], features: usize, out: &mut Vec<f32>) {
    out.clear();
    out.resize(rows.len() * features, -1.0);
    out.par_chunks_mut(features)
        .zip(rows.par_iter())
        .for_each(|(o, r)| {
            for (i, v) in o.iter_mut().enumerate() {
                if (r[i / 64] >> (i % 64)) & 1 == 1 {
                    *v = 1.0;
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool after a binary convolution takes the largest ±1 value of each window, and
    /// routes its gradient to the window's position of largest batch-norm output (smallest
    /// pre-activation where the scale is negative), first in window order on ties: the
    /// gradient of a pool before the sign.
    #[test]
    fn a_pool_after_a_convolution_picks_the_largest_batch_norm_output() {
        let arch: Arch = "c4k3,p2,d3".parse().unwrap();
        let input = Shape {
            height: 6,
            width: 6,
            channels: 2,
        };
        let mut net = ConvNet::new(input, &arch, 2, 7);
        if let Layer::Conv { bn, .. } = &mut net.layers[0] {
            bn.gamma.value = vec![0.5, -0.5, 0.25, -1.0];
        }
        let mut rng = Rng::new(3, 0);
        let x: Vec<f32> = (0..4 * input.len())
            .map(|_| if rng.below(2) == 1 { 1.0 } else { -1.0 })
            .collect();
        let mut ws = Workspace::default();
        net.forward(&x, Mode::Train, &mut ws);
        let (conv, pooled) = (net.layers[0].output(), net.layers[1].output());
        let dir = [1.0f32, -1.0, 1.0, -1.0];
        let (mut moved, c) = (0, conv.channels);
        assert_eq!(c, dir.len());
        for img in 0..4 {
            let (z, act) = (
                &ws.zs[0][img * conv.len()..][..conv.len()],
                &ws.acts[1][img * conv.len()..][..conv.len()],
            );
            for yy in 0..pooled.height {
                for xx in 0..pooled.width {
                    for (ch, &d) in dir.iter().enumerate() {
                        let at = |dy: usize, dx: usize| {
                            ((2 * yy + dy) * conv.width + 2 * xx + dx) * c + ch
                        };
                        let window = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
                        let mut best = window[0];
                        for &s in &window[1..] {
                            if z[s] * d > z[best] * d {
                                best = s;
                            }
                        }
                        let o = (yy * pooled.width + xx) * c + ch;
                        let top = window.iter().map(|&s| act[s]).fold(-1.0f32, f32::max);
                        assert_eq!(ws.acts[2][img * pooled.len() + o], top);
                        assert_eq!(ws.argmax[1][img * pooled.len() + o] as usize, best);
                        let first = window.iter().find(|&&s| act[s] == top).unwrap();
                        moved += usize::from(*first != best);
                    }
                }
            }
        }
        // The test means something only where the first largest sign is not the choice.
        assert!(moved > 10, "{moved}");
    }
}
