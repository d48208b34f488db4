//! The portable testbench (`cbnn testbench`): it passes in Icarus Verilog, in Verilator and
//! under cocotb on a small convolutional design, with random stalls, and fails in each when one
//! weight bit of the design is flipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A trained convnet on a fixture dataset and its design, the output layer folded (its weights
/// in a memory image, so that one flipped bit changes a score of every image).
fn design(name: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(name);
    let data = dir.join("data");
    write_fixture_dataset(&data, 300, 30, 8, false);
    let model = dir.join("m.json");
    let design = dir.join("d");
    cbnn_ok(&[
        "train",
        "--dataset",
        data.to_str().unwrap(),
        "--arch",
        "c4,p2,d8",
        "--planes",
        "7,6",
        "--epochs",
        "2",
        "--validation",
        "50",
        "-o",
        model.to_str().unwrap(),
    ]);
    cbnn_ok(&[
        "rtl",
        model.to_str().unwrap(),
        "-o",
        design.to_str().unwrap(),
        "--fold",
        "L0:2,6;L2:4,8;L3:2,4",
    ]);
    (data, design)
}

/// Runs a shell command line in `dir`; returns (success, stdout and stderr).
fn sh(dir: &Path, line: &str, path_prefix: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new("bash");
    cmd.args(["-c", line]).current_dir(dir);
    if let Some(p) = path_prefix {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", p.display()));
    }
    let out = cmd.output().expect("bash runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const ICARUS: &str = "iverilog -g2005 -o testbench/tb.vvp -f filelist.f testbench/tb_cbnn.v && vvp -n testbench/tb.vvp";
const VERILATOR: &str = "verilator --binary -Wno-fatal --Mdir testbench/obj_dir --top-module tb_cbnn -f filelist.f testbench/tb_cbnn.v >/dev/null && testbench/obj_dir/Vtb_cbnn";

/// Flips the most significant bit of the first word of the output layer's weight image.
fn flip_output_weight(design: &Path) {
    let path = design.join("l3_weights.hex");
    let text = std::fs::read_to_string(&path).unwrap();
    let first = text.chars().next().unwrap().to_digit(16).unwrap();
    let flipped = char::from_digit(first ^ 0x8, 16).unwrap();
    std::fs::write(&path, format!("{flipped}{}", &text[1..])).unwrap();
}

#[test]
fn the_testbench_passes_in_icarus_and_verilator_and_fails_on_a_flipped_weight_bit() {
    let (data, design) = design("tb-sims");
    let (d, data) = (design.to_str().unwrap(), data.to_str().unwrap());
    let out = cbnn_ok(&[
        "testbench",
        d,
        "--dataset",
        data,
        "--count",
        "12",
        "--stall-seed",
        "5",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("12 test images (stall seed 5)"), "{stdout}");
    let settings = json_file(&design.join("testbench/testbench.json"));
    assert_eq!(settings["images"], 12);
    assert_eq!(settings["stall_seed"], 5);
    for (name, line) in [("icarus", ICARUS), ("verilator", VERILATOR)] {
        let (ok, log) = sh(&design, line, None);
        assert!(ok && log.contains("PASS: 12 images"), "{name}: {log}");
    }
    // The design directory stays cbnn's: `cbnn rtl` may replace it, build outputs and all.
    cbnn_ok(&["testbench", d, "--dataset", data, "--count", "12"]);
    flip_output_weight(&design);
    for (name, line) in [("icarus", ICARUS), ("verilator", VERILATOR)] {
        let (ok, log) = sh(&design, line, None);
        assert!(
            !ok && log.contains("MISMATCH image 0") && log.contains("FAIL"),
            "{name}: {log}"
        );
    }
    // A foreign file in the testbench directory is not replaced.
    std::fs::write(design.join("testbench/notes.txt"), "mine").unwrap();
    assert_fails(
        &cbnn(&["testbench", d, "--dataset", data]),
        2,
        "notes.txt is neither a file `cbnn testbench` writes",
    );
    assert_eq!(
        std::fs::read_to_string(design.join("testbench/notes.txt")).unwrap(),
        "mine"
    );
}

/// The cocotb test (cocotb 2.x from `bash scripts/setup-venv.sh`, which the test command runs).
#[test]
fn the_cocotb_test_passes_and_fails_on_a_flipped_weight_bit() {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin");
    assert!(
        venv.join("cocotb-config").is_file(),
        "cocotb is not installed in target/venv: run `bash scripts/setup-venv.sh`"
    );
    let (data, design) = design("tb-cocotb");
    let (d, data) = (design.to_str().unwrap(), data.to_str().unwrap());
    cbnn_ok(&[
        "testbench",
        d,
        "--dataset",
        data,
        "--count",
        "4",
        "--stall-seed",
        "2",
    ]);
    let line = "make -f testbench/Makefile";
    let (ok, log) = sh(&design, line, Some(&venv));
    assert!(ok && log.contains("PASS=1"), "{log}");
    flip_output_weight(&design);
    let (ok, log) = sh(&design, line, Some(&venv));
    assert!(!ok && log.contains("FAIL=1"), "{log}");
}
