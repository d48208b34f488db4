//! What a newcomer and an adversary hit, one test per class (docs/robustness.md lists them):
//! outputs that must destroy nothing, panics and aborts that must not happen, flags that must
//! be refused with one clear sentence.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A fixture dataset (8x8 images) and a small model trained on it, in a fresh directory.
fn setup(name: &str) -> (PathBuf, String, String) {
    let dir = temp_dir(name);
    let data = dir.join("data");
    write_fixture_dataset(&data, 600, 100, 8, false);
    let model = dir.join("m.json");
    cbnn_ok(&[
        "train",
        "--dataset",
        data.to_str().unwrap(),
        "--hidden",
        "16",
        "--epochs",
        "1",
        "--validation",
        "100",
        "-o",
        model.to_str().unwrap(),
    ]);
    (
        dir,
        data.to_str().unwrap().to_string(),
        model.to_str().unwrap().to_string(),
    )
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo");
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .file_type()
        .is_fifo()
}

#[test]
fn outputs_that_are_not_regular_files_are_refused_before_any_work() {
    let (dir, data, model) = setup("rob-kinds");
    let fifo = dir.join("fifo.json");
    mkfifo(&fifo);
    let out = cbnn(&[
        "eval",
        &model,
        "--dataset",
        &data,
        "--json",
        fifo.to_str().unwrap(),
    ]);
    assert_fails(&out, 2, "fifo.json: exists and is a FIFO");
    assert!(is_fifo(&fifo));
    // A directory as the model output: refused before training (no epoch line).
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let start = Instant::now();
    let out = cbnn(&[
        "train",
        "--dataset",
        &data,
        "--hidden",
        "8",
        "--epochs",
        "50",
        "-o",
        sub.to_str().unwrap(),
    ]);
    assert_fails(&out, 2, "sub: exists and is a directory");
    assert!(start.elapsed() < Duration::from_secs(5));
    // A link to a device is refused; a link to a regular file is written through.
    let null = dir.join("null.csv");
    std::os::unix::fs::symlink("/dev/null", &null).unwrap();
    let out = cbnn(&[
        "eval",
        &model,
        "--dataset",
        &data,
        "--predictions",
        null.to_str().unwrap(),
    ]);
    assert_fails(&out, 2, "which is a device");
    let real = dir.join("real.csv");
    std::fs::write(&real, b"old").unwrap();
    let link = dir.join("link.csv");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    cbnn_ok(&[
        "eval",
        &model,
        "--dataset",
        &data,
        "--predictions",
        link.to_str().unwrap(),
    ]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(text.starts_with("index,label,predicted"), "{text}");
    // sim's waveform onto a directory: refused before the build.
    let out = cbnn(&[
        "sim",
        dir.to_str().unwrap(),
        "--dataset",
        &data,
        "--vcd",
        sub.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sub: exists and is a directory"));
}

#[test]
fn an_output_on_another_output_or_on_an_input_is_refused() {
    let (dir, data, model) = setup("rob-same");
    let before = std::fs::read(&model).unwrap();
    let out = cbnn(&["eval", &model, "--dataset", &data, "--predictions", &model]);
    assert_fails(&out, 2, "--predictions would overwrite the model");
    assert_eq!(std::fs::read(&model).unwrap(), before);
    let x = dir.join("x.json");
    let x2 = dir.join("sub/../x.json");
    let out = cbnn(&[
        "train",
        "--dataset",
        &data,
        "-o",
        x.to_str().unwrap(),
        "--json",
        x2.to_str().unwrap(),
    ]);
    assert_fails(&out, 2, "given both as -o and as --json");
    assert!(!x.exists());
    let out = cbnn(&["prune", &model, "--dataset", &data, "-o", &model]);
    assert_fails(&out, 2, "-o would overwrite the model");
    assert_eq!(std::fs::read(&model).unwrap(), before);
}

#[test]
fn rtl_replaces_only_a_directory_that_is_provably_its_own_design() {
    let (dir, _data, model) = setup("rob-rtl");
    let design = dir.join("design");
    let d = design.to_str().unwrap();
    cbnn_ok(&["rtl", &model, "-o", d]);
    let manifest = json_file(&design.join("design.json"));
    assert!(manifest["written"].as_array().unwrap().len() > 10);
    // A file the user put there.
    std::fs::write(design.join("notes.txt"), b"mine").unwrap();
    let out = cbnn(&["rtl", &model, "-o", d]);
    assert_fails(&out, 2, "notes.txt is not a file cbnn wrote");
    assert_eq!(std::fs::read(design.join("notes.txt")).unwrap(), b"mine");
    // A directory holding something named design.json that is not cbnn's.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("design.json"), b"{}").unwrap();
    std::fs::write(other.join("top.v"), b"module top; endmodule").unwrap();
    let out = cbnn(&["rtl", &model, "-o", other.to_str().unwrap()]);
    assert_fails(&out, 2, "it is not a cbnn design");
    assert!(other.join("top.v").exists());
    // A folding target the stream cannot meet: refused before the old design is touched.
    std::fs::remove_file(design.join("notes.txt")).unwrap();
    let old = tree(&design);
    let out = cbnn(&[
        "rtl",
        &model,
        "-o",
        d,
        "--fold",
        "auto",
        "--target-cycles",
        "10",
        "--pixels-per-beat",
        "1",
    ]);
    assert_fails(
        &out,
        2,
        "--target-cycles 10 cannot be met with --pixels-per-beat 1",
    );
    assert_eq!(tree(&design), old);
    // One layer folded twice.
    let out = cbnn(&["rtl", &model, "-o", d, "--fold", "L0:2,8;L0:4,8"]);
    assert_fails(&out, 2, "L0 is given twice");
}

#[test]
fn a_flow_locks_its_run_directory_and_cleans_only_its_own_dead_temporaries() {
    let (dir, data, _model) = setup("rob-flow");
    let run = dir.join("run");
    // The run directory of an earlier flow (its marker).
    std::fs::create_dir_all(run.join("stages")).unwrap();
    std::fs::write(
        run.join("stages/run.json"),
        r#"{"format": "cbnn-run", "kind": "flow"}"#,
    )
    .unwrap();
    // A temporary of a live process (this test), one of a dead process, and a link to a
    // directory outside the run holding something that looks like a temporary.
    let live = run.join(format!(".base.json.tmp-{}", std::process::id()));
    let dead = run.join(".base.json.tmp-99999999");
    std::fs::write(&live, b"live").unwrap();
    std::fs::write(&dead, b"dead").unwrap();
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join(".x.tmp-99999999"), b"not cbnn's").unwrap();
    std::os::unix::fs::symlink(&outside, run.join("linked")).unwrap();
    let args = [
        "flow",
        "--dataset",
        &data,
        "-o",
        run.to_str().unwrap(),
        "--quick",
        "--hidden",
        "16",
        "--validation",
        "100",
    ];
    let mut first = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !run.join("stages/flow.lock").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the flow did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let second = cbnn(&args);
    first.kill().unwrap();
    first.wait().unwrap();
    let err = assert_fails(&second, 2, "another cbnn flow (process");
    assert!(err.contains(&first.id().to_string()), "{err}");
    assert!(!dead.exists(), "a dead run's temporary stays");
    assert_eq!(std::fs::read(&live).unwrap(), b"live");
    assert_eq!(
        std::fs::read(outside.join(".x.tmp-99999999")).unwrap(),
        b"not cbnn's"
    );
}

/// `cbnn flow -o DIR` and `cbnn sweep -o DIR` write only into a new or empty directory or a run
/// directory of their own: a user's directory holding files of the names they write is
/// refused before any work, and every file in it stays as it was.
#[test]
fn flow_and_sweep_write_only_into_a_run_directory_of_their_own() {
    let dir = temp_dir("rob-rundir");
    let spec = sweep_fixture(&dir);
    let data = dir.join("data");
    let users = dir.join("mine");
    for (name, text) in [
        ("report.md", "my notes"),
        ("report.json", "{}"),
        ("pareto.svg", "<svg/>"),
        ("base.json", "my model"),
        ("models/big.json", "my model"),
        ("eval/big.json", "my numbers"),
    ] {
        let p = users.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    let before = tree(&users);
    let u = users.to_str().unwrap();
    let t0 = Instant::now();
    let flow = cbnn(&[
        "flow",
        "--dataset",
        data.to_str().unwrap(),
        "-o",
        u,
        "--quick",
        "--hidden",
        "16",
        "--validation",
        "100",
    ]);
    assert_fails(
        &flow,
        2,
        "the directory holds files and is not a run directory of `cbnn flow`",
    );
    let sweep = cbnn(&["sweep", spec.to_str().unwrap(), "-o", u]);
    assert_fails(
        &sweep,
        2,
        "the directory holds files and is not a run directory of `cbnn sweep`",
    );
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "refused only after work"
    );
    assert_eq!(tree(&users), before, "the user's directory changed");
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(cmd);
            }
        }
    }
    found
}

