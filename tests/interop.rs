//! `cbnn export`: the QONNX and FINN-ONNX graphs of a small trained MLP, executed by qonnx's
//! own executor (qonnx and onnxruntime from `bash scripts/setup-venv.sh`, which the test
//! command runs), give cbnn's class scores on every test image, and stop doing so when one
//! weight bit of the model is flipped, for MLPs and for convnets; cbnn's own QONNX graph of an
//! MLP imports back to the same model; models the export cannot take are refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
    assert!(
        p.is_file(),
        "the virtual environment is missing: run `bash scripts/setup-venv.sh`"
    );
    p
}

/// Runs scripts/qonnx_check.py; returns (exit code, its output).
fn qonnx_check(onnx: &Path, data: &Path, predictions: &Path) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/qonnx_check.py");
    let out = Command::new(python())
        .arg(script)
        .args([onnx, data, predictions])
        .output()
        .expect("python runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), log)
}

/// Flips the first bit of the output layer's first weight word in a model file.
fn flip_output_weight(model: &Path) {
    let mut m = json_file(model);
    let layers = m["layers"].as_array_mut().unwrap();
    let w = &mut layers.last_mut().unwrap()["weights"][0];
    let word = w.as_str().unwrap().to_string();
    let first = u8::from_str_radix(&word[..1], 16).unwrap() ^ 1;
    *w = format!("{first:x}{}", &word[1..]).into();
    std::fs::write(model, serde_json::to_vec(&m).unwrap()).unwrap();
}

#[test]
fn exported_graphs_give_cbnns_scores_in_qonnx_and_not_after_a_flipped_weight_bit() {
    let dir = temp_dir("interop-export");
    let data = dir.join("data");
    write_fixture_dataset(&data, 400, 150, 10, true);
    let model = dir.join("m.json");
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    cbnn_ok(&[
        "train",
        "--dataset",
        d,
        "--hidden",
        "24,13",
        "--planes",
        "7,5,2",
        "--epochs",
        "2",
        "--validation",
        "50",
        "-o",
        m,
    ]);
    let predictions = dir.join("p.csv");
    let p = predictions.to_str().unwrap();
    cbnn_ok(&["eval", m, "--dataset", d, "--predictions", p, "--scores"]);
    for (format, batch) in [("qonnx", "64"), ("finn-onnx", "1")] {
        let onnx = dir.join(format!("{format}.onnx"));
        let o = onnx.to_str().unwrap();
        cbnn_ok(&["export", m, "--format", format, "--batch", batch, "-o", o]);
        let (code, log) = qonnx_check(&onnx, &data, &predictions);
        assert_eq!(code, 0, "{format}: {log}");
        assert!(log.contains("150 images, 0 differ"), "{format}: {log}");
    }
    // cbnn's own QONNX graph imports back to the same layers, planes and input.
    let back = dir.join("back.json");
    let qonnx = dir.join("qonnx.onnx");
    cbnn_ok(&[
        "import",
        qonnx.to_str().unwrap(),
        "-o",
        back.to_str().unwrap(),
    ]);
    let (mut ours, mut theirs) = (json_file(&model), json_file(&back));
    ours.as_object_mut().unwrap().remove("provenance");
    theirs.as_object_mut().unwrap().remove("provenance");
    assert_eq!(ours, theirs);
    let flipped = dir.join("flipped.json");
    std::fs::copy(&model, &flipped).unwrap();
    flip_output_weight(&flipped);
    for format in ["qonnx", "finn-onnx"] {
        let onnx = dir.join(format!("flipped-{format}.onnx"));
        let o = onnx.to_str().unwrap();
        cbnn_ok(&[
            "export",
            flipped.to_str().unwrap(),
            "--format",
            format,
            "-o",
            o,
        ]);
        let (code, log) = qonnx_check(&onnx, &data, &predictions);
        assert_eq!(code, 1, "{format}: {log}");
        assert!(log.contains("150 images, 150 differ"), "{format}: {log}");
    }
}

