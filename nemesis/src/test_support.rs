//! What the unit tests of fault kinds share: a one-node cluster that is never reached and a
//! database that does not say where its data is.

use crate::{Journal, NemesisError};
use clusters::Cluster;

/// A database that does not say where its data is (so faults on its data directory are
/// refused before any node is asked).
pub struct NoDataDir;

impl crate::ProcessHooks for NoDataDir {
    fn name(&self) -> &str {
        "toy"
    }
    fn pids(&self, _: &Cluster, _: &str) -> Result<Vec<u32>, NemesisError> {
        Ok(vec![42])
    }
    fn start(&self, _: &Cluster, _: &str) -> Result<(), NemesisError> {
        Ok(())
    }
    fn primaries(&self, _: &Cluster) -> Result<Vec<String>, NemesisError> {
        Ok(Vec::new())
    }
}

/// A cluster of one node `n1` (never contacted) and a journal in a temporary directory,
/// which lives as long as the returned guard.
pub fn one_node() -> (tempfile::TempDir, Cluster, Journal) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = clusters::ClusterFile::parse("name: c\nnodes: [n1]\n", "c.yaml").expect("cluster");
    let journal = Journal::open(&dir.path().join("j.jsonl")).expect("journal");
    (dir, Cluster::new(file, 1), journal)
}