#[test]
fn a_killed_verilator_build_leaves_no_process_and_no_temporary() {
    require_verilator();
    let (dir, data, model) = setup("rob-build");
    let design = dir.join("design");
    cbnn_ok(&["rtl", &model, "-o", design.to_str().unwrap()]);
    let cache = dir.join("cache");
    let mut sim = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args([
            "sim",
            design.to_str().unwrap(),
            "--dataset",
            &data,
            "--count",
            "5",
        ])
        .env("XDG_CACHE_HOME", &cache)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until make runs the compiler, then kill cbnn outright.
    let start = Instant::now();
    while !processes_mentioning(cache.to_str().unwrap())
        .iter()
        .any(|c| c.starts_with("make"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no build started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    sim.kill().unwrap();
    sim.wait().unwrap();
    let start = Instant::now();
    let left = loop {
        let left = processes_mentioning(cache.to_str().unwrap());
        // The entry's lock file (`HASH.lock`) is the cache's own, kept for every simulator
        // built or being built, not a temporary.
        let tmp: Vec<_> = std::fs::read_dir(cache.join("cbnn/verilator"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name())
                    .filter(|n| !n.to_string_lossy().ends_with(".lock"))
                    .collect()
            })
            .unwrap_or_default();
        if (left.is_empty() && tmp.is_empty()) || start.elapsed() > Duration::from_secs(10) {
            break (left, tmp);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(left.0.is_empty(), "orphans: {:?}", left.0);
    assert!(left.1.is_empty(), "left in the cache: {:?}", left.1);
}

#[test]
fn a_closed_or_full_stdout_never_panics_and_files_are_written_whole() {
    let (dir, data, model) = setup("rob-stdout");
    let p = dir.join("p.csv");
    // The reader goes away before cbnn prints anything.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args([
            "eval",
            &model,
            "--dataset",
            &data,
            "--predictions",
            p.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 101);
    // A full stdout: the files are written, then one error and exit 2.
    std::fs::remove_file(&p).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args([
            "eval",
            &model,
            "--dataset",
            &data,
            "--predictions",
            p.to_str().unwrap(),
        ])
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    assert_fails(&out, 2, "cannot write to standard output");
    assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 101);
}

#[test]
fn an_inconsistent_design_manifest_is_refused_naming_the_field() {
    let (dir, data, model) = setup("rob-manifest");
    let design = dir.join("design");
    let d = design.to_str().unwrap();
    cbnn_ok(&["rtl", &model, "-o", d]);
    let path = design.join("design.json");
    let good = json_file(&path);
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 4] = [
        ("\"input.pixels_per_beat\" must be at least 1", |v| {
            v["input"]["pixels_per_beat"] = 0.into()
        }),
        ("\"layers[0]\" has PE 0", |v| {
            v["layers"][0]["pe"] = 0.into()
        }),
        ("\"output.width\" is 2 bits, too narrow", |v| {
            v["output"]["width"] = 2.into()
        }),
        ("\"layers\" is empty", |v| {
            v["layers"] = serde_json::json!([])
        }),
    ];
    for (needle, edit) in cases {
        let mut v = good.clone();
        edit(&mut v);
        std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
        let out = cbnn(&["sim", d, "--dataset", &data, "--count", "2"]);
        assert_fails(&out, 2, needle);
        let out = cbnn(&["synth", d]);
        assert_fails(&out, 2, needle);
    }
    // A memory image deleted.
    std::fs::write(&path, serde_json::to_string(&good).unwrap()).unwrap();
    std::fs::rename(design.join("l0_weights.hex"), dir.join("aside.hex")).unwrap();
    let out = cbnn(&["sim", d, "--dataset", &data, "--count", "2"]);
    assert_fails(
        &out,
        2,
        "l0_weights.hex: is missing from the design directory",
    );
    let out = cbnn(&["synth", d]);
    assert_fails(
        &out,
        2,
        "l0_weights.hex: is missing from the design directory",
    );
    std::fs::rename(dir.join("aside.hex"), design.join("l0_weights.hex")).unwrap();
    // Consistent on its own, but not with the design's model.
    let mut v = good.clone();
    v["output"]["classes"] = 9.into();
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    let out = cbnn(&["sim", d, "--dataset", &data, "--count", "2"]);
    assert_fails(&out, 2, "\"output\" does not match the model");
}

