//! The search by evaluation (`cbnn prune --search shared`): one shared network is trained for
//! the candidates of the search, and each candidate the search asks for is then taken from its
//! weights and scored instead of retrained.
//!
//! Owns: which candidates the shared network is trained on (each phase's, when the phase first
//! asks for them, with the widest candidate beside them: the network is trained further phase
//! after phase), and the executor that hands the search each candidate's model ([`Shared`]). The search itself, its phases and its acceptance rule are
//! [`crate::prune`]'s, unchanged.
//!
//! Never: retrains a candidate. Perceptrons only: a convolutional or logic-mapped baseline is
//! refused in one sentence.

use std::cell::RefCell;
use std::time::Instant;

use super::{Context, Executor, Spec};
use crate::bitslice::{self, PlaneSet};
use crate::error::{Error, Result};
use crate::model::{InputShape, IntModel};
use crate::train::shared::{self as sharing, SharedNet};
use crate::train::{self, DataMeta, SlicedSet};

/// The executor of the search by evaluation: trains the shared network when the search asks
/// for its first candidates, then takes every candidate from it.
pub struct Shared {
    /// Epochs of the shared training, each phase.
    pub epochs: usize,
    /// The teacher whose class scores the shared training learns from beside the labels, with
    /// the temperature and the weight of its soft targets ([`crate::train::distill`]).
    pub teacher: Option<(IntModel, f32, f32)>,
    /// Percentage points the search's budget is widened by while it scores candidates taken
    /// from the shared network (a candidate gains accuracy when it is fine-tuned).
    pub slack_pp: f64,
    /// Epochs of each fine-tuning.
    pub fine_tune_epochs: usize,
    /// Most candidates fine-tuned.
    pub fine_tunes: usize,
    trained: RefCell<Option<Trained>>,
}

struct Trained {
    net: SharedNet,
    meta: DataMeta,
    calibration: bitslice::Sliced,
    teacher: Option<train::distill::Teacher>,
    cfg: train::TrainConfig,
    seconds: f64,
    /// Every candidate trained on so far (planes, hidden layers).
    trained_on: Vec<(Vec<u8>, String)>,
}

impl Shared {
    /// An executor whose shared network trains `epochs` epochs on each phase's candidates.
    pub fn new(epochs: usize) -> Shared {
        Shared {
            epochs,
            teacher: None,
            slack_pp: 1.0,
            fine_tune_epochs: epochs.div_ceil(2),
            fine_tunes: 4,
            trained: RefCell::new(None),
        }
    }

    /// Seconds the shared training took (0 before it ran).
    pub fn training_seconds(&self) -> f64 {
        self.trained.borrow().as_ref().map_or(0.0, |t| t.seconds)
    }

    /// Trains the shared network (further, when `previous` has been trained) on the
    /// candidates of `specs`, each of their plane sets at the baseline's widths, and all eight
    /// planes at the baseline's widths.
    fn train(&self, ctx: &Context, specs: &[Spec], previous: Option<Trained>) -> Result<Trained> {
        let mut shapes: Vec<sharing::Shape> = Vec::new();
        for s in specs {
            let hidden = s.arch.dense_widths().ok_or_else(|| {
                Error::usage(format!(
                    "the search by evaluation (--search shared) takes perceptrons; this \
                     candidate is {}; use --search retrain",
                    s.arch
                ))
            })?;
            let shape = sharing::Shape {
                planes: PlaneSet::new(&s.planes)?,
                hidden,
            };
            if !shapes.contains(&shape) {
                shapes.push(shape);
            }
        }
        let widths = match &previous {
            Some(p) => p.net.full.hidden.clone(),
            None => shapes
                .first()
                .map(|s| s.hidden.clone())
                .ok_or_else(|| Error::usage("the search asked for no candidate"))?,
        };
        if shapes.iter().any(|s| {
            s.hidden.len() != widths.len() || s.hidden.iter().zip(&widths).any(|(a, b)| a > b)
        }) {
            return Err(Error::usage(
                "a candidate is wider than the baseline; the shared network cannot serve it",
            ));
        }
        // Beside the candidates, each of their plane sets at the widest widths, and all eight
        // planes: the largest member of each family keeps being trained, so that what a
        // phase started from does not drift while the phase trains narrower ones.
        let mut families: Vec<PlaneSet> = vec![PlaneSet::all()];
        for s in &shapes {
            if !families.contains(&s.planes) {
                families.push(s.planes.clone());
            }
        }
        for (k, planes) in families.into_iter().enumerate() {
            let widest = sharing::Shape {
                planes,
                hidden: widths.clone(),
            };
            if !shapes.contains(&widest) {
                shapes.insert(k, widest);
            }
        }
        let images = &ctx.split.train.images;
        let meta = DataMeta {
            dataset: ctx.dataset.clone(),
            input: InputShape {
                height: images.height,
                width: images.width,
                channels: images.channels,
            },
            classes: ctx.classes,
            planes: PlaneSet::all(),
        };
        let all = PlaneSet::all();
        let train_set = SlicedSet {
            x: bitslice::slice(images, &all),
            y: ctx.split.train.labels.clone(),
            images: Some(images.clone()),
        };
        let val_set = SlicedSet {
            x: bitslice::slice(&ctx.split.val.images, &all),
            y: ctx.split.val.labels.clone(),
            images: None,
        };
        let cfg = train::TrainConfig {
            hidden: widths.clone(),
            arch: None,
            epochs: self.epochs,
            verbose: false,
            ..ctx.train.clone()
        };
        let start = Instant::now();
        let (net, before, teacher) = match previous {
            Some(p) => (
                SharedNet::from_net(p.net.full, images.image_len(), shapes),
                p.seconds,
                p.teacher,
            ),
            None => (
                SharedNet::new(images.image_len(), &widths, ctx.classes, shapes, cfg.seed),
                0.0,
                self.teacher.as_ref().map(|(model, t, w)| {
                    let x = bitslice::slice(images, &model.planes);
                    train::distill::Teacher::new(model, &x, &ctx.split.train.labels, *t, *w)
                }),
            ),
        };
        let (_, net) =
            train::train_shared(net, &cfg, &meta, &train_set, &val_set, teacher.as_ref())?;
        let n = ctx.split.train.len().min(train::CALIBRATION_IMAGES);
        let calibration = bitslice::slice(&ctx.split.train.slice(0..n).images, &all);
        Ok(Trained {
            net,
            meta,
            calibration,
            teacher,
            cfg,
            seconds: before + start.elapsed().as_secs_f64(),
            trained_on: Vec::new(),
        })
    }
}

