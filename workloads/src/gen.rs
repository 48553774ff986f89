//! Generators in the spirit of Jepsen's: sources of ops composed with combinators (mix,
//! limit, time limit, stagger for rates, phases, per-worker generators). A generator is pure
//! and deterministic: given the same seed and the same sequence of requests (elapsed time,
//! worker) and outcomes ([`Gen::update`]), it answers the same ops. A run's fault schedule
//! replays from its seed exactly; its ops replay up to what the database answered (keys
//! retire after acknowledged ops, and reads back follow the heals).
//!
//! ```
//! use std::time::Duration;
//! use workloads::gen::{Ctx, Gen, Next, Source, Stagger, TimeLimit};
//! use workloads::workload::{CasRegisterWorkload, Workload, WorkloadOptions};
//! // 60 s of cas-register at about 200 ops/s over all workers:
//! let ops = CasRegisterWorkload.ops(42, &WorkloadOptions::default());
//! let mut g = TimeLimit::new(
//!     Duration::from_secs(60),
//!     Stagger::new(Duration::from_millis(5), 42, Source::new(ops)),
//! );
//! let first = g.next(&Ctx { elapsed: Duration::ZERO, worker: 0 });
//! assert!(matches!(first, Next::Op(_)));
//! let late = g.next(&Ctx { elapsed: Duration::from_secs(61), worker: 0 });
//! assert_eq!(late, Next::Done);
//! ```

use crate::workload::OpStream;
use crate::{Op, Outcome};
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::time::Duration;

/// Who asks, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx {
    /// Time since the workload started.
    pub elapsed: Duration,
    /// The worker asking (0-based).
    pub worker: usize,
}

/// A generator's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Perform this op now.
    Op(Op),
    /// Nothing yet: ask again at this elapsed time.
    WaitUntil(Duration),
    /// Nothing more, ever.
    Done,
}

/// A source of ops.
pub trait Gen: Send {
    /// The next op for `ctx`.
    fn next(&mut self, ctx: &Ctx) -> Next;
    /// Told how an op it gave ended (Jepsen's `update`); most generators ignore it.
    fn update(&mut self, _op: &Op, _outcome: &Outcome, _ctx: &Ctx) {}
}

impl Gen for Box<dyn Gen> {
    fn next(&mut self, ctx: &Ctx) -> Next {
        (**self).next(ctx)
    }
    fn update(&mut self, op: &Op, outcome: &Outcome, ctx: &Ctx) {
        (**self).update(op, outcome, ctx)
    }
}

/// A workload's op stream as a generator (never done).
pub struct Source(Box<dyn OpStream>);

impl Source {
    /// Wraps an op stream.
    pub fn new(ops: Box<dyn OpStream>) -> Source {
        Source(ops)
    }
}

impl Gen for Source {
    fn next(&mut self, _: &Ctx) -> Next {
        Next::Op(self.0.next_op())
    }
    fn update(&mut self, op: &Op, outcome: &Outcome, _: &Ctx) {
        self.0.acknowledged(op, outcome)
    }
}

/// The keys written so far, shared between a [`ReadBack`] generator and the run that reads
/// them back once more at the end.
pub type WrittenKeys =
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<checkers::history::Key>>>;

/// How many keys one heal reads back at most (the most recently first written ones).
pub const READ_BACK_MAX_KEYS: usize = 10_000;

/// How long after a heal a read-back that failed (the database still restarting) is retried.
pub const READ_BACK_RETRY: Duration = Duration::from_secs(30);

