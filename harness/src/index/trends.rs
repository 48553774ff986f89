//! Trends: the runs of each configuration (a matrix cell without its seed, [`RunRow::config`])
//! over time, and what they say. A configuration whose newest run is invalid after `n` valid
//! runs is a regression; one whose runs on one faultline version are both valid and invalid
//! is flaky; the others are steady. Pure: rows in, trends out.

use super::{Outcome, RunRow};
use std::collections::{BTreeMap, HashMap};

/// What a configuration's runs say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// The newest run is invalid and the `n` runs before it were valid.
    Regression,
    /// Valid and invalid runs on the same faultline version.
    Flaky,
    /// Neither.
    Steady,
}

impl Class {
    /// Its name on pages.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Regression => "regression",
            Class::Flaky => "flaky",
            Class::Steady => "steady",
        }
    }
}

/// One configuration's trend: its newest runs, its counts and its class.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    /// The configuration key.
    pub config: String,
    /// Its newest runs (all of them, or as many as asked for), oldest first.
    pub runs: Vec<RunRow>,
    /// How many runs it has in all.
    pub total: usize,
    /// Its runs by verdict.
    pub counts: BTreeMap<Outcome, usize>,
    /// What its runs say.
    pub class: Class,
}

impl Trend {
    /// The newest run.
    pub fn newest(&self) -> Option<&RunRow> {
        self.runs.last()
    }

    /// The run before the newest.
    pub fn before_newest(&self) -> Option<&RunRow> {
        self.runs.len().checked_sub(2).map(|i| &self.runs[i])
    }
}

/// What classification needs of a run: its verdict and the faultline version that ran it.
pub type Point<'a> = (Outcome, &'a str);

/// The class of one configuration's runs (oldest first), with `n` (at least 1) valid runs
/// before an invalid newest one making a regression. Valid counts weak runs: test power
/// doubts a verdict, it does not change it.
pub fn classify(runs: &[RunRow], n: usize) -> Class {
    let points: Vec<Point> = runs
        .iter()
        .map(|r| (r.outcome, r.faultline_version.as_str()))
        .collect();
    classify_points(&points, n)
}

/// [`classify`] on each run's verdict and version, oldest first.
pub fn classify_points(runs: &[Point], n: usize) -> Class {
    let n = n.max(1);
    if let Some(((newest, _), before)) = runs.split_last() {
        if *newest == Outcome::Invalid
            && before.len() >= n
            && before[before.len() - n..]
                .iter()
                .all(|(o, _)| *o == Outcome::Valid)
        {
            return Class::Regression;
        }
    }
    let mut by_version: HashMap<&str, (bool, bool)> = HashMap::new();
    for (outcome, version) in runs {
        let seen = by_version.entry(version).or_default();
        seen.0 |= *outcome == Outcome::Valid;
        seen.1 |= *outcome == Outcome::Invalid;
    }
    if by_version
        .values()
        .any(|(valid, invalid)| *valid && *invalid)
    {
        Class::Flaky
    } else {
        Class::Steady
    }
}

/// Orders trends: regressions first, then flaky ones, then the rest; within each, the
/// configuration with the newest run first.
pub fn sort(trends: &mut [Trend]) {
    trends.sort_by(|a, b| {
        let newest = |t: &Trend| t.newest().map(|r| (r.started.clone(), r.dir.clone()));
        a.class
            .cmp(&b.class)
            .then_with(|| newest(b).cmp(&newest(a)))
            .then_with(|| a.config.cmp(&b.config))
    });
}

