//! Transactions from history events: pairs invokes with completions and validates micro-ops.
//!
//! The readers ([`crate::read`]) already yield `f: "txn"` events from history.jsonl and from
//! Jepsen/Elle EDN (keywords arrive as strings, so `[:append :x 1]` is `["append","x",1]`);
//! this turns their values into [`Mop`]s. Invalid input is an [`InputError`] naming file, line
//! and column: a micro-op the model does not know, a read in an invoke that carries a value, an
//! append (or write) of a value already appended to the same key, a completion whose micro-ops
//! differ from its invoke's.

use super::{KeyId, Mop, Status, Txn, TxnHistory, TxnModel};
use crate::error::InputError;
use crate::history::{EventKind, Key, Process, Value};
use crate::linear::budget::{alloc_bytes, Limits, MemoryExhausted, Tracker};
use crate::read::Located;
use hashbrown::HashMap;

/// Builds a [`TxnHistory`] from located events, one at a time.
pub struct TxnBuilder {
    model: TxnModel,
    file: String,
    key_ids: HashMap<Key, KeyId>,
    keys: Vec<Key>,
    txns: Vec<Txn>,
    open: HashMap<u64, usize>,
    /// Writer (transaction index) of each (key, value).
    written: HashMap<(KeyId, i64), u32>,
    pos: u64,
    /// What the builder holds, reserved from a check's memory pool ([`TxnBuilder::limit_memory`]).
    tracker: Option<Tracker>,
    /// Keys whose bytes are reserved.
    keys_reserved: usize,
    exhausted: Option<MemoryExhausted>,
}

/// Heap bytes of a transaction's micro-ops (the list and the values its reads hold).
fn mops_bytes(mops: &[Mop]) -> usize {
    alloc_bytes(std::mem::size_of_val(mops))
        + mops
            .iter()
            .map(|m| match m {
                Mop::ReadList { value: Some(v), .. } => alloc_bytes(v.len() * 8),
                _ => 0,
            })
            .sum::<usize>()
}

/// Reserves a vector's growth before a push that would grow it (it doubles); false when the
/// pool refuses. `grow` makes the room.
fn grow_vec(
    tracker: &mut Tracker,
    len: usize,
    cap: usize,
    elem: usize,
    grow: impl FnOnce(usize),
) -> bool {
    if len < cap {
        return true;
    }
    let want = (cap * 2).max(16);
    if !tracker.take(alloc_bytes(want * elem)) {
        return false;
    }
    grow(want - len);
    tracker.release(alloc_bytes(cap * elem));
    true
}

impl TxnBuilder {
    /// A builder for `model`, naming `file` in its errors.
    pub fn new(model: TxnModel, file: &str) -> TxnBuilder {
        TxnBuilder {
            model,
            file: file.to_string(),
            key_ids: HashMap::new(),
            keys: Vec::new(),
            txns: Vec::new(),
            open: HashMap::new(),
            written: HashMap::new(),
            pos: 0,
            tracker: None,
            keys_reserved: 0,
            exhausted: None,
        }
    }

    /// Reserves what the builder holds (transactions with their micro-ops and the values
    /// read, keys, the writer of every value, transactions in flight) from `limits`' memory
    /// pool before it is allocated, as [`crate::linear::OpsBuilder::limit_memory`] does for
    /// linearizability. When the pool refuses, the builder stops taking events and
    /// [`TxnBuilder::exhausted`] says why; what it holds stays reserved while `limits` lives
    /// (the check goes on using it).
    pub fn limit_memory(&mut self, limits: &Limits) {
        self.tracker = Some(Tracker::new(limits));
    }

    /// Set when the memory budget was used up: the events after it were not taken, and the
    /// history's verdict is unknown.
    pub fn exhausted(&self) -> Option<&MemoryExhausted> {
        self.exhausted.as_ref()
    }

