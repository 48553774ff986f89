//! One authenticated SSH session to one node (on the ssh2 crate): host-key checking, key and
//! agent authentication, commands with timeouts, file transfer over SFTP.

use super::ssh_config::{settings_for, HostSettings};
use crate::capped::keep;
use crate::config::SshOptions;
use crate::shell::{quote, RemoteCommand};
use crate::SshError;
use ssh2::{CheckResult, HashType, KnownHostFileKind, Session};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The environment variable that holds the sudo password, if sudo needs one.
pub const SUDO_PASSWORD_ENV: &str = "FAULTLINE_SUDO_PASSWORD";

/// How much of each of a command's output streams [`NodeSession::exec`] keeps: a command that
/// writes more (`cat /dev/zero`) is read to its end, but what is past this is dropped, and
/// counted in [`Output::stdout_dropped`] / [`Output::stderr_dropped`].
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 << 20;

/// What a remote command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Exit status (128+N when killed by signal N).
    pub status: i32,
    /// Standard output (at most the output limit).
    pub stdout: Vec<u8>,
    /// Standard error (at most the output limit).
    pub stderr: Vec<u8>,
    /// Bytes of standard output past the limit, read and dropped.
    pub stdout_dropped: u64,
    /// Bytes of standard error past the limit, read and dropped.
    pub stderr_dropped: u64,
}

impl Output {
    /// Standard output as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Standard error as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// True for exit status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }
    /// True when output past the limit was dropped.
    pub fn truncated(&self) -> bool {
        self.stdout_dropped > 0 || self.stderr_dropped > 0
    }
}

/// Where and how to reach one node, after ~/.ssh/config is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The node's name in the cluster file.
    pub node: String,
    /// The address to connect to.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The remote user.
    pub user: String,
    /// Key files to try, in order, after the agent.
    pub identity_files: Vec<PathBuf>,
    /// The known_hosts file.
    pub known_hosts: PathBuf,
    /// Refuse unknown or mismatched host keys.
    pub strict: bool,
    /// Time to connect and authenticate.
    pub connect_timeout: Duration,
    /// `ProxyJump` from the ssh config: the jump host(s) to reach the node through, as
    /// OpenSSH takes them (`[user@]host[:port]`, comma-separated for a chain).
    pub proxy_jump: Option<String>,
    /// The ssh config file the node was resolved through (given to `ssh` for the jump
    /// hosts), if it exists.
    pub ssh_config: Option<PathBuf>,
    /// The key files given explicitly (the cluster file's `private_key`), also offered to
    /// the jump hosts.
    pub explicit_keys: Vec<PathBuf>,
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from)
}

fn expand(p: &Path) -> PathBuf {
    match p.to_str().and_then(|s| s.strip_prefix("~/")) {
        Some(rest) => home().join(rest),
        None => p.to_path_buf(),
    }
}

