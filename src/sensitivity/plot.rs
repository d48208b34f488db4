//! The sensitivity chart: accuracy against corrupted planes, one line per method, as SVG.

use std::path::Path;

use plotters::prelude::*;

use super::Report;
use crate::error::{Error, Result};
use crate::util::atomic;

/// Draws `r` as an SVG chart into `path` (written atomically).
pub fn write_svg(r: &Report, path: &Path) -> Result<()> {
    let mut svg = String::new();
    draw(r, &mut svg).map_err(|e| Error::bad_file(path, format!("cannot draw the chart: {e}")))?;
    atomic::write_atomic(path, svg.as_bytes())
}

type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

fn series(r: &Report) -> Vec<Series> {
    let pct = |x: f64| 100.0 * x;
    let mut out: Vec<Series> = Vec::new();
    let pick = |f: &dyn Fn(&super::PlaneRow) -> Option<f64>| -> Vec<(f64, f64)> {
        r.per_plane
            .iter()
            .filter_map(|row| f(row).map(|v| (row.plane as f64, pct(v))))
            .collect()
    };
    let minus = pick(&|row| row.drop_minus.as_ref().map(|s| s.val_accuracy));
    let plus = pick(&|row| row.drop_plus.as_ref().map(|s| s.val_accuracy));
    let random = pick(&|row| row.random.as_ref().map(|s| s.val_accuracy));
    if !minus.is_empty() {
        out.push(("drop: plane set to -1", RGBColor(0x1f, 0x77, 0xb4), minus));
        out.push(("drop: plane set to +1", RGBColor(0x2c, 0xa0, 0x2c), plus));
    }
    if !random.is_empty() {
        out.push((
            "random: plane replaced by noise",
            RGBColor(0xd6, 0x27, 0x28),
            random,
        ));
    }
    if !r.cumulative.is_empty() {
        let c = r
            .cumulative
            .iter()
            .map(|c| (c.plane as f64, pct(c.score.val_accuracy)))
            .collect();
        out.push((
            "cumulative: this plane and all below",
            RGBColor(0x94, 0x67, 0xbd),
            c,
        ));
    }
    out
}

fn draw(r: &Report, svg: &mut String) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let all = series(r);
    let lowest = all
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(100.0 * r.baseline_val_accuracy, f64::min);
    let y_min = (lowest / 10.0).floor() * 10.0;
    let root = SVGBackend::with_string(svg, (860, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Bit-plane sensitivity (validation, {} images)",
                r.val_images
            ),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..7.5f64, y_min..100.5f64)?;
    chart
        .configure_mesh()
        .x_desc("corrupted bit plane (7 = most significant)")
        .y_desc("accuracy (%)")
        .x_labels(8)
        .x_label_formatter(&|x| format!("{:.0}", x))
        .y_label_formatter(&|y| format!("{:.0}", y))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let base = 100.0 * r.baseline_val_accuracy;
    chart
        .draw_series(LineSeries::new(
            vec![(-0.5, base), (7.5, base)],
            ShapeStyle::from(&BLACK.mix(0.6)).stroke_width(1),
        ))?
        .label(format!("uncorrupted: {base:.2}%"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.6)));
    for (name, color, points) in all {
        chart
            .draw_series(LineSeries::new(
                points.clone(),
                ShapeStyle::from(&color).stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}
