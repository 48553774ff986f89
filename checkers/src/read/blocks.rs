//! JSONL read in blocks whose lines are parsed in parallel, ahead of the consumer.
//!
//! A reader thread cuts the input into blocks of whole lines ([`BLOCK`] bytes or so), parses
//! each block's lines in pieces, one per core, on worker threads of its own (not rayon's pool:
//! a caller pulling events from inside that pool must not wait on it), and hands the block's
//! events, in line order, through a channel of one block to the [`super::EventReader`] that
//! pulls them. So reading and
//! parsing run on every core while the caller validates and checks what came before, and
//! memory holds a few blocks, never the file. The first error (in line order) ends the stream,
//! as with the line-at-a-time reader: the events before it are delivered, none after it.

use super::{jsonl, jsonl_fast, truncated, Located};
use crate::error::InputError;
use std::io::{BufRead, Read};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;

/// About how many bytes of text a block holds (a block always ends at a line's end).
const BLOCK: usize = 1 << 18;

/// One block's events, or the first error, in line order.
pub(super) type Parsed = Vec<Result<Located, InputError>>;

/// Parses one line of a JSONL history (without blank-line handling): the fast path for the
/// plain lines faultline writes, else the full parser.
pub(super) fn parse_line(text: &str, file: &str, line: u64) -> Result<Located, InputError> {
    match jsonl_fast::parse(text, line) {
        Some(located) => Ok(located),
        None => jsonl::parse_line(text, file, line),
    }
}

/// What one raw line of a JSONL history gives: nothing (a blank line), an event, or an error.
/// `complete` is false for a final line without its newline, which `allow_truncated` skips
/// when it does not parse.
pub(super) fn read_line(
    raw: &[u8],
    file: &str,
    line: u64,
    complete: bool,
    allow_truncated: bool,
) -> Option<Result<Located, InputError>> {
    let text = match std::str::from_utf8(raw) {
        Ok(t) => t,
        Err(e) => {
            let column = String::from_utf8_lossy(&raw[..e.valid_up_to()])
                .chars()
                .count() as u64
                + 1;
            return Some(Err(InputError::at(
                file,
                line,
                column,
                "invalid UTF-8 (expected UTF-8 text)",
            )));
        }
    };
    let text = text.trim_end_matches(['\n', '\r']);
    if text.trim().is_empty() {
        return None;
    }
    match parse_line(text, file, line) {
        Ok(located) => Some(Ok(located)),
        Err(_) if !complete && allow_truncated => None,
        Err(e) if !complete => Some(Err(truncated(e))),
        Err(e) => Some(Err(e)),
    }
}

/// Parses the whole lines of `text` (each ending with `\n`), the first numbered `first_line`,
/// stopping at the first error.
fn parse_piece(text: &[u8], file: &str, first_line: u64) -> Parsed {
    let mut out = Vec::with_capacity(text.len() / 64);
    let mut start = 0;
    for (line, end) in (first_line..).zip(memchr::memchr_iter(b'\n', text)) {
        let item = read_line(&text[start..=end], file, line, true, false);
        start = end + 1;
        if let Some(item) = item {
            let stop = item.is_err();
            out.push(item);
            if stop {
                break;
            }
        }
    }
    out
}

/// A piece of a block for a worker: the block, the piece's byte range and its first line.
type Job = (Arc<Vec<u8>>, usize, usize, u64);

/// A thread of the reader's own that parses pieces of blocks. Each has its own channels, so
/// that pieces come back in line order; it ends when its job channel closes.
struct Worker {
    jobs: Sender<Job>,
    results: Receiver<Parsed>,
}

impl Worker {
    fn start(file: Arc<str>) -> Worker {
        let (jobs, job_rx) = channel::<Job>();
        let (result_tx, results) = channel();
        std::thread::spawn(move || {
            for (block, start, end, line) in job_rx {
                if result_tx
                    .send(parse_piece(&block[start..end], &file, line))
                    .is_err()
                {
                    return;
                }
            }
        });
        Worker { jobs, results }
    }
}

