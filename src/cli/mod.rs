//! The command line: flags parsed by clap, validated into library calls, results printed.
//!
//! Everything here is presentation; the work happens in the library modules.
#![allow(missing_docs)] // clap turns doc comments into help text; fields are documented there.

/// `println!` that never panics (see [`out`]).
macro_rules! outln {
    () => { $crate::cli::out::line(format_args!("")) };
    ($($arg:tt)*) => { $crate::cli::out::line(format_args!($($arg)*)) };
}

mod commands;
pub mod out;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use commands::{describe, dispatch, flag, job, print, run};

/// Compact binary neural networks: bit-sliced images to verified hardware.
#[derive(Debug, Parser)]
#[command(name = "cbnn", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dataset commands: download, describe.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train a fully binary network (MLP or convnet) on bit planes and export its integer model.
    Train(TrainArgs),
    /// Evaluate an integer model with the reference model.
    Eval(EvalArgs),
    /// Measure what each kept bit plane is worth (post-training, no retraining).
    Sensitivity(SensitivityArgs),
    /// Search the smallest model within an accuracy budget: prune planes, shrink widths, retrain.
    Prune(PruneArgs),
    /// Retrain one candidate of a pruning search: a model's architecture (or the one given) on
    /// the planes given, with the model's own training settings and data split, as `cbnn prune`
    /// would (`prune --jobs N` runs its candidates this way).
    Retrain(RetrainArgs),
    /// Generate the Verilog accelerator of a model (top level, memory images, manifest,
    /// constraints, synthesis scripts).
    Rtl(RtlArgs),
    /// Co-simulate a generated design in Verilator against the reference and cycle models.
    Sim(SimArgs),
    /// Synthesize a generated design with Yosys (and nextpnr-ice40) and report its resources.
    Synth(SynthArgs),
    /// Write a design's self-checking testbench (DIR/testbench): real test images, their
    /// expected classes and scores and the predicted handshake cycles, for any Verilog
    /// simulator, and a cocotb test of the same checks.
    Testbench(TestbenchArgs),
    /// Export an integer model as an ONNX graph (QONNX or FINN-ONNX) that qonnx executes with
    /// cbnn's class scores.
    Export(ExportArgs),
    /// Import a binary QONNX network (as Brevitas exports it: BipolarQuant, MatMul or Gemm,
    /// BatchNormalization) as an integer model, lowered exactly.
    Import(ImportArgs),
    /// Everything in one go: train, sensitivity, prune, RTL for the baseline and the compact
    /// model, co-simulation, synthesis, and a report (RUN_DIR/report.md and report.json).
    /// Finished stages whose inputs are unchanged are reused, so an interrupted flow resumes.
    Flow(FlowArgs),
    /// Accelerators of several models under several foldings and synthesis targets, from a
    /// spec file (docs/sweep.md), with a report of every design point and the Pareto front of
    /// accuracy, LUTs and cycles per image (RUN_DIR/report.md, report.json, pareto.svg).
    /// Finished jobs are reused, so an interrupted sweep resumes.
    Sweep(SweepArgs),
    /// Inference speed of the full-precision network, the 8-plane baseline and the compact BNN side
    /// by side (1 thread and all, batch 1 and 1000), training and simulation speed, the ratios.
    Bench(BenchArgs),
}

