//! Clock faults: bump a node's clock by an offset, strobe it (jump back and forth), and reset
//! it to the controller's time. They run on each node through the helper that faultline
//! uploads ([`crate::helper`]: the `faultline` binary itself, hidden subcommand `node clock
//! ...`), which calls `clock_settime`, so nodes need no compiler, package or internet.
//!
//! A clock fault only means something when each node has its own kernel clock: nodes that
//! share a kernel with the controller or with each other (network namespaces of the local
//! provider) are detected by their boot ids and the fault is refused, so that faultline
//! never skews the clock of the machine it runs on.
//!
//! Time synchronisation on a node (systemd-timesyncd, chrony, ntpd, ...) would undo a clock
//! fault within seconds, so the services that run are found while the fault is planned,
//! journaled with its undo, stopped with the fault, and started again once heal has reset
//! the clock.
//!
//! The kind `clock` has two shapes, [`ClockBumpSpec`] / [`ClockBumpFault`] and
//! [`ClockStrobeSpec`] / [`ClockStrobeFault`], both undone by [`ResetClock`].

use crate::fault::{Apply, Heal, NodeErrors, Package, Spec, Targets};
use crate::helper::HELPER_PATH;
use crate::registry::{FaultSpec, Kind};
use crate::remote::{all_ok, collect_each, on_each, on_each_retrying, root_script};
use crate::{helper, FaultRng, Nemesis, NemesisError};
use clusters::{quote, Cluster, RemoteCommand};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The kind `clock` (see [`Package`]).
pub struct Clock;

impl Package for Clock {
    const NAME: &'static str = "clock";
    const ABOUT: &'static str =
        "clock bumps and strobes (nodes with their own kernel; time sync stopped meanwhile)";
    const COLOR: [u8; 3] = [90, 180, 180];

    /// A bump of 1 to 60 s either way, or a strobe, on random targets.
    fn random(rng: &mut FaultRng) -> FaultSpec {
        let targets = Targets::random(rng);
        if rng.random_bool(0.5) {
            let secs: i64 = rng.random_range(1..=60);
            let sign = if rng.random_bool(0.5) { 1 } else { -1 };
            FaultSpec::ClockBump(ClockBumpSpec {
                targets,
                by_ms: sign * secs * 1000,
            })
        } else {
            FaultSpec::ClockStrobe(ClockStrobeSpec {
                targets,
                delta_ms: rng.random_range(10..=500),
                period_ms: rng.random_range(1..=50),
                duration_ms: rng.random_range(1_000..=10_000),
            })
        }
    }
}

/// Move the targets' clocks by `by_ms` milliseconds (may be negative), as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockBumpSpec {
    /// Which nodes.
    pub targets: Targets,
    /// The offset.
    pub by_ms: i64,
}

/// Jump the targets' clocks back and forth by `delta_ms` every `period_ms` for
/// `duration_ms`, as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockStrobeSpec {
    /// Which nodes.
    pub targets: Targets,
    /// How far each jump goes.
    pub delta_ms: i64,
    /// Time between jumps.
    pub period_ms: u64,
    /// How long the strobe lasts.
    pub duration_ms: u64,
}

/// Clocks moved by `by_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockBumpFault {
    /// Affected nodes.
    pub nodes: Vec<String>,
    /// The offset in milliseconds.
    pub by_ms: i64,
}

/// Clocks strobed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockStrobeFault {
    /// Affected nodes.
    pub nodes: Vec<String>,
    /// Jump size in milliseconds.
    pub delta_ms: i64,
    /// Time between jumps in milliseconds.
    pub period_ms: u64,
    /// How long, in milliseconds.
    pub duration_ms: u64,
}

/// Set these nodes' clocks back to the controller's time, then start the time-sync units
/// the fault stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetClock {
    /// The nodes.
    pub nodes: Vec<String>,
    /// Node to the time-synchronisation units (systemd) that ran before the fault.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub time_sync: BTreeMap<String, Vec<String>>,
}

impl Spec for ClockBumpSpec {
    type Fault = ClockBumpFault;

