//! The CBNN search: prune bit planes from the data, shrink the network, retrain, and keep the
//! smallest integer model whose validation accuracy stays within a budget of the baseline's.
//!
//! 1. **Planes.** The baseline's sensitivity analysis ranks its planes. For `k = 1, 2, ...` the
//!    `k` most important planes (and, when different, the `k` most significant ones, as a
//!    control) are retrained at the baseline's widths; the first `k` with a candidate inside
//!    the budget fixes the plane set.
//! 2. **Widths.** With that plane set, and with that set plus the next plane of the order it
//!    came from (more planes can allow narrower layers), every hidden width is scaled by
//!    decreasing multipliers and retrained, until a candidate falls outside the budget.
//! 3. **Deeper layers.** Keeping the first hidden layer of the smallest accepted model, the
//!    layers after it are scaled down further, until a candidate falls outside the budget.
//!    A logic-mapped model (one `lut` layer) has no deeper layers: its neurons read fewer
//!    inputs instead (fan-in 5, 4, ... at the smallest accepted model's planes and neurons),
//!    until a candidate falls outside the budget. Its widths phase keeps the neurons a
//!    multiple of the classes.
//! 4. **The largest layer.** For a convnet, the layer of the smallest accepted model that
//!    holds the most bits (usually the dense layer over the flattened feature map) is scaled
//!    down alone, until a candidate falls outside the budget.
//!
//! A candidate no smaller than the smallest accepted one cannot win and is never trained.
//!
//! Every candidate is retrained with the baseline's training settings and an epoch budget,
//! from scratch or (a convolutional network, [`PruneConfig::warm`]) from the baseline's weights
//! ([`crate::train::warm`]), exported, and scored by the reference model. Validation accuracy decides; test
//! accuracy is recorded for the report only. The chosen model is the smallest accepted one, or
//! the baseline itself when none is accepted.
//!
//! **Acceptance allows for the noise of a finite validation set.** A candidate is accepted when
//! its validation drop *plus* `noise_margin` standard errors of that drop stays within the
//! budget. The standard error is the paired one (baseline and candidate are scored on the
//! same images): with `b` images only the baseline gets right, `c` only the candidate, and `n`
//! images, `se = sqrt(b + c - (c - b)^2 / n) / n`. Without it the smallest candidate inside the
//! budget sits at its edge, where 5000 validation images cannot tell a 0.9 pp drop from a
//! 1.3 pp one on unseen images.

pub mod shared;

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::bitslice::{self, PlaneSet};
use crate::data::{LabeledSet, Split};
use crate::error::{Result, Setting};
use crate::model::{InputShape, IntModel};
use crate::reference;
use crate::sensitivity::{self, Method};
use crate::train::arch::Arch;
use crate::train::{self, DataMeta, SlicedSet, TrainConfig};

/// Search settings.
#[derive(Clone, Debug, Serialize)]
pub struct PruneConfig {
    /// Largest validation accuracy loss accepted, in percentage points.
    pub max_drop_pp: f64,
    /// Standard errors of the measured drop added to it before it is compared with the
    /// budget (0: the drop as measured).
    pub noise_margin: f64,
    /// Training epochs per candidate.
    pub epochs: usize,
    /// Convolutional candidates start from the baseline's weights ([`crate::train::warm`]).
    #[serde(default)]
    pub warm: bool,
    /// Width multipliers tried, largest first.
    pub multipliers: Vec<f64>,
    /// Multipliers then tried on the hidden layers after the first (the first layer, with its
    /// `pixels * K` inputs, holds most of the bits; the deeper ones often have room to spare).
    pub deep_multipliers: Vec<f64>,
    /// Multipliers then tried on a convnet's largest layer alone (the dense layer behind the
    /// last convolution usually holds most of its bits: 88 % of the `conv` preset's).
    pub largest_multipliers: Vec<f64>,
    /// Narrowest hidden layer a width search may produce.
    pub min_width: usize,
    /// Seeds for the sensitivity analysis that ranks the planes.
    pub sensitivity_seeds: usize,
}

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig {
            max_drop_pp: 1.0,
            noise_margin: 1.0,
            epochs: 30,
            warm: false,
            multipliers: vec![
                0.75, 0.625, 0.5, 0.375, 0.25, 0.1875, 0.125, 0.09375, 0.0625,
            ],
            deep_multipliers: vec![0.5, 0.25, 0.125],
            largest_multipliers: vec![0.5, 0.25, 0.125, 0.0625],
            min_width: 8,
            sensitivity_seeds: 3,
        }
    }
}

