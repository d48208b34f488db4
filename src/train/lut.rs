//! The training graph of a logic-mapped network: one layer of sparse truth-table neurons over
//! the bit-plane features, whose connections are learned, then the group sum.
//!
//! - **Connections** are learned by a mapping matrix `W` (`M * F` rows, one per neuron input,
//!   over the `P` features): input `q` reads feature `argmax_p W[q][p]`. Its gradient is dense,
//!   `dL/dW[q][p] = sum_b x[b][p] * g_in[b][q]` (`x` as ±1), so every feature competes for
//!   every input.
//! - **Tables** are real numbers in `[-1, 1]` (clipped after each step); a neuron's output is
//!   `1` when the entry its inputs address is positive (the exported table bit), passed
//!   straight through in the backward pass. The entry addressed gets the output's gradient.
//! - **Input gradients** through a table are its extended finite difference: for address `a*`
//!   and input `l`, `sum_a s_l(a) * ALPHA * BETA^H * T[a]` over all `2^F` entries, `s_l(a)` the
//!   sign of bit `l` of `a` and `H` the Hamming distance of `a` and `a*` outside bit `l`
//!   (entries that differ in bit `l` only weigh most).
//! - **Scores**: the group sums of the outputs, divided by a temperature `tau`, into softmax
//!   and cross-entropy.
//!
//! The integer model is the truth: [`LutGraph::export`] gives the `lut` layer (argmax
//! connections, table signs) and the group sum, and the graph's forward pass computes exactly
//! what they compute (`forward` on bits, not on a relaxation).

use super::net::Param;
use crate::layers::{GroupSum, Lut};
use crate::util::rng::Rng;

/// Weight of the entry itself and its neighbours in the extended finite difference.
const ALPHA: f32 = 0.5;
/// Decay per bit of Hamming distance.
const BETA: f32 = 1.0 / 3.0;

/// A one-layer logic-mapped network under training.
#[derive(Clone, Debug)]
pub struct LutGraph {
    /// Features (`P`).
    pub inputs: usize,
    /// Neurons (`M`, a multiple of `classes`).
    pub neurons: usize,
    /// Inputs a neuron reads (`F <= 6`).
    pub fan_in: usize,
    /// Classes.
    pub classes: usize,
    /// Temperature of the group sums.
    pub tau: f32,
    /// `M * F x P` mapping scores, row `q` for neuron input `q`.
    pub mapping: Param,
    /// `M x 2^F` table entries.
    pub tables: Param,
    /// The extended finite difference's weights: `[l][a*][a]`.
    efd: Vec<f32>,
}

/// Buffers of one forward and backward pass.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    /// The feature each neuron input reads.
    pub sources: Vec<u32>,
    /// `B x M` addresses.
    addr: Vec<u8>,
    /// `B x M` outputs (0 or 1).
    out: Vec<u8>,
    /// `B x C` logits: the group sums over the temperature.
    logits: Vec<f32>,
    /// `B x M*F` input gradients.
    g_in: Vec<f32>,
}

impl LutGraph {
    /// A graph of `neurons` neurons of `fan_in` inputs over `inputs` features, `classes`
    /// groups, initialised from `seed` (mapping and tables uniform).
    pub fn new(
        inputs: usize,
        neurons: usize,
        fan_in: usize,
        classes: usize,
        tau: f32,
        seed: u64,
    ) -> LutGraph {
        assert!((1..=crate::layers::MAX_FAN_IN).contains(&fan_in));
        assert!(neurons.is_multiple_of(classes) && neurons >= classes);
        let mut rng = Rng::new(seed, 21);
        let q = neurons * fan_in;
        let mapping = (0..q * inputs).map(|_| rng.uniform(0.0, 1.0)).collect();
        let tables = (0..neurons << fan_in)
            .map(|_| rng.uniform(-1.0, 1.0))
            .collect();
        LutGraph {
            inputs,
            neurons,
            fan_in,
            classes,
            tau,
            mapping: Param::new(mapping, false),
            tables: Param::new(tables, true),
            efd: efd_weights(fan_in),
        }
    }

