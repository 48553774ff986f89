//! The database phase of a run: set up on every node (wipe, install, configure, start, wait
//! until ready; [`crate::session::lifecycle`]), on faultline's lazy filesystem when the run
//! has power faults; at the end, or when anything after setup fails or panics, kill it,
//! unmount the lazy filesystem and download its logs into `nodes/<node>/`. The guard makes
//! the cleanup happen on every path.

use super::RunLog;
use crate::session::lifecycle::{self, Lazyfs};
use clusters::Cluster;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use workloads::Database;

pub use lifecycle::{LOG_MAX_BYTES, LOG_TIME};

/// A database set up on a cluster: stopped, with its logs collected, when finished or dropped.
pub struct DbSession<'a> {
    cluster: &'a Cluster,
    db: Arc<dyn Database>,
    dir: PathBuf,
    log: &'a RunLog,
    lazyfs: Option<Lazyfs>,
    done: bool,
}

impl<'a> DbSession<'a> {
    /// Sets the database up on every node in parallel (on `lazyfs`, if given) and waits until
    /// each serves requests. On failure the database is stopped, the lazy filesystem
    /// unmounted and its logs collected before the error returns.
    pub fn start(
        cluster: &'a Cluster,
        db: Arc<dyn Database>,
        lazyfs: Option<Lazyfs>,
        dir: &Path,
        log: &'a RunLog,
    ) -> Result<DbSession<'a>, String> {
        let session = DbSession {
            cluster,
            db,
            dir: dir.to_path_buf(),
            log,
            lazyfs,
            done: false,
        };
        if let Some(l) = &session.lazyfs {
            log.say(&format!(
                "power and disk faults: {} on faultline's lazy filesystem on every node",
                l.mount.data_dir
            ));
        }
        log.say(&format!(
            "setting up {} on {}",
            session.db.name(),
            cluster.nodes().join(", ")
        ));
        lifecycle::set_up(cluster, session.db.as_ref(), session.lazyfs.as_ref())
            .map_err(|e| e.join("\n"))?;
        log.say(&format!("{} is ready on every node", session.db.name()));
        Ok(session)
    }

    /// The database.
    pub fn db(&self) -> &Arc<dyn Database> {
        &self.db
    }

    /// Kills the database, unmounts the lazy filesystem and downloads its logs.
    pub fn finish(mut self) {
        self.stop_and_collect();
    }

    fn stop_and_collect(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let say = |m: &str| self.log.say(m);
        lifecycle::stop(self.cluster, self.db.as_ref(), &say);
        if let Some(l) = &self.lazyfs {
            lifecycle::unmount(self.cluster, l, &say);
        }
        lifecycle::collect_logs(self.cluster, self.db.as_ref(), &self.dir, &say);
    }
}

impl Drop for DbSession<'_> {
    fn drop(&mut self) {
        self.stop_and_collect();
    }
}
