//! The transactional isolation checker: list-append and rw-register histories checked against
//! read-committed, repeatable-read, snapshot-isolation, serializable and strict-serializable,
//! in the manner of Elle (Kingsbury & Alvaro, VLDB 2020), with exact verdicts.
//!
//! - [`parse`] turns the events of a history (`f: "txn"`, micro-ops as DESIGN.md specifies)
//!   into [`Txn`]s, validating them; errors name file, line and column.
//! - [`list_append`] infers Adya's direct serialization graph from list-append reads and
//!   decides every model exactly (see its docs for why the inferred graph suffices, and the
//!   extra search snapshot isolation needs); `list_reads` replays each transaction's reads
//!   against its own appends (external reads, `internal`, `fuzzy-read`).
//! - [`rw_register`] infers what the history proves and searches the remaining orders with a
//!   budget, answering `unknown` rather than `valid` when the budget runs out.
//! - [`report`] holds the result: anomalies with per-edge explanations, `not` / `also_not`,
//!   JSON, human text and an SVG drawing of each cycle.
//! - [`oracle`] is a brute-force reference (all serial orders; all commit orders with a
//!   snapshot point per transaction for snapshot isolation) the tests hold the checker to.
//! - [`generate`] makes seeded synthetic histories (serial, snapshot-isolation, read-committed,
//!   optionally with a snapshot per statement, stale-replica executors).

mod dyn_order;
pub mod generate;
mod graph;
pub mod list_append;
mod list_reads;
mod memory;
pub mod oracle;
pub mod parse;
pub mod report;
mod rw_order;
pub mod rw_register;
mod si_order;
pub mod svg;

use crate::history::Key;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use memory::OutOfMemory;
pub use parse::TxnBuilder;
pub use report::{Anomaly, TxnReport};

/// Index of a key in [`TxnHistory::keys`].
pub type KeyId = u32;

/// Which transactional data model a history uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnModel {
    /// Lists per key: `append` and whole-list reads.
    ListAppend,
    /// Registers per key: `w` and `r`.
    RwRegister,
}

impl TxnModel {
    /// Parses `list-append` or `rw-register`.
    pub fn parse(s: &str) -> Option<TxnModel> {
        match s {
            "list-append" => Some(TxnModel::ListAppend),
            "rw-register" => Some(TxnModel::RwRegister),
            _ => None,
        }
    }

    /// The model's name.
    pub fn name(self) -> &'static str {
        match self {
            TxnModel::ListAppend => "list-append",
            TxnModel::RwRegister => "rw-register",
        }
    }
}

/// A consistency model a transactional history is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Consistency {
    /// Adya's PL-2: no G0, G1a, G1b, G1c (non-repeatable, "fuzzy", reads allowed).
    ReadCommitted,
    /// Adya's PL-2.99: also no G-single, G-nonadjacent, G2-item, lost-update, fuzzy-read.
    RepeatableRead,
    /// Adya's PL-SI (generalized SI): no G1, G-single, G-nonadjacent, lost-update.
    SnapshotIsolation,
    /// Adya's PL-3: no cycle of ww, wr and rw edges.
    Serializable,
    /// PL-3 plus real time: no cycle of ww, wr, rw and realtime edges.
    StrictSerializable,
}

impl Consistency {
    /// All five, weakest first.
    pub const ALL: [Consistency; 5] = [
        Consistency::ReadCommitted,
        Consistency::RepeatableRead,
        Consistency::SnapshotIsolation,
        Consistency::Serializable,
        Consistency::StrictSerializable,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Consistency::ReadCommitted => "read-committed",
            Consistency::RepeatableRead => "repeatable-read",
            Consistency::SnapshotIsolation => "snapshot-isolation",
            Consistency::Serializable => "serializable",
            Consistency::StrictSerializable => "strict-serializable",
        }
    }

    /// True when every history valid under `self` is valid under `other` (`self` implies
    /// `other`; reflexive).
    pub fn implies(self, other: Consistency) -> bool {
        use Consistency::*;
        match self {
            StrictSerializable => true,
            Serializable => other != StrictSerializable,
            RepeatableRead => matches!(other, RepeatableRead | ReadCommitted),
            SnapshotIsolation => matches!(other, SnapshotIsolation | ReadCommitted),
            ReadCommitted => other == ReadCommitted,
        }
    }

    /// True when this model forbids the anomaly named `anomaly` (Elle's table, restricted to
    /// the anomalies this checker reports).
    pub fn forbids(self, anomaly: &str) -> bool {
        use Consistency::*;
        // Realtime (and process order, which real time implies) only bind strict models.
        if anomaly.ends_with("-realtime") || anomaly.ends_with("-process") {
            return self == StrictSerializable;
        }
        match anomaly {
            "G0" | "G1a" | "G1b" | "G1c" | "internal" | "duplicate" | "incompatible-order"
            | "dirty-update" | "garbage-read" => true,
            // A non-repeatable read: each statement of a read-committed transaction may take
            // a new snapshot (Adya's PL-2 allows it; PL-2.99 and up forbid it).
            "G-single" | "G-nonadjacent" | "lost-update" | "fuzzy-read" => self != ReadCommitted,
            "G2-item" | "G2" => matches!(self, RepeatableRead | Serializable | StrictSerializable),
            // Found by exhaustive search with no single provable cycle: named per model.
            _ => false,
        }
    }
}

