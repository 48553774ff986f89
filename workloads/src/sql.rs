//! The transactional SQL client core, shared by every SQL database (PostgreSQL, MariaDB,
//! Galera): how an [`Op::Txn`] runs, how its outcome is classified, and what happens to the
//! connection afterwards. A database brings only a [`Driver`]: how to connect, the
//! statements that begin a transaction at its level, how to run one [`Step`] (a micro-op as
//! a typed statement) and which error codes mean that the server aborted the transaction.
//!
//! A [`SqlClient`] holds one connection per server it talks to (made on first use, made
//! again after it was lost) and runs one transaction at a time, within the op's timeout
//! (connecting included):
//!
//! 1. the micro-ops become [`Step`]s for the [`SqlWorkload`] the client serves (a read is of
//!    a list for list-append, of a register for rw-register); a key that is not an integer
//!    fails the op before anything is sent;
//! 2. a read-only transaction goes to the replica when the driver has one
//!    ([`Route::Replica`]), every other to the primary;
//! 3. the driver's begin statements, one statement per step, then `COMMIT`; [`Phase`] says
//!    how far it got;
//! 4. [`classify`] decides the outcome; after an error the server answered, the client
//!    sends `ROLLBACK` and keeps the connection if that works (within [`ROLLBACK_GRACE`]
//!    past the op's deadline); after any other error the connection is dropped, and the
//!    server rolls back an open transaction whose connection goes.
//!
//! The connection is taken out of its slot while a transaction runs: if the op's future is
//! dropped (the harness's own timeout), the connection goes with it.

use crate::db::{ClientContext, DbError};
use crate::op::{txn_completion, BoxFuture, Client, MicroOp, Op, Outcome, ReadValue};
use checkers::history::{Key, Value};
use std::time::Duration;
use tokio::sync::Mutex;

/// The transactional workload a SQL client serves, chosen once when the client is made:
/// what a read micro-op reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlWorkload {
    /// `list-append`: appends to lists, reads of whole lists.
    ListAppend,
    /// `rw-register`: writes and reads of registers.
    RwRegister,
}

impl SqlWorkload {
    /// The workloads' names, as a [`crate::DatabaseKind::workloads`] lists them.
    pub const NAMES: &'static [&'static str] = &["list-append", "rw-register"];

    /// The workload named `name`, if a SQL client serves it.
    pub fn parse(name: &str) -> Option<SqlWorkload> {
        match name {
            "list-append" => Some(SqlWorkload::ListAppend),
            "rw-register" => Some(SqlWorkload::RwRegister),
            _ => None,
        }
    }

    /// The workload's name.
    pub fn name(self) -> &'static str {
        match self {
            SqlWorkload::ListAppend => "list-append",
            SqlWorkload::RwRegister => "rw-register",
        }
    }

    /// The workload a client for `ctx` serves; `db` names the database in the message when
    /// it serves no such workload.
    pub fn of(db: &str, ctx: &ClientContext) -> Result<SqlWorkload, DbError> {
        SqlWorkload::parse(&ctx.workload).ok_or_else(|| {
            DbError::Config(format!(
                "{db}'s client serves {}, not workload {:?}",
                SqlWorkload::NAMES.join(" and "),
                ctx.workload
            ))
        })
    }
}

/// One statement of a transaction: a micro-op as the client's workload reads it, on an
/// integer key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Append `value` to the list at `key`.
    Append {
        /// The key.
        key: i64,
        /// The element.
        value: i64,
    },
    /// Read the list at `key` (`[]` when there is no row).
    ReadList {
        /// The key.
        key: i64,
    },
    /// Write `value` to the register at `key`.
    WriteRegister {
        /// The key.
        key: i64,
        /// The value.
        value: i64,
    },
    /// Read the register at `key` (null when there is no row).
    ReadRegister {
        /// The key.
        key: i64,
    },
}

impl Step {
    /// The step for micro-op `m` of a transaction of `workload`, or why there is none.
    pub fn of(m: &MicroOp, workload: SqlWorkload) -> Result<Step, String> {
        let key = match m.key() {
            Key::Int(k) => *k,
            Key::Str(s) => return Err(format!("key {s:?} is not an integer")),
        };
        Ok(match (m, workload) {
            (MicroOp::Append { value, .. }, _) => Step::Append { key, value: *value },
            (MicroOp::Write { value, .. }, _) => Step::WriteRegister { key, value: *value },
            (MicroOp::Read { .. }, SqlWorkload::ListAppend) => Step::ReadList { key },
            (MicroOp::Read { .. }, SqlWorkload::RwRegister) => Step::ReadRegister { key },
        })
    }

