//! rw-register: what the history proves, and a budgeted search over what it does not.
//!
//! **Proved.** Written values are unique per key, so a read names its writer: wr edges, `G1a`
//! (a value written by an aborted transaction), `G1b` (a value its writer overwrote in the same
//! transaction), `garbage-read` (a value nobody wrote), `internal` (a read contradicting the
//! transaction's own earlier write), `fuzzy-read` (a read of another value than the
//! transaction's read before, with no write of its own between: read committed allows it, each
//! read taking a new snapshot, and it is one more external read; every other model forbids
//! it, so they are not searched then). Version orders are known only in part: the initial
//! `null` precedes every write, and a transaction that read x then wrote y to a key puts y
//! after x. These give ww and rw edges; cycles among proved edges are reported as anomalies.
//!
//! **Searched.** The rest of the version order is not observable and the problem is
//! NP-complete, so the verdict comes from a search over commit orders of the committed
//! transactions (`info` ones may commit or not): serializable (and repeatable-read, equal to it
//! for item reads) and strict-serializable replay each transaction on the state left by those
//! before it (strict: in real-time order), with a memo of (transactions placed, current values)
//! and pruning of states where a pending read's value can no longer appear; snapshot isolation
//! lets each transaction read some earlier consistent snapshot under first-committer-wins.
//! Read-committed needs no search: it holds iff the wr edges are acyclic. When the budget runs
//! out the answer is `unknown`, never `valid`.

use super::graph::{scc, working_bytes, Edge, Graph, RT, RW, WR, WW};
use super::list_append::{realtime_edges, report_cycles, report_si_cycles, Why};
use super::memory::{vec_bytes, Bounded, Ledger, OutOfMemory};
use super::report::{invalid_if, not_also_not, tname, txn_ref, Anomaly, Collector, TxnReport};
use super::rw_order::{self, Decided};
use super::{Assumptions, Budget, Consistency, KeyId, Mop, Status, TxnHistory};
use crate::Verdict;
use hashbrown::{HashMap, HashSet};
use std::time::Instant;

/// A version read: key and value (None = the initial null).
type ReadVersion = (KeyId, Option<i64>);

/// The reads and writes of one transaction as the search needs them.
#[derive(Clone, Default)]
pub(crate) struct Shape {
    /// External reads: key and value (None = the initial null); several of one key when the
    /// transaction read different values there (fuzzy reads).
    pub(crate) reads: Vec<(KeyId, Option<i64>)>,
    /// Final write per key.
    pub(crate) writes: Vec<(KeyId, i64)>,
}

struct Inference<'h> {
    h: &'h TxnHistory,
    shapes: Vec<Shape>,
    committed: Vec<bool>,
    found: Collector,
    graph: Graph,
}

impl Why for Inference<'_> {
    fn history(&self) -> &TxnHistory {
        self.h
    }
    fn why(&self, e: &Edge) -> String {
        let h = self.h;
        let (a, b) = (tname(h, e.from as usize), tname(h, e.to as usize));
        let k = h.key_name(e.key);
        let show = |v: i64| {
            if v == i64::MIN {
                "null".to_string()
            } else {
                v.to_string()
            }
        };
        match e.kind {
            WR => format!("{a} wrote {k} = {}; {b} read {k} = {}, so {a} wr-precedes {b}", e.value, e.value),
            WW => format!(
                "{a} wrote {k} = {}; {b} read {k} = {} and then wrote {k} = {}, so {a} ww-precedes {b}",
                e.aux, e.aux, e.value
            ),
            RW if e.aux == i64::MIN => format!(
                "{a} read {k} = null (the initial value); {b} wrote {k} = {}, a later version, so {a} rw-precedes {b}",
                e.value
            ),
            RW => format!(
                "{a} read {k} = {}; {b} read the same version and overwrote it with {}, so {a} rw-precedes {b}",
                show(e.aux),
                e.value
            ),
            _ => super::report::realtime_why(h, e),
        }
    }
}

fn anomaly(h: &TxnHistory, txns: &[usize], explanation: String) -> Anomaly {
    Anomaly {
        txns: txns.iter().map(|&t| txn_ref(h, t)).collect(),
        cycle: Vec::new(),
        explanation,
    }
}

