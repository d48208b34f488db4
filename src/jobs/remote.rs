//! Jobs as data, for executors that run them on other machines: a `cbnn` command line, the
//! files it reads (each with the hash of its content) and the files and directories it
//! writes.
//!
//! A job runs on a worker in a scratch directory that mirrors the paths its command line
//! names: every path is made relative to the current directory here (`runs/a/base.json`,
//! `../../tmp/x.json`), the worker runs the command in a directory deep enough below its
//! scratch root for every such path to land inside the root, and puts each input file at its
//! path there. The command line is the one that runs here but for absolute paths made
//! relative, so what a job writes that names a path (a design's manifest names its model)
//! is the same byte for byte wherever it ran. The one placeholder is `{dir:NAME}`, a
//! directory holding the files listed under `NAME`: a dataset given by name (which only this
//! machine knows where to find) travels as `--data-dir {dir:datasets}` holding `NAME/` and
//! its IDX files, so that the command, and the provenance of a model it trains, still name it
//! as given.
//!
//! After the run the worker sends back every output (a file, or a directory as a whole) and
//! [`RemoteJob::install`] puts them where the job says here, with the checks a local run
//! makes. The hashes say what a job read: two jobs with the same command line and the same
//! hashes give the same files (cbnn is deterministic).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use md5::{Digest, Md5};
use serde::Serialize;

use super::{DataSource, Job};
use crate::error::{Error, Result};
use crate::util::atomic;

/// An input file of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileRef {
    /// Where it is here.
    pub path: PathBuf,
    /// The MD5 of its content, lower-case hex (a content key, not a security measure).
    pub hash: String,
}

impl FileRef {
    /// `path` with the hash of what it holds now.
    pub fn of(path: &Path) -> Result<FileRef> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let hash = Md5::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(FileRef {
            path: std::path::absolute(path).map_err(|e| Error::io(path, e))?,
            hash,
        })
    }
}

/// What an output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// A file the job must write.
    File,
    /// A directory the job writes as a whole (replaced as a whole here).
    Dir,
    /// A file the job may write (brought back when it exists).
    Optional,
}

/// An output of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Output {
    /// Where it goes here.
    pub path: PathBuf,
    /// What it is.
    pub kind: OutputKind,
}

/// A self-describing unit of work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemoteJob {
    /// The `cbnn` command line (without `cbnn` and `--threads`): paths relative to `cwd`,
    /// a dataset given by name found in `--data-dir {dir:datasets}`.
    pub argv: Vec<String>,
    /// Where the command runs, relative to the job's scratch root (`.`, or `c/c/...` when
    /// paths climb above the current directory).
    pub cwd: String,
    /// The input files, by their place relative to the scratch root.
    pub files: BTreeMap<String, FileRef>,
    /// `{dir:NAME}`: a directory of these files, by file name.
    pub dirs: BTreeMap<String, BTreeMap<String, FileRef>>,
    /// The outputs, by their place relative to the scratch root.
    pub outputs: BTreeMap<String, Output>,
}

/// `path` without `.` and with each `..` folded into the component before it, by its text
/// alone (a path that climbs above its start keeps its leading `..`).
fn lexical(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    out.iter().collect()
}

/// `path` relative to `base` (both absolute and lexically normal).
fn relative_to(path: &Path, base: &Path) -> PathBuf {
    let (p, b): (Vec<_>, Vec<_>) = (path.components().collect(), base.components().collect());
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// How the paths of one job are placed on a worker.
struct Mirror {
    here: PathBuf,
    /// The command's directory below the scratch root.
    cwd: PathBuf,
}

impl Mirror {
    /// Paths as the command line gives them: relative to the current directory.
    fn relative(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            relative_to(&lexical(path), &self.here)
        } else {
            lexical(path)
        }
    }

    /// Where `path` lies below the scratch root.
    fn place(&self, path: &Path) -> String {
        lexical(&self.cwd.join(self.relative(path)))
            .to_string_lossy()
            .into_owned()
    }
}

/// `path` relative to the current directory, by its text (`../../tmp/x` for `/tmp/x` seen
/// from `/work/main`): how the jobs of a sweep name their files, so that what they write is
/// the same wherever they run.
pub fn relative_to_cwd(path: &Path) -> Result<PathBuf> {
    if path.is_relative() {
        return Ok(lexical(path));
    }
    let here = std::env::current_dir()
        .and_then(|d| d.canonicalize())
        .map_err(|e| Error::io("the current directory", e))?;
    Ok(relative_to(&lexical(path), &here))
}

/// How many directories `path` (relative, lexically normal) climbs above its start.
fn climbs(path: &Path) -> usize {
    path.components()
        .take_while(|c| *c == Component::ParentDir)
        .count()
}