/// Flips bit 0 of the first weight row of layer `layer` in a model file.
fn flip_weight(model: &Path, layer: usize) {
    let mut m = json_file(model);
    let w = &mut m["layers"][layer]["weights"][0];
    let word = w.as_str().unwrap().to_string();
    let (head, last) = word.split_at(word.len() - 1);
    let last = u8::from_str_radix(last, 16).unwrap() ^ 1;
    *w = format!("{head}{last:x}").into();
    std::fs::write(model, serde_json::to_vec(&m).unwrap()).unwrap();
}

#[test]
fn exported_convnets_give_cbnns_scores_in_qonnx_and_not_after_a_flipped_weight_bit() {
    let dir = temp_dir("interop-conv");
    let data = dir.join("data");
    // 10x10 images: "same" padding on 10x10, a pool, a "valid" 3x3 convolution on 5x5 (3x3),
    // a pool that drops the last row and column (1x1), channels not multiples of 8.
    write_fixture_dataset(&data, 400, 150, 10, true);
    let model = dir.join("conv.json");
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    cbnn_ok(&[
        "train",
        "--dataset",
        d,
        "--arch",
        "c5,p2,c7v,p2,d9",
        "--planes",
        "7,4",
        "--epochs",
        "2",
        "--validation",
        "50",
        "-o",
        m,
    ]);
    let predictions = dir.join("p.csv");
    let p = predictions.to_str().unwrap();
    cbnn_ok(&["eval", m, "--dataset", d, "--predictions", p, "--scores"]);
    for (format, batch) in [("qonnx", "64"), ("qonnx", "1"), ("finn-onnx", "1")] {
        let onnx = dir.join(format!("{format}-{batch}.onnx"));
        let o = onnx.to_str().unwrap();
        cbnn_ok(&["export", m, "--format", format, "--batch", batch, "-o", o]);
        let (code, log) = qonnx_check(&onnx, &data, &predictions);
        assert_eq!(code, 0, "{format}: {log}");
        assert!(log.contains("150 images, 0 differ"), "{format}: {log}");
    }
    // A flipped bit of the first convolution's first kernel is seen by both dialects (the
    // fixture's images have bits everywhere, so some image's scores move).
    let flipped = dir.join("flipped.json");
    std::fs::copy(&model, &flipped).unwrap();
    flip_weight(&flipped, 0);
    let f = flipped.to_str().unwrap();
    let mutated = dir.join("mutated.csv");
    cbnn_ok(&[
        "eval",
        f,
        "--dataset",
        d,
        "--predictions",
        mutated.to_str().unwrap(),
        "--scores",
    ]);
    assert_ne!(
        std::fs::read(&mutated).unwrap(),
        std::fs::read(&predictions).unwrap(),
        "the flipped bit changes no score: the check below would prove nothing"
    );
    for format in ["qonnx", "finn-onnx"] {
        let onnx = dir.join(format!("flipped-{format}.onnx"));
        let o = onnx.to_str().unwrap();
        cbnn_ok(&["export", f, "--format", format, "-o", o]);
        let (code, log) = qonnx_check(&onnx, &data, &predictions);
        assert_eq!(code, 1, "{format}: {log}");
        let (code, log) = qonnx_check(&onnx, &data, &mutated);
        assert_eq!(
            code, 0,
            "{format} against the flipped model's own scores: {log}"
        );
    }
}

