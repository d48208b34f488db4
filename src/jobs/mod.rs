//! Every unit of work of cbnn as a value.
//!
//! A job is what one `cbnn` command does: it names the files it reads and writes
//! ([`Job::plan`]), gives the command line that runs it ([`Job::argv`]) and, when run
//! ([`Job::run`]), checks its outputs before any work, does the work, writes its files
//! (atomically) and returns what it found as an [`Outcome`]. Progress goes to standard error;
//! results are values, for the caller to show. The command line builds jobs from its flags;
//! the flow and the bench build them directly and call them as functions.

pub mod candidate;
pub mod candidates;
pub mod distill;
pub mod eval;
pub mod executor;
pub mod export;
pub mod import;
pub mod prune;
pub mod ray;
pub mod remote;
pub mod retrain;
pub mod rtl;
pub mod sensitivity;
pub mod sim;
pub mod synth;
pub mod testbench;
pub mod train;

use std::path::{Path, PathBuf};

use crate::data::Dataset;
use crate::error::Result;
use crate::util::output::Plan;

/// Where a job's images come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSource {
    /// A dataset name (mnist, fashion-mnist) or a directory with the four IDX files.
    pub dataset: String,
    /// Extra directory searched first for named datasets (DIR/NAME).
    pub data_dir: Option<PathBuf>,
}

impl DataSource {
    /// The default dataset.
    pub fn named(dataset: &str) -> Self {
        Self {
            dataset: dataset.to_string(),
            data_dir: None,
        }
    }

    /// Loads the dataset.
    pub fn open(&self) -> Result<Dataset> {
        Dataset::open(&self.dataset, self.data_dir.as_deref())
    }

    /// The IDX files of the dataset (`train-*` and `t10k-*`), sorted; none when it cannot be
    /// found (opening it then says why). They are inputs of every job that reads images: a
    /// changed dataset is never answered with a stale result, and no output may land on them.
    pub fn files(&self) -> Vec<PathBuf> {
        let Ok(dir) = crate::data::resolve::resolve(&self.dataset, self.data_dir.as_deref()) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.file_name().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        n.starts_with("train-") || n.starts_with("t10k-")
                    })
            })
            .collect();
        files.sort();
        files
    }

    /// `plan` with the dataset's files as inputs.
    pub fn plan(&self, plan: Plan) -> Plan {
        self.files()
            .iter()
            .fold(plan, |p, f| p.input("a dataset file", f))
    }

    fn argv(&self, out: &mut Argv) {
        out.flag("--dataset", &self.dataset);
        if let Some(d) = &self.data_dir {
            out.path("--data-dir", d);
        }
    }
}

/// A command line being built (without the leading `cbnn`).
#[derive(Default)]
struct Argv(Vec<String>);

impl Argv {
    fn new(words: &[&str]) -> Self {
        Self(words.iter().map(|w| w.to_string()).collect())
    }

    fn word(&mut self, w: impl ToString) {
        self.0.push(w.to_string());
    }

    fn flag(&mut self, name: &str, value: impl ToString) {
        self.0.push(name.to_string());
        self.0.push(value.to_string());
    }

    fn path(&mut self, name: &str, p: &Path) {
        self.flag(name, p.display());
    }

    fn opt(&mut self, name: &str, value: Option<impl ToString>) {
        if let Some(v) = value {
            self.flag(name, v);
        }
    }

    fn opt_path(&mut self, name: &str, p: Option<&Path>) {
        if let Some(p) = p {
            self.path(name, p);
        }
    }

    fn list<T: ToString>(&mut self, name: &str, values: &[T]) {
        let v: Vec<String> = values.iter().map(T::to_string).collect();
        self.flag(name, v.join(","));
    }

    fn switch(&mut self, name: &str, on: bool) {
        if on {
            self.word(name);
        }
    }
}

/// The files of a design directory that a job reads.
fn design_inputs(plan: Plan, dir: &Path) -> Plan {
    let plan = plan.input("the design's manifest", &dir.join("design.json"));
    match crate::rtlgen::load_manifest(dir) {
        Ok(m) => m
            .written
            .iter()
            .chain(&m.files)
            .fold(plan, |p, f| p.input("a design file", &dir.join(f))),
        Err(_) => plan,
    }
}

/// One unit of work.
#[derive(Clone, Debug, PartialEq)]
pub enum Job {
    /// `cbnn train`.
    Train(train::TrainJob),
    /// `cbnn eval`.
    Eval(eval::EvalJob),
    /// `cbnn sensitivity`.
    Sensitivity(sensitivity::SensitivityJob),
    /// `cbnn prune`.
    Prune(prune::PruneJob),
    /// `cbnn retrain`.
    Retrain(retrain::RetrainJob),
    /// `cbnn rtl`.
    Rtl(rtl::RtlJob),
    /// `cbnn sim`.
    Sim(sim::SimJob),
    /// `cbnn synth`.
    Synth(synth::SynthJob),
    /// `cbnn testbench`.
    Testbench(testbench::TestbenchJob),
    /// `cbnn export`.
    Export(export::ExportJob),
    /// `cbnn import`.
    Import(import::ImportJob),
}

