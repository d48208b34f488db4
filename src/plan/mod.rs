//! The plan of an accelerator: what a design of a model under a folding is, computed once,
//! before any file is written. Its stream facts (the stream each layer receives, the input
//! bits a logic-mapped port carries, the output packing), its timing for the cycle model and
//! the FIFO depths that keep the pipeline's interval, its ports and options.
//!
//! Owns these facts and the checks of a design's options. Never: writes a file, renders RTL
//! (that is [`crate::rtlgen`]'s), runs a simulator or a synthesis tool.

pub mod fold;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::IntModel;
use crate::reference::cycle::{self, Timing};
use crate::vocab::bits::bits_for;
use crate::vocab::fold::LayerFold;

/// The clocks a design may be generated for, in MHz (its constraint files carry it).
pub const CLOCK_MHZ: std::ops::RangeInclusive<f64> = 1.0..=2000.0;

/// Clock frequency assumed when a manifest does not name one.
pub const DEFAULT_CLOCK_MHZ: f64 = 100.0;

/// Generator settings.
#[derive(Clone, Debug)]
pub struct RtlConfig {
    /// Per-layer folding, hidden layers then the output layer.
    pub fold: Vec<LayerFold>,
    /// Pixels per input beat (designs that are not logic-mapped).
    pub pixels_per_beat: usize,
    /// Input bits per beat of a logic-mapped design: `None` takes every bit its first layer
    /// reads in one beat (one image a clock); fewer put a deserializer (`cbnn_unpack`) in
    /// front, which gathers `ceil(reads / bits)` beats an image.
    pub bits_per_beat: Option<usize>,
    /// Target clock frequency in MHz (recorded for the constraint files and synthesis).
    pub clock_mhz: f64,
}

/// One port of the top level.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Port {
    /// Name.
    pub name: String,
    /// `in` or `out`.
    pub direction: String,
    /// Width in bits.
    pub width: usize,
}

/// Input packing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InputPacking {
    /// Kept planes, most significant first.
    pub planes: Vec<u8>,
    /// Pixels per beat.
    pub pixels_per_beat: usize,
    /// Bits per beat, `pixels_per_beat * K`.
    pub bits_per_beat: usize,
    /// Features per image.
    pub features: usize,
    /// In words.
    pub order: String,
    /// Logic-mapped designs: the features the port carries, bit `j` being feature `reads[j]`
    /// (the input bits the first layer reads; every other bit of the image is pruned), cut
    /// into beats of `bits_per_beat` bits, the last one zero-padded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<Vec<u32>>,
}

impl InputPacking {
    /// What a beat carries in the unit [`timing`] counts: pixels, or for a logic-mapped design
    /// input bits.
    pub fn per_beat(&self) -> usize {
        match self.reads {
            Some(_) => self.bits_per_beat,
            None => self.pixels_per_beat,
        }
    }
}

/// Output packing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OutputPacking {
    /// Width of `m_axis_tdata`.
    pub width: usize,
    /// Class index bits `[0, class_bits)`.
    pub class_bits: usize,
    /// Bits per score.
    pub score_bits: usize,
    /// Score `c` is in bits `[scores_lsb + c * score_bits, +score_bits)`.
    pub scores_lsb: usize,
    /// Number of classes.
    pub classes: usize,
}

/// Timing of a model under a folding (the cycle model's input): the top level's unpacker when
/// the first layer takes a vector, the stages of every layer (its kind's `stages`, given the
/// stream it receives) and the output register slice. `pixels_per_beat` is the input beat's
/// size: pixels, or for a logic-mapped design input bits ([`InputPacking::per_beat`]).
pub fn timing(model: &IntModel, fold: &[LayerFold], pixels_per_beat: usize) -> Timing {
    timing_with(
        model,
        fold,
        pixels_per_beat,
        &fifo_depths(model, fold, pixels_per_beat),
    )
}

