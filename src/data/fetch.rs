//! `cbnn data fetch`: download a dataset's IDX files with checksum verification.
//!
//! Downloads go to a hidden `.part` file beside the target; an interrupted download is resumed
//! with an HTTP range request on the next attempt. The checksum is the MD5 of the *uncompressed*
//! bytes (mirrors re-wrap the gzip files, the payload is what must match). Only a verified file
//! is renamed into place, so a dataset directory never holds a half-written or wrong file.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::GzDecoder;
use md5::{Digest, Md5};

use crate::error::{Error, Result, Setting};

/// One file of a remote dataset.
#[derive(Clone, Debug)]
pub struct RemoteFile {
    /// File name, as served and as stored (e.g. `train-images-idx3-ubyte.gz`).
    pub name: String,
    /// MD5 of the uncompressed contents, lower-case hex.
    pub md5: String,
}

/// A dataset that can be downloaded.
#[derive(Clone, Debug)]
pub struct RemoteDataset {
    /// Name used for the directory it is stored in.
    pub name: String,
    /// Base URLs tried in order; a file's URL is base + file name.
    pub mirrors: Vec<String>,
    /// Its files.
    pub files: Vec<RemoteFile>,
}

fn files(list: [(&str, &str); 4]) -> Vec<RemoteFile> {
    list.iter()
        .map(|(name, md5)| RemoteFile {
            name: name.to_string(),
            md5: md5.to_string(),
        })
        .collect()
}

/// The download description of a known dataset name.
pub fn known(name: &str) -> Option<RemoteDataset> {
    match name {
        "mnist" => Some(RemoteDataset {
            name: "mnist".into(),
            mirrors: vec![
                "https://ossci-datasets.s3.amazonaws.com/mnist/".into(),
                "https://storage.googleapis.com/cvdf-datasets/mnist/".into(),
                "http://yann.lecun.com/exdb/mnist/".into(),
            ],
            files: files([
                (
                    "train-images-idx3-ubyte.gz",
                    "6bbc9ace898e44ae57da46a324031adb",
                ),
                (
                    "train-labels-idx1-ubyte.gz",
                    "a25bea736e30d166cdddb491f175f624",
                ),
                (
                    "t10k-images-idx3-ubyte.gz",
                    "2646ac647ad5339dbf082846283269ea",
                ),
                (
                    "t10k-labels-idx1-ubyte.gz",
                    "27ae3e4e09519cfbb04c329615203637",
                ),
            ]),
        }),
        "fashion-mnist" => Some(RemoteDataset {
            name: "fashion-mnist".into(),
            mirrors: vec!["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/".into()],
            files: files([
                (
                    "train-images-idx3-ubyte.gz",
                    "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                ),
                (
                    "train-labels-idx1-ubyte.gz",
                    "9018921c3c673c538a1fc5bad174d6f9",
                ),
                (
                    "t10k-images-idx3-ubyte.gz",
                    "8181f5470baa50b63fa0f6fddb340f0a",
                ),
                (
                    "t10k-labels-idx1-ubyte.gz",
                    "15d484375f8d13e6eb1aabb0c3f46965",
                ),
            ]),
        }),
        _ => None,
    }
}

/// What happened to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Already present with the right checksum; nothing downloaded.
    Present,
    /// Downloaded (possibly resuming an earlier partial download) and verified.
    Downloaded {
        /// The URL it came from.
        url: String,
        /// Bytes that were already on disk from an earlier attempt.
        resumed_from: u64,
    },
}

/// The most bytes a dataset file may take as downloaded (the largest known file, MNIST's
/// training images, is 47 MB uncompressed): a response that goes on beyond it is discarded,
/// never kept "for resuming".
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Attempts per mirror before moving to the next one (each resumes the previous).
const ATTEMPTS: usize = 3;

