//! Training of the binary networks (the full-precision yardstick of `cbnn train --float` is
//! [`crate::float`]).
//!
//! A dedicated trainer for the fully binary networks (see ARCHITECTURE.md for why not a
//! framework); for the perceptron:
//! the first layer sums weight rows over the set bits of each image ([`first_layer`]), the small
//! dense layers use `matrixmultiply`, Adam updates the latent weights; the convolutional graph
//! ([`conv`]) and the logic-mapped one ([`lut`]) share the epoch loop. After every epoch the
//! network is lowered to the integer model ([`export`]) and scored by the reference model on
//! the validation split; the best epoch is kept. The result is an [`IntModel`]: nothing
//! downstream ever sees a float.

pub(crate) mod adam;
pub mod arch;
mod augment;
mod channel_norm;
pub mod conv;
pub mod distill;
pub mod export;
pub mod first_layer;
pub mod lut;
pub mod net;
pub mod shared;
pub mod warm;

use std::time::Instant;

use serde::Serialize;

use crate::bitslice::{PlaneSet, Sliced};
use crate::error::{Error, Result, Setting};
use crate::model::{InputShape, IntModel, Provenance};
use crate::reference;
use crate::util::{progress, rng::Rng};
use conv::ConvNet;
use first_layer::ActiveBits;
use net::{Mode, Net, Workspace};

/// Training hyper-parameters.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Hidden layer widths of a multilayer perceptron (when `arch` is not given).
    pub hidden: Vec<usize>,
    /// The hidden layers in the architecture notation ([`arch`]); a convolutional network when
    /// it has convolutions or pooling. `None`: the perceptron of `hidden`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<arch::Arch>,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Initial learning rate.
    pub lr: f32,
    /// Final learning rate as a fraction of the initial one (exponential decay per step).
    pub lr_final: f32,
    /// Random seed (initialisation and shuffling).
    pub seed: u64,
    /// Data augmentation: each training image is shifted by a random whole number of pixels
    /// in `-augment..=augment`, vertically and horizontally, every time it is used (0 = off).
    pub augment: usize,
    /// Print one line per epoch on stderr.
    pub verbose: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            hidden: vec![256, 256, 256],
            arch: None,
            epochs: 20,
            batch: 100,
            lr: 0.01,
            lr_final: 0.01,
            seed: 1,
            augment: 1,
            verbose: false,
        }
    }
}

/// A labelled, bit-sliced set of examples.
#[derive(Clone, Debug)]
pub struct SlicedSet {
    /// Packed features.
    pub x: Sliced,
    /// Labels.
    pub y: Vec<u8>,
    /// The raw images the features were sliced from (needed for augmentation).
    pub images: Option<crate::data::Images>,
}

/// What the trainer needs to know about the data besides the examples.
#[derive(Clone, Debug)]
pub struct DataMeta {
    /// Dataset name or directory, for provenance.
    pub dataset: String,
    /// Image shape.
    pub input: InputShape,
    /// Number of classes.
    pub classes: usize,
    /// Kept planes the features were sliced with.
    pub planes: PlaneSet,
}

/// One epoch's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct EpochReport {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Training accuracy of the float graph in training mode.
    pub train_accuracy: f64,
    /// Validation accuracy of the exported integer model.
    pub val_accuracy: f64,
    /// Learning rate of the epoch's first step (the one printed).
    pub lr: f32,
    /// Learning rate of the epoch's last step (the rate decays from step to step).
    #[serde(default)]
    pub lr_last: f32,
    /// Seconds spent in training steps.
    pub seconds: f64,
    /// Images trained on in this epoch.
    pub images: usize,
}

/// A trained float graph: the MLP graph or the convolutional one.
#[derive(Clone, Debug)]
pub enum Network {
    /// The multilayer perceptron graph.
    Mlp(Net),
    /// The convolutional graph.
    Conv(ConvNet),
    /// The logic-mapped graph.
    Lut(lut::LutGraph),
}

