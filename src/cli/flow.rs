//! `cbnn flow`: every stage from a dataset to a verified, synthesized compact accelerator,
//! with a report.
//!
//! Each stage is one `cbnn` command line, run in-process, whose outputs are files under the
//! run directory (each written atomically by the command). After a stage succeeds, a record
//! `RUN_DIR/stages/NAME.json` keeps its command line and a key: a hash of that command line,
//! of the tool's version and hardware cores, and of the bytes of every file the stage reads.
//! A stage whose record matches and whose outputs exist is skipped, so a second run reuses
//! everything and an interrupted run resumes at the stage that was running (it has no
//! record yet). The report is rebuilt from the stages' JSON outputs every time.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use serde::{Deserialize, Serialize};

use super::{commands, Cli, FlowArgs, SynthTarget};
use crate::error::{Error, Result};
use crate::util::atomic;
use crate::util::hash::{fnv, FNV_START};

/// A stage: its name, its command line (without `cbnn`), what it reads and writes.
pub(super) struct Stage {
    pub(super) name: &'static str,
    pub(super) argv: Vec<String>,
    pub(super) inputs: Vec<PathBuf>,
    pub(super) outputs: Vec<PathBuf>,
}

/// What `RUN_DIR/stages/NAME.json` keeps.
#[derive(Serialize, Deserialize)]
struct Record {
    name: String,
    command: String,
    key: String,
    seconds: f64,
}

/// `RUN_DIR/run-log.json`: how the last run went (the report holds only results, so that it
/// does not depend on timings or on whether a run was resumed).
#[derive(Serialize)]
struct RunLog {
    /// Wall-clock seconds of the whole run.
    seconds: f64,
    /// Every stage.
    stages: Vec<StageLog>,
}

/// One stage of a run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StageLog {
    /// Stage name.
    pub name: String,
    /// Its command line.
    pub command: String,
    /// Whether this run reused it.
    pub reused: bool,
    /// Seconds it took when it ran.
    pub seconds: f64,
}

fn stage_key(st: &Stage) -> Result<String> {
    let mut h = fnv(FNV_START, env!("CARGO_PKG_VERSION").as_bytes());
    for (name, text) in crate::rtlgen::CORES {
        h = fnv(fnv(h, name.as_bytes()), text.as_bytes());
    }
    h = fnv(h, crate::cosim::HARNESS.as_bytes());
    for a in &st.argv {
        h = fnv(fnv(h, a.as_bytes()), &[0]);
    }
    for p in &st.inputs {
        let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
        h = fnv(h, &bytes);
    }
    Ok(format!("{h:016x}"))
}

