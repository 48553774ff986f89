//! Heal and the databases it restarts, end to end on real local clusters: a database defined
//! by a file and killed by hand is restarted by `faultline heal` (and an edited or removed
//! definition is named, and forgotten with `--force`); a test killed with SIGKILL while a
//! replica is killed is healed with the test's options; a stale pid file never pauses or
//! kills another process; PostgreSQL with another process on its port fails at setup. They
//! need root: built without it, they are listed as ignored (CI runs them as root).

use clusters::testing::{home, require_root};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
mod common;
use common::{cmd, db_journal, faultline, parse_journal_lenient, run_echoed, text, Cluster};
use nemesis::journal::Event as JournalEvent;
use nemesis::Fault;

/// One at a time: they would compete for the two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// `faultline ARGS` run in directory `dir` (so that a relative `--db FILE.yaml` is relative
/// to it).
fn faultline_in(home: &Path, dir: &Path, args: &[&str]) -> Output {
    let mut c = cmd(home, args);
    c.current_dir(dir);
    eprintln!("$ cd {}", dir.display());
    run_echoed(c, args)
}

/// A database that is a `sleep 100000` on each node, as `toy.yaml` in `dir`.
fn toy(dir: &Path) -> PathBuf {
    sleeper(dir, "toy", 100000)
}

/// A database `name` that is a `sleep NAP` on each node, as `NAME.yaml` in `dir`, served by
/// the no-op adapter with shared state.
fn sleeper(dir: &Path, name: &str, nap: u32) -> PathBuf {
    let noop = std::fs::canonicalize(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/noop-adapter.py"),
    )
    .expect("examples/noop-adapter.py");
    let text = format!(
        "\
name: {name}
workloads: [register]
client: [python3, {}, --state, {}]
options:
  nap: '{nap}'
commands:
  daemon: sleep {{{{opt.nap}}}}
  ready: test -s {{{{data_dir}}}}/faultline.pid
",
        noop.display(),
        dir.join(format!("{name}.state")).display()
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).expect("write the definition");
    path
}