/// `cbnn bench`
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The 8-plane baseline BNN [default: trained in --work with `cbnn train` defaults].
    #[arg(long, value_name = "MODEL.json")]
    pub baseline: Option<PathBuf>,
    /// The compact BNN [default: `cbnn prune` of the baseline with its defaults, in --work].
    #[arg(long, value_name = "MODEL.json")]
    pub compact: Option<PathBuf>,
    /// The full-precision network [default: `cbnn train --float` of the baseline's shape (a
    /// perceptron or a convnet), in --work].
    #[arg(long, value_name = "MODEL.json")]
    pub float: Option<PathBuf>,
    /// Where models that are not given are made (and found again by the next run), and the
    /// designs simulated.
    #[arg(long, value_name = "DIR", default_value = "bench-work")]
    pub work: PathBuf,
    /// Passes over the test set per engine and setting.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Batch sizes (images per call).
    #[arg(long, value_delimiter = ',', default_value = "1,1000")]
    pub batch: Vec<usize>,
    /// Training images for the training-speed epoch (0 skips it).
    #[arg(long, default_value_t = 10000, value_name = "N")]
    pub train_images: usize,
    /// Test images co-simulated in Verilator per design (0 skips simulation).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub sim_images: usize,
    /// Validation images (the last N of the training set) for the models made here and the
    /// training-speed epoch [default: a tenth of the training set, at most 5000].
    #[arg(long, value_name = "N")]
    pub validation: Option<usize>,
    /// Also write every number as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// `cbnn flow`
#[derive(Debug, Args)]
pub struct FlowArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Run directory: every stage's artifacts, the report and the stage records.
    #[arg(long, short = 'o', value_name = "RUN_DIR")]
    pub output: PathBuf,
    /// Reduced flow for a first look (about 4 minutes on 2 cores): 6 training epochs on 12000
    /// images, the same for every pruning candidate, 500 simulated images, a 2048-cycle
    /// folding (a convnet: 3 epochs on 6000 images, 100 simulated images, 128 cycles a pixel).
    #[arg(long)]
    pub quick: bool,
    /// Largest validation accuracy loss accepted by the pruning search, in percentage points.
    #[arg(long, default_value_t = 1.0, value_name = "PP")]
    pub max_drop: f64,
    /// Cycles per image both accelerators are folded for [default: 256, --quick: 2048; a
    /// convnet: 64 cycles a pixel of its images, --quick: 128].
    #[arg(long, value_name = "N")]
    pub target_cycles: Option<usize>,
    /// Synthesis target for both accelerators.
    #[arg(long, value_enum, default_value_t = SynthTarget::Xilinx)]
    pub synth_target: SynthTarget,
    /// Random seed for training and pruning.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Hidden layer widths of the baseline, input side first.
    #[arg(long, value_delimiter = ',', default_value = "256,256,256")]
    pub hidden: Vec<usize>,
    /// The baseline's hidden layers instead of --hidden, in `cbnn train --arch` notation
    /// (`conv` for the default convnet).
    #[arg(long, value_name = "SPEC", conflicts_with = "hidden")]
    pub arch: Option<String>,
    /// Validation images: the last N of the official training set (decisions use these)
    /// [default: a tenth of the training set, at most 5000].
    #[arg(long, value_name = "N")]
    pub validation: Option<usize>,
    /// Stages run at once, each as soon as the stages whose files it reads are done (the
    /// baseline's accelerator is built while the pruning search trains); 1 runs them one after
    /// another. The run's files and report are the same.
    #[arg(long, default_value_t = crate::flow::DEFAULT_FLOW_JOBS, value_name = "N")]
    pub jobs: usize,
    #[command(flatten)]
    pub run_on: RunOnArgs,
}

/// `cbnn sweep`
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The spec file (TOML): models, foldings or cycle targets, synthesis targets.
    pub spec: PathBuf,
    /// Run directory: copies of the models, every design, every job's output, the report.
    #[arg(long, short = 'o', value_name = "RUN_DIR")]
    pub output: PathBuf,
    /// Jobs run at once on this machine (each as soon as the jobs whose files it reads are
    /// done). The run's files and report are the same.
    #[arg(long, default_value_t = crate::flow::DEFAULT_FLOW_JOBS, value_name = "N")]
    pub jobs: usize,
    #[command(flatten)]
    pub run_on: RunOnArgs,
}

/// `cbnn data ...`
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download a dataset's IDX files and verify their checksums.
    Fetch(FetchArgs),
    /// Print a dataset's shape, counts and class balance.
    Info(InfoArgs),
}

