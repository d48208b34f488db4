//! Per-core testbenches: each hand-written core alone behind the harness's AXI4-Stream ports,
//! random idle cycles and back-pressure, a scoreboard of expected beats, swept over parameters.

mod common;
use common::*;

use std::path::Path;

use cbnn::cosim::{self, Stimulus, Trace};
use cbnn::layers::mvtu as images;
use cbnn::model::BinaryMatrix;
use cbnn::reference::schedule::Schedule;
use cbnn::rtlgen;
use cbnn::util::rng::Rng;
use cbnn::vocab::fold::LayerFold;

const PORTS: &str = "input wire ap_clk, input wire ap_rst_n,
    input wire [IW-1:0] s_axis_tdata, input wire s_axis_tvalid, output wire s_axis_tready,
    output wire [OW-1:0] m_axis_tdata, output wire m_axis_tvalid, input wire m_axis_tready";

/// Writes the cores and a `cbnn_top` wrapper with `body` into `dir`; builds it.
fn build(dir: &Path, iw: usize, ow: usize, body: &str) -> std::path::PathBuf {
    let mut files = Vec::new();
    for (name, text) in rtlgen::all_cores() {
        std::fs::write(dir.join(name), text).unwrap();
        files.push(name.to_string());
    }
    let ports = PORTS
        .replace("IW-1", &(iw - 1).to_string())
        .replace("OW-1", &(ow - 1).to_string());
    let top = format!("`default_nettype none\nmodule cbnn_top ({ports});\n{body}\nendmodule\n`default_nettype wire\n");
    std::fs::write(dir.join("cbnn_top.v"), top).unwrap();
    files.push("cbnn_top.v".into());
    cosim::build(dir, &files, false).unwrap().0
}

/// Random input words: `n` beats of `bits` bits.
fn random_beats(rng: &mut Rng, n: usize, bits: usize) -> Vec<Vec<u32>> {
    (0..n)
        .map(|_| {
            let mut w: Vec<u32> = (0..bits.div_ceil(32))
                .map(|_| rng.next_u64() as u32)
                .collect();
            if !bits.is_multiple_of(32) {
                *w.last_mut().unwrap() &= (1u32 << (bits % 32)) - 1;
            }
            w
        })
        .collect()
}

fn get(words: &[u32], bit: usize) -> bool {
    (words[bit / 32] >> (bit % 32)) & 1 == 1
}

/// Runs `beats` through a built core, `per_image` input beats and `outs` output beats an
/// image; `bits` are the input and output widths.
fn run(
    exe: &Path,
    dir: &Path,
    beats: &[Vec<u32>],
    (per_image, outs): (usize, usize),
    (in_bits, out_bits): (usize, usize),
    schedule: Schedule,
) -> Trace {
    let data: Vec<u32> = beats.iter().flatten().copied().collect();
    let trace = cosim::simulate(
        exe,
        &Stimulus {
            dir,
            images: beats.len() / per_image,
            outputs: outs * beats.len() / per_image,
            beats: per_image,
            in_words: in_bits.div_ceil(32),
            out_words: out_bits.div_ceil(32),
            data: &data,
            schedule,
            max_cycles: 100_000,
            vcd: None,
        },
    )
    .unwrap();
    assert!(!trace.timed_out, "the core stopped producing beats");
    assert_eq!(trace.outputs.len(), outs * beats.len() / per_image);
    trace
}

const SCHEDULES: [Schedule; 3] = [
    Schedule { stall_seed: None },
    Schedule {
        stall_seed: Some(11),
    },
    Schedule {
        stall_seed: Some(12),
    },
];

#[test]
fn skid_buffer_passes_every_beat_in_order_at_one_per_cycle() {
    use cbnn::reference::stream::{self, Skid};
    let mut rng = Rng::new(1, 0);
    for w in [1usize, 70] {
        let dir = temp_dir(&format!("core-skid{w}"));
        let exe = build(&dir, w, w, &format!(
            "    cbnn_skid #(.W({w})) u (.clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),\n        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready));"
        ));
        let beats = random_beats(&mut rng, 300, w);
        for schedule in SCHEDULES {
            let trace = run(&exe, &dir, &beats, (1, 1), (w, w), schedule);
            let predicted =
                stream::output_cycles(&mut [&mut Skid::default()], 300, 300, schedule, 1 << 20)
                    .unwrap();
            for (i, (cycle, words)) in trace.outputs.iter().enumerate() {
                assert_eq!(words, &beats[i], "W {w}, beat {i}, {schedule:?}");
                assert_eq!(
                    *cycle, predicted[i],
                    "W {w}, {schedule:?}: cycle of beat {i}"
                );
                if schedule.stall_seed.is_none() {
                    assert_eq!(
                        *cycle,
                        i as u64 + 1,
                        "one beat a cycle after one cycle of latency"
                    );
                }
            }
        }
    }
}

