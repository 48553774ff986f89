//! Test power: how much a run exercised, measured from its history and its fault schedule:
//! achieved concurrency (ops per worker and per node, ops in flight), faults scheduled,
//! applied, refused and skipped per kind, availability (ok ops per second, windows with no ok
//! op, the time to the first ok op after each heal) and keys read back after the last heal.
//! The run records it in results.json (`power`) and the report beside the verdict; a valid
//! run that tested too little is `valid, weak: <why>` ([`Power::weak`]).

use checkers::history::{Event, EventKind, Key, Process};
use nemesis::event::NemesisEvent;
use nemesis::schedule::{Action, Schedule};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// A stretch without any ok op shorter than this is not reported as unavailability.
pub const UNAVAILABLE_GAP_SECS: f64 = 5.0;

/// What a run exercised (results.json's `power`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Power {
    /// Achieved concurrency.
    pub concurrency: Concurrency,
    /// Per fault kind (`kill`, `partition`, ...): steps scheduled, applied, refused, skipped.
    pub faults: BTreeMap<String, FaultCounts>,
    /// Whether and when the database answered.
    pub availability: Availability,
    /// Keys written, and of those, keys read ok after the last heal; absent for histories
    /// whose ops carry no key (sets, transactions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_back: Option<ReadBack>,
    /// Why a valid verdict from this run means less than it says; empty when it does not.
    pub weak: Vec<String>,
}

/// One fault kind's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FaultCounts {
    /// Start steps in the schedule.
    pub scheduled: u64,
    /// Faults applied (`start-KIND` in the history).
    pub applied: u64,
    /// Start steps refused by the nemesis (`fault-refused`).
    pub refused: u64,
    /// Start steps not taken (`fault-skipped`: their slot passed, or the workload ended).
    pub skipped: u64,
}

/// A stretch of the run, in seconds since the workload started.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Start.
    pub start: f64,
    /// End.
    pub end: f64,
}

/// The time to the first ok op after a fault was healed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// The fault kind healed.
    pub kind: String,
    /// When it was healed (seconds).
    pub healed_at: f64,
    /// Seconds from the heal to the completion of the first ok op invoked after it; none
    /// when no op invoked after it succeeded.
    pub first_ok_after: Option<f64>,
}

/// Whether and when the database answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Availability {
    /// Ops that completed ok.
    pub ok: u64,
    /// Ok ops per second over the whole history.
    pub ok_per_second: f64,
    /// Stretches of at least [`UNAVAILABLE_GAP_SECS`] from an ok op (or the start) to the
    /// next ok op (or the end) in which some op failed or crashed: ops were tried and none
    /// completed ok.
    pub unavailable: Vec<Window>,
    /// Per heal, the time to the first ok op.
    pub recoveries: Vec<Recovery>,
    /// Seconds from the start to the last event.
    pub duration: f64,
}

/// Keys read back after the last heal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ReadBack {
    /// Keys that some ok or info op other than a read wrote.
    pub keys_written: u64,
    /// Of those, keys read ok by an op invoked after the last heal (reads after earlier
    /// heals do not count).
    pub keys_read_after_heal: u64,
}

/// Achieved concurrency of a run's client ops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Concurrency {
    /// Workers the plan asked for.
    pub workers: u64,
    /// Invocations per worker (a worker's processes are `w`, `w + workers`, ...).
    pub ops_per_worker: Vec<u64>,
    /// Invocations per node that served them.
    pub ops_per_node: BTreeMap<String, u64>,
    /// Ops in flight, averaged over the time from the first invocation to the last
    /// completion (over events, where the history has no times).
    pub mean_in_flight: f64,
    /// Ops in flight: the level that 99% of that time was at or below.
    pub p99_in_flight: u64,
    /// Invocations that started with no other op in flight.
    pub alone: u64,
}

