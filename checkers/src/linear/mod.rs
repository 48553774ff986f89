//! The linearizability checker for one key's operations.
//!
//! [`check_ops`] first asks the model for a fast decision ([`Model::fast_check`], e.g. the
//! register's zone procedure for distinct values), and otherwise runs the exact search
//! ([`search`]). A history found invalid by a fast path is searched as well, within the limits,
//! to produce a counterexample.
//!
//! ```
//! use checkers::linear::{check_ops, Limits, Operation, Strategy, Verdict};
//! use checkers::model::{Register, RegisterOp};
//! // write 1 completes, then a read returns null: a stale read.
//! let ops = vec![
//!     Operation { op: RegisterOp::Write(1), call: 0, ret: Some(1), process: 0, invoke_index: 0, complete_index: Some(1) },
//!     Operation { op: RegisterOp::Read(None), call: 2, ret: Some(3), process: 1, invoke_index: 2, complete_index: Some(3) },
//! ];
//! let result = check_ops(&Register::read_write(), &ops, &Limits::default(), Strategy::Auto);
//! assert_eq!(result.verdict, Verdict::Invalid);
//! ```

pub mod budget;
mod build;
mod ops;
mod report;
mod search;

pub use budget::{Limits, MemoryExhausted, MemoryPool, Stop};
pub use build::{KeyOps, OpCounts, OpsBuilder, OpsByKey};
pub use ops::Operation;
pub use report::{check_keys, CheckOptions, KeyReport, Report};

use crate::model::{FastVerdict, Model};
use search::{Deepest, SearchOutcome};
use serde::Serialize;
use std::time::Duration;

pub use crate::verdict::Verdict;

/// How to decide a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The model's fast path where it applies, else the exact search.
    Auto,
    /// Always the exact search (for cross-checking the fast paths).
    Search,
}

/// Which procedure decided a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Nothing to check.
    Empty,
    /// The model's polynomial procedure.
    FastPath,
    /// The exact search.
    Search,
}

/// An op as shown in reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpView {
    /// `index` of its invocation in the history.
    pub invoke_index: u64,
    /// `index` of its completion (absent for unknown outcomes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete_index: Option<u64>,
    /// The client process.
    pub process: u64,
    /// The model's rendering, e.g. `cas 1 -> 2`.
    pub op: String,
}

/// One step of a partial linearization: the op and the state after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepView {
    /// The op linearized.
    #[serde(flatten)]
    pub op: OpView,
    /// The model's state after it.
    pub state_after: String,
}

/// Why a key is not linearizable: the longest linearizable prefix the search found, the op it
/// could not linearize after it, and the states it was tried in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counterexample {
    /// How many ops the longest linearizable prefix holds.
    pub prefix_len: usize,
    /// Its last steps (at most [`Counterexample::SHOWN`]), in order.
    pub prefix_tail: Vec<StepView>,
    /// The op that could not be linearized next.
    pub failed_op: Option<OpView>,
    /// The states in which it was tried (each rejected it).
    pub states: Vec<String>,
}

impl Counterexample {
    /// How many steps of the prefix a report shows.
    pub const SHOWN: usize = 20;
}

/// How far an undecided search got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Which limit stopped it.
    pub stopped_by: String,
    /// The most ops linearized at once.
    pub linearized: usize,
    /// Ops in the key.
    pub ops: usize,
    /// Configurations explored.
    pub explored: u64,
}

/// The result for one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyResult {
    /// The verdict.
    pub verdict: Verdict,
    /// What decided it.
    pub method: Method,
    /// For invalid keys: a one-line reason (from a fast path) when there is one; with a
    /// counterexample, it is about the op the counterexample cannot linearize.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For invalid keys: the counterexample, when the search found one within the limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
    /// For unknown keys: how far the search got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// Time the search may spend looking for a counterexample of a key a fast path found invalid.
const COUNTEREXAMPLE_TIME: Duration = Duration::from_secs(10);

/// Decides whether one key's ops are linearizable under `model`.
pub fn check_ops<M: Model>(
    model: &M,
    ops: &[Operation<M::Op>],
    limits: &Limits,
    strategy: Strategy,
) -> KeyResult {
    check_ops_capped(model, ops, limits, strategy, u64::MAX)
}

