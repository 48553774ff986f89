//! Extension through the registries: a toy database and a toy workload, each a few lines in
//! this test, run end to end by `faultline test`'s lifecycle (a real local cluster, the
//! scheduler, the recorder, the checker, the report) without an edit anywhere else.
//!
//! The toy database is a counter kept on the controller; the toy workload adds to it and
//! reads it, judged by the linearizability checker's `counter` model. A faithful counter must
//! be valid and one that drops acknowledged adds must be found invalid, so the test can fail.

use checkers::check::Checker;
use checkers::history::{Event, Value};
use checkers::Verdict;
use clusters::Cluster;
use harness::cli::TestArgs;
use harness::exit::Exit;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use workloads::db::{only_options, DatabaseKind, DbConfig, DbOptions};
use workloads::op::BoxFuture;
use workloads::workload::{OpStream, WorkloadOptions};
use workloads::{Client, Database, DbError, Op, Outcome, Registry, Workload};
mod common;
use common::{has_f, history, latest, results, RunResults};

/// A counter on the controller; `lossy` acknowledges every third add without applying it.
struct Counter {
    value: AtomicI64,
    adds: AtomicU64,
    lossy: bool,
}

impl Client for Counter {
    fn invoke<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match (op.f(), op.value()) {
                ("add", Value::Int(d)) => {
                    let n = self.adds.fetch_add(1, Ordering::SeqCst);
                    if !(self.lossy && n % 3 == 2) {
                        self.value.fetch_add(d, Ordering::SeqCst);
                    }
                    Outcome::ok(Value::Int(d))
                }
                ("read", _) => Outcome::ok(Value::Int(self.value.load(Ordering::SeqCst))),
                (f, v) => Outcome::fail(v, format!("toy counter: no op {f}")),
            }
        })
    }
}

struct ToyDb(Arc<Counter>);

impl Database for ToyDb {
    fn name(&self) -> &str {
        "toy-counter"
    }
    fn install(&self, _: &Cluster, _: &str) -> Result<(), DbError> {
        Ok(())
    }
    fn configure(&self, _: &Cluster, _: &str) -> Result<(), DbError> {
        Ok(())
    }
    fn start(&self, _: &Cluster, _: &str) -> Result<(), DbError> {
        Ok(())
    }
    fn wait_ready(&self, _: &Cluster, _: &str, _: Duration) -> Result<(), DbError> {
        Ok(())
    }
    fn pids(&self, _: &Cluster, _: &str) -> Result<Vec<u32>, DbError> {
        Ok(Vec::new())
    }
    fn wipe(&self, _: &Cluster, _: &str) -> Result<(), DbError> {
        Ok(())
    }
    fn primaries(&self, c: &Cluster) -> Result<Vec<String>, DbError> {
        Ok(c.nodes())
    }
    fn log_files(&self) -> Vec<String> {
        Vec::new()
    }
    fn client(
        &self,
        _: &str,
        _: Duration,
        _: &workloads::db::ClientContext,
    ) -> Result<Arc<dyn Client>, DbError> {
        Ok(self.0.clone())
    }
}

struct ToyDbKind {
    lossy: bool,
}

impl DatabaseKind for ToyDbKind {
    fn name(&self) -> &str {
        "toy-counter"
    }
    fn about(&self) -> &str {
        "a counter on the controller"
    }
    fn workloads(&self) -> Vec<&str> {
        vec!["counter"]
    }
    fn configure(&self, given: &DbOptions) -> Result<Arc<dyn DbConfig>, DbError> {
        only_options("toy-counter", given, &[])?;
        Ok(Arc::new(ToyConfig { lossy: self.lossy }))
    }
}

/// The toy's configuration: it has no options.
#[derive(Debug)]
struct ToyConfig {
    lossy: bool,
}

impl DbConfig for ToyConfig {
    fn options(&self) -> DbOptions {
        DbOptions::new()
    }
    fn open(&self, _: &Cluster) -> Result<Arc<dyn Database>, DbError> {
        Ok(Arc::new(ToyDb(Arc::new(Counter {
            value: AtomicI64::new(0),
            adds: AtomicU64::new(0),
            lossy: self.lossy,
        }))))
    }
}

/// Adds of 1..=3 and reads of one counter.
struct CounterWorkload;

struct CounterOps(i64);

impl OpStream for CounterOps {
    fn next_op(&mut self) -> Op {
        self.0 += 1;
        let (f, value, read_only) = if self.0 % 2 == 0 {
            ("read", Value::Null, true)
        } else {
            ("add", Value::Int(self.0 % 3 + 1), false)
        };
        Op::Custom {
            f: f.to_string(),
            key: None,
            value,
            read_only,
        }
    }
}

impl Workload for CounterWorkload {
    fn name(&self) -> &'static str {
        "counter"
    }
    fn about(&self) -> &'static str {
        "adds to and reads of one counter"
    }
    fn ops(&self, _: u64, _: &WorkloadOptions) -> Box<dyn OpStream> {
        Box::new(CounterOps(0))
    }
    fn checker(&self) -> Checker {
        Checker::linearizable("counter")
    }
}

fn args(store: PathBuf) -> TestArgs {
    TestArgs {
        cluster: "local:1".into(),
        vm: false,
        db: Some("toy-counter".into()),
        db_options: Default::default(),
        workload: Some("counter".into()),
        nemesis: Some("none".into()),
        nemesis_interval: None,
        time_limit: Some(Duration::from_secs(2)),
        concurrency: Some(4),
        rate: Some(200.0),
        ops_per_key: None,
        op_timeout: None,
        seed: Some(1),
        store,
        name: None,
        config: None,
        replay: None,
        test_count: 1,
        keep_going: false,
        strict_power: false,
        campaign_cell: None,
    }
}

fn run(lossy: bool) -> (Exit, RunResults, Vec<Event>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::builtin()
        .with_database(Arc::new(ToyDbKind { lossy }))
        .with_workload(Arc::new(CounterWorkload));
    let exit = harness::test_cmd::run_with(&args(dir.path().join("store")), &registry)
        .unwrap_or_else(|e| panic!("the toy run failed: {e:?}"));
    let run = latest(dir.path());
    let results = results(&run);
    let history = history(&run);
    assert!(run.join("report.html").is_file() && run.join("test.yaml").is_file());
    (exit, results, history)
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: brings up a local cluster (network namespaces, sshd)"
)]
fn a_toy_database_and_workload_run_end_to_end_through_the_registries() {
    clusters::testing::require_root();
    let (exit, results, history) = run(false);
    assert_eq!(exit, Exit::Valid, "{results:?}");
    assert_eq!(results.checker(), "linearizable");
    assert_eq!(results.details["model"], "counter");
    assert!(has_f(&history, "add") && has_f(&history, "read"));
    let (exit, results, _) = run(true);
    assert_eq!(
        exit,
        Exit::Invalid,
        "a counter that drops acknowledged adds: {results:?}"
    );
    assert_eq!(results.head.valid, Verdict::Invalid);
}
