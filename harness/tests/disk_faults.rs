//! Disk faults (`--nemesis disk-full|disk-slow`, `faultline nemesis disk-*`, issue 25) end to
//! end on real local clusters, with Redis (examples/redis-sentinel, appendonly yes,
//! appendfsync always: every acknowledged write was fsynced) on faultline's lazy filesystem:
//!
//! - disk-full: no write succeeds while the disk is full (Redis exits when it cannot append
//!   to its AOF under `appendfsync always`), heal clears it and restarts Redis, writes succeed
//!   again and every key written is read back; the run is valid.
//! - disk-slow: Redis keeps answering, and each write acknowledged during the fault took at
//!   least the delay (its fsync waited it); the run is valid.
//! - A controller killed with SIGKILL mid disk-full: the disk stays full until `faultline
//!   heal`, which clears it, restarts Redis and leaves nothing mounted; then the operator's
//!   path by hand: refused off the lazy filesystem, applied with `db start --lazyfs`, healed.
//!
//! They need root: built without it, they are listed as ignored (CI runs them as root).

use checkers::history::{Event, EventKind, Process};
use checkers::Verdict;
use clusters::testing::{home, require_root};
use nemesis::{Fault, Kind};
use std::collections::HashMap;
use std::path::Path;
use std::process::Output;
use std::sync::Mutex;
use std::time::{Duration, Instant};
mod common;
use common::{
    applied, faultline, faultline_stored, history, journal, latest, results, text, Cluster,
};

/// One at a time: each runs a database on a local cluster, on two cores.
static SLOTS: Mutex<()> = Mutex::new(());

/// The Redis example's definition file.
fn redis_yaml() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/redis-sentinel/redis.yaml")
        .to_str()
        .expect("a UTF-8 path")
        .to_string()
}

/// Where the Redis example keeps its data on a node.
const DATA: &str = "/var/lib/faultline-db/redis-sentinel";

/// `faultline test` of the Redis example on local:1, register workload, appendonly with
/// appendfsync always, with `nemesis` every 4 s for 20 s.
fn redis_run(home: &Path, nemesis: &str, seed: &str) -> Output {
    let def = redis_yaml();
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
            "--nemesis-interval",
            "4s",
            "--db-opt",
            "appendonly=yes",
            "--db-opt",
            "appendfsync=always",
            "--time-limit",
            "20s",
            "--seed",
            seed,
        ],
    )
}

/// A client op: its invocation and completion events.
struct Op<'a> {
    invoke: &'a Event,
    done: &'a Event,
}

/// Every completed client op of a history, in order of invocation.
fn ops(h: &[Event]) -> Vec<Op<'_>> {
    let mut open: HashMap<u64, &Event> = HashMap::new();
    let mut out = Vec::new();
    for e in h {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventKind::Invoke {
            open.insert(p, e);
        } else if let Some(invoke) = open.remove(&p) {
            out.push(Op { invoke, done: e });
        }
    }
    out.sort_by_key(|o| o.invoke.index);
    out
}

/// The history's intervals of `kind`: (index of start-KIND, index of stop-KIND or the end,
/// the start's value).
fn intervals<'a>(h: &'a [Event], kind: &str) -> Vec<(u64, u64, &'a Event)> {
    let mut out = Vec::new();
    let mut start: Option<&Event> = None;
    for e in h.iter().filter(|e| matches!(e.process, Process::Named(_))) {
        if e.f == format!("start-{kind}") {
            start = Some(e);
        } else if e.f == format!("stop-{kind}") || e.f == "heal" {
            if let Some(s) = start.take() {
                out.push((s.index, e.index, s));
            }
        }
    }
    if let Some(s) = start {
        out.push((s.index, u64::MAX, s));
    }
    out
}

/// Whether `op` writes (Redis appends it to its AOF when it succeeds).
fn writes(op: &Op<'_>) -> bool {
    op.invoke.f == "write" || op.invoke.f == "cas"
}

