//! MariaDB 10.11 (Debian's `mariadb-server`) as a [`Database`]: one server, on the cluster's
//! first node, and its transactional client ([`client`], on the SQL core [`crate::sql`]).
//!
//! On that node faultline writes its own option file `/var/lib/faultline-db/mariadb/my.cnf`
//! (read with `--defaults-file`, so nothing under `/etc/mysql` applies), initialises the data
//! directory `/var/lib/faultline-db/mariadb/data` with `mariadb-install-db`, and starts
//! `mariadbd` as the `mysql` user (through `setpriv`, so that `$!` is the server's PID) with
//! its own socket, pid file and error log (`/var/log/faultline-db/mariadb.log`), listening on
//! the node's address, port [`PORT`]. Once it answers, faultline creates the schema, the
//! tables and the user clients log in as over TCP, with a password drawn per run. The other
//! nodes run nothing. A killed server is started again on the same data directory and
//! recovers from its redo log.
//!
//! Options: `install`, `isolation` (the level of every transaction, default repeatable read),
//! `snapshot-isolation` (`innodb_snapshot_isolation`, default off as in MariaDB 10.11) and
//! `consistency` (the model the run is checked against, by default what the level promises:
//! see [`Isolation::promises`]).
//!
//! The node-side pieces (option file, start, processes, readiness: [`node`]) and the client
//! ([`client`]) are shared with Galera, which runs the same server with wsrep on every node.

pub mod client;
pub mod node;

pub use crate::db::Install;
pub use client::{classify, setup_sql, Isolation, MysqlClient, MysqlDriver, ABORTED};
pub use node::PORT;

use crate::db::{
    apt_install_script, new_password, only_options, parse_on_off, run, ClientContext, Database,
    DatabaseKind, DbConfig, DbError, DbOptions,
};
use crate::op::Client;
use crate::sql::{SqlClient, SqlWorkload};
use checkers::txn::Consistency;
use clusters::Cluster;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

/// MariaDB's (and Galera's) options, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MariadbOptions {
    /// How to install.
    pub install: Install,
    /// The level of every transaction.
    pub isolation: Isolation,
    /// `innodb_snapshot_isolation`: repeatable read refuses to overwrite (or lock) a row
    /// changed since its snapshot, with error 1020.
    pub snapshot_isolation: bool,
    /// The model the run is checked against.
    pub consistency: Consistency,
    /// `innodb_flush_log_at_trx_commit`: 1 flushes the redo log at each commit; 0 and 2
    /// acknowledge commits a crash (0) or a power loss (2) can lose.
    pub flush_log_at_trx_commit: u8,
    /// `sync_binlog`: fsync the binary log every N commits (0: never, the OS decides).
    pub sync_binlog: u32,
}

impl MariadbOptions {
    /// The option names.
    pub const NAMES: [&'static str; 6] = [
        "install",
        "isolation",
        "snapshot-isolation",
        "consistency",
        "innodb-flush-log-at-trx-commit",
        "sync-binlog",
    ];
    /// The ways of installing MariaDB (`install`).
    pub const INSTALLS: [Install; 3] = [Install::Auto, Install::Package, Install::Never];

    /// Parses (and validates) options by name for database `db`; absent ones take their
    /// defaults (install auto, isolation repeatable read, snapshot-isolation off, consistency
    /// what the level promises).
    pub fn parse(db: &str, given: &DbOptions) -> Result<MariadbOptions, DbError> {
        only_options(db, given, &Self::NAMES)?;
        let install = Install::parse(db, given.get("install"), &Self::INSTALLS)?;
        let isolation = match given.get("isolation") {
            None => Isolation::RepeatableRead,
            Some(s) => Isolation::parse(s).ok_or_else(|| {
                DbError::Config(format!(
                    "{db} isolation {s:?}: expected {}",
                    Isolation::NAMES.join(", ")
                ))
            })?,
        };
        let snapshot_isolation =
            parse_on_off(db, "snapshot-isolation", given.get("snapshot-isolation"))?;
        let consistency = match given.get("consistency") {
            None => isolation.promises(snapshot_isolation),
            Some(s) => s
                .parse::<Consistency>()
                .map_err(|e| DbError::Config(format!("{db} consistency: {e}")))?,
        };
        let flush_log_at_trx_commit = match given.get("innodb-flush-log-at-trx-commit") {
            None => 1,
            Some(s) => s.parse::<u8>().ok().filter(|v| *v <= 2).ok_or_else(|| {
                DbError::Config(format!(
                    "{db} innodb-flush-log-at-trx-commit {s:?}: expected 0, 1 or 2"
                ))
            })?,
        };
        let sync_binlog = match given.get("sync-binlog") {
            None => 0,
            Some(s) => s.parse::<u32>().map_err(|_| {
                DbError::Config(format!(
                    "{db} sync-binlog {s:?}: expected a number of commits (0: never)"
                ))
            })?,
        };
        Ok(MariadbOptions {
            install,
            isolation,
            snapshot_isolation,
            consistency,
            flush_log_at_trx_commit,
            sync_binlog,
        })
    }
}

