//! The fault journal (nemesis.jsonl): one JSON object per line, appended and flushed to disk
//! (fsync) before the step it records is taken, under an exclusive file lock so that
//! several faultline processes can share one cluster's journal.
//!
//! A fault's life is `apply` (journaled *before* anything changes on the nodes, with the
//! [`Undo`] that heals it), then `applied` or `apply-failed`, then `healed` once it is undone,
//! or `heal-failed` (it stays pending). Every fault with an `apply` line and no `healed` line
//! may still be applied, and `faultline heal` undoes it.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use nemesis::process::{KillFault, Restart};
//! use nemesis::{Fault, Journal, Undo};
//! let j = Journal::open(&dir.path().join("nemesis.jsonl")).unwrap();
//! let fault = Fault::Kill(KillFault { db: "etcd".into(), nodes: vec!["n1".into()] });
//! let undo = Undo::Restart(Restart { db: "etcd".into(), nodes: vec!["n1".into()], source: None });
//! let id = j.record_apply(&fault, &undo).unwrap();
//! assert_eq!(j.pending().unwrap().len(), 1);
//! j.record_healed(id).unwrap();
//! assert!(j.pending().unwrap().is_empty());
//! ```

use crate::fault::{Fault, Undo};
use crate::NemesisError;
use clusters::ClusterFile;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What a journal line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// About to apply the fault (written before anything changes).
    Apply,
    /// The fault is applied on every node.
    Applied,
    /// Applying failed on some node; the fault may be partly applied.
    ApplyFailed,
    /// The fault is undone.
    Healed,
    /// Undoing failed on some node; the fault stays pending.
    HealFailed,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Wall-clock time, RFC 3339.
    pub time: String,
    /// The fault's id, unique within the journal.
    pub id: u64,
    /// What happened.
    pub event: Event,
    /// The fault (on `apply` lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// How to undo it (on `apply` lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Undo>,
    /// Per-node errors (on `apply-failed` and `heal-failed` lines).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, String>,
    /// The faultline process that wrote the line.
    pub pid: u32,
}

/// A fault that the journal says may still be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// Its id.
    pub id: u64,
    /// When it was applied.
    pub time: String,
    /// The fault.
    pub fault: Fault,
    /// How to undo it.
    pub undo: Undo,
    /// Whether applying finished on every node (else it may be partly applied).
    pub applied: bool,
    /// Errors of the last heal attempt, if it failed.
    pub heal_errors: BTreeMap<String, String>,
}

/// Whose faults a journal holds: a cluster's name and where each of its nodes is. Kept
/// beside the journal ([`Journal::identity_path`]) when a cluster first uses it, so that a
/// second cluster with the same name (and so the same default journal) is refused instead of
/// healing, or forgetting, the first one's faults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    /// The cluster's `name:`.
    pub name: String,
    /// Each node and the address faultline reaches it at (`host:port`, after the
    /// `HostName` and `Port` of the ssh config that the cluster file names).
    pub nodes: BTreeMap<String, String>,
}

impl ClusterIdentity {
    /// The identity of the cluster that `file` describes; connects to nothing. Nodes are
    /// resolved through the ssh config the cluster file names (`ssh.config`, as local and VM
    /// clusters do), never through `~/.ssh/config`, which depends on who runs faultline (a
    /// `sudo faultline heal` must find the journal that `faultline nemesis` wrote).
    pub fn of(file: &ClusterFile) -> ClusterIdentity {
        let nodes = file
            .nodes
            .iter()
            .map(|n| {
                let (host, port) = match &file.ssh.config {
                    Some(_) => {
                        let t = clusters::ssh::Target::resolve(n, &file.ssh);
                        (t.host, t.port)
                    }
                    None => (n.clone(), file.ssh.port.unwrap_or(22)),
                };
                let addr = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                (n.clone(), addr)
            })
            .collect();
        ClusterIdentity {
            name: file.name.clone(),
            nodes,
        }
    }
}

impl fmt::Display for ClusterIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|(n, a)| format!("{n} at {a}"))
            .collect();
        write!(f, "{:?} ({})", self.name, nodes.join(", "))
    }
}

/// An append-only, fsynced, lock-protected fault journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    mirror: Option<PathBuf>,
}