/// Where datasets come from.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// Dataset: a name (mnist, fashion-mnist) or a directory with the four IDX files.
    #[arg(long, short = 'd', default_value = "fashion-mnist")]
    pub dataset: String,
    /// Extra directory searched first for named datasets (DIR/NAME).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `cbnn data fetch`
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Dataset name: mnist or fashion-mnist.
    pub name: String,
    /// Directory to store into (default: the user cache, ~/.cache/cbnn/NAME).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Base URL to download from instead of the canonical locations.
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
}

/// `cbnn data info`
#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Also write the numbers as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// `cbnn train`
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Hidden layer widths, input side first.
    #[arg(long, value_delimiter = ',', default_value = "256,256,256")]
    pub hidden: Vec<usize>,
    /// The hidden layers instead of --hidden, input side first: cN (binary 3x3 convolution of
    /// N channels, "same" padding; cNkK for a KxK kernel, a trailing v for "valid"), pP (PxP
    /// max-pool), dN (dense), or alone lNfF (N truth-table neurons of F <= 6 inputs, one LUT
    /// each, in one group a class); `conv` is the default convnet (c64k5,p2,c128k5,p2,d256),
    /// `mlp` the default perceptron, `lut` the default logic-mapped network (l1000f6).
    #[arg(long, value_name = "SPEC", conflicts_with = "hidden")]
    pub arch: Option<String>,
    /// Kept bit planes, most significant first (7 = MSB) [default: all eight; a logic-mapped
    /// network: the most significant plane set on 1 % to 99 % of the training pixels, 7 on
    /// MNIST].
    #[arg(long, value_delimiter = ',')]
    pub planes: Option<Vec<u8>>,
    /// Training epochs.
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Initial Adam learning rate [default: 0.01, with --float 0.001].
    #[arg(long)]
    pub lr: Option<f32>,
    /// Final learning rate as a fraction of --lr (exponential decay over all steps).
    #[arg(long, default_value_t = 0.01)]
    pub lr_final: f32,
    /// Random seed (initialisation and shuffling).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Augmentation: shift each training image by up to N pixels in each direction, anew
    /// every time it is used (0 = off) [default: one pixel per 28 of the image's shorter side:
    /// 1 for 28x28, 0 below 28; 0 for a logic-mapped network].
    #[arg(long, value_name = "N")]
    pub augment: Option<usize>,
    /// Train on only the first N training images (fast runs and tests).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Validation images: the last N of the official training set [default: a tenth of the
    /// training set, at most 5000].
    #[arg(long, value_name = "N")]
    pub validation: Option<usize>,
    /// Output model file.
    #[arg(long, short = 'o', value_name = "MODEL.json")]
    pub output: PathBuf,
    /// Also write the training history and accuracies as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Train the full-precision counterpart instead: the same shape (`--hidden` or `--arch`) with
    /// float32 weights, ReLU, on 8-bit pixels (the yardstick of `cbnn bench`).
    #[arg(long, conflicts_with_all = ["planes", "augment"])]
    pub float: bool,
}

/// `cbnn eval`
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model file written by `cbnn train` or `cbnn prune` (or `cbnn train --float`).
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Write `index,label,predicted` for every test image.
    #[arg(long, value_name = "FILE.csv")]
    pub predictions: Option<PathBuf>,
    /// Also write every class score (the output layer's popcounts) to --predictions:
    /// columns `score_0` to `score_{C-1}` after `predicted`.
    #[arg(long, requires = "predictions")]
    pub scores: bool,
    /// Also write the numbers as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// `cbnn sensitivity`
