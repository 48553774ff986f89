//! The adapter client: a [`Client`] that drives one adapter process over JSON lines.
//!
//! The process is started at the first op (and again after it was lost), with its stderr
//! appended to a file, and is handed the `init` message; then each op is one `invoke` line
//! and one reply. The history's discipline is kept here, whatever the adapter does:
//!
//! - one op in flight: ops wait for the previous one's reply (a lock);
//! - no reply within the timeout: `info`, and the adapter's process group is killed by its
//!   PID; the next op starts a new process;
//! - the adapter exits, writes a line that is not a reply, or answers another id: `info`
//!   (the op may have reached the database), and the process is killed and replaced;
//! - the adapter cannot be started or fails its handshake: `fail` (the op was never sent).
//!
//! Starting happens in [`Client::prepare`], which the scheduler calls before it draws an op,
//! so that an adapter's start-up time (an interpreter's, say) never counts against an op.
//!
//! The processes and their pipes live on a runtime of their own (two threads, for the life
//! of the program), so that a client can be used from any runtime (the harness makes one per
//! phase) and an op abandoned by its caller still ends cleanly.

use super::protocol::{self, ReplyLine};
use crate::op::{BoxFuture, Client, Op, Outcome};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
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
    /// Where its stderr is appended (default: discarded).
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

/// A running adapter.
struct Running {
    child: Child,
    pid: Option<u32>,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Running {
    /// Kills the adapter's process group (by its PID) and reaps it.
    async fn kill(mut self) -> String {
        kill_group(self.pid);
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        self.pid = None;
        match status {
            Ok(Ok(s)) => s.to_string(),
            Ok(Err(e)) => format!("not reaped: {e}"),
            Err(_) => "not reaped after SIGKILL within 5s".into(),
        }
    }

    /// Closes the adapter's stdin and lets it exit on its own for a moment, then kills it.
    async fn close(mut self) {
        drop(self.stdin.take());
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), self.child.wait()).await
        {
            self.pid = None;
        } else {
            let _ = self.kill().await;
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
    fn drop(&mut self) {
        kill_group(self.pid);
    }
}

/// SIGKILL to the process group led by `pid` (the adapter and anything it started).
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0) {
        // SAFETY: kill(2) with a negative PID signals that process group; no memory involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// What one adapter client keeps between ops.
struct State {
    spec: AdapterSpec,
    running: Option<Running>,
    next_id: u64,
    starts: Arc<AtomicU64>,
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
        let state = self.state.clone();
        Box::pin(async move {
            let _ = runtime()
                .spawn(async move {
                    let mut st = state.lock().await;
                    if st.running.is_none() {
                        let limit = st.spec.start_timeout;
                        if let Ok(Ok(r)) = tokio::time::timeout(limit, st.start()).await {
                            st.running = Some(r);
                        }
                    }
                })
                .await;
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
    fn drop(&mut self) {
        // Close the adapter's stdin and give it a moment to exit; kill it otherwise (Running's
        // drop). Ops in flight hold the lock; then the process goes with the last reference.
        if let Ok(mut st) = self.state.try_lock() {
            if let Some(r) = st.running.take() {
                drop(runtime().spawn(r.close()));
            }
        }
    }
}

impl State {
    async fn call(&mut self, op: &Op) -> Outcome {
        let invoked = op.value();
        let deadline = Instant::now() + self.spec.timeout;
        if self.running.is_none() {
            match tokio::time::timeout_at(deadline, self.start()).await {
                Ok(Ok(r)) => self.running = Some(r),
                Ok(Err(e)) => return Outcome::fail(invoked, e.to_string()),
                Err(_) => {
                    return Outcome::fail(
                        invoked,
                        format!(
                            "adapter handshake: no init_ok within {:?}",
                            self.spec.timeout
                        ),
                    )
                }
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
            Some(r) => r.kill().await,
            None => "not running".into(),
        }
    }

    /// Starts the adapter and makes the handshake.
    async fn start(&mut self) -> Result<Running, AdapterError> {
        let spec = &self.spec;
        let program = spec.argv.first().ok_or(AdapterError::NoProgram)?;
        let mut cmd = Command::new(program);
        cmd.args(&spec.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &spec.cwd {
            cmd.current_dir(dir);
        }
        let mut log = None;
        match &spec.stderr {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| AdapterError::Spawn {
                        program: format!("{program} (stderr file {})", path.display()),
                        source,
                    })?;
                log = file.try_clone().ok();
                cmd.stderr(Stdio::from(file));
            }
            None => {
                cmd.stderr(Stdio::null());
            }
        }
        let mut child = cmd.spawn().map_err(|source| AdapterError::Spawn {
            program: program.clone(),
            source,
        })?;
        let n = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        let pid = child.id();
        if let Some(mut log) = log {
            let _ = writeln!(
                log,
                "== faultline: adapter start {n} (pid {})",
                pid.map_or_else(|| "?".to_string(), |p| p.to_string())
            );
        }
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(AdapterError::Handshake("no pipes to the adapter".into()));
        };
        let mut running = Running {
            child,
            pid,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
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
        match handshake.await {
            Ok(()) => Ok(running),
            Err(e) => {
                let status = running.kill().await;
                Err(AdapterError::Handshake(format!("{e} (adapter {status})")))
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
