//! A polynomial decision procedure for registers whose written values are distinct.
//!
//! With distinct values every read names the op that wrote its value (the read-mapping of
//! Gibbons & Korach), and a successful `cas(a, b)` names both the op that wrote `a` and the
//! value it replaced. Values then form chains `w(a) -> cas(a,b) -> cas(b,c) ...`, each started
//! by a write (or the initial value), and a linearization must place each chain's ops (its
//! creators and the reads of its values) as one contiguous block. A block whose ops all overlap
//! a common instant (a "backward zone") can be linearized at a single point anywhere in that
//! instant's window; otherwise (a "forward zone") it must cover the whole window from its
//! earliest completion to its latest invocation. The history is linearizable iff each block
//! is internally orderable, no two forward zones overlap, and no backward window lies inside a
//! forward zone (the zone conditions of Misra and of Gibbons & Korach, extended to cas chains).
//! This takes O(n log n) time and O(n) memory.
//!
//! Ops with an unknown outcome take part only when something observed their value (a read, or
//! a cas expecting it); otherwise they are dropped, which is always allowed ("never took
//! effect"). The procedure does not apply (returns `None`) when two ops write the same value.

use super::register::{RegValue, RegisterOp};
use super::FastVerdict;
use crate::linear::Operation;
use std::collections::HashMap;

/// A point on the shifted time axis: the initial value's creator occupies ranks 0 and 1, every
/// history rank `r` becomes `r + 2`, and an unknown completion is `u64::MAX`.
type Rank = u64;

#[derive(Clone, Copy)]
struct Span {
    call: Rank,
    ret: Rank,
    /// `invoke_index` of the op in the history (None for the initial value).
    index: Option<u64>,
}

fn span<O>(op: &Operation<O>) -> Span {
    Span {
        call: op.call + 2,
        ret: op.ret.map_or(u64::MAX, |r| r + 2),
        index: Some(op.invoke_index),
    }
}

fn show(v: RegValue) -> String {
    v.map_or_else(|| "null".to_string(), |i| i.to_string())
}

fn name(s: &Span) -> String {
    s.index
        .map_or_else(|| "the initial value".to_string(), |i| format!("op {i}"))
}

/// One value's creator and, once known, what consumed it.
struct ValueInfo {
    creator: Span,
    /// The value this one was created from (a cas), or None for a write / the initial value.
    from: Option<RegValue>,
    /// The value of the cas that consumed this one.
    consumed_by: Option<RegValue>,
    /// Whether the creator is known to have taken effect (or is needed by an observation).
    included: bool,
    reads: Vec<Span>,
}

/// Every value written and what is known of it, by value.
type Values = HashMap<RegValue, ValueInfo>;

/// A block of ops around one chain of values: its first completion, its last invocation,
/// and the value that starts it.
type Block = (Rank, Rank, RegValue);

/// Decides a register history whose written values are distinct; `None` when they are not.
pub(crate) fn check(initial: RegValue, ops: &[Operation<RegisterOp>]) -> Option<FastVerdict> {
    let mut values = creators(initial, ops)?;
    let decided = reads_of(&mut values, ops)
        .and_then(|needed| include_sources(&mut values, needed))
        .and_then(|()| link_cas(&mut values))
        .and_then(|()| chain_blocks(&values))
        .and_then(|blocks| zones(&blocks));
    Some(match decided {
        Ok(()) => FastVerdict::Valid,
        Err(why) => FastVerdict::Invalid(why),
    })
}

/// Each value's creator (the initial value's is the start); `None` on a repeated value.
fn creators(initial: RegValue, ops: &[Operation<RegisterOp>]) -> Option<Values> {
    let mut values: Values = HashMap::with_capacity(ops.len());
    values.insert(
        initial,
        ValueInfo {
            creator: Span {
                call: 0,
                ret: 1,
                index: None,
            },
            from: None,
            consumed_by: None,
            included: true,
            reads: Vec::new(),
        },
    );
    // Creators; bail out on a repeated value.
    for op in ops {
        let (v, from, known) = match op.op {
            RegisterOp::Read(_) => continue,
            RegisterOp::Write(v) => (Some(v), None, op.is_known()),
            RegisterOp::Cas { expect, new, known } => (Some(new), Some(expect), known),
        };
        let info = ValueInfo {
            creator: span(op),
            from,
            consumed_by: None,
            included: known,
            reads: Vec::new(),
        };
        if values.insert(v, info).is_some() {
            return None;
        }
    }
    Some(values)
}

/// Adds each read to the value it names (a value no op wrote is invalid); returns the values
/// whose unknown creators the reads make take part.
fn reads_of(values: &mut Values, ops: &[Operation<RegisterOp>]) -> Result<Vec<RegValue>, String> {
    // Reads: each must name a value some op wrote; they make unknown creators take part.
    let mut needed: Vec<RegValue> = Vec::new();
    for op in ops {
        if let RegisterOp::Read(v) = op.op {
            match values.get_mut(&v) {
                Some(info) => {
                    info.reads.push(span(op));
                    if !info.included {
                        info.included = true;
                        needed.push(v);
                    }
                }
                None => {
                    return Err(format!(
                        "op {} read {}, a value no op wrote",
                        op.invoke_index,
                        show(v)
                    ))
                }
            }
        }
    }
    Ok(needed)
}

