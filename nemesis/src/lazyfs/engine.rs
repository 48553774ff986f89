//! The filesystem's state and every operation on it, in terms of backing files and the
//! model ([`Engine`]); `fs` only turns FUSE requests into these calls and their results into
//! replies. Lock order: `meta`, then a node's data.

use super::disk::{DiskFault, DiskKind, DiskState, Io};
use super::model::Journal;
use super::node::{key_of, FileStore, Key, Node};
use super::sys;
use super::undo::{Place, Undo};
use crate::FaultRng;
use fuser::{FileAttr, FileType};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirEntryExt, FileExt};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

/// The hidden directory in the backing directory that holds removed names until their
/// removal is durable; it exists only while some removal is pending.
pub const GRAVE: &str = ".faultline-lazyfs-grave";

/// The inode number of the mount's root.
pub const ROOT: u64 = 1;

/// Seconds the kernel may cache attributes and names: fault commands invalidate what they
/// change, so this only saves lookups.
pub const TTL_SECS: u64 = 1;

/// An errno as an error.
pub fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// One entry of a directory listing.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Inode number (the mount's if known, else the backing one).
    pub ino: u64,
    /// Type.
    pub kind: FileType,
    /// Name.
    pub name: OsString,
}

/// Everything under the `meta` lock.
#[derive(Debug)]
pub(super) struct Meta {
    nodes: HashMap<u64, (Arc<Node>, u64)>,
    by_key: HashMap<Key, u64>,
    next_ino: u64,
    pub(super) journal: Journal<Undo, Key>,
    /// Regular files that may hold data not durable yet.
    pub(super) dirty: HashMap<u64, Arc<Node>>,
    grave: Option<OwnedFd>,
    grave_seq: u64,
    listings: HashMap<u64, Arc<Vec<Listed>>>,
    next_fh: u64,
}

/// The lazy filesystem's state.
#[derive(Debug)]
pub struct Engine {
    pub(super) root: Arc<Node>,
    pub(super) meta: Mutex<Meta>,
    pub(super) rng: Mutex<FaultRng>,
    /// Tells the kernel to forget what it cached (set once mounted).
    pub(super) notifier: OnceLock<fuser::Notifier>,
    /// The disk faults set now (a leaf lock: taken last, held briefly).
    pub(super) disk: Mutex<DiskState>,
}

impl Engine {
    /// The filesystem over `backing`; `seed` draws the torn writes. A grave left by an
    /// earlier mount that died is deleted (what it held was removed before that crash).
    pub fn new(backing: &Path, seed: u64) -> io::Result<Engine> {
        let grave = backing.join(GRAVE);
        if grave.exists() {
            tracing::warn!("removing {} left by an earlier mount", grave.display());
            std::fs::remove_dir_all(&grave)?;
        }
        let cwd = std::fs::File::open("/")?;
        let fd = sys::openat(
            cwd.as_fd(),
            backing.as_os_str(),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )?;
        let st = sys::fstat(fd.as_fd())?;
        let root = Arc::new(Node::new(ROOT, fd, &st));
        let meta = Meta {
            nodes: HashMap::from([(ROOT, (root.clone(), 1))]),
            by_key: HashMap::from([(root.key, ROOT)]),
            next_ino: ROOT + 1,
            journal: Journal::default(),
            dirty: HashMap::new(),
            grave: None,
            grave_seq: 0,
            listings: HashMap::new(),
            next_fh: 1,
        };
        Ok(Engine {
            root,
            meta: Mutex::new(meta),
            rng: Mutex::new(crate::seeded(seed)),
            notifier: OnceLock::new(),
            disk: Mutex::new(DiskState::default()),
        })
    }

    pub(super) fn meta(&self) -> MutexGuard<'_, Meta> {
        self.meta.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node of `ino`.
    pub fn node(&self, ino: u64) -> io::Result<Arc<Node>> {
        self.meta().node(ino)
    }

