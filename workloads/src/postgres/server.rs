//! PostgreSQL on the nodes: the primary (initdb, its configuration, start), the streaming
//! replicas (a base backup of the primary on their first start), readiness, processes, and
//! the configuration clients connect with.

use super::client::PostgresDriver;
use super::{
    PostgresOptions, Reads, APPEND_TABLE, BIN, DATA, DIR, LOG, PACKAGE, PGPASS, PIDFILE, PORT,
    PWFILE, REGISTER_TABLE, USER,
};
use crate::db::{run, ClientContext, Database, DbError};
use crate::op::Client;
use crate::sql::{SqlClient, SqlWorkload};
use clusters::{quote, Cluster};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// PostgreSQL on a cluster: a primary on its first node.
pub struct Postgres {
    primary: String,
    replicas: Vec<String>,
    addrs: BTreeMap<String, Ipv4Addr>,
    opts: PostgresOptions,
    password: String,
}

impl Postgres {
    /// PostgreSQL for `cluster` (asks each node for its address); the superuser's password
    /// is drawn at random for this run.
    pub fn new(cluster: &Cluster, opts: PostgresOptions) -> Result<Postgres, DbError> {
        let nodes = cluster.nodes();
        let primary = nodes
            .first()
            .cloned()
            .ok_or_else(|| DbError::Config("postgres: the cluster has no node".into()))?;
        if opts.replicas >= nodes.len() {
            return Err(DbError::Config(format!(
                "postgres replicas={}: the cluster has {} node(s), so at most {} replica(s) \
                 beside the primary",
                opts.replicas,
                nodes.len(),
                nodes.len() - 1
            )));
        }
        let replicas = nodes[1..=opts.replicas].to_vec();
        let password = crate::db::new_password();
        Ok(Postgres {
            primary,
            replicas,
            addrs: crate::db::peer_addresses(cluster)?,
            opts,
            password,
        })
    }

    fn is_primary(&self, node: &str) -> bool {
        node == self.primary
    }

    fn is_replica(&self, node: &str) -> bool {
        self.replicas.iter().any(|r| r == node)
    }

    /// Whether `node` runs PostgreSQL at all.
    fn runs_on(&self, node: &str) -> bool {
        self.is_primary(node) || self.is_replica(node)
    }

    fn addr(&self, node: &str) -> Result<Ipv4Addr, DbError> {
        self.addrs
            .get(node)
            .copied()
            .ok_or_else(|| DbError::Config(format!("no address known for node {node}")))
    }

    fn primary_addr(&self) -> Result<Ipv4Addr, DbError> {
        self.addr(&self.primary)
    }

    fn config(&self, node: &str, timeout: Duration) -> Result<tokio_postgres::Config, DbError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(self.addr(node)?.to_string())
            .port(PORT)
            .user(USER)
            .password(self.password.as_bytes())
            .dbname("postgres")
            .application_name("faultline")
            .connect_timeout(timeout.min(Duration::from_secs(1)));
        Ok(config)
    }

    /// A replica's first start: a base backup of the primary (retried while the primary is
    /// still starting), made a standby that streams from it.
    fn base_backup(&self, node: &str) -> Result<String, DbError> {
        let primary = self.primary_addr()?;
        let pgpass = format!("{primary}:{PORT}:*:{USER}:{}", self.password);
        let conninfo = format!(
            "host={primary} port={PORT} user={USER} passfile={PGPASS} application_name={node}"
        );
        Ok(format!(
            "if [ ! -f {DATA}/PG_VERSION ]; then
             umask 077
             printf '%s\n' {pgpass} > {PGPASS}
             chown {USER}: {PGPASS}
             ok=
             for i in $(seq 1 90); do
               # Emptied, not removed: it may be a mount point (the lazy filesystem).
               mkdir -p {DATA} && find {DATA} -mindepth 1 -delete && chown {USER}: {DATA} && chmod 700 {DATA}
               if {backup} -h {primary} -p {PORT} -U {USER} -D {DATA} -X stream --checkpoint=fast -w >>{LOG} 2>&1; then ok=1; break; fi
               sleep 0.5
             done
             [ -n \"$ok\" ] || {{ echo 'pg_basebackup from the primary ({primary}) failed for 45 s; the end of {LOG}:' >&2; tail -n 5 {LOG} >&2; exit 1; }}
             touch {DATA}/standby.signal
             printf '%s\n' {line} >> {DATA}/postgresql.auto.conf
             chown -R {USER}: {DATA}
             fi
",
            pgpass = quote(&pgpass),
            backup = as_postgres(&format!("env PGPASSFILE={PGPASS} {BIN}/pg_basebackup")),
            line = quote(&format!("primary_conninfo = '{conninfo}'")),
        ))
    }

    /// Connects to `node` as clients do (TCP to its address and PostgreSQL's port, with the
    /// run's password) and runs `SELECT 1`, within `timeout`. A server that refuses the
    /// password answers too: it is PostgreSQL on that port, set up by another faultline
    /// process (`db status` draws a password of its own).
    fn answers_clients(&self, node: &str, timeout: Duration) -> Result<(), String> {
        let config = self.config(node, timeout).map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let connected = tokio::time::timeout(timeout, config.connect(tokio_postgres::NoTls))
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?;
            let (client, connection) = match connected {
                Ok(c) => c,
                Err(e) if e.as_db_error().is_some() => return Ok(()),
                Err(e) => return Err(e.to_string()),
            };
            let task = tokio::spawn(connection);
            let r = tokio::time::timeout(timeout, client.simple_query("SELECT 1"))
                .await
                .map_err(|_| format!("no answer to SELECT 1 within {timeout:?}"))
                .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string()));
            drop(client);
            task.abort();
            r
        })
    }

    /// The lines of the log since the server last started that say it could not listen on
    /// an address (another process holds its port), if any.
    fn bind_failures(cluster: &Cluster, node: &str) -> String {
        run(
            cluster,
            node,
            "read log",
            &format!(
                "awk '/^== start/ {{b=\"\"}} /could not bind|could not create listen socket/ {{b=b $0 \"\\n\"}} END {{printf \"%s\", b}}' {LOG} 2>/dev/null; true"
            ),
        )
        .unwrap_or_default()
        .trim()
        .to_string()
    }

    fn log_tail(cluster: &Cluster, node: &str) -> String {
        run(
            cluster,
            node,
            "read log",
            &format!("tail -n 15 {LOG} 2>/dev/null; true"),
        )
        .unwrap_or_default()
    }
}

