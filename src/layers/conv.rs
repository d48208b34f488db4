//! The binary convolution: a `k x k` window over the received `H x W x C` values, stride 1,
//! "valid" or "same" padding, then exactly the dense threshold rule per output channel.
//!
//! The window vector of output position `(y, x)` has `k * k * C` bits: bit
//! `(dy * k + dx) * C + c` is channel `c` of input position `(y + dy - pad, x + dx - pad)` (`pad = (k - 1) / 2`
//! for "same", 0 for "valid"); a position outside the image reads `-1` (bit 0), so padding is
//! an ordinary input value that hardware feeds as a zero bit. Output channel `m` at `(y, x)`
//! is `+1` iff `popcount(XNOR(w_m, window)) >= T_m`; the outputs are `H' x W' x M` values in
//! row-major order, channels last.

use serde::{Deserialize, Serialize};

use super::{
    check_thresholds, matches_by_definition, mvtu, or_run, popcounts, thresholded_size_bits,
    Hardware, MemoryImage, Produces, Semantics, Shape, Site, Values,
};
use crate::reference::cycle::StageTiming;
use crate::vocab::cost::LayerEstimate;
use crate::vocab::fold::{LayerFold, LayerShape};
use crate::vocab::matrix::BinaryMatrix;

/// How the window treats the image's border.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// Only windows inside the image: the output is `(H - k + 1) x (W - k + 1)`.
    Valid,
    /// Windows centred on every position, `(k - 1) / 2` positions of `-1` around the image:
    /// the output is `H x W` (odd `k` only).
    Same,
}

/// A binary convolution layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conv {
    /// Window side `k`.
    pub kernel: usize,
    /// Border handling.
    pub padding: Padding,
    /// `out_channels x (k * k * in_channels)` weights, columns in window order.
    pub weights: BinaryMatrix,
    /// Per output channel: `+1` iff `popcount(XNOR(w, window)) >= threshold`; in
    /// `0..=k*k*C + 1`.
    pub thresholds: Vec<u32>,
}

impl Conv {
    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weights.rows()
    }

    /// Input channels the weights are for.
    pub fn in_channels(&self) -> usize {
        self.weights.cols() / (self.kernel * self.kernel).max(1)
    }

    /// Positions of `-1` added on each side.
    pub fn pad(&self) -> usize {
        pad_for(self.kernel, self.padding)
    }

    fn source(&self, input: Shape, y: usize, x: usize, dy: usize, dx: usize) -> Option<usize> {
        window_source(input, self.pad(), y, x, dy, dx)
    }
}

/// A convolution in the architecture notation of `cbnn train --arch`: `cN`, `cNkK` for a kernel
/// other than 3, a trailing `v` for "valid" padding.
pub fn conv_notation(channels: usize, kernel: usize, padding: Padding) -> String {
    let mut s = format!("c{channels}");
    if kernel != 3 {
        s += &format!("k{kernel}");
    }
    if padding == Padding::Valid {
        s.push('v');
    }
    s
}

/// Positions of `-1` a `kernel x kernel` convolution adds on each side.
pub fn pad_for(kernel: usize, padding: Padding) -> usize {
    match padding {
        Padding::Valid => 0,
        Padding::Same => (kernel - 1) / 2,
    }
}

/// The shape a convolution of `channels` output channels hands on when it receives `input`.
pub fn conv_output(input: Shape, kernel: usize, padding: Padding, channels: usize) -> Shape {
    let shrink = match padding {
        Padding::Valid => kernel.saturating_sub(1),
        Padding::Same => 0,
    };
    Shape {
        height: input.height.saturating_sub(shrink),
        width: input.width.saturating_sub(shrink),
        channels,
    }
}

/// The input position that window bit `(dy, dx)` of output `(y, x)` reads (`pad` positions of
/// padding on each side), or `None` outside the image (padding).
#[inline]
pub fn window_source(
    input: Shape,
    pad: usize,
    y: usize,
    x: usize,
    dy: usize,
    dx: usize,
) -> Option<usize> {
    let (sy, sx) = ((y + dy).checked_sub(pad)?, (x + dx).checked_sub(pad)?);
    (sy < input.height && sx < input.width).then_some(sy * input.width + sx)
}

