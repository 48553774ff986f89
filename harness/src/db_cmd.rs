//! `faultline db install|start|stop|status|wipe`: a database by hand, outside a test, the way
//! Jepsen users set one up at the REPL and then apply and heal faults with `faultline
//! nemesis` and `faultline heal`.
//!
//! Every change (install, start, stop, wipe) holds the cluster's lease
//! ([`crate::session::lease`]) and is journaled in the cluster's database journal
//! ([`crate::session::journal`]); the options of the last install or start are what later
//! `db` commands, `nemesis kill|pause --db` and `heal` open the database with when none are
//! given, so a database started with other options is restarted with them.

use crate::cli::{DbArgs, DbCommand};
use crate::exit::{bad_input, internal, Exit, Failure};
use crate::session::journal::{self, DbAction, DbRecord};
use crate::session::{lease, lifecycle, open};
use clusters::{Cluster, ClusterFile};
use workloads::{DbOptions, Registry};

/// Runs `faultline db ...` with the databases of `registry`.
pub fn run(cmd: &DbCommand, registry: &Registry) -> Result<Exit, Failure> {
    match cmd {
        DbCommand::Install(args) => change(args, DbAction::Install, false, registry),
        DbCommand::Start(args) => change(&args.db, DbAction::Start, args.lazyfs, registry),
        DbCommand::Stop(args) => change(args, DbAction::Stop, false, registry),
        DbCommand::Wipe(args) => change(args, DbAction::Wipe, false, registry),
        DbCommand::Status(args) => status(args, registry),
    }
}

/// Makes one change, under the cluster's lease (no change under a running test), journaled
/// before and after; exit 1 when a node failed. With `lazyfs` (a start), the database runs on
/// faultline's lazy filesystem.
fn change(
    args: &DbArgs,
    action: DbAction,
    lazyfs: bool,
    registry: &Registry,
) -> Result<Exit, Failure> {
    let file = ClusterFile::load(&args.cluster).map_err(bad_input)?;
    let given = given_options(args)?;
    let _lease = lease::take(&file)?;
    let cluster = Cluster::new(file.clone(), 2);
    let (db, options) = open::open(registry, &args.db, &cluster, &given)?;
    let path = journal::path(&file);
    let begin = DbRecord::begin(action, &journal::source_db(&args.db), &options);
    journal::append(&path, &begin)
        .map_err(|e| internal(anyhow::anyhow!("{}: {e}", path.display())))?;
    let lazyfs = if lazyfs {
        let source = nemesis::process::DbSource {
            db: journal::source_db(&args.db),
            options: options.clone(),
        };
        let l = lifecycle::Lazyfs::for_db(&cluster, db.as_ref(), source, 0)
            .map_err(|e| internal(anyhow::anyhow!("{e}")))?;
        Some(l.ok_or_else(|| {
            bad_input(anyhow::anyhow!(
                "{} does not say where it keeps its data, so it cannot run on the lazy filesystem (--lazyfs)",
                db.name()
            ))
        })?)
    } else {
        None
    };
    let results = lifecycle::apply(&cluster, db.as_ref(), action, lazyfs.as_ref());
    let done = begin.done(
        results
            .iter()
            .filter_map(|(n, r)| r.as_ref().err().map(|e| (n.clone(), e.clone())))
            .collect(),
    );
    if let Err(e) = journal::append(&path, &done) {
        eprintln!("WARNING: {}: {e}", path.display());
    }
    for (n, r) in &results {
        match r {
            Ok(what) => println!("{n}: {} {what}", args.db),
            Err(e) => println!("{n}: {} {} FAILED: {e}", args.db, action.as_str()),
        }
    }
    Ok(if done.errors.is_empty() {
        Exit::Valid
    } else {
        Exit::Invalid
    })
}

/// Prints, per node, whether the database runs (its PIDs) and answers; exit 0 when it does
/// on every node. Takes no lease: it changes nothing.
fn status(args: &DbArgs, registry: &Registry) -> Result<Exit, Failure> {
    let file = ClusterFile::load(&args.cluster).map_err(bad_input)?;
    let given = given_options(args)?;
    let cluster = Cluster::new(file, 2);
    let (db, _) = open::open(registry, &args.db, &cluster, &given)?;
    let mut all = true;
    for (node, ok, line) in lifecycle::status(&cluster, db.as_ref()) {
        all &= ok;
        println!("{node}: {} {line}", db.name());
    }
    Ok(if all { Exit::Valid } else { Exit::Invalid })
}

fn given_options(args: &DbArgs) -> Result<DbOptions, Failure> {
    args.db_options.given().map_err(bad_input)
}