impl Journal {
    /// Opens (creating it and its directory if needed) the journal at `path`.
    pub fn open(path: &Path) -> Result<Journal, NemesisError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| err(path, e))?;
            }
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| err(path, e))?;
        Ok(Journal {
            path: path.to_path_buf(),
            mirror: None,
        })
    }

    /// The default journal of cluster `name`: `$FAULTLINE_HOME/journal/NAME.jsonl` (see
    /// [`clusters::local::state_root`]). Every faultline process that touches the cluster
    /// journals there, so that `faultline heal --cluster FILE` finds everything.
    pub fn default_path(cluster_name: &str) -> PathBuf {
        let safe: String = cluster_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        clusters::local::state_root()
            .join("journal")
            .join(format!("{safe}.jsonl"))
    }

    /// The journal of the cluster `file` describes: its default path
    /// ([`Journal::default_path`]), bound to the cluster ([`Journal::bind`]).
    pub fn for_cluster(file: &ClusterFile) -> Result<Journal, NemesisError> {
        Journal::open(&Journal::default_path(&file.name))?.bind(file)
    }

    /// Where the identity of the cluster this journal belongs to is kept: beside it,
    /// `NAME.cluster.json` for `NAME.jsonl`.
    pub fn identity_path(&self) -> PathBuf {
        self.path.with_extension("cluster.json")
    }

    /// The identity of the cluster this journal belongs to, if one is recorded.
    pub fn identity(&self) -> Result<Option<ClusterIdentity>, NemesisError> {
        read_identity(&self.identity_path())
    }

    /// Binds the journal to the cluster `file` describes: the first cluster to use a journal
    /// (also one written before identities were recorded) is recorded as its owner; another
    /// cluster is refused, with both identities and what to do, because two clusters sharing
    /// one journal heal each other's faults.
    pub fn bind(self, file: &ClusterFile) -> Result<Journal, NemesisError> {
        let mine = ClusterIdentity::of(file);
        let lock = File::open(&self.path).map_err(|e| err(&self.path, e))?;
        lock.lock().map_err(|e| err(&self.path, e))?;
        let result = (|| {
            let id_path = self.identity_path();
            match read_identity(&id_path)? {
                Some(owner) if owner == mine => Ok(()),
                Some(owner) => Err(NemesisError::Refused(format!(
                    "the fault journal {} belongs to cluster {owner}, but this cluster file describes cluster {mine}. Two clusters sharing one journal would heal each other's faults and forget their own. Give this cluster a name of its own (`name:` in its cluster file) or its own `--journal FILE`. If cluster {:?} of the journal is gone: `faultline cluster down --name {}` retires its journal (local clusters); otherwise heal it with its own cluster file, then remove {} and {}",
                    self.path.display(),
                    owner.name,
                    owner.name,
                    self.path.display(),
                    id_path.display()
                ))),
                None => {
                    let json = serde_json::to_string_pretty(&mine).map_err(|e| {
                        NemesisError::Journal {
                            path: id_path.display().to_string(),
                            message: e.to_string(),
                        }
                    })?;
                    let tmp = id_path.with_extension(format!("tmp{}", std::process::id()));
                    std::fs::write(&tmp, json + "\n").map_err(|e| err(&tmp, e))?;
                    std::fs::rename(&tmp, &id_path).map_err(|e| err(&id_path, e))
                }
            }
        })();
        let _ = lock.unlock();
        result.map(|()| self)
    }

    /// Retires the default journal of cluster `identity.name` when its cluster is taken down:
    /// moves it and its identity into `journal/retired/`, so that a new cluster with the same
    /// name starts with an empty journal. A journal that another cluster of that name owns is
    /// left alone. Returns where the journal went, if it was retired.
    pub fn retire(identity: &ClusterIdentity) -> Result<Option<PathBuf>, NemesisError> {
        Journal::retire_at(&Journal::default_path(&identity.name), identity)
    }

    /// [`Journal::retire`] for the journal at `path`.
    fn retire_at(path: &Path, identity: &ClusterIdentity) -> Result<Option<PathBuf>, NemesisError> {
        let path = path.to_path_buf();
        if !path.exists() {
            return Ok(None);
        }
        let j = Journal {
            path: path.clone(),
            mirror: None,
        };
        if j.identity()?.is_some_and(|owner| owner != *identity) {
            return Ok(None);
        }
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("retired"), |d| d.join("retired"));
        std::fs::create_dir_all(&dir).map_err(|e| err(&dir, e))?;
        let stem = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let stamp = humantime::format_rfc3339_millis(SystemTime::now())
            .to_string()
            .replace(':', "");
        let to = dir.join(format!("{stem}-{stamp}.jsonl"));
        std::fs::rename(&path, &to).map_err(|e| err(&path, e))?;
        let id_path = j.identity_path();
        if id_path.exists() {
            let id_to = to.with_extension("cluster.json");
            std::fs::rename(&id_path, &id_to).map_err(|e| err(&id_path, e))?;
        }
        // The database journal of `faultline db` goes with it.
        let db = path.with_extension("db.jsonl");
        if db.exists() {
            let db_to = to.with_extension("db.jsonl");
            std::fs::rename(&db, &db_to).map_err(|e| err(&db, e))?;
        }
        // The cluster's lease file goes too, unless someone holds it.
        let lease = path.with_extension("lease");
        if crate::lease::Lease::holder_at(&lease).is_none() {
            let _ = std::fs::remove_file(&lease);
        }
        Ok(Some(to))
    }

    /// Also appends every line to `mirror` (a test run's own nemesis.jsonl in its store).
    pub fn with_mirror(mut self, mirror: &Path) -> Result<Journal, NemesisError> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(mirror)
            .map_err(|e| err(mirror, e))?;
        self.mirror = Some(mirror.to_path_buf());
        Ok(self)
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Journals that `fault` is about to be applied, with its undo, and returns its new id.
    /// The line is on disk when this returns.
    pub fn record_apply(&self, fault: &Fault, undo: &Undo) -> Result<u64, NemesisError> {
        self.append(|id| JournalEntry {
            time: now(),
            id,
            event: Event::Apply,
            fault: Some(fault.clone()),
            undo: Some(undo.clone()),
            errors: BTreeMap::new(),
            pid: std::process::id(),
        })
    }

    /// Journals that fault `id` is applied everywhere.
    pub fn record_applied(&self, id: u64) -> Result<(), NemesisError> {
        self.record(id, Event::Applied, BTreeMap::new())
    }

    /// Journals that applying fault `id` failed on some nodes.
    pub fn record_apply_failed(
        &self,
        id: u64,
        errors: BTreeMap<String, String>,
    ) -> Result<(), NemesisError> {
        self.record(id, Event::ApplyFailed, errors)
    }

    /// Journals that fault `id` is undone.
    pub fn record_healed(&self, id: u64) -> Result<(), NemesisError> {
        self.record(id, Event::Healed, BTreeMap::new())
    }

    /// Journals that undoing fault `id` failed on some nodes.
    pub fn record_heal_failed(
        &self,
        id: u64,
        errors: BTreeMap<String, String>,
    ) -> Result<(), NemesisError> {
        self.record(id, Event::HealFailed, errors)
    }

    fn record(
        &self,
        id: u64,
        event: Event,
        errors: BTreeMap<String, String>,
    ) -> Result<(), NemesisError> {
        self.append(|_| JournalEntry {
            time: now(),
            id,
            event,
            fault: None,
            undo: None,
            errors: errors.clone(),
            pid: std::process::id(),
        })
        .map(|_| ())
    }

    /// Appends the entry that `make` builds from the next free id, under the file lock, and
    /// syncs it to disk.
    fn append(&self, make: impl Fn(u64) -> JournalEntry) -> Result<u64, NemesisError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| err(&self.path, e))?;
        file.lock().map_err(|e| err(&self.path, e))?;
        let result = (|| {
            file.seek(SeekFrom::Start(0))
                .map_err(|e| err(&self.path, e))?;
            let mut text = Vec::new();
            file.read_to_end(&mut text)
                .map_err(|e| err(&self.path, e))?;
            let (entries, damaged_ids) = parse_entries(&self.path, &text);
            let next = entries
                .iter()
                .map(|e| e.id)
                .chain(damaged_ids)
                .map(|id| id + 1)
                .max()
                .unwrap_or(1);
            let entry = make(next);
            let json = serde_json::to_string(&entry).map_err(|e| NemesisError::Journal {
                path: self.path.display().to_string(),
                message: e.to_string(),
            })?;
            // A line torn by a crash is ended first, so that this one stays whole.
            let sep = if text.is_empty() || text.ends_with(b"\n") {
                ""
            } else {
                "\n"
            };
            let line = format!("{sep}{json}\n");
            write_synced(&mut file, &self.path, &line)?;
            if let Some(m) = &self.mirror {
                let mut mf = OpenOptions::new()
                    .append(true)
                    .open(m)
                    .map_err(|e| err(m, e))?;
                write_synced(&mut mf, m, &format!("{json}\n"))?;
            }
            Ok(entry.id)
        })();
        let _ = file.unlock();
        result
    }

    /// Every entry, in order.
    pub fn entries(&self) -> Result<Vec<JournalEntry>, NemesisError> {
        let file = File::open(&self.path).map_err(|e| err(&self.path, e))?;
        file.lock_shared().map_err(|e| err(&self.path, e))?;
        let r = read_entries(&self.path, &file);
        let _ = file.unlock();
        r
    }

    /// The `healed` line of fault `id` that another process than this one wrote, if any:
    /// the fault was healed from outside (`faultline heal --force` while a test holds the
    /// cluster) at that line's time, and the process that applied it must say so instead of
    /// claiming the fault lasted until its own heal.
    pub fn healed_elsewhere(&self, id: u64) -> Result<Option<JournalEntry>, NemesisError> {
        let me = std::process::id();
        Ok(self
            .entries()?
            .into_iter()
            .find(|e| e.id == id && e.event == Event::Healed && e.pid != me))
    }

    /// Copies `entry`, a line another process wrote into this journal (such as the
    /// [`Journal::healed_elsewhere`] of one of this run's faults), into the mirror, so that
    /// the run's own copy of the journal tells how its faults ended. Without a mirror,
    /// nothing to do.
    pub fn mirror_entry(&self, entry: &JournalEntry) -> Result<(), NemesisError> {
        let Some(m) = &self.mirror else {
            return Ok(());
        };
        let json = serde_json::to_string(entry).map_err(|e| NemesisError::Journal {
            path: m.display().to_string(),
            message: e.to_string(),
        })?;
        let mut mf = OpenOptions::new()
            .append(true)
            .open(m)
            .map_err(|e| err(m, e))?;
        write_synced(&mut mf, m, &format!("{json}\n"))
    }

    /// The faults that may still be applied, oldest first.
    pub fn pending(&self) -> Result<Vec<Pending>, NemesisError> {
        let mut open: BTreeMap<u64, Pending> = BTreeMap::new();
        for e in self.entries()? {
            match e.event {
                Event::Apply => {
                    if let (Some(fault), Some(undo)) = (e.fault, e.undo) {
                        open.insert(
                            e.id,
                            Pending {
                                id: e.id,
                                time: e.time,
                                fault,
                                undo,
                                applied: false,
                                heal_errors: BTreeMap::new(),
                            },
                        );
                    }
                }
                Event::Applied => {
                    if let Some(p) = open.get_mut(&e.id) {
                        p.applied = true;
                    }
                }
                Event::ApplyFailed => {}
                Event::HealFailed => {
                    if let Some(p) = open.get_mut(&e.id) {
                        p.heal_errors = e.errors;
                    }
                }
                Event::Healed => {
                    open.remove(&e.id);
                }
            }
        }
        Ok(open.into_values().collect())
    }
}

