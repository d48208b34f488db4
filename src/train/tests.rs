//! Trainer checks: gradients against finite differences, export against the float graph.

use super::first_layer::tests::random_batch;
use super::first_layer::ActiveBits;
use super::net::{Mode, Net, Workspace};
use super::*;
use crate::util::rng::Rng;

fn loss_of(net: &mut Net, bits: &[ActiveBits], labels: &[u8]) -> f64 {
    let mut ws = Workspace::default();
    net.forward(bits, Mode::Train, &mut ws);
    net.loss(labels, &mut ws).0
}

/// Every parameter gradient of the surrogate graph (identity weights, hard-tanh activations)
/// matches central finite differences of the loss.
#[test]
fn gradients_match_finite_differences() {
    let mut rng = Rng::new(11, 0);
    // 3 hidden layers; the first spans two column blocks; a dense batch exercises clear-bit sums.
    let (features, hidden, classes) = (70, vec![66, 5, 4], 3);
    let mut net = Net::new(features, &hidden, classes, 3);
    net.binarize = false;
    for bn in &mut net.bn {
        for g in &mut bn.gamma.value {
            *g = rng.uniform(0.2, 0.5);
        }
        for b in &mut bn.beta.value {
            *b = rng.uniform(-0.2, 0.2);
        }
    }
    let (mut bits, _) = random_batch(features, 6, 0.3, &mut rng);
    bits.extend(random_batch(features, 2, 0.8, &mut rng).0);
    let labels: Vec<u8> = (0..bits.len()).map(|i| (i % classes) as u8).collect();

    let mut ws = Workspace::default();
    net.forward(&bits, Mode::Train, &mut ws);
    net.loss(&labels, &mut ws);
    net.backward(&bits, &mut ws);
    let offset = net.first_offset(&ws).to_vec();
    let layout = net.first_layout();
    // Analytic gradients, first layer assembled from its accumulator.
    let mut analytic: Vec<Vec<f32>> = net.params_mut().iter().map(|p| p.grad.clone()).collect();
    for (e, g) in analytic[0].iter_mut().enumerate() {
        let (i, j) = (0..layout.inputs)
            .flat_map(|i| (0..layout.outputs).map(move |j| (i, j)))
            .find(|&(i, j)| layout.index(i, j) == e)
            .unwrap();
        let _ = i;
        *g = 2.0 * *g - offset[j];
    }

    let eps = 2e-3f32;
    let mut checked = 0;
    let mut worst = 0.0f32;
    let nparams = analytic.len();
    #[allow(clippy::needless_range_loop)] // `p` indexes the network's parameters too
    for p in 0..nparams {
        let len = analytic[p].len();
        // Sample up to 40 entries of each parameter.
        let picks: Vec<usize> = if len <= 40 {
            (0..len).collect()
        } else {
            (0..40).map(|_| rng.below(len)).collect()
        };
        for e in picks {
            let orig = net.params_mut()[p].value[e];
            net.params_mut()[p].value[e] = orig + eps;
            let up = loss_of(&mut net, &bits, &labels);
            net.params_mut()[p].value[e] = orig - eps;
            let down = loss_of(&mut net, &bits, &labels);
            net.params_mut()[p].value[e] = orig;
            let numeric = ((up - down) / (2.0 * eps as f64)) as f32;
            let a = analytic[p][e];
            let err = (a - numeric).abs() / (1e-3 + numeric.abs().max(a.abs()));
            worst = worst.max(err);
            assert!(
                err < 0.05 || (a - numeric).abs() < 2e-4,
                "param {p} elem {e}: analytic {a} vs numeric {numeric}"
            );
            checked += 1;
        }
    }
    assert!(checked > 150, "checked {checked}");
    eprintln!("finite differences: {checked} entries, worst relative error {worst:.4}");
}