/// [`timing`] with the FIFO of `fifos[i]` beats in front of layer `i` (none for 0).
pub fn timing_with(
    model: &IntModel,
    fold: &[LayerFold],
    pixels_per_beat: usize,
    fifos: &[usize],
) -> Timing {
    if logic_mapped(model) {
        // A register stage behind every layer that hands on bits, all enabled by the output
        // slice, behind an input register (one beat an image) or the deserializer of several
        // beats, which holds the image's bits for the first layer.
        let layers = model
            .layers
            .iter()
            .filter(|l| l.semantics().produces() == crate::layers::Produces::Bits)
            .count();
        let reads = input_reads(model).map_or(0, |r| r.len());
        let beats = reads.div_ceil(pixels_per_beat.max(1)).max(1);
        // The group sum's registers (`PIPE` 1).
        let layers = layers + fold.last().map_or(0, |f| f.pipe);
        let stages = match beats {
            1 => vec![cycle::StageTiming::Pipeline { stages: 1 + layers }],
            _ => vec![
                cycle::StageTiming::Unpack { beats },
                cycle::StageTiming::Pipeline { stages: layers },
            ],
        };
        return Timing { beats, stages };
    }
    let beats = model.input.pixels().div_ceil(pixels_per_beat);
    let mut stages = Vec::new();
    if !streams_in(model) {
        stages.push(cycle::StageTiming::Unpack { beats });
    } else if pixels_per_beat > 1 {
        stages.push(cycle::StageTiming::Split {
            per_beat: pixels_per_beat,
            pixels: model.input.pixels(),
        });
    }
    for (((l, &f), input), &depth) in model
        .layers
        .iter()
        .zip(fold)
        .zip(layer_inputs(model))
        .zip(fifos)
    {
        if depth > 0 {
            stages.push(cycle::StageTiming::Fifo { depth });
        }
        stages.extend(l.hardware().stages(input, f));
    }
    stages.push(cycle::StageTiming::Skid);
    Timing { beats, stages }
}

