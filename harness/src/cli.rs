//! Command-line definitions (clap), with help that teaches by example.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// faultline: find consistency bugs in distributed databases.
#[derive(Debug, Parser)]
#[command(name = "faultline", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// What to log on stderr (and in a run's faultline.log): error, warn, info, debug,
    /// trace, or a tracing filter such as `warn,harness=debug` [default: info for `test`,
    /// warn otherwise; the FAULTLINE_LOG variable overrides].
    #[arg(long, global = true)]
    pub log_level: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a test: a workload against a database on a cluster, with faults, then check it.
    #[command(after_long_help = TEST_EXAMPLES)]
    Test(Box<TestArgs>),
    /// Check whether a recorded history is linearizable.
    #[command(after_long_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Check a stored run again and redraw its report (results.json, report.html, plots,
    /// junit.xml, timeline.html).
    #[command(after_long_help = ANALYZE_EXAMPLES)]
    Analyze(AnalyzeArgs),
    /// Create, inspect and remove clusters.
    #[command(subcommand, after_long_help = CLUSTER_EXAMPLES)]
    Cluster(ClusterCommand),
    /// Run a command on the nodes of a cluster, in parallel.
    #[command(after_long_help = EXEC_EXAMPLES)]
    Exec(ExecArgs),
    /// Install, start, stop, inspect or wipe a database on a cluster by hand (then apply and
    /// heal faults with `nemesis` and `heal`).
    #[command(subcommand, after_long_help = DB_EXAMPLES)]
    Db(DbCommand),
    /// Apply one fault now (journaled, so that `faultline heal` undoes it), or list the
    /// faults applied now.
    #[command(after_long_help = NEMESIS_EXAMPLES)]
    Nemesis(NemesisArgs),
    /// Undo every fault the journal says may still be applied (idempotent).
    #[command(after_long_help = HEAL_EXAMPLES)]
    Heal(HealArgs),
    /// Serve the store over HTTP: every run with its verdict (filtered, a page at a time),
    /// trends and regressions per configuration, two runs side by side, and each run's
    /// report, timeline, plots, history and node logs.
    #[command(after_long_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Run a campaign: a matrix of tests (databases × workloads × faults × options × seeds)
    /// from a campaign file, each an ordinary run in the store; writes junit.xml and a summary.
    #[command(
        after_long_help = CAMPAIGN_HELP,
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true
    )]
    Campaign(CampaignArgs),
    /// Find a smaller reproduction of a failing run: fewer faults, a shorter time limit,
    /// fewer workers and keys, each change kept when the violation still reproduces.
    #[command(after_long_help = SHRINK_HELP)]
    Shrink(ShrinkArgs),
    /// The store's index of runs (STORE/index.sqlite).
    #[command(subcommand)]
    Index(IndexCommand),
    /// Benchmark of the scheduler and history recorder with an in-process no-op client:
    /// prints recorded ops/s and memory (see scripts/bench-recorder).
    #[command(hide = true)]
    BenchRecord(BenchRecordArgs),
    /// A store of fake but well-formed runs, indexed, for benchmarks and tests of `serve`
    /// (see scripts/bench-serve).
    #[command(hide = true)]
    BenchStore(BenchStoreArgs),
    /// Helpers that faultline runs on nodes (uploaded there); not for people.
    #[command(hide = true, subcommand)]
    Node(NodeCommand),
}

const TEST_EXAMPLES: &str = "\
Examples:
  # 60 s of cas-register against etcd on a temporary 5-node local cluster, with partitions,
  # kills and pauses:
  sudo faultline test --cluster local:5 --db etcd --workload cas-register \\
      --nemesis partition,kill,pause --time-limit 60s

  # The same on your own nodes, serializable reads (expect stale reads), a fixed seed:
  faultline test --cluster cluster.yaml --workload register --read-mode serializable --seed 42

  # Lost writes: a set workload with a final read after every fault is healed:
  faultline test --cluster cluster.yaml --workload set --nemesis partition,kill

The run is stored in STORE/<test-name>/<time>/ (history.jsonl, nemesis.jsonl, test.yaml,
results.json, timeline.html, faultline.log, nodes/<node>/ logs); STORE/latest points at it.
Every fault is healed at the end, also on Ctrl-C or an error. One controller per cluster: the
test holds the cluster's lease while it runs (a second test, a `faultline nemesis` fault or
`faultline db` is refused, naming it). Beside its verdict a run reports its test power
(workers' shares, ops in flight, faults applied per kind, windows with no ok op, keys read
back after the faults): a valid run that applied no fault of a requested kind, whose database
stopped answering for good, or that did not read its keys back prints `valid, weak: <why>`.
Exit codes: 0 valid (weak included), 1 invalid, 2 unknown, 3 valid but weak with
--strict-power, 254 bad usage or the cluster is held by another faultline process, 255 the
run could not be completed (unreachable node, database that does not start, ...).";

