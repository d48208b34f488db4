//! The fast executor for models with convolutions and pooling: the same integer semantics as
//! [`Executor`](super::Executor), bit for bit, with every layer's work laid out once for
//! word-wide XOR and popcount.
//!
//! - Values between layers stay in the model's layout (positions row-major, channels last,
//!   one bit per value). Before a convolution its input is copied once into a bit array with
//!   `pad` positions of zero bits (the value `-1`) around the image, so the `k` positions of
//!   window row `dy` are one contiguous run of `k * C` bits at any output position, padding
//!   included: no border cases remain in the inner loop.
//! - The weights of each output channel are laid out the same way, one run per window row,
//!   each run padded to whole words with zero bits on both sides (so padding bits always
//!   agree and are left out of the count): the mismatches of a window are one XOR-popcount of
//!   `k * ceil(k * C / 64)` words, the kernel [`super::fast`] uses for dense rows.
//! - Max-pool ORs the `C`-bit runs of the positions in each window; dense layers and the
//!   output layer are the dense rows of [`super::fast`].

use super::fast::{count_layer, threshold_layer, Layer as Rows};
use crate::bitslice::{words_for, Sliced, Slicer};
use crate::layers::{bits_at, or_run, Layer, Shape};
use crate::model::IntModel;

/// One layer, prepared.
#[derive(Clone, Debug)]
enum Step {
    Conv {
        input: Shape,
        output: Shape,
        kernel: usize,
        pad: usize,
        /// Words of one window row (`k * C` bits).
        run_words: usize,
        /// Per output channel, `kernel * run_words` words.
        weights: Rows,
    },
    Pool {
        input: Shape,
        output: Shape,
        size: usize,
    },
    Dense(Rows),
    Scores(Rows),
}

/// A model with any layer kinds, prepared for fast execution.
#[derive(Clone, Debug)]
pub struct Layers {
    pixels: usize,
    slicer: Slicer,
    input_words: usize,
    steps: Vec<Step>,
}

/// Reusable buffers of [`Layers::classify_into`].
#[derive(Clone, Debug, Default)]
pub struct LayersScratch {
    acts: Vec<u64>,
    next: Vec<u64>,
    padded: Vec<u64>,
    window: Vec<u64>,
    scores: Vec<u32>,
}

/// The bits `[from, from + n)` of `src` into `dst` (zeroed), in whole words.
fn copy_run(dst: &mut [u64], src: &[u64], from: usize, n: usize) {
    for (i, d) in dst.iter_mut().enumerate().take(n.div_ceil(64)) {
        let at = 64 * i;
        *d = bits_at(src, from + at, (n - at).min(64));
    }
}

impl Layers {
    /// Prepares `m` (a valid model).
    pub fn new(m: &IntModel) -> Layers {
        let shapes = m.shapes();
        let steps = m
            .layers
            .iter()
            .zip(shapes.windows(2))
            .map(|(l, s)| prepare(l, s[0], s[1]))
            .collect();
        Layers {
            pixels: m.input.pixels(),
            slicer: Slicer::new(&m.planes),
            input_words: words_for(m.input_values().len()),
            steps,
        }
    }

    /// Bytes of one image.
    pub fn pixels(&self) -> usize {
        self.pixels
    }

    /// Classes of the images in `pixels` (back to back) into `out`.
    pub fn classify_into(&self, pixels: &[u8], s: &mut LayersScratch, out: &mut [usize]) {
        for (px, o) in pixels.chunks_exact(self.pixels).zip(out.iter_mut()) {
            s.acts.clear();
            s.acts.resize(self.input_words, 0);
            self.slicer.slice_into(px, &mut s.acts);
            *o = self.run_dispatch(s);
        }
    }

    /// Classes of already sliced images (the packed feature rows of `data`), in parallel.
    pub fn classify_sliced(&self, data: &Sliced) -> Vec<usize> {
        use rayon::prelude::*;
        (0..data.count())
            .into_par_iter()
            .map_init(LayersScratch::default, |s, i| {
                s.acts.clear();
                s.acts.extend_from_slice(data.row(i));
                self.run_dispatch(s)
            })
            .collect()
    }

    /// [`Layers::run`], compiled for the best instruction set the CPU has (chosen at run time;
    /// the check is a cached flag, negligible next to an image).
    fn run_dispatch(&self, s: &mut LayersScratch) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("popcnt")
            {
                // SAFETY: the CPU has AVX2 and POPCNT, checked just above.
                return unsafe { self.run_avx2(s) };
            }
            if std::arch::is_x86_feature_detected!("popcnt") {
                // SAFETY: the CPU has POPCNT, checked just above.
                return unsafe { self.run_popcnt(s) };
            }
        }
        self.run(s)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt,bmi2")]
    unsafe fn run_avx2(&self, s: &mut LayersScratch) -> usize {
        self.run(s)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn run_popcnt(&self, s: &mut LayersScratch) -> usize {
        self.run(s)
    }

    /// The class of the image whose features are in `s.acts`.
    #[inline(always)]
    fn run(&self, s: &mut LayersScratch) -> usize {
        for step in &self.steps {
            s.next.clear();
            match step {
                Step::Conv {
                    input,
                    output,
                    kernel,
                    pad,
                    run_words,
                    weights,
                } => conv(
                    (*input, *output, *kernel, *pad, *run_words),
                    weights,
                    &s.acts,
                    &mut s.padded,
                    &mut s.window,
                    &mut s.next,
                ),
                Step::Pool {
                    input,
                    output,
                    size,
                } => pool(*input, *output, *size, &s.acts, &mut s.next),
                Step::Dense(rows) => {
                    s.next.resize(words_for(rows.rows), 0);
                    threshold_layer(rows, &s.acts, &mut s.next, 0);
                }
                Step::Scores(rows) => {
                    s.scores.clear();
                    s.scores.resize(rows.rows, 0);
                    count_layer(rows, &s.acts, &mut s.scores);
                    return super::argmax(&s.scores);
                }
            }
            std::mem::swap(&mut s.acts, &mut s.next);
        }
        unreachable!("a valid model ends with its output layer")
    }
}

