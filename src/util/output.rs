//! What an output path may be, checked before any work starts.
//!
//! cbnn replaces only what is its own. A command names every path it will write (and every
//! file it reads) in a [`Plan`]; [`Plan::check`] refuses, before anything long runs:
//! - an output that exists and is not a regular file (a directory, FIFO, socket or device:
//!   as root a rename over `/dev/null` would replace the device);
//! - a symbolic link whose target is missing or not a regular file (a link to a regular file
//!   is written through: the target is replaced atomically and the link stays);
//! - two outputs on one file, or an output on one of the command's inputs;
//! - an output whose directory cannot be created or written.
//!
//! The final write ([`crate::util::atomic::write_atomic`]) checks the kind again, so a path
//! that changed while the command ran is still never replaced by something it was not.

use std::fs;
use std::path::{Path, PathBuf};

use super::target::{describe, identity, regular_target};
use crate::error::{Error, Result, Setting};

/// The paths one command will write and read. An output is named by its [`Setting`] (the
/// command line words it as a flag); an input by a description such as "the model".
#[derive(Debug, Default)]
pub struct Plan {
    outputs: Vec<(Setting, PathBuf)>,
    dirs: Vec<(Setting, PathBuf)>,
    workdirs: Vec<(Setting, PathBuf)>,
    inputs: Vec<(String, PathBuf)>,
}

impl Plan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// An output file (ignored when `path` is `None`).
    pub fn file(mut self, label: Setting, path: Option<&Path>) -> Self {
        if let Some(p) = path {
            self.outputs.push((label, p.to_path_buf()));
        }
        self
    }

    /// An output directory that the command replaces or fills as a whole.
    pub fn dir(mut self, label: Setting, path: &Path) -> Self {
        self.dirs.push((label, path.to_path_buf()));
        self
    }

    /// A directory the command writes files into (it must be a directory if it exists).
    pub fn workdir(mut self, label: Setting, path: &Path) -> Self {
        self.workdirs.push((label, path.to_path_buf()));
        self
    }

    /// A file or directory the command reads (an output must not land on it).
    pub fn input(mut self, label: &str, path: &Path) -> Self {
        self.inputs.push((label.to_string(), path.to_path_buf()));
        self
    }

    /// Checks every output of the plan (see the module documentation).
    pub fn check(&self) -> Result<()> {
        let mut seen: Vec<(Setting, &Path, PathBuf)> = Vec::new();
        for (label, path) in &self.outputs {
            regular_target(path)?;
            let id = identity(path);
            if let Some((other, _, _)) = seen.iter().find(|(_, _, i)| *i == id) {
                return Err(Error::invalid([
                    format!("{}: given both as ", path.display()).into(),
                    (*other).into(),
                    " and as ".into(),
                    (*label).into(),
                    "; each output needs its own path".into(),
                ]));
            }
            seen.push((*label, path, id));
        }
        for (label, path) in self.dirs.iter().chain(&self.workdirs) {
            if let Ok(meta) = fs::metadata(path) {
                if !meta.is_dir() {
                    return Err(Error::invalid([
                        format!("{}: ", path.display()).into(),
                        (*label).into(),
                        format!(" exists and is {}, not a directory", describe(&meta)).into(),
                    ]));
                }
            }
        }
        for (label, path) in &self.dirs {
            let id = identity(path);
            if let Some((other, p, _)) = seen.iter().find(|(_, _, i)| i.starts_with(&id)) {
                return Err(Error::invalid([
                    format!("{}: ", p.display()).into(),
                    (*other).into(),
                    " lies inside ".into(),
                    (*label).into(),
                    format!(" {}, which is replaced as a whole", path.display()).into(),
                ]));
            }
            seen.push((*label, path, id));
        }
        for (label, input) in &self.inputs {
            let id = identity(input);
            for (out_label, out, out_id) in &seen {
                if *out_id == id || (self.is_dir(out) && id.starts_with(out_id)) {
                    return Err(Error::invalid([
                        format!("{}: ", out.display()).into(),
                        (*out_label).into(),
                        format!(
                            " would overwrite {label} {}; give another path",
                            input.display()
                        )
                        .into(),
                    ]));
                }
            }
        }
        for (_, path) in &self.outputs {
            crate::util::atomic::check_writable(path)?;
        }
        Ok(())
    }

    /// Every path the plan reads, in the order given.
    pub fn reads(&self) -> impl Iterator<Item = &Path> {
        self.inputs.iter().map(|(_, p)| p.as_path())
    }

    /// Every file and directory the plan writes (not the directories it writes into).
    pub fn writes(&self) -> impl Iterator<Item = &Path> {
        self.outputs
            .iter()
            .chain(&self.dirs)
            .map(|(_, p)| p.as_path())
    }

    /// Whether `path` is one of the directories the plan writes as a whole.
    pub fn writes_dir(&self, path: &Path) -> bool {
        self.is_dir(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.dirs.iter().any(|(_, p)| p == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cbnn-output-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn non_regular_outputs_are_refused() {
        let d = root("kinds");
        let err = Plan::new()
            .file(Setting::Json, Some(&d))
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains("exists and is a directory"), "{err}");
        let err = Plan::new()
            .file(Setting::Output, Some(Path::new("/dev/null")))
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains("/dev/null: exists and is a device"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn one_path_twice_or_onto_an_input_is_refused() {
        let d = root("same");
        let m = d.join("m.json");
        fs::write(&m, b"{}").unwrap();
        let twice = d.join("sub/../x.json");
        let err = Plan::new()
            .file(Setting::Output, Some(&d.join("x.json")))
            .file(Setting::Json, Some(&twice))
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("given both as the output and as the JSON report"),
            "{err}"
        );
        let err = Plan::new()
            .file(Setting::Predictions, Some(&m))
            .input("the model", &m)
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the predictions file would overwrite the model"),
            "{err}"
        );
        let err = Plan::new()
            .dir(Setting::Output, &d)
            .input("the model", &m)
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the output would overwrite the model"),
            "{err}"
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
