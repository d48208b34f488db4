//! Synthesis: constraint files, the Yosys flows for every target, iCE40 place and route, the
//! resource model against Yosys, automatic folding against the cycle model and the simulator.

mod common;
use common::*;

use std::path::Path;

use cbnn::cosim;
use cbnn::plan::{self, RtlConfig};
use cbnn::reference::schedule::Schedule;
use cbnn::rtlgen;
use cbnn::synth::{self, estimate, Target};
use cbnn::vocab::fold::LayerFold;

fn design(
    model: &cbnn::model::IntModel,
    fold: &[LayerFold],
    ppb: usize,
    name: &str,
) -> (std::path::PathBuf, rtlgen::Manifest) {
    let dir = temp_dir(name);
    let mut m = rtlgen::generate(
        model,
        Path::new("random.json"),
        &RtlConfig {
            fold: fold.to_vec(),
            pixels_per_beat: ppb,
            bits_per_beat: None,
            clock_mhz: 50.0,
        },
        &dir,
    )
    .unwrap();
    m.constraints = synth::constraints::write(&dir, &m).unwrap();
    rtlgen::write_manifest(&dir, &mut m).unwrap();
    (dir, m)
}

#[test]
fn constraints_carry_the_clock_and_the_file_list() {
    let model = random_model(1, 16, &[7, 6], &[8], 3);
    let dir = temp_dir("synth-constraints");
    let path = dir.join("m.json");
    cbnn::model::save(&model, &path).unwrap();
    let d = dir.join("d");
    cbnn_ok(&[
        "rtl",
        path.to_str().unwrap(),
        "-o",
        d.to_str().unwrap(),
        "--clock-mhz",
        "250",
    ]);
    let xdc = std::fs::read_to_string(d.join("cbnn.xdc")).unwrap();
    assert!(
        xdc.contains("create_clock -name ap_clk -period 4.000 [get_ports ap_clk]"),
        "{xdc}"
    );
    let sdc = std::fs::read_to_string(d.join("cbnn.sdc")).unwrap();
    assert!(sdc.contains("-period 4.000"), "{sdc}");
    let ys = std::fs::read_to_string(d.join("synth_xilinx.ys")).unwrap();
    assert!(
        ys.contains("read_verilog -defer cbnn_popcount.v cbnn_rom.v"),
        "{ys}"
    );
    assert!(!ys.contains("{{"));
    let manifest = rtlgen::load_manifest(&d).unwrap();
    assert_eq!(manifest.clock_mhz, 250.0);
    assert!(manifest.constraints.contains(&"cbnn.pcf".to_string()));
    assert_fails(
        &cbnn(&[
            "rtl",
            path.to_str().unwrap(),
            "-o",
            d.to_str().unwrap(),
            "--clock-mhz",
            "0",
        ]),
        2,
        "--clock-mhz 0 must be between 1 and 2000",
    );
}

