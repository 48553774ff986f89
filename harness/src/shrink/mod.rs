//! The search of `faultline shrink`, without I/O: from a failing run's plan, candidates that
//! are smaller in one way at a time, each kept when the failure reproduces
//! ([`Search::record`]):
//!
//! 1. the original plan again (does it reproduce at all?);
//! 2. the fault schedule by delta debugging ([`ddmin`]) over its faults, a fault being a
//!    start step with the heal step after it ([`Fault`]); the steps keep their times;
//! 3. a shorter time limit, halved toward just after the last kept fault's heal;
//! 4. fewer workers (concurrency), halved toward 1;
//! 5. fewer keys, for a keyed workload: `ops-per-key` doubled while the run's ops (rate ×
//!    time limit) would still spread over more than one key.
//!
//! The whole state ([`Search`], with every trial) is plain data (serde): `shrink_cmd` saves
//! it after every candidate, and a search read back continues with the same candidate.

pub mod ddmin;
pub mod steps;

use crate::plan::TestPlan;
use ddmin::Ddmin;
use nemesis::schedule::{Action, Schedule};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A fault of the schedule: its start step and the heal step after it, removed or kept
/// together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// The start step's index in the original schedule.
    pub start: usize,
    /// The heal step's index, if the schedule heals it (the run heals every fault at the end
    /// anyway).
    pub heal: Option<usize>,
    /// The fault's kind (`partition`).
    pub kind: String,
    /// When it starts, in ms after the workload starts.
    pub from_ms: u64,
    /// When it is healed, if the schedule heals it.
    pub to_ms: Option<u64>,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |ms: u64| humantime::format_duration(Duration::from_millis(ms));
        match self.to_ms {
            Some(to) => write!(f, "{} {}-{}", self.kind, s(self.from_ms), s(to)),
            None => write!(f, "{} from {}", self.kind, s(self.from_ms)),
        }
    }
}

/// The faults of a schedule, in time order: each start step with the heal step right after
/// it. Heal steps with no fault before them are left out (they heal nothing).
pub fn faults(schedule: &Schedule) -> Vec<Fault> {
    let steps = &schedule.steps;
    steps
        .iter()
        .enumerate()
        .filter_map(|(i, step)| {
            let Action::Start { fault } = &step.action else {
                return None;
            };
            let heal = steps
                .get(i + 1)
                .filter(|s| s.action == Action::Heal)
                .map(|s| (i + 1, s.at_ms));
            Some(Fault {
                start: i,
                heal: heal.map(|h| h.0),
                kind: fault.kind().to_string(),
                from_ms: step.at_ms,
                to_ms: heal.map(|h| h.1),
            })
        })
        .collect()
}

/// How big a plan is, in the ways the search makes it smaller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size {
    /// The faults kept (indexes into [`Search::faults`]).
    pub faults: Vec<usize>,
    /// The workload's time limit, in ms.
    pub time_limit_ms: u64,
    /// Client workers.
    pub concurrency: usize,
    /// Ops per key.
    pub ops_per_key: u64,
}

impl Size {
    /// The size of `plan`, with all of `faults`.
    pub fn of(plan: &TestPlan, faults: usize) -> Size {
        Size {
            faults: (0..faults).collect(),
            time_limit_ms: plan.time_limit.as_millis() as u64,
            concurrency: plan.concurrency,
            ops_per_key: plan.ops_per_key,
        }
    }
}

/// What a candidate changes from the best plan so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// Nothing: the original plan, run again to see that it reproduces.
    Original,
    /// These faults removed (indexes into [`Search::faults`]).
    Faults {
        /// The faults removed.
        removed: Vec<usize>,
    },
    /// A shorter time limit.
    TimeLimit {
        /// From (ms).
        from_ms: u64,
        /// To (ms).
        to_ms: u64,
    },
    /// Fewer workers.
    Concurrency {
        /// From.
        from: usize,
        /// To.
        to: usize,
    },
    /// More ops per key, so fewer keys.
    OpsPerKey {
        /// From.
        from: u64,
        /// To.
        to: u64,
    },
}

