//! Seeded random small transactional histories, checked by the real checker and by the
//! brute-force oracle for every consistency model: they must agree on every history.
//!
//! The default run checks `FAULTLINE_TXN_RANDOM` histories per model (2,000 when unset);
//! `scripts/txn-random` runs the ignored 20,000-per-model version.

use checkers::history::{Event, EventKind, Value};
use checkers::read::Located;
use checkers::txn::{check, oracle, parse, rw_register, Budget, Consistency, TxnHistory, TxnModel};
use checkers::Verdict;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64) < p * ((1u64 << 53) as f64)
    }
}

/// How large the random histories are: transactions (at least, at most) and at most how many
/// keys.
#[derive(Clone, Copy)]
struct Size {
    txns: (usize, usize),
    keys: u64,
}

/// The sizes the oracle was first run on.
const SMALL: Size = Size {
    txns: (2, 6),
    keys: 3,
};

/// Histories of 7 to 10 transactions over 1 or 2 keys: several writers per key, so the
/// rw-register checker's version orders are inferred, pruned and searched, yet small enough
/// for the brute-force oracle.
const LARGER: Size = Size {
    txns: (7, 10),
    keys: 2,
};

#[derive(Clone)]
enum M {
    W(u32, i64),
    R(u32, Option<Vec<i64>>),
}