/// The generic and iCE40 flows on a small design: cells, transistors, and for iCE40 a placed
/// and routed design with its achieved clock.
#[test]
fn generic_and_ice40_flows_run_on_a_small_design() {
    let model = random_model(2, 12, &[7, 6], &[10], 4);
    let fold = [LayerFold::new(5, 8), LayerFold::new(4, 10)];
    let (dir, m) = design(&model, &fold, 4, "synth-small");

    let g = synth::synthesize(&dir, &m, Target::Generic).unwrap();
    assert!(g.resources.ffs > 50, "{g:?}");
    assert!(g.resources.transistors.unwrap() > 1000, "{g:?}");
    assert_eq!(g.cycles_per_image, m.initiation_interval);

    let out = cbnn_ok(&[
        "synth",
        dir.to_str().unwrap(),
        "--target",
        "ice40",
        "--json",
        dir.join("ice40.json").to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("fmax"), "{text}");
    let j = json_file(&dir.join("ice40.json"));
    assert_eq!(j["target"], "ice40");
    assert!(j["luts"].as_u64().unwrap() > 20, "{j}");
    assert!(j["ffs"].as_u64().unwrap() > 20, "{j}");
    let fmax = j["fmax_mhz"].as_f64().unwrap();
    assert!(fmax > 10.0 && fmax < 1000.0, "{j}");
    assert_eq!(
        j["cycles_per_image"].as_u64().unwrap(),
        m.initiation_interval
    );
    assert!(dir.join("synth_ice40.log").is_file());
    assert!(dir.join("nextpnr_ice40.log").is_file());

    // A clock the design cannot reach is reported, not a failed run.
    let (fast, mf) = design(&model, &fold, 4, "synth-small-fast");
    let mut mf = mf;
    mf.clock_mhz = 2000.0;
    let r = synth::synthesize(&fast, &mf, Target::Ice40).unwrap();
    let f = r.fmax_mhz.unwrap();
    assert!(f < 2000.0, "{r:?}");
    assert!(
        r.place_and_route.contains("below the 2000 MHz constraint"),
        "{r:?}"
    );
}

/// A convolutional pipeline (window unit, unit, pool, FIFO, gathered dense layer) goes through
/// the Xilinx and iCE40 flows, the latter placed and routed, with its interval reported.
#[test]
fn xilinx_and_ice40_flows_run_on_a_conv_pipeline() {
    let model = random_conv_model(
        11,
        (8, 8),
        &[7, 6],
        &[Op::Conv(4, 3, true), Op::Pool(2), Op::Dense(6)],
        3,
    );
    let fold = [
        LayerFold::new(2, 6),
        LayerFold::new(1, 4),
        LayerFold::new(3, 16),
        LayerFold::new(3, 6),
    ];
    let (dir, m) = design(&model, &fold, 1, "synth-conv");
    let x = synth::synthesize(&dir, &m, Target::Xilinx).unwrap();
    assert!(x.resources.luts > 50 && x.resources.ffs > 50, "{x:?}");
    assert_eq!(x.cycles_per_image, m.initiation_interval);
    let i = synth::synthesize(&dir, &m, Target::Ice40).unwrap();
    assert!(i.fmax_mhz.is_some_and(|f| f > 10.0), "{i:?}");
}

/// Yosys failing is reported with the lines of its log around the error, exit code 1.
#[test]
fn a_yosys_failure_shows_the_error() {
    let model = random_model(3, 6, &[7], &[4], 2);
    let (dir, _) = design(
        &model,
        &[LayerFold::new(2, 3), LayerFold::new(2, 4)],
        3,
        "synth-broken",
    );
    std::fs::write(dir.join("cbnn_skid.v"), "module cbnn_skid(; endmodule\n").unwrap();
    let out = cbnn(&["synth", dir.to_str().unwrap(), "--target", "generic"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("yosys failed on"), "{err}");
    assert!(err.contains("cbnn_skid.v:1: ERROR: syntax error"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `cbnn synth` runs only the Yosys script `cbnn rtl` writes for the design: a script edited to
/// run a command (Yosys's `shell`) is refused before Yosys starts, and a manifest whose names
/// would carry a command into the script is refused as inconsistent.
#[test]
fn only_cbnns_own_yosys_script_is_run() {
    let model = random_model(3, 6, &[7], &[4], 2);
    let (dir, _) = design(
        &model,
        &[LayerFold::new(2, 3), LayerFold::new(2, 4)],
        3,
        "synth-script",
    );
    let script = dir.join("synth_generic.ys");
    let own = std::fs::read_to_string(&script).unwrap();
    let marker = dir.join("ran");
    std::fs::write(&script, format!("shell touch {}\n{own}", marker.display())).unwrap();
    let out = cbnn(&["synth", dir.to_str().unwrap(), "--target", "generic"]);
    assert_fails(
        &out,
        2,
        "synth_generic.ys: differs from the script `cbnn rtl` writes for this design",
    );
    assert!(!marker.exists(), "the edited script ran");
    assert!(!dir.join("synth_generic.log").exists());
    // Names that would carry a command into a script.
    std::fs::write(&script, own).unwrap();
    let manifest = dir.join("design.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["module"] = "cbnn_top; shell touch ran".into();
    std::fs::write(&manifest, serde_json::to_string(&m).unwrap()).unwrap();
    let out = cbnn(&["synth", dir.to_str().unwrap(), "--target", "generic"]);
    assert_fails(
        &out,
        2,
        "\"module\" is 'cbnn_top; shell touch ran', not a Verilog identifier",
    );
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["files"][0] = "a;b.v".into();
    std::fs::write(&manifest, serde_json::to_string(&m).unwrap()).unwrap();
    let out = cbnn(&["synth", dir.to_str().unwrap(), "--target", "generic"]);
    assert_fails(
        &out,
        2,
        "names 'a;b.v', which is not a file name cbnn gives",
    );
    assert!(!marker.exists());
}

/// The resource model stays within its stated tolerance of Yosys's LUT count and matches its
/// block RAM on designs it was not fitted on.
#[test]
fn resource_estimate_is_within_tolerance_of_yosys() {
    let cases: Vec<(cbnn::model::IntModel, Vec<LayerFold>, usize)> = vec![
        (
            random_model(11, 49, &[7, 6], &[24], 10),
            vec![LayerFold::new(8, 14), LayerFold::new(10, 24)],
            7,
        ),
        (
            random_model(12, 36, &[7], &[40, 16], 10),
            vec![
                LayerFold::new(4, 6),
                LayerFold::new(4, 40),
                LayerFold::new(10, 16),
            ],
            6,
        ),
        (
            random_model(13, 64, &[7, 6, 5], &[32], 10),
            vec![
                LayerFold {
                    pe: 16,
                    simd: 48,
                    pipe: 1,
                },
                LayerFold::new(10, 32),
            ],
            8,
        ),
        (
            random_model(14, 100, &[7], &[20], 5),
            vec![LayerFold::new(2, 10), LayerFold::new(5, 5)],
            10,
        ),
        (
            random_model(15, 25, &[7, 6], &[30, 20], 10),
            vec![
                LayerFold::new(30, 50),
                LayerFold::new(5, 10),
                LayerFold::new(10, 20),
            ],
            5,
        ),
    ];
    estimates_hold_against_yosys(&cases, "synth-est");
}

/// The same on convolutional pipelines it was not fitted on (sliding windows, pools, FIFOs
/// and the input splitter included), from the design's own manifest (FIFO depths).
#[test]
fn resource_estimate_holds_on_conv_pipelines() {
    let cases: Vec<(cbnn::model::IntModel, Vec<LayerFold>, usize)> = vec![
        (
            random_conv_model(
                31,
                (12, 12),
                &[7, 6, 5],
                &[Op::Conv(10, 3, true), Op::Pool(2), Op::Dense(20)],
                10,
            ),
            vec![
                LayerFold::new(5, 27),
                LayerFold::new(1, 1),
                LayerFold::new(4, 90),
                LayerFold::new(10, 20),
            ],
            1,
        ),
        (
            random_conv_model(
                32,
                (14, 14),
                &[7, 6],
                &[
                    Op::Conv(8, 5, true),
                    Op::Pool(2),
                    Op::Conv(12, 3, false),
                    Op::Pool(5),
                    Op::Dense(16),
                ],
                6,
            ),
            vec![
                LayerFold::new(4, 25),
                LayerFold::new(1, 1),
                LayerFold::new(6, 24),
                LayerFold::new(1, 1),
                LayerFold::new(4, 12),
                LayerFold::new(6, 16),
            ],
            2,
        ),
        (
            random_conv_model(
                33,
                (16, 16),
                &[7],
                &[
                    Op::Conv(16, 3, false),
                    Op::Conv(16, 3, false),
                    Op::Pool(3),
                    Op::Dense(12),
                ],
                4,
            ),
            vec![
                LayerFold::new(16, 9),
                LayerFold::new(8, 48),
                LayerFold::new(1, 1),
                LayerFold::new(3, 64),
                LayerFold::new(4, 12),
            ],
            1,
        ),
    ];
    for est in estimates_hold_against_yosys(&cases, "synth-conv-est") {
        assert!(est.terms.window > 0.0 && est.terms.pool > 0.0, "{est:?}");
    }
}

/// The same on logic-mapped designs (truth tables, group sums of about 50 bits a class, the
/// argmax), which the model counts from the cores' own measurements.
#[test]
fn resource_estimate_holds_on_logic_mapped_designs() {
    let cases: Vec<(cbnn::model::IntModel, Vec<LayerFold>, usize)> = [
        random_lut_model(41, (12, 12), &[7, 6], &[(300, 6)], 6),
        random_lut_model(42, (10, 10), &[7], &[(120, 5), (200, 6)], 4),
    ]
    .into_iter()
    .map(|m| {
        let fold = plan::fold::default_folding(&m, 0);
        (m, fold, 1)
    })
    .collect();
    for est in estimates_hold_against_yosys(&cases, "synth-lut-est") {
        assert!(
            est.terms.tables > 0.0 && est.terms.group_sum > 0.0,
            "{est:?}"
        );
    }
}

/// Synthesizes each case (model, folding, pixels per beat) with Yosys (xilinx) and holds the
/// resource model of its design within [`estimate::LUT_TOLERANCE`] of the LUTs and equal in
/// block RAM bits; returns the estimates.
fn estimates_hold_against_yosys(
    cases: &[(cbnn::model::IntModel, Vec<LayerFold>, usize)],
    name: &str,
) -> Vec<estimate::Estimate> {
    let mut report = String::new();
    let mut worst: f64 = 0.0;
    let mut estimates = Vec::new();
    for (i, (model, fold, ppb)) in cases.iter().enumerate() {
        let (dir, m) = design(model, fold, *ppb, &format!("{name}{i}"));
        let est = estimate::for_manifest(model, &m);
        let rep = synth::synthesize(&dir, &m, Target::Xilinx).unwrap();
        let luts = rep.resources.luts as f64;
        let err = (est.luts as f64 - luts) / luts;
        worst = worst.max(err.abs());
        report += &format!(
            "{name} case {i}: estimate {} LUTs, Yosys {luts} ({:+.1} %); block RAM bits {} vs {} {:?}\n",
            est.luts,
            100.0 * err,
            est.bram_bits,
            rep.resources.bram_bits,
            rep.resources.bram_blocks
        );
        assert_eq!(est.bram_bits, rep.resources.bram_bits, "{report}");
        estimates.push(est);
    }
    eprintln!("{report}");
    assert!(
        worst <= estimate::LUT_TOLERANCE,
        "worst {:.1} %:\n{report}",
        100.0 * worst
    );
    estimates
}

/// `--fold auto --target-cycles N` meets N in the manifest (the cycle model) and in simulation.
#[test]
fn automatic_folding_meets_the_target_in_the_cycle_model_and_in_simulation() {
    let model = random_model(21, 30, &[7, 6], &[40, 24], 6);
    let dir = temp_dir("synth-auto");
    let path = dir.join("m.json");
    cbnn::model::save(&model, &path).unwrap();
    for target in [12usize, 40, 150] {
        let d = dir.join(format!("t{target}"));
        cbnn_ok(&[
            "rtl",
            path.to_str().unwrap(),
            "-o",
            d.to_str().unwrap(),
            "--fold",
            "auto",
            "--target-cycles",
            &target.to_string(),
        ]);
        let m = rtlgen::load_manifest(&d).unwrap();
        assert!(
            m.initiation_interval <= target as u64,
            "target {target}: {}",
            m.initiation_interval
        );
        for l in &m.layers {
            assert!(l.cycles_per_image <= target, "target {target}: {l:?}");
        }
        let (exe, _) = cosim::build(&d, &m.files, false).unwrap();
        let images = random_images(target as u64, 40, 30);
        let rep = cosimulate(&exe, &d, &model, &m, &images, Schedule::FREE).unwrap();
        assert_eq!(rep.matched, 40);
        // Steady state in simulation: one image every initiation interval or faster.
        let per_image = (rep.cycles - m.latency) as f64 / 39.0;
        assert!(
            per_image <= target as f64 + 0.5,
            "target {target}: {per_image} cycles per image simulated"
        );
    }
    assert_fails(
        &cbnn(&[
            "rtl",
            path.to_str().unwrap(),
            "-o",
            dir.join("x").to_str().unwrap(),
            "--fold",
            "auto",
        ]),
        2,
        "--fold auto needs --target-cycles N",
    );
    assert_fails(
        &cbnn(&[
            "rtl",
            path.to_str().unwrap(),
            "-o",
            dir.join("x").to_str().unwrap(),
            "--fold",
            "auto",
            "--target-cycles",
            "1",
        ]),
        2,
        "--target-cycles 1",
    );
}

/// A truth-table neuron of six inputs is one LUT6 for Yosys's Xilinx flow (and one of fewer
/// inputs is one smaller LUT): what makes a logic-mapped layer cost a LUT a neuron.
#[test]
fn yosys_maps_a_six_input_truth_table_neuron_to_one_lut6() {
    let dir = temp_dir("synth-lut6");
    std::fs::write(dir.join("cbnn_lut.v"), rtlgen::LUT_CORES[0].1).unwrap();
    // Three neurons over 10 inputs: two of fan-in 6 whose tables depend on every input, and
    // one (neuron 0, `ff00ff00f0f0f0f0`) whose table depends on address bits 2, 3 and 5 only.
    std::fs::write(
        dir.join("t.v"),
        "module t(input wire [9:0] x, output wire [2:0] y);\n  cbnn_lut #(.N(10), .M(3), .F(6), .AW(4),\n    .CONN(72'h987654_012345_234567),\n    .TABLES(192'h0123456789abcdef_fedcba9876543210_ff00ff00f0f0f0f0)) u (.x(x), .y(y));\nendmodule\n",
    )
    .unwrap();
    let out = std::process::Command::new("yosys")
        .current_dir(&dir)
        .args([
            "-p",
            "read_verilog cbnn_lut.v t.v; synth_xilinx -top t; stat",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stdout);
    let count = |cell: &str| -> usize {
        log.lines()
            .rev()
            .find(|l| l.split_whitespace().next() == Some(cell))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(count("LUT6"), 2, "{log}");
    assert_eq!(
        count("LUT3"),
        1,
        "neuron 0 depends on three of its inputs: {log}"
    );
    let luts: usize = (1..=6).map(|k| count(&format!("LUT{k}"))).sum();
    assert_eq!(luts, 3, "one LUT a neuron: {log}");
}
