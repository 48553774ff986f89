//! rw-register decided: version orders inferred as far as the history forces them, the rest
//! decided by a search with propagation over a dynamic topological order.
//!
//! A history is serializable (snapshot-isolated, strict-serializable) iff some total order of
//! each key's versions makes the dependency graph acyclic (for snapshot isolation: makes
//! `(ww ∪ wr) ; rw?` acyclic, Cerone & Gotsman, PODC 2016, checked on the graph of
//! [`super::graph::product_succ`]; strict adds real-time edges). Read values name their
//! writers, so wr edges are known, and with a version order `a < b` come the edges
//! `W(a) -ww-> W(b)` and `R -rw-> W(b)` for every reader `R` of `a`. Listing every pair's two
//! orientations is Papadimitriou's polygraph; transitive pairs add only edges implied by paths,
//! so acyclicity over all pairs is the same as over adjacent versions.
//!
//! **Inferred, as Elle does** (`elle.rw-register`): the initial nil version precedes every
//! write (a reader of nil rw-precedes every writer); only a committed transaction's last write
//! to a key is a version (intermediate ones are seen only by itself, and reading one elsewhere
//! is G1b); a transaction that read `a` and then wrote `b` orders `a < b` (Elle's wfr, which
//! every model searched here implies); real time orders transactions under
//! strict-serializable; and, when the user states them, Elle's assumptions: sequential keys
//! (each process's successive accesses of a key see non-decreasing versions) and linearizable
//! keys (an access that completed before another began sees no later version).
//!
//! **Pruned.** Every fixed edge goes into a [`DynGraph`]; an orientation any of whose edges
//! would close a cycle is impossible, so the other is forced (both impossible: `invalid`).
//! This repeats until nothing more is forced. The topological order answers most questions
//! at once (no path leads from a later node to an earlier one).
//!
//! **Decomposed and searched.** Any cycle lies in one strongly connected component of the
//! graph holding both orientations of every undecided pair; a pair none of whose edges lies
//! inside a component is free (either way is safe), and pairs in disjoint sets of components
//! are independent. Each group is searched depth first, with the same propagation after every
//! choice and chronological backtracking. `valid` needs a complete, acyclic choice (for the
//! serializable models it is then replayed as a serial order); `invalid` needs the search to
//! be exhausted; a budget running out first answers `unknown`.

use super::dyn_order::{dyn_graph_bytes, DynGraph};
use super::graph::{scc_with, Graph, RT};
use super::memory::{Ledger, OutOfMemory};
use super::rw_register::Shape;
use super::{Assumptions, Budget, Consistency, KeyId, Status, TxnHistory};
use hashbrown::{HashMap, HashSet};
use std::time::Instant;

/// What deciding one model found.
pub(crate) enum Decided {
    /// A version order and (for the serializable models) a serial order exist.
    Valid,
    /// None exists; why.
    Invalid(String),
    /// A budget ran out first; why.
    OutOfBudget(String),
}

/// A version of a key: 0 is the initial nil, `i + 1` the `i`-th committed writer's.
type Version = u32;

/// One key: its committed writers and who read each version.
#[derive(Default)]
struct KeyVersions {
    /// Transactions whose last write to the key is a version, in history order.
    writers: Vec<u32>,
    /// `readers[v]`: transactions that read version `v` (not their own write).
    readers: Vec<Vec<u32>>,
}

/// The first and last version a committed transaction saw or made of a key.
#[derive(Clone, Copy)]
struct Access {
    txn: u32,
    first: Version,
    last: Version,
}

/// What the history tells about versions: per key, the writers, readers and accesses.
struct Versions {
    keys: Vec<KeyVersions>,
    accesses: Vec<Vec<Access>>,
}

