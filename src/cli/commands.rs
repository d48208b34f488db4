//! Command implementations: load inputs, call the library, print and write results.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::{
    Cli, Command, DataArgs, DataCommand, EvalArgs, FetchArgs, InfoArgs, PruneArgs, RtlArgs,
    SensitivityArgs, SimArgs, SynthArgs, SynthTarget, TrainArgs,
};
use crate::bitslice::{self, PlaneSet};
use crate::data::{fetch, Dataset};
use crate::error::{Error, Result};
use crate::model::{self, InputShape, IntModel};
use crate::reference::{self, Evaluation};
use crate::synth;
use crate::train::{self, DataMeta, SlicedSet, TrainConfig};
use crate::util::atomic;

/// Most worker threads `--threads` may ask for.
const MAX_THREADS: usize = 1024;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        if n == 0 || n > MAX_THREADS {
            return Err(Error::usage(format!(
                "--threads {n} must be between 1 and {MAX_THREADS}"
            )));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::usage(format!("cannot set up {n} threads: {e}")))?;
    }
    dispatch(cli.command)
}

/// Runs one command (the thread pool already set up).
pub fn dispatch(command: Command) -> Result<()> {
    super::outputs::check(&command)?;
    match command {
        Command::Flow(a) => super::flow::flow(a),
        Command::Data(DataCommand::Fetch(a)) => data_fetch(a),
        Command::Data(DataCommand::Info(a)) => data_info(a),
        Command::Train(a) => train_cmd(a),
        Command::Eval(a) => eval_cmd(a),
        Command::Bench(a) => super::bench::bench(a),
        Command::Sensitivity(a) => sensitivity_cmd(a),
        Command::Prune(a) => prune_cmd(a),
        Command::Rtl(a) => rtl_cmd(a),
        Command::Sim(a) => sim_cmd(a),
        Command::Synth(a) => synth_cmd(a),
    }
}

pub(super) fn open(data: &DataArgs) -> Result<Dataset> {
    Dataset::open(&data.dataset, data.data_dir.as_deref())
}

fn data_fetch(a: FetchArgs) -> Result<()> {
    let ds = fetch::known(&a.name).ok_or_else(|| {
        Error::usage(format!(
            "unknown dataset '{}'; fetch knows {}",
            a.name,
            crate::data::resolve::KNOWN.join(", ")
        ))
    })?;
    let dir = match a.dir {
        Some(d) => d,
        None => fetch::default_dir(&a.name)
            .ok_or_else(|| Error::usage("no cache directory (HOME is not set); pass --dir"))?,
    };
    fetch::fetch(&ds, &dir, a.mirror.as_deref(), &mut |line| errln!("{line}"))?;
    outln!("{} is ready in {}", a.name, dir.display());
    Ok(())
}

fn data_info(a: InfoArgs) -> Result<()> {
    let ds = open(&a.data)?;
    let info = ds.info();
    outln!("dataset   {} ({})", info.name, info.dir);
    outln!(
        "images    {}x{}x{} (height x width x channels), {} classes",
        info.height,
        info.width,
        info.channels,
        info.classes
    );
    outln!(
        "train     {} images ({} for training, {} for validation by default)",
        info.train_count,
        info.train_count
            .saturating_sub(crate::data::default_validation(info.train_count)),
        crate::data::default_validation(info.train_count)
    );
    outln!("test      {} images", info.test_count);
    outln!(
        "mean      {:.2} (pixel value, training set)",
        info.mean_pixel
    );
    outln!("class      train   test");
    for c in 0..info.classes {
        outln!(
            "{c:>5}   {:>7} {:>6}",
            info.train_class_counts[c],
            info.test_class_counts[c]
        );
    }
    if let Some(path) = a.json {
        atomic::write_json(&path, &info)?;
    }
    Ok(())
}

/// Slices `set`; keeps a copy of the raw images only when `augment` needs them.
fn sliced(set: &crate::data::LabeledSet, planes: &PlaneSet, augment: bool) -> SlicedSet {
    SlicedSet {
        x: bitslice::slice(&set.images, planes),
        y: set.labels.clone(),
        images: augment.then(|| set.images.clone()),
    }
}

pub(super) fn input_shape(ds: &Dataset) -> InputShape {
    InputShape {
        height: ds.train.images.height,
        width: ds.train.images.width,
        channels: ds.train.images.channels,
    }
}

