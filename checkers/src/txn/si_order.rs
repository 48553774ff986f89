//! Snapshot isolation with unobserved appends, decided by building a witness: each key's
//! unobserved appenders are chained in some order, and every chain edge is added to the SI
//! product graph (see [`super::graph::product_succ`]) under a dynamic topological order
//! (Pearce & Kelly, "A dynamic topological sort algorithm for directed acyclic graphs", JEA
//! 2006), which refuses exactly the edges that would close a cycle and otherwise repairs the
//! order locally, touching only the nodes between the two ends.
//!
//! An appender is first put after the others in the order of its current topological
//! position; when that closes a cycle, every other position in the key's chain is tried. When
//! every chain is complete the graph is acyclic and is a witness: snapshot isolation holds.
//! When some appender fits nowhere the orders chosen for earlier keys may be to blame, and
//! the caller falls back to its exhaustive search; this never decides `invalid` by itself.

use super::graph::{Graph, RW, WR, WW};
use super::KeyId;

/// A key with several unobserved appenders: (transaction, first value, last value) each.
pub(crate) type FreeKey = (KeyId, Vec<(u32, i64, i64)>);

/// The SI product graph of a fixed graph plus chain edges between transactions, with a
/// topological order kept up to date as chain edges are added and removed.
pub(crate) struct DynOrder<'g> {
    g: &'g Graph,
    /// Predecessors of product node `y`: `pred[pstart[y]..pstart[y + 1]]`.
    pstart: Vec<u32>,
    pred: Vec<u32>,
    /// Chain successors and predecessors, by transaction (a chain edge u -> v joins both
    /// product nodes of u to v's "arrived by ww/wr" node `2v + 1`).
    next: Vec<Vec<u32>>,
    prev: Vec<Vec<u32>>,
    /// Position of each product node in the topological order.
    ord: Vec<u32>,
    /// Visit stamps for the searches.
    mark: Vec<u32>,
    stamp: u32,
    /// Nodes visited in all (a measure of work).
    pub(crate) visits: u64,
}

/// Bytes a [`DynOrder`] over `g` takes (for the memory budget), with `chains` chain edges.
pub(crate) fn dyn_order_bytes(g: &Graph, chains: usize) -> usize {
    2 * g.edges.len() * 4 + g.n * 2 * 4 * 4 + g.n * 48 + chains * 16
}

impl<'g> DynOrder<'g> {
    /// The product graph of `g` with `ord` (a topological position per product node, as from
    /// Tarjan's order) as its order; `g`'s SI product graph must be acyclic.
    pub(crate) fn new(g: &'g Graph, ord: Vec<u32>) -> DynOrder<'g> {
        let m = 2 * g.n;
        let mut count = vec![0u32; m + 1];
        let each = |f: &mut dyn FnMut(usize, u32)| {
            for e in &g.edges {
                if e.kind & (WW | WR) != 0 {
                    f(2 * e.to as usize + 1, 2 * e.from);
                    f(2 * e.to as usize + 1, 2 * e.from + 1);
                } else if e.kind & RW != 0 {
                    f(2 * e.to as usize, 2 * e.from + 1);
                }
            }
        };
        each(&mut |y, _| count[y + 1] += 1);
        for i in 0..m {
            count[i + 1] += count[i];
        }
        let mut fill = count[..m].to_vec();
        let mut pred = vec![0u32; count[m] as usize];
        each(&mut |y, x| {
            pred[fill[y] as usize] = x;
            fill[y] += 1;
        });
        DynOrder {
            g,
            pstart: count,
            pred,
            next: vec![Vec::new(); g.n],
            prev: vec![Vec::new(); g.n],
            ord,
            mark: vec![0; m],
            stamp: 0,
            visits: 0,
        }
    }

    /// Topological position of transaction `t`'s "arrived by ww/wr" node.
    pub(crate) fn pos(&self, t: u32) -> u32 {
        self.ord[2 * t as usize + 1]
    }

    fn succ(&self, x: usize, f: &mut impl FnMut(usize)) {
        let v = x / 2;
        let after_dep = x % 2 == 1;
        for i in self.g.out(v) {
            let e = &self.g.edges[i];
            if e.kind & (WW | WR) != 0 {
                f(2 * e.to as usize + 1);
            } else if after_dep && e.kind & RW != 0 {
                f(2 * e.to as usize);
            }
        }
        for &w in &self.next[v] {
            f(2 * w as usize + 1);
        }
    }

    fn preds(&self, y: usize, f: &mut impl FnMut(usize)) {
        for &x in &self.pred[self.pstart[y] as usize..self.pstart[y + 1] as usize] {
            f(x as usize);
        }
        if y % 2 == 1 {
            for &u in &self.prev[y / 2] {
                f(2 * u as usize);
                f(2 * u as usize + 1);
            }
        }
    }

    fn next_stamp(&mut self) -> u32 {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.mark.iter_mut().for_each(|m| *m = 0);
            self.stamp = 1;
        }
        self.stamp
    }

