//! A design manifest read back from disk is checked before anything uses it: a `design.json`
//! that parses but does not describe a design cbnn could have written (zero pixels per beat,
//! zero PE, an output port too narrow for its scores, no layers, file names that leave the
//! directory) is one error naming the field, never a panic or a simulation of nonsense; its
//! timing fields (latency, initiation interval, beats and each layer's cycles per image and
//! FIFO depth) must be what the cycle model computes for its model and folding.

use std::path::Path;

use super::Manifest;
use crate::error::{Error, Result};
use crate::model::IntModel;
use crate::plan::{fold, output_packing};
use crate::reference::cycle::Timing;

/// Widest input or output beat a manifest may declare, in bits.
const MAX_BEAT_BITS: usize = 1 << 16;

impl Manifest {
    /// Checks the manifest on its own (`path` names it in errors).
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad =
            |field: &str, msg: String| Err(Error::bad_file(path, format!("\"{field}\" {msg}")));
        let i = &self.input;
        if i.pixels_per_beat == 0 {
            return bad("input.pixels_per_beat", "must be at least 1".into());
        }
        if i.planes.is_empty() || i.planes.len() > 8 {
            return bad(
                "input.planes",
                format!("has {} planes; 1 to 8 are possible", i.planes.len()),
            );
        }
        if let Some(reads) = &i.reads {
            if reads.windows(2).any(|w| w[0] >= w[1])
                || reads.last().is_some_and(|&r| r as usize >= i.features)
            {
                return bad(
                    "input.reads",
                    format!("must be increasing features below {}", i.features),
                );
            }
            if i.bits_per_beat == 0 || i.bits_per_beat > reads.len() {
                return bad(
                    "input.bits_per_beat",
                    format!(
                        "is {}; a logic-mapped port carries 1 to the {} bits of input.reads a beat",
                        i.bits_per_beat,
                        reads.len()
                    ),
                );
            }
        } else if i.pixels_per_beat.checked_mul(i.planes.len()) != Some(i.bits_per_beat) {
            return bad(
                "input.bits_per_beat",
                format!(
                    "is {} but pixels_per_beat x planes is {} x {}",
                    i.bits_per_beat,
                    i.pixels_per_beat,
                    i.planes.len()
                ),
            );
        }
        if i.bits_per_beat > MAX_BEAT_BITS || self.output.width > MAX_BEAT_BITS {
            return bad(
                "input.bits_per_beat",
                format!("or output.width exceeds {MAX_BEAT_BITS} bits"),
            );
        }
        let o = &self.output;
        let needed = o
            .classes
            .checked_mul(o.score_bits)
            .and_then(|s| s.checked_add(o.scores_lsb));
        if o.classes < 2 || o.class_bits == 0 || o.score_bits == 0 || o.scores_lsb < o.class_bits {
            return bad(
                "output",
                "needs at least 2 classes and non-zero class and score widths".into(),
            );
        }
        if needed.is_none_or(|n| n > o.width) {
            return bad(
                "output.width",
                format!(
                    "is {} bits, too narrow for {} scores of {} bits above bit {}",
                    o.width, o.classes, o.score_bits, o.scores_lsb
                ),
            );
        }
        if self.layers.is_empty() {
            return bad("layers", "is empty".into());
        }
        for (k, l) in self.layers.iter().enumerate() {
            if l.pe == 0 || l.simd == 0 || l.pe > l.outputs || l.simd > l.inputs {
                return bad(
                    &format!("layers[{k}]"),
                    format!(
                        "has PE {} and SIMD {} for {} neurons of {} inputs; both must be between 1 \
                         and those sizes",
                        l.pe, l.simd, l.outputs, l.inputs
                    ),
                );
            }
            if l.pipe > fold::MAX_PIPE {
                return bad(
                    &format!("layers[{k}].pipe"),
                    format!("is {}; 0 or {} are possible", l.pipe, fold::MAX_PIPE),
                );
            }
        }
        if self.files.is_empty() {
            return bad("files", "is empty".into());
        }
        let names = self
            .files
            .iter()
            .chain(&self.written)
            .chain(&self.constraints)
            .chain(
                self.layers
                    .iter()
                    .map(|l| &l.weight_file)
                    .filter(|f| !f.is_empty()),
            )
            .chain(self.layers.iter().filter_map(|l| l.threshold_file.as_ref()));
        // Names of the characters cbnn gives its files: they go into tool scripts (a Yosys
        // script splits commands at `;`), so nothing else may pass.
        let plain_char = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        for f in names {
            let plain = Path::new(f).file_name().is_some_and(|n| n == f.as_str());
            if !plain || f.starts_with('.') || !f.chars().all(plain_char) {
                return bad(
                    "files",
                    format!(
                        "names '{f}', which is not a file name cbnn gives inside the design \
                         directory (letters, digits, '_', '.', '-')"
                    ),
                );
            }
        }
        let ident = |s: &str| {
            s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !ident(&self.module) {
            return bad(
                "module",
                format!("is '{}', not a Verilog identifier", self.module),
            );
        }
        Ok(())
    }

