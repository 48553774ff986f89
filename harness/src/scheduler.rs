//! The scheduler: one tokio task per worker, each bound to a client (and so a node), taking
//! ops from a shared generator. Each op's invoke is recorded (and flushed) before the client
//! is called; an op with no answer within the timeout completes as `info`, and its worker
//! continues as a new process (`p + concurrency`), as DESIGN.md says. The generator is told
//! every outcome ([`Gen::update`]), so that final reads retry until they succeed.

use crate::recorder::Recorder;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use workloads::gen::{Ctx, Gen, Next};
use workloads::{Client, Op, Outcome};

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
///
/// One dispatcher asks the generator for ops and hands each to the worker that has been free
/// longest (a FIFO of free workers), so every worker, and so every node, gets ops in
/// proportion at any rate: at a low rate the workers take turns, at saturation whoever
/// finishes first is next. (Letting every free worker poll the generator instead gives nearly
/// every op of a rate-limited generator to whichever task the runtime wakes first.)
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
    let shared = Shared::default();
    rt.block_on(async {
        let (free_tx, free_rx) = mpsc::unbounded_channel::<usize>();
        let mut inboxes = Vec::with_capacity(w.clients.len());
        let tasks = w.clients.iter().enumerate().map(|(i, (node, client))| {
            let (op_tx, op_rx) = mpsc::channel::<Op>(1);
            inboxes.push(op_tx);
            worker(
                Seat {
                    index: i,
                    process: w.processes[i],
                    concurrency,
                    free: free_tx.clone(),
                    inbox: op_rx,
                },
                client.clone(),
                node.clone(),
                &w,
                &shared,
            )
        });
        let tasks: Vec<_> = tasks.collect();
        drop(free_tx);
        let (_, results) = futures::future::join(
            dispatch(free_rx, inboxes, &w, &shared),
            futures::future::join_all(tasks),
        )
        .await;
        results.into_iter().collect::<anyhow::Result<Vec<u64>>>()
    })
}

/// What the dispatcher and the workers share: a wake-up for the dispatcher whenever a worker
/// told the generator an outcome (so a generator waiting on one, as final ops do, is asked
/// again at once), and whether a worker failed (its op's outcome never reaches the
/// generator, which could then wait for it forever).
#[derive(Default)]
struct Shared {
    progress: tokio::sync::Notify,
    failed: AtomicBool,
}

/// Hands ops to free workers, longest free first, until the generator is done, `stop` is
/// set, a worker failed, or every worker has ended. Dropping the inboxes at the end tells the
/// workers to end.
async fn dispatch(
    mut free: mpsc::UnboundedReceiver<usize>,
    inboxes: Vec<mpsc::Sender<Op>>,
    w: &Workers<'_>,
    shared: &Shared,
) {
    'workers: while let Some(index) = free.recv().await {
        loop {
            if w.stop.load(Ordering::SeqCst) || shared.failed.load(Ordering::SeqCst) {
                break 'workers;
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
            match next {
                Next::Op(op) => {
                    // A worker that ended (its recorder failed) no longer takes ops.
                    let _ = inboxes[index].send(op).await;
                    break;
                }
                Next::WaitUntil(t) => {
                    let until = (w.start + t).min(Instant::now() + Duration::from_millis(100));
                    tokio::select! {
                        () = tokio::time::sleep_until(until.into()) => {}
                        () = shared.progress.notified() => {}
                    }
                }
                Next::Done => break 'workers,
            }
        }
    }
}

/// A worker's place at the dispatcher: its index, its process number now, where it says it
/// is free and where its ops arrive.
struct Seat {
    index: usize,
    process: u64,
    concurrency: u64,
    free: mpsc::UnboundedSender<usize>,
    inbox: mpsc::Receiver<Op>,
}

async fn worker(
    seat: Seat,
    client: Arc<dyn Client>,
    node: String,
    w: &Workers<'_>,
    shared: &Shared,
) -> anyhow::Result<u64> {
    let result = work(seat, client, node, w, shared).await;
    if result.is_err() {
        shared.failed.store(true, Ordering::SeqCst);
        shared.progress.notify_one();
    }
    result
}

