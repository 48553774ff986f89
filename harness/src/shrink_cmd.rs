//! `faultline shrink RUN`: a smaller reproduction of a failing run. The search is
//! [`crate::shrink`]'s; here each candidate becomes a plan file (`RUN/shrink/candidates/`)
//! run through `faultline test --config FILE --test-count TRIES` in this process
//! ([`crate::test_cmd::run_with`], as campaigns run their cells), tagged in the store's index
//! with the shrink (`--campaign-cell shrink-TEST-TIME::cN`), where its runs and verdicts are
//! then read. After every candidate the state (`RUN/shrink/state.json`, written atomically),
//! steps.md and the smallest plan so far (`RUN/shrink/test.yaml`) are written, so that the
//! same command continues a shrink that a budget, Ctrl-C or a crash stopped.

use crate::cli::ShrinkArgs;
use crate::exit::{bad_input, internal, Exit, Failure};
use crate::index::{Index, Outcome as RunOutcome, RunRow};
use crate::plan::TestPlan;
use crate::shrink::{self, Candidate, Outcome, Search, Tested, TryRun};
use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use workloads::Registry;

/// The failing run and what its shrink needs of it.
struct Target {
    /// The run's directory.
    run: PathBuf,
    /// The run relative to its store (`TEST/TIME`).
    rel: String,
    /// Its plan.
    plan: TestPlan,
    /// Its anomalies by type: a candidate reproduces with one of these types.
    anomalies: BTreeMap<String, u64>,
    /// Where candidates are stored.
    store: PathBuf,
    /// Where candidates run.
    cluster: String,
    /// The tag of the shrink's runs in the index (`shrink-TEST-TIME`).
    tag: String,
}

impl Target {
    /// Reads RUN and refuses one that is not invalid.
    fn load(args: &ShrinkArgs) -> anyhow::Result<Target> {
        let run = std::fs::canonicalize(&args.run)
            .with_context(|| format!("RUN {}", args.run.display()))?;
        let (Some(time), Some(test)) = (run.file_name(), run.parent().and_then(Path::file_name))
        else {
            bail!("RUN {}: expected STORE/TEST/TIME", run.display());
        };
        let rel = format!("{}/{}", test.to_string_lossy(), time.to_string_lossy());
        let own_store = run
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| anyhow!("RUN {}: expected STORE/TEST/TIME", run.display()))?;
        let row = RunRow::from_dir(own_store, &rel)?;
        if row.outcome != RunOutcome::Invalid {
            bail!(
                "{} is {}, not invalid: shrink needs a run that found a violation",
                run.display(),
                row.outcome.as_str()
            );
        }
        let plan = TestPlan::load(&run)?;
        let tag = format!("shrink-{}", rel.replace('/', "-"));
        Ok(Target {
            cluster: args.cluster.clone().unwrap_or_else(|| plan.cluster.clone()),
            store: args
                .store
                .clone()
                .unwrap_or_else(|| own_store.to_path_buf()),
            anomalies: row.anomalies,
            run,
            rel,
            plan,
            tag,
        })
    }

    /// The shrink's directory, `RUN/shrink`.
    fn dir(&self) -> PathBuf {
        self.run.join("shrink")
    }

    /// The original's violation, for people: `invalid (nonlinearizable: 3)`.
    fn violation(&self) -> String {
        verdict_text(RunOutcome::Invalid, &self.anomalies)
    }

    /// Whether a candidate's run shows the original's violation: invalid, with one of its
    /// anomaly types (any, when the original's results name none).
    fn reproduces(&self, row: &RunRow) -> bool {
        row.outcome == RunOutcome::Invalid
            && (self.anomalies.is_empty()
                || row.anomalies.keys().any(|k| self.anomalies.contains_key(k)))
    }
}

/// A verdict with its anomalies: `invalid (nonlinearizable: 3)`.
fn verdict_text(outcome: RunOutcome, anomalies: &BTreeMap<String, u64>) -> String {
    if anomalies.is_empty() {
        return outcome.as_str().to_string();
    }
    let list: Vec<String> = anomalies.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    format!("{} ({})", outcome.as_str(), list.join(", "))
}

