//! The store's index: `STORE/index.sqlite`, one row per run ([`RunRow`]), written in one
//! transaction as each run ends and rebuildable from the run directories at any time
//! (`faultline index rebuild`), which are the truth: a row is only ever what
//! [`RunRow::from_dir`] reads from its directory. Readers bring it up to date first
//! ([`Index::open_current`]: a made or outdated index is filled, runs added to or removed
//! from the store are noticed from the directories' listings). [`query`] serves `serve`'s
//! pages, [`trends`] classifies configurations.
//!
//! SQLite in WAL mode with `synchronous=NORMAL`: a committed row survives the writer being
//! killed (SIGKILL), and readers (`serve`) never block the writer. Several processes may
//! record at once (parallel campaign cells); each waits for the others' short transactions.

pub mod query;
pub mod row;
pub mod trends;

pub use row::{Outcome, RunRow};

use anyhow::{anyhow, Context};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The index's file name in the store.
pub const FILE: &str = "index.sqlite";

/// The schema's version (`PRAGMA user_version`); an index of another version is rebuilt.
const VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    dir TEXT PRIMARY KEY,
    test TEXT NOT NULL,
    started TEXT NOT NULL,
    db TEXT NOT NULL,
    options TEXT NOT NULL,
    workload TEXT NOT NULL,
    nemesis TEXT NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,
    verdict TEXT NOT NULL,
    summary TEXT NOT NULL,
    anomalies TEXT NOT NULL,
    weak TEXT NOT NULL,
    duration_s INTEGER,
    faultline_version TEXT NOT NULL,
    campaign TEXT,
    cell TEXT
);
CREATE INDEX IF NOT EXISTS runs_config ON runs (config, started, dir, verdict, faultline_version);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started, dir);
CREATE INDEX IF NOT EXISTS runs_kind ON runs (db, workload, nemesis);
CREATE INDEX IF NOT EXISTS runs_verdict ON runs (verdict, dir);
CREATE INDEX IF NOT EXISTS runs_campaign ON runs (campaign, cell);
";

const COLUMNS: &str =
    "dir, test, started, db, options, workload, nemesis, seed, verdict, summary, \
     anomalies, weak, duration_s, faultline_version, campaign, cell";

/// An open index.
pub struct Index {
    conn: Connection,
    store: PathBuf,
}

impl Index {
    /// Opens (or makes) the index of `store`, in WAL mode.
    pub fn open(store: &Path) -> anyhow::Result<Index> {
        let path = store.join(FILE);
        let conn = Connection::open(&path).with_context(|| format!("{}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(anyhow!("{}: cannot use WAL mode ({mode})", path.display()));
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != VERSION {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; DROP TABLE IF EXISTS runs; {SCHEMA} PRAGMA user_version = {VERSION}; COMMIT;"
            ))
            .with_context(|| format!("{}: making the schema", path.display()))?;
        }
        Ok(Index {
            conn,
            store: store.to_path_buf(),
        })
    }

    /// Records `row` (replacing the run's earlier row), in one transaction.
    pub fn record(&mut self, row: &RunRow) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        insert(&tx, row)?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces every row by those read from the store's run directories, in one
    /// transaction: readers see the old index or the new one, never a mix. Returns the
    /// number of runs and the directories that could not be read, with why.
    pub fn rebuild(&mut self) -> anyhow::Result<(usize, Vec<String>)> {
        let (rows, skipped) = scan(&self.store)?;
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM runs", [])?;
        for row in &rows {
            insert(&tx, row)?;
        }
        tx.commit()?;
        Ok((rows.len(), skipped))
    }

    /// Opens the index of `store` and brings it up to date with the run directories
    /// ([`Index::sync`]): what `serve` reads before each page.
    pub fn open_current(store: &Path) -> anyhow::Result<Index> {
        let mut index = Index::open(store)?;
        index.sync()?;
        Ok(index)
    }

