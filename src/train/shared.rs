//! One training for many candidates of the perceptron search: a network over all eight planes
//! at the widest widths whose weights serve every smaller candidate.
//!
//! Owns: the shared network ([`SharedNet`]), what a candidate ([`Shape`]: kept planes and
//! hidden widths) takes of it ([`SharedNet::subnet`]: the first layer's rows of the kept
//! planes' features, the first `w` units of every hidden layer, so each layer's units are a
//! prefix of the widest one's), the training step that trains one candidate a batch on the
//! shared weights, and a candidate's integer model ([`SharedNet::candidate`]: its batch norm
//! recalibrated on training images, then lowered as any trained network is).
//!
//! A dropped plane's features are absent from every sum of the candidate, exactly as in a
//! model that never had the plane: the candidate *is* a network over its own planes, built
//! from the shared weights, and trained, lowered and scored by the same code as any other.
//!
//! Never: decides which candidates the search tries, or whether one is accepted (that is
//! [`crate::prune`]'s).

use super::adam::Adam;
use super::first_layer::{ActiveBits, Layout};
use super::net::{BatchNorm, Mode, Net, Param, Workspace};
use super::{export, DataMeta};
use crate::bitslice::{PlaneSet, Subset};
use crate::model::{IntModel, Provenance};

/// Training images per batch when batch norm is recalibrated.
const CALIBRATION_BATCH: usize = 500;

/// A candidate the shared network serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Kept planes.
    pub planes: PlaneSet,
    /// Hidden widths, each at most the shared network's.
    pub hidden: Vec<usize>,
}

/// The shared network and the candidates it is trained for.
#[derive(Clone, Debug)]
pub struct SharedNet {
    /// The network over all eight planes at the widest widths.
    pub full: Net,
    /// Pixels per image (the full network has eight features a pixel).
    pixels: usize,
    /// The candidates trained, one a batch, in turn.
    shapes: Vec<Shape>,
    /// Each candidate's move from all planes to its own.
    subsets: Vec<Subset>,
    /// The candidate of the next batch.
    next: usize,
}

impl SharedNet {
    /// A freshly initialised shared network for images of `pixels` pixels, hidden widths
    /// `hidden` (the widest of every candidate) and `classes` classes, trained on `shapes` in
    /// turn. Panics if a shape is wider or deeper than `hidden` (the caller builds both).
    pub fn new(
        pixels: usize,
        hidden: &[usize],
        classes: usize,
        shapes: Vec<Shape>,
        seed: u64,
    ) -> SharedNet {
        let full = Net::new(pixels * 8, hidden, classes, seed);
        SharedNet::from_net(full, pixels, shapes)
    }

    /// A shared network starting from `full` (a network over all eight planes).
    pub fn from_net(full: Net, pixels: usize, shapes: Vec<Shape>) -> SharedNet {
        assert_eq!(full.features, pixels * 8);
        for s in &shapes {
            assert_eq!(s.hidden.len(), full.hidden.len());
            assert!(s
                .hidden
                .iter()
                .zip(&full.hidden)
                .all(|(w, f)| *w >= 1 && w <= f));
        }
        let all = PlaneSet::all();
        let subsets = shapes
            .iter()
            .map(|s| Subset::new(&all, &s.planes).expect("every plane is in the full set"))
            .collect();
        SharedNet {
            full,
            pixels,
            shapes,
            subsets,
            next: 0,
        }
    }

    /// The candidates trained.
    pub fn shapes(&self) -> &[Shape] {
        &self.shapes
    }

    /// For each feature of `planes`, the full network's feature it is.
    fn feature_map(&self, planes: &PlaneSet) -> Vec<usize> {
        let at: Vec<usize> = planes.planes().iter().map(|&p| 7 - p as usize).collect();
        (0..self.pixels)
            .flat_map(|p| at.iter().map(move |&j| p * 8 + j))
            .collect()
    }

