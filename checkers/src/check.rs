//! One checking entry point, for `faultline check`, `faultline test` and `faultline analyze`.
//!
//! A [`Checker`] is a value: which procedure judges a history and with which options. [`check`]
//! streams a history's events through the reader's validation and the checker, and returns a
//! [`Checked`]: one [`Verdict`], a one-line summary, the typed results document written as
//! results.json (and printed by `--json`), and the ops a timeline should draw.
//!
//! ```
//! use checkers::check::{check, Checker};
//! use checkers::read::{from_reader, Format};
//! use checkers::Verdict;
//! let history = r#"{"index":0,"process":0,"type":"invoke","f":"add","value":1}
//! {"index":1,"process":0,"type":"ok","f":"add","value":1}
//! {"index":2,"process":1,"type":"invoke","f":"read","value":null}
//! {"index":3,"process":1,"type":"ok","f":"read","value":[1]}
//! "#;
//! let reader = from_reader(history.as_bytes(), "h.jsonl", Format::Jsonl).unwrap();
//! let checked = check(&Checker::Set, reader, "h.jsonl", &mut |_| {}).unwrap();
//! assert_eq!(checked.verdict, Verdict::Valid);
//! ```

use crate::error::InputError;
use crate::linear::{check_keys, CheckOptions, KeyOps, OpsBuilder, Report};
use crate::model::catalog::{with_model, ModelError, ModelOptions, ModelVisitor};
use crate::model::Model;
use crate::read::{Located, Validator};
use crate::set_check::{SetChecker, SetReport};
use crate::txn::{Assumptions, Budget, Consistency, TxnBuilder, TxnModel, TxnReport};
use crate::Verdict;
use serde::{Deserialize, Serialize};

/// Which procedure judges a history.
#[derive(Debug, Clone)]
pub enum Checker {
    /// Linearizability of every key's sub-history against a model (`register`,
    /// `cas-register`, ...), as Knossos and Porcupine check it.
    Linearizable {
        /// The model's name, as in `faultline check --model`.
        model: String,
        /// The model's options (initial value, Knossos's nil reads).
        model_options: ModelOptions,
        /// Strategy, limits and cancellation of the search.
        options: CheckOptions,
    },
    /// Jepsen's set checker: acknowledged adds must be in the final read.
    Set,
    /// The transactional checker ([`crate::txn`], after Elle): a list-append or rw-register
    /// history of `f: "txn"` ops against a consistency model.
    Transactional {
        /// The data model of the micro-ops.
        model: TxnModel,
        /// The consistency model the history must satisfy.
        consistency: Consistency,
        /// How long and how far the searches may go before answering unknown.
        budget: Budget,
        /// Elle's assumptions a user states (rw-register; `--assume`).
        assumptions: Assumptions,
    },
}

impl Checker {
    /// A linearizability checker for `model` with default options.
    pub fn linearizable(model: &str) -> Checker {
        Checker::Linearizable {
            model: model.to_string(),
            model_options: ModelOptions::default(),
            options: CheckOptions::default(),
        }
    }

    /// A transactional checker for `model` against `consistency`, with the default budget.
    pub fn transactional(model: TxnModel, consistency: Consistency) -> Checker {
        Checker::Transactional {
            model,
            consistency,
            budget: Budget::default(),
            assumptions: Assumptions::default(),
        }
    }

    /// The checker's name, as written into results.json (`checker`).
    pub fn name(&self) -> &'static str {
        match self {
            Checker::Linearizable { .. } => "linearizable",
            Checker::Set => "set",
            Checker::Transactional { .. } => "transactional",
        }
    }

    /// This checker with the consistency model a run promises: a transactional checker then
    /// checks against `consistency` (when given); other checkers are returned unchanged.
    pub fn with_consistency(mut self, consistency: Option<Consistency>) -> Checker {
        if let (Checker::Transactional { consistency: c, .. }, Some(wanted)) =
            (&mut self, consistency)
        {
            *c = wanted;
        }
        self
    }
}

