//! `cbnn rtl`: a Verilog accelerator for an integer model, sized to its kept planes.
//!
//! The logic lives in hand-written cores (`rtl/`, embedded in the binary and copied into every
//! design directory). This module only validates the folding, fills a thin top level with those
//! validated numbers, and writes the memory images, `design.json` and `filelist.f`
//! (docs/hardware.md). It never builds logic out of strings.

mod check;
pub mod ownership;
mod top;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::plan::{DesignPlan, InputPacking, OutputPacking, Port, RtlConfig, DEFAULT_CLOCK_MHZ};
use crate::vocab::fold::LayerFold;

use crate::error::{Error, Result};
use crate::model::IntModel;
use crate::util::atomic::{write_atomic, write_json};

/// The hand-written cores, by file name.
pub const CORES: [(&str, &str); 6] = [
    ("cbnn_popcount.v", include_str!("../../rtl/cbnn_popcount.v")),
    ("cbnn_rom.v", include_str!("../../rtl/cbnn_rom.v")),
    ("cbnn_argmax.v", include_str!("../../rtl/cbnn_argmax.v")),
    ("cbnn_unpack.v", include_str!("../../rtl/cbnn_unpack.v")),
    ("cbnn_mvtu.v", include_str!("../../rtl/cbnn_mvtu.v")),
    ("cbnn_skid.v", include_str!("../../rtl/cbnn_skid.v")),
];

/// The cores of convolutional pipelines, copied into designs that have a convolution or a pool.
pub const CONV_CORES: [(&str, &str); 4] = [
    ("cbnn_split.v", include_str!("../../rtl/cbnn_split.v")),
    ("cbnn_swu.v", include_str!("../../rtl/cbnn_swu.v")),
    ("cbnn_pool.v", include_str!("../../rtl/cbnn_pool.v")),
    ("cbnn_fifo.v", include_str!("../../rtl/cbnn_fifo.v")),
];

/// The cores of logic-mapped designs (layers of kind `lut`).
pub const LUT_CORES: [(&str, &str); 2] = [
    ("cbnn_lut.v", include_str!("../../rtl/cbnn_lut.v")),
    ("cbnn_pipe.v", include_str!("../../rtl/cbnn_pipe.v")),
];

/// Every hand-written core, whichever designs it goes into.
pub fn all_cores() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    CORES.iter().chain(&CONV_CORES).chain(&LUT_CORES)
}

/// The copy of the model kept in every design directory (the simulator checks against it).
pub const MODEL_FILE: &str = "model.json";

/// The largest `design.json` read (a manifest is a few kilobytes).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Reads and checks `DIR/design.json`.
pub fn load_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("design.json");
    let text =
        crate::util::input::read_text_capped(&path, MAX_MANIFEST_BYTES, "a design manifest")?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(&path, format!("not a cbnn design manifest ({e})")))?;
    if m.version != 1 {
        return Err(Error::bad_file(
            &path,
            format!("design manifest version {} is not supported", m.version),
        ));
    }
    m.validate(&path)?;
    Ok(m)
}

/// Name of the generated top-level module.
pub const TOP: &str = "cbnn_top";

/// One layer of the design.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LayerInfo {
    /// `L<i>`.
    pub name: String,
    /// The layer's kind (`threshold`, `output`, `conv`, `maxpool`, `lut`, `group_sum`).
    pub kind: String,
    /// Inputs per neuron.
    pub inputs: usize,
    /// Neurons.
    pub outputs: usize,
    /// Neurons in parallel.
    pub pe: usize,
    /// Inputs per neuron per cycle.
    pub simd: usize,
    /// Register stages after the popcount tree.
    #[serde(default)]
    pub pipe: usize,
    /// Neuron folds.
    pub nf: usize,
    /// Input folds.
    pub sf: usize,
    /// Inputs after padding to a multiple of SIMD.
    pub padded_inputs: usize,
    /// Neurons after padding to a multiple of PE.
    pub padded_outputs: usize,
    /// Cycles per image, as the layer's kind counts them (a dense unit: compute steps plus one
    /// hand-over cycle; a convolution: that per window, or the walk over the padded image when
    /// longer; a pool: its input pixels).
    pub cycles_per_image: usize,
    /// Weight memory image (empty for a layer without weights: a max-pool).
    pub weight_file: String,
    /// Threshold memory image (threshold layers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_file: Option<String>,
    /// Fully parallel layer whose weights and thresholds are constants in the top level
    /// (compiled into logic) rather than memories.
    #[serde(default)]
    pub weights_in_logic: bool,
    /// Convolutional designs: the stream the layer receives (pixels of `channels` bits, one a
    /// beat; a gathered vector is one pixel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receives: Option<crate::layers::Shape>,
    /// Convolutional designs: the beats of the FIFO in front of the layer (0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fifo_depth: Option<usize>,
    /// Convolutions: the window side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<usize>,
    /// Convolutions: `valid` or `same`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<crate::layers::Padding>,
}

