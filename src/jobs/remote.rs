//! Jobs as data, for executors that run them on other machines: a `cbnn` command line whose
//! file arguments are placeholders, the files behind them (each with the hash of its
//! content) and the outputs it writes.
//!
//! A placeholder is `{in:NAME}` (one input file), `{dir:NAME}` (a directory holding the input
//! files listed under `NAME`, a dataset's IDX files) or `{out:NAME}` (an output file). An
//! executor puts the inputs where it likes on the worker, replaces the placeholders by those
//! paths, runs the command with the same `cbnn` executable, and brings the outputs back to
//! the paths the job names. The hashes say what a job read: two jobs with the same command
//! line and the same hashes give the same files (cbnn is deterministic).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::Serialize;

use super::retrain::RetrainJob;
use super::{DataSource, Job};
use crate::error::{Error, Result};

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

/// A self-describing unit of work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemoteJob {
    /// The `cbnn` command line (without `cbnn` and `--threads`), with placeholders for files.
    pub argv: Vec<String>,
    /// `{in:NAME}`: one file each.
    pub inputs: BTreeMap<String, FileRef>,
    /// `{dir:NAME}`: a directory of these files, by file name.
    pub dirs: BTreeMap<String, BTreeMap<String, FileRef>>,
    /// `{out:NAME}`: where each output file goes here.
    pub outputs: BTreeMap<String, PathBuf>,
}

/// The placeholder of input `name`.
fn input(name: &str) -> PathBuf {
    PathBuf::from(format!("{{in:{name}}}"))
}

/// The placeholder of output `name`.
fn output(name: &str) -> PathBuf {
    PathBuf::from(format!("{{out:{name}}}"))
}

impl RemoteJob {
    /// A candidate's retraining, its model written to `job.output`: the baseline model and
    /// the dataset's files (`dataset`, from [`dataset_files`] of `job.data`) travel with it.
    pub fn retrain(job: &RetrainJob, dataset: &BTreeMap<String, FileRef>) -> Result<RemoteJob> {
        let placeholder = RetrainJob {
            baseline: input("baseline"),
            data: DataSource::named("{dir:dataset}"),
            output: output("model"),
            ..job.clone()
        };
        Ok(RemoteJob {
            argv: Job::Retrain(placeholder).argv(),
            inputs: BTreeMap::from([("baseline".into(), FileRef::of(&job.baseline)?)]),
            dirs: BTreeMap::from([("dataset".into(), dataset.clone())]),
            outputs: BTreeMap::from([(
                "model".into(),
                std::path::absolute(&job.output).map_err(|e| Error::io(&job.output, e))?,
            )]),
        })
    }
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

    #[test]
    fn a_retraining_travels_with_its_model_and_dataset_as_placeholders() {
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
            output: dir.join("out.json"),
        };
        let r = RemoteJob::retrain(&job, &dataset_files(&job.data).unwrap()).unwrap();
        assert_eq!(
            r.argv.join(" "),
            "retrain {in:baseline} -o {out:model} --planes 7,6 --arch c4,p2,d8 --epochs 2 \
             --validation 50 --dataset {dir:dataset}"
        );
        // MD5 of "abc".
        assert_eq!(
            r.inputs["baseline"].hash,
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(r.dirs["dataset"].len(), 4);
        assert_eq!(r.outputs["model"], dir.join("out.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