/// Why a history could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The history is unreadable or breaks the client discipline (exit 254).
    #[error(transparent)]
    Input(#[from] InputError),
    /// No such model, or bad model options (exit 254).
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The details of a results document, by checker.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Details {
    /// The linearizability report (DESIGN.md's `--json` shape).
    Linearizable(Report),
    /// The set checker's report.
    Set(SetReport),
    /// The transactional checker's report (DESIGN.md's `--json` shape for `--model
    /// list-append|rw-register`: `consistency`, `txns`, `anomalies` by type, `not`,
    /// `also_not`).
    Transactional(TxnReport),
}

/// A results document: results.json, and what `--json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// The checker that wrote it (`linearizable`, `set`, `transactional`).
    pub checker: &'static str,
    /// One line for people.
    pub summary: String,
    /// The checker's own report (its `valid` field is the verdict).
    #[serde(flatten)]
    pub details: Details,
}

/// The fields every results document has, for readers that only need the verdict
/// (`faultline serve`'s index, reports).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ResultsHead {
    /// The checker that wrote it.
    #[serde(default)]
    pub checker: Option<String>,
    /// The verdict.
    #[serde(with = "crate::verdict::json")]
    pub valid: Verdict,
    /// One line for people (absent in documents of faultline before 0.1.1).
    #[serde(default)]
    pub summary: Option<String>,
}

/// How a timeline draws an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineOutcome {
    /// Completed ok.
    Ok,
    /// Unknown outcome: drawn to the end of the axis.
    Unknown,
    /// Part of the longest linearizable prefix shown in the counterexample.
    InPrefix,
    /// The op that could not be linearized.
    Failed,
}

/// One op of a failing key, for a timeline.
#[derive(Debug, Clone)]
pub struct TimelineOp {
    /// The key, if the history is keyed.
    pub key: Option<String>,
    /// The client process (one lane each).
    pub process: u64,
    /// Position of the invocation (history order).
    pub start: u64,
    /// Position of the completion; None for unknown outcomes.
    pub end: Option<u64>,
    /// The op as the model shows it.
    pub label: String,
    /// `index` of the invocation.
    pub index: u64,
    /// Colour.
    pub outcome: TimelineOutcome,
}

/// What [`check`] found.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The verdict.
    pub verdict: Verdict,
    /// The results document.
    pub results: Results,
    /// The ops of failing keys (at most 5 keys), for a timeline; empty for checkers without one.
    pub timeline: Vec<TimelineOp>,
    /// Events read.
    pub events: u64,
}

impl Checked {
    /// One line for people.
    pub fn summary(&self) -> &str {
        &self.results.summary
    }
}

