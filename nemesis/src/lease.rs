//! One controller per cluster: the lease.
//!
//! Two controllers driving one cluster corrupt each other: the second heals the first's live
//! faults as "left by an earlier run" and wipes its database. So whatever changes a cluster
//! (`faultline test`, a one-off `faultline nemesis` fault, `faultline db`) first takes the
//! cluster's lease, and `faultline heal` refuses to heal under a live holder without
//! `--force`.
//!
//! The lease has two halves:
//!
//! - **On this machine**, an exclusive `flock` on a file beside the cluster's fault journal
//!   (`$FAULTLINE_HOME/journal/NAME.lease` for `NAME.jsonl`, so keyed, like the journal, by
//!   the cluster's identity: the journal is bound to it before the lease is taken). The file
//!   holds who has it ([`Holder`]). The kernel drops the lock when its holder exits, however
//!   it exits, so a crashed holder never blocks the next one here.
//! - **On the nodes**, a file [`NODE_FILE`] in the root-owned, 0700 `/run/faultline`, holding
//!   the same [`Holder`], so that a controller on another machine (or with another
//!   `$FAULTLINE_HOME`) sees the cluster is taken. It is created exclusively (`set -C`), so
//!   that of two controllers racing for a node only one gets it. A holder found there is
//!   stale, and replaced, when it ran on this machine and is gone (its PID is dead or a zombie
//!   that its parent has not reaped yet, or that PID's start time differs, or this machine has rebooted since); a holder on another
//!   machine cannot be checked from here and is refused with its name and what to do.
//!
//! Dropping the [`Lease`] releases both halves (a node's file only if it still names this
//! holder).

use crate::journal::Journal;
use clusters::{quote, Cluster, ClusterFile, RemoteCommand};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The lease's file on each node.
pub const NODE_FILE: &str = "/run/faultline/lease";

