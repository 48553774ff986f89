//! Databases and workloads: what faultline tests and how.
//!
//! - [`db`]: the [`DatabaseKind`] trait (options, served workloads, opening) and the
//!   [`Database`] trait, the hooks the harness and the nemesis call on nodes
//!   (install, configure, start, wait until ready, kill, wipe, primaries, logs).
//! - [`etcd`]: etcd as a [`Database`], and its client over etcd's v3 JSON gateway.
//! - [`op`]: operations, their outcomes, and the [`Client`] trait a database's client implements.
//! - [`gen`]: generator combinators (mix, limit, time limit, stagger, phases, per worker).
//! - [`workload`]: the [`Workload`] trait and the workloads (`register`, `cas-register`,
//!   `set`): op streams, final ops and the checker that judges their histories.
//! - [`list_append`]: the transactional `list-append` workload ([`Op::Txn`]).
//! - [`sql`]: the transactional SQL client core (phases, outcome classification, rollback,
//!   one transaction at a time per connection); each SQL database brings a `Driver` with
//!   only what differs.
//! - [`postgres`]: PostgreSQL 15 (a primary, optional streaming replicas) as a [`Database`]
//!   (options, server, and its client's driver on tokio-postgres).
//! - [`isolation`]: the isolation levels the SQL databases run transactions at.
//! - [`rw_register`]: the transactional `rw-register` workload ([`Op::Txn`] of writes and
//!   reads of registers).
//! - [`mariadb`]: MariaDB 10.11 (one server) as a [`Database`], the server's node-side pieces
//!   and their client's driver on mysql_async; [`galera`]: MariaDB with Galera on every node.
//! - [`adapter`]: databases without Rust: a definition file (`--db FILE.yaml`) and a client
//!   adapter in any language speaking JSON lines.
//! - [`registry`]: every database and workload by name; extended without edits elsewhere.

#![warn(missing_docs)]

pub mod adapter;
pub mod db;
pub mod etcd;
pub mod galera;
pub mod gen;
pub mod isolation;
pub mod list_append;
pub mod mariadb;
pub mod op;
pub mod postgres;
pub mod registry;
pub mod rw_register;
pub mod sql;
pub mod workload;

pub use db::{Database, DatabaseKind, DbConfig, DbError, DbOptions};
pub use op::{Client, Op, Outcome};
pub use registry::Registry;
pub use workload::Workload;
