//! `faultline check`: read a history, check it, report.

use crate::cli::CheckArgs;
use crate::exit::{bad_input, internal, Exit, Failure};
use crate::timeline::{self, Bar, Outcome};
use anyhow::Context;
use checkers::history::Value;
use checkers::linear::{
    check_keys, CheckOptions, KeyReport, Limits, OpsBuilder, Report, Stop, Strategy, Verdict,
};
use checkers::model::catalog::{with_model, ModelOptions, ModelVisitor};
use checkers::model::Model;
use checkers::read::{self, Format, Validator};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Runs `faultline check`.
pub fn run(args: &CheckArgs) -> Result<Exit, Failure> {
    if let Some(model) = checkers::txn::TxnModel::parse(&args.model) {
        return run_txn(args, model);
    }
    let start = Instant::now();
    let options = ModelOptions {
        initial: args.initial.as_deref().map(parse_initial),
        nil_read_unknown: args.knossos_nil_reads,
    };
    let visitor = CheckVisitor { args };
    let (mut report, bars) = with_model(&args.model, &options, visitor).map_err(bad_input)??;
    report.elapsed_ms = start.elapsed().as_millis() as u64;

    if let Some(dir) = &args.out {
        write_outputs(dir, &args.history, &report, &bars).map_err(internal)?;
    }
    if args.json {
        let mut value = serde_json::to_value(&report).map_err(internal)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("file".into(), args.history.display().to_string().into());
        }
        println!("{value}");
    } else {
        print_human(&args.history, &report);
        if let Some(dir) = &args.out {
            println!("timeline: {}", dir.join("timeline.html").display());
        }
    }
    Ok(match report.valid {
        Verdict::Valid => Exit::Valid,
        Verdict::Invalid => Exit::Invalid,
        Verdict::Unknown => Exit::Unknown,
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

struct CheckVisitor<'a> {
    args: &'a CheckArgs,
}

impl ModelVisitor for CheckVisitor<'_> {
    type Output = Result<(Report, Vec<Bar>), Failure>;

    fn visit<M: Model>(self, model: &M) -> Self::Output {
        let args = self.args;
        let format: Format = args
            .format
            .parse()
            .map_err(|e: String| bad_input(anyhow::anyhow!(e)))?;
        let file = args.history.display().to_string();
        let mut reader = read::open(&args.history, format).map_err(bad_input)?;
        reader.allow_truncated_tail(args.allow_truncated);
        let mut validator = Validator::new(&file);
        let mut builder = OpsBuilder::new(model, &file);
        let progress = std::io::stderr().is_terminal();
        let mut events: u64 = 0;
        for located in reader {
            let located = located.map_err(bad_input)?;
            validator.check(&located).map_err(bad_input)?;
            builder
                .push(
                    &located.event,
                    located.line,
                    located.f_column,
                    located.value_column,
                )
                .map_err(bad_input)?;
            events += 1;
            if progress && events.is_multiple_of(1_000_000) {
                eprint!("\rread {events} events");
            }
        }
        if progress && events >= 1_000_000 {
            eprintln!("\rread {events} events");
        }
        validator.finish().map_err(bad_input)?;
        let (by_key, _counts) = builder.finish().map_err(bad_input)?;
        let options = CheckOptions {
            strategy: if args.search_only {
                Strategy::Search
            } else {
                Strategy::Auto
            },
            limits: Limits::new(
                args.time_limit,
                args.memory_limit.unwrap_or_else(default_memory_limit),
            ),
            stop_at_first_invalid: !args.all_keys,
            ..CheckOptions::default()
        };
        let report = if progress {
            with_progress(&options.keys_done, by_key.len(), || {
                check_keys(model, &by_key, &options)
            })
        } else {
            check_keys(model, &by_key, &options)
        };
        let bars = timeline_bars(model, &by_key, &report);
        Ok((report, bars))
    }
}

