//! The fault phase: the nemesis for a run (journaled in the cluster's journal, mirrored into
//! the store, with the database's process hooks), and the thread that applies and heals
//! faults on the schedule, writing each into the history as a `process: "nemesis"` event.
//!
//! A fault that another process heals while the run holds it (`faultline heal --force`) is
//! noticed in the journal, while the run waits for its next step and before its own heal:
//! the history gets its `stop-KIND` then, saying when the journal says it was healed and by
//! which process, and the scheduled heal is recorded as skipped (nothing left to heal), so
//! that neither the history nor the report claims the fault lasted until its slot.

use super::RunLog;
use crate::exit::{bad_input, internal, Failure};
use crate::recorder::Recorder;
use crate::session::hooks::{self, DbHooks};
use checkers::history::Value;
use clusters::Cluster;
use nemesis::event::NemesisEvent;
use nemesis::journal::JournalEntry;
use nemesis::process::DbSource;
use nemesis::schedule::{Action, Kind, Schedule, Step};
use nemesis::{Applied, FaultSpec, Journal, Nemesis, NemesisError};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use workloads::{Database, Registry};

/// The run's nemesis, after healing what an earlier run left (restarting killed databases
/// found in `registry`) and preparing clock faults.
pub fn nemesis<'c>(
    cluster: &'c Cluster,
    registry: &Registry,
    db: Arc<dyn Database>,
    source: DbSource,
    schedule: &Schedule,
    dir: &Path,
    log: &RunLog,
) -> Result<Nemesis<'c>, Failure> {
    let journal = Journal::for_cluster(cluster.file())
        .and_then(|j| j.with_mirror(&dir.join("nemesis.jsonl")))
        .map_err(|e| match e {
            // Another cluster's journal: the user's cluster file must change.
            NemesisError::Refused(_) => bad_input(e),
            other => internal(other),
        })?;
    let nem = Nemesis::new(cluster, journal).with_hooks(Arc::new(DbHooks::new(db, Some(source))));
    // Heal what an earlier run left: what the journal lists, and, through the sweep, what the
    // nodes themselves record (a controller that lost its journal, a fault applied by hand).
    // A kill of another database is restarted as it was recorded.
    let leftover = nem.journal().pending().map_err(internal)?;
    let mut undos: Vec<nemesis::Undo> = leftover.iter().map(|p| p.undo.clone()).collect();
    let (records, _) = nemesis::node_state::read(cluster, &cluster.nodes());
    undos.extend(records.into_values().flatten().filter_map(|(_, u)| u.ok()));
    let (nem, _) = hooks::for_restarts(registry, nem, &undos);
    if !leftover.is_empty() {
        log.say(&format!(
            "healing {} fault(s) left applied by an earlier run",
            leftover.len()
        ));
    }
    let report = nem.heal_all(true).map_err(internal)?;
    for (node, found) in &report.swept {
        for f in found {
            log.say(&format!("before the run, the sweep on {node}: {f}"));
        }
    }
    if !report.is_clean() {
        let mut what: Vec<String> = report
            .failed
            .iter()
            .map(|(id, fault, errs)| format!("#{id} {fault}: {}", node_errors(errs)))
            .collect();
        if !report.sweep_errors.is_empty() {
            what.push(format!("sweep: {}", node_errors(&report.sweep_errors)));
        }
        return Err(internal(anyhow::anyhow!(
            "faults left by an earlier run could not be healed: {}; run `faultline heal --cluster FILE` (with --force it forgets a kill of a database whose definition changed or is gone)",
            what.join("; ")
        )));
    }
    if schedule.kinds.contains(&Kind::Clock) {
        log.say("clock faults: checking that nodes own their clocks, installing the node helper");
        nem.prepare_clock().map_err(|e| match e {
            NemesisError::Refused(_) => {
                bad_input(anyhow::anyhow!("{e} (or leave clock out of --nemesis)"))
            }
            other => internal(other),
        })?;
    }
    Ok(nem)
}

/// Per-node errors as `node: error, node: error`.
fn node_errors(errs: &std::collections::BTreeMap<String, String>) -> String {
    errs.iter()
        .map(|(n, e)| format!("{n}: {e}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sleeps until `deadline`; false when `stop` was set first.
pub fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    while Instant::now() < deadline {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20).min(deadline - Instant::now()));
    }
    !stop.load(Ordering::SeqCst)
}

