//! `cbnn sweep`: every design point of a spec built, synthesized and co-simulated, a point no
//! folding fits reported with its reason, the Pareto front marked; a second run reuses every
//! job; a killed run resumes to the same files; and a bad spec is one sentence, exit 2.

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_sweep_builds_every_point_reports_the_front_and_resumes_after_a_kill() {
    let dir = temp_dir("sweep");
    let spec = sweep_fixture(&dir);
    let s = spec.to_str().unwrap();
    let run1 = dir.join("run");
    let r1 = run1.to_str().unwrap();
    let out = cbnn_ok(&["sweep", s, "-o", r1, "--jobs", "1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = json_file(&run1.join("report.json"));
    let points = report["points"].as_array().unwrap();
    assert_eq!(points.len(), 8, "{report}");
    let mut fronts = 0;
    for p in points {
        let (model, label) = (p["model"].as_str().unwrap(), p["label"].as_str().unwrap());
        if (model, label) == ("small", "fold-2") {
            // Named in the report with the reason, and built nowhere.
            let why = p["infeasible"].as_str().unwrap();
            assert!(why.contains("layer L2 does not exist"), "{why}");
            assert!(!run1.join("designs/small/fold-2").exists());
            assert!(stdout.contains("not built"), "{stdout}");
            continue;
        }
        assert!(p.get("infeasible").is_none(), "{p}");
        let cycles = p["cycles_per_image"].as_u64().unwrap();
        if let Some(n) = label.strip_prefix("auto-") {
            assert!(cycles <= n.parse::<u64>().unwrap(), "{p}");
        }
        assert!(p["synth"]["xilinx"]["luts"].as_u64().unwrap() > 0, "{p}");
        assert_eq!(p["luts"], p["synth"]["xilinx"]["luts"]);
        assert_eq!(p["sim"]["images"], 30);
        assert_eq!(p["sim"]["mismatches"], 0, "{p}");
        assert!(run1
            .join(format!("designs/{model}/{label}/design.json"))
            .is_file());
        fronts += p["pareto"].as_bool().unwrap() as usize;
        // Every number of the point's row in report.md is report.json's.
        let row = format!(
            "| {model} | {} | {} | {cycles} | {} |",
            p["folding"].as_str().unwrap(),
            p["layers"].as_str().unwrap(),
            p["latency"]
        );
        assert!(stdout.contains(&row), "{row} not in {stdout}");
    }
    // A point on the front is beaten by none; one off it is beaten by one on it.
    assert!((1..7).contains(&fronts), "{fronts} points on the front");
    let svg = std::fs::read_to_string(run1.join("pareto.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("</svg>"));
    assert_eq!(
        std::fs::read_to_string(run1.join("report.md"))
            .unwrap()
            .trim_end(),
        stdout.trim_end()
    );

    // Again: every job reused, the same report.
    let jobs = 2 + 7 * 3;
    let t0 = Instant::now();
    let out = cbnn_ok(&["sweep", s, "-o", r1]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("reused").count(), jobs, "{stderr}");
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_eq!(json_file(&run1.join("report.json")), report);

    // Killed after its first designs, then resumed (two jobs at a time, the default): the
    // same files as the uninterrupted run, under the same path (designs name their model).
    let done = dir.join("run-done");
    std::fs::rename(&run1, &done).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args(["sweep", s, "-o", r1])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !run1.join("stages/synth.big.auto-16.xilinx.json").exists() {
        assert!(Instant::now() < deadline, "the sweep did not synthesize");
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!run1.join("report.json").exists());
    let out = cbnn_ok(&["sweep", s, "-o", r1]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[rtl.big.auto-16] reused"), "{stderr}");
    assert!(stderr.matches("reused").count() < jobs, "{stderr}");
    let (a, b) = (
        comparable(&done, &SWEEP_TIMED),
        comparable(&run1, &SWEEP_TIMED),
    );
    assert_same_files(&a, &b, 60);
}

/// A one-layer perceptron of a 60-image fixture dataset at `data`, written to `model`.
fn tiny_model(data: &Path, model: &Path) {
    write_fixture_dataset(data, 60, 10, 8, false);
    cbnn_ok(&[
        "train",
        "--dataset",
        data.to_str().unwrap(),
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--validation",
        "10",
        "-o",
        model.to_str().unwrap(),
    ]);
}

#[test]
fn a_bad_spec_or_model_is_one_sentence() {
    let dir = temp_dir("sweep-bad");
    let spec = dir.join("s.toml");
    let s = spec.to_str().unwrap();
    let run = dir.join("run");
    let r = run.to_str().unwrap();
    let cases: [(&str, &str); 7] = [
        ("cycles = [64]\n[models]\n", "names no model"),
        (
            "cycles = [64]\ntarget = [\"xilinx\"]\n[models]\na = \"a.json\"\n",
            "unknown field `target`",
        ),
        (
            "cycles = [64]\n[models]\na = \"absent.json\"\n",
            "absent.json",
        ),
        ("cycles = [64]\n[models]\na = \"s.toml\"\n", "s.toml"),
        (
            "foldings = [\"L7:1,1\"]\n[models]\na = \"m.json\"\n",
            "fits none of the models",
        ),
        // What every job would fail on is said once, before any work.
        (
            "dataset = \"data\"\nclock_mhz = 5000\ncycles = [64]\n[models]\na = \"m.json\"\n",
            "clock_mhz 5000 must be between 1 and 2000",
        ),
        (
            "dataset = \"no-such-data\"\ncycles = [64]\n[models]\na = \"m.json\"\n",
            "unknown dataset 'no-such-data'",
        ),
    ];
    let m = dir.join("m.json");
    let data = dir.join("data");
    tiny_model(&data, &m);
    for (text, says) in cases {
        std::fs::write(&spec, text).unwrap();
        assert_fails(&cbnn(&["sweep", s, "-o", r]), 2, says);
        assert!(!run.exists(), "{says}: the sweep began");
    }
    assert_fails(
        &cbnn(&["sweep", dir.join("none.toml").to_str().unwrap(), "-o", r]),
        2,
        "none.toml",
    );
    // The run directory must be a directory.
    std::fs::write(&spec, "cycles = [64]\n[models]\na = \"m.json\"\n").unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    assert_fails(
        &cbnn(&["sweep", s, "-o", file.to_str().unwrap()]),
        2,
        "not a directory",
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn a_tool_out_of_memory_is_one_sentence_and_a_sweep_goes_on_past_it() {
    let dir = temp_dir("sweep-memory");
    let (data, m) = (dir.join("data"), dir.join("m.json"));
    tiny_model(&data, &m);
    let design = dir.join("design");
    cbnn_ok(&["rtl", m.to_str().unwrap(), "-o", design.to_str().unwrap()]);
    // A design Yosys is expected to need more memory for than it may use: refused before
    // Yosys starts.
    let out = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args(["synth", design.to_str().unwrap()])
        .env("CBNN_TOOL_MEMORY_MB", "512")
        .output()
        .unwrap();
    assert_fails(&out, 2, "is too large to synthesize here: for its ~");
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "more than the 0.5 GiB cbnn lets it use; fold it more (a larger --target-cycles, or smaller PE and SIMD), or set CBNN_TOOL_MEMORY_CHECK=off to try anyway"
    ));
    assert!(!design.join("synth_xilinx.log").exists());
    // Yosys under a limit it cannot work in, let start anyway: one sentence, not the kernel's
    // OOM killer.
    let starved = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cbnn"))
            .args(args)
            .env("CBNN_TOOL_MEMORY_MB", "64")
            .env("CBNN_TOOL_MEMORY_CHECK", "off")
            .output()
            .unwrap()
    };
    let out = starved(&["synth", design.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let last = stderr.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with(
            "error: yosys ran out of the 0.1 GiB cbnn lets it use (CBNN_TOOL_MEMORY_MB)"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("error").count(), 1, "{stderr}");
    assert_fails(
        &Command::new(env!("CARGO_BIN_EXE_cbnn"))
            .args(["synth", design.to_str().unwrap()])
            .env("CBNN_TOOL_MEMORY_MB", "lots")
            .output()
            .unwrap(),
        2,
        "CBNN_TOOL_MEMORY_MB='lots' must be a whole number",
    );
    // Verilator: a design with fully parallel layers predicted to need more memory than it may
    // use is refused before Verilator starts; one let start anyway under a limit it cannot
    // build in ends in one sentence. (A cache of its own: a cached build is never refused.)
    let full = dir.join("full");
    let (f, d) = (full.to_str().unwrap(), data.to_str().unwrap());
    cbnn_ok(&[
        "rtl",
        m.to_str().unwrap(),
        "-o",
        f,
        "--fold",
        "L0:full;L1:full",
    ]);
    let cache = dir.join("cache");
    let sim = |mb: &str, check: &str| {
        Command::new(env!("CARGO_BIN_EXE_cbnn"))
            .args(["sim", f, "--dataset", d, "--count", "2"])
            .env("XDG_CACHE_HOME", &cache)
            .env("CBNN_TOOL_MEMORY_MB", mb)
            .env("CBNN_TOOL_MEMORY_CHECK", check)
            .output()
            .unwrap()
    };
    let out = sim("1100", "on");
    assert_fails(
        &out,
        2,
        "is too large to simulate here: for the 4176 bits its layers count a cycle (PE x SIMD) \
         Verilator is expected to need up to 1.3 GiB (1 GiB and 80 KiB a bit, as measured here), \
         more than the 1.1 GiB cbnn lets it use",
    );
    assert!(!cache.join("cbnn").join("verilator").exists());
    let out = sim("64", "off");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.trim_end().lines().last().unwrap().starts_with(
            "error: verilator ran out of the 0.1 GiB cbnn lets it use (CBNN_TOOL_MEMORY_MB) on"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("error").count(), 1, "{stderr}");
    // The sweep below simulates the default folding, its build cached now, with enough memory.
    cbnn_ok(&[
        "sim",
        design.to_str().unwrap(),
        "--dataset",
        d,
        "--count",
        "2",
    ]);
    // A sweep whose synthesis fails: the other jobs run, the report says what failed, exit 1.
    let spec = dir.join("s.toml");
    std::fs::write(
        &spec,
        "dataset = \"data\"\nfoldings = [\"default\"]\nsim_images = 5\n[models]\nm = \"m.json\"\n",
    )
    .unwrap();
    let run = dir.join("run");
    let out = starved(&["sweep", spec.to_str().unwrap(), "-o", run.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("1 of 4 jobs failed or could not run (first: synth.m.default.xilinx"),
        "{stderr}"
    );
    let report = json_file(&run.join("report.json"));
    let p = &report["points"][0];
    assert!(
        p["failed"]["synth xilinx"]
            .as_str()
            .unwrap()
            .contains("ran out of"),
        "{p}"
    );
    assert_eq!(p["sim"]["mismatches"], 0, "{p}");
    assert!(p.get("luts").is_none(), "{p}");
    assert!(std::fs::read_to_string(run.join("report.md"))
        .unwrap()
        .contains("## Failed jobs"));
}

/// Builds of the same design at once share nothing but the finished simulator: a sweep that
/// lists one model twice, with an empty simulator cache and two jobs at a time, builds the
/// simulator of both (identical) designs at the same moment, in one process; and three `cbnn
/// sim` processes of copies of one design do the same across processes.
#[test]
fn builds_of_the_same_design_at_once_do_not_break_each_other() {
    let dir = temp_dir("sweep-same");
    let (data, m) = (dir.join("data"), dir.join("m.json"));
    tiny_model(&data, &m);
    std::fs::write(
        dir.join("twice.toml"),
        "dataset = \"data\"\n\
         cycles = [64]\n\
         targets = []\n\
         sim_images = 10\n\
         \n\
         [models]\n\
         a = \"m.json\"\n\
         b = \"m.json\"\n",
    )
    .unwrap();
    let cache = dir.join("cache");
    let run = dir.join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args(["sweep", "twice.toml", "-o", "run", "--jobs", "2"])
        .current_dir(&dir)
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(run.join("report.json").is_file());
    // Across processes: copies of one design, a new cache.
    let cache = dir.join("cache2");
    let designs: Vec<_> = (0..3).map(|k| dir.join(format!("d{k}"))).collect();
    for d in &designs {
        cbnn_ok(&["rtl", m.to_str().unwrap(), "-o", d.to_str().unwrap()]);
    }
    let children: Vec<_> = designs
        .iter()
        .map(|d| {
            Command::new(env!("CARGO_BIN_EXE_cbnn"))
                .args(["sim", d.to_str().unwrap(), "--dataset"])
                .arg(&data)
                .args(["--count", "5"])
                .env("XDG_CACHE_HOME", &cache)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // One simulator in the cache, and no build directory left beside it.
    let entries: Vec<_> = std::fs::read_dir(cache.join("cbnn/verilator"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
}

/// A finished job is reused only while every file it wrote is still there, unchanged: after a
/// design file is deleted, or edited, the next run generates the design again (and simulates
/// cbnn's design, not the edited one), instead of failing on every rerun.
#[test]
fn a_deleted_or_edited_output_is_made_again_not_reused() {
    let dir = temp_dir("sweep-reuse");
    let (data, m) = (dir.join("data"), dir.join("m.json"));
    tiny_model(&data, &m);
    std::fs::write(
        dir.join("one.toml"),
        "dataset = \"data\"\ncycles = [64]\ntargets = []\nsim_images = 10\n\n\
         [models]\na = \"m.json\"\n",
    )
    .unwrap();
    let sweep = || {
        let out = Command::new(env!("CARGO_BIN_EXE_cbnn"))
            .args(["sweep", "one.toml", "-o", "run"])
            .current_dir(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    sweep();
    let design = dir.join("run/designs/a/auto-64");
    let weights = design.join("l0_weights.hex");
    let top = design.join("cbnn_top.v");
    let (w, t) = (
        std::fs::read(&weights).unwrap(),
        std::fs::read(&top).unwrap(),
    );
    // All reused when nothing changed.
    let again = sweep();
    assert!(!again.contains("] cbnn "), "a job ran again: {again}");
    // A deleted memory image: the design is generated again.
    std::fs::remove_file(&weights).unwrap();
    let again = sweep();
    assert!(again.contains("[rtl.a.auto-64] cbnn rtl"), "{again}");
    assert_eq!(std::fs::read(&weights).unwrap(), w);
    // An edited top level: generated again, so that what the report shows is of cbnn's
    // design (the same as before, whose simulation stands), never of the edited one.
    let mut edited = t.clone();
    edited.extend_from_slice(b"// edited\n");
    std::fs::write(&top, &edited).unwrap();
    let again = sweep();
    assert!(again.contains("[rtl.a.auto-64] cbnn rtl"), "{again}");
    assert!(again.contains("[sim.a.auto-64] reused"), "{again}");
    assert_eq!(std::fs::read(&top).unwrap(), t);
}