impl Target {
    /// Resolves a node of a cluster file: explicit options first, then ~/.ssh/config (or the
    /// file `ssh.config` names), then defaults (current user, port 22, ~/.ssh/id_*).
    pub fn resolve(node: &str, ssh: &SshOptions) -> Target {
        let home = home();
        let config_path = ssh
            .config
            .as_deref()
            .map(expand)
            .unwrap_or_else(|| home.join(".ssh/config"));
        let settings = std::fs::read_to_string(&config_path)
            .map(|t| settings_for(&t, node, &home))
            .unwrap_or_else(|_| HostSettings::default());
        let proxy_jump = settings.proxy_jump.clone();
        let ssh_config = config_path.exists().then(|| config_path.clone());
        let explicit_keys: Vec<PathBuf> = ssh.private_key.iter().map(|p| expand(p)).collect();
        let user = ssh
            .user
            .clone()
            .or(settings.user)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".to_string());
        let mut identity_files: Vec<PathBuf> = ssh.private_key.iter().map(|p| expand(p)).collect();
        identity_files.extend(settings.identity_files);
        if identity_files.is_empty() {
            for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                let p = home.join(".ssh").join(name);
                if p.exists() {
                    identity_files.push(p);
                }
            }
        }
        Target {
            node: node.to_string(),
            host: settings.hostname.unwrap_or_else(|| node.to_string()),
            port: ssh.port.or(settings.port).unwrap_or(22),
            user,
            identity_files,
            known_hosts: ssh
                .known_hosts
                .as_deref()
                .map(expand)
                .unwrap_or_else(|| home.join(".ssh/known_hosts")),
            strict: ssh.strict_host_key_checking,
            connect_timeout: ssh.connect_timeout,
            proxy_jump,
            ssh_config,
            explicit_keys,
        }
    }

    /// The `ssh` command that carries this node's SSH connection through its jump hosts
    /// (`ssh -W HOST:PORT LAST-JUMP`, with `-J` for the jumps before it: what OpenSSH does
    /// for `ProxyJump`), with the cluster's ssh config, known_hosts, host-key policy, keys
    /// and connect timeout, and never a prompt. None without `ProxyJump`.
    pub fn jump_command(&self) -> Option<Vec<String>> {
        let jumps: Vec<&str> = self
            .proxy_jump
            .as_deref()?
            .split(',')
            .map(str::trim)
            .filter(|j| !j.is_empty())
            .collect();
        let (last, before) = jumps.split_last()?;
        let mut cmd = vec!["ssh".to_string()];
        if let Some(c) = &self.ssh_config {
            cmd.extend(["-F".into(), c.display().to_string()]);
        }
        for k in &self.explicit_keys {
            cmd.extend(["-i".into(), k.display().to_string()]);
        }
        let strict = if self.strict { "yes" } else { "no" };
        cmd.extend([
            "-o".to_string(),
            "BatchMode=yes".into(),
            "-o".into(),
            format!("StrictHostKeyChecking={strict}"),
            "-o".into(),
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "-o".into(),
            format!("ConnectTimeout={}", self.connect_timeout.as_secs().max(1)),
        ]);
        if !before.is_empty() {
            cmd.extend(["-J".into(), before.join(",")]);
        }
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        cmd.extend(["-W".into(), format!("{host}:{}", self.port)]);
        // `user@host:port` as a destination needs the ssh:// form.
        let dest = if last.contains(':') && !last.contains('[') && !last.starts_with("ssh://") {
            format!("ssh://{last}")
        } else {
            (*last).to_string()
        };
        cmd.extend(["--".into(), dest]);
        Some(cmd)
    }
}

/// The connection under a session: a TCP connection to the node, or a socket to an `ssh`
/// process that carries it through the node's jump hosts (killed with the session).
enum Link {
    Tcp(TcpStream),
    Jump {
        sock: std::os::unix::net::UnixStream,
        child: std::process::Child,
    },
}

