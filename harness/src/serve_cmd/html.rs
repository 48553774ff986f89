//! What `serve`'s pages share: the page around a body, links between them, the filter
//! form, verdicts as people read them, and escaping. Every text that comes from a run (names,
//! options, summaries) goes through [`escape`]; every URL part through [`url_path`] or
//! [`query`]. The pages need no JavaScript: filters are a GET form.

use crate::index::query::{Choices, Filter};
use crate::index::{Outcome, RunRow};
pub use crate::timeline::escape;

const STYLE: &str =
    "body{font:14px system-ui,sans-serif;margin:24px}table{border-collapse:collapse}\
td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
nav a{margin-right:12px}form{margin:8px 0 16px}select,input,button{margin-right:8px}\
.valid{color:#1a7f37;font-weight:600}.INVALID,.invalid{color:#cf222e;font-weight:700}\
.unknown,.error{color:#bc4c00;font-weight:600}.none{color:#777}.weak{color:#9a6700}\
.strip{white-space:nowrap}.strip a{display:inline-block;width:10px;height:18px;margin-right:1px;\
text-decoration:none}.strip a.valid{background:#2da44e}.strip a.weak{background:#d4a72c}\
.strip a.invalid{background:#cf222e}.strip a.unknown,.strip a.error{background:#fb8f44}\
.strip a.none{background:#ccc}span.regression{color:#fff;background:#cf222e;padding:1px 6px}\
span.flaky{color:#000;background:#d4a72c;padding:1px 6px}span.steady{color:#555}\
tr.differs td{background:#fff8c5}code{font-size:13px}";

/// A whole page: `title` (escaped here) and `body` (already HTML), with the links between
/// pages.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head>\
         <body><nav><a href=\"/\">runs</a><a href=\"/trends\">trends</a></nav><h1>{t}</h1>{body}</body></html>\n",
        t = escape(title)
    )
}

/// A run's verdict as the pages show it: (its CSS class, its text). Invalid is shouted;
/// a valid run with reasons to doubt it is `weak`.
pub fn verdict(row: &RunRow) -> (&'static str, &'static str) {
    match row.outcome {
        Outcome::Valid if row.is_weak() => ("weak", "valid (weak)"),
        Outcome::Valid => ("valid", "valid"),
        Outcome::Invalid => ("INVALID", "INVALID"),
        Outcome::Unknown => ("unknown", "unknown"),
        Outcome::Error => ("error", "error"),
        Outcome::None => ("none", "none"),
    }
}

/// RFC 3339 `2026-12-01T08:47:50Z` as `2026-12-01 08:47:50 UTC`; anything else as it is.
pub fn when(started: &str) -> String {
    match started.strip_suffix('Z').and_then(|s| s.split_once('T')) {
        Some((day, time)) => format!("{day} {time} UTC"),
        None => started.to_string(),
    }
}

/// Percent-encodes each segment of a relative path for a URL.
pub fn url_path(p: &str) -> String {
    p.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A query string (`?k=v&...`, empty when there is nothing) of the pairs, values encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The link to the compare page of runs `a` and `b`.
pub fn compare_link(a: &str, b: &str) -> String {
    escape(&format!("/compare{}", query(&[("a", a), ("b", b)])))
}

/// The link to a run's directory.
pub fn run_link(dir: &str) -> String {
    format!("/runs/{}/", url_path(dir))
}

/// The filter form of a page at `action`: a select per filter, its choices from the index,
/// the current value selected; `extra` are further fields (name, value) kept as they are.
pub fn filter_form(
    action: &str,
    filter: &Filter,
    choices: &Choices,
    extra: &[(&str, &str)],
) -> String {
    let verdicts: Vec<String> = ["valid", "weak", "invalid", "unknown", "error", "none"]
        .iter()
        .map(|v| v.to_string())
        .collect();
    let mut h = format!("<form method=\"get\" action=\"{action}\">");
    for (name, label, current, values) in [
        ("db", "database", &filter.db, &choices.dbs),
        ("workload", "workload", &filter.workload, &choices.workloads),
        ("fault", "fault", &filter.fault, &choices.faults),
        ("verdict", "verdict", &filter.verdict, &verdicts),
    ] {
        let current = current.as_deref().unwrap_or("");
        h.push_str(&format!(
            "<label>{label} <select name=\"{name}\"><option value=\"\">any</option>"
        ));
        let mut listed = false;
        for v in values {
            let selected = if v == current { " selected" } else { "" };
            listed |= v == current;
            h.push_str(&format!(
                "<option value=\"{v}\"{selected}>{v}</option>",
                v = escape(v)
            ));
        }
        if !listed && !current.is_empty() {
            h.push_str(&format!(
                "<option value=\"{v}\" selected>{v}</option>",
                v = escape(current)
            ));
        }
        h.push_str("</select></label>");
    }
    if let Some(config) = filter.config.as_deref().filter(|c| !c.is_empty()) {
        h.push_str(&format!(
            "<input type=\"hidden\" name=\"config\" value=\"{}\">",
            escape(config)
        ));
    }
    for (name, value) in extra {
        h.push_str(&format!(
            "<label>{name} <input name=\"{name}\" value=\"{}\" size=\"3\"></label>",
            escape(value)
        ));
    }
    h.push_str("<button type=\"submit\">show</button></form>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_write_them() {
        assert_eq!(when("2026-12-01T08:47:50Z"), "2026-12-01 08:47:50 UTC");
        assert_eq!(when("manual"), "manual");
    }

    #[test]
    fn url_parts_are_percent_encoded() {
        assert_eq!(url_path("etcd-set/2026 <x>"), "etcd-set/2026%20%3Cx%3E");
        assert_eq!(
            query(&[("a", "t/1"), ("b", "x&y=\"z\"")]),
            "?a=t%2F1&b=x%26y%3D%22z%22"
        );
        assert_eq!(query(&[]), "");
        assert_eq!(compare_link("a", "<b>"), "/compare?a=a&amp;b=%3Cb%3E");
    }

    #[test]
    fn the_form_escapes_values_and_keeps_the_current_one() {
        let filter = Filter {
            db: Some("<script>".into()),
            verdict: Some("invalid".into()),
            ..Filter::default()
        };
        let choices = Choices {
            dbs: vec!["etcd".into()],
            ..Choices::default()
        };
        let form = filter_form("/trends", &filter, &choices, &[("n", "3")]);
        assert!(!form.contains("<script>"), "{form}");
        assert!(
            form.contains("<option value=\"&lt;script&gt;\" selected>"),
            "{form}"
        );
        assert!(
            form.contains("<option value=\"invalid\" selected>"),
            "{form}"
        );
        assert!(form.contains("name=\"n\" value=\"3\""), "{form}");
    }
}
