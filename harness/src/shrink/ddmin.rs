//! Delta debugging (Zeller and Hildebrandt's ddmin) as a state machine: [`Ddmin::pending`] says
//! which subset of the elements to test, [`Ddmin::record`] takes whether it still fails. The
//! state is plain data (serde), so that a search stopped between two tests resumes where it
//! was, and a subset is never tested twice.
//!
//! From the failing set `current` split into `n` chunks, it tests each chunk, then each
//! complement (the set without one chunk); the first that fails becomes `current` (with `n`
//! back to 2, or `n - 1` after a complement). When none fails, `n` doubles, up to one
//! element per chunk; after that `current` is 1-minimal: no single element can be removed.
//! A set of one element is tested without it (the empty set) too.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Which subsets of the current split are being tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Stage {
    /// Each chunk on its own.
    Chunks,
    /// The current set without each chunk.
    Complements,
    /// Nothing more to remove.
    Done,
}

/// A ddmin search over element ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ddmin {
    /// The smallest set known to fail.
    current: Vec<usize>,
    /// How many chunks `current` is split into.
    n: usize,
    stage: Stage,
    /// The chunk the stage is at.
    index: usize,
    /// Every subset tested so far (each once).
    tested: BTreeSet<Vec<usize>>,
}

impl Ddmin {
    /// A search starting from `all`, which is known to fail.
    pub fn new(mut all: Vec<usize>) -> Ddmin {
        all.sort_unstable();
        all.dedup();
        let mut tested = BTreeSet::new();
        tested.insert(all.clone());
        Ddmin {
            stage: if all.is_empty() {
                Stage::Done
            } else {
                Stage::Chunks
            },
            current: all,
            n: 2,
            index: 0,
            tested,
        }
    }

    /// The smallest failing set found so far.
    pub fn current(&self) -> &[usize] {
        &self.current
    }

    /// Whether the search is over (`current` is 1-minimal).
    pub fn done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// The current set split into `k` chunks of nearly equal size, in order.
    fn chunks(&self) -> Vec<Vec<usize>> {
        let len = self.current.len();
        let k = self.n.min(len).max(1);
        (0..k)
            .map(|i| self.current[i * len / k..(i + 1) * len / k].to_vec())
            .collect()
    }

    /// The subset at the stage's position, if the stage has one.
    fn at(&self) -> Option<Vec<usize>> {
        let chunks = self.chunks();
        let chunk = chunks.get(self.index)?;
        Some(match self.stage {
            Stage::Chunks => chunk.clone(),
            Stage::Complements => self
                .current
                .iter()
                .copied()
                .filter(|e| !chunk.contains(e))
                .collect(),
            Stage::Done => return None,
        })
    }

    /// The next subset to test, or `None` when the search is over. Positions whose subset
    /// was tested already are passed over (so calling it again gives the same subset until
    /// [`Ddmin::record`] is called).
    pub fn pending(&mut self) -> Option<Vec<usize>> {
        loop {
            if self.stage == Stage::Done {
                return None;
            }
            match self.at() {
                Some(s) if !self.tested.contains(&s) => return Some(s),
                Some(_) => self.index += 1,
                None => self.end_of_stage(),
            }
        }
    }

    /// Records whether the subset [`Ddmin::pending`] gave fails too.
    pub fn record(&mut self, fails: bool) {
        let Some(tried) = self.pending() else { return };
        self.tested.insert(tried.clone());
        if !fails {
            self.index += 1;
            return;
        }
        let k = self.chunks().len();
        self.n = match self.stage {
            Stage::Complements => k.saturating_sub(1).max(2),
            _ => 2,
        };
        self.current = tried;
        self.index = 0;
        self.stage = if self.current.is_empty() {
            Stage::Done
        } else {
            Stage::Chunks
        };
    }

    /// Moves on when a stage has no position left: from the chunks to the complements, and
    /// from there to a finer split, or to the end once every chunk is one element.
    fn end_of_stage(&mut self) {
        self.index = 0;
        match self.stage {
            Stage::Chunks => self.stage = Stage::Complements,
            Stage::Complements if self.n < self.current.len() => {
                self.n = (self.n * 2).min(self.current.len());
                self.stage = Stage::Chunks;
            }
            _ => self.stage = Stage::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search to its end with `fails`; returns the result and how many tests it took.
    fn search(all: usize, fails: impl Fn(&[usize]) -> bool) -> (Vec<usize>, usize) {
        let mut d = Ddmin::new((0..all).collect());
        let mut tests = 0;
        while let Some(s) = d.pending() {
            tests += 1;
            d.record(fails(&s));
        }
        (d.current().to_vec(), tests)
    }

    #[test]
    fn finds_a_single_cause() {
        for all in [1, 2, 3, 7, 14, 31] {
            for cause in 0..all {
                let (found, tests) = search(all, |s| s.contains(&cause));
                assert_eq!(found, [cause], "{all} elements, cause {cause}");
                assert!(tests <= 4 * all, "{tests} tests for {all}");
            }
        }
    }

    #[test]
    fn finds_a_cause_of_two_elements() {
        for all in [2, 5, 8, 14] {
            for a in 0..all {
                for b in a + 1..all {
                    let (found, _) = search(all, |s| s.contains(&a) && s.contains(&b));
                    assert_eq!(found, [a, b], "{all} elements, cause {a} and {b}");
                }
            }
        }
    }

    #[test]
    fn a_failure_that_needs_nothing_shrinks_to_nothing() {
        assert_eq!(search(6, |_| true).0, Vec::<usize>::new());
        // Either of two causes: one is kept, alone.
        let (found, _) = search(10, |s| s.contains(&2) || s.contains(&7));
        assert!(found == [2] || found == [7], "{found:?}");
    }

    #[test]
    fn no_subset_is_tested_twice() {
        let mut d = Ddmin::new((0..9).collect());
        let mut seen = BTreeSet::new();
        while let Some(s) = d.pending() {
            assert!(seen.insert(s.clone()), "{s:?} tested twice");
            // Calling next again gives the same subset until it is recorded.
            assert_eq!(d.pending(), Some(s.clone()));
            d.record(s.contains(&4) && s.contains(&5));
        }
        assert_eq!(d.current(), [4, 5]);
        assert!(d.done());
    }
}