/// Runs `program` as the `postgres` user (no fork: `$!` is the program's PID).
fn as_postgres(program: &str) -> String {
    format!("setpriv --reuid={USER} --regid={USER} --init-groups -- {program}")
}

impl Database for Postgres {
    fn name(&self) -> &str {
        "postgres"
    }

    fn install(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        if !self.runs_on(node) {
            return Ok(());
        }
        let have =
            format!("test -x {BIN}/postgres && test -x {BIN}/initdb && id -u {USER} >/dev/null");
        let (step, script) = crate::db::apt_install_script(self.opts.install, PACKAGE, &have);
        run(cluster, node, step, &script).map(|_| ())
    }

    fn configure(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        if self.is_replica(node) {
            // Its data directory is the primary's base backup, made when it first starts.
            let script = format!(
                "set -e
                 mkdir -p {DIR} /var/log/faultline-db
                 chmod a+x /var/lib/faultline-db
                 chown {USER}: {DIR}
                 chmod 700 {DIR}
"
            );
            return run(cluster, node, "configure (replica)", &script).map(|_| ());
        }
        if !self.is_primary(node) {
            return Ok(());
        }
        let conf = format!(
            "# Written by faultline.\n\
             listen_addresses = '*'\n\
             port = {PORT}\n\
             unix_socket_directories = '{DIR}'\n\
             max_connections = 200\n\
             fsync = {fsync}\n\
             synchronous_commit = {sync_commit}\n\
             full_page_writes = on\n\
             deadlock_timeout = '20ms'\n\
             wal_level = replica\n\
             max_wal_senders = 16\n\
             wal_keep_size = '256MB'\n\
             hot_standby = on\n\
             recovery_init_sync_method = syncfs\n\
             logging_collector = off\n\
             log_destination = 'stderr'\n\
             log_line_prefix = '%m [%p] %q%u@%d '\n\
             log_min_messages = warning\n",
            fsync = crate::db::on_off(self.opts.fsync),
            sync_commit = self.opts.synchronous_commit.name(),
        );
        let hba = "# Written by faultline: the superuser over the socket in the data directory's\n\
                   # parent (root and postgres only), everything else with the run's password.\n\
                   local all all trust\n\
                   host all all 0.0.0.0/0 scram-sha-256\n\
                   host all all ::/0 scram-sha-256\n\
                   host replication all 0.0.0.0/0 scram-sha-256\n";
        let script = format!(
            "set -e\n\
             mkdir -p {DIR} /var/log/faultline-db\n\
             chmod a+x /var/lib/faultline-db\n\
             chown {USER}: {DIR}\n\
             chmod 700 {DIR}\n\
             mkdir -p {DATA}\n\
             chown {USER}: {DATA}\n\
             chmod 700 {DATA}\n\
             umask 077\n\
             printf '%s\\n' {pw} > {PWFILE}\n\
             chown {USER}: {PWFILE}\n\
             {initdb} -D {DATA} -U {USER} -E UTF8 --locale=C --auth-local=trust --auth-host=scram-sha-256 --pwfile={PWFILE} --no-sync >&2\n\
             rm -f {PWFILE}\n\
             cat > {DATA}/faultline.conf <<'FAULTLINE_EOF'\n{conf}FAULTLINE_EOF\n\
             cat > {DATA}/pg_hba.conf <<'FAULTLINE_EOF'\n{hba}FAULTLINE_EOF\n\
             echo \"include 'faultline.conf'\" >> {DATA}/postgresql.conf\n\
             chown {USER}: {DATA}/faultline.conf {DATA}/pg_hba.conf\n",
            pw = quote(&self.password),
            initdb = as_postgres(&format!("{BIN}/initdb")),
        );
        run(cluster, node, "configure (initdb)", &script).map(|_| ())
    }

