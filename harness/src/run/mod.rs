//! One run of `faultline test`, as phases that take the typed [`TestPlan`]:
//!
//! 1. the cluster ([`cluster::Provisioned`]: a file, or a temporary local cluster removed on
//!    drop);
//! 2. connect (every node answers, or nothing is changed);
//! 3. the database ([`database::DbSession`]: set up; stopped and its logs collected on drop);
//! 4. the nemesis ([`faults::nemesis`], with a heal-on-drop guard);
//! 5. the workload, with the fault schedule and progress in threads of their own;
//! 6. heal every fault;
//! 7. the workload's final ops, through the same scheduler and recorder (each worker goes on
//!    with its own process numbers);
//! 8. stop the database and collect its logs;
//! 9. check (the workload's checker, through `checkers::check`), then the report.

pub mod cluster;
pub mod database;
pub mod faults;
pub mod progress;

use crate::checking::{check_file, exit_of, print_human, write_outputs};
use crate::exit::{bad_input, internal, Exit, Failure};
use crate::plan::{PlanFile, Resolved, TestPlan};
use crate::recorder::Recorder;
use crate::report::Status;
use crate::session::journal::{self, DbEvent};
use crate::session::open;
use anyhow::anyhow;
use checkers::check::{Checked, Checker};

use crate::power::Power;
use checkers::read::Format;
use clusters::{Cluster, ClusterFile, RemoteCommand};
use database::DbSession;
use nemesis::schedule::Schedule;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workloads::gen::{Gen, ReadBack, Source, Stagger, TimeLimit, UntilOk};
use workloads::workload::WorkloadOptions;
use workloads::{Registry, Workload};

/// Lines for people, logged at info level: on stderr and in the run's faultline.log.
pub struct RunLog;

impl RunLog {
    /// Logs one line.
    pub fn say(&self, msg: &str) {
        tracing::info!("{msg}");
    }
}

/// How long the database may take to be whole again once every fault is healed
/// ([`workloads::Database::recovered`]).
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

/// How long final ops are retried before the run gives up on them.
const FINAL_OPS_DEADLINE: Duration = Duration::from_secs(60);

/// Runs the `resolved` plan on `cluster` (already provisioned), storing the run under
/// `store`; `registry` is for healing faults an earlier run left (their databases are
/// journaled by name). `replay` is the run replayed, if any, whose schedule is compared with
/// this one's.
pub fn run_plan(
    mut resolved: Resolved,
    registry: &Registry,
    cluster: &ClusterFile,
    store: &Path,
    replay: Option<&Path>,
) -> Result<Exit, Failure> {
    let plan = &mut resolved.plan;
    let dir = crate::store::create_run(store, &plan.name).map_err(internal)?;
    if let Err(e) = crate::logging::to_file(&dir.join("faultline.log")) {
        tracing::warn!("cannot write {}: {e}", dir.join("faultline.log").display());
    }
    let log = RunLog;
    log.say(&format!(
        "test {}: {} on {} ({} nodes), workload {}, nemesis {}, seed {}; store {}",
        plan.name,
        plan.db,
        cluster.name,
        cluster.nodes.len(),
        plan.workload,
        plan.nemesis,
        plan.seed,
        dir.display()
    ));
    if let Some(run) = replay {
        match PlanFile::load(&run.join("test.yaml")).map(|f| f.schedule().cloned()) {
            Ok(Some(s)) if s == plan.schedule => log.say("the fault schedule is the stored run's"),
            Ok(Some(_)) => log.say(
                "WARNING: the fault schedule differs from the stored run's (another faultline version?)",
            ),
            _ => log.say("WARNING: the stored run has no readable schedule"),
        }
    }
    plan.write(&dir).map_err(internal)?;
    if let Some(def) = &resolved.definition {
        // The definition as it ran, beside test.yaml (which has its path and SHA-256).
        if let Err(e) = std::fs::copy(def, dir.join("definition.yaml")) {
            log.say(&format!("could not keep a copy of {}: {e}", def.display()));
        }
    }
    let cluster = Cluster::new(cluster.clone(), 4);
    let outcome = phases(&resolved, registry, &cluster, &dir, &log);
    write_report(&dir, &resolved.plan.name, &outcome, &log);
    index_run(store, &dir, &log);
    log.say(&format!("store: {}", dir.display()));
    crate::logging::close_file();
    outcome.map(|c| exit_with_power(&c))
}