/// Builds the per-key tables from the transactions' shapes. Assumes a history without G1a,
/// G1b, garbage or internal reads (those are decided before any search).
fn versions(h: &TxnHistory, shapes: &[Shape], committed: &[bool]) -> Versions {
    let nk = h.keys.len();
    let mut keys: Vec<KeyVersions> = (0..nk).map(|_| KeyVersions::default()).collect();
    let mut index: HashMap<(KeyId, i64), Version> = HashMap::new();
    for (t, s) in shapes.iter().enumerate() {
        if committed[t] {
            for &(k, v) in &s.writes {
                let kv = &mut keys[k as usize];
                kv.writers.push(t as u32);
                index.insert((k, v), kv.writers.len() as Version);
            }
        }
    }
    for kv in &mut keys {
        kv.readers = vec![Vec::new(); kv.writers.len() + 1];
    }
    let mut accesses: Vec<Vec<Access>> = vec![Vec::new(); nk];
    for (t, s) in shapes.iter().enumerate() {
        if !committed[t] {
            continue;
        }
        let ok = h.txns[t].status == Status::Ok;
        let mut touched: Vec<(KeyId, Option<Version>, Option<Version>)> = Vec::new();
        if ok {
            for &(k, v) in &s.reads {
                let ver = match v {
                    None => 0,
                    Some(x) => match index.get(&(k, x)) {
                        Some(&ver) => ver,
                        None => continue,
                    },
                };
                keys[k as usize].readers[ver as usize].push(t as u32);
                touched.push((k, Some(ver), None));
            }
        }
        for &(k, v) in &s.writes {
            let ver = index[&(k, v)];
            match touched.iter_mut().find(|x| x.0 == k) {
                Some(x) => x.2 = Some(ver),
                None => touched.push((k, None, Some(ver))),
            }
        }
        for (k, r, w) in touched {
            let (first, last) = (r.or(w).unwrap_or(0), w.or(r).unwrap_or(0));
            accesses[k as usize].push(Access {
                txn: t as u32,
                first,
                last,
            });
        }
    }
    Versions { keys, accesses }
}

/// Facts `a < b` (versions of a key, both writes) the history and the assumptions force, or
/// why the assumptions cannot hold.
fn facts(
    h: &TxnHistory,
    vs: &Versions,
    assume: Assumptions,
    strict: bool,
) -> Result<Vec<(KeyId, Version, Version)>, String> {
    let mut out = Vec::new();
    let mut le = |k: KeyId, a: &Access, b: &Access, why: &str| -> Result<(), String> {
        let (v, w) = (a.last, b.first);
        if v == w || v == 0 {
            return Ok(());
        }
        if w == 0 {
            return Err(format!(
                "{why}: T{} saw a version of {} and T{}, after it, saw the initial null",
                h.txns[a.txn as usize].index,
                h.key_name(k),
                h.txns[b.txn as usize].index
            ));
        }
        out.push((k, v, w));
        Ok(())
    };
    for (k, acc) in vs.accesses.iter().enumerate() {
        let k = k as KeyId;
        // Read then write within one transaction (writes follow reads).
        for a in acc {
            if a.first != a.last {
                le(
                    k,
                    a,
                    &Access {
                        first: a.last,
                        ..*a
                    },
                    "wfr",
                )?;
            }
        }
        if assume.sequential_keys && !strict {
            // Transactions are in invocation order, so a process's come in its own order.
            let mut last: HashMap<u64, Access> = HashMap::new();
            for b in acc {
                let p = h.txns[b.txn as usize].process;
                if let Some(a) = last.insert(p, *b) {
                    le(k, &a, b, "sequential-keys")?;
                }
            }
        }
        if assume.linearizable_keys && !strict {
            linearizable_key(h, k, acc, &mut le)?;
        }
    }
    Ok(out)
}

