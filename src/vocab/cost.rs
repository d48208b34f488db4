//! The per-layer resource model: LUTs, flip-flops and block RAM of each structure of the RTL
//! (a folded unit, a window buffer, a pool, a FIFO, tables, group sums) for the Xilinx
//! 7-series target, and their sum over a design.
//!
//! Each term counts a structure of the RTL (see docs/hardware.md), and its coefficient is the
//! number of LUTs Yosys's `synth_xilinx` spends per bit of it, fitted by least squares on a set
//! of synthesized designs (`scripts/calibrate_estimate.py`). `tests/synth.rs` holds the
//! estimate within [`LUT_TOLERANCE`] of Yosys's count on designs it was not fitted on.
//!
//! Vocabulary of the layer kinds (each answers its own estimate with these) and of the
//! design-level estimate ([`crate::synth::estimate`]). Never: knows about layer kinds, models
//! or designs.

use serde::Serialize;

use crate::vocab::bits::bits_for;
use crate::vocab::fold::{LayerFold, LayerShape};
use crate::vocab::shape::Shape;

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
    /// Per LUT used as a shift register (SRL) in a line buffer or a pool's row queue.
    shift_reg: f64,
    /// Per LUT used as distributed RAM by a FIFO (or per four bits of a FIFO in flip-flops).
    lutram: f64,
    /// Per pixel bit (channel) of a sliding-window unit.
    window: f64,
    /// Per channel of a max-pool.
    pool: f64,
    /// Per streaming core (sliding window, pool, FIFO, split): its counters and handshake.
    stream: f64,
    /// Per truth-table neuron of at most six inputs: one LUT.
    tables: f64,
    /// Per input bit of a group sum's popcount (six-bit table leaves, then adders).
    group_sum: f64,
}

/// Fitted on 23 designs (`scripts/calibrate_estimate.py`, docs/hardware.md) from 700 to
/// 37 500 LUTs: 22 within 31 % of Yosys, the largest (the MNIST baseline at 252 cycles per
/// image, 256 neurons in parallel) 38 % under. The per-layer control and the unpacker (a shift
/// register) came out at zero LUTs beside the other terms.
///
/// The streaming cores' terms are the cores' own LUTs, measured by synthesizing each core alone
/// over a range of parameters (`scripts/calibrate_conv.sh`): shift registers and distributed
/// RAM are LUTs one for one; beside them a sliding-window unit spends about a LUT per channel,
/// a max-pool three, and each core some 20 on its counters and handshake. Left as measured (a
/// least-squares fit on whole designs cannot separate them from the far larger unit terms), they
/// hold the model within 30 % of Yosys on the 12 convolutional designs of that script.
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
    shift_reg: 1.0,
    lutram: 1.0,
    window: 1.0,
    pool: 3.0,
    stream: 20.0,
    tables: 1.0,
    group_sum: 1.5,
};

/// A layer of `neurons` truth-table neurons of `fan_in <= 6` inputs: a LUT each (what a
/// neuron is, `tests/synth.rs::yosys_maps_a_six_input_truth_table_neuron_to_one_lut6`), and
/// its register stage.
pub fn tables(neurons: usize, fan_in: usize) -> LayerEstimate {
    debug_assert!(fan_in <= 6);
    let terms = Terms {
        tables: neurons as f64,
        ..Terms::default()
    };
    LayerEstimate {
        luts: terms.luts(&XILINX),
        terms,
        ffs: neurons as u64,
        ..LayerEstimate::default()
    }
}

/// The group sums of a logic-mapped design over `bits` values: popcount trees with six-bit
/// table leaves (`cbnn_popcount` with `LEAF = 6`), which Yosys maps to about 1.5 LUTs an input
/// bit from 50 bits a group up (74 LUTs for 50, 147 for 100, 322 for 200, measured on the core
/// alone; docs/hardware.md).
pub fn group_sums(bits: usize) -> LayerEstimate {
    let terms = Terms {
        group_sum: bits as f64,
        ..Terms::default()
    };
    LayerEstimate {
        luts: terms.luts(&XILINX),
        terms,
        ..LayerEstimate::default()
    }
}

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
    /// LUTs used as shift registers (line buffers, pool row queues).
    #[serde(default)]
    pub shift_reg: f64,
    /// LUTs used as distributed RAM by the FIFOs.
    #[serde(default)]
    pub lutram: f64,
    /// Sliding-window channels.
    #[serde(default)]
    pub window: f64,
    /// Max-pool channels.
    #[serde(default)]
    pub pool: f64,
    /// Streaming cores.
    #[serde(default)]
    pub stream: f64,
    /// Truth-table neurons of at most six inputs (one LUT each).
    #[serde(default)]
    pub tables: f64,
    /// Input bits of group-sum popcounts.
    #[serde(default)]
    pub group_sum: f64,
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
            + self.shift_reg * c.shift_reg
            + self.lutram * c.lutram
            + self.window * c.window
            + self.pool * c.pool
            + self.stream * c.stream
            + self.tables * c.tables
            + self.group_sum * c.group_sum
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
        self.shift_reg += o.shift_reg;
        self.lutram += o.lutram;
        self.window += o.window;
        self.pool += o.pool;
        self.stream += o.stream;
        self.tables += o.tables;
        self.group_sum += o.group_sum;
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

