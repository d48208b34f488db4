//! Co-simulating a generated design in Verilator against the reference and cycle models, and
//! checking design.json's latency and initiation interval against the simulated design.

use std::path::PathBuf;

use super::{check_compatible, design_inputs, Argv, DataSource};
use crate::cosim::{self, SimReport};
use crate::error::{Result, Setting};
use crate::model;
use crate::reference::schedule::Schedule;
use crate::rtlgen;
use crate::util::atomic;
use crate::util::output::Plan;

/// `cbnn sim`.
#[derive(Clone, Debug, PartialEq)]
pub struct SimJob {
    /// The design directory.
    pub dir: PathBuf,
    /// The images (the first `count` test images are simulated).
    pub data: DataSource,
    /// Test images simulated [default: all].
    pub count: Option<usize>,
    /// Random input idle cycles and output back-pressure from this seed [default: none].
    pub stall_seed: Option<u64>,
    /// A VCD waveform of the run, if wanted.
    pub vcd: Option<PathBuf>,
    /// The JSON report, if any.
    pub json: Option<PathBuf>,
}

impl SimJob {
    /// A free-running simulation of every test image.
    pub fn new(dir: PathBuf, data: DataSource) -> Self {
        Self {
            dir,
            data,
            count: None,
            stall_seed: None,
            vcd: None,
            json: None,
        }
    }

    pub(super) fn argv(&self) -> Vec<String> {
        let mut a = Argv::new(&["sim"]);
        a.word(self.dir.display());
        a.opt("--count", self.count);
        a.opt("--stall-seed", self.stall_seed);
        a.opt_path("--vcd", self.vcd.as_deref());
        a.opt_path("--json", self.json.as_deref());
        self.data.argv(&mut a);
        a.0
    }

    pub(super) fn plan(&self) -> Plan {
        self.data.plan(design_inputs(
            Plan::new()
                .file(Setting::Vcd, self.vcd.as_deref())
                .file(Setting::Json, self.json.as_deref()),
            &self.dir,
        ))
    }

    pub(super) fn run(&self) -> Result<SimReport> {
        cosim::verilator_version()?;
        let design = Design::load(&self.dir, &self.data, self.count)?;
        let manifest = &design.manifest;
        let count = design.test.len();
        let (exe, build_seconds) = cosim::build_within(
            &self.dir,
            &manifest.files,
            self.vcd.is_some(),
            Some(cosim::datapath_bits(manifest)),
            || {
                errln!(
                    "building {} with Verilator (cached for the next runs) ...",
                    self.dir.display()
                )
            },
        )?;
        errln!(
            "simulating {count} images ({}) ...",
            self.stall_seed
                .map_or("free-running".to_string(), |s| format!("stall seed {s}"))
        );
        let vcd_tmp = self.vcd.as_deref().map(atomic::temporary_for).transpose()?;
        let job = design.job(&self.dir, self.stall_seed, vcd_tmp.as_deref());
        let run = cosim::run(&exe, &job);
        let mut report = match (run, &self.vcd, &vcd_tmp) {
            (Ok(r), Some(path), Some(tmp)) => {
                atomic::commit(tmp, path)?;
                r
            }
            (r, _, tmp) => {
                if let Some(t) = tmp {
                    let _ = std::fs::remove_file(t);
                }
                r?
            }
        };
        report.build_seconds = build_seconds;
        // design.json's latency and interval are the first image's and the 7th to 8th image's
        // of eight sent back to back, free-running: measured on this run when it is one,
        // otherwise on eight images more.
        let (latency, interval) = match (report.measured_latency, report.measured_interval) {
            (Some(l), Some(i)) if count >= TIMING_IMAGES => (l, i),
            _ => {
                errln!("simulating {TIMING_IMAGES} images free-running for the timing ...");
                let job = design.job_on(&design.first, &self.dir, None, None);
                let timing = cosim::run(&exe, &job)?;
                let interval = timing.measured_interval.unwrap_or_default();
                let latency = timing.measured_latency.unwrap_or_default();
                (latency, interval)
            }
        };
        report.measured_latency = Some(latency);
        for (what, measured, claimed) in [
            ("latency", latency, manifest.latency),
            (
                "initiation interval",
                interval,
                manifest.initiation_interval,
            ),
        ] {
            if measured != claimed {
                return Err(crate::error::Error::CheckFailed(format!(
                    "the simulated {what} is {measured} cycles, design.json says {claimed}"
                )));
            }
        }
        if let Some(path) = &self.json {
            atomic::write_json(path, &report)?;
        }
        Ok(report)
    }
}

