//! rw-register decided (issue 23): generated histories the plain search over commit orders
//! gives up on are decided, and agree with it wherever it finishes; histories of thousands
//! of transactions are decided; Elle's assumptions narrow the verdict and the report says
//! when a verdict rests on them.

use checkers::read::Located;
use checkers::txn::generate::{generate, Executor, TxnGenOptions};
use checkers::txn::{
    check, check_assuming, parse, rw_register, Assumptions, Budget, Consistency, TxnHistory,
    TxnModel,
};
use checkers::Verdict;
use std::time::{Duration, Instant};

fn generated(o: &TxnGenOptions) -> TxnHistory {
    let mut events = Vec::new();
    generate(o, |e| {
        let line = events.len() as u64 + 1;
        events.push(Located {
            line,
            f_column: 1,
            value_column: 1,
            event: e,
        })
    });
    parse::from_events(o.model, "generated", events).expect("well formed")
}

/// `txns` rw-register transactions of `executor`: 3 processes over 2 keys (never retired)
/// and 5% crashed, or 10 processes over 8 hot keys and 1% crashed for the large ones.
fn rw(executor: Executor, txns: u64, seed: u64) -> TxnHistory {
    let small = txns <= 100;
    generated(&TxnGenOptions {
        model: TxnModel::RwRegister,
        txns,
        processes: if small { 3 } else { 10 },
        keys: if small { 2 } else { 8 },
        max_writes_per_key: if small { 1000 } else { 16 },
        crash_rate: if small { 0.05 } else { 0.01 },
        executor,
        seed,
        ..TxnGenOptions::default()
    })
}

/// Issue 23's 16-transaction history (3 processes, 2 keys) that exhaustive search finds not
/// snapshot-isolated, on which the plain search stopped after 20,000,001 steps: decided at
/// once (the plain search, given 100 times the steps, agrees in about 2 s).
#[test]
fn the_sixteen_transaction_counterexample_is_invalid_at_once() {
    let h = rw(Executor::ReadCommitted, 16, 1);
    assert_eq!(h.txns.len(), 16);
    let start = Instant::now();
    let r = check(&h, Consistency::SnapshotIsolation, &Budget::default());
    assert_eq!(r.valid, Verdict::Invalid, "{:?}", r.unknown_reason);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(r.not.contains(&"snapshot-isolation") || r.not.contains(&"repeatable-read"));
    assert!(r.assumptions.is_empty());
}

/// Small generated histories of every executor: every model decided, and the same verdict as
/// the plain exhaustive search wherever that finishes within its budget.
#[test]
fn generated_histories_agree_with_the_plain_search() {
    let budget = Budget {
        steps: 100_000,
        ..Budget::default()
    };
    let (mut compared, mut undecided_before) = (0, 0);
    for executor in [
        Executor::Serial,
        Executor::SnapshotIsolation,
        Executor::ReadCommitted,
        Executor::StaleReplica,
    ] {
        for seed in 0..12 {
            let h = rw(executor, 16, seed);
            for c in Consistency::ALL {
                let got = check(&h, c, &Budget::default());
                assert_ne!(got.valid, Verdict::Unknown, "{executor:?} {seed} {c}");
                match rw_register::reference(&h, c, &budget) {
                    Ok(valid) => {
                        compared += 1;
                        assert_eq!(
                            got.valid == Verdict::Valid,
                            valid,
                            "{executor:?} seed {seed} {c}: {:?}",
                            got.anomaly_counts
                        );
                    }
                    Err(_) => undecided_before += 1,
                }
            }
        }
    }
    eprintln!("{compared} verdicts compared, {undecided_before} the plain search left unknown");
    assert!(compared > 100 && undecided_before > 0);
}

/// Thousands of transactions over hot keys: the serial executor's history is strict
/// serializable, the snapshot-isolation executor's is snapshot-isolated (and shows write
/// skew), the read-committed executor's loses updates; none is unknown.
#[test]
fn thousands_of_transactions_are_decided() {
    let all = |h: &TxnHistory| {
        Consistency::ALL.map(|c| {
            let r = check(h, c, &Budget::default());
            assert_ne!(r.valid, Verdict::Unknown, "{c}: {:?}", r.unknown_reason);
            r.valid == Verdict::Valid
        })
    };
    let serial = rw(Executor::Serial, 3000, 8);
    assert_eq!(all(&serial), [true; 5]);
    let si = all(&rw(Executor::SnapshotIsolation, 3000, 9));
    assert!(si[0] && si[2], "{si:?}");
    assert!(!si[3], "write skew expected in {si:?}");
    let rc = all(&rw(Executor::ReadCommitted, 3000, 10));
    assert!(rc[0] && !rc[2] && !rc[3], "{rc:?}");
}

fn history(lines: &[&str]) -> TxnHistory {
    let text: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{{\"index\":{i},{l}}}\n"))
        .collect();
    parse::from_text(TxnModel::RwRegister, "t.jsonl", &text).expect("history")
}

fn assuming(names: &[&str]) -> Assumptions {
    let mut a = Assumptions::default();
    for n in names {
        a.add(n).expect("name");
    }
    a
}

