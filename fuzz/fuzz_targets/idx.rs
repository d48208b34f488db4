//! The IDX reader on arbitrary bytes (the same entry point `read_idx` uses after opening the
//! file, gzip detected from the first bytes): it must return a value or an error, never panic,
//! hang or allocate far beyond its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = cbnn::data::idx::decode(Path::new("fuzz.idx"), data) {
        // A parsed array holds exactly the elements its dimensions promise.
        let n: usize = a.dims.iter().product();
        assert_eq!(a.data.len(), n);
    }
});
