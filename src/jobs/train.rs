//! Training a binary network (or its full-precision counterpart) and exporting its model.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::{input_shape, Argv, DataSource};
use crate::bitslice::{self, PlaneSet};
use crate::error::{Error, Result, Setting};
use crate::float::{self, train::FloatConfig};
use crate::model;
use crate::reference;
use crate::train::arch::Arch;
use crate::train::{self, DataMeta, ExportCheck, SlicedSet, TrainConfig};
use crate::util::atomic;
use crate::util::output::Plan;

/// `cbnn train`: what to train and where to write it.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainJob {
    /// The images.
    pub data: DataSource,
    /// Hidden layer widths of a multilayer perceptron, input side first (when `arch` is not
    /// given).
    pub hidden: Vec<usize>,
    /// The hidden layers in the architecture notation ([`crate::train::arch`]).
    pub arch: Option<Arch>,
    /// Kept bit planes, most significant first [default: all eight; for a logic-mapped
    /// network [`train::default_lut_plane`] of the training images].
    pub planes: Option<Vec<u8>>,
    /// Training epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Initial learning rate [default: 0.01, full precision 0.001].
    pub lr: Option<f32>,
    /// Final learning rate as a fraction of the initial one.
    pub lr_final: f32,
    /// Random seed.
    pub seed: u64,
    /// Augmentation shift [default: [`train::default_augment`] of the image shape].
    pub augment: Option<usize>,
    /// Train on only the first N training images.
    pub limit: Option<usize>,
    /// Validation images [default: [`crate::data::default_validation`]].
    pub validation: Option<usize>,
    /// The model file.
    pub output: PathBuf,
    /// The JSON report, if any.
    pub json: Option<PathBuf>,
    /// Train the full-precision network of the same shape instead (8-bit pixels, no planes).
    pub float: bool,
}

impl TrainJob {
    /// A job with every setting at its default.
    pub fn new(data: DataSource, output: PathBuf) -> Self {
        let d = TrainConfig::default();
        Self {
            data,
            hidden: d.hidden,
            arch: None,
            planes: None,
            epochs: d.epochs,
            batch: d.batch,
            lr: None,
            lr_final: d.lr_final,
            seed: d.seed,
            augment: None,
            limit: None,
            validation: None,
            output,
            json: None,
            float: false,
        }
    }

    pub(super) fn argv(&self) -> Vec<String> {
        let d = Self::new(self.data.clone(), self.output.clone());
        let mut a = Argv::new(&["train"]);
        a.switch("--float", self.float);
        a.path("-o", &self.output);
        a.opt_path("--json", self.json.as_deref());
        if self.hidden != d.hidden {
            a.list("--hidden", &self.hidden);
        }
        a.opt("--arch", self.arch.as_ref());
        if let Some(p) = &self.planes {
            a.list("--planes", p);
        }
        if self.epochs != d.epochs {
            a.flag("--epochs", self.epochs);
        }
        if self.batch != d.batch {
            a.flag("--batch", self.batch);
        }
        a.opt("--lr", self.lr);
        if self.lr_final != d.lr_final {
            a.flag("--lr-final", self.lr_final);
        }
        if self.seed != d.seed {
            a.flag("--seed", self.seed);
        }
        a.opt("--augment", self.augment);
        a.opt("--limit", self.limit);
        a.opt("--validation", self.validation);
        self.data.argv(&mut a);
        a.0
    }

    pub(super) fn plan(&self) -> Plan {
        self.data.plan(
            Plan::new()
                .file(Setting::Output, Some(&self.output))
                .file(Setting::Json, self.json.as_deref()),
        )
    }

    pub(super) fn run(&self) -> Result<TrainOutcome> {
        if self.float {
            return self.run_float().map(TrainOutcome::Float);
        }
        self.run_binary().map(TrainOutcome::Binary)
    }

