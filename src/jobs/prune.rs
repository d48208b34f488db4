//! The pruning search: planes pruned from the data, widths shrunk, candidates retrained.

use std::path::PathBuf;

use super::{check_compatible, Argv, DataSource};
use crate::error::{Error, Result, Setting};
use crate::model::{self, IntModel};
use crate::prune::{self, Context, Event, PruneConfig, PruneReport};
use crate::train::arch::Arch;
use crate::train::{self, TrainConfig};
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
}

/// Accuracy budget by default, percentage points.
pub const DEFAULT_MAX_DROP: f64 = 1.0;
/// Standard errors of a candidate's validation drop added to it by default.
pub const DEFAULT_NOISE_MARGIN: f64 = 1.0;
/// Epochs per perceptron candidate by default.
pub const DEFAULT_EPOCHS: usize = 30;
/// Epochs per candidate by default for networks with convolutions or pooling: each of their
/// epochs costs some 20 times a perceptron's, and 30 of them per candidate would take the
/// search of the MNIST preset past two hours; the 20-epoch MNIST preset is within 0.3 pp of
/// its best validation accuracy by epoch 10 (docs/results.md).
pub const DEFAULT_CONV_EPOCHS: usize = 10;

/// Epochs per candidate when none are given: [`DEFAULT_EPOCHS`] for a perceptron,
/// [`DEFAULT_CONV_EPOCHS`] for anything else.
pub fn default_epochs(baseline: &IntModel) -> usize {
    if crate::train::arch::is_perceptron(&baseline.arch()) {
        DEFAULT_EPOCHS
    } else {
        DEFAULT_CONV_EPOCHS
    }
}

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
            limit: None,
            validation: None,
            output,
            report: None,
            ranking: None,
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
        a.opt("--limit", self.limit);
        a.opt("--validation", self.validation);
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
        self.data.plan(plan)
    }

    pub(super) fn run(&self) -> Result<PruneOutcome> {
        let base = model::load(&self.model)?;
        // Every candidate is a retraining of the baseline's architecture: one the trainer
        // cannot build is refused before any work.
        if let Err(e) = base.arch().parse::<crate::train::arch::Arch>() {
            return Err(Error::usage(format!(
                "{}: its layers cannot be retrained, so it cannot be pruned ({e})",
                self.model.display()
            )));
        }
        let cfg = PruneConfig {
            max_drop_pp: self.max_drop,
            noise_margin: self.noise_margin,
            epochs: self.epochs.unwrap_or_else(|| default_epochs(&base)),
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
        };
        errln!(
            "pruning {} ({} bits) on {}: budget {} pp of validation accuracy (measured drop + {} standard errors), {} epochs per candidate",
            self.model.display(),
            base.size_bits(),
            self.data.dataset,
            self.max_drop,
            self.noise_margin,
            cfg.epochs
        );
        let mut base_val = f64::NAN;
        let mut n = 0;
        let (chosen, report) = prune::prune(&base, &ctx, &cfg, &mut |e| {
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
        })?;
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

/// The plane ranking of the sensitivity report at `path`, which must be of a model with the
/// planes of `base`.
fn ranking_of(base: &IntModel, path: &std::path::Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
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

/// The baseline's training settings, from its provenance: a bad value names the file and the
/// field.
fn baseline_settings(base: &IntModel, path: &std::path::Path) -> Result<TrainConfig> {
    let hyper = &base.provenance.hyper;
    let cfg: TrainConfig = if hyper.is_null() {
        // What `cbnn train` would use for the model's layers.
        let logic_mapped = base
            .arch()
            .parse::<Arch>()
            .is_ok_and(|a| a.is_logic_mapped());
        TrainConfig {
            augment: if logic_mapped { 0 } else { 1 },
            ..TrainConfig::default()
        }
    } else {
        serde_json::from_value(hyper.clone()).map_err(|e| {
            Error::bad_file(
                path,
                format!("\"provenance.hyper\" is not a training configuration ({e})"),
            )
        })?
    };
    train::validate_config(&cfg).map_err(|e| {
        Error::bad_file(
            path,
            format!(
                "\"provenance.hyper\" holds training settings that cannot be used: {}",
                e.render(|s| match s {
                    Setting::Hidden => "hidden",
                    Setting::Epochs => "epochs",
                    Setting::Batch => "batch",
                    Setting::Lr => "lr",
                    Setting::LrFinal => "lr_final",
                    other => other.name(),
                })
            ),
        )
    })?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::tests::random_model;
    use crate::model::InputShape;
    use crate::util::rng::Rng;

    /// Without `--epochs`, a perceptron's candidates train as long as before and a
    /// convolutional network's for fewer epochs.
    #[test]
    fn candidates_train_for_the_default_epochs_of_their_kind() {
        let mut rng = Rng::new(5, 0);
        let input = InputShape {
            height: 6,
            width: 6,
            channels: 1,
        };
        let mlp = random_model(&mut rng, input, &[7, 6], &["d8", "d8"], 3);
        let conv = random_model(&mut rng, input, &[7, 6], &["c4k3s", "p2", "d8"], 3);
        let pooled = random_model(&mut rng, input, &[7], &["p2", "d8"], 3);
        assert_eq!(default_epochs(&mlp), DEFAULT_EPOCHS);
        assert_eq!(default_epochs(&conv), DEFAULT_CONV_EPOCHS);
        assert_eq!(default_epochs(&pooled), DEFAULT_CONV_EPOCHS);
    }
}