/// Errors taking a lease.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Someone else holds the cluster.
    #[error("cluster {cluster:?} is in use: {holder}{where_}. One controller at a time: wait for it to finish{advice}")]
    Held {
        /// The cluster's name.
        cluster: String,
        /// Who holds it.
        holder: Box<Holder>,
        /// Where it was found (", on this machine" or ", on node n1").
        where_: String,
        /// What to do if the holder is gone.
        advice: String,
    },
    /// The cluster's journal could not be bound (another cluster's, unreadable).
    #[error(transparent)]
    Journal(#[from] crate::NemesisError),
    /// The lease file could not be used.
    #[error("lease {path}: {message}")]
    Io {
        /// The lease file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The holder's PID.
    pub pid: u32,
    /// That process's start time (clock ticks after boot, `/proc/PID/stat` field 22), so that
    /// a reused PID is not taken for the holder.
    pub start: u64,
    /// The machine it runs on (its host name).
    pub host: String,
    /// That machine's boot id, so that a holder from before a reboot is known to be gone.
    #[serde(default)]
    pub boot_id: String,
    /// What it runs (its command line).
    pub command: String,
    /// Since when (RFC 3339).
    pub since: String,
}

impl Holder {
    /// This process, now.
    pub fn me() -> Holder {
        let pid = std::process::id();
        Holder {
            pid,
            start: start_time(pid).unwrap_or(0),
            host: host_name(),
            boot_id: boot_id(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            since: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        }
    }

    /// Whether this holder is this very process.
    fn is_me(&self, me: &Holder) -> bool {
        self.pid == me.pid && self.start == me.start && self.host == me.host
    }

    /// Whether this holder is known to be gone: it ran on this machine and its process is
    /// dead, or is another process now, or the machine rebooted since. A holder on another
    /// machine is never known to be gone.
    pub fn is_gone(&self) -> bool {
        if self.host != host_name() {
            return false;
        }
        if !self.boot_id.is_empty() && self.boot_id != boot_id() {
            return true;
        }
        live_start_time(self.pid) != Some(self.start)
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "held by pid {} on host {} since {} ({})",
            self.pid, self.host, self.since, self.command
        )
    }
}

/// A cluster's lease, held until dropped.
pub struct Lease {
    file: File,
    path: PathBuf,
    me: Holder,
    /// The cluster whose nodes hold it too, and those nodes.
    nodes: Option<(Cluster, Vec<String>)>,
}

impl Lease {
    /// Where the lease of the cluster `file` describes is kept on this machine: beside its
    /// journal.
    pub fn path(file: &ClusterFile) -> PathBuf {
        Journal::default_path(&file.name).with_extension("lease")
    }

    /// Takes the lease of the cluster `file` describes, on this machine and on every node
    /// that answers (a node that does not is skipped with a warning: the caller's own
    /// connection check names it). Refused ([`LeaseError::Held`]) while anyone else holds
    /// it. The cluster's journal is bound to the cluster first, so that another cluster
    /// with the same name is refused as the journal refuses it.
    pub fn acquire(file: &ClusterFile) -> Result<Lease, LeaseError> {
        Journal::for_cluster(file)?;
        let mut lease = Lease::acquire_local(&Lease::path(file), &file.name)?;
        let cluster = Cluster::new(file.clone(), 1);
        let taken = take_on_nodes(&cluster, &file.nodes, &lease.me, &file.name);
        match taken {
            Ok(nodes) => {
                lease.nodes = Some((cluster, nodes));
                Ok(lease)
            }
            Err((nodes, e)) => {
                release_on_nodes(&cluster, &nodes, &lease.me);
                Err(e)
            }
        }
    }

    /// Takes the lease kept at `path` on this machine only (no node is asked). `cluster`
    /// names the cluster in errors.
    pub fn acquire_local(path: &Path, cluster: &str) -> Result<Lease, LeaseError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io(path, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io(path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file).unwrap_or_else(|| Holder {
                    pid: 0,
                    start: 0,
                    host: host_name(),
                    boot_id: String::new(),
                    command: "(a faultline process that has not written its name yet)".into(),
                    since: "now".into(),
                });
                return Err(LeaseError::Held {
                    cluster: cluster.to_string(),
                    holder: Box::new(holder),
                    where_: format!(" (lease {})", path.display()),
                    advice: String::new(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(path, e)),
        }
        let me = Holder::me();
        let json = serde_json::to_string(&me).map_err(|e| LeaseError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| file.write_all(format!("{json}\n").as_bytes()))
            .and_then(|()| file.sync_data())
            .map_err(|e| io(path, e))?;
        Ok(Lease {
            file,
            path: path.to_path_buf(),
            me,
            nodes: None,
        })
    }

    /// Who holds the lease of the cluster `file` describes now, as seen on this machine
    /// (none when it is free). Takes nothing.
    pub fn holder(file: &ClusterFile) -> Option<Holder> {
        Lease::holder_at(&Lease::path(file))
    }

    /// Who holds the lease kept at `path` now (none when it is free).
    pub fn holder_at(path: &Path) -> Option<Holder> {
        let mut file = File::open(path).ok()?;
        match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                None
            }
            Err(_) => read_holder(&mut file),
        }
    }

    /// Who holds this lease (this process).
    pub fn me(&self) -> &Holder {
        &self.me
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("path", &self.path)
            .field("me", &self.me)
            .finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some((cluster, nodes)) = &self.nodes {
            release_on_nodes(cluster, nodes, &self.me);
        }
        if let Err(e) = self.file.set_len(0) {
            tracing::warn!("clearing the lease {}: {e}", self.path.display());
        }
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// The script that takes the lease on a node: replaces the file if it holds exactly `stale`,
/// then creates it exclusively; prints `taken`, or `held` and the file.
fn take_script(me: &str, stale: Option<&str>) -> String {
    let replace = stale
        .map(|s| {
            format!(
                "if [ \"$(cat {f} 2>/dev/null)\" = {s} ]; then rm -f {f}; fi\n",
                f = NODE_FILE,
                s = quote(s)
            )
        })
        .unwrap_or_default();
    format!(
        "umask 077\nmkdir -p /run/faultline && chmod 700 /run/faultline\n{replace}\
         if (set -C; printf '%s\\n' {me} > {f}) 2>/dev/null; then echo taken; else echo held; cat {f}; fi\n",
        me = quote(me),
        f = NODE_FILE,
    )
}

/// What taking the lease on one node came to.
enum NodeTake {
    /// The node's lease file now names this holder.
    Taken,
    /// The node could not be asked (warned; the caller's connection check names it).
    Skipped,
    /// Someone else holds it (who, when readable).
    Held(Option<Holder>),
}

/// Takes the lease on each of `nodes` that answers. On refusal, the nodes taken so far (to
/// release) and the error.
fn take_on_nodes(
    cluster: &Cluster,
    nodes: &[String],
    me: &Holder,
    name: &str,
) -> Result<Vec<String>, (Vec<String>, LeaseError)> {
    let mine = serde_json::to_string(me).unwrap_or_default();
    let results = cluster.on_nodes(nodes, |n| {
        let run = |stale: Option<&str>| -> Result<Option<String>, String> {
            let out = cluster
                .exec(n, &RemoteCommand::script(take_script(&mine, stale)).sudo())
                .map_err(|e| e.to_string())?;
            if !out.success() {
                return Err(out.stderr_text().trim().to_string());
            }
            let text = out.stdout_text();
            let mut lines = text.lines();
            match lines.next() {
                Some("taken") => Ok(None),
                Some("held") => Ok(Some(lines.collect::<Vec<_>>().join("\n"))),
                other => Err(format!("unexpected answer {other:?}")),
            }
        };
        Ok(match run(None) {
            Ok(None) => NodeTake::Taken,
            Ok(Some(held)) => match serde_json::from_str::<Holder>(held.trim()).ok() {
                Some(h) if h.is_me(me) => NodeTake::Taken,
                Some(h) if h.is_gone() => {
                    tracing::warn!("{n}: replacing the lease of a holder that is gone: {h}");
                    match run(Some(held.trim())) {
                        Ok(None) => NodeTake::Taken,
                        Ok(Some(again)) => {
                            NodeTake::Held(serde_json::from_str::<Holder>(again.trim()).ok())
                        }
                        Err(e) => {
                            tracing::warn!("{n}: cannot take the lease: {e}");
                            NodeTake::Skipped
                        }
                    }
                }
                other => NodeTake::Held(other),
            },
            Err(e) => {
                tracing::warn!("{n}: cannot take the lease: {e}");
                NodeTake::Skipped
            }
        })
    });
    let mut taken = Vec::new();
    let mut refused = None;
    for r in results {
        match r.result {
            Ok(NodeTake::Taken) => taken.push(r.node),
            Ok(NodeTake::Skipped) => {}
            Ok(NodeTake::Held(h)) => {
                refused.get_or_insert((r.node, h));
            }
            Err(e) => tracing::warn!("{}: cannot take the lease: {e}", r.node),
        }
    }
    match refused {
        None => Ok(taken),
        Some((node, holder)) => {
            let holder = holder.unwrap_or_else(|| Holder {
                pid: 0,
                start: 0,
                host: "(unreadable)".into(),
                boot_id: String::new(),
                command: format!("an unreadable {NODE_FILE}"),
                since: "?".into(),
            });
            Err((
                taken,
                LeaseError::Held {
                    cluster: name.to_string(),
                    holder: Box::new(holder),
                    where_: format!(" (found in {NODE_FILE} on node {node})"),
                    advice: format!(
                        ". If that controller is gone (another machine's cannot be checked from here): faultline exec --cluster FILE -- rm -f {NODE_FILE}"
                    ),
                },
            ))
        }
    }
}

/// Removes the lease file on each of `nodes` where it still names `me`.
fn release_on_nodes(cluster: &Cluster, nodes: &[String], me: &Holder) {
    let mine = serde_json::to_string(me).unwrap_or_default();
    let script = format!(
        "if [ \"$(cat {f} 2>/dev/null)\" = {m} ]; then rm -f {f}; fi",
        f = NODE_FILE,
        m = quote(&mine)
    );
    for r in cluster.on_nodes(nodes, |n| {
        cluster.exec(n, &RemoteCommand::script(script.clone()).sudo())
    }) {
        match r.result {
            Ok(o) if o.success() => {}
            Ok(o) => tracing::warn!(
                "{}: releasing the lease: {}",
                r.node,
                o.stderr_text().trim()
            ),
            Err(e) => tracing::warn!("{}: releasing the lease: {e}", r.node),
        }
    }
}

/// The fields of `/proc/PID/stat` after the command name (field 3, the state, first).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(String::from).collect())
}

/// The start time of process `pid` (`/proc/PID/stat` field 22), if it exists.
fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// The start time of process `pid` if it exists and has not exited: a zombie (state `Z`,
/// killed but not yet reaped by its parent, as after `timeout -s KILL faultline ...`) or a
/// dead task (`X`) holds nothing any more.
fn live_start_time(pid: u32) -> Option<u64> {
    let fields = stat_fields(pid)?;
    if matches!(fields.first().map(String::as_str), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn io(path: &Path, e: std::io::Error) -> LeaseError {
    LeaseError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_who_holds_it_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.lease");
        let first = Lease::acquire_local(&path, "c").unwrap();
        let err = Lease::acquire_local(&path, "c").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains(&host_name()), "{msg}");
        assert_eq!(Lease::holder_at(&path).as_ref(), Some(first.me()));
        drop(first);
        assert_eq!(Lease::holder_at(&path), None);
        let again = Lease::acquire_local(&path, "c").unwrap();
        drop(again);
    }

    #[test]
    fn a_holder_is_gone_when_its_pid_is_dead_or_reused_or_the_machine_rebooted() {
        let me = Holder::me();
        assert!(!me.is_gone());
        let reused = Holder {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(reused.is_gone());
        // A PID that cannot exist (above pid_max's ceiling).
        let dead = Holder {
            pid: 4_194_305,
            ..me.clone()
        };
        assert!(dead.is_gone());
        let rebooted = Holder {
            boot_id: "another-boot".into(),
            ..me.clone()
        };
        assert!(rebooted.is_gone());
        let elsewhere = Holder {
            host: format!("{}-elsewhere", me.host),
            pid: 4_194_305,
            ..me.clone()
        };
        assert!(
            !elsewhere.is_gone(),
            "another machine's holder cannot be checked"
        );
    }

    /// A controller killed with SIGKILL whose parent has not reaped it yet (a zombie) kept
    /// the cluster: its PID and start time were still there, so heal was refused.
    #[test]
    fn an_unreaped_zombie_holder_is_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        let holder = Holder {
            pid,
            start: start_time(pid).unwrap(),
            ..Holder::me()
        };
        assert!(!holder.is_gone(), "a running holder holds");
        child.kill().unwrap();
        // Not reaped: wait until the kernel shows it as a zombie.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stat_fields(pid).and_then(|f| f.first().cloned()).as_deref() != Some("Z") {
            assert!(std::time::Instant::now() < deadline, "no zombie");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(
            start_time(pid),
            Some(holder.start),
            "the zombie keeps its PID"
        );
        assert!(holder.is_gone(), "a zombie holds nothing");
        child.wait().unwrap();
    }

    #[test]
    fn the_node_script_quotes_the_holder() {
        let s = take_script("{\"command\":\"a'b\"}", Some("old'one"));
        assert!(s.contains("'{\"command\":\"a'\\''b\"}'"), "{s}");
        assert!(s.contains("set -C"), "{s}");
    }
}