impl Shared {
    /// Fine-tunes candidate `spec` from the shared weights for `epochs` epochs (learning
    /// from the teacher too, when there is one). The shared network must have been trained.
    pub fn fine_tune(&self, ctx: &Context, spec: &Spec, epochs: usize) -> Result<IntModel> {
        let guard = self.trained.borrow();
        let t = guard
            .as_ref()
            .ok_or_else(|| Error::usage("the shared network has not been trained"))?;
        let shape = sharing::Shape {
            planes: PlaneSet::new(&spec.planes)?,
            hidden: spec
                .arch
                .dense_widths()
                .ok_or_else(|| Error::usage("the search by evaluation takes perceptrons only"))?,
        };
        let n = t.calibration.count();
        let rows: Vec<&[u64]> = (0..n).map(|i| t.calibration.row(i)).collect();
        let net = t.net.calibrated(&shape, &rows);
        let meta = DataMeta {
            planes: shape.planes.clone(),
            ..t.meta.clone()
        };
        let slice = |s: &crate::data::LabeledSet, keep: bool| SlicedSet {
            x: bitslice::slice(&s.images, &shape.planes),
            y: s.labels.clone(),
            images: keep.then(|| s.images.clone()),
        };
        let cfg = train::TrainConfig {
            hidden: shape.hidden.clone(),
            epochs,
            ..t.cfg.clone()
        };
        let trained = train::fine_tune(
            train::Network::Mlp(net),
            &cfg,
            &meta,
            &slice(&ctx.split.train, true),
            &slice(&ctx.split.val, false),
            t.teacher.as_ref(),
        )?;
        Ok(trained.model)
    }
}

impl Executor for Shared {
    fn run(
        &self,
        ctx: &Context,
        _epochs: usize,
        specs: &[Spec],
        on_start: &mut dyn FnMut(&Spec),
        take: &mut dyn FnMut(IntModel, f64) -> Result<bool>,
    ) -> Result<()> {
        // Trained, or trained further, on the candidates it is asked for that it has not
        // been trained on: each phase's, as the phase asks.
        let key = |s: &Spec| (s.planes.clone(), s.arch.to_string());
        let untrained: Vec<Spec> = {
            let guard = self.trained.borrow();
            specs
                .iter()
                .filter(|s| {
                    guard
                        .as_ref()
                        .is_none_or(|t| !t.trained_on.contains(&key(s)))
                })
                .cloned()
                .collect()
        };
        if !untrained.is_empty() {
            let previous = self.trained.borrow_mut().take();
            let mut trained_on = previous
                .as_ref()
                .map_or(Vec::new(), |p| p.trained_on.clone());
            let mut t = self.train(ctx, &untrained, previous)?;
            trained_on.extend(untrained.iter().map(key));
            t.trained_on = trained_on;
            *self.trained.borrow_mut() = Some(t);
        }
        let guard = self.trained.borrow();
        let t = guard.as_ref().expect("trained above");
        let n = t.calibration.count();
        let rows: Vec<&[u64]> = (0..n).map(|i| t.calibration.row(i)).collect();
        for spec in specs {
            on_start(spec);
            let start = Instant::now();
            let hidden = spec
                .arch
                .dense_widths()
                .ok_or_else(|| Error::usage("the search by evaluation takes perceptrons only"))?;
            if hidden.len() != t.net.full.hidden.len()
                || hidden.iter().zip(&t.net.full.hidden).any(|(w, f)| w > f)
            {
                return Err(Error::usage(format!(
                    "the candidate of widths {hidden:?} is not inside the shared network's {:?}",
                    t.net.full.hidden
                )));
            }
            let shape = sharing::Shape {
                planes: PlaneSet::new(&spec.planes)?,
                hidden,
            };
            let model = t.net.candidate(&shape, &rows, &t.meta);
            if !take(model, start.elapsed().as_secs_f64())? {
                break;
            }
        }
        Ok(())
    }
}

