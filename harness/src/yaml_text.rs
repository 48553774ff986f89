//! YAML that every reader reads back as written: serde_yaml_ng leaves plain the strings that
//! YAML 1.2 reads as strings, but YAML 1.1 readers (PyYAML, Ruby's Psych, Go's yaml.v2, ...)
//! read `off`, `yes`, `y`, `0.1.0`, `0755` or `2026-12-07T11:36:23Z` as booleans, numbers
//! and timestamps. [`to_string`] double-quotes every string (value or key) that either
//! version could read as something else.

use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};

/// `value` as YAML, with every string that a YAML 1.1 or 1.2 reader could read as something
/// other than a string (see [`ambiguous`]) double-quoted.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, serde_yaml_ng::Error> {
    let plain = serde_yaml_ng::to_string(value)?;
    // The quoted strings are first written as placeholders that appear nowhere else in the
    // text and that serde_yaml_ng writes plain, then replaced.
    let prefix = (0u32..)
        .map(|k| format!("faultlinequoted{k}q"))
        .find(|p| !plain.contains(p.as_str()))
        .unwrap_or_default();
    let mut quoted = Vec::new();
    let value = placeholders(serde_yaml_ng::to_value(value)?, &prefix, &mut quoted);
    let mut text = serde_yaml_ng::to_string(&value)?;
    // Longest placeholder first, so that `...q1z` never replaces part of `...q10z`.
    for (placeholder, original) in quoted.iter().rev() {
        let json = serde_json::to_string(original).unwrap_or_else(|_| "\"\"".into());
        text = text.replace(placeholder.as_str(), &json);
    }
    Ok(text)
}

/// `value` with every ambiguous one-line string replaced by a placeholder, recorded with the
/// string it stands for.
fn placeholders(value: Value, prefix: &str, quoted: &mut Vec<(String, String)>) -> Value {
    match value {
        Value::String(s) if !s.contains(['\n', '\r']) && ambiguous(&s) && !quoted_anyway(&s) => {
            let placeholder = format!("{prefix}{}z", quoted.len());
            quoted.push((placeholder.clone(), s));
            Value::String(placeholder)
        }
        Value::Sequence(items) => Value::Sequence(
            items
                .into_iter()
                .map(|v| placeholders(v, prefix, quoted))
                .collect(),
        ),
        Value::Mapping(m) => Value::Mapping(
            m.into_iter()
                .map(|(k, v)| {
                    let k = placeholders(k, prefix, quoted);
                    (k, placeholders(v, prefix, quoted))
                })
                .collect::<Mapping>(),
        ),
        Value::Tagged(mut t) => {
            t.value = placeholders(std::mem::take(&mut t.value), prefix, quoted);
            Value::Tagged(t)
        }
        other => other,
    }
}

/// Whether serde_yaml_ng quotes `s` itself (as it does `'2'` or `'true'`): it is then left as
/// serde_yaml_ng writes it.
fn quoted_anyway(s: &str) -> bool {
    serde_yaml_ng::to_string(s).is_ok_and(|t| t.starts_with(['\'', '"']))
}

/// Whether a YAML reader, 1.1 or 1.2, could read the plain scalar `s` as something other
/// than a string: a boolean or null of either version (`y`, `n`, `yes`, `no`, `on`, `off`,
/// `true`, `false`, `null`, `~`, the empty string, in any case), a merge or value key (`<<`,
/// `=`), anything that looks like a number of either version (integers in base 2, 8, 10 and
/// 16, with `_` and sexagesimal `:` parts, floats with dots or exponents, `.inf`, `.nan`),
/// or a timestamp (`2026-12-07`, `2026-12-07T11:36:23Z`). It errs on the side of quoting.
pub fn ambiguous(s: &str) -> bool {
    const WORDS: [&str; 11] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "",
    ];
    let lower = s.to_ascii_lowercase();
    if WORDS.contains(&lower.as_str()) || s == "<<" || s == "=" {
        return true;
    }
    let unsigned = lower.strip_prefix(['-', '+']).unwrap_or(&lower);
    if matches!(unsigned, ".inf" | ".nan") {
        return true;
    }
    number_like(unsigned) || timestamp_like(s)
}

/// Starts with a digit, or a dot and a digit, and holds only what numbers of either version
/// are written with (digits, hex digits, base prefixes, `_`, `.`, `:`, signs of exponents).
fn number_like(unsigned: &str) -> bool {
    let mut chars = unsigned.chars();
    let starts = match chars.next() {
        Some(c) if c.is_ascii_digit() => true,
        Some('.') => chars.next().is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    };
    starts
        && unsigned
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "xob_.:+-".contains(c))
}

/// Starts as a YAML 1.1 timestamp does: four digits and a dash.
fn timestamp_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// What YAML 1.1 reads as a boolean, null, number or timestamp is quoted; plain words,
    /// durations and paths are not.
    #[test]
    fn quotes_what_yaml_1_1_reads_as_something_else() {
        for s in [
            "off",
            "Off",
            "OFF",
            "on",
            "yes",
            "No",
            "y",
            "N",
            "true",
            "False",
            "null",
            "~",
            "",
            "<<",
            "=",
            "0",
            "-12",
            "+7",
            "0b1010",
            "0755",
            "0x1F",
            "1_000",
            "1:30",
            "190:20:30",
            "1.5",
            "0.1.0",
            ".5",
            "1e5",
            "6.8523015e+5",
            ".inf",
            "-.Inf",
            ".NaN",
            "2026-12-07",
            "2026-12-07T11:36:23Z",
            "2001-12-14 21:59:43.10 -5",
        ] {
            assert!(ambiguous(s), "{s:?} should be quoted");
        }
        for s in [
            "etcd",
            "2s",
            "1m 30s",
            "100ms",
            "serializable",
            "read-committed",
            "/var/lib/x.yaml",
            "local:3",
            "n1",
            "offline",
            "yesterday",
            "inf",
            "nan",
        ] {
            assert!(!ambiguous(s), "{s:?} needs no quotes");
        }
    }

    /// Values and keys are quoted where needed, the rest left plain, and the text reads back
    /// equal.
    #[test]
    fn quoted_yaml_reads_back_equal() {
        let mut m: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in [
            ("cache", "off"),
            ("on", "yes"),
            ("version", "0.1.0"),
            ("mode", "fast"),
            ("started", "2026-12-07T11:36:23Z"),
            ("quote", "say \"hi\""),
            ("lines", "a\nb"),
            ("replicas", "2"),
            ("flag", "true"),
        ] {
            m.insert(k.into(), v.into());
        }
        let text = to_string(&m).unwrap();
        for line in [
            "cache: \"off\"\n",
            "\"on\": \"yes\"\n",
            "version: \"0.1.0\"\n",
            "mode: fast\n",
            "started: \"2026-12-07T11:36:23Z\"\n",
            // What serde_yaml_ng quotes itself stays as it writes it.
            "replicas: '2'\n",
            "flag: 'true'\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        assert!(!text.contains("faultlinequoted"), "{text}");
        let back: BTreeMap<String, String> = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back, m);
    }

    /// A string that looks like a placeholder is left alone.
    #[test]
    fn placeholders_never_collide_with_the_text() {
        let m: BTreeMap<String, String> = [
            ("a".to_string(), "faultlinequoted0q0z".to_string()),
            ("b".to_string(), "off".to_string()),
        ]
        .into();
        let text = to_string(&m).unwrap();
        let back: BTreeMap<String, String> = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back, m);
        assert!(text.contains("b: \"off\"\n"), "{text}");
    }
}