    fn run_binary(&self) -> Result<TrainReport> {
        let logic_mapped = self.arch.as_ref().is_some_and(|a| a.is_logic_mapped());
        if let Some(p) = &self.planes {
            PlaneSet::new(p)?;
        }
        let cfg = TrainConfig {
            hidden: self.hidden.clone(),
            arch: self.arch.clone(),
            epochs: self.epochs,
            batch: self.batch,
            lr: self.lr.unwrap_or(0.01),
            lr_final: self.lr_final,
            seed: self.seed,
            augment: self.augment.unwrap_or(0),
            verbose: true,
        };
        train::validate_config(&cfg)?;
        let ds = self.data.open()?;
        // A logic-mapped neuron reads fixed pixels: shifted images teach it nothing it can use.
        let cfg = TrainConfig {
            augment: self.augment.unwrap_or_else(|| match logic_mapped {
                true => 0,
                false => train::default_augment(&input_shape(&ds)),
            }),
            ..cfg
        };
        let split = ds.split(self.validation, self.limit)?;
        let planes = PlaneSet::new(&match (&self.planes, logic_mapped) {
            (Some(p), _) => p.clone(),
            (None, true) => vec![train::default_lut_plane(&split.train.images)],
            (None, false) => vec![7, 6, 5, 4, 3, 2, 1, 0],
        })?;
        let meta = DataMeta {
            dataset: self.data.dataset.clone(),
            input: input_shape(&ds),
            classes: ds.classes,
            planes: planes.clone(),
        };
        let features = meta.input.pixels() * planes.len();
        match &cfg.arch {
            Some(a) if logic_mapped => train::check_lut_size(&meta, a)?,
            Some(a) if a.is_conv() => train::check_conv_size(&meta, a, cfg.batch)?,
            Some(a) => {
                train::check_size(features, &a.dense_widths().unwrap_or_default(), ds.classes)?
            }
            None => train::check_size(features, &cfg.hidden, ds.classes)?,
        }
        let slice_start = Instant::now();
        let (train_set, val_set, test_set) = (
            sliced(&split.train, &planes, cfg.augment > 0),
            sliced(&split.val, &planes, false),
            sliced(&split.test, &planes, false),
        );
        let slice_seconds = slice_start.elapsed().as_secs_f64();
        errln!(
            "training {features} -> {} -> {} on {} ({} train / {} validation images, planes {planes})",
            match &self.arch {
                Some(a) => a.to_string().replace(',', " -> "),
                None => join(&self.hidden),
            },
            ds.classes,
            self.data.dataset,
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
        // The test accuracy comes from the reference executor, the truth the export check and
        // the fast engines are held to.
        let truth = reference::Executor::new(&trained.model).classify(&test_set.x);
        let classes = trained.model.classes().max(ds.classes);
        let test_eval = reference::Evaluation::new(&truth, &test_set.y, classes);
        trained.model.provenance.test_accuracy = Some(test_eval.accuracy);
        // The validation accuracies of the epochs came from `reference::classify`, which runs
        // models other than perceptrons on the fast layer engine: it must agree on every test
        // image (for perceptrons it is the reference executor itself).
        if trained.model.as_mlp().is_none() {
            let fast = reference::classify(&trained.model, &test_set.x);
            if let Some(i) = fast.iter().zip(&truth).position(|(a, b)| a != b) {
                return Err(Error::CheckFailed(format!(
                    "the fast executor says class {} for test image {i}, the reference executor \
                     {}; {} was not written",
                    fast[i],
                    truth[i],
                    self.output.display()
                )));
            }
        }
        let export_check = train::export_check(&trained, &test_set.x, &truth);
        if !export_check.holds() {
            // Nothing is written: an earlier model at the same path stays.
            return Err(Error::CheckFailed(format!(
                "export check failed: the integer model disagrees with the float graph on {} test \
                 images; {} was not written",
                export_check.images - export_check.agree,
                self.output.display()
            )));
        }
        model::save(&trained.model, &self.output)?;
        let m = &trained.model;
        let report = TrainReport {
            model: self.output.display().to_string(),
            slice_seconds,
            dataset: self.data.dataset.clone(),
            planes: planes.planes().to_vec(),
            features: m.features(),
            arch: m.arch(),
            hidden: m.hidden_widths(),
            classes: m.classes(),
            size_bits: m.size_bits(),
            epochs: self.epochs,
            best_epoch: m.provenance.best_epoch,
            val_accuracy: m.provenance.val_accuracy,
            test_accuracy: test_eval.accuracy,
            train_images_per_second: trained.images_per_second,
            train_images_per_second_median_epoch: trained.median_images_per_second(),
            export_check,
            history: trained.history.clone(),
        };
        if let Some(path) = &self.json {
            atomic::write_json(path, &report)?;
        }
        Ok(report)
    }

    fn run_float(&self) -> Result<FloatTrainReport> {
        if self.arch.as_ref().is_some_and(|a| a.is_logic_mapped()) {
            return Err(Error::usage(
                "--float trains the full-precision counterpart of a perceptron or a convnet; a \
                 logic-mapped network (--arch lNfF) has none",
            ));
        }
        let conv = self.arch.clone().filter(|a| a.is_conv());
        let hidden = match (&self.arch, &conv) {
            (None, _) => self.hidden.clone(),
            (Some(_), Some(_)) => Vec::new(),
            (Some(a), None) => a
                .dense_widths()
                .expect("an architecture without convolutions"),
        };
        let cfg = FloatConfig {
            hidden: hidden.clone(),
            arch: conv.clone(),
            epochs: self.epochs,
            batch: self.batch,
            lr: self.lr.unwrap_or(0.001),
            lr_final: self.lr_final,
            seed: self.seed,
            verbose: true,
        };
        let ds = self.data.open()?;
        let split = ds.split(self.validation, self.limit)?;
        let input = input_shape(&ds);
        if conv.is_none() {
            train::check_size(input.pixels(), &hidden, ds.classes)?;
        }
        errln!(
            "training full precision {} -> {} -> {} on {} ({} train / {} validation images, 8-bit pixels)",
            input.pixels(),
            conv.as_ref().map_or_else(|| join(&hidden), |a| a.to_string().replace(',', " -> ")),
            ds.classes,
            self.data.dataset,
            split.train.len(),
            split.val.len()
        );
        let mut trained = float::train::train(
            &cfg,
            input,
            ds.classes,
            &self.data.dataset,
            &split.train,
            &split.val,
        )?;
        let test_accuracy = float::train::accuracy(&trained.model, &split.test);
        trained.model.provenance.test_accuracy = Some(test_accuracy);
        float::save(&trained.model, &self.output)?;
        let m = &trained.model;
        let report = FloatTrainReport {
            model: self.output.display().to_string(),
            dataset: self.data.dataset.clone(),
            inputs: input.pixels(),
            hidden: m.hidden_widths(),
            arch: m.arch(),
            classes: m.classes,
            size_bits: m.size_bits(),
            epochs: self.epochs,
            best_epoch: m.provenance.best_epoch,
            val_accuracy: m.provenance.val_accuracy,
            test_accuracy,
            train_images_per_second: trained.images_per_second,
            history: trained.history.clone(),
        };
        if let Some(path) = &self.json {
            atomic::write_json(path, &report)?;
        }
        Ok(report)
    }
}

/// What training found (also the JSON report).
#[derive(Debug)]
pub enum TrainOutcome {
    /// A binary network.
    Binary(TrainReport),
    /// A full-precision network.
    Float(FloatTrainReport),
}

/// The JSON report of a binary network's training.
#[derive(Debug, Serialize)]
pub struct TrainReport {
    /// The model file.
    pub model: String,
    /// Seconds bit slicing took.
    pub slice_seconds: f64,
    /// The dataset.
    pub dataset: String,
    /// Kept planes.
    pub planes: Vec<u8>,
    /// Input features (pixels x channels x planes).
    pub features: usize,
    /// The hidden layers in the architecture notation.
    pub arch: String,
    /// Widths of the dense hidden layers.
    pub hidden: Vec<usize>,
    /// Classes.
    pub classes: usize,
    /// Model size (weights and thresholds).
    pub size_bits: u64,
    /// Epochs trained.
    pub epochs: usize,
    /// The epoch whose model was kept.
    pub best_epoch: usize,
    /// Validation accuracy of the integer model.
    pub val_accuracy: f64,
    /// Test accuracy of the integer model.
    pub test_accuracy: f64,
    /// Training speed over all epochs.
    pub train_images_per_second: f64,
    /// Training speed of the median epoch.
    pub train_images_per_second_median_epoch: f64,
    /// The integer model against the float graph.
    pub export_check: ExportCheck,
    /// Every epoch.
    pub history: Vec<train::EpochReport>,
}

/// The JSON report of a full-precision network's training.
#[derive(Debug, Serialize)]
pub struct FloatTrainReport {
    /// The model file.
    pub model: String,
    /// The dataset.
    pub dataset: String,
    /// Inputs (8-bit pixels).
    pub inputs: usize,
    /// Hidden widths of the dense layers.
    pub hidden: Vec<usize>,
    /// The hidden layers in the architecture notation.
    pub arch: String,
    /// Classes.
    pub classes: usize,
    /// Model size (float32 weights and biases).
    pub size_bits: u64,
    /// Epochs trained.
    pub epochs: usize,
    /// The epoch whose model was kept.
    pub best_epoch: usize,
    /// Validation accuracy.
    pub val_accuracy: f64,
    /// Test accuracy.
    pub test_accuracy: f64,
    /// Training speed.
    pub train_images_per_second: f64,
    /// Every epoch.
    pub history: Vec<float::train::FloatEpoch>,
}

/// Slices `set`; keeps a copy of the raw images only when `augment` needs them.
pub fn sliced(set: &crate::data::LabeledSet, planes: &PlaneSet, augment: bool) -> SlicedSet {
    SlicedSet {
        x: bitslice::slice(&set.images, planes),
        y: set.labels.clone(),
        images: augment.then(|| set.images.clone()),
    }
}

/// `256 -> 256 -> 256`.
pub fn join(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}
