//! Warm starts: the float graph of a smaller convolutional network initialised from a trained
//! integer model (its *parent*) instead of at random, so that a pruning candidate needs a few
//! epochs of fine-tuning instead of a training from scratch.
//!
//! 1. **The parent as a float graph.** Every latent weight is `±LATENT` with the sign of the
//!    parent's weight bit. Batch norm is set layer after layer, input side first (each layer's
//!    statistics depend on the layers before it), from the statistics of its pre-activation
//!    `z = 2p - N` on calibration images: with `gamma = 1` and
//!    `beta = -(z_T - mean) / sqrt(var + eps)`, `z_T = 2T - N - 1`, a neuron is `+1` exactly when
//!    `p >= T`. The graph in inference mode *is* the parent (its export gives the parent's
//!    weights and thresholds back, a test checks it); `beta` is the parent's threshold in
//!    standard deviations of its pre-activation.
//! 2. **The child.** It keeps some of the parent's planes (the first layer's inputs) and, in
//!    every layer, the units (channels, neurons) whose output varies most on the calibration
//!    images (largest `q (1 - q)`, `q` the fraction of `+1` outputs; a unit that is nearly
//!    always `+1` or always `-1` says least), in their order. Its weights are the parent's at
//!    the kept rows and columns. Each unit keeps its threshold's offset from the mean of its
//!    pre-activation, `z_T - mean`, with the mean and deviation of the child's own
//!    pre-activation (which lost the inputs that were dropped), set input side first as in the
//!    parent: were the dropped inputs independent of the kept ones, `mean + offset` is where
//!    the parent's threshold falls given the kept inputs.
//!
//! The child must have the parent's layers in the same order (kinds, kernels, paddings, pool
//! sizes), no unit more than the parent in any layer, and a subset of its planes.

use super::arch::{Arch, Op};
use super::conv::{ConvNet, Layer as GraphLayer, Workspace};
use super::net::{BatchNorm, Mode, Param, BN_EPS};
use crate::bitslice::PlaneSet;
use crate::error::{Error, Result};
use crate::layers::{Layer, Shape};
use crate::model::{BinaryMatrix, IntModel};

/// Magnitude of a warm-started latent weight: a weight keeps its parent's sign until Adam has
/// pushed it this far the other way.
pub const LATENT: f32 = 0.1;

/// Calibration images are taken this many at a time.
const CHUNK: usize = 500;

/// The float graph of `arch` on `planes`, initialised from `parent` (see the module
/// documentation). `rows` are calibration images sliced with the *parent's* planes.
pub fn child(
    parent: &IntModel,
    rows: &[&[u64]],
    planes: &PlaneSet,
    arch: &Arch,
    seed: u64,
) -> Result<ConvNet> {
    check_shape(&parent.arch().parse()?, arch)?;
    let input = Shape {
        height: parent.input.height,
        width: parent.input.width,
        channels: parent.input.channels * planes.len(),
    };
    // The parent's index of each of the child's input channels.
    let k_parent = parent.planes.len();
    let mut map: Vec<usize> = Vec::with_capacity(input.channels);
    for c in 0..parent.input.channels {
        for &plane in planes.planes() {
            let j = parent
                .planes
                .planes()
                .iter()
                .position(|&p| p == plane)
                .ok_or_else(|| {
                    Error::usage(format!(
                        "a warm start keeps planes of its parent, and plane {plane} is not one of {:?}",
                        parent.planes.planes()
                    ))
                })?;
            map.push(c * k_parent + j);
        }
    }
    // Everything the child asks of its parent holds: now the work.
    let (mut graph, offsets) = parent_with_offsets(parent, rows, seed)?;
    let rates = firing_rates(&mut graph, rows);
    let mut child = ConvNet::new(input, arch, parent.classes(), seed);
    // Channels of the values the parent's layer receives (the child's map into them).
    let mut parent_channels = graph.input.channels;
    // The child's features: pixel p, plane j at the parent's feature of that channel.
    let pixels = parent.input.height * parent.input.width;
    let stride = parent.input_values().channels;
    let features: Vec<usize> = (0..pixels)
        .flat_map(|p| map.iter().map(move |&c| p * stride + c))
        .collect();
    let child_rows = select(rows, &features);
    let mut kept_offsets = Vec::with_capacity(offsets.len());
    let mut rates = rates.iter().zip(&offsets);
    for (c, p) in child.layers.iter_mut().zip(&graph.layers) {
        let (
            GraphLayer::Conv { w, bn, .. } | GraphLayer::Dense { w, bn, .. },
            GraphLayer::Conv { w: pw, bn: pbn, .. } | GraphLayer::Dense { w: pw, bn: pbn, .. },
        ) = (c, p)
        else {
            // A pool keeps the channels.
            continue;
        };
        let units = bn.beta.value.len();
        let parent_units = pbn.beta.value.len();
        let (rates, offsets) = rates.next().expect("rates per layer with weights");
        let kept = most_varied(rates, units);
        kept_offsets.push(kept.iter().map(|&po| offsets[po]).collect::<Vec<f32>>());
        let (cols, parent_cols) = (w.value.len() / units, pw.value.len() / parent_units);
        for (o, &po) in kept.iter().enumerate() {
            for i in 0..cols {
                w.value[o * cols + i] =
                    pw.value[po * parent_cols + remap(i, &map, parent_channels)];
            }
        }
        map = kept;
        parent_channels = parent_units;
    }
    let classes = child.classes;
    let cols = child.out.value.len() / classes;
    let parent_cols = graph.out.value.len() / classes;
    for o in 0..classes {
        for i in 0..cols {
            child.out.value[o * cols + i] =
                graph.out.value[o * parent_cols + remap(i, &map, parent_channels)];
        }
    }
    // Each unit's threshold keeps its offset from the mean of its pre-activation, with the
    // statistics of the child's own pre-activation; input side first, as the parent's.
    let refs: Vec<&[u64]> = child_rows.iter().map(Vec::as_slice).collect();
    for (t, offset) in kept_offsets.iter().enumerate() {
        child.recalibrate(&refs);
        let bn = batch_norm(&mut child, t);
        set_thresholds(bn, offset);
    }
    Ok(child)
}