/// A plan to try: what it changes, and its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// What it changes from the best plan so far.
    pub change: Change,
    /// Its size.
    pub size: Size,
}

/// One try of a candidate: a run in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TryRun {
    /// The op stream's seed.
    pub seed: u64,
    /// The run's directory, relative to the store (`TEST/TIME`), if it was made.
    pub dir: Option<String>,
    /// Its verdict (`invalid`, `valid`, `unknown`, `error`), with the anomalies when invalid.
    pub verdict: String,
}

/// A candidate tried, with its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Its number, from 1, and its tag in the store's index (`c3`).
    pub cell: String,
    /// What it was.
    pub candidate: Candidate,
    /// Whether the failure reproduced in one of its tries.
    pub reproduced: bool,
    /// Its tries.
    pub runs: Vec<TryRun>,
}

/// Where the search is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
enum Phase {
    Original,
    Faults { ddmin: Ddmin },
    TimeLimit,
    Concurrency,
    Keys,
    Done,
    NotReproduced,
}

/// How a search stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not finished; nothing smaller found yet.
    Searching,
    /// A smaller plan reproduces (the search may go on).
    Smaller,
    /// Finished: nothing could be removed.
    Minimal,
    /// The original plan did not reproduce.
    NotReproduced,
}

/// The shrink's whole state: the original plan's faults and size, the best size so far,
/// where the search is, and every trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Search {
    /// The original schedule's faults.
    pub faults: Vec<Fault>,
    /// Time between fault steps, in ms (the margin kept after the last heal).
    pub interval_ms: u64,
    /// Ops per second (how many keys a time limit uses).
    pub rate: f64,
    /// Whether the workload has keys (`ops-per-key` applies).
    pub keyed: bool,
    /// The original plan's size.
    pub original: Size,
    /// The smallest size that reproduced.
    pub best: Size,
    phase: Phase,
    /// Every candidate tried, in order.
    pub trials: Vec<Trial>,
    /// Candidates started, those stopped before a verdict included: each gets the next
    /// cell (`c1`, `c2`, ...), so that a run stopped midway is never taken for its retry.
    #[serde(default)]
    pub started: u64,
}

/// The shortest time limit the search tries, in ms.
const MIN_TIME_LIMIT_MS: u64 = 1000;

impl Search {
    /// A search from `plan`, a failing run's (`keyed`: its workload has keys).
    pub fn new(plan: &TestPlan, keyed: bool) -> Search {
        let faults = faults(&plan.schedule);
        let original = Size::of(plan, faults.len());
        Search {
            interval_ms: plan.schedule.interval_ms.max(1),
            rate: plan.rate,
            keyed,
            best: original.clone(),
            original,
            faults,
            phase: Phase::Original,
            trials: Vec::new(),
            started: 0,
        }
    }

    /// The next candidate to try, or `None` when the search is over. The same until
    /// [`Search::record`] is called.
    pub fn pending(&mut self) -> Option<Candidate> {
        loop {
            let best = self.best.clone();
            let change = match &mut self.phase {
                Phase::Original => Some(Change::Original),
                Phase::Faults { ddmin } => match ddmin.pending() {
                    Some(keep) => {
                        let removed = best
                            .faults
                            .iter()
                            .copied()
                            .filter(|f| !keep.contains(f))
                            .collect();
                        return Some(Candidate {
                            change: Change::Faults { removed },
                            size: Size {
                                faults: keep,
                                ..best
                            },
                        });
                    }
                    None => None,
                },
                Phase::TimeLimit => {
                    let to = (best.time_limit_ms / 2).max(self.floor_ms(&best.faults));
                    (to < best.time_limit_ms).then_some(Change::TimeLimit {
                        from_ms: best.time_limit_ms,
                        to_ms: to,
                    })
                }
                Phase::Concurrency => {
                    let to = (best.concurrency / 2).max(1);
                    (to < best.concurrency).then_some(Change::Concurrency {
                        from: best.concurrency,
                        to,
                    })
                }
                Phase::Keys => (self.keyed && self.keys(&best) > 1).then(|| Change::OpsPerKey {
                    from: best.ops_per_key,
                    to: best.ops_per_key.saturating_mul(2),
                }),
                Phase::Done | Phase::NotReproduced => return None,
            };
            match change {
                Some(change) => {
                    let size = best.with(&change);
                    return Some(Candidate { change, size });
                }
                None => self.next_phase(),
            }
        }
    }

