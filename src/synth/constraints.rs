//! Constraint files and Yosys scripts rendered into a design directory from the templates in
//! `constraints/` (embedded in the binary).

use std::path::Path;

use crate::error::Result;
use crate::rtlgen::Manifest;
use crate::util::atomic::write_atomic;

/// The templates: file name in the design directory and text.
pub const TEMPLATES: [(&str, &str); 6] = [
    ("cbnn.xdc", include_str!("../../constraints/cbnn.xdc")),
    ("cbnn.sdc", include_str!("../../constraints/cbnn.sdc")),
    ("cbnn.pcf", include_str!("../../constraints/cbnn.pcf")),
    (
        "synth_xilinx.ys",
        include_str!("../../constraints/synth_xilinx.ys"),
    ),
    (
        "synth_ice40.ys",
        include_str!("../../constraints/synth_ice40.ys"),
    ),
    (
        "synth_generic.ys",
        include_str!("../../constraints/synth_generic.ys"),
    ),
];

/// Replaces every `{{NAME}}` of `vars` in `template`.
pub fn render(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}

/// Writes the constraint files and synthesis scripts for `manifest`'s design into `dir`;
/// returns their names.
pub fn write(dir: &Path, manifest: &Manifest) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for (name, text) in rendered(manifest) {
        write_atomic(&dir.join(name), text.as_bytes())?;
        names.push(name.to_string());
    }
    Ok(names)
}

/// The text of the file `name` (a template's) for `manifest`'s design.
pub fn expected(manifest: &Manifest, name: &str) -> Option<String> {
    rendered(manifest)
        .into_iter()
        .find_map(|(n, text)| (n == name).then_some(text))
}

/// Every template's file name and text for `manifest`'s design.
fn rendered(manifest: &Manifest) -> Vec<(&'static str, String)> {
    let period = 1000.0 / manifest.clock_mhz;
    let data_pins: usize = manifest
        .ports
        .iter()
        .filter(|p| p.name != "ap_clk")
        .map(|p| p.width)
        .sum();
    let vars = [
        ("TOP", manifest.module.clone()),
        ("MHZ", format!("{}", manifest.clock_mhz)),
        ("PERIOD_NS", format!("{period:.3}")),
        ("HALF_PERIOD_NS", format!("{:.3}", period / 2.0)),
        ("DATA_PINS", data_pins.to_string()),
        ("FILES", manifest.files.join(" ")),
    ];
    TEMPLATES
        .iter()
        .map(|&(name, template)| {
            let text = render(template, &vars);
            debug_assert!(!text.contains("{{"), "unrendered placeholder in {name}");
            (name, text)
        })
        .collect()
}
