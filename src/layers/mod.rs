//! Layer kinds: every kind of layer a model can hold, each owning its duties in its own file.
//!
//! A model is an input shape, the kept planes and an ordered list of [`Layer`]s; the values
//! between two layers are a [`Shape`] of ±1 bits (height x width x channels, packed in
//! row-major order with channels last, exactly as the first layer's features are: see
//! [`crate::bitslice`]), and the last layer turns them into class scores. A kind implements:
//!
//! - [`Semantics`]: its output shape, its checks against the shape it receives, its size, and
//!   its reference execution (packed, and straight from the definition for the tests). This is
//!   all that the reference model ([`crate::reference`]) and the model file use.
//! - [`Hardware`]: its folding space and the folding's checks, its timing for the cycle model,
//!   its resource estimate, its memory images and the instantiation of its core. This is what
//!   the generator, the estimate and the automatic folding loop over.
//!
//! Both are implemented in the kind's file, so that adding a kind means one file here, one
//! variant of [`Layer`], one core in `rtl/`, one training op and one row in the test tables.
//! The reference model calls only [`Semantics`]; nothing it runs touches hardware code.

mod conv;
mod dense;
mod group_sum;
mod lut;
pub mod mvtu;
mod pool;
mod scores;

pub use conv::{
    conv_notation, conv_output, pad_for, window_rows, window_source, Conv, Padding, WindowRow,
};
pub use dense::Dense;
pub use group_sum::GroupSum;
pub use lut::{Lut, MAX_FAN_IN};
pub use pool::{pool_output, MaxPool};
pub use scores::Scores;

use crate::reference::cycle::StageTiming;
use crate::vocab::cost::LayerEstimate;
use crate::vocab::fold::{LayerFold, LayerShape};
use crate::vocab::matrix::BinaryMatrix;
pub use crate::vocab::shape::Shape;

/// What a layer hands on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Produces {
    /// ±1 values, packed, for the next layer.
    Bits,
    /// The class scores: the model's result.
    Scores,
}

/// What a layer computes from its input, and what it is as part of a model.
pub trait Semantics {
    /// The kind's name in messages and in the model file (`"kind"`).
    fn kind(&self) -> &'static str;

    /// Whether the layer hands on bits or the class scores.
    fn produces(&self) -> Produces;

    /// The layer in the architecture notation of `cbnn train --arch` (`d256`, `c32`, `p2`;
    /// the output layer, which every model has, is `out10`).
    fn notation(&self) -> String;

    /// The shape it hands on when it receives `input` (for [`Produces::Scores`], one value per
    /// class).
    fn output_shape(&self, input: Shape) -> Shape;

    /// Checks the layer against the shape it receives; the message names what is wrong.
    fn check(&self, input: Shape) -> Result<(), String>;

    /// Size in bits: every binary weight plus every threshold, a threshold of a layer with `N`
    /// inputs per neuron taking [`crate::vocab::matrix::threshold_bits`]`(N)` bits.
    fn size_bits(&self) -> u64;

    /// Binary weights held.
    fn weight_bits(&self) -> u64;

    /// Executes the layer on packed `input` of shape `shape`: the popcounts (or scores) go to
    /// `counts`; a layer that hands on bits writes them, packed, to `out`.
    fn execute(&self, shape: Shape, input: &[u64], counts: &mut Vec<u32>, out: &mut Vec<u64>);

    /// The same straight from the numeric definition (±1 products summed as integers), on one
    /// `bool` per value (`true` = `+1`): the bits handed on, or the scores as integers.
    fn by_definition(&self, shape: Shape, input: &[bool]) -> Values;
}

/// What a layer is in hardware: its core, folded, in the generated pipeline.
pub trait Hardware {
    /// Whether the kind has an accelerator core; the message says why not. The generator
    /// refuses a model with a layer that has none before it asks anything else.
    fn supported(&self) -> Result<(), String> {
        Ok(())
    }

    /// Whether the layer is logic-mapped (`lut`, `group_sum`): fully unrolled between the
    /// clock-enabled register stages of a logic-mapped design, which takes one image a cycle,
    /// rather than a folded unit. A design is logic-mapped when all its layers are.
    fn logic_mapped(&self) -> bool {
        false
    }