/// Options of `faultline test`. Options left out take the value of a `--config` file, else
/// their default; with `--replay`, the stored run's.
#[derive(Debug, Args, Clone)]
pub struct TestArgs {
    /// The cluster file, or `local:N` for a temporary local cluster of N nodes (root only).
    #[arg(long)]
    pub cluster: String,
    /// With `--cluster local:N`: qemu guests with their own kernels and clocks instead of
    /// namespaces; the clock nemesis then joins the default --nemesis.
    #[arg(long)]
    pub vm: bool,
    /// The database [default: etcd]: a built-in one (etcd, postgres, mariadb, galera), or a
    /// database definition file (FILE.yaml: commands, files and a client adapter; see
    /// docs/adapter-protocol.md).
    #[arg(long)]
    pub db: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db_options: crate::db_flags::DbOptionArgs,
    /// The workload [default: cas-register]: register, cas-register or set (etcd, and
    /// definitions that serve them); list-append or rw-register (the SQL databases).
    #[arg(long)]
    pub workload: Option<String>,
    /// Faults to mix: partition, kill, pause, clock, netem, power, disk-full, disk-error,
    /// disk-slow, corrupt (comma-separated), or none [default: partition,kill,pause; with --vm also
    /// clock]. power and the disk faults run the database on faultline's lazy filesystem.
    #[arg(long)]
    pub nemesis: Option<String>,
    /// Time between fault steps (a fault starts, then is healed one interval later)
    /// [default: 5s].
    #[arg(long, value_parser = parse_duration)]
    pub nemesis_interval: Option<Duration>,
    /// How long the workload runs [default: 60s].
    #[arg(long, value_parser = parse_duration)]
    pub time_limit: Option<Duration>,
    /// Client workers, each bound to one node, round robin [default: 10].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Ops per second, over all workers [default: 100].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Ops per key before a keyed workload moves to a fresh key; for list-append, appends
    /// per key before the key is retired [default: 200].
    #[arg(long)]
    pub ops_per_key: Option<u64>,
    /// An op with no answer after this long completes as `info` [default: 2s].
    #[arg(long, value_parser = parse_duration)]
    pub op_timeout: Option<Duration>,
    /// Seed for the op generator and the fault schedule [default: from the clock, printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// The test's name in the store [default: DB-WORKLOAD].
    #[arg(long)]
    pub name: Option<String>,
    /// Read options from a YAML test file (keys as the long options, e.g. `time-limit: 60s`,
    /// `nemesis: partition,kill`, `db-options: {read-mode: serializable}`); options on the
    /// command line win. A run's test.yaml is a valid test file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run again with a stored run's options, seed and so fault schedule (its test.yaml);
    /// only --cluster, --store and --test-count come from the command line.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "config")]
    pub replay: Option<PathBuf>,
    /// Run the test this many times (a nightly loop), each with the next seed; stops at the
    /// first invalid run unless --keep-going.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub test_count: u64,
    /// With --test-count, go on after an invalid run.
    #[arg(long)]
    pub keep_going: bool,
    /// Exit 3 instead of 0 when the run is valid but weak: no fault of a requested kind
    /// landed, or the database answered nothing from some point to the end, or no written
    /// key was read back after the faults healed (results.json's `power.weak` says why).
    #[arg(long)]
    pub strict_power: bool,
    /// Set by `faultline campaign` for each cell it runs: `CAMPAIGN::CELL`, recorded in
    /// test.yaml and the store's index (not taken from a `--config` or `--replay`ed file).
    #[arg(long, hide = true, value_name = "CAMPAIGN::CELL")]
    pub campaign_cell: Option<String>,
}

const SHRINK_HELP: &str = "\
Every candidate is an ordinary run in the store (its own directory, test.yaml and verdict),
named TEST-shrink and tagged in the store's index with the shrink (campaign column
shrink-TEST-TIME, cell c1, c2, ...). In order, it tries:
  1. the original plan again: does the violation reproduce at all?
  2. subsets of the fault schedule, by delta debugging over its faults (a fault's start with
     its heal; the kept steps keep their times);
  3. a shorter time limit, halved toward one nemesis interval after the last kept heal;
  4. fewer workers (--concurrency), halved toward 1;
  5. fewer keys (keyed workloads): --ops-per-key doubled while the ops would use several keys.
A candidate is kept when one of its --tries runs is invalid with an anomaly of the original
run's (unknown or valid runs do not count). The first try uses the run's own seed, the next
ones the seeds after it (seed+1, ...): the seed drives the op stream, the schedule is the
candidate's own (`explicit_schedule: true` in its test.yaml).

What it writes, in RUN/shrink/:
  state.json   the search (every candidate, its runs and verdicts, the best plan), written
               after every candidate: running the same command again continues from it
  test.yaml    the smallest plan that reproduced, for `faultline test --config`
  steps.md     each candidate: what it removed, its runs, its verdict

Examples:
  # Shrink a stale-read run on a temporary local cluster like the one it ran on:
  sudo faultline shrink store/etcd-register/20261207T160000

  # At most 10 minutes, 3 tries per candidate, on your own nodes:
  faultline shrink store/latest --tries 3 --budget 10m --cluster cluster.yaml

  # Then run the smallest plan again:
  faultline test --cluster local:5 --config store/latest/shrink/test.yaml

--budget and Ctrl-C stop it between candidates (Ctrl-C stops the running candidate, which
heals and is checked as any run, then tried again on resume); the state is saved and the
command says how far it got.
Exit codes: 0 a smaller plan reproduces, or the original is already minimal; 2 the original
does not reproduce in --tries runs, or the search stopped (budget, Ctrl-C) before anything
smaller reproduced; 254 bad usage (RUN is not an invalid run, the cluster is held, ...).";

/// Options of `faultline shrink`.
#[derive(Debug, Args)]
pub struct ShrinkArgs {
    /// The failing run's directory (STORE/TEST/TIME): its verdict must be invalid.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,
    /// Runs per candidate: it is kept when one of them reproduces the violation.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub tries: u64,
    /// The time box of this invocation: no candidate is started that would end after it
    /// (judged by the longest candidate so far); the next invocation continues.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub budget: Duration,
    /// Where candidate runs are stored [default: RUN's store, the directory above its test].
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The cluster file, or `local:N` [default: the run's own `cluster`].
    #[arg(long)]
    pub cluster: Option<String>,
}

const CAMPAIGN_HELP: &str = "\
The campaign file (YAML; unknown keys are refused with line and column):

