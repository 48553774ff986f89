//! File corruption (issue 25): `corrupt` damages one file of the database's data directory on
//! each target node, to test that a replicated database notices a damaged replica and repairs
//! it instead of serving it.
//!
//! The damage is done to the files themselves with the database stopped: apply kills the
//! database with SIGKILL on the targets (as `kill`), waits until its processes are gone,
//! changes the file in place (through the lazy filesystem when it is mounted there, and then
//! fsynced, so that it is durable either way) and leaves the database down; the undo is a
//! kill's ([`Restart`]: recorded on the nodes, so heal starts the database again even without
//! the journal). Killing first means no running process overwrites the damage before it is
//! read back, and the database meets it the way it meets a bad disk: at its next start.
//!
//! Every choice is made at resolve, from the fault's seed and a listing of the data directory
//! (regular files, not empty, matching `files` if given), so that the journaled fault (and the
//! history's `start-corrupt`) says exactly what is done, per node: the file, and
//!
//! - `bitflip`: bit `bit` of the byte at `offset` is flipped;
//! - `zero-range`: `len` bytes from `offset` are overwritten with zeros;
//! - `truncate`: the file is cut to `len` bytes (the bytes from `len` on are lost);
//! - `rollback`: a copy of the file is taken while the database still runs, the database
//!   runs on for `window_ms` (its writes to the file meanwhile are what is lost), then it is
//!   killed and the file reverts to the copy.
//!
//! Targets resolve as kill's; schedules draw one node or a minority, never more.

use crate::fault::{Apply, NodeErrors, Package, Spec, Targets};
use crate::lazyfs::disk::glob_match;
use crate::power::kill_and_wait_script;
use crate::process::{self, find_pids, Restart};
use crate::registry::{FaultSpec, Kind};
use crate::remote::{collect_each, on_each, root_script};
use crate::{FaultRng, Nemesis, NemesisError};
use clusters::quote;
use rand::seq::IndexedRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The kind `corrupt` (see [`Package`]).
pub struct Corrupt;

/// How long a schedule's rollback lets the database run on before the file reverts.
const ROLLBACK_WINDOW_MS: u64 = 2000;

/// The most bytes a schedule's zero-range overwrites.
const ZERO_RANGE_MAX: u64 = 4096;

impl Package for Corrupt {
    const NAME: &'static str = "corrupt";
    const ABOUT: &'static str =
        "file corruption: the database killed, one of its files damaged (bit flip, zeroed range, truncation, rollback); heal starts it again";
    const COLOR: [u8; 3] = [100, 100, 30];

    fn random(rng: &mut FaultRng) -> FaultSpec {
        let mode = [
            CorruptMode::Bitflip,
            CorruptMode::ZeroRange,
            CorruptMode::Truncate,
            CorruptMode::Rollback,
        ]
        .choose(rng)
        .copied()
        .unwrap_or(CorruptMode::Bitflip);
        let targets = [Targets::One, Targets::Minority]
            .choose(rng)
            .cloned()
            .unwrap_or(Targets::One);
        FaultSpec::Corrupt(CorruptSpec {
            targets,
            mode,
            files: None,
        })
    }
}

/// What is done to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CorruptMode {
    /// One bit flipped.
    Bitflip,
    /// A range overwritten with zeros.
    ZeroRange,
    /// The file cut short.
    Truncate,
    /// The file back to a copy taken a moment before.
    Rollback,
}

impl CorruptMode {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            CorruptMode::Bitflip => "bitflip",
            CorruptMode::ZeroRange => "zero-range",
            CorruptMode::Truncate => "truncate",
            CorruptMode::Rollback => "rollback",
        }
    }
}

impl std::str::FromStr for CorruptMode {
    type Err = String;
    fn from_str(s: &str) -> Result<CorruptMode, String> {
        [
            CorruptMode::Bitflip,
            CorruptMode::ZeroRange,
            CorruptMode::Truncate,
            CorruptMode::Rollback,
        ]
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| {
            format!("unknown corrupt mode {s:?} (bitflip, zero-range, truncate or rollback)")
        })
    }
}

/// Corrupt a file of the database on the targets, as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorruptSpec {
    /// Which nodes (a minority by default on the command line).
    pub targets: Targets,
    /// What is done.
    pub mode: CorruptMode,
    /// Only files whose path in the data directory matches this glob (`*`: any characters,
    /// `?`: one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<String>,
}

