//! The sweep: accelerators of several models under several foldings, each synthesized for
//! several targets (and co-simulated, if asked), with a report of every design point and its
//! Pareto front of accuracy, LUTs and cycles per image.
//!
//! A small TOML file says what to build (docs/sweep.md):
//!
//! ```toml
//! dataset = "fashion-mnist"          # a name, or a directory (relative to this file)
//! targets = ["xilinx"]               # synthesis targets: xilinx, ice40, generic
//! cycles = [1024, 4096]              # `--fold auto --target-cycles N` design points
//! foldings = ["default"]             # `--fold SPEC` design points ("default": rtl's default)
//! sim_images = 0                     # co-simulate the first N test images of each design
//!
//! [models]                           # name = model file (relative to this file)
//! baseline = "runs/a/base.json"
//! compact = "runs/a/compact.json"
//! ```
//!
//! Every unit of work is a [`Job`] run as a stage of [`crate::flow`]: the same records, so a
//! killed sweep resumes from its finished jobs, the same executors (this process or a Ray
//! cluster) and the same determinism (the report is rebuilt from the jobs' files and holds no
//! timing). A design point whose folding cannot be built (a cycle target no folding meets, a
//! specification that names layers the model does not have) is reported with the reason and
//! builds nothing.

pub mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;

use crate::error::{Error, Result, Setting};
use crate::flow::{self, Stage};
use crate::jobs::eval::EvalJob;
use crate::jobs::executor::Executor;
use crate::jobs::ray::RaySettings;
use crate::jobs::rtl::{self, Folding, RtlJob};
use crate::jobs::sim::SimJob;
use crate::jobs::synth::SynthJob;
use crate::jobs::{DataSource, Job};
use crate::model::IntModel;
use crate::synth::Target;
use crate::util::atomic;
use crate::util::output::Plan;
use crate::util::rundir::RunDir;

/// The spec file as written.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    dataset: Option<String>,
    data_dir: Option<PathBuf>,
    models: BTreeMap<String, PathBuf>,
    #[serde(default)]
    cycles: Vec<usize>,
    #[serde(default)]
    foldings: Vec<String>,
    targets: Option<Vec<String>>,
    #[serde(default)]
    sim_images: usize,
    stall_seed: Option<u64>,
    clock_mhz: Option<f64>,
    pipe: Option<usize>,
}

/// What a sweep builds, paths resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// The images (accuracy, co-simulation).
    pub data: DataSource,
    /// The models by name, in name order, as the spec file gives them.
    pub models: Vec<(String, PathBuf)>,
    /// The foldings of every model's design points, in order.
    pub foldings: Vec<(String, Folding)>,
    /// Synthesis targets.
    pub targets: Vec<Target>,
    /// Test images co-simulated per design (0: none).
    pub sim_images: usize,
    /// Random stalls of the co-simulation.
    pub stall_seed: Option<u64>,
    /// Clock of the constraints, MHz.
    pub clock_mhz: f64,
    /// Register stages after each popcount tree.
    pub pipe: usize,
}

fn spec_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::bad_file(path, what.to_string())
}

/// Whether `name` may name a model (it is used in file and stage names).
fn good_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The largest sweep spec read (a spec is a few lines of TOML).
pub const MAX_SPEC_BYTES: u64 = 1 << 20;

impl Spec {
    /// Reads the spec file at `path`.
    pub fn load(path: &Path) -> Result<Spec> {
        let text = crate::util::input::read_text_capped(path, MAX_SPEC_BYTES, "a sweep spec")?;
        Self::parse(&text, path)
    }

