//! Applying faults and healing them, with the journal in between.

use crate::fault::{Fault, FaultSpec, PartitionSpec, Undo};
use crate::grudge::Topology;
use crate::journal::{Journal, Pending};
use crate::process::ProcessHooks;
use crate::remote::{all_ok, on_each_retrying, root_script};
use crate::{clock, helper, netem, partition, process, NemesisError};
use clusters::Cluster;
use rand::Rng;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A fault that is applied, with its journal id and how to undo it.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Its id in the journal.
    pub id: u64,
    /// The fault.
    pub fault: Fault,
    /// How heal undoes it.
    pub undo: Undo,
}

/// What a heal did.
#[derive(Debug, Default)]
pub struct HealReport {
    /// Faults undone: id and description.
    pub healed: Vec<(u64, String)>,
    /// Faults that could not be undone on some node: id, description, per-node errors. They
    /// stay pending in the journal.
    pub failed: Vec<(u64, String, BTreeMap<String, String>)>,
    /// Errors of the sweep (faultline's own rules removed from every node whatever the
    /// journal says), per node.
    pub sweep_errors: BTreeMap<String, String>,
}

impl HealReport {
    /// Whether everything was undone.
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty() && self.sweep_errors.is_empty()
    }
}

/// Applies faults to a cluster and heals them. Every fault is journaled before it is
/// applied; see [`crate::journal`].
pub struct Nemesis<'c> {
    cluster: &'c Cluster,
    journal: Journal,
    hooks: Vec<Arc<dyn ProcessHooks>>,
    db: Option<String>,
    helper: Option<PathBuf>,
    addrs: Mutex<Option<BTreeMap<String, Vec<Ipv4Addr>>>>,
}

