//! External tools (Verilator, make, the compiler, the simulator, Yosys, nextpnr) that never
//! outlive cbnn.
//!
//! A tool started with [`spawn`] runs in a process group of its own, watched by a small
//! watchdog (`sh`) that waits on a pipe only cbnn holds. When cbnn ends, however it ends
//! (including `SIGKILL`, where no clean-up code can run), the pipe closes and the watchdog
//! kills the tool's whole group: the tool and every process it started (make, g++, ...), and
//! removes the tool's scratch directory when it has one. When the tool ends normally the guard
//! does the same, so nothing it left running survives.

use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

/// A running tool and the watchdog of its process group.
pub struct Guarded {
    /// The tool.
    pub child: Child,
    watchdog: Child,
    pipe: Option<ChildStdin>,
}

/// Starts `cmd` in a guarded process group of its own.
pub fn spawn(cmd: &mut Command) -> std::io::Result<Guarded> {
    spawn_cleaning(cmd, None)
}

/// Like [`spawn`]; when the group is killed because cbnn ended, the watchdog also removes
/// `scratch` (the tool's working directory), which cbnn can no longer do itself.
pub fn spawn_cleaning(cmd: &mut Command, scratch: Option<&Path>) -> std::io::Result<Guarded> {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let mut watchdog = Command::new("sh");
    // First line: the group to kill. Then it waits: "done" when cbnn finished with the tool,
    // end of file when cbnn died (the scratch directory is then removed too).
    watchdog.args([
        "-c",
        "read pg; read how; kill -9 -$pg 2>/dev/null; \
         [ \"$how\" = done ] || [ -z \"$1\" ] || rm -rf -- \"$1\"",
        "cbnn-watchdog",
    ]);
    if let Some(dir) = scratch {
        watchdog.arg(dir);
    }
    let mut watchdog = watchdog
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let mut pipe = watchdog.stdin.take();
    let child = match cmd.process_group(0).spawn() {
        Ok(c) => c,
        Err(e) => {
            drop(pipe);
            let _ = watchdog.wait();
            return Err(e);
        }
    };
    if let Some(p) = pipe.as_mut() {
        let _ = writeln!(p, "{}", child.id());
    }
    Ok(Guarded {
        child,
        watchdog,
        pipe,
    })
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // The watchdog kills what is left of the group and keeps the scratch directory.
        if let Some(mut p) = self.pipe.take() {
            let _ = std::io::Write::write_all(&mut p, b"done\n");
        }
        let _ = self.child.try_wait();
        let _ = self.watchdog.wait();
    }
}

/// Runs `cmd` guarded and collects its output, like [`Command::output`]; `scratch` as in
/// [`spawn_cleaning`].
pub fn output(cmd: &mut Command, scratch: Option<&Path>) -> std::io::Result<std::process::Output> {
    let mut g = spawn_cleaning(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()), scratch)?;
    let (out, err) = (g.child.stdout.take(), g.child.stderr.take());
    let err_thread = std::thread::spawn(move || read_all(err));
    let stdout = read_all(out);
    let status = g.child.wait()?;
    let stderr = err_thread.join().unwrap_or_default();
    Ok(std::process::Output {
        status,
        stdout,
        stderr,
    })
}

fn read_all(r: Option<impl std::io::Read>) -> Vec<u8> {
    let mut v = Vec::new();
    if let Some(mut r) = r {
        let _ = r.read_to_end(&mut v);
    }
    v
}

/// The last non-empty line of a cbnn command's error output, without its `error: `.
pub fn last_error_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim_start_matches("error: ")
        .to_string()
}

/// Environment variable that sets the memory a tool cbnn runs may take, in MiB (for a machine
/// shared with other work).
pub const TOOL_MEMORY_VAR: &str = "CBNN_TOOL_MEMORY_MB";

/// The memory a tool cbnn runs (Yosys, nextpnr) may take: `$CBNN_TOOL_MEMORY_MB` MiB, else
/// three quarters of this machine's (`MemTotal`), so that a design too large to synthesize here
/// fails with a clear error instead of waking the kernel's out-of-memory killer, which may end
/// any process on the machine; never more than the address space cbnn itself was given
/// (`ulimit -v`), which its tools inherit and cannot exceed.
pub fn memory_budget() -> crate::error::Result<Option<u64>> {
    let own = own_memory_limit();
    if let Some(v) = std::env::var_os(TOOL_MEMORY_VAR) {
        let v = v.to_string_lossy();
        return match v.trim().parse::<u64>() {
            Ok(mb) if (16..=1 << 24).contains(&mb) => Ok(Some(cap(mb << 20, own))),
            _ => Err(crate::error::Error::usage(format!(
                "{TOOL_MEMORY_VAR}='{v}' must be a whole number of MiB from 16 to 16777216"
            ))),
        };
    }
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return Ok(own);
    };
    let kib: Option<u64> = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
    Ok(kib.map(|k| cap(k * 1024 / 4 * 3, own)).or(own))
}