impl PruneConfig {
    /// Refuses settings the search cannot run with.
    pub fn check(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(invalid!(Setting::Epochs, " must be at least 1"));
        }
        if !self.max_drop_pp.is_finite() || self.max_drop_pp < 0.0 {
            return Err(invalid!(
                Setting::MaxDrop,
                " must be a number of percentage points, 0 or more"
            ));
        }
        if !self.noise_margin.is_finite() || self.noise_margin < 0.0 {
            return Err(invalid!(
                Setting::NoiseMargin,
                " must be a number of standard errors, 0 or more"
            ));
        }
        Ok(())
    }
}

/// One model's numbers, as the report lists them.
#[derive(Clone, Debug, Serialize, PartialEq, Deserialize)]
pub struct Summary {
    /// Kept planes, most significant first.
    pub planes: Vec<u8>,
    /// Hidden widths (dense layers).
    pub hidden: Vec<usize>,
    /// The hidden layers in the architecture notation (`c32,p2,d256`).
    #[serde(default)]
    pub arch: String,
    /// Weight plus threshold bits.
    pub size_bits: u64,
    /// Input bits (pixel x plane) some first-layer neuron reads, of `8 x pixels`: the kept
    /// planes' features, fewer for a logic-mapped model.
    #[serde(default)]
    pub input_bits: usize,
    /// Validation accuracy (fraction), reference model.
    pub val_accuracy: f64,
    /// Test accuracy (fraction), reference model; never used to decide.
    pub test_accuracy: f64,
}

/// A retrained candidate.
#[derive(Clone, Debug, Serialize, PartialEq, Deserialize)]
pub struct Candidate {
    /// Its numbers.
    #[serde(flatten)]
    pub summary: Summary,
    /// Search phase: `planes` or `widths`.
    pub phase: String,
    /// Width multiplier applied to the baseline's widths.
    pub multiplier: f64,
    /// Epochs trained.
    pub epochs: usize,
    /// Wall-clock seconds to train and evaluate.
    pub seconds: f64,
    /// Standard error of the validation drop (fraction), paired over the validation images.
    #[serde(default)]
    pub drop_se: f64,
    /// Inside the accuracy budget: `baseline - validation + noise_margin * drop_se` is at most
    /// the budget.
    pub accepted: bool,
}

/// The search's result.
#[derive(Clone, Debug, Serialize)]
pub struct PruneReport {
    /// The settings.
    pub config: PruneConfig,
    /// The model the search started from.
    pub baseline: Summary,
    /// The model returned.
    pub chosen: Summary,
    /// `baseline size / chosen size`.
    pub size_reduction: f64,
    /// Validation accuracy every candidate had to reach.
    pub val_threshold: f64,
    /// Planes from most to least important, by the baseline's sensitivity analysis.
    pub plane_ranking: Vec<u8>,
    /// Every candidate tried, in order.
    pub candidates: Vec<Candidate>,
    /// One sentence on the outcome.
    pub outcome: String,
    /// How candidates were scored: `retrain` (each trained) or `shared` (each taken from one
    /// shared network, then the smallest fine-tuned: [`shared`]).
    pub search: String,
    /// Wall-clock seconds of each part of the search, in the order they ran: the sensitivity
    /// analysis, each phase's candidates, and for the search by evaluation the shared
    /// training and the fine-tuning.
    pub phase_seconds: Vec<PhaseSeconds>,
    /// Total seconds.
    pub seconds: f64,
}

