//! The first layer's training kernels, specialised for ±1 bit-plane inputs.
//!
//! With `x = 2 * bit - 1`, a dot product is `2 * (sum over set bits) - (sum over all)`. MNIST-like
//! bit planes are mostly zero, so summing weight rows over the set bits of each image (or over its
//! clear bits, when those are fewer) is several times cheaper than a dense GEMM, in the forward
//! pass and for the weight gradient alike. No input gradient is needed: the inputs are data.
//!
//! Weights are stored input-major in column blocks of [`BLOCK`] neurons
//! (`[block][input][neuron in block]`), so one block is contiguous: the backward pass gives
//! each block to one thread, which makes the result independent of the thread count.

use rayon::prelude::*;

/// Neurons per column block.
pub const BLOCK: usize = 64;

/// Layout of a first-layer parameter matrix (`inputs x outputs`, column-blocked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Inputs (features).
    pub inputs: usize,
    /// Outputs (neurons).
    pub outputs: usize,
}

impl Layout {
    /// Number of column blocks.
    pub fn blocks(&self) -> usize {
        self.outputs.div_ceil(BLOCK)
    }

    /// First neuron and width of block `k`.
    pub fn block(&self, k: usize) -> (usize, usize) {
        let c0 = k * BLOCK;
        (c0, BLOCK.min(self.outputs - c0))
    }

    /// Index of element `(input i, neuron j)`.
    pub fn index(&self, i: usize, j: usize) -> usize {
        let (c0, w) = self.block(j / BLOCK);
        c0 * self.inputs + i * w + (j - c0)
    }

    /// Total elements.
    pub fn len(&self) -> usize {
        self.inputs * self.outputs
    }

