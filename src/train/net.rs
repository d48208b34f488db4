//! The float training graph of the fully binary MLP: forward and backward for one batch.
//!
//! Every layer is `sign(W)`-weighted (latent float `W` clipped to `[-1, 1]`), followed for hidden
//! layers by batch norm and `sign` with a straight-through estimator (gradient passed where the
//! batch-norm output is within `[-1, 1]`). The output layer's binary dot products are multiplied
//! by one learned positive scale `alpha = exp(theta)` and fed to softmax cross-entropy; a
//! positive scale does not change the argmax, so the integer model can use raw popcounts.
//!
//! With `binarize = false` the graph becomes its smooth surrogate (weights used as they are,
//! hard-tanh instead of sign): the same backward code is then the exact gradient, which is how
//! the tests check it against finite differences.

use rayon::prelude::*;

use super::first_layer::{self, ActiveBits, Layout};
use crate::util::gemm::gemm;
use crate::util::rng::Rng;

/// Rows of one parallel task in batch norm (fixed, so that sums do not depend on the thread
/// count; a batch of at most this many rows is summed in plain row order).
const BN_ROWS: usize = 1024;

/// Batch-norm epsilon.
pub const BN_EPS: f32 = 1e-5;
/// Weight of the newest batch in the running batch-norm statistics.
pub const BN_MOMENTUM: f32 = 0.1;

/// A trainable tensor with its gradient and Adam moments.
#[derive(Clone, Debug)]
pub struct Param {
    /// Current values.
    pub value: Vec<f32>,
    /// Gradient of the last backward pass (for the first layer: the raw accumulator).
    pub grad: Vec<f32>,
    /// Adam first moment.
    pub m: Vec<f32>,
    /// Adam second moment.
    pub v: Vec<f32>,
    /// Clip values to `[-1, 1]` after each update (latent binary weights).
    pub clip: bool,
}

impl Param {
    /// A parameter with these values, zero gradient and moments.
    pub fn new(value: Vec<f32>, clip: bool) -> Param {
        let n = value.len();
        Param {
            value,
            grad: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
            clip,
        }
    }

    /// Glorot-uniform latent binary weights of a `rows x cols` matrix.
    pub fn glorot(rows: usize, cols: usize, rng: &mut Rng) -> Param {
        let a = (6.0 / (rows + cols) as f32).sqrt();
        Param::new((0..rows * cols).map(|_| rng.uniform(-a, a)).collect(), true)
    }
}

/// Batch norm of one hidden layer.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    /// Scale.
    pub gamma: Param,
    /// Shift.
    pub beta: Param,
    /// Running mean (inference).
    pub mean: Vec<f32>,
    /// Running variance (inference).
    pub var: Vec<f32>,
    /// Statistics gathered in [`Mode::Calibrate`]: per batch, its rows, mean and (biased)
    /// variance per channel.
    pub calibration: Vec<(usize, Vec<f64>, Vec<f64>)>,
}

impl BatchNorm {
    /// Sets the running statistics to those of every batch gathered in [`Mode::Calibrate`]
    /// (the population's mean and unbiased variance), and forgets the batches.
    pub fn finish_calibration(&mut self) {
        let rows: usize = self.calibration.iter().map(|c| c.0).sum();
        if rows < 2 {
            self.calibration.clear();
            return;
        }
        for j in 0..self.mean.len() {
            let mean: f64 = self
                .calibration
                .iter()
                .map(|(r, m, _)| *r as f64 * m[j])
                .sum::<f64>()
                / rows as f64;
            // Total variance: within batches plus between their means.
            let var: f64 = self
                .calibration
                .iter()
                .map(|(r, m, v)| *r as f64 * (v[j] + (m[j] - mean) * (m[j] - mean)))
                .sum::<f64>()
                / rows as f64;
            self.mean[j] = mean as f32;
            self.var[j] = (var * rows as f64 / (rows - 1) as f64) as f32;
        }
        self.calibration.clear();
    }

