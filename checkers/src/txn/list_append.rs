//! list-append: Adya's direct serialization graph inferred from whole-list reads, and exact
//! verdicts for every consistency model.
//!
//! **Inference.** The version order of a key is its longest read; every read must be a prefix
//! of it (`incompatible-order`) without repeated elements (`duplicate`). Appends no read
//! observed come after every observed element. `info` transactions are committed exactly when
//! some read observed one of their appends (leaving an unobserved one out is always allowed,
//! and never adds a constraint); `fail` transactions never happened (a read of their append is
//! `G1a`). A transaction's *external* reads of a key are the committed states its reads show
//! ([`super::list_reads`]): each read before its first append there (one that differs from
//! the read before is a `fuzzy-read`, which read committed allows), and the base its appends
//! went onto, the first read after them without its own appends at the end (`internal` when
//! anything contradicts them). Edges: ww between
//! consecutive versions, wr from the appender of the last element read, rw to the appender of
//! the next element (and to every unobserved appender of the key for a read of the whole
//! version order), realtime as a transitive reduction, all between committed transactions.
//!
//! **Exactness.** Without `internal`, `duplicate`, `incompatible-order`, `G1a`, `G1b`:
//! - serializable iff ww ∪ wr ∪ rw is acyclic (strict: with realtime). A topological order is a
//!   serial execution reproducing every read: the appenders of a read's elements precede it in
//!   version order (wr then ww back), those of later elements follow it (rw then ww), and
//!   unobserved appends follow every reader. The order among unobserved appends of one key is
//!   free and no read constrains it, so leaving those ww edges out loses nothing.
//! - read-committed iff ww ∪ wr is acyclic (a commit order in which every read sees a
//!   committed prefix taken before its transaction commits; each external read its own, so
//!   fuzzy reads are allowed).
//! - every other model forbids a fuzzy read (its two reads close a cycle through an rw edge
//!   anyway).
//! - repeatable-read equals serializable here: with item reads only, PL-2.99 and PL-3 coincide.
//! - snapshot isolation iff some order of the unobserved appends of each key makes
//!   (ww ∪ wr) ; rw? acyclic (Cerone & Gotsman). The free orders matter here (two unobserved
//!   appenders that both read the final version are a lost update whichever goes first), so the
//!   checker tries a greedy order (a topological order of the SI graph), then searches all
//!   orders key by key with a step budget, pruning an order as soon as it closes a cycle;
//!   `unknown` only when the budget runs out.

use super::graph::{
    bfs_path, graph_bytes, product_succ, scc, scc_order, shortest_cycle, working_bytes, Edge,
    Graph, RT, RW, WR, WW,
};
use super::list_reads::{external_reads, ExtRead, Longest};
use super::memory::{Bounded, Ledger, OutOfMemory};
use super::report::{
    cycle_anomaly, invalid_if, not_also_not, realtime_why, show_list, tname, txn_ref, Anomaly,
    Collector, TxnReport,
};
use super::si_order::{dyn_order_bytes, witness, FreeKey};
use super::{Budget, Consistency, KeyId, Mop, Status, TxnHistory};
use crate::Verdict;
use hashbrown::{HashMap, HashSet};
use std::time::Instant;

/// Everything inferred from a list-append history.
pub struct Inference<'h> {
    h: &'h TxnHistory,
    /// Committed transactions.
    pub committed: Vec<bool>,
    /// Version order per key: (transaction, mop, length) of its longest external read.
    longest: Vec<Option<(u32, u32, u32)>>,
    /// Unobserved committed appenders per key (transaction, its first and last value there).
    unobserved: Vec<Vec<(u32, i64, i64)>>,
    ext: Vec<ExtRead>,
    /// Non-cycle anomalies.
    pub found: Collector,
    /// Edges without the free order of unobserved appends.
    pub graph: Graph,
}

