//! The resource model: LUTs, flip-flops and block RAM of a design before synthesis, for the
//! Xilinx 7-series target, from the model's shape and the folding.
//!
//! Each term counts a structure of the RTL (see docs/hardware.md), and its coefficient is the
//! number of LUTs Yosys's `synth_xilinx` spends per bit of it, fitted by least squares on a set
//! of synthesized designs (`scripts/calibrate_estimate.py`). `tests/synth.rs` holds the
//! estimate within [`LUT_TOLERANCE`] of Yosys's count on designs it was not fitted on.

use serde::Serialize;

use crate::layers::Shape;
use crate::rtlgen::bits_for;
use crate::rtlgen::fold::{LayerFold, LayerShape};

/// Relative tolerance the LUT estimate is held to against Yosys (tests/synth.rs).
pub const LUT_TOLERANCE: f64 = 0.30;

/// A weight memory of at least this many words is asked to be block RAM (`cbnn_rom`).
pub const BLOCK_MIN_DEPTH: usize = 64;

/// LUTs per bit of each structure (fitted; see the module comment).
#[derive(Clone, Copy, Debug)]
struct Coefficients {
    /// Per XNOR-popcount input bit (`PE * SIMD`), including the accumulator's share.
    popcount: f64,
    /// Per popcount input bit of a fully parallel layer, whose weights are constants (the
    /// XNOR folds away).
    popcount_const: f64,
    /// Per accumulator bit (`PE * ceil(log2(N + 1))`): each neuron in parallel adds its count
    /// and compares it.
    accumulate: f64,
    /// Per input bit of the input-chunk multiplexer (`SIMD * SF` when `SF > 1`).
    chunk_mux: f64,
    /// Per result bit held and written by neuron fold (`MP * BW`).
    result: f64,
    /// Per bit of a weight or threshold memory kept in LUTs (`width * lut_rom_weight(depth)`).
    rom: f64,
    /// Per feature bit gathered by the input unpacker.
    unpack: f64,
    /// Per layer (control).
    layer: f64,
    /// Once (argmax, output slice, glue), per class score bit.
    output: f64,
}

/// Fitted on 23 designs (`scripts/calibrate_estimate.py`, docs/hardware.md) from 700 to
/// 37 500 LUTs: 22 within 31 % of Yosys, the largest (the MNIST baseline at 252 cycles per
/// image, 256 neurons in parallel) 38 % under. The per-layer control and the unpacker (a shift
/// register) came out at zero LUTs beside the other terms.
const XILINX: Coefficients = Coefficients {
    popcount: 2.212,
    popcount_const: 0.913,
    accumulate: 0.188,
    chunk_mux: 0.503,
    result: 3.598,
    rom: 1.887,
    unpack: 0.0,
    layer: 0.0,
    output: 0.185,
};

/// Estimated resources of one layer.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LayerEstimate {
    /// The bits of each structure the LUT count is made of (see the module comment).
    pub terms: Terms,
    /// LUTs.
    pub luts: f64,
    /// Flip-flops.
    pub ffs: u64,
    /// 18-kbit block RAMs.
    pub ramb18: u64,
    /// 36-kbit block RAMs.
    pub ramb36: u64,
}

/// Bits of each structure the LUT estimate counts; each has its fitted LUTs-per-bit coefficient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Terms {
    /// Layers.
    pub layer: f64,
    /// XNOR-popcount input bits.
    pub popcount: f64,
    /// Popcount input bits against constant weights.
    pub popcount_const: f64,
    /// Accumulator bits.
    pub accumulate: f64,
    /// Input-chunk multiplexer input bits.
    pub chunk_mux: f64,
    /// Result bits.
    pub result: f64,
    /// Memory bits in LUTs.
    pub rom: f64,
    /// Unpacker feature bits.
    pub unpack: f64,
    /// Output score bits.
    pub output: f64,
}

impl Terms {
    fn luts(&self, c: &Coefficients) -> f64 {
        self.layer * c.layer
            + self.popcount * c.popcount
            + self.popcount_const * c.popcount_const
            + self.accumulate * c.accumulate
            + self.chunk_mux * c.chunk_mux
            + self.result * c.result
            + self.rom * c.rom
            + self.unpack * c.unpack
            + self.output * c.output
    }

    fn add(&mut self, o: &Terms) {
        self.layer += o.layer;
        self.popcount += o.popcount;
        self.popcount_const += o.popcount_const;
        self.accumulate += o.accumulate;
        self.chunk_mux += o.chunk_mux;
        self.result += o.result;
        self.rom += o.rom;
        self.unpack += o.unpack;
        self.output += o.output;
    }
}

