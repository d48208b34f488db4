//! IDX file reader (the MNIST container format): `idx3` images and `idx1` labels, plain or gzip.
//!
//! The header is checked before anything large is allocated: the element type must be unsigned
//! bytes, the dimensions must multiply to a sane size, and the file must hold exactly that many
//! bytes after the header. Every failure names the file and the problem.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;

use crate::error::{Error, Result};

/// Largest payload accepted (1 GiB): far above any image dataset this tool targets, far below
/// what a corrupt header could otherwise make it allocate.
const MAX_PAYLOAD: u64 = 1 << 30;

/// An IDX tensor of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Elements in row-major order.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes, gzip-compressed or not (detected from its first bytes).
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    decode(path, BufReader::new(file))
}

/// Decodes an IDX stream, gzip-compressed or not (detected from its first bytes); `path` only
/// names the source in errors.
pub fn decode(path: &Path, mut reader: impl Read) -> Result<IdxArray> {
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut reader, &mut magic).map_err(|e| Error::io(path, e))?;
    let head = std::io::Cursor::new(magic[..got].to_vec());
    if got == 2 && magic == [0x1f, 0x8b] {
        let decoder = GzDecoder::new(head.chain(reader));
        parse(path, decoder, true)
    } else {
        parse(path, head.chain(reader), false)
    }
}

/// Parses an IDX stream; `gz` only changes the wording of errors.
pub fn parse(path: &Path, mut reader: impl Read, gz: bool) -> Result<IdxArray> {
    let what = if gz { "gzip-compressed IDX" } else { "IDX" };
    let io_err = |e: std::io::Error| {
        if gz && e.kind() != std::io::ErrorKind::UnexpectedEof {
            Error::bad_file(path, format!("corrupt gzip data ({e})"))
        } else {
            Error::io(path, e)
        }
    };
    let mut header = [0u8; 4];
    let got = read_up_to(&mut reader, &mut header).map_err(io_err)?;
    if got < 4 {
        return Err(Error::bad_file(
            path,
            format!("truncated {what} file: {got} bytes, not even a 4-byte header"),
        ));
    }
    if header[0] != 0 || header[1] != 0 {
        return Err(Error::bad_file(
            path,
            format!(
                "not an IDX file: magic number starts {:02x} {:02x}, expected 00 00",
                header[0], header[1]
            ),
        ));
    }
    if header[2] != 0x08 {
        return Err(Error::bad_file(
            path,
            format!(
                "unsupported IDX element type 0x{:02x}: only unsigned bytes (0x08) are supported",
                header[2]
            ),
        ));
    }
    let ndims = header[3] as usize;
    if ndims == 0 || ndims > 4 {
        return Err(Error::bad_file(
            path,
            format!("IDX file declares {ndims} dimensions; 1 to 4 are supported"),
        ));
    }
    let mut dim_bytes = vec![0u8; 4 * ndims];
    let got = read_up_to(&mut reader, &mut dim_bytes).map_err(io_err)?;
    if got < dim_bytes.len() {
        return Err(Error::bad_file(
            path,
            format!("truncated {what} file: header ends after {} bytes", 4 + got),
        ));
    }
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let total = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&t| t <= MAX_PAYLOAD)
        .ok_or_else(|| {
            Error::bad_file(
                path,
                format!("IDX dimensions {dims:?} describe more than 1 GiB of data; refusing"),
            )
        })? as usize;
    let mut data = vec![0u8; total];
    let got = read_up_to(&mut reader, &mut data).map_err(io_err)?;
    if got < total {
        return Err(Error::bad_file(
            path,
            format!(
                "truncated {what} file: dimensions {dims:?} need {total} data bytes, found {got}"
            ),
        ));
    }
    let mut extra = [0u8; 1];
    if read_up_to(&mut reader, &mut extra).map_err(io_err)? > 0 {
        return Err(Error::bad_file(
            path,
            format!("{what} file is longer than its dimensions {dims:?} say"),
        ));
    }
    Ok(IdxArray { dims, data })
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Encodes an IDX file of unsigned bytes (used by tests and fixtures).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_bytes(bytes: &[u8]) -> Result<IdxArray> {
        parse(Path::new("x.idx"), bytes, false)
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let a = parse_bytes(&bytes).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn bad_magic_truncated_and_long() {
        let mut bytes = encode(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let e = parse_bytes(&[1, 2, 8, 1, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.idx: not an IDX file: magic number starts 01 02, expected 00 00"
        );
        let e = parse_bytes(&bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.idx: truncated IDX file: dimensions [2, 3] need 6 data bytes, found 5"
        );
        bytes.push(0);
        let e = parse_bytes(&bytes).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.idx: IDX file is longer than its dimensions [2, 3] say"
        );
    }

    #[test]
    fn absurd_dimensions_are_refused_before_allocating() {
        let bytes = encode(&[60000, 28000, 28000], &[]);
        let e = parse_bytes(&bytes).unwrap_err();
        assert!(e.to_string().contains("more than 1 GiB"), "{e}");
    }

    #[test]
    fn corrupt_gzip_is_reported() {
        let dir = std::env::temp_dir().join(format!("cbnn-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.gz");
        std::fs::write(
            &path,
            [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff],
        )
        .unwrap();
        let e = read_idx(&path).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("bad.gz"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
