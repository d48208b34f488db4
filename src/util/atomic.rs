//! Atomic file output: write to a temporary file beside the target, flush it to disk, rename.
//!
//! An interrupted run therefore never leaves a truncated model, report or RTL file behind: the
//! target either keeps its old contents or gets the complete new ones.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::util::target::regular_target;

/// The temporary path used while `path` is being written.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically, creating missing parent directories.
///
/// Only a regular file is ever replaced: an existing directory, FIFO, socket or device is
/// refused (checked again just before the rename), and a symbolic link to a regular file is
/// written through (its target is replaced, the link stays).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let target = regular_target(path)?.unwrap_or_else(|| path.to_path_buf());
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    remove_stale_temporaries(&target);
    let tmp = temp_path(&target);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(())
    })()
    .map_err(|e| Error::io(path, e))
    .and_then(|()| {
        // The path may have changed kind while the file was written.
        regular_target(&target)?;
        fs::rename(&tmp, &target).map_err(|e| Error::io(path, e))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// For outputs another program writes (a waveform written by the simulator): the temporary
/// path that program should write, beside the regular file `path` will replace. Hand it to
/// [`commit`] afterwards.
pub fn temporary_for(path: &Path) -> Result<PathBuf> {
    let target = regular_target(path)?.unwrap_or_else(|| path.to_path_buf());
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    remove_stale_temporaries(&target);
    Ok(temp_path(&target))
}

/// Moves a finished temporary (from [`temporary_for`]) into place at `path`; an error when the
/// program did not write it.
pub fn commit(tmp: &Path, path: &Path) -> Result<()> {
    if !tmp.is_file() {
        return Err(Error::CheckFailed(format!(
            "{}: the simulator did not write it",
            path.display()
        )));
    }
    let target = match regular_target(path) {
        Ok(t) => t.unwrap_or_else(|| path.to_path_buf()),
        Err(e) => {
            let _ = fs::remove_file(tmp);
            return Err(e);
        }
    };
    fs::rename(tmp, &target).map_err(|e| {
        let _ = fs::remove_file(tmp);
        Error::io(path, e)
    })
}

/// Writes the directory `dir` as a whole: `fill` writes into a staging directory beside it
/// (`.NAME.tmp-PID`), which then takes the place of `dir`. On Linux the two are exchanged in
/// one atomic rename, so a killed run leaves either the old directory or the complete new one,
/// never a mix and never neither; where the exchange is not supported the old directory is
/// first moved aside (`.NAME.old.tmp-PID`), and the next run puts it back if the run died
/// between the two renames. A failing `fill` leaves `dir` as it was.
pub fn write_dir_atomic<T>(dir: &Path, fill: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    remove_stale_temporaries(dir);
    let staging = temp_path(dir);
    if fs::symlink_metadata(&staging).is_ok() {
        remove_entry(&staging).map_err(|e| Error::io(&staging, e))?;
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
        if fs::symlink_metadata(dir).is_err() {
            return fs::rename(&staging, dir);
        }
        if exchange(&staging, dir).is_ok() {
            // `staging` now holds the old design.
            return fs::remove_dir_all(&staging);
        }
        let old = old_path(dir);
        fs::rename(dir, &old)?;
        fs::rename(&staging, dir)?;
        fs::remove_dir_all(&old)
    })();
    result.map_err(|e| {
        let _ = fs::remove_dir_all(&staging);
        Error::io(dir, e)
    })?;
    Ok(value)
}

/// Swaps two existing paths in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call; the
    // system call reads them and touches no other memory of this process.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

fn old_path(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!(".{name}.old.tmp-{}", std::process::id()))
}

/// Removes a file, link or directory tree without following a link.
fn remove_entry(p: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(p)?.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    }
}

/// Cleans up what interrupted writes of `path` left beside it: files or directories named
/// `.NAME.tmp-PID` or `.NAME.old.tmp-PID` whose process is no longer running. When `path`
/// itself is missing and an old copy was moved aside by a run that died before it could put
/// the new one in place, the old copy is restored instead of removed.
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
    let (new_prefix, old_prefix) = (format!(".{name}.tmp-"), format!(".{name}.old.tmp-"));
    let mut stale_new = Vec::new();
    let mut stale_old = Vec::new();
    for e in entries.flatten() {
        let entry = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = entry.strip_prefix(new_prefix.as_str()) {
            if !process_is_running(pid) {
                stale_new.push(e.path());
            }
        } else if let Some(pid) = entry.strip_prefix(old_prefix.as_str()) {
            if !process_is_running(pid) {
                stale_old.push(e.path());
            }
        }
    }
    if fs::symlink_metadata(path).is_err() {
        if let Some(old) = stale_old.pop() {
            let _ = fs::rename(&old, path);
        }
    }
    for p in stale_new.iter().chain(&stale_old) {
        let _ = remove_entry(p);
    }
}

