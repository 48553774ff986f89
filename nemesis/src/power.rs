//! Power faults (issue 25): the database loses power on some nodes. Its data directory is
//! faultline's lazy filesystem ([`crate::lazyfs`]), mounted over itself (the filesystem opens
//! the directory before it mounts, so the backing files are the directory's own, and an
//! unmount leaves exactly what was durable in place). A power fault kills the database with
//! SIGKILL (through its [`ProcessHooks`](crate::ProcessHooks), as `kill` does), waits until its processes are
//! gone, and tells the filesystem to drop everything not fsynced (`lose-unfsynced`, or
//! `torn`: a random part of it); the database stays down until the heal starts it again.
//!
//! One kind, `power` ([`PowerSpec`], [`PowerFault`], undone by [`PowerOn`]), and one more
//! undo, [`Unmount`], which is not a fault's: it is recorded on the nodes ([`crate::node_state`])
//! while a database runs on the lazy filesystem ([`mount`] with [`record`]), so that
//! `faultline heal` after a controller died leaves nothing mounted (heal's sweep undoes it:
//! stops the database if it runs, unmounts, which makes everything durable, and starts it
//! again on its plain directory). The session that mounted it unmounts it and removes the
//! record ([`unmount`], [`forget`]).

use crate::fault::{Apply, Heal, NodeErrors, Package, Spec, Targets};
use crate::lazyfs::{self, Command, MountOptions};
use crate::process::{self, DbSource};
use crate::registry::{FaultSpec, Kind};
use crate::remote::{all_ok, each, on_each, on_each_retrying, root_script};
use crate::{helper, node_state, FaultRng, Nemesis, NemesisError, Undo};
use clusters::{quote, Cluster};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the lazy filesystems' control sockets and logs are kept on a node (its `/run`, so
/// that a reboot, which ends the mounts, clears them).
pub const RUN_DIR: &str = "/run/faultline/lazyfs";

/// The name the filesystem mounts with (`findmnt`'s SOURCE).
const FS_NAME: &str = "faultline-lazyfs";

/// The kind `power` (see [`Package`]).
pub struct Power;

impl Package for Power {
    const NAME: &'static str = "power";
    const ABOUT: &'static str =
        "power loss: SIGKILL of the database and loss of what it never fsynced; heal starts it again";
    const COLOR: [u8; 3] = [150, 70, 170];
    const ON_LAZYFS: bool = true;

    fn random(rng: &mut FaultRng) -> FaultSpec {
        FaultSpec::Power(PowerSpec {
            targets: Targets::random(rng),
            mode: PowerMode::LoseUnfsynced,
        })
    }
}

/// What the filesystem drops when power is lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerMode {
    /// Everything not durable (files revert to what was synced, unsynced creates, renames and
    /// unlinks are undone).
    #[default]
    LoseUnfsynced,
    /// A random part of what was not durable is kept (torn writes).
    Torn,
}

impl PowerMode {
    /// The filesystem's command.
    pub fn command(self) -> Command {
        match self {
            PowerMode::LoseUnfsynced => Command::LoseUnfsynced,
            PowerMode::Torn => Command::Torn,
        }
    }

    /// Its name (`lose-unfsynced`, `torn`).
    pub fn name(self) -> &'static str {
        self.command().name()
    }
}

impl std::str::FromStr for PowerMode {
    type Err = String;
    fn from_str(s: &str) -> Result<PowerMode, String> {
        match s {
            "lose-unfsynced" => Ok(PowerMode::LoseUnfsynced),
            "torn" => Ok(PowerMode::Torn),
            _ => Err(format!("unknown power mode {s:?} (lose-unfsynced or torn)")),
        }
    }
}

/// Cut the power of the database on the targets, as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerSpec {
    /// Which nodes.
    pub targets: Targets,
    /// What is lost.
    #[serde(default)]
    pub mode: PowerMode,
}

/// The database killed on `nodes`, and what it never synced dropped from `data_dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerFault {
    /// The database.
    pub db: String,
    /// Affected nodes.
    pub nodes: Vec<String>,
    /// What is lost.
    pub mode: PowerMode,
    /// Its data directory (on the lazy filesystem).
    pub data_dir: String,
}

