//! Synthetic transactional histories from simulated databases, for tests and benchmarks.
//!
//! `processes` clients run transactions of 1 to `max_mops` micro-ops (appends or writes with
//! fresh values, and reads) over a window of `keys` live keys; a key that has received
//! `max_writes_per_key` writes is retired and replaced by a fresh one (as Jepsen's list-append
//! workload does with `:max-writes-per-key`), so reads stay short. Executors:
//!
//! - [`Executor::Serial`]: each transaction runs atomically when it completes: strict
//!   serializable.
//! - [`Executor::SnapshotIsolation`]: reads from the snapshot taken at invoke, commits with
//!   first-committer-wins (a conflicting transaction fails): write skew happens.
//! - [`Executor::ReadCommitted`]: reads the latest committed state at invoke, commits without
//!   any conflict check: lost updates happen.
//! - [`Executor::StaleReplica`]: reads from a replica lagging a few commits behind, writes go
//!   to the primary when the transaction completes: stale reads happen.
//!
//! Crashed transactions (`crash_rate`) complete with `info` and take effect or not at random;
//! their process is retired and the client continues as `process + processes`. Deterministic
//! for a seed.

use super::TxnModel;
use crate::history::{Event, EventKind, Process, Value};

/// How the simulated database runs transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executor {
    /// One at a time, atomically at completion.
    Serial,
    /// Snapshot at invoke, first-committer-wins at completion.
    SnapshotIsolation,
    /// Latest committed state at invoke, no conflict check.
    ReadCommitted,
    /// Reads from a replica `lag` commits behind.
    StaleReplica,
}

impl Executor {
    /// Parses `serial`, `snapshot-isolation`, `read-committed` or `stale-replica`.
    pub fn parse(s: &str) -> Option<Executor> {
        match s {
            "serial" => Some(Executor::Serial),
            "snapshot-isolation" => Some(Executor::SnapshotIsolation),
            "read-committed" => Some(Executor::ReadCommitted),
            "stale-replica" => Some(Executor::StaleReplica),
            _ => None,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct TxnGenOptions {
    /// list-append or rw-register.
    pub model: TxnModel,
    /// Transactions in all.
    pub txns: u64,
    /// Concurrent client processes.
    pub processes: u64,
    /// Live keys at any time.
    pub keys: u64,
    /// Writes a key receives before it is replaced by a fresh key.
    pub max_writes_per_key: u64,
    /// Micro-ops per transaction: 1 to this.
    pub max_mops: u64,
    /// Fraction of transactions that crash (complete with `info`).
    pub crash_rate: f64,
    /// The executor.
    pub executor: Executor,
    /// Commits a stale replica lags behind.
    pub lag: u64,
    /// The seed.
    pub seed: u64,
}

impl Default for TxnGenOptions {
    fn default() -> Self {
        TxnGenOptions {
            model: TxnModel::ListAppend,
            txns: 1000,
            processes: 10,
            keys: 1000,
            max_writes_per_key: 16,
            max_mops: 4,
            crash_rate: 0.01,
            executor: Executor::Serial,
            lag: 5,
            seed: 0,
        }
    }
}

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
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64) < p * ((1u64 << 53) as f64)
    }
}

#[derive(Clone, Copy)]
enum M {
    W(u64, i64),
    R(u64),
}

struct InFlight {
    mops: Vec<M>,
    snapshot: u64,
    reads: Vec<Value>,
    crash: bool,
}