impl DbConfig for MariadbOptions {
    fn options(&self) -> DbOptions {
        let mut m = DbOptions::new();
        m.insert("install".into(), self.install.name().into());
        m.insert("isolation".into(), self.isolation.name().into());
        m.insert(
            "snapshot-isolation".into(),
            if self.snapshot_isolation { "on" } else { "off" }.into(),
        );
        m.insert("consistency".into(), self.consistency.name().into());
        m.insert(
            "innodb-flush-log-at-trx-commit".into(),
            self.flush_log_at_trx_commit.to_string(),
        );
        m.insert("sync-binlog".into(), self.sync_binlog.to_string());
        m
    }
    fn consistency(&self) -> Option<Consistency> {
        Some(self.consistency)
    }
    fn open(&self, cluster: &Cluster) -> Result<Arc<dyn Database>, DbError> {
        Ok(Arc::new(Mariadb::new(cluster, self.clone())?))
    }
}

/// MariaDB as `--db mariadb` names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct MariadbKind;

impl DatabaseKind for MariadbKind {
    fn name(&self) -> &str {
        "mariadb"
    }
    fn about(&self) -> &str {
        "MariaDB 10.11 (Debian's mariadb-server), one server, transactions at a chosen isolation level"
    }
    fn workloads(&self) -> Vec<&str> {
        SqlWorkload::NAMES.to_vec()
    }
    fn option_help(&self) -> &[(&str, &str)] {
        &[
            ("install", "auto (the node's own mariadbd, else its apt), package (apt-get install mariadb-server), or never [default: auto]; also --db-install"),
            ("isolation", "read-committed, repeatable-read or serializable: the level of every transaction [default: repeatable-read]; also --isolation"),
            ("snapshot-isolation", "on or off: innodb_snapshot_isolation, whether repeatable read refuses (error 1020) to overwrite rows changed since its snapshot [default: off]"),
            ("innodb-flush-log-at-trx-commit", "0, 1 or 2: innodb_flush_log_at_trx_commit; 1 flushes the redo log at every commit, 0 and 2 acknowledge commits a crash or power loss can lose [default: 1]"),
            ("sync-binlog", "sync_binlog: fsync the binary log every N commits, 0 never [default: 0]"),
            ("consistency", "the model the history is checked against [default: what the level promises: read-committed; repeatable-read, or snapshot-isolation with snapshot-isolation=on; serializable]; also --consistency"),
        ]
    }
    fn configure(&self, given: &DbOptions) -> Result<Arc<dyn DbConfig>, DbError> {
        Ok(Arc::new(MariadbOptions::parse("mariadb", given)?))
    }
}

/// MariaDB on a cluster: one server on its first node.
pub struct Mariadb {
    primary: String,
    addrs: BTreeMap<String, Ipv4Addr>,
    opts: MariadbOptions,
    password: String,
}

impl Mariadb {
    /// MariaDB for `cluster` (asks each node for its address); the client's password is
    /// drawn at random for this run.
    pub fn new(cluster: &Cluster, opts: MariadbOptions) -> Result<Mariadb, DbError> {
        let primary = cluster
            .nodes()
            .first()
            .cloned()
            .ok_or_else(|| DbError::Config("mariadb: the cluster has no node".into()))?;
        Ok(Mariadb {
            primary,
            addrs: crate::db::peer_addresses(cluster)?,
            opts,
            password: new_password(),
        })
    }

    fn is_primary(&self, node: &str) -> bool {
        node == self.primary
    }

    fn addr(&self, node: &str) -> Result<Ipv4Addr, DbError> {
        self.addrs
            .get(node)
            .copied()
            .ok_or_else(|| DbError::Config(format!("no address known for node {node}")))
    }
}