impl RemoteJob {
    /// The job `job` as data: `dataset` may hold the hashed files of its dataset
    /// ([`dataset_files`], to hash them once for many jobs).
    pub fn of(job: &Job, dataset: Option<&BTreeMap<String, FileRef>>) -> Result<RemoteJob> {
        let here = std::env::current_dir()
            .map_err(|e| Error::io("the current directory", e))?
            .canonicalize()
            .map_err(|e| Error::io("the current directory", e))?;
        let plan = job.plan();
        let data_files = job.data().map(DataSource::files).unwrap_or_default();
        let mut job = job.clone();
        // A dataset given by name travels as a directory of datasets holding it under that
        // name (`--data-dir`), so that the command still names it as given; one given as a
        // directory is an input like any other file, at its place.
        let named = job
            .data()
            .filter(|d| !data_files.is_empty() && !Path::new(&d.dataset).is_dir())
            .map(|d| d.dataset.clone());
        if let Some(name) = &named {
            let d = job.data_mut().expect("a job with a dataset");
            *d = DataSource {
                dataset: name.clone(),
                data_dir: Some(PathBuf::from("{dir:datasets}")),
            };
        }
        let known = match dataset {
            Some(d) => d.clone(),
            None if data_files.is_empty() => BTreeMap::new(),
            None => hash_files(&data_files)?,
        };
        let data_ref = |p: &Path| -> Result<FileRef> {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            match name.and_then(|n| known.get(&n)) {
                Some(r) if r.path == std::path::absolute(p).map_err(|e| Error::io(p, e))? => {
                    Ok(r.clone())
                }
                _ => FileRef::of(p),
            }
        };
        let probe = Mirror {
            here: here.clone(),
            cwd: PathBuf::new(),
        };
        let words: Vec<PathBuf> = plan
            .reads()
            .filter(|p| named.is_none() || !data_files.iter().any(|d| d == p))
            .chain(plan.writes())
            .chain(job.optional_outputs().iter().map(PathBuf::as_path))
            .map(|p| probe.relative(p))
            .collect();
        let depth = words.iter().map(|p| climbs(p)).max().unwrap_or(0);
        let mirror = Mirror {
            here,
            cwd: (0..depth).map(|_| "c").collect(),
        };
        let argv = job
            .argv()
            .into_iter()
            .map(|w| {
                let p = Path::new(&w);
                if p.is_absolute() {
                    mirror.relative(p).to_string_lossy().into_owned()
                } else {
                    w
                }
            })
            .collect();
        let mut files = BTreeMap::new();
        let mut dirs = BTreeMap::new();
        for p in plan.reads() {
            let is_data = data_files.iter().any(|d| d == p);
            match (&named, is_data) {
                (Some(name), true) => {
                    let file = p.file_name().unwrap_or_default().to_string_lossy();
                    dirs.entry("datasets".to_string())
                        .or_insert_with(BTreeMap::new)
                        .insert(format!("{name}/{file}"), data_ref(p)?);
                }
                (None, true) => {
                    files.insert(mirror.place(p), data_ref(p)?);
                }
                (_, false) => {
                    files.insert(mirror.place(p), FileRef::of(p)?);
                }
            }
        }
        let mut outputs = BTreeMap::new();
        let absolute = |p: &Path| std::path::absolute(p).map_err(|e| Error::io(p, e));
        for p in plan.writes() {
            let kind = if plan.writes_dir(p) {
                OutputKind::Dir
            } else {
                OutputKind::File
            };
            outputs.insert(
                mirror.place(p),
                Output {
                    path: absolute(p)?,
                    kind,
                },
            );
        }
        for p in job.optional_outputs() {
            outputs.insert(
                mirror.place(&p),
                Output {
                    path: absolute(&p)?,
                    kind: OutputKind::Optional,
                },
            );
        }
        Ok(RemoteJob {
            argv,
            cwd: if depth == 0 {
                ".".into()
            } else {
                mirror.cwd.to_string_lossy().into_owned()
            },
            files,
            dirs,
            outputs,
        })
    }

    /// Puts the outputs a worker sent back (under `staging`, at their places) where the job
    /// says, each written atomically and only over what is cbnn's own (the checks of a local
    /// run: [`Job::check_outputs`] before it was sent, the kind of every path now).
    pub fn install(&self, staging: &Path) -> Result<()> {
        for (place, out) in &self.outputs {
            let from = staging.join(place);
            match out.kind {
                OutputKind::Dir => {
                    if !from.is_dir() {
                        return Err(missing(place));
                    }
                    atomic::write_dir_atomic(&out.path, |dir| copy_tree(&from, dir))?;
                }
                OutputKind::File | OutputKind::Optional => {
                    let bytes = match std::fs::read(&from) {
                        Ok(b) => b,
                        Err(_) if out.kind == OutputKind::Optional => continue,
                        Err(_) => return Err(missing(place)),
                    };
                    atomic::write_atomic(&out.path, &bytes)?;
                }
            }
        }
        Ok(())
    }
}

