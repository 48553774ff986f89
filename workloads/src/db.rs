//! The database traits: [`DatabaseKind`], a database as `--db` names it (its options, the
//! workloads its client serves, how to open it on a cluster), and [`Database`], the hooks that
//! the harness and the nemesis call on nodes. Adding a database is one module that implements
//! both and a line in [`crate::registry::Registry::builtin`].

use crate::op::Client;
use clusters::{quote, Cluster, RemoteCommand, SshError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Errors setting up, driving or inspecting a database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A node could not be reached.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// A step failed on a node.
    #[error("{node}: {step} failed: {message}")]
    Step {
        /// The node.
        node: String,
        /// What was being done (install, start, ...).
        step: String,
        /// Why.
        message: String,
    },
    /// The options make no sense.
    #[error("{0}")]
    Config(String),
    /// No database of that name.
    #[error("unknown database {name:?}: faultline knows {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names known, comma-separated.
        known: String,
    },
}

/// A database's options, by name (`read-mode: serializable`), as given on the command line
/// (`--db-opt KEY=VALUE` and the database flags) or in a test file, and as recorded in
/// test.yaml once the database has resolved them.
pub type DbOptions = BTreeMap<String, String>;

/// A database as `--db` names it: its options, the workloads its client serves, and how to
/// open it on a cluster.
pub trait DatabaseKind: Send + Sync {
    /// The name, as in `--db`.
    fn name(&self) -> &'static str;
    /// One line for `--help`.
    fn about(&self) -> &'static str;
    /// The workloads its client serves.
    fn workloads(&self) -> &'static [&'static str];
    /// Its options: name, what it does and its default.
    fn option_help(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// Validates `given` and returns every option with its default filled in (what test.yaml
    /// records). Unknown names and bad values are [`DbError::Config`].
    fn resolve_options(&self, given: &DbOptions) -> Result<DbOptions, DbError>;
    /// The consistency model a run with these resolved options is checked against, for
    /// transactional workloads: what the database's settings promise, or what the user asked
    /// for (PostgreSQL's `consistency` option). `None` (the default) leaves the workload's
    /// own checker as it is.
    fn consistency(
        &self,
        _options: &DbOptions,
    ) -> Result<Option<checkers::txn::Consistency>, DbError> {
        Ok(None)
    }
    /// Opens the database on `cluster` with resolved options (may ask nodes for addresses).
    fn open(&self, cluster: &Cluster, options: &DbOptions) -> Result<Arc<dyn Database>, DbError>;
}

