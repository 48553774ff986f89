//! `/trends`: one line per configuration with its verdicts over time, a strip of its runs
//! (newest right, each a link to the run), regressions first (valid on the `n` runs before
//! the newest, `?n=`, 3 by default; the newest invalid), then flaky configurations (valid
//! and invalid on one faultline version), then the rest; filtered as the list is.

use super::html::{self, compare_link, escape, run_link, verdict, when};
use super::{blocking, open_index, PageError, Store};
use crate::index::query::Filter;
use crate::index::trends::{Class, Trend};
use crate::index::{Outcome, RunRow};
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use std::path::Path;

/// Valid runs before an invalid newest one that make a regression, unless `?n=` says.
pub const DEFAULT_N: usize = 3;

/// Runs drawn in a configuration's strip; older ones are counted.
pub const STRIP: usize = 60;

/// The trends page's query parameters.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TrendsQuery {
    db: Option<String>,
    workload: Option<String>,
    fault: Option<String>,
    verdict: Option<String>,
    n: Option<String>,
}

impl TrendsQuery {
    fn filter(&self) -> Filter {
        Filter {
            db: self.db.clone(),
            workload: self.workload.clone(),
            fault: self.fault.clone(),
            verdict: self.verdict.clone(),
            config: None,
        }
    }

    /// `n`, from 1 to 1000; anything else is [`DEFAULT_N`].
    fn n(&self) -> usize {
        self.n
            .as_deref()
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=1000).contains(n))
            .unwrap_or(DEFAULT_N)
    }
}

/// `GET /trends`.
pub async fn handler(State(store): State<Store>, Query(q): Query<TrendsQuery>) -> Response {
    blocking(move || trends_page(&store, &q)).await
}

/// The trends page of `store` for `q`.
pub fn trends_page(store: &Path, q: &TrendsQuery) -> Result<String, PageError> {
    let index = open_index(store)?;
    let filter = q.filter();
    let n = q.n();
    let all = index.trends(&filter, n, STRIP)?;
    let choices = index.choices()?;
    let n_text = n.to_string();
    let mut body = html::filter_form("/trends", &filter, &choices, &[("n", &n_text)]);
    let count = |c: Class| all.iter().filter(|t| t.class == c).count();
    body.push_str(&format!(
        "<p>{} configuration(s): {} regression(s) (invalid now, valid on the {n} run(s) before), \
         {} flaky (valid and invalid on one faultline version), {} steady. Oldest runs left, newest right.</p>",
        all.len(),
        count(Class::Regression),
        count(Class::Flaky),
        count(Class::Steady),
    ));
    if all.is_empty() {
        body.push_str("<p>No runs with a configuration match these filters.</p>");
    } else {
        body.push_str(
            "<table id=\"trends\"><tr><th></th><th>configuration</th><th>runs</th><th>verdicts over time</th><th>newest</th></tr>",
        );
        for t in &all {
            body.push_str(&line(t));
        }
        body.push_str("</table>");
    }
    Ok(html::page("faultline trends", &body))
}

/// One configuration's line.
fn line(t: &Trend) -> String {
    let counts = t
        .counts
        .iter()
        .map(|(o, k)| format!("{k} {}", o.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let runs_link = format!(
        "<a href=\"/{}\">{} run(s)</a>",
        escape(&html::query(&[("config", &t.config)])),
        t.total
    );
    let mut newest = String::new();
    if let Some(last) = t.newest() {
        let (class, text) = verdict(last);
        newest = format!(
            "<span class=\"{class}\">{text}</span> {}",
            escape(&when(&last.started))
        );
        if let Some(before) = t.before_newest() {
            newest.push_str(&format!(
                "<br><a href=\"{}\">compare with the run before</a>",
                compare_link(&before.dir, &last.dir)
            ));
        }
    }
    format!(
        "<tr class=\"trend {c}\"><td><span class=\"{c}\">{c}</span></td><td>{}</td><td>{runs_link}<br>{counts}</td><td class=\"strip\">{}</td><td>{newest}</td></tr>",
        escape(&t.config),
        strip(&t.runs, t.total),
        c = t.class.as_str(),
    )
}

/// The runs shown (the newest, oldest left) as coloured links, after how many older ones
/// there are of `total`.
fn strip(runs: &[RunRow], total: usize) -> String {
    let older = total.saturating_sub(runs.len());
    let mut h = String::new();
    if older > 0 {
        h.push_str(&format!("{older} older … "));
    }
    for r in runs {
        let class = match r.outcome {
            Outcome::Valid if r.is_weak() => "weak",
            o => o.as_str(),
        };
        let (_, text) = verdict(r);
        let title = format!(
            "{} seed {}: {text}{}{}",
            when(&r.started),
            r.seed,
            if r.summary.is_empty() { "" } else { ": " },
            r.summary
        );
        h.push_str(&format!(
            "<a class=\"{class}\" href=\"{}\" title=\"{}\"><span hidden>{}</span></a>",
            run_link(&r.dir),
            escape(&title),
            escape(text)
        ));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_defaults_to_three_and_is_bounded() {
        for (asked, n) in [(None, 3), (Some("5"), 5), (Some("0"), 3), (Some("-1"), 3)] {
            let q = TrendsQuery {
                n: asked.map(String::from),
                ..TrendsQuery::default()
            };
            assert_eq!(q.n(), n, "{asked:?}");
        }
    }
}
