//! Running a mount in the foreground (`faultline node lazyfs mount`): the FUSE session, the
//! control socket, and an orderly end (everything made durable, then unmounted) on the
//! `unmount` command, SIGTERM, SIGINT or an unmount from outside.

use super::control;
use super::engine::Engine;
use super::fs::LazyFs;
use super::{Command, LazyFsError, Status};
use fuser::{Config, MountOption, Session, SessionACL, SessionUnmounter};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What to mount where.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// The backing directory (the database's files as they are durable).
    pub backing: PathBuf,
    /// The mount point (where the database runs).
    pub mount: PathBuf,
    /// The control socket.
    pub control: PathBuf,
    /// Seed of `torn`'s random choices.
    pub seed: u64,
}

/// Threads answering the kernel: an fsync waiting on the disk does not stop reads.
const THREADS: usize = 4;

/// Mounts, calls `ready` once mounted and listening, and runs until unmounted.
pub fn run(opts: &MountOptions, ready: impl FnOnce()) -> Result<(), LazyFsError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| LazyFsError::Io(format!("{what}: {e}"))
    };
    super::sys::raise_nofile_limit();
    block_signals();
    let engine = Arc::new(Engine::new(&opts.backing, opts.seed).map_err(io("backing directory"))?);
    let listener = control::bind(&opts.control).map_err(io("control socket"))?;
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("faultline-lazyfs".into()),
        MountOption::Subtype("lazyfs".into()),
        MountOption::DefaultPermissions,
        MountOption::Dev,
        MountOption::Suid,
    ];
    config.acl = SessionACL::All;
    config.n_threads = Some(THREADS);
    config.clone_fd = true;
    let mut session = Session::new(LazyFs(engine.clone()), &opts.mount, &config)
        .map_err(io(&format!("mounting {}", opts.mount.display())))?;
    let _ = engine.notifier.set(session.notifier());
    let unmounter = Arc::new(Mutex::new(session.unmount_callable()));
    {
        let (engine, unmounter) = (engine.clone(), unmounter.clone());
        std::thread::spawn(move || {
            control::serve(&listener, |cmd| command(&engine, &unmounter, cmd))
        });
    }
    {
        let (engine, unmounter) = (engine.clone(), unmounter.clone());
        std::thread::spawn(move || {
            wait_for_signal();
            let _ = command(&engine, &unmounter, Command::Unmount);
        });
    }
    ready();
    let res = session.run().map_err(io("FUSE session"));
    // Unmounted from outside: what is pending is written, as an orderly unmount would.
    if let Err(e) = engine.checkpoint() {
        tracing::error!("lazyfs: checkpoint after unmount: {e}");
    }
    let _ = std::fs::remove_file(&opts.control);
    res
}

/// Runs one control command; true when the mount is to end.
fn command(
    engine: &Engine,
    unmounter: &Mutex<SessionUnmounter>,
    cmd: Command,
) -> (Result<Status, String>, bool) {
    let (result, stop) = run_command(engine, unmounter, cmd);
    (result.map(|s| engine.with_disk(s)), stop)
}

/// [`command`], without the disk faults' part of the status.
fn run_command(
    engine: &Engine,
    unmounter: &Mutex<SessionUnmounter>,
    cmd: Command,
) -> (Result<Status, String>, bool) {
    match cmd {
        Command::Disk(fault) => {
            tracing::info!("lazyfs: {fault:?} set");
            engine.set_disk(fault);
            (Ok(engine.status()), false)
        }
        Command::Clear(kind) => {
            engine.clear_disk(kind);
            (Ok(engine.status()), false)
        }
        Command::LoseUnfsynced => (engine.lose_unfsynced(), false),
        Command::Torn => (engine.torn(), false),
        Command::Checkpoint => (engine.checkpoint(), false),
        Command::Status => (Ok(engine.status()), false),
        Command::Unmount => {
            // Heal's unmount: the faults end with the mount, and nothing delays the flush.
            engine.clear_disk(None);
            let status = match engine.checkpoint() {
                Ok(s) => s,
                Err(e) => return (Err(e), false),
            };
            let mut u = unmounter.lock().unwrap_or_else(|e| e.into_inner());
            match u.unmount() {
                Ok(()) => (Ok(status), true),
                Err(e) => (Err(format!("unmount: {e}")), false),
            }
        }
    }
}

/// The signals that end a mount in order.
fn end_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset and sigaddset initialise and fill a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Blocks SIGTERM and SIGINT in this thread and the threads it starts, so that one thread
/// can wait for them.
fn block_signals() {
    let set = end_signals();
    // SAFETY: set is initialised; no old set is asked for.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for SIGTERM or SIGINT.
fn wait_for_signal() {
    let set = end_signals();
    let mut sig = 0;
    // SAFETY: set is initialised and sig a valid out pointer.
    unsafe {
        libc::sigwait(&set, &mut sig);
    }
}
