//! The flow: every stage from a dataset to a verified, synthesized compact accelerator, with a
//! report.
//!
//! Each stage is a [`Job`], called as a function, whose outputs are files under the run
//! directory (each written atomically by the job). After a stage succeeds, a record
//! `RUN_DIR/stages/NAME.json` keeps its command line and a key: a hash of that command line,
//! of the tool's version and hardware cores, and of the bytes of every file the job reads
//! (its model, its design files, the dataset's files), and the hash of every file it wrote. A
//! stage whose record matches and whose outputs are all still there, unchanged, is skipped
//! (a deleted or edited output makes it run again), so a second run reuses everything and an
//! interrupted run resumes
//! at the stage that was running (it has no record yet). The report is rebuilt from the
//! stages' JSON outputs every time.

pub mod report;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Setting};
use crate::jobs::executor::Executor;
use crate::jobs::prune::PruneJob;
use crate::jobs::ray::RaySettings;
use crate::jobs::rtl::{Folding, RtlJob};
use crate::jobs::sensitivity::SensitivityJob;
use crate::jobs::sim::SimJob;
use crate::jobs::synth::SynthJob;
use crate::jobs::train::TrainJob;
use crate::jobs::{DataSource, Job, Outcome};
use crate::synth::Target;
use crate::train::arch::Arch;
use crate::util::atomic;
use crate::util::hash::{fnv, FNV_START};
use crate::util::output::Plan;
use crate::util::rundir::RunDir;
use crate::util::shell::command_line;

/// What a flow runs on and aims for.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowConfig {
    /// The images.
    pub data: DataSource,
    /// Run directory: every stage's artifacts, the report and the stage records.
    pub output: PathBuf,
    /// The reduced flow for a first look (fewer epochs and images, a slower folding).
    pub quick: bool,
    /// Largest validation accuracy loss the pruning search accepts, percentage points.
    pub max_drop: f64,
    /// Cycles per image both accelerators are folded for [default: 256, quick: 2048; a
    /// convnet: [`CONV_CYCLES_PER_PIXEL`] a pixel, twice that with quick].
    pub target_cycles: Option<usize>,
    /// Synthesis target of both accelerators.
    pub synth_target: Target,
    /// Random seed for training and pruning.
    pub seed: u64,
    /// Hidden layer widths of the baseline (a perceptron, when `arch` is not given).
    pub hidden: Vec<usize>,
    /// The baseline's hidden layers in the architecture notation.
    pub arch: Option<Arch>,
    /// Validation images [default: [`crate::data::default_validation`]].
    pub validation: Option<usize>,
    /// Stages run at once, each as soon as the stages whose files it reads are done (1: one
    /// after another). The results do not depend on it.
    pub jobs: usize,
    /// Run the stages as jobs on this Ray cluster instead of in this process (every stage
    /// that is ready at once). The results do not depend on it.
    pub ray: Option<RaySettings>,
}

/// Stages a flow runs at once by default: the baseline's accelerator (generation,
/// co-simulation, synthesis: single-threaded tools) is built while the pruning search trains.
pub const DEFAULT_FLOW_JOBS: usize = 2;

/// Cycles per image per input pixel both accelerators of a convolutional flow are folded for
/// by default (50176 for 28 x 28 images; twice that with --quick): a convolution's sliding
/// window alone needs about two cycles a pixel, and at this target the MNIST preset's
/// baseline needs some 800 XNOR-popcount bits a cycle (docs/hardware.md).
pub const CONV_CYCLES_PER_PIXEL: usize = 64;

impl FlowConfig {
    /// The cycles per image both accelerators are folded for (a convolutional flow's default
    /// is set by [`FlowConfig::resolved`] from the image size).
    pub fn cycles(&self) -> usize {
        self.target_cycles
            .unwrap_or(if self.quick { 2048 } else { 256 })
    }

    /// Whether the baseline has convolutions or pools.
    pub fn convolutional(&self) -> bool {
        self.arch.as_ref().is_some_and(Arch::is_conv)
    }

    /// The configuration with a convolutional flow's default cycle target made explicit
    /// ([`CONV_CYCLES_PER_PIXEL`] per pixel of the dataset's images, twice that with --quick).
    pub fn resolved(&self) -> Result<FlowConfig> {
        let mut cfg = self.clone();
        if cfg.target_cycles.is_none() && cfg.convolutional() {
            let ds = cfg.data.open()?;
            let pixels = ds.train.images.height * ds.train.images.width;
            let per_pixel = CONV_CYCLES_PER_PIXEL * if cfg.quick { 2 } else { 1 };
            cfg.target_cycles = Some(per_pixel * pixels);
        }
        Ok(cfg)
    }

