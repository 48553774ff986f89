//! MariaDB 10.11 with Galera 4 (`--db galera`): a multi-primary cluster, one `mariadbd` with
//! wsrep on every node, and clients spread over the nodes (each worker talks to the node it is
//! bound to).
//!
//! Each node gets the option file of [`crate::mariadb`] plus its wsrep settings
//! (`wsrep_provider=/usr/lib/galera/libgalera_smm.so`, `gcomm://` naming every node's address,
//! `wsrep_sst_method=rsync`, row binlog format, `innodb_autoinc_lock_mode=2`), and its data
//! directory from `mariadb-install-db`.
//!
//! [`Database::start`] decides how a node comes up, from what the other nodes say:
//!
//! - some node is in a Primary component: the node joins it (IST from the donor's gcache, or a
//!   full state transfer with rsync);
//! - none is (the first start, or every node went down): each node that is down first recovers
//!   its position (`grastate.dat`'s `seqno`, or `mariadbd --wsrep-recover` when a crash left
//!   `-1`) into `position`; the most advanced node (highest seqno, ties to the earliest in the
//!   cluster's order) is bootstrapped: `safe_to_bootstrap: 1` and `--wsrep-new-cluster`, or,
//!   when it is still running in a non-Primary component, `pc.bootstrap=YES`. The others wait
//!   for it and join. Nothing is bootstrapped while a node runs without answering (paused or
//!   starting): it may be in a Primary component.
//!
//! `start` returns once the node is Synced (within a minute), so that a restart after a kill
//! returns with the node back in the cluster, or fails saying precisely why not (its state and
//! the end of its log).

use crate::db::{
    apt_install_script, new_password, run, ClientContext, Database, DatabaseKind, DbConfig,
    DbError, DbOptions,
};
use crate::mariadb::node::{self, CONF, DATA, DIR, LOG};
use crate::mariadb::{setup_sql, Isolation, MariadbOptions, MysqlDriver, PORT};
use crate::op::Client;
use crate::sql::{SqlClient, SqlWorkload};
use checkers::txn::Consistency;
use clusters::{quote, Cluster, RemoteCommand};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Galera's replication library.
pub const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";
/// Where a node's recovered seqno is kept between a crash and its next start.
const POSITION: &str = "/var/lib/faultline-db/mariadb/position";
/// The recovered `uuid:seqno`, given to the next start as `--wsrep-start-position` (as
/// Debian's `galera_recovery` does): without it, a node bootstrapped after a crash would
/// start a new history (a new cluster UUID) that the others can only join by a full SST.
const START_POSITION: &str = "/var/lib/faultline-db/mariadb/start-position";
/// How long a start waits for a Primary component, and then for the node to be Synced.
const START_WAIT: Duration = Duration::from_secs(60);
/// How long a start waits for the other stopped nodes to report their positions before it
/// decides which node bootstraps.
const POSITIONS_WAIT: Duration = Duration::from_secs(15);

/// Galera as `--db galera` names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct GaleraKind;

/// What Galera promises at `isolation`: snapshot isolation at repeatable read (Galera's
/// documentation: "Galera Cluster provides ... snapshot isolation" between nodes, with
/// first-committer-wins certification), else what MariaDB promises on one server.
pub fn promises(isolation: Isolation, snapshot_isolation: bool) -> Consistency {
    match isolation {
        Isolation::RepeatableRead => Consistency::SnapshotIsolation,
        other => other.promises(snapshot_isolation),
    }
}

/// Galera's options: MariaDB's, with what Galera promises at each level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaleraOptions(pub MariadbOptions);

impl GaleraOptions {
    /// Parses (and validates) options by name; absent ones take their defaults (MariaDB's,
    /// but `consistency` what Galera promises).
    pub fn parse(given: &DbOptions) -> Result<GaleraOptions, DbError> {
        let mut o = MariadbOptions::parse("galera", given)?;
        if !given.contains_key("consistency") {
            o.consistency = promises(o.isolation, o.snapshot_isolation);
        }
        Ok(GaleraOptions(o))
    }
}

impl DbConfig for GaleraOptions {
    fn options(&self) -> DbOptions {
        self.0.options()
    }
    fn consistency(&self) -> Option<Consistency> {
        Some(self.0.consistency)
    }
    fn open(&self, cluster: &Cluster) -> Result<Arc<dyn Database>, DbError> {
        Ok(Arc::new(Galera::new(cluster, self.0.clone())?))
    }
}