/// What is done on one node: the file and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Damage {
    /// The file, relative to the data directory.
    pub file: String,
    /// Its size when it was chosen.
    pub size: u64,
    /// Where the damage starts (bitflip, zero-range).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// How many bytes are zeroed (zero-range), or the length the file is cut to (truncate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    /// Which bit of the byte is flipped, 0 to 7 (bitflip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit: Option<u8>,
}

/// One file of the database damaged on each of `nodes`, as `damage` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorruptFault {
    /// The database.
    pub db: String,
    /// Affected nodes.
    pub nodes: Vec<String>,
    /// Its data directory.
    pub data_dir: String,
    /// What is done.
    pub mode: CorruptMode,
    /// Per node, the file and where.
    pub damage: BTreeMap<String, Damage>,
    /// How long the database runs on between the copy and the rollback (rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ms: Option<u64>,
}

impl Spec for CorruptSpec {
    type Fault = CorruptFault;

    /// Chooses the nodes, then on each a file (among the data directory's regular files
    /// that are not empty and match `files`) and where to damage it.
    fn resolve<R: Rng>(
        &self,
        nem: &Nemesis<'_>,
        rng: &mut R,
    ) -> Result<CorruptFault, NemesisError> {
        let hooks = nem.target_hooks()?;
        let data_dir = hooks.data_dir().ok_or_else(|| {
            NemesisError::Refused(format!(
                "{} does not say where it keeps its data (no data directory), so its files cannot be corrupted",
                hooks.name()
            ))
        })?;
        let (db, nodes) = process::resolve(nem, &self.targets, rng)?;
        let listed = collect_each(nem.cluster(), &nodes, |n| {
            let out = root_script(
                nem.cluster(),
                n,
                "list the data directory",
                &list_script(&data_dir),
            )?;
            Ok(parse_listing(&out.stdout_text()))
        })?;
        let mut damage = BTreeMap::new();
        for n in &nodes {
            let files: Vec<&(u64, String)> = listed
                .get(n)
                .map(|l| {
                    l.iter()
                        .filter(|(_, f)| self.files.as_ref().is_none_or(|g| glob_match(g, f)))
                        .collect()
                })
                .unwrap_or_default();
            let Some((size, file)) = files.choose(rng).map(|f| (*f).clone()) else {
                return Err(NemesisError::Refused(format!(
                    "{n}: no file in {data_dir} to corrupt{}",
                    self.files
                        .as_ref()
                        .map(|g| format!(" matching {g}"))
                        .unwrap_or_default()
                )));
            };
            damage.insert(n.clone(), choose(self.mode, file, size, rng));
        }
        Ok(CorruptFault {
            db,
            nodes,
            data_dir,
            mode: self.mode,
            damage,
            window_ms: (self.mode == CorruptMode::Rollback).then_some(ROLLBACK_WINDOW_MS),
        })
    }
}

/// Where to damage `file` of `size` bytes (not 0) in `mode`.
fn choose<R: Rng>(mode: CorruptMode, file: String, size: u64, rng: &mut R) -> Damage {
    let mut d = Damage {
        file,
        size,
        offset: None,
        len: None,
        bit: None,
    };
    let offset = rng.random_range(0..size.max(1));
    match mode {
        CorruptMode::Bitflip => {
            d.offset = Some(offset);
            d.bit = Some(rng.random_range(0..8));
        }
        CorruptMode::ZeroRange => {
            d.offset = Some(offset);
            d.len = Some((size - offset).clamp(1, ZERO_RANGE_MAX));
        }
        CorruptMode::Truncate => d.len = Some(offset),
        CorruptMode::Rollback => {}
    }
    d
}

/// Lists the regular files of `data_dir` that are not empty, one `SIZE PATH` line each
/// (paths relative to it; files of other filesystems below it are left out).
fn list_script(data_dir: &str) -> String {
    format!(
        "cd {} && find . -xdev -type f -size +0c -printf '%s %P\\n'",
        quote(data_dir)
    )
}

/// The files of a listing: (size, path); lines that do not parse, and paths that could
/// leave the directory, are left out.
fn parse_listing(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|l| {
            let (size, path) = l.split_once(' ')?;
            let ok = !path.is_empty()
                && !path.starts_with('/')
                && !path.split('/').any(|c| c == ".." || c.is_empty());
            let size: u64 = size.parse().ok()?;
            Some((size, path.to_string())).filter(|_| ok && size > 0)
        })
        .collect()
}

