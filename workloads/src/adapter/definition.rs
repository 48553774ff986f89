//! The database definition file (`faultline test --db FILE.yaml`): how to install,
//! configure, start, stop and wipe a database on a node, how to find its processes, when it
//! is ready, its logs, its primaries, its configuration files, the workloads it serves and the
//! adapter that is its client. See docs/adapter-protocol.md for a complete example.
//!
//! [`FileDbKind`] is the [`DatabaseKind`] a definition makes; `FileDb` its [`Database`]. Every
//! command runs as root on the node over the cluster's SSH sessions, with the definition's
//! command timeout, its variables substituted shell-quoted (see [`super::template`]) and
//! exported as `FAULTLINE_*` environment variables.

use super::client::{AdapterClient, AdapterSpec};
use super::template::{Scope, Template, Vars};
use crate::db::{self, ClientContext, Database, DatabaseKind, DbConfig, DbError, DbOptions};
use crate::op::Client;
use clusters::{quote, Cluster, RemoteCommand};
use serde::{Deserialize, Deserializer};
use sha2::Digest;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The option a resolved definition records: the SHA-256 of the file, so that a replay runs
/// the same definition (and refuses an edited one).
pub const SHA_OPTION: &str = "definition-sha256";

/// Options that faultline records for itself (a definition's [`SHA_OPTION`]): test.yaml
/// carries them so that a replay checks them, but they are no user's to set, and the
/// command line refuses them.
pub const INTERNAL_OPTIONS: &[&str] = &[SHA_OPTION];

/// Whether `--db VALUE` names a definition file rather than a registered database.
pub fn is_definition_path(value: &str) -> bool {
    value.ends_with(".yaml") || value.ends_with(".yml")
}

thread_local! {
    /// The options the definition being parsed declares (templates may use `opt.NAME`).
    static OPTIONS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// The tag of the last template that failed to parse, or the last value refused (to
    /// find it in the file; a value is found only as a whole word).
    static BAD_TAG: RefCell<Option<Bad>> = const { RefCell::new(None) };
}

/// A template used on one node (commands, file contents, file paths).
#[derive(Debug, Clone)]
pub struct NodeTemplate(pub Template);

/// A path that is the same on every node (log files).
#[derive(Debug, Clone)]
pub struct GlobalTemplate(pub Template);

fn parse_template<'de, D: Deserializer<'de>>(d: D, scope: Scope) -> Result<Template, D::Error> {
    let text = String::deserialize(d)?;
    OPTIONS
        .with(|o| Template::parse(&text, scope, &o.borrow()))
        .map_err(|e| {
            BAD_TAG.with(|b| {
                *b.borrow_mut() = Some(Bad {
                    text: e.tag.clone(),
                    word: false,
                })
            });
            serde::de::Error::custom(e)
        })
}

impl<'de> Deserialize<'de> for NodeTemplate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_template(d, Scope::Node).map(NodeTemplate)
    }
}

impl<'de> Deserialize<'de> for GlobalTemplate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_template(d, Scope::Global).map(GlobalTemplate)
    }
}

/// What a deserializer refused, to be found in the file's text.
struct Bad {
    text: String,
    /// Only where it is a whole word (not inside a longer one: `0s` is not in `60s`).
    word: bool,
}

impl Bad {
    /// Where it first is in `text`.
    fn find_in(&self, text: &str) -> Option<usize> {
        let wordy = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        text.match_indices(&self.text).map(|(i, _)| i).find(|&i| {
            !self.word
                || (!wordy(text[..i].chars().next_back())
                    && !wordy(text[i + self.text.len()..].chars().next()))
        })
    }
}

/// Remembers `text` as the value refused (see [`yaml_error`]).
fn refused_value(text: &str) {
    BAD_TAG.with(|b| {
        *b.borrow_mut() = Some(Bad {
            text: text.to_string(),
            word: true,
        })
    });
}

/// A duration written as text (`30s`), from [`Dur::MIN`] to [`Dur::MAX`].
#[derive(Debug, Clone, Copy)]
pub struct Dur(pub Duration);

impl Dur {
    /// The shortest timeout a definition may give (shorter ones would fail every command).
    pub const MIN: Duration = Duration::from_secs(1);
    /// The longest (longer ones overflow the clock, and would wait for ever).
    pub const MAX: Duration = Duration::from_secs(24 * 3600);
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let d = humantime::parse_duration(&text).map_err(|e| {
            refused_value(&text);
            serde::de::Error::custom(format!("{text:?}: {e}"))
        })?;
        if (Dur::MIN..=Dur::MAX).contains(&d) {
            Ok(Dur(d))
        } else {
            refused_value(&text);
            Err(serde::de::Error::custom(format!(
                "{text:?}: out of range: expected from {} to {}",
                humantime::format_duration(Dur::MIN),
                humantime::format_duration(Dur::MAX)
            )))
        }
    }
}

