//! What PostgreSQL's client brings to the SQL core ([`crate::sql`]): connecting with
//! tokio-postgres (over TCP, without TLS) and preparing the statements, `BEGIN ISOLATION
//! LEVEL ...` (read-only on a replica), one prepared statement per step, and the SQLSTATEs
//! that mean PostgreSQL aborted the transaction ([`ABORTED`]).

use super::{Isolation, APPEND_TABLE, REGISTER_TABLE};
use crate::db::error_chain;
use crate::op::{BoxFuture, Outcome, ReadValue};
use crate::sql::{Driver, Phase, Route, SqlClient, Step, TxnError};
use checkers::history::Value;
use std::time::Duration;

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

/// SQLSTATEs that mean PostgreSQL aborted the transaction, wherever they come from:
/// serialization failure, deadlock detected, lock not available (`lock_timeout`).
pub const ABORTED: [&str; 3] = ["40001", "40P01", "55P03"];

/// Classifies how a transaction that `invoked` (its invoke's value) ended: the SQL core's
/// [`crate::sql::classify`] with PostgreSQL's [`ABORTED`] (a serialization failure, a
/// deadlock or a lock timeout is `fail` even when `COMMIT` reported it; anything else is
/// `fail` before `COMMIT` was sent and `info` once it was).
pub fn classify(invoked: Value, phase: Phase, error: TxnError) -> Outcome {
    crate::sql::classify(invoked, phase, error, &ABORTED)
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

/// A PostgreSQL client: the SQL core with [`PostgresDriver`].
pub type PostgresClient = SqlClient<PostgresDriver>;

/// One connection and its prepared statements (none that write on a replica's).
pub struct Conn {
    client: tokio_postgres::Client,
    append: Option<tokio_postgres::Statement>,
    read: tokio_postgres::Statement,
    write_register: Option<tokio_postgres::Statement>,
    read_register: tokio_postgres::Statement,
}

/// PostgreSQL's differences: the primary's connection configuration (and a replica's, for
/// read-only transactions), the isolation level and the lock timeout.
pub struct PostgresDriver {
    primary: tokio_postgres::Config,
    replica: Option<tokio_postgres::Config>,
    isolation: Isolation,
    /// `lock_timeout`: a lock wait ends in an error (55P03, so `fail`) before the op's
    /// timeout.
    lock_ms: u128,
}

impl PostgresDriver {
    /// A driver that connects with `config` and runs every transaction at `isolation`, for
    /// ops that give up after `timeout`.
    pub fn new(
        config: tokio_postgres::Config,
        isolation: Isolation,
        timeout: Duration,
    ) -> PostgresDriver {
        PostgresDriver {
            primary: config,
            replica: None,
            isolation,
            lock_ms: crate::sql::lock_wait(timeout).as_millis().max(10),
        }
    }

    /// This driver, running read-only transactions on the replica `config` reaches, at
    /// [`Isolation::begin_on_replica`]'s level.
    pub fn reading_from(mut self, config: tokio_postgres::Config) -> PostgresDriver {
        self.replica = Some(config);
        self
    }

    async fn open(&self, route: Route) -> Result<Conn, tokio_postgres::Error> {
        let (config, writable) = match (&self.replica, route) {
            (Some(r), Route::Replica) => (r, false),
            _ => (&self.primary, true),
        };
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("postgres connection ended: {e}");
            }
        });
        client
            .batch_execute(&format!("SET lock_timeout = '{}ms'", self.lock_ms))
            .await?;
        let prepare = |sql: String| {
            let client = &client;
            async move { client.prepare(&sql).await }
        };
        let append = if writable {
            Some(
                prepare(format!(
                    "INSERT INTO {APPEND_TABLE} AS t (k, v) VALUES ($1, ARRAY[$2::bigint]) \
                     ON CONFLICT (k) DO UPDATE SET v = t.v || $2::bigint"
                ))
                .await?,
            )
        } else {
            None
        };
        let read = prepare(format!("SELECT v FROM {APPEND_TABLE} WHERE k = $1")).await?;
        let write_register = if writable {
            Some(
                prepare(format!(
                    "INSERT INTO {REGISTER_TABLE} AS t (k, v) VALUES ($1, $2::bigint) \
                     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
                ))
                .await?,
            )
        } else {
            None
        };
        let read_register = prepare(format!("SELECT v FROM {REGISTER_TABLE} WHERE k = $1")).await?;
        Ok(Conn {
            client,
            append,
            read,
            write_register,
            read_register,
        })
    }

    async fn run_step(&self, conn: &Conn, step: Step) -> Result<Option<ReadValue>, TxnError> {
        let db = |e: tokio_postgres::Error| txn_error(&e);
        let on_replica =
            |what: &str| TxnError::Other(format!("postgres client: {what} on a replica"));
        match step {
            Step::Append { key, value } => {
                let append = conn
                    .append
                    .as_ref()
                    .ok_or_else(|| on_replica("an append"))?;
                conn.client
                    .execute(append, &[&key, &value])
                    .await
                    .map_err(db)?;
                Ok(None)
            }
            Step::WriteRegister { key, value } => {
                let write = conn
                    .write_register
                    .as_ref()
                    .ok_or_else(|| on_replica("a write"))?;
                conn.client
                    .execute(write, &[&key, &value])
                    .await
                    .map_err(db)?;
                Ok(None)
            }
            Step::ReadList { key } => {
                let row = conn
                    .client
                    .query_opt(&conn.read, &[&key])
                    .await
                    .map_err(db)?;
                let list = match row {
                    None => Vec::new(),
                    Some(r) => r.try_get::<_, Vec<i64>>(0).map_err(|e| bad_read(key, &e))?,
                };
                Ok(Some(ReadValue::List(list)))
            }
            Step::ReadRegister { key } => {
                let row = conn
                    .client
                    .query_opt(&conn.read_register, &[&key])
                    .await
                    .map_err(db)?;
                let value = match row {
                    None => None,
                    Some(r) => Some(r.try_get::<_, i64>(0).map_err(|e| bad_read(key, &e))?),
                };
                Ok(Some(ReadValue::Register(value)))
            }
        }
    }
}

