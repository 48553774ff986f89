//! Disk faults (issue 25): what the lazy filesystem makes its callers see while a fault is
//! set through the control socket, and the decisions the engine asks for before each
//! operation. Pure state, no I/O, so that it is tested without a mount.
//!
//! - **disk-full** ([`DiskFault::Full`]): from the moment it is set, nothing more can be
//!   allocated. A write past a file's current size fails with ENOSPC (one that starts inside
//!   and ends past it is cut short at the size, as a filesystem writes what fits), as do new
//!   names (create, mkdir, mknod, symlink, link) and `fallocate` past the size; overwrites
//!   inside a file, reads, fsyncs, truncates, renames and removals go on, so existing data
//!   stays intact. `statfs` reports no free block. (Holes inside a sparse file count as
//!   allocated.)
//! - **disk-error** ([`ErrorFault`]): reads and/or writes (a write, or an fsync of the file)
//!   fail with EIO with a probability, on the files a glob over their path in the mount
//!   (`*.aof`, `pg_wal/*`) or a random share of them selects; drawn from the fault's own seed.
//!   A file is selected, or not, when the fault first meets it. A failed fsync makes nothing
//!   durable.
//! - **disk-slow** ([`SlowFault`]): every fsync/fdatasync (of files and directories) and/or
//!   write waits a fixed delay before it runs.
//!
//! `clear` removes one of them, or all.

use super::node::Key;
use crate::FaultRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// The three disk faults' names, as the control socket and the nemesis name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskKind {
    /// No space left.
    DiskFull,
    /// I/O errors.
    DiskError,
    /// Slow fsyncs and writes.
    DiskSlow,
}

impl DiskKind {
    /// Every kind.
    pub const ALL: [DiskKind; 3] = [DiskKind::DiskFull, DiskKind::DiskError, DiskKind::DiskSlow];

    /// Its name (`disk-full`, `disk-error`, `disk-slow`).
    pub fn name(self) -> &'static str {
        match self {
            DiskKind::DiskFull => "disk-full",
            DiskKind::DiskError => "disk-error",
            DiskKind::DiskSlow => "disk-slow",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<DiskKind> {
        DiskKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Which files an error fault hits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileSet {
    /// Every file.
    All,
    /// Files whose path in the mount (no leading `/`) matches this glob: `*` matches any
    /// run of characters (`/` included), `?` one character.
    Pattern(String),
    /// Each file with this probability (0 to 1), drawn when the fault first meets it.
    Random(f64),
}

impl std::fmt::Display for FileSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileSet::All => f.write_str("all files"),
            FileSet::Pattern(p) => write!(f, "files matching {p}"),
            FileSet::Random(share) => write!(f, "a random {:.0}% of files", share * 100.0),
        }
    }
}

/// I/O errors on some files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorFault {
    /// The probability (0 to 1) that an operation of a selected file fails.
    pub probability: f64,
    /// Reads fail.
    pub reads: bool,
    /// Writes and fsyncs fail.
    pub writes: bool,
    /// The files.
    pub files: FileSet,
    /// Seed of the draws.
    pub seed: u64,
}

/// Added latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlowFault {
    /// The delay, in milliseconds.
    pub delay_ms: u64,
    /// On fsync and fdatasync (of files and directories).
    pub fsync: bool,
    /// On writes.
    pub writes: bool,
}

/// A disk fault to set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskFault {
    /// No space left from now on.
    Full,
    /// I/O errors.
    Error(ErrorFault),
    /// Latency.
    Slow(SlowFault),
}

impl DiskFault {
    /// Its kind.
    pub fn kind(&self) -> DiskKind {
        match self {
            DiskFault::Full => DiskKind::DiskFull,
            DiskFault::Error(_) => DiskKind::DiskError,
            DiskFault::Slow(_) => DiskKind::DiskSlow,
        }
    }

