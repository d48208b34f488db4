//! What a path is, for a command about to write it: the regular file that writing it replaces
//! (the path, or the final target of a symbolic link), how a file of another kind is named in
//! a message, and one spelling of a path for comparing two of them.
//!
//! Owns the rule that cbnn replaces only regular files. Never writes anything: the plan of a
//! command's outputs ([`super::output`]) and the atomic writes ([`super::atomic`]) ask it.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// The regular file that writing `path` replaces (the path itself, or the final target of a
/// symbolic link), or `None` when nothing exists there yet. Anything else is refused.
pub fn regular_target(path: &Path) -> Result<Option<PathBuf>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    if meta.file_type().is_symlink() {
        let target = fs::canonicalize(path).map_err(|_| {
            Error::usage(format!(
                "{}: is a symbolic link to a missing file; cbnn writes through links only to \
                 existing regular files",
                path.display()
            ))
        })?;
        let tmeta = fs::metadata(&target).map_err(|e| Error::io(&target, e))?;
        if !tmeta.is_file() {
            return Err(Error::usage(format!(
                "{}: is a symbolic link to {}, which is {}; cbnn writes only regular files",
                path.display(),
                target.display(),
                describe(&tmeta)
            )));
        }
        return Ok(Some(target));
    }
    if !meta.is_file() {
        return Err(Error::usage(format!(
            "{}: exists and is {}; cbnn writes only regular files, so give a new path or a \
             regular file",
            path.display(),
            describe(&meta)
        )));
    }
    Ok(Some(path.to_path_buf()))
}

/// "a directory", "a FIFO", ... for messages.
pub fn describe(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// A path that names the same file as every other spelling of it: symbolic links resolved
/// for the part that exists, `.` and `..` folded for the rest.
pub fn identity(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            Component::Normal(name) => {
                out.push(name);
                if let Ok(c) = fs::canonicalize(&out) {
                    out = c;
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_written_through_only_to_regular_files() {
        let d = std::env::temp_dir().join(format!("cbnn-target-links-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("real.json"), b"{}").unwrap();
        std::os::unix::fs::symlink(d.join("real.json"), d.join("link.json")).unwrap();
        std::os::unix::fs::symlink("/dev/null", d.join("null.json")).unwrap();
        std::os::unix::fs::symlink(d.join("gone"), d.join("dangling.json")).unwrap();
        assert_eq!(
            regular_target(&d.join("link.json")).unwrap(),
            Some(fs::canonicalize(d.join("real.json")).unwrap())
        );
        let err = regular_target(&d.join("null.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("which is a device"), "{err}");
        let err = regular_target(&d.join("dangling.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("link to a missing file"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }
}
