//! Whole input files read with a bound: a model, a spec, a manifest or a report is read into
//! memory only up to a size cap of its kind, so that a huge file, or something that never ends
//! (`/dev/zero`, a pipe), is one sentence instead of a machine out of memory.
//!
//! Owns: the read and the message. Never: decides the caps (each reader names its own, beside
//! the limits of its format).

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// The bytes of `path` if it holds at most `cap` of them; `what` names the kind of file in the
/// error ("a model file"). A larger regular file is refused before it is read, anything else
/// after one byte more than the cap.
pub fn read_capped(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let too_large = || {
        Error::bad_file(
            path,
            format!(
                "holds more than {}, the most cbnn reads of {what}",
                size_text(cap)
            ),
        )
    };
    let size = match file.metadata() {
        Ok(m) if m.is_file() && m.len() > cap => return Err(too_large()),
        Ok(m) if m.is_file() => m.len(),
        _ => 0,
    };
    let mut bytes = Vec::with_capacity(size.min(cap) as usize + 1);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read_capped`] of a text file (UTF-8, as `std::fs::read_to_string` reads it).
pub fn read_text_capped(path: &Path, cap: u64, what: &str) -> Result<String> {
    String::from_utf8(read_capped(path, cap, what)?).map_err(|_| {
        Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ),
        )
    })
}

/// `bytes` in the largest binary unit that divides it ("1 GiB", "64 MiB", "4096 bytes").
fn size_text(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_its_cap_is_one_sentence_whatever_it_is() {
        let dir = std::env::temp_dir().join(format!("cbnn-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("m.json");
        std::fs::write(&f, vec![b'x'; 2049]).unwrap();
        let e = read_capped(&f, 2048, "a model file")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.json: holds more than 2 KiB, the most cbnn reads of a model file"),
            "{e}"
        );
        assert_eq!(read_capped(&f, 2049, "a model file").unwrap().len(), 2049);
        // Something that never ends: refused after the cap, not read until memory is gone.
        let e = read_capped(Path::new("/dev/zero"), 1 << 20, "a sweep spec")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("holds more than 1 MiB, the most cbnn reads of a sweep spec"),
            "{e}"
        );
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        let e = read_text_capped(&f, 10, "x").unwrap_err().to_string();
        assert!(e.contains("valid UTF-8"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
