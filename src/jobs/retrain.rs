//! One candidate of a pruning search as a job of its own: a baseline's architecture (or a
//! narrower one) retrained on some of its planes with the baseline's training settings.
//!
//! `cbnn prune --jobs N` runs its candidates as these jobs, several at once, in processes of
//! their own; each gives exactly the model the search would have trained in its own process
//! (training does not depend on the number of threads).

use std::path::PathBuf;

use super::{check_compatible, Argv, DataSource};
use crate::error::{Result, Setting};
use crate::model::{self, IntModel};
use crate::prune::{self, Context};
use crate::train::arch::Arch;
use crate::util::output::Plan;

/// `cbnn retrain`.
#[derive(Clone, Debug, PartialEq)]
pub struct RetrainJob {
    /// The model whose training settings (and data split) the candidate takes.
    pub baseline: PathBuf,
    /// The images.
    pub data: DataSource,
    /// Kept planes, most significant first.
    pub planes: Vec<u8>,
    /// Hidden layers [default: the baseline's].
    pub arch: Option<Arch>,
    /// Training epochs [default: [`super::candidate::default_epochs`] of the baseline].
    pub epochs: Option<usize>,
    /// Train on only the first N training images.
    pub limit: Option<usize>,
    /// Validation images [default: [`crate::data::default_validation`]].
    pub validation: Option<usize>,
    /// Start from the baseline's weights ([`crate::train::warm`]) instead of a fresh
    /// initialisation (convolutional baselines).
    pub warm: bool,
    /// The model file.
    pub output: PathBuf,
    /// Distillation from a teacher (`--distill`; the teacher is the model by default).
    pub distill: super::distill::Distill,
}

impl RetrainJob {
    /// This job (the settings every candidate of a search shares) for one candidate: its
    /// planes and layers, epochs, warm start and output.
    pub fn candidate(
        &self,
        spec: &prune::Spec,
        epochs: usize,
        warm: bool,
        output: PathBuf,
    ) -> RetrainJob {
        RetrainJob {
            planes: spec.planes.clone(),
            arch: Some(spec.arch.clone()),
            epochs: Some(epochs),
            warm,
            output,
            ..self.clone()
        }
    }

    pub(super) fn argv(&self) -> Vec<String> {
        let mut a = Argv::new(&["retrain"]);
        a.word(self.baseline.display());
        a.path("-o", &self.output);
        a.list("--planes", &self.planes);
        a.opt("--arch", self.arch.as_ref());
        a.opt("--epochs", self.epochs);
        a.opt("--limit", self.limit);
        a.opt("--validation", self.validation);
        if self.warm {
            a.word("--warm");
        }
        self.distill.argv(&mut a);
        self.data.argv(&mut a);
        a.0
    }

    pub(super) fn plan(&self) -> Plan {
        self.data.plan(
            self.distill.plan(
                Plan::new()
                    .file(Setting::Output, Some(&self.output))
                    .input("the model", &self.baseline),
            ),
        )
    }

    pub(super) fn run(&self) -> Result<IntModel> {
        let base = model::load(&self.baseline)?;
        if self.warm && !super::candidate::warm_starts(&base, false) {
            return Err(crate::error::Error::usage(format!(
                "--warm starts a convolutional network from its model's weights, and {} ({}) \
                 has no convolutions or pooling",
                self.baseline.display(),
                base.arch()
            )));
        }
        let teacher = self.distill.load(&base)?;
        let ds = self.data.open()?;
        check_compatible(&base, &self.baseline, &ds)?;
        let split = ds.split(self.validation, self.limit)?;
        let ctx = Context {
            split: &split,
            dataset: self.data.dataset.clone(),
            classes: base.classes(),
            train: super::candidate::baseline_settings(&base, &self.baseline)?,
            ranking: None,
            parent: None,
            teacher: teacher
                .as_ref()
                .map(|t| (t, self.distill.temperature, self.distill.weight)),
        };
        let arch: Arch = match &self.arch {
            Some(a) => a.clone(),
            None => base.arch().parse().map_err(|e| {
                crate::error::Error::usage(format!(
                    "{}: its layers cannot be retrained ({e})",
                    self.baseline.display()
                ))
            })?,
        };
        let epochs = self
            .epochs
            .unwrap_or_else(|| super::candidate::default_epochs(&base, !self.warm));
        let model = prune::retrain(
            &ctx,
            &self.planes,
            &arch,
            epochs,
            self.warm.then_some(&base),
        )?;
        model::save(&model, &self.output)?;
        Ok(model)
    }
}