    /// Brings the index up to date with the store's run directories without reading the
    /// runs it already has: a directory not in the index is read and recorded (a run copied
    /// in, made by a faultline without the index, or an index just made), a row whose
    /// directory is gone is removed, and a run without a verdict is read again once its
    /// results.json or junit.xml exists (a run killed before it recorded itself). The
    /// directories are listed, not read, so this costs one listing per test at 10,000 runs.
    /// A results.json changed in place is not noticed: `faultline index rebuild` reads all.
    /// Returns the rows added or replaced and the rows removed.
    pub fn sync(&mut self) -> anyhow::Result<(usize, usize)> {
        let on_disk: HashSet<String> = candidate_dirs(&self.store)?.into_iter().collect();
        let dirs = |sql: &str| -> anyhow::Result<HashSet<String>> {
            let mut stmt = self.conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        // Both read an index alone, not the table.
        let indexed = dirs("SELECT dir FROM runs")?;
        let verdictless = dirs("SELECT dir FROM runs WHERE verdict = 'none'")?;
        let mut fresh = Vec::new();
        for rel in &on_disk {
            let dir = self.store.join(rel);
            let reread = if !indexed.contains(rel) {
                is_run_dir(&dir)
            } else {
                verdictless.contains(rel)
                    && ["results.json", "junit.xml"]
                        .iter()
                        .any(|f| dir.join(f).is_file())
            };
            if reread {
                // A directory being written, or unreadable: tried again next time.
                if let Ok(row) = RunRow::from_dir(&self.store, rel) {
                    fresh.push(row);
                }
            }
        }
        let gone: Vec<&String> = indexed.iter().filter(|d| !on_disk.contains(*d)).collect();
        if fresh.is_empty() && gone.is_empty() {
            return Ok((0, 0));
        }
        let tx = self.conn.transaction()?;
        for dir in &gone {
            tx.execute("DELETE FROM runs WHERE dir = ?1", params![dir])?;
        }
        for row in &fresh {
            insert(&tx, row)?;
        }
        tx.commit()?;
        Ok((fresh.len(), gone.len()))
    }

    /// Every row, oldest first (by start, then directory).
    pub fn rows(&self) -> anyhow::Result<Vec<RunRow>> {
        self.select("1 ORDER BY started, dir", params![])
    }

    /// The rows of one campaign, oldest first.
    pub fn campaign(&self, id: &str) -> anyhow::Result<Vec<RunRow>> {
        self.select("campaign = ?1 ORDER BY started, dir", params![id])
    }

    /// The newest run of `cell` in campaign `id`.
    pub fn cell(&self, id: &str, cell: &str) -> anyhow::Result<Option<RunRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM runs WHERE campaign = ?1 AND cell = ?2 ORDER BY started DESC, dir DESC LIMIT 1"
        );
        Ok(self
            .conn
            .query_row(&sql, params![id, cell], from_sql)
            .optional()?)
    }

    /// Rows matching an SQL condition (with its ORDER BY), with parameters.
    pub fn select(
        &self,
        condition: &str,
        params: impl rusqlite::Params,
    ) -> anyhow::Result<Vec<RunRow>> {
        let sql = format!("SELECT {COLUMNS} FROM runs WHERE {condition}");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params, from_sql)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Records many rows in one transaction (for tests and benchmarks of large stores).
    pub fn record_all(&mut self, rows: &[RunRow]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        for row in rows {
            insert(&tx, row)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Records the run in `dir` (a directory inside `store`) in the store's index: what a run
/// does as it ends.
pub fn record_run(store: &Path, dir: &Path) -> anyhow::Result<()> {
    let rel = relative(store, dir)?;
    let row = RunRow::from_dir(store, &rel)?;
    Index::open(store)?.record(&row)
}

/// `dir` relative to `store`, with `/` between its parts.
fn relative(store: &Path, dir: &Path) -> anyhow::Result<String> {
    let rel = dir
        .strip_prefix(store)
        .map_err(|_| anyhow!("{} is not inside {}", dir.display(), store.display()))?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Ok(parts.join("/"))
}

/// The run directories of a store ([`run_dirs`]), with their rows, sorted by directory; and those whose
/// test.yaml or results.json could not be read.
pub fn scan(store: &Path) -> anyhow::Result<(Vec<RunRow>, Vec<String>)> {
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for rel in run_dirs(store)? {
        match RunRow::from_dir(store, &rel) {
            Ok(row) => rows.push(row),
            Err(e) => skipped.push(format!("{rel}: {e:#}")),
        }
    }
    Ok((rows, skipped))
}

/// The files that make a directory `TEST/TIME` a run: its plan, or for a history checked
/// with `faultline check --out`, the history or its results.
pub const RUN_FILES: [&str; 3] = ["test.yaml", "history.jsonl", "results.json"];

/// Whether `dir` holds one of [`RUN_FILES`].
pub fn is_run_dir(dir: &Path) -> bool {
    RUN_FILES.iter().any(|f| dir.join(f).is_file())
}

/// The directories `TEST/TIME` of a store that hold one of [`RUN_FILES`], sorted.
pub fn run_dirs(store: &Path) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = candidate_dirs(store)?
        .into_iter()
        .filter(|rel| is_run_dir(&store.join(rel)))
        .collect();
    out.sort();
    Ok(out)
}

/// Every directory `TEST/TIME` of a store (symbolic links such as `latest` are not
/// followed), from the directories' listings alone: no file in them is looked at.
pub fn candidate_dirs(store: &Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let tests = std::fs::read_dir(store).with_context(|| format!("reading {}", store.display()))?;
    for test in tests.flatten() {
        if !test.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let Ok(runs) = std::fs::read_dir(test.path()) else {
            continue;
        };
        let test_name = test.file_name().to_string_lossy().into_owned();
        for run in runs.flatten() {
            if run.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(format!("{test_name}/{}", run.file_name().to_string_lossy()));
            }
        }
    }
    Ok(out)
}