    fn resolve<R: Rng>(
        &self,
        nem: &Nemesis<'_>,
        rng: &mut R,
    ) -> Result<ClockBumpFault, NemesisError> {
        Ok(ClockBumpFault {
            nodes: self
                .targets
                .resolve(&nem.cluster().nodes(), || nem.primaries(), rng)?,
            by_ms: self.by_ms,
        })
    }
}

impl Spec for ClockStrobeSpec {
    type Fault = ClockStrobeFault;

    fn resolve<R: Rng>(
        &self,
        nem: &Nemesis<'_>,
        rng: &mut R,
    ) -> Result<ClockStrobeFault, NemesisError> {
        Ok(ClockStrobeFault {
            nodes: self
                .targets
                .resolve(&nem.cluster().nodes(), || nem.primaries(), rng)?,
            delta_ms: self.delta_ms,
            period_ms: self.period_ms,
            duration_ms: self.duration_ms,
        })
    }
}

/// Plans a clock fault on `nodes`: refuses shared kernels, installs the helper, and records
/// the time-sync units to stop and start again.
fn plan_clock(nem: &Nemesis<'_>, nodes: &[String]) -> Result<(ResetClock, ()), NemesisError> {
    require_own_clocks(nem.cluster(), nodes)?;
    all_ok(helper::install(nem.cluster(), nodes, &nem.helper()?))?;
    let undo = ResetClock {
        nodes: nodes.to_vec(),
        time_sync: active_time_sync(nem.cluster(), nodes)?,
    };
    Ok((undo, ()))
}

impl Apply for ClockBumpFault {
    const KIND: Kind = Kind::Clock;
    type Undo = ResetClock;
    type Plan = ();

    fn plan(&self, nem: &Nemesis<'_>) -> Result<(ResetClock, ()), NemesisError> {
        plan_clock(nem, &self.nodes)
    }

    fn apply(
        &self,
        nem: &Nemesis<'_>,
        undo: &ResetClock,
        _plan: (),
        _id: u64,
    ) -> Result<NodeErrors, NemesisError> {
        Ok(bump(
            nem.cluster(),
            &self.nodes,
            self.by_ms,
            &undo.time_sync,
        ))
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }
}

impl Apply for ClockStrobeFault {
    const KIND: Kind = Kind::Clock;
    type Undo = ResetClock;
    type Plan = ();

    fn plan(&self, nem: &Nemesis<'_>) -> Result<(ResetClock, ()), NemesisError> {
        plan_clock(nem, &self.nodes)
    }

    fn apply(
        &self,
        nem: &Nemesis<'_>,
        undo: &ResetClock,
        _plan: (),
        _id: u64,
    ) -> Result<NodeErrors, NemesisError> {
        let s = Strobe {
            delta_ms: self.delta_ms,
            period_ms: self.period_ms,
            duration_ms: self.duration_ms,
        };
        Ok(strobe(nem.cluster(), &self.nodes, s, &undo.time_sync))
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }
}

impl fmt::Display for ClockBumpFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clock bump {:+}ms on {}",
            self.by_ms,
            self.nodes.join(",")
        )
    }
}

impl fmt::Display for ClockStrobeFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clock strobe ±{}ms every {}ms for {}ms on {}",
            self.delta_ms,
            self.period_ms,
            self.duration_ms,
            self.nodes.join(",")
        )
    }
}

impl fmt::Display for ResetClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reset the clock of {}", self.nodes.join(","))?;
        let units: Vec<String> = self
            .time_sync
            .iter()
            .filter(|(_, u)| !u.is_empty())
            .map(|(n, u)| format!("{} on {n}", u.join(",")))
            .collect();
        if !units.is_empty() {
            write!(f, " and start {}", units.join("; "))?;
        }
        Ok(())
    }
}

impl Heal for ResetClock {
    fn heal(&self, nem: &Nemesis<'_>) -> NodeErrors {
        reset(nem.cluster(), &self.nodes, &self.time_sync)
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }

    /// Also what stops a strobe and restarts the time-sync units a clock fault stopped.
    fn on_node(&self, node: &str) -> Option<ResetClock> {
        Some(ResetClock {
            nodes: vec![node.to_string()],
            time_sync: self
                .time_sync
                .get(node)
                .map(|u| [(node.to_string(), u.clone())].into())
                .unwrap_or_default(),
        })
    }
}

