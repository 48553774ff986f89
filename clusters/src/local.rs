//! The local provider: N nodes on this machine, each a network namespace on a bridge with its
//! own address, and inside it its own sshd, hostname (n1..nN), PID namespace, and private
//! /tmp, /run, /root and database directories (a mount namespace: `/var/lib/faultline-db`
//! and `/var/log/faultline-db` are the node's own), so that a database started in one node
//! cannot see or signal another's processes or read its files.
//!
//! Everything `up` makes is recorded under the cluster's state directory
//! (`$FAULTLINE_HOME/clusters/NAME`, default `/var/lib/faultline`), and `down` removes exactly
//! that: the namespaces' processes (by the PIDs recorded, each signalled only while it is
//! still the process `up` started: same start time, boot, PID namespace and command line), the
//! namespaces, the bridge, and the directory. Requires root.

use crate::config::{ClusterFile, SshOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Errors creating or removing a local cluster.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Not running as root.
    #[error("a local cluster needs root (network namespaces, bridges, sshd): run faultline as root, e.g. with sudo")]
    NotRoot,
    /// A program is missing.
    #[error("{program} is missing: install the Debian package(s) {packages} (apt-get install {packages})")]
    Missing {
        /// The program.
        program: String,
        /// The apt packages that provide it.
        packages: String,
    },
    /// A command failed.
    #[error("{command}: {message}")]
    Command {
        /// The command.
        command: String,
        /// Its stderr or the OS error.
        message: String,
    },
    /// A node did not come up.
    #[error("node {node}: sshd did not answer on {addr} within {secs} s (its log: {log})")]
    NotReady {
        /// The node.
        node: String,
        /// Its address.
        addr: String,
        /// Seconds waited.
        secs: u64,
        /// sshd's log file.
        log: String,
    },
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No free /24 for the cluster's bridge.
    #[error("no free 10.250.x.0/24 subnet: every candidate clashes with a route on this machine")]
    NoSubnet,
    /// Interfaces or namespaces of this name exist, but no state records them.
    #[error("{what}: already there, but no state of cluster {name:?} records it (left by a run whose state directory is gone?). Remove it with: {fix}")]
    Leftover {
        /// The cluster.
        name: String,
        /// What exists.
        what: String,
        /// The commands that remove it.
        fix: String,
    },
    /// The state directory is where nodes cannot see it.
    #[error("faultline's state directory {0} is under /tmp, /run or /root, which local nodes replace with private copies, so their sshd could not read its configuration: set FAULTLINE_HOME elsewhere (default /var/lib/faultline)")]
    HiddenHome(String),
    /// The name cannot be used.
    #[error("cluster name {0:?}: expected 1-20 characters of a-z, 0-9 and -")]
    BadName(String),
}

/// The root of faultline's state on this machine.
pub fn state_root() -> PathBuf {
    std::env::var_os("FAULTLINE_HOME")
        .map_or_else(|| PathBuf::from("/var/lib/faultline"), PathBuf::from)
}

/// The state directory of local cluster `name`.
pub fn state_dir(name: &str) -> PathBuf {
    state_root().join("clusters").join(name)
}

