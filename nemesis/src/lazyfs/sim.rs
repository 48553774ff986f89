//! Property tests of the model: a miniature of the filesystem (`SimFs`: the engine's rules
//! over an in-memory backing tree, with the model's [`Pending`] and [`Journal`]) driven by
//! random creates, writes, truncates, renames, unlinks, fsyncs and directory fsyncs, then a
//! crash, and compared with a reference written from what POSIX promises.

use super::model::{Durable, Journal, Pending, Store, PAGE};
use proptest::prelude::*;
use rand::SeedableRng;
use std::collections::{BTreeMap, HashMap};
use std::io;

/// Directories: the root and one below it, both durable from the start (few names, so that
/// steps often meet the same file).
const DIRS: u64 = 2;
/// Names used in each directory.
const NAMES: [&str; 2] = ["x", "y"];

type Dir = u64;
type Id = u64;
type Tree = BTreeMap<(Dir, String), Id>;
/// A name and, when POSIX promises them, its contents.
type Promise = ((Dir, String), Option<Vec<u8>>);

/// A durable file in memory.
#[derive(Debug, Clone, Default)]
struct Mem(Vec<u8>);

impl Durable for Mem {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = (offset as usize).min(self.0.len());
        let n = buf.len().min(self.0.len() - start);
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        Ok(n)
    }
}

impl Store for Mem {
    fn write_at(&mut self, data: &[u8], offset: u64) -> io::Result<()> {
        let end = offset as usize + data.len();
        if self.0.len() < end {
            self.0.resize(end, 0);
        }
        self.0[offset as usize..end].copy_from_slice(data);
        Ok(())
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.resize(len as usize, 0);
        Ok(())
    }
}

/// One step of a test.
#[derive(Debug, Clone)]
enum Op {
    Create(Dir, usize),
    Write(Dir, usize, u64, usize, u8),
    Truncate(Dir, usize, u64),
    Rename(Dir, usize, Dir, usize),
    Unlink(Dir, usize),
    Fsync(Dir, usize),
    FsyncDir(Dir),
}

fn op() -> impl Strategy<Value = Op> {
    let d = 0..DIRS;
    let n = 0..NAMES.len();
    prop_oneof![
        3 => (d.clone(), n.clone()).prop_map(|(d, n)| Op::Create(d, n)),
        4 => (d.clone(), n.clone(), 0..3 * PAGE + 100, 1..PAGE as usize + 300, any::<u8>())
            .prop_map(|(d, n, o, l, b)| Op::Write(d, n, o, l, b)),
        1 => (d.clone(), n.clone(), 0..3 * PAGE).prop_map(|(d, n, l)| Op::Truncate(d, n, l)),
        2 => (d.clone(), n.clone(), d.clone(), n.clone())
            .prop_map(|(a, b, c, e)| Op::Rename(a, b, c, e)),
        1 => (d.clone(), n.clone()).prop_map(|(d, n)| Op::Unlink(d, n)),
        2 => (d.clone(), n.clone()).prop_map(|(d, n)| Op::Fsync(d, n)),
        2 => d.prop_map(Op::FsyncDir),
    ]
}

fn key(d: Dir, n: usize) -> (Dir, String) {
    (d, NAMES[n].to_string())
}

/// The engine's undo entries, over the in-memory tree.
#[derive(Debug)]
enum SimUndo {
    Created((Dir, String)),
    Removed((Dir, String), u64),
    Renamed((Dir, String), (Dir, String), Option<u64>),
}

impl SimUndo {
    fn dirs(&self) -> Vec<Dir> {
        match self {
            SimUndo::Created(p) | SimUndo::Removed(p, _) => vec![p.0],
            SimUndo::Renamed(a, b, _) => vec![a.0, b.0],
        }
    }
}

