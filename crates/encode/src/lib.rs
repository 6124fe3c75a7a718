//! Deterministic JSON, CSV and Parquet encoders for the warehouse rows of
//! customer-data calls.
//!
//! One encoder makes one file: the calls of one [`CallType`], as the rows of that
//! type's warehouse table ([`CallType::columns`]), sorted by `received_at`. Every
//! format has its own encoder with the same two verbs, [`Encode::write`] a call and
//! [`Encode::finish`] into a writer (or [`Encode::finish_to_vec`],
//! [`Encode::finish_to_file`], [`Encode::finish_to_chunks`]); [`FileEncoder`]
//! picks one by [`FileFormat`] at run time.
//!
//! ```
//! use cdp_calls::{Call, CallType, JsonObject, Timestamp};
//! use cdp_encode::{Encode, EncodeOptions, FileEncoder, FileFormat};
//!
//! let at = |s: &str| s.parse::<Timestamp>().unwrap();
//! let calls = [
//!     Call::track("u2", "Order Completed").with_message_id("m2").with_received_at(at("2026-11-22T10:00:02Z")),
//!     Call::track("u1", "Signed Up")
//!         .with_message_id("m1")
//!         .with_received_at(at("2026-11-22T10:00:01Z"))
//!         .with_payload(JsonObject::from_json(r#"{"plan":"pro","seats":3}"#)?),
//! ];
//!
//! let mut csv = FileEncoder::new(FileFormat::Csv, CallType::Track, EncodeOptions::default());
//! for call in &calls {
//!     csv.write(call)?;
//! }
//! let bytes = csv.finish_to_vec()?;
//! let text = String::from_utf8(bytes)?;
//! let mut lines = text.lines();
//! assert_eq!(
//!     lines.next(),
//!     Some("received_at,id,user_id,anonymous_id,sent_at,timestamp,original_timestamp,event,event_text,properties,context")
//! );
//! // Sorted by received_at; the nested object is its compact JSON text, quoted.
//! assert_eq!(
//!     lines.next(),
//!     Some(r#"2026-11-22T10:00:01.000Z,m1,u1,,,,,signed_up,Signed Up,"{""plan"":""pro"",""seats"":3}","#)
//! );
//! assert_eq!(lines.next(), Some("2026-11-22T10:00:02.000Z,m2,u2,,,,,order_completed,Order Completed,,"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//! - **Sorted**: rows are in `received_at` order, ties in input order (a stable
//!   sort); calls without `receivedAt` come first.
//! - **Deterministic**: the same calls give byte-identical files: no wall-clock
//!   time, random ids or hash-map order goes into a file.
//! - **Bounded memory**: rows that arrive in `received_at` order (the usual case)
//!   are written through, a megabyte at a time, to an anonymous temporary file in
//!   [`EncodeOptions::spill_dir`] that becomes the finished file
//!   ([`Encode::finish_to_file`] hands it over without a copy). Rows out of order
//!   are held up to [`EncodeOptions::sort_buffer_bytes`] (16 MiB; or
//!   [`EncodeOptions::row_group_rows`] rows), then sorted and spilled as a run; runs
//!   are merged when the file is written, at most 64 at a time (runs waiting on
//!   disk hold no buffers; more runs are merged into fewer first, keeping ties in
//!   order), so memory does not grow with the number of calls. The Parquet writer
//!   holds one row group, of at most [`EncodeOptions::row_group_bytes`] (32 MiB),
//!   and [`Encode::release_buffers`] frees an encoder's buffers until it is
//!   finished.
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use bytes::Bytes;
use cdp_calls::{Call, CallType};

mod csv;
mod json;
mod parquet;
mod rows;

pub use crate::csv::CsvEncoder;
pub use crate::json::JsonEncoder;
pub use crate::parquet::ParquetEncoder;

/// The file formats of the bucket export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// Newline-delimited JSON; nested objects stay objects. Extension `.json`.
    Json,
    /// RFC 4180 CSV with a header; nested objects as compact JSON text. Extension `.csv`.
    Csv,
    /// Apache Parquet; nested objects as JSON-annotated UTF-8. Extension `.parquet`.
    Parquet,
}

