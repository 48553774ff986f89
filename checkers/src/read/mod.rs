//! Readers for history files: faultline JSONL, Jepsen EDN and Jepsen text logs.
//!
//! Readers stream: they hold one line at a time, so a history of tens of millions of events
//! reads in constant memory. Every error names the file, line and column and says what was
//! expected. [`Validator`] checks the client discipline of DESIGN.md on the same stream.
//!
//! ```
//! use checkers::read::{from_reader, Format};
//! let text = "{\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n";
//! let events: Vec<_> = from_reader(text.as_bytes(), "h.jsonl", Format::Auto).unwrap().collect();
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].as_ref().unwrap().event.f, "read");
//! ```

pub mod edn;
mod jepsen_log;
mod jsonl;
mod validate;

pub use validate::Validator;

use crate::error::InputError;
use crate::history::{Event, EventKind, Key, Process, Value};
use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::str::FromStr;

/// A history file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Detect from the first non-blank content.
    Auto,
    /// faultline's `history.jsonl`.
    Jsonl,
    /// Jepsen's `history.edn` (one map per line, or one vector of maps).
    Edn,
    /// Jepsen's text log (`INFO jepsen.util - 3 :invoke :read nil`).
    JepsenLog,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "auto" => Ok(Format::Auto),
            "jsonl" => Ok(Format::Jsonl),
            "edn" => Ok(Format::Edn),
            "jepsen-log" => Ok(Format::JepsenLog),
            other => Err(format!(
                "unknown format {other:?} (expected auto, jsonl, edn or jepsen-log)"
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::JepsenLog => "jepsen-log",
        })
    }
}

/// An event and where it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// 1-based line.
    pub line: u64,
    /// 1-based column of the `f` field (1 if unknown).
    pub f_column: u64,
    /// 1-based column of the `value` field (1 if unknown).
    pub value_column: u64,
    /// The event.
    pub event: Event,
}

/// Guesses a format from the start of a file.
pub fn detect(start: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(start);
    if text.lines().any(|l| l.contains("jepsen.util")) {
        return Some(Format::JepsenLog);
    }
    let first = text.trim_start();
    if first.starts_with("{\"") || first.starts_with("{ \"") {
        Some(Format::Jsonl)
    } else if first.starts_with("{:")
        || first.starts_with(['[', '(', '#', ';'])
        || first.starts_with("{ :")
    {
        Some(Format::Edn)
    } else {
        None
    }
}

/// The 1-based column (in characters) where `needle` starts in `line`, or 1.
pub(crate) fn column_of(line: &str, needle: &str) -> u64 {
    line.find(needle)
        .map_or(1, |b| line[..b].chars().count() as u64 + 1)
}

/// Builds an event from Jepsen-style parts (process, type, f, value). Errors say which part
/// (0, 1 or 2) was wrong.
pub(crate) fn event_from_parts(
    process: Value,
    kind: Value,
    f: Value,
    value: Value,
    index: u64,
) -> Result<Event, (usize, String)> {
    let process = match process {
        Value::Int(p) if p >= 0 => Process::Client(p as u64),
        Value::Str(s) => Process::Named(s),
        other => {
            return Err((
                0,
                format!("expected a process (an integer or :nemesis), found {other}"),
            ))
        }
    };
    let kind = match &kind {
        Value::Str(s) => EventKind::parse(s),
        _ => None,
    }
    .ok_or_else(|| {
        (
            1,
            format!("expected a type (:invoke, :ok, :fail or :info), found {kind}"),
        )
    })?;
    let f = match f {
        Value::Str(s) => s,
        Value::Int(i) => i.to_string(),
        other => {
            return Err((
                2,
                format!("expected a function such as :read, found {other}"),
            ))
        }
    };
    Ok(Event {
        index,
        time: None,
        process,
        kind,
        f,
        key: None,
        value,
        error: None,
        node: None,
    })
}

/// Moves an independent tuple (`["independent/tuple", k, v]`) out of the value into the key.
fn split_tuple(ev: &mut Event) -> Result<(), String> {
    if let Value::List(items) = &ev.value {
        if items.len() == 3 && items[0] == Value::Str("independent/tuple".into()) {
            let key = match &items[1] {
                Value::Int(i) => Key::Int(*i),
                Value::Str(s) => Key::Str(s.clone()),
                other => {
                    return Err(format!(
                        "an independent key must be an integer or a string, found {other}"
                    ))
                }
            };
            ev.key = Some(key);
            ev.value = items[2].clone();
        }
    }
    Ok(())
}

