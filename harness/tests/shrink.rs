//! End-to-end: `faultline shrink` of a stale-read etcd run (serializable reads under
//! partitions) on temporary local clusters: stopped by its budget after one candidate, by
//! Ctrl-C in the next, then resumed to its end, with a schedule of at most 2 faults whose
//! run in the store is invalid and ran exactly the kept faults. Needs root: built without
//! it, the test is listed as ignored (CI runs it as root).

use clusters::testing::{home, require_root};
use harness::index::Index;
use harness::plan::TestPlan;
use harness::shrink::{Change, Search};
use nemesis::schedule::Action;
use nemesis::Kind;
use std::path::Path;
use std::time::{Duration, Instant};
mod common;
use common::{attempted, cmd, faultline, faultline_stored, journal, latest, read, results, text};

/// `RUN/shrink/state.json`, as the test reads it.
#[derive(serde::Deserialize)]
struct State {
    run: String,
    search: Search,
}

fn state(run: &Path) -> State {
    let path = run.join("shrink/state.json");
    serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// How many faults a plan's schedule starts.
fn faults(plan: &TestPlan) -> usize {
    plan.schedule
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Start { .. }))
        .count()
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn a_stale_read_run_shrinks_to_at_most_two_faults_that_still_reproduce() {
    require_root();
    let home = home();
    // A failing run: 12 s of serializable reads with a partition every 2 s (3 faults).
    let out = faultline_stored(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:5",
            "--workload",
            "register",
            "--read-mode",
            "serializable",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "2s",
            "--time-limit",
            "12s",
            "--seed",
            "2",
            "--test-count",
            "4",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "no stale read in 4 runs");
    let run = latest(home.path());
    let original = common::plan(&run);
    assert_eq!(faults(&original), 3);
    let run_arg = run.to_str().expect("a UTF-8 path");

    // A budget spent after the first candidate (the original again) stops the shrink there.
    let out = faultline(home.path(), &["shrink", run_arg, "--budget", "1s"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("stopped: the budget of 1s is spent"), "{err}");
    let first = state(&run);
    assert_eq!(first.search.trials.len(), 1);
    assert_eq!(
        first.search.started, 1,
        "no cell taken by a candidate not started"
    );
    assert_eq!(first.search.trials[0].cell, "c1");
    assert_eq!(first.search.trials[0].candidate.change, Change::Original);
    assert!(first.search.trials[0].reproduced, "{err}");

    // Ctrl-C in the second candidate: its run heals and is checked, the state is saved, and
    // the candidate is left for the resume.
    interrupt_second_candidate(home.path(), run_arg, &run);
    let stopped = state(&run);
    assert_eq!(stopped.search.trials.len(), 1);
    assert_eq!(stopped.search.started, 2);

    // Resumed to its end.
    // One try per candidate keeps the suite short (the unit tests cover --tries).
    let out = faultline(home.path(), &["shrink", run_arg, "--tries", "1"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("resuming the shrink of"), "{err}");
    let done = state(&run);
    assert!(done.search.finished(), "{err}");
    assert!(run.ends_with(&done.run));
    let cells: Vec<&str> = done.search.trials.iter().map(|t| t.cell.as_str()).collect();
    assert_eq!(
        &cells[..2],
        ["c1", "c3"],
        "c2 was taken by the interrupted run"
    );
    check_smallest_plan(home.path(), &run, &done.search);
}

/// Starts `faultline shrink RUN`, presses Ctrl-C once its second candidate runs, and checks
/// that it stopped saying so.
fn interrupt_second_candidate(home: &Path, run_arg: &str, run: &Path) {
    let child = cmd(home, &["shrink", run_arg])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(120);
    while state(run).search.started < 2 {
        assert!(
            Instant::now() < deadline,
            "the second candidate did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Into its workload.
    std::thread::sleep(Duration::from_secs(8));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("wait");
    let err = text(&out.stderr);
    eprintln!("$ faultline shrink {run_arg} (Ctrl-C)\n{err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("stopped: interrupted"), "{err}");
}

/// The smallest plan: at most 2 faults, accepted by `--config`, and the run that kept it is
/// invalid, ran exactly its faults, and is tagged with the shrink in the index.
fn check_smallest_plan(home: &Path, run: &Path, search: &Search) {
    let shrink = run.join("shrink");
    let best = common::plan(&shrink);
    assert!(best.explicit_schedule);
    assert!(faults(&best) <= 2, "{:?}", best.schedule);
    assert_eq!(faults(&best), search.best.faults.len());
    // Accepted by `faultline test --config`, schedule and all.
    let parsed = <harness::cli::Cli as clap::Parser>::try_parse_from([
        "faultline",
        "test",
        "--cluster",
        "local:5",
        "--config",
        shrink.join("test.yaml").to_str().expect("UTF-8"),
    ])
    .expect("parse");
    let harness::cli::Command::Test(args) = parsed.command else {
        panic!("not a test")
    };
    let planned = harness::plan::make(&args, &workloads::Registry::builtin(), 0).expect("plan");
    assert_eq!(planned.plan.schedule.steps, best.schedule.steps);
    // The last candidate that reproduced ran the best plan, and one of its runs is invalid
    // with the kept faults applied, no more.
    let kept = search
        .trials
        .iter()
        .rev()
        .find(|t| t.reproduced)
        .expect("a reproduced candidate");
    assert_eq!(kept.candidate.size, search.best);
    let store = common::store(home);
    let invalid = kept
        .runs
        .iter()
        .filter_map(|r| r.dir.as_ref())
        .map(|d| store.join(d))
        .find(|d| results(d).head.valid == checkers::Verdict::Invalid)
        .expect("an invalid run of the kept candidate");
    let ran = common::plan(&invalid);
    assert_eq!(ran.schedule.steps, best.schedule.steps);
    assert_eq!(
        (ran.time_limit, ran.concurrency, ran.ops_per_key),
        (best.time_limit, best.concurrency, best.ops_per_key)
    );
    assert_eq!(
        attempted(&journal(&invalid), Kind::Partition),
        faults(&best)
    );
    // Every candidate's runs are in the index under the shrink's tag, and in steps.md.
    let tag = format!(
        "shrink-{}-{}",
        original_name(run),
        run.file_name().and_then(|n| n.to_str()).expect("time")
    );
    let rows = Index::open(&store)
        .expect("index")
        .campaign(&tag)
        .expect("rows");
    let tried: usize = search.trials.iter().map(|t| t.runs.len()).sum();
    assert!(rows.len() >= tried, "{} rows, {tried} tried", rows.len());
    assert!(rows
        .iter()
        .all(|r| r.test == format!("{}-shrink", original_name(run))));
    let steps = read(shrink.join("steps.md"));
    for t in &search.trials {
        assert!(steps.contains(&format!("| {} |", t.cell)), "{steps}");
    }
    assert!(steps.contains("finished"), "{steps}");
}

/// The test's name of a run directory (`STORE/TEST/TIME`).
fn original_name(run: &Path) -> String {
    run.parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .expect("test name")
        .to_string()
}
