//! `/`: the runs of the store from its index, newest first, filtered by database, workload,
//! fault, verdict or configuration (query parameters), [`PAGE_SIZE`] at a time (`page`), each
//! with its verdict, summary and links: its files, and the comparison with the previous run
//! of its configuration.

use super::html::{self, compare_link, escape, run_link, verdict, when};
use super::{blocking, open_index, PageError, Store};
use crate::index::query::Filter;
use crate::index::RunRow;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use std::path::Path;

/// Runs on one page.
pub const PAGE_SIZE: u64 = 100;

/// The list's query parameters.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    db: Option<String>,
    workload: Option<String>,
    fault: Option<String>,
    verdict: Option<String>,
    config: Option<String>,
    page: Option<String>,
}

impl ListQuery {
    fn filter(&self) -> Filter {
        Filter {
            db: self.db.clone(),
            workload: self.workload.clone(),
            fault: self.fault.clone(),
            verdict: self.verdict.clone(),
            config: self.config.clone(),
        }
    }

    /// The page asked for, from 1; anything else is the first.
    fn page(&self) -> u64 {
        self.page
            .as_deref()
            .and_then(|p| p.parse::<u64>().ok())
            .filter(|p| (1..=u64::MAX / PAGE_SIZE).contains(p))
            .unwrap_or(1)
    }
}

/// `GET /`.
pub async fn handler(State(store): State<Store>, Query(q): Query<ListQuery>) -> Response {
    blocking(move || list_page(&store, &q)).await
}

/// The list page of `store` for `q`.
pub fn list_page(store: &Path, q: &ListQuery) -> Result<String, PageError> {
    let index = open_index(store)?;
    let filter = q.filter();
    let page = q.page();
    let (rows, total) = index.page(&filter, (page - 1) * PAGE_SIZE, PAGE_SIZE)?;
    let previous = rows
        .iter()
        .map(|r| index.previous(r))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let choices = index.choices()?;
    let mut body = html::filter_form("/", &filter, &choices, &[]);
    let filtered = if filter.fields().is_empty() {
        String::new()
    } else {
        " matching the filters".to_string()
    };
    body.push_str(&format!(
        "<p>{total} run(s){filtered} in <code>{}</code>, newest first.</p>",
        escape(&store.display().to_string())
    ));
    if rows.is_empty() {
        body.push_str(if filtered.is_empty() {
            "<p>No runs yet: <code>faultline test --store DIR ...</code> makes them.</p>"
        } else {
            "<p>No run matches these filters.</p>"
        });
    } else {
        body.push_str(&table(store, &rows, &previous));
        body.push_str(&pager(&filter, page, total));
    }
    Ok(html::page("faultline runs", &body))
}

/// The runs' table.
fn table(store: &Path, rows: &[RunRow], previous: &[Option<String>]) -> String {
    let mut h = String::from(
        "<table><tr><th>started</th><th>test</th><th>configuration</th><th>seed</th>\
         <th>verdict</th><th>summary</th><th>open</th></tr>",
    );
    for (r, prev) in rows.iter().zip(previous) {
        let base = run_link(&r.dir);
        let mut links = Vec::new();
        for (file, label) in [
            ("report.html", "report"),
            ("timeline.html", "timeline"),
            ("history.jsonl", "history"),
        ] {
            if store.join(&r.dir).join(file).is_file() {
                links.push(format!("<a href=\"{base}{file}\">{label}</a>"));
            }
        }
        links.push(format!("<a href=\"{base}\">files</a>"));
        if let Some(prev) = prev {
            links.push(format!(
                "<a href=\"{}\">compare with previous</a>",
                compare_link(prev, &r.dir)
            ));
        }
        let config = r.config();
        let config_cell = if config.is_empty() {
            String::new()
        } else {
            format!(
                "<a href=\"/{}\">{}</a>",
                escape(&html::query(&[("config", &config)])),
                escape(&config)
            )
        };
        let (class, text) = verdict(r);
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{config_cell}</td><td>{}</td><td class=\"{class}\">{text}</td><td>{}</td><td>{}</td></tr>",
            escape(&when(&r.started)),
            escape(&r.test),
            if config.is_empty() { String::new() } else { r.seed.to_string() },
            summary(r),
            links.join(" · ")
        ));
    }
    h.push_str("</table>");
    h
}

/// A run's summary, anomaly counts and reasons to doubt a valid verdict.
pub fn summary(r: &RunRow) -> String {
    let mut h = escape(&r.summary);
    if !r.anomalies.is_empty() {
        let counts: Vec<String> = r
            .anomalies
            .iter()
            .map(|(k, n)| format!("{} × {n}", escape(k)))
            .collect();
        h.push_str(&format!("<br>anomalies: {}", counts.join(", ")));
    }
    if r.is_weak() {
        h.push_str(&format!(
            "<br><span class=\"weak\">weak: {}</span>",
            escape(&r.weak.join("; "))
        ));
    }
    h
}

/// Links to the other pages of the same filters.
fn pager(filter: &Filter, page: u64, total: u64) -> String {
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    if pages == 1 {
        return String::new();
    }
    let link = |p: u64, label: &str| {
        let p = p.to_string();
        let mut pairs = filter.fields();
        pairs.push(("page", &p));
        format!("<a href=\"/{}\">{label}</a>", escape(&html::query(&pairs)))
    };
    let mut parts = Vec::new();
    if page > 1 {
        parts.push(link(1, "first"));
        parts.push(link(page - 1, "newer"));
    }
    parts.push(format!("page {page} of {pages}"));
    if page < pages {
        parts.push(link(page + 1, "older"));
        parts.push(link(pages, "last"));
    }
    format!("<p>{}</p>", parts.join(" · "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_page_numbers_are_the_first_page() {
        for (asked, page) in [(None, 1), (Some("3"), 3), (Some("0"), 1), (Some("x"), 1)] {
            let q = ListQuery {
                page: asked.map(String::from),
                ..ListQuery::default()
            };
            assert_eq!(q.page(), page, "{asked:?}");
        }
        let huge = ListQuery {
            page: Some(u64::MAX.to_string()),
            ..ListQuery::default()
        };
        assert_eq!(huge.page(), 1);
    }

    #[test]
    fn the_pager_keeps_the_filters() {
        let filter = Filter {
            db: Some("etcd".into()),
            ..Filter::default()
        };
        let p = pager(&filter, 2, 250);
        assert!(p.contains("page 2 of 3"), "{p}");
        assert!(p.contains("href=\"/?db=etcd&amp;page=3\""), "{p}");
        assert!(p.contains("href=\"/?db=etcd&amp;page=1\""), "{p}");
        assert_eq!(pager(&filter, 1, 100), "");
    }
}