    /// Whether it only reads.
    pub fn reads_only(self) -> bool {
        matches!(self, Step::ReadList { .. } | Step::ReadRegister { .. })
    }
}

/// Where a transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The server that takes writes.
    Primary,
    /// A replica, for read-only transactions (only when [`Driver::has_replica`]).
    Replica,
}

/// How far a transaction got when it ended: before `COMMIT` was sent, nothing it did can
/// take effect; once it was sent, it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connecting, beginning the transaction, or the micro-ops' statements.
    BeforeCommit,
    /// `COMMIT` was sent (or is being sent).
    Commit,
}

/// Why a transaction did not commit, as the driver reports it, before classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnError {
    /// The server answered with an error: PostgreSQL's SQLSTATE (`40001`), MariaDB's error
    /// number (`1213`).
    Db {
        /// The code, as the database writes it.
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

impl TxnError {
    /// The error as an outcome's `error` writes it (before `during COMMIT: `).
    pub fn text(&self) -> String {
        match self {
            TxnError::Db { code, message } => format!("{code}: {message}"),
            TxnError::Connection(e) => format!("connection: {e}"),
            TxnError::Timeout => "timeout".to_string(),
            TxnError::Other(e) => e.clone(),
        }
    }
}

/// Classifies how a transaction that `invoked` (its invoke's value) ended, `aborted` being
/// the codes with which the database says it aborted the transaction:
///
/// - a [`TxnError::Db`] whose code is in `aborted`: the server aborted it: `fail`, even when
///   `COMMIT` reported it;
/// - any error, lost connection or timeout before `COMMIT` was sent: it cannot commit (the
///   client rolls back, and the server rolls back an open transaction whose connection
///   goes): `fail`;
/// - a lost connection, a timeout or any other error during or after `COMMIT`: it may have
///   committed: `info`.
///
/// A committed transaction is `ok` with its reads (see [`txn_completion`]); never guessed.
pub fn classify(invoked: Value, phase: Phase, error: TxnError, aborted: &[&str]) -> Outcome {
    let text = error.text();
    match (&error, phase) {
        (TxnError::Db { code, .. }, _) if aborted.contains(&code.as_str()) => {
            Outcome::fail(invoked, text)
        }
        (_, Phase::BeforeCommit) => Outcome::fail(invoked, text),
        (_, Phase::Commit) => Outcome::info(invoked, format!("during COMMIT: {text}")),
    }
}

/// How long past the op's deadline a `ROLLBACK` after a server's error may take (within
/// the harness's own grace, the op timeout plus 0.5 s) before the connection is dropped.
pub const ROLLBACK_GRACE: Duration = Duration::from_millis(300);

/// How long a statement may wait for a lock before the server ends the wait with an error
/// (an abort, so `fail`), for an op timeout of `op_timeout`: half of it, so that lock waits
/// end in the server's answer well before the op's timeout.
pub fn lock_wait(op_timeout: Duration) -> Duration {
    op_timeout / 2
}

/// What a SQL database's client brings to the core: only what differs between databases.
pub trait Driver: Send + Sync + 'static {
    /// One connection (and whatever the driver prepared on it).
    type Conn: Send + 'static;
    /// The error codes ([`TxnError::Db`]) with which the database says it aborted the
    /// transaction, wherever they come from (`fail`, even during `COMMIT`).
    const ABORTED: &'static [&'static str];

    /// Who runs it, in messages (`postgres`, `mariadb`, `galera`).
    fn name(&self) -> &'static str;
    /// Whether read-only transactions run on a replica ([`Route::Replica`]).
    fn has_replica(&self) -> bool {
        false
    }
    /// Connects to the server `route` names (the core bounds it by the op's deadline).
    fn connect(&self, route: Route) -> BoxFuture<'_, Result<Self::Conn, TxnError>>;
    /// Whether a connection kept from an earlier transaction may still be used.
    fn is_open(&self, _conn: &Self::Conn) -> bool {
        true
    }
    /// The statements that begin a transaction on `route`, at the client's level.
    fn begin(&self, route: Route) -> Vec<&'static str>;
    /// Runs a statement without parameters or rows (`BEGIN ...`, `COMMIT`, `ROLLBACK`).
    fn simple<'a>(
        &'a self,
        conn: &'a mut Self::Conn,
        sql: &'static str,
    ) -> BoxFuture<'a, Result<(), TxnError>>;
    /// Runs one step of a transaction; a read returns what it read.
    fn execute<'a>(
        &'a self,
        conn: &'a mut Self::Conn,
        step: Step,
    ) -> BoxFuture<'a, Result<Option<ReadValue>, TxnError>>;
}