pub(crate) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> LocalError + '_ {
    move |source| LocalError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(crate) fn run(program: &str, args: &[&str]) -> Result<String, LocalError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| LocalError::Command {
            command: format!("{program} {}", args.join(" ")),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(LocalError::Command {
            command: format!("{program} {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Like [`run`] but ignores failure (for idempotent teardown of things that may be gone).
pub(crate) fn run_quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub(crate) fn validate_name(name: &str) -> Result<(), LocalError> {
    let ok = !name.is_empty()
        && name.len() <= 20
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(LocalError::BadName(name.to_string()))
    }
}

/// A short stable tag for interface names (IFNAMSIZ is 15 bytes).
pub(crate) fn tag(name: &str) -> String {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{:05x}", h & 0xfffff)
}

/// Names of everything a local cluster makes, derived from its name.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Cluster name.
    pub name: String,
    /// State directory.
    pub dir: PathBuf,
    /// The bridge.
    pub bridge: String,
    /// Third octet of 10.250.X.0/24.
    pub subnet: u8,
}

impl Layout {
    /// The network namespace of node `i` (1-based).
    pub fn netns(&self, i: usize) -> String {
        format!("fl-{}-n{i}", self.name)
    }
    /// The host side of node `i`'s veth pair.
    pub fn veth(&self, i: usize) -> String {
        format!("flv{}n{i}", tag(&self.name))
    }
    /// Node `i`'s address.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 250, self.subnet, i as u8)
    }
    /// The bridge's (controller's) address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 250, self.subnet, 254)
    }
    /// Node `i`'s directory.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join("nodes").join(format!("n{i}"))
    }
    /// The cluster file.
    pub fn cluster_file(&self) -> PathBuf {
        self.dir.join("cluster.yaml")
    }
}

/// Picks a 10.250.X.0/24 that no route on this machine overlaps, starting from one derived
/// from the name (so a name keeps its subnet across runs when it is free).
pub(crate) fn pick_subnet(name: &str) -> Result<u8, LocalError> {
    let routes = run("ip", &["-4", "route", "show", "table", "all"]).unwrap_or_default();
    let used = |x: u8| {
        let net = format!("10.250.{x}.");
        routes.lines().any(|l| {
            l.contains(&net) || l.starts_with("10.0.0.0/8") || l.starts_with("10.250.0.0/16")
        })
    };
    let start = u8::from_str_radix(&tag(name)[..2], 16).unwrap_or(0) % 200 + 20;
    (0..200u16)
        .map(|k| ((u16::from(start) + k) % 220 + 20) as u8)
        .find(|x| !used(*x))
        .ok_or(LocalError::NoSubnet)
}

fn require_tools() -> Result<(), LocalError> {
    for (program, packages) in [
        ("/usr/sbin/sshd", "openssh-server"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
        ("/usr/sbin/ip", "iproute2"),
        ("/usr/bin/unshare", "util-linux"),
        ("/usr/bin/nsenter", "util-linux"),
    ] {
        let alt = program
            .replace("/usr/sbin/", "/sbin/")
            .replace("/usr/bin/", "/bin/");
        if !Path::new(program).exists() && !Path::new(&alt).exists() {
            return Err(LocalError::Missing {
                program: program.to_string(),
                packages: packages.to_string(),
            });
        }
    }
    Ok(())
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub(crate) fn write(path: &Path, text: &str) -> Result<(), LocalError> {
    std::fs::write(path, text).map_err(io_err(path))
}

pub(crate) fn keygen(path: &Path, comment: &str) -> Result<String, LocalError> {
    if !path.exists() {
        let p = path.display().to_string();
        run(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", &p],
        )?;
    }
    let pubkey = path.with_extension("pub");
    std::fs::read_to_string(&pubkey).map_err(io_err(&pubkey))
}

pub(crate) fn answers(addr: Ipv4Addr) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((addr, 22)), Duration::from_millis(200)).is_ok()
}

pub(crate) fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0 && !is_zombie(pid)
}

/// Whether `pid` has exited and waits to be reaped (state `Z` in /proc/PID/stat). A zombie
/// whose parent is gone is reaped by PID 1, which in containers may take its time: waiting for
/// it to vanish cost `down` 5 s per cluster.
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The state follows the command, which is in parentheses and may hold spaces.
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|st| st == "Z")
        })
        .unwrap_or(false)
}

pub(crate) fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// What identifies a process that `up` started, recorded next to its PID file
/// (`<name>.id` beside `<name>.pid`) so that `down` signals it only while that PID is still
/// that process: a PID is reused once its process is gone, and after a reboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// Start time in clock ticks after boot (field 22 of /proc/PID/stat).
    start: u64,
    /// The kernel's boot id (/proc/sys/kernel/random/boot_id) when it was recorded.
    boot: String,
    /// Its PID namespace (the target of /proc/PID/ns/pid).
    pidns: String,
    /// A string its command line holds: the node's state directory, which every command
    /// `up` starts for a node names (before and after it execs).
    marker: String,
}

