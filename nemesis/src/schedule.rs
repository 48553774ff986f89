//! The combined nemesis: a schedule that mixes the enabled fault kinds, drawn from a seeded
//! RNG so that the same seed (and options) gives the same schedule. Every `interval` the
//! schedule either starts a fault (when none is active) or heals the active one, as
//! Jepsen's combined nemesis does; the test heals everything at the end whatever the
//! schedule says. Random node choices are made when a step is applied, from an RNG seeded
//! by the step ([`Step::rng`]), so that they too replay from the seed.
//!
//! ```
//! use nemesis::schedule::{Kind, Schedule};
//! use std::time::Duration;
//! let kinds = Kind::parse_list("partition,kill").unwrap();
//! let a = Schedule::generate(&kinds, Duration::from_secs(5), Duration::from_secs(60), 42);
//! let b = Schedule::generate(&kinds, Duration::from_secs(5), Duration::from_secs(60), 42);
//! assert_eq!(a, b);
//! assert_eq!(a.steps.len(), 11); // at 5 s, 10 s, ... 55 s
//! ```

use crate::fault::{FaultSpec, NetemSpec, PartitionSpec, Targets};
use crate::grudge::Topology;
use crate::{seeded, FaultRng, NemesisError};
use rand::seq::IndexedRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A kind of fault that `--nemesis` can enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Network partitions.
    Partition,
    /// Packet faults.
    Netem,
    /// SIGKILL and restart of the database.
    Kill,
    /// SIGSTOP and SIGCONT of the database.
    Pause,
    /// Clock bumps and strobes.
    Clock,
}

impl Kind {
    /// All kinds, in `--nemesis` order.
    pub const ALL: [Kind; 5] = [
        Kind::Partition,
        Kind::Kill,
        Kind::Pause,
        Kind::Clock,
        Kind::Netem,
    ];

    /// Parses a comma-separated list (`partition,kill,pause,clock,netem`, or `none`).
    pub fn parse_list(s: &str) -> Result<Vec<Kind>, NemesisError> {
        let mut out = Vec::new();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let k = match word {
                "none" => continue,
                "partition" => Kind::Partition,
                "netem" => Kind::Netem,
                "kill" => Kind::Kill,
                "pause" => Kind::Pause,
                "clock" => Kind::Clock,
                other => {
                    return Err(NemesisError::BadFault(format!(
                        "unknown nemesis {other:?}: expected a comma-separated list of partition, kill, pause, clock, netem (or none)"
                    )))
                }
            };
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Start this fault.
    Start {
        /// The fault, before node choices.
        fault: FaultSpec,
    },
    /// Heal the active fault.
    Heal,
}

/// One step of a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// When, in milliseconds after the workload starts.
    pub at_ms: u64,
    /// What.
    #[serde(flatten)]
    pub action: Action,
    /// The seed of this step's node choices.
    pub seed: u64,
}

impl Step {
    /// The RNG for this step's node choices.
    pub fn rng(&self) -> FaultRng {
        seeded(self.seed)
    }
}

/// A fault schedule, as written into a run's test.yaml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The seed it was drawn from.
    pub seed: u64,
    /// The kinds it mixes.
    pub kinds: Vec<Kind>,
    /// Time between steps, in milliseconds.
    pub interval_ms: u64,
    /// The steps, in time order.
    pub steps: Vec<Step>,
}

impl Schedule {
    /// Draws a schedule for a workload of `time_limit`: a step every `interval`, alternating
    /// between starting a random fault of one of `kinds` and healing it.
    pub fn generate(
        kinds: &[Kind],
        interval: Duration,
        time_limit: Duration,
        seed: u64,
    ) -> Schedule {
        let mut rng = seeded(seed);
        let interval_ms = interval.as_millis().max(1) as u64;
        let limit_ms = time_limit.as_millis() as u64;
        let mut steps = Vec::new();
        let mut active = false;
        let mut at = interval_ms;
        while !kinds.is_empty() && at < limit_ms {
            let action = if active {
                Action::Heal
            } else {
                let kind = kinds[rng.random_range(0..kinds.len())];
                Action::Start {
                    fault: random_fault(kind, &mut rng),
                }
            };
            active = !active;
            steps.push(Step {
                at_ms: at,
                action,
                seed: rng.random(),
            });
            at += interval_ms;
        }
        Schedule {
            seed,
            kinds: kinds.to_vec(),
            interval_ms,
            steps,
        }
    }
}

