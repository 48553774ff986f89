//! The scheduler: one tokio task per worker, each bound to a client (and so a node), taking
//! ops from a shared generator. Each op's invoke is recorded (and flushed) before the client
//! is called; an op with no answer within the timeout completes as `info`, and its worker
//! continues as a new process (`p + concurrency`), as DESIGN.md says.

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
    /// Where ops come from.
    pub generator: &'a Mutex<Box<dyn Gen>>,
    /// Where the history goes.
    pub recorder: &'a Recorder,
    /// When the workload started (the generator's clock).
    pub start: Instant,
    /// How long an op may take before it completes as `info`.
    pub op_timeout: Duration,
    /// Set to stop every worker after its current op.
    pub stop: &'a AtomicBool,
}

/// Runs the workers until the generator is done or `stop` is set.
pub fn run(w: Workers<'_>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let concurrency = w.clients.len() as u64;
    rt.block_on(async {
        let tasks =
            w.clients.iter().enumerate().map(|(i, (node, client))| {
                worker(i, concurrency, client.clone(), node.clone(), &w)
            });
        let results = futures::future::join_all(tasks).await;
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        Ok(())
    })
}

async fn worker(
    index: usize,
    concurrency: u64,
    client: Arc<dyn Client>,
    node: String,
    w: &Workers<'_>,
) -> anyhow::Result<()> {
    let mut process = index as u64;
    loop {
        if w.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
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
                // Short naps, so that a stop is noticed.
                let until = (w.start + t).min(Instant::now() + Duration::from_millis(100));
                tokio::time::sleep_until(until.into()).await;
                continue;
            }
            Next::Done => return Ok(()),
        };
        w.recorder.invoke(process, &op, &node)?;
        let outcome = match tokio::time::timeout(
            w.op_timeout + Duration::from_millis(500),
            client.invoke(&op),
        )
        .await
        {
            Ok(o) => o,
            Err(_) => Outcome::info(
                op.value.clone(),
                format!("no answer within {:?}", w.op_timeout),
            ),
        };
        w.recorder.complete(process, &op, &outcome, &node)?;
        if outcome.kind == checkers::history::EventKind::Info {
            // The op may still take effect: this process is never used again.
            process += concurrency;
        }
    }
}
