//! `faultline nemesis ...` (one fault now, journaled) and `faultline heal`.

use crate::cli::{ClockCommand, FaultCommand, HealArgs, NemesisArgs, PartitionArgs};
use crate::exit::{bad_input, internal, nemesis_failure, Exit, Failure};
use crate::session::{hooks, lease};
use clusters::{Cluster, ClusterFile};
use nemesis::clock::{ClockBumpSpec, ClockStrobeSpec};
use nemesis::corrupt::CorruptSpec;
use nemesis::disk::{DiskErrorSpec, DiskFullSpec, DiskSlowSpec};
use nemesis::fault::PartitionSpec;
use nemesis::lazyfs::FileSet;
use nemesis::lease::Lease;
use nemesis::netem::NetemFaultSpec;
use nemesis::partition::PartitionFaultSpec;
use nemesis::power::PowerSpec;
use nemesis::process::{KillSpec, PauseSpec};
use nemesis::{
    FaultSpec, Grudge, Journal, Kind, Nemesis, NemesisError, NetemSpec, Targets, Topology, Undo,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workloads::Registry;

/// The cluster's journal (or the one named), refused when it belongs to another cluster.
fn open_journal(explicit: Option<&PathBuf>, file: &ClusterFile) -> Result<Journal, Failure> {
    let path = explicit
        .cloned()
        .unwrap_or_else(|| Journal::default_path(&file.name));
    Journal::open(&path)
        .and_then(|j| j.bind(file))
        .map_err(nemesis_failure)
}

fn load(path: &Path) -> Result<(ClusterFile, Cluster), Failure> {
    let file = ClusterFile::load(path).map_err(bad_input)?;
    let cluster = Cluster::new(file.clone(), 2);
    Ok((file, cluster))
}

/// The nemesis, with the process hooks of databases `dbs` (found in `registry`).
fn build<'c>(
    cluster: &'c Cluster,
    journal: Journal,
    dbs: &[&str],
    registry: &Registry,
) -> Result<Nemesis<'c>, Failure> {
    let mut nem = Nemesis::new(cluster, journal);
    for db in dbs {
        nem = nem.with_hooks(hooks::for_database(registry, db, cluster)?);
    }
    Ok(nem)
}