/// Records the finished run in the store's index ([`crate::index`]); a failure is logged,
/// never the run's: `faultline index rebuild` makes the index again from the store.
pub fn index_run(store: &Path, dir: &Path, log: &RunLog) {
    if let Err(e) = crate::index::record_run(store, dir) {
        log.say(&format!(
            "WARNING: the store's index was not updated ({e:#}); `faultline index rebuild --store {}` makes it again",
            store.display()
        ));
    }
}

/// The exit code of a checked run: the verdict's, but [`Exit::Weak`] for a valid run whose
/// test power is weak.
fn exit_with_power(c: &CheckedRun) -> Exit {
    match exit_of(c.checked.verdict) {
        Exit::Valid if c.power.as_ref().is_some_and(|p| !p.weak.is_empty()) => Exit::Weak,
        e => e,
    }
}

/// A checked run: the checker's verdict and what the run exercised.
pub struct CheckedRun {
    /// The verdict and report.
    pub checked: Checked,
    /// Test power, when the run's plan could be read.
    pub power: Option<Power>,
}

/// results.json of a run: the checker's document with the run's test power beside it.
#[derive(serde::Serialize)]
struct RunResults<'a> {
    #[serde(flatten)]
    results: &'a checkers::check::Results,
    #[serde(skip_serializing_if = "Option::is_none")]
    power: Option<&'a Power>,
}

/// Journals in the cluster's database journal that the run starts its database (see
/// [`journal::record_run_start`]); a failure to write it is logged.
fn journal_db_start(
    cluster: &Cluster,
    plan: &TestPlan,
    event: DbEvent,
    error: Option<&str>,
    log: &RunLog,
) {
    if let Err(e) =
        journal::record_run_start(cluster.file(), event, &plan.db, &plan.db_options, error)
    {
        log.say(&format!(
            "WARNING: cannot journal the database's options: {e}"
        ));
    }
}

