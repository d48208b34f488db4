//! Importing a binary QONNX network (as Brevitas exports it) as an integer model.

use std::path::PathBuf;

use super::Argv;
use crate::bitslice::PlaneSet;
use crate::error::{Result, Setting};
use crate::interop::import::{self, Options};
use crate::model::{self, InputShape};
use crate::util::output::Plan;

/// `cbnn import`.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportJob {
    /// The ONNX file.
    pub onnx: PathBuf,
    /// The kept planes of the graph's features, when the graph does not say.
    pub planes: Option<Vec<u8>>,
    /// The image shape, `HxWxC`, when the graph does not say.
    pub input: Option<String>,
    /// The model file written.
    pub output: PathBuf,
}

/// What `cbnn import` wrote.
#[derive(Debug)]
pub struct ImportOutcome {
    /// The model file.
    pub output: PathBuf,
    /// The model's architecture notation.
    pub arch: String,
    /// Its kept planes.
    pub planes: Vec<u8>,
    /// Its image shape.
    pub input: InputShape,
    /// Where planes and shape came from (`given`, `metadata`, `inferred`).
    pub shape_source: &'static str,
    /// Its size in bits.
    pub size_bits: u64,
    /// Nodes of the graph.
    pub nodes: usize,
}

/// `HxWxC` (or `HxW`, one channel) as an image shape.
pub fn parse_input(text: &str) -> Result<InputShape> {
    let dims: Option<Vec<usize>> = text.split('x').map(|d| d.trim().parse().ok()).collect();
    let shape = match dims.as_deref() {
        Some(&[height, width, channels]) => Some((height, width, channels)),
        Some(&[height, width]) => Some((height, width, 1)),
        _ => None,
    };
    let Some((height, width, channels)) = shape.filter(|&(h, w, c)| h > 0 && w > 0 && c > 0) else {
        return Err(invalid!(
            Setting::Input,
            " {text:?} is not HxWxC (for example 28x28x1), each at least 1"
        ));
    };
    let input = InputShape {
        height,
        width,
        channels,
    };
    // The model loader's rule, so that no model is written that other commands refuse.
    if import::feature_count(1, &input).is_none() {
        return Err(invalid!(
            Setting::Input,
            " {text:?} gives more than {} features, the most a model may have",
            model::MAX_LAYER_INPUTS
        ));
    }
    Ok(input)
}

impl ImportJob {
    pub(super) fn argv(&self) -> Vec<String> {
        let mut a = Argv::new(&["import"]);
        a.word(self.onnx.display());
        if let Some(p) = &self.planes {
            let p: Vec<String> = p.iter().map(|p| p.to_string()).collect();
            a.flag("--planes", p.join(","));
        }
        if let Some(i) = &self.input {
            a.flag("--input", i);
        }
        a.flag("-o", self.output.display());
        a.0
    }

    pub(super) fn plan(&self) -> Plan {
        Plan::new()
            .file(Setting::Output, Some(&self.output))
            .input("the ONNX file", &self.onnx)
    }

    pub(super) fn run(&self) -> Result<ImportOutcome> {
        let options = Options {
            planes: self.planes.as_deref().map(PlaneSet::new).transpose()?,
            input: self.input.as_deref().map(parse_input).transpose()?,
        };
        let bytes = import::read(&self.onnx)?;
        let imported = import::import(&bytes, &options)
            .map_err(|e| crate::Error::usage(format!("{}: {e}", self.onnx.display())))?;
        let m = &imported.model;
        model::save(m, &self.output)?;
        Ok(ImportOutcome {
            output: self.output.clone(),
            arch: m.arch(),
            planes: m.planes.planes().to_vec(),
            input: m.input,
            shape_source: imported.shape_source,
            size_bits: m.size_bits(),
            nodes: imported.nodes,
        })
    }
}
