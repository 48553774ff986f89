//! The `faultline` command-line tool.
//!
//! Exit codes (DESIGN.md): 0 valid, 1 invalid, 2 unknown, 254 bad usage or unreadable input,
//! 255 internal error.

mod check_cmd;
mod cli;
mod cluster_cmd;
mod exit;
mod timeline;

use clap::Parser;
use exit::{Exit, Failure};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                Exit::BadInput
            } else {
                Exit::Valid
            };
            let _ = e.print();
            return code.into();
        }
    };
    let outcome = std::panic::catch_unwind(|| run(cli));
    match outcome {
        Ok(Ok(code)) => code.into(),
        Ok(Err(Failure::BadInput(e))) => {
            eprintln!("error: {e:#}");
            Exit::BadInput.into()
        }
        Ok(Err(Failure::Internal(e))) => {
            eprintln!("internal error: {e:#}");
            Exit::Internal.into()
        }
        Err(_) => {
            eprintln!(
                "internal error: faultline panicked (a bug: please report it with the input)"
            );
            Exit::Internal.into()
        }
    }
}

fn run(cli: cli::Cli) -> Result<Exit, Failure> {
    match cli.command {
        cli::Command::Check(args) => check_cmd::run(&args),
        cli::Command::Cluster(cmd) => cluster_cmd::run(cmd),
    }
}
