//! End-to-end: `faultline test --db galera --workload list-append` against real MariaDB 10.11
//! with Galera 4 on a temporary three-node local cluster, with real partitions (iptables) and
//! kills (SIGKILL of mariadbd, then a restart that rejoins by IST or SST, or, when a majority
//! went down, a bootstrap of the most advanced node). The run must complete, every fault must
//! be healed, the cluster must be whole again (every node Synced in one Primary component of
//! three), and the history is checked against snapshot isolation. And by hand: every node
//! killed at once, then heal bootstraps one node from its recovered position and the others
//! rejoin it, committed rows intact. Needs root (network namespaces, sshd); CI runs them as
//! root.

use checkers::txn::Consistency;
use clusters::testing::require_root;
use nemesis::Kind;
use std::sync::Mutex;
mod common;
use common::{
    any_apply_failed, assert_history_is_busy, attempted, faultline, faultline_stored, journal,
    latest, plan, read, results, text, Cluster,
};

/// One run at a time: they would compete for the two cores.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
#[cfg_attr(not_root, ignore = "needs root: network namespaces and sshd")]
fn galera_survives_partitions_and_kills_and_is_whole_again() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = clusters::testing::home();
    let out = faultline_stored(
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
    let dir = latest(home.path());
    // The run completed and was checked: valid (0) or not (1), never an internal error.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit {:?}",
        out.status.code()
    );
    let plan = plan(&dir);
    assert_eq!(
        plan.consistency,
        Some(Consistency::SnapshotIsolation),
        "{plan:?}"
    );
    let results = results(&dir);
    assert_eq!(results.checker(), "transactional");
    assert_eq!(results.consistency(), Some(Consistency::SnapshotIsolation));

    // Real faults of both kinds, each applied and healed.
    let journal = journal(&dir);
    let raw = || read(dir.join("nemesis.jsonl"));
    for fault in [Kind::Kill, Kind::Partition] {
        assert!(
            attempted(&journal, fault) > 0,
            "no {fault:?} was applied:\n{}",
            raw()
        );
    }
    assert!(!any_apply_failed(&journal), "{}", raw());
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
    assert_history_is_busy(&dir);
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: network namespaces and sshd")]
fn every_node_killed_then_the_most_advanced_bootstraps_and_the_rest_rejoin() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = clusters::testing::home();
    let h = home.path();
    let cluster = Cluster::up(h, &format!("t-galera-{}", std::process::id()), 3);
    let c = cluster.arg();
    let db = |action: &str| faultline(h, &["db", action, "--cluster", c, "--db", "galera"]);
    let out = db("start");
    assert_eq!(out.status.code(), Some(0));
    let sql = |node: &str, sql: &str| {
        let out = faultline(
            h,
            &[
                "exec",
                "--cluster",
                c,
                "--node",
                node,
                "--",
                "mariadb",
                "--defaults-file=/var/lib/faultline-db/mariadb/my.cnf",
                "-u",
                "root",
                "--batch",
                "--skip-column-names",
                "-e",
                sql,
            ],
        );
        assert!(out.status.success(), "{sql} on {node}");
        text(&out.stdout)
    };
    // Committed on n2 (so replicated, and in every node's position), then every node killed.
    sql(
        node_n(2),
        "INSERT INTO faultline.faultline_register VALUES (1, 10), (2, 20), (3, 30)",
    );
    let out = faultline(
        h,
        &[
            "nemesis",
            "--cluster",
            c,
            "kill",
            "--db",
            "galera",
            "--nodes",
            "all",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let out = db("status");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("not running")
            .count(),
        3
    );
    // Heal restarts them: one bootstraps from its recovered position, the others join it.
    let out = faultline(h, &["heal", "--cluster", c]);
    assert_eq!(out.status.code(), Some(0));
    let out = db("status");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("answering")
            .count(),
        3
    );
    for n in 1..=3 {
        let got = sql(
            node_n(n),
            "SELECT GROUP_CONCAT(v ORDER BY k) FROM faultline.faultline_register; \
             SHOW STATUS LIKE 'wsrep_cluster_size'; SHOW STATUS LIKE 'wsrep_cluster_status'",
        );
        assert!(got.contains("10,20,30"), "n{n} lost committed rows: {got}");
        assert!(got.contains("wsrep_cluster_size\t3"), "n{n}: {got}");
        assert!(got.contains("wsrep_cluster_status\tPrimary"), "n{n}: {got}");
    }
    let out = faultline(
        h,
        &[
            "exec",
            "--cluster",
            c,
            "--",
            "sh",
            "-c",
            "grep -c -- '^== start .* --wsrep-new-cluster --wsrep-start-position=' /var/log/faultline-db/mariadb.log || true",
        ],
    );
    let bootstraps: u32 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .sum();
    assert_eq!(
        bootstraps, 1,
        "exactly one node bootstraps from its recovered position"
    );
    let _ = db("stop");
}

fn node_n(n: usize) -> &'static str {
    ["n1", "n2", "n3"][n - 1]
}