/// Marks what included cas ops need: the value each expects, and so on up its chain.
fn include_sources(values: &mut Values, needed: Vec<RegValue>) -> Result<(), String> {
    // Included cas ops need the value they expect; so do the unknown ones that supply it.
    let mut work: Vec<RegValue> = values
        .iter()
        .filter(|(_, i)| i.included && i.from.is_some())
        .map(|(v, _)| *v)
        .collect();
    work.extend(needed);
    while let Some(v) = work.pop() {
        let Some(from) = values.get(&v).and_then(|i| i.from) else {
            continue;
        };
        let creator_index = values.get(&v).and_then(|i| i.creator.index);
        let Some(src) = values.get_mut(&from) else {
            return Err(format!(
                "op {} swapped {} for {}, but no op wrote {}",
                creator_index.unwrap_or_default(),
                show(from),
                show(v),
                show(from)
            ));
        };
        if !src.included {
            src.included = true;
            if src.from.is_some() {
                work.push(from);
            }
        }
    }
    Ok(())
}

/// Links each included cas to the value it consumed.
fn link_cas(values: &mut Values) -> Result<(), String> {
    // Link each included cas to the value it consumed; a value is consumed at most once.
    let cas_values: Vec<(RegValue, RegValue)> = values
        .iter()
        .filter(|(_, i)| i.included)
        .filter_map(|(v, i)| i.from.map(|f| (f, *v)))
        .collect();
    for (from, to) in cas_values {
        let Some(src) = values.get_mut(&from) else {
            continue;
        };
        if let Some(other) = src.consumed_by {
            return Err(format!(
                "two cas ops both replaced {}: one wrote {}, the other {}",
                show(from),
                show(other),
                show(to)
            ));
        }
        src.consumed_by = Some(to);
    }
    Ok(())
}

/// The block of each chain of values, walked from its root.
fn chain_blocks(values: &Values) -> Result<Vec<Block>, String> {
    // Walk each chain from its root (a write or the initial value) and build its block.
    let mut blocks: Vec<Block> = Vec::new();
    let mut chained = 0usize;
    let roots: Vec<RegValue> = values
        .iter()
        .filter(|(_, i)| i.included && i.from.is_none())
        .map(|(v, _)| *v)
        .collect();
    for root in roots {
        let mut min_ret = u64::MAX;
        let mut max_call = 0;
        let mut prefix_call = 0; // running max of invocations in block order
        let mut cur = Some(root);
        while let Some(v) = cur {
            let Some(info) = values.get(&v) else { break };
            chained += 1;
            let c = info.creator;
            prefix_call = prefix_call.max(c.call);
            if prefix_call >= c.ret {
                return Err(format!(
                    "{} wrote {} after the ops it depends on completed (chain from {})",
                    name(&c),
                    show(v),
                    show(root)
                ));
            }
            min_ret = min_ret.min(c.ret);
            max_call = max_call.max(c.call);
            let mut reads_call = prefix_call;
            for r in &info.reads {
                if prefix_call >= r.ret {
                    return Err(format!(
                        "{} read {} but completed before {} could have written it",
                        name(r),
                        show(v),
                        name(&c)
                    ));
                }
                min_ret = min_ret.min(r.ret);
                max_call = max_call.max(r.call);
                reads_call = reads_call.max(r.call);
            }
            prefix_call = reads_call;
            cur = info.consumed_by;
        }
        blocks.push((min_ret, max_call, root));
    }
    let included = values.values().filter(|i| i.included).count();
    if chained < included {
        return Err(
            "cas ops form a cycle of values that no write or initial value starts".to_string(),
        );
    }
    Ok(blocks)
}

/// The zone conditions between the blocks.
fn zones(blocks: &[Block]) -> Result<(), String> {
    // Zone conditions.
    let mut forward: Vec<Block> = blocks.iter().copied().filter(|(f, s, _)| f < s).collect();
    forward.sort_unstable();
    for pair in forward.windows(2) {
        let ((_, s1, a), (f2, _, b)) = (pair[0], pair[1]);
        if f2 < s1 {
            return Err(format!(
                "the ops on {} and those on {} overlap so that neither can come first",
                show(a),
                show(b)
            ));
        }
    }
    for &(f, s, v) in blocks.iter().filter(|(f, s, _)| s < f) {
        // The forward zone with the largest start below s, if it also ends after f.
        let i = forward.partition_point(|(ff, _, _)| *ff < s);
        if i > 0 {
            let (_, s2, w) = forward[i - 1];
            if f < s2 {
                return Err(format!(
                    "the ops on {} must happen while {} is the value, between its first completion and last invocation",
                    show(v),
                    show(w)
                ));
            }
        }
    }
    Ok(())
}
