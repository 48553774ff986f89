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
            Op::Custom { f, .. } => f,
        }
    }

    /// The history's `key` (absent for the set).
    pub fn key(&self) -> Option<&Key> {
        match self {
            Op::Read { key } | Op::Write { key, .. } | Op::Cas { key, .. } => Some(key),
            Op::Add { .. } | Op::ReadSet => None,
            Op::Custom { key, .. } => key.as_ref(),
        }
    }

    /// The history's invoke `value`.
    pub fn value(&self) -> Value {
        match self {
            Op::Read { .. } | Op::ReadSet => Value::Null,
            Op::Write { value, .. } | Op::Add { value } => Value::Int(*value),
            Op::Cas { old, new, .. } => Value::List(vec![Value::Int(*old), Value::Int(*new)]),
            Op::Custom { value, .. } => value.clone(),
        }
    }

    /// Whether the op only reads (a read that fails or times out changed nothing, so it can
    /// always be called `fail`).
    pub fn is_read(&self) -> bool {
        match self {
            Op::Read { .. } | Op::ReadSet => true,
            Op::Custom { read_only, .. } => *read_only,
            _ => false,
        }
    }
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
}