/// The exported integer model predicts exactly what the float graph predicts in inference mode,
/// including on hand-made ties and negative batch-norm scales.
#[test]
fn export_matches_float_graph() {
    let mut rng = Rng::new(12, 0);
    let features = 50;
    let mut net = Net::new(features, &[20, 9], 4, 5);
    // Make some scales negative or zero and statistics odd, to hit every export branch.
    for bn in &mut net.bn {
        for j in 0..bn.mean.len() {
            bn.gamma.value[j] = match j % 5 {
                0 => -rng.uniform(0.1, 2.0),
                1 => 0.0,
                _ => rng.uniform(0.1, 2.0),
            };
            bn.beta.value[j] = rng.uniform(-1.0, 1.0);
            bn.mean[j] = (rng.below(9) as f32 - 4.0) * if j % 2 == 0 { 1.0 } else { 1.5 };
            bn.var[j] = rng.uniform(0.5, 20.0);
        }
    }
    let (bits, rows) = random_batch(features, 300, 0.5, &mut rng);
    let data = crate::bitslice::Sliced {
        features,
        words: 1,
        bits: rows.into_iter().flatten().collect(),
    };
    let _ = bits;
    let planes = crate::bitslice::PlaneSet::new(&[7, 6]).unwrap();
    let input = crate::model::InputShape {
        height: 5,
        width: 5,
        channels: 1,
    };
    let model = export::export(&net, input, &planes, Default::default());
    model.validate(std::path::Path::new("test")).unwrap();
    let float = float_predictions(&net, &data);
    let int = crate::reference::Executor::new(&model).classify(&data);
    assert_eq!(float, int);
}

fn conv_loss(net: &mut conv::ConvNet, x: &[f32], labels: &[u8]) -> f64 {
    let mut ws = conv::Workspace::default();
    net.forward(x, Mode::Train, &mut ws);
    net.loss(labels, &mut ws).0
}

fn perturb_bn(bn: &mut net::BatchNorm, rng: &mut Rng) {
    for g in &mut bn.gamma.value {
        *g = rng.uniform(0.2, 0.5);
    }
    for b in &mut bn.beta.value {
        *b = rng.uniform(-0.2, 0.2);
    }
}

/// Every parameter gradient of the convolutional surrogate graph and of the float counterpart
/// (conv of both paddings, pool, dense, output) matches central finite differences of the
/// loss.
#[test]
fn conv_gradients_match_finite_differences() {
    let mut rng = Rng::new(13, 0);
    let specs = ["c3,p2,d5", "c4k3v,c3,p2", "p2,c5k1v,d3"];
    for (spec, activation) in specs
        .iter()
        .map(|s| (s, conv::Activation::HardTanh))
        .chain(specs.iter().map(|s| (s, conv::Activation::Relu)))
    {
        let arch: arch::Arch = spec.parse().unwrap();
        let input = crate::layers::Shape {
            height: 6,
            width: 5,
            channels: 2,
        };
        let classes = 3;
        let mut net = conv::ConvNet::new(input, &arch, classes, 4);
        net.activation = activation;
        for l in &mut net.layers {
            if let conv::Layer::Conv { bn, .. } | conv::Layer::Dense { bn, .. } = l {
                perturb_bn(bn, &mut rng);
            }
        }
        let batch = 5;
        // Inputs strictly inside (-1, 1) keep the pool's maximum away from ties.
        let x: Vec<f32> = (0..batch * input.len())
            .map(|_| rng.uniform(-1.0, 1.0))
            .collect();
        let labels: Vec<u8> = (0..batch).map(|i| (i % classes) as u8).collect();
        let mut ws = conv::Workspace::default();
        net.forward(&x, Mode::Train, &mut ws);
        net.loss(&labels, &mut ws);
        net.backward(&mut ws);
        let analytic: Vec<Vec<f32>> = net.params_mut().iter().map(|p| p.grad.clone()).collect();
        let eps = 1e-3f32;
        let (mut checked, mut kinks) = (0, 0);
        for (p, grads) in analytic.iter().enumerate() {
            let len = grads.len();
            let picks: Vec<usize> = if len <= 30 {
                (0..len).collect()
            } else {
                (0..30).map(|_| rng.below(len)).collect()
            };
            for e in picks {
                let orig = net.params_mut()[p].value[e];
                net.params_mut()[p].value[e] = orig + eps;
                let up = conv_loss(&mut net, &x, &labels);
                net.params_mut()[p].value[e] = orig - eps;
                let down = conv_loss(&mut net, &x, &labels);
                net.params_mut()[p].value[e] = orig;
                let numeric = ((up - down) / (2.0 * eps as f64)) as f32;
                let mid = conv_loss(&mut net, &x, &labels);
                let a = grads[e];
                let close = |n: f32| {
                    (a - n).abs() / (1e-3 + n.abs().max(a.abs())) < 0.05 || (a - n).abs() < 2e-4
                };
                let (right, left) = (
                    ((up - mid) / eps as f64) as f32,
                    ((mid - down) / eps as f64) as f32,
                );
                // A max-pool or hard-tanh kink between the two sides: the gradient is one of
                // the one-sided derivatives.
                let kink =
                    !close(numeric) && (right - left).abs() > 0.2 * right.abs().max(left.abs());
                assert!(
                    close(numeric) || (kink && (close(right) || close(left))),
                    "{spec}: param {p} elem {e}: analytic {a} vs numeric {numeric} (one-sided \
                     {right} {left})"
                );
                kinks += usize::from(kink);
                checked += 1;
            }
        }
        assert!(checked > 60, "{spec}: checked {checked}");
        assert!(
            kinks * 10 < checked,
            "{spec}: {kinks} of {checked} at a kink"
        );
    }
}