    /// Reserves what taking one more event needs: `heap` bytes, one more transaction when
    /// `new_txn`, the keys named since the last call, `writes` more entries of the writers'
    /// table and one of the table of transactions in flight. False, with
    /// [`TxnBuilder::exhausted`] set, when the pool refuses.
    fn reserve(&mut self, line: u64, heap: usize, new_txn: bool, writes: usize) -> bool {
        let Some(tracker) = &mut self.tracker else {
            return true;
        };
        let key_heap: usize = self.keys[self.keys_reserved..]
            .iter()
            .map(|k| match k {
                Key::Str(s) => 2 * alloc_bytes(s.len()),
                Key::Int(_) => 0,
            })
            .sum();
        let new_keys = self.keys.len() - self.keys_reserved;
        self.keys_reserved = self.keys.len();
        let mut ok = tracker.take(heap + key_heap);
        // Keys: the vector and the table that interns them (grown as the parse named them).
        ok = ok
            && tracker.take(
                new_keys
                    * (2 * std::mem::size_of::<Key>() + std::mem::size_of::<(Key, KeyId)>() + 8),
            );
        if ok && new_txn {
            let txns = &mut self.txns;
            ok = grow_vec(
                tracker,
                txns.len(),
                txns.capacity(),
                std::mem::size_of::<Txn>(),
                |more| txns.reserve_exact(more),
            );
            let (len, cap) = (self.open.len(), self.open.capacity());
            let open = &mut self.open;
            ok = ok
                && tracker.grow_table(len, cap, std::mem::size_of::<(u64, usize)>(), |more| {
                    open.reserve(more);
                    open.capacity()
                });
        }
        for _ in 0..writes {
            if !ok {
                break;
            }
            let (len, cap) = (self.written.len(), self.written.capacity());
            let written = &mut self.written;
            ok = tracker.grow_table(
                len,
                cap,
                std::mem::size_of::<((KeyId, i64), u32)>(),
                |more| {
                    written.reserve(more);
                    written.capacity()
                },
            );
        }
        if !ok {
            self.exhausted = Some(MemoryExhausted {
                limit: tracker.limit(),
                line,
                what: format!(
                    "the transaction builder held {} bytes for {} transactions over {} keys",
                    tracker.held(),
                    self.txns.len(),
                    self.keys.len()
                ),
            });
        }
        ok
    }

    fn err(&self, l: &Located, column: u64, msg: impl Into<String>) -> InputError {
        InputError::at(&self.file, l.line, column, msg)
    }

    fn key_id(&mut self, v: &Value) -> Option<KeyId> {
        let key = match v {
            Value::Int(i) => Key::Int(*i),
            Value::Str(s) => Key::Str(s.clone()),
            _ => return None,
        };
        if let Some(id) = self.key_ids.get(&key) {
            return Some(*id);
        }
        let id = self.keys.len() as KeyId;
        self.keys.push(key.clone());
        self.key_ids.insert(key, id);
        Some(id)
    }

    /// Adds the next event (after the [`crate::read::Validator`] has accepted it).
    pub fn push(&mut self, l: &Located) -> Result<(), InputError> {
        let pos = self.pos;
        self.pos += 1;
        let ev = &l.event;
        let Process::Client(p) = ev.process else {
            return Ok(());
        };
        if self.exhausted.is_some() {
            return Ok(());
        }
        if ev.f != "txn" {
            return Err(self.err(
                l,
                l.f_column,
                format!(
                    "unknown function {:?} for model {} (expected \"txn\")",
                    ev.f,
                    self.model.name()
                ),
            ));
        }
        if ev.key.is_some() {
            return Err(self.err(
                l,
                1,
                "a transaction has no top-level key (keys belong in its micro-ops)",
            ));
        }
        let mops = if ev.kind != EventKind::Invoke && ev.value.is_null() {
            None
        } else {
            Some(self.mops(l, ev.kind)?)
        };
        if ev.kind == EventKind::Invoke {
            let mops = mops.unwrap_or_default();
            let writes = mops.iter().filter(|m| m.is_write()).count();
            if !self.reserve(l.line, mops_bytes(&mops), true, writes) {
                return Ok(());
            }
            self.check_unique_writes(l, &mops)?;
            self.open.insert(p, self.txns.len());
            self.txns.push(Txn {
                process: p,
                status: Status::Info,
                mops,
                index: ev.index,
                complete_index: None,
                invoke_pos: pos,
                complete_pos: None,
                line: l.line,
                invoke_line: l.line,
            });
            return Ok(());
        }
        let Some(t) = self.open.remove(&p) else {
            return Err(self.err(
                l,
                1,
                format!("process {p} completes a transaction it never invoked"),
            ));
        };
        let status = match ev.kind {
            EventKind::Ok => Status::Ok,
            EventKind::Fail => Status::Fail,
            _ => Status::Info,
        };
        if let Some(mops) = mops {
            let invoked = &self.txns[t].mops;
            let same_shape = mops.len() == invoked.len()
                && mops.iter().zip(invoked).all(|(a, b)| match (a, b) {
                    (Mop::Append { .. }, Mop::Append { .. })
                    | (Mop::Write { .. }, Mop::Write { .. }) => a == b,
                    (Mop::ReadList { key: x, .. }, Mop::ReadList { key: y, .. })
                    | (Mop::ReadReg { key: x, .. }, Mop::ReadReg { key: y, .. }) => x == y,
                    _ => false,
                });
            if !same_shape {
                return Err(self.err(
                    l,
                    l.value_column,
                    format!(
                        "the completion's micro-ops differ from those invoked on line {} (expected the same micro-ops, with reads filled in)",
                        self.txns[t].line
                    ),
                ));
            }
            if status == Status::Ok {
                let (new, old) = (mops_bytes(&mops), mops_bytes(&self.txns[t].mops));
                if !self.reserve(l.line, new, false, 0) {
                    return Ok(());
                }
                if let Some(tracker) = &mut self.tracker {
                    tracker.release(old);
                }
                self.txns[t].mops = mops;
            }
        } else if status == Status::Ok {
            return Err(self.err(l, l.value_column, "an ok transaction needs its micro-ops as value (expected e.g. [[\"r\",\"x\",[1,2]]])"));
        }
        let txn = &mut self.txns[t];
        txn.status = status;
        txn.complete_index = Some(ev.index);
        if status != Status::Info {
            txn.complete_pos = Some(pos);
        }
        txn.line = l.line;
        Ok(())
    }

