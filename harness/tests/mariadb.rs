//! End-to-end: `faultline test --db mariadb --workload list-append` against real MariaDB 10.11
//! (Debian's mariadb-server) on a temporary one-node local cluster, with real kills (SIGKILL
//! of mariadbd, then a restart that recovers from the redo log) and pauses (SIGSTOP).
//!
//! - At repeatable read with `innodb_snapshot_isolation` off (MariaDB 10.11's default), the
//!   history shows lost updates or G-single: not repeatable read, not snapshot isolation.
//! - With it on, the same conflicts come back as error 1020 (`fail`), and the history is
//!   valid under snapshot isolation, with no lost update.
//! - At serializable (two-phase locking on one server) it is serializable, and strictly so.
//!
//! No acknowledged append is lost to a kill in any of them. They need root (network
//! namespaces, sshd); CI runs them as root.

use checkers::check::{check, Checked, Checker};
use checkers::read::{open, Format};
use checkers::txn::{Consistency, TxnModel};
use checkers::Verdict;
use clusters::testing::require_root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
mod common;
use common::assert_no_acknowledged_append_lost;

/// One run at a time: they would compete for the two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn faultline(home: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
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

/// A 20 s list-append run on one MariaDB server with kills and pauses every 3 s.
fn run(home: &Path, extra: &[&str], seed: &str) -> (Output, PathBuf) {
    let mut args = vec![
        "test",
        "--cluster",
        "local:1",
        "--db",
        "mariadb",
        "--workload",
        "list-append",
        "--nemesis",
        "kill,pause",
        "--nemesis-interval",
        "3s",
        "--time-limit",
        "20s",
        "--rate",
        "300",
        "--ops-per-key",
        "32",
        "--seed",
        seed,
    ];
    args.extend_from_slice(extra);
    let out = faultline(home, &args);
    (out, latest(home))
}

fn check_as(dir: &Path, consistency: Consistency) -> Checked {
    let history = dir.join("history.jsonl");
    let reader = open(&history, Format::Jsonl).expect("history.jsonl");
    check(
        &Checker::transactional(TxnModel::ListAppend, consistency),
        reader,
        "history.jsonl",
        &mut |_| {},
    )
    .expect("a readable transactional history")
}

