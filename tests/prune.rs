//! Sensitivity and pruning on a small real subset (Debian's Fashion-MNIST).

mod common;
use common::*;

use std::path::PathBuf;
use std::sync::OnceLock;

/// A small 8-plane baseline trained once for the tests of this file.
fn baseline() -> &'static (PathBuf, PathBuf) {
    static B: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    B.get_or_init(|| {
        let dir = temp_dir("prune-base");
        let model = dir.join("base.json");
        cbnn_ok(&[
            "train",
            "--dataset",
            "fashion-mnist",
            "--limit",
            "4000",
            "--epochs",
            "4",
            "--hidden",
            "64,64",
            "-o",
            model.to_str().unwrap(),
        ]);
        (dir, model)
    })
}

/// `cbnn prune` of the baseline on Fashion-MNIST with `flags`, its model written to
/// `DIR/NAME.json` and its report to `DIR/NAME-report.json`; returns the command's output and
/// both paths.
fn prune_ok(name: &str, flags: &[&str]) -> (std::process::Output, PathBuf, PathBuf) {
    let (dir, model) = baseline();
    prune_into(model, "fashion-mnist", dir, name, flags)
}

#[test]
fn sensitivity_finds_the_msb_most_important() {
    let (dir, model) = baseline();
    let report = dir.join("sens.json");
    let plot = dir.join("sens.svg");
    cbnn_ok(&[
        "sensitivity",
        model.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--seeds",
        "2",
        "--json",
        report.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let r = json_file(&report);
    let rows = r["per_plane"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    let drop = |row: &serde_json::Value| row["random"]["val_drop_pp"].as_f64().unwrap();
    let msb = rows.iter().find(|row| row["plane"] == 7).unwrap();
    for row in rows.iter().filter(|row| row["plane"] != 7) {
        assert!(
            drop(msb) > drop(row),
            "plane 7 drop {} vs plane {} drop {}",
            drop(msb),
            row["plane"],
            drop(row)
        );
    }
    assert_eq!(r["cumulative"].as_array().unwrap().len(), 8);
    assert_eq!(r["test_images"], 10000);
    // --count evaluates only the first N test images (the quick flow of a convnet's choice);
    // the validation numbers, which decide, are the same.
    let few = dir.join("sens-few.json");
    cbnn_ok(&[
        "sensitivity",
        model.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--method",
        "drop",
        "--count",
        "500",
        "--json",
        few.to_str().unwrap(),
    ]);
    let f = json_file(&few);
    assert_eq!(f["test_images"], 500);
    assert_eq!(f["baseline_val_accuracy"], r["baseline_val_accuracy"]);
    assert_eq!(
        f["per_plane"][0]["drop_minus"]["val_accuracy"],
        rows[0]["drop_minus"]["val_accuracy"]
    );
    let svg = std::fs::read_to_string(plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline") && svg.trim_end().ends_with("</svg>")
    );
}

#[test]
fn pruned_model_has_pixels_times_k_inputs() {
    let dir = &baseline().0;
    let flags = ["--max-drop", "3", "--epochs", "3", "--limit", "4000"];
    let (_, out_model, report) = prune_ok("compact", &flags);
    let r = json_file(&report);
    for key in ["baseline", "chosen"] {
        for field in [
            "planes",
            "hidden",
            "size_bits",
            "val_accuracy",
            "test_accuracy",
        ] {
            assert!(!r[key][field].is_null(), "{key}.{field} missing");
        }
    }
    let candidates = r["candidates"].as_array().unwrap();
    assert!(!candidates.is_empty());
    // Acceptance allows for the noise of the validation sample: the measured drop plus one
    // paired standard error must fit the budget.
    let base_val = r["baseline"]["val_accuracy"].as_f64().unwrap();
    assert_eq!(r["config"]["noise_margin"].as_f64(), Some(1.0));
    for c in candidates {
        let se = c["drop_se"].as_f64().unwrap();
        let drop = base_val - c["val_accuracy"].as_f64().unwrap();
        assert!(se > 0.0 && se < 0.05, "{c}");
        assert_eq!(
            c["accepted"].as_bool().unwrap(),
            drop + se <= 0.03 + 1e-12,
            "{c}"
        );
    }
    let m = json_file(&out_model);
    let k = m["planes"].as_array().unwrap().len();
    assert_eq!(
        m["layers"][0]["inputs"].as_u64().unwrap() as usize,
        28 * 28 * k
    );
    assert_eq!(r["chosen"]["planes"].as_array().unwrap().len(), k);
    // The chosen model is what eval measures.
    let e = dir.join("e.json");
    cbnn_ok(&[
        "eval",
        out_model.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--json",
        e.to_str().unwrap(),
    ]);
    assert_eq!(json_file(&e)["accuracy"], r["chosen"]["test_accuracy"]);
    if k < 8 {
        // A pruned model's first layer really is smaller.
        assert!(r["chosen"]["size_bits"].as_u64() < r["baseline"]["size_bits"].as_u64());
    }
}

#[test]
fn impossible_budget_returns_the_baseline_and_says_so() {
    let model = &baseline().1;
    let flags = ["--max-drop", "0", "--epochs", "1", "--limit", "300"];
    let (out, out_model, report) = prune_ok("same", &flags);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("returning the baseline"), "{stdout}");
    let r = json_file(&report);
    assert_eq!(r["chosen"], r["baseline"]);
    assert_eq!(r["search"], "retrain");
    assert_eq!(r["phase_seconds"][0]["phase"], "sensitivity");
    assert_eq!(r["phase_seconds"][1]["phase"], "planes");
    assert_eq!(json_file(&out_model)["layers"], json_file(model)["layers"]);
}

/// `--ranking` takes the plane order of a sensitivity report instead of analysing again (what
/// the flow does with its sensitivity stage's report); a report of another model's planes is
/// refused before any work.
#[test]
fn prune_takes_the_ranking_of_a_sensitivity_report() {
    let (dir, model) = baseline();
    let sens = dir.join("sens-ranking.json");
    cbnn_ok(&[
        "sensitivity",
        model.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--seeds",
        "1",
        "--json",
        sens.to_str().unwrap(),
    ]);
    // Turned around: plane 0 the most important, plane 7 the least; the search's own
    // analysis would put plane 7 first.
    let mut r = json_file(&sens);
    for row in r["per_plane"].as_array_mut().unwrap() {
        let p = row["plane"].as_f64().unwrap();
        row["random"]["val_drop_pp"] = serde_json::json!(10.0 - p);
    }
    std::fs::write(&sens, serde_json::to_string(&r).unwrap()).unwrap();
    let report = dir.join("prune-ranking.json");
    let out = dir.join("compact-ranking.json");
    cbnn_ok(&[
        "prune",
        model.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--limit",
        "1000",
        "--epochs",
        "1",
        "--max-drop",
        "100",
        "--ranking",
        sens.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(
        json_file(&report)["plane_ranking"],
        serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7])
    );
    // A report of a one-plane model.
    r["planes"] = serde_json::json!([7]);
    r["per_plane"] = serde_json::json!([r["per_plane"][0].clone()]);
    std::fs::write(&sens, serde_json::to_string(&r).unwrap()).unwrap();
    let other = dir.join("compact-other.json");
    let o = cbnn(&[
        "prune",
        model.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--ranking",
        sens.to_str().unwrap(),
        "-o",
        other.to_str().unwrap(),
    ]);
    assert_fails(&o, 2, "it is the report of another model");
    assert!(!other.exists());
}

/// `--jobs 2` trains the candidates in `cbnn retrain` processes, ahead of the search's
/// decisions, and still chooses the same model byte for byte, after the same candidates with
/// the same numbers; `--jobs 0` is refused before any work.
#[test]
fn candidates_trained_in_parallel_processes_give_the_sequential_search() {
    let (dir, model) = baseline();
    let m = model.to_str().unwrap();
    let run = |jobs: &str| {
        let out = dir.join(format!("jobs{jobs}.json"));
        let report = dir.join(format!("jobs{jobs}-report.json"));
        cbnn_ok(&[
            "prune",
            m,
            "--dataset",
            "fashion-mnist",
            "--epochs",
            "1",
            "--limit",
            "1500",
            "--validation",
            "500",
            "--jobs",
            jobs,
            "-o",
            out.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ]);
        (std::fs::read(&out).unwrap(), json_file(&report))
    };
    let (one, r1) = run("1");
    let (two, r2) = run("2");
    assert!(r1["candidates"].as_array().unwrap().len() >= 3);
    assert_eq!(without_timings(r1), without_timings(r2));
    assert!(one == two, "the chosen models differ");
    let out = dir.join("jobs0.json");
    assert_fails(
        &cbnn(&[
            "prune",
            m,
            "--dataset",
            "fashion-mnist",
            "--jobs",
            "0",
            "-o",
            out.to_str().unwrap(),
        ]),
        2,
        "--jobs 0 must be between 1 and 256",
    );
    assert!(!out.exists());
}

/// `retrain --warm` starts a convnet from its model's weights: asked of a perceptron, one
/// sentence and no file.
#[test]
fn a_warm_start_of_a_perceptron_is_refused() {
    let (dir, model) = baseline();
    let out = dir.join("warm-mlp.json");
    assert_fails(
        &cbnn(&[
            "retrain",
            model.to_str().unwrap(),
            "--dataset",
            "fashion-mnist",
            "--planes",
            "7",
            "--warm",
            "-o",
            out.to_str().unwrap(),
        ]),
        2,
        "(d64,d64) has no convolutions or pooling",
    );
    assert!(!out.exists());
}

/// `cbnn [first...] prune MODEL --search shared --distill 0.5` on the first `limit` training
/// images, 2 epochs, a budget of 15 pp.
fn shared_search(
    model: &std::path::Path,
    out: &std::path::Path,
    report: &std::path::Path,
    limit: &str,
    first: &[&str],
) {
    let mut args = first.to_vec();
    args.extend([
        "prune",
        model.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--search",
        "shared",
        "--distill",
        "0.5",
        "--epochs",
        "2",
        "--limit",
        limit,
        "--max-drop",
        "15",
        "-o",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    cbnn_ok(&args);
}

/// The search by evaluation on a small subset: the shared network serves every candidate of
/// the phases (scored, never chosen as scored), the smallest inside the widened budget are
/// fine-tuned, and the chosen model is one of those fine-tuned and accepted, or the baseline;
/// whatever is chosen is a valid model of its own planes whose numbers are what the report
/// says.
#[test]
fn the_search_by_evaluation_chooses_only_a_fine_tuned_candidate() {
    let (dir, model) = baseline();
    let out_model = dir.join("shared.json");
    let report = dir.join("shared-report.json");
    shared_search(model, &out_model, &report, "1500", &[]);
    let r = json_file(&report);
    assert_eq!(r["search"], "shared");
    let parts: Vec<&str> = r["phase_seconds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        parts[..3],
        ["sensitivity", "shared training", "planes"],
        "{parts:?}"
    );
    assert!(parts.contains(&"fine-tune"), "{parts:?}");
    let cands = r["candidates"].as_array().unwrap();
    let (tuned, scored): (Vec<_>, Vec<_>) = cands.iter().partition(|c| c["phase"] == "fine-tune");
    assert!(!scored.is_empty());
    assert!(scored.iter().all(|c| c["accepted"] == false), "{r}");
    assert!(!tuned.is_empty() && tuned.len() <= 4, "{r}");
    let chosen = &r["chosen"];
    assert_ne!(
        chosen, &r["baseline"],
        "a budget of 15 pp admits a smaller model: {r}"
    );
    {
        let winner = tuned
            .iter()
            .find(|c| c["accepted"] == true)
            .expect("a chosen model is a fine-tuned, accepted candidate");
        assert_eq!(winner["planes"], chosen["planes"]);
        assert_eq!(winner["size_bits"], chosen["size_bits"]);
    }
    let m = json_file(&out_model);
    assert_eq!(m["planes"], chosen["planes"]);
    assert_eq!(m["size_bits"], chosen["size_bits"]);
    cbnn_ok(&[
        "eval",
        out_model.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
    ]);
}

/// A teacher that cannot teach this baseline, or distillation outside the shared search, is
/// one sentence before any work.
#[test]
fn a_bad_teacher_is_refused_in_one_sentence() {
    let (dir, model) = baseline();
    let m = model.to_str().unwrap();
    let out = dir.join("t.json");
    let o = out.to_str().unwrap();
    let other = dir.join("other-classes.json");
    cbnn::model::save(&random_model(3, 784, &[7], &[5], 4), &other).unwrap();
    let missing = dir.join("no-such-teacher.json");
    for (extra, needle) in [
        (
            vec![
                "--search",
                "shared",
                "--distill",
                "0.5",
                "--teacher",
                missing.to_str().unwrap(),
            ],
            "no-such-teacher.json",
        ),
        (
            vec![
                "--search",
                "shared",
                "--distill",
                "0.5",
                "--teacher",
                other.to_str().unwrap(),
            ],
            "the teacher classifies 4 classes of 784x1x1 images; the baseline 10 of 28x28x1",
        ),
        (
            vec!["--teacher", m],
            "--teacher is the model --distill W learns from; give --distill too",
        ),
        (
            vec!["--search", "shared", "--distill", "1.5"],
            "--distill 1.5 must be between 0 and 1",
        ),
        (
            vec!["--search", "shared", "--temperature", "0"],
            "--temperature 0 must be a positive number",
        ),
    ] {
        let mut args = vec!["prune", m, "--dataset", "fashion-mnist", "-o", o];
        args.extend(extra);
        assert_fails(&cbnn(&args), 2, needle);
        assert!(!out.exists());
    }
}

/// The search by evaluation with distillation is deterministic for a seed, whatever the
/// thread count: the same chosen model and the same report but for its timings.
#[test]
fn the_search_by_evaluation_gives_the_same_result_on_one_thread_and_on_three() {
    let (dir, model) = baseline();
    let run = |threads: &str| {
        let out = dir.join(format!("det-{threads}.json"));
        let report = dir.join(format!("det-{threads}-report.json"));
        shared_search(model, &out, &report, "1000", &["--threads", threads]);
        (
            std::fs::read(&out).unwrap(),
            without_timings(json_file(&report)),
        )
    };
    let (a, b) = (run("1"), run("3"));
    assert!(a.0 == b.0, "the chosen models differ");
    assert_eq!(a.1, b.1);
}