    fn check_unique_writes(&mut self, l: &Located, mops: &[Mop]) -> Result<(), InputError> {
        for m in mops {
            if let Mop::Append { key, value } | Mop::Write { key, value } = m {
                if let Some(first) = self.written.insert((*key, *value), self.txns.len() as u32) {
                    let line = self
                        .txns
                        .get(first as usize)
                        .map_or(l.line, |t| t.invoke_line);
                    let (what, did) = if self.model == TxnModel::ListAppend {
                        ("appended", "appended")
                    } else {
                        ("written", "wrote")
                    };
                    return Err(self.err(
                        l,
                        l.value_column,
                        format!(
                            "value {value} is {what} to key {} again (line {line} {did} it first); {} needs unique values per key",
                            self.keys[*key as usize],
                            self.model.name()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn mops(&mut self, l: &Located, kind: EventKind) -> Result<Vec<Mop>, InputError> {
        let example = match self.model {
            TxnModel::ListAppend => "[[\"append\",\"x\",1],[\"r\",\"y\",null]]",
            TxnModel::RwRegister => "[[\"w\",\"x\",1],[\"r\",\"y\",null]]",
        };
        let col = l.value_column;
        let Value::List(items) = &l.event.value else {
            return Err(self.err(
                l,
                col,
                format!(
                    "expected a list of micro-ops such as {example}, found {}",
                    l.event.value
                ),
            ));
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let parts = match item {
                Value::List(p) if p.len() == 3 => p,
                other => {
                    return Err(self.err(
                        l,
                        col,
                        format!(
                        "micro-op {i}: expected [f, key, value] such as {example}, found {other}"
                    ),
                    ))
                }
            };
            let f = parts[0].as_str().unwrap_or("");
            let key = self.key_id(&parts[1]).ok_or_else(|| {
                self.err(
                    l,
                    col,
                    format!(
                        "micro-op {i}: a key must be an integer or a string, found {}",
                        parts[1]
                    ),
                )
            })?;
            let v = &parts[2];
            let known = kind == EventKind::Ok;
            let mop = match (self.model, f) {
                (TxnModel::ListAppend, "append") | (TxnModel::RwRegister, "w") => {
                    let value = v.as_int().ok_or_else(|| {
                        self.err(
                            l,
                            col,
                            format!(
                                "micro-op {i}: expected an integer to {}, found {v}",
                                if f == "w" { "write" } else { "append" }
                            ),
                        )
                    })?;
                    if f == "w" {
                        Mop::Write { key, value }
                    } else {
                        Mop::Append { key, value }
                    }
                }
                (_, "r") => {
                    if kind == EventKind::Invoke && !v.is_null() {
                        return Err(self.err(l, col, format!("micro-op {i}: a read in an invoke must carry null (its value is known only on completion), found {v}")));
                    }
                    match self.model {
                        TxnModel::ListAppend => {
                            let value = if known {
                                Some(match v {
                                    Value::Null => Vec::new(),
                                    Value::List(xs) => xs
                                        .iter()
                                        .map(|x| x.as_int())
                                        .collect::<Option<Vec<i64>>>()
                                        .ok_or_else(|| self.err(l, col, format!("micro-op {i}: expected a list of integers (or null) as the value read, found {v}")))?,
                                    other => return Err(self.err(l, col, format!("micro-op {i}: expected a list of integers (or null) as the value read, found {other}"))),
                                })
                            } else {
                                None
                            };
                            Mop::ReadList { key, value }
                        }
                        TxnModel::RwRegister => {
                            let value = if known {
                                Some(match v {
                                    Value::Null => None,
                                    Value::Int(x) => Some(*x),
                                    other => return Err(self.err(l, col, format!("micro-op {i}: expected an integer (or null) as the value read, found {other}"))),
                                })
                            } else {
                                None
                            };
                            Mop::ReadReg { key, value }
                        }
                    }
                }
                _ => {
                    let known_ops = match self.model {
                        TxnModel::ListAppend => "\"append\" or \"r\"",
                        TxnModel::RwRegister => "\"w\" or \"r\"",
                    };
                    return Err(self.err(
                        l,
                        col,
                        format!(
                            "micro-op {i}: unknown micro-op {} for model {} (expected {known_ops})",
                            parts[0],
                            self.model.name()
                        ),
                    ));
                }
            };
            out.push(mop);
        }
        Ok(out)
    }

    /// Ends the history; transactions still in flight count as `info`. What the builder
    /// reserved stays reserved for as long as the memory pool lives.
    pub fn finish(self) -> Result<TxnHistory, InputError> {
        if let Some(tracker) = self.tracker {
            tracker.keep();
        }
        Ok(TxnHistory {
            model: self.model,
            txns: self.txns,
            keys: self.keys,
            writers: self.written,
        })
    }
}

/// Builds a history from already-read events (tests, fuzzing, the generator).
pub fn from_events(
    model: TxnModel,
    file: &str,
    events: impl IntoIterator<Item = Located>,
) -> Result<TxnHistory, InputError> {
    let mut v = crate::read::Validator::new(file);
    let mut b = TxnBuilder::new(model, file);
    for l in events {
        v.check(&l)?;
        b.push(&l)?;
    }
    v.finish()?;
    b.finish()
}

/// Reads and validates a whole history from text in any format the readers know.
pub fn from_text(model: TxnModel, file: &str, text: &str) -> Result<TxnHistory, InputError> {
    let reader = crate::read::from_reader(
        std::io::Cursor::new(text.to_string()),
        file,
        crate::read::Format::Auto,
    )?;
    let mut v = crate::read::Validator::new(file);
    let mut b = TxnBuilder::new(model, file);
    for l in reader {
        let l = l?;
        v.check(&l)?;
        b.push(&l)?;
    }
    v.finish()?;
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jsonl_and_edn() {
        let j = "{\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1],[\"r\",\"x\",null]]}\n{\"index\":1,\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1],[\"r\",\"x\",[1]]]}\n";
        let h = from_text(TxnModel::ListAppend, "h", j).unwrap();
        assert_eq!(h.txns.len(), 1);
        assert_eq!(h.txns[0].status, Status::Ok);
        assert_eq!(
            h.txns[0].mops[1],
            Mop::ReadList {
                key: 0,
                value: Some(vec![1])
            }
        );
        let e = "{:type :invoke, :f :txn, :value [[:append :x 1] [:r :x nil]], :process 0, :index 0}\n{:type :ok, :f :txn, :value [[:append :x 1] [:r :x [1]]], :process 0, :index 1}\n";
        let h2 = from_text(TxnModel::ListAppend, "h", e).unwrap();
        assert_eq!(h2.txns[0].mops, h.txns[0].mops);
        assert_eq!(h2.keys, vec![Key::Str("x".into())]);
    }

    #[test]
    fn errors() {
        let bad = |model, text: &str| from_text(model, "h", text).unwrap_err().to_string();
        let e = bad(TxnModel::ListAppend, "{\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",[1]]]}\n");
        assert!(
            e.starts_with("h:1:") && e.contains("must carry null"),
            "{e}"
        );
        let e = bad(TxnModel::ListAppend, "{\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"w\",\"x\",1]]}\n");
        assert!(e.contains("unknown micro-op \"w\""), "{e}");
        let e = bad(TxnModel::ListAppend, "{\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n{\"index\":1,\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n");
        assert!(
            e.starts_with("h:2:") && e.contains("appended to key \"x\" again (line 1"),
            "{e}"
        );
        let e = bad(
            TxnModel::RwRegister,
            "{:type :invoke, :f :txn, :value [[:w :x :a]], :process 0}\n",
        );
        assert!(
            e.starts_with("h:1:") && e.contains("expected an integer to write"),
            "{e}"
        );
    }
}
