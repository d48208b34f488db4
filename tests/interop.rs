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

/// Runs cbnn with `args` under a 4 GiB address-space limit (so that a regression reading
/// without bound fails the test instead of filling the machine) and a 60 s time limit; `None`
/// when it had to be killed.
fn cbnn_limited(args: &[&str]) -> Option<std::process::Output> {
    use std::process::Stdio;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4194304 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_cbnn"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some(child.wait_with_output().unwrap())
}

/// Hostile ONNX files, one of each class the importer once failed on (a hang, a panic, an
/// abort, a silent import, a model the loader refuses, a read without bound), each give exit
/// code 2 and one sentence naming the file (or flag) and the node or tensor; nothing is
/// written. Every case is run, and the failures are listed together.
#[test]
fn hostile_graphs_get_one_sentence() {
    use onnx_protobuf::{Message, ModelProto, NodeProto};
    let dir = temp_dir("interop-hostile");
    // 16 features (plane 7 of 16x1x1 images), hidden 5, 3 classes. cbnn's QONNX nodes are
    // BipolarQuant_0 (features), _1 (w0), MatMul_2, Add_3, BipolarQuant_4, BipolarQuant_5 (w1),
    // MatMul_6, Add_7 (n1), Mul_8 (half): the scores.
    let model = random_model(7, 16, &[7], &[5], 3);
    let bytes = cbnn::interop::onnx::export(&model, cbnn::interop::onnx::Format::Qonnx, 1)
        .expect("exports");
    let valid = ModelProto::parse_from_bytes(&bytes).unwrap();
    let write = |name: &str, edit: &dyn Fn(&mut ModelProto)| -> PathBuf {
        let mut m = valid.clone();
        edit(&mut m);
        let path = dir.join(name);
        std::fs::write(&path, m.write_to_bytes().unwrap()).unwrap();
        path
    };
    fn edit_node(m: &mut ModelProto, name: &str, f: &dyn Fn(&mut NodeProto)) {
        let g = m.graph.as_mut().unwrap();
        f(g.node.iter_mut().find(|n| n.name == name).unwrap())
    }
    let set_tensor = |m: &mut ModelProto, name: &str, dims: &[i64], data: &[f32]| {
        let g = m.graph.as_mut().unwrap();
        let t = g.initializer.iter_mut().find(|t| t.name == name).unwrap();
        t.dims = dims.to_vec();
        t.float_data = data.to_vec();
    };
    let cycle = write("cycle.onnx", &|m| {
        // The walk from the input went round i1 and i2 forever (i2 writes the graph's input).
        let g = m.graph.as_mut().unwrap();
        g.node[0].input[0] = "elsewhere".into();
        for (name, from, to) in [("i1", "features", "b"), ("i2", "b", "features")] {
            let mut n = NodeProto::new();
            n.op_type = "Identity".into();
            n.name = name.into();
            n.input = vec![from.into()];
            n.output = vec![to.into()];
            g.node.push(n);
        }
    });
    let no_output = write("no-output.onnx", &|m| {
        edit_node(m, "Mul_8", &|n| n.output.clear())
    });
    let no_input = write("no-input.onnx", &|m| {
        edit_node(m, "BipolarQuant_5", &|n| n.input.clear())
    });
    let no_classes = write("no-classes.onnx", &|m| set_tensor(m, "w1", &[5, 0], &[]));
    let absurd = write("absurd.onnx", &|m| set_tensor(m, "w1", &[0, 1 << 40], &[]));
    let infinite = write("infinite.onnx", &|m| {
        set_tensor(m, "n1", &[], &[f32::INFINITY])
    });
    let fine = write("fine.onnx", &|_| {});
    let huge = dir.join("huge.onnx");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len((1 << 30) + 1)
        .unwrap();
    // 30 MB of empty attributes of one node (graph, field 7 > node, 1 > attribute, 5): the
    // parser would expand them to about 4.8 GB.
    let empty = dir.join("empty-messages.onnx");
    let attributes = [0x2a, 0x00].repeat(15_000_000);
    let mut node = vec![0x0a, 0x80, 0x87, 0xa7, 0x0e]; // field 1, 30,000,000 bytes
    node.extend_from_slice(&attributes);
    let mut graph = vec![0x3a, 0x85, 0x87, 0xa7, 0x0e]; // field 7, 30,000,005 bytes
    graph.extend_from_slice(&node);
    std::fs::write(&empty, graph).unwrap();
    let out = dir.join("m.json");
    let o = out.to_str().unwrap();
    let path = |p: &PathBuf| p.to_str().unwrap().to_string();
    let cases: Vec<(&str, String, Vec<&str>, &str)> = vec![
        (
            "a cycle",
            path(&cycle),
            vec![],
            "node i1 (Identity): its input features depends on its own output (a cycle); ONNX \
             graphs are acyclic",
        ),
        (
            "a node with no output",
            path(&no_output),
            vec![],
            "node Mul_8 (Mul) has no output; every ONNX node has at least one",
        ),
        (
            "a node with no input",
            path(&no_input),
            vec![],
            "node BipolarQuant_5 (BipolarQuant): it has 0 inputs; BipolarQuant takes 2",
        ),
        (
            "an output layer of no classes",
            path(&no_classes),
            vec![],
            "node MatMul_6 (MatMul): its weights give 0 outputs for 5 inputs; a layer has \
             between 1 and 67108864 of each",
        ),
        (
            "a tensor of dimensions [0, 2^40]",
            path(&absurd),
            vec![],
            "tensor w1 has dimensions [0, 1099511627776]; each dimension and their product \
             must be between 0 and 268435456",
        ),
        (
            "an infinite output bias for every class",
            path(&infinite),
            vec![],
            "tensor n1 holds inf at element 0; cbnn imports finite float32 constants only",
        ),
        (
            "an --input whose size wraps to the graph's features",
            path(&fine),
            vec!["--planes", "7", "--input", "16x1152921504606846977x1"],
            "--input \"16x1152921504606846977x1\" gives more than 67108864 features, the most a \
             model may have",
        ),
        (
            "a file of more than 1 GiB",
            path(&huge),
            vec![],
            "holds more than 1 GiB, the most cbnn reads of an ONNX file",
        ),
        (
            "a file of empty messages",
            path(&empty),
            vec![],
            "the graph's protobuf messages would take up to 7.2 GiB of memory to read (the file \
             holds many small or empty messages), more than the 2 GiB cbnn lets an ONNX graph \
             take",
        ),
        (
            "an endless file",
            "/dev/zero".to_string(),
            vec![],
            "holds more than 1 GiB, the most cbnn reads of an ONNX file",
        ),
    ];
    let mut failures = Vec::new();
    for (what, file, extra, needle) in &cases {
        let mut args = vec!["import", file.as_str(), "-o", o];
        args.extend(extra);
        let run = cbnn_limited(&args);
        let verdict = match &run {
            None => "was killed after 60 s".to_string(),
            Some(r) => {
                let stderr = String::from_utf8_lossy(&r.stderr).trim_end().to_string();
                // The flag's message names the flag, every other one the file.
                let names = extra.is_empty();
                if r.status.code() != Some(2) {
                    format!("exit {:?}: {stderr}", r.status.code())
                } else if stderr.lines().count() != 1 || stderr.contains("panicked") {
                    format!("not one line: {stderr}")
                } else if !stderr.contains(needle) {
                    format!("not {needle:?}: {stderr}")
                } else if names && !stderr.contains(&format!("error: {file}: ")) {
                    format!("does not name {file}: {stderr}")
                } else if out.exists() {
                    "wrote the model".to_string()
                } else {
                    continue;
                }
            }
        };
        failures.push(format!("{what}: {verdict}"));
        let _ = std::fs::remove_file(&out);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // The untouched graph imports.
    cbnn_ok(&["import", fine.to_str().unwrap(), "-o", o]);
    assert!(out.is_file());
}