    /// Parses spec text; relative paths are relative to `path`'s directory.
    pub fn parse(text: &str, path: &Path) -> Result<Spec> {
        let f: SpecFile = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().to_string();
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            spec_error(path, format!("not a sweep spec{at}: {msg}"))
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        let rel = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        if f.models.is_empty() {
            return Err(spec_error(
                path,
                "[models] names no model: give at least one `name = \"model.json\"`",
            ));
        }
        for name in f.models.keys() {
            if !good_name(name) {
                return Err(spec_error(
                    path,
                    format!(
                        "model name '{name}' may hold only letters, digits, '-' and '_' (at most 64)"
                    ),
                ));
            }
        }
        let mut foldings = Vec::new();
        for &c in &f.cycles {
            if c == 0 {
                return Err(spec_error(path, "cycles: a target of 0 cycles per image"));
            }
            let label = format!("auto-{c}");
            if foldings.iter().any(|(l, _)| *l == label) {
                return Err(spec_error(path, format!("cycles: {c} is given twice")));
            }
            foldings.push((label, Folding::Auto { target_cycles: c }));
        }
        for (k, s) in f.foldings.iter().enumerate() {
            let s = s.trim();
            if s.is_empty() || s == "auto" {
                return Err(spec_error(
                    path,
                    format!(
                        "foldings: '{s}' is not a folding; automatic foldings are given by `cycles = [N, ...]`"
                    ),
                ));
            }
            let (label, fold) = if s == "default" {
                ("default".to_string(), Folding::Default)
            } else {
                (format!("fold-{}", k + 1), Folding::Spec(s.to_string()))
            };
            if foldings.iter().any(|(_, f)| *f == fold) {
                return Err(spec_error(path, format!("foldings: '{s}' is given twice")));
            }
            foldings.push((label, fold));
        }
        if foldings.is_empty() {
            return Err(spec_error(
                path,
                "no design point: give `cycles = [N, ...]` (automatic foldings) or `foldings = [\"default\", ...]`",
            ));
        }
        let names = f
            .targets
            .unwrap_or_else(|| vec![Target::Xilinx.name().to_string()]);
        let mut targets = Vec::new();
        for n in &names {
            let t = Target::parse(n).ok_or_else(|| {
                spec_error(
                    path,
                    format!("targets: unknown target '{n}' (xilinx, ice40 or generic)"),
                )
            })?;
            if targets.contains(&t) {
                return Err(spec_error(path, format!("targets: '{n}' is given twice")));
            }
            targets.push(t);
        }
        if f.stall_seed.is_some() && f.sim_images == 0 {
            return Err(spec_error(
                path,
                "stall_seed is for co-simulation: give sim_images too",
            ));
        }
        let clock_mhz = f.clock_mhz.unwrap_or(rtl::DEFAULT_CLOCK_MHZ);
        // The range `cbnn rtl` takes: every job of a sweep it accepts can run.
        let range = crate::plan::CLOCK_MHZ;
        if !range.contains(&clock_mhz) {
            return Err(spec_error(
                path,
                format!(
                    "clock_mhz {clock_mhz} must be between {} and {}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        let pipe = f.pipe.unwrap_or(0);
        if pipe > 1 {
            return Err(spec_error(path, format!("pipe {pipe} must be 0 or 1")));
        }
        let dataset = match f.dataset {
            Some(d) if rel(Path::new(&d)).is_dir() => rel(Path::new(&d)).display().to_string(),
            Some(d) => d,
            None => "fashion-mnist".to_string(),
        };
        Ok(Spec {
            data: DataSource {
                dataset,
                data_dir: f.data_dir.as_deref().map(rel),
            },
            models: f.models.iter().map(|(n, p)| (n.clone(), rel(p))).collect(),
            foldings,
            targets,
            sim_images: f.sim_images,
            stall_seed: f.stall_seed,
            clock_mhz,
            pipe,
        })
    }
}

/// How a sweep runs.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepConfig {
    /// The spec file.
    pub spec: PathBuf,
    /// Run directory: the models' copies, every design, every job's output, the report.
    pub output: PathBuf,
    /// Jobs run at once on this machine.
    pub jobs: usize,
    /// Run the jobs on this Ray cluster instead.
    pub ray: Option<RaySettings>,
}

/// A design point.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// The model's name.
    pub model: String,
    /// The folding's label (`auto-N`, `default`, `fold-K`).
    pub label: String,
    /// The folding.
    pub fold: Folding,
    /// Why it is not built, if it is not.
    pub infeasible: Option<String>,
}

/// Paths of a run directory.
pub struct Layout<'a>(pub &'a Path);

impl Layout<'_> {
    /// The copy of model `name` the designs are generated from.
    pub fn model(&self, name: &str) -> PathBuf {
        self.0.join("models").join(format!("{name}.json"))
    }
    /// The evaluation of model `name`.
    pub fn eval(&self, name: &str) -> PathBuf {
        self.0.join("eval").join(format!("{name}.json"))
    }
    /// The design directory of a point.
    pub fn design(&self, model: &str, label: &str) -> PathBuf {
        self.0.join("designs").join(model).join(label)
    }
    /// The synthesis report of a point for a target.
    pub fn synth(&self, model: &str, label: &str, t: Target) -> PathBuf {
        self.0
            .join("synth")
            .join(format!("{model}.{label}.{}.json", t.name()))
    }
    /// The co-simulation report of a point.
    pub fn sim(&self, model: &str, label: &str) -> PathBuf {
        self.0.join("sim").join(format!("{model}.{label}.json"))
    }
}

