//! A database's life on a cluster, every node in parallel: set up (wipe, install, configure,
//! start, then wait until each node serves; for power and disk faults, on faultline's lazy filesystem
//! mounted over its data directory after the wipe, [`Lazyfs`]), the changes `faultline db`
//! makes one at a time, and the end (stop it, unmount the lazy filesystem, download its logs
//! into `nodes/<node>/`: regular files only, each within [`LOG_MAX_BYTES`], all within
//! [`LOG_TIME`]).

use super::journal::DbAction;
use clusters::ssh::{CollectLimits, Fetch, Fetched};
use clusters::Cluster;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use workloads::{Database, DbError};

/// How long each node may take to serve once started.
pub const READY_TIME: Duration = Duration::from_secs(30);

/// What became of a step on each node: what was done, or the error.
pub type PerNode = BTreeMap<String, Result<String, String>>;

/// Runs `step` on every node of `cluster` in parallel; an unreachable node is its error.
fn each_node<T: Send>(
    cluster: &Cluster,
    step: impl Fn(&str) -> Result<T, DbError> + Sync,
) -> BTreeMap<String, Result<T, String>> {
    cluster
        .on_nodes(&cluster.nodes(), |n| Ok(step(n)))
        .into_iter()
        .map(|r| {
            let v = match r.result {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            (r.node, v)
        })
        .collect()
}

/// The errors of a per-node step, one line each.
fn errors<T>(results: BTreeMap<String, Result<T, String>>) -> Vec<String> {
    results.into_values().filter_map(Result::err).collect()
}

/// faultline's lazy filesystem over a database's data directory on every node, for power
/// and disk faults ([`nemesis::power`], [`nemesis::disk`]): mounted by [`set_up`] after the wipe, checkpointed once the
/// database is ready, and unmounted by [`unmount`] when the session stops the database.
#[derive(Debug, Clone)]
pub struct Lazyfs {
    /// What heal's sweep undoes if the session never unmounts it (recorded on the nodes
    /// before anything is mounted): the database, its data directory and how to reopen it.
    pub mount: nemesis::power::Unmount,
    /// The node helper to upload (this faultline binary).
    pub helper: PathBuf,
    /// The seed of torn writes.
    pub seed: u64,
}

impl Lazyfs {
    /// The lazy filesystem for `db` on every node of `cluster`, reopened from `source` by a
    /// heal; `None` when the database does not say where its data is.
    pub fn for_db(
        cluster: &Cluster,
        db: &dyn Database,
        source: nemesis::process::DbSource,
        seed: u64,
    ) -> Result<Option<Lazyfs>, String> {
        let Some(data_dir) = db.data_dir() else {
            return Ok(None);
        };
        let helper = std::env::current_exe()
            .map_err(|e| format!("cannot find faultline's node helper: {e}"))?;
        Ok(Some(Lazyfs {
            mount: nemesis::power::Unmount {
                db: db.name().to_string(),
                nodes: cluster.nodes(),
                data_dir,
                source: Some(source),
            },
            helper,
            seed,
        }))
    }
}

/// A nemesis error on `node` as a database step's.
fn step_err(node: &str, step: &str, e: nemesis::NemesisError) -> DbError {
    DbError::Step {
        node: node.to_string(),
        step: step.to_string(),
        message: e.to_string(),
    }
}

/// Where faultline's lazy filesystem is still mounted over `db`'s data directory on `node`
/// (left by a session that died), stops the database and unmounts it, so that the wipe can
/// remove the directory.
fn unmount_left(cluster: &Cluster, db: &dyn Database, node: &str) -> Result<(), DbError> {
    let Some(dir) = db.data_dir() else {
        return Ok(());
    };
    let step = "unmount the lazy filesystem";
    if nemesis::power::is_mounted(cluster, node, &dir).map_err(|e| step_err(node, step, e))? {
        db.kill(cluster, node)?;
        nemesis::power::unmount(cluster, node, &dir).map_err(|e| step_err(node, step, e))?;
    }
    Ok(())
}

/// Sets `db` up on every node for a test: wipe, install, configure and start, then wait until
/// every node serves (etcd's members find each other only once all are started). With
/// `lazyfs`, the data directory is faultline's lazy filesystem, mounted after the wipe and
/// checkpointed once every node is ready (what set-up wrote is durable, as on a system that
/// ran a while). Returns the errors, one line each.
pub fn set_up(
    cluster: &Cluster,
    db: &dyn Database,
    lazyfs: Option<&Lazyfs>,
) -> Result<(), Vec<String>> {
    if let Some(l) = lazyfs {
        let nodes = cluster.nodes();
        let mut failed = nemesis::power::install_helper(cluster, &nodes, &l.helper);
        if failed.is_empty() {
            failed = nemesis::power::record(cluster, &l.mount);
        }
        if !failed.is_empty() {
            return Err(failed
                .into_iter()
                .map(|(n, e)| format!("{n}: {e}"))
                .collect());
        }
    }
    let failed = errors(each_node(cluster, |n| {
        unmount_left(cluster, db, n)
            .and_then(|()| db.wipe(cluster, n))
            .and_then(|()| match lazyfs {
                Some(l) => nemesis::power::mount(cluster, n, &l.mount.data_dir, l.seed)
                    .map_err(|e| step_err(n, "mount the lazy filesystem", e)),
                None => Ok(()),
            })
            .and_then(|()| db.install(cluster, n))
            .and_then(|()| db.configure(cluster, n))
            .and_then(|()| db.start(cluster, n))
    }));
    if !failed.is_empty() {
        return Err(failed);
    }
    let failed = errors(each_node(cluster, |n| {
        db.wait_ready(cluster, n, READY_TIME)
    }));
    if !failed.is_empty() {
        return Err(failed);
    }
    let failed = match lazyfs {
        Some(l) => errors(each_node(cluster, |n| {
            nemesis::power::checkpoint(cluster, n, &l.mount.data_dir)
                .map_err(|e| step_err(n, "checkpoint the lazy filesystem", e))
        })),
        None => Vec::new(),
    };
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed)
    }
}

