//! `faultline campaign merge STORE...`: copies the runs and campaign files of several stores
//! (a sharded campaign's, each from its machine) into one (`--store`), rebuilds its index
//! from the run directories, and combines each campaign's shards into one cells.json,
//! junit.xml and summary.md in `campaigns/ID/`.

use super::report::{self, CellResult};
use crate::cli::MergeArgs;
use crate::exit::{bad_input, internal, Exit, Failure};
use crate::index::{self, Index};
use anyhow::{anyhow, Context};
use std::path::Path;

/// Runs `faultline campaign merge`.
pub fn run(args: &MergeArgs) -> Result<Exit, Failure> {
    let dest = &args.store;
    std::fs::create_dir_all(dest).map_err(internal)?;
    let dest_real = std::fs::canonicalize(dest).map_err(internal)?;
    let mut copied = 0;
    for src in &args.stores {
        let real = std::fs::canonicalize(src)
            .map_err(|e| bad_input(anyhow!("store {}: {e}", src.display())))?;
        if real == dest_real {
            return Err(bad_input(anyhow!(
                "{}: is the store merged into (--store)",
                src.display()
            )));
        }
        for rel in index::run_dirs(src).map_err(bad_input)? {
            if copy_run(src, dest, &rel).map_err(internal)? {
                copied += 1;
            }
        }
        let campaigns = src.join("campaigns");
        if campaigns.is_dir() {
            copy_tree(&campaigns, &dest.join("campaigns")).map_err(internal)?;
        }
    }
    let (runs, skipped) = Index::open(dest)
        .and_then(|mut i| i.rebuild())
        .map_err(internal)?;
    for s in &skipped {
        eprintln!("not indexed: {s}");
    }
    combine_shards(&dest.join("campaigns")).map_err(internal)?;
    eprintln!(
        "{copied} runs copied; {} now holds {runs} runs",
        dest.display()
    );
    Ok(Exit::Valid)
}

/// Copies the run `rel` of `src` into `dest`, unless `dest` has it already (the same
/// test.yaml); a different run of the same name gets the next free suffix. Whether it
/// copied.
fn copy_run(src: &Path, dest: &Path, rel: &str) -> anyhow::Result<bool> {
    let from = src.join(rel);
    let plan = std::fs::read(from.join("test.yaml"))?;
    let mut to = dest.join(rel);
    let mut n = 2;
    while to.exists() {
        if std::fs::read(to.join("test.yaml")).ok().as_deref() == Some(plan.as_slice()) {
            return Ok(false);
        }
        to = dest.join(format!("{rel}-{n}"));
        n += 1;
    }
    copy_tree(&from, &to)?;
    Ok(true)
}

/// Copies a directory tree, keeping files' modification times (a run's duration is read
/// from them) and symbolic links as links; files that exist already are kept.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if dst.symlink_metadata().is_ok() {
            continue;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
            let modified = entry.metadata()?.modified()?;
            std::fs::File::options()
                .write(true)
                .open(&dst)?
                .set_modified(modified)?;
        }
    }
    Ok(())
}

/// For each campaign whose directory holds shards (`shard-I-of-N/cells.json`), writes the
/// campaign's combined cells.json, junit.xml and summary.md beside them.
fn combine_shards(campaigns: &Path) -> anyhow::Result<()> {
    let Ok(list) = std::fs::read_dir(campaigns) else {
        return Ok(());
    };
    for campaign in list.flatten() {
        let mut cells: Vec<CellResult> = Vec::new();
        let mut shards = 0;
        for sub in std::fs::read_dir(campaign.path())?.flatten() {
            let name = sub.file_name().to_string_lossy().into_owned();
            if name.starts_with("shard-") && sub.path().join("cells.json").is_file() {
                cells.extend(report::read(&sub.path())?);
                shards += 1;
            }
        }
        if shards == 0 {
            continue;
        }
        cells.sort_by(|a, b| a.id.cmp(&b.id));
        cells.dedup_by(|a, b| a.id == b.id);
        let id = campaign.file_name().to_string_lossy().into_owned();
        report::write(&campaign.path(), &id, &cells)?;
        eprintln!("campaign {id}: {} cells from {shards} shards", cells.len());
    }
    Ok(())
}