    /// Its folding when none is given: `PE = min(neurons, 16)`, `SIMD = min(inputs, 64)`; a
    /// logic-mapped layer's only one, fully parallel.
    fn default_fold(&self, pipe: usize) -> LayerFold {
        let s = self.unit();
        if self.logic_mapped() {
            return LayerFold::new(s.outputs, s.inputs);
        }
        LayerFold {
            pe: s.outputs.min(16),
            simd: s.inputs.min(64),
            pipe,
        }
    }

    /// The matrix its folded unit computes (inputs per neuron, neurons): the space its folding
    /// (`PE` neurons in parallel, `SIMD` inputs per neuron per cycle) ranges over.
    fn unit(&self) -> LayerShape;

    /// Checks a folding; the message names what is wrong.
    fn check_fold(&self, f: LayerFold) -> Result<(), String> {
        let s = self.unit();
        if self.logic_mapped() {
            return check_unrolled(s, f);
        }
        if f.pe == 0 || f.pe > s.outputs {
            return Err(format!(
                "PE {} must be between 1 and its {} neurons",
                f.pe, s.outputs
            ));
        }
        if f.simd == 0 || f.simd > s.inputs {
            return Err(format!(
                "SIMD {} must be between 1 and its {} inputs",
                f.simd, s.inputs
            ));
        }
        Ok(())
    }

    /// Compute cycles per image under `f` (the cycle model adds one hand-over cycle); none for
    /// a logic-mapped layer.
    fn steps(&self, f: LayerFold) -> usize {
        if self.logic_mapped() {
            return 0;
        }
        self.unit().steps(f)
    }

    /// Whether it reads a stream of pixels (convolution, pool) rather than one whole vector
    /// (dense layers, which gather a stream of pixels first).
    fn streams(&self) -> bool {
        false
    }

    /// Cycles per image its slowest core needs, free-running, when it receives `input`: the
    /// unit's steps and its hand-over cycle, or the gathering of a stream of pixels.
    fn cycles_per_image(&self, input: Shape, f: LayerFold) -> usize {
        if self.logic_mapped() {
            return 1;
        }
        let pixels = input.height * input.width;
        let gather = if pixels > 1 { pixels + 1 } else { 0 };
        (self.steps(f) + 1).max(gather)
    }

    /// Cycles per image of its cores alone, free-running, their input always offered: its
    /// interval in a pipeline whose other layers are no slower (with the FIFOs the cycle model
    /// sizes). [`Hardware::cycles_per_image`] unless that leaves cycles out (a convolution's
    /// window walk).
    fn interval(&self, input: Shape, f: LayerFold) -> usize {
        self.cycles_per_image(input, f)
    }

    /// Its stages in the cycle model when it receives a stream of `input` pixels, one pixel
    /// (`input.channels` bits) a beat: a unit over the whole vector, gathered first when it
    /// comes as more than one pixel.
    fn stages(&self, input: Shape, f: LayerFold) -> Vec<StageTiming> {
        if self.logic_mapped() {
            // Its register stage is one of the design's pipeline (`plan::timing_with`).
            return Vec::new();
        }
        let pixels = input.height * input.width;
        let mut v = Vec::new();
        if pixels > 1 {
            v.push(StageTiming::Unpack { beats: pixels });
        }
        v.push(StageTiming::Unit {
            steps: self.steps(f),
        });
        v
    }

    /// Estimated resources under `f` when it receives `input`.
    fn estimate(&self, input: Shape, f: LayerFold) -> LayerEstimate;

    /// Its memory images under `f`.
    fn images(&self, f: LayerFold) -> Vec<MemoryImage>;

    /// Width in bits of a beat of the stream it hands on when it receives `input`.
    fn output_width(&self, input: Shape) -> usize;

    /// Its core instantiated in the top level at `site`.
    fn instantiate(&self, site: &Site) -> String;
}

/// Declares the wires of the stream `name` in the top level: `name` of `width` bits,
/// `name_valid` and `name_ready`.
pub(crate) fn declare_stream(v: &mut String, name: &str, width: usize) {
    use std::fmt::Write;
    let _ = writeln!(v, "    wire [{}:0] {name};", width - 1);
    let _ = writeln!(v, "    wire {name}_valid;");
    let _ = writeln!(v, "    wire {name}_ready;");
}