fn read_entries(path: &Path, mut file: &File) -> Result<Vec<JournalEntry>, NemesisError> {
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(|e| err(path, e))?;
    Ok(parse_entries(path, &text).0)
}

/// The entries of a journal's text, and the ids named by lines that could not be read.
///
/// A line that is not a journal entry (cut short by a crash mid-write, possibly in the middle
/// of a multi-byte character, or damaged by anything else) is skipped with a warning naming
/// the file and the line: one bad line must not keep heal from undoing the faults that the
/// other lines record (and heal's sweep removes faultline's rules whatever the journal
/// says). The text is read as bytes, line by line, so that invalid UTF-8 damages only its own
/// line. The id such a line names, when one can still be read, is kept so that new faults
/// never reuse it.
fn parse_entries(path: &Path, text: &[u8]) -> (Vec<JournalEntry>, Vec<u64>) {
    let mut out = Vec::new();
    let mut damaged_ids = Vec::new();
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice::<JournalEntry>(line) {
            Ok(e) => out.push(e),
            Err(e) => {
                let what = if std::str::from_utf8(line).is_err() {
                    "not valid UTF-8"
                } else if e.is_eof() {
                    "cut short"
                } else {
                    "not a journal entry"
                };
                if first_warning(path, i + 1) {
                    tracing::warn!(
                        "fault journal {}: skipping line {} ({what}: {e}); a fault it recorded may still be applied, and `faultline heal` sweeps faultline's rules off every node",
                        path.display(),
                        i + 1
                    );
                }
                damaged_ids.extend(salvage_id(&String::from_utf8_lossy(line)));
            }
        }
    }
    (out, damaged_ids)
}