/// Bytes the inference's tables take beyond the edges (shapes, tables of writers and of
/// overwritten versions), per transaction, micro-op and key.
fn inference_bytes(h: &TxnHistory) -> usize {
    let mops: usize = h.txns.iter().map(|x| x.mops.len()).sum();
    h.txns.len() * 96 + mops * 64 + h.keys.len() * 64
}

fn infer<'h>(h: &'h TxnHistory, ledger: &mut Ledger) -> Result<Inference<'h>, OutOfMemory> {
    let n = h.txns.len();
    ledger.take(inference_bytes(h), || {
        format!(
            "the inference's tables for {n} transactions over {} keys",
            h.keys.len()
        )
    })?;
    let mut found = Collector::default();
    let (shapes, observed) = shapes_of(h, &mut found);
    let committed: Vec<bool> = h
        .txns
        .iter()
        .enumerate()
        .map(|(t, x)| x.status == Status::Ok || (x.status == Status::Info && observed[t]))
        .collect();
    let mut edges: Bounded<Edge> = Bounded::new(ledger, "the dependency graph's edges");
    proved_edges(h, &shapes, &committed, &mut edges);
    realtime_edges(h, &committed, &mut edges);
    let edges = edges.finish()?;
    let graph = Graph::new_in(n, edges, ledger)?;
    Ok(Inference {
        h,
        shapes,
        committed,
        found,
        graph,
    })
}

/// Each transaction's shape (its external reads and its last write per key) and which
/// transactions were observed (a committed transaction read a value they wrote); on the
/// way, reads that contradict the transaction's own write (internal), reads of another
/// value than its read before with no write of its own between (fuzzy-read: read committed
/// allows it, and the read is one more external read), of nothing written (garbage-read), of
/// aborted writes (G1a) and of intermediate ones (G1b).
fn shapes_of(h: &TxnHistory, found: &mut Collector) -> (Vec<Shape>, Vec<bool>) {
    let n = h.txns.len();
    let mut shapes = vec![Shape::default(); n];
    let mut observed = vec![false; n];
    for (t, x) in h.txns.iter().enumerate() {
        let mut seen: Vec<(KeyId, Option<i64>, bool)> = Vec::new(); // key, value, by own write
        for m in &x.mops {
            match m {
                Mop::Write { key, value } => {
                    match seen.iter_mut().find(|s| s.0 == *key) {
                        Some(s) => *s = (*key, Some(*value), true),
                        None => seen.push((*key, Some(*value), true)),
                    }
                    match shapes[t].writes.iter_mut().find(|w| w.0 == *key) {
                        Some(w) => w.1 = *value,
                        None => shapes[t].writes.push((*key, *value)),
                    }
                }
                Mop::ReadReg {
                    key,
                    value: Some(v),
                } if x.status == Status::Ok => {
                    match seen.iter_mut().find(|s| s.0 == *key) {
                        Some(s) if s.1 == *v => continue,
                        Some(s) if s.2 => {
                            repeated_read(h, t, *key, s.1, *v, true, found);
                            continue;
                        }
                        Some(s) => {
                            repeated_read(h, t, *key, s.1, *v, false, found);
                            s.1 = *v;
                        }
                        None => seen.push((*key, *v, false)),
                    }
                    shapes[t].reads.push((*key, *v));
                    if let Some(val) = v {
                        external_read(h, t, *key, *val, &mut observed, found);
                    }
                }
                _ => {}
            }
        }
    }
    (shapes, observed)
}

/// Reports transaction `t`'s read of `v` from `key` after it read or (`own`) wrote `prev`
/// there: internal after its own write, a fuzzy read after its own read.
fn repeated_read(
    h: &TxnHistory,
    t: usize,
    key: KeyId,
    prev: Option<i64>,
    v: Option<i64>,
    own: bool,
    found: &mut Collector,
) {
    let show = |v: Option<i64>| v.map_or("null".to_string(), |x| x.to_string());
    let k = h.key_name(key);
    let (kind, explanation) = if own {
        let what = format!("after its own write of {}", show(prev));
        (
            "internal",
            format!("{} read {k} = {} {what}", tname(h, t), show(v)),
        )
    } else {
        let what = format!(
            "{} read {k} = {}, then {k} = {} with no write of its own between",
            tname(h, t),
            show(prev),
            show(v)
        );
        ("fuzzy-read", what)
    };
    found.add(kind, || anomaly(h, &[t], explanation));
}

