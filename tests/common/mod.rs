//! Helpers shared by the integration tests: fixture datasets and running the binary.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cbnn::data::idx;

/// A fresh empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cbnn-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `bytes` to `path`, gzip-compressed when `gz`.
pub fn write_maybe_gz(path: &Path, bytes: &[u8], gz: bool) {
    if gz {
        let file = std::fs::File::create(path).unwrap();
        let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap();
    } else {
        std::fs::write(path, bytes).unwrap();
    }
}

/// Synthetic, learnable images: class `c` lights a 3x3 block whose position depends on `c`,
/// with pixel noise. Returns (pixels, labels).
pub fn synthetic(count: usize, side: usize, classes: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = cbnn::util::rng::Rng::new(seed, 9);
    let mut pixels = Vec::with_capacity(count * side * side);
    let mut labels = Vec::with_capacity(count);
    for i in 0..count {
        let c = i % classes;
        labels.push(c as u8);
        let (r0, c0) = ((c * 3) % (side - 2), (c * 5) % (side - 2));
        for r in 0..side {
            for col in 0..side {
                let on = r >= r0 && r < r0 + 3 && col >= c0 && col < c0 + 3;
                let base: i32 = if on { 200 } else { 20 };
                let noise = rng.below(60) as i32 - 30;
                pixels.push((base + noise).clamp(0, 255) as u8);
            }
        }
    }
    (pixels, labels)
}

/// Writes a small synthetic IDX dataset (the four standard files) into `dir`.
pub fn write_fixture_dataset(dir: &Path, train: usize, test: usize, side: usize, gz: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let ext = if gz { ".gz" } else { "" };
    for (stem_img, stem_lbl, n, seed) in [
        (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            train,
            1,
        ),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", test, 2),
    ] {
        let (px, lb) = synthetic(n, side, 10, seed);
        write_maybe_gz(
            &dir.join(format!("{stem_img}{ext}")),
            &idx::encode(&[n, side, side], &px),
            gz,
        );
        write_maybe_gz(
            &dir.join(format!("{stem_lbl}{ext}")),
            &idx::encode(&[n], &lb),
            gz,
        );
    }
}

/// Fails the test unless Verilator is installed: the test command (`bash scripts/test.sh`)
/// installs it, so a test that needs it never passes without having run.
pub fn require_verilator() {
    if let Err(e) = cbnn::cosim::verilator_version() {
        panic!("this test needs Verilator, which `bash scripts/setup.sh` installs: {e}");
    }
}

/// Runs the cbnn binary with `args`.
pub fn cbnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args(args)
        .env_remove("CBNN_DATA")
        .output()
        .expect("cbnn runs")
}

/// Asserts a run failed with `code` and that stderr contains `needle`; returns stderr.
pub fn assert_fails(out: &Output, code: i32, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "expected {needle:?} in stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one clear error line expected: {stderr}"
    );
    stderr
}

/// The directory of a real dataset by name, if this machine has it.
pub fn real_dataset(name: &str) -> Option<PathBuf> {
    cbnn::data::resolve::resolve(name, Some(Path::new("../shared/datasets")))
        .ok()
        .or_else(|| {
            let p = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/datasets")
                .join(name);
            cbnn::data::resolve::is_dataset_dir(&p).then_some(p)
        })
}

/// A random valid integer model: `pixels` x 1 images of `planes`, the given hidden widths.
pub fn random_model(
    seed: u64,
    pixels: usize,
    planes: &[u8],
    hidden: &[usize],
    classes: usize,
) -> cbnn::model::IntModel {
    use cbnn::model::{BinaryMatrix, Dense, InputShape, IntModel};
    let mut rng = cbnn::util::rng::Rng::new(seed, 3);
    let planes = cbnn::bitslice::PlaneSet::new(planes).unwrap();
    let mut matrix = |rows: usize, cols: usize| {
        let mut m = BinaryMatrix::new(rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                m.set(r, c, rng.next_u64() & 1 == 1);
            }
        }
        m
    };
    let mut inputs = pixels * planes.len();
    let mut layers = Vec::new();
    for &n in hidden {
        let weights = matrix(n, inputs);
        layers.push(Dense {
            weights,
            thresholds: Vec::new(),
        });
        inputs = n;
    }
    let output = matrix(classes, inputs);
    // Thresholds near the middle (so neurons really switch), plus both "always" ends.
    let mut rng = cbnn::util::rng::Rng::new(seed, 4);
    let mut n_in = pixels * planes.len();
    for l in &mut layers {
        l.thresholds = (0..l.weights.rows())
            .map(|j| match j % 9 {
                0 => 0,
                1 => n_in as u32 + 1,
                _ => (n_in / 2) as u32 + rng.below(3) as u32 - 1,
            })
            .collect();
        n_in = l.weights.rows();
    }
    IntModel::mlp(
        InputShape {
            height: pixels,
            width: 1,
            channels: 1,
        },
        planes,
        layers,
        output,
        Default::default(),
    )
}

