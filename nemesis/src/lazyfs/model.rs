//! The pure state machine of the lazy filesystem, without I/O of its own: a file's data not
//! yet durable ([`Pending`], a page map over the durable file, which it reads and writes only
//! through the [`Durable`] and [`Store`] traits) and the journal of namespace changes not yet
//! durable ([`Journal`], a stack of undo entries whose durable prefix is dropped).

use rand::Rng;
use std::collections::BTreeMap;
use std::io;

/// The page size of the cache: what `torn` keeps or drops as one piece.
pub const PAGE: u64 = 4096;

/// Reads a file's durable contents (the backing file).
pub trait Durable {
    /// Reads into `buf` from `offset`; returns how many bytes were read (fewer at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

/// Changes a file's durable contents.
pub trait Store: Durable {
    /// Writes all of `data` at `offset`.
    fn write_at(&mut self, data: &[u8], offset: u64) -> io::Result<()>;
    /// Sets the length (cutting, or extending with zeros).
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

/// Reads exactly `buf.len()` bytes, zeros past the end of the durable file.
fn read_full(d: &dyn Durable, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = d.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            buf[done..].fill(0);
            break;
        }
        done += n;
    }
    Ok(())
}

/// A file's data that is not durable yet: what it reads as now is, below `size`, the page in
/// `pages` if there is one, else the durable file below `base`, else zeros.
///
/// Invariants: `base <= size` and `base <= durable_len` (a truncation hides the durable bytes
/// above it even when the file grows again), and every page byte at or past `size` is zero
/// (so that growing the file again shows zeros).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    durable_len: u64,
    base: u64,
    size: u64,
    pages: BTreeMap<u64, Box<[u8]>>,
}

impl Pending {
    /// Nothing pending over a durable file of `durable_len` bytes.
    pub fn new(durable_len: u64) -> Pending {
        Pending {
            durable_len,
            base: durable_len,
            size: durable_len,
            pages: BTreeMap::new(),
        }
    }

    /// The size the file has now.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The durable size.
    pub fn durable_len(&self) -> u64 {
        self.durable_len
    }

    /// Whether anything differs from the durable file.
    pub fn is_dirty(&self) -> bool {
        !self.pages.is_empty() || self.size != self.durable_len || self.base != self.durable_len
    }

    /// Bytes held: the pages, plus the size change.
    pub fn pending_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE + self.size.abs_diff(self.durable_len)
    }

    /// Page `index` as the file reads now, if below the end of the file; zero-padded.
    fn current_page(&self, index: u64, d: &dyn Durable) -> io::Result<Box<[u8]>> {
        if let Some(p) = self.pages.get(&index) {
            return Ok(p.clone());
        }
        let mut page = vec![0u8; PAGE as usize].into_boxed_slice();
        let start = index * PAGE;
        if start < self.base {
            let n = (self.base - start).min(PAGE) as usize;
            read_full(d, &mut page[..n], start)?;
        }
        Ok(page)
    }

    /// Reads up to `len` bytes at `offset` as the file reads now.
    pub fn read(&self, offset: u64, len: u64, d: &dyn Durable) -> io::Result<Vec<u8>> {
        let end = offset.saturating_add(len).min(self.size);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut pos = offset;
        while pos < end {
            let index = pos / PAGE;
            let within = (pos % PAGE) as usize;
            let n = ((PAGE - within as u64).min(end - pos)) as usize;
            if let Some(p) = self.pages.get(&index) {
                out.extend_from_slice(&p[within..within + n]);
            } else {
                let mut buf = vec![0u8; n];
                if pos < self.base {
                    let m = (self.base - pos).min(n as u64) as usize;
                    read_full(d, &mut buf[..m], pos)?;
                }
                out.extend_from_slice(&buf);
            }
            pos += n as u64;
        }
        Ok(out)
    }

    /// Writes `data` at `offset` into the cache, growing the file if it ends past its size.
    pub fn write(&mut self, offset: u64, data: &[u8], d: &dyn Durable) -> io::Result<()> {
        let mut pos = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let index = pos / PAGE;
            let within = (pos % PAGE) as usize;
            let n = (PAGE as usize - within).min(rest.len());
            if !self.pages.contains_key(&index) {
                let page = self.current_page(index, d)?;
                self.pages.insert(index, page);
            }
            if let Some(p) = self.pages.get_mut(&index) {
                p[within..within + n].copy_from_slice(&rest[..n]);
            }
            rest = &rest[n..];
            pos += n as u64;
        }
        self.size = self.size.max(offset + data.len() as u64);
        Ok(())
    }

    /// Sets the size: cuts (zeroing the rest of the last page, dropping pages past it and
    /// hiding the durable bytes past it) or extends with zeros.
    pub fn truncate(&mut self, len: u64) {
        if len < self.size {
            let first_gone = len.div_ceil(PAGE);
            self.pages.split_off(&first_gone);
            if !len.is_multiple_of(PAGE) {
                if let Some(p) = self.pages.get_mut(&(len / PAGE)) {
                    p[(len % PAGE) as usize..].fill(0);
                }
            }
            self.base = self.base.min(len);
        }
        self.size = len;
    }

    /// Zeros `len` bytes at `offset` without changing the size (a punched hole or a zeroed
    /// range), as writes of zeros into the cache.
    pub fn zero_range(&mut self, offset: u64, len: u64, d: &dyn Durable) -> io::Result<()> {
        let end = offset.saturating_add(len).min(self.size);
        let mut pos = offset;
        while pos < end {
            let n = (PAGE - pos % PAGE).min(end - pos);
            self.write(pos, &vec![0u8; n as usize], d)?;
            pos += n;
        }
        Ok(())
    }

    /// Makes everything durable: the file in `store` becomes what it reads as now.
    pub fn sync(&mut self, store: &mut dyn Store) -> io::Result<()> {
        if self.base < self.durable_len {
            store.set_len(self.base)?;
        }
        if self.size != self.base || self.base < self.durable_len {
            store.set_len(self.size)?;
        }
        // Runs of consecutive pages go out as one write of at most 1 MiB.
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = 0;
        for (&index, page) in &self.pages {
            let start = index * PAGE;
            if run_start + run.len() as u64 != start || run.len() >= 1 << 20 {
                store.write_at(&run, run_start)?;
                run.clear();
                run_start = start;
            }
            let n = (self.size - start).min(PAGE) as usize;
            run.extend_from_slice(&page[..n]);
        }
        store.write_at(&run, run_start)?;
        *self = Pending::new(self.size);
        Ok(())
    }

    /// A torn write: the durable file becomes, page by page, either what it was or what the
    /// file reads as now (each page that differs chosen with probability 1/2), and its size
    /// either the durable or the current one. Returns how many pages were kept.
    pub fn tear(&mut self, store: &mut dyn Store, rng: &mut impl Rng) -> io::Result<usize> {
        let size = if rng.random_bool(0.5) {
            self.size
        } else {
            self.durable_len
        };
        let mut kept = Vec::new();
        for index in self.differing_pages() {
            if index * PAGE < size && rng.random_bool(0.5) {
                kept.push((index, self.current_page(index, &*store)?));
            }
        }
        store.set_len(size)?;
        for (index, page) in &kept {
            let start = index * PAGE;
            let n = (size - start).min(PAGE) as usize;
            store.write_at(&page[..n], start)?;
        }
        *self = Pending::new(size);
        Ok(kept.len())
    }

    /// The pages where the file may read differently from its durable contents: the cached
    /// ones and those whose durable bytes a truncation hid.
    fn differing_pages(&self) -> Vec<u64> {
        let mut out: Vec<u64> = self.pages.keys().copied().collect();
        let hidden_end = self.durable_len.min(self.size);
        if self.base < hidden_end {
            out.extend(self.base / PAGE..hidden_end.div_ceil(PAGE));
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// One namespace change not yet durable, with the directories (by identity) whose fsync
/// makes it durable.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Journaled<E, D> {
    entry: E,
    dirs: Vec<D>,
}

/// The namespace changes not yet durable, oldest first. Durability is ordered, as in a
/// journaling filesystem (ext4, xfs), which commits its metadata in order: fsyncing a
/// directory makes durable every change up to the last one in that directory, and what
/// survives a crash is always a prefix of the changes. Undoing the others, newest first,
/// therefore always finds the namespace exactly as each change left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal<E, D> {
    entries: Vec<Journaled<E, D>>,
}

