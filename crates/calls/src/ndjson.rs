//! Reading a newline-delimited JSON stream of calls, one error per bad line.
//!
//! ```
//! use cdp_calls::ndjson::{CallReader, LineErrorKind};
//!
//! let input = "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"Signed Up\"}\n\
//!              {\"type\":\"track\",\"userId\":\"u2\"}\n\
//!              [1,2]\n";
//! let mut good = Vec::new();
//! let mut bad = Vec::new();
//! for item in CallReader::new(input.as_bytes()) {
//!     match item {
//!         Ok(call) => good.push(call),
//!         Err(e) => bad.push(e),
//!     }
//! }
//! assert_eq!(good.len(), 1);
//! assert_eq!(bad[0].line, 2);
//! assert_eq!(bad[0].to_string(), "line 2: track call is missing required field `event`");
//! assert_eq!(bad[1].line, 3);
//! assert!(matches!(bad[1].kind, LineErrorKind::Call(cdp_calls::CallError::NotAnObject { found: "array" })));
//! ```

use std::fmt;
use std::io::{self, BufRead, Read};
use std::num::NonZeroUsize;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use crate::{Call, CallError, MAX_CALL_BYTES, Timestamp};

/// Lines longer than this are not held in memory: the reader skips to the next
/// newline and reports the call as too large. Far above [`MAX_CALL_BYTES`], so that
/// a call with generous white space is still measured exactly in its compact form.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// A line of the stream that did not give a valid call.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct LineError {
    /// The 1-based line number in the stream.
    pub line: u64,
    /// What is wrong with it.
    pub kind: LineErrorKind,
}

/// What is wrong with a line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LineErrorKind {
    /// The line is not valid UTF-8.
    #[error("invalid UTF-8 at byte {byte} of the line")]
    InvalidUtf8 {
        /// 1-based byte offset of the first invalid byte within the line.
        byte: usize,
    },
    /// The line is not a valid call (bad JSON, wrong field types, missing fields,
    /// too large, …).
    #[error("{0}")]
    Call(#[from] CallError),
    /// Reading the stream failed; the reader stops after this.
    #[error("read error: {0}")]
    Io(#[source] io::Error),
}

/// How the reader completes the calls it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Fill absent fields ([`Call::fill_missing`]) with this "now".
    Missing(Timestamp),
    /// Leave calls exactly as read.
    Nothing,
}

/// An iterator of calls from an NDJSON stream.
///
/// Each line is parsed ([`Call::parse_json`]), completed ([`Call::fill_missing`],
/// with one "now" taken when the reader is made, unless turned off) and validated
/// ([`Call::validate`]). A bad line yields a [`LineError`] with its line number and
/// the reader goes on with the next line; blank lines are skipped; a trailing `\r`
/// is ignored. Memory is bounded by [`MAX_LINE_BYTES`] whatever the input.
pub struct CallReader<R> {
    input: R,
    line: u64,
    buf: Vec<u8>,
    fill: Fill,
    done: bool,
}

impl<R> fmt::Debug for CallReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallReader").field("line", &self.line).field("fill", &self.fill).finish()
    }
}

impl<R: BufRead> CallReader<R> {
    /// A reader that fills absent fields with the current time as `receivedAt`.
    pub fn new(input: R) -> CallReader<R> {
        CallReader::with_received_at(input, Timestamp::now())
    }

    /// A reader that fills absent fields with `received_at` as "now".
    pub fn with_received_at(input: R, received_at: Timestamp) -> CallReader<R> {
        CallReader {
            input,
            line: 0,
            buf: Vec::with_capacity(4096),
            fill: Fill::Missing(received_at),
            done: false,
        }
    }

    /// A reader that leaves calls as they are: nothing filled in, only validated.
    pub fn without_filling(input: R) -> CallReader<R> {
        CallReader { fill: Fill::Nothing, ..CallReader::with_received_at(input, Timestamp::UNIX_EPOCH) }
    }