/// Unmounts the lazy filesystem from every node (the database is stopped), which makes
/// everything on it durable, and removes the records heal would have undone; says where it
/// could not.
pub fn unmount(cluster: &Cluster, lazyfs: &Lazyfs, say: &dyn Fn(&str)) {
    let dir = &lazyfs.mount.data_dir;
    let mut ok = true;
    for (node, r) in each_node(cluster, |n| {
        nemesis::power::unmount(cluster, n, dir).map_err(|e| step_err(n, "unmount", e))
    }) {
        if let Err(e) = r {
            ok = false;
            say(&format!(
                "{node}: could not unmount the lazy filesystem from {dir}: {e} (`faultline heal` unmounts it)"
            ));
        }
    }
    if ok {
        for (node, e) in nemesis::power::forget(cluster, &lazyfs.mount) {
            say(&format!(
                "{node}: could not remove the record of the lazy filesystem: {e}"
            ));
        }
    }
}

/// Makes one change to `db` on every node, as `faultline db ACTION` does: what was done on
/// each node, or its error. `start` configures and starts the database where it does not
/// run (on `lazyfs`, if given), then waits until every node serves; `stop` and `wipe` also
/// unmount the lazy filesystem.
pub fn apply(
    cluster: &Cluster,
    db: &dyn Database,
    action: DbAction,
    lazyfs: Option<&Lazyfs>,
) -> PerNode {
    let c = cluster;
    match action {
        DbAction::Install => each_node(c, |n| db.install(c, n).map(|()| "installed".into())),
        DbAction::Start => start_where_stopped(c, db, lazyfs),
        DbAction::Stop => each_node(c, |n| {
            db.kill(c, n)
                .and_then(|()| unmount_left(c, db, n))
                .map(|()| "stopped".into())
        }),
        DbAction::Wipe => each_node(c, |n| {
            unmount_left(c, db, n)
                .and_then(|()| db.wipe(c, n))
                .map(|()| "stopped and wiped".into())
        }),
    }
}

