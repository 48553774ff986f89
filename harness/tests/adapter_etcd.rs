//! The etcd example (examples/etcd: a definition file and a Python adapter over etcd's JSON
//! gateway) judged as the native client is (harness/tests/etcd.rs): linearizable reads under
//! partitions, kills and pauses are valid; serializable reads are caught serving stale values.
//! Real etcd (Debian's etcd-server) on temporary local clusters: root only.

use clusters::testing::{home, require_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// One run at a time: they would compete for the two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn definition() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/etcd/etcd.yaml")
        .display()
        .to_string()
}

fn faultline(home: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["test", "--db", &definition()])
        .args(args)
        .arg("--store")
        .arg(home.join("store"))
        .env("FAULTLINE_HOME", home)
        .output()
        .expect("run faultline");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn latest(home: &Path) -> PathBuf {
    std::fs::canonicalize(home.join("store/latest")).expect("store/latest")
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
    assert!(stdout.contains("VALID"), "{stdout}");
    let run = latest(home.path());
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let ok_reads = history
        .lines()
        .filter(|l| l.contains("\"type\":\"ok\"") && l.contains("\"f\":\"read\""))
        .count();
    assert!(ok_reads > 50, "{ok_reads} ok reads");
    assert!(history.contains("\"f\":\"start-kill\"") || history.contains("\"f\":\"start-pause\""));
    // The adapters' stderr and etcd's output are in the store.
    let stderr = std::fs::read_to_string(run.join("adapters/0.stderr")).unwrap();
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
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap())
            .expect("results.json");
    assert_eq!(results["valid"], serde_json::json!(false), "{results:#}");
    // A stale read: some key's counterexample ends in a read that no state allows.
    let anomalies = results["anomalies"].as_array().cloned().unwrap_or_default();
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
    let test_yaml = std::fs::read_to_string(run.join("test.yaml")).unwrap();
    assert!(test_yaml.contains("read-mode: serializable"), "{test_yaml}");
    let stderr = std::fs::read_to_string(run.join("adapters/0.stderr")).unwrap();
    assert!(stderr.contains("serializable reads"), "{stderr}");
}