    /// Checks that every HDL file and memory image the manifest names is in `dir`.
    pub fn check_files(&self, dir: &Path) -> Result<()> {
        let images = self
            .layers
            .iter()
            .filter(|l| !l.weights_in_logic && !l.weight_file.is_empty())
            .flat_map(|l| std::iter::once(&l.weight_file).chain(l.threshold_file.as_ref()));
        for f in self.files.iter().chain(images) {
            let path = dir.join(f);
            if !path.is_file() {
                return Err(Error::bad_file(
                    &path,
                    "is missing from the design directory (design.json names it); regenerate \
                     the design with `cbnn rtl`",
                ));
            }
        }
        Ok(())
    }

    /// Checks that the manifest describes a design of `model` (the copy in its directory).
    pub fn check_model(&self, model: &IntModel, path: &Path) -> Result<()> {
        let bad = |field: &str, msg: String| {
            Err(Error::bad_file(
                path,
                format!("\"{field}\" {msg} (the design's model.json says otherwise)"),
            ))
        };
        crate::plan::check_supported(model, path)?;
        if self.input.planes != model.planes.planes() {
            return bad("input.planes", format!("is {:?}", self.input.planes));
        }
        if self.input.features != model.features() {
            return bad("input.features", format!("is {}", self.input.features));
        }
        if self.input.pixels_per_beat > model.input.pixels() {
            return bad(
                "input.pixels_per_beat",
                format!(
                    "is {}, more than the image's pixels",
                    self.input.pixels_per_beat
                ),
            );
        }
        if self.input.reads != crate::plan::input_reads(model) {
            return bad(
                "input.reads",
                "are not the features the first layer reads".into(),
            );
        }
        if self.output != output_packing(model) {
            return bad(
                "output",
                "does not match the model's classes and scores".into(),
            );
        }
        let shapes = fold::shapes(model);
        if self.layers.len() != shapes.len() {
            return bad("layers", format!("has {} layers", self.layers.len()));
        }
        for (k, (l, s)) in self.layers.iter().zip(&shapes).enumerate() {
            if l.inputs != s.inputs || l.outputs != s.outputs {
                return bad(
                    &format!("layers[{k}]"),
                    format!("is {} -> {}", l.inputs, l.outputs),
                );
            }
        }
        Ok(())
    }

    /// Checks the manifest's timing fields against what the cycle model computes for `model`
    /// (the copy in its directory, already checked with [`Manifest::check_model`]) under the
    /// manifest's folding, and returns that timing: an edited latency, initiation interval,
    /// beat count, layer cycles or FIFO depth is one error naming the field, before anything
    /// reports or compares it.
    pub fn check_timing(&self, model: &IntModel, path: &Path) -> Result<Timing> {
        let planned = crate::plan::design_timing(model, &self.folding(), self.input.per_beat());
        let (timing, latency, interval) = (planned.timing, planned.latency, planned.interval);
        let bad = |field: &str, is: String, computed: String| {
            Err(Error::bad_file(
                path,
                format!(
                    "\"{field}\" is {is}, but the design's model.json and folding give \
                     {computed}; regenerate the design with `cbnn rtl`"
                ),
            ))
        };
        if self.beats_per_image != timing.beats {
            return bad(
                "beats_per_image",
                self.beats_per_image.to_string(),
                timing.beats.to_string(),
            );
        }
        let streams = model.layers.iter().any(|l| l.hardware().streams());
        for (k, (info, &cycles)) in self.layers.iter().zip(&planned.cycles).enumerate() {
            if info.cycles_per_image != cycles {
                return bad(
                    &format!("layers[{k}].cycles_per_image"),
                    info.cycles_per_image.to_string(),
                    cycles.to_string(),
                );
            }
            let depth = streams.then_some(planned.fifos[k]);
            if info.fifo_depth != depth {
                let show = |d: Option<usize>| d.map_or("absent".to_string(), |d| d.to_string());
                return bad(
                    &format!("layers[{k}].fifo_depth"),
                    show(info.fifo_depth),
                    show(depth),
                );
            }
        }
        if self.initiation_interval != interval {
            return bad(
                "initiation_interval",
                self.initiation_interval.to_string(),
                interval.to_string(),
            );
        }
        if self.latency != latency {
            return bad("latency", self.latency.to_string(), latency.to_string());
        }
        Ok(timing)
    }
}