/// Checks a history: every event is validated (DESIGN.md's client discipline, positions in
/// errors) and fed to `checker`. `progress` is called with the number of events read, every
/// million events.
pub fn check(
    checker: &Checker,
    events: impl IntoIterator<Item = Result<Located, InputError>>,
    file: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<Checked, CheckError> {
    match checker {
        Checker::Linearizable {
            model,
            model_options,
            options,
        } => {
            let visitor = LinearVisitor {
                events: events.into_iter(),
                file,
                options,
                progress,
            };
            with_model(model, model_options, visitor)?
        }
        Checker::Set => {
            let mut validator = Validator::new(file);
            let mut set = SetChecker::default();
            let mut n = 0u64;
            for located in events {
                let located = located?;
                validator.check(&located)?;
                set.push(&located.event);
                n += 1;
                if n.is_multiple_of(1_000_000) {
                    progress(n);
                }
            }
            validator.finish()?;
            let r = set.finish();
            Ok(Checked {
                verdict: r.valid,
                results: Results {
                    checker: checker.name(),
                    summary: set_summary(&r),
                    details: Details::Set(r),
                },
                timeline: Vec::new(),
                events: n,
            })
        }
        Checker::Transactional {
            model,
            consistency,
            budget,
            assumptions,
        } => {
            let start = std::time::Instant::now();
            // One memory budget for the validator, the builder, the graph and the search.
            let limits = crate::linear::Limits::new(budget.time, budget.memory);
            let mut validator = Validator::new(file);
            validator.limit_memory(&limits);
            let mut builder = TxnBuilder::new(*model, file);
            builder.limit_memory(&limits);
            let mut n = 0u64;
            for located in events {
                let located = located?;
                validator.check(&located)?;
                if validator.exhausted().is_some() {
                    break;
                }
                builder.push(&located)?;
                if builder.exhausted().is_some() {
                    break;
                }
                n += 1;
                if n.is_multiple_of(1_000_000) {
                    progress(n);
                }
            }
            let mut report = match validator.exhausted().or(builder.exhausted()).cloned() {
                Some(why) => crate::txn::unread(*model, *consistency, &why),
                None => {
                    // What the validator held is freed before the check.
                    validator.finish()?;
                    let history = builder.finish()?;
                    crate::txn::check_within(&history, *consistency, *assumptions, budget, &limits)
                }
            };
            report.elapsed_ms = start.elapsed().as_millis() as u64;
            let verdict = report.valid;
            Ok(Checked {
                verdict,
                results: Results {
                    checker: checker.name(),
                    summary: txn_summary(&report),
                    details: Details::Transactional(report),
                },
                timeline: Vec::new(),
                events: n,
            })
        }
    }
}

/// One line about a transactional check: the verdict, the anomalies by type and count, and
/// the weakest models the history violates.
fn txn_summary(r: &TxnReport) -> String {
    let head = match r.valid {
        Verdict::Valid => r.consistency.to_string(),
        Verdict::Invalid => format!("NOT {}", r.consistency),
        Verdict::Unknown => format!(
            "unknown whether {} ({})",
            r.consistency,
            r.unknown_reason.as_deref().unwrap_or("budget exhausted")
        ),
    };
    let anomalies = if r.anomaly_counts.is_empty() {
        "no anomalies".to_string()
    } else {
        r.anomaly_counts
            .iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let not = if r.not.is_empty() {
        String::new()
    } else {
        format!("; not {}", r.not.join(", "))
    };
    format!(
        "{head}: {} {} transactions over {} keys checked in {} ms; {anomalies}{not}",
        r.txns, r.model, r.keys, r.elapsed_ms
    )
}

/// One line about a set check.
fn set_summary(r: &SetReport) -> String {
    format!(
        "set: {} adds attempted, {} acknowledged, {}; {} lost, {} unexpected, {} recovered",
        r.attempted,
        r.acknowledged,
        match r.valid {
            Verdict::Unknown => "no successful final read".to_string(),
            _ => format!("{} in the final read", r.read),
        },
        r.lost.len(),
        r.unexpected.len(),
        r.recovered.len()
    )
}

/// One line about a linearizability check.
fn linear_summary(r: &Report) -> String {
    format!(
        "{}: {} ops over {} keys checked against {} in {} ms; {} key(s) not linearizable, {} undecided",
        match r.valid {
            Verdict::Valid => "linearizable",
            Verdict::Invalid => "NOT linearizable",
            Verdict::Unknown => "unknown",
        },
        r.ops,
        r.keys,
        r.model,
        r.elapsed_ms,
        r.anomalies.len(),
        r.undecided.len()
    )
}

struct LinearVisitor<'a, I> {
    events: I,
    file: &'a str,
    options: &'a CheckOptions,
    progress: &'a mut dyn FnMut(u64),
}

impl<I: Iterator<Item = Result<Located, InputError>>> ModelVisitor for LinearVisitor<'_, I> {
    type Output = Result<Checked, CheckError>;

    fn visit<M: Model>(self, model: &M) -> Self::Output {
        let start = std::time::Instant::now();
        // One memory budget for the validator, the ops builder and the search after them.
        let mut validator = Validator::new(self.file);
        validator.limit_memory(&self.options.limits);
        let mut builder = OpsBuilder::new(model, self.file);
        builder.limit_memory(&self.options.limits);
        let mut n = 0u64;
        for located in self.events {
            let located = located?;
            validator.check(&located)?;
            if validator.exhausted().is_some() {
                break;
            }
            builder.push_owned(
                located.event,
                located.line,
                located.f_column,
                located.value_column,
            )?;
            if builder.exhausted().is_some() {
                break;
            }
            n += 1;
            if n.is_multiple_of(1_000_000) {
                (self.progress)(n);
            }
        }
        let exhausted = validator.exhausted().or(builder.exhausted()).cloned();
        let mut report = match exhausted {
            Some(why) => Report::memory_exhausted_while_building(model.name(), &why),
            None => {
                // What the validator held is freed before the search.
                validator.finish()?;
                let (by_key, _counts) = builder.finish()?;
                let mut report = check_keys(model, &by_key, self.options);
                report.elapsed_ms = start.elapsed().as_millis() as u64;
                let timeline = timeline_ops(model, &by_key, &report);
                return Ok(Checked {
                    verdict: report.valid,
                    results: Results {
                        checker: "linearizable",
                        summary: linear_summary(&report),
                        details: Details::Linearizable(report),
                    },
                    timeline,
                    events: n,
                });
            }
        };
        report.elapsed_ms = start.elapsed().as_millis() as u64;
        Ok(Checked {
            verdict: report.valid,
            results: Results {
                checker: "linearizable",
                summary: linear_summary(&report),
                details: Details::Linearizable(report),
            },
            timeline: Vec::new(),
            events: n,
        })
    }
}

