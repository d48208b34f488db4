//! Progress bars on stderr, drawn only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A progress bar of `len` steps labelled `what`; hidden when stderr is not a terminal.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = ProgressBar::with_draw_target(Some(len), target);
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
            .expect("static template is valid")
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// Writes one line to stderr; a closed or full stderr is ignored (a diagnostic that cannot be
/// shown must not stop the work, nor panic as `eprintln!` does).
pub fn stderr_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// Prints a log line on stderr without tearing a progress bar that may be drawn.
pub fn log(pb: &ProgressBar, line: &str) {
    if pb.is_hidden() {
        stderr_line(format_args!("{line}"));
    } else {
        pb.println(line);
    }
}

/// A spinner with elapsed time labelled `what`, for work of unknown length; hidden when stderr
/// is not a terminal. Its message shows the current step.
pub fn spinner(what: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = ProgressBar::with_draw_target(None, target);
    pb.set_style(
        ProgressStyle::with_template("{prefix} {spinner} [{elapsed}] {wide_msg}")
            .expect("static template is valid"),
    );
    pb.set_prefix(what.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

/// Progress for a log that is not a terminal, where no bar is drawn: a line each time the count
/// passes another tenth of the total, with the time taken so far and an estimate of the time left.
#[derive(Debug)]
pub struct Milestones {
    what: String,
    len: u64,
    shown: u64,
}

impl Milestones {
    /// Milestones of `len` steps labelled `what`.
    pub fn new(what: &str, len: u64) -> Self {
        Milestones {
            what: what.to_string(),
            len,
            shown: 0,
        }
    }

    /// The line to print when the count has reached `pos` after `elapsed`: `Some` only when `pos`
    /// passed a tenth of the total that no earlier line showed.
    pub fn update(&mut self, pos: u64, elapsed: std::time::Duration) -> Option<String> {
        if self.len == 0 {
            return None;
        }
        let pos = pos.min(self.len);
        let tenths = pos * 10 / self.len;
        if tenths <= self.shown {
            return None;
        }
        self.shown = tenths;
        let left = elapsed.mul_f64((self.len - pos) as f64 / pos as f64);
        Some(format!(
            "{}: {pos}/{} ({} %), {} so far, about {} left",
            self.what,
            self.len,
            pos * 100 / self.len,
            duration(elapsed),
            duration(left)
        ))
    }
}

/// A duration as people read it in a log: `45s`, `12m05s`, `1h02m`.
pub fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn milestones_show_each_tenth_once_with_the_time_left() {
        let mut m = Milestones::new("simulate", 10000);
        assert_eq!(m.update(0, Duration::ZERO), None);
        assert_eq!(m.update(999, Duration::from_secs(60)), None);
        assert_eq!(
            m.update(1000, Duration::from_secs(120)).as_deref(),
            Some("simulate: 1000/10000 (10 %), 2m00s so far, about 18m00s left")
        );
        assert_eq!(m.update(1999, Duration::from_secs(200)), None);
        // A jump over several tenths shows one line, at the count reached.
        assert_eq!(
            m.update(3500, Duration::from_secs(7000)).as_deref(),
            Some("simulate: 3500/10000 (35 %), 1h56m so far, about 3h36m left")
        );
        assert_eq!(m.update(3999, Duration::from_secs(7100)), None);
        assert_eq!(
            m.update(10000, Duration::from_secs(9000)).as_deref(),
            Some("simulate: 10000/10000 (100 %), 2h30m so far, about 0s left")
        );
        assert_eq!(m.update(10000, Duration::from_secs(9001)), None);
        assert_eq!(Milestones::new("x", 0).update(5, Duration::ZERO), None);
    }

    #[test]
    fn durations_read_as_seconds_minutes_or_hours() {
        assert_eq!(duration(Duration::from_millis(59_999)), "59s");
        assert_eq!(duration(Duration::from_secs(60)), "1m00s");
        assert_eq!(duration(Duration::from_secs(3599)), "59m59s");
        assert_eq!(duration(Duration::from_secs(3600 + 120 + 59)), "1h02m");
    }
}