/// Linearizable keys: an access that completed before another was invoked saw no later
/// version. Only immediate real-time predecessors are needed (the rest follow through them):
/// `a` precedes `b` immediately when no access both began after `a` completed and completed
/// before `b` began.
fn linearizable_key(
    h: &TxnHistory,
    k: KeyId,
    acc: &[Access],
    le: &mut impl FnMut(KeyId, &Access, &Access, &str) -> Result<(), String>,
) -> Result<(), String> {
    let mut done: Vec<(u64, u64, usize)> = acc
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let x = &h.txns[a.txn as usize];
            (x.status == Status::Ok)
                .then_some(())
                .and(x.complete_pos)
                .map(|c| (c, x.invoke_pos, i))
        })
        .collect();
    done.sort_unstable();
    let mut max_invoke = Vec::with_capacity(done.len());
    let mut m = 0u64;
    for d in &done {
        m = m.max(d.1);
        max_invoke.push(m);
    }
    for b in acc {
        let inv = h.txns[b.txn as usize].invoke_pos;
        let j = done.partition_point(|d| d.0 < inv);
        if j == 0 {
            continue;
        }
        let bound = max_invoke[j - 1];
        let i = done.partition_point(|d| d.0 < bound);
        for d in &done[i..j] {
            le(k, &acc[d.2], b, "linearizable-keys")?;
        }
    }
    Ok(())
}

/// How an edge between transactions becomes edges of the graph checked for cycles.
#[derive(Clone, Copy)]
struct Lower {
    si: bool,
}

impl Lower {
    /// Node of transaction `t` reached by a ww or wr edge.
    fn node(self, t: u32) -> u32 {
        if self.si {
            2 * t + 1
        } else {
            t
        }
    }
    fn dep(self, u: u32, v: u32, out: &mut Vec<(u32, u32)>) {
        if self.si {
            out.push((2 * u, 2 * v + 1));
            out.push((2 * u + 1, 2 * v + 1));
        } else {
            out.push((u, v));
        }
    }
    fn anti(self, u: u32, v: u32, out: &mut Vec<(u32, u32)>) {
        if self.si {
            out.push((2 * u + 1, 2 * v));
        } else {
            out.push((u, v));
        }
    }
}

/// An undecided order of two writes of one key: `a` before `b` (1) or after (2).
#[derive(Clone, Copy)]
struct Pair {
    key: KeyId,
    a: Version,
    b: Version,
}

/// One choice made (or forced), undone on backtracking.
struct Step {
    pair: u32,
    /// Edges it added to the graph.
    edges: u32,
    /// The orientation taken (1 or 2).
    choice: u8,
    /// The other orientation is still to be tried.
    alt: bool,
}

/// The solver's state.
struct Solver<'a> {
    vs: &'a Versions,
    lower: Lower,
    g: DynGraph,
    pairs: Vec<Pair>,
    /// 0 undecided, 1: a before b, 2: b before a.
    state: Vec<u8>,
    added: Vec<(u32, u32)>,
    trail: Vec<Step>,
    scratch: Vec<(u32, u32)>,
    /// When each transaction completed (its invocation for one that never did), as a
    /// position in the history.
    when: Vec<u64>,
    budget: &'a Budget,
    start: Instant,
    steps: u64,
    out: Option<String>,
}

