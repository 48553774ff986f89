//! The nemesis drives a database's processes through its `workloads::Database` hooks.

use clusters::Cluster;
use nemesis::{NemesisError, ProcessHooks};
use std::sync::Arc;
use workloads::db::{Database, DbError};

/// A database seen by the nemesis.
pub struct DbHooks(pub Arc<dyn Database>);

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