    /// The configuration with the run directory and a dataset directory named relative to the
    /// current directory, as the stages' jobs name them: what a job writes that names a path (a
    /// design names its model) is then the same wherever the job runs.
    pub fn jobs_paths(&self) -> Result<FlowConfig> {
        let rel = crate::jobs::remote::relative_to_cwd;
        let mut cfg = self.clone();
        cfg.output = rel(&cfg.output)?;
        if Path::new(&cfg.data.dataset).is_dir() {
            cfg.data.dataset = rel(Path::new(&cfg.data.dataset))?.display().to_string();
        }
        if let Some(d) = &cfg.data.data_dir {
            cfg.data.data_dir = Some(rel(d)?);
        }
        Ok(cfg)
    }

    /// The files the flow writes into and reads.
    pub fn plan(&self) -> Plan {
        self.data
            .plan(Plan::new().workdir(Setting::Output, &self.output))
    }
}

/// A stage: a name and its job.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// Its name (also its record's file name).
    pub name: String,
    /// What it does.
    pub job: Job,
}

/// What `RUN_DIR/stages/NAME.json` keeps.
#[derive(Serialize, Deserialize)]
struct Record {
    name: String,
    command: String,
    key: String,
    seconds: f64,
    /// Every file the stage wrote (those in a directory it wrote too), with the hash of its
    /// bytes when the stage ended: the stage is reused only while each is still there,
    /// unchanged. (A record without it, of an earlier version, is never reused.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outputs: Option<std::collections::BTreeMap<PathBuf, String>>,
}

/// Every file at the paths `writes` (a directory's files, at any depth; links are not
/// followed) and the hash of its bytes.
fn output_hashes<'a>(
    writes: impl Iterator<Item = &'a Path>,
) -> Result<std::collections::BTreeMap<PathBuf, String>> {
    fn visit(p: &Path, out: &mut std::collections::BTreeMap<PathBuf, String>) -> Result<()> {
        let meta = std::fs::symlink_metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            for e in std::fs::read_dir(p).map_err(|e| Error::io(p, e))? {
                visit(&e.map_err(|e| Error::io(p, e))?.path(), out)?;
            }
        } else {
            let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
            out.insert(p.to_path_buf(), format!("{:016x}", fnv(FNV_START, &bytes)));
        }
        Ok(())
    }
    let mut out = std::collections::BTreeMap::new();
    for p in writes {
        if std::fs::symlink_metadata(p).is_ok() {
            visit(p, &mut out)?;
        }
    }
    Ok(out)
}

/// Whether every file of `recorded` is still there with the bytes it had.
fn outputs_intact(recorded: &std::collections::BTreeMap<PathBuf, String>) -> bool {
    recorded.iter().all(|(p, h)| {
        std::fs::read(p).is_ok_and(|bytes| format!("{:016x}", fnv(FNV_START, &bytes)) == *h)
    })
}

/// `RUN_DIR/run-log.json`: how the last run went (the report holds only results, so that it
/// does not depend on timings or on whether a run was resumed).
#[derive(Serialize)]
pub struct RunLog {
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
    /// Every stage.
    pub stages: Vec<StageLog>,
    /// Seconds of each part of the pruning search (its sensitivity analysis, each phase's
    /// candidates, a shared training, the fine-tuning), in the order they ran; empty for a
    /// run without a search.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub search_phases: Vec<crate::prune::PhaseSeconds>,
}

/// One stage of a run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StageLog {
    /// Stage name.
    pub name: String,
    /// Its command line.
    pub command: String,
    /// Whether this run reused it.
    pub reused: bool,
    /// Seconds it took when it ran.
    pub seconds: f64,
    /// Why it failed, or was not run (a stage it reads from failed), in a run that went on
    /// past failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

fn stage_key(st: &Stage) -> Result<String> {
    let mut h = fnv(FNV_START, env!("CARGO_PKG_VERSION").as_bytes());
    // Every core: a changed sliding-window unit must not leave a conv design's stages reused.
    for (name, text) in crate::rtlgen::all_cores() {
        h = fnv(fnv(h, name.as_bytes()), text.as_bytes());
    }
    h = fnv(h, crate::cosim::HARNESS.as_bytes());
    for a in st.job.argv() {
        h = fnv(fnv(h, a.as_bytes()), &[0]);
    }
    for p in st.job.plan().reads() {
        let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
        h = fnv(h, &bytes);
    }
    Ok(format!("{h:016x}"))
}