impl Solver<'_> {
    /// The edges of putting version `first` before `second` of `key`.
    fn orientation(&self, key: KeyId, first: Version, second: Version, out: &mut Vec<(u32, u32)>) {
        let kv = &self.vs.keys[key as usize];
        let ws = kv.writers[second as usize - 1];
        self.lower.dep(kv.writers[first as usize - 1], ws, out);
        for &r in &kv.readers[first as usize] {
            if r != ws {
                self.lower.anti(r, ws, out);
            }
        }
    }

    fn edges_of(&self, p: u32, choice: u8) -> Vec<(u32, u32)> {
        let Pair { key, a, b } = self.pairs[p as usize];
        let mut out = Vec::new();
        match choice {
            1 => self.orientation(key, a, b, &mut out),
            _ => self.orientation(key, b, a, &mut out),
        }
        out
    }

    fn tick(&mut self) -> bool {
        self.steps += 1;
        if self.out.is_none()
            && (self.steps > self.budget.steps
                || (self.steps.is_multiple_of(1024)
                    && self.budget.time.is_some_and(|t| self.start.elapsed() > t)))
        {
            self.out = Some(format!(
                "the search over version orders stopped after {} steps ({:.1?}), {} of {} write pairs undecided",
                self.steps,
                self.start.elapsed(),
                self.state.iter().filter(|s| **s == 0).count(),
                self.pairs.len()
            ));
        }
        self.out.is_some()
    }

    /// True when some edge of `choice` for pair `p` would close a cycle.
    fn blocked(&mut self, p: u32, choice: u8) -> bool {
        let mut edges = std::mem::take(&mut self.scratch);
        edges.clear();
        let Pair { key, a, b } = self.pairs[p as usize];
        match choice {
            1 => self.orientation(key, a, b, &mut edges),
            _ => self.orientation(key, b, a, &mut edges),
        }
        let hit = edges.iter().any(|&(x, y)| self.g.reaches(y, x));
        self.scratch = edges;
        hit
    }

    /// Adds `choice`'s edges for pair `p` and records the step; false, with nothing changed,
    /// when they close a cycle.
    fn assign(&mut self, p: u32, choice: u8, alt: bool) -> bool {
        let edges = self.edges_of(p, choice);
        for (i, &(x, y)) in edges.iter().enumerate() {
            if !self.g.insert(x, y) {
                for &(x, y) in edges[..i].iter().rev() {
                    self.g.remove_last(x, y);
                }
                return false;
            }
        }
        self.added.extend_from_slice(&edges);
        self.state[p as usize] = choice;
        self.trail.push(Step {
            pair: p,
            edges: edges.len() as u32,
            choice,
            alt,
        });
        true
    }

    fn undo(&mut self) -> Option<Step> {
        let s = self.trail.pop()?;
        for _ in 0..s.edges {
            let (x, y) = self.added.pop().expect("recorded edge");
            self.g.remove_last(x, y);
        }
        self.state[s.pair as usize] = 0;
        Some(s)
    }

    /// Forces what acyclicity forces among `pairs`, round after round until a round forces
    /// fewer than `min_gain` (propagation only prunes: what it leaves, the search decides);
    /// false on a conflict (or when the budget ran out: then `out` is set).
    fn propagate(&mut self, pairs: &[u32], min_gain: usize) -> bool {
        loop {
            let mut changed = 0;
            for &p in pairs {
                if self.state[p as usize] != 0 {
                    continue;
                }
                if self.tick() {
                    return false;
                }
                let a = self.blocked(p, 1);
                let b = self.blocked(p, 2);
                let forced = match (a, b) {
                    (true, true) => return false,
                    (false, false) => continue,
                    (true, false) => 2,
                    (false, true) => 1,
                };
                if !self.assign(p, forced, false) {
                    return false;
                }
                changed += 1;
            }
            if changed < min_gain.max(1) {
                return true;
            }
        }
    }

    /// The orientation to try first: the writes in the order their transactions completed
    /// (as databases mostly install them), else in the current topological order.
    fn preferred(&self, p: u32) -> u8 {
        let Pair { key, a, b } = self.pairs[p as usize];
        let w = &self.vs.keys[key as usize].writers;
        let (ta, tb) = (w[a as usize - 1], w[b as usize - 1]);
        let (ca, cb) = (self.when[ta as usize], self.when[tb as usize]);
        let first = if ca != cb {
            ca < cb
        } else {
            self.g.pos(self.lower.node(ta)) < self.g.pos(self.lower.node(tb))
        };
        if first {
            1
        } else {
            2
        }
    }

    /// When the later of a pair's two writers completed: the search decides pairs in this
    /// order, sweeping the history as the database ran it.
    fn later(&self, p: u32) -> u64 {
        let Pair { key, a, b } = self.pairs[p as usize];
        let w = &self.vs.keys[key as usize].writers;
        self.when[w[a as usize - 1] as usize].max(self.when[w[b as usize - 1] as usize])
    }

    /// Undoes choices down to the last one with an untried alternative above `base` and
    /// takes that alternative: the pair's key, or `None` when no alternative is left.
    fn backtrack(&mut self, base: usize) -> Option<KeyId> {
        while self.trail.len() > base {
            let s = self.undo().expect("step above base");
            if s.alt && self.assign(s.pair, 3 - s.choice, false) {
                return Some(self.pairs[s.pair as usize].key);
            }
        }
        None
    }

    /// The pairs of `group` (sorted by key) that order writes of `key`.
    fn key_slice<'g>(&self, group: &'g [u32], key: KeyId) -> &'g [u32] {
        let lo = group.partition_point(|&p| self.pairs[p as usize].key < key);
        let hi = group.partition_point(|&p| self.pairs[p as usize].key <= key);
        &group[lo..hi]
    }

    /// Searches the orientations of `group` (sorted by key), propagating among the pairs of
    /// a key after each choice of one of them: true when all are chosen without a cycle;
    /// false when none fits (or the budget ran out: then `out` is set).
    fn solve(&mut self, group: &[u32]) -> bool {
        let base = self.trail.len();
        let mut cursor = 0;
        let mut pending: Option<KeyId> = None;
        let mut sweep = group.to_vec();
        sweep.sort_by_key(|&p| self.later(p));
        loop {
            if let Some(k) = pending.take() {
                if !self.propagate(self.key_slice(group, k), 1) {
                    if self.out.is_some() {
                        return false;
                    }
                    match self.backtrack(base) {
                        None => return false,
                        Some(k) => pending = Some(k),
                    }
                    cursor = 0;
                    continue;
                }
            }
            while cursor < sweep.len() && self.state[sweep[cursor] as usize] != 0 {
                cursor += 1;
            }
            let Some(&p) = sweep.get(cursor) else {
                return true;
            };
            if self.tick() {
                return false;
            }
            let pref = self.preferred(p);
            if self.assign(p, pref, true) || self.assign(p, 3 - pref, false) {
                pending = Some(self.pairs[p as usize].key);
            } else {
                match self.backtrack(base) {
                    None => return false,
                    Some(k) => pending = Some(k),
                }
                cursor = 0;
            }
        }
    }
}

