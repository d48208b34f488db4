//! Running jobs on a Ray cluster.
//!
//! cbnn schedules nothing itself: it hands [`RemoteJob`]s to a small Python driver
//! (`ray-driver/driver.py`, compiled into the executable and written to a scratch file when used)
//! that runs each as a Ray task on the cluster's workers and brings the outputs back. The
//! driver runs in the Python of `$CBNN_RAY_PYTHON`, or of the virtual environment
//! `bash scripts/setup-ray.sh` makes (`target/ray-venv`), and talks JSON lines on its standard
//! input and output. Nothing here is needed, or loaded, unless a command asks for Ray.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

use super::remote::RemoteJob;
use crate::error::{Error, Result};
use crate::util::process;
use crate::util::scratch::Scratch;

/// The driver's source.
const DRIVER: &str = include_str!("../../ray-driver/driver.py");

/// The address that starts a throwaway cluster on the loopback address.
pub const LOCAL: &str = "local";

/// Longest wait for the cluster to come up.
const STARTUP: Duration = Duration::from_secs(300);

/// Where and how to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaySettings {
    /// A running cluster's address (`HOST:PORT`), or [`LOCAL`].
    pub address: String,
    /// Worker nodes of a throwaway cluster.
    pub workers: usize,
    /// CPUs each job asks for (and the threads its `cbnn` runs with).
    pub cpus_per_job: usize,
}

impl RaySettings {
    /// Checks the settings before any work.
    pub fn check(&self) -> Result<()> {
        if self.address.is_empty() {
            return Err(Error::usage(
                "--ray-address is empty: give a cluster's HOST:PORT, or `local` for a throwaway cluster on this machine",
            ));
        }
        if !(1..=256).contains(&self.workers) {
            return Err(Error::usage(format!(
                "--ray-workers {} must be between 1 and 256",
                self.workers
            )));
        }
        if !(1..=1024).contains(&self.cpus_per_job) {
            return Err(Error::usage(format!(
                "--ray-cpus {} must be between 1 and 1024",
                self.cpus_per_job
            )));
        }
        Ok(())
    }
}

/// How a job ended.
#[derive(Clone, Debug, Deserialize)]
pub struct Done {
    /// cbnn's exit status on the worker (`-1`: the task itself failed, after Ray's retries).
    pub code: i32,
    /// Wall-clock seconds of the task.
    pub seconds: f64,
    /// Where it ran (host and worker process).
    pub node: String,
    /// The end of its standard error.
    pub stderr: String,
}

impl Done {
    /// The last line of its error output, without cbnn's `error: `.
    pub fn message(&self) -> String {
        process::last_error_line(&self.stderr)
    }
}

#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum Event {
    Ready { cpus: f64, nodes: usize },
    Done(DoneEvent),
    Error { message: String },
}

#[derive(Deserialize)]
struct DoneEvent {
    id: u64,
    #[serde(flatten)]
    done: Done,
}

/// A connection to a Ray cluster through the driver.
pub struct Ray {
    driver: Option<process::Guarded>,
    stdin: Option<ChildStdin>,
    events: Receiver<String>,
    finished: HashMap<u64, Done>,
    next: u64,
    /// The scratch directory holding the driver's script, the outputs of finished jobs and
    /// everything Ray writes on this machine; removed last, after the driver has ended.
    home: Scratch,
    /// CPUs of the cluster's workers.
    pub cpus: f64,
    /// Live nodes, the head included.
    pub nodes: usize,
}

/// The longest Unix socket path, in bytes (`sun_path` holds 108 with the closing zero).
const SOCKET_PATH_MAX: usize = 107;

/// What Ray appends to its temporary folder for its longest socket path:
/// `/session_YYYY-MM-DD_HH-MM-SS_UUUUUU_PID/sockets/plasma_store.NNN` (a process id of up to
/// seven digits, a node number of up to three).
const RAY_SOCKET_TAIL: usize =
    "/session_2026-12-07_08-54-29_883342_".len() + 7 + "/sockets/plasma_store".len() + ".256".len();

/// Fails, in one sentence, when Ray's sockets below `home` would not fit a Unix socket path
/// (a long `$TMPDIR`); Ray itself would fail after its start-up with a long message.
fn check_socket_room(home: &Path) -> Result<()> {
    let ray = home.join("ray");
    let room = SOCKET_PATH_MAX.saturating_sub(RAY_SOCKET_TAIL);
    if ray.as_os_str().len() > room {
        let tmp = home.parent().unwrap_or(home);
        return Err(Error::usage(format!(
            "{}: the temporary folder's path is too long for Ray, whose sockets below it \
             would exceed the {SOCKET_PATH_MAX} bytes a Unix socket's path may have; set \
             TMPDIR to a folder of at most {} bytes",
            tmp.display(),
            tmp.as_os_str().len() - (ray.as_os_str().len() - room)
        )));
    }
    Ok(())
}

