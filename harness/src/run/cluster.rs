//! The cluster of a run: a cluster file, or a temporary local cluster that is removed when
//! its guard is dropped, however the run ends.

use crate::exit::{bad_input, internal, Failure};
use crate::plan::ClusterSpec;
use clusters::{local, ClusterFile};
use std::sync::atomic::{AtomicU32, Ordering};

/// A cluster ready for a run; a temporary one is removed on drop.
pub struct Provisioned {
    /// The cluster file (written by the provider for a temporary cluster).
    pub file: ClusterFile,
    _temp: TempCluster,
}

/// Removes a temporary local cluster when dropped.
struct TempCluster(Option<String>);

impl Provisioned {
    /// The plan's cluster: its file, or a temporary local cluster (`local:N`, `vm`).
    pub fn new(spec: &ClusterSpec) -> Result<Provisioned, Failure> {
        let (n, vm) = match spec {
            ClusterSpec::File(file) => {
                return Ok(Provisioned {
                    file: file.clone(),
                    _temp: TempCluster(None),
                })
            }
            ClusterSpec::Local { nodes, vm } => (*nodes, *vm),
        };
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let name = temp_name(std::process::id(), RUNS.fetch_add(1, Ordering::SeqCst));
        eprintln!(
            "bringing up a temporary local cluster of {n} {} ({name})",
            if vm { "qemu guests" } else { "nodes" }
        );
        let made = if vm {
            clusters::vm::up(n, &name, &clusters::vm::VmOptions::default())
        } else {
            local::up(n, &name)
        };
        let path = made.map_err(|e| match e {
            local::LocalError::NotRoot | local::LocalError::Missing { .. } => bad_input(e),
            other => internal(other),
        })?;
        // From here on the guard removes the cluster, also when loading its file fails.
        let temp = TempCluster(Some(name));
        let file = ClusterFile::load(&path).map_err(internal)?;
        Ok(Provisioned { file, _temp: temp })
    }
}

/// The name of the `k`th (from 0) temporary cluster that process `pid` makes: `run<PID>-<K>`,
/// as README.md says.
fn temp_name(pid: u32, k: u32) -> String {
    format!("run{pid}-{k}")
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if let Some(name) = self.0.take() {
            let started = std::time::Instant::now();
            // Its fault journal goes with it, so that no later cluster inherits it.
            let identity = ClusterFile::load(&local::state_dir(&name).join("cluster.yaml"))
                .ok()
                .map(|f| nemesis::journal::ClusterIdentity::of(&f));
            match local::down(&name) {
                Ok(()) => tracing::debug!(
                    "removed the temporary cluster {name} in {:?}",
                    started.elapsed()
                ),
                Err(e) => eprintln!("could not remove the temporary cluster {name}: {e}"),
            }
            if let Some(id) = identity {
                if let Err(e) = nemesis::Journal::retire(&id) {
                    eprintln!("could not retire the fault journal of {name}: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::temp_name;

    /// README.md tells how the temporary cluster of `--cluster local:N` is named, and where
    /// its files, namespaces and journal are: the same names as the code gives them.
    #[test]
    fn readme_names_the_temporary_cluster_as_the_code_does() {
        let readme = include_str!("../../../README.md");
        let name = temp_name(12345, 0);
        assert_eq!(name, "run12345-0");
        assert!(readme.contains("It is named `run<PID>-<K>`"), "README");
        let home = std::path::Path::new("/var/lib/faultline");
        let state = home.join("clusters").join(&name).join("cluster.yaml");
        let journal = home.join("journal").join(format!("{name}.jsonl"));
        let layout = clusters::local::Layout {
            name: name.clone(),
            dir: state.clone(),
            bridge: String::new(),
            subnet: 0,
        };
        for needle in [
            format!("local cluster of 5 nodes ({name})"),
            state.display().to_string().replace("/cluster.yaml", "/"),
            journal.display().to_string(),
            format!("`{}`", layout.netns(1)),
            format!("cluster down --name {name}`"),
        ] {
            assert!(readme.contains(&needle), "README does not say {needle:?}");
        }
        let stated = clusters::local::state_dir(&name);
        assert!(stated.ends_with(format!("clusters/{name}")), "{stated:?}");
        let journaled = nemesis::Journal::default_path(&name);
        assert!(
            journaled.ends_with(format!("journal/{name}.jsonl")),
            "{journaled:?}"
        );
    }
}
