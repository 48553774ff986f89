//! The one verdict type every checker returns.
//!
//! In JSON documents (`--json`, results.json) a verdict is written as DESIGN.md says:
//! `true` (valid), `false` (invalid) or `"unknown"`; [`json`] is the serde adapter for that.
//!
//! ```
//! use checkers::Verdict;
//! assert_eq!(Verdict::combine([Verdict::Valid, Verdict::Unknown]), Verdict::Unknown);
//! assert_eq!(Verdict::combine([Verdict::Unknown, Verdict::Invalid]), Verdict::Invalid);
//! ```

use serde::{Deserialize, Serialize};

/// A checker's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The history meets the model.
    Valid,
    /// The history violates the model.
    Invalid,
    /// Undecided: a limit stopped the check, or the history cannot decide it.
    Unknown,
}

impl Verdict {
    /// Invalid if any is invalid, else unknown if any is unknown, else valid (also for none).
    pub fn combine(all: impl IntoIterator<Item = Verdict>) -> Verdict {
        all.into_iter()
            .fold(Verdict::Valid, |acc, v| match (acc, v) {
                (Verdict::Invalid, _) | (_, Verdict::Invalid) => Verdict::Invalid,
                (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
                _ => Verdict::Valid,
            })
    }

    /// `valid`, `invalid` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serde adapter writing a [`Verdict`] as `true`, `false` or `"unknown"`, and reading those
/// (and the lowercase names) back: `#[serde(with = "checkers::verdict::json")]`.
pub mod json {
    use super::Verdict;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `true`, `false` or `"unknown"`.
    pub fn serialize<S: Serializer>(v: &Verdict, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Verdict::Valid => s.serialize_bool(true),
            Verdict::Invalid => s.serialize_bool(false),
            Verdict::Unknown => s.serialize_str("unknown"),
        }
    }

    /// Reads `true`, `false`, `"unknown"` (or `"valid"`, `"invalid"`).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Verdict, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(Verdict::Valid),
            Raw::Bool(false) => Ok(Verdict::Invalid),
            Raw::Text(t) => match t.as_str() {
                "unknown" => Ok(Verdict::Unknown),
                "valid" => Ok(Verdict::Valid),
                "invalid" => Ok(Verdict::Invalid),
                other => Err(serde::de::Error::custom(format!(
                    "verdict {other:?}: expected true, false or \"unknown\""
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Doc {
        #[serde(with = "json")]
        valid: Verdict,
    }

    #[test]
    fn json_round_trip() {
        for (v, text) in [
            (Verdict::Valid, r#"{"valid":true}"#),
            (Verdict::Invalid, r#"{"valid":false}"#),
            (Verdict::Unknown, r#"{"valid":"unknown"}"#),
        ] {
            assert_eq!(serde_json::to_string(&Doc { valid: v }).unwrap(), text);
            assert_eq!(serde_json::from_str::<Doc>(text).unwrap(), Doc { valid: v });
        }
        assert!(serde_json::from_str::<Doc>(r#"{"valid":"maybe"}"#).is_err());
    }
}
