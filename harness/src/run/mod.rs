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

use crate::check_cmd::{check_file, exit_of, write_outputs};
use crate::exit::{bad_input, internal, Exit, Failure};
use crate::plan::{PlanFile, TestPlan};
use crate::recorder::Recorder;
use crate::report::Status;
use anyhow::anyhow;
use checkers::check::{Checked, Checker};
use checkers::read::Format;
use clusters::{Cluster, ClusterFile, RemoteCommand};
use database::DbSession;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workloads::gen::{Gen, Source, Stagger, TimeLimit, UntilOk};
use workloads::workload::WorkloadOptions;
use workloads::{DbError, Registry, Workload};

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

/// Runs `plan` on `cluster` (already provisioned), storing the run under `store`. `replay`
/// is the run replayed, if any, whose schedule is compared with this one's.
pub fn run_plan(
    mut plan: TestPlan,
    registry: &Registry,
    cluster: &ClusterFile,
    store: &Path,
    replay: Option<&Path>,
) -> Result<Exit, Failure> {
    let workload = registry.workload(&plan.workload).map_err(bad_input)?;
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
    if workloads::adapter::definition::is_definition_path(&plan.db) {
        // The definition as it ran, beside test.yaml (which has its path and SHA-256).
        if let Err(e) = std::fs::copy(&plan.db, dir.join("definition.yaml")) {
            log.say(&format!("could not keep a copy of {}: {e}", plan.db));
        }
    }
    let cluster = Cluster::new(cluster.clone(), 4);
    let outcome = phases(&plan, registry, workload.as_ref(), &cluster, &dir, &log);
    write_report(&dir, &plan.name, &outcome, &log);
    log.say(&format!("store: {}", dir.display()));
    crate::logging::close_file();
    outcome.map(|c| exit_of(c.verdict))
}

/// Journals in the cluster's database journal that the run starts its database (see
/// [`crate::db_cmd::record_run_start`]); a failure to write it is logged.
fn journal_db_start(
    cluster: &Cluster,
    plan: &TestPlan,
    event: &str,
    error: Option<&str>,
    log: &RunLog,
) {
    if let Err(e) =
        crate::db_cmd::record_run_start(cluster.file(), event, &plan.db, &plan.db_options, error)
    {
        log.say(&format!(
            "WARNING: cannot journal the database's options: {e}"
        ));
    }
}

