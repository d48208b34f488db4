//! Writing a design's portable testbench: real test images, their expected outputs and the
//! predicted handshake cycles, for any Verilog simulator and for cocotb.

use std::path::{Path, PathBuf};

use super::sim::Design;
use super::{design_inputs, Argv, DataSource};
use crate::cosim::testbench;
use crate::error::{Error, Result, Setting};
use crate::util::atomic;
use crate::util::output::Plan;

/// Test images a testbench drives by default: enough to cover every class, few enough for an
/// event-driven simulator on a convolutional design.
pub const DEFAULT_COUNT: usize = 100;

/// `cbnn testbench`.
#[derive(Clone, Debug, PartialEq)]
pub struct TestbenchJob {
    /// The design directory (the testbench goes to `DIR/testbench`).
    pub dir: PathBuf,
    /// The images (the first `count` test images are driven).
    pub data: DataSource,
    /// Test images driven [default: [`DEFAULT_COUNT`]].
    pub count: Option<usize>,
    /// Random input idle cycles and output back-pressure from this seed [default: none].
    pub stall_seed: Option<u64>,
}

/// What `cbnn testbench` wrote.
#[derive(Debug)]
pub struct TestbenchOutcome {
    /// The testbench directory.
    pub dir: PathBuf,
    /// Its settings.
    pub settings: testbench::Settings,
}

impl TestbenchJob {
    /// A free-running testbench of the default number of images.
    pub fn new(dir: PathBuf, data: DataSource) -> Self {
        Self {
            dir,
            data,
            count: None,
            stall_seed: None,
        }
    }

    /// The testbench directory.
    pub fn output(&self) -> PathBuf {
        self.dir.join(testbench::DIR)
    }

    pub(super) fn argv(&self) -> Vec<String> {
        let mut a = Argv::new(&["testbench"]);
        a.word(self.dir.display());
        a.opt("--count", self.count);
        a.opt("--stall-seed", self.stall_seed);
        self.data.argv(&mut a);
        a.0
    }

    pub(super) fn plan(&self) -> Plan {
        self.data.plan(design_inputs(
            Plan::new().dir(Setting::Output, &self.output()),
            &self.dir,
        ))
    }

    pub(super) fn run(&self) -> Result<TestbenchOutcome> {
        let out = self.output();
        check_replaceable(&out)?;
        let design = Design::load(
            &self.dir,
            &self.data,
            Some(self.count.unwrap_or(DEFAULT_COUNT)),
        )?;
        let job = design.job(&self.dir, self.stall_seed, None);
        let settings = atomic::write_dir_atomic(&out, |staging| testbench::write(staging, &job))?;
        Ok(TestbenchOutcome { dir: out, settings })
    }
}

/// Refuses to replace a `testbench` directory that holds anything but what `cbnn testbench`
/// writes and the build outputs of the simulator commands it gives.
fn check_replaceable(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let temporary = name.starts_with('.') && name.contains(".tmp-");
        let ours =
            testbench::FILES.contains(&name.as_str()) && e.file_type().is_ok_and(|t| t.is_file());
        let built = testbench::BUILD_OUTPUTS.contains(&name.as_str());
        if !(ours || built || temporary) {
            return Err(Error::usage(format!(
                "{}: {name} is neither a file `cbnn testbench` writes nor a build output of the \
                 commands it gives; the directory is replaced as a whole, so move it away first",
                dir.display()
            )));
        }
    }
    Ok(())
}
