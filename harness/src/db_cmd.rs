//! `faultline db install|start|stop|status|wipe`: a database by hand, outside a test, the way
//! Jepsen users set one up at the REPL and then apply and heal faults with `faultline
//! nemesis` and `faultline heal`.
//!
//! Every change (install, start, stop, wipe) holds the cluster's lease
//! ([`nemesis::lease`]) and is journaled in the cluster's database journal
//! (`$FAULTLINE_HOME/journal/NAME.db.jsonl`, beside its fault journal): a `begin` line with
//! the action, the database and its resolved options before anything changes, a `done` line
//! with each node's error after. The options of the last install or start are what later
//! `db` commands, `nemesis kill|pause --db` and `heal` (which restarts a killed database)
//! open the database with when none are given, so a database started with other options is
//! restarted with them.

use crate::cli::{DbArgs, DbCommand};
use crate::exit::{bad_input, internal, Exit, Failure};
use clusters::{Cluster, ClusterFile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use workloads::{Database, DbError, DbOptions, Registry};

/// One line of a cluster's database journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbRecord {
    /// Wall-clock time, RFC 3339.
    pub time: String,
    /// The faultline process that wrote it.
    pub pid: u32,
    /// `begin` (before anything changes) or `done`.
    pub event: String,
    /// install, start, stop or wipe.
    pub action: String,
    /// The database.
    pub db: String,
    /// Its resolved options.
    pub options: DbOptions,
    /// Per-node errors (on `done` lines).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, String>,
}

/// The database journal of the cluster `file` describes.
pub fn journal_path(file: &ClusterFile) -> PathBuf {
    nemesis::Journal::default_path(&file.name).with_extension("db.jsonl")
}

/// Appends `record` to the journal at `path` (under an exclusive lock, fsynced).
pub fn append(path: &Path, record: &DbRecord) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.lock()?;
    let line = serde_json::to_string(record).map_err(std::io::Error::other)? + "\n";
    let r = f.write_all(line.as_bytes()).and_then(|()| f.sync_data());
    let _ = f.unlock();
    r
}

/// The options of the last `install` or `start` of database `db` in the journal at `path`
/// (a database by name, or a definition by its absolute path; a test's setup is journaled as
/// a `start`). Damaged lines (torn, not UTF-8, not a record) are skipped.
pub fn recorded_options(path: &Path, db: &str) -> Option<DbOptions> {
    let text = std::fs::read(path).ok()?;
    text.split(|b| *b == b'\n')
        .rev()
        .filter_map(|l| serde_json::from_slice::<DbRecord>(l).ok())
        .find(|r| r.db == db && (r.action == "install" || r.action == "start"))
        .map(|r| r.options)
}

/// `--db` as journaled: a built-in database's name as it is, a definition file's path made
/// absolute (so that another directory, or heal, finds the same file).
pub fn source_db(name: &str) -> String {
    if !workloads::adapter::definition::is_definition_path(name) {
        return name.to_string();
    }
    std::fs::canonicalize(name)
        .or_else(|_| std::path::absolute(name))
        .map_or_else(|_| name.to_string(), |p| p.display().to_string())
}

/// Journals in the database journal of the cluster `file` describes that a test run sets up
/// (`begin`) or has set up (`done`, with the error if it failed) database `db` with
/// `options`, as `faultline db start` journals itself, so that later `db` commands and heal
/// open the database with the options the run used.
pub fn record_run_start(
    file: &ClusterFile,
    event: &str,
    db: &str,
    options: &DbOptions,
    error: Option<&str>,
) -> std::io::Result<()> {
    let record = DbRecord {
        time: now(),
        pid: std::process::id(),
        event: event.into(),
        action: "start".into(),
        db: db.into(),
        options: options.clone(),
        errors: error
            .map(|e| [("*".to_string(), e.to_string())].into())
            .unwrap_or_default(),
    };
    append(&journal_path(file), &record)
}