/// Start time of `pid` in clock ticks after boot.
fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; field 22 is the
    // 20th after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The command line of `pid`, its arguments joined by spaces.
fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&raw)
            .split('\0')
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn boot_id() -> Option<String> {
    Some(
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()?
            .trim()
            .to_string(),
    )
}

impl Identity {
    /// The identity of the running process `pid`, whose command line must hold `marker`.
    pub(crate) fn of(pid: i32, marker: &str) -> Option<Identity> {
        if pid <= 0 || !cmdline(pid)?.contains(marker) {
            return None;
        }
        Some(Identity {
            start: start_ticks(pid)?,
            boot: boot_id()?,
            pidns: std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                .ok()?
                .display()
                .to_string(),
            marker: marker.to_string(),
        })
    }

    fn render(&self) -> String {
        format!(
            "start={}\nboot={}\npidns={}\nmarker={}\n",
            self.start, self.boot, self.pidns, self.marker
        )
    }

    fn parse(text: &str) -> Option<Identity> {
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(Identity {
            start: field("start")?.parse().ok()?,
            boot: field("boot")?,
            pidns: field("pidns")?,
            marker: field("marker")?,
        })
    }
}

/// Records `pid` as `<name>.pid` in `dir`, with its identity in `<name>.id` (its command
/// line must hold `marker` within 5 s).
pub(crate) fn record_pid(dir: &Path, name: &str, pid: i32, marker: &str) -> Result<(), LocalError> {
    record_pid_within(dir, name, pid, marker, Duration::from_secs(5))
}

fn record_pid_within(
    dir: &Path,
    name: &str,
    pid: i32,
    marker: &str,
    wait: Duration,
) -> Result<(), LocalError> {
    // Just spawned, it may not have exec'd its command yet: wait until its command line
    // names the marker.
    let deadline = Instant::now() + wait;
    let mut id = Identity::of(pid, marker);
    while id.is_none() && pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        id = Identity::of(pid, marker);
    }
    let id = id.ok_or_else(|| LocalError::Command {
        command: format!("recording {name} (PID {pid})"),
        message: format!("process {pid} is gone, or its command line does not name {marker}"),
    })?;
    write(&dir.join(format!("{name}.id")), &id.render())?;
    write(&dir.join(format!("{name}.pid")), &format!("{pid}\n"))
}

/// The PID recorded as `<name>.pid` in `dir`, if that PID is still the process `up` recorded
/// there: the same start time, boot and PID namespace, and a command line that holds its
/// marker. A state directory from before identities were recorded (no `<name>.id`) is
/// trusted only as far as the command line: it must hold `marker` (the node's directory).
/// Anything else is logged and `None`: the PID now belongs to some other process.
pub(crate) fn recorded_pid(dir: &Path, name: &str, marker: &str) -> Option<i32> {
    let pid = read_pid(&dir.join(format!("{name}.pid")))?;
    if !pid_alive(pid) {
        return None;
    }
    let ours = match std::fs::read_to_string(dir.join(format!("{name}.id"))) {
        Ok(text) => match Identity::parse(&text) {
            Some(recorded) => Identity::of(pid, &recorded.marker).as_ref() == Some(&recorded),
            None => false,
        },
        Err(_) => cmdline(pid).is_some_and(|c| c.contains(marker)),
    };
    if !ours {
        tracing::warn!(
            pid,
            file = %dir.join(format!("{name}.pid")).display(),
            "PID is no longer the process this cluster started (reused after it exited, or after a reboot): not signalled"
        );
        return None;
    }
    Some(pid)
}

