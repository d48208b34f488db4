//! The full-precision model loader on arbitrary text: it must return a valid model or an
//! error, never panic; a model it accepts must save and load back equal, and run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("cbnn-fuzz-float-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("f.json");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(m) = cbnn::float::load(&path) {
        cbnn::float::save(&m, &path).expect("a loaded model saves");
        assert_eq!(cbnn::float::load(&path).expect("a saved model loads"), m);
        // One image of zeros through both inference paths.
        let px = vec![0u8; m.input.pixels()];
        let engine = cbnn::float::Engine::new(&m);
        let one = engine.classify(&px, 1);
        assert!(one[0] < m.classes);
    }
});