#[test]
fn model_files_are_checked_before_anything_is_allocated() {
    let (dir, data, model) = setup("rob-model");
    let good = json_file(Path::new(&model));
    let bad = dir.join("bad.json");
    let check = |v: &serde_json::Value, needle: &str| {
        std::fs::write(&bad, serde_json::to_string(v).unwrap()).unwrap();
        let out = cbnn(&["eval", bad.to_str().unwrap(), "--dataset", &data]);
        assert_fails(&out, 2, needle);
        let out = cbnn(&[
            "rtl",
            bad.to_str().unwrap(),
            "-o",
            dir.join("never").to_str().unwrap(),
        ]);
        assert_fails(&out, 2, needle);
        assert!(!dir.join("never").exists());
    };
    // A shape whose product wraps around.
    let mut v = good.clone();
    v["input"]["height"] = ((1u64 << 61) + 8).into();
    check(&v, "gives more than 67108864 features");
    // Huge declared layer sizes with the short rows of the real model.
    let mut v = good.clone();
    v["layers"][0]["outputs"] = (1u64 << 40).into();
    check(&v, "layer 0 has 1099511627776 outputs");
    // Upper-case hex, a wrong size_bits.
    let mut v = good.clone();
    let row = v["layers"][0]["weights"][0]
        .as_str()
        .unwrap()
        .to_uppercase();
    v["layers"][0]["weights"][0] = row.replace(char::is_numeric, "A").into();
    check(&v, "is not lower-case hexadecimal");
    let mut v = good.clone();
    v["size_bits"] = 7.into();
    check(&v, "\"size_bits\" is 7 but the layers hold");
    // Duplicate keys.
    let text = std::fs::read_to_string(&model).unwrap();
    let dup = text.replacen("\"classes\":", "\"classes\": 3, \"classes\":", 1);
    std::fs::write(&bad, dup).unwrap();
    let out = cbnn(&["eval", bad.to_str().unwrap(), "--dataset", &data]);
    assert_fails(&out, 2, "duplicate field `classes`");
}

