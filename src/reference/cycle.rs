//! The cycle model: when every output beat of the accelerator completes its handshake.
//!
//! The accelerator (docs/hardware.md) is a chain of stages joined by valid/ready handshakes,
//! every valid and ready driven by registers only: for a perceptron an input unpacker that
//! gathers `beats` input beats into one feature vector, one matrix-vector unit per layer that
//! needs `steps` cycles per image, and a two-entry output register slice (skid buffer); a
//! convolutional network adds an input splitter, sliding-window units, max-pools and FIFOs
//! between layers, a logic-mapped one is a register pipeline ([`StageTiming`]). This model
//! chains the cycle models of those same state machines (`super::stream`) cycle by cycle for a given
//! input-valid/output-ready schedule, so it predicts the exact cycle of every handshake. The
//! content of each output beat (class and scores) is the reference executor's; this module
//! only adds time. It knows nothing of the RTL beyond this timing contract.

/// One streaming stage of a design and what its timing depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageTiming {
    /// Gathers `beats` beats into one vector (`rtl/cbnn_unpack.v`).
    Unpack {
        /// Beats a vector.
        beats: usize,
    },
    /// A matrix-vector unit of `steps` compute cycles a vector (`rtl/cbnn_mvtu.v`).
    Unit {
        /// `NF * SF + PIPE`.
        steps: usize,
    },
    /// A sliding-window unit over `height x width` images (`rtl/cbnn_swu.v`).
    Window {
        /// Image rows.
        height: usize,
        /// Image columns.
        width: usize,
        /// Window side.
        kernel: usize,
        /// Padding positions on each side.
        pad: usize,
    },
    /// A max-pool of `size x size`, stride `size`, over `height x width` images
    /// (`rtl/cbnn_pool.v`).
    Pool {
        /// Image rows.
        height: usize,
        /// Image columns.
        width: usize,
        /// Window side and stride.
        size: usize,
    },
    /// Hands on the pixels of beats of `per_beat` pixels one a beat (`rtl/cbnn_split.v`).
    Split {
        /// Pixels a beat.
        per_beat: usize,
        /// Pixels an image.
        pixels: usize,
    },
    /// A first-in first-out buffer of `depth` beats between two layers (`rtl/cbnn_fifo.v`).
    Fifo {
        /// Beats held.
        depth: usize,
    },
    /// The output register slice (`rtl/cbnn_skid.v`).
    Skid,
    /// A logic-mapped pipeline of `stages` clock-enabled register stages and its output
    /// register slice (`rtl/cbnn_pipe.v`, `rtl/cbnn_skid.v`).
    Pipeline {
        /// Register stages in front of the slice.
        stages: usize,
    },
}

impl StageTiming {
    fn model(self) -> Model {
        match self {
            StageTiming::Unpack { beats } => Model::Unpack(Unpack::new(beats)),
            StageTiming::Unit { steps } => Model::Unit(Mvtu::new(steps)),
            StageTiming::Window {
                height,
                width,
                kernel,
                pad,
            } => Model::Window(SlidingWindow::new(height, width, kernel, pad)),
            StageTiming::Pool {
                height,
                width,
                size,
            } => Model::Pool(MaxPool::new(height, width, size)),
            StageTiming::Fifo { depth } => Model::Fifo(Fifo::new(depth)),
            StageTiming::Split { per_beat, pixels } => Model::Split(Split::new(per_beat, pixels)),
            StageTiming::Skid => Model::Skid(Skid::default()),
            StageTiming::Pipeline { stages } => Model::Pipeline(Pipeline::new(stages)),
        }
    }
}

/// The cycle model of one stage, by kind.
enum Model {
    Unpack(Unpack),
    Unit(Mvtu),
    Window(SlidingWindow),
    Pool(MaxPool),
    Fifo(Fifo),
    Split(Split),
    Skid(Skid),
    Pipeline(Pipeline),
}

macro_rules! each_model {
    ($m:expr, $s:ident => $e:expr) => {
        match $m {
            Model::Unpack($s) => $e,
            Model::Unit($s) => $e,
            Model::Window($s) => $e,
            Model::Pool($s) => $e,
            Model::Fifo($s) => $e,
            Model::Split($s) => $e,
            Model::Skid($s) => $e,
            Model::Pipeline($s) => $e,
        }
    };
}

impl Stage for Model {
    #[inline]
    fn ready(&self) -> bool {
        each_model!(self, s => s.ready())
    }

    #[inline]
    fn valid(&self) -> bool {
        each_model!(self, s => s.valid())
    }

    #[inline]
    fn clock(&mut self, in_valid: bool, out_ready: bool) {
        each_model!(self, s => s.clock(in_valid, out_ready))
    }
}

/// Timing of a design: input beats per image and its stages, input side first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Input beats per image.
    pub beats: usize,
    /// The stages, input side first.
    pub stages: Vec<StageTiming>,
}

impl Timing {
    /// A perceptron's design: the unpacker of `beats` beats, one unit per layer of `steps`
    /// compute cycles, the register slice.
    pub fn perceptron(beats: usize, steps: &[usize]) -> Timing {
        let mut stages = vec![StageTiming::Unpack { beats }];
        stages.extend(steps.iter().map(|&steps| StageTiming::Unit { steps }));
        stages.push(StageTiming::Skid);
        Timing { beats, stages }
    }
}

