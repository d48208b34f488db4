//! Every path a command will write, checked before the command does any work
//! ([`crate::util::output::Plan`]): one place, so no command can forget.

use std::path::Path;

use super::{Command, DataArgs, DataCommand};
use crate::error::Result;
use crate::util::output::Plan;

/// Files of a dataset given as a directory (an output must not land on them).
fn dataset(plan: Plan, data: &DataArgs) -> Plan {
    let dir = Path::new(&data.dataset);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return plan;
    };
    entries
        .flatten()
        .fold(plan, |p, e| p.input("a dataset file", &e.path()))
}

/// The files of a design directory that a command reads.
fn design(plan: Plan, dir: &Path) -> Plan {
    let plan = plan.input("the design's manifest", &dir.join("design.json"));
    match crate::rtlgen::load_manifest(dir) {
        Ok(m) => m
            .written
            .iter()
            .chain(&m.files)
            .fold(plan, |p, f| p.input("a design file", &dir.join(f))),
        Err(_) => plan,
    }
}

/// Checks the outputs of `command` against each other and against its inputs.
pub fn check(command: &Command) -> Result<()> {
    let plan = match command {
        Command::Data(DataCommand::Info(a)) => {
            dataset(Plan::new().file("--json", a.json.as_deref()), &a.data)
        }
        Command::Data(DataCommand::Fetch(_)) => Plan::new(),
        Command::Train(a) => dataset(
            Plan::new()
                .file("-o", Some(&a.output))
                .file("--json", a.json.as_deref()),
            &a.data,
        ),
        Command::Eval(a) => dataset(
            Plan::new()
                .file("--predictions", a.predictions.as_deref())
                .file("--json", a.json.as_deref())
                .input("the model", &a.model),
            &a.data,
        ),
        Command::Sensitivity(a) => dataset(
            Plan::new()
                .file("--json", a.json.as_deref())
                .file("--plot", a.plot.as_deref())
                .input("the model", &a.model),
            &a.data,
        ),
        Command::Prune(a) => dataset(
            Plan::new()
                .file("-o", Some(&a.output))
                .file("--report", a.report.as_deref())
                .input("the model", &a.model),
            &a.data,
        ),
        Command::Rtl(a) => Plan::new()
            .dir("-o", &a.output)
            .input("the model", &a.model),
        Command::Sim(a) => dataset(
            design(
                Plan::new()
                    .file("--vcd", a.vcd.as_deref())
                    .file("--json", a.json.as_deref()),
                &a.dir,
            ),
            &a.data,
        ),
        Command::Synth(a) => design(Plan::new().file("--json", a.json.as_deref()), &a.dir),
        Command::Flow(a) => dataset(Plan::new().workdir("-o", &a.output), &a.data),
        Command::Bench(a) => {
            let plan = Plan::new()
                .file("--json", a.json.as_deref())
                .workdir("--work", &a.work);
            let plan = [&a.baseline, &a.compact, &a.float]
                .into_iter()
                .flatten()
                .fold(plan, |p, m| p.input("a model", m));
            dataset(plan, &a.data)
        }
    };
    plan.check()
}