/// The seconds one part of a search took.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PhaseSeconds {
    /// The part: `sensitivity`, a phase (`planes`, `widths`, ...), `shared training`.
    pub phase: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Seconds by phase of `candidates`, in the order the phases first appear, after `before`.
fn phase_seconds(before: Vec<PhaseSeconds>, candidates: &[Candidate]) -> Vec<PhaseSeconds> {
    let mut out = before;
    for c in candidates {
        match out.iter_mut().find(|p| p.phase == c.phase) {
            Some(p) => p.seconds += c.seconds,
            None => out.push(PhaseSeconds {
                phase: c.phase.clone(),
                seconds: c.seconds,
            }),
        }
    }
    out
}

/// Events reported while the search runs.
pub enum Event<'a> {
    /// The sensitivity analysis finished.
    Ranked {
        /// The baseline's validation accuracy.
        baseline_val: f64,
        /// The planes, most important first.
        ranking: &'a [u8],
    },
    /// A candidate is about to be trained.
    Start {
        /// Its planes.
        planes: &'a [u8],
        /// Its hidden layers.
        arch: &'a Arch,
    },
    /// A candidate finished.
    Done(&'a Candidate),
}

/// Inputs shared by every candidate.
pub struct Context<'a> {
    /// The data.
    pub split: &'a Split,
    /// Dataset name, for provenance.
    pub dataset: String,
    /// Classes.
    pub classes: usize,
    /// Training settings of the baseline (epochs are replaced by the budget).
    pub train: TrainConfig,
    /// The baseline's planes ranked by an earlier sensitivity analysis, most important first
    /// (`None`: the search runs its own).
    pub ranking: Option<Vec<u8>>,
    /// The model every candidate starts from (a warm start from the baseline, see
    /// [`crate::train::warm`]); `None`: candidates are trained from scratch.
    pub parent: Option<&'a IntModel>,
    /// The teacher every candidate learns from beside the labels, with the temperature and
    /// the weight of its soft targets ([`crate::train::distill`]); `None`: labels only.
    pub teacher: Option<(&'a IntModel, f32, f32)>,
}

fn summary(model: &IntModel, val: f64, test: f64) -> Summary {
    Summary {
        planes: model.planes.planes().to_vec(),
        hidden: model.hidden_widths(),
        arch: model.arch(),
        size_bits: model.size_bits(),
        input_bits: model.input_bits(),
        val_accuracy: val,
        test_accuracy: test,
    }
}

fn accuracy(model: &IntModel, set: &LabeledSet) -> f64 {
    let x = bitslice::slice(&set.images, &model.planes);
    reference::evaluate(model, &x, &set.labels).accuracy
}

/// Which images of `set` the model classifies correctly.
fn correct(model: &IntModel, set: &LabeledSet) -> Vec<bool> {
    let x = bitslice::slice(&set.images, &model.planes);
    reference::classify(model, &x)
        .iter()
        .zip(&set.labels)
        .map(|(&p, &y)| p == y as usize)
        .collect()
}

/// The acceptance rule of a search: a candidate is accepted when its validation accuracy
/// minus `noise_margin` paired standard errors of its drop reaches `threshold`.
struct Rule {
    /// Which validation images the baseline classifies correctly.
    base_correct: Vec<bool>,
    /// Validation accuracy a candidate must reach.
    threshold: f64,
    /// Standard errors of the drop added to it.
    noise_margin: f64,
}

impl Rule {
    /// Scores `model` on the validation and test images and judges it: the report's line of
    /// a candidate of `phase` trained `epochs` epochs in `seconds`.
    fn judge(
        &self,
        model: &IntModel,
        ctx: &Context,
        phase: &str,
        multiplier: f64,
        epochs: usize,
        seconds: f64,
    ) -> Candidate {
        let cand_correct = correct(model, &ctx.split.val);
        let val =
            cand_correct.iter().filter(|&&c| c).count() as f64 / cand_correct.len().max(1) as f64;
        let drop_se = paired_drop_se(&self.base_correct, &cand_correct);
        Candidate {
            summary: summary(model, val, accuracy(model, &ctx.split.test)),
            phase: phase.into(),
            multiplier,
            epochs,
            seconds,
            drop_se,
            accepted: val - self.noise_margin * drop_se >= self.threshold,
        }
    }
}

