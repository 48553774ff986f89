//! The transactional checker's share of a check's memory budget (`--memory-limit`).
//!
//! The same [`MemoryPool`](crate::linear::MemoryPool) that the linearizability path reserves
//! from covers the transactional one: reading the history ([`super::TxnBuilder::limit_memory`]),
//! the inferred graph and the searches reserve what they are about to allocate from a
//! [`Ledger`]; when the pool refuses, the check stops and the verdict is `unknown`, naming the
//! limit and what did not fit. Never `valid`.

use crate::linear::budget::{alloc_bytes, MemoryReservation};
use crate::linear::Limits;
use std::fmt;

/// The memory budget was used up while checking (after reading): the verdict is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfMemory {
    /// The budget, in bytes.
    pub limit: usize,
    /// What did not fit, e.g. "the dependency graph (1234567 edges)".
    pub what: String,
}

impl fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory budget of {} bytes used up: {} did not fit (--memory-limit covers reading the history, the inferred graph and the search)",
            self.limit, self.what
        )
    }
}

/// Bytes reserved from a check's memory pool by the transactional checker; given back when
/// dropped.
pub(crate) struct Ledger {
    reservation: MemoryReservation,
    limit: usize,
}

impl Ledger {
    /// A ledger drawing on `limits`' pool.
    pub(crate) fn new(limits: &Limits) -> Ledger {
        Ledger {
            reservation: MemoryReservation::new(limits),
            limit: limits.memory.limit(),
        }
    }

    /// A ledger on a pool of its own of `bytes`.
    pub(crate) fn with_limit(bytes: usize) -> Ledger {
        Ledger::new(&Limits::new(None, bytes))
    }

    /// Reserves `bytes` for `what` (rendered only on refusal).
    pub(crate) fn take(
        &mut self,
        bytes: usize,
        what: impl FnOnce() -> String,
    ) -> Result<(), OutOfMemory> {
        if self.reservation.take(bytes) {
            Ok(())
        } else {
            Err(OutOfMemory {
                limit: self.limit,
                what: what(),
            })
        }
    }

    /// Gives back `bytes` that were freed.
    pub(crate) fn release(&mut self, bytes: usize) {
        self.reservation.release(bytes);
    }

    /// Bytes held.
    pub(crate) fn held(&self) -> usize {
        self.reservation.held()
    }
}

/// Bytes a `Vec<T>` with room for `capacity` elements takes on the heap.
pub(crate) fn vec_bytes<T>(capacity: usize) -> usize {
    alloc_bytes(capacity.saturating_mul(std::mem::size_of::<T>()))
}

/// A vector whose growth is reserved from a [`Ledger`] before it happens: a push that would
/// grow it past what the pool allows is dropped and the refusal kept ([`Bounded::refused`]),
/// so that code building it needs no early returns; its caller checks once at the end.
pub(crate) struct Bounded<'l, T> {
    /// The elements.
    pub(crate) v: Vec<T>,
    ledger: &'l mut Ledger,
    what: &'static str,
    refused: Option<OutOfMemory>,
}

impl<'l, T> Bounded<'l, T> {
    /// An empty vector named `what` in a refusal.
    pub(crate) fn new(ledger: &'l mut Ledger, what: &'static str) -> Bounded<'l, T> {
        Bounded {
            v: Vec::new(),
            ledger,
            what,
            refused: None,
        }
    }

    /// Appends `x` unless the pool refuses its growth.
    pub(crate) fn push(&mut self, x: T) {
        if self.refused.is_some() {
            return;
        }
        if self.v.len() == self.v.capacity() {
            let cap = self.v.capacity();
            let want = (cap * 2).max(64);
            // While growing, the old block and the new one are both held.
            let grow = vec_bytes::<T>(want);
            let n = self.v.len();
            let what = self.what;
            if let Err(e) = self
                .ledger
                .take(grow, || format!("{what} ({n} entries, growing)"))
            {
                self.refused = Some(e);
                return;
            }
            self.v.reserve_exact(want - cap);
            self.ledger.release(vec_bytes::<T>(cap));
        }
        self.v.push(x);
    }

    /// The elements, or the refusal. The elements' bytes stay reserved in the ledger.
    pub(crate) fn finish(self) -> Result<Vec<T>, OutOfMemory> {
        match self.refused {
            Some(e) => Err(e),
            None => Ok(self.v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_refuses_growth_past_the_pool_and_says_so() {
        let mut ledger = Ledger::with_limit(10_000);
        let mut b: Bounded<u64> = Bounded::new(&mut ledger, "the test's list");
        for i in 0..100_000 {
            b.push(i);
        }
        let e = b.finish().unwrap_err();
        assert_eq!(e.limit, 10_000);
        assert!(e.to_string().contains("the test's list"), "{e}");
        assert!(ledger.held() <= 10_000);
        let mut ok: Bounded<u64> = Bounded::new(&mut ledger, "small");
        ok.push(1);
        assert_eq!(ok.finish().unwrap(), vec![1]);
    }
}
