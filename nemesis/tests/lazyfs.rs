//! The lazy filesystem mounted for real (FUSE, so root): files written with std::fs, some
//! synced, then lose-unfsynced or torn, and exactly the durable state must be left; and a
//! real database (SQLite, through python3) on it.

use clusters::testing::require_root;
use nemesis::lazyfs::{self, Command, Control, MountOptions, Status};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A mount in a temporary directory, unmounted when dropped.
struct Mounted {
    _dir: tempfile::TempDir,
    backing: PathBuf,
    mount: PathBuf,
    control: Control,
    thread: Option<JoinHandle<()>>,
}

impl Mounted {
    fn new(seed: u64) -> Mounted {
        let dir = tempfile::tempdir().unwrap();
        let opts = MountOptions {
            backing: dir.path().join("backing"),
            mount: dir.path().join("mount"),
            control: dir.path().join("control.sock"),
            seed,
        };
        fs::create_dir(&opts.backing).unwrap();
        fs::create_dir(&opts.mount).unwrap();
        let (tx, rx) = mpsc::channel();
        let thread = {
            let opts = opts.clone();
            std::thread::spawn(move || {
                let res = lazyfs::mount(&opts, || tx.send(()).unwrap());
                res.unwrap();
            })
        };
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the mount is not ready");
        Mounted {
            _dir: dir,
            backing: opts.backing,
            mount: opts.mount,
            control: Control::new(opts.control),
            thread: Some(thread),
        }
    }

    fn m(&self, p: &str) -> PathBuf {
        self.mount.join(p)
    }

    fn send(&self, c: Command) -> Status {
        self.control.send(c).unwrap()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let res = self.control.send(Command::Unmount);
        if let Some(t) = self.thread.take() {
            if res.is_ok() {
                let _ = t.join();
            } else {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&self.mount)
                    .status();
            }
        }
    }
}

fn fsync(p: &Path) {
    File::open(p).unwrap().sync_all().unwrap();
}

fn put(p: &Path, data: &[u8]) {
    fs::write(p, data).unwrap();
}