    /// The disk faults, locked.
    pub(super) fn disk(&self) -> MutexGuard<'_, DiskState> {
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets a disk fault (see [`super::disk`]).
    pub fn set_disk(&self, fault: DiskFault) {
        self.disk().set(fault);
    }

    /// Clears a disk fault, or all of them.
    pub fn clear_disk(&self, kind: Option<DiskKind>) {
        self.disk().clear(kind);
    }

    /// Waits as long as disk-slow says an operation `io` does (no lock held).
    fn wait_if_slow(&self, io: Io) {
        let delay = self.disk().delay(io);
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
    }

    /// EIO when disk-error fails this operation `io` on `node`.
    fn inject_error(&self, node: &Node, io: Io) -> io::Result<()> {
        let path = if self.disk().needs_path(io, node.key) {
            self.path_in_mount(node)
        } else {
            None
        };
        if self.disk().fails(io, node.key, path.as_deref()) {
            return Err(errno(libc::EIO));
        }
        Ok(())
    }

    /// The path of `node` in the mount, without a leading `/` (from its backing file's
    /// path under the backing directory), if it can be found.
    fn path_in_mount(&self, node: &Node) -> Option<String> {
        let root = std::fs::read_link(sys::proc_path(self.root.fd.as_fd())).ok()?;
        let path = std::fs::read_link(sys::proc_path(node.fd.as_fd())).ok()?;
        Some(path.strip_prefix(&root).ok()?.display().to_string())
    }

    /// Whether `name` in `dir` is the grave, which the mount does not show.
    fn hidden(dir: &Node, name: &OsStr) -> bool {
        dir.ino == ROOT && name == GRAVE
    }

    /// `lookup`: the attributes of `parent/name`, counted as one more reference.
    pub fn lookup(&self, parent: u64, name: &OsStr) -> io::Result<FileAttr> {
        let mut meta = self.meta();
        let dir = meta.node(parent)?;
        if Self::hidden(&dir, name) {
            return Err(errno(libc::ENOENT));
        }
        let node = meta.remember(&dir, name)?;
        node.attr()
    }

    /// `forget`: the kernel dropped `n` references.
    pub fn forget(&self, ino: u64, n: u64) {
        let mut meta = self.meta();
        meta.forget(ino, n);
    }

    /// `getattr`.
    pub fn getattr(&self, ino: u64) -> io::Result<FileAttr> {
        self.node(ino)?.attr()
    }