/// The filesystem's rules in miniature: names applied at once and journaled, removed names
/// kept in a grave, data in a page map over the durable file.
#[derive(Debug, Default)]
struct SimFs {
    tree: Tree,
    grave: BTreeMap<u64, Id>,
    grave_seq: u64,
    files: HashMap<Id, (Mem, Option<Pending>)>,
    next: Id,
    journal: Journal<SimUndo, Dir>,
}

impl SimFs {
    fn record(&mut self, u: SimUndo) {
        let dirs = u.dirs();
        self.journal.record(u, dirs);
    }

    fn pending(&mut self, id: Id) -> (&Mem, &mut Pending) {
        let (mem, p) = self.files.get_mut(&id).expect("file");
        let p = p.get_or_insert_with(|| Pending::new(mem.0.len() as u64));
        (mem, p)
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Create(d, n) if !self.tree.contains_key(&key(d, n)) => {
                self.next += 1;
                self.files.insert(self.next, (Mem::default(), None));
                self.tree.insert(key(d, n), self.next);
                self.record(SimUndo::Created(key(d, n)));
            }
            Op::Write(d, n, off, len, b) => {
                if let Some(&id) = self.tree.get(&key(d, n)) {
                    let (mem, p) = self.pending(id);
                    p.write(off, &vec![b; len], mem).unwrap();
                }
            }
            Op::Truncate(d, n, len) => {
                if let Some(&id) = self.tree.get(&key(d, n)) {
                    self.pending(id).1.truncate(len);
                }
            }
            Op::Fsync(d, n) => {
                if let Some(&id) = self.tree.get(&key(d, n)) {
                    let (mem, p) = self.files.get_mut(&id).expect("file");
                    if let Some(mut p) = p.take() {
                        p.sync(mem).unwrap();
                    }
                }
            }
            Op::Unlink(d, n) => {
                if let Some(id) = self.tree.remove(&key(d, n)) {
                    self.grave_seq += 1;
                    self.grave.insert(self.grave_seq, id);
                    self.record(SimUndo::Removed(key(d, n), self.grave_seq));
                }
            }
            Op::Rename(d, n, d2, n2) => self.rename(key(d, n), key(d2, n2)),
            Op::FsyncDir(d) => {
                let done = self.journal.commit_dir(&d);
                self.commit(done);
            }
            Op::Create(..) => {}
        }
    }

    fn rename(&mut self, from: (Dir, String), to: (Dir, String)) {
        let Some(&id) = self.tree.get(&from) else {
            return;
        };
        let displaced = match self.tree.get(&to) {
            Some(&t) if t == id => return,
            Some(&t) => {
                self.grave_seq += 1;
                self.grave.insert(self.grave_seq, t);
                Some(self.grave_seq)
            }
            None => None,
        };
        self.tree.remove(&from);
        self.tree.insert(to.clone(), id);
        self.record(SimUndo::Renamed(from, to, displaced));
    }

    fn commit(&mut self, done: Vec<SimUndo>) {
        for u in done {
            if let SimUndo::Removed(_, g) | SimUndo::Renamed(_, _, Some(g)) = u {
                self.grave.remove(&g);
            }
        }
    }

    fn undo(&mut self, undo: Vec<SimUndo>) {
        for u in undo {
            match u {
                SimUndo::Created(p) => {
                    self.tree.remove(&p);
                }
                SimUndo::Removed(p, g) => {
                    let id = self.grave.remove(&g).expect("grave");
                    self.tree.insert(p, id);
                }
                SimUndo::Renamed(from, to, displaced) => {
                    let id = self.tree.remove(&to).expect("renamed");
                    self.tree.insert(from, id);
                    if let Some(g) = displaced {
                        let t = self.grave.remove(&g).expect("grave");
                        self.tree.insert(to, t);
                    }
                }
            }
        }
    }

    fn lose(&mut self) {
        for (_, p) in self.files.values_mut() {
            *p = None;
        }
        let undo = self.journal.lose();
        self.undo(undo);
    }

    fn torn(&mut self, seed: u64) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for (mem, p) in self.files.values_mut() {
            if let Some(mut p) = p.take() {
                p.tear(mem, &mut rng).unwrap();
            }
        }
        let k = rand::Rng::random_range(&mut rng, 0..=self.journal.len());
        let kept = self.journal.commit_prefix(k);
        self.commit(kept);
        let undo = self.journal.lose();
        self.undo(undo);
    }

    /// What the backing tree holds: each name and its durable contents.
    fn survivors(&self) -> BTreeMap<(Dir, String), Vec<u8>> {
        assert!(self.grave.is_empty(), "grave left: {:?}", self.grave);
        self.tree
            .iter()
            .map(|(k, id)| (k.clone(), self.files[id].0 .0.clone()))
            .collect()
    }
}