#[test]
fn unpacker_gathers_beats_into_vectors() {
    use cbnn::reference::stream::{self, Unpack};
    let mut rng = Rng::new(2, 0);
    for (n, iw) in [(10usize, 3usize), (65, 8)] {
        let per = n.div_ceil(iw);
        let dir = temp_dir(&format!("core-unpack{n}-{iw}"));
        let exe = build(&dir, iw, n, &format!(
            "    cbnn_unpack #(.N({n}), .IW({iw})) u (.clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),\n        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready));"
        ));
        let beats = random_beats(&mut rng, 40 * per, iw);
        for schedule in SCHEDULES {
            let trace = run(&exe, &dir, &beats, (per, 1), (iw, n), schedule);
            let predicted = stream::output_cycles(
                &mut [&mut Unpack::new(per)],
                40 * per,
                40,
                schedule,
                1 << 20,
            )
            .unwrap();
            for (img, (cycle, words)) in trace.outputs.iter().enumerate() {
                assert_eq!(
                    *cycle, predicted[img],
                    "N {n}, IW {iw}, {schedule:?}: cycle of vector {img}"
                );
                for f in 0..n {
                    let (b, j) = (f / iw, f % iw);
                    assert_eq!(
                        get(words, f),
                        get(&beats[img * per + b], j),
                        "N {n}, IW {iw}, image {img}, bit {f}"
                    );
                }
                if schedule.stall_seed.is_none() {
                    // BEATS beats, then the vector, one image every BEATS + 1 cycles.
                    assert_eq!(*cycle, (img * (per + 1) + per) as u64);
                }
            }
        }
    }
}

#[test]
fn threshold_unit_matches_the_definition_under_any_folding() {
    use cbnn::reference::stream::{self, Mvtu, Unpack};
    let mut rng = Rng::new(3, 0);
    for (n, m, pe, simd, pipe) in [
        (9usize, 5usize, 2usize, 4usize, 0usize),
        (70, 33, 7, 13, 1),
        (17, 6, 6, 17, 1),
    ] {
        let dir = temp_dir(&format!("core-mvtu{n}-{m}-{pipe}"));
        let mut w = BinaryMatrix::new(m, n);
        for r in 0..m {
            for c in 0..n {
                w.set(r, c, rng.next_u64() & 1 == 1);
            }
        }
        let t: Vec<u32> = (0..m)
            .map(|j| match j % 5 {
                0 => 0,
                1 => n as u32 + 1,
                _ => (n / 2) as u32 + rng.below(3) as u32 - 1,
            })
            .collect();
        let f = LayerFold { pe, simd, pipe };
        std::fs::write(dir.join("w.hex"), images::weights(&w, f)).unwrap();
        std::fs::write(dir.join("t.hex"), images::thresholds(&t, n, f)).unwrap();
        let exe = build(&dir, n, m, &format!(
            "    wire [{}:0] x;\n    wire x_valid;\n    wire x_ready;\n    cbnn_unpack #(.N({n}), .IW({n})) u_in (.clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),\n        .m_axis_tdata(x), .m_axis_tvalid(x_valid), .m_axis_tready(x_ready));\n    cbnn_mvtu #(.N({n}), .M({m}), .PE({pe}), .SIMD({simd}), .PIPE({pipe}), .SCORES(0),\n        .WEIGHT_FILE(\"w.hex\"), .THRESH_FILE(\"t.hex\")) u (.clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata(x), .s_axis_tvalid(x_valid), .s_axis_tready(x_ready),\n        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready));",
            n - 1
        ));
        let beats = random_beats(&mut rng, 50, n);
        let steps = cbnn::plan::fold::LayerShape {
            inputs: n,
            outputs: m,
        }
        .steps(f);
        for schedule in SCHEDULES {
            let trace = run(&exe, &dir, &beats, (1, 1), (n, m), schedule);
            let predicted = stream::output_cycles(
                &mut [&mut Unpack::new(1), &mut Mvtu::new(steps)],
                50,
                50,
                schedule,
                1 << 20,
            )
            .unwrap();
            for (img, (cycle, words)) in trace.outputs.iter().enumerate() {
                assert_eq!(
                    *cycle, predicted[img],
                    "N {n} M {m} PE {pe} SIMD {simd} PIPE {pipe}, {schedule:?}: cycle of vector {img}"
                );
                for (j, &tj) in t.iter().enumerate() {
                    let matches = (0..n)
                        .filter(|&i| w.get(j, i) == get(&beats[img], i))
                        .count() as u32;
                    assert_eq!(
                        get(words, j),
                        matches >= tj,
                        "N {n} M {m} PE {pe} SIMD {simd} PIPE {pipe}: vector {img}, neuron {j}"
                    );
                }
            }
        }
    }
}

