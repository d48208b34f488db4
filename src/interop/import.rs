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
//!
//! A hostile file gets one sentence too, never a panic, a hang or an unbounded allocation,
//! because the graph is checked as a whole before any of it is used (`Chain::new`):
//!
//! - the file is read through a cap of [`MAX_FILE_BYTES`] (1 GiB, [`read`]), and parsed only
//!   when what the parser would allocate for its messages, walked at the wire level first
//!   ([`super::wire::parse_cost`]), is at most [`MAX_PARSE_BYTES`] (2 GiB);
//! - every node has an output, and every operator cbnn reads has the inputs it takes
//!   (`check_arity`), so no later step indexes an input or output that is not there;
//! - every tensor has one definition (a graph input, an initializer or one node's output), and
//!   the nodes have a topological order (`topological_order`): a node on a cycle is named,
//!   and the walk along the chain, which moves from a node to a reader of its output, ends;
//! - every constant's declared size is computed with checked arithmetic, capped at
//!   [`MAX_TENSOR_ELEMENTS`] in every dimension and in all, and compared with the bytes it
//!   holds before anything is allocated; every float constant (initializers, `Constant` nodes,
//!   float attributes) is finite (`tensor`, `attr_f`), and so is every scale and bias
//!   folded from them;
//! - every layer has between 1 and [`crate::model::MAX_LAYER_INPUTS`] inputs and outputs, the
//!   image shape is computed with checked arithmetic ([`feature_count`]), and the model is
//!   returned only when the model loader accepts its text, so `cbnn import` never writes a
//!   model other commands refuse.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataLocation, tensor_proto::DataType,
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, TensorProto,
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

/// The largest ONNX file read: 1 GiB, the IDX reader's bound too, and as much as the largest
/// tensor taken ([`MAX_TENSOR_ELEMENTS`] float32 values) holds.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Most elements a tensor may declare, in any one dimension and in all (2^28: 1 GiB of
/// float32, as much as [`MAX_FILE_BYTES`]).
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 28;

/// The most memory the protobuf parser may need to read a graph, as [`super::wire::parse_cost`]
/// bounds it before parsing: 2 GiB, room for a graph of [`MAX_FILE_BYTES`] of tensors (their
/// bytes are copied once), while a file of empty messages, which the parser would expand about
/// 160-fold, is refused.
pub const MAX_PARSE_BYTES: u64 = 2 << 30;

/// Reads an ONNX file of at most [`MAX_FILE_BYTES`]. A larger regular file is refused before
/// it is read, anything else (a pipe, a device such as `/dev/zero`) after one byte more than
/// the cap.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    crate::util::input::read_capped(path, MAX_FILE_BYTES, "an ONNX file")
}

fn refuse(node: &NodeProto, what: impl std::fmt::Display) -> Error {
    Error::usage(format!(
        "node {} ({}): {what}",
        node_name(node),
        node.op_type
    ))
}

/// The node's name, else its first output (every node has one, [`check_arity`]).
fn node_name(node: &NodeProto) -> String {
    if node.name.is_empty() {
        node.output.first().cloned().unwrap_or_default()
    } else {
        node.name.clone()
    }
}

/// The inputs of each operator cbnn reads: how many it needs, and how many more it may have.
/// Each has one output.
fn arity(op: &str) -> Option<(usize, usize)> {
    Some(match op {
        "Constant" => (0, 0),
        "Identity" | "Flatten" => (1, 0),
        "BipolarQuant" | "MatMul" | "Add" | "Mul" => (2, 0),
        "Gemm" => (2, 1),
        "Quant" => (4, 0),
        "BatchNormalization" => (5, 0),
        _ => return None,
    })
}