/// Runs `work` while a thread shows, every half second after the first, how many keys are done.
fn with_progress<T>(done: &AtomicUsize, total: usize, work: impl FnOnce() -> T) -> T {
    let finished = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            let mut shown = false;
            while !finished.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if start.elapsed() >= Duration::from_secs(1)
                    && start.elapsed().as_millis() % 500 < 100
                {
                    eprint!(
                        "\rchecked {} of {total} keys ({:.0?})",
                        done.load(Ordering::Relaxed),
                        start.elapsed()
                    );
                    shown = true;
                }
            }
            if shown {
                eprintln!();
            }
        });
        let out = work();
        finished.store(true, Ordering::Relaxed);
        out
    })
}

/// The ops of the failing keys (at most 5 keys), as timeline bars.
fn timeline_bars<M: Model>(
    model: &M,
    by_key: &[checkers::linear::KeyOps<M::Op>],
    report: &Report,
) -> Vec<Bar> {
    let mut bars = Vec::new();
    for anomaly in report.anomalies.iter().take(5) {
        let Some((key, ops)) = by_key.iter().find(|(k, _)| *k == anomaly.key) else {
            continue;
        };
        let cex = anomaly.result.counterexample.as_ref();
        let failed = cex
            .and_then(|c| c.failed_op.as_ref())
            .map(|o| o.invoke_index);
        let prefix: Vec<u64> = cex
            .map(|c| c.prefix_tail.iter().map(|s| s.op.invoke_index).collect())
            .unwrap_or_default();
        for op in ops {
            bars.push(Bar {
                key: key.as_ref().map(|k| k.to_string()),
                process: op.process,
                start: op.call,
                end: op.ret,
                label: model.show_op(&op.op),
                index: op.invoke_index,
                outcome: if Some(op.invoke_index) == failed {
                    Outcome::Failed
                } else if prefix.contains(&op.invoke_index) {
                    Outcome::InPrefix
                } else if op.ret.is_none() {
                    Outcome::Unknown
                } else {
                    Outcome::Ok
                },
            });
        }
    }
    bars
}