/// Estimated resources of a design.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Estimate {
    /// The bits of each structure, summed over the design.
    pub terms: Terms,
    /// Per layer.
    pub layers: Vec<LayerEstimate>,
    /// LUTs in total (layers, unpacker, output).
    pub luts: u64,
    /// Flip-flops in total.
    pub ffs: u64,
    /// 18-kbit block RAMs.
    pub ramb18: u64,
    /// 36-kbit block RAMs.
    pub ramb36: u64,
    /// Block RAM bits (capacity of the blocks).
    pub bram_bits: u64,
}

/// The cost the automatic folding minimises: LUTs plus this many per 18-kbit block RAM.
pub const BRAM18_LUT_EQUIVALENT: f64 = 60.0;

impl Estimate {
    /// LUTs plus block RAM at [`BRAM18_LUT_EQUIVALENT`] LUTs a RAMB18 (two a RAMB36).
    pub fn cost(&self) -> f64 {
        self.luts as f64 + (self.ramb18 + 2 * self.ramb36) as f64 * BRAM18_LUT_EQUIVALENT
    }
}

impl LayerEstimate {
    /// LUTs plus block RAM, as [`Estimate::cost`].
    pub fn cost(&self) -> f64 {
        self.luts + (self.ramb18 + 2 * self.ramb36) as f64 * BRAM18_LUT_EQUIVALENT
    }
}

/// Block RAMs for a `width` x `depth` read-only memory: `(RAMB18, RAMB36)`, the cheapest
/// aspect ratio of one kind by Yosys's own costs (129 a RAMB18, 257 a RAMB36).
pub fn brams_for(width: usize, depth: usize) -> (u64, u64) {
    let count = |shapes: &[(usize, usize)]| {
        shapes
            .iter()
            .map(|&(d, w)| (width.div_ceil(w) * depth.div_ceil(d)) as u64)
            .min()
            .expect("non-empty")
    };
    let n18 = count(&[
        (512, 36),
        (1024, 18),
        (2048, 9),
        (4096, 4),
        (8192, 2),
        (16384, 1),
    ]);
    let n36 = count(&[
        (512, 72),
        (1024, 36),
        (2048, 18),
        (4096, 9),
        (8192, 4),
        (16384, 2),
        (32768, 1),
    ]);
    if 129 * n18 <= 257 * n36 {
        (n18, 0)
    } else {
        (0, n36)
    }
}

/// LUTs per output bit of a ROM of `depth` words built from LUT6s: one per 64 words, but a
/// ROM of a few words is mostly constants and single address bits that fold into the logic
/// after it.
fn lut_rom_weight(depth: usize) -> f64 {
    match depth {
        0..=2 => 0.0,
        3..=8 => 0.5,
        _ => depth.div_ceil(64) as f64,
    }
}

/// Adds a read-only memory to a layer's estimate: block RAM from [`BLOCK_MIN_DEPTH`] words,
/// else LUTs and its output register.
fn memory(width: usize, depth: usize, t: &mut Terms, e: &mut LayerEstimate) {
    if depth >= BLOCK_MIN_DEPTH {
        let (n18, n36) = brams_for(width, depth);
        e.ramb18 += n18;
        e.ramb36 += n36;
    } else {
        t.rom += width as f64 * lut_rom_weight(depth);
        e.ffs += width as u64;
    }
}

/// Estimate for one layer; `scores` for the output layer.
pub fn layer(s: &LayerShape, f: LayerFold, scores: bool) -> LayerEstimate {
    let (nf, sf) = (s.nf(f), s.sf(f));
    let depth = nf * sf;
    let cw = bits_for(s.inputs);
    let tw = bits_for(s.inputs + 1);
    let bw = if scores { cw } else { 1 };
    let np = sf * f.simd;
    let mp = nf * f.pe;
    let weight_width = f.pe * f.simd;
    let fully_parallel = depth == 1;
    let mut t = Terms {
        layer: 1.0,
        popcount: if fully_parallel {
            0.0
        } else {
            (f.pe * f.simd) as f64
        },
        popcount_const: if fully_parallel {
            (f.pe * f.simd) as f64
        } else {
            0.0
        },
        result: (mp * bw) as f64,
        accumulate: (f.pe * cw) as f64,
        chunk_mux: if sf > 1 { np as f64 } else { 0.0 },
        ..Terms::default()
    };
    let mut e = LayerEstimate {
        ffs: (np + f.pe * cw + mp * bw + s.outputs * bw + 8) as u64,
        ..LayerEstimate::default()
    };
    if !fully_parallel {
        memory(weight_width, depth, &mut t, &mut e);
        if !scores {
            memory(f.pe * tw, nf, &mut t, &mut e);
        }
    }
    if f.pipe > 0 {
        e.ffs += (f.pe * bits_for(f.simd) + f.pe * tw + 8) as u64;
    }
    e.luts = t.luts(&XILINX);
    e.terms = t;
    e
}

