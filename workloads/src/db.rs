//! The database traits: [`DatabaseKind`], a database as `--db` names it (its options, the
//! workloads its client serves), [`DbConfig`], its options parsed once into its own typed
//! configuration (what it promises, how to open it on a cluster), and [`Database`], the hooks that
//! the harness and the nemesis call on nodes. Adding a database is one module that implements
//! both and a line in [`crate::registry::Registry::builtin`].

use crate::op::Client;
use clusters::{quote, Cluster, RemoteCommand, SshError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Errors setting up, driving or inspecting a database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A node could not be reached.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// A step failed on a node.
    #[error("{node}: {step} failed: {message}")]
    Step {
        /// The node.
        node: String,
        /// What was being done (install, start, ...).
        step: String,
        /// Why.
        message: String,
    },
    /// The options make no sense.
    #[error("{0}")]
    Config(String),
    /// No database of that name.
    #[error("unknown database {name:?}: faultline knows {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names known, comma-separated.
        known: String,
    },
}

/// A database's options, by name (`read-mode: serializable`), as given on the command line
/// (`--db-opt KEY=VALUE` and the database flags) or in a test file, and as recorded in
/// test.yaml once the database has resolved them.
pub type DbOptions = BTreeMap<String, String>;

/// A database as `--db` names it: its options, the workloads its client serves, and how to
/// configure it.
pub trait DatabaseKind: Send + Sync {
    /// The name, as in `--db`.
    fn name(&self) -> &str;
    /// One line for `--help`.
    fn about(&self) -> &str;
    /// The workloads its client serves.
    fn workloads(&self) -> Vec<&str>;
    /// Its options: name, what it does and its default.
    fn option_help(&self) -> &[(&str, &str)] {
        &[]
    }
    /// Turns the user's options into the database's own typed configuration, once: unknown
    /// names and bad values are [`DbError::Config`]; absent options take their defaults.
    /// What a run records ([`DbConfig::options`]) configures the same value again.
    fn configure(&self, given: &DbOptions) -> Result<Arc<dyn DbConfig>, DbError>;
    /// The file that defines it, for a database defined by a file (kept beside a run's
    /// test.yaml); `None` for a built-in one.
    fn definition_file(&self) -> Option<&std::path::Path> {
        None
    }
}

/// A database configured: its kind's options parsed once into its own typed value, which
/// says what the deployment promises, writes itself into test.yaml and opens the database.
///
/// ```
/// use workloads::{DatabaseKind, DbOptions};
/// let given: DbOptions = [("isolation".to_string(), "repeatable-read".to_string())].into();
/// let config = workloads::postgres::PostgresKind.configure(&given).unwrap();
/// assert_eq!(config.options()["isolation"], "repeatable-read");
/// assert_eq!(config.consistency(), Some(checkers::txn::Consistency::SnapshotIsolation));
/// ```
pub trait DbConfig: Send + Sync + std::fmt::Debug {
    /// Every option by name, defaults included: what test.yaml records (and the journal,
    /// for heal), which [`DatabaseKind::configure`] turns into this same value again.
    fn options(&self) -> DbOptions;
    /// The consistency model a transactional history of this deployment is checked against:
    /// what its settings promise, or what the user asked for (a `consistency` option).
    /// `None` (the default) leaves the workload's own checker as it is.
    fn consistency(&self) -> Option<checkers::txn::Consistency> {
        None
    }
    /// Opens the database on `cluster` (may ask nodes for addresses).
    fn open(&self, cluster: &Cluster) -> Result<Arc<dyn Database>, DbError>;
}

