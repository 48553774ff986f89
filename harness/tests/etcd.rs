//! End-to-end: `faultline test` against real etcd (Debian's etcd-server) on temporary local
//! clusters, with real partitions (iptables), kills and pauses. Linearizable reads are judged
//! valid; serializable reads are caught serving stale values; an unreachable node, a database
//! that does not start and a database that errors on every op each end with a clear message
//! and exit 255, and still heal and collect logs. They need root: built
//! without it, they are listed as ignored (CI runs them as root).

use clusters::testing::{home, require_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One run at a time: they would compete for the two cores and distort each other's timing.
static SERIAL: Mutex<()> = Mutex::new(());

fn faultline(home: &Path, args: &[&str]) -> Output {
    let store = home.join("store");
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .arg("--store")
        .arg(&store)
        .env("FAULTLINE_HOME", home)
        .output()
        .expect("run faultline");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn latest(home: &Path) -> PathBuf {
    std::fs::canonicalize(home.join("store/latest")).expect("store/latest")
}

/// The temporary cluster of the latest run left no namespace and no state behind.
fn assert_clean(home: &Path) {
    // The run's log names its cluster: "test NAME: etcd on run123-0 (3 nodes), ...".
    let log = std::fs::read_to_string(latest(home).join("faultline.log")).unwrap_or_default();
    let name = log
        .split(" on run")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|n| format!("fl-run{n}-"))
        .expect("the run's temporary cluster name in faultline.log");
    let ns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    let ns = text(&ns.stdout);
    assert!(!ns.contains(&name), "namespaces of {name} left: {ns}");
    let clusters = std::fs::read_dir(home.join("clusters"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(clusters, 0, "cluster state left in {}", home.display());
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn linearizable_reads_under_partitions_kills_and_pauses_are_valid() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let out = faultline(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:5",
            "--db",
            "etcd",
            "--workload",
            "cas-register",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "30s",
            "--seed",
            "11",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("VALID"), "{stdout}");
    let run = latest(home.path());
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let faults = history
        .lines()
        .filter(|l| l.contains("\"f\":\"start-"))
        .count();
    assert!(faults >= 3, "only {faults} faults in 30 s");
    assert!(
        history
            .lines()
            .filter(|l| l.contains("\"type\":\"ok\""))
            .count()
            > 500
    );
    // Test power: every worker busy, faults landed, every key written read back after the
    // faults healed.
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("results.json")).unwrap()).unwrap();
    let power: harness::power::Power =
        serde_json::from_value(results["power"].clone()).expect("results.json has power");
    let (min, max) = power.concurrency.worker_share_range();
    assert!(min >= 0.5 && max <= 2.0, "worker shares {min:.2}..{max:.2}");
    assert_eq!(
        power.concurrency.ops_per_node.len(),
        5,
        "{:?}",
        power.concurrency
    );
    let applied: u64 = power.faults.values().map(|f| f.applied).sum();
    assert!(applied >= 3, "{:?}", power.faults);
    let rb = power.read_back.expect("a keyed workload reads back");
    assert!(rb.keys_written > 0);
    assert_eq!(rb.keys_read_after_heal, rb.keys_written, "{rb:?}");
    assert!(power.weak.is_empty(), "{:?}", power.weak);
    for n in ["n1", "n2", "n3", "n4", "n5"] {
        let log = run.join("nodes").join(n).join("etcd.log");
        assert!(
            std::fs::metadata(&log)
                .map(|m| m.len() > 0)
                .unwrap_or(false),
            "{}",
            log.display()
        );
    }
    for f in [
        "test.yaml",
        "nemesis.jsonl",
        "results.json",
        "faultline.log",
    ] {
        assert!(run.join(f).exists(), "{f}");
    }
    assert_clean(home.path());
}

/// The seed fixes the ops and the fault schedule, not etcd's timing, so whether one run serves a
/// stale read is up to chance: runs are repeated (`--test-count`, which stops at the first
/// invalid run) until one does, at most four times. How often a single run finds one is
/// measured over many seeds by scripts/stale-reads, not claimed here.
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn serializable_reads_are_caught_serving_stale_values() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let out = faultline(
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
            "30s",
            "--seed",
            "2",
            "--test-count",
            "4",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no stale read in 4 runs: {stdout}"
    );
    assert!(stdout.contains("INVALID"), "{stdout}");
    // The invalid run is the last one, and what it stored shows a stale read: a counterexample
    // ending in a read that no state allows.
    let run = latest(home.path());
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap())
            .expect("results.json");
    assert_eq!(results["valid"], serde_json::json!(false), "{results:#}");
    // Some key's counterexample (keys the fast path decided carry a reason instead) fails on
    // a read, and the explanation printed says so.
    let anomalies = results["anomalies"].as_array().expect("anomalies");
    assert!(
        anomalies
            .iter()
            .any(|a| a["counterexample"]["failed_op"]["op"]
                .as_str()
                .is_some_and(|op| op.starts_with("read -> "))),
        "{results:#}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("cannot linearize next") && l.contains(": read -> ")),
        "{stdout}"
    );
    assert_clean(home.path());
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn an_unreachable_node_ends_the_run_with_a_clear_message() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    /// Removes the cluster however the test ends.
    struct Down<'a>(&'a Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = Command::new(env!("CARGO_BIN_EXE_faultline"))
                .args(["cluster", "down", "--name", "t-unreach"])
                .env("FAULTLINE_HOME", self.0)
                .output();
        }
    }
    let _down = Down(home.path());
    // A real 3-node cluster, plus a node at an address in its subnet where nothing answers.
    let up = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["cluster", "up", "--local", "3", "--name", "t-unreach"])
        .env("FAULTLINE_HOME", home.path())
        .output()
        .expect("up");
    assert!(up.status.success(), "{}", text(&up.stderr));
    let path = PathBuf::from(text(&up.stdout).trim());
    let yaml = std::fs::read_to_string(&path).unwrap();
    let config = std::fs::read_to_string(path.with_file_name("ssh_config")).unwrap();
    let subnet = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("HostName 10.250."))
        .and_then(|r| r.split('.').next())
        .expect("subnet")
        .to_string();
    let ghost = format!("10.250.{subnet}.99");
    let yaml = yaml
        .replace("\n- n3\n", &format!("\n- n3\n- {ghost}\n"))
        .replace("connect_timeout: 10s", "connect_timeout: 2s");
    let bad = home.path().join("with-ghost.yaml");
    std::fs::write(&bad, yaml).unwrap();
    let t = Instant::now();
    let out = faultline(
        home.path(),
        &[
            "test",
            "--cluster",
            bad.to_str().unwrap(),
            "--time-limit",
            "10s",
        ],
    );
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    assert!(err.contains(&ghost) && err.contains("unreachable"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(60));
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .display()
        .to_string()
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn a_database_that_does_not_start_is_reported_with_its_log() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let bin = fixture("fake-etcd-broken");
    let out = faultline(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:3",
            "--db-install",
            "upload",
            "--db-binary",
            &bin,
            "--time-limit",
            "10s",
        ],
    );
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    assert!(
        err.contains("etcd exited") && err.contains("refusing to start"),
        "{err}"
    );
    let run = latest(home.path());
    let log = std::fs::read_to_string(run.join("nodes/n1/etcd.log")).unwrap_or_default();
    assert!(log.contains("refusing to start"), "collected log: {log}");
    assert_clean(home.path());
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn a_database_that_errors_on_every_op_is_reported_and_the_faults_healed() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let bin = fixture("fake-etcd-errors");
    let out = faultline(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:3",
            "--db-install",
            "upload",
            "--db-binary",
            &bin,
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "2s",
            "--time-limit",
            "9s",
        ],
    );
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    assert!(err.contains("no op succeeded"), "{err}");
    let run = latest(home.path());
    let journal = std::fs::read_to_string(run.join("nemesis.jsonl")).unwrap();
    let applied = journal.matches("\"event\":\"apply\"").count();
    let healed = journal.matches("\"event\":\"healed\"").count();
    assert!(applied >= 1 && applied == healed, "{journal}");
    assert!(run.join("nodes/n2/etcd.log").exists());
    assert_clean(home.path());
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn the_set_workload_loses_nothing_under_partitions_and_kills() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let out = faultline(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:3",
            "--workload",
            "set",
            "--nemesis",
            "partition,kill",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "20s",
            "--seed",
            "5",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("VALID"), "{stdout}");
    let results = std::fs::read_to_string(latest(home.path()).join("results.json")).unwrap();
    let r: serde_json::Value = serde_json::from_str(&results).unwrap();
    assert!(r["acknowledged"].as_u64().unwrap_or(0) > 300, "{results}");
    assert!(
        r["read"].as_u64() >= r["acknowledged"].as_u64(),
        "{results}"
    );
    assert_eq!(r["lost"], serde_json::json!([]));
    assert_clean(home.path());
}

