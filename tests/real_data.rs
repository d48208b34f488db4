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
    let float = train::predictions(&trained.net, &te.x);
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

/// Writes the first `train` and `test` images of Fashion-MNIST, downsampled by area averaging
/// to `side` x `side`, as an IDX dataset in `dir`.
fn small_fashion(dir: &std::path::Path, side: usize, train: usize, test: usize) {
    let ds = fashion();
    std::fs::create_dir_all(dir).unwrap();
    for (set, n, stem) in [(&ds.train, train, "train"), (&ds.test, test, "t10k")] {
        let (h, w) = (set.images.height, set.images.width);
        let mut px = Vec::with_capacity(n * side * side);
        for i in 0..n {
            let img = &set.images.pixels[i * h * w..(i + 1) * h * w];
            for r in 0..side {
                let (r0, r1) = (r * h / side, (r + 1) * h / side);
                for c in 0..side {
                    let (c0, c1) = (c * w / side, (c + 1) * w / side);
                    let sum: usize = (r0..r1)
                        .flat_map(|y| (c0..c1).map(move |x| img[y * w + x] as usize))
                        .sum();
                    let area = (r1 - r0) * (c1 - c0);
                    px.push(((sum + area / 2) / area) as u8);
                }
            }
        }
        let images = cbnn::data::idx::encode(&[n, side, side], &px);
        let labels = cbnn::data::idx::encode(&[n], &set.labels[..n]);
        std::fs::write(dir.join(format!("{stem}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(dir.join(format!("{stem}-labels-idx1-ubyte")), labels).unwrap();
    }
}

/// Defaults that fit the data: on 1400 real 8x8 images the default validation split is a
/// tenth (140 images; a fixed 5000 was an error) and the default augmentation is off (a
/// one-pixel shift costs points at this size); both are recorded in the model.
#[test]
fn defaults_adapt_to_a_small_dataset_of_small_images() {
    let dir = temp_dir("real-small");
    let data = dir.join("fashion-8");
    small_fashion(&data, 8, 1400, 500);
    let model = dir.join("m.json");
    cbnn_ok(&[
        "train",
        "--dataset",
        data.to_str().unwrap(),
        "--hidden",
        "64",
        "--epochs",
        "3",
        "-o",
        model.to_str().unwrap(),
    ]);
    let m = json_file(&model);
    let p = &m["provenance"];
    assert_eq!(p["val_images"], 140, "{p}");
    assert_eq!(p["train_images"], 1260, "{p}");
    assert_eq!(p["hyper"]["augment"], 0, "{p}");
    assert!(p["test_accuracy"].as_f64().unwrap() > 0.5, "{p}");
    // 28x28 images keep the one-pixel shift.
    let full = dir.join("f.json");
    cbnn_ok(&[
        "train",
        "--dataset",
        "fashion-mnist",
        "--limit",
        "500",
        "--hidden",
        "16",
        "--epochs",
        "1",
        "-o",
        full.to_str().unwrap(),
    ]);
    let p = &json_file(&full)["provenance"];
    assert_eq!(p["hyper"]["augment"], 1, "{p}");
    assert_eq!(p["val_images"], 5000, "{p}");
}