/// `RUN/shrink/state.json`.
#[derive(Serialize, Deserialize)]
struct State {
    /// The run shrunk (`TEST/TIME`).
    run: String,
    /// The search.
    search: Search,
}

/// Runs `faultline shrink`.
pub fn run(args: &ShrinkArgs, registry: &Registry) -> Result<Exit, Failure> {
    let target = Target::load(args).map_err(bad_input)?;
    let dir = target.dir();
    std::fs::create_dir_all(dir.join("candidates")).map_err(internal)?;
    let mut search = match load_state(&dir).map_err(bad_input)? {
        Some(s) => {
            eprintln!(
                "resuming the shrink of {}: {} tried, at {}; best so far: {}",
                target.rel,
                shrink::candidates(s.trials.len()),
                s.phase_name(),
                s.describe_size(&s.best)
            );
            s
        }
        None => {
            let workload = registry
                .workload(&target.plan.workload)
                .map_err(bad_input)?;
            let keyed = !matches!(workload.checker(), checkers::check::Checker::Set);
            Search::new(&target.plan, keyed)
        }
    };
    eprintln!(
        "shrinking {} ({}): {}; up to {} tries per candidate (seed {} first, then the next \
         ones), on {}, runs in {}, budget {}",
        target.rel,
        target.violation(),
        search.describe_size(&search.original),
        args.tries,
        target.plan.seed,
        target.cluster,
        target.store.display(),
        humantime::format_duration(args.budget)
    );
    // Installs the Ctrl-C handler: a Ctrl-C between candidates stops the shrink too.
    let _ = crate::run::interrupted();
    let runner = Runner {
        target: &target,
        args,
        registry,
        began: Instant::now(),
        longest: Cell::new(Duration::ZERO),
        stopped: RefCell::new(None),
        said: Cell::new(search.trials.len()),
    };
    let finished = shrink::drive(
        &mut search,
        || runner.may_start(),
        |s, c, cell| runner.test(s, c, cell),
        |s| runner.save(s),
    );
    runner.save(&search);
    let stopped = runner.stopped.into_inner();
    if let Some(Stopped::Failed(f)) = stopped {
        return Err(f);
    }
    Ok(conclude(&target, &search, finished, stopped.as_ref(), args))
}

/// Why the search stopped before its end.
enum Stopped {
    /// The budget was spent.
    Budget,
    /// Ctrl-C.
    Interrupted,
    /// A candidate could not run for a reason that every other would share (bad usage, a
    /// held cluster, the index).
    Failed(Failure),
}

/// Runs candidates and saves the shrink's files.
struct Runner<'a> {
    target: &'a Target,
    args: &'a ShrinkArgs,
    registry: &'a Registry,
    /// When this invocation began (the budget counts from it).
    began: Instant,
    /// The longest a candidate took so far: one is not started unless it fits the budget.
    longest: Cell<Duration>,
    stopped: RefCell<Option<Stopped>>,
    /// Trials already printed.
    said: Cell<usize>,
}

