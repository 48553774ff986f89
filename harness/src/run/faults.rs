//! The fault phase: the nemesis for a run (journaled in the cluster's journal, mirrored into
//! the store, with the database's process hooks), and the thread that applies and heals
//! faults on the schedule, writing each into the history as a `process: "nemesis"` event.

use super::RunLog;
use crate::exit::{bad_input, internal, Failure};
use crate::hooks::DbHooks;
use crate::recorder::Recorder;
use checkers::history::Value;
use clusters::Cluster;
use nemesis::schedule::{Action, Kind, Schedule};
use nemesis::{Applied, Journal, Nemesis, NemesisError};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workloads::Database;

/// The run's nemesis, after healing what an earlier run left and preparing clock faults.
pub fn nemesis<'c>(
    cluster: &'c Cluster,
    db: Arc<dyn Database>,
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
    let nem = Nemesis::new(cluster, journal).with_hooks(Arc::new(DbHooks(db)));
    // Heal what an earlier run left: what the journal lists, and, through the sweep, what the
    // nodes themselves record (a controller that lost its journal, a fault applied by hand).
    let leftover = nem.journal().pending().map_err(internal)?;
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
        return Err(internal(anyhow::anyhow!(
            "faults left by an earlier run could not be healed: {:?} {:?}; run `faultline heal --cluster FILE`",
            report.failed,
            report.sweep_errors
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

/// Applies and heals faults on the schedule until it ends or `stop` is set; `active` tells
/// the progress display which fault is applied now.
pub fn run_schedule(
    nem: &Nemesis<'_>,
    schedule: &Schedule,
    recorder: &Recorder,
    start: Instant,
    stop: &AtomicBool,
    active: &Mutex<Option<String>>,
    log: &RunLog,
) {
    let mut current: Option<Applied> = None;
    for step in &schedule.steps {
        if !sleep_until(start + Duration::from_millis(step.at_ms), stop) {
            break;
        }
        match &step.action {
            Action::Start { fault } => {
                let result = nem
                    .resolve(fault, &mut step.rng())
                    .and_then(|f| nem.apply(f));
                match result {
                    Ok(a) => {
                        log.say(&format!("nemesis: {}", a.fault));
                        let value = Value::from_json(a.fault.history_value());
                        let _ = recorder.nemesis(&a.fault.start_f(), value, None);
                        *active.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(a.fault.to_string());
                        current = Some(a);
                    }
                    Err(e) => {
                        log.say(&format!("nemesis: could not apply a fault: {e}"));
                        let _ = recorder.nemesis("fault-refused", Value::Null, Some(e.to_string()));
                    }
                }
            }
            Action::Heal => {
                if let Some(a) = current.take() {
                    let r = nem.heal(&a);
                    let err = r.as_ref().err().map(ToString::to_string);
                    log.say(&format!(
                        "nemesis: healed {}{}",
                        a.fault.kind(),
                        err.as_ref()
                            .map(|e| format!(" (FAILED: {e})"))
                            .unwrap_or_default()
                    ));
                    let _ = recorder.nemesis(&a.fault.stop_f(), Value::Null, err);
                    *active.lock().unwrap_or_else(|e| e.into_inner()) = None;
                }
            }
        }
    }
}
