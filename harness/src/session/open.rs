//! A database opened on a cluster through the caller's [`Registry`]: with the options given,
//! with those its last install or start journaled ([`super::journal`]), or as a kill recorded
//! it ([`DbSource`]) so that heal restarts it as it ran.

use super::journal;
use crate::exit::{bad_input, internal, Failure};
use clusters::Cluster;
use nemesis::process::DbSource;
use std::path::Path;
use std::sync::Arc;
use workloads::{Database, DbError, DbOptions, Registry};

/// Opens database `name` on `cluster`: with the `given` options, or, when none are given,
/// those its last `db install` or `db start` recorded, else its defaults. Returns it and the
/// resolved options.
pub fn open(
    registry: &Registry,
    name: &str,
    cluster: &Cluster,
    given: &DbOptions,
) -> Result<(Arc<dyn Database>, DbOptions), Failure> {
    let given = if given.is_empty() {
        let path = journal::path(cluster.file());
        let mut recorded = journal::recorded_options(&path, &journal::source_db(name))
            .or_else(|| journal::recorded_options(&path, name))
            .unwrap_or_default();
        // The definition as it is now: the digest of the one recorded is no option to reuse.
        recorded.remove(workloads::adapter::definition::SHA_OPTION);
        recorded
    } else {
        given.clone()
    };
    open_with(registry, name, cluster, &given)
}

/// Opens the database a kill recorded ([`DbSource`]) to restart it: a definition file must
/// still be there and unchanged (its SHA-256 as recorded), else why not, naming the file (bad
/// input: no retry helps; an unreachable node is internal).
pub fn reopen(
    registry: &Registry,
    source: &DbSource,
    cluster: &Cluster,
) -> Result<Arc<dyn Database>, Failure> {
    use workloads::adapter::definition::{is_definition_path, SHA_OPTION};
    let mut options = source.options.clone();
    let recorded_sha = options.remove(SHA_OPTION);
    if is_definition_path(&source.db) {
        let path = Path::new(&source.db);
        if !path.exists() {
            return Err(bad_input(anyhow::anyhow!(
                "its definition file {} is gone since the fault was applied",
                path.display()
            )));
        }
        let kind = workloads::adapter::FileDbKind::load(path).map_err(bad_input)?;
        if let Some(sha) = recorded_sha.filter(|sha| sha != kind.sha256()) {
            return Err(bad_input(anyhow::anyhow!(
                "its definition file {} changed since the fault was applied (SHA-256 {sha} then, {} now)",
                path.display(),
                kind.sha256()
            )));
        }
    }
    open_with(registry, &source.db, cluster, &options).map(|(db, _)| db)
}

/// Opens database `name` on `cluster` with exactly the `given` options (and its defaults for
/// the others).
fn open_with(
    registry: &Registry,
    name: &str,
    cluster: &Cluster,
    given: &DbOptions,
) -> Result<(Arc<dyn Database>, DbOptions), Failure> {
    let named = |e: DbError| anyhow::anyhow!("--db {name}: {e}");
    let kind = registry
        .resolve_database(name)
        .map_err(|e| bad_input(named(e)))?;
    let config = kind.configure(given).map_err(|e| bad_input(named(e)))?;
    let db = config.open(cluster).map_err(|e| match e {
        DbError::Config(_) | DbError::Unknown { .. } => bad_input(named(e)),
        other => internal(other),
    })?;
    Ok((db, config.options()))
}

/// A database's error as a failure: its configuration is the user's (254), anything else
/// faultline's or the nodes' (255).
pub fn db_failure(e: DbError) -> Failure {
    match e {
        DbError::Config(_) | DbError::Unknown { .. } => bad_input(e),
        other => internal(other),
    }
}

/// A failure's message with its causes.
pub fn failure_text(f: Failure) -> String {
    match f {
        Failure::BadInput(e) | Failure::Internal(e) => format!("{e:#}"),
    }
}
