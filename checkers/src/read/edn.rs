//! A small EDN reader: enough of EDN for Jepsen histories, with positions for errors.
//!
//! Supported: `nil`, booleans, integers (with an optional `N`), floats and ratios (as floats),
//! the symbolic values `##Inf`, `##-Inf` and `##NaN` (floats), strings with escapes,
//! characters, keywords and symbols (as strings, keywords without the colon), vectors, lists,
//! sets, maps, comments, `#_` discards, tagged literals (the tag is dropped, except
//! `#jepsen.independent.Tuple{:key k :value v}`, read as `["independent/tuple", k, v]`) and
//! metadata (`^:key`, `^{...}`, `^Sym`, `^"tag"`, `^[...]`), which is attached to the next form
//! and, as in Clojure's reader, does not change its value: it is read and dropped, and, as
//! there, metadata must be a map, keyword, symbol, string or vector and can only be attached to
//! a symbol or a collection. Nesting deeper than [`MAX_DEPTH`] is refused.
//!
//! [`Splitter`] cuts a stream of lines into top-level forms whatever their layout (one op per
//! line, ops printed over several lines, a whole history as one top-level vector or list whose
//! elements are then the forms), tracking only brackets, strings, comments and character
//! literals, so that memory holds one op at a time; [`Parser`] parses each form, and
//! [`Form::locate`] maps its offsets back to the file's lines and columns.
//!
//! No well-kept EDN crate on crates.io reports error positions and reads one form at a time
//! (`edn-format` and `edn-rs` parse whole documents and report no column), so this is our own,
//! with its own tests and a fuzz target.

use crate::history::Value;

/// The deepest nesting accepted.
pub const MAX_DEPTH: usize = 100;

/// A parse error at a character offset (0-based, in chars) of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdnError {
    /// 0-based character offset.
    pub offset: usize,
    /// What was wrong, and what was expected.
    pub message: String,
}

/// A parser over one piece of text.
pub struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    _text: std::marker::PhantomData<&'a str>,
}

fn is_delim(c: char) -> bool {
    c.is_whitespace() || c == ',' || "()[]{}\";".contains(c)
}

