//! Workloads: which ops to generate, which final ops to run, and which checker judges them.
//!
//! A workload is a value behind the [`Workload`] trait; [`crate::registry::Registry`] lists
//! them by name. The built-in ones:
//!
//! - `register` and `cas-register` work on many independent keys, as Jepsen's independent
//!   workloads do: each key gets a bounded number of ops, then the workload moves on to a
//!   fresh key. Written values are distinct (a counter), so the checker's polynomial fast
//!   path decides every key.
//! - `set` adds unique integers, then reads the whole set once at the end; the set checker
//!   (see `checkers::set_check`) reports lost, unexpected and recovered elements.
//!
//! Op streams are deterministic: the same seed gives the same stream of ops.

use crate::op::Op;
use checkers::check::Checker;
use checkers::history::Key;
use rand::{Rng, SeedableRng};

/// Options every workload may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadOptions {
    /// Ops per key before a keyed workload moves to a fresh key (list-append: appends per key
    /// before the key is retired).
    pub ops_per_key: u64,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions { ops_per_key: 200 }
    }
}

/// An endless, deterministic stream of ops.
pub trait OpStream: Send {
    /// The next op.
    fn next_op(&mut self) -> Op;
    /// Told how an op it gave ended, so that, for example, a key is retired only after
    /// enough acknowledged ops. By default, nothing.
    fn acknowledged(&mut self, _op: &Op, _outcome: &crate::Outcome) {}
}

/// Reads a key back: the op a keyed workload runs for each key it wrote, after every heal
/// and at the end, so that acknowledged writes lost in a fault surface as violations.
pub type ReadBackOp = fn(&Key) -> Op;

fn read_register(key: &Key) -> Op {
    Op::Read { key: key.clone() }
}

/// The read-back of a transactional workload: a transaction that only reads `key` (the
/// whole list for list-append, the register for rw-register).
pub fn read_in_txn(key: &Key) -> Op {
    Op::Txn(vec![crate::op::MicroOp::Read { key: key.clone() }])
}

/// A workload: its op stream, the ops to run once faults are healed, and its checker.
pub trait Workload: Send + Sync {
    /// The name, as in `--workload`.
    fn name(&self) -> &'static str;
    /// One line for `--help`.
    fn about(&self) -> &'static str;
    /// The op stream for a run with `seed`.
    fn ops(&self, seed: u64, options: &WorkloadOptions) -> Box<dyn OpStream>;
    /// Ops to run after every fault is healed, each until it succeeds once (a set's final
    /// read). None by default.
    fn final_ops(&self) -> Vec<Op> {
        Vec::new()
    }
    /// How to read back a key it wrote (see [`ReadBackOp`]); none for workloads whose ops
    /// carry no key or that read everything at the end anyway. None by default.
    fn read_back(&self) -> Option<ReadBackOp> {
        None
    }
    /// The checker that judges the history.
    fn checker(&self) -> Checker;
}

/// Reads and writes of registers (`register`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RegisterWorkload;

impl Workload for RegisterWorkload {
    fn name(&self) -> &'static str {
        "register"
    }
    fn about(&self) -> &'static str {
        "reads and writes of many registers, checked for linearizability"
    }
    fn ops(&self, seed: u64, options: &WorkloadOptions) -> Box<dyn OpStream> {
        Box::new(Registers::new(false, seed, options.ops_per_key))
    }
    fn read_back(&self) -> Option<ReadBackOp> {
        Some(read_register)
    }
    fn checker(&self) -> Checker {
        Checker::linearizable("register")
    }
}

/// Reads, writes and compare-and-sets of registers (`cas-register`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CasRegisterWorkload;

impl Workload for CasRegisterWorkload {
    fn name(&self) -> &'static str {
        "cas-register"
    }
    fn about(&self) -> &'static str {
        "reads, writes and compare-and-sets of many registers, checked for linearizability"
    }
    fn ops(&self, seed: u64, options: &WorkloadOptions) -> Box<dyn OpStream> {
        Box::new(Registers::new(true, seed, options.ops_per_key))
    }
    fn read_back(&self) -> Option<ReadBackOp> {
        Some(read_register)
    }
    fn checker(&self) -> Checker {
        Checker::linearizable("cas-register")
    }
}

/// Adds of unique elements to one set, and a final read (`set`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SetWorkload;

impl Workload for SetWorkload {
    fn name(&self) -> &'static str {
        "set"
    }
    fn about(&self) -> &'static str {
        "adds of unique elements, a final read; lost and unexpected elements"
    }
    fn ops(&self, _seed: u64, _options: &WorkloadOptions) -> Box<dyn OpStream> {
        Box::new(SetAdds { next: 1 })
    }
    fn final_ops(&self) -> Vec<Op> {
        vec![Op::ReadSet]
    }
    fn checker(&self) -> Checker {
        Checker::Set
    }
}

/// Unique adds: 1, 2, 3, ...
#[derive(Debug)]
pub struct SetAdds {
    next: i64,
}

