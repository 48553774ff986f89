//! The `faultline` command-line tool.
//!
//! Exit codes (DESIGN.md): 0 valid, 1 invalid, 2 unknown, 254 bad usage or unreadable input,
//! 255 internal error.

use harness::exit::{Exit, Failure};
use harness::*;
use std::process::ExitCode;

fn main() -> ExitCode {
    use clap::Parser;
    let cli = match cli::Cli::try_parse() {
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
    let level = match (&cli.log_level, &cli.command) {
        (Some(l), _) => l.clone(),
        (None, cli::Command::Test(_)) => "warn,harness=info".to_string(),
        (None, cli::Command::Campaign(_)) => "warn,harness=info".to_string(),
        (None, cli::Command::Shrink(_)) => "warn,harness=info".to_string(),
        (None, _) => "warn".to_string(),
    };
    logging::init(&level);
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
    let registry = workloads::Registry::builtin();
    match cli.command {
        cli::Command::Test(args) => test_cmd::run_with(&args, &registry),
        cli::Command::Check(args) => check_cmd::run(&args),
        cli::Command::Analyze(args) => run::analyze(&args, &registry),
        cli::Command::Cluster(cmd) => cluster_cmd::run(cmd),
        cli::Command::Exec(args) => exec_cmd::run(&args),
        cli::Command::Db(cmd) => db_cmd::run(&cmd, &registry),
        cli::Command::Nemesis(args) => nemesis_cmd::run(&args, &registry),
        cli::Command::Heal(args) => nemesis_cmd::heal(&args, &registry),
        cli::Command::Serve(args) => serve_cmd::run(&args),
        cli::Command::Node(cmd) => node_cmd::run(&cmd),
        cli::Command::BenchRecord(args) => bench_cmd::run(&args),
        cli::Command::BenchStore(args) => bench_store::run(&args),
        cli::Command::Campaign(args) => campaign::run(&args, &registry),
        cli::Command::Index(cmd) => index_cmd::run(&cmd),
        cli::Command::Shrink(args) => shrink_cmd::run(&args, &registry),
    }
}
