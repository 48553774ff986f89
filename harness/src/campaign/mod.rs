//! `faultline campaign FILE.yaml`: a matrix of ordinary test runs (see [`file`] for the
//! file, [`cells`] for the matrix). Each cell is a `faultline test` run made from a command
//! line ([`cell_argv`]) through [`crate::test_cmd::run_with`], recorded in the store's index
//! like any run, with its campaign and cell in its test.yaml. The campaign's own files
//! (junit.xml, summary.md, cells.json, the campaign file) go to `STORE/campaigns/ID/`
//! (`.../shard-I-of-N/` for a shard).

pub mod cells;
pub mod compare;
pub mod file;
pub mod merge;
pub mod report;
pub mod run;
pub mod shard;

use crate::cli::{CampaignArgs, CampaignCommand};
use crate::exit::{bad_input, internal, Exit, Failure};
use anyhow::{anyhow, bail};
use cells::Cell;
use report::{CellResult, Status};
use shard::Shard;
use std::path::{Path, PathBuf};
use workloads::Registry;

/// Runs `faultline campaign`.
pub fn run(args: &CampaignArgs, registry: &Registry) -> Result<Exit, Failure> {
    if let Some(CampaignCommand::Merge(m)) = &args.command {
        return merge::run(m);
    }
    let path = args
        .file
        .as_ref()
        .ok_or_else(|| bad_input(anyhow!("expected a campaign file (FILE.yaml)")))?;
    let loaded = file::load(path).map_err(bad_input)?;
    let shard = args
        .shard
        .as_deref()
        .map(|s| Shard::parse(s, |k| std::env::var(k).ok()))
        .transpose()
        .map_err(bad_input)?;
    let cells = select(cells::expand(&loaded.file), shard);
    if args.dry_run {
        for c in &cells {
            println!("{}", c.id());
        }
        eprintln!("{} cells", cells.len());
        return Ok(Exit::Valid);
    }
    let id = match &args.id {
        Some(i) => check_id(i).map(|()| i.clone()).map_err(bad_input)?,
        None => format!("{}-{}", loaded.name(), crate::store::stamp()),
    };
    let cluster = args
        .cluster
        .clone()
        .or_else(|| loaded.file.cluster.clone())
        .unwrap_or_else(|| "local:3".to_string());
    let runs = cells
        .iter()
        .map(|c| planned(&loaded, c, &id, &cluster, &args.store, registry))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = campaign_dir(&args.store, &id, shard).map_err(internal)?;
    std::fs::write(dir.join("campaign.yaml"), &loaded.text).map_err(internal)?;
    eprintln!(
        "campaign {id}: {} cells on {cluster}; store {}",
        runs.len(),
        dir.display()
    );
    let results = run::all(&runs, &args.store, &id, &cluster, args.parallel, registry)?;
    report::write(&dir, &id, &results).map_err(internal)?;
    let exit = report::print(&results, &dir);
    match &args.compare {
        Some(previous) => compare::against(previous, &results, exit),
        None => Ok(exit),
    }
}

/// A cell with its test run's command line and parsed options.
pub struct Planned {
    /// The cell.
    pub cell: Cell,
    /// `faultline test` arguments (without the program's name).
    pub argv: Vec<String>,
    /// The same, parsed.
    pub args: crate::cli::TestArgs,
}

/// The cells a shard runs (all without one).
fn select(cells: Vec<Cell>, shard: Option<Shard>) -> Vec<Cell> {
    let Some(shard) = shard else { return cells };
    let ids: Vec<String> = cells.iter().map(Cell::id).collect();
    shard
        .select(&ids)
        .into_iter()
        .map(|i| cells[i].clone())
        .collect()
}

/// The cell's run, checked now (its plan is made, so that a bad database, workload or
/// option stops the campaign before anything runs).
fn planned(
    loaded: &file::Loaded,
    cell: &Cell,
    id: &str,
    cluster: &str,
    store: &Path,
    registry: &Registry,
) -> Result<Planned, Failure> {
    let argv = cell_argv(loaded, cell, id, cluster, store).map_err(bad_input)?;
    let full = std::iter::once("faultline".to_string()).chain(argv.iter().cloned());
    let parsed = match <crate::cli::Cli as clap::Parser>::try_parse_from(full) {
        Ok(crate::cli::Cli {
            command: crate::cli::Command::Test(t),
            ..
        }) => *t,
        Ok(_) => return Err(internal(anyhow!("cell {}: not a test", cell.id()))),
        Err(e) => return Err(bad_input(anyhow!("cell {}: {e}", cell.id()))),
    };
    crate::plan::make(&parsed, registry, 0)
        .map_err(|e| bad_input(anyhow!("cell {}: {e:#}", cell.id())))?;
    Ok(Planned {
        cell: cell.clone(),
        argv,
        args: parsed,
    })
}

/// The `faultline test` command line of a cell.
pub fn cell_argv(
    loaded: &file::Loaded,
    cell: &Cell,
    id: &str,
    cluster: &str,
    store: &Path,
) -> anyhow::Result<Vec<String>> {
    let f = &loaded.file;
    let mut v: Vec<String> = vec!["test".into()];
    let mut add = |k: &str, val: String| {
        v.push(format!("--{k}"));
        v.push(val);
    };
    add("cluster", cluster.to_string());
    add("db", loaded.db_path(&cell.db));
    add("workload", cell.workload.clone());
    add("nemesis", cell.nemesis.clone());
    add("time-limit", f.time_limit.text());
    add("seed", cell.seed.to_string());
    add("store", store.display().to_string());
    add("campaign-cell", format!("{id}::{}", cell.id()));
    for (k, val) in &cell.options {
        add("db-opt", format!("{k}={val}"));
    }
    let t = &f.test;
    if let Some(c) = t.concurrency {
        add("concurrency", c.to_string());
    }
    if let Some(r) = t.rate {
        add("rate", r.to_string());
    }
    if let Some(i) = &t.nemesis_interval {
        add("nemesis-interval", i.text());
    }
    if let Some(o) = &t.op_timeout {
        add("op-timeout", o.text());
    }
    if let Some(o) = t.ops_per_key {
        add("ops-per-key", o.to_string());
    }
    Ok(v)
}

/// Refuses an id or name that is not a plain file name of letters, digits, `.`, `-`, `_`.
pub fn check_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !ok {
        bail!("{id:?}: expected letters, digits, '.', '-' and '_' (not starting with '.')");
    }
    Ok(())
}

/// Makes `STORE/campaigns/ID/` (and the shard's directory in it).
fn campaign_dir(store: &Path, id: &str, shard: Option<Shard>) -> anyhow::Result<PathBuf> {
    let mut dir = store.join("campaigns").join(id);
    if let Some(s) = shard {
        dir = dir.join(s.dir_name());
    }
    std::fs::create_dir_all(&dir).map_err(|e| anyhow!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The worst exit of a campaign's cells: 1 if any is invalid, else 2 if any is unknown,
/// weak, failed or did not run, else 0.
pub fn exit_of(results: &[CellResult]) -> Exit {
    if results.iter().any(|r| r.status == Status::Invalid) {
        Exit::Invalid
    } else if results.iter().any(|r| r.status != Status::Valid) {
        Exit::Unknown
    } else {
        Exit::Valid
    }
}
