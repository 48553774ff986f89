//! faultline's `history.jsonl`: one JSON object per line (DESIGN.md).

use super::{column_of, Located};
use crate::error::InputError;
use crate::history::{Event, EventKind, Key, Process, Value};
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Deserialize)]
#[serde(untagged)]
enum RawProcess<'a> {
    Int(u64),
    #[serde(borrow)]
    Name(Cow<'a, str>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawKey {
    Int(i64),
    Str(String),
}

/// One line. Unknown fields are refused: a typo such as `"proccess"` would otherwise silently
/// drop information the checker relies on.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent<'a> {
    index: u64,
    time: Option<u64>,
    #[serde(borrow)]
    process: RawProcess<'a>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    f: Cow<'a, str>,
    key: Option<RawKey>,
    #[serde(default)]
    value: serde_json::Value,
    error: Option<String>,
    node: Option<String>,
}

/// Parses one line of a JSONL history.
pub(crate) fn parse_line(text: &str, file: &str, line: u64) -> Result<Located, InputError> {
    let raw: RawEvent = serde_json::from_str(text).map_err(|e| {
        let column = if e.column() == 0 { 1 } else { e.column() as u64 };
        let msg = e.to_string();
        // serde_json appends " at line L column C": the location is ours to give.
        let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m).to_string();
        InputError::at(file, line, column, format!("{msg} (expected a history event: {{\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}})"))
    })?;
    let kind = EventKind::parse(&raw.kind).ok_or_else(|| {
        InputError::at(
            file,
            line,
            column_of(text, "\"type\""),
            format!(
                "unknown type {:?} (expected invoke, ok, fail or info)",
                raw.kind
            ),
        )
    })?;
    let process = match raw.process {
        RawProcess::Int(p) => Process::Client(p),
        RawProcess::Name(n) => Process::Named(n.into_owned()),
    };
    Ok(Located {
        line,
        f_column: column_of(text, "\"f\""),
        value_column: column_of(text, "\"value\""),
        event: Event {
            index: raw.index,
            time: raw.time,
            process,
            kind,
            f: raw.f.into_owned(),
            key: raw.key.map(|k| match k {
                RawKey::Int(i) => Key::Int(i),
                RawKey::Str(s) => Key::Str(s),
            }),
            value: Value::from_json(raw.value),
            error: raw.error,
            node: raw.node,
        },
    })
}