impl FileFormat {
    /// All formats.
    pub const ALL: [FileFormat; 3] = [FileFormat::Json, FileFormat::Csv, FileFormat::Parquet];

    /// The file extension, without the dot.
    pub const fn extension(self) -> &'static str {
        match self {
            FileFormat::Json => "json",
            FileFormat::Csv => "csv",
            FileFormat::Parquet => "parquet",
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// The text names no file format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown file format {0:?}: expected json, csv or parquet")]
pub struct UnknownFileFormat(pub String);

impl FromStr for FileFormat {
    type Err = UnknownFileFormat;

    /// Parses `json` (or `ndjson`), `csv` or `parquet`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" | "ndjson" => Ok(FileFormat::Json),
            "csv" => Ok(FileFormat::Csv),
            "parquet" => Ok(FileFormat::Parquet),
            _ => Err(UnknownFileFormat(s.to_owned())),
        }
    }
}

/// Parquet page compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Snappy: fast, and what most readers expect (the default).
    #[default]
    Snappy,
    /// Zstandard at the given level (1 to 22; 3 is a good default).
    Zstd(i32),
    /// No compression.
    None,
}

/// Options shared by every encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncodeOptions {
    /// Parquet compression (ignored by JSON and CSV). Default: Snappy.
    pub compression: Compression,
    /// Rows per Parquet row group, and the most out-of-order calls held in memory
    /// for sorting before a run is spilled. Default: 131,072 (128k).
    pub row_group_rows: usize,
    /// The most bytes of a Parquet row group: the row group in progress is ended
    /// once the Parquet writer's estimate of its encoded size, plus the plain size
    /// of the rows not handed to it yet, reaches this, so that a row group is at
    /// most this and one row more (whichever of this and
    /// [`EncodeOptions::row_group_rows`] comes first ends it). The Parquet writer
    /// holds the row group in progress in memory, one per file being written: this
    /// bounds that memory whatever the size of the rows. Default: 32 MiB (about
    /// 70,000 `track` calls of the benchmark's, compressed with Snappy; a smaller
    /// limit gives more, smaller row groups and a slightly larger footer). Ignored
    /// by JSON and CSV.
    pub row_group_bytes: usize,
    /// The most bytes of out-of-order rows (their encoded bytes and index entries)
    /// held in memory per file for sorting before a run is spilled to disk.
    /// Default: 16 MiB. It changes how often runs are spilled, never the file.
    /// On 8,000,000 out-of-order calls (issue 17) exports with 16 MiB were no slower
    /// than with the former 256 MiB (runs are read back from the page cache), and
    /// a bucket writer holds one such buffer per file of every sync not yet
    /// published.
    pub sort_buffer_bytes: usize,
    /// Where the temporary files go (the file being streamed, spilled runs); the
    /// system temporary directory when `None`. Files are anonymous (Linux
    /// `O_TMPFILE` where the file system has it), so nothing is left after a crash.
    pub spill_dir: Option<PathBuf>,
}

impl Default for EncodeOptions {
    fn default() -> EncodeOptions {
        EncodeOptions {
            compression: Compression::Snappy,
            row_group_rows: 128 * 1024,
            row_group_bytes: 32 * 1024 * 1024,
            sort_buffer_bytes: 16 * 1024 * 1024,
            spill_dir: None,
        }
    }
}

impl EncodeOptions {
    /// Sets [`EncodeOptions::compression`].
    pub fn with_compression(mut self, compression: Compression) -> EncodeOptions {
        self.compression = compression;
        self
    }

    /// Sets [`EncodeOptions::row_group_rows`] (at least 1).
    pub fn with_row_group_rows(mut self, rows: usize) -> EncodeOptions {
        self.row_group_rows = rows.max(1);
        self
    }

    /// Sets [`EncodeOptions::row_group_bytes`] (at least 1).
    pub fn with_row_group_bytes(mut self, bytes: usize) -> EncodeOptions {
        self.row_group_bytes = bytes.max(1);
        self
    }