/// The edges fixed before any choice: wr edges, reads of the initial nil, the forced version
/// orders and (strict) real time.
fn fixed_edges(
    vs: &Versions,
    facts: &[(KeyId, Version, Version)],
    lower: Lower,
    realtime: Option<&Graph>,
) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for kv in &vs.keys {
        for (v, rs) in kv.readers.iter().enumerate() {
            for &r in rs {
                if v == 0 {
                    for &w in &kv.writers {
                        if w != r {
                            lower.anti(r, w, &mut out);
                        }
                    }
                } else if kv.writers[v - 1] != r {
                    lower.dep(kv.writers[v - 1], r, &mut out);
                }
            }
        }
    }
    for &(k, a, b) in facts {
        let kv = &vs.keys[k as usize];
        let wb = kv.writers[b as usize - 1];
        lower.dep(kv.writers[a as usize - 1], wb, &mut out);
        for &r in &kv.readers[a as usize] {
            if r != wb {
                lower.anti(r, wb, &mut out);
            }
        }
    }
    if let Some(g) = realtime {
        out.extend(
            g.edges
                .iter()
                .filter(|e| e.kind == RT)
                .map(|e| (e.from, e.to)),
        );
    }
    out
}

/// The write pairs whose order no fact fixes.
fn open_pairs(vs: &Versions, facts: &[(KeyId, Version, Version)]) -> Vec<Pair> {
    let fixed: HashSet<(KeyId, Version, Version)> = facts
        .iter()
        .map(|&(k, a, b)| (k, a.min(b), a.max(b)))
        .collect();
    let mut pairs = Vec::new();
    for (k, kv) in vs.keys.iter().enumerate() {
        let m = kv.writers.len() as Version;
        for a in 1..=m {
            for b in a + 1..=m {
                if !fixed.contains(&(k as KeyId, a, b)) {
                    pairs.push(Pair {
                        key: k as KeyId,
                        a,
                        b,
                    });
                }
            }
        }
    }
    pairs
}

