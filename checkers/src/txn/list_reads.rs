//! list-append: each committed transaction's reads replayed against its own appends, key by
//! key, to find what it read from others (its *external* reads) and what contradicts itself.
//!
//! Read committed (Adya's PL-2) lets each read take a new snapshot, so for a transaction `t`
//! and a key `k`:
//! - every read of `k` before `t`'s first append there sees some committed state of `k`; a
//!   read that differs from `t`'s previous one is a non-repeatable read (`fuzzy-read`, which
//!   repeatable-read and stronger models forbid) and a further external read;
//! - from its first append on, `t`'s appends apply to one committed base state `B` of `k`,
//!   and its reads see `B` followed by all its appends so far. The first such read shows `B`
//!   (an external read, and a `fuzzy-read` when it differs from `t`'s read before its first
//!   append); any other contradiction (a read not ending with its own appends, or a base that
//!   changes after its first append) is `internal`, which every model forbids.
//!
//! Every external read is evidence: it is checked for G1b here and, by the inference, for
//! garbage, G1a and incompatible orders, and gives wr and rw edges and version orders.

use super::list_append::{anomaly, own_appends};
use super::report::{show_list, tname, Collector};
use super::{KeyId, Mop, Status, TxnHistory};

/// An external read: transaction, key, the read micro-op and the length of its external part.
#[derive(Clone, Copy)]
pub(super) struct ExtRead {
    /// The reading transaction.
    pub(super) txn: u32,
    /// The key read.
    pub(super) key: KeyId,
    /// The read's micro-op in the transaction.
    pub(super) mop: u32,
    /// How many elements at the head of the read others appended.
    pub(super) len: u32,
}

/// Each key's longest external read: (transaction, micro-op, length read), the key's
/// version order as far as any read shows it.
pub(super) type Longest = Vec<Option<(u32, u32, u32)>>;

/// A transaction's view of one key while its micro-ops are replayed.
struct KeyView<'a> {
    key: KeyId,
    /// Its latest read of the key before its first append there.
    before: Option<&'a [i64]>,
    /// Its appends to the key so far.
    own: Vec<i64>,
    /// The committed state its appends apply to, once a read after them showed it.
    base: Option<&'a [i64]>,
}

/// A key's name, rendered only when displayed (hot loops name keys only in anomalies).
struct KeyName<'a>(&'a TxnHistory, KeyId);

impl std::fmt::Display for KeyName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.key_name(self.1))
    }
}

/// The external reads of committed transactions, in history order, and each key's longest
/// one; on the way, `internal`, `fuzzy-read` and `G1b` (see the module doc).
pub(super) fn external_reads(h: &TxnHistory, found: &mut Collector) -> (Vec<ExtRead>, Longest) {
    let mut ext: Vec<ExtRead> = Vec::with_capacity(h.txns.len());
    let mut longest: Longest = vec![None; h.keys.len()];
    let mut views: Vec<KeyView> = Vec::new();
    for (t, x) in h.txns.iter().enumerate() {
        if x.status != Status::Ok {
            continue;
        }
        views.clear();
        for (mi, m) in x.mops.iter().enumerate() {
            match m {
                Mop::Append { key, value } => view_of(&mut views, *key).own.push(*value),
                Mop::ReadList {
                    key,
                    value: Some(vals),
                } => {
                    let view = view_of(&mut views, *key);
                    let Some(len) = replay_read(h, t, vals, view, found) else {
                        continue;
                    };
                    if let Some(r) = external_read(h, t, mi, *key, vals, len, found) {
                        if longest[*key as usize].is_none_or(|(_, _, l)| (l as usize) < len) {
                            longest[*key as usize] = Some((t as u32, mi as u32, len as u32));
                        }
                        ext.push(r);
                    }
                }
                _ => {}
            }
        }
    }
    (ext, longest)
}

/// `key`'s view in `views`, added when the transaction first touches it.
fn view_of<'a, 'b>(views: &'b mut Vec<KeyView<'a>>, key: KeyId) -> &'b mut KeyView<'a> {
    let i = match views.iter().position(|s| s.key == key) {
        Some(i) => i,
        None => {
            views.push(KeyView {
                key,
                before: None,
                own: Vec::new(),
                base: None,
            });
            views.len() - 1
        }
    };
    &mut views[i]
}

