//! `cbnn bench`: inference speed of the full-precision MLP, the 8-plane baseline BNN and the
//! compact BNN side by side in one run, plus training and simulation speed.
//!
//! Models that are not given are made in the work directory with the commands' defaults (and
//! reused by the next run). Within each repeat the engines run one after the other for every
//! setting, so that a ratio compares passes measured moments apart.

use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Serialize;

use super::commands::{self, open};
use super::flow::{run_stage, s, Stage};
use super::{BenchArgs, Cli};
use crate::bench::{run_pass, Classifier, Pass, Setting, Spread};
use crate::error::{Error, Result};
use crate::float;
use crate::model::{self, IntModel};
use crate::reference::fast::FastModel;
use crate::reference::{has_popcnt, Evaluation};
use crate::util::atomic;

/// The three networks, in the order they are measured and reported.
const ENGINES: [&str; 3] = ["float", "baseline", "compact"];

#[derive(Serialize)]
struct ModelInfo {
    name: &'static str,
    path: String,
    planes: Option<Vec<u8>>,
    hidden: Vec<usize>,
    size_bits: u64,
    test_accuracy: f64,
}

#[derive(Serialize)]
struct InferenceRow {
    engine: &'static str,
    threads: usize,
    batch: usize,
    images_per_second: Spread,
    /// Median wall time of one call (one batch) per repeat, microseconds.
    call_latency_us: Spread,
    /// Microseconds per image, from the median throughput.
    us_per_image: f64,
}

#[derive(Serialize)]
struct RatioRow {
    threads: usize,
    batch: usize,
    compact_vs_baseline: Spread,
    compact_vs_float: Spread,
    baseline_vs_float: Spread,
}

#[derive(Serialize)]
struct SimRow {
    model: &'static str,
    design: String,
    images: u64,
    cycles: u64,
    images_per_second: f64,
    cycles_per_second: f64,
    build_seconds: f64,
}

#[derive(Serialize)]
struct Machine {
    cpu: String,
    cores: usize,
    popcnt: bool,
    avx2_fma: bool,
}

#[derive(Serialize)]
struct BenchReport {
    tool: String,
    dataset: String,
    /// Compact over baseline images/s: the median over repeats, one thread, batch 1000.
    speedup_vs_baseline: Option<f64>,
    /// Compact over full-precision images/s: the median over repeats, one thread, batch 1000.
    speedup_vs_float: Option<f64>,
    machine: Machine,
    images: usize,
    repeats: usize,
    models: Vec<ModelInfo>,
    inference: Vec<InferenceRow>,
    ratios: Vec<RatioRow>,
    training_images_per_second: Vec<(String, f64)>,
    simulation: Vec<SimRow>,
    notes: Vec<String>,
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The model paths to measure: given, or made in the work directory.
struct Models {
    float: PathBuf,
    baseline: PathBuf,
    compact: PathBuf,
}

fn make_models(a: &BenchArgs) -> Result<Models> {
    let work = &a.work;
    let mut data = vec!["--dataset".to_string(), a.data.dataset.clone()];
    if let Some(v) = a.validation {
        data.extend(["--validation".to_string(), v.to_string()]);
    }
    if let Some(d) = &a.data.data_dir {
        data.extend(["--data-dir".to_string(), s(d)]);
    }
    let argv = |v: &[&str]| {
        let mut out: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        out.extend(data.iter().cloned());
        out
    };
    let baseline = match &a.baseline {
        Some(p) => p.clone(),
        None => {
            let p = work.join("baseline.json");
            errln!("no --baseline: training one with `cbnn train` defaults");
            run_stage(
                work,
                &Stage {
                    name: "baseline",
                    argv: argv(&["train", "-o", &s(&p)]),
                    inputs: vec![],
                    outputs: vec![p.clone()],
                },
            )?;
            p
        }
    };
    let compact = match &a.compact {
        Some(p) => p.clone(),
        None => {
            let p = work.join("compact.json");
            errln!("no --compact: pruning the baseline with `cbnn prune` defaults");
            run_stage(
                work,
                &Stage {
                    name: "compact",
                    argv: argv(&[
                        "prune",
                        &s(&baseline),
                        "-o",
                        &s(&p),
                        "--report",
                        &s(&work.join("prune.json")),
                    ]),
                    inputs: vec![baseline.clone()],
                    outputs: vec![p.clone()],
                },
            )?;
            p
        }
    };
    let float = match &a.float {
        Some(p) => p.clone(),
        None => {
            let p = work.join("float.json");
            let hidden = model::load(&baseline)?
                .hidden_widths()
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",");
            errln!("no --float: training the full-precision MLP ({hidden}) with `cbnn train --float` defaults");
            run_stage(
                work,
                &Stage {
                    name: "float",
                    argv: argv(&["train", "--float", "--hidden", &hidden, "-o", &s(&p)]),
                    inputs: vec![baseline.clone()],
                    outputs: vec![p.clone()],
                },
            )?;
            p
        }
    };
    Ok(Models {
        float,
        baseline,
        compact,
    })
}

