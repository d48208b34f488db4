//! An integer model as an ONNX graph in the two dialects of the FINN ecosystem, so that qonnx
//! (and FINN, hls4ml) execute it and get cbnn's class scores exactly.
//!
//! Both graphs take the model's features (the bit planes of the image's pixels in the model's
//! feature order, docs/model-format.md) as a `[batch, features]` float tensor and give the
//! class scores (`matches` of the output layer, integers) as a `[batch, classes]` float tensor.
//!
//! - **QONNX** (`qonnx`): features as `±1` through a `BipolarQuant` node; per threshold layer
//!   `MatMul` with `BipolarQuant`-quantized `±1` weights, which gives `w · x = 2 * matches - N`,
//!   then `Add` of `N - 2T` and `BipolarQuant` (`+1` iff `x >= 0`): `+1` iff `matches >= T`;
//!   the output layer's `MatMul`, `Add N` and `Mul 0.5` give `matches`. A convolution is the
//!   same rule on ONNX's channels-first `Conv` (a `Pad` of `-1` in front for "same" padding,
//!   since `Conv` pads with `0`), a max-pool is `MaxPool`; the features are reshaped to the
//!   image and transposed to channels first before the first of them, and back to cbnn's
//!   row-major, channels-last order before the first dense layer after them. Every value on the
//!   way is a small integer, exact in float32.
//! - **FINN-ONNX** (`finn-onnx`): features as `{0, 1}` bits (annotated `BINARY`); per threshold
//!   layer `XnorPopcountMatMul` with `{0, 1}` weights (`matches` directly) and `MultiThreshold`
//!   with cbnn's thresholds `T` (`1` iff `matches >= T`); the output layer's
//!   `XnorPopcountMatMul` is the scores. A convolution is FINN's lowered form, channels last:
//!   `Im2Col` (its window order `(dy, dx, c)` is cbnn's, its padding value `0` is the bit of
//!   `-1`), `XnorPopcountMatMul` and `MultiThreshold` over the channels; a max-pool is
//!   `MaxPoolNHWC` (the maximum of bits is their OR, as for `±1`).
//!
//! Logic-mapped layers (truth tables) have no operator in either dialect and are refused. The
//! planes, the image shape and the feature order are in the model's `metadata_props`
//! (`cbnn.planes`, `cbnn.input`, `cbnn.features`, `cbnn.classes`). The batch size is fixed
//! (qonnx's executor checks the input's shape against the graph's).

use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorAnnotation, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

use crate::error::{Error, Result};
use crate::layers::{Conv, Layer, Semantics, Shape};
use crate::model::{BinaryMatrix, IntModel};

/// The ONNX dialect written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// QONNX: `BipolarQuant`, `MatMul`, `Add`, `Mul` (what Brevitas exports).
    Qonnx,
    /// FINN-ONNX: `XnorPopcountMatMul`, `MultiThreshold`, datatype annotations.
    FinnOnnx,
}

impl Format {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Qonnx => "qonnx",
            Format::FinnOnnx => "finn-onnx",
        }
    }
}

/// The domain of qonnx's custom operators.
pub const QONNX_DOMAIN: &str = "qonnx.custom_op.general";

/// The graph's input and output names.
pub const INPUT: &str = "features";
/// The class scores.
pub const OUTPUT: &str = "scores";

/// A graph under construction.
struct Builder {
    graph: GraphProto,
    batch: i64,
    format: Format,
}

/// A tensor between two layers: its name, the values it holds and whether it is laid out as
/// positions and channels (channels first in QONNX, last in FINN-ONNX) or as a flat vector.
struct Value {
    name: String,
    shape: Shape,
    spatial: bool,
}

impl Builder {
    /// Adds a node whose output has shape `dims` (the graph's output is declared already).
    fn node(&mut self, op: &str, domain: &str, inputs: &[&str], output: &str, dims: &[i64]) {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.domain = domain.into();
        n.name = format!("{op}_{}", self.graph.node.len());
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![output.to_string()];
        self.graph.node.push(n);
        if output != OUTPUT {
            self.graph.value_info.push(value_info(output, dims));
        }
    }

