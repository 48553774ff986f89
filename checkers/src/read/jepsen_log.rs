//! Jepsen's text logs: lines such as `INFO  jepsen.util - 3 :invoke :cas [1 4]`, or with a
//! timestamp and thread, `2017-05-08 13:24:51,243{GMT} INFO [jepsen worker 3] jepsen.util: 3 :invoke :read nil`.
//! Lines without the `jepsen.util` marker are other log output and are skipped.

use super::edn;
use super::{event_from_parts, Located};
use crate::error::InputError;
use crate::history::Value;

const MARKER: &str = "jepsen.util";

/// Parses one log line; `Ok(None)` for lines that are not op lines.
pub(crate) fn parse_line(
    text: &str,
    file: &str,
    line: u64,
    index: u64,
) -> Result<Option<Located>, InputError> {
    let Some(at) = text.find(MARKER) else {
        return Ok(None);
    };
    let mut rest_start = at + MARKER.len();
    let after = &text[rest_start..];
    let trimmed = after.trim_start();
    rest_start += after.len() - trimmed.len();
    let sep = if trimmed.starts_with('-') || trimmed.starts_with(':') {
        1
    } else {
        0
    };
    rest_start += sep;
    let col = |byte: usize| text[..byte.min(text.len())].chars().count() as u64 + 1;
    // Fields: process, :type, :f, then the value (the rest of the line, EDN).
    let mut fields = Vec::with_capacity(3);
    let mut pos = rest_start;
    for _ in 0..3 {
        let s = &text[pos..];
        let skip = s.len() - s.trim_start().len();
        let start = pos + skip;
        let len = text[start..]
            .find(char::is_whitespace)
            .unwrap_or(text.len() - start);
        if len == 0 {
            let what = [
                "a process",
                "a type such as :invoke",
                "a function such as :read",
            ][fields.len()];
            return Err(InputError::at(
                file,
                line,
                col(start),
                format!("expected {what} after `jepsen.util -`"),
            ));
        }
        fields.push((start, &text[start..start + len]));
        pos = start + len;
    }
    let value_start = pos + (text[pos..].len() - text[pos..].trim_start().len());
    let value_text = text[value_start..].trim_end();
    let value = if value_text.is_empty() {
        Value::Null
    } else {
        edn::parse_one(value_text).map_err(|e| {
            let byte = value_text
                .char_indices()
                .nth(e.offset)
                .map_or(value_text.len(), |(b, _)| b);
            InputError::at(
                file,
                line,
                col(value_start + byte),
                format!("{} (in the op's value)", e.message),
            )
        })?
    };
    let field_value = |(start, token): (usize, &str)| -> Value {
        let _ = start;
        match edn::parse_one(token) {
            Ok(v) => v,
            Err(_) => Value::Str(token.to_string()),
        }
    };
    let (p_at, _) = fields[0];
    let (t_at, _) = fields[1];
    let (f_at, _) = fields[2];
    let event = event_from_parts(
        field_value(fields[0]),
        field_value(fields[1]),
        field_value(fields[2]),
        value,
        index,
    )
    .map_err(|(which, msg)| {
        let at = match which {
            0 => p_at,
            1 => t_at,
            _ => f_at,
        };
        InputError::at(file, line, col(at), msg)
    })?;
    Ok(Some(Located {
        line,
        f_column: col(f_at),
        value_column: col(value_start),
        event,
    }))
}
