//! The `cbnn` binary: parse the command line, run it, map errors to exit codes.

use clap::Parser;

fn main() {
    let cli = cbnn::cli::Cli::parse();
    if let Err(e) = cbnn::cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
