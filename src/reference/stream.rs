//! Cycle models of streaming stages: the timing of each hand-written core that hands on a
//! stream of beats, stepped cycle by cycle for a given input-valid/output-ready schedule.
//!
//! Every core keeps the hardware contract that its `s_axis_tready` and `m_axis_tvalid` are
//! functions of its registers only. A model therefore answers "ready?" and "valid?" from its
//! state alone, and one cycle of a chain is: read every stage's ready and valid, derive the
//! handshakes (`valid` of one stage and `ready` of the next), then clock every stage with the
//! handshakes it took part in. The content of the beats is the reference executor's business;
//! these models only add time, and they know nothing of the RTL beyond its timing.

use super::schedule::Schedule;

/// The timing of one streaming core.
pub trait Stage {
    /// `s_axis_tready` in the current cycle, from the registers.
    fn ready(&self) -> bool;
    /// `m_axis_tvalid` in the current cycle, from the registers.
    fn valid(&self) -> bool;
    /// The clock edge at the end of a cycle in which the upstream offered a beat
    /// (`in_valid`) and the downstream was ready (`out_ready`).
    fn clock(&mut self, in_valid: bool, out_ready: bool);
}

/// The sliding-window unit (`rtl/cbnn_swu.v`): walks the padded image of a convolution one
/// position a cycle, waits for an input beat at every image position, and hands on the window
/// completed by a position when its output register is empty.
#[derive(Clone, Debug)]
pub struct SlidingWindow {
    height: usize,
    width: usize,
    kernel: usize,
    pad: usize,
    y: usize,
    x: usize,
    out_valid: bool,
}

impl SlidingWindow {
    /// A unit over `height x width` images, `kernel x kernel` windows, `pad` padding positions
    /// on each side (0 for "valid", `(kernel - 1) / 2` for "same").
    pub fn new(height: usize, width: usize, kernel: usize, pad: usize) -> Self {
        SlidingWindow {
            height,
            width,
            kernel,
            pad,
            y: 0,
            x: 0,
            out_valid: false,
        }
    }

    fn padded(&self) -> (usize, usize) {
        (self.height + 2 * self.pad, self.width + 2 * self.pad)
    }

    fn in_image(&self) -> bool {
        let p = self.pad;
        (p..p + self.height).contains(&self.y) && (p..p + self.width).contains(&self.x)
    }

    fn completes(&self) -> bool {
        self.y + 1 >= self.kernel && self.x + 1 >= self.kernel
    }

    fn slot(&self) -> bool {
        !self.completes() || !self.out_valid
    }

    /// Free-running cycles per image in steady state with a sink that is always ready: the
    /// formula of the core's `cbnn-timing` line.
    pub fn image_cycles(&self) -> usize {
        let (hp, wp) = self.padded();
        let k = self.kernel;
        if k > 1 {
            hp * wp + (hp - k + 1) * (wp - k)
        } else {
            2 * self.height * self.width
        }
    }

    /// Free-running cycles per image in steady state when the unit behind takes a window at
    /// most every `unit` cycles (a matrix-vector unit: its steps plus one, at least 2) and the
    /// input always offers a pixel: a convolution's interval alone.
    ///
    /// Where the cycles go: a position that completes a window shifts only once the previous
    /// window has left the output register, which empties at the end of the cycle of its
    /// handshake, so a window leaves at most every two cycles; positions that complete none
    /// (the first `k - 1` of every padded row, the first `k - 1` padded rows of an image) shift
    /// one a cycle while a window waits, but never past a waiting window. When every output row
    /// has at least two windows this is
    /// `windows * unit + (rows - 1) * max(0, k + 2 - 2 unit) + max(0, (k - 1) * (Wp + 1) + 3 -
    /// 2 unit)` (`rows` output rows, `Wp` padded columns; at `unit = 2`,
    /// [`SlidingWindow::image_cycles`]); this steps the positions of three images and returns
    /// the third's cycles, which holds for any shape.
    pub fn image_cycles_with(&self, unit: usize) -> usize {
        let (hp, wp) = self.padded();
        let k = self.kernel;
        let unit = unit.max(1) as u64;
        // `next`: the cycle the walk reaches the next position; `taken`: the cycle the last
        // window's handshake happened (the unit was loaded), `None` before the first.
        let (mut next, mut taken) = (0u64, None::<u64>);
        let mut ends = [0u64; 3];
        for end in &mut ends {
            for y in 0..hp {
                for x in 0..wp {
                    if y + 1 >= k && x + 1 >= k {
                        let shift = taken.map_or(next, |h| next.max(h + 1));
                        let h = taken.map_or(shift + 1, |h| (shift + 1).max(h + unit));
                        taken = Some(h);
                        next = shift + 1;
                    } else {
                        next += 1;
                    }
                }
            }
            *end = taken.unwrap_or(next);
        }
        (ends[2] - ends[1]) as usize
    }
}

