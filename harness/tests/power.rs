//! Test power, end to end on local clusters with real databases: a VALID must mean the run
//! tested something. A database that forgets everything on restart (Redis without
//! persistence) is found invalid, because keys written before a kill are read back after it;
//! kill and pause land on PostgreSQL's primary although it runs on one node of three; and a
//! database that stops answering for good mid-run is `valid, weak` (exit 3 with
//! `--strict-power`), with its unavailable window in results.json. They need root (built
//! without it, they are listed as ignored); CI runs them as root.

mod common;

use checkers::Verdict;
use clusters::testing::{home, require_root};
use common::{faultline, latest, results, text, up};
use harness::power::Power;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

/// The run's power, from its results.json.
fn power(run: &Path) -> Power {
    results(run).power.expect("results.json has power")
}

/// The store under `home`, as an argument.
fn store(home: &Path) -> String {
    common::store(home).display().to_string()
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: network namespaces and sshd")]
fn a_database_that_forgets_everything_on_restart_is_found_invalid() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let def = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/redis-sentinel/redis.yaml"
    );
    // One Redis with `appendonly no` and `save ""`: a kill loses every key.
    let out = faultline(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:1",
            "--db",
            def,
            "--workload",
            "register",
            "--nemesis",
            "kill",
            "--nemesis-interval",
            "4s",
            "--time-limit",
            "20s",
            "--seed",
            "1",
            "--store",
            &store(home.path()),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let p = power(&latest(home.path()));
    assert!(p.faults["kill"].applied >= 1, "{:?}", p.faults);
    let rb = p.read_back.expect("registers read back");
    assert!(rb.keys_read_after_heal > 0, "{rb:?}");
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: network namespaces and sshd")]
fn kills_and_pauses_land_on_a_database_that_runs_on_one_node_of_three() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    // PostgreSQL without replicas runs on n1 only.
    let out = faultline(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:3",
            "--db",
            "postgres",
            "--workload",
            "list-append",
            "--nemesis",
            "kill,pause",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "30s",
            "--rate",
            "300",
            "--seed",
            "1",
            "--store",
            &store(home.path()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let p = power(&latest(home.path()));
    let scheduled: u64 = p.faults.values().map(|f| f.scheduled).sum();
    let applied: u64 = p.faults.values().map(|f| f.applied).sum();
    assert!(
        scheduled > 0 && applied * 10 >= scheduled * 8,
        "{applied} of {scheduled} applied: {:?}",
        p.faults
    );
    let (min, max) = p.concurrency.worker_share_range();
    assert!(min >= 0.5 && max <= 2.0, "shares {min:.2}..{max:.2}");
    assert!(p.weak.is_empty(), "{:?}", p.weak);
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: network namespaces and sshd")]
fn a_database_stopped_for_good_mid_run_is_weak() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let cluster = up(home.path(), "t-power", 1);
    let c = cluster.display().to_string();
    let store = store(home.path());
    let run = |strict: bool| {
        let mut args = vec![
            "test",
            "--cluster",
            &c,
            "--db",
            "etcd",
            "--workload",
            "register",
            "--nemesis",
            "none",
            "--time-limit",
            "20s",
            "--seed",
            "1",
            "--store",
            &store,
        ];
        if strict {
            args.push("--strict-power");
        }
        let child = common::cmd(home.path(), &args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("faultline test");
        // Once etcd has served for a while, stop it for good (nothing restarts it).
        std::thread::sleep(Duration::from_secs(8));
        let kill = faultline(
            home.path(),
            &[
                "exec",
                "--cluster",
                &c,
                "--",
                "sh",
                "-c",
                "kill -9 $(cat /var/lib/faultline-db/etcd/etcd.pid)",
            ],
        );
        assert!(kill.status.success(), "{}", text(&kill.stderr));
        let out = child.wait_with_output().expect("faultline test");
        eprintln!("{}{}", text(&out.stdout), text(&out.stderr));
        out
    };
    let out = run(false);
    assert_eq!(out.status.code(), Some(0), "weak is still exit 0");
    // What the user is told, and what results.json says.
    assert!(text(&out.stdout).contains("valid, weak: the database answered no op from"));
    let results = results(&latest(home.path()));
    assert_eq!(results.head.valid, Verdict::Valid, "{results:?}");
    let p = results.power.expect("results.json has power");
    assert!(
        p.weak
            .iter()
            .any(|w| w.starts_with("the database answered no op from")),
        "{:?}",
        p.weak
    );
    let last = p
        .availability
        .unavailable
        .last()
        .expect("an unavailable window");
    assert!(last.start > 5.0 && last.start < 12.0, "{last:?}");
    assert!(last.end >= p.availability.duration, "{last:?}");
    assert!(
        std::fs::read_to_string(latest(home.path()).join("report.html"))
            .expect("report.html")
            .contains("weak (see Test power)")
    );
    // The unavailable window is drawn on the throughput plot.
    assert!(
        std::fs::read_to_string(latest(home.path()).join("rate.svg"))
            .expect("rate.svg")
            .contains("no ok op")
    );
    let out = run(true);
    assert_eq!(out.status.code(), Some(3), "--strict-power");
    let _ = faultline(home.path(), &["cluster", "down", "--name", "t-power"]);
}
