//! What `serve` asks of the index: runs matching a [`Filter`], a page at a time, newest
//! first; every matching run for trends; a run's previous run of its configuration; and the
//! values the filters can take. Filters are SQL parameters, never pasted into the query.

use super::trends::{classify_points, sort, Point, Trend};
use super::{from_sql, Index, Outcome, RunRow, COLUMNS};
use rusqlite::{params_from_iter, OptionalExtension};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// Which runs to show: each field that is set (and not empty) must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Filter {
    /// The database, as test.yaml names it.
    pub db: Option<String>,
    /// The workload.
    pub workload: Option<String>,
    /// A fault kind among those the run mixed (`partition` matches `partition,kill`), or
    /// `none`.
    pub fault: Option<String>,
    /// The verdict: `valid`, `invalid`, `unknown`, `error`, `none`, or `weak` (valid with
    /// reasons to doubt it).
    pub verdict: Option<String>,
    /// The configuration key ([`RunRow::config`]).
    pub config: Option<String>,
}

impl Filter {
    /// The set fields, by name, non-empty ones only.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("db", &self.db),
            ("workload", &self.workload),
            ("fault", &self.fault),
            ("verdict", &self.verdict),
            ("config", &self.config),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect()
    }

    /// The SQL condition (`1` when nothing is set) and its parameters.
    fn condition(&self) -> (String, Vec<String>) {
        let mut terms = Vec::new();
        let mut values = Vec::new();
        for (field, value) in self.fields() {
            values.push(value.to_string());
            let n = values.len();
            terms.push(match (field, value) {
                ("fault", _) => {
                    format!("instr(',' || nemesis || ',', ',' || ?{n} || ',') > 0")
                }
                ("verdict", "weak") => {
                    values.pop();
                    "(verdict = 'valid' AND weak != '[]')".to_string()
                }
                ("verdict", _) => format!("verdict = ?{n}"),
                (column, _) => format!("{column} = ?{n}"),
            });
        }
        if terms.is_empty() {
            ("1".to_string(), values)
        } else {
            (terms.join(" AND "), values)
        }
    }
}

/// The values a filter can take in this index, each sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choices {
    /// Databases.
    pub dbs: Vec<String>,
    /// Workloads.
    pub workloads: Vec<String>,
    /// Fault kinds (each kind of every mix, and `none`).
    pub faults: Vec<String>,
}

