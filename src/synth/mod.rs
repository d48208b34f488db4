//! Synthesis: constraint files and Yosys scripts for a design directory, Yosys and
//! nextpnr-ice40 runs and their reports, the resource model and automatic folding.
//!
//! Yosys runs the script `cbnn rtl` wrote into the design directory (`synth_<target>.ys`), so
//! what `cbnn synth` measures is what a user running that script by hand gets; a script that
//! differs from the one `cbnn rtl` writes for the design is never run. Its log and statistics
//! stay in the directory.

pub mod autofold;
pub mod constraints;
pub mod estimate;
pub mod report;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rtlgen::Manifest;
pub use report::Resources;

/// What to synthesize for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Xilinx 7-series (`synth_xilinx`).
    Xilinx,
    /// Lattice iCE40 (`synth_ice40`, then nextpnr-ice40 on an HX8K when the design fits).
    Ice40,
    /// Technology-independent gates (`synth`, `abc -g cmos2`), with a transistor estimate.
    Generic,
}

impl Target {
    /// Its name in file names and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::Xilinx => "xilinx",
            Target::Ice40 => "ice40",
            Target::Generic => "generic",
        }
    }

    /// The target of this name.
    pub fn parse(name: &str) -> Option<Target> {
        [Target::Xilinx, Target::Ice40, Target::Generic]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// The iCE40 device nextpnr places on, and its capacity.
pub const ICE40_DEVICE: &str = "iCE40-HX8K (CT256)";
const ICE40_LCS: u64 = 7680;
const ICE40_BRAMS: u64 = 32;
const ICE40_IOS: u64 = 206;

/// What `cbnn synth` reports.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SynthReport {
    /// Target.
    pub target: Target,
    /// Design directory.
    pub design: String,
    /// Resources (see [`Resources`]).
    #[serde(flatten)]
    pub resources: Resources,
    /// Cycles between images (free-running), from the manifest.
    pub cycles_per_image: u64,
    /// Cycles from input to output, from the manifest.
    pub latency: u64,
    /// Clock the design was constrained for, MHz.
    pub clock_mhz: f64,
    /// Device placed and routed on, if any.
    pub device: Option<String>,
    /// Highest clock nextpnr achieved, MHz (iCE40, when placed and routed).
    pub fmax_mhz: Option<f64>,
    /// Why place and route did or did not run.
    pub place_and_route: String,
    /// Seconds Yosys took.
    pub yosys_seconds: f64,
    /// Seconds nextpnr took.
    pub pnr_seconds: Option<f64>,
    /// Yosys's full log, in the design directory.
    pub log: String,
}

/// Yosys's version line, or a clear error saying what to install.
pub fn yosys_version() -> Result<String> {
    let out = Command::new("yosys").arg("-V").output().map_err(|_| {
        Error::usage("Yosys is not installed: install it with `apt-get install -y yosys`")
    })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs `program args` in `dir` (its memory limited to [`crate::util::process::memory_budget`]),
/// its output to `log`, with a spinner showing the last line
/// that `step` picks out; on failure, an error with the log's lines around the first error.
fn run_logged(
    program: &str,
    args: &[&str],
    dir: &Path,
    log: &Path,
    what: &str,
    step: fn(&str) -> Option<String>,
) -> Result<f64> {
    let start = Instant::now();
    let pb = crate::util::progress::spinner(what);
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let budget = crate::util::process::memory_budget()?;
    if let Some(bytes) = budget {
        crate::util::process::limit_memory(&mut cmd, bytes);
    }
    let mut guarded = crate::util::process::spawn(&mut cmd).map_err(|e| Error::io(program, e))?;
    let child = &mut guarded.child;
    let stderr = child.stderr.take().expect("piped");
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    let mut text = String::new();
    // Without a terminal the spinner is hidden: a line with the current step at most every
    // 30 s instead, so that a long run logged to a file shows where it is.
    let mut shown = Instant::now();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
            if let Some(msg) = step(&line) {
                if pb.is_hidden() && shown.elapsed().as_secs() >= 30 {
                    shown = Instant::now();
                    crate::util::progress::stderr_line(format_args!(
                        "{what}: {} so far, at {msg}",
                        crate::util::progress::duration(start.elapsed())
                    ));
                }
                pb.set_message(msg);
            }
            text.push_str(&line);
            text.push('\n');
        }
    }
    let status = child.wait().map_err(|e| Error::io(program, e))?;
    text.push_str(&err_thread.join().unwrap_or_default());
    pb.finish_and_clear();
    crate::util::atomic::write_atomic(log, text.as_bytes())?;
    if !status.success() {
        if let Some(bytes) = budget.filter(|_| crate::util::process::out_of_memory(&text, &status))
        {
            return Err(crate::util::process::ran_out(
                program,
                bytes,
                dir,
                Some(log),
            ));
        }
        // The first line that names an error, with the lines just before it when it is bare.
        let lines: Vec<&str> = text.lines().collect();
        let first = lines
            .iter()
            .position(|l| l.contains("ERROR") || l.contains("error:"))
            .unwrap_or(lines.len().saturating_sub(1));
        let shown = lines.get(first).map_or("no output", |l| l.trim());
        return Err(Error::CheckFailed(format!(
            "{program} failed on {}: {shown} (full log: {})",
            dir.display(),
            log.display()
        )));
    }
    Ok(start.elapsed().as_secs_f64())
}

