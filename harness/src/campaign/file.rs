//! The campaign file (`faultline campaign FILE.yaml`): the matrix, the options every run
//! shares, and exclusions. Unknown keys are refused with the file, line and column.

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A campaign file, as read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CampaignFile {
    /// The campaign's name [default: the file's stem].
    #[serde(default)]
    pub name: Option<String>,
    /// Where cells run: `local:N` (a temporary local cluster per cell) or a cluster file
    /// (every cell in turn on it); `--cluster` overrides it [default: local:3].
    #[serde(default)]
    pub cluster: Option<String>,
    /// How long each run's workload runs (`--time-limit`).
    pub time_limit: Scalar,
    /// Databases: built-in names or definition files (relative to the campaign file).
    pub databases: Vec<String>,
    /// Workloads.
    pub workloads: Vec<String>,
    /// Fault mixes, each as `--nemesis` takes it (`partition,kill`, `none`).
    pub nemesis: Vec<String>,
    /// Database option sets, each a map of `--db-opt` keys to values [default: one empty
    /// set].
    #[serde(default)]
    pub db_options: Vec<BTreeMap<String, Scalar>>,
    /// Seeds: a list, or a count (seeds 1 to N).
    pub seeds: Seeds,
    /// Cells left out: each rule names some of db, workload, nemesis, db-options, seed, and
    /// leaves out every cell that matches all it names.
    #[serde(default)]
    pub exclude: Vec<Exclude>,
    /// Other options of every run, as a `--config` test file takes them.
    #[serde(default)]
    pub test: TestOptions,
}

/// Seeds: a list or a count.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Seeds {
    /// A count: seeds 1 to N.
    Count(u64),
    /// The seeds themselves.
    List(Vec<u64>),
}

/// A scalar written as text or as a number (`15s`, `2`, `true`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Text.
    Text(String),
}

impl Scalar {
    /// The scalar as the command line would give it.
    pub fn text(&self) -> String {
        match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Text(t) => t.clone(),
        }
    }
}

/// One exclusion rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Exclude {
    /// The database, as the file names it.
    pub db: Option<String>,
    /// The workload.
    pub workload: Option<String>,
    /// The fault mix, as the file writes it.
    pub nemesis: Option<String>,
    /// Options the cell's option set has (others may be there too).
    pub db_options: Option<BTreeMap<String, Scalar>>,
    /// The seed.
    pub seed: Option<u64>,
}

/// The options every run of the campaign shares (those of `faultline test`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TestOptions {
    /// Client workers.
    pub concurrency: Option<u64>,
    /// Ops per second over all workers.
    pub rate: Option<f64>,
    /// Time between fault steps.
    pub nemesis_interval: Option<Scalar>,
    /// An op's timeout.
    pub op_timeout: Option<Scalar>,
    /// Ops per key.
    pub ops_per_key: Option<u64>,
}

/// A campaign file with where it was read from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file's contents.
    pub file: CampaignFile,
    /// Its path.
    pub path: PathBuf,
    /// Its text (kept in the campaign's directory).
    pub text: String,
}

impl Loaded {
    /// The campaign's name.
    pub fn name(&self) -> String {
        self.file.name.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "campaign".into())
        })
    }

    /// A database as a run takes it: a definition file relative to the campaign file made
    /// absolute, a built-in name as it is.
    pub fn db_path(&self, db: &str) -> String {
        if !workloads::adapter::definition::is_definition_path(db) || Path::new(db).is_absolute() {
            return db.to_string();
        }
        let base = self.path.parent().unwrap_or(Path::new(""));
        let p = base.join(db);
        std::fs::canonicalize(&p).unwrap_or(p).display().to_string()
    }
}

/// Reads and checks a campaign file.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let file = parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(Loaded {
        file,
        path: path.to_path_buf(),
        text,
    })
}

