//! The adapter client: a [`Client`] that drives one adapter process over JSON lines.
//!
//! The process is started at the first op (and again after it was lost), or by
//! [`Client::start_now`] at set-up, with its stderr appended to a file (its first
//! [`STDERR_HEAD`] bytes, then the last [`STDERR_TAIL`] bytes of what all its processes wrote
//! after that, written with a line saying what was cut when the client goes: a bound for the
//! file however often the adapter is restarted), and is handed the `init` message; then each op is one `invoke` line
//! and one reply. The history's discipline is kept here, whatever the adapter does:
//!
//! - one op in flight: ops wait for the previous one's reply (a lock);
//! - no reply within the timeout: `info`, and the adapter's process group is killed by its
//!   PID; the next op starts a new process;
//! - the adapter exits, writes a line that is not a reply, or answers another id: `info`
//!   (the op may have reached the database), and the process is killed and replaced;
//! - the adapter cannot be started or fails its handshake: `fail` (the op was never sent),
//!   saying why with the end of its stderr.
//!
//! Whenever an adapter is replaced, and when its client is dropped (at the end of a run),
//! its whole process group is killed by the PGID recorded at spawn (after a moment's grace
//! when its stdin was closed), and it is reaped, waiting a bounded time.
//!
//! Starting happens in [`Client::prepare`], which the scheduler calls before it draws an op,
//! so that an adapter's start-up time (an interpreter's, say) never counts against an op.
//!
//! The processes and their pipes live on a runtime of their own (two threads, for the life
//! of the program), so that a client can be used from any runtime (the harness makes one per
//! phase) and an op abandoned by its caller still ends cleanly.

use super::protocol::{self, ReplyLine};
use crate::op::{BoxFuture, Client, Op, Outcome};
use clusters::capped::CappedWriter;
use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::time::Instant;

/// The longest line read from an adapter: a set's read of a million elements fits; a longer
/// line is an error (the op is `info`), not memory spent on it.
pub const MAX_LINE: u64 = 32 << 20;

/// How to run an adapter.
#[derive(Debug, Clone)]
pub struct AdapterSpec {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Its working directory (default: this process's).
    pub cwd: Option<PathBuf>,
    /// The `init` message's fields (`type` and `protocol` are added).
    pub init: serde_json::Map<String, serde_json::Value>,
    /// Where its stderr is appended, within bounds (default: nowhere; the end of it is still
    /// quoted in errors).
    pub stderr: Option<PathBuf>,
    /// How long an op may take.
    pub timeout: Duration,
    /// How long starting the adapter and its handshake may take (in [`Client::prepare`],
    /// outside any op; an adapter started inside an op has the op's timeout).
    pub start_timeout: Duration,
}

/// Errors starting an adapter.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The definition gave no program.
    #[error("the adapter command is empty")]
    NoProgram,
    /// The program could not be started.
    #[error("cannot start adapter {program:?}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The handshake failed.
    #[error("adapter handshake: {0}")]
    Handshake(String),
}

/// How much of a worker's adapter stderr file is kept: its first bytes, ...
pub const STDERR_HEAD: u64 = 4 << 20;
/// ... then, of each adapter process, its last bytes (with a line saying what was cut).
pub const STDERR_TAIL: usize = 1 << 20;
/// How much of an adapter's stderr an error quotes (its end).
const STDERR_QUOTE: usize = 2048;
/// How long an adapter whose stdin was closed may take to exit on its own.
const CLOSE_GRACE: Duration = Duration::from_millis(500);
/// How long a killed adapter may take to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// The runtime that owns every adapter process and pipe.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("faultline-adapters")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the adapters' runtime: {e}"))
    })
}

/// A worker's adapter stderr file, shared by its processes, kept within bounds.
type StderrFile = Arc<std::sync::Mutex<CappedWriter<std::fs::File>>>;

/// The end of a process's stderr, for error messages.
type Recent = Arc<std::sync::Mutex<VecDeque<u8>>>;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Copies an adapter's stderr into its file (within bounds) and keeps its end in `recent`;
/// at its end, writes what the file holds of its tail.
async fn pump_stderr(mut from: ChildStderr, to: Option<StderrFile>, recent: Recent) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(f) = &to {
            let _ = lock(f).write_all(&buf[..n]);
        }
        let mut r = lock(&recent);
        r.extend(&buf[..n]);
        let over = r.len().saturating_sub(STDERR_QUOTE);
        r.drain(..over);
    }
    // The tail is written once, when the client goes (`AdapterClient`'s drop): per process,
    // an adapter restarted at every op would add a tail each time.
}