impl<'h> Inference<'h> {
    fn read_of(&self, t: u32, m: u32) -> &'h [i64] {
        match &self.h.txns[t as usize].mops[m as usize] {
            Mop::ReadList { value: Some(v), .. } => v,
            _ => &[],
        }
    }

    fn version(&self, k: KeyId) -> &'h [i64] {
        match self.longest[k as usize] {
            Some((t, m, len)) => &self.read_of(t, m)[..len as usize],
            None => &[],
        }
    }

    /// Transaction `t`'s external reads of key `k`, in the order it made them (several when
    /// it read different committed states: fuzzy reads).
    fn ext_reads(&self, t: u32, k: KeyId) -> impl Iterator<Item = &'h [i64]> + '_ {
        // Few reads per transaction: a scan of its external reads is cheapest.
        let i = self.ext.partition_point(|e| e.txn < t);
        self.ext[i..]
            .iter()
            .take_while(move |e| e.txn == t)
            .filter(move |e| e.key == k)
            .map(|e| &self.read_of(e.txn, e.mop)[..e.len as usize])
    }

    /// The external read of `k` by `t` a wr edge for the element `last` comes from.
    fn read_ending(&self, t: u32, k: KeyId, last: i64) -> &'h [i64] {
        self.ext_reads(t, k)
            .find(|r| r.last() == Some(&last))
            .unwrap_or(&[])
    }

    /// The external read of `k` by `t` an rw edge to the appender of `next` comes from: the
    /// longest that ends before `next` in the version order (any read, for an unobserved
    /// `next`).
    fn read_before(&self, t: u32, k: KeyId, next: i64) -> &'h [i64] {
        let at = self
            .version(k)
            .iter()
            .position(|v| *v == next)
            .unwrap_or(usize::MAX);
        self.ext_reads(t, k)
            .filter(|r| r.len() <= at)
            .max_by_key(|r| r.len())
            .unwrap_or(&[])
    }

    /// Why an edge exists, in words a person can check against the history.
    pub fn why(&self, e: &Edge) -> String {
        let h = self.h;
        let (a, b) = (tname(h, e.from as usize), tname(h, e.to as usize));
        let k = h.key_name(e.key);
        let v = self.version(e.key);
        let witness = || match self.longest[e.key as usize] {
            Some((t, _, _)) => format!("{} read {k} = {}", tname(h, t as usize), show_list(v)),
            None => format!("no read of {k}"),
        };
        match e.kind {
            WW if v.contains(&e.value) => format!(
                "{a} appended {} to {k} and {b} appended {}, next in the version order of {k} ({}), so {a} ww-precedes {b}",
                e.aux, e.value, witness()
            ),
            WW if !v.contains(&e.aux) => format!(
                "neither {a}'s append of {} nor {b}'s append of {} to {k} was ever read, so their order is not observable; snapshot isolation fails whichever order they and the other unread appends take (the checker tried them all), and this cycle uses {a} before {b}",
                e.aux, e.value
            ),
            WW => format!(
                "{a} appended {} to {k}; {b} appended {} to {k}, which no read observed, so it comes after every observed element (the last, {}, by {a}; {}), so {a} ww-precedes {b}",
                e.aux, e.value, e.aux, witness()
            ),
            WR => format!(
                "{a} appended {} to {k}; {b} read {k} = {}, which ends with it, so {a} wr-precedes {b}",
                e.value,
                show_list(self.read_ending(e.to, e.key, e.value))
            ),
            RW => {
                let read = show_list(self.read_before(e.from, e.key, e.value));
                if v.contains(&e.value) {
                    format!(
                        "{a} read {k} = {read}; {b} appended {}, the next element of {k} after that ({}), so {a} rw-precedes {b}",
                        e.value, witness()
                    )
                } else {
                    format!(
                        "{a} read {k} = {read}; {b} appended {} to {k}, which no read observed, so it comes after every version {a} could have read, so {a} rw-precedes {b}",
                        e.value
                    )
                }
            }
            _ => realtime_why(h, e),
        }
    }
}

/// Transaction `t`'s appends to key `k`, in order.
pub(super) fn own_appends(h: &TxnHistory, t: usize, k: KeyId) -> impl Iterator<Item = i64> + '_ {
    h.txns[t].mops.iter().filter_map(move |m| match m {
        Mop::Append { key, value } if *key == k => Some(*value),
        _ => None,
    })
}

/// A non-cycle anomaly of transactions `txns`.
pub(super) fn anomaly(h: &TxnHistory, txns: &[usize], explanation: String) -> Anomaly {
    Anomaly {
        txns: txns.iter().map(|&t| txn_ref(h, t)).collect(),
        cycle: Vec::new(),
        explanation,
    }
}

/// Explains edges (for cycle reports shared by both models).
pub(crate) trait Why {
    /// The history.
    fn history(&self) -> &TxnHistory;
    /// Why `e` exists.
    fn why(&self, e: &Edge) -> String;
}

impl Why for Inference<'_> {
    fn history(&self) -> &TxnHistory {
        self.h
    }
    fn why(&self, e: &Edge) -> String {
        Inference::why(self, e)
    }
}

/// Infers the dependency graph and the non-cycle anomalies.
pub fn infer(h: &TxnHistory) -> Inference<'_> {
    match infer_in(h, &mut Ledger::with_limit(usize::MAX)) {
        Ok(inf) => inf,
        // A pool of usize::MAX bytes refuses nothing.
        Err(e) => unreachable!("{e}"),
    }
}

/// Bytes the inference's tables take beyond the edges: per transaction, per key, per read
/// and per element read (an upper bound: the version orders are made of reads).
fn inference_bytes(h: &TxnHistory) -> usize {
    let (mut reads, mut elems) = (0usize, 0usize);
    for x in &h.txns {
        for m in &x.mops {
            if let Mop::ReadList { value: Some(v), .. } = m {
                reads += 1;
                elems += v.len();
            }
        }
    }
    h.txns.len() * 48 + h.keys.len() * 128 + reads * 24 + elems * 4
}

/// Unobserved appends of committed transactions, per key: (transaction, its first and last
/// such element there).
type Unobserved = Vec<Vec<(u32, i64, i64)>>;