    /// True for an empty layout.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The active inputs of one image: the set bits, or the clear bits when those are fewer.
#[derive(Clone, Debug, Default)]
pub struct ActiveBits {
    /// Feature indices.
    pub index: Vec<u32>,
    /// `+1` when `index` lists set bits, `-1` when it lists clear bits.
    pub sign: f32,
}

impl ActiveBits {
    /// Fills from a packed feature row of `features` bits.
    pub fn fill(&mut self, row: &[u64], features: usize) {
        let ones: usize = row.iter().map(|w| w.count_ones() as usize).sum();
        self.index.clear();
        let complement = 2 * ones > features;
        self.sign = if complement { -1.0 } else { 1.0 };
        for (wi, &word) in row.iter().enumerate() {
            let mut bits = if complement {
                !word & crate::model::valid_mask(features, wi)
            } else {
                word
            };
            while bits != 0 {
                self.index.push((wi * 64) as u32 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
    }
}

/// Per-neuron sums of the effective weights over all inputs: `colsum[j] = sum_i v(w[i][j])`.
pub fn column_sums(
    layout: Layout,
    w: &[f32],
    value: impl Fn(f32) -> f32 + Sync,
    colsum: &mut [f32],
) {
    colsum.fill(0.0);
    for k in 0..layout.blocks() {
        let (c0, bw) = layout.block(k);
        let block = &w[c0 * layout.inputs..(c0 + bw) * layout.inputs];
        let out = &mut colsum[c0..c0 + bw];
        for row in block.chunks_exact(bw) {
            for (o, &x) in out.iter_mut().zip(row) {
                *o += value(x);
            }
        }
    }
}

/// Forward: `z[b][j] = sum_i x[b][i] * v(w[i][j])` for every image of the batch, with
/// `colsum` from [`column_sums`]. Parallel over images.
pub fn forward(
    layout: Layout,
    w: &[f32],
    value: impl Fn(f32) -> f32 + Sync,
    colsum: &[f32],
    batch: &[ActiveBits],
    z: &mut [f32],
) {
    let n = layout.outputs;
    z.par_chunks_mut(n).zip(batch).for_each(|(zb, bits)| {
        zb.fill(0.0);
        for k in 0..layout.blocks() {
            let (c0, bw) = layout.block(k);
            let block = &w[c0 * layout.inputs..(c0 + bw) * layout.inputs];
            let out = &mut zb[c0..c0 + bw];
            for &i in &bits.index {
                let row = &block[i as usize * bw..(i as usize + 1) * bw];
                for (o, &x) in out.iter_mut().zip(row) {
                    *o += value(x);
                }
            }
        }
        // set bits:   z = 2 * sum_set - colsum;   clear bits: z = colsum - 2 * sum_clear
        let s = bits.sign;
        for (o, &c) in zb.iter_mut().zip(colsum) {
            *o = s * (2.0 * *o - c);
        }
    });
}

/// Backward: accumulates into `acc` so that the weight gradient is
/// `grad[i][j] = 2 * acc[i][j] - offset[j]`, where `offset[j] = sum_b sign_b * dz[b][j]` is
/// written here too. `acc` must be zero on entry. Parallel over column blocks.
pub fn backward(
    layout: Layout,
    batch: &[ActiveBits],
    dz: &[f32],
    acc: &mut [f32],
    offset: &mut [f32],
) {
    let n = layout.outputs;
    offset.fill(0.0);
    for (b, bits) in batch.iter().enumerate() {
        for (o, &d) in offset.iter_mut().zip(&dz[b * n..(b + 1) * n]) {
            *o += bits.sign * d;
        }
    }
    let mut blocks: Vec<&mut [f32]> = Vec::with_capacity(layout.blocks());
    let mut rest = acc;
    for k in 0..layout.blocks() {
        let (_, bw) = layout.block(k);
        let (head, tail) = rest.split_at_mut(bw * layout.inputs);
        blocks.push(head);
        rest = tail;
    }
    blocks.into_par_iter().enumerate().for_each(|(k, block)| {
        let (c0, bw) = layout.block(k);
        for (b, bits) in batch.iter().enumerate() {
            let d = &dz[b * n + c0..b * n + c0 + bw];
            if bits.sign > 0.0 {
                for &i in &bits.index {
                    let row = &mut block[i as usize * bw..(i as usize + 1) * bw];
                    for (a, &x) in row.iter_mut().zip(d) {
                        *a += x;
                    }
                }
            } else {
                for &i in &bits.index {
                    let row = &mut block[i as usize * bw..(i as usize + 1) * bw];
                    for (a, &x) in row.iter_mut().zip(d) {
                        *a -= x;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::util::rng::Rng;

    /// `n` random packed rows of `features` bits with about `density` ones, and their active
    /// bits.
    pub(crate) fn random_batch(
        features: usize,
        n: usize,
        density: f32,
        rng: &mut Rng,
    ) -> (Vec<ActiveBits>, Vec<Vec<u64>>) {
        let rows: Vec<Vec<u64>> = (0..n)
            .map(|_| {
                let mut r = vec![0u64; features.div_ceil(64)];
                for f in 0..features {
                    if rng.next_f32() < density {
                        r[f / 64] |= 1 << (f % 64);
                    }
                }
                r
            })
            .collect();
        let bits = rows
            .iter()
            .map(|r| {
                let mut a = ActiveBits::default();
                a.fill(r, features);
                a
            })
            .collect();
        (bits, rows)
    }

    /// Dense yardstick: x in ±1 from the packed rows.
    fn dense_x(rows: &[Vec<u64>], features: usize) -> Vec<Vec<f32>> {
        rows.iter()
            .map(|r| {
                (0..features)
                    .map(|f| {
                        if crate::bitslice::get(r, f) {
                            1.0
                        } else {
                            -1.0
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn forward_and_backward_match_dense_loops() {
        let mut rng = Rng::new(5, 0);
        for (features, outputs, density) in [(70, 3, 0.2), (130, 100, 0.7), (64, 64, 0.5)] {
            let layout = Layout {
                inputs: features,
                outputs,
            };
            let w: Vec<f32> = (0..layout.len()).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let (batch, rows) = random_batch(features, 5, density, &mut rng);
            let x = dense_x(&rows, features);
            let mut colsum = vec![0.0; outputs];
            column_sums(layout, &w, |v| v, &mut colsum);
            let mut z = vec![0.0; 5 * outputs];
            forward(layout, &w, |v| v, &colsum, &batch, &mut z);
            for b in 0..5 {
                for j in 0..outputs {
                    let want: f32 = (0..features).map(|i| x[b][i] * w[layout.index(i, j)]).sum();
                    assert!((z[b * outputs + j] - want).abs() < 1e-3, "z[{b}][{j}]");
                }
            }
            let dz: Vec<f32> = (0..5 * outputs).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let mut acc = vec![0.0; layout.len()];
            let mut offset = vec![0.0; outputs];
            backward(layout, &batch, &dz, &mut acc, &mut offset);
            for i in 0..features {
                for j in 0..outputs {
                    let want: f32 = (0..5).map(|b| x[b][i] * dz[b * outputs + j]).sum();
                    let got = 2.0 * acc[layout.index(i, j)] - offset[j];
                    assert!((got - want).abs() < 1e-4, "grad[{i}][{j}] {got} vs {want}");
                }
            }
        }
    }
}