/// Where running strobes' PIDs are kept on a node: one file per strobe (`PID.pid`), so that
/// a reset stops every strobe, also when several were started on one node.
const STROBE_DIR: &str = "/run/faultline/strobe";

/// Where faultline kept the one strobe's PID before [`STROBE_DIR`] (a reset still stops a
/// strobe that an earlier version started).
const OLD_STROBE_PID: &str = "/var/tmp/faultline-strobe.pid";

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

fn helper(args: &[String]) -> String {
    let mut parts = vec![HELPER_PATH.to_string(), "node".into(), "clock".into()];
    parts.extend(args.iter().cloned());
    parts.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// The systemd units of time-synchronisation services that would undo a clock fault.
pub const TIME_SYNC_UNITS: &[&str] = &[
    "systemd-timesyncd",
    "chrony",
    "chronyd",
    "ntp",
    "ntpd",
    "ntpsec",
    "openntpd",
];

/// The time-synchronisation units running on each node, by their canonical unit names
/// (`chronyd.service` and its alias `chrony.service` are one). Changes nothing; nodes
/// without systemd have none.
pub fn active_time_sync(
    cluster: &Cluster,
    nodes: &[String],
) -> Result<BTreeMap<String, Vec<String>>, NemesisError> {
    let units: Vec<String> = TIME_SYNC_UNITS
        .iter()
        .map(|u| quote(&format!("{u}.service")))
        .collect();
    let script = format!(
        "command -v systemctl >/dev/null 2>&1 || exit 0\n\
         for u in {}; do\n\
         \x20 if systemctl is-active --quiet \"$u\"; then systemctl show -p Id \"$u\" | sed -n 's/^Id=//p'; fi\n\
         done\n",
        units.join(" ")
    );
    collect_each(cluster, nodes, |n| {
        let out = root_script(cluster, n, "find time sync services", &script)?;
        Ok(parse_units(&out.stdout_text()))
    })
}

/// The unit names in `systemctl show -p Id` output (without `Id=`), sorted, each once;
/// anything that is not a plain unit name is ignored.
pub fn parse_units(text: &str) -> Vec<String> {
    let mut units: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|u| {
            u.ends_with(".service")
                && u.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@._-".contains(c))
        })
        .map(str::to_string)
        .collect();
    units.sort();
    units.dedup();
    units
}

/// A script line that stops `node`'s units in `time_sync` and ends the script with its status
/// when that fails, or nothing when the node has none.
fn stop_time_sync(time_sync: &BTreeMap<String, Vec<String>>, node: &str) -> String {
    match time_sync.get(node) {
        Some(units) if !units.is_empty() => {
            let units: Vec<String> = units.iter().map(|u| quote(u)).collect();
            format!("systemctl stop {} || exit\n", units.join(" "))
        }
        _ => String::new(),
    }
}

/// The script that starts `cmd` (a strobe) in the background and records its PID in a file
/// of its own in `strobe_dir`.
fn start_strobe_script(cmd: &str, strobe_dir: &str) -> String {
    let dir = quote(strobe_dir);
    format!(
        "mkdir -p {dir} && chmod 700 {dir}\n\
         setsid {cmd} </dev/null >/dev/null 2>&1 &\n\
         echo $! > {dir}/$!.pid\n"
    )
}

/// The script that stops every strobe recorded in `strobe_dir` (and one an earlier version
/// recorded), each only if its PID is still a strobe (not a PID reused since), and removes
/// the records.
fn stop_strobes_script(strobe_dir: &str) -> String {
    // Tests use their own directory and must not touch this machine's strobes.
    let legacy = if strobe_dir == STROBE_DIR {
        OLD_STROBE_PID
    } else {
        ""
    };
    format!(
        "for f in {}/*.pid {legacy}; do\n\
         \x20 [ -f \"$f\" ] || continue\n\
         \x20 p=$(cat \"$f\" 2>/dev/null)\n\
         \x20 case \"$p\" in ''|*[!0-9]*) ;; *) if grep -qa strobe /proc/\"$p\"/cmdline 2>/dev/null; then kill \"$p\" 2>/dev/null; fi ;; esac\n\
         \x20 rm -f \"$f\"\n\
         done\n",
        quote(strobe_dir)
    )
}

