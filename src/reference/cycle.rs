//! The cycle model: when every output beat of the accelerator completes its handshake.
//!
//! The accelerator (docs/hardware.md) is a chain of stages joined by valid/ready handshakes,
//! every valid and ready driven by registers only: an input unpacker that gathers `beats` input
//! beats into one feature vector, one matrix-vector unit per layer that needs `steps` cycles
//! per image, and a two-entry output register slice (skid buffer). This model chains the
//! cycle models of those same state machines (`super::stream`) cycle by cycle for a given
//! input-valid/output-ready schedule, so it predicts the exact cycle of every handshake. The
//! content of each output beat (class and scores) is the reference executor's; this module
//! only adds time. It knows nothing of the RTL beyond this timing contract.

/// Timing of a design: beats per image and compute steps per image of each layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Input beats per image.
    pub beats: usize,
    /// Compute cycles per image of each layer, input side first.
    pub steps: Vec<usize>,
}

/// Who drives the stream handshakes: free-running, or randomly stalled from a seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// `None`: the source always offers its next beat and the sink is always ready.
    pub stall_seed: Option<u64>,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Schedule {
    /// Free-running.
    pub const FREE: Schedule = Schedule { stall_seed: None };

    fn coin(&self, t: u64, stream: u64) -> bool {
        match self.stall_seed {
            None => true,
            // Three chances in four: random idle cycles and back-pressure, about one in four.
            Some(seed) => !(mix(mix(seed) ^ (t << 1 | stream)) >> 32).is_multiple_of(4),
        }
    }

    /// Whether an idle source starts offering its next beat in cycle `t`. (Once offered, a beat
    /// stays valid until it is accepted, as AXI4-Stream requires.)
    pub fn source_go(&self, t: u64) -> bool {
        self.coin(t, 0)
    }

    /// Whether the sink is ready in cycle `t`.
    pub fn sink_ready(&self, t: u64) -> bool {
        self.coin(t, 1)
    }
}

/// Predicted cycle of each output handshake, one per image, for `images` images sent back to
/// back (cycle 0 is the first cycle after reset). `None` if the design stops producing outputs
/// within `max_cycles`.
pub fn output_cycles(
    timing: &Timing,
    images: usize,
    sched: Schedule,
    max_cycles: u64,
) -> Option<Vec<u64>> {
    use super::stream::{self, Mvtu, Skid, Stage, Unpack};
    let mut unpack = Unpack::new(timing.beats);
    let mut units: Vec<Mvtu> = timing.steps.iter().map(|&s| Mvtu::new(s)).collect();
    let mut skid = Skid::default();
    let mut chain: Vec<&mut dyn Stage> = vec![&mut unpack];
    chain.extend(units.iter_mut().map(|u| u as &mut dyn Stage));
    chain.push(&mut skid);
    stream::output_cycles(&mut chain, images * timing.beats, images, sched, max_cycles)
}

/// Latency (first input beat to first output, free-running) and initiation interval (cycles
/// between consecutive outputs in steady state) of a design.
pub fn latency_and_interval(timing: &Timing) -> (u64, u64) {
    let many =
        output_cycles(timing, 4, Schedule::FREE, u64::MAX).expect("free-running design finishes");
    (many[0], many[3] - many[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_stage_free_running() {
        // 2 beats, one layer of 3 steps: beats at 0,1; vector full at 2 -> load at 2;
        // steps at 3,4,5; result valid at 6, in the output register at 7, taken at once.
        let t = Timing {
            beats: 2,
            steps: vec![3],
        };
        let out = output_cycles(&t, 3, Schedule::FREE, 1000).unwrap();
        assert_eq!(out[0], 7);
        // The layer (3 steps + 1) is the bottleneck: one image every 4 cycles.
        assert_eq!(out[1] - out[0], 4);
        assert_eq!(out[2] - out[1], 4);
        assert_eq!(latency_and_interval(&t), (7, 4));
    }

    #[test]
    fn input_bound_pipeline_and_stalls_only_delay() {
        let t = Timing {
            beats: 5,
            steps: vec![2, 1, 1],
        };
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
