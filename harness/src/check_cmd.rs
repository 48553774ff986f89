//! `faultline check`: read a history, check it, report.

use crate::checking::{check_file, exit_of, print_human, write_outputs};
use crate::cli::CheckArgs;
use crate::exit::{bad_input, internal, Exit, Failure};
use checkers::check::{Checker, Details};
use checkers::history::Value;
use checkers::linear::{CheckOptions, Limits, Strategy};
use checkers::model::catalog::ModelOptions;
use checkers::read::Format;
use checkers::txn::{Assumptions, Budget, Consistency, TxnModel};

/// Runs `faultline check`.
pub fn run(args: &CheckArgs) -> Result<Exit, Failure> {
    let format: Format = args
        .format
        .parse()
        .map_err(|e: String| bad_input(anyhow::anyhow!(e)))?;
    let checker = checker_of(args)?;
    let checked = check_file(&checker, &args.history, format, args.allow_truncated)?;
    if let Some(dir) = &args.out {
        write_outputs(dir, &args.history, &checked).map_err(internal)?;
    }
    if args.json {
        let mut value = serde_json::to_value(&checked.results).map_err(internal)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("file".into(), args.history.display().to_string().into());
        }
        println!("{value}");
    } else {
        print_human(&args.history, &checked);
        if let (Some(dir), Details::Linearizable(_)) = (&args.out, &checked.results.details) {
            println!("timeline: {}", dir.join("timeline.html").display());
        }
    }
    Ok(exit_of(checked.verdict))
}

/// The checker `--model` names: a transactional one for list-append and rw-register (checked
/// against `--consistency`), else linearizability against that model.
fn checker_of(args: &CheckArgs) -> Result<Checker, Failure> {
    let memory_limit = args.memory_limit.unwrap_or_else(default_memory_limit);
    let mut assumptions = Assumptions::default();
    for a in &args.assume {
        assumptions
            .add(a)
            .map_err(|e| bad_input(anyhow::anyhow!("--assume: {e}")))?;
    }
    if let Some(model) = TxnModel::parse(&args.model) {
        let consistency: Consistency = args
            .consistency
            .as_deref()
            .unwrap_or("strict-serializable")
            .parse()
            .map_err(|e: String| bad_input(anyhow::anyhow!("--consistency: {e}")))?;
        return Ok(Checker::Transactional {
            model,
            consistency,
            budget: Budget {
                time: args.time_limit.or(Budget::default().time),
                // A memo entry costs about 128 bytes with its table overhead.
                memo_entries: memory_limit / 128,
                memory: memory_limit,
                ..Budget::default()
            },
            assumptions,
        });
    }
    if !args.assume.is_empty() {
        return Err(bad_input(anyhow::anyhow!(
            "--assume: only for the transactional models list-append and rw-register \
             (--model {} is checked for linearizability)",
            args.model
        )));
    }
    if let Some(c) = &args.consistency {
        return Err(bad_input(anyhow::anyhow!(
            "--consistency {c}: only for the transactional models list-append and rw-register \
             (--model {} is checked for linearizability)",
            args.model
        )));
    }
    Ok(Checker::Linearizable {
        model: args.model.clone(),
        model_options: ModelOptions {
            initial: args.initial.as_deref().map(parse_initial),
            nil_read_unknown: args.knossos_nil_reads,
        },
        options: CheckOptions {
            strategy: if args.search_only {
                Strategy::Search
            } else {
                Strategy::Auto
            },
            limits: Limits::new(args.time_limit, memory_limit),
            stop_at_first_invalid: !args.all_keys,
            ..CheckOptions::default()
        },
    })
}

/// `--initial` takes JSON (`0`, `null`, `"x"`); anything else is taken as a string.
fn parse_initial(s: &str) -> Value {
    serde_json::from_str(s)
        .map(Value::from_json)
        .unwrap_or_else(|_| Value::Str(s.to_string()))
}

/// Half of this machine's memory, or 4 GiB when that cannot be read.
fn default_memory_limit() -> usize {
    let total_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<usize>().ok())
    });
    total_kib.map_or(4 << 30, |kib| kib * 1024 / 2)
}
