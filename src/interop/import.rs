//! A binary network in QONNX, as Brevitas exports it, lowered exactly to cbnn's integer model.
//!
//! The graph must be a chain from its one input to its one output of:
//!
//! - `BipolarQuant(x, a)` (scale `a > 0`, one value for the tensor): the `±1` activations,
//!   first on the input features, then after every hidden layer;
//! - per layer `MatMul(x, W)` or `Gemm(x, W[, C])` (`transA = 0`, any `transB`, `alpha > 0`),
//!   the weights `W` an initializer of `±s_j` values (a positive scale per output, or zero), or
//!   `BipolarQuant(W0, s)` of one; then optionally `Add` of a bias, `Mul` by a factor (one, or
//!   one per output) and `BatchNormalization`, as cbnn's own QONNX export writes them too;
//! - `Identity` and `Flatten` (axis 1) anywhere: they change nothing a flat feature vector has.
//!
//! A hidden neuron `j` with `N` inputs, `m` of which match its weights' signs, computes
//! `z(m) = bn(alpha * a * s_j * (2m - N) + b_j)`, monotone in `m`, and the next `BipolarQuant`
//! gives `+1` iff `z(m) >= 0`: the threshold is the least `m` with `z(m) >= 0`, found by the
//! same search as the trainer's lowering (`crate::model::first_true`) over the batch-norm
//! function in double precision; a decreasing `z` (a negative batch-norm scale) inverts the
//! weight row, and a constant one (a zero scale) gives an always-on or always-off neuron. The
//! output layer's scores `alpha * a * s * (2m - N) + b` (`s` the weight scale times any `Mul`
//! factor, `b` one bias for every class) are an increasing function of cbnn's
//! `matches` `m` when its weight scale `s` is one positive value: the classes and their order
//! are the same.
//!
//! Everything else is refused with one sentence naming the node: multi-bit `Quant` nodes,
//! per-channel activation scales, a batch norm or a bias that differs between classes on the
//! output layer (they reorder the classes in a way integer matches cannot), weights of more
//! than two values per output, and any other operator.

use std::collections::HashMap;

use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataLocation, tensor_proto::DataType,
    AttributeProto, Message, ModelProto, NodeProto, TensorProto,
};

use crate::bitslice::PlaneSet;
use crate::error::{Error, Result};
use crate::model::{BinaryMatrix, Dense, InputShape, IntModel, Provenance};

/// How the features of the imported graph map to images, when the graph does not say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    /// The kept planes, most significant first.
    pub planes: Option<PlaneSet>,
    /// The image shape.
    pub input: Option<InputShape>,
}

/// What the import found besides the model.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The integer model.
    pub model: IntModel,
    /// How the planes and the image shape were chosen (`given`, `metadata` or `inferred`).
    pub shape_source: &'static str,
    /// Nodes of the graph.
    pub nodes: usize,
}

/// A float tensor (`dims` row-major).
#[derive(Clone, Debug)]
struct Tensor {
    dims: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    fn scalar(&self) -> Option<f32> {
        (self.data.len() == 1).then(|| self.data[0])
    }
}

fn refuse(node: &NodeProto, what: impl std::fmt::Display) -> Error {
    Error::usage(format!(
        "node {} ({}): {what}",
        node_name(node),
        node.op_type
    ))
}

fn node_name(node: &NodeProto) -> String {
    if node.name.is_empty() {
        node.output.first().cloned().unwrap_or_default()
    } else {
        node.name.clone()
    }
}

