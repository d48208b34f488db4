//! Synthesizing a generated design with Yosys (and nextpnr-ice40).

use std::path::PathBuf;

use super::{design_inputs, Argv};
use crate::error::{Result, Setting};
use crate::rtlgen;
use crate::synth::{self, SynthReport, Target};
use crate::util::output::Plan;

/// `cbnn synth`.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthJob {
    /// The design directory.
    pub dir: PathBuf,
    /// What to synthesize for.
    pub target: Target,
    /// The JSON report, if any.
    pub json: Option<PathBuf>,
}

impl SynthJob {
    pub(super) fn argv(&self) -> Vec<String> {
        let mut a = Argv::new(&["synth"]);
        a.word(self.dir.display());
        if self.target != Target::Xilinx {
            a.flag("--target", self.target.name());
        }
        a.opt_path("--json", self.json.as_deref());
        a.0
    }

    pub(super) fn plan(&self) -> Plan {
        design_inputs(
            Plan::new().file(Setting::Json, self.json.as_deref()),
            &self.dir,
        )
    }

    /// What it writes into the design directory.
    pub(super) fn files_in_design(&self) -> Vec<PathBuf> {
        synth::files_into_design(self.target)
            .iter()
            .map(|f| self.dir.join(f))
            .collect()
    }

    pub(super) fn run(&self) -> Result<SynthReport> {
        let manifest = rtlgen::load_manifest(&self.dir)?;
        manifest.check_files(&self.dir)?;
        // The timing the report carries (cycles per image, latency) is the design's: an edited
        // design.json is refused here as `cbnn sim` refuses it.
        let m = crate::model::load(&self.dir.join(rtlgen::MODEL_FILE))?;
        let at = self.dir.join("design.json");
        manifest.check_model(&m, &at)?;
        manifest.check_timing(&m, &at)?;
        // A bad memory limit, or a design too large for it, is said before any work.
        let budget = crate::util::process::memory_budget()?;
        synth::check_script(&self.dir, &manifest, self.target)?;
        synth::check_predicted_memory(&self.dir, &manifest, budget)?;
        errln!(
            "synthesizing {} for {} with Yosys ...",
            self.dir.display(),
            self.target.name()
        );
        let rep = synth::synthesize(&self.dir, &manifest, self.target)?;
        if let Some(path) = &self.json {
            crate::util::atomic::write_json(path, &rep)?;
        }
        Ok(rep)
    }
}