/// Standard error of `accuracy(base) - accuracy(candidate)` when both are measured on the same
/// images (`base[i]`, `cand[i]`: image `i` classified correctly): the standard error of the
/// mean of the per-image differences.
pub fn paired_drop_se(base: &[bool], cand: &[bool]) -> f64 {
    assert_eq!(base.len(), cand.len());
    let n = base.len() as f64;
    if base.is_empty() {
        return 0.0;
    }
    let only_base = base.iter().zip(cand).filter(|(&b, &c)| b && !c).count() as f64;
    let only_cand = base.iter().zip(cand).filter(|(&b, &c)| !b && c).count() as f64;
    let var = only_base + only_cand - (only_cand - only_base).powi(2) / n;
    var.max(0.0).sqrt() / n
}

/// Runs the search from `baseline`. Returns the chosen model and the report.
pub fn prune(
    baseline: &IntModel,
    ctx: &Context,
    cfg: &PruneConfig,
    on: &mut dyn FnMut(Event),
) -> Result<(IntModel, PruneReport)> {
    prune_with(baseline, ctx, cfg, &InProcess, on)
}

/// One candidate of the search: what to retrain, and the phase that asked for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Kept planes, most significant first.
    pub planes: Vec<u8>,
    /// Hidden layers.
    pub arch: Arch,
    /// Search phase (`planes`, `widths`, `deep`, `fan-in`, `largest`).
    pub phase: &'static str,
    /// Width multiplier of the phase.
    pub multiplier: f64,
}

/// Trains the candidates of the search.
///
/// The search hands an executor one *sequence* at a time: the candidates a phase would train
/// one after another if each were accepted. The executor trains them (one at a time or
/// several at once, here or elsewhere) and gives each model to `take` in the sequence's order;
/// `take` returns `false` when the phase stops, and the executor then drops whatever it
/// trained or started past that point. The search therefore decides exactly as a sequential
/// run does, whatever the executor.
pub trait Executor {
    /// Trains `specs` for `epochs` epochs each and hands `take` each model with its
    /// wall-clock seconds, in order, until `take` returns `false`.
    fn run(
        &self,
        ctx: &Context,
        epochs: usize,
        specs: &[Spec],
        on_start: &mut dyn FnMut(&Spec),
        take: &mut dyn FnMut(IntModel, f64) -> Result<bool>,
    ) -> Result<()>;
}

/// The executor of a plain `cbnn prune`: each candidate retrained in this process, one after
/// another, only when the one before it let the phase go on.
pub struct InProcess;

impl Executor for InProcess {
    fn run(
        &self,
        ctx: &Context,
        epochs: usize,
        specs: &[Spec],
        on_start: &mut dyn FnMut(&Spec),
        take: &mut dyn FnMut(IntModel, f64) -> Result<bool>,
    ) -> Result<()> {
        for spec in specs {
            on_start(spec);
            let t0 = Instant::now();
            let model = retrain(ctx, &spec.planes, &spec.arch, epochs, ctx.parent)?;
            if !take(model, t0.elapsed().as_secs_f64())? {
                break;
            }
        }
        Ok(())
    }
}

