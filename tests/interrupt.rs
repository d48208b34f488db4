//! Interrupted runs and determinism. A kill in the middle of `train`, `prune` or `rtl` leaves
//! the previous output whole and nothing half written, and the next run cleans up after it;
//! the same seed gives byte-identical models, designs and reports, whatever the thread count.
//! (`tests/flow.rs` kills and resumes a whole flow.)

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `cbnn args` (stdout discarded, stderr to `stderr`).
fn spawn(args: &[&str], stderr: Stdio) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args(args)
        .env_remove("CBNN_DATA")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Starts `cbnn args`, kills it (SIGKILL: no handler runs) after `after`, returns whether it
/// was still running then.
fn kill_after(args: &[&str], after: Duration) -> bool {
    let mut child = spawn(args, Stdio::null());
    std::thread::sleep(after);
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    running
}

/// Starts `cbnn args`, kills it (SIGKILL) as soon as it reports epoch `epoch` on stderr (so
/// in the middle of training, whatever the machine's speed), returns whether it did.
fn kill_at_epoch(args: &[&str], epoch: usize) -> bool {
    use std::io::BufRead;
    let mut child = spawn(args, Stdio::piped());
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let marker = epoch.to_string();
    let seen = stderr.lines().map_while(Result::ok).any(|line| {
        let mut words = line.split_whitespace();
        words.next() == Some("epoch") && words.next() == Some(marker.as_str())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    seen
}

/// Runs `cbnn args` to completion and returns how long it took.
fn timed(args: &[&str]) -> Duration {
    let start = Instant::now();
    cbnn_ok(args);
    start.elapsed()
}

/// Entries of `dir` left by interrupted writes.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

fn train_args<'a>(data: &'a str, out: &'a str, threads: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--dataset",
        data,
        "--hidden",
        "128,64",
        "--epochs",
        epochs,
        "--validation",
        "200",
        "--seed",
        "5",
        "--threads",
        threads,
        "-o",
        out,
    ]
}