impl DatabaseKind for GaleraKind {
    fn name(&self) -> &str {
        "galera"
    }
    fn about(&self) -> &str {
        "MariaDB 10.11 with Galera 4 on every node (multi-primary), clients spread over the nodes"
    }
    fn workloads(&self) -> Vec<&str> {
        SqlWorkload::NAMES.to_vec()
    }
    fn option_help(&self) -> &[(&str, &str)] {
        &[
            ("install", "auto (the node's own mariadbd and galera-4, else its apt), package (apt-get install mariadb-server galera-4 rsync), or never [default: auto]; also --db-install"),
            ("isolation", "read-committed, repeatable-read or serializable: the level of every transaction [default: repeatable-read]; also --isolation"),
            ("snapshot-isolation", "on or off: innodb_snapshot_isolation on every node [default: off]"),
            ("innodb-flush-log-at-trx-commit", "0, 1 or 2: innodb_flush_log_at_trx_commit on every node [default: 1]"),
            ("sync-binlog", "sync_binlog on every node: fsync the binary log every N commits, 0 never [default: 0]"),
            ("consistency", "the model the history is checked against [default: what the level promises: read-committed; snapshot-isolation; serializable]; also --consistency"),
        ]
    }
    fn configure(&self, given: &DbOptions) -> Result<Arc<dyn DbConfig>, DbError> {
        Ok(Arc::new(GaleraOptions::parse(given)?))
    }
}

/// What a node said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    /// mariadbd is not running; its recovered position, if it wrote one since it went down.
    Down(Option<i64>),
    /// mariadbd runs and answers.
    Up {
        /// `wsrep_cluster_status`: `Primary`, `non-Primary`, `Disconnected`.
        status: String,
        /// `wsrep_local_state_comment`: `Synced`, `Joining`, `Donor/Desynced`, ...
        state: String,
        /// `wsrep_cluster_size`.
        size: u32,
        /// `wsrep_last_committed`.
        last_committed: i64,
    },
    /// mariadbd runs but did not answer (starting, paused, or joining).
    Silent,
}

/// Parses the status query's output (`NAME\tVALUE` lines) into [`NodeState::Up`].
pub fn parse_status(text: &str) -> Option<NodeState> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let mut it = line.splitn(2, '\t');
        if let (Some(k), Some(v)) = (it.next(), it.next()) {
            m.insert(k.trim().to_ascii_uppercase(), v.trim().to_string());
        }
    }
    Some(NodeState::Up {
        status: m.get("WSREP_CLUSTER_STATUS")?.clone(),
        state: m.get("WSREP_LOCAL_STATE_COMMENT")?.clone(),
        size: m.get("WSREP_CLUSTER_SIZE")?.parse().ok()?,
        last_committed: m.get("WSREP_LAST_COMMITTED")?.parse().ok()?,
    })
}

/// Which node bootstraps when no node is in a Primary component: the highest position, ties
/// to the earliest in `positions`' order (the cluster's).
pub fn bootstrapper(positions: &[(String, i64)]) -> Option<&str> {
    let mut best: Option<&(String, i64)> = None;
    for p in positions {
        if best.is_none_or(|b| p.1 > b.1) {
            best = Some(p);
        }
    }
    best.map(|b| b.0.as_str())
}

/// MariaDB with Galera on every node of a cluster.
pub struct Galera {
    nodes: Vec<String>,
    addrs: BTreeMap<String, Ipv4Addr>,
    opts: MariadbOptions,
    password: String,
}

impl Galera {
    /// Galera for `cluster` (asks each node for its address); the client's password is drawn
    /// at random for this run.
    pub fn new(cluster: &Cluster, opts: MariadbOptions) -> Result<Galera, DbError> {
        if cluster.nodes().is_empty() {
            return Err(DbError::Config("galera: the cluster has no node".into()));
        }
        Ok(Galera {
            nodes: cluster.nodes().to_vec(),
            addrs: crate::db::peer_addresses(cluster)?,
            opts,
            password: new_password(),
        })
    }

    fn addr(&self, node: &str) -> Result<Ipv4Addr, DbError> {
        self.addrs
            .get(node)
            .copied()
            .ok_or_else(|| DbError::Config(format!("no address known for node {node}")))
    }