/// A running adapter. Its process group is the adapter's PID (it was made the group's
/// leader at spawn): until the leader is reaped, that number cannot name another group.
struct Running {
    child: Child,
    /// The process group, while its leader is not reaped.
    pgid: Option<i32>,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<tokio::task::JoinHandle<()>>,
    recent: Recent,
}

impl Running {
    /// Kills the adapter's process group at once and reaps the adapter.
    async fn kill(&mut self) -> String {
        self.end(Duration::ZERO).await
    }

    /// Closes the adapter's stdin and lets it exit on its own for a moment; then kills what
    /// is left of its process group (the adapter, or the children it leaves) and reaps it.
    async fn close(&mut self) -> String {
        self.end(CLOSE_GRACE).await
    }

    async fn end(&mut self, grace: Duration) -> String {
        drop(self.stdin.take());
        let deadline = Instant::now() + grace;
        while !self.exited() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        kill_group(self.pgid);
        let status = match tokio::time::timeout(REAP_WAIT, self.child.wait()).await {
            Ok(Ok(s)) => {
                self.pgid = None;
                s.to_string()
            }
            Ok(Err(e)) => format!("not reaped: {e}"),
            Err(_) => format!("not reaped after SIGKILL within {REAP_WAIT:?}"),
        };
        // Its stderr, to its end (the group is gone, so nothing holds the pipe).
        if let Some(pump) = self.stderr.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
        }
        status
    }

    /// Whether the adapter has exited (without reaping it, so that its PID stays its own).
    fn exited(&self) -> bool {
        let Some(pid) = self.pgid else {
            return true;
        };
        // SAFETY: waitid(2) with WNOWAIT only reads the child's state into `info`, which is
        // zeroed memory of the right type.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            r != 0 || info.si_pid() != 0
        }
    }

    /// The end of what the adapter wrote on stderr, as a clause (empty when nothing).
    fn stderr_said(&self) -> String {
        let r = lock(&self.recent);
        let (a, b) = r.as_slices();
        let text = String::from_utf8_lossy(&[a, b].concat()).trim().to_string();
        if text.is_empty() {
            String::new()
        } else {
            format!("; its stderr ends: {text}")
        }
    }

    async fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("the adapter's stdin is closed")?;
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("writing to the adapter: {e}"))?;
        stdin
            .flush()
            .await
            .map_err(|e| format!("writing to the adapter: {e}"))
    }
}

