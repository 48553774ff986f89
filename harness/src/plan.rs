//! The typed test plan: every option that changes a run, made once from the command line, a
//! `--config` test file and a `--replay`ed run, validated once, written as the run's test.yaml
//! and read back with types by `analyze`, `serve`, `--replay` and `--config`.
//!
//! Precedence: for `--config`, options on the command line win over the file's; for
//! `--replay`, the stored run's options win over everything but `--cluster`, `--store`,
//! `--test-count` and `--keep-going`. Defaults that depend on the provider are resolved here
//! (a VM cluster adds the clock nemesis), and the database resolves its own options (with
//! their defaults), so that test.yaml says exactly what ran and a replay reruns exactly that.

use crate::cli::{parse_duration, TestArgs};
use anyhow::{anyhow, bail, Context};
use checkers::txn::Consistency;
use clusters::ClusterFile;
use nemesis::schedule::{Kind, Schedule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use workloads::{DatabaseKind, DbConfig, DbOptions, Registry, Workload};

/// Default of `--nemesis` (VM clusters add `clock`).
pub const DEFAULT_NEMESIS: &str = "partition,kill,pause";

/// A run of `faultline test`, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestPlan {
    /// The test's name in the store.
    pub name: String,
    /// `--cluster` as given: a cluster file's path, or `local:N`.
    pub cluster: String,
    /// Local qemu guests instead of namespaces (with `local:N`).
    #[serde(default)]
    pub vm: bool,
    /// The cluster file's contents, for a cluster given as a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_file: Option<ClusterFile>,
    /// The database.
    pub db: String,
    /// The database's options, as it resolved them (defaults included).
    #[serde(default)]
    pub db_options: DbOptions,
    /// The consistency model a transactional workload is checked against, as the database
    /// resolved it from its options (PostgreSQL: what its isolation level promises, or its
    /// `consistency` option); absent for databases that have none.
    #[serde(
        default,
        with = "consistency_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub consistency: Option<Consistency>,
    /// The workload.
    pub workload: String,
    /// Ops per key before a keyed workload moves to a fresh key (list-append: appends per key
    /// before the key is retired).
    pub ops_per_key: u64,
    /// The fault kinds mixed (`partition,kill,pause`, or `none`).
    pub nemesis: String,
    /// Time between fault steps.
    #[serde(with = "duration_text")]
    pub nemesis_interval: Duration,
    /// How long the workload runs.
    #[serde(with = "duration_text")]
    pub time_limit: Duration,
    /// Client workers.
    pub concurrency: usize,
    /// Ops per second over all workers.
    pub rate: f64,
    /// An op with no answer after this long completes as `info`.
    #[serde(with = "duration_text")]
    pub op_timeout: Duration,
    /// The seed of the op stream and the fault schedule.
    pub seed: u64,
    /// When the run started (RFC 3339, UTC): the one field a replay changes.
    #[serde(default)]
    pub started: String,
    /// The faultline version that wrote it.
    pub faultline_version: String,
    /// The fault schedule: drawn from the seed, or given as is (see `explicit_schedule`).
    pub schedule: Schedule,
    /// Whether `schedule` is used as written (a subset of a run's steps, as `faultline shrink`
    /// writes it) instead of drawn from the seed; the seed still drives the op stream.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explicit_schedule: bool,
    /// The campaign and cell this run is part of (`faultline campaign`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<CampaignRef>,
}

/// A run's place in a campaign: the campaign's id and the cell's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignRef {
    /// The campaign's id (its directory under `STORE/campaigns/`).
    pub id: String,
    /// The cell's id within it (database, workload, faults, options and seed).
    pub cell: String,
}

impl CampaignRef {
    /// Parses `ID::CELL`, as `faultline test --campaign-cell` takes it.
    pub fn parse(text: &str) -> anyhow::Result<CampaignRef> {
        match text.split_once("::") {
            Some((id, cell)) if !id.is_empty() && !cell.is_empty() => Ok(CampaignRef {
                id: id.to_string(),
                cell: cell.to_string(),
            }),
            _ => bail!("--campaign-cell {text:?}: expected CAMPAIGN::CELL"),
        }
    }
}