/// A layer of sparse truth-table neurons between two pipeline stages, in front of the output
/// register slice, all enabled by the slice's ready: every neuron's bit against its table at
/// the address its inputs spell, one beat a cycle free-running (latency three: two stages and
/// the slice), every beat in order and at the cycle the pipeline's cycle model predicts under
/// stalls.
#[test]
fn truth_table_layer_looks_up_every_neuron_one_beat_a_cycle() {
    let mut rng = Rng::new(4, 0);
    for (n, m, f) in [(1usize, 3usize, 1usize), (37, 20, 6), (130, 70, 4)] {
        let aw = (usize::BITS - (n.max(2) - 1).leading_zeros()) as usize;
        let conn: Vec<usize> = (0..m * f).map(|_| rng.below(n)).collect();
        let tables: Vec<u64> = (0..m)
            .map(|_| {
                rng.next_u64()
                    & if f == 6 {
                        u64::MAX
                    } else {
                        (1 << (1 << f)) - 1
                    }
            })
            .collect();
        // Verilog literals, most significant element first.
        let conn_lit: String = conn.iter().rev().map(|c| format!("{c:0aw$b}")).collect();
        let tab_lit: String = tables
            .iter()
            .rev()
            .map(|t| format!("{t:0w$b}", w = 1 << f))
            .collect();
        let dir = temp_dir(&format!("core-lut{n}-{m}-{f}"));
        let exe = build(&dir, n, m, &format!(
            "    wire en;
    wire [{n1}:0] x;
    wire x_valid;
    wire [{m1}:0] y;
    wire [{m1}:0] q;
    wire q_valid;
                 cbnn_pipe #(.W({n})) u_in (.clk(ap_clk), .rst_n(ap_rst_n), .en(en), .d(s_axis_tdata), .d_valid(s_axis_tvalid), .q(x), .q_valid(x_valid));
                 cbnn_lut #(.N({n}), .M({m}), .F({f}), .AW({aw}), .CONN({cw}'b{conn_lit}), .TABLES({tw}'b{tab_lit})) u_lut (.x(x), .y(y));
                 cbnn_pipe #(.W({m})) u_out (.clk(ap_clk), .rst_n(ap_rst_n), .en(en), .d(y), .d_valid(x_valid), .q(q), .q_valid(q_valid));
                 cbnn_skid #(.W({m})) u_skid (.clk(ap_clk), .rst_n(ap_rst_n), .s_axis_tdata(q), .s_axis_tvalid(q_valid), .s_axis_tready(en),
                     .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready));
    assign s_axis_tready = en;",
            n1 = n - 1,
            m1 = m - 1,
            cw = m * f * aw,
            tw = m << f,
        ));
        let beats = random_beats(&mut rng, 200, n);
        for schedule in SCHEDULES {
            let trace = run(&exe, &dir, &beats, (1, 1), (n, m), schedule);
            let mut pipe = cbnn::reference::stream::Pipeline::new(2);
            let predicted = cbnn::reference::stream::output_cycles(
                &mut [&mut pipe],
                200,
                200,
                schedule,
                1 << 20,
            )
            .unwrap();
            for (i, (cycle, words)) in trace.outputs.iter().enumerate() {
                assert_eq!(
                    *cycle, predicted[i],
                    "N {n} M {m} F {f}, {schedule:?}: cycle of beat {i}"
                );
                for j in 0..m {
                    let a: usize = (0..f)
                        .map(|k| usize::from(get(&beats[i], conn[j * f + k])) << k)
                        .sum();
                    assert_eq!(
                        get(words, j),
                        tables[j] >> a & 1 == 1,
                        "N {n} M {m} F {f}: beat {i}, neuron {j}, {schedule:?}"
                    );
                }
                if schedule.stall_seed.is_none() {
                    assert_eq!(*cycle, i as u64 + 3, "one beat a cycle, latency 3");
                }
            }
        }
    }
}