/// A database definition, as the file says it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// The database's name (in reports and the store's test names).
    pub name: String,
    /// One line about it.
    #[serde(default)]
    pub about: String,
    /// The workloads its adapter serves.
    pub workloads: Vec<String>,
    /// The adapter: program and arguments, run on the controller in the definition's
    /// directory (a relative program path is taken from there).
    pub client: Vec<String>,
    /// Options (`--db-opt NAME=VALUE`) with their defaults; templates read them as
    /// `opt.NAME`, and the adapter receives them in `init`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Data and log directories on the nodes.
    #[serde(default)]
    pub dirs: Dirs,
    /// Configuration files written on every node before `configure` runs.
    #[serde(default)]
    pub files: Vec<FileSpec>,
    /// The commands.
    pub commands: Commands,
    /// How to find the database's processes (for kill and pause).
    #[serde(default)]
    pub pids: Option<Pids>,
    /// The log files collected from each node.
    #[serde(default)]
    pub logs: Vec<GlobalTemplate>,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// Data and log directories (default `/var/lib/faultline-db/NAME`, `/var/log/faultline-db/NAME`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dirs {
    /// Where the database keeps its data (removed by the default wipe).
    pub data: Option<String>,
    /// Where it writes its logs.
    pub log: Option<String>,
}

/// A configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Its path on the node.
    pub path: NodeTemplate,
    /// Its contents.
    pub content: NodeTemplate,
    /// Its mode, in octal (default 0644).
    #[serde(default)]
    pub mode: Option<String>,
}

/// The commands of a definition (shell scripts run as root with `sh -c`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commands {
    /// Makes the database's binaries available.
    #[serde(default)]
    pub install: Option<NodeTemplate>,
    /// Runs after the files are written.
    #[serde(default)]
    pub configure: Option<NodeTemplate>,
    /// Starts the database in the background and returns.
    #[serde(default)]
    pub start: Option<NodeTemplate>,
    /// Or: one command that runs in the foreground, which faultline starts in the
    /// background (`setsid`, output appended to `LOG_DIR/daemon.log`, PID in
    /// `DATA_DIR/faultline.pid`, the default PID file).
    #[serde(default)]
    pub daemon: Option<NodeTemplate>,
    /// Stops the database (the remaining PIDs are then killed).
    #[serde(default)]
    pub stop: Option<NodeTemplate>,
    /// Removes its data (default: `rm -rf DATA_DIR`); runs after it was stopped.
    #[serde(default)]
    pub wipe: Option<NodeTemplate>,
    /// Exits 0 once the node serves requests (run every 200 ms until then).
    #[serde(default)]
    pub ready: Option<NodeTemplate>,
    /// Exits 0 on a node that is a primary (leader) now.
    #[serde(default)]
    pub primary: Option<NodeTemplate>,
}

/// How to find the database's PIDs on a node: `file` or `command`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pids {
    /// A file listing them (the live ones are taken).
    #[serde(default)]
    pub file: Option<NodeTemplate>,
    /// A command that prints them.
    #[serde(default)]
    pub command: Option<NodeTemplate>,
}

/// Timeouts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Each command on a node (default 60s).
    #[serde(default = "default_command_timeout")]
    pub command: Dur,
    /// Until every node is ready (default 60s).
    #[serde(default = "default_ready_timeout")]
    pub ready: Dur,
    /// Starting an adapter process and its handshake (default 20s).
    #[serde(default = "default_adapter_start_timeout")]
    pub adapter_start: Dur,
}

fn default_adapter_start_timeout() -> Dur {
    Dur(Duration::from_secs(20))
}

fn default_command_timeout() -> Dur {
    Dur(Duration::from_secs(60))
}

fn default_ready_timeout() -> Dur {
    Dur(Duration::from_secs(60))
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: default_command_timeout(),
            ready: default_ready_timeout(),
            adapter_start: default_adapter_start_timeout(),
        }
    }
}

/// Declared options, read before the rest so that templates can name them.
#[derive(Deserialize)]
struct OptionsOnly {
    #[serde(default)]
    options: BTreeMap<String, serde_yaml_ng::Value>,
}