/// The manifest, `design.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Manifest format version.
    pub version: u32,
    /// Top-level module.
    pub module: String,
    /// Its ports.
    pub ports: Vec<Port>,
    /// How `s_axis_tdata` is packed.
    pub input: InputPacking,
    /// How `m_axis_tdata` is packed.
    pub output: OutputPacking,
    /// Per layer.
    pub layers: Vec<LayerInfo>,
    /// Input beats per image.
    pub beats_per_image: usize,
    /// Cycles between consecutive images in steady state (free-running).
    pub initiation_interval: u64,
    /// Cycles from the first input beat's handshake to the output handshake (free-running).
    pub latency: u64,
    /// HDL files, in compile order.
    pub files: Vec<String>,
    /// Target clock frequency in MHz.
    #[serde(default = "default_clock_mhz")]
    pub clock_mhz: f64,
    /// Constraint files and synthesis scripts in the directory.
    #[serde(default)]
    pub constraints: Vec<String>,
    /// Every entry `cbnn rtl` wrote into the directory, `design.json` included, sorted (what
    /// a later `cbnn rtl` into the same directory may replace).
    #[serde(default)]
    pub written: Vec<String>,
    /// Source model and its provenance.
    pub model: ModelRef,
    /// The tool that wrote it.
    pub tool: String,
}

fn default_clock_mhz() -> f64 {
    DEFAULT_CLOCK_MHZ
}

/// Writes `DIR/design.json` as the directory's last file, recording in `written` every entry
/// the directory holds (so a later `cbnn rtl` knows what it may replace).
pub fn write_manifest(dir: &Path, manifest: &mut Manifest) -> Result<()> {
    let mut written: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !(n.starts_with('.') && n.contains(".tmp-")))
        .chain(std::iter::once("design.json".to_string()))
        .collect();
    written.sort();
    written.dedup();
    manifest.written = written;
    write_json(&dir.join("design.json"), manifest)
}

impl Manifest {
    /// The folding the design was generated with.
    pub fn folding(&self) -> Vec<LayerFold> {
        self.layers
            .iter()
            .map(|l| LayerFold {
                pe: l.pe,
                simd: l.simd,
                pipe: l.pipe,
            })
            .collect()
    }
}

/// The model a design came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelRef {
    /// Path as given.
    pub path: String,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Size in bits.
    pub size_bits: u64,
    /// Its provenance.
    pub provenance: crate::model::Provenance,
}

/// Writes the design for `model` into `dir`; returns its manifest.
pub fn generate(
    model: &IntModel,
    model_path: &Path,
    cfg: &RtlConfig,
    dir: &Path,
) -> Result<Manifest> {
    write(
        &crate::plan::build(model, model_path, cfg)?,
        model_path,
        dir,
    )
}

