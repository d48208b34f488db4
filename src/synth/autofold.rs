//! Automatic folding: per layer, the `PE`/`SIMD` of least estimated cost that meets a
//! cycles-per-image target.
//!
//! A layer's cycles per image are its kind's (`ceil(M / PE) * ceil(N / SIMD) + PIPE + 1` for a
//! dense layer, that times the windows for a convolution or its padded input's pixels when more,
//! the pixels for a pool); its cost is the resource model's LUTs plus block RAM
//! ([`super::estimate::Estimate::cost`]). Layers are independent given the target, so each
//! gets the cheapest folding that meets it, which also balances the pipeline: every layer ends
//! up just under the target rather than one layer far faster than the slowest. Only the smallest `PE` for each neuron-fold count and the smallest
//! `SIMD` for each input-fold count are candidates, since larger ones cost more for the same
//! cycles.

use crate::error::{Result, Setting};
use crate::model::IntModel;
use crate::vocab::fold::LayerFold;

/// The smallest parallelism for each distinct fold count of `n` items.
fn candidates(n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (1..=n).map(|k| n.div_ceil(k)).collect();
    v.dedup();
    v
}

/// The cheapest folding of each layer of `model` with at most `target` cycles per image
/// (`pipe` popcount register stages in each), by each layer kind's own timing and estimate.
pub fn fold(model: &IntModel, target: usize, pipe: usize) -> Result<Vec<LayerFold>> {
    model
        .layers
        .iter()
        .zip(crate::plan::layer_inputs(model))
        .enumerate()
        .map(|(i, (l, input))| {
            let hw = l.hardware();
            let s = hw.unit();
            let mut best: Option<(f64, LayerFold)> = None;
            let mut fastest = usize::MAX;
            for &pe in &candidates(s.outputs) {
                for &simd in &candidates(s.inputs) {
                    let f = LayerFold { pe, simd, pipe };
                    let cycles = hw.cycles_per_image(input, f);
                    fastest = fastest.min(cycles);
                    if cycles > target {
                        continue;
                    }
                    let cost = hw.estimate(input, f).cost();
                    if best.is_none_or(|(c, _)| cost < c) {
                        best = Some((cost, f));
                    }
                }
            }
            best.map(|(_, f)| f).ok_or_else(|| {
                invalid!(
                    Setting::TargetCycles,
                    " {target}: even fully parallel, layer L{i} needs {fastest} cycles per image"
                )
            })
        })
        .collect()
}

/// The fewest pixels per beat whose input stream meets `target` cycles per image
/// (`ceil(pixels / ppb) + 1` cycles).
pub fn pixels_per_beat(pixels: usize, target: usize) -> Result<usize> {
    (1..=pixels)
        .find(|&p| pixels.div_ceil(p) < target)
        .ok_or_else(|| {
            invalid!(
                Setting::TargetCycles,
                " {target}: the input needs at least 2 cycles per image"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_meets_the_target_and_cheaper_targets_cost_less() {
        let mut rng = crate::util::rng::Rng::new(3, 0);
        let model = crate::reference::tests::random_model(&mut rng, 784, &[7], &[160], 10);
        let shapes = crate::plan::fold::shapes(&model);
        let mut last = f64::INFINITY;
        for target in [50, 200, 1000] {
            let f = fold(&model, target, 0).unwrap();
            for (s, &lf) in shapes.iter().zip(&f) {
                assert!(s.steps(lf) < target, "{target}: {lf:?}");
            }
            let cost = crate::synth::estimate::for_model(&model, &f).cost();
            assert!(cost < last, "{target}: cost {cost} not below {last}");
            last = cost;
        }
        assert!(fold(&model, 1, 0).is_err());
        assert_eq!(fold(&model, 2, 0).unwrap()[1], LayerFold::new(10, 160));
    }

    #[test]
    fn pixels_per_beat_meets_the_target() {
        assert_eq!(pixels_per_beat(784, 100).unwrap(), 8);
        assert_eq!(pixels_per_beat(784, 2).unwrap(), 784);
        assert!(pixels_per_beat(784, 1).is_err());
    }
}
