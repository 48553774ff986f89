//! The store layout of DESIGN.md: `STORE/<test-name>/<YYYYmmddTHHMMSS>/`, with `STORE/latest`
//! pointing at the newest run, and the run's fully resolved options in test.yaml.

use crate::cli::TestArgs;
use anyhow::{anyhow, Context};
use clusters::ClusterFile;
use nemesis::schedule::Schedule;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Creates the directory of a new run of `test_name` and points `STORE/latest` at it.
pub fn create_run(store: &Path, test_name: &str) -> anyhow::Result<PathBuf> {
    if test_name.is_empty() || test_name.contains('/') || test_name.starts_with('.') {
        return Err(anyhow!(
            "test name {test_name:?}: expected a plain file name"
        ));
    }
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    // 2026-11-25T15:40:00Z -> 20261125T154000
    let stamp: String = stamp
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let stamp = stamp.trim_end_matches('Z').to_string();
    let mut dir = store.join(test_name).join(&stamp);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = store.join(test_name).join(format!("{stamp}-{n}"));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let latest = store.join("latest");
    let target = dir.strip_prefix(store).unwrap_or(&dir).to_path_buf();
    let _ = std::fs::remove_file(&latest);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, &latest)
        .with_context(|| format!("linking {}", latest.display()))?;
    Ok(dir)
}

#[derive(Serialize)]
struct TestYaml<'a> {
    name: String,
    cluster: &'a ClusterFile,
    db: &'a str,
    db_install: &'a str,
    workload: &'a str,
    nemesis: &'a str,
    nemesis_interval: String,
    time_limit: String,
    concurrency: usize,
    rate: f64,
    ops_per_key: u64,
    op_timeout: String,
    read_mode: &'a str,
    seed: u64,
    faultline_version: &'a str,
    schedule: &'a Schedule,
}

/// Writes test.yaml: every option as resolved (the seed included) and the fault schedule.
pub fn write_test_yaml(
    dir: &Path,
    args: &TestArgs,
    seed: u64,
    cluster: &ClusterFile,
    schedule: &Schedule,
) -> anyhow::Result<()> {
    let t = TestYaml {
        name: args
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", args.db, args.workload)),
        cluster,
        db: &args.db,
        db_install: &args.db_install,
        workload: &args.workload,
        nemesis: &args.nemesis,
        nemesis_interval: humantime::format_duration(args.nemesis_interval).to_string(),
        time_limit: humantime::format_duration(args.time_limit).to_string(),
        concurrency: args.concurrency,
        rate: args.rate,
        ops_per_key: args.ops_per_key,
        op_timeout: humantime::format_duration(args.op_timeout).to_string(),
        read_mode: &args.read_mode,
        seed,
        faultline_version: env!("CARGO_PKG_VERSION"),
        schedule,
    };
    let text = serde_yaml_ng::to_string(&t)?;
    std::fs::write(dir.join("test.yaml"), text).context("writing test.yaml")
}
