//! report.html's "Anomalies": what the checker found, rendered from its typed report (the
//! values that results.json was written from): for linearizability each failing key with its
//! counterexample, for a set the lost and unexpected elements, for transactions every anomaly
//! type with its count and each cycle with its edges and why each edge exists (as the console
//! says it), and the cycle drawings written beside the report.

use super::esc;
use checkers::check::{Details, Results};
use checkers::history::Key;
use checkers::linear::KeyReport;
use checkers::set_check::SetReport;
use checkers::txn::TxnReport;
use std::fmt::Write;

/// How many failing keys or elements a section lists before "... and N more".
const SHOWN: usize = 20;

/// The section, or nothing when the checker found nothing to show.
pub fn section(results: &Results) -> String {
    let body = match &results.details {
        Details::Linearizable(r) => linearizable(&r.anomalies),
        Details::Set(r) => set(r),
        Details::Transactional(r) => transactional(r),
    };
    if body.is_empty() {
        body
    } else {
        format!("<h2 id=\"anomalies\">Anomalies</h2>\n{body}")
    }
}

fn key_name(key: &Option<Key>) -> String {
    match key {
        None => "the history".to_string(),
        Some(Key::Int(k)) => format!("key {k}"),
        Some(Key::Str(k)) => format!("key {k:?}"),
    }
}

fn linearizable(keys: &[KeyReport]) -> String {
    let mut out = String::new();
    for k in keys.iter().take(SHOWN) {
        let _ = write!(
            out,
            "<li><b>{}</b>: not linearizable",
            esc(&key_name(&k.key))
        );
        if let Some(c) = &k.result.counterexample {
            if let Some(op) = &c.failed_op {
                let _ = write!(
                    out,
                    ": after a linearizable prefix of {} ops, <code>{}</code> (process {}) fits none of the states {}",
                    c.prefix_len,
                    esc(&op.op),
                    op.process,
                    esc(&c.states.join(", "))
                );
            }
        } else if let Some(reason) = &k.result.reason {
            let _ = write!(out, ": {}", esc(reason));
        }
        out.push_str("</li>");
    }
    if keys.len() > SHOWN {
        let _ = write!(out, "<li>... and {} more</li>", keys.len() - SHOWN);
    }
    if out.is_empty() {
        out
    } else {
        format!("<ul>{out}</ul>")
    }
}

fn set(r: &SetReport) -> String {
    let mut out = String::new();
    for (name, list) in [
        ("lost", &r.lost),
        ("unexpected", &r.unexpected),
        ("failed_but_present", &r.failed_but_present),
    ] {
        if list.is_empty() {
            continue;
        }
        let shown: Vec<String> = list.iter().take(50).map(ToString::to_string).collect();
        let _ = write!(
            out,
            "<li><b>{name}</b> ({}): {}{}</li>",
            list.len(),
            shown.join(", "),
            if list.len() > 50 { ", ..." } else { "" }
        );
    }
    if out.is_empty() {
        out
    } else {
        format!("<ul>{out}</ul>")
    }
}

fn transactional(r: &TxnReport) -> String {
    if r.anomaly_counts.is_empty() && r.unknown_reason.is_none() {
        return String::new();
    }
    let mut out = String::new();
    if !r.anomaly_counts.is_empty() {
        out.push_str("<table><tr><th>anomaly</th><th>found</th></tr>");
        for (kind, n) in &r.anomaly_counts {
            let _ = write!(out, "<tr><td>{}</td><td>{n}</td></tr>", esc(kind));
        }
        out.push_str("</table>");
        if r.valid == checkers::Verdict::Valid {
            let _ = write!(
                out,
                "<p>Each of these is allowed by {}, the model checked: the history is valid.</p>",
                esc(r.consistency)
            );
        }
        if !r.not.is_empty() {
            let _ = write!(
                out,
                "<p>Not {}{}.</p>",
                esc(&r.not.join(", ")),
                if r.also_not.is_empty() {
                    String::new()
                } else {
                    format!(" (nor {})", esc(&r.also_not.join(", ")))
                }
            );
        }
    }
    // Every anomaly with its transactions, edges and reasons, as `faultline check` prints it.
    let _ = write!(
        out,
        "<details open><summary>Each anomaly explained</summary><pre>{}</pre></details>",
        esc(&r.human("history.jsonl"))
    );
    // The drawings `faultline check --out` and a run write beside results.json, shortest
    // cycle first, named as `checking::write_outputs` names them.
    let cycles = r.cycles();
    for (i, (kind, _)) in cycles.iter().enumerate().take(SHOWN) {
        let file = format!("cycle-{:02}-{kind}.svg", i + 1);
        let _ = write!(
            out,
            "<figure><img src=\"{f}\" alt=\"{k} cycle\"><figcaption><a href=\"{f}\">{f}</a></figcaption></figure>",
            f = esc(&file),
            k = esc(kind)
        );
    }
    if cycles.len() > SHOWN {
        let _ = write!(
            out,
            "<p>... and {} more drawings beside this page</p>",
            cycles.len() - SHOWN
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::check::{check, Checker};
    use checkers::read::{from_reader, Format};
    use checkers::txn::{Consistency, TxnModel};

    /// A write skew: valid under snapshot isolation, G2-item under serializable.
    const SKEW: &str = r#"{"index":0,"type":"invoke","process":0,"f":"txn","value":[["r","x",null],["append","y",1]],"time":0}
{"index":1,"type":"invoke","process":1,"f":"txn","value":[["r","y",null],["append","x",2]],"time":1}
{"index":2,"type":"ok","process":0,"f":"txn","value":[["r","x",[]],["append","y",1]],"time":2}
{"index":3,"type":"ok","process":1,"f":"txn","value":[["r","y",[]],["append","x",2]],"time":3}
{"index":4,"type":"invoke","process":0,"f":"txn","value":[["r","x",null],["r","y",null]],"time":4}
{"index":5,"type":"ok","process":0,"f":"txn","value":[["r","x",[2]],["r","y",[1]]],"time":5}
"#;

    fn checked(consistency: Consistency) -> Results {
        let reader =
            from_reader(std::io::Cursor::new(SKEW), "skew.jsonl", Format::Jsonl).expect("reader");
        check(
            &Checker::transactional(TxnModel::ListAppend, consistency),
            reader,
            "skew.jsonl",
            &mut |_| {},
        )
        .expect("checked")
        .results
    }

    #[test]
    fn transactional_anomalies_are_shown_with_their_cycles_and_drawings() {
        let html = section(&checked(Consistency::Serializable));
        assert!(
            html.contains("<tr><td>G2-item</td><td>1</td></tr>"),
            "{html}"
        );
        assert!(
            html.contains("Not repeatable-read (nor serializable"),
            "{html}"
        );
        // The cycle's edges and why they exist, as the console says them.
        assert!(html.contains("rw"), "{html}");
        assert!(html.contains("<img src=\"cycle-01-G2-item.svg\""), "{html}");
        // Valid under snapshot isolation, which allows it: shown, and said to be allowed.
        let si = section(&checked(Consistency::SnapshotIsolation));
        assert!(
            si.contains("allowed by snapshot-isolation, the model checked"),
            "{si}"
        );
    }
}
