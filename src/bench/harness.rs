//! The benchmark harness (`cbnn bench`): inference speed of the full-precision network, the
//! 8-plane baseline BNN and the compact BNN side by side in one run, plus training and
//! simulation speed.
//!
//! Models that are not given are made in the work directory by jobs with their defaults (and
//! reused by the next run, as the flow's stages are). Within each repeat the engines run one after the other for every
//! setting, so that a ratio compares passes measured moments apart.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{run_pass, Classifier, Pass, Setting, Spread};
use crate::error::{self, Error, Result};
use crate::float;
use crate::flow::{run_stage, Stage};
use crate::jobs::prune::PruneJob;
use crate::jobs::rtl::RtlJob;
use crate::jobs::sim::SimJob;
use crate::jobs::train::TrainJob;
use crate::jobs::{check_compatible, DataSource, Job};
use crate::model::{self, IntModel};
use crate::reference::fast::FastModel;
use crate::reference::{has_popcnt, Evaluation};
use crate::util::atomic;
use crate::util::output::Plan;

/// The three networks, in the order they are measured and reported.
const ENGINES: [&str; 3] = ["float", "baseline", "compact"];

/// Part of [`BenchReport`].
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct ModelInfo {
    pub name: &'static str,
    pub path: String,
    /// The engine that ran it: `float`, `fast` (the fast perceptron executor) or
    /// `fast-layers` (the fast executor of convolutional networks).
    pub engine: &'static str,
    pub planes: Option<Vec<u8>>,
    /// The hidden layers in the architecture notation.
    pub arch: String,
    pub hidden: Vec<usize>,
    pub size_bits: u64,
    pub test_accuracy: f64,
}

/// Part of [`BenchReport`].
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct InferenceRow {
    pub engine: &'static str,
    pub threads: usize,
    pub batch: usize,
    pub images_per_second: Spread,
    /// Median wall time of one call (one batch) per repeat, microseconds.
    pub call_latency_us: Spread,
    /// Microseconds per image, from the median throughput.
    pub us_per_image: f64,
}

/// Part of [`BenchReport`].
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct RatioRow {
    pub threads: usize,
    pub batch: usize,
    pub compact_vs_baseline: Spread,
    pub compact_vs_float: Spread,
    pub baseline_vs_float: Spread,
}

/// Part of [`BenchReport`].
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct SimRow {
    pub model: &'static str,
    pub design: String,
    pub images: u64,
    pub cycles: u64,
    pub images_per_second: f64,
    pub cycles_per_second: f64,
    pub build_seconds: f64,
}

/// Part of [`BenchReport`].
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub popcnt: bool,
    avx2_fma: bool,
}

