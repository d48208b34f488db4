//! Distillation: a trained integer model (the teacher) lends its class scores to a training run
//! as soft targets beside the labels.
//!
//! Owns: the teacher's probabilities ([`Teacher`]: its integer class scores on every training
//! image, turned into logits by the one scale that fits the training labels best, softened by a
//! temperature) and the loss that mixes them with the labels ([`Soft`], used by the
//! trainer's softmax loss).
//!
//! With student logits `z`, labels `y`, teacher probabilities `q = softmax(t / T)` and weight
//! `w`, the loss of an image is `(1 - w) * CE(y, softmax(z)) + w * T^2 * KL(q || softmax(z /
//! T))`, and its gradient with respect to `z` is `(1 - w) * (softmax(z) - y) + w * T *
//! (softmax(z / T) - q)` (the `T^2` keeps the soft term's gradient on the scale of the hard
//! one's as `T` grows).
//!
//! Never: trains anything, or reads a file (the caller loads the teacher).

use crate::bitslice::Sliced;
use crate::model::IntModel;
use crate::reference::Executor;

/// The soft targets of one batch, for the loss.
#[derive(Clone, Copy, Debug)]
pub struct Soft<'a> {
    /// Teacher probabilities at the temperature, `batch x classes`.
    pub probs: &'a [f32],
    /// The temperature `T`.
    pub temperature: f32,
    /// The weight `w` of the soft term (0: labels only, 1: teacher only).
    pub weight: f32,
}

/// A teacher's probabilities for every training image.
#[derive(Clone, Debug)]
pub struct Teacher {
    /// Probabilities at [`Teacher::temperature`], `images x classes`, image after image.
    pub probs: Vec<f32>,
    /// Classes.
    pub classes: usize,
    /// The temperature.
    pub temperature: f32,
    /// The weight of the soft term.
    pub weight: f32,
    /// The scale that turns the teacher's integer scores into logits.
    pub scale: f64,
}

impl Teacher {
    /// The teacher `model` on the training images `x` (sliced with the teacher's planes) with
    /// labels `y`: its scores' logit scale fitted to the labels, softened by `temperature`.
    pub fn new(model: &IntModel, x: &Sliced, y: &[u8], temperature: f32, weight: f32) -> Teacher {
        let exec = Executor::new(model);
        let classes = model.classes();
        let scores: Vec<f64> = (0..x.count())
            .flat_map(|i| exec.predict(x.row(i)).scores)
            .map(f64::from)
            .collect();
        let scale = fit_scale(&scores, y, classes);
        let mut probs = Vec::with_capacity(scores.len());
        for row in scores.chunks_exact(classes) {
            let logits: Vec<f64> = row
                .iter()
                .map(|&s| s * scale / f64::from(temperature))
                .collect();
            probs.extend(softmax(&logits).into_iter().map(|p| p as f32));
        }
        Teacher {
            probs,
            classes,
            temperature,
            weight,
            scale,
        }
    }

    /// The teacher's probabilities of image `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.probs[i * self.classes..(i + 1) * self.classes]
    }
}

fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|x| x / sum).collect()
}

/// Mean cross-entropy of `softmax(scale * scores)` against the labels.
fn cross_entropy(scores: &[f64], y: &[u8], classes: usize, scale: f64) -> f64 {
    let n = y.len().max(1) as f64;
    scores
        .chunks_exact(classes)
        .zip(y)
        .map(|(row, &label)| {
            let logits: Vec<f64> = row.iter().map(|&s| s * scale).collect();
            -softmax(&logits)[label as usize].max(1e-300).ln()
        })
        .sum::<f64>()
        / n
}