/// One row of a window that falls inside the image: window row `dy`, columns `dx` (a range
/// of `0..k`), reading the consecutive input positions from `source` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowRow {
    /// Window row.
    pub dy: usize,
    /// Window columns inside the image.
    pub dx: std::ops::Range<usize>,
    /// Input position of column `dx.start`.
    pub source: usize,
}

/// The rows of the `k x k` window of output `(y, x)` (`pad` positions of padding on each side)
/// that fall inside the image, each one run of consecutive input positions: what
/// [`window_source`] gives bit by bit, a row at a time.
pub fn window_rows(
    input: Shape,
    pad: usize,
    k: usize,
    y: usize,
    x: usize,
) -> impl Iterator<Item = WindowRow> {
    let dx_lo = pad.saturating_sub(x);
    let dx_hi = k.min((input.width + pad).saturating_sub(x));
    (0..k).filter_map(move |dy| {
        let sy = (y + dy).checked_sub(pad).filter(|&r| r < input.height)?;
        (dx_lo < dx_hi).then(|| WindowRow {
            dy,
            dx: dx_lo..dx_hi,
            source: sy * input.width + x + dx_lo - pad,
        })
    })
}

impl Semantics for Conv {
    fn kind(&self) -> &'static str {
        "conv"
    }

    fn produces(&self) -> Produces {
        Produces::Bits
    }

    fn notation(&self) -> String {
        conv_notation(self.out_channels(), self.kernel, self.padding)
    }

    fn output_shape(&self, input: Shape) -> Shape {
        conv_output(input, self.kernel, self.padding, self.out_channels())
    }

    fn check(&self, input: Shape) -> Result<(), String> {
        let k = self.kernel;
        if k == 0 {
            return Err("has a kernel of 0".into());
        }
        if self.padding == Padding::Same && k.is_multiple_of(2) {
            return Err(format!(
                "has an even kernel {k} with \"same\" padding; \"same\" needs an odd kernel"
            ));
        }
        if self.padding == Padding::Valid && (k > input.height || k > input.width) {
            return Err(format!(
                "has a {k}x{k} kernel but receives {}x{} positions",
                input.height, input.width
            ));
        }
        let window = k * k * input.channels;
        if self.weights.cols() != window {
            return Err(format!(
                "has {} weights per channel but a {k}x{k} window of {} channels holds {window}",
                self.weights.cols(),
                input.channels
            ));
        }
        check_thresholds(
            &self.weights,
            &self.thresholds,
            "output channels",
            "channel",
        )
    }

    fn size_bits(&self) -> u64 {
        thresholded_size_bits(&self.weights)
    }

    fn weight_bits(&self) -> u64 {
        self.weights.rows() as u64 * self.weights.cols() as u64
    }

    fn execute(&self, shape: Shape, input: &[u64], counts: &mut Vec<u32>, out: &mut Vec<u64>) {
        let o = self.output_shape(shape);
        let (k, c, m, pad) = (self.kernel, shape.channels, self.out_channels(), self.pad());
        let mut window = vec![0u64; crate::bitslice::words_for(k * k * c)];
        out.clear();
        out.resize(crate::bitslice::words_for(o.len()), 0);
        for y in 0..o.height {
            for x in 0..o.width {
                window.fill(0);
                // Each window row inside the image is one run of bits in the input.
                for r in window_rows(shape, pad, k, y, x) {
                    or_run(
                        &mut window,
                        (r.dy * k + r.dx.start) * c,
                        input,
                        r.source * c,
                        r.dx.len() * c,
                    );
                }
                popcounts(&self.weights, &window, counts);
                let base = (y * o.width + x) * m;
                for (j, (&n, &t)) in counts.iter().zip(&self.thresholds).enumerate() {
                    if n >= t {
                        out[(base + j) / 64] |= 1 << ((base + j) % 64);
                    }
                }
            }
        }
    }

    fn by_definition(&self, shape: Shape, input: &[bool]) -> Values {
        let o = self.output_shape(shape);
        let (k, c) = (self.kernel, shape.channels);
        let mut out = Vec::with_capacity(o.len());
        for y in 0..o.height {
            for x in 0..o.width {
                let mut window = vec![false; k * k * c];
                for dy in 0..k {
                    for dx in 0..k {
                        if let Some(p) = self.source(shape, y, x, dy, dx) {
                            for ch in 0..c {
                                window[(dy * k + dx) * c + ch] = input[p * c + ch];
                            }
                        }
                    }
                }
                for j in 0..self.out_channels() {
                    out.push(
                        matches_by_definition(&self.weights, j, &window) >= self.thresholds[j],
                    );
                }
            }
        }
        Values::Bits(out)
    }
}