#[derive(Debug, Args)]
pub struct SensitivityArgs {
    /// Model file written by `cbnn train` or `cbnn prune`.
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Methods: drop (plane set to a constant), random (plane replaced by random bits),
    /// cumulative (least significant planes randomised first, one more at a time).
    #[arg(long, value_delimiter = ',', default_value = "drop,random,cumulative")]
    pub method: Vec<String>,
    /// Random seeds averaged for the random and cumulative methods.
    #[arg(long, default_value_t = 5)]
    pub seeds: usize,
    /// Validation images: the last N of the official training set (decisions use these)
    /// [default: a tenth of the training set, at most 5000].
    #[arg(long, value_name = "N")]
    pub validation: Option<usize>,
    /// Evaluate only the first N test images (test accuracy is for information only; default:
    /// all).
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// Also write the numbers as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw accuracy against corrupted planes, one line per method, as SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// `cbnn prune`
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The baseline model (usually 8 planes) written by `cbnn train`.
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Largest validation accuracy loss accepted, in percentage points.
    #[arg(long, default_value_t = 1.0, value_name = "PP")]
    pub max_drop: f64,
    /// Standard errors of a candidate's measured validation drop added to it before it is
    /// compared with --max-drop, so that a candidate at the edge of the budget is not accepted
    /// by the luck of the validation sample (0: the drop as measured).
    #[arg(long, default_value_t = 1.0, value_name = "SE")]
    pub noise_margin: f64,
    /// Training epochs per candidate (the search's budget: candidates x epochs) [default: 30
    /// for a perceptron, 4 for a network with convolutions (10 with --from-scratch), 10 for a
    /// logic-mapped network]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Train every candidate of a network with convolutions from scratch instead of from the
    /// baseline's weights (its kept planes and units keep their weights and thresholds).
    #[arg(long)]
    pub from_scratch: bool,
    /// Train candidates on only the first N training images (fast runs and tests).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Validation images: the last N of the official training set (decisions use these)
    /// [default: a tenth of the training set, at most 5000].
    #[arg(long, value_name = "N")]
    pub validation: Option<usize>,
    /// Output: the chosen model.
    #[arg(long, short = 'o', value_name = "MODEL.json")]
    pub output: PathBuf,
    /// Also write the full report (baseline, chosen, every candidate) as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Rank the planes by this sensitivity report of the model (`cbnn sensitivity --json`)
    /// instead of running the analysis again.
    #[arg(long, value_name = "SENSITIVITY.json")]
    pub ranking: Option<PathBuf>,
    /// Candidates trained at once, each a `cbnn retrain` process of its own: the candidates a
    /// phase would train next are started early, at the lowest CPU priority while an earlier
    /// one runs, and dropped when the phase stops before them. The chosen model and every
    /// decision are the same as with 1, which trains them in this process one after another.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub jobs: usize,
    /// Where the candidates are trained: `local`, on this machine (`--jobs` processes), or
    /// `ray`, as jobs on a Ray cluster (`--ray-address`; `bash scripts/setup-ray.sh` installs
    /// Ray). The decisions and the chosen model are the same.
    #[arg(long, value_enum, default_value_t = ExecutorArg::Local)]
    pub executor: ExecutorArg,
    #[command(flatten)]
    pub ray: RayArgs,
    /// How candidates are scored: `retrain`, each trained for --epochs epochs, or `shared`,
    /// each taken from one network trained once (--epochs epochs) for every candidate, its
    /// batch norm recalibrated (perceptrons).
    #[arg(long, value_enum, default_value_t = SearchArg::Retrain)]
    pub search: SearchArg,
    #[command(flatten)]
    pub distill: DistillArgs,
}

/// Distillation from a teacher's class scores.
#[derive(Debug, Args)]
pub struct DistillArgs {
    /// The model whose class scores the training learns from beside the labels (--distill)
    /// [default: the baseline].
    #[arg(long, value_name = "MODEL.json")]
    pub teacher: Option<PathBuf>,
    /// Weight of the teacher's soft targets in the training loss, 0 to 1 (0: labels only).
    #[arg(long, default_value_t = 0.0, value_name = "W")]
    pub distill: f32,
    /// Temperature of the teacher's soft targets.
    #[arg(long, default_value_t = 2.0, value_name = "T")]
    pub temperature: f32,
}

/// How the search scores its candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SearchArg {
    /// Each candidate retrained.
    Retrain,
    /// Each candidate taken from one shared network.
    Shared,
}