/// The popcount core counts every input bit, with adder leaves and with LUT6 table leaves
/// (widths below, at and above a leaf, not multiples of six), one count a cycle.
#[test]
fn popcount_counts_with_adder_and_table_leaves() {
    let widths = [1usize, 2, 5, 6, 7, 12, 13, 37, 100];
    let ow = |w: usize| (usize::BITS - w.leading_zeros()) as usize;
    let n: usize = widths.iter().sum();
    let m: usize = 2 * widths.iter().map(|&w| ow(w)).sum::<usize>();
    let mut body = format!(
        "    wire en;\n    wire [{n1}:0] x;\n    wire x_valid;\n    wire [{m1}:0] y;\n    wire [{m1}:0] q;\n    wire q_valid;\n    \
         cbnn_pipe #(.W({n})) u_in (.clk(ap_clk), .rst_n(ap_rst_n), .en(en), .d(s_axis_tdata), .d_valid(s_axis_tvalid), .q(x), .q_valid(x_valid));\n",
        n1 = n - 1,
        m1 = m - 1
    );
    let mut out = 0;
    for leaf in [1, 6] {
        let mut at = 0;
        for &w in &widths {
            body += &format!(
                "    cbnn_popcount #(.W({w}), .LEAF({leaf})) u_pop{leaf}_{w} (.clk(ap_clk), .en(1'b1), .in(x[{}:{at}]), .count(y[{}:{out}]));\n",
                at + w - 1,
                out + ow(w) - 1
            );
            at += w;
            out += ow(w);
        }
    }
    body += &format!(
        "    cbnn_pipe #(.W({m})) u_out (.clk(ap_clk), .rst_n(ap_rst_n), .en(en), .d(y), .d_valid(x_valid), .q(q), .q_valid(q_valid));
    cbnn_skid #(.W({m})) u_skid (.clk(ap_clk), .rst_n(ap_rst_n), .s_axis_tdata(q), .s_axis_tvalid(q_valid), .s_axis_tready(en),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready));
    assign s_axis_tready = en;"
    );
    let dir = temp_dir("core-popcount");
    let exe = build(&dir, n, m, &body);
    let mut rng = Rng::new(9, 0);
    let mut beats = random_beats(&mut rng, 300, n);
    // All ones and all zeros too.
    beats[0] = (0..n.div_ceil(32)).map(|_| u32::MAX).collect();
    *beats[0].last_mut().unwrap() &= (1u32 << (n % 32)) - 1;
    beats[1] = vec![0; n.div_ceil(32)];
    for schedule in [SCHEDULES[0], SCHEDULES[1]] {
        let trace = run(&exe, &dir, &beats, (1, 1), (n, m), schedule);
        assert_eq!(trace.outputs.len(), beats.len());
        for (i, (_, words)) in trace.outputs.iter().enumerate() {
            let mut out = 0;
            for leaf in [1, 6] {
                let mut at = 0;
                for &w in &widths {
                    let want = (at..at + w).filter(|&b| get(&beats[i], b)).count();
                    let got: usize = (0..ow(w))
                        .map(|k| usize::from(get(words, out + k)) << k)
                        .sum();
                    assert_eq!(got, want, "beat {i}, W {w}, LEAF {leaf}, {schedule:?}");
                    at += w;
                    out += ow(w);
                }
            }
        }
    }
}

/// The `cbnn-timing` line of a core's header: `key=value` pairs.
fn timing_line(core: &str) -> std::collections::HashMap<String, String> {
    let text = rtlgen::all_cores().find(|(n, _)| *n == core).unwrap().1;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("// cbnn-timing: "))
        .unwrap_or_else(|| panic!("{core} states no cbnn-timing line"));
    line.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn sliding_window_unit_hands_on_every_window_at_the_predicted_cycle() {
    use cbnn::reference::stream::{self, SlidingWindow};
    let timing = timing_line("cbnn_swu.v");
    let interval: u64 = timing["interval"].parse().unwrap();
    let latency: u64 = timing["latency"].parse().unwrap();
    let mut rng = Rng::new(4, 0);
    // (H, W, C, K, PAD): odd sizes, a 1x1 kernel, a kernel larger than a "same" image, a
    // window of more than 32 bits a channel set, an even "valid" kernel.
    for (h, w, c, k, pad) in [
        (5usize, 7usize, 3usize, 3usize, 1usize),
        (6, 5, 2, 5, 0),
        (4, 3, 5, 1, 0),
        (2, 3, 1, 5, 1),
        (3, 6, 33, 3, 1),
        (5, 4, 1, 2, 0),
    ] {
        let p = if pad == 1 { (k - 1) / 2 } else { 0 };
        let (ho, wo) = (h + 2 * p + 1 - k, w + 2 * p + 1 - k);
        let bits = k * k * c;
        let dir = temp_dir(&format!("core-swu{h}-{w}-{c}-{k}-{pad}"));
        let exe = build(&dir, c, bits, &format!(
            "    cbnn_swu #(.H({h}), .W({w}), .C({c}), .K({k}), .PAD({pad})) u (.clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),\n        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready));"
        ));
        let images = 4;
        let pixels = random_beats(&mut rng, images * h * w, c);
        let case = format!("H {h} W {w} C {c} K {k} PAD {pad}");
        for schedule in SCHEDULES {
            let trace = run(&exe, &dir, &pixels, (h * w, ho * wo), (c, bits), schedule);
            let mut model = SlidingWindow::new(h, w, k, p);
            let predicted = stream::output_cycles(
                &mut [&mut model],
                images * h * w,
                images * ho * wo,
                schedule,
                1 << 20,
            )
            .unwrap();
            for (i, (cycle, words)) in trace.outputs.iter().enumerate() {
                let (img, pos) = (i / (ho * wo), i % (ho * wo));
                let (y, x) = (pos / wo, pos % wo);
                for dy in 0..k {
                    for dx in 0..k {
                        let (sy, sx) = (
                            (y + dy) as isize - p as isize,
                            (x + dx) as isize - p as isize,
                        );
                        let inside = (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx);
                        for ch in 0..c {
                            let want = inside
                                && get(&pixels[img * h * w + sy as usize * w + sx as usize], ch);
                            assert_eq!(
                                get(words, (dy * k + dx) * c + ch),
                                want,
                                "{case}, {schedule:?}: window {i} (image {img}, position {y},{x}), element {dy},{dx},{ch}"
                            );
                        }
                    }
                }
                assert_eq!(
                    *cycle, predicted[i],
                    "{case}, {schedule:?}: cycle of window {i}"
                );
            }
            if schedule.stall_seed.is_none() {
                let c = &predicted;
                let closest = c.windows(2).map(|g| g[1] - g[0]).min();
                // At most one window every `interval` cycles, and exactly that within a row.
                let closest = closest.unwrap();
                assert!(
                    closest >= interval,
                    "{case}: windows {closest} cycles apart"
                );
                if wo > 1 {
                    assert_eq!(closest, interval, "{case}: interval");
                }
                let per_image = c[3 * ho * wo] - c[2 * ho * wo];
                assert_eq!(
                    per_image as usize,
                    model.image_cycles(),
                    "{case}: cycles per image"
                );
                if pad == 0 && k > 1 {
                    // Nothing blocks before the first window: its last pixel is beat
                    // (K - 1) * W + K - 1, accepted in that cycle.
                    assert_eq!(
                        c[0],
                        ((k - 1) * w + k - 1) as u64 + latency,
                        "{case}: latency"
                    );
                }
            }
        }
    }
}