fn tensor(t: &TensorProto) -> std::result::Result<Tensor, String> {
    if t.data_location.enum_value() == Ok(DataLocation::EXTERNAL) || !t.external_data.is_empty() {
        return Err(format!(
            "tensor {} is stored in an external file; save the model with its data inside \
             (in Python: onnx.save(onnx.load(M), M, save_as_external_data=False))",
            t.name
        ));
    }
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("tensor {} has a dimension {d}", t.name)))
        .collect::<std::result::Result<_, _>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&c| c <= 1 << 28)
        .ok_or_else(|| format!("tensor {} has absurd dimensions {dims:?}", t.name))?;
    let data: Vec<f32> = match t.data_type {
        x if x == DataType::FLOAT as i32 => {
            if !t.raw_data.is_empty() {
                t.raw_data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            } else {
                t.float_data.clone()
            }
        }
        x if x == DataType::DOUBLE as i32 => {
            if !t.raw_data.is_empty() {
                t.raw_data
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                    .collect()
            } else {
                t.double_data.iter().map(|&v| v as f32).collect()
            }
        }
        x if x == DataType::INT64 as i32 => {
            if !t.raw_data.is_empty() {
                t.raw_data
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                    .collect()
            } else {
                t.int64_data.iter().map(|&v| v as f32).collect()
            }
        }
        other => {
            return Err(format!(
                "tensor {} has element type {other}; cbnn reads float, double and int64 tensors",
                t.name
            ))
        }
    };
    if data.len() != count {
        return Err(format!(
            "tensor {} declares dimensions {dims:?} but holds {} values",
            t.name,
            data.len()
        ));
    }
    Ok(Tensor { dims, data })
}

fn attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_f(node: &NodeProto, name: &str, default: f32) -> f32 {
    attribute(node, name).map_or(default, |a| a.f)
}

fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    attribute(node, name).map_or(default, |a| a.i)
}

/// The graph as a chain: constants, and which node reads each tensor.
struct Chain<'a> {
    consts: HashMap<String, Tensor>,
    producer: HashMap<&'a str, &'a NodeProto>,
    consumers: HashMap<&'a str, Vec<&'a NodeProto>>,
}

impl<'a> Chain<'a> {
    fn constant(&self, node: &NodeProto, name: &str) -> Result<&Tensor> {
        self.consts.get(name).ok_or_else(|| {
            refuse(
                node,
                format!("its input {name} is computed; cbnn imports it only as a constant"),
            )
        })
    }

    /// The one node that reads `tensor` on the activation path, if any.
    fn next(&self, tensor: &str) -> Result<Option<&'a NodeProto>> {
        let readers = self.consumers.get(tensor).map_or(&[][..], |v| &v[..]);
        match readers {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            [first, ..] => Err(refuse(
                first,
                format!(
                    "tensor {tensor} feeds {} nodes; cbnn imports a chain of layers",
                    readers.len()
                ),
            )),
        }
    }

    /// The weights of a `MatMul`/`Gemm`, as `[rows = outputs][cols = inputs]` and per row its
    /// magnitude (`None` when the row holds more than two values).
    fn weights(&self, node: &NodeProto, name: &str, transposed: bool) -> Result<Tensor> {
        let w =
            match self.consts.get(name) {
                Some(t) => t.clone(),
                None => {
                    let q = self.producer.get(name).ok_or_else(|| {
                        refuse(node, format!("its weight input {name} comes from nowhere"))
                    })?;
                    match q.op_type.as_str() {
                        "BipolarQuant" => {
                            let w0 = self.constant(q, &q.input[0])?;
                            let s = self.constant(q, input(q, 1)?)?;
                            bipolar(q, w0, s)?
                        }
                        "Quant" => return Err(refuse(
                            q,
                            "a multi-bit Quant on the weights; cbnn imports binary (BipolarQuant) \
                             weights only",
                        )),
                        _ => {
                            return Err(refuse(
                                q,
                                "the weights of a layer must be a constant or BipolarQuant of one",
                            ))
                        }
                    }
                }
            };
        if w.dims.len() != 2 {
            return Err(refuse(
                node,
                format!(
                    "its weights have dimensions {:?}; cbnn imports matrices",
                    w.dims
                ),
            ));
        }
        if transposed {
            return Ok(w);
        }
        let (r, c) = (w.dims[0], w.dims[1]);
        let mut t = vec![0.0; r * c];
        for i in 0..r {
            for j in 0..c {
                t[j * r + i] = w.data[i * c + j];
            }
        }
        Ok(Tensor {
            dims: vec![c, r],
            data: t,
        })
    }
}

fn input(node: &NodeProto, i: usize) -> Result<&str> {
    node.input
        .get(i)
        .map(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| refuse(node, format!("it has no input {i}")))
}