  name: nightly-etcd             # the campaign's name [default: the file's stem]
  cluster: local:3               # local:N (a temporary cluster per cell) or a cluster file
  time-limit: 15s                # each run's workload
  databases: [etcd]              # built-in names or definition files (relative to this file)
  workloads: [register]
  nemesis: [partition, 'partition,kill']    # fault mixes, as --nemesis takes them
  db-options:                    # option sets, as --db-opt takes them [default: one, empty]
    - {read-mode: linearizable}
    - {read-mode: serializable}
  seeds: [1, 2]                  # or a count: `seeds: 5` is seeds 1 to 5
  exclude:                       # a rule leaves out the cells that match all it names
    - {nemesis: 'partition,kill', db-options: {read-mode: serializable}}
  test:                          # options of every run
    concurrency: 5
    rate: 50
    nemesis-interval: 5s
    op-timeout: 2s
    ops-per-key: 100

Each cell (one database, workload, fault mix, option set and seed; its id is
db/workload/nemesis/KEY=VALUE.../seed=N) is an ordinary `faultline test` run in the store,
with its own test.yaml (replayable), recorded in the store's index (STORE/index.sqlite) with
the campaign's id and the cell. The campaign writes STORE/campaigns/ID/ (with --shard,
STORE/campaigns/ID/shard-I-of-N/): junit.xml (a test case per cell, an invalid one failing
with its anomalies), summary.md, cells.json and the campaign file.

Examples:
  # Every cell in turn, each on its own temporary local cluster (root):
  sudo faultline campaign nightly.yaml

  # On your own nodes, one cell at a time:
  faultline campaign nightly.yaml --cluster cluster.yaml

  # The cells, without running them:
  faultline campaign nightly.yaml --dry-run

  # The second of four shards (a job array: --shard auto/4 reads JOB_COMPLETION_INDEX or
  # SLURM_ARRAY_TASK_ID); every shard needs the same --id:
  faultline campaign nightly.yaml --shard 2/4 --id nightly-2026-11-25 --store store-2
  faultline campaign merge --store store store-1 store-2 store-3 store-4

  # What changed since last night's campaign (exit 1 on new failures):
  faultline campaign nightly.yaml --compare store/campaigns/nightly-20261124T020000

Ctrl-C stops the running cells (each heals and is checked as any run) and starts no more.
Exit codes: 0 every cell valid, 1 some cell invalid (with --compare: some cell invalid that
was not before), 2 none invalid but some unknown, weak, failed or not run, 254 bad usage
(a bad campaign file, or a cell no run could take).";

/// Options of `faultline campaign`.
#[derive(Debug, Args)]
pub struct CampaignArgs {
    /// `merge`.
    #[command(subcommand)]
    pub command: Option<CampaignCommand>,
    /// The campaign file (FILE.yaml).
    #[arg(required = true, value_name = "FILE.yaml")]
    pub file: Option<PathBuf>,
    /// Where every cell runs: a cluster file (cells in turn), or local:N (a temporary local
    /// cluster per cell) [default: the campaign file's `cluster`, else local:3].
    #[arg(long)]
    pub cluster: Option<String>,
    /// With local:N, run up to N cells at once, each in its own process and cluster
    /// [default: a cell per 2 cores and 2 GiB of available memory].
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Run only share I of N of the cells (I from 1; auto/N takes I from
    /// JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID). Each cell is in exactly one share.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// The campaign's id [default: NAME-TIME]; shards of one campaign share it.
    #[arg(long)]
    pub id: Option<String>,
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// List the cells (of the shard) and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Compare with an earlier campaign's directory (STORE/campaigns/ID): print new
    /// failures, fixed and still failing cells; exit 1 on new failures.
    #[arg(long, value_name = "CAMPAIGN_DIR")]
    pub compare: Option<PathBuf>,
}

/// `faultline campaign ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Combine stores (each shard's) into one: copy their runs and campaign files, rebuild
    /// the index, and combine each campaign's shards' junit.xml and summary.
    Merge(MergeArgs),
}

/// Options of `faultline campaign merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The store to merge into (made if missing).
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// The stores to merge.
    #[arg(required = true, value_name = "STORE")]
    pub stores: Vec<PathBuf>,
}

/// `faultline index ...`
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Make the index (STORE/index.sqlite) again from the store's run directories.
    Rebuild(IndexArgs),
}

/// Options of `faultline index ...`.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// The store.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
}

const ANALYZE_EXAMPLES: &str = "\
Examples:
  faultline analyze store/latest
  faultline analyze --time-limit 10m store/etcd-cas-register/20261125T101500

The workload (and so the model) comes from the run's test.yaml; a history cut short by a
killed controller is accepted. Exit codes as for `faultline check`.";

/// Options of `faultline analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Give up after this long and answer "unknown" (exit 2).
    #[arg(long, value_parser = parse_duration)]
    pub time_limit: Option<Duration>,
    /// The run's directory.
    pub run: PathBuf,
}

const EXEC_EXAMPLES: &str = "\
Examples:
  # Every node's hostname:
  faultline exec --cluster cluster.yaml -- hostname

  # Two nodes, as root, with a time limit; arguments after -- reach the node unchanged:
  faultline exec --cluster cluster.yaml --node n1 --node n3 --sudo --timeout 10s -- \\
      journalctl -u etcd --since '5 min ago'

Output is grouped per node. Exit code: 0 when every node's command exited 0, 1 otherwise
(the failing nodes are named), 254 for bad usage.";