/// Connect, database, nemesis, workload, heal, final ops, logs, check.
fn phases(
    resolved: &Resolved,
    registry: &Registry,
    cluster: &Cluster,
    dir: &Path,
    log: &RunLog,
) -> Result<CheckedRun, Failure> {
    let plan = &resolved.plan;
    connect(cluster, log)?;
    let db = resolved.db.open(cluster).map_err(open::db_failure)?;
    // Journaled with each kill, so that heal after a crash restarts it as it ran.
    let source = nemesis::process::DbSource {
        db: plan.db.clone(),
        options: plan.db_options.clone(),
    };
    // Power and disk faults need the data directory on faultline's lazy filesystem (a
    // database that does not say where its data is runs without it, and those faults are
    // refused).
    let lazyfs = if plan.schedule.kinds.iter().any(|k| k.on_lazyfs()) {
        crate::session::lifecycle::Lazyfs::for_db(cluster, db.as_ref(), source.clone(), plan.seed)
            .map_err(|e| internal(anyhow!("{e}")))?
    } else {
        None
    };
    let nem = faults::nemesis(
        cluster,
        registry,
        db.clone(),
        source,
        &plan.schedule,
        dir,
        log,
    )?;
    let heal_guard = nem.heal_on_drop();
    // The database and its options, journaled as `faultline db start` journals them.
    journal_db_start(cluster, plan, DbEvent::Begin, None, log);
    let session = DbSession::start(cluster, db, lazyfs, dir, log).map_err(|e| {
        log.say(&format!("the database could not be set up: {e}"));
        journal_db_start(cluster, plan, DbEvent::Done, Some(&e), log);
        internal(anyhow!("{e}"))
    })?;
    journal_db_start(cluster, plan, DbEvent::Done, None, log);

    let recorder = Recorder::create(&dir.join("history.jsonl"), Instant::now())
        .map_err(|e| internal(anyhow!("history.jsonl: {e}")))?;
    let stop = stop_on_ctrl_c();
    let mut clients = make_clients(plan, cluster, session.db().as_ref(), dir)?;
    start_first_client(&clients, log)?;
    let ops = OpSchedule::new(plan, resolved.workload.as_ref(), &recorder);
    log.say(&format!(
        "running {} for {} ({} workers, {} ops/s)",
        plan.workload,
        humantime::format_duration(plan.time_limit),
        plan.concurrency,
        plan.rate
    ));
    let ran = run_workload(plan, &nem, &clients, &ops.generator, &recorder, &stop, log);

    heal_all(heal_guard, &recorder, log);
    say_recovered(session.db().as_ref(), cluster, log);
    if let Ok(processes) = &ran {
        let finals = ops.finals(resolved.workload.as_ref());
        run_final_ops(
            finals,
            std::mem::take(&mut clients),
            processes,
            plan,
            &recorder,
            log,
        );
    }
    // The clients go before the database: an adapter's whole process group is killed.
    drop(clients);
    session.finish();
    if let Err(e) = ran {
        return Err(internal(anyhow!("the workload stopped: {e}")));
    }
    let c = recorder.counts();
    log.say(&format!(
        "ops: {} ok, {} fail, {} info",
        c.ok, c.fail, c.info
    ));
    if c.ok == 0 {
        log.say("no op succeeded: the database did not serve the workload");
        return Err(internal(anyhow!(
            "no op succeeded ({} fail, {} info): see {}",
            c.fail,
            c.info,
            dir.join("history.jsonl").display()
        )));
    }
    let power = measure_power(dir, plan.concurrency as u64, &plan.schedule, log);
    check_run(
        resolved
            .workload
            .checker()
            .with_consistency(plan.consistency),
        dir,
        None,
        power,
        log,
    )
}

/// A flag that Ctrl-C sets: the workload stops, and the run heals and collects as usual.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(interrupted()));
    RUNS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(&stop));
    stop
}

/// Set once Ctrl-C was pressed.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The stop flags of the runs of this process (each run also sets its own when its
/// workload ends), which Ctrl-C sets.
static RUNS: Mutex<Vec<std::sync::Weak<AtomicBool>>> = Mutex::new(Vec::new());

/// Whether Ctrl-C was pressed. The first call installs the one handler of the process
/// (ctrlc refuses a second), which stops every run going on: a `--test-count` loop or a
/// campaign starts no further run once it was pressed.
pub fn interrupted() -> bool {
    static HANDLER: std::sync::Once = std::sync::Once::new();
    HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!("interrupted again: still healing, please wait");
            } else {
                eprintln!("interrupted: stopping the workload, healing and collecting logs");
            }
            let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
            runs.retain(|r| r.strong_count() > 0);
            for run in runs.iter().filter_map(std::sync::Weak::upgrade) {
                run.store(true, Ordering::SeqCst);
            }
        });
    });
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A worker's node and its client there.
type NodeClient = (String, Arc<dyn workloads::Client>);

/// One client per worker, each bound to a node, round robin.
fn make_clients(
    plan: &TestPlan,
    cluster: &Cluster,
    db: &dyn workloads::Database,
    dir: &Path,
) -> Result<Vec<NodeClient>, Failure> {
    let nodes = cluster.nodes();
    (0..plan.concurrency)
        .map(|w| {
            let node = nodes[w % nodes.len()].clone();
            let ctx = workloads::db::ClientContext {
                worker: w,
                run_dir: Some(dir.to_path_buf()),
                workload: plan.workload.clone(),
                ops_per_key: plan.ops_per_key,
            };
            let client = db.client(&node, plan.op_timeout, &ctx).map_err(internal)?;
            Ok((node, client))
        })
        .collect()
}

