//! Command implementations: flags into jobs, jobs run by the library, outcomes printed.

use std::fmt::Write as _;

use super::{
    BenchArgs, Cli, Command, DataArgs, DataCommand, ExecutorArg, ExportFormat, FetchArgs, FlowArgs,
    InfoArgs, PruneArgs, RayArgs, RetrainArgs, RtlArgs, SensitivityArgs, SynthTarget,
    TestbenchArgs, TrainArgs,
};
use crate::data::fetch;
use crate::error::{Error, Result, Setting};
use crate::flow::FlowConfig;
use crate::jobs::eval::{EvalJob, EvalOutcome};
use crate::jobs::export::{ExportJob, ExportOutcome};
use crate::jobs::import::{ImportJob, ImportOutcome};
use crate::jobs::prune::{PruneJob, PruneOutcome};
use crate::jobs::ray::RaySettings;
use crate::jobs::retrain::RetrainJob;
use crate::jobs::rtl::{Folding, RtlJob, RtlOutcome};
use crate::jobs::sensitivity::SensitivityJob;
use crate::jobs::sim::SimJob;
use crate::jobs::synth::SynthJob;
use crate::jobs::testbench::{TestbenchJob, TestbenchOutcome};
use crate::jobs::train::{join, TrainJob, TrainOutcome};
use crate::jobs::{DataSource, Job, Outcome};
use crate::reference::Evaluation;
use crate::synth;
use crate::util::atomic;
use crate::util::output::Plan;

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

/// The flag that sets `s`.
pub fn flag(s: Setting) -> &'static str {
    use Setting::*;
    match s {
        Hidden => "--hidden",
        Arch => "--arch",
        Planes => "--planes",
        Epochs => "--epochs",
        Batch => "--batch",
        Lr => "--lr",
        LrFinal => "--lr-final",
        Augment => "--augment",
        Limit => "--limit",
        Validation => "--validation",
        Seeds => "--seeds",
        Methods => "--method",
        MaxDrop => "--max-drop",
        NoiseMargin => "--noise-margin",
        Fold => "--fold",
        Pipe => "--pipe",
        TargetCycles => "--target-cycles",
        PixelsPerBeat => "--pixels-per-beat",
        BitsPerBeat => "--bits-per-beat",
        ClockMhz => "--clock-mhz",
        Count => "--count",
        Mirror => "--mirror",
        Repeats => "--repeats",
        BatchSizes => "--batch",
        Output => "-o",
        Json => "--json",
        Plot => "--plot",
        Report => "--report",
        Predictions => "--predictions",
        Vcd => "--vcd",
        Work => "--work",
        Float => "--float",
        Input => "--input",
    }
}

/// An error as the command line words it: settings by their flags.
pub fn describe(e: &Error) -> String {
    e.render(flag)
}

fn data(a: &DataArgs) -> DataSource {
    DataSource {
        dataset: a.dataset.clone(),
        data_dir: a.data_dir.clone(),
    }
}

fn target(t: SynthTarget) -> synth::Target {
    match t {
        SynthTarget::Xilinx => synth::Target::Xilinx,
        SynthTarget::Ice40 => synth::Target::Ice40,
        SynthTarget::Generic => synth::Target::Generic,
    }
}