fn write_outputs(dir: &Path, history: &Path, report: &Report, bars: &[Bar]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let results = dir.join("results.json");
    std::fs::write(&results, serde_json::to_vec_pretty(report)?)
        .with_context(|| format!("writing {}", results.display()))?;
    let page = timeline::render(&history.display().to_string(), report, bars);
    let path = dir.join("timeline.html");
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn print_human(history: &Path, report: &Report) {
    println!(
        "{}: {} ops over {} key{}, model {}; checked in {} ms ({} key(s) by fast path, {} by search)",
        history.display(),
        report.ops,
        report.keys,
        if report.keys == 1 { "" } else { "s" },
        report.model,
        report.elapsed_ms,
        report.fast_path_keys,
        report.search_keys
    );
    // The first counterexample in full; the other invalid keys a line each (all of them are
    // in results.json and timeline.html).
    let mut shown = false;
    for a in &report.anomalies {
        let key = a
            .key
            .as_ref()
            .map_or_else(|| "history".to_string(), |k| format!("key {k}"));
        println!("\n{key}: NOT linearizable ({} ops)", a.ops);
        if let Some(reason) = &a.result.reason {
            println!("  reason: {reason}");
        }
        if let Some(c) = a.result.counterexample.as_ref().filter(|_| !shown) {
            shown = true;
            println!(
                "  longest linearizable prefix: {} ops; its last steps:",
                c.prefix_len
            );
            for s in &c.prefix_tail {
                println!(
                    "    [{}] process {}: {}   => {}",
                    s.op.invoke_index, s.op.process, s.op.op, s.state_after
                );
            }
            if let Some(f) = &c.failed_op {
                println!(
                    "  cannot linearize next: [{}] process {}: {}",
                    f.invoke_index, f.process, f.op
                );
                println!("  in any of the states: {}", c.states.join(", "));
            }
        }
    }
    let cancelled = Stop::Cancelled.to_string();
    let is_cancelled = |u: &&KeyReport| {
        u.result
            .progress
            .as_ref()
            .is_some_and(|p| p.stopped_by == cancelled)
    };
    let skipped = report.undecided.iter().filter(is_cancelled).count();
    if skipped > 0 {
        println!("\n{skipped} other key(s) not checked after the first invalid key (--all-keys checks every key)");
    }
    for u in report.undecided.iter().filter(|u| !is_cancelled(u)) {
        let key = u
            .key
            .as_ref()
            .map_or_else(|| "history".to_string(), |k| format!("key {k}"));
        if let Some(p) = &u.result.progress {
            println!(
                "\n{key}: UNDECIDED: {} after linearizing at most {} of {} ops ({} configurations explored)",
                p.stopped_by, p.linearized, p.ops, p.explored
            );
        }
    }
    let verdict = match report.valid {
        Verdict::Valid => "VALID: linearizable".to_string(),
        Verdict::Invalid => format!(
            "INVALID: {} key(s) not linearizable",
            report.anomalies.len()
        ),
        Verdict::Unknown => format!(
            "UNKNOWN: {} key(s) undecided within the limits (raise --time-limit or --memory-limit)",
            report.undecided.len()
        ),
    };
    println!("\n{verdict}");
}

/// `faultline check --model list-append|rw-register`: the transactional checker.
fn run_txn(args: &CheckArgs, model: checkers::txn::TxnModel) -> Result<Exit, Failure> {
    use checkers::txn::report::TxnVerdict;
    use checkers::txn::{Budget, Consistency, TxnBuilder};
    let start = Instant::now();
    let consistency: Consistency = args
        .consistency
        .parse()
        .map_err(|e: String| bad_input(anyhow::anyhow!(e)))?;
    let format: Format = args
        .format
        .parse()
        .map_err(|e: String| bad_input(anyhow::anyhow!(e)))?;
    let file = args.history.display().to_string();
    let mut reader = read::open(&args.history, format).map_err(bad_input)?;
    reader.allow_truncated_tail(args.allow_truncated);
    let mut validator = Validator::new(&file);
    let mut builder = TxnBuilder::new(model, &file);
    for located in reader {
        let located = located.map_err(bad_input)?;
        validator.check(&located).map_err(bad_input)?;
        builder.push(&located).map_err(bad_input)?;
    }
    validator.finish().map_err(bad_input)?;
    let history = builder.finish().map_err(bad_input)?;
    let budget = Budget {
        time: Some(args.time_limit.unwrap_or(Duration::from_secs(60))),
        memo_entries: args.memory_limit.unwrap_or_else(default_memory_limit) / 128,
        ..Budget::default()
    };
    let mut report = checkers::txn::check(&history, consistency, &budget);
    report.elapsed_ms = start.elapsed().as_millis() as u64;
    if let Some(dir) = &args.out {
        write_txn_outputs(dir, &report).map_err(internal)?;
    }
    if args.json {
        let mut value = serde_json::to_value(&report).map_err(internal)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("file".into(), file.clone().into());
        }
        println!("{value}");
    } else {
        let mut text = report.human(&file);
        if let Some(dir) = &args.out {
            text.push_str(&format!(
                "results: {}\n",
                dir.join("results.json").display()
            ));
        }
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    }
    Ok(match report.valid {
        TxnVerdict::Valid => Exit::Valid,
        TxnVerdict::Invalid => Exit::Invalid,
        TxnVerdict::Unknown => Exit::Unknown,
    })
}

/// results.json and one SVG per reported cycle, the shortest first (cycle-01-G0.svg, ...).
fn write_txn_outputs(dir: &Path, report: &checkers::txn::TxnReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let results = dir.join("results.json");
    std::fs::write(&results, serde_json::to_vec_pretty(report)?)
        .with_context(|| format!("writing {}", results.display()))?;
    for (i, (kind, anomaly)) in report.cycles().into_iter().enumerate() {
        let path = dir.join(format!("cycle-{:02}-{kind}.svg", i + 1));
        std::fs::write(&path, checkers::txn::svg::cycle_svg(kind, anomaly))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