/// [`prune`] with the candidates trained by `exec`. The result does not depend on the
/// executor.
pub fn prune_with(
    baseline: &IntModel,
    ctx: &Context,
    cfg: &PruneConfig,
    exec: &dyn Executor,
    on: &mut dyn FnMut(Event),
) -> Result<(IntModel, PruneReport)> {
    cfg.check()?;
    let start = Instant::now();
    let base = summary(
        baseline,
        accuracy(baseline, &ctx.split.val),
        accuracy(baseline, &ctx.split.test),
    );
    let threshold = base.val_accuracy - cfg.max_drop_pp / 100.0;
    let rule = Rule {
        base_correct: correct(baseline, &ctx.split.val),
        threshold,
        noise_margin: cfg.noise_margin,
    };
    let ranked_at = Instant::now();
    let ranking = match &ctx.ranking {
        Some(r) => r.clone(),
        None => sensitivity::analyze(
            baseline,
            &ctx.split.val,
            &ctx.split.test,
            &[Method::Drop, Method::Random],
            cfg.sensitivity_seeds,
            &|| {},
        )
        .ranking(),
    };
    let sensitivity_seconds = PhaseSeconds {
        phase: "sensitivity".into(),
        seconds: ranked_at.elapsed().as_secs_f64(),
    };
    on(Event::Ranked {
        baseline_val: base.val_accuracy,
        ranking: &ranking,
    });

    let mut candidates: Vec<Candidate> = Vec::new();
    let mut models: Vec<IntModel> = Vec::new();
    // Trains a sequence of candidates; `decide` sees each (its index in the sequence, its
    // validation accuracy and size when accepted) and says whether the phase goes on.
    let mut sequence =
        |specs: &[Spec], decide: &mut dyn FnMut(usize, Option<(f64, u64)>) -> bool| -> Result<()> {
            let mut i = 0;
            let on_cell = std::cell::RefCell::new(&mut *on);
            exec.run(
                ctx,
                cfg.epochs,
                specs,
                &mut |spec| {
                    (on_cell.borrow_mut())(Event::Start {
                        planes: &spec.planes,
                        arch: &spec.arch,
                    })
                },
                &mut |model, seconds| {
                    let spec = &specs[i];
                    let c = rule.judge(
                        &model,
                        ctx,
                        spec.phase,
                        spec.multiplier,
                        cfg.epochs,
                        seconds,
                    );
                    (on_cell.borrow_mut())(Event::Done(&c));
                    let ok = c
                        .accepted
                        .then_some((c.summary.val_accuracy, c.summary.size_bits));
                    candidates.push(c);
                    models.push(model);
                    let go_on = decide(i, ok);
                    i += 1;
                    Ok(go_on)
                },
            )
        };
    let classes = baseline.classes();
    let base_arch: Arch = baseline.arch().parse()?;
    let scaled =
        |a: &Arch, m: f64, skip: usize| a.scaled(m, cfg.min_width, skip).in_groups(classes);
    // The size a candidate will have, known before it is trained.
    let size_of = |planes: &[u8], a: &Arch| {
        let values = crate::layers::Shape {
            height: baseline.input.height,
            width: baseline.input.width,
            channels: baseline.input.channels * planes.len(),
        };
        a.size_bits(values, classes)
    };
    // The candidates of a shrinking phase, each smaller than the one before, as the phase
    // would train them if each were accepted: a candidate no smaller than the smallest
    // accepted model cannot win and is skipped without training.
    let shrinking = |set: &[u8], shapes: Vec<(Arch, f64)>, phase: &'static str, best: u64| {
        let mut best = best;
        let mut specs = Vec::new();
        for (arch, multiplier) in shapes {
            let size = size_of(set, &arch);
            if size >= best {
                continue;
            }
            best = size;
            specs.push(Spec {
                planes: set.to_vec(),
                arch,
                phase,
                multiplier,
            });
        }
        specs
    };
    // Smallest accepted model so far.
    let mut best_size = base.size_bits;
    let mut best_shape: Option<(Vec<u8>, Arch)> = None;

    // Phase 1: the fewest planes that keep accuracy, at the baseline's widths. Each plane set
    // remembers the order it was drawn from, to extend it by one plane later.
    let k_all = baseline.planes.len();
    let msb_order: Vec<u8> = baseline.planes.planes().to_vec();
    let mut found: Option<(f64, Vec<u8>, Vec<u8>)> = None;
    let mut specs = Vec::new();
    let mut orders = Vec::new();
    for k in 1..k_all {
        let mut sets = vec![(sorted(&ranking[..k]), ranking.clone())];
        if sorted(&msb_order[..k]) != sets[0].0 {
            sets.push((sorted(&msb_order[..k]), msb_order.clone()));
        }
        for (set, order) in sets {
            specs.push(Spec {
                planes: set,
                arch: base_arch.clone(),
                phase: "planes",
                multiplier: 1.0,
            });
            orders.push(order);
        }
    }
    sequence(&specs, &mut |i, ok| {
        let set = &specs[i].planes;
        if let Some((val, size)) = ok {
            if size < best_size {
                best_size = size;
                best_shape = Some((set.clone(), base_arch.clone()));
            }
            if found.as_ref().is_none_or(|(b, _, _)| val > *b) {
                found = Some((val, set.clone(), orders[i].clone()));
            }
        }
        // The first plane count with an accepted set ends the phase.
        let last_of_its_count = specs.get(i + 1).is_none_or(|n| n.planes.len() != set.len());
        !(found.is_some() && last_of_its_count)
    })?;

    // Phase 2: shrink every hidden width, for the chosen plane set and for that set plus the
    // next plane of its order (more planes can allow narrower layers).
    let width_sets: Vec<Vec<u8>> = match found {
        Some((_, set, order)) => {
            let mut v = vec![set.clone()];
            if set.len() < k_all {
                v.push(sorted(&order[..set.len() + 1]));
            }
            v
        }
        None => vec![msb_order.clone()],
    };
    for set in &width_sets {
        let shapes = cfg
            .multipliers
            .iter()
            .map(|&m| (scaled(&base_arch, m, 0), m))
            .filter(|(a, _)| *a != base_arch)
            .collect();
        let specs = shrinking(set, shapes, "widths", best_size);
        sequence(&specs, &mut |i, ok| match ok {
            Some((_, size)) => {
                if size < best_size {
                    best_size = size;
                    best_shape = Some((set.clone(), specs[i].arch.clone()));
                }
                true
            }
            None => false,
        })?;
    }

    // Phase 3, a logic-mapped model: fewer inputs a neuron (half the table each step), on the
    // best model's planes and neurons.
    if let Some((_, fan_in)) = base_arch.logic_mapped() {
        let (set, shape) = best_shape
            .clone()
            .unwrap_or_else(|| (msb_order.clone(), base_arch.clone()));
        let shapes = (2..fan_in)
            .rev()
            .map(|f| (shape.with_fan_in(f), 1.0))
            .collect();
        let specs = shrinking(&set, shapes, "fan-in", best_size);
        sequence(&specs, &mut shrinks(&mut best_size))?;
    }
    // Phase 3, otherwise: keep the first hidden layer of the best model, shrink the layers
    // after it.
    else if let Some((set, widths)) = best_shape.clone() {
        let shapes = cfg
            .deep_multipliers
            .iter()
            .map(|&m| (scaled(&widths, m, 1), m))
            .filter(|(a, _)| *a != widths)
            .collect();
        let specs = shrinking(&set, shapes, "deep", best_size);
        sequence(&specs, &mut shrinks(&mut best_size))?;
    }

    // Phase 4, a convnet: shrink the layer of the best model that holds the most bits, alone.
    // The convolutions are where a convnet's accuracy comes from and few of its bits; the
    // dense layer over the flattened feature map is the reverse, and the phases above shrink
    // it only together with them.
    if let Some((set, shape)) = best_shape.clone().filter(|(_, a)| a.is_conv()) {
        let input = crate::layers::Shape {
            height: baseline.input.height,
            width: baseline.input.width,
            channels: baseline.input.channels * set.len(),
        };
        let bits = shape.layer_bits(input);
        // The first of equals.
        let largest = (0..bits.len())
            .max_by_key(|&i| (bits[i], std::cmp::Reverse(i)))
            .unwrap_or(0);
        let shapes = cfg
            .largest_multipliers
            .iter()
            .map(|&m| (shape.scaled_layer(largest, m, cfg.min_width), m))
            .filter(|(a, _)| *a != shape)
            .collect();
        let specs = shrinking(&set, shapes, "largest", best_size);
        sequence(&specs, &mut shrinks(&mut best_size))?;
    }

    let best = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.accepted && c.summary.size_bits < base.size_bits)
        .min_by(|a, b| {
            a.1.summary.size_bits.cmp(&b.1.summary.size_bits).then(
                b.1.summary
                    .val_accuracy
                    .total_cmp(&a.1.summary.val_accuracy),
            )
        })
        .map(|(i, _)| i);
    let (model, chosen, outcome) = match best {
        Some(i) => {
            let mut m = models.swap_remove(i);
            m.provenance.command = "prune".into();
            let c = candidates[i].summary.clone();
            let text = format!(
                "chose planes {:?}, {}: {:.2}x smaller, validation {:.2}% (baseline {:.2}%)",
                c.planes,
                widths_text(&c),
                base.size_bits as f64 / c.size_bits as f64,
                100.0 * c.val_accuracy,
                100.0 * base.val_accuracy
            );
            (m, c, text)
        }
        None => (
            baseline.clone(),
            base.clone(),
            format!(
                "no candidate reached {:.2}% validation accuracy (baseline {:.2}% minus {} pp) with {} standard errors to spare: returning the baseline",
                100.0 * threshold,
                100.0 * base.val_accuracy,
                cfg.max_drop_pp,
                cfg.noise_margin
            ),
        ),
    };
    let report = PruneReport {
        config: cfg.clone(),
        size_reduction: base.size_bits as f64 / chosen.size_bits as f64,
        baseline: base,
        chosen,
        val_threshold: threshold,
        plane_ranking: ranking,
        phase_seconds: phase_seconds(vec![sensitivity_seconds], &candidates),
        candidates,
        outcome,
        search: "retrain".into(),
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((model, report))
}