    /// The number of the last line read.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Reads the next line into `buf`. `Ok(None)` at the end of input; `Ok(Some(n))`
    /// with the line's full length, which exceeds the buffer when it was cut off.
    fn read_line(&mut self) -> io::Result<Option<usize>> {
        self.buf.clear();
        let mut total = 0usize;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok((total > 0).then_some(total));
            }
            let (take, end) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&chunk[..take.min(room)]);
            total += take;
            self.input.consume(take + usize::from(end));
            if end {
                return Ok(Some(total));
            }
        }
    }

    /// The next line, parsed. Lines that lie whole in the input's buffer are parsed
    /// in place; others are gathered into `buf` first.
    fn next_line(&mut self) -> io::Result<Option<Result<Option<Call>, LineErrorKind>>> {
        let fill = self.fill;
        let chunk = loop {
            match self.input.fill_buf() {
                Ok(chunk) => break chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if let Some(end) = memchr::memchr(b'\n', chunk) {
            let parsed = parse_line(&chunk[..end], end, fill);
            self.input.consume(end + 1);
            return Ok(Some(parsed));
        }
        Ok(self.read_line()?.map(|len| parse_line(&self.buf, len, fill)))
    }
}

/// Parses one line of `len` bytes (of which `bytes` were kept).
fn parse_line(bytes: &[u8], len: usize, fill: Fill) -> Result<Option<Call>, LineErrorKind> {
    if len > MAX_LINE_BYTES {
        return Err(CallError::TooLarge { bytes: len, limit: MAX_CALL_BYTES }.into());
    }
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let text =
        std::str::from_utf8(bytes).map_err(|e| LineErrorKind::InvalidUtf8 { byte: e.valid_up_to() + 1 })?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let mut call = Call::parse_json(text)?;
    if let Fill::Missing(now) = fill {
        call.fill_missing(now);
    }
    call.validate()?;
    Ok(Some(call))
}

impl<R: BufRead> Iterator for CallReader<R> {
    type Item = Result<Call, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let parsed = match self.next_line() {
                Ok(Some(parsed)) => parsed,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(LineError { line: self.line + 1, kind: LineErrorKind::Io(e) }));
                }
            };
            self.line += 1;
            match parsed {
                Ok(Some(call)) => return Some(Ok(call)),
                Ok(None) => continue,
                Err(kind) => return Some(Err(LineError { line: self.line, kind })),
            }
        }
        None
    }
}

/// The size of the blocks [`ParallelCallReader`] reads and hands to its threads:
/// whole lines, about this many bytes (more when a line is longer).
///
/// 256 KiB rather than 1 MiB: the same speed or a little faster (the blocks and the
/// calls made of them stay in the cache), about 8 % less CPU time and half the peak
/// memory for the export of 200,000 calls.
pub const BLOCK_BYTES: usize = 256 * 1024;

/// The calls of one block, in line order, with its bad lines.
type Parsed = Vec<Result<Call, LineError>>;

/// A block's first line number, and where its calls will come from.
type Ordered = (u64, Receiver<Parsed>);

/// A block of whole lines to parse, and where to send what it gave.
struct Job {
    bytes: Vec<u8>,
    first_line: u64,
    done: SyncSender<Parsed>,
}

/// An iterator of calls from an NDJSON stream, parsed on several threads.
///
/// It yields exactly what [`CallReader`] yields for the same input, in the same
/// order, with the same line numbers and errors: the stream is read on a thread of
/// its own in blocks of whole lines ([`BLOCK_BYTES`]), each block is parsed,
/// completed and validated on one of `threads` worker threads, and the blocks are
/// handed back in order. At most two blocks per thread are read ahead, so memory
/// stays bounded whatever the input.
///
/// Dropping the reader stops it: its threads end at their next block (the reading
/// thread once its current `read` returns), and are not waited for.
///
/// ```
/// use std::num::NonZeroUsize;
/// use cdp_calls::ndjson::{CallReader, ParallelCallReader};
/// use cdp_calls::Timestamp;
///
/// let mut input = String::new();
/// for i in 0..10_000 {
///     let line = format!(r#"{{"type":"track","messageId":"m{i}","userId":"u{i}","event":"Signed Up"}}"#);
///     input.push_str(&line);
///     input.push('\n');
/// }
/// input.push_str("{\"type\":\"track\",\"userId\":\"u\"}\n");
/// let now = Timestamp::parse_rfc3339("2026-11-30T12:00:00Z").unwrap();
/// let threads = NonZeroUsize::new(4).unwrap();
/// let bytes = std::io::Cursor::new(input.clone().into_bytes());
/// let parallel: Vec<String> = ParallelCallReader::with_received_at(bytes, now, threads)
///     .map(|item| match item {
///         Ok(call) => call.to_json(),
///         Err(e) => e.to_string(),
///     })
///     .collect();
/// let sequential: Vec<String> = CallReader::with_received_at(input.as_bytes(), now)
///     .map(|item| match item {
///         Ok(call) => call.to_json(),
///         Err(e) => e.to_string(),
///     })
///     .collect();
/// assert_eq!(parallel, sequential);
/// assert_eq!(parallel[10_000], "line 10001: track call is missing required field `event`");
/// ```
pub struct ParallelCallReader {
    order: Receiver<Ordered>,
    current: std::vec::IntoIter<Result<Call, LineError>>,
    threads: usize,
}

impl fmt::Debug for ParallelCallReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParallelCallReader").field("threads", &self.threads).finish()
    }
}

