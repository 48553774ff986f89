//! Streaming validation of the client discipline of DESIGN.md.

use super::Located;
use crate::error::InputError;
use crate::history::{EventKind, Key, Process};
use crate::linear::budget::{alloc_bytes, Limits, MemoryExhausted, Tracker};
use hashbrown::HashMap;

struct InFlight {
    line: u64,
    /// The op's `f`, as an index into [`Validator::names`].
    f: u32,
    key: Option<Key>,
}

/// Checks, event by event, that a history follows DESIGN.md's rules for client processes: a
/// completion needs an op in flight on its process, with the same `f` and `key`; a process has
/// at most one op in flight; a process that completed with `info` is never used again; `index`
/// increases. Events of named processes (the nemesis) are not checked. Memory is O(processes),
/// and can be held to a budget ([`Validator::limit_memory`]).
pub struct Validator {
    file: String,
    in_flight: HashMap<u64, InFlight>,
    retired: HashMap<u64, u64>,
    /// Every `f` seen on an invoke, once (a history has a handful), so that an op in flight
    /// holds no string of its own.
    names: Vec<String>,
    last_index: Option<(u64, u64)>,
    budget: Option<Tracker>,
    exhausted: Option<MemoryExhausted>,
}

impl Validator {
    /// A validator naming `file` in its errors.
    pub fn new(file: &str) -> Validator {
        Validator {
            file: file.to_string(),
            in_flight: HashMap::new(),
            retired: HashMap::new(),
            names: Vec::new(),
            last_index: None,
            budget: None,
            exhausted: None,
        }
    }

    /// Reserves what the validator holds (ops in flight and retired processes) from `limits`'
    /// memory pool before it is allocated. When the pool refuses, the validator stops checking
    /// and [`Validator::exhausted`] says why.
    pub fn limit_memory(&mut self, limits: &Limits) {
        self.budget = Some(Tracker::new(limits));
    }

    /// Set when the memory budget was used up: the events after it were not checked.
    pub fn exhausted(&self) -> Option<&MemoryExhausted> {
        self.exhausted.as_ref()
    }

    /// Reserves `heap` bytes and the growth of the table of ops in flight (`retired`: of
    /// retired processes) before an insert; false, with [`Validator::exhausted`] set, when
    /// the pool refuses.
    fn reserve(&mut self, line: u64, heap: usize, retired: bool) -> bool {
        let Some(budget) = &mut self.budget else {
            return true;
        };
        let ok = budget.take(heap)
            && if retired {
                let (len, cap) = (self.retired.len(), self.retired.capacity());
                let table = &mut self.retired;
                budget.grow_table(len, cap, std::mem::size_of::<(u64, u64)>(), |more| {
                    table.reserve(more);
                    table.capacity()
                })
            } else {
                let (len, cap) = (self.in_flight.len(), self.in_flight.capacity());
                let table = &mut self.in_flight;
                budget.grow_table(len, cap, std::mem::size_of::<(u64, InFlight)>(), |more| {
                    table.reserve(more);
                    table.capacity()
                })
            };
        if !ok {
            self.exhausted = Some(MemoryExhausted {
                limit: budget.limit(),
                line,
                what: format!(
                    "the validator held {} bytes for {} ops in flight and {} retired processes",
                    budget.held(),
                    self.in_flight.len(),
                    self.retired.len()
                ),
            });
        }
        ok
    }

    fn heap(key: &Option<Key>) -> usize {
        match key {
            Some(Key::Str(k)) => alloc_bytes(k.len()),
            _ => 0,
        }
    }

    /// The index of `f` in the table of names, added (and reserved: its string and its slot,
    /// twice over for the table's doubling) when new; `None` when the pool refuses.
    fn name(&mut self, f: &str, line: u64) -> Option<u32> {
        if let Some(i) = self.names.iter().position(|n| n == f) {
            return Some(i as u32);
        }
        let bytes = alloc_bytes(f.len()) + 2 * std::mem::size_of::<String>();
        if !self.reserve(line, bytes, false) {
            return None;
        }
        self.names.push(f.to_string());
        Some((self.names.len() - 1) as u32)
    }

    fn err(&self, line: u64, column: u64, message: String) -> InputError {
        InputError::at(&self.file, line, column, message)
    }