/// One hidden layer of [`random_conv_model`].
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// Binary convolution: channels, kernel, "same" padding.
    Conv(usize, usize, bool),
    /// Max-pool of this size.
    Pool(usize),
    /// Dense layer of this many neurons.
    Dense(usize),
}

/// A random integer convnet on `height x width` single-channel images: the hidden layers of
/// `ops`, then an output layer of `classes` scores; thresholds near the middle of their range,
/// plus both "always" ends.
pub fn random_conv_model(
    seed: u64,
    (height, width): (usize, usize),
    planes: &[u8],
    ops: &[Op],
    classes: usize,
) -> cbnn::model::IntModel {
    use cbnn::layers::{Conv, Dense, Layer, MaxPool, Padding, Scores, Shape};
    use cbnn::model::{BinaryMatrix, InputShape, IntModel};
    let mut rng = cbnn::util::rng::Rng::new(seed, 6);
    let planes = cbnn::bitslice::PlaneSet::new(planes).unwrap();
    let matrix = |rows: usize, cols: usize, rng: &mut cbnn::util::rng::Rng| {
        let mut m = BinaryMatrix::new(rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                m.set(r, c, rng.next_u64() & 1 == 1);
            }
        }
        m
    };
    let thresholds = |rows: usize, n: usize, rng: &mut cbnn::util::rng::Rng| -> Vec<u32> {
        (0..rows)
            .map(|j| match j % 9 {
                0 => 0,
                1 => n as u32 + 1,
                _ => (n / 2) as u32 + rng.below(3) as u32 - 1,
            })
            .collect()
    };
    let mut shape = Shape {
        height,
        width,
        channels: planes.len(),
    };
    let mut layers = Vec::new();
    for &op in ops {
        let layer = match op {
            Op::Conv(m, k, same) => {
                let n = k * k * shape.channels;
                Layer::Conv(Conv {
                    kernel: k,
                    padding: if same { Padding::Same } else { Padding::Valid },
                    weights: matrix(m, n, &mut rng),
                    thresholds: thresholds(m, n, &mut rng),
                })
            }
            Op::Pool(p) => Layer::MaxPool(MaxPool { size: p }),
            Op::Dense(m) => {
                let n = shape.height * shape.width * shape.channels;
                Layer::Dense(Dense {
                    weights: matrix(m, n, &mut rng),
                    thresholds: thresholds(m, n, &mut rng),
                })
            }
        };
        shape = layer.semantics().output_shape(shape);
        layers.push(layer);
    }
    let n = shape.height * shape.width * shape.channels;
    layers.push(Layer::Scores(Scores {
        weights: matrix(classes, n, &mut rng),
    }));
    IntModel {
        input: InputShape {
            height,
            width,
            channels: 1,
        },
        planes,
        layers,
        provenance: Default::default(),
    }
}

/// Random images for a model of `pixels` pixels.
pub fn random_images(seed: u64, count: usize, pixels: usize) -> cbnn::data::Images {
    let mut rng = cbnn::util::rng::Rng::new(seed, 5);
    cbnn::data::Images {
        height: pixels,
        width: 1,
        channels: 1,
        pixels: (0..count * pixels).map(|_| rng.next_u64() as u8).collect(),
    }
}

/// Runs the cbnn binary and asserts it succeeded (showing its stderr otherwise).
pub fn cbnn_ok(args: &[&str]) -> Output {
    let out = cbnn(args);
    assert!(
        out.status.success(),
        "cbnn {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Reads a JSON file.
pub fn json_file(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every file under `dir` (relative path -> bytes).
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A JSON report without the fields that measure time.
pub fn without_timings(mut v: serde_json::Value) -> serde_json::Value {
    match &mut v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| !(k.contains("seconds") || k.contains("per_second")));
            for x in m.values_mut() {
                *x = without_timings(x.take());
            }
        }
        serde_json::Value::Array(a) => {
            for x in a.iter_mut() {
                *x = without_timings(x.take());
            }
        }
        _ => {}
    }
    v
}

