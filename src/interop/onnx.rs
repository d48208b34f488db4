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
//!   the output layer's `MatMul`, `Add N` and `Mul 0.5` give `matches`. Every value on the way
//!   is a small integer, exact in float32.
//! - **FINN-ONNX** (`finn-onnx`): features as `{0, 1}` bits (annotated `BINARY`); per threshold
//!   layer `XnorPopcountMatMul` with `{0, 1}` weights (`matches` directly) and `MultiThreshold`
//!   with cbnn's thresholds `T` (`1` iff `matches >= T`); the output layer's
//!   `XnorPopcountMatMul` is the scores.
//!
//! The planes, the image shape and the feature order are in the model's `metadata_props`
//! (`cbnn.planes`, `cbnn.input`, `cbnn.features`, `cbnn.classes`). The batch size is fixed
//! (qonnx's executor checks the input's shape against the graph's).

use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorAnnotation, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

use crate::error::{Error, Result};
use crate::layers::Layer;
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
}

impl Builder {
    /// Adds a node whose output is a `[batch, width]` tensor.
    fn node(&mut self, op: &str, domain: &str, inputs: &[&str], output: &str, width: usize) {
        let dims = [self.batch, width as i64];
        self.node_of_shape(op, domain, inputs, output, &dims);
    }

    /// Adds a node whose output has shape `dims` (the graph's output is declared already).
    fn node_of_shape(
        &mut self,
        op: &str,
        domain: &str,
        inputs: &[&str],
        output: &str,
        dims: &[i64],
    ) {
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

    fn attribute_string(&mut self, name: &str, value: &str) {
        let mut a = AttributeProto::new();
        a.name = name.into();
        a.type_ = AttributeType::STRING.into();
        a.s = value.as_bytes().to_vec();
        self.graph
            .node
            .last_mut()
            .expect("a node was added")
            .attribute
            .push(a);
    }

    fn initializer(&mut self, name: &str, dims: &[i64], data: Vec<f32>) {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = dims.to_vec();
        t.data_type = DataType::FLOAT as i32;
        t.float_data = data;
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

/// Bits of an unsigned count of `0..=n`.
fn uint_type(n: usize) -> String {
    format!("UINT{}", (usize::BITS - n.leading_zeros()).max(1))
}

/// The model as an ONNX graph of `format` with a fixed batch of `batch` images. Models with
/// layers the dialects cannot take yet (convolutions, pools, logic-mapped layers) are refused
/// with one sentence naming the first such layer.
pub fn export(model: &IntModel, format: Format, batch: usize) -> Result<Vec<u8>> {
    if let Some((i, l)) = model
        .layers
        .iter()
        .enumerate()
        .find(|(_, l)| !matches!(l, Layer::Dense(_) | Layer::Scores(_)))
    {
        return Err(Error::usage(format!(
            "layer L{i} is a {} layer: the {} export takes dense threshold layers and the output \
             layer only so far",
            l.semantics().kind(),
            format.name()
        )));
    }
    let batch = batch.max(1) as i64;
    let mut b = Builder {
        graph: GraphProto::new(),
        batch,
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
    let mut x = INPUT.to_string();
    match format {
        Format::Qonnx => {
            b.node(
                "BipolarQuant",
                QONNX_DOMAIN,
                &[INPUT, "one"],
                "x0",
                features,
            );
            x = "x0".into();
        }
        Format::FinnOnnx => b.datatype(INPUT, "BINARY"),
    }
    for (i, layer) in model.layers.iter().enumerate() {
        let (weights, thresholds) = match layer {
            Layer::Dense(d) => (&d.weights, Some(&d.thresholds)),
            Layer::Scores(s) => (&s.weights, None),
            _ => unreachable!("refused above"),
        };
        let (n, m) = (weights.cols(), weights.rows());
        let w = format!("w{i}");
        let last = thresholds.is_none();
        let next = if last {
            OUTPUT.to_string()
        } else {
            format!("x{}", i + 1)
        };
        match format {
            Format::Qonnx => {
                b.initializer(&w, &[n as i64, m as i64], operand(weights, 1.0, -1.0));
                let wq = format!("{w}_q");
                let dims = [n as i64, m as i64];
                b.node_of_shape("BipolarQuant", QONNX_DOMAIN, &[&w, "one"], &wq, &dims);
                let dot = format!("dot{i}");
                b.node("MatMul", "", &[&x, &wq], &dot, m);
                match thresholds {
                    Some(t) => {
                        // +1 iff w · x = 2 * matches - N >= 2T - N.
                        let bias: Vec<f32> = t.iter().map(|&t| n as f32 - 2.0 * t as f32).collect();
                        let (bn, z) = (format!("bias{i}"), format!("z{i}"));
                        b.initializer(&bn, &[m as i64], bias);
                        b.node("Add", "", &[&dot, &bn], &z, m);
                        b.node("BipolarQuant", QONNX_DOMAIN, &[&z, "one"], &next, m);
                    }
                    None => {
                        // matches = (w · x + N) / 2.
                        let (nn, half, sum) = (format!("n{i}"), "half", format!("sum{i}"));
                        b.initializer(&nn, &[], vec![n as f32]);
                        b.initializer(half, &[], vec![0.5]);
                        b.node("Add", "", &[&dot, &nn], &sum, m);
                        b.node("Mul", "", &[&sum, half], &next, m);
                    }
                }
            }
            Format::FinnOnnx => {
                b.initializer(&w, &[n as i64, m as i64], operand(weights, 1.0, 0.0));
                b.datatype(&w, "BINARY");
                let matches = if last {
                    OUTPUT.to_string()
                } else {
                    format!("matches{i}")
                };
                b.node("XnorPopcountMatMul", QONNX_DOMAIN, &[&x, &w], &matches, m);
                b.datatype(&matches, &uint_type(n));
                if let Some(t) = thresholds {
                    let tn = format!("thresholds{i}");
                    b.initializer(&tn, &[m as i64, 1], t.iter().map(|&t| t as f32).collect());
                    b.node("MultiThreshold", QONNX_DOMAIN, &[&matches, &tn], &next, m);
                    b.attribute_string("out_dtype", "BINARY");
                    b.datatype(&next, "BINARY");
                }
            }
        }
        x = next;
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