/// Measures one engine in one setting; checks its classes against the first pass's.
fn pass<C: Classifier>(
    c: &C,
    pixels: &[u8],
    setting: Setting,
    pool: &rayon::ThreadPool,
    expected: &[usize],
    name: &str,
) -> Result<Pass> {
    let (p, classes) = run_pass(c, pixels, setting, pool);
    if classes != expected {
        return Err(Error::CheckFailed(format!(
            "{name}: the classes differ between settings (threads {}, batch {})",
            setting.threads, setting.batch
        )));
    }
    Ok(p)
}

fn simulate(a: &BenchArgs, name: &'static str, model_path: &Path) -> Result<SimRow> {
    let design = a.work.join(format!("rtl-{name}"));
    run_stage(
        &a.work,
        &Stage {
            name: if name == "baseline" {
                "rtl-baseline"
            } else {
                "rtl-compact"
            },
            argv: vec!["rtl".into(), s(model_path), "-o".into(), s(&design)],
            inputs: vec![model_path.to_path_buf()],
            outputs: vec![design.join("design.json")],
        },
    )?;
    let json = a.work.join(format!("sim-{name}.json"));
    let mut argv = vec![
        "cbnn".to_string(),
        "sim".into(),
        s(&design),
        "--count".into(),
        a.sim_images.to_string(),
        "--json".into(),
        s(&json),
        "--dataset".into(),
        a.data.dataset.clone(),
    ];
    if let Some(d) = &a.data.data_dir {
        argv.extend(["--data-dir".to_string(), s(d)]);
    }
    let cli = Cli::try_parse_from(argv).map_err(|e| Error::usage(format!("bench sim: {e}")))?;
    commands::dispatch(cli.command)?;
    let text = std::fs::read_to_string(&json).map_err(|e| Error::io(&json, e))?;
    let v: crate::cosim::SimReport = serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(&json, format!("not a simulation report ({e})")))?;
    Ok(SimRow {
        model: name,
        design: s(&design),
        images: v.images as u64,
        cycles: v.cycles,
        images_per_second: v.images_per_second,
        cycles_per_second: v.cycles_per_second,
        build_seconds: v.build_seconds,
    })
}

/// Training images per second of one epoch of the baseline's configuration and of the
/// full-precision MLP, on the first `n` training images.
fn training_speed(
    a: &BenchArgs,
    baseline: &IntModel,
    float_model: &float::FloatModel,
    ds: &crate::data::Dataset,
) -> Result<Vec<(String, f64)>> {
    use crate::train::{self, DataMeta, SlicedSet, TrainConfig};
    let split = ds.split(a.validation, Some(a.train_images))?;
    let planes = baseline.planes.clone();
    let cfg = TrainConfig {
        hidden: baseline.hidden_widths(),
        epochs: 1,
        verbose: false,
        ..TrainConfig::default()
    };
    let meta = DataMeta {
        dataset: a.data.dataset.clone(),
        input: baseline.input,
        classes: ds.classes,
        planes: planes.clone(),
    };
    let sliced = |set: &crate::data::LabeledSet, keep: bool| SlicedSet {
        x: crate::bitslice::slice(&set.images, &planes),
        y: set.labels.clone(),
        images: keep.then(|| set.images.clone()),
    };
    let (tr, va) = (
        sliced(&split.train, cfg.augment > 0),
        sliced(&split.val, false),
    );
    let bnn = train::train(&cfg, &meta, &tr, &va)?.images_per_second;
    let fcfg = float::train::FloatConfig {
        hidden: float_model.hidden_widths(),
        epochs: 1,
        batch: 100,
        lr: 0.001,
        lr_final: 0.01,
        seed: 1,
        verbose: false,
    };
    let f = float::train::train(
        &fcfg,
        float_model.input,
        ds.classes,
        &a.data.dataset,
        &split.train,
        &split.val,
    )?
    .images_per_second;
    Ok(vec![("baseline".into(), bnn), ("float".into(), f)])
}

