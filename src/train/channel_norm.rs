//! Batch norm and sign over many rows: the convolutional graph's version of
//! [`super::net::norm_activate`] and [`super::net::norm_backward`], for pre-activations of
//! `batch x positions` rows (78,400 rows of 32 channels for the first layer of the MNIST
//! preset at batch 100), where memory traffic, not arithmetic, is the cost.
//!
//! The arithmetic is that of the perceptron's functions, organised to touch memory less:
//! the statistics take one pass (sums of `z` and `z^2` in `f64`; the binarized graph's
//! pre-activations are integers, so both sums are exact and the statistics do not depend on
//! how rows are grouped), nothing but `z` is kept for the backward pass (`xhat` and `y` are
//! recomputed with the same formulas, so they are the same numbers), and the gradient with
//! respect to `z` can be produced row by row where it is used ([`Backward::dz`]). Work is split
//! over fixed chunks of rows, added in chunk order, so results do not depend on the number of
//! threads.

use rayon::prelude::*;

use super::net::{sign, BatchNorm, Mode, BN_EPS, BN_MOMENTUM};

/// Rows per parallel task.
const ROWS: usize = 1024;

/// What a layer's normalised pre-activation `y` becomes, and what the graph's weights are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// The binary network: `sign(W)` weights, `sign(y)` activations, the straight-through
    /// gradient inside `|y| <= 1`.
    Sign,
    /// Its smooth surrogate: `W` as it is, `clamp(y, -1, 1)`, whose gradient is exact (the
    /// finite-difference tests).
    HardTanh,
    /// The full-precision counterpart: `W` as it is, `max(y, 0)`.
    Relu,
}

impl Activation {
    /// The activation of `y`.
    #[inline(always)]
    pub fn of(self, y: f32) -> f32 {
        match self {
            Activation::Sign => sign(y),
            Activation::HardTanh => y.clamp(-1.0, 1.0),
            Activation::Relu => y.max(0.0),
        }
    }

    /// Whether no gradient flows back through the activation at `y`.
    #[inline(always)]
    pub fn blocks(self, y: f32) -> bool {
        match self {
            Activation::Sign | Activation::HardTanh => y.abs() > 1.0,
            Activation::Relu => y <= 0.0,
        }
    }

    /// The value a convolution reads outside the image: `-1` for ±1 values, `0` after ReLU.
    pub fn padding(self) -> f32 {
        match self {
            Activation::Sign | Activation::HardTanh => -1.0,
            Activation::Relu => 0.0,
        }
    }

    /// The weights the graph multiplies by, for latent weight `w`.
    #[inline(always)]
    pub fn weight(self, w: f32) -> f32 {
        match self {
            Activation::Sign => sign(w),
            Activation::HardTanh | Activation::Relu => w,
        }
    }
}

/// Per-channel sums of a block of rows (`rows x n`, channel fastest).
#[derive(Clone, Debug, Default)]
pub(super) struct Sums {
    /// `sum z`.
    pub s: Vec<f64>,
    /// `sum z^2`.
    pub q: Vec<f64>,
}

impl Sums {
    /// The sums of the rows of `z`, sequentially.
    pub fn of(z: &[f32], n: usize) -> Sums {
        let (mut s, mut q) = (vec![0.0f64; n], vec![0.0f64; n]);
        for row in z.chunks_exact(n) {
            for ((s, q), &x) in s.iter_mut().zip(q.iter_mut()).zip(row) {
                let x = x as f64;
                *s += x;
                *q += x * x;
            }
        }
        Sums { s, q }
    }

    /// Adds `other` (the next block of rows).
    pub fn add(&mut self, other: &Sums) {
        if self.s.is_empty() {
            *self = other.clone();
            return;
        }
        for j in 0..self.s.len() {
            self.s[j] += other.s[j];
            self.q[j] += other.q[j];
        }
    }

    /// The sums of every row of `z`, over fixed chunks added in order.
    pub fn par_of(z: &[f32], n: usize) -> Sums {
        let parts: Vec<Sums> = z.par_chunks(ROWS * n).map(|c| Sums::of(c, n)).collect();
        Sums::total(&parts)
    }

    /// The sums of consecutive blocks, added in order.
    pub fn total(parts: &[Sums]) -> Sums {
        let mut all = Sums::default();
        for p in parts {
            all.add(p);
        }
        all
    }
}

/// What the backward pass needs of a train-mode forward pass besides `z` (with which
/// [`xhat`] recomputes the normalised pre-activations).
#[derive(Clone, Debug, Default)]
pub(super) struct Saved {
    /// Batch mean per channel.
    pub mean: Vec<f32>,
    /// `1 / sqrt(var + eps)` per channel.
    pub inv_std: Vec<f32>,
}

