//! `/compare?a=RUN&b=RUN`: two runs of the store side by side: their verdicts, their plans
//! (test.yaml key by key, differing keys marked), anomaly counts by type, and the throughput
//! and test power figures their results.json holds.

use super::files::resolve;
use super::html::{self, escape, run_link, verdict, when};
use super::list::summary;
use super::{blocking, PageError, Store};
use crate::index::{is_run_dir, RunRow};
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The compare page's query parameters: the two runs' directories in the store.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CompareQuery {
    a: Option<String>,
    b: Option<String>,
}

/// `GET /compare`.
pub async fn handler(State(store): State<Store>, Query(q): Query<CompareQuery>) -> Response {
    blocking(move || compare_page(&store, &q)).await
}

/// One run of the comparison.
struct Side {
    row: RunRow,
    /// test.yaml flattened: `db-options.read-mode` to its value.
    plan: BTreeMap<String, String>,
    /// results.json, if there is one.
    results: Option<Value>,
}

/// The run `rel` names, when it is a run directory inside `store`.
fn side(store: &Path, rel: Option<&str>) -> Result<Side, PageError> {
    let rel = rel.unwrap_or("");
    let missing = || PageError::NotFound(format!("{rel:?}: no such run in the store"));
    let dir = resolve(store, rel).ok_or_else(missing)?;
    if !dir.is_dir() || !is_run_dir(&dir) {
        return Err(missing());
    }
    let canonical = dir.strip_prefix(store).map_err(|_| missing())?;
    let rel: Vec<String> = canonical
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let row = RunRow::from_dir(store, &rel.join("/"))?;
    let plan = std::fs::read_to_string(dir.join("test.yaml"))
        .ok()
        .and_then(|t| serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&t).ok())
        .map(|v| {
            let mut out = BTreeMap::new();
            flatten("", &v, &mut out);
            out
        })
        .unwrap_or_default();
    let results = std::fs::read(dir.join("results.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Ok(Side { row, plan, results })
}

/// A YAML document as `key.sub-key` to value text, every leaf once.
pub fn flatten(prefix: &str, v: &serde_yaml_ng::Value, out: &mut BTreeMap<String, String>) {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Mapping(m) if !m.is_empty() => {
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s.clone(),
                    other => serde_json::to_string(other).unwrap_or_default(),
                };
                let path = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, v, out);
            }
        }
        Y::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        Y::Null => {
            out.insert(prefix.to_string(), "null".to_string());
        }
        other => {
            out.insert(
                prefix.to_string(),
                serde_json::to_string(other).unwrap_or_default(),
            );
        }
    }
}

/// The compare page of `q`'s two runs.
pub fn compare_page(store: &Path, q: &CompareQuery) -> Result<String, PageError> {
    let a = side(store, q.a.as_deref())?;
    let b = side(store, q.b.as_deref())?;
    let mut body = String::from("<table><tr><th></th>");
    for s in [&a, &b] {
        body.push_str(&format!(
            "<th><a href=\"{}\">{}</a></th>",
            run_link(&s.row.dir),
            escape(&s.row.dir)
        ));
    }
    body.push_str("</tr>");
    let cells = |f: &dyn Fn(&Side) -> String| [f(&a), f(&b)];
    let mut rows: Vec<(String, [String; 2])> = vec![
        ("started".into(), cells(&|s| escape(&when(&s.row.started)))),
        (
            "verdict".into(),
            cells(&|s| {
                let (class, text) = verdict(&s.row);
                format!("<span class=\"{class}\">{text}</span>")
            }),
        ),
        ("summary".into(), cells(&|s| summary(&s.row))),
        ("configuration".into(), cells(&|s| escape(&s.row.config()))),
    ];
    for (label, [x, y]) in figures(&a, &b) {
        rows.push((label, [escape(&x), escape(&y)]));
    }
    for (label, [x, y]) in &rows {
        let differs = if x != y { " class=\"differs\"" } else { "" };
        body.push_str(&format!(
            "<tr{differs}><th>{}</th><td>{x}</td><td>{y}</td></tr>",
            escape(label)
        ));
    }
    body.push_str("</table>");
    body.push_str(&anomalies(&a.row, &b.row));
    body.push_str(&plan_diff(&a.plan, &b.plan));
    Ok(html::page("faultline: two runs side by side", &body))
}

/// Anomaly counts by type, side by side.
fn anomalies(a: &RunRow, b: &RunRow) -> String {
    let types: BTreeSet<&String> = a.anomalies.keys().chain(b.anomalies.keys()).collect();
    if types.is_empty() {
        return "<h2>Anomalies</h2><p>None in either run.</p>".to_string();
    }
    let mut h = String::from("<h2>Anomalies</h2><table><tr><th>type</th><th>A</th><th>B</th></tr>");
    for t in types {
        let count = |r: &RunRow| r.anomalies.get(t).copied().unwrap_or(0);
        let differs = if count(a) != count(b) {
            " class=\"differs\""
        } else {
            ""
        };
        h.push_str(&format!(
            "<tr{differs}><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(t),
            count(a),
            count(b)
        ));
    }
    h.push_str("</table>");
    h
}

