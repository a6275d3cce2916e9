//! `plumbline`: the collector's binary. Parses the command line and reports a failure as one
//! line on stderr, each cause said once, with a non-zero exit code.

use clap::Parser;
use plumbline_collector::cli::{self, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("plumbline: {}", cli::error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    Ok(cli::run(cli)?)
}
