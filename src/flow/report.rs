//! The flow's report: `report.json` (every number) and `report.md` rendered from the same
//! values, with the pictures (sensitivity, accuracy against size, resources).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::{FlowConfig, StageLog};
use crate::error::{Error, Result};
use crate::util::atomic;

/// Rounds to two decimals, the precision the report shows.
pub(crate) fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A model in the report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ModelRow {
    /// Kept planes.
    pub planes: Vec<u64>,
    /// Hidden widths.
    pub hidden: Vec<u64>,
    /// The hidden layers in the architecture notation (`c16k5,p2,d64`; `d256,d256` for a
    /// perceptron).
    #[serde(default)]
    pub arch: String,
    /// Size in bits.
    pub size_bits: u64,
    /// Validation accuracy, percent.
    pub val_accuracy: f64,
    /// Test accuracy, percent.
    pub test_accuracy: Option<f64>,
}

/// A stage of the flow in the report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StageRow {
    /// Stage name.
    pub name: String,
    /// Its command line.
    pub command: String,
}

/// A pruning candidate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The model.
    #[serde(flatten)]
    pub model: ModelRow,
    /// Search phase.
    pub phase: String,
    /// Within the accuracy budget.
    pub accepted: bool,
    /// On the Pareto front of size against validation accuracy.
    pub pareto: bool,
}

/// One accelerator in the report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct HardwareRow {
    /// baseline or compact.
    pub model: String,
    /// PE,SIMD per layer.
    pub folding: String,
    /// Cycles per image.
    pub cycles_per_image: u64,
    /// Latency, cycles.
    pub latency: u64,
    /// LUTs (Yosys).
    pub luts: u64,
    /// LUTs (resource model).
    pub luts_estimate: u64,
    /// Flip-flops.
    pub ffs: u64,
    /// Block RAM bits.
    pub bram_bits: u64,
    /// LUT RAM bits.
    pub lutram_bits: u64,
    /// Transistor estimate (generic target).
    pub transistors: Option<u64>,
    /// Achieved clock (iCE40).
    pub fmax_mhz: Option<f64>,
    /// Images co-simulated.
    pub sim_images: u64,
    /// Mismatches found (the run fails on any).
    pub sim_mismatches: u64,
    /// Accuracy in simulation, percent.
    pub sim_accuracy: f64,
}

/// The whole report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FlowReport {
    /// Tool.
    pub tool: String,
    /// Dataset as given.
    pub dataset: String,
    /// Reduced flow.
    pub quick: bool,
    /// Accuracy budget, percentage points.
    pub max_drop: f64,
    /// Cycles-per-image target of both accelerators.
    pub target_cycles: usize,
    /// Synthesis target.
    pub synth_target: String,
    /// The baseline.
    pub baseline: ModelRow,
    /// The compact model.
    pub compact: ModelRow,
    /// Baseline size over compact size.
    pub size_reduction: f64,
    /// Test accuracy lost, percentage points.
    pub test_accuracy_drop: f64,
    /// Validation accuracy with each plane replaced by noise, percent (plane, accuracy).
    pub plane_noise_accuracy: Vec<(u64, f64)>,
    /// How the pruning search scored its candidates: `retrain` (each one trained) or `shared`
    /// (each one evaluated from one shared network, the smallest fine-tuned).
    pub search: String,
    /// Every pruning candidate.
    pub candidates: Vec<Candidate>,
    /// Both accelerators.
    pub hardware: Vec<HardwareRow>,
    /// Baseline LUTs over compact LUTs.
    pub lut_reduction: Option<f64>,
    /// Every stage and its command line (timings and reuse of a particular run are in
    /// `run-log.json`, so the report is the same however the run went).
    pub stages: Vec<StageRow>,
    /// Pictures next to the report.
    pub pictures: Vec<String>,
}

/// Reads a stage's JSON output through its own type: a missing or renamed field is an error
/// naming the file, never a silent 0.
pub(crate) fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(path, format!("not the output this stage writes ({e})")))
}

/// What the report takes from `prune --report`.
#[derive(Deserialize)]
struct PruneOutput {
    baseline: crate::prune::Summary,
    chosen: crate::prune::Summary,
    candidates: Vec<crate::prune::Candidate>,
    search: String,
    phase_seconds: Vec<crate::prune::PhaseSeconds>,
}