impl Concurrency {
    /// The smallest and largest share of a worker, relative to a fair share (1.0 = fair).
    pub fn worker_share_range(&self) -> (f64, f64) {
        let total: u64 = self.ops_per_worker.iter().sum();
        if total == 0 || self.ops_per_worker.is_empty() {
            return (0.0, 0.0);
        }
        let fair = total as f64 / self.ops_per_worker.len() as f64;
        let min = self.ops_per_worker.iter().min().copied().unwrap_or(0) as f64 / fair;
        let max = self.ops_per_worker.iter().max().copied().unwrap_or(0) as f64 / fair;
        (min, max)
    }
}

/// Measures [`Concurrency`] in one pass over a history's events, in bounded memory (a
/// histogram of in-flight counts, not one sample per op).
#[derive(Debug)]
pub struct ConcurrencyMeter {
    workers: u64,
    ops_per_worker: Vec<u64>,
    ops_per_node: BTreeMap<String, u64>,
    in_flight: u64,
    alone: u64,
    /// Time (ns, or events where the history has no times) spent at each in-flight level.
    histogram: Vec<u64>,
    last: Option<u64>,
    steps: u64,
}

impl ConcurrencyMeter {
    /// A meter for a run of `workers` workers.
    pub fn new(workers: u64) -> ConcurrencyMeter {
        let workers = workers.max(1);
        ConcurrencyMeter {
            workers,
            ops_per_worker: vec![0; workers as usize],
            ops_per_node: BTreeMap::new(),
            in_flight: 0,
            alone: 0,
            histogram: Vec::new(),
            last: None,
            steps: 0,
        }
    }

    /// Takes the next event of the history (nemesis events are ignored).
    pub fn event(&mut self, e: &Event) {
        let Process::Client(p) = e.process else {
            return;
        };
        self.steps += 1;
        let now = e.time.unwrap_or(self.steps);
        if let Some(last) = self.last {
            let level = self.in_flight as usize;
            if self.histogram.len() <= level {
                self.histogram.resize(level + 1, 0);
            }
            self.histogram[level] += now.saturating_sub(last);
        }
        self.last = Some(now);
        if e.kind == EventKind::Invoke {
            self.ops_per_worker[(p % self.workers) as usize] += 1;
            if let Some(node) = &e.node {
                match self.ops_per_node.get_mut(node) {
                    Some(n) => *n += 1,
                    None => {
                        self.ops_per_node.insert(node.clone(), 1);
                    }
                }
            }
            if self.in_flight == 0 {
                self.alone += 1;
            }
            self.in_flight += 1;
        } else if e.kind.is_completion() {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
    }

    /// What was measured.
    pub fn finish(self) -> Concurrency {
        let total: u64 = self.histogram.iter().sum();
        let weighted: f64 = self
            .histogram
            .iter()
            .enumerate()
            .map(|(n, t)| n as f64 * *t as f64)
            .sum();
        let mean = if total == 0 {
            0.0
        } else {
            weighted / total as f64
        };
        let p99_at = (total as f64 * 0.99).ceil() as u64;
        let mut seen = 0;
        let mut p99 = 0;
        for (n, t) in self.histogram.iter().enumerate() {
            seen += t;
            if *t > 0 && seen >= p99_at {
                p99 = n as u64;
                break;
            }
        }
        Concurrency {
            workers: self.workers,
            ops_per_worker: self.ops_per_worker,
            ops_per_node: self.ops_per_node,
            mean_in_flight: mean,
            p99_in_flight: p99,
            alone: self.alone,
        }
    }
}

/// [`Concurrency`] of a whole history.
pub fn concurrency<'a>(workers: u64, events: impl IntoIterator<Item = &'a Event>) -> Concurrency {
    let mut m = ConcurrencyMeter::new(workers);
    for e in events {
        m.event(e);
    }
    m.finish()
}