/// The depth of the FIFO in front of each layer (0: none). A perceptron has none. In a
/// design with convolutions or pools, the layers after the first get one each where it helps:
/// the interval the pipeline reaches with a whole image of buffering in front of every layer
/// (the pixels of the stream it receives) is the aim, and each FIFO in turn, input side first,
/// is cut to the fewest beats that keep it, by the cycle model. Deterministic: the same model
/// and folding give the same depths, so the design, its manifest and the co-simulation agree.
pub fn fifo_depths(model: &IntModel, fold: &[LayerFold], pixels_per_beat: usize) -> Vec<usize> {
    let n = model.layers.len();
    if !model.layers.iter().any(|l| l.hardware().streams()) || fold.len() != n {
        return vec![0; n];
    }
    let inputs = layer_inputs(model);
    let ample: Vec<usize> = (0..n)
        .map(|i| {
            if i == 0 {
                0
            } else {
                inputs[i].height * inputs[i].width
            }
        })
        .collect();
    let interval =
        |d: &[usize]| cycle::latency_and_interval(&timing_with(model, fold, pixels_per_beat, d)).1;
    let aim = interval(&ample);
    let mut depths = ample.clone();
    for i in 1..n {
        let (mut lo, mut hi) = (0, ample[i]);
        while lo < hi {
            let mid = (lo + hi) / 2;
            depths[i] = mid;
            if interval(&depths) <= aim {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        depths[i] = lo;
    }
    depths
}

/// Whether the design of `model` is logic-mapped: every layer is ([`crate::layers::Hardware::logic_mapped`]):
/// one image a cycle through clock-enabled register stages, its port carrying only the input
/// bits the first layer reads.
pub fn logic_mapped(model: &IntModel) -> bool {
    model.layers.iter().all(|l| l.hardware().logic_mapped())
}

/// The features a logic-mapped design's input port carries, in port bit order: those its
/// first layer reads (`None` for other designs).
pub fn input_reads(model: &IntModel) -> Option<Vec<u32>> {
    match model.layers.first() {
        Some(crate::layers::Layer::Lut(l)) if logic_mapped(model) => Some(l.reads()),
        _ => None,
    }
}

/// Whether the first layer reads the input beats as a stream of pixels (a convolution or a
/// pool: one pixel a beat) rather than one vector that the top level gathers from them.
pub fn streams_in(model: &IntModel) -> bool {
    model.layers.first().is_some_and(|l| l.hardware().streams())
}

/// The stream each layer receives in the design: the previous layer's output pixels, or for
/// the first layer the image's pixels when it streams them and the gathered vector otherwise.
pub fn layer_inputs(model: &IntModel) -> Vec<crate::layers::Shape> {
    let mut shapes = model.shapes();
    shapes.truncate(model.layers.len());
    if let Some(reads) = input_reads(model) {
        shapes[0] = crate::layers::Shape::flat(reads.len());
    } else if !streams_in(model) {
        shapes[0] = crate::layers::Shape::flat(model.features());
    }
    shapes
}

/// Output packing of a model.
pub fn output_packing(model: &IntModel) -> OutputPacking {
    let classes = model.classes();
    let class_bits = if classes > 2 {
        bits_for(classes - 1)
    } else {
        1
    };
    // The last layer gives the scores: its output stream is the scores, `score_bits` each.
    let score_bits = model
        .layers
        .last()
        .zip(layer_inputs(model).last())
        .map_or(1, |(l, &input)| {
            l.hardware().output_width(input) / classes.max(1)
        });
    let raw = class_bits + classes * score_bits;
    OutputPacking {
        width: raw.div_ceil(8) * 8,
        class_bits,
        score_bits,
        scores_lsb: class_bits,
        classes,
    }
}

/// The most pixels an image may have in a design whose layers stream pixels (convolutions
/// and pools): 512x512. The generator sizes each FIFO by running the cycle model over eight
/// images per candidate depth, so its time grows with the pixels (about 30 s at this size for
/// a convolution and nine pools, on this project's 2-core machine); a larger image is refused
/// up front instead of keeping `cbnn rtl` busy for hours.
pub const MAX_STREAM_PIXELS: usize = 512 * 512;

/// Checks that every layer of `model` has an accelerator core (`model_path` names it), that
/// logic-mapped layers are not mixed with folded ones, and that a streaming design's images
/// have at most [`MAX_STREAM_PIXELS`] pixels.
pub fn check_supported(model: &IntModel, model_path: &Path) -> Result<()> {
    let logic = model
        .layers
        .iter()
        .filter(|l| l.hardware().logic_mapped())
        .count();
    if logic > 0 && logic < model.layers.len() {
        return Err(Error::usage(format!(
            "{}: a design is either logic-mapped (kinds \"lut\" and \"group_sum\" only) or \
             folded; this model mixes them",
            model_path.display()
        )));
    }
    if model.input.height * model.input.width > MAX_STREAM_PIXELS
        && model.layers.iter().any(|l| l.hardware().streams())
    {
        return Err(Error::usage(format!(
            "{}: images of {}x{} pixels are more than a design that streams pixels takes \
             ({MAX_STREAM_PIXELS} pixels, 512x512)",
            model_path.display(),
            model.input.height,
            model.input.width
        )));
    }
    for (i, l) in model.layers.iter().enumerate() {
        if let Err(why) = l.hardware().supported() {
            return Err(Error::usage(format!(
                "{}: layer {i} ({}): {why}",
                model_path.display(),
                l.semantics().kind()
            )));
        }
    }
    Ok(())
}

/// When a design computes: the FIFO depths in front of its layers, the cycle model's timing,
/// the latency and initiation interval it gives (free-running), and each layer's cycles per
/// image. One value, so that the generator, the checks of a design directory and the folding
/// policy never time a design each their own way.
#[derive(Clone, Debug, PartialEq)]
pub struct DesignTiming {
    /// Beats of the FIFO in front of each layer (0: none).
    pub fifos: Vec<usize>,
    /// The cycle model's input.
    pub timing: Timing,
    /// Cycles from the first input handshake to the output handshake.
    pub latency: u64,
    /// Cycles between consecutive images in steady state.
    pub interval: u64,
    /// Each layer's cycles per image, given the stream it receives and its folding.
    pub cycles: Vec<usize>,
}

/// The timing of `model` under `fold` with input beats of `per_beat` (pixels, or for a
/// logic-mapped design input bits: [`InputPacking::per_beat`]).
pub fn design_timing(model: &IntModel, fold: &[LayerFold], per_beat: usize) -> DesignTiming {
    let fifos = fifo_depths(model, fold, per_beat);
    let timing = timing_with(model, fold, per_beat, &fifos);
    let (latency, interval) = cycle::latency_and_interval(&timing);
    let cycles = model
        .layers
        .iter()
        .zip(fold)
        .zip(layer_inputs(model))
        .map(|((l, &f), input)| l.hardware().cycles_per_image(input, f))
        .collect();
    DesignTiming {
        fifos,
        timing,
        latency,
        interval,
        cycles,
    }
}

/// One layer of a planned design.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerPlan {
    /// Its folding.
    pub fold: LayerFold,
    /// Its folded unit.
    pub unit: crate::vocab::fold::LayerShape,
    /// The stream it receives ([`layer_inputs`]).
    pub receives: crate::vocab::shape::Shape,
    /// Bits of each value it hands on.
    pub output_width: usize,
    /// Beats of the FIFO in front of it (0: none).
    pub fifo_depth: usize,
    /// Cycles per image.
    pub cycles_per_image: usize,
    /// One cycle covers the whole layer: its weights become logic.
    pub in_logic: bool,
}

/// A design of a model, planned: everything the generator writes and the co-simulation and
/// synthesis read, computed once from the model, the folding and the port options.
#[derive(Clone, Debug)]
pub struct DesignPlan<'m> {
    /// The model.
    pub model: &'m IntModel,
    /// The model as its layers are instantiated: a logic-mapped design's first layer
    /// renumbered onto the bits its port carries.
    pub instantiated: std::borrow::Cow<'m, IntModel>,
    /// Logic-mapped designs: the features the port carries, in port bit order.
    pub reads: Option<Vec<u32>>,
    /// Pixels a beat (a logic-mapped design: the whole image).
    pub pixels_per_beat: usize,
    /// What a beat carries in the unit the timing counts: pixels, or input bits.
    pub per_beat: usize,
    /// Width of `s_axis_tdata`.
    pub in_width: usize,
    /// Some layer streams pixels (convolutions, pools): FIFOs and streams are recorded.
    pub any_stream: bool,
    /// Per layer.
    pub layers: Vec<LayerPlan>,
    /// When it computes.
    pub timing: DesignTiming,
    /// How `m_axis_tdata` is packed.
    pub output: OutputPacking,
    /// Target clock, MHz.
    pub clock_mhz: f64,
}