#[test]
fn export_refuses_layers_it_cannot_express_and_bad_settings() {
    let dir = temp_dir("interop-refuse");
    let data = dir.join("data");
    write_fixture_dataset(&data, 120, 20, 8, false);
    let d = data.to_str().unwrap();
    let train = |arch: &str, out: &Path| {
        cbnn_ok(&[
            "train",
            "--dataset",
            d,
            "--arch",
            arch,
            "--planes",
            "7",
            "--epochs",
            "1",
            "--validation",
            "20",
            "-o",
            out.to_str().unwrap(),
        ]);
    };
    let lut = dir.join("lut.json");
    train("l20f3", &lut);
    let conv = dir.join("conv.json");
    train("c4,p2,d8", &conv);
    let out = dir.join("x.onnx");
    let o = out.to_str().unwrap();
    assert_fails(
        &cbnn(&[
            "export",
            lut.to_str().unwrap(),
            "--format",
            "qonnx",
            "-o",
            o,
        ]),
        2,
        "layer L0 is a lut layer: truth tables have no operator in the qonnx dialect",
    );
    let m = conv.to_str().unwrap();
    assert_fails(
        &cbnn(&[
            "export",
            m,
            "--format",
            "finn-onnx",
            "--batch",
            "8",
            "-o",
            o,
        ]),
        2,
        "a finn-onnx graph with convolutions takes --batch 1, not 8",
    );
    assert!(!out.exists());
    assert_fails(
        &cbnn(&["export", m, "--batch", "0", "-o", o]),
        2,
        "--batch 0 must be between 1",
    );
    let unknown = cbnn(&["export", m, "--format", "onnx", "-o", o]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("possible values: qonnx, finn-onnx"));
    assert_fails(
        &cbnn(&["export", m, "-o", dir.to_str().unwrap()]),
        2,
        "is a directory",
    );
    // cbnn's own convolutional QONNX graph is not imported (import takes binary MLPs).
    cbnn_ok(&["export", m, "--format", "qonnx", "-o", o]);
    assert_fails(
        &cbnn(&["import", o, "-o", dir.join("back.json").to_str().unwrap()]),
        2,
        "cbnn does not import Reshape nodes",
    );
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/qonnx")
        .join(name)
}

/// A Brevitas-trained binary MLP (scripts/brevitas_mlp.py on 2000 Fashion-MNIST images; per
/// output weight scales, biases, batch norm) imports to integer scores equal to the Brevitas
/// model's on the first 200 test images; the variants cbnn cannot represent are refused.
#[test]
fn a_brevitas_mlp_imports_exactly_and_what_cannot_be_represented_is_refused() {
    let Some(data) = real_dataset("fashion-mnist") else {
        panic!("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
    };
    let dir = temp_dir("interop-import");
    let model = dir.join("m.json");
    let m = model.to_str().unwrap();
    let onnx = fixture("brevitas-none.onnx");
    cbnn_ok(&["import", onnx.to_str().unwrap(), "-o", m]);
    let p = dir.join("p.csv");
    let d = data.to_str().unwrap();
    cbnn_ok(&[
        "eval",
        m,
        "--dataset",
        d,
        "--predictions",
        p.to_str().unwrap(),
        "--scores",
    ]);
    let ours = std::fs::read_to_string(&p).unwrap();
    let theirs = std::fs::read_to_string(fixture("brevitas-none-scores.csv")).unwrap();
    let scores = |text: &str| -> Vec<String> {
        text.lines()
            .skip(1)
            .take(200)
            .map(|l| l.splitn(4, ',').nth(3).unwrap().to_string())
            .collect()
    };
    assert_eq!(scores(&theirs).len(), 200);
    assert_eq!(scores(&ours), scores(&theirs));
    for (name, needle) in [
        ("brevitas-output-bias.onnx", "a bias on the output layer"),
        ("brevitas-act2.onnx", "a multi-bit Quant of 2 bits"),
        ("brevitas-relu.onnx", "cbnn does not import Relu nodes"),
    ] {
        let f = fixture(name);
        assert_fails(&cbnn(&["import", f.to_str().unwrap(), "-o", m]), 2, needle);
    }
    let garbage = dir.join("garbage.onnx");
    std::fs::write(&garbage, b"not a model").unwrap();
    assert_fails(
        &cbnn(&["import", garbage.to_str().unwrap(), "-o", m]),
        2,
        "garbage.onnx",
    );
}