/// The trends of `rows` (any order), every run kept, in [`sort`]'s order. Rows without a
/// configuration (checked histories without test.yaml) are left out.
pub fn trends(mut rows: Vec<RunRow>, n: usize) -> Vec<Trend> {
    rows.retain(|r| !r.config().is_empty());
    let mut keyed: Vec<(String, RunRow)> = rows.into_iter().map(|r| (r.config(), r)).collect();
    keyed.sort_by(|(ka, a), (kb, b)| (ka, &a.started, &a.dir).cmp(&(kb, &b.started, &b.dir)));
    let mut out: Vec<Trend> = Vec::new();
    for (config, row) in keyed {
        match out.last_mut() {
            Some(t) if t.config == config => t.runs.push(row),
            _ => out.push(Trend {
                config,
                runs: vec![row],
                total: 0,
                counts: BTreeMap::new(),
                class: Class::Steady,
            }),
        }
    }
    for t in &mut out {
        t.class = classify(&t.runs, n);
        t.total = t.runs.len();
        for r in &t.runs {
            *t.counts.entry(r.outcome).or_default() += 1;
        }
    }
    sort(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made row: configuration `mode`, started at minute `minute`.
    fn row(mode: &str, minute: u32, outcome: Outcome, version: &str) -> RunRow {
        RunRow {
            dir: format!("t/{mode}-{minute:04}"),
            test: "t".into(),
            started: format!("2026-12-01T10:{:02}:{:02}Z", minute / 60, minute % 60),
            db: "etcd".into(),
            options: BTreeMap::from([("read-mode".to_string(), mode.to_string())]),
            workload: "register".into(),
            nemesis: "partition".into(),
            seed: u64::from(minute),
            outcome,
            summary: String::new(),
            anomalies: BTreeMap::new(),
            weak: Vec::new(),
            duration_s: None,
            faultline_version: version.into(),
            campaign: None,
            cell: None,
        }
    }

    fn runs(outcomes: &[Outcome], version: &str) -> Vec<RunRow> {
        outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| row("m", i as u32, *o, version))
            .collect()
    }

    use Outcome::{Invalid as I, Unknown as U, Valid as V};

    #[test]
    fn an_invalid_run_after_n_valid_ones_is_a_regression() {
        assert_eq!(classify(&runs(&[V, V, V, I], "1"), 3), Class::Regression);
        assert_eq!(classify(&runs(&[I, V, V, V, I], "1"), 3), Class::Regression);
        // Too few valid runs before it for n = 3, enough for n = 2.
        assert_eq!(classify(&runs(&[V, V, I], "1"), 3), Class::Flaky);
        assert_eq!(classify(&runs(&[V, V, I], "1"), 2), Class::Regression);
        // An unknown among the last n is not valid.
        assert_eq!(classify(&runs(&[V, U, V, I], "1"), 3), Class::Flaky);
        // Newest valid: no regression, whatever came before.
        assert_eq!(classify(&runs(&[V, V, V, I, V], "1"), 3), Class::Flaky);
        // n = 0 means 1.
        assert_eq!(classify(&runs(&[I, V, I], "1"), 0), Class::Regression);
    }

    #[test]
    fn mixed_verdicts_are_flaky_only_on_one_version() {
        let mut across = runs(&[V, V], "1");
        across.extend(runs(&[I, I], "2"));
        assert_eq!(classify(&across, 3), Class::Steady);
        across.push(row("m", 9, V, "2"));
        assert_eq!(classify(&across, 3), Class::Flaky);
        assert_eq!(classify(&runs(&[I, I, I], "1"), 3), Class::Steady);
        assert_eq!(classify(&runs(&[V, U, V], "1"), 3), Class::Steady);
        assert_eq!(classify(&[], 3), Class::Steady);
    }

    #[test]
    fn trends_list_regressions_then_flaky_then_the_rest() {
        let mut rows = vec![
            row("steady-old", 1, V, "1"),
            row("steady-new", 50, V, "1"),
            row("flaky", 2, V, "1"),
            row("flaky", 3, I, "1"),
        ];
        for (i, o) in [V, V, V, I].into_iter().enumerate() {
            rows.push(row("regressed", 10 + i as u32, o, "1"));
        }
        rows.push(RunRow {
            db: String::new(),
            workload: String::new(),
            ..row("bare", 60, I, "")
        });
        rows.reverse();
        let t = trends(rows, 3);
        let order: Vec<(&str, Class, usize)> = t
            .iter()
            .map(|t| {
                (
                    t.runs[0].options["read-mode"].as_str(),
                    t.class,
                    t.runs.len(),
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                ("regressed", Class::Regression, 4),
                ("flaky", Class::Flaky, 2),
                ("steady-new", Class::Steady, 1),
                ("steady-old", Class::Steady, 1),
            ]
        );
        let regressed = &t[0];
        assert!(regressed
            .runs
            .windows(2)
            .all(|w| w[0].started < w[1].started));
        assert_eq!(regressed.newest().map(|r| r.seed), Some(13));
        assert_eq!(regressed.before_newest().map(|r| r.seed), Some(12));
        assert_eq!(regressed.total, 4);
        assert_eq!(
            regressed.counts,
            BTreeMap::from([(Outcome::Valid, 3), (Outcome::Invalid, 1)])
        );
    }
}
