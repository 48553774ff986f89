//! A cluster's database journal (`$FAULTLINE_HOME/journal/NAME.db.jsonl`, beside its fault
//! journal): every change to its database by `faultline db` (install, start, stop, wipe) and
//! every test run's set-up (journaled as a `start`), each as a `begin` line with the database
//! and its resolved options before anything changes and a `done` line with each node's error
//! after. The options of the last install or start are those later `db` commands,
//! `nemesis kill|pause --db` and heal open the database with when none are given.

use clusters::ClusterFile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use workloads::DbOptions;

/// A change to a cluster's database, as `faultline db` names it and the journal records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbAction {
    /// Install it on every node.
    Install,
    /// Configure and start it where it is not running, then wait until every node serves.
    Start,
    /// Stop it (SIGKILL).
    Stop,
    /// Stop it and remove its data and logs.
    Wipe,
}

impl DbAction {
    /// The action as `faultline db` and the journal name it.
    pub fn as_str(self) -> &'static str {
        match self {
            DbAction::Install => "install",
            DbAction::Start => "start",
            DbAction::Stop => "stop",
            DbAction::Wipe => "wipe",
        }
    }
}

/// Whether a journal line was written before the change or after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbEvent {
    /// Before anything changes.
    Begin,
    /// After, with each node's error.
    Done,
}

/// One line of a cluster's database journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbRecord {
    /// Wall-clock time, RFC 3339.
    pub time: String,
    /// The faultline process that wrote it.
    pub pid: u32,
    /// `begin` (before anything changes) or `done`.
    pub event: DbEvent,
    /// install, start, stop or wipe.
    pub action: DbAction,
    /// The database.
    pub db: String,
    /// Its resolved options.
    pub options: DbOptions,
    /// Per-node errors (on `done` lines).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, String>,
}

impl DbRecord {
    /// A `begin` line of `action` on database `db` (as [`source_db`] names it), now, by this
    /// process.
    pub fn begin(action: DbAction, db: &str, options: &DbOptions) -> DbRecord {
        DbRecord {
            time: now(),
            pid: std::process::id(),
            event: DbEvent::Begin,
            action,
            db: db.into(),
            options: options.clone(),
            errors: BTreeMap::new(),
        }
    }

    /// The `done` line that follows this one, with the nodes' `errors`.
    pub fn done(&self, errors: BTreeMap<String, String>) -> DbRecord {
        DbRecord {
            time: now(),
            event: DbEvent::Done,
            errors,
            ..self.clone()
        }
    }
}

/// The database journal of the cluster `file` describes.
pub fn path(file: &ClusterFile) -> PathBuf {
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
        .find(|r| r.db == db && matches!(r.action, DbAction::Install | DbAction::Start))
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
    event: DbEvent,
    db: &str,
    options: &DbOptions,
    error: Option<&str>,
) -> std::io::Result<()> {
    let record = DbRecord {
        event,
        errors: error
            .map(|e| [("*".to_string(), e.to_string())].into())
            .unwrap_or_default(),
        ..DbRecord::begin(DbAction::Start, db, options)
    };
    append(&path(file), &record)
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_install_or_start_gives_the_options() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.db.jsonl");
        assert_eq!(recorded_options(&path, "etcd"), None);
        let rec = |action: DbAction, db: &str, mode: &str| {
            DbRecord::begin(
                action,
                db,
                &[("read-mode".to_string(), mode.to_string())].into(),
            )
        };
        append(&path, &rec(DbAction::Start, "etcd", "serializable")).expect("append");
        append(&path, &rec(DbAction::Install, "other", "x")).expect("append");
        append(&path, &rec(DbAction::Stop, "etcd", "linearizable")).expect("append");
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
        append(&path, &rec(DbAction::Start, "etcd", "linearizable")).expect("append");
        let o = recorded_options(&path, "etcd").expect("recorded");
        assert_eq!(o["read-mode"], "linearizable");
    }

    #[test]
    fn records_keep_the_journal_format() {
        let begin = DbRecord::begin(DbAction::Wipe, "etcd", &DbOptions::new());
        let line = serde_json::to_value(&begin).expect("json");
        assert_eq!(line["event"], "begin");
        assert_eq!(line["action"], "wipe");
        assert!(line.get("errors").is_none(), "{line}");
        let done = begin.done([("n1".to_string(), "boom".to_string())].into());
        let line = serde_json::to_value(&done).expect("json");
        assert_eq!(line["event"], "done");
        assert_eq!(line["errors"]["n1"], "boom");
        assert_eq!(begin.pid, done.pid);
    }
}
