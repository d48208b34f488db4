//! Generating the accelerator of a model: folding, top level, memory images, manifest,
//! constraints and the resource estimate.

use std::path::PathBuf;

use super::Argv;
use crate::error::{Error, Result, Setting};
use crate::model::{self, IntModel};
use crate::plan::{self, fold, RtlConfig};
use crate::rtlgen::{self, Manifest};
use crate::synth::{self, estimate::Estimate};
use crate::util::output::Plan;
use crate::vocab::fold::LayerFold;

/// How the layers are folded.
#[derive(Clone, Debug, PartialEq)]
pub enum Folding {
    /// PE = min(neurons, 16), SIMD = min(inputs, 64) for every layer.
    Default,
    /// A per-layer specification, `L0:PE,SIMD;L1:full;...` (layers not named get the default).
    Spec(String),
    /// Per layer, the folding of least estimated cost that meets this many cycles per image;
    /// pixels per beat grow if the input stream needs it (not for a convnet, which streams one
    /// pixel a beat).
    Auto {
        /// Cycles per image.
        target_cycles: usize,
    },
}

/// `cbnn rtl`.
#[derive(Clone, Debug, PartialEq)]
pub struct RtlJob {
    /// The model file.
    pub model: PathBuf,
    /// The design directory (replaced as a whole, only if it is a cbnn design).
    pub output: PathBuf,
    /// The folding.
    pub fold: Folding,
    /// Clock the constraints and place and route aim for, MHz.
    pub clock_mhz: f64,
    /// Register stages after each popcount tree (0 or 1) where the folding does not say.
    pub pipe: usize,
    /// Pixels per input beat [default: 8, or the image's pixels when fewer; grown by
    /// [`Folding::Auto`] when the target needs it; a convnet: 1].
    pub pixels_per_beat: Option<usize>,
    /// Input bits per beat of a logic-mapped design [default: every bit its first layer
    /// reads, one image a beat].
    pub bits_per_beat: Option<usize>,
}

/// Clock by default, MHz.
pub const DEFAULT_CLOCK_MHZ: f64 = 100.0;

/// What was generated.
#[derive(Debug)]
pub struct RtlOutcome {
    /// The design's manifest (design.json).
    pub manifest: Manifest,
    /// The resource estimate (estimate.json).
    pub estimate: Estimate,
    /// The design directory.
    pub dir: PathBuf,
}

/// The folding and pixels per beat of `m` that `fold` and `pixels_per_beat` ask for.
pub fn choose_folding(
    m: &IntModel,
    folding: &Folding,
    pipe: usize,
    pixels_per_beat: Option<usize>,
) -> Result<(Vec<LayerFold>, usize)> {
    let pixels = m.input.pixels();
    // A first layer that streams pixels (a convolution) takes one a beat.
    let default_ppb = if plan::streams_in(m) {
        1
    } else {
        8.min(pixels)
    };
    Ok(match folding {
        Folding::Auto { target_cycles } => {
            let ppb = match pixels_per_beat {
                Some(p) => p,
                None if plan::streams_in(m) => 1,
                // A logic-mapped design takes its whole input at once (no pixel stream).
                None if plan::logic_mapped(m) => default_ppb,
                None => synth::autofold::pixels_per_beat(pixels, *target_cycles)?.max(default_ppb),
            };
            let mut fold = synth::autofold::fold(m, *target_cycles, pipe)?;
            // A convolutional pipeline's stages interact (a window unit hands on bursts, and
            // holds its walk while a window waits: a convolution takes more than its cycles per
            // image); the cycle model says whether the whole meets the target. When it does
            // not, each layer is folded again for a bound just below the slowest layer's cycles
            // per image, until it does: the foldings tried are those of smaller targets, so a
            // target is met whenever a smaller one is.
            if plan::streams_in(m) && ppb == 1 {
                let target = *target_cycles as u64;
                loop {
                    let planned = plan::design_timing(m, &fold, ppb);
                    let interval = planned.interval;
                    if interval <= target {
                        break;
                    }
                    let slowest = planned.cycles.iter().copied().max().unwrap_or(0);
                    match slowest
                        .checked_sub(1)
                        .and_then(|bound| synth::autofold::fold(m, bound, pipe).ok())
                    {
                        Some(faster) => fold = faster,
                        None => {
                            return Err(invalid!(
                                Setting::TargetCycles,
                                " {target_cycles} cannot be met: with each layer folded to meet \
                                 it alone, the pipeline takes {interval} cycles per image (the \
                                 cycle model); give a larger target"
                            ))
                        }
                    }
                }
            } else if ppb > 0 && !plan::logic_mapped(m) {
                // The input stream alone may miss the target when the pixels per beat are
                // given.
                let planned = plan::design_timing(m, &fold, ppb);
                let (interval, timing) = (planned.interval, planned.timing);
                if interval > *target_cycles as u64 {
                    return Err(Error::invalid([
                        Setting::TargetCycles.into(),
                        format!(" {target_cycles} cannot be met with ").into(),
                        Setting::PixelsPerBeat.into(),
                        format!(
                            " {ppb}: the design would take {interval} cycles per image ({} input \
                             beats); give more pixels per beat or leave that setting out",
                            timing.beats
                        )
                        .into(),
                    ]));
                }
            }
            (fold, ppb)
        }
        Folding::Spec(spec) => (
            fold::parse(spec, m, pipe)?,
            pixels_per_beat.unwrap_or(default_ppb),
        ),
        Folding::Default => (
            fold::default_folding(m, pipe),
            pixels_per_beat.unwrap_or(default_ppb),
        ),
    })
}

