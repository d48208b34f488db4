//! Who drives a design's stream handshakes in a simulation: the source and the sink always
//! willing (free-running), or idle cycles and back-pressure drawn from a seed. The cycle model
//! ([`super::cycle`], [`super::stream`]) and the co-simulation's harness follow the same
//! schedule, cycle for cycle.
//!
//! Never: models a core or reads a design.

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
