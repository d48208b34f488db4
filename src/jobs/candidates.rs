//! Where a pruning search's candidates train when not in the search's own process: `cbnn
//! retrain` processes of this executable, several at once ([`Processes`], `--jobs N`), or
//! `cbnn retrain` jobs on a Ray cluster ([`OnRay`], `--executor ray`). Both hand the models
//! back in the order the search asks for them, so it decides exactly as in one process.
//!
//! Never: decides which candidates are trained or accepted (the search does), or trains one
//! itself.

use std::path::PathBuf;

use super::ray::{Ray, RaySettings};
use super::remote::RemoteJob;
use super::retrain::RetrainJob;
use super::Job;
use crate::error::{Error, Result};
use crate::model::{self, IntModel};
use crate::prune::{self, Context};
use crate::util::process;
use crate::util::scratch::Scratch;

/// The executor of `cbnn prune --jobs N`: each candidate a `cbnn retrain` process of this
/// executable, up to `N` at once, in the order the search hands them over. The one the search
/// waits for runs at the search's own CPU priority; those started ahead of it run at the
/// lowest (`nice` 19) until their turn comes, so that work which may be dropped takes only
/// the cycles the current candidate leaves idle. Their models go through a scratch directory
/// of this search, removed when it ends.
pub struct Processes {
    jobs: usize,
    exe: PathBuf,
    /// What every candidate's retraining shares.
    template: RetrainJob,
    threads: usize,
    started: std::cell::Cell<usize>,
}

impl Processes {
    /// Up to `jobs` retrainings at once, each `template` for one candidate.
    pub fn new(jobs: usize, template: RetrainJob) -> Result<Self> {
        let exe = std::env::current_exe().map_err(|e| Error::io("the cbnn executable", e))?;
        Ok(Self {
            jobs,
            exe,
            template,
            threads: rayon::current_num_threads(),
            started: std::cell::Cell::new(0),
        })
    }

    /// Starts the `cbnn retrain` of `spec`; `low` starts it at the lowest CPU priority.
    fn start(
        &self,
        scratch: &std::path::Path,
        spec: &prune::Spec,
        epochs: usize,
        warm: bool,
        low: bool,
    ) -> Result<(process::Guarded, PathBuf, PathBuf)> {
        use std::os::unix::process::CommandExt;
        let n = self.started.get();
        self.started.set(n + 1);
        let output = scratch.join(format!("candidate-{n}.json"));
        let log = scratch.join(format!("candidate-{n}.log"));
        let job = self.template.candidate(spec, epochs, warm, output.clone());
        let stderr = std::fs::File::create(&log).map_err(|e| Error::io(&log, e))?;
        let mut cmd = std::process::Command::new(&self.exe);
        cmd.arg("--threads")
            .arg(self.threads.to_string())
            .args(super::Job::Retrain(job).argv())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr);
        if low {
            // SAFETY: setpriority is async-signal-safe; the child has one thread here.
            unsafe {
                cmd.pre_exec(|| {
                    libc::setpriority(libc::PRIO_PROCESS, 0, 19);
                    Ok(())
                });
            }
        }
        let child = process::spawn(&mut cmd).map_err(|e| Error::io(&self.exe, e))?;
        Ok((child, output, log))
    }
}

impl prune::Executor for Processes {
    fn run(
        &self,
        ctx: &Context,
        epochs: usize,
        specs: &[prune::Spec],
        on_start: &mut dyn FnMut(&prune::Spec),
        take: &mut dyn FnMut(IntModel, f64) -> Result<bool>,
    ) -> Result<()> {
        let scratch = Scratch::new("prune")?;
        let scratch = scratch.path();
        let mut running = std::collections::VecDeque::new();
        let mut next = 0;
        loop {
            while running.len() < self.jobs && next < specs.len() {
                let started = self.start(
                    scratch,
                    &specs[next],
                    epochs,
                    ctx.parent.is_some(),
                    !running.is_empty(),
                )?;
                running.push_back((next, started, std::time::Instant::now()));
                next += 1;
            }
            let Some((i, (mut child, output, log), t0)) = running.pop_front() else {
                return Ok(());
            };
            on_start(&specs[i]);
            // Its turn: back to the search's own priority (allowed to root; otherwise it
            // stays low, which only matters on a machine with other work).
            // SAFETY: plain system call on the child's process group.
            unsafe {
                libc::setpriority(libc::PRIO_PGRP, child.child.id(), 0);
            }
            let status = child.child.wait().map_err(|e| Error::io(&self.exe, e))?;
            drop(child);
            if !status.success() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(retrain_failed(i, &specs[i], "", status.code(), &text));
            }
            let model = model::load(&output)?;
            let _ = std::fs::remove_file(&output);
            let _ = std::fs::remove_file(&log);
            if !take(model, t0.elapsed().as_secs_f64())? {
                // The phase stopped: what was started ahead of it is killed with its guards.
                return Ok(());
            }
        }
    }
}

