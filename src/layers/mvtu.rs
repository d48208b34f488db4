//! The matrix-vector-threshold unit (`rtl/cbnn_mvtu.v`) from the Rust side: the core that the
//! dense kinds ([`super::Dense`], [`super::Scores`]) and the convolution ([`super::Conv`], over
//! its sliding window) instantiate, its memory images and its
//! instantiation in the top level.
//!
//! Memory images (`$readmemh`) are in the layout the core documents: word `nf * SF + sf`
//! holds, for `p` in `0..PE`, neuron `nf * PE + p`'s inputs `sf * SIMD ..` in bits
//! `[p * SIMD +: SIMD]`; threshold word `nf` holds `U = N + 1 - T` of neuron `nf * PE + p` in
//! bits `[p * TW +: TW]`. Padding is zero.

use std::fmt::Write;

use super::{MemoryImage, Site};
use crate::vocab::bits::bits_for;
use crate::vocab::fold::{LayerFold, LayerShape};
use crate::vocab::matrix::BinaryMatrix;

/// A bit vector written as one hexadecimal word, most significant digit first.
fn hex_word(bits: &[bool]) -> String {
    let digits = bits.len().div_ceil(4);
    let mut s = String::with_capacity(digits);
    for d in (0..digits).rev() {
        let mut v = 0u8;
        for b in 0..4 {
            if bits.get(d * 4 + b).copied().unwrap_or(false) {
                v |= 1 << b;
            }
        }
        s.push(char::from_digit(v as u32, 16).expect("nibble"));
    }
    s
}

/// The weight memory image of a layer.
pub fn weights(w: &BinaryMatrix, f: LayerFold) -> String {
    let (n, m) = (w.cols(), w.rows());
    let (nf, sf) = (m.div_ceil(f.pe), n.div_ceil(f.simd));
    let mut out = String::new();
    let mut word = vec![false; f.pe * f.simd];
    for g in 0..nf {
        for c in 0..sf {
            for p in 0..f.pe {
                let neuron = g * f.pe + p;
                for i in 0..f.simd {
                    let input = c * f.simd + i;
                    word[p * f.simd + i] = neuron < m && input < n && w.get(neuron, input);
                }
            }
            let _ = writeln!(out, "{}", hex_word(&word));
        }
    }
    out
}

/// The threshold memory image of a layer with `n` inputs: `U = n + 1 - T` per neuron.
pub fn thresholds(t: &[u32], n: usize, f: LayerFold) -> String {
    let tw = bits_for(n + 1);
    let nf = t.len().div_ceil(f.pe);
    let mut out = String::new();
    for g in 0..nf {
        let mut word = vec![false; f.pe * tw];
        for p in 0..f.pe {
            let u = t.get(g * f.pe + p).map_or(0, |&t| n + 1 - t as usize);
            for b in 0..tw {
                word[p * tw + b] = (u >> b) & 1 == 1;
            }
        }
        let _ = writeln!(out, "{}", hex_word(&word));
    }
    out
}

/// The images of a layer: its weights, and its thresholds when it has them.
pub fn images(w: &BinaryMatrix, t: Option<&[u32]>, f: LayerFold) -> Vec<MemoryImage> {
    let mut v = vec![MemoryImage {
        role: "weights",
        text: weights(w, f),
        width: f.pe * f.simd,
    }];
    if let Some(t) = t {
        v.push(MemoryImage {
            role: "thresholds",
            text: thresholds(t, w.cols(), f),
            width: f.pe * bits_for(w.cols() + 1),
        });
    }
    v
}