/// The run succeeded with a valid verdict, faults of `kind` applied and none refused.
fn assert_valid_with(run: &Path, out: &Output, kind: Kind) {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(results(run).head.valid, Verdict::Valid);
    let j = journal(run);
    assert!(applied(&j, kind) >= 1, "no {kind} applied: {j:#?}");
    let h = history(run);
    assert!(
        !h.iter().any(|e| e.f == "fault-refused"),
        "a fault was refused"
    );
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, FUSE), redis"
)]
fn writes_fail_on_a_full_disk_and_succeed_again_after_heal() {
    require_root();
    let _g = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let out = redis_run(home.path(), "disk-full", "1");
    let run = latest(home.path());
    assert_valid_with(&run, &out, Kind::DiskFull);
    let h = history(&run);
    let ops = ops(&h);
    let full = intervals(&h, "disk-full");
    assert!(!full.is_empty(), "no disk-full interval in the history");
    // The heal clears the fault and restarts Redis a moment before its stop-disk-full is
    // written: only ops completed in the fault's first 2 s count (its heal comes 4 s after
    // its slot).
    let inside = |o: &Op<'_>, (start, stop, s): &(u64, u64, &Event)| {
        o.invoke.index > *start
            && o.done.index < *stop
            && o.done.time.unwrap_or(u64::MAX) < s.time.unwrap_or(0) + 2_000_000_000
    };
    let mut failed = 0;
    for o in &ops {
        for iv in &full {
            if inside(o, iv) {
                assert!(
                    !(writes(o) && o.done.kind == EventKind::Ok),
                    "a write was acknowledged while the disk was full: {:?} -> {:?}",
                    o.invoke,
                    o.done
                );
                failed += usize::from(o.done.kind != EventKind::Ok);
            }
        }
    }
    assert!(failed > 0, "no op failed while the disk was full");
    // After the last heal, writes succeed again, and the power measure read every key back.
    let last_stop = full.iter().map(|iv| iv.1).max().unwrap_or(0);
    let after = ops
        .iter()
        .filter(|o| o.invoke.index > last_stop && writes(o) && o.done.kind == EventKind::Ok)
        .count();
    assert!(after > 0, "no write succeeded after the last heal");
    let power = results(&run).power.expect("power");
    let read_back = power.read_back.expect("keys read back");
    assert!(read_back.keys_written > 0, "{read_back:?}");
    assert_eq!(
        read_back.keys_read_after_heal, read_back.keys_written,
        "{read_back:?}"
    );
    // Redis exited when it could not append (appendfsync always), and heal started it again.
    let log = common::read(run.join("nodes/n1/redis.log"));
    let exited = log
        .find("Can't recover from AOF write error")
        .expect("redis did not exit on the full disk");
    assert!(
        log[exited..].contains("Ready to accept connections"),
        "heal did not start the redis that exited"
    );
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, FUSE), redis"
)]
fn a_slow_disk_delays_acknowledged_writes_and_the_database_still_works() {
    require_root();
    let _g = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let out = redis_run(home.path(), "disk-slow", "1");
    let run = latest(home.path());
    assert_valid_with(&run, &out, Kind::DiskSlow);
    let h = history(&run);
    let ops = ops(&h);
    let mut acknowledged = 0;
    for (start, stop, s) in intervals(&h, "disk-slow") {
        let value = serde_json::to_value(&s.value).expect("json");
        let delay_ms = value["delay_ms"].as_u64().expect("the fault's delay");
        // The heal clears the delay a moment before its stop-disk-slow is written, and a
        // write that reaches Redis then is fast: only writes acknowledged in the fault's first
        // 2 s count (its heal comes 4 s after its slot).
        let until = s.time.unwrap_or(0) + 2_000_000_000;
        for o in ops.iter().filter(|o| {
            o.invoke.index > start
                && o.done.index < stop
                && o.done.time.unwrap_or(u64::MAX) < until
                && writes(o)
                && o.done.kind == EventKind::Ok
        }) {
            let took = o.done.time.unwrap_or(0) - o.invoke.time.unwrap_or(0);
            // Each acknowledged write was fsynced first (appendfsync always), and that fsync
            // waited the delay.
            assert!(
                took >= delay_ms * 1_000_000,
                "a write acknowledged in {took} ns under a {delay_ms} ms delay"
            );
            acknowledged += 1;
        }
    }
    assert!(
        acknowledged > 0,
        "no write was acknowledged on the slow disk"
    );
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, FUSE), redis"
)]
fn heal_after_a_killed_test_clears_a_full_disk_and_faults_by_hand() {
    require_root();
    let _g = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let h = home.path();
    let name = format!("t-disk-heal-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 1);
    let c = cluster.arg().to_string();
    let def = redis_yaml();
    let store = h.join("store");
    let full = common::kill_test_mid_fault(
        h,
        &name,
        &[
            "test",
            "--cluster",
            &c,
            "--db",
            &def,
            "--workload",
            "register",
            "--nemesis",
            "disk-full",
            "--nemesis-interval",
            "3s",
            "--db-opt",
            "appendonly=yes",
            "--time-limit",
            "120s",
            "--seed",
            "2",
            "--store",
            store.to_str().expect("utf-8 path"),
        ],
        |f| matches!(f, Fault::DiskFull(_)),
    );
    assert!(full, "no disk-full fault was applied within the run");
    let probe = format!("echo x > {DATA}/probe 2>&1 && echo written; rm -f {DATA}/probe");
    assert!(
        common::on_node(h, &c, "n1", &probe).contains("No space left on device"),
        "the disk is not full after the controller died"
    );
    let mounted = || common::lazyfs_mounted(h, &c, "n1");
    let redis_answers = || {
        common::on_node(
            h,
            &c,
            "n1",
            "redis-cli -h $(hostname -i | cut -d' ' -f1) ping 2>&1 || true",
        )
        .contains("PONG")
    };
    assert!(mounted());
    let out = faultline(h, &["heal", "--cluster", &c]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("healed #") && l.contains("disk full for redis-sentinel on n1")),
        "{err}"
    );
    assert!(
        err.contains(
            "undid a fault recorded on the node: unmount the lazy filesystem of redis-sentinel"
        ),
        "{err}"
    );
    assert!(!mounted(), "heal left the lazy filesystem mounted: {err}");
    assert_eq!(
        common::on_node(h, &c, "n1", &probe).trim(),
        "written",
        "{err}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !redis_answers() {
        assert!(
            Instant::now() < deadline,
            "redis does not answer after heal: {err}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // By hand: refused while the data directory is not on the lazy filesystem.
    let disk_slow = [
        "nemesis",
        "--cluster",
        &c,
        "disk-slow",
        "--db",
        &def,
        "--nodes",
        "all",
        "--delay",
        "300ms",
        "--on",
        "fsync",
    ];
    let out = faultline(h, &disk_slow);
    assert_eq!(out.status.code(), Some(254), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is not on faultline's lazy filesystem on n1"),
        "{}",
        text(&out.stderr)
    );
    // On it, applied and listed, then healed with nothing left mounted.
    for args in [
        vec!["db", "stop", "--cluster", &c, "--db", &def],
        vec!["db", "start", "--cluster", &c, "--db", &def, "--lazyfs"],
    ] {
        let out = faultline(h, &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    }
    assert!(mounted());
    let out = faultline(h, &disk_slow);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("slow disk for redis-sentinel on n1 (+300 ms on fsyncs in"),
        "{}",
        text(&out.stderr)
    );
    let out = faultline(h, &["nemesis", "--cluster", &c, "status"]);
    assert!(
        text(&out.stdout).contains("slow disk"),
        "{}",
        text(&out.stdout)
    );
    assert!(redis_answers(), "redis stops answering on a slow disk");
    let out = faultline(h, &["heal", "--cluster", &c]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("slow disk for redis-sentinel on n1"), "{err}");
    assert!(!mounted(), "{err}");
    let out = faultline(h, &["db", "wipe", "--cluster", &c, "--db", &def]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}
