//! Bit-level sensitivity analysis: what each kept bit plane is worth to a trained model.
//!
//! Post-training and without retraining: planes of the validation images are corrupted and the
//! integer model is re-evaluated by the reference model. Validation accuracy decides; test
//! accuracy is computed beside it for the reader and never used to decide anything.
//!
//! Methods:
//! - `drop`: one plane alone replaced by a constant, `-1` (bit 0) and `+1` (bit 1);
//! - `random`: one plane alone replaced by uniformly random bits, mean and spread over seeds;
//! - `cumulative`: the least significant kept planes replaced by random bits, one more at a
//!   time, up to the most significant.

mod plot;

pub use plot::write_svg;

use serde::{Deserialize, Serialize};

use crate::bitslice;
use crate::data::{Images, LabeledSet};
use crate::error::{Error, Result};
use crate::model::IntModel;
use crate::reference;
use crate::util::rng::Rng;

/// Which analyses to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// One plane replaced by a constant.
    Drop,
    /// One plane replaced by random bits.
    Random,
    /// Least significant planes replaced by random bits, cumulatively.
    Cumulative,
}

impl std::str::FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Method> {
        match s {
            "drop" => Ok(Method::Drop),
            "random" => Ok(Method::Random),
            "cumulative" => Ok(Method::Cumulative),
            _ => Err(Error::usage(format!(
                "unknown sensitivity method '{s}'; use drop, random or cumulative"
            ))),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Drop => "drop",
            Method::Random => "random",
            Method::Cumulative => "cumulative",
        })
    }
}

/// How plane bits are replaced.
#[derive(Clone, Copy, Debug)]
pub enum Corruption {
    /// Every bit of the planes set to this value (`false` = `-1`, `true` = `+1`).
    Constant(bool),
    /// Every bit of the planes replaced by a uniformly random bit from this seed.
    Random(u64),
}

/// A copy of `images` with the planes in `mask` (bit `b` = plane `b`) corrupted.
pub fn corrupt(images: &Images, mask: u8, how: Corruption) -> Images {
    let mut out = images.clone();
    match how {
        Corruption::Constant(true) => out.pixels.iter_mut().for_each(|p| *p |= mask),
        Corruption::Constant(false) => out.pixels.iter_mut().for_each(|p| *p &= !mask),
        Corruption::Random(seed) => {
            let mut rng = Rng::new(seed, 7);
            for chunk in out.pixels.chunks_mut(8) {
                let r = rng.next_u64().to_le_bytes();
                for (p, &x) in chunk.iter_mut().zip(&r) {
                    *p = (*p & !mask) | (x & mask);
                }
            }
        }
    }
    out
}

/// Accuracy of `model` on `set` after corrupting `mask`.
fn accuracy(model: &IntModel, set: &LabeledSet, mask: u8, how: Corruption) -> f64 {
    let images = if mask == 0 {
        set.images.clone()
    } else {
        corrupt(&set.images, mask, how)
    };
    let x = bitslice::slice(&images, &model.planes);
    reference::evaluate(model, &x, &set.labels).accuracy
}

/// Mean and (population) standard deviation.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// Validation and test accuracy of one corruption (random: mean and spread over seeds).
#[derive(Clone, Debug, Serialize, PartialEq, Deserialize)]
pub struct Score {
    /// Validation accuracy (mean over seeds for random corruption).
    pub val_accuracy: f64,
    /// Standard deviation over seeds (0 for constant corruption).
    pub val_std: f64,
    /// Validation accuracy lost against the uncorrupted model, in percentage points.
    pub val_drop_pp: f64,
    /// Test accuracy (mean over seeds), for information only.
    pub test_accuracy: f64,
}

/// Single-plane results for one kept plane.
#[derive(Clone, Debug, Serialize, PartialEq, Deserialize)]
pub struct PlaneRow {
    /// The plane (7 = most significant).
    pub plane: u8,
    /// `drop`: plane set to `-1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_minus: Option<Score>,
    /// `drop`: plane set to `+1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_plus: Option<Score>,
    /// `random`: plane replaced by random bits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random: Option<Score>,
}

