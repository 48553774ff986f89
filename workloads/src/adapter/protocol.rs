//! The adapter protocol's messages and its table of error codes (docs/adapter-protocol.md).
//!
//! Every message is one JSON object on one line. faultline writes an `init` message, then one
//! `invoke` at a time; the adapter answers `init_ok`, then one `ok` or `error` per invoke,
//! carrying the invoke's `id`.

use crate::op::{txn_completion, MicroOp, Op, Outcome, ReadValue};
use checkers::history::Value;
use serde::Deserialize;

/// The protocol's version, sent in `init`.
pub const VERSION: u32 = 1;

/// One error code of the table: its number, its name, whether it is definite (the operation
/// certainly did not take effect: `fail`) or not (it may have: `info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    /// The number an adapter sends as `code`.
    pub code: i64,
    /// Its name (an adapter may send the name instead of the number).
    pub name: &'static str,
    /// Whether the operation certainly did not take effect.
    pub definite: bool,
    /// What it means.
    pub meaning: &'static str,
}

/// The error codes (Maelstrom's numbers). Codes not in the table are indefinite.
pub const ERROR_CODES: &[ErrorCode] = &[
    ErrorCode {
        code: 0,
        name: "timeout",
        definite: false,
        meaning: "the database did not answer in time; the operation may still take effect",
    },
    ErrorCode {
        code: 1,
        name: "node-not-found",
        definite: true,
        meaning: "the node could not be reached (connection refused): the request never left",
    },
    ErrorCode {
        code: 10,
        name: "not-supported",
        definite: true,
        meaning: "the adapter does not implement this operation",
    },
    ErrorCode {
        code: 11,
        name: "temporarily-unavailable",
        definite: true,
        meaning: "the database refused the request without acting on it (no leader, read-only, ...)",
    },
    ErrorCode {
        code: 12,
        name: "malformed-request",
        definite: true,
        meaning: "the adapter could not understand the request",
    },
    ErrorCode {
        code: 13,
        name: "crash",
        definite: false,
        meaning: "something went wrong after the request may have reached the database",
    },
    ErrorCode {
        code: 14,
        name: "abort",
        definite: true,
        meaning: "the database aborted the operation (a transaction rolled back)",
    },
    ErrorCode {
        code: 20,
        name: "key-does-not-exist",
        definite: true,
        meaning: "the key does not exist (for a cas on a key never written)",
    },
    ErrorCode {
        code: 21,
        name: "key-already-exists",
        definite: true,
        meaning: "the key already exists (for a create)",
    },
    ErrorCode {
        code: 22,
        name: "precondition-failed",
        definite: true,
        meaning: "the database evaluated the condition and wrote nothing (a cas whose expected value differs)",
    },
    ErrorCode {
        code: 30,
        name: "txn-conflict",
        definite: true,
        meaning: "the transaction was refused because of a conflict and did not commit",
    },
];

/// The table entry for a code given as a number or as a name.
pub fn error_code(code: &serde_json::Value) -> Option<&'static ErrorCode> {
    match code {
        serde_json::Value::Number(n) => n
            .as_i64()
            .and_then(|c| ERROR_CODES.iter().find(|e| e.code == c)),
        serde_json::Value::String(s) => ERROR_CODES.iter().find(|e| e.name == s),
        _ => None,
    }
}

/// The `invoke` line for `op` with `id` (without its newline).
pub fn invoke_line(id: u64, op: &Op) -> String {
    let json = |v: &dyn erased::Ser| v.json();
    let f = serde_json::Value::from(op.f()).to_string();
    let value = json(&op.value());
    match op.key() {
        Some(k) => format!(
            r#"{{"type":"invoke","id":{id},"f":{f},"key":{},"value":{value}}}"#,
            json(k)
        ),
        None => format!(r#"{{"type":"invoke","id":{id},"f":{f},"value":{value}}}"#),
    }
}

/// JSON text of history values and keys (both serialize infallibly).
mod erased {
    pub trait Ser {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|_| "null".into())
        }
    }
}

/// A line an adapter wrote, as read.
#[derive(Debug, Deserialize)]
pub struct ReplyLine {
    /// `init_ok`, `ok` or `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The invoke's id (absent on `init_ok`).
    #[serde(default)]
    pub id: Option<u64>,
    /// The result of an `ok`.
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// The code of an `error` (a number, or a name from the table).
    #[serde(default)]
    pub code: Option<serde_json::Value>,
    /// Why, in words.
    #[serde(default)]
    pub text: Option<String>,
}

