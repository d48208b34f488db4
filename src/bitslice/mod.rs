//! Bit slicing: the one definition of bit planes, kept-plane order and feature order.
//!
//! Plane `b` of a pixel is bit `b` of its 8-bit value (`b = 7` most significant); a `1` bit means
//! `+1`, a `0` bit means `-1`. A model keeps an ordered set of planes, most significant first.
//! Feature `p * K + j` of an image is plane `kept[j]` of pixel `p` (pixels in row-major order,
//! channels last). Features are packed into `u64` words, feature `f` in bit `f % 64` of word
//! `f / 64`; padding bits past the last feature are zero.
//!
//! Everything downstream — the trainer's first layer, the reference model, the RTL input port —
//! takes its features from here and nowhere else.

use rayon::prelude::*;

use crate::data::Images;
use crate::error::{Error, Result};

/// An ordered set of kept planes, most significant first, no repeats, each in `0..8`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PlaneSet(Vec<u8>);

impl PlaneSet {
    /// Validates `planes` (non-empty, each in 0..8, no repeats, strictly decreasing).
    pub fn new(planes: &[u8]) -> Result<PlaneSet> {
        if planes.is_empty() {
            return Err(Error::usage(
                "the plane list is empty; keep at least one plane",
            ));
        }
        if let Some(&p) = planes.iter().find(|&&p| p > 7) {
            return Err(Error::usage(format!(
                "plane {p} does not exist; planes are numbered 0 (least significant) to 7"
            )));
        }
        for w in planes.windows(2) {
            if w[0] == w[1] {
                return Err(Error::usage(format!("plane {} is listed twice", w[0])));
            }
            if w[0] < w[1] {
                return Err(Error::usage(format!(
                    "planes must be listed most significant first (got {} before {})",
                    w[0], w[1]
                )));
            }
        }
        Ok(PlaneSet(planes.to_vec()))
    }

    /// All eight planes, `[7, 6, ..., 0]`.
    pub fn all() -> PlaneSet {
        PlaneSet((0..8).rev().collect())
    }

    /// The kept planes, most significant first.
    pub fn planes(&self) -> &[u8] {
        &self.0
    }

    /// Number of kept planes (`K`).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a plane set is never empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// For each byte value, its kept plane bits in feature order (bit `j` = plane `kept[j]`).
    fn code_table(&self) -> [u8; 256] {
        let mut lut = [0u8; 256];
        for (v, code) in lut.iter_mut().enumerate() {
            for (j, &plane) in self.0.iter().enumerate() {
                *code |= (((v >> plane) & 1) as u8) << j;
            }
        }
        lut
    }
}

impl std::fmt::Display for PlaneSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s: Vec<String> = self.0.iter().map(|p| p.to_string()).collect();
        write!(f, "{}", s.join(","))
    }
}

/// Number of `u64` words holding `bits` bits.
pub fn words_for(bits: usize) -> usize {
    bits.div_ceil(64)
}

/// Bit-sliced images: one packed feature vector per image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sliced {
    /// Features per image (`pixels * K`).
    pub features: usize,
    /// Words per image.
    pub words: usize,
    /// `count * words` words, image after image.
    pub bits: Vec<u64>,
}

impl Sliced {
    /// Number of images.
    pub fn count(&self) -> usize {
        self.bits.len().checked_div(self.words).unwrap_or(0)
    }

    /// The packed features of image `i`.
    pub fn row(&self, i: usize) -> &[u64] {
        &self.bits[i * self.words..(i + 1) * self.words]
    }
}

/// Slices every image into its kept planes (parallel over images).
pub fn slice(images: &Images, planes: &PlaneSet) -> Sliced {
    let features = images.image_len() * planes.len();
    let words = words_for(features);
    let mut bits = vec![0u64; images.count() * words];
    let lut = planes.code_table();
    let k = planes.len() as u32;
    bits.par_chunks_mut(words.max(1))
        .enumerate()
        .for_each(|(i, out)| pack_image(images.image(i), &lut, k, out));
    Sliced {
        features,
        words,
        bits,
    }
}