    /// Unit batch norm of `n` channels.
    pub fn new(n: usize) -> BatchNorm {
        BatchNorm {
            gamma: Param::new(vec![1.0; n], false),
            beta: Param::new(vec![0.0; n], false),
            mean: vec![0.0; n],
            var: vec![1.0; n],
            calibration: Vec::new(),
        }
    }

    /// Inference-mode scale of neuron `j`: `gamma / sqrt(var + eps)`.
    pub fn eval_scale(&self, j: usize) -> f32 {
        self.gamma.value[j] / (self.var[j] + BN_EPS).sqrt()
    }

    /// Inference-mode output of neuron `j` for pre-activation `z`, given its
    /// [`BatchNorm::eval_scale`]. The one formula both the float graph and the export use.
    #[inline]
    pub fn eval(&self, j: usize, scale: f32, z: f32) -> f32 {
        (z - self.mean[j]) * scale + self.beta.value[j]
    }
}

/// The sign used everywhere for binarization: `+1` for `x >= 0` (also `-0.0`), else `-1`.
#[inline(always)]
pub fn sign(x: f32) -> f32 {
    if x >= 0.0 {
        1.0
    } else {
        -1.0
    }
}

/// The network's parameters.
#[derive(Clone, Debug)]
pub struct Net {
    /// First-layer inputs.
    pub features: usize,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Classes.
    pub classes: usize,
    /// First-layer weights, layout [`Net::first_layout`].
    pub w1: Param,
    /// Weights of hidden layers 2.., each `out x in` row-major.
    pub dense: Vec<Param>,
    /// Output weights, `classes x last hidden`.
    pub out: Param,
    /// One batch norm per hidden layer.
    pub bn: Vec<BatchNorm>,
    /// Log of the output scale.
    pub theta: Param,
    /// `false` for the smooth surrogate graph (tests only).
    pub binarize: bool,
}

/// Whether batch norm uses batch statistics (and updates the running ones) or running ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Training: batch statistics.
    Train,
    /// Inference: running statistics.
    Eval,
    /// Batch statistics, and the running ones left alone: the batch's own statistics go to
    /// [`BatchNorm::calibration`] (see `ConvNet::recalibrate`).
    Calibrate,
}

/// Activations of one batch, kept for the backward pass.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    batch: usize,
    colsum: Vec<f32>,
    /// Per hidden layer: normalised pre-activations, then batch-norm outputs.
    xhat: Vec<Vec<f32>>,
    y: Vec<Vec<f32>>,
    inv_std: Vec<Vec<f32>>,
    /// Per hidden layer: its ±1 outputs.
    act: Vec<Vec<f32>>,
    /// Effective weights of dense layers 2.. and of the output layer.
    wb: Vec<Vec<f32>>,
    /// Output dot products and logits, `batch x classes`.
    zout: Vec<f32>,
    logits: Vec<f32>,
    // gradient buffers
    dz: Vec<f32>,
    dact: Vec<f32>,
    w1_offset: Vec<f32>,
}

impl Workspace {
    /// Logits of the last forward pass, `batch x classes`.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }
}

impl Net {
    /// A freshly initialised network (Glorot-uniform latent weights, unit batch norm).
    pub fn new(features: usize, hidden: &[usize], classes: usize, seed: u64) -> Net {
        let mut rng = Rng::new(seed, 1);
        let l1 = Layout {
            inputs: features,
            outputs: hidden[0],
        };
        // Glorot bounds depend only on the shape, so drawing in storage order is fine.
        let w1 = Param::glorot(l1.inputs, l1.outputs, &mut rng);
        let dense = hidden
            .windows(2)
            .map(|p| Param::glorot(p[1], p[0], &mut rng))
            .collect();
        let last = *hidden.last().expect("at least one hidden layer");
        let out = Param::glorot(classes, last, &mut rng);
        Net {
            features,
            hidden: hidden.to_vec(),
            classes,
            w1,
            dense,
            out,
            bn: hidden.iter().map(|&n| BatchNorm::new(n)).collect(),
            theta: Param::new(vec![-(last as f32).sqrt().ln()], false),
            binarize: true,
        }
    }