impl Database for Mariadb {
    fn name(&self) -> &str {
        "mariadb"
    }

    fn install(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        if !self.is_primary(node) {
            return Ok(());
        }
        let (step, script) = apt_install_script(self.opts.install, "mariadb-server", node::HAVE);
        run(cluster, node, step, &script).map(|_| ())
    }

    fn configure(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        if !self.is_primary(node) {
            return Ok(());
        }
        let cnf = node::my_cnf(self.addr(node)?, &self.opts, "");
        run(
            cluster,
            node,
            "configure (mariadb-install-db)",
            &node::configure_script(&cnf),
        )
        .map(|_| ())
    }

    fn start(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        if !self.is_primary(node) {
            return Ok(());
        }
        run(cluster, node, "start", &node::start_script("")).map(|_| ())
    }

    fn wait_ready(&self, cluster: &Cluster, node: &str, timeout: Duration) -> Result<(), DbError> {
        if !self.is_primary(node) {
            return Ok(());
        }
        node::wait_sql(
            cluster,
            node,
            "mariadb",
            &setup_sql(&self.password),
            timeout,
        )
        .map(|_| ())
    }

    fn pids(&self, cluster: &Cluster, node: &str) -> Result<Vec<u32>, DbError> {
        node::server_pids(cluster, node)
    }

    fn wipe(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        self.kill(cluster, node)?;
        run(cluster, node, "wipe", &node::wipe_script()).map(|_| ())
    }

    fn primaries(&self, _cluster: &Cluster) -> Result<Vec<String>, DbError> {
        Ok(vec![self.primary.clone()])
    }

    fn log_files(&self) -> Vec<String> {
        vec![node::LOG.to_string()]
    }

    fn data_dir(&self) -> Option<String> {
        Some(node::DATA.to_string())
    }

    fn client(
        &self,
        _node: &str,
        timeout: Duration,
        ctx: &ClientContext,
    ) -> Result<Arc<dyn Client>, DbError> {
        let driver = MysqlDriver::new(
            "mariadb",
            self.addr(&self.primary)?.to_string(),
            PORT,
            self.password.clone(),
            self.opts.isolation,
            timeout,
        );
        let workload = SqlWorkload::of("mariadb", ctx)?;
        Ok(Arc::new(SqlClient::new(driver, workload, timeout)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(pairs: &[(&str, &str)]) -> Result<DbOptions, DbError> {
        let given: DbOptions = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        MariadbKind.configure(&given).map(|c| c.options())
    }

    #[test]
    fn options_are_validated_and_consistency_follows_the_level() {
        let d = r(&[]).unwrap();
        assert_eq!(d["install"], "auto");
        assert_eq!(d["isolation"], "repeatable-read");
        assert_eq!(d["snapshot-isolation"], "off");
        assert_eq!(d["consistency"], "repeatable-read");
        assert_eq!(
            r(&[("snapshot-isolation", "on")]).unwrap()["consistency"],
            "snapshot-isolation"
        );
        assert_eq!(
            r(&[("isolation", "serializable")]).unwrap()["consistency"],
            "serializable"
        );
        assert_eq!(
            r(&[("isolation", "read-committed")]).unwrap()["consistency"],
            "read-committed"
        );
        let over = r(&[("consistency", "snapshot-isolation")]).unwrap();
        assert_eq!(over["consistency"], "snapshot-isolation");
        assert_eq!(
            MariadbKind.configure(&over).unwrap().consistency(),
            Some(Consistency::SnapshotIsolation)
        );
        // Resolving is idempotent: what test.yaml records resolves to itself.
        assert_eq!(
            MariadbKind.configure(&over).map(|c| c.options()).unwrap(),
            over
        );
        for (pairs, want) in [
            (&[("isolation", "snapshot")][..], "expected read-committed"),
            (&[("snapshot-isolation", "yes")][..], "expected on or off"),
            (
                &[("consistency", "linearizable")][..],
                "unknown consistency",
            ),
            (
                &[("install", "upload")][..],
                "expected auto, package or never",
            ),
            (&[("read-mode", "x")][..], "no option \"read-mode\""),
        ] {
            let e = r(pairs).unwrap_err().to_string();
            assert!(e.contains(want), "{pairs:?}: {e}");
        }
    }
}
