//! `cbnn sim`: co-simulation of a generated design in Verilator against the reference model.
//!
//! The design is compiled once with Verilator together with `sim/harness.cpp` into a small
//! executable, cached by a hash of its HDL and harness (memory images are read at run time, so
//! retrained weights reuse the build). The harness plays the input beats and the stall schedule
//! of [`Schedule`] and logs every output handshake and each image's first input handshake;
//! every logged beat and its cycle must equal the reference executor's class and scores and the
//! cycle model's prediction, and so must the cycle each image's first beat was taken in (an
//! image's latency counts from it).

pub mod testbench;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::bitslice;
use crate::data::Images;
use crate::error::{Error, Result};
use crate::model::IntModel;
use crate::plan::OutputPacking;
use crate::reference::cycle::{self, Timing};
use crate::reference::schedule::Schedule;
use crate::reference::Executor;
use crate::util::hash::{fnv, FNV_START};

/// The C++ harness, the same for every design.
pub const HARNESS: &str = include_str!("../../sim/harness.cpp");

/// What a simulation run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimReport {
    /// Images simulated.
    pub images: usize,
    /// Stall seed, if any.
    pub stall_seed: Option<u64>,
    /// Output beats that matched the reference model and the cycle model (all of them, or the
    /// run fails).
    pub matched: usize,
    /// Cycles simulated.
    pub cycles: u64,
    /// Images whose simulated class equals the label.
    pub correct: usize,
    /// `correct / images`.
    pub accuracy: f64,
    /// Seconds spent in the simulator.
    pub sim_seconds: f64,
    /// Simulated images per second.
    pub images_per_second: f64,
    /// Simulated cycles per second.
    pub cycles_per_second: f64,
    /// Seconds spent building (0 when the cached build was reused).
    pub build_seconds: f64,
    /// Free-running: the cycles between the last two output handshakes (the design's
    /// initiation interval once the pipeline is full); `None` under stalls or for one image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_interval: Option<u64>,
    /// The first image's latency free-running, from the handshake of its first input beat to
    /// its output handshake (design.json's `latency`): of this run when it is free-running
    /// (`None` under stalls), and `cbnn sim` measures it on eight images more when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_latency: Option<u64>,
}

/// The version of the Verilator on `PATH`, or a usage error saying what to install.
pub fn verilator_version() -> Result<String> {
    let missing = || {
        Error::usage(
            "Verilator is not installed: install it with `apt-get install -y verilator` (version 5.006 or newer)",
        )
    };
    let out = Command::new("verilator")
        .arg("--version")
        .output()
        .map_err(|_| missing())?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let version = text
        .split_whitespace()
        .nth(1)
        .ok_or_else(missing)?
        .to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (5, 6) {
        return Err(Error::usage(format!(
            "Verilator {version} is too old: install 5.006 or newer (`apt-get install -y verilator`)"
        )));
    }
    Ok(version)
}

fn cache_root() -> PathBuf {
    crate::data::resolve::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("verilator")
}

/// What a simulator is built with: the C++ optimization level and, for runs that dump a VCD,
/// tracing. Tracing costs time on every cycle, so it is compiled in only when asked for; `-O2`
/// simulated a conv design 1.7 times as fast as `-O1` with tracing (docs/benchmarks.md).
fn build_flags(trace: bool) -> Vec<&'static str> {
    let mut v = vec!["-CFLAGS", "-O2", "-MAKEFLAGS", "OPT_FAST=-O2"];
    if trace {
        v.push("--trace");
    }
    v
}

/// The most memory a Verilator 5.006 build of a design is expected to take in one process
/// (Verilator itself or the compiler): 1 GiB and 80 KiB per bit its layers count a cycle
/// ([`datapath_bits`]: Verilator flattens every XNOR and popcount tree into the generated
/// C++, and both it and the compiler grow with them, whether the weights are constants of a
/// fully parallel layer or words of a memory). Designs of 4224 to 65664 such bits measured
/// about 66 KB a bit (docs/hardware.md).
pub fn verilator_memory_bound(datapath_bits: u64) -> u64 {
    (1 << 30) + datapath_bits * (80 << 10)
}