/// Cumulative results: every kept plane up to and including `plane` corrupted.
#[derive(Clone, Debug, Serialize, PartialEq, Deserialize)]
pub struct CumulativeRow {
    /// The most significant corrupted plane.
    pub plane: u8,
    /// Number of corrupted planes.
    pub planes_removed: usize,
    /// The result.
    pub score: Score,
}

/// The whole analysis.
#[derive(Clone, Debug, Serialize, PartialEq, Deserialize)]
pub struct Report {
    /// Kept planes of the model, most significant first.
    pub planes: Vec<u8>,
    /// Seeds used for random corruption.
    pub seeds: usize,
    /// Validation images.
    pub val_images: usize,
    /// Test images.
    pub test_images: usize,
    /// Uncorrupted validation accuracy.
    pub baseline_val_accuracy: f64,
    /// Uncorrupted test accuracy.
    pub baseline_test_accuracy: f64,
    /// Per-plane results, most significant first.
    pub per_plane: Vec<PlaneRow>,
    /// Cumulative results, least significant first.
    pub cumulative: Vec<CumulativeRow>,
}

impl Report {
    /// Kept planes ranked from most to least important by `random` validation drop (ties
    /// broken by `drop` averages, then by significance). Falls back to significance.
    pub fn ranking(&self) -> Vec<u8> {
        let key = |r: &PlaneRow| {
            let random = r.random.as_ref().map_or(0.0, |s| s.val_drop_pp);
            let drop = match (&r.drop_minus, &r.drop_plus) {
                (Some(a), Some(b)) => (a.val_drop_pp + b.val_drop_pp) / 2.0,
                _ => 0.0,
            };
            (random, drop, r.plane)
        };
        let mut rows: Vec<&PlaneRow> = self.per_plane.iter().collect();
        rows.sort_by(|a, b| {
            let (ka, kb) = (key(a), key(b));
            kb.0.total_cmp(&ka.0)
                .then(kb.1.total_cmp(&ka.1))
                .then(kb.2.cmp(&ka.2))
        });
        rows.iter().map(|r| r.plane).collect()
    }
}

/// Runs the chosen `methods` on `model` with the validation and test sets.
pub fn analyze(
    model: &IntModel,
    val: &LabeledSet,
    test: &LabeledSet,
    methods: &[Method],
    seeds: usize,
    progress: &dyn Fn(),
) -> Report {
    let base_val = accuracy(model, val, 0, Corruption::Constant(false));
    let base_test = accuracy(model, test, 0, Corruption::Constant(false));
    let score = |mask: u8, how: &[Corruption]| {
        let v: Vec<f64> = how.iter().map(|&c| accuracy(model, val, mask, c)).collect();
        let t: Vec<f64> = how
            .iter()
            .map(|&c| accuracy(model, test, mask, c))
            .collect();
        progress();
        let (vm, vs) = mean_std(&v);
        Score {
            val_accuracy: vm,
            val_std: vs,
            val_drop_pp: 100.0 * (base_val - vm),
            test_accuracy: mean_std(&t).0,
        }
    };
    let randoms: Vec<Corruption> = (0..seeds as u64).map(Corruption::Random).collect();
    let per_plane = model
        .planes
        .planes()
        .iter()
        .map(|&p| {
            let mask = 1u8 << p;
            let drop = methods.contains(&Method::Drop);
            PlaneRow {
                plane: p,
                drop_minus: drop.then(|| score(mask, &[Corruption::Constant(false)])),
                drop_plus: drop.then(|| score(mask, &[Corruption::Constant(true)])),
                random: methods
                    .contains(&Method::Random)
                    .then(|| score(mask, &randoms)),
            }
        })
        .collect();
    let mut cumulative = Vec::new();
    if methods.contains(&Method::Cumulative) {
        let mut mask = 0u8;
        for (i, &p) in model.planes.planes().iter().rev().enumerate() {
            mask |= 1 << p;
            cumulative.push(CumulativeRow {
                plane: p,
                planes_removed: i + 1,
                score: score(mask, &randoms),
            });
        }
    }
    Report {
        planes: model.planes.planes().to_vec(),
        seeds,
        val_images: val.len(),
        test_images: test.len(),
        baseline_val_accuracy: base_val,
        baseline_test_accuracy: base_test,
        per_plane,
        cumulative,
    }
}

