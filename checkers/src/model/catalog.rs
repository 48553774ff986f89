//! The models known by name, and a way to run generic code with the one a user chose.

use super::{Counter, Kv, Model, Mutex, Queue, Register, Set};
use crate::history::Value;

/// The names accepted by `--model`.
pub const MODEL_NAMES: &[&str] = &[
    "register",
    "cas-register",
    "set",
    "counter",
    "queue",
    "mutex",
    "kv",
];

/// Options that adjust a model to a history's conventions (Knossos and Jepsen).
#[derive(Debug, Clone, Default)]
pub struct ModelOptions {
    /// The initial value (register and cas-register only; default `null`).
    pub initial: Option<Value>,
    /// Knossos's convention: an `ok` read of `null` matches any state.
    pub nil_read_unknown: bool,
}

/// Code that works with any model: [`with_model`] calls it with the model a name picks.
pub trait ModelVisitor {
    /// What the code returns.
    type Output;
    /// Runs with the chosen model.
    fn visit<M: Model>(self, model: &M) -> Self::Output;
}

/// Why a model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No model has that name.
    #[error("unknown model {0:?} (expected one of: {list})", list = MODEL_NAMES.join(", "))]
    Unknown(String),
    /// An option does not fit the model.
    #[error("{0}")]
    BadOption(String),
}

fn register(mut base: Register, options: &ModelOptions) -> Result<Register, ModelError> {
    base.nil_read_unknown = options.nil_read_unknown;
    base.initial = match &options.initial {
        None | Some(Value::Null) => None,
        Some(Value::Int(i)) => Some(*i),
        Some(other) => {
            return Err(ModelError::BadOption(format!(
                "--initial for {}: expected an integer or null, found {other}",
                base.name()
            )))
        }
    };
    Ok(base)
}

/// Builds the model called `name` with `options` and runs `visitor` with it.
pub fn with_model<V: ModelVisitor>(
    name: &str,
    options: &ModelOptions,
    visitor: V,
) -> Result<V::Output, ModelError> {
    match name {
        "register" => Ok(visitor.visit(&register(Register::read_write(), options)?)),
        "cas-register" => Ok(visitor.visit(&register(Register::cas_register(), options)?)),
        "set" | "counter" | "queue" | "mutex" | "kv" if options.initial.is_some() => {
            Err(ModelError::BadOption(format!(
                "--initial applies to register and cas-register only, not {name}"
            )))
        }
        "set" => Ok(visitor.visit(&Set)),
        "counter" => Ok(visitor.visit(&Counter)),
        "queue" => Ok(visitor.visit(&Queue)),
        "mutex" => Ok(visitor.visit(&Mutex)),
        "kv" => Ok(visitor.visit(&Kv)),
        other => Err(ModelError::Unknown(other.to_string())),
    }
}