/// Plans the design of `model` (named `model_path` in messages) under `cfg`: the checks of
/// the model, the folding and the port options, in that order, each one sentence, then every
/// fact of the design.
pub fn build<'m>(
    model: &'m IntModel,
    model_path: &Path,
    cfg: &RtlConfig,
) -> Result<DesignPlan<'m>> {
    check_supported(model, model_path)?;
    fold::validate(&cfg.fold, model)?;
    let pixels = model.input.pixels();
    let reads = input_reads(model);
    // A logic-mapped design takes an image a beat, its port carrying the bits its first layer
    // reads; its layers are instantiated with the first one renumbered onto that port.
    let pixels_per_beat = if reads.is_some() {
        pixels
    } else {
        cfg.pixels_per_beat
    };
    let instantiated = match (&reads, model.layers.first()) {
        (Some(r), Some(crate::layers::Layer::Lut(first))) => {
            let mut m = model.clone();
            m.layers[0] = crate::layers::Layer::Lut(first.on_reads(r));
            std::borrow::Cow::Owned(m)
        }
        _ => std::borrow::Cow::Borrowed(model),
    };
    if !CLOCK_MHZ.contains(&cfg.clock_mhz) {
        return Err(invalid!(
            crate::error::Setting::ClockMhz,
            " {} must be between {} and {}",
            cfg.clock_mhz,
            CLOCK_MHZ.start(),
            CLOCK_MHZ.end()
        ));
    }
    if let (Some(r), Some(b)) = (&reads, cfg.bits_per_beat) {
        if b == 0 || b > r.len() {
            return Err(invalid!(
                crate::error::Setting::BitsPerBeat,
                " {b} must be between 1 and the {} input bits the first layer reads",
                r.len()
            ));
        }
    }
    if reads.is_none() && (cfg.pixels_per_beat == 0 || cfg.pixels_per_beat > pixels) {
        return Err(invalid!(
            crate::error::Setting::PixelsPerBeat,
            " {} must be between 1 and the image's {pixels} pixels",
            cfg.pixels_per_beat
        ));
    }
    let per_beat = match &reads {
        Some(r) => cfg.bits_per_beat.unwrap_or(r.len()),
        None => pixels_per_beat,
    };
    let timing = design_timing(model, &cfg.fold, per_beat);
    let in_width = match &reads {
        Some(_) => per_beat,
        None => pixels_per_beat * model.input_values().channels,
    };
    let layers = instantiated
        .layers
        .iter()
        .zip(&cfg.fold)
        .zip(layer_inputs(model))
        .enumerate()
        .map(|(i, ((l, &f), receives))| {
            let hw = l.hardware();
            let unit = hw.unit();
            LayerPlan {
                fold: f,
                unit,
                receives,
                output_width: hw.output_width(receives),
                fifo_depth: timing.fifos[i],
                cycles_per_image: timing.cycles[i],
                in_logic: unit.fully_parallel(f),
            }
        })
        .collect();
    Ok(DesignPlan {
        model,
        instantiated,
        reads,
        pixels_per_beat,
        per_beat,
        in_width,
        any_stream: model.layers.iter().any(|l| l.hardware().streams()),
        layers,
        timing,
        output: output_packing(model),
        clock_mhz: cfg.clock_mhz,
    })
}