impl RtlJob {
    /// A job with every setting at its default.
    pub fn new(model: PathBuf, output: PathBuf) -> Self {
        Self {
            model,
            output,
            fold: Folding::Default,
            clock_mhz: DEFAULT_CLOCK_MHZ,
            pipe: 0,
            pixels_per_beat: None,
            bits_per_beat: None,
        }
    }

    pub(super) fn argv(&self) -> Vec<String> {
        let mut a = Argv::new(&["rtl"]);
        a.word(self.model.display());
        a.path("-o", &self.output);
        match &self.fold {
            Folding::Default => {}
            Folding::Spec(s) => a.flag("--fold", s),
            Folding::Auto { target_cycles } => {
                a.flag("--fold", "auto");
                a.flag("--target-cycles", target_cycles);
            }
        }
        if self.clock_mhz != DEFAULT_CLOCK_MHZ {
            a.flag("--clock-mhz", self.clock_mhz);
        }
        if self.pipe != 0 {
            a.flag("--pipe", self.pipe);
        }
        a.opt("--pixels-per-beat", self.pixels_per_beat);
        a.opt("--bits-per-beat", self.bits_per_beat);
        a.0
    }

    pub(super) fn plan(&self) -> Plan {
        Plan::new()
            .dir(Setting::Output, &self.output)
            .input("the model", &self.model)
    }

    /// Checks that the output directory is absent or a cbnn design.
    pub(super) fn check_replaceable(&self) -> Result<()> {
        // A design's later stages write beside it: synthesis files, the testbench directory.
        rtlgen::ownership::check_replaceable(&self.output, &|name| {
            synth::writes_into_design(name) || name == crate::cosim::testbench::DIR
        })
    }

    pub(super) fn run(&self) -> Result<RtlOutcome> {
        let m = model::load(&self.model)?;
        plan::check_supported(&m, &self.model)?;
        // A logic-mapped port carries the input bits the first layer reads, not pixels.
        match (
            plan::logic_mapped(&m),
            self.pixels_per_beat,
            self.bits_per_beat,
        ) {
            (true, Some(_), _) => {
                return Err(Error::invalid([
                    Setting::PixelsPerBeat.into(),
                    format!(
                        ": {} is logic-mapped: its port carries the input bits its first layer \
                         reads, not pixels; narrow it with ",
                        self.model.display()
                    )
                    .into(),
                    Setting::BitsPerBeat.into(),
                ]))
            }
            (false, _, Some(_)) => {
                return Err(Error::invalid([
                    Setting::BitsPerBeat.into(),
                    format!(
                        " is for logic-mapped designs; {} takes pixels a beat (",
                        self.model.display()
                    )
                    .into(),
                    Setting::PixelsPerBeat.into(),
                    ")".into(),
                ]))
            }
            _ => {}
        }
        let (fold, pixels_per_beat) =
            choose_folding(&m, &self.fold, self.pipe, self.pixels_per_beat)?;
        let cfg = RtlConfig {
            fold,
            pixels_per_beat,
            bits_per_beat: self.bits_per_beat,
            clock_mhz: self.clock_mhz,
        };
        let plan = plan::build(&m, &self.model, &cfg)?;
        // A logic-mapped design's cycles per image follow from its port (one image a clock,
        // or a beat a clock behind a narrower one): checked on its plan.
        if let (Folding::Auto { target_cycles }, true) = (&self.fold, plan::logic_mapped(&m)) {
            if plan.timing.interval > *target_cycles as u64 {
                return Err(invalid!(
                    Setting::TargetCycles,
                    " {target_cycles} cannot be met: the logic-mapped design takes {} cycles \
                     per image with its port of {} bits a beat",
                    plan.timing.interval,
                    plan.in_width
                ));
            }
        }
        let estimate = synth::estimate::for_plan(&plan);
        let manifest = crate::util::atomic::write_dir_atomic(&self.output, |dir| {
            let mut manifest = rtlgen::write(&plan, &self.model, dir)?;
            manifest.constraints = synth::constraints::write(dir, &manifest)?;
            crate::util::atomic::write_json(&dir.join("estimate.json"), &estimate)?;
            rtlgen::write_manifest(dir, &mut manifest)?;
            Ok(manifest)
        })?;
        Ok(RtlOutcome {
            manifest,
            estimate,
            dir: self.output.clone(),
        })
    }
}
