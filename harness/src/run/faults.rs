//! The fault phase: the nemesis for a run (journaled in the cluster's journal, mirrored into
//! the store, with the database's process hooks), and the thread that applies and heals
//! faults on the schedule, writing each into the history as a `process: "nemesis"` event.

use super::RunLog;
use crate::exit::{bad_input, internal, Failure};
use crate::hooks::DbHooks;
use crate::recorder::Recorder;
use checkers::history::Value;
use clusters::Cluster;
use nemesis::process::DbSource;
use nemesis::schedule::{Action, Kind, Schedule, Step};
use nemesis::{Applied, FaultSpec, Journal, Nemesis, NemesisError};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workloads::Database;

/// The run's nemesis, after healing what an earlier run left and preparing clock faults.
pub fn nemesis<'c>(
    cluster: &'c Cluster,
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
    let (nem, _) = crate::hooks::for_restarts(nem, &undos);
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
    /// Heals the active fault (`late`: how long after its slot).
    fn heal(&mut self, late: Option<Duration>);
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
                    d.heal(late);
                    active = false;
                    outcomes.push(StepOutcome::Healed { late });
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
        Action::Start { fault } => format!("start-{}", fault.kind()),
        Action::Heal => "heal".to_string(),
    };
    Value::from_json(serde_json::json!({"at_ms": step.at_ms, "step": what}))
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

/// The run's [`Driver`]: the real clock, the run's nemesis, its history and log.
pub struct RunDriver<'a, 'c> {
    nem: &'a Nemesis<'c>,
    recorder: &'a Recorder,
    start: Instant,
    stop: &'a AtomicBool,
    active: &'a Mutex<Option<String>>,
    log: &'a RunLog,
    current: Option<Applied>,
}

impl Driver for RunDriver<'_, '_> {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep_until(&mut self, at: Duration) -> bool {
        sleep_until(self.start + at, self.stop)
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
                let _ = self.recorder.nemesis(&a.fault.start_f(), value, note);
                *self.active.lock().unwrap_or_else(|e| e.into_inner()) = Some(a.fault.to_string());
                self.current = Some(a);
                Ok(())
            }
            Err(e) => {
                self.log
                    .say(&format!("nemesis: could not apply a fault: {e}"));
                let _ =
                    self.recorder
                        .nemesis("fault-refused", step_value(step), Some(e.to_string()));
                Err(e.to_string())
            }
        }
    }

    fn heal(&mut self, late: Option<Duration>) {
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
            let _ = self.recorder.nemesis(&a.fault.stop_f(), Value::Null, err);
            *self.active.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
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
        let _ = self
            .recorder
            .nemesis("fault-skipped", step_value(step), Some(why.to_string()));
    }
}

/// Applies and heals faults on the schedule until it ends, the workload's time limit `end`
/// passes or `stop` is set; `active` tells the progress display which fault is applied now.
/// Every step ends in the history (see [`drive`]).
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
    let mut driver = RunDriver {
        nem,
        recorder,
        start,
        stop,
        active,
        log,
        current: None,
    };
    drive(schedule, end, &mut driver);
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
        fn heal(&mut self, _late: Option<Duration>) {
            self.now += Duration::from_millis(10);
            self.history
                .push((self.now.as_millis() as u64, "stop".into(), None));
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