impl ParallelCallReader {
    /// A reader on `threads` worker threads that fills absent fields with the
    /// current time as `receivedAt`.
    pub fn new<R: Read + Send + 'static>(input: R, threads: NonZeroUsize) -> ParallelCallReader {
        ParallelCallReader::with_received_at(input, Timestamp::now(), threads)
    }

    /// A reader that fills absent fields with `received_at` as "now".
    pub fn with_received_at<R: Read + Send + 'static>(
        input: R,
        received_at: Timestamp,
        threads: NonZeroUsize,
    ) -> ParallelCallReader {
        ParallelCallReader::start(input, Fill::Missing(received_at), threads)
    }

    /// A reader that leaves calls as they are: nothing filled in, only validated.
    pub fn without_filling<R: Read + Send + 'static>(input: R, threads: NonZeroUsize) -> ParallelCallReader {
        ParallelCallReader::start(input, Fill::Nothing, threads)
    }

    /// The number of worker threads parsing blocks.
    pub fn threads(&self) -> usize {
        self.threads
    }

    fn start<R: Read + Send + 'static>(input: R, fill: Fill, threads: NonZeroUsize) -> ParallelCallReader {
        ParallelCallReader::start_with_blocks(input, fill, threads, BLOCK_BYTES)
    }

    fn start_with_blocks<R: Read + Send + 'static>(
        input: R,
        fill: Fill,
        threads: NonZeroUsize,
        block_bytes: usize,
    ) -> ParallelCallReader {
        let threads = threads.get();
        let (order_tx, order) = mpsc::sync_channel(2 * threads);
        let (jobs_tx, jobs) = mpsc::sync_channel::<Job>(threads);
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("cdp-ndjson-{i}"))
                .spawn(move || parse_blocks(&jobs, fill))
                .expect("spawning an NDJSON parsing thread");
        }
        std::thread::Builder::new()
            .name("cdp-ndjson-read".to_owned())
            .spawn(move || read_blocks(input, &jobs_tx, &order_tx, block_bytes))
            .expect("spawning the NDJSON reading thread");
        ParallelCallReader { order, current: Vec::new().into_iter(), threads }
    }
}

impl Iterator for ParallelCallReader {
    type Item = Result<Call, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(item);
            }
            // The reading thread has ended (input read or failed) when `order` is
            // closed. A block's sender dropped without an answer means its worker is
            // gone, which only a panic there does: reported as a failed read.
            let (first_line, block) = self.order.recv().ok()?;
            let parsed = block.recv().unwrap_or_else(|_| {
                let lost = io::Error::other("the thread parsing this line's block stopped");
                vec![Err(LineError { line: first_line, kind: LineErrorKind::Io(lost) })]
            });
            self.current = parsed.into_iter();
        }
    }
}

