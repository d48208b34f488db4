//! Training-time augmentation: random shifts of the raw image, re-sliced on the fly.

use crate::bitslice::{words_for, PlaneSet, Slicer};
use crate::data::Images;
use crate::util::rng::Rng;

/// Produces randomly shifted, sliced copies of training images.
pub struct Shifter<'a> {
    images: &'a Images,
    slicer: Slicer,
    shift: usize,
    words: usize,
}

impl<'a> Shifter<'a> {
    /// Shifts of up to `shift` pixels, sliced into `planes`.
    pub fn new(images: &'a Images, planes: &PlaneSet, shift: usize) -> Self {
        Shifter {
            images,
            slicer: Slicer::new(planes),
            shift,
            words: words_for(images.image_len() * planes.len()),
        }
    }

    /// Image `i`, shifted by a random offset, as packed features. Pixels shifted in are zero.
    pub fn row(&self, i: usize, rng: &mut Rng) -> Vec<u64> {
        let s = self.shift as isize;
        let span = 2 * self.shift + 1;
        let dy = rng.below(span) as isize - s;
        let dx = rng.below(span) as isize - s;
        let (h, w, c) = (
            self.images.height as isize,
            self.images.width as isize,
            self.images.channels,
        );
        let src = self.images.image(i);
        let mut shifted = vec![0u8; src.len()];
        for r in 0..h {
            let sr = r - dy;
            if sr < 0 || sr >= h {
                continue;
            }
            for col in 0..w {
                let sc = col - dx;
                if sc < 0 || sc >= w {
                    continue;
                }
                let d = ((r * w + col) as usize) * c;
                let o = ((sr * w + sc) as usize) * c;
                shifted[d..d + c].copy_from_slice(&src[o..o + c]);
            }
        }
        let mut out = vec![0u64; self.words];
        self.slicer.slice_into(&shifted, &mut out);
        out
    }
}