    /// Checks the next event.
    pub fn check(&mut self, l: &Located) -> Result<(), InputError> {
        let ev = &l.event;
        if let Some((prev, prev_line)) = self.last_index {
            if ev.index <= prev {
                return Err(self.err(
                    l.line,
                    1,
                    format!(
                        "index {} does not increase (line {prev_line} has index {prev})",
                        ev.index
                    ),
                ));
            }
        }
        self.last_index = Some((ev.index, l.line));
        let Process::Client(p) = ev.process else {
            return Ok(());
        };
        if self.exhausted.is_some() {
            return Ok(());
        }
        if let Some(&line) = self.retired.get(&p) {
            return Err(self.err(
                l.line,
                1,
                format!("process {p} was retired by an info completion on line {line} and may not be used again (after info a worker continues as a new process)"),
            ));
        }
        if ev.kind == EventKind::Invoke {
            if let Some(open) = self.in_flight.get(&p) {
                return Err(self.err(
                    l.line,
                    1,
                    format!("process {p} invokes {:?} while its invoke of {:?} on line {} has not completed (expected one op in flight per process)", ev.f, self.names[open.f as usize], open.line),
                ));
            }
            let Some(f) = self.name(&ev.f, l.line) else {
                return Ok(());
            };
            if !self.reserve(l.line, Self::heap(&ev.key), false) {
                return Ok(());
            }
            self.in_flight.insert(
                p,
                InFlight {
                    line: l.line,
                    f,
                    key: ev.key.clone(),
                },
            );
            return Ok(());
        }
        let Some(open) = self.in_flight.remove(&p) else {
            return Err(self.err(
                l.line,
                1,
                format!("process {p} completes {:?} with {} but has no op in flight (expected an invoke first)", ev.f, ev.kind.as_str()),
            ));
        };
        let open_f = &self.names[open.f as usize];
        if *open_f != ev.f {
            return Err(self.err(
                l.line,
                l.f_column,
                format!(
                    "process {p} completes {:?} but invoked {:?} on line {}",
                    ev.f, open_f, open.line
                ),
            ));
        }
        if open.key != ev.key {
            let show = |k: &Option<Key>| {
                k.as_ref()
                    .map_or("no key".to_string(), |k| format!("key {k}"))
            };
            return Err(self.err(
                l.line,
                1,
                format!(
                    "process {p} completes with {} but invoked with {} on line {}",
                    show(&ev.key),
                    show(&open.key),
                    open.line
                ),
            ));
        }
        if let Some(budget) = &mut self.budget {
            budget.release(Self::heap(&open.key));
        }
        if ev.kind == EventKind::Info && self.reserve(l.line, 0, true) {
            self.retired.insert(p, l.line);
        }
        Ok(())
    }

    /// Ends the history. Ops still in flight are fine: they count as `info`. What the
    /// validator held is given back to the memory pool.
    pub fn finish(self) -> Result<(), InputError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, Value};

    fn at(line: u64, p: u64, kind: EventKind, f: &str) -> Located {
        Located {
            line,
            f_column: 1,
            value_column: 1,
            event: Event::client(line, p, kind, f, Value::Null),
        }
    }

    #[test]
    fn discipline() {
        let mut v = Validator::new("h");
        v.check(&at(1, 0, EventKind::Invoke, "read")).unwrap();
        let e = v.check(&at(2, 0, EventKind::Invoke, "read")).unwrap_err();
        assert!(e.to_string().contains("line 1 has not completed"), "{e}");
        let mut v = Validator::new("h");
        let e = v.check(&at(1, 0, EventKind::Ok, "read")).unwrap_err();
        assert!(
            e.to_string().starts_with("h:1:1: process 0 completes"),
            "{e}"
        );
        let mut v = Validator::new("h");
        v.check(&at(1, 0, EventKind::Invoke, "write")).unwrap();
        v.check(&at(2, 0, EventKind::Info, "write")).unwrap();
        let e = v.check(&at(3, 0, EventKind::Invoke, "read")).unwrap_err();
        assert!(
            e.to_string()
                .contains("retired by an info completion on line 2"),
            "{e}"
        );
        let mut v = Validator::new("h");
        v.check(&at(1, 0, EventKind::Invoke, "write")).unwrap();
        let e = v.check(&at(2, 0, EventKind::Ok, "read")).unwrap_err();
        assert!(e.to_string().contains("but invoked \"write\""), "{e}");
    }

    /// Ops in flight count against the memory budget; past it the validator stops and says
    /// why.
    #[test]
    fn ops_in_flight_count_against_the_memory_budget() {
        let limits = Limits::new(None, 256 << 10);
        let mut v = Validator::new("h");
        v.limit_memory(&limits);
        let mut line = 0;
        while v.exhausted().is_none() && line < 1_000_000 {
            line += 1;
            v.check(&at(line, line, EventKind::Invoke, "read")).unwrap();
        }
        let why = v.exhausted().expect("exhausted").to_string();
        assert!(
            why.contains(&format!("at line {line}: the validator held")),
            "{why}"
        );
        assert!(limits.memory.peak() <= 256 << 10);
        assert!(line > 100, "{line}");
        v.finish().unwrap();
        assert_eq!(
            limits.memory.used(),
            0,
            "given back when the validator is done"
        );
    }
}
