//! The model's JSON form (`docs/model-format.md` describes it field by field).
//!
//! Weight rows are hex strings: byte `k` of a row holds inputs `8k..8k+8`, input `8k + t` in bit
//! `t`, each byte written as two lower-case hex digits, bytes in increasing order. A row of `N`
//! inputs is `2 * ceil(N / 8)` digits; bits past input `N - 1` are zero.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{BinaryMatrix, Dense, InputShape, IntModel, Layer, Provenance, Scores, Shape};
use crate::bitslice::PlaneSet;
use crate::error::{Error, Result};
use crate::layers::{Conv, MaxPool, Padding};
use crate::util::atomic;

/// Value of the `format` field.
pub const FORMAT: &str = "cbnn-model";
/// Version of the format this build writes.
pub const VERSION: u32 = 2;
/// Oldest version this build reads (version 1: dense threshold layers and the output layer,
/// without shapes).
pub const OLDEST_VERSION: u32 = 1;

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

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LayerFile {
    kind: LayerKind,
    /// Version 2: the shape the layer receives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input: Option<Shape>,
    /// Version 2: the shape it hands on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output: Option<Shape>,
    /// Conv: window side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kernel: Option<usize>,
    /// Conv: border handling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    padding: Option<Padding>,
    /// Maxpool: window side and stride.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pool: Option<usize>,
    /// Weight columns (inputs per neuron or window bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inputs: Option<usize>,
    /// Weight rows (neurons, classes or output channels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outputs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weights: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thresholds: Option<Vec<u32>>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Clone, Copy, Default, Debug)]
#[serde(rename_all = "snake_case")]
enum LayerKind {
    #[default]
    Threshold,
    Output,
    Conv,
    Maxpool,
}

impl LayerKind {
    fn name(self) -> &'static str {
        match self {
            LayerKind::Threshold => "threshold",
            LayerKind::Output => "output",
            LayerKind::Conv => "conv",
            LayerKind::Maxpool => "maxpool",
        }
    }
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

fn matrix_from_hex(
    path: &Path,
    layer: usize,
    rows: &[String],
    inputs: usize,
    outputs: usize,
) -> Result<BinaryMatrix> {
    let bad = |msg: String| Error::bad_file(path, format!("layer {layer}: {msg}"));
    if rows.len() != outputs {
        return Err(bad(format!(
            "{} weight rows for {outputs} outputs",
            rows.len()
        )));
    }
    let digits = 2 * inputs.div_ceil(8);
    // Every row is checked against the declared size before the matrix is allocated, so the
    // allocation is bounded by the data actually in the file.
    for (r, hex) in rows.iter().enumerate() {
        if hex.len() != digits {
            return Err(bad(format!(
                "weight row {r} has {} hex digits; {inputs} inputs need {digits}",
                hex.len()
            )));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad(format!("weight row {r} is not lower-case hexadecimal")));
        }
    }
    let mut out = BinaryMatrix::new(outputs, inputs);
    for (r, hex) in rows.iter().enumerate() {
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
            .any(|(i, &w)| w & !super::valid_mask(inputs, i) != 0)
        {
            return Err(bad(format!(
                "weight row {r} sets bits past input {}",
                inputs - 1
            )));
        }
    }
    Ok(out)
}