fn random_targets(rng: &mut FaultRng) -> Targets {
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

/// A random fault of `kind`, in the shapes Jepsen's nemeses use.
fn random_fault(kind: Kind, rng: &mut FaultRng) -> FaultSpec {
    match kind {
        Kind::Partition => {
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
            FaultSpec::Partition {
                partition: PartitionSpec::Topology(t),
            }
        }
        Kind::Kill => FaultSpec::Kill {
            targets: random_targets(rng),
        },
        Kind::Pause => FaultSpec::Pause {
            targets: random_targets(rng),
        },
        Kind::Clock => {
            let targets = random_targets(rng);
            if rng.random_bool(0.5) {
                let secs: i64 = rng.random_range(1..=60);
                let sign = if rng.random_bool(0.5) { 1 } else { -1 };
                FaultSpec::ClockBump {
                    targets,
                    by_ms: sign * secs * 1000,
                }
            } else {
                FaultSpec::ClockStrobe {
                    targets,
                    delta_ms: rng.random_range(10..=500),
                    period_ms: rng.random_range(1..=50),
                    duration_ms: rng.random_range(1_000..=10_000),
                }
            }
        }
        Kind::Netem => {
            let spec = match rng.random_range(0..4) {
                0 => NetemSpec {
                    delay: Some(Duration::from_millis(rng.random_range(20..=200))),
                    jitter: Some(Duration::from_millis(rng.random_range(0..=50))),
                    ..NetemSpec::default()
                },
                1 => NetemSpec {
                    loss: Some(f64::from(rng.random_range(5..=40u32))),
                    ..NetemSpec::default()
                },
                2 => NetemSpec {
                    delay: Some(Duration::from_millis(50)),
                    reorder: Some(f64::from(rng.random_range(10..=50u32))),
                    ..NetemSpec::default()
                },
                _ => NetemSpec {
                    corrupt: Some(f64::from(rng.random_range(1..=10u32))),
                    ..NetemSpec::default()
                },
            };
            FaultSpec::Netem {
                targets: random_targets(rng),
                to: None,
                spec,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule_and_different_seeds_differ() {
        let kinds = Kind::parse_list("partition,kill,pause,clock,netem").unwrap();
        let gen = |seed| {
            Schedule::generate(
                &kinds,
                Duration::from_secs(2),
                Duration::from_secs(600),
                seed,
            )
        };
        assert_eq!(gen(7), gen(7));
        assert_ne!(gen(7), gen(8));
        // Round trip through YAML-like JSON, as test.yaml stores it.
        let s = gen(7);
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&text).unwrap(), s);
    }

    #[test]
    fn steps_alternate_and_every_kind_appears() {
        let kinds = Kind::parse_list("netem,clock,pause,kill,partition").unwrap();
        let s = Schedule::generate(&kinds, Duration::from_secs(1), Duration::from_secs(400), 1);
        assert_eq!(s.steps.len(), 399);
        let mut seen = std::collections::BTreeSet::new();
        for (i, step) in s.steps.iter().enumerate() {
            assert_eq!(step.at_ms, (i as u64 + 1) * 1000);
            match &step.action {
                Action::Start { fault } => {
                    assert_eq!(i % 2, 0);
                    seen.insert(format!("{:?}", std::mem::discriminant(fault)));
                }
                Action::Heal => assert_eq!(i % 2, 1),
            }
        }
        assert_eq!(seen.len(), 6, "partition, netem, kill, pause, bump, strobe");
    }

    #[test]
    fn kind_lists_parse() {
        assert_eq!(
            Kind::parse_list("kill,partition,kill").unwrap(),
            [Kind::Partition, Kind::Kill]
        );
        assert!(Kind::parse_list("none").unwrap().is_empty());
        let e = Kind::parse_list("partition,flood").unwrap_err().to_string();
        assert!(e.contains("flood"), "{e}");
        let empty = Schedule::generate(&[], Duration::from_secs(1), Duration::from_secs(10), 0);
        assert!(empty.steps.is_empty());
    }
}