#[derive(Serialize)]
struct TrainReport<'a> {
    model: String,
    slice_seconds: f64,
    dataset: String,
    planes: Vec<u8>,
    hidden: Vec<usize>,
    size_bits: u64,
    best_epoch: usize,
    val_accuracy: f64,
    test_accuracy: f64,
    train_images_per_second: f64,
    train_images_per_second_median_epoch: f64,
    export_check: ExportCheck,
    history: &'a [train::EpochReport],
}

#[derive(Serialize)]
struct ExportCheck {
    images: usize,
    agree: usize,
}

fn train_cmd(a: TrainArgs) -> Result<()> {
    if a.float {
        return super::float::train_float(a);
    }
    let planes = PlaneSet::new(&a.planes)?;
    let cfg = TrainConfig {
        hidden: a.hidden.clone(),
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr.unwrap_or(0.01),
        lr_final: a.lr_final,
        seed: a.seed,
        augment: a.augment.unwrap_or(0),
        verbose: true,
    };
    train::validate_config(&cfg)?;
    let ds = open(&a.data)?;
    let cfg = TrainConfig {
        augment: a
            .augment
            .unwrap_or_else(|| train::default_augment(&input_shape(&ds))),
        ..cfg
    };
    let split = ds.split(a.validation, a.limit)?;
    let meta = DataMeta {
        dataset: a.data.dataset.clone(),
        input: input_shape(&ds),
        classes: ds.classes,
        planes: planes.clone(),
    };
    train::check_size(meta.input.pixels() * planes.len(), &cfg.hidden, ds.classes)?;
    let slice_start = Instant::now();
    let (train_set, val_set, test_set) = (
        sliced(&split.train, &planes, cfg.augment > 0),
        sliced(&split.val, &planes, false),
        sliced(&split.test, &planes, false),
    );
    let slice_seconds = slice_start.elapsed().as_secs_f64();
    errln!(
        "training {} -> {} -> {} on {} ({} train / {} validation images, planes {planes})",
        meta.input.pixels() * planes.len(),
        a.hidden
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join(" -> "),
        ds.classes,
        a.data.dataset,
        train_set.x.count(),
        val_set.x.count()
    );
    errln!(
        "sliced {} images into {} planes in {:.3} s",
        train_set.x.count() + val_set.x.count() + test_set.x.count(),
        planes.len(),
        slice_seconds
    );
    let mut trained = train::train(&cfg, &meta, &train_set, &val_set)?;
    train::check_learned(&trained, &val_set.x, ds.classes)?;
    let test_eval = reference::evaluate(&trained.model, &test_set.x, &test_set.y);
    trained.model.provenance.test_accuracy = Some(test_eval.accuracy);

    // Check the export: the integer model must predict what the float graph predicts.
    let float_pred = train::float_predictions(&trained.net, &test_set.x);
    let int_pred = reference::Executor::new(&trained.model).classify(&test_set.x);
    let agree = float_pred
        .iter()
        .zip(&int_pred)
        .filter(|(a, b)| a == b)
        .count();

    if agree != int_pred.len() {
        // Nothing is written: an earlier model at the same path stays.
        return Err(Error::CheckFailed(format!(
            "export check failed: the integer model disagrees with the float graph on {} test \
             images; {} was not written",
            int_pred.len() - agree,
            a.output.display()
        )));
    }
    model::save(&trained.model, &a.output)?;
    let m = &trained.model;
    outln!("model        {}", a.output.display());
    outln!(
        "layers       {} -> {} -> {}",
        m.features(),
        join(&m.hidden_widths()),
        m.classes()
    );
    outln!("size         {} bits (weights + thresholds)", m.size_bits());
    outln!("best epoch   {} of {}", m.provenance.best_epoch, a.epochs);
    outln!(
        "validation   {:.2}% (integer model)",
        100.0 * m.provenance.val_accuracy
    );
    outln!(
        "test         {:.2}% (integer model)",
        100.0 * test_eval.accuracy
    );
    outln!(
        "speed        {:.0} training images/s",
        trained.images_per_second
    );
    outln!(
        "export check integer model and float graph agree on {agree}/{} test images",
        int_pred.len()
    );
    if let Some(path) = &a.json {
        atomic::write_json(
            path,
            &TrainReport {
                model: a.output.display().to_string(),
                slice_seconds,
                dataset: a.data.dataset.clone(),
                planes: planes.planes().to_vec(),
                hidden: m.hidden_widths(),
                size_bits: m.size_bits(),
                best_epoch: m.provenance.best_epoch,
                val_accuracy: m.provenance.val_accuracy,
                test_accuracy: test_eval.accuracy,
                train_images_per_second: trained.images_per_second,
                train_images_per_second_median_epoch: trained.median_images_per_second(),
                export_check: ExportCheck {
                    images: int_pred.len(),
                    agree,
                },
                history: &trained.history,
            },
        )?;
    }
    Ok(())
}

