//! The lazy filesystem (issue 25): a FUSE passthrough over a backing directory that keeps
//! what the database did not make durable, so that a fault can drop it as a power loss
//! would. `faultline node lazyfs mount` runs it on a node; [`Control`] (or `faultline node
//! lazyfs ctl`) sends it fault commands over a Unix socket.
//!
//! # What is durable, and how undo is represented
//!
//! The backing directory is the live tree (every name exists there as the mount shows it),
//! and the filesystem keeps, beside it, exactly what a crash would take back:
//!
//! - **Data** of a regular file is never written to its backing file before it is durable.
//!   Writes, truncations and `fallocate` go into a page map per file ([`model::Pending`]: 4 KiB
//!   pages over the backing file, the current size, and how far a truncation hid the backing
//!   file's bytes); reads see the pages over the backing file (read-your-writes). `fsync` and
//!   `fdatasync` of the file, and any write through an `O_SYNC`/`O_DSYNC` descriptor, write
//!   the pages and the size into the backing file and fdatasync it. So the backing file
//!   always holds the durable contents and size, and dropping the page map is an exact
//!   `lose-unfsynced` for data.
//! - **Namespace changes** (create, mkdir, mknod, symlink, link, unlink, rmdir, rename) are
//!   applied to the backing directory at once, so every lookup, listing and open is a plain
//!   passthrough, and journaled with what undoing them needs ([`undo::Undo`]). A name that
//!   goes away (unlink, rmdir, a rename's replaced target) is not deleted but moved into a
//!   hidden grave directory in the backing directory, so undo moves it back with its durable
//!   contents; open descriptors of the file keep working meanwhile, as after an unlink. The
//!   journal ([`model::Journal`]) makes durability ordered, as a journaling filesystem
//!   (ext4, xfs) commits metadata in order: `fsync` of a directory makes durable every change
//!   up to the last one in that directory, and a crash keeps a prefix of the changes. So
//!   undoing the rest newest first always finds each name as its change left it, and what
//!   survives is a state a real filesystem can reach. `fsync` of a file does not make its
//!   name durable (POSIX asks for an fsync of the directory; ext4 is kinder, so this finds
//!   more). Mode, owner and times are applied at once and not undone.
//!
//! The alternative, keeping the backing directory durable and the current tree in memory,
//! would make every lookup and listing a merge of the two; here only data reads merge.
//! After `lose-unfsynced` the backing directory is exactly the durable state (the grave is
//! removed once nothing is pending), and the kernel is told to drop its cached names,
//! attributes and pages, so the mount goes on working for the database's restart.
//!
//! `torn` writes, for each file, a random subset of the pages that differ from the durable
//! file (and either size) into it, commits a random prefix of the namespace journal and
//! undoes the rest: each page is then either its durable or its current version.
//!
//! # Limits
//!
//! Pending data lives in memory until it is synced (no write-back under memory pressure).
//! `sync_file_range` never reaches a FUSE filesystem without its write-back cache (which this
//! one does not enable: the kernel would hold dirty pages past a fault), so it makes nothing
//! durable. Locks (POSIX, `flock`) are kept by the kernel; extended attributes are refused
//! with ENOTSUP; `RENAME_WHITEOUT` with EINVAL. A file unlinked while open still counts its
//! name in the grave in `st_nlink` until the unlink is durable. Modification times of data
//! not yet durable are kept in memory (the backing file's are those of its last sync). A mount process that dies loses what was
//! pending, and leaves in the backing directory the names of changes not yet durable (its
//! next start deletes a grave left behind).

mod control;
pub mod disk;
mod engine;
mod faults;
mod fs;
pub mod model;
mod mount;
mod node;
mod sys;
mod undo;

#[cfg(test)]
mod disk_tests;
#[cfg(test)]
mod sim;

pub use control::Control;
pub use disk::{DiskFault, DiskKind, ErrorFault, FileSet, SlowFault};
pub use engine::GRAVE;
pub use mount::{run as mount, MountOptions};

use crate::helper::HELPER_PATH;
use clusters::shell::quote;
use clusters::RemoteCommand;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A command on the control socket: a line holding its name, and for `disk-error` and
/// `disk-slow` their settings as JSON after a space (`disk-slow {"delay_ms":200,...}`); `clear`
/// may name the one disk fault it clears (`clear disk-full`).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Drop everything not durable, as a power loss.
    LoseUnfsynced,
    /// Like `LoseUnfsynced`, but keep a random part of what was pending.
    Torn,
    /// Make everything durable.
    Checkpoint,
    /// Count what is pending.
    Status,
    /// Make everything durable and unmount (the mount process then exits).
    Unmount,
    /// Set a disk fault (replacing an earlier one of its kind).
    Disk(DiskFault),
    /// Clear one disk fault, or all of them.
    Clear(Option<DiskKind>),
}