/// A memory image of a layer (`$readmemh` text, one word a line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryImage {
    /// What it holds (`weights`, `thresholds`): the file is `l<i>_<role>.hex`.
    pub role: &'static str,
    /// The image.
    pub text: String,
    /// Bits a word.
    pub width: usize,
}

/// Where a layer sits in the generated top level.
pub struct Site<'a> {
    /// `L<i>`.
    pub name: String,
    /// Its folding.
    pub fold: LayerFold,
    /// The stream it reads (wires `NAME`, `NAME_valid`, `NAME_ready`).
    pub input: String,
    /// What that stream carries: `height x width` pixels of `channels` bits, one a beat (a
    /// whole vector is one pixel).
    pub input_shape: Shape,
    /// The stream it drives.
    pub output: String,
    /// Width of the stream it drives.
    pub output_width: usize,
    /// Its memory image files, by role.
    pub images: Vec<(&'static str, String)>,
    /// Whether its weights are constants in logic (fully parallel) instead of memories.
    pub in_logic: bool,
    /// Its memory images, for constants in logic.
    pub constants: &'a [MemoryImage],
}

/// The checks of a logic-mapped layer's folding: it has only the fully parallel one.
fn check_unrolled(unit: LayerShape, f: LayerFold) -> Result<(), String> {
    if f.pe != unit.outputs || f.simd != unit.inputs || f.pipe != 0 {
        return Err(format!(
            "is logic-mapped: it has only the fully parallel folding (PE {}, SIMD {}, PIPE 0)",
            unit.outputs, unit.inputs
        ));
    }
    Ok(())
}

/// A bit vector as a Verilog literal: `N'h...`, element 0 in the least significant bit.
pub(crate) fn verilog_bits(bits: &[bool]) -> String {
    let digits: String = bits
        .chunks(4)
        .rev()
        .map(|c| {
            let v = c
                .iter()
                .enumerate()
                .fold(0u32, |v, (i, &b)| v | (u32::from(b) << i));
            char::from_digit(v, 16).expect("a nibble")
        })
        .collect();
    format!("{}'h{digits}", bits.len())
}

/// The result of [`Semantics::by_definition`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Values {
    /// ±1 values (`true` = `+1`).
    Bits(Vec<bool>),
    /// Class scores.
    Scores(Vec<u32>),
}

/// One layer of a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layer {
    /// Binary dense layer with one integer threshold per neuron.
    Dense(Dense),
    /// Binary convolution with one integer threshold per output channel.
    Conv(Conv),
    /// Binary max-pool.
    MaxPool(MaxPool),
    /// The output layer: binary dense, class scores are its popcounts.
    Scores(Scores),
    /// Sparse truth-table neurons (logic-mapped networks).
    Lut(Lut),
    /// The output layer of a logic-mapped network: class scores are `+1` counts of groups.
    GroupSum(GroupSum),
}

impl Layer {
    /// What it computes.
    pub fn semantics(&self) -> &dyn Semantics {
        match self {
            Layer::Dense(l) => l,
            Layer::Conv(l) => l,
            Layer::MaxPool(l) => l,
            Layer::Scores(l) => l,
            Layer::Lut(l) => l,
            Layer::GroupSum(l) => l,
        }
    }

    /// What it is in hardware.
    pub fn hardware(&self) -> &dyn Hardware {
        match self {
            Layer::Dense(l) => l,
            Layer::Conv(l) => l,
            Layer::MaxPool(l) => l,
            Layer::Scores(l) => l,
            Layer::Lut(l) => l,
            Layer::GroupSum(l) => l,
        }
    }

    /// The dense layer, if it is one.
    pub fn as_dense(&self) -> Option<&Dense> {
        match self {
            Layer::Dense(l) => Some(l),
            _ => None,
        }
    }

    /// The convolution, if it is one.
    pub fn as_conv(&self) -> Option<&Conv> {
        match self {
            Layer::Conv(l) => Some(l),
            _ => None,
        }
    }

    /// The output layer, if it is one.
    pub fn as_scores(&self) -> Option<&Scores> {
        match self {
            Layer::Scores(l) => Some(l),
            _ => None,
        }
    }
}