/// Parses the blocks it is handed until the reading thread is gone.
fn parse_blocks(jobs: &Mutex<Receiver<Job>>, fill: Fill) {
    loop {
        let job = {
            let jobs = jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let parsed = parse_block(&job.bytes, job.first_line, fill);
        // The reader may have been dropped: nothing waits for this block any more.
        let _ = job.done.send(parsed);
    }
}

/// Parses a block of lines, the first numbered `first_line`; the last may lack its
/// newline (at the end of the input).
fn parse_block(bytes: &[u8], first_line: u64, fill: Fill) -> Parsed {
    let mut parsed = Vec::with_capacity(bytes.len() / 512 + 1);
    let mut line = first_line;
    let mut rest = bytes;
    while !rest.is_empty() {
        let (text, next) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        match parse_line(text, text.len(), fill) {
            Ok(Some(call)) => parsed.push(Ok(call)),
            Ok(None) => {}
            Err(kind) => parsed.push(Err(LineError { line, kind })),
        }
        line += 1;
        rest = next;
    }
    parsed
}

/// Sends `parsed` as the next block in order, answered at once.
fn send_ready(order: &SyncSender<Ordered>, error: LineError) -> Result<(), ()> {
    let (done, answer) = mpsc::sync_channel(1);
    let line = error.line;
    done.send(vec![Err(error)]).map_err(|_| ())?;
    order.send((line, answer)).map_err(|_| ())
}

/// Reads `input` into blocks of whole lines and hands them out, in order, until the
/// input ends, reading fails, or the reader is dropped.
fn read_blocks<R: Read>(
    mut input: R,
    jobs: &SyncSender<Job>,
    order: &SyncSender<Ordered>,
    block_bytes: usize,
) {
    // The number of the first line in `block`, and of lines read in all.
    let mut line = 1u64;
    // The lines read and not yet handed out; the last one is not yet ended.
    let mut block: Vec<u8> = Vec::with_capacity(block_bytes + block_bytes / 4);
    let mut at_end = false;
    let step = (block_bytes / 4).max(1);
    loop {
        // Fill the block to its size, or to the end of the input.
        while !at_end && block.len() < block_bytes {
            match read_some(&mut input, &mut block, step) {
                Ok(0) => at_end = true,
                Ok(_) => {}
                Err(error) => return fail(block, line, error, jobs, order),
            }
        }
        if block.is_empty() {
            return;
        }
        match memchr::memrchr(b'\n', &block) {
            Some(last) => {
                let rest = block.split_off(last + 1);
                let lines = count_lines(&block);
                let mut next = Vec::with_capacity(block_bytes + block_bytes / 4);
                next.extend_from_slice(&rest);
                if hand_out(std::mem::replace(&mut block, next), line, jobs, order).is_err() {
                    return;
                }
                line += lines;
            }
            // The last line, without its newline.
            None if at_end => {
                let _ = hand_out(std::mem::take(&mut block), line, jobs, order);
                return;
            }
            // A line as long as a block: read on until it ends, or skip it when it
            // is too long to hold.
            None => {
                while !at_end && block.len() <= MAX_LINE_BYTES && memchr::memchr(b'\n', &block).is_none() {
                    let from = block.len();
                    match read_some(&mut input, &mut block, step) {
                        Ok(0) => at_end = true,
                        Ok(_) if memchr::memchr(b'\n', &block[from..]).is_some() => break,
                        Ok(_) => {}
                        // The read may have ended the long line before failing.
                        Err(error) => return fail(block, line, error, jobs, order),
                    }
                }
                if block.len() <= MAX_LINE_BYTES || memchr::memchr(b'\n', &block).is_some() {
                    // Held whole: handed out with the next block's lines.
                    continue;
                }
                match skip_line(&mut input, block.len()) {
                    Ok((len, rest, ended)) => {
                        let error = LineError {
                            line,
                            kind: CallError::TooLarge { bytes: len, limit: MAX_CALL_BYTES }.into(),
                        };
                        if send_ready(order, error).is_err() {
                            return;
                        }
                        line += 1;
                        block.clear();
                        block.extend_from_slice(&rest);
                        at_end = !ended;
                        if at_end && block.is_empty() {
                            return;
                        }
                    }
                    Err(error) => {
                        let _ = send_ready(order, LineError { line, kind: LineErrorKind::Io(error) });
                        return;
                    }
                }
            }
        }
    }
}

/// Ends the reading on a read error: the lines of `block` (the first numbered `line`)
/// that ended before it are handed out first, and the line being read is the one
/// that failed, as with [`CallReader`].
fn fail(
    mut block: Vec<u8>,
    line: u64,
    error: io::Error,
    jobs: &SyncSender<Job>,
    order: &SyncSender<Ordered>,
) {
    let ended = memchr::memrchr(b'\n', &block).map_or(0, |i| i + 1);
    let lines = count_lines(&block[..ended]);
    if ended > 0 {
        block.truncate(ended);
        if hand_out(block, line, jobs, order).is_err() {
            return;
        }
    }
    let _ = send_ready(order, LineError { line: line + lines, kind: LineErrorKind::Io(error) });
}

/// Hands a block of lines to the workers, and its place in the order to the reader.
fn hand_out(
    bytes: Vec<u8>,
    first_line: u64,
    jobs: &SyncSender<Job>,
    order: &SyncSender<Ordered>,
) -> Result<(), ()> {
    let (done, answer) = mpsc::sync_channel(1);
    order.send((first_line, answer)).map_err(|_| ())?;
    jobs.send(Job { bytes, first_line, done }).map_err(|_| ())
}

/// The number of lines in `bytes`, whole lines each ended by its newline.
fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Reads up to `most` more bytes onto the end of `buf`; `Ok(0)` at the end.
fn read_some<R: Read>(input: &mut R, buf: &mut Vec<u8>, most: usize) -> io::Result<usize> {
    buf.reserve(most);
    input.by_ref().take(most as u64).read_to_end(buf)
}

/// Skips the rest of a line of which `seen` bytes were read: its full length, the
/// bytes read past its newline, and whether a newline ended it (rather than the
/// end of the input).
fn skip_line<R: Read>(input: &mut R, seen: usize) -> io::Result<(usize, Vec<u8>, bool)> {
    let mut len = seen;
    let mut chunk = Vec::with_capacity(64 * 1024);
    loop {
        chunk.clear();
        if read_some(input, &mut chunk, 64 * 1024)? == 0 {
            return Ok((len, Vec::new(), false));
        }
        match memchr::memchr(b'\n', &chunk) {
            Some(end) => return Ok((len + end, chunk[end + 1..].to_vec(), true)),
            None => len += chunk.len(),
        }
    }
}

#[cfg(test)]
#[path = "ndjson_parallel_tests.rs"]
mod parallel_tests;