/// Checks transaction `t`'s external read of `val` from `key` against its writer: marks
/// the writer observed, and reports a read of nothing written (garbage-read), of `t`'s own
/// later write (internal), of an aborted write (G1a) or of an intermediate one (G1b).
fn external_read(
    h: &TxnHistory,
    t: usize,
    key: KeyId,
    val: i64,
    observed: &mut [bool],
    found: &mut Collector,
) {
    let last_write = |t: usize, k: KeyId| {
        h.txns[t].mops.iter().rev().find_map(|m| match m {
            Mop::Write { key, value } if *key == k => Some(*value),
            _ => None,
        })
    };
    let k = h.key_name(key);
    let Some(&w) = h.writers.get(&(key, val)) else {
        found.add("garbage-read", || {
            anomaly(
                h,
                &[t],
                format!(
                    "{} read {k} = {val}, but no transaction wrote {val} to {k}",
                    tname(h, t)
                ),
            )
        });
        return;
    };
    let w = w as usize;
    observed[w] = true;
    if w == t {
        found.add("internal", || {
            anomaly(
                h,
                &[t],
                format!(
                    "{} read {k} = {val}, a value it writes only later",
                    tname(h, t)
                ),
            )
        });
    } else if h.txns[w].status == Status::Fail {
        found.add("G1a", || {
            anomaly(
                h,
                &[w, t],
                format!(
                    "{} wrote {k} = {val} and failed (aborted); {} read {k} = {val}",
                    tname(h, w),
                    tname(h, t)
                ),
            )
        });
    } else if let Some(fin) = last_write(w, key).filter(|f| *f != val) {
        found.add("G1b", || anomaly(h, &[w, t], format!("{} wrote {k} = {val} and later {k} = {fin}; {} read {k} = {val}, an intermediate version", tname(h, w), tname(h, t))));
    }
}

/// The edges the history proves: write-read from a value's writer to its reader,
/// read-write from a reader to whoever overwrote what it read after reading it (and from a
/// reader of the initial nil to every writer of the key), and write-write from a value's
/// writer to such an overwriter.
fn proved_edges(h: &TxnHistory, shapes: &[Shape], committed: &[bool], edges: &mut Bounded<Edge>) {
    let writer = &h.writers;
    let mut writers_of: HashMap<KeyId, Vec<u32>> = HashMap::new();
    for (t, s) in shapes.iter().enumerate() {
        if committed[t] {
            for &(k, _) in &s.writes {
                writers_of.entry(k).or_default().push(t as u32);
            }
        }
    }
    // Who overwrote each version after reading it: (key, value read) -> transactions.
    let mut overwriters: HashMap<ReadVersion, Vec<(u32, i64)>> = HashMap::new();
    for (t, s) in shapes.iter().enumerate() {
        if !committed[t] || h.txns[t].status != Status::Ok {
            continue;
        }
        for &(k, v) in &s.reads {
            if let Some(&(_, w)) = s.writes.iter().find(|w| w.0 == k) {
                overwriters.entry((k, v)).or_default().push((t as u32, w));
            }
        }
    }
    for (t, s) in shapes.iter().enumerate() {
        if !committed[t] || h.txns[t].status != Status::Ok {
            continue;
        }
        for &(k, v) in &s.reads {
            match v {
                Some(x) => {
                    if let Some(&w) = writer.get(&(k, x)) {
                        if committed[w as usize] && w as usize != t {
                            edges.push(Edge {
                                from: w,
                                to: t as u32,
                                kind: WR,
                                key: k,
                                value: x,
                                aux: 0,
                            });
                        }
                    }
                    for &(o, y) in overwriters.get(&(k, Some(x))).map_or(&[][..], |v| v) {
                        if o as usize != t {
                            edges.push(Edge {
                                from: t as u32,
                                to: o,
                                kind: RW,
                                key: k,
                                value: y,
                                aux: x,
                            });
                        }
                        if let Some(&w) = writer.get(&(k, x)) {
                            if committed[w as usize] && w != o {
                                edges.push(Edge {
                                    from: w,
                                    to: o,
                                    kind: WW,
                                    key: k,
                                    value: y,
                                    aux: x,
                                });
                            }
                        }
                    }
                }
                None => {
                    for &o in writers_of.get(&k).map_or(&[][..], |v| v) {
                        if o as usize != t {
                            let y = shapes[o as usize]
                                .writes
                                .iter()
                                .find(|w| w.0 == k)
                                .map_or(0, |w| w.1);
                            edges.push(Edge {
                                from: t as u32,
                                to: o,
                                kind: RW,
                                key: k,
                                value: y,
                                aux: i64::MIN,
                            });
                        }
                    }
                }
            }
        }
    }
}

