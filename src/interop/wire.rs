//! What reading a protobuf message would cost in memory, found by walking its bytes at the wire
//! level before the parser allocates anything.
//!
//! The generated parser allocates a whole structure for every field of a message type, so a
//! file of empty messages takes far more memory than its size (measured on `cbnn import`: 10 MB
//! of empty node attributes took 1.6 GB, empty nodes 1.1 GB, empty shape dimensions 330 MB).
//! [`parse_cost`] walks the same bytes with ONNX's schema (which field of which message is a
//! message, a packed run of numbers or bytes: [`field`], checked against the generated parser
//! by a test) and adds what each field costs once parsed, as the parser allocates it; the
//! importer refuses a file whose cost is over its budget, with one sentence, instead of finding
//! out by running out of memory.
//!
//! It never parses or allocates anything itself (no recursion beyond protobuf's own limit of
//! 100 nested messages), and never decides whether bytes are a valid message: malformed bytes
//! end the walk, and the parser then says what is wrong.

/// Bytes a parsed message may take: its structure (the largest ONNX one, an attribute, took
/// 323 bytes a message on `cbnn import` of 5 million empty ones, with the allocator's overhead
/// and the growth of the vector holding them).
pub const MESSAGE_BYTES: u64 = 512;
/// Bytes a parsed string, byte string or unknown length-delimited field may take beyond its
/// contents (a vector's header and the allocator's overhead; 26 measured).
pub const FIELD_BYTES: u64 = 48;
/// Bytes a parsed scalar (a varint or fixed-width field, known or not) may take.
pub const SCALAR_BYTES: u64 = 16;
/// The nesting the walk follows, as protobuf's parser does before it refuses a message.
const MAX_DEPTH: u32 = 100;

/// The ONNX messages a file may nest, as far as memory is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Onnx {
    /// `ModelProto`.
    Model,
    /// `GraphProto`.
    Graph,
    /// `NodeProto`.
    Node,
    /// `AttributeProto`.
    Attribute,
    /// `TensorProto`.
    Tensor,
    /// `SparseTensorProto`.
    SparseTensor,
    /// `ValueInfoProto`.
    ValueInfo,
    /// `TypeProto`.
    Type,
    /// `TypeProto.Tensor` and `TypeProto.SparseTensor`: a shape.
    TypeTensor,
    /// `TypeProto.Sequence` and `TypeProto.Optional`: an element type.
    TypeElement,
    /// `TypeProto.Map`: a value type.
    TypeMap,
    /// `TensorShapeProto`.
    Shape,
    /// `TrainingInfoProto`.
    TrainingInfo,
    /// `FunctionProto`.
    Function,
    /// `TensorAnnotation`.
    TensorAnnotation,
    /// Messages of scalars and strings only (`StringStringEntryProto`, `OperatorSetIdProto`,
    /// `TensorShapeProto.Dimension`, `TensorProto.Segment`).
    Leaf,
}

/// What a length-delimited field is to the parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// A message of the type.
    Message(Onnx),
    /// A packed run of varints: the parser reserves eight bytes for each byte of it.
    PackedVarints,
    /// A packed run of floats or doubles: as many bytes as it holds.
    PackedFixed,
    /// A string, byte string or a field the schema does not know (kept as bytes).
    Bytes,
}

/// The kind of length-delimited field `number` of an ONNX message `of` (onnx.proto, as
/// `onnx-protobuf` generates it).
pub fn field(of: Onnx, number: u64) -> Field {
    use Field::{Message as M, PackedFixed as F, PackedVarints as V};
    use Onnx::*;
    match (of, number) {
        (Model, 7) => M(Graph),
        (Model, 8 | 14) => M(Leaf),
        (Model, 20) => M(TrainingInfo),
        (Model, 25) => M(Function),
        (Graph, 1) => M(Node),
        (Graph, 5) => M(Tensor),
        (Graph, 15) => M(SparseTensor),
        (Graph, 11..=13) => M(ValueInfo),
        (Graph, 14) => M(TensorAnnotation),
        (Graph, 16) => M(Leaf),
        (Node, 5) => M(Attribute),
        (Node, 9) => M(Leaf),
        (Attribute, 5 | 10) => M(Tensor),
        (Attribute, 6 | 11) => M(Graph),
        (Attribute, 22 | 23) => M(SparseTensor),
        (Attribute, 14 | 15) => M(Type),
        (Attribute, 7) => F,
        (Attribute, 8) => V,
        (Tensor, 3 | 13 | 16) => M(Leaf),
        (Tensor, 1 | 5 | 7 | 11) => V,
        (Tensor, 4 | 10) => F,
        (SparseTensor, 1 | 2) => M(Tensor),
        (SparseTensor, 3) => V,
        (ValueInfo, 2) => M(Type),
        (ValueInfo, 4) => M(Leaf),
        (Type, 1 | 8) => M(TypeTensor),
        (Type, 4 | 9) => M(TypeElement),
        (Type, 5) => M(TypeMap),
        (TypeTensor, 2) => M(Shape),
        (TypeElement, 1) | (TypeMap, 2) => M(Type),
        (Shape, 1) => M(Leaf),
        (TrainingInfo, 1 | 2) => M(Graph),
        (TrainingInfo, 3 | 4) => M(Leaf),
        (Function, 7) => M(Node),
        (Function, 11) => M(Attribute),
        (Function, 12) => M(ValueInfo),
        (Function, 9 | 14) => M(Leaf),
        (TensorAnnotation, 2) => M(Leaf),
        _ => Field::Bytes,
    }
}

