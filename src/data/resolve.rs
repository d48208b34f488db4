//! Turning a `--dataset` value into a directory.
//!
//! A value is either a directory holding the four standard IDX files, or a known name. A name is
//! looked up, in order, in `--data-dir`, `$CBNN_DATA`, the user cache directory
//! (`$XDG_CACHE_HOME/cbnn` or `~/.cache/cbnn`), then the system locations Debian uses
//! (`/usr/share/datasets/NAME`).

use std::path::{Path, PathBuf};

use crate::data::{idx_path, IDX_FILES};
use crate::error::{Error, Result};

/// Dataset names this tool knows how to find and fetch.
pub const KNOWN: [&str; 2] = ["mnist", "fashion-mnist"];

/// The user cache directory for datasets.
pub fn cache_dir() -> Option<PathBuf> {
    // The XDG specification: a relative path in the variable is invalid and ignored (a
    // relative cache would also move with every tool that changes directory, as make does).
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return Some(x.join("cbnn"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("cbnn"))
}

/// Directories searched for dataset `name`, in order.
pub fn candidates(name: &str, data_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(d) = data_dir {
        out.push(d.join(name));
    }
    if let Some(d) = std::env::var_os("CBNN_DATA").filter(|v| !v.is_empty()) {
        out.push(PathBuf::from(d).join(name));
    }
    if let Some(d) = cache_dir() {
        out.push(d.join(name));
    }
    out.push(Path::new("/usr/share/datasets").join(name));
    out
}

/// True when `dir` holds all four standard IDX files (gzip or not).
pub fn is_dataset_dir(dir: &Path) -> bool {
    IDX_FILES.iter().all(|stem| idx_path(dir, stem).is_some())
}

/// Resolves a `--dataset` value to a directory.
pub fn resolve(spec: &str, data_dir: Option<&Path>) -> Result<PathBuf> {
    let as_path = Path::new(spec);
    if as_path.is_dir() {
        return Ok(as_path.to_path_buf());
    }
    if !KNOWN.contains(&spec) {
        return Err(Error::usage(format!(
            "unknown dataset '{spec}': not a directory, and not one of the known names ({})",
            KNOWN.join(", ")
        )));
    }
    let tried = candidates(spec, data_dir);
    if let Some(dir) = tried.iter().find(|d| is_dataset_dir(d)) {
        return Ok(dir.clone());
    }
    let hint = match spec {
        "fashion-mnist" => "install it with `apt-get install -y dataset-fashion-mnist` or run `cbnn data fetch fashion-mnist`",
        _ => "run `cbnn data fetch mnist`, or pass a directory holding the four IDX files",
    };
    Err(Error::usage(format!(
        "dataset '{spec}' was not found (looked in {}); {hint}",
        tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}
