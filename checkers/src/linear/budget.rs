//! Time, memory and cancellation limits shared by the searches of all keys.
//!
//! What grows is reserved from a shared [`MemoryPool`] before it is allocated: the ops builder's
//! ops in flight and built ops ([`crate::linear::OpsBuilder::limit_memory`]), then every entry
//! of the search's memo. When the pool is exhausted the builder or the search stops and the
//! history or key is reported `unknown` with how far it got, instead of the process running out
//! of memory.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a search stopped before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The time limit passed.
    Time,
    /// The memory budget was used up.
    Memory,
    /// Another key was found invalid and the caller asked to stop at the first invalid key.
    Cancelled,
    /// The round's exploration cap: [`crate::linear::check_keys`] retries the key with a larger
    /// cap, so that cheap keys (and cheap violations) are decided before expensive ones.
    Effort,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stop::Time => "time limit reached",
            Stop::Memory => "memory budget used up",
            Stop::Cancelled => "cancelled after another key was found invalid",
            Stop::Effort => "exploration cap of this round reached",
        })
    }
}

/// A byte budget shared by concurrent searches.
#[derive(Debug)]
pub struct MemoryPool {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
}

impl MemoryPool {
    /// A pool of `limit` bytes.
    pub fn new(limit: usize) -> MemoryPool {
        MemoryPool {
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// The most bytes reserved at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Starts measuring the peak again from what is reserved now.
    pub fn reset_peak(&self) {
        self.peak.store(self.used(), Ordering::Relaxed);
    }

    fn try_take(&self, bytes: usize) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let new = cur.saturating_add(bytes);
            if new > self.limit {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.peak.fetch_max(new, Ordering::Relaxed);
                    return true;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Limits for a check: an optional deadline, a shared memory pool and a cancel flag.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Stop when this instant has passed.
    pub deadline: Option<Instant>,
    /// Bytes the searches' memos may hold in total.
    pub memory: Arc<MemoryPool>,
    /// Set to stop every search (used to stop at the first invalid key).
    pub cancel: Arc<AtomicBool>,
}

impl Default for Limits {
    /// No deadline and a 4 GiB memory budget.
    fn default() -> Limits {
        Limits::new(None, 4 << 30)
    }
}

impl Limits {
    /// Limits with an optional time limit from now and a memory budget in bytes.
    pub fn new(time: Option<Duration>, memory_bytes: usize) -> Limits {
        Limits {
            deadline: time.map(|t| Instant::now() + t),
            memory: Arc::new(MemoryPool::new(memory_bytes)),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Asks every search sharing these limits to stop.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Whether a search should stop now, and why.
    pub fn should_stop(&self) -> Option<Stop> {
        if self.cancel.load(Ordering::Relaxed) {
            return Some(Stop::Cancelled);
        }
        match self.deadline {
            Some(d) if Instant::now() >= d => Some(Stop::Time),
            _ => None,
        }
    }
}

/// Bytes reserved by one search; returned to the pool when dropped.
pub(crate) struct MemoryReservation {
    pool: Arc<MemoryPool>,
    bytes: usize,
}

impl MemoryReservation {
    pub(crate) fn new(limits: &Limits) -> MemoryReservation {
        MemoryReservation {
            pool: limits.memory.clone(),
            bytes: 0,
        }
    }

    /// Reserves `bytes` more; false when the pool is exhausted.
    pub(crate) fn take(&mut self, bytes: usize) -> bool {
        if self.pool.try_take(bytes) {
            self.bytes += bytes;
            true
        } else {
            false
        }
    }
}

impl MemoryReservation {
    /// Returns `bytes` of this reservation to the pool (what was freed).
    pub(crate) fn release(&mut self, bytes: usize) {
        let bytes = bytes.min(self.bytes);
        self.pool.give_back(bytes);
        self.bytes -= bytes;
    }

    /// Bytes held.
    pub(crate) fn held(&self) -> usize {
        self.bytes
    }

    /// Keeps the bytes reserved for as long as the pool lives (memory that stays in use while
    /// the pool's check runs, such as the built ops).
    pub(crate) fn keep(mut self) {
        self.bytes = 0;
    }
}

impl Drop for MemoryReservation {
    fn drop(&mut self) {
        self.pool.give_back(self.bytes);
    }
}

/// Reading a history needed more memory than the budget (`--memory-limit`): the history
/// cannot be checked within the limit, and its verdict is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryExhausted {
    /// The budget, in bytes.
    pub limit: usize,
    /// The line of the event that did not fit.
    pub line: u64,
    /// What held the memory, e.g. "the ops builder held 1000 bytes for 10 ops in flight".
    pub what: String,
}

impl std::fmt::Display for MemoryExhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory budget of {} bytes used up while reading the history, at line {}: {} (--memory-limit covers reading the history and the search)",
            self.limit, self.line, self.what
        )
    }
}

/// Bytes the allocator takes for a heap block of `n` bytes (glibc: 16-byte chunks, 8 bytes of
/// header, at least 32).
pub(crate) fn alloc_bytes(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).next_multiple_of(16).max(32)
    }
}

