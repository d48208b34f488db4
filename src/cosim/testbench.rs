//! The portable testbench: the co-simulation's stimulus and expectations written out as files
//! that any Verilog simulator, and cocotb, run without cbnn.
//!
//! `cbnn testbench DIR` writes `DIR/testbench/`: `tb_cbnn.v` (Verilog-2005, self-checking),
//! the memory images it reads (`input.hex`: one input beat a line; `expected.hex`: one output
//! beat, class and scores, a line; `cycles.hex`: the cycle of each output handshake as the
//! cycle model predicts it), `testbench.json` (the same settings for other tools), and a
//! cocotb test of the same checks (`test_cbnn.py`, `Makefile`). The testbench drives
//! `s_axis` and `m_axis_tready` with the schedule of [`crate::reference::schedule::Schedule`],
//! computing its coin flips itself (the same hash as the harness), so that random idle cycles
//! and back-pressure are reproduced cycle for cycle in every simulator.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::{expected_outputs, input_words, pack_output, timeout_cycles, Job};
use crate::error::{Error, Result};
use crate::reference::cycle;

/// The directory, inside a design directory, the testbench is written to.
pub const DIR: &str = "testbench";

/// The Verilog testbench.
pub const VERILOG: &str = "tb_cbnn.v";

/// What the commands the testbench's header gives leave in its directory (replaced with it).
pub const BUILD_OUTPUTS: [&str; 4] = ["tb.vvp", "obj_dir", "sim_build", "results.xml"];

/// Every file of the testbench directory.
pub const FILES: [&str; 7] = [
    VERILOG,
    "input.hex",
    "expected.hex",
    "cycles.hex",
    "testbench.json",
    "test_cbnn.py",
    "Makefile",
];

/// What the testbench checks, as `testbench.json` records it.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// Test images driven (the first of the test set).
    pub images: usize,
    /// Input beats an image.
    pub beats: usize,
    /// `s_axis_tdata` bits.
    pub input_width: usize,
    /// `m_axis_tdata` bits.
    pub output_width: usize,
    /// The stall seed of the schedule (`None`: free-running).
    pub stall_seed: Option<u64>,
    /// Predicted cycle of the last output handshake.
    pub last_cycle: u64,
    /// The testbench fails when the outputs have not all come by this cycle.
    pub timeout_cycles: u64,
    /// The accuracy the expected classes have on these images' labels.
    pub expected_accuracy: f64,
}

/// Writes the testbench of `job` (its images, schedule and design) into `out`.
pub fn write(out: &Path, job: &Job) -> Result<Settings> {
    let model = job.model;
    let n = job.images.count();
    let predictions = expected_outputs(job);
    let cycles = cycle::output_cycles(job.timing, n, job.schedule, u64::MAX)
        .expect("the cycle model of a valid design always finishes");
    let correct = predictions
        .iter()
        .zip(job.labels)
        .filter(|(p, &l)| p.class == l as usize)
        .count();
    let settings = Settings {
        images: n,
        beats: job.timing.beats,
        input_width: job.bits_per_beat,
        output_width: job.output.width,
        stall_seed: job.schedule.stall_seed,
        last_cycle: cycles.last().copied().unwrap_or(0),
        timeout_cycles: timeout_cycles(job.timing, n, job.schedule),
        expected_accuracy: correct as f64 / n.max(1) as f64,
    };
    let in_words = job.bits_per_beat.div_ceil(32);
    let data = input_words(
        model,
        job.images,
        job.timing.beats,
        job.bits_per_beat,
        job.reads,
    );
    let mut input = String::new();
    for beat in data.chunks(in_words) {
        input.push_str(&hex(beat, job.bits_per_beat));
        input.push('\n');
    }
    let mut expected = String::new();
    for p in &predictions {
        let words = pack_output(job.output, p.class, &p.scores);
        expected.push_str(&hex(&words, job.output.width));
        expected.push('\n');
    }
    let mut cyc = String::new();
    for c in &cycles {
        let _ = writeln!(cyc, "{c:016x}");
    }
    let json = serde_json::to_string_pretty(&settings).expect("settings serialize") + "\n";
    let files: [(&str, String); 7] = [
        (VERILOG, verilog(&settings)),
        ("input.hex", input),
        ("expected.hex", expected),
        ("cycles.hex", cyc),
        ("testbench.json", json),
        ("test_cbnn.py", COCOTB_TEST.to_string()),
        ("Makefile", COCOTB_MAKEFILE.to_string()),
    ];
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    }
    Ok(settings)
}

