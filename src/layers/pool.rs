//! The binary max-pool: `p x p` windows, stride `p`, on the ±1 outputs of the layer before.
//!
//! On ±1 values the maximum is `+1` iff any value of the window is `+1`: an OR of the bits.
//! Pooling sits after the previous layer's threshold (batch norm and sign are folded into the
//! thresholds before it), so it commutes with nothing and needs no care for negative
//! batch-norm scales. The output is `floor(H / p) x floor(W / p) x C`: rows and columns past the
//! last whole window are dropped.

use super::{or_run, Hardware, MemoryImage, Produces, Semantics, Shape, Site, Values};
use crate::reference::cycle::StageTiming;
use crate::vocab::cost::LayerEstimate;
use crate::vocab::fold::{LayerFold, LayerShape};

/// The shape a `p x p` max-pool hands on when it receives `input`.
pub fn pool_output(input: Shape, p: usize) -> Shape {
    let p = p.max(1);
    Shape {
        height: input.height / p,
        width: input.width / p,
        channels: input.channels,
    }
}

/// A binary max-pool layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxPool {
    /// Window side and stride `p`.
    pub size: usize,
}

impl Semantics for MaxPool {
    fn kind(&self) -> &'static str {
        "maxpool"
    }

    fn produces(&self) -> Produces {
        Produces::Bits
    }

    fn notation(&self) -> String {
        format!("p{}", self.size)
    }

    fn output_shape(&self, input: Shape) -> Shape {
        pool_output(input, self.size)
    }

    fn check(&self, input: Shape) -> Result<(), String> {
        let p = self.size;
        if p < 2 {
            return Err(format!("has a pool size of {p}; at least 2 is needed"));
        }
        if p > input.height || p > input.width {
            return Err(format!(
                "has a {p}x{p} pool but receives {}x{} positions",
                input.height, input.width
            ));
        }
        Ok(())
    }

    fn size_bits(&self) -> u64 {
        0
    }

    fn weight_bits(&self) -> u64 {
        0
    }

    fn execute(&self, shape: Shape, input: &[u64], counts: &mut Vec<u32>, out: &mut Vec<u64>) {
        counts.clear();
        let o = self.output_shape(shape);
        let (p, c) = (self.size, shape.channels);
        out.clear();
        out.resize(crate::bitslice::words_for(o.len()), 0);
        for y in 0..o.height {
            for x in 0..o.width {
                let base = (y * o.width + x) * c;
                for dy in 0..p {
                    for dx in 0..p {
                        let from = ((y * p + dy) * shape.width + x * p + dx) * c;
                        or_run(out, base, input, from, c);
                    }
                }
            }
        }
    }

    fn by_definition(&self, shape: Shape, input: &[bool]) -> Values {
        let o = self.output_shape(shape);
        let (p, c) = (self.size, shape.channels);
        let mut out = Vec::with_capacity(o.len());
        for y in 0..o.height {
            for x in 0..o.width {
                for ch in 0..c {
                    // max over the window of ±1 values
                    let max = (0..p * p)
                        .map(|d| {
                            let (sy, sx) = (y * p + d / p, x * p + d % p);
                            if input[(sy * shape.width + sx) * c + ch] {
                                1i32
                            } else {
                                -1
                            }
                        })
                        .max()
                        .unwrap_or(-1);
                    out.push(max == 1);
                }
            }
        }
        Values::Bits(out)
    }
}

/// A streaming max-pool core over the pixel stream (`cbnn_pool.v`).
impl Hardware for MaxPool {
    fn streams(&self) -> bool {
        true
    }

    fn cycles_per_image(&self, input: Shape, _f: LayerFold) -> usize {
        input.height * input.width
    }

    fn unit(&self) -> LayerShape {
        LayerShape {
            inputs: self.size * self.size,
            outputs: 1,
        }
    }

    fn stages(&self, input: Shape, _f: LayerFold) -> Vec<StageTiming> {
        vec![StageTiming::Pool {
            height: input.height,
            width: input.width,
            size: self.size,
        }]
    }

    fn estimate(&self, input: Shape, _f: LayerFold) -> LayerEstimate {
        crate::vocab::cost::pool(input, self.size)
    }

    fn images(&self, _f: LayerFold) -> Vec<MemoryImage> {
        Vec::new()
    }

    fn output_width(&self, input: Shape) -> usize {
        input.channels
    }

    fn instantiate(&self, site: &Site) -> String {
        use std::fmt::Write;
        let s = site.input_shape;
        let (i, next) = (&site.input, &site.output);
        let mut v = String::new();
        let _ = writeln!(
            v,
            "    // {}: {p}x{p} max-pool over {}x{} pixels of {} bits",
            site.name,
            s.height,
            s.width,
            s.channels,
            p = self.size
        );
        super::declare_stream(&mut v, next, s.channels);
        let _ = writeln!(
            v,
            "    cbnn_pool #(.H({}), .W({}), .C({}), .P({})) u_{} (\n        .clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata({i}), .s_axis_tvalid({i}_valid), .s_axis_tready({i}_ready),\n        .m_axis_tdata({next}), .m_axis_tvalid({next}_valid), .m_axis_tready({next}_ready));",
            s.height,
            s.width,
            s.channels,
            self.size,
            site.name.to_lowercase()
        );
        v
    }
}
