//! Clock faults: bump a node's clock by an offset, strobe it (jump back and forth), and reset
//! it to the controller's time. They run on each node through a helper that faultline
//! uploads (the `faultline` binary itself, hidden subcommand `node clock ...`), which calls
//! `clock_settime`, so nodes need no compiler, package or internet.
//!
//! A clock fault only means something when each node has its own kernel clock: nodes that
//! share a kernel with the controller or with each other (network namespaces of the local
//! provider) are detected by their boot ids and the fault is refused, so that faultline
//! never skews the clock of the machine it runs on.

use crate::remote::{collect_each, on_each, on_each_retrying, root_script};
use crate::NemesisError;
use clusters::{quote, Cluster, RemoteCommand};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the helper lives on nodes.
pub const HELPER_PATH: &str = "/var/tmp/faultline-node-helper";

/// Where a running strobe's PID is kept on a node.
const STROBE_PID: &str = "/var/tmp/faultline-strobe.pid";

/// This machine's boot id (`/proc/sys/kernel/random/boot_id`).
fn local_boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Refuses when any node shares its kernel (and so its clock) with the controller or with
/// another node; the error says which and what to do instead.
pub fn require_own_clocks(cluster: &Cluster, nodes: &[String]) -> Result<(), NemesisError> {
    let cmd = RemoteCommand::new("cat").arg("/proc/sys/kernel/random/boot_id");
    let ids = collect_each(cluster, &cluster.nodes(), |n| {
        let out = cluster.exec(n, &cmd)?;
        if !out.success() {
            return Err(NemesisError::Command {
                node: n.to_string(),
                command: "cat /proc/sys/kernel/random/boot_id".into(),
                status: out.status,
                stderr: out.stderr_text().trim().to_string(),
            });
        }
        Ok(out.stdout_text().trim().to_string())
    })?;
    let mine = local_boot_id();
    for n in nodes {
        let id = ids.get(n).cloned().unwrap_or_default();
        if mine.as_deref() == Some(id.as_str()) {
            return Err(NemesisError::Refused(format!(
                "clock faults need nodes with their own kernel clock, but {n} shares this machine's kernel (a network-namespace node of the local provider?); setting its clock would skew this machine's. Use VM nodes (`faultline cluster up --local N --vm`) or real hosts"
            )));
        }
        if let Some((other, _)) = ids.iter().find(|(m, i)| *m != n && **i == id) {
            return Err(NemesisError::Refused(format!(
                "clock faults need nodes with their own kernel clock, but {n} and {other} share one kernel"
            )));
        }
    }
    Ok(())
}

/// Uploads the helper (`helper`, normally this faultline binary) to each node unless the same
/// file (by SHA-256) is there already. It serves clock faults and the packet-fault emulator.
pub fn install_helper(
    cluster: &Cluster,
    nodes: &[String],
    helper: &Path,
) -> BTreeMap<String, String> {
    // Debug symbols are of no use on nodes and can be most of the file: upload a stripped
    // copy when `strip` is there.
    let stripped =
        std::env::temp_dir().join(format!("faultline-node-helper-{}", std::process::id()));
    let helper = match std::fs::copy(helper, &stripped).ok().and_then(|_| {
        std::process::Command::new("strip")
            .arg(&stripped)
            .status()
            .ok()
            .filter(|s| s.success())
    }) {
        Some(_) => stripped.as_path(),
        None => helper,
    };
    let digest = match std::fs::read(helper) {
        Ok(bytes) => {
            use sha2::Digest;
            let d = sha2::Sha256::digest(&bytes);
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        }
        Err(e) => {
            return nodes
                .iter()
                .map(|n| (n.clone(), format!("cannot read {}: {e}", helper.display())))
                .collect()
        }
    };
    let result = on_each(cluster, nodes, |n| {
        let out = cluster.exec(
            n,
            &RemoteCommand::script(format!("sha256sum {HELPER_PATH} 2>/dev/null || true")),
        )?;
        if !out.stdout_text().starts_with(&digest) {
            // Named per node: local nodes share this directory.
            let tmp = format!("{HELPER_PATH}.{}.{n}", std::process::id());
            cluster.upload(n, helper, Path::new(&tmp))?;
            tracing::debug!(node = n, "node helper installed");
            root_script(
                cluster,
                n,
                "install node helper",
                &format!(
                    "chmod 755 {tmp} && mv -f {tmp} {HELPER_PATH}",
                    tmp = quote(&tmp)
                ),
            )?;
        }
        Ok(())
    });
    let _ = std::fs::remove_file(&stripped);
    result
}

