//! The IDX parser on arbitrary bytes, raw and as gzip: it must return a value or an error,
//! never panic, hang or allocate far beyond its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.idx");
    if let Ok(a) = cbnn::data::idx::parse(path, data, false) {
        // A parsed array holds exactly the elements its dimensions promise.
        let n: usize = a.dims.iter().product();
        assert_eq!(a.data.len(), n);
    }
    let _ = cbnn::data::idx::parse(path, data, true);
});