/// The `f` of every nemesis event, in order.
fn nemesis_events(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("history.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"process\":\"nemesis\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| format!("{} {}", v["f"], v["value"]))
        .collect()
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn a_replayed_run_has_the_same_options_seed_and_faults() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    // A YAML test file gives the options; the command line wins where both give one.
    let config = home.path().join("t.yaml");
    std::fs::write(
        &config,
        "workload: register\nnemesis: partition,pause\nnemesis-interval: 1s\ntime-limit: 30s\nseed: 77\nrate: 50\n",
    )
    .unwrap();
    let first = faultline(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:3",
            "--config",
            config.to_str().unwrap(),
            "--time-limit",
            "6s",
        ],
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stdout));
    let run1 = latest(home.path());
    let yaml1 = std::fs::read_to_string(run1.join("test.yaml")).unwrap();
    assert!(
        yaml1.contains("seed: 77")
            && yaml1.contains("time_limit: 6s")
            && yaml1.contains("workload: register"),
        "{yaml1}"
    );
    let again = faultline(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:3",
            "--replay",
            run1.to_str().unwrap(),
        ],
    );
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
    assert!(text(&again.stderr).contains("the fault schedule is the stored run's"));
    let run2 = latest(home.path());
    assert_ne!(run1, run2);
    let yaml2 = std::fs::read_to_string(run2.join("test.yaml")).unwrap();
    // test.yaml of the replay equals the original's but for the start time.
    let without_start = |y: &str| {
        y.lines()
            .filter(|l| !l.starts_with("started:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(without_start(&yaml1), without_start(&yaml2));
    assert_ne!(yaml1, yaml2, "the start time differs");
    // analyze reproduces the stored verdict.
    let analyzed = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["analyze", run1.to_str().unwrap()])
        .env("FAULTLINE_HOME", home.path())
        .output()
        .expect("run faultline analyze");
    assert_eq!(
        analyzed.status.code(),
        first.status.code(),
        "{}",
        text(&analyzed.stderr)
    );
    // The same faults on the same nodes, in the same order.
    let (e1, e2) = (nemesis_events(&run1), nemesis_events(&run2));
    assert!(e1.len() >= 4, "{e1:?}");
    assert_eq!(e1, e2);
    assert_clean(home.path());
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn ctrl_c_mid_run_still_heals_collects_and_checks() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args([
            "test",
            "--cluster",
            "local:3",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "1s",
            "--time-limit",
            "5m",
            "--seed",
            "3",
            "--store",
        ])
        .arg(home.path().join("store"))
        .env("FAULTLINE_HOME", home.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Should an assertion fail while it runs, the run is interrupted (and so heals and
    // removes its cluster) before the test's home is removed under it.
    struct Interrupt(u32);
    impl Drop for Interrupt {
        fn drop(&mut self) {
            if std::thread::panicking() {
                // SAFETY: signalling and reaping our own child.
                unsafe { libc::kill(self.0 as i32, libc::SIGINT) };
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut status = 0;
                while Instant::now() < deadline
                    && unsafe { libc::waitpid(self.0 as i32, &mut status, libc::WNOHANG) } == 0
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
    let _interrupt = Interrupt(child.id());
    // Wait until a partition is applied, then press Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // The cluster's journal (beside it: its identity and its lease).
        let journal: String = std::fs::read_dir(home.path().join("journal"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        if journal.contains("\"event\":\"applied\"") {
            break;
        }
        assert!(Instant::now() < deadline, "no fault was applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let t = Instant::now();
    let out = child.wait_with_output().expect("wait");
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "took {:?} to stop",
        t.elapsed()
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let run = latest(home.path());
    let journal = std::fs::read_to_string(run.join("nemesis.jsonl")).unwrap();
    let applied = journal.matches("\"event\":\"apply\"").count();
    assert!(
        applied >= 1 && applied == journal.matches("\"event\":\"healed\"").count(),
        "{journal}"
    );
    for f in ["results.json", "report.html", "nodes/n1/etcd.log"] {
        assert!(run.join(f).exists(), "{f}");
    }
    assert_clean(home.path());
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn clock_faults_are_refused_up_front_on_namespace_nodes() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let t = Instant::now();
    let out = faultline(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:3",
            "--nemesis",
            "clock,partition",
            "--time-limit",
            "30s",
        ],
    );
    assert_eq!(out.status.code(), Some(254));
    let err = text(&out.stderr);
    assert!(
        err.contains("own kernel clock") && err.contains("leave clock out"),
        "{err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "refused only after {:?}",
        t.elapsed()
    );
    assert_clean(home.path());
}
