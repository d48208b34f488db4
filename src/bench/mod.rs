//! Inference speed measurement: the same images through the full-precision network and the binary
//! networks, at a given batch size and thread count, timed pass by pass.
//!
//! Every engine starts from the 8-bit pixels in memory and ends with a class per image: the
//! binary engines include bit slicing, the float engine the conversion to float. A pass
//! classifies every image once, in calls of `batch` images; with more than one thread the calls
//! are spread over a pool of that many threads (each call runs on one thread).

pub mod harness;

use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

use crate::float;
use crate::reference::fast::{FastModel, FastScratch};

/// Something that classifies batches of images given as 8-bit pixels.
pub trait Classifier: Sync {
    /// Per-thread buffers.
    type Scratch: Default + Send;
    /// Pixels per image.
    fn image_len(&self) -> usize;
    /// Classes of the images in `pixels` (back to back) into `out`.
    fn classify_batch(&self, pixels: &[u8], scratch: &mut Self::Scratch, out: &mut [usize]);
}

/// A binary network, run by the fast executor: packed XNOR-popcount; for perceptrons the first
/// layer's weights laid out for the input path and bit-sliced batches, for convolutional
/// networks windows and weights laid out for word-wide XOR-popcount.
impl Classifier for FastModel {
    type Scratch = FastScratch;

    fn image_len(&self) -> usize {
        self.pixels()
    }

    fn classify_batch(&self, pixels: &[u8], s: &mut FastScratch, out: &mut [usize]) {
        self.classify_into(pixels, s, out);
    }
}

impl Classifier for float::Engine {
    type Scratch = float::Scratch;

    fn image_len(&self) -> usize {
        self.inputs()
    }

    fn classify_batch(&self, pixels: &[u8], s: &mut float::Scratch, out: &mut [usize]) {
        self.classify_into(pixels, s, out);
    }
}

/// How a pass is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// Worker threads.
    pub threads: usize,
    /// Images per call.
    pub batch: usize,
}

/// What one pass measured.
#[derive(Clone, Copy, Debug)]
pub struct Pass {
    /// Wall-clock seconds for all images.
    pub seconds: f64,
    /// Images classified.
    pub images: usize,
    /// Median duration of one call (one batch), seconds.
    pub call_seconds: f64,
}

impl Pass {
    /// Images per second.
    pub fn images_per_second(&self) -> f64 {
        self.images as f64 / self.seconds.max(1e-12)
    }
}

fn median_duration(mut d: Vec<Duration>) -> f64 {
    d.sort_unstable();
    d.get(d.len() / 2).map_or(0.0, Duration::as_secs_f64)
}

/// Classifies every image of `pixels` once with `c`; returns the timing and the classes.
/// `pool` must have `setting.threads` threads (it is not used for one thread).
pub fn run_pass<C: Classifier>(
    c: &C,
    pixels: &[u8],
    setting: Setting,
    pool: &rayon::ThreadPool,
) -> (Pass, Vec<usize>) {
    let len = c.image_len();
    let n = pixels.len() / len;
    let mut out = vec![0usize; n];
    let chunk = setting.batch * len;
    let start = Instant::now();
    let calls: Vec<Duration> = if setting.threads <= 1 {
        let mut scratch = C::Scratch::default();
        pixels
            .chunks(chunk)
            .zip(out.chunks_mut(setting.batch))
            .map(|(px, o)| {
                let t = Instant::now();
                c.classify_batch(px, &mut scratch, o);
                t.elapsed()
            })
            .collect()
    } else {
        pool.install(|| {
            pixels
                .par_chunks(chunk)
                .zip(out.par_chunks_mut(setting.batch))
                .map_init(C::Scratch::default, |scratch, (px, o)| {
                    let t = Instant::now();
                    c.classify_batch(px, scratch, o);
                    t.elapsed()
                })
                .collect()
        })
    };
    let seconds = start.elapsed().as_secs_f64();
    (
        Pass {
            seconds,
            images: n,
            call_seconds: median_duration(calls),
        },
        out,
    )
}

/// Minimum, median and maximum of some samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// Smallest.
    pub min: f64,
    /// Median (the mean of the middle two for an even count).
    pub median: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `xs` (which must not be empty).
    pub fn of(xs: &[f64]) -> Spread {
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            min: v[0],
            median,
            max: v[n - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_min_median_max() {
        assert_eq!(
            Spread::of(&[3.0, 1.0, 2.0]),
            Spread {
                min: 1.0,
                median: 2.0,
                max: 3.0
            }
        );
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
    }

    #[test]
    fn every_setting_gives_the_reference_classes() {
        let mut rng = crate::util::rng::Rng::new(9, 1);
        let m = crate::reference::tests::random_model(&mut rng, 49, &[3, 1], &[33, 17], 5);
        let pixels: Vec<u8> = (0..49 * 101).map(|_| rng.below(256) as u8).collect();
        let images = crate::data::Images {
            height: 49,
            width: 1,
            channels: 1,
            pixels: pixels.clone(),
        };
        let want = crate::reference::Executor::new(&m)
            .classify(&crate::bitslice::slice(&images, &m.planes));
        let engine = FastModel::new(&m);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for threads in [1, 2] {
            for batch in [1, 10, 1000] {
                let (pass, got) = run_pass(&engine, &pixels, Setting { threads, batch }, &pool);
                assert_eq!(got, want, "threads {threads} batch {batch}");
                assert_eq!(pass.images, 101);
            }
        }
    }
}
