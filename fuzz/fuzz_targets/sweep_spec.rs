//! The sweep spec reader on arbitrary text, and every folding a spec it accepts names, chosen
//! against a small model: each must give a spec or a folding, or an error, never panic or hang.
#![no_main]

use cbnn::jobs::rtl::choose_folding;
use cbnn::sweep::Spec;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

/// A two-layer model (the model target's seed).
fn model() -> &'static cbnn::model::IntModel {
    static M: OnceLock<cbnn::model::IntModel> = OnceLock::new();
    M.get_or_init(|| {
        cbnn::model::from_json(
            Path::new("tiny.json"),
            include_str!("../corpus/model/tiny.json"),
        )
        .expect("the seed model loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = Spec::parse(text, Path::new("fuzz/spec.toml")) else {
        return;
    };
    assert!(!spec.models.is_empty() && !spec.foldings.is_empty());
    for (_, fold) in &spec.foldings {
        if let Ok((folds, ppb)) = choose_folding(model(), fold, spec.pipe, None) {
            assert_eq!(folds.len(), model().layers.len());
            assert!(ppb >= 1);
        }
    }
});