/// Serialises a model to its JSON text.
pub fn to_json(model: &IntModel) -> String {
    let shapes = model.shapes();
    let layers: Vec<LayerFile> = model
        .layers
        .iter()
        .zip(shapes.windows(2))
        .map(|(l, io)| {
            let matrix = |kind, w: &BinaryMatrix, t: Option<&Vec<u32>>| LayerFile {
                kind,
                input: Some(io[0]),
                output: Some(io[1]),
                inputs: Some(w.cols()),
                outputs: Some(w.rows()),
                weights: Some(matrix_to_hex(w)),
                thresholds: t.cloned(),
                ..LayerFile::default()
            };
            match l {
                Layer::Dense(l) => matrix(LayerKind::Threshold, &l.weights, Some(&l.thresholds)),
                Layer::Conv(l) => LayerFile {
                    kernel: Some(l.kernel),
                    padding: Some(l.padding),
                    ..matrix(LayerKind::Conv, &l.weights, Some(&l.thresholds))
                },
                Layer::MaxPool(l) => LayerFile {
                    kind: LayerKind::Maxpool,
                    input: Some(io[0]),
                    output: Some(io[1]),
                    pool: Some(l.size),
                    ..LayerFile::default()
                },
                Layer::Scores(l) => matrix(LayerKind::Output, &l.weights, None),
            }
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
        Some(v) if (OLDEST_VERSION as u64..=VERSION as u64).contains(&v) => {}
        Some(v) => {
            return Err(Error::bad_file(
                path,
                format!(
                    "model format version {v} is not supported; this build reads versions \
                     {OLDEST_VERSION} to {VERSION}"
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
    // Walk the layer chain: each layer's declared sizes are checked against the shape it
    // receives before its weights are decoded, and each weight row before its matrix is
    // allocated, so allocation is bounded by the data in the file.
    let InputShape {
        height,
        width,
        channels,
    } = file.input;
    let features = height
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
    let mut shape = Shape {
        height,
        width,
        channels: channels * planes.len(),
    };
    debug_assert_eq!(shape.len(), features);
    let mut weight_bits: u64 = 0;
    let mut layers = Vec::with_capacity(file.layers.len());
    for (i, l) in file.layers.iter().enumerate() {
        let bad = |msg: String| Error::bad_file(path, format!("layer {i}: {msg}"));
        let field = |name: &str| bad(format!("a {} layer needs \"{name}\"", l.kind.name()));
        let refuse = |name: &str, present: bool| {
            if present {
                Err(bad(format!("a {} layer has no \"{name}\"", l.kind.name())))
            } else {
                Ok(())
            }
        };
        if file.version < 2 {
            if matches!(l.kind, LayerKind::Conv | LayerKind::Maxpool) {
                return Err(bad(format!(
                    "kind \"{}\" needs model format version 2",
                    l.kind.name()
                )));
            }
            if l.input.is_some() || l.output.is_some() {
                return Err(bad(
                    "\"input\" and \"output\" shapes need model format version 2".into(),
                ));
            }
        }
        if let Some(declared) = l.input {
            if declared != shape {
                return Err(bad(format!(
                    "\"input\" is {declared} but the layer receives {shape}"
                )));
            }
        }
        refuse("kernel", l.kernel.is_some() && l.kind != LayerKind::Conv)?;
        refuse("padding", l.padding.is_some() && l.kind != LayerKind::Conv)?;
        refuse("pool", l.pool.is_some() && l.kind != LayerKind::Maxpool)?;
        let layer = if l.kind == LayerKind::Maxpool {
            refuse("weights", l.weights.is_some())?;
            refuse("thresholds", l.thresholds.is_some())?;
            refuse("inputs", l.inputs.is_some())?;
            refuse("outputs", l.outputs.is_some())?;
            let size = l.pool.ok_or_else(|| field("pool"))?;
            Layer::MaxPool(MaxPool { size })
        } else {
            let inputs = l.inputs.ok_or_else(|| field("inputs"))?;
            let outputs = l.outputs.ok_or_else(|| field("outputs"))?;
            if outputs == 0 || outputs > super::MAX_LAYER_INPUTS {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "layer {i} has {outputs} outputs; between 1 and {} are possible",
                        super::MAX_LAYER_INPUTS
                    ),
                ));
            }
            let expected = match l.kind {
                LayerKind::Conv => {
                    let k = l.kernel.ok_or_else(|| field("kernel"))?;
                    l.padding.ok_or_else(|| field("padding"))?;
                    k.checked_mul(k)
                        .and_then(|w| w.checked_mul(shape.channels))
                        .filter(|&w| w <= super::MAX_LAYER_INPUTS)
                        .ok_or_else(|| bad(format!("a kernel of {k} is too large")))?
                }
                _ => shape.len(),
            };
            if inputs != expected {
                let name = if l.kind == LayerKind::Output {
                    "output layer".to_string()
                } else {
                    format!("layer {i}")
                };
                return Err(Error::bad_file(
                    path,
                    format!("{name} has {inputs} inputs but receives {expected}"),
                ));
            }
            weight_bits += inputs as u64 * outputs as u64;
            if weight_bits > super::MAX_WEIGHT_BITS {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "the layers declare more than {} weight bits, the most a model may have",
                        super::MAX_WEIGHT_BITS
                    ),
                ));
            }
            let rows = l.weights.as_deref().ok_or_else(|| field("weights"))?;
            let weights = matrix_from_hex(path, i, rows, inputs, outputs)?;
            match l.kind {
                LayerKind::Output => {
                    if i + 1 != file.layers.len() {
                        return Err(bad("only the last layer may be of kind \"output\"".into()));
                    }
                    refuse("thresholds", l.thresholds.is_some()).map_err(|_| {
                        Error::bad_file(path, "the output layer must not have thresholds")
                    })?;
                    Layer::Scores(Scores { weights })
                }
                LayerKind::Threshold => Layer::Dense(Dense {
                    weights,
                    thresholds: l
                        .thresholds
                        .clone()
                        .ok_or_else(|| bad("a threshold layer needs \"thresholds\"".into()))?,
                }),
                _ => Layer::Conv(Conv {
                    kernel: l.kernel.unwrap_or(0),
                    padding: l.padding.unwrap_or(Padding::Valid),
                    weights,
                    thresholds: l.thresholds.clone().ok_or_else(|| field("thresholds"))?,
                }),
            }
        };
        let s = layer.semantics();
        s.check(shape).map_err(|msg| {
            Error::bad_file(
                path,
                match s.produces() {
                    crate::layers::Produces::Scores => format!("output layer {msg}"),
                    crate::layers::Produces::Bits => format!("layer {i} {msg}"),
                },
            )
        })?;
        shape = s.output_shape(shape);
        if let Some(declared) = l.output {
            if declared != shape {
                return Err(bad(format!(
                    "\"output\" is {declared} but the layer hands on {shape}"
                )));
            }
        }
        layers.push(layer);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::Rng;

    fn conv_model_text() -> String {
        let mut rng = Rng::new(33, 0);
        let input = InputShape {
            height: 8,
            width: 8,
            channels: 1,
        };
        let m =
            crate::layers::tests::random_model(&mut rng, input, &[7, 6], &["c4k3s", "p2", "d5"], 3);
        to_json(&m)
    }

    fn edit(text: &str, f: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        f(&mut v);
        serde_json::to_string(&v).unwrap()
    }

    fn error(text: &str) -> String {
        from_json(Path::new("m.json"), text)
            .unwrap_err()
            .to_string()
    }

    /// A version-1 file (no shapes, dense layers only) loads as the same model.
    #[test]
    fn version_1_files_keep_loading() {
        let mut rng = Rng::new(34, 0);
        let m = crate::reference::tests::random_model(&mut rng, 12, &[7, 5], &[9, 4], 3);
        let v1 = edit(&to_json(&m), |v| {
            v["version"] = 1.into();
            for l in v["layers"].as_array_mut().unwrap() {
                let l = l.as_object_mut().unwrap();
                l.remove("input");
                l.remove("output");
            }
        });
        assert_eq!(from_json(Path::new("v1.json"), &v1).unwrap(), m);
        let conv_v1 = edit(&conv_model_text(), |v| v["version"] = 1.into());
        assert!(error(&conv_v1).contains("needs model format version 2"));
    }

    /// Malformed conv and pool layers: one sentence naming the file, the layer and the field.
    #[test]
    fn malformed_conv_layers_name_the_file_and_field() {
        let text = conv_model_text();
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|v| {
                    v["layers"][0].as_object_mut().unwrap().remove("kernel");
                }),
                "m.json: layer 0: a conv layer needs \"kernel\"",
            ),
            (
                Box::new(|v| v["layers"][0]["kernel"] = 4.into()),
                "m.json: layer 0 has 18 inputs but receives 32",
            ),
            (
                Box::new(|v| v["layers"][0]["padding"] = "diagonal".into()),
                "m.json: invalid model: unknown variant `diagonal`",
            ),
            (
                Box::new(|v| v["layers"][1]["weights"] = serde_json::json!(["00"])),
                "m.json: layer 1: a maxpool layer has no \"weights\"",
            ),
            (
                Box::new(|v| v["layers"][1]["pool"] = 9.into()),
                "m.json: layer 1 has a 9x9 pool but receives 8x8 positions",
            ),
            (
                Box::new(|v| v["layers"][1]["output"]["height"] = 3.into()),
                "m.json: layer 1: \"output\" is 3x4x4 but the layer hands on 4x4x4",
            ),
            (
                Box::new(|v| v["layers"][0]["input"]["channels"] = 1.into()),
                "m.json: layer 0: \"input\" is 8x8x1 but the layer receives 8x8x2",
            ),
            (
                Box::new(|v| v["layers"][2]["kernel"] = 3.into()),
                "m.json: layer 2: a threshold layer has no \"kernel\"",
            ),
        ];
        for (f, expect) in cases {
            let err = error(&edit(&text, f));
            assert!(err.starts_with(expect), "{err}\nexpected: {expect}");
        }
        let even = edit(&text, |v| {
            let l = &mut v["layers"][0];
            l["kernel"] = 2.into();
            l["inputs"] = 8.into();
            l["weights"] = serde_json::json!(["00", "ff", "0f", "f0"]);
        });
        let err = error(&even);
        assert!(
            err.starts_with(
                "m.json: layer 0 has an even kernel 2 with \"same\" padding; \"same\" needs an odd kernel"
            ),
            "{err}"
        );
    }
}
