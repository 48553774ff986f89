//! The nemesis's events in a history: one typed vocabulary for the `f` of the ops whose
//! process is `"nemesis"`, shared by what writes them (a run's fault driver and its final
//! heal) and what reads them (test power, the report).
//!
//! ```
//! use nemesis::event::NemesisEvent;
//! use nemesis::Kind;
//! let start = NemesisEvent::Start(Kind::Partition.name().into());
//! assert_eq!(start.f(), "start-partition");
//! assert_eq!(NemesisEvent::parse("start-partition"), Some(start));
//! assert_eq!(NemesisEvent::parse("fault-skipped"), Some(NemesisEvent::Skipped));
//! assert!(NemesisEvent::parse("stop-kill").unwrap().ends_faults());
//! assert_eq!(NemesisEvent::parse("read"), None);
//! ```

use crate::Kind;

/// What a nemesis event in a history says (its `f`, typed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NemesisEvent {
    /// A fault of the kind named started (`start-KIND`); the value says what it did.
    Start(String),
    /// The fault of the kind named was healed (`stop-KIND`); an `error` says the heal
    /// failed, a value `{"healed_from_outside": ...}` that another process healed it.
    Stop(String),
    /// Every fault left was healed when the workload ended (`heal`).
    HealAll,
    /// A scheduled step was tried and could not be applied (`fault-refused`); the value is
    /// the step ([`step_value`]), the `error` why.
    Refused,
    /// A scheduled step was not taken (`fault-skipped`); the value is the step, the `error`
    /// why.
    Skipped,
}

impl NemesisEvent {
    /// The start of a fault of `kind`.
    pub fn start(kind: Kind) -> NemesisEvent {
        NemesisEvent::Start(kind.name().to_string())
    }

    /// The heal of a fault of `kind`.
    pub fn stop(kind: Kind) -> NemesisEvent {
        NemesisEvent::Stop(kind.name().to_string())
    }

    /// Reads an event's `f` (`None` for an `f` that is not a nemesis event's).
    pub fn parse(f: &str) -> Option<NemesisEvent> {
        Some(match f {
            "heal" => NemesisEvent::HealAll,
            "fault-refused" => NemesisEvent::Refused,
            "fault-skipped" => NemesisEvent::Skipped,
            _ => {
                if let Some(kind) = f.strip_prefix("start-").filter(|k| !k.is_empty()) {
                    NemesisEvent::Start(kind.to_string())
                } else if let Some(kind) = f.strip_prefix("stop-").filter(|k| !k.is_empty()) {
                    NemesisEvent::Stop(kind.to_string())
                } else {
                    return None;
                }
            }
        })
    }

    /// The event's `f` in the history.
    pub fn f(&self) -> String {
        match self {
            NemesisEvent::Start(kind) => format!("start-{kind}"),
            NemesisEvent::Stop(kind) => format!("stop-{kind}"),
            NemesisEvent::HealAll => "heal".to_string(),
            NemesisEvent::Refused => "fault-refused".to_string(),
            NemesisEvent::Skipped => "fault-skipped".to_string(),
        }
    }

    /// Whether faults end with it (a `stop-KIND` or the final `heal`): what read-back after
    /// each heal waits for.
    pub fn ends_faults(&self) -> bool {
        matches!(self, NemesisEvent::Stop(_) | NemesisEvent::HealAll)
    }
}

/// The value of a `fault-refused` or `fault-skipped` event: the step of the schedule it
/// concerns, `{"at_ms": AT, "step": "start-KIND" | "heal"}` (`step` a [`NemesisEvent`]'s
/// `f`: the start of a fault, or its heal).
pub fn step_value(at_ms: u64, step: &NemesisEvent) -> serde_json::Value {
    serde_json::json!({"at_ms": at_ms, "step": step.f()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reads_back_as_written() {
        let mut all = vec![
            NemesisEvent::HealAll,
            NemesisEvent::Refused,
            NemesisEvent::Skipped,
        ];
        for k in Kind::ALL {
            all.push(NemesisEvent::start(*k));
            all.push(NemesisEvent::stop(*k));
        }
        for e in all {
            assert_eq!(NemesisEvent::parse(&e.f()), Some(e.clone()), "{e:?}");
        }
        for other in ["start-", "stop-", "read", "fault-other", ""] {
            assert_eq!(NemesisEvent::parse(other), None, "{other:?}");
        }
    }
}
