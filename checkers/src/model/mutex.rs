//! The mutex model: `acquire` and `release` (values ignored); initially free.

use super::{Model, Outcome};
use crate::history::Value;

/// An operation on a mutex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MutexOp {
    /// Take the lock (only when free).
    Acquire,
    /// Give it back (only when held).
    Release,
}

/// A lock, initially free. The state is `true` while held.
#[derive(Debug, Clone, Default)]
pub struct Mutex;

impl Model for Mutex {
    type State = bool;
    type Op = MutexOp;

    fn name(&self) -> &'static str {
        "mutex"
    }

    fn functions(&self) -> &'static [&'static str] {
        &["acquire", "release"]
    }

    fn init(&self) -> bool {
        false
    }

    fn parse_op(
        &self,
        f: &str,
        _invoke: &Value,
        _outcome: Outcome<'_>,
    ) -> Result<Option<MutexOp>, String> {
        match f {
            "acquire" => Ok(Some(MutexOp::Acquire)),
            "release" => Ok(Some(MutexOp::Release)),
            other => Err(format!(
                "the mutex model has no function {other:?} (expected one of acquire, release)"
            )),
        }
    }

    fn step(&self, held: &bool, op: &MutexOp) -> Option<bool> {
        match op {
            MutexOp::Acquire => (!held).then_some(true),
            MutexOp::Release => held.then_some(false),
        }
    }

    fn show_op(&self, op: &MutexOp) -> String {
        match op {
            MutexOp::Acquire => "acquire".to_string(),
            MutexOp::Release => "release".to_string(),
        }
    }

    fn show_state(&self, held: &bool) -> String {
        if *held { "held" } else { "free" }.to_string()
    }
}
