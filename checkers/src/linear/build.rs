//! Pairs invocations with completions and groups the resulting ops by key.

use super::budget::{alloc_bytes, table_bytes, Limits, MemoryExhausted, Tracker};
use super::ops::Operation;
use crate::error::InputError;
use crate::history::{Event, EventKind, Key, Process, Value};
use crate::model::{Model, Outcome};
use hashbrown::HashMap;

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

/// Heap bytes a value holds (an estimate: its strings' and lists' allocations).
pub(crate) fn heap_bytes(v: &Value) -> usize {
    match v {
        Value::Str(s) => alloc_bytes(s.capacity()),
        Value::List(items) => {
            alloc_bytes(items.capacity() * std::mem::size_of::<Value>())
                + items.iter().map(heap_bytes).sum::<usize>()
        }
        Value::Map(entries) => {
            alloc_bytes(entries.capacity() * std::mem::size_of::<(String, Value)>())
                + entries
                    .iter()
                    .map(|(k, v)| alloc_bytes(k.capacity()) + heap_bytes(v))
                    .sum::<usize>()
        }
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => 0,
    }
}

/// Heap bytes a key holds.
pub(crate) fn key_bytes(k: &Option<Key>) -> usize {
    match k {
        Some(Key::Str(s)) => alloc_bytes(s.len()),
        _ => 0,
    }
}