impl Drop for Running {
    /// An adapter dropped without [`Running::end`] (its client gone in the middle of an op):
    /// its group is killed and the adapter reaped, waiting a bounded time.
    fn drop(&mut self) {
        if self.pgid.is_none() {
            return;
        }
        kill_group(self.pgid);
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                self.pgid = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// SIGKILL to the process group `pgid` (the adapter and anything it started).
fn kill_group(pgid: Option<i32>) {
    if let Some(pgid) = pgid.filter(|p| *p > 1) {
        // SAFETY: kill(2) with a negative PID signals that process group; no memory involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// What one adapter client keeps between ops.
struct State {
    spec: AdapterSpec,
    running: Option<Running>,
    next_id: u64,
    starts: Arc<AtomicU64>,
    /// The stderr file, once opened.
    stderr: Option<StderrFile>,
}

/// A [`Client`] speaking the adapter protocol to one adapter process.
pub struct AdapterClient {
    state: Arc<tokio::sync::Mutex<State>>,
    starts: Arc<AtomicU64>,
}

impl AdapterClient {
    /// A client that runs `spec` (the process starts at the first op).
    pub fn new(spec: AdapterSpec) -> Result<AdapterClient, AdapterError> {
        if spec.argv.is_empty() {
            return Err(AdapterError::NoProgram);
        }
        let starts = Arc::new(AtomicU64::new(0));
        Ok(AdapterClient {
            state: Arc::new(tokio::sync::Mutex::new(State {
                spec,
                running: None,
                next_id: 1,
                starts: starts.clone(),
                stderr: None,
            })),
            starts,
        })
    }

    /// How many adapter processes were started so far.
    pub fn starts(&self) -> u64 {
        self.starts.load(Ordering::SeqCst)
    }
}

impl Client for AdapterClient {
    fn prepare(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.start_now().await;
        })
    }

    fn start_now(&self) -> BoxFuture<'_, Result<(), String>> {
        let state = self.state.clone();
        Box::pin(async move {
            runtime()
                .spawn(async move { state.lock().await.ensure_started().await })
                .await
                .unwrap_or_else(|e| Err(format!("adapter task failed: {e}")))
        })
    }

    fn invoke<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Outcome> {
        let state = self.state.clone();
        let op = op.clone();
        Box::pin(async move {
            let invoked = op.value();
            let task = runtime().spawn(async move { state.lock().await.call(&op).await });
            task.await
                .unwrap_or_else(|e| Outcome::info(invoked, format!("adapter task failed: {e}")))
        })
    }
}

impl Drop for AdapterClient {
    /// Closes the adapter's stdin, gives it a moment to exit, kills what is left of its
    /// process group and reaps it, before returning (the program may end right after). An op
    /// in flight holds the lock; then the process goes with it ([`Running`]'s drop).
    fn drop(&mut self) {
        let Ok(mut st) = self.state.try_lock() else {
            return;
        };
        if let Some(mut r) = st.running.take() {
            // On a thread of its own: this drop may run inside an async task.
            let closing = std::thread::spawn(move || {
                runtime().block_on(async move {
                    r.close().await;
                })
            });
            let _ = closing.join();
        }
        if let Some(f) = &st.stderr {
            let _ = lock(f).finish();
        }
    }
}

impl State {
    /// Starts the adapter (within its start timeout) unless it runs.
    async fn ensure_started(&mut self) -> Result<(), String> {
        if self.running.is_some() {
            return Ok(());
        }
        let limit = self.spec.start_timeout;
        let r = self.start(limit).await.map_err(|e| e.to_string())?;
        self.running = Some(r);
        Ok(())
    }