/// Parses a block of whole lines in pieces, one on this thread and one on each worker, in line
/// order; the first error ends it.
fn parse_block(
    text: &Arc<Vec<u8>>,
    file: &str,
    first_line: u64,
    workers: &[Worker],
) -> Vec<Parsed> {
    let target = text.len() / (workers.len() + 1) + 1;
    // Cut at line ends, and number each piece's first line.
    let mut cuts = Vec::with_capacity(workers.len() + 2);
    let mut start = 0;
    let mut line = first_line;
    while start < text.len() {
        let want = (start + target).min(text.len());
        let end = match memchr::memchr(b'\n', &text[want - 1..]) {
            Some(i) => want + i,
            None => text.len(),
        };
        cuts.push((start, end, line));
        line += memchr::memchr_iter(b'\n', &text[start..end]).count() as u64;
        start = end;
    }
    let Some((&(s, e, l), rest)) = cuts.split_first() else {
        return Vec::new();
    };
    let mut sent = Vec::new();
    for (&(s, e, l), worker) in rest.iter().zip(workers) {
        if worker.jobs.send((Arc::clone(text), s, e, l)).is_ok() {
            sent.push((worker, l));
        }
    }
    let mut parsed = vec![parse_piece(&text[s..e], file, l)];
    for (worker, line) in sent {
        // A piece's parse does not panic; if it did, its first line is an error.
        parsed.push(worker.results.recv().unwrap_or_else(|_| {
            let why = "internal error: the thread reading this line stopped";
            vec![Err(InputError::at(file, line, 1, why))]
        }));
    }
    // Pieces beyond the workers (none: there are as many cuts as threads) are parsed here.
    for &(s, e, l) in rest.iter().skip(workers.len()) {
        parsed.push(parse_piece(&text[s..e], file, l));
    }
    if let Some(first_error) = parsed
        .iter()
        .position(|p| p.last().is_some_and(Result::is_err))
    {
        parsed.truncate(first_error + 1);
    }
    parsed
}

/// Whether a block's last piece ends with an error.
fn failed(pieces: &[Parsed]) -> bool {
    pieces
        .last()
        .and_then(|p| p.last())
        .is_some_and(Result::is_err)
}

/// Reads `input` to its end in blocks, sending each block's events; stops at the first error
/// or when the receiver is gone.
fn produce(
    mut input: Box<dyn BufRead + Send>,
    file: String,
    allow_truncated: bool,
    tx: SyncSender<Vec<Parsed>>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shared: Arc<str> = Arc::from(file.as_str());
    let workers: Vec<Worker> = (1..threads)
        .map(|_| Worker::start(Arc::clone(&shared)))
        .collect();
    let mut line = 1u64;
    loop {
        // Fill to a block, keeping the partial line carried over from the last one.
        buf.reserve(BLOCK + (BLOCK >> 2));
        let before = buf.len();
        let want = BLOCK.saturating_sub(before).max(1 << 16);
        let read = (&mut input).take(want as u64).read_to_end(&mut buf);
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(vec![vec![Err(InputError::Io { file, source: e })]]);
                return;
            }
        };
        let at_end = n == 0;
        // Whole lines only; at the end, the last line may lack its newline.
        let whole = memchr::memrchr(b'\n', &buf).map_or(0, |i| i + 1);
        if !at_end && whole == 0 {
            continue; // a line longer than a block: read on
        }
        // The block's whole lines move out, shared with the workers; the rest stays.
        let tail = buf.split_off(whole);
        let block = Arc::new(std::mem::replace(&mut buf, tail));
        let mut parsed = parse_block(&block, &file, line, &workers);
        line += memchr::memchr_iter(b'\n', &block).count() as u64;
        let broke = failed(&parsed);
        if at_end && !broke && !buf.is_empty() {
            if let Some(item) = read_line(&buf, &file, line, false, allow_truncated) {
                parsed.push(vec![item]);
            }
        }
        let stop = at_end || failed(&parsed);
        if !parsed.is_empty() && tx.send(parsed).is_err() {
            return;
        }
        if stop {
            return;
        }
    }
}

/// The receiving end: blocks of events as the reader thread parsed them.
pub(super) struct Blocks {
    rx: Receiver<Vec<Parsed>>,
    /// The pieces of the block being read, and the piece being read.
    pieces: std::vec::IntoIter<Parsed>,
    current: std::vec::IntoIter<Result<Located, InputError>>,
}

impl Blocks {
    /// Starts the reader thread on `input`.
    pub(super) fn start(
        input: Box<dyn BufRead + Send>,
        file: &str,
        allow_truncated: bool,
    ) -> Blocks {
        let (tx, rx) = sync_channel(1);
        let file = file.to_string();
        std::thread::spawn(move || produce(input, file, allow_truncated, tx));
        Blocks {
            rx,
            pieces: Vec::new().into_iter(),
            current: Vec::new().into_iter(),
        }
    }