    /// Refuses values that mean nothing (a probability outside 0..1, no operation chosen).
    pub fn check(&self) -> Result<(), String> {
        let share = |p: f64, what: &str| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(format!("{what} must be between 0 and 1, not {p}"))
            }
        };
        match self {
            DiskFault::Full => Ok(()),
            DiskFault::Error(e) => {
                share(e.probability, "the probability")?;
                if let FileSet::Random(s) = e.files {
                    share(s, "the share of files")?;
                }
                if !e.reads && !e.writes {
                    return Err("disk-error needs reads, writes or both".into());
                }
                Ok(())
            }
            DiskFault::Slow(s) if !s.fsync && !s.writes => {
                Err("disk-slow needs fsync, writes or both".into())
            }
            DiskFault::Slow(_) => Ok(()),
        }
    }
}

/// What an operation is, for the fault that may hit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// A read.
    Read,
    /// A write.
    Write,
    /// An fsync or fdatasync.
    Fsync,
}

/// Counts of what the faults did since the mount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Injected {
    /// Operations refused with ENOSPC.
    pub enospc: u64,
    /// Operations failed with EIO.
    pub eio: u64,
    /// Operations delayed.
    pub delayed: u64,
}

/// The disk faults set now, and what they did.
#[derive(Debug, Default)]
pub struct DiskState {
    full: bool,
    error: Option<Erroring>,
    slow: Option<SlowFault>,
    /// What they did.
    pub injected: Injected,
}

/// An error fault with its draws.
#[derive(Debug)]
struct Erroring {
    fault: ErrorFault,
    rng: FaultRng,
    /// Whether each file met so far is selected.
    chosen: HashMap<Key, bool>,
}

impl DiskState {
    /// Sets `fault`, replacing an earlier one of its kind.
    pub fn set(&mut self, fault: DiskFault) {
        match fault {
            DiskFault::Full => self.full = true,
            DiskFault::Error(e) => {
                self.error = Some(Erroring {
                    rng: FaultRng::seed_from_u64(e.seed),
                    fault: e,
                    chosen: HashMap::new(),
                })
            }
            DiskFault::Slow(s) => self.slow = Some(s),
        }
    }

    /// Clears `kind`, or every fault.
    pub fn clear(&mut self, kind: Option<DiskKind>) {
        let all = kind.is_none();
        if all || kind == Some(DiskKind::DiskFull) {
            self.full = false;
        }
        if all || kind == Some(DiskKind::DiskError) {
            self.error = None;
        }
        if all || kind == Some(DiskKind::DiskSlow) {
            self.slow = None;
        }
    }

    /// The kinds set now.
    pub fn active(&self) -> Vec<DiskKind> {
        let mut v = Vec::new();
        if self.full {
            v.push(DiskKind::DiskFull);
        }
        if self.error.is_some() {
            v.push(DiskKind::DiskError);
        }
        if self.slow.is_some() {
            v.push(DiskKind::DiskSlow);
        }
        v
    }

    /// Whether the disk is full.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// A new name may be made: ENOSPC when full.
    pub fn allocate(&mut self) -> Result<(), i32> {
        if self.full {
            self.injected.enospc += 1;
            return Err(libc::ENOSPC);
        }
        Ok(())
    }

    /// How many of `len` bytes at `offset` a file of `size` bytes takes: all of them unless
    /// full; when full, those before `size` (ENOSPC when none is).
    pub fn writable(&mut self, offset: u64, len: usize, size: u64) -> Result<usize, i32> {
        if !self.full || offset.saturating_add(len as u64) <= size || len == 0 {
            return Ok(len);
        }
        if offset >= size {
            self.injected.enospc += 1;
            return Err(libc::ENOSPC);
        }
        Ok((size - offset) as usize)
    }

    /// Space may be reserved up to `end` in a file of `size` bytes (`fallocate`).
    pub fn reserve(&mut self, end: u64, size: u64) -> Result<(), i32> {
        if self.full && end > size {
            self.injected.enospc += 1;
            return Err(libc::ENOSPC);
        }
        Ok(())
    }

