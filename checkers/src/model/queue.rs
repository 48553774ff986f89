//! The queue model: FIFO `enqueue` (integer) and `dequeue` (integer, or null when empty).

use super::{describe, Model, Outcome};
use crate::history::Value;
use std::collections::VecDeque;
use std::sync::Arc;

/// An operation on a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueOp {
    /// Append an element.
    Enqueue(i64),
    /// Remove the head; `Some(result)` when the result is known (`None` inside = empty queue).
    Dequeue(Option<Option<i64>>),
}

/// A FIFO queue of integers, initially empty.
#[derive(Debug, Clone, Default)]
pub struct Queue;

impl Model for Queue {
    /// The elements, head first.
    type State = Arc<VecDeque<i64>>;
    type Op = QueueOp;

    fn name(&self) -> &'static str {
        "queue"
    }

    fn functions(&self) -> &'static [&'static str] {
        &["enqueue", "dequeue"]
    }

    fn init(&self) -> Self::State {
        Arc::new(VecDeque::new())
    }

    fn parse_op(
        &self,
        f: &str,
        invoke: &Value,
        outcome: Outcome<'_>,
    ) -> Result<Option<QueueOp>, String> {
        match f {
            "enqueue" => invoke
                .as_int()
                .map(|e| Some(QueueOp::Enqueue(e)))
                .ok_or_else(|| format!("enqueue: expected an integer, found {}", describe(invoke))),
            "dequeue" => match outcome {
                Outcome::Unknown => Ok(Some(QueueOp::Dequeue(None))),
                Outcome::Ok(Value::Null) => Ok(Some(QueueOp::Dequeue(Some(None)))),
                Outcome::Ok(Value::Int(i)) => Ok(Some(QueueOp::Dequeue(Some(Some(*i))))),
                Outcome::Ok(v) => Err(format!(
                    "dequeue result: expected an integer or null, found {}",
                    describe(v)
                )),
            },
            other => Err(format!(
                "the queue model has no function {other:?} (expected one of enqueue, dequeue)"
            )),
        }
    }

    fn step(&self, state: &Self::State, op: &QueueOp) -> Option<Self::State> {
        match *op {
            QueueOp::Enqueue(e) => {
                let mut q = (**state).clone();
                q.push_back(e);
                Some(Arc::new(q))
            }
            QueueOp::Dequeue(result) => {
                let head = state.front().copied();
                if result.is_some_and(|r| r != head) {
                    return None;
                }
                if head.is_none() {
                    return Some(state.clone());
                }
                let mut q = (**state).clone();
                q.pop_front();
                Some(Arc::new(q))
            }
        }
    }

    fn show_op(&self, op: &QueueOp) -> String {
        match *op {
            QueueOp::Enqueue(e) => format!("enqueue {e}"),
            QueueOp::Dequeue(None) => "dequeue (unknown outcome)".to_string(),
            QueueOp::Dequeue(Some(None)) => "dequeue -> empty".to_string(),
            QueueOp::Dequeue(Some(Some(v))) => format!("dequeue -> {v}"),
        }
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        state.len() * 8 + 32
    }

    fn show_state(&self, state: &Self::State) -> String {
        format!("{:?}", state.iter().collect::<Vec<_>>())
    }
}