    fn start(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        if !self.runs_on(node) {
            return Ok(());
        }
        let backup = if self.is_replica(node) {
            self.base_backup(node)?
        } else {
            String::new()
        };
        let script = format!(
            "mkdir -p /var/log/faultline-db\n\
             {backup}\
             cd {DIR}\n\
             echo \"== start $(date -u +%FT%TZ)\" >> {LOG}\n\
             setsid {postgres} -D {DATA} </dev/null >>{LOG} 2>&1 &\n\
             echo $! > {PIDFILE}\n",
            postgres = as_postgres(&format!("{BIN}/postgres")),
        );
        run(cluster, node, "start", &script).map(|_| ())
    }

    fn wait_ready(&self, cluster: &Cluster, node: &str, timeout: Duration) -> Result<(), DbError> {
        if !self.runs_on(node) {
            return Ok(());
        }
        // The primary makes the table; a replica is ready once it has it (replicated).
        let sql = if self.is_primary(node) {
            format!(
                "CREATE TABLE IF NOT EXISTS {APPEND_TABLE} (k bigint PRIMARY KEY, v bigint[] NOT NULL); \
                 CREATE TABLE IF NOT EXISTS {REGISTER_TABLE} (k bigint PRIMARY KEY, v bigint NOT NULL)"
            )
        } else {
            format!("SELECT count(*) FROM {APPEND_TABLE} WHERE false")
        };
        let script = format!(
            "{BIN}/psql -h {DIR} -p {PORT} -U {USER} -d postgres -v ON_ERROR_STOP=1 -qAt -c {}",
            quote(&sql)
        );
        let deadline = Instant::now() + timeout;
        loop {
            // Ready once it answers over its socket on the node, and then as clients reach
            // it: another process on its port (which the socket does not see) is named.
            let last = match run(cluster, node, "create the table", &script) {
                Ok(_) => match self.answers_clients(node, Duration::from_secs(2)) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        let bind = Self::bind_failures(cluster, node);
                        if !bind.is_empty() {
                            return Err(DbError::Step {
                                node: node.to_string(),
                                step: "wait until ready".into(),
                                message: format!(
                                    "postgres could not listen on port {PORT} (another process holds it?), and clients reach {}:{PORT} in vain ({e}); its log:\n{bind}",
                                    self.addr(node)?
                                ),
                            });
                        }
                        format!("{}:{PORT} does not answer clients: {e}", self.addr(node)?)
                    }
                },
                Err(DbError::Step { message, .. }) => message,
                Err(e) => return Err(e),
            };
            if self.pids(cluster, node)?.is_empty() {
                return Err(DbError::Step {
                    node: node.to_string(),
                    step: "start".into(),
                    message: format!(
                        "postgres exited; the end of {LOG}:\n{}",
                        Self::log_tail(cluster, node)
                    ),
                });
            }
            if Instant::now() >= deadline {
                return Err(DbError::Step {
                    node: node.to_string(),
                    step: "wait until ready".into(),
                    message: format!("postgres did not answer within {timeout:?}: {last}"),
                });
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn pids(&self, cluster: &Cluster, node: &str) -> Result<Vec<u32>, DbError> {
        // The postmaster (when the pid file names a live postgres) and its children.
        let script = format!(
            "p=$(cat {PIDFILE} 2>/dev/null) || exit 0\n\
             case \"$p\" in ''|*[!0-9]*) exit 0;; esac\n\
             [ \"$(cat /proc/$p/comm 2>/dev/null)\" = postgres ] || exit 0\n\
             echo \"$p\"\n\
             ps -o pid= --ppid \"$p\" || true\n"
        );
        Ok(run(cluster, node, "find postgres processes", &script)?
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    }

    fn wipe(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        self.kill(cluster, node)?;
        run(
            cluster,
            node,
            "wipe",
            &format!("rm -rf {DIR}; mkdir -p /var/log/faultline-db; : > {LOG}"),
        )
        .map(|_| ())
    }

    fn primaries(&self, _cluster: &Cluster) -> Result<Vec<String>, DbError> {
        Ok(vec![self.primary.clone()])
    }

    fn log_files(&self) -> Vec<String> {
        vec![LOG.to_string()]
    }

    fn data_dir(&self) -> Option<String> {
        Some(DATA.to_string())
    }

    fn client(
        &self,
        node: &str,
        timeout: Duration,
        ctx: &ClientContext,
    ) -> Result<Arc<dyn Client>, DbError> {
        let workload = SqlWorkload::of("postgres", ctx)?;
        let mut driver = PostgresDriver::new(
            self.config(&self.primary, timeout)?,
            self.opts.isolation,
            timeout,
        );
        if self.opts.reads == Reads::Replicas && self.is_replica(node) {
            driver = driver.reading_from(self.config(node, timeout)?);
        }
        Ok(Arc::new(SqlClient::new(driver, workload, timeout)))
    }
}
