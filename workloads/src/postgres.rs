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
//! The client runs each [`Op::Txn`] as `BEGIN ISOLATION LEVEL ...`, one statement per
//! micro-op (an append is one `INSERT ... ON CONFLICT (k) DO UPDATE SET v = v || ...`, a
//! rw-register write one `INSERT ... ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`, a read
//! one `SELECT v`), then `COMMIT`, on one connection per worker; [`classify`] decides each
//! outcome.

use crate::db::{only_options, run, Database, DatabaseKind, DbError, DbOptions};
pub use crate::isolation::Isolation;
use crate::op::{txn_completion, BoxFuture, Client, MicroOp, Op, Outcome, ReadValue};
use checkers::history::{Key, Value};
use checkers::txn::Consistency;
use clusters::{quote, Cluster};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where PostgreSQL keeps everything on the primary (the node's private data directory).
pub const DIR: &str = "/var/lib/faultline-db/postgres";
/// The data directory (`PGDATA`).
pub const DATA: &str = "/var/lib/faultline-db/postgres/data";
/// The server's log (collected into `nodes/<node>/`).
pub const LOG: &str = "/var/log/faultline-db/postgres.log";
/// The postmaster's PID, written by the start script.
const PIDFILE: &str = "/var/lib/faultline-db/postgres/postgres.pid";
/// The superuser's password, for initdb.
const PWFILE: &str = "/var/lib/faultline-db/postgres/pwfile";
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
const USER: &str = "postgres";
/// A replica's password file for reaching the primary (the postgres user's, mode 0600).
const PGPASS: &str = "/var/lib/faultline-db/postgres/pgpass";

/// Where read-only transactions go (`reads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Every transaction runs on the primary.
    Primary,
    /// A worker bound to a replica runs its read-only transactions on that replica.
    Replicas,
}

impl Reads {
    /// The option value.
    pub fn name(self) -> &'static str {
        match self {
            Reads::Primary => "primary",
            Reads::Replicas => "replicas",
        }
    }
}

/// How PostgreSQL gets onto the primary (`install`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// The node's own binaries, else its apt installs `postgresql-15`.
    Auto,
    /// Always run `apt-get install postgresql-15` (a no-op when installed).
    Package,
    /// Never install: the binaries must be there.
    Never,
}

impl Isolation {
    /// The statement that starts a transaction at this level.
    pub fn begin(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED",
            Isolation::RepeatableRead => "BEGIN ISOLATION LEVEL REPEATABLE READ",
            Isolation::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        }
    }

    /// The statement that starts a read-only transaction on a replica: a hot standby has no
    /// serializable mode, so repeatable read serves both stronger levels.
    pub fn begin_on_replica(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY",
            Isolation::RepeatableRead | Isolation::Serializable => {
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            }
        }
    }
}

/// PostgreSQL's options, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// How to install.
    pub install: Install,
    /// The level of every transaction.
    pub isolation: Isolation,
    /// How many streaming replicas follow the primary (on the nodes after it).
    pub replicas: usize,
    /// Where read-only transactions go.
    pub reads: Reads,
    /// The model the run is checked against.
    pub consistency: Consistency,
}

