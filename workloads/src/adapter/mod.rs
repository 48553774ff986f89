//! Databases without Rust: a database definition file (YAML) and a client adapter in any
//! language, speaking JSON lines on stdin and stdout (docs/adapter-protocol.md).
//!
//! - [`protocol`]: the messages and the table of error codes (definite: `fail`; indefinite
//!   and unknown: `info`).
//! - [`client`]: [`AdapterClient`], a [`crate::Client`] driving one adapter process, which
//!   keeps the history's discipline whatever the adapter does (hangs, crashes, garbage).
//! - [`template`]: the templates of a definition's commands, files and paths.
//! - [`definition`]: the definition file, and [`FileDbKind`] / `FileDb`, a [`crate::DatabaseKind`]
//!   and [`crate::Database`] made from it.

pub mod client;
pub mod definition;
pub mod protocol;
pub mod template;

pub use client::{AdapterClient, AdapterError, AdapterSpec};
pub use definition::{Definition, FileDbKind};
