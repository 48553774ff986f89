//! The control channel: a Unix socket on which the mounted filesystem takes one command per
//! connection (a line) and answers one JSON line ([`Reply`]) once the command is done.

use super::{Command, LazyFsError, Reply, Status};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a client waits for an answer (a checkpoint may write a lot).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// A client of a mounted filesystem's control socket.
#[derive(Debug, Clone)]
pub struct Control {
    socket: PathBuf,
}

impl Control {
    /// The filesystem listening on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Control {
        Control {
            socket: socket.into(),
        }
    }

    /// Sends `command` and waits until it is done.
    pub fn send(&self, command: Command) -> Result<Status, LazyFsError> {
        let io = |e: std::io::Error| LazyFsError::Control {
            socket: self.socket.display().to_string(),
            message: e.to_string(),
        };
        let mut stream = UnixStream::connect(&self.socket).map_err(io)?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(io)?;
        stream
            .write_all(format!("{}\n", command.line()).as_bytes())
            .map_err(io)?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).map_err(io)?;
        let reply: Reply = serde_json::from_str(&line).map_err(|e| LazyFsError::Control {
            socket: self.socket.display().to_string(),
            message: format!("bad answer {line:?}: {e}"),
        })?;
        match reply.error {
            None => Ok(reply.status),
            Some(message) => Err(LazyFsError::Failed {
                command: command.name().to_string(),
                message,
            }),
        }
    }
}

/// Serves commands on `listener` with `handle` until `handle` says to stop (after
/// answering): each connection is one command, answered when done.
pub fn serve(
    listener: &UnixListener,
    mut handle: impl FnMut(Command) -> (Result<Status, String>, bool),
) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        let mut reader = BufReader::new(&stream);
        if reader.read_line(&mut line).is_err() {
            continue;
        }
        let started = Instant::now();
        let (result, stop) = match line.trim().parse::<Command>() {
            Ok(cmd) => handle(cmd),
            Err(e) => (Err(e), false),
        };
        let took_us = started.elapsed().as_micros() as u64;
        let reply = match result {
            Ok(status) => Reply {
                status,
                error: None,
                took_us,
            },
            Err(e) => Reply {
                status: Status::default(),
                error: Some(e),
                took_us,
            },
        };
        let text = serde_json::to_string(&reply).unwrap_or_else(|_| "{}".into());
        let _ = (&stream).write_all(format!("{text}\n").as_bytes());
        if stop {
            return;
        }
    }
}

/// Binds the control socket at `path` (a stale socket file there is replaced), readable
/// and writable by root only.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}
