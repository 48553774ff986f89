//! Faults: as asked for ([`FaultSpec`]: "a random minority", "halves"), as applied
//! ([`Fault`]: concrete nodes and values, the form journaled and written into histories), and
//! how each is undone ([`Undo`]: what heal needs, discovered before the fault is applied).

use crate::grudge::{Grudge, Topology};
use crate::NemesisError;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

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

/// Packet faults applied with `tc netem`. Percentages are 0-100.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetemSpec {
    /// Added delay.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay: Option<Duration>,
    /// Jitter around the delay (needs a delay).
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub jitter: Option<Duration>,
    /// Packets lost, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Packets duplicated, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// Packets sent at once, out of order, in percent (needs a delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
    /// Packets with a flipped bit, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<f64>,
    /// Rate limit in kilobits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_kbit: Option<u64>,
}

impl NetemSpec {
    /// Checks the combination and the ranges.
    pub fn validate(&self) -> Result<(), NemesisError> {
        let bad = |m: String| Err(NemesisError::BadFault(m));
        if *self == NetemSpec::default() {
            return bad(
                "netem needs at least one of delay, loss, duplicate, reorder, corrupt, rate".into(),
            );
        }
        if self.jitter.is_some() && self.delay.is_none() {
            return bad("jitter needs a delay".into());
        }
        if self.reorder.is_some() && self.delay.is_none() {
            return bad(
                "reorder needs a delay (netem reorders by sending some packets without it)".into(),
            );
        }
        for (name, v) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if let Some(p) = v {
                if !(0.0..=100.0).contains(&p) {
                    return bad(format!("{name} {p}: expected a percentage from 0 to 100"));
                }
            }
        }
        if self.rate_kbit == Some(0) {
            return bad("rate 0: expected a positive rate in kbit/s".into());
        }
        Ok(())
    }

    /// The netem arguments (`delay 200ms 50ms loss 5% ...`).
    pub fn tc_args(&self) -> Vec<String> {
        let ms = |d: Duration| format!("{}us", d.as_micros());
        let mut a = Vec::new();
        if let Some(d) = self.delay {
            a.push("delay".into());
            a.push(ms(d));
            if let Some(j) = self.jitter {
                a.push(ms(j));
            }
        }
        for (name, v) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if let Some(p) = v {
                a.push(name.into());
                a.push(format!("{p}%"));
            }
        }
        if let Some(r) = self.rate_kbit {
            a.push("rate".into());
            a.push(format!("{r}kbit"));
        }
        a
    }
}

impl fmt::Display for NetemSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(d) = self.delay {
            parts.push(format!("delay {}", humantime::format_duration(d)));
        }
        if let Some(j) = self.jitter {
            parts.push(format!("jitter {}", humantime::format_duration(j)));
        }
        for (name, v) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if let Some(p) = v {
                parts.push(format!("{name} {p}%"));
            }
        }
        if let Some(r) = self.rate_kbit {
            parts.push(format!("rate {r}kbit"));
        }
        f.write_str(&parts.join(" "))
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

/// A fault as asked for, before random choices and the database's primaries are resolved.
/// This is what a schedule holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum FaultSpec {
    /// A network partition.
    Partition {
        /// Its shape.
        partition: PartitionSpec,
    },
    /// Packet faults on the targets' outgoing traffic (to `to` only, when given).
    Netem {
        /// Nodes whose outgoing packets are affected.
        targets: Targets,
        /// Only packets to these nodes (default: all traffic).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<Targets>,
        /// The faults.
        spec: NetemSpec,
    },
    /// SIGKILL the database on the targets; heal restarts it.
    Kill {
        /// Which nodes.
        targets: Targets,
    },
    /// SIGSTOP the database on the targets; heal sends SIGCONT.
    Pause {
        /// Which nodes.
        targets: Targets,
    },
    /// Move the targets' clocks by `by_ms` milliseconds (may be negative).
    ClockBump {
        /// Which nodes.
        targets: Targets,
        /// The offset.
        by_ms: i64,
    },
    /// Jump the targets' clocks back and forth by `delta_ms` every `period_ms` for
    /// `duration_ms`.
    ClockStrobe {
        /// Which nodes.
        targets: Targets,
        /// How far each jump goes.
        delta_ms: i64,
        /// Time between jumps.
        period_ms: u64,
        /// How long the strobe lasts.
        duration_ms: u64,
    },
}

/// A fault with every choice made: concrete nodes and values. This is what is journaled and
/// written into histories as a `process: "nemesis"` op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    /// Each node drops packets from the nodes its grudge names.
    Partition {
        /// Who drops whom.
        grudge: Grudge,
        /// The topology it came from, for people.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topology: Option<String>,
    },
    /// Packet faults on the outgoing traffic of `nodes` (to `to` only, when not empty).
    Netem {
        /// Affected nodes.
        nodes: Vec<String>,
        /// Only traffic to these nodes (empty: all traffic).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        to: Vec<String>,
        /// The faults.
        spec: NetemSpec,
    },
    /// The database killed with SIGKILL on `nodes`.
    Kill {
        /// The database.
        db: String,
        /// Affected nodes.
        nodes: Vec<String>,
    },
    /// The database paused with SIGSTOP on `nodes`.
    Pause {
        /// The database.
        db: String,
        /// Affected nodes.
        nodes: Vec<String>,
    },
    /// Clocks moved by `by_ms`.
    ClockBump {
        /// Affected nodes.
        nodes: Vec<String>,
        /// The offset in milliseconds.
        by_ms: i64,
    },
    /// Clocks strobed.
    ClockStrobe {
        /// Affected nodes.
        nodes: Vec<String>,
        /// Jump size in milliseconds.
        delta_ms: i64,
        /// Time between jumps in milliseconds.
        period_ms: u64,
        /// How long, in milliseconds.
        duration_ms: u64,
    },
}