/// [`infer`], reserving what it builds from `ledger` first.
pub(crate) fn infer_in<'h>(
    h: &'h TxnHistory,
    ledger: &mut Ledger,
) -> Result<Inference<'h>, OutOfMemory> {
    let n = h.txns.len();
    let nk = h.keys.len();
    ledger.take(inference_bytes(h), || {
        format!("the inference's tables for {n} transactions over {nk} keys")
    })?;
    let mut found = Collector::default();
    report_duplicates(h, &mut found);
    let (mut ext, longest) = external_reads(h, &mut found);
    let mut elements = Elements {
        h,
        observed: vec![false; n],
        obs_count: vec![0u32; n],
    };
    // Appender of each element of each key's version order (u32::MAX: nobody).
    let mut ver_app: Vec<Vec<u32>> = vec![Vec::new(); nk];
    for k in 0..nk as KeyId {
        if let Some((t, _, _)) = longest[k as usize] {
            ver_app[k as usize] =
                elements.scan(t as usize, k, version(h, &longest, k), &mut found, true);
        }
    }
    report_incompatible_orders(h, &ext, &longest, &mut elements, &mut found);
    let committed: Vec<bool> = h
        .txns
        .iter()
        .enumerate()
        .map(|(t, x)| x.status == Status::Ok || (x.status == Status::Info && elements.observed[t]))
        .collect();
    report_dirty_updates(h, &longest, &ver_app, &committed, &mut found);
    let unobserved = unobserved_appends(h, &longest, &committed, &elements.obs_count);
    let mut edges: Bounded<Edge> = Bounded::new(ledger, "the dependency graph's edges");
    version_edges(h, &longest, &ver_app, &committed, &unobserved, &mut edges);
    read_edges(
        h,
        &ext,
        &longest,
        &ver_app,
        &committed,
        &unobserved,
        &mut edges,
    );
    realtime_edges(h, &committed, &mut edges);
    let edges = edges.finish()?;
    ext.sort_unstable_by_key(|e| (e.txn, e.key, e.mop));
    let graph = Graph::new_in(n, edges, ledger)?;
    Ok(Inference {
        h,
        committed,
        longest,
        unobserved,
        ext,
        found,
        graph,
    })
}

/// Reads that list an element twice (values are appended once). Reads are short: a
/// quadratic scan beats hashing.
fn report_duplicates(h: &TxnHistory, found: &mut Collector) {
    for (t, x) in h.txns.iter().enumerate() {
        if x.status != Status::Ok {
            continue;
        }
        for m in &x.mops {
            let Mop::ReadList {
                key,
                value: Some(vals),
            } = m
            else {
                continue;
            };
            let dup = if vals.len() <= 64 {
                (1..vals.len()).find(|&i| vals[..i].contains(&vals[i]))
            } else {
                let mut seen: HashSet<i64> = HashSet::with_capacity(vals.len());
                (0..vals.len()).find(|&i| !seen.insert(vals[i]))
            };
            if let Some(i) = dup {
                let v = vals[i];
                found.add("duplicate", || anomaly(h, &[t], format!("{} read {} = {}, in which {v} appears more than once (values are appended once)", tname(h, t), h.key_name(*key), show_list(vals))));
            }
        }
    }
}

/// Key `k`'s version order, as far as its longest external read shows it.
fn version<'h>(h: &'h TxnHistory, longest: &Longest, k: KeyId) -> &'h [i64] {
    match longest[k as usize] {
        Some((t, m, len)) => match &h.txns[t as usize].mops[m as usize] {
            Mop::ReadList { value: Some(v), .. } => &v[..len as usize],
            _ => &[],
        },
        None => &[],
    }
}

/// Elements read: their appenders, which transactions were observed (an info transaction
/// read by another committed), and how many of each one's appends were.
struct Elements<'h> {
    h: &'h TxnHistory,
    observed: Vec<bool>,
    obs_count: Vec<u32>,
}

impl Elements<'_> {
    /// The appender of each element of `vals`, read by `t` from key `k` (u32::MAX: nobody,
    /// reported as garbage-read); an aborted appender is G1a. `count` counts the reads in
    /// `obs_count` (the version orders count; reads scanned on their own do not).
    fn scan(
        &mut self,
        t: usize,
        k: KeyId,
        vals: &[i64],
        found: &mut Collector,
        count: bool,
    ) -> Vec<u32> {
        let h = self.h;
        let mut apps = Vec::with_capacity(vals.len());
        for &v in vals {
            match h.writers.get(&(k, v)) {
                None => {
                    apps.push(u32::MAX);
                    found.add("garbage-read", || {
                        anomaly(
                            h,
                            &[t],
                            format!(
                                "{} read {} = {}, but no transaction appended {v} to it",
                                tname(h, t),
                                h.key_name(k),
                                show_list(vals)
                            ),
                        )
                    })
                }
                Some(&w) => {
                    apps.push(w);
                    let w = w as usize;
                    if h.txns[w].status == Status::Fail {
                        found.add("G1a", || anomaly(h, &[w, t], format!("{} appended {v} to {} and failed (aborted); {} read {} = {}, which contains it", tname(h, w), h.key_name(k), tname(h, t), h.key_name(k), show_list(vals))));
                    }
                    self.observed[w] = true;
                    if count {
                        self.obs_count[w] += 1;
                    }
                }
            }
        }
        apps
    }
}

/// Incompatible order: every external read must be a prefix of its key's version order.
/// Every other external read is then scanned through the version orders; these are scanned
/// on their own.
fn report_incompatible_orders(
    h: &TxnHistory,
    ext: &[ExtRead],
    longest: &Longest,
    elements: &mut Elements,
    found: &mut Collector,
) {
    for r in ext {
        let Mop::ReadList {
            key,
            value: Some(full),
        } = &h.txns[r.txn as usize].mops[r.mop as usize]
        else {
            continue;
        };
        let vals = &full[..r.len as usize];
        let v = version(h, longest, *key);
        if vals.len() > v.len() || v[..vals.len()] != vals[..] {
            let t = r.txn as usize;
            let (lt, _, _) = longest[*key as usize].unwrap_or((t as u32, 0, 0));
            elements.scan(t, *key, vals, found, false);
            found.add("incompatible-order", || {
                anomaly(
                    h,
                    &[t, lt as usize],
                    format!(
                        "{} read {} = {}, and {} read {} = {}: neither is a prefix of the other",
                        tname(h, t),
                        h.key_name(*key),
                        show_list(vals),
                        tname(h, lt as usize),
                        h.key_name(*key),
                        show_list(v)
                    ),
                )
            });
        }
    }
}