/// What a transaction's reads must be: lists (list-append), registers (rw-register), or
/// either when neither the workload nor the transaction says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnReads {
    /// list-append: a list of integers (or `null`, never appended to).
    Lists,
    /// rw-register: an integer or `null`.
    Registers,
    /// Unknown: either.
    Either,
}

impl TxnReads {
    /// The shape of the reads of `workload`'s transactions (by its name), else of `mops`
    /// (appends make lists, writes registers).
    pub fn of(workload: Option<&str>, mops: &[MicroOp]) -> TxnReads {
        match workload {
            Some("list-append") => return TxnReads::Lists,
            Some("rw-register") => return TxnReads::Registers,
            _ => {}
        }
        if mops.iter().any(|m| matches!(m, MicroOp::Append { .. })) {
            TxnReads::Lists
        } else if mops.iter().any(|m| matches!(m, MicroOp::Write { .. })) {
            TxnReads::Registers
        } else {
            TxnReads::Either
        }
    }
}

/// Turns an adapter's reply to `op` into its outcome: `ok` with the result (checked against
/// what the op can return), `error` with a definite code `fail`, anything else `info`.
/// A transaction's reads take the shape its own micro-ops imply ([`outcome_for`] names the
/// workload).
pub fn outcome(op: &Op, reply: ReplyLine) -> Outcome {
    outcome_for(None, op, reply)
}

/// [`outcome`] for an op of `workload` (the name the adapter's `init` carries), which fixes
/// the shape of a transaction's reads.
pub fn outcome_for(workload: Option<&str>, op: &Op, reply: ReplyLine) -> Outcome {
    let invoked = op.value();
    match reply.kind.as_str() {
        "ok" => ok_outcome(workload, op, reply.value),
        "error" => {
            let text = reply.text.unwrap_or_default();
            let code = reply.code.unwrap_or(serde_json::Value::Null);
            match error_code(&code) {
                Some(e) if e.definite => {
                    Outcome::fail(invoked, format!("{} {}: {text}", e.code, e.name))
                }
                Some(e) => Outcome::info(invoked, format!("{} {}: {text}", e.code, e.name)),
                None => Outcome::info(invoked, format!("unknown error code {code}: {text}")),
            }
        }
        other => Outcome::info(
            invoked,
            format!("adapter replied with type {other:?} (expected ok or error)"),
        ),
    }
}

/// The `f`s of other workloads' ops whose `ok` value is the invoke's (DESIGN.md's models:
/// counter and set `add`, queue `enqueue`, kv `put` and `append`, register `write`).
const ECHOING: &[&str] = &["write", "cas", "add", "enqueue", "put", "append"];

/// An `ok` reply's outcome: reads take the reply's value (which must be of the op's shape),
/// writes, cas and adds keep the invoke's value (the reply may carry none, `null`, or the
/// invoke's value; anything else is `info`), other ops take the reply's value when there is
/// one.
fn ok_outcome(workload: Option<&str>, op: &Op, value: Option<serde_json::Value>) -> Outcome {
    let value = value.map(Value::from_json);
    match op {
        Op::Read { .. } => match value {
            None | Some(Value::Null) => Outcome::ok(Value::Null),
            Some(v @ Value::Int(_)) => Outcome::ok(v),
            Some(v) => Outcome::info(
                Value::Null,
                format!("adapter read {v}: expected an integer or null"),
            ),
        },
        Op::ReadSet => read_set(value),
        Op::Write { .. } | Op::Cas { .. } | Op::Add { .. } => echoed(op, value),
        Op::Custom { f, .. } if ECHOING.contains(&f.as_str()) => echoed(op, value),
        Op::Txn(mops) => match txn_reads(mops, value.as_ref(), TxnReads::of(workload, mops)) {
            Ok(reads) => Outcome::ok(txn_completion(mops, &reads)),
            Err(why) => Outcome::info(op.value(), format!("adapter's txn reply: {why}")),
        },
        _ => Outcome::ok(value.unwrap_or_else(|| op.value())),
    }
}

/// A set read: a list of integers (sorted here), or nothing (empty).
fn read_set(value: Option<Value>) -> Outcome {
    let items = match &value {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::List(items)) => items.iter().map(Value::as_int).collect(),
        Some(_) => None,
    };
    match items {
        Some(mut items) => {
            items.sort_unstable();
            Outcome::ok(Value::List(items.into_iter().map(Value::Int).collect()))
        }
        None => Outcome::info(
            Value::Null,
            format!(
                "adapter read {}: expected a list of integers",
                value.unwrap_or(Value::Null)
            ),
        ),
    }
}

