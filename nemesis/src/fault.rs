//! What every fault kind has in common, and the traits a kind implements.
//!
//! A fault goes through three forms: as asked for ([`FaultSpec`]: "a random minority",
//! "halves"), as applied ([`Fault`]: concrete nodes and values, the form journaled and written
//! into histories), and how it is undone ([`Undo`]: what heal needs, found before the fault is
//! applied). Each kind of fault (partition, netem, kill, pause, clock) lives in its own module
//! with its three forms and implements the traits below: [`Package`] (its name, plot colour and
//! random choice for schedules), [`Spec`] (resolve), [`Apply`] (plan, apply, describe) and
//! [`Heal`] (undo). The registry ([`crate::registry`]) lists the kinds once and makes
//! [`Kind`], [`FaultSpec`], [`Fault`] and [`Undo`] from that list.

use crate::{FaultRng, Nemesis, NemesisError};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub use crate::netem::NetemSpec;
pub use crate::partition::PartitionSpec;
pub use crate::registry::{Fault, FaultSpec, Kind, Undo};

/// Per-node errors: node to message (empty when every node succeeded).
pub type NodeErrors = BTreeMap<String, String>;

/// A kind of fault as `--nemesis` names it (a "nemesis package", in Jepsen's words): what a
/// schedule needs to know about it. Implemented by a unit type in the kind's module and
/// listed in [`crate::registry`].
pub trait Package {
    /// Its name: in `--nemesis` lists, in the history's `start-NAME` / `stop-NAME` ops, in
    /// test.yaml's `kinds` and in reports.
    const NAME: &'static str;
    /// One line on what it does.
    const ABOUT: &'static str;
    /// The colour of its intervals in plots (red, green, blue).
    const COLOR: [u8; 3];
    /// Whether it acts through faultline's lazy filesystem over the database's data
    /// directory, which a run then mounts ([`crate::power::mount`]).
    const ON_LAZYFS: bool = false;
    /// A random fault of this kind for a schedule, drawn from `rng` only (so that a seed
    /// replays the schedule). Node choices are left to [`Spec::resolve`].
    fn random(rng: &mut FaultRng) -> FaultSpec;
}

/// A fault as asked for (one variant of [`FaultSpec`]).
pub trait Spec {
    /// The fault it resolves to (the matching variant of [`Fault`]).
    type Fault: Apply;
    /// Makes every choice: random nodes from `rng`, the database's primaries, the database
    /// that process faults target. Changes nothing on the nodes.
    fn resolve<R: Rng>(&self, nem: &Nemesis<'_>, rng: &mut R) -> Result<Self::Fault, NemesisError>;
}

/// A fault with every choice made (one variant of [`Fault`]): how it is planned, applied and
/// described.
pub trait Apply: fmt::Display {
    /// The kind it belongs to.
    const KIND: Kind;
    /// How it is undone (one variant of [`Undo`]).
    type Undo: Heal + Into<Undo> + Clone;
    /// What planning found that applying needs besides the undo (`()` for most kinds).
    type Plan;
    /// Finds out, without changing anything, how to undo the fault (the interfaces, PIDs,
    /// services it will touch), and refuses a fault that cannot be applied.
    fn plan(&self, nem: &Nemesis<'_>) -> Result<(Self::Undo, Self::Plan), NemesisError>;
    /// Applies the fault on its nodes, in parallel; `undo` is journaled already and `id` is
    /// the fault's journal id. Returns the nodes where it failed.
    fn apply(
        &self,
        nem: &Nemesis<'_>,
        undo: &Self::Undo,
        plan: Self::Plan,
        id: u64,
    ) -> Result<NodeErrors, NemesisError>;
    /// The nodes it acts on.
    fn nodes(&self) -> Vec<String>;
    /// Whether applying this fault undoes a pending fault with `undo` by itself (a new
    /// partition replaces the rules of the previous one), so that it can be marked healed.
    fn supersedes(&self, _undo: &Undo) -> bool {
        false
    }
    /// The value of its history ops, when it is not the journaled form of the fault (a
    /// partition's is its grudge, as DESIGN.md shows).
    fn history_value(&self) -> Option<serde_json::Value> {
        None
    }
}

/// How a fault is undone (one variant of [`Undo`]). Heal must be idempotent: undoing what is
/// already undone succeeds and changes nothing. `Display` says what undoing does, for heal's
/// output.
pub trait Heal: fmt::Display {
    /// Undoes the fault on its nodes, retrying each; returns the nodes where it failed.
    fn heal(&self, nem: &Nemesis<'_>) -> NodeErrors;
    /// The nodes it touches.
    fn nodes(&self) -> Vec<String>;
    /// The database whose hooks undoing needs (a killed database is started by its hooks).
    fn database(&self) -> Option<&str> {
        None
    }
    /// How another faultline process opens that database (recorded with the fault).
    fn source(&self) -> Option<&crate::process::DbSource> {
        None
    }
    /// The part of this undo that concerns `node`, kept on the node itself
    /// ([`crate::node_state`]) so that heal finds it without the journal; `None` (the
    /// default) when heal's sweep finds the fault's traces by itself.
    fn on_node(&self, _node: &str) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}

/// Which nodes a fault targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Targets {
    /// One random node.
    One,
    /// A random minority (at least one node, fewer than half).
    Minority,
    /// A random majority.
    Majority,
    /// The nodes the database reports as primaries (leaders).
    Primaries,
    /// Every node.
    All,
    /// These nodes.
    Nodes(Vec<String>),
}

impl Targets {
    /// Parses `one`, `minority`, `majority`, `primaries`, `all`, or a comma-separated list of
    /// node names.
    pub fn parse(s: &str) -> Targets {
        match s {
            "one" => Targets::One,
            "minority" => Targets::Minority,
            "majority" => Targets::Majority,
            "primaries" | "primary" => Targets::Primaries,
            "all" => Targets::All,
            list => Targets::Nodes(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            ),
        }
    }