/// Dirty update: an aborted element followed by a committed one in a version order.
fn report_dirty_updates(
    h: &TxnHistory,
    longest: &Longest,
    ver_app: &[Vec<u32>],
    committed: &[bool],
    found: &mut Collector,
) {
    for k in 0..h.keys.len() as KeyId {
        let (vs, apps) = (version(h, longest, k), &ver_app[k as usize]);
        let failed = |w: u32| w != u32::MAX && h.txns[w as usize].status == Status::Fail;
        if let Some(fi) = apps.iter().position(|&w| failed(w)) {
            if let Some(ci) =
                (fi + 1..apps.len()).find(|&i| apps[i] != u32::MAX && committed[apps[i] as usize])
            {
                let (w, cw, c) = (apps[fi] as usize, apps[ci] as usize, vs[ci]);
                found.add("dirty-update", || anomaly(h, &[w, cw], format!("{} appended {} to {} and failed, yet committed {} appended {c} after it ({})", tname(h, w), vs[fi], h.key_name(k), tname(h, cw), show_list(vs))));
            }
        }
    }
}

/// Appends of committed transactions that no read shows, per key.
fn unobserved_appends(
    h: &TxnHistory,
    longest: &Longest,
    committed: &[bool],
    obs_count: &[u32],
) -> Unobserved {
    let mut unobserved: Unobserved = vec![Vec::new(); h.keys.len()];
    for (t, x) in h.txns.iter().enumerate() {
        if !committed[t] {
            continue;
        }
        let appends = x
            .mops
            .iter()
            .filter(|m| matches!(m, Mop::Append { .. }))
            .count();
        if obs_count[t] as usize >= appends {
            continue;
        }
        for m in &x.mops {
            if let Mop::Append { key, value } = m {
                if !version(h, longest, *key).contains(value) {
                    let list = &mut unobserved[*key as usize];
                    match list.last_mut() {
                        Some(last) if last.0 == t as u32 => last.2 = *value,
                        _ => list.push((t as u32, *value, *value)),
                    }
                }
            }
        }
    }
    unobserved
}

/// Write-write edges: between successive committed appenders of each version order, and
/// from its last one to each unobserved appender of the key.
fn version_edges(
    h: &TxnHistory,
    longest: &Longest,
    ver_app: &[Vec<u32>],
    committed: &[bool],
    unobserved: &Unobserved,
    edges: &mut Bounded<Edge>,
) {
    for k in 0..h.keys.len() as KeyId {
        let mut prev: Option<(u32, i64)> = None;
        for (i, &v) in version(h, longest, k).iter().enumerate() {
            let a = ver_app[k as usize][i];
            if a == u32::MAX || !committed[a as usize] {
                continue;
            }
            if let Some((p, pv)) = prev {
                if p != a {
                    edges.push(Edge {
                        from: p,
                        to: a,
                        kind: WW,
                        key: k,
                        value: v,
                        aux: pv,
                    });
                }
            }
            prev = Some((a, v));
        }
        if let Some((p, pv)) = prev {
            for &(u, first, _) in &unobserved[k as usize] {
                if u != p {
                    edges.push(Edge {
                        from: p,
                        to: u,
                        kind: WW,
                        key: k,
                        value: first,
                        aux: pv,
                    });
                }
            }
        }
    }
}

/// Write-read edges (from the appender of the last element an external read saw) and
/// read-write edges (to the next committed appender of the key, or, past the version
/// order, to each unobserved appender), for every external read that is a prefix of its
/// key's version order.
fn read_edges(
    h: &TxnHistory,
    ext: &[ExtRead],
    longest: &Longest,
    ver_app: &[Vec<u32>],
    committed: &[bool],
    unobserved: &Unobserved,
    edges: &mut Bounded<Edge>,
) {
    for r in ext {
        let (t, k) = (r.txn, r.key);
        let full = match &h.txns[t as usize].mops[r.mop as usize] {
            Mop::ReadList { value: Some(v), .. } => v,
            _ => continue,
        };
        let read = &full[..r.len as usize];
        let v = version(h, longest, k);
        if read.len() > v.len() || v[..read.len()] != read[..] {
            continue;
        }
        let apps = &ver_app[k as usize];
        if let Some(&last) = read.last() {
            let w = apps[read.len() - 1];
            if w != u32::MAX && committed[w as usize] && w != t {
                edges.push(Edge {
                    from: w,
                    to: t,
                    kind: WR,
                    key: k,
                    value: last,
                    aux: 0,
                });
            }
        }
        let next = (read.len()..v.len())
            .find(|&i| apps[i] != u32::MAX && committed[apps[i] as usize])
            .map(|i| (apps[i], v[i]));
        match next {
            Some((w, x)) => {
                if w != t {
                    edges.push(Edge {
                        from: t,
                        to: w,
                        kind: RW,
                        key: k,
                        value: x,
                        aux: 0,
                    });
                }
            }
            None => {
                for &(u, first, _) in &unobserved[k as usize] {
                    if u != t {
                        edges.push(Edge {
                            from: t,
                            to: u,
                            kind: RW,
                            key: k,
                            value: first,
                            aux: 1,
                        });
                    }
                }
            }
        }
    }
}

