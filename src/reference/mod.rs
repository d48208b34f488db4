//! The reference model: the bit-exact executor of an [`IntModel`].
//!
//! This is the truth every other layer is checked against: the trainer's export, the RTL, the
//! accuracy numbers the tool reports. It uses only integers and bits; it must never depend on
//! training (floating point) or on hardware code.

pub mod cycle;
pub mod fast;
pub mod fast_layers;
pub(crate) mod kernels;
#[cfg(target_arch = "x86_64")]
pub mod rows;
pub mod schedule;
mod sliced;
pub mod stream;

pub use kernels::has_popcnt;

use rayon::prelude::*;
use serde::Serialize;

use crate::bitslice::Sliced;
use crate::layers::{Produces, Shape, Values};
use crate::model::IntModel;

/// One image's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prediction {
    /// Predicted class: the argmax of `scores`, ties to the lowest index.
    pub class: usize,
    /// Class scores: the output layer's popcounts.
    pub scores: Vec<u32>,
}

/// Reusable buffers for [`Executor::scores_into`].
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    acts: Vec<u64>,
    next: Vec<u64>,
}

/// Runs a model on packed feature vectors.
#[derive(Clone, Debug)]
pub struct Executor<'m> {
    model: &'m IntModel,
    shapes: Vec<Shape>,
}

impl<'m> Executor<'m> {
    /// An executor for `model` (which must be valid; loaded models always are).
    pub fn new(model: &'m IntModel) -> Self {
        Executor {
            model,
            shapes: model.shapes(),
        }
    }

    /// Class scores of one image's packed features, written into `scores`: every layer in
    /// turn, until one gives the scores (a valid model's last layer).
    pub fn scores_into(&self, features: &[u64], scratch: &mut Scratch, scores: &mut Vec<u32>) {
        scratch.acts.clear();
        scratch.acts.extend_from_slice(features);
        for (layer, &shape) in self.model.layers.iter().zip(&self.shapes) {
            let l = layer.semantics();
            l.execute(shape, &scratch.acts, scores, &mut scratch.next);
            match l.produces() {
                Produces::Bits => std::mem::swap(&mut scratch.acts, &mut scratch.next),
                Produces::Scores => return,
            }
        }
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

/// The classes of `model` for the images of `data`: perceptrons by the [`Executor`], models
/// with other kinds by the fast layer engine ([`fast_layers`], checked bit for bit against the
/// executor by its tests and by `cbnn bench` on every test image), which is several times
/// faster on convolutions.
pub fn classify(model: &IntModel, data: &Sliced) -> Vec<usize> {
    if model.as_mlp().is_some() {
        Executor::new(model).classify(data)
    } else {
        fast_layers::Layers::new(model).classify_sliced(data)
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
    let predicted = classify(model, data);
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
    for (layer, shape) in model.layers.iter().zip(model.shapes()) {
        match layer.semantics().by_definition(shape, &x) {
            Values::Bits(b) => x = b,
            Values::Scores(scores) => {
                return Prediction {
                    class: argmax(&scores),
                    scores,
                }
            }
        }
    }
    unreachable!("a valid model ends in its output layer")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bitslice::PlaneSet;
    use crate::model::{BinaryMatrix, Dense, InputShape, Provenance};
    use crate::util::rng::Rng;

    /// A random valid model; thresholds cover the whole range including both "always" ends.
    pub(crate) fn random_model(
        rng: &mut Rng,
        pixels: usize,
        planes: &[u8],
        hidden: &[usize],
        classes: usize,
    ) -> IntModel {
        let planes = PlaneSet::new(planes).unwrap();
        let mut inputs = pixels * planes.len();
        let mut layers = Vec::new();
        let random_matrix = |rng: &mut Rng, rows: usize, cols: usize| {
            let mut m = BinaryMatrix::new(rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    m.set(r, c, rng.next_u64() & 1 == 1);
                }
            }
            m
        };
        for &n in hidden {
            let weights = random_matrix(rng, n, inputs);
            let thresholds = (0..n)
                .map(|j| match j % 7 {
                    0 => 0,
                    1 => inputs as u32 + 1,
                    _ => (inputs / 2) as u32 + rng.below(5) as u32 - 2,
                })
                .collect();
            layers.push(Dense {
                weights,
                thresholds,
            });
            inputs = n;
        }
        let output = random_matrix(rng, classes, inputs);
        IntModel::mlp(
            InputShape {
                height: pixels,
                width: 1,
                channels: 1,
            },
            planes,
            layers,
            output,
            Provenance::default(),
        )
    }

    #[test]
    fn packed_executor_matches_definition() {
        let mut rng = Rng::new(21, 0);
        for (pixels, planes, hidden) in [
            (9usize, vec![7u8, 6, 5], vec![70usize, 3]),
            (64, vec![7], vec![64]),
            (17, vec![7, 6, 5, 4, 3, 2, 1, 0], vec![129, 65, 2]),
        ] {
            let model = random_model(&mut rng, pixels, &planes, &hidden, 5);
            model.validate(std::path::Path::new("m")).unwrap();
            let exec = Executor::new(&model);
            for _ in 0..50 {
                let pixels_v: Vec<u8> = (0..pixels).map(|_| rng.next_u64() as u8).collect();
                let mut packed = vec![0u64; crate::bitslice::words_for(model.features())];
                crate::bitslice::slice_one(&pixels_v, &model.planes, &mut packed);
                let plain: Vec<bool> = (0..model.features())
                    .map(|f| crate::bitslice::feature(&pixels_v, &model.planes, f))
                    .collect();
                assert_eq!(exec.predict(&packed), predict_by_definition(&model, &plain));
            }
        }
    }

    #[test]
    fn argmax_ties_go_to_lowest_index() {
        assert_eq!(argmax(&[3, 5, 5, 1]), 1);
        assert_eq!(argmax(&[2, 2]), 0);
    }

    #[test]
    fn model_json_round_trips() {
        let mut rng = Rng::new(22, 0);
        let model = random_model(&mut rng, 10, &[7, 5], &[33, 8], 3);
        let text = crate::model::json_text(&model);
        let back = crate::model::from_json(std::path::Path::new("m.json"), &text).unwrap();
        assert_eq!(back, model);
    }
}