/// The search by evaluation: the search's phases run on candidates taken from the shared
/// network, with the budget widened by [`Shared::slack_pp`]; then the candidates inside that
/// wider budget are fine-tuned ([`Shared::fine_tune_epochs`] epochs each), smallest first, and
/// the first one inside the real budget (the same rule as the retraining search: validation
/// drop plus the noise margin) is chosen. At most [`Shared::fine_tunes`] are fine-tuned; the
/// baseline is returned when none is accepted.
pub fn search(
    baseline: &IntModel,
    ctx: &Context,
    cfg: &super::PruneConfig,
    exec: &Shared,
    on: &mut dyn FnMut(super::Event),
) -> Result<(IntModel, super::PruneReport)> {
    let (slack_pp, fine_tune_epochs, fine_tunes) =
        (exec.slack_pp, exec.fine_tune_epochs, exec.fine_tunes);
    let start = Instant::now();
    let relaxed = super::PruneConfig {
        max_drop_pp: cfg.max_drop_pp + slack_pp,
        ..cfg.clone()
    };
    let (_, mut report) = super::prune_with(baseline, ctx, &relaxed, exec, on)?;
    let threshold = report.baseline.val_accuracy - cfg.max_drop_pp / 100.0;
    let rule = super::Rule {
        base_correct: super::correct(baseline, &ctx.split.val),
        threshold,
        noise_margin: cfg.noise_margin,
    };
    let mut promising: Vec<super::Candidate> = report
        .candidates
        .iter()
        .filter(|c| c.accepted && c.summary.size_bits < report.baseline.size_bits)
        .cloned()
        .collect();
    promising.sort_by_key(|c| c.summary.size_bits);
    promising.dedup_by(|a, b| {
        a.summary.planes == b.summary.planes && a.summary.hidden == b.summary.hidden
    });
    // Evaluated candidates are reported as scored, not as chosen.
    for c in &mut report.candidates {
        c.accepted = false;
    }
    let mut chosen: Option<(IntModel, super::Summary)> = None;
    for c in promising.into_iter().take(fine_tunes) {
        let spec = Spec {
            planes: c.summary.planes.clone(),
            arch: c.summary.arch.parse()?,
            phase: "fine-tune",
            multiplier: c.multiplier,
        };
        on(super::Event::Start {
            planes: &spec.planes,
            arch: &spec.arch,
        });
        let t0 = Instant::now();
        let model = exec.fine_tune(ctx, &spec, fine_tune_epochs)?;
        let tuned = rule.judge(
            &model,
            ctx,
            "fine-tune",
            c.multiplier,
            fine_tune_epochs,
            t0.elapsed().as_secs_f64(),
        );
        on(super::Event::Done(&tuned));
        let accepted = tuned.accepted;
        let summary = tuned.summary.clone();
        report.candidates.push(tuned);
        if accepted {
            chosen = Some((model, summary));
            break;
        }
    }
    let base = report.baseline.clone();
    let (model, summary, outcome) = match chosen {
        Some((mut m, s)) => {
            m.provenance.command = "prune".into();
            let text = format!(
                "chose planes {:?}, {} (fine-tuned from the shared network): {:.2}x smaller, \
                 validation {:.2}% (baseline {:.2}%)",
                s.planes,
                super::widths_text(&s),
                base.size_bits as f64 / s.size_bits as f64,
                100.0 * s.val_accuracy,
                100.0 * base.val_accuracy
            );
            (m, s, text)
        }
        None => (
            baseline.clone(),
            base.clone(),
            format!(
                "no fine-tuned candidate reached {:.2}% validation accuracy (baseline {:.2}% \
                 minus {} pp) with {} standard errors to spare: returning the baseline",
                100.0 * threshold,
                100.0 * base.val_accuracy,
                cfg.max_drop_pp,
                cfg.noise_margin
            ),
        ),
    };
    // The scored candidates' seconds are those of taking them from the shared network; the
    // shared training is a part of its own.
    let mut parts = vec![report.phase_seconds[0].clone()];
    parts.push(super::PhaseSeconds {
        phase: "shared training".into(),
        seconds: exec.training_seconds(),
    });
    report.phase_seconds = super::phase_seconds(parts, &report.candidates);
    report.search = "shared".into();
    report.config = cfg.clone();
    report.val_threshold = threshold;
    report.size_reduction = base.size_bits as f64 / summary.size_bits as f64;
    report.chosen = summary;
    report.outcome = outcome;
    report.seconds = start.elapsed().as_secs_f64();
    Ok((model, report))
}
