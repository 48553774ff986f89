//! What the harness's end-to-end tests share: running the `faultline` binary with its own
//! `FAULTLINE_HOME`, finding the latest run in a store, bringing temporary local clusters up
//! and down, reading what a run wrote through its own types (results.json, test.yaml,
//! nemesis.jsonl, history.jsonl), and the checks the SQL databases' tests share. Each test
//! binary uses a part.
#![allow(dead_code)]

pub mod http;

use checkers::check::{check, Checked, Checker, Details, ResultsHead};
use checkers::history::{Event, EventKind};
use checkers::read::{open, Format};
use checkers::txn::{Anomaly, Consistency, TxnModel};
use harness::plan::TestPlan;
use harness::power::Power;
use nemesis::journal::Event as JournalEvent;
use nemesis::{JournalEntry, Kind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `faultline` binary under test.
pub const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline");

/// `faultline ARGS` with `FAULTLINE_HOME` set to `home`, not yet run.
pub fn cmd(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(FAULTLINE);
    c.args(args).env("FAULTLINE_HOME", home);
    c
}

/// Runs `faultline ARGS` with `FAULTLINE_HOME` set to `home`; echoes the command and its output
/// to the test's stderr, which the test harness shows when the test fails.
pub fn faultline(home: &Path, args: &[&str]) -> Output {
    run_echoed(cmd(home, args), args)
}

/// Runs a `faultline` command made by [`cmd`] (with more arguments, variables or a working
/// directory of its own), echoing it like [`faultline`]; `args` are shown.
pub fn run_echoed(mut c: Command, args: &[&str]) -> Output {
    let out = c.output().expect("run faultline");
    eprintln!(
        "$ faultline {}\n{}{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Runs `faultline ARGS` as a user would for a command that keeps no state (`check`), with
/// the environment of the test; echoed like [`faultline`].
pub fn faultline_stateless(args: &[&str]) -> Output {
    run_echoed(cmd_stateless(args), args)
}

/// `faultline ARGS` for a command that keeps no state, not yet run.
pub fn cmd_stateless(args: &[&str]) -> Command {
    let mut c = Command::new(FAULTLINE);
    c.args(args);
    c
}

/// [`faultline`] with `--store HOME/store` after `args`, for the commands that keep runs
/// (`test`, `analyze`, ...): [`latest`] finds their runs.
pub fn faultline_stored(home: &Path, args: &[&str]) -> Output {
    let store = store(home);
    let store = store.to_str().expect("a UTF-8 store path");
    let mut all = args.to_vec();
    all.extend_from_slice(&["--store", store]);
    faultline(home, &all)
}

/// The store [`faultline_stored`] uses under `home`.
pub fn store(home: &Path) -> PathBuf {
    home.join("store")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The latest run in the store under `home` (`store/latest`, resolved).
pub fn latest(home: &Path) -> PathBuf {
    latest_in(&store(home))
}

/// The latest run in `store` (`latest`, resolved).
pub fn latest_in(store: &Path) -> PathBuf {
    let latest = store.join("latest");
    std::fs::canonicalize(&latest).unwrap_or_else(|e| panic!("{}: {e}", latest.display()))
}

/// A file's text; panics naming the file when it cannot be read.
pub fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Brings up local cluster `name` of `n` nodes under `home` (taking down one left by an
/// earlier run first) and returns its cluster file.
pub fn up(home: &Path, name: &str, n: usize) -> PathBuf {
    down(home, name);
    let out = faultline(
        home,
        &["cluster", "up", "--local", &n.to_string(), "--name", name],
    );
    assert!(out.status.success(), "up: {}", text(&out.stderr));
    PathBuf::from(text(&out.stdout).trim())
}

/// Takes down local cluster `name` under `home`, if it is up.
pub fn down(home: &Path, name: &str) {
    let _ = faultline(home, &["cluster", "down", "--name", name]);
}

/// A local cluster that is taken down however the test ends (a panic included).
pub struct Cluster {
    home: PathBuf,
    name: String,
    /// Its cluster file.
    pub file: PathBuf,
}

impl Cluster {
    /// Brings up local cluster `name` of `n` nodes under `home` (see [`up`]).
    pub fn up(home: &Path, name: &str, n: usize) -> Cluster {
        let file = up(home, name, n);
        Cluster {
            home: home.to_path_buf(),
            name: name.to_string(),
            file,
        }
    }

    /// Its cluster file as an argument.
    pub fn arg(&self) -> &str {
        self.file.to_str().expect("a UTF-8 cluster file path")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        down(&self.home, &self.name);
    }
}

/// A run's results.json: the checker's document (its head typed, the rest as the checker
/// wrote it) and the run's power.
#[derive(Debug, serde::Deserialize)]
pub struct RunResults {
    /// Checker, verdict and summary.
    #[serde(flatten)]
    pub head: ResultsHead,
    /// What the run could have found (absent in results of `faultline check`).
    #[serde(default)]
    pub power: Option<Power>,
    /// The checker's own fields (`consistency`, `anomalies`, ...).
    #[serde(flatten)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl RunResults {
    /// The checker's name.
    pub fn checker(&self) -> &str {
        self.head.checker.as_deref().unwrap_or_default()
    }

    /// The consistency model a transactional document was checked against.
    pub fn consistency(&self) -> Option<Consistency> {
        let c = self.details.get("consistency")?.as_str()?;
        Some(
            c.parse()
                .unwrap_or_else(|e| panic!("consistency {c:?}: {e:?}")),
        )
    }

    /// The anomaly types of a transactional document.
    pub fn anomaly_types(&self) -> Vec<String> {
        self.details
            .get("anomalies")
            .and_then(|a| a.as_object())
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// A results document printed by `--json`, typed.
pub fn results_doc(json: &[u8]) -> RunResults {
    serde_json::from_slice(json).unwrap_or_else(|e| panic!("{e}: {}", text(json)))
}

/// The run's results.json, typed.
pub fn results(dir: &Path) -> RunResults {
    let path = dir.join("results.json");
    serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The run's test.yaml, typed.
pub fn plan(dir: &Path) -> TestPlan {
    let path = dir.join("test.yaml");
    serde_yaml_ng::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fault journal (a run's nemesis.jsonl, or `$FAULTLINE_HOME/journal/NAME.jsonl`), typed.
pub fn journal_at(path: &Path) -> Vec<JournalEntry> {
    read(path)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

/// The run's fault journal (nemesis.jsonl), typed.
pub fn journal(dir: &Path) -> Vec<JournalEntry> {
    journal_at(&dir.join("nemesis.jsonl"))
}

/// The faults of `kind` that a journal shows applied on every node: an `apply` line of that
/// kind and an `applied` line of the same id.
pub fn applied(journal: &[JournalEntry], kind: Kind) -> usize {
    journal
        .iter()
        .filter(|e| e.event == JournalEvent::Apply)
        .filter(|e| e.fault.as_ref().map(|f| f.kind()) == Some(kind))
        .filter(|a| {
            journal
                .iter()
                .any(|e| e.id == a.id && e.event == JournalEvent::Applied)
        })
        .count()
}

/// The faults of `kind` that a journal shows attempted (an `apply` line).
pub fn attempted(journal: &[JournalEntry], kind: Kind) -> usize {
    journal
        .iter()
        .filter(|e| e.event == JournalEvent::Apply)
        .filter(|e| e.fault.as_ref().map(|f| f.kind()) == Some(kind))
        .count()
}

/// Whether any fault of a journal failed to apply on some node.
pub fn any_apply_failed(journal: &[JournalEntry]) -> bool {
    journal.iter().any(|e| e.event == JournalEvent::ApplyFailed)
}

/// The run's history.jsonl, typed.
pub fn history(dir: &Path) -> Vec<Event> {
    let path = dir.join("history.jsonl");
    open(&path, Format::Jsonl)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|l| {
            l.unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .event
        })
        .collect()
}

/// The events of a history that completed as `kind` (nemesis events included).
pub fn count_kind(history: &[Event], kind: EventKind) -> usize {
    history.iter().filter(|e| e.kind == kind).count()
}

/// Checks the run's list-append history as a transactional one against `consistency`.
pub fn check_as(dir: &Path, consistency: Consistency) -> Checked {
    check_model_as(dir, TxnModel::ListAppend, consistency)
}

/// A run's transactional history of `model`, checked again against `consistency`.
pub fn check_model_as(dir: &Path, model: TxnModel, consistency: Consistency) -> Checked {
    let history = dir.join("history.jsonl");
    let reader = open(&history, Format::Jsonl).expect("history.jsonl");
    check(
        &Checker::transactional(model, consistency),
        reader,
        "history.jsonl",
        &mut |_| {},
    )
    .expect("a readable transactional history")
}

/// The anomalies, by type, of a transactional check.
pub fn anomalies(c: &Checked) -> &BTreeMap<String, Vec<Anomaly>> {
    match &c.results.details {
        Details::Transactional(r) => &r.anomalies,
        _ => panic!("not a transactional result: {}", c.summary()),
    }
}

/// The anomaly types of a transactional check.
pub fn anomaly_types(c: &Checked) -> Vec<String> {
    anomalies(c).keys().cloned().collect()
}

/// What the SQL databases' server logs say when they start, are ready and recover.
pub struct ServerLog {
    /// The log's name in a node's directory of the run (`postgres.log`).
    pub file: &'static str,
    /// The line a server writes when it accepts connections.
    pub ready: &'static str,
    /// The line a server writes when it recovers after a crash.
    pub recovery: &'static str,
}

/// PostgreSQL's log.
pub const POSTGRES_LOG: ServerLog = ServerLog {
    file: "postgres.log",
    ready: "database system is ready to accept connections",
    recovery: "automatic recovery in progress",
};

/// MariaDB's log (Galera's too).
pub const MARIADB_LOG: ServerLog = ServerLog {
    file: "mariadb.log",
    ready: "ready for connections",
    recovery: "Starting crash recovery",
};

/// The faults were real and the database came back after each kill: the journal shows
/// applied kills (an `apply` and an `applied` line) and no fault that failed to apply, and
/// n1's server log more starts than kills were attempted, a recovery and a second ready.
pub fn assert_faults_and_recoveries(dir: &Path, server: &ServerLog) {
    let journal = journal(dir);
    let kills = applied(&journal, Kind::Kill);
    let raw = || read(dir.join("nemesis.jsonl"));
    assert!(kills >= 1, "no kill was applied:\n{}", raw());
    assert!(!any_apply_failed(&journal), "{}", raw());
    // Every kill attempted, applied or not, may have stopped the server.
    let kills = attempted(&journal, Kind::Kill);
    let log = read(dir.join("nodes/n1").join(server.file));
    let starts = log.matches("== start").count();
    let ready = log.matches(server.ready).count();
    let recoveries = log.matches(server.recovery).count();
    assert!(starts > kills, "{starts} starts for {kills} kills");
    assert!(
        recoveries >= 1 && ready >= 2,
        "{recoveries} recoveries, {ready} times ready"
    );
}

/// Transactions committed (more than 200 `ok`) and nothing is guessed: every `info` of a
/// transaction happened at or after COMMIT, or timed out in the harness. Returns the history.
pub fn assert_history_is_busy(dir: &Path) -> Vec<Event> {
    let history = history(dir);
    let ok = count_kind(&history, EventKind::Ok);
    assert!(ok > 200, "only {ok} transactions committed");
    for e in history
        .iter()
        .filter(|e| e.f == "txn" && e.kind == EventKind::Info)
    {
        let error = e.error.as_deref().unwrap_or_default();
        assert!(
            error.contains("during COMMIT") || error.contains("no answer within"),
            "{e:?}"
        );
    }
    history
}

/// The transactions of a history that failed with an error starting with `prefix`
/// (`40001: could not serialize access`, `1020:`), and those that ended any way with one.
pub fn errors_starting(history: &[Event], prefix: &str) -> (usize, usize) {
    let with = |e: &&Event| e.error.as_deref().is_some_and(|x| x.starts_with(prefix));
    let all = history.iter().filter(with).count();
    let failed = history
        .iter()
        .filter(with)
        .filter(|e| e.kind == EventKind::Fail)
        .count();
    (failed, all)
}

/// No acknowledged append is lost (see [`assert_no_acknowledged_append_lost`]) in the run's
/// history. Returns how many (append, later read) pairs were checked, and how many spanned a
/// kill.
pub fn assert_no_acknowledged_append_lost_in(dir: &Path) -> (usize, usize) {
    assert_no_acknowledged_append_lost(&read(dir.join("history.jsonl")))
}

/// Holds a list-append history to "no acknowledged append is lost": every `ok` read of a key
/// holds every element whose append was acknowledged before the read was invoked (kills
/// included). Returns how many (append, later read) pairs were checked, and how many of them
/// spanned a kill (a `start-kill` between the acknowledgement and the read's invoke).
pub fn assert_no_acknowledged_append_lost(history: &str) -> (usize, usize) {
    let a = acknowledged_appends(history, "start-kill");
    assert!(
        a.lost.is_empty(),
        "{} acknowledged appends lost, the first: {}",
        a.lost.len(),
        a.lost
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    (a.checked, a.spanning)
}

/// What [`acknowledged_appends`] found.
#[derive(Debug, Default)]
pub struct AppendsRead {
    /// (append, later read) pairs checked.
    pub checked: usize,
    /// Those with a `fault` event between the acknowledgement and the read's invoke.
    pub spanning: usize,
    /// Each acknowledged element missing from a later read, said in a line.
    pub lost: Vec<String>,
}

/// Every `ok` read of a key of a list-append history against the elements whose appends
/// were acknowledged before the read was invoked; `fault` is the nemesis event
/// (`start-kill`, `start-power`) whose spans are counted.
pub fn acknowledged_appends(history: &str, fault: &str) -> AppendsRead {
    use std::collections::HashMap;
    // Per key: (element, history position of its acknowledgement).
    let mut acked: HashMap<String, Vec<(i64, usize)>> = HashMap::new();
    let mut invoked_at: HashMap<u64, usize> = HashMap::new();
    let mut faults: Vec<usize> = Vec::new();
    let mut found = AppendsRead::default();
    for (pos, line) in history.lines().enumerate() {
        let e: serde_json::Value = serde_json::from_str(line).expect("a history line");
        if e["process"] == "nemesis" {
            if e["f"] == fault {
                faults.push(pos);
            }
            continue;
        }
        let Some(process) = e["process"].as_u64() else {
            continue;
        };
        match e["type"].as_str() {
            Some("invoke") => {
                invoked_at.insert(process, pos);
            }
            Some("ok") => {
                let start = invoked_at[&process];
                for m in e["value"].as_array().expect("micro-ops") {
                    let key = m[1].to_string();
                    match m[0].as_str() {
                        Some("append") => acked
                            .entry(key)
                            .or_default()
                            .push((m[2].as_i64().expect("element"), pos)),
                        Some("r") => {
                            let seen: Vec<i64> = m[2]
                                .as_array()
                                .map(|l| l.iter().filter_map(|x| x.as_i64()).collect())
                                .unwrap_or_default();
                            for (x, at) in acked.get(&key).into_iter().flatten() {
                                if *at < start {
                                    found.checked += 1;
                                    if !seen.contains(x) {
                                        found.lost.push(format!(
                                            "element {x} of key {key}, acknowledged at line {}, is missing from the read at line {}: {seen:?}",
                                            at + 1,
                                            pos + 1
                                        ));
                                    }
                                    if faults.iter().any(|k| at < k && *k < start) {
                                        found.spanning += 1;
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// Runs `cmd` to completion with its stdout and stderr captured, and returns its output with
/// its peak resident set size in KiB (the kernel's `ru_maxrss` of that child alone, from
/// `wait4`).
// The child is reaped by wait4 (which std's wait cannot report rusage from).
#[allow(clippy::zombie_processes)]
pub fn run_measured(mut cmd: Command) -> (Output, u64) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (mut out, mut err) = (
        child.stdout.take().expect("stdout"),
        child.stderr.take().expect("stderr"),
    );
    // Drain both pipes while the child runs, so that it never blocks on a full one.
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut stdout = Vec::new();
    let _ = out.read_to_end(&mut stdout);
    let stderr = err_reader.join().expect("stderr reader");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of that plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child's pid, with valid pointers to locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    (
        Output {
            status: std::process::ExitStatus::from_raw(status),
            stdout,
            stderr,
        },
        usage.ru_maxrss as u64,
    )
}

/// A database option as the run's test.yaml records it.
pub fn db_option<'a>(plan: &'a TestPlan, key: &str) -> Option<&'a str> {
    plan.db_options.get(key).map(String::as_str)
}

/// The events of a journal that are `event`.
pub fn count_event(journal: &[JournalEntry], event: JournalEvent) -> usize {
    journal.iter().filter(|e| e.event == event).count()
}

/// Whether any fault journal in `dir` (`$FAULTLINE_HOME/journal`) shows a fault applied on
/// every node, while a run may still be writing them (a line being written is skipped).
pub fn any_journal_shows_applied(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| serde_json::from_str::<JournalEntry>(l).ok())
                .collect::<Vec<_>>()
        })
        .any(|e| e.event == JournalEvent::Applied)
}

/// The nemesis events of a history (`process: "nemesis"`).
pub fn nemesis_events(history: &[Event]) -> Vec<&Event> {
    history
        .iter()
        .filter(|e| e.process == checkers::history::Process::nemesis())
        .collect()
}

/// The ops of a history that completed `ok` with function `f` (`read`, `cas`, ...).
pub fn count_ok(history: &[Event], f: &str) -> usize {
    history
        .iter()
        .filter(|e| e.kind == EventKind::Ok && e.f == f)
        .count()
}

/// Whether a history has an event with function `f` (`start-kill`, ...).
pub fn has_f(history: &[Event], f: &str) -> bool {
    history.iter().any(|e| e.f == f)
}

/// The database journal of local cluster `name` (`$FAULTLINE_HOME/journal/NAME.db.jsonl`),
/// one JSON object a line (its record type belongs to the `db` command).
pub fn db_journal(home: &Path, name: &str) -> Vec<serde_json::Value> {
    let path = home.join(format!("journal/{name}.db.jsonl"));
    read(&path)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

/// The journal entries in `text` that parse (a line being written, or damaged, is skipped).
pub fn parse_journal_lenient(text: &str) -> Vec<JournalEntry> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `faultline exec` of `script` on `node` of `cluster`; its output without the node's header.
pub fn on_node(home: &Path, cluster: &str, node: &str, script: &str) -> String {
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

/// Waits until the journal at `path` shows a fault that `wanted` accepts applied and not
/// healed; false if `until` passes first.
pub fn wait_applied(
    path: &Path,
    until: std::time::Instant,
    wanted: impl Fn(&nemesis::Fault) -> bool,
) -> bool {
    while std::time::Instant::now() < until {
        let lines = parse_journal_lenient(&std::fs::read_to_string(path).unwrap_or_default());
        let event =
            |id: u64, what: JournalEvent| lines.iter().any(|l| l.id == id && l.event == what);
        if lines.iter().any(|l| {
            l.fault.as_ref().is_some_and(&wanted)
                && l.event == JournalEvent::Apply
                && event(l.id, JournalEvent::Applied)
                && !event(l.id, JournalEvent::Healed)
        }) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// Whether faultline's lazy filesystem is mounted anywhere on `node`.
pub fn lazyfs_mounted(home: &Path, cluster: &str, node: &str) -> bool {
    on_node(
        home,
        cluster,
        node,
        "findmnt -rn -o SOURCE | grep -c '^faultline-lazyfs$' || true",
    )
    .trim()
        != "0"
}

/// Whether a process named exactly `name` runs on `node`.
pub fn process_runs(home: &Path, cluster: &str, node: &str, name: &str) -> bool {
    let script = format!("pgrep -x {name} >/dev/null && echo yes || echo no");
    on_node(home, cluster, node, &script) == "yes"
}

/// Starts `faultline test ARGS` on the cluster called `cluster_name`, waits (up to 150 s) until
/// its journal shows a fault that `wanted` accepts applied and not healed, then kills the
/// controller with SIGKILL, so that it heals and unmounts nothing; whether such a fault was
/// applied.
pub fn kill_test_mid_fault(
    home: &Path,
    cluster_name: &str,
    args: &[&str],
    wanted: impl Fn(&nemesis::Fault) -> bool,
) -> bool {
    let mut test = cmd(home, args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the test");
    let journal = home.join(format!("journal/{cluster_name}.jsonl"));
    let until = std::time::Instant::now() + std::time::Duration::from_secs(150);
    let applied = wait_applied(&journal, until, wanted);
    let _ = test.kill();
    let _ = test.wait();
    applied
}