fn prepare(l: &Layer, input: Shape, output: Shape) -> Step {
    match l {
        Layer::Conv(c) => {
            let (k, ch) = (c.kernel, input.channels);
            let run = k * ch;
            let run_words = words_for(run);
            let rows = c.out_channels();
            let mut words = vec![0u64; rows * k * run_words];
            let packed = c.weights.as_words();
            let per_row = c.weights.words_per_row();
            for r in 0..rows {
                let row = &packed[r * per_row..(r + 1) * per_row];
                for dy in 0..k {
                    let at = (r * k + dy) * run_words;
                    copy_run(&mut words[at..at + run_words], row, dy * run, run);
                }
            }
            Step::Conv {
                input,
                output,
                kernel: k,
                pad: c.pad(),
                run_words,
                weights: Rows {
                    rows,
                    words: k * run_words,
                    inputs: (k * run) as u32,
                    weights: words,
                    thresholds: c.thresholds.clone(),
                },
            }
        }
        Layer::MaxPool(p) => Step::Pool {
            input,
            output,
            size: p.size,
        },
        Layer::Dense(d) => Step::Dense(Rows::from_matrix(&d.weights, &d.thresholds)),
        Layer::Scores(s) => Step::Scores(Rows::from_matrix(&s.weights, &[])),
    }
}

/// A convolution of `x` into `out` (empty on entry): the shapes, kernel, padding and words per
/// window row in `geometry`.
#[inline(always)]
fn conv(
    geometry: (Shape, Shape, usize, usize, usize),
    w: &Rows,
    x: &[u64],
    padded: &mut Vec<u64>,
    window: &mut Vec<u64>,
    out: &mut Vec<u64>,
) {
    let (input, output, k, pad, run_words) = geometry;
    let c = input.channels;
    let (pw, row_bits) = (input.width + 2 * pad, input.width * c);
    padded.clear();
    padded.resize(words_for((input.height + 2 * pad) * pw * c), 0);
    for y in 0..input.height {
        or_run(
            padded,
            ((y + pad) * pw + pad) * c,
            x,
            y * row_bits,
            row_bits,
        );
    }
    let m = w.rows;
    out.resize(words_for(output.len()), 0);
    window.clear();
    window.resize(k * run_words, 0);
    for y in 0..output.height {
        for xx in 0..output.width {
            for dy in 0..k {
                let at = dy * run_words;
                copy_run(
                    &mut window[at..at + run_words],
                    padded,
                    ((y + dy) * pw + xx) * c,
                    k * c,
                );
            }
            threshold_layer(w, window, out, (y * output.width + xx) * m);
        }
    }
}

/// Max-pool of `x` into `out` (empty on entry): each output position ORs the `C`-bit runs of
/// the positions of its window (for ±1 values, OR of the bits is the maximum).
#[inline(always)]
fn pool(input: Shape, output: Shape, p: usize, x: &[u64], out: &mut Vec<u64>) {
    let c = input.channels;
    out.resize(words_for(output.len()), 0);
    for y in 0..output.height {
        for xx in 0..output.width {
            for dy in 0..p {
                for dx in 0..p {
                    let from = ((y * p + dy) * input.width + xx * p + dx) * c;
                    or_run(out, (y * output.width + xx) * c, x, from, c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Executor;
    use crate::util::rng::Rng;

    /// The fast executor classifies random conv models (odd sizes, both paddings, channel
    /// counts that are not multiples of 8 or 64, window rows longer than a word) exactly as
    /// the reference executor does.
    #[test]
    fn fast_layers_match_the_reference() {
        let mut rng = Rng::new(23, 1);
        for (h, w, ch, planes, spec) in [
            (
                9usize,
                7usize,
                1usize,
                vec![7u8, 3],
                &["c5k3s", "p2", "c3k3v", "d6"][..],
            ),
            (
                8,
                8,
                3,
                vec![7, 6, 5, 4, 3, 2, 1, 0],
                &["c70k3s", "p2", "c9k1s", "p2"],
            ),
            (11, 5, 1, vec![6, 1, 0], &["c13k5s", "c4k2v", "p3"]),
            (6, 6, 2, vec![7], &["d17", "d5"]),
        ] {
            let input = crate::model::InputShape {
                height: h,
                width: w,
                channels: ch,
            };
            let m = crate::layers::tests::random_model(&mut rng, input, &planes, spec, 7);
            let fast = Layers::new(&m);
            let n = 40;
            let images = crate::data::Images {
                height: h,
                width: w,
                channels: ch,
                pixels: (0..h * w * ch * n).map(|_| rng.below(256) as u8).collect(),
            };
            let sliced = crate::bitslice::slice(&images, &m.planes);
            let exec = Executor::new(&m);
            let mut out = vec![0; n];
            fast.classify_into(&images.pixels, &mut LayersScratch::default(), &mut out);
            for (i, &o) in out.iter().enumerate() {
                assert_eq!(o, exec.predict(sliced.row(i)).class, "image {i}, {spec:?}");
            }
            assert_eq!(fast.classify_sliced(&sliced), out, "{spec:?}");
        }
    }
}