/// Co-simulates `images` (labels all 0) on the built simulator `exe` of the design in `dir`,
/// with the timing its manifest describes.
pub fn cosimulate(
    exe: &Path,
    dir: &Path,
    model: &cbnn::model::IntModel,
    manifest: &cbnn::rtlgen::Manifest,
    images: &cbnn::data::Images,
    schedule: cbnn::reference::schedule::Schedule,
) -> cbnn::Result<cbnn::cosim::SimReport> {
    let timing = cbnn::plan::timing(model, &manifest.folding(), manifest.input.per_beat());
    let labels = vec![0u8; images.count()];
    let job = cbnn::cosim::Job {
        dir,
        model,
        timing: &timing,
        output: &manifest.output,
        bits_per_beat: manifest.input.bits_per_beat,
        reads: manifest.input.reads.as_deref(),
        images,
        labels: &labels,
        schedule,
        vcd: None,
    };
    cbnn::cosim::run(exe, &job)
}

/// Co-simulates the design in `dir` on `images`, free-running and under each stall seed of
/// `stalls`: every image's class, scores and cycle must be what the reference model and the
/// cycle model say (`what` names the case in a failure). Returns the reports, free-running
/// first.
pub fn cosimulates_exactly(
    dir: &Path,
    model: &cbnn::model::IntModel,
    manifest: &cbnn::rtlgen::Manifest,
    images: &cbnn::data::Images,
    stalls: &[u64],
    what: &str,
) -> Vec<cbnn::cosim::SimReport> {
    use cbnn::reference::schedule::Schedule;
    let (exe, _) = cbnn::cosim::build(dir, &manifest.files, false).unwrap();
    let stalled = stalls.iter().map(|&s| Schedule {
        stall_seed: Some(s),
    });
    std::iter::once(Schedule::FREE)
        .chain(stalled)
        .map(|schedule| {
            let report = cosimulate(&exe, dir, model, manifest, images, schedule)
                .unwrap_or_else(|e| panic!("{what}, {schedule:?}: {e}"));
            assert_eq!(report.matched, images.count(), "{what}, {schedule:?}");
            report
        })
        .collect()
}