/// Slices one image (`pixels`) into `out`, which must hold `words_for(pixels.len() * K)` words.
pub fn slice_one(pixels: &[u8], planes: &PlaneSet, out: &mut [u64]) {
    Slicer::new(planes).slice_into(pixels, out);
}

/// Slices single images repeatedly without rebuilding the plane table each time.
#[derive(Clone, Debug)]
pub struct Slicer {
    lut: [u8; 256],
    k: u32,
}

impl Slicer {
    /// A slicer for `planes`.
    pub fn new(planes: &PlaneSet) -> Slicer {
        Slicer {
            lut: planes.code_table(),
            k: planes.len() as u32,
        }
    }

    /// Slices `pixels` into `out` (`words_for(pixels.len() * K)` words, overwritten).
    pub fn slice_into(&self, pixels: &[u8], out: &mut [u64]) {
        out.fill(0);
        pack_image(pixels, &self.lut, self.k, out);
    }
}

fn pack_image(pixels: &[u8], lut: &[u8; 256], k: u32, out: &mut [u64]) {
    let mut acc = 0u64;
    let mut pos = 0u32;
    let mut w = 0;
    for &px in pixels {
        let code = lut[px as usize] as u64;
        acc |= code << pos;
        pos += k;
        if pos >= 64 {
            out[w] = acc;
            w += 1;
            pos -= 64;
            acc = if pos == 0 { 0 } else { code >> (k - pos) };
        }
    }
    if pos > 0 {
        out[w] = acc;
    }
}

/// Moves packed features from a plane set to a subset of it, image by image: what slicing
/// the same images with the subset gives, without the images (the trainer's shared network,
/// [`crate::train::shared`], reads every candidate's features from one slicing with all
/// planes).
#[derive(Clone, Debug)]
pub struct Subset {
    /// For each code of the larger set's planes of one pixel, its code in the subset.
    table: Vec<u8>,
    from: usize,
    to: u32,
}

impl Subset {
    /// The move from features sliced with `from` to those sliced with `to`; `None` when a
    /// plane of `to` is not in `from`.
    pub fn new(from: &PlaneSet, to: &PlaneSet) -> Option<Subset> {
        let at: Vec<usize> = to
            .planes()
            .iter()
            .map(|p| from.planes().iter().position(|q| q == p))
            .collect::<Option<_>>()?;
        let table = (0..1usize << from.len())
            .map(|code| {
                at.iter()
                    .enumerate()
                    .fold(0u8, |acc, (j, &i)| acc | ((((code >> i) & 1) as u8) << j))
            })
            .collect();
        Some(Subset {
            table,
            from: from.len(),
            to: to.len() as u32,
        })
    }

    /// Features per image in the subset, for images of `pixels` pixels.
    pub fn features(&self, pixels: usize) -> usize {
        pixels * self.to as usize
    }

    /// Writes into `out` (`words_for(pixels * |to|)` words, overwritten) the subset's features
    /// of the image whose features with the larger set are `row`.
    pub fn apply(&self, row: &[u64], pixels: usize, out: &mut [u64]) {
        out.fill(0);
        let k = self.from;
        let mask = (1u64 << k) - 1;
        let codes = (0..pixels).map(|p| {
            let (w, o) = ((p * k) / 64, (p * k) % 64);
            let mut v = row[w] >> o;
            if o + k > 64 {
                v |= row[w + 1] << (64 - o);
            }
            (v & mask) as usize
        });
        let (mut acc, mut pos, mut w) = (0u64, 0u32, 0);
        for code in codes {
            let c = u64::from(self.table[code]);
            acc |= c << pos;
            pos += self.to;
            if pos >= 64 {
                out[w] = acc;
                w += 1;
                pos -= 64;
                acc = if pos == 0 { 0 } else { c >> (self.to - pos) };
            }
        }
        if pos > 0 {
            out[w] = acc;
        }
    }
}