/// The names of the commands without settings.
const SIMPLE: [(&str, Command); 5] = [
    ("lose-unfsynced", Command::LoseUnfsynced),
    ("torn", Command::Torn),
    ("checkpoint", Command::Checkpoint),
    ("status", Command::Status),
    ("unmount", Command::Unmount),
];

impl Command {
    /// Its name on the socket and the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Command::LoseUnfsynced => "lose-unfsynced",
            Command::Torn => "torn",
            Command::Checkpoint => "checkpoint",
            Command::Status => "status",
            Command::Unmount => "unmount",
            Command::Disk(d) => d.kind().name(),
            Command::Clear(_) => "clear",
        }
    }

    /// Its line on the socket (without the newline): the name, then its settings.
    pub fn line(&self) -> String {
        match self {
            Command::Disk(DiskFault::Error(e)) => {
                format!("{} {}", self.name(), serde_json::json!(e))
            }
            Command::Disk(DiskFault::Slow(s)) => {
                format!("{} {}", self.name(), serde_json::json!(s))
            }
            Command::Clear(Some(k)) => format!("clear {}", k.name()),
            _ => self.name().to_string(),
        }
    }
}

impl std::str::FromStr for Command {
    type Err = String;
    /// Parses a command's line (see [`Command::line`]).
    fn from_str(s: &str) -> Result<Command, String> {
        let s = s.trim();
        let (name, args) = match s.split_once(' ') {
            Some((n, a)) => (n, a.trim()),
            None => (s, ""),
        };
        let json = |what: &str| format!("{name} takes its settings as JSON ({what})");
        let cmd = match (name, DiskKind::from_name(name)) {
            ("clear", _) if args.is_empty() => Command::Clear(None),
            ("clear", _) => Command::Clear(Some(DiskKind::from_name(args).ok_or_else(|| {
                format!("clear takes disk-full, disk-error or disk-slow, not {args:?}")
            })?)),
            (_, Some(DiskKind::DiskFull)) if args.is_empty() => Command::Disk(DiskFault::Full),
            (_, Some(DiskKind::DiskError)) => Command::Disk(DiskFault::Error(
                serde_json::from_str(args).map_err(|e| json(&e.to_string()))?,
            )),
            (_, Some(DiskKind::DiskSlow)) => Command::Disk(DiskFault::Slow(
                serde_json::from_str(args).map_err(|e| json(&e.to_string()))?,
            )),
            _ => match SIMPLE.iter().find(|(n, _)| *n == name && args.is_empty()) {
                Some((_, c)) => c.clone(),
                None => {
                    let mut names: Vec<&str> = SIMPLE.iter().map(|(n, _)| *n).collect();
                    names.extend(DiskKind::ALL.iter().map(|k| k.name()));
                    names.push("clear");
                    return Err(format!(
                        "unknown lazyfs command {s:?} (one of {})",
                        names.join(", ")
                    ));
                }
            },
        };
        if let Command::Disk(d) = &cmd {
            d.check()?;
        }
        Ok(cmd)
    }
}

/// What is not durable, after a command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Files with data or a size not durable.
    pub pending_files: u64,
    /// Bytes of those (whole pages, plus size changes).
    pub pending_bytes: u64,
    /// Namespace changes not durable.
    pub pending_ops: u64,
    /// Whether disk-full is set.
    #[serde(default)]
    pub disk_full: bool,
    /// Whether disk-error is set.
    #[serde(default)]
    pub disk_error: bool,
    /// Whether disk-slow is set.
    #[serde(default)]
    pub disk_slow: bool,
    /// Operations refused with ENOSPC since the mount.
    #[serde(default)]
    pub enospc: u64,
    /// Operations failed with EIO since the mount.
    #[serde(default)]
    pub eio: u64,
    /// Operations delayed since the mount.
    #[serde(default)]
    pub delayed: u64,
}

/// The answer to a command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// What is pending after the command.
    pub status: Status,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took, in microseconds.
    pub took_us: u64,
}

