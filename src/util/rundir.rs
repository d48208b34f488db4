//! Run directories: the directories `cbnn flow` and `cbnn sweep` fill with many files over a
//! long run and come back to on the next one.
//!
//! Owns: what makes a directory a run directory of a command (a marker,
//! `stages/run.json`, written when cbnn starts using the directory), the decision to write
//! into an existing directory (only an empty one or a run directory of the same command), the
//! lock that keeps two runs out of one directory, and the order in which a run's report files
//! are replaced (so that a run killed in the middle never leaves files of two runs).
//!
//! Never: writes into a directory that holds files and is not provably its own, follows a link
//! or writes through a second name of a file (a hard link) in its own bookkeeping, removes a
//! file other than the report files it is about to write.

use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::{atomic, target};

/// The marker's file name, below the run directory.
const MARKER: &str = "stages/run.json";

/// The lock's file name, below the run directory (earlier versions made it too, before the
/// marker existed: a directory with it and no marker is a run directory of theirs).
const LOCK: &str = "stages/flow.lock";

/// What the marker holds.
#[derive(Serialize, Deserialize)]
struct Marker {
    format: String,
    kind: String,
}

const FORMAT: &str = "cbnn-run";

/// A run directory held by this process: no other run writes into it until this is dropped
/// (or the process ends, however it ends).
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    _lock: fs::File,
}

