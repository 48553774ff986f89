//! Porcupine's key-value model, per key: `get` (the current string, `""` when unset), `put`
//! (a string) and `append` (concatenated to the current value); initially `""`. Each key of a
//! history is checked on its own, so one model instance is one key's string.

use super::{describe, Model, Outcome};
use crate::history::Value;
use std::sync::Arc;

/// An operation on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    /// A get that returned this string.
    Get(Arc<str>),
    /// Replace the value.
    Put(Arc<str>),
    /// Concatenate to the value.
    Append(Arc<str>),
}

/// A string value per key, initially empty.
#[derive(Debug, Clone, Default)]
pub struct Kv;

fn string(v: &Value, what: &str) -> Result<Arc<str>, String> {
    match v {
        Value::Str(s) => Ok(Arc::from(s.as_str())),
        Value::Null => Ok(Arc::from("")),
        other => Err(format!(
            "{what}: expected a string, found {}",
            describe(other)
        )),
    }
}

impl Model for Kv {
    type State = Arc<str>;
    type Op = KvOp;

    fn name(&self) -> &'static str {
        "kv"
    }

    fn functions(&self) -> &'static [&'static str] {
        &["get", "put", "append"]
    }

    fn init(&self) -> Arc<str> {
        Arc::from("")
    }

    fn parse_op(
        &self,
        f: &str,
        invoke: &Value,
        outcome: Outcome<'_>,
    ) -> Result<Option<KvOp>, String> {
        match f {
            "get" => match outcome {
                Outcome::Unknown => Ok(None),
                Outcome::Ok(v) => Ok(Some(KvOp::Get(string(v, "get result")?))),
            },
            "put" => Ok(Some(KvOp::Put(string(invoke, "put")?))),
            "append" => Ok(Some(KvOp::Append(string(invoke, "append")?))),
            other => Err(format!(
                "the kv model has no function {other:?} (expected one of get, put, append)"
            )),
        }
    }

    fn step(&self, state: &Arc<str>, op: &KvOp) -> Option<Arc<str>> {
        match op {
            KvOp::Get(v) => (v == state).then(|| state.clone()),
            KvOp::Put(v) => Some(v.clone()),
            KvOp::Append(v) => Some(Arc::from(format!("{state}{v}"))),
        }
    }

    fn show_op(&self, op: &KvOp) -> String {
        match op {
            KvOp::Get(v) => format!("get -> {v:?}"),
            KvOp::Put(v) => format!("put {v:?}"),
            KvOp::Append(v) => format!("append {v:?}"),
        }
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        state.len()
    }

    fn show_state(&self, state: &Arc<str>) -> String {
        format!("{state:?}")
    }
}