    /// The network of candidate `shape`, taken from the shared weights (its Adam moments
    /// zero, its batch norm's running statistics the shared ones' prefix).
    pub fn subnet(&self, shape: &Shape) -> Net {
        let full = &self.full;
        let map = self.feature_map(&shape.planes);
        let h = &shape.hidden;
        let (fl, sl) = (
            full.first_layout(),
            Layout {
                inputs: map.len(),
                outputs: h[0],
            },
        );
        let mut w1 = vec![0.0f32; sl.len()];
        for (i, &fi) in map.iter().enumerate() {
            for j in 0..h[0] {
                w1[sl.index(i, j)] = full.w1.value[fl.index(fi, j)];
            }
        }
        let prefix = |m: &[f32], cols: usize, rows: usize, take_cols: usize| -> Vec<f32> {
            (0..rows)
                .flat_map(|r| m[r * cols..r * cols + take_cols].iter().copied())
                .collect()
        };
        let dense = (1..h.len())
            .map(|l| {
                let w = prefix(&full.dense[l - 1].value, full.hidden[l - 1], h[l], h[l - 1]);
                Param::new(w, true)
            })
            .collect();
        let last = h.len() - 1;
        let out = prefix(&full.out.value, full.hidden[last], full.classes, h[last]);
        let bn = full
            .bn
            .iter()
            .zip(h)
            .map(|(b, &n)| BatchNorm {
                gamma: Param::new(b.gamma.value[..n].to_vec(), false),
                beta: Param::new(b.beta.value[..n].to_vec(), false),
                mean: b.mean[..n].to_vec(),
                var: b.var[..n].to_vec(),
                calibration: Vec::new(),
            })
            .collect();
        Net {
            features: map.len(),
            hidden: h.clone(),
            classes: full.classes,
            w1: Param::new(w1, true),
            dense,
            out: Param::new(out, true),
            bn,
            theta: Param::new(full.theta.value.clone(), false),
            binarize: full.binarize,
        }
    }

    /// Sets the full network's gradients to those of `sub` (the network of `shape` after its
    /// backward pass, `sub_offset` its first layer's offset), zero for every weight `sub`
    /// does not have; returns the full first layer's offset.
    fn scatter_grads(&mut self, shape: &Shape, sub: &Net, sub_offset: &[f32]) -> Vec<f32> {
        let map = self.feature_map(&shape.planes);
        let h = &shape.hidden;
        let full = &mut self.full;
        let (fl, sl) = (full.first_layout(), sub.first_layout());
        let mut offset = vec![0.0f32; fl.outputs];
        offset[..h[0]].copy_from_slice(&sub_offset[..h[0]]);
        // A weight's gradient is `2 * acc - offset[j]`: `offset[j] / 2` makes it zero.
        for i in 0..fl.inputs {
            for (j, &o) in offset.iter().enumerate() {
                full.w1.grad[fl.index(i, j)] = o / 2.0;
            }
        }
        for (i, &fi) in map.iter().enumerate() {
            for j in 0..h[0] {
                full.w1.grad[fl.index(fi, j)] = sub.w1.grad[sl.index(i, j)];
            }
        }
        let scatter = |to: &mut [f32], from: &[f32], cols: usize, rows: usize, sub_cols: usize| {
            to.fill(0.0);
            for r in 0..rows {
                to[r * cols..r * cols + sub_cols]
                    .copy_from_slice(&from[r * sub_cols..(r + 1) * sub_cols]);
            }
        };
        for l in 1..h.len() {
            let cols = full.hidden[l - 1];
            scatter(
                &mut full.dense[l - 1].grad,
                &sub.dense[l - 1].grad,
                cols,
                h[l],
                h[l - 1],
            );
        }
        let last = h.len() - 1;
        let cols = full.hidden[last];
        scatter(
            &mut full.out.grad,
            &sub.out.grad,
            cols,
            full.classes,
            h[last],
        );
        for (b, s) in full.bn.iter_mut().zip(&sub.bn) {
            let n = s.gamma.value.len();
            b.gamma.grad.fill(0.0);
            b.beta.grad.fill(0.0);
            b.gamma.grad[..n].copy_from_slice(&s.gamma.grad);
            b.beta.grad[..n].copy_from_slice(&s.beta.grad);
        }
        full.theta.grad.copy_from_slice(&sub.theta.grad);
        offset
    }