/// The exported integer model of a convolutional graph predicts exactly what the graph
/// predicts in inference mode, with negative and zero batch-norm scales.
#[test]
fn conv_export_matches_float_graph() {
    let mut rng = Rng::new(14, 0);
    let planes = crate::bitslice::PlaneSet::new(&[7, 6]).unwrap();
    let input = crate::model::InputShape {
        height: 7,
        width: 6,
        channels: 1,
    };
    let values = crate::layers::Shape {
        height: 7,
        width: 6,
        channels: 2,
    };
    for spec in ["c5,p2,d6", "c4k3v,p2,c3", "c6k5,c2k2v"] {
        let arch: arch::Arch = spec.parse().unwrap();
        let mut net = conv::ConvNet::new(values, &arch, 4, 6);
        for l in &mut net.layers {
            if let conv::Layer::Conv { bn, .. } | conv::Layer::Dense { bn, .. } = l {
                for j in 0..bn.mean.len() {
                    bn.gamma.value[j] = match j % 5 {
                        0 => -rng.uniform(0.1, 2.0),
                        1 => 0.0,
                        _ => rng.uniform(0.1, 2.0),
                    };
                    bn.beta.value[j] = rng.uniform(-1.0, 1.0);
                    bn.mean[j] = rng.below(9) as f32 - 4.0;
                    bn.var[j] = rng.uniform(0.5, 20.0);
                }
            }
        }
        let features = values.len();
        let words = crate::bitslice::words_for(features);
        let rows: Vec<Vec<u64>> = (0..300)
            .map(|_| {
                let mut r = vec![0u64; words];
                for i in 0..features {
                    if rng.next_u64() & 1 == 1 {
                        r[i / 64] |= 1 << (i % 64);
                    }
                }
                r
            })
            .collect();
        let model = export::export_conv(&net, input, &planes, Default::default());
        model.validate(std::path::Path::new("test")).unwrap();
        let data = crate::bitslice::Sliced {
            features,
            words,
            bits: rows.iter().flatten().copied().collect(),
        };
        let refs: Vec<&[u64]> = rows.iter().map(Vec::as_slice).collect();
        let float = net.predict(&refs);
        let int = crate::reference::Executor::new(&model).classify(&data);
        assert_eq!(float, int, "{spec}");
    }
}

/// The size the pruning search predicts from an architecture is the exported model's size, and
/// the model names its architecture in the notation it was built from.
#[test]
fn an_architecture_predicts_its_models_size_and_notation() {
    let values = crate::layers::Shape {
        height: 11,
        width: 9,
        channels: 3,
    };
    let input = crate::model::InputShape {
        height: 11,
        width: 9,
        channels: 1,
    };
    let planes = crate::bitslice::PlaneSet::new(&[7, 5, 1]).unwrap();
    for spec in ["c5,p2,d6", "c4k5v,c7,p3", "c3k1v,d2,d4", "p2,c9k3v"] {
        let arch: arch::Arch = spec.parse().unwrap();
        let net = conv::ConvNet::new(values, &arch, 5, 1);
        let model = export::export_conv(&net, input, &planes, Default::default());
        assert_eq!(model.size_bits(), arch.size_bits(values, 5), "{spec}");
        assert_eq!(model.arch().parse::<arch::Arch>().unwrap(), arch, "{spec}");
    }
}
