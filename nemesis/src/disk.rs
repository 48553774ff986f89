//! Disk faults (issue 25): `disk-full`, `disk-error` and `disk-slow`, set on the lazy
//! filesystem ([`crate::lazyfs`], see [`crate::lazyfs::disk`] for what each does) over the
//! database's data directory, the mount that power faults use ([`crate::power`]).
//!
//! Targets resolve as kill's (the nodes where the database runs); a database without a data
//! directory refuses them at resolve, and planning refuses unless every target's directory is
//! on the lazy filesystem. Apply sends the fault to each target's filesystem through
//! `faultline node lazyfs ctl`; the undo, [`DiskClear`], clears that kind again where the
//! filesystem is still mounted (a mount that ended took its faults with it) and starts the
//! database where it is not running: a database that died of a full disk or of I/O errors is
//! started again once the disk is whole, as an operator would. Nothing is recorded on the
//! nodes: heal's sweep unmounts every lazy filesystem, which ends its faults.

use crate::fault::{Apply, Heal, NodeErrors, Package, Spec, Targets};
use crate::lazyfs::{Command, DiskFault, DiskKind, ErrorFault, FileSet, SlowFault};
use crate::power::{ctl, is_mounted, kill_and_wait_script, mounted_test};
use crate::process::{self, DbSource};
use crate::registry::{FaultSpec, Kind};
use crate::remote::{all_ok, each, on_each, on_each_retrying, root_script};
use crate::{FaultRng, Nemesis, NemesisError};
use rand::seq::IndexedRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The kind `disk-full` (see [`Package`]).
pub struct DiskFull;

/// The kind `disk-error` (see [`Package`]).
pub struct DiskError;

/// The kind `disk-slow` (see [`Package`]).
pub struct DiskSlow;

impl Package for DiskFull {
    const NAME: &'static str = "disk-full";
    const ABOUT: &'static str =
        "no space left on the database's disk: writes past a file's end and new files fail with ENOSPC";
    const COLOR: [u8; 3] = [120, 90, 40];
    const ON_LAZYFS: bool = true;

    fn random(rng: &mut FaultRng) -> FaultSpec {
        FaultSpec::DiskFull(DiskFullSpec {
            targets: Targets::random(rng),
        })
    }
}

impl Package for DiskError {
    const NAME: &'static str = "disk-error";
    const ABOUT: &'static str =
        "I/O errors (EIO) on reads and writes of the database's files, with a probability";
    const COLOR: [u8; 3] = [200, 60, 120];
    const ON_LAZYFS: bool = true;

    fn random(rng: &mut FaultRng) -> FaultSpec {
        let probability = [0.01, 0.1, 0.5].choose(rng).copied().unwrap_or(0.1);
        FaultSpec::DiskError(DiskErrorSpec {
            targets: Targets::random(rng),
            probability,
            reads: true,
            writes: true,
            files: FileSet::All,
        })
    }
}

impl Package for DiskSlow {
    const NAME: &'static str = "disk-slow";
    const ABOUT: &'static str = "a slow disk: every fsync and write of the database waits a delay";
    const COLOR: [u8; 3] = [90, 140, 200];
    const ON_LAZYFS: bool = true;

    fn random(rng: &mut FaultRng) -> FaultSpec {
        let delay_ms = [10, 100, 500].choose(rng).copied().unwrap_or(100);
        FaultSpec::DiskSlow(DiskSlowSpec {
            targets: Targets::random(rng),
            delay_ms,
            fsync: true,
            writes: true,
        })
    }
}

/// Fill the disk of the database on the targets, as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskFullSpec {
    /// Which nodes.
    pub targets: Targets,
}

/// I/O errors on the targets, as asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskErrorSpec {
    /// Which nodes.
    pub targets: Targets,
    /// The probability (0 to 1) that an operation of a selected file fails.
    pub probability: f64,
    /// Reads fail.
    pub reads: bool,
    /// Writes and fsyncs fail.
    pub writes: bool,
    /// Which files.
    pub files: FileSet,
}

/// A slow disk on the targets, as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSlowSpec {
    /// Which nodes.
    pub targets: Targets,
    /// The delay, in milliseconds.
    pub delay_ms: u64,
    /// On fsyncs.
    pub fsync: bool,
    /// On writes.
    pub writes: bool,
}

