//! Databases defined by a file (`--db FILE.yaml`): planned, recorded in test.yaml and
//! replayed; and run end to end on a local cluster with the no-op adapter, with process
//! faults on the definition's daemon and adapters that misbehave.

use clap::Parser;
use harness::cli::TestArgs;
use harness::exit::Exit;
use std::path::{Path, PathBuf};
use std::time::Duration;
use workloads::Registry;
mod common;
use checkers::history::{EventKind, Process};
use common::{cmd_stateless, db_option, has_f, plan, read, results};

#[derive(Parser)]
struct W {
    #[command(flatten)]
    t: TestArgs,
}

fn args(v: &[&str]) -> Result<TestArgs, clap::Error> {
    let mut all = vec!["t", "--cluster", "local:1"];
    all.extend_from_slice(v);
    W::try_parse_from(all).map(|w| w.t)
}

fn noop() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/noop-adapter.py"))
        .expect("examples/noop-adapter.py")
}

/// A database that is a `sleep` on each node (so that kill and pause have a process), served
/// by the no-op adapter with shared state (so that histories are linearizable), with
/// `fault` injected into every adapter.
fn definition(dir: &Path, fault: &str) -> PathBuf {
    let state = dir.join("state.json");
    let fault_args = if fault.is_empty() {
        String::new()
    } else {
        format!(", --fault, {fault}, --after, '20'")
    };
    let text = format!(
        "\
name: toy
about: a sleep on each node, served by the no-op adapter
workloads: [register, cas-register, set, list-append]
client: [python3, {noop}, --state, {state}{fault_args}]
options:
  nap: '100000'
files:
  - path: \"{{{{data_dir}}}}/toy.conf\"
    content: |
      node {{{{node}}}} ({{{{id}}}} of {{{{count}}}}) at {{{{address}}}}
commands:
  install: command -v sleep
  configure: grep -q 'node {{{{node}}}} ' {{{{data_dir}}}}/toy.conf
  daemon: sleep {{{{opt.nap}}}}
  ready: test -s {{{{data_dir}}}}/faultline.pid
logs: [\"{{{{data_dir}}}}/toy.conf\"]
",
        noop = noop().display(),
        state = state.display(),
    );
    let path = dir.join("toy.yaml");
    std::fs::write(&path, text).expect("write the definition");
    path
}

#[test]
fn a_definition_is_planned_recorded_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let def = definition(dir.path(), "");
    let d = def.to_str().unwrap();
    let plan = harness::plan::make(
        &args(&["--db", d, "--workload", "register", "--db-opt", "nap=5"]).unwrap(),
        &Registry::builtin(),
        1,
    )
    .unwrap();
    // The resolved plan carries the definition and its configuration as values.
    assert_eq!(
        plan.definition.as_deref(),
        Some(std::fs::canonicalize(&def).unwrap().as_path())
    );
    assert_eq!(plan.db.options()["nap"], "5");
    let plan = plan.plan;
    assert_eq!(plan.name, "toy-register");
    assert_eq!(Path::new(&plan.db), std::fs::canonicalize(&def).unwrap());
    assert_eq!(plan.db_options["nap"], "5");
    assert_eq!(plan.db_options["definition-sha256"].len(), 64);
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let mut written = plan.clone();
    written.write(&run).unwrap();
    let replay = args(&["--replay", run.to_str().unwrap()]).unwrap();
    let mut again = harness::plan::make(&replay, &Registry::builtin(), 0)
        .unwrap()
        .plan;
    again.started = written.started.clone();
    assert_eq!(again, written);
    // An edited definition cannot be replayed as if it were the same.
    std::fs::write(&def, std::fs::read_to_string(&def).unwrap() + "# edited\n").unwrap();
    let e = format!(
        "{:#}",
        harness::plan::make(&replay, &Registry::builtin(), 0).unwrap_err()
    );
    assert!(e.contains("changed since the run"), "{e}");
    // A test file names the definition relative to itself.
    let sub = dir.path().join("tests");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("t.yaml"), "db: ../toy.yaml\nworkload: set\n").unwrap();
    let p = harness::plan::make(
        &args(&["--config", sub.join("t.yaml").to_str().unwrap()]).unwrap(),
        &Registry::builtin(),
        1,
    )
    .unwrap()
    .plan;
    assert_eq!(Path::new(&p.db), std::fs::canonicalize(&def).unwrap());
    // A workload the definition does not serve, and a broken definition, are refused.
    std::fs::write(
        &def,
        std::fs::read_to_string(&def)
            .unwrap()
            .replace("register, cas-register, ", ""),
    )
    .unwrap();
    let e = format!(
        "{:#}",
        harness::plan::make(
            &args(&["--db", d, "--workload", "register"]).unwrap(),
            &Registry::builtin(),
            1
        )
        .unwrap_err()
    );
    assert!(
        e.contains("toy serves set, list-append (not register)"),
        "{e}"
    );
    std::fs::write(
        &def,
        std::fs::read_to_string(&def)
            .unwrap()
            .replace("{{opt.nap}}", "{{opt.nop}}"),
    )
    .unwrap();
    let e = format!(
        "{:#}",
        harness::plan::make(
            &args(&["--db", d, "--workload", "set"]).unwrap(),
            &Registry::builtin(),
            1
        )
        .unwrap_err()
    );
    assert!(
        e.contains(&format!("{}: line 14, column 17:", def.display()))
            && e.contains("unknown option \"nop\""),
        "{e}"
    );
}

