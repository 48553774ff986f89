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
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check whether a recorded history is linearizable.
    #[command(after_long_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Create, inspect and remove clusters.
    #[command(subcommand, after_long_help = CLUSTER_EXAMPLES)]
    Cluster(ClusterCommand),
}

const CLUSTER_EXAMPLES: &str = "\
Examples:
  # Five local nodes (network namespaces with their own sshd, hostname and PID namespace):
  sudo faultline cluster up --local 5
  faultline cluster status --cluster /var/lib/faultline/clusters/local/cluster.yaml
  sudo faultline cluster down

  # A Vagrant lab:
  faultline cluster import-vagrant ~/lab > lab.yaml";

/// `faultline cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Build a cluster and print the path of its cluster file.
    Up(ClusterUpArgs),
    /// Remove everything `up` made for a cluster, and nothing else.
    Down(ClusterNameArgs),
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

Exit codes: 0 valid, 1 invalid, 2 unknown (a budget ran out), 254 bad usage or unreadable
input, 255 internal error.";

/// Options of `faultline check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The model to check against: register, cas-register, set, counter, queue, mutex, kv.
    #[arg(long, short = 'm')]
    pub model: String,

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
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