/// Refuses option names other than `known` (for [`DatabaseKind::resolve_options`]).
pub fn only_options(db: &str, given: &DbOptions, known: &[&str]) -> Result<(), DbError> {
    for k in given.keys() {
        if !known.contains(&k.as_str()) {
            return Err(DbError::Config(format!(
                "{db} has no option {k:?} (its options: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    Ok(())
}

/// Where a client runs, for clients that want to know (adapters: the worker's number, the
/// run's directory for their stderr, the workload for their handshake).
#[derive(Debug, Clone, Default)]
pub struct ClientContext {
    /// The worker's index (0-based).
    pub worker: usize,
    /// The run's store directory, if any.
    pub run_dir: Option<std::path::PathBuf>,
    /// The workload's name.
    pub workload: String,
    /// The workload's ops per key.
    pub ops_per_key: u64,
}

/// What the harness needs from a database.
///
/// Node-side hooks are blocking (they run commands over SSH); the harness calls them from
/// its own threads. Process faults (kill, pause, resume) are the nemesis's: it signals the
/// processes [`Database::pids`] reports, so that every database gets them the same way.
pub trait Database: Send + Sync {
    /// The name, as in `--db`.
    fn name(&self) -> &str;
    /// Makes the database's binaries available on `node` (upload, or the node's package
    /// manager).
    fn install(&self, cluster: &Cluster, node: &str) -> Result<(), DbError>;
    /// Writes the node's configuration and data directories.
    fn configure(&self, cluster: &Cluster, node: &str) -> Result<(), DbError>;
    /// Starts the database on `node` (in the background; returns at once).
    fn start(&self, cluster: &Cluster, node: &str) -> Result<(), DbError>;
    /// Waits until `node` serves requests, or fails after `timeout` naming what it saw.
    fn wait_ready(&self, cluster: &Cluster, node: &str, timeout: Duration) -> Result<(), DbError>;
    /// The PIDs of the database's processes on `node` (empty when it is not running).
    fn pids(&self, cluster: &Cluster, node: &str) -> Result<Vec<u32>, DbError>;
    /// Stops the database and removes its data on `node`.
    fn wipe(&self, cluster: &Cluster, node: &str) -> Result<(), DbError>;
    /// The nodes that lead now (each node's own view).
    fn primaries(&self, cluster: &Cluster) -> Result<Vec<String>, DbError>;
    /// The log files to collect from each node.
    fn log_files(&self) -> Vec<String>;
    /// A client for worker `ctx.worker` bound to `node`, whose requests give up after
    /// `timeout` (the context also names the workload, its options and the run's directory).
    fn client(
        &self,
        node: &str,
        timeout: Duration,
        ctx: &ClientContext,
    ) -> Result<Arc<dyn Client>, DbError>;

    /// Called once every fault is healed, before the final ops: waits (at most `timeout`)
    /// until the database is whole again on every node and says what it found, or fails
    /// naming each node that did not come back and why (the run logs either). By default
    /// nothing is checked (`None`).
    fn recovered(&self, cluster: &Cluster, timeout: Duration) -> Result<Option<String>, DbError> {
        let _ = (cluster, timeout);
        Ok(None)
    }

    /// Kills the database on `node` with SIGKILL.
    fn kill(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        signal(cluster, node, &self.pids(cluster, node)?, "KILL")
    }
    /// Starts the database again on `node` if it is not running.
    fn restart(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        if self.pids(cluster, node)?.is_empty() {
            self.start(cluster, node)?;
        }
        Ok(())
    }
}

/// Sends `sig` to `pids` on `node` (processes already gone are fine).
pub fn signal(cluster: &Cluster, node: &str, pids: &[u32], sig: &str) -> Result<(), DbError> {
    if pids.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let script = format!(
        "for p in {}; do kill -{} \"$p\" 2>/dev/null || true; done",
        list.join(" "),
        quote(sig)
    );
    run(cluster, node, &format!("kill -{sig}"), &script).map(|_| ())
}

/// Runs `script` as root on `node`; a non-zero exit is a [`DbError::Step`] with its stderr.
pub fn run(cluster: &Cluster, node: &str, step: &str, script: &str) -> Result<String, DbError> {
    let out = cluster.exec(node, &RemoteCommand::script(script).sudo())?;
    if out.success() {
        Ok(out.stdout_text())
    } else {
        Err(DbError::Step {
            node: node.to_string(),
            step: step.to_string(),
            message: format!("exit {}: {}", out.status, out.stderr_text().trim()),
        })
    }
}

/// The live PIDs listed in a pid file on `node`.
pub fn pidfile_pids(cluster: &Cluster, node: &str, pidfile: &str) -> Result<Vec<u32>, DbError> {
    let script = format!(
        "for p in $(cat {f} 2>/dev/null); do kill -0 \"$p\" 2>/dev/null && echo \"$p\"; done; true",
        f = quote(pidfile)
    );
    Ok(run(cluster, node, "read pid file", &script)?
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Each node's address for its peers and clients (see [`clusters::addr::peer_addresses`]).
pub fn peer_addresses(cluster: &Cluster) -> Result<BTreeMap<String, std::net::Ipv4Addr>, DbError> {
    let all = clusters::addr::node_addresses(cluster)?;
    clusters::addr::peer_addresses(&all).map_err(DbError::Config)
}
