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
use crate::layers::{Conv, GroupSum, Lut, MaxPool, Padding, MAX_FAN_IN};
use crate::util::atomic;

/// Value of the `format` field.
pub const FORMAT: &str = "cbnn-model";
/// Newest version of the format this build reads and writes. A model is written with the
/// oldest version that can hold it: 2 for dense, convolution and pool layers, 3 when it has
/// logic-mapped layers (`lut`, `group_sum`).
pub const VERSION: u32 = 3;
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
    /// Lut: inputs each neuron reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fan_in: Option<usize>,
    /// Lut: per neuron, the indices of the received values it reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connections: Option<Vec<Vec<u32>>>,
    /// Lut: per neuron, its truth table in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tables: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Clone, Copy, Default, Debug)]
#[serde(rename_all = "snake_case")]
enum LayerKind {
    #[default]
    Threshold,
    Output,
    Conv,
    Maxpool,
    Lut,
    GroupSum,
}

impl LayerKind {
    fn name(self) -> &'static str {
        match self {
            LayerKind::Threshold => "threshold",
            LayerKind::Output => "output",
            LayerKind::Conv => "conv",
            LayerKind::Maxpool => "maxpool",
            LayerKind::Lut => "lut",
            LayerKind::GroupSum => "group_sum",
        }
    }

    /// The oldest format version that has the kind.
    fn since(self) -> u32 {
        match self {
            LayerKind::Threshold | LayerKind::Output => 1,
            LayerKind::Conv | LayerKind::Maxpool => 2,
            LayerKind::Lut | LayerKind::GroupSum => 3,
        }
    }
}

/// Hex digits of a truth table of `2^fan_in` bits.
fn table_digits(fan_in: usize) -> usize {
    (1usize << fan_in).div_ceil(4)
}