/// Realtime edges among committed transactions, as a transitive reduction: each invoke is
/// linked from the current frontier (completed transactions not yet followed by another
/// completed one), so the work is O(n · concurrency).
pub(crate) fn realtime_edges(h: &TxnHistory, committed: &[bool], edges: &mut Bounded<Edge>) {
    let mut events: Vec<(u64, u32, bool)> = Vec::with_capacity(h.txns.len() * 2);
    for (t, x) in h.txns.iter().enumerate() {
        if !committed[t] {
            continue;
        }
        events.push((x.invoke_pos, t as u32, false));
        if x.status == Status::Ok {
            if let Some(c) = x.complete_pos {
                events.push((c, t as u32, true));
            }
        }
    }
    events.sort_unstable();
    let mut frontier: Vec<u32> = Vec::new();
    let mut preds: HashMap<u32, Vec<u32>> = HashMap::new();
    for (_, t, complete) in events {
        if complete {
            if let Some(p) = preds.remove(&t) {
                frontier.retain(|f| !p.contains(f));
            }
            frontier.push(t);
        } else {
            for &f in &frontier {
                edges.push(Edge {
                    from: f,
                    to: t,
                    kind: RT,
                    key: 0,
                    value: 0,
                    aux: 0,
                });
            }
            if h.txns[t as usize].status == Status::Ok {
                preds.insert(t, frontier.clone());
            }
        }
    }
}

fn has_cycle(g: &Graph, mask: u8) -> bool {
    scc(g, mask).iter().any(|c| *c != u32::MAX)
}

fn si_components(g: &Graph) -> (Vec<u32>, Vec<u32>) {
    scc_order(g.n * 2, |x, out| product_succ(g, x, |_, y| out.push(y)))
}

/// Outcome of the snapshot-isolation search over orders of unobserved appends.
enum SiOutcome {
    Valid,
    Invalid(Graph),
    Unknown(String),
}

fn si_decide(
    inf: &Inference,
    budget: &Budget,
    ledger: &mut Ledger,
) -> Result<SiOutcome, OutOfMemory> {
    let g = &inf.graph;
    // Up to three graphs with the free keys' chains are alive at once below.
    let chains: usize = inf.unobserved.iter().map(Vec::len).sum();
    let copies =
        3 * graph_bytes(g.n, g.edges.len() + chains) + dyn_order_bytes(g, chains) + g.n * 8;
    ledger.take(copies, || {
        format!(
            "the snapshot-isolation search's graphs ({} edges and {chains} chained appends)",
            g.edges.len()
        )
    })?;
    let outcome = si_decide_reserved(inf, budget);
    ledger.release(copies);
    Ok(outcome)
}

fn si_decide_reserved(inf: &Inference, budget: &Budget) -> SiOutcome {
    let g = &inf.graph;
    let (comp, order) = si_components(g);
    if comp.iter().any(|c| *c != u32::MAX) {
        return SiOutcome::Invalid(Graph::new(g.n, g.edges.clone()));
    }
    let free: Vec<FreeKey> = inf
        .unobserved
        .iter()
        .enumerate()
        .filter(|(_, u)| u.len() > 1)
        .map(|(k, u)| (k as KeyId, u.clone()))
        .collect();
    if free.is_empty() {
        return SiOutcome::Valid;
    }
    let mut pi = vec![0u32; g.n * 2];
    for (i, &x) in order.iter().enumerate() {
        pi[x as usize] = (order.len() - 1 - i) as u32;
    }
    // First, a witness built under a dynamic topological order (each appender where it closes
    // no cycle); only when that fails, the greedy and exhaustive searches below.
    if witness(g, &pi, &free, 8) {
        return SiOutcome::Valid;
    }
    let ordered = match greedy_orders(g, &pi, &free, budget) {
        Ok(o) => o,
        Err(invalid) => return invalid,
    };
    // First try the order in which the appenders completed: a database's commit order lies
    // within each transaction's invoke and completion, so this is the likeliest version order.
    let mut edges = g.edges.clone();
    for (k, us) in &free {
        chain_edges(&completion_order(inf, us), *k, &mut edges);
    }
    let completion_graph = Graph::new(g.n, edges);
    if si_components(&completion_graph)
        .0
        .iter()
        .all(|c| *c == u32::MAX)
    {
        return SiOutcome::Valid;
    }
    let mut edges = g.edges.clone();
    let chains = if ordered.len() == free.len() {
        &ordered
    } else {
        &free
    };
    for (k, us) in chains {
        chain_edges(us, *k, &mut edges);
    }
    let greedy = Graph::new(g.n, edges);
    let (gc, _) = si_components(&greedy);
    if ordered.len() == free.len() && gc.iter().all(|c| *c == u32::MAX) {
        return SiOutcome::Valid;
    }
    search_exhaustively(g, &free, budget, greedy)
}