/// Opens the database a kill recorded ([`nemesis::process::DbSource`]) to restart it: a
/// definition file must still be there and unchanged (its SHA-256 as recorded), else why
/// not, naming the file (bad input: no retry helps; an unreachable node is internal).
pub fn reopen(
    source: &nemesis::process::DbSource,
    cluster: &Cluster,
) -> Result<Arc<dyn Database>, Failure> {
    use workloads::adapter::definition::{is_definition_path, SHA_OPTION};
    let mut options = source.options.clone();
    let recorded_sha = options.remove(SHA_OPTION);
    if is_definition_path(&source.db) {
        let path = Path::new(&source.db);
        if !path.exists() {
            return Err(bad_input(anyhow::anyhow!(
                "its definition file {} is gone since the fault was applied",
                path.display()
            )));
        }
        let kind = workloads::adapter::FileDbKind::load(path).map_err(bad_input)?;
        if let Some(sha) = recorded_sha.filter(|sha| sha != kind.sha256()) {
            return Err(bad_input(anyhow::anyhow!(
                "its definition file {} changed since the fault was applied (SHA-256 {sha} then, {} now)",
                path.display(),
                kind.sha256()
            )));
        }
    }
    open_with(&source.db, cluster, &options).map(|(db, _)| db)
}

/// Opens database `name` on `cluster`: with the `given` options, or, when none are given,
/// those its last `db install` or `db start` recorded, else its defaults. Returns it and the
/// resolved options.
pub fn open(
    name: &str,
    cluster: &Cluster,
    given: &DbOptions,
) -> Result<(Arc<dyn Database>, DbOptions), Failure> {
    let given = if given.is_empty() {
        let mut recorded = recorded_options(&journal_path(cluster.file()), &source_db(name))
            .or_else(|| recorded_options(&journal_path(cluster.file()), name))
            .unwrap_or_default();
        // The definition as it is now: the digest of the one recorded is no option to reuse.
        recorded.remove(workloads::adapter::definition::SHA_OPTION);
        recorded
    } else {
        given.clone()
    };
    open_with(name, cluster, &given)
}

/// Opens database `name` on `cluster` with exactly the `given` options (and its defaults for
/// the others).
fn open_with(
    name: &str,
    cluster: &Cluster,
    given: &DbOptions,
) -> Result<(Arc<dyn Database>, DbOptions), Failure> {
    let kind = Registry::builtin()
        .resolve_database(name)
        .map_err(|e| bad_input(anyhow::anyhow!("--db {name}: {e}")))?;
    let options = kind
        .resolve_options(given)
        .map_err(|e| bad_input(anyhow::anyhow!("--db {name}: {e}")))?;
    let db = kind.open(cluster, &options).map_err(|e| match e {
        DbError::Config(_) | DbError::Unknown { .. } => {
            bad_input(anyhow::anyhow!("--db {name}: {e}"))
        }
        other => internal(other),
    })?;
    Ok((db, options))
}

