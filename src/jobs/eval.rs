//! Evaluating a model (binary, by the reference model; or full precision) on the test set.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::{check_compatible, input_shape, Argv, DataSource};
use crate::bitslice;
use crate::error::{Error, Result, Setting};
use crate::float;
use crate::model;
use crate::reference::{self, Evaluation};
use crate::util::atomic;
use crate::util::output::Plan;

/// `cbnn eval`.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalJob {
    /// The model file (binary or full precision).
    pub model: PathBuf,
    /// The images.
    pub data: DataSource,
    /// `index,label,predicted` for every test image, if wanted.
    pub predictions: Option<PathBuf>,
    /// Also every class score in the predictions (binary models).
    pub scores: bool,
    /// The JSON report, if any.
    pub json: Option<PathBuf>,
}

/// What an evaluation found (also the JSON report).
#[derive(Debug, Serialize)]
pub struct EvalOutcome {
    /// The model file.
    pub model: String,
    /// The dataset.
    pub dataset: String,
    /// "float" for a full-precision model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Kept planes (binary models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planes: Option<Vec<u8>>,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Model size.
    pub size_bits: u64,
    /// Seconds the classification took.
    pub seconds: f64,
    /// Accuracy and confusion.
    #[serde(flatten)]
    pub eval: Evaluation,
}

impl EvalJob {
    pub(super) fn argv(&self) -> Vec<String> {
        let mut a = Argv::new(&["eval"]);
        a.word(self.model.display());
        a.opt_path("--predictions", self.predictions.as_deref());
        a.switch("--scores", self.scores);
        a.opt_path("--json", self.json.as_deref());
        self.data.argv(&mut a);
        a.0
    }

    pub(super) fn plan(&self) -> Plan {
        self.data.plan(
            Plan::new()
                .file(Setting::Predictions, self.predictions.as_deref())
                .file(Setting::Json, self.json.as_deref())
                .input("the model", &self.model),
        )
    }

    pub(super) fn run(&self) -> Result<EvalOutcome> {
        let ds = self.data.open()?;
        let start = Instant::now();
        let (outcome, predicted, scores) = if float::is_float_model(&self.model) {
            if self.scores {
                return Err(Error::usage(
                    "class scores are the integer popcounts of a binary model; a full-precision \
                     model has none",
                ));
            }
            let m = float::load(&self.model)?;
            let shape = input_shape(&ds);
            if shape != m.input || ds.classes > m.classes {
                return Err(Error::usage(format!(
                    "{} expects {}x{}x{} images of {} classes but dataset '{}' has {}x{}x{} images of {}",
                    self.model.display(),
                    m.input.height,
                    m.input.width,
                    m.input.channels,
                    m.classes,
                    ds.name,
                    shape.height,
                    shape.width,
                    shape.channels,
                    ds.classes
                )));
            }
            let predicted = float::Engine::new(&m).classify(&ds.test.images.pixels, 1000);
            let outcome = EvalOutcome {
                model: self.model.display().to_string(),
                dataset: self.data.dataset.clone(),
                kind: Some("float"),
                planes: None,
                hidden: m.hidden_widths(),
                size_bits: m.size_bits(),
                seconds: start.elapsed().as_secs_f64(),
                eval: Evaluation::new(&predicted, &ds.test.labels, m.classes),
            };
            (outcome, predicted, None)
        } else {
            let m = model::load(&self.model)?;
            check_compatible(&m, &self.model, &ds)?;
            let test = bitslice::slice(&ds.test.images, &m.planes);
            let exec = reference::Executor::new(&m);
            let predicted = exec.classify(&test);
            let seconds = start.elapsed().as_secs_f64();
            let scores: Option<Vec<Vec<u32>>> = self.scores.then(|| {
                (0..test.count())
                    .map(|i| exec.predict(test.row(i)).scores)
                    .collect()
            });
            let outcome = EvalOutcome {
                model: self.model.display().to_string(),
                dataset: self.data.dataset.clone(),
                kind: None,
                planes: Some(m.planes.planes().to_vec()),
                hidden: m.hidden_widths(),
                size_bits: m.size_bits(),
                seconds,
                eval: Evaluation::new(&predicted, &ds.test.labels, m.classes()),
            };
            (outcome, predicted, scores)
        };
        if let Some(path) = &self.predictions {
            let csv = predictions_csv(&predicted, scores.as_deref(), &ds.test.labels);
            atomic::write_atomic(path, csv.as_bytes())?;
        }
        if let Some(path) = &self.json {
            atomic::write_json(path, &outcome)?;
        }
        Ok(outcome)
    }
}

/// `index,label,predicted[,score_0,...]`, one row per image.
fn predictions_csv(predicted: &[usize], scores: Option<&[Vec<u32>]>, labels: &[u8]) -> String {
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
    csv
}
