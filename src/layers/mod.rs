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

mod dense;
pub mod mvtu;
mod scores;

pub use dense::Dense;
pub use scores::Scores;

use serde::{Deserialize, Serialize};

use crate::model::BinaryMatrix;
use crate::rtlgen::fold::{LayerFold, LayerShape};
use crate::synth::estimate::LayerEstimate;

/// The shape of the ±1 values between two layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Values per position.
    pub channels: usize,
}

impl Shape {
    /// A flat vector of `n` values (what a dense layer produces).
    pub fn flat(n: usize) -> Shape {
        Shape {
            height: 1,
            width: 1,
            channels: n,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.height, self.width, self.channels)
    }
}

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

    /// The shape it hands on when it receives `input` (for [`Produces::Scores`], one value per
    /// class).
    fn output_shape(&self, input: Shape) -> Shape;

    /// Checks the layer against the shape it receives; the message names what is wrong.
    fn check(&self, input: Shape) -> Result<(), String>;

    /// Size in bits: every binary weight plus every threshold, a threshold of a layer with `N`
    /// inputs per neuron taking [`crate::model::threshold_bits`]`(N)` bits.
    fn size_bits(&self) -> u64;

    /// Binary weights held.
    fn weight_bits(&self) -> u64;

    /// Executes the layer on packed `input`: the popcounts (or scores) go to `counts`; a layer
    /// that hands on bits writes them, packed, to `out`.
    fn execute(&self, input: &[u64], counts: &mut Vec<u32>, out: &mut Vec<u64>);

    /// The same straight from the numeric definition (±1 products summed as integers), on one
    /// `bool` per value (`true` = `+1`): the bits handed on, or the scores as integers.
    fn by_definition(&self, input: &[bool]) -> Values;
}

/// What a layer is in hardware: its core, folded, in the generated pipeline.
pub trait Hardware {
    /// The matrix its folded unit computes (inputs per neuron, neurons): the space its folding
    /// (`PE` neurons in parallel, `SIMD` inputs per neuron per cycle) ranges over.
    fn unit(&self) -> LayerShape;

    /// Checks a folding; the message names what is wrong.
    fn check_fold(&self, f: LayerFold) -> Result<(), String> {
        let s = self.unit();
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

    /// Compute cycles per image under `f` (the cycle model adds one hand-over cycle).
    fn steps(&self, f: LayerFold) -> usize {
        self.unit().steps(f)
    }

    /// Estimated resources under `f`.
    fn estimate(&self, f: LayerFold) -> LayerEstimate;

    /// Its memory images under `f`.
    fn images(&self, f: LayerFold) -> Vec<MemoryImage>;

    /// Width in bits of the stream it hands on.
    fn output_width(&self) -> usize;

    /// Its core instantiated in the top level at `site`.
    fn instantiate(&self, site: &Site) -> String;
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
    /// The output layer: binary dense, class scores are its popcounts.
    Scores(Scores),
}

impl Layer {
    /// What it computes.
    pub fn semantics(&self) -> &dyn Semantics {
        match self {
            Layer::Dense(l) => l,
            Layer::Scores(l) => l,
        }
    }

    /// What it is in hardware.
    pub fn hardware(&self) -> &dyn Hardware {
        match self {
            Layer::Dense(l) => l,
            Layer::Scores(l) => l,
        }
    }

    /// The dense layer, if it is one.
    pub fn as_dense(&self) -> Option<&Dense> {
        match self {
            Layer::Dense(l) => Some(l),
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