/// `cbnn prune MODEL --dataset DATASET FLAGS`, its model written to `DIR/NAME.json` and its
/// report to `DIR/NAME-report.json`; returns the command's output and both paths.
pub fn prune_into(
    model: &Path,
    dataset: &str,
    dir: &Path,
    name: &str,
    flags: &[&str],
) -> (std::process::Output, PathBuf, PathBuf) {
    let (out, report) = (
        dir.join(format!("{name}.json")),
        dir.join(format!("{name}-report.json")),
    );
    let mut args = vec!["prune", model.to_str().unwrap(), "--dataset", dataset];
    args.extend_from_slice(flags);
    args.extend([
        "-o",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    (cbnn_ok(&args), out, report)
}

/// A convnet of two convolutions (the second without padding), a pool and a dense layer on
/// 9x11 images of two planes, five classes: a small pipeline with a FIFO in front of a layer.
pub fn two_conv_model() -> cbnn::model::IntModel {
    random_conv_model(
        501,
        (9, 11),
        &[7, 6],
        &[
            Op::Conv(5, 3, true),
            Op::Pool(2),
            Op::Conv(4, 3, false),
            Op::Dense(7),
        ],
        5,
    )
}

/// A random logic-mapped model of `height x width` images: `lut` layers of these
/// `(neurons, fan_in)`, the last of a multiple of `classes` neurons, then the group sum.
pub fn random_lut_model(
    seed: u64,
    (height, width): (usize, usize),
    planes: &[u8],
    layers: &[(usize, usize)],
    classes: usize,
) -> cbnn::model::IntModel {
    use cbnn::layers::{GroupSum, Layer, Lut};
    use cbnn::model::{InputShape, IntModel};
    let mut rng = cbnn::util::rng::Rng::new(seed, 4);
    let planes = cbnn::bitslice::PlaneSet::new(planes).unwrap();
    let mut n = height * width * planes.len();
    let mut out = Vec::new();
    for &(m, f) in layers {
        let mask = if f == 6 {
            u64::MAX
        } else {
            (1u64 << (1 << f)) - 1
        };
        out.push(Layer::Lut(Lut {
            fan_in: f,
            connections: (0..m * f).map(|_| rng.below(n) as u32).collect(),
            tables: (0..m).map(|_| rng.next_u64() & mask).collect(),
        }));
        n = m;
    }
    out.push(Layer::GroupSum(GroupSum { classes }));
    let model = IntModel {
        input: InputShape {
            height,
            width,
            channels: 1,
        },
        planes,
        layers: out,
        provenance: Default::default(),
    };
    model.validate(Path::new("random")).unwrap();
    model
}

/// Runs `cbnn sim` on the design in `design` over the test images of `data` (stalled when
/// `stall` names a seed), checks that all `images` output beats match the reference model and
/// the cycle model, and returns the standard output.
pub fn sim_matches(design: &Path, data: &Path, stall: Option<&str>, images: usize) -> String {
    let mut args = vec![
        "sim",
        design.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
    ];
    if let Some(s) = stall {
        args.extend(["--stall-seed", s]);
    }
    let out = cbnn_ok(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line =
        format!("{images} of {images} output beats match the reference model and the cycle model");
    assert!(stdout.contains(&line), "{stdout}");
    stdout
}

/// The line `cbnn eval` and `cbnn sim` print for a test accuracy of `accuracy` (a fraction).
pub fn accuracy_line(accuracy: f64) -> String {
    format!("accuracy {:.2}%", 100.0 * accuracy)
}

/// What a training run wrote (`--json` at `json`, the model at `model`, trained on the dataset
/// directory `data`), checked: its export check held on every test image, and `cbnn eval`
/// prints its test accuracy. Returns the report and that accuracy line.
pub fn checked_training(model: &Path, json: &Path, data: &Path) -> (serde_json::Value, String) {
    let report = json_file(json);
    assert_eq!(
        report["export_check"]["agree"], report["export_check"]["images"],
        "{report}"
    );
    let eval = cbnn_ok(&[
        "eval",
        model.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
    ]);
    let accuracy = accuracy_line(report["test_accuracy"].as_f64().unwrap());
    let stdout = String::from_utf8_lossy(&eval.stdout);
    assert!(stdout.contains(&accuracy), "{stdout}");
    (report, accuracy)
}

/// Two small models of a fixture dataset in `dir` (three and two layers) and a spec of four
/// foldings for them; returns the spec's path.
pub fn sweep_fixture(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    write_fixture_dataset(&data, 600, 60, 8, false);
    let d = data.to_str().unwrap();
    let big = dir.join("big.json");
    cbnn_ok(&[
        "train",
        "--dataset",
        d,
        "--hidden",
        "16,16",
        "--epochs",
        "2",
        "--validation",
        "100",
        "-o",
        big.to_str().unwrap(),
    ]);
    cbnn_ok(&[
        "retrain",
        big.to_str().unwrap(),
        "--planes",
        "7,6",
        "--arch",
        "d8",
        "--epochs",
        "2",
        "--validation",
        "100",
        "--dataset",
        d,
        "-o",
        dir.join("small.json").to_str().unwrap(),
    ]);
    // The folding of layer 2 fits only the model with three layers.
    let spec = dir.join("sweep.toml");
    std::fs::write(
        &spec,
        "# a small sweep\n\
         dataset = \"data\"\n\
         cycles = [16, 128]\n\
         foldings = [\"default\", \"L2:2,4\"]\n\
         targets = [\"xilinx\"]\n\
         sim_images = 30\n\
         stall_seed = 1\n\
         \n\
         [models]\n\
         big = \"big.json\"\n\
         small = \"small.json\"\n",
    )
    .unwrap();
    spec
}

/// Every file of a run directory but its records, run log and tools' logs; the JSON outputs
/// whose paths start with one of `timed` (which measure time) without those fields.
pub fn comparable(run: &Path, timed: &[&str]) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    tree(run)
        .into_iter()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            !(k.starts_with("stages/") || k.ends_with(".log") || k == "run-log.json")
        })
        .map(|(k, v)| {
            let name = k.to_string_lossy();
            let v = if timed.iter().any(|p| name.starts_with(p)) && name.ends_with(".json") {
                let j: serde_json::Value = serde_json::from_slice(&v).unwrap();
                serde_json::to_vec(&without_timings(j)).unwrap()
            } else {
                v
            };
            (k, v)
        })
        .collect()
}

/// The outputs of a sweep's jobs that measure time.
pub const SWEEP_TIMED: [&str; 3] = ["eval/", "sim/", "synth/"];

/// The outputs of a flow's stages that measure time.
pub const FLOW_TIMED: [&str; 4] = ["train.json", "prune.json", "sim-", "synth-"];

/// Asserts that two runs' [`comparable`] files are the same (and more than `at_least`).
pub fn assert_same_files(
    a: &std::collections::BTreeMap<PathBuf, Vec<u8>>,
    b: &std::collections::BTreeMap<PathBuf, Vec<u8>>,
    at_least: usize,
) {
    assert!(a.len() > at_least, "{:?}", a.keys());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in a {
        assert!(*v == b[k], "{} differs", k.display());
    }
}

/// The command line of a quick flow of a small perceptron on `data` into `out`.
pub fn flow_args<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "flow",
        "--dataset",
        data,
        "-o",
        out,
        "--quick",
        "--hidden",
        "24,16",
        "--validation",
        "100",
        "--target-cycles",
        "64",
        "--max-drop",
        "5",
    ]
}
