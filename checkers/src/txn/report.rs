//! The result of a transactional check: verdict, anomalies with per-edge explanations,
//! `not` / `also_not`, as JSON (DESIGN.md's shape) and as text a person can check by hand.

use super::graph::{Edge, RT, RW, WR, WW};
use super::{Consistency, Mop, Status, TxnHistory, TxnModel};
use crate::Verdict;
use serde::Serialize;
use std::collections::BTreeMap;

/// A transaction as shown in a report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TxnRef {
    /// `T<index>`.
    pub name: String,
    /// `index` of its invoke.
    pub index: u64,
    /// Its process.
    pub process: u64,
    /// `ok`, `fail` or `info`.
    pub status: &'static str,
    /// Its micro-ops as the history wrote them.
    pub value: serde_json::Value,
}

/// One edge of a cycle and why it exists.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EdgeReport {
    /// Source transaction name.
    pub from: String,
    /// Target transaction name.
    pub to: String,
    /// `ww`, `wr`, `rw` or `realtime`.
    pub kind: &'static str,
    /// The key, for ww/wr/rw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The value that justifies it (the element appended or value written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    /// The justification, in words.
    pub why: String,
}

/// One anomaly: its transactions, its cycle (for cycle anomalies) and an explanation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Anomaly {
    /// Transactions involved.
    pub txns: Vec<TxnRef>,
    /// The edges of the cycle, in order (empty for non-cycle anomalies).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cycle: Vec<EdgeReport>,
    /// What happened, in words.
    pub explanation: String,
}

/// The result of checking a transactional history.
#[derive(Debug, Clone, Serialize)]
pub struct TxnReport {
    /// The verdict for `consistency`.
    #[serde(with = "crate::verdict::json")]
    pub valid: Verdict,
    /// `list-append` or `rw-register`.
    pub model: &'static str,
    /// The consistency model checked.
    pub consistency: &'static str,
    /// Transactions in the history.
    pub txns: usize,
    /// Events read.
    pub ops: usize,
    /// Keys.
    pub keys: usize,
    /// Milliseconds spent (set by the caller).
    pub elapsed_ms: u64,
    /// Anomalies by type; cycle anomalies list the shortest cycles found first.
    pub anomalies: BTreeMap<String, Vec<Anomaly>>,
    /// How many anomalies of each type were found (lists above are capped).
    pub anomaly_counts: BTreeMap<String, usize>,
    /// The weakest models the history violates.
    pub not: Vec<&'static str>,
    /// The other (stronger) models it violates.
    pub also_not: Vec<&'static str>,
    /// Why the verdict is unknown, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<String>,
    /// The assumptions (`--assume`) the verdict rests on: empty when it holds without them
    /// (always for `valid`, and for every model that implies them).
    pub assumptions: Vec<&'static str>,
}

/// How many anomalies of one type a report lists in full.
pub const MAX_PER_TYPE: usize = 20;

/// Collects anomalies while a checker runs.
#[derive(Default)]
pub struct Collector {
    /// Anomalies by type.
    pub anomalies: BTreeMap<String, Vec<Anomaly>>,
    /// Counts by type.
    pub counts: BTreeMap<String, usize>,
}

impl Collector {
    /// Records one anomaly of type `kind`; `make` runs only while the list is not full.
    pub fn add(&mut self, kind: &str, make: impl FnOnce() -> Anomaly) {
        *self.counts.entry(kind.to_string()).or_default() += 1;
        let list = self.anomalies.entry(kind.to_string()).or_default();
        if list.len() < MAX_PER_TYPE {
            list.push(make());
        }
    }

    /// True when some anomaly forbidden by `c` was recorded.
    pub fn violates(&self, c: Consistency) -> bool {
        self.counts.keys().any(|k| c.forbids(k))
    }
}

/// `Invalid` when `b`, else `Valid`.
pub(crate) fn invalid_if(b: bool) -> Verdict {
    if b {
        Verdict::Invalid
    } else {
        Verdict::Valid
    }
}

/// `T<index>` of transaction `t`.
pub fn tname(h: &TxnHistory, t: usize) -> String {
    format!("T{}", h.txns[t].index)
}

/// A list as written in explanations: in full up to 10 elements, else its tail.
pub fn show_list(xs: &[i64]) -> String {
    if xs.len() <= 10 {
        format!("{xs:?}")
    } else {
        let tail: Vec<String> = xs[xs.len() - 6..].iter().map(|x| x.to_string()).collect();
        format!(
            "[… {} more, {}] ({} elements)",
            xs.len() - 6,
            tail.join(", "),
            xs.len()
        )
    }
}