/// Bits the design's layers count a cycle: the sum of their `PE x SIMD`.
pub fn datapath_bits(manifest: &crate::rtlgen::Manifest) -> u64 {
    manifest.layers.iter().map(|l| (l.pe * l.simd) as u64).sum()
}

/// Builds (or finds in the cache) the simulator of the design in `dir`, with VCD tracing when
/// `trace`. Returns the executable and the seconds spent building.
pub fn build(dir: &Path, files: &[String], trace: bool) -> Result<(PathBuf, f64)> {
    build_within(dir, files, trace, None, || {})
}

/// [`build`], refusing before Verilator starts a design of `datapath_bits` ([`datapath_bits`])
/// whose [`verilator_memory_bound`] exceeds the memory cbnn lets tools use
/// ([`crate::util::process::memory_budget`], which also limits the build itself). A cached
/// build is used whatever the prediction; `starting` is called when a build starts.
pub fn build_within(
    dir: &Path,
    files: &[String],
    trace: bool,
    datapath_bits: Option<u64>,
    starting: impl FnOnce(),
) -> Result<(PathBuf, f64)> {
    let version = verilator_version()?;
    let mut h = fnv(FNV_START, version.as_bytes());
    h = fnv(h, HARNESS.as_bytes());
    for flag in build_flags(trace) {
        h = fnv(h, flag.as_bytes());
    }
    // The sources' bytes: what is hashed is what is built (from copies in the build
    // directory, whose path is cbnn's own: Verilator's makefiles break on a design directory
    // whose path holds `$`, a space or a newline).
    let mut sources = Vec::new();
    for f in files {
        let path = dir.join(f);
        if Path::new(f).file_name().is_none_or(|n| n != f.as_str()) {
            return Err(Error::bad_file(
                &path,
                "is not a file name inside the design directory",
            ));
        }
        let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        h = fnv(fnv(h, f.as_bytes()), &text);
        sources.push((f.as_str(), text));
    }
    let root = cache_root().join(format!("{h:016x}"));
    let exe = root.join("Vsim");
    if exe.is_file() {
        return Ok((exe, 0.0));
    }
    let budget = crate::util::process::memory_budget()?;
    if let Some(bits) = datapath_bits {
        crate::util::process::check_predicted(
            dir,
            "simulate",
            &format!(
                "for the {bits} bits its layers count a cycle (PE x SIMD) Verilator is expected to \
                 need"
            ),
            "1 GiB and 80 KiB a bit",
            verilator_memory_bound(bits),
            budget,
        )?;
    }
    // One build of a design at a time, whoever asks (a thread of this process or another
    // process): the others wait here, then find the finished simulator.
    let _held = lock_build(&root)?;
    if exe.is_file() {
        return Ok((exe, 0.0));
    }
    starting();
    let start = Instant::now();
    remove_stale_builds(&cache_root());
    // A build directory of this build's own (process and a counter of this process's), so
    // that nothing else ever writes into it or removes it.
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let work = root.with_extension(format!("tmp-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    let harness = work.join("harness.cpp");
    std::fs::write(&harness, HARNESS).map_err(|e| Error::io(&harness, e))?;
    let src = work.join("src");
    let copied = std::fs::create_dir(&src)
        .and_then(|()| {
            sources
                .iter()
                .map(|(name, text)| std::fs::write(src.join(name), text).map(|()| src.join(name)))
                .collect::<std::io::Result<Vec<PathBuf>>>()
        })
        .map_err(|e| Error::io(&src, e));
    let built = copied.and_then(|paths| build_in(dir, &work, &paths, &harness, trace, budget));
    if built.is_err() {
        let _ = std::fs::remove_dir_all(&work);
    }
    built.map_err(|e| match e {
        Error::CheckFailed(msg) => Error::CheckFailed(format!(
            "Verilator could not build {}: {msg}",
            dir.display()
        )),
        e => e,
    })?;
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&work, &root).map_err(|e| Error::io(&root, e))?;
    Ok((exe, start.elapsed().as_secs_f64()))
}

/// Holds the build of the simulator at `root` for this caller until dropped: an exclusive
/// lock on `root.lock` (a lock of the open file, so it keeps out the threads of this process
/// as well as other processes, and goes when the process ends, however it ends).
fn lock_build(root: &Path) -> Result<std::fs::File> {
    let path = root.with_extension("lock");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    file.lock().map_err(|e| Error::io(&path, e))?;
    Ok(file)
}

/// Removes the build directories (`HASH.tmp-PID-N`) of builds whose process is gone.
fn remove_stale_builds(cache: &Path) {
    crate::util::scratch::remove_dead_dirs(cache, build_owner);
}

/// The process id in the name of a build directory (`HASH.tmp-PID-N`), if the name is one.
fn build_owner(name: &str) -> Option<&str> {
    let (hash, rest) = name.split_once(".tmp-")?;
    let (pid, counter) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let hex = !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_hexdigit());
    (hex && digits(pid) && digits(counter)).then_some(pid)
}

