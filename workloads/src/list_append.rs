//! The `list-append` workload: transactions of 1 to 4 micro-ops, each an append of a unique
//! element to a key's list or a read of a key's whole list, checked by the transactional
//! checker (`checkers::txn`, after Elle).
//!
//! Conflicts must happen for anomalies to show, so transactions draw their keys from a small
//! pool of [`ACTIVE_KEYS`] keys. Lists must stay short for reads to stay cheap, so a key is
//! retired once `ops_per_key` appends to it were acknowledged ([`WorkloadOptions::ops_per_key`],
//! `--ops-per-key`), and a fresh key takes its place in the pool: the key space rotates.
//! Appends that failed or whose outcome is unknown do not count, so the keys written before a
//! fault are still read after it.
//! Elements are unique per key (1, 2, 3, ... on each key), as the checker requires.
//!
//! The stream is deterministic: the same seed gives the same transactions.

use crate::op::{MicroOp, Op};
use crate::workload::{OpStream, Workload, WorkloadOptions};
use checkers::check::Checker;
use checkers::history::Key;
use checkers::txn::{Consistency, TxnModel};
use rand::{Rng, SeedableRng};

/// How many keys transactions choose from at any time.
pub const ACTIVE_KEYS: usize = 8;

/// The most micro-ops in one transaction.
pub const MAX_MICRO_OPS: usize = 4;

/// Appends to and reads of lists in transactions (`list-append`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ListAppendWorkload;

impl Workload for ListAppendWorkload {
    fn name(&self) -> &'static str {
        "list-append"
    }
    fn about(&self) -> &'static str {
        "transactions of appends to and reads of lists over a small rotating key space, checked for isolation anomalies (Elle's list-append)"
    }
    fn ops(&self, seed: u64, options: &WorkloadOptions) -> Box<dyn OpStream> {
        Box::new(ListAppends::new(seed, options.ops_per_key))
    }
    /// A transaction that reads the key, after every heal and at the end, so that appends
    /// or writes a fault lost are seen missing.
    fn read_back(&self) -> Option<crate::workload::ReadBackOp> {
        Some(crate::workload::read_in_txn)
    }
    /// Strict serializability unless the run says what its database promises
    /// ([`Checker::with_consistency`]).
    fn checker(&self) -> Checker {
        Checker::transactional(TxnModel::ListAppend, Consistency::StrictSerializable)
    }
}

/// The list-append op stream.
#[derive(Debug)]
pub struct ListAppends {
    rng: rand_chacha::ChaCha8Rng,
    appends_per_key: u64,
    /// The keys in use: the key, appends drawn (so the next element), appends acknowledged.
    active: Vec<(i64, u64, u64)>,
    next_key: i64,
}

impl ListAppends {
    /// A stream from `seed` that retires a key after `appends_per_key` acknowledged appends.
    pub fn new(seed: u64, appends_per_key: u64) -> ListAppends {
        ListAppends {
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            appends_per_key: appends_per_key.max(1),
            active: (0..ACTIVE_KEYS as i64).map(|k| (k, 0, 0)).collect(),
            next_key: ACTIVE_KEYS as i64,
        }
    }
}

impl OpStream for ListAppends {
    fn next_op(&mut self) -> Op {
        let n = self.rng.random_range(1..=MAX_MICRO_OPS);
        let mut mops = Vec::with_capacity(n);
        // Appends to each slot's key in this transaction so far: they count as if
        // acknowledged, so one transaction never takes a key past its quota.
        let mut here = [0u64; ACTIVE_KEYS];
        for _ in 0..n {
            let slot = self.rng.random_range(0..self.active.len());
            if self.active[slot].2 + here[slot] >= self.appends_per_key {
                // Retired: a fresh key takes its slot.
                self.active[slot] = (self.next_key, 0, 0);
                self.next_key += 1;
                here[slot] = 0;
            }
            let (key, drawn, _) = self.active[slot];
            if self.rng.random_bool(0.5) {
                mops.push(MicroOp::Read { key: Key::Int(key) });
                continue;
            }
            mops.push(MicroOp::Append {
                key: Key::Int(key),
                value: drawn as i64 + 1,
            });
            self.active[slot].1 = drawn + 1;
            here[slot] += 1;
        }
        Op::Txn(mops)
    }

