//! The combined nemesis: a schedule that mixes the enabled fault kinds, drawn from a seeded
//! RNG so that the same seed (and options) gives the same schedule. Every `interval` the
//! schedule either starts a fault (when none is active) or heals the active one, as
//! Jepsen's combined nemesis does (each kind draws its own faults: [`Kind::random_spec`]); the test heals everything at the end whatever the
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

use crate::fault::FaultSpec;
use crate::{seeded, FaultRng};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use crate::registry::Kind;

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
                    fault: kind.random_spec(&mut rng),
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