impl PostgresOptions {
    /// The option names.
    pub const NAMES: [&'static str; 5] =
        ["install", "isolation", "replicas", "reads", "consistency"];

    /// Parses (and validates) options by name; absent ones take their defaults (isolation
    /// serializable, no replicas, reads on the primary, consistency what that promises).
    pub fn parse(given: &DbOptions) -> Result<PostgresOptions, DbError> {
        only_options("postgres", given, &Self::NAMES)?;
        let install = match given.get("install").map(String::as_str) {
            None | Some("auto") => Install::Auto,
            Some("package") => Install::Package,
            Some("never") => Install::Never,
            Some(other) => {
                return Err(DbError::Config(format!(
                    "postgres install {other:?}: expected auto, package or never"
                )))
            }
        };
        let isolation = match given.get("isolation") {
            None => Isolation::Serializable,
            Some(s) => Isolation::parse(s).ok_or_else(|| {
                DbError::Config(format!(
                    "postgres isolation {s:?}: expected {}",
                    Isolation::NAMES.join(", ")
                ))
            })?,
        };
        let replicas = match given.get("replicas") {
            None => 0,
            Some(s) => s.parse::<usize>().map_err(|_| {
                DbError::Config(format!(
                    "postgres replicas {s:?}: expected a number of replicas (0 or more)"
                ))
            })?,
        };
        let reads = match given.get("reads").map(String::as_str) {
            None | Some("primary") => Reads::Primary,
            Some("replicas") if replicas > 0 => Reads::Replicas,
            Some("replicas") => {
                return Err(DbError::Config(
                    "postgres reads=replicas needs replicas=N with N of 1 or more".into(),
                ))
            }
            Some(other) => {
                return Err(DbError::Config(format!(
                    "postgres reads {other:?}: expected primary or replicas"
                )))
            }
        };
        let consistency = match given.get("consistency") {
            None => Self::promises(isolation, reads),
            Some(s) => s
                .parse::<Consistency>()
                .map_err(|e| DbError::Config(format!("postgres consistency: {e}")))?,
        };
        Ok(PostgresOptions {
            install,
            isolation,
            replicas,
            reads,
            consistency,
        })
    }

    /// What a deployment promises. On the primary alone, what the level promises: read
    /// committed; snapshot isolation for repeatable read (its documentation: "the Repeatable
    /// Read isolation level is implemented using a technique known ... as Snapshot
    /// Isolation"); strict serializability for serializable (SSI on one server, where a
    /// transaction's snapshot is taken after every transaction that committed before it
    /// began). With reads from asynchronous replicas, a read-only
    /// transaction sees a snapshot of the primary's past (a prefix of its commits) at
    /// repeatable read: at most snapshot isolation, whatever the level of the writers (a
    /// standby has no serializable mode; PostgreSQL's documentation warns that its snapshots
    /// may show states no serial order explains), and read committed stays read committed.
    pub fn promises(isolation: Isolation, reads: Reads) -> Consistency {
        match (reads, isolation) {
            (Reads::Primary, Isolation::ReadCommitted) => Consistency::ReadCommitted,
            (Reads::Primary, Isolation::RepeatableRead) => Consistency::SnapshotIsolation,
            (Reads::Primary, Isolation::Serializable) => Consistency::StrictSerializable,
            (Reads::Replicas, Isolation::ReadCommitted) => Consistency::ReadCommitted,
            (Reads::Replicas, _) => Consistency::SnapshotIsolation,
        }
    }

    /// Every option by name, defaults included (what test.yaml records).
    pub fn to_options(&self) -> DbOptions {
        let mut m = DbOptions::new();
        m.insert(
            "install".into(),
            match self.install {
                Install::Auto => "auto",
                Install::Package => "package",
                Install::Never => "never",
            }
            .into(),
        );
        m.insert("isolation".into(), self.isolation.name().into());
        m.insert("replicas".into(), self.replicas.to_string());
        m.insert("reads".into(), self.reads.name().into());
        m.insert("consistency".into(), self.consistency.name().into());
        m
    }
}

/// PostgreSQL as `--db postgres` names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresKind;

impl DatabaseKind for PostgresKind {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn about(&self) -> &'static str {
        "PostgreSQL 15 (Debian's postgresql-15), one primary and optional streaming replicas, transactions at a chosen isolation level"
    }
    fn workloads(&self) -> &'static [&'static str] {
        &["list-append", "rw-register"]
    }
    fn option_help(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("install", "auto (the node's own postgresql-15, else its apt), package (apt-get install postgresql-15), or never [default: auto]; also --db-install"),
            ("isolation", "read-committed, repeatable-read or serializable: the level of every transaction [default: serializable]; also --isolation"),
            ("replicas", "how many asynchronous streaming replicas follow the primary, on the nodes after it [default: 0]"),
            ("reads", "primary, or replicas: workers bound to a replica run read-only transactions there [default: primary]"),
            ("consistency", "the model the history is checked against [default: what the deployment promises: read-committed, snapshot-isolation, strict-serializable on the primary alone; at most snapshot-isolation with reads=replicas]; also --consistency"),
        ]
    }
    fn resolve_options(&self, given: &DbOptions) -> Result<DbOptions, DbError> {
        Ok(PostgresOptions::parse(given)?.to_options())
    }
    fn consistency(&self, options: &DbOptions) -> Result<Option<Consistency>, DbError> {
        Ok(Some(PostgresOptions::parse(options)?.consistency))
    }
    fn open(&self, cluster: &Cluster, options: &DbOptions) -> Result<Arc<dyn Database>, DbError> {
        Ok(Arc::new(Postgres::new(
            cluster,
            PostgresOptions::parse(options)?,
        )?))
    }
}

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
        let password = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
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
               rm -rf {DATA}
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
        let apt = format!(
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {PACKAGE} >&2 || \
             {{ apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {PACKAGE} >&2; }}"
        );
        let (step, script) = match self.opts.install {
            Install::Auto => ("install (the node's postgresql-15, else apt)", format!("{have} || {{ {apt}; }}; {have}")),
            Install::Package => ("install (apt-get install postgresql-15)", format!("{apt}; {have}")),
            Install::Never => (
                "install (never: postgresql-15 must be on the node)",
                format!("{have} || {{ echo 'no {BIN}/postgres or no user {USER} on the node (install postgresql-15, or use install=auto)' >&2; exit 1; }}"),
            ),
        };
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
             fsync = on\n\
             synchronous_commit = on\n\
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
             log_min_messages = warning\n"
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

    fn client(
        &self,
        node: &str,
        timeout: Duration,
        ctx: &crate::db::ClientContext,
    ) -> Result<Arc<dyn Client>, DbError> {
        let client = PostgresClient::new(
            self.config(&self.primary, timeout)?,
            self.opts.isolation,
            timeout,
        )
        .with_registers(ctx.workload == "rw-register");
        Ok(Arc::new(
            if self.opts.reads == Reads::Replicas && self.is_replica(node) {
                client.reading_from(self.config(node, timeout)?)
            } else {
                client
            },
        ))
    }
}