/// Where the jobs of a flow or a sweep run.
#[derive(Debug, Args)]
pub struct RunOnArgs {
    /// Where the jobs run: `local`, in this process (`--jobs` at once), or `ray`, each as a job
    /// on a Ray cluster as soon as the jobs whose files it reads are done (`--ray-address`;
    /// `bash scripts/setup-ray.sh` installs Ray). The run's files and report are the same.
    #[arg(long, value_enum, default_value_t = ExecutorArg::Local)]
    pub executor: ExecutorArg,
    #[command(flatten)]
    pub ray: RayArgs,
}

/// Where jobs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorArg {
    /// This machine.
    Local,
    /// A Ray cluster.
    Ray,
}

/// The Ray cluster of `--executor ray`.
#[derive(Debug, Args)]
pub struct RayArgs {
    /// The cluster's address (`HOST:PORT` of its head, as `ray start --head` prints), or
    /// `local`: a throwaway cluster on 127.0.0.1 (a head and `--ray-workers` worker nodes),
    /// started for this command and stopped at its end.
    #[arg(long, value_name = "ADDR")]
    pub ray_address: Option<String>,
    /// Worker nodes of a `local` cluster.
    #[arg(long, default_value_t = crate::jobs::prune::DEFAULT_RAY_WORKERS, value_name = "N")]
    pub ray_workers: usize,
    /// CPUs each job asks of the cluster (and the threads it runs with).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub ray_cpus: usize,
}

/// `cbnn retrain`
#[derive(Debug, Args)]
pub struct RetrainArgs {
    /// The model whose training settings the candidate takes (written by `cbnn train`).
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Kept bit planes, most significant first.
    #[arg(long, value_delimiter = ',', required = true)]
    pub planes: Vec<u8>,
    /// Hidden layers in `cbnn train --arch` notation [default: the model's].
    #[arg(long, value_name = "SPEC")]
    pub arch: Option<String>,
    /// Training epochs [default: `cbnn prune`'s per candidate: 30 for a perceptron; for a
    /// network with convolutions 4 with --warm, else 10; 10 for a logic-mapped network].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Train on only the first N training images.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Validation images: the last N of the official training set [default: a tenth of the
    /// training set, at most 5000].
    #[arg(long, value_name = "N")]
    pub validation: Option<usize>,
    /// Start from the model's weights (a convolutional model): its planes and units that are
    /// kept keep their weights, and each unit its threshold in standard deviations of its
    /// pre-activation [default: a fresh initialisation].
    #[arg(long)]
    pub warm: bool,
    /// Output: the retrained model.
    #[arg(long, short = 'o', value_name = "MODEL.json")]
    pub output: PathBuf,
    #[command(flatten)]
    pub distill: DistillArgs,
}

/// `cbnn rtl`
#[derive(Debug, Args)]
pub struct RtlArgs {
    /// Model file written by `cbnn train` or `cbnn prune`.
    pub model: PathBuf,
    /// Output directory (created; files in it are replaced).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: PathBuf,
    /// Per-layer folding, `L0:PE,SIMD;L1:PE,SIMD;...` (layers from 0, the output layer last;
    /// `L2:full` makes a layer fully parallel; `L0:16,64,1` also gives that layer one popcount
    /// register stage). Layers not named get the default:
    /// PE = min(neurons, 16), SIMD = min(inputs, 64).
    /// `auto` (with --target-cycles) picks, per layer, the folding of least estimated cost
    /// that meets the target.
    #[arg(long, value_name = "SPEC")]
    pub fold: Option<String>,
    /// Cycles per image the design must meet (with --fold auto): every layer and the input
    /// stream get at most this many; pixels per beat grow if the input needs it (a
    /// convnet streams one pixel a beat).
    #[arg(long, value_name = "N")]
    pub target_cycles: Option<usize>,
    /// Clock frequency the constraint files (XDC, SDC) and place and route aim for, in MHz.
    #[arg(long, value_name = "MHZ", default_value_t = 100.0)]
    pub clock_mhz: f64,
    /// Register stages after each layer's popcount tree (0 or 1) where --fold does not say:
    /// 1 shortens the critical path (higher clock) for one more cycle per image and layer.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub pipe: usize,
    /// Pixels per input beat: `s_axis_tdata` is this many pixels times the kept planes wide
    /// [default: 8, or the image's pixel count when smaller; 1 for a convolutional network].
    #[arg(long, value_name = "N")]
    pub pixels_per_beat: Option<usize>,
    /// Input bits per beat of a logic-mapped design: fewer than its first layer reads put a
    /// deserializer in front (ceil(reads / N) beats an image, for ports that would be too
    /// wide) [default: all of them, one image a beat].
    #[arg(long, value_name = "N")]
    pub bits_per_beat: Option<usize>,
}