fn cap(bytes: u64, limit: Option<u64>) -> u64 {
    limit.map_or(bytes, |l| bytes.min(l))
}

/// The address space this process may use (`ulimit -v`, the soft limit), when limited.
fn own_memory_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } == 0;
    (ok && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// What limits the tools' memory, as a message says it.
fn budget_source() -> &'static str {
    let own = own_memory_limit();
    if own.is_some() && memory_budget().ok().flatten() == own {
        "the address space cbnn was given, ulimit -v"
    } else if std::env::var_os(TOOL_MEMORY_VAR).is_some() {
        TOOL_MEMORY_VAR
    } else {
        "three quarters of this machine's memory"
    }
}

/// Environment variable that, set to `off`, lets a tool start on a design whatever memory it
/// is predicted to need (the limit of [`memory_budget`] still holds).
pub const MEMORY_CHECK_VAR: &str = "CBNN_TOOL_MEMORY_CHECK";

/// The budget predictions are checked against: `budget`, unless [`MEMORY_CHECK_VAR`] is `off`.
pub fn checked_budget(budget: Option<u64>) -> Option<u64> {
    budget.filter(|_| !std::env::var(MEMORY_CHECK_VAR).is_ok_and(|v| v == "off"))
}

/// Refuses, before a tool starts, a design in `dir` it is expected to need `need` bytes for,
/// when that exceeds `budget`: one sentence, "DIR is too large to VERB here: {why} ... ".
/// `why` says what the prediction rests on ("for its ~N estimated LUTs Yosys is expected to
/// need").
pub fn check_predicted(
    dir: &Path,
    verb: &str,
    why: &str,
    basis: &str,
    need: u64,
    budget: Option<u64>,
) -> crate::error::Result<()> {
    let Some(budget) = checked_budget(budget).filter(|&b| need > b) else {
        return Ok(());
    };
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    Err(crate::error::Error::usage(format!(
        "{} is too large to {verb} here: {why} up to {:.1} GiB ({basis}, as measured here), more \
         than the {:.1} GiB cbnn lets it use; fold it more (a larger --target-cycles, or smaller \
         PE and SIMD), or set {MEMORY_CHECK_VAR}=off to try anyway",
        dir.display(),
        gib(need),
        gib(budget)
    )))
}

/// Whether a tool that ended with `status` and printed `text` ran out of memory: an
/// allocation failure, or the abort or segmentation fault an unchecked one ends in.
pub fn out_of_memory(text: &str, status: &std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    text.contains("bad_alloc")
        || text.contains("Out of memory")
        || text.contains("out of memory")
        || text.contains("memory exhausted")
        || matches!(status.signal(), Some(libc::SIGABRT) | Some(libc::SIGSEGV))
}

/// The error of `program` that ran out of the `bytes` it may use on the design in `dir`
/// (`log`: where its output is, if kept).
pub fn ran_out(program: &str, bytes: u64, dir: &Path, log: Option<&Path>) -> crate::error::Error {
    crate::error::Error::usage(format!(
        "{program} ran out of the {:.1} GiB cbnn lets it use ({}) on {}: the design is too large \
         to build here; fold it more (a larger --target-cycles, or smaller PE and SIMD){}",
        bytes as f64 / (1u64 << 30) as f64,
        budget_source(),
        dir.display(),
        log.map_or(String::new(), |l| format!(" (log: {})", l.display()))
    ))
}

/// Limits the address space of the process `cmd` starts (and of what it starts) to `bytes`.
pub fn limit_memory(cmd: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // setrlimit, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // Never above the hard limit this process has: only a privileged process may
            // raise it, and an ordinary one asking to would fail to start the tool at all.
            let mut old = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            let mut bytes = bytes as libc::rlim_t;
            if libc::getrlimit(libc::RLIMIT_AS, &mut old) == 0 && old.rlim_max < bytes {
                bytes = old.rlim_max;
            }
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_a_tool_leaves_behind_are_killed_with_its_group() {
        // The tool starts a grandchild that would outlive it, and prints the grandchild's id.
        let out = output(
            Command::new("sh").args(["-c", "sleep 300 >/dev/null 2>&1 & echo $!"]),
            None,
        )
        .unwrap();
        assert!(out.status.success());
        let pid = String::from_utf8(out.stdout).unwrap().trim().to_string();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for init to reap it.
        assert!(stat.is_empty() || stat.contains(") Z "), "{stat}");
    }
}