/// One connection and its prepared statements (no append on a replica's).
struct Conn {
    client: tokio_postgres::Client,
    append: Option<tokio_postgres::Statement>,
    read: tokio_postgres::Statement,
    write_register: Option<tokio_postgres::Statement>,
    read_register: tokio_postgres::Statement,
}

/// Where a client's transactions run: a server and the connection to it (made on first use,
/// made again after it was lost).
struct Server {
    config: tokio_postgres::Config,
    /// Whether transactions that write run here (the primary).
    writable: bool,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

impl Server {
    fn new(config: tokio_postgres::Config, writable: bool) -> Server {
        Server {
            config,
            writable,
            conn: tokio::sync::Mutex::new(None),
        }
    }
}

/// A client of the primary (and, with [`PostgresClient::reading_from`], of a replica for
/// its read-only transactions): one transaction at a time.
pub struct PostgresClient {
    primary: Server,
    replica: Option<Server>,
    isolation: Isolation,
    timeout: Duration,
    /// Whether reads are of rw-register's table (else list-append's).
    registers: bool,
}

/// How far a transaction got when it ended: before `COMMIT` was sent, nothing it did can
/// take effect; once it was sent, it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connecting, `BEGIN`, or the micro-ops' statements.
    BeforeCommit,
    /// `COMMIT` was sent (or is being sent).
    Commit,
}

/// Why a transaction did not commit, before classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnError {
    /// PostgreSQL answered with an error (SQLSTATE `code`).
    Db {
        /// The SQLSTATE, e.g. `40001`.
        code: String,
        /// Its message.
        message: String,
    },
    /// The connection could not be made, was lost or broke.
    Connection(String),
    /// No answer within the client's timeout.
    Timeout,
    /// Anything else (a value that could not be decoded, an op the client does not run).
    Other(String),
}

/// SQLSTATEs that mean PostgreSQL aborted the transaction, wherever they come from:
/// serialization failure, deadlock detected, lock not available (`lock_timeout`).
pub const ABORTED: [&str; 3] = ["40001", "40P01", "55P03"];

/// Classifies how a transaction that `invoked` (its invoke's value) ended:
///
/// - a serialization failure (`40001`), a deadlock (`40P01`) or a lock timeout (`55P03`):
///   PostgreSQL aborted it: `fail`, even when `COMMIT` reported it;
/// - any error, lost connection or timeout before `COMMIT` was sent: it cannot commit
///   (the server rolls back an open transaction whose connection goes): `fail`;
/// - a lost connection, a timeout or any other error during or after `COMMIT`: it may have
///   committed: `info`.
///
/// A committed transaction is `ok` with its reads (see [`txn_completion`]); never guessed.
pub fn classify(invoked: Value, phase: Phase, error: TxnError) -> Outcome {
    let text = match &error {
        TxnError::Db { code, message } => format!("{code}: {message}"),
        TxnError::Connection(e) => format!("connection: {e}"),
        TxnError::Timeout => "timeout".to_string(),
        TxnError::Other(e) => e.clone(),
    };
    match (&error, phase) {
        (TxnError::Db { code, .. }, _) if ABORTED.contains(&code.as_str()) => {
            Outcome::fail(invoked, text)
        }
        (_, Phase::BeforeCommit) => Outcome::fail(invoked, text),
        (_, Phase::Commit) => Outcome::info(invoked, format!("during COMMIT: {text}")),
    }
}