/// The job a command line asks for (commands that are not jobs: `None`).
pub fn job(command: &Command) -> Result<Option<Job>> {
    Ok(Some(match command {
        Command::Train(a) => Job::Train(train_job(a)?),
        Command::Eval(a) => Job::Eval(EvalJob {
            model: a.model.clone(),
            data: data(&a.data),
            predictions: a.predictions.clone(),
            scores: a.scores,
            json: a.json.clone(),
        }),
        Command::Sensitivity(a) => Job::Sensitivity(sensitivity_job(a)?),
        Command::Prune(a) => Job::Prune(prune_job(a)?),
        Command::Retrain(a) => Job::Retrain(retrain_job(a)?),
        Command::Rtl(a) => Job::Rtl(rtl_job(a)?),
        Command::Sim(a) => Job::Sim(SimJob {
            dir: a.dir.clone(),
            data: data(&a.data),
            count: a.count,
            stall_seed: a.stall_seed,
            vcd: a.vcd.clone(),
            json: a.json.clone(),
        }),
        Command::Synth(a) => Job::Synth(SynthJob {
            dir: a.dir.clone(),
            target: target(a.target),
            json: a.json.clone(),
        }),
        Command::Testbench(a) => Job::Testbench(testbench_job(a)),
        Command::Export(a) => Job::Export(ExportJob {
            model: a.model.clone(),
            format: match a.format {
                ExportFormat::Qonnx => crate::interop::onnx::Format::Qonnx,
                ExportFormat::FinnOnnx => crate::interop::onnx::Format::FinnOnnx,
            },
            batch: a.batch,
            output: a.output.clone(),
        }),
        Command::Import(a) => Job::Import(ImportJob {
            onnx: a.onnx.clone(),
            planes: a.planes.clone(),
            input: a.input.clone(),
            output: a.output.clone(),
        }),
        Command::Data(_) | Command::Flow(_) | Command::Sweep(_) | Command::Bench(_) => {
            return Ok(None)
        }
    }))
}

fn testbench_job(a: &TestbenchArgs) -> TestbenchJob {
    TestbenchJob {
        dir: a.dir.clone(),
        data: data(&a.data),
        count: a.count,
        stall_seed: a.stall_seed,
    }
}

fn train_job(a: &TrainArgs) -> Result<TrainJob> {
    Ok(TrainJob {
        data: data(&a.data),
        hidden: a.hidden.clone(),
        arch: a.arch.as_deref().map(str::parse).transpose()?,
        planes: a.planes.clone(),
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        lr_final: a.lr_final,
        seed: a.seed,
        augment: a.augment,
        limit: a.limit,
        validation: a.validation,
        output: a.output.clone(),
        json: a.json.clone(),
        float: a.float,
    })
}

fn sensitivity_job(a: &SensitivityArgs) -> Result<SensitivityJob> {
    Ok(SensitivityJob {
        model: a.model.clone(),
        data: data(&a.data),
        methods: a
            .method
            .iter()
            .map(|m| m.parse())
            .collect::<Result<Vec<_>>>()?,
        seeds: a.seeds,
        validation: a.validation,
        count: a.count,
        json: a.json.clone(),
        plot: a.plot.clone(),
    })
}

/// The Ray cluster `--executor` and the `--ray-*` flags ask for, if any.
fn ray_settings(executor: ExecutorArg, ray: &RayArgs) -> Result<Option<RaySettings>> {
    Ok(match (executor, &ray.ray_address) {
        (ExecutorArg::Local, None) => None,
        (ExecutorArg::Local, Some(_)) => {
            return Err(Error::usage(
                "--ray-address is for --executor ray; the local executor runs on this machine",
            ))
        }
        (ExecutorArg::Ray, None) => {
            return Err(Error::usage(
                "--executor ray needs --ray-address HOST:PORT, or --ray-address local for a throwaway cluster on this machine",
            ))
        }
        (ExecutorArg::Ray, Some(address)) => Some(RaySettings {
            address: address.clone(),
            workers: ray.ray_workers,
            cpus_per_job: ray.ray_cpus,
        }),
    })
}