impl<'c> Nemesis<'c> {
    /// A nemesis for `cluster` that journals into `journal`.
    pub fn new(cluster: &'c Cluster, journal: Journal) -> Nemesis<'c> {
        Nemesis {
            cluster,
            journal,
            hooks: Vec::new(),
            db: None,
            helper: None,
            addrs: Mutex::new(None),
        }
    }

    /// Registers a database's process hooks (for heal of kills by name); the first one
    /// registered is the database that kill and pause faults target.
    pub fn with_hooks(mut self, hooks: Arc<dyn ProcessHooks>) -> Self {
        if self.db.is_none() {
            self.db = Some(hooks.name().to_string());
        }
        self.hooks.push(hooks);
        self
    }

    /// Chooses which registered database kill and pause faults target.
    pub fn target_db(mut self, name: &str) -> Result<Self, NemesisError> {
        self.hooks_for(name)?;
        self.db = Some(name.to_string());
        Ok(self)
    }

    /// The binary uploaded to nodes as the clock helper (normally the running faultline).
    pub fn with_helper(mut self, path: PathBuf) -> Self {
        self.helper = Some(path);
        self
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        self.cluster
    }

    fn hooks_for(&self, db: &str) -> Result<&Arc<dyn ProcessHooks>, NemesisError> {
        self.hooks
            .iter()
            .find(|h| h.name() == db)
            .ok_or_else(|| NemesisError::NoHooks(db.to_string()))
    }

    fn target_hooks(&self) -> Result<&Arc<dyn ProcessHooks>, NemesisError> {
        let db = self.db.as_deref().ok_or_else(|| {
            NemesisError::BadFault("process faults need a database (--db)".into())
        })?;
        self.hooks_for(db)
    }

    /// Readies clock faults before a run: refuses (with the reason) when the nodes share a
    /// kernel clock, and installs the node helper everywhere, so that applying a clock fault
    /// later is one command per node.
    pub fn prepare_clock(&self) -> Result<(), NemesisError> {
        let nodes = self.cluster.nodes();
        clock::require_own_clocks(self.cluster, &nodes)?;
        all_ok(helper::install(self.cluster, &nodes, &self.helper()?))
    }

    /// Each node's addresses, asked once and kept.
    pub fn addresses(&self) -> Result<BTreeMap<String, Vec<Ipv4Addr>>, NemesisError> {
        let mut guard = self.addrs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = &*guard {
            return Ok(a.clone());
        }
        let a = partition::node_addresses(self.cluster)?;
        *guard = Some(a.clone());
        Ok(a)
    }

    fn primaries(&self) -> Result<Vec<String>, NemesisError> {
        self.target_hooks()?.primaries(self.cluster)
    }

    /// Makes every choice in `spec` (random nodes, primaries) and returns the concrete fault.
    pub fn resolve(&self, spec: &FaultSpec, rng: &mut impl Rng) -> Result<Fault, NemesisError> {
        let nodes = self.cluster.nodes();
        Ok(match spec {
            FaultSpec::Partition { partition } => match partition {
                PartitionSpec::Topology(t) => {
                    let primaries = if *t == Topology::Primaries {
                        self.primaries()?
                    } else {
                        Vec::new()
                    };
                    Fault::Partition {
                        grudge: t.grudge(&nodes, &primaries, rng)?,
                        topology: Some(t.to_string()),
                    }
                }
                PartitionSpec::Grudge(g) => {
                    g.validate(&nodes)?;
                    Fault::Partition {
                        grudge: g.clone(),
                        topology: None,
                    }
                }
            },
            FaultSpec::Netem { targets, to, spec } => {
                spec.validate()?;
                Fault::Netem {
                    nodes: targets.resolve(&nodes, || self.primaries(), rng)?,
                    to: match to {
                        Some(t) => t.resolve(&nodes, || self.primaries(), rng)?,
                        None => Vec::new(),
                    },
                    spec: spec.clone(),
                }
            }
            FaultSpec::Kill { targets } => Fault::Kill {
                db: self.target_hooks()?.name().to_string(),
                nodes: targets.resolve(&nodes, || self.primaries(), rng)?,
            },
            FaultSpec::Pause { targets } => Fault::Pause {
                db: self.target_hooks()?.name().to_string(),
                nodes: targets.resolve(&nodes, || self.primaries(), rng)?,
            },
            FaultSpec::ClockBump { targets, by_ms } => Fault::ClockBump {
                nodes: targets.resolve(&nodes, || self.primaries(), rng)?,
                by_ms: *by_ms,
            },
            FaultSpec::ClockStrobe {
                targets,
                delta_ms,
                period_ms,
                duration_ms,
            } => Fault::ClockStrobe {
                nodes: targets.resolve(&nodes, || self.primaries(), rng)?,
                delta_ms: *delta_ms,
                period_ms: *period_ms,
                duration_ms: *duration_ms,
            },
        })
    }

    /// The clock and packet-fault helper to upload: the configured one, else this program.
    fn helper(&self) -> Result<PathBuf, NemesisError> {
        match &self.helper {
            Some(h) => Ok(h.clone()),
            None => std::env::current_exe().map_err(|e| {
                NemesisError::BadFault(format!("cannot find faultline's node helper: {e}"))
            }),
        }
    }

    /// Finds out how to undo `fault` without changing anything, and refuses faults that
    /// cannot be applied (a clock fault on a shared kernel, a database that is not running).
    fn plan(&self, fault: &Fault) -> Result<(Undo, Option<netem::NetemPlan>), NemesisError> {
        if let Fault::Netem { nodes, to, spec } = fault {
            spec.validate()?;
            let dests = self.netem_dests(nodes, to)?;
            let plan = netem::plan(self.cluster, nodes, &dests)?;
            if !plan.emulate.is_empty() {
                let list: Vec<String> = plan.emulate.iter().cloned().collect();
                if spec.duplicate.is_some() {
                    return Err(NemesisError::Refused(format!(
                        "the kernel of {} has no netem, and duplication cannot be emulated without it (delay, jitter, loss, reorder, corrupt and rate can)",
                        list.join(", ")
                    )));
                }
                all_ok(helper::install(self.cluster, &list, &self.helper()?))?;
            }
            let undo = Undo::Netem {
                ifaces: plan.ifaces.clone(),
            };
            return Ok((undo, Some(plan)));
        }
        self.plan_other(fault).map(|u| (u, None))
    }

    fn plan_other(&self, fault: &Fault) -> Result<Undo, NemesisError> {
        Ok(match fault {
            Fault::Partition { grudge, .. } => {
                grudge.validate(&self.cluster.nodes())?;
                self.addresses()?;
                Undo::Partition {
                    nodes: self.cluster.nodes(),
                }
            }
            Fault::Netem { .. } => unreachable!("planned above"),
            Fault::Kill { db, nodes } => {
                let pids = process::find_pids(self.cluster, self.hooks_for(db)?.as_ref(), nodes)?;
                require_running(db, &pids)?;
                Undo::Restart {
                    db: db.clone(),
                    nodes: nodes.clone(),
                }
            }
            Fault::Pause { db, nodes } => {
                let pids = process::find_pids(self.cluster, self.hooks_for(db)?.as_ref(), nodes)?;
                require_running(db, &pids)?;
                Undo::Resume { pids }
            }
            Fault::ClockBump { nodes, .. } | Fault::ClockStrobe { nodes, .. } => {
                clock::require_own_clocks(self.cluster, nodes)?;
                all_ok(helper::install(self.cluster, nodes, &self.helper()?))?;
                Undo::ResetClock {
                    nodes: nodes.clone(),
                    time_sync: clock::active_time_sync(self.cluster, nodes)?,
                }
            }
        })
    }

    /// The addresses each netem node routes towards: those of `to`, or of all its peers.
    fn netem_dests(
        &self,
        nodes: &[String],
        to: &[String],
    ) -> Result<BTreeMap<String, Vec<Ipv4Addr>>, NemesisError> {
        let addrs = self.addresses()?;
        let mut out = BTreeMap::new();
        for n in nodes {
            let own: Vec<Ipv4Addr> = addrs.get(n).cloned().unwrap_or_default();
            let peers: Vec<Ipv4Addr> = addrs
                .iter()
                .filter(|(m, _)| *m != n && (to.is_empty() || to.contains(m)))
                .flat_map(|(_, a)| a.iter().copied())
                .filter(|a| !own.contains(a))
                .collect();
            out.insert(n.clone(), peers);
        }
        Ok(out)
    }

    /// Applies `fault`: plans its undo, journals both (on disk before anything changes),
    /// applies it on the nodes in parallel, and journals the outcome. When applying fails on
    /// some node, what was applied is healed at once and the error is returned.
    pub fn apply(&self, fault: Fault) -> Result<Applied, NemesisError> {
        let (undo, netem_plan) = self.plan(&fault)?;
        let superseded: Vec<u64> = match fault {
            Fault::Partition { .. } => self
                .journal
                .pending()?
                .into_iter()
                .filter(|p| matches!(p.undo, Undo::Partition { .. }))
                .map(|p| p.id)
                .collect(),
            _ => Vec::new(),
        };
        let id = self.journal.record_apply(&fault, &undo)?;
        tracing::info!(id, fault = %fault, "applying");
        let errors = match &fault {
            Fault::Partition { grudge, .. } => {
                partition::apply(self.cluster, grudge, &self.addresses()?)
            }
            Fault::Netem { nodes, to, spec } => {
                let to_addrs = if to.is_empty() {
                    BTreeMap::new()
                } else {
                    self.netem_dests(nodes, to)?
                };
                let plan = netem_plan.unwrap_or_default();
                if !plan.emulate.is_empty() {
                    tracing::info!(nodes = ?plan.emulate, "no netem in the kernel: emulating packet faults in user space");
                }
                netem::apply(
                    self.cluster,
                    &plan,
                    spec,
                    &to_addrs,
                    id,
                    helper::HELPER_PATH,
                )
            }
            Fault::Kill { db, nodes } => {
                let pids = process::find_pids(self.cluster, self.hooks_for(db)?.as_ref(), nodes)?;
                process::signal(self.cluster, &pids, "KILL", true)
            }
            Fault::Pause { .. } => match &undo {
                Undo::Resume { pids } => process::signal(self.cluster, pids, "STOP", true),
                _ => unreachable!("pause plans a resume"),
            },
            Fault::ClockBump { nodes, by_ms } => {
                clock::bump(self.cluster, nodes, *by_ms, time_sync_of(&undo))
            }
            Fault::ClockStrobe {
                nodes,
                delta_ms,
                period_ms,
                duration_ms,
            } => clock::strobe(
                self.cluster,
                nodes,
                clock::Strobe {
                    delta_ms: *delta_ms,
                    period_ms: *period_ms,
                    duration_ms: *duration_ms,
                },
                time_sync_of(&undo),
            ),
        };
        if errors.is_empty() {
            self.journal.record_applied(id)?;
            // A new partition replaces the rules of any earlier one.
            for old in superseded {
                self.journal.record_healed(old)?;
            }
            Ok(Applied { id, fault, undo })
        } else {
            self.journal.record_apply_failed(id, errors.clone())?;
            tracing::error!(id, ?errors, "applying failed; healing what was applied");
            let _ = self.heal_one(id, &undo);
            Err(NemesisError::Nodes(errors.into_iter().collect()))
        }
    }

    /// Undoes one fault and journals the outcome.
    pub fn heal_one(&self, id: u64, undo: &Undo) -> Result<(), NemesisError> {
        let errors = match undo {
            Undo::Partition { nodes } => partition::heal(self.cluster, nodes),
            Undo::Netem { ifaces } => netem::heal(self.cluster, ifaces),
            Undo::Resume { pids } => process::signal(self.cluster, pids, "CONT", false),
            Undo::Restart { db, nodes } => match self.hooks_for(db) {
                Ok(h) => process::restart(self.cluster, h.as_ref(), nodes),
                Err(e) => nodes.iter().map(|n| (n.clone(), e.to_string())).collect(),
            },
            Undo::ResetClock { nodes, time_sync } => clock::reset(self.cluster, nodes, time_sync),
        };
        if errors.is_empty() {
            self.journal.record_healed(id)?;
            Ok(())
        } else {
            self.journal.record_heal_failed(id, errors.clone())?;
            Err(NemesisError::Nodes(errors.into_iter().collect()))
        }
    }

    /// Heals a fault this nemesis applied.
    pub fn heal(&self, applied: &Applied) -> Result<(), NemesisError> {
        self.heal_one(applied.id, &applied.undo)
    }

    /// Undoes everything the journal says may still be applied, newest first; with `sweep`,
    /// also removes faultline's partition chain and netem qdiscs from every node, whatever
    /// the journal says. Idempotent.
    pub fn heal_all(&self, sweep: bool) -> Result<HealReport, NemesisError> {
        let mut report = HealReport::default();
        let mut pending: Vec<Pending> = self.journal.pending()?;
        pending.reverse();
        for p in pending {
            let what = p.fault.to_string();
            match self.heal_one(p.id, &p.undo) {
                Ok(()) => report.healed.push((p.id, what)),
                Err(NemesisError::Nodes(errs)) => {
                    report.failed.push((p.id, what, errs.into_iter().collect()))
                }
                Err(e) => return Err(e),
            }
        }
        if sweep {
            report.sweep_errors = self.sweep();
        }
        Ok(report)
    }

    /// Removes faultline's partition chain and faultline's root qdiscs from every node.
    pub fn sweep(&self) -> BTreeMap<String, String> {
        let nodes = self.cluster.nodes();
        let mut errors = partition::heal(self.cluster, &nodes);
        let netem_errors = on_each_retrying(self.cluster, &nodes, |n| {
            root_script(
                self.cluster,
                n,
                "tc (sweep)",
                &format!(
                    "command -v tc >/dev/null || exit 0\n\
                     for d in $(ls /sys/class/net); do\n\
                       if [ \"$(tc qdisc show dev \"$d\" root 2>/dev/null | awk '{{print $3}}')\" = {h} ]; then tc qdisc del dev \"$d\" root; fi\n\
                     done\n{e}",
                    h = netem::HANDLE,
                    e = netem::heal_emulator_script()
                ),
            )
            .map(|_| ())
        });
        for (n, e) in netem_errors {
            errors
                .entry(n)
                .and_modify(|x| {
                    x.push_str("; ");
                    x.push_str(&e);
                })
                .or_insert(e);
        }
        errors
    }

    /// A guard that heals, when dropped (also when unwinding from a panic), every fault
    /// still pending in the journal.
    pub fn heal_on_drop(&self) -> HealGuard<'_, 'c> {
        HealGuard {
            nemesis: self,
            armed: true,
        }
    }
}

/// The time-sync units a clock fault's undo records (none for other undos).
fn time_sync_of(undo: &Undo) -> &BTreeMap<String, Vec<String>> {
    static NONE: BTreeMap<String, Vec<String>> = BTreeMap::new();
    match undo {
        Undo::ResetClock { time_sync, .. } => time_sync,
        _ => &NONE,
    }
}

fn require_running(db: &str, pids: &BTreeMap<String, Vec<u32>>) -> Result<(), NemesisError> {
    let idle: Vec<&str> = pids
        .iter()
        .filter(|(_, p)| p.is_empty())
        .map(|(n, _)| n.as_str())
        .collect();
    if idle.is_empty() {
        Ok(())
    } else {
        Err(NemesisError::Refused(format!(
            "{db} is not running on {}",
            idle.join(", ")
        )))
    }
}

/// Heals every pending fault when dropped; see [`Nemesis::heal_on_drop`].
pub struct HealGuard<'n, 'c> {
    nemesis: &'n Nemesis<'c>,
    armed: bool,
}

impl HealGuard<'_, '_> {
    /// Heals now and reports; the guard then does nothing on drop.
    pub fn heal_now(mut self) -> Result<HealReport, NemesisError> {
        self.armed = false;
        self.nemesis.heal_all(false)
    }
}

impl Drop for HealGuard<'_, '_> {
    fn drop(&mut self) {
        if self.armed {
            match self.nemesis.heal_all(false) {
                Ok(r) if r.is_clean() => {}
                Ok(r) => {
                    tracing::error!(failed = ?r.failed, "HEAL FAILED on some nodes; run `faultline heal`")
                }
                Err(e) => tracing::error!(error = %e, "HEAL FAILED; run `faultline heal`"),
            }
        }
    }
}
