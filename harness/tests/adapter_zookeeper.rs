//! The ZooKeeper example (examples/zookeeper: a definition file for a ZooKeeper 3.8 ensemble
//! and a Python adapter on Debian's python3-kazoo) end to end on a local cluster: cas-register
//! with reads after `sync`, under partitions and kills, is valid, and the servers restarted
//! after kills rejoin. How often it stays valid over many seeds, with and without sync, is
//! measured by scripts/zookeeper-survey, not claimed here. Root only.

use checkers::Verdict;
use clusters::testing::{home, require_root};
use std::path::Path;
mod common;
use common::{count_ok, faultline_stored, has_f, history, latest, read, results};

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn zookeeper_cas_register_with_sync_reads_is_valid_under_partitions_and_kills() {
    require_root();
    let home = home();
    let def = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/zookeeper/zookeeper.yaml");
    let def = def.to_str().expect("a UTF-8 path");
    let out = faultline_stored(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:3",
            "--db",
            def,
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
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let run = latest(home.path());
    let results = results(&run);
    assert!(
        results.head.valid == Verdict::Valid && results.checker() == "linearizable",
        "{results:?}"
    );
    let history = history(&run);
    let count = |f: &str| count_ok(&history, f);
    assert!(count("read") > 50, "{} ok reads", count("read"));
    assert!(count("cas") > 10, "{} ok cas", count("cas"));
    assert!(has_f(&history, "start-partition"), "no partition");
    assert!(has_f(&history, "start-kill"), "no kill");
    // The adapters read after sync, and every server logged into the store; a killed server
    // was started again (its log has a second start) and took part in an election.
    let stderr = read(run.join("adapters/0.stderr"));
    assert!(stderr.contains("sync reads"), "{stderr}");
    let mut restarted = 0;
    for n in ["n1", "n2", "n3"] {
        let log = read(run.join(format!("nodes/{n}/daemon.log")));
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
