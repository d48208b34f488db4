//! The pruning search: planes pruned from the data, widths shrunk, candidates retrained.

use std::path::PathBuf;

use super::candidate::{baseline_settings, default_epochs, warm_starts};
use super::candidates::{OnRay, Processes};
use super::ray::RaySettings;
use super::retrain::RetrainJob;
use super::{check_compatible, Argv, DataSource};
use crate::error::{Error, Result, Setting};
use crate::model::{self, IntModel};
use crate::prune::{self, Context, Event, PruneConfig, PruneReport};
use crate::util::atomic;
use crate::util::output::Plan;

/// `cbnn prune`.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneJob {
    /// The baseline model file.
    pub model: PathBuf,
    /// The images.
    pub data: DataSource,
    /// Largest validation accuracy loss accepted, in percentage points.
    pub max_drop: f64,
    /// Standard errors of the measured drop added to it [default: [`DEFAULT_NOISE_MARGIN`]].
    pub noise_margin: f64,
    /// Training epochs per candidate [default: [`default_epochs`] of the baseline].
    pub epochs: Option<usize>,
    /// Train convolutional candidates from scratch instead of from the baseline's weights.
    pub from_scratch: bool,
    /// Train candidates on only the first N training images.
    pub limit: Option<usize>,
    /// Validation images [default: [`crate::data::default_validation`]].
    pub validation: Option<usize>,
    /// The chosen model's file.
    pub output: PathBuf,
    /// The full report as JSON, if wanted.
    pub report: Option<PathBuf>,
    /// A sensitivity report of the baseline (`cbnn sensitivity --json`) whose plane ranking
    /// the search takes instead of running its own analysis.
    pub ranking: Option<PathBuf>,
    /// Candidates trained at once (1: one after another in this process; more: `cbnn
    /// retrain` processes of this executable, started ahead of the search's decisions).
    pub jobs: usize,
    /// Train the candidates on a Ray cluster instead (`--executor ray`).
    pub ray: Option<RaySettings>,
    /// Score candidates taken from one shared network instead of retraining each
    /// (`--search shared`).
    pub shared: bool,
    /// Distillation from a teacher.
    pub distill: super::distill::Distill,
}

/// Accuracy budget by default, percentage points.
pub const DEFAULT_MAX_DROP: f64 = 1.0;
/// Standard errors of a candidate's validation drop added to it by default.
pub const DEFAULT_NOISE_MARGIN: f64 = 1.0;
/// What the search chose.
#[derive(Debug)]
pub struct PruneOutcome {
    /// The chosen model (written to the job's output).
    pub chosen: IntModel,
    /// Baseline, chosen and every candidate.
    pub report: PruneReport,
    /// Where the chosen model was written.
    pub output: PathBuf,
}

impl PruneJob {
    /// A job with every setting at its default.
    pub fn new(model: PathBuf, data: DataSource, output: PathBuf) -> Self {
        Self {
            model,
            data,
            max_drop: DEFAULT_MAX_DROP,
            noise_margin: DEFAULT_NOISE_MARGIN,
            epochs: None,
            from_scratch: false,
            limit: None,
            validation: None,
            output,
            report: None,
            ranking: None,
            jobs: 1,
            ray: None,
            shared: false,
            distill: super::distill::Distill::default(),
        }
    }

    /// What every candidate's retraining shares: the baseline, the data, its split and the
    /// distillation ([`RetrainJob::candidate`] fills in the rest).
    fn template(&self) -> RetrainJob {
        RetrainJob {
            baseline: self.model.clone(),
            data: self.data.clone(),
            planes: Vec::new(),
            arch: None,
            epochs: None,
            limit: self.limit,
            validation: self.validation,
            warm: false,
            output: PathBuf::new(),
            distill: self.distill.clone(),
        }
    }

    pub(super) fn argv(&self) -> Vec<String> {
        let mut a = Argv::new(&["prune"]);
        a.word(self.model.display());
        a.path("-o", &self.output);
        a.opt_path("--report", self.report.as_deref());
        a.opt_path("--ranking", self.ranking.as_deref());
        if self.max_drop != DEFAULT_MAX_DROP {
            a.flag("--max-drop", self.max_drop);
        }
        if self.noise_margin != DEFAULT_NOISE_MARGIN {
            a.flag("--noise-margin", self.noise_margin);
        }
        a.opt("--epochs", self.epochs);
        if self.from_scratch {
            a.word("--from-scratch");
        }
        a.opt("--limit", self.limit);
        a.opt("--validation", self.validation);
        if self.jobs != 1 {
            a.flag("--jobs", self.jobs);
        }
        if self.shared {
            a.flag("--search", "shared");
        }
        self.distill.argv(&mut a);
        if let Some(r) = &self.ray {
            a.flag("--executor", "ray");
            a.flag("--ray-address", &r.address);
            if r.workers != DEFAULT_RAY_WORKERS {
                a.flag("--ray-workers", r.workers);
            }
            if r.cpus_per_job != 1 {
                a.flag("--ray-cpus", r.cpus_per_job);
            }
        }
        self.data.argv(&mut a);
        a.0
    }

    pub(super) fn plan(&self) -> Plan {
        let mut plan = Plan::new()
            .file(Setting::Output, Some(&self.output))
            .file(Setting::Report, self.report.as_deref())
            .input("the model", &self.model);
        if let Some(r) = &self.ranking {
            plan = plan.input("the sensitivity report", r);
        }
        self.data.plan(self.distill.plan(plan))
    }

