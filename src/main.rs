//! The `cbnn` binary: parse the command line, run it, map errors to exit codes.

use clap::Parser;

fn main() {
    let cli = cbnn::cli::Cli::parse();
    let result = cbnn::cli::run(cli);
    let stdout = cbnn::cli::out::take_error();
    if let Err(e) = result {
        cbnn::util::progress::stderr_line(format_args!("error: {}", cbnn::cli::describe(&e)));
        std::process::exit(e.exit_code());
    }
    match stdout {
        // The reader closed the pipe: it wanted no more; every file was written.
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Some(e) => {
            cbnn::util::progress::stderr_line(format_args!(
                "error: cannot write to standard output: {e}"
            ));
            std::process::exit(2);
        }
        None => {}
    }
}