/// Runs `st` in the run directory `run` unless its record says it already ran with the same
/// inputs; `on` gets the outcome of a stage that ran.
pub fn run_stage(run: &Path, st: &Stage, on: &mut dyn FnMut(&Outcome)) -> Result<StageLog> {
    run_stage_on(&Executor::Local, run, st, on)
}

/// [`run_stage`] with `exec` (`on` gets the outcomes of the stages that ran in this process).
pub fn run_stage_on(
    exec: &Executor,
    run: &Path,
    st: &Stage,
    on: &mut dyn FnMut(&Outcome),
) -> Result<StageLog> {
    let rec_path = run.join("stages").join(format!("{}.json", st.name));
    let key = stage_key(st)?;
    let command = command_line(&st.job.argv());
    if let Ok(text) = std::fs::read_to_string(&rec_path) {
        if let Ok(rec) = serde_json::from_str::<Record>(&text) {
            let intact = rec.outputs.as_ref().is_some_and(outputs_intact);
            if rec.key == key && intact && st.job.plan().writes().all(Path::exists) {
                errln!("[{}] reused: finished before with the same inputs", st.name);
                return Ok(StageLog {
                    name: st.name.clone(),
                    command,
                    reused: true,
                    seconds: rec.seconds,
                    failed: None,
                });
            }
        }
    }
    let _ = std::fs::remove_file(&rec_path);
    errln!("[{}]{} {command}", st.name, exec.place());
    let start = Instant::now();
    if let Some(outcome) = exec.run(&st.job)? {
        on(&outcome);
    }
    let seconds = start.elapsed().as_secs_f64();
    let plan = st.job.plan();
    atomic::write_json(
        &rec_path,
        &Record {
            name: st.name.clone(),
            command: command.clone(),
            key,
            seconds,
            outputs: Some(output_hashes(plan.writes())?),
        },
    )?;
    Ok(StageLog {
        name: st.name.clone(),
        command,
        reused: false,
        seconds,
        failed: None,
    })
}

/// For each stage, the earlier stages it waits for: those that write a file it reads (or the
/// directory holding it).
pub fn dependencies(stages: &[Stage]) -> Vec<Vec<usize>> {
    let plans: Vec<_> = stages.iter().map(|s| s.job.plan()).collect();
    (0..stages.len())
        .map(|i| {
            (0..i)
                .filter(|&j| {
                    plans[i]
                        .reads()
                        .any(|r| plans[j].writes().any(|w| r.starts_with(w)))
                })
                .collect()
        })
        .collect()
}

/// What [`run_stages`] does when a stage fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// No new stage starts; the ones running finish (their outputs and records stay valid
    /// for a resumed run) and the first error is returned.
    Stop,
    /// The stages that read from it are not run; every other stage is, and the failures are
    /// in the logs ([`StageLog::failed`]).
    GoOn,
}

/// Runs `stages` (each with [`run_stage_on`] on `exec`), up to `jobs` at once (on Ray, every
/// stage that is ready), each as soon as the stages it depends on are done, earlier stages
/// first. Returns their logs in stage order; a failure ends the run or not as `failure`
/// says.
pub fn run_stages(
    exec: &Executor,
    run: &Path,
    stages: &[Stage],
    jobs: usize,
    failure: OnFailure,
    on: &mut (dyn FnMut(&Outcome) + Send),
) -> Result<Vec<StageLog>> {
    let deps = dependencies(stages);
    let jobs = exec.parallelism(jobs);
    let on = std::sync::Mutex::new(on);
    let mut logs: Vec<Option<StageLog>> = stages.iter().map(|_| None).collect();
    let mut started = vec![false; stages.len()];
    let mut failed: Option<Error> = None;
    let not_run = |st: &Stage, why: String| StageLog {
        name: st.name.clone(),
        command: command_line(&st.job.argv()),
        reused: false,
        seconds: 0.0,
        failed: Some(why),
    };
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<StageLog>)>();
        let mut running = 0;
        loop {
            while failed.is_none() && running < jobs {
                let ready = (0..stages.len())
                    .find(|&i| !started[i] && deps[i].iter().all(|&d| logs[d].is_some()));
                let Some(i) = ready else { break };
                started[i] = true;
                // A stage whose input failed is not run.
                let broken = deps[i]
                    .iter()
                    .find(|&&d| logs[d].as_ref().is_some_and(|l| l.failed.is_some()));
                if let Some(&d) = broken {
                    logs[i] = Some(not_run(
                        &stages[i],
                        format!("not run: {} failed", stages[d].name),
                    ));
                    continue;
                }
                running += 1;
                let (tx, st, on) = (tx.clone(), &stages[i], &on);
                scope.spawn(move || {
                    // A stage that panics is a failed stage, not a runner waiting forever.
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_stage_on(exec, run, st, &mut |o| {
                            (on.lock().unwrap_or_else(|e| e.into_inner()))(o)
                        })
                    }))
                    .unwrap_or_else(|_| {
                        Err(Error::CheckFailed(format!(
                            "stage {} stopped on an internal error",
                            st.name
                        )))
                    });
                    let _ = tx.send((i, r));
                });
            }
            if running == 0 {
                break;
            }
            let (i, r) = rx.recv().expect("a running stage reports");
            running -= 1;
            match (r, failure) {
                (Ok(log), _) => logs[i] = Some(log),
                (Err(e), OnFailure::Stop) => {
                    failed.get_or_insert(e);
                }
                (Err(e), OnFailure::GoOn) => {
                    errln!("[{}] failed: {e}", stages[i].name);
                    logs[i] = Some(not_run(&stages[i], e.to_string()));
                }
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(logs
        .into_iter()
        .map(|l| l.expect("every stage ran"))
        .collect())
}

