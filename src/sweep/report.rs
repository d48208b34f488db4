//! The sweep's report: every design point with its accuracy, cycles, resources and (if run)
//! co-simulation, the Pareto front of accuracy, LUTs and cycles per image, as Markdown
//! (`report.md`), JSON (`report.json`) and a chart (`pareto.svg`). It is built from the jobs'
//! files alone and holds no timing, so it is the same however and wherever the jobs ran.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Layout, Point, Spec};
use crate::error::Result;
use crate::flow::report::{draw, r2, read, DrawResult};
use crate::synth::Target;
use crate::util::atomic;

/// A model of the sweep.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ModelRow {
    /// Its name in the spec.
    pub name: String,
    /// Kept planes.
    pub planes: Vec<u8>,
    /// Its layers in the architecture notation.
    pub arch: String,
    /// Size in bits (weights and thresholds).
    pub size_bits: u64,
    /// Accuracy on the whole test set, % (none when its evaluation failed).
    pub test_accuracy: Option<f64>,
}

/// A synthesis result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SynthRow {
    /// LUTs (0 for the generic target, which counts gates).
    pub luts: u64,
    /// Flip-flops.
    pub ffs: u64,
    /// Block RAM bits.
    pub bram_bits: u64,
    /// Transistors (generic target).
    pub transistors: Option<u64>,
    /// Highest clock after place and route, MHz (iCE40, when placed and routed).
    pub fmax_mhz: Option<f64>,
}

/// A co-simulation result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SimRow {
    /// Images simulated.
    pub images: u64,
    /// Random stalls, if any.
    pub stall_seed: Option<u64>,
    /// Images whose class, scores or output cycle differed from the models.
    pub mismatches: u64,
    /// Simulated accuracy on those images, %.
    pub accuracy: f64,
}

/// A design point.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PointRow {
    /// The model's name.
    pub model: String,
    /// The folding's label.
    pub label: String,
    /// The folding as asked for.
    pub folding: String,
    /// Why it was not built (then nothing below is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub infeasible: Option<String>,
    /// The jobs of the point that failed or could not run, with why (their results are not
    /// set).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub failed: BTreeMap<String, String>,
    /// PE,SIMD of every layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<String>,
    /// Cycles between images, free-running (the cycle model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycles_per_image: Option<u64>,
    /// Cycles from an image's first beat to its class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<u64>,
    /// Images a second at the design's clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images_per_second: Option<f64>,
    /// LUTs by the resource model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub luts_estimate: Option<u64>,
    /// Synthesis results by target.
    pub synth: BTreeMap<String, SynthRow>,
    /// The co-simulation, if run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim: Option<SimRow>,
    /// The LUTs the front is drawn with: the first LUT target synthesized, else the estimate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub luts: Option<u64>,
    /// On the Pareto front: no other point is at least as accurate with at most as many LUTs
    /// and cycles per image, and better in one.
    pub pareto: bool,
}

/// The whole report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SweepReport {
    /// Tool.
    pub tool: String,
    /// Dataset as given.
    pub dataset: String,
    /// Clock of every design, MHz.
    pub clock_mhz: f64,
    /// Synthesis targets.
    pub targets: Vec<String>,
    /// Where the LUTs of the front come from (a target, or "estimate").
    pub luts_from: String,
    /// The models.
    pub models: Vec<ModelRow>,
    /// Every design point, model by model in the spec's order of foldings.
    pub points: Vec<PointRow>,
}

/// What the report takes from `eval --json`.
#[derive(Deserialize)]
struct EvalOutput {
    accuracy: f64,
}

/// What the report takes from `estimate.json`.
#[derive(Deserialize)]
struct EstimateOutput {
    luts: u64,
}

fn folding_text(f: &crate::jobs::rtl::Folding) -> String {
    match f {
        crate::jobs::rtl::Folding::Default => "default".into(),
        crate::jobs::rtl::Folding::Spec(s) => s.clone(),
        crate::jobs::rtl::Folding::Auto { target_cycles } => {
            format!("auto, {target_cycles} cycles")
        }
    }
}