impl Stage for SlidingWindow {
    fn ready(&self) -> bool {
        self.in_image() && self.slot()
    }

    fn valid(&self) -> bool {
        self.out_valid
    }

    fn clock(&mut self, in_valid: bool, out_ready: bool) {
        let shift = self.slot() && (!self.in_image() || in_valid);
        let completes = self.completes();
        if shift && completes {
            self.out_valid = true;
        } else if out_ready {
            self.out_valid = false;
        }
        if shift {
            let (hp, wp) = self.padded();
            if self.x + 1 == wp {
                self.x = 0;
                self.y = if self.y + 1 == hp { 0 } else { self.y + 1 };
            } else {
                self.x += 1;
            }
        }
    }
}

/// The streaming max-pool (`rtl/cbnn_pool.v`): takes one pixel a cycle, and the pixel that
/// ends a `p x p` window only while its output register is empty.
#[derive(Clone, Debug)]
pub struct MaxPool {
    height: usize,
    width: usize,
    p: usize,
    y: usize,
    x: usize,
    /// `y % p` and `x % p`, kept as counters: `ready` is asked every cycle, and a division by
    /// a pool size known only at run time cost a tenth of a co-simulation's time.
    wy: usize,
    wx: usize,
    /// Rows and columns from these on end no window (a size not a multiple of `p`).
    last_y: usize,
    last_x: usize,
    out_valid: bool,
}

impl MaxPool {
    /// A pool of `p x p`, stride `p`, over `height x width` images.
    pub fn new(height: usize, width: usize, p: usize) -> Self {
        MaxPool {
            height,
            width,
            p,
            y: 0,
            x: 0,
            wy: 0,
            wx: 0,
            last_y: height / p * p,
            last_x: width / p * p,
            out_valid: false,
        }
    }

    fn ends_window(&self) -> bool {
        self.wy + 1 == self.p
            && self.wx + 1 == self.p
            && self.y < self.last_y
            && self.x < self.last_x
    }

    /// Free-running cycles per image with a sink that is always ready: the formula of the
    /// core's `cbnn-timing` line.
    pub fn image_cycles(&self) -> usize {
        self.height * self.width
    }
}

impl Stage for MaxPool {
    fn ready(&self) -> bool {
        !self.ends_window() || !self.out_valid
    }

    fn valid(&self) -> bool {
        self.out_valid
    }

    fn clock(&mut self, in_valid: bool, out_ready: bool) {
        let take = in_valid && self.ready();
        if take && self.ends_window() {
            self.out_valid = true;
        } else if out_ready {
            self.out_valid = false;
        }
        if take {
            let wrap = |v: usize, n: usize| if v + 1 == n { 0 } else { v + 1 };
            if self.x + 1 == self.width {
                self.x = 0;
                self.wx = 0;
                self.y = wrap(self.y, self.height);
                self.wy = if self.y == 0 {
                    0
                } else {
                    wrap(self.wy, self.p)
                };
            } else {
                self.x += 1;
                self.wx = wrap(self.wx, self.p);
            }
        }
    }
}

/// The input unpacker (`rtl/cbnn_unpack.v`): gathers `beats` input beats into one vector and
/// holds it until the next stage takes it.
#[derive(Clone, Debug)]
pub struct Unpack {
    beats: usize,
    count: usize,
    full: bool,
}

impl Unpack {
    /// An unpacker of `beats` beats a vector.
    pub fn new(beats: usize) -> Self {
        Unpack {
            beats,
            count: 0,
            full: false,
        }
    }
}

impl Stage for Unpack {
    fn ready(&self) -> bool {
        !self.full
    }

    fn valid(&self) -> bool {
        self.full
    }