    /// The delay an operation waits before it runs, if any (counted as delayed).
    pub fn delay(&mut self, io: Io) -> Option<Duration> {
        let s = self.slow?;
        let hit = match io {
            Io::Read => false,
            Io::Write => s.writes,
            Io::Fsync => s.fsync,
        };
        if !hit || s.delay_ms == 0 {
            return None;
        }
        self.injected.delayed += 1;
        Some(Duration::from_millis(s.delay_ms))
    }

    /// Whether the error fault needs the path of a file it has not met (to match its
    /// pattern), so that the caller finds it before [`DiskState::fails`].
    pub fn needs_path(&self, io: Io, key: Key) -> bool {
        self.error.as_ref().is_some_and(|e| {
            hits(&e.fault, io)
                && matches!(e.fault.files, FileSet::Pattern(_))
                && !e.chosen.contains_key(&key)
        })
    }

    /// Whether this operation fails with EIO: the file (identity `key`, `path` in the mount)
    /// is selected and the draw says so.
    pub fn fails(&mut self, io: Io, key: Key, path: Option<&str>) -> bool {
        let Some(e) = self.error.as_mut() else {
            return false;
        };
        if !hits(&e.fault, io) {
            return false;
        }
        let selected = match e.chosen.get(&key) {
            Some(&s) => s,
            None => {
                let s = match &e.fault.files {
                    FileSet::All => true,
                    FileSet::Pattern(p) => path.is_some_and(|path| glob_match(p, path)),
                    FileSet::Random(share) => e.rng.random_bool(share.clamp(0.0, 1.0)),
                };
                e.chosen.insert(key, s);
                s
            }
        };
        let fail = selected && e.rng.random_bool(e.fault.probability.clamp(0.0, 1.0));
        if fail {
            self.injected.eio += 1;
        }
        fail
    }
}

/// Whether an error fault hits this kind of operation.
fn hits(fault: &ErrorFault, io: Io) -> bool {
    match io {
        Io::Read => fault.reads,
        Io::Write | Io::Fsync => fault.writes,
    }
}