fn partition_spec(args: &PartitionArgs, nodes: &[String]) -> Result<PartitionSpec, Failure> {
    if let Some(t) = &args.topology {
        return Topology::parse(t)
            .map(PartitionSpec::Topology)
            .map_err(bad_input);
    }
    if let Some(n) = &args.isolate {
        return Ok(PartitionSpec::Topology(Topology::Isolate(n.clone())));
    }
    if let Some(c) = &args.components {
        let comps: Vec<Vec<String>> = c
            .split('|')
            .map(|part| {
                part.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .collect();
        if comps.len() < 2 || comps.iter().any(Vec::is_empty) {
            return Err(bad_input(anyhow::anyhow!(
                "--components {c:?}: expected two or more non-empty groups separated by |, e.g. 'n1,n2|n3,n4,n5'"
            )));
        }
        let g = Grudge::complete(&comps);
        g.validate(nodes).map_err(bad_input)?;
        return Ok(PartitionSpec::Grudge(g));
    }
    if let Some(j) = &args.grudge {
        let g: Grudge = serde_json::from_str(j).map_err(|e| {
            bad_input(anyhow::anyhow!(
                "--grudge: {e}; expected a JSON object mapping each node to the nodes it drops, e.g. {{\"n1\":[\"n2\",\"n3\"]}}"
            ))
        })?;
        return Ok(PartitionSpec::Grudge(g));
    }
    Err(bad_input(anyhow::anyhow!(
        "partition needs one of --topology, --isolate, --components, --grudge"
    )))
}

/// Runs `faultline nemesis ...`, with the databases of `registry` for kill and pause.
pub fn run(args: &NemesisArgs, registry: &Registry) -> Result<Exit, Failure> {
    let (file, cluster) = load(&args.cluster)?;
    let journal = open_journal(args.journal.as_ref(), &file)?;
    if let FaultCommand::Status = args.fault {
        return status(&journal, &file);
    }
    // One controller at a time: no fault while a test (or another fault) holds the cluster.
    let _lease = lease::take(&file)?;
    let dbs: Vec<&str> = match &args.fault {
        FaultCommand::Kill(p) | FaultCommand::Pause(p) => vec![p.db.as_str()],
        FaultCommand::Power(p) => vec![p.db.as_str()],
        FaultCommand::DiskFull(t) => vec![t.db.as_str()],
        FaultCommand::DiskError(e) => vec![e.target.db.as_str()],
        FaultCommand::DiskSlow(s) => vec![s.target.db.as_str()],
        FaultCommand::Corrupt(c) => vec![c.db.as_str()],
        _ => Vec::new(),
    };
    let nem = build(&cluster, journal, &dbs, registry)?;
    if let FaultCommand::Clock(ClockCommand::Reset { nodes }) = &args.fault {
        return clock_reset(&nem, nodes);
    }
    let spec = fault_spec(&args.fault, &file.nodes)?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let fault = nem
        .resolve(&spec, &mut nemesis::seeded(seed))
        .map_err(nemesis_failure)?;
    let start = Instant::now();
    let applied = match nem.apply(fault.clone()) {
        Ok(a) => a,
        Err(NemesisError::Nodes(errs)) => {
            eprintln!("FAILED to apply {fault} on some nodes (what was applied is undone):");
            for (n, e) in errs {
                eprintln!("  {n}: {e}");
            }
            return Ok(Exit::Invalid);
        }
        Err(e) => return Err(nemesis_failure(e)),
    };
    eprintln!(
        "applied #{} {} in {} ms (seed {seed}; journal {})",
        applied.id,
        applied.fault,
        start.elapsed().as_millis(),
        nem.journal().path().display()
    );
    match args.hold {
        None => {
            eprintln!(
                "it stays applied until: faultline heal --cluster {}",
                args.cluster.display()
            );
            Ok(Exit::Valid)
        }
        Some(hold) => hold_then_heal(&nem, &applied, hold, &args.cluster),
    }
}

/// The fault a command asks for, as a spec the nemesis resolves (`nodes`: the cluster's).
fn fault_spec(fault: &FaultCommand, nodes: &[String]) -> Result<FaultSpec, Failure> {
    Ok(match fault {
        FaultCommand::Partition(p) => PartitionFaultSpec {
            partition: partition_spec(p, nodes)?,
        }
        .into(),
        FaultCommand::Netem(n) => NetemFaultSpec {
            targets: Targets::parse(&n.nodes),
            to: n.to.as_deref().map(Targets::parse),
            spec: NetemSpec {
                delay: n.delay,
                jitter: n.jitter,
                loss: n.loss,
                duplicate: n.duplicate,
                reorder: n.reorder,
                corrupt: n.corrupt,
                rate_kbit: n.rate,
            },
        }
        .into(),
        FaultCommand::Kill(p) => KillSpec {
            targets: Targets::parse(&p.nodes),
        }
        .into(),
        FaultCommand::Pause(p) => PauseSpec {
            targets: Targets::parse(&p.nodes),
        }
        .into(),
        FaultCommand::Power(p) => PowerSpec {
            targets: Targets::parse(&p.nodes),
            mode: p.mode,
        }
        .into(),
        FaultCommand::DiskFull(t) => DiskFullSpec {
            targets: Targets::parse(&t.nodes),
        }
        .into(),
        FaultCommand::DiskError(e) => DiskErrorSpec {
            targets: Targets::parse(&e.target.nodes),
            probability: e.probability,
            reads: e.on != "writes",
            writes: e.on != "reads",
            files: match (&e.files, e.share) {
                (Some(glob), _) => FileSet::Pattern(glob.clone()),
                (None, Some(share)) => FileSet::Random(share),
                (None, None) => FileSet::All,
            },
        }
        .into(),
        FaultCommand::DiskSlow(s) => DiskSlowSpec {
            targets: Targets::parse(&s.target.nodes),
            delay_ms: u64::try_from(s.delay.as_millis()).unwrap_or(u64::MAX),
            fsync: s.on != "writes",
            writes: s.on != "fsync",
        }
        .into(),
        FaultCommand::Corrupt(c) => CorruptSpec {
            targets: Targets::parse(&c.nodes),
            mode: c.mode,
            files: c.files.clone(),
        }
        .into(),
        FaultCommand::Clock(ClockCommand::Bump { nodes, by }) => ClockBumpSpec {
            targets: Targets::parse(nodes),
            by_ms: *by,
        }
        .into(),
        FaultCommand::Clock(ClockCommand::Strobe {
            nodes,
            delta,
            period,
            duration,
        }) => ClockStrobeSpec {
            targets: Targets::parse(nodes),
            delta_ms: i64::try_from(delta.as_millis()).unwrap_or(i64::MAX),
            period_ms: u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        }
        .into(),
        FaultCommand::Clock(ClockCommand::Reset { .. }) | FaultCommand::Status => {
            return Err(internal(anyhow::anyhow!(
                "{fault:?} is no fault to apply (handled before)"
            )))
        }
    })
}

/// Holds an applied fault for `hold` (Ctrl-C ends it early), then heals it: exit 1 when the
/// heal failed, saying how to finish it.
fn hold_then_heal(
    nem: &Nemesis<'_>,
    applied: &nemesis::Applied,
    hold: Duration,
    cluster: &std::path::Path,
) -> Result<Exit, Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    eprintln!(
        "holding it for {} (Ctrl-C heals it now)",
        humantime::format_duration(hold)
    );
    let until = Instant::now() + hold;
    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    match nem.heal(applied) {
        Ok(()) => {
            eprintln!("healed #{}", applied.id);
            Ok(Exit::Valid)
        }
        Err(e) => {
            eprintln!(
                "HEAL FAILED for #{}: {e}\nrun: faultline heal --cluster {}",
                applied.id,
                cluster.display()
            );
            Ok(Exit::Invalid)
        }
    }
}

fn clock_reset(nem: &Nemesis<'_>, nodes: &str) -> Result<Exit, Failure> {
    let all = nem.cluster().nodes();
    let nodes = Targets::parse(nodes)
        .resolve(&all, || Ok(Vec::new()), &mut nemesis::seeded(0))
        .map_err(nemesis_failure)?;
    nemesis::clock::require_own_clocks(nem.cluster(), &nodes).map_err(nemesis_failure)?;
    // Asked for by name, every node is set, also those no fault touched yet.
    let exe = std::env::current_exe().map_err(internal)?;
    // Time-sync services that pending clock faults stopped on these nodes start again.
    let pending = nem.journal().pending().map_err(internal)?;
    let mut time_sync: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &pending {
        if let Undo::ResetClock(r) = &p.undo {
            for (n, units) in r.time_sync.iter().filter(|(n, _)| nodes.contains(n)) {
                let all = time_sync.entry(n.clone()).or_default();
                all.extend(units.iter().cloned());
                all.sort();
                all.dedup();
            }
        }
    }
    let mut errors = nemesis::helper::install(nem.cluster(), &nodes, &exe);
    if errors.is_empty() {
        errors = nemesis::clock::reset(nem.cluster(), &nodes, &time_sync);
    }
    if errors.is_empty() {
        // Clock faults on these nodes are undone now.
        for p in pending {
            if p.fault.kind() == Kind::Clock && p.fault.nodes().iter().all(|x| nodes.contains(x)) {
                nem.forget(&p.undo);
                nem.journal().record_healed(p.id).map_err(internal)?;
            }
        }
        eprintln!("clocks reset on {}", nodes.join(", "));
        Ok(Exit::Valid)
    } else {
        for (n, e) in errors {
            eprintln!("{n}: {e}");
        }
        Ok(Exit::Invalid)
    }
}

/// `heal --force`: forgets the kills of databases that can never be opened again (a
/// definition file that changed or is gone: their restart cannot be done, and would
/// otherwise fail every heal and every later test on the cluster): journaled as healed and
/// their records removed from the nodes, each named with where the database stays down. A
/// database that could not be opened because a node did not answer is kept.
fn drop_unrestartable(
    nem: &Nemesis<'_>,
    pending: &[nemesis::journal::Pending],
    on_nodes: &[Undo],
    unavailable: &[hooks::Unavailable],
) -> Result<(), Failure> {
    let cannot = |u: &Undo| match u {
        Undo::Restart(_) | Undo::PowerOn(_) => u
            .database()
            .is_some_and(|db| unavailable.iter().any(|x| x.for_good && x.db == db)),
        _ => false,
    };
    for p in pending.iter().filter(|p| cannot(&p.undo)) {
        nem.forget(&p.undo);
        nem.journal().record_healed(p.id).map_err(nemesis_failure)?;
        eprintln!(
            "DROPPED #{} {} (--force): it cannot be restarted, so it stays down on {}; `faultline db start` starts it",
            p.id,
            p.fault,
            p.undo.nodes().join(", ")
        );
    }
    for u in on_nodes.iter().filter(|u| cannot(u)) {
        nem.forget(u);
        eprintln!("DROPPED a fault recorded on the nodes (--force): {u}; it stays down there");
    }
    Ok(())
}

fn status(journal: &Journal, file: &ClusterFile) -> Result<Exit, Failure> {
    match Lease::holder(file) {
        Some(h) => println!("cluster {:?} is in use: {h}", file.name),
        None => println!("cluster {:?} is free (no lease held)", file.name),
    }
    let pending = journal.pending().map_err(internal)?;
    if pending.is_empty() {
        println!("no faults applied (journal {})", journal.path().display());
    }
    for p in pending {
        let state = if !p.heal_errors.is_empty() {
            "HEAL FAILED"
        } else if p.applied {
            "applied"
        } else {
            "maybe partly applied"
        };
        println!("#{} {} since {}: {}", p.id, state, p.time, p.fault);
        for (n, e) in &p.heal_errors {
            println!("    {n}: {e}");
        }
    }
    Ok(Exit::Valid)
}

/// Runs `faultline heal`, restarting killed databases found in `registry`.
pub fn heal(args: &HealArgs, registry: &Registry) -> Result<Exit, Failure> {
    let (file, cluster) = load(&args.cluster)?;
    let journal = open_journal(args.journal.as_ref(), &file)?;
    // The faults of a live test are its own: healing them under it falsifies its history.
    let _lease = lease::take_for_heal(&file, args.force)?;
    // A killed database is restarted through its hooks, opened as its kill recorded it.
    // An unreadable journal still lets heal sweep (heal_all reports why it could not read it).
    let pending = journal.pending().unwrap_or_default();
    let mut undos: Vec<Undo> = pending.iter().map(|p| p.undo.clone()).collect();
    let mut on_nodes: Vec<Undo> = Vec::new();
    if !args.no_sweep {
        // Faults recorded on the nodes themselves, which the sweep undoes too.
        let (records, _) = nemesis::node_state::read(&cluster, &cluster.nodes());
        on_nodes.extend(records.into_values().flatten().filter_map(|(_, u)| u.ok()));
        undos.extend(on_nodes.iter().cloned());
    }
    // A database faultline cannot open does not keep heal from undoing everything else: the
    // faults that need it are reported as failed, and --force forgets them.
    let (nem, unavailable) = hooks::for_restarts(registry, Nemesis::new(&cluster, journal), &undos);
    for u in &unavailable {
        eprintln!(
            "WARNING: cannot restart {} where it was killed: {}",
            u.db, u.why
        );
    }
    if args.force {
        drop_unrestartable(&nem, &pending, &on_nodes, &unavailable)?;
    }
    let report = nem.heal_all(!args.no_sweep).map_err(nemesis_failure)?;
    for (id, what) in &report.healed {
        eprintln!("healed #{id} {what}");
    }
    for (id, what, errs) in &report.failed {
        eprintln!("HEAL FAILED #{id} {what} (it stays in the journal):");
        for (n, e) in errs {
            eprintln!("    {n}: {e}");
        }
    }
    if !args.force
        && report.failed.iter().any(|(_, _, errs)| {
            errs.values().any(|e| {
                unavailable
                    .iter()
                    .any(|u| u.for_good && e.contains(&format!("cannot restart {}:", u.db)))
            })
        })
    {
        eprintln!("A database that cannot be opened is not restarted: restore its definition file and run heal again, or `faultline heal --force` to forget these faults (the database stays down on their nodes; `faultline db start` starts it)");
    }
    if let Some(e) = &report.journal_error {
        eprintln!("HEAL INCOMPLETE: {e}; swept faultline's rules off every node, but faults the journal records (pauses, kills, clocks) may still be applied");
    }
    for (n, found) in &report.swept {
        for what in found {
            eprintln!("sweep: {n}: {what}");
        }
    }
    for (n, e) in &report.sweep_errors {
        eprintln!("HEAL FAILED: sweeping faultline's faults off {n}: {e}");
    }
    if report.is_clean() {
        if report.healed.is_empty() && report.swept.is_empty() {
            if args.no_sweep {
                eprintln!("nothing to heal: the journal lists no applied fault");
            } else {
                eprintln!("nothing to heal: the journal lists no applied fault, and the sweep found none of faultline's faults on the nodes");
            }
        }
        Ok(Exit::Valid)
    } else {
        Ok(Exit::Invalid)
    }
}
