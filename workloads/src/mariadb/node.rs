//! MariaDB's server on a node, as MariaDB (on the first node) and Galera (on every node) run
//! it: faultline's option file, the data directory, start, processes, root's SQL over the
//! server's socket, readiness and wipe.

use crate::db::{run, DbError};
use clusters::{quote, Cluster};
use std::net::Ipv4Addr;
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
pub(crate) const PIDFILE: &str = "/var/lib/faultline-db/mariadb/faultline.pid";
/// The server's error log (collected into `nodes/<node>/`).
pub const LOG: &str = "/var/log/faultline-db/mariadb.log";
/// The server's binary.
pub const BIN: &str = "/usr/sbin/mariadbd";
/// The port: not 3306, where a package's own server may listen.
pub const PORT: u16 = 53306;
/// The system user the server runs as.
pub(crate) const OS_USER: &str = "mysql";

/// The shell test that MariaDB's binaries and user are on a node.
pub const HAVE: &str = "test -x /usr/sbin/mariadbd && command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null && id -u mysql >/dev/null";

/// faultline's option file for a server listening on `addr` with options `opts`, with
/// `extra` lines (Galera's wsrep settings) at the end of `[mysqld]`.
pub fn my_cnf(addr: Ipv4Addr, opts: &super::MariadbOptions, extra: &str) -> String {
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
         innodb_flush_log_at_trx_commit = {flush}\n\
         sync_binlog = {sync_binlog}\n\
         innodb_doublewrite = ON\n\
         innodb_snapshot_isolation = {si}\n\
         {extra}\
         [client]\n\
         socket = {SOCKET}\n",
        si = if opts.snapshot_isolation { "ON" } else { "OFF" },
        flush = opts.flush_log_at_trx_commit,
        sync_binlog = opts.sync_binlog,
    )
}

/// Writes `cnf` and initialises the data directory (`mariadb-install-db`).
pub fn configure_script(cnf: &str) -> String {
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
pub fn start_script(args: &str) -> String {
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
pub fn server_pids(cluster: &Cluster, node: &str) -> Result<Vec<u32>, DbError> {
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
pub fn root_sql(cluster: &Cluster, node: &str, step: &str, sql: &str) -> Result<String, DbError> {
    let script = format!(
        "mariadb --defaults-file={CONF} -u root --batch --skip-column-names -e {}",
        quote(sql)
    );
    run(cluster, node, step, &script)
}

/// The end of the server's log on `node`.
pub fn log_tail(cluster: &Cluster, node: &str) -> String {
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
pub fn wait_sql(
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
pub fn wipe_script() -> String {
    format!("rm -rf {DIR}; mkdir -p /var/log/faultline-db; : > {LOG}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_file_binds_the_node_and_sets_snapshot_isolation() {
        let opts = |pairs: &[(&str, &str)]| {
            let given: crate::db::DbOptions = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            super::super::MariadbOptions::parse("mariadb", &given).unwrap()
        };
        let si = opts(&[("snapshot-isolation", "on")]);
        let c = my_cnf(Ipv4Addr::new(10, 250, 0, 2), &si, "wsrep_on = ON\n");
        assert!(c.contains("innodb_flush_log_at_trx_commit = 1\n"), "{c}");
        assert!(c.contains("bind-address = 10.250.0.2\n"), "{c}");
        assert!(c.contains("innodb_snapshot_isolation = ON\n"), "{c}");
        assert!(c.contains(&format!("port = {PORT}\n")), "{c}");
        assert!(c.contains("wsrep_on = ON\n[client]"), "{c}");
        assert!(
            my_cnf(Ipv4Addr::LOCALHOST, &opts(&[]), "").contains("innodb_snapshot_isolation = OFF")
        );
        // The durability settings are options.
        let lax = my_cnf(
            Ipv4Addr::LOCALHOST,
            &opts(&[
                ("innodb-flush-log-at-trx-commit", "2"),
                ("sync-binlog", "0"),
            ]),
            "",
        );
        assert!(
            lax.contains("innodb_flush_log_at_trx_commit = 2\n"),
            "{lax}"
        );
        assert!(lax.contains("sync_binlog = 0\n"), "{lax}");
        let e = super::super::MariadbOptions::parse(
            "mariadb",
            &[(
                "innodb-flush-log-at-trx-commit".to_string(),
                "3".to_string(),
            )]
            .into(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("expected 0, 1 or 2"), "{e}");
    }
}