pub(super) fn join(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Checks that `ds` has the image shape and classes `model` expects.
pub fn check_compatible(model: &IntModel, model_path: &Path, ds: &Dataset) -> Result<()> {
    let shape = input_shape(ds);
    if shape != model.input {
        return Err(Error::usage(format!(
            "{} expects {}x{}x{} images but dataset '{}' has {}x{}x{}",
            model_path.display(),
            model.input.height,
            model.input.width,
            model.input.channels,
            ds.name,
            shape.height,
            shape.width,
            shape.channels
        )));
    }
    if ds.classes > model.classes() {
        return Err(Error::usage(format!(
            "{} has {} classes but dataset '{}' has {}",
            model_path.display(),
            model.classes(),
            ds.name,
            ds.classes
        )));
    }
    Ok(())
}

#[derive(Serialize)]
struct EvalReport {
    model: String,
    dataset: String,
    planes: Vec<u8>,
    hidden: Vec<usize>,
    size_bits: u64,
    seconds: f64,
    #[serde(flatten)]
    eval: Evaluation,
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    if crate::float::is_float_model(&a.model) {
        return super::float::eval_float(a);
    }
    let m = model::load(&a.model)?;
    let ds = open(&a.data)?;
    check_compatible(&m, &a.model, &ds)?;
    let start = Instant::now();
    let test = bitslice::slice(&ds.test.images, &m.planes);
    let exec = reference::Executor::new(&m);
    let predicted = exec.classify(&test);
    let seconds = start.elapsed().as_secs_f64();
    let eval = Evaluation::new(&predicted, &ds.test.labels, m.classes());
    let scores: Option<Vec<Vec<u32>>> = a.scores.then(|| {
        (0..test.count())
            .map(|i| exec.predict(test.row(i)).scores)
            .collect()
    });
    report_evaluation(
        &eval,
        &predicted,
        scores.as_deref(),
        &ds.test.labels,
        seconds,
        "",
        &a,
    )?;
    if let Some(path) = &a.json {
        atomic::write_json(
            path,
            &EvalReport {
                model: a.model.display().to_string(),
                dataset: a.data.dataset.clone(),
                planes: m.planes.planes().to_vec(),
                hidden: m.hidden_widths(),
                size_bits: m.size_bits(),
                seconds,
                eval,
            },
        )?;
    }
    Ok(())
}

/// Prints an evaluation (accuracy, confusion) and writes `--predictions` when asked.
pub(super) fn report_evaluation(
    eval: &Evaluation,
    predicted: &[usize],
    scores: Option<&[Vec<u32>]>,
    labels: &[u8],
    seconds: f64,
    note: &str,
    a: &EvalArgs,
) -> Result<()> {
    outln!(
        "accuracy {:.2}% ({}/{} test images, {:.3} s{note})",
        100.0 * eval.accuracy,
        eval.correct,
        eval.count,
        seconds
    );
    outln!("{}", confusion_table(eval));
    if let Some(path) = &a.predictions {
        let mut csv = String::from("index,label,predicted");
        if let Some(first) = scores.and_then(|s| s.first()) {
            for c in 0..first.len() {
                let _ = write!(csv, ",score_{c}");
            }
        }
        csv.push('\n');
        for (i, (&p, &l)) in predicted.iter().zip(labels).enumerate() {
            let _ = write!(csv, "{i},{l},{p}");
            if let Some(s) = scores {
                for v in &s[i] {
                    let _ = write!(csv, ",{v}");
                }
            }
            csv.push('\n');
        }
        atomic::write_atomic(path, csv.as_bytes())?;
    }
    Ok(())
}

fn confusion_table(e: &Evaluation) -> String {
    let n = e.confusion.len();
    let mut s = String::from("confusion (rows: label, columns: predicted)\n      ");
    for c in 0..n {
        let _ = write!(s, "{c:>6}");
    }
    for (l, row) in e.confusion.iter().enumerate() {
        let _ = write!(s, "\n{l:>5} ");
        for v in row {
            let _ = write!(s, "{v:>6}");
        }
    }
    s
}

fn sensitivity_cmd(a: SensitivityArgs) -> Result<()> {
    use crate::sensitivity::{self, Method};
    let methods = a
        .method
        .iter()
        .map(|m| m.parse::<Method>())
        .collect::<Result<Vec<_>>>()?;
    if a.seeds == 0 {
        return Err(Error::usage("--seeds must be at least 1"));
    }
    let m = model::load(&a.model)?;
    let ds = open(&a.data)?;
    check_compatible(&m, &a.model, &ds)?;
    let split = ds.split(a.validation, None)?;
    let pb = crate::util::progress::bar(sensitivity::steps(&m, &methods), "sensitivity");
    let report = sensitivity::analyze(&m, &split.val, &split.test, &methods, a.seeds, &|| {
        pb.inc(1)
    });
    pb.finish_and_clear();
    outln!("{}", sensitivity::table(&report));
    if !report.per_plane.is_empty() {
        let rank: Vec<String> = report.ranking().iter().map(|p| p.to_string()).collect();
        outln!("planes by importance: {}", rank.join(", "));
    }
    if let Some(path) = &a.json {
        atomic::write_json(path, &report)?;
    }
    if let Some(path) = &a.plot {
        sensitivity::write_svg(&report, path)?;
    }
    Ok(())
}

fn prune_cmd(a: PruneArgs) -> Result<()> {
    use crate::prune::{self, Context, Event, PruneConfig};
    let cfg = PruneConfig {
        max_drop_pp: a.max_drop,
        epochs: a.epochs,
        ..PruneConfig::default()
    };
    let base = model::load(&a.model)?;
    let ds = open(&a.data)?;
    check_compatible(&base, &a.model, &ds)?;
    let split = ds.split(a.validation, a.limit)?;
    // The baseline's training settings, from its provenance: a bad value names the file and
    // the field, not a flag the user never gave.
    let hyper = &base.provenance.hyper;
    let train_cfg: TrainConfig = if hyper.is_null() {
        TrainConfig::default()
    } else {
        serde_json::from_value(hyper.clone()).map_err(|e| {
            Error::bad_file(
                &a.model,
                format!("\"provenance.hyper\" is not a training configuration ({e})"),
            )
        })?
    };
    train::validate_config(&train_cfg).map_err(|e| {
        Error::bad_file(
            &a.model,
            format!(
                "\"provenance.hyper\" holds training settings that cannot be used: {}",
                e.to_string().replace("--", "")
            ),
        )
    })?;
    let ctx = Context {
        split: &split,
        dataset: a.data.dataset.clone(),
        classes: base.classes(),
        train: train_cfg,
    };
    errln!(
        "pruning {} ({} bits) on {}: budget {} pp of validation accuracy, {} epochs per candidate",
        a.model.display(),
        base.size_bits(),
        a.data.dataset,
        a.max_drop,
        a.epochs
    );
    let mut n = 0;
    let (chosen, report) = prune::prune(&base, &ctx, &cfg, &mut |e| match e {
        Event::Ranked(r) => errln!("sensitivity ranks the planes {r:?} (most important first)"),
        Event::Start { planes, hidden } => {
            n += 1;
            errln!("candidate {n}: planes {planes:?}, widths {hidden:?} ...");
        }
        Event::Done(c) => errln!(
            "candidate {n}: {} bits, validation {:.2}%, {:.1}s -> {}",
            c.summary.size_bits,
            100.0 * c.summary.val_accuracy,
            c.seconds,
            if c.accepted { "accepted" } else { "rejected" }
        ),
    })?;
    model::save(&chosen, &a.output)?;
    outln!("{}", prune::table(&report));
    outln!("model written to {}", a.output.display());
    if let Some(path) = &a.report {
        atomic::write_json(path, &report)?;
    }
    Ok(())
}

/// Weight bits a cycle above which a fully parallel layer is flagged as costly to simulate.
const FULL_LAYER_SIM_BITS: usize = 8192;

fn rtl_cmd(a: RtlArgs) -> Result<()> {
    use crate::rtlgen::{self, fold, RtlConfig};
    rtlgen::ownership::check_replaceable(&a.output, &synth::writes_into_design)?;
    let m = model::load(&a.model)?;
    let pixels = m.input.pixels();
    let (fold, ppb) = match (a.fold.as_deref(), a.target_cycles) {
        (Some("auto"), Some(target)) => {
            let ppb = match a.pixels_per_beat {
                Some(p) => p,
                None => synth::autofold::pixels_per_beat(pixels, target)?.max(8.min(pixels)),
            };
            (
                synth::autofold::fold(&fold::shapes(&m), target, a.pipe)?,
                ppb,
            )
        }
        (Some("auto"), None) => {
            return Err(Error::usage("--fold auto needs --target-cycles N"));
        }
        (_, Some(_)) => {
            return Err(Error::usage("--target-cycles goes with --fold auto"));
        }
        (Some(spec), None) => (
            fold::parse(spec, &m, a.pipe)?,
            a.pixels_per_beat.unwrap_or(8.min(pixels)),
        ),
        (None, None) => (
            fold::default_folding(&m, a.pipe),
            a.pixels_per_beat.unwrap_or(8.min(pixels)),
        ),
    };
    let cfg = RtlConfig {
        fold,
        pixels_per_beat: ppb,
        clock_mhz: a.clock_mhz,
    };
    if let Some(target) = a.target_cycles {
        // The input stream alone may miss the target when --pixels-per-beat is given.
        if ppb > 0 {
            let timing = rtlgen::timing(&m, &cfg.fold, ppb);
            let (_, interval) = reference::cycle::latency_and_interval(&timing);
            if interval > target as u64 {
                return Err(Error::usage(format!(
                    "--target-cycles {target} cannot be met with --pixels-per-beat {ppb}: the design would \
                     take {interval} cycles per image ({} input beats); give more pixels per \
                     beat or leave that flag out",
                    timing.beats
                )));
            }
        }
    }
    let est = synth::estimate::for_model(&m, &cfg.fold);
    let manifest = crate::util::atomic::write_dir_atomic(&a.output, |dir| {
        let mut manifest = rtlgen::generate(&m, &a.model, &cfg, dir)?;
        manifest.constraints = synth::constraints::write(dir, &manifest)?;
        crate::util::atomic::write_json(&dir.join("estimate.json"), &est)?;
        rtlgen::write_manifest(dir, &mut manifest)?;
        Ok(manifest)
    })?;
    outln!(
        "design      {} ({} files: {})",
        a.output.display(),
        manifest.written.len(),
        manifest.written.join(" ")
    );
    outln!(
        "ports       s_axis_tdata {} bits ({} pixels x {} planes), m_axis_tdata {} bits",
        manifest.input.bits_per_beat,
        manifest.input.pixels_per_beat,
        manifest.input.planes.len(),
        manifest.output.width
    );
    for l in &manifest.layers {
        outln!(
            "{:<4}        {:>5} -> {:<4} PE {:<4} SIMD {:<5} PIPE {} {:>6} cycles/image",
            l.name,
            l.inputs,
            l.outputs,
            l.pe,
            l.simd,
            l.pipe,
            l.cycles_per_image
        );
    }
    outln!(
        "timing      initiation interval {} cycles, latency {} cycles",
        manifest.initiation_interval,
        manifest.latency
    );
    outln!(
        "estimate    ~{} LUTs, ~{} flip-flops, {} RAMB18 + {} RAMB36 (Xilinx 7-series; `cbnn synth` measures)",
        est.luts, est.ffs, est.ramb18, est.ramb36
    );
    outln!(
        "constraints {} at {} MHz",
        manifest.constraints.join(", "),
        manifest.clock_mhz
    );
    for l in manifest.layers.iter().filter(|l| l.weights_in_logic) {
        let bits = l.pe * l.simd;
        if bits > FULL_LAYER_SIM_BITS {
            errln!(
                "note: {} is fully parallel with {bits} weight bits a cycle; simulating it may take \
                 Verilator many gigabytes of memory (a 160 x 160 layer took over 18 GB here)",
                l.name
            );
        }
    }
    Ok(())
}

fn synth_cmd(a: SynthArgs) -> Result<()> {
    use crate::rtlgen;
    let target = match a.target {
        SynthTarget::Xilinx => synth::Target::Xilinx,
        SynthTarget::Ice40 => synth::Target::Ice40,
        SynthTarget::Generic => synth::Target::Generic,
    };
    let manifest = rtlgen::load_manifest(&a.dir)?;
    manifest.check_files(&a.dir)?;
    errln!(
        "synthesizing {} for {} with Yosys ...",
        a.dir.display(),
        target.name()
    );
    let rep = synth::synthesize(&a.dir, &manifest, target)?;
    let r = &rep.resources;
    outln!("target      {}", target.name());
    match target {
        synth::Target::Generic => {
            let gates: u64 = r.cells.values().sum::<u64>() - r.ffs;
            outln!("cells       {gates} gates, {} flip-flops", r.ffs);
            if let Some(t) = r.transistors {
                outln!("transistors {t} (Yosys CMOS estimate)");
            }
        }
        _ => {
            let sizes: Vec<String> = r
                .luts_by_size
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            outln!("luts        {} ({})", r.luts, sizes.join(", "));
            outln!("ffs         {}", r.ffs);
            outln!("carry       {}", r.carry);
            let blocks: Vec<String> = r
                .bram_blocks
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect();
            outln!(
                "block ram   {} bits{}",
                r.bram_bits,
                if blocks.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", blocks.join(", "))
                }
            );
            outln!("lut ram     {} bits", r.lutram_bits);
        }
    }
    outln!(
        "timing      {} cycles per image, latency {} cycles, constrained at {} MHz",
        rep.cycles_per_image,
        rep.latency,
        rep.clock_mhz
    );
    if let Some(f) = rep.fmax_mhz {
        outln!(
            "fmax        {f:.1} MHz ({})",
            rep.device.as_deref().unwrap_or("")
        );
    }
    outln!("pnr         {}", rep.place_and_route);
    outln!("yosys       {:.1} s, log {}", rep.yosys_seconds, rep.log);
    if let Some(path) = &a.json {
        crate::util::atomic::write_json(path, &rep)?;
    }
    Ok(())
}

