//! Process faults through a database's own hooks: the nemesis asks the database which
//! processes are its own on a node ([`ProcessHooks::pids`]) and signals them itself (SIGKILL,
//! SIGSTOP, SIGCONT), so that the journal can record exactly which processes were paused,
//! and heal can resume them without knowing the database. A killed database is started again
//! through [`ProcessHooks::start`].
//!
//! Two kinds: `kill` ([`KillSpec`], [`KillFault`], undone by [`Restart`]) and `pause`
//! ([`PauseSpec`], [`PauseFault`], undone by [`Resume`] of the PIDs found when planning).

use crate::fault::{Apply, Heal, NodeErrors, Package, Spec, Targets};
use crate::registry::{FaultSpec, Kind};
use crate::remote::{collect_each, on_each, on_each_retrying, root_script};
use crate::{FaultRng, Nemesis, NemesisError};
use clusters::Cluster;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The kind `kill` (see [`Package`]).
pub struct Kill;

impl Package for Kill {
    const NAME: &'static str = "kill";
    const ABOUT: &'static str = "SIGKILL of the database; heal restarts it";
    const COLOR: [u8; 3] = [220, 90, 90];

    fn random(rng: &mut FaultRng) -> FaultSpec {
        FaultSpec::Kill(KillSpec {
            targets: Targets::random(rng),
        })
    }
}

/// The kind `pause` (see [`Package`]).
pub struct Pause;

impl Package for Pause {
    const NAME: &'static str = "pause";
    const ABOUT: &'static str = "SIGSTOP of the database; heal sends SIGCONT";
    const COLOR: [u8; 3] = [200, 160, 60];

    fn random(rng: &mut FaultRng) -> FaultSpec {
        FaultSpec::Pause(PauseSpec {
            targets: Targets::random(rng),
        })
    }
}

/// SIGKILL the database on the targets, as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillSpec {
    /// Which nodes.
    pub targets: Targets,
}

/// SIGSTOP the database on the targets, as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseSpec {
    /// Which nodes.
    pub targets: Targets,
}

/// The database killed with SIGKILL on `nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillFault {
    /// The database.
    pub db: String,
    /// Affected nodes.
    pub nodes: Vec<String>,
}

/// The database paused with SIGSTOP on `nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseFault {
    /// The database.
    pub db: String,
    /// Affected nodes.
    pub nodes: Vec<String>,
}

/// Start the database again where it is not running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    /// The database.
    pub db: String,
    /// The nodes.
    pub nodes: Vec<String>,
    /// How another faultline process opens the database again to restart it (absent in
    /// journals written before it was recorded: heal then opens `db` by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DbSource>,
}

/// How a faultline process that did not apply a fault (`faultline heal` after a crash, a
/// later run) opens the database again: `--db` as the controller resolved it (a built-in
/// database's name, or a definition file's absolute path) and the options it ran with, as
/// resolved (a definition's with its `definition-sha256`, so that an edited file is noticed),
/// as the plan records `db` and `db_options`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbSource {
    /// `--db`: a database's name, or a definition file's absolute path.
    pub db: String,
    /// Its resolved options.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// Send SIGCONT to these processes, per node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// Node to PIDs.
    pub pids: BTreeMap<String, Vec<u32>>,
}