/// Greedy, key by key: Ui must precede Uj when (Ui, ww/wr-arrived) reaches Uj in the SI
/// graph (the other order would close a cycle). If that relation has a cycle for some key,
/// no order works: invalid (the `Err`). Otherwise a topological order of it adds no cycle
/// through this key's chain (a later appender never reaches an earlier one); the chains of
/// all keys together are then checked once, and only if that fails does the exhaustive
/// search run. Reachability is searched only below the highest topological position (`pi`)
/// of a target. Keys past the step budget are left out of the result.
fn greedy_orders(
    g: &Graph,
    pi: &[u32],
    free: &[FreeKey],
    budget: &Budget,
) -> Result<Vec<FreeKey>, SiOutcome> {
    let mut visits = 0u64;
    let mut seen: HashMap<u32, ()> = HashMap::new();
    let mut stack: Vec<u32> = Vec::new();
    let mut ordered: Vec<FreeKey> = Vec::with_capacity(free.len());
    for (k, us) in free {
        let m = us.len();
        let mut target: HashMap<u32, usize> = HashMap::new();
        for (j, u) in us.iter().enumerate() {
            target.insert(2 * u.0, j);
            target.insert(2 * u.0 + 1, j);
        }
        let bound = us
            .iter()
            .map(|u| pi[2 * u.0 as usize].max(pi[2 * u.0 as usize + 1]))
            .max()
            .unwrap_or(0);
        let mut before: Vec<Vec<usize>> = vec![Vec::new(); m];
        let mut indeg = vec![0usize; m];
        for (i, u) in us.iter().enumerate() {
            seen.clear();
            stack.clear();
            stack.push(2 * u.0 + 1);
            seen.insert(2 * u.0 + 1, ());
            while let Some(x) = stack.pop() {
                visits += 1;
                if let Some(&j) = target.get(&x) {
                    if j != i && !before[i].contains(&j) {
                        before[i].push(j);
                        indeg[j] += 1;
                    }
                }
                product_succ(g, x as usize, |_, y| {
                    if pi[y as usize] <= bound && seen.insert(y, ()).is_none() {
                        stack.push(y);
                    }
                });
            }
        }
        if visits > budget.steps {
            break;
        }
        // Kahn's algorithm, ties by topological position.
        let mut out = Vec::with_capacity(m);
        let mut ready: Vec<usize> = (0..m).filter(|&j| indeg[j] == 0).collect();
        while let Some(pos) = (0..ready.len()).min_by_key(|&r| pi[2 * us[ready[r]].0 as usize + 1])
        {
            let i = ready.swap_remove(pos);
            out.push(us[i]);
            for &j in &before[i] {
                indeg[j] -= 1;
                if indeg[j] == 0 {
                    ready.push(j);
                }
            }
        }
        if out.len() < m {
            // Two appenders each reach the other: every order closes a cycle.
            let mut edges = g.edges.clone();
            for w in us.windows(2) {
                edges.push(Edge {
                    from: w[0].0,
                    to: w[1].0,
                    kind: WW,
                    key: *k,
                    value: w[1].1,
                    aux: w[0].2,
                });
            }
            return Err(SiOutcome::Invalid(Graph::new(g.n, edges)));
        }
        ordered.push((*k, out));
    }
    Ok(ordered)
}

/// Write-write edges chaining the appenders of key `k` in the order `perm`.
fn chain_edges(perm: &[(u32, i64, i64)], k: KeyId, out: &mut Vec<Edge>) {
    for w in perm.windows(2) {
        out.push(Edge {
            from: w[0].0,
            to: w[1].0,
            kind: WW,
            key: k,
            value: w[1].1,
            aux: w[0].2,
        });
    }
}

/// The unobserved appenders `us` in the order they completed (a crashed one that committed:
/// just before the first transaction that must follow it).
fn completion_order(inf: &Inference, us: &[(u32, i64, i64)]) -> Vec<(u32, i64, i64)> {
    let g = &inf.graph;
    let mut us = us.to_vec();
    us.sort_by_key(|u| {
        let t = &inf.h.txns[u.0 as usize];
        match t.complete_pos {
            Some(c) => 2 * c,
            // Crashed but committed (someone read it): before its first reader began and
            // before the next writer of one of its keys completed.
            None => g
                .out(u.0 as usize)
                .filter_map(|i| {
                    let e = &g.edges[i];
                    let next = &inf.h.txns[e.to as usize];
                    match e.kind {
                        WR => Some(2 * next.invoke_pos),
                        WW => next.complete_pos.map(|c| 2 * c),
                        _ => None,
                    }
                })
                .min()
                .map_or(u64::MAX, |r| r.saturating_sub(1).max(2 * t.invoke_pos)),
        }
    });
    us
}

/// The exhaustive search, key by key, position by position, pruning orders that close a
/// cycle; `greedy` is the graph an invalid verdict shows.
fn search_exhaustively(g: &Graph, free: &[FreeKey], budget: &Budget, greedy: Graph) -> SiOutcome {
    let mut extra: HashMap<u32, Vec<u32>> = HashMap::new();
    let start = Instant::now();
    let mut steps = 0u64;
    let mut search = Search {
        g,
        extra: &mut extra,
        steps: &mut steps,
        budget,
        start,
        out_of_budget: false,
    };
    let ok = search.keys(free, 0, &mut Vec::new(), &mut vec![false; 0]);
    if ok {
        SiOutcome::Valid
    } else if search.out_of_budget {
        SiOutcome::Unknown(format!(
            "snapshot-isolation: the search over orders of unobserved appends ({} keys with several) stopped after {steps} steps",
            free.len()
        ))
    } else {
        SiOutcome::Invalid(greedy)
    }
}

struct Search<'a> {
    g: &'a Graph,
    extra: &'a mut HashMap<u32, Vec<u32>>,
    steps: &'a mut u64,
    budget: &'a Budget,
    start: Instant,
    out_of_budget: bool,
}