/// The batch norm of the `t`-th layer with weights.
fn batch_norm(net: &mut ConvNet, t: usize) -> &mut BatchNorm {
    net.layers
        .iter_mut()
        .filter_map(|l| match l {
            GraphLayer::Conv { bn, .. } | GraphLayer::Dense { bn, .. } => Some(bn),
            GraphLayer::Pool { .. } => None,
        })
        .nth(t)
        .expect("one batch norm per layer with weights")
}

/// The parent's index of input `i` of a child's row: rows run over positions (of a window or
/// of the flattened map), channels fastest; `map` gives the parent's channel of each of the
/// child's, out of `parent_channels`.
fn remap(i: usize, map: &[usize], parent_channels: usize) -> usize {
    (i / map.len()) * parent_channels + map[i % map.len()]
}

/// The `n` units of largest `q (1 - q)` among `rates`, in their order (ties: the first).
fn most_varied(rates: &[f64], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rates.len()).collect();
    order.sort_by(|&a, &b| {
        let (va, vb) = (rates[a] * (1.0 - rates[a]), rates[b] * (1.0 - rates[b]));
        vb.total_cmp(&va).then(a.cmp(&b))
    });
    let mut kept: Vec<usize> = order.into_iter().take(n).collect();
    kept.sort_unstable();
    kept
}

/// Refuses a child whose layers do not match its parent's.
fn check_shape(parent: &Arch, arch: &Arch) -> Result<()> {
    let mismatch = |why: String| Error::usage(format!("a warm start cannot build {arch}: {why}"));
    if arch.0.len() != parent.0.len() {
        return Err(mismatch(format!(
            "it has {} layers and its parent {}",
            arch.0.len(),
            parent.0.len()
        )));
    }
    for (i, (op, p)) in arch.0.iter().zip(&parent.0).enumerate() {
        let ok = match (*op, *p) {
            (
                Op::Conv {
                    channels,
                    kernel,
                    padding,
                },
                Op::Conv {
                    channels: pc,
                    kernel: pk,
                    padding: pp,
                },
            ) => kernel == pk && padding == pp && channels <= pc,
            (Op::Pool(s), Op::Pool(ps)) => s == ps,
            (Op::Dense(n), Op::Dense(pn)) => n <= pn,
            _ => false,
        };
        if !ok {
            return Err(mismatch(format!(
                "its layer {i} is not its parent's layer of that kind, size, kernel and padding, or \
                 is wider"
            )));
        }
    }
    Ok(())
}

/// The parent as a float graph whose inference mode computes exactly what the parent computes.
pub fn parent_graph(parent: &IntModel, rows: &[&[u64]], seed: u64) -> Result<ConvNet> {
    parent_with_offsets(parent, rows, seed).map(|(g, _)| g)
}