/// What a tokio-postgres error was, for [`classify`].
fn txn_error(e: &tokio_postgres::Error) -> TxnError {
    if let Some(db) = e.as_db_error() {
        return TxnError::Db {
            code: db.code().code().to_string(),
            message: db.message().to_string(),
        };
    }
    let chain = error_chain(e);
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io {
        TxnError::Connection(chain)
    } else {
        TxnError::Other(chain)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

impl PostgresClient {
    /// A client that connects with `config` and runs every transaction at `isolation`,
    /// each within `timeout` (connecting included).
    pub fn new(
        config: tokio_postgres::Config,
        isolation: Isolation,
        timeout: Duration,
    ) -> PostgresClient {
        PostgresClient {
            primary: Server::new(config, true),
            replica: None,
            isolation,
            timeout,
            registers: false,
        }
    }

    /// Reads go to rw-register's table (a register, null when never written) when
    /// `registers`, else to list-append's (a list).
    pub fn with_registers(mut self, registers: bool) -> PostgresClient {
        self.registers = registers;
        self
    }

    /// This client, running its read-only transactions on the replica `config` reaches, at
    /// [`Isolation::begin_on_replica`]'s level.
    pub fn reading_from(mut self, config: tokio_postgres::Config) -> PostgresClient {
        self.replica = Some(Server::new(config, false));
        self
    }

    async fn connect(&self, server: &Server) -> Result<Conn, tokio_postgres::Error> {
        let (client, connection) = server.config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("postgres connection ended: {e}");
            }
        });
        // A lock wait ends in an error (55P03, so `fail`) well before the op's timeout.
        let lock_ms = (self.timeout.as_millis() / 2).max(10);
        client
            .batch_execute(&format!("SET lock_timeout = '{lock_ms}ms'"))
            .await?;
        let append = if server.writable {
            Some(
                client
                    .prepare(&format!(
                        "INSERT INTO {APPEND_TABLE} AS t (k, v) VALUES ($1, ARRAY[$2::bigint]) \
                         ON CONFLICT (k) DO UPDATE SET v = t.v || $2::bigint"
                    ))
                    .await?,
            )
        } else {
            None
        };
        let read = client
            .prepare(&format!("SELECT v FROM {APPEND_TABLE} WHERE k = $1"))
            .await?;
        let write_register = if server.writable {
            Some(
                client
                    .prepare(&format!(
                        "INSERT INTO {REGISTER_TABLE} AS t (k, v) VALUES ($1, $2::bigint) \
                         ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
                    ))
                    .await?,
            )
        } else {
            None
        };
        let read_register = client
            .prepare(&format!("SELECT v FROM {REGISTER_TABLE} WHERE k = $1"))
            .await?;
        Ok(Conn {
            client,
            append,
            read,
            write_register,
            read_register,
        })
    }

    /// BEGIN, the micro-ops, COMMIT; `phase` says how far it got.
    async fn transaction(
        &self,
        conn: &Conn,
        begin: &str,
        mops: &[MicroOp],
        phase: &mut Phase,
    ) -> Result<Vec<Option<ReadValue>>, TxnError> {
        let db = |e: tokio_postgres::Error| txn_error(&e);
        conn.client.batch_execute(begin).await.map_err(db)?;
        let mut reads = Vec::with_capacity(mops.len());
        for m in mops {
            let key = match m.key() {
                Key::Int(k) => *k,
                Key::Str(s) => {
                    return Err(TxnError::Other(format!(
                        "postgres client: key {s:?} is not an integer"
                    )))
                }
            };
            match m {
                MicroOp::Append { value, .. } => {
                    let append = conn.append.as_ref().ok_or_else(|| {
                        TxnError::Other("postgres client: an append on a replica".into())
                    })?;
                    conn.client
                        .execute(append, &[&key, value])
                        .await
                        .map_err(db)?;
                    reads.push(None);
                }
                MicroOp::Read { .. } if self.registers => {
                    let row = conn
                        .client
                        .query_opt(&conn.read_register, &[&key])
                        .await
                        .map_err(db)?;
                    let value = match row {
                        None => None,
                        Some(r) => Some(r.try_get::<_, i64>(0).map_err(|e| {
                            TxnError::Other(format!("reading key {key}: {}", error_chain(&e)))
                        })?),
                    };
                    reads.push(Some(ReadValue::Register(value)));
                }
                MicroOp::Read { .. } => {
                    let row = conn
                        .client
                        .query_opt(&conn.read, &[&key])
                        .await
                        .map_err(db)?;
                    let list = match row {
                        None => Vec::new(),
                        Some(r) => r.try_get::<_, Vec<i64>>(0).map_err(|e| {
                            TxnError::Other(format!("reading key {key}: {}", error_chain(&e)))
                        })?,
                    };
                    reads.push(Some(ReadValue::List(list)));
                }
                MicroOp::Write { value, .. } => {
                    let write = conn.write_register.as_ref().ok_or_else(|| {
                        TxnError::Other("postgres client: a write on a replica".into())
                    })?;
                    conn.client
                        .execute(write, &[&key, value])
                        .await
                        .map_err(db)?;
                    reads.push(None);
                }
            }
        }
        *phase = Phase::Commit;
        conn.client.batch_execute("COMMIT").await.map_err(db)?;
        Ok(reads)
    }

    async fn run_txn(&self, op: &Op, mops: &[MicroOp]) -> Outcome {
        // Read-only transactions go to the replica where there is one; the rest to the
        // primary.
        let read_only = mops.iter().all(|m| matches!(m, MicroOp::Read { .. }));
        let (server, begin) = match &self.replica {
            Some(r) if read_only => (r, self.isolation.begin_on_replica()),
            _ => (&self.primary, self.isolation.begin()),
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut slot = server.conn.lock().await;
        // The connection is taken out while a transaction runs: if this future is dropped
        // (the harness's own timeout), it goes with it, and the server rolls back.
        let conn = match slot.take() {
            Some(c) if !c.client.is_closed() => c,
            _ => match tokio::time::timeout_at(deadline, self.connect(server)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    let e = match txn_error(&e) {
                        TxnError::Db { code, message } => {
                            TxnError::Connection(format!("{code}: {message}"))
                        }
                        other => other,
                    };
                    return classify(op.value(), Phase::BeforeCommit, e);
                }
                Err(_) => return classify(op.value(), Phase::BeforeCommit, TxnError::Timeout),
            },
        };
        let mut phase = Phase::BeforeCommit;
        let result =
            tokio::time::timeout_at(deadline, self.transaction(&conn, begin, mops, &mut phase))
                .await;
        match result {
            Ok(Ok(reads)) => {
                *slot = Some(conn);
                Outcome::ok(txn_completion(mops, &reads))
            }
            Ok(Err(e)) => {
                if let TxnError::Db { .. } = e {
                    // The server is fine: end the transaction (a failed COMMIT already has)
                    // and keep the connection if that works.
                    // Within the harness's own grace (the op timeout plus 0.5 s).
                    let rollback = tokio::time::timeout_at(
                        deadline + Duration::from_millis(300),
                        conn.client.batch_execute("ROLLBACK"),
                    )
                    .await;
                    if matches!(rollback, Ok(Ok(()))) {
                        *slot = Some(conn);
                    }
                }
                classify(op.value(), phase, e)
            }
            Err(_) => classify(op.value(), phase, TxnError::Timeout),
        }
    }
}