/// The ops of the failing keys (at most 5 keys), for a timeline.
fn timeline_ops<M: Model>(model: &M, by_key: &[KeyOps<M::Op>], report: &Report) -> Vec<TimelineOp> {
    let mut out = Vec::new();
    for anomaly in report.anomalies.iter().take(5) {
        let Some((key, ops)) = by_key.iter().find(|(k, _)| *k == anomaly.key) else {
            continue;
        };
        let cex = anomaly.result.counterexample.as_ref();
        let failed = cex
            .and_then(|c| c.failed_op.as_ref())
            .map(|o| o.invoke_index);
        let prefix: Vec<u64> = cex
            .map(|c| c.prefix_tail.iter().map(|s| s.op.invoke_index).collect())
            .unwrap_or_default();
        for op in ops {
            out.push(TimelineOp {
                key: key.as_ref().map(|k| k.to_string()),
                process: op.process,
                start: op.call,
                end: op.ret,
                label: model.show_op(&op.op),
                index: op.invoke_index,
                outcome: if Some(op.invoke_index) == failed {
                    TimelineOutcome::Failed
                } else if prefix.contains(&op.invoke_index) {
                    TimelineOutcome::InPrefix
                } else if op.ret.is_none() {
                    TimelineOutcome::Unknown
                } else {
                    TimelineOutcome::Ok
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{from_reader, Format};
    use crate::txn::{Budget, Consistency, TxnModel};

    fn run(checker: &Checker, text: &'static str) -> Result<Checked, CheckError> {
        let reader = from_reader(text.as_bytes(), "t.jsonl", Format::Jsonl)?;
        check(checker, reader, "t.jsonl", &mut |_| {})
    }

    const STALE: &str = r#"{"index":0,"process":0,"type":"invoke","f":"write","key":1,"value":1}
{"index":1,"process":0,"type":"ok","f":"write","key":1,"value":1}
{"index":2,"process":1,"type":"invoke","f":"read","key":1,"value":null}
{"index":3,"process":1,"type":"ok","f":"read","key":1,"value":null}
"#;

    #[test]
    fn linearizable_results_carry_checker_summary_and_verdict() {
        let c = run(&Checker::linearizable("register"), STALE).unwrap();
        assert_eq!(c.verdict, Verdict::Invalid);
        assert!(!c.timeline.is_empty());
        let doc = serde_json::to_value(&c.results).unwrap();
        assert_eq!(doc["checker"], "linearizable");
        assert_eq!(doc["valid"], false);
        assert_eq!(doc["model"], "register");
        let head: ResultsHead = serde_json::from_value(doc).unwrap();
        assert_eq!(head.valid, Verdict::Invalid);
        assert!(head.summary.unwrap().starts_with("NOT linearizable"));
    }

    #[test]
    fn set_results_are_typed_too() {
        let c = run(
            &Checker::Set,
            r#"{"index":0,"process":0,"type":"invoke","f":"add","value":1}
{"index":1,"process":0,"type":"ok","f":"add","value":1}
{"index":2,"process":1,"type":"invoke","f":"read","value":null}
{"index":3,"process":1,"type":"ok","f":"read","value":[]}
"#,
        )
        .unwrap();
        assert_eq!(c.verdict, Verdict::Invalid);
        let doc = serde_json::to_value(&c.results).unwrap();
        assert_eq!(doc["checker"], "set");
        assert_eq!(doc["lost"], serde_json::json!([1]));
        assert!(c.summary().contains("1 lost"), "{}", c.summary());
    }

    /// Write skew: T1 reads x and appends to y, T2 reads y and appends to x, concurrently;
    /// a later read sees both appends.
    const WRITE_SKEW: &str = r#"{"index":0,"process":0,"type":"invoke","f":"txn","value":[["r","x",null],["append","y",1]]}
{"index":1,"process":1,"type":"invoke","f":"txn","value":[["r","y",null],["append","x",1]]}
{"index":2,"process":0,"type":"ok","f":"txn","value":[["r","x",[]],["append","y",1]]}
{"index":3,"process":1,"type":"ok","f":"txn","value":[["r","y",[]],["append","x",1]]}
{"index":4,"process":2,"type":"invoke","f":"txn","value":[["r","x",null],["r","y",null]]}
{"index":5,"process":2,"type":"ok","f":"txn","value":[["r","x",[1]],["r","y",[1]]]}
"#;

    #[test]
    fn transactional_results_name_anomalies_and_follow_the_consistency_model() {
        let serializable = Checker::transactional(TxnModel::ListAppend, Consistency::Serializable);
        let c = run(&serializable, WRITE_SKEW).unwrap();
        assert_eq!(c.verdict, Verdict::Invalid);
        let doc = serde_json::to_value(&c.results).unwrap();
        assert_eq!(doc["checker"], "transactional");
        assert_eq!(doc["valid"], false);
        assert_eq!(doc["consistency"], "serializable");
        assert_eq!(doc["txns"], 3);
        assert!(doc["anomalies"]["G2-item"].is_array(), "{doc}");
        assert!(
            c.summary().starts_with("NOT serializable"),
            "{}",
            c.summary()
        );
        assert!(c.summary().contains("G2-item x1"), "{}", c.summary());
        let head: ResultsHead = serde_json::from_value(doc).unwrap();
        assert_eq!(head.valid, Verdict::Invalid);
        // Write skew is what snapshot isolation allows: the same history is valid there.
        let si = serializable.with_consistency(Some(Consistency::SnapshotIsolation));
        assert!(matches!(
            si,
            Checker::Transactional {
                consistency: Consistency::SnapshotIsolation,
                ..
            }
        ));
        let c = run(&si, WRITE_SKEW).unwrap();
        assert_eq!(c.verdict, Verdict::Valid, "{}", c.summary());
        assert!(
            c.summary().starts_with("snapshot-isolation: 3 list-append"),
            "{}",
            c.summary()
        );
        // A linearizability checker has no consistency model to change.
        assert!(matches!(
            Checker::Set.with_consistency(Some(Consistency::Serializable)),
            Checker::Set
        ));
        // Non-transactional ops are bad input with a position.
        let e = run(&si, STALE).unwrap_err().to_string();
        assert!(
            e.contains("t.jsonl:1:") && e.contains("expected \"txn\""),
            "{e}"
        );
    }

    /// A generated transactional history as JSONL.
    fn generated(model: TxnModel, txns: u64) -> String {
        use crate::txn::generate::{generate, TxnGenOptions};
        let mut out = Vec::new();
        let o = TxnGenOptions {
            model,
            txns,
            keys: 50,
            seed: 7,
            ..TxnGenOptions::default()
        };
        generate(&o, |e| {
            crate::history::write_jsonl(&mut out, &e).expect("write to a vector");
        });
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    fn check_text(checker: &Checker, text: &str) -> Checked {
        let reader = from_reader(
            std::io::Cursor::new(text.to_string()),
            "t.jsonl",
            Format::Jsonl,
        )
        .expect("reader");
        check(checker, reader, "t.jsonl", &mut |_| {}).expect("checked")
    }

    fn within(model: TxnModel, consistency: Consistency, memory: usize) -> Checker {
        Checker::Transactional {
            model,
            consistency,
            budget: Budget {
                memory,
                ..Budget::default()
            },
            assumptions: crate::txn::Assumptions::default(),
        }
    }

    /// `--memory-limit` holds for transactional models: reading the history, the inferred
    /// graph and the search all draw on it, and past it the verdict is unknown (never valid)
    /// with a reason naming the limit; within it the verdict is unchanged. Before: the
    /// transactional checker had no memory budget at all (a 300k-transaction history took
    /// 11.7 GB under a 64 MiB limit).
    #[test]
    fn the_memory_limit_holds_for_transactional_models() {
        for (model, consistency, txns) in [
            (TxnModel::ListAppend, Consistency::StrictSerializable, 4000),
            (TxnModel::ListAppend, Consistency::SnapshotIsolation, 4000),
            (TxnModel::RwRegister, Consistency::Serializable, 60),
        ] {
            let text = generated(model, txns);
            let roomy = check_text(&within(model, consistency, 1 << 30), &text);
            assert_eq!(roomy.verdict, Verdict::Valid, "{}", roomy.summary());
            // Reading alone does not fit.
            let tiny = check_text(&within(model, consistency, 16 << 10), &text);
            assert_eq!(tiny.verdict, Verdict::Unknown, "{}", tiny.summary());
            assert!(
                tiny.summary()
                    .contains("memory budget of 16384 bytes used up while reading"),
                "{}",
                tiny.summary()
            );
            // Reading fits, the graph or the search does not: find such a limit by halving
            // from the roomy one; every verdict on the way is valid or unknown.
            let mut limit = 1usize << 30;
            let mut after_reading = None;
            while limit > 16 << 10 {
                let c = check_text(&within(model, consistency, limit), &text);
                assert_ne!(c.verdict, Verdict::Invalid, "{}", c.summary());
                if c.verdict == Verdict::Unknown && !c.summary().contains("while reading") {
                    after_reading = Some(c);
                }
                limit /= 2;
            }
            let c = after_reading.expect("a limit that reading fits and the check does not");
            let doc = serde_json::to_value(&c.results).expect("json");
            assert_eq!(doc["valid"], "unknown", "{doc}");
            assert!(
                doc["unknown_reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("--memory-limit covers")),
                "{doc}"
            );
        }
    }

    #[test]
    fn bad_input_and_unknown_models_are_errors() {
        assert!(matches!(
            run(&Checker::linearizable("no-such-model"), STALE),
            Err(CheckError::Model(_))
        ));
        assert!(matches!(
            run(
                &Checker::Set,
                r#"{"index":0,"process":0,"type":"ok","f":"add","value":1}
"#
            ),
            Err(CheckError::Input(_))
        ));
    }
}