/// Serde for durations as humantime text (`1m 30s`).
mod duration_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        crate::cli::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde for a consistency model as its name (`snapshot-isolation`).
mod consistency_text {
    use checkers::txn::Consistency;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &Option<Consistency>, s: S) -> Result<S::Ok, S::Error> {
        match c {
            Some(c) => s.serialize_str(c.name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Consistency>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| t.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A YAML scalar that may be written as text or as a number (`time-limit: 60s`, `seed: 4`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Int(u64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Text(t) => t.clone(),
        }
    }
}

/// A test file (`--config`) or a stored test.yaml, as read: every key optional, keys as the
/// long options (`time-limit` or `time_limit`), unknown keys refused with line and column.
/// The keys a run writes but an input does not set (`cluster`, `cluster_file`, `started`,
/// `faultline_version`) are accepted and ignored, so that a test.yaml is a valid test file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PlanFile {
    name: Option<String>,
    /// Ignored on input: `--cluster` comes from the command line.
    #[serde(default)]
    cluster: Option<serde_yaml_ng::Value>,
    #[serde(default, alias = "cluster-file")]
    cluster_file: Option<serde_yaml_ng::Value>,
    vm: Option<bool>,
    db: Option<String>,
    #[serde(alias = "db-options")]
    db_options: Option<BTreeMap<String, Scalar>>,
    /// Older test.yaml files and test files: etcd's options among the generic ones.
    #[serde(alias = "db-install")]
    db_install: Option<String>,
    #[serde(alias = "db-binary")]
    db_binary: Option<String>,
    #[serde(alias = "read-mode")]
    read_mode: Option<String>,
    /// A database's isolation level (`--isolation`), among the generic options.
    isolation: Option<String>,
    /// The consistency model (`--consistency`): a database option on input; in a test.yaml,
    /// the model the run was checked against.
    consistency: Option<String>,
    workload: Option<String>,
    #[serde(alias = "ops-per-key")]
    ops_per_key: Option<u64>,
    nemesis: Option<String>,
    #[serde(alias = "nemesis-interval")]
    nemesis_interval: Option<Scalar>,
    #[serde(alias = "time-limit")]
    time_limit: Option<Scalar>,
    concurrency: Option<usize>,
    rate: Option<f64>,
    #[serde(alias = "op-timeout")]
    op_timeout: Option<Scalar>,
    seed: Option<u64>,
    started: Option<String>,
    #[serde(alias = "faultline-version")]
    faultline_version: Option<String>,
    schedule: Option<Schedule>,
    /// The schedule is used as written instead of drawn from the seed.
    #[serde(alias = "explicit-schedule")]
    explicit_schedule: Option<bool>,
    /// Ignored on input: a run is part of a campaign only when the campaign runs it.
    #[serde(default)]
    campaign: Option<serde_yaml_ng::Value>,
}

impl PlanFile {
    /// Reads a test file or a run's test.yaml.
    pub fn load(path: &Path) -> anyhow::Result<PlanFile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
        serde_yaml_ng::from_str(&text).map_err(|e| yaml_error(path, &e))
    }

    /// The workload it names.
    pub fn workload(&self) -> Option<&str> {
        self.workload.as_deref()
    }

    /// The test's name.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The seed.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// The consistency model it names (a run's: what its history is checked against).
    pub fn consistency(&self) -> anyhow::Result<Option<Consistency>> {
        self.consistency
            .as_deref()
            .map(|c| {
                c.parse::<Consistency>()
                    .map_err(|e| anyhow!("consistency: {e}"))
            })
            .transpose()
    }

    /// The fault kinds it names.
    pub fn nemesis(&self) -> Option<&str> {
        self.nemesis.as_deref()
    }

    /// The number of client workers it names.
    pub fn concurrency(&self) -> Option<usize> {
        self.concurrency
    }

    /// The stored fault schedule.
    pub fn schedule(&self) -> Option<&Schedule> {
        self.schedule.as_ref()
    }

    /// The database options it names, old flat keys included.
    fn db_options(&self) -> DbOptions {
        let mut m: DbOptions = self
            .db_options
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.text()))
            .collect();
        for (k, v) in [
            ("install", &self.db_install),
            ("binary", &self.db_binary),
            ("read-mode", &self.read_mode),
            ("isolation", &self.isolation),
            ("consistency", &self.consistency),
        ] {
            if let Some(v) = v {
                m.entry(k.to_string()).or_insert_with(|| v.clone());
            }
        }
        m
    }
}