#[test]
fn killed_commands_leave_whole_files_and_results_are_reproducible() {
    let dir = temp_dir("interrupt");
    let data = dir.join("data");
    write_fixture_dataset(&data, 3000, 200, 14, false);
    let data = data.to_str().unwrap();
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();

    // --- train: byte-identical models with one thread and with two, and the training report
    // equal but for its timings.
    let (m1, m2) = (p("m1.json"), p("m2.json"));
    let (t1_path, t2_path) = (p("t1.json"), p("t2.json"));
    let mut args = train_args(data, &m1, "1", "40");
    args.extend(["--json", &t1_path]);
    cbnn_ok(&args);
    let mut args = train_args(data, &m2, "2", "40");
    args.extend(["--json", &t2_path]);
    cbnn_ok(&args);
    let model_bytes = std::fs::read(&m1).unwrap();
    assert_eq!(model_bytes, std::fs::read(&m2).unwrap(), "models differ");
    let history = |path: &str| {
        let mut v = without_timings(json_file(Path::new(path)));
        v.as_object_mut().unwrap().remove("model");
        v
    };
    assert_eq!(history(&t1_path), history(&t2_path));

    // Killed in the middle of training (at epoch 2 of 40): the old model stays whole, nothing else appears.
    std::fs::write(&m2, b"{\"old\": true}\n").unwrap();
    assert!(
        kill_at_epoch(&train_args(data, &m2, "2", "40"), 2),
        "training ended before epoch 2 of 40 was reported"
    );
    assert_eq!(std::fs::read(&m2).unwrap(), b"{\"old\": true}\n");
    assert_eq!(temporaries(&dir), Vec::<String>::new());
    // A leftover of an interrupted write (a process that no longer exists) is removed by the
    // next run, which writes the same model as before.
    let stale = dir.join(".m2.json.tmp-99999999");
    std::fs::write(&stale, b"{\"half\": ").unwrap();
    cbnn_ok(&train_args(data, &m2, "2", "40"));
    assert_eq!(std::fs::read(&m2).unwrap(), model_bytes);
    assert!(!stale.exists());

    // --- sensitivity and prune: reports equal run to run, thread count aside.
    let sens = |out: &str, threads: &str| {
        cbnn_ok(&[
            "sensitivity",
            &m1,
            "--dataset",
            data,
            "--validation",
            "200",
            "--threads",
            threads,
            "--json",
            out,
        ]);
        std::fs::read(out).unwrap()
    };
    assert_eq!(sens(&p("s1.json"), "1"), sens(&p("s2.json"), "2"));
    let prune_args = |out: &'_ str, report: &'_ str, threads: &'_ str| -> Vec<String> {
        [
            "prune",
            &m1,
            "--dataset",
            data,
            "--validation",
            "200",
            "--epochs",
            "4",
            "--max-drop",
            "5",
            "--threads",
            threads,
            "-o",
            out,
            "--report",
            report,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        timed(&a)
    };
    let (c1, c2) = (p("c1.json"), p("c2.json"));
    let (r1, r2) = (p("r1.json"), p("r2.json"));
    let prune_time = run(prune_args(&c1, &r1, "1"));
    run(prune_args(&c2, &r2, "2"));
    let compact_bytes = std::fs::read(&c1).unwrap();
    assert_eq!(compact_bytes, std::fs::read(&c2).unwrap());
    assert_eq!(
        without_timings(json_file(Path::new(&r1))),
        without_timings(json_file(Path::new(&r2)))
    );

    // Killed in the middle of the search: the old outputs stay whole.
    std::fs::write(&c2, b"old model\n").unwrap();
    std::fs::write(&r2, b"old report\n").unwrap();
    let a = prune_args(&c2, &r2, "2");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    assert!(
        kill_after(&a, prune_time / 2),
        "pruning ended before the kill"
    );
    assert_eq!(std::fs::read(&c2).unwrap(), b"old model\n");
    assert_eq!(std::fs::read(&r2).unwrap(), b"old report\n");
    assert_eq!(temporaries(&dir), Vec::<String>::new());

    // --- rtl: the same design byte for byte, run to run.
    let design = dir.join("design");
    let d = design.to_str().unwrap();
    let other = dir.join("other");
    cbnn_ok(&["rtl", &c1, "-o", d]);
    let new_design = tree(&design);
    cbnn_ok(&["rtl", &c1, "-o", other.to_str().unwrap()]);
    assert_eq!(tree(&other), new_design, "two rtl runs differ");

    // Killed at many points while replacing an older design: the directory is always either
    // the old design or the new one, whole.
    let old_args = ["rtl", &c1, "-o", d, "--fold", "L0:1,1;L1:1,1;L2:1,1"];
    cbnn_ok(&old_args);
    let old_design = tree(&design);
    assert_ne!(old_design, new_design);
    let (mut saw_old, mut saw_new) = (0, 0);
    for step in 0..40u64 {
        let after = Duration::from_micros(step * 1500);
        kill_after(&["rtl", &c1, "-o", d], after);
        let now = tree(&design);
        if now == old_design {
            saw_old += 1;
        } else if now == new_design {
            saw_new += 1;
            cbnn_ok(&old_args);
        } else {
            panic!("killed after {after:?}: the design directory is neither design");
        }
    }
    assert!(saw_old > 0, "no kill landed before the design was replaced");
    eprintln!("rtl killed 40 times: old design kept {saw_old} times, new one complete {saw_new}");
    // The next run removes what the killed ones left beside the directory.
    cbnn_ok(&["rtl", &c1, "-o", d]);
    assert_eq!(tree(&design), new_design);
    assert_eq!(temporaries(&dir), Vec::<String>::new());

    // A directory holding other files is not replaced.
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), b"keep me").unwrap();
    let out = cbnn(&["rtl", &c1, "-o", foreign.to_str().unwrap()]);
    assert_fails(&out, 2, "holds files but no design.json");
    assert_eq!(
        std::fs::read(foreign.join("notes.txt")).unwrap(),
        b"keep me"
    );
}
