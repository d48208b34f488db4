//! Where the jobs of a flow or a sweep run: in this process (`local`), or as tasks on a Ray
//! cluster (`ray`). Either way a job's files end up at the paths it names, the same bytes:
//! the callers (the stage runner of [`crate::flow`]) decide what runs when, the executor only
//! how.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::ray::{Ray, RaySettings};
use super::remote::{self, FileRef, RemoteJob};
use super::{Job, Outcome};
use crate::error::{Error, Result};

/// Runs jobs.
pub enum Executor {
    /// In this process, one thread a job.
    Local,
    /// On a Ray cluster.
    Ray(Box<OnRay>),
}

/// A dataset as a job gives it: its name or directory, and the directory searched for names.
type DatasetKey = (String, Option<std::path::PathBuf>);

/// The connection of [`Executor::Ray`].
pub struct OnRay {
    ray: Mutex<Ray>,
    /// The hashed files of each dataset sent so far (hashed once for every job).
    datasets: Mutex<HashMap<DatasetKey, BTreeMap<String, FileRef>>>,
}

impl Executor {
    /// The local executor, or a connection to the cluster `ray` names.
    pub fn new(ray: Option<&RaySettings>) -> Result<Executor> {
        let Some(settings) = ray else {
            return Ok(Executor::Local);
        };
        let ray = Ray::connect(settings)?;
        Ok(Executor::Ray(Box::new(OnRay {
            ray: Mutex::new(ray),
            datasets: Mutex::new(HashMap::new()),
        })))
    }

    /// How many jobs run at once when `jobs` are asked for: on Ray every job that is ready
    /// is sent (the cluster queues what it has no CPUs for).
    pub fn parallelism(&self, jobs: usize) -> usize {
        match self {
            Executor::Local => jobs.max(1),
            Executor::Ray(_) => usize::MAX,
        }
    }

    /// Where jobs run, for messages (" on Ray", or nothing).
    pub fn place(&self) -> &'static str {
        match self {
            Executor::Local => "",
            Executor::Ray(_) => " on Ray",
        }
    }

    /// Runs `job`; its outcome when it ran here (a job that ran elsewhere left its files).
    pub fn run(&self, job: &Job) -> Result<Option<Outcome>> {
        match self {
            Executor::Local => job.run().map(Some),
            Executor::Ray(r) => r.run(job).map(|()| None),
        }
    }
}

impl OnRay {
    fn run(&self, job: &Job) -> Result<()> {
        // What a local run checks before any work, checked here, before the job travels.
        job.check_outputs()?;
        let dataset = match job.data() {
            Some(d) if !d.files().is_empty() => {
                let key = (d.dataset.clone(), d.data_dir.clone());
                let mut known = self.datasets.lock().unwrap_or_else(|e| e.into_inner());
                if !known.contains_key(&key) {
                    known.insert(key.clone(), remote::dataset_files(d)?);
                }
                known.get(&key).cloned()
            }
            _ => None,
        };
        let remote = RemoteJob::of(job, dataset.as_ref())?;
        let id = self
            .ray
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .submit(&remote)?;
        let done = Ray::wait_shared(&self.ray, id, &remote)?;
        if done.code == 0 {
            return Ok(());
        }
        let place = if done.node.is_empty() {
            "on Ray".to_string()
        } else {
            format!("on Ray, {}", done.node)
        };
        let message = format!(
            "{} ({place}): {}",
            crate::util::shell::command_line(&job.argv()),
            done.message()
        );
        // cbnn's exit status 2 is bad input, which stays bad input here.
        Err(if done.code == 2 {
            Error::usage(message)
        } else {
            Error::CheckFailed(message)
        })
    }
}
