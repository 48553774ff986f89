//! `faultline test`: the lifecycle of DESIGN.md. Connect -> install and start the database ->
//! run the workload with the nemesis -> heal every fault -> final reads -> stop the database
//! -> download logs -> check -> report. Ctrl-C and errors still heal and collect logs.

use crate::cli::{CheckArgs, TestArgs};
use crate::exit::{bad_input, internal, Exit, Failure};
use crate::hooks::DbHooks;
use crate::recorder::Recorder;
use anyhow::{anyhow, Context};
use checkers::history::Value;
use clusters::{local, Cluster, ClusterFile, RemoteCommand};
use nemesis::schedule::{Action, Kind, Schedule};
use nemesis::{Applied, Journal, Nemesis, NemesisError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workloads::db::{Database, DbError, DbOptions};
use workloads::gen::{Gen, Source, Stagger, TimeLimit};
use workloads::workload::{ClientOptions, Generator, Workload};

/// Lines for people, logged at info level: on stderr and in the run's faultline.log.
struct RunLog;

impl RunLog {
    fn say(&self, msg: &str) {
        tracing::info!("{msg}");
    }
}

/// Removes a temporary local cluster when dropped.
struct TempCluster(Option<String>);

impl Drop for TempCluster {
    fn drop(&mut self) {
        if let Some(name) = self.0.take() {
            if let Err(e) = local::down(&name) {
                eprintln!("could not remove the temporary cluster {name}: {e}");
            }
        }
    }
}

/// Runs `faultline test`, `--test-count` times.
pub fn run(args: &TestArgs) -> Result<Exit, Failure> {
    if args.test_count <= 1 {
        return run_once(args);
    }
    let base = args.seed.unwrap_or_else(clock_seed);
    let mut worst = Exit::Valid;
    let (mut valid, mut invalid, mut unknown) = (0, 0, 0);
    for i in 0..args.test_count {
        let mut a = args.clone();
        a.seed = Some(base.wrapping_add(i as u64));
        eprintln!(
            "== run {} of {} (seed {})",
            i + 1,
            args.test_count,
            base.wrapping_add(i as u64)
        );
        let exit = run_once(&a)?;
        match exit {
            Exit::Valid => valid += 1,
            Exit::Invalid => invalid += 1,
            _ => unknown += 1,
        }
        if exit == Exit::Invalid || (exit == Exit::Unknown && worst == Exit::Valid) {
            worst = exit;
        }
        if exit == Exit::Invalid && !args.keep_going {
            eprintln!("stopping at the first invalid run (--keep-going runs them all)");
            break;
        }
    }
    eprintln!("{valid} valid, {invalid} invalid, {unknown} unknown");
    Ok(worst)
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_007)
        .unwrap_or(0)
}