/// The budgeted search for an order.
struct Search<'a> {
    h: &'a TxnHistory,
    shapes: &'a [Shape],
    cands: Vec<usize>,
    must: usize,
    c: Consistency,
    budget: &'a Budget,
    start: Instant,
    steps: u64,
    memo: HashSet<(Vec<u64>, Vec<Option<i64>>)>,
    out: bool,
    /// ok transactions that must precede each candidate (strict).
    preds: Vec<Vec<usize>>,
    /// Writer of each (key, value).
    writer: HashMap<(KeyId, i64), usize>,
    /// Where the memo's entries are reserved.
    ledger: &'a mut Ledger,
    /// Set when the ledger refused a memo entry (then `out` is set too).
    oom: Option<OutOfMemory>,
}

enum Found {
    Yes,
    No,
    OutOfBudget(String),
}

impl Search<'_> {
    fn tick(&mut self) -> bool {
        self.steps += 1;
        if self.steps > self.budget.steps
            || self.memo.len() > self.budget.memo_entries
            || (self.steps.is_multiple_of(4096)
                && self.budget.time.is_some_and(|t| self.start.elapsed() > t))
        {
            self.out = true;
        }
        self.out
    }

    /// Serializable / strict: DFS with memo over (placed, current values).
    fn serial(
        &mut self,
        placed: &mut Vec<bool>,
        bits: &mut Vec<u64>,
        vals: &mut Vec<Option<i64>>,
        done_ok: usize,
    ) -> bool {
        if done_ok == self.must {
            return true;
        }
        if self.memo.contains(&(bits.clone(), vals.clone())) {
            return false;
        }
        // The entry's two vectors and its slot in the table (at 7/8 load, doubling).
        let entry = vec_bytes::<u64>(bits.len())
            + vec_bytes::<Option<i64>>(vals.len())
            + 2 * std::mem::size_of::<(Vec<u64>, Vec<Option<i64>>)>();
        let len = self.memo.len();
        if let Err(e) = self
            .ledger
            .take(entry, || format!("the search's memo ({len} entries)"))
        {
            self.oom = Some(e);
            self.out = true;
            return false;
        }
        self.memo.insert((bits.clone(), vals.clone()));
        // Prune: a pending read of a value overwritten for good can never be satisfied.
        for &t in &self.cands {
            if placed[t] || self.h.txns[t].status != Status::Ok {
                continue;
            }
            for &(k, v) in &self.shapes[t].reads {
                if vals[k as usize] == v {
                    continue;
                }
                // Unique values: once a key moves past v, v never comes back; v can still
                // appear only if its writer is yet to commit.
                let writer_pending =
                    v.is_some_and(|x| self.writer.get(&(k, x)).is_some_and(|&w| !placed[w]));
                if !writer_pending {
                    return false;
                }
            }
        }
        for i in 0..self.cands.len() {
            let t = self.cands[i];
            if placed[t] || self.tick() {
                if self.out {
                    return false;
                }
                continue;
            }
            if self.c == Consistency::StrictSerializable
                && self.preds[t].iter().any(|&p| !placed[p])
            {
                continue;
            }
            if self.shapes[t]
                .reads
                .iter()
                .any(|&(k, v)| vals[k as usize] != v)
                && self.h.txns[t].status == Status::Ok
            {
                continue;
            }
            let saved: Vec<(KeyId, Option<i64>)> = self.shapes[t]
                .writes
                .iter()
                .map(|&(k, _)| (k, vals[k as usize]))
                .collect();
            for &(k, v) in &self.shapes[t].writes {
                vals[k as usize] = Some(v);
            }
            placed[t] = true;
            bits[i / 64] |= 1 << (i % 64);
            let ok_t = (self.h.txns[t].status == Status::Ok) as usize;
            let r = self.serial(placed, bits, vals, done_ok + ok_t);
            bits[i / 64] &= !(1 << (i % 64));
            placed[t] = false;
            for (k, v) in saved {
                vals[k as usize] = v;
            }
            if r {
                return true;
            }
            if self.out {
                return false;
            }
        }
        false
    }

    /// Snapshot isolation: DFS over commit orders; versions[k] = (position, value).
    fn si(
        &mut self,
        placed: &mut Vec<bool>,
        order_len: usize,
        versions: &mut Vec<Vec<(usize, Option<i64>)>>,
        done_ok: usize,
    ) -> bool {
        if done_ok == self.must {
            return true;
        }
        for i in 0..self.cands.len() {
            let t = self.cands[i];
            if placed[t] {
                continue;
            }
            if self.tick() {
                return false;
            }
            // Snapshot s (state after s commits) must lie in every read's interval and after
            // the last commit that wrote a key t writes (first committer wins).
            let mut lo = 0usize;
            let mut hi = order_len; // inclusive
            for &(k, _) in &self.shapes[t].writes {
                if let Some(&(p, _)) = versions[k as usize].last() {
                    lo = lo.max(p);
                }
            }
            if self.h.txns[t].status == Status::Ok {
                for &(k, v) in &self.shapes[t].reads {
                    let vs = &versions[k as usize];
                    let Some(j) = vs.iter().position(|x| x.1 == v) else {
                        hi = 0;
                        lo = 1;
                        break;
                    };
                    lo = lo.max(vs[j].0);
                    if let Some(next) = vs.get(j + 1) {
                        hi = hi.min(next.0 - 1);
                    }
                }
            }
            if lo > hi {
                continue;
            }
            for &(k, v) in &self.shapes[t].writes {
                versions[k as usize].push((order_len + 1, Some(v)));
            }
            placed[t] = true;
            let ok_t = (self.h.txns[t].status == Status::Ok) as usize;
            let r = self.si(placed, order_len + 1, versions, done_ok + ok_t);
            placed[t] = false;
            for &(k, _) in &self.shapes[t].writes {
                versions[k as usize].pop();
            }
            if r {
                return true;
            }
            if self.out {
                return false;
            }
        }
        false
    }
}

