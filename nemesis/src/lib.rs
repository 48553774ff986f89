//! Faults that a test injects while its workload runs, and the machinery that guarantees
//! each one is undone.
//!
//! - [`grudge`]: partition shapes (halves, isolate, majorities ring, bridge, ...).
//! - [`fault`]: what every kind of fault has in common: a fault as asked for ([`FaultSpec`],
//!   possibly "a random minority"), as applied ([`Fault`], concrete nodes) and how to undo it
//!   ([`Undo`]), and the traits a kind implements ([`Package`], [`Spec`], [`Apply`],
//!   [`Heal`]).
//! - [`partition`], [`netem`], [`process`] (kill, pause), [`clock`], [`power`] (power loss on
//!   the lazy filesystem): one module per kind, with
//!   its forms and how it is chosen, planned, applied and undone on the nodes.
//! - [`registry`]: the list of kinds, from which [`Kind`], [`FaultSpec`], [`Fault`] and
//!   [`Undo`] are made.
//! - [`lazyfs`]: the lazy filesystem that keeps what was never synced, so that a fault can
//!   drop it as a power loss would, and its control channel.
//! - [`journal`]: the fault journal (nemesis.jsonl). A fault is journaled, and the journal
//!   flushed to disk, before it is applied; it is marked healed after it is undone.
//! - [`node_state`]: what undoes a pause, a kill or a clock fault, recorded on the node too,
//!   so that heal finds it without the journal.
//! - [`lease`]: one controller per cluster: the lease a test (or a one-off fault) holds.
//! - [`Nemesis`]: applies faults and heals them; [`schedule`]: a seeded schedule of faults.

#![warn(missing_docs)]

pub mod clock;
pub mod corrupt;
pub mod disk;
pub mod emulator;
pub mod event;
pub mod fault;
pub mod grudge;
pub mod helper;
pub mod journal;
pub mod lazyfs;
pub mod lease;
mod nemesis;
pub mod netem;
pub mod node_state;
pub mod partition;
pub mod power;
pub mod process;
pub mod registry;
mod remote;
pub mod schedule;
#[cfg(test)]
mod test_support;

pub use fault::{Apply, Fault, FaultSpec, Heal, Kind, NetemSpec, Package, Spec, Targets, Undo};
pub use grudge::{Grudge, Topology};
pub use journal::{Journal, JournalEntry};
pub use nemesis::{Applied, HealGuard, HealReport, Nemesis, Sweep};
pub use process::ProcessHooks;

use clusters::SshError;
use rand::SeedableRng;

/// The RNG that faultline's fault choices come from: ChaCha8, so that a seed gives the same
/// choices on every platform and version of `rand`.
pub type FaultRng = rand_chacha::ChaCha8Rng;

/// A [`FaultRng`] from a seed.
pub fn seeded(seed: u64) -> FaultRng {
    FaultRng::seed_from_u64(seed)
}

/// Errors applying or healing faults.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    /// The fault asked for makes no sense for this cluster.
    #[error("{0}")]
    BadFault(String),
    /// The fault cannot be applied on these nodes, and was not.
    #[error("refused: {0}")]
    Refused(String),
    /// A node could not be reached.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// A command failed on a node.
    #[error("{node}: `{command}` exited {status}: {stderr}")]
    Command {
        /// The node.
        node: String,
        /// What ran (a short description).
        command: String,
        /// Its exit status.
        status: i32,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The journal could not be read or written.
    #[error("fault journal {path}: {message}")]
    Journal {
        /// The journal file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A process fault names a database that faultline has no hooks for.
    #[error("no process hooks for database {0:?}")]
    NoHooks(String),
    /// A process fault names a database that could not be opened (a definition file that
    /// changed or is gone since the fault was applied).
    #[error("cannot restart {db}: {why}")]
    Unavailable {
        /// The database's name.
        db: String,
        /// Why it could not be opened.
        why: String,
    },
    /// Several nodes failed; each is named.
    #[error("{}", .0.iter().map(|(n, e)| format!("{n}: {e}")).collect::<Vec<_>>().join("; "))]
    Nodes(Vec<(String, String)>),
}