/// A path as the jobs name it: relative to the current directory, so that what a job writes
/// that names a path (a design names its model, an evaluation its dataset) is the same
/// wherever it runs.
fn run_path(output: &Path) -> Result<PathBuf> {
    crate::jobs::remote::relative_to_cwd(output)
}

/// The design points of `spec`, each checked (folding chosen) against its model in `models`
/// (named by its copy in `layout`).
pub fn points(spec: &Spec, layout: &Layout, models: &[(String, IntModel)]) -> Result<Vec<Point>> {
    let mut out = Vec::new();
    for (name, m) in models {
        let path = layout.model(name);
        for (label, fold) in &spec.foldings {
            let infeasible = crate::plan::check_supported(m, &path)
                .and_then(|()| rtl::choose_folding(m, fold, spec.pipe, None))
                .err()
                .map(|e| e.to_string());
            out.push(Point {
                model: name.clone(),
                label: label.clone(),
                fold: fold.clone(),
                infeasible,
            });
        }
    }
    // A folding no model can take is a mistake in the spec, not a design point.
    for (label, fold) in &spec.foldings {
        if let Folding::Spec(s) = fold {
            let all: Vec<&Point> = out.iter().filter(|p| p.label == *label).collect();
            if all.iter().all(|p| p.infeasible.is_some()) {
                return Err(Error::usage(format!(
                    "folding '{s}' fits none of the models: {}",
                    all[0].infeasible.as_deref().unwrap_or("")
                )));
            }
        }
    }
    Ok(out)
}

/// The name of the stage that generates point `p`'s design.
pub fn rtl_stage(p: &Point) -> String {
    format!("rtl.{}.{}", p.model, p.label)
}

/// The name of the stage that synthesizes point `p`'s design for `t`.
pub fn synth_stage(p: &Point, t: Target) -> String {
    format!("synth.{}.{}.{}", p.model, p.label, t.name())
}

/// The name of the stage that co-simulates point `p`'s design.
pub fn sim_stage(p: &Point) -> String {
    format!("sim.{}.{}", p.model, p.label)
}

/// The sweep's stages: each model's evaluation, then per feasible point its generation, its
/// synthesis for every target and its co-simulation.
pub fn stages(spec: &Spec, layout: &Layout, points: &[Point]) -> Vec<Stage> {
    let stage = |name: String, job: Job| Stage { name, job };
    let mut out = Vec::new();
    for (name, _) in &spec.models {
        out.push(stage(
            format!("eval.{name}"),
            Job::Eval(EvalJob {
                model: layout.model(name),
                data: spec.data.clone(),
                predictions: None,
                scores: false,
                json: Some(layout.eval(name)),
            }),
        ));
    }
    for p in points.iter().filter(|p| p.infeasible.is_none()) {
        let dir = layout.design(&p.model, &p.label);
        out.push(stage(
            rtl_stage(p),
            Job::Rtl(RtlJob {
                fold: p.fold.clone(),
                clock_mhz: spec.clock_mhz,
                pipe: spec.pipe,
                ..RtlJob::new(layout.model(&p.model), dir.clone())
            }),
        ));
        for &t in &spec.targets {
            out.push(stage(
                synth_stage(p, t),
                Job::Synth(SynthJob {
                    dir: dir.clone(),
                    target: t,
                    json: Some(layout.synth(&p.model, &p.label, t)),
                }),
            ));
        }
        if spec.sim_images > 0 {
            out.push(stage(
                sim_stage(p),
                Job::Sim(SimJob {
                    count: Some(spec.sim_images),
                    stall_seed: spec.stall_seed,
                    json: Some(layout.sim(&p.model, &p.label)),
                    ..SimJob::new(dir.clone(), spec.data.clone())
                }),
            ));
        }
    }
    out
}