/// The decision of a shrinking phase after its first step: go on while candidates are
/// accepted, each the smallest so far.
fn shrinks(best_size: &mut u64) -> impl FnMut(usize, Option<(f64, u64)>) -> bool + '_ {
    move |_, ok| match ok {
        Some((_, size)) => {
            *best_size = (*best_size).min(size);
            true
        }
        None => false,
    }
}

fn sorted(planes: &[u8]) -> Vec<u8> {
    let mut v = planes.to_vec();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v
}

/// `widths [256, 128]` for a perceptron, `arch c32,p2,d64` for anything else.
fn widths_text(s: &Summary) -> String {
    if crate::train::arch::is_perceptron(&s.arch) {
        format!("widths {:?}", s.hidden)
    } else {
        format!("arch {}", s.arch)
    }
}

/// Trains a model with `planes` and hidden layers `shape` with the baseline's settings (a
/// perceptron through the perceptron's settings, exactly as the baseline was trained): from
/// scratch, or, for a convolutional network with a `warm` parent, from the parent's weights
/// ([`train::warm::child`]).
pub fn retrain(
    ctx: &Context,
    planes: &[u8],
    shape: &Arch,
    epochs: usize,
    warm: Option<&IntModel>,
) -> Result<IntModel> {
    let planes = PlaneSet::new(planes)?;
    let images = &ctx.split.train.images;
    let meta = DataMeta {
        dataset: ctx.dataset.clone(),
        input: InputShape {
            height: images.height,
            width: images.width,
            channels: images.channels,
        },
        classes: ctx.classes,
        planes: planes.clone(),
    };
    let slice = |s: &LabeledSet, keep_images: bool| SlicedSet {
        x: bitslice::slice(&s.images, &planes),
        y: s.labels.clone(),
        images: keep_images.then(|| s.images.clone()),
    };
    let cfg = match shape.dense_widths() {
        Some(hidden) => TrainConfig {
            hidden,
            arch: None,
            epochs,
            verbose: false,
            ..ctx.train.clone()
        },
        None => TrainConfig {
            arch: Some(shape.clone()),
            epochs,
            verbose: false,
            ..ctx.train.clone()
        },
    };
    let (train_set, val_set) = (slice(&ctx.split.train, true), slice(&ctx.split.val, false));
    let teacher = ctx.teacher.map(|(model, t, w)| {
        let x = bitslice::slice(&ctx.split.train.images, &model.planes);
        train::distill::Teacher::new(model, &x, &ctx.split.train.labels, t, w)
    });
    let teacher = teacher.as_ref();
    let trained = match warm.filter(|_| shape.is_conv()) {
        Some(parent) => {
            let n = ctx.split.train.len().min(train::CALIBRATION_IMAGES);
            let first = ctx.split.train.slice(0..n);
            let calibration = bitslice::slice(&first.images, &parent.planes);
            let rows: Vec<&[u64]> = (0..n).map(|i| calibration.row(i)).collect();
            let net = train::warm::child(parent, &rows, &planes, shape, cfg.seed)?;
            train::fine_tune(
                train::Network::Conv(net),
                &cfg,
                &meta,
                &train_set,
                &val_set,
                teacher,
            )?
        }
        None => train::train_distilled(&cfg, &meta, &train_set, &val_set, teacher)?,
    };
    Ok(trained.model)
}