    /// `setattr`: mode, owner and times go to the backing file at once; a size change is
    /// pending like a write.
    #[allow(clippy::too_many_arguments)]
    pub fn setattr(
        &self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
    ) -> io::Result<FileAttr> {
        let node = self.node(ino)?;
        if let Some(mode) = mode {
            if node.kind != FileType::Symlink {
                std::fs::set_permissions(
                    sys::proc_path(node.fd.as_fd()),
                    std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777),
                )?;
            }
        }
        if uid.is_some() || gid.is_some() {
            sys::chown_fd(node.fd.as_fd(), uid, gid)?;
        }
        if let Some(size) = size {
            if node.kind != FileType::RegularFile {
                return Err(errno(libc::EISDIR));
            }
            self.mark_dirty(&node);
            let mut data = node.data();
            let (_, p) = data.pending(&node.fd)?;
            p.truncate(size);
            data.mtime = Some(SystemTime::now());
        }
        if (atime.is_some() || mtime.is_some()) && node.kind != FileType::Symlink {
            sys::utimens_fd(
                node.fd.as_fd(),
                [super::node::timespec(atime), super::node::timespec(mtime)],
            )?;
            if mtime.is_some() {
                node.data().mtime = None;
            }
        }
        node.attr()
    }

    /// `readlink`.
    pub fn readlink(&self, ino: u64) -> io::Result<Vec<u8>> {
        sys::readlink_fd(self.node(ino)?.fd.as_fd())
    }

    /// Makes a new name in `parent` with `make` (which creates `parent/name` in the backing
    /// directory), gives it to the caller's user and group, and journals it.
    fn make(
        &self,
        parent: u64,
        name: &OsStr,
        owner: (u32, u32),
        is_dir: bool,
        make: impl FnOnce(&Node) -> io::Result<()>,
    ) -> io::Result<FileAttr> {
        self.disk().allocate().map_err(errno)?;
        let mut meta = self.meta();
        let dir = meta.node(parent)?;
        if Self::hidden(&dir, name) {
            return Err(errno(libc::EEXIST));
        }
        make(&dir)?;
        let node = meta.remember(&dir, name)?;
        let dir_st = sys::fstat(dir.fd.as_fd())?;
        let gid = (dir_st.st_mode & libc::S_ISGID == 0).then_some(owner.1);
        if let Err(e) = sys::chown_fd(node.fd.as_fd(), Some(owner.0), gid) {
            tracing::warn!("lazyfs: chown of a new file: {e}");
        }
        let place = Place {
            dir: dir.clone(),
            name: name.to_os_string(),
        };
        let undo = if is_dir {
            Undo::MadeDir(place)
        } else {
            Undo::Created(place)
        };
        let dirs = undo.dirs();
        meta.journal.record(undo, dirs);
        node.attr()
    }

    /// `mkdir`.
    pub fn mkdir(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        owner: (u32, u32),
    ) -> io::Result<FileAttr> {
        self.make(parent, name, owner, true, |d| {
            sys::mkdirat(d.fd.as_fd(), name, mode)
        })
    }

    /// `mknod` (regular files, FIFOs, sockets, devices).
    pub fn mknod(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        owner: (u32, u32),
    ) -> io::Result<FileAttr> {
        self.make(parent, name, owner, false, |d| {
            sys::mknodat(d.fd.as_fd(), name, mode, u64::from(rdev))
        })
    }

    /// `symlink`.
    pub fn symlink(
        &self,
        parent: u64,
        name: &OsStr,
        target: &Path,
        owner: (u32, u32),
    ) -> io::Result<FileAttr> {
        self.make(parent, name, owner, false, |d| {
            sys::symlinkat(target.as_os_str(), d.fd.as_fd(), name)
        })
    }

    /// `create`: a new regular file (`O_EXCL` as asked; an existing file is opened).
    pub fn create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        owner: (u32, u32),
    ) -> io::Result<FileAttr> {
        // On a full disk an existing file still opens; only a new one needs space.
        if flags & libc::O_EXCL == 0 && self.disk().is_full() {
            if let Ok(attr) = self.lookup(parent, name) {
                return Ok(attr);
            }
        }
        let made = self.make(parent, name, owner, false, |d| {
            sys::openat(
                d.fd.as_fd(),
                name,
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
                mode & 0o7777,
            )
            .map(drop)
        });
        match made {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && flags & libc::O_EXCL == 0 => {
                self.lookup(parent, name)
            }
            other => other,
        }
    }

    /// `link`: a new name for `ino`.
    pub fn link(&self, ino: u64, parent: u64, name: &OsStr) -> io::Result<FileAttr> {
        let node = self.node(ino)?;
        let attr = self.make(parent, name, (u32::MAX, u32::MAX), false, |d| {
            sys::link_fd(node.fd.as_fd(), d.fd.as_fd(), name)
        })?;
        Ok(attr)
    }

    /// `unlink` and `rmdir`: the name moves into the grave until its removal is durable.
    pub fn remove(&self, parent: u64, name: &OsStr, is_dir: bool) -> io::Result<()> {
        let mut meta = self.meta();
        let dir = meta.node(parent)?;
        if Self::hidden(&dir, name) {
            return Err(errno(libc::ENOENT));
        }
        let st = sys::lstatat(dir.fd.as_fd(), name)?;
        let dir_kind = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        match (is_dir, dir_kind) {
            (true, false) => return Err(errno(libc::ENOTDIR)),
            (false, true) => return Err(errno(libc::EISDIR)),
            (true, true) if !is_empty_dir(&dir, name)? => return Err(errno(libc::ENOTEMPTY)),
            _ => {}
        }
        let grave = meta.bury(&dir, name)?;
        let undo = Undo::Removed {
            place: Place {
                dir,
                name: name.to_os_string(),
            },
            grave,
        };
        let dirs = undo.dirs();
        meta.journal.record(undo, dirs);
        Ok(())
    }

    /// `rename`, with `RENAME_NOREPLACE` or `RENAME_EXCHANGE` (other flags: EINVAL). A
    /// replaced target moves into the grave until the rename is durable.
    pub fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: u32,
    ) -> io::Result<()> {
        let exchange = flags == libc::RENAME_EXCHANGE;
        if flags != 0 && flags != libc::RENAME_NOREPLACE && !exchange {
            return Err(errno(libc::EINVAL));
        }
        let mut meta = self.meta();
        let from = meta.node(parent)?;
        let to = meta.node(new_parent)?;
        if Self::hidden(&from, name) || Self::hidden(&to, new_name) {
            return Err(errno(libc::EPERM));
        }
        let src = sys::lstatat(from.fd.as_fd(), name)?;
        let displaced = if exchange {
            sys::renameat2(from.fd.as_fd(), name, to.fd.as_fd(), new_name, flags)?;
            None
        } else {
            match sys::lstatat(to.fd.as_fd(), new_name) {
                Ok(dst) if key_of(&dst) == key_of(&src) => return Ok(()),
                Ok(dst) => {
                    if flags == libc::RENAME_NOREPLACE {
                        return Err(errno(libc::EEXIST));
                    }
                    check_replace(&src, &dst, &to, new_name)?;
                    let g = meta.bury(&to, new_name)?;
                    let moved = sys::renameat2(from.fd.as_fd(), name, to.fd.as_fd(), new_name, 0);
                    if let Err(e) = moved {
                        meta.unbury(&g, &to, new_name);
                        return Err(e);
                    }
                    Some(g)
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    sys::renameat2(from.fd.as_fd(), name, to.fd.as_fd(), new_name, 0)?;
                    None
                }
                Err(e) => return Err(e),
            }
        };
        let undo = Undo::Renamed {
            from: Place {
                dir: from,
                name: name.to_os_string(),
            },
            to: Place {
                dir: to,
                name: new_name.to_os_string(),
            },
            displaced,
            exchange,
        };
        let dirs = undo.dirs();
        meta.journal.record(undo, dirs);
        Ok(())
    }

    /// Notes that `node` may get data not durable yet (before its data is locked).
    fn mark_dirty(&self, node: &Arc<Node>) {
        self.meta().dirty.insert(node.ino, node.clone());
    }

    /// `read`: what the file reads as now, cached data over the backing file.
    pub fn read(&self, ino: u64, offset: u64, size: u32) -> io::Result<Vec<u8>> {
        let node = self.node(ino)?;
        self.inject_error(&node, Io::Read)?;
        let mut data = node.data();
        if data.pending.is_some() {
            let (file, p) = data.pending(&node.fd)?;
            return p.read(offset, u64::from(size), &FileStore(file));
        }
        let file = data.file(&node.fd)?;
        let mut buf = vec![0u8; size as usize];
        let mut done = 0;
        while done < buf.len() {
            let n = file.read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        buf.truncate(done);
        Ok(buf)
    }

    /// `write`: into the cache; durable at once when `sync` (an `O_SYNC`/`O_DSYNC` file).
    /// On a full disk only what fits in the file's current size is written.
    pub fn write(&self, ino: u64, offset: u64, bytes: &[u8], sync: bool) -> io::Result<u32> {
        let node = self.node(ino)?;
        self.wait_if_slow(Io::Write);
        self.inject_error(&node, Io::Write)?;
        self.mark_dirty(&node);
        let mut data = node.data();
        let (file, p) = data.pending(&node.fd)?;
        let n = self
            .disk()
            .writable(offset, bytes.len(), p.size())
            .map_err(errno)?;
        p.write(offset, &bytes[..n], &FileStore(file))?;
        data.mtime = Some(SystemTime::now());
        if sync {
            data.sync(&node.fd)?;
        }
        Ok(n as u32)
    }

    /// `fsync`/`fdatasync` of a file: its data and size become durable.
    /// A failed one (disk-error) makes nothing durable.
    pub fn fsync(&self, ino: u64) -> io::Result<()> {
        let node = self.node(ino)?;
        self.wait_if_slow(Io::Fsync);
        match node.kind {
            FileType::RegularFile => {}
            FileType::Directory => return sys::fsync_path(node.fd.as_fd()),
            _ => return Ok(()),
        }
        self.inject_error(&node, Io::Fsync)?;
        node.data().sync(&node.fd)?;
        let mut meta = self.meta();
        if !node.data().is_dirty() {
            meta.dirty.remove(&ino);
            meta.drop_if_unused(ino);
        }
        Ok(())
    }

    /// `fsyncdir`: every namespace change up to the last one in this directory becomes
    /// durable (see [`Journal`]).
    pub fn fsyncdir(&self, ino: u64) -> io::Result<()> {
        self.wait_if_slow(Io::Fsync);
        let mut meta = self.meta();
        let dir = meta.node(ino)?;
        let done = meta.journal.commit_dir(&dir.key);
        meta.commit(done);
        drop(meta);
        sys::fsync_path(dir.fd.as_fd())
    }

    /// `fallocate`: mode 0 grows the file (pending like a write), `KEEP_SIZE` reserves space
    /// in the backing file, a punched hole or zeroed range is a write of zeros.
    pub fn fallocate(&self, ino: u64, offset: u64, len: u64, mode: i32) -> io::Result<()> {
        let node = self.node(ino)?;
        self.mark_dirty(&node);
        let mut data = node.data();
        let (file, p) = data.pending(&node.fd)?;
        let zero = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE;
        if mode & zero != 0 {
            if mode & !(zero | libc::FALLOC_FL_KEEP_SIZE) != 0 {
                return Err(errno(libc::EOPNOTSUPP));
            }
            let end = offset.saturating_add(len);
            let grows = mode & libc::FALLOC_FL_ZERO_RANGE != 0
                && mode & libc::FALLOC_FL_KEEP_SIZE == 0
                && end > p.size();
            if grows {
                self.disk().reserve(end, p.size()).map_err(errno)?;
                p.truncate(end);
            }
            return p.zero_range(offset, len, &FileStore(file));
        }
        if mode == 0 || mode == libc::FALLOC_FL_KEEP_SIZE {
            let end = offset.saturating_add(len);
            self.disk().reserve(end, p.size()).map_err(errno)?;
        }
        match mode {
            0 => {
                sys::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, len)?;
                let end = offset.saturating_add(len);
                if end > p.size() {
                    p.truncate(end);
                }
                Ok(())
            }
            libc::FALLOC_FL_KEEP_SIZE => sys::fallocate(file.as_raw_fd(), mode, offset, len),
            _ => Err(errno(libc::EOPNOTSUPP)),
        }
    }

    /// `opendir`: lists the directory once (its listing for `readdir`), as a handle.
    pub fn opendir(&self, ino: u64) -> io::Result<u64> {
        let dir = self.node(ino)?;
        let mut listed = vec![
            Listed {
                ino,
                kind: FileType::Directory,
                name: ".".into(),
            },
            Listed {
                ino: ROOT,
                kind: FileType::Directory,
                name: "..".into(),
            },
        ];
        let mut backing = Vec::new();
        for e in std::fs::read_dir(sys::proc_path(dir.fd.as_fd()))? {
            let e = e?;
            if Self::hidden(&dir, &e.file_name()) {
                continue;
            }
            let kind = e.file_type().ok().and_then(FileType::from_std);
            backing.push((
                e.ino(),
                kind.unwrap_or(FileType::RegularFile),
                e.file_name(),
            ));
        }
        let mut meta = self.meta();
        for (bino, kind, name) in backing {
            let ino = meta.by_key.get(&(dir.key.0, bino)).copied().unwrap_or(bino);
            listed.push(Listed { ino, kind, name });
        }
        let fh = meta.next_fh;
        meta.next_fh += 1;
        meta.listings.insert(fh, Arc::new(listed));
        Ok(fh)
    }

    /// The listing of an open directory handle.
    pub fn listing(&self, fh: u64) -> io::Result<Arc<Vec<Listed>>> {
        self.meta()
            .listings
            .get(&fh)
            .cloned()
            .ok_or_else(|| errno(libc::EBADF))
    }

    /// `releasedir`.
    pub fn releasedir(&self, fh: u64) {
        self.meta().listings.remove(&fh);
    }

    /// `statfs` of the backing filesystem (no free block while the disk is full).
    pub fn statfs(&self) -> io::Result<libc::statvfs> {
        let mut st = sys::fstatvfs(self.root.fd.as_fd())?;
        if self.disk().is_full() {
            st.f_bfree = 0;
            st.f_bavail = 0;
        }
        Ok(st)
    }
}