/// Whether `a` dominates `b` in (accuracy up, LUTs down, cycles down).
fn dominates(a: (f64, u64, u64), b: (f64, u64, u64)) -> bool {
    a.0 >= b.0 && a.1 <= b.1 && a.2 <= b.2 && (a.0 > b.0 || a.1 < b.1 || a.2 < b.2)
}

/// Builds the report from the run directory's files.
/// `failures` holds the stages that failed or were not run, with why.
pub fn build(
    spec: &Spec,
    layout: &Layout,
    points: &[Point],
    failures: &BTreeMap<String, String>,
) -> Result<SweepReport> {
    let mut models = Vec::new();
    for (name, _) in &spec.models {
        let m = crate::model::load(&layout.model(name))?;
        let accuracy = match failures.get(&format!("eval.{name}")) {
            Some(_) => None,
            None => Some(read::<EvalOutput>(&layout.eval(name))?.accuracy),
        };
        models.push(ModelRow {
            name: name.clone(),
            planes: m.planes.planes().to_vec(),
            arch: m.arch(),
            size_bits: m.size_bits(),
            test_accuracy: accuracy.map(|a| r2(100.0 * a)),
        });
    }
    let lut_target = spec
        .targets
        .iter()
        .find(|t| **t != Target::Generic)
        .copied();
    let mut rows = Vec::new();
    for p in points {
        let mut row = PointRow {
            model: p.model.clone(),
            label: p.label.clone(),
            folding: folding_text(&p.fold),
            infeasible: p.infeasible.clone(),
            failed: BTreeMap::new(),
            layers: None,
            cycles_per_image: None,
            latency: None,
            images_per_second: None,
            luts_estimate: None,
            synth: BTreeMap::new(),
            sim: None,
            luts: None,
            pareto: false,
        };
        let mut stage_failed = |name: String, what: &str| -> bool {
            match failures.get(&name) {
                Some(why) => {
                    row.failed.insert(what.to_string(), why.clone());
                    true
                }
                None => false,
            }
        };
        if p.infeasible.is_none() && !stage_failed(super::rtl_stage(p), "rtl") {
            let dir = layout.design(&p.model, &p.label);
            let design = crate::rtlgen::load_manifest(&dir)?;
            let est: EstimateOutput = read(&dir.join("estimate.json"))?;
            row.layers = Some(
                design
                    .layers
                    .iter()
                    .map(|l| format!("{},{}", l.pe, l.simd))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            row.cycles_per_image = Some(design.initiation_interval);
            row.latency = Some(design.latency);
            row.images_per_second =
                Some((design.clock_mhz * 1e6 / design.initiation_interval.max(1) as f64).round());
            row.luts_estimate = Some(est.luts);
            for &t in &spec.targets {
                if stage_failed(super::synth_stage(p, t), &format!("synth {}", t.name())) {
                    continue;
                }
                let syn: crate::synth::SynthReport = read(&layout.synth(&p.model, &p.label, t))?;
                row.synth.insert(
                    t.name().to_string(),
                    SynthRow {
                        luts: syn.resources.luts,
                        ffs: syn.resources.ffs,
                        bram_bits: syn.resources.bram_bits,
                        transistors: syn.resources.transistors,
                        fmax_mhz: syn.fmax_mhz.map(|x| (x * 10.0).round() / 10.0),
                    },
                );
            }
            if spec.sim_images > 0 && !stage_failed(super::sim_stage(p), "sim") {
                let sim: crate::cosim::SimReport = read(&layout.sim(&p.model, &p.label))?;
                row.sim = Some(SimRow {
                    images: sim.images as u64,
                    stall_seed: sim.stall_seed,
                    mismatches: (sim.images - sim.matched) as u64,
                    accuracy: r2(100.0 * sim.accuracy),
                });
            }
            row.luts = match lut_target {
                Some(t) => row.synth.get(t.name()).map(|s| s.luts),
                None => Some(est.luts),
            };
        }
        rows.push(row);
    }
    let accuracy: BTreeMap<&str, Option<f64>> = models
        .iter()
        .map(|m| (m.name.as_str(), m.test_accuracy))
        .collect();
    let key = |r: &PointRow| Some((accuracy[r.model.as_str()]?, r.luts?, r.cycles_per_image?));
    let keys: Vec<_> = rows.iter().map(key).collect();
    for (i, row) in rows.iter_mut().enumerate() {
        row.pareto = keys[i].is_some_and(|k| !keys.iter().flatten().any(|&o| dominates(o, k)));
    }
    Ok(SweepReport {
        tool: format!("cbnn {}", env!("CARGO_PKG_VERSION")),
        dataset: spec.data.dataset.clone(),
        clock_mhz: spec.clock_mhz,
        targets: spec.targets.iter().map(|t| t.name().to_string()).collect(),
        luts_from: lut_target.map_or("estimate", Target::name).to_string(),
        models,
        points: rows,
    })
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "—".to_string(), |v| v.to_string())
}

