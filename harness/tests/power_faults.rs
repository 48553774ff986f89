//! Power faults (`--nemesis power`, issue 25) end to end on real local clusters: the
//! database's data directory is faultline's lazy filesystem, a power fault kills the database
//! and drops what it never fsynced, and heal starts it again.
//!
//! - Redis (examples/redis-sentinel, appendonly yes): with `appendfsync no` acknowledged writes
//!   are lost under power and the run is invalid; with `appendfsync always` it is valid; and a
//!   plain `kill` with `appendfsync no` stays valid (the page cache survives a kill).
//! - PostgreSQL: `synchronous-commit=off` loses acknowledged appends under power (the lost
//!   appends are found in the history); the default keeps every one.
//! - A controller killed with SIGKILL while a power fault is applied: `faultline heal` starts
//!   the database again and leaves no lazy filesystem mounted.
//!
//! How often each setting loses writes over many seeds is measured by
//! scripts/durability-survey, not claimed here. They need root: built without it, they are
//! listed as ignored (CI runs them as root).

use checkers::Verdict;
use clusters::testing::{home, require_root};
use nemesis::{Fault, Kind};
use std::path::Path;
use std::process::Output;
use std::sync::Mutex;
use std::time::{Duration, Instant};
mod common;
use common::{
    acknowledged_appends, applied, faultline, faultline_stored, journal, latest, read, results,
    text, Cluster,
};

/// Two at a time at most: each runs a database on a local cluster, on two cores.
static SLOTS: Mutex<()> = Mutex::new(());

/// The Redis example's definition file.
fn redis_yaml() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/redis-sentinel/redis.yaml")
        .to_str()
        .expect("a UTF-8 path")
        .to_string()
}

/// `faultline test` of the Redis example on local:1, register workload, with `nemesis` and
/// `appendfsync`, appendonly on.
fn redis_run(home: &Path, nemesis: &str, appendfsync: &str, seed: &str) -> Output {
    let def = redis_yaml();
    let fsync = format!("appendfsync={appendfsync}");
    faultline_stored(
        home,
        &[
            "test",
            "--cluster",
            "local:1",
            "--db",
            &def,
            "--workload",
            "register",
            "--nemesis",
            nemesis,
            "--db-opt",
            "appendonly=yes",
            "--db-opt",
            &fsync,
            "--time-limit",
            "20s",
            "--seed",
            seed,
        ],
    )
}

/// `faultline test --db postgres --workload list-append --nemesis power` on local:1 with
/// `opts` (`--db-opt` values).
fn postgres_run(home: &Path, opts: &[&str], seed: &str) -> Output {
    let mut args = vec![
        "test",
        "--cluster",
        "local:1",
        "--db",
        "postgres",
        "--workload",
        "list-append",
        "--nemesis",
        "power",
        "--time-limit",
        "30s",
        "--seed",
        seed,
    ];
    for o in opts {
        args.extend(["--db-opt", o]);
    }
    faultline_stored(home, &args)
}