    fn clock(&mut self, in_valid: bool, out_ready: bool) {
        if in_valid && !self.full {
            if self.count + 1 == self.beats {
                self.count = 0;
                self.full = true;
            } else {
                self.count += 1;
            }
        } else if self.full && out_ready {
            self.full = false;
        }
    }
}

/// The matrix-vector-threshold unit (`rtl/cbnn_mvtu.v`): takes a vector while idle, computes
/// for `steps` cycles, and waits in its last step while the previous result is unconsumed.
#[derive(Clone, Debug)]
pub struct Mvtu {
    steps: usize,
    busy: bool,
    step: usize,
    out_valid: bool,
}

impl Mvtu {
    /// A unit of `steps` compute cycles a vector (`NF * SF + PIPE`).
    pub fn new(steps: usize) -> Self {
        Mvtu {
            steps,
            busy: false,
            step: 0,
            out_valid: false,
        }
    }
}

impl Stage for Mvtu {
    fn ready(&self) -> bool {
        !self.busy
    }

    fn valid(&self) -> bool {
        self.out_valid
    }

    fn clock(&mut self, in_valid: bool, out_ready: bool) {
        let load = in_valid && !self.busy;
        let last = self.busy && self.step + 1 == self.steps;
        let advance = self.busy && (!last || !self.out_valid || out_ready);
        if self.out_valid && out_ready {
            self.out_valid = false;
        }
        if load {
            self.busy = true;
            self.step = 0;
        } else if advance {
            if last {
                self.busy = false;
                self.out_valid = true;
            } else {
                self.step += 1;
            }
        }
    }
}

/// The two-entry register slice on the output (`rtl/cbnn_skid.v`).
#[derive(Clone, Debug, Default)]
pub struct Skid {
    main: bool,
    spare: bool,
}

impl Stage for Skid {
    fn ready(&self) -> bool {
        !self.spare
    }

    fn valid(&self) -> bool {
        self.main
    }

    fn clock(&mut self, in_valid: bool, out_ready: bool) {
        if out_ready || !self.main {
            if self.spare {
                self.main = true;
                self.spare = false;
            } else {
                self.main = in_valid;
            }
        } else if in_valid && !self.spare {
            self.spare = true;
        }
    }
}

/// A logic-mapped pipeline: `stages` register stages (`rtl/cbnn_pipe.v`) with the
/// combinational layers between them, then the output register slice, every stage enabled by
/// the slice's registered ready. It takes a beat whenever the slice has room, moves as a whole
/// (bubbles included) or not at all, and so hands on one beat a cycle `stages + 1` cycles
/// after it took it, free-running.
#[derive(Clone, Debug)]
pub struct Pipeline {
    valid: Vec<bool>,
    skid: Skid,
}

impl Pipeline {
    /// A pipeline of `stages` register stages, at least 1, in front of its register slice.
    pub fn new(stages: usize) -> Self {
        assert!(stages >= 1, "a pipeline has at least its input register");
        Pipeline {
            valid: vec![false; stages],
            skid: Skid::default(),
        }
    }
}

impl Stage for Pipeline {
    fn ready(&self) -> bool {
        self.skid.ready()
    }

    fn valid(&self) -> bool {
        self.skid.valid()
    }

    fn clock(&mut self, in_valid: bool, out_ready: bool) {
        let enabled = self.skid.ready();
        let last = self.valid[self.valid.len() - 1];
        self.skid.clock(last, out_ready);
        if enabled {
            self.valid.rotate_right(1);
            self.valid[0] = in_valid;
        }
    }
}

/// The input splitter (`rtl/cbnn_split.v`): holds one beat of `per_beat` pixels and hands on
/// its pixels one a cycle (the padding of an image's last beat dropped), taking the next beat
/// the cycle after its last pixel has left.
#[derive(Clone, Debug)]
pub struct Split {
    per_beat: usize,
    pixels: usize,
    holding: bool,
    slot: usize,
    pixel: usize,
}

impl Split {
    /// A splitter of beats of `per_beat` pixels, `pixels` an image.
    pub fn new(per_beat: usize, pixels: usize) -> Self {
        Split {
            per_beat,
            pixels,
            holding: false,
            slot: 0,
            pixel: 0,
        }
    }
}

impl Stage for Split {
    fn ready(&self) -> bool {
        !self.holding
    }

    fn valid(&self) -> bool {
        self.holding
    }