    /// Adds an attribute to the last node.
    fn attribute(&mut self, name: &str, set: impl FnOnce(&mut AttributeProto)) {
        let mut a = AttributeProto::new();
        a.name = name.into();
        set(&mut a);
        self.graph
            .node
            .last_mut()
            .expect("a node was added")
            .attribute
            .push(a);
    }

    fn attribute_string(&mut self, name: &str, value: &str) {
        self.attribute(name, |a| {
            a.type_ = AttributeType::STRING.into();
            a.s = value.as_bytes().to_vec();
        });
    }

    fn attribute_ints(&mut self, name: &str, values: &[i64]) {
        self.attribute(name, |a| {
            a.type_ = AttributeType::INTS.into();
            a.ints = values.to_vec();
        });
    }

    fn attribute_int(&mut self, name: &str, value: i64) {
        self.attribute(name, |a| {
            a.type_ = AttributeType::INT.into();
            a.i = value;
        });
    }

    fn initializer(&mut self, name: &str, dims: &[i64], data: Vec<f32>) {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = dims.to_vec();
        t.data_type = DataType::FLOAT as i32;
        t.float_data = data;
        self.graph.initializer.push(t);
    }

    /// A 1-D `INT64` initializer (shapes, permutations, pads).
    fn initializer_i64(&mut self, name: &str, data: &[i64]) {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = vec![data.len() as i64];
        t.data_type = DataType::INT64 as i32;
        t.int64_data = data.to_vec();
        self.graph.initializer.push(t);
    }

    /// Annotates `tensor` with a qonnx datatype (`BINARY`, `BIPOLAR`, `UINT8`, ...).
    fn datatype(&mut self, tensor: &str, datatype: &str) {
        let mut a = TensorAnnotation::new();
        a.tensor_name = tensor.into();
        a.quant_parameter_tensor_names
            .push(entry("finn_datatype", datatype));
        self.graph.quantization_annotation.push(a);
    }

    /// The dimensions of a tensor of `shape`, laid out as `spatial` says in this dialect.
    fn dims(&self, shape: Shape, spatial: bool) -> Vec<i64> {
        let (h, w, c) = (
            shape.height as i64,
            shape.width as i64,
            shape.channels as i64,
        );
        match (spatial, self.format) {
            (false, _) => vec![self.batch, shape.len() as i64],
            (true, Format::Qonnx) => vec![self.batch, c, h, w],
            (true, Format::FinnOnnx) => vec![self.batch, h, w, c],
        }
    }

    /// Marks a tensor of bits in the FINN-ONNX dialect (qonnx's `Im2Col`, `MaxPoolNHWC` and
    /// `XnorPopcountMatMul` read their inputs' datatypes).
    fn bits(&mut self, tensor: &str) {
        if self.format == Format::FinnOnnx {
            self.datatype(tensor, "BINARY");
        }
    }

    /// `x` laid out as positions and channels: reshaped from cbnn's row-major, channels-last
    /// order (and, in QONNX, transposed to channels first).
    fn spatial(&mut self, x: Value, stem: &str) -> Value {
        if x.spatial {
            return x;
        }
        let s = x.shape;
        let nhwc = vec![
            self.batch,
            s.height as i64,
            s.width as i64,
            s.channels as i64,
        ];
        let (shape, grid) = (format!("{stem}_shape"), format!("{stem}_nhwc"));
        self.initializer_i64(&shape, &nhwc);
        self.node("Reshape", "", &[&x.name, &shape], &grid, &nhwc);
        self.bits(&grid);
        let name = match self.format {
            Format::FinnOnnx => grid,
            Format::Qonnx => {
                let nchw = format!("{stem}_nchw");
                let dims = self.dims(s, true);
                self.node("Transpose", "", &[&grid], &nchw, &dims);
                self.attribute_ints("perm", &[0, 3, 1, 2]);
                nchw
            }
        };
        Value {
            name,
            shape: s,
            spatial: true,
        }
    }

