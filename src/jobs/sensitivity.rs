//! The bit-level sensitivity analysis of a trained model.

use std::path::PathBuf;

use super::{check_compatible, Argv, DataSource};
use crate::error::{Result, Setting};
use crate::model;
use crate::sensitivity::{self, Method, Report};
use crate::util::atomic;
use crate::util::output::Plan;

/// `cbnn sensitivity`.
#[derive(Clone, Debug, PartialEq)]
pub struct SensitivityJob {
    /// The model file.
    pub model: PathBuf,
    /// The images.
    pub data: DataSource,
    /// Methods.
    pub methods: Vec<Method>,
    /// Random seeds averaged.
    pub seeds: usize,
    /// Validation images [default: [`crate::data::default_validation`]].
    pub validation: Option<usize>,
    /// Test images evaluated (the first N; default: all).
    pub count: Option<usize>,
    /// The JSON report, if any.
    pub json: Option<PathBuf>,
    /// The SVG chart, if any.
    pub plot: Option<PathBuf>,
}

/// Every method, in the order the analysis reports them.
pub const ALL_METHODS: [Method; 3] = [Method::Drop, Method::Random, Method::Cumulative];

/// Seeds averaged by default.
pub const DEFAULT_SEEDS: usize = 5;

impl SensitivityJob {
    /// A job with every setting at its default.
    pub fn new(model: PathBuf, data: DataSource) -> Self {
        Self {
            model,
            data,
            methods: ALL_METHODS.to_vec(),
            seeds: DEFAULT_SEEDS,
            validation: None,
            count: None,
            json: None,
            plot: None,
        }
    }

    pub(super) fn argv(&self) -> Vec<String> {
        let mut a = Argv::new(&["sensitivity"]);
        a.word(self.model.display());
        a.opt_path("--json", self.json.as_deref());
        a.opt_path("--plot", self.plot.as_deref());
        if self.methods != ALL_METHODS {
            a.list("--method", &self.methods);
        }
        if self.seeds != DEFAULT_SEEDS {
            a.flag("--seeds", self.seeds);
        }
        a.opt("--validation", self.validation);
        a.opt("--count", self.count);
        self.data.argv(&mut a);
        a.0
    }

    pub(super) fn plan(&self) -> Plan {
        self.data.plan(
            Plan::new()
                .file(Setting::Json, self.json.as_deref())
                .file(Setting::Plot, self.plot.as_deref())
                .input("the model", &self.model),
        )
    }

    pub(super) fn run(&self) -> Result<Report> {
        if self.seeds == 0 {
            return Err(invalid!(Setting::Seeds, " must be at least 1"));
        }
        if self.count == Some(0) {
            return Err(invalid!(Setting::Count, " must be at least 1"));
        }
        let m = model::load(&self.model)?;
        let ds = self.data.open()?;
        check_compatible(&m, &self.model, &ds)?;
        let mut split = ds.split(self.validation, None)?;
        if let Some(n) = self.count {
            split.test = split.test.slice(0..n.min(split.test.len()));
        }
        let pb = crate::util::progress::bar(sensitivity::steps(&m, &self.methods), "sensitivity");
        let report = sensitivity::analyze(
            &m,
            &split.val,
            &split.test,
            &self.methods,
            self.seeds,
            &|| pb.inc(1),
        );
        pb.finish_and_clear();
        if let Some(path) = &self.json {
            atomic::write_json(path, &report)?;
        }
        if let Some(path) = &self.plot {
            sensitivity::write_svg(&report, path)?;
        }
        Ok(report)
    }
}
