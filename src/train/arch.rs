//! The architecture notation of `cbnn train --arch`: the hidden layers, input side first,
//! separated by commas (the output layer is always added).
//!
//! | token | layer |
//! |---|---|
//! | `c32` | binary convolution, 32 output channels, 3 x 3 kernel, "same" padding |
//! | `c32k5` | the same with a 5 x 5 kernel (any odd `k` with "same") |
//! | `c32v`, `c32k5v` | "valid" padding (no border; the output shrinks by `k - 1`) |
//! | `p2` | binary max-pool, 2 x 2, stride 2 |
//! | `d256` | binary dense threshold layer of 256 neurons |
//! | `l1000f6` | logic-mapped layer: 1000 truth-table neurons of 6 inputs each, learned connections (`l1000` is `l1000f6`) |
//!
//! `conv` names the default convolutional network, [`CONV_PRESET`]; `mlp` the default
//! multilayer perceptron (`d256,d256,d256`, what `--hidden` gives); `lut` the default
//! logic-mapped network, [`LUT_PRESET`]. A logic-mapped network is one `l` layer alone, whose
//! neurons are split into equal groups, one per class (the group sum).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Setting};
use crate::layers::Padding;

/// The default convolutional network of `--arch conv`: two binary 5x5 convolutions (64 and 128
/// channels, each followed by a 2x2 max-pool) and a dense layer of 256. The 5x5 windows let a
/// first-layer neuron see 25 pixels' planes instead of 9; on MNIST subsets they beat 3x3
/// windows of twice the channels at less compute; Fashion-MNIST needs the channels of 64 and
/// 128 to pass 90 % (docs/results.md).
pub const CONV_PRESET: &str = "c64k5,p2,c128k5,p2,d256";

/// The default multilayer perceptron of `--arch mlp`.
pub const MLP_PRESET: &str = "d256,d256,d256";

/// The default logic-mapped network of `--arch lut`: 1000 neurons of 6 inputs, i.e. 1000
/// LUT6s, 100 a class for 10 classes. On MNIST's plane 7 it reaches 97 % (docs/results.md).
pub const LUT_PRESET: &str = "l1000f6";

/// Most layers an architecture may have.
pub const MAX_LAYERS: usize = 64;

/// Largest kernel side.
pub const MAX_KERNEL: usize = 15;

/// One hidden layer of an architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Binary convolution.
    Conv {
        /// Output channels.
        channels: usize,
        /// Kernel side.
        kernel: usize,
        /// Border handling.
        padding: Padding,
    },
    /// Binary max-pool of this size and stride.
    Pool(usize),
    /// Binary dense layer of this many neurons.
    Dense(usize),
    /// Logic-mapped layer: truth-table neurons of at most six inputs.
    Lut {
        /// Neurons.
        neurons: usize,
        /// Inputs a neuron reads.
        fan_in: usize,
    },
}

impl Op {
    /// The shape the layer hands on when it receives `input`.
    pub fn output(&self, input: crate::layers::Shape) -> crate::layers::Shape {
        match *self {
            Op::Conv {
                channels,
                kernel,
                padding,
            } => crate::layers::conv_output(input, kernel, padding, channels),
            Op::Pool(p) => crate::layers::pool_output(input, p),
            Op::Dense(n) | Op::Lut { neurons: n, .. } => crate::layers::Shape::flat(n),
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Op::Conv {
                channels,
                kernel,
                padding,
            } => f.write_str(&crate::layers::conv_notation(channels, kernel, padding)),
            Op::Pool(p) => write!(f, "p{p}"),
            Op::Dense(n) => write!(f, "d{n}"),
            Op::Lut { neurons, fan_in } => write!(f, "l{neurons}f{fan_in}"),
        }
    }
}

/// An architecture: the hidden layers, input side first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Arch(pub Vec<Op>);

impl Arch {
    /// Whether the architecture has convolutions or pooling (else it is a multilayer
    /// perceptron, trained by the MLP graph).
    pub fn is_conv(&self) -> bool {
        self.0
            .iter()
            .any(|o| matches!(o, Op::Conv { .. } | Op::Pool(_)))
    }