/// The seconds each part of the run's pruning search took (its `prune.json`): they go to the
/// run log, not the report, which holds only results.
pub fn search_phases(run: &Path) -> Result<Vec<crate::prune::PhaseSeconds>> {
    Ok(read::<PruneOutput>(&run.join("prune.json"))?.phase_seconds)
}

/// What the report takes from `sensitivity --json`.
#[derive(Deserialize)]
struct SensitivityOutput {
    per_plane: Vec<crate::sensitivity::PlaneRow>,
}

/// What the report takes from `estimate.json`.
#[derive(Deserialize)]
struct EstimateOutput {
    luts: u64,
}

/// A model's hidden layers as the tables show them: the widths of a perceptron, the
/// architecture notation of anything else.
fn layers_cell(x: &ModelRow) -> String {
    if x.arch.is_empty() || crate::train::arch::is_perceptron(&x.arch) {
        format!("{:?}", x.hidden)
    } else {
        format!("`{}`", x.arch)
    }
}

fn model_row(v: &crate::prune::Summary) -> ModelRow {
    ModelRow {
        planes: v.planes.iter().map(|&p| p as u64).collect(),
        hidden: v.hidden.iter().map(|&h| h as u64).collect(),
        arch: v.arch.clone(),
        size_bits: v.size_bits,
        val_accuracy: r2(100.0 * v.val_accuracy),
        test_accuracy: Some(r2(100.0 * v.test_accuracy)),
    }
}

/// Reads the stages' outputs under `run` into the report.
pub fn build(run: &Path, a: &FlowConfig, stages: &[StageLog]) -> Result<FlowReport> {
    let prune: PruneOutput = read(&run.join("prune.json"))?;
    let sens: SensitivityOutput = read(&run.join("sensitivity.json"))?;
    let baseline = model_row(&prune.baseline);
    let compact = model_row(&prune.chosen);
    let mut candidates: Vec<Candidate> = prune
        .candidates
        .iter()
        .map(|v| Candidate {
            model: model_row(&v.summary),
            phase: v.phase.clone(),
            accepted: v.accepted,
            pareto: false,
        })
        .collect();
    // Pareto front: no other candidate is at most as large and strictly more accurate, or
    // smaller and at least as accurate.
    let all: Vec<(u64, f64)> = candidates
        .iter()
        .map(|c| (c.model.size_bits, c.model.val_accuracy))
        .chain([(baseline.size_bits, baseline.val_accuracy)])
        .collect();
    for c in &mut candidates {
        let (s, acc) = (c.model.size_bits, c.model.val_accuracy);
        c.pareto = !all
            .iter()
            .any(|&(s2, a2)| (s2 <= s && a2 > acc) || (s2 < s && a2 >= acc));
    }
    let plane_noise_accuracy = sens
        .per_plane
        .iter()
        .filter_map(|r| Some((r.plane as u64, r2(100.0 * r.random.as_ref()?.val_accuracy))))
        .collect();
    let mut hardware = Vec::new();
    for label in ["baseline", "compact"] {
        let design = crate::rtlgen::load_manifest(&run.join(format!("rtl-{label}")))?;
        let est: EstimateOutput = read(&run.join(format!("rtl-{label}/estimate.json")))?;
        let sim: crate::cosim::SimReport = read(&run.join(format!("sim-{label}.json")))?;
        let syn: crate::synth::SynthReport = read(&run.join(format!("synth-{label}.json")))?;
        let folding = design
            .layers
            .iter()
            .map(|l| format!("{},{}", l.pe, l.simd))
            .collect::<Vec<_>>()
            .join(" ");
        let images = sim.images as u64;
        hardware.push(HardwareRow {
            model: label.into(),
            folding,
            cycles_per_image: syn.cycles_per_image,
            latency: syn.latency,
            luts: syn.resources.luts,
            luts_estimate: est.luts,
            ffs: syn.resources.ffs,
            bram_bits: syn.resources.bram_bits,
            lutram_bits: syn.resources.lutram_bits,
            transistors: syn.resources.transistors,
            fmax_mhz: syn.fmax_mhz.map(|x| (x * 10.0).round() / 10.0),
            sim_images: images,
            sim_mismatches: images - sim.matched as u64,
            sim_accuracy: r2(100.0 * sim.accuracy),
        });
    }
    let lut_reduction =
        (hardware[1].luts > 0).then(|| r2(hardware[0].luts as f64 / hardware[1].luts as f64));
    Ok(FlowReport {
        tool: format!("cbnn {}", env!("CARGO_PKG_VERSION")),
        dataset: a.data.dataset.clone(),
        quick: a.quick,
        max_drop: a.max_drop,
        target_cycles: a.cycles(),
        synth_target: a.synth_target.name().into(),
        size_reduction: r2(baseline.size_bits as f64 / compact.size_bits.max(1) as f64),
        test_accuracy_drop: r2(
            baseline.test_accuracy.unwrap_or(0.0) - compact.test_accuracy.unwrap_or(0.0)
        ),
        baseline,
        compact,
        plane_noise_accuracy,
        search: prune.search.clone(),
        candidates,
        hardware,
        lut_reduction,
        stages: stages
            .iter()
            .map(|s| StageRow {
                name: s.name.clone(),
                command: s.command.clone(),
            })
            .collect(),
        pictures: vec![
            "sensitivity.svg".into(),
            "pareto.svg".into(),
            "resources.svg".into(),
        ],
    })
}