/// Options of `faultline exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The cluster file (cluster.yaml).
    #[arg(long)]
    pub cluster: PathBuf,
    /// Run on this node (repeatable; default: every node).
    #[arg(long = "node", value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Kill the command on a node after this long, e.g. 30s [default: the cluster file's
    /// command_timeout].
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Run as root (through sudo, unless the SSH user is root).
    #[arg(long)]
    pub sudo: bool,
    /// Keep at most this much of each node's standard output and of its standard error, e.g.
    /// 4MiB; the rest is read and dropped, and the output says it was cut.
    #[arg(long, default_value = "4MiB", value_parser = parse_size)]
    pub max_output: usize,
    /// The command and its arguments (after `--`).
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

const NEMESIS_EXAMPLES: &str = "\
Examples:
  faultline nemesis --cluster c.yaml partition --isolate n2
  faultline nemesis --cluster c.yaml partition --topology majorities-ring --seed 7
  faultline nemesis --cluster c.yaml partition --grudge '{\"n1\":[\"n2\",\"n3\"]}'
  faultline nemesis --cluster c.yaml netem --delay 200ms --jitter 50ms --nodes n1 --to n2,n3
  faultline nemesis --cluster c.yaml netem --loss 10 --nodes all
  faultline nemesis --cluster c.yaml kill --db etcd --nodes n1
  faultline nemesis --cluster c.yaml pause --db etcd --nodes minority
  faultline nemesis --cluster c.yaml power --db postgres --nodes all --mode torn
  faultline nemesis --cluster c.yaml disk-full --db postgres --nodes n1
  faultline nemesis --cluster c.yaml disk-error --db postgres --probability 0.1 --files 'pg_wal/*'
  faultline nemesis --cluster c.yaml disk-slow --db postgres --delay 200ms --on fsync
  faultline nemesis --cluster c.yaml corrupt --db etcd --nodes n2 --mode zero-range --files 'member/snap/db'
  faultline nemesis --cluster c.yaml clock bump --nodes n1 --by 30s
  faultline nemesis --cluster c.yaml clock strobe --nodes n1 --delta 200ms --period 10ms --for 5s
  faultline nemesis --cluster c.yaml status
  faultline heal --cluster c.yaml

