//! How faultline reaches nodes: cluster files, SSH sessions (pooled, with timeouts, transfer
//! and sudo), escaped remote commands, and providers that create clusters (local network
//! namespaces, Vagrant import).

#![warn(missing_docs)]

pub mod addr;
pub mod capped;
pub mod config;
pub mod install;
pub mod local;
pub mod shell;
pub mod ssh;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vagrant;
pub mod vm;

pub use config::{ClusterFile, ConfigError, SshOptions};
pub use shell::{quote, RemoteCommand};
pub use ssh::{Cluster, NodeResult, Output};

use std::time::Duration;

/// Errors reaching or using a node.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The node could not be reached or the SSH handshake failed.
    #[error("{node}: {message}")]
    Connect {
        /// The node.
        node: String,
        /// Why.
        message: String,
    },
    /// The host key is not in known_hosts.
    #[error("{node}: unknown host key {fingerprint}; refusing to connect. If this is the right host, accept its key with:\n  {accept}")]
    UnknownHost {
        /// The node.
        node: String,
        /// SHA256 fingerprint of the key the node presented.
        fingerprint: String,
        /// The command that accepts it.
        accept: String,
    },
    /// The host key differs from the one in known_hosts.
    #[error("{node}: HOST KEY MISMATCH: the node presented {fingerprint}, which is not the key recorded in {known_hosts}. Someone may be intercepting the connection, or the host was reinstalled; if so, remove its old line from {known_hosts} and accept the new key")]
    HostKeyMismatch {
        /// The node.
        node: String,
        /// SHA256 fingerprint of the key the node presented.
        fingerprint: String,
        /// The known_hosts file.
        known_hosts: String,
    },
    /// The host key is marked `@revoked` in known_hosts: OpenSSH refuses such a key, and so
    /// do we, whatever other lines say.
    #[error("{node}: the node presented {fingerprint}, a host key marked @revoked in {known_hosts}: refusing to connect. A revoked key may be a stolen one used to impersonate the host")]
    HostKeyRevoked {
        /// The node.
        node: String,
        /// SHA256 fingerprint of the key the node presented.
        fingerprint: String,
        /// The known_hosts file.
        known_hosts: String,
    },
    /// No authentication method worked.
    #[error("{node}: could not authenticate as {user} (tried: {tried})")]
    Auth {
        /// The node.
        node: String,
        /// The user.
        user: String,
        /// What was tried.
        tried: String,
    },
    /// The session failed while in use.
    #[error("{node}: SSH session error: {message}")]
    Session {
        /// The node.
        node: String,
        /// Why.
        message: String,
    },
    /// A command ran out of time and was killed on the node.
    #[error("{node}: command timed out after {after:?} and was killed: {command}")]
    Timeout {
        /// The node.
        node: String,
        /// The command line.
        command: String,
        /// Its timeout.
        after: Duration,
    },
    /// A file transfer failed.
    #[error("{node}: transfer of {path} failed: {message}")]
    Transfer {
        /// The node.
        node: String,
        /// The path involved.
        path: String,
        /// Why.
        message: String,
    },
    /// The cluster has no such node.
    #[error("no node named {0:?} in this cluster")]
    NoSuchNode(String),
    /// A worker thread panicked (a bug).
    #[error("{0}: internal error (a worker panicked)")]
    Panicked(String),
}
