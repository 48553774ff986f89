//! Operations as a workload generates them, their outcomes as a client reports them, and the
//! client trait.

use checkers::history::{EventKind, Key, Value};
use std::future::Future;
use std::pin::Pin;

/// One operation to perform: `f`, the key of the independent object it acts on, and its
/// argument (as written into the history's invoke line).
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// The function: `read`, `write`, `cas`, `add`.
    pub f: &'static str,
    /// The key, for keyed workloads.
    pub key: Option<Key>,
    /// The argument (`null` for reads).
    pub value: Value,
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
}