    /// The features of candidate `k` of the rows `rows` (features of all eight planes).
    fn rows_of(&self, k: usize, rows: &[&[u64]]) -> Vec<Vec<u64>> {
        let sub = &self.subsets[k];
        let words = crate::bitslice::words_for(sub.features(self.pixels));
        rows.iter()
            .map(|r| {
                let mut out = vec![0u64; words];
                sub.apply(r, self.pixels, &mut out);
                out
            })
            .collect()
    }

    /// One training step of the next candidate on a batch (`rows`: features of all eight
    /// planes): forward, loss and backward of its network, one Adam update of the shared
    /// weights it has (the others get a zero gradient). Returns the mean loss and the correct
    /// predictions.
    pub fn step(
        &mut self,
        rows: &[&[u64]],
        labels: &[u8],
        soft: Option<super::distill::Soft>,
        lr: f32,
        adam: &mut Adam,
        (ws, bits): &mut (Workspace, Vec<ActiveBits>),
    ) -> (f64, usize) {
        let k = self.next % self.shapes.len();
        self.next += 1;
        let shape = self.shapes[k].clone();
        let mut sub = self.subnet(&shape);
        let sub_rows = self.rows_of(k, rows);
        bits.resize_with(rows.len(), ActiveBits::default);
        for (slot, row) in bits.iter_mut().zip(&sub_rows) {
            slot.fill(row, sub.features);
        }
        sub.forward(bits, Mode::Train, ws);
        let (loss, ok) = sub.loss_with(labels, soft, ws);
        sub.backward(bits, ws);
        let offset = self.scatter_grads(&shape, &sub, sub.first_offset(ws));
        if loss.is_finite() {
            adam.step(&mut self.full, lr, &offset);
        }
        (loss, ok)
    }

    /// The network of `shape` with its batch norm recalibrated on `rows` (training images'
    /// features of all eight planes): the population statistics of its own pre-activations,
    /// since the shared running statistics mix every candidate's.
    pub fn calibrated(&self, shape: &Shape, rows: &[&[u64]]) -> Net {
        let mut sub = self.subnet(shape);
        let subset = Subset::new(&PlaneSet::all(), &shape.planes).expect("a subset");
        let words = crate::bitslice::words_for(subset.features(self.pixels));
        recalibrate(&mut sub, rows, |row, out| {
            out.resize(words, 0);
            subset.apply(row, self.pixels, out);
        });
        sub
    }

    /// The integer model of candidate `shape`: its network from the shared weights, batch
    /// norm recalibrated on `rows` ([`SharedNet::calibrated`]), lowered as a trained network
    /// is.
    pub fn candidate(&self, shape: &Shape, rows: &[&[u64]], meta: &DataMeta) -> IntModel {
        let sub = self.calibrated(shape, rows);
        export::export(&sub, meta.input, &shape.planes, Provenance::default())
    }
}

