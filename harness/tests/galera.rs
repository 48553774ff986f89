//! End-to-end: `faultline test --db galera --workload list-append` against real MariaDB 10.11
//! with Galera 4 on a temporary three-node local cluster, with real partitions (iptables) and
//! kills (SIGKILL of mariadbd, then a restart that rejoins by IST or SST, or, when a majority
//! went down, a bootstrap of the most advanced node). The run must complete, every fault must
//! be healed, the cluster must be whole again (every node Synced in one Primary component of
//! three), and the history is checked against snapshot isolation. Needs root (network
//! namespaces, sshd); CI runs it as root.

use clusters::testing::require_root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: network namespaces and sshd")]
fn galera_survives_partitions_and_kills_and_is_whole_again() {
    require_root();
    let home = clusters::testing::home();
    let out = faultline(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:3",
            "--db",
            "galera",
            "--workload",
            "list-append",
            "--nemesis",
            "partition,kill",
            "--nemesis-interval",
            "5s",
            "--time-limit",
            "30s",
            "--rate",
            "100",
            "--ops-per-key",
            "32",
            "--seed",
            "1",
        ],
    );
    let dir = std::fs::canonicalize(home.path().join("store/latest")).expect("store/latest");
    // The run completed and was checked: valid (0) or not (1), never an internal error.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit {:?}",
        out.status.code()
    );
    let plan = read(dir.join("test.yaml"));
    assert!(
        plan.contains("\nconsistency: snapshot-isolation\n"),
        "{plan}"
    );
    let results: serde_json::Value =
        serde_json::from_str(&read(dir.join("results.json"))).expect("results.json");
    assert_eq!(results["checker"], "transactional");
    assert_eq!(results["consistency"], "snapshot-isolation");

    // Real faults of both kinds, each applied and healed.
    let journal = read(dir.join("nemesis.jsonl"));
    for fault in ["kill", "partition"] {
        assert!(
            journal
                .lines()
                .any(|l| l.contains(&format!("\"fault\":\"{fault}\"")) && l.contains("\"apply\"")),
            "no {fault} was applied:\n{journal}"
        );
    }
    assert!(!journal.contains("apply-failed"), "{journal}");
    let log = read(dir.join("faultline.log"));
    assert!(!log.contains("HEAL FAILED"), "{log}");
    // The cluster is whole again.
    assert!(
        log.contains(
            "galera recovered: every node Synced in one Primary component (wsrep_cluster_size=3)"
        ),
        "{log}"
    );
    // A killed node came back: its log shows a second start, and a state transfer or a
    // bootstrap after it.
    let restarted = (1..=3).any(|i| {
        let l = read(dir.join(format!("nodes/n{i}/mariadb.log")));
        l.matches("== start").count() >= 2
    });
    assert!(restarted, "no node was started twice");

    // Transactions committed, on every node, and nothing was guessed.
    let history = read(dir.join("history.jsonl"));
    let ok = history.matches("\"type\":\"ok\"").count();
    assert!(ok > 200, "only {ok} transactions committed");
    for line in history
        .lines()
        .filter(|l| l.contains("\"f\":\"txn\"") && l.contains("\"type\":\"info\""))
    {
        assert!(
            line.contains("during COMMIT") || line.contains("no answer within"),
            "{line}"
        );
    }
}
