//! MariaDB 10.11 (Debian's `mariadb-server`) as a [`Database`]: one server, on the cluster's
//! first node, and its transactional client ([`crate::mysql_client`]).
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
//! The node-side pieces (option file, start, processes, readiness) are shared with
//! Galera, which runs the same server with wsrep on every node.

use crate::db::{only_options, run, Database, DatabaseKind, DbError, DbOptions};
use crate::mysql_client::{setup_sql, Isolation, MysqlClient};
use crate::op::Client;
use checkers::txn::Consistency;
use clusters::{quote, Cluster};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where MariaDB keeps everything on a node (the node's private data directory).
pub const DIR: &str = "/var/lib/faultline-db/mariadb";
/// The data directory.
pub const DATA: &str = "/var/lib/faultline-db/mariadb/data";
/// faultline's option file (the server's `--defaults-file`).
pub const CONF: &str = "/var/lib/faultline-db/mariadb/my.cnf";
/// The server's socket (root's setup connects through it).
pub const SOCKET: &str = "/var/lib/faultline-db/mariadb/mariadbd.sock";
/// The server's PID, written by the start script.
const PIDFILE: &str = "/var/lib/faultline-db/mariadb/faultline.pid";
/// The server's error log (collected into `nodes/<node>/`).
pub const LOG: &str = "/var/log/faultline-db/mariadb.log";
/// The server's binary.
pub const BIN: &str = "/usr/sbin/mariadbd";
/// The port: not 3306, where a package's own server may listen.
pub const PORT: u16 = 53306;
/// The system user the server runs as.
const OS_USER: &str = "mysql";

/// How MariaDB gets onto a node (`install`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// The node's own binaries, else its apt installs the packages.
    Auto,
    /// Always run `apt-get install` (a no-op when installed).
    Package,
    /// Never install: the binaries must be there.
    Never,
}

impl Install {
    /// Parses an option value (`db` names the database in the message).
    pub fn parse(db: &str, given: Option<&String>) -> Result<Install, DbError> {
        match given.map(String::as_str) {
            None | Some("auto") => Ok(Install::Auto),
            Some("package") => Ok(Install::Package),
            Some("never") => Ok(Install::Never),
            Some(other) => Err(DbError::Config(format!(
                "{db} install {other:?}: expected auto, package or never"
            ))),
        }
    }

    /// The option value.
    pub fn name(self) -> &'static str {
        match self {
            Install::Auto => "auto",
            Install::Package => "package",
            Install::Never => "never",
        }
    }
}

fn parse_on_off(db: &str, name: &str, given: Option<&String>) -> Result<bool, DbError> {
    match given.map(String::as_str) {
        None | Some("off") => Ok(false),
        Some("on") => Ok(true),
        Some(other) => Err(DbError::Config(format!(
            "{db} {name} {other:?}: expected on or off"
        ))),
    }
}

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
}

impl MariadbOptions {
    /// The option names.
    pub const NAMES: [&'static str; 4] =
        ["install", "isolation", "snapshot-isolation", "consistency"];

    /// Parses (and validates) options by name for database `db`; absent ones take their
    /// defaults (install auto, isolation repeatable read, snapshot-isolation off, consistency
    /// what the level promises).
    pub fn parse(db: &str, given: &DbOptions) -> Result<MariadbOptions, DbError> {
        only_options(db, given, &Self::NAMES)?;
        let install = Install::parse(db, given.get("install"))?;
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
        Ok(MariadbOptions {
            install,
            isolation,
            snapshot_isolation,
            consistency,
        })
    }

    /// Every option by name, defaults included (what test.yaml records).
    pub fn to_options(&self) -> DbOptions {
        let mut m = DbOptions::new();
        m.insert("install".into(), self.install.name().into());
        m.insert("isolation".into(), self.isolation.name().into());
        m.insert(
            "snapshot-isolation".into(),
            if self.snapshot_isolation { "on" } else { "off" }.into(),
        );
        m.insert("consistency".into(), self.consistency.name().into());
        m
    }
}

/// MariaDB as `--db mariadb` names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct MariadbKind;

/// The workloads MariaDB's and Galera's client serves.
pub const WORKLOADS: &[&str] = &["list-append", "rw-register"];

impl DatabaseKind for MariadbKind {
    fn name(&self) -> &'static str {
        "mariadb"
    }
    fn about(&self) -> &'static str {
        "MariaDB 10.11 (Debian's mariadb-server), one server, transactions at a chosen isolation level"
    }
    fn workloads(&self) -> &'static [&'static str] {
        WORKLOADS
    }
    fn option_help(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("install", "auto (the node's own mariadbd, else its apt), package (apt-get install mariadb-server), or never [default: auto]; also --db-install"),
            ("isolation", "read-committed, repeatable-read or serializable: the level of every transaction [default: repeatable-read]; also --isolation"),
            ("snapshot-isolation", "on or off: innodb_snapshot_isolation, whether repeatable read refuses (error 1020) to overwrite rows changed since its snapshot [default: off]"),
            ("consistency", "the model the history is checked against [default: what the level promises: read-committed; repeatable-read, or snapshot-isolation with snapshot-isolation=on; serializable]; also --consistency"),
        ]
    }
    fn resolve_options(&self, given: &DbOptions) -> Result<DbOptions, DbError> {
        Ok(MariadbOptions::parse("mariadb", given)?.to_options())
    }
    fn consistency(&self, options: &DbOptions) -> Result<Option<Consistency>, DbError> {
        Ok(Some(MariadbOptions::parse("mariadb", options)?.consistency))
    }
    fn open(&self, cluster: &Cluster, options: &DbOptions) -> Result<Arc<dyn Database>, DbError> {
        Ok(Arc::new(Mariadb::new(
            cluster,
            MariadbOptions::parse("mariadb", options)?,
        )?))
    }
}

