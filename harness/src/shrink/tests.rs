//! The search on pure predicates: which faults, time limits, workers and keys a "failure"
//! needs is decided by a closure, so every answer is known.

use super::*;
use crate::cli::TestArgs;
use clap::Parser;
use workloads::Registry;

/// A failing run's plan: 30 s of register on etcd, a partition every 2 s (7 faults).
fn original() -> TestPlan {
    #[derive(Parser)]
    struct W {
        #[command(flatten)]
        t: TestArgs,
    }
    let args = W::parse_from([
        "t",
        "--cluster",
        "local:3",
        "--workload",
        "register",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "2s",
        "--time-limit",
        "30s",
        "--concurrency",
        "10",
        "--rate",
        "100",
        "--ops-per-key",
        "200",
        "--seed",
        "3",
    ])
    .t;
    crate::plan::make(&args, &Registry::builtin(), 0)
        .expect("plan")
        .plan
}

/// Runs a search to its end (or `budget` candidates) with `fails` deciding each candidate.
fn run(search: &mut Search, fails: &dyn Fn(&Search, &Size) -> bool, budget: usize) -> bool {
    let mut started = 0;
    drive(
        search,
        || {
            started += 1;
            started <= budget
        },
        |s, c, _cell| Tested::Done(fails(s, &c.size), Vec::new()),
        |_| {},
    )
}

/// Runs a search with `fails` until candidate number `stop_at` (from 1), which is stopped
/// midway as Ctrl-C stops one (`Tested::Stop`).
fn run_until_stopped(
    search: &mut Search,
    fails: &dyn Fn(&Search, &Size) -> bool,
    stop_at: usize,
) -> bool {
    let mut n = 0;
    drive(
        search,
        || true,
        |s, c, _cell| {
            n += 1;
            if n == stop_at {
                Tested::Stop
            } else {
                Tested::Done(fails(s, &c.size), Vec::new())
            }
        },
        |_| {},
    )
}

/// Fails when fault `i` is kept and the run lasts until one interval past its heal.
fn needs_fault(s: &Search, size: &Size, i: usize) -> bool {
    let f = &s.faults[i];
    size.faults.contains(&i) && size.time_limit_ms >= f.to_ms.unwrap_or(u64::MAX)
}

#[test]
fn the_faults_are_the_schedules_starts_with_their_heals() {
    let plan = original();
    let faults = faults(&plan.schedule);
    assert_eq!(plan.schedule.steps.len(), 14);
    assert_eq!(faults.len(), 7);
    for (n, f) in faults.iter().enumerate() {
        assert_eq!(f.start, 2 * n);
        assert_eq!(f.heal, Some(2 * n + 1));
        assert_eq!(f.from_ms, 2000 * (2 * n as u64 + 1));
        assert_eq!(f.to_ms, Some(f.from_ms + 2000));
        assert_eq!(f.kind, "partition");
    }
    assert_eq!(faults[1].to_string(), "partition 6s-8s");
}

#[test]
fn finds_the_one_fault_and_shrinks_time_workers_and_keys() {
    let plan = original();
    let mut s = Search::new(&plan, true);
    let fails = |s: &Search, size: &Size| needs_fault(s, size, 3) && size.concurrency >= 3;
    assert!(run(&mut s, &fails, usize::MAX));
    assert_eq!(s.outcome(), Outcome::Smaller);
    assert_eq!(s.best.faults, [3]);
    // Fault #4 is healed at 16 s; the floor is one interval later.
    assert_eq!(s.best.time_limit_ms, 18_000);
    assert_eq!(s.best.concurrency, 5, "10 -> 5 kept, 5 -> 2 refused");
    // 100 ops/s for 18 s is 1800 ops: 200 -> 400 -> ... -> 3200 ops per key, one key.
    assert_eq!(s.best.ops_per_key, 3200);
    assert!(fails(&s, &s.best));
    // Every trial's verdict is the predicate's, and the first is the original.
    assert_eq!(s.trials[0].candidate.change, Change::Original);
    for t in &s.trials {
        assert_eq!(t.reproduced, fails(&s, &t.candidate.size), "{t:?}");
    }
    // The smallest plan: the fault's two steps as they were, used as written.
    let small = s.plan(&plan, &s.best);
    assert!(small.explicit_schedule);
    assert_eq!(small.schedule.steps, plan.schedule.steps[6..8]);
    assert_eq!(small.time_limit, Duration::from_secs(18));
    assert_eq!((small.concurrency, small.ops_per_key), (5, 3200));
    assert_eq!(small.seed, plan.seed);
    assert_eq!(
        s.describe_size(&s.best),
        "1 of 7 faults (#4 partition 14s-16s), time limit 18s, 5 workers, 3200 ops per key"
    );
}

