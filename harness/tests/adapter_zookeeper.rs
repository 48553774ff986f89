//! The ZooKeeper example (examples/zookeeper: a definition file for a ZooKeeper 3.8 ensemble
//! and a Python adapter on Debian's python3-kazoo) end to end on a local cluster: cas-register
//! with reads after `sync`, under partitions and kills, is valid, and the servers restarted
//! after kills rejoin. How often it stays valid over many seeds, with and without sync, is
//! measured by scripts/zookeeper-survey, not claimed here. Root only.

use clusters::testing::{home, require_root};
use std::path::Path;
use std::process::Command;

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn zookeeper_cas_register_with_sync_reads_is_valid_under_partitions_and_kills() {
    require_root();
    let home = home();
    let def = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/zookeeper/zookeeper.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["test", "--cluster", "local:3", "--db"])
        .arg(&def)
        .args([
            "--workload",
            "cas-register",
            "--nemesis",
            "partition,kill",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "25s",
            "--seed",
            "1",
            "--store",
        ])
        .arg(home.path().join("store"))
        .env("FAULTLINE_HOME", home.path())
        .output()
        .expect("run faultline");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("VALID: linearizable"), "{stdout}");
    let run = std::fs::canonicalize(home.path().join("store/latest")).unwrap();
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let count = |f: &str| {
        history
            .lines()
            .filter(|l| l.contains("\"type\":\"ok\"") && l.contains(&format!("\"f\":\"{f}\"")))
            .count()
    };
    assert!(count("read") > 50, "{} ok reads", count("read"));
    assert!(count("cas") > 10, "{} ok cas", count("cas"));
    assert!(
        history.contains("\"f\":\"start-partition\""),
        "no partition"
    );
    assert!(history.contains("\"f\":\"start-kill\""), "no kill");
    // The adapters read after sync, and every server logged into the store; a killed server
    // was started again (its log has a second start) and took part in an election.
    let stderr = std::fs::read_to_string(run.join("adapters/0.stderr")).unwrap();
    assert!(stderr.contains("sync reads"), "{stderr}");
    let mut restarted = 0;
    for n in ["n1", "n2", "n3"] {
        let log = std::fs::read_to_string(run.join(format!("nodes/{n}/daemon.log"))).unwrap();
        assert!(log.contains("QuorumPeerMain"), "{n}: {log}");
        assert!(
            log.contains("LEADING") || log.contains("FOLLOWING"),
            "{n} never joined a quorum"
        );
        if log.matches("== start ").count() > 1 {
            restarted += 1;
        }
    }
    assert!(restarted > 0, "no server was restarted after a kill");
}
