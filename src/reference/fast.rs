//! A fast executor for throughput: the same integer semantics as [`Executor`](super::Executor),
//! bit for bit, with the first layer's weights re-laid for the input path.
//!
//! - The first layer's weight columns are permuted from the model's pixel-major feature order
//!   (feature `p * K + j`) to plane-major order (plane `j` of every pixel, then plane `j + 1`),
//!   each plane padded to whole words. XNOR-popcount is a sum over features, so the same
//!   permutation on weights and inputs changes nothing; padding bits are zero on both sides and
//!   always agree, so they are left out of the count of agreements.
//! - In plane-major order slicing needs no interleaving: eight pixels become eight bits of one
//!   plane with a shift, a mask and one multiplication.
//! - All rows of a layer sit in one contiguous array; activations and counts live in reusable
//!   buffers; the kernels are compiled for POPCNT and AVX2 as well as for the baseline CPU,
//!   chosen at run time.

use super::fast_layers::{Layers, LayersScratch};
use crate::bitslice::words_for;
use crate::model::{BinaryMatrix, IntModel};

/// A layer: `rows` rows of `words` words each, back to back; thresholds for hidden layers.
#[derive(Clone, Debug)]
pub(super) struct Layer {
    pub rows: usize,
    pub words: usize,
    /// Real (not padding) inputs: agreements are `inputs - popcount(xor)`.
    pub inputs: u32,
    pub weights: Vec<u64>,
    pub thresholds: Vec<u32>,
}

impl Layer {
    pub(super) fn from_matrix(m: &BinaryMatrix, thresholds: &[u32]) -> Layer {
        Layer {
            rows: m.rows(),
            words: m.words_per_row(),
            inputs: m.cols() as u32,
            weights: m.as_words().to_vec(),
            thresholds: thresholds.to_vec(),
        }
    }
}

/// A model prepared for fast execution: multilayer perceptrons by the engine of this module,
/// models with convolutions or pooling by [`super::fast_layers`].
#[derive(Clone, Debug)]
pub struct FastModel(Engine);

#[derive(Clone, Debug)]
enum Engine {
    Mlp(Mlp),
    Layers(Box<Layers>),
}

/// A multilayer perceptron prepared for fast execution.
#[derive(Clone, Debug)]
struct Mlp {
    pixels: usize,
    /// Kept planes, in the model's order.
    planes: Vec<u8>,
    /// Words per plane in the first layer's input (pixels rounded up to whole words).
    plane_words: usize,
    layers: Vec<Layer>,
    output: Layer,
    /// The bit-sliced batch kernel, when the CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    sliced: Option<super::sliced::SlicedModel>,
}

/// Reusable buffers of [`FastModel::classify_into`].
#[derive(Clone, Debug, Default)]
pub struct FastScratch {
    layers: LayersScratch,
    acts: Vec<u64>,
    next: Vec<u64>,
    scores: Vec<u32>,
    #[cfg(target_arch = "x86_64")]
    sliced: super::sliced::SlicedScratch,
}

/// Batches of at least this many images go through the bit-sliced kernel.
const SLICED_MIN_BATCH: usize = 64;