/// One run of `faultline test`.
fn run_once(args: &TestArgs) -> Result<Exit, Failure> {
    let workload = Workload::parse(&args.workload).ok_or_else(|| {
        bad_input(anyhow!(
            "--workload {:?}: expected one of {}",
            args.workload,
            Workload::NAMES.join(", ")
        ))
    })?;
    // Nodes that own their clocks get the clock nemesis by default.
    let nemesis = if args.vm && args.nemesis == "partition,kill,pause" {
        "partition,kill,pause,clock".to_string()
    } else {
        args.nemesis.clone()
    };
    let kinds = Kind::parse_list(&nemesis).map_err(bad_input)?;
    if args.concurrency == 0 || args.rate <= 0.0 || !args.rate.is_finite() {
        return Err(bad_input(anyhow!(
            "--concurrency and --rate must be positive"
        )));
    }
    if !workloads::db::DATABASES.contains(&args.db.as_str()) {
        return Err(bad_input(anyhow!(
            "--db {:?}: faultline knows {}",
            args.db,
            workloads::db::DATABASES.join(", ")
        )));
    }
    let seed = args.seed.unwrap_or_else(clock_seed);

    // The cluster: a file, or a temporary local one.
    let mut temp = TempCluster(None);
    let file = match args.cluster.strip_prefix("local:") {
        Some(n) => {
            let n: usize = n.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                bad_input(anyhow!(
                    "--cluster {}: expected local:N with N >= 1",
                    args.cluster
                ))
            })?;
            static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let name = format!(
                "run{}-{}",
                std::process::id(),
                RUNS.fetch_add(1, Ordering::SeqCst)
            );
            eprintln!(
                "bringing up a temporary local cluster of {n} {} ({name})",
                if args.vm { "qemu guests" } else { "nodes" }
            );
            let made = if args.vm {
                clusters::vm::up(n, &name, &clusters::vm::VmOptions::default())
            } else {
                local::up(n, &name)
            };
            let path = made.map_err(|e| match e {
                local::LocalError::NotRoot | local::LocalError::Missing { .. } => bad_input(e),
                other => internal(other),
            })?;
            temp.0 = Some(name);
            ClusterFile::load(&path).map_err(internal)?
        }
        None => ClusterFile::load(Path::new(&args.cluster)).map_err(bad_input)?,
    };

    // The store.
    let test_name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", args.db, workload.name()));
    let dir = crate::store::create_run(&args.store, &test_name).map_err(internal)?;
    if let Err(e) = crate::logging::to_file(&dir.join("faultline.log")) {
        tracing::warn!("cannot write {}: {e}", dir.join("faultline.log").display());
    }
    let log = RunLog;
    log.say(&format!(
        "test {test_name}: {} on {} ({} nodes), workload {}, nemesis {}, seed {seed}; store {}",
        args.db,
        file.name,
        file.nodes.len(),
        workload.name(),
        if kinds.is_empty() {
            "none".to_string()
        } else {
            args.nemesis.clone()
        },
        dir.display()
    ));
    let schedule = Schedule::generate(&kinds, args.nemesis_interval, args.time_limit, seed);
    if let Some(run) = &args.replay {
        let stored = std::fs::read_to_string(run.join("test.yaml"))
            .ok()
            .and_then(|t| serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&t).ok())
            .and_then(|v| serde_yaml_ng::from_value::<Schedule>(v["schedule"].clone()).ok());
        match stored {
            Some(s) if s == schedule => log.say("the fault schedule is the stored run's"),
            Some(_) => log.say("WARNING: the fault schedule differs from the stored run's (another faultline version?)"),
            None => log.say("WARNING: the stored run has no readable schedule"),
        }
    }
    crate::store::write_test_yaml(&dir, args, seed, &file, &schedule).map_err(internal)?;

    let cluster = Cluster::new(file.clone(), 4);
    let outcome = lifecycle(args, workload, seed, &schedule, &cluster, &dir, &log);
    drop(temp);
    write_report(&dir, &test_name, &outcome, &log);
    log.say(&format!("store: {}", dir.display()));
    crate::logging::close_file();
    outcome
}

/// report.html, latency.svg, rate.svg and junit.xml, whatever the outcome (when there is a
/// history to draw).
fn write_report(dir: &Path, test_name: &str, outcome: &Result<Exit, Failure>, log: &RunLog) {
    if !dir.join("history.jsonl").exists() {
        return;
    }
    let (verdict, detail) = match outcome {
        Ok(Exit::Valid) => (crate::report::Verdict::Valid, results_summary(dir)),
        Ok(Exit::Invalid) => (crate::report::Verdict::Invalid, results_summary(dir)),
        Ok(Exit::Unknown) => (crate::report::Verdict::Unknown, results_summary(dir)),
        Ok(_) => (crate::report::Verdict::Error, "internal error".to_string()),
        Err(Failure::BadInput(e) | Failure::Internal(e)) => {
            (crate::report::Verdict::Error, format!("{e:#}"))
        }
    };
    match crate::report::write(dir, test_name, verdict, &detail) {
        Ok(()) => log.say(&format!("report: {}", dir.join("report.html").display())),
        Err(e) => log.say(&format!("could not write the report: {e:#}")),
    }
}