/// Configures and starts `db` where it does not run (with `lazyfs`, on the lazy filesystem
/// mounted first, and checkpointed once ready), then waits until every node serves.
fn start_where_stopped(cluster: &Cluster, db: &dyn Database, lazyfs: Option<&Lazyfs>) -> PerNode {
    if let Some(l) = lazyfs {
        let nodes = cluster.nodes();
        let mut failed = nemesis::power::install_helper(cluster, &nodes, &l.helper);
        if failed.is_empty() {
            failed = nemesis::power::record(cluster, &l.mount);
        }
        if !failed.is_empty() {
            return failed.into_iter().map(|(n, e)| (n, Err(e))).collect();
        }
    }
    let mut results = each_node(cluster, |n| match db.pids(cluster, n) {
        Ok(p) if !p.is_empty() => {
            let on_lazyfs = match lazyfs {
                Some(l) => nemesis::power::is_mounted(cluster, n, &l.mount.data_dir)
                    .map_err(|e| step_err(n, "is the lazy filesystem mounted", e))?,
                None => true,
            };
            if on_lazyfs {
                Ok(format!("already running (pid {})", join(&p)))
            } else {
                Err(DbError::Step {
                    node: n.to_string(),
                    step: "start on the lazy filesystem".into(),
                    message: format!(
                        "already running (pid {}), not on the lazy filesystem: stop it first",
                        join(&p)
                    ),
                })
            }
        }
        _ => match lazyfs {
            Some(l) => nemesis::power::mount(cluster, n, &l.mount.data_dir, l.seed)
                .map_err(|e| step_err(n, "mount the lazy filesystem", e)),
            None => Ok(()),
        }
        .and_then(|()| db.configure(cluster, n))
        .and_then(|()| db.start(cluster, n))
        .map(|()| {
            if lazyfs.is_some() {
                "started on the lazy filesystem".to_string()
            } else {
                "started".to_string()
            }
        }),
    });
    for (node, ready) in each_node(cluster, |n| {
        db.wait_ready(cluster, n, READY_TIME)?;
        match lazyfs {
            Some(l) => nemesis::power::checkpoint(cluster, n, &l.mount.data_dir)
                .map_err(|e| step_err(n, "checkpoint the lazy filesystem", e)),
            None => Ok(()),
        }
    }) {
        if let (Err(e), Some(Ok(_))) = (ready, results.get(&node)) {
            results.insert(node, Err(format!("not ready: {e}")));
        }
    }
    results
}

/// Whether `db` runs (its PIDs) and answers (within 2 s), per node in the cluster's order:
/// true and what was found when it does, false and why not.
pub fn status(cluster: &Cluster, db: &dyn Database) -> Vec<(String, bool, String)> {
    cluster
        .on_nodes(&cluster.nodes(), |n| Ok(node_status(cluster, db, n)))
        .into_iter()
        .map(|r| {
            let (ok, line) = r
                .result
                .unwrap_or_else(|e| (false, format!("unreachable: {e}")));
            (r.node, ok, line)
        })
        .collect()
}

fn node_status(cluster: &Cluster, db: &dyn Database, n: &str) -> (bool, String) {
    match db.pids(cluster, n) {
        Ok(p) if p.is_empty() => (false, "not running".to_string()),
        Ok(p) => match db.wait_ready(cluster, n, Duration::from_secs(2)) {
            Ok(()) => (true, format!("running (pid {}), answering", join(&p))),
            Err(e) => (
                false,
                format!("running (pid {}), NOT answering: {e}", join(&p)),
            ),
        },
        Err(e) => (false, format!("unknown: {e}")),
    }
}