/// `cbnn synth`
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Design directory written by `cbnn rtl`.
    pub dir: PathBuf,
    /// xilinx: Xilinx 7-series LUTs, flip-flops, carry, block and LUT RAM; ice40: iCE40 cells,
    /// then nextpnr-ice40 place and route on an HX8K with the achieved clock when the design
    /// fits; generic: simple gates and Yosys's CMOS transistor estimate (an ASIC area proxy).
    #[arg(long, value_enum, default_value_t = SynthTarget::Xilinx)]
    pub target: SynthTarget,
    /// Also write the numbers as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// `cbnn synth --target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SynthTarget {
    /// Xilinx 7-series.
    Xilinx,
    /// Lattice iCE40 (HX8K).
    Ice40,
    /// Technology-independent gates.
    Generic,
}

/// ONNX dialects `cbnn export` writes.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    /// QONNX: BipolarQuant, MatMul, Add, Mul (the form Brevitas exports).
    Qonnx,
    /// FINN-ONNX: XnorPopcountMatMul and MultiThreshold with cbnn's thresholds.
    FinnOnnx,
}

/// `cbnn export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Model file written by `cbnn train` or `cbnn prune`.
    pub model: PathBuf,
    /// The ONNX dialect.
    #[arg(long, value_enum, default_value = "qonnx")]
    pub format: ExportFormat,
    /// Images of the graph's fixed batch (qonnx's executor checks the input's shape).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub batch: usize,
    /// The ONNX file to write.
    #[arg(short = 'o', long = "output", value_name = "M.onnx")]
    pub output: PathBuf,
}

/// `cbnn import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The QONNX file.
    pub onnx: PathBuf,
    /// Kept bit planes of the graph's features, most significant first [default: the graph's
    /// cbnn metadata, or the most significant planes that make up its features].
    #[arg(long, value_delimiter = ',')]
    pub planes: Option<Vec<u8>>,
    /// Image shape HxWxC [default: the graph's cbnn metadata, or 28x28x1].
    #[arg(long, value_name = "HxWxC")]
    pub input: Option<String>,
    /// The model file to write.
    #[arg(short = 'o', long = "output", value_name = "MODEL.json")]
    pub output: PathBuf,
}

/// `cbnn testbench`
#[derive(Debug, Args)]
pub struct TestbenchArgs {
    /// Design directory written by `cbnn rtl` (the testbench goes to DIR/testbench).
    pub dir: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Drive the first N test images [default: 100].
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// Randomise input idle cycles and output back-pressure from this seed (default: free-running).
    #[arg(long, value_name = "S")]
    pub stall_seed: Option<u64>,
}

/// `cbnn sim`
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Design directory written by `cbnn rtl`.
    pub dir: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Simulate only the first N test images (default: all).
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// Randomise input idle cycles and output back-pressure from this seed (default: free-running).
    #[arg(long, value_name = "S")]
    pub stall_seed: Option<u64>,
    /// Dump a VCD waveform of the run.
    #[arg(long, value_name = "FILE.vcd")]
    pub vcd: Option<PathBuf>,
    /// Also write the numbers as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}