    /// `x` as a flat vector in cbnn's row-major, channels-last order.
    fn flat(&mut self, x: Value, stem: &str) -> Value {
        if !x.spatial {
            return x;
        }
        let s = x.shape;
        let mut name = x.name;
        if self.format == Format::Qonnx {
            let nhwc = format!("{stem}_nhwc");
            let dims = self.dims(s, true);
            let dims = [dims[0], dims[2], dims[3], dims[1]];
            self.node("Transpose", "", &[&name], &nhwc, &dims);
            self.attribute_ints("perm", &[0, 2, 3, 1]);
            name = nhwc;
        }
        let (shape, flat) = (format!("{stem}_shape"), format!("{stem}_flat"));
        let dims = self.dims(s, false);
        self.initializer_i64(&shape, &dims);
        self.node("Reshape", "", &[&name, &shape], &flat, &dims);
        self.bits(&flat);
        Value {
            name: flat,
            shape: s,
            spatial: false,
        }
    }

    /// A dense layer (`thresholds`) or the output layer (none) on the flat vector `x`; its
    /// result is named `next`.
    fn dense(
        &mut self,
        i: usize,
        x: &str,
        weights: &BinaryMatrix,
        thresholds: Option<&Vec<u32>>,
        next: &str,
    ) {
        let (n, m) = (weights.cols(), weights.rows());
        let out = [self.batch, m as i64];
        let w = format!("w{i}");
        match self.format {
            Format::Qonnx => {
                let dims = [n as i64, m as i64];
                self.initializer(&w, &dims, operand(weights, 1.0, -1.0));
                let wq = format!("{w}_q");
                self.node("BipolarQuant", QONNX_DOMAIN, &[&w, "one"], &wq, &dims);
                let dot = format!("dot{i}");
                self.node("MatMul", "", &[x, &wq], &dot, &out);
                match thresholds {
                    Some(t) => self.threshold(i, &dot, n, t, &[m as i64], &out, next),
                    None => {
                        // matches = (w · x + N) / 2.
                        let (nn, half, sum) = (format!("n{i}"), "half", format!("sum{i}"));
                        self.initializer(&nn, &[], vec![n as f32]);
                        self.initializer(half, &[], vec![0.5]);
                        self.node("Add", "", &[&dot, &nn], &sum, &out);
                        self.node("Mul", "", &[&sum, half], next, &out);
                    }
                }
            }
            Format::FinnOnnx => {
                self.initializer(&w, &[n as i64, m as i64], operand(weights, 1.0, 0.0));
                self.datatype(&w, "BINARY");
                let matches = match thresholds {
                    Some(_) => format!("matches{i}"),
                    None => next.to_string(),
                };
                self.node("XnorPopcountMatMul", QONNX_DOMAIN, &[x, &w], &matches, &out);
                self.datatype(&matches, &uint_type(n));
                if let Some(t) = thresholds {
                    self.multithreshold(i, &matches, t, None, next, &out);
                }
            }
        }
    }

    /// QONNX: `+1` iff `dot = w · x = 2 * matches - N >= 2T - N`: `Add` of `N - 2T` (a
    /// tensor of `bias_dims`, broadcast along the channels), then `BipolarQuant`.
    #[allow(clippy::too_many_arguments)]
    fn threshold(
        &mut self,
        i: usize,
        dot: &str,
        n: usize,
        thresholds: &[u32],
        bias_dims: &[i64],
        out: &[i64],
        next: &str,
    ) {
        let bias: Vec<f32> = thresholds
            .iter()
            .map(|&t| n as f32 - 2.0 * t as f32)
            .collect();
        let (bn, z) = (format!("bias{i}"), format!("z{i}"));
        self.initializer(&bn, bias_dims, bias);
        self.node("Add", "", &[dot, &bn], &z, out);
        self.node("BipolarQuant", QONNX_DOMAIN, &[&z, "one"], next, out);
    }