impl Link {
    fn fd(&self) -> std::os::unix::io::RawFd {
        match self {
            Link::Tcp(s) => s.as_raw_fd(),
            Link::Jump { sock, .. } => sock.as_raw_fd(),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Link::Jump { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the jump command of `target` on one end of a socket pair; returns the other end
/// and the process, with what it says on stderr collected (at most 64 KiB).
fn start_jump(
    target: &Target,
    cmd: &[String],
) -> std::io::Result<(
    std::os::unix::net::UnixStream,
    std::process::Child,
    std::sync::Arc<std::sync::Mutex<String>>,
)> {
    use std::os::fd::OwnedFd;
    use std::process::{Command, Stdio};
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let theirs_in: OwnedFd = theirs.try_clone()?.into();
    let theirs_out: OwnedFd = theirs.into();
    let mut child = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::from(theirs_in))
        .stdout(Stdio::from(theirs_out))
        .stderr(Stdio::piped())
        .spawn()?;
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    if let Some(mut err) = child.stderr.take() {
        let said = said.clone();
        let node = target.node.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = said.lock().unwrap_or_else(|e| e.into_inner());
                if s.len() < 65536 {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
            tracing::debug!("{node}: the jump to it ended");
        });
    }
    Ok((ours, child, said))
}

/// Standard base64 (for SHA256 host key fingerprints, as OpenSSH prints them).
fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// An authenticated session to one node. Not shared between threads: the pool hands each
/// session to one user at a time.
pub struct NodeSession {
    target: Target,
    session: Session,
    stream: Link,
    /// Whether the remote user is root (then sudo is skipped).
    is_root: bool,
}

impl NodeSession {
    /// Connects, checks the host key and authenticates, all within `connect_timeout`.
    pub fn connect(target: &Target) -> Result<NodeSession, SshError> {
        let node = target.node.clone();
        let err = |message: String| SshError::Connect {
            node: node.clone(),
            message,
        };
        let mut session = Session::new().map_err(|e| err(e.to_string()))?;
        let mut said = None;
        let (stream, addr) = match target.jump_command() {
            Some(cmd) => {
                let (sock, child, s) = start_jump(target, &cmd).map_err(|e| {
                    err(format!("cannot start `{}` (ProxyJump): {e}", cmd.join(" ")))
                })?;
                session.set_tcp_stream(sock.try_clone().map_err(|e| err(e.to_string()))?);
                said = Some(s);
                let via = target.proxy_jump.clone().unwrap_or_default();
                (
                    Link::Jump { sock, child },
                    format!("{}:{} via {via}", target.host, target.port),
                )
            }
            None => {
                let addrs: Vec<_> = (target.host.as_str(), target.port)
                    .to_socket_addrs()
                    .map_err(|e| err(format!("cannot resolve {}: {e}", target.host)))?
                    .collect();
                let addr = addrs
                    .first()
                    .ok_or_else(|| err(format!("{} has no address", target.host)))?;
                let stream =
                    TcpStream::connect_timeout(addr, target.connect_timeout).map_err(|e| {
                        err(format!(
                            "cannot connect to {addr} within {:?}: {e}",
                            target.connect_timeout
                        ))
                    })?;
                let _ = stream.set_nodelay(true);
                session.set_tcp_stream(stream.try_clone().map_err(|e| err(e.to_string()))?);
                (Link::Tcp(stream), addr.to_string())
            }
        };
        session.set_timeout(target.connect_timeout.as_millis().min(u128::from(u32::MAX)) as u32);
        if let Err(e) = session.handshake() {
            drop(stream);
            let jump = said
                .map(|s| {
                    s.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .trim()
                        .to_string()
                })
                .filter(|s| !s.is_empty())
                .map(|s| format!(" (the jump host said: {s})"))
                .unwrap_or_default();
            return Err(err(format!("SSH handshake with {addr} failed: {e}{jump}")));
        }
        check_host_key(&session, target)?;
        authenticate(&session, target)?;
        session.set_keepalive(true, 15);
        session.set_timeout(0);
        Ok(NodeSession {
            is_root: target.user == "root",
            target: target.clone(),
            session,
            stream,
        })
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.target.node
    }

    /// Whether the session still answers (a keepalive round trip).
    pub fn is_alive(&self) -> bool {
        self.session.set_blocking(true);
        self.session.keepalive_send().is_ok()
    }

    /// Runs a command; on `timeout` it is killed on the node (the remote `timeout` utility
    /// sends SIGTERM to its whole process group, then SIGKILL two seconds later) and
    /// `SshError::Timeout` is returned.
    /// Keeps at most [`DEFAULT_OUTPUT_LIMIT`] bytes of each output stream.
    pub fn exec(&self, cmd: &RemoteCommand, timeout: Duration) -> Result<Output, SshError> {
        self.exec_limited(cmd, timeout, DEFAULT_OUTPUT_LIMIT)
    }

    /// Runs a command as [`NodeSession::exec`] does, keeping at most `limit` bytes of each of
    /// its output streams: the rest is read (so that the command runs to its end as it would
    /// have) and dropped, and the dropped bytes are counted in the [`Output`].
    pub fn exec_limited(
        &self,
        cmd: &RemoteCommand,
        timeout: Duration,
        limit: usize,
    ) -> Result<Output, SshError> {
        let secs = timeout.as_secs_f64().max(0.001);
        let sudo = cmd.wants_sudo() && !self.is_root;
        let inner = if sudo {
            cmd.render_with_sudo()
        } else {
            cmd.render()
        };
        // `timeout` signals the command's process group when the time is up and exits 124.
        let line = format!("timeout -k 2 {secs:.3} sh -c {}", quote(&inner));
        let started = Instant::now();
        let node = self.target.node.clone();
        let ssh = |e: ssh2::Error| SshError::Session {
            node: node.clone(),
            message: e.to_string(),
        };
        self.session.set_blocking(true);
        self.quickack();
        let mut channel = self.session.channel_session().map_err(ssh)?;
        channel.exec(&line).map_err(ssh)?;
        if sudo {
            if let Ok(pw) = std::env::var(SUDO_PASSWORD_ENV) {
                let _ = channel.write_all(format!("{pw}\n").as_bytes());
            }
        }
        let _ = channel.send_eof();
        // Read stdout and stderr together without blocking on either; a grace period past
        // the remote timeout bounds a silent network.
        self.session.set_blocking(false);
        let deadline = Instant::now() + timeout + Duration::from_secs(5);
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let (mut stdout_dropped, mut stderr_dropped) = (0u64, 0u64);
        let mut buf = [0u8; 32 * 1024];
        let result = loop {
            let mut progressed = false;
            match channel.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    keep(&mut stdout, &mut stdout_dropped, &buf[..n], limit);
                    progressed = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => {
                    break Err(SshError::Session {
                        node: node.clone(),
                        message: e.to_string(),
                    })
                }
            }
            match channel.stderr().read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    keep(&mut stderr, &mut stderr_dropped, &buf[..n], limit);
                    progressed = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => {
                    break Err(SshError::Session {
                        node: node.clone(),
                        message: e.to_string(),
                    })
                }
            }
            if channel.eof() && !progressed {
                break Ok(());
            }
            if Instant::now() > deadline {
                break Err(SshError::Timeout {
                    node: node.clone(),
                    command: cmd.render(),
                    after: timeout,
                });
            }
            if !progressed {
                self.wait_socket(Duration::from_millis(20));
            }
        };
        self.session.set_blocking(true);
        result?;
        self.quickack();
        let _ = channel.wait_close();
        let mut status = channel.exit_status().map_err(ssh)?;
        if let Ok(sig) = channel.exit_signal() {
            if let Some(name) = sig.exit_signal {
                status = 128 + signal_number(&name);
            }
        }
        if status == 124 && started.elapsed() >= timeout {
            return Err(SshError::Timeout {
                node,
                command: cmd.render(),
                after: timeout,
            });
        }
        Ok(Output {
            status,
            stdout,
            stderr,
            stdout_dropped,
            stderr_dropped,
        })
    }