#[test]
fn max_pool_core_ors_every_window_at_the_predicted_cycle() {
    use cbnn::reference::stream::{self, MaxPool};
    let timing = timing_line("cbnn_pool.v");
    assert_eq!(timing["latency"], "1");
    assert_eq!(timing["interval"], "P");
    let mut rng = Rng::new(5, 0);
    // (H, W, C, P): sizes that P divides and sizes it does not, one output column, many words.
    for (h, w, c, p) in [
        (4usize, 6usize, 3usize, 2usize),
        (7, 8, 5, 3),
        (5, 3, 1, 2),
        (5, 5, 40, 2),
    ] {
        let (ho, wo) = (h / p, w / p);
        let dir = temp_dir(&format!("core-pool{h}-{w}-{c}-{p}"));
        let exe = build(&dir, c, c, &format!(
            "    cbnn_pool #(.H({h}), .W({w}), .C({c}), .P({p})) u (.clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),\n        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready));"
        ));
        let images = 4;
        // Sparse pixels, so that windows of all -1 occur as well as windows with one +1.
        let pixels: Vec<Vec<u32>> = random_beats(&mut rng, images * h * w, c)
            .into_iter()
            .zip(random_beats(&mut rng, images * h * w, c))
            .zip(random_beats(&mut rng, images * h * w, c))
            .map(|((a, b), d)| {
                a.iter()
                    .zip(&b)
                    .zip(&d)
                    .map(|((a, b), d)| a & b & d)
                    .collect()
            })
            .collect();
        let case = format!("H {h} W {w} C {c} P {p}");
        for schedule in SCHEDULES {
            let trace = run(&exe, &dir, &pixels, (h * w, ho * wo), (c, c), schedule);
            let mut model = MaxPool::new(h, w, p);
            let predicted = stream::output_cycles(
                &mut [&mut model],
                images * h * w,
                images * ho * wo,
                schedule,
                1 << 20,
            )
            .unwrap();
            for (i, (cycle, words)) in trace.outputs.iter().enumerate() {
                let (img, pos) = (i / (ho * wo), i % (ho * wo));
                let (y, x) = (pos / wo, pos % wo);
                for ch in 0..c {
                    let want = (0..p * p).any(|d| {
                        let (sy, sx) = (y * p + d / p, x * p + d % p);
                        get(&pixels[img * h * w + sy * w + sx], ch)
                    });
                    assert_eq!(
                        get(words, ch),
                        want,
                        "{case}, {schedule:?}: output {i} (image {img}, position {y},{x}), channel {ch}"
                    );
                }
                assert_eq!(
                    *cycle, predicted[i],
                    "{case}, {schedule:?}: cycle of output {i}"
                );
            }
            if schedule.stall_seed.is_none() {
                let c = &predicted;
                let closest = c.windows(2).map(|g| g[1] - g[0]).min().unwrap();
                assert!(
                    closest >= p as u64,
                    "{case}: outputs {closest} cycles apart"
                );
                if wo > 1 {
                    assert_eq!(closest, p as u64, "{case}: interval");
                }
                let per_image = c[3 * ho * wo] - c[2 * ho * wo];
                assert_eq!(
                    per_image as usize,
                    model.image_cycles(),
                    "{case}: cycles per image"
                );
                // The first output: its window's last pixel is beat (P - 1) * W + P - 1.
                assert_eq!(c[0], ((p - 1) * w + p - 1) as u64 + 1, "{case}: latency");
            }
        }
    }
}