fn search(
    inf: &Inference,
    c: Consistency,
    budget: &Budget,
    ledger: &mut Ledger,
) -> Result<Found, OutOfMemory> {
    let h = inf.h;
    let cands: Vec<usize> = (0..h.txns.len())
        .filter(|&t| {
            inf.committed[t]
                || (h.txns[t].status == Status::Info && !inf.shapes[t].writes.is_empty())
        })
        .collect();
    let must = cands
        .iter()
        .filter(|&&t| h.txns[t].status == Status::Ok)
        .count();
    let nk = h.keys.len();
    let writes: usize = inf.shapes.iter().map(|s| s.writes.len()).sum();
    // Candidates, placed flags, the writers' table, the versions of snapshot isolation and
    // the memo's bit sets and values.
    let fixed = h.txns.len() * 16 + writes * 64 + nk * 64;
    ledger.take(fixed, || {
        format!("the search's tables for {} transactions", h.txns.len())
    })?;
    let start = Instant::now();
    let mut preds = vec![Vec::new(); h.txns.len()];
    if c == Consistency::StrictSerializable {
        let mut held = 0usize;
        for (i, &t) in cands.iter().enumerate() {
            for &a in &cands {
                if h.txns[a].status == Status::Ok && h.precedes(a, t) {
                    preds[t].push(a);
                    held += 8;
                }
            }
            // Reserved per candidate (at most its doubled capacity), with the time limit.
            let bytes = vec_bytes::<usize>(preds[t].capacity());
            ledger.take(bytes, || {
                format!("the real-time predecessors of the search ({i} of {} transactions, {held} bytes)", cands.len())
            })?;
            if i % 256 == 0 && budget.time.is_some_and(|l| start.elapsed() > l) {
                return Ok(Found::OutOfBudget(format!(
                    "{}: the time limit passed while ordering {} transactions by real time",
                    c.name(),
                    cands.len()
                )));
            }
        }
    }
    let mut writer = HashMap::new();
    for (t, s) in inf.shapes.iter().enumerate() {
        for &(k, v) in &s.writes {
            writer.insert((k, v), t);
        }
    }
    let mut s = Search {
        h,
        shapes: &inf.shapes,
        cands,
        must,
        c,
        budget,
        start,
        steps: 0,
        memo: HashSet::new(),
        out: false,
        preds,
        writer,
        ledger: &mut *ledger,
        oom: None,
    };
    let mut placed = vec![false; h.txns.len()];
    let found = match c {
        Consistency::SnapshotIsolation => {
            let mut versions = vec![vec![(0usize, None)]; nk];
            s.si(&mut placed, 0, &mut versions, 0)
        }
        _ => {
            let mut bits = vec![0u64; s.cands.len().div_ceil(64)];
            let mut vals = vec![None; nk];
            s.serial(&mut placed, &mut bits, &mut vals, 0)
        }
    };
    if let Some(e) = s.oom.take() {
        return Ok(Found::OutOfBudget(format!(
            "{}: the search over orders of {} transactions stopped after {} steps: {e}",
            c.name(),
            s.cands.len(),
            s.steps
        )));
    }
    Ok(if found {
        Found::Yes
    } else if s.out {
        Found::OutOfBudget(format!(
            "{}: the search over orders of {} transactions stopped after {} steps ({} memo entries, {:.1?}) without an answer",
            c.name(),
            s.cands.len(),
            s.steps,
            s.memo.len(),
            s.start.elapsed()
        ))
    } else {
        Found::No
    })
}