fn anomalies(c: &Checked) -> Vec<String> {
    let doc = serde_json::to_value(&c.results).expect("results");
    doc["anomalies"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The faults were real and MariaDB came back after each kill: the journal shows applied
/// kills, and the server log a crash recovery after each start but the first.
fn assert_faults_and_recoveries(dir: &Path) {
    let journal = read(dir.join("nemesis.jsonl"));
    let kills = journal
        .lines()
        .filter(|l| l.contains("\"fault\":\"kill\"") && l.contains("\"apply\""))
        .count();
    assert!(kills >= 1, "no kill was applied:\n{journal}");
    assert!(!journal.contains("apply-failed"), "{journal}");
    let log = read(dir.join("nodes/n1/mariadb.log"));
    let starts = log.matches("== start").count();
    let ready = log.matches("ready for connections").count();
    let recoveries = log.matches("Starting crash recovery").count();
    assert!(starts > kills, "{starts} starts for {kills} kills");
    assert!(
        recoveries >= 1 && ready >= 2,
        "{recoveries} recoveries, {ready} times ready"
    );
}

/// Transactions committed and failed for the reasons the classification names; nothing is
/// guessed: every info happened at or after COMMIT, or timed out in the harness.
fn assert_history_is_busy(dir: &Path) -> String {
    let history = read(dir.join("history.jsonl"));
    let ok = history.matches("\"type\":\"ok\"").count();
    assert!(ok > 200, "only {ok} transactions committed");
    let infos = history
        .lines()
        .filter(|l| l.contains("\"f\":\"txn\"") && l.contains("\"type\":\"info\""));
    for line in infos {
        assert!(
            line.contains("during COMMIT") || line.contains("no answer within"),
            "{line}"
        );
    }
    history
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: network namespaces and sshd")]
fn repeatable_read_without_snapshot_isolation_loses_updates() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = clusters::testing::home();
    let (out, dir) = run(home.path(), &["--isolation", "repeatable-read"], "1");
    // Checked against what the level's name promises: repeatable read. It is not.
    assert_eq!(out.status.code(), Some(1), "invalid under repeatable-read");
    let plan = read(dir.join("test.yaml"));
    assert!(plan.contains("\nconsistency: repeatable-read\n"), "{plan}");
    assert!(plan.contains("snapshot-isolation: \"off\""), "{plan}");
    let results: serde_json::Value =
        serde_json::from_str(&read(dir.join("results.json"))).expect("results.json");
    assert_eq!(results["checker"], "transactional");
    assert_eq!(results["valid"], false);
    assert_faults_and_recoveries(&dir);
    let history = assert_history_is_busy(&dir);
    assert!(
        !history.contains("\"error\":\"1020:"),
        "error 1020 with innodb_snapshot_isolation off"
    );
    let (checked, _) = assert_no_acknowledged_append_lost(&history);
    assert!(
        checked > 100,
        "only {checked} acknowledged elements read back"
    );
    // Snapshot isolation forbids what it shows: a lost update (P4) or G-single.
    let si = check_as(&dir, Consistency::SnapshotIsolation);
    assert_eq!(si.verdict, Verdict::Invalid, "{}", si.summary());
    let found = anomalies(&si);
    assert!(
        found.iter().any(|a| a == "lost-update" || a == "G-single"),
        "{found:?}"
    );
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: network namespaces and sshd")]
fn snapshot_isolation_on_turns_conflicts_into_error_1020() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = clusters::testing::home();
    let (out, dir) = run(
        home.path(),
        &[
            "--isolation",
            "repeatable-read",
            "--db-opt",
            "snapshot-isolation=on",
        ],
        "1",
    );
    // Checked against what repeatable read promises with it on: snapshot isolation.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        read(dir.join("results.json"))
    );
    let plan = read(dir.join("test.yaml"));
    assert!(
        plan.contains("\nconsistency: snapshot-isolation\n")
            && plan.contains("snapshot-isolation: \"on\""),
        "{plan}"
    );
    assert_faults_and_recoveries(&dir);
    let history = assert_history_is_busy(&dir);
    // The conflicts are there, and come back as definite failures naming 1020.
    let refused = history
        .lines()
        .filter(|l| l.contains("\"type\":\"fail\"") && l.contains("\"error\":\"1020:"))
        .count();
    assert!(
        refused >= 10,
        "only {refused} transactions failed with 1020"
    );
    let (checked, _) = assert_no_acknowledged_append_lost(&history);
    assert!(
        checked > 100,
        "only {checked} acknowledged elements read back"
    );
    // Even judged as strictly as serializability, no lost update is left.
    let ser = check_as(&dir, Consistency::Serializable);
    let found = anomalies(&ser);
    assert!(
        !found.iter().any(|a| a == "lost-update" || a == "G-single"),
        "{found:?}"
    );
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: network namespaces and sshd")]
fn serializable_is_serializable_under_kills_and_pauses() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = clusters::testing::home();
    let (out, dir) = run(home.path(), &["--isolation", "serializable"], "2");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        read(dir.join("results.json"))
    );
    let plan = read(dir.join("test.yaml"));
    assert!(
        plan.contains("\nconsistency: serializable\n") && plan.contains("isolation: serializable"),
        "{plan}"
    );
    assert_faults_and_recoveries(&dir);
    let history = assert_history_is_busy(&dir);
    let (checked, _) = assert_no_acknowledged_append_lost(&history);
    assert!(
        checked > 100,
        "only {checked} acknowledged elements read back"
    );
    // Two-phase locking on one server: strictly serializable too.
    let strict = check_as(&dir, Consistency::StrictSerializable);
    assert_eq!(strict.verdict, Verdict::Valid, "{}", strict.summary());
}
