//! Atomic file output: write to a temporary file beside the target, flush it to disk, rename.
//!
//! An interrupted run therefore never leaves a truncated model, report or RTL file behind: the
//! target either keeps its old contents or gets the complete new ones.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The temporary path used while `path` is being written.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically, creating missing parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    remove_stale_temporaries(path);
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Writes the directory `dir` as a whole: `fill` writes into a staging directory beside it
/// (`.NAME.tmp-PID`), which then takes the place of `dir` (an older `dir` is moved aside and
/// removed). An interrupted run leaves either the old directory or the complete new one, never
/// a mix; a failing `fill` leaves `dir` as it was.
pub fn write_dir_atomic<T>(dir: &Path, fill: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    remove_stale_temporaries(dir);
    let staging = temp_path(dir);
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    }
    fs::create_dir_all(&staging).map_err(|e| Error::io(dir, e))?;
    let value = match fill(&staging) {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let result = (|| {
        if dir.exists() {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let old = dir.with_file_name(format!(".{name}.old.tmp-{}", std::process::id()));
            fs::rename(dir, &old)?;
            fs::rename(&staging, dir)?;
            fs::remove_dir_all(&old)
        } else {
            fs::rename(&staging, dir)
        }
    })();
    result.map_err(|e| {
        let _ = fs::remove_dir_all(&staging);
        Error::io(dir, e)
    })?;
    Ok(value)
}

/// Removes what interrupted writes of `path` left beside it: files or directories named
/// `.NAME.tmp-PID` or `.NAME.old.tmp-PID` whose process is no longer running.
pub fn remove_stale_temporaries(path: &Path) {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let name = name.to_string_lossy();
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let entry = e.file_name().to_string_lossy().into_owned();
        let pid = [format!(".{name}.tmp-"), format!(".{name}.old.tmp-")]
            .iter()
            .find_map(|prefix| entry.strip_prefix(prefix.as_str()).map(str::to_string));
        if pid.is_some_and(|p| !process_is_running(&p)) {
            let p = e.path();
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
    }
}

/// Whether a process with this id runs now (Linux `/proc`; elsewhere every process counts as
/// gone, which only matters for two runs writing the same output at once).
fn process_is_running(pid: &str) -> bool {
    pid.parse::<u32>().is_ok()
        && (pid == std::process::id().to_string() || Path::new("/proc").join(pid).exists())
}

/// Checks before long work that `path` can be written: creates its missing parent
/// directories and a temporary file beside it, then removes that file. Fails with the same
/// error the final write would give.
pub fn check_writable(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let tmp = temp_path(path);
    File::create(&tmp).map_err(|e| Error::io(path, e))?;
    let _ = fs::remove_file(&tmp);
    Ok(())
}

/// Serialises `value` as pretty JSON (with a final newline) and writes it atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::bad_file(path, format!("cannot serialise JSON: {e}")))?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_file_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("cbnn-atomic-{}", std::process::id()));
        let path = dir.join("sub").join("out.txt");
        write_atomic(&path, b"hello").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        write_atomic(&path, b"again").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"again");
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn directories_are_replaced_whole_and_leftovers_of_dead_runs_removed() {
        let root = std::env::temp_dir().join(format!("cbnn-atomic-dir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dir = root.join("design");
        write_dir_atomic(&dir, |d| write_atomic(&d.join("a.v"), b"one")).unwrap();
        assert_eq!(names(&dir), ["a.v"]);
        // A staging directory and a temporary file of a run that no longer exists
        // (process ids are below 2^22 on Linux).
        fs::create_dir_all(root.join(".design.tmp-99999999/x")).unwrap();
        fs::write(root.join(".m.json.tmp-99999999"), b"half").unwrap();
        // A failing fill leaves the old directory as it was, and nothing beside it.
        let err = write_dir_atomic(&dir, |d| {
            write_atomic(&d.join("b.v"), b"two")?;
            Err::<(), _>(Error::usage("stop"))
        });
        assert!(err.is_err());
        assert_eq!(names(&dir), ["a.v"]);
        assert_eq!(names(&root), [".m.json.tmp-99999999", "design"]);
        // A new design replaces the old one whole: a.v does not survive.
        write_dir_atomic(&dir, |d| write_atomic(&d.join("b.v"), b"two")).unwrap();
        assert_eq!(names(&dir), ["b.v"]);
        write_atomic(&root.join("m.json"), b"whole").unwrap();
        assert_eq!(names(&root), ["design", "m.json"]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn unwritable_target_is_an_io_error_naming_the_path() {
        let err = write_atomic(Path::new("/proc/cbnn-cannot-write/x.json"), b"x").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("/proc/cbnn-cannot-write"), "{err}");
    }
}