Faults stay applied until `faultline heal` (or, with --hold DUR, until DUR has passed or
Ctrl-C). Every fault is written to the cluster's fault journal before it is applied.
Node sets (--nodes, --to): one, minority, majority, primaries, all, or names like n1,n3.
Topologies: halves, random-halves, isolate-random, majorities-ring, minority-third, bridge,
primaries. One controller per cluster: a fault is refused while a test or another `nemesis`
holds the cluster's lease (the message names its pid, command, host and start; `nemesis
status` shows it). Exit code: 0 applied, 1 failed on some node (and undone), 254 bad usage or
refused.";

/// Options of `faultline nemesis`.
#[derive(Debug, Args)]
pub struct NemesisArgs {
    /// The cluster file (cluster.yaml).
    #[arg(long)]
    pub cluster: PathBuf,
    /// The fault journal [default: $FAULTLINE_HOME/journal/CLUSTER-NAME.jsonl].
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Seed for random choices (random halves, a random minority, ...) [default: from the
    /// clock, and printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the fault for this long, then heal it (Ctrl-C heals it at once).
    #[arg(long, value_parser = parse_duration)]
    pub hold: Option<Duration>,
    /// The fault.
    #[command(subcommand)]
    pub fault: FaultCommand,
}

/// A fault on the command line.
#[derive(Debug, Subcommand)]
pub enum FaultCommand {
    /// Cut nodes off from each other (iptables, in faultline's own chain).
    Partition(PartitionArgs),
    /// Delay, lose, duplicate, reorder or corrupt packets, or limit their rate.
    Netem(NetemArgs),
    /// Kill the database with SIGKILL (heal restarts it).
    Kill(ProcessArgs),
    /// Pause the database with SIGSTOP (heal resumes it with SIGCONT).
    Pause(ProcessArgs),
    /// Move clocks (nodes with their own kernel only).
    #[command(subcommand)]
    Clock(ClockCommand),
    /// Cut the database's power: SIGKILL, and what it never fsynced is lost (its data
    /// directory must be on faultline's lazy filesystem: `faultline db start --lazyfs`, or a
    /// test with --nemesis power). Heal starts it again.
    Power(PowerArgs),
    /// Fill the database's disk: writes past a file's end and new files fail with ENOSPC
    /// (its data directory must be on faultline's lazy filesystem, as for power). Heal
    /// clears it and starts the database where it died.
    DiskFull(DiskTargetArgs),
    /// I/O errors (EIO) on reads and writes of the database's files, with a probability
    /// (on the lazy filesystem, as for power). Heal clears them and starts the database
    /// where it died.
    DiskError(DiskErrorArgs),
    /// A slow disk: the database's fsyncs and writes wait a delay (on the lazy filesystem,
    /// as for power). Heal clears it.
    DiskSlow(DiskSlowArgs),
    /// Damage one file of the database's data directory on each target (a minority by
    /// default): the database is killed, the file changed in place and synced; heal starts
    /// the database again. The journal says which file and where.
    Corrupt(CorruptArgs),
    /// List the faults the journal says are applied now.
    Status,
}

/// Options of `nemesis partition`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct PartitionArgs {
    /// A topology: halves, random-halves, isolate-random, majorities-ring, minority-third,
    /// bridge, primaries.
    #[arg(long)]
    pub topology: Option<String>,
    /// Cut this node off from all others.
    #[arg(long, value_name = "NODE")]
    pub isolate: Option<String>,
    /// Components that cannot see each other, e.g. 'n1,n2|n3,n4,n5'.
    #[arg(long)]
    pub components: Option<String>,
    /// An explicit grudge: JSON mapping each node to the nodes it drops.
    #[arg(long)]
    pub grudge: Option<String>,
}

/// Options of `nemesis netem`.
#[derive(Debug, Args)]
pub struct NetemArgs {
    /// Nodes whose outgoing packets are affected.
    #[arg(long, default_value = "all")]
    pub nodes: String,
    /// Only packets to these nodes [default: all traffic].
    #[arg(long)]
    pub to: Option<String>,
    /// Added delay, e.g. 200ms.
    #[arg(long, value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// Jitter around the delay, e.g. 50ms.
    #[arg(long, value_parser = parse_duration)]
    pub jitter: Option<Duration>,
    /// Percentage of packets lost.
    #[arg(long, value_name = "PERCENT")]
    pub loss: Option<f64>,
    /// Percentage of packets duplicated.
    #[arg(long, value_name = "PERCENT")]
    pub duplicate: Option<f64>,
    /// Percentage of packets sent out of order (needs --delay).
    #[arg(long, value_name = "PERCENT")]
    pub reorder: Option<f64>,
    /// Percentage of packets corrupted.
    #[arg(long, value_name = "PERCENT")]
    pub corrupt: Option<f64>,
    /// Rate limit in kbit/s.
    #[arg(long, value_name = "KBIT")]
    pub rate: Option<u64>,
}

/// Options of `nemesis kill` and `nemesis pause`.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// The database whose processes are targeted.
    #[arg(long)]
    pub db: String,
    /// Which nodes.
    #[arg(long, default_value = "one")]
    pub nodes: String,
}

/// Options of `nemesis power`.
#[derive(Debug, Args)]
pub struct PowerArgs {
    /// The database whose power is cut.
    #[arg(long)]
    pub db: String,
    /// Which nodes: one, minority, majority, all, primaries, or names (n1,n3).
    #[arg(long, default_value = "one")]
    pub nodes: String,
    /// What is lost: lose-unfsynced (everything not fsynced) or torn (a random part of it).
    #[arg(long, default_value = "lose-unfsynced")]
    pub mode: nemesis::power::PowerMode,
}

/// The database and nodes of a disk fault.
#[derive(Debug, Args)]
pub struct DiskTargetArgs {
    /// The database whose disk is faulted.
    #[arg(long)]
    pub db: String,
    /// Which nodes: one, minority, majority, all, primaries, or names (n1,n3).
    #[arg(long, default_value = "one")]
    pub nodes: String,
}

/// Options of `nemesis disk-error`.
#[derive(Debug, Args)]
pub struct DiskErrorArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: DiskTargetArgs,
    /// The probability (0 to 1) that an operation on a chosen file fails.
    #[arg(long, default_value_t = 0.1)]
    pub probability: f64,
    /// Which operations fail: reads, writes (writes and fsyncs) or both.
    #[arg(long, default_value = "both", value_parser = ["reads", "writes", "both"])]
    pub on: String,
    /// Only files whose path in the data directory matches this glob (`*` any characters,
    /// `/` included; `?` one), e.g. 'pg_wal/*' or '*.aof' [default: every file].
    #[arg(long, conflicts_with = "share")]
    pub files: Option<String>,
    /// Only a random share (0 to 1) of the files, chosen as each is first met.
    #[arg(long)]
    pub share: Option<f64>,
}

/// Options of `nemesis disk-slow`.
#[derive(Debug, Args)]
pub struct DiskSlowArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: DiskTargetArgs,
    /// The delay added to each operation, e.g. 200ms.
    #[arg(long, value_parser = parse_duration, default_value = "200ms")]
    pub delay: Duration,
    /// Which operations wait: fsync (fsync and fdatasync), writes or both.
    #[arg(long, default_value = "both", value_parser = ["fsync", "writes", "both"])]
    pub on: String,
}

/// Options of `nemesis corrupt`.
#[derive(Debug, Args)]
pub struct CorruptArgs {
    /// The database whose files are damaged.
    #[arg(long)]
    pub db: String,
    /// Which nodes: one, minority, majority, all, primaries, or names (n1,n3).
    #[arg(long, default_value = "minority")]
    pub nodes: String,
    /// What is done: bitflip, zero-range (up to 4 KiB), truncate, or rollback (the file
    /// reverts to a copy taken 2 s before the database is killed).
    #[arg(long, default_value = "bitflip")]
    pub mode: nemesis::corrupt::CorruptMode,
    /// Only files whose path in the data directory matches this glob, e.g. 'member/snap/*'
    /// [default: any file that is not empty].
    #[arg(long)]
    pub files: Option<String>,
}

/// `nemesis clock ...`
#[derive(Debug, Subcommand)]
pub enum ClockCommand {
    /// Move the clocks by an offset (`--by 30s`, `--by -5s`).
    Bump {
        /// Which nodes.
        #[arg(long, default_value = "one")]
        nodes: String,
        /// The offset; a leading '-' moves the clock back.
        #[arg(long, allow_hyphen_values = true, value_parser = parse_signed_ms)]
        by: i64,
    },
    /// Jump the clocks back and forth.
    Strobe {
        /// Which nodes.
        #[arg(long, default_value = "one")]
        nodes: String,
        /// How far each jump goes.
        #[arg(long, value_parser = parse_duration)]
        delta: Duration,
        /// Time between jumps.
        #[arg(long, value_parser = parse_duration)]
        period: Duration,
        /// How long to strobe.
        #[arg(long = "for", value_parser = parse_duration)]
        duration: Duration,
    },
    /// Set the clocks back to this machine's time.
    Reset {
        /// Which nodes.
        #[arg(long, default_value = "all")]
        nodes: String,
    },
}

const HEAL_EXAMPLES: &str = "\
Examples:
  faultline heal --cluster /var/lib/faultline/clusters/local/cluster.yaml

Heal undoes, newest first, every fault that the cluster's journal lists as not yet healed
(also those of a test run that was killed), then removes faultline's partition chain and
netem qdiscs from every node whatever the journal says. A node where undoing fails is retried,
then named; the fault stays in the journal for the next heal. While a test holds the
cluster (its lease), heal is refused and names it; --force heals its live faults anyway.
A killed database is restarted as its kill recorded it (its --db, a definition file's
absolute path, and its options); when a definition file changed or is gone since, heal
says so, heals everything else and keeps the kill; --force then forgets it (the database
stays down on its nodes: `faultline db start` starts it).
Exit code: 0 when everything is undone, 1 otherwise, 254 refused.";

const SERVE_EXAMPLES: &str = "\
Examples:
  # The runs under ./store, at http://127.0.0.1:8080/ (newest first):
  faultline serve

  # Another store, another port:
  faultline serve --store /srv/faultline/store --listen 127.0.0.1:9000

  # From another machine, through SSH rather than an open port:
  ssh -L 8080:127.0.0.1:8080 chaos-host faultline serve --store /srv/faultline/store

The run list (/) shows each run's start, test name, configuration, seed, verdict (valid,
INVALID, unknown, error, or none yet for a run that is still going or was interrupted) and
the checker's summary, with links to its report, timeline, history, files and a comparison
with the previous run of its configuration; filters: ?db=, workload=, fault=, verdict=
(a GET form on the page), 100 runs a page (?page=). /trends shows each configuration's
verdicts over time, regressions first (invalid now, valid on the 3 runs before; ?n=5 for
5), then flaky ones (valid and invalid on one faultline version). /compare?a=RUN&b=RUN puts
two runs side by side. The pages read the store's index (STORE/index.sqlite), brought up to
date with the run directories on every request, so runs appear as they are made. Only
files inside the store are served. The first line on stdout is the address, so scripts can
use --listen 127.0.0.1:0 and read the port.";

/// Options of `faultline serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The store whose runs to serve (as in `faultline test --store`).
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Address and port to listen on (port 0: any free port). Loopback by default: the store
    /// holds histories, logs and cluster files, so listen elsewhere only on a network you
    /// trust.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// How long a connection may take to send a request's headers, and how long it may stay
    /// idle (nothing read or written) before it is closed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: std::time::Duration,
}