/// Number of progress steps [`analyze`] reports for these settings.
pub fn steps(model: &IntModel, methods: &[Method]) -> u64 {
    let k = model.planes.len() as u64;
    let mut n = 0;
    if methods.contains(&Method::Drop) {
        n += 2 * k;
    }
    if methods.contains(&Method::Random) {
        n += k;
    }
    if methods.contains(&Method::Cumulative) {
        n += k;
    }
    n
}

/// The report as a terminal table.
pub fn table(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "baseline: validation {:.2}%, test {:.2}% ({} validation images, {} random seeds)",
        100.0 * r.baseline_val_accuracy,
        100.0 * r.baseline_test_accuracy,
        r.val_images,
        r.seeds
    );
    let pct = |x: &Option<Score>| match x {
        Some(s) => format!("{:>7.2}% {:>+6.2}", 100.0 * s.val_accuracy, -s.val_drop_pp),
        None => format!("{:>15}", "-"),
    };
    let _ = writeln!(
        s,
        "\nplane  {:>15}  {:>15}  {:>15}  {:>7}  {:>8}",
        "set to -1", "set to +1", "random (mean)", "spread", "test rnd"
    );
    for row in &r.per_plane {
        let (spread, test) = match &row.random {
            Some(x) => (
                format!("{:.2}", 100.0 * x.val_std),
                format!("{:.2}%", 100.0 * x.test_accuracy),
            ),
            None => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            s,
            "{:>5}  {}  {}  {}  {:>7}  {:>8}",
            row.plane,
            pct(&row.drop_minus),
            pct(&row.drop_plus),
            pct(&row.random),
            spread,
            test
        );
    }
    if !r.cumulative.is_empty() {
        let _ = writeln!(
            s,
            "\ncumulative (random bits in every plane up to this one)"
        );
        let _ = writeln!(
            s,
            "planes  up to plane  {:>15}  {:>7}  {:>8}",
            "validation", "spread", "test"
        );
        for c in &r.cumulative {
            let _ = writeln!(
                s,
                "{:>6}  {:>11}  {:>7.2}% {:>+6.2}  {:>7.2}  {:>7.2}%",
                c.planes_removed,
                c.plane,
                100.0 * c.score.val_accuracy,
                -c.score.val_drop_pp,
                100.0 * c.score.val_std,
                100.0 * c.score.test_accuracy
            );
        }
    }
    let _ = write!(s, "\nvalidation accuracy with the change in percentage points; test shown for information only");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruption_touches_only_masked_planes() {
        let images = Images {
            height: 2,
            width: 5,
            channels: 1,
            pixels: (0..10).map(|i| i * 25).collect(),
        };
        let mask = 0b0000_0101;
        for how in [
            Corruption::Constant(false),
            Corruption::Constant(true),
            Corruption::Random(3),
        ] {
            let c = corrupt(&images, mask, how);
            for (a, b) in images.pixels.iter().zip(&c.pixels) {
                assert_eq!(a & !mask, b & !mask);
            }
        }
        let ones = corrupt(&images, mask, Corruption::Constant(true));
        assert!(ones.pixels.iter().all(|p| p & mask == mask));
        let r1 = corrupt(&images, 0xff, Corruption::Random(1));
        let r2 = corrupt(&images, 0xff, Corruption::Random(1));
        let r3 = corrupt(&images, 0xff, Corruption::Random(2));
        assert_eq!(r1, r2);
        assert_ne!(r1, r3);
    }
}
