//! Partitions with iptables: each node drops, on INPUT, packets from the addresses of the
//! nodes its grudge names, IPv4 with iptables and, where nodes have global IPv6 addresses,
//! IPv6 with ip6tables. The rules live in a chain that faultline owns (`FAULTLINE`, in each
//! family), reached by one jump from INPUT; heal flushes and deletes that chain and the jump,
//! and never touches any other rule. The controller's own address is never dropped, so the
//! nodes stay reachable over SSH.
//!
//! The kind `partition`: [`PartitionFaultSpec`] (a topology or a grudge), [`PartitionFault`]
//! (the grudge), [`PartitionUndo`] (remove the chain). A new partition replaces the previous
//! one.

use crate::fault::{Apply, Heal, NodeErrors, Package, Spec};
use crate::grudge::{Grudge, Topology};
use crate::registry::{FaultSpec, Kind, Undo};
use crate::remote::{on_each, on_each_retrying, root_script};
use crate::{FaultRng, Nemesis, NemesisError};
use clusters::{quote, Cluster};
use rand::seq::IndexedRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The kind `partition` (see [`Package`]).
pub struct Partition;

impl Package for Partition {
    const NAME: &'static str = "partition";
    const ABOUT: &'static str = "network partitions (iptables drops in faultline's chain)";
    const COLOR: [u8; 3] = [120, 120, 220];

    /// A random topology of those Jepsen's partition nemeses use.
    fn random(rng: &mut FaultRng) -> FaultSpec {
        let t = [
            Topology::RandomHalves,
            Topology::IsolateRandom,
            Topology::MajoritiesRing,
            Topology::MinorityThird,
            Topology::Bridge,
            Topology::Primaries,
        ]
        .choose(rng)
        .cloned()
        .unwrap_or(Topology::RandomHalves);
        FaultSpec::Partition(PartitionFaultSpec {
            partition: PartitionSpec::Topology(t),
        })
    }
}

/// How a partition is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PartitionSpec {
    /// A named topology.
    Topology(Topology),
    /// An explicit grudge.
    Grudge(Grudge),
}

/// A partition as asked for (`{"fault":"partition","partition":...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionFaultSpec {
    /// Its shape.
    pub partition: PartitionSpec,
}

/// A partition as applied: each node drops packets from the nodes its grudge names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionFault {
    /// Who drops whom.
    pub grudge: Grudge,
    /// The topology it came from, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<String>,
}

/// Remove faultline's iptables chain (and the jump to it) on these nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionUndo {
    /// The nodes.
    pub nodes: Vec<String>,
}

impl Spec for PartitionFaultSpec {
    type Fault = PartitionFault;

    fn resolve<R: Rng>(
        &self,
        nem: &Nemesis<'_>,
        rng: &mut R,
    ) -> Result<PartitionFault, NemesisError> {
        let nodes = nem.cluster().nodes();
        Ok(match &self.partition {
            PartitionSpec::Topology(t) => {
                let primaries = if *t == Topology::Primaries {
                    nem.primaries()?
                } else {
                    Vec::new()
                };
                PartitionFault {
                    grudge: t.grudge(&nodes, &primaries, rng)?,
                    topology: Some(t.to_string()),
                }
            }
            PartitionSpec::Grudge(g) => {
                g.validate(&nodes)?;
                PartitionFault {
                    grudge: g.clone(),
                    topology: None,
                }
            }
        })
    }
}

impl Apply for PartitionFault {
    const KIND: Kind = Kind::Partition;
    type Undo = PartitionUndo;
    type Plan = ();

    fn plan(&self, nem: &Nemesis<'_>) -> Result<(PartitionUndo, ()), NemesisError> {
        let nodes = nem.cluster().nodes();
        self.grudge.validate(&nodes)?;
        nem.addresses()?;
        nem.addresses_v6()?;
        Ok((PartitionUndo { nodes }, ()))
    }

    fn apply(
        &self,
        nem: &Nemesis<'_>,
        _undo: &PartitionUndo,
        _plan: (),
        _id: u64,
    ) -> Result<NodeErrors, NemesisError> {
        Ok(apply_both(
            nem.cluster(),
            &self.grudge,
            &nem.addresses()?,
            &nem.addresses_v6()?,
        ))
    }

    fn nodes(&self) -> Vec<String> {
        let mut v: BTreeSet<String> = BTreeSet::new();
        for (n, from) in &self.grudge.0 {
            v.insert(n.clone());
            v.extend(from.iter().cloned());
        }
        v.into_iter().collect()
    }