/// The result of a training run.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The exported integer model of the best epoch.
    pub model: IntModel,
    /// The float network of the best epoch.
    pub net: Network,
    /// Per-epoch history.
    pub history: Vec<EpochReport>,
    /// Training images per second over the whole run (training steps only, evaluation
    /// excluded).
    pub images_per_second: f64,
}

/// What the epoch loop needs of a float graph.
trait Graph: Clone {
    /// Buffers reused from batch to batch.
    type Ws: Default;
    /// One training step on a batch of packed feature rows: forward (train mode), loss,
    /// backward, one Adam update. Returns the mean loss and the correct predictions.
    fn step(
        &mut self,
        rows: &[&[u64]],
        labels: &[u8],
        soft: Option<distill::Soft>,
        lr: f32,
        adam: &mut adam::Adam,
        ws: &mut Self::Ws,
    ) -> (f64, usize);
    /// Brings the inference graph up to date with the weights before an export (by default
    /// nothing: the running statistics are used as they are).
    fn settle(&mut self, _train: &Sliced) {}
    /// The integer model computing what the graph computes in inference mode.
    fn export(&self, meta: &DataMeta) -> IntModel;
    /// The graph as a [`Network`].
    fn network(self) -> Network;
}

impl Graph for Net {
    type Ws = (Workspace, Vec<ActiveBits>);

    fn step(
        &mut self,
        rows: &[&[u64]],
        labels: &[u8],
        soft: Option<distill::Soft>,
        lr: f32,
        adam: &mut adam::Adam,
        (ws, bits): &mut Self::Ws,
    ) -> (f64, usize) {
        bits.resize_with(rows.len(), ActiveBits::default);
        for (slot, row) in bits.iter_mut().zip(rows) {
            slot.fill(row, self.features);
        }
        self.forward(bits, Mode::Train, ws);
        let (loss, ok) = self.loss_with(labels, soft, ws);
        self.backward(bits, ws);
        let offset = self.first_offset(ws).to_vec();
        if loss.is_finite() {
            adam.step(self, lr, &offset);
        }
        (loss, ok)
    }

    fn export(&self, meta: &DataMeta) -> IntModel {
        export::export(self, meta.input, &meta.planes, Provenance::default())
    }

    fn network(self) -> Network {
        Network::Mlp(self)
    }
}

impl Graph for shared::SharedNet {
    type Ws = (Workspace, Vec<ActiveBits>);

    fn step(
        &mut self,
        rows: &[&[u64]],
        labels: &[u8],
        soft: Option<distill::Soft>,
        lr: f32,
        adam: &mut adam::Adam,
        ws: &mut Self::Ws,
    ) -> (f64, usize) {
        shared::SharedNet::step(self, rows, labels, soft, lr, adam, ws)
    }

    /// The widest candidate's batch norm recalibrated on the first [`CALIBRATION_IMAGES`]
    /// training images: the running statistics mix every candidate's.
    fn settle(&mut self, train: &Sliced) {
        let n = train.count().min(CALIBRATION_IMAGES);
        let rows: Vec<&[u64]> = (0..n).map(|i| train.row(i)).collect();
        let widest = shared::Shape {
            planes: PlaneSet::all(),
            hidden: self.full.hidden.clone(),
        };
        let calibrated = self.calibrated(&widest, &rows);
        for (b, c) in self.full.bn.iter_mut().zip(calibrated.bn) {
            b.mean = c.mean;
            b.var = c.var;
        }
    }

    fn export(&self, meta: &DataMeta) -> IntModel {
        export::export(&self.full, meta.input, &meta.planes, Provenance::default())
    }

    fn network(self) -> Network {
        Network::Mlp(self.full)
    }
}

/// Training images the convolutional graph's batch norm is recalibrated on after each epoch.
pub const CALIBRATION_IMAGES: usize = 5000;

impl Graph for ConvNet {
    type Ws = (conv::Workspace, Vec<f32>);