/// Plane `p` of eight pixels (`x` holds them little-endian), as eight bits, pixel `i` in bit `i`.
#[inline(always)]
pub(super) fn plane_byte(x: u64, p: u32) -> u64 {
    // Bit 0 of every byte is the plane; the multiplication gathers byte i's bit into bit
    // 56 + i (the partial products land on distinct bit positions, so nothing carries).
    (((x >> p) & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

impl FastModel {
    /// Prepares `m` (a valid model, of any layer kinds).
    pub fn new(m: &IntModel) -> FastModel {
        FastModel(match Mlp::new(m) {
            Some(mlp) => Engine::Mlp(mlp),
            None => Engine::Layers(Box::new(Layers::new(m))),
        })
    }

    /// Which engine runs the model: `fast` (perceptrons) or `fast-layers` (any other).
    pub fn name(&self) -> &'static str {
        match &self.0 {
            Engine::Mlp(_) => "fast",
            Engine::Layers(_) => "fast-layers",
        }
    }

    /// Bytes per image.
    pub fn pixels(&self) -> usize {
        match &self.0 {
            Engine::Mlp(m) => m.pixels,
            Engine::Layers(l) => l.pixels(),
        }
    }

    /// Classes of the images in `pixels` (back to back) into `out`.
    pub fn classify_into(&self, pixels: &[u8], s: &mut FastScratch, out: &mut [usize]) {
        match &self.0 {
            Engine::Mlp(m) => m.classify_into(pixels, s, out),
            Engine::Layers(l) => l.classify_into(pixels, &mut s.layers, out),
        }
    }
}

impl Mlp {
    /// Prepares `m`, or `None` when it is not a multilayer perceptron.
    fn new(m: &IntModel) -> Option<Mlp> {
        let (hidden, output) = m.as_mlp()?;
        let output = &output.weights;
        let pixels = m.input.pixels();
        let k = m.planes.len();
        let plane_words = words_for(pixels);
        let (first_w, first_t): (&BinaryMatrix, &[u32]) = match hidden.first() {
            Some(l) => (&l.weights, &l.thresholds),
            None => (output, &[]),
        };
        let rows = first_w.rows();
        let mut weights = vec![0u64; rows * k * plane_words];
        for r in 0..rows {
            let row = &mut weights[r * k * plane_words..(r + 1) * k * plane_words];
            for p in 0..pixels {
                for j in 0..k {
                    if first_w.get(r, p * k + j) {
                        let bit = j * plane_words * 64 + p;
                        row[bit / 64] |= 1 << (bit % 64);
                    }
                }
            }
        }
        let first = Layer {
            rows,
            words: k * plane_words,
            inputs: (pixels * k) as u32,
            weights,
            thresholds: first_t.to_vec(),
        };
        let (layers, output) = if hidden.is_empty() {
            (Vec::new(), first)
        } else {
            let mut layers = vec![first];
            layers.extend(
                hidden[1..]
                    .iter()
                    .map(|l| Layer::from_matrix(&l.weights, &l.thresholds)),
            );
            (layers, Layer::from_matrix(output, &[]))
        };
        Some(Mlp {
            pixels,
            planes: m.planes.planes().to_vec(),
            plane_words,
            layers,
            output,
            #[cfg(target_arch = "x86_64")]
            sliced: super::sliced::SlicedModel::available()
                .then(|| super::sliced::SlicedModel::new(m))
                .flatten(),
        })
    }

    fn classify_into(&self, pixels: &[u8], s: &mut FastScratch, out: &mut [usize]) {
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(sliced) = &self.sliced {
                if pixels.len() >= SLICED_MIN_BATCH * self.pixels {
                    let block = super::sliced::LANES * self.pixels;
                    for (px, o) in pixels
                        .chunks(block)
                        .zip(out.chunks_mut(super::sliced::LANES))
                    {
                        sliced.classify_block(px, &mut s.sliced, o);
                    }
                    return;
                }
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("popcnt")
            {
                // SAFETY: the CPU has AVX2 and POPCNT, checked just above.
                unsafe { self.classify_avx2(pixels, s, out) };
                return;
            }
            if std::arch::is_x86_feature_detected!("popcnt") {
                // SAFETY: the CPU has POPCNT, checked just above.
                unsafe { self.classify_popcnt(pixels, s, out) };
                return;
            }
        }
        self.classify_generic(pixels, s, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt,bmi2")]
    unsafe fn classify_avx2(&self, pixels: &[u8], s: &mut FastScratch, out: &mut [usize]) {
        self.classify_generic(pixels, s, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn classify_popcnt(&self, pixels: &[u8], s: &mut FastScratch, out: &mut [usize]) {
        self.classify_generic(pixels, s, out)
    }

    #[inline(always)]
    fn classify_generic(&self, pixels: &[u8], s: &mut FastScratch, out: &mut [usize]) {
        let input_words = self.planes.len() * self.plane_words;
        for (px, o) in pixels.chunks_exact(self.pixels).zip(out.iter_mut()) {
            s.acts.clear();
            s.acts.resize(input_words, 0);
            self.slice(px, &mut s.acts);
            for l in &self.layers {
                s.next.clear();
                s.next.resize(words_for(l.rows), 0);
                threshold_layer(l, &s.acts, &mut s.next, 0);
                std::mem::swap(&mut s.acts, &mut s.next);
            }
            s.scores.clear();
            s.scores.resize(self.output.rows, 0);
            count_layer(&self.output, &s.acts, &mut s.scores);
            *o = super::argmax(&s.scores);
        }
    }

    /// Plane-major slicing of one image into `out` (zeroed, `K * plane_words` words).
    #[inline(always)]
    fn slice(&self, px: &[u8], out: &mut [u64]) {
        let full = px.len() / 8;
        for (j, &p) in self.planes.iter().enumerate() {
            let plane = &mut out[j * self.plane_words..(j + 1) * self.plane_words];
            let p = u32::from(p);
            for (c, chunk) in px.chunks_exact(8).enumerate() {
                let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
                plane[c / 8] |= plane_byte(x, p) << (8 * (c % 8));
            }
            for (i, &v) in px.iter().enumerate().skip(full * 8) {
                plane[i / 64] |= u64::from((v >> p) & 1) << (i % 64);
            }
        }
    }
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
pub(super) fn threshold_layer(l: &Layer, x: &[u64], out: &mut [u64], base: usize) {
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
pub(super) fn count_layer(l: &Layer, x: &[u64], out: &mut [u32]) {
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
    use crate::reference::tests::random_model;
    use crate::reference::Executor;
    use crate::util::rng::Rng;

    #[test]
    fn plane_byte_gathers_one_bit_per_pixel() {
        let px = [0x80u8, 0x7f, 0xff, 0x00, 0x81, 0x01, 0xfe, 0x40];
        let x = u64::from_le_bytes(px);
        for p in 0..8 {
            let want: u64 = (0..8).map(|i| u64::from((px[i] >> p) & 1) << i).sum();
            assert_eq!(plane_byte(x, p), want, "plane {p}");
        }
    }

    #[test]
    fn fast_executor_matches_the_reference_bit_for_bit() {
        let mut rng = Rng::new(17, 2);
        // Pixel counts that are and are not multiples of 8 and 64; planes in several orders;
        // no hidden layer, one, several.
        for (pixels, planes, hidden) in [
            (49usize, vec![7u8], vec![33usize, 17]),
            (64, vec![7, 6, 5, 4, 3, 2, 1, 0], vec![70]),
            (131, vec![7, 3, 0], vec![65, 64, 9]),
            (20, vec![5, 2], vec![]),
        ] {
            let m = random_model(&mut rng, pixels, &planes, &hidden, 10);
            let fast = FastModel::new(&m);
            let images = crate::data::Images {
                height: pixels,
                width: 1,
                channels: 1,
                pixels: (0..pixels * 50).map(|_| rng.below(256) as u8).collect(),
            };
            let sliced = crate::bitslice::slice(&images, &m.planes);
            let exec = Executor::new(&m);
            let mut out = vec![0; 50];
            fast.classify_into(&images.pixels, &mut FastScratch::default(), &mut out);
            for (i, &o) in out.iter().enumerate() {
                assert_eq!(
                    o,
                    exec.predict(sliced.row(i)).class,
                    "image {i}, {planes:?}"
                );
            }
        }
    }
}
