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
        let room = self
            .head
            .saturating_sub(self.written)
            .min(data.len() as u64) as usize;
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

/// What copying one file within bounds did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Bytes written (the cut line excluded).
    pub kept: u64,
    /// Bytes left out between the head and the tail.
    pub cut: u64,
    /// Whether the time ran out before the end (what was read is kept, and a line says so).
    pub timed_out: bool,
}

/// Copies `src`, a file of `size` bytes as its stat said, into `dst`, keeping at most `max`
/// bytes: all of it when it fits, else its first three quarters of `max` and its last
/// quarter (seeking past the middle, which is never read), with a line saying what was cut
/// between them. Reading stops at `deadline`, with a line saying so. A file that grows while
/// it is read is cut the same way.
pub fn copy_bounded<R: io::Read + io::Seek, W: Write>(
    src: &mut R,
    size: u64,
    dst: W,
    max: u64,
    deadline: std::time::Instant,
) -> io::Result<Copied> {
    let tail = max / 4;
    let head = max - tail;
    let mut out = CappedWriter::new(dst, "this file", head, tail as usize);
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    // Copies up to `limit` bytes; false when the time ran out first.
    let mut read = |src: &mut R, out: &mut CappedWriter<W>, limit: u64| -> io::Result<bool> {
        let mut done = 0u64;
        while done < limit {
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            let want = (limit - done).min(buf.len() as u64) as usize;
            let n = src.read(&mut buf[..want])?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            done += n as u64;
            total += n as u64;
        }
        Ok(true)
    };
    let mut skipped = 0;
    let finished = if size > max {
        // The head, then the end of the file as it was.
        read(src, &mut out, head)? && {
            skipped = size - head - tail;
            src.seek(io::SeekFrom::Start(size - tail))?;
            read(src, &mut out, tail)?
        }
    } else {
        read(src, &mut out, u64::MAX)?
    };
    let dropped = out.cut;
    out.cut += skipped;
    out.finish()?;
    let mut dst = out.inner;
    if !finished {
        dst.write_all(b"\n== faultline: stopped here: the time to collect this file ran out ==\n")?;
        dst.flush()?;
    }
    Ok(Copied {
        kept: total - dropped,
        cut: dropped + skipped,
        timed_out: !finished,
    })
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

    /// A file as a reader that can also be slow.
    struct Slow(std::io::Cursor<Vec<u8>>, std::time::Duration);

    impl io::Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(self.1);
            let n = buf.len().min(10);
            self.0.read(&mut buf[..n])
        }
    }

    impl io::Seek for Slow {
        fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
            self.0.seek(to)
        }
    }

    #[test]
    fn a_file_is_copied_whole_or_as_head_and_tail_within_its_time() {
        use std::time::{Duration, Instant};
        let later = Instant::now() + Duration::from_secs(60);
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let c = copy_bounded(&mut io::Cursor::new(&data), 1000, &mut out, 1000, later).unwrap();
        assert_eq!((c.kept, c.cut, c.timed_out), (1000, 0, false));
        assert_eq!(out, data);
        // Larger than the limit: 75 bytes of head, 25 of tail, and a line between.
        let mut out = Vec::new();
        let c = copy_bounded(&mut io::Cursor::new(&data), 1000, &mut out, 100, later).unwrap();
        assert_eq!((c.kept, c.cut), (100, 900));
        let line = cut_line("this file", 900, 75, 25);
        assert_eq!(out.len(), 100 + line.len());
        assert_eq!(&out[..75], &data[..75]);
        assert_eq!(&out[75..75 + line.len()], line.as_bytes());
        assert_eq!(&out[75 + line.len()..], &data[975..]);
        // A file that grew past its stat: head and tail too.
        let mut out = Vec::new();
        let c = copy_bounded(&mut io::Cursor::new(&data), 10, &mut out, 100, later).unwrap();
        assert_eq!((c.kept, c.cut), (100, 900));
        assert!(out.ends_with(&data[975..]));
        // Time runs out: what was read is kept, and a line says so.
        let mut slow = Slow(io::Cursor::new(data.clone()), Duration::from_millis(20));
        let mut out = Vec::new();
        let soon = Instant::now() + Duration::from_millis(100);
        let c = copy_bounded(&mut slow, 1000, &mut out, 1000, soon).unwrap();
        assert!(c.timed_out && c.kept < 1000, "{c:?}");
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.ends_with("the time to collect this file ran out ==\n"),
            "{text}"
        );
    }
}
