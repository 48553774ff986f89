//! A fast path for the lines faultline itself writes: one flat JSON object of known fields
//! whose values are integers, `null`, booleans, strings without escapes and arrays of those.
//!
//! [`parse`] answers only where it is sure to agree with the full parser
//! ([`super::jsonl::parse_line`]): anything else (whitespace between tokens, escapes, floats,
//! objects, a field twice, a missing required field, an unknown type, ...) returns `None`, and
//! the caller parses the line again with the full parser, which gives the same event or the
//! error with its line and column. So the fast path changes speed, never a result.

use super::Located;
use crate::history::{Event, EventKind, Key, Process, Value};

/// How deep arrays may nest on the fast path (the full parser takes deeper ones).
const MAX_DEPTH: usize = 4;

/// One token's worth of the line, read left to right.
struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// Byte offset of the first string token whose content is `f` (where the full parser's
    /// column of `"f"` points), and of the first whose content is `value`.
    first_f: Option<usize>,
    first_value: Option<usize>,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// A string without escapes or control characters; its content.
    fn string(&mut self) -> Option<&'a str> {
        let open = self.at;
        self.eat(b'"')?;
        let start = self.at;
        let len = self.bytes[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if self.bytes[start + len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        let s = self.text.get(start..start + len)?;
        if s == "f" && self.first_f.is_none() {
            self.first_f = Some(open);
        }
        if s == "value" && self.first_value.is_none() {
            self.first_value = Some(open);
        }
        Some(s)
    }

    /// The digits of a JSON integer (no sign), refusing leading zeros and anything that makes
    /// it a float.
    fn digits(&mut self) -> Option<u64> {
        let rest = &self.bytes[self.at..];
        let len = rest
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
        if len == 0 || (len > 1 && rest[0] == b'0') || len > 20 {
            return None;
        }
        let mut digits = rest[..len].iter().map(|&b| u64::from(b - b'0'));
        // Up to 19 digits cannot overflow; 20 might.
        let n = if len < 20 {
            digits.fold(0, |n, d| n * 10 + d)
        } else {
            digits.try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(d))?
        };
        self.at += len;
        match self.peek() {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(n),
        }
    }

    /// A non-negative integer.
    fn unsigned(&mut self) -> Option<u64> {
        self.digits()
    }

    /// An integer within i64 (`-0` is left to the full parser).
    fn signed(&mut self) -> Option<i64> {
        if self.eat(b'-').is_some() {
            let n = self.digits()?;
            if n == 0 {
                return None;
            }
            return 0i64.checked_sub_unsigned(n);
        }
        i64::try_from(self.digits()?).ok()
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.bytes[self.at..]
            .starts_with(word.as_bytes())
            .then(|| self.at += word.len())
    }

    /// `null`, a boolean, an integer, a plain string or an array of those.
    fn value(&mut self, depth: usize) -> Option<Value> {
        Some(match self.peek()? {
            b'n' => {
                self.literal("null")?;
                Value::Null
            }
            b't' => {
                self.literal("true")?;
                Value::Bool(true)
            }
            b'f' => {
                self.literal("false")?;
                Value::Bool(false)
            }
            b'"' => Value::Str(self.string()?.to_string()),
            b'[' if depth < MAX_DEPTH => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']').is_none() {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat(b',').is_none() {
                            self.eat(b']')?;
                            break;
                        }
                    }
                }
                Value::List(items)
            }
            b'-' | b'0'..=b'9' => Value::Int(self.signed()?),
            _ => return None,
        })
    }

    /// `null` or what `some` reads.
    fn nullable<T>(&mut self, some: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        some(self).map(Some)
    }

    /// The 1-based column (in characters) of a byte offset.
    fn column(&self, at: Option<usize>, ascii: bool) -> u64 {
        match at {
            None => 1,
            Some(b) if ascii => b as u64 + 1,
            Some(b) => self.text[..b].chars().count() as u64 + 1,
        }
    }
}

