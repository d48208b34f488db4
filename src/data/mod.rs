//! Datasets: IDX reading, name resolution, download, and the train/validation/test split.
//!
//! This module owns raw pixels and labels. It never interprets pixels as bit planes (that is
//! [`crate::bitslice`]) and never trains anything.

pub mod fetch;
pub mod idx;
pub mod resolve;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result, Setting};

/// Images of one shape, stored contiguously, channels last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Channels per pixel (1 for MNIST-like data).
    pub channels: usize,
    /// `count * height * width * channels` bytes, image-major, row-major, channels last.
    pub pixels: Vec<u8>,
}

impl Images {
    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Number of images.
    pub fn count(&self) -> usize {
        self.pixels.len().checked_div(self.image_len()).unwrap_or(0)
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// Images with one label each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabeledSet {
    /// The images.
    pub images: Images,
    /// One class index per image.
    pub labels: Vec<u8>,
}

impl LabeledSet {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// A copy of examples `range`.
    pub fn slice(&self, range: std::ops::Range<usize>) -> LabeledSet {
        let n = self.images.image_len();
        LabeledSet {
            images: Images {
                pixels: self.images.pixels[range.start * n..range.end * n].to_vec(),
                ..self.images.clone_shape()
            },
            labels: self.labels[range].to_vec(),
        }
    }

    /// Examples per class, indexed by class.
    pub fn class_counts(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}

impl Images {
    fn clone_shape(&self) -> Images {
        Images {
            height: self.height,
            width: self.width,
            channels: self.channels,
            pixels: Vec::new(),
        }
    }
}

/// A dataset as found on disk: the official training and test sets.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The name it was asked for by (a known name or a directory).
    pub name: String,
    /// The directory it was read from.
    pub dir: PathBuf,
    /// Number of classes (largest label + 1, at least 2).
    pub classes: usize,
    /// The official training set.
    pub train: LabeledSet,
    /// The official test set.
    pub test: LabeledSet,
}

/// The standard file names of an IDX dataset, in the order train images, train labels, test
/// images, test labels.
pub const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The path of standard file `stem` in `dir`: the gzip form if present, else the plain one.
pub fn idx_path(dir: &Path, stem: &str) -> Option<PathBuf> {
    let gz = dir.join(format!("{stem}.gz"));
    let plain = dir.join(stem);
    if gz.is_file() {
        Some(gz)
    } else if plain.is_file() {
        Some(plain)
    } else {
        None
    }
}

/// Largest default validation split: the last 5000 training images (MNIST's usual split).
pub const DEFAULT_VALIDATION: usize = 5000;

/// Validation images used when none are asked for: a tenth of the training set, at most
/// [`DEFAULT_VALIDATION`] and at least 1 (60000 training images give 5000, 1400 give 140).
pub fn default_validation(train_images: usize) -> usize {
    (train_images / 10).clamp(1, DEFAULT_VALIDATION)
}

/// The three-way split every command uses.
#[derive(Clone, Debug)]
pub struct Split {
    /// Training examples (the first part of the official training set).
    pub train: LabeledSet,
    /// Validation examples (the last `validation` images of the official training set).
    pub val: LabeledSet,
    /// The official test set.
    pub test: LabeledSet,
}

impl Dataset {
    /// Resolves `spec` (a known name or a directory) and loads it.
    pub fn open(spec: &str, data_dir: Option<&Path>) -> Result<Dataset> {
        let dir = resolve::resolve(spec, data_dir)?;
        Self::load_dir(spec, &dir)
    }

    /// Loads the four standard IDX files from `dir`.
    pub fn load_dir(name: &str, dir: &Path) -> Result<Dataset> {
        let mut paths = Vec::new();
        for stem in IDX_FILES {
            paths.push(idx_path(dir, stem).ok_or_else(|| {
                Error::bad_file(
                    dir,
                    format!("dataset directory has no {stem} (nor {stem}.gz)"),
                )
            })?);
        }
        let (train, test) = rayon::join(
            || load_pair(&paths[0], &paths[1]),
            || load_pair(&paths[2], &paths[3]),
        );
        let (train, test) = (train?, test?);
        if (
            train.images.height,
            train.images.width,
            train.images.channels,
        ) != (test.images.height, test.images.width, test.images.channels)
        {
            return Err(Error::bad_file(
                &paths[2],
                format!(
                    "test images are {}x{}x{} but training images are {}x{}x{}",
                    test.images.height,
                    test.images.width,
                    test.images.channels,
                    train.images.height,
                    train.images.width,
                    train.images.channels
                ),
            ));
        }
        let max_label = train
            .labels
            .iter()
            .chain(&test.labels)
            .copied()
            .max()
            .unwrap_or(0);
        Ok(Dataset {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            classes: (max_label as usize + 1).max(2),
            train,
            test,
        })
    }

