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
//!   `k * ceil(k * C / 64)` words, the kernel [`super::rows`] runs dense rows with.
//! - Max-pool ORs the `C`-bit runs of the positions in each window; dense layers and the
//!   output layer are the dense rows of [`super::rows`].

use super::rows::{count_layer, threshold_layer, Layer as Rows};
use crate::bitslice::{words_for, Sliced, Slicer};
use crate::layers::{bits_at, conv_output, or_run, pad_for, Layer, Padding, Shape};
use crate::model::{BinaryMatrix, IntModel};

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
    /// A kind without a step of its own here (logic-mapped layers: a table lookup per neuron
    /// is already as fast as the executor makes it), run by its reference execution.
    Reference {
        layer: Layer,
        input: Shape,
    },
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
                Step::Reference { layer, input } => {
                    let l = layer.semantics();
                    l.execute(*input, &s.acts, &mut s.scores, &mut s.next);
                    if l.produces() == crate::layers::Produces::Scores {
                        return super::argmax(&s.scores);
                    }
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
            let (run_words, weights) = window_rows(&c.weights, c.kernel, input.channels);
            Step::Conv {
                input,
                output,
                kernel: c.kernel,
                pad: c.pad(),
                run_words,
                weights: Rows {
                    thresholds: c.thresholds.clone(),
                    ..weights
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
        Layer::Lut(_) | Layer::GroupSum(_) => Step::Reference {
            layer: l.clone(),
            input,
        },
    }
}

/// The weights of a convolution (`out_channels x (k * k * C)`, window order) laid out one run
/// per window row, each run padded to whole words: the words per run, and the rows (without
/// thresholds).
fn window_rows(weights: &BinaryMatrix, k: usize, ch: usize) -> (usize, Rows) {
    let run = k * ch;
    let run_words = words_for(run);
    let rows = weights.rows();
    let mut words = vec![0u64; rows * k * run_words];
    for r in 0..rows {
        for dy in 0..k {
            let at = (r * k + dy) * run_words;
            copy_run(
                &mut words[at..at + run_words],
                weights.row(r),
                dy * run,
                run,
            );
        }
    }
    let rows = Rows {
        rows,
        words: k * run_words,
        inputs: (k * run) as u32,
        weights: words,
        thresholds: Vec::new(),
    };
    (run_words, rows)
}

/// What a convolution does with each window.
trait Windows {
    /// Takes the window of output position `p` (raster order).
    fn take(&mut self, window: &[u64], p: usize);
}

/// Every window of the image `x`, in raster order, to `each`, with the window's `k` rows laid
/// out as [`window_rows`] lays out weights. The shapes, kernel, padding and words per window
/// row in `geometry`. (A trait rather than a closure: its `#[inline(always)]` method is
/// compiled into the caller, with the caller's instruction set.)
#[inline(always)]
fn windows(
    geometry: (Shape, Shape, usize, usize, usize),
    x: &[u64],
    padded: &mut Vec<u64>,
    window: &mut Vec<u64>,
    each: &mut impl Windows,
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
            each.take(window, y * output.width + xx);
        }
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
    struct Threshold<'a>(&'a Rows, &'a mut [u64]);
    impl Windows for Threshold<'_> {
        #[inline(always)]
        fn take(&mut self, window: &[u64], p: usize) {
            threshold_layer(self.0, window, self.1, p * self.0.rows)
        }
    }
    out.resize(words_for(geometry.1.len()), 0);
    windows(geometry, x, padded, window, &mut Threshold(w, out));
}

/// A binary convolution prepared to count, for every output position and channel of an
/// image, how many of its window's `k * k * C` values agree with the channel's weights (so
/// the integer pre-activation is `2 * agreements - k * k * C`): the forward pass of the
/// training graph's binary convolutions. Windows are laid out as the executor lays them out;
/// the weights are interleaved in groups of eight output channels (word `i` of the
/// group's channels side by side), so that one window word is compared with eight channels
/// in one vector operation.
#[derive(Clone, Debug)]
pub struct ConvCounts {
    geometry: (Shape, Shape, usize, usize, usize),
    /// Output channels.
    channels: usize,
    /// Window values.
    inputs: u32,
    /// `ceil(channels / LANES)` groups of `window words x LANES` words.
    lanes: Vec<u64>,
}