/// The error of candidate `i`'s `cbnn retrain` that ended with `code` (2: bad input) and
/// the error output `stderr`; `place` says where it ran (" on Ray (host)", or nothing).
fn retrain_failed(
    i: usize,
    spec: &prune::Spec,
    place: &str,
    code: Option<i32>,
    stderr: &str,
) -> Error {
    let msg = format!(
        "candidate {} (planes {:?}, {}): its `cbnn retrain`{place} failed: {}",
        i + 1,
        spec.planes,
        spec.arch,
        process::last_error_line(stderr)
    );
    if code == Some(2) {
        Error::usage(msg)
    } else {
        Error::CheckFailed(msg)
    }
}

/// The executor of `cbnn prune --executor ray`: each candidate a `cbnn retrain` job on a Ray
/// cluster, the baseline and the dataset travelling with it. All the candidates a phase
/// would train are sent at once (the cluster runs as many as it has CPUs for); the search
/// takes their models in order and the rest are cancelled when the phase stops, so it decides
/// exactly as a sequential run does.
pub struct OnRay {
    ray: std::cell::RefCell<Ray>,
    /// What every candidate's retraining shares.
    template: RetrainJob,
    /// The dataset's files, hashed once for every job.
    dataset: std::collections::BTreeMap<String, super::remote::FileRef>,
}

impl OnRay {
    /// Connects to the cluster of `settings`; each candidate is `template` for it.
    pub fn connect(template: RetrainJob, settings: &RaySettings) -> Result<Self> {
        let ray = Ray::connect(settings)?;
        Ok(Self {
            ray: std::cell::RefCell::new(ray),
            dataset: super::remote::dataset_files(&template.data)?,
            template,
        })
    }
}

impl prune::Executor for OnRay {
    fn run(
        &self,
        ctx: &Context,
        epochs: usize,
        specs: &[prune::Spec],
        on_start: &mut dyn FnMut(&prune::Spec),
        take: &mut dyn FnMut(IntModel, f64) -> Result<bool>,
    ) -> Result<()> {
        let scratch = Scratch::new("prune-ray")?;
        let scratch = scratch.path();
        let mut ray = self.ray.borrow_mut();
        let mut sent = Vec::new();
        for (n, spec) in specs.iter().enumerate() {
            let output = scratch.join(format!("candidate-{n}.json"));
            let job = self
                .template
                .candidate(spec, epochs, ctx.parent.is_some(), output.clone());
            let remote = RemoteJob::of(&Job::Retrain(job), Some(&self.dataset))?;
            sent.push((ray.submit(&remote)?, remote, output));
        }
        let mut result = Ok(());
        let mut k = 0;
        while k < sent.len() {
            let (id, remote, output) = &sent[k];
            on_start(&specs[k]);
            let done = match ray.wait(*id, remote) {
                Ok(d) => d,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            k += 1;
            if done.code != 0 {
                let place = if done.node.is_empty() {
                    " on Ray".to_string()
                } else {
                    format!(" on Ray ({})", done.node)
                };
                let (spec, code) = (&specs[k - 1], Some(done.code));
                result = Err(retrain_failed(k - 1, spec, &place, code, &done.stderr));
                break;
            }
            match take(model::load(output)?, done.seconds) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // The phase stopped (or failed): what it will not take is dropped where it runs.
        for (id, _, _) in &sent[k..] {
            ray.cancel(*id);
        }
        result
    }
}