/// Runs Verilator in `work` (guarded: a killed cbnn leaves no compiler behind).
/// Verilator and the compiler it starts may each use `budget` bytes (a build that runs out
/// of them is one sentence about the design in `dir`).
fn build_in(
    dir: &Path,
    work: &Path,
    sources: &[PathBuf],
    harness: &Path,
    trace: bool,
    budget: Option<u64>,
) -> Result<()> {
    let mut cmd = Command::new("verilator");
    cmd.args(["--cc", "--exe", "--build", "-j", "2", "-Wno-fatal"])
        .args(["--top-module", crate::rtlgen::TOP, "-o", "Vsim", "--Mdir"])
        .arg(work.join("obj"))
        .args(build_flags(trace))
        .args(sources)
        .arg(harness);
    if let Some(bytes) = budget {
        crate::util::process::limit_memory(&mut cmd, bytes);
    }
    let out = crate::util::process::output(&mut cmd, Some(work))
        .map_err(|e| Error::io("verilator", e))?;
    if !out.status.success() {
        // Messages name the design's files, not the copies built.
        let copies = format!("{}/", work.join("src").display());
        let log =
            String::from_utf8_lossy(&out.stderr).replace(&copies, &format!("{}/", dir.display()));
        if let Some(bytes) =
            budget.filter(|_| crate::util::process::out_of_memory(&log, &out.status))
        {
            return Err(crate::util::process::ran_out("verilator", bytes, dir, None));
        }
        let first: Vec<&str> = log.lines().filter(|l| l.contains("rror")).take(5).collect();
        return Err(Error::CheckFailed(if first.is_empty() {
            log.lines().last().unwrap_or("").to_string()
        } else {
            first.join(" | ")
        }));
    }
    let built = work.join("obj").join("Vsim");
    std::fs::copy(&built, work.join("Vsim")).map_err(|e| Error::io(&built, e))?;
    let _ = std::fs::remove_dir_all(work.join("obj"));
    let _ = std::fs::remove_dir_all(work.join("src"));
    Ok(())
}

/// The `m_axis_tdata` words of an output beat.
pub fn pack_output(out: &OutputPacking, class: usize, scores: &[u32]) -> Vec<u32> {
    let mut words = vec![0u32; out.width.div_ceil(32)];
    let mut put = |lsb: usize, width: usize, value: u64| {
        for b in 0..width {
            if (value >> b) & 1 == 1 {
                let bit = lsb + b;
                words[bit / 32] |= 1 << (bit % 32);
            }
        }
    };
    put(0, out.class_bits, class as u64);
    for (c, &s) in scores.iter().enumerate() {
        put(
            out.scores_lsb + c * out.score_bits,
            out.score_bits,
            s as u64,
        );
    }
    words
}