/// [`parent_graph`], and per layer with weights, per unit, `z_T - mean`: where its threshold
/// sits relative to the mean of its pre-activation.
fn parent_with_offsets(
    parent: &IntModel,
    rows: &[&[u64]],
    seed: u64,
) -> Result<(ConvNet, Vec<Vec<f32>>)> {
    let arch: Arch = parent.arch().parse()?;
    if !arch.is_conv() {
        return Err(Error::usage(format!(
            "a warm start needs a convolutional parent, and {} is not one",
            parent.arch()
        )));
    }
    let mut graph = ConvNet::new(parent.input_values(), &arch, parent.classes(), seed);
    let mut thresholds: Vec<(usize, Vec<u32>)> = Vec::new();
    let mut scores = None;
    let mut trainable = 0;
    for (l, g) in parent.layers.iter().zip(graph.layers.iter_mut()) {
        match (l, g) {
            (Layer::Conv(c), GraphLayer::Conv { w, .. }) => {
                set_latent(w, &c.weights);
                thresholds.push((c.weights.cols(), c.thresholds.clone()));
                trainable += 1;
            }
            (Layer::Dense(d), GraphLayer::Dense { w, .. }) => {
                set_latent(w, &d.weights);
                thresholds.push((d.weights.cols(), d.thresholds.clone()));
                trainable += 1;
            }
            (Layer::MaxPool(_), GraphLayer::Pool { .. }) => {}
            _ => {
                return Err(Error::usage(format!(
                    "a warm start cannot read the layers of {}",
                    parent.arch()
                )))
            }
        }
    }
    if let Some(Layer::Scores(s)) = parent.layers.last() {
        scores = Some(&s.weights);
    }
    let scores = scores.ok_or_else(|| {
        Error::usage(format!(
            "a warm start needs a parent ending in class scores, and {} does not",
            parent.arch()
        ))
    })?;
    set_latent(&mut graph.out, scores);
    // Batch norm, input side first: the statistics of layer t depend on the layers before it.
    let mut offsets = Vec::with_capacity(trainable);
    for t in 0..trainable {
        graph.recalibrate(rows);
        let (n, thresholds) = &thresholds[t];
        let bn = batch_norm(&mut graph, t);
        let offset: Vec<f32> = thresholds
            .iter()
            .enumerate()
            .map(|(j, &th)| 2.0 * th as f32 - *n as f32 - 1.0 - bn.mean[j])
            .collect();
        set_thresholds(bn, &offset);
        offsets.push(offset);
    }
    Ok((graph, offsets))
}

/// `gamma = 1`, `beta = -offset / sd`: each unit is `+1` exactly when its pre-activation is at
/// least `mean + offset`, with the statistics the batch norm holds.
fn set_thresholds(bn: &mut BatchNorm, offset: &[f32]) {
    for (j, &o) in offset.iter().enumerate() {
        bn.gamma.value[j] = 1.0;
        bn.beta.value[j] = -o / (bn.var[j] + BN_EPS).sqrt();
    }
}

/// The bits of `rows` (features of the parent) at `features` (the child's, in its order).
fn select(rows: &[&[u64]], features: &[usize]) -> Vec<Vec<u64>> {
    rows.iter()
        .map(|r| {
            let mut out = vec![0u64; crate::bitslice::words_for(features.len())];
            for (i, &f) in features.iter().enumerate() {
                out[i / 64] |= ((r[f / 64] >> (f % 64)) & 1) << (i % 64);
            }
            out
        })
        .collect()
}

fn set_latent(w: &mut Param, bits: &BinaryMatrix) {
    let cols = bits.cols();
    for (i, v) in w.value.iter_mut().enumerate() {
        *v = if bits.get(i / cols, i % cols) {
            LATENT
        } else {
            -LATENT
        };
    }
}

