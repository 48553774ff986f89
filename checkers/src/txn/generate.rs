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
//!   any conflict check: lost updates happen. With `statement_snapshots` above 0, each
//!   statement may take a newer snapshot (as PostgreSQL's read committed does), so a repeated
//!   read may see a newer committed value (a fuzzy read); a transaction's writes to a key go
//!   onto the snapshot of its first write there, and its reads of the key see that plus its
//!   own writes.
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
    /// Read committed: the chance that a statement takes a newer snapshot than the one
    /// before (0, the default, keeps one snapshot per transaction; drawn from a stream of
    /// its own, so nothing else about the history changes).
    pub statement_snapshots: f64,
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
            statement_snapshots: 0.0,
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
    let mut g = Generator::new(o);
    loop {
        let busy = g.flight.iter().filter(|f| f.is_some()).count();
        if g.started >= o.txns && busy == 0 {
            break;
        }
        let slot = g.rng.below(g.flight.len() as u64) as usize;
        match g.flight[slot].take() {
            None => {
                if g.started >= o.txns {
                    continue;
                }
                sink(g.invoke(slot));
            }
            Some(t) => sink(g.complete(slot, t)),
        }
    }
}

/// A history being generated: the keys' committed versions and each process's transaction
/// in flight.
struct Generator<'o> {
    o: &'o TxnGenOptions,
    rng: Rng,
    /// Where read committed's statements take their snapshots.
    statement_rng: Rng,
    /// List-append (else rw-register).
    list: bool,
    /// versions[key] = (commit sequence, value), in commit order.
    versions: Vec<Vec<(u64, i64)>>,
    writes_issued: Vec<u64>,
    /// The live keys.
    slots: Vec<u64>,
    /// Commits so far.
    seq: u64,
    proc_ids: Vec<u64>,
    flight: Vec<Option<InFlight>>,
    index: u64,
    started: u64,
}

