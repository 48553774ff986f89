//! The dependency graph: edges with their justification, strongly connected components
//! (iterative Tarjan) and shortest cycles (breadth-first search inside one component).

use super::memory::{vec_bytes, Ledger, OutOfMemory};

/// Write-write dependency: the source installed the version the target overwrote.
pub const WW: u8 = 1;
/// Write-read dependency: the target read what the source wrote.
pub const WR: u8 = 2;
/// Read-write anti-dependency: the target overwrote what the source read.
pub const RW: u8 = 4;
/// Real time: the source completed before the target was invoked.
pub const RT: u8 = 8;

/// One edge and what justifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Source transaction.
    pub from: u32,
    /// Target transaction.
    pub to: u32,
    /// [`WW`], [`WR`], [`RW`] or [`RT`].
    pub kind: u8,
    /// The key (unused for RT).
    pub key: u32,
    /// The value the edge is about (the appended/written value of the later or read version).
    pub value: i64,
    /// For ww: the earlier value; for rw: `1` when the target's write was never observed.
    pub aux: i64,
}

/// Edges in compressed adjacency form.
pub struct Graph {
    /// Number of nodes.
    pub n: usize,
    /// All edges, grouped by source.
    pub edges: Vec<Edge>,
    /// `edges[start[v]..start[v+1]]` leave `v`.
    pub start: Vec<u32>,
}

/// Bytes a graph of `n` nodes and `edges` edges holds.
pub(crate) fn graph_bytes(n: usize, edges: usize) -> usize {
    vec_bytes::<Edge>(edges) + vec_bytes::<u32>(n + 1)
}

/// Bytes of working space the searches over a graph of `n` nodes take at most at once: Tarjan's
/// arrays and stacks over the snapshot-isolation product graph (two nodes per transaction),
/// the breadth-first searches' parent tables and the visited sets.
pub(crate) fn working_bytes(n: usize) -> usize {
    n.saturating_mul(2 * 96)
}

impl Graph {
    /// [`Graph::new`], reserving the graph (and the copy made while it is built) from `ledger`
    /// first; the edge list's own bytes are given back once it is freed.
    pub(crate) fn new_in(
        n: usize,
        edges: Vec<Edge>,
        ledger: &mut Ledger,
    ) -> Result<Graph, OutOfMemory> {
        let list = vec_bytes::<Edge>(edges.capacity());
        let e = edges.len();
        ledger.take(graph_bytes(n, e) + vec_bytes::<u32>(n), || {
            format!("the dependency graph ({e} edges over {n} transactions)")
        })?;
        let g = Graph::new(n, edges);
        ledger.release(list + vec_bytes::<u32>(n));
        Ok(g)
    }

