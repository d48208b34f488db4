//! Batch kernel: 256 images at a time, bit-sliced across images (AVX2).
//!
//! Lane `i` of every 256-bit vector belongs to image `i` of the block. A layer's input is one
//! vector per feature; a neuron's count of agreements is summed over its inputs by a
//! carry-save adder tree (Harley-Seal: fifteen 5-operation adders per sixteen inputs, for 256
//! images at once), kept as bit-sliced binary digits, and compared with the threshold
//! bit-sliced too, so the layer's output is again one vector per neuron: the next layer's
//! input. Only the output layer's counts are turned back into numbers per image, for the
//! argmax. The arithmetic is the integer model's, exactly; the tests compare every class with
//! the reference executor.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use crate::model::{BinaryMatrix, IntModel};

/// Images per block.
pub const LANES: usize = 256;

/// A layer in the form the kernel reads: per row, the index of each input's vector in the
/// `[inputs, inverted inputs, zero]` table (the inverted input when the weight is -1, so that
/// every selected vector has a 1 where input and weight agree), padded with the zero vector to
/// a multiple of 16.
#[derive(Clone, Debug)]
struct SlicedLayer {
    inputs: usize,
    rows: usize,
    per_row: usize,
    select: Vec<u32>,
    thresholds: Vec<u32>,
}

impl SlicedLayer {
    fn new(inputs: usize, rows: usize, weight: impl Fn(usize, usize) -> bool, t: &[u32]) -> Self {
        let per_row = inputs.div_ceil(16) * 16;
        let zero = (2 * inputs) as u32;
        let mut select = Vec::with_capacity(rows * per_row);
        for r in 0..rows {
            for k in 0..per_row {
                select.push(if k >= inputs {
                    zero
                } else if weight(r, k) {
                    k as u32
                } else {
                    (inputs + k) as u32
                });
            }
        }
        SlicedLayer {
            inputs,
            rows,
            per_row,
            select,
            thresholds: t.to_vec(),
        }
    }
}

/// A model prepared for the bit-sliced kernel.
#[derive(Clone, Debug)]
pub struct SlicedModel {
    pixels: usize,
    planes: Vec<u8>,
    layers: Vec<SlicedLayer>,
}

/// Reusable buffers.
#[derive(Clone, Debug, Default)]
pub struct SlicedScratch {
    table: Vec<[u64; 4]>,
    next: Vec<[u64; 4]>,
}

