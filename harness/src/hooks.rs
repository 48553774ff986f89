//! The nemesis drives a database's processes through its `workloads::Database` hooks.

use clusters::Cluster;
use nemesis::{NemesisError, ProcessHooks};
use std::sync::Arc;
use workloads::db::{Database, DbError};

/// A database seen by the nemesis.
pub struct DbHooks(pub Arc<dyn Database>);

fn nem_err(e: DbError) -> NemesisError {
    NemesisError::BadFault(e.to_string())
}

impl ProcessHooks for DbHooks {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn pids(&self, cluster: &Cluster, node: &str) -> Result<Vec<u32>, NemesisError> {
        self.0.pids(cluster, node).map_err(nem_err)
    }
    fn start(&self, cluster: &Cluster, node: &str) -> Result<(), NemesisError> {
        self.0.start(cluster, node).map_err(nem_err)
    }
    fn primaries(&self, cluster: &Cluster) -> Result<Vec<String>, NemesisError> {
        self.0.primaries(cluster).map_err(nem_err)
    }
}