impl Runner<'_> {
    /// Runs one candidate, `--tries` times at most, and reads its verdict from the index.
    fn test(&self, search: &Search, candidate: &Candidate, cell: &str) -> Tested {
        let t = self.target;
        eprintln!(
            "== {cell} ({}): {}",
            search.phase_name(),
            search.describe(&candidate.change)
        );
        let began = Instant::now();
        let outcome = self
            .write_candidate(search, candidate, cell)
            .map_err(internal)
            .and_then(|file| self.test_args(&file, cell).map_err(bad_input))
            .and_then(|a| crate::test_cmd::run_with(&a, self.registry));
        self.longest.set(self.longest.get().max(began.elapsed()));
        if crate::run::interrupted() {
            *self.stopped.borrow_mut() = Some(Stopped::Interrupted);
            return Tested::Stop;
        }
        let error = match outcome {
            Err(Failure::BadInput(e)) => {
                *self.stopped.borrow_mut() = Some(Stopped::Failed(bad_input(e)));
                return Tested::Stop;
            }
            Err(Failure::Internal(e)) => Some(format!("{e:#}")),
            Ok(_) => None,
        };
        let rows = match self.rows(cell) {
            Ok(rows) => rows,
            Err(e) => {
                *self.stopped.borrow_mut() = Some(Stopped::Failed(internal(e)));
                return Tested::Stop;
            }
        };
        let reproduced = rows.iter().any(|r| t.reproduces(r));
        let mut runs: Vec<TryRun> = rows
            .iter()
            .map(|r| TryRun {
                seed: r.seed,
                dir: Some(r.dir.clone()),
                verdict: verdict_text(r.outcome, &r.anomalies),
            })
            .collect();
        if let Some(e) = error {
            runs.push(TryRun {
                seed: t.plan.seed,
                dir: None,
                verdict: format!("error: {e}"),
            });
        }
        Tested::Done(reproduced, runs)
    }

    /// Whether another candidate may start: not after Ctrl-C, nor when the longest
    /// candidate so far would overrun the budget (else the reason is kept).
    fn may_start(&self) -> bool {
        let why = if crate::run::interrupted() {
            Stopped::Interrupted
        } else if self.began.elapsed() + self.longest.get() > self.args.budget {
            Stopped::Budget
        } else {
            return true;
        };
        *self.stopped.borrow_mut() = Some(why);
        false
    }

    /// Writes the candidate's plan as `RUN/shrink/candidates/CELL.yaml` (named
    /// `TEST-shrink`, so that its runs are listed together).
    fn write_candidate(
        &self,
        search: &Search,
        candidate: &Candidate,
        cell: &str,
    ) -> anyhow::Result<PathBuf> {
        let t = self.target;
        let mut plan = search.plan(&t.plan, &candidate.size);
        if !plan.name.ends_with("-shrink") {
            plan.name.push_str("-shrink");
        }
        plan.campaign = None;
        let file = t.dir().join("candidates").join(format!("{cell}.yaml"));
        let text = crate::yaml_text::to_string(&plan)?;
        write_atomically(&file, &text)?;
        Ok(file)
    }

    /// `faultline test --config FILE ...` for a candidate.
    fn test_args(&self, file: &Path, cell: &str) -> anyhow::Result<crate::cli::TestArgs> {
        let t = self.target;
        let argv: Vec<String> = vec![
            "faultline".into(),
            "test".into(),
            "--cluster".into(),
            t.cluster.clone(),
            "--config".into(),
            file.display().to_string(),
            "--store".into(),
            t.store.display().to_string(),
            "--test-count".into(),
            self.args.tries.to_string(),
            "--campaign-cell".into(),
            format!("{}::{cell}", t.tag),
        ];
        match <crate::cli::Cli as clap::Parser>::try_parse_from(argv) {
            Ok(crate::cli::Cli {
                command: crate::cli::Command::Test(a),
                ..
            }) => Ok(*a),
            Ok(_) => bail!("not a test command"),
            Err(e) => bail!("{e}"),
        }
    }

    /// The runs of `cell` in the index, oldest first.
    fn rows(&self, cell: &str) -> anyhow::Result<Vec<RunRow>> {
        let index = Index::open(&self.target.store)?;
        index.select(
            "campaign = ?1 AND cell = ?2 ORDER BY started, dir",
            rusqlite::params![self.target.tag, cell],
        )
    }

    /// Saves state.json, steps.md and the smallest plan, and prints the verdicts not yet
    /// printed.
    fn save(&self, search: &Search) {
        for trial in search.trials.iter().skip(self.said.get()) {
            let runs: Vec<String> = trial
                .runs
                .iter()
                .map(|r| match &r.dir {
                    Some(d) => format!("{} ({d})", r.verdict),
                    None => r.verdict.clone(),
                })
                .collect();
            eprintln!(
                "== {}: {}: {}; best so far: {}",
                trial.cell,
                if trial.reproduced {
                    "reproduced, kept"
                } else {
                    "not reproduced"
                },
                runs.join(", "),
                search.describe_size(&search.best)
            );
        }
        self.said.set(search.trials.len());
        if let Err(e) = save_files(self.target, search, self.args.tries) {
            eprintln!("WARNING: the shrink's state was not saved: {e:#}");
        }
    }
}