/// The target database and nodes of a process fault. Targets resolve among the nodes where
/// the database runs now (where it has processes), so that a database on some nodes only
/// (PostgreSQL's primary without replicas, a definition that runs on the first node) is still
/// killed and paused, and a random `minority` or `all` means those nodes. Nodes named outright
/// (or reported as primaries) where it does not run are left out; only a fault with no node
/// left is refused.
pub(crate) fn resolve<R: Rng>(
    nem: &Nemesis<'_>,
    targets: &Targets,
    rng: &mut R,
) -> Result<(String, Vec<String>), NemesisError> {
    let hooks = nem.target_hooks()?;
    let db = hooks.name().to_string();
    let all = nem.cluster().nodes();
    // A node that does not answer (or whose PIDs cannot be listed) is left out of the
    // choice, not a reason to refuse a fault aimed elsewhere.
    let (pids, errors) = crate::remote::each(nem.cluster(), &all, |n| hooks.pids(nem.cluster(), n));
    for (node, e) in &errors {
        tracing::warn!("{node}: cannot tell whether {db} runs there ({e}); left out of the choice");
    }
    let running: Vec<String> = all
        .iter()
        .filter(|n| pids.get(*n).is_some_and(|p| !p.is_empty()))
        .cloned()
        .collect();
    if running.is_empty() {
        let why = if errors.is_empty() {
            String::new()
        } else {
            let unknown: Vec<&str> = errors.keys().map(String::as_str).collect();
            format!(" (could not tell on {})", unknown.join(", "))
        };
        return Err(NemesisError::Refused(format!(
            "{db} is not running on any node{why}"
        )));
    }
    let nodes = match targets {
        Targets::Nodes(_) | Targets::Primaries => {
            let named = targets.resolve(&all, || nem.primaries(), rng)?;
            let (on, off): (Vec<String>, Vec<String>) =
                named.into_iter().partition(|n| running.contains(n));
            if on.is_empty() {
                return Err(NemesisError::Refused(format!(
                    "{db} is not running on {}",
                    off.join(", ")
                )));
            }
            on
        }
        _ => targets.resolve(&running, || nem.primaries(), rng)?,
    };
    Ok((db, nodes))
}

/// The database's PIDs on `nodes`; refuses when it is not running on one of them.
pub(crate) fn running_pids(
    nem: &Nemesis<'_>,
    db: &str,
    nodes: &[String],
) -> Result<BTreeMap<String, Vec<u32>>, NemesisError> {
    let pids = find_pids(nem.cluster(), nem.hooks_for(db)?.as_ref(), nodes)?;
    let idle: Vec<&str> = pids
        .iter()
        .filter(|(_, p)| p.is_empty())
        .map(|(n, _)| n.as_str())
        .collect();
    if idle.is_empty() {
        Ok(pids)
    } else {
        Err(NemesisError::Refused(format!(
            "{db} is not running on {}",
            idle.join(", ")
        )))
    }
}

impl Spec for KillSpec {
    type Fault = KillFault;

    fn resolve<R: Rng>(&self, nem: &Nemesis<'_>, rng: &mut R) -> Result<KillFault, NemesisError> {
        let (db, nodes) = resolve(nem, &self.targets, rng)?;
        Ok(KillFault { db, nodes })
    }
}

impl Spec for PauseSpec {
    type Fault = PauseFault;

    fn resolve<R: Rng>(&self, nem: &Nemesis<'_>, rng: &mut R) -> Result<PauseFault, NemesisError> {
        let (db, nodes) = resolve(nem, &self.targets, rng)?;
        Ok(PauseFault { db, nodes })
    }
}

impl Apply for KillFault {
    const KIND: Kind = Kind::Kill;
    type Undo = Restart;
    type Plan = ();

    fn plan(&self, nem: &Nemesis<'_>) -> Result<(Restart, ()), NemesisError> {
        running_pids(nem, &self.db, &self.nodes)?;
        let undo = Restart {
            db: self.db.clone(),
            nodes: self.nodes.clone(),
            source: nem.hooks_for(&self.db)?.source(),
        };
        Ok((undo, ()))
    }

    /// Kills the processes running now (a database restarted since planning included).
    fn apply(
        &self,
        nem: &Nemesis<'_>,
        _undo: &Restart,
        _plan: (),
        _id: u64,
    ) -> Result<NodeErrors, NemesisError> {
        let pids = find_pids(
            nem.cluster(),
            nem.hooks_for(&self.db)?.as_ref(),
            &self.nodes,
        )?;
        Ok(signal(nem.cluster(), &pids, "KILL", true))
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }
}