/// `--db` is looked up in the registry the caller built (an extended one included), when
/// the plan is made: an unknown name is refused there, listing the names it knows.
#[test]
fn db_takes_names_or_definition_files() {
    assert!(args(&["--db", "etcd"]).is_ok());
    assert!(args(&["--db", "x/toy.yml"]).is_ok());
    let e = format!(
        "{:#}",
        harness::plan::make(&args(&["--db", "mongo"]).unwrap(), &Registry::builtin(), 1)
            .unwrap_err()
    );
    let names = Registry::builtin().database_names().join(", ");
    assert!(
        e.contains(&format!(
            "unknown database \"mongo\": faultline knows {names}, or a database definition file (FILE.yaml)"
        )),
        "{e}"
    );
}

/// The local-cluster tests of this file, one at a time: temporary clusters brought up side
/// by side in one process have been seen to leave one of them unreachable.
fn one_cluster_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(store: &Path, def: &Path, workload: &str, nemesis: &str) -> (Exit, PathBuf) {
    let a = args(&[
        "--db",
        def.to_str().unwrap(),
        "--workload",
        workload,
        "--nemesis",
        nemesis,
        "--nemesis-interval",
        "1s",
        "--time-limit",
        "4s",
        "--concurrency",
        "4",
        "--rate",
        "200",
        "--op-timeout",
        "500ms",
        "--seed",
        "3",
        "--store",
        store.to_str().unwrap(),
    ])
    .unwrap();
    let exit = harness::test_cmd::run_with(&a, &Registry::builtin())
        .unwrap_or_else(|e| panic!("the run failed: {e:?}"));
    (exit, common::latest_in(store))
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: brings up a local cluster (network namespaces, sshd)"
)]
fn a_defined_database_runs_end_to_end_with_faults_in_the_adapters() {
    clusters::testing::require_root();
    let _one = one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for (fault, workload) in [
        ("", "cas-register"),
        ("hang", "register"),
        ("crash", "set"),
        // Transactions through an adapter, checked for strict serializability (the no-op
        // adapter applies each under one lock), also when adapters crash mid-transaction.
        ("", "list-append"),
        ("crash", "list-append"),
    ] {
        let _ = std::fs::remove_file(dir.path().join("state.json"));
        let def = definition(dir.path(), fault);
        let (exit, run) = run(&store, &def, workload, "kill,pause");
        let history = read(run.join("history.jsonl"));
        let results = results(&run);
        assert_eq!(exit, Exit::Valid, "{fault} {workload}: {results:?}");
        if workload == "list-append" {
            assert_eq!(results.checker(), "transactional", "{results:?}");
            // Some committed transaction read what others appended.
            let committed_reads = history
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|e| e["type"] == "ok" && e["f"] == "txn")
                .filter(|e| {
                    e["value"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|m| m[0] == "r" && m[2].as_array().is_some_and(|l| !l.is_empty()))
                })
                .count();
            assert!(
                committed_reads > 0,
                "no transaction read anything: {history}"
            );
        }
        let plan = plan(&run);
        assert!(db_option(&plan, "definition-sha256").is_some(), "{plan:?}");
        assert_eq!(
            std::fs::read_to_string(run.join("definition.yaml")).unwrap(),
            std::fs::read_to_string(&def).unwrap()
        );
        // The definition's file reached the node and its log was collected.
        let conf = std::fs::read_to_string(run.join("nodes/n1/toy.conf")).unwrap();
        assert!(conf.starts_with("node n1 (1 of 1) at 10."), "{conf}");
        assert!(run.join("nodes/n1/daemon.log").is_file());
        // The nemesis killed and paused the daemon through the definition's PID file.
        assert!(
            {
                let history = common::history(&run);
                has_f(&history, "start-kill") || has_f(&history, "start-pause")
            },
            "{fault}"
        );
        // No adapter process outlives the run.
        for w in 0..4 {
            let err = std::fs::read_to_string(run.join(format!("adapters/{w}.stderr")))
                .unwrap_or_default();
            for pid in err
                .lines()
                .filter_map(|l| l.split("(pid ").nth(1))
                .filter_map(|p| p.trim_end_matches(')').parse::<u32>().ok())
            {
                assert!(
                    !Path::new(&format!("/proc/{pid}")).exists(),
                    "{fault} {workload}: adapter {pid} of worker {w} outlived the run"
                );
            }
        }
        // The adapters' stderr is in the store, one file per worker.
        let stderr = std::fs::read_to_string(run.join("adapters/0.stderr")).unwrap();
        assert!(stderr.contains("noop adapter for"), "{stderr}");
        let infos = common::history(&run)
            .iter()
            .filter(|e| e.kind == EventKind::Info && e.process != Process::nemesis())
            .count();
        if fault.is_empty() {
            assert_eq!(infos, 0, "{fault}");
        } else {
            assert!(infos > 0, "{fault}: no info op");
            assert!(
                stderr.matches("== faultline: adapter start").count() > 1,
                "{stderr}"
            );
        }
    }
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: brings up a local cluster (network namespaces, sshd)"
)]
fn an_adapter_that_cannot_start_is_a_setup_error_saying_why() {
    clusters::testing::require_root();
    let _one = one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let def = definition(dir.path(), "");
    let text = std::fs::read_to_string(&def).unwrap();
    let typo = noop().with_file_name("noop-adaptr.py");
    std::fs::write(
        &def,
        text.replace(&noop().display().to_string(), &typo.display().to_string()),
    )
    .unwrap();
    let a = args(&[
        "--db",
        def.to_str().unwrap(),
        "--workload",
        "register",
        "--time-limit",
        "20s",
        "--store",
        store.to_str().unwrap(),
    ])
    .unwrap();
    let t = std::time::Instant::now();
    let e = match harness::test_cmd::run_with(&a, &Registry::builtin()) {
        Err(harness::exit::Failure::BadInput(e)) => format!("{e:#}"),
        other => panic!("expected a set-up error (exit 254), got {other:?}"),
    };
    assert!(
        e.contains("could not start")
            && e.contains("can't open file")
            && e.contains("noop-adaptr.py"),
        "{e}"
    );
    // Before the workload: no op was run.
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    let run = common::latest_in(&store);
    let invoked = if run.join("history.jsonl").exists() {
        common::count_kind(&common::history(&run), EventKind::Invoke)
    } else {
        0
    };
    assert_eq!(invoked, 0, "an op was run");
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: brings up a local cluster (network namespaces, sshd)"
)]
fn logs_are_collected_as_regular_files_within_bounds_one_bad_path_never_stopping_the_rest() {
    clusters::testing::require_root();
    let _one = one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let def = definition(dir.path(), "");
    let text = std::fs::read_to_string(&def).unwrap();
    let text = text
        .replace(
            "  configure: grep -q 'node {{node}} ' {{data_dir}}/toy.conf\n",
            "  configure: |\n    \
               cd {{data_dir}}\n    \
               ln -s /dev/zero zero.log\n    \
               mkfifo fifo.log\n    \
               ln -s loop2.log loop1.log && ln -s loop1.log loop2.log\n    \
               truncate -s 200M huge.log && printf 'the end' >> huge.log\n    \
               mkdir logs && ln -s .. logs/up && echo inner > logs/inner.log\n    \
               mkdir many && for i in 1 2 3 4 5 6 7 8 9; do truncate -s 100M many/$i.log; done\n",
        )
        .replace(
            "logs: [\"{{data_dir}}/toy.conf\"]",
            "logs: [\"{{data_dir}}/zero.log\", \"{{data_dir}}/fifo.log\", \
             \"{{data_dir}}/loop1.log\", \"{{data_dir}}/huge.log\", \"{{data_dir}}/logs\", \
             \"{{data_dir}}/toy.conf\", \"{{data_dir}}/many\"]",
        );
    std::fs::write(&def, text).unwrap();
    let t = std::time::Instant::now();
    // The binary, for its faultline.log (a run in this process would share its logging).
    let out = cmd_stateless(&["test", "--cluster", "local:1", "--db"])
        .arg(&def)
        .args([
            "--workload",
            "register",
            "--nemesis",
            "none",
            "--time-limit",
            "2s",
        ])
        .arg("--store")
        .arg(&store)
        .output()
        .expect("run faultline");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(t.elapsed() < Duration::from_secs(90), "{:?}", t.elapsed());
    let run = common::latest_in(&store);
    let n1 = run.join("nodes/n1");
    // The regular files after the bad paths were collected.
    let conf = std::fs::read_to_string(n1.join("toy.conf")).unwrap();
    assert!(conf.starts_with("node n1 "), "{conf}");
    assert_eq!(
        std::fs::read_to_string(n1.join("logs/inner.log")).unwrap(),
        "inner\n"
    );
    // The large file: its head and its end, within the bound, saying what was cut.
    let huge = std::fs::read(n1.join("huge.log")).unwrap();
    let max = harness::run::database::LOG_MAX_BYTES as usize;
    assert!(
        huge.len() > max && huge.len() < max + 1024,
        "{}",
        huge.len()
    );
    assert!(huge.ends_with(b"the end"));
    let text = String::from_utf8_lossy(&huge);
    assert!(text.contains("cut here (kept the first"), "no cut line");
    // Every file of the node together stays within its bound: the last of the nine 100 MB
    // files (64 MiB kept of each) did not fit, and the log says so.
    let total: u64 = walk(&n1);
    assert!(
        total <= harness::session::lifecycle::LOG_NODE_MAX_BYTES + (1 << 20),
        "{total} bytes from one node"
    );
    // The others are not files, and the run's log says so, one by one.
    for bad in ["zero.log", "fifo.log", "loop1.log"] {
        assert!(!n1.join(bad).exists(), "{bad}");
    }
    let log = std::fs::read_to_string(run.join("faultline.log")).unwrap();
    for said in [
        "zero.log: not collected: a character device, not a regular file",
        "fifo.log: not collected: a FIFO, not a regular file",
        "loop1.log: not collected: [SFTP(2)] no such file (missing, or a link that leads nowhere or in a loop)",
        "huge.log: 67108864 bytes kept, 142606343 cut from its middle",
        "not collected: the logs collected from this node reached",
    ] {
        assert!(log.contains(said), "{said}: {log}");
    }
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: brings up a local cluster (network namespaces, sshd)"
)]
fn a_definitions_ready_timeout_is_honoured_as_given() {
    let (e, took) = never_ready("false");
    assert!(e.contains("the ready command still fails after 3s"), "{e}");
    assert!(took < Duration::from_secs(25), "{took:?}");
}

