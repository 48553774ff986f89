//! One controller per cluster, end to end on a real local cluster with real etcd: while a
//! `faultline test` runs, a second test, a one-off `faultline nemesis` fault and `faultline
//! heal` (without `--force`) are refused naming who holds the cluster, and the first test's
//! verdict stays true; a holder killed with SIGKILL does not block the next one. They need
//! root: built without it, they are listed as ignored (CI runs them as root).

use clusters::testing::{home, require_root};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
mod common;
use common::{cmd, faultline, journal, text, Cluster};
use nemesis::journal::Event as JournalEvent;

static SERIAL: Mutex<()> = Mutex::new(());

/// Kills a child left running when the test fails.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Waits until `nemesis status` says the cluster is in use (by `pid`) and the nodes hold
/// its lease too.
fn wait_held(home: &Path, cluster: &str, pid: u32) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let out = faultline(home, &["nemesis", "--cluster", cluster, "status"]);
        let s = text(&out.stdout);
        if s.contains(&format!("in use: held by pid {pid} "))
            && ["n1", "n2", "n3"]
                .iter()
                .all(|n| node_lease(home, cluster, n))
        {
            return;
        }
        assert!(Instant::now() < until, "the lease was never taken: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether the node-side lease file exists on `node`.
fn node_lease(home: &Path, cluster: &str, node: &str) -> bool {
    let out = faultline(
        home,
        &[
            "exec",
            "--cluster",
            cluster,
            "--node",
            node,
            "--",
            "test",
            "-e",
            "/run/faultline/lease",
        ],
    );
    out.status.success()
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables), etcd"
)]
fn a_second_controller_is_refused_and_the_first_stays_valid() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let h = home.path();
    let name = format!("t-lease-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 3);
    let c = cluster.file.clone();
    let c = c.to_str().expect("utf-8 path");
    let store = h.join("store");
    let store = store.to_str().expect("utf-8 path");
    let test_args = |seed: &'static str, run: &'static str| {
        vec![
            "test",
            "--cluster",
            c,
            "--db",
            "etcd",
            "--workload",
            "cas-register",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "20s",
            "--seed",
            seed,
            "--name",
            run,
            "--store",
            store,
        ]
    };
    let (out_path, err_path) = (h.join("a.out"), h.join("a.err"));
    let a = cmd(h, &test_args("11", "a"))
        .stdout(std::fs::File::create(&out_path).expect("a.out"))
        .stderr(std::fs::File::create(&err_path).expect("a.err"))
        .spawn()
        .expect("start test a");
    let pid = a.id();
    let mut a = Reap(a);
    wait_held(h, c, pid);
    // As in the report: the second test 4 s into the first, with its partitions live.
    std::thread::sleep(Duration::from_secs(4));

    let b = faultline(h, &test_args("12", "b"));
    let err = text(&b.stderr);
    assert_eq!(b.status.code(), Some(254), "second test: {err}");
    assert!(err.contains(&format!("pid {pid} ")), "{err}");
    assert!(err.contains("faultline test"), "{err}");
    assert!(err.contains("since "), "{err}");
    assert!(
        !err.contains("healing"),
        "the second test touched the cluster: {err}"
    );
    assert!(
        !store_has(h, "b"),
        "a refused test makes no run directory in the store"
    );

    let n = faultline(
        h,
        &["nemesis", "--cluster", c, "partition", "--isolate", "n1"],
    );
    assert_eq!(
        n.status.code(),
        Some(254),
        "one-off fault: {}",
        text(&n.stderr)
    );
    assert!(text(&n.stderr).contains(&format!("pid {pid} ")));

    let heal = faultline(h, &["heal", "--cluster", c]);
    let err = text(&heal.stderr);
    assert_eq!(heal.status.code(), Some(254), "heal: {err}");
    assert!(err.contains("--force"), "{err}");

    let status = a.0.wait().expect("test a");
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    eprintln!(
        "test a:\n{}",
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    assert_eq!(status.code(), Some(0), "the first test: {stdout}");
    assert!(stdout.contains("VALID"), "{stdout}");

    // Released on exit, here and on the nodes.
    let s = faultline(h, &["nemesis", "--cluster", c, "status"]);
    assert!(text(&s.stdout).contains("is free"), "{}", text(&s.stdout));
    for node in ["n1", "n2", "n3"] {
        assert!(!node_lease(h, c, node), "lease left on {node}");
    }
}

fn store_has(home: &Path, test: &str) -> bool {
    home.join("store").join(test).exists()
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn a_holder_killed_with_sigkill_does_not_block_the_next() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let h = home.path();
    let name = format!("t-lease-crash-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 3);
    let c = cluster.file.clone();
    let c = c.to_str().expect("utf-8 path");
    let held = cmd(
        h,
        &[
            "nemesis",
            "--cluster",
            c,
            "--hold",
            "120s",
            "partition",
            "--isolate",
            "n1",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("start nemesis --hold");
    let pid = held.id();
    let mut held = Reap(held);
    wait_held(h, c, pid);
    // Not removed from under its holder.
    let down = faultline(h, &["cluster", "down", "--name", &name]);
    assert_eq!(down.status.code(), Some(254), "{}", text(&down.stderr));
    assert!(text(&down.stderr).contains(&format!("pid {pid} ")));
    // Its lease stays on the nodes when it is killed: nothing runs its release.
    held.0.kill().expect("SIGKILL");
    let _ = held.0.wait();
    assert!(node_lease(h, c, "n1"));

    let out = faultline(
        h,
        &["nemesis", "--cluster", c, "partition", "--isolate", "n2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let heal = faultline(h, &["heal", "--cluster", c]);
    assert_eq!(heal.status.code(), Some(0), "{}", text(&heal.stderr));
    for node in ["n1", "n2", "n3"] {
        assert!(!node_lease(h, c, node), "lease left on {node}");
    }
}

/// `faultline heal --force` while a test holds the cluster, 0.1 s or so after the test
/// applied a partition due to last 4 s: the test's history ends the partition when the
/// journal says it was healed (not at its heal's slot), saying so and by which process, its
/// own heal of it is a step not taken, and its report says that a fault was healed from
/// outside. Before, the history and report claimed the partition lasted its 4 s.
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables), etcd"
)]
fn a_heal_from_outside_is_recorded_in_the_tests_history_and_report() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let h = home.path();
    let name = format!("t-outside-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 3);
    let c = cluster.file.clone();
    let c = c.to_str().expect("utf-8 path");
    let store = h.join("store");
    let (out_path, err_path) = (h.join("t.out"), h.join("t.err"));
    // One partition, from 3 s to 7 s.
    let test = cmd(
        h,
        &[
            "test",
            "--cluster",
            c,
            "--db",
            "etcd",
            "--workload",
            "cas-register",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "8s",
            "--seed",
            "3",
            "--name",
            "outside",
            "--store",
            store.to_str().expect("utf-8 path"),
        ],
    )
    .stdout(std::fs::File::create(&out_path).expect("t.out"))
    .stderr(std::fs::File::create(&err_path).expect("t.err"))
    .spawn()
    .expect("start the test");
    let pid = test.id();
    let mut test = Reap(test);
    wait_held(h, c, pid);
    // As soon as the partition is applied, heal it from here.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let s = text(&faultline(h, &["nemesis", "--cluster", c, "status"]).stdout);
        if s.contains(" applied since ") {
            break;
        }
        assert!(Instant::now() < until, "no fault was applied: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let heal = faultline(h, &["heal", "--cluster", c, "--force"]);
    assert_eq!(heal.status.code(), Some(0), "{}", text(&heal.stderr));
    assert!(text(&heal.stderr).contains("healed from outside"));
    let status = test.0.wait().expect("the test");
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.code().is_some_and(|c| c <= 2), "the test: {stderr}");
    let run = store.join("outside").join(
        std::fs::read_dir(store.join("outside"))
            .expect("the run's directory")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .find(|n| n != "latest")
            .expect("one run"),
    );
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("history");
    let nemesis: Vec<serde_json::Value> = history
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["process"] == "nemesis")
        .collect();
    let start = nemesis
        .iter()
        .find(|e| e["f"] == "start-partition")
        .expect("start-partition");
    let stop = nemesis
        .iter()
        .find(|e| e["f"] == "stop-partition")
        .unwrap_or_else(|| panic!("stop-partition in {nemesis:?}"));
    let outside = &stop["value"]["healed_from_outside"];
    let at_ms = outside["at_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("{stop}"));
    let started_ms = start["time"].as_u64().expect("time") / 1_000_000;
    assert!(
        at_ms >= started_ms && at_ms < started_ms + 2_000,
        "healed at {at_ms} ms, applied at {started_ms} ms: {stop}"
    );
    assert!(
        stop["time"].as_u64().expect("time") / 1_000_000 < 6_000,
        "noticed long before the heal's slot at 6 s: {stop}"
    );
    let note = stop["error"].as_str().unwrap_or_default();
    assert!(note.starts_with("healed from outside at "), "{note}");
    assert!(note.contains("by faultline process "), "{note}");
    assert!(
        nemesis.iter().any(|e| e["f"] == "fault-skipped"
            && e["value"]["step"] == "heal"
            && e["error"]
                .as_str()
                .is_some_and(|w| w.contains("healed from outside"))),
        "{nemesis:?}"
    );
    let report = std::fs::read_to_string(run.join("report.html")).expect("report");
    assert!(report.contains("1 healed from outside the run"), "{report}");
    // The run's copy of the journal tells how the partition ended.
    let journal = journal(&run);
    assert!(
        journal
            .iter()
            .any(|e| e.event == JournalEvent::Healed && e.pid != pid),
        "{journal:#?}"
    );
}
