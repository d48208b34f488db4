//! `--executor ray`: a pruning search whose candidates run as jobs on a real Ray cluster
//! started on the loopback address (a head and two worker nodes), with one worker process
//! killed while it trains a candidate, chooses the same model byte for byte, after the same
//! candidates with the same numbers, as the search on this machine; and what cannot work is
//! said in one sentence, exit 2.
//!
//! Every run on Ray starts from a machine without Ray's leftovers: its `TMPDIR` is a new empty
//! folder of the test's (where Ray's default folder does not exist yet), checked empty again
//! when the run is over.
//!
//! Ray is optional: `bash scripts/setup-ray.sh` installs it into target/ray-venv. Without it
//! the tests that need it are reported as *ignored* (in the run's lines and its closing
//! counts), unless `CBNN_REQUIRE_RAY=1` (which `.ci/run` sets after installing it) makes them
//! fail. The file has its own harness (libtest-mimic) because the standard one cannot decide at
//! run time that a test is ignored.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether Ray is installed where cbnn looks for it.
fn ray_is_set_up() -> bool {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ray-venv/bin/python");
    let ok = venv.is_file()
        && Command::new(&venv)
            .args(["-I", "-c", "import ray.cluster_utils"])
            .status()
            .is_ok_and(|s| s.success());
    ok
}

/// A new, empty temporary root for runs on Ray: cbnn and every process it starts (the driver,
/// Ray's nodes and workers) see it as `TMPDIR`, so nothing an earlier run left in the
/// machine's temporary folder (Ray's `/tmp/ray`) can make a run work that would fail on a
/// new machine.
struct FreshRoot(PathBuf);

impl FreshRoot {
    /// A short path (Ray's socket paths below it must fit in 107 bytes), unique to the test.
    fn new(test: &str) -> FreshRoot {
        let root = std::env::temp_dir().join(format!("cr{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir(&root).unwrap();
        FreshRoot(root)
    }

    /// The cbnn binary with `args`, under this root, with no Ray settings of the environment.
    fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cbnn"));
        c.args(args)
            .env("TMPDIR", &self.0)
            .env_remove("RAY_TMPDIR")
            .env_remove("RAY_ADDRESS")
            .env_remove("CBNN_DATA");
        c
    }

    fn output<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> std::process::Output {
        self.command(args).output().unwrap()
    }

    /// Asserts that cbnn and Ray left nothing in the root.
    fn assert_left_nothing(&self) {
        let left: Vec<_> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left in TMPDIR after the run: {left:?}");
        std::fs::remove_dir(&self.0).unwrap();
    }
}

/// Processes whose command line starts with `prefix`.
fn processes(prefix: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if cmd.starts_with(prefix.as_bytes()) {
                out.push(pid);
            }
        }
    }
    out
}

/// One cluster at a time: the tests count and kill Ray's processes.
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Kills the first worker process seen running a job (an idle worker is `ray::IDLE`) while
/// `child` runs; returns its process id, if one was seen.
fn kill_a_busy_worker(child: &mut std::process::Child) -> Option<u32> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(600) {
        if let Some(pid) = processes("ray::run_job").first() {
            // Still at work a moment later.
            std::thread::sleep(Duration::from_millis(100));
            let busy = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"ray::run_job"));
            if busy
                && Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .unwrap()
                    .success()
            {
                return Some(*pid);
            }
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Asserts that the throwaway cluster of a `what` is gone.
fn assert_cluster_gone(what: &str) {
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        processes("ray::").is_empty(),
        "Ray processes outlived the {what}"
    );
}

fn prune_args<'a>(model: &'a str, out: &'a str, report: &'a str) -> Vec<&'a str> {
    vec![
        "prune",
        model,
        "--dataset",
        "fashion-mnist",
        "--epochs",
        "3",
        "--limit",
        "6000",
        "--validation",
        "1000",
        "-o",
        out,
        "--report",
        report,
    ]
}

