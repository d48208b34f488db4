//! When a design directory may be replaced: only when it is provably one `cbnn rtl` wrote.
//!
//! `cbnn rtl -o DIR` replaces DIR as a whole. It does so only when DIR is missing or empty, or
//! when its `design.json` parses as a cbnn manifest and every entry in DIR is a file that
//! manifest lists as written by `cbnn rtl` (or one that later stages write beside it, named by
//! the caller, or a temporary of an interrupted cbnn write). Anything else, however it is
//! named, would be lost, so it is refused.

use std::path::Path;

use crate::error::{Error, Result};

/// Checks that `dir` may be replaced by a new design. `later_stage_file` tells which names
/// the commands that run on a design (simulation, synthesis) write into it.
pub fn check_replaceable(dir: &Path, later_stage_file: &dyn Fn(&str) -> bool) -> Result<()> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if !meta.is_dir() {
        return Err(Error::usage(format!(
            "{}: exists and is {}, not a directory",
            dir.display(),
            crate::util::target::describe(&meta)
        )));
    }
    let entries: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    let refuse = |why: String| {
        Err(Error::usage(format!(
            "{}: {why}; `cbnn rtl` replaces its output directory as a whole, so give a new \
             directory, an empty one or a design directory it wrote",
            dir.display()
        )))
    };
    let manifest = match super::load_manifest(dir) {
        Ok(m) => m,
        Err(_) if !entries.iter().any(|e| e == "design.json") => {
            return refuse("the directory holds files but no design.json".into())
        }
        Err(e) => return refuse(format!("it is not a cbnn design ({e})")),
    };
    if manifest.written.is_empty() {
        return refuse(
            "its design.json does not list the files cbnn wrote (a design of an older cbnn \
             or not a cbnn design)"
                .into(),
        );
    }
    let foreign: Vec<&String> = entries
        .iter()
        .filter(|e| {
            let temporary = e.starts_with('.') && e.contains(".tmp-");
            !(manifest.written.contains(e) || later_stage_file(e) || temporary)
        })
        .collect();
    if let Some(first) = foreign.first() {
        return refuse(format!(
            "{} is not a file cbnn wrote{}",
            first,
            if foreign.len() > 1 {
                format!(" ({} such entries)", foreign.len())
            } else {
                String::new()
            }
        ));
    }
    Ok(())
}