/// What a job found.
#[derive(Debug)]
pub enum Outcome {
    /// Of a [`Job::Train`].
    Train(train::TrainOutcome),
    /// Of a [`Job::Eval`].
    Eval(eval::EvalOutcome),
    /// Of a [`Job::Sensitivity`].
    Sensitivity(crate::sensitivity::Report),
    /// Of a [`Job::Prune`].
    Prune(prune::PruneOutcome),
    /// Of a [`Job::Retrain`]: the model written.
    Retrain(Box<crate::model::IntModel>),
    /// Of a [`Job::Rtl`].
    Rtl(rtl::RtlOutcome),
    /// Of a [`Job::Sim`].
    Sim(crate::cosim::SimReport),
    /// Of a [`Job::Synth`].
    Synth(crate::synth::SynthReport),
    /// Of a [`Job::Testbench`].
    Testbench(testbench::TestbenchOutcome),
    /// Of a [`Job::Export`].
    Export(export::ExportOutcome),
    /// Of a [`Job::Import`].
    Import(import::ImportOutcome),
}

impl Job {
    /// The `cbnn` command line that runs this job (without `cbnn`): only settings that differ
    /// from the defaults are given.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Job::Train(j) => j.argv(),
            Job::Eval(j) => j.argv(),
            Job::Sensitivity(j) => j.argv(),
            Job::Prune(j) => j.argv(),
            Job::Retrain(j) => j.argv(),
            Job::Rtl(j) => j.argv(),
            Job::Sim(j) => j.argv(),
            Job::Synth(j) => j.argv(),
            Job::Testbench(j) => j.argv(),
            Job::Export(j) => j.argv(),
            Job::Import(j) => j.argv(),
        }
    }

    /// The files the job writes and reads.
    pub fn plan(&self) -> Plan {
        match self {
            Job::Train(j) => j.plan(),
            Job::Eval(j) => j.plan(),
            Job::Sensitivity(j) => j.plan(),
            Job::Prune(j) => j.plan(),
            Job::Retrain(j) => j.plan(),
            Job::Rtl(j) => j.plan(),
            Job::Sim(j) => j.plan(),
            Job::Synth(j) => j.plan(),
            Job::Testbench(j) => j.plan(),
            Job::Export(j) => j.plan(),
            Job::Import(j) => j.plan(),
        }
    }

    /// Where its images come from, if it reads any.
    pub fn data(&self) -> Option<&DataSource> {
        match self {
            Job::Train(j) => Some(&j.data),
            Job::Eval(j) => Some(&j.data),
            Job::Sensitivity(j) => Some(&j.data),
            Job::Prune(j) => Some(&j.data),
            Job::Retrain(j) => Some(&j.data),
            Job::Sim(j) => Some(&j.data),
            Job::Testbench(j) => Some(&j.data),
            Job::Rtl(_) | Job::Synth(_) | Job::Export(_) | Job::Import(_) => None,
        }
    }

    /// [`Job::data`], to change.
    pub fn data_mut(&mut self) -> Option<&mut DataSource> {
        match self {
            Job::Train(j) => Some(&mut j.data),
            Job::Eval(j) => Some(&mut j.data),
            Job::Sensitivity(j) => Some(&mut j.data),
            Job::Prune(j) => Some(&mut j.data),
            Job::Retrain(j) => Some(&mut j.data),
            Job::Sim(j) => Some(&mut j.data),
            Job::Testbench(j) => Some(&mut j.data),
            Job::Rtl(_) | Job::Synth(_) | Job::Export(_) | Job::Import(_) => None,
        }
    }

    /// Files the job may write beside its plan's outputs: what synthesis leaves in the
    /// design directory (its logs and statistics), which a later job does not read.
    pub fn optional_outputs(&self) -> Vec<PathBuf> {
        match self {
            Job::Synth(j) => j.files_in_design(),
            _ => Vec::new(),
        }
    }

    /// Checks, before any work, that the job may write its outputs: [`Plan::check`], and for
    /// a design directory that it is a cbnn design (or absent).
    pub fn check_outputs(&self) -> Result<()> {
        self.plan().check()?;
        if let Job::Rtl(j) = self {
            j.check_replaceable()?;
        }
        Ok(())
    }

    /// Checks the outputs, does the work, writes the files.
    pub fn run(&self) -> Result<Outcome> {
        self.check_outputs()?;
        Ok(match self {
            Job::Train(j) => Outcome::Train(j.run()?),
            Job::Eval(j) => Outcome::Eval(j.run()?),
            Job::Sensitivity(j) => Outcome::Sensitivity(j.run()?),
            Job::Prune(j) => Outcome::Prune(j.run()?),
            Job::Retrain(j) => Outcome::Retrain(Box::new(j.run()?)),
            Job::Rtl(j) => Outcome::Rtl(j.run()?),
            Job::Sim(j) => Outcome::Sim(j.run()?),
            Job::Synth(j) => Outcome::Synth(j.run()?),
            Job::Testbench(j) => Outcome::Testbench(j.run()?),
            Job::Export(j) => Outcome::Export(j.run()?),
            Job::Import(j) => Outcome::Import(j.run()?),
        })
    }
}

/// The shape of `ds`'s images.
pub fn input_shape(ds: &Dataset) -> crate::model::InputShape {
    crate::model::InputShape {
        height: ds.train.images.height,
        width: ds.train.images.width,
        channels: ds.train.images.channels,
    }
}

/// Checks that `ds` has the image shape and classes `model` expects.
pub fn check_compatible(
    model: &crate::model::IntModel,
    model_path: &Path,
    ds: &Dataset,
) -> Result<()> {
    let shape = input_shape(ds);
    if shape != model.input {
        return Err(crate::Error::usage(format!(
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
        return Err(crate::Error::usage(format!(
            "{} has {} classes but dataset '{}' has {}",
            model_path.display(),
            model.classes(),
            ds.name,
            ds.classes
        )));
    }
    Ok(())
}