fn command_line(argv: &[String]) -> String {
    let quote = |a: &String| {
        if a.contains([' ', ';', '\'']) {
            format!("'{a}'")
        } else {
            a.clone()
        }
    };
    std::iter::once("cbnn".to_string())
        .chain(argv.iter().map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn run_stage(run: &Path, st: &Stage) -> Result<StageLog> {
    let rec_path = run.join("stages").join(format!("{}.json", st.name));
    let key = stage_key(st)?;
    let command = command_line(&st.argv);
    if let Ok(text) = std::fs::read_to_string(&rec_path) {
        if let Ok(rec) = serde_json::from_str::<Record>(&text) {
            if rec.key == key && st.outputs.iter().all(|p| p.exists()) {
                errln!("[{}] reused: finished before with the same inputs", st.name);
                return Ok(StageLog {
                    name: st.name.into(),
                    command,
                    reused: true,
                    seconds: rec.seconds,
                });
            }
        }
    }
    let _ = std::fs::remove_file(&rec_path);
    errln!("[{}] {command}", st.name);
    let start = Instant::now();
    let cli = Cli::try_parse_from(std::iter::once("cbnn".to_string()).chain(st.argv.clone()))
        .map_err(|e| Error::usage(format!("flow stage {}: {e}", st.name)))?;
    commands::dispatch(cli.command)?;
    let seconds = start.elapsed().as_secs_f64();
    atomic::write_json(
        &rec_path,
        &Record {
            name: st.name.into(),
            command: command.clone(),
            key,
            seconds,
        },
    )?;
    Ok(StageLog {
        name: st.name.into(),
        command,
        reused: false,
        seconds,
    })
}

pub(super) fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Holds the run directory for this process: a second flow on the same directory is refused
/// (naming the process that holds it) instead of corrupting this one. The lock is released
/// when the process ends, however it ends.
fn lock_run_dir(run: &Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = run.join("stages").join("flow.lock");
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        if !meta.is_file() {
            return Err(Error::usage(format!(
                "{}: exists and is {}; it is cbnn's lock file",
                path.display(),
                crate::util::output::describe(&meta)
            )));
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(Error::usage(format!(
            "{}: another cbnn flow (process {}) is running in this directory; wait for it or \
             give another directory",
            run.display(),
            holder.trim()
        )));
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    Ok(file)
}

/// Runs the flow.
pub fn flow(a: FlowArgs) -> Result<()> {
    let run = a.output.clone();
    std::fs::create_dir_all(run.join("stages")).map_err(|e| Error::io(&run, e))?;
    let _lock = lock_run_dir(&run)?;
    atomic::remove_stale_in(&run);
    atomic::remove_stale_in(&run.join("stages"));
    let cycles = a.target_cycles.unwrap_or(if a.quick { 2048 } else { 256 });
    let target = match a.synth_target {
        SynthTarget::Xilinx => "xilinx",
        SynthTarget::Ice40 => "ice40",
        SynthTarget::Generic => "generic",
    };
    let mut data = vec!["--dataset".to_string(), a.data.dataset.clone()];
    let validation: Vec<String> = a
        .validation
        .map(|v| vec!["--validation".to_string(), v.to_string()])
        .unwrap_or_default();
    let hidden = a
        .hidden
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if let Some(d) = &a.data.data_dir {
        data.extend(["--data-dir".to_string(), s(d)]);
    }
    let f = |name: &str| run.join(name);
    let args = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let with_data = |mut v: Vec<String>| {
        v.extend(data.iter().cloned());
        v
    };
    let seed = a.seed.to_string();
    let (base, compact) = (f("base.json"), f("compact.json"));

    let mut train = with_data(args(&[
        "train",
        "-o",
        &s(&base),
        "--json",
        &s(&f("train.json")),
        "--seed",
        &seed,
        "--hidden",
        &hidden,
    ]));
    let mut sens = with_data(args(&[
        "sensitivity",
        &s(&base),
        "--json",
        &s(&f("sensitivity.json")),
        "--plot",
        &s(&f("sensitivity.svg")),
    ]));
    let max_drop = a.max_drop.to_string();
    let mut prune = with_data(args(&[
        "prune",
        &s(&base),
        "--max-drop",
        &max_drop,
        "-o",
        &s(&compact),
        "--report",
        &s(&f("prune.json")),
    ]));
    for stage in [&mut train, &mut sens, &mut prune] {
        stage.extend(validation.iter().cloned());
    }
    let count = if a.quick { "500" } else { "10000" };
    if a.quick {
        train.extend(args(&["--epochs", "6", "--limit", "12000"]));
        sens.extend(args(&["--seeds", "2"]));
        prune.extend(args(&["--epochs", "6", "--limit", "12000"]));
    }
    // The dataset's files are inputs of every stage that reads images: a changed dataset is
    // never answered with a stale model or result.
    let dataset_dir = crate::data::resolve::resolve(&a.data.dataset, a.data.data_dir.as_deref())?;
    let mut dataset: Vec<PathBuf> = std::fs::read_dir(&dataset_dir)
        .map_err(|e| Error::io(&dataset_dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with("train-") || n.starts_with("t10k-")
                })
        })
        .collect();
    dataset.sort();
    let with = |mut v: Vec<PathBuf>| {
        v.extend(dataset.iter().cloned());
        v
    };
    let mut stages = vec![
        Stage {
            name: "train",
            argv: train,
            inputs: with(vec![]),
            outputs: vec![base.clone(), f("train.json")],
        },
        Stage {
            name: "sensitivity",
            argv: sens,
            inputs: with(vec![base.clone()]),
            outputs: vec![f("sensitivity.json"), f("sensitivity.svg")],
        },
        Stage {
            name: "prune",
            argv: prune,
            inputs: with(vec![base.clone()]),
            outputs: vec![compact.clone(), f("prune.json")],
        },
    ];
    let cyc = cycles.to_string();
    // Per accelerator: generate, co-simulate, synthesize.
    for (label, model) in [("baseline", &base), ("compact", &compact)] {
        let dir = f(&format!("rtl-{label}"));
        let design = vec![dir.join("design.json"), dir.join("model.json")];
        let (sim_json, synth_json) = (
            f(&format!("sim-{label}.json")),
            f(&format!("synth-{label}.json")),
        );
        let names: [&'static str; 3] = if label == "baseline" {
            ["rtl-baseline", "sim-baseline", "synth-baseline"]
        } else {
            ["rtl-compact", "sim-compact", "synth-compact"]
        };
        stages.push(Stage {
            name: names[0],
            argv: args(&[
                "rtl",
                &s(model),
                "-o",
                &s(&dir),
                "--fold",
                "auto",
                "--target-cycles",
                &cyc,
            ]),
            inputs: vec![model.to_path_buf()],
            outputs: vec![dir.join("design.json"), dir.join("estimate.json")],
        });
        stages.push(Stage {
            name: names[1],
            argv: with_data(args(&[
                "sim",
                &s(&dir),
                "--count",
                count,
                "--stall-seed",
                "1",
                "--json",
                &s(&sim_json),
            ])),
            inputs: with(design.clone()),
            outputs: vec![sim_json],
        });
        stages.push(Stage {
            name: names[2],
            argv: args(&[
                "synth",
                &s(&dir),
                "--target",
                target,
                "--json",
                &s(&synth_json),
            ]),
            inputs: design,
            outputs: vec![synth_json],
        });
    }
    let mut logs = Vec::new();
    let start = Instant::now();
    for st in &stages {
        logs.push(run_stage(&run, st)?);
    }
    let rep = super::report::build(&run, &a, cycles, target, &logs)?;
    super::report::write(&run, &rep)?;
    crate::util::atomic::write_json(
        &run.join("run-log.json"),
        &RunLog {
            seconds: start.elapsed().as_secs_f64(),
            stages: logs,
        },
    )?;
    errln!(
        "flow finished in {:.0} s: {} and {}",
        start.elapsed().as_secs_f64(),
        s(&f("report.md")),
        s(&f("report.json"))
    );
    Ok(())
}
