//! Adapter faults through the scheduler and the recorder (the run's own code path, without a
//! cluster): an adapter that hangs, one that crashes mid-operation, one that prints garbage,
//! one that answers an unknown id. In each, the run goes on, the affected ops are `info`,
//! their workers continue as new processes, the history is valid JSONL that the checker
//! judges valid (the adapters share one honest state), and no op is lost: every invoke has
//! its completion, and every acknowledged add is in the final read.

use checkers::history::Value;
use checkers::verdict::Verdict;
use harness::recorder::Recorder;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workloads::adapter::{AdapterClient, AdapterSpec};
use workloads::gen::{Gen, Limit, Source, UntilOk};
use workloads::workload::{CasRegisterWorkload, SetWorkload, Workload, WorkloadOptions};
use workloads::Client;

const WORKERS: usize = 4;

fn clients(dir: &Path, fault: Option<&str>, timeout: Duration) -> Vec<(String, Arc<dyn Client>)> {
    let noop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/noop-adapter.py");
    (0..WORKERS)
        .map(|w| {
            let mut argv = vec![
                "python3".to_string(),
                noop.display().to_string(),
                "--state".into(),
                dir.join("state.json").display().to_string(),
            ];
            if let Some(f) = fault {
                argv.extend(["--fault".into(), f.into(), "--after".into(), "7".into()]);
            }
            let client: Arc<dyn Client> = Arc::new(
                AdapterClient::new(AdapterSpec {
                    argv,
                    cwd: None,
                    init: serde_json::Map::new(),
                    stderr: Some(dir.join(format!("{w}.stderr"))),
                    timeout,
                    start_timeout: Duration::from_secs(20),
                })
                .unwrap(),
            );
            (format!("n{}", w % 2 + 1), client)
        })
        .collect()
}

/// Runs `ops` ops of `workload` and then its final ops; returns the history's lines.
fn run(
    dir: &Path,
    workload: &dyn Workload,
    fault: Option<&str>,
    ops: u64,
) -> Vec<serde_json::Value> {
    let timeout = Duration::from_millis(300);
    let history = dir.join("history.jsonl");
    let recorder = Recorder::create(&history, Instant::now()).unwrap();
    let clients = clients(dir, fault, timeout);
    let stop = AtomicBool::new(false);
    let generator: Mutex<Box<dyn Gen>> = Mutex::new(Box::new(Limit::new(
        ops,
        Source::new(workload.ops(5, &WorkloadOptions { ops_per_key: 40 })),
    )));
    let processes = harness::scheduler::run(harness::scheduler::Workers {
        clients: clients.clone(),
        processes: harness::scheduler::first_processes(WORKERS),
        generator: &generator,
        recorder: &recorder,
        start: Instant::now(),
        op_timeout: timeout,
        stop: &stop,
    })
    .expect("the workload runs to its end");
    let finals = workload.final_ops();
    if !finals.is_empty() {
        let generator: Mutex<Box<dyn Gen>> = Mutex::new(Box::new(UntilOk::new(
            finals,
            Duration::from_millis(50),
            Duration::from_secs(30),
        )));
        harness::scheduler::run(harness::scheduler::Workers {
            clients,
            processes,
            generator: &generator,
            recorder: &recorder,
            start: Instant::now(),
            op_timeout: timeout,
            stop: &stop,
        })
        .expect("the final ops run");
    }
    let checked = harness::checking::check_file(
        &workload.checker(),
        &history,
        checkers::read::Format::Jsonl,
        false,
    )
    .unwrap_or_else(|e| panic!("{fault:?}: the history does not check: {e:?}"));
    assert_eq!(
        checked.verdict,
        Verdict::Valid,
        "{fault:?}: {}",
        checked.summary()
    );
    std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

/// Every invoke completes; returns the completions of type `kind`.
fn completions<'a>(lines: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    let invokes = lines.iter().filter(|l| l["type"] == "invoke").count();
    let done = lines
        .iter()
        .filter(|l| ["ok", "fail", "info"].contains(&l["type"].as_str().unwrap_or("")))
        .count();
    assert_eq!(invokes, done, "an invoke without its completion");
    lines.iter().filter(|l| l["type"] == kind).collect()
}

#[test]
fn each_adapter_fault_gives_info_and_the_run_goes_on() {
    for (fault, why) in [
        ("hang", "no reply from the adapter within"),
        ("crash", "the adapter exited"),
        ("garbage", "adapter wrote garbage"),
        ("wrong-id", "while op"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let lines = run(dir.path(), &CasRegisterWorkload, Some(fault), 120);
        let infos = completions(&lines, "info");
        // Each worker misbehaves after every 7 answers: at least one fault per worker.
        assert!(infos.len() >= WORKERS, "{fault}: {} info ops", infos.len());
        for i in &infos {
            let e = i["error"].as_str().unwrap_or("");
            assert!(e.contains(why), "{fault}: {e}");
        }
        // The run went on: ok ops after the faults, on processes renumbered after info.
        assert!(completions(&lines, "ok").len() > 40, "{fault}");
        let max_process = lines
            .iter()
            .filter_map(|l| l["process"].as_u64())
            .max()
            .unwrap();
        assert!(
            max_process >= WORKERS as u64,
            "{fault}: no process was retired"
        );
        // The adapters' stderr was kept, one start line per process.
        let starts: usize = (0..WORKERS)
            .map(|w| {
                std::fs::read_to_string(dir.path().join(format!("{w}.stderr")))
                    .unwrap()
                    .matches("== faultline: adapter start")
                    .count()
            })
            .sum();
        assert!(starts > WORKERS, "{fault}: {starts} starts");
    }
}

#[test]
fn an_adapter_crashing_mid_add_loses_no_acknowledged_add() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run(dir.path(), &SetWorkload, Some("crash"), 100);
    let final_read = lines
        .iter()
        .rev()
        .find(|l| l["type"] == "ok" && l["f"] == "read")
        .expect("a final read");
    let read: Vec<i64> = final_read["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_i64())
        .collect();
    for ok in completions(&lines, "ok") {
        if ok["f"] == "add" {
            let v = ok["value"].as_i64().unwrap();
            assert!(read.contains(&v), "acknowledged add {v} lost");
        }
    }
    // The crashed adds were applied before the crash: info, and in the final read.
    let crashed: Vec<i64> = completions(&lines, "info")
        .iter()
        .filter_map(|l| l["value"].as_i64())
        .collect();
    assert!(!crashed.is_empty());
    assert!(crashed.iter().all(|v| read.contains(v)));
    let _ = Value::Null;
}