/// One line about the checker's verdict, from results.json.
pub fn results_summary(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap_or_default();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => summary_of(&v),
        Err(_) => "no results.json".into(),
    }
}

/// One line about the checker's verdict, from the contents of results.json.
pub fn summary_of(v: &serde_json::Value) -> String {
    if v.get("lost").is_some() {
        return format!(
            "set: {} adds attempted, {} acknowledged, {} in the final read; {} lost, {} unexpected, {} recovered",
            v["attempted"],
            v["acknowledged"],
            v["read"],
            v["lost"].as_array().map_or(0, Vec::len),
            v["unexpected"].as_array().map_or(0, Vec::len),
            v["recovered"].as_array().map_or(0, Vec::len)
        );
    }
    format!(
        "{}: {} ops over {} keys checked against {} in {} ms; {} key(s) not linearizable, {} undecided",
        match &v["valid"] {
            serde_json::Value::Bool(true) => "linearizable".to_string(),
            serde_json::Value::Bool(false) => "NOT linearizable".to_string(),
            other => other.to_string(),
        },
        v["ops"],
        v["keys"],
        v["model"].as_str().unwrap_or("?"),
        v["elapsed_ms"],
        v["anomalies"].as_array().map_or(0, Vec::len),
        v["undecided"].as_array().map_or(0, Vec::len)
    )
}

