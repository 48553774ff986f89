//! A directed graph whose edges come and go, kept acyclic with a topological order maintained
//! as edges are added (Pearce & Kelly, "A dynamic topological sort algorithm for directed
//! acyclic graphs", JEA 2006), the machinery `si_order` uses for snapshot isolation's chains,
//! here over any graph and with removal, so that a search can undo its choices.
//!
//! Adding `x -> y` when `y` already comes after `x` costs nothing; otherwise only the nodes
//! placed between the two are visited: forward from `y` (reaching `x` is a cycle, and the edge
//! is refused with nothing changed) and backward from `x`, and the two sets swap places.
//! Removing an edge never invalidates the order. [`DynGraph::reaches`] answers whether a path
//! exists using the order to bound its search: no path leads from a later node to an earlier.

/// A graph over nodes `0..n` with a topological order kept through insertions.
pub(crate) struct DynGraph {
    out: Vec<Vec<u32>>,
    inn: Vec<Vec<u32>>,
    /// Position of each node in the topological order (a permutation of `0..n`).
    ord: Vec<u32>,
    mark: Vec<u32>,
    stamp: u32,
    /// Nodes visited by searches in all (the work done, for budgets).
    pub(crate) visits: u64,
}

/// Bytes a [`DynGraph`] of `n` nodes and `edges` edges takes (for the memory budget).
pub(crate) fn dyn_graph_bytes(n: usize, edges: usize) -> usize {
    n * (2 * 24 + 8) + edges * 2 * 4 * 2
}

impl DynGraph {
    /// A graph of `n` nodes and the `edges` given, or `None` when they contain a cycle.
    pub(crate) fn new(n: usize, edges: &[(u32, u32)]) -> Option<DynGraph> {
        let mut out = vec![Vec::new(); n];
        let mut inn = vec![Vec::new(); n];
        for &(x, y) in edges {
            out[x as usize].push(y);
            inn[y as usize].push(x);
        }
        // Kahn's algorithm, smallest node first among the ready ones: the order stays as
        // close to the nodes' numbering (transactions in invocation order) as the edges let
        // it, which keeps later searches between two nodes short.
        let mut indeg: Vec<u32> = inn.iter().map(|v| v.len() as u32).collect();
        let mut queue: std::collections::BinaryHeap<std::cmp::Reverse<u32>> = (0..n as u32)
            .filter(|&v| indeg[v as usize] == 0)
            .map(std::cmp::Reverse)
            .collect();
        let mut ord = vec![u32::MAX; n];
        let mut next = 0u32;
        while let Some(std::cmp::Reverse(v)) = queue.pop() {
            ord[v as usize] = next;
            next += 1;
            for &w in &out[v as usize] {
                indeg[w as usize] -= 1;
                if indeg[w as usize] == 0 {
                    queue.push(std::cmp::Reverse(w));
                }
            }
        }
        if next as usize != n {
            return None;
        }
        Some(DynGraph {
            out,
            inn,
            ord,
            mark: vec![0; n],
            stamp: 0,
            visits: 0,
        })
    }

    /// Position of `v` in the topological order.
    pub(crate) fn pos(&self, v: u32) -> u32 {
        self.ord[v as usize]
    }

    /// Successors of `v`.
    pub(crate) fn succ(&self, v: u32) -> &[u32] {
        &self.out[v as usize]
    }