impl Client for PostgresClient {
    fn invoke<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match op {
                Op::Txn(mops) => self.run_txn(op, mops).await,
                other => Outcome::fail(
                    other.value(),
                    format!("postgres client: no op {:?}", other.f()),
                ),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::history::EventKind;

    fn invoked() -> Value {
        Op::Txn(vec![
            MicroOp::Append {
                key: Key::Int(1),
                value: 2,
            },
            MicroOp::Read { key: Key::Int(3) },
        ])
        .value()
    }

    fn db(code: &str) -> TxnError {
        TxnError::Db {
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn aborts_are_fail_wherever_they_come_from() {
        for code in ["40001", "40P01", "55P03"] {
            for phase in [Phase::BeforeCommit, Phase::Commit] {
                let o = classify(invoked(), phase, db(code));
                assert_eq!(o.kind, EventKind::Fail, "{code} {phase:?}");
                assert_eq!(o.value, invoked(), "a failed transaction keeps its invoke");
                assert!(o.error.unwrap().starts_with(code));
            }
        }
    }

    #[test]
    fn before_commit_everything_is_fail_and_after_it_unknown_is_info() {
        let others = [
            db("23505"),
            db("57P01"),
            TxnError::Connection("reset".into()),
            TxnError::Timeout,
            TxnError::Other("bad row".into()),
        ];
        for e in others {
            assert_eq!(
                classify(invoked(), Phase::BeforeCommit, e.clone()).kind,
                EventKind::Fail,
                "{e:?}"
            );
            let o = classify(invoked(), Phase::Commit, e.clone());
            assert_eq!(o.kind, EventKind::Info, "{e:?}");
            assert!(o.error.unwrap().starts_with("during COMMIT"));
        }
    }

    #[test]
    fn options_are_validated_and_consistency_follows_the_isolation_level() {
        let r = |pairs: &[(&str, &str)]| {
            let given: DbOptions = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            PostgresKind.resolve_options(&given)
        };
        let d = r(&[]).unwrap();
        assert_eq!(d["install"], "auto");
        assert_eq!(d["isolation"], "serializable");
        assert_eq!(d["consistency"], "strict-serializable");
        assert_eq!(
            r(&[("isolation", "repeatable-read")]).unwrap()["consistency"],
            "snapshot-isolation"
        );
        assert_eq!(
            r(&[("isolation", "read-committed")]).unwrap()["consistency"],
            "read-committed"
        );
        let over = r(&[
            ("isolation", "repeatable-read"),
            ("consistency", "serializable"),
        ])
        .unwrap();
        assert_eq!(over["consistency"], "serializable");
        assert_eq!(
            PostgresKind.consistency(&over).unwrap(),
            Some(Consistency::Serializable)
        );
        // Resolving is idempotent: what test.yaml records resolves to itself.
        assert_eq!(PostgresKind.resolve_options(&over).unwrap(), over);
        // Reads from asynchronous replicas promise at most snapshot isolation.
        assert_eq!(d["replicas"], "0");
        assert_eq!(d["reads"], "primary");
        let rep = r(&[("replicas", "2"), ("reads", "replicas")]).unwrap();
        assert_eq!(rep["consistency"], "snapshot-isolation");
        assert_eq!(PostgresKind.resolve_options(&rep).unwrap(), rep);
        assert_eq!(
            r(&[
                ("replicas", "1"),
                ("isolation", "read-committed"),
                ("reads", "replicas")
            ])
            .unwrap()["consistency"],
            "read-committed"
        );
        // Replicas that only follow (reads on the primary) change no promise.
        assert_eq!(
            r(&[("replicas", "2")]).unwrap()["consistency"],
            "strict-serializable"
        );
        for (pairs, want) in [
            (&[("isolation", "snapshot")][..], "expected read-committed"),
            (
                &[("consistency", "linearizable")][..],
                "unknown consistency",
            ),
            (
                &[("install", "upload")][..],
                "expected auto, package or never",
            ),
            (
                &[("read-mode", "serializable")][..],
                "no option \"read-mode\"",
            ),
            (&[("replicas", "-1")][..], "expected a number of replicas"),
            (&[("reads", "replicas")][..], "needs replicas=N"),
            (
                &[("replicas", "1"), ("reads", "standby")][..],
                "expected primary or replicas",
            ),
        ] {
            let e = r(pairs).unwrap_err().to_string();
            assert!(e.contains(want), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn other_ops_are_refused_without_effect() {
        let c = PostgresClient::new(
            tokio_postgres::Config::new(),
            Isolation::Serializable,
            Duration::from_secs(1),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let o = rt.block_on(c.invoke(&Op::Add { value: 1 }));
        assert_eq!(o.kind, EventKind::Fail);
        // No host configured: the connection cannot be made, so nothing was sent.
        let o = rt.block_on(c.invoke(&Op::Txn(vec![MicroOp::Read { key: Key::Int(1) }])));
        assert_eq!(o.kind, EventKind::Fail, "{o:?}");
    }
}