fn mop_json(h: &TxnHistory, m: &Mop) -> serde_json::Value {
    let key = |k: u32| serde_json::to_value(&h.keys[k as usize]).unwrap_or(serde_json::Value::Null);
    match m {
        Mop::Append { key: k, value } => serde_json::json!(["append", key(*k), value]),
        Mop::Write { key: k, value } => serde_json::json!(["w", key(*k), value]),
        Mop::ReadList { key: k, value } => serde_json::json!(["r", key(*k), value]),
        Mop::ReadReg { key: k, value } => serde_json::json!(["r", key(*k), value.flatten()]),
    }
}

/// A transaction as shown in a report.
pub fn txn_ref(h: &TxnHistory, t: usize) -> TxnRef {
    let x = &h.txns[t];
    TxnRef {
        name: tname(h, t),
        index: x.index,
        process: x.process,
        status: match x.status {
            Status::Ok => "ok",
            Status::Fail => "fail",
            Status::Info => "info",
        },
        value: serde_json::Value::Array(x.mops.iter().map(|m| mop_json(h, m)).collect()),
    }
}

/// The name of an edge kind.
pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        WW => "ww",
        WR => "wr",
        RW => "rw",
        RT => "realtime",
        PROCESS => "process",
        _ => "?",
    }
}

/// A realtime edge between two transactions of the same process, as reports show it.
pub const PROCESS: u8 = 16;

/// Classifies a cycle by its edge kinds, with Elle's names: G0 (ww only), G1c (ww/wr), G-single
/// (one rw), G-nonadjacent (several rw, no two adjacent), G2-item (adjacent rw); `-realtime`
/// when a realtime edge is needed.
pub fn classify(kinds: &[u8]) -> String {
    let rw = kinds.iter().filter(|k| **k == RW).count();
    let rt = kinds.contains(&RT);
    let process = kinds.contains(&PROCESS);
    let base = if rw == 0 {
        if kinds.iter().all(|k| *k == WW || *k == RT || *k == PROCESS) && kinds.contains(&WW) {
            "G0"
        } else {
            "G1c"
        }
    } else if rw == 1 {
        "G-single"
    } else {
        let n = kinds.len();
        let adjacent = (0..n).any(|i| kinds[i] == RW && kinds[(i + 1) % n] == RW);
        if adjacent {
            "G2-item"
        } else {
            "G-nonadjacent"
        }
    };
    if rt {
        format!("{base}-realtime")
    } else if process {
        format!("{base}-process")
    } else {
        base.to_string()
    }
}

/// Builds a cycle anomaly from its edges, explaining each with `why`.
pub fn cycle_anomaly(
    h: &TxnHistory,
    edges: &[Edge],
    why: impl Fn(&Edge) -> String,
) -> (String, Anomaly) {
    // A realtime edge within one process is reported as a process edge.
    let same_process =
        |e: &Edge| e.kind == RT && h.txns[e.from as usize].process == h.txns[e.to as usize].process;
    let kind_of = |e: &Edge| if same_process(e) { PROCESS } else { e.kind };
    let kinds: Vec<u8> = edges.iter().map(kind_of).collect();
    let kind = classify(&kinds);
    let txns = edges.iter().map(|e| txn_ref(h, e.from as usize)).collect();
    let cycle: Vec<EdgeReport> = edges
        .iter()
        .map(|e| EdgeReport {
            from: tname(h, e.from as usize),
            to: tname(h, e.to as usize),
            kind: kind_name(kind_of(e)),
            key: (e.kind != RT).then(|| h.key_name(e.key)),
            value: (e.kind != RT).then_some(e.value),
            why: if same_process(e) {
                format!(
                    "{} and {} both ran on process {}, {} first, so {} process-precedes {}",
                    tname(h, e.from as usize),
                    tname(h, e.to as usize),
                    h.txns[e.from as usize].process,
                    tname(h, e.from as usize),
                    tname(h, e.from as usize),
                    tname(h, e.to as usize)
                )
            } else {
                why(e)
            },
        })
        .collect();
    let mut names: Vec<String> = edges
        .iter()
        .take(12)
        .map(|e| tname(h, e.from as usize))
        .collect();
    if edges.len() > 12 {
        names.push(format!("… {} more", edges.len() - 12));
    }
    let explanation = format!(
        "{kind} cycle of {} transactions: {} -> {}",
        edges.len(),
        names.join(" -> "),
        tname(h, edges.first().map_or(0, |e| e.from as usize))
    );
    (
        kind,
        Anomaly {
            txns,
            cycle,
            explanation,
        },
    )
}