/// Power back on: where the database is not running, drop what it never synced (so that a
/// fault interrupted between the kill and the drop is finished) and start it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerOn {
    /// The database.
    pub db: String,
    /// The nodes.
    pub nodes: Vec<String>,
    /// What the fault drops.
    pub mode: PowerMode,
    /// Its data directory.
    pub data_dir: String,
    /// How another faultline process opens the database to start it (see [`DbSource`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DbSource>,
}

/// The lazy filesystem over a database's data directory, undone: where it is mounted, stop
/// the database if it runs there, unmount (which makes everything durable first) and start
/// the database again on its plain directory. Recorded on the nodes while a session runs the
/// database on the filesystem; never journaled as a fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmount {
    /// The database.
    pub db: String,
    /// The nodes.
    pub nodes: Vec<String>,
    /// Its data directory, the mount point.
    pub data_dir: String,
    /// How another faultline process opens the database to stop and start it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DbSource>,
}

impl Spec for PowerSpec {
    type Fault = PowerFault;

    fn resolve<R: Rng>(&self, nem: &Nemesis<'_>, rng: &mut R) -> Result<PowerFault, NemesisError> {
        let hooks = nem.target_hooks()?;
        let data_dir = hooks.data_dir().ok_or_else(|| {
            NemesisError::Refused(format!(
                "{} does not say where it keeps its data (no data directory), so it cannot lose power",
                hooks.name()
            ))
        })?;
        let (db, nodes) = process::resolve(nem, &self.targets, rng)?;
        Ok(PowerFault {
            db,
            nodes,
            mode: self.mode,
            data_dir,
        })
    }
}

impl Apply for PowerFault {
    const KIND: Kind = Kind::Power;
    type Undo = PowerOn;
    type Plan = ();

    /// Refuses unless the database runs on every target, on the lazy filesystem (whose mount
    /// installed the node helper that talks to it).
    fn plan(&self, nem: &Nemesis<'_>) -> Result<(PowerOn, ()), NemesisError> {
        process::running_pids(nem, &self.db, &self.nodes)?;
        let (mounted, errors) = each(nem.cluster(), &self.nodes, |n| {
            is_mounted(nem.cluster(), n, &self.data_dir)
        });
        all_ok(errors)?;
        let off: Vec<&str> = mounted
            .iter()
            .filter(|(_, m)| !**m)
            .map(|(n, _)| n.as_str())
            .collect();
        if !off.is_empty() {
            return Err(NemesisError::Refused(format!(
                "{} of {} is not on faultline's lazy filesystem on {}: power faults need the database started on it (`faultline db start --lazyfs`, or a test whose --nemesis has power)",
                self.data_dir,
                self.db,
                off.join(", ")
            )));
        }
        // The node helper that talks to the filesystem is the one that mounted it.
        let undo = PowerOn {
            db: self.db.clone(),
            nodes: self.nodes.clone(),
            mode: self.mode,
            data_dir: self.data_dir.clone(),
            source: nem.hooks_for(&self.db)?.source(),
        };
        Ok((undo, ()))
    }

    /// Kills the processes running now, waits until they are gone, and drops what they
    /// never synced.
    fn apply(
        &self,
        nem: &Nemesis<'_>,
        _undo: &PowerOn,
        _plan: (),
        _id: u64,
    ) -> Result<NodeErrors, NemesisError> {
        let hooks = nem.hooks_for(&self.db)?;
        let cluster = nem.cluster();
        Ok(on_each(cluster, &self.nodes, |n| {
            let pids = hooks.pids(cluster, n)?;
            let out = root_script(
                cluster,
                n,
                "power off",
                &format!(
                    "{}\n{}\n",
                    kill_and_wait_script(&pids),
                    ctl(&self.data_dir, Command::Status),
                ),
            )?;
            // The drop on its own, timed from here (a round trip to the node included), so
            // that the log says how long losing what was never synced took.
            let started = std::time::Instant::now();
            root_script(
                cluster,
                n,
                "power off (drop what was never synced)",
                &format!("{}\n", ctl(&self.data_dir, self.mode.command())),
            )?;
            let took = started.elapsed();
            let status = out
                .stdout_text()
                .lines()
                .next()
                .and_then(|l| serde_json::from_str::<lazyfs::Status>(l).ok());
            match status {
                Some(s) => tracing::info!(
                    node = n,
                    "power off: {} dropped in {:.1} ms ({} files, {} bytes and {} namespace changes were not durable)",
                    self.mode.name(),
                    took.as_secs_f64() * 1000.0,
                    s.pending_files,
                    s.pending_bytes,
                    s.pending_ops
                ),
                None => tracing::info!(
                    node = n,
                    "power off: {} dropped in {:.1} ms",
                    self.mode.name(),
                    took.as_secs_f64() * 1000.0
                ),
            }
            Ok(())
        }))
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }
}

