//! History events as DESIGN.md defines them (one JSON object per line of `history.jsonl`),
//! and the writer for that format.
//!
//! ```
//! use checkers::history::{Event, EventKind, Process, Value};
//! let ev = Event::client(0, 0, EventKind::Invoke, "write", Value::Int(3));
//! let mut out = Vec::new();
//! checkers::history::write_jsonl(&mut out, &ev).unwrap();
//! assert_eq!(
//!     String::from_utf8(out).unwrap(),
//!     "{\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":3}\n"
//! );
//! ```

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::fmt;
use std::io::{self, Write};

/// A value carried by an event: the argument of an invocation or the result of a completion.
///
/// This is the untyped form shared by all readers; each model turns it into its own typed
/// operation. JSON objects keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// JSON `null`, EDN `nil`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A floating point number (only in values that checkers ignore, such as nemesis events).
    Float(f64),
    /// A string (EDN keywords are read as strings without their leading colon).
    Str(String),
    /// A JSON array or an EDN vector, list or set.
    List(Vec<Value>),
    /// A JSON object or an EDN map; keys are rendered as strings.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Converts a parsed JSON value.
    pub fn from_json(v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::Str(s),
            serde_json::Value::Array(a) => {
                Value::List(a.into_iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(o) => Value::Map(
                o.into_iter()
                    .map(|(k, v)| (k, Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(s) => f.write_str(&s),
            Err(_) => f.write_str("<unprintable>"),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(x) => s.serialize_f64(*x),
            Value::Str(v) => s.serialize_str(v),
            Value::List(l) => {
                let mut seq = s.serialize_seq(Some(l.len()))?;
                for v in l {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// The key of an independent object (`key` field): each key is checked on its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An integer key.
    Int(i64),
    /// A string key.
    Str(String),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(i) => write!(f, "{i}"),
            Key::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Key::Int(i) => s.serialize_i64(*i),
            Key::Str(v) => s.serialize_str(v),
        }
    }
}

/// Who performed an event: a client process, or a named actor such as `"nemesis"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Process {
    /// A client process; it has at most one op in flight and is retired after `info`.
    Client(u64),
    /// A non-client actor (`"nemesis"`); checkers ignore its events.
    Named(String),
}

impl Process {
    /// The nemesis process.
    pub fn nemesis() -> Process {
        Process::Named("nemesis".to_string())
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Named(n) => f.write_str(n),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Named(n) => s.serialize_str(n),
        }
    }
}

/// The `type` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The op was invoked.
    Invoke,
    /// The op took effect; `value` is its result.
    Ok,
    /// The op did not take effect.
    Fail,
    /// Unknown outcome: the op may take effect at any time after its invoke, or never.
    Info,
}

impl EventKind {
    /// Parses `invoke`, `ok`, `fail` or `info`.
    pub fn parse(s: &str) -> Option<EventKind> {
        match s {
            "invoke" => Some(EventKind::Invoke),
            "ok" => Some(EventKind::Ok),
            "fail" => Some(EventKind::Fail),
            "info" => Some(EventKind::Info),
            _ => None,
        }
    }

    /// The name used in histories.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Invoke => "invoke",
            EventKind::Ok => "ok",
            EventKind::Fail => "fail",
            EventKind::Info => "info",
        }
    }

    /// True for `ok`, `fail` and `info`.
    pub fn is_completion(self) -> bool {
        self != EventKind::Invoke
    }
}

/// One line of a history: an invocation or a completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Position in the history: 0, 1, 2, ...
    pub index: u64,
    /// Nanoseconds since the test started, when known (imported histories may lack it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    /// Who performed it.
    pub process: Process,
    /// Invoke or completion.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The operation's function, e.g. `read`, `write`, `cas`.
    pub f: String,
    /// The independent object it acts on, if the history is keyed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// Argument (on invoke) or result (on ok).
    pub value: Value,
    /// Why an op failed or is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The node that served it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Event {
    /// A client event with no time, key, error or node.
    pub fn client(index: u64, process: u64, kind: EventKind, f: &str, value: Value) -> Event {
        Event {
            index,
            time: None,
            process: Process::Client(process),
            kind,
            f: f.to_string(),
            key: None,
            value,
            error: None,
            node: None,
        }
    }
}

/// Writes one event as a `history.jsonl` line (with its trailing newline).
///
/// The caller decides when to flush; the harness flushes after every line so that a killed
/// controller leaves a readable prefix.
pub fn write_jsonl<W: Write>(out: &mut W, event: &Event) -> io::Result<()> {
    serde_json::to_writer(&mut *out, event).map_err(io::Error::other)?;
    out.write_all(b"\n")
}
