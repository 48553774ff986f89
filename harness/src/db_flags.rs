//! The database options on the command line, declared once and shared by `faultline test`
//! and `faultline db`: `--db-opt KEY=VALUE` and the shorthands for the options several
//! databases have (`--db-install`, `--db-binary`, `--read-mode`, `--isolation`,
//! `--consistency`). They become one map of options by name, which the database then parses
//! into its own typed configuration ([`workloads::DatabaseKind::configure`]), so a database
//! without the option refuses its shorthand.

use anyhow::{anyhow, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use workloads::DbOptions;

/// The database options of `faultline test` and `faultline db`.
#[derive(Debug, Args, Clone, Default)]
pub struct DbOptionArgs {
    /// A database option, KEY=VALUE (repeatable); each database documents its own (`faultline
    /// test --help` lists them: etcd install, binary, read-mode; postgres install, isolation,
    /// replicas, reads, consistency; ...). Validated by the database and recorded in
    /// test.yaml. `faultline db` without options uses those its last install or start
    /// recorded.
    #[arg(long, value_name = "KEY=VALUE")]
    pub db_opt: Vec<String>,
    /// How to install the database: etcd auto (the node's own, else upload this machine's
    /// binary), upload or package (the node's apt) [default: auto]; the SQL databases auto
    /// (the node's own, else its apt), package or never. Same as --db-opt install=...
    #[arg(long)]
    pub db_install: Option<String>,
    /// etcd: a binary to upload instead of this machine's. Same as --db-opt binary=...
    #[arg(long)]
    pub db_binary: Option<PathBuf>,
    /// etcd: reads are linearizable (etcd's default) or serializable (served by the node
    /// alone) [default: linearizable]. Same as --db-opt read-mode=...
    #[arg(long, value_parser = ["linearizable", "serializable"])]
    pub read_mode: Option<String>,
    /// The SQL databases: the isolation level of every transaction: read-committed,
    /// repeatable-read or serializable [default: the database's own, e.g. serializable for
    /// postgres]. Refused by a database without isolation levels. Same as --db-opt
    /// isolation=...
    #[arg(long, value_parser = ["read-committed", "repeatable-read", "serializable"])]
    pub isolation: Option<String>,
    /// The model a transactional workload's history is checked against, as in `faultline
    /// check` [default: what the database's isolation level promises, e.g. snapshot-isolation
    /// for PostgreSQL's repeatable read]. Refused by a database without it. Same as --db-opt
    /// consistency=...
    #[arg(long, value_parser = ["read-committed", "repeatable-read", "snapshot-isolation", "serializable", "strict-serializable"])]
    pub consistency: Option<String>,
}

impl DbOptionArgs {
    /// The options given, by name. An option given twice with different values
    /// (`--db-opt read-mode=serializable --read-mode linearizable`) is refused, naming both
    /// flags, and so is faultline's own (internal) option `definition-sha256`.
    pub fn given(&self) -> anyhow::Result<DbOptions> {
        let mut given = Given::default();
        for kv in &self.db_opt {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("--db-opt {kv:?}: expected KEY=VALUE"))?;
            let k = k.trim();
            if workloads::adapter::definition::INTERNAL_OPTIONS.contains(&k) {
                bail!(
                    "--db-opt {kv}: {k} is faultline's own option, not one to set: a run records \
                     the definition file's SHA-256 there in test.yaml, so that --replay runs the \
                     same file"
                );
            }
            given.set(k, v, format!("--db-opt {kv}"))?;
        }
        let binary = self.db_binary.as_ref().map(|b| b.display().to_string());
        for (key, flag, value) in [
            ("install", "--db-install", self.db_install.as_deref()),
            ("binary", "--db-binary", binary.as_deref()),
            ("read-mode", "--read-mode", self.read_mode.as_deref()),
            ("isolation", "--isolation", self.isolation.as_deref()),
            ("consistency", "--consistency", self.consistency.as_deref()),
        ] {
            if let Some(v) = value {
                given.set(key, v, format!("{flag} {v}"))?;
            }
        }
        Ok(given.options)
    }
}

/// Database options being gathered from the command line, each with the flag that gave it.
#[derive(Default)]
struct Given {
    options: DbOptions,
    from: BTreeMap<String, String>,
}

impl Given {
    /// Sets `key` to `value`, given by `flag`; refused when an earlier flag gave it another
    /// value (the same value twice is no contradiction).
    fn set(&mut self, key: &str, value: &str, flag: String) -> anyhow::Result<()> {
        match self.options.get(key) {
            Some(old) if old != value => bail!(
                "{} and {flag} contradict each other (both set the database option {key}): give it once",
                self.from.get(key).map_or("an earlier option", String::as_str)
            ),
            Some(_) => {}
            None => {
                self.options.insert(key.to_string(), value.to_string());
                self.from.insert(key.to_string(), flag);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn given(args: &[&str]) -> anyhow::Result<DbOptions> {
        #[derive(Parser)]
        struct W {
            #[command(flatten)]
            o: DbOptionArgs,
        }
        let w = W::try_parse_from(std::iter::once("x").chain(args.iter().copied()))?;
        w.o.given()
    }

    #[test]
    fn shorthands_and_db_opts_make_one_map_and_contradictions_are_refused() {
        let o = given(&["--db-opt", "replicas=2", "--isolation", "read-committed"]).unwrap();
        assert_eq!(o["replicas"], "2");
        assert_eq!(o["isolation"], "read-committed");
        // The same value twice is fine; two values are refused, naming both flags.
        assert!(given(&[
            "--db-opt",
            "read-mode=serializable",
            "--read-mode",
            "serializable"
        ])
        .is_ok());
        let e = given(&[
            "--db-opt",
            "isolation=serializable",
            "--isolation",
            "read-committed",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--db-opt isolation=serializable and --isolation read-committed contradict"),
            "{e}"
        );
        let e = given(&["--db-opt", "definition-sha256=ab"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("faultline's own option"), "{e}");
        let e = given(&["--db-opt", "replicas"]).unwrap_err().to_string();
        assert!(e.contains("expected KEY=VALUE"), "{e}");
    }

    /// `faultline db` takes the same flags as `faultline test` (it had no `--isolation`).
    #[test]
    fn db_commands_take_the_same_flags_as_test() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "faultline",
            "db",
            "start",
            "--cluster",
            "c.yaml",
            "--db",
            "postgres",
            "--isolation",
            "read-committed",
            "--consistency",
            "read-committed",
        ])
        .unwrap();
        let crate::cli::Command::Db(crate::cli::DbCommand::Start(args)) = cli.command else {
            panic!("not db start");
        };
        let o = args.db.db_options.given().unwrap();
        assert_eq!(o["isolation"], "read-committed");
        assert_eq!(o["consistency"], "read-committed");
    }
}