#[test]
fn fifo_passes_every_beat_in_order_at_the_predicted_cycle() {
    use cbnn::reference::stream::{self, Fifo, Skid};
    let timing = timing_line("cbnn_fifo.v");
    let latency: u64 = timing["latency"].parse().unwrap();
    let mut rng = Rng::new(7, 0);
    for (w, depth) in [(5usize, 1usize), (40, 3), (1, 16)] {
        let dir = temp_dir(&format!("core-fifo{w}-{depth}"));
        // The register slice behind it; back-pressure fills the FIFO, idle input drains it.
        let exe = build(&dir, w, w, &format!(
            "    wire [{}:0] q;\n    wire q_valid;\n    wire q_ready;\n    cbnn_fifo #(.W({w}), .DEPTH({depth})) u (.clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),\n        .m_axis_tdata(q), .m_axis_tvalid(q_valid), .m_axis_tready(q_ready));\n    cbnn_skid #(.W({w})) u_out (.clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata(q), .s_axis_tvalid(q_valid), .s_axis_tready(q_ready),\n        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready));",
            w - 1
        ));
        let beats = random_beats(&mut rng, 200, w);
        for schedule in SCHEDULES {
            let trace = run(&exe, &dir, &beats, (1, 1), (w, w), schedule);
            let (mut fifo, mut skid) = (Fifo::new(depth), Skid::default());
            let predicted =
                stream::output_cycles(&mut [&mut fifo, &mut skid], 200, 200, schedule, 1 << 20)
                    .unwrap();
            for (i, (cycle, words)) in trace.outputs.iter().enumerate() {
                assert_eq!(
                    words, &beats[i],
                    "W {w} DEPTH {depth}, {schedule:?}: beat {i}"
                );
                assert_eq!(
                    *cycle, predicted[i],
                    "W {w} DEPTH {depth}, {schedule:?}: cycle of beat {i}"
                );
            }
            if schedule.stall_seed.is_none() {
                // Beat 0 is taken in cycle 0 and leaves the FIFO after its latency, then the
                // register slice's cycle; then one beat every `interval` cycles.
                let key = if depth == 1 {
                    "interval_depth_1"
                } else {
                    "interval"
                };
                let interval: u64 = timing[key].parse().unwrap();
                assert_eq!(predicted[0], latency + 1, "W {w} DEPTH {depth}: latency");
                let gaps: Vec<u64> = predicted.windows(2).map(|g| g[1] - g[0]).collect();
                assert!(
                    gaps.iter().all(|&g| g == interval),
                    "W {w} DEPTH {depth}: gaps {gaps:?}"
                );
            }
        }
    }
}

#[test]
fn splitter_hands_on_every_pixel_of_a_beat_at_the_predicted_cycle() {
    use cbnn::reference::stream::{self, Split};
    let timing = timing_line("cbnn_split.v");
    let interval: u64 = timing["interval"].parse().unwrap();
    let latency: u64 = timing["latency"].parse().unwrap();
    let mut rng = Rng::new(8, 0);
    // (PPB, PW, N): a partly padded last beat, one pixel a beat, one beat an image.
    for (ppb, pw, n) in [(3usize, 5usize, 7usize), (1, 4, 5), (4, 9, 4)] {
        let beats_per_image = n.div_ceil(ppb);
        let dir = temp_dir(&format!("core-split{ppb}-{pw}-{n}"));
        let exe = build(&dir, ppb * pw, pw, &format!(
            "    cbnn_split #(.PPB({ppb}), .PW({pw}), .N({n})) u (.clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),\n        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready));"
        ));
        let images = 6;
        let beats = random_beats(&mut rng, images * beats_per_image, ppb * pw);
        for schedule in SCHEDULES {
            let trace = run(
                &exe,
                &dir,
                &beats,
                (beats_per_image, n),
                (ppb * pw, pw),
                schedule,
            );
            let mut model = Split::new(ppb, n);
            let predicted = stream::output_cycles(
                &mut [&mut model],
                images * beats_per_image,
                images * n,
                schedule,
                1 << 20,
            )
            .unwrap();
            for (i, (cycle, words)) in trace.outputs.iter().enumerate() {
                let (img, p) = (i / n, i % n);
                let beat = &beats[img * beats_per_image + p / ppb];
                for b in 0..pw {
                    assert_eq!(
                        get(words, b),
                        get(beat, (p % ppb) * pw + b),
                        "PPB {ppb} PW {pw} N {n}, {schedule:?}: pixel {i}, bit {b}"
                    );
                }
                assert_eq!(
                    *cycle, predicted[i],
                    "PPB {ppb} PW {pw} N {n}, {schedule:?}: cycle of pixel {i}"
                );
            }
            if schedule.stall_seed.is_none() {
                // Beat 0 is taken in cycle 0; its first pixel leaves after the latency, the
                // pixels of one beat `interval` cycles apart.
                let case = format!("PPB {ppb} PW {pw} N {n}");
                assert_eq!(predicted[0], latency, "{case}: latency");
                for i in 1..predicted.len() {
                    let same_beat = (i % n) / ppb == ((i - 1) % n) / ppb && i % n != 0;
                    if same_beat {
                        assert_eq!(
                            predicted[i] - predicted[i - 1],
                            interval,
                            "{case}: pixel {i}"
                        );
                    }
                }
            }
        }
    }
}