/// Per layer with weights, per unit: the fraction of `+1` outputs on `rows` in inference mode.
fn firing_rates(graph: &mut ConvNet, rows: &[&[u64]]) -> Vec<Vec<f64>> {
    let mut ws = Workspace::default();
    let mut x = Vec::new();
    let trainable: Vec<(usize, usize)> = graph
        .layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| match l {
            GraphLayer::Conv { output, .. } => Some((i, output.channels)),
            GraphLayer::Dense { outputs, .. } => Some((i, *outputs)),
            GraphLayer::Pool { .. } => None,
        })
        .collect();
    let mut ones: Vec<Vec<f64>> = trainable.iter().map(|&(_, n)| vec![0.0; n]).collect();
    let mut counts = vec![0.0f64; trainable.len()];
    for chunk in rows.chunks(CHUNK) {
        super::conv::unpack(chunk, graph.input.len(), &mut x);
        graph.forward(&x, Mode::Eval, &mut ws);
        for (t, &(i, n)) in trainable.iter().enumerate() {
            let act = ws.activations(i + 1);
            for row in act.chunks_exact(n) {
                for (o, &a) in ones[t].iter_mut().zip(row) {
                    *o += f64::from(u8::from(a > 0.0));
                }
            }
            counts[t] += (act.len() / n) as f64;
        }
    }
    ones.into_iter()
        .zip(counts)
        .map(|(o, c)| o.into_iter().map(|v| v / c.max(1.0)).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::tests::random_model;
    use crate::model::{InputShape, Provenance};
    use crate::train::export::export_conv;
    use crate::util::rng::Rng;

    fn fixture(seed: u64) -> (IntModel, Vec<Vec<u64>>) {
        let mut rng = Rng::new(seed, 0);
        let input = InputShape {
            height: 7,
            width: 6,
            channels: 2,
        };
        let parent = random_model(
            &mut rng,
            input,
            &[7, 5, 2],
            &["c5k3s", "p2", "c6k3v", "d7"],
            3,
        );
        let words = crate::bitslice::words_for(parent.features());
        let rows = (0..64)
            .map(|_| {
                let mut r: Vec<u64> = (0..words).map(|_| rng.next_u64()).collect();
                let tail = parent.features() % 64;
                if tail != 0 {
                    *r.last_mut().unwrap() &= (1u64 << tail) - 1;
                }
                r
            })
            .collect();
        (parent, rows)
    }

    fn layers_of(m: &IntModel) -> String {
        crate::model::json_text(&IntModel {
            provenance: Provenance::default(),
            ..m.clone()
        })
    }

    #[test]
    fn the_parent_graph_exports_to_the_parent() {
        for seed in 0..4 {
            let (parent, rows) = fixture(seed);
            let refs: Vec<&[u64]> = rows.iter().map(Vec::as_slice).collect();
            let graph = parent_graph(&parent, &refs, 1).unwrap();
            let back = export_conv(&graph, parent.input, &parent.planes, Provenance::default());
            assert_eq!(layers_of(&back), layers_of(&parent), "seed {seed}");
        }
    }

    #[test]
    fn a_child_of_the_same_shape_is_the_parent() {
        let (parent, rows) = fixture(7);
        let refs: Vec<&[u64]> = rows.iter().map(Vec::as_slice).collect();
        let arch: Arch = parent.arch().parse().unwrap();
        let mut c = child(&parent, &refs, &parent.planes, &arch, 3).unwrap();
        c.recalibrate(&refs);
        let back = export_conv(&c, parent.input, &parent.planes, Provenance::default());
        assert_eq!(layers_of(&back), layers_of(&parent));
    }

    #[test]
    fn a_narrower_child_keeps_rows_of_its_parent() {
        let (parent, rows) = fixture(11);
        let refs: Vec<&[u64]> = rows.iter().map(Vec::as_slice).collect();
        let planes = PlaneSet::new(&[7, 2]).unwrap();
        let arch: Arch = "c3k3,p2,c4k3v,d5".parse().unwrap();
        let c = child(&parent, &refs, &planes, &arch, 3).unwrap();
        let back = export_conv(&c, parent.input, &planes, Provenance::default());
        // Every weight row of the child's first layer is a row of the parent's at the columns
        // of the planes it kept (channel c, plane j: column c * 3 + [0, 2][j]).
        let (Layer::Conv(pc), Layer::Conv(cc)) = (&parent.layers[0], &back.layers[0]) else {
            panic!("conv first");
        };
        let cols: Vec<usize> = (0..9)
            .flat_map(|pos| (0..2).flat_map(move |ch| [0, 2].map(|j| pos * 6 + ch * 3 + j)))
            .collect();
        assert_eq!(cols.len(), cc.weights.cols());
        for o in 0..cc.weights.rows() {
            let row: Vec<bool> = (0..cols.len()).map(|i| cc.weights.get(o, i)).collect();
            let found = (0..pc.weights.rows()).any(|po| {
                cols.iter()
                    .enumerate()
                    .all(|(i, &pi)| pc.weights.get(po, pi) == row[i])
            });
            assert!(found, "row {o} of the child is no row of the parent");
        }
        assert_eq!(back.arch(), "c3,p2,c4v,d5");
    }

    #[test]
    fn a_child_must_fit_its_parent() {
        let (parent, rows) = fixture(5);
        let refs: Vec<&[u64]> = rows.iter().map(Vec::as_slice).collect();
        let keep = |p: &[u8], a: &str| {
            child(
                &parent,
                &refs,
                &PlaneSet::new(p).unwrap(),
                &a.parse().unwrap(),
                1,
            )
            .err()
            .map(|e| e.to_string())
        };
        assert!(keep(&[7, 6], "c5k3,p2,c6k3v,d7")
            .unwrap()
            .contains("plane 6"));
        assert!(keep(&[7], "c6k3,p2,c6k3v,d7").unwrap().contains("layer 0"));
        assert!(keep(&[7], "c5k3,p2,c6k3,d7").unwrap().contains("layer 2"));
        assert!(keep(&[7], "c5k3,p2,c6k3v").unwrap().contains("3 layers"));
        assert!(keep(&[7], "c5k3,p2,c6k3v,d7").is_none());
    }
}