    fn wsrep_conf(&self, node: &str) -> Result<String, DbError> {
        let mut peers = Vec::new();
        for n in &self.nodes {
            peers.push(self.addr(n)?.to_string());
        }
        Ok(format!(
            "binlog_format = ROW\n\
             default_storage_engine = InnoDB\n\
             innodb_autoinc_lock_mode = 2\n\
             wsrep_on = ON\n\
             wsrep_provider = {PROVIDER}\n\
             wsrep_cluster_name = faultline\n\
             wsrep_cluster_address = gcomm://{peers}\n\
             wsrep_node_address = {addr}\n\
             wsrep_node_name = {name}\n\
             wsrep_sst_method = rsync\n\
             wsrep_provider_options = \"gcache.size=128M; evs.inactive_timeout=PT10S; evs.suspect_timeout=PT3S\"\n",
            peers = peers.join(","),
            addr = self.addr(node)?,
            // Node names are the cluster file's; keep them to a safe alphabet here.
            name = node
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
                .collect::<String>(),
        ))
    }

    /// What `node` says about itself (a few seconds at most, also when it is paused).
    pub fn state(&self, cluster: &Cluster, node: &str) -> Result<NodeState, DbError> {
        if node::server_pids(cluster, node)?.is_empty() {
            let pos = run(
                cluster,
                node,
                "read the recovered position",
                &format!("cat {POSITION} 2>/dev/null; true"),
            )?;
            return Ok(NodeState::Down(pos.trim().parse().ok()));
        }
        let sql = "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                   WHERE VARIABLE_NAME IN ('WSREP_CLUSTER_STATUS', 'WSREP_LOCAL_STATE_COMMENT', \
                   'WSREP_CLUSTER_SIZE', 'WSREP_LAST_COMMITTED')";
        let script = format!(
            "timeout -k 1 3 mariadb --defaults-file={CONF} -u root --connect-timeout=2 --batch --skip-column-names -e {}",
            quote(sql)
        );
        let out = cluster.exec_timeout(
            node,
            &RemoteCommand::script(&script).sudo(),
            Duration::from_secs(6),
        );
        Ok(match out {
            Ok(o) if o.success() => parse_status(&o.stdout_text()).unwrap_or(NodeState::Silent),
            _ => NodeState::Silent,
        })
    }

    /// Recovers `node`'s position while mariadbd is down and writes it to [`POSITION`]: -1
    /// for a fresh data directory.
    fn recover_position(&self, cluster: &Cluster, node: &str) -> Result<i64, DbError> {
        let script = format!(
            "g={DATA}/grastate.dat\n\
             seq=-1\n\
             rm -f {START_POSITION}\n\
             if [ -f $g ]; then\n\
               seq=$(sed -n 's/^seqno: *//p' $g)\n\
               if [ \"$seq\" = -1 ] || [ -z \"$seq\" ]; then\n\
                 rm -f {DIR}/recover.log\n\
                 setpriv --reuid=mysql --regid=mysql --init-groups -- timeout -k 2 60 /usr/sbin/mariadbd --defaults-file={CONF} --wsrep-recover --log-error={DIR}/recover.log >/dev/null 2>&1 || true\n\
                 cat {DIR}/recover.log >> {LOG} 2>/dev/null || true\n\
                 pos=$(sed -n 's/.*Recovered position: \\([0-9a-f-]*:-\\{{0,1\\}}[0-9][0-9]*\\).*/\\1/p' {DIR}/recover.log | tail -n 1)\n\
                 seq=${{pos##*:}}\n\
                 [ -n \"$pos\" ] && echo \"$pos\" > {START_POSITION}\n\
               fi\n\
             fi\n\
             case \"$seq\" in ''|*[!0-9-]*) seq=-1;; esac\n\
             echo \"$seq\" > {POSITION}\n\
             echo \"$seq\"\n"
        );
        let out = run(
            cluster,
            node,
            "recover the position (wsrep-recover)",
            &script,
        )?;
        Ok(out.trim().parse().unwrap_or(-1))
    }

    fn launch(&self, cluster: &Cluster, node: &str, bootstrap: bool) -> Result<(), DbError> {
        let prepare = if bootstrap {
            format!(
                "[ -f {DATA}/grastate.dat ] && sed -i 's/^safe_to_bootstrap: *0/safe_to_bootstrap: 1/' {DATA}/grastate.dat\n"
            )
        } else {
            String::new()
        };
        let script = format!(
            "sp=$(cat {START_POSITION} 2>/dev/null)\n\
             rm -f {POSITION} {START_POSITION}\n{prepare}{}",
            node::start_script(if bootstrap {
                "--wsrep-new-cluster ${sp:+--wsrep-start-position=$sp}"
            } else {
                "${sp:+--wsrep-start-position=$sp}"
            })
        );
        run(
            cluster,
            node,
            if bootstrap {
                "start (bootstrap a new cluster)"
            } else {
                "start (join)"
            },
            &script,
        )
        .map(|_| ())
    }