/// Sets `net`'s batch-norm running statistics to the population statistics of its
/// pre-activations over `rows`, each turned into the network's features by `features`.
pub fn recalibrate(net: &mut Net, rows: &[&[u64]], features: impl Fn(&[u64], &mut Vec<u64>)) {
    let mut ws = Workspace::default();
    let mut buf = Vec::new();
    for chunk in rows.chunks(CALIBRATION_BATCH).filter(|c| c.len() >= 2) {
        let bits: Vec<ActiveBits> = chunk
            .iter()
            .map(|r| {
                features(r, &mut buf);
                let mut b = ActiveBits::default();
                b.fill(&buf, net.features);
                b
            })
            .collect();
        net.forward(&bits, Mode::Calibrate, &mut ws);
    }
    for bn in &mut net.bn {
        bn.finish_calibration();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::first_layer::tests::random_batch;
    use crate::util::rng::Rng;

    const PIXELS: usize = 9;

    fn net(shapes: Vec<Shape>) -> SharedNet {
        let mut n = SharedNet::new(PIXELS, &[70, 12, 6], 4, shapes, 3);
        let mut rng = Rng::new(8, 0);
        for b in &mut n.full.bn {
            for (m, v) in b.mean.iter_mut().zip(&mut b.var) {
                *m = rng.uniform(-3.0, 3.0);
                *v = rng.uniform(0.5, 4.0);
            }
        }
        n
    }

    fn shape(planes: &[u8], hidden: &[usize]) -> Shape {
        Shape {
            planes: PlaneSet::new(planes).unwrap(),
            hidden: hidden.to_vec(),
        }
    }

    /// Feature `i` of a candidate is, on any image, the full network's feature the candidate
    /// takes its weights from: dropping planes keeps each pixel's kept planes.
    #[test]
    fn a_candidates_features_are_the_full_networks_of_its_planes() {
        let n = net(vec![]);
        let mut rng = Rng::new(2, 0);
        let pixels: Vec<u8> = (0..PIXELS).map(|_| rng.next_u64() as u8).collect();
        for planes in [&[7u8][..], &[6, 3], &[7, 5, 4, 0], &[0]] {
            let set = PlaneSet::new(planes).unwrap();
            for (i, &f) in n.feature_map(&set).iter().enumerate() {
                assert_eq!(
                    crate::bitslice::feature(&pixels, &set, i),
                    crate::bitslice::feature(&pixels, &PlaneSet::all(), f),
                    "{planes:?} feature {i}"
                );
            }
        }
    }

    /// The widest candidate over all planes is the full network itself, and a step on it is
    /// the full network's own training step.
    #[test]
    fn the_widest_candidate_is_the_full_network() {
        let widest = shape(&[7, 6, 5, 4, 3, 2, 1, 0], &[70, 12, 6]);
        let mut shared = net(vec![widest.clone()]);
        let sub = shared.subnet(&widest);
        assert!(sub.w1.value == shared.full.w1.value, "w1 differs");
        assert!(sub.out.value == shared.full.out.value, "out differs");
        assert!(
            sub.dense[1].value == shared.full.dense[1].value,
            "dense[1] differs"
        );
        let mut rng = Rng::new(4, 0);
        let (_, rows) = random_batch(PIXELS * 8, 10, 0.4, &mut rng);
        let rows: Vec<&[u64]> = rows.iter().map(Vec::as_slice).collect();
        let labels: Vec<u8> = (0..10).map(|i| (i % 4) as u8).collect();
        let mut alone = shared.full.clone();
        let mut ws = Default::default();
        let mut adam = Adam::default();
        let a =
            super::super::Graph::step(&mut alone, &rows, &labels, None, 0.01, &mut adam, &mut ws);
        let mut ws = Default::default();
        let mut adam = Adam::default();
        let b = shared.step(&rows, &labels, None, 0.01, &mut adam, &mut ws);
        assert_eq!(a, b);
        assert!(alone.w1.value == shared.full.w1.value, "w1 differs");
        assert!(
            alone.dense[0].value == shared.full.dense[0].value,
            "dense[0] differs"
        );
        assert!(alone.out.value == shared.full.out.value, "out differs");
        assert!(
            alone.bn[1].gamma.value == shared.full.bn[1].gamma.value,
            "bn[1] differs"
        );
    }

    /// A step on a smaller candidate changes exactly the shared weights the candidate has, as
    /// the candidate's own network would change them in its first step (Adam's first update of
    /// a weight depends on that weight's gradient alone), and no other.
    #[test]
    fn a_candidates_step_trains_its_weights_and_no_other() {
        let small = shape(&[6, 3], &[40, 7, 5]);
        let mut shared = net(vec![small.clone()]);
        let before = shared.full.clone();
        let mut alone = shared.subnet(&small);
        let mut rng = Rng::new(6, 0);
        let (_, rows) = random_batch(PIXELS * 8, 12, 0.4, &mut rng);
        let rows: Vec<&[u64]> = rows.iter().map(Vec::as_slice).collect();
        let sub_rows = shared.rows_of(0, &rows);
        let sub_refs: Vec<&[u64]> = sub_rows.iter().map(Vec::as_slice).collect();
        let labels: Vec<u8> = (0..12).map(|i| (i % 4) as u8).collect();
        let mut ws = Default::default();
        let a = super::super::Graph::step(
            &mut alone,
            &sub_refs,
            &labels,
            None,
            0.01,
            &mut Adam::default(),
            &mut ws,
        );
        let mut ws = Default::default();
        let b = shared.step(&rows, &labels, None, 0.01, &mut Adam::default(), &mut ws);
        assert_eq!(a, b);
        // The candidate's weights moved as its own network's did.
        let after = shared.subnet(&small);
        assert!(after.w1.value == alone.w1.value, "w1 differs");
        assert!(
            after.dense[0].value == alone.dense[0].value,
            "dense[0] differs"
        );
        assert!(
            after.dense[1].value == alone.dense[1].value,
            "dense[1] differs"
        );
        assert!(after.out.value == alone.out.value, "out differs");
        assert!(
            after.bn[0].beta.value == alone.bn[0].beta.value,
            "bn[0] differs"
        );
        assert!(after.theta.value == alone.theta.value, "theta differs");
        // Every other weight is where it was.
        let (fl, map) = (
            shared.full.first_layout(),
            shared.feature_map(&small.planes),
        );
        let mut changed = 0;
        for i in 0..fl.inputs {
            for j in 0..fl.outputs {
                let e = fl.index(i, j);
                let mine = j < 40 && map.contains(&i);
                if shared.full.w1.value[e] != before.w1.value[e] {
                    assert!(mine, "weight ({i}, {j}) of a dropped plane or unit moved");
                    changed += 1;
                }
            }
        }
        assert!(changed > 0);
        let d = &shared.full.dense[0];
        for r in 0..12 {
            for c in 0..70 {
                if r >= 7 || c >= 40 {
                    assert_eq!(d.value[r * 70 + c], before.dense[0].value[r * 70 + c]);
                }
            }
        }
        assert_eq!(
            shared.full.bn[0].gamma.value[40..],
            before.bn[0].gamma.value[40..]
        );
    }

    /// A candidate's integer model computes what its float network computes in inference mode
    /// (batch norm recalibrated on the rows given), image by image.
    #[test]
    fn a_candidates_model_is_its_float_network_lowered() {
        let small = shape(&[7, 4], &[33, 9, 5]);
        let shared = net(vec![small.clone()]);
        let mut rng = Rng::new(9, 0);
        let (_, rows) = random_batch(PIXELS * 8, 600, 0.4, &mut rng);
        let refs: Vec<&[u64]> = rows.iter().map(Vec::as_slice).collect();
        let meta = DataMeta {
            dataset: "test".into(),
            input: crate::model::InputShape {
                height: 3,
                width: 3,
                channels: 1,
            },
            classes: 4,
            planes: small.planes.clone(),
        };
        let model = shared.candidate(&small, &refs, &meta);
        let sub = shared.calibrated(&small, &refs);
        assert_eq!(model.planes, small.planes);
        assert_eq!(model.hidden_widths(), vec![33, 9, 5]);
        let sub_rows = shared.rows_of(0, &refs);
        let x = crate::bitslice::Sliced {
            features: PIXELS * 2,
            words: 1,
            bits: sub_rows.concat(),
        };
        let int = crate::reference::classify(&model, &x);
        let float = super::super::float_predictions(&sub, &x);
        assert_eq!(int, float);
        // Recalibration set the candidate's own statistics, not the shared ones.
        assert_ne!(sub.bn[0].mean, shared.full.bn[0].mean[..33].to_vec());
    }
}