/// Union-find root with path halving.
fn root(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        parent[x as usize] = parent[parent[x as usize] as usize];
        x = parent[x as usize];
    }
    x
}

impl Solver<'_> {
    /// The undecided pairs split into independent groups (pairs sharing a strongly connected
    /// component of the graph with both orientations of every undecided pair), and the free
    /// ones (no edge of theirs inside a component: never on a cycle).
    fn groups(&mut self) -> (Vec<Vec<u32>>, Vec<u32>) {
        let undecided: Vec<u32> = (0..self.pairs.len() as u32)
            .filter(|&p| self.state[p as usize] == 0)
            .collect();
        let n = self.g.len();
        let mut extra: Vec<Vec<u32>> = vec![Vec::new(); n];
        for &p in &undecided {
            for c in [1, 2] {
                for (x, y) in self.edges_of(p, c) {
                    extra[x as usize].push(y);
                }
            }
        }
        let comp = scc_with(n, |v, out| {
            out.extend_from_slice(self.g.succ(v as u32));
            out.extend_from_slice(&extra[v]);
        });
        drop(extra);
        let ncomp = comp
            .iter()
            .filter(|&&c| c != u32::MAX)
            .max()
            .map_or(0, |m| m + 1);
        let mut parent: Vec<u32> = (0..ncomp).collect();
        let mut first: Vec<(u32, u32)> = Vec::new();
        let mut free = Vec::new();
        for &p in &undecided {
            let mut head = None;
            for c in [1, 2] {
                for (x, y) in self.edges_of(p, c) {
                    let cx = comp[x as usize];
                    if cx != u32::MAX && cx == comp[y as usize] {
                        let r = root(&mut parent, cx);
                        match head {
                            None => head = Some(r),
                            Some(h) => {
                                let h = root(&mut parent, h);
                                parent[r as usize] = h;
                            }
                        }
                    }
                }
            }
            match head {
                Some(h) => first.push((p, h)),
                None => free.push(p),
            }
        }
        let mut by_root: HashMap<u32, Vec<u32>> = HashMap::new();
        for (p, h) in first {
            let r = root(&mut parent, h);
            by_root.entry(r).or_default().push(p);
        }
        let mut groups: Vec<Vec<u32>> = by_root.into_values().collect();
        groups.sort_unstable_by_key(|g| g[0]);
        (groups, free)
    }

    /// Replays the committed transactions in the graph's topological order (serializable
    /// models only): every read must see the value the order says.
    fn replays(&self, h: &TxnHistory, shapes: &[Shape], committed: &[bool]) -> bool {
        let mut order: Vec<u32> = (0..h.txns.len() as u32)
            .filter(|&t| committed[t as usize])
            .collect();
        order.sort_unstable_by_key(|&t| self.g.pos(t));
        let mut vals: Vec<Option<i64>> = vec![None; h.keys.len()];
        for t in order {
            let t = t as usize;
            if h.txns[t].status == Status::Ok
                && shapes[t].reads.iter().any(|&(k, v)| vals[k as usize] != v)
            {
                return false;
            }
            for &(k, v) in &shapes[t].writes {
                vals[k as usize] = Some(v);
            }
        }
        true
    }
}

/// What the decision needs from the inference.
pub(crate) struct Input<'a> {
    /// The history.
    pub h: &'a TxnHistory,
    /// Each transaction's external reads and last writes.
    pub shapes: &'a [Shape],
    /// Which transactions committed (ok, or info with a write someone read).
    pub committed: &'a [bool],
    /// The proved graph, whose real-time edges strict-serializable adds.
    pub graph: &'a Graph,
}