/// The `ok` of an op whose result is its invoke's value: the reply carries nothing, `null` or
/// that value; a different value means the adapter did something else (`info`).
fn echoed(op: &Op, value: Option<Value>) -> Outcome {
    let invoked = op.value();
    match value {
        None | Some(Value::Null) => Outcome::ok(invoked),
        Some(v) if v == invoked => Outcome::ok(invoked),
        Some(v) => Outcome::info(
            invoked.clone(),
            format!(
                "adapter's ok for {} {invoked} carried the value {v}: expected none or {invoked}",
                op.f()
            ),
        ),
    }
}

/// What each read micro-op of a committed transaction saw, from the adapter's `ok` value: the
/// invoke's micro-ops in the same order, appends and writes unchanged, each read filled in with
/// a list of integers (list-append) or an integer or null (rw-register), as `shape` says.
/// Anything else is an error naming the micro-op, and the transaction's outcome is then
/// unknown.
fn txn_reads(
    mops: &[MicroOp],
    value: Option<&Value>,
    shape: TxnReads,
) -> Result<Vec<Option<ReadValue>>, String> {
    let Some(Value::List(got)) = value else {
        return Err(format!(
            "expected the {} micro-ops with reads filled in, got {}",
            mops.len(),
            value.cloned().unwrap_or(Value::Null)
        ));
    };
    if got.len() != mops.len() {
        return Err(format!(
            "{} micro-ops for the {} invoked",
            got.len(),
            mops.len()
        ));
    }
    mops.iter()
        .zip(got)
        .enumerate()
        .map(|(i, (mop, g))| {
            let Value::List(parts) = g else {
                return Err(format!("micro-op {i} is {g}, expected [f, key, value]"));
            };
            let invoked = mop.to_value(Value::Null);
            let Value::List(want) = &invoked else {
                return Err(format!("micro-op {i}: not a list"));
            };
            let same_head = parts.len() == 3 && parts[..2] == want[..2];
            match mop {
                MicroOp::Read { .. } if same_head => read_value(i, &parts[2], shape).map(Some),
                MicroOp::Append { .. } | MicroOp::Write { .. } if parts[..] == want[..] => Ok(None),
                _ => Err(format!("micro-op {i} is {g}, but {invoked} was invoked")),
            }
        })
        .collect()
}

