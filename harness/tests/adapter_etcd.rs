//! The etcd example (examples/etcd: a definition file and a Python adapter over etcd's JSON
//! gateway) judged as the native client is (harness/tests/etcd.rs): linearizable reads under
//! partitions, kills and pauses are valid; serializable reads are caught serving stale values.
//! Real etcd (Debian's etcd-server) on temporary local clusters: root only.

use checkers::Verdict;
use clusters::testing::{home, require_root};
use std::path::Path;
use std::process::Output;
use std::sync::Mutex;
mod common;
use common::{count_ok, db_option, faultline_stored, has_f, history, latest, plan, read, results};

/// One run at a time: they would compete for the two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn definition() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/etcd/etcd.yaml")
        .display()
        .to_string()
}

/// `faultline test --db DEFINITION ARGS`, in the store under `home`.
fn faultline(home: &Path, args: &[&str]) -> Output {
    let def = definition();
    let mut all = vec!["test", "--db", &def];
    all.extend_from_slice(args);
    faultline_stored(home, &all)
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn linearizable_reads_through_the_adapter_are_valid_under_faults() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let out = faultline(
        home.path(),
        &[
            "--cluster",
            "local:3",
            "--workload",
            "cas-register",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "2s",
            "--time-limit",
            "15s",
            "--seed",
            "1",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let run = latest(home.path());
    let results = results(&run);
    assert_eq!(results.head.valid, Verdict::Valid, "{results:?}");
    let history = history(&run);
    let ok_reads = count_ok(&history, "read");
    assert!(ok_reads > 50, "{ok_reads} ok reads");
    assert!(has_f(&history, "start-kill") || has_f(&history, "start-pause"));
    // The adapters' stderr and etcd's output are in the store.
    let stderr = read(run.join("adapters/0.stderr"));
    assert!(stderr.contains("linearizable reads"), "{stderr}");
    assert!(run.join("nodes/n1/daemon.log").is_file());
}

/// As for the native client, whether one run serves a stale read is up to etcd's timing: up
/// to four seeds (`--test-count` stops at the first invalid run).
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn serializable_reads_through_the_adapter_are_caught_serving_stale_values() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let out = faultline(
        home.path(),
        &[
            "--cluster",
            "local:5",
            "--workload",
            "register",
            "--db-opt",
            "read-mode=serializable",
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no stale read in 4 runs: {stdout}"
    );
    let run = latest(home.path());
    let results = results(&run);
    assert_eq!(results.head.valid, Verdict::Invalid, "{results:#?}");
    // A stale read: some key's counterexample ends in a read that no state allows.
    let anomalies = results.details["anomalies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        anomalies
            .iter()
            .any(|a| a["counterexample"]["failed_op"]["op"]
                .as_str()
                .is_some_and(|op| op.starts_with("read -> "))),
        "{results:#?}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("cannot linearize next") && l.contains(": read -> ")),
        "{stdout}"
    );
    let plan = plan(&run);
    assert_eq!(
        db_option(&plan, "read-mode"),
        Some("serializable"),
        "{plan:?}"
    );
    let stderr = read(run.join("adapters/0.stderr"));
    assert!(stderr.contains("serializable reads"), "{stderr}");
}