/// A password drawn at random for one run (hexadecimal).
pub(crate) fn new_password() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

/// The install step for `packages` (space-separated) on a node, `have` being the shell test
/// that they are there.
pub(crate) fn install_script(
    install: Install,
    packages: &str,
    have: &str,
) -> (&'static str, String) {
    let apt = format!(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {packages} >&2 || \
         {{ apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {packages} >&2; }}"
    );
    match install {
        Install::Auto => (
            "install (the node's own binaries, else apt)",
            format!("{have} || {{ {apt}; }}; {have}"),
        ),
        Install::Package => ("install (apt-get install)", format!("{apt}; {have}")),
        Install::Never => (
            "install (never: the packages must be on the node)",
            format!(
                "{have} || {{ echo 'missing on the node: {packages} (install them, or use install=auto)' >&2; exit 1; }}"
            ),
        ),
    }
}

/// The shell test that MariaDB's binaries and user are on a node.
pub(crate) const HAVE: &str = "test -x /usr/sbin/mariadbd && command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null && id -u mysql >/dev/null";

/// faultline's option file for a server listening on `addr`, with `extra` lines (Galera's
/// wsrep settings) at the end of `[mysqld]`.
pub(crate) fn my_cnf(addr: Ipv4Addr, snapshot_isolation: bool, extra: &str) -> String {
    format!(
        "# Written by faultline.\n\
         [mysqld]\n\
         datadir = {DATA}\n\
         socket = {SOCKET}\n\
         pid-file = {DIR}/mariadbd.pid\n\
         log-error = {LOG}\n\
         port = {PORT}\n\
         bind-address = {addr}\n\
         skip-name-resolve\n\
         max_connections = 200\n\
         performance_schema = OFF\n\
         innodb_buffer_pool_size = 64M\n\
         innodb_log_file_size = 16M\n\
         innodb_flush_log_at_trx_commit = 1\n\
         innodb_doublewrite = ON\n\
         innodb_snapshot_isolation = {si}\n\
         {extra}\
         [client]\n\
         socket = {SOCKET}\n",
        si = if snapshot_isolation { "ON" } else { "OFF" },
    )
}

/// Writes `cnf` and initialises the data directory (`mariadb-install-db`).
pub(crate) fn configure_script(cnf: &str) -> String {
    format!(
        "set -e\n\
         mkdir -p {DIR} /var/log/faultline-db\n\
         chmod a+x /var/lib/faultline-db\n\
         chown {OS_USER}: {DIR}\n\
         chmod 700 {DIR}\n\
         touch {LOG}\n\
         chown {OS_USER}: {LOG}\n\
         cat > {CONF} <<'FAULTLINE_EOF'\n{cnf}FAULTLINE_EOF\n\
         chmod 644 {CONF}\n\
         mariadb-install-db --defaults-file={CONF} --user={OS_USER} --datadir={DATA} \
           --skip-test-db --auth-root-authentication-method=socket > {DIR}/install-db.out 2>&1 \
           || {{ tail -n 20 {DIR}/install-db.out >&2; exit 1; }}\n"
    )
}

/// Starts `mariadbd` in the background with `args` after the option file, as the `mysql`
/// user; the PID file then holds the server's PID (returns once the process is `mariadbd`,
/// within 2 s).
pub(crate) fn start_script(args: &str) -> String {
    format!(
        "mkdir -p /var/log/faultline-db\n\
         cd {DIR}\n\
         echo \"== start $(date -u +%FT%TZ) {args}\" >> {LOG}\n\
         chown {OS_USER}: {LOG}\n\
         setsid setpriv --reuid={OS_USER} --regid={OS_USER} --init-groups -- {BIN} --defaults-file={CONF} {args} </dev/null >>{LOG} 2>&1 &\n\
         p=$!\n\
         echo $p > {PIDFILE}\n\
         # Until setpriv has become mariadbd, the PID is not yet the server's by name.\n\
         for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do\n\
           [ \"$(cat /proc/$p/comm 2>/dev/null)\" = mariadbd ] && break\n\
           kill -0 $p 2>/dev/null || break\n\
           sleep 0.1\n\
         done\n"
    )
}