/// A random execution: transactions commit in a random order, each reading from a random
/// earlier state (per transaction or per key), so lost updates, write skew, stale and
/// non-repeatable reads all happen; some transactions abort or crash; a few reads are then
/// corrupted (an aborted or unknown element, a dropped or repeated element).
fn random_history(rng: &mut Rng, model: TxnModel, size: Size) -> TxnHistory {
    let nkeys = 1 + rng.below(size.keys) as u32;
    let ntxn = size.txns.0 + rng.below((size.txns.1 - size.txns.0 + 1) as u64) as usize;
    let list = model == TxnModel::ListAppend;
    let mut next_val = vec![1i64; nkeys as usize];
    // states[i][k]: the writes to k after i commits
    let mut states: Vec<Vec<Vec<i64>>> = vec![vec![Vec::new(); nkeys as usize]];
    let stale = rng.below(4); // 0: fresh reads, else reads up to `stale` states back
    let per_key = rng.chance(0.3);
    // Non-repeatable reads: a read takes a new snapshot of its key now and then; in some
    // histories often, with longer transactions that touch a key again more often.
    let fuzzy = rng.chance(0.5);
    let redraw = if fuzzy { 0.7 } else { 0.1 };
    let mut txns: Vec<(Vec<M>, EventKind, usize)> = Vec::new();
    for c in 0..ntxn {
        let nm = 1 + rng.below(if fuzzy { 4 } else { 3 });
        let cur = states.len() - 1;
        let snap = cur.saturating_sub(rng.below(stale + 1) as usize);
        let mut own: Vec<Vec<i64>> = vec![Vec::new(); nkeys as usize];
        let mut key_snap: Vec<usize> = (0..nkeys)
            .map(|_| {
                if per_key {
                    cur.saturating_sub(rng.below(stale + 1) as usize)
                } else {
                    snap
                }
            })
            .collect();
        let mut mops = Vec::new();
        for _ in 0..nm {
            let again = match mops.last() {
                Some(M::W(k, _) | M::R(k, _)) if fuzzy && rng.chance(0.5) => Some(*k),
                _ => None,
            };
            let k = again.unwrap_or_else(|| rng.below(nkeys as u64) as u32);
            if rng.chance(0.5) {
                let v = next_val[k as usize];
                next_val[k as usize] += 1;
                own[k as usize].push(v);
                mops.push(M::W(k, v));
            } else {
                if rng.chance(redraw) {
                    let back = if fuzzy { stale.max(2) } else { stale };
                    key_snap[k as usize] = cur.saturating_sub(rng.below(back + 1) as usize);
                }
                let mut seen = states[key_snap[k as usize]][k as usize].clone();
                seen.extend_from_slice(&own[k as usize]);
                mops.push(M::R(k, Some(seen)));
            }
        }
        let kind = match rng.below(10) {
            0 => EventKind::Fail,
            1 => EventKind::Info,
            _ => EventKind::Ok,
        };
        let applies = match kind {
            EventKind::Ok => true,
            EventKind::Info => rng.chance(0.5),
            _ => rng.chance(0.1), // an aborted write that leaks: G1a
        };
        let mut next = states[cur].clone();
        if applies {
            for k in 0..nkeys as usize {
                next[k].extend_from_slice(&own[k]);
            }
        }
        states.push(next);
        txns.push((mops, kind, c));
    }
    // Corrupt a read now and then.
    if rng.chance(0.1) {
        let t = rng.below(txns.len() as u64) as usize;
        for m in &mut txns[t].0 {
            if let M::R(_, Some(v)) = m {
                match rng.below(3) {
                    0 => v.push(999),
                    1 => {
                        v.pop();
                    }
                    _ => {
                        if let Some(&x) = v.first() {
                            v.push(x)
                        }
                    }
                }
                break;
            }
        }
    }
    // Times: commit c happens at 10c; the transaction is in flight around it.
    let mut evs: Vec<(u64, usize, bool)> = Vec::new();
    for (i, (_, _, c)) in txns.iter().enumerate() {
        let at = 10 * *c as u64 + 10;
        let wide = if rng.chance(0.3) { 25 } else { 6 };
        let inv = at - rng.below(wide).min(at);
        let wide = if rng.chance(0.3) { 25 } else { 6 };
        let done = at + rng.below(wide);
        evs.push((inv * 2, i, false));
        evs.push((done * 2 + 1, i, true));
    }
    evs.sort();
    let mut free: Vec<u64> = Vec::new();
    let mut next_proc = 0u64;
    let mut proc_of = vec![0u64; txns.len()];
    let mut events = Vec::new();
    for (index, (_, i, done)) in evs.into_iter().enumerate() {
        let (mops, kind, _) = &txns[i];
        let mk = |m: &M, completed: bool| -> Value {
            let key = |k: &u32| Value::Str(format!("k{k}"));
            match m {
                M::W(k, v) => Value::List(vec![
                    Value::Str(if list { "append" } else { "w" }.into()),
                    key(k),
                    Value::Int(*v),
                ]),
                M::R(k, v) => {
                    let val = match (completed, v) {
                        (true, Some(v)) if list => {
                            Value::List(v.iter().map(|x| Value::Int(*x)).collect())
                        }
                        (true, Some(v)) => v.last().map_or(Value::Null, |x| Value::Int(*x)),
                        _ => Value::Null,
                    };
                    Value::List(vec![Value::Str("r".into()), key(k), val])
                }
            }
        };
        let (kind_now, p) = if !done {
            let p = free.pop().unwrap_or_else(|| {
                next_proc += 1;
                next_proc - 1
            });
            proc_of[i] = p;
            (EventKind::Invoke, p)
        } else {
            let p = proc_of[i];
            if *kind != EventKind::Info {
                free.push(p);
            }
            (*kind, p)
        };
        let completed_ok = done && *kind == EventKind::Ok;
        let value = Value::List(mops.iter().map(|m| mk(m, completed_ok)).collect());
        events.push(Located {
            line: index as u64 + 1,
            f_column: 1,
            value_column: 1,
            event: Event::client(index as u64, p, kind_now, "txn", value),
        });
    }
    parse::from_events(model, "random", events).expect("generated history is well formed")
}

fn run(model: TxnModel, per_model: usize, seed: u64) {
    run_sized(model, per_model, seed, SMALL, &|h, c| {
        Some(oracle::check(h, c))
    });
}

