//! Scratch directories of a running cbnn process in the system's temporary folder.
//!
//! Owns: their names (`cbnn-PURPOSE-PID.N`: the purpose, the process that made it, a counter),
//! their creation (always a new directory, never one that exists), their removal when the
//! [`Scratch`] is dropped, and the removal of those whose process is gone: a run killed with
//! SIGKILL cannot remove its own, so the next one of the same purpose does.
//!
//! Never: removes an entry whose name is not of that form, one whose process still runs (or may:
//! where processes cannot be listed, nothing is removed), a symbolic link or anything a link
//! points to.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::util::atomic::process_is_running;

/// A new directory of this process's, removed with everything in it when dropped.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A new directory `cbnn-PURPOSE-PID.N` in the system's temporary folder (`$TMPDIR`), after
    /// the removal of those of `purpose` whose process is gone.
    pub fn new(purpose: &str) -> Result<Scratch> {
        Scratch::in_dir(&std::env::temp_dir(), purpose)
    }

    /// As [`Scratch::new`], in `parent`.
    pub fn in_dir(parent: &Path, purpose: &str) -> Result<Scratch> {
        remove_dead(parent, purpose);
        let stem = parent.join(format!("cbnn-{purpose}-{}", std::process::id()));
        (0..)
            .map(|k| stem.with_extension(k.to_string()))
            .find_map(|dir| match std::fs::create_dir(&dir) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
                other => Some(other.map(|()| Scratch { path: dir })),
            })
            .expect("an unbounded range")
            .map_err(|e| Error::io(&stem, e))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The process id in the name of a scratch directory of `purpose`, if the name is one.
fn owner<'a>(name: &'a str, purpose: &str) -> Option<&'a str> {
    let rest = name
        .strip_prefix("cbnn-")?
        .strip_prefix(purpose)?
        .strip_prefix('-')?;
    let (pid, counter) = rest.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(counter)).then_some(pid)
}

/// Removes the scratch directories of `purpose` in `parent` whose process is gone.
fn remove_dead(parent: &Path, purpose: &str) {
    remove_dead_dirs(parent, |name| owner(name, purpose));
}

/// Removes the directories in `parent` whose name `owner` recognises, giving the process that
/// made it, when that process is gone (also used for other temporary directories of cbnn's,
/// such as a Verilator build's in the cache).
pub fn remove_dead_dirs(parent: &Path, owner: impl Fn(&str) -> Option<&str>) {
    // Without a process table every process would look gone: remove nothing then.
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let dead = owner(&name).is_some_and(|pid| !process_is_running(pid));
        // `file_type` does not follow links: a link is never removed, nor what it points to.
        if dead && e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_recognised_only_in_their_exact_form() {
        assert_eq!(owner("cbnn-prune-123.0", "prune"), Some("123"));
        assert_eq!(owner("cbnn-prune-123.45", "prune"), Some("123"));
        for other in [
            "cbnn-prune-123",
            "cbnn-prune-123.",
            "cbnn-prune-.1",
            "cbnn-prune-12a.1",
            "cbnn-prune-ray-123.0",
            "cbnn-prunex-123.0",
            "prune-123.0",
            "cbnn-prune-123.1.tmp",
        ] {
            assert_eq!(owner(other, "prune"), None, "{other}");
        }
    }

    #[test]
    fn a_dead_processs_directories_are_removed_and_nothing_else() {
        let parent = std::env::temp_dir().join(format!("cbnn-scratch-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&parent);
        std::fs::create_dir_all(&parent).unwrap();
        // A process id above the kernel's largest is never running.
        let dead = parent.join("cbnn-prune-4194305.0");
        std::fs::create_dir_all(dead.join("inside")).unwrap();
        // A live process's (this one's, under another counter), another purpose's, a user's.
        let live = parent.join(format!("cbnn-prune-{}.7", std::process::id()));
        let other = parent.join("cbnn-sweep-4194305.0");
        let users = parent.join("notes-4194305.0");
        for d in [&live, &other, &users] {
            std::fs::create_dir(d).unwrap();
        }
        // A link named like a dead one, to a directory of the user's: neither goes.
        let link = parent.join("cbnn-prune-4194306.0");
        std::os::unix::fs::symlink(&users, &link).unwrap();

        let s = Scratch::in_dir(&parent, "prune").unwrap();
        assert!(s.path().is_dir());
        assert!(s
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("cbnn-prune-{}.", std::process::id())));
        assert!(!dead.exists(), "a dead process's scratch directory stays");
        for kept in [&live, &other, &users] {
            assert!(kept.is_dir(), "{} was removed", kept.display());
        }
        assert!(link.symlink_metadata().is_ok() && users.is_dir());
        // A second one gets its own directory; each goes when dropped.
        let t = Scratch::in_dir(&parent, "prune").unwrap();
        assert_ne!(s.path(), t.path());
        let (p, q) = (s.path().to_path_buf(), t.path().to_path_buf());
        drop(s);
        drop(t);
        assert!(!p.exists() && !q.exists());
        std::fs::remove_dir_all(&parent).unwrap();
    }
}
