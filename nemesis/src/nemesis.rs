//! Applying faults and healing them, with the journal in between.

use crate::fault::{Apply, Fault, FaultSpec, Undo};
use crate::journal::{Journal, Pending};
use crate::process::ProcessHooks;
use crate::remote::{all_ok, each_retrying, root_script};
use crate::{clock, helper, netem, node_state, partition, NemesisError};
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
    /// Why the journal could not be read, when it could not (heal then only swept).
    pub journal_error: Option<String>,
    /// What the sweep found and removed, per node (faultline's rules, and faults recorded on
    /// the nodes that the journal did not list).
    pub swept: BTreeMap<String, Vec<String>>,
}

/// What [`Nemesis::sweep`] found and removed, and where it failed.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Per node, one line for each thing found and removed.
    pub found: BTreeMap<String, Vec<String>>,
    /// Per node, what could not be removed.
    pub errors: BTreeMap<String, String>,
}

impl HealReport {
    /// Whether everything was undone.
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty() && self.sweep_errors.is_empty() && self.journal_error.is_none()
    }
}

/// The script that removes faultline's partition chain, its root qdiscs and its packet-fault
/// emulator from a node, printing a line for each it found.
fn sweep_script() -> String {
    format!(
        "s=0\n\
         ( {p} ) || s=1\n\
         ( command -v tc >/dev/null || exit 0\n\
           for d in $(ls /sys/class/net); do\n\
             if [ \"$(tc qdisc show dev \"$d\" root 2>/dev/null | awk '{{print $3}}')\" = {h} ]; then tc qdisc del dev \"$d\" root && echo \"removed packet faults on $d (tc qdisc {h})\"; fi\n\
           done ) || s=1\n\
         ( {e} ) || s=1\n\
         exit $s\n",
        p = partition::sweep_script(),
        h = netem::HANDLE,
        e = netem::sweep_emulator_script(),
    )
}

/// Applies faults to a cluster and heals them. Every fault is journaled before it is
/// applied; see [`crate::journal`].
pub struct Nemesis<'c> {
    cluster: &'c Cluster,
    journal: Journal,
    hooks: Vec<Arc<dyn ProcessHooks>>,
    /// Databases that could not be opened, and why (heal reports the faults that need them).
    unavailable: Vec<(String, String)>,
    db: Option<String>,
    helper: Option<PathBuf>,
    addrs: Mutex<Option<BTreeMap<String, Vec<Ipv4Addr>>>>,
    addrs6: Mutex<Option<BTreeMap<String, Vec<std::net::Ipv6Addr>>>>,
}