pub(super) fn bench(a: BenchArgs) -> Result<()> {
    if a.repeats == 0 || a.batch.contains(&0) {
        return Err(Error::usage(
            "--repeats and every --batch must be at least 1",
        ));
    }
    let ds = open(&a.data)?;
    let models = make_models(&a)?;
    let fm = float::load(&models.float)?;
    let base = model::load(&models.baseline)?;
    let comp = model::load(&models.compact)?;
    commands::check_compatible(&base, &models.baseline, &ds)?;
    commands::check_compatible(&comp, &models.compact, &ds)?;
    if fm.input != base.input || fm.classes < ds.classes {
        return Err(Error::usage(format!(
            "{} is not for this dataset's images",
            models.float.display()
        )));
    }
    let pixels = &ds.test.images.pixels;
    let labels = &ds.test.labels;
    let (fe, be, ce) = (
        float::Engine::new(&fm),
        FastModel::new(&base),
        FastModel::new(&comp),
    );
    let all = rayon::current_num_threads();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(all)
        .build()
        .map_err(|e| Error::usage(format!("cannot start {all} threads: {e}")))?;
    let mut thread_counts = vec![1];
    if all > 1 {
        thread_counts.push(all);
    }
    let settings: Vec<Setting> = thread_counts
        .iter()
        .flat_map(|&threads| a.batch.iter().map(move |&batch| Setting { threads, batch }))
        .collect();

    // Reference classes (one thread, batch 1000) and accuracies.
    let first = Setting {
        threads: 1,
        batch: 1000,
    };
    let expected: Vec<Vec<usize>> = vec![
        run_pass(&fe, pixels, first, &pool).1,
        run_pass(&be, pixels, first, &pool).1,
        run_pass(&ce, pixels, first, &pool).1,
    ];
    // The fast binary engines must give the reference model's classes, image for image.
    for (m, got, name) in [
        (&base, &expected[1], "baseline"),
        (&comp, &expected[2], "compact"),
    ] {
        let truth = crate::reference::Executor::new(m)
            .classify(&crate::bitslice::slice(&ds.test.images, &m.planes));
        if let Some(i) = truth.iter().zip(got).position(|(a, b)| a != b) {
            return Err(Error::CheckFailed(format!(
                "{name}: the fast executor says class {} for test image {i}, the reference model {}",
                got[i], truth[i]
            )));
        }
    }
    let accuracy = |pred: &[usize], classes: usize| Evaluation::new(pred, labels, classes).accuracy;
    let binary_info = |name: &'static str, path: &Path, m: &IntModel, pred: &[usize]| ModelInfo {
        name,
        path: s(path),
        planes: Some(m.planes.planes().to_vec()),
        hidden: m.hidden_widths(),
        size_bits: m.size_bits(),
        test_accuracy: accuracy(pred, m.classes()),
    };
    let infos = vec![
        ModelInfo {
            name: "float",
            path: s(&models.float),
            planes: None,
            hidden: fm.hidden_widths(),
            size_bits: fm.size_bits(),
            test_accuracy: accuracy(&expected[0], fm.classes),
        },
        binary_info("baseline", &models.baseline, &base, &expected[1]),
        binary_info("compact", &models.compact, &comp, &expected[2]),
    ];

    // passes[setting][engine][repeat]
    let mut passes: Vec<Vec<Vec<Pass>>> = vec![vec![Vec::new(); 3]; settings.len()];
    let pb = crate::util::progress::bar((a.repeats * settings.len() * 3) as u64, "bench");
    for rep in 0..a.repeats {
        for (si, &st) in settings.iter().enumerate() {
            for (ei, name) in ENGINES.iter().enumerate() {
                pb.set_message(format!(
                    "repeat {} of {}: {name}, {} thread(s), batch {}",
                    rep + 1,
                    a.repeats,
                    st.threads,
                    st.batch
                ));
                let p = match ei {
                    0 => pass(&fe, pixels, st, &pool, &expected[0], name)?,
                    1 => pass(&be, pixels, st, &pool, &expected[1], name)?,
                    _ => pass(&ce, pixels, st, &pool, &expected[2], name)?,
                };
                passes[si][ei].push(p);
                pb.inc(1);
            }
        }
    }
    pb.finish_and_clear();

    let mut inference = Vec::new();
    let mut ratios = Vec::new();
    for (si, st) in settings.iter().enumerate() {
        for (ei, name) in ENGINES.iter().enumerate() {
            let ips: Vec<f64> = passes[si][ei].iter().map(Pass::images_per_second).collect();
            let lat: Vec<f64> = passes[si][ei]
                .iter()
                .map(|p| 1e6 * p.call_seconds)
                .collect();
            let spread = Spread::of(&ips);
            inference.push(InferenceRow {
                engine: name,
                threads: st.threads,
                batch: st.batch,
                images_per_second: spread,
                call_latency_us: Spread::of(&lat),
                us_per_image: 1e6 / spread.median,
            });
        }
        let ratio = |num: usize, den: usize| {
            let r: Vec<f64> = passes[si][num]
                .iter()
                .zip(&passes[si][den])
                .map(|(n, d)| n.images_per_second() / d.images_per_second())
                .collect();
            Spread::of(&r)
        };
        ratios.push(RatioRow {
            threads: st.threads,
            batch: st.batch,
            compact_vs_baseline: ratio(2, 1),
            compact_vs_float: ratio(2, 0),
            baseline_vs_float: ratio(1, 0),
        });
    }
    let headline = ratios.iter().find(|r| r.threads == 1 && r.batch == 1000);

    let mut notes = Vec::new();
    let training = if a.train_images == 0 {
        notes.push("training speed skipped (--train-images 0)".to_string());
        Vec::new()
    } else {
        errln!(
            "training speed: one epoch on {} images of each",
            a.train_images
        );
        training_speed(&a, &base, &fm, &ds)?
    };
    let mut simulation = Vec::new();
    if a.sim_images == 0 {
        notes.push("simulation skipped (--sim-images 0)".to_string());
    } else if let Err(e) = crate::cosim::verilator_version() {
        notes.push(format!("simulation skipped: {e}"));
    } else {
        for (name, path) in [("baseline", &models.baseline), ("compact", &models.compact)] {
            simulation.push(simulate(&a, name, path)?);
        }
    }

    let report = BenchReport {
        tool: format!("cbnn {}", env!("CARGO_PKG_VERSION")),
        dataset: a.data.dataset.clone(),
        speedup_vs_baseline: headline.map(|r| r.compact_vs_baseline.median),
        speedup_vs_float: headline.map(|r| r.compact_vs_float.median),
        machine: Machine {
            cpu: cpu_name(),
            cores: all,
            popcnt: has_popcnt(),
            avx2_fma: float::has_avx2_fma(),
        },
        images: ds.test.len(),
        repeats: a.repeats,
        models: infos,
        inference,
        ratios,
        training_images_per_second: training,
        simulation,
        notes,
    };
    outln!("{}", table(&report).trim_end_matches('\n'));
    if let Some(path) = &a.json {
        atomic::write_json(path, &report)?;
    }
    Ok(())
}