fn a_search_on_a_ray_cluster_survives_a_killed_worker_and_equals_the_local_one() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("ray-prune");
    let model = dir.join("base.json");
    let m = model.to_str().unwrap();
    cbnn_ok(&[
        "train",
        "--dataset",
        "fashion-mnist",
        "--limit",
        "6000",
        "--epochs",
        "3",
        "--hidden",
        "48,48",
        "--validation",
        "1000",
        "-o",
        m,
    ]);
    let path = |name: &str| -> PathBuf { dir.join(name) };
    let (local, local_report) = (path("local.json"), path("local-report.json"));
    cbnn_ok(&prune_args(
        m,
        local.to_str().unwrap(),
        local_report.to_str().unwrap(),
    ));

    let (on_ray, ray_report) = (path("ray.json"), path("ray-report.json"));
    let log = std::fs::File::create(path("ray.log")).unwrap();
    let mut args = prune_args(m, on_ray.to_str().unwrap(), ray_report.to_str().unwrap());
    args.extend(["--executor", "ray", "--ray-address", "local"]);
    let root = FreshRoot::new("s");
    let mut child = root
        .command(&args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    // Kill the first worker process seen training a candidate: Ray runs the task again.
    let killed = kill_a_busy_worker(&mut child);
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(path("ray.log")).unwrap();
    assert!(status.success(), "{text}");
    assert!(killed.is_some(), "no Ray worker was seen training: {text}");
    assert!(text.contains("Ray: 3 nodes, 2 CPUs"), "{text}");
    assert_eq!(
        without_timings(json_file(&local_report)),
        without_timings(json_file(&ray_report))
    );
    assert!(
        std::fs::read(&local).unwrap() == std::fs::read(&on_ray).unwrap(),
        "the chosen models differ"
    );
    assert_cluster_gone("search");
    root.assert_left_nothing();
}