/// The server's PID on `node`, when the PID file names a live `mariadbd`.
pub(crate) fn server_pids(cluster: &Cluster, node: &str) -> Result<Vec<u32>, DbError> {
    let script = format!(
        "p=$(cat {PIDFILE} 2>/dev/null) || exit 0\n\
         case \"$p\" in ''|*[!0-9]*) exit 0;; esac\n\
         [ \"$(cat /proc/$p/comm 2>/dev/null)\" = mariadbd ] || exit 0\n\
         echo \"$p\"\n"
    );
    Ok(run(cluster, node, "find mariadbd", &script)?
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Runs `sql` as root over the server's socket on `node`.
pub(crate) fn root_sql(
    cluster: &Cluster,
    node: &str,
    step: &str,
    sql: &str,
) -> Result<String, DbError> {
    let script = format!(
        "mariadb --defaults-file={CONF} -u root --batch --skip-column-names -e {}",
        quote(sql)
    );
    run(cluster, node, step, &script)
}

/// The end of the server's log on `node`.
pub(crate) fn log_tail(cluster: &Cluster, node: &str) -> String {
    run(
        cluster,
        node,
        "read log",
        &format!("tail -n 15 {LOG} 2>/dev/null; true"),
    )
    .unwrap_or_default()
}

/// Waits until `sql` succeeds as root on `node` (the server answers), or fails when the
/// server exited or `timeout` passed, naming what it saw.
pub(crate) fn wait_sql(
    cluster: &Cluster,
    node: &str,
    db: &str,
    sql: &str,
    timeout: Duration,
) -> Result<String, DbError> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match root_sql(cluster, node, "set up the schema", sql) {
            Ok(out) => return Ok(out),
            Err(DbError::Step { message, .. }) => message,
            Err(e) => return Err(e),
        };
        if server_pids(cluster, node)?.is_empty() {
            return Err(DbError::Step {
                node: node.to_string(),
                step: "start".into(),
                message: format!(
                    "{db}: mariadbd exited; the end of {LOG}:\n{}",
                    log_tail(cluster, node)
                ),
            });
        }
        if Instant::now() >= deadline {
            return Err(DbError::Step {
                node: node.to_string(),
                step: "wait until ready".into(),
                message: format!("{db} did not answer within {timeout:?}: {last}"),
            });
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Stops the server and removes its data on `node`.
pub(crate) fn wipe_script() -> String {
    format!("rm -rf {DIR}; mkdir -p /var/log/faultline-db; : > {LOG}")
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
        let (step, script) = install_script(self.opts.install, "mariadb-server", HAVE);
        run(cluster, node, step, &script).map(|_| ())
    }

    fn configure(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        if !self.is_primary(node) {
            return Ok(());
        }
        let cnf = my_cnf(self.addr(node)?, self.opts.snapshot_isolation, "");
        run(
            cluster,
            node,
            "configure (mariadb-install-db)",
            &configure_script(&cnf),
        )
        .map(|_| ())
    }

    fn start(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        if !self.is_primary(node) {
            return Ok(());
        }
        run(cluster, node, "start", &start_script("")).map(|_| ())
    }

    fn wait_ready(&self, cluster: &Cluster, node: &str, timeout: Duration) -> Result<(), DbError> {
        if !self.is_primary(node) {
            return Ok(());
        }
        wait_sql(
            cluster,
            node,
            "mariadb",
            &setup_sql(&self.password),
            timeout,
        )
        .map(|_| ())
    }

    fn pids(&self, cluster: &Cluster, node: &str) -> Result<Vec<u32>, DbError> {
        server_pids(cluster, node)
    }

    fn wipe(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        self.kill(cluster, node)?;
        run(cluster, node, "wipe", &wipe_script()).map(|_| ())
    }

    fn primaries(&self, _cluster: &Cluster) -> Result<Vec<String>, DbError> {
        Ok(vec![self.primary.clone()])
    }

    fn log_files(&self) -> Vec<String> {
        vec![LOG.to_string()]
    }

    fn client(
        &self,
        _node: &str,
        timeout: Duration,
        ctx: &crate::db::ClientContext,
    ) -> Result<Arc<dyn Client>, DbError> {
        Ok(Arc::new(MysqlClient::new(
            "mariadb",
            ctx.workload == "rw-register",
            self.addr(&self.primary)?.to_string(),
            PORT,
            self.password.clone(),
            self.opts.isolation,
            timeout,
        )))
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
        MariadbKind.resolve_options(&given)
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
            MariadbKind.consistency(&over).unwrap(),
            Some(Consistency::SnapshotIsolation)
        );
        // Resolving is idempotent: what test.yaml records resolves to itself.
        assert_eq!(MariadbKind.resolve_options(&over).unwrap(), over);
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

    #[test]
    fn the_option_file_binds_the_node_and_sets_snapshot_isolation() {
        let c = my_cnf(Ipv4Addr::new(10, 250, 0, 2), true, "wsrep_on = ON\n");
        assert!(c.contains("bind-address = 10.250.0.2\n"), "{c}");
        assert!(c.contains("innodb_snapshot_isolation = ON\n"), "{c}");
        assert!(c.contains(&format!("port = {PORT}\n")), "{c}");
        assert!(c.contains("wsrep_on = ON\n[client]"), "{c}");
        assert!(my_cnf(Ipv4Addr::LOCALHOST, false, "").contains("innodb_snapshot_isolation = OFF"));
    }
}