impl SlicedModel {
    /// Prepares `m`. First-layer features are taken plane-major (plane `j` of pixel `p` is
    /// input `j * pixels + p`); the weights are permuted to match.
    pub fn new(m: &IntModel) -> Option<SlicedModel> {
        let (hidden, output) = m.as_mlp()?;
        let pixels = m.input.pixels();
        let k = m.planes.len();
        fn first(w: &BinaryMatrix, pixels: usize, k: usize) -> impl Fn(usize, usize) -> bool + '_ {
            move |r: usize, f: usize| w.get(r, (f % pixels) * k + f / pixels)
        }
        let mut layers = Vec::new();
        let mut inputs = pixels * k;
        for (i, l) in hidden.iter().enumerate() {
            let w = &l.weights;
            layers.push(if i == 0 {
                SlicedLayer::new(inputs, w.rows(), first(w, pixels, k), &l.thresholds)
            } else {
                SlicedLayer::new(inputs, w.rows(), |r, c| w.get(r, c), &l.thresholds)
            });
            inputs = w.rows();
        }
        let o = &output.weights;
        layers.push(if hidden.is_empty() {
            SlicedLayer::new(inputs, o.rows(), first(o, pixels, k), &[])
        } else {
            SlicedLayer::new(inputs, o.rows(), |r, c| o.get(r, c), &[])
        });
        Some(SlicedModel {
            pixels,
            planes: m.planes.planes().to_vec(),
            layers,
        })
    }

    /// Whether this CPU can run the kernel.
    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// Classes of up to [`LANES`] images (`pixels` back to back) into `out`. The caller must
    /// have checked [`SlicedModel::available`].
    pub fn classify_block(&self, pixels: &[u8], s: &mut SlicedScratch, out: &mut [usize]) {
        assert!(Self::available(), "the bit-sliced kernel needs AVX2");
        let n = pixels.len() / self.pixels;
        assert!(n <= LANES && out.len() >= n);
        // SAFETY: AVX2 is present (asserted above).
        unsafe { self.block_avx2(pixels, n, s, out) }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn block_avx2(&self, pixels: &[u8], n: usize, s: &mut SlicedScratch, out: &mut [usize]) {
        let inputs = self.planes.len() * self.pixels;
        s.table.clear();
        s.table.resize(2 * inputs + 1, [0; 4]);
        transpose_input(pixels, n, self.pixels, &self.planes, &mut s.table[..inputs]);
        let last = self.layers.len() - 1;
        for (li, l) in self.layers.iter().enumerate() {
            // Every select index is below 2 * inputs + 1 by construction (SlicedLayer::new);
            // this makes the unchecked loads in count_row sound.
            assert_eq!(l.inputs * 2 + 1, s.table.len(), "layer input table size");
            // Inverted inputs after the inputs; the zero vector stays last.
            for k in 0..l.inputs {
                let x = s.table[k];
                s.table[l.inputs + k] = [!x[0], !x[1], !x[2], !x[3]];
            }
            let bits = counter_bits(l.inputs);
            if li < last {
                s.next.clear();
                for r in 0..l.rows {
                    let digits =
                        count_row(&s.table, &l.select[r * l.per_row..][..l.per_row], bits - 4);
                    s.next.push(at_least(&digits[..bits], l.thresholds[r]));
                }
                let rows = l.rows;
                s.table.clear();
                s.table.extend_from_slice(&s.next);
                s.table.resize(2 * rows + 1, [0; 4]);
            } else {
                // Bit-sliced argmax: a running best count and its class, per lane; a later
                // class replaces it only when strictly greater (ties go to the lowest class).
                let mut best = [[0u64; 4]; MAX_DIGITS];
                let mut class = [_mm256_setzero_si256(); 16];
                let class_bits = counter_bits(l.rows.max(2) - 1).min(16);
                for r in 0..l.rows {
                    let digits =
                        count_row(&s.table, &l.select[r * l.per_row..][..l.per_row], bits - 4);
                    if r == 0 {
                        best = digits;
                        continue;
                    }
                    let gt = greater(&digits[..bits], &best[..bits]);
                    for (b, d) in best[..bits].iter_mut().zip(&digits) {
                        let (old, new) = (load(b), load(d));
                        *b = store(_mm256_xor_si256(
                            old,
                            _mm256_and_si256(_mm256_xor_si256(old, new), gt),
                        ));
                    }
                    for (b, c) in class[..class_bits].iter_mut().enumerate() {
                        let want = if (r >> b) & 1 == 1 {
                            _mm256_set1_epi64x(-1)
                        } else {
                            _mm256_setzero_si256()
                        };
                        *c = _mm256_xor_si256(*c, _mm256_and_si256(_mm256_xor_si256(*c, want), gt));
                    }
                }
                let class: Vec<[u64; 4]> = class[..class_bits].iter().map(|&c| store(c)).collect();
                for (i, o) in out.iter_mut().enumerate().take(n) {
                    let (word, bit) = (i / 64, i % 64);
                    *o = class.iter().enumerate().fold(0usize, |acc, (b, c)| {
                        acc | ((((c[word] >> bit) & 1) as usize) << b)
                    });
                }
            }
        }
    }
}

/// Binary digits needed to count up to `inputs` (at least the 4 the adder tree always makes).
fn counter_bits(inputs: usize) -> usize {
    (usize::BITS - inputs.leading_zeros()).max(4) as usize
}

/// Transposes an 8 x 8 bit matrix held in a u64 (bit `8 r + c` to bit `8 c + r`).
#[inline(always)]
fn transpose8(mut x: u64) -> u64 {
    let t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    let t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    let t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^ t ^ (t << 28)
}

/// The bytes of a slice of lane vectors.
#[inline(always)]
fn bytemuck_bytes(v: &mut [[u64; 4]]) -> &mut [u8] {
    // SAFETY: [u64; 4] has no padding and every byte pattern is valid for u8; the length is
    // the same memory in bytes, and the borrow is carried over.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), v.len() * 32) }
}