/// Decides `c` (repeatable-read and serializable alike, snapshot isolation,
/// strict-serializable) for a history free of G1a, G1b, garbage and internal anomalies.
pub(crate) fn decide(
    input: &Input,
    c: Consistency,
    assume: Assumptions,
    budget: &Budget,
    ledger: &mut Ledger,
) -> Result<Decided, OutOfMemory> {
    let (h, n) = (input.h, input.h.txns.len());
    let start = Instant::now();
    let strict = c == Consistency::StrictSerializable;
    let lower = Lower {
        si: c == Consistency::SnapshotIsolation,
    };
    let vs = versions(h, input.shapes, input.committed);
    let reads: usize = vs.keys.iter().flat_map(|k| &k.readers).map(Vec::len).sum();
    ledger.take(n * 64 + reads * 8, || {
        format!("the version tables of {n} transactions")
    })?;
    let facts = match facts(h, &vs, assume, strict) {
        Ok(f) => f,
        Err(why) => return Ok(Decided::Invalid(why)),
    };
    let fixed = fixed_edges(&vs, &facts, lower, strict.then_some(input.graph));
    let nodes = if lower.si { 2 * n } else { n };
    let pair_count: usize = vs
        .keys
        .iter()
        .map(|k| k.writers.len() * k.writers.len().saturating_sub(1) / 2)
        .sum();
    ledger.take(
        dyn_graph_bytes(nodes, fixed.len()) + pair_count * 24,
        || {
            format!(
                "the version-order graph ({} edges over {nodes} nodes) and {pair_count} write pairs",
                fixed.len()
            )
        },
    )?;
    let Some(g) = DynGraph::new(nodes, &fixed) else {
        return Ok(Decided::Invalid(
            "the orders the history forces (wr, reads of the initial null, reads followed by writes, real time, assumptions) close a cycle".into(),
        ));
    };
    drop(fixed);
    let pairs = open_pairs(&vs, &facts);
    let mut s = Solver {
        vs: &vs,
        lower,
        g,
        state: vec![0; pairs.len()],
        pairs,
        added: Vec::new(),
        trail: Vec::new(),
        scratch: Vec::new(),
        when: h
            .txns
            .iter()
            .map(|x| x.complete_pos.unwrap_or(x.invoke_pos))
            .collect(),
        budget,
        start,
        steps: 0,
        out: None,
    };
    let decided = run(&mut s, input, lower.si);
    ledger.take(s.added.capacity() * 8 * 2, || {
        format!("{} chosen version-order edges", s.added.len())
    })?;
    Ok(decided)
}

/// Propagation over every pair, then each group's search, then the free pairs, then (for
/// the serializable models) the witness's replay.
fn run(s: &mut Solver, input: &Input, si: bool) -> Decided {
    let all: Vec<u32> = (0..s.pairs.len() as u32).collect();
    let budget_out = |s: &Solver| Decided::OutOfBudget(s.out.clone().unwrap_or_default());
    // Rounds over every pair, while each still forces at least 1% of what is left.
    let gain = s.pairs.len() / 100;
    if !s.propagate(&all, gain) {
        return match s.out {
            Some(_) => budget_out(s),
            None => Decided::Invalid(
                "a pair of writes of one key can be ordered neither way without closing a cycle"
                    .into(),
            ),
        };
    }
    drop(all);
    // Whatever was forced so far stays: the searches backtrack only over their own choices.
    let (groups, free) = s.groups();
    for group in &groups {
        if !s.solve(group) {
            return match s.out {
                Some(_) => budget_out(s),
                None => Decided::Invalid(format!(
                    "no order of the {} undecided write pairs of one group closes no cycle (exhaustive search)",
                    group.len()
                )),
            };
        }
    }
    for p in free {
        let pref = s.preferred(p);
        if !s.assign(p, pref, false) && !s.assign(p, 3 - pref, false) {
            return Decided::OutOfBudget(format!(
                "internal: a free write pair (key {}) closed a cycle both ways",
                s.pairs[p as usize].key
            ));
        }
    }
    if !si && !s.replays(input.h, input.shapes, input.committed) {
        return Decided::OutOfBudget(
            "internal: the serial order found does not replay; no verdict is given".into(),
        );
    }
    Decided::Valid
}
