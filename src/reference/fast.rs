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
use super::rows::{count_layer, plane_byte, threshold_layer, Layer};
use crate::bitslice::words_for;
use crate::model::{BinaryMatrix, IntModel};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::tests::random_model;
    use crate::reference::Executor;
    use crate::util::rng::Rng;

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