    /// Layout of the first layer's weights.
    pub fn first_layout(&self) -> Layout {
        Layout {
            inputs: self.features,
            outputs: self.hidden[0],
        }
    }

    /// The output scale `alpha`.
    pub fn alpha(&self) -> f32 {
        self.theta.value[0].exp()
    }

    fn value(&self) -> impl Fn(f32) -> f32 + Sync + Copy {
        let binarize = self.binarize;
        move |x| if binarize { sign(x) } else { x }
    }

    /// Every parameter, mutably (for the optimizer), first layer first.
    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v: Vec<&mut Param> = vec![&mut self.w1];
        v.extend(self.dense.iter_mut());
        v.push(&mut self.out);
        for bn in &mut self.bn {
            v.push(&mut bn.gamma);
            v.push(&mut bn.beta);
        }
        v.push(&mut self.theta);
        v
    }

    /// Forward pass over a batch; logits end up in `ws`.
    pub fn forward(&mut self, bits: &[ActiveBits], mode: Mode, ws: &mut Workspace) {
        let b = bits.len();
        let depth = self.hidden.len();
        let value = self.value();
        ws.batch = b;
        ws.xhat.resize(depth, Vec::new());
        ws.y.resize(depth, Vec::new());
        ws.inv_std.resize(depth, Vec::new());
        ws.act.resize(depth, Vec::new());
        ws.wb.resize(depth, Vec::new());

        let l1 = self.first_layout();
        ws.colsum.resize(l1.outputs, 0.0);
        first_layer::column_sums(l1, &self.w1.value, value, &mut ws.colsum);
        let mut z = vec![0.0f32; b * l1.outputs];
        first_layer::forward(l1, &self.w1.value, value, &ws.colsum, bits, &mut z);

        for l in 0..depth {
            if l > 0 {
                let (nin, nout) = (self.hidden[l - 1], self.hidden[l]);
                let w = &self.dense[l - 1].value;
                ws.wb[l - 1].clear();
                ws.wb[l - 1].extend(w.iter().map(|&x| value(x)));
                z = vec![0.0; b * nout];
                gemm(
                    b,
                    nin,
                    nout,
                    &ws.act[l - 1],
                    (nin, 1),
                    &ws.wb[l - 1],
                    (1, nin),
                    0.0,
                    &mut z,
                    (nout, 1),
                );
            }
            self.norm_activate(l, &z, mode, ws);
        }

        let last = self.hidden[depth - 1];
        let c = self.classes;
        let wb = &mut ws.wb[depth - 1];
        wb.clear();
        wb.extend(self.out.value.iter().map(|&x| value(x)));
        ws.zout.clear();
        ws.zout.resize(b * c, 0.0);
        gemm(
            b,
            last,
            c,
            &ws.act[depth - 1],
            (last, 1),
            wb,
            (1, last),
            0.0,
            &mut ws.zout,
            (c, 1),
        );
        let alpha = self.alpha();
        ws.logits.clear();
        ws.logits.extend(ws.zout.iter().map(|&z| alpha * z));
    }

    /// Batch norm and activation of hidden layer `l` on pre-activations `z` (`batch x n`).
    fn norm_activate(&mut self, l: usize, z: &[f32], mode: Mode, ws: &mut Workspace) {
        let cache = Cache {
            xhat: &mut ws.xhat[l],
            y: &mut ws.y[l],
            inv_std: &mut ws.inv_std[l],
            act: &mut ws.act[l],
        };
        norm_activate(
            &mut self.bn[l],
            z,
            self.hidden[l],
            mode,
            self.binarize,
            cache,
        );
    }

    /// Softmax cross-entropy of the last forward pass against `labels`: returns the mean loss
    /// and the number of correct argmax predictions, and leaves `d loss / d logits` in `ws.dz`.
    pub fn loss(&self, labels: &[u8], ws: &mut Workspace) -> (f64, usize) {
        self.loss_with(labels, None, ws)
    }

    /// [`Net::loss`] with the teacher's soft targets of the batch mixed in.
    pub fn loss_with(
        &self,
        labels: &[u8],
        soft: Option<super::distill::Soft>,
        ws: &mut Workspace,
    ) -> (f64, usize) {
        softmax_loss(&ws.logits, labels, self.classes, soft, &mut ws.dz)
    }

    /// Backward pass after [`Net::forward`] (train mode) and [`Net::loss`]: fills every
    /// parameter's `grad` (the first layer's as its accumulator, see [`Net::first_offset`]).
    pub fn backward(&mut self, bits: &[ActiveBits], ws: &mut Workspace) {
        let b = ws.batch;
        let depth = self.hidden.len();
        let c = self.classes;
        let last = self.hidden[depth - 1];
        let alpha = self.alpha();

        // Output scale and output layer.
        let dlogits = std::mem::take(&mut ws.dz);
        let dalpha: f64 = dlogits
            .iter()
            .zip(&ws.zout)
            .map(|(&d, &z)| (d * z) as f64)
            .sum();
        self.theta.grad[0] = (dalpha * alpha as f64) as f32;
        let dzout: Vec<f32> = dlogits.iter().map(|&d| d * alpha).collect();
        gemm(
            c,
            b,
            last,
            &dzout,
            (1, c),
            &ws.act[depth - 1],
            (last, 1),
            0.0,
            &mut self.out.grad,
            (last, 1),
        );
        ws.dact.clear();
        ws.dact.resize(b * last, 0.0);
        gemm(
            b,
            c,
            last,
            &dzout,
            (c, 1),
            &ws.wb[depth - 1],
            (last, 1),
            0.0,
            &mut ws.dact,
            (last, 1),
        );

        for l in (0..depth).rev() {
            let n = self.hidden[l];
            let dz = self.norm_backward(l, ws);
            if l > 0 {
                let nin = self.hidden[l - 1];
                gemm(
                    n,
                    b,
                    nin,
                    &dz,
                    (1, n),
                    &ws.act[l - 1],
                    (nin, 1),
                    0.0,
                    &mut self.dense[l - 1].grad,
                    (nin, 1),
                );
                ws.dact.clear();
                ws.dact.resize(b * nin, 0.0);
                gemm(
                    b,
                    n,
                    nin,
                    &dz,
                    (n, 1),
                    &ws.wb[l - 1],
                    (nin, 1),
                    0.0,
                    &mut ws.dact,
                    (nin, 1),
                );
            } else {
                let l1 = self.first_layout();
                self.w1.grad.fill(0.0);
                ws.w1_offset.resize(n, 0.0);
                first_layer::backward(l1, bits, &dz, &mut self.w1.grad, &mut ws.w1_offset);
            }
        }
    }

    /// The first layer's gradient offset of the last backward pass: the gradient of weight
    /// `(i, j)` is `2 * w1.grad[index(i, j)] - offset[j]`.
    pub fn first_offset<'w>(&self, ws: &'w Workspace) -> &'w [f32] {
        &ws.w1_offset
    }

    /// Straight-through activation and batch-norm backward of hidden layer `l`; consumes
    /// `ws.dact` (gradient w.r.t. the layer's outputs) and returns the gradient w.r.t. its
    /// pre-activations.
    fn norm_backward(&mut self, l: usize, ws: &mut Workspace) -> Vec<f32> {
        let mut dy = std::mem::take(&mut ws.dact);
        let dz = norm_backward(
            &mut self.bn[l],
            self.hidden[l],
            &mut dy,
            &ws.xhat[l],
            &ws.y[l],
            &ws.inv_std[l],
        );
        ws.dact = dy;
        dz
    }
}