/// Elle's G0 under sequential keys: two concurrent writers of x and y, then each process
/// reads the other's version of one key. Serializable without the assumption (and so
/// reported resting on nothing); under it, each process's order of versions closes a ww
/// cycle. Strict-serializable implies sequential keys, so its verdict rests on nothing.
#[test]
fn sequential_keys_narrow_the_verdict_and_are_reported() {
    let h = history(&[
        r#""process":0,"type":"invoke","f":"txn","value":[["w","x",1],["w","y",1]]"#,
        r#""process":1,"type":"invoke","f":"txn","value":[["w","x",2],["w","y",2]]"#,
        r#""process":0,"type":"ok","f":"txn","value":[["w","x",1],["w","y",1]]"#,
        r#""process":1,"type":"ok","f":"txn","value":[["w","x",2],["w","y",2]]"#,
        r#""process":0,"type":"invoke","f":"txn","value":[["r","x",null]]"#,
        r#""process":1,"type":"invoke","f":"txn","value":[["r","y",null]]"#,
        r#""process":0,"type":"ok","f":"txn","value":[["r","x",2]]"#,
        r#""process":1,"type":"ok","f":"txn","value":[["r","y",1]]"#,
    ]);
    let b = Budget::default();
    let plain = check(&h, Consistency::Serializable, &b);
    assert_eq!(plain.valid, Verdict::Valid);
    assert!(plain.assumptions.is_empty());
    for c in [
        Consistency::Serializable,
        Consistency::SnapshotIsolation,
        Consistency::RepeatableRead,
    ] {
        let r = check_assuming(&h, c, assuming(&["sequential-keys"]), &b);
        assert_eq!(r.valid, Verdict::Invalid, "{c}");
        assert_eq!(r.assumptions, vec!["sequential-keys"], "{c}");
        // linearizable-keys implies the same here (each process's reads follow its write).
        let r = check_assuming(&h, c, assuming(&["linearizable-keys", "wfr-keys"]), &b);
        assert_eq!(r.valid, Verdict::Invalid, "{c}");
        assert_eq!(r.assumptions, vec!["linearizable-keys"], "{c}");
        // wfr-keys alone adds nothing any searched model does not imply.
        let r = check_assuming(&h, c, assuming(&["wfr-keys"]), &b);
        assert_eq!(r.valid, Verdict::Valid, "{c}");
        assert!(r.assumptions.is_empty());
    }
    let strict = check_assuming(
        &h,
        Consistency::StrictSerializable,
        assuming(&["sequential-keys"]),
        &b,
    );
    assert_eq!(strict.valid, Verdict::Invalid);
    assert!(strict.assumptions.is_empty());
    assert_eq!(
        check(&h, Consistency::StrictSerializable, &b).valid,
        Verdict::Invalid
    );
}

/// A process that wrote x and later read the initial null: serializable (the read goes
/// first), but not under sequential keys; linearizable keys see it too when another process
/// reads null after the write completed. A valid verdict never rests on an assumption.
#[test]
fn a_read_of_null_after_a_write_breaks_the_key_assumptions() {
    let same_process = history(&[
        r#""process":0,"type":"invoke","f":"txn","value":[["w","x",1]]"#,
        r#""process":0,"type":"ok","f":"txn","value":[["w","x",1]]"#,
        r#""process":0,"type":"invoke","f":"txn","value":[["r","x",null]]"#,
        r#""process":0,"type":"ok","f":"txn","value":[["r","x",null]]"#,
    ]);
    let other_process = history(&[
        r#""process":0,"type":"invoke","f":"txn","value":[["w","x",1]]"#,
        r#""process":0,"type":"ok","f":"txn","value":[["w","x",1]]"#,
        r#""process":1,"type":"invoke","f":"txn","value":[["r","x",null]]"#,
        r#""process":1,"type":"ok","f":"txn","value":[["r","x",null]]"#,
    ]);
    let b = Budget::default();
    let ser = Consistency::Serializable;
    for h in [&same_process, &other_process] {
        assert_eq!(check(h, ser, &b).valid, Verdict::Valid);
        let r = check_assuming(h, ser, assuming(&["linearizable-keys"]), &b);
        assert_eq!(r.valid, Verdict::Invalid);
        assert_eq!(r.assumptions, vec!["linearizable-keys"]);
    }
    let r = check_assuming(&same_process, ser, assuming(&["sequential-keys"]), &b);
    assert_eq!(r.valid, Verdict::Invalid);
    assert_eq!(r.assumptions, vec!["sequential-keys"]);
    let r = check_assuming(&other_process, ser, assuming(&["sequential-keys"]), &b);
    assert_eq!(r.valid, Verdict::Valid);
    assert!(r.assumptions.is_empty());
}

/// The assumptions only ever remove orders: on generated histories a verdict under them is
/// never more lenient than without, and a serial executor keeps them all.
#[test]
fn assumptions_never_turn_invalid_into_valid() {
    let all = assuming(&["sequential-keys", "linearizable-keys", "wfr-keys"]);
    for executor in [
        Executor::Serial,
        Executor::ReadCommitted,
        Executor::StaleReplica,
    ] {
        for seed in 0..10 {
            let h = rw(executor, 16, seed);
            for c in Consistency::ALL {
                let plain = check(&h, c, &Budget::default()).valid;
                let narrowed = check_assuming(&h, c, all, &Budget::default());
                if plain == Verdict::Invalid {
                    assert_eq!(narrowed.valid, Verdict::Invalid, "{executor:?} {seed} {c}");
                    assert!(narrowed.assumptions.is_empty());
                }
                if executor == Executor::Serial {
                    assert_eq!(narrowed.valid, Verdict::Valid, "{seed} {c}");
                }
            }
        }
    }
}