/// Whether `text` matches the glob `pattern` (`*`: any run of characters, `?`: one).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn erroring(p: f64, files: FileSet, seed: u64) -> DiskState {
        let mut s = DiskState::default();
        s.set(DiskFault::Error(ErrorFault {
            probability: p,
            reads: false,
            writes: true,
            files,
            seed,
        }));
        s
    }

    #[test]
    fn globs_match_as_documented() {
        for (p, t, m) in [
            ("*.aof", "appendonly.aof", true),
            ("*.aof", "dir/appendonly.aof", true),
            ("*.aof", "appendonly.aof.1", false),
            ("pg_wal/*", "pg_wal/000000010000000000000001", true),
            ("pg_wal/*", "base/1/pg_wal", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "a-b-b-d", false),
        ] {
            assert_eq!(glob_match(p, t), m, "{p} on {t}");
        }
    }

    #[test]
    fn full_refuses_allocation_and_keeps_overwrites() {
        let mut s = DiskState::default();
        assert_eq!(s.writable(100, 10, 50), Ok(10));
        s.set(DiskFault::Full);
        assert_eq!(s.writable(0, 10, 50), Ok(10), "an overwrite");
        assert_eq!(s.writable(45, 10, 50), Ok(5), "cut at the size");
        assert_eq!(s.writable(50, 10, 50), Err(libc::ENOSPC));
        assert_eq!(s.writable(60, 0, 50), Ok(0));
        assert_eq!(s.allocate(), Err(libc::ENOSPC));
        assert_eq!(s.reserve(51, 50), Err(libc::ENOSPC));
        assert_eq!(s.reserve(50, 50), Ok(()));
        assert_eq!(s.injected.enospc, 3);
        assert_eq!(s.active(), vec![DiskKind::DiskFull]);
        s.clear(Some(DiskKind::DiskSlow));
        assert!(s.is_full(), "clearing another kind leaves it");
        s.clear(Some(DiskKind::DiskFull));
        assert_eq!(s.writable(50, 10, 50), Ok(10));
        assert_eq!(s.allocate(), Ok(()));
    }

    #[test]
    fn errors_hit_only_selected_files_and_operations() {
        let mut s = erroring(1.0, FileSet::Pattern("*.aof".into()), 1);
        assert!(s.needs_path(Io::Write, (1, 2)));
        assert!(!s.needs_path(Io::Read, (1, 2)), "reads are not hit");
        assert!(s.fails(Io::Write, (1, 2), Some("x/a.aof")));
        assert!(s.fails(Io::Fsync, (1, 2), None), "remembered by identity");
        assert!(!s.needs_path(Io::Write, (1, 2)));
        assert!(!s.fails(Io::Read, (1, 2), Some("x/a.aof")));
        assert!(!s.fails(Io::Write, (1, 3), Some("x/a.rdb")));
        assert_eq!(s.injected.eio, 2);
        s.clear(None);
        assert!(!s.fails(Io::Write, (1, 2), Some("x/a.aof")));
        assert!(s.active().is_empty());
    }

    #[test]
    fn slow_delays_what_it_names() {
        let mut s = DiskState::default();
        assert_eq!(s.delay(Io::Fsync), None);
        s.set(DiskFault::Slow(SlowFault {
            delay_ms: 200,
            fsync: true,
            writes: false,
        }));
        assert_eq!(s.delay(Io::Fsync), Some(Duration::from_millis(200)));
        assert_eq!(s.delay(Io::Write), None);
        assert_eq!(s.delay(Io::Read), None);
        assert_eq!(s.injected.delayed, 1);
    }

    #[test]
    fn meaningless_values_are_refused() {
        let bad = |p: f64, files: FileSet, reads: bool, writes: bool| {
            DiskFault::Error(ErrorFault {
                probability: p,
                reads,
                writes,
                files,
                seed: 0,
            })
            .check()
        };
        assert!(bad(1.5, FileSet::All, true, true).is_err());
        assert!(bad(f64::NAN, FileSet::All, true, true).is_err());
        assert!(bad(0.5, FileSet::Random(-0.1), true, true).is_err());
        assert!(bad(0.5, FileSet::All, false, false).is_err());
        assert!(bad(0.5, FileSet::Random(0.3), true, false).is_ok());
        let slow = DiskFault::Slow(SlowFault {
            delay_ms: 1,
            fsync: false,
            writes: false,
        });
        assert!(slow.check().is_err());
    }

    proptest! {
        /// The share of failed operations follows the probability, the same seed draws the
        /// same failures, and a random share of files selects about that share.
        #[test]
        fn draws_follow_the_probability_and_replay_from_the_seed(
            p in 0.0f64..=1.0, share in 0.0f64..=1.0, seed in any::<u64>()
        ) {
            let draw = |files: FileSet| {
                let mut s = erroring(p, files, seed);
                (0..2000u64).map(|i| s.fails(Io::Write, (0, i % 50), None)).collect::<Vec<_>>()
            };
            let a = draw(FileSet::All);
            prop_assert_eq!(&a, &draw(FileSet::All));
            let rate = a.iter().filter(|f| **f).count() as f64 / a.len() as f64;
            prop_assert!((rate - p).abs() < 0.06, "rate {} for p {}", rate, p);
            let mut s = erroring(1.0, FileSet::Random(share), seed);
            let chosen = (0..1000u64).filter(|i| s.fails(Io::Write, (0, *i), None)).count();
            prop_assert!((chosen as f64 / 1000.0 - share).abs() < 0.08, "{} for {}", chosen, share);
        }

        /// Under disk-full a write never grows a file, and every byte before the size is
        /// writable.
        #[test]
        fn full_never_grows_a_file(offset in 0u64..10_000, len in 0usize..5000, size in 0u64..10_000) {
            let mut s = DiskState::default();
            s.set(DiskFault::Full);
            match s.writable(offset, len, size) {
                Ok(n) => {
                    prop_assert!(offset + n as u64 <= size.max(offset));
                    prop_assert!(n == len || offset + n as u64 == size);
                    prop_assert!(len == 0 || n > 0);
                }
                Err(e) => {
                    prop_assert_eq!(e, libc::ENOSPC);
                    prop_assert!(offset >= size && len > 0);
                }
            }
        }
    }
}
