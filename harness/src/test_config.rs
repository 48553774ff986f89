//! Options of `faultline test` from a YAML test file (`--config`) or a stored run's test.yaml
//! (`--replay`). Keys are the long option names (`time-limit` or `time_limit`); values as on
//! the command line. Options given on the command line win over a config file; a replay takes
//! everything but the cluster, the store and the loop options from the run.

use crate::cli::{parse_duration, TestArgs};
use anyhow::{anyhow, bail, Context};
use clap::parser::ValueSource;
use clap::ArgMatches;
use serde_yaml_ng::Value;
use std::path::Path;

/// The keys a test file may hold (as `TestArgs` field names).
const KEYS: &[&str] = &[
    "db",
    "db_install",
    "db_binary",
    "workload",
    "nemesis",
    "nemesis_interval",
    "time_limit",
    "concurrency",
    "rate",
    "ops_per_key",
    "op_timeout",
    "read_mode",
    "seed",
    "name",
];

/// Keys of a stored test.yaml that are not options.
const RUN_ONLY: &[&str] = &["cluster", "schedule", "faultline_version"];

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Fills `args` from `--config` or `--replay`; `m` tells which options were given explicitly.
pub fn apply(args: &mut TestArgs, m: &ArgMatches) -> anyhow::Result<()> {
    let (path, replay) = match (&args.config, &args.replay) {
        (Some(c), _) => (c.clone(), false),
        (None, Some(r)) => (r.join("test.yaml"), true),
        (None, None) => return Ok(()),
    };
    let yaml = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let doc: Value =
        serde_yaml_ng::from_str(&yaml).with_context(|| format!("{}", path.display()))?;
    let Value::Mapping(map) = doc else {
        bail!(
            "{}: expected a mapping of option names to values",
            path.display()
        );
    };
    for (k, v) in &map {
        let key = k
            .as_str()
            .ok_or_else(|| anyhow!("{}: keys must be option names", path.display()))?
            .replace('-', "_");
        if RUN_ONLY.contains(&key.as_str()) {
            continue;
        }
        if !KEYS.contains(&key.as_str()) {
            bail!(
                "{}: unknown option {key:?} (expected one of: {})",
                path.display(),
                KEYS.join(", ")
            );
        }
        let explicit = m.value_source(&key) == Some(ValueSource::CommandLine);
        if explicit && !replay {
            continue;
        }
        let val = text(v).ok_or_else(|| anyhow!("{}: {key}: expected a value", path.display()))?;
        set(args, &key, &val).map_err(|e| anyhow!("{}: {key}: {e}", path.display()))?;
    }
    if replay {
        eprintln!(
            "replaying {} (seed {})",
            path.parent().unwrap_or(Path::new(".")).display(),
            args.seed.map_or("none".into(), |s| s.to_string())
        );
    }
    Ok(())
}

fn set(a: &mut TestArgs, key: &str, v: &str) -> anyhow::Result<()> {
    let num = |v: &str| -> anyhow::Result<u64> {
        v.parse().map_err(|_| anyhow!("{v:?}: expected a number"))
    };
    let dur = |v: &str| parse_duration(v).map_err(|e| anyhow!(e));
    match key {
        "db" => a.db = v.into(),
        "db_install" => a.db_install = v.into(),
        "db_binary" => a.db_binary = Some(v.into()),
        "workload" => a.workload = v.into(),
        "nemesis" => a.nemesis = v.into(),
        "nemesis_interval" => a.nemesis_interval = dur(v)?,
        "time_limit" => a.time_limit = dur(v)?,
        "concurrency" => a.concurrency = num(v)? as usize,
        "rate" => a.rate = v.parse().map_err(|_| anyhow!("{v:?}: expected a number"))?,
        "ops_per_key" => a.ops_per_key = num(v)?,
        "op_timeout" => a.op_timeout = dur(v)?,
        "read_mode" => {
            if v != "linearizable" && v != "serializable" {
                bail!("{v:?}: expected linearizable or serializable");
            }
            a.read_mode = v.into()
        }
        "seed" => a.seed = Some(num(v)?),
        "name" => a.name = Some(v.into()),
        _ => unreachable!("checked against KEYS"),
    }
    Ok(())
}