    /// Records the verdict of the candidate [`Search::pending`] gave, with its runs.
    pub fn record(&mut self, cell: String, reproduced: bool, runs: Vec<TryRun>) {
        let Some(candidate) = self.pending() else {
            return;
        };
        if reproduced {
            self.best = candidate.size.clone();
        }
        match &mut self.phase {
            Phase::Original if reproduced => {
                self.phase = Phase::Faults {
                    ddmin: Ddmin::new(self.best.faults.clone()),
                }
            }
            Phase::Original => self.phase = Phase::NotReproduced,
            Phase::Faults { ddmin } => ddmin.record(reproduced),
            _ if !reproduced => self.next_phase(),
            _ => {}
        }
        self.trials.push(Trial {
            cell,
            candidate,
            reproduced,
            runs,
        });
    }

    /// How the search stands.
    pub fn outcome(&self) -> Outcome {
        match self.phase {
            Phase::NotReproduced => Outcome::NotReproduced,
            _ if self.best != self.original => Outcome::Smaller,
            Phase::Done => Outcome::Minimal,
            _ => Outcome::Searching,
        }
    }

    /// Whether the search is over.
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::NotReproduced)
    }

    /// Where the search is, for people (`faults`, `time-limit`, ...).
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Original => "the original",
            Phase::Faults { .. } => "faults",
            Phase::TimeLimit => "time limit",
            Phase::Concurrency => "workers",
            Phase::Keys => "keys",
            Phase::Done => "done",
            Phase::NotReproduced => "not reproduced",
        }
    }

    fn next_phase(&mut self) {
        self.phase = match &self.phase {
            Phase::Original => Phase::Faults {
                ddmin: Ddmin::new(self.best.faults.clone()),
            },
            Phase::Faults { .. } => Phase::TimeLimit,
            Phase::TimeLimit => Phase::Concurrency,
            Phase::Concurrency => Phase::Keys,
            Phase::Keys | Phase::Done => Phase::Done,
            Phase::NotReproduced => Phase::NotReproduced,
        }
    }

    /// The shortest time limit that still holds the kept faults: one interval after the last
    /// one's heal (or its start, for a fault the schedule does not heal).
    fn floor_ms(&self, kept: &[usize]) -> u64 {
        kept.iter()
            .filter_map(|&i| self.faults.get(i))
            .map(|f| f.to_ms.unwrap_or(f.from_ms + self.interval_ms) + self.interval_ms)
            .max()
            .unwrap_or(0)
            .max(MIN_TIME_LIMIT_MS)
    }

    /// How many keys a run of `size` uses, about: its ops (rate × time limit) over ops per key.
    fn keys(&self, size: &Size) -> u64 {
        let ops = (self.rate * size.time_limit_ms as f64 / 1000.0)
            .ceil()
            .max(1.0) as u64;
        ops.div_ceil(size.ops_per_key.max(1))
    }

    /// `original` (the failing run's plan) made `size`: the kept faults' steps as an explicit
    /// schedule, with their times, and the time limit, workers and ops per key of `size`.
    pub fn plan(&self, original: &TestPlan, size: &Size) -> TestPlan {
        let mut steps: Vec<usize> = size
            .faults
            .iter()
            .filter_map(|&i| self.faults.get(i))
            .flat_map(|f| std::iter::once(f.start).chain(f.heal))
            .collect();
        steps.sort_unstable();
        let mut plan = original.clone();
        plan.schedule.steps = steps
            .iter()
            .filter_map(|&i| original.schedule.steps.get(i).cloned())
            .collect();
        plan.explicit_schedule = true;
        plan.time_limit = Duration::from_millis(size.time_limit_ms);
        plan.concurrency = size.concurrency;
        plan.ops_per_key = size.ops_per_key;
        plan
    }

    /// What a change is, for people (`without partition 2s-4s`, `time limit 30s -> 15s`).
    pub fn describe(&self, change: &Change) -> String {
        let s = |ms: u64| humantime::format_duration(Duration::from_millis(ms)).to_string();
        match change {
            Change::Original => "the original plan".to_string(),
            Change::Faults { removed } => format!(
                "without {}",
                removed
                    .iter()
                    .map(|&i| match self.faults.get(i) {
                        Some(f) => format!("#{} ({f})", i + 1),
                        None => format!("#{}", i + 1),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Change::TimeLimit { from_ms, to_ms } => {
                format!("time limit {} -> {}", s(*from_ms), s(*to_ms))
            }
            Change::Concurrency { from, to } => format!("workers {from} -> {to}"),
            Change::OpsPerKey { from, to } => format!("ops per key {from} -> {to}"),
        }
    }

    /// A size for people: `2 of 7 faults (#2 partition 4s-6s, ...), 12s, 5 workers, 200 ops/key`.
    pub fn describe_size(&self, size: &Size) -> String {
        let kept: Vec<String> = size
            .faults
            .iter()
            .filter_map(|&i| self.faults.get(i).map(|f| format!("#{} {f}", i + 1)))
            .collect();
        format!(
            "{} of {} faults{}, time limit {}, {} workers, {} ops per key",
            size.faults.len(),
            self.faults.len(),
            if kept.is_empty() {
                String::new()
            } else {
                format!(" ({})", kept.join(", "))
            },
            humantime::format_duration(Duration::from_millis(size.time_limit_ms)),
            size.concurrency,
            size.ops_per_key
        )
    }
}

impl Size {
    /// This size with `change` made.
    fn with(&self, change: &Change) -> Size {
        let mut s = self.clone();
        match *change {
            Change::Original | Change::Faults { .. } => {}
            Change::TimeLimit { to_ms, .. } => s.time_limit_ms = to_ms,
            Change::Concurrency { to, .. } => s.concurrency = to,
            Change::OpsPerKey { to, .. } => s.ops_per_key = to,
        }
        s
    }
}

/// `1 candidate`, `3 candidates`.
pub fn candidates(n: usize) -> String {
    format!("{n} candidate{}", if n == 1 { "" } else { "s" })
}

/// What a try of a candidate gave, as [`drive`]'s caller reports it.
pub enum Tested {
    /// Its verdict: whether the failure reproduced, and its runs.
    Done(bool, Vec<TryRun>),
    /// Stopped before it had a verdict (Ctrl-C): it is tried again on resume.
    Stop,
}

/// Runs `search` on while `may_start` allows another candidate (a budget): asks `test` for
/// each candidate's verdict, with the cell it is tagged with (`c1`, `c2`, ..., counting
/// every candidate started), and calls `saved` when a candidate starts (its cell is taken)
/// and when its verdict is recorded. Returns whether the search finished.
pub fn drive(
    search: &mut Search,
    mut may_start: impl FnMut() -> bool,
    mut test: impl FnMut(&Search, &Candidate, &str) -> Tested,
    mut saved: impl FnMut(&Search),
) -> bool {
    while let Some(candidate) = search.pending() {
        if !may_start() {
            return false;
        }
        search.started += 1;
        let cell = format!("c{}", search.started);
        saved(search);
        match test(search, &candidate, &cell) {
            Tested::Done(reproduced, runs) => {
                search.record(cell, reproduced, runs);
                saved(search);
            }
            Tested::Stop => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests;
