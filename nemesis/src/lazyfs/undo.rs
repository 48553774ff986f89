//! Namespace changes not yet durable, as they are journaled ([`Undo`]): each is applied to
//! the backing directory at once, and what undoing it needs is kept. A removed name (unlink,
//! rmdir, or the target a rename replaced) is not removed but moved into the grave, a hidden
//! directory of the backing directory, until the removal is durable.

use super::node::Node;
use super::sys;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

/// A name in a directory.
#[derive(Debug, Clone)]
pub struct Place {
    /// The directory.
    pub dir: Arc<Node>,
    /// The name.
    pub name: OsString,
}

/// One journaled namespace change.
#[derive(Debug)]
pub enum Undo {
    /// A name made for a new file, symbolic link, device, hard link (undo: unlink it).
    Created(Place),
    /// A directory made (undo: remove it).
    MadeDir(Place),
    /// A name removed, its file kept in the grave under `grave` (undo: move it back).
    Removed {
        /// Where it was.
        place: Place,
        /// Its name in the grave.
        grave: OsString,
    },
    /// A rename; with `exchange`, of two names swapped (undo: rename back, and bring back
    /// the target it replaced, from the grave).
    Renamed {
        /// The old name.
        from: Place,
        /// The new name.
        to: Place,
        /// The replaced target's name in the grave.
        displaced: Option<OsString>,
        /// `RENAME_EXCHANGE`.
        exchange: bool,
    },
}

impl Undo {
    /// The directories (by backing identity) whose fsync makes this durable.
    pub fn dirs(&self) -> Vec<super::node::Key> {
        match self {
            Undo::Created(p) | Undo::MadeDir(p) | Undo::Removed { place: p, .. } => {
                vec![p.dir.key]
            }
            Undo::Renamed { from, to, .. } => vec![from.dir.key, to.dir.key],
        }
    }

    /// The names it changed, to be invalidated in the kernel's cache after an undo.
    pub fn places(&self) -> Vec<&Place> {
        match self {
            Undo::Created(p) | Undo::MadeDir(p) | Undo::Removed { place: p, .. } => vec![p],
            Undo::Renamed { from, to, .. } => vec![from, to],
        }
    }

    /// Makes the change durable: deletes what it keeps in the grave.
    pub fn commit(self, grave: BorrowedFd<'_>) -> io::Result<()> {
        match self {
            Undo::Removed { grave: g, .. }
            | Undo::Renamed {
                displaced: Some(g), ..
            } => bury(grave, &g),
            _ => Ok(()),
        }
    }

    /// Undoes the change in the backing directory.
    pub fn undo(&self, grave: BorrowedFd<'_>) -> io::Result<()> {
        match self {
            Undo::Created(p) => sys::unlinkat(p.dir.fd.as_fd(), &p.name, false),
            Undo::MadeDir(p) => sys::unlinkat(p.dir.fd.as_fd(), &p.name, true),
            Undo::Removed { place, grave: g } => {
                sys::renameat2(grave, g, place.dir.fd.as_fd(), &place.name, 0)
            }
            Undo::Renamed {
                from,
                to,
                displaced,
                exchange,
            } => {
                let flags = if *exchange { libc::RENAME_EXCHANGE } else { 0 };
                sys::renameat2(
                    to.dir.fd.as_fd(),
                    &to.name,
                    from.dir.fd.as_fd(),
                    &from.name,
                    flags,
                )?;
                match displaced {
                    Some(g) => sys::renameat2(grave, g, to.dir.fd.as_fd(), &to.name, 0),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Deletes `name` from the grave for good (a file, or an empty directory).
fn bury(grave: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let st = sys::lstatat(grave, name)?;
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    sys::unlinkat(grave, name, is_dir)
}
