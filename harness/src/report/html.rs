//! report.html: one self-contained page (inline SVG and CSS, no script, no external file but
//! the optional link to timeline.html).

use super::{esc, RunData, Status};
use crate::power::Power;
use checkers::check::Results;
use checkers::Verdict;
use std::fmt::Write;

/// What the page shows.
pub struct Inputs<'a> {
    pub test_name: &'a str,
    pub verdict: Status,
    pub detail: &'a str,
    pub data: &'a RunData,
    pub results: Option<&'a Results>,
    pub power: Option<&'a Power>,
    pub test_yaml: &'a str,
    pub latency_svg: &'a str,
    pub rate_svg: &'a str,
}

/// Lost acknowledged adds set against the faults: the acknowledgements grouped by the fault
/// that was on when they came (or, between faults, by the last one before them), so that a
/// reader sees when the writes that were later lost had been acknowledged, and the first fault
/// that started after them (a power loss drops what was acknowledged before it and never
/// synced).
fn lost_against_faults(d: &RunData) -> String {
    if d.watched_acks.is_empty() {
        return String::new();
    }
    // The fault on at `t` (true), else the last one that started before it (false).
    let context = |t: f64| -> Option<(usize, bool)> {
        if let Some(i) = d.faults.iter().rposition(|f| f.start <= t && t <= f.end) {
            return Some((i, true));
        }
        d.faults
            .iter()
            .rposition(|f| f.start <= t)
            .map(|i| (i, false))
    };
    let mut acks = d.watched_acks.clone();
    acks.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
    // Runs of acknowledgements within the same context.
    let mut rows = String::new();
    let mut i = 0;
    while i < acks.len() {
        let ctx = context(acks[i].1);
        let mut j = i + 1;
        while j < acks.len() && context(acks[j].1) == ctx {
            j += 1;
        }
        let (first, last) = (acks[i].1, acks[j - 1].1);
        let while_ = match ctx {
            Some((f, true)) => {
                let f = &d.faults[f];
                format!(
                    "during {} ({:.1}–{:.1} s) <code>{}</code>",
                    esc(&f.kind),
                    f.start,
                    f.end,
                    esc(&f.what)
                )
            }
            Some((f, false)) => {
                let f = &d.faults[f];
                format!(
                    "{:.1}–{:.1} s after {} ({:.1}–{:.1} s) ended",
                    first - f.end,
                    last - f.end,
                    esc(&f.kind),
                    f.start,
                    f.end
                )
            }
            None => "before any fault".to_string(),
        };
        let elems: Vec<String> = acks[i..j]
            .iter()
            .take(12)
            .map(|a| a.0.to_string())
            .collect();
        let next = match d.faults.iter().find(|f| f.start > last) {
            Some(f) => format!(
                "{} at {:.1} s <code>{}</code>",
                esc(&f.kind),
                f.start,
                esc(&f.what)
            ),
            None => "none".to_string(),
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{first:.1}–{last:.1}</td><td>{while_}</td><td>{next}</td><td>{}{}</td></tr>",
            j - i,
            elems.join(", "),
            if j - i > 12 { ", ..." } else { "" }
        );
        i = j;
    }
    format!(
        "<h3 id=\"lost-timing\">When the lost adds were acknowledged</h3>\n\
         <table><tr><th>lost</th><th>acknowledged at (s)</th><th>while</th><th>next fault</th><th>elements</th></tr>{rows}</table>"
    )
}

/// "Test power": what the run exercised, and why a valid verdict from it is weak.
fn power_section(p: &Power) -> String {
    let mut out = String::from("<h2 id=\"power\">Test power</h2>\n");
    if !p.weak.is_empty() {
        out.push_str("<p class=\"weak\"><b>Weak run:</b></p><ul class=\"weak\">");
        for w in &p.weak {
            let _ = write!(out, "<li>{}</li>", esc(w));
        }
        out.push_str("</ul>");
    }
    let c = &p.concurrency;
    let (min, max) = c.worker_share_range();
    let total: u64 = c.ops_per_worker.iter().sum();
    let _ = write!(
        out,
        "<p>{} workers; shares of ops {min:.2}x to {max:.2}x of a fair share; {:.1} ops in flight on average (p99 {}); {} of {total} ops started with no other in flight.</p>",
        c.workers, c.mean_in_flight, c.p99_in_flight, c.alone
    );
    let cells = |items: Vec<(String, u64)>| {
        items
            .iter()
            .map(|(k, v)| format!("<td>{}: {v}</td>", esc(k)))
            .collect::<String>()
    };
    let _ = write!(
        out,
        "<table><tr><th>ops per worker</th>{}</tr><tr><th>ops per node</th>{}</tr></table>",
        cells(
            c.ops_per_worker
                .iter()
                .enumerate()
                .map(|(w, n)| (format!("w{w}"), *n))
                .collect()
        ),
        cells(
            c.ops_per_node
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        )
    );
    if !p.faults.is_empty() {
        out.push_str("<h3>Faults by kind</h3><table><tr><th>kind</th><th>scheduled</th><th>applied</th><th>refused</th><th>skipped</th></tr>");
        for (k, f) in &p.faults {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(k),
                f.scheduled,
                f.applied,
                f.refused,
                f.skipped
            );
        }
        out.push_str("</table>");
    }
    let a = &p.availability;
    let _ = write!(
        out,
        "<h3>Availability</h3><p>{} ok ops, {:.1} per second.",
        a.ok, a.ok_per_second
    );
    if a.unavailable.is_empty() {
        out.push_str(" No stretch without an ok op.</p>");
    } else {
        let w: Vec<String> = a
            .unavailable
            .iter()
            .map(|w| format!("{:.1}–{:.1} s", w.start, w.end))
            .collect();
        let _ = write!(out, " No ok op in: {}.</p>", w.join(", "));
    }
    if !a.recoveries.is_empty() {
        out.push_str(
            "<table><tr><th>healed</th><th>at (s)</th><th>first ok op after (s)</th></tr>",
        );
        for r in &a.recoveries {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{:.1}</td><td>{}</td></tr>",
                esc(&r.kind),
                r.healed_at,
                r.first_ok_after
                    .map_or_else(|| "none".to_string(), |s| format!("{s:.2}"))
            );
        }
        out.push_str("</table>");
    }
    if let Some(rb) = p.read_back {
        let _ = write!(
            out,
            "<p>{} of {} keys written were read back after the last heal.</p>",
            rb.keys_read_after_heal, rb.keys_written
        );
    }
    out
}

