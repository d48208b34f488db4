//! Tests on real data: Debian's Fashion-MNIST (installed by the test command) and, where this
//! machine has it, the real MNIST. Subsets keep them fast; full-size numbers are benchmarks.

mod common;
use common::*;

use cbnn::bitslice::{self, PlaneSet};
use cbnn::data::Dataset;
use cbnn::train::{self, DataMeta, SlicedSet, TrainConfig};

fn fashion() -> Dataset {
    Dataset::open("fashion-mnist", None).unwrap_or_else(|e| {
        panic!("{e}\nthe test command installs it: apt-get install -y dataset-fashion-mnist")
    })
}

#[test]
fn fashion_mnist_info_matches_the_real_dataset() {
    let ds = fashion();
    let info = ds.info();
    assert_eq!(
        (info.height, info.width, info.channels, info.classes),
        (28, 28, 1, 10)
    );
    assert_eq!((info.train_count, info.test_count), (60000, 10000));
    assert!(info.train_class_counts.iter().all(|&c| c == 6000));
    assert!(info.test_class_counts.iter().all(|&c| c == 1000));
}

#[test]
fn training_on_a_real_subset_is_far_above_chance() {
    let dir = temp_dir("real-train");
    let model = dir.join("m.json");
    let json = dir.join("r.json");
    cbnn_ok(&[
        "train",
        "--dataset",
        "fashion-mnist",
        "--limit",
        "6000",
        "--epochs",
        "3",
        "--hidden",
        "128,128",
        "-o",
        model.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let r: serde_json::Value = json_file(&json);
    let test = r["test_accuracy"].as_f64().unwrap();
    assert!(
        test > 0.75,
        "test accuracy {test} on 10 classes (chance 0.10)"
    );
    assert_eq!(r["export_check"]["agree"], r["export_check"]["images"]);
    // eval of the written model reproduces the accuracy train reported.
    let out = cbnn(&[
        "eval",
        model.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let e: serde_json::Value = json_file(&json);
    assert_eq!(e["accuracy"].as_f64().unwrap(), test);
}

/// The full-precision counterpart learns real Fashion-MNIST, is deterministic, and `eval` of
/// its file reproduces the test accuracy `train --float` reported.
#[test]
fn float_counterpart_learns_a_real_subset() {
    let dir = temp_dir("real-float");
    let (m1, m2, json) = (dir.join("f1.json"), dir.join("f2.json"), dir.join("r.json"));
    let train = |out: &std::path::Path, threads: &str| {
        cbnn_ok(&[
            "--threads",
            threads,
            "train",
            "--float",
            "--dataset",
            "fashion-mnist",
            "--limit",
            "6000",
            "--epochs",
            "3",
            "--hidden",
            "128,128",
            "-o",
            out.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ]);
    };
    train(&m1, "1");
    let test = json_file(&json)["test_accuracy"].as_f64().unwrap();
    assert!(
        test > 0.75,
        "test accuracy {test} on 10 classes (chance 0.10)"
    );
    train(&m2, "2");
    assert!(
        std::fs::read(&m1).unwrap() == std::fs::read(&m2).unwrap(),
        "not deterministic"
    );
    cbnn_ok(&[
        "eval",
        m1.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(json_file(&json)["accuracy"].as_f64().unwrap(), test);
}

/// The exported integer model and the float graph in inference mode predict the same class on
/// every test image (MNIST when this machine has it, else Fashion-MNIST).
#[test]
fn export_agrees_with_float_graph_on_every_test_image() {
    let (name, ds) = match real_dataset("mnist") {
        Some(dir) => ("mnist", Dataset::load_dir("mnist", &dir).unwrap()),
        None => ("fashion-mnist", fashion()),
    };
    let planes = PlaneSet::all();
    let split = ds.split(Some(5000), Some(8000)).unwrap();
    let slice = |s: &cbnn::data::LabeledSet| SlicedSet {
        x: bitslice::slice(&s.images, &planes),
        y: s.labels.clone(),
        images: None,
    };
    let (tr, va, te) = (slice(&split.train), slice(&split.val), slice(&split.test));
    let meta = DataMeta {
        dataset: name.into(),
        input: cbnn::model::InputShape {
            height: 28,
            width: 28,
            channels: 1,
        },
        classes: 10,
        planes: planes.clone(),
    };
    let cfg = TrainConfig {
        hidden: vec![256, 256, 256],
        epochs: 2,
        augment: 0,
        ..TrainConfig::default()
    };
    let trained = train::train(&cfg, &meta, &tr, &va).unwrap();
    let float = train::float_predictions(&trained.net, &te.x);
    let int = cbnn::reference::Executor::new(&trained.model).classify(&te.x);
    let agree = float.iter().zip(&int).filter(|(a, b)| a == b).count();
    eprintln!(
        "{name}: integer model agrees with the float graph on {agree}/{} test images",
        int.len()
    );
    assert_eq!(int.len(), 10000);
    assert_eq!(agree, int.len(), "the export must be exact");

    // The fast executor, image by image and in bit-sliced batches, gives the same classes.
    use cbnn::reference::fast::{FastModel, FastScratch};
    let fast = FastModel::new(&trained.model);
    let pixels = &split.test.images.pixels;
    let d = fast.pixels();
    for batch in [1, 1000] {
        let mut out = vec![0; int.len()];
        let mut s = FastScratch::default();
        for (px, o) in pixels.chunks(batch * d).zip(out.chunks_mut(batch)) {
            fast.classify_into(px, &mut s, o);
        }
        assert!(
            out == int,
            "fast executor, batch {batch}, differs from the reference"
        );
    }
}

/// Same seed and data give a byte-identical model, whatever the thread count.
#[test]
fn same_seed_gives_byte_identical_models() {
    let dir = temp_dir("determinism");
    let run = |threads: &str, out: &str| {
        let path = dir.join(out);
        let o = cbnn(&[
            "--threads",
            threads,
            "train",
            "--dataset",
            "fashion-mnist",
            "--limit",
            "2000",
            "--epochs",
            "2",
            "--hidden",
            "96,64",
            "--planes",
            "7,6,5",
            "--augment",
            "1",
            "--seed",
            "9",
            "-o",
            path.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(path).unwrap()
    };
    let a = run("2", "a.json");
    let b = run("2", "b.json");
    let c = run("1", "c.json");
    assert!(a == b, "two runs with the same seed differ");
    assert!(a == c, "one and two threads differ");
}