fn yosys_step(line: &str) -> Option<String> {
    let rest = line.split_once(". Executing ")?.1;
    (!line.starts_with(' ')).then(|| rest.trim_end_matches('.').to_string())
}

fn nextpnr_step(line: &str) -> Option<String> {
    line.strip_prefix("Info: ")
        .filter(|l| !l.starts_with(' '))
        .map(str::to_string)
}

/// The files `cbnn synth --target target` may write into a design directory (logs,
/// statistics, place-and-route results).
pub fn files_into_design(target: Target) -> Vec<String> {
    let t = target.name();
    let mut files: Vec<String> = [".log", ".stat.json", ".stat.txt"]
        .iter()
        .map(|ext| format!("synth_{t}{ext}"))
        .collect();
    if target == Target::Ice40 {
        files.extend(
            [
                "synth_ice40.json",
                "nextpnr_ice40.log",
                "nextpnr_ice40.json",
                "cbnn_top.asc",
            ]
            .map(String::from),
        );
    }
    files
}

/// Whether `name` is a file `cbnn synth` writes into a design directory (logs, statistics,
/// place-and-route results), which a new `cbnn rtl` into that directory may replace.
pub fn writes_into_design(name: &str) -> bool {
    [Target::Xilinx, Target::Ice40, Target::Generic]
        .into_iter()
        .any(|t| files_into_design(t).iter().any(|f| f == name))
}

pub use crate::util::process::MEMORY_CHECK_VAR;

/// The most memory Yosys (0.23, `synth_xilinx`) is expected to take on a design of `luts`
/// estimated LUTs: 1 GiB and 40 KiB a LUT. Every design measured here stays below it (the
/// largest, 22805 estimated LUTs, peaked at 1039 MB; the conv pipelines at up to 809 MB with
/// 3178), and the one that ran out, a fully parallel perceptron of 1592561 estimated LUTs, was
/// ended at 23 GB (docs/hardware.md).
pub fn yosys_memory_bound(luts: u64) -> u64 {
    (1 << 30) + luts * (40 << 10)
}

/// Refuses, before Yosys starts, a design whose [`yosys_memory_bound`] exceeds `budget`.
pub fn check_predicted_memory(dir: &Path, manifest: &Manifest, budget: Option<u64>) -> Result<()> {
    if crate::util::process::checked_budget(budget).is_none() {
        return Ok(());
    }
    let model = crate::model::load(&dir.join("model.json"))?;
    let luts = estimate::for_manifest(&model, manifest).luts;
    crate::util::process::check_predicted(
        dir,
        "synthesize",
        &format!("for its ~{luts} estimated LUTs Yosys is expected to need"),
        "1 GiB and 40 KiB a LUT",
        yosys_memory_bound(luts),
        budget,
    )
}

/// The name of `target`'s Yosys script in `dir`, after checking that it is the one `cbnn rtl`
/// writes for the design.
pub fn check_script(dir: &Path, manifest: &Manifest, target: Target) -> Result<String> {
    let t = target.name();
    let script = format!("synth_{t}.ys");
    if !dir.join(&script).is_file() {
        return Err(Error::usage(format!(
            "{} has no {script}: regenerate the design with this version of `cbnn rtl`",
            dir.display()
        )));
    }
    // Only the script `cbnn rtl` writes for this design: a Yosys script can run any command
    // (`shell`, `!`), so one from elsewhere is never run in the user's name.
    let own = constraints::expected(manifest, &script);
    let found = crate::util::input::read_capped(&dir.join(&script), 1 << 20, "a Yosys script")?;
    if own.as_deref().map(str::as_bytes) != Some(&found[..]) {
        return Err(Error::usage(format!(
            "{}: differs from the script `cbnn rtl` writes for this design; `cbnn synth` runs \
             only its own script (a Yosys script can run any command), so regenerate the \
             design with `cbnn rtl`, or run this script with yosys yourself",
            dir.join(&script).display()
        )));
    }
    // Yosys writes its log and statistics into the directory: a directory that cannot take
    // them is said now, not after the whole run.
    crate::util::atomic::check_writable(&dir.join(format!("synth_{t}.log")))?;
    Ok(script)
}

