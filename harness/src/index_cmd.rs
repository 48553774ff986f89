//! `faultline index rebuild`: the store's index made again from its run directories.

use crate::cli::IndexCommand;
use crate::exit::{bad_input, internal, Exit, Failure};
use anyhow::anyhow;

/// Runs `faultline index ...`.
pub fn run(cmd: &IndexCommand) -> Result<Exit, Failure> {
    match cmd {
        IndexCommand::Rebuild(args) => {
            if !args.store.is_dir() {
                return Err(bad_input(anyhow!(
                    "store {}: not a directory",
                    args.store.display()
                )));
            }
            let (runs, skipped) = crate::index::Index::open(&args.store)
                .and_then(|mut i| i.rebuild())
                .map_err(internal)?;
            for s in &skipped {
                eprintln!("not indexed: {s}");
            }
            println!(
                "{}: {runs} runs indexed",
                args.store.join(crate::index::FILE).display()
            );
            Ok(Exit::Valid)
        }
    }
}
