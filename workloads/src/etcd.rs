//! etcd (3.4 and later) as a [`Database`], and its client.
//!
//! Nodes run `etcd` with peer URLs between their own addresses, data in
//! `/var/lib/faultline-db/etcd`, and the log in `/var/log/faultline-db/etcd.log`. The binary
//! is the node's own when it has one; otherwise this machine's is uploaded (so nodes need no
//! internet), or with `install: package` the node's apt installs `etcd-server`.
//!
//! The client speaks etcd's v3 JSON gateway (`POST /v3/kv/range|put|txn`, keys and values in
//! base64) over HTTP/1.1. The gateway is the same gRPC service behind a JSON front, and over
//! plain HTTP a client can tell a request that never left (the connection was refused) from
//! one that may have reached the server, which is what classifying outcomes needs; see
//! [`classify`].

use crate::db::{
    self, error_chain, only_options, pidfile_pids, run, Database, DatabaseKind, DbConfig, DbError,
    DbOptions, Install,
};
use crate::op::{BoxFuture, Client, Op, Outcome};
use base64::Engine;
use checkers::history::{Key, Value};
use clusters::{quote, Cluster};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DIR: &str = "/var/lib/faultline-db/etcd";
const LOG: &str = "/var/log/faultline-db/etcd.log";
const PIDFILE: &str = "/var/lib/faultline-db/etcd/etcd.pid";
const UPLOADED: &str = "/var/lib/faultline-db/bin/etcd";
/// Which binary install chose; start runs it.
const BIN_PATH: &str = "/var/lib/faultline-db/etcd/bin-path";
/// The client port.
pub const CLIENT_PORT: u16 = 2379;
/// The peer port.
pub const PEER_PORT: u16 = 2380;

/// Which reads clients make (`read-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Linearizable reads (etcd's default: through the leader's quorum).
    Linearizable,
    /// Serializable reads: served from the node's local state, possibly stale.
    Serializable,
}

/// etcd's options, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOptions {
    /// How to install.
    pub install: Install,
    /// A binary to upload instead of this machine's.
    pub binary: Option<std::path::PathBuf>,
    /// Which reads.
    pub read_mode: ReadMode,
    /// `--unsafe-no-fsync`: etcd acknowledges writes it has not fsynced (etcd 3.5 and
    /// later; its documentation: "disables fsync, unsafe, will cause data loss").
    pub unsafe_no_fsync: bool,
}

