//! Operations as a workload generates them, their outcomes as a client reports them, and the
//! client trait.
//!
//! An [`Op`] is typed: a client matches on what to do ([`Op::Read`], [`Op::ReadSet`], ...),
//! never on strings, and the history's `f`, `key` and `value` fields come from the op itself
//! ([`Op::f`], [`Op::key`], [`Op::value`]).
//!
//! ```
//! use workloads::Op;
//! use checkers::history::{Key, Value};
//! let op = Op::Cas { key: Key::Int(3), old: 1, new: 2 };
//! assert_eq!(op.f(), "cas");
//! assert_eq!(op.value(), Value::List(vec![Value::Int(1), Value::Int(2)]));
//! assert_eq!(Op::ReadSet.f(), "read");
//!
//! // A transaction: its micro-ops in order; reads carry null on invoke.
//! use workloads::op::MicroOp;
//! let txn = Op::Txn(vec![
//!     MicroOp::Append { key: Key::Str("x".into()), value: 4 },
//!     MicroOp::Read { key: Key::Int(6) },
//! ]);
//! assert_eq!(txn.f(), "txn");
//! assert_eq!(txn.key(), None);
//! assert_eq!(txn.value().to_string(), r#"[["append","x",4],["r",6,null]]"#);
//! ```

use checkers::history::{EventKind, Key, Value};
use std::future::Future;
use std::pin::Pin;

/// One operation to perform.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Read a register (history: `read`, value `null`; ok value: the register's value).
    Read {
        /// The register.
        key: Key,
    },
    /// Write a register (history: `write`).
    Write {
        /// The register.
        key: Key,
        /// The value (unique per key in faultline's workloads).
        value: i64,
    },
    /// Compare-and-set a register (history: `cas`, value `[old, new]`).
    Cas {
        /// The register.
        key: Key,
        /// The value expected.
        old: i64,
        /// The value written when it matches.
        new: i64,
    },
    /// Add an element to the set (history: `add`).
    Add {
        /// The element.
        value: i64,
    },
    /// Read every element of the set (history: `read`; ok value: the sorted elements).
    ReadSet,
    /// A transaction of micro-ops, run in order (history: `txn`, no top-level key, value the
    /// micro-op list as DESIGN.md's "Transactional workloads" shows; an `ok` completion
    /// carries the reads filled in, see [`txn_completion`]).
    Txn(Vec<MicroOp>),
    /// An op of a workload added through the registry that the built-in clients do not know,
    /// with its history fields as they are (its database's client interprets it).
    Custom {
        /// The history's `f`.
        f: String,
        /// The history's `key`.
        key: Option<Key>,
        /// The history's invoke `value`.
        value: Value,
        /// Whether it only reads.
        read_only: bool,
    },
}

impl Op {
    /// The history's `f`.
    pub fn f(&self) -> &str {
        match self {
            Op::Read { .. } | Op::ReadSet => "read",
            Op::Write { .. } => "write",
            Op::Cas { .. } => "cas",
            Op::Add { .. } => "add",
            Op::Txn(_) => "txn",
            Op::Custom { f, .. } => f,
        }
    }

    /// The keys this op writes, which a workload reads back after faults: a write's or
    /// compare-and-set's key, a transaction's appended and written keys (each once), a custom
    /// op's key unless its `f` is `read`; none for reads and the set's adds.
    pub fn written_keys(&self) -> Vec<&Key> {
        match self {
            Op::Write { key, .. } | Op::Cas { key, .. } => vec![key],
            Op::Read { .. } | Op::Add { .. } | Op::ReadSet => Vec::new(),
            Op::Custom { f, key, .. } => key.iter().filter(|_| f != "read").collect(),
            Op::Txn(mops) => {
                let mut keys: Vec<&Key> = Vec::new();
                for m in mops {
                    if let MicroOp::Append { key, .. } | MicroOp::Write { key, .. } = m {
                        if !keys.contains(&key) {
                            keys.push(key);
                        }
                    }
                }
                keys
            }
        }
    }

    /// The history's `key` (absent for the set).
    pub fn key(&self) -> Option<&Key> {
        match self {
            Op::Read { key } | Op::Write { key, .. } | Op::Cas { key, .. } => Some(key),
            Op::Add { .. } | Op::ReadSet | Op::Txn(_) => None,
            Op::Custom { key, .. } => key.as_ref(),
        }
    }

    /// The history's invoke `value`.
    pub fn value(&self) -> Value {
        match self {
            Op::Read { .. } | Op::ReadSet => Value::Null,
            Op::Write { value, .. } | Op::Add { value } => Value::Int(*value),
            Op::Cas { old, new, .. } => Value::List(vec![Value::Int(*old), Value::Int(*new)]),
            Op::Txn(mops) => Value::List(mops.iter().map(|m| m.to_value(Value::Null)).collect()),
            Op::Custom { value, .. } => value.clone(),
        }
    }

    /// Whether the op only reads (a read that fails or times out changed nothing, so it can
    /// always be called `fail`).
    pub fn is_read(&self) -> bool {
        match self {
            Op::Read { .. } | Op::ReadSet => true,
            Op::Txn(mops) => mops.iter().all(|m| matches!(m, MicroOp::Read { .. })),
            Op::Custom { read_only, .. } => *read_only,
            _ => false,
        }
    }
}

