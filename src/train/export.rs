//! Lowering the float graph to the integer model (its semantics: docs/model-format.md).
//!
//! A hidden neuron's float output is `sign(bn(z))` with `z = 2p - N` for `p` matching inputs.
//! Batch norm in inference mode is monotone in `z` (non-decreasing for a positive scale), so the
//! neuron is `+1` exactly when `p >= T` for the smallest `T` with `bn(2T - N) >= 0`. `T` is found
//! by binary search over the very float formula the float graph evaluates
//! ([`BatchNorm::eval`]), which makes the export exact, ties included. A negative scale makes
//! the neuron decreasing in `p`: its weight row is inverted (`p' = N - p`) and the same search
//! runs on the mirrored function, so hardware needs only `>=`.

use super::conv::{self, ConvNet};
use super::first_layer::Layout;
use super::net::{BatchNorm, Net};
use crate::bitslice::PlaneSet;
use crate::layers::{Conv, Layer, MaxPool, Scores};
use crate::model::{BinaryMatrix, Dense, InputShape, IntModel, Provenance};

/// Threshold of neuron `j` of a layer with `n` inputs, and whether its row must be inverted.
pub fn threshold(bn: &BatchNorm, j: usize, n: usize) -> (u32, bool) {
    let scale = bn.eval_scale(j);
    let f = |p: usize| bn.eval(j, scale, (2 * p as i64 - n as i64) as f32);
    if scale > 0.0 {
        (crate::model::first_true(n, |p| f(p) >= 0.0), false)
    } else if scale < 0.0 {
        (crate::model::first_true(n, |q| f(n - q) >= 0.0), true)
    } else {
        // Zero (or NaN) scale: the output does not depend on the input.
        (if f(0) >= 0.0 { 0 } else { n as u32 + 1 }, false)
    }
}

fn first_matrix(net: &Net, layout: Layout) -> BinaryMatrix {
    let mut m = BinaryMatrix::new(layout.outputs, layout.inputs);
    for j in 0..layout.outputs {
        for i in 0..layout.inputs {
            if net.w1.value[layout.index(i, j)] >= 0.0 {
                m.set(j, i, true);
            }
        }
    }
    m
}

fn dense_matrix(w: &[f32], rows: usize, cols: usize) -> BinaryMatrix {
    let mut m = BinaryMatrix::new(rows, cols);
    for j in 0..rows {
        for i in 0..cols {
            if w[j * cols + i] >= 0.0 {
                m.set(j, i, true);
            }
        }
    }
    m
}

/// The integer model computing exactly what `net` computes in inference mode.
pub fn export(net: &Net, input: InputShape, planes: &PlaneSet, provenance: Provenance) -> IntModel {
    let mut hidden = Vec::with_capacity(net.hidden.len());
    let mut inputs = net.features;
    for (l, &n) in net.hidden.iter().enumerate() {
        let mut weights = if l == 0 {
            first_matrix(net, net.first_layout())
        } else {
            dense_matrix(&net.dense[l - 1].value, n, inputs)
        };
        let mut thresholds = Vec::with_capacity(n);
        for j in 0..n {
            let (t, invert) = threshold(&net.bn[l], j, inputs);
            if invert {
                weights.invert_row(j);
            }
            thresholds.push(t);
        }
        hidden.push(Dense {
            weights,
            thresholds,
        });
        inputs = n;
    }
    IntModel::mlp(
        input,
        planes.clone(),
        hidden,
        dense_matrix(&net.out.value, net.classes, inputs),
        provenance,
    )
}

/// The binary weights `rows x cols` of `w` and one threshold per row from `bn` (rows of a
/// negative batch-norm scale inverted).
fn thresholded(w: &[f32], bn: &BatchNorm, rows: usize, cols: usize) -> (BinaryMatrix, Vec<u32>) {
    let mut weights = dense_matrix(w, rows, cols);
    let thresholds = (0..rows)
        .map(|j| {
            let (t, invert) = threshold(bn, j, cols);
            if invert {
                weights.invert_row(j);
            }
            t
        })
        .collect();
    (weights, thresholds)
}

/// The integer model computing exactly what the convolutional graph `net` computes in
/// inference mode: per conv channel and dense neuron the threshold search above (a window of
/// `k * k * C` inputs is a neuron of that many inputs, padding included), pooling as it is.
pub fn export_conv(
    net: &ConvNet,
    input: InputShape,
    planes: &PlaneSet,
    provenance: Provenance,
) -> IntModel {
    let mut layers: Vec<Layer> = net
        .layers
        .iter()
        .map(|l| match l {
            conv::Layer::Conv {
                kernel,
                padding,
                input,
                output,
                w,
                bn,
            } => {
                let cols = kernel * kernel * input.channels;
                let (weights, thresholds) = thresholded(&w.value, bn, output.channels, cols);
                Layer::Conv(Conv {
                    kernel: *kernel,
                    padding: *padding,
                    weights,
                    thresholds,
                })
            }
            conv::Layer::Pool { size, .. } => Layer::MaxPool(MaxPool { size: *size }),
            conv::Layer::Dense {
                inputs,
                outputs,
                w,
                bn,
            } => {
                let (weights, thresholds) = thresholded(&w.value, bn, *outputs, *inputs);
                Layer::Dense(Dense {
                    weights,
                    thresholds,
                })
            }
        })
        .collect();
    layers.push(Layer::Scores(Scores {
        weights: dense_matrix(&net.out.value, net.classes, net.last()),
    }));
    IntModel {
        input,
        planes: planes.clone(),
        layers,
        provenance,
    }
}

#[cfg(test)]
mod tests {
    use crate::model::first_true;

    #[test]
    fn first_true_edges() {
        assert_eq!(first_true(5, |_| true), 0);
        assert_eq!(first_true(5, |_| false), 6);
        assert_eq!(first_true(5, |p| p >= 3), 3);
        assert_eq!(first_true(0, |p| p == 0), 0);
    }
}