    /// Whether the architecture is a logic-mapped network (`lNfF` alone).
    pub fn is_logic_mapped(&self) -> bool {
        self.logic_mapped().is_some()
    }

    /// The logic-mapped layer when the architecture is one (`lNfF` alone).
    pub fn logic_mapped(&self) -> Option<(usize, usize)> {
        match self.0.as_slice() {
            [Op::Lut { neurons, fan_in }] => Some((*neurons, *fan_in)),
            _ => None,
        }
    }

    /// The widths of a multilayer perceptron (`None` with convolutions or pooling).
    pub fn dense_widths(&self) -> Option<Vec<usize>> {
        self.0
            .iter()
            .map(|o| match o {
                Op::Dense(n) => Some(*n),
                _ => None,
            })
            .collect()
    }

    /// A multilayer perceptron of these widths.
    pub fn mlp(widths: &[usize]) -> Arch {
        Arch(widths.iter().map(|&n| Op::Dense(n)).collect())
    }

    /// Every width (conv channels and dense neurons) but those of the first `skip` layers with
    /// weights multiplied by `m`, rounded, at least `min` and at most the width it was.
    pub fn scaled(&self, m: f64, min: usize, skip: usize) -> Arch {
        let mut weighted = 0;
        let mut s = |n: usize| {
            weighted += 1;
            if weighted <= skip {
                n
            } else {
                ((n as f64 * m).round() as usize).max(min).min(n)
            }
        };
        Arch(
            self.0
                .iter()
                .map(|o| match *o {
                    Op::Conv {
                        channels,
                        kernel,
                        padding,
                    } => Op::Conv {
                        channels: s(channels),
                        kernel,
                        padding,
                    },
                    Op::Pool(p) => Op::Pool(p),
                    Op::Dense(n) => Op::Dense(s(n)),
                    Op::Lut { neurons, fan_in } => Op::Lut {
                        neurons: s(neurons),
                        fan_in,
                    },
                })
                .collect(),
        )
    }

    /// Bits (weights and thresholds) of each hidden layer of a model of this architecture
    /// receiving `input` values, one entry per layer (0 for a pool).
    pub fn layer_bits(&self, input: crate::layers::Shape) -> Vec<u64> {
        let mut shape = input;
        self.0
            .iter()
            .map(|op| {
                let bits = Arch(vec![*op]).size_bits(shape, 0);
                shape = op.output(shape);
                bits
            })
            .collect()
    }

    /// The architecture with the width (channels, neurons) of hidden layer `index` multiplied
    /// by `m`, rounded, at least `min` and at most the width it was; any other unchanged.
    pub fn scaled_layer(&self, index: usize, m: f64, min: usize) -> Arch {
        let mut a = self.clone();
        let s = |n: usize| ((n as f64 * m).round() as usize).max(min).min(n);
        if let Some(op) = a.0.get_mut(index) {
            *op = match *op {
                Op::Conv {
                    channels,
                    kernel,
                    padding,
                } => Op::Conv {
                    channels: s(channels),
                    kernel,
                    padding,
                },
                Op::Dense(n) => Op::Dense(s(n)),
                Op::Lut { neurons, fan_in } => Op::Lut {
                    neurons: s(neurons),
                    fan_in,
                },
                Op::Pool(p) => Op::Pool(p),
            };
        }
        a
    }

    /// The architecture with its logic-mapped layer's neurons rounded to the nearest multiple
    /// of `classes` (at least `classes`: one equal group a class); any other unchanged.
    pub fn in_groups(&self, classes: usize) -> Arch {
        let c = classes.max(1);
        Arch(
            self.0
                .iter()
                .map(|o| match *o {
                    Op::Lut { neurons, fan_in } => Op::Lut {
                        neurons: ((neurons + c / 2) / c).max(1) * c,
                        fan_in,
                    },
                    other => other,
                })
                .collect(),
        )
    }

    /// The architecture with its logic-mapped layer reading `fan_in` inputs a neuron.
    pub fn with_fan_in(&self, fan_in: usize) -> Arch {
        Arch(
            self.0
                .iter()
                .map(|o| match *o {
                    Op::Lut { neurons, .. } => Op::Lut { neurons, fan_in },
                    other => other,
                })
                .collect(),
        )
    }