impl Heal for PowerOn {
    fn heal(&self, nem: &Nemesis<'_>) -> NodeErrors {
        let hooks = match nem.hooks_for(&self.db) {
            Ok(h) => h,
            Err(e) => {
                return self
                    .nodes
                    .iter()
                    .map(|n| (n.clone(), e.to_string()))
                    .collect()
            }
        };
        let cluster = nem.cluster();
        on_each_retrying(cluster, &self.nodes, |n| {
            if !hooks.pids(cluster, n)?.is_empty() {
                return Ok(());
            }
            // A fault interrupted before its drop is finished; after it, nothing is pending.
            let finish = format!(
                "if {}; then {} >/dev/null; fi",
                mounted_test(&self.data_dir),
                ctl(&self.data_dir, self.mode.command())
            );
            root_script(cluster, n, "power on (drop what was never synced)", &finish)?;
            hooks.start(cluster, n)
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

    fn on_node(&self, node: &str) -> Option<PowerOn> {
        Some(PowerOn {
            nodes: vec![node.to_string()],
            ..self.clone()
        })
    }
}

impl Heal for Unmount {
    fn heal(&self, nem: &Nemesis<'_>) -> NodeErrors {
        // Without the database's hooks, a mount nothing holds is still removed.
        let hooks = nem.hooks_for(&self.db).ok();
        let cluster = nem.cluster();
        on_each_retrying(cluster, &self.nodes, |n| {
            if !is_mounted(cluster, n, &self.data_dir)? {
                return Ok(());
            }
            let pids = match hooks {
                Some(h) => h.pids(cluster, n)?,
                None => Vec::new(),
            };
            if !pids.is_empty() {
                root_script(
                    cluster,
                    n,
                    "stop the database on the lazy filesystem",
                    &kill_and_wait_script(&pids),
                )?;
            }
            unmount(cluster, n, &self.data_dir)?;
            match hooks {
                Some(h) if !pids.is_empty() => h.start(cluster, n),
                _ => Ok(()),
            }
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

    fn on_node(&self, node: &str) -> Option<Unmount> {
        Some(Unmount {
            nodes: vec![node.to_string()],
            ..self.clone()
        })
    }
}

impl fmt::Display for PowerFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "power off {} on {} ({} in {})",
            self.db,
            self.nodes.join(","),
            self.mode.name(),
            self.data_dir
        )
    }
}

impl fmt::Display for PowerOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "power on: start {} where it is not running on {}",
            self.db,
            self.nodes.join(",")
        )
    }
}

impl fmt::Display for Unmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unmount the lazy filesystem of {} from {} on {}",
            self.db,
            self.data_dir,
            self.nodes.join(",")
        )
    }
}