/// Parses and checks a campaign file's text; errors name the line and column.
pub fn parse(text: &str) -> anyhow::Result<CampaignFile> {
    let file: CampaignFile = serde_yaml_ng::from_str(text).map_err(|e| match e.location() {
        Some(l) => anyhow!("line {}, column {}: {e}", l.line(), l.column()),
        None => anyhow!("{e}"),
    })?;
    for (key, list) in [
        ("databases", &file.databases),
        ("workloads", &file.workloads),
        ("nemesis", &file.nemesis),
    ] {
        if list.is_empty() {
            bail!("{key}: expected at least one");
        }
    }
    if let Seeds::List(l) = &file.seeds {
        if l.is_empty() {
            bail!("seeds: expected at least one");
        }
    }
    if matches!(file.seeds, Seeds::Count(0)) {
        bail!("seeds: expected at least one");
    }
    file.time_limit()?;
    if let Some(name) = &file.name {
        super::check_id(name).map_err(|e| anyhow!("name: {e}"))?;
    }
    Ok(file)
}

impl CampaignFile {
    /// The time limit of each run.
    pub fn time_limit(&self) -> anyhow::Result<Duration> {
        crate::cli::parse_duration(&self.time_limit.text()).map_err(|e| anyhow!("time-limit: {e}"))
    }

    /// The seeds.
    pub fn seed_list(&self) -> Vec<u64> {
        match &self.seeds {
            Seeds::Count(n) => (1..=*n).collect(),
            Seeds::List(l) => l.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: nightly
time-limit: 15s
databases: [etcd, defs/redis.yaml]
workloads: [register]
nemesis: [partition]
db-options:
  - {read-mode: serializable, replicas: 2}
seeds: 3
test:
  concurrency: 5
  nemesis-interval: 3s
";

    #[test]
    fn a_campaign_file_parses() {
        let f = parse(GOOD).expect("parse");
        assert_eq!(f.seed_list(), vec![1, 2, 3]);
        assert_eq!(f.time_limit().unwrap(), Duration::from_secs(15));
        assert_eq!(f.db_options[0]["replicas"].text(), "2");
        assert_eq!(f.test.concurrency, Some(5));
        let loaded = Loaded {
            file: f,
            path: PathBuf::from("/etc/campaigns/n.yaml"),
            text: GOOD.into(),
        };
        assert_eq!(loaded.db_path("etcd"), "etcd");
        assert_eq!(
            loaded.db_path("defs/redis.yaml"),
            "/etc/campaigns/defs/redis.yaml"
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_line_and_column() {
        let bad = GOOD.replace("  concurrency: 5", "  concurency: 5");
        let e = format!("{:#}", parse(&bad).unwrap_err());
        assert!(e.starts_with("line 10, column 3: "), "{e}");
        assert!(e.contains("concurency"), "{e}");
        let bad = GOOD.replace("seeds: 3", "seeds: 3\nexclude:\n  - {dbs: etcd}");
        let e = format!("{:#}", parse(&bad).unwrap_err());
        assert!(e.starts_with("line 10, column 6: "), "{e}");
        let e = format!(
            "{:#}",
            parse("time-limit: 1s\nworkloads: [x]\n").unwrap_err()
        );
        assert!(e.contains("databases"), "{e}");
    }

    #[test]
    fn empty_lists_and_bad_values_are_refused() {
        for (from, to, want) in [
            ("workloads: [register]", "workloads: []", "workloads"),
            ("seeds: 3", "seeds: 0", "seeds"),
            ("time-limit: 15s", "time-limit: soon", "time-limit"),
            ("name: nightly", "name: ../x", "name"),
        ] {
            let e = format!("{:#}", parse(&GOOD.replace(from, to)).unwrap_err());
            assert!(e.contains(want), "{to}: {e}");
        }
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "time-limit: 1s\nbogus: 1\n").unwrap();
        let e = format!("{:#}", load(&p).unwrap_err());
        assert!(
            e.starts_with(&format!("{}: line 2, column 1", p.display())),
            "{e}"
        );
    }
}
