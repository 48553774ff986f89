//! A brute-force reference checker for transactional histories, deliberately simple: it knows
//! nothing of dependency graphs. It tries every commit order of the transactions that may have
//! committed (`ok` ones must, `info` ones may or may not, `fail` ones never) and replays them:
//!
//! - serializable (and repeatable-read, equal to it for item reads): each transaction runs
//!   alone on the state left by the ones before it;
//! - strict-serializable: the same, in orders where a transaction that completed before
//!   another was invoked commits first;
//! - snapshot-isolation: each transaction reads a snapshot (the state after some prefix of the
//!   commit order) plus its own writes, commits its writes on the latest state, and no
//!   transaction that committed after its snapshot wrote a key it writes (first committer wins);
//! - read-committed (each statement takes a new snapshot): per key, each read before the
//!   transaction's first write there sees some committed state from before it commits (each
//!   read its own, so two may differ); from its first write on, its writes go onto one such
//!   state and its reads see that state plus its own writes so far.
//!
//! Exponential: for histories of a few transactions only.

use super::{Consistency, Mop, Status, TxnHistory};

/// Whether `h` satisfies `c`, by exhaustive replay.
///
/// # Panics
/// With more than 10 transactions that are not `fail`, to keep its use honest.
pub fn check(h: &TxnHistory, c: Consistency) -> bool {
    let cands: Vec<usize> = (0..h.txns.len())
        .filter(|&t| h.txns[t].status != Status::Fail)
        .collect();
    assert!(cands.len() <= 10, "brute force is for tiny histories");
    let nk = h.keys.len();
    let mut states = vec![vec![Vec::new(); nk]];
    let mut order = Vec::new();
    let mut placed = vec![false; h.txns.len()];
    explore(h, c, &cands, &mut placed, &mut order, &mut states)
}

type State = Vec<Vec<i64>>;

/// Runs `t`'s micro-ops on `base(k)` per key; true when every read matches (reads of
/// non-`ok` transactions are unknown and always match).
fn reads_match(h: &TxnHistory, t: usize, base: &dyn Fn(u32) -> Vec<i64>) -> bool {
    let x = &h.txns[t];
    let known = x.status == Status::Ok;
    let mut own: Vec<(u32, Vec<i64>)> = Vec::new();
    for m in &x.mops {
        let k = m.key();
        let cur = |own: &Vec<(u32, Vec<i64>)>| match own.iter().find(|o| o.0 == k) {
            Some(o) => o.1.clone(),
            None => base(k),
        };
        match m {
            Mop::Append { value, .. } | Mop::Write { value, .. } => {
                let mut v = cur(&own);
                v.push(*value);
                match own.iter_mut().find(|o| o.0 == k) {
                    Some(o) => o.1 = v,
                    None => own.push((k, v)),
                }
            }
            Mop::ReadList { value, .. } => {
                if known && value.as_ref() != Some(&cur(&own)) {
                    return false;
                }
            }
            Mop::ReadReg { value, .. } => {
                if known && *value != Some(cur(&own).last().copied()) {
                    return false;
                }
            }
        }
    }
    true
}

fn writes(h: &TxnHistory, t: usize) -> Vec<(u32, i64)> {
    h.txns[t]
        .mops
        .iter()
        .filter_map(|m| match m {
            Mop::Append { key, value } | Mop::Write { key, value } => Some((*key, *value)),
            _ => None,
        })
        .collect()
}

fn can_commit(h: &TxnHistory, c: Consistency, t: usize, order: &[usize], states: &[State]) -> bool {
    let i = order.len();
    let latest = &states[i];
    match c {
        Consistency::Serializable
        | Consistency::RepeatableRead
        | Consistency::StrictSerializable => reads_match(h, t, &|k| latest[k as usize].clone()),
        Consistency::SnapshotIsolation => {
            let w: Vec<u32> = writes(h, t).iter().map(|x| x.0).collect();
            (0..=i).rev().any(|s| {
                let conflict = order[s..]
                    .iter()
                    .any(|&o| writes(h, o).iter().any(|(k, _)| w.contains(k)));
                !conflict && reads_match(h, t, &|k| states[s][k as usize].clone())
            })
        }
        Consistency::ReadCommitted => {
            // Keys are independent.
            let mut keys: Vec<u32> = h.txns[t].mops.iter().map(|m| m.key()).collect();
            keys.sort_unstable();
            keys.dedup();
            keys.iter()
                .all(|&k| reads_committed_key(h, t, k, &states[..=i]))
        }
    }
}

/// Read committed for transaction `t` and key `key`, with `states` the committed states
/// before it commits: each read before its first write of the key matches some state, and
/// some state followed by its writes matches every read from its first write on.
fn reads_committed_key(h: &TxnHistory, t: usize, key: u32, states: &[State]) -> bool {
    let x = &h.txns[t];
    if x.status != Status::Ok {
        return true;
    }
    let mops: Vec<&Mop> = x.mops.iter().filter(|m| m.key() == key).collect();
    let first_write = mops.iter().position(|m| m.is_write()).unwrap_or(mops.len());
    let (before, after) = mops.split_at(first_write);
    let some_state = |mops: &[&Mop]| {
        states
            .iter()
            .any(|st| replay_matches(mops, st[key as usize].clone()))
    };
    before.iter().all(|m| some_state(std::slice::from_ref(m))) && some_state(after)
}

/// Whether `mops` (of one key), run on `cur`, read what they say they read.
fn replay_matches(mops: &[&Mop], mut cur: Vec<i64>) -> bool {
    for m in mops {
        match m {
            Mop::Append { value, .. } | Mop::Write { value, .. } => cur.push(*value),
            Mop::ReadList { value, .. } => {
                if value.as_ref() != Some(&cur) {
                    return false;
                }
            }
            Mop::ReadReg { value, .. } => {
                if *value != Some(cur.last().copied()) {
                    return false;
                }
            }
        }
    }
    true
}

fn explore(
    h: &TxnHistory,
    c: Consistency,
    cands: &[usize],
    placed: &mut Vec<bool>,
    order: &mut Vec<usize>,
    states: &mut Vec<State>,
) -> bool {
    if cands
        .iter()
        .all(|&t| placed[t] || h.txns[t].status != Status::Ok)
    {
        return true;
    }
    for &t in cands {
        if placed[t] {
            continue;
        }
        if c == Consistency::StrictSerializable
            && cands.iter().any(|&a| {
                !placed[a] && a != t && h.txns[a].status == Status::Ok && h.precedes(a, t)
            })
        {
            continue;
        }
        if !can_commit(h, c, t, order, states) {
            continue;
        }
        let mut next = states[order.len()].clone();
        for (k, v) in writes(h, t) {
            next[k as usize].push(v);
        }
        placed[t] = true;
        order.push(t);
        states.push(next);
        let ok = explore(h, c, cands, placed, order, states);
        states.pop();
        order.pop();
        placed[t] = false;
        if ok {
            return true;
        }
    }
    false
}
