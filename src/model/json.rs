//! The model's JSON form (`docs/model-format.md` describes it field by field).
//!
//! Weight rows are hex strings: byte `k` of a row holds inputs `8k..8k+8`, input `8k + t` in bit
//! `t`, each byte written as two lower-case hex digits, bytes in increasing order. A row of `N`
//! inputs is `2 * ceil(N / 8)` digits; bits past input `N - 1` are zero.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{BinaryMatrix, Dense, InputShape, IntModel, Layer, Provenance, Scores};
use crate::bitslice::PlaneSet;
use crate::error::{Error, Result};
use crate::util::atomic;

/// Value of the `format` field.
pub const FORMAT: &str = "cbnn-model";
/// Version of the format this build reads and writes.
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    format: String,
    version: u32,
    input: InputShape,
    planes: Vec<u8>,
    features: usize,
    classes: usize,
    size_bits: u64,
    layers: Vec<LayerFile>,
    provenance: Provenance,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerFile {
    kind: LayerKind,
    inputs: usize,
    outputs: usize,
    weights: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thresholds: Option<Vec<u32>>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum LayerKind {
    Threshold,
    Output,
}

fn matrix_to_hex(m: &BinaryMatrix) -> Vec<String> {
    let bytes_per_row = m.cols().div_ceil(8);
    (0..m.rows())
        .map(|r| {
            let row = m.row(r);
            (0..bytes_per_row)
                .map(|k| format!("{:02x}", (row[k / 8] >> (8 * (k % 8))) as u8))
                .collect()
        })
        .collect()
}

fn matrix_from_hex(path: &Path, layer: usize, m: &LayerFile) -> Result<BinaryMatrix> {
    let bad = |msg: String| Error::bad_file(path, format!("layer {layer}: {msg}"));
    if m.weights.len() != m.outputs {
        return Err(bad(format!(
            "{} weight rows for {} outputs",
            m.weights.len(),
            m.outputs
        )));
    }
    let digits = 2 * m.inputs.div_ceil(8);
    // Every row is checked against the declared size before the matrix is allocated, so the
    // allocation is bounded by the data actually in the file.
    for (r, hex) in m.weights.iter().enumerate() {
        if hex.len() != digits {
            return Err(bad(format!(
                "weight row {r} has {} hex digits; {} inputs need {digits}",
                hex.len(),
                m.inputs
            )));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad(format!("weight row {r} is not lower-case hexadecimal")));
        }
    }
    let mut out = BinaryMatrix::new(m.outputs, m.inputs);
    for (r, hex) in m.weights.iter().enumerate() {
        let row = out.row_mut(r);
        for (k, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let byte = std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| bad(format!("weight row {r} is not hexadecimal")))?;
            row[k / 8] |= (byte as u64) << (8 * (k % 8));
        }
        if row
            .iter()
            .enumerate()
            .any(|(i, &w)| w & !super::valid_mask(m.inputs, i) != 0)
        {
            return Err(bad(format!(
                "weight row {r} sets bits past input {}",
                m.inputs - 1
            )));
        }
    }
    Ok(out)
}

/// Serialises a model to its JSON text.
pub fn to_json(model: &IntModel) -> String {
    let layers: Vec<LayerFile> = model
        .layers
        .iter()
        .map(|l| match l {
            Layer::Dense(l) => LayerFile {
                kind: LayerKind::Threshold,
                inputs: l.weights.cols(),
                outputs: l.weights.rows(),
                weights: matrix_to_hex(&l.weights),
                thresholds: Some(l.thresholds.clone()),
            },
            Layer::Scores(l) => LayerFile {
                kind: LayerKind::Output,
                inputs: l.weights.cols(),
                outputs: l.weights.rows(),
                weights: matrix_to_hex(&l.weights),
                thresholds: None,
            },
        })
        .collect();
    let file = ModelFile {
        format: FORMAT.into(),
        version: VERSION,
        input: model.input,
        planes: model.planes.planes().to_vec(),
        features: model.features(),
        classes: model.classes(),
        size_bits: model.size_bits(),
        layers,
        provenance: model.provenance.clone(),
    };
    let mut text = serde_json::to_string_pretty(&file).expect("model serialises");
    text.push('\n');
    text
}

/// Writes a model atomically.
pub fn save(model: &IntModel, path: &Path) -> Result<()> {
    atomic::write_atomic(path, to_json(model).as_bytes())
}

/// Reads and validates a model file.
pub fn load(path: &Path) -> Result<IntModel> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    from_json(path, &text)
}