/// The normalised pre-activation of `z` in a channel with batch mean `mean` and
/// `1 / sqrt(var + eps)` `inv_std`: one formula, in one order, wherever it is needed (the
/// backward pass recomputes the forward pass's numbers).
#[inline(always)]
fn xhat(z: f32, mean: f32, inv_std: f32) -> f32 {
    (z - mean) * inv_std
}

/// Batch norm (per channel; `z` is `rows x n`, channel fastest, `sums` its sums) and
/// activation `activation` into `act`. In train
/// and calibrate mode the batch statistics are used (and kept in `saved`); in train mode the
/// running statistics are updated, in calibrate mode the batch's go to
/// [`BatchNorm::calibration`]. In eval mode the running statistics are used and `sums` is not
/// read.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    bn: &mut BatchNorm,
    z: &[f32],
    n: usize,
    sums: &Sums,
    mode: Mode,
    activation: Activation,
    saved: &mut Saved,
    act: &mut Vec<f32>,
) {
    let rows = z.len() / n;
    act.resize(rows * n, 0.0);
    if mode == Mode::Eval {
        let scales: Vec<f32> = (0..n).map(|j| bn.eval_scale(j)).collect();
        let bn = &*bn;
        z.par_chunks(ROWS * n)
            .zip(act.par_chunks_mut(ROWS * n))
            .for_each(|(zc, ac)| {
                for (zr, ar) in zc.chunks_exact(n).zip(ac.chunks_exact_mut(n)) {
                    for j in 0..n {
                        ar[j] = activation.of(bn.eval(j, scales[j], zr[j]));
                    }
                }
            });
        return;
    }
    let b = rows as f64;
    let mean: Vec<f64> = sums.s.iter().map(|s| s / b).collect();
    let var: Vec<f64> = sums
        .q
        .iter()
        .zip(&mean)
        .map(|(q, m)| (q / b - m * m).max(0.0))
        .collect();
    saved.inv_std.clear();
    saved
        .inv_std
        .extend(var.iter().map(|&v| 1.0 / ((v as f32) + BN_EPS).sqrt()));
    saved.mean.clear();
    saved.mean.extend(mean.iter().map(|&m| m as f32));
    if mode == Mode::Train {
        for j in 0..n {
            let unbiased = var[j] * b / (rows.max(2) - 1) as f64;
            bn.mean[j] += BN_MOMENTUM * (mean[j] as f32 - bn.mean[j]);
            bn.var[j] += BN_MOMENTUM * (unbiased as f32 - bn.var[j]);
        }
    } else {
        bn.calibration.push((rows, mean, var));
    }
    let (gamma, beta, saved) = (&bn.gamma.value, &bn.beta.value, &*saved);
    let params = Channels {
        gamma,
        beta,
        mean: &saved.mean,
        inv_std: &saved.inv_std,
    };
    z.par_chunks(ROWS * n)
        .zip(act.par_chunks_mut(ROWS * n))
        .for_each(|(zc, ac)| match activation {
            Activation::Sign => params.apply(zc, ac, |y| Activation::Sign.of(y)),
            Activation::HardTanh => params.apply(zc, ac, |y| Activation::HardTanh.of(y)),
            Activation::Relu => params.apply(zc, ac, |y| Activation::Relu.of(y)),
        });
}

/// The per-channel parameters of a train-mode batch norm, borrowed.
struct Channels<'a> {
    gamma: &'a [f32],
    beta: &'a [f32],
    mean: &'a [f32],
    inv_std: &'a [f32],
}

impl Channels<'_> {
    /// Zeroes the gradients `d` (rows like `z`) where `blocks(gamma * xhat + beta)` (the
    /// activation lets none through, [`Activation::blocks`]) and returns the per-channel sums
    /// of `d * xhat` and of `d`; one monomorphic loop per activation.
    #[inline(always)]
    fn gate(&self, d: &mut [f32], z: &[f32], blocks: impl Fn(f32) -> bool) -> (Vec<f64>, Vec<f64>) {
        let n = self.gamma.len();
        let (mut g, mut be) = (vec![0.0f64; n], vec![0.0f64; n]);
        for (dr, zr) in d.chunks_exact_mut(n).zip(z.chunks_exact(n)) {
            for ((((d, &z), (&m, &s)), (&ga, &b)), (g, be)) in dr
                .iter_mut()
                .zip(zr)
                .zip(self.mean.iter().zip(self.inv_std))
                .zip(self.gamma.iter().zip(self.beta))
                .zip(g.iter_mut().zip(be.iter_mut()))
            {
                let xh = xhat(z, m, s);
                let keep = !blocks(ga * xh + b);
                *d = if keep { *d } else { 0.0 };
                *g += *d as f64 * xh as f64;
                *be += *d as f64;
            }
        }
        (g, be)
    }

    /// `act = f(gamma * xhat + beta)` over rows of `z` (the formula of [`xhat`], so the
    /// same numbers); one monomorphic loop per activation without
    /// bounds checks or branches, which the compiler vectorizes.
    #[inline(always)]
    fn apply(&self, z: &[f32], act: &mut [f32], f: impl Fn(f32) -> f32) {
        let n = self.gamma.len();
        for (zr, ar) in z.chunks_exact(n).zip(act.chunks_exact_mut(n)) {
            for (((a, &z), (&g, &b)), (&m, &s)) in ar
                .iter_mut()
                .zip(zr)
                .zip(self.gamma.iter().zip(self.beta))
                .zip(self.mean.iter().zip(self.inv_std))
            {
                *a = f(g * xhat(z, m, s) + b);
            }
        }
    }
}