/// A transactional client of a SQL database: the core, with `D` for what differs.
pub struct SqlClient<D: Driver> {
    driver: D,
    workload: SqlWorkload,
    timeout: Duration,
    primary: Mutex<Option<D::Conn>>,
    replica: Option<Mutex<Option<D::Conn>>>,
}

impl<D: Driver> SqlClient<D> {
    /// A client that runs transactions of `workload` through `driver`, each within
    /// `timeout` (connecting included).
    pub fn new(driver: D, workload: SqlWorkload, timeout: Duration) -> SqlClient<D> {
        let replica = driver.has_replica().then(|| Mutex::new(None));
        SqlClient {
            driver,
            workload,
            timeout,
            primary: Mutex::new(None),
            replica,
        }
    }

    /// The driver.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// The workload it serves.
    pub fn workload(&self) -> SqlWorkload {
        self.workload
    }

    fn classify(&self, invoked: Value, phase: Phase, error: TxnError) -> Outcome {
        classify(invoked, phase, error, D::ABORTED)
    }

    /// The begin statements, the steps, `COMMIT`; `phase` says how far it got.
    async fn transaction(
        &self,
        conn: &mut D::Conn,
        route: Route,
        steps: &[Step],
        phase: &mut Phase,
    ) -> Result<Vec<Option<ReadValue>>, TxnError> {
        for sql in self.driver.begin(route) {
            self.driver.simple(conn, sql).await?;
        }
        let mut reads = Vec::with_capacity(steps.len());
        for step in steps {
            reads.push(self.driver.execute(conn, *step).await?);
        }
        *phase = Phase::Commit;
        self.driver.simple(conn, "COMMIT").await?;
        Ok(reads)
    }

    /// A connection kept from an earlier transaction, else a new one; a server's refusal to
    /// connect is a connection error (nothing was sent).
    async fn connection(
        &self,
        kept: Option<D::Conn>,
        route: Route,
        deadline: tokio::time::Instant,
    ) -> Result<D::Conn, TxnError> {
        if let Some(c) = kept.filter(|c| self.driver.is_open(c)) {
            return Ok(c);
        }
        match tokio::time::timeout_at(deadline, self.driver.connect(route)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(TxnError::Db { code, message })) => {
                Err(TxnError::Connection(format!("{code}: {message}")))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(TxnError::Timeout),
        }
    }

    async fn run_txn(&self, op: &Op, mops: &[MicroOp]) -> Outcome {
        let steps = match mops
            .iter()
            .map(|m| Step::of(m, self.workload))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(s) => s,
            Err(e) => {
                let e = TxnError::Other(format!("{} client: {e}", self.driver.name()));
                return self.classify(op.value(), Phase::BeforeCommit, e);
            }
        };
        let (slot, route) = match &self.replica {
            Some(r) if steps.iter().all(|s| s.reads_only()) => (r, Route::Replica),
            _ => (&self.primary, Route::Primary),
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut slot = slot.lock().await;
        let mut conn = match self.connection(slot.take(), route, deadline).await {
            Ok(c) => c,
            Err(e) => return self.classify(op.value(), Phase::BeforeCommit, e),
        };
        let mut phase = Phase::BeforeCommit;
        let result = tokio::time::timeout_at(
            deadline,
            self.transaction(&mut conn, route, &steps, &mut phase),
        )
        .await;
        match result {
            Ok(Ok(reads)) => {
                *slot = Some(conn);
                Outcome::ok(txn_completion(mops, &reads))
            }
            Ok(Err(e)) => {
                if let TxnError::Db { .. } = e {
                    // The server is fine: end the transaction (a failed COMMIT already has;
                    // an aborted statement may have left it open) and keep the connection
                    // if that works.
                    let rollback = tokio::time::timeout_at(
                        deadline + ROLLBACK_GRACE,
                        self.driver.simple(&mut conn, "ROLLBACK"),
                    )
                    .await;
                    if matches!(rollback, Ok(Ok(()))) {
                        *slot = Some(conn);
                    }
                }
                self.classify(op.value(), phase, e)
            }
            Err(_) => self.classify(op.value(), phase, TxnError::Timeout),
        }
    }
}