    /// FINN-ONNX: `1` iff `matches >= T`, channels along `layout` (`None`: the last axis of a
    /// flat vector).
    fn multithreshold(
        &mut self,
        i: usize,
        matches: &str,
        thresholds: &[u32],
        layout: Option<&str>,
        next: &str,
        out: &[i64],
    ) {
        let tn = format!("thresholds{i}");
        let t: Vec<f32> = thresholds.iter().map(|&t| t as f32).collect();
        self.initializer(&tn, &[t.len() as i64, 1], t);
        self.node("MultiThreshold", QONNX_DOMAIN, &[matches, &tn], next, out);
        self.attribute_string("out_dtype", "BINARY");
        if let Some(layout) = layout {
            self.attribute_string("data_layout", layout);
        }
        self.datatype(next, "BINARY");
    }

    /// A binary convolution on the positions of `x`.
    fn conv(&mut self, i: usize, x: &Value, c: &Conv) -> Value {
        let (k, pad, m) = (c.kernel as i64, c.pad() as i64, c.out_channels());
        let n = c.weights.cols();
        let shape = Semantics::output_shape(c, x.shape);
        let out = self.dims(shape, true);
        let next = format!("x{}", i + 1);
        match self.format {
            Format::Qonnx => {
                let mut src = x.name.clone();
                if pad > 0 {
                    // ONNX's Conv pads with 0; cbnn's padding is -1.
                    let (pads, minus_one, padded) =
                        (format!("pads{i}"), "minus_one", format!("padded{i}"));
                    self.initializer_i64(&pads, &[0, 0, pad, pad, 0, 0, pad, pad]);
                    if !self.graph.initializer.iter().any(|t| t.name == minus_one) {
                        self.initializer(minus_one, &[], vec![-1.0]);
                    }
                    let mut grown = x.shape;
                    grown.height += 2 * pad as usize;
                    grown.width += 2 * pad as usize;
                    let dims = self.dims(grown, true);
                    self.node("Pad", "", &[&src, &pads, minus_one], &padded, &dims);
                    self.attribute_string("mode", "constant");
                    src = padded;
                }
                let w = format!("w{i}");
                let cin = c.in_channels();
                let wdims = [m as i64, cin as i64, k, k];
                self.initializer(&w, &wdims, conv_weights(c));
                let wq = format!("{w}_q");
                self.node("BipolarQuant", QONNX_DOMAIN, &[&w, "one"], &wq, &wdims);
                let dot = format!("dot{i}");
                self.node("Conv", "", &[&src, &wq], &dot, &out);
                self.attribute_ints("kernel_shape", &[k, k]);
                self.attribute_ints("strides", &[1, 1]);
                self.threshold(i, &dot, n, &c.thresholds, &[1, m as i64, 1, 1], &out, &next);
            }
            Format::FinnOnnx => {
                let s = x.shape;
                let cols = format!("cols{i}");
                let col_dims = [out[0], out[1], out[2], n as i64];
                self.node("Im2Col", QONNX_DOMAIN, &[&x.name], &cols, &col_dims);
                self.attribute_ints("stride", &[1, 1]);
                self.attribute_ints("kernel_size", &[k, k]);
                let input_shape = format!(
                    "({}, {}, {}, {})",
                    self.batch, s.height, s.width, s.channels
                );
                self.attribute_string("input_shape", &input_shape);
                self.attribute_ints("pad_amount", &[pad, pad, pad, pad]);
                // The bit 0 is the value -1.
                self.attribute_int("pad_value", 0);
                self.datatype(&cols, "BINARY");
                let w = format!("w{i}");
                self.initializer(&w, &[n as i64, m as i64], operand(&c.weights, 1.0, 0.0));
                self.datatype(&w, "BINARY");
                let matches = format!("matches{i}");
                self.node(
                    "XnorPopcountMatMul",
                    QONNX_DOMAIN,
                    &[&cols, &w],
                    &matches,
                    &out,
                );
                self.datatype(&matches, &uint_type(n));
                self.multithreshold(i, &matches, &c.thresholds, Some("NHWC"), &next, &out);
            }
        }
        Value {
            name: next,
            shape,
            spatial: true,
        }
    }

