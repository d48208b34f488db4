//! The folding of a whole model: how many neurons (`PE`) and inputs per neuron (`SIMD`) each
//! layer computes per cycle; its default, its notation (`--fold`) and its checks against the
//! model's layers.
//!
//! Never: times or estimates a folding (the plan and the estimate do), or writes anything.

use crate::error::{Error, Result, Setting};
use crate::model::IntModel;
pub use crate::vocab::fold::{LayerFold, LayerShape, MAX_PIPE};

/// The shape of every layer's folded unit, input side first.
pub fn shapes(model: &IntModel) -> Vec<LayerShape> {
    model.layers.iter().map(|l| l.hardware().unit()).collect()
}

/// The default folding: each layer's own (`SIMD = min(inputs, 64)`, `PE = min(outputs, 16)`,
/// with `pipe` popcount register stages; the only folding of a logic-mapped layer). For the 8-plane 256,256,256 MNIST model that is 1568
/// compute steps an image in the first layer (1569 cycles with the hand-over).
pub fn default_folding(model: &IntModel, pipe: usize) -> Vec<LayerFold> {
    model
        .layers
        .iter()
        .map(|l| l.hardware().default_fold(pipe))
        .collect()
}

/// Parses `--fold`: `L0:PE,SIMD;L1:PE,SIMD,PIPE;...` (layers counted from 0, the output layer
/// last; `full` instead of `PE,SIMD` makes a layer fully parallel; an optional last number
/// sets the layer's popcount register stages, else `pipe`). Layers not named keep the default
/// folding.
pub fn parse(spec: &str, model: &IntModel, pipe: usize) -> Result<Vec<LayerFold>> {
    let shapes = shapes(model);
    let mut fold = default_folding(model, pipe);
    let bad = |msg: String| invalid!(Setting::Fold, " {spec:?}: {msg}");
    let mut named = vec![false; shapes.len()];
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
        if std::mem::replace(&mut named[index], true) {
            return Err(bad(format!("L{index} is given twice")));
        }
        let nums: Vec<&str> = value.split(',').map(str::trim).collect();
        let parse_n = |s: &str, what: &str| -> Result<usize> {
            s.parse::<usize>()
                .map_err(|_| bad(format!("L{index}: {what} '{s}' is not a whole number")))
        };
        let (pe, simd, rest) = if nums[0] == "full" {
            (shape.outputs, shape.inputs, &nums[1..])
        } else if nums.len() >= 2 {
            (
                parse_n(nums[0], "PE")?,
                parse_n(nums[1], "SIMD")?,
                &nums[2..],
            )
        } else {
            return Err(bad(format!("L{index}: give PE,SIMD[,PIPE] or full[,PIPE]")));
        };
        let pipe = match rest {
            [] => pipe,
            [p] => parse_n(p, "PIPE")?,
            _ => return Err(bad(format!("L{index}: give PE,SIMD[,PIPE] or full[,PIPE]"))),
        };
        let f = LayerFold { pe, simd, pipe };
        fold[index] = f;
    }
    validate(&fold, model)?;
    Ok(fold)
}

/// Checks a folding against the layers of `model`.
pub fn validate(fold: &[LayerFold], model: &IntModel) -> Result<()> {
    if fold.len() != model.layers.len() {
        return Err(Error::usage(format!(
            "the folding has {} layers but the model has {}",
            fold.len(),
            model.layers.len()
        )));
    }
    for (i, (f, l)) in fold.iter().zip(&model.layers).enumerate() {
        if let Err(msg) = l.hardware().check_fold(*f) {
            return Err(invalid!(Setting::Fold, ": L{i} {msg}"));
        }
        if f.pipe > MAX_PIPE {
            return Err(Error::invalid([
                format!("L{i} PIPE {} (", f.pipe).into(),
                Setting::Fold.into(),
                " or ".into(),
                Setting::Pipe.into(),
                format!(") must be 0 or {MAX_PIPE}").into(),
            ]));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_pe_simd_pipe_and_full() {
        let shapes = [
            LayerShape {
                inputs: 100,
                outputs: 20,
            },
            LayerShape {
                inputs: 20,
                outputs: 10,
            },
        ];
        let mut rng = crate::util::rng::Rng::new(1, 0);
        let model = crate::reference::tests::random_model(&mut rng, 100, &[7], &[20], 10);
        let f = parse("L0:4,50,1; L1:full", &model, 0).unwrap();
        assert_eq!(
            f,
            vec![
                LayerFold {
                    pe: 4,
                    simd: 50,
                    pipe: 1
                },
                LayerFold::new(10, 20)
            ]
        );
        assert_eq!(shapes[0].steps(f[0]), 5 * 2 + 1);
        assert!(shapes[1].fully_parallel(f[1]));
        let f = parse("L1:full,1", &model, 1).unwrap();
        assert_eq!(
            f[0],
            LayerFold {
                pe: 16,
                simd: 64,
                pipe: 1
            }
        );
        assert_eq!(
            f[1],
            LayerFold {
                pe: 10,
                simd: 20,
                pipe: 1
            }
        );
        assert_eq!(shapes[1].steps(f[1]), 2);
    }
}