/// The error of a definition: `FILE: line L, column C: what`. For a bad template, the
/// place is the bad tag's own (serde_yaml_ng places it at the enclosing mapping).
fn yaml_error(path: &Path, text: &str, e: &serde_yaml_ng::Error) -> DbError {
    if let (Some(bad), Some(l)) = (BAD_TAG.with(|b| b.borrow_mut().take()), e.location()) {
        let from = l.index().min(text.len());
        if let Some(i) = text.get(from..).and_then(|rest| bad.find_in(rest)) {
            let before = &text[..from + i];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |s| s.chars().count()) + 1;
            let msg = e.to_string();
            let msg = msg.rfind(" at line ").map_or(msg.as_str(), |j| &msg[..j]);
            return DbError::Config(format!(
                "{}: line {line}, column {column}: {msg}",
                path.display()
            ));
        }
    }
    let msg = e.to_string();
    let msg = msg.rfind(" at line ").map_or(msg.as_str(), |j| &msg[..j]);
    DbError::Config(match e.location() {
        Some(l) => format!(
            "{}: line {}, column {}: {msg}",
            path.display(),
            l.line(),
            l.column()
        ),
        None => format!("{}: {e}", path.display()),
    })
}

impl Definition {
    /// Parses a definition's text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Definition, DbError> {
        BAD_TAG.with(|b| b.borrow_mut().take());
        let declared: OptionsOnly =
            serde_yaml_ng::from_str(text).map_err(|e| yaml_error(path, text, &e))?;
        let names: Vec<String> = declared.options.into_keys().collect();
        OPTIONS.with(|o| *o.borrow_mut() = names);
        let parsed = serde_yaml_ng::from_str::<Definition>(text);
        OPTIONS.with(|o| o.borrow_mut().clear());
        let def = parsed.map_err(|e| yaml_error(path, text, &e))?;
        def.validate()
            .map_err(|e| DbError::Config(format!("{}: {e}", path.display())))?;
        Ok(def)
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "name {:?}: expected letters, digits, '-' and '_'",
                self.name
            ));
        }
        if self.client.is_empty() {
            return Err("client: expected [program, args...]".into());
        }
        if self.workloads.is_empty() {
            return Err("workloads: expected at least one".into());
        }
        match (&self.commands.start, &self.commands.daemon) {
            (None, None) => return Err("commands: expected start or daemon".into()),
            (Some(_), Some(_)) => return Err("commands: expected start or daemon, not both".into()),
            _ => {}
        }
        if let Some(p) = &self.pids {
            if p.file.is_some() == p.command.is_some() {
                return Err("pids: expected file or command (one of them)".into());
            }
        }
        for k in self.options.keys() {
            if k == SHA_OPTION {
                return Err(format!("options: {SHA_OPTION} is faultline's"));
            }
        }
        for f in &self.files {
            if let Some(m) = &f.mode {
                if u32::from_str_radix(m, 8).is_err() {
                    return Err(format!(
                        "files: mode {m:?}: expected octal, such as \"0644\""
                    ));
                }
            }
        }
        Ok(())
    }

    /// The data directory on the nodes.
    pub fn data_dir(&self) -> String {
        self.dirs
            .data
            .clone()
            .unwrap_or_else(|| format!("/var/lib/faultline-db/{}", self.name))
    }

    /// The log directory on the nodes.
    pub fn log_dir(&self) -> String {
        self.dirs
            .log
            .clone()
            .unwrap_or_else(|| format!("/var/log/faultline-db/{}", self.name))
    }
}

/// A database definition file as a [`DatabaseKind`].
pub struct FileDbKind {
    path: PathBuf,
    sha256: String,
    def: Arc<Definition>,
    about: String,
}

impl FileDbKind {
    /// Loads the definition at `path` (refused with file, line and column when it is not one).
    pub fn load(path: &Path) -> Result<FileDbKind, DbError> {
        let text = read_definition(path)?;
        let def = Definition::parse(path, &text)?;
        let sha256 = hex(&sha2::Sha256::digest(text.as_bytes()));
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let about = if def.about.is_empty() {
            format!("defined in {}", path.display())
        } else {
            def.about.clone()
        };
        Ok(FileDbKind {
            path,
            sha256,
            def: Arc::new(def),
            about,
        })
    }

    /// The definition's absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SHA-256 of the file, in hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The definition.
    pub fn definition(&self) -> &Definition {
        &self.def
    }
}

/// The largest definition file read (real ones are a few KiB).
pub const MAX_DEFINITION_BYTES: u64 = 1 << 20;