/// The checks every layer of threshold units shares: at least one unit, one threshold per
/// unit, each in `0..=n + 1` for `n` inputs per unit (`units` and `unit` name them).
pub(crate) fn check_thresholds(
    weights: &BinaryMatrix,
    thresholds: &[u32],
    units: &str,
    unit: &str,
) -> Result<(), String> {
    let n = weights.cols();
    if weights.rows() == 0 {
        return Err(format!("has no {units}"));
    }
    if thresholds.len() != weights.rows() {
        return Err(format!(
            "has {} thresholds for {} {units}",
            thresholds.len(),
            weights.rows()
        ));
    }
    if let Some((j, t)) = thresholds
        .iter()
        .enumerate()
        .find(|(_, &t)| t as usize > n + 1)
    {
        return Err(format!(
            "{unit} {j} has threshold {t}, outside 0..={}",
            n + 1
        ));
    }
    Ok(())
}

/// Size of a layer of threshold units: every weight and `threshold_bits(n)` per unit.
pub(crate) fn thresholded_size_bits(weights: &BinaryMatrix) -> u64 {
    let n = weights.cols() as u64;
    weights.rows() as u64 * (n + crate::vocab::matrix::threshold_bits(n) as u64)
}

/// `n <= 64` bits of the packed `v` from bit `at`, in the low bits.
#[inline]
pub(crate) fn bits_at(v: &[u64], at: usize, n: usize) -> u64 {
    let (w, o) = (at / 64, at % 64);
    let mut x = v[w] >> o;
    if o + n > 64 {
        x |= v[w + 1] << (64 - o);
    }
    if n < 64 {
        x & ((1u64 << n) - 1)
    } else {
        x
    }
}

/// ORs the `n` bits of `src` from bit `from` into `dst` from bit `to`.
#[inline]
pub(crate) fn or_run(dst: &mut [u64], to: usize, src: &[u64], from: usize, n: usize) {
    let mut i = 0;
    while i < n {
        let m = (n - i).min(64);
        let x = bits_at(src, from + i, m);
        let (w, o) = ((to + i) / 64, (to + i) % 64);
        dst[w] |= x << o;
        if o + m > 64 {
            dst[w + 1] |= x >> (64 - o);
        }
        i += m;
    }
}

/// `popcount(XNOR(w_r, x))` of every row of `w` against the packed `x`, into `counts`.
pub(crate) fn popcounts(w: &BinaryMatrix, x: &[u64], counts: &mut Vec<u32>) {
    counts.resize(w.rows(), 0);
    crate::reference::kernels::matvec(w, x, counts);
}

