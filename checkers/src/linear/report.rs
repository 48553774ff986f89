//! Checking every key of a history, in parallel, into one report.

use super::{
    check_ops_capped, KeyOps, KeyResult, Limits, MemoryExhausted, Method, Progress, Stop, Strategy,
    Verdict,
};

/// Configurations a key may explore in the first round.
const FIRST_CAP: u64 = 1 << 14;
/// The largest cap before the uncapped last round.
const LAST_CAP: u64 = 1 << 26;
use crate::history::Key;
use crate::model::Model;
use rayon::prelude::*;
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Options for [`check_keys`].
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Fast paths or search only.
    pub strategy: Strategy,
    /// Time, memory and cancellation.
    pub limits: Limits,
    /// Stop every other key's search once one key is found invalid (the history's verdict is
    /// decided then; Porcupine does the same). Keys stopped this way are listed as undecided,
    /// stopped by cancellation.
    pub stop_at_first_invalid: bool,
    /// Incremented as each key is decided, for a caller that shows progress.
    pub keys_done: Arc<AtomicUsize>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            strategy: Strategy::Auto,
            limits: Limits::default(),
            stop_at_first_invalid: true,
            keys_done: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// One key's result.
#[derive(Debug, Clone, Serialize)]
pub struct KeyReport {
    /// The key (absent for an unkeyed history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// Ops of this key that were checked.
    pub ops: usize,
    /// The result.
    #[serde(flatten)]
    pub result: KeyResult,
}

/// The result of checking a history, in the shape of DESIGN.md's `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Invalid if any key is invalid, else unknown if any key is undecided, else valid.
    #[serde(with = "crate::verdict::json")]
    pub valid: Verdict,
    /// The model's name.
    pub model: String,
    /// Ops checked (after dropping failed ops and unobservable reads).
    pub ops: usize,
    /// Keys checked.
    pub keys: usize,
    /// Wall time of the check, in milliseconds.
    pub elapsed_ms: u64,
    /// Invalid keys, each with its reason and counterexample.
    pub anomalies: Vec<KeyReport>,
    /// Undecided keys, each with the limit that stopped it and how far it got.
    pub undecided: Vec<KeyReport>,
    /// Keys decided by a model's fast path.
    pub fast_path_keys: usize,
    /// Keys decided by the exact search.
    pub search_keys: usize,
    /// The most bytes the searches' memos held at once.
    pub peak_memo_bytes: usize,
}

impl Report {
    /// The report of a history whose ops could not be built within the memory budget: its
    /// verdict is unknown, and its one undecided entry says why.
    pub fn memory_exhausted_while_building(model: &str, why: &MemoryExhausted) -> Report {
        let result = KeyResult {
            verdict: Verdict::Unknown,
            method: Method::Empty,
            reason: Some(why.to_string()),
            counterexample: None,
            progress: Some(Progress {
                stopped_by: Stop::Memory.to_string(),
                linearized: 0,
                ops: 0,
                explored: 0,
            }),
        };
        Report {
            valid: Verdict::Unknown,
            model: model.to_string(),
            ops: 0,
            keys: 0,
            elapsed_ms: 0,
            anomalies: Vec::new(),
            undecided: vec![KeyReport {
                key: None,
                ops: 0,
                result,
            }],
            fast_path_keys: 0,
            search_keys: 0,
            peak_memo_bytes: 0,
        }
    }
}

/// Checks every key of a history (in parallel) and combines the results.
pub fn check_keys<M: Model>(model: &M, by_key: &[KeyOps<M::Op>], options: &CheckOptions) -> Report {
    let start = Instant::now();
    // What is reserved already (the built ops) is not the memo's.
    let base = options.limits.memory.used();
    options.limits.memory.reset_peak();
    // Rounds of growing exploration caps: every key first gets a small cap, so that cheap keys
    // and cheap violations are found before any expensive key holds a thread; keys that hit
    // the cap are retried with a 16 times larger one, the last round without a cap. Repeated
    // work adds at most a constant factor. Within a round, largest keys go first.
    let mut pending: Vec<usize> = (0..by_key.len()).collect();
    pending.sort_by_key(|&i| std::cmp::Reverse(by_key[i].1.len()));
    let mut results: Vec<(usize, KeyResult)> = Vec::with_capacity(by_key.len());
    let mut cap: u64 = FIRST_CAP;
    loop {
        let round: Vec<(usize, KeyResult)> = pending
            .par_iter()
            .map(|&i| {
                let result =
                    check_ops_capped(model, &by_key[i].1, &options.limits, options.strategy, cap);
                if options.stop_at_first_invalid && result.verdict == Verdict::Invalid {
                    options.limits.cancel();
                }
                (i, result)
            })
            .collect();
        pending.clear();
        for (i, result) in round {
            let retry = result
                .progress
                .as_ref()
                .is_some_and(|p| p.stopped_by == Stop::Effort.to_string());
            match (retry, options.limits.should_stop()) {
                (true, None) => pending.push(i),
                (true, Some(why)) => {
                    let mut result = result;
                    if let Some(p) = result.progress.as_mut() {
                        p.stopped_by = why.to_string();
                    }
                    results.push((i, result));
                }
                (false, _) => {
                    options.keys_done.fetch_add(1, Ordering::Relaxed);
                    results.push((i, result));
                }
            }
        }
        if pending.is_empty() {
            break;
        }
        cap = if cap >= LAST_CAP { u64::MAX } else { cap * 16 };
    }
    results.sort_by_key(|(i, _)| *i);
    let mut report = Report {
        valid: Verdict::Valid,
        model: model.name().to_string(),
        ops: by_key.iter().map(|(_, o)| o.len()).sum(),
        keys: by_key.len(),
        elapsed_ms: 0,
        anomalies: Vec::new(),
        undecided: Vec::new(),
        fast_path_keys: 0,
        search_keys: 0,
        peak_memo_bytes: 0,
    };
    for (i, result) in results {
        match result.method {
            Method::FastPath => report.fast_path_keys += 1,
            Method::Search => report.search_keys += 1,
            Method::Empty => {}
        }
        let entry = |result| KeyReport {
            key: by_key[i].0.clone(),
            ops: by_key[i].1.len(),
            result,
        };
        match result.verdict {
            Verdict::Valid => {}
            Verdict::Invalid => report.anomalies.push(entry(result)),
            Verdict::Unknown => report.undecided.push(entry(result)),
        }
    }
    report.valid = if !report.anomalies.is_empty() {
        Verdict::Invalid
    } else if !report.undecided.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    report.peak_memo_bytes = options.limits.memory.peak().saturating_sub(base);
    report.elapsed_ms = start.elapsed().as_millis() as u64;
    report
}
