//! What the report needs from a history, read in one streaming pass with bounded memory:
//! a sample of op latencies (at most [`MAX_POINTS`]), completions per second by outcome, and
//! the fault intervals.

use checkers::history::{EventKind, Process, Value};
use checkers::read::{self, Format};
use nemesis::event::NemesisEvent;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The most latency points kept (evenly thinned beyond that).
pub const MAX_POINTS: usize = 20_000;

/// One op's latency.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Seconds since the start, at the invoke.
    pub t: f64,
    /// Milliseconds from invoke to completion.
    pub latency_ms: f64,
    /// How it ended.
    pub kind: EventKind,
}

/// A fault, from its start event to its stop (or to the end of the run).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultInterval {
    /// partition, kill, pause, clock, netem.
    pub kind: String,
    /// Seconds since the start.
    pub start: f64,
    /// Seconds since the start (the end of the run when it was never stopped).
    pub end: f64,
    /// The fault's value, as JSON.
    pub what: String,
    /// A note from its start event (e.g. that it was applied late), or empty.
    pub note: String,
    /// A note from its stop event (that it was healed from outside the run, when and by
    /// whom), or empty.
    pub end_note: String,
    /// Whether another process healed it (`faultline heal --force` during the run); `end`
    /// is then when the fault journal says it was healed.
    pub healed_from_outside: bool,
}

/// A scheduled step that was not applied (a `fault-skipped` or `fault-refused` event).
#[derive(Debug, Clone, PartialEq)]
pub struct NotApplied {
    /// Seconds since the start, when it was given up.
    pub t: f64,
    /// `skipped` or `refused`.
    pub outcome: String,
    /// The step, as JSON (its slot and what it was).
    pub what: String,
    /// Why.
    pub why: String,
}

/// The report's data.
#[derive(Debug, Default)]
pub struct RunData {
    /// Sampled latencies.
    pub points: Vec<Point>,
    /// Every `stride`-th op is in `points`.
    pub stride: usize,
    /// Completions per second: ok, fail, info.
    pub per_second: Vec<[u32; 3]>,
    /// Fault intervals.
    pub faults: Vec<FaultInterval>,
    /// Scheduled steps that were not applied, in history order.
    pub not_applied: Vec<NotApplied>,
    /// Totals: ok, fail, info.
    pub totals: [u64; 3],
    /// Seconds from the first to the last event.
    pub duration: f64,
    /// For each watched element (see [`RunData::read_watching`]) whose add was acknowledged:
    /// the element and when (seconds since the start) its `ok` came, in history order.
    pub watched_acks: Vec<(i64, f64)>,
}

fn secs(t: Option<u64>) -> f64 {
    t.unwrap_or(0) as f64 / 1e9
}

/// When a fault healed from outside the run was healed (seconds since the start), from its
/// stop event's value `{"healed_from_outside": {"at_ms": ...}}`.
fn healed_from_outside_at(value: &Value) -> Option<f64> {
    let Value::Map(m) = value else { return None };
    let (_, Value::Map(h)) = m.iter().find(|(k, _)| k == "healed_from_outside")? else {
        return None;
    };
    let (_, at) = h.iter().find(|(k, _)| k == "at_ms")?;
    at.as_int().map(|ms| ms as f64 / 1e3)
}

impl RunData {
    /// Reads a history.jsonl (a torn last line is accepted).
    pub fn read(path: &Path) -> anyhow::Result<RunData> {
        Self::read_watching(path, &HashSet::new())
    }

    /// [`RunData::read`], also noting when the add of each element in `watch` (the set
    /// checker's lost elements) was acknowledged, so that the report can set the losses
    /// against the faults.
    pub fn read_watching(path: &Path, watch: &HashSet<i64>) -> anyhow::Result<RunData> {
        let mut r = Reading {
            d: RunData {
                stride: 1,
                ..RunData::default()
            },
            watch,
            invoked: HashMap::new(),
            open: HashMap::new(),
            seen_ops: 0,
        };
        for ev in read::open(path, Format::Jsonl)? {
            let Ok(ev) = ev else { break };
            let e = ev.event;
            let t = secs(e.time);
            r.d.duration = r.d.duration.max(t);
            match &e.process {
                Process::Client(p) => r.client(*p, &e, t),
                Process::Named(_) => r.nemesis(&e, t),
            }
        }
        Ok(r.finish())
    }
}