/// Checks `per_model` random histories of `size` per consistency model against `expect`
/// (`None`: no reference verdict, the history is skipped).
fn run_sized(
    model: TxnModel,
    per_model: usize,
    seed: u64,
    size: Size,
    expect: &dyn Fn(&TxnHistory, Consistency) -> Option<bool>,
) {
    let budget = Budget::default();
    for c in Consistency::ALL {
        let mut rng = Rng(seed ^ (c as u64) << 32);
        let (mut valid, mut invalid, mut disagree) = (0, 0, Vec::new());
        // Histories with a non-repeatable read (read committed allows it, no other model).
        let (mut fuzzy, mut fuzzy_valid) = (0, 0);
        for i in 0..per_model {
            let h = random_history(&mut rng, model, size);
            let Some(expect) = expect(&h, c) else {
                continue;
            };
            let got = check(&h, c, &budget);
            assert_ne!(got.valid, Verdict::Unknown, "unknown on a tiny history");
            if got.anomaly_counts.contains_key("fuzzy-read") {
                fuzzy += 1;
                fuzzy_valid += expect as usize;
            }
            if expect {
                valid += 1
            } else {
                invalid += 1
            }
            if (got.valid == Verdict::Valid) != expect {
                let txt: Vec<String> = h
                    .txns
                    .iter()
                    .map(|t| {
                        format!(
                            "T{} p{} {:?} inv@{} done@{:?} {:?}",
                            t.index, t.process, t.status, t.invoke_pos, t.complete_pos, t.mops
                        )
                    })
                    .collect();
                disagree.push(format!(
                    "history {i}: oracle {expect}, checker {:?}, {}\n{}",
                    got.valid,
                    serde_json::to_string(&got.anomalies).unwrap_or_default(),
                    txt.join("\n")
                ));
            }
        }
        eprintln!(
            "{} {}: {per_model} histories, {valid} valid, {invalid} invalid, {fuzzy} with fuzzy reads ({fuzzy_valid} of them valid), {} disagreements",
            model.name(),
            c.name(),
            disagree.len()
        );
        assert!(
            disagree.is_empty(),
            "{}",
            disagree[..disagree.len().min(2)].join("\n")
        );
        assert!(
            valid > per_model / 50 && invalid > per_model / 50,
            "the generator should make both kinds"
        );
    }
}

fn count() -> usize {
    std::env::var("FAULTLINE_TXN_RANDOM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

#[test]
fn list_append_agrees_with_brute_force() {
    run(TxnModel::ListAppend, count(), 1);
}

#[test]
#[ignore = "20,000 histories per model; run by scripts/txn-random"]
fn list_append_agrees_with_brute_force_20000() {
    run(TxnModel::ListAppend, 20_000, 2);
}

#[test]
fn rw_register_agrees_with_brute_force() {
    run(TxnModel::RwRegister, count(), 3);
}

#[test]
#[ignore = "20,000 histories per model; run by scripts/txn-random"]
fn rw_register_agrees_with_brute_force_20000() {
    run(TxnModel::RwRegister, 20_000, 4);
}

#[test]
fn rw_register_larger_histories_agree_with_brute_force() {
    let n = count() / 10;
    run_sized(TxnModel::RwRegister, n, 5, LARGER, &|h, c| {
        Some(oracle::check(h, c))
    });
}

#[test]
#[ignore = "2,000 larger histories per model; run by scripts/txn-random"]
fn rw_register_larger_histories_agree_with_brute_force_2000() {
    run_sized(TxnModel::RwRegister, 2_000, 6, LARGER, &|h, c| {
        Some(oracle::check(h, c))
    });
}

/// Histories of 12 to 24 transactions, past the oracle, held to the plain exhaustive search
/// over commit orders (`rw_register::reference`), where it finishes.
fn medium(per_model: usize, seed: u64) {
    let size = Size {
        txns: (12, 24),
        keys: 2,
    };
    let budget = Budget {
        steps: 2_000_000,
        ..Budget::default()
    };
    run_sized(TxnModel::RwRegister, per_model, seed, size, &|h, c| {
        rw_register::reference(h, c, &budget).ok()
    });
}

#[test]
fn rw_register_medium_histories_agree_with_the_plain_search() {
    medium(count() / 10, 7);
}

#[test]
#[ignore = "2,000 medium histories per model; run by scripts/txn-random"]
fn rw_register_medium_histories_agree_with_the_plain_search_2000() {
    medium(2_000, 8);
}