    /// Sets [`EncodeOptions::sort_buffer_bytes`].
    pub fn with_sort_buffer_bytes(mut self, bytes: usize) -> EncodeOptions {
        self.sort_buffer_bytes = bytes;
        self
    }

    /// Sets [`EncodeOptions::spill_dir`].
    pub fn with_spill_dir(mut self, dir: impl Into<PathBuf>) -> EncodeOptions {
        self.spill_dir = Some(dir.into());
        self
    }
}

/// Why encoding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A call of another type was given to an encoder (one file holds one type).
    #[error("a {found} call was given to the {expected} file encoder")]
    WrongCallType {
        /// The encoder's type.
        expected: CallType,
        /// The call's type.
        found: CallType,
    },
    /// Writing the output failed.
    #[error("writing the {format} file failed: {source}")]
    Write {
        /// The format being written.
        format: FileFormat,
        /// The underlying error (I/O, or the CSV or Parquet writer's own).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// One encoded row is larger than 4 GiB.
    #[error("an encoded row of {bytes} bytes is over the 4 GiB limit")]
    RowTooLarge {
        /// The row's size.
        bytes: usize,
    },
    /// Spilling sorted runs to a temporary file, or reading them back, failed.
    #[error("spilling sorted rows to a temporary file failed: {source}")]
    Spill {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl EncodeError {
    pub(crate) fn write(
        format: FileFormat,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        EncodeError::Write { format, source: source.into() }
    }
}

/// The shape every encoder has: write calls, then finish into a file.
pub trait Encode {
    /// The call type of the file.
    fn call_type(&self) -> CallType;

    /// How many calls were written so far.
    fn rows(&self) -> u64;

    /// How large the file would be if it were finished now, in bytes, at most: for
    /// deciding when a file is big enough. Exact for JSON and CSV; for Parquet an
    /// upper bound (the row groups written, the encoder's estimate of the one in
    /// progress, and the rows not in one yet as their values' plain size, each with
    /// an eighth more for compression that does not pay, plus a bound on the
    /// footer). Writing a call grows it by at most [`row_bytes_bound`].
    fn encoded_bytes(&self) -> u64;

    /// Adds a call. It must be of the encoder's type. The call is encoded at once;
    /// the encoder keeps only its row.
    fn write(&mut self, call: &Call) -> Result<(), EncodeError>;

    /// Moves the rows held in memory to the encoder's temporary files and frees
    /// its buffers, as finishing the file would first do: for an encoder that
    /// takes no more calls but is finished later (a bucket writer's sealed sync
    /// waiting to be published), so that it holds no memory meanwhile. The
    /// finished file is byte for byte what it would have been without it, when no
    /// call is written after it (calls may still be written; they are encoded as
    /// usual, and a Parquet row group may then end early).
    fn release_buffers(&mut self) -> Result<(), EncodeError> {
        Ok(())
    }

    /// Writes the file, rows sorted by `received_at`, into `out` and returns it.
    fn finish<W: Write + Send>(self, out: W) -> Result<W, EncodeError>
    where
        Self: Sized;

    /// Writes the file into memory.
    fn finish_to_vec(self) -> Result<Vec<u8>, EncodeError>
    where
        Self: Sized,
    {
        self.finish(Vec::new())
    }

    /// Writes the file into an anonymous temporary file and returns it positioned at
    /// its start. The encoders of this crate put it in [`EncodeOptions::spill_dir`]
    /// (the system temporary directory when unset), and rows that arrived in
    /// `received_at` order were written into it as they came, so the file is not
    /// copied again: on Linux it can be linked into a directory of the same file
    /// system under its final name.
    fn finish_to_file(self) -> Result<std::fs::File, EncodeError>
    where
        Self: Sized,
    {
        let file = tempfile::tempfile().map_err(|source| EncodeError::Spill { source })?;
        rows::rewind(self.finish(std::io::BufWriter::with_capacity(1 << 20, file))?)
    }

    /// Writes the file into memory as a list of chunks, whose concatenation is the
    /// file: no single large allocation, and rows that are held in order already
    /// are handed over without being copied. Object stores take such a list as
    /// one payload.
    fn finish_to_chunks(self) -> Result<Vec<Bytes>, EncodeError>
    where
        Self: Sized,
    {
        Ok(self.finish(ChunkWriter::default())?.into_chunks())
    }
}

/// Size of the chunks a [`ChunkWriter`] fills.
const WRITER_CHUNK_BYTES: usize = 4 << 20;

/// A writer that collects what is written into chunks of a few MiB, never
/// reallocating (and so never copying) what it already holds.
#[derive(Debug, Default)]
pub struct ChunkWriter {
    chunks: Vec<Bytes>,
    current: Vec<u8>,
}

impl ChunkWriter {
    /// The chunks written, in order.
    pub fn into_chunks(mut self) -> Vec<Bytes> {
        if !self.current.is_empty() {
            self.chunks.push(Bytes::from(std::mem::take(&mut self.current)));
        }
        self.chunks
    }

    /// Adds a chunk as it is, without copying it.
    pub fn push_chunk(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        if !self.current.is_empty() {
            self.chunks.push(Bytes::from(std::mem::take(&mut self.current)));
        }
        self.chunks.push(chunk);
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
        let written = buf.len();
        while !buf.is_empty() {
            if self.current.capacity() == self.current.len() {
                if !self.current.is_empty() {
                    self.chunks.push(Bytes::from(std::mem::take(&mut self.current)));
                }
                self.current = Vec::with_capacity(WRITER_CHUNK_BYTES);
            }
            let room = self.current.capacity() - self.current.len();
            let take = room.min(buf.len());
            self.current.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the text formats' encoders hold: the type and the encoded rows.
#[derive(Debug)]
pub(crate) struct Pending {
    call_type: CallType,
    rows: rows::SortedRows,
}

impl Pending {
    /// Rows of `call_type` for a file that starts with `header`.
    pub(crate) fn new(call_type: CallType, options: EncodeOptions, header: Vec<u8>) -> Pending {
        Pending { call_type, rows: rows::SortedRows::new(options, header) }
    }

    /// Checks the call's type and buffers its row, as `encode` writes it.
    pub(crate) fn push(&mut self, call: &Call, encode: fn(&Call, &mut Vec<u8>)) -> Result<(), EncodeError> {
        if call.call_type() != self.call_type {
            return Err(EncodeError::WrongCallType { expected: self.call_type, found: call.call_type() });
        }
        self.rows.push(sort_key(call), |out| encode(call, out))
    }
}

/// At most how many bytes writing `call` adds to [`Encode::encoded_bytes`] of a
/// `format` file encoded with `options` (exact for JSON, exact or a few bytes more
/// for CSV); cheap, without encoding it. A file whose size is `encoded_bytes`, with
/// calls whose bounds sum to `n` written to it, is finished at most
/// `encoded_bytes + n` bytes long: what a writer keeping files under a size limit
/// needs to decide before the calls are encoded (on another thread, say).
///
/// ```
/// use cdp_calls::{Call, CallType};
/// use cdp_encode::{Encode, EncodeOptions, FileEncoder, FileFormat, row_bytes_bound};
///
/// let options = EncodeOptions::default();
/// let call = Call::track("u1", "Order \"Completed\"").with_message_id("m1");
/// for format in FileFormat::ALL {
///     let mut file = FileEncoder::new(format, CallType::Track, options.clone());
///     let before = file.encoded_bytes();
///     let bound = row_bytes_bound(format, &options, &call);
///     file.write(&call)?;
///     assert!(file.encoded_bytes() <= before + bound, "{format}");
///     assert!(file.finish_to_vec()?.len() as u64 <= before + bound, "{format}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn row_bytes_bound(format: FileFormat, options: &EncodeOptions, call: &Call) -> u64 {
    match format {
        FileFormat::Json => json::row_bytes(call),
        FileFormat::Csv => csv::row_bytes_bound(call),
        FileFormat::Parquet => parquet::row_bytes_bound(call, options),
    }
}

/// The sort key of a call: `received_at` in microseconds, absent first.
pub(crate) fn sort_key(call: &Call) -> i64 {
    call.received_at.map_or(i64::MIN, |t| t.as_micros())
}

/// Implements [`Encode`] for a text format's encoder with a `pending: Pending`
/// field and an `encode_row(&Call, &mut Vec<u8>)` function.
macro_rules! encode_text {
    ($format:expr) => {
        fn call_type(&self) -> cdp_calls::CallType {
            self.pending.call_type
        }

        fn rows(&self) -> u64 {
            self.pending.rows.rows()
        }

        fn encoded_bytes(&self) -> u64 {
            self.pending.rows.header_bytes() + self.pending.rows.total_bytes()
        }

        fn write(&mut self, call: &cdp_calls::Call) -> Result<(), crate::EncodeError> {
            self.pending.push(call, Self::encode_row)
        }

        fn release_buffers(&mut self) -> Result<(), crate::EncodeError> {
            self.pending.rows.release_buffers()
        }

        fn finish<W: std::io::Write + Send>(self, out: W) -> Result<W, crate::EncodeError> {
            use std::io::Write;
            let fail = |e: std::io::Error| crate::EncodeError::write($format, e);
            let mut out =
                self.pending.rows.write_to($format, std::io::BufWriter::with_capacity(256 << 10, out))?;
            out.flush().map_err(fail)?;
            out.into_inner().map_err(|e| fail(e.into_error()))
        }

        fn finish_to_file(self) -> Result<std::fs::File, crate::EncodeError> {
            self.pending.rows.finish_to_file($format)
        }

        fn finish_to_chunks(self) -> Result<Vec<bytes::Bytes>, crate::EncodeError> {
            self.pending.rows.finish_to_chunks($format)
        }
    };
}
pub(crate) use encode_text;

/// An encoder of any format, chosen at run time.
#[derive(Debug)]
#[allow(missing_docs)] // each variant is its encoder
pub enum FileEncoder {
    Json(JsonEncoder),
    Csv(CsvEncoder),
    Parquet(ParquetEncoder),
}

impl FileEncoder {
    /// An encoder of `format` for calls of `call_type`.
    pub fn new(format: FileFormat, call_type: CallType, options: EncodeOptions) -> FileEncoder {
        match format {
            FileFormat::Json => FileEncoder::Json(JsonEncoder::new(call_type, options)),
            FileFormat::Csv => FileEncoder::Csv(CsvEncoder::new(call_type, options)),
            FileFormat::Parquet => FileEncoder::Parquet(ParquetEncoder::new(call_type, options)),
        }
    }

    /// The format being written.
    pub fn format(&self) -> FileFormat {
        match self {
            FileEncoder::Json(_) => FileFormat::Json,
            FileEncoder::Csv(_) => FileFormat::Csv,
            FileEncoder::Parquet(_) => FileFormat::Parquet,
        }
    }
}

macro_rules! each_encoder {
    ($self:expr, $e:ident => $body:expr) => {
        match $self {
            FileEncoder::Json($e) => $body,
            FileEncoder::Csv($e) => $body,
            FileEncoder::Parquet($e) => $body,
        }
    };
}

impl Encode for FileEncoder {
    fn call_type(&self) -> CallType {
        each_encoder!(self, e => e.call_type())
    }

    fn rows(&self) -> u64 {
        each_encoder!(self, e => e.rows())
    }

    fn encoded_bytes(&self) -> u64 {
        each_encoder!(self, e => e.encoded_bytes())
    }

    fn write(&mut self, call: &Call) -> Result<(), EncodeError> {
        each_encoder!(self, e => e.write(call))
    }

    fn release_buffers(&mut self) -> Result<(), EncodeError> {
        each_encoder!(self, e => e.release_buffers())
    }

    fn finish<W: Write + Send>(self, out: W) -> Result<W, EncodeError> {
        each_encoder!(self, e => e.finish(out))
    }

    fn finish_to_file(self) -> Result<std::fs::File, EncodeError> {
        each_encoder!(self, e => e.finish_to_file())
    }

    fn finish_to_chunks(self) -> Result<Vec<Bytes>, EncodeError> {
        each_encoder!(self, e => e.finish_to_chunks())
    }
}