impl Index {
    /// The runs matching `filter`, newest first (by start, then directory), skipping
    /// `offset` and at most `limit` of them; and how many match in all.
    pub fn page(
        &self,
        filter: &Filter,
        offset: u64,
        limit: u64,
    ) -> anyhow::Result<(Vec<RunRow>, u64)> {
        let (condition, values) = filter.condition();
        let total: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM runs WHERE {condition}"),
            params_from_iter(values.iter()),
            |r| r.get(0),
        )?;
        let sql = format!(
            "SELECT {COLUMNS} FROM runs WHERE {condition} \
             ORDER BY started DESC, dir DESC LIMIT {limit} OFFSET {offset}"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(values.iter()), from_sql)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((rows, total.max(0) as u64))
    }

    /// The trends of the runs matching `filter`, in [`trends::sort`]'s order: each
    /// configuration classified on every run's verdict and version (read from the
    /// `runs_config` index, not the table), with its newest `shown` runs read whole.
    pub fn trends(&self, filter: &Filter, n: usize, shown: usize) -> anyhow::Result<Vec<Trend>> {
        let (condition, values) = filter.condition();
        let mut groups: Vec<(String, Vec<(Outcome, String)>)> = Vec::new();
        {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT config, verdict, faultline_version FROM runs \
                 WHERE {condition} AND config != '' ORDER BY config, started, dir"
            ))?;
            let mut rows = stmt.query(params_from_iter(values.iter()))?;
            while let Some(r) = rows.next()? {
                let config: String = r.get(0)?;
                let point = (Outcome::parse(&r.get::<_, String>(1)?), r.get(2)?);
                match groups.last_mut() {
                    Some((c, points)) if *c == config => points.push(point),
                    _ => groups.push((config, vec![point])),
                }
            }
        }
        let mut newest = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM runs WHERE {condition} AND config = ?{} \
             ORDER BY started DESC, dir DESC LIMIT {shown}",
            values.len() + 1
        ))?;
        let mut out = Vec::with_capacity(groups.len());
        for (config, points) in groups {
            let borrowed: Vec<Point> = points.iter().map(|(o, v)| (*o, v.as_str())).collect();
            let mut counts = BTreeMap::new();
            for (o, _) in &points {
                *counts.entry(*o).or_default() += 1;
            }
            let params = values.iter().chain(std::iter::once(&config));
            let mut runs = newest
                .query_map(params_from_iter(params), from_sql)?
                .collect::<Result<Vec<_>, _>>()?;
            runs.reverse();
            out.push(Trend {
                class: classify_points(&borrowed, n),
                config,
                runs,
                total: points.len(),
                counts,
            });
        }
        sort(&mut out);
        Ok(out)
    }

    /// The directory of the run of `row`'s configuration that started just before it.
    pub fn previous(&self, row: &RunRow) -> anyhow::Result<Option<String>> {
        let config = row.config();
        if config.is_empty() {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row(
                "SELECT dir FROM runs WHERE config = ?1 AND (started < ?2 OR (started = ?2 AND dir < ?3)) \
                 ORDER BY started DESC, dir DESC LIMIT 1",
                rusqlite::params![config, row.started, row.dir],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The databases, workloads and fault kinds the index holds (one pass over the
    /// `runs_kind` index).
    pub fn choices(&self) -> anyhow::Result<Choices> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT db, workload, nemesis FROM runs WHERE db != ''")?;
        let mut rows = stmt.query([])?;
        let (mut dbs, mut workloads, mut faults) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        while let Some(r) = rows.next()? {
            dbs.insert(r.get::<_, String>(0)?);
            workloads.insert(r.get::<_, String>(1)?);
            for kind in r.get::<_, String>(2)?.split(',') {
                if !kind.trim().is_empty() {
                    faults.insert(kind.trim().to_string());
                }
            }
        }
        Ok(Choices {
            dbs: dbs.into_iter().collect(),
            workloads: workloads.into_iter().collect(),
            faults: faults.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::fake_run;
    use crate::index::Outcome;

    fn result(valid: bool) -> serde_json::Value {
        serde_json::json!({"valid": valid, "summary": "s", "anomalies": [], "power": {"weak": []}})
    }

    #[test]
    fn filters_pages_and_previous_runs() {
        let store = tempfile::tempdir().expect("tempdir");
        for (seed, mode, valid) in [
            (1, "linearizable", true),
            (2, "serializable", false),
            (3, "linearizable", true),
            (4, "serializable", true),
        ] {
            fake_run(store.path(), seed, mode, None, Some(result(valid)));
        }
        let index = Index::open_current(store.path()).expect("index");
        let (all, total) = index.page(&Filter::default(), 0, 10).expect("page");
        assert_eq!(total, 4);
        let newest_first: Vec<u64> = all.iter().map(|r| r.seed).collect();
        assert_eq!(newest_first, [4, 3, 2, 1]);
        let (two, total) = index.page(&Filter::default(), 1, 2).expect("page");
        assert_eq!((two.len(), total), (2, 4));
        assert_eq!(two[0].seed, 3);
        let invalid = Filter {
            verdict: Some("invalid".into()),
            ..Filter::default()
        };
        let (rows, total) = index.page(&invalid, 0, 10).expect("page");
        assert_eq!((rows[0].seed, total), (2, 1));
        let partition = Filter {
            fault: Some("partition".into()),
            db: Some("etcd".into()),
            workload: Some("register".into()),
            verdict: Some(String::new()),
            config: None,
        };
        assert_eq!(index.page(&partition, 0, 10).expect("page").1, 4);
        let kill = Filter {
            fault: Some("kill".into()),
            ..Filter::default()
        };
        assert_eq!(index.page(&kill, 0, 10).expect("page").1, 0);
        // A quote in a filter is a value, not SQL.
        let odd = Filter {
            db: Some("x' OR 1=1 --".into()),
            ..Filter::default()
        };
        assert_eq!(index.page(&odd, 0, 10).expect("page").1, 0);
        assert_eq!(
            index.previous(&all[0]).expect("previous").as_deref(),
            Some(all[2].dir.as_str())
        );
        assert_eq!(index.previous(&all[3]).expect("previous"), None);
        let config = Filter {
            config: Some(all[0].config()),
            ..Filter::default()
        };
        assert_eq!(index.page(&config, 0, 10).expect("page").1, 2);
        let choices = index.choices().expect("choices");
        assert_eq!(choices.dbs, ["etcd"]);
        assert_eq!(choices.faults, ["partition"]);
        let trends = index.trends(&Filter::default(), 1, 1).expect("trends");
        assert_eq!(trends.len(), 2);
        // Serializable: valid after invalid, flaky; linearizable: steady. One run shown.
        assert_eq!(trends[0].class, crate::index::trends::Class::Flaky);
        assert_eq!((trends[0].total, trends[0].runs.len()), (2, 1));
        assert_eq!(trends[0].runs[0].seed, 4);
        assert_eq!(trends[0].counts[&Outcome::Invalid], 1);
        assert_eq!(trends[1].runs[0].options["read-mode"], "linearizable");
        let invalid_only = index.trends(&invalid, 1, 5).expect("trends");
        assert_eq!(invalid_only.len(), 1);
        assert_eq!(invalid_only[0].total, 1);
    }

    #[test]
    fn sync_follows_the_directories() {
        let store = tempfile::tempdir().expect("tempdir");
        let first = fake_run(store.path(), 1, "linearizable", None, None);
        let mut index = Index::open_current(store.path()).expect("index");
        assert_eq!(index.rows().expect("rows")[0].outcome, Outcome::None);
        // The run finishes without recording itself (killed after writing its results).
        std::fs::write(first.join("results.json"), result(false).to_string()).expect("write");
        let second = fake_run(store.path(), 2, "linearizable", None, Some(result(true)));
        assert_eq!(index.sync().expect("sync"), (2, 0));
        let rows = index.rows().expect("rows");
        assert_eq!(
            rows.iter().map(|r| r.outcome).collect::<Vec<_>>(),
            [Outcome::Invalid, Outcome::Valid]
        );
        std::fs::remove_dir_all(&second).expect("remove");
        assert_eq!(index.sync().expect("sync"), (0, 1));
        assert_eq!(index.sync().expect("sync"), (0, 0));
        let (rebuilt, _) = crate::index::scan(store.path()).expect("scan");
        assert_eq!(index.rows().expect("rows"), rebuilt);
    }
}
