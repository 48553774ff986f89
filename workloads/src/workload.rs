//! Workloads: which ops to generate, and how their history is judged.
//!
//! - `register` and `cas-register` work on many independent keys, as Jepsen's independent
//!   workloads do: each key gets a bounded number of ops, then the workload moves on to a
//!   fresh key. Written values are distinct (a counter), so the checker's polynomial fast
//!   path decides every key.
//! - `set` adds unique integers, then reads the whole set once at the end; the set checker
//!   (see `checkers::set`) reports lost, unexpected and recovered elements.
//!
//! Generators are deterministic: the same seed gives the same stream of ops.

use crate::op::Op;
use checkers::history::{Key, Value};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Reads and writes of registers.
    Register,
    /// Reads, writes and compare-and-sets of registers.
    CasRegister,
    /// Adds to a set, and a final read.
    Set,
}

impl Workload {
    /// Names accepted by [`Workload::parse`].
    pub const NAMES: &'static [&'static str] = &["register", "cas-register", "set"];

    /// Parses a workload name.
    pub fn parse(s: &str) -> Option<Workload> {
        match s {
            "register" => Some(Workload::Register),
            "cas-register" => Some(Workload::CasRegister),
            "set" => Some(Workload::Set),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::CasRegister => "cas-register",
            Workload::Set => "set",
        }
    }

    /// The linearizability model that judges it, or `None` for the set checker.
    pub fn model(self) -> Option<&'static str> {
        match self {
            Workload::Register => Some("register"),
            Workload::CasRegister => Some("cas-register"),
            Workload::Set => None,
        }
    }
}

/// How clients talk to the database for a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// The workload (a set's `read` reads every element).
    pub workload: Workload,
    /// Give up on a request after this long.
    pub timeout: Duration,
    /// Serializable reads (served from the node's local state) instead of linearizable ones.
    pub serializable_reads: bool,
}

/// A deterministic op generator for a workload.
#[derive(Debug)]
pub struct Generator {
    workload: Workload,
    rng: rand_chacha::ChaCha8Rng,
    ops_per_key: u64,
    key: i64,
    ops_on_key: u64,
    next_value: i64,
    written: Vec<i64>,
}

impl Generator {
    /// A generator for `workload` from `seed`; keyed workloads move to a fresh key after
    /// `ops_per_key` ops.
    pub fn new(workload: Workload, seed: u64, ops_per_key: u64) -> Generator {
        Generator {
            workload,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            ops_per_key: ops_per_key.max(1),
            key: 0,
            ops_on_key: 0,
            next_value: 1,
            written: Vec::new(),
        }
    }

    /// The next op.
    pub fn next_op(&mut self) -> Op {
        if self.workload == Workload::Set {
            let v = self.next_value;
            self.next_value += 1;
            return Op {
                f: "add",
                key: None,
                value: Value::Int(v),
            };
        }
        if self.ops_on_key >= self.ops_per_key {
            self.key += 1;
            self.ops_on_key = 0;
            self.written.clear();
        }
        self.ops_on_key += 1;
        let key = Some(Key::Int(self.key));
        let roll: f64 = self.rng.random();
        let cas = self.workload == Workload::CasRegister;
        if roll < 0.4 || (!cas && roll < 0.5) {
            return Op {
                f: "read",
                key,
                value: Value::Null,
            };
        }
        let new = self.next_value;
        self.next_value += 1;
        if cas && roll >= 0.7 && !self.written.is_empty() {
            // Usually the latest value (likely to succeed), sometimes an older one.
            let old = if self.rng.random_bool(0.7) {
                self.written[self.written.len() - 1]
            } else {
                self.written[self.rng.random_range(0..self.written.len())]
            };
            self.written.push(new);
            return Op {
                f: "cas",
                key,
                value: Value::List(vec![Value::Int(old), Value::Int(new)]),
            };
        }
        self.written.push(new);
        Op {
            f: "write",
            key,
            value: Value::Int(new),
        }
    }

    /// The ops to run once the faults are healed (a set's final read).
    pub fn final_ops(&self) -> Vec<Op> {
        match self.workload {
            Workload::Set => vec![Op {
                f: "read",
                key: None,
                value: Value::Null,
            }],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_deterministic_and_values_distinct() {
        let ops = |seed| {
            let mut g = Generator::new(Workload::CasRegister, seed, 50);
            (0..1000).map(|_| g.next_op()).collect::<Vec<_>>()
        };
        assert_eq!(ops(1), ops(1));
        assert_ne!(ops(1), ops(2));
        let all = ops(1);
        let mut written: Vec<i64> = all
            .iter()
            .filter_map(|o| match (o.f, &o.value) {
                ("write", Value::Int(v)) => Some(*v),
                ("cas", Value::List(l)) => l[1].as_int(),
                _ => None,
            })
            .collect();
        let n = written.len();
        written.sort_unstable();
        written.dedup();
        assert_eq!(written.len(), n, "written values are distinct");
        // 50 ops per key: 20 keys.
        let keys: std::collections::BTreeSet<_> = all.iter().map(|o| o.key.clone()).collect();
        assert_eq!(keys.len(), 20);
        for f in ["read", "write", "cas"] {
            assert!(all.iter().filter(|o| o.f == f).count() > 150, "{f}");
        }
    }

    #[test]
    fn registers_never_cas_and_sets_add_unique_values() {
        let mut g = Generator::new(Workload::Register, 3, 10);
        assert!((0..500).all(|_| g.next_op().f != "cas"));
        let mut s = Generator::new(Workload::Set, 3, 10);
        let v: Vec<_> = (0..5).map(|_| s.next_op().value).collect();
        assert_eq!(v, (1..=5).map(Value::Int).collect::<Vec<_>>());
        assert_eq!(s.final_ops()[0].f, "read");
    }
}
