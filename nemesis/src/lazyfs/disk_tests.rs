//! The disk faults through the engine, without a mount (no root needed): the engine's calls
//! on a temporary backing directory, as the FUSE side makes them.

use super::disk::{DiskFault, DiskKind, ErrorFault, FileSet, SlowFault};
use super::engine::{Engine, ROOT};
use proptest::prelude::*;
use std::ffi::OsStr;
use std::io;
use std::time::{Duration, Instant};

fn owner() -> (u32, u32) {
    // SAFETY: getuid and getgid cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::new(dir.path(), 1).expect("engine");
    (dir, engine)
}

fn create(e: &Engine, name: &str) -> io::Result<u64> {
    e.create(ROOT, OsStr::new(name), 0o644, libc::O_EXCL, owner())
        .map(|a| a.ino.0)
}

fn errno_of<T: std::fmt::Debug>(r: io::Result<T>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn a_full_disk_refuses_growth_and_new_names_and_keeps_what_exists() {
    let (dir, e) = engine();
    let ino = create(&e, "a").unwrap();
    assert_eq!(e.write(ino, 0, &[1; 100], false).unwrap(), 100);
    e.fsync(ino).unwrap();
    e.set_disk(DiskFault::Full);
    assert_eq!(
        e.write(ino, 0, &[2; 10], false).unwrap(),
        10,
        "an overwrite"
    );
    assert_eq!(
        e.write(ino, 90, &[3; 20], false).unwrap(),
        10,
        "cut at the size"
    );
    assert_eq!(
        errno_of(e.write(ino, 100, &[4; 5], false)),
        Some(libc::ENOSPC)
    );
    assert_eq!(errno_of(create(&e, "b")), Some(libc::ENOSPC));
    assert_eq!(
        errno_of(e.mkdir(ROOT, OsStr::new("d"), 0o755, owner())),
        Some(libc::ENOSPC)
    );
    assert_eq!(
        errno_of(e.fallocate(ino, 0, 4096, 0)),
        Some(libc::ENOSPC),
        "fallocate past the size"
    );
    assert!(e.fallocate(ino, 0, 50, libc::FALLOC_FL_KEEP_SIZE).is_ok());
    // An existing file still opens with O_CREAT.
    let again = e.create(ROOT, OsStr::new("a"), 0o644, 0, owner()).unwrap();
    assert_eq!(again.ino.0, ino);
    let st = e.statfs().unwrap();
    assert_eq!((st.f_bfree, st.f_bavail), (0, 0));
    // What was written before and the overwrites read back; an fsync still works.
    let mut want = vec![1u8; 100];
    want[..10].fill(2);
    want[90..].fill(3);
    assert_eq!(e.read(ino, 0, 200).unwrap(), want);
    e.fsync(ino).unwrap();
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), want);
    assert!(!dir.path().join("b").exists());
    let status = e.with_disk(e.status());
    assert!(status.disk_full && !status.disk_error && !status.disk_slow);
    assert_eq!(status.enospc, 4);
    e.clear_disk(Some(DiskKind::DiskFull));
    assert_eq!(e.write(ino, 100, &[4; 5], false).unwrap(), 5);
    assert!(create(&e, "b").is_ok());
    assert!(!e.with_disk(e.status()).disk_full);
}

