//! The counter model: `add` (integer delta) and `read` (integer); initially 0.

use super::{describe, Model, Outcome};
use crate::history::Value;

/// An operation on a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOp {
    /// Add this delta (wrapping on overflow).
    Add(i64),
    /// A read that returned this value.
    Read(i64),
}

/// A counter starting at 0.
#[derive(Debug, Clone, Default)]
pub struct Counter;

impl Model for Counter {
    type State = i64;
    type Op = CounterOp;

    fn name(&self) -> &'static str {
        "counter"
    }

    fn functions(&self) -> &'static [&'static str] {
        &["add", "read"]
    }

    fn init(&self) -> i64 {
        0
    }

    fn parse_op(
        &self,
        f: &str,
        invoke: &Value,
        outcome: Outcome<'_>,
    ) -> Result<Option<CounterOp>, String> {
        match f {
            "add" => invoke
                .as_int()
                .map(|d| Some(CounterOp::Add(d)))
                .ok_or_else(|| {
                    format!("add: expected an integer delta, found {}", describe(invoke))
                }),
            "read" => match outcome {
                Outcome::Unknown => Ok(None),
                Outcome::Ok(v) => v.as_int().map(|r| Some(CounterOp::Read(r))).ok_or_else(|| {
                    format!("read result: expected an integer, found {}", describe(v))
                }),
            },
            other => Err(format!(
                "the counter model has no function {other:?} (expected one of add, read)"
            )),
        }
    }

    fn step(&self, state: &i64, op: &CounterOp) -> Option<i64> {
        match *op {
            CounterOp::Add(d) => Some(state.wrapping_add(d)),
            CounterOp::Read(v) => (v == *state).then_some(*state),
        }
    }

    fn show_op(&self, op: &CounterOp) -> String {
        match op {
            CounterOp::Add(d) => format!("add {d}"),
            CounterOp::Read(v) => format!("read -> {v}"),
        }
    }

    fn show_state(&self, state: &i64) -> String {
        state.to_string()
    }
}