/// Power faults were applied in the run (journaled and in the history) and none failed.
fn assert_power_applied(run: &Path) {
    let j = journal(run);
    assert!(
        applied(&j, Kind::Power) >= 1,
        "no power fault applied: {j:#?}"
    );
    let history = read(run.join("history.jsonl"));
    assert!(history.contains("\"start-power\""), "no start-power");
    assert!(
        !history.contains("\"fault-refused\""),
        "a fault was refused"
    );
    let log = read(run.join("faultline.log"));
    assert!(
        log.contains("on faultline's lazy filesystem on every node"),
        "{log}"
    );
    assert!(!log.contains("could not unmount"), "{log}");
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, FUSE), redis"
)]
fn redis_with_appendfsync_no_loses_acknowledged_writes_under_power() {
    require_root();
    let _g = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let out = redis_run(home.path(), "power", "no", "1");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let run = latest(home.path());
    assert_eq!(results(&run).head.valid, Verdict::Invalid);
    assert_power_applied(&run);
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, FUSE), redis"
)]
fn redis_with_appendfsync_always_keeps_acknowledged_writes_under_power() {
    require_root();
    let home = home();
    let out = redis_run(home.path(), "power", "always", "1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let run = latest(home.path());
    assert_eq!(results(&run).head.valid, Verdict::Valid);
    assert_power_applied(&run);
}

/// The page cache survives a plain kill: what `appendfsync no` left unsynced is still read
/// back, which is why `power` is needed to find it.
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd), redis"
)]
fn a_kill_does_not_lose_what_appendfsync_no_left_unsynced() {
    require_root();
    let _g = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let out = redis_run(home.path(), "kill", "no", "1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let run = latest(home.path());
    assert_eq!(results(&run).head.valid, Verdict::Valid);
    assert!(applied(&journal(&run), Kind::Kill) >= 1);
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, FUSE), PostgreSQL 15"
)]
fn postgres_without_synchronous_commit_loses_acknowledged_appends_under_power() {
    require_root();
    let _g = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let out = postgres_run(home.path(), &["synchronous-commit=off"], "1");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let run = latest(home.path());
    assert_eq!(results(&run).head.valid, Verdict::Invalid);
    assert_power_applied(&run);
    // The appends acknowledged before a power loss and missing from later reads.
    let appends = acknowledged_appends(&read(run.join("history.jsonl")), "start-power");
    assert!(!appends.lost.is_empty(), "{appends:?}");
    assert!(appends.spanning > 0, "{appends:?}");
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, FUSE), PostgreSQL 15"
)]
fn postgres_keeps_every_acknowledged_append_under_power() {
    require_root();
    let home = home();
    let out = postgres_run(home.path(), &[], "1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let run = latest(home.path());
    assert_eq!(results(&run).head.valid, Verdict::Valid);
    assert_power_applied(&run);
    let appends = acknowledged_appends(&read(run.join("history.jsonl")), "start-power");
    assert!(appends.lost.is_empty(), "{:?}", &appends.lost[..1]);
    assert!(
        appends.spanning > 0,
        "no read after a power loss: {appends:?}"
    );
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, FUSE), PostgreSQL 15"
)]
fn heal_after_a_killed_test_starts_the_database_again_and_leaves_nothing_mounted() {
    require_root();
    let _g = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let h = home.path();
    let name = format!("t-power-heal-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 1);
    let c = cluster.arg().to_string();
    let store = h.join("store");
    let powered_off = common::kill_test_mid_fault(
        h,
        &name,
        &[
            "test",
            "--cluster",
            &c,
            "--db",
            "postgres",
            "--workload",
            "list-append",
            "--nemesis",
            "power",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "120s",
            "--seed",
            "2",
            "--store",
            store.to_str().expect("utf-8 path"),
        ],
        |f| matches!(f, Fault::Power(_)),
    );
    assert!(powered_off, "no power fault was applied within the run");
    let data = "/var/lib/faultline-db/postgres/data";
    let pg_runs = || common::process_runs(h, &c, "n1", "postgres");
    let mounted = || common::lazyfs_mounted(h, &c, "n1");
    assert!(!pg_runs(), "the power fault is applied: postgres is down");
    assert!(mounted(), "the lazy filesystem is mounted");
    let out = faultline(h, &["heal", "--cluster", &c]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("healed #") && l.contains("power off postgres on n1")),
        "{err}"
    );
    assert!(
        err.contains("undid a fault recorded on the node: unmount the lazy filesystem of postgres"),
        "{err}"
    );
    assert!(!mounted(), "heal left the lazy filesystem mounted: {err}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pg_runs() {
        assert!(
            Instant::now() < deadline,
            "heal did not start postgres again: {err}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Its data is in place, on the plain directory.
    assert_eq!(
        common::on_node(h, &c, "n1", &format!("cat {data}/PG_VERSION")).trim(),
        "15"
    );
    // A second heal finds nothing.
    let out = faultline(h, &["heal", "--cluster", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nothing to heal"),
        "{}",
        text(&out.stderr)
    );
}

/// The operator's path: `faultline db start --lazyfs`, then `faultline nemesis power` (torn
/// writes) by hand, `faultline heal` (the database runs again, nothing mounted), and a power
/// fault on a database that is not on the lazy filesystem is refused saying why.
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, FUSE), PostgreSQL 15"
)]
fn power_by_hand_on_a_database_started_on_the_lazy_filesystem() {
    require_root();
    let _g = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let h = home.path();
    let name = format!("t-power-hand-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 1);
    let c = cluster.arg().to_string();
    let pg_runs = || common::process_runs(h, &c, "n1", "postgres");
    let mounted = || common::lazyfs_mounted(h, &c, "n1");
    let out = faultline(
        h,
        &[
            "db",
            "start",
            "--cluster",
            &c,
            "--db",
            "postgres",
            "--lazyfs",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("started on the lazy filesystem"));
    assert!(mounted());
    let power = [
        "nemesis",
        "--cluster",
        &c,
        "power",
        "--db",
        "postgres",
        "--nodes",
        "all",
        "--mode",
        "torn",
    ];
    let out = faultline(h, &power);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("power off postgres on n1 (torn in"),
        "{}",
        text(&out.stderr)
    );
    assert!(!pg_runs(), "postgres runs after its power was cut");
    let out = faultline(h, &["heal", "--cluster", &c]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("healed #1 power off postgres on n1"), "{err}");
    assert!(!mounted(), "{err}");
    assert!(pg_runs(), "heal did not start postgres: {err}");
    // Off the lazy filesystem now: refused, naming how to get there.
    let out = faultline(h, &power);
    assert_eq!(out.status.code(), Some(254), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is not on faultline's lazy filesystem on n1"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("faultline db start --lazyfs"));
    let out = faultline(h, &["db", "wipe", "--cluster", &c, "--db", "postgres"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}
