//! One file the kernel knows ([`Node`]): its inode number on the mount, the backing file it
//! stands for (an `O_PATH` descriptor, so renames never lose it) and, for a regular file, its
//! data not yet durable.

use super::model::{Durable, Pending, Store};
use super::sys;
use fuser::{FileAttr, FileType, INodeNo};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A backing file's identity: (device, inode).
pub type Key = (u64, u64);

/// The identity of the file `st` describes.
pub fn key_of(st: &libc::stat) -> Key {
    (st.st_dev, st.st_ino)
}

/// A file the kernel knows.
#[derive(Debug)]
pub struct Node {
    /// Its inode number on the mount.
    pub ino: u64,
    /// The backing file's identity.
    pub key: Key,
    /// Its type.
    pub kind: FileType,
    /// An `O_PATH` descriptor of the backing file.
    pub fd: OwnedFd,
    data: Mutex<Data>,
}

/// A regular file's data: a read-write descriptor of the backing file (opened on first use)
/// and what is not durable yet.
#[derive(Debug, Default)]
pub struct Data {
    file: Option<File>,
    /// What is not durable yet; `None` when the file reads as its backing file.
    pub pending: Option<Pending>,
    /// When it was last written, while that is not durable.
    pub mtime: Option<SystemTime>,
}

impl Node {
    /// A node for the backing file `fd`.
    pub fn new(ino: u64, fd: OwnedFd, st: &libc::stat) -> Node {
        Node {
            ino,
            key: key_of(st),
            kind: kind_of(st.st_mode),
            fd,
            data: Mutex::new(Data::default()),
        }
    }

    /// Its data, locked.
    pub fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Its attributes as the mount shows them: the backing file's, with the size and
    /// modification time of data not yet durable.
    pub fn attr(&self) -> io::Result<FileAttr> {
        let st = sys::fstat(self.fd.as_fd())?;
        let mut attr = to_attr(self.ino, &st);
        if self.kind == FileType::RegularFile {
            let data = self.data();
            if let Some(p) = &data.pending {
                attr.size = p.size();
                attr.blocks = attr.blocks.max(p.size().div_ceil(512));
            }
            if let Some(t) = data.mtime {
                attr.mtime = t;
                attr.ctime = t;
            }
        }
        Ok(attr)
    }
}

impl Data {
    /// The backing file, open for reading and writing.
    pub fn file(&mut self, node_fd: &OwnedFd) -> io::Result<&File> {
        if self.file.is_none() {
            let f = File::options()
                .read(true)
                .write(true)
                .open(sys::proc_path(node_fd.as_fd()))?;
            self.file = Some(f);
        }
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    /// The pending state, made from the backing file's length on first change.
    pub fn pending(&mut self, node_fd: &OwnedFd) -> io::Result<(&File, &mut Pending)> {
        self.file(node_fd)?;
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        if self.pending.is_none() {
            self.pending = Some(Pending::new(file.metadata()?.len()));
        }
        match self.pending.as_mut() {
            Some(p) => Ok((file, p)),
            None => Err(io::Error::from_raw_os_error(libc::EIO)),
        }
    }

    /// Makes the data durable (written and fdatasynced into the backing file).
    pub fn sync(&mut self, node_fd: &OwnedFd) -> io::Result<()> {
        let pending = self.pending.take();
        self.mtime = None;
        let file = self.file(node_fd)?;
        if let Some(mut p) = pending {
            if let Err(e) = p.sync(&mut FileStore(file)) {
                self.pending = Some(p);
                return Err(e);
            }
        }
        file.sync_data()
    }

    /// Whether anything is not durable.
    pub fn is_dirty(&self) -> bool {
        self.pending.as_ref().is_some_and(Pending::is_dirty)
    }
}

/// A backing file as the model's durable store.
pub struct FileStore<'a>(pub &'a File);

impl Durable for FileStore<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
}

impl Store for FileStore<'_> {
    fn write_at(&mut self, data: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

/// The type of a file from its mode.
pub fn kind_of(mode: libc::mode_t) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

/// A time from seconds and nanoseconds since the epoch (possibly before it).
fn time(sec: i64, nsec: i64) -> SystemTime {
    let nanos = Duration::from_nanos(nsec.clamp(0, 999_999_999) as u64);
    if sec >= 0 {
        UNIX_EPOCH + Duration::from_secs(sec as u64) + nanos
    } else {
        UNIX_EPOCH - Duration::from_secs(sec.unsigned_abs()) + nanos
    }
}

/// The attributes of a backing file, under inode number `ino`.
pub fn to_attr(ino: u64, st: &libc::stat) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        atime: time(st.st_atime, st.st_atime_nsec),
        mtime: time(st.st_mtime, st.st_mtime_nsec),
        ctime: time(st.st_ctime, st.st_ctime_nsec),
        crtime: UNIX_EPOCH,
        kind: kind_of(st.st_mode),
        perm: (st.st_mode & 0o7777) as u16,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev as u32,
        blksize: st.st_blksize as u32,
        flags: 0,
    }
}

/// A `timespec` for `utimensat`: a time, now, or left alone.
pub fn timespec(t: Option<fuser::TimeOrNow>) -> libc::timespec {
    match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(fuser::TimeOrNow::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(fuser::TimeOrNow::SpecificTime(t)) => {
            let (sec, nsec) = match t.duration_since(UNIX_EPOCH) {
                Ok(d) => (d.as_secs() as i64, i64::from(d.subsec_nanos())),
                Err(e) => {
                    let d = e.duration();
                    let (s, n) = (d.as_secs() as i64, i64::from(d.subsec_nanos()));
                    if n == 0 {
                        (-s, 0)
                    } else {
                        (-s - 1, 1_000_000_000 - n)
                    }
                }
            };
            libc::timespec {
                tv_sec: sec,
                tv_nsec: nsec,
            }
        }
    }
}