/// Whether this process has not yet warned of damaged line `line` of `path`: a journal read
/// again and again (a run looks for heals from outside while a fault is applied) says so once.
fn first_warning(path: &Path, line: usize) -> bool {
    static WARNED: std::sync::Mutex<BTreeSet<(PathBuf, usize)>> =
        std::sync::Mutex::new(BTreeSet::new());
    WARNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((path.to_path_buf(), line))
}

/// The `"id":N` of a damaged line, if it can still be read.
fn salvage_id(line: &str) -> Option<u64> {
    let rest = &line[line.find("\"id\":")? + 5..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn read_identity(path: &Path) -> Result<Option<ClusterIdentity>, NemesisError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| NemesisError::Journal {
                path: path.display().to_string(),
                message: format!("{e} (the identity of the cluster that owns the journal beside it; remove it to let the next cluster that uses the journal own it)"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(path, e)),
    }
}

fn write_synced(file: &mut File, path: &Path, line: &str) -> Result<(), NemesisError> {
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| err(path, e))
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn err(path: &Path, e: std::io::Error) -> NemesisError {
    NemesisError::Journal {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(n: &str) -> (Fault, Undo) {
        (
            Fault::Pause(crate::process::PauseFault {
                db: "db".into(),
                nodes: vec![n.into()],
            }),
            Undo::Resume(crate::process::Resume {
                pids: [(n.to_string(), vec![42])].into(),
            }),
        )
    }

    #[test]
    fn pending_follows_apply_and_heal() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j/nemesis.jsonl")).unwrap();
        let (f1, u1) = fault("n1");
        let (f2, u2) = fault("n2");
        let a = j.record_apply(&f1, &u1).unwrap();
        let b = j.record_apply(&f2, &u2).unwrap();
        assert_ne!(a, b);
        j.record_applied(a).unwrap();
        j.record_heal_failed(a, [("n1".into(), "boom".into())].into())
            .unwrap();
        let p = j.pending().unwrap();
        assert_eq!(p.len(), 2);
        assert!(p[0].applied && !p[1].applied);
        assert_eq!(p[0].heal_errors["n1"], "boom");
        j.record_healed(a).unwrap();
        assert_eq!(j.pending().unwrap().len(), 1);
        // A second handle (another process) sees the same state and gets fresh ids.
        let j2 = Journal::open(j.path()).unwrap();
        assert_eq!(j2.pending().unwrap()[0].id, b);
        let c = j2.record_apply(&f1, &u1).unwrap();
        assert!(c > b);
    }

    /// A fault healed by another process (its `healed` line carries that process's pid) is
    /// found, with when; this process's own heals are not "elsewhere".
    #[test]
    fn a_heal_by_another_process_is_found_with_its_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nemesis.jsonl");
        let j = Journal::open(&path).unwrap();
        let (f, u) = fault("n1");
        let a = j.record_apply(&f, &u).unwrap();
        j.record_applied(a).unwrap();
        let b = j.record_apply(&f, &u).unwrap();
        j.record_healed(b).unwrap();
        assert_eq!(j.healed_elsewhere(a).unwrap(), None);
        assert_eq!(
            j.healed_elsewhere(b).unwrap(),
            None,
            "healed by this process"
        );
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        let other = std::process::id().wrapping_add(1);
        writeln!(
            file,
            r#"{{"time":"2026-12-07T11:00:00.100Z","id":{a},"event":"healed","pid":{other}}}"#
        )
        .unwrap();
        let e = j.healed_elsewhere(a).unwrap().expect("healed elsewhere");
        assert_eq!(
            (e.pid, e.time.as_str()),
            (other, "2026-12-07T11:00:00.100Z")
        );
        assert!(j.pending().unwrap().is_empty());
        // A run copies it into its mirror, which then tells how its fault ended too.
        let mirror = dir.path().join("mirror.jsonl");
        let j = Journal::open(&path).unwrap().with_mirror(&mirror).unwrap();
        j.mirror_entry(&e).unwrap();
        let copied = Journal::open(&mirror).unwrap().entries().unwrap();
        assert_eq!(copied, vec![e]);
    }

    #[test]
    fn a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nemesis.jsonl");
        let j = Journal::open(&path).unwrap();
        let (f, u) = fault("n1");
        j.record_apply(&f, &u).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"time\":\"2026").unwrap();
        assert_eq!(j.pending().unwrap().len(), 1);
        // The next line is written whole after the torn one.
        let id = j.record_apply(&f, &u).unwrap();
        assert_eq!(j.pending().unwrap().len(), 2);
        j.record_healed(id).unwrap();
        assert_eq!(j.pending().unwrap().len(), 1);
    }

    /// A line ending in half a UTF-8 character (a crash mid-write of a node name like
    /// "nœud") used to fail every read ("stream did not contain valid UTF-8"): `nemesis` and
    /// `test` exited 255 and heal only swept. Only that line is skipped now, wherever it is.
    #[test]
    fn a_torn_multibyte_character_damages_only_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nemesis.jsonl");
        let j = Journal::open(&path).unwrap();
        let (f1, u1) = fault("n1");
        let a = j.record_apply(&f1, &u1).unwrap();
        let whole = serde_json::to_string(&JournalEntry {
            time: now(),
            id: 9,
            event: Event::Apply,
            fault: Some(fault("nœud").0),
            undo: Some(fault("nœud").1),
            errors: BTreeMap::new(),
            pid: 1,
        })
        .unwrap();
        let cut = whole.find('œ').unwrap() + 1; // inside its two bytes
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        // In the middle: a torn line, then a line of bytes that are no text at all.
        file.write_all(&whole.as_bytes()[..cut]).unwrap();
        file.write_all(b"\n\xff\xfe{\"id\":\n").unwrap();
        let (f2, u2) = fault("n2");
        let b = j.record_apply(&f2, &u2).unwrap();
        assert!(b > 9, "the torn line's id is not reused: {b}");
        // And at the end, as a crash leaves it.
        file.write_all(&whole.as_bytes()[..cut]).unwrap();
        let pending = j.pending().unwrap();
        assert_eq!(pending.iter().map(|p| p.id).collect::<Vec<_>>(), vec![a, b]);
        let c = j.record_apply(&f1, &u1).unwrap();
        assert_eq!(j.pending().unwrap().len(), 3);
        j.record_healed(c).unwrap();
        assert_eq!(j.pending().unwrap().len(), 2);
    }

    /// One corrupt line in the middle (line 3 here) used to fail every read of the journal
    /// ("line 3: expected value"), so that heal, status and test could not undo the faults
    /// the other lines record.
    #[test]
    fn a_corrupt_line_in_the_middle_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nemesis.jsonl");
        let j = Journal::open(&path).unwrap();
        let (f1, u1) = fault("n1");
        let (f2, u2) = fault("n2");
        let a = j.record_apply(&f1, &u1).unwrap();
        j.record_applied(a).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"time\":\"x\",\"id\":7,\"event\":\"apply\",garbage}\nnot json\n")
            .unwrap();
        let b = j.record_apply(&f2, &u2).unwrap();
        assert!(b > 7, "a damaged line's id is never reused: {b}");
        let pending = j.pending().unwrap();
        assert_eq!(pending.iter().map(|p| p.id).collect::<Vec<_>>(), vec![a, b]);
        assert!(pending[0].applied);
        j.record_healed(a).unwrap();
        j.record_healed(b).unwrap();
        assert!(j.pending().unwrap().is_empty());
        assert_eq!(salvage_id(r#"{"time":"t","id": 12,"ev"#), Some(12));
        assert_eq!(salvage_id("not json"), None);
    }

    #[test]
    fn the_mirror_gets_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("a.jsonl"))
            .unwrap()
            .with_mirror(&dir.path().join("b.jsonl"))
            .unwrap();
        let (f, u) = fault("n1");
        let id = j.record_apply(&f, &u).unwrap();
        j.record_healed(id).unwrap();
        let a = std::fs::read_to_string(dir.path().join("a.jsonl")).unwrap();
        let b = std::fs::read_to_string(dir.path().join("b.jsonl")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.lines().count(), 2);
    }

    fn cluster_file(name: &str, nodes: &[&str]) -> ClusterFile {
        let text = format!(
            "name: {name}\nnodes: [{}]\nssh:\n  port: 2222\n",
            nodes.join(", ")
        );
        ClusterFile::parse(&text, "c.yaml").unwrap()
    }

    /// Two cluster files with the same name and different nodes used to share one journal,
    /// so that heal of one restarted the database on the other and forgot its fault.
    #[test]
    fn a_journal_belongs_to_one_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let a = cluster_file("c", &["10.0.0.1", "10.0.0.2"]);
        let b = cluster_file("c", &["10.0.9.1", "10.0.9.2"]);
        // A journal written before identities: the first cluster to use it owns it.
        let (f, u) = fault("10.0.0.1");
        Journal::open(&path).unwrap().record_apply(&f, &u).unwrap();
        let j = Journal::open(&path).unwrap().bind(&a).unwrap();
        assert_eq!(j.pending().unwrap().len(), 1);
        assert_eq!(j.identity().unwrap(), Some(ClusterIdentity::of(&a)));
        assert_eq!(
            ClusterIdentity::of(&a).nodes["10.0.0.2"],
            "10.0.0.2:2222",
            "nodes are known by where they are reached"
        );
        Journal::open(&path).unwrap().bind(&a).unwrap();
        let e = Journal::open(&path).unwrap().bind(&b).unwrap_err();
        assert!(matches!(e, NemesisError::Refused(_)), "{e}");
        let e = e.to_string();
        assert!(
            e.contains("10.0.0.1:2222") && e.contains("10.0.9.1:2222"),
            "{e}"
        );
        assert!(e.contains("cluster down --name c"), "{e}");
    }

    #[test]
    fn nodes_are_known_by_the_address_the_cluster_files_ssh_config_gives() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("ssh_config");
        std::fs::write(&config, "Host n1\n  HostName 10.250.3.2\n  Port 2200\n").unwrap();
        let text = format!(
            "name: c\nnodes: [n1, n2]\nssh:\n  config: {}\n",
            config.display()
        );
        let id = ClusterIdentity::of(&ClusterFile::parse(&text, "c.yaml").unwrap());
        assert_eq!(id.nodes["n1"], "10.250.3.2:2200");
        assert_eq!(id.nodes["n2"], "n2:22");
        assert_eq!(
            ClusterIdentity::of(&cluster_file("c", &["n1"])).nodes["n1"],
            "n1:2222",
            "without ssh.config, ~/.ssh/config is not read"
        );
    }

    #[test]
    fn a_retired_journal_is_out_of_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal/gone.jsonl");
        let a = cluster_file("gone", &["10.0.0.1"]);
        let j = Journal::open(&path).unwrap().bind(&a).unwrap();
        let (f, u) = fault("10.0.0.1");
        j.record_apply(&f, &u).unwrap();
        // Another cluster's journal of that name is not retired for it.
        let other = ClusterIdentity::of(&cluster_file("gone", &["10.7.0.1"]));
        assert_eq!(Journal::retire_at(&path, &other).unwrap(), None);
        let to = Journal::retire_at(&path, &ClusterIdentity::of(&a))
            .unwrap()
            .unwrap();
        assert!(to.starts_with(dir.path().join("journal/retired")), "{to:?}");
        assert!(to.exists() && to.with_extension("cluster.json").exists());
        assert!(!path.exists() && !j.identity_path().exists());
        // A new cluster with the old name starts afresh.
        let b = cluster_file("gone", &["10.7.0.1"]);
        let j = Journal::open(&path).unwrap().bind(&b).unwrap();
        assert!(j.pending().unwrap().is_empty());
        assert_eq!(
            Journal::retire_at(&path, &ClusterIdentity::of(&a)).unwrap(),
            None
        );
    }
}