async fn work(
    mut seat: Seat,
    client: Arc<dyn Client>,
    node: String,
    w: &Workers<'_>,
    shared: &Shared,
) -> anyhow::Result<u64> {
    loop {
        if w.stop.load(Ordering::SeqCst) {
            return Ok(seat.process);
        }
        // Outside the op's timeout: e.g. an adapter client (re)starts its process.
        client.prepare().await;
        if seat.free.send(seat.index).is_err() {
            return Ok(seat.process);
        }
        let Some(op) = seat.inbox.recv().await else {
            return Ok(seat.process);
        };
        let process = seat.process;
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
            worker: seat.index,
        };
        w.generator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(&op, &outcome, &ctx);
        shared.progress.notify_one();
        if outcome.kind == checkers::history::EventKind::Info {
            seat.process += seat.concurrency;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::{concurrency, Concurrency};
    use futures::future::BoxFuture;
    use workloads::gen::{Source, Stagger, TimeLimit};
    use workloads::workload::OpStream;

    /// Answers every op after `delay`.
    struct Sleepy(Duration);

    impl Client for Sleepy {
        fn invoke<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Outcome> {
            Box::pin(async move {
                tokio::time::sleep(self.0).await;
                Outcome::ok(op.value())
            })
        }
    }

    struct Reads;

    impl OpStream for Reads {
        fn next_op(&mut self) -> Op {
            Op::ReadSet
        }
    }

    /// Runs `workers` workers on 3 nodes for `secs` seconds, at about one op per `gap`
    /// (none: as fast as they go), and measures the history.
    fn measure(workers: usize, gap: Option<Duration>, delay: Duration, secs: u64) -> Concurrency {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.jsonl");
        let start = Instant::now();
        let recorder = Recorder::create(&path, start).expect("recorder");
        let limit = Duration::from_secs(secs);
        let source = Source::new(Box::new(Reads));
        let g: Box<dyn Gen> = match gap {
            Some(gap) => Box::new(TimeLimit::new(limit, Stagger::new(gap, 7, source))),
            None => Box::new(TimeLimit::new(limit, source)),
        };
        let generator = Mutex::new(g);
        let stop = AtomicBool::new(false);
        let client: Arc<dyn Client> = Arc::new(Sleepy(delay));
        run(Workers {
            clients: (0..workers)
                .map(|i| (format!("n{}", i % 3 + 1), client.clone()))
                .collect(),
            processes: first_processes(workers),
            generator: &generator,
            recorder: &recorder,
            start,
            op_timeout: Duration::from_secs(5),
            stop: &stop,
        })
        .expect("run");
        drop(recorder);
        concurrency(workers as u64, &history(&path))
    }

    fn history(path: &std::path::Path) -> Vec<checkers::history::Event> {
        checkers::read::open(path, checkers::read::Format::Jsonl)
            .expect("open history")
            .map(|e| e.expect("history line").event)
            .collect()
    }

    #[test]
    fn at_the_default_rate_every_worker_gets_a_fair_share() {
        // 100 ops/s (the default rate) over 10 workers answering at once.
        let c = measure(10, Some(Duration::from_millis(10)), Duration::ZERO, 3);
        let total: u64 = c.ops_per_worker.iter().sum();
        assert!(total > 150, "{c:?}");
        let (min, max) = c.worker_share_range();
        assert!(min >= 0.5 && max <= 2.0, "shares {min:.2}..{max:.2}: {c:?}");
        for n in ["n1", "n2", "n3"] {
            assert!(c.ops_per_node[n] * 5 >= total, "{n}: {c:?}");
        }
    }

    #[test]
    fn at_saturation_the_workers_are_all_busy() {
        let c = measure(10, None, Duration::from_millis(20), 2);
        assert!(c.mean_in_flight >= 8.0, "{c:?}");
        let (min, max) = c.worker_share_range();
        assert!(min >= 0.5 && max <= 2.0, "shares {min:.2}..{max:.2}: {c:?}");
    }

    #[test]
    fn final_ops_run_side_by_side_and_each_once_it_succeeds() {
        use checkers::history::{EventKind, Key};
        use workloads::gen::UntilOk;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.jsonl");
        let start = Instant::now();
        let recorder = Recorder::create(&path, start).expect("recorder");
        let reads: Vec<Op> = (0..100).map(|k| Op::Read { key: Key::Int(k) }).collect();
        let g: Box<dyn Gen> = Box::new(UntilOk::new(
            reads,
            Duration::from_secs(1),
            Duration::from_secs(60),
        ));
        let generator = Mutex::new(g);
        let stop = AtomicBool::new(false);
        let client: Arc<dyn Client> = Arc::new(Sleepy(Duration::from_millis(20)));
        run(Workers {
            clients: (0..10).map(|i| (format!("n{i}"), client.clone())).collect(),
            processes: first_processes(10),
            generator: &generator,
            recorder: &recorder,
            start,
            op_timeout: Duration::from_secs(5),
            stop: &stop,
        })
        .expect("run");
        drop(recorder);
        let events = history(&path);
        let oks: std::collections::BTreeSet<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::Ok)
            .filter_map(|e| e.key.clone())
            .collect();
        assert_eq!(oks.len(), 100);
        let c = concurrency(10, &events);
        assert!(c.mean_in_flight >= 5.0, "{c:?}");
    }
}