/// Runs a test of the toy definition with `ready` as its ready check and `timeouts.ready:
/// 3s`, which must fail at set-up; returns the failure and how long the run took (from when
/// this test had the cluster lock).
fn never_ready(ready: &str) -> (String, Duration) {
    clusters::testing::require_root();
    let _one = one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let def = definition(dir.path(), "");
    let text = std::fs::read_to_string(&def).unwrap().replace(
        "  ready: test -s {{data_dir}}/faultline.pid\n",
        &format!("  ready: '{ready}'\n"),
    ) + "timeouts:\n  ready: 3s\n";
    std::fs::write(&def, text).unwrap();
    let a = args(&[
        "--db",
        def.to_str().unwrap(),
        "--workload",
        "register",
        "--store",
        store.to_str().unwrap(),
    ])
    .unwrap();
    let t = std::time::Instant::now();
    match harness::test_cmd::run_with(&a, &Registry::builtin()) {
        Err(f) => (format!("{f:?}"), t.elapsed()),
        Ok(exit) => panic!("a database never ready ran: {exit:?}"),
    }
}

/// A ready check that hangs is "not ready yet" within the definition's timeout, not an error
/// after the check's own 10 s.
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: brings up a local cluster (network namespaces, sshd)"
)]
fn a_ready_check_that_hangs_counts_as_not_ready_until_the_timeout() {
    let (e, _) = never_ready("sleep 100");
    assert!(e.contains("the ready command still fails after 3s"), "{e}");
}

/// The bytes of every file under `dir`.
fn walk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
                    _ => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
