//! The reference model: the bit-exact executor of an [`IntModel`].
//!
//! This is the truth every other layer is checked against: the trainer's export, the RTL, the
//! accuracy numbers the tool reports. It uses only integers and bits; it must never depend on
//! training (floating point) or on hardware code.

mod kernels;

pub use kernels::has_popcnt;

use rayon::prelude::*;
use serde::Serialize;

use crate::bitslice::{self, Sliced};
use crate::model::IntModel;

/// One image's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prediction {
    /// Predicted class: the argmax of `scores`, ties to the lowest index.
    pub class: usize,
    /// Class scores: the output layer's popcounts.
    pub scores: Vec<u32>,
}

/// Reusable buffers for [`Executor::predict_into`].
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    acts: Vec<u64>,
    next: Vec<u64>,
    counts: Vec<u32>,
}

/// Runs a model on packed feature vectors.
#[derive(Clone, Copy, Debug)]
pub struct Executor<'m> {
    model: &'m IntModel,
}

impl<'m> Executor<'m> {
    /// An executor for `model` (which must be valid; loaded models always are).
    pub fn new(model: &'m IntModel) -> Self {
        Executor { model }
    }

    /// Class scores of one image's packed features, written into `scores`.
    pub fn scores_into(&self, features: &[u64], scratch: &mut Scratch, scores: &mut Vec<u32>) {
        scratch.acts.clear();
        scratch.acts.extend_from_slice(features);
        for layer in &self.model.hidden {
            let w = &layer.weights;
            scratch.counts.resize(w.rows(), 0);
            kernels::matvec(w, &scratch.acts, &mut scratch.counts);
            scratch.next.clear();
            scratch.next.resize(bitslice::words_for(w.rows()), 0);
            for (j, (&c, &t)) in scratch.counts.iter().zip(&layer.thresholds).enumerate() {
                if c >= t {
                    scratch.next[j / 64] |= 1 << (j % 64);
                }
            }
            std::mem::swap(&mut scratch.acts, &mut scratch.next);
        }
        scores.resize(self.model.output.rows(), 0);
        kernels::matvec(&self.model.output, &scratch.acts, scores);
    }

    /// Scores and class of one image.
    pub fn predict(&self, features: &[u64]) -> Prediction {
        let mut scores = Vec::new();
        self.scores_into(features, &mut Scratch::default(), &mut scores);
        Prediction {
            class: argmax(&scores),
            scores,
        }
    }

    /// Predicted class of every image (parallel over images, deterministic).
    pub fn classify(&self, data: &Sliced) -> Vec<usize> {
        assert_eq!(
            data.features,
            self.model.features(),
            "feature count mismatch"
        );
        (0..data.count())
            .into_par_iter()
            .map_init(
                || (Scratch::default(), Vec::new()),
                |(scratch, scores), i| {
                    self.scores_into(data.row(i), scratch, scores);
                    argmax(scores)
                },
            )
            .collect()
    }
}

/// Index of the largest score, the lowest index on ties.
pub fn argmax(scores: &[u32]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

/// Accuracy and confusion matrix of predictions against labels.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Evaluation {
    /// Images evaluated.
    pub count: usize,
    /// Correctly classified images.
    pub correct: usize,
    /// `correct / count`.
    pub accuracy: f64,
    /// `confusion[label][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

impl Evaluation {
    /// Scores `predicted` against `labels` over `classes` classes.
    pub fn new(predicted: &[usize], labels: &[u8], classes: usize) -> Evaluation {
        let mut confusion = vec![vec![0; classes]; classes];
        let mut correct = 0;
        for (&p, &l) in predicted.iter().zip(labels) {
            confusion[l as usize][p] += 1;
            correct += (p == l as usize) as usize;
        }
        Evaluation {
            count: predicted.len(),
            correct,
            accuracy: correct as f64 / predicted.len().max(1) as f64,
            confusion,
        }
    }
}

/// Runs `model` on `data` and scores it against `labels`.
pub fn evaluate(model: &IntModel, data: &Sliced, labels: &[u8]) -> Evaluation {
    let predicted = Executor::new(model).classify(data);
    Evaluation::new(
        &predicted,
        labels,
        model
            .classes()
            .max(1 + *labels.iter().max().unwrap_or(&0) as usize),
    )
}

/// The slow, obviously correct evaluation straight from the numeric definition (±1 products
/// summed as integers). Used only to test the packed executor.
pub fn predict_by_definition(model: &IntModel, features: &[bool]) -> Prediction {
    let mut x: Vec<bool> = features.to_vec();
    for layer in &model.hidden {
        let w = &layer.weights;
        x = (0..w.rows())
            .map(|j| {
                let dot: i64 = (0..w.cols())
                    .map(|i| if w.get(j, i) == x[i] { 1 } else { -1 })
                    .sum();
                // w.x = 2 * matches - N  =>  matches = (dot + N) / 2
                let matches = (dot + w.cols() as i64) / 2;
                matches >= layer.thresholds[j] as i64
            })
            .collect();
    }
    let w = &model.output;
    let scores: Vec<u32> = (0..w.rows())
        .map(|c| (0..w.cols()).filter(|&i| w.get(c, i) == x[i]).count() as u32)
        .collect();
    Prediction {
        class: argmax(&scores),
        scores,
    }
}