/// The op schedule of a run: the workload's ops, staggered to `--rate` over all workers,
/// for `--time-limit`, deterministic from the seed and the outcomes (see
/// [`workloads::gen`]). After every heal, a keyed workload first reads back every key it
/// wrote (outside the rate): what a fault lost shows up while the run goes on.
struct OpSchedule {
    generator: Mutex<Box<dyn Gen>>,
    /// The keys written so far, for a keyed workload (read again at the end).
    written: Option<workloads::gen::WrittenKeys>,
}

impl OpSchedule {
    fn new(plan: &TestPlan, workload: &dyn Workload, recorder: &Recorder) -> OpSchedule {
        let options = WorkloadOptions {
            ops_per_key: plan.ops_per_key,
        };
        let staggered = Stagger::new(
            Duration::from_secs_f64(1.0 / plan.rate),
            plan.seed,
            Source::new(workload.ops(plan.seed, &options)),
        );
        let (inner, written): (Box<dyn Gen>, _) = match workload.read_back() {
            Some(read) => {
                let g = ReadBack::new(staggered, read, recorder.heals());
                let written = g.written();
                (Box::new(g), Some(written))
            }
            None => (Box::new(staggered), None),
        };
        OpSchedule {
            generator: Mutex::new(Box::new(TimeLimit::new(plan.time_limit, inner))),
            written,
        }
    }

    /// The final ops: the workload's own, then a read of every key it wrote.
    fn finals(&self, workload: &dyn Workload) -> Vec<workloads::Op> {
        let mut finals = workload.final_ops();
        if let (Some(read), Some(written)) = (workload.read_back(), &self.written) {
            let keys = written.lock().unwrap_or_else(|e| e.into_inner());
            finals.extend(keys.iter().map(read));
        }
        finals
    }
}

/// The workload, with the fault schedule and progress in threads of their own; returns the
/// workers' process numbers when it ends.
fn run_workload(
    plan: &TestPlan,
    nem: &nemesis::Nemesis<'_>,
    clients: &[NodeClient],
    generator: &Mutex<Box<dyn Gen>>,
    recorder: &Recorder,
    stop: &AtomicBool,
    log: &RunLog,
) -> anyhow::Result<Vec<u64>> {
    let active: Mutex<Option<String>> = Mutex::new(None);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            faults::run_schedule(
                nem,
                &plan.schedule,
                plan.time_limit,
                recorder,
                start,
                stop,
                &active,
                log,
            )
        });
        s.spawn(|| progress::show(recorder, start, plan.time_limit, stop, &active, log));
        let r = crate::scheduler::run(crate::scheduler::Workers {
            clients: clients.to_vec(),
            processes: crate::scheduler::first_processes(plan.concurrency),
            generator,
            recorder,
            start,
            op_timeout: plan.op_timeout,
            stop,
        });
        stop.store(true, Ordering::SeqCst);
        r
    })
}

/// Heals every fault, saying what was healed or what failed.
fn heal_all(heal_guard: nemesis::HealGuard<'_, '_>, recorder: &Recorder, log: &RunLog) {
    match heal_guard.heal_now() {
        Ok(r) if r.is_clean() => {
            if !r.healed.is_empty() {
                let _ = recorder.nemesis(
                    &nemesis::event::NemesisEvent::HealAll,
                    checkers::history::Value::Null,
                    None,
                );
            }
            log.say(&format!("healed {} fault(s)", r.healed.len()));
        }
        Ok(r) => log.say(&format!(
            "HEAL FAILED on some nodes: {:?}; run `faultline heal --cluster FILE`",
            r.failed
        )),
        Err(e) => log.say(&format!(
            "HEAL FAILED: {e}; run `faultline heal --cluster FILE`"
        )),
    }
}

