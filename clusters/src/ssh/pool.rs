//! A cluster's pooled sessions: per node, up to `per_node` authenticated sessions, reused
//! across commands, with reconnection (and backoff) when a session has died.

use super::session::{CollectLimits, Fetched, NodeSession, Output, Target};
use crate::config::ClusterFile;
use crate::shell::RemoteCommand;
use crate::SshError;
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// The result of running something on one node.
#[derive(Debug)]
pub struct NodeResult<T> {
    /// The node's name.
    pub node: String,
    /// What happened there.
    pub result: Result<T, SshError>,
}

struct NodePool {
    target: Target,
    idle: Mutex<(Vec<NodeSession>, usize)>, // idle sessions, sessions checked out
    freed: Condvar,
}

/// Connections to every node of a cluster.
pub struct Cluster {
    file: ClusterFile,
    pools: Vec<NodePool>,
    per_node: usize,
}

const RECONNECT_TRIES: u32 = 3;

impl Cluster {
    /// Prepares connections to the nodes of `file` (sessions open on first use), with at most
    /// `per_node` concurrent sessions per node.
    pub fn new(file: ClusterFile, per_node: usize) -> Cluster {
        let pools = file
            .nodes
            .iter()
            .map(|n| NodePool {
                target: Target::resolve(n, &file.ssh),
                idle: Mutex::new((Vec::new(), 0)),
                freed: Condvar::new(),
            })
            .collect();
        Cluster {
            file,
            pools,
            per_node: per_node.max(1),
        }
    }

    /// The cluster file.
    pub fn file(&self) -> &ClusterFile {
        &self.file
    }

    /// Node names, in cluster-file order.
    pub fn nodes(&self) -> Vec<String> {
        self.file.nodes.clone()
    }

    fn pool(&self, node: &str) -> Result<&NodePool, SshError> {
        self.pools
            .iter()
            .find(|p| p.target.node == node)
            .ok_or_else(|| SshError::NoSuchNode(node.to_string()))
    }

    /// Runs `f` with a session to `node`: an idle one, or a new one when fewer than
    /// `per_node` are out, else waits. A session that fails is dropped, not returned.
    pub fn with_session<T>(
        &self,
        node: &str,
        f: impl FnOnce(&NodeSession) -> Result<T, SshError>,
    ) -> Result<T, SshError> {
        let pool = self.pool(node)?;
        let session = {
            let mut guard = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(s) = guard.0.pop() {
                    guard.1 += 1;
                    break Some(s);
                }
                if guard.1 < self.per_node {
                    guard.1 += 1;
                    break None;
                }
                guard = pool.freed.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
        };
        let session = match session {
            Some(s) => Ok(s),
            None => connect_with_backoff(&pool.target),
        };
        let (result, keep) = match session {
            Ok(s) => {
                let r = f(&s);
                let healthy = !matches!(r, Err(SshError::Session { .. }));
                (r, healthy.then_some(s))
            }
            Err(e) => (Err(e), None),
        };
        let mut guard = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        guard.1 -= 1;
        if let Some(s) = keep {
            guard.0.push(s);
        }
        pool.freed.notify_one();
        result
    }

    /// Runs a command on one node with the cluster's default command timeout.
    pub fn exec(&self, node: &str, cmd: &RemoteCommand) -> Result<Output, SshError> {
        self.exec_timeout(node, cmd, self.file.ssh.command_timeout)
    }

    /// Runs a command on one node with a timeout.
    pub fn exec_timeout(
        &self,
        node: &str,
        cmd: &RemoteCommand,
        timeout: Duration,
    ) -> Result<Output, SshError> {
        self.with_session(node, |s| s.exec(cmd, timeout))
    }

    /// Runs a command on one node with a timeout, keeping at most `limit` bytes of each of its
    /// output streams (see [`NodeSession::exec_limited`]).
    pub fn exec_limited(
        &self,
        node: &str,
        cmd: &RemoteCommand,
        timeout: Duration,
        limit: usize,
    ) -> Result<Output, SshError> {
        self.with_session(node, |s| s.exec_limited(cmd, timeout, limit))
    }

    /// Uploads a file or directory to one node.
    pub fn upload(&self, node: &str, local: &Path, remote: &Path) -> Result<(), SshError> {
        self.with_session(node, |s| s.upload(local, remote))
    }

    /// Uploads a file to one node into a path that must not exist yet (an exclusive create:
    /// nothing already there is written into). See [`crate::install::install_file`] for
    /// installing a file safely as root.
    pub fn upload_new(&self, node: &str, local: &Path, remote: &Path) -> Result<(), SshError> {
        self.with_session(node, |s| s.upload_new(local, remote))
    }

    /// Downloads a file or directory from one node.
    pub fn download(&self, node: &str, remote: &Path, local: &Path) -> Result<(), SshError> {
        self.with_session(node, |s| s.download(remote, local))
    }

    /// Collects files from one node within bounds (see [`NodeSession::collect`]): every
    /// path's outcome, or why the node could not be reached.
    pub fn collect(
        &self,
        node: &str,
        remote: &Path,
        local: &Path,
        limits: &CollectLimits,
    ) -> Result<Vec<Fetched>, SshError> {
        let mut got = None;
        let r = self.with_session(node, |s| {
            let (fetched, sound) = s.collect(remote, local, limits);
            got = Some(fetched);
            if sound {
                Ok(())
            } else {
                // Not back into the pool: a transfer may have been cut in the middle.
                Err(SshError::Session {
                    node: node.to_string(),
                    message: "the time to collect files ran out".into(),
                })
            }
        });
        match (got, r) {
            (Some(fetched), _) => Ok(fetched),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(Vec::new()),
        }
    }

    /// Runs `f` for each of `nodes` in parallel (one thread per node) and returns the results
    /// in the order given.
    pub fn on_nodes<T: Send>(
        &self,
        nodes: &[String],
        f: impl Fn(&str) -> Result<T, SshError> + Sync,
    ) -> Vec<NodeResult<T>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = nodes.iter().map(|n| (n, s.spawn(|| f(n)))).collect();
            handles
                .into_iter()
                .map(|(n, h)| NodeResult {
                    node: n.clone(),
                    result: h
                        .join()
                        .unwrap_or_else(|_| Err(SshError::Panicked(n.clone()))),
                })
                .collect()
        })
    }

    /// Runs a command on every node in parallel.
    pub fn exec_all(&self, cmd: &RemoteCommand) -> Vec<NodeResult<Output>> {
        self.on_nodes(&self.nodes(), |n| self.exec(n, cmd))
    }
}

fn connect_with_backoff(target: &Target) -> Result<NodeSession, SshError> {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match NodeSession::connect(target) {
            Ok(s) => return Ok(s),
            // Refusals that a retry cannot fix are returned at once.
            Err(
                e @ (SshError::UnknownHost { .. }
                | SshError::HostKeyMismatch { .. }
                | SshError::HostKeyRevoked { .. }
                | SshError::Auth { .. }),
            ) => return Err(e),
            Err(e) if attempt >= RECONNECT_TRIES => return Err(e),
            Err(e) => {
                tracing::debug!(node = %target.node, error = %e, attempt, "connect failed; retrying");
                std::thread::sleep(delay);
                delay *= 4;
                attempt += 1;
            }
        }
    }
}