impl<'a> Parser<'a> {
    /// A parser over `text`.
    pub fn new(text: &'a str) -> Parser<'a> {
        Parser {
            chars: text.chars().collect(),
            pos: 0,
            _text: std::marker::PhantomData,
        }
    }

    /// The current character offset.
    pub fn offset(&self) -> usize {
        self.pos
    }

    fn err<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, EdnError> {
        Err(EdnError {
            offset,
            message: message.into(),
        })
    }

    /// Skips whitespace, commas, comments and `#_` discarded forms.
    pub fn skip_ws(&mut self) -> Result<(), EdnError> {
        self.skip_ws_at(0)
    }

    /// [`Parser::skip_ws`] inside `depth` levels of nesting: a discarded form counts as one
    /// more level, so that a long chain of `#_`s is refused instead of overflowing the stack.
    fn skip_ws_at(&mut self, depth: usize) -> Result<(), EdnError> {
        loop {
            match self.chars.get(self.pos) {
                Some(c) if c.is_whitespace() || *c == ',' => self.pos += 1,
                Some(';') => {
                    while self.chars.get(self.pos).is_some_and(|c| *c != '\n') {
                        self.pos += 1;
                    }
                }
                Some('#') if self.chars.get(self.pos + 1) == Some(&'_') => {
                    if depth >= MAX_DEPTH {
                        return self
                            .err(self.pos, format!("nesting deeper than {MAX_DEPTH} levels"));
                    }
                    self.pos += 2;
                    self.value(depth + 1)?;
                }
                _ => return Ok(()),
            }
        }
    }

    /// True when only whitespace and comments remain.
    pub fn at_end(&mut self) -> Result<bool, EdnError> {
        self.skip_ws()?;
        Ok(self.pos >= self.chars.len())
    }

    /// The next character after whitespace, without consuming it.
    pub fn peek(&mut self) -> Result<Option<char>, EdnError> {
        self.skip_ws()?;
        Ok(self.chars.get(self.pos).copied())
    }

    /// Consumes one character.
    pub fn bump(&mut self) {
        self.pos += 1;
    }

    /// Reads the next form.
    pub fn next_value(&mut self) -> Result<Value, EdnError> {
        self.value(0)
    }

    /// Skips the metadata (`^:key`, `^{...}`, `^Sym`, `^"tag"`, `^[...]`, any number of them)
    /// in front of the next form, leaving the parser at that form, as Clojure's reader
    /// attaches it to the form without changing its value. Metadata that is not a map,
    /// keyword, symbol, string or vector is refused where it starts.
    pub fn skip_metadata(&mut self) -> Result<(), EdnError> {
        self.skip_metadata_at(0)
    }

    fn skip_metadata_at(&mut self, depth: usize) -> Result<(), EdnError> {
        let mut first_caret = None;
        loop {
            self.skip_ws_at(depth)?;
            match (self.chars.get(self.pos), first_caret) {
                (Some('^'), _) => {}
                (None, Some(at)) => {
                    return self.err(
                        at,
                        "unexpected end of input (expected the form this metadata is attached to)",
                    )
                }
                _ => return Ok(()),
            }
            let caret = self.pos;
            first_caret.get_or_insert(caret);
            self.pos += 1;
            self.skip_ws_at(depth)?;
            let first = self.chars.get(self.pos).copied();
            let meta = self.value(depth + 1)?;
            let fits = match first {
                Some('{' | ':' | '"' | '[') => true,
                Some('(' | '#' | '\\') | None => false,
                // A symbol, not a number, nil or a boolean.
                Some(_) => matches!(meta, Value::Str(_)),
            };
            if !fits {
                return self.err(
                    caret,
                    "metadata must be a map, keyword, symbol, string or vector (such as ^:key or ^{:key value})",
                );
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, EdnError> {
        self.skip_ws_at(depth)?;
        let start = self.pos;
        if depth > MAX_DEPTH {
            return self.err(start, format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        if self.chars.get(self.pos) == Some(&'^') {
            return self.with_metadata(depth);
        }
        let Some(&c) = self.chars.get(self.pos) else {
            return self.err(start, "unexpected end of input (expected a value)");
        };
        match c {
            '[' | '(' => {
                self.pos += 1;
                Ok(Value::List(
                    self.seq(if c == '[' { ']' } else { ')' }, depth)?,
                ))
            }
            '{' => {
                self.pos += 1;
                self.map(depth)
            }
            '"' => self.string(),
            '\\' => {
                self.pos += 1;
                // The first character is taken whatever it is (`\(`, `\"`); names such as
                // `\newline` go on to the next delimiter.
                let first = match self.chars.get(self.pos) {
                    Some(&c) if !c.is_whitespace() => c,
                    _ => return self.err(start, "a character literal needs a character after \\"),
                };
                self.pos += 1;
                let mut tok = first.to_string();
                if first.is_alphanumeric() {
                    tok.push_str(&self.token());
                }
                Ok(Value::Str(match tok.as_str() {
                    "newline" => "\n".into(),
                    "space" => " ".into(),
                    "tab" => "\t".into(),
                    "return" => "\r".into(),
                    _ => tok,
                }))
            }
            '#' => {
                self.pos += 1;
                match self.chars.get(self.pos) {
                    Some('#') => {
                        self.pos += 1;
                        match self.token().as_str() {
                            "Inf" => Ok(Value::Float(f64::INFINITY)),
                            "-Inf" => Ok(Value::Float(f64::NEG_INFINITY)),
                            "NaN" => Ok(Value::Float(f64::NAN)),
                            other => self.err(
                                start,
                                format!("unknown symbolic value ##{other} (expected ##Inf, ##-Inf or ##NaN)"),
                            ),
                        }
                    }
                    Some('{') => {
                        self.pos += 1;
                        Ok(Value::List(self.seq('}', depth)?))
                    }
                    Some(c) if c.is_alphabetic() => {
                        let tag = self.token();
                        let inner = self.value(depth + 1)?;
                        if tag == "jepsen.independent.Tuple" {
                            if let Value::Map(m) = &inner {
                                let get = |k: &str| {
                                    m.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
                                };
                                if let (Some(k), Some(v)) = (get("key"), get("value")) {
                                    return Ok(Value::List(vec![
                                        Value::Str("independent/tuple".into()),
                                        k,
                                        v,
                                    ]));
                                }
                            }
                        }
                        Ok(inner)
                    }
                    _ => self.err(
                        start,
                        "unsupported # dispatch (expected #{, #_, ## or a tag)",
                    ),
                }
            }
            ')' | ']' | '}' => self.err(start, format!("unexpected '{c}' (expected a value)")),
            ':' => {
                self.pos += 1;
                let tok = self.token();
                if tok.is_empty() {
                    return self.err(start, "a keyword needs a name after ':'");
                }
                Ok(Value::Str(tok))
            }
            _ => {
                let tok = self.token();
                if tok.is_empty() {
                    return self.err(start, format!("unexpected character {c:?}"));
                }
                Ok(atom(&tok))
            }
        }
    }

    /// A form with metadata in front of it (the parser is at the first `^`): the form's value,
    /// once the metadata is skipped; as in Clojure, only a symbol or a collection takes
    /// metadata.
    fn with_metadata(&mut self, depth: usize) -> Result<Value, EdnError> {
        self.skip_metadata_at(depth)?;
        let target = self.pos;
        let c = self.chars.get(target).copied();
        let value = self.value(depth)?;
        let collection = matches!(c, Some('(' | '[' | '{'))
            || (c == Some('#') && self.chars.get(target + 1).is_some_and(|n| *n != '#'));
        let symbol = !matches!(c, Some(':' | '"' | '\\' | '#')) && matches!(value, Value::Str(_));
        if collection || symbol {
            Ok(value)
        } else {
            self.err(
                target,
                "metadata can only be attached to a symbol or a collection",
            )
        }
    }

    fn token(&mut self) -> String {
        let start = self.pos;
        while self.chars.get(self.pos).is_some_and(|c| !is_delim(*c)) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn seq(&mut self, close: char, depth: usize) -> Result<Vec<Value>, EdnError> {
        let open = self.pos.saturating_sub(1);
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            match self.chars.get(self.pos) {
                None => return self.err(open, format!("unclosed collection (expected '{close}')")),
                Some(&c) if c == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(_) => items.push(self.value(depth + 1)?),
            }
        }
    }

    fn map(&mut self, depth: usize) -> Result<Value, EdnError> {
        let open = self.pos.saturating_sub(1);
        let items = self.seq('}', depth)?;
        if items.len() % 2 != 0 {
            return self.err(
                open,
                "a map needs an even number of forms (a value for every key)",
            );
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let key = match k {
                Value::Str(s) => s,
                other => other.to_string(),
            };
            entries.push((key, v));
        }
        Ok(Value::Map(entries))
    }

    fn string(&mut self) -> Result<Value, EdnError> {
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            let Some(&c) = self.chars.get(self.pos) else {
                return self.err(start, "unterminated string (expected a closing '\"')");
            };
            self.pos += 1;
            match c {
                '"' => return Ok(Value::Str(s)),
                '\\' => {
                    let Some(&e) = self.chars.get(self.pos) else {
                        return self.err(start, "unterminated string (expected a closing '\"')");
                    };
                    self.pos += 1;
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '"' => '"',
                        '\\' => '\\',
                        'u' => {
                            let hex: String = self.chars.iter().skip(self.pos).take(4).collect();
                            let code = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                            match code {
                                Some(ch) if hex.len() == 4 => {
                                    self.pos += 4;
                                    ch
                                }
                                _ => {
                                    return self.err(
                                        self.pos - 2,
                                        "bad \\u escape (expected 4 hex digits)",
                                    )
                                }
                            }
                        }
                        other => {
                            return self.err(self.pos - 2, format!("unknown escape \\{other}"))
                        }
                    });
                }
                c => s.push(c),
            }
        }
    }
}

fn atom(tok: &str) -> Value {
    match tok {
        "nil" => return Value::Null,
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    let t = tok.strip_suffix('N').unwrap_or(tok);
    if let Ok(i) = t.parse::<i64>() {
        return Value::Int(i);
    }
    let f = tok.strip_suffix('M').unwrap_or(tok);
    if numeric(f) {
        if let Ok(x) = f.parse::<f64>() {
            return Value::Float(x);
        }
    }
    if let Some((n, d)) = tok.split_once('/') {
        if numeric(n) && numeric(d) {
            if let (Ok(n), Ok(d)) = (n.parse::<f64>(), d.parse::<f64>()) {
                return Value::Float(n / d);
            }
        }
    }
    Value::Str(tok.to_string())
}

/// Whether a token is written as a number (a digit or `.` after an optional sign), so that
/// symbols such as `inf`, `-inf` or `nan`, which Rust would parse as floats, stay symbols as
/// in Clojure (whose infinities and NaN are `##Inf`, `##-Inf` and `##NaN`).
fn numeric(tok: &str) -> bool {
    tok.trim_start_matches(['-', '+'])
        .starts_with(|c: char| c.is_ascii_digit() || c == '.')
}

/// Parses exactly one form from `text` (trailing whitespace and comments allowed).
pub fn parse_one(text: &str) -> Result<Value, EdnError> {
    let mut p = Parser::new(text);
    let v = p.next_value()?;
    if !p.at_end()? {
        return Err(EdnError {
            offset: p.offset(),
            message: "unexpected text after the value".into(),
        });
    }
    Ok(v)
}

/// One top-level form cut from a stream of lines by [`Splitter`], with what is needed to map
/// its character offsets back to the file's lines and columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The form's text (lines joined with `\n`).
    pub text: String,
    /// (character offset in `text`, line, column of that character) for each line it spans.
    starts: Vec<(usize, u64, u64)>,
    chars: usize,
}

impl Form {
    fn new(line: u64, column: u64) -> Form {
        Form {
            text: String::new(),
            starts: vec![(0, line, column)],
            chars: 0,
        }
    }

    fn push(&mut self, c: char, line: u64, column: u64) {
        if self.starts.last().is_some_and(|(_, l, _)| *l != line) {
            self.starts.push((self.chars, line, column));
        }
        self.text.push(c);
        self.chars += 1;
    }

    /// The line where the form starts.
    pub fn line(&self) -> u64 {
        self.starts[0].1
    }

    /// The 1-based (line, column) in the file of the character at `offset` in [`Form::text`].
    pub fn locate(&self, offset: usize) -> (u64, u64) {
        let i = self.starts.partition_point(|(o, _, _)| *o <= offset);
        let (start, line, column) = self.starts[i.saturating_sub(1)];
        (line, column + offset.saturating_sub(start) as u64)
    }
}

/// An error found while cutting forms: 1-based line and column, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// What was wrong, and what was expected.
    pub message: String,
}

/// The collection that holds a whole history, if the file is one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wrapper {
    /// Nothing significant read yet.
    Unknown,
    /// The file opened with `[` or `(`: a whole history, or a `[process type f value]` tuple;
    /// the next significant character tells.
    Pending { close: char, line: u64, column: u64 },
    /// Inside the history's collection.
    Open { close: char, line: u64, column: u64 },
    /// The history's collection was closed there.
    Closed { line: u64, column: u64 },
    /// The file is a sequence of top-level forms.
    Absent,
}

/// Cuts a stream of lines into top-level EDN forms, whatever their layout: one op per line,
/// ops printed over several lines, or a whole history as one top-level vector or list (whose
/// elements are then the forms). It only tracks brackets, strings, comments and character
/// literals, so memory holds one form at a time; [`Parser`] parses each form.
#[derive(Debug)]
pub struct Splitter {
    wrapper: Wrapper,
    form: Option<Form>,
    /// Expected closers of the open collections of the current form, with their openers'
    /// positions.
    stack: Vec<(char, u64, u64)>,
    in_string: bool,
    escape: bool,
    in_comment: bool,
    char_literal: bool,
    /// Byte offset in the form's text where the top-level token being read starts.
    token: Option<usize>,
    /// Forms that `#_` discards, `#tag`s and metadata (`^:key`, `^Sym`: one, the form it is
    /// attached to; a bare `^`: two, the metadata and the form) at top level still wait for.
    prefixes: usize,
    ready: std::collections::VecDeque<Form>,
}

impl Default for Splitter {
    fn default() -> Splitter {
        Splitter::new()
    }
}

fn closer(open: char) -> char {
    match open {
        '[' => ']',
        '(' => ')',
        _ => '}',
    }
}

/// How many forms a top-level token waits for: a `#_` discard or a `#tag` one, metadata one
/// (`^:key`, `^Sym`: the form it is attached to) or two (a bare `^`, followed by `{...}`,
/// `"..."` or `[...]`: that metadata, then the form), anything else (`##NaN` included) none.
fn prefix_waits(token: &str) -> usize {
    if token == "^" {
        2
    } else if token.starts_with('^') || (token.starts_with('#') && !token.starts_with("##")) {
        1
    } else {
        0
    }
}

impl Splitter {
    /// A splitter at the start of a file.
    pub fn new() -> Splitter {
        Splitter {
            wrapper: Wrapper::Unknown,
            form: None,
            stack: Vec::new(),
            in_string: false,
            escape: false,
            in_comment: false,
            char_literal: false,
            token: None,
            prefixes: 0,
            ready: std::collections::VecDeque::new(),
        }
    }