/// The disk of `db` full on `nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskFullFault {
    /// The database.
    pub db: String,
    /// Affected nodes.
    pub nodes: Vec<String>,
    /// Its data directory (on the lazy filesystem).
    pub data_dir: String,
}

/// I/O errors in the data directory of `db` on `nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskErrorFault {
    /// The database.
    pub db: String,
    /// Affected nodes.
    pub nodes: Vec<String>,
    /// Its data directory (on the lazy filesystem).
    pub data_dir: String,
    /// What fails, with the seed of the draws.
    #[serde(flatten)]
    pub error: ErrorFault,
}

/// A slow disk under the data directory of `db` on `nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSlowFault {
    /// The database.
    pub db: String,
    /// Affected nodes.
    pub nodes: Vec<String>,
    /// Its data directory (on the lazy filesystem).
    pub data_dir: String,
    /// The delay and what it slows.
    #[serde(flatten)]
    pub slow: SlowFault,
}

/// A disk fault undone: where the lazy filesystem is still mounted, clear the fault's kind;
/// then, where the database died of the fault (wholly, or some of the processes it ran when
/// the fault was planned), stop what is left of it and start it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskClear {
    /// Which fault.
    pub kind: DiskKind,
    /// The database.
    pub db: String,
    /// The nodes.
    pub nodes: Vec<String>,
    /// Its data directory.
    pub data_dir: String,
    /// The database's processes on each node when the fault was planned.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pids: BTreeMap<String, Vec<u32>>,
    /// How another faultline process opens the database to start it (see [`DbSource`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DbSource>,
}

/// The database, its nodes among `targets` and its data directory; refused when it does not
/// say where its data is.
fn resolve_targets<R: Rng>(
    nem: &Nemesis<'_>,
    targets: &Targets,
    rng: &mut R,
    kind: &str,
) -> Result<(String, Vec<String>, String), NemesisError> {
    let hooks = nem.target_hooks()?;
    let data_dir = hooks.data_dir().ok_or_else(|| {
        NemesisError::Refused(format!(
            "{} does not say where it keeps its data (no data directory), so it cannot get {kind}",
            hooks.name()
        ))
    })?;
    let (db, nodes) = process::resolve(nem, targets, rng)?;
    Ok((db, nodes, data_dir))
}

impl Spec for DiskFullSpec {
    type Fault = DiskFullFault;

    fn resolve<R: Rng>(
        &self,
        nem: &Nemesis<'_>,
        rng: &mut R,
    ) -> Result<DiskFullFault, NemesisError> {
        let (db, nodes, data_dir) = resolve_targets(nem, &self.targets, rng, DiskFull::NAME)?;
        Ok(DiskFullFault {
            db,
            nodes,
            data_dir,
        })
    }
}

impl Spec for DiskErrorSpec {
    type Fault = DiskErrorFault;

    /// Draws the seed of the filesystem's draws too, so that the journal says it.
    fn resolve<R: Rng>(
        &self,
        nem: &Nemesis<'_>,
        rng: &mut R,
    ) -> Result<DiskErrorFault, NemesisError> {
        let error = ErrorFault {
            probability: self.probability,
            reads: self.reads,
            writes: self.writes,
            files: self.files.clone(),
            seed: rng.random(),
        };
        DiskFault::Error(error.clone())
            .check()
            .map_err(NemesisError::BadFault)?;
        let (db, nodes, data_dir) = resolve_targets(nem, &self.targets, rng, DiskError::NAME)?;
        Ok(DiskErrorFault {
            db,
            nodes,
            data_dir,
            error,
        })
    }
}

impl Spec for DiskSlowSpec {
    type Fault = DiskSlowFault;

    fn resolve<R: Rng>(
        &self,
        nem: &Nemesis<'_>,
        rng: &mut R,
    ) -> Result<DiskSlowFault, NemesisError> {
        let slow = SlowFault {
            delay_ms: self.delay_ms,
            fsync: self.fsync,
            writes: self.writes,
        };
        DiskFault::Slow(slow)
            .check()
            .map_err(NemesisError::BadFault)?;
        let (db, nodes, data_dir) = resolve_targets(nem, &self.targets, rng, DiskSlow::NAME)?;
        Ok(DiskSlowFault {
            db,
            nodes,
            data_dir,
            slow,
        })
    }
}