fn helper(args: &[String]) -> String {
    let mut parts = vec![HELPER_PATH.to_string(), "node".into(), "clock".into()];
    parts.extend(args.iter().cloned());
    parts.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// Moves each node's clock by `by_ms`.
pub fn bump(cluster: &Cluster, nodes: &[String], by_ms: i64) -> BTreeMap<String, String> {
    let cmd = helper(&["bump".into(), "--by-ms".into(), by_ms.to_string()]);
    on_each(cluster, nodes, |n| {
        root_script(cluster, n, "clock bump", &cmd).map(|_| ())
    })
}

/// Starts a strobe on each node, in the background on the node.
pub fn strobe(
    cluster: &Cluster,
    nodes: &[String],
    delta_ms: i64,
    period_ms: u64,
    duration_ms: u64,
) -> BTreeMap<String, String> {
    let cmd = helper(&[
        "strobe".into(),
        "--delta-ms".into(),
        delta_ms.to_string(),
        "--period-ms".into(),
        period_ms.to_string(),
        "--duration-ms".into(),
        duration_ms.to_string(),
    ]);
    on_each(cluster, nodes, |n| {
        let script = format!("setsid {cmd} </dev/null >/dev/null 2>&1 & echo $! > {STROBE_PID}");
        root_script(cluster, n, "clock strobe", &script).map(|_| ())
    })
}

/// Answers each byte it reads with this machine's time (nanoseconds since the epoch, as a
/// decimal line), for nodes that set their clocks from it. Serves until dropped.
pub struct TimeServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TimeServer {
    /// Listens on every address, on a free port.
    pub fn start() -> std::io::Result<TimeServer> {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("0.0.0.0:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_nodelay(true);
                        std::thread::spawn(move || {
                            let mut b = [0u8; 1];
                            while s.read_exact(&mut b).is_ok() {
                                let ns = SystemTime::now()
                                    .duration_since(UNIX_EPOCH)
                                    .unwrap_or_default()
                                    .as_nanos();
                                if s.write_all(format!("{ns}\n").as_bytes()).is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(TimeServer { port, stop })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TimeServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Stops any strobe and sets each node's clock to the controller's (retrying). Each node's
/// helper asks a [`TimeServer`] of the controller's (at the address the node's SSH session
/// comes from) a few times and keeps the answer with the shortest round trip, so the clock is
/// set to within a fraction of that round trip. Where the node cannot reach the controller,
/// the controller's time plus half an SSH round trip is sent instead.
pub fn reset(cluster: &Cluster, nodes: &[String]) -> BTreeMap<String, String> {
    let server = TimeServer::start().ok();
    on_each_retrying(cluster, nodes, |n| {
        let stop_strobe = format!(
            "if [ -f {STROBE_PID} ]; then kill \"$(cat {STROBE_PID})\" 2>/dev/null; rm -f {STROBE_PID}; fi\n\
             [ -x {HELPER_PATH} ] || exit 0\n"
        );
        if let Some(srv) = &server {
            // The controller as the node sees it.
            let from = cluster
                .exec(n, &RemoteCommand::script("echo ${SSH_CLIENT%% *}"))?
                .stdout_text()
                .trim()
                .to_string();
            if !from.is_empty() {
                let addr = if from.contains(':') {
                    format!("[{from}]:{}", srv.port())
                } else {
                    format!("{from}:{}", srv.port())
                };
                let script = format!(
                    "{stop_strobe}{}",
                    helper(&["sync".into(), "--server".into(), addr])
                );
                match root_script(cluster, n, "clock sync", &script) {
                    Ok(_) => return Ok(()),
                    Err(e) => tracing::warn!(
                        node = n,
                        error = %e,
                        "setting the clock from this machine's time server failed; sending the time instead"
                    ),
                }
            }
        }
        let t0 = std::time::Instant::now();
        cluster.exec(n, &RemoteCommand::new("true"))?;
        let half_rtt = t0.elapsed() / 2;
        let now = (SystemTime::now() + half_rtt)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let script = format!(
            "{stop_strobe}{}",
            helper(&["reset".into(), "--to-unix-ns".into(), now.to_string()])
        );
        root_script(cluster, n, "clock reset", &script).map(|_| ())
    })
}

/// What the helper does on the node itself.
pub mod local {
    use super::*;

    fn realtime() -> std::io::Result<i128> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid, writable timespec.
        if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
    }

    fn set_realtime(ns: i128) -> std::io::Result<()> {
        let ts = libc::timespec {
            tv_sec: (ns.div_euclid(1_000_000_000)) as libc::time_t,
            tv_nsec: (ns.rem_euclid(1_000_000_000)) as libc::c_long,
        };
        // SAFETY: ts is a valid timespec; the kernel checks permissions.
        if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Moves this machine's clock by `by_ms`.
    pub fn bump(by_ms: i64) -> std::io::Result<()> {
        set_realtime(realtime()? + i128::from(by_ms) * 1_000_000)
    }

    /// Jumps this machine's clock by +delta, then -delta, every `period` for `duration`, and
    /// leaves it where it started (plus the time that passed).
    pub fn strobe(delta_ms: i64, period: Duration, duration: Duration) -> std::io::Result<()> {
        let start = std::time::Instant::now();
        let mut ahead = false;
        while start.elapsed() < duration {
            let d = if ahead { -delta_ms } else { delta_ms };
            bump(d)?;
            ahead = !ahead;
            std::thread::sleep(period);
        }
        if ahead {
            bump(-delta_ms)?;
        }
        Ok(())
    }

    /// Sets this machine's clock to `unix_ns`.
    pub fn set(unix_ns: i128) -> std::io::Result<()> {
        set_realtime(unix_ns)
    }

    /// Sets this machine's clock from a [`TimeServer`] at `server`: five exchanges, the one
    /// with the shortest round trip wins, and its answer is taken as the time at the middle
    /// of that round trip.
    pub fn sync(server: &str) -> std::io::Result<()> {
        use std::io::{BufRead, BufReader, Write};
        let stream = std::net::TcpStream::connect(server)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut w = stream;
        let mut best: Option<(Duration, i128, std::time::Instant)> = None;
        for _ in 0..5 {
            let t0 = std::time::Instant::now();
            w.write_all(b"?")?;
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let t1 = std::time::Instant::now();
            let ns: i128 = line.trim().parse().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "bad time from the server")
            })?;
            let rtt = t1 - t0;
            if best.is_none_or(|(r, _, _)| rtt < r) {
                best = Some((rtt, ns, t1));
            }
        }
        let (rtt, ns, at) = best.ok_or_else(|| std::io::Error::other("no answer"))?;
        let now = ns + (rtt / 2).as_nanos() as i128 + at.elapsed().as_nanos() as i128;
        set_realtime(now)
    }
}
