//! Folding: how many neurons (`PE`) and inputs per neuron (`SIMD`) each layer computes per cycle.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::IntModel;

/// The folding of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerFold {
    /// Neurons computed in parallel.
    pub pe: usize,
    /// Inputs consumed per neuron per cycle.
    pub simd: usize,
}

/// Shape of one layer as the hardware sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LayerShape {
    /// Inputs per neuron.
    pub inputs: usize,
    /// Neurons.
    pub outputs: usize,
}

impl LayerShape {
    /// Neuron folds `ceil(outputs / pe)`.
    pub fn nf(&self, f: LayerFold) -> usize {
        self.outputs.div_ceil(f.pe)
    }
    /// Input folds `ceil(inputs / simd)`.
    pub fn sf(&self, f: LayerFold) -> usize {
        self.inputs.div_ceil(f.simd)
    }
    /// Compute cycles per image.
    pub fn steps(&self, f: LayerFold) -> usize {
        self.nf(f) * self.sf(f)
    }
}

/// Every layer's shape, hidden layers then the output layer.
pub fn shapes(model: &IntModel) -> Vec<LayerShape> {
    let mut v: Vec<LayerShape> = model
        .hidden
        .iter()
        .map(|l| LayerShape {
            inputs: l.weights.cols(),
            outputs: l.weights.rows(),
        })
        .collect();
    v.push(LayerShape {
        inputs: model.output.cols(),
        outputs: model.output.rows(),
    });
    v
}

/// The default folding: `SIMD = min(inputs, 64)`, `PE = min(outputs, 16)` for every layer.
/// For the 8-plane 256,256,256 MNIST model that is 1568 cycles per image in the first layer.
pub fn default_folding(model: &IntModel) -> Vec<LayerFold> {
    shapes(model)
        .iter()
        .map(|s| LayerFold {
            pe: s.outputs.min(16),
            simd: s.inputs.min(64),
        })
        .collect()
}

/// Parses `--fold`: `L0:PE,SIMD;L1:PE,SIMD;...` (layers counted from 0, the output layer last;
/// `full` instead of `PE,SIMD` makes a layer fully parallel). Layers not named keep the
/// default folding.
pub fn parse(spec: &str, model: &IntModel) -> Result<Vec<LayerFold>> {
    let shapes = shapes(model);
    let mut fold = default_folding(model);
    let bad = |msg: String| Error::usage(format!("--fold {spec:?}: {msg}"));
    for item in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (layer, value) = item
            .split_once(':')
            .ok_or_else(|| bad(format!("'{item}' is not of the form L<i>:PE,SIMD")))?;
        let index: usize = layer
            .trim()
            .strip_prefix('L')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad(format!("'{layer}' is not a layer name like L0")))?;
        let shape = shapes.get(index).ok_or_else(|| {
            bad(format!(
                "layer L{index} does not exist; the model has L0..L{}",
                shapes.len() - 1
            ))
        })?;
        let f = if value.trim() == "full" {
            LayerFold {
                pe: shape.outputs,
                simd: shape.inputs,
            }
        } else {
            let nums: Vec<&str> = value.split(',').map(str::trim).collect();
            let parse_n = |s: &str, what: &str| -> Result<usize> {
                s.parse::<usize>()
                    .map_err(|_| bad(format!("L{index}: {what} '{s}' is not a whole number")))
            };
            if nums.len() != 2 {
                return Err(bad(format!(
                    "L{index}: give PE,SIMD (two numbers) or 'full'"
                )));
            }
            LayerFold {
                pe: parse_n(nums[0], "PE")?,
                simd: parse_n(nums[1], "SIMD")?,
            }
        };
        fold[index] = f;
    }
    validate(&fold, &shapes)?;
    Ok(fold)
}

/// Checks a folding against the layer shapes.
pub fn validate(fold: &[LayerFold], shapes: &[LayerShape]) -> Result<()> {
    if fold.len() != shapes.len() {
        return Err(Error::usage(format!(
            "the folding has {} layers but the model has {}",
            fold.len(),
            shapes.len()
        )));
    }
    for (i, (f, s)) in fold.iter().zip(shapes).enumerate() {
        if f.pe == 0 || f.pe > s.outputs {
            return Err(Error::usage(format!(
                "--fold: L{i} PE {} must be between 1 and its {} neurons",
                f.pe, s.outputs
            )));
        }
        if f.simd == 0 || f.simd > s.inputs {
            return Err(Error::usage(format!(
                "--fold: L{i} SIMD {} must be between 1 and its {} inputs",
                f.simd, s.inputs
            )));
        }
    }
    Ok(())
}