/// How late a step may start before the log and history say it was late.
const LATE: Duration = Duration::from_millis(100);

/// What became of one scheduled step. Every step ends in exactly one of these, in the
/// history (as a `start-KIND`, `stop-KIND`, `fault-refused` or `fault-skipped` event) and so
/// in the report.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// A fault was applied (`late`: how long after its slot, when more than a moment).
    Applied {
        /// How long after its slot it was applied.
        late: Option<Duration>,
    },
    /// The active fault was healed.
    Healed {
        /// How long after its slot it was healed.
        late: Option<Duration>,
    },
    /// The fault could not be applied: why.
    Refused(String),
    /// The step was not taken: why.
    Skipped(String),
}

/// The side of the schedule that touches the world: time, the nemesis and the history. The
/// run's is [`RunDriver`]; tests drive [`drive`] with a fake clock and fake applies.
pub trait Driver {
    /// Time since the workload started.
    fn now(&self) -> Duration;
    /// Sleeps until `at` after the workload started; false when the workload stopped first.
    fn sleep_until(&mut self, at: Duration) -> bool;
    /// Resolves and applies the fault of `step` (`late`: how long after its slot); `Err`
    /// says why it was refused (and is recorded by the driver).
    fn start(
        &mut self,
        step: &Step,
        fault: &FaultSpec,
        late: Option<Duration>,
    ) -> Result<(), String>;
    /// Heals the active fault, the heal of `step` (`late`: how long after its slot); `Some`
    /// says why there was nothing to heal (the fault was healed from outside, which the
    /// driver recorded), and the step is then skipped.
    fn heal(&mut self, step: &Step, late: Option<Duration>) -> Option<String>;
    /// Records that `step` was not taken, and why.
    fn skipped(&mut self, step: &Step, why: &str);
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Takes the steps of `schedule` on their slots until the workload ends at `end` (or stops
/// earlier), and returns what became of each, in order:
///
/// - a fault is applied at its slot, or later while its slot's window (until the next
///   step's slot) is open, saying how late; once that window has passed (an earlier apply
///   overran it), it is skipped, saying so, so that the faults after it keep their slots;
/// - a heal is always taken when a fault is active (late if need be), else skipped;
/// - nothing is applied once the workload stopped or its time limit passed: the steps left
///   are skipped, saying so (the run heals every fault after the workload).
pub fn drive(schedule: &Schedule, end: Duration, d: &mut impl Driver) -> Vec<StepOutcome> {
    let steps = &schedule.steps;
    let mut outcomes = Vec::with_capacity(steps.len());
    let mut active = false;
    let mut over: Option<String> = None;
    for (i, step) in steps.iter().enumerate() {
        let at = Duration::from_millis(step.at_ms);
        if over.is_none() {
            if at >= end {
                over = Some(format!(
                    "its slot at {} is not before the workload's end at {}",
                    secs(at),
                    secs(end)
                ));
            } else if !d.sleep_until(at) {
                over = Some(format!(
                    "the workload stopped at {}, before its slot at {}",
                    secs(d.now()),
                    secs(at)
                ));
            }
        }
        let now = d.now();
        if over.is_none() && now >= end {
            over = Some(format!(
                "the workload ended at {} before it could be taken (its slot was at {}; an earlier apply overran)",
                secs(end),
                secs(at)
            ));
        }
        if let Some(why) = &over {
            let why = if active && step.action == Action::Heal {
                format!("{why}; the run heals every fault after the workload")
            } else {
                why.clone()
            };
            d.skipped(step, &why);
            outcomes.push(StepOutcome::Skipped(why));
            continue;
        }
        let late = now.checked_sub(at).filter(|l| *l > LATE);
        match &step.action {
            Action::Start { fault } => {
                let window = steps
                    .get(i + 1)
                    .map_or(end, |n| Duration::from_millis(n.at_ms))
                    .min(end);
                if active {
                    let why = "a fault is still applied (its heal was not taken)".to_string();
                    d.skipped(step, &why);
                    outcomes.push(StepOutcome::Skipped(why));
                } else if now >= window {
                    let why = format!(
                        "its slot at {} passed while an earlier apply overran (until {}, past the next slot at {})",
                        secs(at),
                        secs(now),
                        secs(window)
                    );
                    d.skipped(step, &why);
                    outcomes.push(StepOutcome::Skipped(why));
                } else {
                    match d.start(step, fault, late) {
                        Ok(()) => {
                            active = true;
                            outcomes.push(StepOutcome::Applied { late });
                        }
                        Err(why) => outcomes.push(StepOutcome::Refused(why)),
                    }
                }
            }
            Action::Heal => {
                if active {
                    active = false;
                    match d.heal(step, late) {
                        None => outcomes.push(StepOutcome::Healed { late }),
                        Some(why) => outcomes.push(StepOutcome::Skipped(why)),
                    }
                } else {
                    let why = "nothing to heal: the fault before it was not applied".to_string();
                    d.skipped(step, &why);
                    outcomes.push(StepOutcome::Skipped(why));
                }
            }
        }
    }
    outcomes
}

/// What a step is, for the history's `fault-skipped` and `fault-refused` events.
fn step_value(step: &Step) -> Value {
    let what = match &step.action {
        Action::Start { fault } => NemesisEvent::start(fault.kind()),
        Action::Heal => NemesisEvent::HealAll,
    };
    Value::from_json(nemesis::event::step_value(step.at_ms, &what))
}

fn late_note(at_ms: u64, late: Option<Duration>) -> Option<String> {
    late.map(|l| {
        format!(
            "{} late: its slot was at {} (an earlier apply overran)",
            secs(l),
            secs(Duration::from_millis(at_ms))
        )
    })
}

/// How often, while a fault is applied, the run looks in the journal for a heal from
/// outside.
const OUTSIDE_POLL: Duration = Duration::from_millis(500);

/// A fault of the run that another process healed, as the journal records it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutsideHeal {
    /// When, since the workload started (the journal's wall-clock time, kept between the
    /// fault's start and the moment the run noticed).
    pub at: Duration,
    /// The journal's time of the heal (RFC 3339).
    pub time: String,
    /// The process that healed it.
    pub pid: u32,
}

impl OutsideHeal {
    /// The heal that journal line `e` records; `wall_start` is the wall-clock time at which
    /// the workload started, `applied_at` and `now` bound the result.
    fn new(e: &JournalEntry, wall_start: SystemTime, applied_at: Duration, now: Duration) -> Self {
        let at = humantime::parse_rfc3339_weak(&e.time)
            .ok()
            .and_then(|t| t.duration_since(wall_start).ok())
            .unwrap_or(now)
            .clamp(applied_at, now.max(applied_at));
        OutsideHeal {
            at,
            time: e.time.clone(),
            pid: e.pid,
        }
    }