/// The page.
pub fn page(i: &Inputs<'_>) -> String {
    let d = i.data;
    let power = i.power;
    let color = match i.verdict {
        Status::Checked(Verdict::Valid) => "#2a8a3e",
        Status::Checked(Verdict::Invalid) => "#c62828",
        Status::Checked(Verdict::Unknown) => "#b26a00",
        Status::Error => "#555",
    };
    let mut faults = String::new();
    for f in &d.faults {
        let note: Vec<&str> = [f.note.as_str(), f.end_note.as_str()]
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect();
        let _ = write!(
            faults,
            "<tr{}><td>{}</td><td>{:.1}</td><td>{:.1}</td><td><code>{}</code></td><td>{}</td></tr>",
            if f.healed_from_outside {
                " class=\"outside\""
            } else {
                ""
            },
            esc(&f.kind),
            f.start,
            f.end,
            esc(&f.what),
            esc(&note.join("; "))
        );
    }
    let outside = d.faults.iter().filter(|f| f.healed_from_outside).count();
    let mut faults = if faults.is_empty() {
        "<p>No faults were injected.</p>".to_string()
    } else {
        format!("<table><tr><th>fault</th><th>from (s)</th><th>to (s)</th><th>what</th><th>note</th></tr>{faults}</table>")
    };
    // Every scheduled step the run did not take, and why: a report never hides a fault
    // that the schedule promised.
    if !d.not_applied.is_empty() {
        let mut rows = String::new();
        for n in &d.not_applied {
            let _ = write!(
                rows,
                "<tr><td>{}</td><td>{:.1}</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&n.outcome),
                n.t,
                esc(&n.what),
                esc(&n.why)
            );
        }
        let _ = write!(
            faults,
            "\n<h3 id=\"not-applied\">Scheduled steps not taken ({})</h3>\n<table><tr><th>outcome</th><th>at (s)</th><th>step</th><th>why</th></tr>{rows}</table>",
            d.not_applied.len()
        );
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>faultline: {name} — {word}</title>\n<style>\
body{{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}}\
.verdict{{color:#fff;background:{color};padding:.6em 1em;border-radius:6px;font-size:1.4em}}\
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left;font-size:.9em}}\
pre{{background:#f6f6f6;padding:.6em;overflow-x:auto}}code{{font-size:.9em}}.weak{{color:#b26a00}}\
</style></head><body>\n<h1>{name}</h1>\n<p class=\"verdict\" id=\"verdict\">{word}</p>\n<pre>{detail}</pre>\n\
<p>{ok} ok, {fail} fail, {info} info ops over {dur:.1} s; {nf} fault(s){outside}{nna}. \
<a href=\"timeline.html\">timeline of the failing keys</a> · <a href=\"history.jsonl\">history.jsonl</a> · \
<a href=\"nemesis.jsonl\">fault journal</a> · <a href=\"results.json\">results.json</a></p>\n\
{anomalies}\n{power}<h2>Latency</h2>\n<div id=\"latency\">{lat}</div>\n<h2>Throughput</h2>\n<div id=\"rate\">{rate}</div>\n\
<h2>Faults</h2>\n{faults}\n<h2>Test</h2>\n<details><summary>test.yaml (options, seed, fault schedule)</summary><pre>{yaml}</pre></details>\n\
</body></html>\n",
        name = esc(i.test_name),
        word = match (power, i.verdict) {
            (Some(p), Status::Checked(Verdict::Valid)) if !p.weak.is_empty() => {
                format!("{}, weak (see Test power)", i.verdict.word())
            }
            _ => i.verdict.word().to_string(),
        },
        power = power.map(power_section).unwrap_or_default(),
        detail = esc(i.detail),
        ok = d.totals[0],
        fail = d.totals[1],
        info = d.totals[2],
        dur = d.duration,
        nf = d.faults.len(),
        outside = if outside == 0 {
            String::new()
        } else {
            format!(
                ", <strong id=\"healed-from-outside\">{outside} healed from outside the run</strong> (by another faultline process, such as <code>faultline heal --force</code>: see the faults' notes)"
            )
        },
        nna = if d.not_applied.is_empty() {
            String::new()
        } else {
            format!(
                ", <a href=\"#not-applied\">{} scheduled step(s) not taken</a>",
                d.not_applied.len()
            )
        },
        anomalies = i.results.map(super::anomalies::section).unwrap_or_default()
            + &lost_against_faults(d),
        lat = i.latency_svg,
        rate = i.rate_svg,
        yaml = esc(i.test_yaml),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::FaultInterval;

    /// A fault healed from outside the run is said so: in the summary, and in its row, with
    /// when and by whom.
    #[test]
    fn a_fault_healed_from_outside_is_said_so() {
        let d = RunData {
            faults: vec![FaultInterval {
                kind: "kill".into(),
                start: 1.0,
                end: 1.1,
                what: "{}".into(),
                note: String::new(),
                end_note: "healed from outside at 1.1 s (by faultline process 7 at T)".into(),
                healed_from_outside: true,
            }],
            ..RunData::default()
        };
        let html = page(&Inputs {
            test_name: "t",
            verdict: Status::Error,
            detail: "",
            data: &d,
            results: None,
            power: None,
            test_yaml: "",
            latency_svg: "",
            rate_svg: "",
        });
        assert!(html.contains("1 healed from outside the run"), "{html}");
        assert!(
            html.contains("<td>1.0</td><td>1.1</td><td><code>{}</code></td><td>healed from outside at 1.1 s (by faultline process 7 at T)</td>"),
            "{html}"
        );
    }

    #[test]
    fn lost_adds_are_set_against_the_fault_that_was_on_when_they_were_acknowledged() {
        let d = RunData {
            faults: vec![FaultInterval {
                kind: "partition".into(),
                start: 10.0,
                end: 20.0,
                what: r#"{"n1":["n2"]}"#.into(),
                note: String::new(),
                end_note: String::new(),
                healed_from_outside: false,
            }],
            watched_acks: vec![(7, 12.5), (3, 11.0), (9, 23.0), (1, 2.0), (4, 24.0)],
            ..RunData::default()
        };
        let html = lost_against_faults(&d);
        let rows: Vec<&str> = html.split("<tr>").skip(2).collect();
        assert_eq!(rows.len(), 3, "{html}");
        assert!(rows[0].contains("<td>1</td><td>2.0–2.0</td><td>before any fault"));
        // The fault that came next: a power loss drops what was acknowledged before it.
        assert!(
            rows[0].contains("<td>partition at 10.0 s <code>"),
            "{}",
            rows[0]
        );
        assert!(rows[1].contains("<td>2</td><td>11.0–12.5</td><td>during partition (10.0–20.0 s)"));
        assert!(rows[1].contains("<td>none</td>"), "{}", rows[1]);
        assert!(rows[1].contains("<td>3, 7</td>"), "{}", rows[1]);
        assert!(rows[2].contains(
            "<td>2</td><td>23.0–24.0</td><td>3.0–4.0 s after partition (10.0–20.0 s) ended"
        ));
        assert_eq!(lost_against_faults(&RunData::default()), "");
    }

    #[test]
    fn a_weak_run_says_so_with_its_power() {
        use crate::power::{Availability, FaultCounts, Power, Window};
        let mut power = Power {
            availability: Availability {
                ok: 10,
                ok_per_second: 1.0,
                unavailable: vec![Window {
                    start: 4.0,
                    end: 10.0,
                }],
                recoveries: Vec::new(),
                duration: 10.0,
            },
            weak: vec!["no kill fault was applied (3 scheduled: 3 refused, 0 skipped)".into()],
            ..Power::default()
        };
        power.faults.insert(
            "kill".into(),
            FaultCounts {
                scheduled: 3,
                refused: 3,
                ..FaultCounts::default()
            },
        );
        let d = RunData::default();
        let page = page(&Inputs {
            test_name: "t",
            verdict: Status::Checked(Verdict::Valid),
            detail: "",
            data: &d,
            results: None,
            power: Some(&power),
            test_yaml: "",
            latency_svg: "",
            rate_svg: "",
        });
        assert!(page.contains("weak (see Test power)"), "{page}");
        assert!(page.contains("<li>no kill fault was applied"), "{page}");
        assert!(page.contains("<tr><td>kill</td><td>3</td><td>0</td><td>3</td><td>0</td></tr>"));
        assert!(page.contains("No ok op in: 4.0–10.0 s."), "{page}");
    }
}