/// The scale `a > 0` for which `softmax(a * scores)` fits the labels best (least mean
/// cross-entropy; golden-section search over `ln a`, on which it is unimodal).
fn fit_scale(scores: &[f64], y: &[u8], classes: usize) -> f64 {
    let f = |ln_a: f64| cross_entropy(scores, y, classes, ln_a.exp());
    let (mut lo, mut hi) = (-12.0f64, 4.0f64);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (hi - g * (hi - lo), lo + g * (hi - lo));
    let (mut fa, mut fb) = (f(a), f(b));
    for _ in 0..60 {
        if fa < fb {
            hi = b;
            (b, fb) = (a, fa);
            a = hi - g * (hi - lo);
            fa = f(a);
        } else {
            lo = a;
            (a, fa) = (b, fb);
            b = lo + g * (hi - lo);
            fb = f(b);
        }
    }
    ((lo + hi) / 2.0).exp()
}

/// The loss of one image's logits `row` against its label and, if given, its teacher
/// probabilities, temperature and weight; writes `d loss / d row` divided by `batch` to
/// `grad` (without soft targets exactly the plain cross-entropy's, as before distillation).
pub fn image_loss(
    row: &[f32],
    label: usize,
    soft: Option<(&[f32], f32, f32)>,
    batch: f64,
    grad: &mut [f32],
) -> f64 {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = row.iter().map(|&x| ((x - max) as f64).exp()).sum();
    let hard = sum.ln() - (row[label] - max) as f64;
    let w = soft.map_or(0.0, |(_, _, w)| f64::from(w));
    for (k, g) in grad.iter_mut().enumerate() {
        let p = ((row[k] - max) as f64).exp() / sum;
        let target = if k == label { 1.0 } else { 0.0 };
        *g = ((1.0 - w) * (p - target) / batch) as f32;
    }
    let Some((q, t, _)) = soft else {
        return hard;
    };
    let t = f64::from(t);
    let scaled: Vec<f64> = row.iter().map(|&x| f64::from(x) / t).collect();
    let p_t = softmax(&scaled);
    let kl: f64 = q
        .iter()
        .zip(&p_t)
        .filter(|(&qk, _)| qk > 0.0)
        .map(|(&qk, &pk)| f64::from(qk) * (f64::from(qk).ln() - pk.max(1e-300).ln()))
        .sum();
    for (k, g) in grad.iter_mut().enumerate() {
        *g += (w * t * (p_t[k] - f64::from(q[k])) / batch) as f32;
    }
    (1.0 - w) * hard + w * t * t * kl
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gradient of the mixed loss matches central finite differences, for several
    /// temperatures and weights (0: the plain cross-entropy).
    #[test]
    fn the_gradient_matches_finite_differences() {
        let row = [0.3f32, -1.2, 2.0, 0.7];
        let q = [0.1f32, 0.05, 0.6, 0.25];
        for (t, w) in [(1.0, 0.0), (1.0, 0.5), (3.0, 0.7), (4.0, 1.0)] {
            let soft = Some((&q[..], t, w));
            let mut grad = [0.0f32; 4];
            image_loss(&row, 2, soft, 1.0, &mut grad);
            for k in 0..4 {
                let (mut up, mut down) = (row, row);
                up[k] += 1e-3;
                down[k] -= 1e-3;
                let mut g = [0.0f32; 4];
                let fd = (image_loss(&up, 2, soft, 1.0, &mut g)
                    - image_loss(&down, 2, soft, 1.0, &mut g))
                    / 2e-3;
                assert!(
                    (fd - f64::from(grad[k])).abs() < 2e-3,
                    "T {t} w {w} logit {k}: {fd} against {}",
                    grad[k]
                );
            }
        }
    }

    /// The fitted scale is the minimum of the labels' cross-entropy.
    #[test]
    fn the_scale_minimises_the_cross_entropy() {
        let scores = [10.0, 4.0, 3.0, 2.0, 9.0, 1.0, 5.0, 6.0, 2.0, 7.0, 7.0, 1.0];
        let y = [0u8, 1, 1, 0];
        let a = fit_scale(&scores, &y, 3);
        let f = |s: f64| cross_entropy(&scores, &y, 3, s);
        assert!(a > 0.0);
        assert!(f(a) <= f(a * 1.05) && f(a) <= f(a / 1.05), "{a}");
    }
}