fn fmt_opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("-".into(), |x| x.to_string())
}

/// report.md, from the report's values only.
pub fn markdown(r: &FlowReport) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# cbnn flow report: {}\n", r.dataset);
    let _ = writeln!(
        m,
        "{}; accuracy budget {} pp; both accelerators folded for at most {} cycles per image; synthesis target {}.\n",
        if r.quick { "Quick flow (reduced training, subset simulation)" } else { "Full flow" },
        r.max_drop,
        r.target_cycles,
        r.synth_target
    );
    if r.quick {
        let _ = writeln!(
            m,
            "The quick flow trains the baseline and every pruning candidate for a few epochs on \
             a subset of the training set, and simulates a subset of the test set (`cbnn flow \
             --help`). The full flow (the same command without `--quick`: the whole training \
             set, 10000 simulated images, a faster folding) lets the search go further; \
             docs/results.md gives full searches on MNIST and Fashion-MNIST.\n"
        );
    }
    let _ = writeln!(m, "## Models\n");
    let _ = writeln!(
        m,
        "| model | planes | hidden | size (bits) | validation accuracy (%) | test accuracy (%) |"
    );
    let _ = writeln!(m, "|---|---|---|---|---|---|");
    for (name, x) in [("baseline", &r.baseline), ("compact", &r.compact)] {
        let _ = writeln!(
            m,
            "| {name} | {:?} | {} | {} | {} | {} |",
            x.planes,
            layers_cell(x),
            x.size_bits,
            x.val_accuracy,
            fmt_opt(&x.test_accuracy)
        );
    }
    let _ = writeln!(
        m,
        "\nThe compact model is **{}x** smaller and loses **{}** percentage points of test accuracy.\n",
        r.size_reduction, r.test_accuracy_drop
    );
    let _ = writeln!(
        m,
        "## Bit-plane sensitivity\n\n![sensitivity](sensitivity.svg)\n"
    );
    let _ = writeln!(
        m,
        "| plane | validation accuracy with the plane replaced by noise (%) |\n|---|---|"
    );
    for (p, acc) in &r.plane_noise_accuracy {
        let _ = writeln!(m, "| {p} | {acc} |");
    }
    let _ = writeln!(
        m,
        "\n## Pruning candidates\n\n![accuracy against size](pareto.svg)\n\n{} The seconds \
         each phase of the search took: `run-log.json`.\n",
        match r.search.as_str() {
            "shared" =>
                "Search by evaluation (`--search shared`): every candidate was evaluated \
                         from one shared network, and the smallest promising ones fine-tuned \
                         and judged by the budget.",
            _ =>
                "Search by retraining (`--search retrain`): every candidate was trained and \
                  judged by the budget.",
        }
    );
    let _ = writeln!(m, "| phase | planes | hidden | size (bits) | validation accuracy (%) | test accuracy (%) | accepted | Pareto |");
    let _ = writeln!(m, "|---|---|---|---|---|---|---|---|");
    for c in &r.candidates {
        let _ = writeln!(
            m,
            "| {} | {:?} | {} | {} | {} | {} | {} | {} |",
            c.phase,
            c.model.planes,
            layers_cell(&c.model),
            c.model.size_bits,
            c.model.val_accuracy,
            fmt_opt(&c.model.test_accuracy),
            if c.accepted { "yes" } else { "no" },
            if c.pareto { "yes" } else { "" }
        );
    }
    let _ = writeln!(m, "\n## Accelerators\n\n![resources](resources.svg)\n");
    let _ = writeln!(m, "| model | folding (PE,SIMD per layer) | cycles/image | latency | LUTs | LUTs (estimate) | FFs | block RAM bits | LUT RAM bits | transistors | fmax (MHz) | simulated images | mismatches | simulated accuracy (%) |");
    let _ = writeln!(
        m,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for h in &r.hardware {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            h.model,
            h.folding,
            h.cycles_per_image,
            h.latency,
            h.luts,
            h.luts_estimate,
            h.ffs,
            h.bram_bits,
            h.lutram_bits,
            fmt_opt(&h.transistors),
            fmt_opt(&h.fmax_mhz),
            h.sim_images,
            h.sim_mismatches,
            h.sim_accuracy
        );
    }
    if let Some(x) = r.lut_reduction {
        let _ = writeln!(
            m,
            "\nThe compact accelerator uses **{x}x** fewer LUTs than the baseline's."
        );
    }
    let _ = writeln!(
        m,
        "\n## Stages\n\nTimings, and which stages the last run reused: `run-log.json`.\n\n\
         | stage | command |\n|---|---|"
    );
    for s in &r.stages {
        let _ = writeln!(m, "| {} | `{}` |", s.name, s.command);
    }
    m
}