/// The undo of a disk fault `kind` on `nodes`, refused unless `data_dir` is on the lazy
/// filesystem on every one of them.
fn plan(
    nem: &Nemesis<'_>,
    kind: DiskKind,
    db: &str,
    nodes: &[String],
    data_dir: &str,
) -> Result<DiskClear, NemesisError> {
    let (mounted, errors) = each(nem.cluster(), nodes, |n| {
        is_mounted(nem.cluster(), n, data_dir)
    });
    all_ok(errors)?;
    let off: Vec<&str> = mounted
        .iter()
        .filter(|(_, m)| !**m)
        .map(|(n, _)| n.as_str())
        .collect();
    if !off.is_empty() {
        return Err(NemesisError::Refused(format!(
            "{data_dir} of {db} is not on faultline's lazy filesystem on {}: {} needs the database started on it (`faultline db start --lazyfs`, or a test whose --nemesis has {})",
            off.join(", "),
            kind.name(),
            kind.name()
        )));
    }
    Ok(DiskClear {
        kind,
        db: db.to_string(),
        nodes: nodes.to_vec(),
        data_dir: data_dir.to_string(),
        pids: process::running_pids(nem, db, nodes)?,
        source: nem.hooks_for(db)?.source(),
    })
}

/// Sends `fault` to the filesystem over `data_dir` on each of `nodes`.
fn set(nem: &Nemesis<'_>, nodes: &[String], data_dir: &str, fault: DiskFault) -> NodeErrors {
    let script = ctl(data_dir, Command::Disk(fault.clone()));
    on_each(nem.cluster(), nodes, |n| {
        root_script(nem.cluster(), n, fault.kind().name(), &script).map(|_| ())
    })
}

impl Apply for DiskFullFault {
    const KIND: Kind = Kind::DiskFull;
    type Undo = DiskClear;
    type Plan = ();

    fn plan(&self, nem: &Nemesis<'_>) -> Result<(DiskClear, ()), NemesisError> {
        let undo = plan(
            nem,
            DiskKind::DiskFull,
            &self.db,
            &self.nodes,
            &self.data_dir,
        )?;
        Ok((undo, ()))
    }

    fn apply(
        &self,
        nem: &Nemesis<'_>,
        _undo: &DiskClear,
        _plan: (),
        _id: u64,
    ) -> Result<NodeErrors, NemesisError> {
        Ok(set(nem, &self.nodes, &self.data_dir, DiskFault::Full))
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }
}

impl Apply for DiskErrorFault {
    const KIND: Kind = Kind::DiskError;
    type Undo = DiskClear;
    type Plan = ();

    fn plan(&self, nem: &Nemesis<'_>) -> Result<(DiskClear, ()), NemesisError> {
        let undo = plan(
            nem,
            DiskKind::DiskError,
            &self.db,
            &self.nodes,
            &self.data_dir,
        )?;
        Ok((undo, ()))
    }

    fn apply(
        &self,
        nem: &Nemesis<'_>,
        _undo: &DiskClear,
        _plan: (),
        _id: u64,
    ) -> Result<NodeErrors, NemesisError> {
        let fault = DiskFault::Error(self.error.clone());
        Ok(set(nem, &self.nodes, &self.data_dir, fault))
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }
}

impl Apply for DiskSlowFault {
    const KIND: Kind = Kind::DiskSlow;
    type Undo = DiskClear;
    type Plan = ();

    fn plan(&self, nem: &Nemesis<'_>) -> Result<(DiskClear, ()), NemesisError> {
        let undo = plan(
            nem,
            DiskKind::DiskSlow,
            &self.db,
            &self.nodes,
            &self.data_dir,
        )?;
        Ok((undo, ()))
    }

    fn apply(
        &self,
        nem: &Nemesis<'_>,
        _undo: &DiskClear,
        _plan: (),
        _id: u64,
    ) -> Result<NodeErrors, NemesisError> {
        Ok(set(
            nem,
            &self.nodes,
            &self.data_dir,
            DiskFault::Slow(self.slow),
        ))
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }
}