/// Everything a run needs besides the built simulator.
pub struct Job<'a> {
    /// The design directory (memory images are read from it).
    pub dir: &'a Path,
    /// The model the design was generated from.
    pub model: &'a IntModel,
    /// Its timing.
    pub timing: &'a Timing,
    /// Output packing.
    pub output: &'a OutputPacking,
    /// Bits per input beat.
    pub bits_per_beat: usize,
    /// Logic-mapped designs: the features the port carries (design.json's `input.reads`).
    pub reads: Option<&'a [u32]>,
    /// Images and their labels.
    pub images: &'a Images,
    /// Labels.
    pub labels: &'a [u8],
    /// Stall schedule.
    pub schedule: Schedule,
    /// Waveform output.
    pub vcd: Option<&'a Path>,
}

/// What a raw run feeds the simulator.
pub struct Stimulus<'a> {
    /// Working directory of the run (memory images are read from it).
    pub dir: &'a Path,
    /// Images.
    pub images: usize,
    /// Output beats to wait for: one per image for a design (a core alone may hand on
    /// several per image, a sliding-window unit one per window).
    pub outputs: usize,
    /// Input beats per image.
    pub beats: usize,
    /// 32-bit words per input beat.
    pub in_words: usize,
    /// 32-bit words per output beat.
    pub out_words: usize,
    /// `images * beats * in_words` words, least significant word of a beat first.
    pub data: &'a [u32],
    /// Valid/ready schedule.
    pub schedule: Schedule,
    /// Give up after this many cycles.
    pub max_cycles: u64,
    /// Waveform output.
    pub vcd: Option<&'a Path>,
}

/// What the simulator logged.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Every output handshake: its cycle and the beat's words.
    pub outputs: Vec<(u64, Vec<u32>)>,
    /// The cycle of each image's first input handshake (of every `beats` input beats, the
    /// first).
    pub first_inputs: Vec<u64>,
    /// Cycles simulated.
    pub cycles: u64,
    /// The run hit `max_cycles` before every output came.
    pub timed_out: bool,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
}

/// Runs a built simulator on raw input words and returns its log.
pub fn simulate(exe: &Path, st: &Stimulus) -> Result<Trace> {
    let mut bin: Vec<u8> = Vec::with_capacity(24 + 4 * st.data.len());
    for v in [
        0x4E4E_4243u32,
        st.images as u32,
        st.beats as u32,
        st.in_words as u32,
        st.out_words as u32,
        st.outputs as u32,
    ] {
        bin.extend_from_slice(&v.to_le_bytes());
    }
    for w in st.data {
        bin.extend_from_slice(&w.to_le_bytes());
    }
    // A directory of this run's own: two runs of one design at once never share it.
    let tmp = crate::util::scratch::Scratch::new("sim")?;
    simulate_in(tmp.path(), exe, st, &bin)
}