/// The number of positions where row `r` of `w` and `x` agree (the definition).
pub(crate) fn matches_by_definition(w: &BinaryMatrix, r: usize, x: &[bool]) -> u32 {
    let dot: i64 = (0..w.cols())
        .map(|i| if w.get(r, i) == x[i] { 1 } else { -1 })
        .sum();
    // w.x = 2 * matches - N  =>  matches = (dot + N) / 2
    ((dot + w.cols() as i64) / 2) as u32
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bitslice::PlaneSet;
    use crate::model::{InputShape, IntModel, Provenance};
    use crate::reference::{predict_by_definition, Executor};
    use crate::util::rng::Rng;

    fn random_matrix(rng: &mut Rng, rows: usize, cols: usize) -> BinaryMatrix {
        let mut m = BinaryMatrix::new(rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                m.set(r, c, rng.next_u64() & 1 == 1);
            }
        }
        m
    }

    /// Thresholds near the middle of `0..=n + 1`, plus both "always" ends.
    fn random_thresholds(rng: &mut Rng, count: usize, n: usize) -> Vec<u32> {
        (0..count)
            .map(|j| match j % 7 {
                0 => 0,
                1 => n as u32 + 1,
                _ => (n / 2) as u32 + rng.below(5) as u32 - 2,
            })
            .collect()
    }

    /// The layers of a random model, described as `c<M>k<k><v|s>` (conv), `p<p>` (pool),
    /// `d<N>` (dense); the output layer is added.
    pub(crate) fn random_layers(
        rng: &mut Rng,
        input: Shape,
        spec: &[&str],
        classes: usize,
    ) -> Vec<Layer> {
        let mut shape = input;
        let mut layers = Vec::new();
        for s in spec {
            let layer = match s.as_bytes()[0] {
                b'c' => {
                    let (m, rest) = s[1..].split_once('k').unwrap();
                    let (k, pad) = rest.split_at(rest.len() - 1);
                    let (m, k): (usize, usize) = (m.parse().unwrap(), k.parse().unwrap());
                    let n = k * k * shape.channels;
                    Layer::Conv(Conv {
                        kernel: k,
                        padding: if pad == "s" {
                            Padding::Same
                        } else {
                            Padding::Valid
                        },
                        weights: random_matrix(rng, m, n),
                        thresholds: random_thresholds(rng, m, n),
                    })
                }
                b'p' => Layer::MaxPool(MaxPool {
                    size: s[1..].parse().unwrap(),
                }),
                _ => {
                    let m: usize = s[1..].parse().unwrap();
                    Layer::Dense(Dense {
                        weights: random_matrix(rng, m, shape.len()),
                        thresholds: random_thresholds(rng, m, shape.len()),
                    })
                }
            };
            shape = layer.semantics().output_shape(shape);
            layers.push(layer);
        }
        layers.push(Layer::Scores(Scores {
            weights: random_matrix(rng, classes, shape.len()),
        }));
        layers
    }

    /// A random valid model of `height x width x channels` images.
    pub(crate) fn random_model(
        rng: &mut Rng,
        input: InputShape,
        planes: &[u8],
        spec: &[&str],
        classes: usize,
    ) -> IntModel {
        let planes = PlaneSet::new(planes).unwrap();
        let values = Shape {
            height: input.height,
            width: input.width,
            channels: input.channels * planes.len(),
        };
        let model = IntModel {
            input,
            layers: random_layers(rng, values, spec, classes),
            planes,
            provenance: Provenance::default(),
        };
        model.validate(std::path::Path::new("random")).unwrap();
        model
    }

    fn random_bits(rng: &mut Rng, n: usize) -> Vec<bool> {
        (0..n).map(|_| rng.next_u64() & 1 == 1).collect()
    }

    /// ±1 values as integers.
    fn ints(x: &[bool]) -> Vec<i32> {
        x.iter().map(|&b| if b { 1 } else { -1 }).collect()
    }

    /// ±1 values packed, bit `i` of word `i / 64` for value `i`.
    fn pack(x: &[bool]) -> Vec<u64> {
        let mut packed = vec![0u64; crate::bitslice::words_for(x.len())];
        for (i, &b) in x.iter().enumerate() {
            if b {
                packed[i / 64] |= 1 << (i % 64);
            }
        }
        packed
    }

    /// The convolution of the documentation, written out on ±1 integers: `x[y][x][c]`, `-1`
    /// outside the image, window order `(dy, dx, c)`.
    fn naive_conv(c: &Conv, s: Shape, x: &[i32]) -> Vec<i32> {
        let k = c.kernel as isize;
        let pad = if c.padding == Padding::Same {
            (k - 1) / 2
        } else {
            0
        };
        let (h, w) = (s.height as isize, s.width as isize);
        let (oh, ow) = if c.padding == Padding::Same {
            (h, w)
        } else {
            (h - k + 1, w - k + 1)
        };
        let n = (k * k) as usize * s.channels;
        let mut out = Vec::new();
        for y in 0..oh {
            for xx in 0..ow {
                for m in 0..c.weights.rows() {
                    let mut dot = 0i64;
                    for dy in 0..k {
                        for dx in 0..k {
                            for ch in 0..s.channels {
                                let (sy, sx) = (y + dy - pad, xx + dx - pad);
                                let v = if sy < 0 || sx < 0 || sy >= h || sx >= w {
                                    -1
                                } else {
                                    x[((sy * w + sx) as usize) * s.channels + ch]
                                };
                                let i = ((dy * k + dx) as usize) * s.channels + ch;
                                let wv = if c.weights.get(m, i) { 1 } else { -1 };
                                dot += (v * wv) as i64;
                            }
                        }
                    }
                    let matches = (dot + n as i64) / 2;
                    out.push(if matches >= c.thresholds[m] as i64 {
                        1
                    } else {
                        -1
                    });
                }
            }
        }
        out
    }

    fn naive_pool(p: usize, s: Shape, x: &[i32]) -> Vec<i32> {
        let mut out = Vec::new();
        for y in 0..s.height / p {
            for xx in 0..s.width / p {
                for ch in 0..s.channels {
                    let mut best = i32::MIN;
                    for dy in 0..p {
                        for dx in 0..p {
                            best = best
                                .max(x[((y * p + dy) * s.width + xx * p + dx) * s.channels + ch]);
                        }
                    }
                    out.push(best);
                }
            }
        }
        out
    }

    const SPECS: [&[&str]; 6] = [
        &["c5k3s"],
        &["c3k3v", "p2", "d7"],
        &["c9k5s", "p3", "c4k1v"],
        &["c65k3s", "c2k2v", "p2"],
        &["p2", "c70k3v", "d3"],
        &["c7k3v", "c6k3s", "p2", "d9", "d5"],
    ];

    /// Conv and pool against the definition written out here on ±1 integers, on odd sizes,
    /// both paddings and channel counts that are not multiples of 8 or 64; then the packed
    /// executor and the definition, image by image.
    #[test]
    fn conv_and_pool_match_the_definition() {
        let mut rng = Rng::new(31, 0);
        for (i, spec) in SPECS.iter().enumerate() {
            let (h, w, c) = [
                (7, 9, 1),
                (11, 10, 3),
                (13, 8, 2),
                (6, 6, 1),
                (9, 12, 1),
                (12, 11, 1),
            ][i];
            let planes: &[u8] = [
                &[7u8, 6, 5][..],
                &[7][..],
                &[7, 3][..],
                &[6, 5, 4, 3, 2][..],
                &[7, 6, 5, 4, 3, 2, 1, 0][..],
                &[4][..],
            ][i];
            let input = InputShape {
                height: h,
                width: w,
                channels: c,
            };
            let model = random_model(&mut rng, input, planes, spec, 4);
            let shapes = model.shapes();
            for _ in 0..20 {
                let x = random_bits(&mut rng, model.features());
                // Layer by layer against the integers.
                let mut v = ints(&x);
                let mut bits = x.clone();
                for (l, &s) in model.layers.iter().zip(&shapes) {
                    let expect = match l {
                        Layer::Conv(c) => Some(naive_conv(c, s, &v)),
                        Layer::MaxPool(p) => Some(naive_pool(p.size, s, &v)),
                        _ => None,
                    };
                    let Values::Bits(got) = l.semantics().by_definition(s, &bits) else {
                        break;
                    };
                    if let Some(e) = expect {
                        let got_i = ints(&got);
                        assert_eq!(got_i, e, "{spec:?}: {}", l.semantics().kind());
                    }
                    v = ints(&got);
                    bits = got;
                }
                // The packed executor against the definition.
                let packed = pack(&x);
                assert_eq!(
                    Executor::new(&model).predict(&packed),
                    predict_by_definition(&model, &x),
                    "{spec:?}"
                );
            }
        }
    }

    /// A random logic-mapped model: `lut` layers of these `(neurons, fan_in)`, the last of
    /// `classes * group` neurons, then the group sum.
    pub(crate) fn random_lut_model(
        rng: &mut Rng,
        input: InputShape,
        planes: &[u8],
        layers: &[(usize, usize)],
        classes: usize,
    ) -> IntModel {
        let planes = PlaneSet::new(planes).unwrap();
        let mut n = input.pixels() * planes.len();
        let mut out = Vec::new();
        for &(m, f) in layers {
            let connections = (0..m * f).map(|_| rng.below(n) as u32).collect();
            let mask = if f == 6 {
                u64::MAX
            } else {
                (1u64 << (1 << f)) - 1
            };
            let tables = (0..m).map(|_| rng.next_u64() & mask).collect();
            out.push(Layer::Lut(Lut {
                fan_in: f,
                connections,
                tables,
            }));
            n = m;
        }
        out.push(Layer::GroupSum(GroupSum { classes }));
        let model = IntModel {
            input,
            layers: out,
            planes,
            provenance: Provenance::default(),
        };
        model.validate(std::path::Path::new("random")).unwrap();
        model
    }

    /// A sparse neuron on ±1 integers: input `i` is `x[src_i]`, the address has bit `i` set
    /// where it is `+1`.
    fn naive_lut(l: &Lut, x: &[i32]) -> Vec<i32> {
        (0..l.tables.len())
            .map(|j| {
                let mut a = 0;
                for i in 0..l.fan_in {
                    if x[l.connections[j * l.fan_in + i] as usize] == 1 {
                        a += 1 << i;
                    }
                }
                if l.tables[j] >> a & 1 == 1 {
                    1
                } else {
                    -1
                }
            })
            .collect()
    }

    /// Logic-mapped layers against their definition written out on ±1 integers (a group's
    /// score is its sum of `(x + 1) / 2`), and the packed executor and the fast engine against
    /// the definition, on every fan-in and group sizes that cross words.
    #[test]
    fn lut_and_group_sum_match_the_definition() {
        let mut rng = Rng::new(41, 0);
        type Case<'a> = (&'a [(usize, usize)], usize, &'a [u8]);
        let cases: [Case; 4] = [
            (&[(30, 6)], 3, &[7]),
            (&[(77, 3), (40, 5)], 4, &[7, 6, 5]),
            (&[(13, 1), (26, 2)], 2, &[7, 6, 5, 4, 3, 2, 1, 0]),
            (&[(200, 4), (650, 6)], 10, &[6, 3]),
        ];
        let input = InputShape {
            height: 5,
            width: 7,
            channels: 1,
        };
        for (layers, classes, planes) in cases {
            let model = random_lut_model(&mut rng, input, planes, layers, classes);
            let shapes = model.shapes();
            let fast = crate::reference::fast_layers::Layers::new(&model);
            for _ in 0..30 {
                let x = random_bits(&mut rng, model.features());
                let mut v = ints(&x);
                let mut bits = x.clone();
                for (l, &s) in model.layers.iter().zip(&shapes) {
                    match (l, l.semantics().by_definition(s, &bits)) {
                        (Layer::Lut(t), Values::Bits(got)) => {
                            let got_i = ints(&got);
                            assert_eq!(got_i, naive_lut(t, &v), "{layers:?}");
                            v = got_i;
                            bits = got;
                        }
                        (Layer::GroupSum(g), Values::Scores(got)) => {
                            let size = v.len() / g.classes;
                            let expect: Vec<u32> = v
                                .chunks(size)
                                .map(|c| c.iter().map(|&x| ((x + 1) / 2) as u32).sum())
                                .collect();
                            assert_eq!(got, expect, "{layers:?}");
                        }
                        _ => unreachable!(),
                    }
                }
                let packed = pack(&x);
                let by_def = predict_by_definition(&model, &x);
                assert_eq!(Executor::new(&model).predict(&packed), by_def);
                let one = crate::bitslice::Sliced {
                    features: x.len(),
                    words: packed.len(),
                    bits: packed,
                };
                assert_eq!(fast.classify_sliced(&one), vec![by_def.class]);
            }
        }
    }

    /// A sparse threshold neuron's table gives, at every address, the threshold of its ±1
    /// dot product.
    #[test]
    fn threshold_neurons_become_their_tables() {
        let mut rng = Rng::new(42, 0);
        for f in 1..=MAX_FAN_IN {
            for _ in 0..20 {
                let w: Vec<bool> = (0..f).map(|_| rng.next_u64() & 1 == 1).collect();
                let t = rng.below(f + 2) as u32;
                let table = Lut::from_threshold(&w, t);
                for a in 0..1u64 << f {
                    let dot: i64 = (0..f)
                        .map(|i| {
                            let x = if a >> i & 1 == 1 { 1 } else { -1 };
                            x * if w[i] { 1 } else { -1 }
                        })
                        .sum();
                    let fires = (dot + f as i64) / 2 >= t as i64;
                    assert_eq!(table >> a & 1 == 1, fires, "f {f} w {w:?} t {t} a {a}");
                }
                if f < MAX_FAN_IN {
                    assert_eq!(table >> (1 << f), 0, "bits past the table");
                }
            }
        }
    }

    #[test]
    fn conv_models_round_trip_through_the_model_file() {
        let mut rng = Rng::new(32, 0);
        let input = InputShape {
            height: 9,
            width: 7,
            channels: 2,
        };
        let model = random_model(&mut rng, input, &[7, 4], &["c5k3s", "p2", "c3k2v", "d6"], 3);
        let text = crate::model::json_text(&model);
        let back = crate::model::from_json(std::path::Path::new("m.json"), &text).unwrap();
        assert_eq!(back, model);
        assert_eq!(back.size_bits(), model.size_bits());
    }
}