#[test]
fn absurd_resource_flags_get_one_sentence() {
    let (dir, data, _model) = setup("rob-flags");
    let o = dir.join("o.json");
    let o = o.to_str().unwrap();
    let out = cbnn(&["--threads", "100000", "data", "info", "--dataset", &data]);
    assert_fails(&out, 2, "--threads 100000 must be between 1 and 1024");
    let out = cbnn(&["train", "--dataset", &data, "--hidden", "1000000", "-o", o]);
    assert_fails(&out, 2, "more than the 65536 neurons");
    let out = cbnn(&[
        "train",
        "--dataset",
        &data,
        "--hidden",
        "60000,60000",
        "-o",
        o,
    ]);
    assert_fails(&out, 2, "more than the 268435456 training may hold");
    let out = cbnn(&[
        "train",
        "--dataset",
        &data,
        "--float",
        "--hidden",
        "60000,60000",
        "-o",
        o,
    ]);
    assert_fails(&out, 2, "more than the 268435456 training may hold");
    let out = cbnn(&["train", "--dataset", &data, "--validation", "0", "-o", o]);
    assert_fails(&out, 2, "--validation 0 leaves nothing to decide on");
    let out = cbnn(&["train", "--dataset", &data, "--batch", "65537", "-o", o]);
    assert_fails(&out, 2, "--batch 65537 is more than 65536 images");
    let out = cbnn(&["train", "--dataset", &data, "--epochs", "100001", "-o", o]);
    assert_fails(&out, 2, "--epochs must be between 1 and 100000");
    let out = cbnn(&[
        "data",
        "fetch",
        "mnist",
        "--dir",
        dir.join("f").to_str().unwrap(),
        "--mirror",
        "not a url",
    ]);
    assert_fails(
        &out,
        2,
        "--mirror 'not a url' is not an http:// or https:// URL",
    );
}