    /// A `p x p` max-pool, stride `p`, on the positions of `x`.
    fn pool(&mut self, i: usize, x: &Value, p: usize) -> Value {
        let shape = crate::layers::pool_output(x.shape, p);
        let out = self.dims(shape, true);
        let next = format!("x{}", i + 1);
        let p = p as i64;
        match self.format {
            Format::Qonnx => {
                self.node("MaxPool", "", &[&x.name], &next, &out);
                self.attribute_ints("kernel_shape", &[p, p]);
                self.attribute_ints("strides", &[p, p]);
            }
            Format::FinnOnnx => {
                self.node("MaxPoolNHWC", QONNX_DOMAIN, &[&x.name], &next, &out);
                self.attribute_ints("kernel_shape", &[p, p]);
                self.attribute_ints("pads", &[0, 0, 0, 0]);
                self.attribute_ints("strides", &[p, p]);
                self.datatype(&next, "BINARY");
            }
        }
        Value {
            name: next,
            shape,
            spatial: true,
        }
    }
}

fn entry(key: &str, value: &str) -> StringStringEntryProto {
    let mut e = StringStringEntryProto::new();
    e.key = key.into();
    e.value = value.into();
    e
}

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for &d in dims {
        let mut dim = tensor_shape_proto::Dimension::new();
        dim.value = Some(tensor_shape_proto::dimension::Value::DimValue(d));
        shape.dim.push(dim);
    }
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = DataType::FLOAT as i32;
    tensor.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tensor));
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(ty).into();
    v
}

/// `weights` (`outputs x inputs`) transposed to the `[inputs, outputs]` operand of `MatMul`,
/// each weight as `plus` or `minus`.
fn operand(weights: &BinaryMatrix, plus: f32, minus: f32) -> Vec<f32> {
    let (rows, cols) = (weights.rows(), weights.cols());
    let mut v = Vec::with_capacity(rows * cols);
    for c in 0..cols {
        for r in 0..rows {
            v.push(if weights.get(r, c) { plus } else { minus });
        }
    }
    v
}

/// A convolution's weights as the `[out, in, k, k]` `±1` kernel of ONNX's `Conv`: element
/// `(m, c, dy, dx)` is bit `(dy * k + dx) * C + c` of channel `m`'s window row.
fn conv_weights(c: &Conv) -> Vec<f32> {
    let (k, cin, m) = (c.kernel, c.in_channels(), c.out_channels());
    let mut v = Vec::with_capacity(m * cin * k * k);
    for o in 0..m {
        for ch in 0..cin {
            for dy in 0..k {
                for dx in 0..k {
                    let bit = c.weights.get(o, (dy * k + dx) * cin + ch);
                    v.push(if bit { 1.0 } else { -1.0 });
                }
            }
        }
    }
    v
}

/// Bits of an unsigned count of `0..=n`.
fn uint_type(n: usize) -> String {
    format!("UINT{}", (usize::BITS - n.leading_zeros()).max(1))
}