/// The reference: the current tree and contents, each file's contents at its last fsync,
/// and the namespace changes in order with how many of them a directory fsync made
/// durable (changes are durable in order, up to the last one in the fsynced directory).
#[derive(Debug, Default)]
struct Reference {
    tree: Tree,
    now: HashMap<Id, Vec<u8>>,
    synced: HashMap<Id, Vec<u8>>,
    next: Id,
    changes: Vec<(Vec<Dir>, Change)>,
    durable: usize,
    /// Directories changed since their last fsync; files written since theirs.
    dirty_dirs: Vec<Dir>,
    dirty_files: Vec<Id>,
}

#[derive(Debug, Clone)]
enum Change {
    Create((Dir, String), Id),
    Unlink((Dir, String)),
    Rename((Dir, String), (Dir, String)),
}

fn replay(changes: &[(Vec<Dir>, Change)]) -> Tree {
    let mut t = Tree::new();
    for (_, c) in changes {
        match c {
            Change::Create(p, id) => {
                t.insert(p.clone(), *id);
            }
            Change::Unlink(p) => {
                t.remove(p);
            }
            Change::Rename(a, b) => {
                if let Some(id) = t.remove(a) {
                    t.insert(b.clone(), id);
                }
            }
        }
    }
    t
}

impl Reference {
    fn change(&mut self, dirs: Vec<Dir>, c: Change) {
        self.dirty_dirs.extend(dirs.iter().copied());
        self.changes.push((dirs, c));
        self.tree = replay(&self.changes);
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Create(d, n) if !self.tree.contains_key(&key(d, n)) => {
                self.next += 1;
                self.now.insert(self.next, Vec::new());
                self.synced.insert(self.next, Vec::new());
                self.change(vec![d], Change::Create(key(d, n), self.next));
            }
            Op::Write(d, n, off, len, b) => {
                if let Some(&id) = self.tree.get(&key(d, n)) {
                    let f = self.now.get_mut(&id).expect("file");
                    let end = off as usize + len;
                    if f.len() < end {
                        f.resize(end, 0);
                    }
                    f[off as usize..end].fill(b);
                    self.dirty_files.push(id);
                }
            }
            Op::Truncate(d, n, len) => {
                if let Some(&id) = self.tree.get(&key(d, n)) {
                    self.now.get_mut(&id).expect("file").resize(len as usize, 0);
                    self.dirty_files.push(id);
                }
            }
            Op::Fsync(d, n) => {
                if let Some(&id) = self.tree.get(&key(d, n)) {
                    self.synced.insert(id, self.now[&id].clone());
                    self.dirty_files.retain(|f| *f != id);
                }
            }
            Op::Unlink(d, n) if self.tree.contains_key(&key(d, n)) => {
                self.change(vec![d], Change::Unlink(key(d, n)));
            }
            Op::Rename(d, n, d2, n2) => {
                let (a, b) = (key(d, n), key(d2, n2));
                let same = self
                    .tree
                    .get(&a)
                    .is_some_and(|x| self.tree.get(&b) == Some(x));
                if self.tree.contains_key(&a) && !same {
                    self.change(vec![d, d2], Change::Rename(a, b));
                }
            }
            Op::FsyncDir(d) => {
                if let Some(last) = self.changes.iter().rposition(|(ds, _)| ds.contains(&d)) {
                    self.durable = self.durable.max(last + 1);
                }
                self.dirty_dirs.retain(|x| *x != d);
            }
            Op::Create(..) | Op::Unlink(..) => {}
        }
    }

    /// What survives a crash that keeps the first `k` changes, with synced contents.
    fn after_crash(&self, k: usize) -> BTreeMap<(Dir, String), Vec<u8>> {
        replay(&self.changes[..k])
            .into_iter()
            .map(|(p, id)| (p, self.synced[&id].clone()))
            .collect()
    }

    /// What POSIX promises survives: each name in a directory fsynced since its last change,
    /// with the contents it had when last fsynced, if not written since.
    fn promised(&self) -> Vec<Promise> {
        self.tree
            .iter()
            .filter(|((d, _), _)| !self.dirty_dirs.contains(d))
            .map(|(p, id)| {
                let clean = !self.dirty_files.contains(id);
                (p.clone(), clean.then(|| self.now[id].clone()))
            })
            .collect()
    }
}