#[test]
fn a_diverging_learning_rate_never_replaces_a_model_and_each_epoch_prints_its_own_rate() {
    let (_dir, data, model) = setup("rob-lr");
    let before = std::fs::read(&model).unwrap();
    let out = cbnn(&[
        "train",
        "--dataset",
        &data,
        "--hidden",
        "16",
        "--epochs",
        "2",
        "--validation",
        "100",
        "--lr",
        "10",
        "-o",
        &model,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("nothing was written") || stderr.contains("was not written"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&model).unwrap(), before);
    // The first epoch trains at --lr itself, the second at the decayed rate.
    let out = cbnn_ok(&[
        "train",
        "--dataset",
        &data,
        "--hidden",
        "16",
        "--epochs",
        "2",
        "--validation",
        "100",
        "--lr",
        "0.01",
        "--lr-final",
        "0.01",
        "-o",
        &model,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("epoch   1 ") && stderr.contains("lr 1.00e-2"),
        "{stderr}"
    );
    assert!(stderr.contains("lr 1.00e-3"), "{stderr}");
}

#[test]
fn a_bad_value_in_a_models_provenance_names_the_file_and_field() {
    let (dir, data, model) = setup("rob-prov");
    let mut v = json_file(Path::new(&model));
    v["provenance"]["hyper"]["batch"] = 1.into();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, serde_json::to_string(&v).unwrap()).unwrap();
    let out = cbnn(&[
        "prune",
        bad.to_str().unwrap(),
        "--dataset",
        &data,
        "-o",
        dir.join("c.json").to_str().unwrap(),
    ]);
    let err = assert_fails(
        &out,
        2,
        "bad.json: \"provenance.hyper\" holds training settings that cannot be used",
    );
    assert!(!err.contains("--batch"), "{err}");
}

#[test]
fn predictions_can_carry_every_class_score() {
    let (dir, data, model) = setup("rob-scores");
    let p = dir.join("p.csv");
    cbnn_ok(&[
        "eval",
        &model,
        "--dataset",
        &data,
        "--predictions",
        p.to_str().unwrap(),
        "--scores",
    ]);
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("index,label,predicted,score_0,") && header.ends_with(",score_9"),
        "{header}"
    );
    let mut rows = 0;
    for line in lines {
        let v: Vec<u32> = line.split(',').map(|x| x.parse().unwrap()).collect();
        let scores = &v[3..];
        assert_eq!(scores.len(), 10);
        let best = (0..10).fold(0, |b, c| if scores[c] > scores[b] { c } else { b });
        assert_eq!(v[2] as usize, best, "{line}");
        rows += 1;
    }
    assert_eq!(rows, 100);
}