impl<E, D> Default for Journal<E, D> {
    fn default() -> Self {
        Journal {
            entries: Vec::new(),
        }
    }
}

impl<E, D: PartialEq> Journal<E, D> {
    /// Records a change made in `dirs` (one, or two for a rename across directories).
    pub fn record(&mut self, entry: E, dirs: Vec<D>) {
        self.entries.push(Journaled { entry, dirs });
    }

    /// How many changes are pending.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The pending changes, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &E> {
        self.entries.iter().map(|j| &j.entry)
    }

    /// An fsync of directory `dir`: the changes that became durable, oldest first.
    pub fn commit_dir(&mut self, dir: &D) -> Vec<E> {
        match self.entries.iter().rposition(|j| j.dirs.contains(dir)) {
            Some(last) => self.commit_prefix(last + 1),
            None => Vec::new(),
        }
    }

    /// Makes the first `n` changes durable (at most all): those, oldest first.
    pub fn commit_prefix(&mut self, n: usize) -> Vec<E> {
        let n = n.min(self.entries.len());
        self.entries.drain(..n).map(|j| j.entry).collect()
    }

    /// A crash: every pending change, newest first, to be undone in that order.
    pub fn lose(&mut self) -> Vec<E> {
        let mut out: Vec<E> = self.entries.drain(..).map(|j| j.entry).collect();
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A durable file in memory.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Mem(pub Vec<u8>);

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

    #[test]
    fn reads_see_writes_and_truncation_hides_durable_bytes() {
        let mut d = Mem(vec![7u8; 10_000]);
        let mut p = Pending::new(10_000);
        p.write(5000, b"abc", &d).unwrap();
        assert_eq!(p.read(4999, 5, &d).unwrap(), b"\x07abc\x07");
        p.truncate(100);
        p.truncate(9000);
        assert_eq!(p.read(98, 4, &d).unwrap(), [7, 7, 0, 0]);
        assert_eq!(p.read(5000, 3, &d).unwrap(), [0, 0, 0]);
        assert_eq!(p.size(), 9000);
        let now = p.read(0, u64::MAX, &d).unwrap();
        p.sync(&mut d).unwrap();
        assert_eq!(d.0, now);
        assert!(!p.is_dirty());
    }

    #[test]
    fn journal_commits_prefixes_and_undoes_newest_first() {
        let mut j = Journal::default();
        j.record("create a/x", vec![1]);
        j.record("create b/y", vec![2]);
        j.record("create a/z", vec![1]);
        j.record("create c/w", vec![3]);
        assert_eq!(j.commit_dir(&2), vec!["create a/x", "create b/y"]);
        assert_eq!(j.commit_dir(&2), Vec::<&str>::new());
        assert_eq!(j.lose(), vec!["create c/w", "create a/z"]);
        assert!(j.is_empty());
    }
}