impl RunDir {
    /// Takes `path` as a run directory of `command` (`"flow"`, `"sweep"`): creates it when it
    /// does not exist, and uses an existing directory only when it is empty or a run
    /// directory of the same command; then locks it. Fails, before anything is written, on a
    /// directory holding anything else, naming what it is.
    pub fn open(path: &Path, command: &str) -> Result<RunDir> {
        check(path, command)?;
        let stages = path.join("stages");
        fs::create_dir_all(&stages).map_err(|e| Error::io(path, e))?;
        let lock = lock(path, command)?;
        let marker = path.join(MARKER);
        if fs::symlink_metadata(&marker).is_err() {
            atomic::write_json(
                &marker,
                &Marker {
                    format: FORMAT.into(),
                    kind: command.into(),
                },
            )?;
        }
        Ok(RunDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces a run's report files, given in order, so that a run killed at any moment
    /// leaves no mix of two runs: every one of them is removed first, then each is written
    /// (atomically) in the order given. The last (the machine-readable report) therefore
    /// exists only when all of them are of the same run.
    pub fn write_report(&self, files: &[(&str, Vec<u8>)]) -> Result<()> {
        for (name, _) in files {
            let p = self.path.join(name);
            if fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
                fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
        for (name, bytes) in files {
            atomic::write_atomic(&self.path.join(name), bytes)?;
        }
        Ok(())
    }
}

/// Whether `path` may be used as a run directory of `command` (see [`RunDir::open`]).
pub fn check(path: &Path, command: &str) -> Result<()> {
    let meta = match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
        Ok(m) => m,
    };
    if !meta.is_dir() {
        return Err(Error::usage(format!(
            "{}: exists and is {}, not a directory",
            path.display(),
            target::describe(&meta)
        )));
    }
    let mut entries = fs::read_dir(path).map_err(|e| Error::io(path, e))?;
    if entries.next().is_none() {
        return Ok(());
    }
    let marker = path.join(MARKER);
    match fs::read_to_string(&marker) {
        Ok(text) => match serde_json::from_str::<Marker>(&text) {
            Ok(m) if m.format == FORMAT && m.kind == command => Ok(()),
            Ok(m) if m.format == FORMAT => Err(Error::usage(format!(
                "{}: is a run directory of `cbnn {}`, not of `cbnn {command}`; give `cbnn \
                 {command}` a new directory, an empty one or one of its own",
                path.display(),
                m.kind
            ))),
            _ => Err(Error::usage(format!(
                "{}: {} is not cbnn's run marker; cbnn writes into an existing directory only \
                 when it is empty or a run directory of its own",
                path.display(),
                marker.display()
            ))),
        },
        // A run directory of a version before the marker: it has the lock file.
        Err(_) if fs::symlink_metadata(path.join(LOCK)).is_ok_and(|m| m.is_file()) => Ok(()),
        Err(_) => Err(Error::usage(format!(
            "{}: the directory holds files and is not a run directory of `cbnn {command}` (it \
             has no {MARKER}); `cbnn {command}` writes its stages' files and its report into \
             its run directory, so give a new directory, an empty one or an earlier run \
             directory of `cbnn {command}`",
            path.display()
        ))),
    }
}

/// Locks the run directory `run` for this process: a second run on it is refused (naming the
/// process that holds it). The lock file is cbnn's own: a link or a file with other names
/// (a hard link to someone's file) is refused, never written through.
fn lock(run: &Path, command: &str) -> Result<fs::File> {
    let path = run.join(LOCK);
    if let Ok(meta) = fs::symlink_metadata(&path) {
        if !meta.is_file() {
            return Err(Error::usage(format!(
                "{}: exists and is {}; it is cbnn's lock file",
                path.display(),
                target::describe(&meta)
            )));
        }
    }
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
    if !meta.is_file() || meta.nlink() != 1 {
        return Err(Error::usage(format!(
            "{}: has {} names (hard links); it is cbnn's lock file, which it writes, so \
             remove it",
            path.display(),
            meta.nlink()
        )));
    }
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(Error::usage(format!(
            "{}: another cbnn {command} (process {}) is running in this directory; wait for \
             it or give another directory",
            run.display(),
            holder.trim()
        )));
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cbnn-rundir-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn only_new_empty_or_own_directories_are_used() {
        let root = fresh("own");
        // New, and empty: taken, and marked.
        let new = root.join("new");
        drop(RunDir::open(&new, "flow").unwrap());
        assert!(new.join(MARKER).is_file());
        let empty = root.join("empty");
        fs::create_dir(&empty).unwrap();
        drop(RunDir::open(&empty, "sweep").unwrap());
        // Its own again: fine; the other command's: refused.
        drop(RunDir::open(&new, "flow").unwrap());
        let e = RunDir::open(&new, "sweep").unwrap_err().to_string();
        assert!(e.contains("is a run directory of `cbnn flow`"), "{e}");
        // A user's directory: refused, and untouched.
        let users = root.join("users");
        fs::create_dir(&users).unwrap();
        fs::write(users.join("report.md"), "mine").unwrap();
        let e = RunDir::open(&users, "flow").unwrap_err().to_string();
        assert!(e.contains("is not a run directory of `cbnn flow`"), "{e}");
        assert_eq!(fs::read_dir(&users).unwrap().count(), 1);
        assert_eq!(fs::read_to_string(users.join("report.md")).unwrap(), "mine");
        // A run directory of an earlier version (the lock, no marker): taken, and marked.
        let old = root.join("old");
        fs::create_dir_all(old.join("stages")).unwrap();
        fs::write(old.join(LOCK), "").unwrap();
        fs::write(old.join("report.md"), "old").unwrap();
        drop(RunDir::open(&old, "sweep").unwrap());
        assert!(old.join(MARKER).is_file());
        // A file in its place.
        let file = root.join("file");
        fs::write(&file, "x").unwrap();
        let e = RunDir::open(&file, "flow").unwrap_err().to_string();
        assert!(
            e.contains("exists and is a regular file, not a directory"),
            "{e}"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_lock_is_never_written_through_another_name() {
        let root = fresh("lock");
        let run = root.join("run");
        drop(RunDir::open(&run, "flow").unwrap());
        // The lock replaced by a hard link to a user's file: refused, the file intact.
        let users = root.join("notes.txt");
        fs::write(&users, "precious").unwrap();
        fs::remove_file(run.join(LOCK)).unwrap();
        fs::hard_link(&users, run.join(LOCK)).unwrap();
        let e = RunDir::open(&run, "flow").unwrap_err().to_string();
        assert!(e.contains("has 2 names (hard links)"), "{e}");
        assert_eq!(fs::read_to_string(&users).unwrap(), "precious");
        // A symbolic link: refused too.
        fs::remove_file(run.join(LOCK)).unwrap();
        std::os::unix::fs::symlink(&users, run.join(LOCK)).unwrap();
        let e = RunDir::open(&run, "flow").unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
        assert_eq!(fs::read_to_string(&users).unwrap(), "precious");
        // Held by one run, refused to a second.
        fs::remove_file(run.join(LOCK)).unwrap();
        let held = RunDir::open(&run, "flow").unwrap();
        let e = RunDir::open(&run, "flow").unwrap_err().to_string();
        assert!(e.contains("another cbnn flow (process"), "{e}");
        drop(held);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_report_is_never_a_mix_of_two_runs() {
        let root = fresh("report");
        let run = RunDir::open(&root.join("run"), "sweep").unwrap();
        let p = run.path().to_path_buf();
        for (name, text) in [
            ("chart.svg", "old"),
            ("report.md", "old"),
            ("report.json", "old"),
        ] {
            fs::write(p.join(name), text).unwrap();
        }
        // A write that fails at its second file (a directory in its way) leaves the first
        // new and the others gone: never an old one beside a new one.
        fs::remove_file(p.join("report.md")).unwrap();
        fs::create_dir(p.join("report.md")).unwrap();
        let files = |t: &str| -> Vec<(&'static str, Vec<u8>)> {
            ["chart.svg", "report.md", "report.json"]
                .into_iter()
                .map(|n| (n, t.as_bytes().to_vec()))
                .collect()
        };
        assert!(run.write_report(&files("new")).is_err());
        assert_eq!(fs::read_to_string(p.join("chart.svg")).unwrap(), "new");
        assert!(!p.join("report.json").exists());
        fs::remove_dir(p.join("report.md")).unwrap();
        run.write_report(&files("new")).unwrap();
        for n in ["chart.svg", "report.md", "report.json"] {
            assert_eq!(fs::read_to_string(p.join(n)).unwrap(), "new");
        }
        drop(run);
        fs::remove_dir_all(&root).unwrap();
    }
}
