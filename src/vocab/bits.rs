//! The width in bits of a counter or an index.
//!
//! Vocabulary of the layer kinds, the generator and the estimate. Never: imports anything.

/// Bits needed for values `0..=max`.
pub fn bits_for(max: usize) -> usize {
    (usize::BITS - max.leading_zeros()).max(1) as usize
}
