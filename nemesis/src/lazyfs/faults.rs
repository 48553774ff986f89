//! The fault commands on a mounted filesystem: drop what is not durable (`lose-unfsynced`),
//! keep a random part of it (`torn`), make everything durable (`checkpoint`), and count what
//! is pending (`status`).

use super::disk::DiskKind;
use super::engine::{Engine, Meta};
use super::node::FileStore;
use super::undo::Undo;
use super::Status;
use fuser::INodeNo;
use rand::Rng;
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd};

/// What a fault did.
#[derive(Debug, Default)]
struct Done {
    /// Errors met on the way (the fault went on past each).
    errors: Vec<String>,
    /// (directory inode, name) pairs whose cached lookups the kernel must drop.
    names: Vec<(u64, OsString)>,
    /// Every inode the kernel may have cached.
    inos: Vec<u64>,
}

impl Engine {
    /// Drops everything not durable, as a power loss would: files read as their durable
    /// contents and sizes, pending namespace changes are undone newest first.
    pub fn lose_unfsynced(&self) -> Result<Status, String> {
        self.fault(|meta, done| {
            for node in meta.dirty.values() {
                let mut data = node.data();
                data.pending = None;
                data.mtime = None;
            }
            let undo = meta.journal.lose();
            undo_all(meta, undo, done);
        })
    }

    /// A torn crash: each file keeps, page by page at random, its durable or its current
    /// contents, and either size; a random prefix of the pending namespace changes becomes
    /// durable and the rest is undone.
    pub fn torn(&self) -> Result<Status, String> {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let status = self.fault(|meta, done| {
            for node in meta.dirty.values() {
                let mut data = node.data();
                let Some(mut p) = data.pending.take() else {
                    continue;
                };
                data.mtime = None;
                let res = data.file(&node.fd).and_then(|f| {
                    p.tear(&mut FileStore(f), &mut rng)?;
                    f.sync_data()
                });
                if let Err(e) = res {
                    done.errors.push(format!("tearing inode {}: {e}", node.ino));
                }
            }
            let keep = rng.random_range(0..=meta.journal.len());
            let kept = meta.journal.commit_prefix(keep);
            meta.commit(kept);
            let undo = meta.journal.lose();
            undo_all(meta, undo, done);
        });
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = rng;
        status
    }

    /// Makes everything durable (heal does this before unmounting).
    pub fn checkpoint(&self) -> Result<Status, String> {
        self.fault(|meta, done| {
            for node in meta.dirty.values() {
                if let Err(e) = node.data().sync(&node.fd) {
                    done.errors.push(format!("syncing inode {}: {e}", node.ino));
                }
            }
            let all = meta.journal.len();
            let committed = meta.journal.commit_prefix(all);
            meta.commit(committed);
            if let Err(e) = super::sys::syncfs(self.root.fd.as_fd()) {
                done.errors.push(format!("syncfs: {e}"));
            }
        })
    }

    /// `status` with the disk faults set now and what they did.
    pub fn with_disk(&self, mut status: Status) -> Status {
        let disk = self.disk();
        let active = disk.active();
        status.disk_full = active.contains(&DiskKind::DiskFull);
        status.disk_error = active.contains(&DiskKind::DiskError);
        status.disk_slow = active.contains(&DiskKind::DiskSlow);
        status.enospc = disk.injected.enospc;
        status.eio = disk.injected.eio;
        status.delayed = disk.injected.delayed;
        status
    }

    /// What is pending.
    pub fn status(&self) -> Status {
        let meta = self.meta();
        status_of(&meta)
    }

    /// Runs a fault under the lock, then tidies up (the grave, forgotten nodes) and tells
    /// the kernel to drop what it cached, after the lock is released.
    fn fault(&self, f: impl FnOnce(&mut Meta, &mut Done)) -> Result<Status, String> {
        let mut done = Done::default();
        let status = {
            let mut meta = self.meta();
            f(&mut meta, &mut done);
            meta.dirty.retain(|_, n| n.data().is_dirty());
            meta.close_grave(&self.root);
            meta.sweep();
            done.inos = meta.inos();
            status_of(&meta)
        };
        if let Some(notifier) = self.notifier.get() {
            for (dir, name) in &done.names {
                let _ = notifier.inval_entry(INodeNo(*dir), name);
            }
            for ino in &done.inos {
                let _ = notifier.inval_inode(INodeNo(*ino), 0, 0);
            }
        }
        if done.errors.is_empty() {
            Ok(status)
        } else {
            Err(done.errors.join("; "))
        }
    }
}

/// Undoes journaled changes, newest first, noting the names the kernel must forget.
fn undo_all(meta: &mut Meta, undo: Vec<Undo>, done: &mut Done) {
    for u in undo {
        for place in u.places() {
            if let Some(ino) = meta.ino_of(&place.dir.key) {
                done.names.push((ino, place.name.clone()));
            }
        }
        let res = match meta.grave_fd() {
            Some(g) => u.undo(g.as_fd()),
            // No entry refers to the grave when there is none; any directory will do.
            // SAFETY: AT_FDCWD is valid for *at calls and is never closed.
            None => u.undo(unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }),
        };
        if let Err(e) = res {
            done.errors.push(format!("undoing {u:?}: {e}"));
        }
    }
}

/// Counts what is pending.
fn status_of(meta: &Meta) -> Status {
    let mut s = Status {
        pending_ops: meta.journal.len() as u64,
        ..Status::default()
    };
    for node in meta.dirty.values() {
        let data = node.data();
        if let Some(p) = data.pending.as_ref().filter(|p| p.is_dirty()) {
            s.pending_files += 1;
            s.pending_bytes += p.pending_bytes();
        }
    }
    s
}
