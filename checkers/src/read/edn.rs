//! A small EDN reader: enough of EDN for Jepsen histories, with positions for errors.
//!
//! Supported: `nil`, booleans, integers (with an optional `N`), floats and ratios (as floats),
//! strings with escapes, characters, keywords and symbols (as strings, keywords without the
//! colon), vectors, lists, sets, maps, comments, `#_` discards and tagged literals (the tag is
//! dropped, except `#jepsen.independent.Tuple{:key k :value v}`, read as
//! `["independent/tuple", k, v]`). Nesting deeper than [`MAX_DEPTH`] is refused.
//!
//! No well-kept EDN crate on crates.io reports error positions and reads one line at a time
//! (`edn-format` and `edn-rs` parse whole documents and report no column), so this is ~250
//! lines with its own tests and a fuzz target.

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
        loop {
            match self.chars.get(self.pos) {
                Some(c) if c.is_whitespace() || *c == ',' => self.pos += 1,
                Some(';') => {
                    while self.chars.get(self.pos).is_some_and(|c| *c != '\n') {
                        self.pos += 1;
                    }
                }
                Some('#') if self.chars.get(self.pos + 1) == Some(&'_') => {
                    self.pos += 2;
                    self.value(1)?;
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

    fn value(&mut self, depth: usize) -> Result<Value, EdnError> {
        self.skip_ws()?;
        let start = self.pos;
        if depth > MAX_DEPTH {
            return self.err(start, format!("nesting deeper than {MAX_DEPTH} levels"));
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
                let tok = self.token();
                if tok.is_empty() {
                    return self.err(start, "a character literal needs a character after \\");
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
                    _ => self.err(start, "unsupported # dispatch (expected #{, #_ or a tag)"),
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
    if let Ok(x) = f.parse::<f64>() {
        if f.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.') {
            return Value::Float(x);
        }
    }
    if let Some((n, d)) = tok.split_once('/') {
        if let (Ok(n), Ok(d)) = (n.parse::<f64>(), d.parse::<f64>()) {
            return Value::Float(n / d);
        }
    }
    Value::Str(tok.to_string())
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
