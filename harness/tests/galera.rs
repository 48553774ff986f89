//! End-to-end: `faultline test --db galera --workload list-append` against real MariaDB 10.11
//! with Galera 4 on a temporary three-node local cluster, with real partitions (iptables) and
//! kills (SIGKILL of mariadbd, then a restart that rejoins by IST or SST, or, when a majority
//! went down, a bootstrap of the most advanced node). The run must complete, every fault must
//! be healed, the cluster must be whole again (every node Synced in one Primary component of
//! three), and the history is checked against snapshot isolation. And by hand: every node
//! killed at once, then heal bootstraps one node from its recovered position and the others
//! rejoin it, committed rows intact. Needs root (network namespaces, sshd); CI runs them as
//! root.

use clusters::testing::require_root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

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

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: network namespaces and sshd")]
fn galera_survives_partitions_and_kills_and_is_whole_again() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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

/// Removes a cluster however the test ends (a panic included).
struct Down<'a>(&'a Path, String);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = faultline_at(self.0, &["cluster", "down", "--name", &self.1]);
    }
}

fn faultline_at(home: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .env("FAULTLINE_HOME", home)
        .output()
        .expect("run faultline");
    eprintln!(
        "$ faultline {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: network namespaces and sshd")]
fn every_node_killed_then_the_most_advanced_bootstraps_and_the_rest_rejoin() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = clusters::testing::home();
    let h = home.path();
    let name = format!("t-galera-{}", std::process::id());
    let _down = Down(h, name.clone());
    let out = faultline_at(h, &["cluster", "up", "--local", "3", "--name", &name]);
    assert!(out.status.success());
    let c = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let db = |action: &str| faultline_at(h, &["db", action, "--cluster", &c, "--db", "galera"]);
    let out = db("start");
    assert_eq!(out.status.code(), Some(0));
    let sql = |node: &str, sql: &str| {
        let out = faultline_at(
            h,
            &[
                "exec",
                "--cluster",
                &c,
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
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Committed on n2 (so replicated, and in every node's position), then every node killed.
    sql(
        node_n(2),
        "INSERT INTO faultline.faultline_register VALUES (1, 10), (2, 20), (3, 30)",
    );
    let out = faultline_at(
        h,
        &[
            "nemesis",
            "--cluster",
            &c,
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
    let out = faultline_at(h, &["heal", "--cluster", &c]);
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
    let out = faultline_at(
        h,
        &[
            "exec",
            "--cluster",
            &c,
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
