//! A campaign's results: one [`CellResult`] per cell, written as cells.json (read back by
//! `--compare` and `merge`), junit.xml (one test case per cell, a failure with the anomaly
//! summary for an invalid one) and summary.md.

use super::cells::Cell;
use crate::exit::Exit;
use crate::index::{Outcome, RunRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// What became of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Valid.
    Valid,
    /// Valid, but the run tested too little (test power).
    Weak,
    /// Invalid: a violation.
    Invalid,
    /// The checker could not decide.
    Unknown,
    /// The run failed before a verdict.
    Error,
    /// Not run (the campaign was interrupted first).
    NotRun,
}

impl Status {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Weak => "weak",
            Status::Invalid => "invalid",
            Status::Unknown => "unknown",
            Status::Error => "error",
            Status::NotRun => "not-run",
        }
    }
}

/// One cell's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// The cell's id.
    pub id: String,
    /// Its configuration (the id without the seed).
    pub config: String,
    /// Its seed.
    pub seed: u64,
    /// What became of it.
    pub status: Status,
    /// Its run's directory in the store, if one was made.
    pub dir: Option<String>,
    /// The checker's summary, or the error.
    pub summary: String,
    /// Anomalies by type.
    #[serde(default)]
    pub anomalies: BTreeMap<String, u64>,
    /// Why a valid verdict means less.
    #[serde(default)]
    pub weak: Vec<String>,
    /// How long the run took, in seconds.
    pub duration_s: Option<u64>,
}

impl CellResult {
    fn base(cell: &Cell, status: Status, summary: String) -> CellResult {
        CellResult {
            id: cell.id(),
            config: cell.config(),
            seed: cell.seed,
            status,
            dir: None,
            summary,
            anomalies: BTreeMap::new(),
            weak: Vec::new(),
            duration_s: None,
        }
    }

    /// A cell that was not run.
    pub fn not_run(cell: &Cell) -> CellResult {
        CellResult::base(cell, Status::NotRun, "not run: interrupted".into())
    }

    /// A cell whose run failed without a row in the index.
    pub fn failed(cell: &Cell, error: String) -> CellResult {
        CellResult::base(cell, Status::Error, error)
    }

    /// A cell from its run's row; `error` is the run's failure, if it failed.
    pub fn of_row(cell: &Cell, row: &RunRow, error: Option<String>) -> CellResult {
        let status = match row.outcome {
            Outcome::Valid if row.is_weak() => Status::Weak,
            Outcome::Valid => Status::Valid,
            Outcome::Invalid => Status::Invalid,
            Outcome::Unknown => Status::Unknown,
            Outcome::Error | Outcome::None => Status::Error,
        };
        let summary = match (&error, status) {
            (Some(e), Status::Error) => e.clone(),
            _ => row.summary.clone(),
        };
        CellResult {
            dir: Some(row.dir.clone()),
            anomalies: row.anomalies.clone(),
            weak: row.weak.clone(),
            duration_s: row.duration_s,
            ..CellResult::base(cell, status, summary)
        }
    }

    /// The anomalies as `G1c: 2, G2-item: 1`.
    pub fn anomaly_text(&self) -> String {
        self.anomalies
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Writes cells.json, junit.xml and summary.md into `dir`.
pub fn write(dir: &Path, id: &str, results: &[CellResult]) -> anyhow::Result<()> {
    std::fs::write(
        dir.join("cells.json"),
        serde_json::to_string_pretty(results)?,
    )?;
    std::fs::write(dir.join("junit.xml"), junit(id, results))?;
    std::fs::write(dir.join("summary.md"), summary(id, results))?;
    Ok(())
}

/// Reads a campaign directory's cells.json.
pub fn read(dir: &Path) -> anyhow::Result<Vec<CellResult>> {
    let path = dir.join("cells.json");
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The campaign's junit.xml: one test suite, one test case per cell.
pub fn junit(id: &str, results: &[CellResult]) -> String {
    let esc = crate::timeline::escape;
    let failures = results
        .iter()
        .filter(|r| r.status == Status::Invalid)
        .count();
    let errors = results
        .iter()
        .filter(|r| matches!(r.status, Status::Unknown | Status::Error | Status::NotRun))
        .count();
    let time: u64 = results.iter().filter_map(|r| r.duration_s).sum();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time}\">\n",
        esc(id),
        results.len()
    );
    for r in results {
        let _ = write!(
            out,
            "<testcase classname=\"{}\" name=\"{}\" time=\"{}\">",
            esc(&r.config),
            esc(&r.id),
            r.duration_s.unwrap_or(0)
        );
        let detail = format!("{} {}", r.summary, r.anomaly_text());
        let _ = match r.status {
            Status::Invalid => write!(
                out,
                "<failure message=\"{}\" type=\"invalid\">{}</failure>",
                esc(&r.anomaly_text()),
                esc(detail.trim())
            ),
            Status::Unknown | Status::Error | Status::NotRun => write!(
                out,
                "<error message=\"{}\" type=\"{}\">{}</error>",
                r.status.as_str(),
                r.status.as_str(),
                esc(&r.summary)
            ),
            Status::Weak => write!(
                out,
                "<system-out>valid, weak: {}</system-out>",
                esc(&r.weak.join("; "))
            ),
            Status::Valid => Ok(()),
        };
        if let Some(d) = &r.dir {
            let _ = write!(out, "<system-err>run: {}</system-err>", esc(d));
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite>\n</testsuites>\n");
    out
}

/// Counts of each status, in a fixed order, for people.
fn counts(results: &[CellResult]) -> String {
    let all = [
        Status::Invalid,
        Status::Unknown,
        Status::Error,
        Status::Weak,
        Status::NotRun,
        Status::Valid,
    ];
    all.iter()
        .filter_map(|s| {
            let n = results.iter().filter(|r| r.status == *s).count();
            (n > 0).then(|| format!("{n} {}", s.as_str()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The campaign's summary.md: counts, then a table of the cells, failures first.
pub fn summary(id: &str, results: &[CellResult]) -> String {
    let mut out = format!(
        "# Campaign {id}\n\n{} cells: {}\n\n| cell | verdict | anomalies | run | seconds |\n|---|---|---|---|---|\n",
        results.len(),
        counts(results)
    );
    let mut sorted: Vec<&CellResult> = results.iter().collect();
    sorted.sort_by_key(|r| (r.status == Status::Valid, r.status != Status::Invalid));
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    for r in sorted {
        let verdict = match r.status {
            Status::Weak => format!("weak: {}", r.weak.join("; ")),
            Status::Error | Status::NotRun => format!("{}: {}", r.status.as_str(), r.summary),
            s => s.as_str().to_string(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&r.id),
            cell(&verdict),
            cell(&r.anomaly_text()),
            r.dir.as_deref().map(cell).unwrap_or_default(),
            r.duration_s.map(|d| d.to_string()).unwrap_or_default()
        );
    }
    out
}

/// Prints the counts and where the files are; returns the campaign's exit.
pub fn print(results: &[CellResult], dir: &Path) -> Exit {
    eprintln!(
        "{} cells: {}; {}",
        results.len(),
        counts(results),
        dir.join("summary.md").display()
    );
    for r in results.iter().filter(|r| r.status == Status::Invalid) {
        eprintln!("  INVALID {}: {}", r.id, r.anomaly_text());
    }
    super::exit_of(results)
}