/// Whether `got` is, page by page, either `durable` or `now` (each zero-padded), with the
/// size of one of them.
fn between(got: &[u8], durable: &[u8], now: &[u8]) -> bool {
    if got.len() != durable.len() && got.len() != now.len() {
        return false;
    }
    let page = |v: &[u8], i: usize| -> Vec<u8> {
        let start = i * PAGE as usize;
        let end = (start + PAGE as usize).min(got.len());
        (start..end)
            .map(|j| v.get(j).copied().unwrap_or(0))
            .collect()
    };
    (0..got.len().div_ceil(PAGE as usize)).all(|i| {
        let g = page(got, i);
        g == page(durable, i) || g == page(now, i)
    })
}

fn run(ops: &[Op]) -> (SimFs, Reference) {
    let mut sim = SimFs::default();
    let mut reference = Reference::default();
    for op in ops {
        sim.apply(op);
        reference.apply(op);
    }
    (sim, reference)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Before a crash the filesystem reads as POSIX says; after lose-unfsynced exactly the
    /// durable state survives, and with it everything POSIX promises.
    #[test]
    fn lose_unfsynced_keeps_exactly_what_is_durable(ops in prop::collection::vec(op(), 0..40)) {
        let (mut sim, reference) = run(&ops);
        for (p, id) in &sim.tree {
            let (mem, pending) = &sim.files[id];
            let now = match pending {
                Some(pd) => pd.read(0, u64::MAX, mem).unwrap(),
                None => mem.0.clone(),
            };
            prop_assert_eq!(&now, &reference.now[&reference.tree[p]]);
        }
        sim.lose();
        let got = sim.survivors();
        prop_assert_eq!(&got, &reference.after_crash(reference.durable));
        for (p, contents) in reference.promised() {
            prop_assert!(got.contains_key(&p), "{:?} was promised", p);
            if let Some(c) = contents {
                prop_assert_eq!(&got[&p], &c);
            }
        }
    }

    /// After torn, the namespace is that of some prefix of the changes at least as long as
    /// the durable one, and each file is page by page its synced or its current contents.
    #[test]
    fn torn_keeps_something_between_durable_and_current(
        ops in prop::collection::vec(op(), 0..40),
        seed in any::<u64>(),
    ) {
        let (mut sim, reference) = run(&ops);
        sim.torn(seed);
        let got = sim.survivors();
        let prefix = (reference.durable..=reference.changes.len())
            .any(|k| replay(&reference.changes[..k]) == sim.tree);
        prop_assert!(prefix, "{:?} is no prefix's tree", sim.tree);
        for (p, id) in &sim.tree {
            let ok = between(&got[p], &reference.synced[id], &reference.now[id]);
            prop_assert!(ok, "{:?}: {} bytes", p, got[p].len());
        }
    }
}
