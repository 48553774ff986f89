//! What the client of MariaDB (and Galera, which speaks the same protocol) brings to the SQL
//! core ([`crate::sql`]): connecting with `mysql_async`, the SQL its tables need, and the
//! error numbers that mean the server aborted the transaction ([`ABORTED`]).
//!
//! One connection per worker (made on first use and again after it was lost). Each
//! [`crate::op::Op::Txn`] runs as `SET TRANSACTION ISOLATION LEVEL ...`, `START TRANSACTION`,
//! one statement per micro-op, then `COMMIT`, all within the op's timeout:
//!
//! - list-append: `INSERT INTO faultline_append (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE
//!   v = CONCAT(v, ',', VALUES(v))`, the list being a `TEXT` of comma-separated integers, and
//!   `SELECT v FROM faultline_append WHERE k = ?` (no row: the empty list);
//! - rw-register: `INSERT INTO faultline_register (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE
//!   v = VALUES(v)` and `SELECT v FROM faultline_register WHERE k = ?` (no row: null).

use crate::db::error_chain;
pub use crate::isolation::Isolation;
use crate::op::{BoxFuture, Outcome, ReadValue};
use crate::sql::{Driver, Phase, Route, SqlClient, Step, TxnError};
use checkers::history::Value;
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

/// Error numbers that mean the server aborted the transaction (or the statement, and the
/// client rolls back the rest), wherever they come from: 1213 deadlock (also Galera's
/// certification failure), 1205 lock wait timeout, 1020 record changed since last read
/// (`innodb_snapshot_isolation`), 1180 error during COMMIT (the engine refused to commit).
pub const ABORTED: [&str; 4] = ["1213", "1205", "1020", "1180"];

/// Classifies how a transaction that `invoked` (its invoke's value) ended: the SQL core's
/// [`crate::sql::classify`] with MariaDB's [`ABORTED`] (1213, 1205, 1020 or 1180 is `fail`
/// even when `COMMIT` reported it; anything else is `fail` before `COMMIT` was sent and
/// `info` once it was).
pub fn classify(invoked: Value, phase: Phase, error: TxnError) -> Outcome {
    crate::sql::classify(invoked, phase, error, &ABORTED)
}