impl<'o> Generator<'o> {
    fn new(o: &'o TxnGenOptions) -> Generator<'o> {
        let keys = o.keys.max(1);
        let processes = o.processes.max(1);
        Generator {
            o,
            rng: Rng(o.seed ^ 0x5EED),
            statement_rng: Rng(o.seed ^ 0x57A7_E3E7),
            list: o.model == TxnModel::ListAppend,
            versions: (0..keys).map(|_| Vec::new()).collect(),
            writes_issued: vec![0; keys as usize],
            slots: (0..keys).collect(),
            seq: 0,
            proc_ids: (0..processes).collect(),
            flight: (0..processes).map(|_| None).collect(),
            index: 0,
            started: 0,
        }
    }

    /// The next event's index.
    fn next_index(&mut self) -> u64 {
        self.index += 1;
        self.index - 1
    }

    /// A micro-op as the history writes it (`value` for a read's result).
    fn mop_value(&self, m: M, value: Value) -> Value {
        match m {
            M::W(k, v) => Value::List(vec![
                Value::Str(if self.list { "append" } else { "w" }.into()),
                Value::Int(k as i64),
                Value::Int(v),
            ]),
            M::R(k) => Value::List(vec![Value::Str("r".into()), Value::Int(k as i64), value]),
        }
    }

    /// A new transaction on `slot`'s process: its invocation.
    fn invoke(&mut self, slot: usize) -> Event {
        let o = self.o;
        self.started += 1;
        let n = 1 + self.rng.below(o.max_mops.max(1));
        let mut mops = Vec::new();
        for _ in 0..n {
            let s = self.rng.below(self.slots.len() as u64) as usize;
            let k = self.slots[s];
            if self.rng.chance(0.5) {
                self.writes_issued[k as usize] += 1;
                let v = self.writes_issued[k as usize] as i64;
                mops.push(M::W(k, v));
                if self.writes_issued[k as usize] >= o.max_writes_per_key {
                    self.slots[s] = self.versions.len() as u64;
                    self.versions.push(Vec::new());
                    self.writes_issued.push(0);
                }
            } else {
                mops.push(M::R(k));
            }
        }
        let snapshot = match o.executor {
            Executor::StaleReplica => self.seq.saturating_sub(self.rng.below(o.lag + 1)),
            _ => self.seq,
        };
        let value = Value::List(
            mops.iter()
                .map(|m| self.mop_value(*m, Value::Null))
                .collect(),
        );
        let crash = self.rng.chance(o.crash_rate);
        let event = Event {
            index: self.next_index(),
            time: None,
            process: Process::Client(self.proc_ids[slot]),
            kind: EventKind::Invoke,
            f: "txn".into(),
            key: None,
            value,
            error: None,
            node: None,
        };
        self.flight[slot] = Some(InFlight {
            mops,
            snapshot,
            reads: Vec::new(),
            crash,
        });
        event
    }

    /// What key `k` holds at commit `at`.
    fn read_at(&self, k: u64, at: u64) -> Vec<i64> {
        self.versions[k as usize]
            .iter()
            .take_while(|(s, _)| *s <= at)
            .map(|(_, v)| *v)
            .collect()
    }

    /// The snapshot a statement after one at `point` reads: read committed's may be newer,
    /// up to the latest commit (`statement_snapshots`); every other executor's is `point`.
    fn statement_point(&mut self, point: u64) -> u64 {
        let o = self.o;
        if o.executor != Executor::ReadCommitted
            || o.statement_snapshots <= 0.0
            || point >= self.seq
            || !self.statement_rng.chance(o.statement_snapshots)
        {
            return point;
        }
        point + 1 + self.statement_rng.below(self.seq - point)
    }

    /// Executes `t`, `slot`'s transaction: reads, then whether it commits, then its writes;
    /// returns its completion.
    fn complete(&mut self, slot: usize, mut t: InFlight) -> Event {
        let o = self.o;
        let p = self.proc_ids[slot];
        let read_point = match o.executor {
            Executor::Serial => self.seq,
            _ => t.snapshot,
        };
        // Per key written: the snapshot its first write went onto, and its writes.
        let mut own: Vec<(u64, u64, Vec<i64>)> = Vec::new();
        let mut point = read_point;
        for m in &t.mops {
            point = self.statement_point(point);
            match *m {
                M::W(k, v) => match own.iter_mut().find(|o| o.0 == k) {
                    Some(o) => o.2.push(v),
                    None => own.push((k, point, vec![v])),
                },
                M::R(k) => {
                    let own_k = own.iter().find(|o| o.0 == k);
                    let mut seen = self.read_at(k, own_k.map_or(point, |o| o.1));
                    if let Some(o) = own_k {
                        seen.extend_from_slice(&o.2);
                    }
                    t.reads.push(if self.list {
                        Value::List(seen.into_iter().map(Value::Int).collect())
                    } else {
                        seen.last().map_or(Value::Null, |v| Value::Int(*v))
                    });
                }
            }
        }
        let conflict = o.executor == Executor::SnapshotIsolation
            && own.iter().any(|(k, _, _)| {
                self.versions[*k as usize]
                    .last()
                    .is_some_and(|(s, _)| *s > t.snapshot)
            });
        let applies = !conflict && (!t.crash || self.rng.chance(0.5));
        if applies {
            self.seq += 1;
            for (k, _, vs) in &own {
                for v in vs {
                    self.versions[*k as usize].push((self.seq, *v));
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
                .map(|m| {
                    let r = match m {
                        M::R(_) => reads.next().unwrap_or(Value::Null),
                        M::W(..) => Value::Null,
                    };
                    let shown = if kind == EventKind::Ok {
                        r
                    } else {
                        Value::Null
                    };
                    self.mop_value(*m, shown)
                })
                .collect(),
        );
        if kind == EventKind::Info {
            self.proc_ids[slot] += o.processes.max(1);
        }
        Event {
            index: self.next_index(),
            time: None,
            process: Process::Client(p),
            kind,
            f: "txn".into(),
            key: None,
            value,
            error: None,
            node: None,
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
        run_with(executor, model, seed, 0.0)
    }

    fn run_with(
        executor: Executor,
        model: TxnModel,
        seed: u64,
        statement_snapshots: f64,
    ) -> crate::txn::TxnHistory {
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
            statement_snapshots,
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

    #[test]
    fn read_committed_statements_read_fuzzily_and_stay_read_committed() {
        let b = Budget::default();
        for model in [TxnModel::ListAppend, TxnModel::RwRegister] {
            let fuzzy = |h: &crate::txn::TxnHistory, c| {
                let r = check(h, c, &b);
                (r.valid, r.anomaly_counts.contains_key("fuzzy-read"))
            };
            // One snapshot per transaction: never a fuzzy read.
            let h = run(Executor::ReadCommitted, model, 5);
            assert_eq!(
                fuzzy(&h, Consistency::ReadCommitted),
                (Verdict::Valid, false)
            );
            // A snapshot per statement: fuzzy reads, which read committed allows and
            // repeatable read does not.
            let h = run_with(Executor::ReadCommitted, model, 5, 0.3);
            assert_eq!(
                fuzzy(&h, Consistency::ReadCommitted),
                (Verdict::Valid, true),
                "{model:?}"
            );
            assert_eq!(
                fuzzy(&h, Consistency::RepeatableRead),
                (Verdict::Invalid, true)
            );
        }
    }
}