/// Options of `faultline heal`.
#[derive(Debug, Args)]
pub struct HealArgs {
    /// The cluster file (cluster.yaml).
    #[arg(long)]
    pub cluster: PathBuf,
    /// The fault journal [default: $FAULTLINE_HOME/journal/CLUSTER-NAME.jsonl].
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Only undo what the journal lists; do not sweep faultline's rules off every node.
    #[arg(long)]
    pub no_sweep: bool,
    /// Heal also while another faultline process (a running test) holds the cluster's
    /// lease: its live faults are undone under it. Also forgets kills of a database that
    /// cannot be restarted (its definition file changed or is gone), which stays down.
    #[arg(long)]
    pub force: bool,
}

/// Options of `faultline bench-store`.
#[derive(Debug, Args)]
pub struct BenchStoreArgs {
    /// The store to fill (made if missing).
    #[arg(long)]
    pub store: PathBuf,
    /// Runs to make.
    #[arg(long, default_value_t = 10_000)]
    pub runs: u64,
}

/// Options of `faultline bench-record`.
#[derive(Debug, Args)]
pub struct BenchRecordArgs {
    /// Workers.
    #[arg(long, default_value_t = 50)]
    pub workers: usize,
    /// Ops to run.
    #[arg(long, default_value_t = 1_000_000)]
    pub ops: u64,
    /// The history file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Run each worker's ops through a client adapter started as this command (program and
    /// arguments, e.g. `--adapter python3 examples/noop-adapter.py`) instead of answering
    /// them in process: the adapter protocol's overhead.
    #[arg(long, num_args = 1.., allow_hyphen_values = true, value_name = "PROGRAM ARGS")]
    pub adapter: Vec<String>,
}

/// `faultline node ...` (runs on nodes).
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Clock changes.
    #[command(subcommand)]
    Clock(NodeClockCommand),
    /// Emulate packet faults in user space on packets queued by faultline's NFQUEUE rule
    /// (kernels without sch_netem); runs until killed.
    NetemQueue {
        /// The faults, as JSON (nemesis::NetemSpec).
        #[arg(long)]
        spec: String,
        /// Seed for the random choices.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// The lazy filesystem (nemesis::lazyfs): mount it, or send it a fault command.
    #[command(subcommand)]
    Lazyfs(NodeLazyfsCommand),
}

