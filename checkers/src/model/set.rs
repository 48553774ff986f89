//! The set model: `add` (integer) and `read` (the whole set, as a list in any order).

use super::{describe, Model, Outcome};
use crate::history::Value;
use std::sync::Arc;

/// An operation on a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOp {
    /// Add an element.
    Add(i64),
    /// A read that returned exactly these elements (sorted, deduplicated).
    Read(Arc<[i64]>),
}

/// A set of integers, initially empty.
#[derive(Debug, Clone, Default)]
pub struct Set;

impl Model for Set {
    /// The sorted elements (shared, so that cloning a state is cheap).
    type State = Arc<[i64]>;
    type Op = SetOp;

    fn name(&self) -> &'static str {
        "set"
    }

    fn functions(&self) -> &'static [&'static str] {
        &["add", "read"]
    }

    fn init(&self) -> Arc<[i64]> {
        Arc::from(Vec::new())
    }

    fn parse_op(
        &self,
        f: &str,
        invoke: &Value,
        outcome: Outcome<'_>,
    ) -> Result<Option<SetOp>, String> {
        match f {
            "add" => invoke.as_int().map(|e| Some(SetOp::Add(e))).ok_or_else(|| {
                format!(
                    "add: expected an integer element, found {}",
                    describe(invoke)
                )
            }),
            "read" => match outcome {
                Outcome::Unknown => Ok(None),
                Outcome::Ok(v) => {
                    let items = v.as_list().ok_or_else(|| {
                        format!(
                            "read result: expected a list of integers, found {}",
                            describe(v)
                        )
                    })?;
                    let mut elems = items
                        .iter()
                        .map(|i| {
                            i.as_int().ok_or_else(|| {
                                format!("read result: expected integers, found {}", describe(i))
                            })
                        })
                        .collect::<Result<Vec<i64>, String>>()?;
                    elems.sort_unstable();
                    elems.dedup();
                    Ok(Some(SetOp::Read(Arc::from(elems))))
                }
            },
            other => Err(format!(
                "the set model has no function {other:?} (expected one of add, read)"
            )),
        }
    }

    fn step(&self, state: &Arc<[i64]>, op: &SetOp) -> Option<Arc<[i64]>> {
        match op {
            SetOp::Add(e) => match state.binary_search(e) {
                Ok(_) => Some(state.clone()),
                Err(at) => {
                    let mut v = state.to_vec();
                    v.insert(at, *e);
                    Some(Arc::from(v))
                }
            },
            SetOp::Read(seen) => (seen == state).then(|| state.clone()),
        }
    }

    fn show_op(&self, op: &SetOp) -> String {
        match op {
            SetOp::Add(e) => format!("add {e}"),
            SetOp::Read(seen) => format!("read -> {seen:?}"),
        }
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        state.len() * 8
    }

    fn show_state(&self, state: &Arc<[i64]>) -> String {
        format!("{state:?}")
    }
}