    pub(super) fn run(&self) -> Result<PruneOutcome> {
        if let Some(r) = &self.ray {
            r.check()?;
        }
        if self.jobs == 0 || self.jobs > MAX_JOBS {
            return Err(Error::usage(format!(
                "--jobs {} must be between 1 and {MAX_JOBS}",
                self.jobs
            )));
        }
        let base = model::load(&self.model)?;
        // Every candidate is a retraining of the baseline's architecture: one the trainer
        // cannot build is refused before any work.
        if let Err(e) = base.arch().parse::<crate::train::arch::Arch>() {
            return Err(Error::usage(format!(
                "{}: its layers cannot be retrained, so it cannot be pruned ({e})",
                self.model.display()
            )));
        }
        let teacher = self.distill.load(&base)?;
        if teacher.is_some() && self.ray.is_some() {
            return Err(Error::usage(
                "--distill does not run on Ray yet (the teacher would have to travel with each \
                 job); use --executor local",
            ));
        }
        let cfg = PruneConfig {
            max_drop_pp: self.max_drop,
            noise_margin: self.noise_margin,
            epochs: self
                .epochs
                .unwrap_or_else(|| default_epochs(&base, self.from_scratch)),
            warm: warm_starts(&base, self.from_scratch),
            ..PruneConfig::default()
        };
        cfg.check()?;
        let ds = self.data.open()?;
        check_compatible(&base, &self.model, &ds)?;
        let split = ds.split(self.validation, self.limit)?;
        let ctx = Context {
            split: &split,
            dataset: self.data.dataset.clone(),
            classes: base.classes(),
            train: baseline_settings(&base, &self.model)?,
            ranking: match &self.ranking {
                Some(path) => Some(ranking_of(&base, path)?),
                None => None,
            },
            parent: cfg.warm.then_some(&base),
            teacher: teacher
                .as_ref()
                .map(|t| (t, self.distill.temperature, self.distill.weight)),
        };
        // Before any work or message: a cluster that cannot be used is the only line.
        let on_ray = match &self.ray {
            Some(settings) => Some(OnRay::connect(self.template(), settings)?),
            None => None,
        };
        errln!(
            "pruning {} ({} bits) on {}: budget {} pp of validation accuracy (measured drop + {} standard errors), {} epochs per candidate{}",
            self.model.display(),
            base.size_bits(),
            self.data.dataset,
            self.max_drop,
            self.noise_margin,
            cfg.epochs,
            if cfg.warm {
                ", each starting from the baseline's weights"
            } else {
                ""
            }
        );
        let mut base_val = f64::NAN;
        let mut n = 0;
        let processes = Processes::new(self.jobs, self.template())?;
        let mut shared = prune::shared::Shared::new(cfg.epochs);
        if let Some(t) = &teacher {
            shared.teacher = Some((t.clone(), self.distill.temperature, self.distill.weight));
        }
        let exec: &dyn prune::Executor = match &on_ray {
            _ if self.shared => &shared,
            Some(r) => r,
            None if self.jobs == 1 => &prune::InProcess,
            None => &processes,
        };
        let mut on = |e: Event| {
            match e {
            Event::Ranked {
                baseline_val,
                ranking,
            } => {
                base_val = baseline_val;
                errln!("sensitivity ranks the planes {ranking:?} (most important first)")
            }
            Event::Start { planes, arch } => {
                n += 1;
                match arch.dense_widths() {
                    Some(w) => errln!("candidate {n}: planes {planes:?}, widths {w:?} ..."),
                    None => errln!("candidate {n}: planes {planes:?}, arch {arch} ..."),
                }
            }
            Event::Done(c) => errln!(
                "candidate {n}: {} bits, {} input bits, validation {:.2}% (drop {:.2} ± {:.2} pp), {:.1}s -> {}",
                c.summary.size_bits,
                c.summary.input_bits,
                100.0 * c.summary.val_accuracy,
                100.0 * (base_val - c.summary.val_accuracy),
                100.0 * c.drop_se,
                c.seconds,
                if c.accepted { "accepted" } else { "rejected" }
            ),
        }
        };
        let (chosen, report) = if self.shared {
            prune::shared::search(&base, &ctx, &cfg, &shared, &mut on)?
        } else {
            prune::prune_with(&base, &ctx, &cfg, exec, &mut on)?
        };
        model::save(&chosen, &self.output)?;
        if let Some(path) = &self.report {
            atomic::write_json(path, &report)?;
        }
        Ok(PruneOutcome {
            chosen,
            report,
            output: self.output.clone(),
        })
    }
}

/// Most candidates `cbnn prune --jobs` trains at once.
pub const MAX_JOBS: usize = 256;

/// Worker nodes of a throwaway Ray cluster (`--ray-address local`) by default.
pub const DEFAULT_RAY_WORKERS: usize = 2;

/// The plane ranking of the sensitivity report at `path`, which must be of a model with the
/// planes of `base`.
fn ranking_of(base: &IntModel, path: &std::path::Path) -> Result<Vec<u8>> {
    let text = crate::util::input::read_text_capped(path, 64 << 20, "a sensitivity report")?;
    let report: crate::sensitivity::Report = serde_json::from_str(&text).map_err(|e| {
        Error::bad_file(
            path,
            format!("is not a sensitivity report (`cbnn sensitivity --json`): {e}"),
        )
    })?;
    let ranking = report.ranking();
    let mut sorted = ranking.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    if sorted != base.planes.planes() || report.planes != base.planes.planes() {
        return Err(Error::bad_file(
            path,
            format!(
                "ranks planes {:?}, but the model keeps {:?}: it is the report of another model",
                report.planes,
                base.planes.planes()
            ),
        ));
    }
    Ok(ranking)
}