/// The script of a reset on `node`: stop every strobe; set the clock with `set_clock` (a
/// helper command) when the helper is there; start `node`'s units in `time_sync` again
/// whatever happened to the clock (units that no longer exist are skipped, so that a removed
/// service cannot keep a fault from being healed); exit non-zero when anything failed.
fn reset_script(
    set_clock: &str,
    time_sync: &BTreeMap<String, Vec<String>>,
    node: &str,
    strobe_dir: &str,
) -> String {
    let mut script = format!(
        "s=0\n{}if [ -x {HELPER_PATH} ]; then {set_clock} || s=$?; fi\n",
        stop_strobes_script(strobe_dir)
    );
    if let Some(units) = time_sync.get(node).filter(|u| !u.is_empty()) {
        let units: Vec<String> = units.iter().map(|u| quote(u)).collect();
        script.push_str(&format!(
            "for u in {}; do\n\
             \x20 if systemctl cat \"$u\" >/dev/null 2>&1; then systemctl start \"$u\" || s=1; fi\n\
             done\n",
            units.join(" ")
        ));
    }
    script.push_str("exit $s\n");
    script
}

/// Moves each node's clock by `by_ms`, first stopping its time-sync units in `time_sync`.
pub fn bump(
    cluster: &Cluster,
    nodes: &[String],
    by_ms: i64,
    time_sync: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, String> {
    let cmd = helper(&["bump".into(), "--by-ms".into(), by_ms.to_string()]);
    on_each(cluster, nodes, |n| {
        let script = format!("{}{cmd}", stop_time_sync(time_sync, n));
        root_script(cluster, n, "clock bump", &script).map(|_| ())
    })
}

/// How a strobe goes: each clock jumps by +`delta_ms` and back every `period_ms`, for
/// `duration_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Strobe {
    /// The size of each jump.
    pub delta_ms: i64,
    /// The time between jumps.
    pub period_ms: u64,
    /// How long it goes on.
    pub duration_ms: u64,
}