/// One paragraph for people: what the run exercised, and why it is weak if it is.
pub fn summary(p: &Power) -> String {
    let c = &p.concurrency;
    let (min, max) = c.worker_share_range();
    let mut out = format!(
        "test power: {} workers (shares {min:.2}x..{max:.2}x of fair), {:.1} ops in flight on average (p99 {}), {} of {} ops alone",
        c.workers,
        c.mean_in_flight,
        c.p99_in_flight,
        c.alone,
        c.ops_per_worker.iter().sum::<u64>()
    );
    if !p.faults.is_empty() {
        let faults: Vec<String> = p
            .faults
            .iter()
            .map(|(k, f)| {
                format!(
                    "{k} {}/{} applied ({} refused, {} skipped)",
                    f.applied, f.scheduled, f.refused, f.skipped
                )
            })
            .collect();
        out.push_str(&format!("; faults: {}", faults.join(", ")));
    }
    let a = &p.availability;
    out.push_str(&format!("; {:.1} ok ops/s", a.ok_per_second));
    if !a.unavailable.is_empty() {
        let w: Vec<String> = a
            .unavailable
            .iter()
            .map(|w| format!("{:.1}-{:.1} s", w.start, w.end))
            .collect();
        out.push_str(&format!(", no ok op in {}", w.join(", ")));
    }
    let rec: Vec<f64> = a
        .recoveries
        .iter()
        .filter_map(|r| r.first_ok_after)
        .collect();
    if !rec.is_empty() {
        let worst = rec.iter().copied().fold(0.0, f64::max);
        out.push_str(&format!(
            "; first ok op after a heal within {worst:.2} s (worst of {})",
            rec.len()
        ));
    }
    if let Some(rb) = p.read_back {
        out.push_str(&format!(
            "; {} of {} written keys read after the last heal",
            rb.keys_read_after_heal, rb.keys_written
        ));
    }
    if !p.weak.is_empty() {
        out.push_str(&format!("\nWEAK: {}", p.weak.join("; ")));
    }
    out
}

/// Measures a stored run's [`Power`]: its history (`history.jsonl`), its number of workers
/// and its fault schedule.
pub fn measure(history: &Path, workers: u64, schedule: &Schedule) -> anyhow::Result<Power> {
    let reader = checkers::read::open(history, checkers::read::Format::Jsonl)?;
    let mut m = PowerMeter::new(workers, schedule);
    for e in reader {
        m.event(&e?.event);
    }
    Ok(m.finish())
}