/// The fields of one line as the fast path read them.
#[derive(Default)]
struct Fields {
    index: Option<u64>,
    time: Option<Option<u64>>,
    process: Option<Process>,
    kind: Option<EventKind>,
    f: Option<String>,
    key: Option<Option<Key>>,
    value: Option<Value>,
    error: Option<Option<String>>,
    node: Option<Option<String>>,
}

/// Reads one field's value into `fields`; `None` when the field is unknown, repeated or not of
/// the plain shape.
fn field(c: &mut Cursor<'_>, name: &str, fields: &mut Fields) -> Option<()> {
    fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
        slot.is_none().then(|| *slot = Some(v))
    }
    match name {
        "index" => {
            let v = c.unsigned()?;
            once(&mut fields.index, v)
        }
        "time" => {
            let v = c.nullable(|c| c.unsigned())?;
            once(&mut fields.time, v)
        }
        "process" => {
            let v = if c.peek()? == b'"' {
                Process::Named(c.string()?.to_string())
            } else {
                Process::Client(c.unsigned()?)
            };
            once(&mut fields.process, v)
        }
        "type" => {
            let v = EventKind::parse(c.string()?)?;
            once(&mut fields.kind, v)
        }
        "f" => {
            let v = c.string()?.to_string();
            once(&mut fields.f, v)
        }
        "key" => {
            let v = c.nullable(|c| {
                if c.peek()? == b'"' {
                    Some(Key::Str(c.string()?.to_string()))
                } else {
                    Some(Key::Int(c.signed()?))
                }
            })?;
            once(&mut fields.key, v)
        }
        "value" => {
            let v = c.value(0)?;
            once(&mut fields.value, v)
        }
        "error" => {
            let v = c.nullable(|c| c.string().map(str::to_string))?;
            once(&mut fields.error, v)
        }
        "node" => {
            let v = c.nullable(|c| c.string().map(str::to_string))?;
            once(&mut fields.node, v)
        }
        _ => None,
    }
}