fn simulate_in(tmp: &Path, exe: &Path, st: &Stimulus, bin: &[u8]) -> Result<Trace> {
    let input = tmp.join("input.bin");
    let output = tmp.join("output.txt");
    std::fs::File::create(&input)
        .and_then(|mut f| f.write_all(bin))
        .map_err(|e| Error::io(&input, e))?;
    let mut cmd = Command::new(exe);
    cmd.current_dir(st.dir)
        .arg(&input)
        .arg(&output)
        .arg(
            st.schedule
                .stall_seed
                .map_or("free".to_string(), |s| s.to_string()),
        )
        .arg(st.max_cycles.to_string());
    if let Some(v) = st.vcd {
        let abs = if v.is_absolute() {
            v.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| Error::io(".", e))?
                .join(v)
        };
        cmd.arg(abs);
    }
    let start = Instant::now();
    let status = run_with_progress(cmd, &output, st.images)?;
    let seconds = start.elapsed().as_secs_f64();
    if !status.status.success() {
        return Err(Error::CheckFailed(format!(
            "the simulator failed: {}",
            String::from_utf8_lossy(&status.stderr).trim()
        )));
    }
    let text = std::fs::read_to_string(&output).map_err(|e| Error::io(&output, e))?;
    let mut trace = Trace {
        seconds,
        ..Trace::default()
    };
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        match parts.next() {
            Some("o") => {
                let cycle: u64 = parts
                    .next()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(u64::MAX);
                let words = parts
                    .filter_map(|w| u32::from_str_radix(w, 16).ok())
                    .collect();
                trace.outputs.push((cycle, words));
            }
            Some("i") => trace.first_inputs.push(
                parts
                    .next()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(u64::MAX),
            ),
            Some("end") => trace.cycles = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0),
            Some("timeout") => trace.timed_out = true,
            _ => {}
        }
    }
    Ok(trace)
}

/// Runs the simulator, showing how many output beats it has logged so far: a bar on a terminal,
/// a line each tenth of the images otherwise (a long run logged to a file shows it is alive).
fn run_with_progress(mut cmd: Command, log: &Path, images: usize) -> Result<std::process::Output> {
    let exe = PathBuf::from(cmd.get_program());
    let mut guarded = crate::util::process::spawn(
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped()),
    )
    .map_err(|e| Error::io(&exe, e))?;
    let stderr = guarded.child.stderr.take();
    let pb = crate::util::progress::bar(images as u64, "simulate");
    let done = std::sync::atomic::AtomicBool::new(false);
    let start = Instant::now();
    let output = std::thread::scope(|scope| {
        let poller = scope.spawn(|| {
            let mut lines = crate::util::progress::Milestones::new("simulate", images as u64);
            // A terminal's bar wants frequent updates, a line per tenth does not; the end of the
            // run wakes the loop at once.
            let every = std::time::Duration::from_millis(if pb.is_hidden() { 2000 } else { 250 });
            loop {
                // Waiting first keeps a run of a few seconds silent when there is no bar.
                std::thread::park_timeout(every);
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                if let Ok(text) = std::fs::read(log) {
                    let beats = text.iter().filter(|&&b| b == b'o').count() as u64;
                    if !pb.is_hidden() {
                        pb.set_position(beats);
                    } else if let Some(line) = lines.update(beats, start.elapsed()) {
                        crate::util::progress::stderr_line(format_args!("{line}"));
                    }
                }
            }
        });
        let mut text = Vec::new();
        if let Some(mut e) = stderr {
            let _ = std::io::Read::read_to_end(&mut e, &mut text);
        }
        let out = guarded.child.wait().map(|status| std::process::Output {
            status,
            stdout: Vec::new(),
            stderr: text,
        });
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        poller.thread().unpark();
        out
    });
    pb.finish_and_clear();
    output.map_err(|e| Error::io(&exe, e))
}

/// The input words of `images`: each image's features cut into beats of `bits_per_beat` bits,
/// or, for a logic-mapped design, the features `reads` lists cut so (the last beat of an image
/// zero-padded).
pub fn input_words(
    model: &IntModel,
    images: &Images,
    beats: usize,
    bits_per_beat: usize,
    reads: Option<&[u32]>,
) -> Vec<u32> {
    let features = bitslice::slice(images, &model.planes);
    let in_words = bits_per_beat.div_ceil(32);
    let mut data = Vec::with_capacity(images.count() * beats * in_words);
    for i in 0..images.count() {
        let row = features.row(i);
        for b in 0..beats {
            let mut words = vec![0u32; in_words];
            for j in 0..bits_per_beat {
                let at = b * bits_per_beat + j;
                // A logic-mapped port carries the features `reads` lists, zero-padded.
                let f = match reads {
                    Some(r) => r.get(at).map_or(usize::MAX, |&x| x as usize),
                    None => at,
                };
                if f < features.features && bitslice::get(row, f) {
                    words[j / 32] |= 1 << (j % 32);
                }
            }
            data.extend(words);
        }
    }
    data
}