/// Brings up a local cluster of `n` nodes named `name` and returns the path of its cluster
/// file. Idempotent: a cluster that is already up and answering is left as it is.
pub fn up(n: usize, name: &str) -> Result<PathBuf, LocalError> {
    validate_name(name)?;
    let root = std::path::absolute(state_root()).unwrap_or_else(|_| state_root());
    if ["/tmp", "/run", "/root"]
        .iter()
        .any(|p| root.starts_with(p))
    {
        return Err(LocalError::HiddenHome(root.display().to_string()));
    }
    if !is_root() {
        return Err(LocalError::NotRoot);
    }
    require_tools()?;
    if !(1..=50).contains(&n) {
        return Err(LocalError::Command {
            command: "cluster up".into(),
            message: format!("--local {n}: expected between 1 and 50 nodes"),
        });
    }
    if state_dir(name).join("vm").exists() {
        down(name)?;
    }
    if let Some(layout) = existing(name) {
        let count = (1..).take_while(|i| layout.node_dir(*i).exists()).count();
        let healthy = count == n
            && (1..=n).all(|i| {
                let dir = layout.node_dir(i);
                recorded_pid(&dir, "init", &dir.display().to_string()).is_some()
                    && answers(layout.addr(i))
            });
        if healthy {
            return Ok(layout.cluster_file());
        }
        down(name)?;
    }
    let layout = new_layout(name, n, &[])?;
    let result = build(&layout, n);
    if result.is_err() {
        let _ = down(name);
    }
    result
}

/// Refuses to build over interfaces or namespaces with this cluster's names that no state
/// records (a run whose state directory is gone), naming the commands that remove them.
pub(crate) fn check_leftovers(layout: &Layout, n: usize) -> Result<(), LocalError> {
    // Interfaces or namespaces with this cluster's names that no state records.
    let mut fix = Vec::new();
    let mut what = Vec::new();
    for link in std::iter::once(layout.bridge.clone()).chain((1..=n).map(|i| layout.veth(i))) {
        if Path::new("/sys/class/net").join(&link).exists() {
            what.push(format!("interface {link}"));
            fix.push(format!("ip link del {link}"));
        }
    }
    for i in 1..=n {
        if Path::new("/run/netns").join(layout.netns(i)).exists() {
            what.push(format!("namespace {}", layout.netns(i)));
            fix.push(format!("ip netns del {}", layout.netns(i)));
        }
    }
    if !fix.is_empty() {
        return Err(LocalError::Leftover {
            name: layout.name.clone(),
            what: what.join(", "),
            fix: fix.join("; "),
        });
    }
    Ok(())
}

/// Lays out a new cluster of `n` nodes: refuses leftovers of an earlier one, makes its state
/// directory with the files in `marks` (name, text), picks a free subnet and records the
/// layout, which from then on is what `down` removes.
pub(crate) fn new_layout(
    name: &str,
    n: usize,
    marks: &[(&str, &str)],
) -> Result<Layout, LocalError> {
    let dir = state_dir(name);
    let mut layout = Layout {
        name: name.to_string(),
        dir: dir.clone(),
        bridge: format!("flb{}", tag(name)),
        subnet: 0,
    };
    check_leftovers(&layout, n)?;
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    for (file, text) in marks {
        write(&dir.join(file), text)?;
    }
    layout.subnet = pick_subnet(name)?;
    write(
        &dir.join("layout"),
        &format!("{} {} {n}\n", layout.bridge, layout.subnet),
    )?;
    Ok(layout)
}

/// Makes the cluster's bridge with this machine's address on it (the nodes' gateway).
pub(crate) fn make_bridge(layout: &Layout) -> Result<(), LocalError> {
    let gw = format!("{}/24", layout.gateway());
    run("ip", &["link", "add", &layout.bridge, "type", "bridge"])?;
    run("ip", &["addr", "add", &gw, "dev", &layout.bridge])?;
    run("ip", &["link", "set", &layout.bridge, "up"])?;
    Ok(())
}

/// The /etc/hosts of every node: localhost and n1..nN.
pub(crate) fn hosts_file(layout: &Layout, n: usize) -> String {
    let mut hosts = String::from("127.0.0.1 localhost\n");
    for i in 1..=n {
        hosts.push_str(&format!("{} n{i}\n", layout.addr(i)));
    }
    hosts
}