/// `BipolarQuant(w, s)`: `±s`, `s` broadcast against `w` (a scalar, or one value per row or
/// per column of a matrix).
fn bipolar(node: &NodeProto, w: &Tensor, s: &Tensor) -> Result<Tensor> {
    let (rows, cols) = match w.dims[..] {
        [r, c] => (r, c),
        _ => {
            return Err(refuse(
                node,
                format!("it quantizes a tensor of dimensions {:?}", w.dims),
            ))
        }
    };
    let scale = |i: usize, j: usize| -> Option<f32> {
        match (s.data.len(), &s.dims[..]) {
            (1, _) => Some(s.data[0]),
            (n, [r, 1]) if n == rows && *r == rows => Some(s.data[i]),
            (n, [1, c]) | (n, [c]) if n == cols && *c == cols => Some(s.data[j]),
            _ => None,
        }
    };
    let mut data = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        for j in 0..cols {
            let s = scale(i, j).ok_or_else(|| {
                refuse(
                    node,
                    format!(
                        "its scale of dimensions {:?} does not broadcast to {:?}",
                        s.dims, w.dims
                    ),
                )
            })?;
            data.push(if w.data[i * cols + j] >= 0.0 { s } else { -s });
        }
    }
    Ok(Tensor {
        dims: w.dims.clone(),
        data,
    })
}

/// A positive scalar scale of an activation `BipolarQuant`.
fn activation_scale(chain: &Chain, node: &NodeProto) -> Result<f64> {
    let s = chain.constant(node, input(node, 1)?)?;
    let a = s.scalar().ok_or_else(|| {
        refuse(
            node,
            format!(
                "a per-channel activation scale ({} values); cbnn imports one scale per \
                 activation tensor",
                s.data.len()
            ),
        )
    })?;
    if !(a > 0.0 && a.is_finite()) {
        return Err(refuse(
            node,
            format!("its scale {a} is not positive; cbnn imports positive activation scales"),
        ));
    }
    Ok(a as f64)
}

/// A batch norm of one output: `(gamma, beta, mean, var, epsilon)`.
type Norm = (f64, f64, f64, f64, f64);

/// One linear layer read off the chain: its weight signs, per output its coefficient on
/// `2m - N` and its bias, and the batch norm after it.
struct Linear<'a> {
    node: &'a NodeProto,
    signs: BinaryMatrix,
    /// Per output: `alpha * a * s_j`.
    slope: Vec<f64>,
    /// Per output: the bias (`beta * C_j` plus any `Add`).
    bias: Vec<f64>,
    /// `(gamma, beta, mean, var, epsilon)` per output.
    bn: Option<Vec<Norm>>,
    /// The tensor after the layer.
    out: String,
}

fn vector(node: &NodeProto, t: &Tensor, n: usize, what: &str) -> Result<Vec<f64>> {
    match t.data.len() {
        1 => Ok(vec![t.data[0] as f64; n]),
        len if len == n => Ok(t.data.iter().map(|&v| v as f64).collect()),
        len => Err(refuse(
            node,
            format!("its {what} has {len} values for {n} outputs"),
        )),
    }
}

