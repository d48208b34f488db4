//! The resource model of a whole design: every layer's estimate (its kind's, for the stream it
//! receives and its folding), the FIFOs between layers, the input splitter or unpacker and the
//! output stage, summed by the per-layer model of [`crate::vocab::cost`].

use crate::vocab::cost::{design, fifo, merged, split, LayerEstimate};
pub use crate::vocab::cost::{Estimate, LUT_TOLERANCE};
use crate::vocab::fold::LayerFold;

/// Estimate for a model under a folding, without the FIFOs between layers and the input
/// splitter (what the automatic folding compares: they do not depend on the folding much, and
/// the FIFO depths take the cycle model to find): [`for_design`] with neither.
pub fn for_model(model: &crate::model::IntModel, fold: &[LayerFold]) -> Estimate {
    for_design(model, fold, 1, &[])
}

/// Estimate for a planned design (its folding, input beat and FIFO depths): the numbers
/// [`for_manifest`] gives for the design written from it.
pub fn for_plan(plan: &crate::plan::DesignPlan) -> Estimate {
    let fold: Vec<LayerFold> = plan.layers.iter().map(|l| l.fold).collect();
    for_design(plan.model, &fold, plan.pixels_per_beat, &plan.timing.fifos)
}

/// Estimate for the design `manifest` describes (its folding, input beat and FIFO depths).
pub fn for_manifest(
    model: &crate::model::IntModel,
    manifest: &crate::rtlgen::Manifest,
) -> Estimate {
    let fold = manifest.folding();
    let fifos: Vec<usize> = manifest
        .layers
        .iter()
        .map(|l| l.fifo_depth.unwrap_or(0))
        .collect();
    for_design(model, &fold, manifest.input.pixels_per_beat, &fifos)
}

/// Estimate for a design: every layer's own estimate (its kind's, given the stream it
/// receives) with the FIFO of `fifos[i]` beats in front of layer `i` (0 or missing: none), the
/// input splitter of a pixel stream of `pixels_per_beat` pixels a beat, or the input unpacker
/// (when the first layer takes a vector), and the output stage.
pub fn for_design(
    model: &crate::model::IntModel,
    fold: &[LayerFold],
    pixels_per_beat: usize,
    fifos: &[usize],
) -> Estimate {
    let inputs = crate::plan::layer_inputs(model);
    let mut width = model.input_values().channels;
    let mut layers: Vec<LayerEstimate> = Vec::new();
    for (i, ((l, &f), &input)) in model.layers.iter().zip(fold).zip(&inputs).enumerate() {
        let hw = l.hardware();
        let mut e = hw.estimate(input, f);
        if let Some(&depth) = fifos.get(i).filter(|&&d| d > 0) {
            e = merged(e, &fifo(width, depth));
        }
        width = hw.output_width(input);
        layers.push(e);
    }
    let streams = crate::plan::streams_in(model);
    if streams && pixels_per_beat > 1 {
        if let Some(first) = layers.first_mut() {
            let s = split(
                pixels_per_beat,
                model.input_values().channels,
                model.input.pixels(),
            );
            *first = merged(first.clone(), &s);
        }
    }
    let out = crate::plan::output_packing(model);
    let features = match crate::plan::input_reads(model) {
        Some(reads) => reads.len(),
        None if streams => 0,
        None => model.features(),
    };
    design(layers, features, out.classes * out.score_bits)
}