    /// Adds the chain edge `u -> v`; false, with nothing changed, when it would close a cycle.
    pub(crate) fn insert(&mut self, u: u32, v: u32) -> bool {
        let y = 2 * v as usize + 1;
        let (x0, x1) = (2 * u as usize, 2 * u as usize + 1);
        let lb = self.ord[y];
        let ub = self.ord[x0].max(self.ord[x1]);
        if ub < lb {
            self.next[u as usize].push(v);
            self.prev[v as usize].push(u);
            return true;
        }
        // Forward from y among nodes placed before ub: reaching u's nodes is a cycle.
        let s = self.next_stamp();
        let mut forward = Vec::new();
        let mut stack = vec![y];
        self.mark[y] = s;
        while let Some(a) = stack.pop() {
            self.visits += 1;
            if a == x0 || a == x1 {
                return false;
            }
            forward.push(a);
            let mut push = Vec::new();
            self.succ(a, &mut |b| push.push(b));
            for b in push {
                if self.mark[b] != s && self.ord[b] <= ub {
                    self.mark[b] = s;
                    stack.push(b);
                }
            }
        }
        // Backward from u's nodes among nodes placed after lb.
        let mut backward = Vec::new();
        for x in [x0, x1] {
            if self.ord[x] > lb && self.mark[x] != s {
                self.mark[x] = s;
                stack.push(x);
            }
        }
        while let Some(a) = stack.pop() {
            self.visits += 1;
            backward.push(a);
            let mut push = Vec::new();
            self.preds(a, &mut |b| push.push(b));
            for b in push {
                if self.mark[b] != s && self.ord[b] > lb {
                    self.mark[b] = s;
                    stack.push(b);
                }
            }
        }
        // The backward set goes first, then the forward set, in the positions they held.
        backward.sort_unstable_by_key(|&a| self.ord[a]);
        forward.sort_unstable_by_key(|&a| self.ord[a]);
        let mut slots: Vec<u32> = backward
            .iter()
            .chain(forward.iter())
            .map(|&a| self.ord[a])
            .collect();
        slots.sort_unstable();
        for (a, p) in backward.iter().chain(forward.iter()).zip(slots) {
            self.ord[*a] = p;
        }
        self.next[u as usize].push(v);
        self.prev[v as usize].push(u);
        true
    }

    /// Removes the chain edge `u -> v` (the order stays valid).
    pub(crate) fn remove(&mut self, u: u32, v: u32) {
        if let Some(i) = self.next[u as usize].iter().rposition(|&w| w == v) {
            self.next[u as usize].swap_remove(i);
        }
        if let Some(i) = self.prev[v as usize].iter().rposition(|&w| w == u) {
            self.prev[v as usize].swap_remove(i);
        }
    }

    /// Puts `v` into `chain` at a position where its chain edges close no cycle, trying the
    /// end first; false, with the chain and graph unchanged, when there is none.
    fn place(&mut self, chain: &mut Vec<u32>, v: u32) -> bool {
        let Some(&last) = chain.last() else {
            chain.push(v);
            return true;
        };
        if self.insert(last, v) {
            chain.push(v);
            return true;
        }
        // Before the first.
        if self.insert(v, chain[0]) {
            chain.insert(0, v);
            return true;
        }
        // Between two neighbours a -> b: a -> v -> b instead.
        for i in 0..chain.len() - 1 {
            let (a, b) = (chain[i], chain[i + 1]);
            self.remove(a, b);
            if self.insert(a, v) {
                if self.insert(v, b) {
                    chain.insert(i + 1, v);
                    return true;
                }
                self.remove(a, v);
            }
            // The graph is as it was before a -> b was removed, minus it: putting it back
            // closes no cycle.
            let restored = self.insert(a, b);
            debug_assert!(restored);
        }
        false
    }

    /// Chains `ts` (in that order of preference) by depth-first search over the orders of
    /// its members, each step adding one chain edge; at most `*steps` more steps. The chain,
    /// or None (with the graph as it was) when no order fits or the steps ran out.
    fn chain_search(&mut self, ts: &[u32], steps: &mut u64) -> Option<Vec<u32>> {
        let mut chain = Vec::with_capacity(ts.len());
        let mut used = vec![false; ts.len()];
        if self.extend(ts, &mut used, &mut chain, steps) {
            Some(chain)
        } else {
            None
        }
    }