    /// The feature each neuron input reads now: the argmax of its mapping row, the lowest
    /// feature on ties.
    pub fn sources(&self) -> Vec<u32> {
        use rayon::prelude::*;
        self.mapping
            .value
            .par_chunks(self.inputs)
            .map(|row| {
                let mut best = 0;
                for (p, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = p;
                    }
                }
                best as u32
            })
            .collect()
    }

    /// The integer layers the graph computes: the `lut` layer and the group sum.
    pub fn export(&self) -> (Lut, GroupSum) {
        let t = 1usize << self.fan_in;
        let tables = self
            .tables
            .value
            .chunks(t)
            .map(|e| {
                e.iter()
                    .enumerate()
                    .fold(0u64, |acc, (a, &v)| acc | (u64::from(v > 0.0) << a))
            })
            .collect();
        (
            Lut {
                fan_in: self.fan_in,
                connections: self.sources(),
                tables,
            },
            GroupSum {
                classes: self.classes,
            },
        )
    }

    /// The forward pass on `b` images of ±1 features `x` (`b x P`): addresses, outputs and
    /// class probabilities in `ws`; returns the group sums (`b x C`, before the temperature).
    pub fn forward(&self, x: &[f32], b: usize, ws: &mut Workspace) -> Vec<u32> {
        let (m, f, p) = (self.neurons, self.fan_in, self.inputs);
        let t = 1usize << f;
        ws.sources = self.sources();
        ws.addr.clear();
        ws.out.clear();
        let group = m / self.classes;
        let mut sums = vec![0u32; b * self.classes];
        for i in 0..b {
            let xi = &x[i * p..(i + 1) * p];
            for j in 0..m {
                let mut a = 0usize;
                for l in 0..f {
                    if xi[ws.sources[j * f + l] as usize] > 0.0 {
                        a |= 1 << l;
                    }
                }
                let o = u8::from(self.tables.value[j * t + a] > 0.0);
                ws.addr.push(a as u8);
                ws.out.push(o);
                sums[i * self.classes + j / group] += u32::from(o);
            }
        }
        ws.logits.clear();
        ws.logits.extend(sums.iter().map(|&s| s as f32 / self.tau));
        sums
    }

    /// The mean loss of the last forward pass against `labels` and, if given, a teacher's
    /// soft targets ([`super::distill::image_loss`] on the logits `sums / tau`), and the
    /// gradient of each neuron output's contribution, `dL/d out[b][j]`: its class's logit
    /// gradient over `tau`.
    pub fn loss_and_gradients(
        &self,
        ws: &Workspace,
        labels: &[u8],
        soft: Option<super::distill::Soft>,
    ) -> (f32, Vec<f32>) {
        let (m, c) = (self.neurons, self.classes);
        let group = m / c;
        let b = labels.len();
        let mut g = vec![0.0f32; b * m];
        let mut dlogit = vec![0.0f32; c];
        let (mut loss, mut soft_loss) = (0.0f32, 0.0f64);
        for (i, &y) in labels.iter().enumerate() {
            let row = &ws.logits[i * c..(i + 1) * c];
            match soft {
                Some(s) => {
                    let q = (&s.probs[i * c..(i + 1) * c], s.temperature, s.weight);
                    let batch = b as f64;
                    soft_loss +=
                        super::distill::image_loss(row, y as usize, Some(q), batch, &mut dlogit);
                    for d in &mut dlogit {
                        *d /= self.tau;
                    }
                }
                // Labels only: the plain cross-entropy in single precision, as the graph
                // always computed it (the same trainings, bit for bit).
                None => {
                    let top = row.iter().cloned().fold(f32::MIN, f32::max);
                    let e: Vec<f32> = row.iter().map(|&v| (v - top).exp()).collect();
                    let total: f32 = e.iter().sum();
                    loss -= (e[y as usize] / total).max(1e-30).ln();
                    for (k, d) in dlogit.iter_mut().enumerate() {
                        let p = e[k] / total;
                        *d = (p - f32::from(k == y as usize)) / (self.tau * b as f32);
                    }
                }
            }
            for j in 0..m {
                g[i * m + j] = dlogit[j / group];
            }
        }
        let loss = match soft {
            Some(_) => (soft_loss / b.max(1) as f64) as f32,
            None => loss / b as f32,
        };
        (loss, g)
    }

    /// The backward pass of the last forward pass on `x` (`b x P`, ±1) given the gradients of
    /// the neuron outputs ([`LutGraph::loss_and_gradients`]): the gradients of the tables and
    /// of the mapping, in their `grad`.
    pub fn backward(&mut self, x: &[f32], g_out: &[f32], ws: &mut Workspace) {
        let (m, f, p) = (self.neurons, self.fan_in, self.inputs);
        let t = 1usize << f;
        let b = g_out.len() / m;
        self.tables.grad.fill(0.0);
        ws.g_in.clear();
        ws.g_in.resize(b * m * f, 0.0);
        for i in 0..b {
            for j in 0..m {
                let g = g_out[i * m + j];
                let a = ws.addr[i * m + j] as usize;
                self.tables.grad[j * t + a] += g;
                let entries = &self.tables.value[j * t..(j + 1) * t];
                for l in 0..f {
                    let w = &self.efd[(l * t + a) * t..(l * t + a + 1) * t];
                    let d: f32 = w.iter().zip(entries).map(|(w, e)| w * e).sum();
                    ws.g_in[(i * m + j) * f + l] = g * d;
                }
            }
        }
        // dL/dW[q][p] = sum_b g_in[b][q] * x[b][p].
        crate::util::gemm::gemm_at_b(m * f, b, p, &ws.g_in, x, &mut self.mapping.grad);
    }

    /// The extended finite difference of neuron `j`'s table at address `a`, input `l`,
    /// straight from its definition.
    pub fn efd_by_definition(&self, j: usize, a: usize, l: usize) -> f32 {
        let t = 1usize << self.fan_in;
        (0..t)
            .map(|e| {
                let s = if (e >> l) & 1 == 1 { 1.0 } else { -1.0 };
                let h = ((e ^ a) & !(1 << l)).count_ones() as i32;
                s * ALPHA * BETA.powi(h) * self.tables.value[j * t + e]
            })
            .sum()
    }
}

