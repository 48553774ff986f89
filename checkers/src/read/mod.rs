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

mod blocks;
pub mod edn;
mod jepsen_log;
mod jsonl;
mod jsonl_fast;
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
    /// Jepsen's and Knossos's EDN: op maps or `[process type f value]` tuples, one per line or
    /// printed over several lines, alone or in one top-level vector or list.
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
    // After a map's '{' (possibly followed by a line break): a JSON string or an EDN keyword.
    let in_map = first
        .strip_prefix('{')
        .map(|rest| rest.trim_start_matches([' ', '\t', '\r', '\n', ',']));
    match in_map {
        Some(rest) if rest.starts_with('"') => Some(Format::Jsonl),
        Some(rest) if rest.starts_with(':') => Some(Format::Edn),
        Some(_) => None,
        None if first.starts_with(['[', '(', '#', ';', '^']) => Some(Format::Edn),
        None => None,
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
    /// Cuts EDN input into top-level forms, whatever their layout.
    edn: edn::Splitter,
    /// Whether values of the tuple layout are keyed.
    tuples: Tuples,
    /// Whether the last line read ended with a newline.
    last_complete: bool,
    /// JSONL: the blocks a reader thread parses ahead (started by the first `next`).
    blocks: Option<blocks::Blocks>,
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

    /// The next JSONL event, from the blocks parsed ahead; the first error ends the stream.
    fn next_jsonl(&mut self) -> Option<Result<Located, InputError>> {
        if self.done {
            return None;
        }
        let blocks = self.blocks.get_or_insert_with(|| {
            let input = std::mem::replace(&mut self.input, Box::new(std::io::empty()));
            blocks::Blocks::start(input, &self.file, self.allow_truncated)
        });
        let item = blocks.next();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }

    fn fail(&mut self, e: InputError) -> Option<Result<Located, InputError>> {
        self.done = true;
        Some(Err(e))
    }

    fn parse(&mut self, text: &str, line: u64) -> Result<(), InputError> {
        match self.format {
            Format::Jsonl | Format::Auto => {
                let located = blocks::parse_line(text, &self.file, line)?;
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
        let result = self.edn.feed_line(text, line);
        self.drain_edn()?;
        result.map_err(|e| InputError::at(&self.file, e.line, e.column, e.message))
    }

    /// Ends an EDN input: a form left open is parsed (to name what it lacks), then a history
    /// collection left open is an error.
    fn finish_edn(&mut self) -> Result<(), InputError> {
        let result = self.edn.finish();
        self.drain_edn()?;
        result.map_err(|e| InputError::at(&self.file, e.line, e.column, e.message))?;
        self.release_tuples(true)
    }

    /// Turns the complete forms cut so far into events.
    fn drain_edn(&mut self) -> Result<(), InputError> {
        while let Some(form) = self.edn.pop() {
            self.parse_form(&form)?;
        }
        Ok(())
    }

    fn parse_form(&mut self, form: &edn::Form) -> Result<(), InputError> {
        let file = self.file.clone();
        let err = |offset: usize, message: String| {
            let (line, column) = form.locate(offset);
            InputError::at(&file, line, column, message)
        };
        let mut p = edn::Parser::new(&form.text);
        loop {
            // Metadata on an op (`^:meta {...}`) is attached to it and does not change it.
            p.skip_metadata().map_err(|e| err(e.offset, e.message))?;
            let next = p.peek().map_err(|e| err(e.offset, e.message))?;
            let Some(c) = next else { return Ok(()) };
            let start = p.offset();
            // An op printed over several lines is located at its `f` (where errors about its
            // function point); the column of its value, when the value is on that line too.
            let anchor = |f_at: Option<usize>, value_at: Option<usize>| {
                let (line, f_column) = f_at.map_or((form.line(), 1), |o| form.locate(o));
                let value_column = value_at
                    .map(|o| form.locate(o))
                    .filter(|(l, _)| *l == line)
                    .map_or(1, |(_, c)| c);
                (line, f_column, value_column)
            };
            if c == '[' || c == '(' {
                // The older layout: `[process type f value]`.
                p.bump();
                let close = if c == '[' { ']' } else { ')' };
                let mut parts = Vec::with_capacity(4);
                loop {
                    match p.peek().map_err(|e| err(e.offset, e.message))? {
                        Some(x) if x == close => {
                            p.bump();
                            break;
                        }
                        None => {
                            return Err(err(
                                start,
                                format!("unclosed op tuple (expected '{close}')"),
                            ))
                        }
                        Some(_) => {
                            let at = p.offset();
                            let v = p.next_value().map_err(|e| err(e.offset, e.message))?;
                            parts.push((at, v));
                        }
                    }
                }
                if parts.len() != 4 && parts.len() != 3 {
                    return Err(err(start, format!("expected an op map such as {{:process 0, :type :invoke, :f :read, :value nil}} or a tuple [process type f value], found a collection of {} forms", parts.len())));
                }
                let offsets: Vec<usize> = parts.iter().map(|(o, _)| *o).collect();
                let mut values = parts.into_iter().map(|(_, v)| v);
                let (Some(process), Some(kind), Some(f)) =
                    (values.next(), values.next(), values.next())
                else {
                    return Err(err(start, "expected a tuple [process type f value]".into()));
                };
                let value = values.next().unwrap_or(Value::Null);
                let ev = event_from_parts(process, kind, f, value, self.next_index)
                    .map_err(|(which, m)| err(offsets[which], m))?;
                self.next_index = ev.index + 1;
                let value_at = offsets.get(3).copied();
                let (line, f_column, value_column) = anchor(Some(offsets[2]), value_at);
                let located = Located {
                    line,
                    f_column,
                    value_column,
                    event: ev,
                };
                let (value_line, value_column) = form.locate(value_at.unwrap_or(start));
                self.push_tuple(located, value_line, value_column)?;
                continue;
            }
            let v = p.next_value().map_err(|e| err(e.offset, e.message))?;
            let Value::Map(map) = v else {
                return Err(err(start, format!("expected an op map such as {{:process 0, :type :invoke, :f :read, :value nil}} or a tuple [process type f value], found {v}")));
            };
            let ev = event_from_edn(map, self.next_index).map_err(|m| err(start, m))?;
            self.next_index = ev.index + 1;
            let (line, f_column, value_column) =
                anchor(find_key(&form.text, ":f"), find_key(&form.text, ":value"));
            let located = Located {
                line,
                f_column,
                value_column,
                event: ev,
            };
            match &mut self.tuples {
                Tuples::Undecided(held) => held.push(located),
                _ => self.queued.push_back(located),
            }
        }
    }

    /// Queues an event of the tuple layout. Its value may be keyed (`[k v]`, as older Jepsen
    /// independent histories print them): whether the history is keyed is decided from its
    /// first [`TUPLE_LOOKAHEAD`] client tuples, which are held until then.
    fn push_tuple(
        &mut self,
        mut located: Located,
        line: u64,
        column: u64,
    ) -> Result<(), InputError> {
        if matches!(self.tuples, Tuples::Unseen) {
            self.tuples = Tuples::Undecided(Vec::new());
        }
        match &mut self.tuples {
            Tuples::Undecided(held) => {
                held.push(located);
                let clients = held
                    .iter()
                    .filter(|l| matches!(l.event.process, Process::Client(_)))
                    .count();
                if clients >= TUPLE_LOOKAHEAD {
                    self.release_tuples(false)?;
                }
                Ok(())
            }
            Tuples::Keyed => {
                if matches!(located.event.process, Process::Client(_)) {
                    split_pair(&mut located.event).map_err(|m| {
                        InputError::at(&self.file, line, column, format!("{m} (the first ops of this history have keyed values [k v], so every client op must)"))
                    })?;
                }
                self.queued.push_back(located);
                Ok(())
            }
            Tuples::Plain | Tuples::Unseen => {
                self.queued.push_back(located);
                Ok(())
            }
        }
    }

    /// Decides whether the held tuple events are keyed and releases them.
    fn release_tuples(&mut self, _at_end: bool) -> Result<(), InputError> {
        let held = match std::mem::replace(&mut self.tuples, Tuples::Plain) {
            Tuples::Undecided(held) => held,
            other => {
                self.tuples = other;
                return Ok(());
            }
        };
        let clients: Vec<&Value> = held
            .iter()
            .filter(|l| matches!(l.event.process, Process::Client(_)) && l.event.key.is_none())
            .map(|l| &l.event.value)
            .collect();
        fn pair(v: &Value) -> Option<&Value> {
            match v {
                Value::List(items) if items.len() == 2 => {
                    matches!(items[0], Value::Int(_) | Value::Str(_)).then_some(&items[1])
                }
                _ => None,
            }
        }
        // Keyed when every client value is a pair [k v] with a scalar key and some pair holds
        // what no plain op's value is (a read's nil, or a collection): a plain cas's [old new]
        // holds two scalars.
        let keyed = !clients.is_empty()
            && clients.iter().all(|v| pair(v).is_some())
            && clients
                .iter()
                .any(|v| matches!(pair(v), Some(Value::Null | Value::List(_) | Value::Map(_))));
        self.tuples = if keyed { Tuples::Keyed } else { Tuples::Plain };
        for mut located in held {
            if keyed
                && matches!(located.event.process, Process::Client(_))
                && located.event.key.is_none()
            {
                // Checked above: every client value is a pair.
                let _ = split_pair(&mut located.event);
            }
            self.queued.push_back(located);
        }
        Ok(())
    }
}

/// How many client ops of the tuple layout decide whether its values are keyed.
const TUPLE_LOOKAHEAD: usize = 64;

/// Whether the values of a `[process type f value]` history are keyed `[k v]` pairs.
#[derive(Debug)]
enum Tuples {
    /// No tuple read yet.
    Unseen,
    /// Not known yet: the events read so far are held.
    Undecided(Vec<Located>),
    /// Every client op's value is `[k v]`.
    Keyed,
    /// Values are plain.
    Plain,
}

/// Moves a keyed value `[k v]` into key and value.
fn split_pair(ev: &mut Event) -> Result<(), String> {
    match &ev.value {
        Value::List(items) if items.len() == 2 => {
            let key = match &items[0] {
                Value::Int(i) => Key::Int(*i),
                Value::Str(s) => Key::Str(s.clone()),
                other => {
                    return Err(format!(
                    "expected a keyed value [k v] with an integer or string key, found key {other}"
                ))
                }
            };
            ev.value = items[1].clone();
            ev.key = Some(key);
            Ok(())
        }
        other => Err(format!("expected a keyed value [k v], found {other}")),
    }
}

/// The character offset of the map key `key` (followed by a delimiter) in `text`.
fn find_key(text: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(key) {
        let at = from + i;
        let after = text[at + key.len()..].chars().next();
        if after.is_none_or(|c| c.is_whitespace() || c == ',') {
            return Some(text[..at].chars().count());
        }
        from = at + key.len();
    }
    None
}

impl Iterator for EventReader {
    type Item = Result<Located, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.format == Format::Jsonl {
            return self.next_jsonl();
        }
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
                    if self.format != Format::Edn {
                        return None;
                    }
                    match self.finish_edn() {
                        Ok(()) => continue,
                        Err(_) if self.allow_truncated && !self.last_complete => continue,
                        Err(e) if !self.last_complete => return Some(Err(truncated(e))),
                        Err(e) => return Some(Err(e)),
                    }
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
            self.last_complete = complete;
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
            // Blank lines matter to EDN only inside a multi-line string.
            let result = if text.trim().is_empty() && self.format != Format::Edn {
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
                    return self.fail(truncated(e));
                }
                return self.fail(e);
            }
        }
    }
}

