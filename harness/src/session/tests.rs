//! The session with a database of the caller's registry: opened, restarted and changed
//! through it, never through the built-in registry alone.

use super::journal::DbAction;
use super::{hooks, lifecycle, open};
use clusters::{Cluster, ClusterFile};
use nemesis::process::{DbSource, Restart};
use nemesis::{Journal, Nemesis, Undo};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use workloads::db::{ClientContext, DatabaseKind, DbConfig, DbOptions};
use workloads::{Client, Database, DbError, Registry};

/// A database that records each step asked of it, as `step node`.
#[derive(Default)]
struct Recording {
    steps: Mutex<Vec<String>>,
}

impl Recording {
    fn note(&self, step: &str, node: &str) -> Result<(), DbError> {
        self.steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{step} {node}"));
        Ok(())
    }
    fn steps(&self) -> Vec<String> {
        let mut s = self.steps.lock().unwrap_or_else(|e| e.into_inner()).clone();
        s.sort();
        s
    }
}

impl Database for Recording {
    fn name(&self) -> &str {
        "recording"
    }
    fn install(&self, _: &Cluster, n: &str) -> Result<(), DbError> {
        self.note("install", n)
    }
    fn configure(&self, _: &Cluster, n: &str) -> Result<(), DbError> {
        self.note("configure", n)
    }
    fn start(&self, _: &Cluster, n: &str) -> Result<(), DbError> {
        self.note("start", n)
    }
    fn wait_ready(&self, _: &Cluster, n: &str, _: Duration) -> Result<(), DbError> {
        self.note("ready", n)
    }
    fn pids(&self, _: &Cluster, _: &str) -> Result<Vec<u32>, DbError> {
        Ok(Vec::new())
    }
    fn wipe(&self, _: &Cluster, n: &str) -> Result<(), DbError> {
        self.note("wipe", n)
    }
    fn kill(&self, _: &Cluster, n: &str) -> Result<(), DbError> {
        self.note("kill", n)
    }
    fn primaries(&self, c: &Cluster) -> Result<Vec<String>, DbError> {
        Ok(c.nodes())
    }
    fn log_files(&self) -> Vec<String> {
        Vec::new()
    }
    fn client(&self, _: &str, _: Duration, _: &ClientContext) -> Result<Arc<dyn Client>, DbError> {
        Err(DbError::Config("no client".into()))
    }
}

/// The kind of [`Recording`], known only to a registry extended with it.
struct RecordingKind;

impl DatabaseKind for RecordingKind {
    fn name(&self) -> &str {
        "recording"
    }
    fn about(&self) -> &str {
        "records each step"
    }
    fn workloads(&self) -> Vec<&str> {
        vec!["register"]
    }
    fn configure(&self, given: &DbOptions) -> Result<Arc<dyn DbConfig>, DbError> {
        workloads::db::only_options("recording", given, &["mode"])?;
        let mut o = given.clone();
        o.entry("mode".into()).or_insert_with(|| "default".into());
        Ok(Arc::new(RecordingConfig(o)))
    }
}

/// [`RecordingKind`]'s options, as given (with `mode`'s default).
#[derive(Debug)]
struct RecordingConfig(DbOptions);

impl DbConfig for RecordingConfig {
    fn options(&self) -> DbOptions {
        self.0.clone()
    }
    fn open(&self, _: &Cluster) -> Result<Arc<dyn Database>, DbError> {
        Ok(Arc::new(Recording::default()))
    }
}

fn registry() -> Registry {
    Registry::builtin().with_database(Arc::new(RecordingKind))
}

fn cluster() -> Cluster {
    let file = ClusterFile {
        name: format!("session-unit-{}", std::process::id()),
        nodes: vec!["n1".into(), "n2".into()],
        ssh: Default::default(),
    };
    Cluster::new(file, 1)
}

#[test]
fn a_database_of_the_callers_registry_opens() {
    let c = cluster();
    let (db, options) = open::open(&registry(), "recording", &c, &DbOptions::new())
        .unwrap_or_else(|f| panic!("{}", open::failure_text(f)));
    assert_eq!(db.name(), "recording");
    assert_eq!(options["mode"], "default");
    // The built-in registry does not know it, and says so as `faultline db` did.
    let f = open::open(&Registry::builtin(), "recording", &c, &DbOptions::new())
        .err()
        .expect("unknown to the built-in registry");
    assert!(
        open::failure_text(f).starts_with("--db recording: "),
        "the message names the flag"
    );
}

#[test]
fn heal_restarts_a_database_of_the_callers_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = cluster();
    let journal = Journal::open(&dir.path().join("j.jsonl")).expect("journal");
    let undo = Undo::Restart(Restart {
        db: "recording".into(),
        nodes: vec!["n1".into()],
        source: Some(DbSource {
            db: "recording".into(),
            options: [("mode".to_string(), "x".to_string())].into(),
        }),
    });
    let (nem, unavailable) = hooks::for_restarts(
        &registry(),
        Nemesis::new(&c, journal),
        std::slice::from_ref(&undo),
    );
    assert!(unavailable.is_empty(), "{unavailable:?}");
    assert!(nem.has_hooks("recording"));
    let journal = Journal::open(&dir.path().join("k.jsonl")).expect("journal");
    let (nem, unavailable) =
        hooks::for_restarts(&Registry::builtin(), Nemesis::new(&c, journal), &[undo]);
    assert!(!nem.has_hooks("recording"));
    assert!(unavailable[0].for_good, "{unavailable:?}");
}

#[test]
fn each_action_does_its_own_steps() {
    let c = cluster();
    let steps = |action: DbAction| {
        let db = Recording::default();
        let results = lifecycle::apply(&c, &db, action, None);
        assert!(results.values().all(Result::is_ok), "{results:?}");
        (db.steps(), results["n1"].clone().unwrap_or_default())
    };
    let install = steps(DbAction::Install);
    assert_eq!(install.0, ["install n1", "install n2"]);
    assert_eq!(install.1, "installed");
    let start = steps(DbAction::Start);
    assert_eq!(
        start.0,
        [
            "configure n1",
            "configure n2",
            "ready n1",
            "ready n2",
            "start n1",
            "start n2"
        ]
    );
    assert_eq!(start.1, "started");
    assert_eq!(
        steps(DbAction::Stop),
        (vec!["kill n1".into(), "kill n2".into()], "stopped".into())
    );
    // `wipe` was the catch-all arm: each action now has its own.
    assert_eq!(
        steps(DbAction::Wipe),
        (
            vec!["wipe n1".into(), "wipe n2".into()],
            "stopped and wiped".into()
        )
    );
}

#[test]
fn a_test_sets_up_in_order_then_waits_for_every_node() {
    let c = cluster();
    let db = Recording::default();
    lifecycle::set_up(&c, &db, None).expect("set up");
    let steps = db.steps.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for n in ["n1", "n2"] {
        let mine: Vec<&str> = steps
            .iter()
            .filter(|s| s.ends_with(n))
            .map(|s| s.split(' ').next().unwrap_or_default())
            .collect();
        assert_eq!(mine, ["wipe", "install", "configure", "start", "ready"]);
    }
    // No node waits before every node started (etcd's members find each other then).
    let first_ready = steps.iter().position(|s| s.starts_with("ready"));
    let last_start = steps.iter().rposition(|s| s.starts_with("start"));
    assert!(first_ready > last_start, "{steps:?}");
}