/// A report's files with the run's log (`run-log.json`) before the last (the JSON report), so
/// that a report file and the log are always of the same run.
pub fn with_run_log(
    mut files: Vec<(&'static str, Vec<u8>)>,
    log: &RunLog,
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let bytes = atomic::json_bytes(Path::new("run-log.json"), log)?;
    files.insert(files.len().saturating_sub(1), ("run-log.json", bytes));
    Ok(files)
}

/// Test images the quick flow of a convnet's sensitivity analysis evaluates.
pub const QUICK_CONV_TEST_IMAGES: usize = 1000;

/// The flow's stages, in order.
pub fn stages(cfg: &FlowConfig) -> Vec<Stage> {
    let run = &cfg.output;
    let f = |name: &str| run.join(name);
    let (base, compact) = (f("base.json"), f("compact.json"));
    let stage = |name: &str, job: Job| Stage {
        name: name.to_string(),
        job,
    };
    // The quick flow of a convnet trains on fewer images for fewer epochs (each of its epochs
    // costs some 20 times a perceptron's); the baseline and the candidates alike.
    let conv = cfg.convolutional();
    let train = TrainJob {
        hidden: cfg.hidden.clone(),
        arch: cfg.arch.clone(),
        seed: cfg.seed,
        validation: cfg.validation,
        json: Some(f("train.json")),
        epochs: match (cfg.quick, conv) {
            (false, _) => TrainJob::new(cfg.data.clone(), base.clone()).epochs,
            (true, false) => 6,
            (true, true) => 3,
        },
        limit: cfg.quick.then_some(if conv { 6000 } else { 12000 }),
        ..TrainJob::new(cfg.data.clone(), base.clone())
    };
    let sensitivity = SensitivityJob {
        json: Some(f("sensitivity.json")),
        plot: Some(f("sensitivity.svg")),
        validation: cfg.validation,
        seeds: if cfg.quick {
            2
        } else {
            crate::jobs::sensitivity::DEFAULT_SEEDS
        },
        // Test accuracy is for information only; a convnet's analysis spends two thirds of
        // its time on the 10000 test images, so the quick flow evaluates the first 1000.
        count: (cfg.quick && conv).then_some(QUICK_CONV_TEST_IMAGES),
        ..SensitivityJob::new(base.clone(), cfg.data.clone())
    };
    let prune = PruneJob {
        max_drop: cfg.max_drop,
        report: Some(f("prune.json")),
        validation: cfg.validation,
        epochs: cfg.quick.then_some(if conv { 3 } else { 6 }),
        limit: cfg.quick.then_some(if conv { 6000 } else { 12000 }),
        // The ranking of the sensitivity stage: the search does not analyse again.
        ranking: Some(f("sensitivity.json")),
        ..PruneJob::new(base.clone(), cfg.data.clone(), compact.clone())
    };
    let mut out = vec![
        stage("train", Job::Train(train)),
        stage("sensitivity", Job::Sensitivity(sensitivity)),
        stage("prune", Job::Prune(prune)),
    ];
    // Per accelerator: generate, co-simulate, synthesize.
    for (label, model) in [("baseline", &base), ("compact", &compact)] {
        let dir = f(&format!("rtl-{label}"));
        out.push(stage(
            &format!("rtl-{label}"),
            Job::Rtl(RtlJob {
                fold: Folding::Auto {
                    target_cycles: cfg.cycles(),
                },
                ..RtlJob::new(model.clone(), dir.clone())
            }),
        ));
        out.push(stage(
            &format!("sim-{label}"),
            Job::Sim(SimJob {
                count: Some(match (cfg.quick, conv) {
                    (false, _) => 10000,
                    (true, false) => 500,
                    (true, true) => 100,
                }),
                stall_seed: Some(1),
                json: Some(f(&format!("sim-{label}.json"))),
                ..SimJob::new(dir.clone(), cfg.data.clone())
            }),
        ));
        out.push(stage(
            &format!("synth-{label}"),
            Job::Synth(SynthJob {
                dir,
                target: cfg.synth_target,
                json: Some(f(&format!("synth-{label}.json"))),
            }),
        ));
    }
    out
}

/// Runs the flow; `on` gets the outcome of every stage that runs (reused stages have none).
pub fn run(cfg: &FlowConfig, on: &mut (dyn FnMut(&Outcome) + Send)) -> Result<report::FlowReport> {
    cfg.plan().check()?;
    let cfg = &cfg.resolved()?.jobs_paths()?;
    let run = &cfg.output;
    let dir = RunDir::open(run, "flow")?;
    atomic::remove_stale_in(run);
    atomic::remove_stale_in(&run.join("stages"));
    let start = Instant::now();
    let exec = Executor::new(cfg.ray.as_ref())?;
    let logs = run_stages(&exec, run, &stages(cfg), cfg.jobs, OnFailure::Stop, on)?;
    let rep = report::build(run, cfg, &logs)?;
    let log = RunLog {
        seconds: start.elapsed().as_secs_f64(),
        stages: logs,
        search_phases: report::search_phases(run)?,
    };
    dir.write_report(&with_run_log(report::files(&rep)?, &log)?)?;
    errln!(
        "flow finished in {:.0} s: {} and {}",
        start.elapsed().as_secs_f64(),
        run.join("report.md").display(),
        run.join("report.json").display()
    );
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::eval::EvalJob;

    fn eval(model: &Path, json: &Path) -> Job {
        Job::Eval(EvalJob {
            model: model.to_path_buf(),
            data: DataSource::named("mnist"),
            predictions: None,
            scores: false,
            json: Some(json.to_path_buf()),
        })
    }

    /// Only convolutions and pools make a flow convolutional (its cycle target per pixel, its
    /// quick settings): a logic-mapped network has no dense widths either, but is no convnet.
    #[test]
    fn only_convolutions_and_pools_make_a_flow_convolutional() {
        let cfg = |arch: Option<&str>| FlowConfig {
            data: DataSource::named("mnist"),
            output: "run".into(),
            quick: true,
            max_drop: 1.0,
            target_cycles: None,
            synth_target: Target::Xilinx,
            seed: 1,
            hidden: vec![256, 256, 256],
            arch: arch.map(|a| a.parse().unwrap()),
            validation: None,
            jobs: 1,
            ray: None,
        };
        for (arch, conv) in [
            (None, false),
            (Some("d64,d32"), false),
            (Some("lut"), false),
            (Some("l100f4"), false),
            (Some("conv"), true),
            (Some("c8,d16"), true),
            (Some("p2,d16"), true),
        ] {
            assert_eq!(cfg(arch).convolutional(), conv, "{arch:?}");
        }
    }

    #[test]
    fn a_failed_stage_stops_the_run_or_only_what_reads_from_it() {
        let run = std::env::temp_dir().join(format!("cbnn-stages-{}", std::process::id()));
        std::fs::create_dir_all(run.join("stages")).unwrap();
        let f = |n: &str| run.join(n);
        // `a` fails (no model); `b` reads what `a` writes; `c` fails on its own.
        let stages = vec![
            Stage {
                name: "a".into(),
                job: eval(&f("absent-a.json"), &f("a.json")),
            },
            Stage {
                name: "b".into(),
                job: eval(&f("a.json"), &f("b.json")),
            },
            Stage {
                name: "c".into(),
                job: eval(&f("absent-c.json"), &f("c.json")),
            },
        ];
        let logs = run_stages(
            &Executor::Local,
            &run,
            &stages,
            1,
            OnFailure::GoOn,
            &mut |_| {},
        )
        .unwrap();
        let failed: Vec<&str> = logs.iter().map(|l| l.failed.as_deref().unwrap()).collect();
        assert!(failed[0].contains("absent-a.json"), "{failed:?}");
        assert_eq!(failed[1], "not run: a failed");
        assert!(failed[2].contains("absent-c.json"), "{failed:?}");
        let e = run_stages(
            &Executor::Local,
            &run,
            &stages,
            1,
            OnFailure::Stop,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("absent-a.json"), "{e}");
        std::fs::remove_dir_all(&run).unwrap();
    }
}