    /// What the history's `stop-KIND` event says.
    fn note(&self) -> String {
        format!(
            "healed from outside at {} (by faultline process {} at {}, as the fault journal records), not by this run",
            secs(self.at),
            self.pid,
            self.time
        )
    }

    /// The `stop-KIND` event's value: when (`at_ms`, since the workload started), as the
    /// journal says, and by whom.
    fn value(&self) -> Value {
        Value::from_json(serde_json::json!({
            "healed_from_outside": {
                "at_ms": self.at.as_millis() as u64,
                "time": self.time,
                "pid": self.pid,
            }
        }))
    }
}

/// The run's [`Driver`]: the real clock, the run's nemesis, its history and log.
pub struct RunDriver<'a, 'c> {
    nem: &'a Nemesis<'c>,
    recorder: &'a Recorder,
    start: Instant,
    /// The wall-clock time at `start` (the journal's times are wall-clock times).
    wall_start: SystemTime,
    stop: &'a AtomicBool,
    active: &'a Mutex<Option<String>>,
    log: &'a RunLog,
    current: Option<Applied>,
    /// When the current fault was applied, since the workload started.
    applied_at: Duration,
    /// The current fault's heal from outside, once noticed (until its scheduled heal).
    outside: Option<OutsideHeal>,
}

impl<'a, 'c> RunDriver<'a, 'c> {
    /// A driver whose workload started at `start`.
    fn new(
        nem: &'a Nemesis<'c>,
        recorder: &'a Recorder,
        start: Instant,
        stop: &'a AtomicBool,
        active: &'a Mutex<Option<String>>,
        log: &'a RunLog,
    ) -> Self {
        RunDriver {
            nem,
            recorder,
            start,
            wall_start: SystemTime::now()
                .checked_sub(start.elapsed())
                .unwrap_or(SystemTime::UNIX_EPOCH),
            stop,
            active,
            log,
            current: None,
            applied_at: Duration::ZERO,
            outside: None,
        }
    }