fn prune_job(a: &PruneArgs) -> Result<PruneJob> {
    let ray = ray_settings(a.executor, &a.ray)?;
    if ray.is_some() && a.jobs != 1 {
        return Err(Error::usage(
            "--jobs is for the local executor; on Ray the cluster's CPUs decide how many candidates run at once",
        ));
    }
    Ok(PruneJob {
        model: a.model.clone(),
        data: data(&a.data),
        max_drop: a.max_drop,
        noise_margin: a.noise_margin,
        epochs: a.epochs,
        from_scratch: a.from_scratch,
        limit: a.limit,
        validation: a.validation,
        output: a.output.clone(),
        report: a.report.clone(),
        ranking: a.ranking.clone(),
        jobs: a.jobs,
        ray,
        shared: a.search == crate::cli::SearchArg::Shared,
        distill: distill(&a.distill),
    })
}

fn retrain_job(a: &RetrainArgs) -> Result<RetrainJob> {
    Ok(RetrainJob {
        baseline: a.model.clone(),
        data: data(&a.data),
        planes: a.planes.clone(),
        arch: a.arch.as_deref().map(str::parse).transpose()?,
        epochs: a.epochs,
        limit: a.limit,
        validation: a.validation,
        warm: a.warm,
        output: a.output.clone(),
        distill: distill(&a.distill),
    })
}

fn distill(a: &crate::cli::DistillArgs) -> crate::jobs::distill::Distill {
    crate::jobs::distill::Distill {
        teacher: a.teacher.clone(),
        weight: a.distill,
        temperature: a.temperature,
    }
}

fn rtl_job(a: &RtlArgs) -> Result<RtlJob> {
    let fold = match (a.fold.as_deref(), a.target_cycles) {
        (Some("auto"), Some(target_cycles)) => Folding::Auto { target_cycles },
        (Some("auto"), None) => {
            return Err(Error::usage("--fold auto needs --target-cycles N"));
        }
        (_, Some(_)) => return Err(Error::usage("--target-cycles goes with --fold auto")),
        (Some(spec), None) => Folding::Spec(spec.to_string()),
        (None, None) => Folding::Default,
    };
    Ok(RtlJob {
        model: a.model.clone(),
        output: a.output.clone(),
        fold,
        clock_mhz: a.clock_mhz,
        pipe: a.pipe,
        pixels_per_beat: a.pixels_per_beat,
        bits_per_beat: a.bits_per_beat,
    })
}

fn flow_config(a: &FlowArgs) -> Result<FlowConfig> {
    Ok(FlowConfig {
        data: data(&a.data),
        output: a.output.clone(),
        quick: a.quick,
        max_drop: a.max_drop,
        target_cycles: a.target_cycles,
        synth_target: target(a.synth_target),
        seed: a.seed,
        hidden: a.hidden.clone(),
        arch: a.arch.as_deref().map(str::parse).transpose()?,
        validation: a.validation,
        jobs: a.jobs,
        ray: ray_settings(a.run_on.executor, &a.run_on.ray)?,
    })
}

fn bench_config(a: &BenchArgs) -> crate::bench::harness::BenchConfig {
    crate::bench::harness::BenchConfig {
        data: data(&a.data),
        baseline: a.baseline.clone(),
        compact: a.compact.clone(),
        float: a.float.clone(),
        work: a.work.clone(),
        repeats: a.repeats,
        batch: a.batch.clone(),
        train_images: a.train_images,
        sim_images: a.sim_images,
        validation: a.validation,
        json: a.json.clone(),
    }
}

