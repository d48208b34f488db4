//! The IDX reader on valid gzip streams whose contents are mutated: the plain `idx` target
//! seldom produces a gzip stream that decompresses, so this one compresses the fuzzer's bytes
//! first and so reaches the parsing behind the decompressor. The first input byte picks the
//! compression level and whether the stream is cut short, to cover truncated members too.
#![no_main]

use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let mut enc = GzEncoder::new(Vec::new(), Compression::new(u32::from(mode % 10)));
    enc.write_all(body).expect("writing to memory");
    let mut gz = enc.finish().expect("finishing in memory");
    if mode >= 200 {
        // Cut the member: the parser must report it, not return a short array.
        let keep = gz.len() * usize::from(mode - 200) / 56;
        gz.truncate(keep);
    }
    let path = Path::new("fuzz.idx.gz");
    let plain = cbnn::data::idx::decode(path, body);
    let zipped = cbnn::data::idx::decode(path, gz.as_slice());
    match (&plain, &zipped) {
        (Ok(a), Ok(b)) => {
            // Compression is transparent: the same bytes parse to the same array.
            assert_eq!(a.dims, b.dims);
            assert_eq!(a.data, b.data);
            let n: usize = b.dims.iter().product();
            assert_eq!(b.data.len(), n);
        }
        (Err(_), Ok(_)) => panic!("a gzip stream parsed although its contents do not"),
        _ => {}
    }
});