impl Search<'_> {
    /// True when product node `from` reaches `a` or `b`.
    fn reaches(&self, from: usize, a: usize, b: usize) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![from];
        seen.insert(from);
        while let Some(x) = stack.pop() {
            if x == a || x == b {
                return true;
            }
            let mut push = |y: usize| {
                if seen.insert(y) {
                    stack.push(y);
                }
            };
            product_succ(self.g, x, |_, y| push(y as usize));
            if let Some(ex) = self.extra.get(&((x / 2) as u32)) {
                for &to in ex {
                    push(2 * to as usize + 1);
                }
            }
        }
        false
    }

    fn keys(
        &mut self,
        free: &[FreeKey],
        ki: usize,
        chain: &mut Vec<u32>,
        used: &mut Vec<bool>,
    ) -> bool {
        if ki == free.len() {
            return true;
        }
        let us = &free[ki].1;
        if chain.is_empty() {
            *used = vec![false; us.len()];
        }
        if chain.len() == us.len() {
            let mut next_chain = Vec::new();
            let mut next_used = Vec::new();
            return self.keys(free, ki + 1, &mut next_chain, &mut next_used);
        }
        for i in 0..us.len() {
            if used[i] {
                continue;
            }
            *self.steps += 1;
            if *self.steps > self.budget.steps
                || (self.steps.is_multiple_of(16)
                    && self.budget.time.is_some_and(|t| self.start.elapsed() > t))
            {
                self.out_of_budget = true;
                return false;
            }
            let u = us[i].0;
            if let Some(&p) = chain.last() {
                if self.reaches(2 * u as usize + 1, 2 * p as usize, 2 * p as usize + 1) {
                    continue;
                }
                self.extra.entry(p).or_default().push(u);
            }
            used[i] = true;
            chain.push(u);
            let ok = self.keys(free, ki, chain, used);
            chain.pop();
            used[i] = false;
            if let Some(&p) = chain.last() {
                if let Some(v) = self.extra.get_mut(&p) {
                    v.pop();
                }
            }
            if ok {
                return true;
            }
            if self.out_of_budget {
                return false;
            }
        }
        false
    }
}

/// Reports cycles: per component of the given mask, the shortest cycle through one member.
pub(crate) fn report_cycles(
    inf: &dyn Why,
    g: &Graph,
    mask: u8,
    found: &mut Collector,
    seen: &mut HashSet<Vec<(u32, u32, u8)>>,
) {
    let comp = scc(g, mask);
    let mut done: HashSet<u32> = HashSet::new();
    for v in 0..g.n {
        let c = comp[v];
        if c == u32::MAX || !done.insert(c) || done.len() > 50 {
            continue;
        }
        if let Some(path) = shortest_cycle(g, &comp, v, mask) {
            add_cycle(inf, g, &path, found, seen);
        }
    }
}

fn add_cycle(
    inf: &dyn Why,
    g: &Graph,
    path: &[usize],
    found: &mut Collector,
    seen: &mut HashSet<Vec<(u32, u32, u8)>>,
) {
    let edges: Vec<Edge> = path.iter().map(|&i| g.edges[i]).collect();
    let mut sig: Vec<(u32, u32, u8)> = edges.iter().map(|e| (e.from, e.to, e.kind)).collect();
    sig.sort_unstable();
    if !seen.insert(sig) {
        return;
    }
    let (kind, a) = cycle_anomaly(inf.history(), &edges, |e| inf.why(e));
    found.add(&kind, || a);
}

/// SI cycles (no two adjacent rw edges): shortest cycles in the product graph, and for each
/// component a try at a G-single (one rw edge closed by ww/wr edges).
pub(crate) fn report_si_cycles(
    inf: &dyn Why,
    g: &Graph,
    found: &mut Collector,
    seen: &mut HashSet<Vec<(u32, u32, u8)>>,
) {
    let (comp, _) = si_components(g);
    let mut done: HashSet<u32> = HashSet::new();
    let dep = scc(g, WW | WR | RW);
    for x in 0..g.n * 2 {
        let c = comp[x];
        if c == u32::MAX || !done.insert(c) || done.len() > 50 {
            continue;
        }
        // A G-single: an rw edge a -> b inside the component, and a ww/wr path from b to a.
        let mut budget = 200_000usize;
        let mut got_single = false;
        for v in 0..g.n {
            if comp[2 * v] != c && comp[2 * v + 1] != c {
                continue;
            }
            for i in g.out(v) {
                let e = g.edges[i];
                if e.kind != RW || dep[e.to as usize] != dep[v] || budget == 0 {
                    continue;
                }
                let d = dep[v];
                let path = bfs_path(
                    g.n,
                    e.to as usize,
                    v,
                    budget,
                    |y| dep[y] == d,
                    |x, f| {
                        for j in g.out(x) {
                            if g.edges[j].kind & (WW | WR) != 0 {
                                f(j, g.edges[j].to);
                            }
                        }
                    },
                );
                budget = budget.saturating_sub(1000);
                if let Some(mut p) = path {
                    p.insert(0, i);
                    add_cycle(inf, g, &p, found, seen);
                    got_single = true;
                    break;
                }
            }
            if got_single {
                break;
            }
        }
        if got_single {
            continue;
        }
        let path = bfs_path(
            g.n * 2,
            x,
            x,
            usize::MAX,
            |y| comp[y] == c,
            |y, f| product_succ(g, y, &mut *f),
        );
        if let Some(p) = path {
            add_cycle(inf, g, &p, found, seen);
        }
    }
}