    fn extend(
        &mut self,
        ts: &[u32],
        used: &mut [bool],
        chain: &mut Vec<u32>,
        steps: &mut u64,
    ) -> bool {
        if chain.len() == ts.len() {
            return true;
        }
        for i in 0..ts.len() {
            if used[i] || *steps == 0 {
                continue;
            }
            *steps -= 1;
            let v = ts[i];
            if let Some(&last) = chain.last() {
                if !self.insert(last, v) {
                    continue;
                }
            }
            used[i] = true;
            chain.push(v);
            if self.extend(ts, used, chain, steps) {
                return true;
            }
            chain.pop();
            used[i] = false;
            if let Some(&last) = chain.last() {
                self.remove(last, v);
            }
        }
        false
    }

    /// Removes a chain's edges.
    fn unchain(&mut self, chain: &[u32]) {
        for w in chain.windows(2) {
            self.remove(w[0], w[1]);
        }
    }

    /// Chains every key's appenders; the chains, or the index in `free` of a key some
    /// appender of which fits nowhere.
    /// Each key is first chained greedily (each appender where it closes no cycle, in the
    /// order of its topological position), then, if that fails, by a search over the orders
    /// of that key's appenders (at most `per_key_steps` steps).
    pub(crate) fn chain_all(
        &mut self,
        free: &[FreeKey],
        per_key_steps: u64,
    ) -> Result<Vec<Vec<u32>>, usize> {
        let mut out = Vec::with_capacity(free.len());
        for (i, (_, us)) in free.iter().enumerate() {
            let mut ts: Vec<u32> = us.iter().map(|u| u.0).collect();
            ts.sort_by_key(|&t| self.pos(t));
            let mut chain = Vec::with_capacity(ts.len());
            let mut placed_all = true;
            for &t in &ts {
                if !self.place(&mut chain, t) {
                    placed_all = false;
                    break;
                }
            }
            if !placed_all {
                self.unchain(&chain);
                let mut steps = per_key_steps;
                chain = self.chain_search(&ts, &mut steps).ok_or(i)?;
            }
            out.push(chain);
        }
        Ok(out)
    }
}

/// Tries to chain every free key's appenders without closing an SI cycle, starting again
/// (at most `rounds` times) with the keys that could not be chained first. True when a
/// witness was found.
pub(crate) fn witness(g: &Graph, pi: &[u32], free: &[FreeKey], rounds: usize) -> bool {
    let mut order: Vec<usize> = (0..free.len()).collect();
    for _ in 0..rounds {
        let keys: Vec<FreeKey> = order.iter().map(|&i| free[i].clone()).collect();
        match DynOrder::new(g, pi.to_vec()).chain_all(&keys, 100_000) {
            Ok(_) => return true,
            Err(failed) => {
                let k = order.remove(failed);
                order.insert(0, k);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::graph::Edge;

    fn e(from: u32, to: u32, kind: u8) -> Edge {
        Edge {
            from,
            to,
            kind,
            key: 0,
            value: 0,
            aux: 0,
        }
    }

    /// Topological positions from Tarjan's order.
    fn order_of(g: &Graph) -> Vec<u32> {
        let (_, order) = crate::txn::graph::scc_order(g.n * 2, |x, out| {
            crate::txn::graph::product_succ(g, x, |_, y| out.push(y))
        });
        let mut pi = vec![0u32; g.n * 2];
        for (i, &x) in order.iter().enumerate() {
            pi[x as usize] = (order.len() - 1 - i) as u32;
        }
        pi
    }

    #[test]
    fn refuses_exactly_the_edges_that_close_an_si_cycle() {
        // 0 -wr-> 1 -rw-> 2: chaining 2 before 0 closes (2) -ww-> (0) -wr-> (1) -rw-> (2).
        let g = Graph::new(3, vec![e(0, 1, WR), e(1, 2, RW)]);
        let mut d = DynOrder::new(&g, order_of(&g));
        assert!(!d.insert(2, 0));
        assert!(d.insert(0, 2));
        // Two rw edges in a row are no SI cycle: 0 -rw-> 1 -rw-> 0 after a ww into 0 ...
        let g = Graph::new(2, vec![e(0, 1, RW), e(1, 0, RW)]);
        let mut d = DynOrder::new(&g, order_of(&g));
        // ... but a ww 1 -> 0 makes 1 -ww-> 0 -rw-> 1: a G-single.
        assert!(!d.insert(1, 0));
        assert!(!d.insert(0, 1));
        // The order is repaired: after inserting edges against it, it is still topological.
        let g = Graph::new(4, vec![e(3, 2, WW)]);
        let mut d = DynOrder::new(&g, order_of(&g));
        for (u, v) in [(2, 1), (1, 0), (3, 1)] {
            assert!(d.insert(u, v));
        }
        for x in 0..8usize {
            let mut succs = Vec::new();
            d.succ(x, &mut |y| succs.push(y));
            for y in succs {
                assert!(d.ord[x] < d.ord[y], "{x} -> {y}");
            }
        }
        assert!(!d.insert(0, 3));
    }
}