/// A binary convolution in hardware: the sliding-window unit feeding the matrix-vector unit,
/// one window a vector, equals the convolution's definition, with the handshake cycles of the
/// chained cycle models.
#[test]
fn sliding_window_unit_and_threshold_unit_compute_a_convolution() {
    use cbnn::layers::{Conv, Padding, Semantics, Shape, Values};
    use cbnn::reference::stream::{self, Mvtu, SlidingWindow};
    let mut rng = Rng::new(6, 0);
    // (H, W, C, K, padding, M, PE, SIMD, PIPE)
    for (h, w, c, k, padding, m, pe, simd, pipe) in [
        (
            5usize,
            6usize,
            3usize,
            3usize,
            Padding::Same,
            5usize,
            2usize,
            7usize,
            0usize,
        ),
        (6, 4, 2, 3, Padding::Valid, 4, 4, 18, 1),
        (4, 4, 9, 5, Padding::Same, 3, 1, 32, 0),
    ] {
        let n = k * k * c;
        let mut weights = BinaryMatrix::new(m, n);
        for r in 0..m {
            for col in 0..n {
                weights.set(r, col, rng.next_u64() & 1 == 1);
            }
        }
        let thresholds: Vec<u32> = (0..m)
            .map(|j| match j % 4 {
                0 => 0,
                1 => n as u32 + 1,
                _ => (n / 2) as u32 + rng.below(5) as u32 - 2,
            })
            .collect();
        let conv = Conv {
            kernel: k,
            padding,
            weights: weights.clone(),
            thresholds: thresholds.clone(),
        };
        let shape = Shape {
            height: h,
            width: w,
            channels: c,
        };
        let out = conv.output_shape(shape);
        let pad_param = usize::from(padding == Padding::Same);
        let f = LayerFold { pe, simd, pipe };
        let dir = temp_dir(&format!("core-conv{h}-{w}-{c}-{k}-{m}"));
        std::fs::write(dir.join("w.hex"), images::weights(&weights, f)).unwrap();
        std::fs::write(dir.join("t.hex"), images::thresholds(&thresholds, n, f)).unwrap();
        let exe = build(&dir, c, m, &format!(
            "    wire [{}:0] x;\n    wire x_valid;\n    wire x_ready;\n    cbnn_swu #(.H({h}), .W({w}), .C({c}), .K({k}), .PAD({pad_param})) u_swu (.clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),\n        .m_axis_tdata(x), .m_axis_tvalid(x_valid), .m_axis_tready(x_ready));\n    cbnn_mvtu #(.N({n}), .M({m}), .PE({pe}), .SIMD({simd}), .PIPE({pipe}), .SCORES(0),\n        .WEIGHT_FILE(\"w.hex\"), .THRESH_FILE(\"t.hex\")) u (.clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata(x), .s_axis_tvalid(x_valid), .s_axis_tready(x_ready),\n        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready));",
            n - 1
        ));
        let images = 3;
        let pixels = random_beats(&mut rng, images * h * w, c);
        let positions = out.height * out.width;
        let case =
            format!("H {h} W {w} C {c} K {k} {padding:?} M {m} PE {pe} SIMD {simd} PIPE {pipe}");
        for schedule in SCHEDULES {
            let trace = run(&exe, &dir, &pixels, (h * w, positions), (c, m), schedule);
            let mut swu = SlidingWindow::new(h, w, k, conv.pad());
            let mut unit = Mvtu::new(
                cbnn::plan::fold::LayerShape {
                    inputs: n,
                    outputs: m,
                }
                .steps(f),
            );
            let predicted = stream::output_cycles(
                &mut [&mut swu, &mut unit],
                images * h * w,
                images * positions,
                schedule,
                1 << 22,
            )
            .unwrap();
            for img in 0..images {
                let input: Vec<bool> = (0..h * w * c)
                    .map(|i| get(&pixels[img * h * w + i / c], i % c))
                    .collect();
                let Values::Bits(want) = conv.by_definition(shape, &input) else {
                    panic!("a convolution gives ±1 values")
                };
                for pos in 0..positions {
                    let (cycle, words) = &trace.outputs[img * positions + pos];
                    for j in 0..m {
                        assert_eq!(
                            get(words, j),
                            want[pos * m + j],
                            "{case}, {schedule:?}: image {img}, position {pos}, channel {j}"
                        );
                    }
                    assert_eq!(
                        *cycle,
                        predicted[img * positions + pos],
                        "{case}, {schedule:?}: cycle of image {img}, position {pos}"
                    );
                }
            }
        }
    }
}