/// The buffers batch norm and activation keep for the backward pass.
pub(super) struct Cache<'a> {
    /// Normalised pre-activations.
    pub xhat: &'a mut Vec<f32>,
    /// Batch-norm outputs.
    pub y: &'a mut Vec<f32>,
    /// Per channel `1 / sqrt(var + eps)` (train mode).
    pub inv_std: &'a mut Vec<f32>,
    /// Activations: `sign(y)`, or `clamp(y, -1, 1)` in the surrogate graph.
    pub act: &'a mut Vec<f32>,
}

/// Batch norm (per channel: `z` is `rows x n`, channel fastest) and sign of pre-activations
/// `z`; in train mode batch statistics are used and the running ones updated.
pub(super) fn norm_activate(
    bn: &mut BatchNorm,
    z: &[f32],
    n: usize,
    mode: Mode,
    binarize: bool,
    c: Cache,
) {
    let b = z.len() / n;
    let (xhat, y, inv_std, act) = (c.xhat, c.y, c.inv_std, c.act);
    xhat.resize(b * n, 0.0);
    y.resize(b * n, 0.0);
    act.resize(b * n, 0.0);
    inv_std.resize(n, 0.0);
    match mode {
        Mode::Train | Mode::Calibrate => {
            // Column sums over fixed chunks of rows, added in chunk order: the same result
            // whatever the thread count (and, for a batch of one chunk, the plain sum).
            let column_sums = |f: &(dyn Fn(usize, f32) -> f64 + Sync)| -> Vec<f64> {
                let parts: Vec<Vec<f64>> = z
                    .par_chunks(BN_ROWS * n)
                    .map(|ch| {
                        let mut s = vec![0.0f64; n];
                        for row in ch.chunks_exact(n) {
                            for (j, (acc, &x)) in s.iter_mut().zip(row).enumerate() {
                                *acc += f(j, x);
                            }
                        }
                        s
                    })
                    .collect();
                let mut total = vec![0.0f64; n];
                for p in parts {
                    for (t, v) in total.iter_mut().zip(p) {
                        *t += v;
                    }
                }
                total
            };
            let mut mean = column_sums(&|_, x| x as f64);
            mean.iter_mut().for_each(|m| *m /= b as f64);
            let mut var = column_sums(&|j, x| (x as f64 - mean[j]) * (x as f64 - mean[j]));
            var.iter_mut().for_each(|v| *v /= b as f64);
            for j in 0..n {
                inv_std[j] = 1.0 / ((var[j] as f32) + BN_EPS).sqrt();
                if mode == Mode::Train {
                    let unbiased = var[j] * b as f64 / (b.max(2) - 1) as f64;
                    bn.mean[j] += BN_MOMENTUM * (mean[j] as f32 - bn.mean[j]);
                    bn.var[j] += BN_MOMENTUM * (unbiased as f32 - bn.var[j]);
                }
            }
            if mode == Mode::Calibrate {
                bn.calibration.push((b, mean.clone(), var.clone()));
            }
            let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
            let (gamma, beta, inv) = (&bn.gamma.value, &bn.beta.value, &*inv_std);
            z.par_chunks(BN_ROWS * n)
                .zip(xhat.par_chunks_mut(BN_ROWS * n))
                .zip(y.par_chunks_mut(BN_ROWS * n))
                .for_each(|((zc, xc), yc)| {
                    for (r, row) in zc.chunks_exact(n).enumerate() {
                        for j in 0..n {
                            let xh = (row[j] - mean32[j]) * inv[j];
                            xc[r * n + j] = xh;
                            yc[r * n + j] = gamma[j] * xh + beta[j];
                        }
                    }
                });
        }
        Mode::Eval => {
            let scales: Vec<f32> = (0..n).map(|j| bn.eval_scale(j)).collect();
            let bn = &*bn;
            z.par_chunks(BN_ROWS * n)
                .zip(y.par_chunks_mut(BN_ROWS * n))
                .for_each(|(zc, yc)| {
                    for (r, row) in zc.chunks_exact(n).enumerate() {
                        for j in 0..n {
                            yc[r * n + j] = bn.eval(j, scales[j], row[j]);
                        }
                    }
                });
        }
    }
    for (a, &v) in act.iter_mut().zip(y.iter()) {
        *a = if binarize {
            sign(v)
        } else {
            v.clamp(-1.0, 1.0)
        };
    }
}