/// What a mysql_async error was, for [`classify`].
pub fn txn_error(e: &mysql_async::Error) -> TxnError {
    match e {
        mysql_async::Error::Server(s) => TxnError::Db {
            code: s.code.to_string(),
            message: s.message.clone(),
        },
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => {
            TxnError::Connection(error_chain(e))
        }
        _ => TxnError::Other(error_chain(e)),
    }
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

/// A MariaDB (or Galera) client: the SQL core with [`MysqlDriver`].
pub type MysqlClient = SqlClient<MysqlDriver>;

/// MariaDB's differences: the server's connection options (with the lock wait timeout) and
/// the isolation level.
pub struct MysqlDriver {
    opts: mysql_async::Opts,
    isolation: Isolation,
    /// Who runs it, in messages (`mariadb`, `galera`).
    name: &'static str,
}

impl MysqlDriver {
    /// A driver for the server at `host:port`, logging in as [`USER`] with `password`,
    /// running every transaction at `isolation`, for ops that give up after `timeout`; `name`
    /// says who runs it in messages.
    pub fn new(
        name: &'static str,
        host: String,
        port: u16,
        password: String,
        isolation: Isolation,
        timeout: Duration,
    ) -> MysqlDriver {
        // A lock wait ends in an error (1205, so `fail`) before the op's timeout.
        let lock_secs = crate::sql::lock_wait(timeout).as_secs().max(1);
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
        MysqlDriver {
            opts: opts.into(),
            isolation,
            name,
        }
    }

    async fn run_step(
        &self,
        conn: &mut mysql_async::Conn,
        step: Step,
    ) -> Result<Option<ReadValue>, TxnError> {
        let db = |e: mysql_async::Error| txn_error(&e);
        match step {
            Step::Append { key, value } => {
                conn.exec_drop(
                    format!(
                        "INSERT INTO {APPEND_TABLE} (k, v) VALUES (?, ?) \
                         ON DUPLICATE KEY UPDATE v = CONCAT(v, ',', VALUES(v))"
                    ),
                    (key, value.to_string()),
                )
                .await
                .map_err(db)?;
                Ok(None)
            }
            Step::WriteRegister { key, value } => {
                conn.exec_drop(
                    format!(
                        "INSERT INTO {REGISTER_TABLE} (k, v) VALUES (?, ?) \
                         ON DUPLICATE KEY UPDATE v = VALUES(v)"
                    ),
                    (key, value),
                )
                .await
                .map_err(db)?;
                Ok(None)
            }
            Step::ReadList { key } => {
                let text: Option<String> = read_column(conn, APPEND_TABLE, key).await?;
                let list = match text {
                    None => Vec::new(),
                    Some(t) => parse_list(&t).map_err(|e| bad_read(key, e))?,
                };
                Ok(Some(ReadValue::List(list)))
            }
            Step::ReadRegister { key } => {
                let value: Option<i64> = read_column(conn, REGISTER_TABLE, key).await?;
                Ok(Some(ReadValue::Register(value)))
            }
        }
    }
}

fn bad_read(key: i64, e: String) -> TxnError {
    TxnError::Other(format!("reading key {key}: {e}"))
}

/// `v` of `key`'s row in `table`, `None` when there is no row.
async fn read_column<T: mysql_async::prelude::FromValue>(
    conn: &mut mysql_async::Conn,
    table: &str,
    key: i64,
) -> Result<Option<T>, TxnError> {
    let row: Option<mysql_async::Row> = conn
        .exec_first(format!("SELECT v FROM {table} WHERE k = ?"), (key,))
        .await
        .map_err(|e| txn_error(&e))?;
    match row.map(|mut r| r.take_opt::<T, usize>(0)) {
        None => Ok(None),
        Some(Some(Ok(v))) => Ok(Some(v)),
        Some(Some(Err(e))) => Err(bad_read(key, e.to_string())),
        Some(None) => Err(bad_read(key, "no column".into())),
    }
}

impl Driver for MysqlDriver {
    type Conn = mysql_async::Conn;
    const ABORTED: &'static [&'static str] = &ABORTED;

    fn name(&self) -> &'static str {
        self.name
    }

    fn connect(&self, _route: Route) -> BoxFuture<'_, Result<mysql_async::Conn, TxnError>> {
        Box::pin(async move {
            mysql_async::Conn::new(self.opts.clone())
                .await
                .map_err(|e| txn_error(&e))
        })
    }

    fn begin(&self, _route: Route) -> Vec<&'static str> {
        vec![self.isolation.set_statement(), "START TRANSACTION"]
    }

    fn simple<'a>(
        &'a self,
        conn: &'a mut mysql_async::Conn,
        sql: &'static str,
    ) -> BoxFuture<'a, Result<(), TxnError>> {
        Box::pin(async move { conn.query_drop(sql).await.map_err(|e| txn_error(&e)) })
    }

    fn execute<'a>(
        &'a self,
        conn: &'a mut mysql_async::Conn,
        step: Step,
    ) -> BoxFuture<'a, Result<Option<ReadValue>, TxnError>> {
        Box::pin(self.run_step(conn, step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{Client, MicroOp, Op};
    use crate::sql::test_support::{invoked, server};
    use crate::sql::SqlWorkload;
    use checkers::history::{EventKind, Key};

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
            server("1062"),
            server("1047"),
            server("2013"),
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
        let driver = MysqlDriver::new(
            "mariadb",
            "127.0.0.1".into(),
            1,
            "x".into(),
            Isolation::Serializable,
            Duration::from_secs(1),
        );
        let c: MysqlClient =
            SqlClient::new(driver, SqlWorkload::ListAppend, Duration::from_secs(1));
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