#[test]
fn finds_a_cause_of_two_faults() {
    let plan = original();
    let mut s = Search::new(&plan, false);
    let fails = |s: &Search, size: &Size| needs_fault(s, size, 1) && needs_fault(s, size, 5);
    assert!(run(&mut s, &fails, usize::MAX));
    assert_eq!(s.best.faults, [1, 5]);
    assert_eq!(s.best.time_limit_ms, 26_000, "fault #6 healed at 24 s");
    assert_eq!(s.best.concurrency, 1);
    assert_eq!(
        s.best.ops_per_key, 200,
        "not a keyed workload: keys untouched"
    );
    let removed: Vec<_> = s
        .trials
        .iter()
        .filter_map(|t| match &t.candidate.change {
            Change::Faults { removed } => Some(removed.len()),
            _ => None,
        })
        .collect();
    assert!(removed.len() <= 20, "{} fault candidates", removed.len());
    assert!(s
        .describe(&Change::Faults {
            removed: vec![0, 2]
        })
        .starts_with("without #1 (partition 2s-4s), #3 (partition 10s-12s)"));
}

#[test]
fn an_original_that_does_not_fail_is_said_so_after_one_candidate() {
    let mut s = Search::new(&original(), true);
    assert!(run(&mut s, &|_, _| false, usize::MAX));
    assert_eq!(s.outcome(), Outcome::NotReproduced);
    assert_eq!(s.trials.len(), 1);
    assert!(s.pending().is_none());
}

#[test]
fn a_failure_that_needs_everything_is_minimal() {
    // Everything is needed: the search ends where it started.
    let plan = original();
    let mut s = Search::new(&plan, true);
    let all = |_: &Search, size: &Size| {
        size.faults.len() == 7
            && size.time_limit_ms == 30_000
            && size.concurrency == 10
            && size.ops_per_key == 200
    };
    assert!(run(&mut s, &all, usize::MAX));
    assert_eq!(s.outcome(), Outcome::Minimal);
    assert_eq!(s.best, s.original);
}

#[test]
fn the_budget_stops_the_search_with_a_reproducing_best() {
    let plan = original();
    let fails = |s: &Search, size: &Size| needs_fault(s, size, 2);
    for budget in [0, 1, 3, 6] {
        let mut s = Search::new(&plan, true);
        assert!(!run(&mut s, &fails, budget), "budget {budget}");
        assert_eq!(s.trials.len(), budget);
        assert_eq!(
            s.started as usize, budget,
            "no cell for a candidate not started"
        );
        assert!(!s.finished());
        assert!(fails(&s, &s.best), "budget {budget}: {:?}", s.best);
    }
}

#[test]
fn a_saved_search_resumes_to_the_same_answer() {
    let plan = original();
    let fails = |s: &Search, size: &Size| needs_fault(s, size, 4) && size.concurrency >= 2;
    let mut whole = Search::new(&plan, true);
    assert!(run(&mut whole, &fails, usize::MAX));
    for (stop_after, midway) in [(1, false), (2, true), (5, false), (9, true)] {
        let mut s = Search::new(&plan, true);
        if midway {
            assert!(!run_until_stopped(&mut s, &fails, stop_after + 1));
        } else {
            assert!(!run(&mut s, &fails, stop_after));
        }
        assert_eq!(s.trials.len(), stop_after);
        let pending = s.pending();
        let text = serde_json::to_string(&s).expect("save");
        let mut resumed: Search = serde_json::from_str(&text).expect("load");
        assert_eq!(resumed, s);
        // The candidate stopped midway is the one tried first on resume.
        assert_eq!(resumed.pending(), pending);
        assert!(run(&mut resumed, &fails, usize::MAX));
        assert_eq!(resumed.best, whole.best, "stopped after {stop_after}");
        let changes = |s: &Search| {
            s.trials
                .iter()
                .map(|t| t.candidate.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(changes(&resumed), changes(&whole));
        // A candidate stopped midway took a cell: the cells go on after it.
        assert_eq!(
            resumed.started as usize,
            whole.trials.len() + usize::from(midway)
        );
        let cells: Vec<_> = resumed.trials.iter().map(|t| t.cell.clone()).collect();
        let skipped = format!("c{}", stop_after + 1);
        assert_eq!(cells.contains(&skipped), !midway, "{cells:?}");
    }
}