    fn clock(&mut self, in_valid: bool, out_ready: bool) {
        if in_valid && !self.holding {
            self.holding = true;
        } else if self.holding && out_ready {
            let done = self.slot + 1 == self.per_beat || self.pixel + 1 == self.pixels;
            self.pixel = if self.pixel + 1 == self.pixels {
                0
            } else {
                self.pixel + 1
            };
            if done {
                self.holding = false;
                self.slot = 0;
            } else {
                self.slot += 1;
            }
        }
    }
}

/// A first-in first-out buffer of `depth` beats (`rtl/cbnn_fifo.v`).
#[derive(Clone, Debug)]
pub struct Fifo {
    depth: usize,
    count: usize,
}

impl Fifo {
    /// A FIFO of `depth` beats, at least 1.
    pub fn new(depth: usize) -> Self {
        Fifo { depth, count: 0 }
    }
}

impl Stage for Fifo {
    fn ready(&self) -> bool {
        self.count < self.depth
    }

    fn valid(&self) -> bool {
        self.count > 0
    }

    fn clock(&mut self, in_valid: bool, out_ready: bool) {
        let push = in_valid && self.ready();
        let pop = self.valid() && out_ready;
        self.count = self.count + usize::from(push) - usize::from(pop);
    }
}

impl<T: Stage + ?Sized> Stage for &mut T {
    fn ready(&self) -> bool {
        (**self).ready()
    }

    fn valid(&self) -> bool {
        (**self).valid()
    }

    fn clock(&mut self, in_valid: bool, out_ready: bool) {
        (**self).clock(in_valid, out_ready)
    }
}

/// The cycle of every output handshake of a chain of stages fed `beats` input beats by a
/// source and drained by a sink that follow `sched` (the harness's schedules, bit for bit),
/// until `outputs` beats have left. `None` if they have not within `max_cycles`.
pub fn output_cycles<'s>(
    stages: &mut [&mut (dyn Stage + 's)],
    beats: usize,
    outputs: usize,
    sched: Schedule,
    max_cycles: u64,
) -> Option<Vec<u64>> {
    chain_cycles(stages, beats, outputs, sched, max_cycles)
}

/// The handshakes of a run: when the source's beats and the sink's beats were taken.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handshakes {
    /// The cycle of the input handshake of beat `i * per_image` for every `i`: each image's
    /// first beat.
    pub first_inputs: Vec<u64>,
    /// The cycle of every output handshake.
    pub outputs: Vec<u64>,
}

/// [`output_cycles`] over stages of one type: a design's chain steps every cycle of a run (a
/// convolutional one millions of them), and stages of one type (an enum of the kinds) are
/// called without dynamic dispatch, several times faster.
pub fn chain_cycles<S: Stage>(
    stages: &mut [S],
    beats: usize,
    outputs: usize,
    sched: Schedule,
    max_cycles: u64,
) -> Option<Vec<u64>> {
    chain_handshakes(stages, beats, beats.max(1), outputs, sched, max_cycles).map(|h| h.outputs)
}

