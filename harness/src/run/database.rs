//! The database phase: set up on every node (wipe, install, configure, start, wait until
//! ready); at the end, or when anything after setup fails or panics, kill it and download its
//! logs into `nodes/<node>/` (regular files only, each within [`LOG_MAX_BYTES`], all within
//! [`LOG_TIME`]). The guard makes the cleanup happen on every path.

use super::RunLog;
use clusters::ssh::{CollectLimits, Fetch, Fetched};
use clusters::Cluster;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workloads::{Database, DbError};

/// A database set up on a cluster: stopped, with its logs collected, when finished or dropped.
pub struct DbSession<'a> {
    cluster: &'a Cluster,
    db: Arc<dyn Database>,
    dir: PathBuf,
    log: &'a RunLog,
    done: bool,
}

impl<'a> DbSession<'a> {
    /// Sets the database up on every node in parallel and waits until each serves requests.
    /// On failure the database is stopped and its logs collected before the error returns.
    pub fn start(
        cluster: &'a Cluster,
        db: Arc<dyn Database>,
        dir: &Path,
        log: &'a RunLog,
    ) -> Result<DbSession<'a>, String> {
        let session = DbSession {
            cluster,
            db,
            dir: dir.to_path_buf(),
            log,
            done: false,
        };
        session.setup()?;
        Ok(session)
    }

    /// The database.
    pub fn db(&self) -> &Arc<dyn Database> {
        &self.db
    }

    fn setup(&self) -> Result<(), String> {
        let (cluster, db) = (self.cluster, self.db.as_ref());
        let nodes = cluster.nodes();
        self.log
            .say(&format!("setting up {} on {}", db.name(), nodes.join(", ")));
        let errors = failures(cluster.on_nodes(&nodes, |n| {
            Ok(db
                .wipe(cluster, n)
                .and_then(|()| db.install(cluster, n))
                .and_then(|()| db.configure(cluster, n))
                .and_then(|()| db.start(cluster, n)))
        }));
        if !errors.is_empty() {
            return Err(errors.join("\n"));
        }
        let errors = failures(cluster.on_nodes(&nodes, |n| {
            Ok(db.wait_ready(cluster, n, Duration::from_secs(30)))
        }));
        if errors.is_empty() {
            self.log
                .say(&format!("{} is ready on every node", db.name()));
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// Kills the database and downloads its logs.
    pub fn finish(mut self) {
        self.stop_and_collect();
    }

    fn stop_and_collect(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let (cluster, db) = (self.cluster, self.db.as_ref());
        let nodes = cluster.nodes();
        for r in cluster.on_nodes(&nodes, |n| Ok(db.kill(cluster, n))) {
            if let Ok(Err(e)) | Err(e) = r.result.map_err(DbError::Ssh) {
                self.log
                    .say(&format!("{}: could not stop {}: {e}", r.node, db.name()));
            }
        }
        let files = db.log_files();
        let dir = &self.dir;
        let limits = CollectLimits {
            max_bytes: LOG_MAX_BYTES,
            deadline: Instant::now() + LOG_TIME,
            max_files: LOG_MAX_FILES,
            max_depth: 4,
        };
        for r in cluster.on_nodes(&nodes, |n| {
            Ok(collect_node(cluster, n, &files, dir, &limits))
        }) {
            for line in r.result.unwrap_or_else(|e| vec![e.to_string()]) {
                self.log.say(&format!("{}: {line}", r.node));
            }
        }
        self.log.say(&format!(
            "logs collected in {}",
            dir.join("nodes").display()
        ));
    }
}

/// The most kept of each log file (its head and its tail when larger).
pub const LOG_MAX_BYTES: u64 = 64 << 20;
/// How long collecting every node's logs may take (the nodes in parallel).
pub const LOG_TIME: Duration = Duration::from_secs(120);
/// The most files collected from one node (a log directory's included).
const LOG_MAX_FILES: usize = 1000;

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
    for f in files {
        let name = Path::new(f)
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| "log".into());
        match cluster.collect(node, Path::new(f), &local_dir.join(name), limits) {
            Ok(fetched) => said.extend(fetched.iter().filter_map(log_note)),
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

impl Drop for DbSession<'_> {
    fn drop(&mut self) {
        self.stop_and_collect();
    }
}

/// The errors of a per-node step, one line each.
fn failures(results: Vec<clusters::NodeResult<Result<(), DbError>>>) -> Vec<String> {
    results
        .into_iter()
        .filter_map(|r| match r.result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        })
        .collect()
}