/// Refuses option names other than `known` (for [`DatabaseKind::configure`]).
pub fn only_options(db: &str, given: &DbOptions, known: &[&str]) -> Result<(), DbError> {
    for k in given.keys() {
        if !known.contains(&k.as_str()) {
            return Err(DbError::Config(format!(
                "{db} has no option {k:?} (its options: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    Ok(())
}

/// How a database gets onto a node (`install`). Each database accepts the ones that make
/// sense for it ([`Install::parse`]): etcd auto, upload or package; the SQL databases auto,
/// package or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// The node's own binaries, else the database's usual way (upload, or the node's apt).
    Auto,
    /// Always upload this machine's binary.
    Upload,
    /// Always run the node's `apt-get install` (a no-op when installed).
    Package,
    /// Never install: the binaries must be there.
    Never,
}

impl Install {
    /// The option value.
    pub fn name(self) -> &'static str {
        match self {
            Install::Auto => "auto",
            Install::Upload => "upload",
            Install::Package => "package",
            Install::Never => "never",
        }
    }

    /// Parses database `db`'s `install` option, one of `accepted` (absent: [`Install::Auto`]).
    pub fn parse(
        db: &str,
        given: Option<&String>,
        accepted: &[Install],
    ) -> Result<Install, DbError> {
        let Some(value) = given else {
            return Ok(Install::Auto);
        };
        accepted
            .iter()
            .copied()
            .find(|i| i.name() == value)
            .ok_or_else(|| {
                let names: Vec<&str> = accepted.iter().map(|i| i.name()).collect();
                let expected = match names.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        format!("{} or {last}", rest.join(", "))
                    }
                    _ => names.join(""),
                };
                DbError::Config(format!("{db} install {value:?}: expected {expected}"))
            })
    }
}

/// The install step for `packages` (space-separated) from a node's apt, `have` being the shell
/// test that they are there: the step's name and its script ([`Install::Upload`] is not a way
/// of installing packages: treated as [`Install::Never`]).
pub fn apt_install_script(install: Install, packages: &str, have: &str) -> (&'static str, String) {
    let apt = format!(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {packages} >&2 || \
         {{ apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {packages} >&2; }}"
    );
    match install {
        Install::Auto => (
            "install (the node's own binaries, else apt)",
            format!("{have} || {{ {apt}; }}; {have}"),
        ),
        Install::Package => ("install (apt-get install)", format!("{apt}; {have}")),
        Install::Never | Install::Upload => (
            "install (never: the packages must be on the node)",
            format!(
                "{have} || {{ echo 'missing on the node: {packages} (install them, or use install=auto)' >&2; exit 1; }}"
            ),
        ),
    }
}

/// A password drawn at random for one run (hexadecimal).
pub fn new_password() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

/// Parses an `on`/`off` option `name` of database `db` (absent: off).
pub fn parse_on_off(db: &str, name: &str, given: Option<&String>) -> Result<bool, DbError> {
    match given.map(String::as_str) {
        None | Some("off") => Ok(false),
        Some("on") => Ok(true),
        Some(other) => Err(DbError::Config(format!(
            "{db} {name} {other:?}: expected on or off"
        ))),
    }
}

/// An `on`/`off` option's value.
pub fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// An error with its sources, `: `-separated, each source left out when the text so far
/// already says it (drivers often repeat their source in their own message).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// Where a client runs, for clients that want to know (adapters: the worker's number, the
/// run's directory for their stderr, the workload for their handshake).
#[derive(Debug, Clone, Default)]
pub struct ClientContext {
    /// The worker's index (0-based).
    pub worker: usize,
    /// The run's store directory, if any.
    pub run_dir: Option<std::path::PathBuf>,
    /// The workload's name.
    pub workload: String,
    /// The workload's ops per key.
    pub ops_per_key: u64,
}

/// What the harness needs from a database.
///
/// Node-side hooks are blocking (they run commands over SSH); the harness calls them from
/// its own threads. Process faults (kill, pause, resume) are the nemesis's: it signals the
/// processes [`Database::pids`] reports, so that every database gets them the same way.
pub trait Database: Send + Sync {
    /// The name, as in `--db`.
    fn name(&self) -> &str;
    /// Makes the database's binaries available on `node` (upload, or the node's package
    /// manager).
    fn install(&self, cluster: &Cluster, node: &str) -> Result<(), DbError>;
    /// Writes the node's configuration and data directories.
    fn configure(&self, cluster: &Cluster, node: &str) -> Result<(), DbError>;
    /// Starts the database on `node` (in the background; returns at once).
    fn start(&self, cluster: &Cluster, node: &str) -> Result<(), DbError>;
    /// Waits until `node` serves requests, or fails after `timeout` naming what it saw.
    fn wait_ready(&self, cluster: &Cluster, node: &str, timeout: Duration) -> Result<(), DbError>;
    /// The PIDs of the database's processes on `node` (empty when it is not running).
    fn pids(&self, cluster: &Cluster, node: &str) -> Result<Vec<u32>, DbError>;
    /// Stops the database and removes its data on `node`.
    fn wipe(&self, cluster: &Cluster, node: &str) -> Result<(), DbError>;
    /// The nodes that lead now (each node's own view).
    fn primaries(&self, cluster: &Cluster) -> Result<Vec<String>, DbError>;
    /// The log files to collect from each node.
    fn log_files(&self) -> Vec<String>;
    /// The directory where it keeps its data on its nodes: what a crash that loses unsynced
    /// writes (a power fault) acts on. `None` (the default): it does not say, and such
    /// faults are refused for it.
    fn data_dir(&self) -> Option<String> {
        None
    }
    /// A client for worker `ctx.worker` bound to `node`, whose requests give up after
    /// `timeout` (the context also names the workload, its options and the run's directory).
    fn client(
        &self,
        node: &str,
        timeout: Duration,
        ctx: &ClientContext,
    ) -> Result<Arc<dyn Client>, DbError>;

    /// Called once every fault is healed, before the final ops: waits (at most `timeout`)
    /// until the database is whole again on every node and says what it found, or fails
    /// naming each node that did not come back and why (the run logs either). By default
    /// nothing is checked (`None`).
    fn recovered(&self, cluster: &Cluster, timeout: Duration) -> Result<Option<String>, DbError> {
        let _ = (cluster, timeout);
        Ok(None)
    }

    /// Kills the database on `node` with SIGKILL.
    fn kill(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        signal(cluster, node, &self.pids(cluster, node)?, "KILL")
    }
    /// Starts the database again on `node` if it is not running.
    fn restart(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        if self.pids(cluster, node)?.is_empty() {
            self.start(cluster, node)?;
        }
        Ok(())
    }
}

/// Sends `sig` to `pids` on `node` (processes already gone are fine). PIDs 0 and 1 (`kill`
/// would signal its own process group, or init) and the signalling shell's own are never
/// signalled.
pub fn signal(cluster: &Cluster, node: &str, pids: &[u32], sig: &str) -> Result<(), DbError> {
    let list: Vec<String> = pids
        .iter()
        .filter(|p| **p > 1)
        .map(u32::to_string)
        .collect();
    if list.is_empty() {
        return Ok(());
    }
    let script = format!(
        "for p in {}; do [ \"$p\" != \"$$\" ] || continue; kill -{} \"$p\" 2>/dev/null || true; done",
        list.join(" "),
        quote(sig)
    );
    run(cluster, node, &format!("kill -{sig}"), &script).map(|_| ())
}

/// Runs `script` as root on `node`; a non-zero exit is a [`DbError::Step`] with its stderr.
pub fn run(cluster: &Cluster, node: &str, step: &str, script: &str) -> Result<String, DbError> {
    let out = cluster.exec(node, &RemoteCommand::script(script).sudo())?;
    if out.success() {
        Ok(out.stdout_text())
    } else {
        Err(DbError::Step {
            node: node.to_string(),
            step: step.to_string(),
            message: format!("exit {}: {}", out.status, out.stderr_text().trim()),
        })
    }
}

/// The lines of a start script that write `$p`, a process just started in the background,
/// into `pidfile`, with its identity beside it (`PIDFILE.id`: its PID, start time in clock
/// ticks after boot and the boot id), so that [`pidfile_pids`] never takes another process
/// that got the same PID after it exited for it.
pub fn record_pid_script(pidfile: &str) -> String {
    format!(
        "echo \"$p\" > {f}\n\
         echo \"pid=$p start=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f20) boot=$(cat /proc/sys/kernel/random/boot_id)\" > {id}\n",
        f = quote(pidfile),
        id = quote(&format!("{pidfile}.id")),
    )
}

/// The script behind [`pidfile_pids`]: prints each PID of the pid file that is still the
/// process the file names, and `stale PID: why` for each that is not.
fn pidfile_script(pidfile: &str) -> String {
    format!(
        "f={f}\n\
         [ -f \"$f\" ] || exit 0\n\
         boot=$(cat /proc/sys/kernel/random/boot_id)\n\
         bt=$(awk '/^btime/ {{print $2}}' /proc/stat)\n\
         hz=$(getconf CLK_TCK)\n\
         m=$(stat -c %Y \"$f\")\n\
         for p in $(cat \"$f\"); do\n\
           case \"$p\" in ''|*[!0-9]*) continue;; esac\n\
           [ \"$p\" -gt 1 ] 2>/dev/null || {{ echo \"stale $p: not a database's PID\"; continue; }}\n\
           [ \"$p\" != \"$$\" ] || continue\n\
           s=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null) || continue\n\
           set -- $s\n\
           case \"$1\" in Z|X|x) continue;; esac\n\
           start=${{20}}\n\
           if [ -f \"$f.id\" ]; then\n\
             if grep -qx \"pid=$p start=$start boot=$boot\" \"$f.id\"; then echo \"$p\"; \
               else echo \"stale $p: not the process started as $(cat \"$f.id\" | tr '\\n' ' ')(start=$start boot=$boot)\"; fi\n\
           elif [ $((bt + start / hz)) -le $((m + 1)) ]; then echo \"$p\"\n\
           else echo \"stale $p: started $((bt + start / hz - m)) s after the pid file was written\"\n\
           fi\n\
         done\n",
        f = quote(pidfile)
    )
}

/// The PIDs listed in a pid file on `node` that are still the processes it names: alive (not
/// zombies), above 1, and, when faultline wrote the file ([`record_pid_script`]), with the
/// start time and boot recorded beside it; for a pid file the database wrote itself, started
/// no later than the file was last written. A PID that has been reused by another process
/// since the database exited is left out (and logged), so it is never paused or killed.
pub fn pidfile_pids(cluster: &Cluster, node: &str, pidfile: &str) -> Result<Vec<u32>, DbError> {
    let out = run(cluster, node, "read pid file", &pidfile_script(pidfile))?;
    Ok(parse_pidfile_output(node, pidfile, &out))
}

fn parse_pidfile_output(node: &str, pidfile: &str, out: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.parse::<u32>() {
            Ok(p) if p > 1 => pids.push(p),
            _ => tracing::warn!(
                "{node}: {pidfile}: {line}; not taken for the database's (the PID was reused after it exited)"
            ),
        }
    }
    pids
}