/// Says whether the database is whole again (Galera: every node Synced in one Primary
/// component).
fn say_recovered(db: &dyn workloads::Database, cluster: &Cluster, log: &RunLog) {
    match db.recovered(cluster, RECOVERY_DEADLINE) {
        Ok(Some(what)) => log.say(&format!("{} recovered: {what}", db.name())),
        Ok(None) => {}
        Err(e) => log.say(&format!(
            "{} DID NOT RECOVER after the faults were healed: {e}",
            db.name()
        )),
    }
}

/// The final ops, through the same scheduler and recorder, each worker going on with its
/// own process numbers: each op is given to one worker at a time, the next retrying a
/// second later until it succeeds or [`FINAL_OPS_DEADLINE`] passed.
fn run_final_ops(
    finals: Vec<workloads::Op>,
    clients: Vec<NodeClient>,
    processes: &[u64],
    plan: &TestPlan,
    recorder: &Recorder,
    log: &RunLog,
) {
    if finals.is_empty() {
        return;
    }
    log.say(&format!("final ops: {}", summarize_ops(&finals)));
    let generator: Mutex<Box<dyn Gen>> = Mutex::new(Box::new(UntilOk::new(
        finals,
        Duration::from_secs(1),
        FINAL_OPS_DEADLINE,
    )));
    let never = AtomicBool::new(false);
    if let Err(e) = crate::scheduler::run(crate::scheduler::Workers {
        clients,
        processes: processes.to_vec(),
        generator: &generator,
        recorder,
        start: Instant::now(),
        op_timeout: plan.op_timeout,
        stop: &never,
    }) {
        log.say(&format!("final ops: {e}"));
    }
}

/// Measures the run's test power from its history, and says it.
fn measure_power(dir: &Path, workers: u64, schedule: &Schedule, log: &RunLog) -> Option<Power> {
    match crate::power::measure(&dir.join("history.jsonl"), workers, schedule) {
        Ok(p) => {
            log.say(&crate::power::summary(&p));
            Some(p)
        }
        Err(e) => {
            log.say(&format!("could not measure the run's test power: {e:#}"));
            None
        }
    }
}