/// Output channels that [`ConvCounts`] counts together.
const LANES: usize = 8;

/// Reusable buffers of [`ConvCounts::image`].
#[derive(Clone, Debug, Default)]
pub struct ConvScratch {
    padded: Vec<u64>,
    window: Vec<u64>,
}

impl ConvCounts {
    /// The convolution of `input` by `weights` (`out_channels x (k * k * C)`, window order),
    /// `kernel` square, with `padding`.
    pub fn new(input: Shape, kernel: usize, padding: Padding, weights: &BinaryMatrix) -> Self {
        let output = conv_output(input, kernel, padding, weights.rows());
        let (run_words, rows) = window_rows(weights, kernel, input.channels);
        let (channels, words) = (rows.rows, rows.words);
        let mut lanes = vec![0u64; channels.div_ceil(LANES) * words * LANES];
        for (ch, row) in rows.weights.chunks_exact(words).enumerate() {
            let group = (ch / LANES) * words * LANES;
            for (i, &w) in row.iter().enumerate() {
                lanes[group + i * LANES + ch % LANES] = w;
            }
        }
        ConvCounts {
            geometry: (input, output, kernel, pad_for(kernel, padding), run_words),
            channels,
            inputs: rows.inputs,
            lanes,
        }
    }

    /// The agreements of the image `x` (its `input.len()` values, one bit each, `1` for `+1`)
    /// into `out` (`positions x out_channels`, channel fastest).
    pub fn image(&self, x: &[u64], s: &mut ConvScratch, out: &mut [u32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            {
                // SAFETY: the CPU has AVX-512F and VPOPCNTDQ, checked just above.
                return unsafe { self.image_avx512(x, s, out) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("popcnt")
            {
                // SAFETY: the CPU has AVX2 and POPCNT, checked just above.
                return unsafe { self.image_avx2(x, s, out) };
            }
        }
        self.run::<Portable>(x, s, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
    unsafe fn image_avx512(&self, x: &[u64], s: &mut ConvScratch, out: &mut [u32]) {
        self.run::<Avx512>(x, s, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt")]
    unsafe fn image_avx2(&self, x: &[u64], s: &mut ConvScratch, out: &mut [u32]) {
        self.run::<Portable>(x, s, out)
    }

    #[inline(always)]
    fn run<K: GroupKernel>(&self, x: &[u64], s: &mut ConvScratch, out: &mut [u32]) {
        let m = self.channels;
        assert_eq!(
            out.len(),
            self.geometry.1.height * self.geometry.1.width * m
        );
        let mut count = Count::<K>(self, out, std::marker::PhantomData);
        windows(self.geometry, x, &mut s.padded, &mut s.window, &mut count);
    }
}

/// The mismatches of one window with a group of [`LANES`] channels (laid out as
/// [`ConvCounts`] interleaves them).
trait GroupKernel {
    /// # Safety
    /// The CPU has the instruction set the implementation is compiled for.
    unsafe fn group(lanes: &[u64], window: &[u64]) -> [u64; LANES];
}

/// Plain Rust (what the compiler makes of it for the caller's instruction set).
struct Portable;

impl GroupKernel for Portable {
    #[inline(always)]
    unsafe fn group(lanes: &[u64], window: &[u64]) -> [u64; LANES] {
        let mut acc = [0u64; LANES];
        for (ws, &x) in lanes.chunks_exact(LANES).zip(window) {
            for l in 0..LANES {
                acc[l] += u64::from((ws[l] ^ x).count_ones());
            }
        }
        acc
    }
}

/// One AVX-512 XOR and VPOPCNTQ per window word for the eight channels.
#[cfg(target_arch = "x86_64")]
struct Avx512;

#[cfg(target_arch = "x86_64")]
impl GroupKernel for Avx512 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    unsafe fn group(lanes: &[u64], window: &[u64]) -> [u64; LANES] {
        use std::arch::x86_64::*;
        assert!(lanes.len() >= window.len() * LANES);
        let mut acc = _mm512_setzero_si512();
        for (i, &x) in window.iter().enumerate() {
            // SAFETY: `lanes` holds `LANES` words per window word (asserted above).
            let w = unsafe { _mm512_loadu_si512(lanes.as_ptr().add(i * LANES).cast()) };
            let d = _mm512_xor_si512(w, _mm512_set1_epi64(x as i64));
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(d));
        }
        let mut out = [0u64; LANES];
        // SAFETY: `out` is eight words.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), acc) };
        out
    }
}

/// The agreements of each window with every channel of a [`ConvCounts`].
struct Count<'a, K>(&'a ConvCounts, &'a mut [u32], std::marker::PhantomData<K>);

impl<K: GroupKernel> Windows for Count<'_, K> {
    #[inline(always)]
    fn take(&mut self, window: &[u64], p: usize) {
        let (c, m) = (self.0, self.0.channels);
        let out = &mut self.1[p * m..(p + 1) * m];
        for (group, o) in c
            .lanes
            .chunks_exact(window.len() * LANES)
            .zip(out.chunks_mut(LANES))
        {
            // SAFETY: `Count<K>` is only built by `ConvCounts::run::<K>`, which its callers
            // call only where the CPU has `K`'s instruction set.
            let acc = unsafe { K::group(group, window) };
            for (o, &a) in o.iter_mut().zip(&acc) {
                *o = c.inputs - a as u32;
            }
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

    /// The counting convolution of the training graph gives, on random shapes (both paddings,
    /// kernels 1 to 5, channel counts that are not multiples of 8 or 64, window rows longer
    /// than a word), the agreements of the definition: window value and weight equal, the
    /// value `-1` (bit 0) outside the image; the portable kernel and the dispatched one agree.
    #[test]
    fn conv_counts_match_the_definition() {
        let mut rng = Rng::new(29, 1);
        for (h, w, c, k, padding, m) in [
            (7usize, 5usize, 3usize, 3usize, Padding::Same, 5usize),
            (6, 9, 70, 3, Padding::Valid, 9),
            (5, 5, 8, 5, Padding::Same, 16),
            (4, 6, 1, 1, Padding::Valid, 3),
            (8, 7, 32, 5, Padding::Same, 13),
        ] {
            let input = Shape {
                height: h,
                width: w,
                channels: c,
            };
            let n = k * k * c;
            let mut weights = BinaryMatrix::new(m, n);
            for r in 0..m {
                for i in 0..n {
                    weights.set(r, i, rng.below(2) == 1);
                }
            }
            let counts = ConvCounts::new(input, k, padding, &weights);
            let output = conv_output(input, k, padding, m);
            let pad = pad_for(k, padding);
            let value: Vec<bool> = (0..input.len()).map(|_| rng.below(2) == 1).collect();
            let mut x = vec![0u64; words_for(input.len())];
            for (i, &v) in value.iter().enumerate() {
                x[i / 64] |= u64::from(v) << (i % 64);
            }
            let mut out = vec![0u32; output.height * output.width * m];
            counts.image(&x, &mut ConvScratch::default(), &mut out);
            let mut portable = vec![0u32; out.len()];
            counts.run::<Portable>(&x, &mut ConvScratch::default(), &mut portable);
            assert_eq!(portable, out, "{h}x{w}x{c} k{k}");
            for y in 0..output.height {
                for xx in 0..output.width {
                    for r in 0..m {
                        let mut agree = 0;
                        for dy in 0..k {
                            for dx in 0..k {
                                let (sy, sx) = (
                                    (y + dy) as isize - pad as isize,
                                    (xx + dx) as isize - pad as isize,
                                );
                                let inside =
                                    (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx);
                                for ch in 0..c {
                                    let v =
                                        inside && value[(sy as usize * w + sx as usize) * c + ch];
                                    agree += u32::from(v == weights.get(r, (dy * k + dx) * c + ch));
                                }
                            }
                        }
                        let p = y * output.width + xx;
                        assert_eq!(out[p * m + r], agree, "{h}x{w}x{c} k{k} at {y},{xx} ch {r}");
                    }
                }
            }
        }
    }

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