/// The class and scores the reference executor gives each of the job's images: what every
/// output beat must carry.
pub fn expected_outputs(job: &Job) -> Vec<crate::reference::Prediction> {
    let features = bitslice::slice(job.images, &job.model.planes);
    let exec = Executor::new(job.model);
    (0..job.images.count())
        .map(|i| exec.predict(features.row(i)))
        .collect()
}

/// The cycle after which a run of `images` images under `schedule` counts as hung: the
/// free-running run's length, four times that with stalls (random stalls let the source offer
/// and the sink take in about three cycles of four, so even a design bound by both runs well
/// inside it), plus ten times the first output's cycle and a thousand cycles.
pub fn timeout_cycles(timing: &Timing, images: usize, schedule: Schedule) -> u64 {
    let free = cycle::free_running(timing);
    let first = free.first_output;
    let free_end = first + free.interval * (images.max(1) as u64 - 1);
    let factor = if schedule.stall_seed.is_some() { 4 } else { 1 };
    free_end * factor + 10 * first + 1000
}

/// Runs the simulation and compares every output beat and cycle. A mismatch is a
/// [`Error::CheckFailed`] naming the image, the expected and the actual beat and cycle.
pub fn run(exe: &Path, job: &Job) -> Result<SimReport> {
    let model = job.model;
    let n = job.images.count();
    let predictions = expected_outputs(job);
    let data = input_words(
        model,
        job.images,
        job.timing.beats,
        job.bits_per_beat,
        job.reads,
    );
    // The cycle model steps the whole run cycle by cycle, which costs about as much as the
    // simulator on a convolutional design: it runs beside the simulator, which therefore gets
    // a bound on the run's length from the free-running timing instead of from the model's
    // last cycle.
    let max_cycles = timeout_cycles(job.timing, n, job.schedule);
    let (expected, trace) = std::thread::scope(|scope| {
        let model = scope.spawn(|| {
            cycle::handshakes(job.timing, n, job.schedule, u64::MAX)
                .expect("the cycle model of a valid design always finishes")
        });
        let trace = simulate(
            exe,
            &Stimulus {
                dir: job.dir,
                images: n,
                outputs: n,
                beats: job.timing.beats,
                in_words: job.bits_per_beat.div_ceil(32),
                out_words: job.output.width.div_ceil(32),
                data: &data,
                schedule: job.schedule,
                max_cycles,
                vcd: job.vcd,
            },
        );
        (model.join().expect("the cycle model does not panic"), trace)
    });
    let trace = trace?;
    let expected_cycles = &expected.outputs;
    // Each image's first input beat is taken when the cycle model says (the harness logs it
    // before the output it leads to, so a run stopped early has at least as many).
    for (i, (&got, &want)) in trace
        .first_inputs
        .iter()
        .zip(&expected.first_inputs)
        .enumerate()
    {
        if got != want {
            return Err(Error::CheckFailed(format!(
                "mismatch at image {i}: the cycle model expects its first input beat to be taken \
                 at cycle {want}, the design took it at cycle {got}"
            )));
        }
    }
    let mut correct = 0;
    for (i, (cycle, words)) in trace.outputs.iter().enumerate() {
        if i >= n {
            return Err(Error::CheckFailed(format!(
                "the design produced more than {n} outputs"
            )));
        }
        let p = &predictions[i];
        let want = pack_output(job.output, p.class, &p.scores);
        if *words != want || *cycle != expected_cycles[i] {
            return Err(Error::CheckFailed(mismatch(
                i,
                &want,
                expected_cycles[i],
                words,
                *cycle,
                job.output,
            )));
        }
        correct += usize::from(p.class == job.labels[i] as usize);
    }
    let matched = trace.outputs.len();
    if trace.timed_out {
        return Err(Error::CheckFailed(format!(
            "simulation timed out: {matched} of {n} outputs after {max_cycles} cycles (the cycle model expects image {matched} at cycle {})",
            expected_cycles.get(matched).copied().unwrap_or(0)
        )));
    }
    if matched != n {
        return Err(Error::CheckFailed(format!(
            "the design produced {matched} of {n} outputs"
        )));
    }
    if trace.first_inputs.len() != n {
        return Err(Error::CheckFailed(format!(
            "the simulator logged the first input beat of {} of {n} images",
            trace.first_inputs.len()
        )));
    }
    Ok(SimReport {
        images: n,
        stall_seed: job.schedule.stall_seed,
        matched,
        cycles: trace.cycles,
        correct,
        accuracy: correct as f64 / n.max(1) as f64,
        sim_seconds: trace.seconds,
        images_per_second: n as f64 / trace.seconds.max(1e-9),
        cycles_per_second: trace.cycles as f64 / trace.seconds.max(1e-9),
        build_seconds: 0.0,
        measured_interval: match (job.schedule.stall_seed, trace.outputs.as_slice()) {
            (None, [.., (a, _), (b, _)]) => Some(b - a),
            _ => None,
        },
        measured_latency: match (job.schedule.stall_seed, trace.first_inputs.first()) {
            (None, Some(&first)) => Some(trace.outputs[0].0 - first),
            _ => None,
        },
    })
}

