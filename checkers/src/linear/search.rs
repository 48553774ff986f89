//! The exact search: Wing & Gong's algorithm with Lowe's memo, as in Porcupine.
//!
//! Calls and returns of one key's ops form a doubly linked list in history order. The search
//! walks it: at a call it tries to linearize that op now (step the model; skip the
//! configuration if the memo has already seen the same set of linearized ops with the same
//! state), at a return it must backtrack, because that op should have been linearized before it
//! returned. Ops with an unknown outcome have no return entry: they may be linearized anywhere
//! after their call, or never. Reaching the end of the list means every op that returned has
//! been linearized: the history is linearizable.

use super::budget::{Limits, MemoryReservation, Stop};
use super::ops::Operation;
use crate::model::Model;
use hashbrown::HashTable;
use std::hash::{Hash, Hasher};

const NONE: u32 = u32::MAX;

/// The outcome of a search over one key.
#[derive(Debug)]
pub(crate) enum SearchOutcome<S> {
    /// A linearization exists.
    Valid,
    /// None exists; the deepest partial linearization found explains why.
    Invalid(Deepest<S>),
    /// A limit stopped the search.
    Stopped {
        /// Which limit.
        why: Stop,
        /// The deepest partial linearization found so far.
        deepest: Deepest<S>,
        /// Configurations explored.
        explored: u64,
    },
}

/// The longest partial linearization the search found, and the op it could not add.
#[derive(Debug, Clone)]
pub(crate) struct Deepest<S> {
    /// Op indices in linearization order (the longest linearizable prefix found).
    pub prefix: Vec<u32>,
    /// How many ops were linearized at the deepest point (`prefix` may be slightly shorter
    /// for very deep searches, where it is copied only at geometric steps).
    pub depth: usize,
    /// The op whose return was reached before it could be linearized.
    pub blocked: Option<u32>,
    /// Distinct states the model was in when that op could not be linearized (at most 8).
    pub states: Vec<S>,
}

/// A list entry: a call or a return of an op.
#[derive(Clone, Copy)]
struct Entry {
    op: u32,
    is_call: bool,
    /// For a call, the index of its return entry (or NONE for unknown outcomes).
    ret: u32,
}

/// A memo entry: a set of linearized ops and the state reached, with their combined hash.
///
/// The set is stored run-length encoded ([`runs`]): linearized sets are long runs of ones
/// behind the search's frontier and zeros ahead of it, so an entry costs a few words instead
/// of one bit per op of the key (which for a 100,000-op key would be 12 KiB per entry).
struct Config<S> {
    hash: u64,
    runs: Box<[u32]>,
    state: S,
}

/// The positions at which a bitset changes value, starting from "set" at position 0.
/// Two bitsets of the same length are equal iff their encodings are.
fn runs(bits: &[u64]) -> Box<[u32]> {
    let mut out = Vec::new();
    let mut current = true; // the value of the run being scanned
    for (w, &word) in bits.iter().enumerate() {
        let same = if current { u64::MAX } else { 0 };
        if word == same {
            continue;
        }
        for b in 0..64 {
            let bit = word >> b & 1 == 1;
            if bit != current {
                out.push((w * 64 + b) as u32);
                current = bit;
            }
        }
    }
    out.into_boxed_slice()
}

/// A 64-bit mix (splitmix64 finalizer): per-op random words for the incremental set hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn state_hash<S: Hash>(s: &S) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// The linked list of calls and returns, with O(1) lift and unlift.
struct CallList {
    entries: Vec<Entry>,
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Sentinel head index (== entries.len()).
    head: u32,
}

impl CallList {
    fn new<O>(ops: &[Operation<O>]) -> CallList {
        // (position, entry); unknown outcomes get no return entry.
        let mut events: Vec<(u64, Entry)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            let id = i as u32;
            events.push((
                op.call,
                Entry {
                    op: id,
                    is_call: true,
                    ret: NONE,
                },
            ));
            if let Some(r) = op.ret {
                events.push((
                    r,
                    Entry {
                        op: id,
                        is_call: false,
                        ret: NONE,
                    },
                ));
            }
        }
        events.sort_by_key(|(pos, e)| (*pos, !e.is_call));
        let entries: Vec<Entry> = events.into_iter().map(|(_, e)| e).collect();
        let mut ret_of = vec![NONE; ops.len()];
        for (i, e) in entries.iter().enumerate() {
            if !e.is_call {
                ret_of[e.op as usize] = i as u32;
            }
        }
        let mut entries = entries;
        for e in entries.iter_mut().filter(|e| e.is_call) {
            e.ret = ret_of[e.op as usize];
        }
        let n = entries.len() as u32;
        let head = n;
        // Index n is the head sentinel; next of the last entry is NONE.
        let mut next = vec![NONE; n as usize + 1];
        let mut prev = vec![NONE; n as usize + 1];
        next[head as usize] = if n > 0 { 0 } else { NONE };
        for i in 0..n {
            prev[i as usize] = if i == 0 { head } else { i - 1 };
            next[i as usize] = if i + 1 < n { i + 1 } else { NONE };
        }
        CallList {
            entries,
            next,
            prev,
            head,
        }
    }

    fn first(&self) -> u32 {
        self.next[self.head as usize]
    }

    fn unlink(&mut self, i: u32) {
        let (p, n) = (self.prev[i as usize], self.next[i as usize]);
        self.next[p as usize] = n;
        if n != NONE {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, i: u32) {
        let (p, n) = (self.prev[i as usize], self.next[i as usize]);
        self.next[p as usize] = i;
        if n != NONE {
            self.prev[n as usize] = i;
        }
    }

    /// Removes a call and its return (if any) from the list.
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let r = self.entries[call as usize].ret;
        if r != NONE {
            self.unlink(r);
        }
    }

    /// Undoes [`CallList::lift`] (in reverse order of lifting).
    fn unlift(&mut self, call: u32) {
        let r = self.entries[call as usize].ret;
        if r != NONE {
            self.relink(r);
        }
        self.relink(call);
    }
}

