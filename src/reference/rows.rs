//! Binary weight rows packed as words, and the XNOR-popcount kernels every fast engine runs
//! them with: a row's agreements with a packed input, a layer's thresholded outputs, a layer's
//! counts; and the gathering of one bit plane of eight pixels into a byte.
//!
//! Owns the word-level arithmetic. Never: knows about models, layer kinds or images.

use crate::model::BinaryMatrix;

/// A layer: `rows` rows of `words` words each, back to back; thresholds for hidden layers.
#[derive(Clone, Debug)]
pub struct Layer {
    /// Rows (neurons).
    pub rows: usize,
    /// Words per row.
    pub words: usize,
    /// Real (not padding) inputs: agreements are `inputs - popcount(xor)`.
    pub inputs: u32,
    /// The rows, back to back.
    pub weights: Vec<u64>,
    /// One threshold per row (empty for an output layer).
    pub thresholds: Vec<u32>,
}

impl Layer {
    /// The rows of `m`, with `thresholds`.
    pub fn from_matrix(m: &BinaryMatrix, thresholds: &[u32]) -> Layer {
        Layer {
            rows: m.rows(),
            words: m.words_per_row(),
            inputs: m.cols() as u32,
            weights: m.as_words().to_vec(),
            thresholds: thresholds.to_vec(),
        }
    }
}

/// Plane `p` of eight pixels (`x` holds them little-endian), as eight bits, pixel `i` in bit `i`.
#[inline(always)]
pub fn plane_byte(x: u64, p: u32) -> u64 {
    // Bit 0 of every byte is the plane; the multiplication gathers byte i's bit into bit
    // 56 + i (the partial products land on distinct bit positions, so nothing carries).
    (((x >> p) & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Disagreements of one row with the input: four independent sums, so that the additions
/// do not form one long dependency chain.
#[inline(always)]
fn mismatches(row: &[u64], x: &[u64]) -> u32 {
    let mut acc = [0u32; 4];
    let (rc, rt) = row.split_at(row.len() - row.len() % 4);
    let (xc, xt) = x[..row.len()].split_at(rc.len());
    for (w, a) in rc.chunks_exact(4).zip(xc.chunks_exact(4)) {
        for k in 0..4 {
            acc[k] += (w[k] ^ a[k]).count_ones();
        }
    }
    for (k, (w, a)) in rt.iter().zip(xt).enumerate() {
        acc[k] += (w ^ a).count_ones();
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// [`mismatches`] for rows of exactly `N` words, fully unrolled.
#[inline(always)]
fn mismatches_n<const N: usize>(row: &[u64], x: &[u64]) -> u32 {
    let (row, x): (&[u64; N], &[u64; N]) = (
        row.try_into().expect("row of N words"),
        x[..N].try_into().expect("input of N words"),
    );
    let mut acc = [0u32; 4];
    for k in 0..N {
        acc[k % 4] += (row[k] ^ x[k]).count_ones();
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// Calls `$run($($arg,)* kernel)` with the mismatch kernel suited to rows of `$words` words
/// (each kernel a distinct function item, so every call is monomorphised and inlined).
macro_rules! with_kernel {
    ($words:expr, $run:ident($($arg:expr),*)) => {
        match $words {
            1 => $run($($arg,)* mismatches_n::<1>),
            2 => $run($($arg,)* mismatches_n::<2>),
            3 => $run($($arg,)* mismatches_n::<3>),
            4 => $run($($arg,)* mismatches_n::<4>),
            5 => $run($($arg,)* mismatches_n::<5>),
            6 => $run($($arg,)* mismatches_n::<6>),
            7 => $run($($arg,)* mismatches_n::<7>),
            8 => $run($($arg,)* mismatches_n::<8>),
            13 => $run($($arg,)* mismatches_n::<13>),
            16 => $run($($arg,)* mismatches_n::<16>),
            _ => $run($($arg,)* mismatches),
        }
    };
}

/// Row `r` of `l` against `x` sets bit `base + r` of `out` when it reaches its threshold.
#[inline(always)]
pub fn threshold_layer(l: &Layer, x: &[u64], out: &mut [u64], base: usize) {
    #[inline(always)]
    fn run(l: &Layer, x: &[u64], out: &mut [u64], base: usize, f: impl Fn(&[u64], &[u64]) -> u32) {
        for (r, (row, &t)) in l
            .weights
            .chunks_exact(l.words)
            .zip(&l.thresholds)
            .enumerate()
        {
            let agree = l.inputs - f(row, x);
            let i = base + r;
            out[i / 64] |= u64::from(agree >= t) << (i % 64);
        }
    }
    with_kernel!(l.words, run(l, x, out, base))
}

/// The agreements of every row of `l` with `x`, into `out`.
#[inline(always)]
pub fn count_layer(l: &Layer, x: &[u64], out: &mut [u32]) {
    #[inline(always)]
    fn run(l: &Layer, x: &[u64], out: &mut [u32], f: impl Fn(&[u64], &[u64]) -> u32) {
        for (row, o) in l.weights.chunks_exact(l.words).zip(out.iter_mut()) {
            *o = l.inputs - f(row, x);
        }
    }
    with_kernel!(l.words, run(l, x, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_byte_gathers_one_bit_per_pixel() {
        let px = [0x80u8, 0x7f, 0xff, 0x00, 0x81, 0x01, 0xfe, 0x40];
        let x = u64::from_le_bytes(px);
        for p in 0..8 {
            let want: u64 = (0..8).map(|i| u64::from((px[i] >> p) & 1) << i).sum();
            assert_eq!(plane_byte(x, p), want, "plane {p}");
        }
    }
}