/// The one place where nodes' inputs and outputs are counted: every node has a first output,
/// and every operator cbnn reads has its inputs (none of the required ones empty) and one
/// output, so later steps may index them. `index` names a node with neither name nor output.
fn check_arity(index: usize, node: &NodeProto) -> Result<()> {
    if node.output.first().is_none_or(|o| o.is_empty()) {
        let name = if node.name.is_empty() {
            format!("number {index}")
        } else {
            node.name.clone()
        };
        return Err(Error::usage(format!(
            "node {name} ({}) has no output; every ONNX node has at least one",
            node.op_type
        )));
    }
    let Some((required, optional)) = arity(&node.op_type) else {
        return Ok(());
    };
    let given = node.input.len();
    if given < required
        || given > required + optional
        || node.input[..required].iter().any(|i| i.is_empty())
    {
        let takes = match optional {
            0 => required.to_string(),
            _ => format!("{required} or {}", required + optional),
        };
        let present = node.input.iter().filter(|i| !i.is_empty()).count();
        return Err(refuse(
            node,
            format!("it has {present} inputs; {} takes {takes}", node.op_type),
        ));
    }
    let outputs = node.output.iter().filter(|o| !o.is_empty()).count();
    if outputs > 1 {
        return Err(refuse(
            node,
            format!(
                "it has {outputs} outputs; cbnn imports {} nodes of one",
                node.op_type
            ),
        ));
    }
    Ok(())
}

/// An order of the nodes in which each comes after the nodes whose outputs it reads (Kahn's
/// algorithm); `writer` maps each tensor to the one node that writes it. A graph with a cycle
/// has none: a node on the cycle is named.
fn topological_order(nodes: &[NodeProto], writer: &HashMap<&str, usize>) -> Result<Vec<usize>> {
    let inputs = |j: usize| {
        nodes[j]
            .input
            .iter()
            .filter_map(|t| writer.get(t.as_str()).map(|&i| (t, i)))
    };
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut waiting = vec![0usize; nodes.len()];
    for (j, wait) in waiting.iter_mut().enumerate() {
        for (_, i) in inputs(j) {
            readers[i].push(j);
            *wait += 1;
        }
    }
    let mut ready: Vec<usize> = (0..nodes.len()).filter(|&j| waiting[j] == 0).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop() {
        order.push(i);
        for &j in &readers[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push(j);
            }
        }
    }
    let Some(start) = (0..nodes.len()).find(|&j| waiting[j] > 0) else {
        return Ok(order);
    };
    // Every node left waits for a node that is left too: going back from one to a writer of
    // its inputs that is left comes round to a node seen before, which is on a cycle.
    let mut seen = HashSet::new();
    let mut node = start;
    loop {
        let (tensor, writer) = inputs(node)
            .find(|&(_, i)| waiting[i] > 0)
            .expect("a node left waits for another one left");
        if !seen.insert(node) {
            return Err(refuse(
                &nodes[node],
                format!(
                    "its input {tensor} depends on its own output (a cycle); ONNX graphs are \
                     acyclic"
                ),
            ));
        }
        node = writer;
    }
}

/// A float tensor's values, read after its declared size has been checked: each dimension and
/// their product (checked arithmetic) at most [`MAX_TENSOR_ELEMENTS`], and exactly the values
/// (or bytes) the tensor holds, so nothing is allocated that the file does not hold. Every
/// value must be a finite float32: the one place where constants are read.
fn tensor(t: &TensorProto) -> std::result::Result<Tensor, String> {
    if t.data_location.enum_value() == Ok(DataLocation::EXTERNAL) || !t.external_data.is_empty() {
        return Err(format!(
            "tensor {} is stored in an external file; save the model with its data inside \
             (in Python: onnx.save(onnx.load(M), M, save_as_external_data=False))",
            t.name
        ));
    }
    let absurd = || {
        format!(
            "tensor {} has dimensions {:?}; each dimension and their product must be between 0 \
             and {MAX_TENSOR_ELEMENTS}",
            t.name, t.dims
        )
    };
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| {
            usize::try_from(d)
                .ok()
                .filter(|&d| d <= MAX_TENSOR_ELEMENTS)
                .ok_or_else(absurd)
        })
        .collect::<std::result::Result<_, _>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&c| c <= MAX_TENSOR_ELEMENTS)
        .ok_or_else(absurd)?;
    let (size, typed) = match t.data_type {
        x if x == DataType::FLOAT as i32 => (4, t.float_data.len()),
        x if x == DataType::DOUBLE as i32 => (8, t.double_data.len()),
        x if x == DataType::INT64 as i32 => (8, t.int64_data.len()),
        other => {
            return Err(format!(
                "tensor {} has element type {other}; cbnn reads float, double and int64 tensors",
                t.name
            ))
        }
    };
    let raw = &t.raw_data;
    if !raw.is_empty() && Some(raw.len()) != count.checked_mul(size) {
        return Err(format!(
            "tensor {} declares dimensions {dims:?} ({count} values of {size} bytes) but holds \
             {} bytes",
            t.name,
            raw.len()
        ));
    }
    if raw.is_empty() && typed != count {
        return Err(format!(
            "tensor {} declares dimensions {dims:?} but holds {typed} values",
            t.name
        ));
    }
    let data: Vec<f32> = match (t.data_type, raw.is_empty()) {
        (x, false) if x == DataType::FLOAT as i32 => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        (x, true) if x == DataType::FLOAT as i32 => t.float_data.clone(),
        (x, false) if x == DataType::DOUBLE as i32 => raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        (x, true) if x == DataType::DOUBLE as i32 => {
            t.double_data.iter().map(|&v| v as f32).collect()
        }
        (_, false) => raw
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        (_, true) => t.int64_data.iter().map(|&v| v as f32).collect(),
    };
    if let Some((i, v)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(format!(
            "tensor {} holds {v} at element {i}; cbnn imports finite float32 constants only",
            t.name
        ));
    }
    Ok(Tensor { dims, data })
}