/// Builds an event from one EDN op map.
fn event_from_edn(map: Vec<(String, Value)>, index: u64) -> Result<Event, String> {
    let get = |k: &str| {
        map.iter()
            .position(|(n, _)| n == k)
            .map(|i| map[i].1.clone())
    };
    let process = get("process").ok_or("the op map has no :process (expected e.g. :process 0)")?;
    let kind =
        get("type").ok_or("the op map has no :type (expected :invoke, :ok, :fail or :info)")?;
    let f = get("f").ok_or("the op map has no :f (expected e.g. :f :read)")?;
    let value = get("value").unwrap_or(Value::Null);
    let mut ev = event_from_parts(process, kind, f, value, index).map_err(|(_, m)| m)?;
    if let Some(i) = get("index") {
        ev.index = i
            .as_int()
            .filter(|i| *i >= 0)
            .ok_or(format!("expected a non-negative integer :index, found {i}"))?
            as u64;
    }
    ev.time = match get("time") {
        Some(Value::Int(t)) if t >= 0 => Some(t as u64),
        Some(Value::Null) | None => None,
        Some(other) => {
            return Err(format!(
                "expected a non-negative integer :time, found {other}"
            ))
        }
    };
    ev.key = match get("key") {
        None | Some(Value::Null) => None,
        Some(Value::Int(i)) => Some(Key::Int(i)),
        Some(Value::Str(s)) => Some(Key::Str(s)),
        Some(other) => return Err(format!("expected an integer or string :key, found {other}")),
    };
    ev.error = get("error").map(|e| match e {
        Value::Str(s) => s,
        other => other.to_string(),
    });
    ev.node = get("node").map(|n| match n {
        Value::Str(s) => s,
        other => other.to_string(),
    });
    split_tuple(&mut ev)?;
    Ok(ev)
}

/// Streams the events of one history.
pub struct EventReader {
    input: Box<dyn BufRead + Send>,
    file: String,
    format: Format,
    line: u64,
    buf: Vec<u8>,
    queued: VecDeque<Located>,
    /// Index to assign to the next event of a format without indices.
    next_index: u64,
    allow_truncated: bool,
    done: bool,
}

impl EventReader {
    /// Accept a final line without a trailing newline that does not parse (a controller killed
    /// mid-write leaves one): it is skipped instead of being an error.
    pub fn allow_truncated_tail(&mut self, allow: bool) {
        self.allow_truncated = allow;
    }

    /// The format being read (after detection).
    pub fn format(&self) -> Format {
        self.format
    }

    fn fail(&mut self, e: InputError) -> Option<Result<Located, InputError>> {
        self.done = true;
        Some(Err(e))
    }

    fn parse(&mut self, text: &str, line: u64) -> Result<(), InputError> {
        match self.format {
            Format::Jsonl | Format::Auto => {
                let located = jsonl::parse_line(text, &self.file, line)?;
                self.queued.push_back(located);
            }
            Format::JepsenLog => {
                if let Some(located) =
                    jepsen_log::parse_line(text, &self.file, line, self.next_index)?
                {
                    self.next_index += 1;
                    self.queued.push_back(located);
                }
            }
            Format::Edn => self.parse_edn(text, line)?,
        }
        Ok(())
    }

    fn parse_edn(&mut self, text: &str, line: u64) -> Result<(), InputError> {
        let file = self.file.clone();
        let col = |offset: usize| offset as u64 + 1;
        let mut p = edn::Parser::new(text);
        let err = |e: edn::EdnError| InputError::at(&file, line, col(e.offset), e.message);
        loop {
            match p.peek().map_err(err)? {
                None => return Ok(()),
                // The brackets of a history written as one vector of maps.
                Some('[') | Some(']') => p.bump(),
                Some(_) => {
                    let start = p.offset() as u64 + 1;
                    let v = p.next_value().map_err(err)?;
                    let Value::Map(map) = v else {
                        return Err(InputError::at(&file, line, start, format!("expected an op map such as {{:process 0, :type :invoke, :f :read, :value nil}}, found {v}")));
                    };
                    let ev = event_from_edn(map, self.next_index)
                        .map_err(|m| InputError::at(&file, line, start, m))?;
                    self.next_index = ev.index + 1;
                    self.queued.push_back(Located {
                        line,
                        f_column: column_of(text, ":f "),
                        value_column: column_of(text, ":value "),
                        event: ev,
                    });
                }
            }
        }
    }
}

impl Iterator for EventReader {
    type Item = Result<Located, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(l) = self.queued.pop_front() {
                return Some(Ok(l));
            }
            if self.done {
                return None;
            }
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    let file = self.file.clone();
                    return self.fail(InputError::Io { file, source: e });
                }
            }
            self.line += 1;
            let line = self.line;
            let complete = self.buf.ends_with(b"\n");
            let buf = std::mem::take(&mut self.buf);
            let text = match std::str::from_utf8(&buf) {
                Ok(t) => t,
                Err(e) => {
                    let column = String::from_utf8_lossy(&buf[..e.valid_up_to()])
                        .chars()
                        .count() as u64
                        + 1;
                    let err = InputError::at(
                        &self.file,
                        line,
                        column,
                        "invalid UTF-8 (expected UTF-8 text)",
                    );
                    self.buf = buf;
                    return self.fail(err);
                }
            };
            let text = text.trim_end_matches(['\n', '\r']);
            let result = if text.trim().is_empty() {
                Ok(())
            } else {
                self.parse(text, line)
            };
            self.buf = buf;
            if let Err(e) = result {
                if !complete {
                    if self.allow_truncated {
                        self.done = true;
                        continue;
                    }
                    let e = match e {
                        InputError::Invalid { at, message } => InputError::Invalid {
                            at,
                            message: format!("{message}; the last line has no newline, so the file looks truncated (a killed run?): --allow-truncated skips it"),
                        },
                        other => other,
                    };
                    return self.fail(e);
                }
                return self.fail(e);
            }
        }
    }
}