/// Whether `dir/name` is an empty directory.
fn is_empty_dir(dir: &Node, name: &OsStr) -> io::Result<bool> {
    let fd = sys::openat(
        dir.fd.as_fd(),
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )?;
    Ok(std::fs::read_dir(sys::proc_path(fd.as_fd()))?
        .next()
        .is_none())
}

/// Whether `src` may replace `dst` (`to/new_name`) in a rename, as rename(2) says.
fn check_replace(
    src: &libc::stat,
    dst: &libc::stat,
    to: &Node,
    new_name: &OsStr,
) -> io::Result<()> {
    let is_dir = |st: &libc::stat| st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    match (is_dir(src), is_dir(dst)) {
        (true, false) => Err(errno(libc::ENOTDIR)),
        (false, true) => Err(errno(libc::EISDIR)),
        (true, true) if !is_empty_dir(to, new_name)? => Err(errno(libc::ENOTEMPTY)),
        _ => Ok(()),
    }
}

impl Meta {
    /// The node of `ino`.
    pub(super) fn node(&self, ino: u64) -> io::Result<Arc<Node>> {
        self.nodes
            .get(&ino)
            .map(|(n, _)| n.clone())
            .ok_or_else(|| errno(libc::ESTALE))
    }

    /// The node of `dir/name`, made if the kernel did not know it, with one more reference.
    fn remember(&mut self, dir: &Node, name: &OsStr) -> io::Result<Arc<Node>> {
        let st = sys::lstatat(dir.fd.as_fd(), name)?;
        if let Some(&ino) = self.by_key.get(&key_of(&st)) {
            if let Some((node, lookups)) = self.nodes.get_mut(&ino) {
                *lookups += 1;
                return Ok(node.clone());
            }
        }
        let fd = sys::open_path(dir.fd.as_fd(), name)?;
        let st = sys::fstat(fd.as_fd())?;
        let key = key_of(&st);
        if let Some(&ino) = self.by_key.get(&key) {
            if let Some((node, lookups)) = self.nodes.get_mut(&ino) {
                *lookups += 1;
                return Ok(node.clone());
            }
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let node = Arc::new(Node::new(ino, fd, &st));
        self.nodes.insert(ino, (node.clone(), 1));
        self.by_key.insert(key, ino);
        Ok(node)
    }

    /// Drops `n` of the kernel's references to `ino`.
    fn forget(&mut self, ino: u64, n: u64) {
        if let Some((_, lookups)) = self.nodes.get_mut(&ino) {
            *lookups = lookups.saturating_sub(n);
        }
        self.drop_if_unused(ino);
    }

    /// Forgets `ino` when the kernel holds no reference and it holds no pending data.
    pub(super) fn drop_if_unused(&mut self, ino: u64) {
        let unused = ino != ROOT
            && !self.dirty.contains_key(&ino)
            && self.nodes.get(&ino).is_some_and(|(_, l)| *l == 0);
        if unused {
            if let Some((node, _)) = self.nodes.remove(&ino) {
                if self.by_key.get(&node.key) == Some(&ino) {
                    self.by_key.remove(&node.key);
                }
            }
        }
    }

    /// Forgets every node the kernel holds no reference to.
    pub(super) fn sweep(&mut self) {
        let inos: Vec<u64> = self.nodes.keys().copied().collect();
        for ino in inos {
            self.drop_if_unused(ino);
        }
    }

    /// Every inode number the kernel may hold.
    pub(super) fn inos(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// The mount's inode number of the backing directory `key`, if the kernel knows it.
    pub(super) fn ino_of(&self, key: &Key) -> Option<u64> {
        self.by_key.get(key).copied()
    }

    /// The grave, made if there is none.
    fn grave(&mut self, root: &Node) -> io::Result<&OwnedFd> {
        if self.grave.is_none() {
            match sys::mkdirat(root.fd.as_fd(), OsStr::new(GRAVE), 0o700) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
            self.grave = Some(sys::open_path(root.fd.as_fd(), OsStr::new(GRAVE))?);
        }
        self.grave.as_ref().ok_or_else(|| errno(libc::EIO))
    }

    /// The grave's descriptor, if there is one.
    pub(super) fn grave_fd(&self) -> Option<&OwnedFd> {
        self.grave.as_ref()
    }

    /// Removes the grave when nothing is pending (so that the backing directory holds only
    /// what is durable).
    pub(super) fn close_grave(&mut self, root: &Node) {
        if self.journal.is_empty() && self.grave.take().is_some() {
            if let Err(e) = sys::unlinkat(root.fd.as_fd(), OsStr::new(GRAVE), true) {
                tracing::warn!("lazyfs: cannot remove the grave: {e}");
            }
        }
    }

    /// Moves `dir/name` into the grave; its name there.
    fn bury(&mut self, dir: &Node, name: &OsStr) -> io::Result<OsString> {
        self.grave_seq += 1;
        let g = OsString::from(self.grave_seq.to_string());
        let root = self.root_node()?;
        let grave = self.grave(&root)?;
        sys::renameat2(dir.fd.as_fd(), name, grave.as_fd(), &g, 0)?;
        Ok(g)
    }

    /// Moves `g` back out of the grave to `dir/name` (a failed rename's target).
    fn unbury(&mut self, g: &OsStr, dir: &Node, name: &OsStr) {
        if let Some(grave) = &self.grave {
            if let Err(e) = sys::renameat2(grave.as_fd(), g, dir.fd.as_fd(), name, 0) {
                tracing::error!("lazyfs: cannot restore a rename's target: {e}");
            }
        }
    }

    fn root_node(&self) -> io::Result<Arc<Node>> {
        self.node(ROOT)
    }

    /// Makes journaled changes durable: what they kept in the grave is deleted.
    pub(super) fn commit(&mut self, done: Vec<Undo>) {
        let Some(grave) = self.grave.as_ref() else {
            return;
        };
        for u in done {
            if let Err(e) = u.commit(grave.as_fd()) {
                tracing::warn!("lazyfs: cannot delete a removed file from the grave: {e}");
            }
        }
    }
}
