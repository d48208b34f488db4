//! Exchange with the FINN ecosystem: integer models as ONNX graphs (QONNX and
//! FINN-ONNX), and binary QONNX networks (as Brevitas exports them) as integer models.

pub mod import;
pub mod onnx;
pub mod wire;
