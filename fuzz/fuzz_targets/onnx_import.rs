//! The ONNX importer (`cbnn import` behind its file reader) on arbitrary bytes: it must return
//! a model or an error, never panic, hang or allocate without bound; a model it accepts must
//! pass the model loader's checks, save and load back to the same text, and run.
#![no_main]

use cbnn::interop::import::{import, Options};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(imported) = import(data, &Options::default()) else {
        return;
    };
    let m = imported.model;
    let text = cbnn::model::json_text(&m);
    let again = cbnn::model::from_json(Path::new("fuzz.json"), &text)
        .expect("an imported model passes the loader's checks");
    assert_eq!(cbnn::model::json_text(&again), text);
    // One image of clear bits through the packed executor and the definition.
    let n = m.features();
    let packed = cbnn::reference::Executor::new(&m).predict(&vec![0u64; n.div_ceil(64)]);
    let defined = cbnn::reference::predict_by_definition(&m, &vec![false; n]);
    assert_eq!(packed.scores, defined.scores);
    assert_eq!(packed.scores.len(), m.classes());
});
