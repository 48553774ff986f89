//! `faultline-gen`: writes a synthetic register history (history.jsonl) for benchmarks.
//!
//! ```text
//! faultline-gen --ops 1000000 --keys 1000 --processes 10 --crash-rate 0.01 --seed 1 > h.jsonl
//! faultline check --model cas-register h.jsonl
//! ```
//!
//! With `--txn list-append` (or `rw-register`) it writes a transactional history instead:
//! `--ops` transactions of 1 to `--max-mops` micro-ops over `--keys` live keys, run by the
//! `--executor` (serial, snapshot-isolation, read-committed or stale-replica).
//!
//! ```text
//! faultline-gen --txn list-append --executor snapshot-isolation --ops 10000 --seed 1 > t.jsonl
//! faultline check --model list-append --consistency serializable t.jsonl
//! ```

use checkers::generate::{GenOptions, Generator};
use checkers::history::write_jsonl;
use clap::Parser;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

/// Generate a synthetic history of linearizable registers (optionally with stale reads).
#[derive(Debug, Parser)]
#[command(name = "faultline-gen", version)]
struct Args {
    /// Ops (invocations) in all.
    #[arg(long, default_value_t = 1_000_000)]
    ops: u64,
    /// Number of keys; ops are spread evenly, one key at a time.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 10)]
    processes: u64,
    /// Fraction of ops that crash (complete with info).
    #[arg(long, default_value_t = 0.01)]
    crash_rate: f64,
    /// Fraction of reads that return a stale value (makes the history invalid).
    #[arg(long, default_value_t = 0.0)]
    stale_read_rate: f64,
    /// Only reads and writes (the register model) instead of cas-register ops.
    #[arg(long)]
    no_cas: bool,
    /// Seed: the same seed gives the same history.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Write a transactional history of this model (list-append or rw-register); --ops counts
    /// transactions and --keys the live keys.
    #[arg(long, value_parser = ["list-append", "rw-register"])]
    txn: Option<String>,
    /// Transactional executor: serial, snapshot-isolation (write skew), read-committed (lost
    /// updates) or stale-replica (stale reads).
    #[arg(long, default_value = "serial", value_parser = ["serial", "snapshot-isolation", "read-committed", "stale-replica"])]
    executor: String,
    /// Transactional: writes a key receives before a fresh key replaces it.
    #[arg(long, default_value_t = 16)]
    max_writes_per_key: u64,
    /// Transactional: micro-ops per transaction, 1 to this.
    #[arg(long, default_value_t = 4)]
    max_mops: u64,
}

/// Writes a transactional history (`--txn`).
fn generate_txn(args: &Args, model: &str) -> ExitCode {
    use checkers::txn::generate::{generate, Executor, TxnGenOptions};
    let (Some(model), Some(executor)) = (
        checkers::txn::TxnModel::parse(model),
        Executor::parse(&args.executor),
    ) else {
        eprintln!("faultline-gen: unknown --txn model or --executor");
        return ExitCode::from(254);
    };
    let opts = TxnGenOptions {
        model,
        txns: args.ops,
        processes: args.processes,
        keys: args.keys,
        max_writes_per_key: args.max_writes_per_key,
        max_mops: args.max_mops,
        crash_rate: args.crash_rate,
        executor,
        seed: args.seed,
        ..TxnGenOptions::default()
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut failed = None;
    generate(&opts, |event| {
        if failed.is_none() {
            if let Err(e) = write_jsonl(&mut out, &event) {
                failed = Some(e);
            }
        }
    });
    if let Some(e) = failed.or_else(|| out.flush().err()) {
        eprintln!("faultline-gen: {e}");
        return ExitCode::from(255);
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(model) = &args.txn {
        return generate_txn(&args, model);
    }
    let opts = GenOptions {
        ops: args.ops,
        ops_per_key: args.ops.div_ceil(args.keys.max(1)),
        processes: args.processes,
        crash_rate: args.crash_rate,
        stale_read_rate: args.stale_read_rate,
        cas: !args.no_cas,
        seed: args.seed,
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    for event in Generator::new(opts) {
        if let Err(e) = write_jsonl(&mut out, &event) {
            eprintln!("faultline-gen: {e}");
            return ExitCode::from(255);
        }
    }
    if let Err(e) = out.flush() {
        eprintln!("faultline-gen: {e}");
        return ExitCode::from(255);
    }
    ExitCode::SUCCESS
}