/// Every core refuses an impossible parameter at elaboration, in Verilator and in Yosys, and
/// the error names the rule; the same core with legal parameters elaborates.
#[test]
fn cores_check_their_parameters_at_elaboration() {
    let dir = temp_dir("core-params");
    for (name, text) in rtlgen::all_cores() {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let cases = [
        (
            "cbnn_mvtu",
            "N(8), .M(4), .PE(5), .SIMD(8)",
            "pe_must_be_1_to_m",
        ),
        (
            "cbnn_mvtu",
            "N(8), .M(4), .PE(4), .SIMD(9)",
            "simd_must_be_1_to_n",
        ),
        (
            "cbnn_mvtu",
            "N(8), .M(4), .PE(4), .SIMD(8), .PIPE(2)",
            "pipe_must_be_0_or_1",
        ),
        (
            "cbnn_mvtu",
            "N(8), .M(4), .PE(2), .SIMD(8), .CONST_WEIGHTS(1)",
            "const_weights_need_nf_sf_1",
        ),
        ("cbnn_popcount", "W(0)", "w_must_be_at_least_1"),
        ("cbnn_popcount", "W(8), .PIPE(3)", "pipe_must_be_0_or_1"),
        ("cbnn_popcount", "W(8), .OW(3)", "ow_too_narrow_for_w"),
        ("cbnn_popcount", "W(8), .LEAF(4)", "leaf_must_be_1_or_6"),
        ("cbnn_argmax", "C(1)", "c_must_be_at_least_2"),
        ("cbnn_unpack", "N(8), .IW(0)", "iw_must_be_at_least_1"),
        ("cbnn_rom", "W(8), .D(0)", "d_must_be_at_least_1"),
        ("cbnn_skid", "W(0)", "w_must_be_at_least_1"),
        ("cbnn_swu", "H(4), .W(0)", "h_w_c_must_be_at_least_1"),
        ("cbnn_swu", "K(3), .PAD(2)", "pad_must_be_0_or_1"),
        ("cbnn_pool", "C(0)", "c_must_be_at_least_1"),
        ("cbnn_fifo", "W(0)", "w_must_be_at_least_1"),
        ("cbnn_split", "PPB(0)", "ppb_pw_n_must_be_at_least_1"),
        ("cbnn_fifo", "W(4), .DEPTH(0)", "depth_must_be_at_least_1"),
        (
            "cbnn_pool",
            "H(4), .W(4), .P(1)",
            "p_must_be_2_to_the_image_side",
        ),
        (
            "cbnn_pool",
            "H(4), .W(3), .P(4)",
            "p_must_be_2_to_the_image_side",
        ),
        (
            "cbnn_swu",
            "K(4), .PAD(1)",
            "k_must_be_at_least_1_and_odd_with_same",
        ),
        (
            "cbnn_swu",
            "H(4), .W(4), .K(5), .PAD(0)",
            "valid_k_must_fit_the_image",
        ),
        ("cbnn_pipe", "W(0)", "w_must_be_at_least_1"),
        ("cbnn_lut", "N(8), .M(2), .F(7)", "f_must_be_1_to_6"),
        (
            "cbnn_lut",
            "N(9), .M(2), .F(2), .AW(3)",
            "aw_too_narrow_for_n",
        ),
        (
            "cbnn_lut",
            "N(5), .M(1), .F(2), .AW(3), .CONN(6'o64)",
            "conn_must_be_below_n",
        ),
    ];
    let elaborate = |module: &str, params: &str| -> (bool, String, bool, String) {
        let _ = module;
        let top = format!("module t; {module} #(.{params}) u (); endmodule\n");
        std::fs::write(dir.join("t.v"), top).unwrap();
        let mut files: Vec<String> = rtlgen::all_cores().map(|(n, _)| n.to_string()).collect();
        files.push("t.v".into());
        let v = std::process::Command::new("verilator")
            .current_dir(&dir)
            .args([
                "--lint-only",
                "-Wno-fatal",
                "-Wno-PINMISSING",
                "--top-module",
                "t",
            ])
            .args(&files)
            .output()
            .unwrap();
        let y = std::process::Command::new("yosys")
            .current_dir(&dir)
            .args([
                "-p",
                &format!("read_verilog {}; hierarchy -check -top t", files.join(" ")),
            ])
            .output()
            .unwrap();
        let text = |o: &std::process::Output| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        };
        (v.status.success(), text(&v), y.status.success(), text(&y))
    };
    for (module, params, rule) in cases {
        let (v_ok, v_text, y_ok, y_text) = elaborate(module, params);
        assert!(
            !v_ok && v_text.contains(rule),
            "{module} #({params}) in verilator:\n{v_text}"
        );
        assert!(
            !y_ok && y_text.contains(rule),
            "{module} #({params}) in yosys:\n{y_text}"
        );
    }
    let (v_ok, v_text, y_ok, y_text) = elaborate("cbnn_mvtu", "N(8), .M(4), .PE(4), .SIMD(8)");
    assert!(
        v_ok && y_ok,
        "legal parameters refused:\n{v_text}\n{y_text}"
    );
}
