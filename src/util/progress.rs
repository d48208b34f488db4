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