/// Fills `table[j * pixels + p]` with plane `planes[j]` of pixel `p` of each image (image `i`
/// in bit `i`); images past `n` are zero.
#[inline(always)]
fn transpose_input(px: &[u8], n: usize, pixels: usize, planes: &[u8], table: &mut [[u64; 4]]) {
    table.fill([0; 4]);
    let chunks = pixels / 8;
    for (j, &p) in planes.iter().enumerate() {
        let plane = &mut table[j * pixels..(j + 1) * pixels];
        let p = u32::from(p);
        // The plane as bytes: byte `g` of a vector holds lanes 8g..8g+8 (x86-64 is little-endian).
        let bytes: &mut [u8] = bytemuck_bytes(plane);
        for g in 0..n.div_ceil(8) {
            for c in 0..chunks {
                // Row m: plane p of pixels 8c..8c+8 of image 8g+m.
                let mut x = 0u64;
                for m in 0..8 {
                    let i = 8 * g + m;
                    if i < n {
                        let at = i * pixels + 8 * c;
                        let v = u64::from_le_bytes(px[at..at + 8].try_into().expect("8 bytes"));
                        x |= super::rows::plane_byte(v, p) << (8 * m);
                    }
                }
                // Row t of the transpose: pixel 8c+t of images 8g..8g+8.
                for (t, &byte) in transpose8(x).to_le_bytes().iter().enumerate() {
                    bytes[(8 * c + t) * 32 + g] = byte;
                }
            }
        }
        for q in chunks * 8..pixels {
            for i in 0..n {
                let bit = u64::from((px[i * pixels + q] >> p) & 1);
                bytes[q * 32 + i / 8] |= (bit as u8) << (i % 8);
            }
        }
    }
}

#[inline(always)]
unsafe fn load(v: &[u64; 4]) -> __m256i {
    _mm256_loadu_si256(v.as_ptr().cast())
}

#[inline(always)]
unsafe fn store(v: __m256i) -> [u64; 4] {
    let mut out = [0u64; 4];
    _mm256_storeu_si256(out.as_mut_ptr().cast(), v);
    out
}

/// Carry-save adder: (carry, sum) of three bit vectors.
#[inline(always)]
unsafe fn csa(a: __m256i, b: __m256i, c: __m256i) -> (__m256i, __m256i) {
    let u = _mm256_xor_si256(a, b);
    let h = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c));
    (h, _mm256_xor_si256(u, c))
}

/// Most binary digits a count can have (inputs below 2^20).
const MAX_DIGITS: usize = 20;

/// Bit-sliced count of ones over the selected vectors: digit `b` of every lane's count.
#[inline(always)]
unsafe fn count_row(
    table: &[[u64; 4]],
    select: &[u32],
    high_digits: usize,
) -> [[u64; 4]; MAX_DIGITS] {
    // A compile-time number of high digits keeps them in registers.
    match high_digits {
        0 => count_row_n::<0>(table, select),
        1 => count_row_n::<1>(table, select),
        2 => count_row_n::<2>(table, select),
        3 => count_row_n::<3>(table, select),
        4 => count_row_n::<4>(table, select),
        5 => count_row_n::<5>(table, select),
        6 => count_row_n::<6>(table, select),
        7 => count_row_n::<7>(table, select),
        8 => count_row_n::<8>(table, select),
        9 => count_row_n::<9>(table, select),
        10 => count_row_n::<10>(table, select),
        _ => count_row_n::<{ MAX_DIGITS - 4 }>(table, select),
    }
}

#[inline(always)]
unsafe fn count_row_n<const H: usize>(
    table: &[[u64; 4]],
    select: &[u32],
) -> [[u64; 4]; MAX_DIGITS] {
    let z = _mm256_setzero_si256();
    let (mut ones, mut twos, mut fours, mut eights) = (z, z, z, z);
    let mut high = [z; H];
    // SAFETY: the caller's table holds 2 * inputs + 1 vectors (asserted in block_avx2) and
    // every select index is below that (built so in SlicedLayer::new).
    let v = |k: u32| load(table.get_unchecked(k as usize));
    for s in select.chunks_exact(16) {
        let (a, o) = csa(ones, v(s[0]), v(s[1]));
        let (b, o) = csa(o, v(s[2]), v(s[3]));
        let (f1, t) = csa(twos, a, b);
        let (a, o) = csa(o, v(s[4]), v(s[5]));
        let (b, o) = csa(o, v(s[6]), v(s[7]));
        let (f2, t) = csa(t, a, b);
        let (e1, f) = csa(fours, f1, f2);
        let (a, o) = csa(o, v(s[8]), v(s[9]));
        let (b, o) = csa(o, v(s[10]), v(s[11]));
        let (f1, t) = csa(t, a, b);
        let (a, o) = csa(o, v(s[12]), v(s[13]));
        let (b, o) = csa(o, v(s[14]), v(s[15]));
        let (f2, t) = csa(t, a, b);
        let (e2, f) = csa(f, f1, f2);
        let (sixteens, e) = csa(eights, e1, e2);
        ones = o;
        twos = t;
        fours = f;
        eights = e;
        // Ripple the sixteens into the high digits (a fixed number of steps: a data-dependent
        // early exit costs more in mispredicted branches than it saves).
        let mut carry = sixteens;
        for d in high.iter_mut() {
            let c = _mm256_and_si256(*d, carry);
            *d = _mm256_xor_si256(*d, carry);
            carry = c;
        }
    }
    let mut digits = [[0u64; 4]; MAX_DIGITS];
    digits[0] = store(ones);
    digits[1] = store(twos);
    digits[2] = store(fours);
    digits[3] = store(eights);
    for (d, h) in digits[4..].iter_mut().zip(high) {
        *d = store(h);
    }
    digits
}