    /// A partition's rules replace any earlier partition's.
    fn supersedes(&self, undo: &Undo) -> bool {
        matches!(undo, Undo::Partition(_))
    }

    fn history_value(&self) -> Option<serde_json::Value> {
        Some(serde_json::to_value(&self.grudge).unwrap_or_default())
    }
}

impl fmt::Display for PartitionFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.topology {
            Some(t) => write!(f, "partition ({t}): {}", self.grudge),
            None => write!(f, "partition: {}", self.grudge),
        }
    }
}

impl fmt::Display for PartitionUndo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "remove the partition rules of {}", self.nodes.join(","))
    }
}

impl Heal for PartitionUndo {
    fn heal(&self, nem: &Nemesis<'_>) -> NodeErrors {
        heal(nem.cluster(), &self.nodes)
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }
}

/// The iptables chain faultline owns.
pub const CHAIN: &str = "FAULTLINE";

/// Each node's global IPv4 addresses (see [`clusters::addr::node_addresses`]).
pub fn node_addresses(cluster: &Cluster) -> Result<BTreeMap<String, Vec<Ipv4Addr>>, NemesisError> {
    Ok(clusters::addr::node_addresses(cluster)?)
}

/// The source addresses each node must drop: every address of every node it holds a grudge
/// against, except addresses it has itself (IPv4 or IPv6).
pub fn drop_sources<A: Ord + Copy>(
    grudge: &Grudge,
    addrs: &BTreeMap<String, Vec<A>>,
) -> BTreeMap<String, BTreeSet<A>> {
    let mut out = BTreeMap::new();
    for (node, from) in &grudge.0 {
        let own: BTreeSet<A> = addrs.get(node).into_iter().flatten().copied().collect();
        let srcs: BTreeSet<A> = from
            .iter()
            .flat_map(|f| addrs.get(f).into_iter().flatten().copied())
            .filter(|a| !own.contains(a))
            .collect();
        out.insert(node.clone(), srcs);
    }
    out
}

/// The script that replaces the node's partition rules with drops of `sources` (IPv4) and
/// `sources6` (IPv6). The IPv6 chain is made only where there is an IPv6 source to drop
/// (ip6tables is then required); otherwise an earlier partition's IPv6 rules are flushed.
fn apply_script(sources: &BTreeSet<Ipv4Addr>, sources6: &BTreeSet<Ipv6Addr>) -> String {
    let mut s = format!(
        "command -v iptables >/dev/null || {{ echo 'iptables is not installed on this node' >&2; exit 127; }}\n\
         iptables -w -N {CHAIN} 2>/dev/null || true\n\
         iptables -w -F {CHAIN}\n\
         iptables -w -C INPUT -j {CHAIN} 2>/dev/null || iptables -w -I INPUT 1 -j {CHAIN}\n"
    );
    for a in sources {
        s.push_str(&format!(
            "iptables -w -A {CHAIN} -s {} -j DROP\n",
            quote(&a.to_string())
        ));
    }
    if sources6.is_empty() {
        s.push_str(&format!(
            "if command -v ip6tables >/dev/null; then ip6tables -w -F {CHAIN} 2>/dev/null || true; fi\n"
        ));
    } else {
        s.push_str(&format!(
            "command -v ip6tables >/dev/null || {{ echo 'ip6tables is not installed on this node (its peers have IPv6 addresses)' >&2; exit 127; }}\n\
             ip6tables -w -N {CHAIN} 2>/dev/null || true\n\
             ip6tables -w -F {CHAIN}\n\
             ip6tables -w -C INPUT -j {CHAIN} 2>/dev/null || ip6tables -w -I INPUT 1 -j {CHAIN}\n"
        ));
        for a in sources6 {
            s.push_str(&format!(
                "ip6tables -w -A {CHAIN} -s {} -j DROP\n",
                quote(&a.to_string())
            ));
        }
    }
    format!("set -e\n{s}")
}

/// The script that removes faultline's chain and the jump to it (and nothing else), in both
/// families. Succeeds when there is nothing to remove.
fn heal_script() -> String {
    let mut s = String::new();
    // Without iptables no IPv4 rule can be left; without ip6tables, no IPv6 rule.
    for t in ["iptables", "ip6tables"] {
        s.push_str(&format!(
            "if command -v {t} >/dev/null; then\n\
             {t} -w -F {CHAIN} 2>/dev/null || true\n\
             while {t} -w -D INPUT -j {CHAIN} 2>/dev/null; do :; done\n\
             {t} -w -X {CHAIN} 2>/dev/null || true\n\
             if {t} -w -n -L {CHAIN} >/dev/null 2>&1; then echo 'the {t} FAULTLINE chain is still there' >&2; exit 1; fi\n\
             fi\n"
        ));
    }
    s
}