fn unpack(words: &[u32], out: &OutputPacking) -> (u64, Vec<u64>) {
    let get = |lsb: usize, width: usize| -> u64 {
        (0..width).fold(0, |v, b| {
            let bit = lsb + b;
            let set = words
                .get(bit / 32)
                .is_some_and(|w| (w >> (bit % 32)) & 1 == 1);
            v | (u64::from(set) << b)
        })
    };
    let class = get(0, out.class_bits);
    let scores = (0..out.classes)
        .map(|c| get(out.scores_lsb + c * out.score_bits, out.score_bits))
        .collect();
    (class, scores)
}

fn mismatch(
    image: usize,
    want: &[u32],
    want_cycle: u64,
    got: &[u32],
    got_cycle: u64,
    out: &OutputPacking,
) -> String {
    let (wc, ws) = unpack(want, out);
    let (gc, gs) = unpack(got, out);
    format!(
        "mismatch at image {image}: expected class {wc} scores {ws:?} at cycle {want_cycle}, the design gave class {gc} scores {gs:?} at cycle {got_cycle}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_build_directories_of_the_exact_form_name_their_process() {
        assert_eq!(build_owner("004398eb8fc9a9a0.tmp-123-0"), Some("123"));
        for other in [
            "004398eb8fc9a9a0",
            "004398eb8fc9a9a0.lock",
            "004398eb8fc9a9a0.tmp-123",
            "004398eb8fc9a9a0.tmp-x-0",
            ".tmp-123-0",
            "mine.tmp-123-0",
            "004398eb8fc9a9a0.tmp-123-0-1",
        ] {
            assert_eq!(build_owner(other), None, "{other}");
        }
    }

    #[test]
    fn the_verilator_memory_bound_covers_what_was_measured() {
        // Bits counted a cycle, the largest process's resident peak in KiB (docs/hardware.md).
        for (bits, kib) in [
            (4224, 271_812),
            (9344, 578_968),
            (16512, 1_068_832),
            (36992, 2_426_436),
            (65664, 4_547_620),
            (1101, 361_188),
            (2471, 263_732),
            (39222, 2_608_960),
        ] {
            assert!(verilator_memory_bound(bits) > kib << 10, "{bits} bits");
        }
        // A fully parallel first layer of the MNIST perceptron (6272 x 256) is refused on this
        // machine's 24 GB.
        assert!(verilator_memory_bound(6272 * 256) > 24_000_000_000);
    }
}