    fn step(
        &mut self,
        rows: &[&[u64]],
        labels: &[u8],
        soft: Option<distill::Soft>,
        lr: f32,
        adam: &mut adam::Adam,
        (ws, x): &mut Self::Ws,
    ) -> (f64, usize) {
        conv::unpack(rows, self.input.len(), x);
        self.forward(x, Mode::Train, ws);
        let (loss, ok) = self.loss_with(labels, soft, ws);
        if loss.is_finite() {
            self.backward(ws);
            adam.step_params(self.params_mut(), lr);
        }
        (loss, ok)
    }

    /// Batch norm recalibrated on the first [`CALIBRATION_IMAGES`] training images: with the
    /// weight flips of a convolutional network, running averages over the last steps lag.
    fn settle(&mut self, train: &Sliced) {
        let n = train.count().min(CALIBRATION_IMAGES);
        let rows: Vec<&[u64]> = (0..n).map(|i| train.row(i)).collect();
        self.recalibrate(&rows);
    }

    fn export(&self, meta: &DataMeta) -> IntModel {
        export::export_conv(self, meta.input, &meta.planes, Provenance::default())
    }

    fn network(self) -> Network {
        Network::Conv(self)
    }
}

impl Trained {
    /// Median over epochs of the training images per second.
    pub fn median_images_per_second(&self) -> f64 {
        let mut v: Vec<f64> = self
            .history
            .iter()
            .map(|e| e.images as f64 / e.seconds.max(1e-9))
            .collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
}

/// Trains a network on `train`, keeping the epoch whose integer model scores best on `val`: the
/// convolutional graph when the configuration's architecture has convolutions or pooling, else
/// the multilayer perceptron.
pub fn train(
    cfg: &TrainConfig,
    meta: &DataMeta,
    train: &SlicedSet,
    val: &SlicedSet,
) -> Result<Trained> {
    train_distilled(cfg, meta, train, val, None)
}

/// [`train`], learning from `teacher`'s soft targets beside the labels when given
/// ([`distill`]; perceptrons and convolutional networks, not logic-mapped ones).
pub fn train_distilled(
    cfg: &TrainConfig,
    meta: &DataMeta,
    train: &SlicedSet,
    val: &SlicedSet,
    teacher: Option<&distill::Teacher>,
) -> Result<Trained> {
    validate(cfg, meta, train)?;
    let features = train.x.features;
    if let Some((neurons, fan_in)) = cfg.arch.as_ref().and_then(arch::Arch::logic_mapped) {
        let tau = lut::temperature(neurons / meta.classes);
        let graph = lut::LutGraph::new(features, neurons, fan_in, meta.classes, tau, cfg.seed);
        return epochs(graph, cfg, meta, train, val, teacher).map(|(t, _)| t);
    }
    match cfg.arch.as_ref().filter(|a| a.is_conv()) {
        Some(arch) => {
            let input = crate::layers::Shape {
                height: meta.input.height,
                width: meta.input.width,
                channels: meta.input.channels * meta.planes.len(),
            };
            let net = ConvNet::new(input, arch, meta.classes, cfg.seed);
            epochs(net, cfg, meta, train, val, teacher).map(|(t, _)| t)
        }
        None => {
            let hidden = cfg
                .arch
                .as_ref()
                .and_then(arch::Arch::dense_widths)
                .unwrap_or_else(|| cfg.hidden.clone());
            let net = Net::new(features, &hidden, meta.classes, cfg.seed);
            epochs(net, cfg, meta, train, val, teacher).map(|(t, _)| t)
        }
    }
}

/// Fine-tunes a network that starts from trained weights instead of a fresh initialisation (a
/// convnet's warm start, [`warm::child`]; a perceptron taken from a shared network,
/// [`shared::SharedNet::subnet`]), learning from `teacher`'s soft targets too when given: the
/// same epochs, checks and export as [`train`].
pub fn fine_tune(
    net: Network,
    cfg: &TrainConfig,
    meta: &DataMeta,
    train: &SlicedSet,
    val: &SlicedSet,
    teacher: Option<&distill::Teacher>,
) -> Result<Trained> {
    validate(cfg, meta, train)?;
    let trained = match net {
        Network::Mlp(n) => epochs(n, cfg, meta, train, val, teacher)?.0,
        Network::Conv(n) => epochs(n, cfg, meta, train, val, teacher)?.0,
        Network::Lut(n) => epochs(n, cfg, meta, train, val, teacher)?.0,
    };
    Ok(trained)
}

/// Trains a shared network ([`shared::SharedNet`]: one candidate of the perceptron search a
/// batch, on one set of weights) on `train`, whose features must be of all eight planes;
/// keeps the epoch whose widest candidate scores best on `val`. Returns the shared network
/// and the run (its model: the widest candidate's).
pub fn train_shared(
    net: shared::SharedNet,
    cfg: &TrainConfig,
    meta: &DataMeta,
    train: &SlicedSet,
    val: &SlicedSet,
    teacher: Option<&distill::Teacher>,
) -> Result<(Trained, shared::SharedNet)> {
    if meta.planes != PlaneSet::all() {
        return Err(Error::usage(
            "a shared network is trained on the features of all eight planes",
        ));
    }
    validate(cfg, meta, train)?;
    epochs(net, cfg, meta, train, val, teacher)
}

/// The epoch loop of every graph; returns the run and the graph of its best epoch.
fn epochs<G: Graph>(
    mut net: G,
    cfg: &TrainConfig,
    meta: &DataMeta,
    train: &SlicedSet,
    val: &SlicedSet,
    teacher: Option<&distill::Teacher>,
) -> Result<(Trained, G)> {
    if let Some(t) = teacher {
        if t.probs.len() != train.x.count() * meta.classes || t.classes != meta.classes {
            return Err(Error::usage(
                "the teacher's scores are not of these training images and classes",
            ));
        }
    }
    let mut soft_probs: Vec<f32> = Vec::new();
    let mut adam = adam::Adam::default();
    let mut rng = Rng::new(cfg.seed, 2);
    let mut order: Vec<usize> = (0..train.x.count()).collect();
    let n_batches = order.len() / cfg.batch + usize::from(order.len() % cfg.batch >= 2);
    let total_steps = (n_batches * cfg.epochs).max(1) as f32;
    let decay = cfg.lr_final.powf(1.0 / total_steps);
    let mut lr = cfg.lr;
    let mut lr_last = lr;
    let mut ws = G::Ws::default();
    let mut shifted: Vec<Vec<u64>> = Vec::new();
    let mut labels: Vec<u8> = Vec::new();
    let mut history = Vec::new();
    let mut best: Option<(f64, IntModel, G)> = None;
    let mut train_seconds = 0.0;
    let augmenter = match (&train.images, cfg.augment) {
        (_, 0) => None,
        (Some(images), shift) => Some(augment::Shifter::new(images, &meta.planes, shift)),
        (None, _) => return Err(Error::usage("augmentation needs the raw training images")),
    };
    let mut images = 0usize;

    let pb = progress::bar((n_batches * cfg.epochs) as u64, "train");
    for epoch in 1..=cfg.epochs {
        rng.shuffle(&mut order);
        let start = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        let lr_first = lr;
        for chunk in order.chunks(cfg.batch).filter(|c| c.len() >= 2) {
            labels.clear();
            labels.extend(chunk.iter().map(|&i| train.y[i]));
            let rows: Vec<&[u64]> = match &augmenter {
                Some(aug) => {
                    shifted.clear();
                    shifted.extend(chunk.iter().map(|&i| aug.row(i, &mut rng)));
                    shifted.iter().map(Vec::as_slice).collect()
                }
                None => chunk.iter().map(|&i| train.x.row(i)).collect(),
            };
            let soft = teacher.map(|t| {
                soft_probs.clear();
                soft_probs.extend(chunk.iter().flat_map(|&i| t.row(i).iter().copied()));
                distill::Soft {
                    probs: &soft_probs,
                    temperature: t.temperature,
                    weight: t.weight,
                }
            });
            let (loss, ok) = net.step(&rows, &labels, soft, lr, &mut adam, &mut ws);
            if !loss.is_finite() {
                return Err(Error::CheckFailed(format!(
                    "training diverged in epoch {epoch} (the loss is {loss}); a smaller learning \
                     rate may help, and nothing was written"
                )));
            }
            lr_last = lr;
            lr *= decay;
            loss_sum += loss * chunk.len() as f64;
            correct += ok;
            seen += chunk.len();
            pb.inc(1);
            pb.set_message(format!("epoch {epoch} loss {:.4}", loss_sum / seen as f64));
        }
        let seconds = start.elapsed().as_secs_f64();
        train_seconds += seconds;
        images += seen;
        net.settle(&train.x);
        let model = net.export(meta);
        let val_accuracy = reference::evaluate(&model, &val.x, &val.y).accuracy;
        let report = EpochReport {
            epoch,
            loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            val_accuracy,
            lr: lr_first,
            lr_last,
            seconds,
            images: seen,
        };
        if cfg.verbose {
            progress::log(
                &pb,
                &format!(
                    "epoch {:>3}  loss {:.4}  train {:.2}%  val {:.2}%  lr {:.2e}  {:.1}s ({:.0} img/s)",
                    epoch,
                    report.loss,
                    100.0 * report.train_accuracy,
                    100.0 * val_accuracy,
                    lr_first,
                    seconds,
                    seen as f64 / seconds
                ),
            );
        }
        history.push(report);
        if best.as_ref().is_none_or(|(acc, _, _)| val_accuracy > *acc) {
            best = Some((val_accuracy, model, net.clone()));
        }
    }
    pb.finish_and_clear();
    let (val_accuracy, mut model, best_net) = best.expect("at least one epoch");
    let best_epoch = history
        .iter()
        .find(|r| r.val_accuracy == val_accuracy)
        .map_or(0, |r| r.epoch);
    model.provenance = Provenance {
        tool: format!("cbnn {}", env!("CARGO_PKG_VERSION")),
        command: "train".into(),
        dataset: meta.dataset.clone(),
        seed: cfg.seed,
        epochs: cfg.epochs,
        best_epoch,
        train_images: train.x.count(),
        val_images: val.x.count(),
        val_accuracy,
        test_accuracy: None,
        hyper: serde_json::to_value(cfg).expect("config serialises"),
    };
    Ok((
        Trained {
            model,
            net: best_net.clone().network(),
            history,
            images_per_second: images as f64 / train_seconds.max(1e-9),
        },
        best_net,
    ))
}

/// Checks that a finished training run did not collapse: its last loss is not that of a
/// uniform guess over `classes` (equal logits), and its model does not predict one class for
/// every image of `val`. `cbnn train` runs it before writing, so a diverged run never replaces a model.
pub fn check_learned(trained: &Trained, val: &Sliced, classes: usize) -> Result<()> {
    // A network whose outputs collapsed to equal logits has a loss of exactly ln(classes) and
    // will not recover: a learning rate too large kills every neuron's gradient.
    let uniform = (classes as f64).ln();
    if let Some(last) = trained.history.last() {
        if (last.loss - uniform).abs() < 1e-4 {
            return Err(Error::CheckFailed(format!(
                "training diverged: the network's outputs collapsed to a uniform guess (loss \
                 {:.4} = ln {classes}); a smaller learning rate may help, and nothing was written",
                last.loss
            )));
        }
    }
    let predicted = reference::Executor::new(&trained.model).classify(val);
    if val.count() >= 10 && predicted.iter().all(|&c| c == predicted[0]) {
        return Err(Error::CheckFailed(format!(
            "training did not learn: the best epoch's model predicts class {} for all {} \
             validation images; a smaller learning rate may help, and nothing was written",
            predicted[0],
            predicted.len()
        )));
    }
    Ok(())
}

/// Checks the hyper-parameters alone (before any data is loaded).
pub fn validate_config(cfg: &TrainConfig) -> Result<()> {
    if cfg.hidden.is_empty() || cfg.hidden.contains(&0) {
        return Err(invalid!(
            Setting::Hidden,
            " {:?}: give at least one hidden layer, every width at least 1",
            cfg.hidden
        ));
    }
    if let Some(w) = cfg.hidden.iter().find(|&&w| w > MAX_WIDTH) {
        return Err(invalid!(
            Setting::Hidden,
            ": a width of {w} is more than the {MAX_WIDTH} neurons a layer may have"
        ));
    }
    if cfg.epochs == 0 || cfg.epochs > MAX_EPOCHS {
        return Err(invalid!(
            Setting::Epochs,
            " must be between 1 and {MAX_EPOCHS}"
        ));
    }
    if cfg.batch > MAX_BATCH {
        return Err(invalid!(
            Setting::Batch,
            " {} is more than {MAX_BATCH} images",
            cfg.batch
        ));
    }
    if cfg.batch < 2 {
        return Err(invalid!(
            Setting::Batch,
            " must be at least 2 (batch norm needs two examples)"
        ));
    }
    if !(cfg.lr > 0.0 && cfg.lr.is_finite()) {
        return Err(invalid!(Setting::Lr, " must be a positive number"));
    }
    if !(cfg.lr_final > 0.0 && cfg.lr_final <= 1.0) {
        return Err(invalid!(Setting::LrFinal, " must be in (0, 1]"));
    }
    Ok(())
}

/// The augmentation used when none is asked for: a shift of one pixel per 28 pixels of the
/// image's shorter side (1 for MNIST's 28x28, 0 below 28). A one-pixel shift helps on 28x28
/// images and costs up to 16 points on 8x8 ones (docs/results.md, `scripts/defaults_grid.sh`).
pub fn default_augment(input: &crate::model::InputShape) -> usize {
    input.height.min(input.width) / 28
}

/// The plane a logic-mapped network keeps when none is asked for: the most significant plane
/// that is set on at least 1 % and at most 99 % of the pixels of `images` (plane 7, "pixel >=
/// 128", on MNIST and Fashion-MNIST; a lower one on dark images, where plane 7 is always
/// clear), plane 7 when none is.
pub fn default_lut_plane(images: &crate::data::Images) -> u8 {
    let n = images.pixels.len().max(1) as f64;
    (0..8u8)
        .rev()
        .find(|&k| {
            let set = images.pixels.iter().filter(|&&p| (p >> k) & 1 == 1).count() as f64 / n;
            (0.01..=0.99).contains(&set)
        })
        .unwrap_or(7)
}

/// Widest hidden layer `train` builds.
pub const MAX_WIDTH: usize = 1 << 16;
/// Most epochs one training run may take.
pub const MAX_EPOCHS: usize = 100_000;
/// Largest batch.
pub const MAX_BATCH: usize = 1 << 16;
/// Most float weights a network may have (each needs four floats: weight, gradient and
/// Adam's two moments; 2^28 of them are 4 GiB).
pub const MAX_PARAMETERS: u64 = 1 << 28;

/// Checks that a network of these widths fits in memory before anything is allocated.
pub fn check_size(features: usize, hidden: &[usize], classes: usize) -> Result<()> {
    let mut inputs = features as u64;
    let mut total: u64 = 0;
    for &w in hidden.iter().chain(std::iter::once(&classes)) {
        total = total.saturating_add(inputs.saturating_mul(w as u64));
        inputs = w as u64;
    }
    if total > MAX_PARAMETERS {
        return Err(Error::usage(format!(
            "a network of {features} inputs, hidden widths {hidden:?} and {classes} classes has \
             {total} weights, more than the {MAX_PARAMETERS} training may hold in memory"
        )));
    }
    Ok(())
}

/// Checks that a logic-mapped architecture suits the data of `meta`: its neurons split into
/// one equal group per class, a neuron's inputs are at most the features, and the mapping
/// scores (a float per neuron input and feature) fit in memory.
pub fn check_lut_size(meta: &DataMeta, arch: &arch::Arch) -> Result<()> {
    let Some((neurons, fan_in)) = arch.logic_mapped() else {
        return Ok(());
    };
    let features = meta.input.pixels() * meta.planes.len();
    if !neurons.is_multiple_of(meta.classes) {
        return Err(invalid!(
            Setting::Arch,
            " {arch}: {neurons} neurons do not split into {} equal groups, one a class; use a \
             multiple of {}",
            meta.classes,
            meta.classes
        ));
    }
    if fan_in > features {
        return Err(invalid!(
            Setting::Arch,
            " {arch}: a neuron of {fan_in} inputs needs at least {fan_in} features; the images \
             give {features}"
        ));
    }
    let weights = (neurons as u64 * fan_in as u64).saturating_mul(features as u64);
    if weights > MAX_PARAMETERS {
        return Err(invalid!(
            Setting::Arch,
            " {arch}: {weights} mapping scores ({neurons} x {fan_in} inputs x {features} \
             features) are more than the {MAX_PARAMETERS} training may hold in memory; keep \
             fewer planes"
        ));
    }
    Ok(())
}

/// Most floats one batch's activations and windows may take in a convolutional network
/// (2^28, 1 GiB).
pub const MAX_BATCH_FLOATS: u64 = 1 << 28;

/// Checks that a convolutional architecture fits the images of `meta` (every window and pool
/// inside what it receives) and memory (weights, and `batch` images' windows and activations).
pub fn check_conv_size(meta: &DataMeta, arch: &arch::Arch, batch: usize) -> Result<()> {
    let values = crate::layers::Shape {
        height: meta.input.height,
        width: meta.input.width,
        channels: meta.input.channels * meta.planes.len(),
    };
    check_conv_fits(values, arch, meta.classes, batch)
}

/// [`check_conv_size`] for a network receiving `values` (the float counterpart receives the
/// pixels, one channel per pixel channel).
pub fn check_conv_fits(
    values: crate::layers::Shape,
    arch: &arch::Arch,
    classes: usize,
    batch: usize,
) -> Result<()> {
    let mut shape = values;
    let (mut weights, mut floats) = (0u64, 0u64);
    let at = |i: usize, op: &arch::Op| format!(" {arch}: layer {i} ({op})");
    for (i, op) in arch.0.iter().enumerate() {
        let s = shape;
        shape = op.output(s);
        match *op {
            arch::Op::Conv {
                channels,
                kernel,
                padding,
            } => {
                if padding == crate::layers::Padding::Valid
                    && (kernel > s.height || kernel > s.width)
                {
                    return Err(invalid!(
                        Setting::Arch,
                        "{}: a {kernel}x{kernel} window does not fit the {}x{} positions it receives",
                        at(i, op),
                        s.height,
                        s.width
                    ));
                }
                let window = (kernel * kernel * s.channels) as u64;
                weights = weights.saturating_add(window.saturating_mul(channels as u64));
                let positions = (shape.height * shape.width) as u64;
                floats =
                    floats.saturating_add(positions.saturating_mul(window + 4 * channels as u64));
            }
            arch::Op::Pool(p) => {
                if p > s.height || p > s.width {
                    return Err(invalid!(
                        Setting::Arch,
                        "{}: a {p}x{p} pool does not fit the {}x{} positions it receives",
                        at(i, op),
                        s.height,
                        s.width
                    ));
                }
            }
            arch::Op::Dense(n) => {
                weights = weights.saturating_add((s.len() as u64).saturating_mul(n as u64));
                floats = floats.saturating_add(4 * n as u64);
            }
            // Alone in its architecture, checked by `check_lut_size`.
            arch::Op::Lut { .. } => {}
        }
    }
    weights = weights.saturating_add((shape.len() as u64).saturating_mul(classes as u64));
    if weights > MAX_PARAMETERS {
        return Err(invalid!(
            Setting::Arch,
            " {arch}: {weights} weights are more than the {MAX_PARAMETERS} training may hold in \
             memory"
        ));
    }
    let per_batch = floats.saturating_mul(batch as u64);
    if per_batch > MAX_BATCH_FLOATS {
        return Err(invalid!(
            Setting::Arch,
            " {arch}: a batch of {batch} images needs {per_batch} floats of windows and \
             activations, more than {MAX_BATCH_FLOATS}; use a smaller batch or fewer channels"
        ));
    }
    Ok(())
}

fn validate(cfg: &TrainConfig, meta: &DataMeta, train: &SlicedSet) -> Result<()> {
    validate_config(cfg)?;
    match cfg.arch.as_ref() {
        Some(a) if a.is_logic_mapped() => check_lut_size(meta, a)?,
        Some(a) if a.is_conv() => check_conv_size(meta, a, cfg.batch)?,
        Some(a) => check_size(
            meta.input.pixels() * meta.planes.len(),
            &a.dense_widths().unwrap_or_default(),
            meta.classes,
        )?,
        None => check_size(
            meta.input.pixels() * meta.planes.len(),
            &cfg.hidden,
            meta.classes,
        )?,
    }
    if train.x.count() < 2 {
        return Err(Error::usage("training needs at least 2 images"));
    }
    if train.x.features != meta.input.pixels() * meta.planes.len() {
        return Err(Error::usage(
            "features do not match the input shape and planes",
        ));
    }
    Ok(())
}

/// How the exported integer model and the float graph agree on a set of images.
#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ExportCheck {
    /// Images compared.
    pub images: usize,
    /// Images on which both predict the same class.
    pub agree: usize,
}