/// Runs the search for one key's ops.
/// `cap` bounds the configurations explored (`u64::MAX` for no bound).
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[Operation<M::Op>],
    limits: &Limits,
    cap: u64,
) -> SearchOutcome<M::State> {
    let mut list = CallList::new(ops);
    let words = ops.len().div_ceil(64).max(1);
    let mut bits = vec![0u64; words];
    let op_keys: Vec<u64> = (0..ops.len() as u64).map(mix).collect();
    let mut set_hash = 0u64;

    let mut memo: HashTable<Config<M::State>> = HashTable::new();
    let mut reservation = MemoryReservation::new(limits);
    let config_bytes = std::mem::size_of::<Config<M::State>>() + 16;

    let mut stack: Vec<(u32, M::State)> = Vec::new();
    let mut state = model.init();
    let mut deepest = Deepest {
        prefix: Vec::new(),
        depth: 0,
        blocked: None,
        states: Vec::new(),
    };
    let mut copied_depth = 0usize;
    let mut explored: u64 = 0;

    let mut entry = list.first();
    loop {
        if entry == NONE {
            return SearchOutcome::Valid;
        }
        explored += 1;
        if explored & 0x3ff == 0 {
            let why = if explored >= cap {
                Some(Stop::Effort)
            } else {
                limits.should_stop()
            };
            if let Some(why) = why {
                return SearchOutcome::Stopped {
                    why,
                    deepest,
                    explored,
                };
            }
        }
        let e = list.entries[entry as usize];
        if e.is_call {
            let op = e.op as usize;
            if let Some(next_state) = model.step(&state, &ops[op].op) {
                let (w, b) = (op / 64, 1u64 << (op % 64));
                bits[w] |= b;
                let h = set_hash ^ op_keys[op];
                let hash = h ^ state_hash(&next_state).rotate_left(17);
                let mut encoded: Option<Box<[u32]>> = None;
                let seen = memo
                    .find(hash, |c| {
                        c.hash == hash
                            && c.state == next_state
                            && c.runs == *encoded.get_or_insert_with(|| runs(&bits))
                    })
                    .is_some();
                if !seen {
                    let encoded = encoded.unwrap_or_else(|| runs(&bits));
                    if !reservation.take(
                        config_bytes + encoded.len() * 4 + model.state_heap_bytes(&next_state),
                    ) {
                        bits[w] &= !b;
                        return SearchOutcome::Stopped {
                            why: Stop::Memory,
                            deepest,
                            explored,
                        };
                    }
                    memo.insert_unique(
                        hash,
                        Config {
                            hash,
                            runs: encoded,
                            state: next_state.clone(),
                        },
                        |c| c.hash,
                    );
                    set_hash = h;
                    stack.push((entry, std::mem::replace(&mut state, next_state)));
                    list.lift(entry);
                    entry = list.first();
                    continue;
                }
                bits[w] &= !b;
            }
            entry = list.next[entry as usize];
        } else {
            // A return whose op is not linearized yet: this branch is dead.
            let depth = stack.len();
            if depth > deepest.depth || deepest.blocked.is_none() {
                deepest.depth = depth;
                deepest.blocked = Some(e.op);
                deepest.states.clear();
                if depth <= 4096 || depth >= copied_depth + copied_depth / 8 {
                    deepest.prefix = stack
                        .iter()
                        .map(|(c, _)| list.entries[*c as usize].op)
                        .collect();
                    copied_depth = depth;
                }
            }
            if depth == deepest.depth
                && deepest.blocked == Some(e.op)
                && deepest.states.len() < 8
                && !deepest.states.contains(&state)
            {
                deepest.states.push(state.clone());
            }
            let Some((call, prev_state)) = stack.pop() else {
                return SearchOutcome::Invalid(deepest);
            };
            let op = list.entries[call as usize].op as usize;
            bits[op / 64] &= !(1u64 << (op % 64));
            set_hash ^= op_keys[op];
            state = prev_state;
            list.unlift(call);
            entry = list.next[call as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn run_encoding_distinguishes_sets() {
        assert_eq!(&*runs(&[u64::MAX, u64::MAX]), &[] as &[u32]);
        assert_eq!(&*runs(&[0b0111, 0]), &[3]);
        assert_eq!(&*runs(&[0b1011, 1 << 1]), &[2, 3, 4, 65, 66]);
        assert_ne!(runs(&[0b1011, 0]), runs(&[0b1101, 0]));
    }
}
