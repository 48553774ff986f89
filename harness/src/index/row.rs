//! What the index holds about one run, read from the run's directory alone (test.yaml,
//! results.json, junit.xml and the files' times), so that the index can always be rebuilt
//! from the store and a rebuilt row equals the one recorded when the run ended.

use crate::plan::TestPlan;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A run's verdict as the index records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Checked and valid (test power may still be weak: see [`RunRow::weak`]).
    Valid,
    /// Checked and invalid: the checker found a violation.
    Invalid,
    /// Checked, but the checker's budget ran out.
    Unknown,
    /// The run failed before it could be checked (its junit.xml says so).
    Error,
    /// No verdict: the run is still going, or was killed before it wrote one.
    None,
}

impl Outcome {
    /// The name stored in the index and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invalid => "invalid",
            Outcome::Unknown => "unknown",
            Outcome::Error => "error",
            Outcome::None => "none",
        }
    }

    /// The outcome named `s` (as [`Outcome::as_str`] writes it).
    pub fn parse(s: &str) -> Outcome {
        match s {
            "valid" => Outcome::Valid,
            "invalid" => Outcome::Invalid,
            "unknown" => Outcome::Unknown,
            "error" => Outcome::Error,
            _ => Outcome::None,
        }
    }
}

/// One run in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    /// The run's directory relative to the store (`TEST/TIME`), with `/` between parts.
    pub dir: String,
    /// The test's name.
    pub test: String,
    /// When the run started (RFC 3339, UTC), from test.yaml.
    pub started: String,
    /// The database as test.yaml names it (built-in name or definition path).
    pub db: String,
    /// The database's options as resolved (defaults included).
    pub options: BTreeMap<String, String>,
    /// The workload.
    pub workload: String,
    /// The fault kinds mixed (`none` for none).
    pub nemesis: String,
    /// The seed.
    pub seed: u64,
    /// The verdict.
    pub outcome: Outcome,
    /// The checker's one-line summary, or the error.
    pub summary: String,
    /// Anomalies found, by type, with their counts.
    pub anomalies: BTreeMap<String, u64>,
    /// Why a valid verdict means less (results.json's `power.weak`).
    pub weak: Vec<String>,
    /// From the start to the last file the run wrote, in seconds.
    pub duration_s: Option<u64>,
    /// The faultline version that ran it.
    pub faultline_version: String,
    /// The campaign it belongs to, if any.
    pub campaign: Option<String>,
    /// Its cell in that campaign.
    pub cell: Option<String>,
}

impl RunRow {
    /// The row of the run in `store`/`rel` (`rel` as `TEST/TIME`), or an error when its
    /// test.yaml cannot be read (not a run directory).
    /// A directory without test.yaml but with a history or results.json (what `faultline
    /// check --out` or `analyze` wrote) is a checked history: its row has no database,
    /// workload or faults, and its start is read from the directory's time stamp.
    pub fn from_dir(store: &Path, rel: &str) -> anyhow::Result<RunRow> {
        let dir = store.join(rel);
        if !dir.join("test.yaml").exists() {
            return checked_history(store, rel);
        }
        let plan = TestPlan::load(&dir)?;
        let results = read_results(&dir)?;
        let (outcome, summary, anomalies, weak) = verdict_fields(&dir, results.as_ref());
        let (campaign, cell) = match &plan.campaign {
            Some(c) => (Some(c.id.clone()), Some(c.cell.clone())),
            None => (None, None),
        };
        Ok(RunRow {
            dir: rel.to_string(),
            test: plan.name.clone(),
            duration_s: duration(&dir, &plan.started),
            started: plan.started,
            db: plan.db,
            options: plan.db_options,
            workload: plan.workload,
            nemesis: plan.nemesis,
            seed: plan.seed,
            outcome,
            summary,
            anomalies,
            weak,
            faultline_version: plan.faultline_version,
            campaign,
            cell,
        })
    }

    /// The configuration: the run's matrix cell without its seed (database, options,
    /// workload, faults), as trends group runs.
    /// Empty for a checked history without test.yaml, which has no configuration.
    pub fn config(&self) -> String {
        if self.db.is_empty() && self.workload.is_empty() {
            return String::new();
        }
        config_key(&self.db, &self.options, &self.workload, &self.nemesis)
    }

    /// Valid with reasons to doubt it (test power).
    pub fn is_weak(&self) -> bool {
        self.outcome == Outcome::Valid && !self.weak.is_empty()
    }
}

/// The row of a directory holding a history or results.json but no test.yaml.
fn checked_history(store: &Path, rel: &str) -> anyhow::Result<RunRow> {
    let dir = store.join(rel);
    let results = read_results(&dir)?;
    if results.is_none() && !dir.join("history.jsonl").is_file() {
        return Err(anyhow::anyhow!(
            "{}: no test.yaml, history.jsonl or results.json",
            dir.display()
        ));
    }
    let (test, stamp) = rel.split_once('/').unwrap_or((rel, ""));
    let started = started_from_stamp(stamp)
        .or_else(|| {
            let modified = std::fs::metadata(dir.join("history.jsonl"))
                .or_else(|_| std::fs::metadata(dir.join("results.json")))
                .and_then(|m| m.modified())
                .ok()?;
            Some(humantime::format_rfc3339_seconds(modified).to_string())
        })
        .unwrap_or_default();
    let (outcome, summary, anomalies, weak) = verdict_fields(&dir, results.as_ref());
    Ok(RunRow {
        dir: rel.to_string(),
        test: test.to_string(),
        duration_s: duration(&dir, &started),
        started,
        db: String::new(),
        options: BTreeMap::new(),
        workload: String::new(),
        nemesis: String::new(),
        seed: 0,
        outcome,
        summary,
        anomalies,
        weak,
        faultline_version: String::new(),
        campaign: None,
        cell: None,
    })
}

