//! The distillation settings of a training job (`--teacher`, `--distill`, `--temperature`):
//! their flags, their input file, their checks and the teacher's loading. What distillation
//! does is [`crate::train::distill`]'s.
//!
//! Never: trains, or decides which candidates are trained.

use std::path::PathBuf;

use super::Argv;
use crate::error::{Error, Result};
use crate::model::{self, IntModel};
use crate::util::output::Plan;

/// The default temperature of a teacher's soft targets.
pub const DEFAULT_TEMPERATURE: f32 = 2.0;

/// Distillation settings of a training job (`--teacher`, `--distill`, `--temperature`).
#[derive(Clone, Debug, PartialEq)]
pub struct Distill {
    /// The teacher's model file [default: the baseline].
    pub teacher: Option<PathBuf>,
    /// Weight of the teacher's soft targets (0: no distillation).
    pub weight: f32,
    /// Temperature of the teacher's soft targets.
    pub temperature: f32,
}

impl Default for Distill {
    fn default() -> Self {
        Distill {
            teacher: None,
            weight: 0.0,
            temperature: DEFAULT_TEMPERATURE,
        }
    }
}

impl Distill {
    /// The flags that give these settings.
    pub(super) fn argv(&self, a: &mut Argv) {
        a.opt_path("--teacher", self.teacher.as_deref());
        if self.weight != 0.0 {
            a.flag("--distill", self.weight);
        }
        if self.temperature != DEFAULT_TEMPERATURE {
            a.flag("--temperature", self.temperature);
        }
    }

    /// Adds the teacher's file to a plan's inputs.
    pub(super) fn plan(&self, plan: Plan) -> Plan {
        match &self.teacher {
            Some(t) => plan.input("the teacher", t),
            None => plan,
        }
    }

    /// Checks the settings and loads the teacher (the baseline `base`, from `base_path`,
    /// when none is given): `None` without distillation. One sentence for a weight outside
    /// 0 to 1, a temperature that is not positive, or a teacher of other classes or images.
    pub(super) fn load(&self, base: &IntModel) -> Result<Option<IntModel>> {
        if !(0.0..=1.0).contains(&self.weight) {
            return Err(Error::usage(format!(
                "--distill {} must be between 0 and 1",
                self.weight
            )));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::usage(format!(
                "--temperature {} must be a positive number",
                self.temperature
            )));
        }
        if self.weight == 0.0 {
            if self.teacher.is_some() {
                return Err(Error::usage(
                    "--teacher is the model --distill W learns from; give --distill too",
                ));
            }
            return Ok(None);
        }
        let Some(path) = &self.teacher else {
            return Ok(Some(base.clone()));
        };
        let t = model::load(path)?;
        if t.classes() != base.classes() || t.input != base.input {
            return Err(Error::usage(format!(
                "{}: the teacher classifies {} classes of {}x{}x{} images; the baseline {} of \
                 {}x{}x{}",
                path.display(),
                t.classes(),
                t.input.height,
                t.input.width,
                t.input.channels,
                base.classes(),
                base.input.height,
                base.input.width,
                base.input.channels
            )));
        }
        Ok(Some(t))
    }
}