/// After every heal, reads back every key written so far (by an op that did not fail; at
/// most [`READ_BACK_MAX_KEYS`]), before any other op of the inner generator, and at no rate
/// limit: acknowledged writes that a fault lost surface as violations while the run goes on,
/// not only at its end. A read that fails is retried a second later, for
/// [`READ_BACK_RETRY`] after the heal, since a restarted database takes a while to answer.
/// Heals are counted by whoever applies them (the run's recorder bumps `heals` for each
/// `stop-KIND` or `heal` it writes).
pub struct ReadBack<G> {
    inner: G,
    heals: std::sync::Arc<std::sync::atomic::AtomicU64>,
    seen: u64,
    read: crate::workload::ReadBackOp,
    written: WrittenKeys,
    /// Reads to do, each not before its time.
    queue: VecDeque<(Op, Duration)>,
    /// Reads given out and not yet answered.
    outstanding: Vec<Op>,
    retry_until: Duration,
    reads_queued: u64,
}

impl<G: Gen> ReadBack<G> {
    /// `inner`, with reads made by `read` of each key written, after each heal counted in
    /// `heals`.
    pub fn new(
        inner: G,
        read: crate::workload::ReadBackOp,
        heals: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        let seen = heals.load(std::sync::atomic::Ordering::SeqCst);
        ReadBack {
            inner,
            heals,
            seen,
            read,
            written: WrittenKeys::default(),
            queue: VecDeque::new(),
            outstanding: Vec::new(),
            retry_until: Duration::ZERO,
            reads_queued: 0,
        }
    }

    /// The keys written so far (shared: it keeps filling while the generator runs).
    pub fn written(&self) -> WrittenKeys {
        self.written.clone()
    }

    /// Reads queued so far (after heals).
    pub fn reads_queued(&self) -> u64 {
        self.reads_queued
    }
}

impl<G: Gen> Gen for ReadBack<G> {
    fn next(&mut self, ctx: &Ctx) -> Next {
        let heals = self.heals.load(std::sync::atomic::Ordering::SeqCst);
        if heals != self.seen {
            self.seen = heals;
            let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
            let skip = written.len().saturating_sub(READ_BACK_MAX_KEYS);
            self.queue = written
                .iter()
                .skip(skip)
                .map(|k| ((self.read)(k), ctx.elapsed))
                .collect();
            self.reads_queued += self.queue.len() as u64;
            self.retry_until = ctx.elapsed + READ_BACK_RETRY;
        }
        if self.queue.front().is_some_and(|(_, at)| *at <= ctx.elapsed) {
            if let Some((op, _)) = self.queue.pop_front() {
                self.outstanding.push(op.clone());
                return Next::Op(op);
            }
        }
        match (self.inner.next(ctx), self.queue.front()) {
            (Next::WaitUntil(t), Some((_, at))) => Next::WaitUntil(t.min(*at)),
            (next, _) => next,
        }
    }
    fn update(&mut self, op: &Op, outcome: &Outcome, ctx: &Ctx) {
        if let Some(i) = self.outstanding.iter().position(|o| o == op) {
            let op = self.outstanding.swap_remove(i);
            if outcome.kind != checkers::history::EventKind::Ok && ctx.elapsed < self.retry_until {
                self.queue
                    .push_back((op, ctx.elapsed + Duration::from_secs(1)));
            }
            return;
        }
        if outcome.kind != checkers::history::EventKind::Fail {
            let keys = op.written_keys();
            if !keys.is_empty() {
                let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
                written.extend(keys.into_iter().cloned());
            }
        }
        self.inner.update(op, outcome, ctx)
    }
}

/// Final ops (a set's final read, a read of every key a workload wrote): each op in flight on
/// one worker at a time, different ops on different workers at once, each retried after
/// `pause` by the next worker to ask (so on the next node) until it succeeds once or
/// `deadline` passes (an op not yet tried by then is still tried once).
pub struct UntilOk {
    pending: VecDeque<(Op, Duration)>,
    in_flight: Vec<Op>,
    pause: Duration,
    deadline: Duration,
}

impl UntilOk {
    /// Runs `ops` until each succeeded, giving up on one that has not by `deadline` (elapsed
    /// time).
    pub fn new(ops: Vec<Op>, pause: Duration, deadline: Duration) -> UntilOk {
        UntilOk {
            pending: ops.into_iter().map(|op| (op, Duration::ZERO)).collect(),
            in_flight: Vec::new(),
            pause,
            deadline,
        }
    }
}

