//! Test power: how much a run exercised, measured from its history. This module measures
//! achieved concurrency (ops per worker and per node, ops in flight); the run records it in
//! results.json and the report beside the verdict, so that a VALID from an effectively serial
//! run is visibly weak.

use checkers::history::{Event, EventKind, Process};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
}