fn missing(place: &str) -> Error {
    Error::CheckFailed(format!("the worker sent no {place}, which the job writes"))
}

/// Copies the files under `from` to `to` (which exists), directories included.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for e in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let e = e.map_err(|e| Error::io(from, e))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let kind = e.file_type().map_err(|e| Error::io(&src, e))?;
        if kind.is_dir() {
            std::fs::create_dir(&dst).map_err(|e| Error::io(&dst, e))?;
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst).map_err(|e| Error::io(&dst, e))?;
        }
    }
    Ok(())
}

/// The IDX files of a dataset, by file name, hashed: a name is resolved here, where it is
/// known, and travels as a directory.
pub fn dataset_files(data: &DataSource) -> Result<BTreeMap<String, FileRef>> {
    // Opening it says why when it cannot be found or read.
    let files = data.files();
    if files.is_empty() {
        data.open()?;
        return Err(Error::usage(format!(
            "dataset '{}' has no train-* or t10k-* files to send",
            data.dataset
        )));
    }
    hash_files(&files)
}

fn hash_files(files: &[PathBuf]) -> Result<BTreeMap<String, FileRef>> {
    files
        .iter()
        .map(|f| {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, FileRef::of(f)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::retrain::RetrainJob;

    #[test]
    fn paths_are_made_relative_by_their_text() {
        let here = Path::new("/work/main");
        assert_eq!(
            relative_to(&lexical(Path::new("/tmp/x/../y.json")), here),
            Path::new("../../tmp/y.json")
        );
        assert_eq!(
            relative_to(Path::new("/work/main/runs/a"), here),
            Path::new("runs/a")
        );
        assert_eq!(relative_to(here, here), Path::new("."));
        assert_eq!(lexical(Path::new("./a/./b/../c")), Path::new("a/c"));
        assert_eq!(lexical(Path::new("../a/../../b")), Path::new("../../b"));
        assert_eq!(climbs(Path::new("../../b/c")), 2);
        let m = Mirror {
            here: here.to_path_buf(),
            cwd: PathBuf::from("c/c"),
        };
        assert_eq!(m.place(Path::new("/tmp/y.json")), "tmp/y.json");
        assert_eq!(m.place(Path::new("runs/a.json")), "c/c/runs/a.json");
    }

    #[test]
    fn a_retraining_travels_with_its_model_and_dataset() {
        let dir = std::env::temp_dir().join(format!("cbnn-remote-{}", std::process::id()));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        for f in [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ] {
            std::fs::write(data.join(f), f.as_bytes()).unwrap();
        }
        let base = dir.join("base.json");
        std::fs::write(&base, b"abc").unwrap();
        let job = RetrainJob {
            baseline: base.clone(),
            data: DataSource::named(data.to_str().unwrap()),
            planes: vec![7, 6],
            arch: Some("c4,p2,d8".parse().unwrap()),
            epochs: Some(2),
            limit: None,
            validation: Some(50),
            warm: false,
            output: dir.join("out.json"),
            distill: Default::default(),
        };
        let r = RemoteJob::of(&Job::Retrain(job), None).unwrap();
        // The scratch directory named from the current directory: up to what the two paths
        // share (the root, or more when the tests run below the temporary directory), then
        // down.
        let here = std::env::current_dir().unwrap().canonicalize().unwrap();
        let dir = dir.canonicalize().unwrap();
        let shared = here
            .components()
            .zip(dir.components())
            .take_while(|(a, b)| a == b)
            .count();
        let depth = here.components().count() - shared;
        let up = "../".repeat(depth);
        let down: PathBuf = dir.components().skip(shared).collect();
        let rel = format!("{up}{}", down.display());
        assert_eq!(
            r.argv.join(" "),
            format!(
                "retrain {rel}/base.json -o {rel}/out.json --planes 7,6 --arch c4,p2,d8 \
                 --epochs 2 --validation 50 --dataset {rel}/data"
            )
        );
        assert_eq!(r.cwd, vec!["c"; depth].join("/"));
        let place = |name: &str| down.join(name).to_string_lossy().into_owned();
        // MD5 of "abc".
        assert_eq!(
            r.files[&place("base.json")].hash,
            "900150983cd24fb0d6963f7d28e17f72"
        );
        // The dataset, given as a directory, travels at its place.
        assert_eq!(r.files.len(), 5, "{:?}", r.files);
        assert!(r.files.contains_key(&place("data/t10k-images-idx3-ubyte")));
        assert!(r.dirs.is_empty());
        let out = &r.outputs[&place("out.json")];
        assert_eq!(out.path, dir.join("out.json"));
        assert_eq!(out.kind, OutputKind::File);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