impl DesignPlan<'_> {
    /// The top level's ports.
    pub fn ports(&self) -> Vec<Port> {
        let port = |name: &str, direction: &str, width: usize| Port {
            name: name.into(),
            direction: direction.into(),
            width,
        };
        vec![
            port("ap_clk", "in", 1),
            port("ap_rst_n", "in", 1),
            port("s_axis_tdata", "in", self.in_width),
            port("s_axis_tvalid", "in", 1),
            port("s_axis_tready", "out", 1),
            port("m_axis_tdata", "out", self.output.width),
            port("m_axis_tvalid", "out", 1),
            port("m_axis_tready", "in", 1),
        ]
    }

    /// How `s_axis_tdata` is packed.
    pub fn input_packing(&self) -> InputPacking {
        let m = self.model;
        InputPacking {
            planes: m.planes.planes().to_vec(),
            pixels_per_beat: self.pixels_per_beat,
            bits_per_beat: self.in_width,
            features: m.input.pixels() * m.planes.len(),
            order: if self.reads.is_some() {
                "one beat an image: bit j = feature reads[j] (feature p * K + j = plane planes[j] of pixel p)".into()
            } else {
                "beat b bit j = feature b * bits_per_beat + j (feature p * K + j = plane planes[j] of pixel p); the last beat is zero-padded".into()
            },
            reads: self.reads.clone(),
        }
    }
}
