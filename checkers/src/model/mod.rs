//! Sequential specifications of the objects under test.
//!
//! A model is a small deterministic state machine: it parses an operation from a history's
//! events and steps a state by it. Adding a model is one file implementing [`Model`] plus one
//! line in [`crate::check`]'s dispatch.

use crate::history::Value;
use crate::linear::Operation;
use std::fmt::Debug;
use std::hash::Hash;

pub mod catalog;
pub mod counter;
pub mod kv;
pub mod mutex;
pub mod queue;
pub mod register;
mod register_zones;
pub mod set;

pub use counter::{Counter, CounterOp};
pub use kv::{Kv, KvOp};
pub use mutex::{Mutex, MutexOp};
pub use queue::{Queue, QueueOp};
pub use register::{Register, RegisterOp};
pub use set::{Set, SetOp};

/// What a completion said about an op's result.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// `ok`: the op took effect and returned this value.
    Ok(&'a Value),
    /// `info`, or no completion at all: the op may have taken effect (once, at any time after
    /// its invocation) or not; its result is unknown.
    Unknown,
}

/// A sequential specification.
///
/// Models are deterministic: given a state and an op whose result is unknown, there is at most
/// one next state. The checker treats an op with an unknown result as "took effect at some
/// point after its invocation, or never".
pub trait Model: Send + Sync {
    /// The object's state. Equal states must behave identically (the checker memoizes on them).
    type State: Clone + Eq + Hash + Debug + Send + Sync;
    /// One operation with its argument and, when known, its result.
    type Op: Clone + Debug + Send + Sync;

    /// The model's name, as given to `--model`.
    fn name(&self) -> &'static str;

    /// The `f` values this model understands.
    fn functions(&self) -> &'static [&'static str];

    /// The initial state.
    fn init(&self) -> Self::State;

    /// Builds an op from its invocation's `f` and `value` and its outcome.
    ///
    /// Returns `Ok(None)` for an op that can neither change the state nor be observed (a read
    /// whose result is unknown): the checker drops it. `Err` explains what was expected.
    fn parse_op(
        &self,
        f: &str,
        invoke: &Value,
        outcome: Outcome<'_>,
    ) -> Result<Option<Self::Op>, String>;

    /// Applies `op` to `state`: the next state, or `None` if the op's result cannot be what this
    /// state would produce.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// A short human-readable rendering of an op, e.g. `cas(1, 2)` or `read() -> 3`.
    fn show_op(&self, op: &Self::Op) -> String;

    /// A short human-readable rendering of a state.
    fn show_state(&self, state: &Self::State) -> String;

    /// Heap bytes a state holds beyond its own size (for the search's memory budget).
    fn state_heap_bytes(&self, _state: &Self::State) -> usize {
        0
    }

    /// A decision procedure faster than the general search for the histories it applies to
    /// (e.g. registers whose written values are distinct). `None` means "does not apply here":
    /// the checker then runs the exact search. It must be exact wherever it answers.
    fn fast_check(&self, _ops: &[Operation<Self::Op>]) -> Option<FastVerdict> {
        None
    }
}

/// The answer of a [`Model::fast_check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FastVerdict {
    /// Linearizable.
    Valid,
    /// Not linearizable, with a one-line reason naming the ops involved; a reason about one op
    /// starts with `op N ` (N its invoke index).
    Invalid(String),
}

/// Describes a value for error messages.
pub(crate) fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(57).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}