/// A YAML error naming the file, line and column (`FILE:LINE:COLUMN: ...`).
fn yaml_error(path: &Path, e: &serde_yaml_ng::Error) -> anyhow::Error {
    match e.location() {
        Some(l) => anyhow!(
            "{}: line {}, column {}: {e}",
            path.display(),
            l.line(),
            l.column()
        ),
        None => anyhow!("{}: {e}", path.display()),
    }
}

fn duration_of(s: &Option<Scalar>, key: &str) -> anyhow::Result<Option<Duration>> {
    s.as_ref()
        .map(|v| parse_duration(&v.text()).map_err(|e| anyhow!("{key}: {e}")))
        .transpose()
}

/// Merges the command line with a file: `first` wins where it has a value.
fn pick<T>(first: Option<T>, second: Option<T>) -> Option<T> {
    first.or(second)
}

/// Where a run's nodes come from, parsed once from `--cluster` (and `--vm`).
#[derive(Debug, Clone)]
pub enum ClusterSpec {
    /// A temporary local cluster (`local:N`), removed when the run ends.
    Local {
        /// How many nodes.
        nodes: usize,
        /// qemu guests instead of network namespaces.
        vm: bool,
    },
    /// The nodes of a cluster file.
    File(ClusterFile),
}

impl ClusterSpec {
    /// Parses `--cluster`: `local:N` with N of 1 or more, or a cluster file's path (loaded
    /// and checked here, before anything is set up). `vm` needs a local cluster.
    pub fn parse(text: &str, vm: bool) -> anyhow::Result<ClusterSpec> {
        match text.strip_prefix("local:") {
            Some(n) => {
                let nodes = n.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    anyhow!(
                        "--cluster {text}: expected local:N with N a number of nodes (1 or more)"
                    )
                })?;
                Ok(ClusterSpec::Local { nodes, vm })
            }
            None if vm => bail!("--vm needs --cluster local:N (it builds local qemu guests)"),
            None => Ok(ClusterSpec::File(ClusterFile::load(Path::new(text))?)),
        }
    }
}

/// A plan resolved: the record a run writes as test.yaml, and the values its names stand
/// for, each resolved once through the caller's [`Registry`]: nothing downstream looks a
/// name up again.
#[derive(Clone)]
pub struct Resolved {
    /// The record (test.yaml).
    pub plan: TestPlan,
    /// The database, configured with its options.
    pub db: Arc<dyn DbConfig>,
    /// The database definition file, for a database defined by one.
    pub definition: Option<PathBuf>,
    /// The workload.
    pub workload: Arc<dyn Workload>,
    /// Where the nodes come from.
    pub cluster: ClusterSpec,
    /// The fault kinds mixed.
    pub kinds: Vec<Kind>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("plan", &self.plan)
            .field("db", &self.db)
            .field("definition", &self.definition)
            .field("workload", &self.workload.name())
            .field("cluster", &self.cluster)
            .field("kinds", &self.kinds)
            .finish()
    }
}

impl Resolved {
    /// The same plan with another seed, and so the fault schedule drawn from it (the runs of
    /// a `--test-count` loop); an explicit schedule stays as it is.
    pub fn with_seed(&self, seed: u64) -> Resolved {
        let mut r = self.clone();
        r.plan.seed = seed;
        if !r.plan.explicit_schedule {
            r.plan.schedule =
                Schedule::generate(&r.kinds, r.plan.nemesis_interval, r.plan.time_limit, seed);
        }
        r
    }
}