/// Writes state.json, steps.md and, once the original reproduced, test.yaml (the smallest
/// plan, under the original's name).
fn save_files(t: &Target, search: &Search, tries: u64) -> anyhow::Result<()> {
    let dir = t.dir();
    let state = State {
        run: t.rel.clone(),
        search: search.clone(),
    };
    write_atomically(
        &dir.join("state.json"),
        &serde_json::to_string_pretty(&state)?,
    )?;
    let header = shrink::steps::Header {
        run: &t.rel,
        violation: &t.violation(),
        tries,
        seed: t.plan.seed,
    };
    write_atomically(
        &dir.join("steps.md"),
        &shrink::steps::markdown(&header, search),
    )?;
    if search.trials.iter().any(|t| t.reproduced) {
        let mut plan = search.plan(&t.plan, &search.best);
        plan.campaign = None;
        write_atomically(&dir.join("test.yaml"), &crate::yaml_text::to_string(&plan)?)?;
    }
    Ok(())
}

/// Reads `DIR/state.json`, if a shrink was started.
fn load_state(dir: &Path) -> anyhow::Result<Option<Search>> {
    let path = dir.join("state.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    let state: State = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a shrink's state (remove it to start again)",
            path.display()
        )
    })?;
    Ok(Some(state.search))
}