/// Starts a strobe on each node, in the background on the node, first stopping its time-sync
/// units in `time_sync`.
pub fn strobe(
    cluster: &Cluster,
    nodes: &[String],
    strobe: Strobe,
    time_sync: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, String> {
    let cmd = helper(&[
        "strobe".into(),
        "--delta-ms".into(),
        strobe.delta_ms.to_string(),
        "--period-ms".into(),
        strobe.period_ms.to_string(),
        "--duration-ms".into(),
        strobe.duration_ms.to_string(),
    ]);
    on_each(cluster, nodes, |n| {
        let script = format!(
            "{}{}",
            stop_time_sync(time_sync, n),
            start_strobe_script(&cmd, STROBE_DIR)
        );
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
/// the controller's time plus half an SSH round trip is sent instead. Then the time-sync
/// units in `time_sync` (those the faults stopped) are started again.
pub fn reset(
    cluster: &Cluster,
    nodes: &[String],
    time_sync: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, String> {
    let server = TimeServer::start().ok();
    on_each_retrying(cluster, nodes, |n| {
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
                let script = reset_script(
                    &helper(&["sync".into(), "--server".into(), addr]),
                    time_sync,
                    n,
                    STROBE_DIR,
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
        let script = reset_script(
            &helper(&["reset".into(), "--to-unix-ns".into(), now.to_string()]),
            time_sync,
            n,
            STROBE_DIR,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_are_kept_once_and_anything_else_is_dropped() {
        let text =
            "chrony.service\nsystemd-timesyncd.service\n\nchrony.service\n$(reboot).service\nntp\n";
        assert_eq!(
            parse_units(text),
            vec!["chrony.service", "systemd-timesyncd.service"]
        );
        assert!(parse_units("").is_empty());
    }

    #[test]
    fn time_sync_scripts_quote_units_and_report_failure() {
        let mut t = BTreeMap::new();
        t.insert(
            "n1".to_string(),
            vec!["chrony.service".to_string(), "x; reboot".to_string()],
        );
        t.insert("n2".to_string(), Vec::new());
        assert_eq!(
            stop_time_sync(&t, "n1"),
            "systemctl stop chrony.service 'x; reboot' || exit\n"
        );
        assert_eq!(stop_time_sync(&t, "n2"), "");
        let r = reset_script("helper sync", &t, "n1", STROBE_DIR);
        assert!(r.contains("then helper sync || s=$?; fi"), "{r}");
        assert!(r.contains("for u in chrony.service 'x; reboot'; do"), "{r}");
        assert!(r.ends_with("exit $s\n"), "{r}");
        assert!(!reset_script("helper sync", &t, "n3", STROBE_DIR).contains("systemctl"));
    }

    /// The reset script as sh runs it: units are started even when setting the clock
    /// failed, units that are gone are skipped, and the script's status says it failed.
    #[test]
    fn a_failed_clock_set_still_restarts_time_sync_and_fails() {
        let t: BTreeMap<String, Vec<String>> = [(
            "n1".to_string(),
            vec!["a.service".to_string(), "gone.service".to_string()],
        )]
        .into();
        let script =
            reset_script("false", &t, "n1", "/nonexistent").replace(HELPER_PATH, "/bin/sh");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        // A stand-in systemctl that knows only a.service and logs what it is asked.
        let fake = dir.path().join("systemctl");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho \"$@\" >> {}\n[ \"$2\" = a.service ]\n",
                log.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{script}");
        let calls = std::fs::read_to_string(&log).unwrap();
        assert_eq!(calls, "cat a.service\nstart a.service\ncat gone.service\n");
    }

    #[test]
    fn a_reset_journaled_before_time_sync_was_recorded_still_reads() {
        let old: crate::Undo =
            serde_json::from_str(r#"{"undo":"reset-clock","nodes":["n1"]}"#).expect("parse");
        assert_eq!(
            old,
            crate::Undo::ResetClock(ResetClock {
                nodes: vec!["n1".into()],
                time_sync: BTreeMap::new(),
            })
        );
        let new = crate::Undo::ResetClock(ResetClock {
            nodes: vec!["n1".into()],
            time_sync: [("n1".to_string(), vec!["chrony.service".to_string()])].into(),
        });
        let line = serde_json::to_string(&new).expect("json");
        assert_eq!(
            serde_json::from_str::<crate::Undo>(&line).expect("parse"),
            new
        );
    }

    /// Whether process `pid` is still running (a zombie is not).
    fn running(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().to_string())
            })
            .is_some_and(|rest| !rest.starts_with('Z'))
    }

    /// Two strobes on one node used to share one PID file, so that a reset stopped only the
    /// newest and the other went on moving the clock after heal.
    #[test]
    fn a_reset_stops_every_strobe_on_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let strobes = dir.path().join("strobe");
        let strobes = strobes.to_str().unwrap();
        // A stand-in for the helper's strobe: a loop whose command line says "strobe".
        let fake = "sh -c 'while :; do sleep 0.05; done' strobe";
        for _ in 0..2 {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(start_strobe_script(fake, strobes))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        let pids: Vec<u32> = std::fs::read_dir(strobes)
            .unwrap()
            .map(|e| {
                let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
                text.trim().parse().unwrap()
            })
            .collect();
        assert_eq!(pids.len(), 2, "one PID file per strobe");
        assert!(pids.iter().all(|p| running(*p)));
        let script = reset_script("true", &BTreeMap::new(), "n1", strobes)
            .replace(HELPER_PATH, "/nonexistent");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pids.iter().any(|p| running(*p)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<u32> = pids.iter().copied().filter(|p| running(*p)).collect();
        for p in &left {
            // SAFETY: kill of a process this test started.
            unsafe { libc::kill(*p as i32, libc::SIGKILL) };
        }
        assert!(
            left.is_empty(),
            "strobes still running after reset: {left:?}"
        );
        assert_eq!(std::fs::read_dir(strobes).unwrap().count(), 0);
    }
}