/// The verdict, summary, anomaly counts and weak reasons of a run directory, from its
/// results.json when it has one, else from its junit.xml.
fn verdict_fields(
    dir: &Path,
    results: Option<&serde_json::Value>,
) -> (Outcome, String, BTreeMap<String, u64>, Vec<String>) {
    match results {
        Some(doc) => (
            verdict_of(doc),
            doc["summary"].as_str().unwrap_or_default().to_string(),
            anomaly_counts(doc),
            weak_reasons(doc),
        ),
        None if junit_says_error(dir) => (
            Outcome::Error,
            "the run failed before it was checked (see faultline.log)".to_string(),
            BTreeMap::new(),
            Vec::new(),
        ),
        None => (Outcome::None, String::new(), BTreeMap::new(), Vec::new()),
    }
}

/// `20261201T084750` (maybe with `-N`), as the store names run directories, as RFC 3339:
/// `2026-12-01T08:47:50Z`.
pub fn started_from_stamp(stamp: &str) -> Option<String> {
    let b = stamp.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if b.len() < 15 || b[8] != b'T' || !digits(0..8) || !digits(9..15) {
        return None;
    }
    let text = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    humantime::parse_rfc3339(&text).ok().map(|_| text)
}

/// The configuration key of a database, its options, a workload and a fault mix:
/// `etcd read-mode=serializable / register / partition`.
pub fn config_key(
    db: &str,
    options: &BTreeMap<String, String>,
    workload: &str,
    nemesis: &str,
) -> String {
    let mut out = db.to_string();
    for (k, v) in options {
        out.push_str(&format!(" {k}={v}"));
    }
    format!("{out} / {workload} / {nemesis}")
}

/// results.json as JSON, if the run wrote it.
fn read_results(dir: &Path) -> anyhow::Result<Option<serde_json::Value>> {
    let path = dir.join("results.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("{}", path.display())),
    }
}

fn verdict_of(doc: &serde_json::Value) -> Outcome {
    match &doc["valid"] {
        serde_json::Value::Bool(true) => Outcome::Valid,
        serde_json::Value::Bool(false) => Outcome::Invalid,
        _ => Outcome::Unknown,
    }
}

/// Anomaly counts by type from a checker's document: a transactional checker's
/// `anomalies` map (type to list), a linearizability checker's failing keys
/// (`nonlinearizable`), a set checker's lost and unexpected elements.
pub fn anomaly_counts(doc: &serde_json::Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let len = |v: &serde_json::Value| match v {
        serde_json::Value::Array(a) => a.len() as u64,
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        serde_json::Value::Object(o) => o.len() as u64,
        _ => 0,
    };
    match &doc["anomalies"] {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone(), len(v));
            }
        }
        serde_json::Value::Array(keys) if !keys.is_empty() => {
            out.insert("nonlinearizable".to_string(), keys.len() as u64);
        }
        _ => {}
    }
    for key in ["lost", "unexpected", "failed_but_present"] {
        let n = len(&doc[key]);
        if n > 0 {
            out.insert(key.to_string(), n);
        }
    }
    out.retain(|_, n| *n > 0);
    out
}

fn weak_reasons(doc: &serde_json::Value) -> Vec<String> {
    doc["power"]["weak"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the run's junit.xml records an error (a run that failed after its history began).
fn junit_says_error(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("junit.xml"))
        .map(|t| t.contains("type=\"error\""))
        .unwrap_or(false)
}

/// Seconds from `started` to the newest of the files a run writes last.
fn duration(dir: &Path, started: &str) -> Option<u64> {
    let start = humantime::parse_rfc3339(started).ok()?;
    let end = ["junit.xml", "results.json", "history.jsonl", "test.yaml"]
        .iter()
        .filter_map(|f| {
            std::fs::metadata(dir.join(f))
                .and_then(|m| m.modified())
                .ok()
        })
        .max()?;
    Some(end.duration_since(start).map(|d| d.as_secs()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomalies_are_counted_by_type() {
        let txn = serde_json::json!({"valid": false, "anomalies": {"G0": [1, 2], "G1c": [3]}});
        assert_eq!(
            anomaly_counts(&txn),
            BTreeMap::from([("G0".to_string(), 2), ("G1c".to_string(), 1)])
        );
        let lin = serde_json::json!({"valid": false, "anomalies": [{"key": 1}, {"key": 2}]});
        assert_eq!(
            anomaly_counts(&lin),
            BTreeMap::from([("nonlinearizable".to_string(), 2)])
        );
        let set = serde_json::json!({"valid": false, "lost": [4], "unexpected": []});
        assert_eq!(
            anomaly_counts(&set),
            BTreeMap::from([("lost".to_string(), 1)])
        );
        assert!(anomaly_counts(&serde_json::json!({"valid": true, "anomalies": []})).is_empty());
    }
}