/// Makes the plan of a run from the command line and `--config` or `--replay`. The seed is
/// the given one, else the stored run's, else `fallback_seed`.
pub fn make(args: &TestArgs, registry: &Registry, fallback_seed: u64) -> anyhow::Result<Resolved> {
    let (file, replay) = match (&args.config, &args.replay) {
        (Some(c), _) => (PlanFile::load(c)?, false),
        (None, Some(r)) => (PlanFile::load(&r.join("test.yaml"))?, true),
        (None, None) => (PlanFile::default(), false),
    };
    // Which source wins: the command line for --config, the stored run for --replay.
    macro_rules! get {
        ($cli:expr, $file:expr) => {
            if replay {
                pick($file, $cli)
            } else {
                pick($cli, $file)
            }
        };
    }
    let vm = if replay {
        file.vm.unwrap_or(args.vm)
    } else {
        args.vm || file.vm.unwrap_or(false)
    };
    let cluster = ClusterSpec::parse(&args.cluster, vm)?;
    let db = PlannedDb::make(args, &file, replay, registry)?;
    let workload_name =
        get!(args.workload.clone(), file.workload.clone()).unwrap_or_else(|| "cas-register".into());
    let workload = registry.workload(&workload_name)?;
    if !db.kind.workloads().contains(&workload.name()) {
        bail!(
            "--workload {workload_name}: {} serves {} (not {workload_name})",
            db.kind.name(),
            db.kind.workloads().join(", ")
        );
    }
    let nemesis_text = get!(args.nemesis.clone(), file.nemesis.clone()).unwrap_or_else(|| {
        if vm {
            format!("{DEFAULT_NEMESIS},clock")
        } else {
            DEFAULT_NEMESIS.to_string()
        }
    });
    let kinds = Kind::parse_list(&nemesis_text).map_err(|e| anyhow!("--nemesis: {e}"))?;
    let nemesis_interval = get!(
        args.nemesis_interval,
        duration_of(&file.nemesis_interval, "nemesis-interval")?
    )
    .unwrap_or(Duration::from_secs(5));
    let time_limit = get!(
        args.time_limit,
        duration_of(&file.time_limit, "time-limit")?
    )
    .unwrap_or(Duration::from_secs(60));
    let op_timeout = get!(
        args.op_timeout,
        duration_of(&file.op_timeout, "op-timeout")?
    )
    .unwrap_or(Duration::from_secs(2));
    let concurrency = get!(args.concurrency, file.concurrency).unwrap_or(10);
    let rate = get!(args.rate, file.rate).unwrap_or(100.0);
    let ops_per_key = get!(args.ops_per_key, file.ops_per_key).unwrap_or(200);
    let seed = get!(args.seed, file.seed).unwrap_or(fallback_seed);
    let name = get!(args.name.clone(), file.name.clone())
        .unwrap_or_else(|| format!("{}-{}", db.kind.name(), workload.name()));
    validate_numbers(concurrency, rate, ops_per_key, time_limit, op_timeout)?;
    if !kinds.is_empty() && nemesis_interval < Duration::from_millis(100) {
        bail!("--nemesis-interval {nemesis_interval:?}: expected at least 100ms");
    }
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        bail!("--name {name:?}: expected a plain file name (no '/', not starting with '.')");
    }
    let explicit_schedule = file.explicit_schedule.unwrap_or(false);
    let schedule = if explicit_schedule {
        explicit(file.schedule.as_ref(), &kinds)?
    } else {
        Schedule::generate(&kinds, nemesis_interval, time_limit, seed)
    };
    let plan = TestPlan {
        name,
        cluster: args.cluster.clone(),
        vm,
        cluster_file: match &cluster {
            ClusterSpec::File(f) => Some(f.clone()),
            ClusterSpec::Local { .. } => None,
        },
        db: db.name,
        db_options: db.config.options(),
        consistency: db.config.consistency(),
        workload: workload.name().to_string(),
        ops_per_key,
        nemesis: nemesis_names(&kinds),
        nemesis_interval,
        time_limit,
        concurrency,
        rate,
        op_timeout,
        seed,
        started: String::new(),
        faultline_version: env!("CARGO_PKG_VERSION").to_string(),
        schedule,
        explicit_schedule,
        campaign: args
            .campaign_cell
            .as_deref()
            .map(CampaignRef::parse)
            .transpose()?,
    };
    Ok(Resolved {
        plan,
        db: db.config,
        definition: db.kind.definition_file().map(Path::to_path_buf),
        workload,
        cluster,
        kinds,
    })
}

/// The database of a plan: as `--db` (or the file) named it, its kind and its configuration.
struct PlannedDb {
    /// The name test.yaml records: a built-in name, or a definition's absolute path.
    name: String,
    kind: Arc<dyn DatabaseKind>,
    config: Arc<dyn DbConfig>,
}

