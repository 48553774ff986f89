//! The cluster session: what every command that changes a cluster's database shares (`test`,
//! `db`, `nemesis`, `heal`), so that no command imports another.
//!
//! - [`lease`]: one controller per cluster ([`nemesis::lease`]), with the errors users see;
//! - [`journal`]: the database journal (`journal/NAME.db.jsonl`), which records each
//!   database's options as it was installed or started;
//! - [`open`]: a database opened through the caller's registry, with the options given, or
//!   those the journal recorded, or as a kill recorded it ([`nemesis::process::DbSource`]);
//! - [`hooks`]: the nemesis's process hooks, and the databases heal's restarts need;
//! - [`lifecycle`]: the set-up steps on every node (wipe, install, configure, start, wait
//!   until ready) and the end (stop, collect the logs).

pub mod hooks;
pub mod journal;
pub mod lease;
pub mod lifecycle;
pub mod open;

#[cfg(test)]
mod tests;