/// A history being read into [`RunData`].
struct Reading<'w> {
    d: RunData,
    /// The adds whose acknowledgement is noted.
    watch: &'w HashSet<i64>,
    /// When each process's op in flight was invoked.
    invoked: HashMap<u64, f64>,
    /// The faults started and not yet healed, by kind: start, value and note.
    open: HashMap<String, (f64, String, String)>,
    /// Completions seen, for sampling the latency points.
    seen_ops: usize,
}

impl Reading<'_> {
    /// A client's event at `t` seconds.
    fn client(&mut self, p: u64, e: &checkers::history::Event, t: f64) {
        let d = &mut self.d;
        if e.kind == EventKind::Invoke {
            self.invoked.insert(p, t);
            return;
        }
        let Some(t0) = self.invoked.remove(&p) else {
            return;
        };
        let slot = match e.kind {
            EventKind::Ok => 0,
            EventKind::Fail => 1,
            _ => 2,
        };
        d.totals[slot] += 1;
        if e.kind == EventKind::Ok && e.f == "add" {
            if let Some(v) = e.value.as_int().filter(|v| self.watch.contains(v)) {
                d.watched_acks.push((v, t));
            }
        }
        let sec = t as usize;
        if d.per_second.len() <= sec {
            d.per_second.resize(sec + 1, [0; 3]);
        }
        d.per_second[sec][slot] += 1;
        if self.seen_ops.is_multiple_of(d.stride) {
            d.points.push(Point {
                t: t0,
                latency_ms: (t - t0) * 1e3,
                kind: e.kind,
            });
            if d.points.len() >= 2 * MAX_POINTS {
                // Keep every other point and sample half as often from now on.
                let mut i = 0;
                d.points.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                d.stride *= 2;
            }
        }
        self.seen_ops += 1;
    }

    /// A nemesis event at `t` seconds.
    fn nemesis(&mut self, e: &checkers::history::Event, t: f64) {
        let what = serde_json::to_string(&e.value).unwrap_or_default();
        let note = e.error.clone().unwrap_or_default();
        match NemesisEvent::parse(&e.f) {
            Some(event @ (NemesisEvent::Skipped | NemesisEvent::Refused)) => {
                self.d.not_applied.push(NotApplied {
                    t,
                    outcome: if event == NemesisEvent::Skipped {
                        "skipped"
                    } else {
                        "refused"
                    }
                    .to_string(),
                    what,
                    why: note,
                });
            }
            Some(NemesisEvent::Start(kind)) => {
                self.open.insert(kind, (t, what, note));
            }
            Some(NemesisEvent::Stop(kind)) => {
                if let Some((start, what, note)) = self.open.remove(&kind) {
                    let outside = healed_from_outside_at(&e.value);
                    self.d.faults.push(FaultInterval {
                        kind,
                        start,
                        end: outside.map_or(t, |at| at.clamp(start, t.max(start))),
                        what,
                        note,
                        end_note: e.error.clone().unwrap_or_default(),
                        healed_from_outside: outside.is_some(),
                    });
                }
            }
            Some(NemesisEvent::HealAll) => self.close_open_faults(t),
            None => {}
        }
    }

    /// Ends every fault still open at `t`.
    fn close_open_faults(&mut self, t: f64) {
        for (kind, (start, what, note)) in self.open.drain() {
            self.d.faults.push(FaultInterval {
                kind,
                start,
                end: t,
                what,
                note,
                end_note: String::new(),
                healed_from_outside: false,
            });
        }
    }

    /// The data read: faults still open end with the history, all in order of start.
    fn finish(mut self) -> RunData {
        self.close_open_faults(self.d.duration);
        self.d.faults.sort_by(|a, b| {
            a.start
                .partial_cmp(&b.start)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        self.d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_rates_and_faults_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.jsonl");
        let s = 1_000_000_000u64;
        let lines = [
            format!(
                r#"{{"index":0,"time":{},"process":0,"type":"invoke","f":"write","value":1}}"#,
                s / 2
            ),
            format!(
                r#"{{"index":1,"time":{},"process":"nemesis","type":"info","f":"start-partition","value":{{"n1":["n2"]}}}}"#,
                s
            ),
            format!(
                r#"{{"index":2,"time":{},"process":0,"type":"ok","f":"write","value":1}}"#,
                s / 2 + 3_000_000
            ),
            format!(
                r#"{{"index":3,"time":{},"process":1,"type":"invoke","f":"read","value":null}}"#,
                2 * s
            ),
            format!(
                r#"{{"index":4,"time":{},"process":1,"type":"info","f":"read","value":null}}"#,
                2 * s + 500_000_000
            ),
            format!(
                r#"{{"index":5,"time":{},"process":"nemesis","type":"info","f":"stop-partition","value":null}}"#,
                3 * s
            ),
            format!(
                r#"{{"index":6,"time":{},"process":"nemesis","type":"info","f":"fault-skipped","value":{{"at_ms":3000,"step":"start-kill"}},"error":"its slot at 3.0 s passed while an earlier apply overran"}}"#,
                4 * s
            ),
        ];
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        let d = RunData::read(&p).unwrap();
        assert_eq!(d.totals, [1, 0, 1]);
        assert_eq!(d.points.len(), 2);
        assert!((d.points[0].latency_ms - 3.0).abs() < 1e-6);
        assert_eq!(d.per_second[0], [1, 0, 0]);
        assert_eq!(d.per_second[2], [0, 0, 1]);
        assert_eq!(d.faults.len(), 1);
        assert_eq!(d.faults[0].kind, "partition");
        assert_eq!(d.not_applied.len(), 1);
        assert_eq!(d.not_applied[0].outcome, "skipped");
        assert!(d.not_applied[0].what.contains("start-kill"));
        assert!(d.not_applied[0].why.contains("overran"));
        assert!((d.faults[0].start - 1.0).abs() < 1e-9 && (d.faults[0].end - 3.0).abs() < 1e-9);
        assert!(d.watched_acks.is_empty());
    }

    /// Disk faults are drawn as intervals of their own kind, by name, like the others.
    #[test]
    fn disk_faults_are_intervals_of_their_kind() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.jsonl");
        let mut lines = Vec::new();
        for (i, kind) in ["disk-full", "disk-error", "disk-slow"].iter().enumerate() {
            let t = (2 * i as u64 + 1) * 1_000_000_000;
            lines.push(format!(
                r#"{{"index":{},"time":{t},"process":"nemesis","type":"info","f":"start-{kind}","value":{{"fault":"{kind}","nodes":["n1"]}}}}"#,
                2 * i
            ));
            lines.push(format!(
                r#"{{"index":{},"time":{},"process":"nemesis","type":"info","f":"stop-{kind}","value":null}}"#,
                2 * i + 1,
                t + 500_000_000
            ));
        }
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        let d = RunData::read(&p).unwrap();
        let kinds: Vec<&str> = d.faults.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(kinds, ["disk-full", "disk-error", "disk-slow"]);
        for (i, f) in d.faults.iter().enumerate() {
            assert!((f.start - (2 * i + 1) as f64).abs() < 1e-9, "{f:?}");
            assert!((f.end - f.start - 0.5).abs() < 1e-9, "{f:?}");
            assert!(f.what.contains(&f.kind), "{f:?}");
            assert!(nemesis::Kind::from_name(&f.kind).is_some());
        }
    }

    #[test]
    fn acknowledgements_of_watched_adds_are_noted_with_their_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.jsonl");
        let lines = [
            r#"{"index":0,"time":1000000000,"process":0,"type":"invoke","f":"add","value":4}"#,
            r#"{"index":1,"time":1500000000,"process":0,"type":"ok","f":"add","value":4}"#,
            r#"{"index":2,"time":2000000000,"process":0,"type":"invoke","f":"add","value":5}"#,
            r#"{"index":3,"time":2500000000,"process":0,"type":"ok","f":"add","value":5}"#,
            r#"{"index":4,"time":3000000000,"process":1,"type":"invoke","f":"add","value":6}"#,
            r#"{"index":5,"time":3500000000,"process":1,"type":"info","f":"add","value":6}"#,
        ];
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        let d = RunData::read_watching(&p, &HashSet::from([5, 6])).unwrap();
        assert_eq!(d.watched_acks, vec![(5, 2.5)]);
    }
}
