//! Running a campaign's cells: in turn in this process on one cluster (a cluster file, or
//! one temporary local cluster per cell), or, with `--parallel N` and `local:N`, up to N at
//! once, each a `faultline test` child process on its own temporary local cluster (a run's
//! log file and progress bar are the process's own, so parallel runs are processes). A
//! progress bar counts cells done, running and failed; Ctrl-C lets the running cells stop,
//! heal and be checked as any run does, and starts no further cell.

use super::report::{CellResult, Status};
use super::Planned;
use crate::exit::{internal, Failure};
use crate::index::Index;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use workloads::Registry;

/// Runs every cell and returns their results, in the cells' order.
pub fn all(
    runs: &[Planned],
    store: &Path,
    id: &str,
    cluster: &str,
    parallel: Option<usize>,
    registry: &Registry,
) -> Result<Vec<CellResult>, Failure> {
    // Installs the Ctrl-C handler now, so that Ctrl-C between cells stops the campaign.
    let _ = crate::run::interrupted();
    let progress = Progress::new(runs.len());
    let local = cluster.starts_with("local:");
    let parallel = parallel.unwrap_or_else(default_parallel).max(1);
    if parallel > 1 && !local {
        eprintln!(
            "--parallel {parallel}: cells share the cluster {cluster}, so they run one at a time"
        );
    }
    let results = if parallel > 1 && local {
        in_children(runs, store, id, parallel, &progress)?
    } else {
        runs.iter()
            .map(|p| {
                if crate::run::interrupted() {
                    return CellResult::not_run(&p.cell);
                }
                progress.start(&p.cell.id());
                let outcome = progress
                    .bar
                    .suspend(|| crate::test_cmd::run_with(&p.args, registry));
                let r = result_of(
                    store,
                    id,
                    &p.cell,
                    outcome.err().map(|e| match e {
                        Failure::BadInput(e) | Failure::Internal(e) => format!("{e:#}"),
                    }),
                );
                progress.done(&r);
                r
            })
            .collect()
    };
    progress.bar.finish_and_clear();
    Ok(results)
}

/// What this machine runs at once by default: a cell per 2 cores and 2 GiB of memory.
fn default_parallel() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        })
        .map_or(2, |kib| kib >> 20);
    (cores / 2).min(mem_gib / 2).max(1)
}

/// The cells as child processes, `parallel` at a time; each child's output goes to
/// `STORE/campaigns/ID/logs/N.log`.
fn in_children(
    runs: &[Planned],
    store: &Path,
    id: &str,
    parallel: usize,
    progress: &Progress,
) -> Result<Vec<CellResult>, Failure> {
    let exe = std::env::current_exe().map_err(internal)?;
    let logs = store.join("campaigns").join(id).join("logs");
    std::fs::create_dir_all(&logs).map_err(internal)?;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CellResult>>> = Mutex::new(vec![None; runs.len()]);
    std::thread::scope(|s| {
        for _ in 0..parallel.min(runs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(p) = runs.get(i) else { break };
                let r = if crate::run::interrupted() {
                    CellResult::not_run(&p.cell)
                } else {
                    progress.start(&p.cell.id());
                    let error = child(&exe, &p.argv, &logs.join(format!("{}.log", i + 1)));
                    let r = result_of(store, id, &p.cell, error);
                    progress.done(&r);
                    r
                };
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(results
        .into_iter()
        .zip(runs)
        .map(|(r, p)| r.unwrap_or_else(|| CellResult::not_run(&p.cell)))
        .collect())
}

/// Runs `faultline test ARGV` with its output in `log`; the error, if it exited 254 or
/// 255 (its verdict is read from the store).
fn child(exe: &Path, argv: &[String], log: &Path) -> Option<String> {
    let out = match std::fs::File::create(log) {
        Ok(f) => f,
        Err(e) => return Some(format!("{}: {e}", log.display())),
    };
    let err = match out.try_clone() {
        Ok(f) => f,
        Err(e) => return Some(format!("{}: {e}", log.display())),
    };
    let status = std::process::Command::new(exe)
        .args(argv)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .status();
    match status {
        Ok(s) if matches!(s.code(), Some(254 | 255) | None) => {
            Some(format!("faultline test exited {s} (see {})", log.display()))
        }
        Ok(_) => None,
        Err(e) => Some(format!("cannot run {}: {e}", exe.display())),
    }
}

/// A cell's result: its run's row in the index (the newest run of the cell in this
/// campaign), or the error that kept it from being checked.
fn result_of(store: &Path, id: &str, cell: &super::Cell, error: Option<String>) -> CellResult {
    let row = Index::open(store).and_then(|i| i.cell(id, &cell.id()));
    match row {
        Ok(Some(row)) => CellResult::of_row(cell, &row, error),
        Ok(None) => CellResult::failed(cell, error.unwrap_or_else(|| "no run was made".into())),
        Err(e) => CellResult::failed(
            cell,
            format!(
                "{}the store's index: {e:#}",
                error.map(|e| e + "; ").unwrap_or_default()
            ),
        ),
    }
}

/// The campaign's progress bar (drawn only on a terminal; otherwise a line per cell).
struct Progress {
    bar: ProgressBar,
    running: AtomicUsize,
    failed: AtomicUsize,
}

impl Progress {
    fn new(cells: usize) -> Progress {
        use std::io::IsTerminal;
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(cells as u64), target);
        bar.set_style(
            ProgressStyle::with_template("campaign [{bar:30}] {pos}/{len} cells done, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Progress {
            bar,
            running: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        }
    }

    fn say(&self, line: String) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    fn message(&self) {
        self.bar.set_message(format!(
            "{} running, {} failed",
            self.running.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst)
        ));
    }

    fn start(&self, cell: &str) {
        self.running.fetch_add(1, Ordering::SeqCst);
        self.message();
        self.say(format!("== cell {cell}: starting"));
    }

    fn done(&self, r: &CellResult) {
        self.running.fetch_sub(1, Ordering::SeqCst);
        if r.status != Status::Valid {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        self.bar.inc(1);
        self.message();
        self.say(format!("== cell {}: {}", r.id, r.status.as_str()));
    }
}
