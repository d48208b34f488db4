//! `$readmemh` memory images of the weights and thresholds, in the layout `rtl/cbnn_mvtu.v`
//! documents: word `nf * SF + sf` holds, for `p` in `0..PE`, neuron `nf * PE + p`'s inputs
//! `sf * SIMD ..` in bits `[p * SIMD +: SIMD]`; threshold word `nf` holds `U = N + 1 - T` of
//! neuron `nf * PE + p` in bits `[p * TW +: TW]`. Padding is zero.

use std::fmt::Write;

use super::bits_for;
use super::fold::LayerFold;
use crate::model::BinaryMatrix;

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