/// The report as Markdown.
pub fn markdown(r: &SweepReport) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# Sweep on {}\n\n{} design points of {} models; clock {} MHz; LUTs of the front: {}.\n",
        r.dataset,
        r.points.len(),
        r.models.len(),
        r.clock_mhz,
        r.luts_from
    );
    let _ = writeln!(m, "## Models\n");
    let _ = writeln!(
        m,
        "| model | planes | layers | size (bits) | test accuracy |"
    );
    let _ = writeln!(m, "|---|---|---|---|---|");
    for x in &r.models {
        let _ = writeln!(
            m,
            "| {} | {:?} | `{}` | {} | {} |",
            x.name,
            x.planes,
            x.arch,
            x.size_bits,
            x.test_accuracy
                .map_or("evaluation failed".to_string(), |a| format!("{a:.2} %"))
        );
    }
    let _ = writeln!(m, "\n## Design points\n\n![Pareto front](pareto.svg)\n");
    let mut head = "| model | folding | PE,SIMD per layer | cycles/image | latency | images/s | LUTs (estimate) |".to_string();
    let mut rule = "|---|---|---|---|---|---|---|".to_string();
    for t in &r.targets {
        let _ = write!(head, " {t} LUTs | {t} FFs | {t} BRAM bits |");
        rule.push_str("---|---|---|");
    }
    let sim = r.points.iter().any(|p| p.sim.is_some());
    if sim {
        head.push_str(" co-simulation |");
        rule.push_str("---|");
    }
    head.push_str(" Pareto |");
    rule.push_str("---|");
    let _ = writeln!(m, "{head}\n{rule}");
    for p in &r.points {
        if let Some(why) = &p.infeasible {
            let _ = writeln!(
                m,
                "| {} | {} | not built: {} |",
                p.model,
                p.folding,
                why.replace('|', "\\|")
            );
            continue;
        }
        let _ = write!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} |",
            p.model,
            p.folding,
            opt(p.layers.as_deref()),
            opt(p.cycles_per_image),
            opt(p.latency),
            opt(p.images_per_second),
            opt(p.luts_estimate)
        );
        for t in &r.targets {
            match p.synth.get(t) {
                Some(s) => {
                    let luts = match s.transistors {
                        Some(n) if s.luts == 0 => format!("— ({n} transistors)"),
                        _ => s.luts.to_string(),
                    };
                    let _ = write!(m, " {luts} | {} | {} |", s.ffs, s.bram_bits);
                }
                None => m.push_str(" — | — | — |"),
            }
        }
        if sim {
            let cell = p.sim.as_ref().map_or("—".to_string(), |s| {
                format!(
                    "{} images{}, {} mismatches, {:.2} %",
                    s.images,
                    s.stall_seed
                        .map_or(String::new(), |k| format!(" (stall seed {k})")),
                    s.mismatches,
                    s.accuracy
                )
            });
            let _ = write!(m, " {cell} |");
        }
        let _ = writeln!(m, " {} |", if p.pareto { "yes" } else { "" });
    }
    let failed: Vec<&PointRow> = r.points.iter().filter(|p| !p.failed.is_empty()).collect();
    if !failed.is_empty() {
        let _ = writeln!(m, "\n## Failed jobs\n");
        for p in failed {
            for (what, why) in &p.failed {
                let _ = writeln!(m, "- {} {}, {what}: {why}", p.model, p.label);
            }
        }
    }
    m
}