/// What the protobuf parser allocates reading `bytes` as a message of type `of`, bounded from
/// above as far as the constants are.
pub fn parse_cost(bytes: &[u8], of: Onnx) -> u64 {
    let mut cost = 0;
    walk(bytes, of, MAX_DEPTH, &mut cost);
    cost
}

/// Adds to `cost` what the fields in `bytes` (a message of type `of`) cost; returns at the
/// end of the bytes or at the first field it cannot read.
fn walk(mut bytes: &[u8], of: Onnx, depth: u32, cost: &mut u64) {
    while !bytes.is_empty() {
        let Some(tag) = varint(&mut bytes) else {
            return;
        };
        match tag & 7 {
            0 => {
                if varint(&mut bytes).is_none() {
                    return;
                }
                *cost += SCALAR_BYTES;
            }
            1 | 5 => {
                let width = if tag & 7 == 1 { 8 } else { 4 };
                let Some(rest) = bytes.get(width..) else {
                    return;
                };
                bytes = rest;
                *cost += SCALAR_BYTES;
            }
            2 => {
                let Some(len) = varint(&mut bytes).and_then(|l| usize::try_from(l).ok()) else {
                    return;
                };
                let Some(payload) = bytes.get(..len) else {
                    return;
                };
                bytes = &bytes[len..];
                let len = len as u64;
                *cost += match field(of, tag >> 3) {
                    Field::Message(inner) => {
                        if depth > 0 {
                            walk(payload, inner, depth - 1, cost);
                        }
                        MESSAGE_BYTES
                    }
                    Field::PackedVarints => FIELD_BYTES + 8 * len,
                    Field::PackedFixed | Field::Bytes => FIELD_BYTES + len,
                };
            }
            // Groups (unknown to ONNX) are skipped by the parser, not stored; their fields
            // follow as records of this level and are counted as such.
            3 | 4 => *cost += SCALAR_BYTES,
            _ => return,
        }
    }
}