/// Reads events from `reader`, naming `file` in errors. `Format::Auto` looks at the first
/// non-blank content and fails if it cannot tell.
pub fn from_reader(
    reader: impl Read + Send + 'static,
    file: &str,
    format: Format,
) -> Result<EventReader, InputError> {
    let mut input: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(1 << 16, reader));
    let format = match format {
        Format::Auto => {
            let start = input.fill_buf().map_err(|e| InputError::Io {
                file: file.to_string(),
                source: e,
            })?;
            if start.iter().all(|b| b.is_ascii_whitespace()) {
                Format::Jsonl // empty: any reader yields nothing
            } else {
                detect(start).ok_or_else(|| {
                    InputError::at(file, 1, 1, "cannot tell the format of this file (expected faultline JSONL, Jepsen EDN or a Jepsen log): pass --format")
                })?
            }
        }
        f => f,
    };
    Ok(EventReader {
        input,
        file: file.to_string(),
        format,
        line: 0,
        buf: Vec::with_capacity(256),
        queued: VecDeque::new(),
        next_index: 0,
        allow_truncated: false,
        done: false,
    })
}

/// Opens a history file (`-` for standard input).
pub fn open(path: &Path, format: Format) -> Result<EventReader, InputError> {
    let name = path.display().to_string();
    if name == "-" {
        return from_reader(std::io::stdin(), "-", format);
    }
    let f = std::fs::File::open(path).map_err(|e| InputError::Io {
        file: name.clone(),
        source: e,
    })?;
    from_reader(f, &name, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str, format: Format) -> Result<Vec<Located>, InputError> {
        from_reader(std::io::Cursor::new(text.to_string()), "t", format)?.collect()
    }

    #[test]
    fn detects_formats() {
        assert_eq!(detect(b"{\"index\":0}"), Some(Format::Jsonl));
        assert_eq!(detect(b"\n{:type :invoke}"), Some(Format::Edn));
        assert_eq!(
            detect(b"INFO  jepsen.util - 0\t:invoke\t:read\tnil"),
            Some(Format::JepsenLog)
        );
        assert_eq!(detect(b"hello"), None);
    }

    #[test]
    fn reads_the_three_formats() {
        let j = read_all("{\"index\":0,\"time\":5,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start\",\"value\":{\"n1\":[\"n2\"]}}\n", Format::Auto).unwrap();
        assert_eq!(j[0].event.process, Process::nemesis());
        let e = read_all("[{:process 0, :type :invoke, :f :write, :value [:independent/tuple 7 3]}\n{:process 0, :type :ok, :f :write, :value [:independent/tuple 7 3]}]\n", Format::Auto).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].event.key, Some(Key::Int(7)));
        assert_eq!(e[1].event.value, Value::Int(3));
        assert_eq!(e[1].event.index, 1);
        let l = read_all("noise\nINFO  jepsen.util - 3\t:invoke\t:cas\t[1 4]\n2017-05-08 13:24:51,243{GMT}\tINFO\t[jepsen worker 3] jepsen.util: 3\t:info\t:cas\t:timed-out\n", Format::Auto).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(
            l[0].event.value,
            Value::List(vec![Value::Int(1), Value::Int(4)])
        );
        assert_eq!(l[1].event.kind, EventKind::Info);
        assert_eq!(l[1].line, 3);
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = read_all("{\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n{\"index\":1,\"process\":0,\"type\":\"okay\",\"f\":\"read\",\"value\":null}\n", Format::Jsonl).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t:2:24: unknown type \"okay\" (expected invoke, ok, fail or info)"
        );
        let err = read_all(
            "{\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"valu\":null}\n",
            Format::Jsonl,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("t:1:"), "{err}");
        assert!(err.to_string().contains("unknown field `valu`"), "{err}");
    }

    #[test]
    fn truncated_tail() {
        let text = "{\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n{\"index\":1,\"pro";
        let err = read_all(text, Format::Jsonl).unwrap_err();
        assert!(err.to_string().contains("looks truncated"), "{err}");
        let mut r =
            from_reader(std::io::Cursor::new(text.to_string()), "t", Format::Jsonl).unwrap();
        r.allow_truncated_tail(true);
        assert_eq!(r.collect::<Result<Vec<_>, _>>().unwrap().len(), 1);
    }
}
