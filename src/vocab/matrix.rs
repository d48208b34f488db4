//! A packed matrix of ±1 values (a binary layer's weights), and the width of a threshold of a
//! layer with a given number of inputs.
//!
//! Vocabulary of the model, the layer kinds and the kernels. Never: knows about layers or
//! models.

use crate::bitslice::words_for;

/// A packed matrix of ±1 values: `rows` rows of `cols` bits, `1` meaning `+1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryMatrix {
    rows: usize,
    cols: usize,
    words: usize,
    bits: Vec<u64>,
}

impl BinaryMatrix {
    /// A matrix of all `-1`.
    pub fn new(rows: usize, cols: usize) -> BinaryMatrix {
        let words = words_for(cols);
        BinaryMatrix {
            rows,
            cols,
            words,
            bits: vec![0; rows * words],
        }
    }

    /// Number of rows (neurons).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Words per packed row.
    pub fn words_per_row(&self) -> usize {
        self.words
    }

    /// The packed bits of row `r` (padding bits zero).
    pub fn row(&self, r: usize) -> &[u64] {
        &self.bits[r * self.words..(r + 1) * self.words]
    }

    /// Mutable packed row `r`; callers must keep padding bits zero.
    pub(crate) fn row_mut(&mut self, r: usize) -> &mut [u64] {
        &mut self.bits[r * self.words..(r + 1) * self.words]
    }

    /// All packed rows, row after row.
    pub fn as_words(&self) -> &[u64] {
        &self.bits
    }

    /// Weight `(r, c)`: `true` means `+1`.
    pub fn get(&self, r: usize, c: usize) -> bool {
        (self.bits[r * self.words + c / 64] >> (c % 64)) & 1 == 1
    }

    /// Sets weight `(r, c)` (`true` = `+1`).
    pub fn set(&mut self, r: usize, c: usize, plus: bool) {
        let w = &mut self.bits[r * self.words + c / 64];
        let m = 1u64 << (c % 64);
        if plus {
            *w |= m;
        } else {
            *w &= !m;
        }
    }

    /// Inverts every weight of row `r` (padding stays zero).
    pub fn invert_row(&mut self, r: usize) {
        let cols = self.cols;
        for (i, w) in self.row_mut(r).iter_mut().enumerate() {
            *w = !*w & valid_mask(cols, i);
        }
    }
}

/// Mask of the bits of word `i` that hold one of `cols` columns.
pub(crate) fn valid_mask(cols: usize, i: usize) -> u64 {
    let rem = cols.saturating_sub(i * 64);
    if rem >= 64 {
        u64::MAX
    } else {
        (1u64 << rem) - 1
    }
}

/// Bits needed for a threshold of a layer with `n` inputs (values `0..=n+1`).
pub fn threshold_bits(n: u64) -> u32 {
    64 - (n + 1).leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_bits_cover_range() {
        assert_eq!(threshold_bits(0), 1); // values 0..=1
        assert_eq!(threshold_bits(2), 2); // 0..=3
        assert_eq!(threshold_bits(6), 3); // 0..=7
        assert_eq!(threshold_bits(7), 4); // 0..=8
        assert_eq!(threshold_bits(256), 9);
    }

    #[test]
    fn invert_row_keeps_padding_zero() {
        let mut m = BinaryMatrix::new(2, 70);
        m.set(0, 3, true);
        m.invert_row(0);
        assert!(!m.get(0, 3));
        assert!(m.get(0, 69));
        assert_eq!(m.row(0)[1] >> 6, 0);
    }
}