fn bad_read(key: i64, e: &tokio_postgres::Error) -> TxnError {
    TxnError::Other(format!("reading key {key}: {}", error_chain(e)))
}

impl Driver for PostgresDriver {
    type Conn = Conn;
    const ABORTED: &'static [&'static str] = &ABORTED;

    fn name(&self) -> &'static str {
        "postgres"
    }

    fn has_replica(&self) -> bool {
        self.replica.is_some()
    }

    fn connect(&self, route: Route) -> BoxFuture<'_, Result<Conn, TxnError>> {
        Box::pin(async move { self.open(route).await.map_err(|e| txn_error(&e)) })
    }

    fn is_open(&self, conn: &Conn) -> bool {
        !conn.client.is_closed()
    }

    fn begin(&self, route: Route) -> Vec<&'static str> {
        vec![match route {
            Route::Primary => self.isolation.begin(),
            Route::Replica => self.isolation.begin_on_replica(),
        }]
    }

    fn simple<'a>(
        &'a self,
        conn: &'a mut Conn,
        sql: &'static str,
    ) -> BoxFuture<'a, Result<(), TxnError>> {
        Box::pin(async move {
            conn.client
                .batch_execute(sql)
                .await
                .map_err(|e| txn_error(&e))
        })
    }

    fn execute<'a>(
        &'a self,
        conn: &'a mut Conn,
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
        for code in ["40001", "40P01", "55P03"] {
            for phase in [Phase::BeforeCommit, Phase::Commit] {
                let o = classify(invoked(), phase, server(code));
                assert_eq!(o.kind, EventKind::Fail, "{code} {phase:?}");
                assert_eq!(o.value, invoked(), "a failed transaction keeps its invoke");
                assert!(o.error.unwrap().starts_with(code));
            }
        }
    }

    #[test]
    fn before_commit_everything_is_fail_and_after_it_unknown_is_info() {
        let others = [
            server("23505"),
            server("57P01"),
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
    fn other_ops_are_refused_without_effect() {
        let driver = PostgresDriver::new(
            tokio_postgres::Config::new(),
            Isolation::Serializable,
            Duration::from_secs(1),
        );
        let c: PostgresClient =
            SqlClient::new(driver, SqlWorkload::ListAppend, Duration::from_secs(1));
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