/// [`check_ops`] with the search bounded to `cap` configurations (then: unknown, stopped by
/// [`Stop::Effort`]).
pub(crate) fn check_ops_capped<M: Model>(
    model: &M,
    ops: &[Operation<M::Op>],
    limits: &Limits,
    strategy: Strategy,
    cap: u64,
) -> KeyResult {
    if ops.iter().all(|o| !o.is_known()) {
        // Every op may never have taken effect.
        return KeyResult {
            verdict: Verdict::Valid,
            method: Method::Empty,
            reason: None,
            counterexample: None,
            progress: None,
        };
    }
    if strategy == Strategy::Auto {
        match model.fast_check(ops) {
            Some(FastVerdict::Valid) => {
                return KeyResult {
                    verdict: Verdict::Valid,
                    method: Method::FastPath,
                    reason: None,
                    counterexample: None,
                    progress: None,
                }
            }
            Some(FastVerdict::Invalid(reason)) => {
                let mut cex_limits = limits.clone();
                let until = std::time::Instant::now() + COUNTEREXAMPLE_TIME;
                cex_limits.deadline = Some(limits.deadline.map_or(until, |d| d.min(until)));
                let counterexample = match search::search(model, ops, &cex_limits, u64::MAX) {
                    SearchOutcome::Invalid(deepest) => Some(counterexample(model, ops, &deepest)),
                    _ => None,
                };
                let reason = agreeing_reason(reason, counterexample.as_ref());
                return KeyResult {
                    verdict: Verdict::Invalid,
                    method: Method::FastPath,
                    reason: Some(reason),
                    counterexample,
                    progress: None,
                };
            }
            None => {}
        }
    }
    match search::search(model, ops, limits, cap) {
        SearchOutcome::Valid => KeyResult {
            verdict: Verdict::Valid,
            method: Method::Search,
            reason: None,
            counterexample: None,
            progress: None,
        },
        SearchOutcome::Invalid(deepest) => KeyResult {
            verdict: Verdict::Invalid,
            method: Method::Search,
            reason: None,
            counterexample: Some(counterexample(model, ops, &deepest)),
            progress: None,
        },
        SearchOutcome::Stopped {
            why,
            deepest,
            explored,
        } => KeyResult {
            verdict: Verdict::Unknown,
            method: Method::Search,
            reason: None,
            counterexample: None,
            progress: Some(Progress {
                stopped_by: why.to_string(),
                linearized: deepest.depth,
                ops: ops.len(),
                explored,
            }),
        },
    }
}

/// The reason to report with `counterexample`: the fast path's, if it is about the op the
/// counterexample cannot linearize (a reason about one op starts with `op N `), else one that
/// says why that op fails. The fast path may have found another violation than the one the
/// search runs into first (a later read of a value no op wrote, say); a reason naming one op
/// beside a counterexample naming another would send a reader to the wrong line.
fn agreeing_reason(fast: String, counterexample: Option<&Counterexample>) -> String {
    let Some((cex, failed)) = counterexample.and_then(|c| c.failed_op.as_ref().map(|op| (c, op)))
    else {
        return fast;
    };
    if fast.starts_with(&format!("op {} ", failed.invoke_index)) {
        return fast;
    }
    let states = match cex.states.as_slice() {
        [] => "any state".to_string(),
        [one] => format!("state {one}"),
        many => format!("any of the states {}", many.join(", ")),
    };
    format!(
        "op {} ({}) cannot be linearized after the longest linearizable prefix ({} ops), in {states}",
        failed.invoke_index, failed.op, cex.prefix_len
    )
}

fn view<M: Model>(model: &M, op: &Operation<M::Op>) -> OpView {
    OpView {
        invoke_index: op.invoke_index,
        complete_index: op.complete_index,
        process: op.process,
        op: model.show_op(&op.op),
    }
}

fn counterexample<M: Model>(
    model: &M,
    ops: &[Operation<M::Op>],
    deepest: &Deepest<M::State>,
) -> Counterexample {
    // Replay the prefix to show the state after each step.
    let mut state = model.init();
    let mut steps = Vec::with_capacity(deepest.prefix.len());
    for &i in &deepest.prefix {
        let op = &ops[i as usize];
        if let Some(next) = model.step(&state, &op.op) {
            state = next;
        }
        steps.push(StepView {
            op: view(model, op),
            state_after: model.show_state(&state),
        });
    }
    let skip = steps.len().saturating_sub(Counterexample::SHOWN);
    Counterexample {
        prefix_len: deepest.depth,
        prefix_tail: steps.split_off(skip),
        failed_op: deepest.blocked.map(|b| view(model, &ops[b as usize])),
        states: deepest.states.iter().map(|s| model.show_state(s)).collect(),
    }
}