/// A sliding-window unit (`cbnn_swu.v`) feeding a folded matrix-vector-threshold unit
/// (`cbnn_mvtu.v`) over the window.
impl Hardware for Conv {
    fn streams(&self) -> bool {
        true
    }

    /// The unit's cycles a window times the windows, or the sliding-window unit's walk over
    /// the padded image when that is longer.
    fn cycles_per_image(&self, input: Shape, f: LayerFold) -> usize {
        let out = self.output_shape(input);
        let pad = 2 * self.pad();
        (out.height * out.width * (self.steps(f) + 1))
            .max((input.height + pad) * (input.width + pad))
    }

    /// The window unit's walk with the unit behind it (its steps plus one cycles a window):
    /// more than [`Hardware::cycles_per_image`] by the cycles a waiting window holds the walk
    /// (`SlidingWindow::image_cycles_with`).
    fn interval(&self, input: Shape, f: LayerFold) -> usize {
        crate::reference::stream::SlidingWindow::new(
            input.height,
            input.width,
            self.kernel,
            self.pad(),
        )
        .image_cycles_with(self.steps(f) + 1)
    }

    fn unit(&self) -> LayerShape {
        LayerShape {
            inputs: self.weights.cols(),
            outputs: self.weights.rows(),
        }
    }

    fn stages(&self, input: Shape, f: LayerFold) -> Vec<StageTiming> {
        vec![
            StageTiming::Window {
                height: input.height,
                width: input.width,
                kernel: self.kernel,
                pad: self.pad(),
            },
            StageTiming::Unit {
                steps: self.steps(f),
            },
        ]
    }

    fn estimate(&self, input: Shape, f: LayerFold) -> LayerEstimate {
        use crate::vocab::cost;
        cost::merged(
            cost::layer(&self.unit(), f, false),
            &cost::window(input, self.kernel, self.pad()),
        )
    }

    fn images(&self, f: LayerFold) -> Vec<MemoryImage> {
        mvtu::images(&self.weights, Some(&self.thresholds), f)
    }

    fn output_width(&self, _input: Shape) -> usize {
        self.out_channels()
    }

    fn instantiate(&self, site: &Site) -> String {
        use std::fmt::Write;
        let s = site.input_shape;
        let (i, w) = (&site.input, format!("{}_w", site.name.to_lowercase()));
        let n = self.weights.cols();
        let mut v = String::new();
        let _ = writeln!(
            v,
            "    // {}: {}x{} windows ({:?}) over {}x{} pixels of {} bits",
            site.name, self.kernel, self.kernel, self.padding, s.height, s.width, s.channels
        );
        super::declare_stream(&mut v, &w, n);
        let _ = writeln!(
            v,
            "    cbnn_swu #(.H({}), .W({}), .C({}), .K({}), .PAD({})) u_{}_window (\n        .clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata({i}), .s_axis_tvalid({i}_valid), .s_axis_tready({i}_ready),\n        .m_axis_tdata({w}), .m_axis_tvalid({w}_valid), .m_axis_tready({w}_ready));",
            s.height,
            s.width,
            s.channels,
            self.kernel,
            u8::from(self.padding == Padding::Same),
            site.name.to_lowercase()
        );
        v + &mvtu::unit(self.unit(), site, false, &w, "window")
    }
}