    /// The next event or error; `None` at the end.
    pub(super) fn next(&mut self) -> Option<Result<Located, InputError>> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(item);
            }
            self.current = match self.pieces.next() {
                Some(piece) => piece.into_iter(),
                None => {
                    self.pieces = self.rx.recv().ok()?.into_iter();
                    continue;
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::read::{from_reader, Format, Located};

    fn line(i: u64) -> String {
        format!(
            "{{\"index\":{i},\"process\":{},\"type\":\"{}\",\"f\":\"write\",\"key\":{},\"value\":{}}}\n",
            i / 2 % 7,
            if i.is_multiple_of(2) { "invoke" } else { "ok" },
            i / 2 % 5,
            i / 2
        )
    }

    fn read(text: String, allow_truncated: bool) -> (Vec<Located>, Option<String>) {
        let mut r = from_reader(std::io::Cursor::new(text), "t", Format::Jsonl).unwrap();
        r.allow_truncated_tail(allow_truncated);
        let mut events = Vec::new();
        for item in r {
            match item {
                Ok(l) => events.push(l),
                Err(e) => return (events, Some(e.to_string())),
            }
        }
        (events, None)
    }

    /// Many blocks of lines, with blank lines and lines the fast path leaves to the full
    /// parser: every event arrives once, in order, with its line number.
    #[test]
    fn events_of_many_blocks_arrive_in_order_with_their_lines() {
        let n = 60_000u64;
        let mut text = String::new();
        let mut lines = Vec::new();
        let mut at = 0u64;
        for i in 0..n {
            if i.is_multiple_of(1000) {
                text.push_str("  \r\n");
                at += 1;
            }
            let l = line(i);
            // Every 7th line with spaces, which only the full parser takes.
            let l = if i.is_multiple_of(7) {
                l.replace(",\"f\"", ", \"f\"")
            } else {
                l
            };
            text.push_str(&l);
            at += 1;
            lines.push(at);
        }
        assert!(text.len() > 4 * super::BLOCK, "{}", text.len());
        let (events, err) = read(text, false);
        assert_eq!(err, None);
        assert_eq!(events.len() as u64, n);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.event.index, i as u64);
            assert_eq!(e.line, lines[i]);
        }
        assert_eq!(events[7].f_column, 37);
    }

    /// An error far into the file ends the stream at its line, after every event before it.
    #[test]
    fn the_first_error_ends_the_stream_at_its_line() {
        let mut text = String::new();
        for i in 0..40_000 {
            text.push_str(&line(i));
        }
        let mut bad = text.clone();
        bad.push_str(
            "{\"index\":40000,\"process\":1,\"type\":\"okay\",\"f\":\"write\",\"value\":1}\n",
        );
        for i in 40_001..50_000 {
            bad.push_str(&line(i));
        }
        let (events, err) = read(bad, false);
        assert_eq!(events.len(), 40_000);
        assert_eq!(
            err.as_deref(),
            Some("t:40001:28: unknown type \"okay\" (expected invoke, ok, fail or info)")
        );
        // Invalid UTF-8 on a line of a later block.
        let mut bytes = text.clone().into_bytes();
        bytes.extend_from_slice(b"{\"index\":40000,\"pro\xffcess\":1}\n");
        let (events, err) = read_bytes(bytes);
        assert_eq!(events, 40_000);
        assert_eq!(
            err.as_deref(),
            Some("t:40001:20: invalid UTF-8 (expected UTF-8 text)")
        );
        // A last line without its newline that does not parse looks truncated, or is skipped.
        let mut cut = text;
        cut.push_str("{\"index\":40000,\"proc");
        let (events, err) = read(cut.clone(), false);
        assert_eq!(events.len(), 40_000);
        assert!(err.unwrap().contains("looks truncated"));
        let (events, err) = read(cut, true);
        assert_eq!((events.len(), err), (40_000, None));
    }

    fn read_bytes(bytes: Vec<u8>) -> (usize, Option<String>) {
        let r = from_reader(std::io::Cursor::new(bytes), "t", Format::Jsonl).unwrap();
        let mut n = 0;
        for item in r {
            match item {
                Ok(_) => n += 1,
                Err(e) => return (n, Some(e.to_string())),
            }
        }
        (n, None)
    }
}
