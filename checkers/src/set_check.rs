//! The set checker, as Jepsen's: given adds of unique elements and a final read of the whole
//! set, an element whose add was acknowledged (`ok`) but is missing from the final read is
//! **lost**; an element read that was never added is **unexpected**; an element whose add was
//! unknown (`info`) or `fail`ed but is present is **recovered** (allowed for `info`, and
//! reported). The history is valid iff nothing is lost or unexpected; without a successful
//! final read it is unknown.
//!
//! ```
//! use checkers::history::{Event, EventKind, Value};
//! use checkers::set_check::SetChecker;
//! use checkers::Verdict;
//! let mut c = SetChecker::default();
//! c.push(&Event::client(0, 0, EventKind::Invoke, "add", Value::Int(1)));
//! c.push(&Event::client(1, 0, EventKind::Ok, "add", Value::Int(1)));
//! c.push(&Event::client(2, 1, EventKind::Invoke, "read", Value::Null));
//! c.push(&Event::client(3, 1, EventKind::Ok, "read", Value::List(vec![])));
//! let r = c.finish();
//! assert_eq!(r.lost, vec![1]);
//! assert_eq!(r.valid, Verdict::Invalid);
//! ```

use crate::history::{Event, EventKind, Process, Value};
use crate::Verdict;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// Accumulates a set history event by event.
#[derive(Debug, Default)]
pub struct SetChecker {
    attempted: BTreeSet<i64>,
    acknowledged: BTreeSet<i64>,
    failed: BTreeSet<i64>,
    in_flight: HashMap<u64, i64>,
    final_read: Option<BTreeSet<i64>>,
}

/// The set checker's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetReport {
    /// Valid, invalid, or unknown (no successful final read).
    #[serde(with = "crate::verdict::json")]
    pub valid: Verdict,
    /// Elements whose add was attempted.
    pub attempted: usize,
    /// Elements whose add was acknowledged.
    pub acknowledged: usize,
    /// Size of the final read.
    pub read: usize,
    /// Acknowledged but missing from the final read.
    pub lost: Vec<i64>,
    /// Read but never added.
    pub unexpected: Vec<i64>,
    /// Not acknowledged (info or fail) but present.
    pub recovered: Vec<i64>,
    /// Added with `fail` (certainly not applied) yet present: a subset of `recovered` that is
    /// also an error.
    pub failed_but_present: Vec<i64>,
}

impl SetChecker {
    /// Takes one event (nemesis events are ignored).
    pub fn push(&mut self, e: &Event) {
        let Process::Client(p) = e.process else {
            return;
        };
        match (e.f.as_str(), e.kind) {
            ("add", EventKind::Invoke) => {
                if let Some(v) = e.value.as_int() {
                    self.attempted.insert(v);
                    self.in_flight.insert(p, v);
                }
            }
            ("add", kind) => {
                if let Some(v) = self.in_flight.remove(&p) {
                    match kind {
                        EventKind::Ok => {
                            self.acknowledged.insert(v);
                        }
                        EventKind::Fail => {
                            self.failed.insert(v);
                        }
                        _ => {}
                    }
                }
            }
            ("read", EventKind::Ok) => {
                if let Some(list) = e.value.as_list() {
                    self.final_read = Some(list.iter().filter_map(Value::as_int).collect());
                }
            }
            _ => {}
        }
    }

    /// The verdict, from the last successful read.
    pub fn finish(self) -> SetReport {
        let Some(read) = self.final_read else {
            return SetReport {
                valid: Verdict::Unknown,
                attempted: self.attempted.len(),
                acknowledged: self.acknowledged.len(),
                read: 0,
                lost: Vec::new(),
                unexpected: Vec::new(),
                recovered: Vec::new(),
                failed_but_present: Vec::new(),
            };
        };
        let lost: Vec<i64> = self.acknowledged.difference(&read).copied().collect();
        let unexpected: Vec<i64> = read.difference(&self.attempted).copied().collect();
        let recovered: Vec<i64> = read
            .iter()
            .filter(|v| self.attempted.contains(v) && !self.acknowledged.contains(v))
            .copied()
            .collect();
        let failed_but_present: Vec<i64> = read.intersection(&self.failed).copied().collect();
        SetReport {
            valid: if lost.is_empty() && unexpected.is_empty() && failed_but_present.is_empty() {
                Verdict::Valid
            } else {
                Verdict::Invalid
            },
            attempted: self.attempted.len(),
            acknowledged: self.acknowledged.len(),
            read: read.len(),
            lost,
            unexpected,
            recovered,
            failed_but_present,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: u64, p: u64, kind: EventKind, f: &str, v: Value) -> Event {
        Event::client(i, p, kind, f, v)
    }

    #[test]
    fn lost_unexpected_and_recovered() {
        let mut c = SetChecker::default();
        let mut i = 0;
        let mut add = |c: &mut SetChecker, p, v, kind| {
            c.push(&ev(i, p, EventKind::Invoke, "add", Value::Int(v)));
            c.push(&ev(i + 1, p, kind, "add", Value::Int(v)));
            i += 2;
        };
        add(&mut c, 0, 1, EventKind::Ok);
        add(&mut c, 0, 2, EventKind::Ok);
        add(&mut c, 1, 3, EventKind::Info);
        add(&mut c, 2, 4, EventKind::Info);
        c.push(&ev(100, 5, EventKind::Invoke, "read", Value::Null));
        c.push(&ev(
            101,
            5,
            EventKind::Ok,
            "read",
            Value::List(vec![Value::Int(1), Value::Int(3), Value::Int(9)]),
        ));
        let r = c.finish();
        assert_eq!(r.lost, vec![2]);
        assert_eq!(r.unexpected, vec![9]);
        assert_eq!(r.recovered, vec![3]);
        assert_eq!(r.valid, Verdict::Invalid);
        assert_eq!((r.attempted, r.acknowledged, r.read), (4, 2, 3));
    }

    #[test]
    fn valid_when_all_acknowledged_are_read_and_unknown_without_a_read() {
        let mut c = SetChecker::default();
        c.push(&ev(0, 0, EventKind::Invoke, "add", Value::Int(5)));
        c.push(&ev(1, 0, EventKind::Ok, "add", Value::Int(5)));
        let mut d = SetChecker::default();
        d.push(&ev(0, 0, EventKind::Invoke, "add", Value::Int(5)));
        assert_eq!(d.finish().valid, Verdict::Unknown);
        c.push(&ev(2, 1, EventKind::Invoke, "read", Value::Null));
        c.push(&ev(
            3,
            1,
            EventKind::Ok,
            "read",
            Value::List(vec![Value::Int(5)]),
        ));
        assert_eq!(c.finish().valid, Verdict::Valid);
    }
}