/// Everything `cbnn bench` measured.
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct BenchReport {
    pub tool: String,
    pub dataset: String,
    /// Compact over baseline images/s: the median over repeats, one thread, batch 1000.
    pub speedup_vs_baseline: Option<f64>,
    /// Compact over full-precision images/s: the median over repeats, one thread, batch 1000.
    pub speedup_vs_float: Option<f64>,
    pub machine: Machine,
    pub images: usize,
    pub repeats: usize,
    pub models: Vec<ModelInfo>,
    pub inference: Vec<InferenceRow>,
    pub ratios: Vec<RatioRow>,
    pub training_images_per_second: Vec<(String, f64)>,
    pub simulation: Vec<SimRow>,
    pub notes: Vec<String>,
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

fn make_models(a: &BenchConfig) -> Result<Models> {
    let work = &a.work;
    let mut quiet = |_: &crate::jobs::Outcome| {};
    let stage = |name: &str, job: Job| Stage {
        name: name.to_string(),
        job,
    };
    let baseline = match &a.baseline {
        Some(p) => p.clone(),
        None => {
            let p = work.join("baseline.json");
            errln!("no baseline given: training one with the training defaults");
            let job = TrainJob {
                validation: a.validation,
                ..TrainJob::new(a.data.clone(), p.clone())
            };
            run_stage(work, &stage("baseline", Job::Train(job)), &mut quiet)?;
            p
        }
    };
    // A logic-mapped network has no full-precision counterpart the trainer makes (its
    // tables are not layers of floats): said before any work.
    if a.float.is_none() {
        let arch: crate::train::arch::Arch = model::load(&baseline)?.arch().parse()?;
        if arch.is_logic_mapped() {
            return Err(Error::invalid([
                format!(
                    "{}: a logic-mapped network ({arch}) has no full-precision counterpart to \
                     train; give one with ",
                    baseline.display()
                )
                .into(),
                error::Setting::Float.into(),
                " (a model of `cbnn train --float`)".into(),
            ]));
        }
    }
    let compact = match &a.compact {
        Some(p) => p.clone(),
        None => {
            let p = work.join("compact.json");
            errln!("no compact model given: pruning the baseline with the pruning defaults");
            let job = PruneJob {
                validation: a.validation,
                report: Some(work.join("prune.json")),
                ..PruneJob::new(baseline.clone(), a.data.clone(), p.clone())
            };
            run_stage(work, &stage("compact", Job::Prune(job)), &mut quiet)?;
            p
        }
    };
    let float = match &a.float {
        Some(p) => p.clone(),
        None => {
            let p = work.join("float.json");
            let base = model::load(&baseline)?;
            let arch: crate::train::arch::Arch = base.arch().parse()?;
            errln!(
                "no full-precision model given: training {} {} with the training defaults",
                if arch.is_conv() {
                    "the convnet"
                } else {
                    "the MLP"
                },
                base.arch()
            );
            let job = TrainJob {
                float: true,
                hidden: base.hidden_widths(),
                arch: arch.is_conv().then_some(arch),
                validation: a.validation,
                ..TrainJob::new(a.data.clone(), p.clone())
            };
            run_stage(work, &stage("float", Job::Train(job)), &mut quiet)?;
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

fn simulate(a: &BenchConfig, name: &'static str, model_path: &Path) -> Result<SimRow> {
    let design = a.work.join(format!("rtl-{name}"));
    let rtl = RtlJob::new(model_path.to_path_buf(), design.clone());
    run_stage(
        &a.work,
        &Stage {
            name: format!("rtl-{name}"),
            job: Job::Rtl(rtl),
        },
        &mut |_| {},
    )?;
    let job = Job::Sim(SimJob {
        count: Some(a.sim_images),
        json: Some(a.work.join(format!("sim-{name}.json"))),
        ..SimJob::new(design.clone(), a.data.clone())
    });
    let crate::jobs::Outcome::Sim(v) = job.run()? else {
        unreachable!("a simulation job gives a simulation report")
    };
    Ok(SimRow {
        model: name,
        design: design.display().to_string(),
        images: v.images as u64,
        cycles: v.cycles,
        images_per_second: v.images_per_second,
        cycles_per_second: v.cycles_per_second,
        build_seconds: v.build_seconds,
    })
}

/// Training images per second of one epoch of the baseline's configuration and of the
/// full-precision network, on the first `n` training images.
fn training_speed(
    a: &BenchConfig,
    baseline: &IntModel,
    float_model: &float::FloatModel,
    ds: &crate::data::Dataset,
) -> Result<Vec<(String, f64)>> {
    use crate::train::{self, DataMeta, SlicedSet, TrainConfig};
    let split = ds.split(a.validation, Some(a.train_images))?;
    let planes = baseline.planes.clone();
    let arch: crate::train::arch::Arch = baseline.arch().parse()?;
    // The baseline's own architecture, unless it is a plain perceptron (its widths say it).
    let arch = (arch.is_conv() || arch.is_logic_mapped()).then_some(arch);
    let cfg = TrainConfig {
        hidden: baseline.hidden_widths(),
        arch: arch.clone(),
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
        arch: float_model
            .arch()
            .parse::<crate::train::arch::Arch>()
            .ok()
            .filter(|a| a.is_conv()),
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

/// What `cbnn bench` measures and where.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchConfig {
    /// The images.
    pub data: DataSource,
    /// The 8-plane baseline [default: trained in `work` with the training defaults].
    pub baseline: Option<PathBuf>,
    /// The compact model [default: the pruning of the baseline with its defaults, in `work`].
    pub compact: Option<PathBuf>,
    /// The full-precision network [default: trained in `work` in the baseline's shape].
    pub float: Option<PathBuf>,
    /// Where models that are not given are made (and found again), and designs simulated.
    pub work: PathBuf,
    /// Passes over the test set per engine and setting.
    pub repeats: usize,
    /// Batch sizes (images per call).
    pub batch: Vec<usize>,
    /// Training images for the training-speed epoch (0 skips it).
    pub train_images: usize,
    /// Test images co-simulated per design (0 skips simulation).
    pub sim_images: usize,
    /// Validation images [default: [`crate::data::default_validation`]].
    pub validation: Option<usize>,
    /// The JSON report, if any.
    pub json: Option<PathBuf>,
}

impl BenchConfig {
    /// The files the bench writes and reads.
    pub fn plan(&self) -> Plan {
        let plan = Plan::new()
            .file(error::Setting::Json, self.json.as_deref())
            .workdir(error::Setting::Work, &self.work);
        let plan = [&self.baseline, &self.compact, &self.float]
            .into_iter()
            .flatten()
            .fold(plan, |p, m| p.input("a model", m));
        self.data.plan(plan)
    }
}

/// Runs the benchmark (see the module documentation) and writes its JSON report.
pub fn bench(a: &BenchConfig) -> Result<BenchReport> {
    a.plan().check()?;
    if a.repeats == 0 {
        return Err(invalid!(error::Setting::Repeats, " must be at least 1"));
    }
    if a.batch.contains(&0) {
        return Err(invalid!(
            error::Setting::BatchSizes,
            ": every batch size must be at least 1"
        ));
    }
    let ds = a.data.open()?;
    let models = make_models(a)?;
    let fm = float::load(&models.float)?;
    let base = model::load(&models.baseline)?;
    let comp = model::load(&models.compact)?;
    check_compatible(&base, &models.baseline, &ds)?;
    check_compatible(&comp, &models.compact, &ds)?;
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
    let binary_info =
        |name: &'static str, path: &Path, m: &IntModel, e: &FastModel, pred: &[usize]| ModelInfo {
            name,
            path: path.display().to_string(),
            engine: e.name(),
            planes: Some(m.planes.planes().to_vec()),
            arch: m.arch(),
            hidden: m.hidden_widths(),
            size_bits: m.size_bits(),
            test_accuracy: accuracy(pred, m.classes()),
        };
    let infos = vec![
        ModelInfo {
            name: "float",
            path: models.float.display().to_string(),
            engine: "float",
            planes: None,
            arch: fm.arch(),
            hidden: fm.hidden_widths(),
            size_bits: fm.size_bits(),
            test_accuracy: accuracy(&expected[0], fm.classes),
        },
        binary_info("baseline", &models.baseline, &base, &be, &expected[1]),
        binary_info("compact", &models.compact, &comp, &ce, &expected[2]),
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
        notes.push("training speed skipped (0 training images asked for)".to_string());
        Vec::new()
    } else {
        errln!(
            "training speed: one epoch on {} images of each",
            a.train_images
        );
        training_speed(a, &base, &fm, &ds)?
    };
    let mut simulation = Vec::new();
    if a.sim_images == 0 {
        notes.push("simulation skipped (0 simulated images asked for)".to_string());
    } else if let Err(e) = crate::cosim::verilator_version() {
        notes.push(format!("simulation skipped: {e}"));
    } else {
        for (name, path, m) in [
            ("baseline", &models.baseline, &base),
            ("compact", &models.compact, &comp),
        ] {
            match crate::plan::check_supported(m, path) {
                Ok(()) => simulation.push(simulate(a, name, path)?),
                Err(e) => notes.push(format!("{name}: simulation skipped: {e}")),
            }
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
    if let Some(path) = &a.json {
        atomic::write_json(path, &report)?;
    }
    Ok(report)
}

/// The report as a table.
pub fn table(r: &BenchReport) -> String {
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
            "{:<9} {:>6.2}% test  {:>9} bits  {}{}{}",
            m.name,
            100.0 * m.test_accuracy,
            m.size_bits,
            if crate::train::arch::is_perceptron(&m.arch) {
                format!("hidden {:?}", m.hidden)
            } else {
                format!("arch {}", m.arch)
            },
            m.planes
                .as_ref()
                .map_or(" (float32, 8-bit pixels)".to_string(), |p| format!(
                    " planes {p:?}"
                )),
            if m.engine == "fast-layers" {
                " (layer-by-layer fast executor)"
            } else {
                ""
            }
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
