//! SSH access to nodes: sessions, pooling, ~/.ssh/config.

pub mod pool;
pub mod session;
pub mod ssh_config;

pub use pool::{Cluster, NodeResult};
pub use session::{
    CollectLimits, Fetch, Fetched, NodeSession, Output, Target, DEFAULT_OUTPUT_LIMIT,
    SUDO_PASSWORD_ENV,
};
