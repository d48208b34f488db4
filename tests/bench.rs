//! `cbnn train --float`, `cbnn eval` of a full-precision model, and `cbnn bench` end to end on a
//! small fixture dataset (models made on the spot, Verilator when installed).

mod common;
use common::*;

use std::path::Path;

fn eval_accuracy(model: &Path, data: &str, dir: &Path, name: &str) -> f64 {
    let json = dir.join(format!("{name}-eval.json"));
    cbnn_ok(&[
        "eval",
        model.to_str().unwrap(),
        "--dataset",
        data,
        "--json",
        json.to_str().unwrap(),
    ]);
    json_file(&json)["accuracy"].as_f64().unwrap()
}

#[test]
fn float_counterpart_trains_evaluates_and_refuses_binary_only_flags() {
    let dir = temp_dir("float");
    let data = dir.join("data");
    write_fixture_dataset(&data, 600, 150, 8, false);
    let data = data.to_str().unwrap();
    let m = dir.join("f.json");
    let out = cbnn_ok(&[
        "train",
        "--float",
        "--dataset",
        data,
        "--hidden",
        "32,16",
        "--epochs",
        "30",
        "--lr",
        "0.01",
        "--validation",
        "100",
        "-o",
        m.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("full precision"), "{stdout}");
    let model = json_file(&m);
    assert_eq!(model["format"], "cbnn-float-mlp");
    assert_eq!(model["layers"].as_array().unwrap().len(), 3);
    // The fixture is learnable: well above the 10 % of guessing.
    let acc = eval_accuracy(&m, data, &dir, "f");
    assert!(acc > 0.4, "accuracy {acc}");
    assert_eq!(model["provenance"]["test_accuracy"].as_f64().unwrap(), acc);

    // Planes and augmentation belong to the binary network.
    let out = cbnn(&[
        "train",
        "--float",
        "--planes",
        "7",
        "--dataset",
        data,
        "-o",
        "x.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    // A binary-only command names what the file is.
    let out = cbnn(&[
        "rtl",
        m.to_str().unwrap(),
        "-o",
        dir.join("d").to_str().unwrap(),
    ]);
    assert_fails(&out, 2, "cbnn-float-mlp");
}

#[test]
fn bench_makes_missing_models_measures_and_reuses_them() {
    let dir = temp_dir("bench");
    let data = dir.join("data");
    write_fixture_dataset(&data, 700, 300, 8, false);
    let data = data.to_str().unwrap();
    // A small baseline is given; the compact and full-precision models are made by the bench.
    let base = dir.join("base.json");
    cbnn_ok(&[
        "train",
        "--dataset",
        data,
        "--hidden",
        "24,16",
        "--epochs",
        "8",
        "--validation",
        "100",
        "-o",
        base.to_str().unwrap(),
    ]);
    let work = dir.join("work");
    let json = dir.join("bench.json");
    let args = [
        "bench",
        "--dataset",
        data,
        "--baseline",
        base.to_str().unwrap(),
        "--work",
        work.to_str().unwrap(),
        "--repeats",
        "3",
        "--batch",
        "1,100",
        "--train-images",
        "300",
        "--sim-images",
        "20",
        "--validation",
        "100",
        "--json",
        json.to_str().unwrap(),
    ];
    let out = cbnn_ok(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("compact/baseline"), "{stdout}");
    let r = json_file(&json);
    // The headline is one thread at batch 1000, which this run did not measure.
    assert!(r["speedup_vs_baseline"].is_null());
    let ratios = r["ratios"].as_array().unwrap();
    assert!(ratios
        .iter()
        .all(|x| x["compact_vs_baseline"]["median"].as_f64().unwrap() > 0.0));
    // Three engines, one thread and all threads, two batch sizes.
    let threads = r["machine"]["cores"].as_u64().unwrap();
    let settings = if threads > 1 { 4 } else { 2 };
    assert_eq!(r["inference"].as_array().unwrap().len(), 3 * settings);
    for row in r["inference"].as_array().unwrap() {
        let ips = &row["images_per_second"];
        assert!(ips["min"].as_f64().unwrap() <= ips["median"].as_f64().unwrap());
        assert!(ips["median"].as_f64().unwrap() <= ips["max"].as_f64().unwrap());
    }
    // The accuracies are those `cbnn eval` gives for the same files.
    for m in r["models"].as_array().unwrap() {
        let path = Path::new(m["path"].as_str().unwrap());
        let name = m["name"].as_str().unwrap();
        let acc = eval_accuracy(path, data, &dir, name);
        assert_eq!(m["test_accuracy"].as_f64().unwrap(), acc, "{name}");
    }
    let train = r["training_images_per_second"].as_array().unwrap();
    assert_eq!(train.len(), 2);
    require_verilator();
    let sim = r["simulation"].as_array().unwrap();
    assert_eq!(sim.len(), 2);
    assert!(sim
        .iter()
        .all(|s| s["images"] == 20 && s["cycles"].as_u64().unwrap() > 0));

    // The next run finds the models it made and measures at batch 1000 too.
    let mut again = args.to_vec();
    again[10] = "1000";
    let out = cbnn_ok(&again);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // compact, float, and the two designs.
    assert_eq!(stderr.matches("reused").count(), 2 + 2, "{stderr}");
    let r = json_file(&json);
    assert!(r["speedup_vs_baseline"].as_f64().unwrap() > 0.0);
    assert!(r["speedup_vs_float"].as_f64().unwrap() > 0.0);
}
