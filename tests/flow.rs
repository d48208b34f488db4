//! `cbnn flow`: every stage end to end on a small fixture dataset, reuse of finished stages,
//! and resuming after a kill with the same final report.

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// report.json.
fn results(run: &Path) -> serde_json::Value {
    json_file(&run.join("report.json"))
}

#[test]
fn flow_runs_every_stage_reuses_them_and_resumes_after_a_kill() {
    let dir = temp_dir("flow");
    let data = dir.join("data");
    write_fixture_dataset(&data, 700, 120, 8, false);
    let data = data.to_str().unwrap();

    // Uninterrupted run, one stage at a time: every stage, the report and its pictures. (The
    // killed and resumed run below runs two at a time, the default, and must give the same
    // files.)
    let run1 = dir.join("run1");
    let r1 = run1.to_str().unwrap();
    let mut sequential = flow_args(data, r1);
    sequential.extend(["--jobs", "1"]);
    cbnn_ok(&sequential);
    let report = json_file(&run1.join("report.json"));
    assert_eq!(report["stages"].as_array().unwrap().len(), 9);
    for h in report["hardware"].as_array().unwrap() {
        assert_eq!(h["sim_mismatches"], 0);
        assert!(h["luts"].as_u64().unwrap() > 0, "{h}");
        assert!(h["cycles_per_image"].as_u64().unwrap() <= 64, "{h}");
    }
    let md = std::fs::read_to_string(run1.join("report.md")).unwrap();
    // Which search ran is in the report; how long each of its parts took, in the run log.
    assert_eq!(report["search"], "retrain");
    assert!(md.contains("Search by retraining"), "{md}");
    let phases = json_file(&run1.join("run-log.json"))["search_phases"].clone();
    let names: Vec<&str> = phases
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(names[..2], ["sensitivity", "planes"], "{phases}");
    for pic in ["sensitivity.svg", "pareto.svg", "resources.svg"] {
        assert!(md.contains(&format!("]({pic})")), "{pic} not linked");
        let svg = std::fs::read_to_string(run1.join(pic)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{pic}");
    }
    // Every number of the hardware table in report.md is report.json's.
    for h in report["hardware"].as_array().unwrap() {
        let row = format!(
            "| {} | {} | {} | {} | {} | {} |",
            h["model"].as_str().unwrap(),
            h["folding"].as_str().unwrap(),
            h["cycles_per_image"],
            h["latency"],
            h["luts"],
            h["luts_estimate"]
        );
        assert!(md.contains(&row), "{row} not in report.md");
    }

    // Second run: every stage reused, seconds not minutes, the same results.
    let first = results(&run1);
    let start = Instant::now();
    let out = cbnn_ok(&sequential);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("reused").count(), 9, "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(results(&run1), first);

    // Killed while pruning, then resumed: the same final report as the uninterrupted run. The
    // finished run moves aside so that the second one runs under the same path (reports name
    // their files).
    let done = dir.join("run1-done");
    std::fs::rename(&run1, &done).unwrap();
    let (run1, run2) = (done, run1);
    let r2 = run2.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args(flow_args(data, r2))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !run2.join("stages/sensitivity.json").exists() {
        assert!(Instant::now() < deadline, "the flow did not reach pruning");
        assert!(child.try_wait().unwrap().is_none(), "the flow ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!run2.join("report.json").exists());
    let out = cbnn_ok(&flow_args(data, r2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[train] reused"), "{stderr}");
    assert!(stderr.contains("[sensitivity] reused"), "{stderr}");
    assert_eq!(results(&run2), results(&run1));
    // Byte for byte: the models, both designs, the reports and the pictures. The stage outputs
    // that measure time (training history, pruning report, simulation and synthesis results)
    // are equal but for those fields. Left out: the run log and stage records (timings), and
    // the tools' logs.
    let (t1, t2) = (tree(&run1), tree(&run2));
    let compared: Vec<_> = t1
        .keys()
        .filter(|k| {
            let k = k.to_string_lossy();
            !(k.starts_with("stages/") || k.ends_with(".log") || k == "run-log.json")
        })
        .collect();
    assert!(compared.len() > 30, "{compared:?}");
    for k in compared {
        let (a, b) = (&t1[k], t2.get(k).unwrap_or_else(|| panic!("{k:?} missing")));
        let name = k.to_string_lossy();
        let timed = ["train.json", "prune.json", "sim-", "synth-"]
            .iter()
            .any(|t| name.starts_with(t));
        if timed && name.ends_with(".json") {
            let parse = |b: &[u8]| without_timings(serde_json::from_slice(b).unwrap());
            assert_eq!(parse(a), parse(b), "{k:?} differs");
        } else {
            assert!(a == b, "{k:?} differs");
        }
    }
    // No temporary file of an interrupted write is left behind.
    for e in std::fs::read_dir(&run2).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "{name} left behind");
    }
    // A changed dataset is never answered with a stale model: the train stage runs again.
    let labels = Path::new(data).join("train-labels-idx1-ubyte");
    let mut bytes = std::fs::read(&labels).unwrap();
    let last = bytes.len() - 1;
    bytes[last] = (bytes[last] + 1) % 10;
    std::fs::write(&labels, bytes).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args(flow_args(data, r2))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let first = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(|l| l.ok())
        .find(|l| l.starts_with("[train]"))
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.starts_with("[train] cbnn train"), "{first}");
}