impl Apply for PauseFault {
    const KIND: Kind = Kind::Pause;
    type Undo = Resume;
    type Plan = ();

    /// The undo records exactly the PIDs that will be stopped.
    fn plan(&self, nem: &Nemesis<'_>) -> Result<(Resume, ()), NemesisError> {
        let pids = running_pids(nem, &self.db, &self.nodes)?;
        Ok((Resume { pids }, ()))
    }

    fn apply(
        &self,
        nem: &Nemesis<'_>,
        undo: &Resume,
        _plan: (),
        _id: u64,
    ) -> Result<NodeErrors, NemesisError> {
        Ok(signal(nem.cluster(), &undo.pids, "STOP", true))
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }
}

impl fmt::Display for KillFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kill {} on {}", self.db, self.nodes.join(","))
    }
}

impl fmt::Display for PauseFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pause {} on {}", self.db, self.nodes.join(","))
    }
}

impl fmt::Display for Restart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "start {} where it is not running on {}",
            self.db,
            self.nodes.join(",")
        )
    }
}

impl fmt::Display for Resume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .pids
            .iter()
            .map(|(n, p)| {
                let p: Vec<String> = p.iter().map(u32::to_string).collect();
                format!("{} on {n}", p.join(","))
            })
            .collect();
        write!(f, "resume (SIGCONT) PIDs {}", parts.join("; "))
    }
}

impl Heal for Restart {
    fn heal(&self, nem: &Nemesis<'_>) -> NodeErrors {
        match nem.hooks_for(&self.db) {
            Ok(h) => restart(nem.cluster(), h.as_ref(), &self.nodes),
            Err(e) => self
                .nodes
                .iter()
                .map(|n| (n.clone(), e.to_string()))
                .collect(),
        }
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }

    fn database(&self) -> Option<&str> {
        Some(&self.db)
    }

    fn source(&self) -> Option<&DbSource> {
        self.source.as_ref()
    }

    fn on_node(&self, node: &str) -> Option<Restart> {
        Some(Restart {
            db: self.db.clone(),
            nodes: vec![node.to_string()],
            source: self.source.clone(),
        })
    }
}

impl Heal for Resume {
    /// SIGCONT to the recorded PIDs; a process that is gone is fine.
    fn heal(&self, nem: &Nemesis<'_>) -> NodeErrors {
        signal(nem.cluster(), &self.pids, "CONT", false)
    }

    fn nodes(&self) -> Vec<String> {
        self.pids.keys().cloned().collect()
    }

    fn on_node(&self, node: &str) -> Option<Resume> {
        let pids = self.pids.get(node)?;
        Some(Resume {
            pids: [(node.to_string(), pids.clone())].into(),
        })
    }
}

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
    /// How another faultline process opens this database again (journaled with a kill, so
    /// that heal restarts it as it ran); `None` (the default) when it cannot be told.
    fn source(&self) -> Option<DbSource> {
        None
    }
    /// Where the database keeps its data on every node (the directory a power fault's lazy
    /// filesystem is mounted over); `None` (the default) when it does not say, and power
    /// faults are refused.
    fn data_dir(&self) -> Option<String> {
        None
    }
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
        // PID 0 or 1 would be the signaller's own process group, or init: never.
        let list: Vec<String> = pids[n]
            .iter()
            .filter(|p| **p > 1)
            .map(u32::to_string)
            .collect();
        if list.is_empty() {
            return Ok(());
        }
        let script = if strict {
            format!(
                "hit=0; for p in {pids}; do [ \"$p\" != \"$$\" ] || continue; kill -{signal} \"$p\" 2>/dev/null && hit=1; done; \
                 [ $hit = 1 ] || {{ echo \"none of the processes {pids} is running\" >&2; exit 1; }}",
                pids = list.join(" ")
            )
        } else {
            format!(
                "for p in {}; do [ \"$p\" != \"$$\" ] || continue; kill -{signal} \"$p\" 2>/dev/null || true; done",
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
