//! Register and cas-register: a single integer cell, initially `null` unless told otherwise.

use super::{describe, register_zones, FastVerdict, Model, Outcome};
use crate::history::Value;
use crate::linear::Operation;
use std::collections::HashSet;

/// A register value: an integer or `null`.
pub type RegValue = Option<i64>;

/// An operation on a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOp {
    /// A read that returned this value.
    Read(RegValue),
    /// A write of this value (its completion may be unknown: writes always succeed).
    Write(i64),
    /// Compare-and-set from `expect` to `new`. `known` is true when the op completed `ok`;
    /// with an unknown outcome it either took effect (only if the value was `expect`) or not.
    Cas {
        /// The value the register must hold.
        expect: RegValue,
        /// The value written when it does.
        new: i64,
        /// True for an `ok` completion.
        known: bool,
    },
}

/// The register (`read`, `write`) and cas-register (`read`, `write`, `cas`) models.
#[derive(Debug, Clone)]
pub struct Register {
    /// Whether `cas` is allowed (the cas-register model).
    pub cas: bool,
    /// The initial value (`null` by default; Knossos histories often start at 0).
    pub initial: RegValue,
    /// Knossos's convention: an `ok` read of `null` means "value unknown" and matches any state.
    pub nil_read_unknown: bool,
}

impl Register {
    /// The plain register model.
    pub fn read_write() -> Register {
        Register {
            cas: false,
            initial: None,
            nil_read_unknown: false,
        }
    }

    /// The cas-register model.
    pub fn cas_register() -> Register {
        Register {
            cas: true,
            ..Register::read_write()
        }
    }
}

fn reg_value(v: &Value, what: &str) -> Result<RegValue, String> {
    match v {
        Value::Null => Ok(None),
        Value::Int(i) => Ok(Some(*i)),
        other => Err(format!(
            "{what}: expected an integer or null, found {}",
            describe(other)
        )),
    }
}

/// An `ok` write or cas returns the value it was invoked with (or `null`: no result given).
/// Another value is an inconsistent completion, refused as bad input like the others.
fn completes_as_invoked(f: &str, invoke: &Value, outcome: Outcome<'_>) -> Result<(), String> {
    match outcome {
        Outcome::Ok(v) if *v != Value::Null && v != invoke => Err(format!(
            "{f}: the ok completion carries {} but it was invoked with {} (expected the invoked value, or null)",
            describe(v),
            describe(invoke)
        )),
        _ => Ok(()),
    }
}

fn show(v: RegValue) -> String {
    v.map_or_else(|| "null".to_string(), |i| i.to_string())
}

impl Model for Register {
    type State = RegValue;
    type Op = RegisterOp;

    fn name(&self) -> &'static str {
        if self.cas {
            "cas-register"
        } else {
            "register"
        }
    }

    fn functions(&self) -> &'static [&'static str] {
        if self.cas {
            &["read", "write", "cas"]
        } else {
            &["read", "write"]
        }
    }

    fn init(&self) -> RegValue {
        self.initial
    }

    fn parse_op(
        &self,
        f: &str,
        invoke: &Value,
        outcome: Outcome<'_>,
    ) -> Result<Option<RegisterOp>, String> {
        match f {
            "read" => match outcome {
                Outcome::Unknown => Ok(None),
                Outcome::Ok(v) => match reg_value(v, "read result")? {
                    None if self.nil_read_unknown => Ok(None),
                    r => Ok(Some(RegisterOp::Read(r))),
                },
            },
            "write" => match invoke {
                Value::Int(i) => {
                    completes_as_invoked(f, invoke, outcome)?;
                    Ok(Some(RegisterOp::Write(*i)))
                }
                other => Err(format!(
                    "write: expected an integer value, found {}",
                    describe(other)
                )),
            },
            "cas" if self.cas => match invoke.as_list() {
                Some([e, n]) => {
                    let expect = reg_value(e, "cas expected value")?;
                    let new = n.as_int().ok_or_else(|| {
                        format!("cas new value: expected an integer, found {}", describe(n))
                    })?;
                    completes_as_invoked(f, invoke, outcome)?;
                    Ok(Some(RegisterOp::Cas {
                        expect,
                        new,
                        known: matches!(outcome, Outcome::Ok(_)),
                    }))
                }
                _ => Err(format!(
                    "cas: expected [expected, new], found {}",
                    describe(invoke)
                )),
            },
            other => Err(format!(
                "the {} model has no function {other:?} (expected one of {})",
                self.name(),
                self.functions().join(", ")
            )),
        }
    }

    fn step(&self, state: &RegValue, op: &RegisterOp) -> Option<RegValue> {
        match *op {
            RegisterOp::Read(v) => (v == *state).then_some(*state),
            RegisterOp::Write(v) => Some(Some(v)),
            RegisterOp::Cas { expect, new, known } => {
                if *state == expect {
                    Some(Some(new))
                } else if known {
                    None
                } else {
                    Some(*state)
                }
            }
        }
    }

    fn show_op(&self, op: &RegisterOp) -> String {
        match *op {
            RegisterOp::Read(v) => format!("read -> {}", show(v)),
            RegisterOp::Write(v) => format!("write {v}"),
            RegisterOp::Cas { expect, new, known } => {
                format!(
                    "cas {} -> {new}{}",
                    show(expect),
                    if known { "" } else { " (unknown outcome)" }
                )
            }
        }
    }

    /// Distinct written values: the zone procedure of [`register_zones`]. Otherwise, only a
    /// cheap pruning: a read (or successful cas) of a value that no op wrote and that is not the
    /// initial value makes the history invalid without any search.
    fn fast_check(&self, ops: &[Operation<RegisterOp>]) -> Option<FastVerdict> {
        if let Some(v) = register_zones::check(self.initial, ops) {
            return Some(v);
        }
        let mut written: HashSet<RegValue> = HashSet::with_capacity(ops.len());
        written.insert(self.initial);
        for op in ops {
            match op.op {
                RegisterOp::Write(v) | RegisterOp::Cas { new: v, .. } => written.insert(Some(v)),
                RegisterOp::Read(_) => false,
            };
        }
        ops.iter().find_map(|op| match op.op {
            RegisterOp::Read(v)
            | RegisterOp::Cas {
                expect: v,
                known: true,
                ..
            } if !written.contains(&v) => Some(FastVerdict::Invalid(format!(
                "op {} ({}) needs the value {}, which no op wrote",
                op.invoke_index,
                self.show_op(&op.op),
                show(v)
            ))),
            _ => None,
        })
    }

    fn show_state(&self, state: &RegValue) -> String {
        show(*state)
    }
}