/// LUTs Yosys's `synth_xilinx` makes of a chain of `len` flip-flops with no tap inside: none
/// below 3 (they stay flip-flops), else one shift-register primitive (`SRL16E`, `SRLC32E`)
/// per 32 positions.
fn srl_luts(len: usize) -> usize {
    if len < 3 {
        0
    } else {
        len.div_ceil(32)
    }
}

/// A sliding-window unit over `input` (`cbnn_swu.v`): the line buffers (`k - 1` rows of the
/// padded image plus `k - 1` positions) of which the stretch between the last tap of a row
/// and the first of the next becomes shift-register LUTs, the window taps and the window
/// register in flip-flops, and the counters.
pub fn window(input: Shape, kernel: usize, pad: usize) -> LayerEstimate {
    let (hp, wp) = (input.height + 2 * pad, input.width + 2 * pad);
    let c = input.channels;
    let held = (kernel - 1) * wp + kernel - 1;
    let stretch = wp + 1 - kernel;
    let srl = if kernel > 1 {
        (kernel - 1) * srl_luts(stretch) * c
    } else {
        0
    };
    let held_ffs = if srl > 0 {
        (kernel * kernel - kernel) * c
    } else {
        held * c
    };
    estimate_of(
        Terms {
            shift_reg: srl as f64,
            window: c as f64,
            stream: 1.0,
            ..Terms::default()
        },
        (held_ffs + kernel * kernel * c + bits_for(hp) + bits_for(wp) + 1) as u64,
    )
}

/// A streaming max-pool over `input` (`cbnn_pool.v`): the queue of a row of windows' partial
/// results (shift-register LUTs once it is 3 windows long), the row's partial result and the
/// output register, the counters.
pub fn pool(input: Shape, size: usize) -> LayerEstimate {
    let c = input.channels;
    let queue = input.width / size;
    let srl = srl_luts(queue) * c;
    let queue_ffs = if srl > 0 { 0 } else { queue * c };
    estimate_of(
        Terms {
            shift_reg: srl as f64,
            pool: c as f64,
            stream: 1.0,
            ..Terms::default()
        },
        (queue_ffs
            + 2 * c
            + bits_for(input.height)
            + bits_for(input.width)
            + 2 * bits_for(size)
            + 1) as u64,
    )
}

/// A FIFO of `depth` beats of `width` bits (`cbnn_fifo.v`): distributed RAM (`RAM32M`, six
/// bits of 32 words in four LUTs; `RAM64M`, three bits of 64 words, in banks of 64 words)
/// unless it holds at most 16 bits in fewer than 8 words, where it stays flip-flops and a read
/// multiplexer (four bits a LUT).
pub fn fifo(width: usize, depth: usize) -> LayerEstimate {
    let in_ram = width * depth > 16 || depth >= 8;
    let (luts, ffs) = if !in_ram {
        ((width * depth).div_ceil(4), width * depth)
    } else if depth <= 32 {
        (4 * width.div_ceil(6), 0)
    } else {
        (4 * width.div_ceil(3) * depth.div_ceil(64), 0)
    };
    let aw = bits_for(depth.max(2) - 1);
    estimate_of(
        Terms {
            lutram: luts as f64,
            stream: 1.0,
            ..Terms::default()
        },
        (ffs + 2 * aw + bits_for(depth)) as u64,
    )
}

/// The splitter of a multi-pixel input beat into pixels (`cbnn_split.v`): the beat register
/// and the counters.
pub fn split(pixels_per_beat: usize, pixel_bits: usize, pixels: usize) -> LayerEstimate {
    estimate_of(
        Terms {
            stream: 1.0,
            ..Terms::default()
        },
        (pixels_per_beat * pixel_bits + bits_for(pixels_per_beat) + bits_for(pixels) + 1) as u64,
    )
}

fn estimate_of(terms: Terms, ffs: u64) -> LayerEstimate {
    LayerEstimate {
        luts: terms.luts(&XILINX),
        terms,
        ffs,
        ..LayerEstimate::default()
    }
}

/// Adds `o` (a core in front of a unit or beside it) to `e`.
pub fn merged(mut e: LayerEstimate, o: &LayerEstimate) -> LayerEstimate {
    e.terms.add(&o.terms);
    e.luts = e.terms.luts(&XILINX);
    e.ffs += o.ffs;
    e.ramb18 += o.ramb18;
    e.ramb36 += o.ramb36;
    e
}

/// The estimate of a whole design from its layers' estimates (FIFOs and input splitter merged
/// in), the `features` bits its input unpacker holds and the `score_bits` of its output stage.
pub fn design(layers: Vec<LayerEstimate>, features: usize, score_bits: usize) -> Estimate {
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