/// Images of the free-running run that measures a design's latency and initiation interval.
const TIMING_IMAGES: usize = 8;

/// A design directory checked and loaded with the test images a run drives.
pub(super) struct Design {
    /// Its manifest.
    pub manifest: rtlgen::Manifest,
    /// Its model (the copy in the directory).
    pub model: crate::model::IntModel,
    /// Its timing, as the cycle model takes it.
    pub timing: crate::reference::cycle::Timing,
    /// The first `count` test images (all by default).
    pub test: crate::data::LabeledSet,
    /// The first eight test images (repeated when there are fewer).
    pub first: crate::data::LabeledSet,
}

impl Design {
    /// Loads the design in `dir` (manifest, model, files checked) and the first `count` test
    /// images of `data` (all of them when `None`).
    pub fn load(dir: &std::path::Path, data: &DataSource, count: Option<usize>) -> Result<Design> {
        let manifest = rtlgen::load_manifest(dir)?;
        let model_path = dir.join(rtlgen::MODEL_FILE);
        let m = model::load(&model_path)?;
        manifest.check_model(&m, &dir.join("design.json"))?;
        manifest.check_files(dir)?;
        let timing = manifest.check_timing(&m, &dir.join("design.json"))?;
        let ds = data.open()?;
        check_compatible(&m, &model_path, &ds)?;
        let count = count.unwrap_or(ds.test.len()).min(ds.test.len());
        if count == 0 {
            return Err(invalid!(Setting::Count, " must be at least 1"));
        }
        let first = repeated(&ds.test, TIMING_IMAGES);
        Ok(Design {
            manifest,
            model: m,
            timing,
            test: ds.test.slice(0..count),
            first,
        })
    }

    /// The co-simulation job of these images under the schedule of `stall_seed`.
    pub fn job<'a>(
        &'a self,
        dir: &'a std::path::Path,
        stall_seed: Option<u64>,
        vcd: Option<&'a std::path::Path>,
    ) -> cosim::Job<'a> {
        self.job_on(&self.test, dir, stall_seed, vcd)
    }

    /// The co-simulation job of `set` under the schedule of `stall_seed`.
    fn job_on<'a>(
        &'a self,
        set: &'a crate::data::LabeledSet,
        dir: &'a std::path::Path,
        stall_seed: Option<u64>,
        vcd: Option<&'a std::path::Path>,
    ) -> cosim::Job<'a> {
        cosim::Job {
            dir,
            model: &self.model,
            timing: &self.timing,
            output: &self.manifest.output,
            bits_per_beat: self.manifest.input.bits_per_beat,
            reads: self.manifest.input.reads.as_deref(),
            images: &set.images,
            labels: &set.labels,
            schedule: Schedule { stall_seed },
            vcd,
        }
    }
}

/// The first `n` images of `set`, from its start again when it has fewer (it has at least one).
fn repeated(set: &crate::data::LabeledSet, n: usize) -> crate::data::LabeledSet {
    let have = set.len().min(n);
    let mut out = set.slice(0..have);
    while out.len() < n {
        let more = set.slice(0..have.min(n - out.len()));
        out.images.pixels.extend_from_slice(&more.images.pixels);
        out.labels.extend_from_slice(&more.labels);
    }
    out
}