/// The script that damages `file` (an absolute path) as `d` says, with the database's
/// processes `pids` killed first (rollback: copied, then `window_ms` later killed and
/// reverted), fsyncs it, and prints the bytes around the damage before and after.
fn damage_script(
    mode: CorruptMode,
    file: &str,
    d: &Damage,
    pids: &[u32],
    window_ms: u64,
) -> String {
    let f = quote(file);
    let kill = kill_and_wait_script(pids);
    let show = |when: &str| match d.offset {
        Some(o) => format!("echo {when}: $(od -An -tx1 -j {o} -N 16 {f})"),
        None => format!("echo {when}: $(stat -c %s {f}) bytes"),
    };
    let change = match mode {
        CorruptMode::Bitflip => {
            let (o, bit) = (d.offset.unwrap_or(0), d.bit.unwrap_or(0));
            format!(
                "b=$(od -An -tu1 -j {o} -N 1 {f} | tr -d ' ')\n\
                 [ -n \"$b\" ] || {{ echo 'the file is shorter than offset {o} now' >&2; exit 1; }}\n\
                 printf \"$(printf '\\\\%03o' $((b ^ (1 << {bit}))))\" | dd of={f} bs=1 seek={o} count=1 conv=notrunc status=none"
            )
        }
        CorruptMode::ZeroRange => format!(
            "head -c {len} /dev/zero | dd of={f} bs=1M seek={o} oflag=seek_bytes conv=notrunc status=none",
            len = d.len.unwrap_or(1),
            o = d.offset.unwrap_or(0)
        ),
        CorruptMode::Truncate => format!("truncate -s {} {f}", d.len.unwrap_or(0)),
        CorruptMode::Rollback => format!("cat \"$snap\" > {f} && rm -f \"$snap\""),
    };
    let before = if mode == CorruptMode::Rollback {
        format!(
            "snap=$(mktemp /var/tmp/faultline-rollback.XXXXXX) && cp {f} \"$snap\" || exit 1\n\
             {}\n\
             sleep {}.{:03}\n",
            show("copied"),
            window_ms / 1000,
            window_ms % 1000
        )
    } else {
        String::new()
    };
    // No `set -e`: the kill script's `kill` of a process that exited meanwhile may fail.
    format!(
        "{before}{kill}\n{}\n{{\n{change}\n}} || {{ echo 'the change failed' >&2; exit 1; }}\n\
         sync {f} || exit 1\n{}\n",
        show("before"),
        show("after")
    )
}

impl Apply for CorruptFault {
    const KIND: Kind = Kind::Corrupt;
    type Undo = Restart;
    type Plan = ();

    /// Refuses unless the database runs on every target.
    fn plan(&self, nem: &Nemesis<'_>) -> Result<(Restart, ()), NemesisError> {
        process::running_pids(nem, &self.db, &self.nodes)?;
        let undo = Restart {
            db: self.db.clone(),
            nodes: self.nodes.clone(),
            source: nem.hooks_for(&self.db)?.source(),
        };
        Ok((undo, ()))
    }

    /// Kills the database on each target (rollback: after copying the file and letting it
    /// run on), damages the file and makes the damage durable.
    fn apply(
        &self,
        nem: &Nemesis<'_>,
        _undo: &Restart,
        _plan: (),
        _id: u64,
    ) -> Result<NodeErrors, NemesisError> {
        let hooks = nem.hooks_for(&self.db)?;
        let cluster = nem.cluster();
        let pids = find_pids(cluster, hooks.as_ref(), &self.nodes)?;
        Ok(on_each(cluster, &self.nodes, |n| {
            let d = self.damage.get(n).ok_or_else(|| {
                NemesisError::BadFault(format!("the fault says nothing about {n}"))
            })?;
            let file = format!("{}/{}", self.data_dir.trim_end_matches('/'), d.file);
            let none = Vec::new();
            let script = damage_script(
                self.mode,
                &file,
                d,
                pids.get(n).unwrap_or(&none),
                self.window_ms.unwrap_or(0),
            );
            let out = root_script(cluster, n, "corrupt", &script)?;
            tracing::info!(node = n, "corrupt {}: {}", d.file, out.stdout_text().trim());
            Ok(())
        }))
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }
}