/// A transaction's micro-ops as (function, key): `[["append", 3, 7], ["r", 4, null]]` gives
/// `("append", 3)` and `("r", 4)`; anything of another shape is skipped.
fn micro_ops(value: &checkers::history::Value) -> Vec<(&str, Key)> {
    use checkers::history::Value;
    let Value::List(mops) = value else {
        return Vec::new();
    };
    mops.iter()
        .filter_map(|m| match m {
            Value::List(parts) => match (parts.first(), parts.get(1)) {
                (Some(Value::Str(f)), Some(Value::Int(k))) => Some((f.as_str(), Key::Int(*k))),
                (Some(Value::Str(f)), Some(Value::Str(k))) => {
                    Some((f.as_str(), Key::Str(k.clone())))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Measures [`Power`] in one pass over a history.
#[derive(Debug)]
pub struct PowerMeter {
    concurrency: ConcurrencyMeter,
    faults: BTreeMap<String, FaultCounts>,
    invoked: HashMap<u64, f64>,
    ok: u64,
    last_ok: Option<f64>,
    tried_since_ok: bool,
    gap_start: f64,
    unavailable: Vec<Window>,
    recoveries: Vec<Recovery>,
    open_faults: Vec<String>,
    now: f64,
    written: HashSet<Key>,
    read_after_heal: HashSet<Key>,
    last_heal: Option<f64>,
}

fn secs(e: &Event) -> Option<f64> {
    e.time.map(|ns| ns as f64 / 1e9)
}

impl PowerMeter {
    /// A meter for a run of `workers` workers with this fault schedule.
    pub fn new(workers: u64, schedule: &Schedule) -> PowerMeter {
        let mut faults: BTreeMap<String, FaultCounts> = BTreeMap::new();
        for k in &schedule.kinds {
            faults.entry(k.name().to_string()).or_default();
        }
        for step in &schedule.steps {
            if let Action::Start { fault } = &step.action {
                faults
                    .entry(fault.kind().name().to_string())
                    .or_default()
                    .scheduled += 1;
            }
        }
        PowerMeter {
            concurrency: ConcurrencyMeter::new(workers),
            faults,
            invoked: HashMap::new(),
            ok: 0,
            last_ok: None,
            tried_since_ok: false,
            gap_start: 0.0,
            unavailable: Vec::new(),
            recoveries: Vec::new(),
            open_faults: Vec::new(),
            now: 0.0,
            written: HashSet::new(),
            read_after_heal: HashSet::new(),
            last_heal: None,
        }
    }

    /// Takes the next event of the history.
    pub fn event(&mut self, e: &Event) {
        if let Some(t) = secs(e) {
            self.now = self.now.max(t);
        }
        match e.process {
            Process::Client(p) => self.client(p, e),
            Process::Named(_) => self.nemesis(e),
        }
    }

    fn client(&mut self, p: u64, e: &Event) {
        self.concurrency.event(e);
        if e.kind == EventKind::Invoke {
            self.invoked.insert(p, self.now);
            return;
        }
        if e.kind != EventKind::Ok {
            self.tried_since_ok = true;
        }
        let invoked = self.invoked.remove(&p).unwrap_or(self.now);
        let after_heal = self.last_heal.is_some_and(|h| invoked >= h);
        let reads = e.f == "read";
        if let Some(key) = &e.key {
            if !reads && e.kind != EventKind::Fail {
                self.written.insert(key.clone());
            }
            if reads && e.kind == EventKind::Ok && after_heal {
                self.read_after_heal.insert(key.clone());
            }
        }
        if e.f == "txn" {
            for (f, key) in micro_ops(&e.value) {
                match f {
                    "append" | "w" if e.kind != EventKind::Fail => {
                        self.written.insert(key);
                    }
                    "r" if e.kind == EventKind::Ok && after_heal => {
                        self.read_after_heal.insert(key);
                    }
                    _ => {}
                }
            }
        }
        if e.kind != EventKind::Ok {
            return;
        }
        self.ok += 1;
        self.close_gap(self.now);
        self.last_ok = Some(self.now);
        self.tried_since_ok = false;
        for r in &mut self.recoveries {
            if r.first_ok_after.is_none() && invoked >= r.healed_at {
                r.first_ok_after = Some(self.now - r.healed_at);
            }
        }
    }

    /// Ends the stretch without ok ops that began at the last ok op (or the start), at `t`.
    fn close_gap(&mut self, t: f64) {
        let start = self.last_ok.unwrap_or(self.gap_start);
        if self.tried_since_ok && t - start >= UNAVAILABLE_GAP_SECS {
            self.unavailable.push(Window { start, end: t });
        }
    }

    fn nemesis(&mut self, e: &Event) {
        // fault-refused and fault-skipped carry the step: {"at_ms": .., "step": "start-KIND"
        // | "heal"} (nemesis::event::step_value).
        let step_kind = || match &e.value {
            checkers::history::Value::Map(m) => m
                .iter()
                .find(|(k, _)| k == "step")
                .and_then(|(_, v)| v.as_str())
                .and_then(NemesisEvent::parse)
                .and_then(|step| match step {
                    NemesisEvent::Start(kind) => Some(kind),
                    _ => None,
                }),
            _ => None,
        };
        match NemesisEvent::parse(&e.f) {
            Some(NemesisEvent::Start(kind)) => {
                self.faults.entry(kind.clone()).or_default().applied += 1;
                self.open_faults.push(kind);
            }
            Some(NemesisEvent::Stop(kind)) => {
                self.open_faults.retain(|k| *k != kind);
                self.healed(kind);
            }
            Some(NemesisEvent::HealAll) => {
                for kind in std::mem::take(&mut self.open_faults) {
                    self.healed(kind);
                }
                self.heal_at(self.now);
            }
            Some(NemesisEvent::Refused) => {
                if let Some(kind) = step_kind() {
                    self.faults.entry(kind).or_default().refused += 1;
                }
            }
            Some(NemesisEvent::Skipped) => {
                if let Some(kind) = step_kind() {
                    self.faults.entry(kind).or_default().skipped += 1;
                }
            }
            None => {}
        }
    }

    fn healed(&mut self, kind: String) {
        self.recoveries.push(Recovery {
            kind,
            healed_at: self.now,
            first_ok_after: None,
        });
        self.heal_at(self.now);
    }

    /// From now on, only reads invoked after `t` count as reads after the last heal.
    fn heal_at(&mut self, t: f64) {
        self.last_heal = Some(t);
        self.read_after_heal.clear();
    }

    /// What was measured, and why a valid verdict would be weak.
    pub fn finish(mut self) -> Power {
        let end = self.now;
        self.close_gap(end);
        let availability = Availability {
            ok: self.ok,
            ok_per_second: if end > 0.0 { self.ok as f64 / end } else { 0.0 },
            unavailable: self.unavailable,
            recoveries: self.recoveries,
            duration: end,
        };
        let read_back = (!self.written.is_empty()).then(|| ReadBack {
            keys_written: self.written.len() as u64,
            keys_read_after_heal: self
                .written
                .iter()
                .filter(|k| self.read_after_heal.contains(*k))
                .count() as u64,
        });
        let mut power = Power {
            concurrency: self.concurrency.finish(),
            faults: self.faults,
            availability,
            read_back,
            weak: Vec::new(),
        };
        power.weak = weaknesses(&power);
        power
    }
}

/// Why a valid verdict from a run with this power means less than it says.
fn weaknesses(p: &Power) -> Vec<String> {
    let mut weak = Vec::new();
    let scheduled: u64 = p.faults.values().map(|c| c.scheduled).sum();
    let applied: u64 = p.faults.values().map(|c| c.applied).sum();
    if scheduled > 0 && applied == 0 {
        let refused: u64 = p.faults.values().map(|c| c.refused).sum();
        let skipped: u64 = p.faults.values().map(|c| c.skipped).sum();
        weak.push(format!(
            "no fault was applied ({scheduled} scheduled: {refused} refused, {skipped} skipped)"
        ));
    } else {
        for (kind, c) in &p.faults {
            if c.scheduled > 0 && c.applied == 0 {
                weak.push(format!(
                    "no {kind} fault was applied ({} scheduled: {} refused, {} skipped)",
                    c.scheduled, c.refused, c.skipped
                ));
            }
        }
    }
    let a = &p.availability;
    if let Some(last) = a.unavailable.last() {
        if last.end >= a.duration && a.duration > 0.0 {
            weak.push(format!(
                "the database answered no op from {:.1} s to the end ({:.1} s)",
                last.start, last.end
            ));
        }
    }
    if let Some(rb) = p.read_back {
        if applied > 0 && rb.keys_read_after_heal < rb.keys_written {
            weak.push(format!(
                "only {} of the {} keys written were read back after the last heal",
                rb.keys_read_after_heal, rb.keys_written
            ));
        }
    }
    weak
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::history::Value;

    fn ev(t: u64, p: u64, kind: EventKind, node: &str) -> Event {
        let mut e = Event::client(0, p, kind, "read", Value::Null);
        e.node = Some(node.into());
        e.time = Some(t);
        e
    }

    #[test]
    fn counts_ops_per_worker_and_node_and_ops_in_flight() {
        use EventKind::*;
        // p0 and p1 overlap for 80 of 100 ns; p2 (worker 0 again, after p0 crashed) runs
        // alone; nothing is in flight for 100 ns between them.
        let h = [
            ev(0, 0, Invoke, "n1"),
            ev(10, 1, Invoke, "n2"),
            ev(90, 0, Info, "n1"),
            ev(100, 1, Ok, "n2"),
            ev(200, 2, Invoke, "n1"),
            ev(300, 2, Ok, "n1"),
        ];
        let c = concurrency(2, &h);
        assert_eq!(c.ops_per_worker, vec![2, 1]);
        assert_eq!(c.ops_per_node["n1"], 2);
        assert_eq!(c.ops_per_node["n2"], 1);
        assert_eq!(c.alone, 2);
        // (1 * 10 + 2 * 80 + 1 * 10 + 0 * 100 + 1 * 100) / 300
        assert!((c.mean_in_flight - 280.0 / 300.0).abs() < 1e-9, "{c:?}");
        assert_eq!(c.p99_in_flight, 2);
        assert_eq!(c.worker_share_range(), (2.0 / 3.0 * 1.0 / 1.0, 4.0 / 3.0));
    }

    fn nem(t_s: f64, f: &str, value: Value) -> Event {
        let mut e = Event::client(0, 0, EventKind::Info, f, value);
        e.process = Process::nemesis();
        e.time = Some((t_s * 1e9) as u64);
        e
    }

    fn op(t_s: f64, p: u64, kind: EventKind, f: &str, key: i64) -> Event {
        let mut e = ev((t_s * 1e9) as u64, p, kind, "n1");
        e.f = f.into();
        e.key = Some(Key::Int(key));
        e
    }

    fn schedule(kinds: &str, steps: usize) -> Schedule {
        let kinds: Vec<nemesis::Kind> = kinds
            .split(',')
            .map(|k| nemesis::Kind::from_name(k).expect("kind"))
            .collect();
        let s = Schedule::generate(
            &kinds,
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(2 * steps as u64),
            1,
        );
        assert!(!s.steps.is_empty());
        s
    }

    fn refused(t: f64, kind: &str) -> Event {
        nem(
            t,
            "fault-refused",
            Value::from_json(serde_json::json!({"at_ms": 0, "step": format!("start-{kind}")})),
        )
    }

    #[test]
    fn a_run_whose_faults_were_all_refused_is_weak() {
        use EventKind::*;
        let s = schedule("kill", 4);
        let scheduled = s
            .steps
            .iter()
            .filter(|st| matches!(st.action, Action::Start { .. }))
            .count() as u64;
        let mut m = PowerMeter::new(1, &s);
        m.event(&op(0.0, 0, Invoke, "write", 1));
        m.event(&op(0.1, 0, Ok, "write", 1));
        for i in 0..scheduled {
            m.event(&refused(1.0 + i as f64, "kill"));
        }
        m.event(&op(9.0, 0, Invoke, "read", 1));
        m.event(&op(9.1, 0, Ok, "read", 1));
        let p = m.finish();
        assert_eq!(p.faults["kill"].scheduled, scheduled);
        assert_eq!(p.faults["kill"].refused, scheduled);
        assert_eq!(p.faults["kill"].applied, 0);
        assert_eq!(p.weak.len(), 1, "{:?}", p.weak);
        assert!(
            p.weak[0].starts_with("no fault was applied"),
            "{:?}",
            p.weak
        );
    }

    fn txn(t_s: f64, p: u64, kind: EventKind, mops: &[(&str, i64)]) -> Event {
        let mut e = ev((t_s * 1e9) as u64, p, kind, "n1");
        e.f = "txn".into();
        e.value = Value::List(
            mops.iter()
                .map(|(f, k)| {
                    Value::List(vec![Value::Str((*f).into()), Value::Int(*k), Value::Null])
                })
                .collect(),
        );
        e
    }

    #[test]
    fn transactions_count_their_appended_keys_and_their_reads_after_the_heal() {
        use EventKind::*;
        let s = schedule("kill", 2);
        let mut m = PowerMeter::new(1, &s);
        m.event(&txn(0.0, 0, Invoke, &[("append", 1), ("w", 2), ("r", 3)]));
        m.event(&txn(0.1, 0, Ok, &[("append", 1), ("w", 2), ("r", 3)]));
        // An aborted transaction wrote nothing.
        m.event(&txn(0.2, 0, Invoke, &[("append", 4)]));
        m.event(&txn(0.3, 0, Fail, &[("append", 4)]));
        // A read before the heal does not count.
        m.event(&txn(0.4, 0, Invoke, &[("r", 2)]));
        m.event(&txn(0.5, 0, Ok, &[("r", 2)]));
        m.event(&nem(1.0, "start-kill", Value::Null));
        m.event(&nem(2.0, "stop-kill", Value::Null));
        m.event(&txn(2.1, 0, Invoke, &[("r", 1)]));
        m.event(&txn(2.2, 0, Ok, &[("r", 1)]));
        let p = m.finish();
        assert_eq!(
            p.read_back,
            Some(ReadBack {
                keys_written: 2,
                keys_read_after_heal: 1
            })
        );
        assert!(
            p.weak
                .iter()
                .any(|w| w == "only 1 of the 2 keys written were read back after the last heal"),
            "{:?}",
            p.weak
        );
    }

    #[test]
    fn availability_windows_recoveries_and_read_back() {
        use EventKind::*;
        let s = schedule("kill", 2);
        let mut m = PowerMeter::new(1, &s);
        m.event(&op(0.0, 0, Invoke, "write", 1));
        m.event(&op(0.1, 0, Ok, "write", 1));
        m.event(&nem(1.0, "start-kill", Value::Null));
        // Tried and failed for 9 s: one unavailable window from the last ok op.
        for i in 0..9 {
            let t = 1.0 + i as f64;
            m.event(&op(t, 0, Invoke, "write", 2));
            m.event(&op(t + 0.5, 0, Fail, "write", 2));
        }
        m.event(&nem(10.0, "stop-kill", Value::Null));
        m.event(&op(10.2, 0, Invoke, "write", 2));
        m.event(&op(10.5, 0, Ok, "write", 2));
        m.event(&op(11.0, 0, Invoke, "read", 1));
        m.event(&op(11.1, 0, Ok, "read", 1));
        let p = m.finish();
        assert_eq!(p.faults["kill"].applied, 1);
        assert_eq!(p.availability.ok, 3);
        assert_eq!(
            p.availability.unavailable,
            vec![Window {
                start: 0.1,
                end: 10.5
            }]
        );
        let r = &p.availability.recoveries;
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].kind, "kill");
        assert!((r[0].first_ok_after.expect("recovered") - 0.5).abs() < 1e-9);
        // Keys 1 and 2 written (2 only by a failed op, then an ok one); 1 read after the heal.
        assert_eq!(
            p.read_back,
            Some(ReadBack {
                keys_written: 2,
                keys_read_after_heal: 1
            })
        );
        // Key 2, written before the heal, was never read after it.
        assert_eq!(
            p.weak,
            vec!["only 1 of the 2 keys written were read back after the last heal".to_string()]
        );
    }

    #[test]
    fn a_database_that_stops_answering_for_good_is_weak() {
        use EventKind::*;
        let s = schedule("kill", 2);
        let mut m = PowerMeter::new(1, &s);
        m.event(&op(0.0, 0, Invoke, "write", 1));
        m.event(&op(0.1, 0, Ok, "write", 1));
        m.event(&nem(1.0, "start-kill", Value::Null));
        m.event(&nem(3.0, "stop-kill", Value::Null));
        for i in 0..20 {
            let t = 1.0 + i as f64;
            m.event(&op(t, 0, Invoke, "read", 1));
            m.event(&op(t + 0.5, 0, Fail, "read", 1));
        }
        let p = m.finish();
        assert_eq!(p.availability.recoveries[0].first_ok_after, None);
        assert!(
            p.weak
                .iter()
                .any(|w| w.starts_with("the database answered no op from 0.1 s")),
            "{:?}",
            p.weak
        );
    }
}