/// Every file and directory under `root`, with its contents (directories: `None`; links:
/// their target).
fn tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                out.insert(rel, None);
                stack.push(e.path());
            } else if t.is_symlink() {
                let target = fs::read_link(e.path()).unwrap();
                out.insert(rel, Some(target.display().to_string().into_bytes()));
            } else {
                out.insert(rel, Some(fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

fn expect(entries: &[(&str, Option<&[u8]>)]) -> BTreeMap<String, Option<Vec<u8>>> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec)))
        .collect()
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: FUSE mounts")]
fn lose_unfsynced_leaves_exactly_the_durable_files() {
    require_root();
    let fs_ = Mounted::new(1);
    let m = |p: &str| fs_.m(p);
    // The durable starting point.
    fs::create_dir(m("d")).unwrap();
    put(&m("d/kept"), b"kept");
    put(&m("d/grown"), b"v1");
    put(&m("d/old"), b"old");
    put(&m("d/gone"), b"gone");
    put(&m("d/src"), b"src");
    put(&m("d/dst"), b"dst");
    put(&m("d/trunc"), &[7u8; 10_000]);
    for f in ["kept", "grown", "old", "gone", "src", "dst", "trunc"] {
        fsync(&m(&format!("d/{f}")));
    }
    fsync(&m("d"));
    fsync(&fs_.mount);
    // Not made durable.
    OpenOptions::new()
        .append(true)
        .open(m("d/grown"))
        .unwrap()
        .write_all(b"v2")
        .unwrap();
    fs::rename(m("d/old"), m("d/new")).unwrap();
    fs::remove_file(m("d/gone")).unwrap();
    fs::rename(m("d/src"), m("d/dst")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(m("d/trunc"))
        .unwrap()
        .set_len(10)
        .unwrap();
    fs::create_dir(m("sub")).unwrap();
    put(&m("sub/x"), b"x");
    put(&m("d/fresh"), b"fresh");
    fsync(&m("d/fresh")); // its data, but not its name
    std::os::unix::fs::symlink("kept", m("d/link")).unwrap();
    fs::hard_link(m("d/kept"), m("d/hard")).unwrap();
    // Read your writes.
    assert_eq!(fs::read(m("d/grown")).unwrap(), b"v1v2");
    assert_eq!(fs::read(m("d/dst")).unwrap(), b"src");
    assert_eq!(fs::metadata(m("d/trunc")).unwrap().len(), 10);
    assert!(!m("d/gone").exists());
    let before = fs_.send(Command::Status);
    assert!(
        before.pending_files >= 2 && before.pending_ops >= 7,
        "{before:?}"
    );

    let after = fs_.send(Command::LoseUnfsynced);
    assert_eq!(after, Status::default());
    let durable = expect(&[
        ("d", None),
        ("d/kept", Some(b"kept")),
        ("d/grown", Some(b"v1")),
        ("d/old", Some(b"old")),
        ("d/gone", Some(b"gone")),
        ("d/src", Some(b"src")),
        ("d/dst", Some(b"dst")),
        ("d/trunc", Some(&[7u8; 10_000])),
    ]);
    assert_eq!(tree(&fs_.backing), durable, "the backing directory");
    assert_eq!(tree(&fs_.mount), durable, "the mount");

    // The mount goes on working, and a checkpoint makes everything durable.
    put(&m("d/later"), b"later");
    fs::rename(m("d/kept"), m("d/kept2")).unwrap();
    fs_.send(Command::Checkpoint);
    let now = tree(&fs_.mount);
    assert_eq!(tree(&fs_.backing), now);
    assert_eq!(now["d/later"].as_deref(), Some(&b"later"[..]));
    fs_.send(Command::LoseUnfsynced);
    assert_eq!(tree(&fs_.backing), now, "a checkpoint is durable");
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: FUSE mounts")]
fn torn_keeps_each_page_old_or_new() {
    require_root();
    let fs_ = Mounted::new(7);
    let pages = 64usize;
    let old: Vec<u8> = (0..pages * 4096).map(|i| (i / 4096) as u8).collect();
    put(&fs_.m("f"), &old);
    fsync(&fs_.m("f"));
    fsync(&fs_.mount);
    let new = vec![0xeeu8; (pages + 3) * 4096];
    File::options()
        .write(true)
        .open(fs_.m("f"))
        .unwrap()
        .write_all_at(&new, 0)
        .unwrap();
    fs_.send(Command::Torn);
    let got = fs::read(fs_.backing.join("f")).unwrap();
    assert_eq!(
        fs::read(fs_.m("f")).unwrap(),
        got,
        "mount and backing agree"
    );
    assert!(
        got.len() == old.len() || got.len() == new.len(),
        "{}",
        got.len()
    );
    let (mut olds, mut news) = (0, 0);
    for (i, page) in got.chunks(4096).enumerate() {
        // Past the old end, the durable file reads as zeros.
        let old_page = old
            .get(i * 4096..(i + 1) * 4096)
            .unwrap_or(&[0u8; 4096][..]);
        if old_page == page {
            olds += 1;
        } else if &new[i * 4096..(i + 1) * 4096] == page {
            news += 1;
        } else {
            panic!("page {i} is neither old nor new");
        }
    }
    assert!(olds > 0 && news > 0, "{olds} old pages and {news} new");
}

/// Runs a python3 script with SQLite on `db`; its stdout.
fn sqlite(db: &Path, script: &str) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1], isolation_level=None)\n{script}"
        ))
        .arg(db)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Counts rows and checks integrity.
const COUNT: &str = "assert db.execute('pragma integrity_check').fetchone()[0] == 'ok'\n\
                     print(db.execute('select count(*) from t').fetchone()[0])";