/// Model file `path`, which must be a model (a wrong file is said naming the spec's path),
/// and its bytes.
fn read_model(path: &Path) -> Result<(IntModel, Vec<u8>)> {
    let cap = crate::model::MAX_FILE_BYTES;
    let text = crate::util::input::read_text_capped(path, cap, "a model file")?;
    Ok((crate::model::from_json(path, &text)?, text.into_bytes()))
}

/// Writes the model `bytes` to `to` unless `to` already holds them (its record stays valid
/// then).
fn copy_model(bytes: &[u8], to: &Path) -> Result<()> {
    if std::fs::read(to).is_ok_and(|b| b == bytes) {
        return Ok(());
    }
    atomic::write_atomic(to, bytes)
}

/// Runs the sweep.
pub fn run(cfg: &SweepConfig) -> Result<report::SweepReport> {
    let mut spec = Spec::load(&cfg.spec)?;
    let run = run_path(&cfg.output)?;
    // The dataset too, when it is a directory (its jobs' outputs name it).
    if Path::new(&spec.data.dataset).is_dir() {
        spec.data.dataset = run_path(Path::new(&spec.data.dataset))?
            .display()
            .to_string();
    }
    if let Some(d) = &spec.data.data_dir {
        spec.data.data_dir = Some(run_path(d)?);
    }
    spec.data
        .plan(Plan::new().workdir(Setting::Output, &run))
        .check()?;
    // Every job reads the dataset (the evaluations, the co-simulations): one that cannot be
    // found is said once, before any work, not as a failure of every job.
    crate::data::resolve::resolve(&spec.data.dataset, spec.data.data_dir.as_deref())?;
    // Every model is read and checked, and every design point with it, before the run
    // directory is touched.
    let mut models = Vec::new();
    let mut copies = Vec::new();
    for (name, path) in &spec.models {
        let (m, bytes) = read_model(path)?;
        models.push((name.clone(), m));
        copies.push((name.clone(), bytes));
    }
    let layout = Layout(&run);
    let points = points(&spec, &layout, &models)?;
    if let Some(r) = &cfg.ray {
        r.check()?;
    }
    if !(1..=256).contains(&cfg.jobs) {
        return Err(Error::usage(format!(
            "--jobs {} must be between 1 and 256",
            cfg.jobs
        )));
    }
    let dir = RunDir::open(&run, "sweep")?;
    atomic::remove_stale_in(&run);
    atomic::remove_stale_in(&run.join("stages"));
    for (name, bytes) in &copies {
        copy_model(bytes, &layout.model(name))?;
    }
    let stages = stages(&spec, &layout, &points);
    let built = points.iter().filter(|p| p.infeasible.is_none()).count();
    errln!(
        "sweep: {} models x {} foldings = {} design points ({built} to build), {} jobs",
        spec.models.len(),
        spec.foldings.len(),
        points.len(),
        stages.len()
    );
    let start = Instant::now();
    let exec = Executor::new(cfg.ray.as_ref())?;
    let logs = flow::run_stages(
        &exec,
        &run,
        &stages,
        cfg.jobs,
        flow::OnFailure::GoOn,
        &mut |_| {},
    )?;
    drop(exec);
    let failures: BTreeMap<String, String> = logs
        .iter()
        .filter_map(|l| Some((l.name.clone(), l.failed.clone()?)))
        .collect();
    let rep = report::build(&spec, &layout, &points, &failures)?;
    let log = flow::RunLog {
        seconds: start.elapsed().as_secs_f64(),
        stages: logs.clone(),
        search_phases: Vec::new(),
    };
    dir.write_report(&flow::with_run_log(report::files(&rep)?, &log)?)?;
    errln!(
        "sweep finished in {:.0} s: {} and {}",
        start.elapsed().as_secs_f64(),
        run.join("report.md").display(),
        run.join("report.json").display()
    );
    let first = logs.iter().find(|l| l.failed.is_some());
    if let Some(l) = first {
        let ran = logs.iter().filter(|l| l.failed.is_some()).count();
        return Err(Error::CheckFailed(format!(
            "{ran} of {} jobs failed or could not run (first: {}: {}); the report lists them, \
             and running the sweep again retries them",
            logs.len(),
            l.name,
            l.failed.as_deref().unwrap_or("")
        )));
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Spec> {
        Spec::parse(text, Path::new("specs/sweep.toml"))
    }

    #[test]
    fn a_spec_gives_models_foldings_and_targets_in_order() {
        let s = parse(
            r#"
            cycles = [4096, 1024]
            foldings = ["default", "L0:4,8;L1:full"]
            targets = ["generic", "xilinx"]
            sim_images = 20
            stall_seed = 3
            [models]
            small = "m/small.json"
            big = "/abs/big.json"
            "#,
        )
        .unwrap();
        assert_eq!(
            s.models,
            vec![
                ("big".to_string(), PathBuf::from("/abs/big.json")),
                ("small".to_string(), PathBuf::from("specs/m/small.json")),
            ]
        );
        let labels: Vec<&str> = s.foldings.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["auto-4096", "auto-1024", "default", "fold-2"]);
        assert_eq!(s.targets, [Target::Generic, Target::Xilinx]);
        assert_eq!(s.data.dataset, "fashion-mnist");
        assert_eq!((s.sim_images, s.stall_seed), (20, Some(3)));
        // Synthesis for xilinx by default.
        let s = parse("cycles = [1]\n[models]\na = \"a.json\"\n").unwrap();
        assert_eq!(s.targets, [Target::Xilinx]);
    }

    #[test]
    fn a_bad_spec_is_one_sentence_naming_the_file() {
        for (text, says) in [
            ("cycles = [1]\n", "missing field `models`"),
            ("cycles = [1]\n[models]\n", "names no model"),
            ("[models]\na = \"a.json\"\n", "no design point"),
            ("cycles = [0]\n[models]\na = \"a.json\"\n", "0 cycles"),
            ("cycles = [9, 9]\n[models]\na = \"a.json\"\n", "given twice"),
            (
                "foldings = [\"auto\"]\n[models]\na = \"a.json\"\n",
                "cycles = [N",
            ),
            (
                "cycles = [1]\ntargets = [\"asic\"]\n[models]\na = \"a.json\"\n",
                "unknown target 'asic'",
            ),
            (
                "cycles = [1]\nsim_image = 3\n[models]\na = \"a.json\"\n",
                "line 2",
            ),
            (
                "cycles = [1]\nstall_seed = 3\n[models]\na = \"a.json\"\n",
                "give sim_images",
            ),
            (
                "cycles = [1]\n[models]\n\"a b\" = \"a.json\"\n",
                "model name 'a b'",
            ),
            (
                "cycles = [1]\npipe = 2\n[models]\na = \"a.json\"\n",
                "pipe 2",
            ),
            ("cycles = \"many\"\n[models]\na = \"a.json\"\n", "line 1"),
        ] {
            let e = parse(text).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("specs/sweep.toml"), "{msg}");
            assert!(msg.contains(says), "{text:?}: {msg}");
            assert_eq!(e.exit_code(), 2, "{msg}");
            assert!(!msg.trim_end().contains('\n'), "{msg}");
        }
    }
}