fn sim_cmd(a: SimArgs) -> Result<()> {
    use crate::cosim;
    use crate::reference::cycle::Schedule;
    use crate::rtlgen;
    cosim::verilator_version()?;
    let manifest = rtlgen::load_manifest(&a.dir)?;
    let model_path = a.dir.join(rtlgen::MODEL_FILE);
    let m = model::load(&model_path)?;
    manifest.check_model(&m, &a.dir.join("design.json"))?;
    manifest.check_files(&a.dir)?;
    let timing = rtlgen::timing(&m, &manifest.folding(), manifest.input.pixels_per_beat);
    let ds = open(&a.data)?;
    check_compatible(&m, &model_path, &ds)?;
    let count = a.count.unwrap_or(ds.test.len()).min(ds.test.len());
    if count == 0 {
        return Err(Error::usage("--count must be at least 1"));
    }
    let test = ds.test.slice(0..count);
    errln!(
        "building {} with Verilator (cached after the first time) ...",
        a.dir.display()
    );
    let (exe, build_seconds) = cosim::build(&a.dir, &manifest.files)?;
    errln!(
        "simulating {count} images ({}) ...",
        a.stall_seed
            .map_or("free-running".to_string(), |s| format!("stall seed {s}"))
    );
    let vcd_tmp = a.vcd.as_deref().map(atomic::temporary_for).transpose()?;
    let job = cosim::Job {
        dir: &a.dir,
        model: &m,
        timing: &timing,
        output: &manifest.output,
        bits_per_beat: manifest.input.bits_per_beat,
        images: &test.images,
        labels: &test.labels,
        schedule: Schedule {
            stall_seed: a.stall_seed,
        },
        vcd: vcd_tmp.as_deref(),
    };
    let run = cosim::run(&exe, &job);
    let mut report = match (run, &a.vcd, &vcd_tmp) {
        (Ok(r), Some(path), Some(tmp)) => {
            atomic::commit(tmp, path)?;
            r
        }
        (r, _, tmp) => {
            if let Some(t) = tmp {
                let _ = std::fs::remove_file(t);
            }
            r?
        }
    };
    report.build_seconds = build_seconds;
    outln!(
        "{} of {} output beats match the reference model and the cycle model (class, scores, cycle)",
        report.matched, report.images
    );
    outln!(
        "accuracy {:.2}% ({}/{}), {} cycles, {:.0} images/s, {:.2} M cycles/s",
        100.0 * report.accuracy,
        report.correct,
        report.images,
        report.cycles,
        report.images_per_second,
        report.cycles_per_second / 1e6
    );
    if let Some(path) = &a.json {
        atomic::write_json(path, &report)?;
    }
    Ok(())
}