#[test]
fn a_negative_noise_margin_is_refused() {
    let (dir, data, model) = setup("rob-margin");
    let out = cbnn(&[
        "prune",
        &model,
        "--dataset",
        &data,
        "--noise-margin=-1",
        "-o",
        dir.join("c.json").to_str().unwrap(),
    ]);
    assert_fails(
        &out,
        2,
        "--noise-margin must be a number of standard errors, 0 or more",
    );
    assert!(!dir.join("c.json").exists());
}

/// A logic-mapped model (a `lut` layer, a second one when `deep`, and the group sum) over the
/// fixture's 8x8 images.
fn write_lut_model(path: &Path, deep: bool) {
    use cbnn::bitslice::PlaneSet;
    use cbnn::layers::{GroupSum, Layer, Lut};
    use cbnn::model::{InputShape, IntModel, Provenance};
    let features = 64 * 2;
    let first = Lut {
        fan_in: 6,
        connections: (0..40 * 6).map(|i| (i * 37 % features) as u32).collect(),
        tables: (0..40u64)
            .map(|j| j.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect(),
    };
    let model = IntModel {
        input: InputShape {
            height: 8,
            width: 8,
            channels: 1,
        },
        planes: PlaneSet::new(&[7, 6]).unwrap(),
        layers: if deep {
            let second = Lut {
                fan_in: 4,
                connections: (0..20 * 4).map(|i| (i * 7 % 40) as u32).collect(),
                tables: (0..20u64).map(|j| j * 2654 % 65536).collect(),
            };
            vec![
                Layer::Lut(first),
                Layer::Lut(second),
                Layer::GroupSum(GroupSum { classes: 10 }),
            ]
        } else {
            vec![Layer::Lut(first), Layer::GroupSum(GroupSum { classes: 10 })]
        },
        provenance: Provenance::default(),
    };
    cbnn::model::save(&model, path).unwrap();
}

#[test]
fn a_logic_mapped_model_is_evaluated_and_what_cannot_take_it_yet_says_so() {
    let (dir, data, _) = setup("rob-lut");
    let model = dir.join("lut.json");
    write_lut_model(&model, false);
    let m = model.to_str().unwrap();
    cbnn_ok(&["eval", m, "--dataset", &data]);
    let rtl = dir.join("rtl");
    let out = cbnn(&["rtl", m, "-o", rtl.to_str().unwrap(), "--fold", "L0:8,6"]);
    assert_fails(
        &out,
        2,
        "is logic-mapped: it has only the fully parallel folding",
    );
    assert!(!rtl.exists());
    // The trainer builds one logic-mapped layer: a model of two cannot be retrained.
    let deep = dir.join("deep.json");
    write_lut_model(&deep, true);
    let out = cbnn(&[
        "prune",
        deep.to_str().unwrap(),
        "--dataset",
        &data,
        "-o",
        dir.join("c.json").to_str().unwrap(),
    ]);
    assert_fails(
        &out,
        2,
        "its layers cannot be retrained, so it cannot be pruned",
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("sensitivity"));
}

/// A relative `XDG_CACHE_HOME` is ignored, as the XDG specification says: the simulator is
/// built in the home cache instead of in a directory that moves with every tool that changes
/// directory (make, which then could not find the harness).
#[test]
fn a_relative_cache_directory_is_ignored() {
    require_verilator();
    let (dir, data, model) = setup("rob-relcache");
    let design = dir.join("design");
    cbnn_ok(&["rtl", &model, "-o", design.to_str().unwrap()]);
    let out = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .current_dir(&dir)
        .args(["sim", "design", "--dataset", &data, "--count", "5"])
        .env("XDG_CACHE_HOME", "relative-cache")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("relative-cache").exists());
}