/// The plain exhaustive search over commit orders (no version-order inference), kept as a
/// reference the tests hold the checker to on histories too large for [`super::oracle`] but
/// small enough to search: whether `h` satisfies `c`, or why `budget` ran out first.
pub fn reference(h: &TxnHistory, c: Consistency, budget: &Budget) -> Result<bool, String> {
    let limits = crate::linear::Limits::new(budget.time, budget.memory);
    let mut ledger = Ledger::new(&limits);
    let inf = infer(h, &mut ledger).map_err(|e| e.to_string())?;
    if inf.found.violates(Consistency::ReadCommitted)
        || scc(&inf.graph, WR).iter().any(|c| *c != u32::MAX)
    {
        return Ok(false);
    }
    if inf.found.violates(c) {
        return Ok(false);
    }
    let c = match c {
        Consistency::ReadCommitted => return Ok(true),
        Consistency::RepeatableRead => Consistency::Serializable,
        c => c,
    };
    match search(&inf, c, budget, &mut ledger).map_err(|e| e.to_string())? {
        Found::Yes => Ok(true),
        Found::No => Ok(false),
        Found::OutOfBudget(why) => Err(why),
    }
}

/// Checks an rw-register history, reserving what the check builds from `ledger`.
pub(crate) fn check_in(
    h: &TxnHistory,
    consistency: Consistency,
    assume: Assumptions,
    budget: &Budget,
    ledger: &mut Ledger,
) -> Result<TxnReport, OutOfMemory> {
    let mut inf = infer(h, ledger)?;
    let n = h.txns.len();
    ledger.take(working_bytes(n), || {
        format!("the cycle searches' working space for {n} transactions")
    })?;
    let mut found = std::mem::take(&mut inf.found);
    let base_bad = found.violates(Consistency::ReadCommitted);
    let rc_bad = base_bad || scc(&inf.graph, WR).iter().any(|c| *c != u32::MAX);
    let d = Decider {
        inf: &inf,
        why_not: std::cell::RefCell::new(Vec::new()),
    };
    let mut reasons: Vec<(Consistency, String)> = Vec::new();
    // Anomalies found outside cycles that a model forbids (a fuzzy read: every model but
    // read committed) decide it, searched or not.
    let by_found: Vec<Consistency> = Consistency::ALL
        .into_iter()
        .filter(|c| found.violates(*c))
        .collect();
    let verdicts = all_verdicts(&d, rc_bad, &by_found, assume, budget, ledger, &mut reasons)?;
    let verdict = verdicts
        .iter()
        .find(|(c, _)| *c == consistency)
        .map_or(Verdict::Valid, |v| v.1);
    if verdicts.iter().any(|v| v.1 == Verdict::Invalid) {
        report_anomalies(&d, consistency, verdict, &mut found);
    }
    let mut report = TxnReport::new(h, consistency);
    let beyond = assume.beyond(consistency);
    if verdict == Verdict::Invalid
        && !rc_bad
        && !by_found.contains(&consistency)
        && !beyond.is_empty()
    {
        // Invalid under the assumptions: does it hold without them?
        let c = match consistency {
            Consistency::RepeatableRead => Consistency::Serializable,
            c => c,
        };
        let mut ignored = Vec::new();
        if d.run(c, Assumptions::default(), &mut ignored, ledger, budget)? != Verdict::Invalid {
            report.assumptions = beyond.names();
        }
    }
    report.valid = verdict;
    if verdict == Verdict::Unknown {
        let wanted = match consistency {
            Consistency::RepeatableRead => Consistency::Serializable,
            c => c,
        };
        let own = reasons.iter().position(|r| r.0 == wanted).unwrap_or(0);
        report.unknown_reason = reasons.into_iter().nth(own).map(|r| r.1);
    }
    let (not, also) = not_also_not(&verdicts);
    report.not = not;
    report.also_not = also;
    report.anomalies = found.anomalies;
    report.anomaly_counts = found.counts;
    Ok(report)
}