/// test.yaml key by key: every key of either plan, those that differ marked.
fn plan_diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> String {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let differing = keys.iter().filter(|k| a.get(**k) != b.get(**k)).count();
    let mut h = format!(
        "<h2>Plans (test.yaml)</h2><p>{differing} of {} key(s) differ (marked ≠).</p>\
         <table><tr><th></th><th>key</th><th>A</th><th>B</th></tr>",
        keys.len()
    );
    let absent = "<i>absent</i>".to_string();
    for k in keys {
        let (x, y) = (a.get(k), b.get(k));
        let (class, mark) = if x != y {
            (" class=\"differs\"", "≠")
        } else {
            ("", "")
        };
        let show = |v: Option<&String>| v.map(|v| escape(v)).unwrap_or_else(|| absent.clone());
        h.push_str(&format!(
            "<tr{class}><td>{mark}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(k),
            show(x),
            show(y)
        ));
    }
    h.push_str("</table>");
    h
}

/// Throughput and test power from both results.json, label by label (a figure one run does
/// not have is shown as `-`).
fn figures(a: &Side, b: &Side) -> Vec<(String, [String; 2])> {
    let (fa, fb) = (side_figures(a), side_figures(b));
    let mut labels: Vec<&String> = fa.iter().map(|(l, _)| l).collect();
    for (l, _) in &fb {
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    let get = |f: &Vec<(String, String)>, l: &String| {
        f.iter()
            .find(|(k, _)| k == l)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "-".to_string())
    };
    labels
        .into_iter()
        .map(|l| (l.clone(), [get(&fa, l), get(&fb, l)]))
        .collect()
}

/// One run's figures from its results.json.
fn side_figures(s: &Side) -> Vec<(String, String)> {
    let Some(doc) = &s.results else {
        return vec![("results.json".into(), "none".into())];
    };
    let mut out = Vec::new();
    let mut put = |label: &str, v: Option<String>| {
        if let Some(v) = v {
            out.push((label.to_string(), v));
        }
    };
    let num = |p: &str| doc.pointer(p).and_then(Value::as_f64);
    put("checker", doc["checker"].as_str().map(String::from));
    put(
        "ok ops",
        num("/power/availability/ok").map(|v| format!("{v}")),
    );
    put(
        "ok ops per second",
        num("/power/availability/ok_per_second").map(|v| format!("{v:.1}")),
    );
    put(
        "duration (s)",
        num("/power/availability/duration").map(|v| format!("{v:.1}")),
    );
    put(
        "mean ops in flight",
        num("/power/concurrency/mean_in_flight").map(|v| format!("{v:.2}")),
    );
    put(
        "p99 ops in flight",
        num("/power/concurrency/p99_in_flight").map(|v| format!("{v}")),
    );
    put(
        "windows without an ok op",
        doc.pointer("/power/availability/unavailable")
            .and_then(Value::as_array)
            .map(|w| w.len().to_string()),
    );
    if let Some(faults) = doc.pointer("/power/faults").and_then(Value::as_object) {
        for (kind, c) in faults {
            let n = |k: &str| c[k].as_u64().unwrap_or(0);
            put(
                &format!("{kind} faults applied / scheduled"),
                Some(format!(
                    "{} / {} (refused {}, skipped {})",
                    n("applied"),
                    n("scheduled"),
                    n("refused"),
                    n("skipped")
                )),
            );
        }
    }
    if let Some(rb) = doc.pointer("/power/read_back") {
        put(
            "keys read back after the last heal",
            Some(format!(
                "{} of {}",
                rb["keys_read_after_heal"].as_u64().unwrap_or(0),
                rb["keys_written"].as_u64().unwrap_or(0)
            )),
        );
    }
    put(
        "weak",
        Some(if s.row.weak.is_empty() {
            "no".to_string()
        } else {
            s.row.weak.join("; ")
        }),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_flatten_key_by_key() {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            "name: t\nseed: 3\ndb-options:\n  read-mode: serializable\nnemesis-kinds: [a, b]\nempty: {}\nx: null\n",
        )
        .expect("yaml");
        let mut out = BTreeMap::new();
        flatten("", &v, &mut out);
        let pairs: Vec<(&str, &str)> = out.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("db-options.read-mode", "serializable"),
                ("empty", "{}"),
                ("name", "t"),
                ("nemesis-kinds", "[\"a\",\"b\"]"),
                ("seed", "3"),
                ("x", "null"),
            ]
        );
    }

    #[test]
    fn differing_keys_are_marked_and_values_escaped() {
        let a = BTreeMap::from([
            ("seed".to_string(), "1".to_string()),
            ("name".to_string(), "<t>".to_string()),
        ]);
        let b = BTreeMap::from([
            ("seed".to_string(), "2".to_string()),
            ("name".to_string(), "<t>".to_string()),
            ("only-b".to_string(), "x".to_string()),
        ]);
        let h = plan_diff(&a, &b);
        assert!(h.contains("2 of 3 key(s) differ"), "{h}");
        assert!(
            h.contains(
                "<tr class=\"differs\"><td>≠</td><td><code>seed</code></td><td>1</td><td>2</td>"
            ),
            "{h}"
        );
        assert!(
            h.contains("<tr><td></td><td><code>name</code></td><td>&lt;t&gt;</td>"),
            "{h}"
        );
        assert!(h.contains("<i>absent</i>"), "{h}");
    }
}