/// Runs `script` on `node` through `faultline exec` and returns its stdout.
fn on(home: &Path, cluster: &str, node: &str, script: &str) -> String {
    let out = faultline(
        home,
        &[
            "exec",
            "--cluster",
            cluster,
            "--node",
            node,
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("== "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the toy's daemon runs on `node` (a `sleep 100000`).
fn toy_runs(home: &Path, cluster: &str, node: &str) -> bool {
    on(
        home,
        cluster,
        node,
        "pgrep -x sleep -a | grep -q 'sleep 100000' && echo yes || echo no",
    )
    .contains("yes")
}

/// The report: `db start --db def.yaml`, `nemesis kill --db def.yaml --nodes n2`, then
/// `heal` exited 1 with `no process hooks for database "toy"` and n2 stayed down, and every
/// later test on the cluster exited 255. The journal recorded the definition's name only.
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd)"
)]
fn heal_restarts_a_defined_database_and_names_a_definition_that_changed_or_is_gone() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let h = home.path();
    let name = format!("t-heal-def-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 2);
    let c = cluster.file.clone();
    let c = c.to_str().expect("utf-8 path");
    let defs = h.join("defs");
    std::fs::create_dir_all(&defs).expect("mkdir");
    let def = toy(&defs);
    let in_defs = |args: &[&str]| faultline_in(h, &defs, args);
    let kill = |node: &str| {
        let out = in_defs(&[
            "nemesis",
            "--cluster",
            c,
            "kill",
            "--db",
            "toy.yaml",
            "--nodes",
            node,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(!toy_runs(h, c, node), "kill did not kill on {node}");
    };

    let out = in_defs(&["db", "start", "--cluster", c, "--db", "toy.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    kill("n2");
    // Heal, from another directory: the journal has the definition's absolute path.
    let out = faultline(h, &["heal", "--cluster", c]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("healed #1 kill toy on n2"), "{err}");
    assert!(toy_runs(h, c, "n2"), "heal did not restart toy on n2");

    // A test of another database first heals what was left: it restarts toy as its kill
    // recorded it (it used to exit 255, "faults left by an earlier run could not be healed").
    kill("n2");
    let other = sleeper(&defs, "other", 200000);
    let out = faultline(
        h,
        &[
            "test",
            "--cluster",
            c,
            "--db",
            other.to_str().expect("utf-8 path"),
            "--workload",
            "register",
            "--nemesis",
            "none",
            "--time-limit",
            "5s",
            "--concurrency",
            "2",
            "--store",
            h.join("store").to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(toy_runs(h, c, "n2"), "the test did not restart toy on n2");

    // The definition changed since the kill: heal says so and heals the rest; the fault
    // stays, until --force forgets it.
    kill("n2");
    let out = faultline(
        h,
        &["nemesis", "--cluster", c, "partition", "--isolate", "n1"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    std::fs::write(
        &def,
        std::fs::read_to_string(&def).expect("read") + "# edited\n",
    )
    .expect("edit");
    let out = faultline(h, &["heal", "--cluster", c]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{} changed since the fault was applied",
            std::fs::canonicalize(&def).expect("path").display()
        )),
        "{err}"
    );
    assert!(err.contains("healed #4 partition"), "{err}");
    assert!(err.contains("HEAL FAILED #3 kill toy on n2"), "{err}");
    assert!(err.contains("heal --force"), "{err}");
    let status = faultline(h, &["nemesis", "--cluster", c, "status"]);
    assert!(text(&status.stdout).contains("#3 HEAL FAILED"));
    // A test on the cluster says why it cannot start, and what to do.
    let run_other = || {
        faultline(
            h,
            &[
                "test",
                "--cluster",
                c,
                "--db",
                other.to_str().expect("utf-8 path"),
                "--workload",
                "register",
                "--nemesis",
                "none",
                "--time-limit",
                "5s",
                "--concurrency",
                "2",
                "--store",
                h.join("store").to_str().expect("utf-8 path"),
            ],
        )
    };
    let out = run_other();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(
        err.contains("#3 kill toy on n2: n2: cannot restart toy: its definition file"),
        "{err}"
    );
    assert!(err.contains("with --force it forgets"), "{err}");
    let out = faultline(h, &["heal", "--cluster", c, "--force"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("DROPPED #3 kill toy on n2"), "{err}");
    assert!(err.contains("stays down on n2"), "{err}");
    let status = faultline(h, &["nemesis", "--cluster", c, "status"]);
    assert!(
        text(&status.stdout).contains("no faults applied"),
        "{}",
        text(&status.stdout)
    );
    assert!(!toy_runs(h, c, "n2"));

    // The definition is gone since the kill.
    let out = in_defs(&["db", "start", "--cluster", c, "--db", "toy.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    kill("n1");
    std::fs::remove_file(&def).expect("rm");
    let out = faultline(h, &["heal", "--cluster", c]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is gone since the fault was applied"), "{err}");
    let out = faultline(h, &["heal", "--cluster", c, "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = faultline(h, &["heal", "--cluster", c]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// The report: a definition whose daemon exited, and an unrelated process that got its PID:
/// `nemesis pause` stopped that process and `db stop` killed it.
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd)"
)]
fn a_stale_pid_file_never_pauses_or_kills_another_process() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let h = home.path();
    let name = format!("t-heal-pid-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 1);
    let c = cluster.file.clone();
    let c = c.to_str().expect("utf-8 path");
    let def = toy(h);
    let def = def.to_str().expect("utf-8 path");
    let out = faultline(h, &["db", "start", "--cluster", c, "--db", def]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    // The daemon exits; another process gets its PID (here: the pid file is made to name
    // another process, as PID reuse would).
    let pidfile = "/var/lib/faultline-db/toy/faultline.pid";
    let other = on(
        h,
        c,
        "n1",
        &format!(
            "kill -9 $(cat {pidfile}); setsid sleep 4242 </dev/null >/dev/null 2>&1 & echo $! > {pidfile}; cat {pidfile}"
        ),
    );
    let other = other.trim().to_string();
    assert!(other.parse::<u32>().is_ok(), "{other:?}");
    let state = || {
        on(
            h,
            c,
            "n1",
            &format!("sed 's/.*) //' /proc/{other}/stat | cut -d' ' -f1"),
        )
        .trim()
        .to_string()
    };
    assert_eq!(state(), "S");

    let out = faultline(
        h,
        &[
            "nemesis",
            "--cluster",
            c,
            "pause",
            "--db",
            def,
            "--nodes",
            "n1",
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{err}");
    // Its only node runs no process of it (the stale PID is not believed).
    assert!(err.contains("toy is not running on any node"), "{err}");
    assert_eq!(state(), "S", "the other process was paused");
    let out = faultline(h, &["db", "stop", "--cluster", c, "--db", def]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(state(), "S", "the other process was killed");
    on(h, c, "n1", &format!("kill {other}"));
}

/// Waits until the journal at `path` says a kill of postgres on one of `nodes` is applied
/// (and not yet healed); returns that node. Reads the file itself, to be quick.
fn wait_kill_on(path: &Path, nodes: &[&str], until: Instant) -> Option<String> {
    while Instant::now() < until {
        let lines = parse_journal_lenient(&std::fs::read_to_string(path).unwrap_or_default());
        let event =
            |id: u64, what: JournalEvent| lines.iter().any(|l| l.id == id && l.event == what);
        for l in &lines {
            let Some(Fault::Kill(kill)) = &l.fault else {
                continue;
            };
            if l.event != JournalEvent::Apply
                || !event(l.id, JournalEvent::Applied)
                || event(l.id, JournalEvent::Healed)
            {
                continue;
            }
            if let Some(n) = kill.nodes.iter().find(|n| nodes.contains(&n.as_str())) {
                return Some(n.clone());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The report: `faultline test --db postgres --db-opt replicas=2 --nemesis kill`, the
/// controller killed with SIGKILL while n3's replica was killed: `faultline heal` printed
/// "healed #1 kill postgres on n3" and n3 stayed down, because heal opened postgres with its
/// defaults (no replicas).
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd), PostgreSQL 15"
)]
fn heal_after_a_killed_test_restarts_a_replica_with_the_tests_options() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let h = home.path();
    let name = format!("t-heal-pg-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 3);
    let c = cluster.file.clone();
    let c = c.to_str().expect("utf-8 path");
    let store = h.join("store");
    let mut test = cmd(
        h,
        &[
            "test",
            "--cluster",
            c,
            "--db",
            "postgres",
            "--db-opt",
            "replicas=2",
            "--workload",
            "list-append",
            "--nemesis",
            "kill",
            "--nemesis-interval",
            "2s",
            "--time-limit",
            "120s",
            "--seed",
            "5",
            "--store",
            store.to_str().expect("utf-8 path"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("start the test");
    let journal = h.join(format!("journal/{name}.jsonl"));
    let killed = wait_kill_on(
        &journal,
        &["n2", "n3"],
        Instant::now() + Duration::from_secs(150),
    );
    // SIGKILL: the controller heals nothing.
    let _ = test.kill();
    let _ = test.wait();
    let node = killed.expect("no replica was killed within the run");
    let pg_runs = |n: &str| {
        on(
            h,
            c,
            n,
            "pgrep -x postgres >/dev/null && echo yes || echo no",
        )
        .contains("yes")
    };
    assert!(!pg_runs(&node), "the kill on {node} is applied");
    let out = faultline(h, &["heal", "--cluster", c]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("healed #")
            && l.contains("kill postgres on")
            && l.contains(&node)),
        "{err}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pg_runs(&node) {
        assert!(
            Instant::now() < deadline,
            "heal did not restart postgres on {node}: {err}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The test's database and options are journaled as `faultline db start` journals them.
    let journal = db_journal(h, &name);
    assert!(
        journal
            .iter()
            .any(|l| l["action"] == "start" && l["options"]["replicas"] == "2"),
        "{journal:#?}"
    );
}

/// The report: with another process on PostgreSQL's port, postgres logged "could not bind"
/// but readiness (checked over the Unix socket) passed; every op failed and the run ended
/// after its whole time limit with "no op succeeded".
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd), PostgreSQL 15"
)]
fn a_port_squatter_fails_postgres_setup_naming_it() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let h = home.path();
    let name = format!("t-heal-squat-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 1);
    let c = cluster.file.clone();
    let c = c.to_str().expect("utf-8 path");
    // Listens on PostgreSQL's port on every IPv4 address, and never answers.
    let squatter = on(
        h,
        c,
        "n1",
        &format!(
            "setsid python3 -c {} </dev/null >/dev/null 2>&1 & echo $!; sleep 1",
            clusters::quote(
                "import socket, time\n\
                 s = socket.socket()\n\
                 s.bind(('0.0.0.0', 55432))\n\
                 s.listen(64)\n\
                 time.sleep(600)\n"
            )
        ),
    );
    let store = h.join("store");
    let started = Instant::now();
    let out = faultline(
        h,
        &[
            "test",
            "--cluster",
            c,
            "--db",
            "postgres",
            "--workload",
            "list-append",
            "--time-limit",
            "60s",
            "--store",
            store.to_str().expect("utf-8 path"),
        ],
    );
    let took = started.elapsed();
    on(h, c, "n1", &format!("kill {}", squatter.trim()));
    let err = text(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(254 | 255)),
        "{:?}: {err}",
        out.status
    );
    assert!(err.contains("could not bind"), "{err}");
    assert!(err.contains("could not listen on port 55432"), "{err}");
    assert!(!err.contains("no op succeeded"), "the workload ran: {err}");
    assert!(took < Duration::from_secs(45), "took {took:?}");
    // Without the squatter, PostgreSQL is ready; `db status`, with a password of its own,
    // still finds it answering over TCP.
    let out = faultline(h, &["db", "wipe", "--cluster", c, "--db", "postgres"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = faultline(h, &["db", "start", "--cluster", c, "--db", "postgres"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = faultline(h, &["db", "status", "--cluster", c, "--db", "postgres"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("answering"));
    let out = faultline(h, &["db", "stop", "--cluster", c, "--db", "postgres"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}
