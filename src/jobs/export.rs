//! Exporting an integer model as an ONNX graph (QONNX or FINN-ONNX).

use std::path::PathBuf;

use super::Argv;
use crate::error::{Result, Setting};
use crate::interop::onnx::{self, Format};
use crate::model;
use crate::util::atomic;
use crate::util::output::Plan;

/// `cbnn export`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportJob {
    /// The model file.
    pub model: PathBuf,
    /// The dialect.
    pub format: Format,
    /// The fixed batch of the graph's input.
    pub batch: usize,
    /// The ONNX file written.
    pub output: PathBuf,
}

/// The batch of an exported graph when none is given.
pub const DEFAULT_BATCH: usize = 1;

/// Largest batch an exported graph may fix.
pub const MAX_BATCH: usize = 1 << 20;

/// What `cbnn export` wrote.
#[derive(Debug)]
pub struct ExportOutcome {
    /// The ONNX file.
    pub output: PathBuf,
    /// Its dialect.
    pub format: Format,
    /// Its size in bytes.
    pub bytes: usize,
    /// Nodes in the graph.
    pub layers: usize,
}

impl ExportJob {
    pub(super) fn argv(&self) -> Vec<String> {
        let mut a = Argv::new(&["export"]);
        a.word(self.model.display());
        a.flag("--format", self.format.name());
        if self.batch != DEFAULT_BATCH {
            a.flag("--batch", self.batch);
        }
        a.flag("-o", self.output.display());
        a.0
    }

    pub(super) fn plan(&self) -> Plan {
        Plan::new()
            .file(Setting::Output, Some(&self.output))
            .input("the model", &self.model)
    }

    pub(super) fn run(&self) -> Result<ExportOutcome> {
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return Err(invalid!(
                Setting::Batch,
                " {} must be between 1 and {MAX_BATCH} images",
                self.batch
            ));
        }
        let m = model::load(&self.model)?;
        let bytes = onnx::export(&m, self.format, self.batch)
            .map_err(|e| crate::Error::usage(format!("{}: {e}", self.model.display())))?;
        atomic::write_atomic(&self.output, &bytes)?;
        Ok(ExportOutcome {
            output: self.output.clone(),
            format: self.format,
            bytes: bytes.len(),
            layers: m.layers.len(),
        })
    }
}