fn lost_updates(inf: &Inference, found: &mut Collector) {
    let h = inf.h;
    let mut groups: HashMap<(KeyId, u32), Vec<u32>> = HashMap::new();
    // A transaction's first external read of a key (sorted by transaction, key, micro-op):
    // a later one differs from it, a fuzzy read that every model forbidding lost updates
    // forbids too.
    let firsts = inf
        .ext
        .iter()
        .enumerate()
        .filter(|(i, r)| *i == 0 || (inf.ext[i - 1].txn, inf.ext[i - 1].key) != (r.txn, r.key));
    for (_, r) in firsts {
        if own_appends(h, r.txn as usize, r.key).next().is_some() {
            groups.entry((r.key, r.len)).or_default().push(r.txn);
        }
    }
    let mut keys: Vec<_> = groups.into_iter().filter(|(_, ts)| ts.len() > 1).collect();
    keys.sort_unstable();
    for ((k, _), ts) in keys {
        let read = inf.ext_reads(ts[0], k).next().unwrap_or(&[]);
        let names: Vec<String> = ts.iter().map(|t| tname(h, *t as usize)).collect();
        let txns: Vec<usize> = ts.iter().map(|t| *t as usize).collect();
        found.add("lost-update", || anomaly(h, &txns, format!("{} all read {} = {} and each appended to it: whichever committed last overwrote a version the others never saw", names.join(", "), h.key_name(k), show_list(read))));
    }
}

/// The snapshot-isolation verdict, whether its cycles were reported (from the graph with
/// the orders chosen) and, when unknown, why. A lost update (two committed transactions
/// appending to the version both read) or anything else found outside cycles that snapshot
/// isolation forbids is invalid whatever the order of unobserved appends.
fn si_verdict(
    inf: &Inference,
    consistency: Consistency,
    budget: &Budget,
    ledger: &mut Ledger,
    found: &mut Collector,
    seen: &mut HashSet<Vec<(u32, u32, u8)>>,
) -> Result<(Verdict, bool, Option<String>), OutOfMemory> {
    if found.violates(Consistency::SnapshotIsolation) {
        return Ok((Verdict::Invalid, false, None));
    }
    // When SI only feeds `not` / `also_not`, spend a tenth of the budget on it.
    let si_budget = if consistency == Consistency::SnapshotIsolation {
        *budget
    } else {
        Budget {
            time: budget.time.map(|t| t / 10),
            steps: budget.steps / 10,
            ..*budget
        }
    };
    Ok(match si_decide(inf, &si_budget, ledger)? {
        SiOutcome::Valid => (Verdict::Valid, false, None),
        SiOutcome::Invalid(sg) => {
            report_si_cycles(inf, &sg, found, seen);
            (Verdict::Invalid, true, None)
        }
        SiOutcome::Unknown(why) => (Verdict::Unknown, false, Some(why)),
    })
}

/// Checks a list-append history, reserving what the check builds from `ledger`.
pub(crate) fn check_in(
    h: &TxnHistory,
    consistency: Consistency,
    budget: &Budget,
    ledger: &mut Ledger,
) -> Result<TxnReport, OutOfMemory> {
    let mut inf = infer_in(h, ledger)?;
    let n = h.txns.len();
    ledger.take(working_bytes(n), || {
        format!("the cycle searches' working space for {n} transactions")
    })?;
    let mut found = std::mem::take(&mut inf.found);
    lost_updates(&inf, &mut found);
    let base_bad = found.violates(Consistency::ReadCommitted);
    let g = &inf.graph;
    let verdicts: Vec<(Consistency, Verdict)>;
    let mut unknown_reason = None;
    let bad = invalid_if;
    let ss_cycle = has_cycle(g, WW | WR | RW | RT);
    let mut seen = HashSet::new();
    if !found.violates(Consistency::StrictSerializable) && !ss_cycle {
        verdicts = Consistency::ALL
            .iter()
            .map(|c| (*c, Verdict::Valid))
            .collect();
    } else {
        let rc = has_cycle(g, WW | WR);
        let ser = has_cycle(g, WW | WR | RW);
        // Whether SI's cycles were reported from the graph with chosen orders.
        let (si, si_reported);
        (si, si_reported, unknown_reason) =
            si_verdict(&inf, consistency, budget, ledger, &mut found, &mut seen)?;
        // A fuzzy read is allowed at read committed only.
        let (rr, sr) = (Consistency::RepeatableRead, Consistency::Serializable);
        verdicts = vec![
            (Consistency::ReadCommitted, bad(base_bad || rc)),
            (rr, bad(found.violates(rr) || ser)),
            (Consistency::SnapshotIsolation, si),
            (sr, bad(found.violates(sr) || ser)),
            (Consistency::StrictSerializable, Verdict::Invalid),
        ];
        report_cycles(&inf, g, WW, &mut found, &mut seen);
        report_cycles(&inf, g, WW | WR, &mut found, &mut seen);
        if !si_reported {
            report_si_cycles(&inf, g, &mut found, &mut seen);
        }
        report_cycles(&inf, g, WW | WR | RW, &mut found, &mut seen);
        if !ser {
            report_cycles(&inf, g, WW | WR | RW | RT, &mut found, &mut seen);
        }
    }
    let mut report = TxnReport::new(h, consistency);
    let verdict = verdicts
        .iter()
        .find(|(c, _)| *c == consistency)
        .map_or(Verdict::Valid, |v| v.1);
    report.valid = verdict;
    if verdict == Verdict::Unknown {
        report.unknown_reason = unknown_reason;
    }
    let (not, also) = not_also_not(&verdicts);
    report.not = not;
    report.also_not = also;
    report.anomalies = found.anomalies;
    report.anomaly_counts = found.counts;
    Ok(report)
}