/// Adds to an error on the last line of a file without a final newline that it looks truncated.
fn truncated(e: InputError) -> InputError {
    match e {
        InputError::Invalid { at, message } => InputError::Invalid {
            at,
            message: format!("{message}; the last line has no newline, so the file looks truncated (a killed run?): --allow-truncated skips it"),
        },
        other => other,
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
        edn: edn::Splitter::new(),
        tuples: Tuples::Unseen,
        last_complete: true,
        blocks: None,
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
        assert_eq!(detect(b"{\n  :process 0"), Some(Format::Edn));
        assert_eq!(detect(b"{ \"index\": 0"), Some(Format::Jsonl));
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

    /// Op maps printed over several lines, with comments between them, inside one vector
    /// (the layout of Knossos's `cas-failure.edn`).
    #[test]
    fn reads_op_maps_printed_over_several_lines() {
        let text = "[{:process 0, :type :invoke, :f :write, :value 1}\n ; a comment [ with { brackets\n {:process :nemesis,\n  :type :info,\n  :f :start,\n  :value\n  \"Cut off [:n3 #{:n1}]\"}\n {:process 0,\n  :type :ok, :f :write,\n  :value 1}]\n";
        let e = read_all(text, Format::Auto).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].event.process, Process::nemesis());
        // Located at its `:f`, on line 5.
        assert_eq!((e[1].line, e[1].f_column, e[1].value_column), (5, 3, 1));
        assert_eq!(e[1].event.value, Value::Str("Cut off [:n3 #{:n1}]".into()));
        assert_eq!((e[2].line, e[2].f_column), (9, 14));
        assert_eq!(e[2].event.kind, EventKind::Ok);
        assert_eq!(e[2].event.index, 2);
        // Several ops on one line, and one op over lines without a wrapper.
        let e = read_all(
            "{:process 0, :type :invoke, :f :read} {:process 0,\n:type :ok, :f :read, :value 3}\n",
            Format::Edn,
        )
        .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].event.value, Value::Int(3));
    }

    /// Ops carrying metadata (`^:m {...}`, `^{...} [...]`) and `##NaN` / `##Inf` values read as
    /// Clojure's reader reads them: the metadata does not change the op, the values are floats.
    #[test]
    fn reads_edn_metadata_and_symbolic_floats() {
        let text = "^{:line 1} {:process 0, :type :invoke, :f :read, :value nil}\n^:m {:process 0, :type :ok, :f :read, :value ##NaN}\n{:process :nemesis, :type :info, :f :start, :value [##Inf ##-Inf]}\n";
        let e = read_all(text, Format::Auto).unwrap();
        assert_eq!(e.len(), 3);
        assert!(matches!(e[1].event.value, Value::Float(x) if x.is_nan()));
        assert_eq!((e[1].line, e[1].f_column), (2, 29));
        assert_eq!(
            e[2].event.value,
            Value::List(vec![
                Value::Float(f64::INFINITY),
                Value::Float(f64::NEG_INFINITY)
            ])
        );
        let e = read_all(
            "[^:m [0 :invoke :read nil]\n ^{:a 1} [0 :ok :read 2]]",
            Format::Auto,
        )
        .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].event.value, Value::Int(2));
        let err = read_all("^:m 7\n", Format::Edn).unwrap_err().to_string();
        assert!(err.starts_with("t:1:5: expected an op map"), "{err}");
    }

    /// A whole history as one top-level list (Knossos's `rethink-fail*.edn`), its brackets on
    /// lines of their own.
    #[test]
    fn reads_a_history_as_one_list_or_vector() {
        let text = "; a history\n(\n{:type :invoke, :f :read, :value nil, :process 1}\n{:type :ok, :f :read, :value 3, :process 1})\n; done\n";
        let e = read_all(text, Format::Auto).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].event.value, Value::Int(3));
        assert_eq!(e[1].line, 4);
        let e = read_all("[\n]\n", Format::Edn).unwrap();
        assert!(e.is_empty());
        let e = read_all("[[0 :invoke :read nil]\n [0 :ok :read 2]]", Format::Edn).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].event.value, Value::Int(2));
    }

    /// The older layout: one `[process type f value]` tuple per op, values plain or keyed.
    #[test]
    fn reads_process_type_f_value_tuples() {
        let plain = "[0 :invoke :cas [1 2]]\n[0 :fail :cas [1 2]]\n[:nemesis :info :start nil]\n[1 :invoke :write 3]\n[1 :ok :write 3]\n[2 :invoke :read nil]\n";
        let e = read_all(plain, Format::Auto).unwrap();
        assert_eq!(e.len(), 6);
        assert_eq!(e[0].event.f, "cas");
        assert_eq!(e[0].event.key, None);
        assert_eq!(
            e[0].event.value,
            Value::List(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(e[2].event.process, Process::nemesis());
        assert_eq!(e[5].event.index, 5);
        assert_eq!((e[3].line, e[3].f_column, e[3].value_column), (4, 12, 19));
        let keyed = "[0 :invoke :read [5 nil]]\n[0 :ok :read [5 3]]\n[1 :invoke :cas [\"k\" [1 2]]]\n[:nemesis :info :start nil]\n[1 :ok :cas [\"k\" [1 2]]]\n";
        let e = read_all(keyed, Format::Auto).unwrap();
        assert_eq!(e.len(), 5);
        assert_eq!(e[0].event.key, Some(Key::Int(5)));
        assert_eq!(e[0].event.value, Value::Null);
        assert_eq!(e[1].event.value, Value::Int(3));
        assert_eq!(e[2].event.key, Some(Key::Str("k".into())));
        assert_eq!(
            e[4].event.value,
            Value::List(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(e[3].event.key, None);
        // Past the look-ahead, a client op that is not keyed is an error at its value.
        let mut long = String::new();
        for i in 0..TUPLE_LOOKAHEAD {
            long.push_str(&format!("[{i} :invoke :read [1 nil]]\n"));
        }
        long.push_str("[0 :ok :read 3]\n");
        let err = read_all(&long, Format::Edn).unwrap_err().to_string();
        let line = TUPLE_LOOKAHEAD + 1;
        assert!(
            err.starts_with(&format!("t:{line}:14: expected a keyed value [k v]")),
            "{err}"
        );
        let err = read_all("[0 :begin :read nil]\n", Format::Edn)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t:1:4: expected a type"), "{err}");
    }

    /// Errors name the line and column of their cause, also across lines.
    #[test]
    fn edn_layout_errors_point_at_the_cause() {
        let err = |text: &str| read_all(text, Format::Edn).unwrap_err().to_string();
        // A map whose '}' is missing, inside a vector: the ']' names the map's opening.
        let e = err("[{:process 0, :type :invoke, :f :read, :value nil}\n {:process 0, :type :ok,\n  :f :read, :value [1 2]\n {:process 1, :type :invoke, :f :read}]\n");
        assert_eq!(
            e,
            "t:4:39: unexpected ']' (expected '}' to close the collection opened at 2:2)"
        );
        // A map left open at the end of the file names its opening.
        let e = err("{:process 0, :type :invoke, :f :read}\n{:process 0,\n :type :ok\n");
        assert!(e.starts_with("t:2:1: unclosed collection"), "{e}");
        // The error of a multi-line map's content is at its line and column.
        let e = err("[{:process 0,\n  :type :invoke,\n  :f :read,\n  :value \"a\\q\"}]\n");
        assert!(e.starts_with("t:4:12: unknown escape"), "{e}");
        let e = err("({:process 0, :type :invoke, :f :read}\n");
        assert!(
            e.starts_with("t:1:1: the history's collection opened here is never closed"),
            "{e}"
        );
        let e = err("[{:process 0, :type :invoke, :f :read}]\n{:process 0, :type :ok, :f :read}\n");
        assert!(
            e.starts_with("t:2:1: unexpected '{' after the end of the history"),
            "{e}"
        );
        let e = err("{:process 0, :type :invoke, :f :read}\n]\n");
        assert!(e.starts_with("t:2:1: unexpected ']'"), "{e}");
        let e = err("[{:process 0, :type :invoke, :f :read}\n 7]\n");
        assert!(e.starts_with("t:2:2: expected an op map"), "{e}");
        // A file cut in the middle of an op printed over lines looks truncated.
        let text = "[{:process 0, :type :invoke, :f :read}\n {:process 0,\n  :type :ok";
        assert!(err(text).contains("looks truncated"), "{}", err(text));
        let mut r = from_reader(std::io::Cursor::new(text.to_string()), "t", Format::Edn).unwrap();
        r.allow_truncated_tail(true);
        assert_eq!(r.collect::<Result<Vec<_>, _>>().unwrap().len(), 1);
    }

    /// The EDN reader holds one form, not the file: a long history in one vector yields its
    /// first event before the rest is read.
    #[test]
    fn edn_streams_one_form_at_a_time() {
        struct Endless(u64);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let text = if self.0 == 0 {
                    "[".to_string()
                } else {
                    format!("{{:process {}, :type :invoke,\n :f :read}}\n", self.0)
                };
                self.0 += 1;
                let n = text.len().min(buf.len());
                buf[..n].copy_from_slice(&text.as_bytes()[..n]);
                Ok(n)
            }
        }
        let mut r = from_reader(Endless(0), "t", Format::Edn).unwrap();
        let first = r.next().unwrap().unwrap();
        assert_eq!(first.event.process, Process::Client(1));
        assert_eq!(
            r.nth(999).unwrap().unwrap().event.process,
            Process::Client(1001)
        );
    }
}