impl PlannedDb {
    /// The database named on the command line or in the file, configured with the options
    /// of both (the command line's win, but the stored run's do under `--replay`).
    fn make(
        args: &TestArgs,
        file: &PlanFile,
        replay: bool,
        registry: &Registry,
    ) -> anyhow::Result<PlannedDb> {
        let named = if replay {
            pick(file.db.clone(), args.db.clone())
        } else {
            pick(args.db.clone(), file.db.clone())
        };
        let mut name = named.unwrap_or_else(|| "etcd".to_string());
        if workloads::adapter::definition::is_definition_path(&name)
            && Path::new(&name).is_relative()
        {
            // A definition named in a test file is relative to that file; test.yaml records
            // it absolute, so that a replay finds it from anywhere.
            let base = match (&args.config, file.db.as_deref() == Some(name.as_str())) {
                (Some(c), true) => c.parent().map(Path::to_path_buf).unwrap_or_default(),
                _ => PathBuf::new(),
            };
            let p = base.join(&name);
            name = std::fs::canonicalize(&p).unwrap_or(p).display().to_string();
        }
        let kind = registry
            .resolve_database(&name)
            .map_err(|e| anyhow!("--db {name}: {e}"))?;
        let mut given = file.db_options();
        if replay {
            for (k, v) in args.db_options.given()? {
                given.entry(k).or_insert(v);
            }
        } else {
            given.extend(args.db_options.given()?);
        }
        let config = kind
            .configure(&given)
            .map_err(|e| anyhow!("--db {name}: {e}"))?;
        Ok(PlannedDb { name, kind, config })
    }
}

/// An explicit schedule (`explicit-schedule: true`), checked: its steps in time order and of
/// the plan's kinds, which it then records as its mix.
fn explicit(schedule: Option<&Schedule>, kinds: &[Kind]) -> anyhow::Result<Schedule> {
    let Some(schedule) = schedule else {
        bail!("explicit-schedule: true needs a `schedule` to use");
    };
    if let Some(w) = schedule.steps.windows(2).find(|w| w[1].at_ms < w[0].at_ms) {
        bail!(
            "schedule: the step at {} ms comes after the one at {} ms (steps must be in time order)",
            w[1].at_ms,
            w[0].at_ms
        );
    }
    for step in &schedule.steps {
        if let nemesis::schedule::Action::Start { fault } = &step.action {
            if !kinds.contains(&fault.kind()) {
                bail!(
                    "schedule: the step at {} ms starts a {} fault, which --nemesis {} does not include",
                    step.at_ms,
                    kind_name(fault.kind()),
                    nemesis_names(kinds)
                );
            }
        }
    }
    Ok(Schedule {
        kinds: kinds.to_vec(),
        ..schedule.clone()
    })
}

/// The fault kinds as `--nemesis` lists them (`none` for none).
fn nemesis_names(kinds: &[Kind]) -> String {
    if kinds.is_empty() {
        return "none".to_string();
    }
    kinds
        .iter()
        .map(|k| kind_name(*k))
        .collect::<Vec<_>>()
        .join(",")
}

/// Refuses numbers that no run can use, before anything is set up.
fn validate_numbers(
    concurrency: usize,
    rate: f64,
    ops_per_key: u64,
    time_limit: Duration,
    op_timeout: Duration,
) -> anyhow::Result<()> {
    if !(1..=10_000).contains(&concurrency) {
        bail!("--concurrency {concurrency}: expected 1 to 10000 workers");
    }
    if !rate.is_finite() || !(0.01..=1_000_000.0).contains(&rate) {
        bail!("--rate {rate}: expected 0.01 to 1000000 ops per second");
    }
    if ops_per_key == 0 {
        bail!("--ops-per-key 0: expected at least 1");
    }
    if time_limit < Duration::from_millis(100) || time_limit > Duration::from_secs(30 * 86_400) {
        bail!(
            "--time-limit {}: expected 100ms to 30 days",
            humantime::format_duration(time_limit)
        );
    }
    if op_timeout < Duration::from_millis(10) || op_timeout > Duration::from_secs(3600) {
        bail!(
            "--op-timeout {}: expected 10ms to 1h",
            humantime::format_duration(op_timeout)
        );
    }
    Ok(())
}

/// A fault kind's name in `--nemesis` lists.
fn kind_name(k: Kind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| format!("{k:?}").to_lowercase())
}

impl TestPlan {
    /// Writes test.yaml into `dir`, stamped with the current time. Strings that a YAML 1.1
    /// reader would read as something else (`off`, `0.1.0`, the start time) are quoted
    /// ([`crate::yaml_text`]).
    pub fn write(&mut self, dir: &Path) -> anyhow::Result<()> {
        self.started = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let text = crate::yaml_text::to_string(self)?;
        std::fs::write(dir.join("test.yaml"), text).context("writing test.yaml")
    }