    /// A random choice among one, minority, majority, primaries and all (for schedules).
    pub fn random(rng: &mut FaultRng) -> Targets {
        [
            Targets::One,
            Targets::Minority,
            Targets::Majority,
            Targets::Primaries,
            Targets::All,
        ]
        .choose(rng)
        .cloned()
        .unwrap_or(Targets::One)
    }

    /// The concrete nodes; `primaries` is asked only for [`Targets::Primaries`].
    pub fn resolve(
        &self,
        nodes: &[String],
        primaries: impl FnOnce() -> Result<Vec<String>, NemesisError>,
        rng: &mut impl Rng,
    ) -> Result<Vec<String>, NemesisError> {
        if nodes.is_empty() {
            return Err(NemesisError::BadFault("the cluster has no nodes".into()));
        }
        let mut shuffled = nodes.to_vec();
        let mut pick = |k: usize, rng: &mut dyn rand::RngCore| {
            shuffled.shuffle(rng);
            let mut v = shuffled[..k].to_vec();
            v.sort_by_key(|n| nodes.iter().position(|m| m == n));
            v
        };
        let n = nodes.len();
        let chosen = match self {
            Targets::One => pick(1, rng),
            Targets::Minority => pick(((n - 1) / 2).max(1), rng),
            Targets::Majority => pick(n / 2 + 1, rng),
            Targets::All => nodes.to_vec(),
            Targets::Primaries => {
                let p = primaries()?;
                if p.is_empty() {
                    return Err(NemesisError::BadFault(
                        "the database reports no primary".into(),
                    ));
                }
                p
            }
            Targets::Nodes(list) => {
                if list.is_empty() {
                    return Err(NemesisError::BadFault("no nodes named".into()));
                }
                list.clone()
            }
        };
        for c in &chosen {
            if !nodes.contains(c) {
                return Err(NemesisError::BadFault(format!(
                    "{c:?} is not a node of this cluster ({})",
                    nodes.join(", ")
                )));
            }
        }
        Ok(chosen)
    }
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Targets::One => f.write_str("one"),
            Targets::Minority => f.write_str("minority"),
            Targets::Majority => f.write_str("majority"),
            Targets::Primaries => f.write_str("primaries"),
            Targets::All => f.write_str("all"),
            Targets::Nodes(v) => f.write_str(&v.join(",")),
        }
    }
}

/// Serde for `Option<Duration>` as human-readable strings (`200ms`).
pub(crate) mod opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeded;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn targets_resolve_to_the_right_sizes() {
        let all = nodes(5);
        let none = || Ok(vec![]);
        let mut rng = seeded(7);
        assert_eq!(Targets::One.resolve(&all, none, &mut rng).unwrap().len(), 1);
        assert_eq!(
            Targets::Minority
                .resolve(&all, none, &mut rng)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            Targets::Majority
                .resolve(&all, none, &mut rng)
                .unwrap()
                .len(),
            3
        );
        assert_eq!(Targets::All.resolve(&all, none, &mut rng).unwrap(), all);
        assert_eq!(
            Targets::Primaries
                .resolve(&all, || Ok(vec!["n4".into()]), &mut rng)
                .unwrap(),
            vec!["n4".to_string()]
        );
        assert!(Targets::Primaries.resolve(&all, none, &mut rng).is_err());
        assert!(Targets::parse("n1,n9")
            .resolve(&all, none, &mut rng)
            .is_err());
        assert_eq!(
            Targets::Minority
                .resolve(&nodes(2), none, &mut rng)
                .unwrap()
                .len(),
            1
        );
    }
}