/// `faultline node lazyfs ...`
#[derive(Debug, Subcommand)]
pub enum NodeLazyfsCommand {
    /// Mount it over a backing directory; runs in the foreground until unmounted or
    /// stopped (SIGTERM or SIGINT make everything durable, then unmount); prints `ready`
    /// once mounted.
    Mount {
        /// The backing directory (what is durable).
        #[arg(long)]
        backing: PathBuf,
        /// The mount point.
        #[arg(long)]
        mount: PathBuf,
        /// The control socket to listen on.
        #[arg(long)]
        control: PathBuf,
        /// Seed for `torn`'s random choices.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Send a command (lose-unfsynced, torn, checkpoint, status, unmount, disk-full,
    /// 'disk-error JSON', 'disk-slow JSON', clear [KIND]; see nemesis::lazyfs::Command)
    /// and print what is pending and which disk faults are set after it, as JSON.
    Ctl {
        /// The mount's control socket.
        #[arg(long)]
        control: PathBuf,
        /// The command.
        command: String,
    },
}

/// `faultline node clock ...`
#[derive(Debug, Subcommand)]
pub enum NodeClockCommand {
    /// Move the clock.
    Bump {
        /// Milliseconds (may be negative).
        #[arg(long, allow_hyphen_values = true)]
        by_ms: i64,
    },
    /// Strobe the clock.
    Strobe {
        /// Jump size in milliseconds.
        #[arg(long, allow_hyphen_values = true)]
        delta_ms: i64,
        /// Milliseconds between jumps.
        #[arg(long)]
        period_ms: u64,
        /// How long, in milliseconds.
        #[arg(long)]
        duration_ms: u64,
    },
    /// Set the clock.
    Reset {
        /// Nanoseconds since the Unix epoch.
        #[arg(long)]
        to_unix_ns: i128,
    },
    /// Set the clock from the controller's time server (ADDRESS:PORT).
    Sync {
        /// The controller's time server.
        #[arg(long)]
        server: String,
    },
}

/// Parses a signed duration into milliseconds: `30s`, `-5s`, `+250ms`.
pub fn parse_signed_ms(s: &str) -> Result<i64, String> {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let d = parse_duration(rest)?;
    i64::try_from(d.as_millis())
        .map(|ms| sign * ms)
        .map_err(|_| format!("{s:?}: too large"))
}

const CLUSTER_EXAMPLES: &str = "\
Examples:
  # Five local nodes (network namespaces with their own sshd, hostname and PID namespace):
  sudo faultline cluster up --local 5

  # Three qemu guests with their own kernels and clocks (for clock faults):
  sudo faultline cluster up --local 3 --vm --name vms
  faultline cluster status --cluster /var/lib/faultline/clusters/local/cluster.yaml
  sudo faultline cluster down

  # A Vagrant lab:
  faultline cluster import-vagrant ~/lab > lab.yaml

`cluster down` is refused (254) while a test or another faultline process holds the
cluster's lease, naming it; --force removes the cluster anyway.";

const DB_EXAMPLES: &str = "\
Examples:
  C=/var/lib/faultline/clusters/local/cluster.yaml
  faultline db install --cluster $C --db etcd          # the node's own etcd, else this machine's
  faultline db start --cluster $C --db etcd            # configure, start, wait until each node serves
  faultline db status --cluster $C --db etcd           # running (PIDs) and answering, per node
  faultline nemesis --cluster $C kill --db etcd --nodes n1
  faultline heal --cluster $C                          # restarts it where it was killed
  faultline db stop --cluster $C --db etcd
  faultline db wipe --cluster $C --db etcd             # stop, and remove its data and logs

The database options are those of `faultline test` (--db-opt KEY=VALUE, --db-install,
--db-binary, --read-mode, --isolation, --consistency). install and start record the options they used in
the cluster's database journal ($FAULTLINE_HOME/journal/NAME.db.jsonl, beside the fault
journal), with every change (install, start, stop, wipe) and its outcome per node; later db
commands, `nemesis kill|pause --db` and `heal` use the recorded options when none are given.
install, start, stop and wipe hold the cluster's lease while they run: refused (254) while a
test or a one-off fault holds it. Exit code: 0 done on every node (status: running and
answering on every node), 1 not on some node (named), 254 bad usage or refused.";

/// `faultline db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Install the database on every node.
    Install(DbArgs),
    /// Configure and start it where it is not running, then wait until every node serves.
    Start(DbStartArgs),
    /// Stop it (SIGKILL, as at the end of a test).
    Stop(DbArgs),
    /// Whether it runs (its PIDs) and answers, per node.
    Status(DbArgs),
    /// Stop it and remove its data and logs.
    Wipe(DbArgs),
}

/// Options of `faultline db ...`.
#[derive(Debug, Args, Clone)]
pub struct DbArgs {
    /// The cluster file (cluster.yaml).
    #[arg(long)]
    pub cluster: PathBuf,
    /// The database: a built-in one (etcd, postgres, mariadb, galera), or the path of a
    /// database definition file (FILE.yaml).
    #[arg(long)]
    pub db: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db_options: crate::db_flags::DbOptionArgs,
}

/// Options of `faultline db start`.
#[derive(Debug, Args, Clone)]
pub struct DbStartArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db: DbArgs,
    /// Start it on faultline's lazy filesystem, mounted over its data directory where it
    /// does not run, so that `faultline nemesis power` can drop what it never fsynced and
    /// `nemesis disk-full|disk-error|disk-slow` can fault its disk.
    /// `db stop`, `db wipe` and `faultline heal` unmount it.
    #[arg(long)]
    pub lazyfs: bool,
}

/// `faultline cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Build a cluster and print the path of its cluster file.
    Up(ClusterUpArgs),
    /// Remove everything `up` made for a cluster, and nothing else.
    Down(ClusterDownArgs),
    /// Check each node over SSH (exit 0 when all answer).
    Status(ClusterFileArgs),
    /// Turn `vagrant ssh-config` output into a cluster file (printed on stdout).
    ImportVagrant(ImportVagrantArgs),
}