fn table(r: &BenchReport) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{} test images of {}, {} repeats, {} ({} cores)",
        r.images, r.dataset, r.repeats, r.machine.cpu, r.machine.cores
    );
    for m in &r.models {
        let _ = writeln!(
            t,
            "{:<9} {:>6.2}% test  {:>9} bits  hidden {:?}{}",
            m.name,
            100.0 * m.test_accuracy,
            m.size_bits,
            m.hidden,
            m.planes
                .as_ref()
                .map_or(" (float32, 8-bit pixels)".to_string(), |p| format!(
                    " planes {p:?}"
                ))
        );
    }
    let _ = writeln!(
        t,
        "\n{:<9} {:>7} {:>6} {:>12} {:>12} {:>12} {:>11} {:>12}",
        "engine",
        "threads",
        "batch",
        "img/s min",
        "img/s median",
        "img/s max",
        "us/image",
        "call us med"
    );
    for row in &r.inference {
        let _ = writeln!(
            t,
            "{:<9} {:>7} {:>6} {:>12.0} {:>12.0} {:>12.0} {:>11.2} {:>12.1}",
            row.engine,
            row.threads,
            row.batch,
            row.images_per_second.min,
            row.images_per_second.median,
            row.images_per_second.max,
            row.us_per_image,
            row.call_latency_us.median
        );
    }
    let _ = writeln!(
        t,
        "\n{:<7} {:>6}  {:>26}  {:>26}",
        "threads", "batch", "compact/baseline min-med-max", "compact/float min-med-max"
    );
    for row in &r.ratios {
        let f = |s: &Spread| format!("{:.2} {:.2} {:.2}", s.min, s.median, s.max);
        let _ = writeln!(
            t,
            "{:<7} {:>6}  {:>26}  {:>26}",
            row.threads,
            row.batch,
            f(&row.compact_vs_baseline),
            f(&row.compact_vs_float)
        );
    }
    let _ = writeln!(t);
    for (name, ips) in &r.training_images_per_second {
        let _ = writeln!(t, "training  {name}: {ips:.0} images/s (one epoch)");
    }
    for s in &r.simulation {
        let _ = writeln!(
            t,
            "verilator {}: {:.0} images/s, {:.2} M cycles/s ({} images, build {:.1} s)",
            s.model,
            s.images_per_second,
            s.cycles_per_second / 1e6,
            s.images,
            s.build_seconds
        );
    }
    for n in &r.notes {
        let _ = writeln!(t, "note: {n}");
    }
    if let (Some(b), Some(f)) = (r.speedup_vs_baseline, r.speedup_vs_float) {
        let _ = writeln!(
            t,
            "\ncompact vs baseline {b:.2}x, compact vs full precision {f:.2}x (medians, one thread, batch 1000)"
        );
    }
    t
}