/// How the controller reaches the nodes: a known_hosts that pins each node's host key and an
/// ssh config that names the nodes n1..nN.
pub(crate) struct Access {
    known_hosts: String,
    ssh_config: String,
}

impl Access {
    /// Empty, with `by` (the command that made the cluster) in the ssh config's header.
    pub(crate) fn new(by: &str) -> Access {
        Access {
            known_hosts: String::new(),
            ssh_config: format!("# Written by `{by}`.\n"),
        }
    }

    /// Adds node `i` at `addr`, whose public host key (as ssh-keygen wrote it) is `host_pub`.
    pub(crate) fn add(&mut self, i: usize, addr: Ipv4Addr, host_pub: &str) {
        let key: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        self.known_hosts
            .push_str(&format!("{addr} {}\n", key.join(" ")));
        self.ssh_config.push_str(&format!(
            "Host n{i}\n  HostName {addr}\n  User root\n  Port 22\n"
        ));
    }

    /// Writes known_hosts and ssh_config into the cluster's directory.
    pub(crate) fn write(&self, layout: &Layout) -> Result<(), LocalError> {
        write(&layout.dir.join("known_hosts"), &self.known_hosts)?;
        write(&layout.dir.join("ssh_config"), &self.ssh_config)
    }
}

/// Waits until every node's sshd answers, polling every `poll`, for `secs` in all; a node that
/// does not is named with the log to read (`log` of its number).
pub(crate) fn await_sshd(
    layout: &Layout,
    n: usize,
    secs: u64,
    poll: Duration,
    log: impl Fn(usize) -> PathBuf,
) -> Result<(), LocalError> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    for i in 1..=n {
        while !answers(layout.addr(i)) {
            if Instant::now() > deadline {
                return Err(LocalError::NotReady {
                    node: format!("n{i}"),
                    addr: layout.addr(i).to_string(),
                    secs,
                    log: log(i).display().to_string(),
                });
            }
            std::thread::sleep(poll);
        }
    }
    Ok(())
}

/// Writes the cluster file: nodes n1..nN as root with the controller's `key`, through the
/// cluster's ssh config and known_hosts.
pub(crate) fn write_cluster_file(
    layout: &Layout,
    n: usize,
    key: PathBuf,
) -> Result<PathBuf, LocalError> {
    let file = ClusterFile {
        name: layout.name.clone(),
        nodes: (1..=n).map(|i| format!("n{i}")).collect(),
        ssh: SshOptions {
            user: Some("root".into()),
            port: Some(22),
            private_key: Some(key),
            config: Some(layout.dir.join("ssh_config")),
            known_hosts: Some(layout.dir.join("known_hosts")),
            ..SshOptions::default()
        },
    };
    let path = layout.cluster_file();
    write(&path, &file.to_yaml())?;
    Ok(path)
}

pub(crate) fn existing(name: &str) -> Option<Layout> {
    let dir = state_dir(name);
    let text = std::fs::read_to_string(dir.join("layout")).ok()?;
    let mut parts = text.split_whitespace();
    let bridge = parts.next()?.to_string();
    let subnet = parts.next()?.parse().ok()?;
    Some(Layout {
        name: name.to_string(),
        dir,
        bridge,
        subnet,
    })
}