    /// Reads a run's test.yaml.
    pub fn load(dir: &Path) -> anyhow::Result<TestPlan> {
        let path = dir.join("test.yaml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        serde_yaml_ng::from_str(&text).map_err(|e| yaml_error(&path, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> TestArgs {
        #[derive(Parser)]
        struct W {
            #[command(flatten)]
            t: TestArgs,
        }
        let mut v = vec!["t", "--cluster", "local:3"];
        v.extend_from_slice(extra);
        W::parse_from(v).t
    }

    fn plan(extra: &[&str]) -> anyhow::Result<TestPlan> {
        make(&args(extra), &Registry::builtin(), 7).map(|r| r.plan)
    }

    /// `--cluster` is parsed once, when the plan is made: `local:abc` used to pass planning
    /// and fail only when the cluster was provisioned.
    #[test]
    fn the_cluster_is_parsed_once_when_planning() {
        assert!(matches!(
            ClusterSpec::parse("local:3", true).unwrap(),
            ClusterSpec::Local { nodes: 3, vm: true }
        ));
        for bad in ["local:abc", "local:0", "local:"] {
            let e = ClusterSpec::parse(bad, false).unwrap_err().to_string();
            assert!(
                e.contains("expected local:N with N a number of nodes"),
                "{e}"
            );
        }
        let e = ClusterSpec::parse("cluster.yaml", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--vm needs --cluster local:N"), "{e}");
        assert!(ClusterSpec::parse("/nonexistent/cluster.yaml", false).is_err());
        let mut a = args(&[]);
        a.cluster = "local:x".into();
        let e = make(&a, &Registry::builtin(), 7).unwrap_err().to_string();
        assert!(e.contains("local:x"), "{e}");
    }

    #[test]
    fn defaults_are_resolved_and_recorded() {
        let p = plan(&[]).unwrap();
        assert_eq!(p.db, "etcd");
        assert_eq!(p.workload, "cas-register");
        assert_eq!(p.nemesis, "partition,kill,pause");
        assert_eq!(p.seed, 7);
        assert_eq!(
            p.db_options.get("read-mode").map(String::as_str),
            Some("linearizable")
        );
        assert_eq!(
            p.db_options.get("install").map(String::as_str),
            Some("auto")
        );
        assert_eq!(p.name, "etcd-cas-register");
        // A VM cluster's default faults include the clock, and test.yaml says so.
        let vm = plan(&["--vm"]).unwrap();
        assert!(vm.vm);
        assert_eq!(vm.nemesis, "partition,kill,pause,clock");
    }

    #[test]
    fn bad_values_are_refused_before_anything_runs() {
        for (flags, want) in [
            (&["--rate", "1e-300"][..], "--rate"),
            (&["--rate", "NaN"][..], "--rate"),
            (&["--concurrency", "0"][..], "--concurrency"),
            (&["--time-limit", "0s"][..], "--time-limit"),
            (&["--op-timeout", "1ns"][..], "--op-timeout"),
            (&["--nemesis", "partition,flood"][..], "flood"),
            (&["--db-opt", "read-mode=eventual"][..], "read-mode"),
            (
                &["--db-opt", "isolation=serializable"][..],
                "no option \"isolation\"",
            ),
            (&["--db-opt", "novalue"][..], "KEY=VALUE"),
            (
                &["--db-opt", "read-mode=serializable", "--read-mode", "linearizable"][..],
                "--db-opt read-mode=serializable and --read-mode linearizable contradict each other",
            ),
            (
                &["--db-opt", "install=upload", "--db-opt", "install=package"][..],
                "--db-opt install=upload and --db-opt install=package contradict",
            ),
            (
                &["--db-opt", "definition-sha256=abc"][..],
                "--db-opt definition-sha256=abc: definition-sha256 is faultline's own option",
            ),
            (&["--name", "../x"][..], "--name"),
        ] {
            let e = format!("{:#}", plan(flags).unwrap_err());
            assert!(e.contains(want), "{flags:?}: {e}");
        }
        // A definition's SHA-256 is faultline's record, not an option of a fresh run (which
        // would say the definition "changed since the run it replays").
        let def = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/etcd/etcd.yaml");
        let e = format!(
            "{:#}",
            plan(&["--db", def, "--db-opt", "definition-sha256=abc"]).unwrap_err()
        );
        assert!(
            e.contains("definition-sha256 is faultline's own option") && !e.contains("changed"),
            "{e}"
        );
        assert!(plan(&["--db", def]).is_ok());
    }

    #[test]
    fn isolation_and_consistency_are_database_options_and_the_model_is_recorded_typed() {
        let p = plan(&[
            "--db",
            "postgres",
            "--workload",
            "list-append",
            "--isolation",
            "repeatable-read",
        ])
        .unwrap();
        assert_eq!(p.db_options["isolation"], "repeatable-read");
        assert_eq!(p.consistency, Some(Consistency::SnapshotIsolation));
        let p = plan(&[
            "--db",
            "postgres",
            "--workload",
            "list-append",
            "--isolation",
            "repeatable-read",
            "--consistency",
            "serializable",
        ])
        .unwrap();
        assert_eq!(p.consistency, Some(Consistency::Serializable));
        // A shorthand and --db-opt that disagree are refused, naming both; agreeing, they
        // are one option.
        let postgres = ["--db", "postgres", "--workload", "list-append"];
        for (flags, first, second) in [
            (
                [
                    "--db-opt",
                    "isolation=serializable",
                    "--isolation",
                    "read-committed",
                ],
                "--db-opt isolation=serializable",
                "--isolation read-committed",
            ),
            (
                [
                    "--consistency",
                    "serializable",
                    "--db-opt",
                    "consistency=strict-serializable",
                ],
                "--db-opt consistency=strict-serializable",
                "--consistency serializable",
            ),
        ] {
            let e = format!(
                "{:#}",
                plan(&[&postgres[..], &flags[..]].concat()).unwrap_err()
            );
            assert!(
                e.contains(&format!(
                    "{first} and {second} contradict each other (both set the database option"
                )),
                "{flags:?}: {e}"
            );
        }
        let same = plan(
            &[
                &postgres[..],
                &[
                    "--db-opt",
                    "isolation=read-committed",
                    "--isolation",
                    "read-committed",
                ],
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(same.db_options["isolation"], "read-committed");
        let dir = tempfile::tempdir().unwrap();
        let mut written = p.clone();
        written.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("test.yaml")).unwrap();
        assert!(text.contains("\nconsistency: serializable\n"), "{text}");
        assert_eq!(TestPlan::load(dir.path()).unwrap(), written);
        let file = PlanFile::load(&dir.path().join("test.yaml")).unwrap();
        assert_eq!(file.consistency().unwrap(), Some(Consistency::Serializable));
        // etcd has neither, and says so; its plans record no consistency model.
        for flag in ["--isolation", "--consistency"] {
            let value = if flag == "--isolation" {
                "serializable"
            } else {
                "snapshot-isolation"
            };
            let e = format!("{:#}", plan(&[flag, value]).unwrap_err());
            assert!(e.contains("etcd has no option"), "{e}");
        }
        assert_eq!(plan(&[]).unwrap().consistency, None);
        // postgres serves transactions only.
        let e = format!("{:#}", plan(&["--db", "postgres"]).unwrap_err());
        assert!(e.contains("postgres serves list-append"), "{e}");
    }

    #[test]
    fn a_written_plan_reads_back_equal_and_replays_equal() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = plan(&["--read-mode", "serializable", "--seed", "42", "--vm"]).unwrap();
        p.write(dir.path()).unwrap();
        assert_eq!(TestPlan::load(dir.path()).unwrap(), p);
        // --replay: the stored options win over the command line's (but not --cluster).
        let replay_args = args(&[
            "--replay",
            dir.path().to_str().unwrap(),
            "--seed",
            "1",
            "--read-mode",
            "linearizable",
        ]);
        let mut again = make(&replay_args, &Registry::builtin(), 0).unwrap().plan;
        again.started = p.started.clone();
        assert_eq!(again, p);
    }

    /// test.yaml quotes what YAML 1.1 readers would read as booleans, numbers or timestamps
    /// (MariaDB's `snapshot-isolation: off`, the version, the start time), and still reads
    /// back equal, as a plan, as a test file and for a replay.
    #[test]
    fn test_yaml_quotes_what_yaml_1_1_misreads_and_replays_equal() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = plan(&[
            "--db",
            "mariadb",
            "--workload",
            "list-append",
            "--seed",
            "5",
        ])
        .unwrap();
        assert_eq!(p.db_options["snapshot-isolation"], "off");
        p.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("test.yaml")).unwrap();
        for line in [
            "\n  snapshot-isolation: \"off\"\n".to_string(),
            format!("\nfaultline_version: \"{}\"\n", env!("CARGO_PKG_VERSION")),
            format!("\nstarted: \"{}\"\n", p.started),
            "\nworkload: list-append\n".to_string(),
        ] {
            assert!(text.contains(&line), "{line:?} in\n{text}");
        }
        assert_eq!(TestPlan::load(dir.path()).unwrap(), p);
        let file = PlanFile::load(&dir.path().join("test.yaml")).unwrap();
        assert_eq!(file.db_options()["snapshot-isolation"], "off");
        let replay_args = args(&["--replay", dir.path().to_str().unwrap()]);
        let mut again = make(&replay_args, &Registry::builtin(), 0).unwrap().plan;
        again.started = p.started.clone();
        assert_eq!(again, p);
        // As a --config file, too.
        let config = dir.path().join("test.yaml");
        let mut from_config = plan(&["--config", config.to_str().unwrap()]).unwrap();
        from_config.started = p.started.clone();
        assert_eq!(from_config, p);
    }

