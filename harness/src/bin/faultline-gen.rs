//! `faultline-gen`: writes a synthetic register history (history.jsonl) for benchmarks.
//!
//! ```text
//! faultline-gen --ops 1000000 --keys 1000 --processes 10 --crash-rate 0.01 --seed 1 > h.jsonl
//! faultline check --model cas-register h.jsonl
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
}

fn main() -> ExitCode {
    let args = Args::parse();
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