/// The candidates as a terminal table.
pub fn table(r: &PruneReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let row = |s: &mut String, tag: &str, x: &Summary, extra: &str| {
        let _ = writeln!(
            s,
            "{:<9} {:<17} {:<15} {:>10} {:>7} {:>7.2}x {:>7.2}% {:>7.2}% {}",
            tag,
            format!("{:?}", x.planes),
            if crate::train::arch::is_perceptron(&x.arch) {
                format!("{:?}", x.hidden)
            } else {
                x.arch.clone()
            },
            x.size_bits,
            x.input_bits,
            r.baseline.size_bits as f64 / x.size_bits as f64,
            100.0 * x.val_accuracy,
            100.0 * x.test_accuracy,
            extra
        );
    };
    let _ = writeln!(
        s,
        "{:<9} {:<17} {:<15} {:>10} {:>7} {:>8} {:>8} {:>8} drop ± se  epochs  seconds  verdict",
        "", "planes", "widths", "size bits", "in bits", "smaller", "val", "test"
    );
    row(&mut s, "baseline", &r.baseline, "");
    for c in &r.candidates {
        let verdict = if c.accepted { "accepted" } else { "rejected" };
        row(
            &mut s,
            &c.phase,
            &c.summary,
            &format!(
                "{:>4.2} ± {:.2}  {:>6}  {:>7.1}  {verdict}",
                100.0 * (r.baseline.val_accuracy - c.summary.val_accuracy),
                100.0 * c.drop_se,
                c.epochs,
                c.seconds
            ),
        );
    }
    row(&mut s, "chosen", &r.chosen, "");
    let _ = write!(
        s,
        "validation threshold {:.2}% (drop + {} se within {} pp); {}",
        100.0 * r.val_threshold,
        r.config.noise_margin,
        r.config.max_drop_pp,
        r.outcome
    );
    s
}

#[cfg(test)]
mod tests {
    use super::paired_drop_se;

    #[test]
    fn paired_standard_error_counts_only_disagreements() {
        // 100 images: both right on 80, only the baseline on 12, only the candidate on 4.
        let mut base = vec![true; 80];
        let mut cand = vec![true; 80];
        base.extend([true; 12]);
        cand.extend([false; 12]);
        base.extend([false; 4]);
        cand.extend([true; 4]);
        base.extend([false; 4]);
        cand.extend([false; 4]);
        // Per-image differences: +1 on 12, -1 on 4, 0 elsewhere; mean 0.08,
        // variance (16 - 8^2 / 100) / 100, standard error of the mean sqrt(15.36) / 100.
        let se = paired_drop_se(&base, &cand);
        assert!((se - 15.36f64.sqrt() / 100.0).abs() < 1e-12, "{se}");
        assert_eq!(paired_drop_se(&base, &base), 0.0);
        assert_eq!(paired_drop_se(&[], &[]), 0.0);
    }
}
