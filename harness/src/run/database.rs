//! The database phase: set up on every node (wipe, install, configure, start, wait until
//! ready); at the end, or when anything after setup fails or panics, kill it and download its
//! logs into `nodes/<node>/`. The guard makes the cleanup happen on every path.

use super::RunLog;
use clusters::Cluster;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
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
        for r in cluster.on_nodes(&nodes, |n| {
            let local_dir = crate::store::node_dir(dir, n);
            std::fs::create_dir_all(&local_dir).ok();
            for f in &files {
                let name = Path::new(f)
                    .file_name()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| "log".into());
                cluster.download(n, Path::new(f), &local_dir.join(name))?;
            }
            Ok(())
        }) {
            if let Err(e) = r.result {
                self.log
                    .say(&format!("{}: could not download logs: {e}", r.node));
            }
        }
        self.log.say(&format!(
            "logs collected in {}",
            dir.join("nodes").display()
        ));
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