/// Errors of the lazy filesystem and its control channel.
#[derive(Debug, thiserror::Error)]
pub enum LazyFsError {
    /// Mounting or serving failed.
    #[error("lazyfs: {0}")]
    Io(String),
    /// The control socket could not be reached or answered nonsense.
    #[error("lazyfs control socket {socket}: {message}")]
    Control {
        /// The socket.
        socket: String,
        /// What went wrong.
        message: String,
    },
    /// The filesystem ran the command and it failed.
    #[error("lazyfs {command}: {message}")]
    Failed {
        /// The command.
        command: String,
        /// What went wrong.
        message: String,
    },
}

/// The node helper's command that sends `command` to the filesystem listening on `control`
/// and prints its [`Status`] as JSON (run as root, like the mount).
pub fn ctl_command(control: &Path, command: &Command) -> RemoteCommand {
    RemoteCommand::new(HELPER_PATH)
        .args(["node", "lazyfs", "ctl", "--control"])
        .arg(control.display().to_string())
        .arg(command.line())
        .sudo()
}

/// A script that starts the node helper's mount in the background (its own session, its
/// output in `log`) and returns once it is mounted, or fails with the end of its log after
/// 10 s.
pub fn mount_script(opts: &MountOptions, log: &Path) -> String {
    let args = [
        HELPER_PATH.to_string(),
        "node".into(),
        "lazyfs".into(),
        "mount".into(),
        "--backing".into(),
        opts.backing.display().to_string(),
        "--mount".into(),
        opts.mount.display().to_string(),
        "--control".into(),
        opts.control.display().to_string(),
        "--seed".into(),
        opts.seed.to_string(),
    ];
    let cmd: Vec<String> = args.iter().map(|a| quote(a)).collect();
    let log = quote(&log.display().to_string());
    let (backing, mount) = (
        quote(&opts.backing.display().to_string()),
        quote(&opts.mount.display().to_string()),
    );
    format!(
        "command -v fusermount3 >/dev/null || {{ echo 'fuse3 is not installed on this node' >&2; exit 127; }}\n\
         mkdir -p {backing} {mount}\n\
         setsid {cmd} >{log} 2>&1 </dev/null &\n\
         for _ in $(seq 100); do grep -qx ready {log} && exit 0; sleep 0.1; done\n\
         tail -n 20 {log} >&2; exit 1\n",
        cmd = cmd.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_from_their_lines() {
        let all = [
            Command::LoseUnfsynced,
            Command::Torn,
            Command::Checkpoint,
            Command::Status,
            Command::Unmount,
            Command::Disk(DiskFault::Full),
            Command::Disk(DiskFault::Error(ErrorFault {
                probability: 0.25,
                reads: true,
                writes: false,
                files: FileSet::Pattern("pg_wal/* x".into()),
                seed: 9,
            })),
            Command::Disk(DiskFault::Slow(SlowFault {
                delay_ms: 200,
                fsync: true,
                writes: true,
            })),
            Command::Clear(None),
            Command::Clear(Some(DiskKind::DiskSlow)),
        ];
        for c in all {
            assert_eq!(c.line().parse::<Command>(), Ok(c.clone()), "{}", c.line());
        }
        for bad in [
            "drop",
            "torn now",
            "disk-full {}",
            "clear disk",
            "disk-slow",
            "disk-error {\"probability\":2,\"reads\":true,\"writes\":true,\"files\":\"all\",\"seed\":1}",
        ] {
            assert!(bad.parse::<Command>().is_err(), "{bad}");
        }
    }

    #[test]
    fn remote_commands_quote_their_paths() {
        let slow = Command::Disk(DiskFault::Slow(SlowFault {
            delay_ms: 5,
            fsync: true,
            writes: false,
        }));
        let cmd = ctl_command(Path::new("/run/c.sock"), &slow).render();
        assert!(
            cmd.ends_with(r#"'disk-slow {"delay_ms":5,"fsync":true,"writes":false}'"#),
            "{cmd}"
        );
        let cmd = ctl_command(Path::new("/run/x y.sock"), &Command::Torn).render();
        assert!(cmd.ends_with("--control '/run/x y.sock' torn"), "{cmd}");
        let opts = MountOptions {
            backing: "/var/lib/db.lazy".into(),
            mount: "/var/lib/db; rm -rf /".into(),
            control: "/run/c.sock".into(),
            seed: 3,
        };
        let script = mount_script(&opts, Path::new("/tmp/l.log"));
        assert!(
            script.contains("--mount '/var/lib/db; rm -rf /'"),
            "{script}"
        );
    }
}