/// [`chain_cycles`], also recording the input handshake of the first of every `per_image`
/// beats (an image's first beat, from which its latency counts).
pub fn chain_handshakes<S: Stage>(
    stages: &mut [S],
    beats: usize,
    per_image: usize,
    outputs: usize,
    sched: Schedule,
    max_cycles: u64,
) -> Option<Handshakes> {
    let n = stages.len();
    let (mut sent, mut offering) = (0usize, false);
    let mut out = Vec::with_capacity(outputs);
    let mut first_inputs = Vec::with_capacity(beats / per_image.max(1) + 1);
    let mut t = 0u64;
    let mut valid = vec![false; n + 1];
    let mut ready = vec![false; n + 1];
    while out.len() < outputs {
        if t >= max_cycles {
            return None;
        }
        if !offering && sent < beats && sched.source_go(t) {
            offering = true;
        }
        // valid[i]: the beat offered to stage i; ready[i]: what stage i - 1 sees downstream.
        valid[0] = offering;
        for (i, s) in stages.iter().enumerate() {
            ready[i] = s.ready();
            valid[i + 1] = s.valid();
        }
        ready[n] = sched.sink_ready(t);
        if valid[n] && ready[n] {
            out.push(t);
        }
        if offering && ready[0] {
            if sent.is_multiple_of(per_image.max(1)) {
                first_inputs.push(t);
            }
            offering = false;
            sent += 1;
        }
        for (i, s) in stages.iter_mut().enumerate() {
            s.clock(valid[i], ready[i + 1]);
        }
        t += 1;
    }
    Some(Handshakes {
        first_inputs,
        outputs: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(h: usize, w: usize, k: usize, pad: usize, images: usize) -> Vec<u64> {
        let mut s = SlidingWindow::new(h, w, k, pad);
        let windows = (h + 2 * pad + 1 - k) * (w + 2 * pad + 1 - k);
        output_cycles(
            &mut [&mut s],
            images * h * w,
            images * windows,
            Schedule::FREE,
            1 << 20,
        )
        .unwrap()
    }

    #[test]
    fn a_valid_window_leaves_the_cycle_after_its_last_pixel() {
        // 4x4 image, 3x3 "valid": the first window is complete with pixel (2, 2), the 11th
        // beat (cycle 10); it is valid in cycle 11. The next one is pixel (2, 3): shifted in
        // cycle 12 (the output register is full in cycle 11), valid in 13.
        let c = free(4, 4, 3, 0, 1);
        assert_eq!(&c[..2], &[11, 13]);
        assert_eq!(c.len(), 4);
    }

    /// A convolution's interval alone (a window unit feeding a matrix-vector unit of `steps`
    /// steps) is what [`SlidingWindow::image_cycles_with`] says, and, with at least two
    /// windows a row, the formula its comment and docs/hardware.md give; at two cycles a
    /// window it is the window unit's own line. The layer's `cycles_per_image` (windows times
    /// the unit's cycles, or the padded image's positions) is below it.
    #[test]
    fn a_convolutions_interval_is_the_window_walk_with_its_unit() {
        let mut rng = crate::util::rng::Rng::new(11, 3);
        let mut above = 0;
        for case in 0..400 {
            let k = [1, 2, 3, 3, 5][rng.below(5)];
            let pad = if k % 2 == 1 && rng.below(2) == 0 {
                (k - 1) / 2
            } else {
                0
            };
            let (h, w) = (k + rng.below(9), k + rng.below(9));
            let steps = 1 + [0, 1, 2, 3, 5, 8, 20, 60][rng.below(8)];
            let (hp, wp) = (h + 2 * pad, w + 2 * pad);
            let (rows, cols) = (hp + 1 - k, wp + 1 - k);
            let windows = rows * cols;
            let mut swu = SlidingWindow::new(h, w, k, pad);
            let mut unit = Mvtu::new(steps);
            let mut skid = Skid::default();
            let c = output_cycles(
                &mut [&mut swu, &mut unit, &mut skid],
                8 * h * w,
                8 * windows,
                Schedule::FREE,
                1 << 24,
            )
            .unwrap();
            let alone = (c[7 * windows - 1] - c[6 * windows - 1]) as usize;
            let p = steps + 1;
            let s = SlidingWindow::new(h, w, k, pad);
            assert_eq!(
                s.image_cycles_with(p),
                alone,
                "case {case}: {h}x{w} k{k} pad {pad} P {p}"
            );
            if cols >= 2 {
                let formula = windows * p
                    + (rows - 1) * (k + 2).saturating_sub(2 * p)
                    + ((k - 1) * (wp + 1) + 3).saturating_sub(2 * p);
                assert_eq!(formula, alone, "case {case}: the closed form");
            }
            if p == 2 {
                assert_eq!(s.image_cycles(), alone, "case {case}: the timing line");
            }
            let nominal = (windows * p).max(hp * wp);
            assert!(nominal <= alone, "case {case}");
            above += usize::from(nominal < alone);
        }
        assert!(above > 100, "the walk costs cycles in most cases ({above})");
    }

    #[test]
    fn steady_state_matches_the_timing_line() {
        for (h, w, k, pad) in [
            (4, 4, 3, 0),
            (5, 7, 3, 1),
            (6, 5, 5, 2),
            (3, 3, 1, 0),
            (8, 8, 2, 0),
        ] {
            let s = SlidingWindow::new(h, w, k, pad);
            let windows = (h + 2 * pad + 1 - k) * (w + 2 * pad + 1 - k);
            let c = free(h, w, k, pad, 4);
            let per_image = (c[3 * windows] - c[2 * windows]) as usize;
            assert_eq!(per_image, s.image_cycles(), "{h}x{w} k{k} pad {pad}");
        }
    }
}
