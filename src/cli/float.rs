//! `cbnn train --float` and `cbnn eval` of a full-precision model.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::commands::{input_shape, open, report_evaluation};
use super::{EvalArgs, TrainArgs};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::float::{self, train::FloatConfig, FloatModel};
use crate::reference::Evaluation;
use crate::util::atomic;

#[derive(Serialize)]
struct FloatTrainReport<'a> {
    model: String,
    dataset: String,
    hidden: Vec<usize>,
    size_bits: u64,
    best_epoch: usize,
    val_accuracy: f64,
    test_accuracy: f64,
    train_images_per_second: f64,
    history: &'a [float::train::FloatEpoch],
}

/// Checks that `ds` has the image shape and classes `m` expects.
fn check_compatible(m: &FloatModel, path: &Path, ds: &Dataset) -> Result<()> {
    let shape = input_shape(ds);
    if shape != m.input || ds.classes > m.classes {
        return Err(Error::usage(format!(
            "{} expects {}x{}x{} images of {} classes but dataset '{}' has {}x{}x{} images of {}",
            path.display(),
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
    Ok(())
}

pub(super) fn train_float(a: TrainArgs) -> Result<()> {
    let cfg = FloatConfig {
        hidden: a.hidden.clone(),
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr.unwrap_or(0.001),
        lr_final: a.lr_final,
        seed: a.seed,
        verbose: true,
    };
    let ds = open(&a.data)?;
    let split = ds.split(a.validation, a.limit)?;
    let input = input_shape(&ds);
    crate::train::check_size(input.pixels(), &a.hidden, ds.classes)?;
    errln!(
        "training full precision {} -> {} -> {} on {} ({} train / {} validation images, 8-bit pixels)",
        input.pixels(),
        super::commands::join(&a.hidden),
        ds.classes,
        a.data.dataset,
        split.train.len(),
        split.val.len()
    );
    let mut trained = float::train::train(
        &cfg,
        input,
        ds.classes,
        &a.data.dataset,
        &split.train,
        &split.val,
    )?;
    let test_accuracy = float::train::accuracy(&trained.model, &split.test);
    trained.model.provenance.test_accuracy = Some(test_accuracy);
    float::save(&trained.model, &a.output)?;
    let m = &trained.model;
    outln!("model        {} (full precision)", a.output.display());
    outln!(
        "layers       {} -> {} -> {}",
        input.pixels(),
        super::commands::join(&m.hidden_widths()),
        m.classes
    );
    outln!(
        "size         {} bits (float32 weights + biases)",
        m.size_bits()
    );
    outln!("best epoch   {} of {}", m.provenance.best_epoch, a.epochs);
    outln!("validation   {:.2}%", 100.0 * m.provenance.val_accuracy);
    outln!("test         {:.2}%", 100.0 * test_accuracy);
    outln!(
        "speed        {:.0} training images/s",
        trained.images_per_second
    );
    if let Some(path) = &a.json {
        atomic::write_json(
            path,
            &FloatTrainReport {
                model: a.output.display().to_string(),
                dataset: a.data.dataset.clone(),
                hidden: m.hidden_widths(),
                size_bits: m.size_bits(),
                best_epoch: m.provenance.best_epoch,
                val_accuracy: m.provenance.val_accuracy,
                test_accuracy,
                train_images_per_second: trained.images_per_second,
                history: &trained.history,
            },
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct FloatEvalReport {
    model: String,
    dataset: String,
    kind: &'static str,
    hidden: Vec<usize>,
    size_bits: u64,
    seconds: f64,
    #[serde(flatten)]
    eval: Evaluation,
}

pub(super) fn eval_float(a: EvalArgs) -> Result<()> {
    if a.scores {
        return Err(Error::usage(
            "--scores writes the integer class scores of a binary model; a full-precision model has none",
        ));
    }
    let m = float::load(&a.model)?;
    let ds = open(&a.data)?;
    check_compatible(&m, &a.model, &ds)?;
    let start = Instant::now();
    let predicted = float::Engine::new(&m).classify(&ds.test.images.pixels, 1000);
    let seconds = start.elapsed().as_secs_f64();
    let eval = Evaluation::new(&predicted, &ds.test.labels, m.classes);
    report_evaluation(
        &eval,
        &predicted,
        None,
        &ds.test.labels,
        seconds,
        ", full precision",
        &a,
    )?;
    if let Some(path) = &a.json {
        atomic::write_json(
            path,
            &FloatEvalReport {
                model: a.model.display().to_string(),
                dataset: a.data.dataset.clone(),
                kind: "float",
                hidden: m.hidden_widths(),
                size_bits: m.size_bits(),
                seconds,
                eval,
            },
        )?;
    }
    Ok(())
}