/// A truth table as hex: the table read as a `2^fan_in`-bit number, most significant digit
/// first (entry `a` is bit `a` of the number).
fn table_to_hex(table: u64, fan_in: usize) -> String {
    format!("{table:0w$x}", w = table_digits(fan_in))
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
                Layer::Lut(l) => LayerFile {
                    kind: LayerKind::Lut,
                    input: Some(io[0]),
                    output: Some(io[1]),
                    inputs: Some(io[0].len()),
                    outputs: Some(l.neurons()),
                    fan_in: Some(l.fan_in),
                    connections: Some(
                        l.connections
                            .chunks(l.fan_in)
                            .map(<[u32]>::to_vec)
                            .collect(),
                    ),
                    tables: Some(
                        l.tables
                            .iter()
                            .map(|&t| table_to_hex(t, l.fan_in))
                            .collect(),
                    ),
                    ..LayerFile::default()
                },
                Layer::GroupSum(l) => LayerFile {
                    kind: LayerKind::GroupSum,
                    input: Some(io[0]),
                    output: Some(io[1]),
                    inputs: Some(io[0].len()),
                    outputs: Some(l.classes),
                    ..LayerFile::default()
                },
            }
        })
        .collect();
    let version = layers
        .iter()
        .map(|l| l.kind.since())
        .max()
        .unwrap_or(1)
        .max(2);
    let file = ModelFile {
        format: FORMAT.into(),
        version,
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

/// The largest model file read: 2 GiB, room for the most weight bits a model may have (2^32,
/// 1 GiB as hexadecimal text) and their JSON.
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// Reads and validates a model file.
pub fn load(path: &Path) -> Result<IntModel> {
    let text = crate::util::input::read_text_capped(path, MAX_FILE_BYTES, "a model file")?;
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
    if !matches!(last.kind, LayerKind::Output | LayerKind::GroupSum) {
        return Err(Error::bad_file(
            path,
            "the last layer must be of kind \"output\" (or \"group_sum\")",
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
        if file.version < l.kind.since() {
            return Err(bad(format!(
                "kind \"{}\" needs model format version {}",
                l.kind.name(),
                l.kind.since()
            )));
        }
        if file.version < 2 && (l.input.is_some() || l.output.is_some()) {
            return Err(bad(
                "\"input\" and \"output\" shapes need model format version 2".into(),
            ));
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
        refuse("fan_in", l.fan_in.is_some() && l.kind != LayerKind::Lut)?;
        refuse(
            "connections",
            l.connections.is_some() && l.kind != LayerKind::Lut,
        )?;
        refuse("tables", l.tables.is_some() && l.kind != LayerKind::Lut)?;
        let layer = if matches!(l.kind, LayerKind::Lut | LayerKind::GroupSum) {
            refuse("weights", l.weights.is_some())?;
            refuse("thresholds", l.thresholds.is_some())?;
            let inputs = l.inputs.ok_or_else(|| field("inputs"))?;
            let outputs = l.outputs.ok_or_else(|| field("outputs"))?;
            if inputs != shape.len() {
                return Err(bad(format!(
                    "has {inputs} inputs but receives {}",
                    shape.len()
                )));
            }
            if outputs == 0 || outputs > super::MAX_LAYER_INPUTS {
                return Err(bad(format!(
                    "has {outputs} outputs; between 1 and {} are possible",
                    super::MAX_LAYER_INPUTS
                )));
            }
            if l.kind == LayerKind::GroupSum {
                Layer::GroupSum(GroupSum { classes: outputs })
            } else {
                lut_from_file(l, outputs).map_err(bad)?
            }
        } else if l.kind == LayerKind::Maxpool {
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

/// The `lut` layer of `l`, which declares `neurons` outputs.
fn lut_from_file(l: &LayerFile, neurons: usize) -> std::result::Result<Layer, String> {
    let need = |name: &str| format!("a lut layer needs \"{name}\"");
    let fan_in = l.fan_in.ok_or_else(|| need("fan_in"))?;
    if fan_in == 0 || fan_in > MAX_FAN_IN {
        return Err(format!(
            "has fan-in {fan_in}; between 1 and {MAX_FAN_IN} are possible"
        ));
    }
    let conns = l
        .connections
        .as_deref()
        .ok_or_else(|| need("connections"))?;
    let tables = l.tables.as_deref().ok_or_else(|| need("tables"))?;
    for (name, n) in [("connections", conns.len()), ("tables", tables.len())] {
        if n != neurons {
            return Err(format!("has {n} {name} for {neurons} neurons"));
        }
    }
    if let Some(j) = conns.iter().position(|c| c.len() != fan_in) {
        return Err(format!(
            "neuron {j} has {} connections; its fan-in is {fan_in}",
            conns[j].len()
        ));
    }
    let digits = table_digits(fan_in);
    let tables = tables
        .iter()
        .enumerate()
        .map(|(j, hex)| {
            let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
            if hex.len() != digits || !hex.bytes().all(lower_hex) {
                return Err(format!(
                    "neuron {j}'s table must be {digits} hex digits, not \"{}\"",
                    hex.chars().take(20).collect::<String>()
                ));
            }
            u64::from_str_radix(hex, 16).map_err(|e| format!("neuron {j}'s table: {e}"))
        })
        .collect::<std::result::Result<Vec<u64>, String>>()?;
    Ok(Layer::Lut(Lut {
        fan_in,
        connections: conns.concat(),
        tables,
    }))
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

    fn lut_model() -> IntModel {
        let mut rng = Rng::new(35, 0);
        let input = InputShape {
            height: 6,
            width: 5,
            channels: 1,
        };
        crate::layers::tests::random_lut_model(&mut rng, input, &[7, 5], &[(17, 6), (12, 2)], 3)
    }

    /// A logic-mapped model round-trips through its file (written as version 3, the oldest
    /// that has its kinds; models without them stay version 2), and malformed `lut` and
    /// `group_sum` layers get one sentence naming the file, the layer and the field.
    #[test]
    fn lut_models_round_trip_and_malformed_ones_are_named() {
        let m = lut_model();
        let text = to_json(&m);
        assert_eq!(from_json(Path::new("m.json"), &text).unwrap(), m);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], 3);
        assert_eq!(v["layers"][1]["tables"][0].as_str().unwrap().len(), 1);
        assert_eq!(v["layers"][0]["tables"][0].as_str().unwrap().len(), 16);
        let conv: serde_json::Value = serde_json::from_str(&conv_model_text()).unwrap();
        assert_eq!(conv["version"], 2);
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(Edit, &str)> =
            vec![
            (
                Box::new(|v| v["version"] = 2.into()),
                "m.json: layer 0: kind \"lut\" needs model format version 3",
            ),
            (
                Box::new(|v| v["layers"][0]["fan_in"] = 7.into()),
                "m.json: layer 0: has fan-in 7; between 1 and 6 are possible",
            ),
            (
                Box::new(|v| v["layers"][0]["connections"][2][1] = 60.into()),
                "m.json: layer 0 neuron 2 reads input 60, but it receives 60 values",
            ),
            (
                Box::new(|v| {
                    v["layers"][0]["connections"][4].as_array_mut().unwrap().pop();
                }),
                "m.json: layer 0: neuron 4 has 5 connections; its fan-in is 6",
            ),
            (
                Box::new(|v| v["layers"][1]["tables"][3] = "A".into()),
                "m.json: layer 1: neuron 3's table must be 1 hex digits, not \"A\"",
            ),
            (
                Box::new(|v| {
                    v["layers"][1]["tables"].as_array_mut().unwrap().pop();
                }),
                "m.json: layer 1: has 11 tables for 12 neurons",
            ),
            (
                Box::new(|v| v["layers"][0]["weights"] = serde_json::json!(["00"])),
                "m.json: layer 0: a lut layer has no \"weights\"",
            ),
            (
                Box::new(|v| v["layers"][2]["outputs"] = 5.into()),
                "m.json: output layer receives 12 values, which do not split into 5 equal groups",
            ),
            (
                Box::new(|v| {
                    v["layers"][1]["connections"] = serde_json::json!([[0, 1]]);
                }),
                "m.json: layer 1: has 1 connections for 12 neurons",
            ),
            (
                Box::new(|v| {
                    v["layers"][2]["fan_in"] = 2.into();
                }),
                "m.json: layer 2: a group_sum layer has no \"fan_in\"",
            ),
        ];
        for (i, (f, want)) in cases.iter().enumerate() {
            let got = error(&edit(&text, f));
            assert!(got.starts_with(want), "case {i}: {got}");
        }
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