impl fmt::Display for CorruptFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt {} on {}:", self.db, self.nodes.join(","))?;
        for (n, d) in &self.damage {
            let what = match self.mode {
                CorruptMode::Bitflip => format!(
                    "bit {} of byte {} flipped",
                    d.bit.unwrap_or(0),
                    d.offset.unwrap_or(0)
                ),
                CorruptMode::ZeroRange => format!(
                    "{} bytes zeroed from {}",
                    d.len.unwrap_or(0),
                    d.offset.unwrap_or(0)
                ),
                CorruptMode::Truncate => {
                    format!("cut from {} to {} bytes", d.size, d.len.unwrap_or(0))
                }
                CorruptMode::Rollback => format!("rolled back {} ms", self.window_ms.unwrap_or(0)),
            };
            write!(f, " {n} {} {what};", d.file)?;
        }
        write!(f, " in {}", self.data_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_parse_and_keep_inside_the_directory() {
        let l = parse_listing(
            "12 member/snap/db\n0 empty\nx bad\n5 ../escape\n7 a//b\n3 /abs\n9 ok file\n",
        );
        assert_eq!(
            l,
            vec![
                (12, "member/snap/db".to_string()),
                (9, "ok file".to_string())
            ]
        );
    }

    #[test]
    fn choices_stay_inside_the_file() {
        let mut rng = crate::seeded(3);
        for size in [1u64, 2, 100, 10_000] {
            for _ in 0..200 {
                let b = choose(CorruptMode::Bitflip, "f".into(), size, &mut rng);
                assert!(b.offset.unwrap() < size && b.bit.unwrap() < 8);
                let z = choose(CorruptMode::ZeroRange, "f".into(), size, &mut rng);
                let (o, n) = (z.offset.unwrap(), z.len.unwrap());
                assert!(n >= 1 && o + n <= size && n <= ZERO_RANGE_MAX);
                let t = choose(CorruptMode::Truncate, "f".into(), size, &mut rng);
                assert!(t.len.unwrap() < size, "a truncation loses something");
            }
        }
    }

    /// Runs a damage script on a file in a temporary directory (no database: nothing to
    /// kill); the file's bytes after.
    fn damaged(mode: CorruptMode, content: &[u8], d: Damage) -> (Vec<u8>, String) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data file");
        std::fs::write(&file, content).unwrap();
        let path = file.to_str().unwrap().to_string();
        let script = damage_script(mode, &path, &d, &[], 10);
        let script = if mode == CorruptMode::Rollback {
            // The database's writes during the window.
            script.replace(
                "sleep 0.010",
                &format!("sleep 0.010; printf new >> '{path}'"),
            )
        } else {
            script
        };
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
        (
            std::fs::read(&file).unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn at(offset: Option<u64>, len: Option<u64>, bit: Option<u8>) -> Damage {
        Damage {
            file: "data file".into(),
            size: 10,
            offset,
            len,
            bit,
        }
    }

    #[test]
    fn each_mode_changes_exactly_what_it_says() {
        let content = b"0123456789";
        let (b, shown) = damaged(CorruptMode::Bitflip, content, at(Some(3), None, Some(2)));
        let mut want = content.to_vec();
        want[3] ^= 1 << 2;
        assert_eq!(b, want);
        assert!(
            shown.contains("before: 33 34") && shown.contains("after: 37 34"),
            "{shown}"
        );
        let (b, _) = damaged(CorruptMode::ZeroRange, content, at(Some(2), Some(5), None));
        assert_eq!(b, b"01\x00\x00\x00\x00\x00789");
        let (b, shown) = damaged(CorruptMode::Truncate, content, at(None, Some(4), None));
        assert_eq!(b, b"0123");
        assert!(shown.contains("after: 4 bytes"), "{shown}");
        let (b, _) = damaged(CorruptMode::Rollback, content, at(None, None, None));
        assert_eq!(b, content, "the write during the window is lost");
    }

    #[test]
    fn a_change_that_cannot_be_made_fails_the_script() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("short");
        std::fs::write(&file, b"0123").unwrap();
        let script = damage_script(
            CorruptMode::Bitflip,
            file.to_str().unwrap(),
            &at(Some(100), None, Some(1)),
            &[],
            0,
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("shorter than offset 100"));
        assert_eq!(std::fs::read(&file).unwrap(), b"0123");
    }

    #[test]
    fn modes_parse_and_serialize_by_name() {
        for m in ["bitflip", "zero-range", "truncate", "rollback"] {
            let mode: CorruptMode = m.parse().unwrap();
            assert_eq!(mode.name(), m);
            assert_eq!(
                serde_json::to_value(mode).unwrap(),
                serde_json::Value::from(m)
            );
        }
        assert!("shred".parse::<CorruptMode>().is_err());
    }
}