/// `read x 30, add`: each op's `f` with how many times it occurs, in order of first use.
fn summarize_ops(ops: &[workloads::Op]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for op in ops {
        match counts.iter_mut().find(|(f, _)| *f == op.f()) {
            Some((_, n)) => *n += 1,
            None => counts.push((op.f(), 1)),
        }
    }
    counts
        .iter()
        .map(|(f, n)| {
            if *n == 1 {
                f.to_string()
            } else {
                format!("{f} x {n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Starts the first worker's client now (an adapter: its process and handshake), so that a
/// client that cannot work is a set-up error (exit 254) saying why, before the workload.
fn start_first_client(clients: &[NodeClient], log: &RunLog) -> Result<(), Failure> {
    let Some((node, client)) = clients.first() else {
        return Ok(());
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| internal(anyhow!("cannot start a runtime: {e}")))?;
    rt.block_on(client.start_now()).map_err(|e| {
        log.say(&format!(
            "the client of worker 0 (on {node}) could not start: {e}"
        ));
        bad_input(anyhow!(
            "the client of worker 0 (on {node}) could not start: {e}"
        ))
    })
}

/// Every node must answer over SSH, or the run stops before changing anything.
fn connect(cluster: &Cluster, log: &RunLog) -> Result<(), Failure> {
    let down: Vec<String> = cluster
        .exec_all(&RemoteCommand::new("true"))
        .into_iter()
        .filter_map(|r| r.result.err().map(|e| format!("  {e}")))
        .collect();
    if down.is_empty() {
        return Ok(());
    }
    log.say(&format!("cannot reach every node:\n{}", down.join("\n")));
    Err(internal(anyhow!(
        "{} of {} nodes unreachable; nothing was changed on the cluster",
        down.len(),
        cluster.nodes().len()
    )))
}

/// Checks a run's history with `checker` and writes results.json (with `power`, when
/// measured) and timeline.html.
fn check_run(
    mut checker: Checker,
    dir: &Path,
    time_limit: Option<Duration>,
    power: Option<Power>,
    log: &RunLog,
) -> Result<CheckedRun, Failure> {
    match (&mut checker, time_limit) {
        (Checker::Linearizable { options, .. }, Some(t)) => {
            options.limits.deadline = Some(Instant::now() + t);
        }
        (Checker::Transactional { budget, .. }, Some(t)) => budget.time = Some(t),
        _ => {}
    }
    let history = dir.join("history.jsonl");
    log.say(&format!(
        "checking {} ({})",
        history.display(),
        checker.name()
    ));
    let checked = check_file(&checker, &history, Format::Jsonl, true)?;
    write_outputs(dir, &history, &checked).map_err(internal)?;
    if let Some(p) = &power {
        let doc = RunResults {
            results: &checked.results,
            power: Some(p),
        };
        let path = dir.join("results.json");
        serde_json::to_vec_pretty(&doc)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| Ok(std::fs::write(&path, bytes)?))
            .map_err(|e| internal(anyhow!("writing {}: {e}", path.display())))?;
    }
    log.say(checked.summary());
    // The verdict and its explanation on stdout, as `faultline check` prints them.
    print_human(&history, &checked);
    if let Some(p) = power.as_ref().filter(|p| !p.weak.is_empty()) {
        if checked.verdict == checkers::Verdict::Valid {
            println!("valid, weak: {}", p.weak.join("; "));
        }
    }
    Ok(CheckedRun { checked, power })
}

/// report.html, latency.svg, rate.svg and junit.xml, whatever the outcome (when there is a
/// history to draw).
fn write_report(dir: &Path, test_name: &str, outcome: &Result<CheckedRun, Failure>, log: &RunLog) {
    if !dir.join("history.jsonl").exists() {
        return;
    }
    let (verdict, detail) = match outcome {
        Ok(c) => (
            Status::Checked(c.checked.verdict),
            c.checked.summary().to_string(),
        ),
        Err(Failure::BadInput(e) | Failure::Internal(e)) => (Status::Error, format!("{e:#}")),
    };
    let (results, power) = match outcome {
        Ok(c) => (Some(&c.checked.results), c.power.as_ref()),
        Err(_) => (None, None),
    };
    match crate::report::write(dir, test_name, verdict, &detail, results, power) {
        Ok(()) => log.say(&format!("report: {}", dir.join("report.html").display())),
        Err(e) => log.say(&format!("could not write the report: {e:#}")),
    }
}

/// Runs `faultline analyze`: checks a stored run again and redraws its report.
pub fn analyze(args: &crate::cli::AnalyzeArgs, registry: &Registry) -> Result<Exit, Failure> {
    let dir = &args.run;
    let file = PlanFile::load(&dir.join("test.yaml")).map_err(|e| {
        bad_input(anyhow!(
            "{e:#} (expected a run directory made by `faultline test`)"
        ))
    })?;
    let workload = file
        .workload()
        .ok_or_else(|| bad_input(anyhow!("{}: no workload", dir.join("test.yaml").display())))?;
    let workload = registry.workload(workload).map_err(bad_input)?;
    let name = file.name().unwrap_or("faultline").to_string();
    let log = RunLog;
    let consistency = file
        .consistency()
        .map_err(|e| bad_input(anyhow!("{}: {e:#}", dir.join("test.yaml").display())))?;
    let power = match (file.schedule(), file.concurrency()) {
        (Some(schedule), Some(workers)) => {
            measure_power(dir, workers as u64, &schedule.clone(), &log)
        }
        _ => None,
    };
    let outcome = check_run(
        workload.checker().with_consistency(consistency),
        dir,
        args.time_limit,
        power,
        &log,
    );
    write_report(dir, &name, &outcome, &log);
    // The verdict may have changed: a store's index follows its run directories.
    if let Ok(run) = std::fs::canonicalize(dir) {
        if let Some(store) = run.parent().and_then(Path::parent) {
            if store.join(crate::index::FILE).is_file() {
                index_run(store, &run, &log);
            }
        }
    }
    outcome.map(|c| exit_of(c.checked.verdict))
}
