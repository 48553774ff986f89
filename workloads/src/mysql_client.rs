//! The transactional client of MariaDB (and Galera, which speaks the same protocol), on
//! `mysql_async`, with the SQL its tables need and [`classify`], which decides each outcome.
//!
//! One connection per worker (made on first use and again after it was lost). Each
//! [`Op::Txn`] runs as `SET TRANSACTION ISOLATION LEVEL ...`, `START TRANSACTION`, one
//! statement per micro-op, then `COMMIT`, all within the op's timeout:
//!
//! - list-append: `INSERT INTO faultline_append (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE
//!   v = CONCAT(v, ',', VALUES(v))`, the list being a `TEXT` of comma-separated integers, and
//!   `SELECT v FROM faultline_append WHERE k = ?` (no row: the empty list);
//! - rw-register: `INSERT INTO faultline_register (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE
//!   v = VALUES(v)` and `SELECT v FROM faultline_register WHERE k = ?` (no row: null).

pub use crate::isolation::Isolation;
use crate::op::{txn_completion, BoxFuture, Client, MicroOp, Op, Outcome, ReadValue};
use checkers::history::{Key, Value};
use checkers::txn::Consistency;
use mysql_async::prelude::Queryable;
use std::time::Duration;

/// The database (schema) faultline's tables live in.
pub const SCHEMA: &str = "faultline";
/// The user clients log in as (over TCP, with the run's password).
pub const USER: &str = "faultline";
/// The list-append table: one row per key, its list as comma-separated integers.
pub const APPEND_TABLE: &str = "faultline_append";
/// The rw-register table: one row per key, its value.
pub const REGISTER_TABLE: &str = "faultline_register";

/// The statements that make the schema, its tables and the client's user (run as root over
/// the server's socket; each idempotent).
pub fn setup_sql(password: &str) -> String {
    // The password is hexadecimal (drawn by faultline), so it needs no escaping; refuse
    // anything else rather than quote it wrongly.
    let pw: String = password
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!(
        "CREATE DATABASE IF NOT EXISTS {SCHEMA};\n\
         CREATE TABLE IF NOT EXISTS {SCHEMA}.{APPEND_TABLE} (k BIGINT PRIMARY KEY, v TEXT NOT NULL) ENGINE=InnoDB;\n\
         CREATE TABLE IF NOT EXISTS {SCHEMA}.{REGISTER_TABLE} (k BIGINT PRIMARY KEY, v BIGINT NOT NULL) ENGINE=InnoDB;\n\
         CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{pw}';\n\
         ALTER USER '{USER}'@'%' IDENTIFIED BY '{pw}';\n\
         GRANT ALL PRIVILEGES ON {SCHEMA}.* TO '{USER}'@'%';\n"
    )
}

impl Isolation {
    /// The statement that sets the level of the next transaction.
    pub fn set_statement(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
            Isolation::RepeatableRead => "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            Isolation::Serializable => "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        }
    }

    /// What MariaDB promises at this level: read committed; repeatable read by its name
    /// (PL-2.99), or snapshot isolation when `innodb_snapshot_isolation` is on (MariaDB's
    /// documentation: with it, repeatable read "is actually Snapshot Isolation", conflicts
    /// reported as error 1020); serializable.
    pub fn promises(self, snapshot_isolation: bool) -> Consistency {
        match self {
            Isolation::ReadCommitted => Consistency::ReadCommitted,
            Isolation::RepeatableRead if snapshot_isolation => Consistency::SnapshotIsolation,
            Isolation::RepeatableRead => Consistency::RepeatableRead,
            Isolation::Serializable => Consistency::Serializable,
        }
    }
}

/// How far a transaction got when it ended: before `COMMIT` was sent, nothing it did can
/// take effect; once it was sent, it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connecting, `SET TRANSACTION`, `START TRANSACTION`, or the micro-ops' statements.
    BeforeCommit,
    /// `COMMIT` was sent (or is being sent).
    Commit,
}