    /// Number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.ord.len()
    }

    fn next_stamp(&mut self) -> u32 {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.mark.iter_mut().for_each(|m| *m = 0);
            self.stamp = 1;
        }
        self.stamp
    }

    /// True when a path leads from `from` to `to` (or they are the same node).
    pub(crate) fn reaches(&mut self, from: u32, to: u32) -> bool {
        if from == to {
            return true;
        }
        let limit = self.ord[to as usize];
        if self.ord[from as usize] > limit {
            return false;
        }
        let s = self.next_stamp();
        let mut stack = vec![from];
        self.mark[from as usize] = s;
        while let Some(a) = stack.pop() {
            self.visits += 1;
            for &b in &self.out[a as usize] {
                if b == to {
                    return true;
                }
                let bu = b as usize;
                if self.mark[bu] != s && self.ord[bu] < limit {
                    self.mark[bu] = s;
                    stack.push(b);
                }
            }
        }
        false
    }

    /// Adds `x -> y`; false, with nothing changed, when it would close a cycle.
    pub(crate) fn insert(&mut self, x: u32, y: u32) -> bool {
        if x == y {
            return false;
        }
        let (lb, ub) = (self.ord[y as usize], self.ord[x as usize]);
        if ub < lb {
            self.out[x as usize].push(y);
            self.inn[y as usize].push(x);
            return true;
        }
        // Forward from y among nodes placed up to ub: reaching x is a cycle.
        let s = self.next_stamp();
        let mut forward = Vec::new();
        let mut stack = vec![y];
        self.mark[y as usize] = s;
        while let Some(a) = stack.pop() {
            self.visits += 1;
            if a == x {
                return false;
            }
            forward.push(a);
            for &b in &self.out[a as usize] {
                let bu = b as usize;
                if self.mark[bu] != s && self.ord[bu] <= ub {
                    self.mark[bu] = s;
                    stack.push(b);
                }
            }
        }
        // Backward from x among nodes placed from lb on.
        let mut backward = Vec::new();
        stack.push(x);
        self.mark[x as usize] = s;
        while let Some(a) = stack.pop() {
            self.visits += 1;
            backward.push(a);
            for &b in &self.inn[a as usize] {
                let bu = b as usize;
                if self.mark[bu] != s && self.ord[bu] >= lb {
                    self.mark[bu] = s;
                    stack.push(b);
                }
            }
        }
        // The backward set, then the forward set, take their positions in order.
        backward.sort_unstable_by_key(|&v| self.ord[v as usize]);
        forward.sort_unstable_by_key(|&v| self.ord[v as usize]);
        let mut slots: Vec<u32> = backward
            .iter()
            .chain(forward.iter())
            .map(|&v| self.ord[v as usize])
            .collect();
        slots.sort_unstable();
        for (&v, &p) in backward.iter().chain(forward.iter()).zip(slots.iter()) {
            self.ord[v as usize] = p;
        }
        self.out[x as usize].push(y);
        self.inn[y as usize].push(x);
        true
    }

    /// Removes the edge `x -> y` added last (edges are removed in the reverse order of their
    /// insertion, as a search undoes its choices).
    pub(crate) fn remove_last(&mut self, x: u32, y: u32) {
        let o = &mut self.out[x as usize];
        match o.iter().rposition(|&b| b == y) {
            Some(i) => {
                o.remove(i);
            }
            None => debug_assert!(false, "no edge {x} -> {y}"),
        }
        let i = &mut self.inn[y as usize];
        if let Some(j) = i.iter().rposition(|&a| a == x) {
            i.remove(j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_topological(g: &DynGraph) -> bool {
        (0..g.len() as u32).all(|v| g.succ(v).iter().all(|&w| g.pos(v) < g.pos(w)))
    }

    #[test]
    fn refuses_exactly_the_edges_that_close_a_cycle() {
        let mut g = DynGraph::new(5, &[(0, 1), (1, 2)]).unwrap();
        assert!(!g.insert(2, 0));
        assert!(g.insert(3, 0));
        assert!(g.insert(2, 4));
        assert!(!g.insert(4, 3));
        assert!(is_topological(&g));
        assert!(g.reaches(3, 4) && !g.reaches(4, 0));
        g.remove_last(2, 4);
        assert!(g.insert(4, 3));
        assert!(is_topological(&g));
        assert!(DynGraph::new(2, &[(0, 1), (1, 0)]).is_none());
    }

    #[test]
    fn random_insertions_agree_with_a_plain_search() {
        let mut seed = 7u64;
        let mut rnd = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..200 {
            let n = 2 + rnd(9) as usize;
            let mut g = DynGraph::new(n, &[]).unwrap();
            let mut edges: Vec<(u32, u32)> = Vec::new();
            for _ in 0..3 * n {
                let (x, y) = (rnd(n as u64) as u32, rnd(n as u64) as u32);
                // A plain depth-first search: does y reach x over the edges so far?
                let mut seen = vec![false; n];
                let mut stack = vec![y];
                let mut cyc = x == y;
                while let Some(a) = stack.pop() {
                    if a == x {
                        cyc = true;
                        break;
                    }
                    for &(p, q) in &edges {
                        if p == a && !seen[q as usize] {
                            seen[q as usize] = true;
                            stack.push(q);
                        }
                    }
                }
                assert_eq!(g.insert(x, y), !cyc);
                if !cyc {
                    edges.push((x, y));
                }
                assert!(is_topological(&g));
            }
        }
    }
}
