//! Grudges, the shape of a partition: for each node, the nodes whose packets it drops. The
//! usual topologies (halves, random halves, isolate one node, majorities ring, minority third,
//! bridge, primaries) are built here from a node list and a seeded RNG, so that a seed gives
//! the same partitions.
//!
//! ```
//! use nemesis::grudge::{Grudge, Topology};
//! let nodes: Vec<String> = ["n1", "n2", "n3", "n4", "n5"].map(String::from).to_vec();
//! let g = Topology::Isolate("n2".into()).grudge(&nodes, &[], &mut nemesis::seeded(1)).unwrap();
//! assert!(g.drops("n2", "n1") && g.drops("n1", "n2") && !g.drops("n1", "n3"));
//! ```

use crate::NemesisError;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// For each node, the nodes whose packets it drops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Grudge(pub BTreeMap<String, BTreeSet<String>>);

impl Grudge {
    /// The grudge that cuts every component off from every other (nodes see only their own
    /// component).
    pub fn complete(components: &[Vec<String>]) -> Grudge {
        let mut g = BTreeMap::new();
        for (i, comp) in components.iter().enumerate() {
            let others: BTreeSet<String> = components
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, c)| c.iter().cloned())
                .collect();
            for n in comp {
                if !others.is_empty() {
                    g.insert(n.clone(), others.clone());
                }
            }
        }
        Grudge(g)
    }

    /// Whether `node` drops packets from `from`.
    pub fn drops(&self, node: &str, from: &str) -> bool {
        self.0.get(node).is_some_and(|s| s.contains(from))
    }

    /// Whether the grudge drops nothing.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeSet::is_empty)
    }

    /// Checks that every node named is one of `nodes` and that no node drops itself.
    pub fn validate(&self, nodes: &[String]) -> Result<(), NemesisError> {
        for (n, from) in &self.0 {
            for x in std::iter::once(n).chain(from) {
                if !nodes.contains(x) {
                    return Err(NemesisError::BadFault(format!(
                        "the grudge names {x:?}, which is not a node of this cluster ({})",
                        nodes.join(", ")
                    )));
                }
            }
            if from.contains(n) {
                return Err(NemesisError::BadFault(format!(
                    "the grudge makes {n} drop its own packets"
                )));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Grudge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(n, s)| {
                format!(
                    "{n} drops {}",
                    s.iter().cloned().collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        if parts.is_empty() {
            f.write_str("no partition")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// How to partition a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "topology", content = "node")]
pub enum Topology {
    /// The first half of the nodes (in cluster order) against the second; the bigger side
    /// is the first when the count is odd.
    Halves,
    /// Two halves of a random shuffle.
    RandomHalves,
    /// One node cut off from all others.
    Isolate(String),
    /// A random node cut off from all others.
    IsolateRandom,
    /// Every node sees a majority (itself and its neighbours on a random ring), and no two
    /// nodes see the same majority.
    MajoritiesRing,
    /// A random third of the nodes (at least one, always a minority) cut off from the rest.
    MinorityThird,
    /// Two halves that cannot see each other, and one node in the middle that sees both.
    Bridge,
    /// The primaries (as the database reports them) cut off from the rest.
    Primaries,
}

impl Topology {
    /// Names accepted by [`Topology::parse`].
    pub const NAMES: &'static [&'static str] = &[
        "halves",
        "random-halves",
        "isolate-random",
        "majorities-ring",
        "minority-third",
        "bridge",
        "primaries",
    ];

    /// Parses a topology name (`isolate` takes a node through [`Topology::Isolate`]).
    pub fn parse(name: &str) -> Result<Topology, NemesisError> {
        Ok(match name {
            "halves" => Topology::Halves,
            "random-halves" => Topology::RandomHalves,
            "isolate-random" | "one" => Topology::IsolateRandom,
            "majorities-ring" | "ring" => Topology::MajoritiesRing,
            "minority-third" => Topology::MinorityThird,
            "bridge" => Topology::Bridge,
            "primaries" => Topology::Primaries,
            other => {
                return Err(NemesisError::BadFault(format!(
                    "unknown topology {other:?}: expected one of {}",
                    Self::NAMES.join(", ")
                )))
            }
        })
    }

    /// The grudge for `nodes`; `primaries` is used by [`Topology::Primaries`] only.
    pub fn grudge(
        &self,
        nodes: &[String],
        primaries: &[String],
        rng: &mut impl Rng,
    ) -> Result<Grudge, NemesisError> {
        if nodes.len() < 2 {
            return Err(NemesisError::BadFault(
                "a partition needs at least two nodes".into(),
            ));
        }
        Ok(match self {
            Topology::Halves => halves(nodes.to_vec()),
            Topology::RandomHalves => {
                let mut v = nodes.to_vec();
                v.shuffle(rng);
                halves(v)
            }
            Topology::Isolate(n) => {
                if !nodes.contains(n) {
                    return Err(NemesisError::BadFault(format!(
                        "cannot isolate {n:?}: not a node of this cluster ({})",
                        nodes.join(", ")
                    )));
                }
                isolate(nodes, std::slice::from_ref(n))
            }
            Topology::IsolateRandom => {
                let n = nodes[rng.random_range(0..nodes.len())].clone();
                isolate(nodes, &[n])
            }
            Topology::MajoritiesRing => {
                let mut ring = nodes.to_vec();
                ring.shuffle(rng);
                majorities_ring(&ring)
            }
            Topology::MinorityThird => {
                let mut v = nodes.to_vec();
                v.shuffle(rng);
                let k = (nodes.len() / 3).max(1).min((nodes.len() - 1) / 2).max(1);
                let (minority, _) = v.split_at(k);
                isolate(nodes, minority)
            }
            Topology::Bridge => {
                if nodes.len() < 3 {
                    return Err(NemesisError::BadFault(
                        "a bridge needs at least three nodes".into(),
                    ));
                }
                let mut v = nodes.to_vec();
                v.shuffle(rng);
                bridge(&v)
            }
            Topology::Primaries => {
                let p: Vec<String> = primaries
                    .iter()
                    .filter(|p| nodes.contains(p))
                    .cloned()
                    .collect();
                if p.is_empty() {
                    return Err(NemesisError::BadFault(
                        "the database reports no primary to isolate".into(),
                    ));
                }
                if p.len() == nodes.len() {
                    return Err(NemesisError::BadFault(
                        "every node is a primary: nothing to isolate them from".into(),
                    ));
                }
                isolate(nodes, &p)
            }
        })
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topology::Halves => f.write_str("halves"),
            Topology::RandomHalves => f.write_str("random-halves"),
            Topology::Isolate(n) => write!(f, "isolate {n}"),
            Topology::IsolateRandom => f.write_str("isolate-random"),
            Topology::MajoritiesRing => f.write_str("majorities-ring"),
            Topology::MinorityThird => f.write_str("minority-third"),
            Topology::Bridge => f.write_str("bridge"),
            Topology::Primaries => f.write_str("primaries"),
        }
    }
}

fn halves(v: Vec<String>) -> Grudge {
    let mid = v.len().div_ceil(2);
    let (a, b) = v.split_at(mid);
    Grudge::complete(&[a.to_vec(), b.to_vec()])
}

fn isolate(nodes: &[String], cut: &[String]) -> Grudge {
    let rest: Vec<String> = nodes.iter().filter(|n| !cut.contains(n)).cloned().collect();
    Grudge::complete(&[cut.to_vec(), rest])
}

fn majorities_ring(ring: &[String]) -> Grudge {
    let n = ring.len();
    let m = n / 2 + 1;
    let back = (m - 1) / 2;
    let mut g = BTreeMap::new();
    for i in 0..n {
        let sees: BTreeSet<usize> = (0..m).map(|k| (i + n - back + k) % n).collect();
        let drops: BTreeSet<String> = (0..n)
            .filter(|j| !sees.contains(j))
            .map(|j| ring[j].clone())
            .collect();
        g.insert(ring[i].clone(), drops);
    }
    Grudge(g)
}

fn bridge(v: &[String]) -> Grudge {
    let mid = v.len() / 2;
    let a = &v[..mid];
    let b = &v[mid + 1..];
    let mut g = BTreeMap::new();
    for n in a {
        g.insert(n.clone(), b.iter().cloned().collect());
    }
    for n in b {
        g.insert(n.clone(), a.iter().cloned().collect());
    }
    Grudge(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeded;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// The nodes `node` can still hear from, itself included.
    fn hears(g: &Grudge, all: &[String], node: &str) -> BTreeSet<String> {
        all.iter().filter(|x| !g.drops(node, x)).cloned().collect()
    }

    #[test]
    fn halves_split_in_cluster_order() {
        let g = Topology::Halves
            .grudge(&nodes(5), &[], &mut seeded(0))
            .unwrap();
        assert!(g.drops("n1", "n4") && g.drops("n5", "n3"));
        assert!(!g.drops("n1", "n3") && !g.drops("n4", "n5"));
        g.validate(&nodes(5)).unwrap();
    }

    #[test]
    fn majorities_ring_gives_each_node_a_distinct_majority() {
        for n in 3..=9 {
            let all = nodes(n);
            for seed in 0..20 {
                let g = Topology::MajoritiesRing
                    .grudge(&all, &[], &mut seeded(seed))
                    .unwrap();
                g.validate(&all).unwrap();
                let views: Vec<BTreeSet<String>> = all.iter().map(|x| hears(&g, &all, x)).collect();
                for (i, v) in views.iter().enumerate() {
                    assert!(v.len() > n / 2, "n={n} node {i} sees {v:?}");
                    assert!(v.contains(&all[i]));
                }
                if n >= 3 {
                    let distinct: BTreeSet<_> = views.iter().collect();
                    assert_eq!(distinct.len(), n, "n={n}: {views:?}");
                }
            }
        }
    }

    #[test]
    fn bridge_has_one_node_seeing_everyone() {
        let all = nodes(5);
        let g = Topology::Bridge.grudge(&all, &[], &mut seeded(3)).unwrap();
        let full: Vec<_> = all
            .iter()
            .filter(|x| hears(&g, &all, x).len() == 5)
            .collect();
        assert_eq!(full.len(), 1);
        for x in &all {
            assert!(hears(&g, &all, x).len() >= 3);
        }
    }

    #[test]
    fn minority_third_is_a_minority() {
        for n in 3..=10 {
            let all = nodes(n);
            let g = Topology::MinorityThird
                .grudge(&all, &[], &mut seeded(n as u64))
                .unwrap();
            let cut: Vec<_> = all
                .iter()
                .filter(|x| hears(&g, &all, x).len() < n)
                .collect();
            assert!(!cut.is_empty());
            let small = all
                .iter()
                .filter(|x| hears(&g, &all, x).len() * 2 < n)
                .count();
            assert!(small >= 1, "n={n}");
        }
    }

    #[test]
    fn primaries_and_isolate_check_their_nodes() {
        let all = nodes(3);
        assert!(Topology::Primaries
            .grudge(&all, &[], &mut seeded(0))
            .is_err());
        let g = Topology::Primaries
            .grudge(&all, &["n3".into()], &mut seeded(0))
            .unwrap();
        assert_eq!(hears(&g, &all, "n3").len(), 1);
        assert!(Topology::Isolate("n9".into())
            .grudge(&all, &[], &mut seeded(0))
            .is_err());
    }

    #[test]
    fn same_seed_same_grudge() {
        let all = nodes(7);
        for t in [
            Topology::RandomHalves,
            Topology::MajoritiesRing,
            Topology::Bridge,
        ] {
            let a = t.grudge(&all, &[], &mut seeded(42)).unwrap();
            let b = t.grudge(&all, &[], &mut seeded(42)).unwrap();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn validate_rejects_strangers_and_self_drops() {
        let all = nodes(3);
        let mut g = Grudge::default();
        g.0.insert("n1".into(), ["n1".to_string()].into());
        assert!(g.validate(&all).is_err());
        let mut g = Grudge::default();
        g.0.insert("n1".into(), ["n7".to_string()].into());
        assert!(g.validate(&all).is_err());
    }
}