/// Parses and validates model JSON; `path` names the source in errors.
pub fn from_json(path: &Path, text: &str) -> Result<IntModel> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::bad_file(path, format!("not valid JSON ({e})")))?;
    match value.get("format").and_then(|f| f.as_str()) {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(Error::bad_file(
                path,
                format!("not a cbnn model: format is '{other}', expected '{FORMAT}'"),
            ))
        }
        None => {
            return Err(Error::bad_file(
                path,
                format!("not a cbnn model: no \"format\": \"{FORMAT}\" field"),
            ))
        }
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == VERSION as u64 => {}
        Some(v) => {
            return Err(Error::bad_file(
                path,
                format!(
                    "model format version {v} is not supported; this build reads version {VERSION}"
                ),
            ))
        }
        None => {
            return Err(Error::bad_file(
                path,
                "model has no numeric \"version\" field",
            ))
        }
    }
    // Parsed again from the text, not from `value`: a map drops duplicate keys silently,
    // the struct refuses them.
    drop(value);
    let file: ModelFile = serde_json::from_str(text)
        .map_err(|e| Error::bad_file(path, format!("invalid model: {e}")))?;
    let planes = PlaneSet::new(&file.planes)
        .map_err(|e| Error::bad_file(path, format!("invalid \"planes\": {e}")))?;
    let Some(last) = file.layers.last() else {
        return Err(Error::bad_file(path, "model has no layers"));
    };
    if last.kind != LayerKind::Output {
        return Err(Error::bad_file(
            path,
            "the last layer must be of kind \"output\"",
        ));
    }
    // Check the layer chain before decoding any weights: it is the likeliest inconsistency.
    let InputShape {
        height,
        width,
        channels,
    } = file.input;
    let mut inputs = height
        .checked_mul(width)
        .and_then(|p| p.checked_mul(channels))
        .and_then(|p| p.checked_mul(planes.len()))
        .filter(|&f| f <= super::MAX_LAYER_INPUTS)
        .ok_or_else(|| {
            Error::bad_file(
                path,
                format!(
                    "input shape {height}x{width}x{channels} with {} planes gives more than \
                     {} features, the most a model may have",
                    planes.len(),
                    super::MAX_LAYER_INPUTS
                ),
            )
        })?;
    let mut weight_bits: u64 = 0;
    for (i, l) in file.layers.iter().enumerate() {
        if l.outputs == 0 || l.outputs > super::MAX_LAYER_INPUTS {
            return Err(Error::bad_file(
                path,
                format!(
                    "layer {i} has {} outputs; between 1 and {} are possible",
                    l.outputs,
                    super::MAX_LAYER_INPUTS
                ),
            ));
        }
        weight_bits += l.inputs as u64 * l.outputs as u64;
        if weight_bits > super::MAX_WEIGHT_BITS {
            return Err(Error::bad_file(
                path,
                format!(
                    "the layers declare more than {} weight bits, the most a model may have",
                    super::MAX_WEIGHT_BITS
                ),
            ));
        }
        if l.inputs != inputs {
            let name = if i + 1 == file.layers.len() {
                "output layer".to_string()
            } else {
                format!("layer {i}")
            };
            return Err(Error::bad_file(
                path,
                format!("{name} has {} inputs but receives {inputs}", l.inputs),
            ));
        }
        inputs = l.outputs;
    }
    let mut layers = Vec::with_capacity(file.layers.len());
    for (i, l) in file.layers.iter().enumerate() {
        let last_one = i + 1 == file.layers.len();
        layers.push(match l.kind {
            LayerKind::Threshold => {
                let thresholds = l.thresholds.clone().ok_or_else(|| {
                    Error::bad_file(
                        path,
                        format!("layer {i}: a threshold layer needs \"thresholds\""),
                    )
                })?;
                Layer::Dense(Dense {
                    weights: matrix_from_hex(path, i, l)?,
                    thresholds,
                })
            }
            LayerKind::Output => {
                if !last_one {
                    return Err(Error::bad_file(
                        path,
                        format!("layer {i}: only the last layer may be of kind \"output\""),
                    ));
                }
                if l.thresholds.is_some() {
                    return Err(Error::bad_file(
                        path,
                        "the output layer must not have thresholds",
                    ));
                }
                Layer::Scores(Scores {
                    weights: matrix_from_hex(path, i, l)?,
                })
            }
        });
    }
    let model = IntModel {
        input: file.input,
        planes,
        layers,
        provenance: file.provenance,
    };
    model.validate(path)?;
    if file.features != model.features() {
        return Err(Error::bad_file(
            path,
            format!(
                "\"features\" is {} but the input shape and planes give {}",
                file.features,
                model.features()
            ),
        ));
    }
    if file.size_bits != model.size_bits() {
        return Err(Error::bad_file(
            path,
            format!(
                "\"size_bits\" is {} but the layers hold {} bits",
                file.size_bits,
                model.size_bits()
            ),
        ));
    }
    if file.classes != model.classes() {
        return Err(Error::bad_file(
            path,
            format!(
                "\"classes\" is {} but the output layer has {}",
                file.classes,
                model.classes()
            ),
        ));
    }
    Ok(model)
}