/// Connect, database, nemesis, workload, heal, final ops, logs, check.
fn phases(
    plan: &TestPlan,
    registry: &Registry,
    workload: &dyn Workload,
    cluster: &Cluster,
    dir: &Path,
    log: &RunLog,
) -> Result<Checked, Failure> {
    connect(cluster, log)?;
    let db = registry
        .resolve_database(&plan.db)
        .map_err(bad_input)?
        .open(cluster, &plan.db_options)
        .map_err(|e| match e {
            DbError::Config(_) | DbError::Unknown { .. } => bad_input(e),
            other => internal(other),
        })?;
    // Journaled with each kill, so that heal after a crash restarts it as it ran.
    let source = nemesis::process::DbSource {
        db: plan.db.clone(),
        options: plan.db_options.clone(),
    };
    let nem = faults::nemesis(cluster, db.clone(), source, &plan.schedule, dir, log)?;
    let heal_guard = nem.heal_on_drop();
    // The database and its options, journaled as `faultline db start` journals them.
    journal_db_start(cluster, plan, "begin", None, log);
    let session = DbSession::start(cluster, db, dir, log).map_err(|e| {
        log.say(&format!("the database could not be set up: {e}"));
        journal_db_start(cluster, plan, "done", Some(&e), log);
        internal(anyhow!("{e}"))
    })?;
    journal_db_start(cluster, plan, "done", None, log);

    // The workload, with the fault schedule and progress alongside.
    let recorder = Recorder::create(&dir.join("history.jsonl"), Instant::now())
        .map_err(|e| internal(anyhow!("history.jsonl: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("interrupted again: still healing, please wait");
            } else {
                eprintln!("interrupted: stopping the workload, healing and collecting logs");
            }
        });
    }
    let nodes = cluster.nodes();
    let mut clients = Vec::new();
    for w in 0..plan.concurrency {
        let node = nodes[w % nodes.len()].clone();
        let ctx = workloads::db::ClientContext {
            worker: w,
            run_dir: Some(dir.to_path_buf()),
            workload: plan.workload.clone(),
            ops_per_key: plan.ops_per_key,
        };
        let client = session
            .db()
            .client(&node, plan.op_timeout, &ctx)
            .map_err(internal)?;
        clients.push((node, client));
    }
    let options = WorkloadOptions {
        ops_per_key: plan.ops_per_key,
    };
    // The op schedule: the workload's ops, staggered to --rate over all workers, for
    // --time-limit. Deterministic from the seed.
    let generator: Mutex<Box<dyn Gen>> = Mutex::new(Box::new(TimeLimit::new(
        plan.time_limit,
        Stagger::new(
            Duration::from_secs_f64(1.0 / plan.rate),
            plan.seed,
            Source::new(workload.ops(plan.seed, &options)),
        ),
    )));
    log.say(&format!(
        "running {} for {} ({} workers, {} ops/s)",
        plan.workload,
        humantime::format_duration(plan.time_limit),
        plan.concurrency,
        plan.rate
    ));
    let active: Mutex<Option<String>> = Mutex::new(None);
    let start = Instant::now();
    let ran = std::thread::scope(|s| {
        s.spawn(|| {
            faults::run_schedule(
                &nem,
                &plan.schedule,
                plan.time_limit,
                &recorder,
                start,
                &stop,
                &active,
                log,
            )
        });
        s.spawn(|| progress::show(&recorder, start, plan.time_limit, &stop, &active, log));
        let r = crate::scheduler::run(crate::scheduler::Workers {
            clients: clients.clone(),
            processes: crate::scheduler::first_processes(plan.concurrency),
            generator: &generator,
            recorder: &recorder,
            start,
            op_timeout: plan.op_timeout,
            stop: &stop,
        });
        stop.store(true, Ordering::SeqCst);
        r
    });

    // Heal every fault.
    match heal_guard.heal_now() {
        Ok(r) if r.is_clean() => {
            if !r.healed.is_empty() {
                let _ = recorder.nemesis("heal", checkers::history::Value::Null, None);
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

    // Is the database whole again? (Galera: every node Synced in one Primary component.)
    match session.db().recovered(cluster, RECOVERY_DEADLINE) {
        Ok(Some(what)) => log.say(&format!("{} recovered: {what}", session.db().name())),
        Ok(None) => {}
        Err(e) => log.say(&format!(
            "{} DID NOT RECOVER after the faults were healed: {e}",
            session.db().name()
        )),
    }

    // The final ops, through the same scheduler and recorder.
    let finals = workload.final_ops();
    if let Ok(processes) = &ran {
        if !finals.is_empty() {
            log.say(&format!(
                "final ops: {}",
                finals.iter().map(|o| o.f()).collect::<Vec<_>>().join(", ")
            ));
            let generator: Mutex<Box<dyn Gen>> = Mutex::new(Box::new(UntilOk::new(
                finals,
                Duration::from_secs(1),
                FINAL_OPS_DEADLINE,
            )));
            let never = AtomicBool::new(false);
            if let Err(e) = crate::scheduler::run(crate::scheduler::Workers {
                clients,
                processes: processes.clone(),
                generator: &generator,
                recorder: &recorder,
                start: Instant::now(),
                op_timeout: plan.op_timeout,
                stop: &never,
            }) {
                log.say(&format!("final ops: {e}"));
            }
        }
    }
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
    check_run(
        workload.checker().with_consistency(plan.consistency),
        dir,
        None,
        log,
    )
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

/// Checks a run's history with `checker` and writes results.json (and timeline.html).
fn check_run(
    mut checker: Checker,
    dir: &Path,
    time_limit: Option<Duration>,
    log: &RunLog,
) -> Result<Checked, Failure> {
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
    log.say(checked.summary());
    // The verdict and its explanation on stdout, as `faultline check` prints them.
    crate::check_cmd::print_human(&history, &checked);
    Ok(checked)
}

/// report.html, latency.svg, rate.svg and junit.xml, whatever the outcome (when there is a
/// history to draw).
fn write_report(dir: &Path, test_name: &str, outcome: &Result<Checked, Failure>, log: &RunLog) {
    if !dir.join("history.jsonl").exists() {
        return;
    }
    let (verdict, detail) = match outcome {
        Ok(c) => (Status::Checked(c.verdict), c.summary().to_string()),
        Err(Failure::BadInput(e) | Failure::Internal(e)) => (Status::Error, format!("{e:#}")),
    };
    match crate::report::write(dir, test_name, verdict, &detail) {
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
    let outcome = check_run(
        workload.checker().with_consistency(consistency),
        dir,
        args.time_limit,
        &log,
    );
    write_report(dir, &name, &outcome, &log);
    outcome.map(|c| exit_of(c.verdict))
}