impl Gen for UntilOk {
    fn next(&mut self, ctx: &Ctx) -> Next {
        if let Some(i) = self.pending.iter().position(|(_, at)| *at <= ctx.elapsed) {
            if let Some((op, _)) = self.pending.remove(i) {
                self.in_flight.push(op.clone());
                return Next::Op(op);
            }
        }
        match self.pending.iter().map(|(_, at)| *at).min() {
            Some(at) => Next::WaitUntil(at),
            None if self.in_flight.is_empty() => Next::Done,
            None => Next::WaitUntil(ctx.elapsed + Duration::from_millis(50)),
        }
    }

    fn update(&mut self, op: &Op, outcome: &Outcome, ctx: &Ctx) {
        let Some(i) = self.in_flight.iter().position(|o| o == op) else {
            return;
        };
        let op = self.in_flight.swap_remove(i);
        if outcome.kind != checkers::history::EventKind::Ok && ctx.elapsed < self.deadline {
            self.pending.push_back((op, ctx.elapsed + self.pause));
        }
    }
}

/// These ops, once each, in order.
pub struct Seq(VecDeque<Op>);

impl Seq {
    /// A generator of `ops`.
    pub fn new(ops: Vec<Op>) -> Seq {
        Seq(ops.into())
    }
}

impl Gen for Seq {
    fn next(&mut self, _: &Ctx) -> Next {
        self.0.pop_front().map_or(Next::Done, Next::Op)
    }
}

/// At most `n` ops of the inner generator.
pub struct Limit<G> {
    left: u64,
    inner: G,
}

impl<G: Gen> Limit<G> {
    /// `inner`, cut after `n` ops.
    pub fn new(n: u64, inner: G) -> Self {
        Limit { left: n, inner }
    }
}

impl<G: Gen> Gen for Limit<G> {
    fn next(&mut self, ctx: &Ctx) -> Next {
        if self.left == 0 {
            return Next::Done;
        }
        let n = self.inner.next(ctx);
        if matches!(n, Next::Op(_)) {
            self.left -= 1;
        }
        n
    }
    fn update(&mut self, op: &Op, outcome: &Outcome, ctx: &Ctx) {
        self.inner.update(op, outcome, ctx)
    }
}

/// The inner generator until `limit` has elapsed.
pub struct TimeLimit<G> {
    limit: Duration,
    inner: G,
}

impl<G: Gen> TimeLimit<G> {
    /// `inner`, done once `limit` has elapsed.
    pub fn new(limit: Duration, inner: G) -> Self {
        TimeLimit { limit, inner }
    }
}

impl<G: Gen> Gen for TimeLimit<G> {
    fn next(&mut self, ctx: &Ctx) -> Next {
        if ctx.elapsed >= self.limit {
            return Next::Done;
        }
        match self.inner.next(ctx) {
            Next::WaitUntil(t) if t >= self.limit => Next::Done,
            n => n,
        }
    }
    fn update(&mut self, op: &Op, outcome: &Outcome, ctx: &Ctx) {
        self.inner.update(op, outcome, ctx)
    }
}

/// Spaces ops (over all workers) by random intervals uniform in [0, 2 * mean], as Jepsen's
/// stagger: about one op per `mean` on average.
pub struct Stagger<G> {
    mean: Duration,
    next_at: Duration,
    rng: rand_chacha::ChaCha8Rng,
    inner: G,
}

impl<G: Gen> Stagger<G> {
    /// `inner` at about one op per `mean`.
    pub fn new(mean: Duration, seed: u64, inner: G) -> Self {
        Stagger {
            mean,
            next_at: Duration::ZERO,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            inner,
        }
    }
}