/// Bytes a hash table with room for `capacity` entries of `entry` bytes takes (buckets at 7/8
/// load, a control byte each).
pub(crate) fn table_bytes(capacity: usize, entry: usize) -> usize {
    capacity.saturating_mul(entry + 1).saturating_mul(8) / 7
}

/// Accounts what a reader of the history holds (hash tables and the heap their entries own)
/// against a memory pool, before it is allocated.
pub(crate) struct Tracker {
    reservation: MemoryReservation,
    limit: usize,
}

impl Tracker {
    pub(crate) fn new(limits: &Limits) -> Tracker {
        Tracker {
            reservation: MemoryReservation::new(limits),
            limit: limits.memory.limit(),
        }
    }

    /// The budget in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held.
    pub(crate) fn held(&self) -> usize {
        self.reservation.held()
    }

    /// Reserves `bytes`; false when the pool refuses.
    pub(crate) fn take(&mut self, bytes: usize) -> bool {
        self.reservation.take(bytes)
    }

    /// Gives back `bytes` that were freed.
    pub(crate) fn release(&mut self, bytes: usize) {
        self.reservation.release(bytes);
    }

    /// Before inserting into a table of `len` entries with room for `capacity`: when it is full,
    /// reserves its growth and makes it (`grow` is called with how many more entries to make
    /// room for). False, with nothing grown, when the pool refuses.
    pub(crate) fn grow_table(
        &mut self,
        len: usize,
        capacity: usize,
        entry: usize,
        grow: impl FnOnce(usize) -> usize,
    ) -> bool {
        if len < capacity {
            return true;
        }
        // hashbrown doubles its buckets: room for about twice as many entries.
        let want = (capacity * 2).max(16);
        if !self.take(table_bytes(want, entry).saturating_sub(table_bytes(capacity, entry))) {
            return false;
        }
        let got = grow(want - len);
        // The table may have made more room than asked: account for it too.
        if got > want {
            let extra = table_bytes(got, entry) - table_bytes(want, entry);
            if !self.take(extra) {
                return false;
            }
        }
        true
    }

    /// Keeps the bytes reserved for as long as the pool lives.
    pub(crate) fn keep(self) {
        self.reservation.keep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_refuses_past_limit_and_returns_on_drop() {
        let limits = Limits::new(None, 100);
        let mut a = MemoryReservation::new(&limits);
        assert!(a.take(60));
        let mut b = MemoryReservation::new(&limits);
        assert!(!b.take(60));
        drop(a);
        assert!(b.take(60));
        assert_eq!(limits.memory.peak(), 60);
    }

    #[test]
    fn cancel_and_deadline_stop() {
        let limits = Limits::new(Some(Duration::from_secs(3600)), 1);
        assert_eq!(limits.should_stop(), None);
        limits.cancel();
        assert_eq!(limits.should_stop(), Some(Stop::Cancelled));
        let past = Limits::new(Some(Duration::ZERO), 1);
        assert_eq!(past.should_stop(), Some(Stop::Time));
    }
}