/// The realtime justification of an edge.
pub fn realtime_why(h: &TxnHistory, e: &Edge) -> String {
    let a = &h.txns[e.from as usize];
    let b = &h.txns[e.to as usize];
    format!(
        "{} completed (index {}) before {} was invoked (index {}), so {} realtime-precedes {}",
        tname(h, e.from as usize),
        a.complete_index.unwrap_or(a.index),
        tname(h, e.to as usize),
        b.index,
        tname(h, e.from as usize),
        tname(h, e.to as usize)
    )
}

/// Fills `not` / `also_not` from per-model verdicts (models whose verdict is unknown count as
/// not violated).
pub fn not_also_not(verdicts: &[(Consistency, Verdict)]) -> (Vec<&'static str>, Vec<&'static str>) {
    let violated: Vec<Consistency> = verdicts
        .iter()
        .filter(|(_, v)| *v == Verdict::Invalid)
        .map(|(c, _)| *c)
        .collect();
    let mut not = Vec::new();
    let mut also = Vec::new();
    for &c in &violated {
        // c is among the weakest if no other violated model is implied by c.
        if violated.iter().any(|&d| d != c && c.implies(d)) {
            also.push(c.name());
        } else {
            not.push(c.name());
        }
    }
    (not, also)
}

impl TxnReport {
    /// An empty report for `h`.
    pub fn new(h: &TxnHistory, consistency: Consistency) -> TxnReport {
        TxnReport {
            valid: Verdict::Valid,
            model: h.model.name(),
            consistency: consistency.name(),
            txns: h.txns.len(),
            ops: h
                .txns
                .iter()
                .map(|t| if t.complete_index.is_some() { 2 } else { 1 })
                .sum(),
            keys: h.keys.len(),
            elapsed_ms: 0,
            anomalies: BTreeMap::new(),
            anomaly_counts: BTreeMap::new(),
            not: Vec::new(),
            also_not: Vec::new(),
            unknown_reason: None,
            assumptions: Vec::new(),
        }
    }

    /// The cycle anomalies, shortest cycle first (for drawing).
    pub fn cycles(&self) -> Vec<(&str, &Anomaly)> {
        let mut v: Vec<(&str, &Anomaly)> = self
            .anomalies
            .iter()
            .flat_map(|(k, list)| list.iter().map(move |a| (k.as_str(), a)))
            .filter(|(_, a)| !a.cycle.is_empty())
            .collect();
        v.sort_by_key(|(_, a)| a.cycle.len());
        v
    }

    /// The report as text a person can check by hand.
    pub fn human(&self, file: &str) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{file}: {} transactions over {} keys, model {}, checked for {} in {} ms",
            self.txns, self.keys, self.model, self.consistency, self.elapsed_ms
        );
        for (kind, list) in &self.anomalies {
            let count = self.anomaly_counts.get(kind).copied().unwrap_or(list.len());
            let _ = writeln!(
                s,
                "\n{kind} ({count} found{})",
                if count > list.len() {
                    format!(", {} shown", list.len())
                } else {
                    String::new()
                }
            );
            for a in list {
                let _ = writeln!(s, "  {}", a.explanation);
                for e in &a.cycle {
                    let _ = writeln!(s, "    {} -{}-> {}: {}", e.from, e.kind, e.to, e.why);
                }
                if a.cycle.is_empty() {
                    for t in &a.txns {
                        let _ = writeln!(
                            s,
                            "    {} (process {}, {}): {}",
                            t.name, t.process, t.status, t.value
                        );
                    }
                }
            }
        }
        if !self.not.is_empty() {
            let _ = write!(s, "\nnot {}", self.not.join(", "));
            if !self.also_not.is_empty() {
                let _ = write!(s, "; also not {}", self.also_not.join(", "));
            }
            s.push('\n');
        }
        let verdict = match self.valid {
            Verdict::Valid => format!("VALID: {}", self.consistency),
            Verdict::Invalid => format!("INVALID: not {}", self.consistency),
            Verdict::Unknown => format!(
                "UNKNOWN: {}",
                self.unknown_reason.clone().unwrap_or_default()
            ),
        };
        let _ = writeln!(s, "\n{verdict}");
        s
    }
}

/// The model of a history, for messages.
pub fn model_name(m: TxnModel) -> &'static str {
    m.name()
}