impl Fault {
    /// The kind, as in `--nemesis` lists: partition, netem, kill, pause, clock.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::Netem { .. } => "netem",
            Fault::Kill { .. } => "kill",
            Fault::Pause { .. } => "pause",
            Fault::ClockBump { .. } | Fault::ClockStrobe { .. } => "clock",
        }
    }

    /// The `f` of the history op that records the fault's start (`start-partition`, ...).
    pub fn start_f(&self) -> String {
        format!("start-{}", self.kind())
    }

    /// The `f` of the history op that records its heal (`stop-partition`, ...).
    pub fn stop_f(&self) -> String {
        format!("stop-{}", self.kind())
    }

    /// The value written into the history: a grudge for partitions (as DESIGN.md shows),
    /// the affected nodes and parameters otherwise.
    pub fn history_value(&self) -> serde_json::Value {
        match self {
            Fault::Partition { grudge, .. } => serde_json::to_value(grudge).unwrap_or_default(),
            other => serde_json::to_value(other).unwrap_or_default(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition { grudge, topology } => match topology {
                Some(t) => write!(f, "partition ({t}): {grudge}"),
                None => write!(f, "partition: {grudge}"),
            },
            Fault::Netem { nodes, to, spec } if to.is_empty() => {
                write!(f, "netem {spec} on {}", nodes.join(","))
            }
            Fault::Netem { nodes, to, spec } => {
                write!(
                    f,
                    "netem {spec} from {} to {}",
                    nodes.join(","),
                    to.join(",")
                )
            }
            Fault::Kill { db, nodes } => write!(f, "kill {db} on {}", nodes.join(",")),
            Fault::Pause { db, nodes } => write!(f, "pause {db} on {}", nodes.join(",")),
            Fault::ClockBump { nodes, by_ms } => {
                write!(f, "clock bump {by_ms:+}ms on {}", nodes.join(","))
            }
            Fault::ClockStrobe {
                nodes,
                delta_ms,
                period_ms,
                duration_ms,
            } => write!(
                f,
                "clock strobe ±{delta_ms}ms every {period_ms}ms for {duration_ms}ms on {}",
                nodes.join(",")
            ),
        }
    }
}

/// What heal does to undo a fault. Found out before the fault is applied (which interfaces,
/// which processes) and journaled with it, so that another faultline process can heal it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "kebab-case")]
pub enum Undo {
    /// Remove faultline's iptables chain (and the jump to it) on these nodes.
    Partition {
        /// The nodes.
        nodes: Vec<String>,
    },
    /// Remove faultline's root qdisc from these interfaces, per node.
    Netem {
        /// Node to interfaces.
        ifaces: BTreeMap<String, Vec<String>>,
    },
    /// Send SIGCONT to these processes, per node.
    Resume {
        /// Node to PIDs.
        pids: BTreeMap<String, Vec<u32>>,
    },
    /// Start the database again where it is not running.
    Restart {
        /// The database.
        db: String,
        /// The nodes.
        nodes: Vec<String>,
    },
    /// Set these nodes' clocks back to the controller's time, then start the time-sync
    /// units the fault stopped.
    ResetClock {
        /// The nodes.
        nodes: Vec<String>,
        /// Node to the time-synchronisation units (systemd) that ran before the fault.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        time_sync: BTreeMap<String, Vec<String>>,
    },
}

impl Undo {
    /// The nodes this undo touches.
    pub fn nodes(&self) -> Vec<String> {
        match self {
            Undo::Partition { nodes }
            | Undo::Restart { nodes, .. }
            | Undo::ResetClock { nodes, .. } => nodes.clone(),
            Undo::Netem { ifaces } => ifaces.keys().cloned().collect(),
            Undo::Resume { pids } => pids.keys().cloned().collect(),
        }
    }
}

/// Serde for `Option<Duration>` as human-readable strings (`200ms`).
mod opt_duration {
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

    #[test]
    fn netem_args_and_validation() {
        let spec = NetemSpec {
            delay: Some(Duration::from_millis(200)),
            jitter: Some(Duration::from_millis(50)),
            loss: Some(5.0),
            ..NetemSpec::default()
        };
        spec.validate().unwrap();
        assert_eq!(
            spec.tc_args(),
            ["delay", "200000us", "50000us", "loss", "5%"]
        );
        assert!(NetemSpec::default().validate().is_err());
        let no_delay = NetemSpec {
            jitter: Some(Duration::from_millis(5)),
            ..NetemSpec::default()
        };
        assert!(no_delay.validate().is_err());
        let too_much = NetemSpec {
            loss: Some(150.0),
            ..NetemSpec::default()
        };
        assert!(too_much.validate().is_err());
    }

    #[test]
    fn faults_round_trip_through_json() {
        let f = Fault::Netem {
            nodes: nodes(2),
            to: vec!["n3".into()],
            spec: NetemSpec {
                delay: Some(Duration::from_millis(20)),
                ..NetemSpec::default()
            },
        };
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<Fault>(&text).unwrap(), f);
        let g = Grudge::complete(&[vec!["n1".into()], vec!["n2".into()]]);
        let p = Fault::Partition {
            grudge: g.clone(),
            topology: None,
        };
        assert_eq!(p.history_value(), serde_json::to_value(&g).unwrap());
        assert_eq!(p.start_f(), "start-partition");
    }
}
