//! The `rw-register` workload: transactions of 1 to 4 micro-ops, each a write of a unique
//! value to a key's register or a read of it, checked by the transactional checker
//! (`checkers::txn`, rw-register model, after Elle).
//!
//! Conflicts must happen for anomalies to show, so transactions draw their keys from a small
//! pool of [`ACTIVE_KEYS`] keys; a key is retired once `ops_per_key` writes to it were
//! acknowledged ([`WorkloadOptions::ops_per_key`], `--ops-per-key`; writes that failed or
//! whose outcome is unknown do not count), and a fresh key takes its place.
//! Values are unique per key (1, 2, 3, ... on each key), as the checker requires. Half the
//! transactions begin by reading a key and then writing it (read-modify-write), which is
//! where lost updates (P4) show, and which gives the checker its proven ww and rw edges.
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

/// Writes and reads of registers in transactions (`rw-register`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RwRegisterWorkload;

impl Workload for RwRegisterWorkload {
    fn name(&self) -> &'static str {
        "rw-register"
    }
    fn about(&self) -> &'static str {
        "transactions of writes and reads of registers over a small rotating key space, half of them read-modify-write, checked for isolation anomalies (Elle's rw-register)"
    }
    fn ops(&self, seed: u64, options: &WorkloadOptions) -> Box<dyn OpStream> {
        Box::new(RwRegisters::new(seed, options.ops_per_key))
    }
    /// A transaction that reads the key, after every heal and at the end, so that appends
    /// or writes a fault lost are seen missing.
    fn read_back(&self) -> Option<crate::workload::ReadBackOp> {
        Some(crate::workload::read_in_txn)
    }
    /// Strict serializability unless the run says what its database promises
    /// ([`Checker::with_consistency`]).
    fn checker(&self) -> Checker {
        Checker::transactional(TxnModel::RwRegister, Consistency::StrictSerializable)
    }
}

/// The rw-register op stream.
#[derive(Debug)]
pub struct RwRegisters {
    rng: rand_chacha::ChaCha8Rng,
    writes_per_key: u64,
    /// The keys in use: the key, writes drawn (so the next value), writes acknowledged.
    active: Vec<(i64, u64, u64)>,
    next_key: i64,
}

impl RwRegisters {
    /// A stream from `seed` that retires a key after `writes_per_key` acknowledged writes.
    pub fn new(seed: u64, writes_per_key: u64) -> RwRegisters {
        RwRegisters {
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            writes_per_key: writes_per_key.max(1),
            active: (0..ACTIVE_KEYS as i64).map(|k| (k, 0, 0)).collect(),
            next_key: ACTIVE_KEYS as i64,
        }
    }

    /// A random slot, its key replaced by a fresh one first when the key has had its quota
    /// of acknowledged writes (counting `here[slot]`, this transaction's writes to it so far).
    fn pick(&mut self, here: &mut [u64; ACTIVE_KEYS]) -> usize {
        let slot = self.rng.random_range(0..self.active.len());
        if self.active[slot].2 + here[slot] >= self.writes_per_key {
            self.active[slot] = (self.next_key, 0, 0);
            self.next_key += 1;
            here[slot] = 0;
        }
        slot
    }

    /// A write to the key in `slot` of a fresh value.
    fn write(&mut self, slot: usize, here: &mut [u64; ACTIVE_KEYS]) -> MicroOp {
        let (key, written, _) = self.active[slot];
        self.active[slot].1 = written + 1;
        here[slot] += 1;
        MicroOp::Write {
            key: Key::Int(key),
            value: written as i64 + 1,
        }
    }
}

impl OpStream for RwRegisters {
    fn next_op(&mut self) -> Op {
        let n = self.rng.random_range(1..=MAX_MICRO_OPS);
        let mut mops = Vec::with_capacity(n);
        let mut here = [0u64; ACTIVE_KEYS];
        if n >= 2 && self.rng.random_bool(0.5) {
            // Read-modify-write of one key.
            let slot = self.pick(&mut here);
            mops.push(MicroOp::Read {
                key: Key::Int(self.active[slot].0),
            });
            mops.push(self.write(slot, &mut here));
        }
        while mops.len() < n {
            let slot = self.pick(&mut here);
            if self.rng.random_bool(0.5) {
                mops.push(MicroOp::Read {
                    key: Key::Int(self.active[slot].0),
                });
            } else {
                mops.push(self.write(slot, &mut here));
            }
        }
        Op::Txn(mops)
    }

    fn acknowledged(&mut self, op: &Op, outcome: &crate::Outcome) {
        let (Op::Txn(mops), checkers::history::EventKind::Ok) = (op, outcome.kind) else {
            return;
        };
        for m in mops {
            if let MicroOp::Write {
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
        let mut s = RwRegisterWorkload.ops(
            seed,
            &WorkloadOptions {
                ops_per_key: per_key,
            },
        );
        (0..n)
            .map(|_| {
                let op = s.next_op();
                s.acknowledged(&op, &crate::Outcome::ok(op.value()));
                op
            })
            .map(|op| match op {
                Op::Txn(m) => m,
                other => panic!("not a transaction: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn transactions_are_deterministic_short_and_read_modify_write() {
        assert_eq!(txns(5, 16, 500), txns(5, 16, 500));
        assert_ne!(txns(5, 16, 500), txns(6, 16, 500));
        let all = txns(5, 16, 2000);
        let sizes: BTreeSet<usize> = all.iter().map(Vec::len).collect();
        assert_eq!(sizes, (1..=MAX_MICRO_OPS).collect());
        let rmw = all
            .iter()
            .filter(|t| match (t.first(), t.get(1)) {
                (Some(MicroOp::Read { key: a }), Some(MicroOp::Write { key: b, .. })) => a == b,
                _ => false,
            })
            .count();
        assert!(rmw > all.len() / 4, "{rmw} read-modify-writes");
    }

    #[test]
    fn values_are_unique_per_key_and_keys_retire() {
        let all = txns(9, 16, 5000);
        let mut written: BTreeMap<Key, Vec<i64>> = BTreeMap::new();
        for m in all.iter().flatten() {
            if let MicroOp::Write { key, value } = m {
                written.entry(key.clone()).or_default().push(*value);
            }
        }
        for (k, v) in &written {
            assert_eq!(*v, (1..=v.len() as i64).collect::<Vec<_>>(), "key {k}");
        }
        assert!(written.values().filter(|v| v.len() == 16).count() > 20);
    }

    #[test]
    fn the_checker_is_rw_register() {
        assert!(matches!(
            RwRegisterWorkload.checker(),
            Checker::Transactional {
                model: TxnModel::RwRegister,
                ..
            }
        ));
    }

    #[test]
    fn failed_writes_do_not_retire_a_key() {
        let mut s = RwRegisterWorkload.ops(3, &WorkloadOptions { ops_per_key: 4 });
        let mut keys = BTreeSet::new();
        for _ in 0..200 {
            let op = s.next_op();
            if let Op::Txn(m) = &op {
                keys.extend(m.iter().map(|m| m.key().clone()));
            }
            s.acknowledged(&op, &crate::Outcome::info(op.value(), "no answer"));
        }
        assert_eq!(keys.len(), ACTIVE_KEYS, "{keys:?}");
    }
}
