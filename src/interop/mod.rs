//! Exchange with the FINN ecosystem: integer models as ONNX graphs (QONNX and FINN-ONNX).

pub mod onnx;
