//! Output that is kept within a size: the head of a command's output (`exec --max-output`), or
//! the head and the tail of a stream written to a file (an adapter's stderr, a node's log),
//! with a line saying what was cut between them.

use std::collections::VecDeque;
use std::io::{self, Write};

/// Appends `data` to `kept` up to `limit` bytes; counts the rest in `dropped`.
pub fn keep(kept: &mut Vec<u8>, dropped: &mut u64, data: &[u8], limit: usize) {
    let room = limit.saturating_sub(kept.len()).min(data.len());
    kept.extend_from_slice(&data[..room]);
    *dropped += (data.len() - room) as u64;
}

/// The line written where `cut` bytes were left out, keeping the first `head` and the last
/// `tail` bytes of `what`.
pub fn cut_line(what: &str, cut: u64, head: u64, tail: u64) -> String {
    format!(
        "\n== faultline: {cut} bytes of {what} cut here (kept the first {head} and the last {tail} bytes) ==\n"
    )
}

/// A writer that passes the first `head` bytes through, keeps the last `tail` bytes of the
/// rest in memory, and at [`CappedWriter::finish`] writes a line saying how much was cut and
/// then that tail. Writing more than `head` bytes so costs at most `tail` bytes of memory.
#[derive(Debug)]
pub struct CappedWriter<W: Write> {
    inner: W,
    what: String,
    head: u64,
    tail_limit: usize,
    written: u64,
    tail: VecDeque<u8>,
    cut: u64,
}

impl<W: Write> CappedWriter<W> {
    /// A writer into `inner` of the stream `what` (named in the cut line), keeping `head`
    /// bytes, then the last `tail` bytes.
    pub fn new(inner: W, what: impl Into<String>, head: u64, tail: usize) -> CappedWriter<W> {
        CappedWriter {
            inner,
            what: what.into(),
            head,
            tail_limit: tail,
            written: 0,
            tail: VecDeque::new(),
            cut: 0,
        }
    }

    /// Bytes left out so far (not counting the tail still held).
    pub fn cut(&self) -> u64 {
        self.cut
    }

    /// Writes the cut line and the tail held (if anything was cut), then flushes; the writer
    /// goes on in the same way (what follows is held as a new tail). Returns the bytes cut.
    pub fn finish(&mut self) -> io::Result<u64> {
        let cut = std::mem::take(&mut self.cut);
        if cut > 0 {
            let line = cut_line(&self.what, cut, self.head, self.tail.len() as u64);
            self.inner.write_all(line.as_bytes())?;
        }
        let (a, b) = self.tail.as_slices();
        self.inner.write_all(a)?;
        self.inner.write_all(b)?;
        self.tail.clear();
        self.inner.flush()?;
        Ok(cut)
    }

    /// The inner writer (after [`CappedWriter::finish`], to see everything).
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write> Write for CappedWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.head.saturating_sub(self.written).min(data.len() as u64) as usize;
        if room > 0 {
            self.inner.write_all(&data[..room])?;
            self.written += room as u64;
        }
        let rest = &data[room..];
        // Only the last `tail_limit` bytes of the rest can stay.
        let skip = rest.len().saturating_sub(self.tail_limit);
        self.cut += skip as u64;
        self.tail.extend(&rest[skip..]);
        let over = self.tail.len().saturating_sub(self.tail_limit);
        if over > 0 {
            self.tail.drain(..over);
            self.cut += over as u64;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_and_the_tail_are_kept_and_the_cut_is_said() {
        let mut w = CappedWriter::new(Vec::new(), "stderr", 4, 3);
        for chunk in [&b"ab"[..], b"cdef", b"ghij", b"k"] {
            w.write_all(chunk).unwrap();
        }
        assert_eq!(w.finish().unwrap(), 4);
        let out = String::from_utf8(w.get_ref().clone()).unwrap();
        assert_eq!(
            out,
            "abcd\n== faultline: 4 bytes of stderr cut here (kept the first 4 and the last 3 bytes) ==\nijk"
        );
        // Within the limit, nothing is cut and nothing said.
        let mut w = CappedWriter::new(Vec::new(), "stderr", 4, 3);
        w.write_all(b"abcdefg").unwrap();
        assert_eq!(w.finish().unwrap(), 0);
        assert_eq!(w.get_ref().as_slice(), b"abcdefg");
        // A large write keeps only its end in memory.
        let mut w = CappedWriter::new(Vec::new(), "log", 0, 2);
        w.write_all(&[b'x'; 1 << 20]).unwrap();
        w.write_all(b"yz").unwrap();
        assert!(w.tail.len() <= 2);
        assert_eq!(w.finish().unwrap(), 1 << 20);
        assert!(w.get_ref().ends_with(b"==\nyz"));
    }
}