/// The temperature of the group sums for groups of `group` neurons: `(1 / 0.3) *
/// (group / 100)^0.57`, 3.33 for the 100 neurons a class of 1000 neurons and 10 classes. Larger
/// groups give larger sums and need a higher temperature for the same softmax.
pub fn temperature(group: usize) -> f32 {
    (1.0 / 0.3) * (group as f32 / 100.0).powf(0.57)
}

impl LutGraph {
    /// The class of each packed feature row: the argmax of its group sums, ties to the
    /// lowest class.
    pub fn predict(&self, rows: &[&[u64]]) -> Vec<usize> {
        use rayon::prelude::*;
        rows.par_chunks(256)
            .flat_map_iter(|chunk| {
                let (mut ws, mut x) = (Workspace::default(), Vec::new());
                super::conv::unpack(chunk, self.inputs, &mut x);
                let sums = self.forward(&x, chunk.len(), &mut ws);
                let c = self.classes;
                (0..chunk.len())
                    .map(|i| crate::reference::argmax(&sums[i * c..(i + 1) * c]))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl super::Graph for LutGraph {
    type Ws = (Workspace, Vec<f32>);

    fn step(
        &mut self,
        rows: &[&[u64]],
        labels: &[u8],
        soft: Option<super::distill::Soft>,
        lr: f32,
        adam: &mut super::adam::Adam,
        (ws, x): &mut Self::Ws,
    ) -> (f64, usize) {
        super::conv::unpack(rows, self.inputs, x);
        let sums = self.forward(x, rows.len(), ws);
        let (loss, g_out) = self.loss_and_gradients(ws, labels, soft);
        let c = self.classes;
        let correct = labels
            .iter()
            .enumerate()
            .filter(|&(i, &y)| crate::reference::argmax(&sums[i * c..(i + 1) * c]) == y as usize)
            .count();
        if loss.is_finite() {
            self.backward(x, &g_out, ws);
            adam.step_params(vec![&mut self.mapping, &mut self.tables], lr);
        }
        (f64::from(loss), correct)
    }

    fn export(&self, meta: &super::DataMeta) -> crate::model::IntModel {
        let (lut, sum) = LutGraph::export(self);
        crate::model::IntModel {
            input: meta.input,
            planes: meta.planes.clone(),
            layers: vec![
                crate::layers::Layer::Lut(lut),
                crate::layers::Layer::GroupSum(sum),
            ],
            provenance: crate::model::Provenance::default(),
        }
    }

    fn network(self) -> super::Network {
        super::Network::Lut(self)
    }
}

/// Settings of [`fit`].
#[derive(Clone, Debug)]
pub struct Fit {
    /// Passes over the training images.
    pub epochs: usize,
    /// Images a step.
    pub batch: usize,
    /// Adam's learning rate in the first epoch; it decays geometrically to `lr_final` in the
    /// last.
    pub lr: f32,
    /// Learning rate of the last epoch.
    pub lr_final: f32,
    /// Shuffling seed.
    pub seed: u64,
}

/// Trains `g` on packed feature rows and labels; `epoch_done(epoch, mean loss, g)` after each
/// epoch.
pub fn fit(
    g: &mut LutGraph,
    rows: &[&[u64]],
    labels: &[u8],
    cfg: &Fit,
    mut epoch_done: impl FnMut(usize, f32, &LutGraph),
) {
    let mut adam = super::adam::Adam::default();
    let mut rng = Rng::new(cfg.seed, 22);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let (mut ws, mut x) = (Workspace::default(), Vec::new());
    let decay = if cfg.epochs > 1 {
        (cfg.lr_final / cfg.lr).powf(1.0 / (cfg.epochs - 1) as f32)
    } else {
        1.0
    };
    for epoch in 0..cfg.epochs {
        let lr = cfg.lr * decay.powi(epoch as i32);
        rng.shuffle(&mut order);
        let (mut total, mut n) = (0.0f32, 0usize);
        for chunk in order.chunks(cfg.batch) {
            let batch: Vec<&[u64]> = chunk.iter().map(|&i| rows[i]).collect();
            let y: Vec<u8> = chunk.iter().map(|&i| labels[i]).collect();
            super::conv::unpack(&batch, g.inputs, &mut x);
            g.forward(&x, chunk.len(), &mut ws);
            let (loss, g_out) = g.loss_and_gradients(&ws, &y, None);
            total += loss * chunk.len() as f32;
            n += chunk.len();
            g.backward(&x, &g_out, &mut ws);
            adam.step_params(vec![&mut g.mapping, &mut g.tables], lr);
        }
        epoch_done(epoch, total / n.max(1) as f32, g);
    }
}

/// `[l][a*][a]`: `s_l(a) * ALPHA * BETA^H`, `H` the Hamming distance of `a` and `a*` outside
/// bit `l`.
fn efd_weights(f: usize) -> Vec<f32> {
    let t = 1usize << f;
    let mut w = Vec::with_capacity(f * t * t);
    for l in 0..f {
        for a in 0..t {
            for e in 0..t {
                let s = if (e >> l) & 1 == 1 { 1.0 } else { -1.0 };
                let h = ((e ^ a) & !(1 << l)).count_ones() as i32;
                w.push(s * ALPHA * BETA.powi(h));
            }
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Semantics, Shape, Values};

    fn random_x(rng: &mut Rng, b: usize, p: usize) -> Vec<f32> {
        (0..b * p)
            .map(|_| if rng.next_u64() & 1 == 1 { 1.0 } else { -1.0 })
            .collect()
    }

    /// The exported layers compute, image by image, the group sums of the training graph.
    #[test]
    fn the_export_computes_the_graphs_group_sums() {
        let mut rng = Rng::new(5, 0);
        for f in [1, 3, 6] {
            let g = LutGraph::new(37, 12, f, 3, 1.0, 7 + f as u64);
            let x = random_x(&mut rng, 20, 37);
            let mut ws = Workspace::default();
            let sums = g.forward(&x, 20, &mut ws);
            let (lut, sum) = g.export();
            for i in 0..20 {
                let bits: Vec<bool> = x[i * 37..(i + 1) * 37].iter().map(|&v| v > 0.0).collect();
                let Values::Bits(out) = lut.by_definition(Shape::flat(37), &bits) else {
                    unreachable!()
                };
                let Values::Scores(s) = sum.by_definition(Shape::flat(12), &out) else {
                    unreachable!()
                };
                assert_eq!(s, &sums[i * 3..(i + 1) * 3], "f {f} image {i}");
            }
        }
    }

    /// With a teacher's soft targets: the loss is the mixed loss of the logits `sums / tau`
    /// (written out here on its own), and each neuron output's gradient its finite
    /// difference.
    #[test]
    fn distilled_gradients_match_finite_differences() {
        let mut rng = Rng::new(7, 0);
        let g = LutGraph::new(19, 9, 3, 3, 2.0, 4);
        let x = random_x(&mut rng, 4, 19);
        let labels = [2u8, 0, 1, 1];
        let probs = [
            0.2f32, 0.1, 0.7, 0.6, 0.3, 0.1, 0.3, 0.4, 0.3, 0.05, 0.9, 0.05,
        ];
        let (t, w) = (3.0f32, 0.4f32);
        let soft = super::super::distill::Soft {
            probs: &probs,
            temperature: t,
            weight: w,
        };
        let mut ws = Workspace::default();
        let sums = g.forward(&x, 4, &mut ws);
        let (loss, grads) = g.loss_and_gradients(&ws, &labels, Some(soft));
        let log_softmax = |z: &[f64]| -> Vec<f64> {
            let top = z.iter().cloned().fold(f64::MIN, f64::max);
            let lse = top + z.iter().map(|v| (v - top).exp()).sum::<f64>().ln();
            z.iter().map(|v| v - lse).collect()
        };
        let loss_of = |s: &[f64]| -> f64 {
            let (t, w) = (f64::from(t), f64::from(w));
            s.chunks(3)
                .enumerate()
                .map(|(i, row)| {
                    let z: Vec<f64> = row.iter().map(|v| v / 2.0).collect();
                    let hard = -log_softmax(&z)[labels[i] as usize];
                    let zt: Vec<f64> = z.iter().map(|v| v / t).collect();
                    let lp = log_softmax(&zt);
                    let kl: f64 = (0..3)
                        .map(|k| {
                            let q = f64::from(probs[i * 3 + k]);
                            q * (q.ln() - lp[k])
                        })
                        .sum();
                    (1.0 - w) * hard + w * t * t * kl
                })
                .sum::<f64>()
                / 4.0
        };
        let base: Vec<f64> = sums.iter().map(|&s| f64::from(s)).collect();
        assert!((loss_of(&base) - f64::from(loss)).abs() < 1e-4);
        for i in 0..4 {
            for j in 0..9 {
                let k = i * 3 + j / 3;
                let (mut up, mut down) = (base.clone(), base.clone());
                up[k] += 1e-3;
                down[k] -= 1e-3;
                let fd = (loss_of(&up) - loss_of(&down)) / 2e-3;
                let got = f64::from(grads[i * 9 + j]);
                assert!((fd - got).abs() < 1e-4, "image {i} neuron {j}: {fd} {got}");
            }
        }
    }

    /// The output gradients against central finite differences of the loss as a function of
    /// the (real-valued) group sums, and the table rows of the extended finite difference
    /// against its definition.
    #[test]
    fn gradients_match_finite_differences_and_the_definition() {
        let mut rng = Rng::new(6, 0);
        let mut g = LutGraph::new(23, 8, 4, 2, 2.5, 9);
        let x = random_x(&mut rng, 6, 23);
        let labels = [0u8, 1, 1, 0, 1, 0];
        let mut ws = Workspace::default();
        let sums = g.forward(&x, 6, &mut ws);
        let (loss, grads) = g.loss_and_gradients(&ws, &labels, None);
        let loss_of = |s: &[f32]| -> f32 {
            s.chunks(2)
                .zip(&labels)
                .map(|(z, &y)| {
                    let z: Vec<f32> = z.iter().map(|v| v / 2.5).collect();
                    let top = z[0].max(z[1]);
                    let lse = top + ((z[0] - top).exp() + (z[1] - top).exp()).ln();
                    lse - z[y as usize]
                })
                .sum::<f32>()
                / 6.0
        };
        let base: Vec<f32> = sums.iter().map(|&s| s as f32).collect();
        assert!((loss_of(&base) - loss).abs() < 1e-5);
        for i in 0..6 {
            for j in 0..8 {
                let k = i * 2 + j / 4;
                let (mut up, mut down) = (base.clone(), base.clone());
                up[k] += 1e-2;
                down[k] -= 1e-2;
                let fd = (loss_of(&up) - loss_of(&down)) / 2e-2;
                assert!((fd - grads[i * 8 + j]).abs() < 1e-3, "image {i} neuron {j}");
            }
        }
        g.backward(&x, &grads, &mut ws);
        for (j, &gj) in grads.iter().enumerate().take(8) {
            for l in 0..4 {
                let a = ws.addr[j] as usize;
                let want = gj * g.efd_by_definition(j, a, l);
                assert!((ws.g_in[j * 4 + l] - want).abs() < 1e-6);
            }
        }
        // The mapping gradient is the input gradients spread over the features they could read.
        let q = 3;
        for p in [0, 5, 22] {
            let want: f32 = (0..6).map(|i| ws.g_in[i * 32 + q] * x[i * 23 + p]).sum();
            assert!((g.mapping.grad[q * 23 + p] - want).abs() < 1e-6);
        }
    }
}