/// Reads one varint from the front of `bytes` (at most ten bytes).
fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *bytes = &bytes[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_protobuf::{
        tensor_proto, tensor_shape_proto, type_proto, AttributeProto, FunctionProto, GraphProto,
        Message, ModelProto, NodeProto, OperatorSetIdProto, SparseTensorProto,
        StringStringEntryProto, TensorProto, TensorShapeProto, TrainingInfoProto, TypeProto,
        ValueInfoProto,
    };

    fn ld(field: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for mut v in [field << 3 | 2, payload.len() as u64] {
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        }
        out.extend_from_slice(payload);
        out
    }

    fn parses<T: Message>(bytes: &[u8]) -> bool {
        T::parse_from_bytes(bytes).is_ok()
    }

    /// The schema table says of every field number 1 to 40 of every generated ONNX message
    /// what the generated parser does with it. Probes, each a field holding 8 bytes: `07`
    /// repeated is an invalid message (wire type 7) but valid UTF-8, eight varints and two
    /// floats or one double, so only a message field refuses it; `c3 a9` repeated (`é`) is
    /// valid UTF-8 and a run of fixed-width numbers but an unfinished varint, so only a
    /// message or packed varints refuse it; seven bytes `07` are refused by a message and
    /// packed fixed-width numbers only.
    #[test]
    fn the_schema_table_matches_the_generated_parser() {
        use Onnx::*;
        type Parses = fn(&[u8]) -> bool;
        let types: [(Onnx, &str, Parses); 21] = [
            (Model, "ModelProto", parses::<ModelProto>),
            (Graph, "GraphProto", parses::<GraphProto>),
            (Node, "NodeProto", parses::<NodeProto>),
            (Attribute, "AttributeProto", parses::<AttributeProto>),
            (Tensor, "TensorProto", parses::<TensorProto>),
            (
                SparseTensor,
                "SparseTensorProto",
                parses::<SparseTensorProto>,
            ),
            (ValueInfo, "ValueInfoProto", parses::<ValueInfoProto>),
            (Type, "TypeProto", parses::<TypeProto>),
            (TypeTensor, "TypeProto.Tensor", parses::<type_proto::Tensor>),
            (
                TypeTensor,
                "TypeProto.SparseTensor",
                parses::<type_proto::SparseTensor>,
            ),
            (
                TypeElement,
                "TypeProto.Sequence",
                parses::<type_proto::Sequence>,
            ),
            (
                TypeElement,
                "TypeProto.Optional",
                parses::<type_proto::Optional>,
            ),
            (TypeMap, "TypeProto.Map", parses::<type_proto::Map>),
            (Shape, "TensorShapeProto", parses::<TensorShapeProto>),
            (
                TrainingInfo,
                "TrainingInfoProto",
                parses::<TrainingInfoProto>,
            ),
            (Function, "FunctionProto", parses::<FunctionProto>),
            (
                TensorAnnotation,
                "TensorAnnotation",
                parses::<onnx_protobuf::TensorAnnotation>,
            ),
            (
                Leaf,
                "StringStringEntryProto",
                parses::<StringStringEntryProto>,
            ),
            (Leaf, "OperatorSetIdProto", parses::<OperatorSetIdProto>),
            (
                Leaf,
                "TensorShapeProto.Dimension",
                parses::<tensor_shape_proto::Dimension>,
            ),
            (Leaf, "TensorProto.Segment", parses::<tensor_proto::Segment>),
        ];
        for (of, name, parses) in types {
            for n in 1..=40 {
                let message = !parses(&ld(n, &[7; 8]));
                let varints = !parses(&ld(n, &[0xc3, 0xa9].repeat(4)));
                let fixed = !parses(&ld(n, &[7; 7]));
                let parser = match (message, varints, fixed) {
                    (true, _, _) => "message",
                    (false, true, false) => "packed varints",
                    (false, false, true) => "packed fixed",
                    (false, false, false) => "bytes",
                    _ => "something else",
                };
                let table = match field(of, n) {
                    Field::Message(_) => "message",
                    Field::PackedVarints => "packed varints",
                    Field::PackedFixed => "packed fixed",
                    Field::Bytes => "bytes",
                };
                assert_eq!(table, parser, "{name} field {n}");
            }
        }
    }

    /// Empty messages cost a structure each, however deep they sit; the same count of empty
    /// strings or unknown fields costs far less, and a tensor's raw bytes cost their size.
    #[test]
    fn messages_cost_a_structure_at_every_depth() {
        let n = 1000;
        // ModelProto.graph (7) > GraphProto.node (1) > NodeProto.attribute (5), all empty.
        let attrs = ld(7, &ld(1, &ld(5, b"").repeat(n)));
        let cost = parse_cost(&attrs, Onnx::Model);
        assert_eq!(cost, (2 + n as u64) * MESSAGE_BYTES);
        // ModelProto.graph > GraphProto.initializer (5) > TensorProto.string_data (6).
        let strings = ld(7, &ld(5, &ld(6, b"").repeat(n)));
        let cost = parse_cost(&strings, Onnx::Model);
        assert_eq!(cost, 2 * MESSAGE_BYTES + n as u64 * FIELD_BYTES);
        // An unknown field number holds bytes, not a message, whatever they look like.
        let unknown = ld(7, &ld(1000, &ld(1, b"")).repeat(n));
        let cost = parse_cost(&unknown, Onnx::Model);
        assert_eq!(cost, MESSAGE_BYTES + n as u64 * (FIELD_BYTES + 2));
        // TensorProto.raw_data (9) of 1 MB costs its size.
        let raw = ld(7, &ld(5, &ld(9, &vec![7u8; 1 << 20])));
        let cost = parse_cost(&raw, Onnx::Model);
        assert_eq!(cost, 2 * MESSAGE_BYTES + FIELD_BYTES + (1 << 20));
        // A packed run of int64 dims (TensorProto.dims, 1): eight bytes reserved a byte.
        let dims = ld(7, &ld(5, &ld(1, &[1u8; 100])));
        let cost = parse_cost(&dims, Onnx::Model);
        assert_eq!(cost, 2 * MESSAGE_BYTES + FIELD_BYTES + 800);
    }

    /// Malformed bytes end the walk without a panic (the parser reports them).
    #[test]
    fn malformed_bytes_end_the_walk() {
        for bytes in [
            &[0x3a, 0x05, 0x0a][..],
            &[0xff; 11],
            &[0x3a],
            &[0x07],
            &[0x39, 1, 2],
        ] {
            assert!(parse_cost(bytes, Onnx::Model) < MESSAGE_BYTES);
        }
    }
}
