//! Process faults through a database's own hooks: the nemesis asks the database which
//! processes are its own on a node ([`ProcessHooks::pids`]) and signals them itself (SIGKILL,
//! SIGSTOP, SIGCONT), so that the journal can record exactly which processes were paused,
//! and heal can resume them without knowing the database. A killed database is started again
//! through [`ProcessHooks::start`].

use crate::remote::{collect_each, on_each, on_each_retrying, root_script};
use crate::NemesisError;
use clusters::Cluster;
use std::collections::BTreeMap;

/// What the nemesis needs from a database to kill, pause and restart it.
pub trait ProcessHooks: Send + Sync {
    /// The database's name (as in `--db`).
    fn name(&self) -> &str;
    /// The PIDs of the database's processes on `node`, as seen on the node (empty when it is
    /// not running).
    fn pids(&self, cluster: &Cluster, node: &str) -> Result<Vec<u32>, NemesisError>;
    /// Starts the database on `node` (it is not running).
    fn start(&self, cluster: &Cluster, node: &str) -> Result<(), NemesisError>;
    /// The nodes that lead now (for `primaries` targets); empty when there is no notion of it.
    fn primaries(&self, cluster: &Cluster) -> Result<Vec<String>, NemesisError>;
}

/// Finds the database's processes on each node (in parallel).
pub fn find_pids(
    cluster: &Cluster,
    hooks: &dyn ProcessHooks,
    nodes: &[String],
) -> Result<BTreeMap<String, Vec<u32>>, NemesisError> {
    collect_each(cluster, nodes, |n| hooks.pids(cluster, n))
}

/// Sends `signal` (KILL, STOP, CONT) to the given processes on each node. With `strict`, a
/// node where none of them could be signalled is an error (the database was not running);
/// processes that exited since they were listed are fine, as a multi-process database's
/// (PostgreSQL's backends) come and go. Without `strict` (heal), nothing is an error.
pub fn signal(
    cluster: &Cluster,
    pids: &BTreeMap<String, Vec<u32>>,
    signal: &str,
    strict: bool,
) -> BTreeMap<String, String> {
    let nodes: Vec<String> = pids.keys().cloned().collect();
    let step = |n: &str| {
        let list: Vec<String> = pids[n].iter().map(u32::to_string).collect();
        if list.is_empty() {
            return Ok(());
        }
        let script = if strict {
            format!(
                "hit=0; for p in {pids}; do kill -{signal} \"$p\" 2>/dev/null && hit=1; done; \
                 [ $hit = 1 ] || {{ echo \"none of the processes {pids} is running\" >&2; exit 1; }}",
                pids = list.join(" ")
            )
        } else {
            format!(
                "for p in {}; do kill -{signal} \"$p\" 2>/dev/null || true; done",
                list.join(" ")
            )
        };
        root_script(cluster, n, &format!("kill -{signal}"), &script).map(|_| ())
    };
    if strict {
        on_each(cluster, &nodes, step)
    } else {
        on_each_retrying(cluster, &nodes, step)
    }
}

/// Starts the database again on each of `nodes` where it is not running (retrying).
pub fn restart(
    cluster: &Cluster,
    hooks: &dyn ProcessHooks,
    nodes: &[String],
) -> BTreeMap<String, String> {
    on_each_retrying(cluster, nodes, |n| {
        if hooks.pids(cluster, n)?.is_empty() {
            hooks.start(cluster, n)?;
        }
        Ok(())
    })
}