/// Every model's verdict: invalid throughout when the history is not read committed (`rc_bad`);
/// a model that an anomaly found outside cycles forbids (`by_found`) invalid, and the version
/// orders searched only for the models left.
fn all_verdicts(
    d: &Decider,
    rc_bad: bool,
    by_found: &[Consistency],
    assume: Assumptions,
    budget: &Budget,
    ledger: &mut Ledger,
    reasons: &mut Vec<(Consistency, String)>,
) -> Result<Vec<(Consistency, Verdict)>, OutOfMemory> {
    if rc_bad {
        return Ok(Consistency::ALL.map(|c| (c, Verdict::Invalid)).to_vec());
    }
    if by_found.len() == Consistency::ALL.len() - 1 {
        return Ok(Consistency::ALL
            .map(|c| (c, invalid_if(by_found.contains(&c))))
            .to_vec());
    }
    let searched = every_verdict(d, assume, budget, ledger, reasons)?;
    Ok(searched
        .into_iter()
        .map(|(c, v)| {
            (
                c,
                if by_found.contains(&c) {
                    Verdict::Invalid
                } else {
                    v
                },
            )
        })
        .collect())
}

/// Runs the version-order decision of an inferred history for one model at a time, keeping
/// why each invalid one is.
struct Decider<'a, 'h> {
    inf: &'a Inference<'h>,
    /// Why each model found invalid is (what the search proved).
    why_not: std::cell::RefCell<Vec<(Consistency, String)>>,
}

impl Decider<'_, '_> {
    /// Decides model `c` within `budget`; an exhausted budget is `unknown`, its reason added
    /// to `reasons`. What the search reserved from `ledger` is given back.
    fn run(
        &self,
        c: Consistency,
        assume: Assumptions,
        reasons: &mut Vec<(Consistency, String)>,
        ledger: &mut Ledger,
        budget: &Budget,
    ) -> Result<Verdict, OutOfMemory> {
        let before = ledger.held();
        let input = rw_order::Input {
            h: self.inf.h,
            shapes: &self.inf.shapes,
            committed: &self.inf.committed,
            graph: &self.inf.graph,
        };
        let found = rw_order::decide(&input, c, assume, budget, ledger);
        ledger.release(ledger.held().saturating_sub(before));
        Ok(match found? {
            Decided::Valid => Verdict::Valid,
            Decided::Invalid(why) => {
                self.why_not.borrow_mut().push((c, why));
                Verdict::Invalid
            }
            Decided::OutOfBudget(why) => {
                reasons.push((c, format!("{}: {why}", c.name())));
                Verdict::Unknown
            }
        })
    }
}

