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
use std::io::{self, BufRead};

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