/// A short name for `data_dir` on a node: the first 8 bytes of its SHA-256, in hex.
fn tag(data_dir: &str) -> String {
    Sha256::digest(data_dir.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The control socket of the lazy filesystem over `data_dir` on a node.
pub fn control_socket(data_dir: &str) -> PathBuf {
    PathBuf::from(format!("{RUN_DIR}/{}.sock", tag(data_dir)))
}

/// The log of the mount over `data_dir` on a node.
pub fn mount_log(data_dir: &str) -> PathBuf {
    PathBuf::from(format!("{RUN_DIR}/{}.log", tag(data_dir)))
}

/// A shell test that succeeds when faultline's lazy filesystem is mounted on `data_dir`.
pub(crate) fn mounted_test(data_dir: &str) -> String {
    format!(
        "findmnt -rn -M {} -o SOURCE 2>/dev/null | grep -qx {FS_NAME}",
        quote(data_dir)
    )
}

/// The node helper's command `command` to the filesystem over `data_dir`.
pub(crate) fn ctl(data_dir: &str, command: Command) -> String {
    lazyfs::ctl_command(&control_socket(data_dir), &command).render()
}

/// SIGKILL of `pids` (never the shell itself, PID 0 or 1), then a wait of at most 5 s until
/// each is gone or a zombie: a process still in a system call could write after the drop.
pub(crate) fn kill_and_wait_script(pids: &[u32]) -> String {
    let list: Vec<String> = pids
        .iter()
        .filter(|p| **p > 1)
        .map(u32::to_string)
        .collect();
    if list.is_empty() {
        return ":".into();
    }
    let list = list.join(" ");
    format!(
        "for p in {list}; do [ \"$p\" != \"$$\" ] && kill -KILL \"$p\" 2>/dev/null; done\n\
         alive=\n\
         for _ in $(seq 100); do\n\
           alive=\n\
           for p in {list}; do\n\
             st=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -c1)\n\
             [ -n \"$st\" ] && [ \"$st\" != Z ] && alive=\"$alive $p\"\n\
           done\n\
           [ -z \"$alive\" ] && break\n\
           sleep 0.05\n\
         done\n\
         [ -z \"$alive\" ] || {{ echo \"processes$alive still run 5 s after SIGKILL\" >&2; exit 1; }}"
    )
}

/// Whether faultline's lazy filesystem is mounted on `data_dir` on `node`.
pub fn is_mounted(cluster: &Cluster, node: &str, data_dir: &str) -> Result<bool, NemesisError> {
    let out = root_script(
        cluster,
        node,
        "is the lazy filesystem mounted",
        &format!(
            "if {}; then echo yes; else echo no; fi",
            mounted_test(data_dir)
        ),
    )?;
    Ok(out.stdout_text().trim() == "yes")
}

/// Mounts faultline's lazy filesystem over `data_dir` on `node` (over the directory itself,
/// made if missing), unless it is mounted already; `seed` draws torn writes. The node helper
/// must be installed ([`helper::install`]) and fuse3 present.
pub fn mount(cluster: &Cluster, node: &str, data_dir: &str, seed: u64) -> Result<(), NemesisError> {
    let opts = MountOptions {
        backing: data_dir.into(),
        mount: data_dir.into(),
        control: control_socket(data_dir),
        seed,
    };
    let script = format!(
        "if {}; then exit 0; fi\nmkdir -p {RUN_DIR}\n{}",
        mounted_test(data_dir),
        lazyfs::mount_script(&opts, &mount_log(data_dir))
    );
    root_script(cluster, node, "mount the lazy filesystem", &script).map(|_| ())
}

/// Makes everything on the filesystem over `data_dir` durable (when it is mounted).
pub fn checkpoint(cluster: &Cluster, node: &str, data_dir: &str) -> Result<(), NemesisError> {
    let script = format!(
        "if {}; then {} >/dev/null; fi",
        mounted_test(data_dir),
        ctl(data_dir, Command::Checkpoint)
    );
    root_script(cluster, node, "checkpoint the lazy filesystem", &script).map(|_| ())
}

/// Unmounts the filesystem over `data_dir` on `node`, which makes everything durable first,
/// so that the directory holds what the database wrote; true when it was mounted. The
/// database must be stopped: it is retried for 10 s while something holds the mount (a
/// killed process still exiting). A filesystem whose process died is unmounted from outside.
pub fn unmount(cluster: &Cluster, node: &str, data_dir: &str) -> Result<bool, NemesisError> {
    let test = mounted_test(data_dir);
    let dir = quote(data_dir);
    let script = format!(
        "{test} || exit 0\n\
         err=\n\
         for _ in $(seq 100); do\n\
           err=$({ctl} 2>&1 >/dev/null) || err=\"$err; $(umount {dir} 2>&1)\"\n\
           {test} || {{ echo unmounted; exit 0; }}\n\
           sleep 0.1\n\
         done\n\
         echo \"{data_dir_text} is still mounted after 10 s (is the database stopped?): $err\" >&2\n\
         exit 1\n",
        ctl = ctl(data_dir, Command::Unmount),
        data_dir_text = data_dir.replace(['"', '\\', '$', '`'], "_"),
    );
    let out = root_script(cluster, node, "unmount the lazy filesystem", &script)?;
    Ok(out.stdout_text().trim() == "unmounted")
}

/// Records `mount` on its nodes ([`node_state`]) before the filesystem is mounted, so that
/// heal's sweep unmounts it if the session that mounts it never does. Returns the nodes
/// where it failed.
pub fn record(cluster: &Cluster, mount: &Unmount) -> NodeErrors {
    node_state::write(cluster, &node_state::records_of(&Undo::from(mount.clone())))
}

/// Removes the records of `mount` from its nodes, once it is unmounted.
pub fn forget(cluster: &Cluster, mount: &Unmount) -> NodeErrors {
    node_state::remove(cluster, &node_state::records_of(&Undo::from(mount.clone())))
}

/// Installs the node helper (a prepared copy of `helper`) where it differs; see
/// [`helper::install`].
pub fn install_helper(cluster: &Cluster, nodes: &[String], helper: &Path) -> NodeErrors {
    helper::install(cluster, nodes, helper)
}

/// The script of heal's sweep: unmounts every faultline lazy filesystem still mounted on a
/// node (after the records were undone, so these have no record: nothing to restart),
/// printing what it unmounted; one that something holds is an error naming it.
pub fn sweep_script() -> String {
    format!(
        "s=0\n\
         for t in $(findmnt -rn -o TARGET,SOURCE 2>/dev/null | awk '$2 == \"{FS_NAME}\" {{ print $1 }}'); do\n\
           if umount \"$t\" 2>/dev/null; then echo \"unmounted faultline's lazy filesystem from $t\"; \
         else echo \"$t: faultline's lazy filesystem is busy (stop what uses it, then heal again)\" >&2; s=1; fi\n\
         done\n\
         exit $s\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_valid_sh_and_quote_the_directory() {
        let dir = "/var/lib/db dir; rm -rf /";
        for s in [
            kill_and_wait_script(&[12, 1, 0, 40]),
            kill_and_wait_script(&[]),
            sweep_script(),
            format!("if {}; then :; fi", mounted_test(dir)),
            ctl(dir, Command::LoseUnfsynced),
        ] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", &s])
                .output()
                .unwrap();
            assert!(out.status.success(), "{s}: {out:?}");
        }
        assert!(mounted_test(dir).contains("'/var/lib/db dir; rm -rf /'"));
        assert!(!kill_and_wait_script(&[12, 1, 0]).contains(" 1 "));
        assert_eq!(control_socket(dir), control_socket(dir));
        assert_ne!(control_socket(dir), control_socket("/var/lib/other"));
        assert!(control_socket(dir).as_os_str().len() < 100, "fits sun_path");
    }

    #[test]
    fn a_database_without_a_data_directory_refuses_power_saying_why() {
        let (_dir, cluster, journal) = crate::test_support::one_node();
        let nem = Nemesis::new(&cluster, journal)
            .with_hooks(std::sync::Arc::new(crate::test_support::NoDataDir));
        let spec: FaultSpec = PowerSpec {
            targets: Targets::All,
            mode: PowerMode::LoseUnfsynced,
        }
        .into();
        // Refused before any node is asked anything.
        match nem.resolve(&spec, &mut crate::seeded(1)) {
            Err(NemesisError::Refused(why)) => {
                assert!(
                    why.contains("toy does not say where it keeps its data"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn modes_parse_and_serialize_by_name() {
        for m in [PowerMode::LoseUnfsynced, PowerMode::Torn] {
            assert_eq!(m.name().parse::<PowerMode>(), Ok(m));
            assert_eq!(
                serde_json::to_value(m).unwrap(),
                serde_json::Value::from(m.name())
            );
        }
        assert!("drop".parse::<PowerMode>().is_err());
        let spec: PowerSpec = serde_json::from_str(r#"{"targets":"all"}"#).unwrap();
        assert_eq!(spec.mode, PowerMode::LoseUnfsynced);
    }
}