/// Replays transaction `t`'s read `vals` on its view of the key: the length of the read's
/// external part when it shows a committed state `t` had not read before (a fuzzy read
/// when it had read another), `None` when it shows nothing new or contradicts `t`'s own
/// appends (internal).
fn replay_read<'a>(
    h: &TxnHistory,
    t: usize,
    vals: &'a [i64],
    view: &mut KeyView<'a>,
    found: &mut Collector,
) -> Option<usize> {
    let own = &view.own[..];
    if own.is_empty() {
        let before = view.before.replace(vals);
        return match before {
            Some(p) if p == vals => None,
            Some(p) => {
                fuzzy_read(h, t, view.key, p, vals, None, found);
                Some(vals.len())
            }
            None => Some(vals.len()),
        };
    }
    let consistent = match view.base {
        Some(b) => vals.len() == b.len() + own.len() && vals.starts_with(b),
        None => vals.len() >= own.len(),
    } && vals.ends_with(own);
    if !consistent {
        internal(h, t, view.key, vals, view.base, own, found);
        return None;
    }
    if view.base.is_some() {
        return None;
    }
    let base = &vals[..vals.len() - own.len()];
    view.base = Some(base);
    match view.before {
        Some(p) if p == base => None,
        Some(p) => {
            fuzzy_read(h, t, view.key, p, vals, Some(own), found);
            Some(base.len())
        }
        None => Some(base.len()),
    }
}

/// Reports `t`'s read `vals` of `key` after its earlier read `prev`, with no append of its
/// own between (`own` is `None`), or, after its appends `own`, on another base than `prev`.
fn fuzzy_read(
    h: &TxnHistory,
    t: usize,
    key: KeyId,
    prev: &[i64],
    vals: &[i64],
    own: Option<&[i64]>,
    found: &mut Collector,
) {
    let k = KeyName(h, key);
    found.add("fuzzy-read", || {
        let (tn, p, v) = (tname(h, t), show_list(prev), show_list(vals));
        let explanation = match own {
            None => format!("{tn} read {k} = {p}, then {k} = {v} with no write of its own between"),
            Some(own) => format!(
                "{tn} read {k} = {p}, then appended {own:?} and read {k} = {v}: its appends went onto {}, not onto what it had read (a non-repeatable read)",
                show_list(&vals[..vals.len() - own.len()])
            ),
        };
        anomaly(h, &[t], explanation)
    });
}

/// Reports `t`'s read `vals` of `key`, which is not `base` (when known) followed by its
/// own appends `own`.
fn internal(
    h: &TxnHistory,
    t: usize,
    key: KeyId,
    vals: &[i64],
    base: Option<&[i64]>,
    own: &[i64],
    found: &mut Collector,
) {
    let expect = match base {
        Some(b) => format!(
            "{} (the state its appends went onto, as its earlier read showed, plus its own appends)",
            show_list(&[b, own].concat())
        ),
        None => format!("a list ending with its own appends {own:?}"),
    };
    let k = KeyName(h, key);
    found.add("internal", || {
        anomaly(
            h,
            &[t],
            format!(
                "{} read {k} = {}, but expected {expect}",
                tname(h, t),
                show_list(vals)
            ),
        )
    });
}

/// Transaction `t`'s read of `key` (micro-op `mi`), whose first `len` elements should have
/// been appended by others: an external read, unless they contain an element of `t`'s own
/// (internal). Reports G1b when its last element is not its appender's last append to the
/// key.
fn external_read(
    h: &TxnHistory,
    t: usize,
    mi: usize,
    key: KeyId,
    vals: &[i64],
    len: usize,
    found: &mut Collector,
) -> Option<ExtRead> {
    let appender = &h.writers;
    let k = KeyName(h, key);
    let external = &vals[..len];
    if let Some(&v) = external
        .iter()
        .find(|v| appender.get(&(key, **v)) == Some(&(t as u32)))
    {
        let earlier = h.txns[t].mops[..mi]
            .iter()
            .any(|m| matches!(m, Mop::Append { key: k2, value } if *k2 == key && *value == v));
        let when = if earlier {
            "one of its own appends, out of place"
        } else {
            "an element it appends only later"
        };
        found.add("internal", || {
            anomaly(
                h,
                &[t],
                format!(
                    "{} read {k} = {}, which contains {v}, {when}",
                    tname(h, t),
                    show_list(vals)
                ),
            )
        });
        return None;
    }
    // G1b: the last element read is not its appender's last append there.
    if let Some(&last) = external.last() {
        if let Some(&w) = appender.get(&(key, last)) {
            let w = w as usize;
            if let Some(final_v) = own_appends(h, w, key).last() {
                if final_v != last && h.txns[w].status != Status::Fail {
                    found.add("G1b", || anomaly(h, &[w, t], format!("{} appended {last} and later {final_v} to {k}; {} read {k} = {}, an intermediate version", tname(h, w), tname(h, t), show_list(external))));
                }
            }
        }
    }
    Some(ExtRead {
        txn: t as u32,
        key,
        mop: mi as u32,
        len: len as u32,
    })
}