#[test]
fn io_errors_hit_the_matching_files_and_a_failed_fsync_keeps_nothing() {
    let (dir, e) = engine();
    let aof = create(&e, "appendonly.aof").unwrap();
    let rdb = create(&e, "dump.rdb").unwrap();
    e.set_disk(DiskFault::Error(ErrorFault {
        probability: 1.0,
        reads: false,
        writes: true,
        files: FileSet::Pattern("*.aof".into()),
        seed: 3,
    }));
    assert_eq!(errno_of(e.write(aof, 0, b"x", false)), Some(libc::EIO));
    assert_eq!(e.write(rdb, 0, b"rdb", false).unwrap(), 3);
    e.fsync(rdb).unwrap();
    e.clear_disk(None);
    assert_eq!(e.write(aof, 0, b"set k v\n", false).unwrap(), 8);
    e.set_disk(DiskFault::Error(ErrorFault {
        probability: 1.0,
        reads: true,
        writes: true,
        files: FileSet::Pattern("*.aof".into()),
        seed: 3,
    }));
    assert_eq!(errno_of(e.fsync(aof)), Some(libc::EIO));
    assert_eq!(errno_of(e.read(aof, 0, 10)), Some(libc::EIO));
    assert_eq!(e.read(rdb, 0, 10).unwrap(), b"rdb");
    assert_eq!(
        std::fs::read(dir.path().join("appendonly.aof")).unwrap(),
        b"",
        "the failed fsync made nothing durable"
    );
    assert_eq!(e.with_disk(e.status()).eio, 3);
    e.clear_disk(Some(DiskKind::DiskError));
    e.fsync(aof).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("appendonly.aof")).unwrap(),
        b"set k v\n"
    );
}

#[test]
fn a_slow_disk_delays_fsyncs_and_writes_by_at_least_the_delay() {
    let (_dir, e) = engine();
    let ino = create(&e, "f").unwrap();
    e.set_disk(DiskFault::Slow(SlowFault {
        delay_ms: 30,
        fsync: true,
        writes: false,
    }));
    let t = Instant::now();
    e.write(ino, 0, b"w", false).unwrap();
    e.fsync(ino).unwrap();
    e.fsyncdir(ROOT).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(60));
    assert_eq!(e.with_disk(e.status()).delayed, 2, "two fsyncs, no write");
    e.clear_disk(None);
    e.fsync(ino).unwrap();
    assert_eq!(e.with_disk(e.status()).delayed, 2);
}

/// One step of the property test below.
#[derive(Debug, Clone)]
enum Step {
    Write(u64, usize, u8),
    Fsync,
    Full,
    Clear,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u64..12_000, 1usize..5000, any::<u8>()).prop_map(|(o, l, b)| Step::Write(o, l, b)),
        2 => Just(Step::Fsync),
        1 => Just(Step::Full),
        1 => Just(Step::Clear),
    ]
}

proptest! {
    /// Writes with disk-full set and cleared at random moments: the file always reads as a
    /// reference that applies each write as far as the engine said it wrote, a full disk never
    /// grows it, and after a final fsync the backing file holds exactly that.
    #[test]
    fn a_full_disk_never_grows_a_file_and_loses_nothing(steps in prop::collection::vec(step(), 1..40)) {
        let (dir, e) = engine();
        let ino = create(&e, "f").unwrap();
        let mut reference: Vec<u8> = Vec::new();
        let mut full = false;
        for s in steps {
            match s {
                Step::Write(offset, len, byte) => {
                    let r = e.write(ino, offset, &vec![byte; len], false);
                    let size = reference.len() as u64;
                    match r {
                        Ok(n) => {
                            let end = offset as usize + n as usize;
                            prop_assert!(!full || end as u64 <= size.max(offset));
                            prop_assert!(n as usize == len || (full && end as u64 == size));
                            if reference.len() < end {
                                reference.resize(end, 0);
                            }
                            reference[offset as usize..end].fill(byte);
                        }
                        Err(err) => {
                            prop_assert!(full && offset >= size, "{err}");
                            prop_assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
                        }
                    }
                }
                Step::Fsync => e.fsync(ino).unwrap(),
                Step::Full => {
                    e.set_disk(DiskFault::Full);
                    full = true;
                }
                Step::Clear => {
                    e.clear_disk(None);
                    full = false;
                }
            }
            prop_assert_eq!(e.read(ino, 0, 20_000).unwrap(), reference.clone());
        }
        e.fsync(ino).unwrap();
        prop_assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), reference);
    }
}