/// Lanes where the number with digits `a` is greater than the one with digits `b` (least
/// significant first, the same length).
#[inline(always)]
unsafe fn greater(a: &[[u64; 4]], b: &[[u64; 4]]) -> __m256i {
    let (mut gt, mut eq) = (_mm256_setzero_si256(), _mm256_set1_epi64x(-1));
    for (x, y) in a.iter().zip(b).rev() {
        let (x, y) = (load(x), load(y));
        gt = _mm256_or_si256(gt, _mm256_and_si256(eq, _mm256_andnot_si256(y, x)));
        eq = _mm256_andnot_si256(_mm256_xor_si256(x, y), eq);
    }
    gt
}

/// Lanes whose count (binary digits, least significant first) is at least `t`.
#[inline(always)]
unsafe fn at_least(digits: &[[u64; 4]], t: u32) -> [u64; 4] {
    if u64::from(t) >= 1u64 << digits.len() {
        return [0; 4];
    }
    let ones = _mm256_set1_epi64x(-1);
    let (mut gt, mut eq) = (_mm256_setzero_si256(), ones);
    for (b, d) in digits.iter().enumerate().rev() {
        let d = load(d);
        if (t >> b) & 1 == 1 {
            eq = _mm256_and_si256(eq, d);
        } else {
            gt = _mm256_or_si256(gt, _mm256_and_si256(eq, d));
            eq = _mm256_andnot_si256(d, eq);
        }
    }
    store(_mm256_or_si256(gt, eq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::tests::random_model;
    use crate::reference::Executor;
    use crate::util::rng::Rng;

    #[test]
    fn transpose8_moves_bit_rc_to_cr() {
        let mut rng = Rng::new(5, 5);
        let x = rng.next_u64();
        let y = transpose8(x);
        for r in 0..8 {
            for c in 0..8 {
                assert_eq!((x >> (8 * r + c)) & 1, (y >> (8 * c + r)) & 1);
            }
        }
    }

    #[test]
    fn bit_sliced_blocks_match_the_reference() {
        if !SlicedModel::available() {
            return;
        }
        let mut rng = Rng::new(23, 4);
        for (pixels, planes, hidden, n) in [
            (49usize, vec![7u8], vec![33usize, 17], 256usize),
            (64, vec![7, 6, 5, 4, 3, 2, 1, 0], vec![70], 100),
            (131, vec![7, 3, 0], vec![65, 64, 9], 37),
            (20, vec![5, 2], vec![], 256),
        ] {
            let m = random_model(&mut rng, pixels, &planes, &hidden, 10);
            let sliced = SlicedModel::new(&m).unwrap();
            let px: Vec<u8> = (0..pixels * n).map(|_| rng.below(256) as u8).collect();
            let images = crate::data::Images {
                height: pixels,
                width: 1,
                channels: 1,
                pixels: px.clone(),
            };
            let rows = crate::bitslice::slice(&images, &m.planes);
            let exec = Executor::new(&m);
            let mut out = vec![usize::MAX; n];
            sliced.classify_block(&px, &mut SlicedScratch::default(), &mut out);
            for (i, &o) in out.iter().enumerate() {
                assert_eq!(o, exec.predict(rows.row(i)).class, "image {i}, {planes:?}");
            }
        }
    }
}
