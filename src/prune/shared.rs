//! The search by evaluation (`cbnn prune --search shared`): one shared network is trained for
//! the candidates of the search, and each candidate the search asks for is then taken from its
//! weights and scored instead of retrained.
//!
//! Owns: which candidates the shared network is trained on (the plane sets the search's first
//! phase asks for and all eight planes, each at the baseline's widths scaled by every width
//! multiplier of the search), and the executor that hands the search each candidate's model
//! ([`Shared`]). The search itself, its phases and its acceptance rule are
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
use crate::train::arch::Arch;
use crate::train::shared::{self as sharing, SharedNet};
use crate::train::{self, DataMeta, SlicedSet};

/// The executor of the search by evaluation: trains the shared network when the search asks
/// for its first candidates, then takes every candidate from it.
pub struct Shared {
    /// Epochs of the shared training.
    pub epochs: usize,
    /// Width multipliers of the candidates trained (the search's).
    pub multipliers: Vec<f64>,
    /// Narrowest hidden layer (the search's).
    pub min_width: usize,
    trained: RefCell<Option<Trained>>,
}

struct Trained {
    net: SharedNet,
    meta: DataMeta,
    calibration: bitslice::Sliced,
    seconds: f64,
}

impl Shared {
    /// An executor whose shared network trains `epochs` epochs on the candidates of the given
    /// width multipliers.
    pub fn new(epochs: usize, multipliers: Vec<f64>, min_width: usize) -> Shared {
        Shared {
            epochs,
            multipliers,
            min_width,
            trained: RefCell::new(None),
        }
    }

    /// Seconds the shared training took (0 before it ran).
    pub fn training_seconds(&self) -> f64 {
        self.trained.borrow().as_ref().map_or(0.0, |t| t.seconds)
    }

    /// Trains the shared network for the plane sets of `specs` (the search's first phase) and
    /// all eight planes, at the baseline's widths (those of `specs`) and their scalings.
    fn train(&self, ctx: &Context, specs: &[Spec]) -> Result<Trained> {
        let base = specs
            .first()
            .map(|s| s.arch.clone())
            .ok_or_else(|| Error::usage("the search asked for no candidate"))?;
        let widths = base.dense_widths().ok_or_else(|| {
            Error::usage(format!(
                "the search by evaluation (--search shared) takes perceptrons; this baseline is \
                 {base}; use --search retrain"
            ))
        })?;
        let mut sets: Vec<PlaneSet> = vec![PlaneSet::all()];
        for s in specs {
            let p = PlaneSet::new(&s.planes)?;
            if !sets.contains(&p) {
                sets.push(p);
            }
        }
        let mut hiddens: Vec<Vec<usize>> = vec![widths.clone()];
        for &m in &self.multipliers {
            let scaled = scaled_widths(&base, m, self.min_width, ctx.classes)?;
            if !hiddens.contains(&scaled) {
                hiddens.push(scaled);
            }
        }
        let shapes: Vec<sharing::Shape> = sets
            .iter()
            .flat_map(|p| {
                hiddens.iter().map(|h| sharing::Shape {
                    planes: p.clone(),
                    hidden: h.clone(),
                })
            })
            .collect();
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
        let net = SharedNet::new(images.image_len(), &widths, ctx.classes, shapes, cfg.seed);
        let (_, net) = train::train_shared(net, &cfg, &meta, &train_set, &val_set)?;
        let n = ctx.split.train.len().min(train::CALIBRATION_IMAGES);
        let calibration = bitslice::slice(&ctx.split.train.slice(0..n).images, &all);
        Ok(Trained {
            net,
            meta,
            calibration,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// The hidden widths of `base` scaled by `m` as the search scales them.
fn scaled_widths(base: &Arch, m: f64, min_width: usize, classes: usize) -> Result<Vec<usize>> {
    base.scaled(m, min_width, 0)
        .in_groups(classes)
        .dense_widths()
        .ok_or_else(|| Error::usage("a scaled perceptron is a perceptron"))
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
        if self.trained.borrow().is_none() {
            let t = self.train(ctx, specs)?;
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
