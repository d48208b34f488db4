//! Bad input: one clear sentence naming the file and the problem, exit code 2, no panic.

mod common;
use common::*;

use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name);
    write_fixture_dataset(&dir, 200, 50, 8, false);
    dir
}

#[test]
fn wrong_magic_number() {
    let dir = fixture("magic");
    let f = dir.join("train-images-idx3-ubyte");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[0] = 0x50;
    std::fs::write(&f, bytes).unwrap();
    let out = cbnn(&["data", "info", "--dataset", dir.to_str().unwrap()]);
    let err = assert_fails(
        &out,
        2,
        "not an IDX file: magic number starts 50 00, expected 00 00",
    );
    assert!(err.contains("train-images-idx3-ubyte"), "{err}");
}

#[test]
fn truncated_file() {
    let dir = fixture("trunc");
    let f = dir.join("t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 10]).unwrap();
    let out = cbnn(&["data", "info", "--dataset", dir.to_str().unwrap()]);
    assert_fails(&out, 2, "t10k-images-idx3-ubyte: truncated IDX file: dimensions [50, 8, 8] need 3200 data bytes, found 3190");
}

#[test]
fn truncated_gzip_file() {
    let dir = temp_dir("truncgz");
    write_fixture_dataset(&dir, 200, 50, 8, true);
    let f = dir.join("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let out = cbnn(&["data", "info", "--dataset", dir.to_str().unwrap()]);
    assert_fails(&out, 2, "train-images-idx3-ubyte.gz");
}

#[test]
fn image_label_count_mismatch() {
    let dir = fixture("count");
    let labels = cbnn::data::idx::encode(&[49], &[1; 49]);
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels).unwrap();
    let out = cbnn(&["data", "info", "--dataset", dir.to_str().unwrap()]);
    assert_fails(&out, 2, "t10k-labels-idx1-ubyte: 49 labels for 50 images");
}

#[test]
fn unknown_dataset_name() {
    let out = cbnn(&["data", "info", "--dataset", "cifar-99"]);
    assert_fails(
        &out,
        2,
        "error: unknown dataset 'cifar-99': not a directory, and not one of the known names (mnist, fashion-mnist)",
    );
}

#[test]
fn missing_file_in_dataset_dir() {
    let dir = fixture("missing");
    std::fs::remove_file(dir.join("train-labels-idx1-ubyte")).unwrap();
    let out = cbnn(&["data", "info", "--dataset", dir.to_str().unwrap()]);
    assert_fails(
        &out,
        2,
        "dataset directory has no train-labels-idx1-ubyte (nor train-labels-idx1-ubyte.gz)",
    );
}

/// Trains a tiny model on the fixture and returns (dataset dir, model path).
fn tiny_model(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = fixture(name);
    let model = dir.join("m.json");
    let out = cbnn(&[
        "train",
        "--dataset",
        dir.to_str().unwrap(),
        "--hidden",
        "16",
        "--planes",
        "7,6",
        "--epochs",
        "1",
        "--validation",
        "50",
        "-o",
        model.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, model)
}

#[test]
fn model_of_another_version() {
    let (dir, model) = tiny_model("version");
    let text = std::fs::read_to_string(&model)
        .unwrap()
        .replace("\"version\": 2", "\"version\": 7");
    std::fs::write(&model, text).unwrap();
    let out = cbnn(&[
        "eval",
        model.to_str().unwrap(),
        "--dataset",
        dir.to_str().unwrap(),
    ]);
    assert_fails(
        &out,
        2,
        "m.json: model format version 7 is not supported; this build reads versions 1 to 3",
    );
}

#[test]
fn model_with_inconsistent_sizes() {
    let (dir, model) = tiny_model("sizes");
    let text = std::fs::read_to_string(&model).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Claim the first layer has one input fewer than the features it receives.
    let mut bad = v.clone();
    bad["layers"][0]["inputs"] = serde_json::json!(127);
    std::fs::write(&model, serde_json::to_string(&bad).unwrap()).unwrap();
    let out = cbnn(&[
        "eval",
        model.to_str().unwrap(),
        "--dataset",
        dir.to_str().unwrap(),
    ]);
    assert_fails(&out, 2, "m.json: layer 0 has 127 inputs but receives 128");
    // Drop a threshold.
    let mut bad = v.clone();
    bad["layers"][0]["thresholds"].as_array_mut().unwrap().pop();
    std::fs::write(&model, serde_json::to_string(&bad).unwrap()).unwrap();
    let out = cbnn(&[
        "eval",
        model.to_str().unwrap(),
        "--dataset",
        dir.to_str().unwrap(),
    ]);
    assert_fails(&out, 2, "m.json: layer 0 has 15 thresholds for 16 neurons");
    // A threshold out of range.
    let mut bad = v.clone();
    bad["layers"][0]["thresholds"][3] = serde_json::json!(130);
    std::fs::write(&model, serde_json::to_string(&bad).unwrap()).unwrap();
    let out = cbnn(&[
        "eval",
        model.to_str().unwrap(),
        "--dataset",
        dir.to_str().unwrap(),
    ]);
    assert_fails(
        &out,
        2,
        "m.json: layer 0 neuron 3 has threshold 130, outside 0..=129",
    );
    // Not JSON at all.
    std::fs::write(&model, "{\"format\": \"cbnn-model\", ").unwrap();
    let out = cbnn(&[
        "eval",
        model.to_str().unwrap(),
        "--dataset",
        dir.to_str().unwrap(),
    ]);
    assert_fails(&out, 2, "m.json: not valid JSON");
}

#[test]
fn model_for_other_images() {
    let (_, model) = tiny_model("shape");
    let other = temp_dir("shape-other");
    write_fixture_dataset(&other, 100, 20, 6, false);
    let out = cbnn(&[
        "eval",
        model.to_str().unwrap(),
        "--dataset",
        other.to_str().unwrap(),
    ]);
    assert_fails(&out, 2, "expects 8x8x1 images but dataset");
}

#[test]
fn bad_flags() {
    let dir = fixture("flags");
    let d = dir.to_str().unwrap();
    // `cbnn train --dataset DIR FLAGS -o /tmp/x.json` fails with exit 2 and this sentence.
    let cases: [(&[&str], &str); 3] = [
        (&["--planes", "7,9"], "plane 9 does not exist"),
        (
            &["--hidden", "16,0", "--validation", "50"],
            "every width at least 1",
        ),
        (
            &["--validation", "500"],
            "--validation 500 leaves no training images (the training set has 200)",
        ),
    ];
    for (flags, want) in cases {
        let args = [
            &["train", "--dataset", d][..],
            flags,
            &["-o", "/tmp/x.json"],
        ]
        .concat();
        assert_fails(&cbnn(&args), 2, want);
    }
}

#[test]
fn eval_writes_predictions_and_json() {
    let (dir, model) = tiny_model("evalout");
    let csv = dir.join("p.csv");
    let json = dir.join("e.json");
    let out = cbnn(&[
        "eval",
        model.to_str().unwrap(),
        "--dataset",
        dir.to_str().unwrap(),
        "--predictions",
        csv.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let csv = std::fs::read_to_string(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "index,label,predicted");
    assert_eq!(lines.len(), 51);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let correct = lines[1..]
        .iter()
        .filter(|l| {
            let f: Vec<&str> = l.split(',').collect();
            f[1] == f[2]
        })
        .count();
    assert_eq!(v["correct"].as_u64().unwrap() as usize, correct);
    assert_eq!(v["count"], 50);
}

/// Found by fuzzing the model loader: a float in the provenance (`lr_final`) drifted by one
/// unit in the last place on every load and save until serde_json parsed floats exactly.
#[test]
fn model_floats_survive_load_and_save_unchanged() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-model-float.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let m = cbnn::model::from_json(&path, &text).unwrap();
    let once = cbnn::model::json_text(&m);
    let twice = cbnn::model::json_text(&cbnn::model::from_json(&path, &once).unwrap());
    assert_eq!(once, twice);
}

/// An output that cannot be written is reported before any training, not after it.
#[test]
fn unwritable_output_fails_before_training() {
    let dir = fixture("unwritable");
    let out = cbnn(&[
        "train",
        "--dataset",
        dir.to_str().unwrap(),
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--validation",
        "50",
        "-o",
        "/proc/cbnn/m.json",
    ]);
    let err = assert_fails(&out, 2, "/proc/cbnn");
    assert!(!err.contains("epoch"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("epoch"));
}
