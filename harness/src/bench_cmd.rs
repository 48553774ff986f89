//! `faultline bench-record`: the scheduler and the history recorder at full speed, with an
//! in-process client that answers every op at once (or, with `--adapter`, one client adapter
//! process per worker, to measure the adapter protocol's overhead). Prints recorded ops/s and the process's
//! resident memory as the run goes, to show it stays flat.

use crate::cli::BenchRecordArgs;
use crate::exit::{bad_input, internal, Exit, Failure};
use crate::recorder::Recorder;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workloads::gen::{Gen, Limit, Source};
use workloads::op::BoxFuture;
use workloads::workload::{SetWorkload, Workload, WorkloadOptions};
use workloads::{Client, Op, Outcome};

/// Acknowledges every op at once.
struct NoopClient;

impl Client for NoopClient {
    fn invoke<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { Outcome::ok(op.value()) })
    }
}

/// Resident and peak resident memory of this process, in MiB.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Runs the benchmark.
pub fn run(args: &BenchRecordArgs) -> Result<Exit, Failure> {
    if args.workers == 0 || args.ops == 0 {
        return Err(bad_input(anyhow::anyhow!(
            "--workers and --ops must be positive"
        )));
    }
    // Set adds: every op acknowledged is a valid history for `faultline check --model set`.
    let generator: Mutex<Box<dyn Gen>> = Mutex::new(Box::new(Limit::new(
        args.ops,
        Source::new(SetWorkload.ops(1, &WorkloadOptions::default())),
    )));
    let stop = AtomicBool::new(false);
    let noop: Arc<dyn Client> = Arc::new(NoopClient);
    let mut clients = Vec::new();
    for i in 0..args.workers {
        let client = if args.adapter.is_empty() {
            noop.clone()
        } else {
            let mut init = serde_json::Map::new();
            init.insert("worker".into(), i.into());
            init.insert("workload".into(), "set".into());
            let a = workloads::adapter::AdapterClient::new(workloads::adapter::AdapterSpec {
                argv: args.adapter.clone(),
                cwd: None,
                init,
                stderr: None,
                timeout: Duration::from_secs(5),
                start_timeout: Duration::from_secs(30),
            })
            .map_err(bad_input)?;
            Arc::new(a) as Arc<dyn Client>
        };
        clients.push((format!("n{}", i % 5 + 1), client));
    }
    if !args.adapter.is_empty() {
        // The adapters start (and shake hands) before the clock does.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(internal)?;
        rt.block_on(futures::future::join_all(
            clients
                .iter()
                .map(|(_, c): &(String, Arc<dyn Client>)| c.prepare()),
        ));
    }
    let start = Instant::now();
    let recorder = Recorder::create(&args.out, start).map_err(internal)?;
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut last = (Instant::now(), 0u64);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(200));
                if last.0.elapsed() >= Duration::from_secs(2) {
                    let ops = recorder.counts().ok;
                    let (rss, _) = memory_mib();
                    let rate = (ops - last.1) as f64 / last.0.elapsed().as_secs_f64();
                    eprintln!(
                        "{:>6.1}s {:>11} ops  {:>9.0} ops/s  rss {:>6.1} MiB",
                        start.elapsed().as_secs_f64(),
                        ops,
                        rate,
                        rss
                    );
                    last = (Instant::now(), ops);
                }
            }
        });
        let r = crate::scheduler::run(crate::scheduler::Workers {
            processes: crate::scheduler::first_processes(args.workers),
            clients,
            generator: &generator,
            recorder: &recorder,
            start,
            op_timeout: Duration::from_secs(5),
            stop: &stop,
        });
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        r.map(|_| ())
    })
    .map_err(internal)?;
    let secs = start.elapsed().as_secs_f64();
    let counts = recorder.counts();
    let ops = counts.ok;
    if counts.fail + counts.info > 0 {
        eprintln!(
            "{} ops failed and {} are unknown (not counted)",
            counts.fail, counts.info
        );
    }
    let (rss, peak) = memory_mib();
    println!(
        "{ops} ops by {} workers in {secs:.2} s: {:.0} ops/s recorded ({} history lines); rss {rss:.1} MiB, peak {peak:.1} MiB",
        args.workers,
        ops as f64 / secs,
        ops * 2
    );
    Ok(Exit::Valid)
}