fn build(layout: &Layout, n: usize) -> Result<PathBuf, LocalError> {
    let dir = &layout.dir;
    let key = dir.join("id_ed25519");
    let controller_pub = keygen(&key, "faultline-controller")?;
    write(&dir.join("authorized_keys"), &controller_pub)?;
    make_bridge(layout)?;
    let hosts = hosts_file(layout, n);
    let mut access = Access::new("faultline cluster up --local N");
    for i in 1..=n {
        let node_dir = layout.node_dir(i);
        for sub in ["tmp", "run/sshd", "data", "log", "etc", "root"] {
            let p = node_dir.join(sub);
            std::fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        use std::os::unix::fs::PermissionsExt;
        let tmp = node_dir.join("tmp");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
            .map_err(io_err(&tmp))?;
        write(&node_dir.join("etc/hosts"), &hosts)?;
        write(&node_dir.join("etc/hostname"), &format!("n{i}\n"))?;
        let host_key = node_dir.join("ssh_host_ed25519_key");
        let host_pub = keygen(&host_key, &format!("n{i}"))?;
        let addr = layout.addr(i);
        access.add(i, addr, &host_pub);
        let sshd_config = format!(
            "Port 22\nListenAddress {addr}\nHostKey {hk}\nPidFile /run/sshd.pid\nAuthorizedKeysFile {ak}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nUseDNS no\nMaxSessions 64\nMaxStartups 64:30:128\nSubsystem sftp internal-sftp\nAcceptEnv LANG LC_*\n",
            hk = host_key.display(),
            ak = dir.join("authorized_keys").display()
        );
        write(&node_dir.join("sshd_config"), &sshd_config)?;
        // Network: a namespace with a veth pair onto the bridge.
        let ns = layout.netns(i);
        let veth = layout.veth(i);
        run("ip", &["netns", "add", &ns])?;
        run(
            "ip",
            &[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        )?;
        run(
            "ip",
            &["link", "set", &veth, "master", &layout.bridge, "up"],
        )?;
        let cidr = format!("{addr}/24");
        let gw_addr = layout.gateway().to_string();
        run("ip", &["-n", &ns, "addr", "add", &cidr, "dev", "eth0"])?;
        run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        run(
            "ip",
            &["-n", &ns, "route", "add", "default", "via", &gw_addr],
        )?;
        start_node(layout, i)?;
    }
    access.write(layout)?;
    await_sshd(layout, n, 10, Duration::from_millis(20), |i| {
        layout.node_dir(i).join("log/sshd.log")
    })?;
    write_cluster_file(layout, n, key)
}

/// Starts node `i`'s namespaces and sshd, recording the PIDs that `down` will signal.
fn start_node(layout: &Layout, i: usize) -> Result<(), LocalError> {
    let node_dir = layout.node_dir(i);
    let nd = node_dir.display().to_string();
    // Inside fresh UTS, PID and mount namespaces (in the node's network namespace): set the
    // hostname, give the node private /tmp, /run, /root (so the controller's dotfiles do not run
    // on every command), /etc/hosts and /etc/hostname, then run sshd as the namespace's init.
    let script = format!(
        "set -e; mount --make-rprivate /; hostname n{i}; \
         mount --bind {nd}/tmp /tmp; mount --bind {nd}/run /run; mount --bind {nd}/root /root; \
         mount --bind {nd}/etc/hosts /etc/hosts; mount --bind {nd}/etc/hostname /etc/hostname; \
         mkdir -p /var/lib/faultline-db /var/log/faultline-db; \
         mount --bind {nd}/data /var/lib/faultline-db; mount --bind {nd}/log /var/log/faultline-db; \
         mkdir -p /run/sshd; exec /usr/sbin/sshd -D -e -f {nd}/sshd_config",
    );
    let log = node_dir.join("log/sshd.log");
    let log_file = std::fs::File::create(&log).map_err(io_err(&log))?;
    let log_err = log_file.try_clone().map_err(io_err(&log))?;
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &layout.netns(i),
        "unshare",
        "--uts",
        "--pid",
        "--mount",
        "--fork",
        "--mount-proc",
        "sh",
        "-c",
        &script,
    ])
    .stdin(Stdio::null())
    .stdout(log_file)
    .stderr(log_err);
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe; it detaches the node from faultline's session so
    // that the node outlives this process and a Ctrl-C in the terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| LocalError::Command {
        command: format!("ip netns exec {} unshare ...", layout.netns(i)),
        message: e.to_string(),
    })?;
    let outer = child.id() as i32;
    record_pid(&node_dir, "unshare", outer, &nd)?;
    // The namespace's init is unshare's child; find it by parentage (never by name).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let children = std::fs::read_to_string(format!("/proc/{outer}/task/{outer}/children"))
            .unwrap_or_default();
        if let Some(init) = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse::<i32>().ok())
        {
            record_pid(&node_dir, "init", init, &nd)?;
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(LocalError::Command {
                command: format!("unshare for n{i}"),
                message: format!("no namespace init appeared (see {})", log.display()),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes everything `up` made for cluster `name` (and nothing else). Idempotent.
pub fn down(name: &str) -> Result<(), LocalError> {
    validate_name(name)?;
    if !is_root() {
        return Err(LocalError::NotRoot);
    }
    if state_dir(name).join("vm").exists() {
        return crate::vm::down(name);
    }
    let Some(layout) = existing(name) else {
        let dir = state_dir(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        }
        return Ok(());
    };
    let nodes = std::fs::read_dir(layout.dir.join("nodes"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    for i in 1..=nodes.max(1) {
        let node_dir = layout.node_dir(i);
        // Killing a PID namespace's init kills every process in it. Only PIDs that are
        // still the processes `up` started are signalled.
        let marker = node_dir.display().to_string();
        let pids: Vec<i32> = ["init", "unshare"]
            .iter()
            .filter_map(|f| recorded_pid(&node_dir, f, &marker))
            .collect();
        for &pid in &pids {
            // SAFETY: sending a signal to a PID we recorded and verified just now.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for &pid in &pids {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                // Reap it if it is our child (a cluster this process brought up); otherwise
                // its parent or init reaps it, and a zombie counts as gone (`pid_alive`).
                // SAFETY: waitpid on a specific PID with WNOHANG.
                let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
                if r == pid || (r == -1 && !pid_alive(pid)) || Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        run_quiet("ip", &["link", "del", &layout.veth(i)]);
        run_quiet("ip", &["netns", "del", &layout.netns(i)]);
    }
    run_quiet("ip", &["link", "del", &layout.bridge]);
    std::fs::remove_dir_all(&layout.dir).map_err(io_err(&layout.dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded PID is signalled only while it is the same process: another process with
    /// that PID (reuse), another start time or another command line is not ours.
    #[test]
    fn recorded_pids_are_verified_before_a_signal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().display().to_string();
        let mut child = Command::new("sh")
            .args(["-c", "sleep 60", &marker])
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        record_pid(dir.path(), "init", pid, &marker).expect("record");
        assert_eq!(recorded_pid(dir.path(), "init", &marker), Some(pid));
        // Another process now holds the recorded PID: a different start time.
        let id = dir.path().join("init.id");
        let text = std::fs::read_to_string(&id).expect("id");
        let start = Identity::parse(&text).expect("parse").start;
        std::fs::write(
            &id,
            text.replace(&format!("start={start}"), &format!("start={}", start + 1)),
        )
        .expect("write");
        assert_eq!(recorded_pid(dir.path(), "init", &marker), None);
        // A state directory without identities: the command line must name the node.
        std::fs::remove_file(&id).expect("rm");
        assert_eq!(recorded_pid(dir.path(), "init", &marker), Some(pid));
        assert_eq!(
            recorded_pid(dir.path(), "init", "/var/lib/faultline/other"),
            None
        );
        // A PID whose command line does not name the node is never recorded.
        let me = std::process::id() as i32;
        let wait = Duration::from_millis(100);
        assert!(record_pid_within(dir.path(), "x", me, "/no/such/dir", wait).is_err());
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(recorded_pid(dir.path(), "init", &marker), None);
    }

    #[test]
    fn names_fit_interface_limits() {
        let l = Layout {
            name: "a-long-cluster-name1".into(),
            dir: PathBuf::from("/x"),
            bridge: format!("flb{}", tag("a-long-cluster-name1")),
            subnet: 30,
        };
        assert!(l.bridge.len() <= 15);
        assert!(l.veth(50).len() <= 15);
        assert_eq!(l.addr(3), Ipv4Addr::new(10, 250, 30, 3));
        assert!(validate_name("bad name").is_err());
        assert!(validate_name("ok-1").is_ok());
    }
}