impl FromStr for Consistency {
    type Err = String;
    fn from_str(s: &str) -> Result<Consistency, String> {
        Consistency::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                format!("unknown consistency model {s:?} (expected read-committed, repeatable-read, snapshot-isolation, serializable or strict-serializable)")
            })
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One micro-operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mop {
    /// list-append: append `value` to the list at `key`.
    Append {
        /// The key.
        key: KeyId,
        /// The appended element (unique per key).
        value: i64,
    },
    /// list-append: read the whole list at `key`; `None` when unknown (invoke, fail, info).
    ReadList {
        /// The key.
        key: KeyId,
        /// The list read (`null` in the history reads as the empty list).
        value: Option<Vec<i64>>,
    },
    /// rw-register: write `value` to `key`.
    Write {
        /// The key.
        key: KeyId,
        /// The written value (unique per key).
        value: i64,
    },
    /// rw-register: read `key`.
    ReadReg {
        /// The key.
        key: KeyId,
        /// `None` when unknown (invoke, fail, info); `Some(None)` for a read of `null`.
        value: Option<Option<i64>>,
    },
}

impl Mop {
    /// The key the micro-op touches.
    pub fn key(&self) -> KeyId {
        match self {
            Mop::Append { key, .. }
            | Mop::ReadList { key, .. }
            | Mop::Write { key, .. }
            | Mop::ReadReg { key, .. } => *key,
        }
    }

    /// True for appends and writes.
    pub fn is_write(&self) -> bool {
        matches!(self, Mop::Append { .. } | Mop::Write { .. })
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Committed; reads are known.
    Ok,
    /// Aborted: none of its writes may be seen.
    Fail,
    /// Unknown (or never completed): may or may not have committed.
    Info,
}

/// One transaction: an invoke and its completion.
#[derive(Debug, Clone)]
pub struct Txn {
    /// The client process.
    pub process: u64,
    /// How it ended.
    pub status: Status,
    /// Micro-ops in the order the transaction ran them (reads filled in for `ok`).
    pub mops: Vec<Mop>,
    /// `index` of the invoke event (transactions are named `T<index>` after it).
    pub index: u64,
    /// `index` of the completion, if any.
    pub complete_index: Option<u64>,
    /// Position of the invoke among all events of the history (0-based).
    pub invoke_pos: u64,
    /// Position of the completion among all events, for `ok` and `fail`.
    pub complete_pos: Option<u64>,
    /// Line of the completion (or of the invoke when there is none).
    pub line: u64,
    /// Line of the invoke.
    pub invoke_line: u64,
}

/// A transactional history: its transactions in invocation order and its key names.
#[derive(Debug, Clone)]
pub struct TxnHistory {
    /// The data model.
    pub model: TxnModel,
    /// Transactions, in the order they were invoked.
    pub txns: Vec<Txn>,
    /// Key names, by [`KeyId`].
    pub keys: Vec<Key>,
    /// The transaction that appended (or wrote) each (key, value), whatever its outcome.
    pub writers: hashbrown::HashMap<(KeyId, i64), u32>,
}

impl TxnHistory {
    /// The name of a key as written in explanations.
    pub fn key_name(&self, k: KeyId) -> String {
        match &self.keys[k as usize] {
            Key::Int(i) => i.to_string(),
            Key::Str(s) => s.clone(),
        }
    }

    /// True when `a` completed before `b` was invoked (`a` must be `ok` or `fail`).
    pub fn precedes(&self, a: usize, b: usize) -> bool {
        self.txns[a]
            .complete_pos
            .is_some_and(|c| c < self.txns[b].invoke_pos)
    }
}

/// Elle's optional assumptions about a database's keys, which narrow rw-register's search
/// over version orders where a user states them (`faultline check --assume`). Each one adds
/// version orders, so a `valid` verdict never rests on them; an `invalid` one may, and the
/// report then lists them ([`TxnReport::assumptions`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Assumptions {
    /// Each process sees each key's versions in order: a process's later access of a key
    /// reads or writes no earlier version than its earlier one (per-key sequential
    /// consistency; strict-serializable implies it).
    pub sequential_keys: bool,
    /// Each key is linearizable: an access that completed before another began saw no later
    /// version (strict-serializable implies it).
    pub linearizable_keys: bool,
    /// Writes follow reads within a transaction: a transaction that read a version and then
    /// wrote the key installed a later one. Every model the search decides implies it, so it
    /// never narrows anything here; accepted for Elle's sake.
    pub wfr_keys: bool,
}