/// A unit's estimate plus the unpacker that gathers its input when it comes as a stream of
/// more than one pixel (a dense layer after a convolution or a pool).
pub fn gathered(mut e: LayerEstimate, input: Shape) -> LayerEstimate {
    if input.height * input.width > 1 {
        let bits = input.len();
        e.terms.unpack += bits as f64;
        e.ffs += bits as u64;
        e.luts = e.terms.luts(&XILINX);
    }
    e
}

/// Flip-flops of a sliding-window unit over `input` (`cbnn_swu.v`): the line buffers (`k - 1`
/// rows of the padded image plus `k - 1` positions), the window register and the counters. Its
/// LUTs (counters and comparisons, a few dozen) are not in the model yet: the resource model
/// has not been fitted on convolutional designs.
pub fn window_ffs(input: Shape, kernel: usize, pad: usize) -> u64 {
    let (hp, wp) = (input.height + 2 * pad, input.width + 2 * pad);
    let held = (kernel - 1) * wp + kernel - 1;
    ((held + kernel * kernel) * input.channels + bits_for(hp) + bits_for(wp) + 1) as u64
}

/// A streaming max-pool over `input` (`cbnn_pool.v`): the queue of a row of windows' partial
/// results, the row's partial result, the output register and the counters (flip-flops only,
/// as for [`window_ffs`]).
pub fn pool(input: Shape, size: usize) -> LayerEstimate {
    let c = input.channels;
    LayerEstimate {
        ffs: ((input.width / size + 2) * c
            + bits_for(input.height)
            + bits_for(input.width)
            + 2 * bits_for(size)
            + 1) as u64,
        ..LayerEstimate::default()
    }
}

/// Estimate for a model under a folding: every layer's own estimate (its kind's, given the
/// stream it receives), plus the input unpacker (when the first layer takes a vector) and the
/// output stage.
pub fn for_model(model: &crate::model::IntModel, fold: &[LayerFold]) -> Estimate {
    let layers: Vec<LayerEstimate> = model
        .layers
        .iter()
        .zip(fold)
        .zip(crate::rtlgen::layer_inputs(model))
        .map(|((l, &f), input)| l.hardware().estimate(input, f))
        .collect();
    let out = crate::rtlgen::output_packing(model);
    let features = if crate::rtlgen::streams_in(model) {
        0
    } else {
        model.features()
    };
    let score_bits = out.classes * out.score_bits;
    let mut terms = Terms {
        unpack: features as f64,
        output: score_bits as f64,
        ..Terms::default()
    };
    for l in &layers {
        terms.add(&l.terms);
    }
    let luts = terms.luts(&XILINX);
    let ramb18: u64 = layers.iter().map(|l| l.ramb18).sum();
    let ramb36: u64 = layers.iter().map(|l| l.ramb36).sum();
    let ffs = layers.iter().map(|l| l.ffs).sum::<u64>() + features as u64 + 3 * score_bits as u64;
    Estimate {
        terms,
        layers,
        luts: luts.round() as u64,
        ffs,
        ramb18,
        ramb36,
        bram_bits: (ramb18 + 2 * ramb36) * 18 * 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bram_count_takes_the_cheapest_shape() {
        assert_eq!(brams_for(1024, 130), (29, 0));
        assert_eq!(brams_for(18, 1000), (1, 0));
        assert_eq!(brams_for(18, 1440), (0, 1));
        assert_eq!(brams_for(125, 1024), (7, 0));
    }

    #[test]
    fn more_parallel_costs_more_logic() {
        let s = LayerShape {
            inputs: 784,
            outputs: 160,
        };
        let a = layer(&s, LayerFold::new(16, 64), false);
        let b = layer(&s, LayerFold::new(32, 128), false);
        assert!(b.luts > 2.0 * a.luts * 0.8);
    }
}