    /// Whether the journal says that the current fault was healed by another process; if
    /// so, records its `stop-KIND` in the history now, with when and by whom, and forgets
    /// the fault (there is nothing left for the run to heal).
    fn notice_outside_heal(&mut self) {
        let Some(a) = &self.current else { return };
        let entry = match self.nem.journal().healed_elsewhere(a.id) {
            Ok(Some(e)) => e,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("could not look for a heal from outside in the journal: {e}");
                return;
            }
        };
        if let Err(e) = self.nem.journal().mirror_entry(&entry) {
            tracing::warn!("could not copy the heal from outside into the run's journal: {e}");
        }
        let h = OutsideHeal::new(&entry, self.wall_start, self.applied_at, self.now());
        self.log
            .say(&format!("nemesis: {} was {}", a.fault.kind(), h.note()));
        let _ = self.recorder.nemesis(
            &NemesisEvent::stop(a.fault.kind()),
            h.value(),
            Some(h.note()),
        );
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.current = None;
        self.outside = Some(h);
    }
}

impl Driver for RunDriver<'_, '_> {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep_until(&mut self, at: Duration) -> bool {
        let deadline = self.start + at;
        // While a fault is applied, look for a heal from outside every OUTSIDE_POLL.
        while self.current.is_some() {
            self.notice_outside_heal();
            let next = (Instant::now() + OUTSIDE_POLL).min(deadline);
            if !sleep_until(next, self.stop) {
                return false;
            }
            if next >= deadline {
                return true;
            }
        }
        sleep_until(deadline, self.stop)
    }

    fn start(
        &mut self,
        step: &Step,
        fault: &FaultSpec,
        late: Option<Duration>,
    ) -> Result<(), String> {
        let result = self
            .nem
            .resolve(fault, &mut step.rng())
            .and_then(|f| self.nem.apply(f));
        match result {
            Ok(a) => {
                let note = late_note(step.at_ms, late);
                self.log.say(&format!(
                    "nemesis: {}{}",
                    a.fault,
                    note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
                ));
                let value = Value::from_json(a.fault.history_value());
                let _ = self
                    .recorder
                    .nemesis(&NemesisEvent::start(a.fault.kind()), value, note);
                *self.active.lock().unwrap_or_else(|e| e.into_inner()) = Some(a.fault.to_string());
                self.current = Some(a);
                self.applied_at = self.now();
                self.outside = None;
                Ok(())
            }
            Err(e) => {
                self.log
                    .say(&format!("nemesis: could not apply a fault: {e}"));
                let _ = self.recorder.nemesis(
                    &NemesisEvent::Refused,
                    step_value(step),
                    Some(e.to_string()),
                );
                Err(e.to_string())
            }
        }
    }