/// Runs one command (the thread pool already set up).
pub fn dispatch(command: Command) -> Result<()> {
    if let Some(job) = job(&command)? {
        let outcome = job.run()?;
        print(&outcome);
        return Ok(());
    }
    match command {
        Command::Flow(a) => {
            crate::flow::run(&flow_config(&a)?, &mut print)?;
            Ok(())
        }
        Command::Sweep(a) => {
            let cfg = crate::sweep::SweepConfig {
                spec: a.spec.clone(),
                output: a.output.clone(),
                jobs: a.jobs,
                ray: ray_settings(a.run_on.executor, &a.run_on.ray)?,
            };
            let report = crate::sweep::run(&cfg)?;
            outln!(
                "{}",
                crate::sweep::report::markdown(&report).trim_end_matches('\n')
            );
            Ok(())
        }
        Command::Bench(a) => {
            let report = crate::bench::harness::bench(&bench_config(&a))?;
            outln!(
                "{}",
                crate::bench::harness::table(&report).trim_end_matches('\n')
            );
            Ok(())
        }
        Command::Data(DataCommand::Fetch(a)) => data_fetch(a),
        Command::Data(DataCommand::Info(a)) => data_info(a),
        _ => unreachable!("every other command is a job"),
    }
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
    let source = data(&a.data);
    source
        .plan(Plan::new().file(Setting::Json, a.json.as_deref()))
        .check()?;
    let ds = source.open()?;
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

/// Prints what a job found on standard output.
pub fn print(outcome: &Outcome) {
    match outcome {
        Outcome::Train(t) => print_train(t),
        Outcome::Eval(e) => print_eval(e),
        Outcome::Sensitivity(r) => {
            outln!("{}", crate::sensitivity::table(r));
            if !r.per_plane.is_empty() {
                let rank: Vec<String> = r.ranking().iter().map(|p| p.to_string()).collect();
                outln!("planes by importance: {}", rank.join(", "));
            }
        }
        Outcome::Prune(p) => print_prune(p),
        Outcome::Retrain(m) => {
            outln!("layers      {}", m.arch());
            outln!("planes      {:?}", m.planes.planes());
            outln!("size        {} bits (weights + thresholds)", m.size_bits());
            outln!(
                "validation  {:.2}% (integer model, epoch {} of {})",
                100.0 * m.provenance.val_accuracy,
                m.provenance.best_epoch,
                m.provenance.epochs
            );
        }
        Outcome::Rtl(r) => print_rtl(r),
        Outcome::Sim(r) => {
            outln!(
                "{} of {} output beats match the reference model and the cycle model (class, scores, cycle)",
                r.matched, r.images
            );
            outln!(
                "accuracy {:.2}% ({}/{}), {} cycles, {:.0} images/s, {:.2} M cycles/s",
                100.0 * r.accuracy,
                r.correct,
                r.images,
                r.cycles,
                r.images_per_second,
                r.cycles_per_second / 1e6
            );
            if let Some(ii) = r.measured_interval {
                outln!("initiation interval {ii} cycles (simulated, free-running)");
            }
            if let Some(l) = r.measured_latency {
                outln!(
                    "latency {l} cycles (simulated, free-running: first input handshake to \
                     output handshake)"
                );
            }
        }
        Outcome::Synth(r) => print_synth(r),
        Outcome::Testbench(t) => print_testbench(t),
        Outcome::Export(e) => print_export(e),
        Outcome::Import(i) => print_import(i),
    }
}

fn print_import(i: &ImportOutcome) {
    let planes: Vec<String> = i.planes.iter().map(|p| p.to_string()).collect();
    outln!("imported    {} ({} nodes)", i.output.display(), i.nodes);
    outln!("layers      {}", i.arch);
    outln!(
        "input       {}x{}x{}, planes {} ({})",
        i.input.height,
        i.input.width,
        i.input.channels,
        planes.join(","),
        match i.shape_source {
            "inferred" => "inferred from the feature count; --input and --planes set them",
            "metadata" => "from the graph's cbnn metadata",
            _ => "as given",
        }
    );
    outln!("size        {} bits (weights + thresholds)", i.size_bits);
}

fn print_export(e: &ExportOutcome) {
    outln!(
        "exported    {} ({}, {} layers, {} bytes)",
        e.output.display(),
        e.format.name(),
        e.layers,
        e.bytes
    );
}

fn print_testbench(t: &TestbenchOutcome) {
    let s = &t.settings;
    outln!(
        "testbench   {} ({})",
        t.dir.display(),
        crate::cosim::testbench::FILES.join(" ")
    );
    outln!(
        "drives      {} test images ({}), the last output at cycle {}; expected accuracy {:.2}%",
        s.images,
        s.stall_seed
            .map_or("free-running".to_string(), |seed| format!(
                "stall seed {seed}"
            )),
        s.last_cycle,
        100.0 * s.expected_accuracy
    );
    let design = t.dir.parent().unwrap_or(&t.dir).display();
    outln!("icarus      cd {design} && iverilog -g2005 -o testbench/tb.vvp -f filelist.f testbench/tb_cbnn.v && vvp -n testbench/tb.vvp");
    outln!("verilator   cd {design} && verilator --binary -Wno-fatal --Mdir testbench/obj_dir --top-module tb_cbnn -f filelist.f testbench/tb_cbnn.v && testbench/obj_dir/Vtb_cbnn");
    outln!(
        "cocotb      cd {design} && make -f testbench/Makefile (cocotb 2.x; SIM=icarus by default)"
    );
}

fn print_train(t: &TrainOutcome) {
    match t {
        TrainOutcome::Binary(r) => {
            outln!("model        {}", r.model);
            let layers = if crate::train::arch::is_perceptron(&r.arch) {
                join(&r.hidden)
            } else {
                r.arch.replace(',', " -> ")
            };
            outln!("layers       {} -> {layers} -> {}", r.features, r.classes);
            // A logic-mapped network's bits are its truth tables.
            let what = match r.arch.parse::<crate::train::arch::Arch>() {
                Ok(a) if a.is_logic_mapped() => "truth tables",
                _ => "weights + thresholds",
            };
            outln!("size         {} bits ({what})", r.size_bits);
            outln!("best epoch   {} of {}", r.best_epoch, r.epochs);
            outln!(
                "validation   {:.2}% (integer model)",
                100.0 * r.val_accuracy
            );
            outln!(
                "test         {:.2}% (integer model)",
                100.0 * r.test_accuracy
            );
            outln!(
                "speed        {:.0} training images/s",
                r.train_images_per_second
            );
            outln!(
                "export check integer model and float graph agree on {}/{} test images",
                r.export_check.agree,
                r.export_check.images
            );
        }
        TrainOutcome::Float(r) => {
            outln!("model        {} (full precision)", r.model);
            outln!(
                "layers       {} -> {} -> {}",
                r.inputs,
                if crate::train::arch::is_perceptron(&r.arch) {
                    join(&r.hidden)
                } else {
                    r.arch.replace(',', " -> ")
                },
                r.classes
            );
            outln!(
                "size         {} bits (float32 weights + biases)",
                r.size_bits
            );
            outln!("best epoch   {} of {}", r.best_epoch, r.epochs);
            outln!("validation   {:.2}%", 100.0 * r.val_accuracy);
            outln!("test         {:.2}%", 100.0 * r.test_accuracy);
            outln!(
                "speed        {:.0} training images/s",
                r.train_images_per_second
            );
        }
    }
}

fn print_eval(e: &EvalOutcome) {
    let note = if e.kind == Some("float") {
        ", full precision"
    } else {
        ""
    };
    outln!(
        "accuracy {:.2}% ({}/{} test images, {:.3} s{note})",
        100.0 * e.eval.accuracy,
        e.eval.correct,
        e.eval.count,
        e.seconds
    );
    outln!("{}", confusion_table(&e.eval));
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

fn print_prune(p: &PruneOutcome) {
    outln!("{}", crate::prune::table(&p.report));
    outln!("model written to {}", p.output.display());
}

fn print_rtl(r: &RtlOutcome) {
    let (manifest, est) = (&r.manifest, &r.estimate);
    outln!(
        "design      {} ({} files: {})",
        r.dir.display(),
        manifest.written.len(),
        manifest.written.join(" ")
    );
    match &manifest.input.reads {
        Some(reads) if manifest.input.bits_per_beat < reads.len() => outln!(
            "ports       s_axis_tdata {} bits ({} beats an image of the {} of {} input bits the first layer reads, deserialized), m_axis_tdata {} bits",
            manifest.input.bits_per_beat,
            reads.len().div_ceil(manifest.input.bits_per_beat),
            reads.len(),
            manifest.input.features,
            manifest.output.width
        ),
        Some(reads) => outln!(
            "ports       s_axis_tdata {} bits (the {} of {} input bits the first layer reads), m_axis_tdata {} bits",
            manifest.input.bits_per_beat,
            reads.len(),
            manifest.input.features,
            manifest.output.width
        ),
        None => outln!(
            "ports       s_axis_tdata {} bits ({} pixels x {} planes), m_axis_tdata {} bits",
            manifest.input.bits_per_beat,
            manifest.input.pixels_per_beat,
            manifest.input.planes.len(),
            manifest.output.width
        ),
    }
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
    // What the tools are expected to need (the predictions `cbnn sim` and `cbnn synth` refuse
    // a design by), said here when it is a lot or more than they may use.
    let budget =
        crate::util::process::checked_budget(crate::util::process::memory_budget().ok().flatten());
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let bits = crate::cosim::datapath_bits(manifest);
    let sim_need = crate::cosim::verilator_memory_bound(bits);
    if sim_need >= 2 << 30 {
        errln!(
            "note: {} bits counted a cycle (PE x SIMD over the layers): Verilator is expected to need up to {:.1} GiB to build the simulator{}",
            bits,
            gib(sim_need),
            match budget {
                Some(b) if sim_need > b => format!(
                    ", more than the {:.1} GiB cbnn lets it use: `cbnn sim` will refuse it",
                    gib(b)
                ),
                _ => String::new(),
            }
        );
    }
    let synth_need = crate::synth::yosys_memory_bound(est.luts);
    if let Some(b) = budget.filter(|&b| synth_need > b) {
        errln!(
            "note: for ~{} estimated LUTs Yosys is expected to need up to {:.1} GiB, more than the {:.1} GiB cbnn lets it use: `cbnn synth` will refuse it",
            est.luts,
            gib(synth_need),
            gib(b)
        );
    }
}

fn print_synth(rep: &synth::SynthReport) {
    let r = &rep.resources;
    outln!("target      {}", rep.target.name());
    match rep.target {
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
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Every job the flow and the bench build runs, as a command line, the same job: the line
    /// the report shows (and the stage key hashes) is the job itself.
    #[test]
    fn a_jobs_command_line_parses_back_to_the_same_job() {
        for (quick, arch) in [
            (false, None),
            (true, None),
            (false, Some("c8,p2,d16")),
            (true, Some("conv")),
        ] {
            let cfg = FlowConfig {
                data: DataSource {
                    dataset: "some dir/with 'quotes'".into(),
                    data_dir: Some("/data".into()),
                },
                output: "run dir".into(),
                quick,
                max_drop: 0.5,
                target_cycles: arch.map(|_| 9000),
                synth_target: synth::Target::Ice40,
                seed: 7,
                hidden: if arch.is_some() {
                    TrainJob::new(DataSource::named("x"), "x".into()).hidden
                } else {
                    vec![64, 32]
                },
                arch: arch.map(|a| a.parse().unwrap()),
                validation: Some(1000),
                jobs: 2,
                ray: None,
            };
            // The stages wait for the files they read: sensitivity and prune for the
            // baseline, the baseline's accelerator for nothing but the baseline, the
            // compact one for the search.
            let stages = crate::flow::stages(&cfg);
            let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
            let deps: Vec<Vec<&str>> = crate::flow::dependencies(&stages)
                .iter()
                .map(|d| d.iter().map(|&j| names[j]).collect())
                .collect();
            let of = |n: &str| deps[names.iter().position(|&m| m == n).unwrap()].clone();
            assert_eq!(of("train"), Vec::<&str>::new());
            assert_eq!(of("sensitivity"), ["train"]);
            assert_eq!(of("prune"), ["train", "sensitivity"]);
            assert_eq!(of("rtl-baseline"), ["train"]);
            assert_eq!(of("sim-baseline"), ["rtl-baseline"]);
            assert_eq!(of("synth-baseline"), ["rtl-baseline"]);
            assert_eq!(of("rtl-compact"), ["prune"]);
            assert_eq!(of("sim-compact"), ["rtl-compact"]);
            assert_eq!(of("synth-compact"), ["rtl-compact"]);
            for st in crate::flow::stages(&cfg) {
                let argv = st.job.argv();
                let cli = Cli::try_parse_from(std::iter::once("cbnn".to_string()).chain(argv))
                    .unwrap_or_else(|e| panic!("{}: {e}", st.name));
                assert_eq!(
                    job(&cli.command).unwrap(),
                    Some(st.job.clone()),
                    "{}",
                    st.name
                );
            }
        }
        let float = Job::Train(TrainJob {
            float: true,
            hidden: vec![10],
            validation: Some(3),
            ..TrainJob::new(DataSource::named("mnist"), "f.json".into())
        });
        let cli =
            Cli::try_parse_from(std::iter::once("cbnn".to_string()).chain(float.argv())).unwrap();
        assert_eq!(job(&cli.command).unwrap(), Some(float));
        // The search by evaluation and distillation, on prune and on one candidate's retrain.
        let distill = crate::jobs::distill::Distill {
            teacher: Some("the teacher.json".into()),
            weight: 0.7,
            temperature: 3.0,
        };
        let prune = Job::Prune(PruneJob {
            shared: true,
            distill: distill.clone(),
            ..PruneJob::new("m.json".into(), DataSource::named("mnist"), "c.json".into())
        });
        let retrain = Job::Retrain(RetrainJob {
            baseline: "m.json".into(),
            data: DataSource::named("mnist"),
            planes: vec![7, 5],
            arch: None,
            epochs: Some(3),
            limit: None,
            validation: None,
            warm: false,
            output: "r.json".into(),
            distill,
        });
        for j in [prune, retrain] {
            let cli =
                Cli::try_parse_from(std::iter::once("cbnn".to_string()).chain(j.argv())).unwrap();
            assert_eq!(job(&cli.command).unwrap(), Some(j));
        }
    }

    /// A command line with no settings gives the job with the library's defaults.
    #[test]
    fn the_flags_defaults_are_the_jobs_defaults() {
        let parse = |line: &str| {
            let cli = Cli::try_parse_from(line.split(' ')).unwrap();
            job(&cli.command).unwrap().unwrap()
        };
        let d = DataSource::named("fashion-mnist");
        assert_eq!(
            parse("cbnn train -o m.json"),
            Job::Train(TrainJob::new(d.clone(), "m.json".into()))
        );
        assert_eq!(
            parse("cbnn sensitivity m.json"),
            Job::Sensitivity(SensitivityJob::new("m.json".into(), d.clone()))
        );
        assert_eq!(
            parse("cbnn prune m.json -o c.json"),
            Job::Prune(PruneJob::new("m.json".into(), d.clone(), "c.json".into()))
        );
        assert_eq!(
            parse("cbnn rtl m.json -o out"),
            Job::Rtl(RtlJob::new("m.json".into(), "out".into()))
        );
        assert_eq!(
            parse("cbnn sim out"),
            Job::Sim(SimJob::new("out".into(), d))
        );
    }

    /// Library messages name settings; the command line words each with its flag.
    #[test]
    fn settings_are_worded_as_flags() {
        let e = crate::train::validate_config(&crate::train::TrainConfig {
            epochs: 0,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "epochs must be between 1 and 100000");
        assert_eq!(describe(&e), "--epochs must be between 1 and 100000");
    }
}