fn a_sweep_on_a_ray_cluster_survives_a_killed_worker_and_equals_the_local_one() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("ray-sweep");
    let spec = sweep_fixture(&dir);
    let s = spec.to_str().unwrap();
    // Both runs under the same path (designs name their model), the local one moved aside.
    let run = dir.join("run");
    let r = run.to_str().unwrap();
    cbnn_ok(&["sweep", s, "-o", r]);
    let local = dir.join("run-local");
    std::fs::rename(&run, &local).unwrap();

    let log = std::fs::File::create(dir.join("ray.log")).unwrap();
    let root = FreshRoot::new("w");
    let mut child = root
        .command(&[
            "sweep",
            s,
            "-o",
            r,
            "--executor",
            "ray",
            "--ray-address",
            "local",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let killed = kill_a_busy_worker(&mut child);
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(dir.join("ray.log")).unwrap();
    assert!(status.success(), "{text}");
    assert!(killed.is_some(), "no Ray worker was seen at work: {text}");
    assert!(text.contains("[rtl.big.auto-16] on Ray"), "{text}");
    // Byte for byte: the models, every design directory, the report and its chart; the jobs'
    // outputs but for their timings.
    let (a, b) = (
        comparable(&local, &SWEEP_TIMED),
        comparable(&run, &SWEEP_TIMED),
    );
    assert_same_files(&a, &b, 60);
    assert_cluster_gone("sweep");
    root.assert_left_nothing();
}

fn a_flow_on_a_ray_cluster_equals_the_local_one() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("ray-flow");
    let data = dir.join("data");
    write_fixture_dataset(&data, 700, 120, 8, false);
    let run = dir.join("run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    cbnn_ok(&flow_args(d, r));
    let local = dir.join("run-local");
    std::fs::rename(&run, &local).unwrap();
    let mut args = flow_args(d, r);
    args.extend(["--executor", "ray", "--ray-address", "local"]);
    let root = FreshRoot::new("f");
    let out = root.output(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("[prune] on Ray"), "{stderr}");
    // Byte for byte: the models, both designs, the report and its charts; the stages'
    // outputs but for their timings.
    let (a, b) = (
        comparable(&local, &FLOW_TIMED),
        comparable(&run, &FLOW_TIMED),
    );
    assert_same_files(&a, &b, 30);
    root.assert_left_nothing();
}

/// A one-layer model of a small fixture dataset: (directory, model path, dataset path).
fn small_model(name: &str) -> (PathBuf, String, String) {
    let dir = temp_dir(name);
    let model = dir.join("base.json");
    let m = model.to_str().unwrap().to_string();
    let data = dir.join("data");
    write_fixture_dataset(&data, 120, 20, 8, false);
    let d = data.to_str().unwrap().to_string();
    cbnn_ok(&[
        "train",
        "--dataset",
        &d,
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--validation",
        "20",
        "-o",
        &m,
    ]);
    (dir, m, d)
}

fn what_cannot_run_on_ray_is_refused_in_one_sentence() {
    let (dir, m, d) = small_model("ray-refuse");
    let out = dir.join("c.json");
    let o = out.to_str().unwrap();
    let prune = |extra: &[&'static str]| -> Vec<String> {
        ["prune", &m, "--dataset", &d, "-o", o]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let cbnn = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cbnn(&args)
    };
    assert_fails(
        &cbnn(prune(&["--executor", "ray"])),
        2,
        "--executor ray needs --ray-address HOST:PORT",
    );
    assert_fails(
        &cbnn(prune(&["--ray-address", "local"])),
        2,
        "--ray-address is for --executor ray",
    );
    assert_fails(
        &cbnn(prune(&[
            "--executor",
            "ray",
            "--ray-address",
            "local",
            "--jobs",
            "2",
        ])),
        2,
        "--jobs is for the local executor",
    );
    assert_fails(
        &cbnn(prune(&[
            "--executor",
            "ray",
            "--ray-address",
            "local",
            "--ray-workers",
            "0",
        ])),
        2,
        "--ray-workers 0 must be between 1 and 256",
    );
    // A Python without Ray.
    let no_ray = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args(prune(&["--executor", "ray", "--ray-address", "local"]))
        .env("CBNN_RAY_PYTHON", "python3")
        .output()
        .unwrap();
    assert_fails(&no_ray, 2, "has no Ray");
    // A Python that does not exist.
    let absent = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args(prune(&["--executor", "ray", "--ray-address", "local"]))
        .env("CBNN_RAY_PYTHON", dir.join("no-python"))
        .output()
        .unwrap();
    assert_fails(&absent, 2, "could not start the Python of the Ray driver");
    // A temporary folder whose path leaves Ray's sockets no room: said before Ray starts.
    let long = dir.join("t".repeat(60));
    std::fs::create_dir(&long).unwrap();
    let deep = Command::new(env!("CARGO_BIN_EXE_cbnn"))
        .args(prune(&["--executor", "ray", "--ray-address", "local"]))
        .env("CBNN_RAY_PYTHON", "python3")
        .env("TMPDIR", &long)
        .output()
        .unwrap();
    assert_fails(&deep, 2, "the temporary folder's path is too long for Ray");
    assert_eq!(std::fs::read_dir(&long).unwrap().count(), 0);
    assert!(!out.exists());
}

/// An address where nothing answers is said at once, not after Ray's minutes of retries.
fn an_address_where_nothing_answers_is_said_at_once() {
    let (dir, m, d) = small_model("ray-nothing");
    let out = dir.join("c.json");
    let root = FreshRoot::new("n");
    let t0 = Instant::now();
    let run = root.output(&[
        "prune",
        &m,
        "--dataset",
        &d,
        "-o",
        out.to_str().unwrap(),
        "--executor",
        "ray",
        "--ray-address",
        "127.0.0.1:1",
    ]);
    assert_fails(&run, 2, "nothing answers at 127.0.0.1:1");
    assert!(t0.elapsed() < Duration::from_secs(60));
    assert!(!out.exists());
    root.assert_left_nothing();
}

fn main() -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let ray = ray_is_set_up();
    let required = std::env::var_os("CBNN_REQUIRE_RAY").is_some();
    if !ray {
        println!(
            "Ray is not set up (bash scripts/setup-ray.sh): the tests that need it are {}",
            if required {
                "failed, as CBNN_REQUIRE_RAY asks"
            } else {
                "ignored"
            }
        );
    }
    // A test that needs Ray: ignored without it, or failed when Ray is required.
    let needs_ray = |name: &str, test: fn()| {
        let run = move || {
            if !ray && required {
                return Err(
                    "CBNN_REQUIRE_RAY is set but Ray is not: run `bash scripts/setup-ray.sh`"
                        .into(),
                );
            }
            test();
            Ok(())
        };
        libtest_mimic::Trial::test(name, run).with_ignored_flag(!ray && !required)
    };
    let tests = vec![
        needs_ray(
            "a_search_on_a_ray_cluster_survives_a_killed_worker_and_equals_the_local_one",
            a_search_on_a_ray_cluster_survives_a_killed_worker_and_equals_the_local_one,
        ),
        needs_ray(
            "a_sweep_on_a_ray_cluster_survives_a_killed_worker_and_equals_the_local_one",
            a_sweep_on_a_ray_cluster_survives_a_killed_worker_and_equals_the_local_one,
        ),
        needs_ray(
            "a_flow_on_a_ray_cluster_equals_the_local_one",
            a_flow_on_a_ray_cluster_equals_the_local_one,
        ),
        needs_ray(
            "an_address_where_nothing_answers_is_said_at_once",
            an_address_where_nothing_answers_is_said_at_once,
        ),
        libtest_mimic::Trial::test("what_cannot_run_on_ray_is_refused_in_one_sentence", || {
            what_cannot_run_on_ray_is_refused_in_one_sentence();
            Ok(())
        }),
    ];
    libtest_mimic::run(&args, tests).exit_code()
}