#[allow(clippy::too_many_arguments)]
fn lifecycle(
    args: &TestArgs,
    workload: Workload,
    seed: u64,
    schedule: &Schedule,
    cluster: &Cluster,
    dir: &Path,
    log: &RunLog,
) -> Result<Exit, Failure> {
    // Connect.
    let mut down = Vec::new();
    for r in cluster.exec_all(&RemoteCommand::new("true")) {
        if let Err(e) = r.result {
            down.push(format!("  {e}"));
        }
    }
    if !down.is_empty() {
        log.say(&format!("cannot reach every node:\n{}", down.join("\n")));
        return Err(internal(anyhow!(
            "{} of {} nodes unreachable; nothing was changed on the cluster",
            down.len(),
            cluster.nodes().len()
        )));
    }
    let db: Arc<dyn Database> = workloads::db::open(
        &args.db,
        cluster,
        &DbOptions {
            install: args.db_install.clone(),
            binary: args.db_binary.clone(),
        },
    )
    .map_err(internal)?;

    // Faults are journaled in the cluster's journal and mirrored into the store.
    let journal = Journal::open(&Journal::default_path(&cluster.file().name))
        .and_then(|j| j.with_mirror(&dir.join("nemesis.jsonl")))
        .map_err(internal)?;
    let nem = Nemesis::new(cluster, journal).with_hooks(Arc::new(DbHooks(db.clone())));
    let leftover = nem.journal().pending().map_err(internal)?;
    if !leftover.is_empty() {
        log.say(&format!(
            "healing {} fault(s) left applied by an earlier run",
            leftover.len()
        ));
        nem.heal_all(true).map_err(internal)?;
    }
    if schedule.kinds.contains(&Kind::Clock) {
        log.say("clock faults: checking that nodes own their clocks, installing the node helper");
        nem.prepare_clock().map_err(|e| match e {
            NemesisError::Refused(_) => bad_input(anyhow!("{e} (or leave clock out of --nemesis)")),
            other => internal(other),
        })?;
    }
    let heal_guard = nem.heal_on_drop();

    // Install and start the database.
    let result = setup_db(cluster, db.as_ref(), log);
    if let Err(e) = result {
        log.say(&format!("the database could not be set up: {e}"));
        stop_and_collect(cluster, db.as_ref(), dir, log);
        return Err(internal(anyhow!("{e}")));
    }

    // Run the workload with the nemesis.
    let recorder = Recorder::create(&dir.join("history.jsonl"), Instant::now())
        .context("history.jsonl")
        .map_err(internal)?;
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
    let active: Mutex<Option<String>> = Mutex::new(None);
    let start = Instant::now();
    let client_opts = ClientOptions {
        workload,
        timeout: args.op_timeout,
        serializable_reads: args.read_mode == "serializable",
    };
    // The op schedule: the workload's ops, staggered to --rate over all workers, for
    // --time-limit. Deterministic from the seed.
    let generator: Mutex<Box<dyn Gen>> = Mutex::new(Box::new(TimeLimit::new(
        args.time_limit,
        Stagger::new(
            Duration::from_secs_f64(1.0 / args.rate),
            seed,
            Source::new(Generator::new(workload, seed, args.ops_per_key)),
        ),
    )));
    let run_error: Mutex<Option<String>> = Mutex::new(None);
    log.say(&format!(
        "running {} for {} ({} workers, {} ops/s)",
        workload.name(),
        humantime::format_duration(args.time_limit),
        args.concurrency,
        args.rate
    ));
    std::thread::scope(|s| {
        s.spawn(|| run_nemesis(&nem, schedule, &recorder, start, &stop, &active, log));
        s.spawn(|| progress(&recorder, start, args.time_limit, &stop, &active, log));
        let r = run_workers(
            args,
            cluster,
            db.as_ref(),
            &client_opts,
            &generator,
            &recorder,
            start,
            &stop,
        );
        if let Err(e) = r {
            *run_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
        }
        stop.store(true, Ordering::SeqCst);
    });

    // Heal every fault.
    match heal_guard.heal_now() {
        Ok(r) if r.is_clean() => {
            if !r.healed.is_empty() {
                let _ = recorder.nemesis("heal", Value::Null, None);
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
    // Let the database settle, then the final reads.
    let finals = Generator::new(workload, seed, args.ops_per_key).final_ops();
    if !finals.is_empty() {
        final_reads(cluster, db.as_ref(), &client_opts, &finals, &recorder, log);
    }
    stop_and_collect(cluster, db.as_ref(), dir, log);
    if let Some(e) = run_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
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
    check(workload, dir, log)
}

fn setup_db(cluster: &Cluster, db: &dyn Database, log: &RunLog) -> Result<(), String> {
    let nodes = cluster.nodes();
    log.say(&format!("setting up {} on {}", db.name(), nodes.join(", ")));
    let errors: Vec<String> = cluster
        .on_nodes(&nodes, |n| {
            Ok(db
                .wipe(cluster, n)
                .and_then(|()| db.install(cluster, n))
                .and_then(|()| db.configure(cluster, n))
                .and_then(|()| db.start(cluster, n)))
        })
        .into_iter()
        .filter_map(|r| match r.result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    let errors: Vec<String> = cluster
        .on_nodes(&nodes, |n| {
            Ok(db.wait_ready(cluster, n, Duration::from_secs(30)))
        })
        .into_iter()
        .filter_map(|r| match r.result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        })
        .collect();
    if errors.is_empty() {
        log.say(&format!("{} is ready on every node", db.name()));
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    while Instant::now() < deadline {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20).min(deadline - Instant::now()));
    }
    !stop.load(Ordering::SeqCst)
}

fn run_nemesis(
    nem: &Nemesis<'_>,
    schedule: &Schedule,
    recorder: &Recorder,
    start: Instant,
    stop: &AtomicBool,
    active: &Mutex<Option<String>>,
    log: &RunLog,
) {
    let mut current: Option<Applied> = None;
    for step in &schedule.steps {
        if !sleep_until(start + Duration::from_millis(step.at_ms), stop) {
            break;
        }
        match &step.action {
            Action::Start { fault } => {
                let resolved = nem.resolve(fault, &mut step.rng());
                let result = resolved.and_then(|f| nem.apply(f));
                match result {
                    Ok(a) => {
                        log.say(&format!("nemesis: {}", a.fault));
                        let _ = recorder.nemesis(&a.fault.start_f(), history_value(&a), None);
                        *active.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(a.fault.to_string());
                        current = Some(a);
                    }
                    Err(e) => {
                        log.say(&format!("nemesis: could not apply a fault: {e}"));
                        let _ = recorder.nemesis("fault-refused", Value::Null, Some(e.to_string()));
                    }
                }
            }
            Action::Heal => {
                if let Some(a) = current.take() {
                    let r = nem.heal(&a);
                    let err = r.as_ref().err().map(ToString::to_string);
                    log.say(&format!(
                        "nemesis: healed {}{}",
                        a.fault.kind(),
                        err.as_ref()
                            .map(|e| format!(" (FAILED: {e})"))
                            .unwrap_or_default()
                    ));
                    let _ = recorder.nemesis(&a.fault.stop_f(), Value::Null, err);
                    *active.lock().unwrap_or_else(|e| e.into_inner()) = None;
                }
            }
        }
    }
}

fn history_value(a: &Applied) -> Value {
    Value::from_json(a.fault.history_value())
}

/// Progress: on a terminal, a bar with the elapsed and remaining time, the op counts and the
/// fault active now, updated four times a second; otherwise a log line every five seconds.
fn progress(
    recorder: &Recorder,
    start: Instant,
    limit: Duration,
    stop: &AtomicBool,
    active: &Mutex<Option<String>>,
    log: &RunLog,
) {
    use std::io::IsTerminal;
    let status = || {
        let c = recorder.counts();
        let fault = active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "none".into());
        format!(
            "{} ok, {} fail, {} info; fault now: {fault}",
            c.ok, c.fail, c.info
        )
    };
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(limit.as_secs().max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len}s, {eta} left  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        crate::logging::set_bar(Some(bar.clone()));
        let mut next = Instant::now();
        while sleep_until(next, stop) {
            bar.set_position(start.elapsed().as_secs().min(limit.as_secs()));
            bar.set_message(status());
            next += Duration::from_millis(250);
        }
        crate::logging::set_bar(None);
        bar.finish_and_clear();
        return;
    }
    let every = Duration::from_secs(5);
    let mut next = start + every;
    while sleep_until(next, stop) {
        log.say(&format!(
            "{:>3.0}s of {}s: {}",
            start.elapsed().as_secs_f64(),
            limit.as_secs(),
            status()
        ));
        next += every;
    }
}