    fn failed(&self, cluster: &Cluster, node: &str, why: String) -> DbError {
        DbError::Step {
            node: node.to_string(),
            step: "start".into(),
            message: format!(
                "{why}; the end of {LOG}:\n{}",
                node::log_tail(cluster, node)
            ),
        }
    }

    /// Waits until `node` is Synced in a Primary component.
    fn wait_synced(&self, cluster: &Cluster, node: &str, deadline: Instant) -> Result<(), DbError> {
        loop {
            let last = self.state(cluster, node)?;
            match &last {
                NodeState::Up { status, state, .. } if status == "Primary" && state == "Synced" => {
                    return Ok(())
                }
                NodeState::Down(_) => {
                    return Err(self.failed(cluster, node, "mariadbd exited".into()))
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(self.failed(
                    cluster,
                    node,
                    format!("not Synced in a Primary component in time (last: {last:?})"),
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Database for Galera {
    fn name(&self) -> &str {
        "galera"
    }

    fn install(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        let have = format!(
            "{} && test -f {PROVIDER} && command -v rsync >/dev/null",
            node::HAVE
        );
        let (step, script) =
            apt_install_script(self.opts.install, "mariadb-server galera-4 rsync", &have);
        run(cluster, node, step, &script).map(|_| ())
    }

    fn configure(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        let cnf = node::my_cnf(self.addr(node)?, &self.opts, &self.wsrep_conf(node)?);
        run(
            cluster,
            node,
            "configure (mariadb-install-db)",
            &node::configure_script(&cnf),
        )
        .map(|_| ())
    }

    fn start(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        if !node::server_pids(cluster, node)?.is_empty() {
            return Ok(());
        }
        let began = Instant::now();
        let deadline = began + START_WAIT;
        let mine = self.recover_position(cluster, node)?;
        loop {
            let mut positions = vec![];
            let mut unknown = vec![];
            let mut non_primary = vec![];
            // Running but not answering (paused, starting): it may be in a Primary component,
            // so nothing is bootstrapped while one is.
            let mut silent = vec![];
            let mut primary = false;
            for n in &self.nodes {
                if n == node {
                    positions.push((n.clone(), mine));
                    continue;
                }
                match self.state(cluster, n)? {
                    NodeState::Up { status, .. } if status == "Primary" => primary = true,
                    NodeState::Up { last_committed, .. } => {
                        positions.push((n.clone(), last_committed));
                        non_primary.push(n.clone());
                    }
                    NodeState::Down(Some(p)) => positions.push((n.clone(), p)),
                    NodeState::Down(None) => unknown.push(n.clone()),
                    NodeState::Silent => {
                        silent.push(n.clone());
                        unknown.push(n.clone());
                    }
                }
            }
            if primary {
                self.launch(cluster, node, false)?;
                return self.wait_synced(cluster, node, Instant::now() + START_WAIT);
            }
            if silent.is_empty() && (unknown.is_empty() || began.elapsed() >= POSITIONS_WAIT) {
                match bootstrapper(&positions) {
                    Some(b) if b == node => {
                        tracing::info!("galera: bootstrapping {node} (positions {positions:?})");
                        self.launch(cluster, node, true)?;
                        return self.wait_synced(cluster, node, Instant::now() + START_WAIT);
                    }
                    Some(b) if non_primary.iter().any(|n| n == b) => {
                        tracing::info!(
                            "galera: {b} bootstraps its component (positions {positions:?})"
                        );
                        let _ = node::root_sql(
                            cluster,
                            b,
                            "bootstrap (pc.bootstrap)",
                            "SET GLOBAL wsrep_provider_options = 'pc.bootstrap=YES'",
                        );
                    }
                    // Another stopped node bootstraps (its own start decides so): wait for it.
                    _ => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(self.failed(
                    cluster,
                    node,
                    format!(
                        "no Primary component to join within {START_WAIT:?} (positions {positions:?}, no answer from {unknown:?})"
                    ),
                ));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn wait_ready(&self, cluster: &Cluster, node: &str, timeout: Duration) -> Result<(), DbError> {
        let deadline = Instant::now() + timeout;
        self.wait_synced(cluster, node, deadline)?;
        node::wait_sql(
            cluster,
            node,
            "galera",
            &setup_sql(&self.password),
            deadline.saturating_duration_since(Instant::now()),
        )
        .map(|_| ())
    }

    fn pids(&self, cluster: &Cluster, node: &str) -> Result<Vec<u32>, DbError> {
        node::server_pids(cluster, node)
    }

    /// Every node Synced in one Primary component of the cluster's size, else which node is
    /// not and in what state (with the end of its log).
    fn recovered(&self, cluster: &Cluster, timeout: Duration) -> Result<Option<String>, DbError> {
        let deadline = Instant::now() + timeout;
        let want = self.nodes.len() as u32;
        loop {
            let mut behind = Vec::new();
            for n in &self.nodes {
                match self.state(cluster, n)? {
                    NodeState::Up {
                        status,
                        state,
                        size,
                        ..
                    } if status == "Primary" && state == "Synced" && size == want => {}
                    other => behind.push((n.clone(), other)),
                }
            }
            if behind.is_empty() {
                return Ok(Some(format!(
                    "every node Synced in one Primary component (wsrep_cluster_size={want})"
                )));
            }
            if Instant::now() >= deadline {
                let names: Vec<&str> = behind.iter().map(|(n, _)| n.as_str()).collect();
                let names = names.join(",");
                let mut why = Vec::new();
                for (n, s) in behind {
                    why.push(format!(
                        "{n} is not back after {timeout:?}: {s:?}; the end of its {LOG}:\n{}",
                        node::log_tail(cluster, &n)
                    ));
                }
                return Err(DbError::Step {
                    node: names,
                    step: "rejoin the cluster".into(),
                    message: why.join("\n"),
                });
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn wipe(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        self.kill(cluster, node)?;
        run(cluster, node, "wipe", &node::wipe_script()).map(|_| ())
    }

    fn primaries(&self, _cluster: &Cluster) -> Result<Vec<String>, DbError> {
        // Multi-primary: every node takes writes.
        Ok(self.nodes.clone())
    }

    fn log_files(&self) -> Vec<String> {
        vec![LOG.to_string()]
    }

    fn data_dir(&self) -> Option<String> {
        Some(DATA.to_string())
    }

    fn client(
        &self,
        node: &str,
        timeout: Duration,
        ctx: &ClientContext,
    ) -> Result<Arc<dyn Client>, DbError> {
        let driver = MysqlDriver::new(
            "galera",
            self.addr(node)?.to_string(),
            PORT,
            self.password.clone(),
            self.opts.isolation,
            timeout,
        );
        let workload = SqlWorkload::of("galera", ctx)?;
        Ok(Arc::new(SqlClient::new(driver, workload, timeout)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_advanced_node_bootstraps_ties_to_the_first() {
        let p = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
            v.iter().map(|(n, s)| (n.to_string(), *s)).collect()
        };
        assert_eq!(
            bootstrapper(&p(&[("n1", -1), ("n2", -1), ("n3", -1)])),
            Some("n1")
        );
        assert_eq!(
            bootstrapper(&p(&[("n1", 5), ("n2", 9), ("n3", 9)])),
            Some("n2")
        );
        assert_eq!(bootstrapper(&[]), None);
    }

    #[test]
    fn status_is_parsed_and_partial_output_is_not_a_state() {
        let s = parse_status(
            "WSREP_CLUSTER_SIZE\t3\nWSREP_CLUSTER_STATUS\tPrimary\nWSREP_LAST_COMMITTED\t42\nWSREP_LOCAL_STATE_COMMENT\tSynced\n",
        );
        assert_eq!(
            s,
            Some(NodeState::Up {
                status: "Primary".into(),
                state: "Synced".into(),
                size: 3,
                last_committed: 42
            })
        );
        assert_eq!(parse_status("WSREP_CLUSTER_SIZE\t3\n"), None);
        assert_eq!(parse_status("garbage"), None);
    }

    #[test]
    fn repeatable_read_promises_snapshot_isolation_and_options_are_galeras() {
        let d = GaleraKind
            .configure(&DbOptions::new())
            .map(|c| c.options())
            .unwrap();
        assert_eq!(d["consistency"], "snapshot-isolation");
        assert_eq!(d["isolation"], "repeatable-read");
        let mut o = DbOptions::new();
        o.insert("consistency".into(), "serializable".into());
        assert_eq!(
            GaleraKind.configure(&o).map(|c| c.options()).unwrap()["consistency"],
            "serializable"
        );
        o.insert("bogus".into(), "1".into());
        let e = GaleraKind
            .configure(&o)
            .map(|c| c.options())
            .unwrap_err()
            .to_string();
        assert!(e.contains("galera has no option \"bogus\""), "{e}");
    }
}
