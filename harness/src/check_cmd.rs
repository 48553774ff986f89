//! `faultline check`: read a history, check it, report.

use crate::cli::CheckArgs;
use crate::exit::{bad_input, internal, Exit, Failure};
use crate::timeline;
use anyhow::Context;
use checkers::check::{check, CheckError, Checked, Checker, Details};
use checkers::history::Value;
use checkers::linear::{CheckOptions, KeyReport, Limits, Report, Stop, Strategy};
use checkers::model::catalog::ModelOptions;
use checkers::read::{self, Format};
use checkers::txn::{Budget, Consistency, TxnModel};
use checkers::Verdict;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
        });
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

/// The exit code of a verdict.
pub fn exit_of(v: Verdict) -> Exit {
    match v {
        Verdict::Valid => Exit::Valid,
        Verdict::Invalid => Exit::Invalid,
        Verdict::Unknown => Exit::Unknown,
    }
}

/// Checks a history file with `checker` (the one checking entry point of `check`, `test` and
/// `analyze`), with progress on a terminal. Unreadable or invalid input is bad input.
pub fn check_file(
    checker: &Checker,
    history: &Path,
    format: Format,
    allow_truncated: bool,
) -> Result<Checked, Failure> {
    let file = history.display().to_string();
    let mut reader = read::open(history, format).map_err(bad_input)?;
    reader.allow_truncated_tail(allow_truncated);
    let progress = std::io::stderr().is_terminal();
    let mut shown = false;
    let mut on_events = |n: u64| {
        if progress {
            eprint!("\rread {n} events");
            shown = true;
        }
    };
    let keys_done = match checker {
        Checker::Linearizable { options, .. } => Some(options.keys_done.clone()),
        Checker::Set | Checker::Transactional { .. } => None,
    };
    let work = || check(checker, reader, &file, &mut on_events);
    let checked = match keys_done {
        Some(done) if progress => with_progress(&done, work),
        _ => work(),
    };
    if shown {
        eprintln!();
    }
    checked.map_err(|e| match e {
        CheckError::Input(e) => bad_input(e),
        CheckError::Model(e) => bad_input(e),
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

/// Runs `work` while a thread shows, every half second after the first, how many keys are done.
fn with_progress<T>(done: &AtomicUsize, work: impl FnOnce() -> T) -> T {
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
                        "\rchecked {} keys ({:.0?})",
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

/// Writes results.json (the typed results document) into `dir`, and timeline.html for a
/// linearizability check or an SVG of each cycle for a transactional one.
pub fn write_outputs(dir: &Path, history: &Path, checked: &Checked) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let results = dir.join("results.json");
    std::fs::write(&results, serde_json::to_vec_pretty(&checked.results)?)
        .with_context(|| format!("writing {}", results.display()))?;
    match &checked.results.details {
        Details::Linearizable(report) => {
            let page = timeline::render(&history.display().to_string(), report, &checked.timeline);
            let path = dir.join("timeline.html");
            std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
        }
        // One drawing per reported cycle, the shortest first (cycle-01-G0.svg, ...).
        Details::Transactional(report) => {
            for (i, (kind, anomaly)) in report.cycles().into_iter().enumerate() {
                let path = dir.join(format!("cycle-{:02}-{kind}.svg", i + 1));
                std::fs::write(&path, checkers::txn::svg::cycle_svg(kind, anomaly))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Details::Set(_) => {}
    }
    Ok(())
}

/// Prints what a check found, for people.
pub fn print_human(history: &Path, checked: &Checked) {
    match &checked.results.details {
        Details::Linearizable(report) => print_linear(history, report),
        Details::Transactional(r) => print!("{}", r.human(&history.display().to_string())),
        Details::Set(r) => {
            println!(
                "{}: {} ({})",
                checked.verdict.as_str().to_uppercase(),
                checked.summary(),
                history.display()
            );
            if !r.lost.is_empty() {
                println!("  lost (acknowledged, not in the final read): {:?}", r.lost);
            }
            if !r.unexpected.is_empty() {
                println!("  unexpected (read, never added): {:?}", r.unexpected);
            }
            if !r.failed_but_present.is_empty() {
                println!(
                    "  failed adds present in the final read: {:?}",
                    r.failed_but_present
                );
            }
        }
    }
}

fn print_linear(history: &Path, report: &Report) {
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
        if let Some(reason) = &u.result.reason {
            println!("\n{key}: UNDECIDED: {reason}");
        } else if let Some(p) = &u.result.progress {
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