/// The report's files, by name in the run directory, in the order they are written: the
/// chart, report.md, then report.json.
pub fn files(r: &SweepReport) -> Result<Vec<(&'static str, Vec<u8>)>> {
    Ok(vec![
        ("pareto.svg", draw("pareto.svg", |svg| chart(r, svg))?),
        ("report.md", markdown(r).into_bytes()),
        (
            "report.json",
            atomic::json_bytes(Path::new("report.json"), r)?,
        ),
    ])
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// LUTs against cycles per image, both on log scales, one colour a model; points on the
/// front filled and labelled with their accuracy.
fn chart(r: &SweepReport, svg: &mut String) -> DrawResult {
    let pts: Vec<(f64, f64, usize, bool)> = r
        .points
        .iter()
        .filter_map(|p| {
            let k = r.models.iter().position(|m| m.name == p.model)?;
            Some((p.luts? as f64, p.cycles_per_image? as f64, k, p.pareto))
        })
        .collect();
    // Both axes in log10 of the value, labelled with the value: evenly spaced labels at any
    // range (a chart's log scale labels only the powers of ten and their multiples).
    let span = |v: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = v.fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
        if lo > hi {
            (0.0, 1.0)
        } else {
            let pad = ((hi - lo) * 0.12).max(0.15);
            (lo - pad, hi + pad)
        }
    };
    let pts: Vec<(f64, f64, usize, bool)> = pts
        .into_iter()
        .map(|(x, y, k, f)| (x.max(1.0).log10(), y.max(1.0).log10(), k, f))
        .collect();
    let (x0, x1) = span(&mut pts.iter().map(|p| p.0));
    let (y0, y1) = span(&mut pts.iter().map(|p| p.1));
    let value = |v: &f64| {
        let x = 10f64.powf(*v);
        let digits = 10f64.powi(x.log10().floor() as i32 - 1).max(1.0);
        format!("{:.0}", (x / digits).round() * digits)
    };
    let root = SVGBackend::with_string(svg, (860, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Design points: LUTs ({}) against cycles per image",
                r.luts_from
            ),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc("LUTs (log scale)")
        .y_desc("cycles per image (log scale)")
        .x_label_formatter(&value)
        .y_label_formatter(&value)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (k, m) in r.models.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let mine: Vec<_> = pts.iter().filter(|p| p.2 == k).collect();
        chart
            .draw_series(mine.iter().map(|p| {
                let style = if p.3 {
                    color.filled()
                } else {
                    color.stroke_width(2)
                };
                Circle::new((p.0, p.1), 5, style)
            }))?
            .label(match m.test_accuracy {
                Some(a) => format!("{} ({a:.2} %)", m.name),
                None => m.name.clone(),
            })
            .legend(move |(x, y)| Circle::new((x + 9, y), 5, color.filled()));
        let accuracy = m.test_accuracy.unwrap_or(0.0);
        chart.draw_series(mine.iter().filter(|p| p.3).map(|p| {
            Text::new(
                format!("{accuracy:.2} %"),
                (p.0 + (x1 - x0) * 0.015, p.1 + (y1 - y0) * 0.01),
                ("sans-serif", 13).into_font().color(&color),
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
    fn the_front_keeps_points_no_other_beats_in_accuracy_luts_and_cycles() {
        // More accurate beats less accurate at equal cost; fewer LUTs or cycles beat more.
        assert!(dominates((99.0, 100, 50), (98.0, 100, 50)));
        assert!(dominates((99.0, 90, 50), (99.0, 100, 50)));
        assert!(!dominates((99.0, 100, 50), (99.0, 100, 50)));
        // A trade-off dominates neither way.
        assert!(!dominates((99.0, 200, 10), (98.0, 100, 50)));
        assert!(!dominates((98.0, 100, 50), (99.0, 200, 10)));
    }
}
