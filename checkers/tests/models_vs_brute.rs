//! Property test: for every model, on thousands of random small histories (crashes included),
//! the checker's verdict (search, and fast paths where a model has them) equals the
//! brute-force checker's.
//!
//! Histories are random interleavings of client processes. A result is drawn either from a
//! simulated object (so that valid histories are common) or at random (so that invalid ones
//! are); ops crash with `info` (the process is then retired), fail, or never complete.

use checkers::brute;
use checkers::generate::Rng;
use checkers::history::{Event, EventKind, Value};
use checkers::linear::{check_ops, Limits, OpsBuilder, Strategy, Verdict};
use checkers::model::{Counter, Kv, Model, Mutex, Outcome, Queue, Register, Set};

/// Draws the `f` and invoke value of a random op.
type OpGen = fn(&mut Rng) -> (&'static str, Value);
/// Draws a random result for an op.
type ResultGen = fn(&mut Rng, &str) -> Value;

fn small(rng: &mut Rng) -> Value {
    Value::Int(rng.below(3) as i64)
}

fn list_subset(rng: &mut Rng) -> Value {
    Value::List((0..3).filter(|_| rng.chance(0.5)).map(Value::Int).collect())
}

fn kv_string(rng: &mut Rng) -> Value {
    let options = ["", "a", "x", "ax", "xy", "axy", "b", "bx", "xx"];
    Value::Str(options[rng.below(options.len() as u64) as usize].to_string())
}

/// Runs one random history through both checkers; returns the brute-force verdict.
fn one_case<M: Model>(model: &M, rng: &mut Rng, gen_op: OpGen, gen_result: ResultGen) -> bool {
    let procs = 2 + rng.below(3);
    let total_ops = 1 + rng.below(8);
    let mut events: Vec<Event> = Vec::new();
    let mut state = model.init();
    // Per worker: its current process id and the op in flight (f, invoke value).
    let mut workers: Vec<(u64, Option<(&'static str, Value)>)> =
        (0..procs).map(|p| (p, None)).collect();
    let mut invoked = 0;
    let mut steps = 0;
    while steps < 200 {
        steps += 1;
        let w = rng.below(procs) as usize;
        let index = events.len() as u64;
        let process = workers[w].0;
        match workers[w].1.take() {
            None => {
                if invoked == total_ops {
                    if workers.iter().all(|x| x.1.is_none()) {
                        break;
                    }
                    continue;
                }
                invoked += 1;
                let (f, v) = gen_op(rng);
                events.push(Event::client(
                    index,
                    process,
                    EventKind::Invoke,
                    f,
                    v.clone(),
                ));
                workers[w].1 = Some((f, v));
            }
            Some((f, v)) => {
                if rng.chance(0.05) {
                    // Never completes: leave it in flight for good.
                    workers[w].1 = Some((f, v));
                    if workers.iter().all(|x| x.1.is_some()) && invoked == total_ops {
                        break;
                    }
                    continue;
                }
                let roll = rng.below(100);
                let (kind, result) = if roll < 12 {
                    // Crash: may still take effect.
                    if rng.chance(0.5) {
                        if let Ok(Some(op)) = model.parse_op(f, &v, Outcome::Unknown) {
                            if let Some(next) = model.step(&state, &op) {
                                state = next;
                            }
                        }
                    }
                    workers[w].0 += procs;
                    (EventKind::Info, v.clone())
                } else if roll < 20 {
                    (EventKind::Fail, v.clone())
                } else if rng.chance(0.7) {
                    // A result the simulated object accepts now, if one of a few tries works.
                    let mut chosen = gen_result(rng, f);
                    for _ in 0..24 {
                        let candidate = gen_result(rng, f);
                        if let Ok(Some(op)) = model.parse_op(f, &v, Outcome::Ok(&candidate)) {
                            if let Some(next) = model.step(&state, &op) {
                                state = next;
                                chosen = candidate;
                                break;
                            }
                        }
                    }
                    (EventKind::Ok, chosen)
                } else {
                    (EventKind::Ok, gen_result(rng, f))
                };
                events.push(Event::client(index, process, kind, f, result));
            }
        }
    }
    let mut builder = OpsBuilder::new(model, "random");
    for (i, ev) in events.iter().enumerate() {
        builder
            .push(ev, i as u64 + 1, 1, 1)
            .expect("random events are well formed");
    }
    let (by_key, _) = builder.finish().expect("finish");
    let ops = by_key
        .into_iter()
        .next()
        .map(|(_, o)| o)
        .unwrap_or_default();
    let expected = brute::is_linearizable(model, &ops);
    let want = if expected {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    for strategy in [Strategy::Search, Strategy::Auto] {
        let got = check_ops(model, &ops, &Limits::default(), strategy);
        assert_eq!(
            got.verdict,
            want,
            "{} with {strategy:?} disagrees with brute force on:\n{}\n{got:#?}",
            model.name(),
            events
                .iter()
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    expected
}

/// Runs `cases` random histories and checks both verdicts are common enough to mean something.
fn property<M: Model>(model: &M, seed: u64, cases: usize, gen_op: OpGen, gen_result: ResultGen) {
    let mut rng = Rng::new(seed);
    let mut valid = 0;
    for _ in 0..cases {
        valid += one_case(model, &mut rng, gen_op, gen_result) as usize;
    }
    let invalid = cases - valid;
    assert!(
        valid * 20 > cases && invalid * 20 > cases,
        "{}: too one-sided to test much: {valid} valid, {invalid} invalid",
        model.name()
    );
}

/// Cases per model; `FAULTLINE_CASES=100000 cargo test --release` for a longer run.
fn cases() -> usize {
    std::env::var("FAULTLINE_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(3000)
}

fn register_op(rng: &mut Rng) -> (&'static str, Value) {
    if rng.chance(0.5) {
        ("read", Value::Null)
    } else {
        ("write", small(rng))
    }
}

fn cas_op(rng: &mut Rng) -> (&'static str, Value) {
    match rng.below(3) {
        0 => ("read", Value::Null),
        1 => ("write", small(rng)),
        _ => ("cas", Value::List(vec![small(rng), small(rng)])),
    }
}

/// A read's result; writes and cas complete with `null` (no result of their own: an `ok`
/// carrying another value than the invoke's is bad input). The draw is made either way, so the
/// random stream is the same for every `f`.
fn register_result(rng: &mut Rng, f: &str) -> Value {
    let drawn = if f == "read" && rng.chance(0.25) {
        Value::Null
    } else {
        small(rng)
    };
    if f == "read" {
        drawn
    } else {
        Value::Null
    }
}

#[test]
fn register_matches_brute_force() {
    property(
        &Register::read_write(),
        1,
        cases(),
        register_op,
        register_result,
    );
}

#[test]
fn cas_register_matches_brute_force() {
    property(
        &Register::cas_register(),
        2,
        cases(),
        cas_op,
        register_result,
    );
}

/// Distinct written values: the register's polynomial fast path decides these.
#[test]
fn cas_register_distinct_values_match_brute_force() {
    use std::sync::atomic::{AtomicI64, Ordering};
    static NEXT: AtomicI64 = AtomicI64::new(100);
    fn distinct_op(rng: &mut Rng) -> (&'static str, Value) {
        match rng.below(3) {
            0 => ("read", Value::Null),
            1 => ("write", Value::Int(NEXT.fetch_add(1, Ordering::Relaxed))),
            _ => {
                let new = NEXT.fetch_add(1, Ordering::Relaxed);
                let expect = if rng.chance(0.2) {
                    Value::Null
                } else {
                    Value::Int(new - 1 - rng.below(3) as i64)
                };
                ("cas", Value::List(vec![expect, Value::Int(new)]))
            }
        }
    }
    fn distinct_result(rng: &mut Rng, f: &str) -> Value {
        let recent = NEXT.load(Ordering::Relaxed);
        let drawn = if rng.chance(0.15) {
            Value::Null
        } else {
            Value::Int(recent - 1 - rng.below(4) as i64)
        };
        if f == "read" {
            drawn
        } else {
            Value::Null
        }
    }
    property(
        &Register::cas_register(),
        3,
        cases(),
        distinct_op,
        distinct_result,
    );
}

#[test]
fn set_matches_brute_force() {
    fn op(rng: &mut Rng) -> (&'static str, Value) {
        if rng.chance(0.5) {
            ("read", Value::Null)
        } else {
            ("add", small(rng))
        }
    }
    property(&Set, 4, cases(), op, |rng, _| list_subset(rng));
}

#[test]
fn counter_matches_brute_force() {
    fn op(rng: &mut Rng) -> (&'static str, Value) {
        if rng.chance(0.5) {
            ("read", Value::Null)
        } else {
            ("add", Value::Int(rng.below(2) as i64 + 1))
        }
    }
    property(&Counter, 5, cases(), op, |rng, _| {
        Value::Int(rng.below(5) as i64)
    });
}

#[test]
fn queue_matches_brute_force() {
    fn op(rng: &mut Rng) -> (&'static str, Value) {
        if rng.chance(0.5) {
            ("dequeue", Value::Null)
        } else {
            ("enqueue", small(rng))
        }
    }
    fn result(rng: &mut Rng, f: &str) -> Value {
        if f == "dequeue" && rng.chance(0.25) {
            Value::Null
        } else {
            small(rng)
        }
    }
    property(&Queue, 6, cases(), op, result);
}

#[test]
fn mutex_matches_brute_force() {
    fn op(rng: &mut Rng) -> (&'static str, Value) {
        if rng.chance(0.5) {
            ("acquire", Value::Null)
        } else {
            ("release", Value::Null)
        }
    }
    property(&Mutex, 7, cases(), op, |_, _| Value::Null);
}

#[test]
fn kv_matches_brute_force() {
    fn op(rng: &mut Rng) -> (&'static str, Value) {
        match rng.below(3) {
            0 => ("get", Value::Null),
            1 => ("put", Value::Str(["a", "b"][rng.below(2) as usize].into())),
            _ => (
                "append",
                Value::Str(["x", "y"][rng.below(2) as usize].into()),
            ),
        }
    }
    property(&Kv, 8, cases(), op, |rng, _| kv_string(rng));
}