impl Heal for DiskClear {
    /// Clears the fault where the filesystem is mounted, then restarts the database where
    /// it died of it (when its hooks are at hand; without them the clear still counts).
    fn heal(&self, nem: &Nemesis<'_>) -> NodeErrors {
        let hooks = nem.hooks_for(&self.db).ok();
        let cluster = nem.cluster();
        let clear = format!(
            "if {}; then {} >/dev/null; fi",
            mounted_test(&self.data_dir),
            ctl(&self.data_dir, Command::Clear(Some(self.kind)))
        );
        on_each_retrying(cluster, &self.nodes, |n| {
            root_script(cluster, n, "clear the disk fault", &clear)?;
            let Some(h) = hooks else { return Ok(()) };
            let now = h.pids(cluster, n)?;
            let before = self.pids.get(n).map(Vec::as_slice).unwrap_or_default();
            if !now.is_empty() && before.iter().all(|p| now.contains(p)) {
                return Ok(());
            }
            tracing::info!(
                node = n,
                "{} died of {} (processes {before:?} then, {now:?} now): restarting it",
                self.db,
                self.kind.name()
            );
            root_script(
                cluster,
                n,
                "stop what is left of the database",
                &kill_and_wait_script(&now),
            )?;
            h.start(cluster, n)
        })
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
}

impl fmt::Display for DiskFullFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "disk full for {} on {} ({})",
            self.db,
            self.nodes.join(","),
            self.data_dir
        )
    }
}

impl fmt::Display for DiskErrorFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.error;
        let ops = match (e.reads, e.writes) {
            (true, true) => "reads and writes",
            (true, false) => "reads",
            _ => "writes",
        };
        write!(
            f,
            "disk errors for {} on {} (EIO on {:.0}% of {ops} of {} in {})",
            self.db,
            self.nodes.join(","),
            e.probability * 100.0,
            e.files,
            self.data_dir
        )
    }
}

impl fmt::Display for DiskSlowFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.slow;
        let ops = match (s.fsync, s.writes) {
            (true, true) => "fsyncs and writes",
            (true, false) => "fsyncs",
            _ => "writes",
        };
        write!(
            f,
            "slow disk for {} on {} (+{} ms on {ops} in {})",
            self.db,
            self.nodes.join(","),
            s.delay_ms,
            self.data_dir
        )
    }
}

impl fmt::Display for DiskClear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clear {} on {} (and restart {} where it died)",
            self.kind.name(),
            self.nodes.join(","),
            self.db
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_without_a_data_directory_refuses_disk_faults_saying_why() {
        let (_dir, cluster, journal) = crate::test_support::one_node();
        let nem = Nemesis::new(&cluster, journal)
            .with_hooks(std::sync::Arc::new(crate::test_support::NoDataDir));
        let mut rng = crate::seeded(1);
        for kind in [Kind::DiskFull, Kind::DiskError, Kind::DiskSlow] {
            let spec = kind.random_spec(&mut rng);
            // Refused before any node is asked anything.
            match nem.resolve(&spec, &mut crate::seeded(1)) {
                Err(NemesisError::Refused(why)) => assert!(
                    why.contains("toy does not say where it keeps its data")
                        && why.contains(kind.name()),
                    "{why}"
                ),
                other => panic!("{kind}: {other:?}"),
            }
        }
    }

    #[test]
    fn schedules_draw_only_disk_faults_the_filesystem_takes() {
        let mut rng = crate::seeded(5);
        for _ in 0..200 {
            match Kind::DiskError.random_spec(&mut rng) {
                FaultSpec::DiskError(s) => {
                    let e = ErrorFault {
                        probability: s.probability,
                        reads: s.reads,
                        writes: s.writes,
                        files: s.files,
                        seed: 0,
                    };
                    assert_eq!(DiskFault::Error(e).check(), Ok(()));
                }
                other => panic!("{other:?}"),
            }
            match Kind::DiskSlow.random_spec(&mut rng) {
                FaultSpec::DiskSlow(s) => {
                    assert!(s.delay_ms > 0 && s.fsync && s.writes, "{s:?}");
                }
                other => panic!("{other:?}"),
            }
            assert!(matches!(
                Kind::DiskFull.random_spec(&mut rng),
                FaultSpec::DiskFull(_)
            ));
        }
    }

    #[test]
    fn a_bad_probability_is_refused_before_any_node_is_asked() {
        let (_dir, cluster, journal) = crate::test_support::one_node();
        let nem = Nemesis::new(&cluster, journal)
            .with_hooks(std::sync::Arc::new(crate::test_support::NoDataDir));
        let spec: FaultSpec = DiskErrorSpec {
            targets: Targets::All,
            probability: 1.5,
            reads: true,
            writes: true,
            files: FileSet::All,
        }
        .into();
        match nem.resolve(&spec, &mut crate::seeded(1)) {
            Err(NemesisError::BadFault(why)) => assert!(why.contains("1.5"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