    async fn call(&mut self, op: &Op) -> Outcome {
        let invoked = op.value();
        let deadline = Instant::now() + self.spec.timeout;
        if self.running.is_none() {
            match self.start(self.spec.timeout).await {
                Ok(r) => self.running = Some(r),
                Err(e) => return Outcome::fail(invoked, e.to_string()),
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let Some(running) = self.running.as_mut() else {
            return Outcome::fail(invoked, "adapter not running");
        };
        let mut line = protocol::invoke_line(id, op);
        line.push('\n');
        let exchange = async {
            running.send(&line).await?;
            loop {
                let text = read_line(&mut running.stdout).await?;
                if text.trim().is_empty() {
                    continue;
                }
                let reply: ReplyLine = serde_json::from_str(&text)
                    .map_err(|e| format!("adapter wrote garbage ({e}): {}", excerpt(&text)))?;
                if reply.id != Some(id) {
                    return Err(format!(
                        "adapter answered id {} while op {id} was in flight: {}",
                        reply
                            .id
                            .map_or_else(|| "none".to_string(), |i| i.to_string()),
                        excerpt(&text)
                    ));
                }
                return Ok(reply);
            }
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Ok(Ok(reply)) => protocol::outcome_for(self.workload(), op, reply),
            Ok(Err(why)) => {
                let status = self.stop().await;
                Outcome::info(invoked, format!("{why}; adapter restarted ({status})"))
            }
            Err(_) => {
                let status = self.stop().await;
                Outcome::info(
                    invoked,
                    format!(
                        "no reply from the adapter within {:?}; adapter killed ({status})",
                        self.spec.timeout
                    ),
                )
            }
        }
    }

    /// The workload's name, as `init` carries it.
    fn workload(&self) -> Option<&str> {
        self.spec.init.get("workload").and_then(|w| w.as_str())
    }

    /// Kills the running adapter; the next op starts a new one.
    async fn stop(&mut self) -> String {
        match self.running.take() {
            Some(mut r) => r.kill().await,
            None => "not running".into(),
        }
    }

    /// The stderr file (opened at the first start), if there is one.
    fn stderr_file(&mut self) -> Result<Option<StderrFile>, std::io::Error> {
        if self.stderr.is_none() {
            if let Some(path) = &self.spec.stderr {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                let what = format!("the adapter's stderr ({})", path.display());
                self.stderr = Some(Arc::new(std::sync::Mutex::new(CappedWriter::new(
                    file,
                    what,
                    STDERR_HEAD,
                    STDERR_TAIL,
                ))));
            }
        }
        Ok(self.stderr.clone())
    }

    /// Starts the adapter and makes the handshake.
    /// Starts the adapter and makes the handshake within `limit`; a failure quotes the end
    /// of the adapter's stderr.
    async fn start(&mut self, limit: Duration) -> Result<Running, AdapterError> {
        let deadline = Instant::now() + limit;
        let log = self.stderr_file().map_err(|source| AdapterError::Spawn {
            program: format!(
                "{} (stderr file {})",
                self.spec.argv.first().map_or("", String::as_str),
                self.spec
                    .stderr
                    .as_ref()
                    .map_or_else(String::new, |p| p.display().to_string())
            ),
            source,
        })?;
        let spec = &self.spec;
        let program = spec.argv.first().ok_or(AdapterError::NoProgram)?;
        let mut cmd = Command::new(program);
        cmd.args(&spec.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &spec.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|source| AdapterError::Spawn {
            program: program.clone(),
            source,
        })?;
        let n = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        let pid = child.id();
        if let Some(log) = &log {
            let _ = writeln!(
                lock(log),
                "== faultline: adapter start {n} (pid {})",
                pid.map_or_else(|| "?".to_string(), |p| p.to_string())
            );
        }
        let recent = Recent::default();
        let pump = child
            .stderr
            .take()
            .map(|e| runtime().spawn(pump_stderr(e, log, recent.clone())));
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(AdapterError::Handshake("no pipes to the adapter".into()));
        };
        let mut running = Running {
            child,
            pgid: pid.and_then(|p| i32::try_from(p).ok()),
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            stderr: pump,
            recent,
        };
        let mut init = spec.init.clone();
        init.insert("type".into(), "init".into());
        init.insert("protocol".into(), protocol::VERSION.into());
        let mut line = serde_json::Value::Object(init).to_string();
        line.push('\n');
        let handshake = async {
            running.send(&line).await?;
            let text = loop {
                let t = read_line(&mut running.stdout).await?;
                if !t.trim().is_empty() {
                    break t;
                }
            };
            match serde_json::from_str::<ReplyLine>(&text) {
                Ok(r) if r.kind == "init_ok" => Ok(()),
                _ => Err(format!("expected init_ok, got {}", excerpt(&text))),
            }
        };
        let handshake = async {
            tokio::time::timeout_at(deadline, handshake)
                .await
                .unwrap_or_else(|_| Err(format!("no init_ok within {limit:?}")))
        };
        match handshake.await {
            Ok(()) => Ok(running),
            Err(e) => {
                let status = running.kill().await;
                Err(AdapterError::Handshake(format!(
                    "{e} (adapter {status}){}",
                    running.stderr_said()
                )))
            }
        }
    }
}

/// One line from the adapter; end of file and unreadable bytes are errors.
async fn read_line(out: &mut BufReader<ChildStdout>) -> Result<String, String> {
    let mut buf = Vec::new();
    let n = (&mut *out)
        .take(MAX_LINE + 1)
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| format!("reading from the adapter: {e}"))?;
    if n == 0 {
        return Err("the adapter exited (end of its output)".into());
    }
    if buf.last() != Some(&b'\n') && n as u64 > MAX_LINE {
        return Err(format!(
            "adapter wrote a line longer than {} MiB, the longest faultline reads: {}",
            MAX_LINE >> 20,
            excerpt(&String::from_utf8_lossy(&buf[..buf.len().min(1024)]))
        ));
    }
    if buf.last() != Some(&b'\n') {
        return Err(format!(
            "adapter output ended without a newline: {}",
            excerpt(&String::from_utf8_lossy(&buf))
        ));
    }
    String::from_utf8(buf).map_err(|_| "adapter wrote bytes that are not UTF-8".to_string())
}

/// The start of a line, for error messages.
fn excerpt(s: &str) -> String {
    let s = s.trim_end();
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("{:?}...", &s[..i]),
        None => format!("{s:?}"),
    }
}