impl<'c> Nemesis<'c> {
    /// A nemesis for `cluster` that journals into `journal`.
    pub fn new(cluster: &'c Cluster, journal: Journal) -> Nemesis<'c> {
        Nemesis {
            cluster,
            journal,
            hooks: Vec::new(),
            unavailable: Vec::new(),
            db: None,
            helper: None,
            addrs: Mutex::new(None),
            addrs6: Mutex::new(None),
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

    /// Records that database `name` could not be opened, and why: undoing a fault that needs
    /// its hooks (restarting it where it was killed) then fails at once on the fault's nodes
    /// with that reason, while every other fault is healed.
    pub fn with_unavailable(mut self, name: &str, why: &str) -> Self {
        self.unavailable.push((name.to_string(), why.to_string()));
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

    /// Whether hooks for database `db` are registered.
    pub fn has_hooks(&self, db: &str) -> bool {
        self.hooks.iter().any(|h| h.name() == db)
    }

    /// The hooks of database `db`.
    pub(crate) fn hooks_for(&self, db: &str) -> Result<&Arc<dyn ProcessHooks>, NemesisError> {
        self.hooks.iter().find(|h| h.name() == db).ok_or_else(|| {
            match self.unavailable.iter().find(|(n, _)| n == db) {
                Some((_, why)) => NemesisError::Unavailable {
                    db: db.to_string(),
                    why: why.clone(),
                },
                None => NemesisError::NoHooks(db.to_string()),
            }
        })
    }

    /// The hooks of the database that process faults target.
    pub(crate) fn target_hooks(&self) -> Result<&Arc<dyn ProcessHooks>, NemesisError> {
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

    /// Each node's global IPv6 addresses (empty where it has none), asked once and kept.
    pub fn addresses_v6(&self) -> Result<BTreeMap<String, Vec<std::net::Ipv6Addr>>, NemesisError> {
        let mut guard = self.addrs6.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = &*guard {
            return Ok(a.clone());
        }
        let a = clusters::addr::node_addresses_v6(self.cluster)?;
        *guard = Some(a.clone());
        Ok(a)
    }

    /// The nodes the target database reports as primaries.
    pub(crate) fn primaries(&self) -> Result<Vec<String>, NemesisError> {
        self.target_hooks()?.primaries(self.cluster)
    }

    /// Makes every choice in `spec` (random nodes, primaries) and returns the concrete fault.
    pub fn resolve(&self, spec: &FaultSpec, rng: &mut impl Rng) -> Result<Fault, NemesisError> {
        spec.resolve_with(self, rng)
    }

    /// The clock and packet-fault helper to upload: the configured one, else this program.
    pub(crate) fn helper(&self) -> Result<PathBuf, NemesisError> {
        match &self.helper {
            Some(h) => Ok(h.clone()),
            None => std::env::current_exe().map_err(|e| {
                NemesisError::BadFault(format!("cannot find faultline's node helper: {e}"))
            }),
        }
    }

    /// Applies `fault`: plans its undo, journals both (on disk before anything changes),
    /// applies it on the nodes in parallel, and journals the outcome. When applying fails on
    /// some node, what was applied is healed at once and the error is returned.
    pub fn apply(&self, fault: Fault) -> Result<Applied, NemesisError> {
        let (id, undo) = fault.apply_with(self)?;
        Ok(Applied { id, fault, undo })
    }

    /// [`Nemesis::apply`] for one kind: `fault` is the variant of `whole` that `kind` is.
    pub(crate) fn apply_kind<F: Apply>(
        &self,
        whole: &Fault,
        kind: &F,
    ) -> Result<(u64, Undo), NemesisError> {
        let (undo, plan) = kind.plan(self)?;
        let superseded: Vec<u64> = self
            .journal
            .pending()?
            .into_iter()
            .filter(|p| whole.supersedes(&p.undo))
            .map(|p| p.id)
            .collect();
        let journaled: Undo = undo.clone().into();
        let id = self.journal.record_apply(whole, &journaled)?;
        tracing::info!(id, fault = %whole, "applying");
        // What undoes it is also kept on the nodes, for a heal that has lost the journal.
        let records = node_state::records_of(&journaled);
        let mut errors = node_state::write(self.cluster, &records);
        if errors.is_empty() {
            errors = kind.apply(self, &undo, plan, id)?;
        }
        if errors.is_empty() {
            self.journal.record_applied(id)?;
            // A fault that replaces earlier ones (a new partition's rules) healed them.
            for old in superseded {
                self.journal.record_healed(old)?;
            }
            Ok((id, journaled))
        } else {
            self.journal.record_apply_failed(id, errors.clone())?;
            tracing::error!(id, ?errors, "applying failed; healing what was applied");
            let _ = self.heal_one(id, &journaled);
            Err(NemesisError::Nodes(errors.into_iter().collect()))
        }
    }

    /// Undoes one fault and journals the outcome.
    pub fn heal_one(&self, id: u64, undo: &Undo) -> Result<(), NemesisError> {
        let errors = undo.heal_with(self);
        if errors.is_empty() {
            self.forget(undo);
            self.journal.record_healed(id)?;
            Ok(())
        } else {
            self.journal.record_heal_failed(id, errors.clone())?;
            Err(NemesisError::Nodes(errors.into_iter().collect()))
        }
    }

    /// Removes the records of `undo` from its nodes ([`node_state`]): the fault is undone.
    /// A record that cannot be removed is logged; a later sweep would undo it again, which
    /// changes nothing.
    pub fn forget(&self, undo: &Undo) {
        let records = node_state::records_of(undo);
        if records.is_empty() {
            return;
        }
        let errors = node_state::remove(self.cluster, &records);
        if !errors.is_empty() {
            tracing::warn!(
                ?errors,
                "could not remove the undo records of a healed fault"
            );
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
        // With a sweep, an unreadable journal does not keep faultline's rules on the nodes.
        let mut pending: Vec<Pending> = match self.journal.pending() {
            Ok(p) => p,
            Err(e) if sweep => {
                report.journal_error = Some(e.to_string());
                Vec::new()
            }
            Err(e) => return Err(e),
        };
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
            let swept = self.sweep();
            report.swept = swept.found;
            report.sweep_errors = swept.errors;
        }
        Ok(report)
    }

    /// Removes faultline's traces from every node, whatever the journal says: its partition
    /// chain, its root qdiscs and packet-fault emulator, and, through the records kept on
    /// the nodes ([`node_state`]), the processes it paused or killed, the clocks and
    /// time-sync services it changed and the lazy filesystems it mounted; then any lazy
    /// filesystem still mounted. Says what it found.
    pub fn sweep(&self) -> Sweep {
        let nodes = self.cluster.nodes();
        let (found, mut errors) = each_retrying(self.cluster, &nodes, |n| {
            let out = root_script(self.cluster, n, "sweep", &sweep_script())?;
            Ok(out
                .stdout_text()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect::<Vec<String>>())
        });
        let mut sweep = Sweep {
            found: found.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
            errors: BTreeMap::new(),
        };
        let (records, read_errors) = node_state::read(self.cluster, &nodes);
        errors.extend(read_errors);
        for (node, list) in records {
            for (file, undo) in list {
                let result = match undo {
                    Ok(u) => {
                        let errs = u.heal_with(self);
                        if errs.is_empty() {
                            sweep
                                .found
                                .entry(node.clone())
                                .or_default()
                                .push(format!("undid a fault recorded on the node: {u}"));
                            node_state::remove_file(self.cluster, &node, &file)
                                .map_err(|e| e.to_string())
                        } else {
                            Err(errs.into_values().collect::<Vec<_>>().join("; "))
                        }
                    }
                    Err(e) => Err(format!(
                        "unreadable undo record {}/{file}: {e}",
                        node_state::DIR
                    )),
                };
                if let Err(e) = result {
                    let x = errors.entry(node.clone()).or_default();
                    if !x.is_empty() {
                        x.push_str("; ");
                    }
                    x.push_str(&e);
                }
            }
        }
        // Lazy filesystems left without a record (their records' undo ran above, stopping
        // and restarting the database around the unmount).
        let (found, mount_errors) = each_retrying(self.cluster, &nodes, |n| {
            let out = root_script(
                self.cluster,
                n,
                "unmount lazy filesystems",
                &crate::power::sweep_script(),
            )?;
            Ok(out
                .stdout_text()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect::<Vec<String>>())
        });
        for (node, lines) in found.into_iter().filter(|(_, v)| !v.is_empty()) {
            sweep.found.entry(node).or_default().extend(lines);
        }
        for (node, e) in mount_errors {
            let x = errors.entry(node).or_default();
            if !x.is_empty() {
                x.push_str("; ");
            }
            x.push_str(&e);
        }
        sweep.errors = errors;
        sweep
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

#[cfg(test)]
mod tests {
    /// The sweep runs as one script per node: it must at least parse.
    #[test]
    fn the_sweep_script_is_valid_sh() {
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(super::sweep_script())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}