/// The heal script for heal's sweep: also prints a line when there was a chain to remove.
pub(crate) fn sweep_script() -> String {
    format!(
        "if command -v iptables >/dev/null && iptables -w -n -L {CHAIN} >/dev/null 2>&1; then echo 'removed partition rules (iptables chain {CHAIN})'; fi\n\
         if command -v ip6tables >/dev/null && ip6tables -w -n -L {CHAIN} >/dev/null 2>&1; then echo 'removed IPv6 partition rules (ip6tables chain {CHAIN})'; fi\n{}",
        heal_script()
    )
}

/// Applies `grudge` on every node of the cluster in parallel (nodes with no grudge get their
/// partition rules cleared), IPv4 only. Returns the nodes where it failed.
pub fn apply(
    cluster: &Cluster,
    grudge: &Grudge,
    addrs: &BTreeMap<String, Vec<Ipv4Addr>>,
) -> BTreeMap<String, String> {
    apply_both(cluster, grudge, addrs, &BTreeMap::new())
}

/// Applies `grudge` on every node of the cluster in parallel, dropping the grudged nodes'
/// IPv4 (`addrs`) and IPv6 (`addrs6`) addresses. Returns the nodes where it failed.
pub fn apply_both(
    cluster: &Cluster,
    grudge: &Grudge,
    addrs: &BTreeMap<String, Vec<Ipv4Addr>>,
    addrs6: &BTreeMap<String, Vec<Ipv6Addr>>,
) -> BTreeMap<String, String> {
    let sources = drop_sources(grudge, addrs);
    let sources6 = drop_sources(grudge, addrs6);
    let (empty, empty6) = (BTreeSet::new(), BTreeSet::new());
    on_each(cluster, &cluster.nodes(), |n| {
        let srcs = sources.get(n).unwrap_or(&empty);
        let srcs6 = sources6.get(n).unwrap_or(&empty6);
        root_script(
            cluster,
            n,
            "iptables (partition)",
            &apply_script(srcs, srcs6),
        )
        .map(|_| ())
    })
}

/// Removes faultline's partition rules from `nodes`, retrying each node.
pub fn heal(cluster: &Cluster, nodes: &[String]) -> BTreeMap<String, String> {
    on_each_retrying(cluster, nodes, |n| {
        root_script(cluster, n, "iptables (heal partition)", &heal_script()).map(|_| ())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_addresses_are_never_dropped() {
        // Vagrant gives every guest the same NAT address; a node must not drop its own.
        let nat = Ipv4Addr::new(10, 0, 2, 15);
        let addrs: BTreeMap<String, Vec<Ipv4Addr>> = [
            ("n1".to_string(), vec![nat, Ipv4Addr::new(192, 168, 56, 11)]),
            ("n2".to_string(), vec![nat, Ipv4Addr::new(192, 168, 56, 12)]),
        ]
        .into();
        let g = Grudge::complete(&[vec!["n1".into()], vec!["n2".into()]]);
        let d = drop_sources(&g, &addrs);
        assert_eq!(
            d["n1"].iter().copied().collect::<Vec<_>>(),
            vec![Ipv4Addr::new(192, 168, 56, 12)]
        );
    }

    #[test]
    fn scripts_only_touch_faultlines_chain() {
        let s = apply_script(
            &[Ipv4Addr::new(10, 0, 0, 2)].into(),
            &["fd00::2".parse::<Ipv6Addr>().unwrap()].into(),
        );
        assert!(
            s.contains("ip6tables -w -A FAULTLINE -s fd00::2 -j DROP"),
            "{s}"
        );
        for line in s
            .lines()
            .filter(|l| l.starts_with("iptables") || l.starts_with("ip6tables"))
        {
            assert!(line.contains(CHAIN), "{line}");
        }
        let v4_only = apply_script(&[Ipv4Addr::new(10, 0, 0, 2)].into(), &BTreeSet::new());
        assert!(!v4_only.contains("ip6tables -w -A"), "{v4_only}");
        for line in heal_script()
            .lines()
            .filter(|l| l.contains("iptables -w -"))
        {
            assert!(line.contains(CHAIN), "{line}");
        }
    }
}
