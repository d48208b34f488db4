//! The model loader on arbitrary text: it must return a valid model or an error, never panic;
//! a model it accepts must survive a save/load round trip unchanged and run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.json");
    if let Ok(m) = cbnn::model::from_json(path, text) {
        let again = cbnn::model::from_json(path, &cbnn::model::json_text(&m))
            .expect("a saved model loads");
        assert_eq!(cbnn::model::json_text(&again), cbnn::model::json_text(&m));
    }
});
