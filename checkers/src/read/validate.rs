//! Streaming validation of the client discipline of DESIGN.md.

use super::Located;
use crate::error::InputError;
use crate::history::{EventKind, Key, Process};
use std::collections::HashMap;

struct InFlight {
    line: u64,
    f: String,
    key: Option<Key>,
}

/// Checks, event by event, that a history follows DESIGN.md's rules for client processes: a
/// completion needs an op in flight on its process, with the same `f` and `key`; a process has
/// at most one op in flight; a process that completed with `info` is never used again; `index`
/// increases. Events of named processes (the nemesis) are not checked. Memory is O(processes).
pub struct Validator {
    file: String,
    in_flight: HashMap<u64, InFlight>,
    retired: HashMap<u64, u64>,
    last_index: Option<(u64, u64)>,
}

impl Validator {
    /// A validator naming `file` in its errors.
    pub fn new(file: &str) -> Validator {
        Validator {
            file: file.to_string(),
            in_flight: HashMap::new(),
            retired: HashMap::new(),
            last_index: None,
        }
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
                    format!("process {p} invokes {:?} while its invoke of {:?} on line {} has not completed (expected one op in flight per process)", ev.f, open.f, open.line),
                ));
            }
            self.in_flight.insert(
                p,
                InFlight {
                    line: l.line,
                    f: ev.f.clone(),
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
        if open.f != ev.f {
            return Err(self.err(
                l.line,
                l.f_column,
                format!(
                    "process {p} completes {:?} but invoked {:?} on line {}",
                    ev.f, open.f, open.line
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
        if ev.kind == EventKind::Info {
            self.retired.insert(p, l.line);
        }
        Ok(())
    }

    /// Ends the history. Ops still in flight are fine: they count as `info`.
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
}