/// Writes `text` to `path` through a temporary file, fsynced and renamed over it.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Prints how the shrink ended and returns its exit code.
fn conclude(
    t: &Target,
    search: &Search,
    finished: bool,
    stopped: Option<&Stopped>,
    args: &ShrinkArgs,
) -> Exit {
    let dir = t.dir();
    let how_far = format!(
        "{} tried, now at {}",
        shrink::candidates(search.trials.len()),
        search.phase_name()
    );
    if !finished {
        let why = match stopped {
            Some(Stopped::Interrupted) => "interrupted".to_string(),
            _ => format!(
                "the budget of {} is spent",
                humantime::format_duration(args.budget)
            ),
        };
        eprintln!(
            "stopped: {why} ({how_far}); the state is in {}: run the same command again to \
             continue",
            dir.join("state.json").display()
        );
    }
    let plan = dir.join("test.yaml");
    match search.outcome() {
        Outcome::NotReproduced => {
            eprintln!(
                "the original plan did not reproduce the violation in {} tries: nothing to \
                 shrink (see {})",
                args.tries,
                dir.join("steps.md").display()
            );
            Exit::Unknown
        }
        Outcome::Searching => {
            eprintln!("nothing smaller reproduced yet");
            Exit::Unknown
        }
        outcome => {
            let what = if outcome == Outcome::Minimal {
                "the original is already minimal"
            } else if finished {
                "smallest reproduction"
            } else {
                "smallest reproduction so far"
            };
            eprintln!("{what}: {}", search.describe_size(&search.best));
            eprintln!(
                "plan: {}; steps: {}\nrun it: faultline test --cluster {} --config {}",
                plan.display(),
                dir.join("steps.md").display(),
                t.cluster,
                plan.display()
            );
            Exit::Valid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shrink::Change;

    /// A stored run of 20 s of register with partitions, whose results.json is `results`.
    fn stored_run(store: &Path, results: &str) -> PathBuf {
        let parsed = <crate::cli::Cli as clap::Parser>::try_parse_from([
            "faultline",
            "test",
            "--cluster",
            "local:3",
            "--workload",
            "register",
            "--nemesis",
            "partition",
            "--time-limit",
            "20s",
            "--seed",
            "4",
        ])
        .expect("parse");
        let crate::cli::Command::Test(args) = parsed.command else {
            panic!("not a test")
        };
        let mut plan = crate::plan::make(&args, &Registry::builtin(), 0)
            .expect("plan")
            .plan;
        let run = store.join("etcd-register").join("20260101T000000");
        std::fs::create_dir_all(&run).expect("mkdir");
        plan.write(&run).expect("test.yaml");
        std::fs::write(run.join("results.json"), results).expect("results.json");
        run
    }

    fn shrink_args(run: &Path) -> ShrinkArgs {
        ShrinkArgs {
            run: run.to_path_buf(),
            tries: 2,
            budget: Duration::from_secs(60),
            store: None,
            cluster: None,
        }
    }

    #[test]
    fn only_an_invalid_run_is_shrunk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store");
        let run = stored_run(&store, r#"{"valid": true}"#);
        let e = Target::load(&shrink_args(&run)).err().expect("refused");
        assert!(
            format!("{e:#}").contains("is valid, not invalid: shrink needs a run that found"),
            "{e:#}"
        );
        let e = Target::load(&shrink_args(&store.join("nothing"))).err();
        assert!(format!("{e:?}").contains("nothing"), "{e:?}");
    }

    #[test]
    fn a_candidate_reproduces_with_one_of_the_originals_anomaly_types() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store");
        let run = stored_run(&store, r#"{"valid": false, "anomalies": ["k1", "k2"]}"#);
        let t = Target::load(&shrink_args(&run)).expect("target");
        assert_eq!(t.tag, "shrink-etcd-register-20260101T000000");
        assert_eq!(t.cluster, "local:3");
        assert_eq!(t.store, std::fs::canonicalize(&store).expect("store"));
        assert_eq!(t.violation(), "invalid (nonlinearizable: 2)");
        let mut row = RunRow::from_dir(&t.store, &t.rel).expect("row");
        assert!(t.reproduces(&row));
        row.anomalies = BTreeMap::from([("G2-item".to_string(), 1)]);
        assert!(!t.reproduces(&row), "another violation");
        row.anomalies = BTreeMap::from([("nonlinearizable".to_string(), 1)]);
        row.outcome = RunOutcome::Unknown;
        assert!(!t.reproduces(&row), "unknown is not a reproduction");
    }

    #[test]
    fn the_state_is_saved_and_read_back_and_the_best_plan_written_once_it_reproduced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store");
        let run = stored_run(&store, r#"{"valid": false, "anomalies": ["k1"]}"#);
        let t = Target::load(&shrink_args(&run)).expect("target");
        std::fs::create_dir_all(t.dir()).expect("mkdir");
        assert!(load_state(&t.dir()).expect("none yet").is_none());
        let mut search = Search::new(&t.plan, true);
        assert!(search.faults.len() >= 2, "{:?}", t.plan.schedule);
        save_files(&t, &search, 2).expect("save");
        assert!(
            !t.dir().join("test.yaml").exists(),
            "nothing reproduced yet"
        );
        search.record("c1".into(), true, Vec::new());
        let first = search.pending().expect("a fault candidate");
        assert!(matches!(first.change, Change::Faults { .. }));
        search.record("c2".into(), true, Vec::new());
        save_files(&t, &search, 2).expect("save");
        assert_eq!(load_state(&t.dir()).expect("read"), Some(search.clone()));
        let best = TestPlan::load(&t.dir()).expect("test.yaml");
        assert!(best.explicit_schedule);
        assert_eq!(best.name, "etcd-register");
        assert_eq!(best, search.plan(&t.plan, &search.best));
        let steps = std::fs::read_to_string(t.dir().join("steps.md")).expect("steps.md");
        assert!(steps.contains("| c2 | faults | without #"), "{steps}");
        // A state that is not one is refused, saying how to start again.
        std::fs::write(t.dir().join("state.json"), "{}").expect("write");
        let e = load_state(&t.dir()).expect_err("refused");
        assert!(
            format!("{e:#}").contains("remove it to start again"),
            "{e:#}"
        );
    }
}