/// The model as an ONNX graph of `format` with a fixed batch of `batch` images. Models with
/// layers the dialects cannot express (logic-mapped layers: truth tables) are refused with one
/// sentence naming the first such layer.
pub fn export(model: &IntModel, format: Format, batch: usize) -> Result<Vec<u8>> {
    if let Some((i, l)) = model
        .layers
        .iter()
        .enumerate()
        .find(|(_, l)| matches!(l, Layer::Lut(_) | Layer::GroupSum(_)))
    {
        return Err(Error::usage(format!(
            "layer L{i} is a {} layer: truth tables have no operator in the {} dialect, which \
             takes dense, convolutional, max-pool and output layers",
            l.semantics().kind(),
            format.name()
        )));
    }
    if format == Format::FinnOnnx && batch > 1 {
        if let Some(i) = model
            .layers
            .iter()
            .position(|l| matches!(l, Layer::Conv(_)))
        {
            return Err(Error::usage(format!(
                "layer L{i} is a convolution, and qonnx's Im2Col executes one image at a time \
                 (with more it mixes the images' windows): a finn-onnx graph with convolutions \
                 takes --batch 1, not {batch}"
            )));
        }
    }
    let batch = batch.max(1) as i64;
    let mut b = Builder {
        graph: GraphProto::new(),
        batch,
        format,
    };
    b.graph.name = "cbnn".into();
    let features = model.features();
    b.graph
        .input
        .push(value_info(INPUT, &[batch, features as i64]));
    b.graph
        .output
        .push(value_info(OUTPUT, &[batch, model.classes() as i64]));
    b.initializer("one", &[], vec![1.0]);
    let mut x = Value {
        name: INPUT.to_string(),
        shape: model.input_values(),
        spatial: false,
    };
    match format {
        Format::Qonnx => {
            b.node(
                "BipolarQuant",
                QONNX_DOMAIN,
                &[INPUT, "one"],
                "x0",
                &[batch, features as i64],
            );
            x.name = "x0".into();
        }
        Format::FinnOnnx => b.datatype(INPUT, "BINARY"),
    }
    let last = model.layers.len().saturating_sub(1);
    for (i, layer) in model.layers.iter().enumerate() {
        let stem = format!("x{i}");
        x = match layer {
            Layer::Dense(_) | Layer::Scores(_) => {
                let (weights, thresholds) = match layer {
                    Layer::Dense(d) => (&d.weights, Some(&d.thresholds)),
                    Layer::Scores(s) => (&s.weights, None),
                    _ => unreachable!("matched above"),
                };
                let flat = b.flat(x, &stem);
                let next = if i == last {
                    OUTPUT.to_string()
                } else {
                    format!("x{}", i + 1)
                };
                b.dense(i, &flat.name, weights, thresholds, &next);
                Value {
                    name: next,
                    shape: Shape::flat(weights.rows()),
                    spatial: false,
                }
            }
            Layer::Conv(c) => {
                let grid = b.spatial(x, &stem);
                b.conv(i, &grid, c)
            }
            Layer::MaxPool(p) => {
                let grid = b.spatial(x, &stem);
                b.pool(i, &grid, p.size)
            }
            Layer::Lut(_) | Layer::GroupSum(_) => unreachable!("refused above"),
        };
    }
    let mut model_proto = ModelProto::new();
    model_proto.ir_version = 8;
    model_proto.producer_name = "cbnn".into();
    model_proto.producer_version = env!("CARGO_PKG_VERSION").into();
    for (domain, version) in [("", 13), (QONNX_DOMAIN, 1)] {
        let mut o = OperatorSetIdProto::new();
        o.domain = domain.into();
        o.version = version;
        model_proto.opset_import.push(o);
    }
    let shape = &model.input;
    let planes: Vec<String> = model
        .planes
        .planes()
        .iter()
        .map(|p| p.to_string())
        .collect();
    model_proto.metadata_props = vec![
        entry("cbnn.format", format.name()),
        entry("cbnn.planes", &planes.join(",")),
        entry(
            "cbnn.input",
            &format!("{}x{}x{}", shape.height, shape.width, shape.channels),
        ),
        entry("cbnn.features", &features.to_string()),
        entry("cbnn.classes", &model.classes().to_string()),
        entry(
            "cbnn.feature_order",
            match format {
                Format::Qonnx => "feature p * K + j = plane planes[j] of pixel p (row-major, channels last), +1 for a set bit and -1 for a clear one",
                Format::FinnOnnx => "feature p * K + j = plane planes[j] of pixel p (row-major, channels last), the bit itself (1 or 0)",
            },
        ),
    ];
    model_proto.graph = Some(b.graph).into();
    model_proto
        .write_to_bytes()
        .map_err(|e| Error::usage(format!("the ONNX graph could not be encoded: {e}")))
}