/// Synthesizes the design in `dir` for `target`.
pub fn synthesize(dir: &Path, manifest: &Manifest, target: Target) -> Result<SynthReport> {
    yosys_version()?;
    let t = target.name();
    let script = check_script(dir, manifest, target)?;
    let log = dir.join(format!("synth_{t}.log"));
    let stat = dir.join(format!("synth_{t}.stat.json"));
    let _ = std::fs::remove_file(&stat);
    let yosys_seconds = run_logged(
        "yosys",
        &["-s", &script],
        dir,
        &log,
        &format!("yosys ({t})"),
        yosys_step,
    )?;
    let text = std::fs::read_to_string(&stat).map_err(|e| Error::io(&stat, e))?;
    let resources = report::parse_stat(&stat, &text)?;
    let mut rep = SynthReport {
        target,
        design: dir.display().to_string(),
        resources,
        cycles_per_image: manifest.initiation_interval,
        latency: manifest.latency,
        clock_mhz: manifest.clock_mhz,
        device: None,
        fmax_mhz: None,
        place_and_route: "not run for this target".into(),
        yosys_seconds,
        pnr_seconds: None,
        log: log.display().to_string(),
    };
    if target == Target::Ice40 {
        place_and_route_ice40(dir, manifest, &mut rep)?;
    }
    Ok(rep)
}

fn place_and_route_ice40(dir: &Path, manifest: &Manifest, rep: &mut SynthReport) -> Result<()> {
    let r = &rep.resources;
    let brams = r.bram_blocks.get("SB_RAM40_4K").copied().unwrap_or(0);
    let ios: u64 = manifest.ports.iter().map(|p| p.width as u64).sum();
    let mut over = Vec::new();
    if r.luts > ICE40_LCS {
        over.push(format!("{} LUT4 > {ICE40_LCS}", r.luts));
    }
    if r.ffs > ICE40_LCS {
        over.push(format!("{} flip-flops > {ICE40_LCS}", r.ffs));
    }
    if brams > ICE40_BRAMS {
        over.push(format!("{brams} block RAMs > {ICE40_BRAMS}"));
    }
    if ios > ICE40_IOS {
        over.push(format!("{ios} I/O pins > {ICE40_IOS}"));
    }
    if !over.is_empty() {
        rep.place_and_route = format!(
            "skipped: the design does not fit an {ICE40_DEVICE} ({})",
            over.join(", ")
        );
        return Ok(());
    }
    if Command::new("nextpnr-ice40")
        .arg("--version")
        .output()
        .is_err()
    {
        rep.place_and_route =
            "skipped: nextpnr-ice40 is not installed (apt-get install -y nextpnr-ice40)".into();
        return Ok(());
    }
    let freq = format!("{}", manifest.clock_mhz);
    let seconds = run_logged(
        "nextpnr-ice40",
        &[
            "--hx8k",
            "--package",
            "ct256",
            "--json",
            "synth_ice40.json",
            "--pcf",
            "cbnn.pcf",
            "--pcf-allow-unconstrained",
            "--freq",
            &freq,
            // A clock below the constraint is a result to report, not a failed run.
            "--timing-allow-fail",
            "--seed",
            "1",
            "--report",
            "nextpnr_ice40.json",
            "--asc",
            "cbnn_top.asc",
        ],
        dir,
        &dir.join("nextpnr_ice40.log"),
        "nextpnr-ice40",
        nextpnr_step,
    )?;
    let path: PathBuf = dir.join("nextpnr_ice40.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(&path, format!("not a nextpnr report ({e})")))?;
    rep.fmax_mhz = v["fmax"].as_object().and_then(|clocks| {
        clocks
            .values()
            .filter_map(|c| c["achieved"].as_f64())
            .min_by(|a, b| a.total_cmp(b))
    });
    rep.device = Some(ICE40_DEVICE.into());
    rep.pnr_seconds = Some(seconds);
    rep.place_and_route = match rep.fmax_mhz {
        Some(f) if f < manifest.clock_mhz => format!(
            "placed and routed on an {ICE40_DEVICE} by nextpnr-ice40; it reaches {f:.1} MHz, \
             below the {} MHz constraint",
            manifest.clock_mhz
        ),
        _ => format!("placed and routed on an {ICE40_DEVICE} by nextpnr-ice40"),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound lies above every Yosys peak measured here (estimated LUTs, MB), and refuses the
    /// fully parallel perceptron Yosys ran out of memory on, under the default limit of a
    /// 24 GB machine (docs/hardware.md).
    #[test]
    fn the_yosys_memory_bound_covers_what_was_measured() {
        for (luts, mb) in [
            (22805, 1039),
            (10903, 591),
            (3178, 809),
            (8854, 707),
            (346, 138),
        ] {
            assert!(yosys_memory_bound(luts) > mb * 1_000_000, "{luts} LUTs");
        }
        assert!(yosys_memory_bound(1_592_561) > 24_000_000_000 / 4 * 3);
    }
}