/// The verdict of every model, for a history that is read committed.
fn every_verdict(
    d: &Decider,
    assume: Assumptions,
    budget: &Budget,
    ledger: &mut Ledger,
    reasons: &mut Vec<(Consistency, String)>,
) -> Result<Vec<(Consistency, Verdict)>, OutOfMemory> {
    // Strict serializability first, on a tenth of the budget: its real-time edges force
    // most version orders, so a history that has it (what a database serializing on
    // one server, or any strictly serializable one, produces) is decided at once, and
    // its witness order also satisfies every weaker model (a cycle of those would be
    // one of strict serializability's). A real MariaDB serializable rw-register run of
    // 2,693 transactions was `unknown` under serializable after 60 s, and strictly
    // serializable in well under a second.
    let quick = Budget {
        time: budget.time.map(|t| t / 10),
        steps: budget.steps / 10,
        ..*budget
    };
    let mut ignored = Vec::new();
    let first = d.run(
        Consistency::StrictSerializable,
        assume,
        &mut ignored,
        ledger,
        &quick,
    )?;
    let (ser, si, ss) = if first == Verdict::Valid {
        (Verdict::Valid, Verdict::Valid, Verdict::Valid)
    } else {
        let ser = d.run(Consistency::Serializable, assume, reasons, ledger, budget)?;
        let strict = |reasons: &mut Vec<(Consistency, String)>, ledger: &mut Ledger| {
            if first == Verdict::Invalid || ser == Verdict::Invalid {
                Ok(Verdict::Invalid)
            } else {
                d.run(
                    Consistency::StrictSerializable,
                    assume,
                    reasons,
                    ledger,
                    budget,
                )
            }
        };
        match ser {
            Verdict::Valid => (ser, Verdict::Valid, strict(reasons, ledger)?),
            Verdict::Invalid | Verdict::Unknown => (
                ser,
                d.run(
                    Consistency::SnapshotIsolation,
                    assume,
                    reasons,
                    ledger,
                    budget,
                )?,
                strict(reasons, ledger)?,
            ),
        }
    };
    Ok(vec![
        (Consistency::ReadCommitted, Verdict::Valid),
        (Consistency::RepeatableRead, ser),
        (Consistency::SnapshotIsolation, si),
        (Consistency::Serializable, ser),
        (Consistency::StrictSerializable, ss),
    ])
}

/// The cycles that show why the history is invalid under some model; when the model asked
/// for is invalid without a single cycle proved, why no order works.
fn report_anomalies(
    d: &Decider,
    consistency: Consistency,
    verdict: Verdict,
    found: &mut Collector,
) {
    let (inf, g) = (d.inf, &d.inf.graph);
    let why_not = &d.why_not;
    let mut seen = HashSet::new();
    report_cycles(inf, g, WR, found, &mut seen);
    report_si_cycles(inf, g, found, &mut seen);
    report_cycles(inf, g, WW | WR | RW, found, &mut seen);
    report_cycles(inf, g, WW | WR | RW | RT, found, &mut seen);
    if verdict == Verdict::Invalid && !found.violates(consistency) {
        let n = inf.committed.iter().filter(|c| **c).count();
        found.add("no-valid-order", || Anomaly {
                txns: Vec::new(),
                cycle: Vec::new(),
                explanation: format!(
                    "no order of the {n} committed transactions (with or without each info one) is {}: {}; no single cycle follows from the versions the history proves alone",
                    consistency.name(),
                    why_not
                        .borrow()
                        .iter()
                        .find(|w| w.0 == consistency || (w.0 == Consistency::Serializable && consistency == Consistency::RepeatableRead))
                        .map_or("the search found none", |w| w.1.as_str())
                ),
            });
    }
}