impl OpStream for SetAdds {
    fn next_op(&mut self) -> Op {
        let value = self.next;
        self.next += 1;
        Op::Add { value }
    }
}

/// The register workloads' op stream: reads, writes (and compare-and-sets) of one key after
/// another, with distinct written values. A key is retired after `ops_per_key` acknowledged
/// (ok) ops on it: ops that failed while the database was down do not use up its quota, so
/// the keys written before a fault are still in use after it.
#[derive(Debug)]
pub struct Registers {
    cas: bool,
    rng: rand_chacha::ChaCha8Rng,
    ops_per_key: u64,
    key: i64,
    ops_on_key: u64,
    next_value: i64,
    written: Vec<i64>,
}

impl Registers {
    /// A stream from `seed` (with compare-and-sets when `cas`) that moves to a fresh key after
    /// `ops_per_key` ops.
    pub fn new(cas: bool, seed: u64, ops_per_key: u64) -> Registers {
        Registers {
            cas,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            ops_per_key: ops_per_key.max(1),
            key: 0,
            ops_on_key: 0,
            next_value: 1,
            written: Vec::new(),
        }
    }
}

impl OpStream for Registers {
    fn next_op(&mut self) -> Op {
        if self.ops_on_key >= self.ops_per_key {
            self.key += 1;
            self.ops_on_key = 0;
            self.written.clear();
        }
        let key = Key::Int(self.key);
        let roll: f64 = self.rng.random();
        if roll < 0.4 || (!self.cas && roll < 0.5) {
            return Op::Read { key };
        }
        let new = self.next_value;
        self.next_value += 1;
        if self.cas && roll >= 0.7 && !self.written.is_empty() {
            // Usually the latest value (likely to succeed), sometimes an older one.
            let old = if self.rng.random_bool(0.7) {
                self.written[self.written.len() - 1]
            } else {
                self.written[self.rng.random_range(0..self.written.len())]
            };
            self.written.push(new);
            return Op::Cas { key, old, new };
        }
        self.written.push(new);
        Op::Write { key, value: new }
    }

    fn acknowledged(&mut self, op: &Op, outcome: &crate::Outcome) {
        if outcome.kind == checkers::history::EventKind::Ok && op.key() == Some(&Key::Int(self.key))
        {
            self.ops_on_key += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_streams_are_deterministic_and_values_distinct() {
        let ops = |seed| {
            let mut g = CasRegisterWorkload.ops(seed, &WorkloadOptions { ops_per_key: 50 });
            (0..1000)
                .map(|_| {
                    let op = g.next_op();
                    g.acknowledged(&op, &crate::Outcome::ok(op.value()));
                    op
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ops(1), ops(1));
        assert_ne!(ops(1), ops(2));
        let all = ops(1);
        let mut written: Vec<i64> = all
            .iter()
            .filter_map(|o| match o {
                Op::Write { value, .. } => Some(*value),
                Op::Cas { new, .. } => Some(*new),
                _ => None,
            })
            .collect();
        let n = written.len();
        written.sort_unstable();
        written.dedup();
        assert_eq!(written.len(), n, "written values are distinct");
        // 50 ops per key: 20 keys.
        let keys: std::collections::BTreeSet<_> = all.iter().map(|o| o.key().cloned()).collect();
        assert_eq!(keys.len(), 20);
        for f in ["read", "write", "cas"] {
            assert!(all.iter().filter(|o| o.f() == f).count() > 150, "{f}");
        }
    }

    #[test]
    fn registers_never_cas_and_sets_add_unique_values() {
        let mut g = RegisterWorkload.ops(3, &WorkloadOptions { ops_per_key: 10 });
        assert!((0..500).all(|_| g.next_op().f() != "cas"));
        let mut s = SetWorkload.ops(3, &WorkloadOptions::default());
        let v: Vec<_> = (0..5).map(|_| s.next_op()).collect();
        assert_eq!(
            v,
            (1..=5).map(|value| Op::Add { value }).collect::<Vec<_>>()
        );
        assert_eq!(SetWorkload.final_ops(), vec![Op::ReadSet]);
        assert!(matches!(SetWorkload.checker(), Checker::Set));
    }

    #[test]
    fn a_key_is_retired_only_after_enough_acknowledged_ops() {
        let mut g = RegisterWorkload.ops(3, &WorkloadOptions { ops_per_key: 5 });
        // 100 ops that all failed (the database was down): the key is still in use.
        for _ in 0..100 {
            let op = g.next_op();
            assert_eq!(op.key(), Some(&Key::Int(0)));
            g.acknowledged(&op, &crate::Outcome::fail(op.value(), "connection refused"));
        }
        for _ in 0..5 {
            let op = g.next_op();
            assert_eq!(op.key(), Some(&Key::Int(0)));
            g.acknowledged(&op, &crate::Outcome::ok(op.value()));
        }
        assert_eq!(g.next_op().key(), Some(&Key::Int(1)));
        assert_eq!(
            RegisterWorkload.read_back().map(|r| r(&Key::Int(4))),
            Some(Op::Read { key: Key::Int(4) })
        );
    }
}
