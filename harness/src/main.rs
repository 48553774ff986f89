//! The `faultline` command-line tool.
//!
//! Exit codes (DESIGN.md): 0 valid, 1 invalid, 2 unknown, 254 bad usage or unreadable input,
//! 255 internal error.

mod check_cmd;
mod cli;
mod cluster_cmd;
mod exec_cmd;
mod exit;
mod hooks;
mod nemesis_cmd;
mod node_cmd;
mod recorder;
mod report;
mod store;
mod test_cmd;
mod test_config;
mod timeline;

use exit::{Exit, Failure};
use std::process::ExitCode;

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = cli::Cli::command()
        .try_get_matches()
        .and_then(|m| cli::Cli::from_arg_matches(&m).map(|c| (c, m)));
    let (mut cli, matches) = match parsed {
        Ok(x) => x,
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
    // Options given on the command line win over a --config file or a --replayed run's.
    if let (cli::Command::Test(args), Some(("test", m))) = (&mut cli.command, matches.subcommand())
    {
        if let Err(e) = test_config::apply(args, m) {
            eprintln!("error: {e:#}");
            return Exit::BadInput.into();
        }
    }
    init_logging();
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
        cli::Command::Test(args) => test_cmd::run(&args),
        cli::Command::Check(args) => check_cmd::run(&args),
        cli::Command::Analyze(args) => test_cmd::analyze(&args),
        cli::Command::Cluster(cmd) => cluster_cmd::run(cmd),
        cli::Command::Exec(args) => exec_cmd::run(&args),
        cli::Command::Nemesis(args) => nemesis_cmd::run(&args),
        cli::Command::Heal(args) => nemesis_cmd::heal(&args),
        cli::Command::Node(cmd) => node_cmd::run(&cmd),
    }
}

/// Log lines (warnings and errors by default; `FAULTLINE_LOG=debug` for more) go to stderr.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FAULTLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
