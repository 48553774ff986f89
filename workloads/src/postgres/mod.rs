//! PostgreSQL 15 (Debian's `postgresql-15`) as a [`Database`]: one primary, optionally with
//! streaming replicas, and its transactional client on tokio-postgres.
//!
//! The primary is the cluster's first node (`n1` on local clusters). With `replicas=N`, the
//! next N nodes run asynchronous streaming replicas (hot standbys): each is made by
//! `pg_basebackup` from the primary when it first starts, and follows it from then on; the
//! other nodes run nothing. Every transaction that writes goes to the primary; with
//! `reads=replicas`, a worker bound to a replica runs its read-only transactions there (at
//! `REPEATABLE READ READ ONLY`: a standby has no serializable mode), as an application that
//! offloads reads does, which is where users ask about stale reads.
//! On the primary, faultline runs `initdb` into `/var/lib/faultline-db/postgres/data`, writes
//! its own `pg_hba.conf` and `faultline.conf` (included from `postgresql.conf`), and starts
//! `postgres` as the `postgres` user with its own pid file, logging to
//! `/var/log/faultline-db/postgres.log`. The binaries are Debian's, under
//! `/usr/lib/postgresql/15/bin`: a local namespace node sees this machine's; another node's apt
//! installs `postgresql-15` when they are missing (`install`). A killed primary is started
//! again on the same data directory and recovers from its WAL.
//!
//! Options: `isolation` (the level of every transaction), `replicas` and `reads` (above), and
//! `consistency` (the model the run is checked against, by default what the deployment
//! promises: see [`PostgresOptions::promises`]).
//!
//! The client runs each [`crate::op::Op::Txn`] through the SQL core ([`crate::sql`]) as `BEGIN
//! ISOLATION LEVEL ...`, one statement per micro-op (an append is one `INSERT ... ON CONFLICT
//! (k) DO UPDATE SET v = v || ...`, a rw-register write one `INSERT ... ON CONFLICT (k) DO
//! UPDATE SET v = EXCLUDED.v`, a read one `SELECT v`), then `COMMIT`, on one connection per
//! worker; [`classify`] decides each outcome.
//!
//! - [`options`]: the options, typed, and what a deployment promises;
//! - [`server`]: PostgreSQL on the nodes (install, initdb, start, replicas, readiness);
//! - [`client`]: what PostgreSQL's client brings to the SQL core (tokio-postgres).

pub mod client;
pub mod options;
pub mod server;

pub use crate::db::Install;
pub use crate::isolation::Isolation;
pub use client::{classify, PostgresClient, PostgresDriver, ABORTED};
pub use options::{PostgresOptions, Reads};
pub use server::Postgres;

use crate::db::{DatabaseKind, DbConfig, DbError, DbOptions};
use std::sync::Arc;

/// Where PostgreSQL keeps everything on the primary (the node's private data directory).
pub const DIR: &str = "/var/lib/faultline-db/postgres";
/// The data directory (`PGDATA`).
pub const DATA: &str = "/var/lib/faultline-db/postgres/data";
/// The server's log (collected into `nodes/<node>/`).
pub const LOG: &str = "/var/log/faultline-db/postgres.log";
/// The postmaster's PID, written by the start script.
pub(crate) const PIDFILE: &str = "/var/lib/faultline-db/postgres/postgres.pid";
/// The superuser's password, for initdb.
pub(crate) const PWFILE: &str = "/var/lib/faultline-db/postgres/pwfile";
/// Debian's binaries of PostgreSQL 15.
pub const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The Debian package that provides them.
pub const PACKAGE: &str = "postgresql-15";
/// The port: not 5432, where a Debian package's own cluster may listen.
pub const PORT: u16 = 55432;
/// The list-append table: one row per key, its list as a `bigint[]`.
pub const APPEND_TABLE: &str = "faultline_append";
/// The rw-register table: one row per key, its value as a `bigint`.
pub const REGISTER_TABLE: &str = "faultline_register";
/// The user clients log in as.
pub(crate) const USER: &str = "postgres";
/// A replica's password file for reaching the primary (the postgres user's, mode 0600).
pub(crate) const PGPASS: &str = "/var/lib/faultline-db/postgres/pgpass";

/// PostgreSQL as `--db postgres` names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresKind;

impl DatabaseKind for PostgresKind {
    fn name(&self) -> &str {
        "postgres"
    }
    fn about(&self) -> &str {
        "PostgreSQL 15 (Debian's postgresql-15), one primary and optional streaming replicas, transactions at a chosen isolation level"
    }
    fn workloads(&self) -> Vec<&str> {
        crate::sql::SqlWorkload::NAMES.to_vec()
    }
    fn option_help(&self) -> &[(&str, &str)] {
        &[
            ("install", "auto (the node's own postgresql-15, else its apt), package (apt-get install postgresql-15), or never [default: auto]; also --db-install"),
            ("isolation", "read-committed, repeatable-read or serializable: the level of every transaction [default: serializable]; also --isolation"),
            ("replicas", "how many asynchronous streaming replicas follow the primary, on the nodes after it [default: 0]"),
            ("reads", "primary, or replicas: workers bound to a replica run read-only transactions there [default: primary]"),
            ("fsync", "on or off: PostgreSQL's fsync; off acknowledges writes a power loss can lose or corrupt [default: on]"),
            ("synchronous-commit", "on, off, local, remote_write or remote_apply: PostgreSQL's synchronous_commit; off acknowledges commits before their WAL is flushed [default: on]"),
            ("consistency", "the model the history is checked against [default: what the deployment promises: read-committed, snapshot-isolation, strict-serializable on the primary alone; at most snapshot-isolation with reads=replicas]; also --consistency"),
        ]
    }
    fn configure(&self, given: &DbOptions) -> Result<Arc<dyn DbConfig>, DbError> {
        Ok(Arc::new(PostgresOptions::parse(given)?))
    }
}