    /// Splits off the last `validation` training images as the validation set; `limit`, when
    /// given, keeps only the first `limit` of the remaining training images.
    /// `None` takes [`default_validation`] of the training set.
    pub fn split(&self, validation: Option<usize>, limit: Option<usize>) -> Result<Split> {
        let n = self.train.len();
        let validation = validation.unwrap_or_else(|| default_validation(n));
        if validation == 0 {
            return Err(invalid!(
                Setting::Validation,
                " 0 leaves nothing to decide on: give at least 1 image"
            ));
        }
        if validation >= n {
            return Err(invalid!(
                Setting::Validation,
                " {validation} leaves no training images (the training set has {n})"
            ));
        }
        let train_end = n - validation;
        let used = limit.map_or(train_end, |l| l.min(train_end));
        if used == 0 {
            return Err(invalid!(Setting::Limit, " 0 leaves no training images"));
        }
        Ok(Split {
            train: self.train.slice(0..used),
            val: self.train.slice(train_end..n),
            test: self.test.clone(),
        })
    }

    /// Summary numbers for `cbnn data info`.
    pub fn info(&self) -> DatasetInfo {
        DatasetInfo {
            name: self.name.clone(),
            dir: self.dir.display().to_string(),
            height: self.train.images.height,
            width: self.train.images.width,
            channels: self.train.images.channels,
            classes: self.classes,
            train_count: self.train.len(),
            test_count: self.test.len(),
            train_class_counts: self.train.class_counts(self.classes),
            test_class_counts: self.test.class_counts(self.classes),
            mean_pixel: mean(&self.train.images.pixels),
        }
    }
}

fn mean(bytes: &[u8]) -> f64 {
    let sum: u64 = bytes.iter().map(|&b| b as u64).sum();
    sum as f64 / bytes.len().max(1) as f64
}

/// What `cbnn data info` prints.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetInfo {
    /// Name or directory asked for.
    pub name: String,
    /// Directory the files were read from.
    pub dir: String,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Channels per pixel.
    pub channels: usize,
    /// Number of classes.
    pub classes: usize,
    /// Official training images.
    pub train_count: usize,
    /// Official test images.
    pub test_count: usize,
    /// Training images per class.
    pub train_class_counts: Vec<usize>,
    /// Test images per class.
    pub test_class_counts: Vec<usize>,
    /// Mean training pixel value (0..255).
    pub mean_pixel: f64,
}

/// Loads an images file and its labels file and checks they agree.
fn load_pair(images_path: &Path, labels_path: &Path) -> Result<LabeledSet> {
    let (images, labels) =
        rayon::join(|| idx::read_idx(images_path), || idx::read_idx(labels_path));
    let (images, labels) = (images?, labels?);
    let (count, height, width, channels) = match images.dims[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] => (n, h, w, c),
        _ => {
            return Err(Error::bad_file(
                images_path,
                format!(
                    "expected an image file (3 or 4 dimensions), found dimensions {:?}",
                    images.dims
                ),
            ))
        }
    };
    if height == 0 || width == 0 || channels == 0 {
        return Err(Error::bad_file(
            images_path,
            format!("image dimensions {:?} contain a zero", images.dims),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(Error::bad_file(
            labels_path,
            format!(
                "expected a label file (1 dimension), found dimensions {:?}",
                labels.dims
            ),
        ));
    }
    if labels.dims[0] != count {
        return Err(Error::bad_file(
            labels_path,
            format!(
                "{} labels for {} images in {}",
                labels.dims[0],
                count,
                images_path.display()
            ),
        ));
    }
    if count == 0 {
        return Err(Error::bad_file(images_path, "the file holds no images"));
    }
    Ok(LabeledSet {
        images: Images {
            height,
            width,
            channels,
            pixels: images.data,
        },
        labels: labels.data,
    })
}
