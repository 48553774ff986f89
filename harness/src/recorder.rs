//! The history recorder: writes history.jsonl as ops happen, one line per event, each line
//! flushed to the file before the call returns (so before the next op is invoked), so that a
//! controller killed with SIGKILL leaves a valid prefix. Memory does not grow with the run.

use checkers::history::{write_jsonl, Event, EventKind, Process, Value};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;
use workloads::{Op, Outcome};

/// Counts of completions, for progress lines.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// `ok` completions.
    pub ok: u64,
    /// `fail` completions.
    pub fail: u64,
    /// `info` completions.
    pub info: u64,
}

struct Inner {
    out: BufWriter<File>,
    index: u64,
    counts: Counts,
}

/// Appends events to a history file.
pub struct Recorder {
    inner: Mutex<Inner>,
    start: Instant,
    heals: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Recorder {
    /// Creates (truncates) the history file; times are measured from `start`.
    pub fn create(path: &Path, start: Instant) -> std::io::Result<Recorder> {
        Ok(Recorder {
            inner: Mutex::new(Inner {
                out: BufWriter::new(File::create(path)?),
                index: 0,
                counts: Counts::default(),
            }),
            start,
            heals: Default::default(),
        })
    }

    /// Heals recorded so far (`stop-KIND` and `heal` events), counted after each is written:
    /// what [`workloads::gen::ReadBack`] watches to read keys back after every heal.
    pub fn heals(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.heals.clone()
    }

    fn write(&self, mut event: Event) -> std::io::Result<()> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        event.index = g.index;
        event.time = Some(self.start.elapsed().as_nanos() as u64);
        write_jsonl(&mut g.out, &event)?;
        g.out.flush()?;
        g.index += 1;
        match event.kind {
            EventKind::Ok if matches!(event.process, Process::Client(_)) => g.counts.ok += 1,
            EventKind::Fail => g.counts.fail += 1,
            EventKind::Info if matches!(event.process, Process::Client(_)) => g.counts.info += 1,
            _ => {}
        }
        Ok(())
    }

    /// Records the invocation of `op` by `process` on `node`.
    pub fn invoke(&self, process: u64, op: &Op, node: &str) -> std::io::Result<()> {
        self.write(Event {
            index: 0,
            time: None,
            process: Process::Client(process),
            kind: EventKind::Invoke,
            f: op.f().to_string(),
            key: op.key().cloned(),
            value: op.value(),
            error: None,
            node: Some(node.to_string()),
        })
    }

    /// Records how `op` ended.
    pub fn complete(
        &self,
        process: u64,
        op: &Op,
        outcome: &Outcome,
        node: &str,
    ) -> std::io::Result<()> {
        self.write(Event {
            index: 0,
            time: None,
            process: Process::Client(process),
            kind: outcome.kind,
            f: op.f().to_string(),
            key: op.key().cloned(),
            value: outcome.value.clone(),
            error: outcome.error.clone(),
            node: Some(node.to_string()),
        })
    }

    /// Records a nemesis event (`start-partition`, `stop-partition`, ...); one that ends
    /// faults counts as a heal ([`Recorder::heals`]).
    pub fn nemesis(
        &self,
        event: &nemesis::event::NemesisEvent,
        value: Value,
        error: Option<String>,
    ) -> std::io::Result<()> {
        let heal = event.ends_faults();
        let written = self.write(Event {
            index: 0,
            time: None,
            process: Process::nemesis(),
            kind: EventKind::Info,
            f: event.f(),
            key: None,
            value,
            error,
            node: None,
        });
        if heal && written.is_ok() {
            self.heals.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        written
    }

    /// Completions so far.
    pub fn counts(&self) -> Counts {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).counts
    }
}