fn attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// A float attribute, which must be finite (the float constants of attributes).
fn attr_f(node: &NodeProto, name: &str, default: f32) -> Result<f32> {
    let v = attribute(node, name).map_or(default, |a| a.f);
    if !v.is_finite() {
        return Err(refuse(
            node,
            format!("its attribute {name} is {v}; cbnn imports finite constants only"),
        ));
    }
    Ok(v)
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
    /// Checks the graph as a whole (the module's list) and indexes it; nothing of it is used
    /// before.
    fn new(graph: &'a GraphProto) -> Result<Chain<'a>> {
        let nodes = &graph.node;
        let mut writer: HashMap<&str, usize> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            check_arity(i, n)?;
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                if let Some(&first) = writer.get(o.as_str()) {
                    return Err(refuse(
                        n,
                        format!(
                            "it writes {o}, which node {} writes too; an ONNX graph defines \
                             each tensor once",
                            node_name(&nodes[first])
                        ),
                    ));
                }
                writer.insert(o, i);
            }
        }
        topological_order(nodes, &writer)?;
        let mut defined: HashSet<&str> = HashSet::new();
        let mut consts = HashMap::new();
        for t in &graph.initializer {
            if !defined.insert(&t.name) {
                return Err(Error::usage(format!(
                    "tensor {} is given twice as an initializer; an ONNX graph defines each \
                     tensor once",
                    t.name
                )));
            }
            consts.insert(t.name.clone(), tensor(t).map_err(Error::usage)?);
        }
        defined.extend(graph.input.iter().map(|v| v.name.as_str()));
        for n in nodes {
            let out = &n.output[0];
            if defined.contains(out.as_str()) {
                return Err(refuse(
                    n,
                    format!(
                        "it writes {out}, which is an input or initializer of the graph; an \
                         ONNX graph defines each tensor once"
                    ),
                ));
            }
            if n.op_type == "Constant" {
                let value = attribute(n, "value")
                    .filter(|a| a.type_.enum_value() == Ok(AttributeType::TENSOR))
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| refuse(n, "cbnn reads Constant nodes of a tensor value only"))?;
                consts.insert(out.clone(), tensor(value).map_err(|e| refuse(n, e))?);
            }
        }
        let mut producer = HashMap::new();
        let mut consumers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
        for n in nodes.iter().filter(|n| n.op_type != "Constant") {
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
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                producer.insert(o.as_str(), n);
            }
            let mut read: HashSet<&str> = HashSet::new();
            for i in &n.input {
                if !i.is_empty() && !consts.contains_key(i) && read.insert(i) {
                    consumers.entry(i.as_str()).or_default().push(n);
                }
            }
        }
        Ok(Chain {
            consts,
            producer,
            consumers,
        })
    }

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
                attr_f(node, "alpha", 1.0)?,
                attr_f(node, "beta", 1.0)?,
            )
        }
    };
    if !(alpha > 0.0 && alpha.is_finite()) {
        return Err(refuse(node, format!("alpha {alpha} is not positive")));
    }
    let w = chain.weights(node, input(node, 1)?, transposed)?;
    let (rows, cols) = (w.dims[0], w.dims[1]);
    let most = crate::model::MAX_LAYER_INPUTS;
    if !(1..=most).contains(&rows) || !(1..=most).contains(&cols) {
        return Err(refuse(
            node,
            format!(
                "its weights give {rows} outputs for {cols} inputs; a layer has between 1 and \
                 {most} of each"
            ),
        ));
    }
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
                let eps = attr_f(next, "epsilon", 1e-5)? as f64;
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
    // Finite constants can still multiply to infinity (many `Mul` nodes in a row).
    if let Some(j) = (0..rows).find(|&j| !(slope[j].is_finite() && bias[j].is_finite())) {
        return Err(refuse(
            node,
            format!(
                "output {j}'s scale and bias, folded with the nodes after it, are {} and {}; \
                 cbnn imports finite ones only",
                slope[j], bias[j]
            ),
        ));
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
                    let pixels = feature_count(1, &input).unwrap_or(usize::MAX);
                    let k = features / pixels;
                    if k == 0 || k > 8 || k * pixels != features {
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
    let given = feature_count(planes.len(), &input);
    if given != Some(features) {
        return Err(Error::usage(format!(
            "the graph takes {features} features, but {} planes of a {}x{}x{} image are {}",
            planes.len(),
            input.height,
            input.width,
            input.channels,
            given.map_or(
                format!("more than {}", crate::model::MAX_LAYER_INPUTS),
                |f| f.to_string()
            )
        )));
    }
    Ok((planes, input, source))
}

/// The features of `planes` planes of images of `input`, by the model loader's rule: every
/// dimension at least 1 and the product (checked arithmetic) at most
/// [`crate::model::MAX_LAYER_INPUTS`]; `None` otherwise.
pub fn feature_count(planes: usize, input: &InputShape) -> Option<usize> {
    input
        .height
        .checked_mul(input.width)?
        .checked_mul(input.channels)?
        .checked_mul(planes)
        .filter(|f| (1..=crate::model::MAX_LAYER_INPUTS).contains(f))
}

/// The integer model of the QONNX graph `bytes`.
pub fn import(bytes: &[u8], options: &Options) -> Result<Imported> {
    let cost = super::wire::parse_cost(bytes, super::wire::Onnx::Model);
    if cost > MAX_PARSE_BYTES {
        return Err(Error::usage(format!(
            "the graph's protobuf messages would take up to {:.1} GiB of memory to read (the \
             file holds many small or empty messages), more than the {} GiB cbnn lets an ONNX \
             graph take",
            cost as f64 / (1u64 << 30) as f64,
            MAX_PARSE_BYTES >> 30
        )));
    }
    let model = ModelProto::parse_from_bytes(bytes)
        .map_err(|e| Error::usage(format!("not an ONNX model ({e})")))?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| Error::usage("the ONNX model has no graph"))?;
    let chain = Chain::new(graph)?;
    let inputs: Vec<&str> = graph
        .input
        .iter()
        .map(|v| v.name.as_str())
        .filter(|n| !chain.consts.contains_key(*n))
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
    // Each step goes from a node to the one node that reads its output, later in the graph's
    // topological order (`Chain::new`), so the walk visits each node at most once.
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
    // The model loader's own checks, on the text that is written: what is imported loads.
    crate::model::from_json(Path::new("import"), &crate::model::json_text(&model_out)).map_err(
        |e| {
            let why = match e {
                Error::BadFile { msg, .. } => msg,
                other => other.to_string(),
            };
            Error::usage(format!("its layers do not make a valid cbnn model: {why}"))
        },
    )?;
    Ok(Imported {
        model: model_out,
        shape_source,
        nodes: graph.node.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interop::onnx::{export, Format};
    use onnx_protobuf::ValueInfoProto;

    /// A valid QONNX graph: cbnn's export of a model of 2x2x1 images, plane 7, a hidden layer of
    /// 3 and 2 classes. Its nodes: `BipolarQuant_0` (the features), `BipolarQuant_1` (`w0`),
    /// `MatMul_2`, `Add_3` (`bias0`), `BipolarQuant_4`, `BipolarQuant_5` (`w1`), `MatMul_6`,
    /// `Add_7` (`n1`) and `Mul_8` (`half`), which gives `scores`.
    fn tiny() -> (IntModel, ModelProto) {
        let mut w0 = BinaryMatrix::new(3, 4);
        let mut w1 = BinaryMatrix::new(2, 3);
        for (r, c) in [(0, 0), (0, 3), (1, 1), (2, 2), (2, 3)] {
            w0.set(r, c, true);
        }
        w1.set(1, 2, true);
        let model = IntModel::mlp(
            InputShape {
                height: 2,
                width: 2,
                channels: 1,
            },
            PlaneSet::new(&[7]).unwrap(),
            vec![Dense {
                weights: w0,
                thresholds: vec![0, 2, 5],
            }],
            w1,
            Provenance::default(),
        );
        let bytes = export(&model, Format::Qonnx, 1).unwrap();
        (model, ModelProto::parse_from_bytes(&bytes).unwrap())
    }

    fn run(m: &ModelProto) -> Result<Imported> {
        import(&m.write_to_bytes().unwrap(), &Options::default())
    }

    /// The import's error, which must contain `needle` and be one line.
    fn refused(m: &ModelProto, needle: &str) -> String {
        let e = run(m).expect_err(needle).to_string();
        assert!(e.contains(needle), "expected {needle:?} in: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        e
    }

    fn graph(m: &mut ModelProto) -> &mut GraphProto {
        m.graph.as_mut().unwrap()
    }

    fn node<'a>(m: &'a mut ModelProto, name: &str) -> &'a mut NodeProto {
        graph(m).node.iter_mut().find(|n| n.name == name).unwrap()
    }

    fn initializer<'a>(m: &'a mut ModelProto, name: &str) -> &'a mut TensorProto {
        graph(m)
            .initializer
            .iter_mut()
            .find(|t| t.name == name)
            .unwrap()
    }

    fn new_node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.name = name.into();
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = outputs.iter().map(|s| s.to_string()).collect();
        n
    }

    #[test]
    fn cbnns_own_graph_imports_back() {
        let (model, m) = tiny();
        let back = run(&m).unwrap().model;
        assert_eq!(back.layers, model.layers);
        assert_eq!((back.input, back.planes), (model.input, model.planes));
    }

    #[test]
    fn a_cycle_is_named_and_never_walked() {
        // On the walk from the input (it once went round forever): i2 writes the graph's input.
        let mut m = tiny().1;
        let g = graph(&mut m);
        g.node[0].input[0] = "elsewhere".into();
        g.node
            .push(new_node("Identity", "i1", &["features"], &["b"]));
        g.node
            .push(new_node("Identity", "i2", &["b"], &["features"]));
        let e = refused(
            &m,
            "depends on its own output (a cycle); ONNX graphs are acyclic",
        );
        assert!(
            e.contains("node i1 (Identity): its input features")
                || e.contains("node i2 (Identity): its input b"),
            "{e}"
        );
        // Off the chain, and a node reading its own output.
        let mut m = tiny().1;
        let g = graph(&mut m);
        g.node.push(new_node("Identity", "i1", &["q"], &["p"]));
        g.node.push(new_node("Identity", "i2", &["p"], &["q"]));
        refused(&m, "depends on its own output (a cycle)");
        let mut m = tiny().1;
        graph(&mut m)
            .node
            .push(new_node("Identity", "self", &["s"], &["s"]));
        refused(
            &m,
            "node self (Identity): its input s depends on its own output",
        );
    }

    #[test]
    fn every_tensor_is_defined_once() {
        let mut m = tiny().1;
        graph(&mut m)
            .node
            .push(new_node("Identity", "again", &["features"], &["dot0"]));
        refused(
            &m,
            "node again (Identity): it writes dot0, which node MatMul_2 writes too",
        );
        let mut m = tiny().1;
        graph(&mut m)
            .node
            .push(new_node("Identity", "shadow", &["x1"], &["w1"]));
        refused(
            &m,
            "it writes w1, which is an input or initializer of the graph",
        );
        let mut m = tiny().1;
        let t = initializer(&mut m, "w1").clone();
        graph(&mut m).initializer.push(t);
        refused(&m, "tensor w1 is given twice as an initializer");
    }

    #[test]
    fn every_nodes_inputs_and_outputs_are_counted_before_use() {
        let mut m = tiny().1;
        node(&mut m, "BipolarQuant_5").input.clear();
        refused(
            &m,
            "node BipolarQuant_5 (BipolarQuant): it has 0 inputs; BipolarQuant takes 2",
        );
        let mut m = tiny().1;
        node(&mut m, "BipolarQuant_1").input[1] = String::new();
        refused(&m, "it has 1 inputs; BipolarQuant takes 2");
        let mut m = tiny().1;
        node(&mut m, "MatMul_6").op_type = "Gemm".into();
        node(&mut m, "MatMul_6").input = vec!["x1".into(), "w1_q".into(), "c".into(), "d".into()];
        refused(&m, "it has 4 inputs; Gemm takes 2 or 3");
        let mut m = tiny().1;
        node(&mut m, "Add_3").output.push("extra".into());
        refused(
            &m,
            "node Add_3 (Add): it has 2 outputs; cbnn imports Add nodes of one",
        );
        for op in ["Identity", "Relu"] {
            let mut m = tiny().1;
            graph(&mut m).node.push(new_node(op, "", &["x1"], &[]));
            refused(&m, &format!("node number 9 ({op}) has no output"));
        }
        let mut m = tiny().1;
        node(&mut m, "Mul_8").output = vec![String::new()];
        refused(&m, "node Mul_8 (Mul) has no output");
    }

    #[test]
    fn layers_of_no_outputs_or_inputs_are_refused() {
        for dims in [[3, 0], [0, 2]] {
            let mut m = tiny().1;
            let w = initializer(&mut m, "w1");
            w.dims = dims.to_vec();
            w.float_data.clear();
            refused(
                &m,
                &format!(
                    "node MatMul_6 (MatMul): its weights give {} outputs for {} inputs; a layer \
                     has between 1 and 67108864 of each",
                    dims[1], dims[0]
                ),
            );
        }
    }

    #[test]
    fn tensor_sizes_are_checked_before_anything_is_allocated() {
        for dims in [
            vec![0, 1 << 40],
            vec![1 << 20, 1 << 20],
            vec![-1, 2],
            vec![1 << 29, 0],
        ] {
            let mut m = tiny().1;
            let w = initializer(&mut m, "w1");
            w.dims = dims.clone();
            w.float_data.clear();
            refused(
                &m,
                &format!(
                    "tensor w1 has dimensions {dims:?}; each dimension and their product must \
                     be between 0 and 268435456"
                ),
            );
        }
        // Raw bytes must be exactly what the dimensions say, not more and not less.
        for extra in [1, 4] {
            let mut m = tiny().1;
            let w = initializer(&mut m, "w1");
            w.raw_data = w.float_data.iter().flat_map(|v| v.to_le_bytes()).collect();
            w.raw_data.extend(std::iter::repeat_n(0, extra));
            w.float_data.clear();
            refused(
                &m,
                &format!(
                    "tensor w1 declares dimensions [3, 2] (6 values of 4 bytes) but holds {}",
                    24 + extra
                ),
            );
        }
        let mut m = tiny().1;
        initializer(&mut m, "w1").float_data.pop();
        refused(
            &m,
            "tensor w1 declares dimensions [3, 2] but holds 5 values",
        );
    }

    #[test]
    fn every_float_constant_is_finite() {
        // The same infinite output bias for every class once imported as exact.
        for v in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            let mut m = tiny().1;
            initializer(&mut m, "n1").float_data = vec![v];
            refused(
                &m,
                &format!(
                    "tensor n1 holds {v} at element 0; cbnn imports finite float32 constants only"
                ),
            );
        }
        let mut m = tiny().1;
        let t = initializer(&mut m, "bias0");
        t.data_type = DataType::DOUBLE as i32;
        t.double_data = vec![1.0, 1e300, 0.0];
        t.float_data.clear();
        refused(&m, "tensor bias0 holds inf at element 1");
        // A Constant node's tensor, and a float attribute.
        let mut m = tiny().1;
        let mut t = initializer(&mut m, "half").clone();
        t.float_data = vec![f32::NAN];
        let mut c = new_node("Constant", "k", &[], &["half"]);
        let mut a = AttributeProto::new();
        a.name = "value".into();
        a.type_ = AttributeType::TENSOR.into();
        a.t = Some(t).into();
        c.attribute.push(a);
        let g = graph(&mut m);
        g.initializer.retain(|t| t.name != "half");
        g.node.insert(0, c);
        refused(&m, "node k (Constant): tensor half holds NaN at element 0");
        let mut m = tiny().1;
        let g = node(&mut m, "MatMul_6");
        g.op_type = "Gemm".into();
        let mut a = AttributeProto::new();
        a.name = "alpha".into();
        a.type_ = AttributeType::FLOAT.into();
        a.f = f32::INFINITY;
        g.attribute.push(a);
        refused(&m, "node MatMul_6 (Gemm): its attribute alpha is inf");
        // Finite factors whose product is not: ten Mul nodes of 1e38 after the hidden layer.
        let mut m = tiny().1;
        let mut big = initializer(&mut m, "half").clone();
        big.name = "big".into();
        big.float_data = vec![1e38];
        let g = graph(&mut m);
        g.initializer.push(big);
        let at = g
            .node
            .iter()
            .position(|n| n.name == "BipolarQuant_4")
            .unwrap();
        g.node[at].input[0] = "z0_10".into();
        for k in 0..10 {
            let (from, to) = (format!("z0_{k}"), format!("z0_{}", k + 1));
            let from = if k == 0 { "z0".to_string() } else { from };
            g.node
                .push(new_node("Mul", &format!("m{k}"), &[&from, "big"], &[&to]));
        }
        refused(
            &m,
            "node MatMul_2 (MatMul): output 0's scale and bias, folded with the nodes after it, \
             are inf and",
        );
    }

    #[test]
    fn an_image_shape_whose_size_wraps_is_refused() {
        // 4 * (2^62 + 1) wraps to the graph's 4 features.
        let mut m = tiny().1;
        for e in m.metadata_props.iter_mut() {
            if e.key == "cbnn.input" {
                e.value = "4x4611686018427387905x1".into();
            }
        }
        refused(
            &m,
            "the graph takes 4 features, but 1 planes of a 4x4611686018427387905x1 image are \
             more than 67108864",
        );
        let options = Options {
            planes: Some(PlaneSet::new(&[7]).unwrap()),
            input: Some(InputShape {
                height: 4,
                width: (1 << 62) + 1,
                channels: 1,
            }),
        };
        let bytes = tiny().1.write_to_bytes().unwrap();
        assert!(import(&bytes, &options).is_err());
        let wraps = InputShape {
            height: 1 << 32,
            width: 1 << 32,
            channels: 1,
        };
        assert_eq!(feature_count(1, &wraps), None);
        assert_eq!(
            feature_count(
                8,
                &InputShape {
                    height: 28,
                    width: 28,
                    channels: 1
                }
            ),
            Some(6272)
        );
    }

    #[test]
    fn files_are_read_through_a_cap() {
        // A regular file larger than the cap is refused before it is read (a sparse file).
        let dir = std::env::temp_dir().join(format!("cbnn-import-cap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.onnx");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        let e = read(&big).unwrap_err().to_string();
        assert!(
            e.contains("big.onnx: holds more than 1 GiB, the most cbnn reads of an ONNX file"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A graph input that is also fed by nothing but itself, and a graph without nodes: no
    /// panic.
    #[test]
    fn empty_and_odd_graphs_are_refused() {
        let mut m = tiny().1;
        graph(&mut m).node.clear();
        refused(&m, "the chain from the input ends at features");
        let mut m = tiny().1;
        graph(&mut m).input.push(ValueInfoProto::new());
        refused(&m, "the graph has 2 inputs besides its constants");
        let mut m = tiny().1;
        m.graph = None.into();
        refused(&m, "the ONNX model has no graph");
    }
}