#[test]
#[cfg_attr(not_root, ignore = "needs root: FUSE mounts")]
fn sqlite_keeps_its_commits_only_when_it_syncs() {
    require_root();
    let fs_ = Mounted::new(3);
    let db = fs_.m("data/test.db");
    fs::create_dir(fs_.m("data")).unwrap();
    fsync(&fs_.mount);
    // synchronous=EXTRA: every commit fsyncs the journal, the database and the directory.
    let insert = |sync: &str, from: u32| {
        format!(
            "db.execute('pragma synchronous={sync}')\n\
             db.execute('create table if not exists t (k integer primary key, v text)')\n\
             for i in range({from}, {from} + 50):\n    \
                 db.execute('begin')\n    \
                 db.execute('insert into t values (?, ?)', (i, 'x' * 3000))\n    \
                 db.execute('commit')\n"
        )
    };
    sqlite(&db, &insert("extra", 0));
    fs_.send(Command::LoseUnfsynced);
    assert_eq!(sqlite(&db, COUNT), "50", "synced commits survive");
    // synchronous=OFF: SQLite never syncs, so a power loss takes back every later commit.
    sqlite(&db, &insert("off", 50));
    assert_eq!(sqlite(&db, COUNT), "100", "read your writes");
    let lost = fs_.send(Command::Status);
    assert!(lost.pending_bytes > 0, "{lost:?}");
    fs_.send(Command::LoseUnfsynced);
    assert_eq!(sqlite(&db, COUNT), "50", "unsynced commits are lost");
}

/// The disk faults through a real mount, set and cleared on the control socket: what a
/// program sees through the kernel (ENOSPC, EIO, slower fsyncs), and that clearing them
/// gives the disk back with nothing lost.
#[test]
#[cfg_attr(not_root, ignore = "needs root: FUSE mounts")]
fn disk_faults_reach_programs_through_the_kernel_and_clear() {
    use lazyfs::{DiskFault, DiskKind, ErrorFault, FileSet, SlowFault};
    require_root();
    let fs_ = Mounted::new(1);
    let m = |p: &str| fs_.m(p);
    put(&m("data"), &[5u8; 8192]);
    fsync(&m("data"));
    let status = fs_.send(Command::Disk(DiskFault::Full));
    assert!(status.disk_full, "{status:?}");
    // Growing a file or making one fails; overwriting and reading do not.
    let append = OpenOptions::new()
        .append(true)
        .open(m("data"))
        .unwrap()
        .write_all(b"more");
    assert_eq!(
        append.unwrap_err().raw_os_error(),
        Some(libc::ENOSPC),
        "append on a full disk"
    );
    let made = File::create(m("new"));
    assert_eq!(made.unwrap_err().raw_os_error(), Some(libc::ENOSPC));
    let f = OpenOptions::new().write(true).open(m("data")).unwrap();
    f.write_all_at(&[6u8; 100], 0).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let mut want = vec![5u8; 8192];
    want[..100].fill(6);
    assert_eq!(fs::read(m("data")).unwrap(), want);
    assert_eq!(fs::read(fs_.backing.join("data")).unwrap(), want, "synced");
    let status = fs_.send(Command::Clear(Some(DiskKind::DiskFull)));
    assert!(!status.disk_full && status.enospc >= 2, "{status:?}");
    put(&m("new"), b"fits again");
    fsync(&m("new"));

    // I/O errors on the files a pattern names, reads included.
    fs_.send(Command::Disk(DiskFault::Error(ErrorFault {
        probability: 1.0,
        reads: true,
        writes: true,
        files: FileSet::Pattern("d*".into()),
        seed: 1,
    })));
    let read = fs::read(m("data"));
    assert_eq!(read.unwrap_err().raw_os_error(), Some(libc::EIO));
    assert_eq!(fs::read(m("new")).unwrap(), b"fits again");
    fs_.send(Command::Clear(None));
    assert_eq!(fs::read(m("data")).unwrap(), want);

    // A slow fsync: at least the delay, counted; writes not delayed are not counted.
    let status = fs_.send(Command::Disk(DiskFault::Slow(SlowFault {
        delay_ms: 100,
        fsync: true,
        writes: false,
    })));
    let before = status.delayed;
    let t = std::time::Instant::now();
    put(&m("new"), b"slow");
    fsync(&m("new"));
    assert!(t.elapsed() >= Duration::from_millis(100));
    let status = fs_.send(Command::Status);
    assert!(status.disk_slow && status.delayed > before, "{status:?}");
    let status = fs_.send(Command::Clear(None));
    assert!(!status.disk_slow && !status.disk_error && !status.disk_full);
}
