//! A deliberately simple brute-force linearizability checker, the reference that property
//! tests hold the real checker to. Exhaustive depth-first search over every order of ops that
//! respects real time, where ops with unknown outcomes may also be left out; no memo, no
//! pruning beyond the model rejecting a step. Exponential: for histories of a few ops only.

use crate::linear::Operation;
use crate::model::Model;

/// True iff some order of `ops` (respecting real-time order, with any subset of the
/// unknown-outcome ops left out) is accepted by `model` from its initial state.
///
/// # Panics
/// With more than 10 ops, to keep its use honest.
pub fn is_linearizable<M: Model>(model: &M, ops: &[Operation<M::Op>]) -> bool {
    assert!(ops.len() <= 10, "brute force is for tiny histories");
    let mut placed = vec![false; ops.len()];
    explore(model, ops, &mut placed, &model.init())
}

fn explore<M: Model>(
    model: &M,
    ops: &[Operation<M::Op>],
    placed: &mut [bool],
    state: &M::State,
) -> bool {
    // Done when every op that completed has been placed.
    if ops
        .iter()
        .zip(placed.iter())
        .all(|(o, p)| *p || o.ret.is_none())
    {
        return true;
    }
    for b in 0..ops.len() {
        if placed[b] {
            continue;
        }
        // b may go next only if every completed op that returned before b was called is placed.
        let ready = ops
            .iter()
            .zip(placed.iter())
            .all(|(a, p)| *p || a.ret.is_none_or(|r| r >= ops[b].call));
        if !ready {
            continue;
        }
        if let Some(next) = model.step(state, &ops[b].op) {
            placed[b] = true;
            let found = explore(model, ops, placed, &next);
            placed[b] = false;
            if found {
                return true;
            }
        }
    }
    false
}
