//! Databases and workloads: what faultline tests and how.
//!
//! - [`db`]: the [`Database`] trait, the hooks the harness and the nemesis call on nodes
//!   (install, configure, start, wait until ready, kill, pause, resume, wipe, primaries, logs),
//!   and the registry of databases by name.
//! - [`etcd`]: etcd as a [`Database`], and its client over etcd's v3 JSON gateway.
//! - [`op`]: operations, their outcomes, and the [`Client`] trait a database's client implements.
//! - [`gen`]: generator combinators (mix, limit, time limit, stagger, phases, per worker).
//! - [`workload`]: the workloads (`register`, `cas-register`, `set`): op generators and the
//!   model or checker that judges their histories.

#![warn(missing_docs)]

pub mod db;
pub mod etcd;
pub mod gen;
pub mod op;
pub mod workload;

pub use db::{Database, DbError};
pub use op::{Client, Op, Outcome};