/// Under a hard `ulimit -v` below the memory cbnn would let its tools use, an ordinary user's
/// `cbnn sim` and `cbnn synth` run: the tools get what cbnn itself was given, and cbnn never
/// asks to raise the hard limit (only a privileged process may; the request failed every
/// simulation and synthesis with "Operation not permitted"). As root, the commands run as the
/// user `nobody`.
#[test]
fn a_hard_memory_limit_below_the_budget_is_kept_not_raised() {
    require_verilator();
    let (dir, data, model) = setup("rob-ulimit");
    let design = dir.join("design");
    cbnn_ok(&["rtl", &model, "-o", design.to_str().unwrap()]);
    std::fs::create_dir(dir.join("cache")).unwrap();
    let open = Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(open.success());
    let limited = |args: &str| {
        let line = format!(
            "ulimit -v 4000000 && exec {} {args}",
            env!("CARGO_BIN_EXE_cbnn")
        );
        as_ordinary_user("sh")
            .args(["-c", &line])
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .output()
            .unwrap()
    };
    let d = design.to_str().unwrap();
    for args in [
        format!("sim {d} --dataset {data} --count 5"),
        format!("synth {d} --target generic"),
    ] {
        let out = limited(&args);
        assert!(
            out.status.success(),
            "{args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// `program` run as an ordinary user: as `nobody` when the tests run as root (who may raise
/// any limit and write anywhere), else as the user running them.
fn as_ordinary_user(program: &str) -> Command {
    if unsafe { libc_geteuid() } == 0 {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Model, sweep spec and design manifest files are read through a size cap of their kind:
/// something that never ends (`/dev/zero`) is one sentence, not a machine out of memory. (The
/// commands run under an address-space limit, so that a regression fails here instead of
/// exhausting the machine.)
#[test]
fn endless_or_huge_input_files_are_refused_at_their_cap() {
    let dir = temp_dir("rob-caps");
    let data = dir.join("data");
    write_fixture_dataset(&data, 60, 10, 8, false);
    let design = dir.join("design");
    std::fs::create_dir(&design).unwrap();
    std::os::unix::fs::symlink("/dev/zero", design.join("design.json")).unwrap();
    let limited = |args: &str| {
        let line = format!(
            "ulimit -v 6000000 && exec {} {args}",
            env!("CARGO_BIN_EXE_cbnn")
        );
        Command::new("sh").args(["-c", &line]).output().unwrap()
    };
    let d = data.to_str().unwrap();
    let run = dir.join("run");
    let r = run.to_str().unwrap();
    for (args, message) in [
        (
            format!("eval /dev/zero --dataset {d}"),
            "/dev/zero: holds more than 2 GiB, the most cbnn reads of a model file",
        ),
        (
            format!("sweep /dev/zero -o {r}"),
            "/dev/zero: holds more than 1 MiB, the most cbnn reads of a sweep spec",
        ),
        (
            format!("synth {}", design.display()),
            "design.json: holds more than 64 MiB, the most cbnn reads of a design manifest",
        ),
    ] {
        assert_fails(&limited(&args), 2, message);
    }
    assert!(!run.exists());
}

/// A design directory whose path holds what a makefile or a shell treats specially (`$( )`,
/// backticks, a space, a newline) is built and simulated like any other: Verilator builds
/// copies of the sources in a directory of cbnn's own.
#[test]
fn a_design_path_with_shell_characters_is_built() {
    require_verilator();
    let (dir, data, model) = setup("rob-oddpath");
    let design = dir.join("odd $(x) `y`\nname");
    let d = design.to_str().unwrap();
    cbnn_ok(&["rtl", &model, "-o", d, "--fold", "L0:3,16;L1:2,4"]);
    let out = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args(["sim", d, "--dataset", &data, "--count", "5"])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A logic-mapped network: its design takes one cycle an image, so `--target-cycles 1` is met
/// (a narrower port that misses a target is refused naming it); `cbnn bench` without a
/// full-precision model says in one sentence that none can be trained for it, instead of naming
/// a flag the user never gave (`--hidden []`).
#[test]
fn a_logic_mapped_network_meets_one_cycle_and_bench_names_what_it_needs() {
    let dir = temp_dir("rob-lut");
    let data = dir.join("data");
    write_fixture_dataset(&data, 300, 50, 8, false);
    let (d, m) = (data.to_str().unwrap(), dir.join("lut.json"));
    let m = m.to_str().unwrap();
    cbnn_ok(&[
        "train",
        "--dataset",
        d,
        "--arch",
        "l20f6",
        "--epochs",
        "1",
        "--validation",
        "50",
        "-o",
        m,
    ]);
    let design = dir.join("design");
    cbnn_ok(&[
        "rtl",
        m,
        "-o",
        design.to_str().unwrap(),
        "--fold",
        "auto",
        "--target-cycles",
        "1",
    ]);
    assert_eq!(
        json_file(&design.join("design.json"))["initiation_interval"],
        1
    );
    let narrow = dir.join("narrow");
    let out = cbnn(&[
        "rtl",
        m,
        "-o",
        narrow.to_str().unwrap(),
        "--fold",
        "auto",
        "--target-cycles",
        "1",
        "--bits-per-beat",
        "8",
    ]);
    assert_fails(
        &out,
        2,
        "--target-cycles 1 cannot be met: the logic-mapped design takes",
    );
    assert!(!narrow.exists());
    let out = cbnn(&["bench", "--dataset", d, "--baseline", m, "--compact", m]);
    assert_fails(
        &out,
        2,
        "a logic-mapped network (l20f6) has no full-precision counterpart to train; give one \
         with --float",
    );
}

/// `cbnn synth` on a design directory it cannot write its log into says so before Yosys
/// starts, not after the whole run. (As root, which may write anywhere, it runs as `nobody`.)
#[test]
fn synth_of_a_read_only_design_is_refused_before_yosys_starts() {
    let (dir, _data, model) = setup("rob-readonly");
    let design = dir.join("design");
    cbnn_ok(&["rtl", &model, "-o", design.to_str().unwrap()]);
    let chmod = |mode: &str, p: &Path| {
        assert!(Command::new("chmod")
            .args(["-R", mode])
            .arg(p)
            .status()
            .unwrap()
            .success())
    };
    chmod("a+rX", &dir);
    chmod("a-w", &design);
    let out = as_ordinary_user(env!("CARGO_BIN_EXE_cbnn"))
        .args(["synth", design.to_str().unwrap(), "--target", "generic"])
        .output()
        .unwrap();
    chmod("u+w", &design);
    let err = assert_fails(&out, 2, "synth_generic.log: Permission denied");
    assert!(!err.contains("Yosys"), "{err}");
}

/// A small model file may declare images far larger than any streaming design could take;
/// `rtl` (and `sim` or `synth` of a design holding such a model) refuse it in one sentence
/// before the cycle model walks its pixels, instead of staying busy for hours.
#[test]
fn a_streaming_design_of_huge_images_is_refused_up_front() {
    let dir = temp_dir("rob-huge-image");
    let ops = [Op::Conv(1, 3, false), Op::Pool(8), Op::Pool(8)];
    let huge = dir.join("huge.json");
    cbnn::model::save(&random_conv_model(7, (515, 515), &[7], &ops, 2), &huge).unwrap();
    let h = huge.to_str().unwrap();
    let sentence = "huge.json: images of 515x515 pixels are more than a design that streams \
                    pixels takes (262144 pixels, 512x512)";
    let started = Instant::now();
    assert_fails(
        &cbnn(&["rtl", h, "-o", dir.join("d").to_str().unwrap()]),
        2,
        sentence,
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!dir.join("d").exists());
    // The same model inside a design directory (its model.json replaced after generation).
    let small = dir.join("small.json");
    cbnn::model::save(&random_conv_model(7, (19, 19), &[7], &ops[..2], 2), &small).unwrap();
    let design = dir.join("design");
    cbnn_ok(&[
        "rtl",
        small.to_str().unwrap(),
        "-o",
        design.to_str().unwrap(),
    ]);
    std::fs::copy(&huge, design.join("model.json")).unwrap();
    let out = cbnn(&["synth", design.to_str().unwrap(), "--target", "generic"]);
    assert_fails(
        &out,
        2,
        "design.json: images of 515x515 pixels are more than a design that streams",
    );
}