fn insert(tx: &rusqlite::Transaction<'_>, row: &RunRow) -> anyhow::Result<()> {
    tx.execute(
        &format!(
            "INSERT OR REPLACE INTO runs ({COLUMNS}, config) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
        ),
        params![
            row.dir,
            row.test,
            row.started,
            row.db,
            serde_json::to_string(&row.options)?,
            row.workload,
            row.nemesis,
            row.seed as i64,
            row.outcome.as_str(),
            row.summary,
            serde_json::to_string(&row.anomalies)?,
            serde_json::to_string(&row.weak)?,
            row.duration_s.map(|d| d as i64),
            row.faultline_version,
            row.campaign,
            row.cell,
            row.config(),
        ],
    )?;
    Ok(())
}

fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    let json = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    let bad = |i: usize, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    };
    let options = serde_json::from_str(&json(4)?).map_err(|e| bad(4, e))?;
    let anomalies = serde_json::from_str(&json(10)?).map_err(|e| bad(10, e))?;
    let weak = serde_json::from_str(&json(11)?).map_err(|e| bad(11, e))?;
    Ok(RunRow {
        dir: r.get(0)?,
        test: r.get(1)?,
        started: r.get(2)?,
        db: r.get(3)?,
        options,
        workload: r.get(5)?,
        nemesis: r.get(6)?,
        seed: r.get::<_, i64>(7)? as u64,
        outcome: Outcome::parse(&r.get::<_, String>(8)?),
        summary: r.get(9)?,
        anomalies,
        weak,
        duration_s: r.get::<_, Option<i64>>(12)?.map(|d| d as u64),
        faultline_version: r.get(13)?,
        campaign: r.get(14)?,
        cell: r.get(15)?,
    })
}

#[cfg(test)]
mod tests;