impl EtcdOptions {
    /// The option names.
    pub const NAMES: [&'static str; 4] = ["install", "binary", "read-mode", "unsafe-no-fsync"];
    /// The ways of installing etcd (`install`).
    pub const INSTALLS: [Install; 3] = [Install::Auto, Install::Upload, Install::Package];

    /// Parses (and validates) options by name; absent ones take their defaults.
    pub fn parse(given: &DbOptions) -> Result<EtcdOptions, DbError> {
        only_options("etcd", given, &Self::NAMES)?;
        let install = Install::parse("etcd", given.get("install"), &Self::INSTALLS)?;
        let read_mode = match given.get("read-mode").map(String::as_str) {
            None | Some("linearizable") => ReadMode::Linearizable,
            Some("serializable") => ReadMode::Serializable,
            Some(other) => {
                return Err(DbError::Config(format!(
                    "etcd read-mode {other:?}: expected linearizable or serializable"
                )))
            }
        };
        let binary = given.get("binary").map(std::path::PathBuf::from);
        if let Some(b) = &binary {
            if !b.is_file() {
                return Err(DbError::Config(format!(
                    "etcd binary {}: no such file on this machine",
                    b.display()
                )));
            }
        }
        let unsafe_no_fsync =
            db::parse_on_off("etcd", "unsafe-no-fsync", given.get("unsafe-no-fsync"))?;
        Ok(EtcdOptions {
            install,
            binary,
            read_mode,
            unsafe_no_fsync,
        })
    }
}

impl DbConfig for EtcdOptions {
    fn options(&self) -> DbOptions {
        let mut m = DbOptions::new();
        m.insert("install".into(), self.install.name().into());
        if let Some(b) = &self.binary {
            m.insert("binary".into(), b.display().to_string());
        }
        m.insert(
            "read-mode".into(),
            match self.read_mode {
                ReadMode::Linearizable => "linearizable",
                ReadMode::Serializable => "serializable",
            }
            .into(),
        );
        m.insert(
            "unsafe-no-fsync".into(),
            db::on_off(self.unsafe_no_fsync).into(),
        );
        m
    }
    fn open(&self, cluster: &Cluster) -> Result<Arc<dyn Database>, DbError> {
        Ok(Arc::new(Etcd::new(cluster, self.clone())?))
    }
}

/// etcd as `--db etcd` names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct EtcdKind;

impl DatabaseKind for EtcdKind {
    fn name(&self) -> &str {
        "etcd"
    }
    fn about(&self) -> &str {
        "etcd 3.4+, over its v3 JSON gateway"
    }
    fn workloads(&self) -> Vec<&str> {
        vec!["register", "cas-register", "set"]
    }
    fn option_help(&self) -> &[(&str, &str)] {
        &[
            ("install", "auto (the node's own etcd, else upload this machine's), upload, or package (the node's apt) [default: auto]; also --db-install"),
            ("binary", "an etcd binary to upload instead of this machine's; also --db-binary"),
            ("read-mode", "linearizable, or serializable (served by the node alone: stale reads) [default: linearizable]; also --read-mode"),
            ("unsafe-no-fsync", "on or off: etcd's --unsafe-no-fsync, acknowledging writes it never fsynced (etcd 3.5 and later; refused at start by an older etcd) [default: off]"),
        ]
    }
    fn configure(&self, given: &DbOptions) -> Result<Arc<dyn DbConfig>, DbError> {
        Ok(Arc::new(EtcdOptions::parse(given)?))
    }
}

/// etcd on a cluster.
pub struct Etcd {
    addrs: BTreeMap<String, Ipv4Addr>,
    opts: EtcdOptions,
    http: reqwest::blocking::Client,
}

impl Etcd {
    /// etcd for `cluster` (asks each node for its address).
    pub fn new(cluster: &Cluster, opts: EtcdOptions) -> Result<Etcd, DbError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| DbError::Config(format!("http client: {e}")))?;
        Ok(Etcd {
            addrs: db::peer_addresses(cluster)?,
            opts,
            http,
        })
    }

    fn addr(&self, node: &str) -> Result<Ipv4Addr, DbError> {
        self.addrs
            .get(node)
            .copied()
            .ok_or_else(|| DbError::Config(format!("no address known for node {node}")))
    }

    fn client_url(&self, node: &str) -> Result<String, DbError> {
        Ok(format!("http://{}:{CLIENT_PORT}", self.addr(node)?))
    }

    fn initial_cluster(&self) -> String {
        self.addrs
            .iter()
            .map(|(n, a)| format!("{n}=http://{a}:{PEER_PORT}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Database for Etcd {
    fn name(&self) -> &str {
        "etcd"
    }

    fn install(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        let own = run(cluster, node, "look for etcd", "command -v etcd || true")?;
        let own = own.trim();
        let chosen = match self.opts.install {
            Install::Auto if !own.is_empty() && self.opts.binary.is_none() => own.to_string(),
            Install::Auto | Install::Upload => {
                let local = match &self.opts.binary {
                    Some(p) => p.clone(),
                    None => which("etcd").ok_or_else(|| DbError::Step {
                        node: node.to_string(),
                        step: "install".into(),
                        message: "etcd is not on the node, and there is no etcd binary on this machine to upload (apt-get install etcd-server, or pass --db-binary PATH)".into(),
                    })?,
                };
                // Installed as root's, never written into a file someone else made.
                clusters::install::install_file(cluster, node, &local, UPLOADED, 0o755)?;
                run(
                    cluster,
                    node,
                    "install (uploaded binary)",
                    &format!("{UPLOADED} --version"),
                )?;
                UPLOADED.to_string()
            }
            Install::Package => run(
                cluster,
                node,
                "install (apt-get install etcd-server)",
                "command -v etcd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >&2; command -v etcd",
            )?
            .trim()
            .to_string(),
            // Not among [`EtcdOptions::INSTALLS`]; the node's own etcd if it has one.
            Install::Never if !own.is_empty() => own.to_string(),
            Install::Never => {
                return Err(DbError::Step {
                    node: node.to_string(),
                    step: "install".into(),
                    message: "etcd is not on the node (install=never)".into(),
                })
            }
        };
        run(
            cluster,
            node,
            "install",
            &format!(
                "mkdir -p {DIR} && printf '%s\\n' {} > {BIN_PATH}",
                quote(&chosen)
            ),
        )
        .map(|_| ())
    }

    fn configure(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        run(
            cluster,
            node,
            "configure",
            &format!("mkdir -p {DIR} /var/log/faultline-db"),
        )
        .map(|_| ())
    }

    fn start(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        let a = self.addr(node)?;
        let args = [
            "--name".to_string(),
            node.to_string(),
            "--data-dir".into(),
            format!("{DIR}/data"),
            "--listen-peer-urls".into(),
            format!("http://{a}:{PEER_PORT}"),
            "--initial-advertise-peer-urls".into(),
            format!("http://{a}:{PEER_PORT}"),
            "--listen-client-urls".into(),
            format!("http://{a}:{CLIENT_PORT}"),
            "--advertise-client-urls".into(),
            format!("http://{a}:{CLIENT_PORT}"),
            "--initial-cluster".into(),
            self.initial_cluster(),
            "--initial-cluster-state".into(),
            "new".into(),
            "--initial-cluster-token".into(),
            "faultline".into(),
            "--enable-v2=false".into(),
        ];
        let mut args: Vec<String> = args.iter().map(|x| quote(x)).collect();
        // An etcd without the flag would exit at once saying only "flag provided but not
        // defined": say which version it is instead.
        let mut check = String::new();
        if self.opts.unsafe_no_fsync {
            args.push("--unsafe-no-fsync".into());
            check = "\"$bin\" --help 2>&1 | grep -q -- --unsafe-no-fsync || { echo \"unsafe-no-fsync=on: this etcd ($(\"$bin\" --version 2>&1 | head -1)) has no --unsafe-no-fsync (etcd 3.5 and later)\" >&2; exit 1; }\n".into();
        }
        let script = format!(
            "bin=$(cat {BIN_PATH} 2>/dev/null || command -v etcd)\n\
             {check}\
             mkdir -p {DIR} /var/log/faultline-db\n\
             cd {DIR}\n\
             echo \"== start $(date -u +%FT%TZ)\" >> {LOG}\n\
             setsid \"$bin\" {} </dev/null >>{LOG} 2>&1 &\n\
             p=$!\n{}",
            args.join(" "),
            crate::db::record_pid_script(PIDFILE)
        );
        run(cluster, node, "start", &script).map(|_| ())
    }

    fn wait_ready(&self, cluster: &Cluster, node: &str, timeout: Duration) -> Result<(), DbError> {
        let url = format!("{}/health", self.client_url(node)?);
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            match self.http.get(&url).send().and_then(|r| r.text()) {
                Ok(body) if body.contains("\"health\":\"true\"") => return Ok(()),
                Ok(body) => last = body,
                Err(e) => last = e.to_string(),
            }
            if self.pids(cluster, node)?.is_empty() {
                let tail = run(
                    cluster,
                    node,
                    "read log",
                    &format!("tail -n 15 {LOG} 2>/dev/null; true"),
                )
                .unwrap_or_default();
                return Err(DbError::Step {
                    node: node.to_string(),
                    step: "start".into(),
                    message: format!("etcd exited; the end of {LOG}:\n{tail}"),
                });
            }
            if Instant::now() >= deadline {
                return Err(DbError::Step {
                    node: node.to_string(),
                    step: "wait until ready".into(),
                    message: format!("{url} not healthy after {timeout:?}: {last}"),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn pids(&self, cluster: &Cluster, node: &str) -> Result<Vec<u32>, DbError> {
        pidfile_pids(cluster, node, PIDFILE)
    }

    fn wipe(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        self.kill(cluster, node)?;
        run(
            cluster,
            node,
            "wipe",
            &format!(
                "rm -rf {DIR}/data {PIDFILE} {PIDFILE}.id; mkdir -p /var/log/faultline-db; : > {LOG}"
            ),
        )
        .map(|_| ())
    }

    fn primaries(&self, _cluster: &Cluster) -> Result<Vec<String>, DbError> {
        let mut out = Vec::new();
        for node in self.addrs.keys() {
            let url = format!("{}/v3/maintenance/status", self.client_url(node)?);
            let Ok(resp) = self
                .http
                .post(&url)
                .body("{}")
                .send()
                .and_then(|r| r.text())
            else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&resp) else {
                continue;
            };
            let me = v["header"]["member_id"].as_str();
            if me.is_some() && me == v["leader"].as_str() {
                out.push(node.clone());
            }
        }
        Ok(out)
    }

    fn log_files(&self) -> Vec<String> {
        vec![LOG.to_string()]
    }

    fn data_dir(&self) -> Option<String> {
        Some(format!("{DIR}/data"))
    }

    fn client(
        &self,
        node: &str,
        timeout: Duration,
        _ctx: &crate::db::ClientContext,
    ) -> Result<Arc<dyn Client>, DbError> {
        Ok(Arc::new(EtcdClient::new(
            &self.client_url(node)?,
            timeout,
            self.opts.read_mode == ReadMode::Serializable,
        )?))
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// A client of one etcd node.
pub struct EtcdClient {
    base: String,
    http: reqwest::Client,
    serializable: bool,
}

/// What came back from the server, before classification.
#[derive(Debug)]
pub enum Reply {
    /// The request was never sent: the connection could not be made.
    NotSent(String),
    /// The request may have been sent, but no answer came (timeout, reset, ...).
    NoAnswer(String),
    /// An HTTP answer.
    Http {
        /// Its status.
        status: u16,
        /// Its body.
        body: String,
    },
}

impl EtcdClient {
    /// A client of the node at `base` (`http://IP:2379`) whose requests give up after
    /// `timeout`, with serializable (node-local) reads when `serializable`.
    pub fn new(base: &str, timeout: Duration, serializable: bool) -> Result<EtcdClient, DbError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(1)))
            .pool_max_idle_per_host(1)
            .build()
            .map_err(|e| DbError::Config(format!("http client: {e}")))?;
        Ok(EtcdClient {
            base: base.to_string(),
            http,
            serializable,
        })
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> Reply {
        let url = format!("{}{path}", self.base);
        match self.http.post(&url).json(&body).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                match r.text().await {
                    Ok(body) => Reply::Http { status, body },
                    Err(e) => Reply::NoAnswer(format!("reading the answer: {e}")),
                }
            }
            Err(e) if e.is_connect() => Reply::NotSent(error_chain(&e)),
            Err(e) => Reply::NoAnswer(error_chain(&e)),
        }
    }

    async fn run(&self, op: &Op) -> Outcome {
        fn reg(key: &Key) -> String {
            match key {
                Key::Int(i) => format!("faultline/r/{i}"),
                Key::Str(s) => format!("faultline/r/{s}"),
            }
        }
        const SET: &str = "faultline/set";
        let reply = match op {
            Op::Read { key } => {
                self.post(
                    "/v3/kv/range",
                    serde_json::json!({"key": b64(&reg(key)), "serializable": self.serializable}),
                )
                .await
            }
            Op::Write { key, value } => {
                self.post(
                    "/v3/kv/put",
                    serde_json::json!({"key": b64(&reg(key)), "value": b64(&value.to_string())}),
                )
                .await
            }
            Op::Cas { key, old, new } => {
                let k = b64(&reg(key));
                let body = serde_json::json!({
                    "compare": [{"key": k, "target": "VALUE", "result": "EQUAL", "value": b64(&old.to_string())}],
                    "success": [{"request_put": {"key": k, "value": b64(&new.to_string())}}],
                });
                self.post("/v3/kv/txn", body).await
            }
            Op::Add { value } => {
                let k = format!("{SET}/{value:020}");
                self.post(
                    "/v3/kv/put",
                    serde_json::json!({"key": b64(&k), "value": b64(&value.to_string())}),
                )
                .await
            }
            Op::Custom { .. } | Op::Txn(_) => {
                return Outcome::fail(op.value(), format!("etcd client: no op {:?}", op.f()));
            }
            Op::ReadSet => {
                let prefix = format!("{SET}/");
                let end = format!("{SET}0"); // '0' follows '/'
                self.post(
                    "/v3/kv/range",
                    serde_json::json!({"key": b64(&prefix), "range_end": b64(&end), "serializable": self.serializable}),
                )
                .await
            }
        };
        classify(op, reply)
    }
}

impl Client for EtcdClient {
    fn invoke<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Outcome> {
        Box::pin(self.run(op))
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

fn unb64(s: &str) -> Option<String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// Classifies what came back for `op`:
///
/// - the connection was refused or could not be made: the request never left, so `fail`;
/// - no answer (timeout, connection reset, a body cut short): the request may have been
///   applied, so `info` for writes and cas; reads change nothing, so a read is `fail`;
/// - an HTTP error (the gateway's gRPC error: "etcdserver: request timed out", "leader
///   changed", "no leader", ...): the proposal may still commit, so `info` for writes and cas,
///   `fail` for reads;
/// - 200: `ok`, except a cas whose compare failed (`succeeded` absent or false), which is
///   `fail`: etcd evaluated it and put nothing.
pub fn classify(op: &Op, reply: Reply) -> Outcome {
    let is_read = op.is_read();
    let invoked = op.value();
    match reply {
        Reply::NotSent(e) => Outcome::fail(invoked.clone(), format!("not sent: {e}")),
        Reply::NoAnswer(e) if is_read => Outcome::fail(invoked.clone(), e),
        Reply::NoAnswer(e) => Outcome::info(invoked.clone(), e),
        Reply::Http { status, body } if status != 200 => {
            let msg = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v["message"]
                        .as_str()
                        .or(v["error"].as_str())
                        .map(String::from)
                })
                .unwrap_or(body);
            let e = format!("HTTP {status}: {msg}");
            if is_read {
                Outcome::fail(invoked.clone(), e)
            } else {
                Outcome::info(invoked.clone(), e)
            }
        }
        Reply::Http { body, .. } => {
            let v: serde_json::Value = match serde_json::from_str(&body) {
                Ok(v) => v,
                Err(e) if is_read => {
                    return Outcome::fail(invoked.clone(), format!("unreadable answer: {e}"))
                }
                Err(e) => return Outcome::info(invoked.clone(), format!("unreadable answer: {e}")),
            };
            match op {
                Op::Read { .. } => {
                    let value = v["kvs"]
                        .as_array()
                        .and_then(|kvs| kvs.first())
                        .and_then(|kv| kv["value"].as_str())
                        .and_then(unb64);
                    match value {
                        None => Outcome::ok(Value::Null),
                        Some(s) => match s.parse::<i64>() {
                            Ok(i) => Outcome::ok(Value::Int(i)),
                            Err(_) => Outcome::fail(Value::Null, format!("not an integer: {s:?}")),
                        },
                    }
                }
                Op::ReadSet => {
                    let mut items: Vec<i64> = v["kvs"]
                        .as_array()
                        .map(|kvs| {
                            kvs.iter()
                                .filter_map(|kv| kv["value"].as_str().and_then(unb64))
                                .filter_map(|s| s.parse().ok())
                                .collect()
                        })
                        .unwrap_or_default();
                    items.sort_unstable();
                    Outcome::ok(Value::List(items.into_iter().map(Value::Int).collect()))
                }
                Op::Cas { .. } => {
                    if v["succeeded"].as_bool() == Some(true) {
                        Outcome::ok(invoked.clone())
                    } else {
                        Outcome::fail(invoked.clone(), "compare failed")
                    }
                }
                Op::Write { .. } | Op::Add { .. } | Op::Custom { .. } | Op::Txn(_) => {
                    Outcome::ok(invoked)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::history::EventKind;

    #[test]
    fn never_sent_is_fail_and_maybe_sent_is_info_for_writes() {
        let w = Op::Write {
            key: Key::Int(1),
            value: 3,
        };
        assert_eq!(
            classify(&w, Reply::NotSent("refused".into())).kind,
            EventKind::Fail
        );
        assert_eq!(
            classify(&w, Reply::NoAnswer("timeout".into())).kind,
            EventKind::Info
        );
        let err = Reply::Http {
            status: 503,
            body: r#"{"error":"etcdserver: request timed out","code":14}"#.into(),
        };
        let o = classify(&w, err);
        assert_eq!(o.kind, EventKind::Info);
        assert!(o.error.unwrap().contains("request timed out"));
        let r = Op::Read { key: Key::Int(1) };
        assert_eq!(
            classify(&r, Reply::NoAnswer("timeout".into())).kind,
            EventKind::Fail
        );
    }

    #[test]
    fn answers_are_decoded() {
        let r = Op::Read { key: Key::Int(1) };
        let body = format!(
            r#"{{"header":{{}},"kvs":[{{"key":"x","value":"{}"}}],"count":"1"}}"#,
            b64("42")
        );
        assert_eq!(
            classify(&r, Reply::Http { status: 200, body }),
            Outcome::ok(Value::Int(42))
        );
        let empty = Reply::Http {
            status: 200,
            body: r#"{"header":{}}"#.into(),
        };
        assert_eq!(classify(&r, empty), Outcome::ok(Value::Null));
        let c = Op::Cas {
            key: Key::Int(1),
            old: 1,
            new: 2,
        };
        let no = Reply::Http {
            status: 200,
            body: r#"{"header":{}}"#.into(),
        };
        assert_eq!(classify(&c, no).kind, EventKind::Fail);
        let yes = Reply::Http {
            status: 200,
            body: r#"{"header":{},"succeeded":true}"#.into(),
        };
        assert_eq!(classify(&c, yes).kind, EventKind::Ok);
        let s = Op::ReadSet;
        let body = format!(
            r#"{{"kvs":[{{"value":"{}"}},{{"value":"{}"}}]}}"#,
            b64("7"),
            b64("3")
        );
        assert_eq!(
            classify(&s, Reply::Http { status: 200, body }),
            Outcome::ok(Value::List(vec![Value::Int(3), Value::Int(7)]))
        );
    }

    #[test]
    fn options_are_etcds_validated_and_resolved_with_defaults() {
        let resolved = EtcdKind
            .configure(&DbOptions::new())
            .map(|c| c.options())
            .unwrap();
        assert_eq!(resolved.get("install").map(String::as_str), Some("auto"));
        assert_eq!(resolved["unsafe-no-fsync"], "off");
        let lax: DbOptions = [("unsafe-no-fsync".to_string(), "on".to_string())].into();
        assert_eq!(
            EtcdKind.configure(&lax).unwrap().options()["unsafe-no-fsync"],
            "on"
        );
        assert_eq!(
            resolved.get("read-mode").map(String::as_str),
            Some("linearizable")
        );
        let mut bad = DbOptions::new();
        bad.insert("read-mode".into(), "eventual".into());
        assert!(EtcdKind
            .configure(&bad)
            .map(|c| c.options())
            .unwrap_err()
            .to_string()
            .contains("expected linearizable or serializable"));
        let mut unknown = DbOptions::new();
        unknown.insert("isolation".into(), "serializable".into());
        let e = EtcdKind
            .configure(&unknown)
            .map(|c| c.options())
            .unwrap_err()
            .to_string();
        assert!(e.contains("etcd has no option \"isolation\""), "{e}");
        // Resolving is idempotent: what test.yaml records resolves to itself.
        assert_eq!(
            EtcdKind.configure(&resolved).map(|c| c.options()).unwrap(),
            resolved
        );
    }
}