/// Straight-through activation and batch-norm backward: `dy` holds the gradient w.r.t. the
/// activations on entry (zeroed where `|y| > 1`); returns the gradient w.r.t. `z` and fills
/// the batch-norm parameters' gradients.
pub(super) fn norm_backward(
    bn: &mut BatchNorm,
    n: usize,
    dy: &mut [f32],
    xhat: &[f32],
    y: &[f32],
    inv_std: &[f32],
) -> Vec<f32> {
    let b = dy.len() / n;
    dy.par_chunks_mut(BN_ROWS * n)
        .zip(y.par_chunks(BN_ROWS * n))
        .for_each(|(dc, yc)| {
            for (d, &v) in dc.iter_mut().zip(yc) {
                if v.abs() > 1.0 {
                    *d = 0.0;
                }
            }
        });
    // Per-channel sums over fixed chunks of rows, added in chunk order.
    let parts: Vec<(Vec<f64>, Vec<f64>)> = dy
        .par_chunks(BN_ROWS * n)
        .zip(xhat.par_chunks(BN_ROWS * n))
        .map(|(dc, xc)| {
            let (mut g, mut be) = (vec![0.0f64; n], vec![0.0f64; n]);
            for (drow, xrow) in dc.chunks_exact(n).zip(xc.chunks_exact(n)) {
                for j in 0..n {
                    let d = drow[j] as f64;
                    g[j] += d * xrow[j] as f64;
                    be[j] += d;
                }
            }
            (g, be)
        })
        .collect();
    let mut dgamma = vec![0.0f64; n];
    let mut dbeta = vec![0.0f64; n];
    for (g, be) in parts {
        for j in 0..n {
            dgamma[j] += g[j];
            dbeta[j] += be[j];
        }
    }
    let mut dz = vec![0.0f32; b * n];
    let k: Vec<f32> = (0..n)
        .map(|j| bn.gamma.value[j] * inv_std[j] / b as f32)
        .collect();
    for j in 0..n {
        bn.gamma.grad[j] = dgamma[j] as f32;
        bn.beta.grad[j] = dbeta[j] as f32;
    }
    let (dg, db): (Vec<f32>, Vec<f32>) = (
        dgamma.iter().map(|&v| v as f32).collect(),
        dbeta.iter().map(|&v| v as f32).collect(),
    );
    let dy = &*dy;
    dz.par_chunks_mut(BN_ROWS * n)
        .zip(dy.par_chunks(BN_ROWS * n))
        .zip(xhat.par_chunks(BN_ROWS * n))
        .for_each(|((zc, dc), xc)| {
            for i in 0..zc.len() {
                let j = i % n;
                zc[i] = k[j] * (b as f32 * dc[i] - db[j] - xc[i] * dg[j]);
            }
        });
    dz
}

/// Mean softmax cross-entropy of `logits` (`batch x classes`) against `labels`, mixed with the
/// teacher's soft targets when given ([`super::distill`]), and the number of correct argmax
/// predictions; `d loss / d logits` goes to `dlogits`.
pub(super) fn softmax_loss(
    logits: &[f32],
    labels: &[u8],
    c: usize,
    soft: Option<super::distill::Soft>,
    dlogits: &mut Vec<f32>,
) -> (f64, usize) {
    let b = logits.len() / c;
    dlogits.clear();
    dlogits.resize(b * c, 0.0);
    let mut loss = 0.0f64;
    let mut correct = 0;
    for (r, (row, &label)) in logits.chunks_exact(c).zip(labels).enumerate() {
        let s = soft.map(|s| (&s.probs[r * c..(r + 1) * c], s.temperature, s.weight));
        let grad = &mut dlogits[r * c..(r + 1) * c];
        loss += super::distill::image_loss(row, label as usize, s, b as f64, grad);
        let mut best = 0;
        for k in 0..c {
            if row[k] > row[best] {
                best = k;
            }
        }
        correct += (best == label as usize) as usize;
    }
    (loss / b as f64, correct)
}