/// Generates a history, handing each event to `sink` in order.
pub fn generate(o: &TxnGenOptions, mut sink: impl FnMut(Event)) {
    let mut rng = Rng(o.seed ^ 0x5EED);
    let list = o.model == TxnModel::ListAppend;
    // versions[key] = (commit sequence, value), in commit order.
    let mut versions: Vec<Vec<(u64, i64)>> = Vec::new();
    let mut writes_issued: Vec<u64> = Vec::new();
    let mut slots: Vec<u64> = (0..o.keys.max(1)).collect();
    for _ in 0..o.keys.max(1) {
        versions.push(Vec::new());
        writes_issued.push(0);
    }
    let mut seq = 0u64; // commits so far
    let mut proc_ids: Vec<u64> = (0..o.processes.max(1)).collect();
    let mut flight: Vec<Option<InFlight>> = (0..o.processes.max(1)).map(|_| None).collect();
    let mut index = 0u64;
    let mut started = 0u64;
    let key_value = |k: u64| Value::Int(k as i64);
    let read_at = |versions: &Vec<Vec<(u64, i64)>>, k: u64, at: u64| -> Vec<i64> {
        versions[k as usize]
            .iter()
            .take_while(|(s, _)| *s <= at)
            .map(|(_, v)| *v)
            .collect()
    };
    loop {
        let busy = flight.iter().filter(|f| f.is_some()).count();
        if started >= o.txns && busy == 0 {
            break;
        }
        let slot = rng.below(flight.len() as u64) as usize;
        let p = proc_ids[slot];
        match flight[slot].take() {
            None => {
                if started >= o.txns {
                    continue;
                }
                started += 1;
                let n = 1 + rng.below(o.max_mops.max(1));
                let mut mops = Vec::new();
                for _ in 0..n {
                    let s = rng.below(slots.len() as u64) as usize;
                    let k = slots[s];
                    if rng.chance(0.5) {
                        writes_issued[k as usize] += 1;
                        let v = writes_issued[k as usize] as i64;
                        mops.push(M::W(k, v));
                        if writes_issued[k as usize] >= o.max_writes_per_key {
                            slots[s] = versions.len() as u64;
                            versions.push(Vec::new());
                            writes_issued.push(0);
                        }
                    } else {
                        mops.push(M::R(k));
                    }
                }
                let snapshot = match o.executor {
                    Executor::StaleReplica => seq.saturating_sub(rng.below(o.lag + 1)),
                    _ => seq,
                };
                let value = Value::List(
                    mops.iter()
                        .map(|m| match *m {
                            M::W(k, v) => Value::List(vec![
                                Value::Str(if list { "append" } else { "w" }.into()),
                                key_value(k),
                                Value::Int(v),
                            ]),
                            M::R(k) => {
                                Value::List(vec![Value::Str("r".into()), key_value(k), Value::Null])
                            }
                        })
                        .collect(),
                );
                let crash = rng.chance(o.crash_rate);
                sink(Event {
                    index,
                    time: None,
                    process: Process::Client(p),
                    kind: EventKind::Invoke,
                    f: "txn".into(),
                    key: None,
                    value,
                    error: None,
                    node: None,
                });
                index += 1;
                flight[slot] = Some(InFlight {
                    mops,
                    snapshot,
                    reads: Vec::new(),
                    crash,
                });
            }
            Some(mut t) => {
                // Execute: reads, then decide commit, then apply writes.
                let read_point = match o.executor {
                    Executor::Serial => seq,
                    _ => t.snapshot,
                };
                let mut own: Vec<(u64, Vec<i64>)> = Vec::new();
                for m in &t.mops {
                    match *m {
                        M::W(k, v) => match own.iter_mut().find(|o| o.0 == k) {
                            Some(o) => o.1.push(v),
                            None => own.push((k, vec![v])),
                        },
                        M::R(k) => {
                            let mut seen = read_at(&versions, k, read_point);
                            if let Some(o) = own.iter().find(|o| o.0 == k) {
                                seen.extend_from_slice(&o.1);
                            }
                            t.reads.push(if list {
                                Value::List(seen.into_iter().map(Value::Int).collect())
                            } else {
                                seen.last().map_or(Value::Null, |v| Value::Int(*v))
                            });
                        }
                    }
                }
                let conflict = o.executor == Executor::SnapshotIsolation
                    && own.iter().any(|(k, _)| {
                        versions[*k as usize]
                            .last()
                            .is_some_and(|(s, _)| *s > t.snapshot)
                    });
                let applies = !conflict && (!t.crash || rng.chance(0.5));
                if applies {
                    seq += 1;
                    for (k, vs) in &own {
                        for v in vs {
                            versions[*k as usize].push((seq, *v));
                        }
                    }
                }
                let kind = if t.crash {
                    EventKind::Info
                } else if conflict {
                    EventKind::Fail
                } else {
                    EventKind::Ok
                };
                let mut reads = t.reads.into_iter();
                let value = Value::List(
                    t.mops
                        .iter()
                        .map(|m| match *m {
                            M::W(k, v) => Value::List(vec![
                                Value::Str(if list { "append" } else { "w" }.into()),
                                key_value(k),
                                Value::Int(v),
                            ]),
                            M::R(k) => {
                                let r = reads.next().unwrap_or(Value::Null);
                                Value::List(vec![
                                    Value::Str("r".into()),
                                    key_value(k),
                                    if kind == EventKind::Ok {
                                        r
                                    } else {
                                        Value::Null
                                    },
                                ])
                            }
                        })
                        .collect(),
                );
                sink(Event {
                    index,
                    time: None,
                    process: Process::Client(p),
                    kind,
                    f: "txn".into(),
                    key: None,
                    value,
                    error: None,
                    node: None,
                });
                index += 1;
                if kind == EventKind::Info {
                    proc_ids[slot] += o.processes.max(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::Located;
    use crate::txn::{check, parse, Budget, Consistency};
    use crate::Verdict;

    fn run(executor: Executor, model: TxnModel, seed: u64) -> crate::txn::TxnHistory {
        let mut events = Vec::new();
        let txns = if model == TxnModel::ListAppend {
            400
        } else {
            150
        };
        let o = TxnGenOptions {
            model,
            txns,
            processes: 5,
            keys: 4,
            executor,
            seed,
            ..TxnGenOptions::default()
        };
        generate(&o, |e| events.push(e));
        let located = events.into_iter().enumerate().map(|(i, e)| Located {
            line: i as u64 + 1,
            f_column: 1,
            value_column: 1,
            event: e,
        });
        parse::from_events(model, "gen", located).unwrap()
    }

    #[test]
    fn executors_produce_their_anomalies() {
        let b = Budget::default();
        for model in [TxnModel::ListAppend, TxnModel::RwRegister] {
            let h = run(Executor::Serial, model, 1);
            assert_eq!(
                check(&h, Consistency::StrictSerializable, &b).valid,
                Verdict::Valid
            );
            let h = run(Executor::SnapshotIsolation, model, 2);
            assert_eq!(
                check(&h, Consistency::SnapshotIsolation, &b).valid,
                Verdict::Valid
            );
            if model == TxnModel::ListAppend {
                // Write skew (rw-register histories this small are often serializable).
                assert_eq!(
                    check(&h, Consistency::Serializable, &b).valid,
                    Verdict::Invalid
                );
            }
            if model == TxnModel::RwRegister {
                // Invalid rw-register histories of this size can exhaust the SI search budget.
                continue;
            }
            let h = run(Executor::ReadCommitted, model, 3);
            assert_eq!(
                check(&h, Consistency::ReadCommitted, &b).valid,
                Verdict::Valid
            );
            let r = check(&h, Consistency::SnapshotIsolation, &b);
            assert_eq!(r.valid, Verdict::Invalid);
            if model == TxnModel::ListAppend {
                assert!(r.anomalies.contains_key("lost-update"));
            }
            let h = run(Executor::StaleReplica, model, 4);
            assert_eq!(
                check(&h, Consistency::StrictSerializable, &b).valid,
                Verdict::Invalid
            );
        }
    }
}