/// One micro-operation of a transaction ([`Op::Txn`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MicroOp {
    /// list-append: append `value` to the list at `key` (history `["append", k, v]`).
    Append {
        /// The key.
        key: Key,
        /// The element (unique per key).
        value: i64,
    },
    /// rw-register: write `value` to `key` (history `["w", k, v]`).
    Write {
        /// The key.
        key: Key,
        /// The value (unique per key).
        value: i64,
    },
    /// Read `key` whole: a list for list-append, a register for rw-register (history
    /// `["r", k, null]` on invoke, `["r", k, what was read]` on `ok`).
    Read {
        /// The key.
        key: Key,
    },
}

impl MicroOp {
    /// The key it touches.
    pub fn key(&self) -> &Key {
        match self {
            MicroOp::Append { key, .. } | MicroOp::Write { key, .. } | MicroOp::Read { key } => key,
        }
    }

    /// The micro-op as the history writes it, with `read` as a read's value (ignored for
    /// appends and writes).
    pub fn to_value(&self, read: Value) -> Value {
        let key = match self.key() {
            Key::Int(i) => Value::Int(*i),
            Key::Str(s) => Value::Str(s.clone()),
        };
        let (f, v) = match self {
            MicroOp::Append { value, .. } => ("append", Value::Int(*value)),
            MicroOp::Write { value, .. } => ("w", Value::Int(*value)),
            MicroOp::Read { .. } => ("r", read),
        };
        Value::List(vec![Value::Str(f.to_string()), key, v])
    }
}

/// What a read micro-op saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadValue {
    /// A list-append key's whole list (`[]` when it was never appended to).
    List(Vec<i64>),
    /// A rw-register key's value (`None` when it was never written).
    Register(Option<i64>),
}

impl ReadValue {
    /// As the history writes it.
    pub fn to_value(&self) -> Value {
        match self {
            ReadValue::List(xs) => Value::List(xs.iter().copied().map(Value::Int).collect()),
            ReadValue::Register(Some(x)) => Value::Int(*x),
            ReadValue::Register(None) => Value::Null,
        }
    }
}

/// The value of a committed transaction's `ok` completion: its micro-ops in order, each read
/// filled in with what it saw (`reads[i]` for micro-op `i`; `None` for appends and writes).
///
/// ```
/// use workloads::op::{txn_completion, MicroOp, ReadValue};
/// use checkers::history::Key;
/// let mops = [
///     MicroOp::Append { key: Key::Str("x".into()), value: 4 },
///     MicroOp::Read { key: Key::Str("y".into()) },
/// ];
/// let v = txn_completion(&mops, &[None, Some(ReadValue::List(vec![1, 2]))]);
/// assert_eq!(v.to_string(), r#"[["append","x",4],["r","y",[1,2]]]"#);
/// ```
pub fn txn_completion(mops: &[MicroOp], reads: &[Option<ReadValue>]) -> Value {
    Value::List(
        mops.iter()
            .enumerate()
            .map(|(i, m)| {
                let read = reads
                    .get(i)
                    .and_then(|r| r.as_ref())
                    .map(ReadValue::to_value)
                    .unwrap_or(Value::Null);
                m.to_value(read)
            })
            .collect(),
    )
}

/// How an operation ended, as written into the history's completion line.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `ok`, `fail` or `info`.
    pub kind: EventKind,
    /// The result (on `ok`), else the invoke's value.
    pub value: Value,
    /// Why it failed or is unknown.
    pub error: Option<String>,
}

impl Outcome {
    /// It took effect, with this result.
    pub fn ok(value: Value) -> Outcome {
        Outcome {
            kind: EventKind::Ok,
            value,
            error: None,
        }
    }

    /// It certainly did not take effect.
    pub fn fail(value: Value, error: impl Into<String>) -> Outcome {
        Outcome {
            kind: EventKind::Fail,
            value,
            error: Some(error.into()),
        }
    }

    /// It may or may not have taken effect.
    pub fn info(value: Value, error: impl Into<String>) -> Outcome {
        Outcome {
            kind: EventKind::Info,
            value,
            error: Some(error.into()),
        }
    }
}

/// A boxed future, so that [`Client`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A database client bound to one node. `invoke` must classify outcomes with care: `ok` only
/// when the database confirmed the effect, `fail` only when it certainly had none, `info`
/// otherwise. It must not take longer than the timeout it was built with (the harness also
/// enforces a timeout, and records `info` when it fires).
pub trait Client: Send + Sync {
    /// Performs `op` and reports its outcome.
    fn invoke<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Outcome>;

    /// Gets ready for the next op, before it is drawn and outside its timeout (an adapter
    /// client starts its process here). By default, nothing.
    fn prepare(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Gets ready now, saying why it cannot (the harness calls it during set-up, so that a
    /// client that cannot work stops the run before its workload). An adapter client starts
    /// its process and makes its handshake. By default, nothing to do.
    fn start_now(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}