use super::schedule::Schedule;
use super::stream::{
    self, Fifo, MaxPool, Mvtu, Pipeline, Skid, SlidingWindow, Split, Stage, Unpack,
};

/// Predicted cycle of each output handshake, one per image, for `images` images sent back to
/// back (cycle 0 is the first cycle after reset). `None` if the design stops producing outputs
/// within `max_cycles`.
pub fn output_cycles(
    timing: &Timing,
    images: usize,
    sched: Schedule,
    max_cycles: u64,
) -> Option<Vec<u64>> {
    handshakes(timing, images, sched, max_cycles).map(|h| h.outputs)
}

/// [`output_cycles`], with the cycle of each image's first input handshake beside them.
pub fn handshakes(
    timing: &Timing,
    images: usize,
    sched: Schedule,
    max_cycles: u64,
) -> Option<stream::Handshakes> {
    let mut models: Vec<Model> = timing.stages.iter().map(|s| s.model()).collect();
    stream::chain_handshakes(
        &mut models,
        images * timing.beats,
        timing.beats,
        images,
        sched,
        max_cycles,
    )
}

/// The free-running timing of a design, from eight images sent back to back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeRunning {
    /// The cycle of the first image's first input handshake (cycle 0 is the first after
    /// reset; later when the first layer walks positions before it takes a pixel, as a "same"
    /// convolution does over its top padding).
    pub first_input: u64,
    /// The cycle of the first image's output handshake.
    pub first_output: u64,
    /// The cycles between the 7th and the 8th output handshakes.
    pub interval: u64,
}

impl FreeRunning {
    /// Cycles from the first image's first input handshake to its output handshake.
    pub fn latency(&self) -> u64 {
        self.first_output - self.first_input
    }
}

/// The free-running timing of a design.
pub fn free_running(timing: &Timing) -> FreeRunning {
    let h = handshakes(timing, 8, Schedule::FREE, u64::MAX).expect("free-running design finishes");
    FreeRunning {
        first_input: h.first_inputs[0],
        first_output: h.outputs[0],
        interval: h.outputs[7] - h.outputs[6],
    }
}

/// Latency (the first image's first input handshake to its output handshake, free-running)
/// and initiation interval (cycles between consecutive outputs in steady state: the 7th and
/// the 8th of eight images) of a design.
pub fn latency_and_interval(timing: &Timing) -> (u64, u64) {
    let f = free_running(timing);
    (f.latency(), f.interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_stage_free_running() {
        // 2 beats, one layer of 3 steps: beats at 0,1; vector full at 2 -> load at 2;
        // steps at 3,4,5; result valid at 6, in the output register at 7, taken at once.
        let t = Timing::perceptron(2, &[3]);
        let out = output_cycles(&t, 3, Schedule::FREE, 1000).unwrap();
        assert_eq!(out[0], 7);
        // The layer (3 steps + 1) is the bottleneck: one image every 4 cycles.
        assert_eq!(out[1] - out[0], 4);
        assert_eq!(out[2] - out[1], 4);
        assert_eq!(latency_and_interval(&t), (7, 4));
    }

    /// A "same" convolution first walks its top padding row and one padding position
    /// (`W + 2 pad + 1` positions, `s_axis_tready` low) before it takes the first pixel; the
    /// latency counts from that handshake, not from reset.
    #[test]
    fn latency_counts_from_the_first_input_handshake() {
        let same = |pad| Timing {
            beats: 16,
            stages: vec![
                StageTiming::Window {
                    height: 4,
                    width: 4,
                    kernel: 3,
                    pad,
                },
                StageTiming::Unit { steps: 1 },
                StageTiming::Unpack {
                    beats: 16 - 12 * (1 - pad),
                },
                StageTiming::Unit { steps: 2 },
                StageTiming::Skid,
            ],
        };
        let f = free_running(&same(1));
        assert_eq!(f.first_input, 4 + 2 + 1);
        assert_eq!(latency_and_interval(&same(1)).0, f.first_output - 7);
        // "valid": the first pixel is taken in cycle 0.
        let v = free_running(&same(0));
        assert_eq!(v.first_input, 0);
        assert_eq!(v.latency(), v.first_output);
    }

    #[test]
    fn input_bound_pipeline_and_stalls_only_delay() {
        let t = Timing::perceptron(5, &[2, 1, 1]);
        let (_, ii) = latency_and_interval(&t);
        assert_eq!(ii, 6); // the unpacker: 5 beats + 1 hand-over cycle
        let free = output_cycles(&t, 20, Schedule::FREE, 10_000).unwrap();
        let stalled = output_cycles(
            &t,
            20,
            Schedule {
                stall_seed: Some(3),
            },
            10_000,
        )
        .unwrap();
        for (a, b) in free.iter().zip(&stalled) {
            assert!(b >= a);
        }
        assert!(stalled.windows(2).all(|w| w[1] > w[0]));
    }
}
