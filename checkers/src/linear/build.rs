//! Pairs invocations with completions and groups the resulting ops by key.

use super::ops::Operation;
use crate::error::InputError;
use crate::history::{Event, EventKind, Key, Process, Value};
use crate::model::{Model, Outcome};
use std::collections::HashMap;

/// One key's ops (`None` for an unkeyed history).
pub type KeyOps<O> = (Option<Key>, Vec<Operation<O>>);

/// Ops grouped by key, in key order.
pub type OpsByKey<O> = Vec<KeyOps<O>>;

struct Where {
    line: u64,
    f_column: u64,
    value_column: u64,
}

struct Pending {
    rank: u64,
    index: u64,
    f: String,
    value: Value,
    key: Option<Key>,
    line: u64,
    value_column: u64,
}

/// Counts of what a history held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Client invocations.
    pub invoked: u64,
    /// `ok` completions.
    pub ok: u64,
    /// `fail` completions (dropped: they did not take effect).
    pub fail: u64,
    /// `info` completions and invocations that never completed.
    pub info: u64,
}

/// Builds a model's ops from a stream of events, one event at a time.
///
/// Events of non-client processes (the nemesis) are skipped. `fail` ops are dropped; `info`
/// ops and invocations that never complete become ops with an unknown outcome. The builder
/// assumes the stream passed [`crate::read::Validator`], but never panics if it did not.
pub struct OpsBuilder<'m, M: Model> {
    model: &'m M,
    file: String,
    rank: u64,
    pending: HashMap<u64, Pending>,
    keys: HashMap<Option<Key>, usize>,
    by_key: OpsByKey<M::Op>,
    counts: OpCounts,
}

impl<'m, M: Model> OpsBuilder<'m, M> {
    /// A builder for `model`, naming `file` in errors.
    pub fn new(model: &'m M, file: &str) -> Self {
        OpsBuilder {
            model,
            file: file.to_string(),
            rank: 0,
            pending: HashMap::new(),
            keys: HashMap::new(),
            by_key: Vec::new(),
            counts: OpCounts::default(),
        }
    }

    /// Adds one event read at `line`, whose `f` and `value` fields start at the given columns
    /// (used to point errors at them).
    pub fn push(
        &mut self,
        ev: &Event,
        line: u64,
        f_column: u64,
        value_column: u64,
    ) -> Result<(), InputError> {
        let located = Where {
            line,
            f_column,
            value_column,
        };
        let Process::Client(process) = ev.process else {
            return Ok(());
        };
        let rank = self.rank;
        self.rank += 1;
        if ev.kind == EventKind::Invoke {
            if !self.model.functions().contains(&ev.f.as_str()) {
                return Err(InputError::at(
                    &self.file,
                    located.line,
                    located.f_column,
                    format!(
                        "the {} model has no function {:?} (expected one of: {})",
                        self.model.name(),
                        ev.f,
                        self.model.functions().join(", ")
                    ),
                ));
            }
            self.counts.invoked += 1;
            self.pending.insert(
                process,
                Pending {
                    rank,
                    index: ev.index,
                    f: ev.f.clone(),
                    value: ev.value.clone(),
                    key: ev.key.clone(),
                    line: located.line,
                    value_column: located.value_column,
                },
            );
            return Ok(());
        }
        let Some(inv) = self.pending.remove(&process) else {
            return Err(InputError::at(
                &self.file,
                located.line,
                1,
                format!(
                    "process {process} completes {:?} but has no op in flight",
                    ev.f
                ),
            ));
        };
        let outcome = match ev.kind {
            EventKind::Ok => {
                self.counts.ok += 1;
                Outcome::Ok(&ev.value)
            }
            EventKind::Info => {
                self.counts.info += 1;
                Outcome::Unknown
            }
            _ => {
                self.counts.fail += 1;
                return Ok(());
            }
        };
        let (line, column) = match outcome {
            Outcome::Ok(_) => (located.line, located.value_column),
            Outcome::Unknown => (inv.line, inv.value_column),
        };
        let parsed = self
            .model
            .parse_op(&inv.f, &inv.value, outcome)
            .map_err(|m| InputError::at(&self.file, line, column, m))?;
        if let Some(op) = parsed {
            let ret = (ev.kind == EventKind::Ok).then_some(rank);
            self.add(inv, op, ret, process, Some(ev.index));
        }
        Ok(())
    }

    fn add(
        &mut self,
        inv: Pending,
        op: M::Op,
        ret: Option<u64>,
        process: u64,
        complete_index: Option<u64>,
    ) {
        let next = self.by_key.len();
        let slot = *self.keys.entry(inv.key.clone()).or_insert(next);
        if slot == next {
            self.by_key.push((inv.key, Vec::new()));
        }
        self.by_key[slot].1.push(Operation {
            op,
            call: inv.rank,
            ret,
            process,
            invoke_index: inv.index,
            complete_index,
        });
    }

    /// Finishes: invocations still in flight become ops with an unknown outcome.
    pub fn finish(mut self) -> Result<(OpsByKey<M::Op>, OpCounts), InputError> {
        let mut open: Vec<(u64, Pending)> = self.pending.drain().collect();
        open.sort_by_key(|(_, p)| p.rank);
        for (process, inv) in open {
            self.counts.info += 1;
            let parsed = self
                .model
                .parse_op(&inv.f, &inv.value, Outcome::Unknown)
                .map_err(|m| InputError::at(&self.file, inv.line, inv.value_column, m))?;
            if let Some(op) = parsed {
                self.add(inv, op, None, process, None);
            }
        }
        let mut by_key = self.by_key;
        by_key.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, ops) in by_key.iter_mut() {
            ops.sort_by_key(|o| o.call);
        }
        Ok((by_key, self.counts))
    }
}