/// Instantiates `cbnn_mvtu` for a layer of shape `s` at `site`; `scores` for the output layer
/// (popcounts out instead of threshold bits). A stream of more than one pixel is gathered into
/// one vector first (`cbnn_unpack`, pixel `p` in bits `p * C ..`, the model's feature order).
pub fn instantiate(s: LayerShape, site: &Site, scores: bool) -> String {
    let mut v = String::new();
    let shape = site.input_shape;
    let pixels = shape.height * shape.width;
    let input = if pixels > 1 {
        let x = format!("{}_x", site.name.to_lowercase());
        let (i, n, c) = (&site.input, pixels * shape.channels, shape.channels);
        let _ = writeln!(
            v,
            "    // {}: gathers {pixels} pixels of {c} bits into one vector",
            site.name
        );
        super::declare_stream(&mut v, &x, n);
        let _ = writeln!(
            v,
            "    cbnn_unpack #(.N({n}), .IW({c})) u_{}_gather (\n        .clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata({i}), .s_axis_tvalid({i}_valid), .s_axis_tready({i}_ready),\n        .m_axis_tdata({x}), .m_axis_tvalid({x}_valid), .m_axis_tready({x}_ready));",
            site.name.to_lowercase()
        );
        x
    } else {
        site.input.clone()
    };
    v + &unit(s, site, scores, &input, "image")
}

/// Instantiates `cbnn_mvtu` for a layer of shape `s` at `site`, reading one vector a beat from
/// the stream `i`; `per` names what a vector is (`image`, `window`) in the comment.
pub fn unit(s: LayerShape, site: &Site, scores: bool, i: &str, per: &str) -> String {
    let f = site.fold;
    let next = &site.output;
    let mut v = String::new();
    let _ = writeln!(
        v,
        "    // {}: {} inputs -> {} {}, PE {}, SIMD {}, PIPE {}: {} cycles per {per}",
        site.name,
        s.inputs,
        s.outputs,
        if scores { "scores" } else { "neurons" },
        f.pe,
        f.simd,
        f.pipe,
        s.steps(f) + 1
    );
    super::declare_stream(&mut v, next, site.output_width);
    let file = |role: &str| {
        site.images
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, file)| file.as_str())
    };
    let memory = if site.in_logic {
        let word = |role: &str| {
            site.constants
                .iter()
                .find(|m| m.role == role)
                .map(|m| (m.width, m.text.trim().to_string()))
        };
        let (ww, w) = word("weights").expect("a weight image");
        let (tw, t) = word("thresholds").unwrap_or((f.pe * bits_for(s.inputs + 1), "0".into()));
        format!(".CONST_WEIGHTS(1),\n        .WEIGHTS({ww}'h{w}),\n        .THRESHOLDS({tw}'h{t})")
    } else {
        let weights = file("weights").expect("a weight file");
        format!(
            ".WEIGHT_FILE(\"{weights}\"), .THRESH_FILE(\"{}\")",
            file("thresholds").unwrap_or(weights)
        )
    };
    let _ = writeln!(
        v,
        "    cbnn_mvtu #(.N({}), .M({}), .PE({}), .SIMD({}), .PIPE({}), .SCORES({}),\n        {memory}) u_{} (\n        .clk(ap_clk), .rst_n(ap_rst_n),\n        .s_axis_tdata({i}), .s_axis_tvalid({i}_valid), .s_axis_tready({i}_ready),\n        .m_axis_tdata({next}), .m_axis_tvalid({next}_valid), .m_axis_tready({next}_ready));",
        s.inputs,
        s.outputs,
        f.pe,
        f.simd,
        f.pipe,
        u8::from(scores),
        site.name.to_lowercase()
    );
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_words_are_msb_first() {
        assert_eq!(hex_word(&[true, false, false, false, true]), "11");
        assert_eq!(hex_word(&[false, true, true, true]), "e");
    }

    #[test]
    fn padding_is_zero() {
        let mut w = BinaryMatrix::new(3, 5);
        for r in 0..3 {
            for c in 0..5 {
                w.set(r, c, true);
            }
        }
        // PE 2, SIMD 4: 2 neuron folds x 2 input folds, 8-bit words.
        let img = weights(&w, LayerFold::new(2, 4));
        assert_eq!(
            img.lines().collect::<Vec<_>>(),
            vec!["ff", "11", "0f", "01"]
        );
    }
}