/// The report's files, by name in the run directory, in the order they are written: the two
/// pictures drawn here, report.md, then report.json.
pub fn files(r: &FlowReport) -> Result<Vec<(&'static str, Vec<u8>)>> {
    Ok(vec![
        ("pareto.svg", draw("pareto.svg", |svg| pareto(r, svg))?),
        (
            "resources.svg",
            draw("resources.svg", |svg| resources(r, svg))?,
        ),
        ("report.md", markdown(r).into_bytes()),
        (
            "report.json",
            atomic::json_bytes(Path::new("report.json"), r)?,
        ),
    ])
}

pub(crate) type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// The SVG text `f` draws; `name` names the chart in an error.
pub(crate) fn draw(name: &str, f: impl FnOnce(&mut String) -> DrawResult) -> Result<Vec<u8>> {
    let mut svg = String::new();
    f(&mut svg).map_err(|e| Error::bad_file(name, format!("cannot draw the chart: {e}")))?;
    Ok(svg.into_bytes())
}

fn pareto(r: &FlowReport, svg: &mut String) -> DrawResult {
    let pts: Vec<(f64, f64, bool, bool)> = r
        .candidates
        .iter()
        .map(|c| {
            (
                c.model.size_bits as f64 / 1000.0,
                c.model.val_accuracy,
                c.accepted,
                c.pareto,
            )
        })
        .collect();
    let base = (
        r.baseline.size_bits as f64 / 1000.0,
        r.baseline.val_accuracy,
    );
    let chosen = (r.compact.size_bits as f64 / 1000.0, r.compact.val_accuracy);
    let x_max = pts.iter().map(|p| p.0).fold(base.0, f64::max) * 1.08;
    let y_lo = pts.iter().map(|p| p.1).fold(base.1, f64::min);
    let y_min = (y_lo - 1.0).floor();
    let y_max = (pts.iter().map(|p| p.1).fold(base.1, f64::max) + 0.5).ceil();
    let root = SVGBackend::with_string(svg, (860, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Pruning candidates: accuracy against size",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, y_min..y_max)?;
    chart
        .configure_mesh()
        .x_desc("model size (kbit)")
        .y_desc("validation accuracy (%)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let budget = r.baseline.val_accuracy - r.max_drop;
    chart
        .draw_series(LineSeries::new(
            [(0.0, budget), (x_max, budget)],
            RGBColor(150, 150, 150).stroke_width(1),
        ))?
        .label(format!(
            "accuracy budget ({} pp below the baseline)",
            r.max_drop
        ))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RGBColor(150, 150, 150)));
    let mut front: Vec<(f64, f64)> = pts
        .iter()
        .filter(|p| p.3)
        .map(|p| (p.0, p.1))
        .chain([base])
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    let blue = RGBColor(0x1f, 0x77, 0xb4);
    chart
        .draw_series(LineSeries::new(front, blue.stroke_width(2)))?
        .label("Pareto front")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], blue.stroke_width(2)));
    let grey = RGBColor(0x7f, 0x7f, 0x7f);
    chart
        .draw_series(pts.iter().map(|p| {
            let style = if p.2 { blue.filled() } else { grey.filled() };
            Circle::new((p.0, p.1), 4, style)
        }))?
        .label("candidate (filled blue: within budget)")
        .legend(move |(x, y)| Circle::new((x + 9, y), 4, grey.filled()));
    let red = RGBColor(0xd6, 0x27, 0x28);
    chart
        .draw_series([Cross::new(base, 7, red.stroke_width(2))])?
        .label("baseline")
        .legend(move |(x, y)| Cross::new((x + 9, y), 5, red.stroke_width(2)));
    let green = RGBColor(0x2c, 0xa0, 0x2c);
    chart
        .draw_series([TriangleMarker::new(chosen, 9, green.filled())])?
        .label("chosen compact model")
        .legend(move |(x, y)| TriangleMarker::new((x + 9, y), 6, green.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}

fn resources(r: &FlowReport, svg: &mut String) -> DrawResult {
    // Three groups (LUTs, flip-flops, block RAM kbit), one bar each for baseline and compact.
    let groups: [(&str, Vec<f64>); 3] = [
        ("LUTs", r.hardware.iter().map(|h| h.luts as f64).collect()),
        (
            "flip-flops",
            r.hardware.iter().map(|h| h.ffs as f64).collect(),
        ),
        (
            "block RAM (kbit)",
            r.hardware
                .iter()
                .map(|h| h.bram_bits as f64 / 1024.0)
                .collect(),
        ),
    ];
    let y_max = groups
        .iter()
        .flat_map(|g| g.1.iter().copied())
        .fold(1.0, f64::max)
        * 1.15;
    let root = SVGBackend::with_string(svg, (860, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Accelerator resources at {} cycles per image ({})",
                r.target_cycles, r.synth_target
            ),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..3f64, 0f64..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(7)
        .x_label_formatter(&|x| {
            // Labels only at the group centres 0.5, 1.5, 2.5.
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 {
                ["LUTs", "flip-flops", "block RAM (kbit)"]
                    .get(i)
                    .copied()
                    .unwrap_or("")
                    .to_string()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc("count")
        .draw()?;
    let colors = [RGBColor(0xd6, 0x27, 0x28), RGBColor(0x2c, 0xa0, 0x2c)];
    for (k, h) in r.hardware.iter().enumerate() {
        let color = colors[k % 2];
        chart
            .draw_series(groups.iter().enumerate().map(|(g, (_, vals))| {
                let x0 = g as f64 + 0.15 + 0.35 * k as f64;
                Rectangle::new([(x0, 0.0), (x0 + 0.33, vals[k])], color.filled())
            }))?
            .label(h.model.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart.draw_series(groups.iter().enumerate().map(|(g, (_, vals))| {
            let x0 = g as f64 + 0.15 + 0.35 * k as f64;
            Text::new(
                format!("{:.0}", vals[k]),
                (x0 + 0.02, vals[k] + y_max * 0.01),
                ("sans-serif", 14),
            )
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_field_in_a_stage_output_is_an_error_not_a_zero() {
        let dir = std::env::temp_dir().join(format!("cbnn-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sim.json");
        let good = r#"{"images": 5, "stall_seed": null, "matched": 5, "cycles": 100,
            "correct": 4, "accuracy": 0.8, "sim_seconds": 0.1, "images_per_second": 50.0,
            "cycles_per_second": 1000.0, "build_seconds": 0.0}"#;
        std::fs::write(&path, good).unwrap();
        let sim: crate::cosim::SimReport = read(&path).unwrap();
        assert_eq!(sim.matched, 5);
        std::fs::write(&path, good.replace("\"matched\"", "\"matches\"")).unwrap();
        let err = read::<crate::cosim::SimReport>(&path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sim.json") && err.contains("missing field `matched`"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