/// The Python that runs the driver.
fn python() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("CBNN_RAY_PYTHON").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ray-venv/bin/python");
    if venv.is_file() {
        return Ok(venv);
    }
    Err(Error::usage(
        "Ray is not set up: run `bash scripts/setup-ray.sh`, or set CBNN_RAY_PYTHON to a Python that has Ray",
    ))
}

impl Ray {
    /// Starts the driver and waits until it is connected to the cluster (started first when
    /// the address is [`LOCAL`]); says on standard error what it found.
    pub fn connect(settings: &RaySettings) -> Result<Ray> {
        settings.check()?;
        let python = python()?;
        // A new directory of its own (nothing in it is anyone else's), removed at the end.
        let home = Scratch::new("ray")?;
        check_socket_room(home.path())?;
        let ray = Self::start(settings, &python, home)?;
        errln!(
            "Ray: {} nodes, {} CPUs for jobs of {} CPU(s) each",
            ray.nodes,
            ray.cpus,
            settings.cpus_per_job
        );
        Ok(ray)
    }

    fn start(settings: &RaySettings, python: &Path, home: Scratch) -> Result<Ray> {
        let exe = std::env::current_exe().map_err(|e| Error::io("the cbnn executable", e))?;
        let script = home.path().join("driver.py");
        std::fs::write(&script, DRIVER).map_err(|e| Error::io(&script, e))?;
        let mut cmd = Command::new(python);
        cmd.arg(&script)
            .arg("--address")
            .arg(&settings.address)
            .arg("--cbnn")
            .arg(&exe)
            .arg("--workers")
            .arg(settings.workers.to_string())
            .arg("--cpus-per-job")
            .arg(settings.cpus_per_job.to_string())
            .arg("--staging")
            .arg(home.path().join("out"))
            .arg("--temp-dir")
            .arg(home.path().join("ray"))
            // Everything Ray writes on this machine goes below the scratch directory: its
            // session files, and the cluster-address file that `ray.cluster_utils.Cluster`
            // writes into Ray's *default* folder whatever temp_dir says (`$RAY_TMPDIR/ray`),
            // which fails where that folder does not exist yet (a new machine) and would
            // replace the address of a user's own cluster where it does.
            .env("RAY_TMPDIR", home.path())
            // The driver's own temporaries too, and on a throwaway cluster those of the
            // nodes and workers it starts (a worker killed mid-job cannot remove its own).
            .env("TMPDIR", home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut driver = process::spawn(&mut cmd).map_err(|e| {
            Error::usage(format!(
                "could not start the Python of the Ray driver, {}: {e}",
                python.display()
            ))
        })?;
        let stdin = driver.child.stdin.take();
        let stdout = driver.child.stdout.take().expect("piped");
        let stderr = driver.child.stderr.take().expect("piped");
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Ray's own messages: kept for an error, not shown.
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                let mut v = sink.lock().unwrap_or_else(|e| e.into_inner());
                v.push(line);
                if v.len() > 50 {
                    v.remove(0);
                }
            }
        });
        let mut ray = Ray {
            driver: Some(driver),
            stdin,
            events,
            finished: HashMap::new(),
            next: 0,
            home,
            cpus: 0.0,
            nodes: 0,
        };
        let what = if settings.address == LOCAL {
            "a throwaway Ray cluster on 127.0.0.1".to_string()
        } else {
            format!("the Ray cluster at {}", settings.address)
        };
        let first = ray
            .next_event(Some(STARTUP))
            .and_then(|e| e.ok_or_else(|| format!("no answer in {} s", STARTUP.as_secs())));
        match first {
            Ok(Event::Ready { cpus, nodes }) => {
                ray.cpus = cpus;
                ray.nodes = nodes;
                Ok(ray)
            }
            Ok(Event::Error { message }) => {
                Err(Error::usage(format!("could not use {what}: {message}")))
            }
            Ok(Event::Done(_)) => Err(Error::CheckFailed(
                "the Ray driver reported a job before any was sent".into(),
            )),
            Err(e) => {
                let tail = log.lock().map(|v| v.join("\n")).unwrap_or_default();
                let last = tail.lines().rev().find(|l| !l.trim().is_empty());
                Err(Error::usage(format!(
                    "could not use {what}: {e}{}",
                    last.map(|l| format!(" (the driver said: {})", l.trim()))
                        .unwrap_or_default()
                )))
            }
        }
    }

    /// The driver's next event, waiting at most `timeout` (`None`: as long as it takes);
    /// `Ok(None)` when none came in that time.
    fn next_event(
        &mut self,
        timeout: Option<Duration>,
    ) -> std::result::Result<Option<Event>, String> {
        let line = match timeout {
            Some(t) => match self.events.recv_timeout(t) {
                Ok(l) => l,
                Err(RecvTimeoutError::Timeout) => return Ok(None),
                Err(RecvTimeoutError::Disconnected) => return Err("the driver ended".into()),
            },
            None => self
                .events
                .recv()
                .map_err(|_| "the driver ended".to_string())?,
        };
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| format!("the driver sent a line cbnn cannot read ({e}): {line}"))
    }

    fn send(&mut self, request: serde_json::Value) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Error::CheckFailed("the Ray driver is closed".into()))?;
        writeln!(stdin, "{request}")
            .and_then(|()| stdin.flush())
            .map_err(|e| Error::CheckFailed(format!("the Ray driver ended: {e}")))
    }

    /// Sends `job` to the cluster; returns its id.
    pub fn submit(&mut self, job: &RemoteJob) -> Result<u64> {
        let id = self.next;
        self.next += 1;
        self.send(serde_json::json!({"op": "submit", "id": id, "job": job}))?;
        Ok(id)
    }

    /// Drops job `id` (killed where it runs).
    pub fn cancel(&mut self, id: u64) {
        let _ = self.send(serde_json::json!({"op": "cancel", "id": id}));
    }

    /// Waits for job `id` (sent as `job`) to end; when it succeeded, its outputs are
    /// installed where the job says.
    pub fn wait(&mut self, id: u64, job: &RemoteJob) -> Result<Done> {
        loop {
            if let Some(d) = self.take(id, job)? {
                return Ok(d);
            }
            // A retrained candidate can take hours: no time limit, the driver says when the
            // cluster is gone.
            self.receive(None)?;
        }
    }

    /// [`Ray::wait`] on a connection other threads share: the lock is held while one event
    /// is awaited, at most `POLL`, so that others can send and take theirs meanwhile.
    pub fn wait_shared(ray: &Mutex<Ray>, id: u64, job: &RemoteJob) -> Result<Done> {
        const POLL: Duration = Duration::from_millis(100);
        loop {
            let mut r = ray.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(d) = r.take(id, job)? {
                return Ok(d);
            }
            r.receive(Some(POLL))?;
            drop(r);
            // Let a thread waiting for the lock have it.
            std::thread::yield_now();
        }
    }

    /// Job `id`'s end, if it came, with its outputs installed.
    fn take(&mut self, id: u64, job: &RemoteJob) -> Result<Option<Done>> {
        let Some(d) = self.finished.remove(&id) else {
            return Ok(None);
        };
        let staging = self.home.path().join("out").join(id.to_string());
        let installed = if d.code == 0 {
            job.install(&staging)
        } else {
            Ok(())
        };
        let _ = std::fs::remove_dir_all(&staging);
        installed.map(|()| Some(d))
    }

    /// Takes the driver's next event (waiting at most `timeout`: `None` as long as it takes).
    fn receive(&mut self, timeout: Option<Duration>) -> Result<()> {
        match self.next_event(timeout) {
            Ok(Some(Event::Done(d))) => {
                self.finished.insert(d.id, d.done);
                Ok(())
            }
            Ok(Some(Event::Error { message })) => Err(Error::CheckFailed(format!(
                "the Ray driver failed: {message}"
            ))),
            Ok(Some(Event::Ready { .. })) | Ok(None) => Ok(()),
            Err(e) => Err(Error::CheckFailed(format!("the Ray driver failed: {e}"))),
        }
    }
}

impl Drop for Ray {
    fn drop(&mut self) {
        let _ = self.send(serde_json::json!({"op": "close"}));
        drop(self.stdin.take());
        if let Some(mut d) = self.driver.take() {
            // The driver stops a throwaway cluster before it ends; then the guard kills
            // whatever is left of its process group.
            let _ = d.child.wait();
        }
        // `home` goes when the fields are dropped, after this.
    }
}