    /// Builds the adjacency from an edge list.
    pub fn new(n: usize, edges: Vec<Edge>) -> Graph {
        // Counting sort by source: linear, and stable.
        let mut start = vec![0u32; n + 1];
        for e in &edges {
            start[e.from as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut next: Vec<u32> = start[..n].to_vec();
        let mut sorted = vec![
            Edge {
                from: 0,
                to: 0,
                kind: 0,
                key: 0,
                value: 0,
                aux: 0
            };
            edges.len()
        ];
        for e in edges {
            let slot = &mut next[e.from as usize];
            sorted[*slot as usize] = e;
            *slot += 1;
        }
        Graph {
            n,
            edges: sorted,
            start,
        }
    }

    /// Edge indices leaving `v`.
    pub fn out(&self, v: usize) -> std::ops::Range<usize> {
        self.start[v] as usize..self.start[v + 1] as usize
    }
}

/// Strongly connected components of the subgraph of `mask` edges: a component id per node;
/// ids of components with a single node (and no self loop, which never exists) are `u32::MAX`.
pub fn scc(g: &Graph, mask: u8) -> Vec<u32> {
    scc_with(g.n, |v, out: &mut Vec<u32>| {
        for i in g.out(v) {
            let e = &g.edges[i];
            if e.kind & mask != 0 {
                out.push(e.to);
            }
        }
    })
}

/// Tarjan's algorithm, iterative, over a graph given by a successor function.
pub fn scc_with(n: usize, succ: impl FnMut(usize, &mut Vec<u32>)) -> Vec<u32> {
    scc_order(n, succ).0
}

/// Tarjan's algorithm; also returns the nodes in the order their components were completed,
/// which is a reverse topological order of the component graph.
pub fn scc_order(n: usize, mut succ: impl FnMut(usize, &mut Vec<u32>)) -> (Vec<u32>, Vec<u32>) {
    let mut order = Vec::with_capacity(n);
    const UNSEEN: u32 = u32::MAX;
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![u32::MAX; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut next_index = 0u32;
    let mut next_comp = 0u32;
    // Frames of the simulated recursion: node, cursor into `succs`, end and start of its
    // successors there.
    let mut frames: Vec<(u32, usize, usize, usize)> = Vec::new();
    let mut succs: Vec<u32> = Vec::new();
    let mut buf = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        let mut to_visit = Some(root);
        loop {
            if let Some(v) = to_visit.take() {
                index[v] = next_index;
                low[v] = next_index;
                next_index += 1;
                stack.push(v as u32);
                on_stack[v] = true;
                buf.clear();
                succ(v, &mut buf);
                let s = succs.len();
                succs.extend_from_slice(&buf);
                frames.push((v as u32, s, succs.len(), s));
            }
            let Some(frame) = frames.last_mut() else {
                break;
            };
            let v = frame.0 as usize;
            if frame.1 < frame.2 {
                let w = succs[frame.1] as usize;
                frame.1 += 1;
                if index[w] == UNSEEN {
                    to_visit = Some(w);
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            let begin = frame.3;
            frames.pop();
            succs.truncate(begin);
            if let Some(&(p, _, _, _)) = frames.last() {
                let p = p as usize;
                low[p] = low[p].min(low[v]);
            }
            if low[v] == index[v] {
                let mut members = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    members.push(w);
                    order.push(w);
                    if w as usize == v {
                        break;
                    }
                }
                if members.len() > 1 {
                    for w in members {
                        comp[w as usize] = next_comp;
                    }
                    next_comp += 1;
                }
            }
        }
    }
    (comp, order)
}

/// Edges of `g` allowed in snapshot isolation's test: ww/wr edges, and rw edges only right
/// after a ww/wr edge. Node `2v` is "at v, last edge was rw (or start)", `2v+1` is "at v, last
/// edge was ww/wr". A cycle here is a cycle of `g` with no two adjacent rw edges (Cerone and
/// Gotsman: SI forbids exactly the cycles of (ww ∪ wr) ; rw?).
pub fn product_succ(g: &Graph, x: usize, mut f: impl FnMut(usize, u32)) {
    let v = x / 2;
    let after_dep = x % 2 == 1;
    for i in g.out(v) {
        let e = &g.edges[i];
        if e.kind & (WW | WR) != 0 {
            f(i, 2 * e.to + 1);
        } else if after_dep && e.kind & RW != 0 {
            f(i, 2 * e.to);
        }
    }
}

/// Breadth-first search for the shortest path from `from` back to `to` in a graph given by
/// `succ` (which reports edge index and target), visiting only nodes `allowed` accepts and at
/// most `limit` nodes. Returns the edge indices of the path.
pub fn bfs_path(
    n: usize,
    from: usize,
    to: usize,
    limit: usize,
    allowed: impl Fn(usize) -> bool,
    mut succ: impl FnMut(usize, &mut dyn FnMut(usize, u32)),
) -> Option<Vec<usize>> {
    let mut parent: hashbrown::HashMap<u32, (u32, u32)> = hashbrown::HashMap::new();
    let mut queue = std::collections::VecDeque::new();
    queue.push_back(from as u32);
    let mut seen = 0usize;
    let _ = n;
    while let Some(x) = queue.pop_front() {
        seen += 1;
        if seen > limit {
            return None;
        }
        let mut hit = None;
        succ(x as usize, &mut |edge, y| {
            if hit.is_some() {
                return;
            }
            let y_us = y as usize;
            if y_us == to {
                hit = Some(edge);
                return;
            }
            if y_us != from && allowed(y_us) && !parent.contains_key(&y) {
                parent.insert(y, (x, edge as u32));
                queue.push_back(y);
            }
        });
        if let Some(last) = hit {
            let mut path = vec![last];
            let mut cur = x;
            while cur as usize != from {
                let (p, e) = parent[&cur];
                path.push(e as usize);
                cur = p;
            }
            path.reverse();
            return Some(path);
        }
    }
    None
}

/// The shortest cycle through `start` using `mask` edges within `start`'s component.
pub fn shortest_cycle(g: &Graph, comp: &[u32], start: usize, mask: u8) -> Option<Vec<usize>> {
    let c = comp[start];
    bfs_path(
        g.n,
        start,
        start,
        usize::MAX,
        |y| comp[y] == c,
        |x, f| {
            for i in g.out(x) {
                let e = &g.edges[i];
                if e.kind & mask != 0 {
                    f(i, e.to);
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn components_and_cycles() {
        let g = Graph::new(5, vec![e(0, 1, WW), e(1, 2, WR), e(2, 0, RW), e(3, 4, WW)]);
        let c = scc(&g, WW | WR | RW);
        assert!(c[0] == c[1] && c[1] == c[2] && c[0] != u32::MAX);
        assert_eq!(c[3], u32::MAX);
        assert_eq!(scc(&g, WW | WR)[0], u32::MAX);
        let cyc = shortest_cycle(&g, &c, 0, WW | WR | RW).unwrap();
        assert_eq!(cyc.len(), 3);
        // Two adjacent rw edges are not an SI cycle; one rw after a wr is.
        let g2 = Graph::new(2, vec![e(0, 1, RW), e(1, 0, RW)]);
        let pc = scc_with(4, |x, out| product_succ(&g2, x, |_, y| out.push(y)));
        assert!(pc.iter().all(|&c| c == u32::MAX));
        let pc = scc_with(6, |x, out| product_succ(&g, x, |_, y| out.push(y)));
        assert!(pc.iter().any(|&c| c != u32::MAX));
    }
}