/// `width` bits of little-endian 32-bit `words` as hexadecimal digits, most significant first.
pub fn hex(words: &[u32], width: usize) -> String {
    let digits = width.div_ceil(4).max(1);
    (0..digits)
        .rev()
        .map(|d| {
            let bit = 4 * d;
            let nibble = words.get(bit / 32).map_or(0, |w| (w >> (bit % 32)) & 0xF);
            char::from_digit(nibble, 16).expect("a nibble is a hex digit")
        })
        .collect()
}

/// The Verilog-2005 testbench for these settings.
pub fn verilog(s: &Settings) -> String {
    let mut v = String::new();
    let _ = write!(
        v,
        r#"// Self-checking testbench of a cbnn accelerator, written by `cbnn testbench`.
//
// Drives cbnn_top with {images} test images (testbench/input.hex, one s_axis beat a line),
// offers each beat and sets m_axis_tready by the schedule below (free-running, or random idle
// cycles and back-pressure from a seed, by the same hash as cbnn's own harness), and checks
// every output beat: its class and scores (testbench/expected.hex, cbnn's reference model) and
// the cycle of its handshake (testbench/cycles.hex, cbnn's cycle model; cycle 0 is the first
// after reset). It prints one PASS or FAIL line; under Icarus and Verilator the exit code says
// it too. Verilog-2005; run it from the design directory, e.g. with Icarus Verilog:
//   $ iverilog -g2005 -o testbench/tb.vvp -f filelist.f testbench/tb_cbnn.v && vvp -n testbench/tb.vvp
// or with Verilator 5:
//   $ verilator --binary -Wno-fatal --Mdir testbench/obj_dir --top-module tb_cbnn -f filelist.f testbench/tb_cbnn.v && testbench/obj_dir/Vtb_cbnn
// (cbnn's docs/hardware.md gives the commands for Questa, Xcelium and xsim). Build outputs
// belong in testbench/, which cbnn replaces as a whole.
`timescale 1ns / 1ps
`default_nettype none
module tb_cbnn;
    localparam integer IMAGES = {images};             // output beats expected
    localparam integer BEATS = {beats};               // input beats an image
    localparam integer IN_W = {input_width};          // s_axis_tdata bits
    localparam integer OUT_W = {output_width};        // m_axis_tdata bits
    localparam STALLED = {stalled};                   // 0: free-running
    localparam [63:0] SEED = 64'd{seed};              // stall seed (when STALLED)
    localparam [63:0] MAX_CYCLES = 64'd{timeout};     // fail when the outputs have not come by then

    reg clk = 1'b0;
    reg rst_n = 1'b0;
    reg [IN_W-1:0] s_data = {{IN_W{{1'b0}}}};
    reg s_valid = 1'b0;
    wire s_ready;
    wire [OUT_W-1:0] m_data;
    wire m_valid;
    reg m_ready = 1'b0;

    cbnn_top dut (
        .ap_clk(clk),
        .ap_rst_n(rst_n),
        .s_axis_tdata(s_data),
        .s_axis_tvalid(s_valid),
        .s_axis_tready(s_ready),
        .m_axis_tdata(m_data),
        .m_axis_tvalid(m_valid),
        .m_axis_tready(m_ready)
    );

    reg [IN_W-1:0] inputs [0:IMAGES*BEATS-1];
    reg [OUT_W-1:0] expected [0:IMAGES-1];
    reg [63:0] cycles [0:IMAGES-1];

    always #5 clk = ~clk;

    // The schedule's hash (splitmix64's finalizer).
    function [63:0] mix;
        input [63:0] x;
        reg [63:0] z;
        begin
            z = x + 64'h9E3779B97F4A7C15;
            z = (z ^ (z >> 30)) * 64'hBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 64'h94D049BB133111EB;
            mix = z ^ (z >> 31);
        end
    endfunction

    // Whether the source starts offering (stream 0) or the sink is ready (stream 1) in cycle
    // t: always when free-running, three times in four with stalls.
    function coin;
        input [63:0] t;
        input stream;
        reg [63:0] h;
        begin
            if (STALLED == 0) begin
                coin = 1'b1;
            end else begin
                h = mix(mix(SEED) ^ {{t[62:0], stream}});
                coin = h[33:32] != 2'b00;
            end
        end
    endfunction

    integer sent;
    integer outputs;
    integer errors;
    reg [63:0] t;
    reg offering;
    reg took;
    initial begin
        $readmemh("testbench/input.hex", inputs);
        $readmemh("testbench/expected.hex", expected);
        $readmemh("testbench/cycles.hex", cycles);
        sent = 0;
        outputs = 0;
        errors = 0;
        t = 64'd0;
        offering = 1'b0;
        took = 1'b0;
        // Two clock edges in reset, released while the clock is low.
        @(posedge clk);
        @(posedge clk);
        @(negedge clk);
        rst_n = 1'b1;
        while (outputs < IMAGES && t < MAX_CYCLES && errors < 10) begin
            // The clock is low: drive cycle t.
            if (!offering && sent < IMAGES * BEATS && coin(t, 1'b0)) offering = 1'b1;
            s_valid = offering;
            if (offering) s_data = inputs[sent];
            m_ready = coin(t, 1'b1);
            // Just before the rising edge: the handshakes of cycle t.
            #4;
            took = offering && s_ready;
            if (m_valid && m_ready) begin
                if (m_data !== expected[outputs] || t !== cycles[outputs]) begin
                    errors = errors + 1;
                    $display("MISMATCH image %0d: expected %h at cycle %0d, got %h at cycle %0d",
                             outputs, expected[outputs], cycles[outputs], m_data, t);
                end
                outputs = outputs + 1;
            end
            @(posedge clk);
            if (took) begin
                offering = 1'b0;
                sent = sent + 1;
            end
            t = t + 1;
            @(negedge clk);
        end
        if (errors == 0 && outputs == IMAGES)
            $display("PASS: %0d images, every class, score and handshake cycle as predicted (%0d cycles)",
                     IMAGES, t);
        else if (errors == 0)
            $display("FAIL: timed out after %0d cycles with %0d of %0d outputs", t, outputs, IMAGES);
        else
            $display("FAIL: %0d mismatches (the first are above)", errors);
`ifdef __ICARUS__
        if (errors != 0 || outputs != IMAGES) $finish_and_return(1);
`elsif VERILATOR
        if (errors != 0 || outputs != IMAGES) $stop;
`endif
        $finish;
    end
endmodule
`default_nettype wire
"#,
        images = s.images,
        beats = s.beats,
        input_width = s.input_width,
        output_width = s.output_width,
        stalled = u8::from(s.stall_seed.is_some()),
        seed = s.stall_seed.unwrap_or(0),
        timeout = s.timeout_cycles,
    );
    v
}

/// The cocotb test of the same checks.
pub const COCOTB_TEST: &str = r#""""cocotb test of a cbnn accelerator, written by `cbnn testbench`: the checks of tb_cbnn.v.

Drives cbnn_top with the test images of input.hex, offers each beat and sets m_axis_tready by
the schedule of testbench.json (free-running, or random idle cycles and back-pressure from a
seed, by the same hash as cbnn's harness), and checks every output beat's class and scores
(expected.hex) and the cycle of its handshake (cycles.hex; cycle 0 is the first after reset).
Run it from the design directory: make -f testbench/Makefile [SIM=icarus|verilator|...]
(cocotb 2.x). Python steps every cycle, so keep to few images on a convolutional design.
"""

import json
import pathlib

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

HERE = pathlib.Path(__file__).resolve().parent
SETTINGS = json.loads((HERE / "testbench.json").read_text())
MASK = (1 << 64) - 1


def mix(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def coin(seed, t, stream):
    if seed is None:
        return True
    return (mix(mix(seed) ^ (((t << 1) | stream) & MASK)) >> 32) % 4 != 0


def read_hex(name):
    return [int(word, 16) for word in (HERE / name).read_text().split()]


@cocotb.test()
async def every_output_as_predicted(dut):
    inputs = read_hex("input.hex")
    expected = read_hex("expected.hex")
    cycles = read_hex("cycles.hex")
    seed = SETTINGS["stall_seed"]
    cocotb.start_soon(Clock(dut.ap_clk, 10, unit="ns").start())
    dut.ap_rst_n.value = 0
    dut.s_axis_tvalid.value = 0
    dut.s_axis_tdata.value = 0
    dut.m_axis_tready.value = 0
    await RisingEdge(dut.ap_clk)
    await RisingEdge(dut.ap_clk)
    await FallingEdge(dut.ap_clk)
    dut.ap_rst_n.value = 1
    sent = outputs = t = 0
    offering = False
    while outputs < len(expected):
        assert t < SETTINGS["timeout_cycles"], (
            f"timed out after {t} cycles with {outputs} of {len(expected)} outputs"
        )
        if not offering and sent < len(inputs) and coin(seed, t, 0):
            offering = True
        dut.s_axis_tvalid.value = int(offering)
        if offering:
            dut.s_axis_tdata.value = inputs[sent]
        ready = coin(seed, t, 1)
        dut.m_axis_tready.value = int(ready)
        await Timer(4, unit="ns")
        took = offering and int(dut.s_axis_tready.value) == 1
        if int(dut.m_axis_tvalid.value) == 1 and ready:
            got = int(dut.m_axis_tdata.value)
            assert (got, t) == (expected[outputs], cycles[outputs]), (
                f"image {outputs}: expected {expected[outputs]:x} at cycle {cycles[outputs]}, "
                f"got {got:x} at cycle {t}"
            )
            outputs += 1
        await RisingEdge(dut.ap_clk)
        if took:
            offering = False
            sent += 1
        t += 1
        await FallingEdge(dut.ap_clk)
    dut._log.info("PASS: %d images, every class, score and handshake cycle as predicted", outputs)
"#;

/// The cocotb Makefile (cocotb 2.x), run from the design directory.
pub const COCOTB_MAKEFILE: &str = r#"# cocotb test of a cbnn accelerator, written by `cbnn testbench` (cocotb 2.x).
# Run from the design directory: make -f testbench/Makefile [SIM=icarus|verilator|questa|xcelium]
SIM ?= icarus
TOPLEVEL_LANG = verilog
VERILOG_SOURCES = $(addprefix $(CURDIR)/,$(shell cat filelist.f))
COCOTB_TOPLEVEL = cbnn_top
COCOTB_TEST_MODULES = test_cbnn
# Build outputs stay in testbench/, which cbnn replaces as a whole.
SIM_BUILD = $(CURDIR)/testbench/sim_build
COCOTB_RESULTS_FILE = $(CURDIR)/testbench/results.xml
export PYTHONPATH := $(CURDIR)/testbench:$(PYTHONPATH)
include $(shell cocotb-config --makefiles)/Makefile.sim
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_writes_the_width_most_significant_digit_first() {
        assert_eq!(hex(&[0xABCD_1234, 0x5], 36), "5abcd1234");
        assert_eq!(hex(&[0x1F], 5), "1f");
        assert_eq!(hex(&[0x7], 3), "7");
        assert_eq!(hex(&[0x0, 0x1], 33), "100000000");
    }
}