    /// Asks the kernel to acknowledge received data at once. sshd does not set TCP_NODELAY
    /// for non-interactive sessions, so its small replies (channel success, data, EOF, exit
    /// status) wait for our ACKs; with delayed ACKs each wait costs ~40 ms per command.
    /// Linux clears quick-ACK mode by itself, so this is set again before every wait.
    fn quickack(&self) {
        let one: libc::c_int = 1;
        // SAFETY: a valid socket and a pointer to an int that outlives the call.
        unsafe {
            libc::setsockopt(
                self.stream.fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }

    /// Waits until the socket is readable (or `max` passes).
    fn wait_socket(&self, max: Duration) {
        self.quickack();
        let mut fds = libc::pollfd {
            fd: self.stream.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe {
            libc::poll(&mut fds, 1, max.as_millis() as libc::c_int);
        }
    }

    fn sftp(&self) -> Result<ssh2::Sftp, SshError> {
        self.session.set_blocking(true);
        self.session.sftp().map_err(|e| SshError::Session {
            node: self.target.node.clone(),
            message: format!("SFTP: {e}"),
        })
    }

    /// Uploads a file or a directory (recursively) to `remote`, keeping file modes.
    pub fn upload(&self, local: &Path, remote: &Path) -> Result<(), SshError> {
        let sftp = self.sftp()?;
        self.upload_with(&sftp, local, remote)
    }

    /// Uploads a file to a path that must not exist yet (an exclusive create).
    pub fn upload_new(&self, local: &Path, remote: &Path) -> Result<(), SshError> {
        let sftp = self.sftp()?;
        let mut src = std::fs::File::open(local).map_err(|e| self.transfer_err(local, e))?;
        let mut dst = sftp
            .open_mode(
                remote,
                ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::EXCLUSIVE,
                0o600,
                ssh2::OpenType::File,
            )
            .map_err(|e| self.transfer_err(remote, e))?;
        std::io::copy(&mut src, &mut dst).map_err(|e| self.transfer_err(remote, e))?;
        Ok(())
    }

    fn transfer_err(&self, path: &Path, e: impl std::fmt::Display) -> SshError {
        SshError::Transfer {
            node: self.target.node.clone(),
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn upload_with(&self, sftp: &ssh2::Sftp, local: &Path, remote: &Path) -> Result<(), SshError> {
        let meta = std::fs::metadata(local).map_err(|e| self.transfer_err(local, e))?;
        use std::os::unix::fs::PermissionsExt;
        let mode = (meta.permissions().mode() & 0o7777) as i32;
        if meta.is_dir() {
            if sftp.stat(remote).is_err() {
                sftp.mkdir(remote, mode)
                    .map_err(|e| self.transfer_err(remote, e))?;
            }
            for entry in std::fs::read_dir(local).map_err(|e| self.transfer_err(local, e))? {
                let entry = entry.map_err(|e| self.transfer_err(local, e))?;
                self.upload_with(sftp, &entry.path(), &remote.join(entry.file_name()))?;
            }
            return Ok(());
        }
        let mut src = std::fs::File::open(local).map_err(|e| self.transfer_err(local, e))?;
        let mut dst = sftp
            .open_mode(
                remote,
                ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::TRUNCATE,
                mode,
                ssh2::OpenType::File,
            )
            .map_err(|e| self.transfer_err(remote, e))?;
        std::io::copy(&mut src, &mut dst).map_err(|e| self.transfer_err(remote, e))?;
        Ok(())
    }

    /// Downloads a file or a directory (recursively) from `remote` to `local`.
    pub fn download(&self, remote: &Path, local: &Path) -> Result<(), SshError> {
        let sftp = self.sftp()?;
        self.download_with(&sftp, remote, local)
    }

    fn download_with(
        &self,
        sftp: &ssh2::Sftp,
        remote: &Path,
        local: &Path,
    ) -> Result<(), SshError> {
        let stat = sftp
            .stat(remote)
            .map_err(|e| self.transfer_err(remote, e))?;
        if stat.is_dir() {
            std::fs::create_dir_all(local).map_err(|e| self.transfer_err(local, e))?;
            for (path, _) in sftp
                .readdir(remote)
                .map_err(|e| self.transfer_err(remote, e))?
            {
                let Some(name) = path.file_name() else {
                    continue;
                };
                self.download_with(sftp, &path, &local.join(name))?;
            }
            return Ok(());
        }
        let mut src = sftp
            .open(remote)
            .map_err(|e| self.transfer_err(remote, e))?;
        let mut dst = std::fs::File::create(local).map_err(|e| self.transfer_err(local, e))?;
        std::io::copy(&mut src, &mut dst).map_err(|e| self.transfer_err(local, e))?;
        Ok(())
    }
}

/// Bounds on collecting files from a node ([`NodeSession::collect`]).
#[derive(Debug, Clone, Copy)]
pub struct CollectLimits {
    /// The most kept of each file (its head and tail when larger; see
    /// [`crate::capped::copy_bounded`]).
    pub max_bytes: u64,
    /// When collecting stops, wherever it is.
    pub deadline: Instant,
    /// The most files (and directories) visited.
    pub max_files: usize,
    /// The deepest directory visited below the path given.
    pub max_depth: usize,
    /// The most bytes kept over every file of one collect: a file is kept to what is left of
    /// it (head and tail), and one whose turn comes when it is spent is skipped.
    pub max_total: u64,
}

/// What collecting one remote path did.
#[derive(Debug)]
pub enum Fetch {
    /// A regular file, copied (perhaps cut, see [`crate::capped::Copied`]).
    Copied(crate::capped::Copied),
    /// A directory, whose entries follow.
    Directory,
    /// Not collected, and why (not a regular file, a limit reached).
    Skipped(String),
    /// It could not be read.
    Failed(SshError),
}

/// One remote path collected, and how.
#[derive(Debug)]
pub struct Fetched {
    /// The path on the node.
    pub remote: PathBuf,
    /// How it went.
    pub fetch: Fetch,
}

/// What a file type is, in words.
fn file_type_name(t: ssh2::FileType) -> &'static str {
    match t {
        ssh2::FileType::NamedPipe => "a FIFO",
        ssh2::FileType::CharDevice => "a character device",
        ssh2::FileType::BlockDevice => "a block device",
        ssh2::FileType::Directory => "a directory",
        ssh2::FileType::RegularFile => "a regular file",
        ssh2::FileType::Symlink => "a symbolic link",
        ssh2::FileType::Socket => "a socket",
        ssh2::FileType::Other(_) => "not a file",
    }
}

impl NodeSession {
    /// Collects `remote` (a file, or a directory recursively) into `local` within `limits`:
    /// regular files only (links are followed; FIFOs, devices and sockets are skipped), each
    /// kept to `max_bytes`, all of it stopped at the deadline. One path that cannot be read
    /// never stops the others: each is reported. The flag says whether the session is still
    /// sound (false when the time ran out in the middle of a transfer).
    pub fn collect(
        &self,
        remote: &Path,
        local: &Path,
        limits: &CollectLimits,
    ) -> (Vec<Fetched>, bool) {
        let mut out = Vec::new();
        match self.sftp() {
            Ok(sftp) => self.collect_with(&sftp, remote, local, limits, 0, false, &mut out),
            Err(e) => out.push(Fetched {
                remote: remote.to_path_buf(),
                fetch: Fetch::Failed(e),
            }),
        }
        self.session.set_timeout(0);
        (out, Instant::now() < limits.deadline)
    }

    #[allow(clippy::too_many_arguments)]
    fn collect_with(
        &self,
        sftp: &ssh2::Sftp,
        remote: &Path,
        local: &Path,
        limits: &CollectLimits,
        depth: usize,
        via_link: bool,
        out: &mut Vec<Fetched>,
    ) {
        let kept: u64 = out
            .iter()
            .map(|f| match &f.fetch {
                Fetch::Copied(c) => c.kept,
                _ => 0,
            })
            .sum();
        let left = CollectLimits {
            max_bytes: limits.max_bytes.min(limits.max_total.saturating_sub(kept)),
            ..*limits
        };
        let fetch = self.fetch_one(sftp, remote, local, &left, depth, out.len(), via_link);
        let entries = match fetch {
            Ok(Some(entries)) => entries,
            Ok(None) => return,
            Err(fetch) => {
                return out.push(Fetched {
                    remote: remote.to_path_buf(),
                    fetch,
                })
            }
        };
        out.push(Fetched {
            remote: remote.to_path_buf(),
            fetch: Fetch::Directory,
        });
        for (path, link) in entries {
            if let Some(name) = path.file_name() {
                let local = local.join(name);
                self.collect_with(sftp, &path, &local, limits, depth + 1, link, out);
            }
        }
    }

    /// Collects one path: `Ok(Some(entries))` for a directory (made locally), each with
    /// whether it is a symbolic link; `Err(what)` for anything else (a file copied, skipped or
    /// failed). A directory reached through a link inside a directory is not followed.
    #[allow(clippy::too_many_arguments)]
    fn fetch_one(
        &self,
        sftp: &ssh2::Sftp,
        remote: &Path,
        local: &Path,
        limits: &CollectLimits,
        depth: usize,
        seen: usize,
        via_link: bool,
    ) -> Result<Option<Vec<(PathBuf, bool)>>, Fetch> {
        let now = Instant::now();
        if now >= limits.deadline {
            return Err(Fetch::Skipped("the time to collect logs ran out".into()));
        }
        if seen >= limits.max_files {
            return Err(Fetch::Skipped(format!(
                "more than {} files: the rest is not collected",
                limits.max_files
            )));
        }
        // Every blocking transfer call below ends by the deadline.
        let left = (limits.deadline - now)
            .as_millis()
            .clamp(1, u128::from(u32::MAX));
        self.session.set_timeout(left as u32);
        let failed =
            |path: &Path, e: &dyn std::fmt::Display| Fetch::Failed(self.transfer_err(path, e));
        let stat = sftp.stat(remote).map_err(|e| failed(remote, &e))?;
        match stat.file_type() {
            ssh2::FileType::Directory if via_link => {
                Err(Fetch::Skipped("a link to a directory, not followed".into()))
            }
            ssh2::FileType::Directory if depth >= limits.max_depth => Err(Fetch::Skipped(format!(
                "a directory deeper than {} levels",
                limits.max_depth
            ))),
            ssh2::FileType::Directory => {
                std::fs::create_dir_all(local).map_err(|e| failed(local, &e))?;
                let entries = sftp.readdir(remote).map_err(|e| failed(remote, &e))?;
                Ok(Some(
                    entries
                        .into_iter()
                        .map(|(p, st)| (p, st.file_type() == ssh2::FileType::Symlink))
                        .collect(),
                ))
            }
            ssh2::FileType::RegularFile if limits.max_bytes == 0 => Err(Fetch::Skipped(format!(
                "the logs collected from this node reached {} bytes, the most kept",
                limits.max_total
            ))),
            ssh2::FileType::RegularFile => Err(
                match self.copy_file(sftp, remote, local, stat.size, limits) {
                    Ok(c) => Fetch::Copied(c),
                    Err(e) => Fetch::Failed(e),
                },
            ),
            other => Err(Fetch::Skipped(format!(
                "{}, not a regular file",
                file_type_name(other)
            ))),
        }
    }

    fn copy_file(
        &self,
        sftp: &ssh2::Sftp,
        remote: &Path,
        local: &Path,
        size: Option<u64>,
        limits: &CollectLimits,
    ) -> Result<crate::capped::Copied, SshError> {
        let mut src = sftp
            .open(remote)
            .map_err(|e| self.transfer_err(remote, e))?;
        let dst = std::fs::File::create(local).map_err(|e| self.transfer_err(local, e))?;
        crate::capped::copy_bounded(
            &mut src,
            size.unwrap_or(0),
            std::io::BufWriter::new(dst),
            limits.max_bytes,
            limits.deadline,
        )
        .map_err(|e| self.transfer_err(remote, e))
    }
}

/// The number of a signal named as SSH names it (`KILL`, `TERM`, ...).
fn signal_number(name: &str) -> i32 {
    match name.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "USR1" => 10,
        "USR2" => 12,
        _ => 0,
    }
}

fn check_host_key(session: &Session, target: &Target) -> Result<(), SshError> {
    let Some((key, _kind)) = session.host_key() else {
        return Err(SshError::Connect {
            node: target.node.clone(),
            message: "the server sent no host key".into(),
        });
    };
    let fingerprint = session
        .host_key_hash(HashType::Sha256)
        .map(|h| format!("SHA256:{}", base64(h).trim_end_matches('=')))
        .unwrap_or_else(|| "unknown".into());
    if !target.strict {
        tracing::warn!(node = %target.node, %fingerprint, "host key NOT checked (strict_host_key_checking: false)");
        return Ok(());
    }
    let mut known = session.known_hosts().map_err(|e| SshError::Connect {
        node: target.node.clone(),
        message: e.to_string(),
    })?;
    let text = std::fs::read_to_string(&target.known_hosts).unwrap_or_default();
    let lines = KnownHostsLines::parse(&text);
    if lines.is_revoked(key) {
        return Err(SshError::HostKeyRevoked {
            node: target.node.clone(),
            fingerprint,
            known_hosts: target.known_hosts.display().to_string(),
        });
    }
    // libssh2 knows no `@` markers and stops reading at the first line it cannot parse, so it
    // is given the plain lines one by one.
    for line in &lines.plain {
        let _ = known.read_str(line, KnownHostFileKind::OpenSSH);
    }
    let accept = format!(
        "ssh-keyscan -p {} {} >> {}",
        target.port,
        quote(&target.host),
        quote(&target.known_hosts.display().to_string())
    );
    match known.check_port(&target.host, target.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => Err(SshError::HostKeyMismatch {
            node: target.node.clone(),
            fingerprint,
            known_hosts: target.known_hosts.display().to_string(),
        }),
        CheckResult::NotFound | CheckResult::Failure => Err(SshError::UnknownHost {
            node: target.node.clone(),
            fingerprint,
            accept,
        }),
    }
}

/// The lines of a known_hosts file, split by their marker.
#[derive(Debug, Default, PartialEq, Eq)]
struct KnownHostsLines<'a> {
    /// Lines without a marker (`hosts keytype key [comment]`), for libssh2.
    plain: Vec<&'a str>,
    /// The base64 key blobs of `@revoked` lines, without padding.
    revoked: Vec<&'a str>,
}

impl<'a> KnownHostsLines<'a> {
    fn parse(text: &'a str) -> KnownHostsLines<'a> {
        let mut lines = KnownHostsLines::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some(m) if m.eq_ignore_ascii_case("@revoked") => {
                    // @revoked hosts keytype key [comment]
                    if let Some(key) = fields.nth(2) {
                        lines.revoked.push(key.trim_end_matches('='));
                    }
                }
                // @cert-authority and any other marker: not a host key of its own.
                Some(m) if m.starts_with('@') => {}
                _ => lines.plain.push(line),
            }
        }
        lines
    }

    /// Whether the host key blob `key` is revoked. As OpenSSH, a revoked key is refused; we
    /// refuse it whatever host pattern its line names.
    fn is_revoked(&self, key: &[u8]) -> bool {
        let encoded = base64(key);
        let encoded = encoded.trim_end_matches('=');
        self.revoked.contains(&encoded)
    }
}

fn authenticate(session: &Session, target: &Target) -> Result<(), SshError> {
    let mut tried = Vec::new();
    if std::env::var_os("SSH_AUTH_SOCK").is_some()
        && session.userauth_agent(&target.user).is_ok()
        && session.authenticated()
    {
        return Ok(());
    }
    tried.push("ssh-agent".to_string());
    for key in &target.identity_files {
        if session
            .userauth_pubkey_file(&target.user, None, key, None)
            .is_ok()
            && session.authenticated()
        {
            return Ok(());
        }
        tried.push(key.display().to_string());
    }
    Err(SshError::Auth {
        node: target.node.clone(),
        user: target.user.clone(),
        tried: tried.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::{base64, KnownHostsLines, Target};
    use crate::config::SshOptions;

    #[test]
    fn revoked_lines_are_recognised_and_markers_kept_from_libssh2() {
        let blob = b"\x00\x00\x00\x0bssh-ed25519 a key blob";
        let key = base64(blob);
        let text = format!(
            "# comment\nn1 ssh-ed25519 AAAAother\n@cert-authority *.example ssh-ed25519 AAAAca\n@revoked * ssh-ed25519 {key}== revoked by ops\n\n10.0.0.2 ssh-ed25519 AAAAthird\n"
        );
        let lines = KnownHostsLines::parse(&text);
        assert_eq!(
            lines.plain,
            ["n1 ssh-ed25519 AAAAother", "10.0.0.2 ssh-ed25519 AAAAthird"]
        );
        assert!(lines.is_revoked(blob));
        assert!(!lines.is_revoked(b"another key"));
    }

    #[test]
    fn proxy_jump_becomes_ssh_w_through_the_last_jump_and_j_for_the_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("ssh_config");
        std::fs::write(
            &config,
            "Host n2\n  HostName 10.0.0.2\n  ProxyJump bastion,ops@gate:2222\nHost n1\n  HostName 10.0.0.1\n",
        )
        .expect("write");
        let ssh = SshOptions {
            config: Some(config.clone()),
            known_hosts: Some(dir.path().join("kh")),
            private_key: Some(dir.path().join("key")),
            ..SshOptions::default()
        };
        let t = Target::resolve("n2", &ssh);
        let cmd = t.jump_command().expect("a jump");
        let s = cmd.join(" ");
        assert!(
            s.starts_with(&format!("ssh -F {}", config.display())),
            "{s}"
        );
        assert!(s.contains("-o BatchMode=yes"), "{s}");
        assert!(
            s.contains(&format!("-i {}", dir.path().join("key").display())),
            "{s}"
        );
        assert!(
            s.ends_with("-J bastion -W 10.0.0.2:22 -- ssh://ops@gate:2222"),
            "{s}"
        );
        assert_eq!(Target::resolve("n1", &ssh).jump_command(), None);
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==".trim_end_matches('='));
        assert_eq!(base64(b"fo"), "Zm8");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