/// Downloads every file of `ds` into `dir`, verifying each. `mirror`, when given, replaces the
/// dataset's own mirror list. `log` receives one line per event.
pub fn fetch(
    ds: &RemoteDataset,
    dir: &Path,
    mirror: Option<&str>,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<(String, Outcome)>> {
    if let Some(m) = mirror {
        let rest = m
            .strip_prefix("http://")
            .or_else(|| m.strip_prefix("https://"));
        if rest
            .is_none_or(|r| r.is_empty() || r.starts_with('/') || r.contains(char::is_whitespace))
        {
            return Err(invalid!(
                Setting::Mirror,
                " '{m}' is not an http:// or https:// URL with a host"
            ));
        }
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mirrors: Vec<String> = match mirror {
        Some(m) if m.ends_with('/') => vec![m.to_string()],
        Some(m) => vec![format!("{m}/")],
        None => ds.mirrors.clone(),
    };
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(60))
        .build();
    let mut outcomes = Vec::new();
    for file in &ds.files {
        let outcome = fetch_file(&agent, &mirrors, file, dir, log)?;
        outcomes.push((file.name.clone(), outcome));
    }
    Ok(outcomes)
}

fn fetch_file(
    agent: &ureq::Agent,
    mirrors: &[String],
    file: &RemoteFile,
    dir: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<Outcome> {
    let target = dir.join(&file.name);
    if target.is_file() && payload_md5(&target)? == file.md5 {
        log(&format!("{}: present, checksum ok", target.display()));
        return Ok(Outcome::Present);
    }
    let mut last_error = String::from("no mirror configured");
    for base in mirrors {
        let url = format!("{base}{}", file.name);
        let part = dir.join(format!(
            ".{}.{:016x}.part",
            file.name,
            fnv1a(url.as_bytes())
        ));
        let resumed_from = part.metadata().map(|m| m.len()).unwrap_or(0);
        for attempt in 1..=ATTEMPTS {
            let got = download(agent, &url, &part);
            if let (Err(e), true) = (&got, too_large(&part)) {
                // An endless or oversized response: nothing of it is kept, and trying it
                // again would only fetch as much again.
                let _ = fs::remove_file(&part);
                log(&format!("{url}: {e}"));
                last_error = format!("{url}: {e}");
                break;
            }
            match got {
                Ok(()) => {
                    let actual = payload_md5(&part)?;
                    if actual != file.md5 {
                        let _ = fs::remove_file(&part);
                        return Err(Error::CheckFailed(format!(
                            "{url}: checksum mismatch: uncompressed MD5 is {actual}, expected {}; \
                             the download was discarded",
                            file.md5
                        )));
                    }
                    fs::rename(&part, &target).map_err(|e| Error::io(&target, e))?;
                    log(&format!(
                        "{}: downloaded from {url}, checksum ok",
                        target.display()
                    ));
                    return Ok(Outcome::Downloaded { url, resumed_from });
                }
                Err(e) => {
                    log(&format!("{url}: attempt {attempt} failed: {e}"));
                    last_error = format!("{url}: {e}");
                }
            }
        }
    }
    let kept = mirrors.iter().any(|base| {
        let url = format!("{base}{}", file.name);
        dir.join(format!(
            ".{}.{:016x}.part",
            file.name,
            fnv1a(url.as_bytes())
        ))
        .is_file()
    });
    Err(Error::Network(format!(
        "could not download {}: {last_error}{}",
        file.name,
        if kept {
            " (partial data kept for resuming)"
        } else {
            ""
        }
    )))
}

/// Whether the partial download at `part` went past [`MAX_FILE_BYTES`].
fn too_large(part: &Path) -> bool {
    part.metadata().is_ok_and(|m| m.len() > MAX_FILE_BYTES)
}

/// Downloads `url` into `part`, resuming from its current length. On success `part` holds the
/// whole body and has been flushed to disk.
fn download(agent: &ureq::Agent, url: &str, part: &Path) -> std::result::Result<(), String> {
    let have = part.metadata().map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url);
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(416, _)) => {
            // The part file is at least as long as the resource: start over.
            let _ = fs::remove_file(part);
            return Err("server refused the resume range; restarting".into());
        }
        Err(ureq::Error::Status(code, _)) => return Err(format!("HTTP status {code}")),
        Err(e) => return Err(e.to_string()),
    };
    let append = have > 0 && response.status() == 206;
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .map_err(|e| format!("{}: {e}", part.display()))?;
    let mut body = response.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = out.sync_all();
                return Err(format!("connection lost: {e}"));
            }
        };
        out.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", part.display()))?;
        if too_large(part) {
            return Err(format!(
                "the response goes on past {} MiB, more than cbnn downloads for a dataset \
                 file; it was discarded",
                MAX_FILE_BYTES >> 20
            ));
        }
    }
    out.sync_all()
        .map_err(|e| format!("{}: {e}", part.display()))
}

/// MD5 of a file's payload: its uncompressed bytes when it is gzip, else its bytes.
pub fn payload_md5(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(|e| Error::io(path, e))?;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A corrupt or truncated gzip stream: its payload cannot match any checksum.
            Err(e) => return Ok(format!("unreadable ({e})")),
        }
    }
    Ok(hex(&hasher.finalize()))
}

/// MD5 of `bytes`, lower-case hex.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The directory `cbnn data fetch NAME` stores into when `--dir` is not given.
pub fn default_dir(name: &str) -> Option<PathBuf> {
    super::resolve::cache_dir().map(|d| d.join(name))
}