/// A failure's message with its causes.
pub fn failure_text(f: Failure) -> String {
    match f {
        Failure::BadInput(e) | Failure::Internal(e) => format!("{e:#}"),
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Runs `faultline db ...`.
pub fn run(cmd: &DbCommand) -> Result<Exit, Failure> {
    let (action, args) = match cmd {
        DbCommand::Install(a) => ("install", a),
        DbCommand::Start(a) => ("start", a),
        DbCommand::Stop(a) => ("stop", a),
        DbCommand::Status(a) => ("status", a),
        DbCommand::Wipe(a) => ("wipe", a),
    };
    let file = ClusterFile::load(&args.cluster).map_err(bad_input)?;
    let given = given_options(args)?;
    // One controller at a time: no change under a running test.
    let _lease = match action {
        "status" => None,
        _ => Some(crate::nemesis_cmd::take_lease(&file)?),
    };
    let cluster = Cluster::new(file.clone(), 2);
    let (db, options) = open(&args.db, &cluster, &given)?;
    if action == "status" {
        return Ok(status(&cluster, db.as_ref()));
    }
    let journal = journal_path(&file);
    let mut record = DbRecord {
        time: now(),
        pid: std::process::id(),
        event: "begin".into(),
        action: action.into(),
        db: source_db(&args.db),
        options,
        errors: BTreeMap::new(),
    };
    append(&journal, &record)
        .map_err(|e| internal(anyhow::anyhow!("{}: {e}", journal.display())))?;
    let nodes = cluster.nodes();
    let d = db.as_ref();
    let c = &cluster;
    let mut results: BTreeMap<String, Result<String, String>> = cluster
        .on_nodes(&nodes, |n| {
            Ok(match action {
                "install" => d.install(c, n).map(|()| "installed".to_string()),
                "start" => match d.pids(c, n) {
                    Ok(p) if !p.is_empty() => Ok(format!("already running (pid {})", join(&p))),
                    _ => d
                        .configure(c, n)
                        .and_then(|()| d.start(c, n))
                        .map(|()| "started".to_string()),
                },
                "stop" => d.kill(c, n).map(|()| "stopped".to_string()),
                _ => d.wipe(c, n).map(|()| "stopped and wiped".to_string()),
            })
        })
        .into_iter()
        .map(|r| {
            let v = match r.result {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            (r.node, v)
        })
        .collect();
    if action == "start" {
        // Every node must serve: etcd's members find each other only once all are started.
        let ready = cluster.on_nodes(&nodes, |n| Ok(d.wait_ready(c, n, Duration::from_secs(30))));
        for r in ready {
            let err = match r.result {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let (Some(e), Some(Ok(_))) = (err, results.get(&r.node)) {
                results.insert(r.node, Err(format!("not ready: {e}")));
            }
        }
    }
    record.time = now();
    record.event = "done".into();
    record.errors = results
        .iter()
        .filter_map(|(n, r)| r.as_ref().err().map(|e| (n.clone(), e.clone())))
        .collect();
    if let Err(e) = append(&journal, &record) {
        eprintln!("WARNING: {}: {e}", journal.display());
    }
    for (n, r) in &results {
        match r {
            Ok(what) => println!("{n}: {} {what}", args.db),
            Err(e) => println!("{n}: {} {action} FAILED: {e}", args.db),
        }
    }
    Ok(if record.errors.is_empty() {
        Exit::Valid
    } else {
        Exit::Invalid
    })
}

fn given_options(args: &DbArgs) -> Result<DbOptions, Failure> {
    crate::plan::db_options_from(
        &args.db_opt,
        args.db_install.as_deref(),
        args.db_binary.as_deref(),
        args.read_mode.as_deref(),
    )
    .map_err(bad_input)
}

fn join(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints, per node, whether the database runs (its PIDs) and answers; exit 0 when it does
/// on every node.
fn status(cluster: &Cluster, db: &dyn Database) -> Exit {
    let nodes = cluster.nodes();
    let mut all = true;
    for r in cluster.on_nodes(&nodes, |n| {
        Ok(match db.pids(cluster, n) {
            Ok(p) if p.is_empty() => (false, "not running".to_string()),
            Ok(p) => match db.wait_ready(cluster, n, Duration::from_secs(2)) {
                Ok(()) => (true, format!("running (pid {}), answering", join(&p))),
                Err(e) => (
                    false,
                    format!("running (pid {}), NOT answering: {e}", join(&p)),
                ),
            },
            Err(e) => (false, format!("unknown: {e}")),
        })
    }) {
        let (ok, line) = r
            .result
            .unwrap_or_else(|e| (false, format!("unreachable: {e}")));
        all &= ok;
        println!("{}: {} {line}", r.node, db.name());
    }
    if all {
        Exit::Valid
    } else {
        Exit::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_install_or_start_gives_the_options() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.db.jsonl");
        assert_eq!(recorded_options(&path, "etcd"), None);
        let rec = |action: &str, db: &str, mode: &str| DbRecord {
            time: now(),
            pid: 1,
            event: "begin".into(),
            action: action.into(),
            db: db.into(),
            options: [("read-mode".to_string(), mode.to_string())].into(),
            errors: BTreeMap::new(),
        };
        append(&path, &rec("start", "etcd", "serializable")).expect("append");
        append(&path, &rec("install", "other", "x")).expect("append");
        append(&path, &rec("stop", "etcd", "linearizable")).expect("append");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{torn\n"))
            .expect("damage");
        let o = recorded_options(&path, "etcd").expect("recorded");
        assert_eq!(o["read-mode"], "serializable");
        // A line torn inside a multi-byte character used to end the reading there.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"db\":\"n\xc5\n"))
            .expect("damage");
        append(&path, &rec("start", "etcd", "linearizable")).expect("append");
        let o = recorded_options(&path, "etcd").expect("recorded");
        assert_eq!(o["read-mode"], "linearizable");
    }
}