/// Reads `MatMul`/`Gemm`, then `Add` and `BatchNormalization` if they follow.
fn linear<'a>(chain: &Chain<'a>, node: &'a NodeProto, x: &str, a: f64) -> Result<Linear<'a>> {
    if input(node, 0)? != x {
        return Err(refuse(node, "the activations must be its first input"));
    }
    let (transposed, alpha, beta) = match node.op_type.as_str() {
        "MatMul" => (false, 1.0, 1.0),
        _ => {
            if attr_i(node, "transA", 0) != 0 {
                return Err(refuse(node, "transA = 1; cbnn imports transA = 0"));
            }
            (
                attr_i(node, "transB", 0) != 0,
                attr_f(node, "alpha", 1.0),
                attr_f(node, "beta", 1.0),
            )
        }
    };
    if !(alpha > 0.0 && alpha.is_finite()) {
        return Err(refuse(node, format!("alpha {alpha} is not positive")));
    }
    let w = chain.weights(node, input(node, 1)?, transposed)?;
    let (rows, cols) = (w.dims[0], w.dims[1]);
    let mut signs = BinaryMatrix::new(rows, cols);
    let mut slope = Vec::with_capacity(rows);
    for j in 0..rows {
        let row = &w.data[j * cols..(j + 1) * cols];
        let s = row.first().map_or(0.0, |v| v.abs());
        if let Some(v) = row.iter().find(|v| v.abs() != s || !v.is_finite()) {
            return Err(refuse(
                node,
                format!(
                    "output {j} has weights of magnitudes {s} and {}; cbnn imports binary \
                     weights (two values, ±s, per output)",
                    v.abs()
                ),
            ));
        }
        for (i, &v) in row.iter().enumerate() {
            signs.set(j, i, v >= 0.0);
        }
        slope.push(alpha as f64 * a * s as f64);
    }
    let mut bias = vec![0.0; rows];
    if node.op_type == "Gemm" && node.input.len() > 2 && !node.input[2].is_empty() {
        let c = chain.constant(node, &node.input[2])?;
        for (b, v) in bias.iter_mut().zip(vector(node, c, rows, "bias")?) {
            *b += beta as f64 * v;
        }
    }
    let mut out = node.output[0].clone();
    let mut bn = None;
    while let Some(next) = chain.next(&out)? {
        match next.op_type.as_str() {
            op @ ("Add" | "Mul") if bn.is_none() => {
                // The operand that is not the activations: a constant, one or one per output.
                let other = next
                    .input
                    .iter()
                    .find(|i| **i != out)
                    .ok_or_else(|| refuse(next, "both its operands are the activations"))?;
                let c = vector(next, chain.constant(next, other)?, rows, "constant")?;
                for (j, v) in c.into_iter().enumerate() {
                    if op == "Add" {
                        bias[j] += v;
                    } else {
                        slope[j] *= v;
                        bias[j] *= v;
                    }
                }
            }
            "BatchNormalization" if bn.is_none() => {
                if input(next, 0)? != out {
                    return Err(refuse(next, "the activations must be its first input"));
                }
                let p = |i: usize, what: &str| -> Result<Vec<f64>> {
                    vector(next, chain.constant(next, input(next, i)?)?, rows, what)
                };
                let (g, b, m, v) = (
                    p(1, "scale")?,
                    p(2, "bias")?,
                    p(3, "mean")?,
                    p(4, "variance")?,
                );
                let eps = attr_f(next, "epsilon", 1e-5) as f64;
                if let Some(j) = (0..rows).find(|&j| v[j] + eps <= 0.0 || (v[j] + eps).is_nan()) {
                    return Err(refuse(
                        next,
                        format!("output {j} has a variance plus epsilon of {}", v[j] + eps),
                    ));
                }
                bn = Some((0..rows).map(|j| (g[j], b[j], m[j], v[j], eps)).collect());
            }
            "Identity" => {}
            _ => break,
        }
        out = next.output[0].clone();
    }
    Ok(Linear {
        node,
        signs,
        slope,
        bias,
        bn,
        out,
    })
}

impl Linear<'_> {
    /// The integer threshold layer this linear layer and the `BipolarQuant` after it are.
    fn dense(mut self) -> Dense {
        let n = self.signs.cols();
        let mut thresholds = Vec::with_capacity(self.signs.rows());
        for j in 0..self.signs.rows() {
            let (slope, bias) = (self.slope[j], self.bias[j]);
            let bn = self.bn.as_ref().map(|b| b[j]);
            let z = |m: usize| -> f64 {
                let y = slope * (2.0 * m as f64 - n as f64) + bias;
                match bn {
                    Some((g, b, mean, var, eps)) => g * (y - mean) / (var + eps).sqrt() + b,
                    None => y,
                }
            };
            let direction = slope * bn.map_or(1.0, |b| b.0);
            let t = if direction > 0.0 {
                crate::model::first_true(n, |m| z(m) >= 0.0)
            } else if direction < 0.0 {
                self.signs.invert_row(j);
                crate::model::first_true(n, |q| z(n - q) >= 0.0)
            } else if z(0) >= 0.0 {
                0
            } else {
                n as u32 + 1
            };
            thresholds.push(t);
        }
        Dense {
            weights: self.signs,
            thresholds,
        }
    }

    /// The output layer: the weight signs, if the scores keep the order of the matches.
    fn scores(self) -> Result<BinaryMatrix> {
        if self.bn.is_some() {
            return Err(refuse(
                self.node,
                "a batch norm on the output layer; its per-class scale and shift reorder the \
                 classes, which integer matches cannot",
            ));
        }
        if self.bias.iter().any(|&b| b != self.bias[0]) {
            return Err(refuse(
                self.node,
                "a bias on the output layer that differs between classes; it reorders the \
                 classes, which integer matches cannot",
            ));
        }
        let s = self.slope[0];
        if s <= 0.0 || s.is_nan() || self.slope.iter().any(|&v| v != s) {
            return Err(refuse(
                self.node,
                "the output layer's weight scale is not one positive value for every class; \
                 its scores would not keep the order of the matches",
            ));
        }
        Ok(self.signs)
    }
}