/// `1, 2, 3`.
fn join(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Kills `db` on every node, saying where it could not be stopped.
pub fn stop(cluster: &Cluster, db: &dyn Database, say: &dyn Fn(&str)) {
    for (node, r) in each_node(cluster, |n| db.kill(cluster, n)) {
        if let Err(e) = r {
            say(&format!("{node}: could not stop {}: {e}", db.name()));
        }
    }
}

/// Downloads `db`'s logs from every node into `dir/nodes/<node>/`, saying each path not
/// collected whole.
pub fn collect_logs(cluster: &Cluster, db: &dyn Database, dir: &Path, say: &dyn Fn(&str)) {
    let nodes = cluster.nodes();
    let files = db.log_files();
    let limits = CollectLimits {
        max_bytes: LOG_MAX_BYTES,
        deadline: Instant::now() + LOG_TIME,
        max_files: LOG_MAX_FILES,
        max_depth: 4,
        max_total: LOG_NODE_MAX_BYTES,
    };
    for r in cluster.on_nodes(&nodes, |n| {
        Ok(collect_node(cluster, n, &files, dir, &limits))
    }) {
        for line in r.result.unwrap_or_else(|e| vec![e.to_string()]) {
            say(&format!("{}: {line}", r.node));
        }
    }
    say(&format!(
        "logs collected in {}",
        dir.join("nodes").display()
    ));
}

/// The most kept of each log file (its head and its tail when larger).
pub const LOG_MAX_BYTES: u64 = 64 << 20;
/// How long collecting every node's logs may take (the nodes in parallel).
pub const LOG_TIME: Duration = Duration::from_secs(120);
/// The most files collected from one node (a log directory's included).
const LOG_MAX_FILES: usize = 1000;
/// The most bytes kept of one node's logs, every file together.
pub const LOG_NODE_MAX_BYTES: u64 = 512 << 20;

/// Collects `files` from `node` into its directory of the run: regular files only, each
/// within [`LOG_MAX_BYTES`], all by the deadline, one bad path never stopping the rest.
/// Returns a line for each file not collected whole.
fn collect_node(
    cluster: &Cluster,
    node: &str,
    files: &[String],
    dir: &Path,
    limits: &CollectLimits,
) -> Vec<String> {
    let local_dir = crate::store::node_dir(dir, node);
    if let Err(e) = std::fs::create_dir_all(&local_dir) {
        return vec![format!("cannot create {}: {e}", local_dir.display())];
    }
    let mut said = Vec::new();
    // What the node's earlier paths used counts against its files and bytes.
    let mut left = *limits;
    for f in files {
        let name = Path::new(f)
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| "log".into());
        match cluster.collect(node, Path::new(f), &local_dir.join(name), &left) {
            Ok(fetched) => {
                said.extend(fetched.iter().filter_map(log_note));
                let kept: u64 = fetched
                    .iter()
                    .map(|x| match &x.fetch {
                        Fetch::Copied(c) => c.kept,
                        _ => 0,
                    })
                    .sum();
                left.max_total = left.max_total.saturating_sub(kept);
                left.max_files = left.max_files.saturating_sub(fetched.len());
            }
            Err(e) => said.push(format!("log {f}: not collected: {e}")),
        }
    }
    said
}

/// What to say of one collected path, unless it came whole.
fn log_note(f: &Fetched) -> Option<String> {
    let path = f.remote.display();
    match &f.fetch {
        Fetch::Directory => None,
        Fetch::Copied(c) if c.cut == 0 && !c.timed_out => None,
        Fetch::Copied(c) => Some(format!(
            "log {path}: {} bytes kept{}{}",
            c.kept,
            if c.cut > 0 {
                format!(
                    ", {} cut from its middle (it is larger than {LOG_MAX_BYTES} bytes)",
                    c.cut
                )
            } else {
                String::new()
            },
            if c.timed_out {
                ", stopped when the time to collect logs ran out"
            } else {
                ""
            }
        )),
        Fetch::Skipped(why) => Some(format!("log {path}: not collected: {why}")),
        Fetch::Failed(clusters::SshError::Transfer { message, .. }) => {
            // SFTP says "no such file" of a link that leads nowhere, or in a loop, too.
            let hint = if message.contains("no such file") {
                " (missing, or a link that leads nowhere or in a loop)"
            } else {
                ""
            };
            Some(format!("log {path}: not collected: {message}{hint}"))
        }
        Fetch::Failed(e) => Some(format!("log {path}: not collected: {e}")),
    }
}