    fn acknowledged(&mut self, op: &Op, outcome: &crate::Outcome) {
        let (Op::Txn(mops), checkers::history::EventKind::Ok) = (op, outcome.kind) else {
            return;
        };
        for m in mops {
            if let MicroOp::Append {
                key: Key::Int(k), ..
            } = m
            {
                if let Some(slot) = self.active.iter_mut().find(|(key, _, _)| key == k) {
                    slot.2 += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn txns(seed: u64, per_key: u64, n: usize) -> Vec<Vec<MicroOp>> {
        let mut s = ListAppendWorkload.ops(
            seed,
            &WorkloadOptions {
                ops_per_key: per_key,
            },
        );
        (0..n)
            .map(|_| {
                let op = s.next_op();
                s.acknowledged(&op, &crate::Outcome::ok(op.value()));
                match op {
                    Op::Txn(m) => m,
                    other => panic!("not a transaction: {other:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn failed_appends_do_not_retire_a_key() {
        let mut s = ListAppendWorkload.ops(3, &WorkloadOptions { ops_per_key: 4 });
        // 200 transactions that all failed (the database was down): no key retires, and the
        // elements go on 1, 2, 3, ... per key.
        let mut keys = BTreeSet::new();
        for _ in 0..200 {
            let op = s.next_op();
            if let Op::Txn(m) = &op {
                keys.extend(m.iter().map(|m| m.key().clone()));
            }
            s.acknowledged(&op, &crate::Outcome::fail(op.value(), "connection refused"));
        }
        assert_eq!(keys.len(), ACTIVE_KEYS, "{keys:?}");
    }

    #[test]
    fn transactions_are_deterministic_short_and_conflicting() {
        assert_eq!(txns(5, 16, 500), txns(5, 16, 500));
        assert_ne!(txns(5, 16, 500), txns(6, 16, 500));
        let all = txns(5, 16, 2000);
        let sizes: BTreeSet<usize> = all.iter().map(Vec::len).collect();
        assert_eq!(sizes, (1..=MAX_MICRO_OPS).collect());
        // Reads and appends both happen, and transactions share keys (so they conflict).
        let mops: Vec<&MicroOp> = all.iter().flatten().collect();
        let reads = mops
            .iter()
            .filter(|m| matches!(m, MicroOp::Read { .. }))
            .count();
        assert!(
            reads > mops.len() / 3 && reads < 2 * mops.len() / 3,
            "{reads}"
        );
        let first_100: BTreeSet<&Key> = all[..100].iter().flatten().map(|m| m.key()).collect();
        assert!(first_100.len() <= 2 * ACTIVE_KEYS, "{first_100:?}");
    }

    #[test]
    fn elements_are_unique_per_key_and_keys_retire() {
        let all = txns(9, 16, 5000);
        let mut appended: BTreeMap<Key, Vec<i64>> = BTreeMap::new();
        let mut last_touch: BTreeMap<Key, usize> = BTreeMap::new();
        let mut first_touch: BTreeMap<Key, usize> = BTreeMap::new();
        for (i, t) in all.iter().enumerate() {
            for m in t {
                last_touch.insert(m.key().clone(), i);
                first_touch.entry(m.key().clone()).or_insert(i);
                if let MicroOp::Append { key, value } = m {
                    appended.entry(key.clone()).or_default().push(*value);
                }
            }
        }
        for (k, v) in &appended {
            // 1, 2, 3, ...: unique, and never more than 16.
            assert_eq!(*v, (1..=v.len() as i64).collect::<Vec<_>>(), "key {k}");
            assert!(v.len() <= 16, "key {k}: {} appends", v.len());
        }
        let full = appended.values().filter(|v| v.len() == 16).count();
        assert!(full > 20, "only {full} keys were retired");
        // A retired key is never touched again after its 16th append.
        for (k, v) in &appended {
            if v.len() == 16 {
                let last_append = all
                    .iter()
                    .rposition(|t| {
                        t.iter()
                            .any(|m| matches!(m, MicroOp::Append { key, .. } if key == k))
                    })
                    .unwrap();
                assert_eq!(last_touch[k], last_append, "key {k} touched after retiring");
            }
        }
        // At most ACTIVE_KEYS keys are live at once.
        let live_at_1000 = first_touch
            .iter()
            .filter(|(k, first)| **first <= 1000 && last_touch[*k] >= 1000)
            .count();
        assert!(live_at_1000 <= ACTIVE_KEYS, "{live_at_1000}");
    }

    #[test]
    fn the_checker_is_transactional_and_takes_the_runs_consistency() {
        let c = ListAppendWorkload.checker();
        assert!(matches!(
            c,
            Checker::Transactional {
                model: TxnModel::ListAppend,
                consistency: Consistency::StrictSerializable,
                ..
            }
        ));
        assert!(matches!(
            c.with_consistency(Some(Consistency::SnapshotIsolation)),
            Checker::Transactional {
                consistency: Consistency::SnapshotIsolation,
                ..
            }
        ));
    }
}