#[allow(clippy::too_many_arguments)]
fn run_workers(
    args: &TestArgs,
    cluster: &Cluster,
    db: &dyn Database,
    client_opts: &ClientOptions,
    generator: &Mutex<Box<dyn Gen>>,
    recorder: &Recorder,
    start: Instant,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let nodes = cluster.nodes();
    let mut clients = Vec::new();
    for w in 0..args.concurrency {
        let node = nodes[w % nodes.len()].clone();
        clients.push((node.clone(), db.client(&node, client_opts)?));
    }
    crate::scheduler::run(crate::scheduler::Workers {
        clients,
        generator,
        recorder,
        start,
        op_timeout: args.op_timeout,
        stop,
    })
}

fn final_reads(
    cluster: &Cluster,
    db: &dyn Database,
    opts: &ClientOptions,
    finals: &[workloads::Op],
    recorder: &Recorder,
    log: &RunLog,
) {
    let nodes = cluster.nodes();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log.say(&format!("final reads: {e}"));
            return;
        }
    };
    // Fresh processes after every worker's.
    let mut process = 1_000_000;
    for op in finals {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempt = 0usize;
        loop {
            let node = &nodes[attempt % nodes.len()];
            attempt += 1;
            let Ok(client) = db.client(node, opts) else {
                break;
            };
            if recorder.invoke(process, op, node).is_err() {
                return;
            }
            let outcome = rt.block_on(client.invoke(op));
            let _ = recorder.complete(process, op, &outcome, node);
            if outcome.kind == checkers::history::EventKind::Ok {
                log.say(&format!("final {} on {node}: ok", op.f));
                break;
            }
            process += 1;
            if Instant::now() > deadline {
                log.say(&format!("final {} never succeeded", op.f));
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        process += 1;
    }
}

fn stop_and_collect(cluster: &Cluster, db: &dyn Database, dir: &Path, log: &RunLog) {
    let nodes = cluster.nodes();
    for r in cluster.on_nodes(&nodes, |n| Ok(db.kill(cluster, n))) {
        if let Ok(Err(e)) | Err(e) = r.result.map_err(DbError::Ssh) {
            log.say(&format!("{}: could not stop {}: {e}", r.node, db.name()));
        }
    }
    let files = db.log_files();
    for r in cluster.on_nodes(&nodes, |n| {
        let local_dir: PathBuf = dir.join("nodes").join(n);
        std::fs::create_dir_all(&local_dir).ok();
        for f in &files {
            let name = Path::new(f)
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| "log".into());
            cluster.download(n, Path::new(f), &local_dir.join(name))?;
        }
        Ok(())
    }) {
        if let Err(e) = r.result {
            log.say(&format!("{}: could not download logs: {e}", r.node));
        }
    }
    log.say(&format!(
        "logs collected in {}",
        dir.join("nodes").display()
    ));
}