/// Parses a line of the plain shape faultline writes, or `None` (then the full parser must).
pub(crate) fn parse(text: &str, line: u64) -> Option<Located> {
    let mut c = Cursor {
        text,
        bytes: text.as_bytes(),
        at: 0,
        first_f: None,
        first_value: None,
    };
    let mut fields = Fields::default();
    c.eat(b'{')?;
    if c.eat(b'}').is_none() {
        loop {
            let name = c.string()?;
            c.eat(b':')?;
            field(&mut c, name, &mut fields)?;
            if c.eat(b',').is_none() {
                c.eat(b'}')?;
                break;
            }
        }
    }
    if c.at != c.bytes.len() {
        return None;
    }
    let ascii = text.is_ascii();
    Some(Located {
        line,
        f_column: c.column(c.first_f, ascii),
        value_column: c.column(c.first_value, ascii),
        event: Event {
            index: fields.index?,
            time: fields.time.flatten(),
            process: fields.process?,
            kind: fields.kind?,
            f: fields.f?,
            key: fields.key.flatten(),
            value: fields.value.unwrap_or(Value::Null),
            error: fields.error.flatten(),
            node: fields.node.flatten(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::jsonl::parse_line;

    /// Where the fast path answers, it answers as the full parser does.
    fn agrees(text: &str) -> bool {
        let fast = parse(text, 7);
        let full = parse_line(text, "t", 7);
        match (&fast, &full) {
            (Some(a), Ok(b)) => {
                assert_eq!(a, b, "{text}");
                true
            }
            (Some(a), Err(e)) => panic!("fast path took {text:?} as {a:?}; full parser: {e}"),
            (None, _) => false,
        }
    }

    #[test]
    fn plain_lines_take_the_fast_path_and_agree() {
        for text in [
            r#"{"index":0,"time":12,"process":3,"type":"invoke","f":"cas","key":17,"value":[1,2]}"#,
            r#"{"index":1,"process":3,"type":"ok","f":"read","key":-4,"value":null}"#,
            r#"{"value":"x","f":"write","type":"info","process":"nemesis","index":9,"error":"timeout","node":"n1"}"#,
            r#"{"index":2,"time":null,"process":0,"type":"fail","f":"add","key":"k1","value":[[1,[true,false]],"é"],"error":null}"#,
            r#"{"index":18446744073709551615,"process":0,"type":"ok","f":"value","key":-9223372036854775808,"value":9223372036854775807}"#,
            r#"{"index":3,"process":"f","type":"ok","f":"r","value":[]}"#,
            r#"{"index":3,"process":"ü","type":"ok","f":"r","key":"value","value":0}"#,
        ] {
            assert!(agrees(text), "expected the fast path to take {text}");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_the_full_parser() {
        for text in [
            r#"{"index":0, "process":3,"type":"invoke","f":"cas","value":1}"#,
            r#"{"index":0,"process":3,"type":"invoke","f":"cas","value":1} "#,
            r#"{"index":0,"process":3,"type":"invoke","f":"cas","value":1.5}"#,
            r#"{"index":0,"process":3,"type":"invoke","f":"cas","value":1e3}"#,
            r#"{"index":0,"process":3,"type":"invoke","f":"cas","value":-0}"#,
            r#"{"index":0,"process":3,"type":"invoke","f":"cas","value":01}"#,
            r#"{"index":0,"process":3,"type":"invoke","f":"cas","value":9223372036854775808}"#,
            r#"{"index":0,"process":3,"type":"invoke","f":"cas","value":{"a":1}}"#,
            r#"{"index":0,"process":3,"type":"invoke","f":"c\"as","value":1}"#,
            r#"{"index":0,"process":-3,"type":"invoke","f":"cas","value":1}"#,
            r#"{"index":0,"process":3,"type":"okay","f":"cas","value":1}"#,
            r#"{"index":0,"index":1,"process":3,"type":"ok","f":"cas","value":1}"#,
            r#"{"index":0,"process":3,"type":"ok","value":1}"#,
            r#"{"index":0,"process":3,"type":"ok","f":"cas","valu":1}"#,
            r#"{"index":"0","process":3,"type":"ok","f":"cas"}"#,
            r#"{"index":18446744073709551616,"process":3,"type":"ok","f":"cas"}"#,
            r#"{"index":99999999999999999999,"process":3,"type":"ok","f":"cas"}"#,
            r#"{"index":100000000000000000000,"process":3,"type":"ok","f":"cas"}"#,
            r#"{"index":1,"process":3,"type":"ok","f":"cas","key":-9223372036854775809}"#,
            r#"{"index":0,"process":3,"type":"ok","f":"cas","value":[1,2,]}"#,
            r#"{"index":0,"process":3,"type":"ok","f":"cas","value":[[[[[1]]]]]}"#,
            r#"{"index":0,"process":3,"type":"ok","f":"cas","value":nul}"#,
            r#"{"index":0,"process":3,"type":"ok","f":"cas","value":1}}"#,
            "{\"index\":0,\"process\":3,\"type\":\"ok\",\"f\":\"c\tas\"}",
            r#"{}"#,
            r#"[1]"#,
        ] {
            assert!(!agrees(text), "expected the full parser for {text}");
        }
    }

    /// Random damage to plain lines: the fast path never accepts what the full parser refuses
    /// or reads differently.
    #[test]
    fn damaged_lines_never_disagree() {
        let base = r#"{"index":10,"time":123,"process":4,"type":"ok","f":"cas","key":-7,"value":[null,"ab",true]}"#;
        let alphabet = b"{}[]\",:0123456789-.eE nultrfasvxk\\";
        let mut rng = crate::generate::Rng::new(1);
        let mut fast = 0;
        for _ in 0..20_000 {
            let mut bytes = base.as_bytes().to_vec();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(bytes.len() as u64) as usize;
                let b = alphabet[rng.below(alphabet.len() as u64) as usize];
                match rng.below(3) {
                    0 => bytes[at] = b,
                    1 => bytes.insert(at, b),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                fast += usize::from(agrees(text));
            }
        }
        assert!(fast > 100, "some damaged lines are still plain: {fast}");
    }
}