/// Why a transaction did not commit, before classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnError {
    /// The server answered with an error.
    Server {
        /// MariaDB's error number, e.g. 1213.
        code: u16,
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

/// Error numbers that mean the server aborted the transaction (or the statement, and the
/// client rolls back the rest), wherever they come from: 1213 deadlock (also Galera's
/// certification failure), 1205 lock wait timeout, 1020 record changed since last read
/// (`innodb_snapshot_isolation`), 1180 error during COMMIT (the engine refused to commit).
pub const ABORTED: [u16; 4] = [1213, 1205, 1020, 1180];

/// Classifies how a transaction that `invoked` (its invoke's value) ended:
///
/// - 1213, 1205, 1020 or 1180 ([`ABORTED`]): the server aborted it: `fail`, even when
///   `COMMIT` reported it;
/// - any error, lost connection or timeout before `COMMIT` was sent: it cannot commit (the
///   client rolls back, and the server rolls back an open transaction whose connection
///   goes): `fail`;
/// - a lost connection, a timeout or any other error during or after `COMMIT`: it may have
///   committed: `info`.
///
/// A committed transaction is `ok` with its reads (see [`txn_completion`]); never guessed.
pub fn classify(invoked: Value, phase: Phase, error: TxnError) -> Outcome {
    let text = match &error {
        TxnError::Server { code, message } => format!("{code}: {message}"),
        TxnError::Connection(e) => format!("connection: {e}"),
        TxnError::Timeout => "timeout".to_string(),
        TxnError::Other(e) => e.clone(),
    };
    match (&error, phase) {
        (TxnError::Server { code, .. }, _) if ABORTED.contains(code) => {
            Outcome::fail(invoked, text)
        }
        (_, Phase::BeforeCommit) => Outcome::fail(invoked, text),
        (_, Phase::Commit) => Outcome::info(invoked, format!("during COMMIT: {text}")),
    }
}

/// What a mysql_async error was, for [`classify`].
pub fn txn_error(e: &mysql_async::Error) -> TxnError {
    match e {
        mysql_async::Error::Server(s) => TxnError::Server {
            code: s.code,
            message: s.message.clone(),
        },
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => {
            TxnError::Connection(error_chain(e))
        }
        _ => TxnError::Other(error_chain(e)),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// Parses a list-append value (`1,2,3`).
pub fn parse_list(text: &str) -> Result<Vec<i64>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|x| {
            x.trim()
                .parse::<i64>()
                .map_err(|e| format!("element {x:?} of list {text:?}: {e}"))
        })
        .collect()
}

/// A client of one MariaDB server: one connection (made on first use, made again after it
/// was lost), one transaction at a time.
pub struct MysqlClient {
    opts: mysql_async::Opts,
    isolation: Isolation,
    timeout: Duration,
    /// Who runs it, in messages (`mariadb`, `galera`).
    name: &'static str,
    /// Whether reads are of rw-register's table (else list-append's).
    registers: bool,
    conn: tokio::sync::Mutex<Option<mysql_async::Conn>>,
}

impl MysqlClient {
    /// A client of the server at `host:port`, logging in as [`USER`] with `password`,
    /// running every transaction at `isolation`, each within `timeout` (connecting included);
    /// its reads are of rw-register's table when `registers`, else of list-append's.
    pub fn new(
        name: &'static str,
        registers: bool,
        host: String,
        port: u16,
        password: String,
        isolation: Isolation,
        timeout: Duration,
    ) -> MysqlClient {
        // A lock wait ends in an error (1205, so `fail`) before the op's timeout.
        let lock_secs = (timeout.as_secs() / 2).max(1);
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .prefer_socket(false)
            .user(Some(USER))
            .pass(Some(password))
            .db_name(Some(SCHEMA))
            .init(vec![format!(
                "SET SESSION innodb_lock_wait_timeout = {lock_secs}"
            )])
            .stmt_cache_size(16);
        MysqlClient {
            opts: opts.into(),
            isolation,
            timeout,
            name,
            registers,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// SET TRANSACTION, START TRANSACTION, the micro-ops, COMMIT; `phase` says how far it got.
    async fn transaction(
        &self,
        conn: &mut mysql_async::Conn,
        mops: &[MicroOp],
        phase: &mut Phase,
    ) -> Result<Vec<Option<ReadValue>>, TxnError> {
        let db = |e: mysql_async::Error| txn_error(&e);
        conn.query_drop(self.isolation.set_statement())
            .await
            .map_err(db)?;
        conn.query_drop("START TRANSACTION").await.map_err(db)?;
        let mut reads = Vec::with_capacity(mops.len());
        for m in mops {
            let key = match m.key() {
                Key::Int(k) => *k,
                Key::Str(s) => {
                    return Err(TxnError::Other(format!(
                        "{} client: key {s:?} is not an integer",
                        self.name
                    )))
                }
            };
            match m {
                MicroOp::Append { value, .. } => {
                    conn.exec_drop(
                        format!(
                            "INSERT INTO {APPEND_TABLE} (k, v) VALUES (?, ?) \
                             ON DUPLICATE KEY UPDATE v = CONCAT(v, ',', VALUES(v))"
                        ),
                        (key, value.to_string()),
                    )
                    .await
                    .map_err(db)?;
                    reads.push(None);
                }
                MicroOp::Write { value, .. } => {
                    conn.exec_drop(
                        format!(
                            "INSERT INTO {REGISTER_TABLE} (k, v) VALUES (?, ?) \
                             ON DUPLICATE KEY UPDATE v = VALUES(v)"
                        ),
                        (key, *value),
                    )
                    .await
                    .map_err(db)?;
                    reads.push(None);
                }
                MicroOp::Read { .. } => {
                    let register = self.registers;
                    let table = if register {
                        REGISTER_TABLE
                    } else {
                        APPEND_TABLE
                    };
                    let row: Option<mysql_async::Row> = conn
                        .exec_first(format!("SELECT v FROM {table} WHERE k = ?"), (key,))
                        .await
                        .map_err(db)?;
                    let bad = |e: String| TxnError::Other(format!("reading key {key}: {e}"));
                    let read = match (row, register) {
                        (None, false) => ReadValue::List(Vec::new()),
                        (None, true) => ReadValue::Register(None),
                        (Some(mut r), false) => {
                            let text = match r.take_opt::<String, usize>(0) {
                                Some(Ok(t)) => t,
                                Some(Err(e)) => return Err(bad(e.to_string())),
                                None => return Err(bad("no column".into())),
                            };
                            ReadValue::List(parse_list(&text).map_err(bad)?)
                        }
                        (Some(mut r), true) => match r.take_opt::<i64, usize>(0) {
                            Some(Ok(v)) => ReadValue::Register(Some(v)),
                            Some(Err(e)) => return Err(bad(e.to_string())),
                            None => return Err(bad("no column".into())),
                        },
                    };
                    reads.push(Some(read));
                }
            }
        }
        *phase = Phase::Commit;
        conn.query_drop("COMMIT").await.map_err(db)?;
        Ok(reads)
    }

    async fn run_txn(&self, op: &Op, mops: &[MicroOp]) -> Outcome {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut slot = self.conn.lock().await;
        // The connection is taken out while a transaction runs: if this future is dropped
        // (the harness's own timeout), it goes with it, and the server rolls back.
        let mut conn = match slot.take() {
            Some(c) => c,
            None => {
                match tokio::time::timeout_at(deadline, mysql_async::Conn::new(self.opts.clone()))
                    .await
                {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => {
                        let e = match txn_error(&e) {
                            TxnError::Server { code, message } => {
                                TxnError::Connection(format!("{code}: {message}"))
                            }
                            other => other,
                        };
                        return classify(op.value(), Phase::BeforeCommit, e);
                    }
                    Err(_) => return classify(op.value(), Phase::BeforeCommit, TxnError::Timeout),
                }
            }
        };
        let mut phase = Phase::BeforeCommit;
        let result =
            tokio::time::timeout_at(deadline, self.transaction(&mut conn, mops, &mut phase)).await;
        match result {
            Ok(Ok(reads)) => {
                *slot = Some(conn);
                Outcome::ok(txn_completion(mops, &reads))
            }
            Ok(Err(e)) => {
                if let TxnError::Server { .. } = e {
                    // The server is fine: end the transaction (a failed COMMIT already has;
                    // a lock wait timeout rolled back only its statement) and keep the
                    // connection if that works, within the harness's own grace (the op
                    // timeout plus 0.5 s).
                    let rollback = tokio::time::timeout_at(
                        deadline + Duration::from_millis(300),
                        conn.query_drop("ROLLBACK"),
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

impl Client for MysqlClient {
    fn invoke<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match op {
                Op::Txn(mops) => self.run_txn(op, mops).await,
                other => Outcome::fail(
                    other.value(),
                    format!("{} client: no op {:?}", self.name, other.f()),
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

    fn server(code: u16) -> TxnError {
        TxnError::Server {
            code,
            message: "m".into(),
        }
    }

    #[test]
    fn aborts_are_fail_wherever_they_come_from() {
        for code in ABORTED {
            for phase in [Phase::BeforeCommit, Phase::Commit] {
                let o = classify(invoked(), phase, server(code));
                assert_eq!(o.kind, EventKind::Fail, "{code} {phase:?}");
                assert_eq!(o.value, invoked(), "a failed transaction keeps its invoke");
                assert!(o.error.unwrap().starts_with(&code.to_string()));
            }
        }
    }

    #[test]
    fn before_commit_everything_is_fail_and_after_it_unknown_is_info() {
        let others = [
            server(1062),
            server(1047),
            server(2013),
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
    fn lists_parse_and_garbage_is_refused() {
        assert_eq!(parse_list(""), Ok(vec![]));
        assert_eq!(parse_list("1"), Ok(vec![1]));
        assert_eq!(parse_list("1,2,30"), Ok(vec![1, 2, 30]));
        assert!(parse_list("1,,2").is_err());
        assert!(parse_list("1,x").is_err());
    }

    #[test]
    fn consistency_follows_the_level_and_snapshot_isolation() {
        use Isolation::*;
        assert_eq!(ReadCommitted.promises(false), Consistency::ReadCommitted);
        assert_eq!(RepeatableRead.promises(false), Consistency::RepeatableRead);
        assert_eq!(
            RepeatableRead.promises(true),
            Consistency::SnapshotIsolation
        );
        assert_eq!(Serializable.promises(true), Consistency::Serializable);
        for n in Isolation::NAMES {
            assert_eq!(Isolation::parse(n).map(Isolation::name), Some(n));
        }
    }

    #[test]
    fn the_setup_never_carries_a_quote_from_the_password() {
        let sql = setup_sql("ab'; DROP TABLE x; --12");
        assert!(sql.contains("IDENTIFIED BY 'abDROPTABLEx12'"), "{sql}");
    }

    #[test]
    fn other_ops_are_refused_and_no_server_is_fail() {
        let c = MysqlClient::new(
            "mariadb",
            false,
            "127.0.0.1".into(),
            1,
            "x".into(),
            Isolation::Serializable,
            Duration::from_secs(1),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let o = rt.block_on(c.invoke(&Op::Add { value: 1 }));
        assert_eq!(o.kind, EventKind::Fail);
        // Nothing listens on port 1: the connection cannot be made, so nothing was sent.
        let o = rt.block_on(c.invoke(&Op::Txn(vec![MicroOp::Read { key: Key::Int(1) }])));
        assert_eq!(o.kind, EventKind::Fail, "{o:?}");
    }
}
