//! Time, memory and cancellation limits shared by the searches of all keys.
//!
//! The search's memo is the only thing that grows; every entry is reserved from a shared
//! [`MemoryPool`] before it is inserted. When the pool is exhausted the search stops and the key
//! is reported `unknown` with how far it got, instead of the process running out of memory.

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

impl Drop for MemoryReservation {
    fn drop(&mut self) {
        self.pool.give_back(self.bytes);
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