/// The text of the definition at `path`, refused when larger than [`MAX_DEFINITION_BYTES`]
/// (without reading more than that).
fn read_definition(path: &Path) -> Result<String, DbError> {
    use std::io::Read as _;
    let err = |e: String| DbError::Config(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_DEFINITION_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > MAX_DEFINITION_BYTES {
        let size = std::fs::metadata(path)
            .map_or_else(|_| "more".to_string(), |m| format!("{} bytes", m.len()));
        return Err(err(format!(
            "{size}: a definition file may have at most {MAX_DEFINITION_BYTES} bytes (1 MiB)"
        )));
    }
    String::from_utf8(bytes).map_err(|_| err("not UTF-8 text".into()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl DatabaseKind for FileDbKind {
    fn name(&self) -> &str {
        &self.def.name
    }
    fn about(&self) -> &str {
        &self.about
    }
    fn workloads(&self) -> Vec<&str> {
        self.def.workloads.iter().map(String::as_str).collect()
    }
    fn definition_file(&self) -> Option<&Path> {
        Some(&self.path)
    }
    fn configure(&self, given: &DbOptions) -> Result<Arc<dyn DbConfig>, DbError> {
        // The internal option is checked below, and not listed among the user's options.
        let known: Vec<&str> = self.def.options.keys().map(String::as_str).collect();
        let user: DbOptions = given
            .iter()
            .filter(|(k, _)| k.as_str() != SHA_OPTION)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        db::only_options(&self.def.name, &user, &known)?;
        if let Some(sha) = given.get(SHA_OPTION) {
            if sha != &self.sha256 {
                return Err(DbError::Config(format!(
                    "{} changed since the run that recorded it (that run's test.yaml gives its SHA-256 as {sha}, now {}); restore it or start a new run",
                    self.path.display(),
                    self.sha256
                )));
            }
        }
        let mut options = self.def.options.clone();
        options.extend(user);
        Ok(Arc::new(FileDbConfig {
            def: self.def.clone(),
            dir: self
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            sha256: self.sha256.clone(),
            options,
        }))
    }
}

/// A definition configured: the user's options over the definition's defaults, and the
/// file's SHA-256 (recorded as [`SHA_OPTION`] so that a replay runs the same file).
#[derive(Debug)]
struct FileDbConfig {
    def: Arc<Definition>,
    /// The definition's directory (the adapter's working directory).
    dir: PathBuf,
    sha256: String,
    /// The options, without [`SHA_OPTION`].
    options: DbOptions,
}

impl DbConfig for FileDbConfig {
    fn options(&self) -> DbOptions {
        let mut out = self.options.clone();
        out.insert(SHA_OPTION.into(), self.sha256.clone());
        out
    }
    fn open(&self, cluster: &Cluster) -> Result<Arc<dyn Database>, DbError> {
        let addrs = db::peer_addresses(cluster)?;
        let nodes: Vec<(String, String)> = cluster
            .nodes()
            .into_iter()
            .map(|n| {
                let a = addrs.get(&n).map(|a| a.to_string()).unwrap_or_default();
                (n, a)
            })
            .collect();
        Ok(Arc::new(FileDb {
            def: self.def.clone(),
            dir: self.dir.clone(),
            nodes,
            options: self.options.clone(),
        }))
    }
}

/// A database defined by a file, on a cluster.
pub struct FileDb {
    def: Arc<Definition>,
    /// The definition's directory (the adapter's working directory).
    dir: PathBuf,
    /// Every node and its address, in the cluster's order.
    nodes: Vec<(String, String)>,
    options: BTreeMap<String, String>,
}

impl FileDb {
    /// The variables of `node` (or of no node in particular).
    fn vars(&self, node: Option<&str>) -> Vars {
        let mut v = BTreeMap::new();
        let join = |f: fn(&(String, String)) -> &str| {
            self.nodes.iter().map(f).collect::<Vec<_>>().join(",")
        };
        v.insert("nodes".into(), join(|n| &n.0));
        v.insert("addresses".into(), join(|n| &n.1));
        v.insert("count".into(), self.nodes.len().to_string());
        if let Some((n, a)) = self.nodes.first() {
            v.insert("first_node".into(), n.clone());
            v.insert("first_address".into(), a.clone());
        }
        v.insert("data_dir".into(), self.def.data_dir());
        v.insert("log_dir".into(), self.def.log_dir());
        v.insert("name".into(), self.def.name.clone());
        for (k, o) in &self.options {
            v.insert(format!("opt.{k}"), o.clone());
        }
        if let Some(node) = node {
            let index = self.nodes.iter().position(|(n, _)| n == node).unwrap_or(0);
            v.insert("node".into(), node.to_string());
            v.insert(
                "address".into(),
                self.nodes
                    .get(index)
                    .map(|n| n.1.clone())
                    .unwrap_or_default(),
            );
            v.insert("index".into(), index.to_string());
            v.insert("id".into(), (index + 1).to_string());
        }
        Vars {
            values: v,
            nodes: self.nodes.clone(),
        }
    }

    /// Runs `script` as root on `node` with the definition's timeout and the node's
    /// variables in the environment.
    fn run(
        &self,
        cluster: &Cluster,
        node: &str,
        step: &str,
        script: &str,
    ) -> Result<String, DbError> {
        self.run_for(cluster, node, step, script, self.def.timeouts.command.0)
    }

    fn run_for(
        &self,
        cluster: &Cluster,
        node: &str,
        step: &str,
        script: &str,
        timeout: Duration,
    ) -> Result<String, DbError> {
        let out = self.exec(cluster, node, script, timeout)?;
        if out.success() {
            Ok(out.stdout_text())
        } else {
            Err(DbError::Step {
                node: node.to_string(),
                step: format!("{} {step}", self.def.name),
                message: format!(
                    "exit {}: {}{}",
                    out.status,
                    out.stderr_text().trim(),
                    if out.status == 124 {
                        format!(" (timed out after {timeout:?})")
                    } else {
                        String::new()
                    }
                ),
            })
        }
    }

    fn exec(
        &self,
        cluster: &Cluster,
        node: &str,
        script: &str,
        timeout: Duration,
    ) -> Result<clusters::Output, DbError> {
        let vars = self.vars(Some(node));
        let mut cmd = RemoteCommand::script(script).sudo();
        for (k, env) in [
            ("node", "FAULTLINE_NODE"),
            ("address", "FAULTLINE_ADDRESS"),
            ("index", "FAULTLINE_INDEX"),
            ("id", "FAULTLINE_ID"),
            ("nodes", "FAULTLINE_NODES"),
            ("addresses", "FAULTLINE_ADDRESSES"),
            ("data_dir", "FAULTLINE_DATA_DIR"),
            ("log_dir", "FAULTLINE_LOG_DIR"),
        ] {
            if let Some(v) = vars.values.get(k) {
                cmd = cmd.env(env, v.clone());
            }
        }
        Ok(cluster.exec_timeout(node, &cmd, timeout)?)
    }

    fn script(&self, t: &Option<NodeTemplate>, node: &str) -> Option<String> {
        t.as_ref()
            .filter(|t| !t.0.is_blank())
            .map(|t| t.0.shell(&self.vars(Some(node))))
    }

    fn pidfile(&self) -> String {
        format!("{}/faultline.pid", self.def.data_dir())
    }
}

/// The PIDs a definition's `pids` command printed, after the `self PID...` line that
/// precedes them (the command's shell and its ancestors): those are left out, and PID 0 or 1
/// (which `kill` takes for its own process group, or init) is refused.
fn command_pids(node: &str, out: &str) -> Result<Vec<u32>, DbError> {
    let (own, printed) = match out.split_once('\n') {
        Some((first, rest)) if first.starts_with("self") => (first, rest),
        _ => ("", out),
    };
    let own: Vec<u32> = own
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    let mut pids = Vec::new();
    for w in printed.split_whitespace() {
        match w.parse::<u32>() {
            Ok(p) if p <= 1 => {
                return Err(DbError::Step {
                    node: node.to_string(),
                    step: "pids".into(),
                    message: format!(
                        "the pids command printed PID {p}, which is no database process (signalling it would hit the signaller's own process group, or init): refused"
                    ),
                })
            }
            Ok(p) if !own.contains(&p) => pids.push(p),
            _ => {}
        }
    }
    Ok(pids)
}

impl Database for FileDb {
    fn name(&self) -> &str {
        &self.def.name
    }

    fn install(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        match self.script(&self.def.commands.install, node) {
            Some(s) => self.run(cluster, node, "install", &s).map(|_| ()),
            None => Ok(()),
        }
    }

    fn configure(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        let vars = self.vars(Some(node));
        let mut script = format!(
            "mkdir -p {} {}\n",
            quote(&self.def.data_dir()),
            quote(&self.def.log_dir())
        );
        for f in &self.def.files {
            let path = f.path.0.text(&vars);
            let content = f.content.0.text(&vars);
            let mode = f.mode.clone().unwrap_or_else(|| "0644".into());
            script.push_str(&format!(
                "mkdir -p \"$(dirname {p})\" && printf '%s' {c} > {p} && chmod {m} {p}\n",
                p = quote(&path),
                c = quote(&content),
                m = quote(&mode)
            ));
        }
        self.run(cluster, node, "configure (directories and files)", &script)?;
        match self.script(&self.def.commands.configure, node) {
            Some(s) => self.run(cluster, node, "configure", &s).map(|_| ()),
            None => Ok(()),
        }
    }

    fn start(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        if let Some(s) = self.script(&self.def.commands.start, node) {
            return self.run(cluster, node, "start", &s).map(|_| ());
        }
        let Some(cmd) = self.script(&self.def.commands.daemon, node) else {
            return Err(DbError::Config("commands: expected start or daemon".into()));
        };
        let log = format!("{}/daemon.log", self.def.log_dir());
        let script = format!(
            "mkdir -p {d} {l}\n\
             echo \"== start $(date -u +%FT%TZ)\" >> {log}\n\
             setsid sh -c {c} </dev/null >>{log} 2>&1 &\n\
             p=$!\n{pid}",
            d = quote(&self.def.data_dir()),
            l = quote(&self.def.log_dir()),
            log = quote(&log),
            c = quote(&format!("exec {cmd}")),
            pid = db::record_pid_script(&self.pidfile()),
        );
        self.run(cluster, node, "start (daemon)", &script)
            .map(|_| ())
    }

    /// Waits for the definition's own `timeouts.ready`, as it says it (the caller's timeout
    /// is for databases that have none).
    fn wait_ready(&self, cluster: &Cluster, node: &str, _: Duration) -> Result<(), DbError> {
        let Some(check) = self.script(&self.def.commands.ready, node) else {
            return Ok(());
        };
        let timeout = self.def.timeouts.ready.0;
        let deadline = Instant::now() + timeout;
        loop {
            // Each check within what is left of the timeout (at most 10 s, at least 1 s): a
            // check that hangs or cannot be run is "not ready yet" until the deadline.
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = left.clamp(Duration::from_secs(1), Duration::from_secs(10));
            let why = match self.exec(cluster, node, &check, attempt) {
                Ok(out) if out.success() => return Ok(()),
                Ok(out) => format!(
                    "exit {}: {}{}",
                    out.status,
                    out.stdout_text().trim(),
                    out.stderr_text().trim()
                ),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(DbError::Step {
                    node: node.to_string(),
                    step: format!("{} wait until ready", self.def.name),
                    message: format!("the ready command still fails after {timeout:?}: {why}"),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn pids(&self, cluster: &Cluster, node: &str) -> Result<Vec<u32>, DbError> {
        let vars = self.vars(Some(node));
        match &self.def.pids {
            Some(Pids {
                file: Some(f),
                command: None,
            }) => db::pidfile_pids(cluster, node, &f.0.text(&vars)),
            Some(Pids {
                command: Some(c), ..
            }) => {
                // The command's own shell and its ancestors (whose command lines hold the
                // command, which a `pgrep -f` matches) are left out.
                let script = format!(
                    "a=$$; own=''\n\
                     while [ \"$a\" -gt 1 ] 2>/dev/null; do own=\"$own $a\"; a=$(sed 's/.*) //' /proc/$a/stat | cut -d' ' -f2); done\n\
                     echo \"self$own\"\n{}",
                    c.0.shell(&vars)
                );
                command_pids(node, &self.run(cluster, node, "pids", &script)?)
            }
            Some(_) => Ok(Vec::new()),
            None if self.def.commands.daemon.is_some() => {
                db::pidfile_pids(cluster, node, &self.pidfile())
            }
            None => Ok(Vec::new()),
        }
    }

    fn wipe(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        self.kill(cluster, node)?;
        let script = match self.script(&self.def.commands.wipe, node) {
            Some(s) => s,
            None => format!("rm -rf {}", quote(&self.def.data_dir())),
        };
        self.run(cluster, node, "wipe", &script)?;
        let mut truncate = format!("mkdir -p {}", quote(&self.def.log_dir()));
        for f in self.log_files() {
            truncate.push_str(&format!("; [ ! -f {f} ] || : > {f}", f = quote(&f)));
        }
        self.run(cluster, node, "wipe (logs)", &truncate)
            .map(|_| ())
    }

    fn kill(&self, cluster: &Cluster, node: &str) -> Result<(), DbError> {
        if let Some(s) = self.script(&self.def.commands.stop, node) {
            self.run(cluster, node, "stop", &s)?;
        }
        db::signal(cluster, node, &self.pids(cluster, node)?, "KILL")
    }

    fn primaries(&self, cluster: &Cluster) -> Result<Vec<String>, DbError> {
        if self.def.commands.primary.is_none() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (node, _) in &self.nodes {
            if let Some(s) = self.script(&self.def.commands.primary, node) {
                if let Ok(o) = self.exec(cluster, node, &s, Duration::from_secs(10)) {
                    if o.success() {
                        out.push(node.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    fn data_dir(&self) -> Option<String> {
        Some(self.def.data_dir())
    }

    fn log_files(&self) -> Vec<String> {
        let vars = self.vars(None);
        let mut logs: Vec<String> = self.def.logs.iter().map(|l| l.0.text(&vars)).collect();
        if self.def.commands.daemon.is_some() {
            logs.push(format!("{}/daemon.log", self.def.log_dir()));
        }
        logs
    }

    fn client(
        &self,
        node: &str,
        timeout: Duration,
        ctx: &ClientContext,
    ) -> Result<Arc<dyn Client>, DbError> {
        let address = self
            .nodes
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, a)| a.clone())
            .ok_or_else(|| DbError::Config(format!("no address known for node {node}")))?;
        let mut init = serde_json::Map::new();
        init.insert("worker".into(), ctx.worker.into());
        init.insert("node".into(), node.into());
        init.insert("address".into(), address.into());
        init.insert(
            "nodes".into(),
            serde_json::Value::Array(
                self.nodes
                    .iter()
                    .map(|(n, a)| serde_json::json!({"name": n, "address": a}))
                    .collect(),
            ),
        );
        init.insert("workload".into(), ctx.workload.clone().into());
        init.insert(
            "workload_options".into(),
            serde_json::json!({"ops_per_key": ctx.ops_per_key}),
        );
        init.insert(
            "options".into(),
            serde_json::to_value(&self.options).unwrap_or_default(),
        );
        init.insert(
            "timeout_ms".into(),
            (timeout.as_millis().min(u64::MAX as u128) as u64).into(),
        );
        let mut argv = self.def.client.clone();
        if let Some(p) = argv.first_mut() {
            if p.contains('/') && Path::new(p.as_str()).is_relative() {
                *p = self.dir.join(&*p).display().to_string();
            }
        }
        let stderr = ctx.run_dir.as_ref().map(|d| {
            let dir = d.join("adapters");
            let _ = std::fs::create_dir_all(&dir);
            dir.join(format!("{}.stderr", ctx.worker))
        });
        let client = AdapterClient::new(AdapterSpec {
            argv,
            cwd: Some(self.dir.clone()),
            init,
            stderr,
            timeout,
            start_timeout: self.def.timeouts.adapter_start.0,
        })
        .map_err(|e| DbError::Config(e.to_string()))?;
        Ok(Arc::new(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
name: toy
workloads: [register]
client: [python3, adapter.py]
options:
  mode: fast
files:
  - path: \"{{data_dir}}/conf\"
    content: |
      me {{node}} at {{address}}
      peers {{ for n in nodes sep \",\" }}{{n.id}}@{{n.address}}{{ end }}
      mode {{opt.mode}}
commands:
  daemon: sleep 1000 {{opt.mode}}
  ready: test -e {{data_dir}}/conf
logs: [\"{{log_dir}}/toy.log\"]
";

    fn parse(text: &str) -> Result<Definition, String> {
        Definition::parse(Path::new("db.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_definition_renders_per_node() {
        let def = parse(GOOD).unwrap();
        let db = FileDb {
            def: Arc::new(def),
            dir: PathBuf::from("/x"),
            nodes: vec![
                ("n1".into(), "10.0.0.1".into()),
                ("n2".into(), "10.0.0.2".into()),
            ],
            options: [("mode".to_string(), "slow".to_string())].into(),
        };
        let vars = db.vars(Some("n2"));
        assert_eq!(
            db.def.files[0].content.0.text(&vars),
            "me n2 at 10.0.0.2\npeers 1@10.0.0.1,2@10.0.0.2\nmode slow\n"
        );
        assert_eq!(
            db.def.files[0].path.0.text(&vars),
            "/var/lib/faultline-db/toy/conf"
        );
        assert_eq!(
            db.script(&db.def.commands.daemon, "n1").unwrap(),
            "sleep 1000 slow"
        );
        assert_eq!(
            db.log_files(),
            [
                "/var/log/faultline-db/toy/toy.log",
                "/var/log/faultline-db/toy/daemon.log"
            ]
        );
    }

    #[test]
    fn unknown_keys_and_bad_templates_name_file_line_and_column() {
        let e = parse(&GOOD.replace("logs:", "log:")).unwrap_err();
        assert!(
            e.starts_with("db.yaml: line 15, column 1: unknown field `log`"),
            "{e}"
        );
        let e = parse(&GOOD.replace("{{n.id}}", "{{n.port}}")).unwrap_err();
        assert!(
            e.starts_with("db.yaml: line 10, column 41:") && e.contains("no field \"port\""),
            "{e}"
        );
        let e = parse(&GOOD.replace("{{opt.mode}}\n", "{{opt.speed}}\n")).unwrap_err();
        assert!(
            e.contains("line 11, column 12") && e.contains("unknown option \"speed\""),
            "{e}"
        );
        let e =
            parse(&GOOD.replace("{{log_dir}}/toy.log", "{{log_dir}}/{{node}}.log")).unwrap_err();
        assert!(
            e.contains("line 15") && e.contains("same on every node"),
            "{e}"
        );
        let e = parse(&GOOD.replace("  ready:", "  readyy:")).unwrap_err();
        assert!(
            e.contains("line 14, column 3: commands: unknown field `readyy`")
                && !e.contains(" at line "),
            "{e}"
        );
        let e = parse(&GOOD.replace("  daemon: sleep 1000 {{opt.mode}}\n", "")).unwrap_err();
        assert!(e.contains("expected start or daemon"), "{e}");
        // PIDs from a file or a command, not both.
        let with = |pids: &str| parse(&format!("{GOOD}pids:\n{pids}"));
        let def = with("  file: \"{{data_dir}}/x.pid\"\n").unwrap();
        assert!(def
            .pids
            .is_some_and(|p| p.file.is_some() && p.command.is_none()));
        assert!(with("  command: pgrep -x toy\n").is_ok());
        let e = with("  file: a\n  command: b\n").unwrap_err();
        assert!(e.contains("pids: expected file or command"), "{e}");
        let e = with("  pidfile: a\n").unwrap_err();
        assert!(
            e.contains("line 17, column 3: pids: unknown field `pidfile`"),
            "{e}"
        );
    }

    #[test]
    fn timeouts_out_of_range_are_refused_where_they_are_written() {
        for (value, why) in [
            ("18446744073709551615s", "out of range"),
            ("0s", "out of range"),
            ("500ms", "out of range"),
            ("25h", "out of range"),
            ("soon", "\"soon\""),
        ] {
            let text = format!("{GOOD}timeouts:\n  command: 60s\n  ready: {value}\n");
            let e = parse(&text).unwrap_err();
            assert!(
                e.starts_with("db.yaml: line 18, column 10: ") && e.contains(why),
                "{value}: {e}"
            );
            assert!(
                e.contains("expected from 1s to 1day") || why != "out of range",
                "{e}"
            );
        }
        let def = parse(&format!("{GOOD}timeouts:\n  ready: 5s\n  command: 1s\n")).unwrap();
        assert_eq!(def.timeouts.ready.0, Duration::from_secs(5));
        assert_eq!(def.timeouts.command.0, Duration::from_secs(1));
    }

    #[test]
    fn options_are_resolved_with_defaults_and_the_file_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("toy.yaml");
        std::fs::write(&path, GOOD).unwrap();
        let kind = FileDbKind::load(&path).unwrap();
        assert_eq!(kind.name(), "toy");
        assert_eq!(kind.workloads(), ["register"]);
        let resolved = kind
            .configure(&DbOptions::new())
            .map(|c| c.options())
            .unwrap();
        assert_eq!(resolved["mode"], "fast");
        assert_eq!(resolved[SHA_OPTION].len(), 64);
        // What test.yaml records resolves to itself.
        assert_eq!(
            kind.configure(&resolved).map(|c| c.options()).unwrap(),
            resolved
        );
        let mut unknown = DbOptions::new();
        unknown.insert("speed".into(), "1".into());
        let e = kind
            .configure(&unknown)
            .map(|c| c.options())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no option \"speed\" (its options: mode)"), "{e}");
        // A definition file larger than 1 MiB is refused, naming it and the limit.
        let big = dir.path().join("big.yaml");
        let mut text = GOOD.to_string();
        while (text.len() as u64) <= MAX_DEFINITION_BYTES {
            text.push_str("# padding padding padding padding padding padding padding\n");
        }
        std::fs::write(&big, &text).unwrap();
        let e = FileDbKind::load(&big).err().unwrap().to_string();
        assert!(
            e.contains(&format!("{}: {} bytes: ", big.display(), text.len()))
                && e.contains("at most 1048576 bytes"),
            "{e}"
        );
        // An edited definition is refused for a replay.
        std::fs::write(&path, GOOD.replace("sleep 1000", "sleep 2000")).unwrap();
        let edited = FileDbKind::load(&path).unwrap();
        let e = edited
            .configure(&resolved)
            .map(|c| c.options())
            .unwrap_err()
            .to_string();
        assert!(e.contains("changed since the run"), "{e}");
    }

    /// A `pids` command printing 0 or 1 was believed: `stop` then ran `kill -KILL 0`, its own
    /// process group. A `pgrep -f` also matches the command's own shell.
    #[test]
    fn a_pids_command_names_no_init_no_group_and_not_itself() {
        assert_eq!(
            command_pids("n1", "self 300 200 100\n400\n300\n200 500\n").unwrap(),
            vec![400, 500]
        );
        assert_eq!(command_pids("n1", "12 13").unwrap(), vec![12, 13]);
        for bad in ["self 9\n0\n", "self 9\n1 77\n"] {
            let e = command_pids("n1", bad).unwrap_err().to_string();
            assert!(e.contains("refused") && e.contains("n1"), "{e}");
        }
    }
}