impl<G: Gen> Gen for Stagger<G> {
    fn next(&mut self, ctx: &Ctx) -> Next {
        if ctx.elapsed < self.next_at {
            return Next::WaitUntil(self.next_at);
        }
        let n = self.inner.next(ctx);
        if matches!(n, Next::Op(_)) {
            let gap = self.mean.mul_f64(self.rng.random_range(0.0..2.0));
            // Behind schedule (slow workers): catch up from now, never burst past the rate.
            self.next_at = self.next_at.max(ctx.elapsed.saturating_sub(self.mean)) + gap;
        }
        n
    }
    fn update(&mut self, op: &Op, outcome: &Outcome, ctx: &Ctx) {
        self.inner.update(op, outcome, ctx)
    }
}

/// Picks one of several generators for each op, by weight, from a seeded RNG; a generator
/// that is done is dropped from the mix.
pub struct Mix {
    gens: Vec<(u32, Box<dyn Gen>)>,
    rng: rand_chacha::ChaCha8Rng,
}

impl Mix {
    /// A mix of weighted generators.
    pub fn new(seed: u64, gens: Vec<(u32, Box<dyn Gen>)>) -> Mix {
        Mix {
            gens,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

impl Gen for Mix {
    fn next(&mut self, ctx: &Ctx) -> Next {
        loop {
            let total: u32 = self.gens.iter().map(|(w, _)| *w).sum();
            if total == 0 {
                return Next::Done;
            }
            let mut pick = self.rng.random_range(0..total);
            let i = self
                .gens
                .iter()
                .position(|(w, _)| {
                    if pick < *w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap_or(0);
            match self.gens[i].1.next(ctx) {
                Next::Done => {
                    self.gens.remove(i);
                }
                n => return n,
            }
        }
    }
}

/// Generators one after another: each until it is done.
pub struct Phases(VecDeque<Box<dyn Gen>>);

impl Phases {
    /// Phases in order.
    pub fn new(gens: Vec<Box<dyn Gen>>) -> Phases {
        Phases(gens.into())
    }
}

impl Gen for Phases {
    fn next(&mut self, ctx: &Ctx) -> Next {
        while let Some(g) = self.0.front_mut() {
            match g.next(ctx) {
                Next::Done => {
                    self.0.pop_front();
                }
                n => return n,
            }
        }
        Next::Done
    }
}

/// A generator of its own for each worker (per-process schedules), made on first use.
pub struct EachWorker {
    make: Box<dyn FnMut(usize) -> Box<dyn Gen> + Send>,
    gens: Vec<Option<Box<dyn Gen>>>,
}

impl EachWorker {
    /// `make(worker)` builds worker `worker`'s generator.
    pub fn new(make: impl FnMut(usize) -> Box<dyn Gen> + Send + 'static) -> EachWorker {
        EachWorker {
            make: Box::new(make),
            gens: Vec::new(),
        }
    }
}

impl Gen for EachWorker {
    fn next(&mut self, ctx: &Ctx) -> Next {
        if self.gens.len() <= ctx.worker {
            self.gens.resize_with(ctx.worker + 1, || None);
        }
        let make = &mut self.make;
        let g = self.gens[ctx.worker].get_or_insert_with(|| make(ctx.worker));
        g.next(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{CasRegisterWorkload, SetWorkload, Workload, WorkloadOptions};
    use checkers::history::Key;

    fn op(v: i64) -> Op {
        Op::Write {
            key: Key::Int(0),
            value: v,
        }
    }

    /// Drives a generator like the scheduler: `workers` workers asking in turn, time moving
    /// on by `step_ms` per request or to the time a generator asks to wait for.
    fn drive(g: &mut dyn Gen, workers: usize, step_ms: u64, max: usize) -> Vec<(u64, usize, Op)> {
        let mut out = Vec::new();
        let mut t = Duration::ZERO;
        let mut w = 0;
        let mut done = 0;
        while out.len() < max && done < workers {
            let c = Ctx {
                elapsed: t,
                worker: w,
            };
            match g.next(&c) {
                Next::Op(o) => out.push((t.as_millis() as u64, w, o)),
                Next::WaitUntil(u) => {
                    assert!(u > t, "a generator must not ask to wait for the past");
                    t = u;
                }
                Next::Done => done += 1,
            }
            w = (w + 1) % workers;
            t += Duration::from_millis(step_ms);
        }
        out
    }

    fn workload(seed: u64) -> Box<dyn Gen> {
        Box::new(Source::new(
            CasRegisterWorkload.ops(seed, &WorkloadOptions { ops_per_key: 50 }),
        ))
    }

    #[test]
    fn the_same_seed_and_requests_give_the_same_ops() {
        for seed in 0..20 {
            let build = || {
                TimeLimit::new(
                    Duration::from_secs(5),
                    Stagger::new(
                        Duration::from_millis(7),
                        seed,
                        Mix::new(seed, vec![(3, workload(seed)), (1, workload(seed + 100))]),
                    ),
                )
            };
            let (mut a, mut b) = (build(), build());
            assert_eq!(drive(&mut a, 4, 1, 10_000), drive(&mut b, 4, 1, 10_000));
        }
    }

    #[test]
    fn limits_and_time_limits_end_generators() {
        let mut g = Limit::new(17, workload(1));
        assert_eq!(drive(&mut g, 3, 1, 1000).len(), 17);
        let mut g = TimeLimit::new(Duration::from_millis(300), workload(1));
        let ops = drive(&mut g, 3, 1, 10_000);
        assert_eq!(ops.len(), 300);
        assert!(ops.iter().all(|(t, _, _)| *t < 300));
    }

    #[test]
    fn stagger_keeps_the_rate_over_all_workers() {
        for (mean_ms, workers) in [(5u64, 1usize), (5, 10), (20, 50)] {
            let mut g = TimeLimit::new(
                Duration::from_secs(100),
                Stagger::new(Duration::from_millis(mean_ms), 9, workload(2)),
            );
            let n = drive(&mut g, workers, 0, 1_000_000).len() as f64;
            let want = 100_000.0 / mean_ms as f64;
            assert!((n - want).abs() / want < 0.05, "{n} ops, want about {want}");
        }
    }

    #[test]
    fn mix_follows_its_weights_and_drops_finished_generators() {
        let mut g = Mix::new(
            4,
            vec![
                (
                    3,
                    Box::new(Source::new(SetWorkload.ops(1, &WorkloadOptions::default())))
                        as Box<dyn Gen>,
                ),
                (
                    1,
                    Box::new(Seq::new((0..100).map(|i| op(-i - 1)).collect())),
                ),
            ],
        );
        let ops = drive(&mut g, 1, 1, 2000);
        let from_seq = ops
            .iter()
            .filter(|(_, _, o)| o.value().as_int() < Some(0))
            .count();
        assert_eq!(from_seq, 100, "the short generator ran out and was dropped");
        let early = ops[..200]
            .iter()
            .filter(|(_, _, o)| o.value().as_int() < Some(0))
            .count();
        assert!(
            (30..=70).contains(&early),
            "{early} of 200 from the weight-1 generator"
        );
    }

    #[test]
    fn phases_run_in_order_and_each_worker_has_its_own() {
        let mut g = Phases::new(vec![
            Box::new(Seq::new(vec![op(1), op(2)])),
            Box::new(Seq::new(vec![op(3)])),
        ]);
        let v: Vec<i64> = drive(&mut g, 2, 1, 10)
            .into_iter()
            .filter_map(|(_, _, o)| o.value().as_int())
            .collect();
        assert_eq!(v, [1, 2, 3]);
        let mut g =
            EachWorker::new(|w| Box::new(Seq::new(vec![op(w as i64 * 10), op(w as i64 * 10 + 1)])));
        let ops = drive(&mut g, 3, 1, 100);
        for (_, w, o) in &ops {
            assert_eq!(o.value().as_int().map(|v| v / 10), Some(*w as i64));
        }
        assert_eq!(ops.len(), 6);
    }

    #[test]
    fn until_ok_retries_on_the_next_worker_until_it_succeeds_or_time_runs_out() {
        let read = Op::ReadSet;
        let mut g = UntilOk::new(
            vec![read.clone()],
            Duration::from_secs(1),
            Duration::from_secs(60),
        );
        let at = |s: u64, worker: usize| Ctx {
            elapsed: Duration::from_secs(s),
            worker,
        };
        assert_eq!(g.next(&at(0, 0)), Next::Op(read.clone()));
        // One at a time: another worker waits while it is in flight.
        assert!(matches!(g.next(&at(0, 1)), Next::WaitUntil(_)));
        g.update(
            &read,
            &Outcome::fail(checkers::history::Value::Null, "down"),
            &at(0, 0),
        );
        assert_eq!(g.next(&at(0, 1)), Next::WaitUntil(Duration::from_secs(1)));
        assert_eq!(g.next(&at(1, 1)), Next::Op(read.clone()));
        g.update(
            &read,
            &Outcome::ok(checkers::history::Value::List(vec![])),
            &at(1, 1),
        );
        assert_eq!(g.next(&at(1, 2)), Next::Done);
        // Past the deadline it gives up.
        let mut g = UntilOk::new(
            vec![read.clone()],
            Duration::from_secs(1),
            Duration::from_secs(5),
        );
        assert_eq!(g.next(&at(6, 0)), Next::Op(read.clone()));
        g.update(
            &read,
            &Outcome::fail(checkers::history::Value::Null, "down"),
            &at(6, 0),
        );
        assert_eq!(g.next(&at(6, 1)), Next::Done);
    }

    #[test]
    fn after_each_heal_every_written_key_is_read_back_first() {
        use crate::workload::{RegisterWorkload, Workload, WorkloadOptions};
        use checkers::history::Key;
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let heals = Arc::new(AtomicU64::new(0));
        let wl = RegisterWorkload;
        let ops = wl.ops(1, &WorkloadOptions { ops_per_key: 3 });
        let mut g = ReadBack::new(
            Source::new(ops),
            wl.read_back().expect("registers read back"),
            heals.clone(),
        );
        let at = Ctx {
            elapsed: Duration::ZERO,
            worker: 0,
        };
        // Ops until three keys have been written ok.
        let mut written = std::collections::BTreeSet::new();
        while written.len() < 3 {
            let Next::Op(op) = g.next(&at) else {
                panic!("an endless source")
            };
            if op.f() == "write" {
                written.insert(op.key().cloned().expect("keyed"));
            }
            g.update(&op, &Outcome::ok(op.value()), &at);
        }
        heals.fetch_add(1, Ordering::SeqCst);
        let reads: Vec<Op> = (0..written.len())
            .map(|_| match g.next(&at) {
                Next::Op(op) => op,
                other => panic!("{other:?}"),
            })
            .collect();
        let expected: Vec<Op> = written
            .iter()
            .map(|k: &Key| Op::Read { key: k.clone() })
            .collect();
        assert_eq!(reads, expected);
        assert_eq!(g.reads_queued(), 3);
        assert_eq!(*g.written().lock().expect("lock"), written);
    }

    #[test]
    fn after_each_heal_a_transactional_workload_reads_back_the_keys_its_transactions_appended() {
        use crate::list_append::ListAppendWorkload;
        use crate::op::MicroOp;
        use crate::workload::{Workload, WorkloadOptions};
        use checkers::history::Key;
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let heals = Arc::new(AtomicU64::new(0));
        let wl = ListAppendWorkload;
        let ops = wl.ops(1, &WorkloadOptions { ops_per_key: 3 });
        let mut g = ReadBack::new(
            Source::new(ops),
            wl.read_back().expect("list-append reads back"),
            heals.clone(),
        );
        let at = Ctx {
            elapsed: Duration::ZERO,
            worker: 0,
        };
        let mut appended = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let Next::Op(op) = g.next(&at) else {
                panic!("an endless source")
            };
            appended.extend(op.written_keys().into_iter().cloned());
            g.update(&op, &Outcome::ok(op.value()), &at);
        }
        assert!(!appended.is_empty(), "20 transactions appended nothing");
        assert_eq!(*g.written().lock().expect("lock"), appended);
        heals.fetch_add(1, Ordering::SeqCst);
        let reads: Vec<Op> = (0..appended.len())
            .map(|_| match g.next(&at) {
                Next::Op(op) => op,
                other => panic!("{other:?}"),
            })
            .collect();
        let expected: Vec<Op> = appended
            .iter()
            .map(|k: &Key| Op::Txn(vec![MicroOp::Read { key: k.clone() }]))
            .collect();
        assert_eq!(reads, expected);
    }

    #[test]
    fn final_ops_run_side_by_side_each_on_one_worker_at_a_time() {
        let (a, b) = (
            Op::Read {
                key: checkers::history::Key::Int(1),
            },
            Op::Read {
                key: checkers::history::Key::Int(2),
            },
        );
        let mut g = UntilOk::new(
            vec![a.clone(), b.clone()],
            Duration::from_secs(1),
            Duration::from_secs(60),
        );
        let at = |s: u64, worker: usize| Ctx {
            elapsed: Duration::from_secs(s),
            worker,
        };
        assert_eq!(g.next(&at(0, 0)), Next::Op(a.clone()));
        assert_eq!(g.next(&at(0, 1)), Next::Op(b.clone()));
        assert!(matches!(g.next(&at(0, 2)), Next::WaitUntil(_)));
        g.update(&a, &Outcome::fail(a.value(), "down"), &at(0, 0));
        g.update(&b, &Outcome::ok(b.value()), &at(0, 1));
        assert_eq!(g.next(&at(0, 2)), Next::WaitUntil(Duration::from_secs(1)));
        assert_eq!(g.next(&at(1, 2)), Next::Op(a.clone()));
        g.update(&a, &Outcome::ok(a.value()), &at(1, 2));
        assert_eq!(g.next(&at(1, 0)), Next::Done);
    }

    #[test]
    fn a_read_back_that_fails_is_retried_until_the_database_answers() {
        use checkers::history::Key;
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let heals = Arc::new(AtomicU64::new(0));
        let read = |k: &Key| Op::Read { key: k.clone() };
        let mut g = ReadBack::new(Seq::new(vec![]), read, heals.clone());
        let at = |ms: u64| Ctx {
            elapsed: Duration::from_millis(ms),
            worker: 0,
        };
        let w = Op::Write {
            key: Key::Int(7),
            value: 1,
        };
        g.update(&w, &Outcome::ok(w.value()), &at(0));
        heals.fetch_add(1, Ordering::SeqCst);
        let r = Op::Read { key: Key::Int(7) };
        assert_eq!(g.next(&at(100)), Next::Op(r.clone()));
        g.update(&r, &Outcome::fail(r.value(), "starting up"), &at(200));
        // Not before a second later; meanwhile the inner generator's ops (none: done).
        assert_eq!(g.next(&at(300)), Next::Done);
        assert_eq!(g.next(&at(1200)), Next::Op(r.clone()));
        g.update(&r, &Outcome::ok(r.value()), &at(1300));
        assert_eq!(g.next(&at(2500)), Next::Done);
        // Past READ_BACK_RETRY after the heal, a failed read is not retried.
        heals.fetch_add(1, Ordering::SeqCst);
        assert_eq!(g.next(&at(3000)), Next::Op(r.clone()));
        let late = at(3000 + READ_BACK_RETRY.as_millis() as u64);
        g.update(&r, &Outcome::fail(r.value(), "down"), &late);
        assert_eq!(g.next(&late), Next::Done);
    }
}
