//! The generated accelerator: lint, other tools, snapshot, and co-simulation against the
//! reference model and the cycle model (Verilator, installed by the test command).

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

use cbnn::cosim;
use cbnn::plan::{self, RtlConfig};
use cbnn::reference::cycle;
use cbnn::reference::schedule::Schedule;
use cbnn::rtlgen;
use cbnn::vocab::fold::LayerFold;

fn generate(
    model: &cbnn::model::IntModel,
    fold: Vec<LayerFold>,
    ppb: usize,
    dir: &Path,
) -> rtlgen::Manifest {
    rtlgen::generate(
        model,
        Path::new("random.json"),
        &RtlConfig {
            fold,
            pixels_per_beat: ppb,
            bits_per_beat: None,
            clock_mhz: plan::DEFAULT_CLOCK_MHZ,
        },
        dir,
    )
    .unwrap()
}

fn run_tool(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is missing ({e}); the test command installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{program} failed in {}:\n{text}",
        dir.display()
    );
    text
}

fn files(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("filelist.f"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// Several shapes and foldings: fully parallel layers, deep folding, non-divisible padding,
/// one plane and eight, two classes and ten.
fn cases() -> Vec<(cbnn::model::IntModel, Vec<LayerFold>, usize)> {
    let f = |v: &[(usize, usize, usize)]| {
        v.iter()
            .map(|&(pe, simd, pipe)| LayerFold { pe, simd, pipe })
            .collect::<Vec<_>>()
    };
    vec![
        (
            random_model(1, 9, &[7, 6, 5], &[20, 12], 10),
            f(&[(7, 10, 0), (5, 6, 1), (3, 5, 0)]),
            4,
        ),
        (
            random_model(2, 16, &[7], &[8], 2),
            f(&[(8, 16, 1), (2, 8, 1)]),
            16,
        ),
        (
            random_model(3, 5, &[7, 6, 5, 4, 3, 2, 1, 0], &[33, 31, 7], 3),
            f(&[(1, 1, 0), (31, 33, 1), (3, 31, 0), (1, 7, 1)]),
            3,
        ),
        (
            random_model(4, 7, &[6, 0], &[65], 4),
            f(&[(64, 3, 0), (4, 65, 0)]),
            7,
        ),
        // Logic-mapped: two lut layers, registered group sums.
        {
            let m = random_lut_model(9, (6, 6), &[7, 6], &[(40, 5), (30, 6)], 3);
            let fold = plan::fold::default_folding(&m, 1);
            (m, fold, 1)
        },
    ]
}

#[test]
fn generated_rtl_is_lint_clean_and_read_by_iverilog_and_yosys() {
    for (i, (model, fold, ppb)) in cases().into_iter().enumerate() {
        let dir = temp_dir(&format!("lint{i}"));
        let manifest = generate(&model, fold, ppb, &dir);
        let list = files(&dir);
        let mut lint = vec!["--lint-only", "-Wall", "--top-module", "cbnn_top"];
        lint.extend(list.iter().map(String::as_str));
        let text = run_tool(&dir, "verilator", &lint);
        assert!(!text.contains("%Warning"), "verilator warnings:\n{text}");
        let mut iv = vec!["-g2005", "-Wall", "-s", "cbnn_top", "-o", "sim.vvp"];
        iv.extend(list.iter().map(String::as_str));
        let text = run_tool(&dir, "iverilog", &iv);
        assert!(!text.to_lowercase().contains("error"), "iverilog:\n{text}");
        // A plain flow: no -defer, no cbnn-specific options; every module is elaborated with
        // its default parameters as it is read.
        let script = format!(
            "read_verilog {}; hierarchy -check -top cbnn_top; proc; check -assert",
            list.join(" ")
        );
        run_tool(&dir, "yosys", &["-q", "-p", &script]);
        let text = run_tool(
            &dir,
            "iverilog",
            &[
                "-g2005",
                "-s",
                "cbnn_top",
                "-o",
                "f.vvp",
                "-c",
                "filelist.f",
            ],
        );
        assert!(
            !text.to_lowercase().contains("error"),
            "iverilog -c filelist.f:\n{text}"
        );
        run_tool(
            &dir,
            "verilator",
            &[
                "--lint-only",
                "-Wall",
                "--top-module",
                "cbnn_top",
                "-f",
                "filelist.f",
            ],
        );
        assert_eq!(manifest.files, list);
    }
}

#[test]
fn generated_top_level_snapshot() {
    let (model, fold, ppb) = cases().swap_remove(0);
    let dir = temp_dir("snapshot");
    generate(&model, fold, ppb, &dir);
    let top = std::fs::read_to_string(dir.join("cbnn_top.v")).unwrap();
    let top = top.replace(env!("CARGO_PKG_VERSION"), "VERSION");
    insta::assert_snapshot!("cbnn_top_small", top);
}

/// Every file of five designs (an MLP at two foldings, a conv pipeline with its FIFOs, a
/// logic-mapped design, the same behind a narrow port) is byte for byte what it was when the
/// snapshot was taken: the RTL, the memory images, design.json, the constraints, the file
/// list; and each is its plan's (the timing and the estimate of `plan::build`, the files of
/// `rtlgen::generate`). The listing gives each file's size and FNV-1a hash (the version string replaced), so
/// that a change to what the generator writes is seen, file by file, and taken on purpose
/// (`cargo insta review`).
#[test]
fn generated_designs_are_byte_identical_to_their_snapshots() {
    let (mlp, mlp_fold, mlp_ppb) = cases().swap_remove(0);
    let lut = cases().swap_remove(4).0;
    let conv = two_conv_model();
    let folds = |m: &cbnn::model::IntModel, pe_simd: &[(usize, usize)]| -> Vec<LayerFold> {
        plan::fold::shapes(m)
            .iter()
            .zip(pe_simd)
            .map(|(s, &(pe, simd))| LayerFold::new(pe.min(s.outputs), simd.min(s.inputs)))
            .collect()
    };
    /// A design's name, model, folding, pixels a beat and bits a beat.
    type Design<'m> = (
        &'static str,
        &'m cbnn::model::IntModel,
        Vec<LayerFold>,
        usize,
        Option<usize>,
    );
    let designs: Vec<Design> = vec![
        ("mlp", &mlp, mlp_fold, mlp_ppb, None),
        (
            "mlp-folded",
            &mlp,
            folds(&mlp, &[(2, 9), (3, 4), (1, 12)]),
            1,
            None,
        ),
        (
            "conv",
            &conv,
            folds(&conv, &[(5, 9), (1, 1), (2, 45), (7, 8), (5, 7)]),
            2,
            None,
        ),
        ("lut", &lut, plan::fold::default_folding(&lut, 1), 1, None),
        (
            "lut-narrow",
            &lut,
            plan::fold::default_folding(&lut, 1),
            1,
            Some(7),
        ),
    ];
    let mut listing = String::new();
    for (name, model, fold, ppb, bits) in designs {
        let dir = temp_dir(&format!("bytes-{name}"));
        let cfg = RtlConfig {
            fold,
            pixels_per_beat: ppb,
            bits_per_beat: bits,
            clock_mhz: plan::DEFAULT_CLOCK_MHZ,
        };
        let plan = cbnn::plan::build(model, Path::new("random.json"), &cfg).unwrap();
        let manifest = rtlgen::write(&plan, Path::new("random.json"), &dir).unwrap();
        // The plan is what the design says it is: its timing, and its estimate.
        assert_eq!(manifest.initiation_interval, plan.timing.interval, "{name}");
        assert_eq!(manifest.latency, plan.timing.latency, "{name}");
        assert_eq!(
            cbnn::synth::estimate::for_plan(&plan),
            cbnn::synth::estimate::for_manifest(model, &manifest),
            "{name}"
        );
        let dir2 = temp_dir(&format!("bytes-{name}-generated"));
        rtlgen::generate(model, Path::new("random.json"), &cfg, &dir2).unwrap();
        assert_eq!(tree(&dir2), tree(&dir), "{name}");
        std::fs::remove_dir_all(&dir2).unwrap();
        listing.push_str(&format!("{name}\n"));
        for (path, bytes) in tree(&dir) {
            let text =
                String::from_utf8_lossy(&bytes).replace(env!("CARGO_PKG_VERSION"), "VERSION");
            listing.push_str(&format!(
                "  {} {} {:016x}\n",
                path.display(),
                text.len(),
                cbnn::util::hash::fnv(cbnn::util::hash::FNV_START, text.as_bytes())
            ));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    insta::assert_snapshot!("generated_design_bytes", listing);
}

/// Random small models, random PE/SIMD (non-divisible ones included), random stalls: every
/// output beat and its cycle equal the reference model's and the cycle model's.
#[test]
fn randomized_cosimulation_sweep() {
    let mut rng = cbnn::util::rng::Rng::new(77, 0);
    for case in 0..4u64 {
        let pixels = 3 + rng.below(10);
        let k = 1 + rng.below(8);
        let planes: Vec<u8> = (0..k as u8).rev().map(|p| p + (8 - k as u8)).collect();
        let depth = 1 + rng.below(2);
        let hidden: Vec<usize> = (0..depth).map(|_| 2 + rng.below(40)).collect();
        let classes = 2 + rng.below(9);
        let model = random_model(100 + case, pixels, &planes, &hidden, classes);
        let mut fold: Vec<LayerFold> = plan::fold::shapes(&model)
            .iter()
            .map(|s| LayerFold {
                pe: 1 + rng.below(s.outputs),
                simd: 1 + rng.below(s.inputs),
                pipe: rng.below(2),
            })
            .collect();
        if case < 2 {
            // A fully parallel layer, weights compiled into logic.
            let shapes = plan::fold::shapes(&model);
            let l = (case as usize) % shapes.len();
            fold[l] = LayerFold {
                pe: shapes[l].outputs,
                simd: shapes[l].inputs,
                pipe: case as usize,
            };
        }
        let ppb = 1 + rng.below(pixels);
        let dir = temp_dir(&format!("sweep{case}"));
        let manifest = generate(&model, fold.clone(), ppb, &dir);
        if case < 2 {
            assert!(manifest.layers.iter().any(|l| l.weights_in_logic));
        }
        // The manifest (whose folding the co-simulation's cycle model uses) says what was asked.
        assert_eq!(manifest.folding(), fold);
        let images = random_images(case, 60, pixels);
        let stalls = [rng.next_u64() % 1000];
        let what =
            format!("case {case} (planes {planes:?}, hidden {hidden:?}, fold {fold:?}, ppb {ppb})");
        cosimulates_exactly(&dir, &model, &manifest, &images, &stalls, &what);
    }
}

/// Random small convnets (random image sizes, kernels, paddings, channel counts that are no
/// multiples of anything, pools that do not divide the image, random foldings, input beats of
/// one to four pixels) co-simulate
/// with zero mismatches in class, scores and cycle, free-running and stalled, and never
/// deadlock; the manifest's interval is the cycle model's.
#[test]
fn randomized_conv_cosimulation_sweep() {
    let mut rng = cbnn::util::rng::Rng::new(78, 0);
    for case in 0..4u64 {
        let (h, w) = (5 + rng.below(6), 5 + rng.below(6));
        let k = 1 + rng.below(4);
        let planes: Vec<u8> = (0..k as u8).rev().map(|p| p + (8 - k as u8)).collect();
        let kernel = |rng: &mut cbnn::util::rng::Rng| [1, 3, 3, 5][rng.below(4)];
        let first = kernel(&mut rng);
        let mut ops = vec![Op::Conv(
            2 + rng.below(6),
            first,
            rng.below(2) == 0 || first > 3,
        )];
        if case % 2 == 0 {
            ops.push(Op::Pool(2 + rng.below(2)));
        }
        if case >= 2 {
            ops.push(Op::Conv(1 + rng.below(5), 3, true));
        }
        if case != 1 {
            ops.push(Op::Dense(2 + rng.below(12)));
        }
        let classes = 2 + rng.below(9);
        let model = random_conv_model(200 + case, (h, w), &planes, &ops, classes);
        let fold: Vec<LayerFold> = plan::fold::shapes(&model)
            .iter()
            .map(|s| LayerFold {
                pe: 1 + rng.below(s.outputs),
                simd: 1 + rng.below(s.inputs),
                pipe: rng.below(2),
            })
            .collect();
        // Input beats of one to four pixels.
        let ppb = 1 + (case as usize + 1) % 4;
        let dir = temp_dir(&format!("conv-sweep{case}"));
        let manifest = generate(&model, fold.clone(), ppb, &dir);
        let timing = plan::timing(&model, &fold, ppb);
        assert_eq!(
            manifest.initiation_interval,
            cycle::latency_and_interval(&timing).1
        );
        let images = cbnn::data::Images {
            height: h,
            width: w,
            ..random_images(case, 12, h * w)
        };
        let stalls = [rng.next_u64() % 1000, rng.next_u64() % 1000];
        let what =
            format!("case {case} ({h}x{w}, planes {planes:?}, {ops:?}, fold {fold:?}, ppb {ppb})");
        cosimulates_exactly(&dir, &model, &manifest, &images, &stalls, &what);
    }
}

/// Random logic-mapped models (random image sizes, planes, one or two `lut` layers of every
/// fan-in, group sizes that cross words) become designs whose port carries exactly the input
/// bits the first layer reads, that are lint-clean, take one image a cycle (or, behind the
/// deserializer of a narrower port, one every `beats + 1`), and co-simulate with zero
/// mismatches in class, scores and cycle, free-running and stalled.
#[test]
fn randomized_logic_mapped_cosimulation_sweep() {
    let mut rng = cbnn::util::rng::Rng::new(79, 0);
    for case in 0..5u64 {
        let (h, w) = (4 + rng.below(6), 4 + rng.below(6));
        let k = 1 + rng.below(3);
        let planes: Vec<u8> = (0..k as u8).rev().map(|p| p + (8 - k as u8)).collect();
        let classes = 2 + rng.below(9);
        let group = 1 + rng.below(70);
        let mut layers = vec![(5 + rng.below(60), 1 + rng.below(6))];
        if case > 0 {
            layers.push((classes * group, 1 + rng.below(6)));
        } else {
            layers[0].0 = classes * group;
        }
        let model = random_lut_model(400 + case, (h, w), &planes, &layers, classes);
        // Odd cases register the group sums (`--pipe 1`).
        let pipe = (case % 2) as usize;
        let fold = plan::fold::default_folding(&model, pipe);
        assert_eq!(fold.last().unwrap().pipe, pipe);
        let dir = temp_dir(&format!("lut-sweep{case}"));
        let reads = plan::input_reads(&model).unwrap();
        // Cases 3 and 4: a narrower port, the last beat partly padding.
        let bits = (case >= 3).then(|| 1 + rng.below(reads.len() - 1));
        let manifest = rtlgen::generate(
            &model,
            Path::new("random.json"),
            &RtlConfig {
                fold,
                pixels_per_beat: 1,
                bits_per_beat: bits,
                clock_mhz: plan::DEFAULT_CLOCK_MHZ,
            },
            &dir,
        )
        .unwrap();
        assert_eq!(manifest.input.reads.as_ref(), Some(&reads));
        let beats = bits.map_or(1, |b| reads.len().div_ceil(b));
        assert_eq!(manifest.input.bits_per_beat, bits.unwrap_or(reads.len()));
        let interval = if beats == 1 { 1 } else { beats as u64 + 1 };
        assert_eq!(
            manifest.initiation_interval,
            interval,
            "{bits:?} of {}",
            reads.len()
        );
        // A register stage an input, a lut layer and a registered group sum, then the slice;
        // a deserializer hands on the cycle after its last beat.
        let stages = (layers.len() + pipe) as u64 + if beats == 1 { 1 } else { beats as u64 };
        assert_eq!(manifest.latency, stages + 1, "case {case}");
        let mut lint = vec!["--lint-only", "-Wall", "--top-module", "cbnn_top"];
        let list = files(&dir);
        lint.extend(list.iter().map(String::as_str));
        let text = run_tool(&dir, "verilator", &lint);
        assert!(!text.contains("%Warning"), "verilator warnings:\n{text}");
        let images = cbnn::data::Images {
            height: h,
            width: w,
            ..random_images(case, 80, h * w)
        };
        let stalls = [rng.next_u64() % 1000];
        let what = format!("case {case} ({h}x{w}, {planes:?}, {layers:?}, {bits:?} bits)");
        let reports = cosimulates_exactly(&dir, &model, &manifest, &images, &stalls, &what);
        assert_eq!(reports[0].measured_interval, Some(interval), "case {case}");
    }
}

/// A logic-mapped layer whose tables alone are wider than the 2^16 bits of a literal Verilator
/// accepts (1100 neurons of 64-bit tables) is instantiated in blocks and co-simulates exactly.
#[test]
fn a_logic_mapped_layer_wider_than_a_literal_is_built_in_blocks() {
    let model = random_lut_model(77, (10, 10), &[7, 6], &[(1100, 6)], 10);
    let fold = plan::fold::default_folding(&model, 0);
    let dir = temp_dir("lut-blocks");
    let manifest = generate(&model, fold, 1, &dir);
    let top = std::fs::read_to_string(dir.join("cbnn_top.v")).unwrap();
    assert!(
        top.contains("u_l0_2 ("),
        "three blocks of at most 512 neurons"
    );
    let images = cbnn::data::Images {
        height: 10,
        width: 10,
        ..random_images(5, 60, 100)
    };
    cosimulates_exactly(&dir, &model, &manifest, &images, &[3], "lut blocks");
}

/// Two convolutions of about the same speed: without a buffer the second one's window unit
/// holds its window while the unit computes, the pool and the first convolution wait, and the
/// two serialise. The cycle model sizes a FIFO in front of the second that restores the
/// interval of a whole image of buffering, with fewer beats, and the design with it
/// co-simulates exactly.
#[test]
fn fifo_depths_from_the_cycle_model_restore_the_interval() {
    let model = random_conv_model(
        300,
        (10, 10),
        &[7, 6],
        &[Op::Conv(4, 3, true), Op::Pool(2), Op::Conv(4, 3, true)],
        3,
    );
    // Both convolutions take about 900 cycles an image.
    let fold = vec![
        LayerFold::new(1, 9),
        LayerFold::new(1, 4),
        LayerFold::new(1, 4),
        LayerFold::new(3, 20),
    ];
    let interval =
        |d: &[usize]| cycle::latency_and_interval(&plan::timing_with(&model, &fold, 1, d)).1;
    let depths = plan::fifo_depths(&model, &fold, 1);
    let none = interval(&[0, 0, 0, 0]);
    let ample = interval(&[0, 100, 25, 25]);
    assert!(ample < none, "a buffer must help here: {ample} vs {none}");
    assert_eq!(interval(&depths), ample, "depths {depths:?}");
    assert!(
        depths.iter().any(|&d| d > 0) && depths[2] < 100,
        "depths {depths:?}"
    );
    let dir = temp_dir("fifo-sized");
    let manifest = generate(&model, fold.clone(), 1, &dir);
    assert_eq!(manifest.initiation_interval, ample);
    let images = cbnn::data::Images {
        height: 10,
        width: 10,
        ..random_images(9, 10, 100)
    };
    cosimulates_exactly(&dir, &model, &manifest, &images, &[21], "sized FIFOs");
}

/// A real-data model through the whole chain: train on a Fashion-MNIST subset, generate,
/// co-simulate with stalls, and get `cbnn eval`'s accuracy back; the VCD shows the handshakes at
/// the cycles the cycle model predicts.
#[test]
fn real_model_cosimulates_and_the_waveform_shows_the_predicted_handshakes() {
    let dir = temp_dir("hw-real");
    let model = dir.join("m.json");
    let design = dir.join("design");
    cbnn_ok(&[
        "train",
        "--dataset",
        "fashion-mnist",
        "--limit",
        "3000",
        "--epochs",
        "2",
        "--hidden",
        "32,16",
        "--planes",
        "7,6",
        "-o",
        model.to_str().unwrap(),
    ]);
    cbnn_ok(&[
        "rtl",
        model.to_str().unwrap(),
        "-o",
        design.to_str().unwrap(),
        "--fold",
        "L0:5,60;L1:16,32;L2:3,7",
    ]);
    let sim_json = dir.join("sim.json");
    let vcd_path = dir.join("wave.vcd");
    cbnn_ok(&[
        "sim",
        design.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--count",
        "300",
        "--stall-seed",
        "5",
        "--json",
        sim_json.to_str().unwrap(),
        "--vcd",
        vcd_path.to_str().unwrap(),
    ]);
    let sim: serde_json::Value = json_file(&sim_json);
    assert_eq!(sim["matched"], 300);
    // The simulated accuracy is the reference model's, image for image.
    let csv = dir.join("p.csv");
    let out = cbnn(&[
        "eval",
        model.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--predictions",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let labels_ok = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .skip(1)
        .take(300)
        .filter(|l| {
            let f: Vec<&str> = l.split(',').collect();
            f[1] == f[2]
        })
        .count();
    assert_eq!(sim["correct"].as_u64().unwrap() as usize, labels_ok);

    // Output handshake cycles in the waveform equal the cycle model's prediction.
    let m = cbnn::model::load(&design.join("model.json")).unwrap();
    let manifest = rtlgen::load_manifest(&design).unwrap();
    let timing = plan::timing(&m, &manifest.folding(), manifest.input.per_beat());
    let predicted = cycle::output_cycles(
        &timing,
        300,
        Schedule {
            stall_seed: Some(5),
        },
        u64::MAX,
    )
    .unwrap();
    assert_eq!(handshake_cycles(&vcd_path), predicted);
}

/// Cycles in which m_axis_tvalid and m_axis_tready are both high at the clock's rising edge.
/// The harness dumps 2 time units a cycle after 4 units of reset: cycle t's rising edge is at
/// time 2t + 5, and its inputs settle at 2t + 4.
fn handshake_cycles(path: &Path) -> Vec<u64> {
    use vcd::{Command as C, Value};
    let file = std::fs::File::open(path).unwrap();
    let mut parser = vcd::Parser::new(std::io::BufReader::new(file));
    let header = parser.parse_header().unwrap();
    let find = |name: &str| {
        header
            .find_var(&["TOP", name])
            .unwrap_or_else(|| panic!("{name} not in VCD"))
            .code
    };
    let (valid, ready) = (find("m_axis_tvalid"), find("m_axis_tready"));
    let (mut v, mut r) = (false, false);
    let mut out = Vec::new();
    for cmd in parser {
        match cmd.unwrap() {
            // At a rising edge's timestamp the values held are those settled in that cycle.
            C::Timestamp(t) if t >= 5 && t % 2 == 1 && v && r => out.push((t - 5) / 2),
            C::ChangeScalar(code, value) if code == valid => v = value == Value::V1,
            C::ChangeScalar(code, value) if code == ready => r = value == Value::V1,
            _ => {}
        }
    }
    out
}

#[test]
fn bad_folding_and_missing_verilator_are_clear_errors() {
    let dir = temp_dir("hw-errors");
    let model_path = dir.join("m.json");
    cbnn::model::save(&random_model(9, 4, &[7, 6], &[5], 3), &model_path).unwrap();
    let m = model_path.to_str().unwrap();
    let d = dir.join("d");
    let d = d.to_str().unwrap();
    assert_fails(
        &cbnn(&["rtl", m, "-o", d, "--fold", "L0:0,4"]),
        2,
        "--fold: L0 PE 0 must be between 1 and its 5 neurons",
    );
    assert_fails(
        &cbnn(&["rtl", m, "-o", d, "--fold", "L1:3,6"]),
        2,
        "--fold: L1 SIMD 6 must be between 1 and its 5 inputs",
    );
    assert_fails(
        &cbnn(&["rtl", m, "-o", d, "--fold", "L0:2"]),
        2,
        "L0: give PE,SIMD[,PIPE] or full[,PIPE]",
    );
    assert_fails(
        &cbnn(&["rtl", m, "-o", d, "--fold", "L0:2,4,2"]),
        2,
        "L0 PIPE 2 (--fold or --pipe) must be 0 or 1",
    );
    assert_fails(
        &cbnn(&["rtl", m, "-o", d, "--pipe", "3"]),
        2,
        "L0 PIPE 3 (--fold or --pipe) must be 0 or 1",
    );
    assert_fails(
        &cbnn(&["rtl", m, "-o", d, "--fold", "L7:1,1"]),
        2,
        "layer L7 does not exist; the model has L0..L1",
    );
    assert_fails(
        &cbnn(&["rtl", m, "-o", d, "--fold", "X:1,1"]),
        2,
        "'X' is not a layer name like L0",
    );
    assert!(cbnn(&["rtl", m, "-o", d]).status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args(["sim", d, "--dataset", "fashion-mnist"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Verilator is not installed: install it with `apt-get install -y verilator`"),
        "{err}"
    );
}

#[test]
fn cycle_model_interval_matches_the_manifest() {
    for (i, (model, fold, ppb)) in cases().into_iter().enumerate() {
        let dir = temp_dir(&format!("ii{i}"));
        let manifest = generate(&model, fold.clone(), ppb, &dir);
        if plan::logic_mapped(&model) {
            // One pipeline of register stages, one image a cycle.
            assert_eq!(manifest.initiation_interval, 1);
            continue;
        }
        let timing = plan::timing(&model, &fold, ppb);
        let slowest = timing
            .stages
            .iter()
            .filter_map(|s| match s {
                cycle::StageTiming::Unit { steps } => Some(steps + 1),
                _ => None,
            })
            .chain([timing.beats + 1])
            .max()
            .unwrap() as u64;
        assert_eq!(manifest.initiation_interval, slowest);
    }
}

/// A design that disagrees with its model is caught: one flipped weight bit in the output
/// layer's memory image makes the run fail and name the first differing image.
#[test]
fn a_corrupted_memory_image_is_reported_as_a_mismatch() {
    let model = random_model(31, 6, &[7, 5], &[12], 4);
    let fold = vec![LayerFold::new(4, 5), LayerFold::new(2, 12)];
    let dir = temp_dir("corrupt");
    let manifest = generate(&model, fold.clone(), 3, &dir);
    let (exe, _) = cosim::build(&dir, &manifest.files, false).unwrap();
    let images = random_images(7, 40, 6);
    let run = || cosimulate(&exe, &dir, &model, &manifest, &images, Schedule::FREE);
    assert_eq!(run().unwrap().matched, 40);
    // Flip the lowest bit of the first word of the output layer's weights.
    let path = dir.join(&manifest.layers[1].weight_file);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let last = lines[0].pop().unwrap();
    let flipped = char::from_digit(last.to_digit(16).unwrap() ^ 1, 16).unwrap();
    lines[0].push(flipped);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let err = run().unwrap_err();
    assert_eq!(err.exit_code(), 1);
    let msg = err.to_string();
    assert!(msg.starts_with("mismatch at image "), "{msg}");
    assert!(
        msg.contains("expected class") && msg.contains("the design gave class"),
        "{msg}"
    );
}

/// A damaged design directory: a design.json that is not a manifest is bad input (exit 2);
/// HDL that Verilator cannot build is a failed check (exit 1) naming Verilator's first error.
#[test]
fn damaged_design_directories_are_clear_errors() {
    let dir = temp_dir("hw-damaged");
    let data = dir.join("data");
    write_fixture_dataset(&data, 60, 10, 8, false);
    let (model, design) = (dir.join("m.json"), dir.join("d"));
    let (d, data) = (design.to_str().unwrap(), data.to_str().unwrap());
    let m = model.to_str().unwrap();
    cbnn_ok(&[
        "train",
        "--dataset",
        data,
        "--hidden",
        "4",
        "--planes",
        "7",
        "--epochs",
        "1",
        "--validation",
        "10",
        "-o",
        m,
    ]);
    cbnn_ok(&["rtl", m, "-o", d]);

    let manifest = std::fs::read_to_string(design.join("design.json")).unwrap();
    std::fs::write(
        design.join("design.json"),
        "{\"version\": 1, \"module\": 3}",
    )
    .unwrap();
    assert_fails(
        &cbnn(&["sim", d, "--dataset", data]),
        2,
        "design.json: not a cbnn design manifest",
    );
    assert_fails(
        &cbnn(&["synth", d, "--target", "generic"]),
        2,
        "design.json: not a cbnn design manifest",
    );
    std::fs::write(design.join("design.json"), manifest).unwrap();

    std::fs::write(design.join("cbnn_skid.v"), "module cbnn_skid(; endmodule\n").unwrap();
    let out = cbnn(&["sim", d, "--dataset", data]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Verilator could not build"), "{err}");
    assert!(err.contains("cbnn_skid.v"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A design that never answers is stopped by the timeout from the cycle model, with a clear
/// failed check, instead of running forever.
#[test]
fn a_hung_design_times_out() {
    let model = random_model(43, 6, &[7, 6], &[5], 3);
    let fold = vec![LayerFold::new(5, 4), LayerFold::new(3, 5)];
    let dir = temp_dir("hw-hang");
    let manifest = generate(&model, fold.clone(), 3, &dir);
    let skid = std::fs::read_to_string(dir.join("cbnn_skid.v")).unwrap();
    let hung = skid.replace(
        "assign m_axis_tvalid = main_v;",
        "assign m_axis_tvalid = 1'b0;",
    );
    assert_ne!(hung, skid, "the output slice changed; update this test");
    std::fs::write(dir.join("cbnn_skid.v"), hung).unwrap();
    let (exe, _) = cosim::build(&dir, &manifest.files, false).unwrap();
    let images = random_images(9, 20, 6);
    let start = std::time::Instant::now();
    let err = cosimulate(&exe, &dir, &model, &manifest, &images, Schedule::FREE)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("simulation timed out: 0 of 20 outputs"),
        "{err}"
    );
    assert!(start.elapsed().as_secs() < 30);
}

/// design.json's latency counts from the first image's first input handshake, as
/// docs/hardware.md defines it: a "same" first convolution fed one pixel a beat walks its top
/// padding row and one padding position (`W + 2 pad + 1` cycles, `s_axis_tready` low) before
/// it takes the first pixel, and those cycles are not the image's. The co-simulation measures
/// the latency from the handshake the harness logs, and it equals design.json's; a "valid"
/// convolution and a split beat of three pixels take their first beat in cycle 0.
#[test]
fn latency_counts_from_the_first_input_handshake() {
    for (case, (same, ppb)) in [(true, 1), (false, 1), (true, 3)].into_iter().enumerate() {
        let (h, w) = (7, 6);
        let model = random_conv_model(
            400 + case as u64,
            (h, w),
            &[7, 6],
            &[Op::Conv(3, 3, same), Op::Pool(2), Op::Dense(5)],
            4,
        );
        let fold = plan::fold::default_folding(&model, 0);
        let dir = temp_dir(&format!("latency{case}"));
        let manifest = generate(&model, fold.clone(), ppb, &dir);
        let free = cycle::free_running(&plan::timing(&model, &fold, ppb));
        let walk = if same && ppb == 1 {
            (w + 2 + 1) as u64
        } else {
            0
        };
        assert_eq!(free.first_input, walk, "case {case}");
        assert_eq!(manifest.latency, free.first_output - walk, "case {case}");
        let (exe, _) = cosim::build(&dir, &manifest.files, false).unwrap();
        let images = cbnn::data::Images {
            height: h,
            width: w,
            ..random_images(case as u64, 9, h * w)
        };
        let report = cosimulate(&exe, &dir, &model, &manifest, &images, Schedule::FREE).unwrap();
        assert_eq!(
            report.measured_latency,
            Some(manifest.latency),
            "case {case}"
        );
        assert_eq!(
            report.measured_interval,
            Some(manifest.initiation_interval),
            "case {case}"
        );
    }
}

/// `cbnn sim` recomputes a design's timing from its model.json and folding and refuses a
/// design.json whose timing fields were edited (exit code 2, one sentence naming the field);
/// a stalled run of three images still measures the latency and the interval free-running
/// (on eight images more) and reports them.
#[test]
fn cbnn_sim_refuses_edited_timing_and_measures_it() {
    let dir = temp_dir("edited-timing");
    write_fixture_dataset(&dir, 20, 12, 8, false);
    let model = random_conv_model(
        410,
        (8, 8),
        &[7],
        &[
            Op::Conv(4, 3, true),
            Op::Pool(2),
            Op::Conv(3, 3, true),
            Op::Dense(6),
        ],
        10,
    );
    let design = dir.join("design");
    let fold = plan::fold::default_folding(&model, 0);
    let manifest = generate(&model, fold, 1, &design);
    assert!(manifest.layers[2].fifo_depth.is_some());
    let path = design.join("design.json");
    let original = std::fs::read_to_string(&path).unwrap();
    let (d, data) = (design.to_str().unwrap(), dir.to_str().unwrap());
    for (field, edit) in [
        (
            "latency",
            &(|m: &mut serde_json::Value| m["latency"] = (manifest.latency + 26).into())
                as &dyn Fn(&mut serde_json::Value),
        ),
        ("initiation_interval", &|m| {
            m["initiation_interval"] = (manifest.initiation_interval - 1).into()
        }),
        ("beats_per_image", &|m| m["beats_per_image"] = 63.into()),
        ("layers[0].cycles_per_image", &|m| {
            m["layers"][0]["cycles_per_image"] = 1.into()
        }),
        ("layers[2].fifo_depth", &|m| {
            m["layers"][2]["fifo_depth"] = 9999.into()
        }),
    ] {
        let mut m: serde_json::Value = serde_json::from_str(&original).unwrap();
        edit(&mut m);
        std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
        let out = cbnn(&["sim", d, "--dataset", data, "--count", "2"]);
        let err = assert_fails(&out, 2, &format!("\"{field}\" is "));
        assert!(err.contains("regenerate the design"), "{err}");
        // Synthesis reports the design's timing too: refused the same way, before Yosys.
        let out = cbnn(&["synth", d, "--target", "generic"]);
        assert_fails(&out, 2, &format!("\"{field}\" is "));
    }
    std::fs::write(&path, &original).unwrap();
    let out = cbnn_ok(&[
        "sim",
        d,
        "--dataset",
        data,
        "--count",
        "3",
        "--stall-seed",
        "4",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("latency {} cycles (simulated", manifest.latency)),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("8 images free-running for the timing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every key path of `value`, objects' keys joined by `.` and array elements as `[]`
/// (`layers[].receives.height`), stopping at the paths in `leaves`.
fn key_paths(value: &serde_json::Value, prefix: &str, leaves: &[&str], out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(m) if !leaves.contains(&prefix) => {
            for (k, v) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push(path.clone());
                key_paths(v, &path, leaves, out);
            }
        }
        serde_json::Value::Array(a) if !leaves.contains(&prefix) => {
            let path = format!("{prefix}[]");
            for v in a {
                if v.is_object() {
                    key_paths(v, &path, leaves, out);
                }
            }
        }
        _ => {}
    }
}

/// Whether the table rows of `section` document `path`: a row whose first cell names a prefix
/// of it in backticks (`layers[]`, `model`, the whole path) and that names every remaining
/// key in backticks.
fn documented(section: &str, path: &str) -> bool {
    let segments: Vec<&str> = path.split('.').collect();
    section.lines().filter(|l| l.starts_with('|')).any(|row| {
        let first = row.split('|').nth(1).unwrap_or("");
        let ticked: Vec<&str> = row.split('`').skip(1).step_by(2).collect();
        let words: Vec<&str> = ticked
            .iter()
            .flat_map(|t| t.split(|c: char| !(c.is_alphanumeric() || c == '_')))
            .collect();
        (1..=segments.len()).any(|k| {
            let prefix = segments[..k].join(".");
            let named = first.split('`').skip(1).step_by(2).any(|t| t == prefix)
                || first.contains(&format!("`{}", prefix.replace("[]", "[]`")));
            named
                && segments[k..]
                    .iter()
                    .all(|s| words.contains(&s.trim_end_matches("[]")))
        })
    })
}

/// The text of the section of `doc` that starts at the heading `heading`, to the next heading
/// of its level or above.
fn section(doc: &str, heading: &str) -> String {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("{heading} is missing"));
    let level = heading.chars().take_while(|&c| c == '#').count();
    let rest = &doc[start + heading.len()..];
    let end = rest
        .lines()
        .scan(0, |at, l| {
            let here = *at;
            *at += l.len() + 1;
            Some((here, l))
        })
        .find(|(_, l)| {
            let hashes = l.chars().take_while(|&c| c == '#').count();
            hashes > 0 && hashes <= level
        })
        .map_or(rest.len(), |(at, _)| at);
    rest[..end].to_string()
}

/// docs/hardware.md's design.json table names every field of a perceptron's, a convnet's and a
/// logic-mapped network's design.json (narrow port and registered group sums included), and
/// docs/model-format.md's field table every field of their model files, provenance included.
#[test]
fn the_docs_name_every_field_of_a_design_and_a_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let hardware = std::fs::read_to_string(root.join("hardware.md")).unwrap();
    let format = std::fs::read_to_string(root.join("model-format.md")).unwrap();
    let design_table = section(&hardware, "## design.json");
    let model_table = section(&format, "## Fields");
    let (mlp, mlp_fold, mlp_ppb) = cases().swap_remove(0);
    let conv = random_conv_model(
        420,
        (8, 8),
        &[7, 6],
        &[Op::Conv(4, 3, true), Op::Pool(2), Op::Dense(6)],
        4,
    );
    let lut = random_lut_model(421, (6, 6), &[7, 6], &[(20, 3), (12, 4)], 4);
    let lut_fold = {
        let mut f = plan::fold::default_folding(&lut, 0);
        f.last_mut().unwrap().pipe = 1;
        f
    };
    let designs = [
        (&mlp, mlp_fold, mlp_ppb, None),
        (&conv, plan::fold::default_folding(&conv, 0), 1, None),
        (&lut, lut_fold, 1, Some(5)),
    ];
    let mut missing = Vec::new();
    for (i, (model, fold, ppb, bits)) in designs.into_iter().enumerate() {
        let dir = temp_dir(&format!("fields{i}"));
        let mut model = model.clone();
        model.provenance = cbnn::model::Provenance {
            tool: "cbnn".into(),
            test_accuracy: Some(0.5),
            hyper: serde_json::json!({"epochs": 1}),
            ..Default::default()
        };
        rtlgen::generate(
            &model,
            Path::new("random.json"),
            &RtlConfig {
                fold,
                pixels_per_beat: ppb,
                bits_per_beat: bits,
                clock_mhz: plan::DEFAULT_CLOCK_MHZ,
            },
            &dir,
        )
        .unwrap();
        for (file, table, leaves) in [
            (
                "design.json",
                &design_table,
                &["model.provenance", "written", "files", "constraints"][..],
            ),
            ("model.json", &model_table, &["provenance.hyper"][..]),
        ] {
            let json = json_file(&dir.join(file));
            let mut paths = Vec::new();
            key_paths(&json, "", leaves, &mut paths);
            for p in paths {
                if !documented(table, &p) {
                    missing.push(format!("{file}: {p}"));
                }
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "undocumented fields: {missing:#?}");
}