impl<D: Driver> Client for SqlClient<D> {
    fn invoke<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match op {
                Op::Txn(mops) => self.run_txn(op, mops).await,
                other => Outcome::fail(
                    other.value(),
                    format!("{} client: no op {:?}", self.driver.name(), other.f()),
                ),
            }
        })
    }
}

/// What the databases' classification tests share: a transaction's invoked value and a server
/// error with a code.
#[cfg(test)]
pub(crate) mod test_support {
    use super::TxnError;
    use crate::op::{MicroOp, Op};
    use checkers::history::{Key, Value};

    /// An append and a read, as invoked.
    pub(crate) fn invoked() -> Value {
        Op::Txn(vec![
            MicroOp::Append {
                key: Key::Int(1),
                value: 2,
            },
            MicroOp::Read { key: Key::Int(3) },
        ])
        .value()
    }

    /// A server error with `code`.
    pub(crate) fn server(code: &str) -> TxnError {
        TxnError::Db {
            code: code.into(),
            message: "m".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::history::EventKind;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A driver that records every statement and answers from a script.
    #[derive(Default)]
    struct Fake {
        log: std::sync::Mutex<Vec<String>>,
        connects: AtomicUsize,
        /// The statement (by prefix) that fails, and with what.
        fail: Option<(&'static str, TxnError)>,
        replica: bool,
    }

    impl Fake {
        fn answer(&self, sql: String) -> Result<(), TxnError> {
            let fails = self.fail.as_ref().filter(|(p, _)| sql.starts_with(p));
            self.log.lock().unwrap().push(sql);
            match fails {
                Some((_, e)) => Err(e.clone()),
                None => Ok(()),
            }
        }
        fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }
    }

    impl Driver for Arc<Fake> {
        type Conn = Route;
        const ABORTED: &'static [&'static str] = &["40001"];
        fn name(&self) -> &'static str {
            "fake"
        }
        fn has_replica(&self) -> bool {
            self.replica
        }
        fn connect(&self, route: Route) -> BoxFuture<'_, Result<Route, TxnError>> {
            self.connects.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { Ok(route) })
        }
        fn begin(&self, route: Route) -> Vec<&'static str> {
            match route {
                Route::Primary => vec!["BEGIN"],
                Route::Replica => vec!["BEGIN READ ONLY"],
            }
        }
        fn simple<'a>(
            &'a self,
            conn: &'a mut Route,
            sql: &'static str,
        ) -> BoxFuture<'a, Result<(), TxnError>> {
            Box::pin(async move { self.answer(format!("{sql} on {conn:?}")) })
        }
        fn execute<'a>(
            &'a self,
            _: &'a mut Route,
            step: Step,
        ) -> BoxFuture<'a, Result<Option<ReadValue>, TxnError>> {
            Box::pin(async move {
                self.answer(format!("{step:?}"))?;
                Ok(match step {
                    Step::ReadList { key } => Some(ReadValue::List(vec![key])),
                    Step::ReadRegister { .. } => Some(ReadValue::Register(None)),
                    _ => None,
                })
            })
        }
    }

    fn run(fake: &Arc<Fake>, workload: SqlWorkload, ops: &[Op]) -> Vec<Outcome> {
        let c = SqlClient::new(fake.clone(), workload, Duration::from_secs(1));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        ops.iter().map(|op| rt.block_on(c.invoke(op))).collect()
    }

    fn txn(mops: &[MicroOp]) -> Op {
        Op::Txn(mops.to_vec())
    }

    const READ: MicroOp = MicroOp::Read { key: Key::Int(3) };
    const APPEND: MicroOp = MicroOp::Append {
        key: Key::Int(1),
        value: 2,
    };

    #[test]
    fn reads_follow_the_workload_and_a_connection_is_kept() {
        let fake = Arc::new(Fake::default());
        let o = run(
            &fake,
            SqlWorkload::ListAppend,
            &[txn(&[APPEND, READ]), txn(&[READ])],
        );
        assert!(o.iter().all(|o| o.kind == EventKind::Ok), "{o:?}");
        assert_eq!(o[0].value.to_string(), r#"[["append",1,2],["r",3,[3]]]"#);
        assert_eq!(fake.connects.load(Ordering::SeqCst), 1);
        assert_eq!(
            fake.log(),
            [
                "BEGIN on Primary",
                "Append { key: 1, value: 2 }",
                "ReadList { key: 3 }",
                "COMMIT on Primary",
                "BEGIN on Primary",
                "ReadList { key: 3 }",
                "COMMIT on Primary",
            ]
        );
        let fake = Arc::new(Fake::default());
        let o = run(&fake, SqlWorkload::RwRegister, &[txn(&[READ])]);
        assert_eq!(o[0].value.to_string(), r#"[["r",3,null]]"#);
    }

    #[test]
    fn read_only_transactions_go_to_the_replica_when_there_is_one() {
        let fake = Arc::new(Fake {
            replica: true,
            ..Fake::default()
        });
        run(
            &fake,
            SqlWorkload::ListAppend,
            &[txn(&[READ]), txn(&[APPEND])],
        );
        let log = fake.log();
        assert_eq!(log[0], "BEGIN READ ONLY on Replica");
        assert_eq!(log[3], "BEGIN on Primary");
    }

    #[test]
    fn a_servers_error_rolls_back_and_keeps_the_connection() {
        let fake = Arc::new(Fake {
            fail: Some((
                "Append",
                TxnError::Db {
                    code: "40001".into(),
                    message: "could not serialize".into(),
                },
            )),
            ..Fake::default()
        });
        let o = run(
            &fake,
            SqlWorkload::ListAppend,
            &[txn(&[APPEND]), txn(&[READ])],
        );
        assert_eq!(o[0].kind, EventKind::Fail);
        assert_eq!(o[0].error.as_deref(), Some("40001: could not serialize"));
        assert_eq!(fake.log()[2], "ROLLBACK on Primary");
        assert_eq!(o[1].kind, EventKind::Ok);
        assert_eq!(fake.connects.load(Ordering::SeqCst), 1, "kept");
    }

    #[test]
    fn a_lost_connection_during_commit_is_info_and_the_connection_is_dropped() {
        let fake = Arc::new(Fake {
            fail: Some(("COMMIT", TxnError::Connection("reset".into()))),
            ..Fake::default()
        });
        let o = run(
            &fake,
            SqlWorkload::ListAppend,
            &[txn(&[APPEND]), txn(&[READ])],
        );
        assert_eq!(o[0].kind, EventKind::Info);
        assert_eq!(
            o[0].error.as_deref(),
            Some("during COMMIT: connection: reset")
        );
        assert!(!fake.log().iter().any(|l| l.starts_with("ROLLBACK")));
        assert_eq!(fake.connects.load(Ordering::SeqCst), 2, "connected again");
    }

    #[test]
    fn a_string_key_or_another_op_fails_before_anything_is_sent() {
        let fake = Arc::new(Fake::default());
        let o = run(
            &fake,
            SqlWorkload::ListAppend,
            &[
                txn(&[MicroOp::Read {
                    key: Key::Str("x".into()),
                }]),
                Op::Add { value: 1 },
            ],
        );
        assert_eq!(o[0].kind, EventKind::Fail);
        assert_eq!(
            o[0].error.as_deref(),
            Some("fake client: key \"x\" is not an integer")
        );
        assert_eq!(o[1].kind, EventKind::Fail);
        assert!(fake.log().is_empty());
    }

    #[test]
    fn workloads_are_chosen_by_name_once() {
        for n in SqlWorkload::NAMES {
            assert_eq!(SqlWorkload::parse(n).map(SqlWorkload::name), Some(*n));
        }
        let ctx = ClientContext {
            workload: "set".into(),
            ..ClientContext::default()
        };
        let e = SqlWorkload::of("mariadb", &ctx).unwrap_err().to_string();
        assert!(e.contains("not workload \"set\""), "{e}");
    }
}