/// What read micro-op `i` saw, if it is of `shape`.
fn read_value(i: usize, got: &Value, shape: TxnReads) -> Result<ReadValue, String> {
    let list = |xs: &[Value]| {
        xs.iter()
            .map(Value::as_int)
            .collect::<Option<Vec<i64>>>()
            .map(ReadValue::List)
    };
    match (got, shape) {
        (Value::Null, _) => Ok(ReadValue::Register(None)),
        (Value::Int(x), TxnReads::Registers | TxnReads::Either) => {
            Ok(ReadValue::Register(Some(*x)))
        }
        (Value::List(xs), TxnReads::Lists | TxnReads::Either) => {
            list(xs).ok_or_else(|| format!("micro-op {i} read {got}: expected a list of integers"))
        }
        (_, TxnReads::Lists) => Err(format!(
            "micro-op {i} read {got}: expected a list of integers (list-append)"
        )),
        (_, TxnReads::Registers) => Err(format!(
            "micro-op {i} read {got}: expected an integer or null (rw-register)"
        )),
        (_, TxnReads::Either) => Err(format!(
            "micro-op {i} read {got}: expected a list of integers, an integer or null"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::history::{EventKind, Key};

    fn reply(line: &str) -> ReplyLine {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn txn_replies_fill_reads_and_anything_else_is_unknown() {
        let txn = Op::Txn(vec![
            MicroOp::Append {
                key: Key::Str("x".into()),
                value: 4,
            },
            MicroOp::Read {
                key: Key::Str("y".into()),
            },
        ]);
        assert_eq!(
            invoke_line(3, &txn),
            r#"{"type":"invoke","id":3,"f":"txn","value":[["append","x",4],["r","y",null]]}"#
        );
        let ok = outcome(
            &txn,
            reply(r#"{"type":"ok","id":3,"value":[["append","x",4],["r","y",[1,2]]]}"#),
        );
        assert_eq!(ok.kind, EventKind::Ok);
        assert_eq!(
            serde_json::to_string(&ok.value).unwrap(),
            r#"[["append","x",4],["r","y",[1,2]]]"#
        );
        for bad in [
            r#"{"type":"ok","id":3}"#,
            r#"{"type":"ok","id":3,"value":[["append","x",4]]}"#,
            r#"{"type":"ok","id":3,"value":[["append","x",5],["r","y",[1]]]}"#,
            r#"{"type":"ok","id":3,"value":[["append","x",4],["r","z",[1]]]}"#,
            r#"{"type":"ok","id":3,"value":[["append","x",4],["r","y",["a"]]]}"#,
            r#"{"type":"ok","id":3,"value":[["append","x",4],["r","y","s"]]}"#,
            r#"{"type":"ok","id":3,"value":[["append","x",4],"r"]}"#,
        ] {
            let o = outcome(&txn, reply(bad));
            assert_eq!(o.kind, EventKind::Info, "{bad}");
            assert_eq!(o.value, txn.value(), "{bad}");
            assert!(
                o.error.as_deref().unwrap_or("").contains("txn reply"),
                "{o:?}"
            );
        }
        // A register read: an integer or null.
        let rw = Op::Txn(vec![MicroOp::Read { key: Key::Int(1) }]);
        let o = outcome(&rw, reply(r#"{"type":"ok","id":1,"value":[["r",1,7]]}"#));
        assert_eq!(o.kind, EventKind::Ok);
        assert_eq!(serde_json::to_string(&o.value).unwrap(), r#"[["r",1,7]]"#);
        // A conflict is definite: the transaction did not commit.
        let o = outcome(
            &txn,
            reply(r#"{"type":"error","id":3,"code":30,"text":"conflict"}"#),
        );
        assert_eq!(o.kind, EventKind::Fail);
    }

    #[test]
    fn writes_and_adds_whose_ok_carries_another_value_are_unknown() {
        let kv_put = Op::Custom {
            f: "put".into(),
            key: Some(Key::Str("k".into())),
            value: Value::Str("a".into()),
            read_only: false,
        };
        let cases = [
            (
                Op::Write {
                    key: Key::Int(1),
                    value: 3,
                },
                r#""done""#,
            ),
            (Op::Add { value: 5 }, "6"),
            (
                Op::Cas {
                    key: Key::Int(1),
                    old: 1,
                    new: 2,
                },
                "[1,3]",
            ),
            (
                Op::Custom {
                    f: "add".into(),
                    key: None,
                    value: Value::Int(2),
                    read_only: false,
                },
                "7",
            ),
            (kv_put.clone(), r#""b""#),
        ];
        for (op, got) in cases {
            let line = format!(r#"{{"type":"ok","id":1,"value":{got}}}"#);
            let o = outcome(&op, reply(&line));
            assert_eq!(o.kind, EventKind::Info, "{op:?} {got}");
            assert_eq!(o.value, op.value());
            let e = o.error.unwrap_or_default();
            assert!(
                e.contains(&format!("carried the value {got}")) && e.contains("expected none"),
                "{e}"
            );
        }
        assert_eq!(
            outcome(&kv_put, reply(r#"{"type":"ok","id":1,"value":"a"}"#)),
            Outcome::ok(Value::Str("a".into()))
        );
        // Another workload's op that is not a write takes the adapter's result.
        let get = Op::Custom {
            f: "get".into(),
            key: Some(Key::Str("k".into())),
            value: Value::Null,
            read_only: true,
        };
        assert_eq!(
            outcome(&get, reply(r#"{"type":"ok","id":1,"value":"ab"}"#)),
            Outcome::ok(Value::Str("ab".into()))
        );
    }

    #[test]
    fn txn_reads_must_have_the_workloads_shape() {
        let read = |k| MicroOp::Read { key: Key::Int(k) };
        let la = Op::Txn(vec![
            MicroOp::Append {
                key: Key::Int(1),
                value: 4,
            },
            read(2),
        ]);
        let rw = Op::Txn(vec![
            MicroOp::Write {
                key: Key::Int(1),
                value: 4,
            },
            read(2),
        ]);
        let only_reads = Op::Txn(vec![read(2)]);
        let cases = [
            // An integer read in list-append, inferred from the append or named.
            (None, &la, r#"[["append",1,4],["r",2,7]]"#, "list-append"),
            (
                Some("list-append"),
                &only_reads,
                r#"[["r",2,7]]"#,
                "list-append",
            ),
            // A list read in rw-register.
            (None, &rw, r#"[["w",1,4],["r",2,[1,2]]]"#, "rw-register"),
            (
                Some("rw-register"),
                &only_reads,
                r#"[["r",2,[1,2]]]"#,
                "rw-register",
            ),
        ];
        for (workload, op, got, model) in cases {
            let line = format!(r#"{{"type":"ok","id":1,"value":{got}}}"#);
            let o = outcome_for(workload, op, reply(&line));
            assert_eq!(o.kind, EventKind::Info, "{workload:?} {got}");
            let e = o.error.unwrap_or_default();
            assert!(e.contains("micro-op") && e.contains(model), "{e}");
        }
        for (workload, op, got) in [
            (Some("list-append"), &only_reads, r#"[["r",2,[1,2]]]"#),
            (Some("list-append"), &only_reads, r#"[["r",2,null]]"#),
            (Some("rw-register"), &only_reads, r#"[["r",2,7]]"#),
            (None, &only_reads, r#"[["r",2,7]]"#),
            (None, &only_reads, r#"[["r",2,[7]]]"#),
        ] {
            let line = format!(r#"{{"type":"ok","id":1,"value":{got}}}"#);
            let o = outcome_for(workload, op, reply(&line));
            assert_eq!(o.kind, EventKind::Ok, "{workload:?} {got}");
            assert_eq!(serde_json::to_string(&o.value).unwrap(), got);
        }
    }

    #[test]
    fn requests_carry_the_history_fields() {
        let op = Op::Cas {
            key: Key::Str("k1".into()),
            old: 1,
            new: 2,
        };
        assert_eq!(
            invoke_line(7, &op),
            r#"{"type":"invoke","id":7,"f":"cas","key":"k1","value":[1,2]}"#
        );
        assert_eq!(
            invoke_line(8, &Op::ReadSet),
            r#"{"type":"invoke","id":8,"f":"read","value":null}"#
        );
    }

    #[test]
    fn definite_codes_fail_and_the_rest_is_info() {
        let w = Op::Write {
            key: Key::Int(1),
            value: 3,
        };
        let o = outcome(
            &w,
            reply(r#"{"type":"error","id":1,"code":22,"text":"no"}"#),
        );
        assert_eq!(o.kind, EventKind::Fail);
        assert_eq!(o.error.as_deref(), Some("22 precondition-failed: no"));
        let by_name = outcome(&w, reply(r#"{"type":"error","id":1,"code":"abort"}"#));
        assert_eq!(by_name.kind, EventKind::Fail);
        for indefinite in [
            r#"{"type":"error","id":1,"code":0}"#,
            r#"{"type":"error","id":1,"code":13}"#,
            r#"{"type":"error","id":1,"code":999}"#,
            r#"{"type":"error","id":1,"code":"whatever"}"#,
            r#"{"type":"error","id":1}"#,
            r#"{"type":"maybe","id":1}"#,
        ] {
            assert_eq!(
                outcome(&w, reply(indefinite)).kind,
                EventKind::Info,
                "{indefinite}"
            );
        }
        // Every definite code in the table fails, every other one is info.
        for e in ERROR_CODES {
            let line = format!(r#"{{"type":"error","id":1,"code":{}}}"#, e.code);
            let want = if e.definite {
                EventKind::Fail
            } else {
                EventKind::Info
            };
            assert_eq!(outcome(&w, reply(&line)).kind, want, "{}", e.name);
        }
    }

    #[test]
    fn ok_values_follow_the_history_rules() {
        let r = Op::Read { key: Key::Int(1) };
        assert_eq!(
            outcome(&r, reply(r#"{"type":"ok","id":1,"value":5}"#)),
            Outcome::ok(Value::Int(5))
        );
        assert_eq!(
            outcome(&r, reply(r#"{"type":"ok","id":1}"#)),
            Outcome::ok(Value::Null)
        );
        assert_eq!(
            outcome(&r, reply(r#"{"type":"ok","id":1,"value":"5"}"#)).kind,
            EventKind::Info
        );
        // A write's ok keeps the invoke's value: the reply carries none, null or the same.
        let w = Op::Write {
            key: Key::Int(1),
            value: 3,
        };
        for same in [
            r#"{"type":"ok","id":1}"#,
            r#"{"type":"ok","id":1,"value":null}"#,
            r#"{"type":"ok","id":1,"value":3}"#,
        ] {
            assert_eq!(
                outcome(&w, reply(same)),
                Outcome::ok(Value::Int(3)),
                "{same}"
            );
        }
        assert_eq!(
            outcome(
                &Op::ReadSet,
                reply(r#"{"type":"ok","id":1,"value":[3,1,2]}"#)
            ),
            Outcome::ok(Value::List(vec![
                Value::Int(1),
                Value::Int(2),
                Value::Int(3)
            ]))
        );
        assert_eq!(
            outcome(
                &Op::ReadSet,
                reply(r#"{"type":"ok","id":1,"value":[1,"x"]}"#)
            )
            .kind,
            EventKind::Info
        );
    }
}
