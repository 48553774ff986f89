//! Exit codes and the two kinds of failure that map to them.

use std::process::ExitCode;

/// The exit codes of DESIGN.md, shared by `check`, `test` and `analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: the history is valid (or the command succeeded).
    Valid = 0,
    /// 1: the history is invalid.
    Invalid = 1,
    /// 2: undecided: a time or memory budget ran out.
    Unknown = 2,
    /// 3: valid, but the run tested too little to mean much (`test --strict-power`; see
    /// [`crate::power::Power::weak`]). Without `--strict-power` such a run exits 0.
    Weak = 3,
    /// 254: bad usage or unreadable input.
    BadInput = 254,
    /// 255: an internal error.
    Internal = 255,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// A command that could not finish.
#[derive(Debug)]
pub enum Failure {
    /// The user's input or options are wrong (exit 254).
    BadInput(anyhow::Error),
    /// Something went wrong inside faultline or its environment (exit 255).
    Internal(anyhow::Error),
}

/// Shorthand for a bad-input failure.
pub fn bad_input(e: impl Into<anyhow::Error>) -> Failure {
    Failure::BadInput(e.into())
}

/// Shorthand for an internal failure.
pub fn internal(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Internal(e.into())
}

/// The failure a nemesis error is: a fault that cannot be applied as asked is bad input; the
/// journal, the nodes or SSH failing are internal.
pub fn nemesis_failure(e: nemesis::NemesisError) -> Failure {
    use nemesis::NemesisError;
    match e {
        NemesisError::BadFault(_) | NemesisError::Refused(_) | NemesisError::NoHooks(_) => {
            bad_input(e)
        }
        NemesisError::Journal { .. } => internal(e),
        other => Failure::Internal(anyhow::Error::new(other)),
    }
}
