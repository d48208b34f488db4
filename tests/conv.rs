//! Convolutional models end to end on a fixture and on real data: `train --arch`, the export
//! check, `eval`, `sensitivity`, `prune`, `rtl` and `sim`.

mod common;

use common::*;

/// A convolutional network trains on a small synthetic dataset, its export check holds, every
/// command that runs the reference model runs it, and its accelerator co-simulates exactly.
#[test]
fn a_conv_model_trains_evaluates_prunes_and_its_accelerator_cosimulates() {
    let dir = temp_dir("conv-fixture");
    write_fixture_dataset(&dir, 1300, 200, 12, false);
    let model = dir.join("conv.json");
    let json = dir.join("train.json");
    let out = cbnn_ok(&[
        "train",
        "--dataset",
        dir.to_str().unwrap(),
        "--arch",
        "c6,p2,c5k3v,d12",
        "--planes",
        "7,6,5",
        "--epochs",
        "8",
        "--batch",
        "50",
        "--validation",
        "300",
        "-o",
        model.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("layers       432 -> c6 -> p2 -> c5v -> d12 -> 10"),
        "{stdout}"
    );
    let (report, _) = checked_training(&model, &json, &dir);
    assert_eq!(report["arch"], "c6,p2,c5v,d12");
    assert!(report["test_accuracy"].as_f64().unwrap() > 0.5, "{report}");
    let text = std::fs::read_to_string(&model).unwrap();
    assert!(text.contains("\"kind\": \"conv\"") && text.contains("\"kind\": \"maxpool\""));

    cbnn_ok(&[
        "sensitivity",
        model.to_str().unwrap(),
        "--dataset",
        dir.to_str().unwrap(),
        "--validation",
        "100",
        "--seeds",
        "1",
    ]);

    // The search, its candidates starting from the baseline's weights (the default for a
    // convnet): in this process, in `cbnn retrain --warm` processes (`--jobs 2`, the same
    // model byte for byte), and from scratch.
    let prune = |name: &str, extra: &[&str]| {
        let mut flags = vec!["--validation", "100", "--epochs", "1", "--max-drop", "100"];
        flags.extend_from_slice(extra);
        let (_, out, report) = prune_into(&model, dir.to_str().unwrap(), &dir, name, &flags);
        (out, json_file(&report))
    };
    let (compact, pr) = prune("compact", &[]);
    assert_eq!(pr["config"]["warm"], true, "{pr}");
    let (two, _) = prune("compact-jobs2", &["--jobs", "2"]);
    assert!(std::fs::read(&compact).unwrap() == std::fs::read(&two).unwrap());
    let (cold, cold_report) = prune("compact-cold", &["--from-scratch"]);
    assert_eq!(cold_report["config"]["warm"], false, "{cold_report}");
    assert!(std::fs::read(&compact).unwrap() != std::fs::read(&cold).unwrap());
    let chosen = &pr["chosen"];
    assert!(
        chosen["size_bits"].as_u64().unwrap() < pr["baseline"]["size_bits"].as_u64().unwrap(),
        "{pr}"
    );
    // Candidates of the widths phase scale the conv channels too.
    assert!(
        pr["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["phase"] == "widths" && c["arch"].as_str().unwrap().starts_with("c")),
        "{pr}"
    );

    // The accelerator: a streaming pipeline (sliding windows, folded units, max-pool, the
    // gathering of the dense layer's input), co-simulated image by image and cycle by cycle
    // against the reference model and the cycle model, free-running and stalled.
    let design = dir.join("design");
    cbnn_ok(&[
        "rtl",
        model.to_str().unwrap(),
        "-o",
        design.to_str().unwrap(),
        "--fold",
        "L0:2,7;L2:5,13,1",
    ]);
    // The automatic folding: each layer's cheapest folding that meets the target, and the
    // cycle model's word that the pipeline as a whole does.
    let auto = dir.join("auto");
    cbnn_ok(&[
        "rtl",
        model.to_str().unwrap(),
        "-o",
        auto.to_str().unwrap(),
        "--fold",
        "auto",
        "--target-cycles",
        "1500",
    ]);
    let manifest = json_file(&auto.join("design.json"));
    assert!(
        manifest["initiation_interval"].as_u64().unwrap() <= 1500,
        "{manifest}"
    );
    // Input beats of 5 pixels (the last beat of an image is partly padding), split in front
    // of the first window unit.
    let wide = dir.join("wide");
    cbnn_ok(&[
        "rtl",
        model.to_str().unwrap(),
        "-o",
        wide.to_str().unwrap(),
        "--pixels-per-beat",
        "5",
    ]);
    assert_eq!(
        json_file(&wide.join("design.json"))["input"]["bits_per_beat"],
        15
    );
    for (design, stall) in [
        (&design, None),
        (&design, Some("7")),
        (&auto, Some("8")),
        (&wide, None),
        (&wide, Some("9")),
    ] {
        let stdout = sim_matches(design, &dir, stall, 200);
        if stall.is_none() {
            let ii = json_file(&design.join("design.json"))["initiation_interval"].clone();
            assert!(
                stdout.contains(&format!("initiation interval {ii} cycles (simulated")),
                "{stdout}"
            );
        }
    }
    // A target no folding meets is one sentence, and nothing is written.
    let other = dir.join("other");
    let out = cbnn(&[
        "rtl",
        model.to_str().unwrap(),
        "-o",
        other.to_str().unwrap(),
        "--fold",
        "auto",
        "--target-cycles",
        "100",
    ]);
    assert_fails(
        &out,
        2,
        "--target-cycles 100: even fully parallel, layer L0 needs 288 cycles per image",
    );
    assert!(!other.exists());

    // The bench runs conv models on the fast layer engine (after checking it against the
    // reference executor on every test image) and trains their full-precision counterpart,
    // a float convnet of the same architecture.
    let json = dir.join("bench.json");
    let out = cbnn_ok(&[
        "bench",
        "--dataset",
        dir.to_str().unwrap(),
        "--baseline",
        model.to_str().unwrap(),
        "--compact",
        compact.to_str().unwrap(),
        "--work",
        dir.join("work").to_str().unwrap(),
        "--repeats",
        "1",
        "--batch",
        "100",
        "--train-images",
        "200",
        "--sim-images",
        "5",
        "--validation",
        "100",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("training the convnet c6,p2,c5v,d12"),
        "{stderr}"
    );
    let r = json_file(&json);
    let models = r["models"].as_array().unwrap();
    assert_eq!(models[0]["arch"], "c6,p2,c5v,d12", "{r}");
    for m in &models[1..] {
        assert_eq!(m["engine"], "fast-layers", "{r}");
    }
    assert_eq!(r["training_images_per_second"].as_array().unwrap().len(), 2);
    // Both accelerators are co-simulated too.
    require_verilator();
    assert_eq!(r["simulation"].as_array().unwrap().len(), 2, "{r}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A bad architecture is one sentence naming the flag and the token.
#[test]
fn a_bad_architecture_names_the_flag_and_the_token() {
    let dir = temp_dir("conv-arch");
    write_fixture_dataset(&dir, 50, 20, 8, false);
    let m = dir.join("m.json");
    let run = |arch: &str| {
        cbnn(&[
            "train",
            "--dataset",
            dir.to_str().unwrap(),
            "--arch",
            arch,
            "-o",
            m.to_str().unwrap(),
        ])
    };
    assert_fails(&run("c8,q2"), 2, "--arch \"c8,q2\": 'q2' is not a layer");
    assert_fails(
        &run("c8k9v"),
        2,
        "a 9x9 window does not fit the 8x8 positions it receives",
    );
    assert_fails(
        &run("p2,p2,p2,p2"),
        2,
        "a 2x2 pool does not fit the 1x1 positions",
    );
    assert!(!m.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Convolutional training is deterministic for a seed, whatever the thread count.
#[test]
fn conv_training_gives_the_same_model_on_one_thread_and_on_four() {
    let dir = temp_dir("conv-threads");
    write_fixture_dataset(&dir, 600, 50, 12, false);
    let run = |threads: &str, out: &std::path::Path| {
        let json = out.with_extension("train.json");
        cbnn_ok(&[
            "--threads",
            threads,
            "train",
            "--json",
            json.to_str().unwrap(),
            "--dataset",
            dir.to_str().unwrap(),
            "--arch",
            "c7,p2,c5k3v,d9",
            "--epochs",
            "2",
            "--batch",
            "60",
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
    // The losses too, to the last bit: every float sum is the same.
    let losses = |p: &std::path::Path| -> Vec<f64> {
        json_file(&p.with_extension("train.json"))["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["loss"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(losses(&a), losses(&b));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--fold auto --target-cycles` is monotonic: a target is met whenever a smaller one is, and
/// every design it gives meets its target (the cycle model's interval). On a 3x3 "same"
/// convolution of 8 channels over 10x10 pixels, folding each layer by its cycles per image
/// met 400 and refused 600 (the convolution folded to 600 cycles of windows took 617, its
/// window walk included); folded again for smaller bounds when the pipeline misses the
/// target, it meets every target from its fastest on.
#[test]
fn an_automatic_folding_target_is_met_whenever_a_smaller_one_is() {
    use cbnn::jobs::rtl::{choose_folding, Folding};
    let models = [
        random_conv_model(
            500,
            (10, 10),
            &[7],
            &[Op::Conv(8, 3, true), Op::Pool(2), Op::Dense(16)],
            10,
        ),
        two_conv_model(),
        random_conv_model(502, (8, 8), &[7], &[Op::Conv(6, 5, true), Op::Dense(9)], 3),
    ];
    for (i, model) in models.iter().enumerate() {
        let mut met_below = None;
        for target in (100..=1200).step_by(7).chain([600]) {
            let auto = Folding::Auto {
                target_cycles: target,
            };
            match choose_folding(model, &auto, 0, None) {
                Ok((fold, ppb)) => {
                    let timing = cbnn::plan::timing(model, &fold, ppb);
                    let interval = cbnn::reference::cycle::latency_and_interval(&timing).1;
                    assert!(interval <= target as u64, "model {i}, target {target}");
                    met_below.get_or_insert(target);
                }
                Err(e) => assert!(
                    met_below.is_none_or(|m| m > target),
                    "model {i}: target {target} refused ({e}) although {met_below:?} was met"
                ),
            }
        }
        assert!(met_below.is_some_and(|m| m < 600), "model {i}");
    }
}

/// A convolution's interval alone is its window unit's walk with the unit behind it, more
/// than its `cycles_per_image` (windows times the unit's cycles, or the padded image's
/// positions); with the FIFOs the cycle model sizes, a random conv pipeline's interval is
/// exactly its slowest layer's interval alone, so no cycle is lost between layers.
#[test]
fn a_pipelines_interval_is_its_slowest_layers_alone() {
    use cbnn::reference::cycle::{self, StageTiming, Timing};
    use cbnn::reference::stream::{self, Stage};
    let mut rng = cbnn::util::rng::Rng::new(90, 0);
    let mut above = 0;
    for case in 0..120u64 {
        let (h, w) = (5 + rng.below(8), 5 + rng.below(8));
        let k = [1, 2, 3, 3, 5][rng.below(5)];
        let same = k % 2 == 1 && rng.below(2) == 0;
        let mut ops = vec![Op::Conv(1 + rng.below(6), k, same)];
        if rng.below(2) == 0 {
            ops.push(Op::Pool(2));
        }
        if rng.below(2) == 0 {
            ops.push(Op::Conv(1 + rng.below(6), 3, rng.below(2) == 0));
        }
        if rng.below(2) == 0 {
            ops.push(Op::Dense(1 + rng.below(12)));
        }
        let model = random_conv_model(600 + case, (h, w), &[7], &ops, 3);
        if model.validate(std::path::Path::new("random")).is_err() {
            continue;
        }
        let fold: Vec<_> = cbnn::plan::fold::shapes(&model)
            .iter()
            .map(|s| cbnn::vocab::fold::LayerFold {
                pe: 1 + rng.below(s.outputs),
                simd: 1 + rng.below(s.inputs),
                pipe: rng.below(2),
            })
            .collect();
        let inputs = cbnn::plan::layer_inputs(&model);
        let mut slowest = 0;
        for ((l, &input), &f) in model.layers.iter().zip(&inputs).zip(&fold) {
            let hw = l.hardware();
            // The layer's stages alone, fed at will and drained at will.
            let per_image = if hw.streams() {
                let out = l.semantics().output_shape(input);
                out.height * out.width
            } else {
                1
            };
            let stages = hw.stages(input, f);
            let mut alone: Vec<Box<dyn Stage>> = stages
                .iter()
                .map(|s| -> Box<dyn Stage> {
                    match *s {
                        StageTiming::Window {
                            height,
                            width,
                            kernel,
                            pad,
                        } => Box::new(stream::SlidingWindow::new(height, width, kernel, pad)),
                        StageTiming::Unit { steps } => Box::new(stream::Mvtu::new(steps)),
                        StageTiming::Pool {
                            height,
                            width,
                            size,
                        } => Box::new(stream::MaxPool::new(height, width, size)),
                        StageTiming::Unpack { beats } => Box::new(stream::Unpack::new(beats)),
                        other => panic!("{other:?}"),
                    }
                })
                .collect();
            alone.push(Box::new(stream::Skid::default()));
            let mut refs: Vec<&mut dyn Stage> = alone
                .iter_mut()
                .map(|b| &mut **b as &mut dyn Stage)
                .collect();
            let pixels = input.height * input.width;
            let c = stream::output_cycles(
                &mut refs,
                8 * pixels,
                8 * per_image,
                cbnn::reference::schedule::Schedule::FREE,
                1 << 26,
            )
            .unwrap();
            let measured = (c[7 * per_image - 1] - c[6 * per_image - 1]) as usize;
            assert_eq!(
                hw.interval(input, f),
                measured,
                "case {case}: {}",
                l.semantics().kind()
            );
            above += usize::from(hw.cycles_per_image(input, f) < measured);
            slowest = slowest.max(measured);
        }
        let timing: Timing = cbnn::plan::timing(&model, &fold, 1);
        let interval = cycle::latency_and_interval(&timing).1;
        assert_eq!(interval, slowest as u64, "case {case}: {ops:?} {fold:?}");
    }
    assert!(
        above > 20,
        "the window walk costs cycles in many layers ({above})"
    );
}
