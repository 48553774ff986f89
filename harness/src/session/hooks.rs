//! The nemesis drives a database's processes through its `workloads::Database` hooks.

use super::open::{failure_text, open, reopen};
use crate::exit::Failure;
use clusters::Cluster;
use nemesis::process::DbSource;
use nemesis::{Nemesis, NemesisError, ProcessHooks, Undo};
use std::collections::BTreeMap;
use std::sync::Arc;
use workloads::db::{Database, DbError};
use workloads::Registry;

/// A database seen by the nemesis, with how another faultline process opens it again.
pub struct DbHooks {
    db: Arc<dyn Database>,
    source: Option<DbSource>,
}

impl DbHooks {
    /// The hooks of `db`, opened from `source` (journaled with each kill, so that heal
    /// restarts the database as it ran; `None` when it cannot be reopened).
    pub fn new(db: Arc<dyn Database>, source: Option<DbSource>) -> DbHooks {
        DbHooks { db, source }
    }
}

/// Process hooks for database `name` on `cluster` (kill, pause and their heal), opened
/// through `registry` with the options its last `faultline db install|start` (or test)
/// recorded, else its defaults.
pub fn for_database(
    registry: &Registry,
    name: &str,
    cluster: &Cluster,
) -> Result<Arc<dyn ProcessHooks>, Failure> {
    let (db, options) = open(registry, name, cluster, &Default::default())?;
    let source = DbSource {
        db: super::journal::source_db(name),
        options,
    };
    Ok(Arc::new(DbHooks::new(db, Some(source))))
}

/// A database that the restart of a killed one needs and that could not be opened.
#[derive(Debug, Clone)]
pub struct Unavailable {
    /// Its name.
    pub db: String,
    /// Why.
    pub why: String,
    /// Whether it cannot be opened whatever happens (a definition file that changed or is
    /// gone, a database faultline does not know), as opposed to a node that did not answer.
    pub for_good: bool,
}

/// Registers with `nem` the hooks of every database that the restarts among `undos` need
/// (those it has none for yet), each opened as its kill recorded it ([`DbSource`]), or, for
/// a journal from before sources were recorded, by name with the options `faultline db` (or
/// a test) last recorded. A database that cannot be opened (a definition file that changed
/// or is gone) is registered as unavailable with why, so that heal reports the faults that
/// need it and heals every other. Databases are found in `registry`. Returns the nemesis and
/// those databases.
pub fn for_restarts<'c>(
    registry: &Registry,
    mut nem: Nemesis<'c>,
    undos: &[Undo],
) -> (Nemesis<'c>, Vec<Unavailable>) {
    let mut wanted: BTreeMap<String, Option<DbSource>> = BTreeMap::new();
    // Restarts of kills and power faults, and the unmounts of lazy filesystems (which stop
    // and start the database around them).
    for u in undos {
        if let Some(db) = u.database() {
            let slot = wanted.entry(db.to_string()).or_default();
            if let Some(s) = u.source() {
                *slot = Some(s.clone());
            }
        }
    }
    let mut unavailable = Vec::new();
    for (name, source) in wanted {
        if nem.has_hooks(&name) {
            continue;
        }
        let cluster = nem.cluster();
        let opened = match &source {
            Some(s) => reopen(registry, s, cluster).map(|db| (db, s.clone())),
            None => open(registry, &name, cluster, &Default::default()).map(|(db, options)| {
                let db_name = super::journal::source_db(&name);
                (
                    db,
                    DbSource {
                        db: db_name,
                        options,
                    },
                )
            }),
        };
        let (why, for_good) = match opened {
            Ok((db, s)) if db.name() == name => {
                nem = nem.with_hooks(Arc::new(DbHooks::new(db, Some(s))));
                continue;
            }
            Ok((db, _)) => (
                format!(
                    "{} now names database {:?}, not {name:?}",
                    source.map_or(name.clone(), |s| s.db),
                    db.name()
                ),
                true,
            ),
            Err(f @ Failure::BadInput(_)) => (failure_text(f), true),
            Err(f @ Failure::Internal(_)) => (failure_text(f), false),
        };
        nem = nem.with_unavailable(&name, &why);
        unavailable.push(Unavailable {
            db: name,
            why,
            for_good,
        });
    }
    (nem, unavailable)
}

/// Keeps the kind of failure: an unreachable node stays an SSH error and a failed step a
/// node's failure (the run could not be completed), while bad options stay bad input.
fn nem_err(e: DbError) -> NemesisError {
    match e {
        DbError::Ssh(e) => NemesisError::Ssh(e),
        DbError::Step {
            node,
            step,
            message,
        } => NemesisError::Nodes(vec![(node, format!("{step} failed: {message}"))]),
        DbError::Config(_) | DbError::Unknown { .. } => NemesisError::BadFault(e.to_string()),
    }
}

impl ProcessHooks for DbHooks {
    fn name(&self) -> &str {
        self.db.name()
    }
    fn pids(&self, cluster: &Cluster, node: &str) -> Result<Vec<u32>, NemesisError> {
        self.db.pids(cluster, node).map_err(nem_err)
    }
    fn start(&self, cluster: &Cluster, node: &str) -> Result<(), NemesisError> {
        self.db.start(cluster, node).map_err(nem_err)
    }
    fn primaries(&self, cluster: &Cluster) -> Result<Vec<String>, NemesisError> {
        self.db.primaries(cluster).map_err(nem_err)
    }
    fn source(&self) -> Option<DbSource> {
        self.source.clone()
    }
    fn data_dir(&self) -> Option<String> {
        self.db.data_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_failures_keep_their_kind() {
        let step = nem_err(DbError::Step {
            node: "n2".into(),
            step: "read pid file".into(),
            message: "exit 1: no such file".into(),
        });
        assert!(
            matches!(&step, NemesisError::Nodes(v) if v[0].0 == "n2"),
            "{step:?}"
        );
        assert!(step.to_string().contains("read pid file failed"));
        assert!(matches!(
            nem_err(DbError::Config("bad".into())),
            NemesisError::BadFault(_)
        ));
        let ssh = nem_err(DbError::Ssh(clusters::SshError::Panicked("n1".into())));
        assert!(matches!(ssh, NemesisError::Ssh(_)), "{ssh:?}");
    }
}