impl Assumptions {
    /// The names `--assume` takes.
    pub const NAMES: [&'static str; 3] = ["sequential-keys", "linearizable-keys", "wfr-keys"];

    /// Adds the assumption named `name` (one of [`Assumptions::NAMES`]).
    pub fn add(&mut self, name: &str) -> Result<(), String> {
        match name {
            "sequential-keys" => self.sequential_keys = true,
            "linearizable-keys" => self.linearizable_keys = true,
            "wfr-keys" => self.wfr_keys = true,
            other => {
                return Err(format!(
                    "unknown assumption {other:?} (expected sequential-keys, linearizable-keys or wfr-keys)"
                ))
            }
        }
        Ok(())
    }

    /// The assumptions made, by name.
    pub fn names(self) -> Vec<&'static str> {
        let on = [self.sequential_keys, self.linearizable_keys, self.wfr_keys];
        Self::NAMES
            .into_iter()
            .zip(on)
            .filter_map(|(n, on)| on.then_some(n))
            .collect()
    }

    /// The assumptions `c` does not already imply: the ones a verdict for `c` can rest on.
    pub fn beyond(self, c: Consistency) -> Assumptions {
        if c == Consistency::StrictSerializable {
            return Assumptions::default();
        }
        Assumptions {
            wfr_keys: false,
            ..self
        }
    }

    /// True when no assumption is made.
    pub fn is_empty(self) -> bool {
        self == Assumptions::default()
    }
}

/// How long, and how much, the searches (SI version orders, rw-register orders) may explore
/// before answering `unknown`.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Wall-clock limit for the search.
    pub time: Option<Duration>,
    /// Steps (placements tried) before giving up.
    pub steps: u64,
    /// Memo entries kept before giving up (memory bound).
    pub memo_entries: usize,
    /// Bytes reading the history, the inferred graph and the searches may hold together
    /// (`--memory-limit`); past it the verdict is `unknown`.
    pub memory: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            time: Some(Duration::from_secs(60)),
            steps: 20_000_000,
            memo_entries: 5_000_000,
            memory: 4 << 30,
        }
    }
}

/// Checks a transactional history against `consistency` (and, for `not` / `also_not`, against
/// the other models), within `budget.memory` bytes for the check.
pub fn check(history: &TxnHistory, consistency: Consistency, budget: &Budget) -> TxnReport {
    check_assuming(history, consistency, Assumptions::default(), budget)
}

/// [`check`] under Elle's `assumptions` (used by rw-register; list-append needs none).
pub fn check_assuming(
    history: &TxnHistory,
    consistency: Consistency,
    assumptions: Assumptions,
    budget: &Budget,
) -> TxnReport {
    let limits = crate::linear::Limits::new(budget.time, budget.memory);
    check_within(history, consistency, assumptions, budget, &limits)
}

/// [`check`], drawing the check's memory from `limits`' pool (which reading the history may
/// already have drawn on: [`TxnBuilder::limit_memory`]). When the pool refuses, the verdict
/// is `unknown`, and `unknown_reason` says what did not fit.
pub fn check_within(
    history: &TxnHistory,
    consistency: Consistency,
    assumptions: Assumptions,
    budget: &Budget,
    limits: &crate::linear::Limits,
) -> TxnReport {
    let mut ledger = memory::Ledger::new(limits);
    // The time limit counts from the start of the check (reading included), as the memory
    // budget does.
    let budget = &Budget {
        time: match (budget.time, limits.deadline) {
            (Some(t), Some(d)) => {
                Some(t.min(d.saturating_duration_since(std::time::Instant::now())))
            }
            (t, _) => t,
        },
        ..*budget
    };
    let result = match history.model {
        TxnModel::ListAppend => list_append::check_in(history, consistency, budget, &mut ledger),
        TxnModel::RwRegister => {
            rw_register::check_in(history, consistency, assumptions, budget, &mut ledger)
        }
    };
    result.unwrap_or_else(|e| out_of_memory(history, consistency, &e))
}

/// The report of a check that ran out of memory: unknown, saying why.
fn out_of_memory(history: &TxnHistory, consistency: Consistency, e: &OutOfMemory) -> TxnReport {
    let mut report = TxnReport::new(history, consistency);
    report.valid = crate::Verdict::Unknown;
    report.unknown_reason = Some(e.to_string());
    report
}

/// The report of a history whose reading stopped at the memory budget: unknown, saying why.
pub fn unread(
    model: TxnModel,
    consistency: Consistency,
    why: &crate::linear::MemoryExhausted,
) -> TxnReport {
    let empty = TxnHistory {
        model,
        txns: Vec::new(),
        keys: Vec::new(),
        writers: hashbrown::HashMap::new(),
    };
    let mut report = TxnReport::new(&empty, consistency);
    report.valid = crate::Verdict::Unknown;
    report.unknown_reason = Some(why.to_string());
    report
}