/// What the builder reserved from a memory pool, and for what.
struct Budget {
    tracker: Tracker,
    /// Bytes of the table of ops in flight and of their contents (freed by `finish`).
    pending: usize,
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
    budget: Option<Budget>,
    exhausted: Option<MemoryExhausted>,
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
            budget: None,
            exhausted: None,
        }
    }

    /// Reserves what the builder holds (the table of ops in flight with their values, and the
    /// built ops) from `limits`' memory pool before it is allocated, so that a history with
    /// millions of ops in flight stays within `--memory-limit` too. When the pool refuses,
    /// the builder stops taking events and [`OpsBuilder::exhausted`] says why; the bytes the
    /// built ops hold stay reserved after [`OpsBuilder::finish`], for as long as `limits`.
    pub fn limit_memory(&mut self, limits: &Limits) {
        self.budget = Some(Budget {
            tracker: Tracker::new(limits),
            pending: 0,
        });
    }

    /// Set when the memory budget was used up: the events after it were not taken, and the
    /// history's verdict is unknown.
    pub fn exhausted(&self) -> Option<&MemoryExhausted> {
        self.exhausted.as_ref()
    }

    /// Reserves `bytes` (for the ops in flight when `pending`); false, with
    /// [`OpsBuilder::exhausted`] set, when the pool refuses.
    fn reserve(&mut self, bytes: usize, pending: bool, line: u64) -> bool {
        let Some(budget) = &mut self.budget else {
            return true;
        };
        if budget.tracker.take(bytes) {
            if pending {
                budget.pending += bytes;
            }
            return true;
        }
        self.run_out(line);
        false
    }

    /// Records that the budget was used up at `line`.
    fn run_out(&mut self, line: u64) {
        let Some(budget) = &self.budget else { return };
        let ops: usize = self.by_key.iter().map(|(_, o)| o.len()).sum();
        self.exhausted = Some(MemoryExhausted {
            limit: budget.tracker.limit(),
            line,
            what: format!(
                "the ops builder held {} bytes for {} ops in flight and {ops} ops built",
                budget.tracker.held(),
                self.pending.len()
            ),
        });
    }

    /// Returns the bytes of an op that is no longer in flight.
    fn release_pending(&mut self, bytes: usize) {
        if let Some(budget) = &mut self.budget {
            budget.tracker.release(bytes);
            budget.pending = budget.pending.saturating_sub(bytes);
        }
    }

    /// Heap bytes of an op in flight.
    fn pending_heap(f: &str, value: &Value, key: &Option<Key>) -> usize {
        alloc_bytes(f.len()) + heap_bytes(value) + key_bytes(key)
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
        let at = Where {
            line,
            f_column,
            value_column,
        };
        match self.next_rank(ev) {
            None => Ok(()),
            Some((process, rank)) if ev.kind == EventKind::Invoke => {
                let parts = (ev.f.clone(), ev.value.clone(), ev.key.clone());
                self.invoke(process, rank, ev.index, parts, at)
            }
            Some((process, rank)) => self.complete(ev, process, rank, at),
        }
    }

    /// [`OpsBuilder::push`] of an event the builder may keep: an invocation's `f`, value and
    /// key move into the table of ops in flight instead of being copied.
    pub fn push_owned(
        &mut self,
        ev: Event,
        line: u64,
        f_column: u64,
        value_column: u64,
    ) -> Result<(), InputError> {
        let at = Where {
            line,
            f_column,
            value_column,
        };
        match self.next_rank(&ev) {
            None => Ok(()),
            Some((process, rank)) if ev.kind == EventKind::Invoke => {
                self.invoke(process, rank, ev.index, (ev.f, ev.value, ev.key), at)
            }
            Some((process, rank)) => self.complete(&ev, process, rank, at),
        }
    }

    /// The client process of `ev` and its rank, or `None` for an event the builder skips (a
    /// named process's, or any after the budget was used up).
    fn next_rank(&mut self, ev: &Event) -> Option<(u64, u64)> {
        let Process::Client(process) = ev.process else {
            return None;
        };
        if self.exhausted.is_some() {
            return None;
        }
        let rank = self.rank;
        self.rank += 1;
        Some((process, rank))
    }

    /// Puts an invocation (`f`, value and key) in flight.
    fn invoke(
        &mut self,
        process: u64,
        rank: u64,
        index: u64,
        (f, value, key): (String, Value, Option<Key>),
        located: Where,
    ) -> Result<(), InputError> {
        if !self.model.functions().contains(&f.as_str()) {
            return Err(InputError::at(
                &self.file,
                located.line,
                located.f_column,
                format!(
                    "the {} model has no function {:?} (expected one of: {})",
                    self.model.name(),
                    f,
                    self.model.functions().join(", ")
                ),
            ));
        }
        // Reserve the entry's contents, and the table's growth before it grows.
        if !self.reserve(Self::pending_heap(&f, &value, &key), true, located.line) {
            return Ok(());
        }
        if let Some(budget) = &mut self.budget {
            let entry = std::mem::size_of::<(u64, Pending)>();
            let (len, capacity) = (self.pending.len(), self.pending.capacity());
            let before = budget.tracker.held();
            let pending = &mut self.pending;
            let grown = budget.tracker.grow_table(len, capacity, entry, |more| {
                pending.reserve(more);
                pending.capacity()
            });
            budget.pending += budget.tracker.held() - before;
            if !grown {
                self.run_out(located.line);
                return Ok(());
            }
        }
        self.counts.invoked += 1;
        self.pending.insert(
            process,
            Pending {
                rank,
                index,
                f,
                value,
                key,
                line: located.line,
                value_column: located.value_column,
            },
        );
        Ok(())
    }

    /// Completes the op in flight on `process` with `ev`.
    fn complete(
        &mut self,
        ev: &Event,
        process: u64,
        rank: u64,
        located: Where,
    ) -> Result<(), InputError> {
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
        self.release_pending(Self::pending_heap(&inv.f, &inv.value, &inv.key));
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
            // The op's own contents, estimated by the values it was parsed from.
            let contents = heap_bytes(&inv.value) + heap_bytes(&ev.value);
            if !self.reserve_op(&inv.key, contents, located.line) {
                return Ok(());
            }
            let ret = (ev.kind == EventKind::Ok).then_some(rank);
            self.add(inv, op, ret, process, Some(ev.index));
        }
        Ok(())
    }

    /// Reserves one more built op of `key` (with `contents` heap bytes), and the growth of its
    /// key's list (made now, so that the list does not grow past what was reserved).
    fn reserve_op(&mut self, key: &Option<Key>, contents: usize, line: u64) -> bool {
        if self.budget.is_none() {
            return true;
        }
        let op = std::mem::size_of::<Operation<M::Op>>();
        let mut bytes = contents;
        let slot = self.keys.get(key).copied();
        let (len, cap) = slot.map_or((0, 0), |i| {
            (self.by_key[i].1.len(), self.by_key[i].1.capacity())
        });
        let grow_to = (len == cap).then(|| (cap * 2).max(8));
        if let Some(to) = grow_to {
            bytes += (to - cap) * op;
        }
        if slot.is_none() {
            bytes += std::mem::size_of::<KeyOps<M::Op>>() * 2
                + table_bytes(1, std::mem::size_of::<(Option<Key>, usize)>())
                + 2 * key_bytes(key);
        }
        if !self.reserve(bytes, false, line) {
            return false;
        }
        if let (Some(i), Some(to)) = (slot, grow_to) {
            self.by_key[i].1.reserve_exact(to - len);
        }
        true
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

    /// Finishes: invocations still in flight become ops with an unknown outcome. After the
    /// memory budget was used up ([`OpsBuilder::exhausted`]), the ops built so far.
    pub fn finish(mut self) -> Result<(OpsByKey<M::Op>, OpCounts), InputError> {
        let mut open: Vec<(u64, Pending)> = self.pending.drain().collect();
        open.sort_by_key(|(_, p)| p.rank);
        for (process, inv) in open {
            if self.exhausted.is_some() {
                break;
            }
            self.counts.info += 1;
            let parsed = self
                .model
                .parse_op(&inv.f, &inv.value, Outcome::Unknown)
                .map_err(|m| InputError::at(&self.file, inv.line, inv.value_column, m))?;
            if let Some(op) = parsed {
                if !self.reserve_op(&inv.key, heap_bytes(&inv.value), inv.line) {
                    break;
                }
                self.add(inv, op, None, process, None);
            }
        }
        // The table of ops in flight is freed; the built ops stay reserved while the pool
        // lives (the search runs on them).
        if let Some(mut budget) = self.budget.take() {
            budget.tracker.release(budget.pending);
            budget.tracker.keep();
        }
        let mut by_key = self.by_key;
        by_key.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, ops) in by_key.iter_mut() {
            ops.sort_by_key(|o| o.call);
        }
        Ok((by_key, self.counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;
    use crate::model::Register;

    fn invoke(p: u64) -> Event {
        Event {
            index: p,
            time: None,
            process: Process::Client(p),
            kind: EventKind::Invoke,
            f: "write".into(),
            key: None,
            value: Value::Int(p as i64),
            error: None,
            node: None,
        }
    }

    /// Ops in flight are reserved from the memory pool: past the budget the builder stops and
    /// says why; within it, the built ops stay reserved after `finish` and the table of ops in
    /// flight is given back.
    #[test]
    fn ops_in_flight_count_against_the_memory_budget() {
        let model = Register::cas_register();
        let limits = Limits::new(None, 1 << 20);
        let mut b = OpsBuilder::new(&model, "t");
        b.limit_memory(&limits);
        let mut taken = 0;
        for p in 0..1_000_000 {
            b.push(&invoke(p), p + 1, 1, 1).expect("push");
            if b.exhausted().is_some() {
                break;
            }
            taken += 1;
        }
        let why = b
            .exhausted()
            .expect("a million ops in flight exceed 1 MiB")
            .clone();
        assert!(taken > 1000 && taken < 100_000, "{taken}");
        assert!(
            why.what.contains(&format!("for {taken} ops in flight")),
            "{why}"
        );
        assert_eq!(why.line, taken as u64 + 1);
        assert_eq!(why.limit, 1 << 20);
        assert!(limits.memory.peak() <= 1 << 20);
        assert!(why.to_string().contains("--memory-limit"), "{why}");

        let limits = Limits::new(None, 64 << 20);
        let mut b = OpsBuilder::new(&model, "t");
        b.limit_memory(&limits);
        for p in 0..10_000 {
            b.push(&invoke(p), p + 1, 1, 1).expect("push");
        }
        assert!(b.exhausted().is_none());
        let in_flight = limits.memory.used();
        let (by_key, counts) = b.finish().expect("finish");
        assert_eq!((by_key[0].1.len(), counts.info), (10_000, 10_000));
        let kept = limits.memory.used();
        assert!(kept > 10_000 * std::mem::size_of::<Operation<<Register as Model>::Op>>());
        assert!(kept < in_flight, "in flight {in_flight}, kept {kept}");
    }
}