    #[test]
    fn config_files_take_long_option_names_and_the_command_line_wins() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.yaml");
        std::fs::write(
            &f,
            "time-limit: 10s\nworkload: set\nread-mode: serializable\nseed: 3\nconcurrency: 4\n",
        )
        .unwrap();
        let p = plan(&["--config", f.to_str().unwrap(), "--concurrency", "6"]).unwrap();
        assert_eq!(p.time_limit, Duration::from_secs(10));
        assert_eq!(p.workload, "set");
        assert_eq!(p.seed, 3);
        assert_eq!(p.concurrency, 6);
        assert_eq!(p.db_options["read-mode"], "serializable");
        std::fs::write(&f, "time-limit: 10s\n  bogus: 1\n").unwrap();
        assert!(plan(&["--config", f.to_str().unwrap()]).is_err());
        std::fs::write(&f, "time-limt: 10s\n").unwrap();
        let e = format!(
            "{:#}",
            plan(&["--config", f.to_str().unwrap()]).unwrap_err()
        );
        assert!(e.contains("time-limt") && e.contains("line 1"), "{e}");
    }

    /// A plan with `explicit-schedule: true` runs its stored steps as they are, whatever the
    /// seed (which still drives the op stream), also through `--test-count`'s other seeds; a
    /// stored schedule without it is drawn again from the seed, as before.
    #[test]
    fn an_explicit_schedule_is_used_as_written_and_the_seed_drives_only_the_ops() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = plan(&["--nemesis", "partition,kill", "--seed", "9"]).unwrap();
        assert!(p.schedule.steps.len() >= 6, "{:?}", p.schedule);
        let kept: Vec<_> = p.schedule.steps[2..4].to_vec();
        p.schedule.steps = kept.clone();
        p.write(dir.path()).unwrap();
        let path = dir.path().join("test.yaml");
        let config = path.to_str().unwrap();
        // Without the flag the schedule is the seed's again.
        let drawn = plan(&["--config", config]).unwrap();
        assert!(!drawn.explicit_schedule);
        assert_ne!(drawn.schedule.steps, kept);
        // With it, as written, under another seed too.
        p.explicit_schedule = true;
        p.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\nexplicit_schedule: true\n"), "{text}");
        let args = args(&["--config", config, "--seed", "123"]);
        let resolved = make(&args, &Registry::builtin(), 0).unwrap();
        assert_eq!(resolved.plan.seed, 123);
        assert!(resolved.plan.explicit_schedule);
        assert_eq!(resolved.plan.schedule.steps, kept);
        assert_eq!(resolved.with_seed(124).plan.schedule.steps, kept);
        // A replay of such a run keeps it too.
        let replay = make(
            &super::tests::args(&["--replay", dir.path().to_str().unwrap()]),
            &Registry::builtin(),
            0,
        )
        .unwrap();
        assert_eq!(replay.plan.schedule.steps, kept);
        // A step of a kind the plan does not mix, or out of order, is refused.
        let e = format!(
            "{:#}",
            plan(&["--config", config, "--nemesis", "pause"]).unwrap_err()
        );
        assert!(e.contains("which --nemesis pause does not include"), "{e}");
        p.schedule.steps.reverse();
        p.write(dir.path()).unwrap();
        let e = format!("{:#}", plan(&["--config", config]).unwrap_err());
        assert!(e.contains("steps must be in time order"), "{e}");
        std::fs::write(&path, "explicit-schedule: true\n").unwrap();
        let e = format!("{:#}", plan(&["--config", config]).unwrap_err());
        assert!(e.contains("needs a `schedule`"), "{e}");
    }
}