/// Cleans up, in the directory `dir` only (no recursion, links never followed), what
/// interrupted cbnn writes left: [`remove_stale_temporaries`] for every `.NAME.tmp-PID` or
/// `.NAME.old.tmp-PID` entry whose process is gone. Nothing else is touched.
pub fn remove_stale_in(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut targets: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let (head, pid) = n.strip_prefix('.')?.rsplit_once(".tmp-")?;
            let name = head.strip_suffix(".old").unwrap_or(head);
            (!name.is_empty() && !process_is_running(pid)).then(|| name.to_string())
        })
        .collect();
    targets.sort();
    targets.dedup();
    for name in targets {
        remove_stale_temporaries(&dir.join(name));
    }
}

/// Whether a process with this id runs now (Linux `/proc`; elsewhere every process counts as
/// gone, which only matters for two runs writing the same output at once).
pub fn process_is_running(pid: &str) -> bool {
    pid.parse::<u32>().is_ok()
        && (pid == std::process::id().to_string() || Path::new("/proc").join(pid).exists())
}

/// Checks before long work that `path` can be written: creates its missing parent
/// directories and a temporary file beside it, then removes that file. Fails with the same
/// error the final write would give.
pub fn check_writable(path: &Path) -> Result<()> {
    let path = &regular_target(path)?.unwrap_or_else(|| path.to_path_buf());
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
    write_atomic(path, &json_bytes(path, value)?)
}

/// The bytes [`write_json`] writes for `value` (pretty JSON and a newline); `path` names it in
/// an error.
pub fn json_bytes<T: serde::Serialize>(path: &Path, value: &T) -> Result<Vec<u8>> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::bad_file(path, format!("cannot serialise JSON: {e}")))?;
    text.push('\n');
    Ok(text.into_bytes())
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
    fn a_design_moved_aside_by_a_dead_run_is_restored_not_removed() {
        let root = std::env::temp_dir().join(format!("cbnn-atomic-old-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        // Killed between its two renames: the old design aside, the new one in staging.
        fs::create_dir_all(root.join(".design.old.tmp-99999999")).unwrap();
        fs::write(root.join(".design.old.tmp-99999999/a.v"), b"old").unwrap();
        fs::create_dir_all(root.join(".design.tmp-99999999")).unwrap();
        let dir = root.join("design");
        remove_stale_temporaries(&dir);
        assert_eq!(names(&root), ["design"]);
        assert_eq!(fs::read(dir.join("a.v")).unwrap(), b"old");
        // A later failing run still leaves the old design in place.
        let _ = write_dir_atomic(&dir, |_| Err::<(), _>(Error::usage("stop")));
        assert_eq!(names(&dir), ["a.v"]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn exchange_swaps_two_directories() {
        let root = std::env::temp_dir().join(format!("cbnn-atomic-xchg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("a/one")).unwrap();
        fs::create_dir_all(root.join("b/two")).unwrap();
        exchange(&root.join("a"), &root.join("b")).unwrap();
        assert_eq!(names(&root.join("a")), ["two"]);
        assert_eq!(names(&root.join("b")), ["one"]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn links_are_written_through_and_special_files_never_replaced() {
        let root = std::env::temp_dir().join(format!("cbnn-atomic-link-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("real"), b"old").unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
        write_atomic(&root.join("link"), b"new").unwrap();
        assert!(fs::symlink_metadata(root.join("link"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(root.join("real")).unwrap(), b"new");
        let fifo = root.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = write_atomic(&fifo, b"x").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("exists and is a FIFO"), "{err}");
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(names(&root), ["fifo", "link", "real"]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn unwritable_target_is_an_io_error_naming_the_path() {
        let err = write_atomic(Path::new("/proc/cbnn-cannot-write/x.json"), b"x").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("/proc/cbnn-cannot-write"), "{err}");
    }
}
