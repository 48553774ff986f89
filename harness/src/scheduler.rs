//! The scheduler: one tokio task per worker, each bound to a client (and so a node), taking
//! ops from a shared generator. Each op's invoke is recorded (and flushed) before the client
//! is called; an op with no answer within the timeout completes as `info`, and its worker
//! continues as a new process (`p + concurrency`), as DESIGN.md says. The generator is told
//! every outcome ([`Gen::update`]), so that final reads retry until they succeed.

use crate::recorder::Recorder;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workloads::gen::{Ctx, Gen, Next};
use workloads::{Client, Outcome};

/// What the workers share.
pub struct Workers<'a> {
    /// One (node, client) per worker.
    pub clients: Vec<(String, Arc<dyn Client>)>,
    /// Each worker's process number now (`0..concurrency` for a fresh run; what an earlier
    /// [`run`] returned for a later phase).
    pub processes: Vec<u64>,
    /// Where ops come from.
    pub generator: &'a Mutex<Box<dyn Gen>>,
    /// Where the history goes.
    pub recorder: &'a Recorder,
    /// When the phase started (the generator's clock).
    pub start: Instant,
    /// How long an op may take before it completes as `info`.
    pub op_timeout: Duration,
    /// Set to stop every worker after its current op.
    pub stop: &'a AtomicBool,
}

/// Each worker's first process number: `0..concurrency`.
pub fn first_processes(concurrency: usize) -> Vec<u64> {
    (0..concurrency as u64).collect()
}

/// Runs the workers until the generator is done or `stop` is set; returns each worker's
/// process number at the end (for a later phase on the same history).
pub fn run(w: Workers<'_>) -> anyhow::Result<Vec<u64>> {
    anyhow::ensure!(
        w.processes.len() == w.clients.len(),
        "{} process numbers for {} workers",
        w.processes.len(),
        w.clients.len()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let concurrency = w.clients.len() as u64;
    rt.block_on(async {
        let tasks = w.clients.iter().enumerate().map(|(i, (node, client))| {
            worker(
                i,
                w.processes[i],
                concurrency,
                client.clone(),
                node.clone(),
                &w,
            )
        });
        let results = futures::future::join_all(tasks).await;
        results.into_iter().collect::<anyhow::Result<Vec<u64>>>()
    })
}

async fn worker(
    index: usize,
    mut process: u64,
    concurrency: u64,
    client: Arc<dyn Client>,
    node: String,
    w: &Workers<'_>,
) -> anyhow::Result<u64> {
    loop {
        if w.stop.load(Ordering::SeqCst) {
            return Ok(process);
        }
        // Outside the op's timeout: e.g. an adapter client (re)starts its process.
        client.prepare().await;
        let ctx = Ctx {
            elapsed: w.start.elapsed(),
            worker: index,
        };
        let next = w
            .generator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next(&ctx);
        let op = match next {
            Next::Op(op) => op,
            Next::WaitUntil(t) => {
                let until = (w.start + t).min(Instant::now() + Duration::from_millis(100));
                tokio::time::sleep_until(until.into()).await;
                continue;
            }
            Next::Done => return Ok(process),
        };
        w.recorder.invoke(process, &op, &node)?;
        let outcome = match tokio::time::timeout(
            w.op_timeout + Duration::from_millis(500),
            client.invoke(&op),
        )
        .await
        {
            Ok(o) => o,
            Err(_) => Outcome::info(op.value(), format!("no answer within {:?}", w.op_timeout)),
        };
        w.recorder.complete(process, &op, &outcome, &node)?;
        let ctx = Ctx {
            elapsed: w.start.elapsed(),
            worker: index,
        };
        w.generator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(&op, &outcome, &ctx);
        if outcome.kind == checkers::history::EventKind::Info {
            process += concurrency;
        }
    }
}