    fn heal(&mut self, step: &Step, late: Option<Duration>) -> Option<String> {
        self.notice_outside_heal();
        if let Some(h) = self.outside.take() {
            let why = format!("nothing to heal: the fault was {}", h.note());
            self.skipped(step, &why);
            return Some(why);
        }
        if let Some(a) = self.current.take() {
            let r = self.nem.heal(&a);
            let err = r.as_ref().err().map(ToString::to_string);
            self.log.say(&format!(
                "nemesis: healed {}{}{}",
                a.fault.kind(),
                err.as_ref()
                    .map(|e| format!(" (FAILED: {e})"))
                    .unwrap_or_default(),
                late.map(|l| format!(" ({} late)", secs(l)))
                    .unwrap_or_default()
            ));
            let _ = self
                .recorder
                .nemesis(&NemesisEvent::stop(a.fault.kind()), Value::Null, err);
            *self.active.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        None
    }

    fn skipped(&mut self, step: &Step, why: &str) {
        self.log.say(&format!(
            "nemesis: skipped the step at {} ({}): {why}",
            secs(Duration::from_millis(step.at_ms)),
            match &step.action {
                Action::Start { fault } => format!("start {}", fault.kind()),
                Action::Heal => "heal".to_string(),
            }
        ));
        let _ = self.recorder.nemesis(
            &NemesisEvent::Skipped,
            step_value(step),
            Some(why.to_string()),
        );
    }
}

/// Applies and heals faults on the schedule until it ends, the workload's time limit `end`
/// passes or `stop` is set; `active` tells the progress display which fault is applied now.
/// Every step ends in the history (see [`drive`]), and so does a fault healed from outside
/// (see the module's documentation), also the one left applied when the workload ends.
#[allow(clippy::too_many_arguments)]
pub fn run_schedule(
    nem: &Nemesis<'_>,
    schedule: &Schedule,
    end: Duration,
    recorder: &Recorder,
    start: Instant,
    stop: &AtomicBool,
    active: &Mutex<Option<String>>,
    log: &RunLog,
) {
    let mut driver = RunDriver::new(nem, recorder, start, stop, active, log);
    drive(schedule, end, &mut driver);
    driver.notice_outside_heal();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A fake clock and nemesis: applies take `apply_ms` (10 ms unless listed), by slot.
    struct Fake {
        now: Duration,
        stop_at: Option<Duration>,
        end: Duration,
        apply_ms: BTreeMap<u64, u64>,
        refuse: Vec<u64>,
        /// What the history would hold: (slot, event, note).
        history: Vec<(u64, String, Option<String>)>,
    }

    impl Fake {
        fn new(end_s: u64) -> Fake {
            Fake {
                now: Duration::ZERO,
                stop_at: None,
                end: Duration::from_secs(end_s),
                apply_ms: BTreeMap::new(),
                refuse: Vec::new(),
                history: Vec::new(),
            }
        }
    }

    impl Driver for Fake {
        fn now(&self) -> Duration {
            self.now
        }
        fn sleep_until(&mut self, at: Duration) -> bool {
            if let Some(s) = self.stop_at.filter(|s| *s <= at.max(self.now)) {
                self.now = self.now.max(s);
                return false;
            }
            self.now = self.now.max(at);
            true
        }
        fn start(
            &mut self,
            step: &Step,
            fault: &FaultSpec,
            late: Option<Duration>,
        ) -> Result<(), String> {
            assert!(self.now < self.end, "a fault applied after the workload");
            assert!(self.stop_at.is_none_or(|s| self.now < s));
            let took = self.apply_ms.get(&step.at_ms).copied().unwrap_or(10);
            self.now += Duration::from_millis(took);
            if self.refuse.contains(&step.at_ms) {
                self.history
                    .push((step.at_ms, "fault-refused".into(), Some("no".into())));
                return Err("no".into());
            }
            self.history.push((
                step.at_ms,
                format!("start-{}", fault.kind()),
                late_note(step.at_ms, late),
            ));
            Ok(())
        }
        fn heal(&mut self, _step: &Step, _late: Option<Duration>) -> Option<String> {
            self.now += Duration::from_millis(10);
            self.history
                .push((self.now.as_millis() as u64, "stop".into(), None));
            None
        }
        fn skipped(&mut self, step: &Step, why: &str) {
            self.history
                .push((step.at_ms, "fault-skipped".into(), Some(why.into())));
        }
    }

    /// Steps every second from 1 s to 9 s: start, heal, start, ... (start at odd seconds).
    fn schedule() -> Schedule {
        let kinds = Kind::parse_list("partition").expect("kinds");
        let s = Schedule::generate(&kinds, Duration::from_secs(1), Duration::from_secs(10), 3);
        assert_eq!(s.steps.len(), 9);
        s
    }

    #[test]
    fn an_overrunning_apply_skips_the_slots_it_overran_and_says_so_and_every_step_ends_somewhere() {
        let s = schedule();
        let mut fake = Fake::new(10);
        // The apply due at 1 s takes 3.2 s: the heal due at 2 s comes late, the start due at
        // 3 s is past its window (the next slot, 4 s) and is skipped, so is the heal at 4 s;
        // the start at 5 s is on its slot again.
        fake.apply_ms.insert(1000, 3200);
        let out = drive(&s, Duration::from_secs(10), &mut fake);
        assert_eq!(out.len(), s.steps.len(), "every step has an outcome");
        assert_eq!(out[0], StepOutcome::Applied { late: None });
        assert!(
            matches!(out[1], StepOutcome::Healed { late: Some(l) } if l >= Duration::from_millis(2200)),
            "{:?}",
            out[1]
        );
        match &out[2] {
            StepOutcome::Skipped(why) => {
                assert!(why.contains("slot at 3.0 s passed"), "{why}");
                assert!(why.contains("overran"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&out[3], StepOutcome::Skipped(w) if w.contains("nothing to heal")));
        assert_eq!(out[4], StepOutcome::Applied { late: None });
        // One history event per step: nothing went missing.
        assert_eq!(fake.history.len(), s.steps.len());
        assert_eq!(
            fake.history
                .iter()
                .filter(|(_, f, _)| f == "fault-skipped")
                .count(),
            2
        );
    }

    #[test]
    fn a_late_but_open_slot_is_applied_and_called_late() {
        let s = schedule();
        let mut fake = Fake::new(10);
        // The apply at 1 s takes 2.5 s.
        fake.apply_ms.insert(1000, 2500);
        let out = drive(&s, Duration::from_secs(10), &mut fake);
        // The heal due at 2 s ran at 3.5 s; the start due at 3 s, at 3.51 s, inside its
        // window (until 4 s): applied, and called late.
        assert!(matches!(out[1], StepOutcome::Healed { late: Some(_) }));
        match &out[2] {
            StepOutcome::Applied { late: Some(l) } => {
                assert!(*l >= Duration::from_millis(500), "{l:?}")
            }
            other => panic!("{other:?}"),
        }
        let note = fake.history[2].2.as_deref().unwrap_or_default();
        assert!(note.contains("late: its slot was at 3.0 s"), "{note}");
    }

    #[test]
    fn nothing_is_applied_after_the_workload_and_the_steps_left_say_why() {
        let s = schedule();
        let mut fake = Fake::new(10);
        // The apply at 7 s runs past the end of the workload (10 s).
        fake.apply_ms.insert(7000, 3500);
        let out = drive(&s, Duration::from_secs(10), &mut fake);
        assert_eq!(out.len(), 9);
        assert_eq!(out[6], StepOutcome::Applied { late: None });
        for o in &out[7..] {
            match o {
                StepOutcome::Skipped(why) => assert!(why.contains("workload ended"), "{why}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(&out[7], StepOutcome::Skipped(w) if w.contains("heals every fault")));

        // Stopped early (Ctrl-C at 4.5 s): the steps from 5 s on are skipped, not applied.
        let mut fake = Fake::new(10);
        fake.stop_at = Some(Duration::from_millis(4500));
        let out = drive(&s, Duration::from_secs(10), &mut fake);
        assert_eq!(out.len(), 9);
        for o in &out[4..] {
            assert!(
                matches!(o, StepOutcome::Skipped(w) if w.contains("workload stopped at 4.5 s")),
                "{o:?}"
            );
        }
        assert_eq!(fake.history.len(), 9);
    }

    /// `faultline heal --force` from another process 0.1 s after a kill was applied: the run
    /// notices it in the journal while it waits for its heal step, records the fault's stop
    /// then, saying when (as the journal says) and by whom, skips its own heal saying why
    /// (touching no node: this cluster's node cannot be reached), and the report's interval
    /// for the fault ends when the journal says, not at the heal's slot.
    #[test]
    fn a_fault_healed_from_outside_is_recorded_with_when_and_by_whom() {
        use nemesis::process::{KillFault, Restart};
        use nemesis::{Fault, Undo};
        let dir = tempfile::tempdir().unwrap();
        let file =
            clusters::ClusterFile::parse("name: t\nnodes: [n1]\nssh:\n  port: 1\n", "c.yaml")
                .unwrap();
        let cluster = Cluster::new(file, 1);
        let journal = dir.path().join("journal.jsonl");
        let mirror = dir.path().join("nemesis.jsonl");
        let nem = Nemesis::new(
            &cluster,
            Journal::open(&journal)
                .and_then(|j| j.with_mirror(&mirror))
                .unwrap(),
        );
        let history = dir.path().join("history.jsonl");
        let start = Instant::now();
        let recorder = Recorder::create(&history, start).unwrap();
        let (stop, active) = (AtomicBool::new(false), Mutex::new(None));
        let mut driver = RunDriver::new(&nem, &recorder, start, &stop, &active, &RunLog);
        // The kill, journaled and recorded as the run applies it (its slot: 0 s).
        let fault = Fault::Kill(KillFault {
            db: "db".into(),
            nodes: vec!["n1".into()],
        });
        let undo = Undo::Restart(Restart {
            db: "db".into(),
            nodes: vec!["n1".into()],
            source: None,
        });
        let id = nem.journal().record_apply(&fault, &undo).unwrap();
        nem.journal().record_applied(id).unwrap();
        recorder
            .nemesis(
                &NemesisEvent::start(fault.kind()),
                Value::from_json(fault.history_value()),
                None,
            )
            .unwrap();
        driver.current = Some(Applied { id, fault, undo });
        driver.applied_at = driver.now();
        // Healed 0.1 s later by another faultline process, as its journal line says.
        std::thread::sleep(Duration::from_millis(100));
        let healed = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let other = std::process::id().wrapping_add(1);
        let line = format!(r#"{{"time":"{healed}","id":{id},"event":"healed","pid":{other}}}"#);
        std::fs::write(
            &journal,
            std::fs::read_to_string(&journal).unwrap() + &line + "\n",
        )
        .unwrap();
        // The heal step is due at 1.5 s; the run notices long before.
        assert!(driver.sleep_until(Duration::from_millis(1500)));
        assert!(
            driver.current.is_none(),
            "the fault is no longer the run's to heal"
        );
        assert!(active.lock().unwrap().is_none());
        let step = Step {
            at_ms: 1500,
            action: Action::Heal,
            seed: 0,
        };
        let why = driver.heal(&step, None).expect("nothing left to heal");
        assert!(
            why.starts_with("nothing to heal: the fault was healed from outside at 0.1 s"),
            "{why}"
        );
        let text = std::fs::read_to_string(&history).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1]["f"], "stop-kill");
        let note = lines[1]["error"].as_str().unwrap_or_default();
        assert!(
            note.starts_with("healed from outside at 0.1 s")
                && note.contains(&format!("by faultline process {other} at {healed}")),
            "{note}"
        );
        let at_ms = lines[1]["value"]["healed_from_outside"]["at_ms"]
            .as_u64()
            .unwrap();
        assert!((100..400).contains(&at_ms), "{at_ms}");
        // Noticed within a poll, not at the heal's slot.
        let noticed = lines[1]["time"].as_u64().unwrap();
        assert!(noticed < 800_000_000, "{noticed}");
        assert_eq!(lines[2]["f"], "fault-skipped");
        assert_eq!(lines[2]["value"]["step"], "heal");
        // The report's interval ends when the journal says, and says why.
        let data = crate::report::RunData::read(&history).unwrap();
        let f = &data.faults[0];
        assert!(f.healed_from_outside);
        assert!((f.end - at_ms as f64 / 1e3).abs() < 1e-9, "{f:?}");
        assert!(f.end_note.starts_with("healed from outside"), "{f:?}");
        // The journal holds no heal of this run's: it healed nothing.
        let own = nem
            .journal()
            .entries()
            .unwrap()
            .into_iter()
            .filter(|e| e.pid == std::process::id() && e.event == nemesis::journal::Event::Healed)
            .count();
        assert_eq!(own, 0);
        // The run's copy of the journal says how the fault ended.
        let copied = Journal::open(&mirror).unwrap().entries().unwrap();
        assert!(
            copied
                .iter()
                .any(|e| e.id == id && e.pid == other && e.time == healed),
            "{copied:?}"
        );
    }

    #[test]
    fn a_refused_fault_is_recorded_and_its_heal_skipped() {
        let s = schedule();
        let mut fake = Fake::new(10);
        fake.refuse.push(1000);
        let out = drive(&s, Duration::from_secs(10), &mut fake);
        assert_eq!(out[0], StepOutcome::Refused("no".into()));
        assert!(matches!(&out[1], StepOutcome::Skipped(w) if w.contains("nothing to heal")));
        assert_eq!(out[2], StepOutcome::Applied { late: None });
        assert_eq!(fake.history.len(), 9);
    }
}