    /// The next complete form, if any.
    pub fn pop(&mut self) -> Option<Form> {
        self.ready.pop_front()
    }

    /// Feeds one line (without its line break) read at 1-based `line`.
    pub fn feed_line(&mut self, text: &str, line: u64) -> Result<(), SplitError> {
        let mut column = 0;
        for c in text.chars() {
            column += 1;
            self.feed(c, line, column)?;
        }
        self.feed('\n', line, column + 1)
    }

    /// Ends the input: a form still open is handed out as it is (so that parsing it names what
    /// is missing), and a history collection that was never closed is an error.
    pub fn finish(&mut self) -> Result<(), SplitError> {
        if self.token.is_some() {
            self.end_token();
        }
        if let Some(form) = self.form.take() {
            self.ready.push_back(form);
        }
        match self.wrapper {
            Wrapper::Open { close, line, column } | Wrapper::Pending { close, line, column } => {
                Err(SplitError {
                    line,
                    column,
                    message: format!(
                        "the history's collection opened here is never closed (expected '{close}' before the end of the file)"
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    fn start(&mut self, line: u64, column: u64) {
        if self.form.is_none() {
            self.form = Some(Form::new(line, column));
        }
    }

    fn append(&mut self, c: char, line: u64, column: u64) {
        if let Some(form) = &mut self.form {
            form.push(c, line, column);
        }
    }

    /// A top-level value is complete: the form is, unless a prefix (`#_`, a tag) took it.
    fn complete(&mut self) {
        if self.prefixes > 0 {
            self.prefixes -= 1;
            if self.prefixes > 0 {
                return;
            }
        }
        if let Some(form) = self.form.take() {
            self.ready.push_back(form);
        }
    }

    fn end_token(&mut self) {
        let Some(at) = self.token.take() else { return };
        let waits = self
            .form
            .as_ref()
            .map_or(0, |f| prefix_waits(&f.text[at..]));
        if waits > 0 {
            self.prefixes += waits;
        } else {
            self.complete();
        }
    }

    fn feed(&mut self, c: char, line: u64, column: u64) -> Result<(), SplitError> {
        if self.feed_literal(c, line, column) {
            return Ok(());
        }
        let blank = c.is_whitespace() || c == ',';
        if self.settle_pending_wrapper(c, blank, line, column) {
            return Ok(());
        }
        if (blank || matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | '"' | ';'))
            && self.token.is_some()
            && self.stack.is_empty()
        {
            self.end_token();
        }
        if blank {
            self.append(c, line, column);
            return Ok(());
        }
        if self.feed_outside_forms(c, line, column)? {
            return Ok(());
        }
        self.feed_form(c, line, column)
    }

    /// Inside a comment, a string or after a character literal's backslash: takes `c` and
    /// says so.
    fn feed_literal(&mut self, c: char, line: u64, column: u64) -> bool {
        if self.in_comment {
            self.append(c, line, column);
            self.in_comment = c != '\n';
            return true;
        }
        if self.in_string {
            self.append(c, line, column);
            if self.escape {
                self.escape = false;
            } else if c == '\\' {
                self.escape = true;
            } else if c == '"' {
                self.in_string = false;
                if self.stack.is_empty() {
                    self.complete();
                }
            }
            return true;
        }
        if self.char_literal {
            self.append(c, line, column);
            self.char_literal = false;
            return true;
        }
        false
    }

    /// While it is not known whether the first collection wraps the whole history: decides
    /// it at the first character that tells (takes blanks and comments before it, and says
    /// so).
    fn settle_pending_wrapper(&mut self, c: char, blank: bool, line: u64, column: u64) -> bool {
        if let Wrapper::Pending { close, .. } = self.wrapper {
            if c == ';' {
                self.append(c, line, column);
                self.in_comment = true;
                return true;
            }
            if blank {
                self.append(c, line, column);
                return true;
            }
            if matches!(c, '{' | '[' | '(' | '#' | '^') || c == close {
                // A collection of ops: a whole history.
                let Some(form) = self.form.take() else {
                    return true;
                };
                let (line, column) = form.locate(0);
                self.wrapper = Wrapper::Open {
                    close,
                    line,
                    column,
                };
                self.stack.clear();
            } else {
                // A `[process type f value]` tuple at top level.
                self.wrapper = Wrapper::Absent;
            }
        }
        false
    }

    /// Outside every form: after the wrapping collection closed (only comments), or before
    /// the first form (which may open the wrapper). Says whether it took `c`.
    fn feed_outside_forms(&mut self, c: char, line: u64, column: u64) -> Result<bool, SplitError> {
        if let Wrapper::Closed {
            line: l,
            column: col,
        } = self.wrapper
        {
            if c == ';' {
                self.in_comment = true;
                return Ok(true);
            }
            return Err(SplitError {
                line,
                column,
                message: format!(
                    "unexpected {c:?} after the end of the history (its collection was closed at {l}:{col})"
                ),
            });
        }
        if self.wrapper == Wrapper::Unknown {
            if c == ';' {
                self.in_comment = true;
                return Ok(true);
            }
            if c == '[' || c == '(' {
                self.wrapper = Wrapper::Pending {
                    close: closer(c),
                    line,
                    column,
                };
                self.start(line, column);
                self.append(c, line, column);
                self.stack.push((closer(c), line, column));
                return Ok(true);
            }
            self.wrapper = Wrapper::Absent;
        }
        Ok(false)
    }

    /// A character of a form: comments, strings, collections opened and closed, tokens.
    fn feed_form(&mut self, c: char, line: u64, column: u64) -> Result<(), SplitError> {
        match c {
            ';' => {
                self.append(c, line, column);
                self.in_comment = true;
            }
            '"' => {
                self.start(line, column);
                self.append(c, line, column);
                self.in_string = true;
            }
            '(' | '[' | '{' => {
                self.start(line, column);
                self.append(c, line, column);
                self.stack.push((closer(c), line, column));
                if self.stack.len() > MAX_DEPTH + 2 {
                    // Let the parser refuse it.
                    if let Some(form) = self.form.take() {
                        self.ready.push_back(form);
                    }
                    self.stack.clear();
                }
            }
            ')' | ']' | '}' => match self.stack.last() {
                Some(&(want, _, _)) if want == c => {
                    self.append(c, line, column);
                    self.stack.pop();
                    if self.stack.is_empty() {
                        self.complete();
                    }
                }
                Some(&(want, l, col)) => {
                    return Err(SplitError {
                        line,
                        column,
                        message: format!(
                            "unexpected '{c}' (expected '{want}' to close the collection opened at {l}:{col})"
                        ),
                    })
                }
                None => match self.wrapper {
                    Wrapper::Open { close, .. } if close == c && self.form.is_none() => {
                        self.wrapper = Wrapper::Closed { line, column };
                    }
                    _ => {
                        return Err(SplitError {
                            line,
                            column,
                            message: format!("unexpected '{c}' (no collection is open here)"),
                        })
                    }
                },
            },
            _ => {
                self.start(line, column);
                if self.stack.is_empty() && self.token.is_none() {
                    self.token = Some(self.form.as_ref().map_or(0, |f| f.text.len()));
                }
                self.append(c, line, column);
                if c == '\\' {
                    self.char_literal = true;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jepsen_forms() {
        let v = parse_one("{:type :invoke, :f :cas, :value [1 4], :process 3, :time 12}").unwrap();
        let Value::Map(m) = v else { panic!("map") };
        assert_eq!(m[0], ("type".into(), Value::Str("invoke".into())));
        assert_eq!(m[2].1, Value::List(vec![Value::Int(1), Value::Int(4)]));
        assert_eq!(parse_one("nil").unwrap(), Value::Null);
        assert_eq!(
            parse_one("\"a\\\"b\\u0041\"").unwrap(),
            Value::Str("a\"bA".into())
        );
        assert_eq!(
            parse_one("[\\( \\] \\\" \\newline \\a]").unwrap(),
            Value::List(
                ["(", "]", "\"", "\n", "a"]
                    .map(|s| Value::Str(s.into()))
                    .to_vec()
            )
        );
        assert_eq!(
            parse_one("#{1 2} ; comment").unwrap(),
            Value::List(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(
            parse_one("[1 #_ 2 3N -4 1.5 1/2]").unwrap(),
            Value::List(vec![
                Value::Int(1),
                Value::Int(3),
                Value::Int(-4),
                Value::Float(1.5),
                Value::Float(0.5)
            ])
        );
        assert_eq!(
            parse_one("#jepsen.independent.Tuple{:key 5 :value [:read nil]}").unwrap(),
            Value::List(vec![
                Value::Str("independent/tuple".into()),
                Value::Int(5),
                Value::List(vec![Value::Str("read".into()), Value::Null])
            ])
        );
    }

    fn float(text: &str) -> f64 {
        match parse_one(text) {
            Ok(Value::Float(x)) => x,
            other => panic!("{text}: expected a float, got {other:?}"),
        }
    }

    /// `##Inf`, `##-Inf` and `##NaN` are floats, as in Clojure; `inf` and `-nan` are symbols.
    #[test]
    fn reads_symbolic_floats() {
        assert_eq!(float("##Inf"), f64::INFINITY);
        assert_eq!(float("##-Inf"), f64::NEG_INFINITY);
        assert!(float("##NaN").is_nan());
        let Value::List(items) = parse_one("[1 ##NaN ##Inf]").unwrap() else {
            panic!("list")
        };
        assert_eq!(items.len(), 3);
        assert!(matches!(items[1], Value::Float(x) if x.is_nan()));
        let Value::Map(m) = parse_one("{:value ##-Inf, :f :read}").unwrap() else {
            panic!("map")
        };
        assert_eq!(m[0].1, Value::Float(f64::NEG_INFINITY));
        assert_eq!(m[1], ("f".into(), Value::Str("read".into())));
        for symbol in ["inf", "-inf", "+NaN", "infinity", "nan/nan"] {
            assert_eq!(parse_one(symbol).unwrap(), Value::Str(symbol.into()));
        }
        let e = parse_one("[1 ##Infinity]").unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(
            e.message.contains("unknown symbolic value ##Infinity"),
            "{e:?}"
        );
    }

    /// Metadata is attached to the next form and does not change its value; only a map,
    /// keyword, symbol, string or vector is metadata, and only a symbol or a collection
    /// takes it.
    #[test]
    fn reads_metadata_as_clojure_does() {
        let plain = parse_one("{:type :ok, :f :read, :value [1 2]}").unwrap();
        for text in [
            "^:meta {:type :ok, :f :read, :value [1 2]}",
            "^{:line 3, :tag [1]} {:type :ok, :f :read, :value [1 2]}",
            "^Sym ^\"tag\" ^ :k ^[a] {:type :ok, :f :read, :value ^:v [1 2]}",
            "{:type :ok, :f ^:x read, :value ^{:a ^:b {}} [1 #_ ^:c [3] 2]}",
        ] {
            assert_eq!(parse_one(text).unwrap(), plain, "{text}");
        }
        assert_eq!(
            parse_one("^:m #{1}").unwrap(),
            Value::List(vec![Value::Int(1)])
        );
        // What Clojure's reader refuses, with where.
        let refused = |text: &str| parse_one(text).unwrap_err();
        let e = refused("[^:m 1]");
        assert_eq!(e.offset, 5);
        assert!(
            e.message
                .contains("only be attached to a symbol or a collection"),
            "{e:?}"
        );
        for text in ["^:m :k", "^:m \"s\"", "^:m nil", "^:m ##NaN", "^:m \\a"] {
            assert_eq!(refused(text).offset, 4, "{text}");
        }
        let e = refused("[1 ^1 x]");
        assert_eq!(e.offset, 3);
        assert!(e.message.contains("metadata must be a map"), "{e:?}");
        assert_eq!(refused("^nil x").offset, 0);
        let e = refused("  ^:m");
        assert_eq!(e.offset, 2);
        assert!(
            e.message.contains("expected the form this metadata"),
            "{e:?}"
        );
        assert_eq!(refused("[^:m]").offset, 4);
        // A long chain of metadata, or of discards, is no stack overflow.
        let chain = format!("{}x", "^:a ".repeat(100_000));
        assert_eq!(parse_one(&chain).unwrap(), Value::Str("x".into()));
        let discards = format!("{}x", "#_ ".repeat(100_000));
        assert!(parse_one(&discards)
            .unwrap_err()
            .message
            .contains("nesting"));
    }

    fn split(lines: &[&str]) -> Vec<String> {
        let mut s = Splitter::new();
        for (i, line) in lines.iter().enumerate() {
            s.feed_line(line, i as u64 + 1).unwrap();
        }
        s.finish().unwrap();
        std::iter::from_fn(|| s.pop())
            .map(|f| f.text.trim().to_string())
            .collect()
    }

    /// At top level, metadata waits for the form it is attached to, and `##NaN` is a whole
    /// value (not a tag waiting for one).
    #[test]
    fn splitter_keeps_metadata_with_its_form() {
        assert_eq!(
            split(&[
                "^:m {:f :read}",
                "^{:a 1}",
                "{:f :write} ^ \"t\" ^Sym {:f :cas}"
            ]),
            [
                "^:m {:f :read}",
                "^{:a 1}\n{:f :write}",
                "^ \"t\" ^Sym {:f :cas}"
            ]
        );
        assert_eq!(split(&["##NaN {:f :read}"]), ["##NaN", "{:f :read}"]);
        // A history as one vector whose first op carries metadata.
        assert_eq!(
            split(&["[^:m {:f :read}", " {:f :write}]"]),
            ["^:m {:f :read}", "{:f :write}"]
        );
    }

    #[test]
    fn errors_have_offsets() {
        assert_eq!(parse_one("[1 2").unwrap_err().offset, 0);
        assert_eq!(parse_one("{:a}").unwrap_err().offset, 0);
        assert_eq!(parse_one("  \"abc").unwrap_err().offset, 2);
        assert_eq!(parse_one("1 )").unwrap_err().offset, 2);
        let deep = "[".repeat(1000);
        assert!(parse_one(&deep).unwrap_err().message.contains("nesting"));
    }
}