    /// Size in bits (weights and thresholds, as [`crate::model::IntModel::size_bits`]) of a
    /// model of this architecture receiving `input` values, with `classes` classes.
    pub fn size_bits(&self, input: crate::layers::Shape, classes: usize) -> u64 {
        use crate::model::threshold_bits;
        let neurons =
            |count: usize, n: usize| count as u64 * (n as u64 + threshold_bits(n as u64) as u64);
        let mut shape = input;
        let mut bits = 0u64;
        for op in &self.0 {
            bits += match *op {
                Op::Conv {
                    channels, kernel, ..
                } => neurons(channels, kernel * kernel * shape.channels),
                Op::Pool(_) => 0,
                Op::Dense(n) => neurons(n, shape.len()),
                // A group sum has no weights; a neuron is its table.
                Op::Lut { neurons, fan_in } => return (neurons as u64) << fan_in,
            };
            shape = op.output(shape);
        }
        bits + classes as u64 * shape.len() as u64
    }
}

/// Whether hidden layers written in the notation (`d256,d128`, or none) form a multilayer
/// perceptron: what reports show as a list of widths rather than as the notation.
pub fn is_perceptron(notation: &str) -> bool {
    notation.is_empty() || notation.split(',').all(|l| l.starts_with('d'))
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(Op::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

impl From<Arch> for String {
    fn from(a: Arch) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Arch {
    type Error = Error;
    fn try_from(s: String) -> Result<Arch> {
        s.parse()
    }
}

fn op(token: &str) -> std::result::Result<Op, String> {
    let bad = || {
        format!(
            "'{token}' is not a layer: use cN (conv), cNkK, cNv, pP (max-pool), dN (dense) or \
             lNfF (logic-mapped)"
        )
    };
    let number = |s: &str, what: &str| -> std::result::Result<usize, String> {
        match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!(
                "'{token}': the {what} must be a whole number of at least 1"
            )),
        }
    };
    let (head, rest) = token.split_at(token.len().min(1));
    match head {
        "c" => {
            let (body, padding) = match rest.strip_suffix('v') {
                Some(b) => (b, Padding::Valid),
                None => (rest, Padding::Same),
            };
            let (channels, kernel) = match body.split_once('k') {
                Some((c, k)) => (number(c, "channel count")?, number(k, "kernel")?),
                None => (number(body, "channel count")?, 3),
            };
            if kernel > MAX_KERNEL {
                return Err(format!(
                    "'{token}': a kernel of {kernel} is more than {MAX_KERNEL}"
                ));
            }
            if padding == Padding::Same && kernel % 2 == 0 {
                return Err(format!(
                    "'{token}': \"same\" padding needs an odd kernel (or add 'v' for \"valid\")"
                ));
            }
            Ok(Op::Conv {
                channels,
                kernel,
                padding,
            })
        }
        "p" => {
            let p = number(rest, "pool size")?;
            if p < 2 {
                return Err(format!("'{token}': a pool must be at least 2"));
            }
            Ok(Op::Pool(p))
        }
        "d" => Ok(Op::Dense(number(rest, "width")?)),
        "l" => {
            let (n, f) = match rest.split_once('f') {
                Some((n, f)) => (number(n, "neuron count")?, number(f, "fan-in")?),
                None => (number(rest, "neuron count")?, crate::layers::MAX_FAN_IN),
            };
            if f > crate::layers::MAX_FAN_IN {
                return Err(format!(
                    "'{token}': a fan-in of {f} is more than {} (a neuron is one LUT6)",
                    crate::layers::MAX_FAN_IN
                ));
            }
            Ok(Op::Lut {
                neurons: n,
                fan_in: f,
            })
        }
        _ => Err(bad()),
    }
}

impl std::str::FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Arch> {
        let spec = match s.trim() {
            "conv" => CONV_PRESET,
            "mlp" => MLP_PRESET,
            "lut" => LUT_PRESET,
            other => other,
        };
        if spec.is_empty() {
            return Ok(Arch(Vec::new()));
        }
        let ops = spec
            .split(',')
            .map(|t| op(t.trim()))
            .collect::<std::result::Result<Vec<Op>, String>>()
            .map_err(|m| invalid!(Setting::Arch, " {s:?}: {m}"))?;
        if ops.len() > 1 && ops.iter().any(|o| matches!(o, Op::Lut { .. })) {
            return Err(invalid!(
                Setting::Arch,
                " {s:?}: a logic-mapped layer (lNfF) stands alone: the network is that one \
                 layer and its group sum"
            ));
        }
        if ops.len() > MAX_LAYERS {
            return Err(invalid!(
                Setting::Arch,
                " {s:?}: {} layers are more than {MAX_LAYERS}",
                ops.len()
            ));
        }
        Ok(Arch(ops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dense layer over the preset's flattened 7x7x128 map holds most of its bits, and
    /// scaling one layer leaves the others as they were.
    #[test]
    fn layer_bits_find_the_presets_dense_layer_and_one_layer_scales_alone() {
        let a: Arch = CONV_PRESET.parse().unwrap();
        let input = crate::layers::Shape {
            height: 28,
            width: 28,
            channels: 8,
        };
        let bits = a.layer_bits(input);
        let t = |n: u64| crate::model::threshold_bits(n) as u64;
        assert_eq!(
            bits,
            vec![
                64 * (200 + t(200)),
                0,
                128 * (1600 + t(1600)),
                0,
                256 * (6272 + t(6272))
            ]
        );
        assert_eq!(bits.iter().sum::<u64>() + 10 * 256, a.size_bits(input, 10));
        assert_eq!(
            a.scaled_layer(4, 0.125, 8).to_string(),
            "c64k5,p2,c128k5,p2,d32"
        );
        assert_eq!(
            a.scaled_layer(2, 0.01, 8).to_string(),
            "c64k5,p2,c8k5,p2,d256"
        );
        // Never wider than it was.
        assert_eq!(a.scaled_layer(0, 2.0, 8), a);
    }

    #[test]
    fn the_notation_round_trips_and_names_bad_tokens() {
        let a: Arch = "c32,c16k5v,p2,d100".parse().unwrap();
        assert_eq!(
            a.0,
            vec![
                Op::Conv {
                    channels: 32,
                    kernel: 3,
                    padding: Padding::Same
                },
                Op::Conv {
                    channels: 16,
                    kernel: 5,
                    padding: Padding::Valid
                },
                Op::Pool(2),
                Op::Dense(100)
            ]
        );
        assert_eq!(a.to_string(), "c32,c16k5v,p2,d100");
        assert_eq!("conv".parse::<Arch>().unwrap().to_string(), CONV_PRESET);
        assert!(!"mlp".parse::<Arch>().unwrap().is_conv());
        let lut: Arch = "lut".parse().unwrap();
        assert_eq!(lut.to_string(), LUT_PRESET);
        assert!(!lut.is_conv());
        assert_eq!(lut.logic_mapped(), Some((1000, 6)));
        assert_eq!("l30".parse::<Arch>().unwrap().to_string(), "l30f6");
        assert_eq!("l30f6".parse::<Arch>().unwrap().dense_widths(), None);
        let half = lut.scaled(0.375, 8, 0);
        assert_eq!(half.to_string(), "l375f6");
        assert_eq!(half.in_groups(10).to_string(), "l380f6");
        assert_eq!(
            "l4f6".parse::<Arch>().unwrap().in_groups(10).to_string(),
            "l10f6"
        );
        assert_eq!(lut.with_fan_in(4).to_string(), "l1000f4");
        for (bad, says) in [
            ("c32,x3", "'x3' is not a layer"),
            ("c0", "channel count must be"),
            ("c8k4", "needs an odd kernel"),
            ("p1", "at least 2"),
            ("d", "width must be"),
            ("l100f7", "more than 6"),
            ("l0f3", "neuron count must be"),
            ("l100f0", "fan-in must be"),
            ("d10,l100f6", "stands alone"),
        ] {
            let e = bad.parse::<Arch>().unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