impl ExportCheck {
    /// Whether they agree on every image.
    pub fn holds(&self) -> bool {
        self.agree == self.images
    }
}

/// The export check: the integer model of `trained` must predict, on every image of `data`,
/// the class its float graph predicts (inference mode). `int_pred` are the integer model's
/// classes of `data` by the reference executor.
pub fn export_check(trained: &Trained, data: &Sliced, int_pred: &[usize]) -> ExportCheck {
    let float_pred = predictions(&trained.net, data);
    ExportCheck {
        images: int_pred.len(),
        agree: float_pred
            .iter()
            .zip(int_pred)
            .filter(|(a, b)| a == b)
            .count(),
    }
}

/// Predictions of a trained float graph in inference mode (argmax of the logits, ties to the
/// lowest class).
pub fn predictions(net: &Network, data: &Sliced) -> Vec<usize> {
    match net {
        Network::Mlp(net) => float_predictions(net, data),
        Network::Conv(net) => {
            let rows: Vec<&[u64]> = (0..data.count()).map(|i| data.row(i)).collect();
            net.predict(&rows)
        }
        Network::Lut(g) => {
            let rows: Vec<&[u64]> = (0..data.count()).map(|i| data.row(i)).collect();
            g.predict(&rows)
        }
    }
}

/// Predictions of the float graph in inference mode (running batch-norm statistics), argmax of
/// the logits with ties to the lowest class. Used to check the export.
pub fn float_predictions(net: &Net, data: &Sliced) -> Vec<usize> {
    let mut net = net.clone();
    let mut ws = Workspace::default();
    let mut out = Vec::with_capacity(data.count());
    let idx: Vec<usize> = (0..data.count()).collect();
    for chunk in idx.chunks(500) {
        let bits: Vec<ActiveBits> = chunk
            .iter()
            .map(|&i| {
                let mut a = ActiveBits::default();
                a.fill(data.row(i), data.features);
                a
            })
            .collect();
        net.forward(&bits, Mode::Eval, &mut ws);
        for row in ws.logits().chunks_exact(net.classes) {
            let mut best = 0;
            for (k, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = k;
                }
            }
            out.push(best);
        }
    }
    out
}

#[cfg(test)]
mod tests;