/// Writes a planned design into `dir`: its memory images, the top level, the cores it
/// instantiates, `filelist.f`, the model's copy and `design.json` (last); returns its
/// manifest.
pub fn write(plan: &DesignPlan, model_path: &Path, dir: &Path) -> Result<Manifest> {
    let model = plan.model;
    let mut layers = Vec::new();
    let mut instances = Vec::new();
    let mut input = "v0".to_string();
    // The first layer's input: the beat, or the bits a deserializer gathers.
    let mut width = plan.reads.as_ref().map_or(plan.in_width, Vec::len);
    for (i, (layer, lp)) in plan
        .instantiated
        .layers
        .iter()
        .zip(&plan.layers)
        .enumerate()
    {
        let hw = layer.hardware();
        let (f, shape) = (lp.fold, lp.receives);
        if lp.fifo_depth > 0 {
            let q = format!("l{i}_in");
            instances.push(format!(
                "    // FIFO of {d} beats in front of L{i} (depth from the cycle model)\n    wire [{}:0] {q};\n    wire {q}_valid;\n    wire {q}_ready;\n    cbnn_fifo #(.W({width}), .DEPTH({d})) u_l{i}_fifo (\n        .clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata({input}), .s_axis_tvalid({input}_valid), .s_axis_tready({input}_ready),\n        .m_axis_tdata({q}), .m_axis_tvalid({q}_valid), .m_axis_tready({q}_ready));\n",
                width - 1,
                d = lp.fifo_depth
            ));
            input = q;
        }
        width = lp.output_width;
        let s = lp.unit;
        let name = format!("L{i}");
        let images = hw.images(f);
        let mut files = Vec::new();
        for image in &images {
            let file = format!("{}_{}.hex", name.to_lowercase(), image.role);
            write_atomic(&dir.join(&file), image.text.as_bytes())?;
            files.push((image.role, file));
        }
        let file = |role: &str| {
            files
                .iter()
                .find(|(r, _)| *r == role)
                .map(|(_, f)| f.clone())
        };
        let output = match layer.semantics().produces() {
            crate::layers::Produces::Scores => "scores".to_string(),
            crate::layers::Produces::Bits => format!("v{}", i + 1),
        };
        instances.push(hw.instantiate(&crate::layers::Site {
            name: name.clone(),
            fold: f,
            input: std::mem::replace(&mut input, output.clone()),
            input_shape: shape,
            output,
            output_width: lp.output_width,
            images: files.clone(),
            in_logic: lp.in_logic,
            constants: &images,
        }));
        layers.push(LayerInfo {
            name,
            kind: layer.semantics().kind().into(),
            inputs: s.inputs,
            outputs: s.outputs,
            pe: f.pe,
            simd: f.simd,
            pipe: f.pipe,
            nf: s.nf(f),
            sf: s.sf(f),
            padded_inputs: s.sf(f) * f.simd,
            padded_outputs: s.nf(f) * f.pe,
            cycles_per_image: lp.cycles_per_image,
            weight_file: file("weights").unwrap_or_default(),
            threshold_file: file("thresholds"),
            weights_in_logic: lp.in_logic && !images.is_empty(),
            receives: plan.any_stream.then_some(shape),
            fifo_depth: plan.any_stream.then_some(lp.fifo_depth),
            kernel: layer.as_conv().map(|c| c.kernel),
            padding: layer.as_conv().map(|c| c.padding),
        });
    }
    let top_text = top::render(model, &instances, plan.in_width, &plan.output);
    write_atomic(&dir.join(format!("{TOP}.v")), top_text.as_bytes())?;
    let mut files: Vec<String> = Vec::new();
    let extra_cores: &[(&str, &str)] = if plan.any_stream {
        &CONV_CORES
    } else if plan.reads.is_some() {
        &LUT_CORES
    } else {
        &[]
    };
    for (name, text) in CORES.iter().chain(extra_cores) {
        write_atomic(&dir.join(name), text.as_bytes())?;
        files.push(name.to_string());
    }
    files.push(format!("{TOP}.v"));
    let mut filelist = files.join("\n");
    filelist.push('\n');
    write_atomic(&dir.join("filelist.f"), filelist.as_bytes())?;

    let mut manifest = Manifest {
        version: 1,
        module: TOP.into(),
        ports: plan.ports(),
        input: plan.input_packing(),
        output: plan.output.clone(),
        layers,
        beats_per_image: plan.timing.timing.beats,
        initiation_interval: plan.timing.interval,
        latency: plan.timing.latency,
        files,
        clock_mhz: plan.clock_mhz,
        constraints: Vec::new(),
        written: Vec::new(),
        model: ModelRef {
            path: model_path.display().to_string(),
            hidden: model.hidden_widths(),
            size_bits: model.size_bits(),
            provenance: model.provenance.clone(),
        },
        tool: format!("cbnn {}", env!("CARGO_PKG_VERSION")),
    };
    crate::model::save(model, &dir.join(MODEL_FILE))?;
    write_manifest(dir, &mut manifest)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    /// Every core file in `rtl/` is one the generator knows, so the flow's stage keys (which
    /// hash `all_cores`) change when any of them does.
    #[test]
    fn all_cores_lists_every_core_in_rtl() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rtl");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".v"))
            .collect();
        on_disk.sort();
        let mut known: Vec<String> = super::all_cores().map(|(n, _)| n.to_string()).collect();
        known.sort();
        assert_eq!(known, on_disk);
        for (name, text) in super::all_cores() {
            assert_eq!(
                *text,
                std::fs::read_to_string(dir.join(name)).unwrap(),
                "{name}"
            );
        }
    }
}