/// Reads the `cbnn.*` metadata of a graph cbnn wrote, or infers a 28x28x1 input.
fn shape_of(
    meta: &HashMap<String, String>,
    features: usize,
    options: &Options,
) -> Result<(PlaneSet, InputShape, &'static str)> {
    let from_meta = || -> Option<(PlaneSet, InputShape)> {
        let planes: Vec<u8> = meta
            .get("cbnn.planes")?
            .split(',')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        let dims: Vec<usize> = meta
            .get("cbnn.input")?
            .split('x')
            .map(|d| d.parse().ok())
            .collect::<Option<_>>()?;
        let [height, width, channels] = dims[..] else {
            return None;
        };
        Some((
            PlaneSet::new(&planes).ok()?,
            InputShape {
                height,
                width,
                channels,
            },
        ))
    };
    let (planes, input, source) = match (&options.planes, &options.input, from_meta()) {
        (Some(p), Some(i), _) => (p.clone(), *i, "given"),
        (None, None, Some((p, i))) => (p, i, "metadata"),
        (p, i, _) => {
            let input = i.unwrap_or(InputShape {
                height: 28,
                width: 28,
                channels: 1,
            });
            let planes = match p {
                Some(p) => p.clone(),
                None => {
                    let k = features / input.pixels().max(1);
                    if k == 0 || k > 8 || k * input.pixels() != features {
                        return Err(Error::usage(format!(
                            "the graph takes {features} features, which is no number of planes \
                             of a {}x{}x{} image; give --input HxWxC and --planes",
                            input.height, input.width, input.channels
                        )));
                    }
                    PlaneSet::new(&(8 - k as u8..8).rev().collect::<Vec<_>>())?
                }
            };
            let source = if p.is_some() && i.is_some() {
                "given"
            } else {
                "inferred"
            };
            (planes, input, source)
        }
    };
    if planes.len() * input.pixels() != features {
        return Err(Error::usage(format!(
            "the graph takes {features} features, but {} planes of a {}x{}x{} image are {}",
            planes.len(),
            input.height,
            input.width,
            input.channels,
            planes.len() * input.pixels()
        )));
    }
    Ok((planes, input, source))
}

