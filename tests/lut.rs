//! Logic-mapped networks end to end on a fixture: `train --arch lNfF`, the export check, the
//! default plane, `eval`, `rtl` and `sim`, determinism and the errors of the flags.

mod common;

use common::*;

/// A logic-mapped network trains on a small synthetic dataset, keeps one plane by default,
/// its export check holds, and its one-image-a-clock accelerator co-simulates exactly,
/// free-running and stalled, reading only the input bits its neurons read.
#[test]
fn a_logic_mapped_network_trains_and_its_accelerator_cosimulates() {
    let dir = temp_dir("lut-fixture");
    write_fixture_dataset(&dir, 1300, 200, 12, false);
    let model = dir.join("lut.json");
    let json = dir.join("train.json");
    let out = cbnn_ok(&[
        "train",
        "--dataset",
        dir.to_str().unwrap(),
        "--arch",
        "l60f5",
        "--epochs",
        "6",
        "--validation",
        "300",
        "-o",
        model.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("layers       144 -> l60f5 -> 10"),
        "{stdout}"
    );
    let (report, accuracy) = checked_training(&model, &json, &dir);
    assert_eq!(report["arch"], "l60f5");
    assert_eq!(report["planes"].as_array().unwrap().len(), 1, "{report}");
    // Ten classes: chance is 10 %.
    assert!(report["test_accuracy"].as_f64().unwrap() > 0.3, "{report}");
    let text = std::fs::read_to_string(&model).unwrap();
    assert!(text.contains("\"kind\": \"lut\"") && text.contains("\"kind\": \"group_sum\""));

    let design = dir.join("design");
    cbnn_ok(&[
        "rtl",
        model.to_str().unwrap(),
        "-o",
        design.to_str().unwrap(),
    ]);
    let manifest = json_file(&design.join("design.json"));
    assert_eq!(manifest["initiation_interval"], 1, "{manifest}");
    let reads = manifest["input"]["reads"].as_array().unwrap().len();
    assert!(reads > 0 && reads <= 144, "{manifest}");
    assert_eq!(manifest["input"]["bits_per_beat"], reads, "{manifest}");
    for stall in [None, Some("3")] {
        let stdout = sim_matches(&design, &dir, stall, 200);
        assert!(stdout.contains(&accuracy), "{stdout}");
    }
    // The narrow port: a deserializer gathers the bits in beats of 16.
    let narrow = dir.join("narrow");
    let out = cbnn_ok(&[
        "rtl",
        model.to_str().unwrap(),
        "-o",
        narrow.to_str().unwrap(),
        "--bits-per-beat",
        "16",
    ]);
    let beats = reads.div_ceil(16);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "s_axis_tdata 16 bits ({beats} beats an image of the {reads} of 144 input bits"
        )),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let manifest = json_file(&narrow.join("design.json"));
    assert_eq!(manifest["initiation_interval"], beats + 1, "{manifest}");
    for stall in [None, Some("4")] {
        let stdout = sim_matches(&narrow, &dir, stall, 200);
        assert!(stdout.contains(&accuracy), "{stdout}");
    }
    // Pixels a beat are not what a logic-mapped port carries, and bits a beat are not what
    // any other takes.
    let out = cbnn(&[
        "rtl",
        model.to_str().unwrap(),
        "-o",
        dir.join("other").to_str().unwrap(),
        "--pixels-per-beat",
        "4",
    ]);
    assert_fails(
        &out,
        2,
        "its port carries the input bits its first layer reads",
    );
    let out = cbnn(&[
        "rtl",
        model.to_str().unwrap(),
        "-o",
        dir.join("other").to_str().unwrap(),
        "--bits-per-beat",
        "1000",
    ]);
    assert_fails(&out, 2, "--bits-per-beat 1000 must be between 1 and the");
    assert!(!dir.join("other").exists());

    // The search shrinks the neurons (in multiples of the classes), then their fan-in, and
    // says how many input bits each candidate reads.
    let compact = dir.join("compact.json");
    let prune_report = dir.join("prune.json");
    let out = cbnn_ok(&[
        "prune",
        model.to_str().unwrap(),
        "--dataset",
        dir.to_str().unwrap(),
        "--validation",
        "300",
        "--epochs",
        "2",
        "--max-drop",
        "100",
        "-o",
        compact.to_str().unwrap(),
        "--report",
        prune_report.to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("in bits"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let pr = json_file(&prune_report);
    assert_eq!(pr["baseline"]["input_bits"], reads, "{pr}");
    let candidates = pr["candidates"].as_array().unwrap();
    for phase in ["widths", "fan-in"] {
        assert!(
            candidates.iter().any(|c| c["phase"] == phase),
            "{phase}: {pr}"
        );
    }
    for c in candidates {
        let arch = c["arch"].as_str().unwrap();
        let neurons: usize = arch[1..arch.find('f').unwrap()].parse().unwrap();
        assert_eq!(neurons % 10, 0, "{arch}");
        assert!(c["input_bits"].as_u64().unwrap() <= 144, "{c}");
    }
    assert!(
        pr["chosen"]["size_bits"].as_u64().unwrap() < pr["baseline"]["size_bits"].as_u64().unwrap(),
        "{pr}"
    );

    // A logic-mapped network learns from a teacher too (here the baseline itself): the
    // soft targets change what it learns.
    let retrain = |name: &str, extra: &[&str]| {
        let out = dir.join(name);
        let mut args = vec![
            "retrain",
            model.to_str().unwrap(),
            "--dataset",
            dir.to_str().unwrap(),
            "--planes",
            "7",
            "--epochs",
            "2",
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        cbnn_ok(&args);
        std::fs::read(out).unwrap()
    };
    let plain = retrain("plain.json", &[]);
    let taught = retrain("taught.json", &["--distill", "0.5", "--temperature", "3"]);
    assert!(plain != taught);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Logic-mapped training is deterministic for a seed, whatever the thread count, and a plane
/// asked for is the plane kept.
#[test]
fn logic_mapped_training_gives_the_same_model_on_one_thread_and_on_four() {
    let dir = temp_dir("lut-threads");
    write_fixture_dataset(&dir, 600, 50, 10, false);
    let run = |threads: &str, out: &std::path::Path| {
        cbnn_ok(&[
            "--threads",
            threads,
            "train",
            "--json",
            out.with_extension("train.json").to_str().unwrap(),
            "--dataset",
            dir.to_str().unwrap(),
            "--arch",
            "l20f6",
            "--planes",
            "7,5",
            "--epochs",
            "2",
            "--batch",
            "32",
            "--validation",
            "100",
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    run("1", &a);
    run("4", &b);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let report = json_file(&a.with_extension("train.json"));
    assert_eq!(report["planes"], serde_json::json!([7, 5]));
    assert_eq!(report["features"], 200);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What a logic-mapped architecture cannot be is one sentence, exit 2, before any training.
#[test]
fn a_bad_logic_mapped_architecture_is_one_sentence() {
    let dir = temp_dir("lut-errors");
    write_fixture_dataset(&dir, 100, 20, 8, false);
    let data = dir.to_str().unwrap();
    let out = dir.join("m.json");
    let o = out.to_str().unwrap();
    for (args, says) in [
        (
            vec!["--arch", "l45f6"],
            "45 neurons do not split into 10 equal groups",
        ),
        (vec!["--arch", "l40f7"], "a fan-in of 7 is more than 6"),
        (vec!["--arch", "d20,l40"], "stands alone"),
        (
            vec!["--arch", "lut", "--float"],
            "a logic-mapped network (--arch lNfF) has none",
        ),
        (
            vec!["--arch", "l10f6", "--planes", "7", "--limit", "50"],
            "",
        ),
    ] {
        let mut a = vec!["train", "--dataset", data, "-o", o, "--epochs", "1"];
        a.extend(args.iter().copied());
        let r = cbnn(&a);
        if says.is_empty() {
            assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
            std::fs::remove_file(&out).unwrap();
        } else {
            assert_fails(&r, 2, says);
            assert!(!out.exists());
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