/// Each node's address for its peers and clients (see [`clusters::addr::peer_addresses`]).
pub fn peer_addresses(cluster: &Cluster) -> Result<BTreeMap<String, std::net::Ipv4Addr>, DbError> {
    let all = clusters::addr::node_addresses(cluster)?;
    clusters::addr::peer_addresses(&all).map_err(DbError::Config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(script: &str) -> String {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn listed(pidfile: &str) -> Vec<u32> {
        parse_pidfile_output("here", pidfile, &sh(&pidfile_script(pidfile)))
    }

    /// A daemon that exited, and an unrelated process that got its PID: the pid file used
    /// to be believed because the PID was alive, and `nemesis pause` stopped it and `db
    /// stop` killed it.
    #[test]
    fn a_pid_file_names_only_the_process_it_was_written_for() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("db.pid");
        let f = f.to_str().unwrap();
        // Written by faultline as it starts the daemon: believed.
        let pid: u32 = sh(&format!(
            "sleep 60 >/dev/null 2>&1 &\np=$!\n{}echo $p",
            record_pid_script(f)
        ))
        .trim()
        .parse()
        .unwrap();
        let daemon = Reaper(pid);
        assert_eq!(listed(f), vec![pid]);
        // Another process with the daemon's PID (its identity is not the one recorded).
        let mut other = Command::new("sleep").arg("60").spawn().unwrap();
        let recorded = std::fs::read_to_string(format!("{f}.id")).unwrap();
        std::fs::write(
            format!("{f}.id"),
            recorded.replace(&format!("pid={pid} "), &format!("pid={} ", other.id())),
        )
        .unwrap();
        std::fs::write(f, format!("{}\n", other.id())).unwrap();
        assert_eq!(
            listed(f),
            Vec::<u32>::new(),
            "another process is not the daemon"
        );
        // A pid file the database wrote itself: believed when the process started before the
        // file was written, not when it started later.
        std::fs::remove_file(format!("{f}.id")).unwrap();
        assert_eq!(listed(f), vec![other.id()]);
        sh(&format!("touch -d '1 minute ago' {}", quote(f)));
        assert_eq!(
            listed(f),
            Vec::<u32>::new(),
            "started after the file was written"
        );
        // 0, 1, garbage: never.
        std::fs::write(f, "0\n1\nabc\n").unwrap();
        assert_eq!(listed(f), Vec::<u32>::new());
        // A zombie is gone.
        other.kill().unwrap();
        std::fs::write(f, format!("{}\n", other.id())).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(listed(f), Vec::<u32>::new(), "a zombie");
        other.wait().unwrap();
        drop(daemon);
        // No pid file: nothing.
        std::fs::remove_file(f).unwrap();
        assert_eq!(listed(f), Vec::<u32>::new());
    }

    #[test]
    fn install_accepts_only_the_databases_ways_and_names_them() {
        let sql = [Install::Auto, Install::Package, Install::Never];
        assert_eq!(Install::parse("x", None, &sql).unwrap(), Install::Auto);
        for i in sql {
            assert_eq!(
                Install::parse("x", Some(&i.name().into()), &sql).unwrap(),
                i
            );
        }
        let e = Install::parse("mariadb", Some(&"upload".into()), &sql).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mariadb install \"upload\": expected auto, package or never"
        );
        assert!(parse_on_off("x", "y", Some(&"yes".into())).is_err());
        assert!(parse_on_off("x", "y", Some(&"on".into())).unwrap());
    }

    #[derive(Debug)]
    struct Chained(&'static str, Option<Box<Chained>>);
    impl std::fmt::Display for Chained {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Chained {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|c| c as _)
        }
    }

    #[test]
    fn an_error_chain_says_each_source_once() {
        let e = Chained(
            "error connecting: connection refused",
            Some(Box::new(Chained(
                "connection refused",
                Some(Box::new(Chained("os error 111", None))),
            ))),
        );
        assert_eq!(
            error_chain(&e),
            "error connecting: connection refused: os error 111"
        );
    }

    /// Kills a process started in the background by a test's shell.
    struct Reaper(u32);

    impl Drop for Reaper {
        fn drop(&mut self) {
            let _ = Command::new("kill").arg(self.0.to_string()).status();
        }
    }
}