/// The integer model of the QONNX graph `bytes`.
pub fn import(bytes: &[u8], options: &Options) -> Result<Imported> {
    let model = ModelProto::parse_from_bytes(bytes)
        .map_err(|e| Error::usage(format!("not an ONNX model ({e})")))?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| Error::usage("the ONNX model has no graph"))?;
    let mut consts = HashMap::new();
    for t in &graph.initializer {
        consts.insert(t.name.clone(), tensor(t).map_err(Error::usage)?);
    }
    let mut producer = HashMap::new();
    let mut consumers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
    for n in &graph.node {
        if n.op_type == "Constant" {
            let value = attribute(n, "value")
                .filter(|a| a.type_.enum_value() == Ok(AttributeType::TENSOR))
                .and_then(|a| a.t.as_ref())
                .ok_or_else(|| refuse(n, "cbnn reads Constant nodes of a tensor value only"))?;
            let out = n
                .output
                .first()
                .ok_or_else(|| refuse(n, "it has no output"))?;
            consts.insert(out.clone(), tensor(value).map_err(|e| refuse(n, e))?);
            continue;
        }
        if !n.domain.is_empty()
            && n.domain != "ai.onnx"
            && !n.domain.starts_with("qonnx.custom_op")
            && !n.domain.starts_with("finn.custom_op")
        {
            return Err(refuse(
                n,
                format!("operator domain {} is unknown", n.domain),
            ));
        }
        for o in &n.output {
            producer.insert(o.as_str(), n);
        }
        for i in &n.input {
            if !consts.contains_key(i) {
                consumers.entry(i.as_str()).or_default().push(n);
            }
        }
    }
    let inputs: Vec<&str> = graph
        .input
        .iter()
        .map(|v| v.name.as_str())
        .filter(|n| !consts.contains_key(*n))
        .collect();
    let [x0] = inputs[..] else {
        return Err(Error::usage(format!(
            "the graph has {} inputs besides its constants; cbnn imports graphs of one",
            inputs.len()
        )));
    };
    let [output] = &graph.output[..] else {
        return Err(Error::usage(format!(
            "the graph has {} outputs; cbnn imports graphs of one (the class scores)",
            graph.output.len()
        )));
    };
    let chain = Chain {
        consts,
        producer,
        consumers,
    };

    let mut x = x0.to_string();
    let mut a: Option<f64> = None;
    let mut hidden: Vec<Dense> = Vec::new();
    let mut pending: Option<Linear> = None;
    let mut features = None;
    while let Some(node) = chain.next(&x)? {
        match node.op_type.as_str() {
            "Identity" => {}
            "Flatten" if attr_i(node, "axis", 1) == 1 => {}
            "BipolarQuant" => {
                if input(node, 0)? != x {
                    return Err(refuse(
                        node,
                        "it quantizes a constant on the activation path",
                    ));
                }
                if a.is_some() && pending.is_none() {
                    return Err(refuse(node, "two activation quantizers in a row"));
                }
                a = Some(activation_scale(&chain, node)?);
                if let Some(l) = pending.take() {
                    hidden.push(l.dense());
                }
            }
            "MatMul" | "Gemm" => {
                let Some(scale) = a.take() else {
                    return Err(refuse(
                        node,
                        if pending.is_some() {
                            "two linear layers without an activation quantizer (BipolarQuant) \
                             between them"
                        } else {
                            "the input is not quantized to ±1 (BipolarQuant) before the first \
                             layer; cbnn's first layer is binary"
                        },
                    ));
                };
                let l = linear(&chain, node, &x, scale)?;
                features.get_or_insert(l.signs.cols());
                x = l.out.clone();
                pending = Some(l);
                continue;
            }
            "Quant" => {
                let bits = chain
                    .consts
                    .get(node.input.get(3).map(|s| s.as_str()).unwrap_or(""))
                    .and_then(|t| t.scalar());
                return Err(refuse(
                    node,
                    format!(
                        "a multi-bit Quant{}; cbnn imports binary (BipolarQuant) activations \
                         only",
                        bits.map_or(String::new(), |b| format!(" of {b} bits"))
                    ),
                ));
            }
            "BatchNormalization" | "Add" | "Mul" => return Err(refuse(
                node,
                "it follows no linear layer; cbnn imports batch norm, bias and factors only after \
                     MatMul or Gemm",
            )),
            other => {
                return Err(refuse(
                    node,
                    format!(
                        "cbnn does not import {other} nodes (it imports binary MLPs: \
                             BipolarQuant, MatMul, Gemm, Add, Mul, BatchNormalization)"
                    ),
                ))
            }
        }
        x = node.output[0].clone();
    }
    if x != output.name {
        return Err(Error::usage(format!(
            "the chain from the input ends at {x}, not at the graph's output {}",
            output.name
        )));
    }
    let last = pending.ok_or_else(|| {
        Error::usage("the graph does not end with a linear layer (the class scores)")
    })?;
    let scores = last.scores()?;
    let features = features.expect("a layer was read");
    let meta: HashMap<String, String> = model
        .metadata_props
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();
    let (planes, input, shape_source) = shape_of(&meta, features, options)?;
    let provenance = Provenance {
        tool: format!("cbnn {}", env!("CARGO_PKG_VERSION")),
        command: "import".into(),
        dataset: String::new(),
        seed: 0,
        epochs: 0,
        best_epoch: 0,
        train_images: 0,
        val_images: 0,
        val_accuracy: 0.0,
        test_accuracy: None,
        hyper: serde_json::json!({
            "producer": format!("{} {}", model.producer_name, model.producer_version),
        }),
    };
    let model_out = IntModel::mlp(input, planes, hidden, scores, provenance);
    model_out.validate(std::path::Path::new("the imported graph"))?;
    Ok(Imported {
        model: model_out,
        shape_source,
        nodes: graph.node.len(),
    })
}