/// The batch-norm backward pass of one layer, once its parameters' gradients are known.
pub(super) struct Backward<'a> {
    saved: &'a Saved,
    /// `gamma * inv_std / rows` per channel.
    k: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
    rows: f32,
}

impl Backward<'_> {
    /// Overwrites `d` (rows of gradients with respect to the activations, saturated ones
    /// already zeroed by [`backward`]) with the gradients with respect to `z`.
    pub fn dz(&self, d: &mut [f32], z: &[f32]) {
        let n = self.k.len();
        let (mean, inv_std) = (&self.saved.mean[..n], &self.saved.inv_std[..n]);
        let (k, dbeta, dgamma) = (&self.k[..], &self.dbeta[..n], &self.dgamma[..n]);
        let rows = self.rows;
        for (dr, zr) in d.chunks_exact_mut(n).zip(z.chunks_exact(n)) {
            for j in 0..n {
                let xh = xhat(zr[j], mean[j], inv_std[j]);
                dr[j] = k[j] * (rows * dr[j] - dbeta[j] - xh * dgamma[j]);
            }
        }
    }

    /// [`Backward::dz`] over every row, in parallel.
    pub fn par_dz(&self, d: &mut [f32], z: &[f32]) {
        let n = self.k.len();
        d.par_chunks_mut(ROWS * n)
            .zip(z.par_chunks(ROWS * n))
            .for_each(|(dc, zc)| self.dz(dc, zc));
    }
}

/// Activation and batch-norm backward after a train-mode [`forward`] of `z`: `d` holds the
/// gradient with respect to the activations and is zeroed where the activation lets none
/// through ([`Activation::blocks`]); the batch-norm parameters' gradients are filled. The
/// returned [`Backward`] turns `d` into the gradient with respect to `z`.
pub(super) fn backward<'a>(
    bn: &mut BatchNorm,
    activation: Activation,
    n: usize,
    d: &mut [f32],
    z: &[f32],
    saved: &'a Saved,
) -> Backward<'a> {
    let rows = d.len() / n;
    let (gamma, beta) = (&bn.gamma.value, &bn.beta.value);
    let parts: Vec<(Vec<f64>, Vec<f64>)> = d
        .par_chunks_mut(ROWS * n)
        .zip(z.par_chunks(ROWS * n))
        .map(|(dc, zc)| {
            let c = Channels {
                gamma,
                beta,
                mean: &saved.mean,
                inv_std: &saved.inv_std,
            };
            // One loop per activation, each with a constant activation (inlined).
            match activation {
                Activation::Sign => c.gate(dc, zc, |y| Activation::Sign.blocks(y)),
                Activation::HardTanh => c.gate(dc, zc, |y| Activation::HardTanh.blocks(y)),
                Activation::Relu => c.gate(dc, zc, |y| Activation::Relu.blocks(y)),
            }
        })
        .collect();
    let (mut dgamma, mut dbeta) = (vec![0.0f64; n], vec![0.0f64; n]);
    for (g, be) in parts {
        for j in 0..n {
            dgamma[j] += g[j];
            dbeta[j] += be[j];
        }
    }
    let dgamma: Vec<f32> = dgamma.iter().map(|&v| v as f32).collect();
    let dbeta: Vec<f32> = dbeta.iter().map(|&v| v as f32).collect();
    bn.gamma.grad.copy_from_slice(&dgamma);
    bn.beta.grad.copy_from_slice(&dbeta);
    Backward {
        saved,
        k: (0..n)
            .map(|j| gamma[j] * saved.inv_std[j] / rows as f32)
            .collect(),
        dgamma,
        dbeta,
        rows: rows as f32,
    }
}