/// Options of `faultline cluster up`.
#[derive(Debug, Args)]
pub struct ClusterUpArgs {
    /// Build N nodes on this machine (network namespaces on a bridge; root only).
    #[arg(long, value_name = "N")]
    pub local: usize,
    /// Make the nodes qemu guests with their own kernels and clocks (the image is built from
    /// Debian packages on first use and cached).
    #[arg(long)]
    pub vm: bool,
    /// Memory per guest, in MiB (with --vm).
    #[arg(long, default_value_t = 384, requires = "vm")]
    pub memory: u32,
    /// The cluster's name.
    #[arg(long, default_value = "local")]
    pub name: String,
}

/// A cluster named on the command line.
#[derive(Debug, Args)]
pub struct ClusterNameArgs {
    /// The cluster's name.
    #[arg(long, default_value = "local")]
    pub name: String,
}

/// Options of `cluster down`.
#[derive(Debug, Args)]
pub struct ClusterDownArgs {
    /// The cluster's name.
    #[arg(long, default_value = "local")]
    pub name: String,
    /// Remove it also while another faultline process (a running test) holds its lease.
    #[arg(long)]
    pub force: bool,
}

/// A cluster file on the command line.
#[derive(Debug, Args)]
pub struct ClusterFileArgs {
    /// The cluster file (cluster.yaml).
    #[arg(long)]
    pub cluster: PathBuf,
}

/// Options of `faultline cluster import-vagrant`.
#[derive(Debug, Args)]
pub struct ImportVagrantArgs {
    /// The Vagrant project directory (default: the current directory).
    pub dir: Option<PathBuf>,
    /// Read `vagrant ssh-config` output from this file instead of running vagrant.
    #[arg(long)]
    pub from_file: Option<PathBuf>,
    /// The cluster's name.
    #[arg(long, default_value = "vagrant")]
    pub name: String,
}

const CHECK_EXAMPLES: &str = "\
Examples:
  # A faultline history (one JSON event per line):
  faultline check --model cas-register store/latest/history.jsonl

  # A Jepsen history with Knossos's conventions (register starts at 0, nil reads match anything):
  faultline check --model cas-register --initial 0 --knossos-nil-reads history.edn

  # Machine-readable verdict, a timeline of the failing keys, and at most 30 s of search:
  faultline check --model register --json --out report/ --time-limit 30s history.jsonl

  # Transactions (Elle's list-append), checked for snapshot isolation; SVGs of the cycles:
  faultline check --model list-append --consistency snapshot-isolation --out report/ history.edn

Exit codes: 0 valid, 1 invalid, 2 unknown (a budget ran out), 254 bad usage or unreadable
input, 255 internal error.";

/// Options of `faultline check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The model to check against: register, cas-register, set, counter, queue, mutex, kv;
    /// or a transactional model: list-append, rw-register.
    #[arg(long, short = 'm')]
    pub model: String,

    /// For list-append and rw-register: the consistency model to check, one of
    /// read-committed, repeatable-read, snapshot-isolation, serializable, strict-serializable
    /// (the default).
    #[arg(long)]
    pub consistency: Option<String>,

    /// For rw-register: an assumption of Elle's the database is trusted to keep, narrowing
    /// the search over version orders: sequential-keys (each process sees each key's versions
    /// in order), linearizable-keys (each key is linearizable), wfr-keys (writes follow reads
    /// within a transaction; implied by every model searched). Repeatable; results.json's
    /// `assumptions` lists the ones a verdict rests on.
    #[arg(long, value_parser = ["sequential-keys", "linearizable-keys", "wfr-keys"])]
    pub assume: Vec<String>,

    /// The history's format: auto detects faultline JSONL, Jepsen EDN and Jepsen text logs.
    #[arg(long, default_value = "auto", value_parser = ["auto", "jsonl", "edn", "jepsen-log"])]
    pub format: String,

    /// Give up after this long and answer "unknown" (exit 2), e.g. 30s, 5m.
    #[arg(long, value_parser = parse_duration)]
    pub time_limit: Option<Duration>,

    /// Memory the search may use before answering "unknown", e.g. 2GiB, 512MiB
    /// [default: half of this machine's memory].
    #[arg(long, value_parser = parse_size)]
    pub memory_limit: Option<usize>,

    /// Print one JSON object on stdout instead of a human summary.
    #[arg(long)]
    pub json: bool,

    /// Also write results.json and timeline.html (a page drawing each process's ops of the
    /// failing keys) into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Initial value of a register (Knossos models start at a given value; default null).
    #[arg(long)]
    pub initial: Option<String>,

    /// Knossos's convention: an ok read of null (nil) means "value unknown" and matches any state.
    #[arg(long)]
    pub knossos_nil_reads: bool,

    /// Keep checking every key after one is found invalid, to list all failing keys (by
    /// default the check stops at the first invalid key: the verdict is decided then).
    #[arg(long)]
    pub all_keys: bool,

    /// Always use the exact search, never a model's fast path (for cross-checking).
    #[arg(long)]
    pub search_only: bool,

    /// Accept a last line cut short, as a controller killed mid-write leaves it.
    #[arg(long)]
    pub allow_truncated: bool,

    /// The history file (`-` for standard input).
    pub history: PathBuf,
}

/// Parses durations such as `30s`, `1m30s`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (expected e.g. 30s, 5m, 500ms)"))
}

/// Parses sizes such as `2GiB`, `512MiB`, `1G`, `1000000` (bytes).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a size such as 2GiB or 512MiB"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (expected B, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("GiB").is_err());
    }

    #[test]
    fn signed_durations_parse() {
        assert_eq!(parse_signed_ms("30s"), Ok(30_000));
        assert_eq!(parse_signed_ms("-5s"), Ok(-5_000));
        assert_eq!(parse_signed_ms("+250ms"), Ok(250));
        assert!(parse_signed_ms("-x").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