fn check(workload: Workload, dir: &Path, log: &RunLog) -> Result<Exit, Failure> {
    check_run(workload, dir, None, log)
}

/// Runs `faultline analyze`: checks a stored run again and redraws its report.
pub fn analyze(args: &crate::cli::AnalyzeArgs) -> Result<Exit, Failure> {
    let dir = &args.run;
    let yaml = std::fs::read_to_string(dir.join("test.yaml")).map_err(|e| {
        bad_input(anyhow!(
            "{}: {e} (expected a run directory made by `faultline test`)",
            dir.join("test.yaml").display()
        ))
    })?;
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml)
        .map_err(|e| bad_input(anyhow!("{}: {e}", dir.join("test.yaml").display())))?;
    let workload = v["workload"]
        .as_str()
        .and_then(Workload::parse)
        .ok_or_else(|| {
            bad_input(anyhow!(
                "{}: no known workload",
                dir.join("test.yaml").display()
            ))
        })?;
    let name = v["name"].as_str().unwrap_or("faultline").to_string();
    let log = RunLog;
    let outcome = check_run(workload, dir, args.time_limit, &log);
    write_report(dir, &name, &outcome, &log);
    outcome
}

fn check_run(
    workload: Workload,
    dir: &Path,
    time_limit: Option<Duration>,
    log: &RunLog,
) -> Result<Exit, Failure> {
    let history = dir.join("history.jsonl");
    match workload.model() {
        Some(model) => {
            log.say(&format!("checking {} against {model}", history.display()));
            crate::check_cmd::run(&CheckArgs {
                model: model.to_string(),
                consistency: "strict-serializable".into(),
                format: "jsonl".into(),
                time_limit,
                memory_limit: None,
                json: false,
                out: Some(dir.to_path_buf()),
                initial: None,
                knossos_nil_reads: false,
                all_keys: false,
                search_only: false,
                allow_truncated: true,
                history,
            })
        }
        None => {
            let mut c = checkers::set_check::SetChecker::default();
            let reader =
                checkers::read::open(&history, checkers::read::Format::Jsonl).map_err(internal)?;
            for ev in reader {
                let ev = ev.map_err(internal)?;
                c.push(&ev.event);
            }
            let r = c.finish();
            std::fs::write(
                dir.join("results.json"),
                serde_json::to_string_pretty(&r).map_err(internal)?,
            )
            .map_err(internal)?;
            let verdict = match r.valid {
                Some(true) => "VALID",
                Some(false) => "INVALID",
                None => "UNKNOWN (no successful final read)",
            };
            println!(
                "{verdict}: {} adds attempted, {} acknowledged, {} read; lost {:?}, unexpected {:?}, recovered {}",
                r.attempted,
                r.acknowledged,
                r.read,
                r.lost,
                r.unexpected,
                r.recovered.len()
            );
            Ok(match r.valid {
                Some(true) => Exit::Valid,
                Some(false) => Exit::Invalid,
                None => Exit::Unknown,
            })
        }
    }
}
