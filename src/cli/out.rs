//! Standard output that never panics.
//!
//! `println!` panics when stdout is closed (`cbnn eval ... | head -1`) or full. Results must
//! still be written to their files, so every line goes through [`line()`], which keeps the first
//! write error and drops the rest of the output; the binary reports that error after the work
//! is done ([`take_error`]): a closed pipe ends quietly with exit 0 (the reader asked for no
//! more), any other failure (a full disk) is reported with exit 2.

use std::io::Write;
use std::sync::Mutex;

static ERROR: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Writes one line to stdout, or remembers why it could not.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut error = ERROR.lock().unwrap_or_else(|e| e.into_inner());
    if error.is_some() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        *error = Some(e);
    }
}

/// Flushes stdout and returns the first error writing to it, if any.
pub fn take_error() -> Option<std::io::Error> {
    let mut error = ERROR.lock().unwrap_or_else(|e| e.into_inner());
    if error.is_none() {
        if let Err(e) = std::io::stdout().lock().flush() {
            *error = Some(e);
        }
    }
    error.take()
}