/// The value (`true` = +1) of feature `f` of an image, straight from the definition. Slow; the
/// yardstick the packed form is tested against.
pub fn feature(pixels: &[u8], planes: &PlaneSet, f: usize) -> bool {
    let k = planes.len();
    (pixels[f / k] >> planes.planes()[f % k]) & 1 == 1
}

/// Reads feature `f` from a packed row.
pub fn get(row: &[u64], f: usize) -> bool {
    (row[f / 64] >> (f % 64)) & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moving features to a subset of the planes gives what slicing with the subset gives,
    /// for every subset of a few plane sets, on images whose bits straddle words.
    #[test]
    fn a_subset_of_the_features_is_the_slicing_with_the_subset() {
        let mut rng = crate::util::rng::Rng::new(5, 0);
        let pixels: Vec<u8> = (0..3 * 37).map(|_| rng.next_u64() as u8).collect();
        let images = Images {
            height: 37,
            width: 1,
            channels: 1,
            pixels,
        };
        for from in [PlaneSet::all(), PlaneSet::new(&[7, 5, 4, 1]).unwrap()] {
            let full = slice(&images, &from);
            for mask in 1u32..256 {
                let planes: Vec<u8> = (0..8u8).rev().filter(|p| mask >> p & 1 == 1).collect();
                let to = PlaneSet::new(&planes).unwrap();
                let Some(sub) = Subset::new(&from, &to) else {
                    assert!(planes.iter().any(|p| !from.planes().contains(p)));
                    continue;
                };
                let want = slice(&images, &to);
                let mut out = vec![0u64; want.words];
                for i in 0..3 {
                    sub.apply(full.row(i), 37, &mut out);
                    assert_eq!(out, want.row(i), "{from} -> {to}, image {i}");
                }
            }
        }
    }
    use crate::util::rng::Rng;

    fn random_images(count: usize, h: usize, w: usize, c: usize, seed: u64) -> Images {
        let mut rng = Rng::new(seed, 0);
        Images {
            height: h,
            width: w,
            channels: c,
            pixels: (0..count * h * w * c)
                .map(|_| rng.next_u64() as u8)
                .collect(),
        }
    }

    #[test]
    fn packed_matches_definition_for_many_plane_sets() {
        let images = random_images(7, 5, 3, 2, 3);
        for planes in [
            vec![7, 6, 5, 4, 3, 2, 1, 0],
            vec![7],
            vec![7, 6, 5],
            vec![6, 3, 0],
            vec![7, 5, 4, 2, 1],
            vec![7, 6, 5, 4, 3, 2, 1],
        ] {
            let ps = PlaneSet::new(&planes).unwrap();
            let s = slice(&images, &ps);
            assert_eq!(s.features, 30 * planes.len());
            for i in 0..images.count() {
                let row = s.row(i);
                for f in 0..s.features {
                    assert_eq!(
                        get(row, f),
                        feature(images.image(i), &ps, f),
                        "planes {planes:?} f {f}"
                    );
                }
                for f in s.features..s.words * 64 {
                    assert!(!get(row, f), "padding bit {f} set");
                }
            }
        }
    }

    #[test]
    fn feature_order_is_pixel_major() {
        // pixel 0 = 0b1000_0000, pixel 1 = 0b0000_0001, planes [7, 0]
        let ps = PlaneSet::new(&[7, 0]).unwrap();
        let mut out = [0u64; 1];
        slice_one(&[0x80, 0x01], &ps, &mut out);
        // features: p0/plane7=1, p0/plane0=0, p1/plane7=0, p1/plane0=1
        assert_eq!(out[0], 0b1001);
    }

    #[test]
    fn plane_set_validation_messages() {
        assert_eq!(
            PlaneSet::new(&[7, 8]).unwrap_err().to_string(),
            "plane 8 does not exist; planes are numbered 0 (least significant) to 7"
        );
        assert_eq!(
            PlaneSet::new(&[7, 7]).unwrap_err().to_string(),
            "plane 7 is listed twice"
        );
        assert!(PlaneSet::new(&[5, 7]).is_err());
        assert!(PlaneSet::new(&[]).is_err());
    }
}
