//! Apache Parquet through arrow-rs: `TIMESTAMP(MICROS, UTC)` timestamps, UTF-8 text,
//! and JSON-annotated UTF-8 for nested objects.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::Arc;

use arrow_array::builder::{StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::extension::Json;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use cdp_calls::{Call, CallType, ColumnKind, RECEIVED_AT_COLUMN, Value};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::ZstdLevel;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::rows::SortedRows;
use crate::{Compression, Encode, EncodeError, EncodeOptions, FileFormat};

/// While rows stream in order, the encoded file is held in memory up to this size
/// (or [`EncodeOptions::sort_buffer_bytes`], if smaller), and in a temporary file
/// in [`EncodeOptions::spill_dir`] beyond.
const STREAM_MEMORY_BYTES: usize = 1 << 20;

/// Rows collected into one Arrow batch before it goes to the Parquet writer; the
/// writer gathers batches into row groups of [`EncodeOptions::row_group_rows`]
/// rows or [`EncodeOptions::row_group_bytes`] bytes.
const BATCH_ROWS: usize = 1024;

/// While streaming, the newest rows are held back up to this many (or
/// [`HOLD_BYTES`], or a row group's rows if fewer), so that calls arriving slightly out of `received_at` order
/// (requests stamped on different threads and appended in another order) are put
/// in order before they are encoded. When the holding area is full, its older half
/// goes to the file.
const HOLD_ROWS: usize = 16 * 1024;

/// The most bytes of rows held back (see [`HOLD_ROWS`]).
const HOLD_BYTES: usize = 16 << 20;

/// Encodes calls as Apache Parquet (`.parquet`).
///
/// Columns are the type's warehouse columns, all optional: timestamps as
/// `TIMESTAMP(MICROS, isAdjustedToUTC=true)`, ids and names as UTF-8 strings, and
/// `traits`, `properties` and `context` as UTF-8 strings with the Parquet `JSON`
/// logical type. Row groups hold at most [`EncodeOptions::row_group_rows`] rows,
/// and end once they reach [`EncodeOptions::row_group_bytes`] (the row group in
/// progress is what the Parquet writer holds in memory); every row group records that it is sorted by `received_at` (ascending, nulls
/// first) in its sorting-columns metadata. Pages are Snappy-compressed unless
/// [`EncodeOptions::compression`] says otherwise.
///
/// Calls usually arrive in `received_at` order, or nearly (requests stamped on
/// different threads are appended a few milliseconds out of order). The newest
/// 16,384 rows (at most 16 MiB, and at most [`EncodeOptions::row_group_rows`]) are
/// held back and put in order; older rows are
/// encoded into Parquet at once (the file so far is held compressed, in memory up
/// to 1 MiB and in a temporary file beyond), so memory stays at about one row
/// group. A call older than a row already encoded turns the encoder to sorting: the
/// rows so far are read back and everything is sorted as the other formats do.
/// Either way the same calls give the same bytes, and the rows are in stable
/// `received_at` order.
///
/// ```
/// use cdp_calls::{Call, CallType};
/// use cdp_encode::{Encode, EncodeOptions, ParquetEncoder};
///
/// let mut enc = ParquetEncoder::new(CallType::Identify, EncodeOptions::default());
/// enc.write(&Call::identify("u1").with_message_id("m1"))?;
/// let bytes = enc.finish_to_vec()?;
/// assert_eq!(&bytes[..4], b"PAR1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ParquetEncoder {
    call_type: CallType,
    options: EncodeOptions,
    rows: u64,
    /// The bytes of every row written, as [`ParquetEncoder::encode_row`] writes them.
    raw_bytes: u64,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Every row so far came in order: rows go straight to the Parquet writer.
    Streaming(Box<Stream>),
    /// A row came out of order: rows are buffered and sorted at the end.
    Sorting(Box<SortedRows>),
    /// A write failed part-way; the encoder cannot go on.
    Broken,
}

/// The Parquet file being written while rows come in order, or nearly: the newest
/// rows wait in `held` and go to the file in `received_at` order.
struct Stream {
    writer: ArrowWriter<Spool>,
    batch: Batch,
    held: Held,
    /// The key of the last row that went to the file: a row with an earlier key
    /// can no longer be put in order.
    released_key: i64,
}

impl Stream {
    /// Takes a row held back, encoded by [`ParquetEncoder::encode_row`]; sends the
    /// older half of the held rows to the file when the holding area is full.
    /// Returns the row's length.
    fn hold(&mut self, key: i64, call: &Call, options: &EncodeOptions) -> Result<usize, EncodeError> {
        let len = self.held.push(key, call);
        if self.held.is_full(options) {
            self.release(false)?;
        }
        Ok(len)
    }

    /// Sends held rows to the file in key order: the older half (every row up to
    /// the middle row's key, so that equal keys stay together), or all of them.
    fn release(&mut self, all: bool) -> Result<(), EncodeError> {
        let Stream { writer, batch, held, released_key } = self;
        held.release(all, |key, bytes| {
            *released_key = key;
            batch.push_encoded(bytes).ok_or_else(malformed)?;
            batch.flush_if_full(writer)
        })
    }

    /// Sends every held row to the file and ends the row group in progress, as
    /// [`Stream::finish`] does before the footer, and frees the buffers.
    fn release_buffers(&mut self, call_type: CallType, options: &EncodeOptions) -> Result<(), EncodeError> {
        self.release(true)?;
        self.batch.flush(&mut self.writer)?;
        self.writer.flush().map_err(parquet_error)?;
        self.held = Held::default();
        self.batch = Batch::new(call_type, options);
        Ok(())
    }

    /// Writes the last rows and the footer; the file is then in the spool.
    fn finish(mut self: Box<Stream>) -> Result<SpoolReader, EncodeError> {
        self.release(true)?;
        let Stream { mut writer, mut batch, .. } = *self;
        batch.flush(&mut writer)?;
        writer.into_inner().map_err(parquet_error)?.into_reader()
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("released_key", &self.released_key)
            .field("held", &self.held.rows.len())
            .finish_non_exhaustive()
    }
}

/// Rows held back while streaming, encoded by [`ParquetEncoder::encode_row`], in
/// the order they came (kept rows first after a release, in key order).
#[derive(Default)]
struct Held {
    bytes: Vec<u8>,
    /// Key, start and length of each row in `bytes`.
    rows: Vec<(i64, usize, usize)>,
}

impl Held {
    /// Holds a row; returns its length.
    fn push(&mut self, key: i64, call: &Call) -> usize {
        let start = self.bytes.len();
        ParquetEncoder::encode_row(call, &mut self.bytes);
        let len = self.bytes.len() - start;
        self.rows.push((key, start, len));
        len
    }

    fn is_full(&self, options: &EncodeOptions) -> bool {
        self.rows.len() >= HOLD_ROWS.min(options.row_group_rows.max(2)) || self.bytes.len() >= HOLD_BYTES
    }

    /// Passes rows in key order, ties in the order they came (a stable sort), to
    /// `each`: all of them, or those up to the middle row's key; keeps the rest.
    fn release(
        &mut self,
        all: bool,
        mut each: impl FnMut(i64, &[u8]) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        self.rows.sort_by_key(|&(key, _, _)| key);
        let cut = if all {
            self.rows.len()
        } else {
            let middle = self.rows[self.rows.len() / 2 - 1].0;
            self.rows.partition_point(|&(key, _, _)| key <= middle)
        };
        for &(key, start, len) in &self.rows[..cut] {
            each(key, &self.bytes[start..start + len])?;
        }
        let mut bytes = Vec::with_capacity(self.bytes.capacity());
        let kept: Vec<(i64, usize, usize)> = self.rows[cut..]
            .iter()
            .map(|&(key, start, len)| {
                let at = bytes.len();
                bytes.extend_from_slice(&self.bytes[start..start + len]);
                (key, at, len)
            })
            .collect();
        self.bytes = bytes;
        self.rows = kept;
        Ok(())
    }

    /// The rows in key order (a stable sort), emptying the holding area.
    fn drain(
        &mut self,
        mut each: impl FnMut(i64, &[u8]) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        self.release(true, &mut each)
    }
}

fn malformed() -> EncodeError {
    EncodeError::write(FileFormat::Parquet, "internal error: a buffered row is malformed")
}

impl ParquetEncoder {
    /// An encoder for calls of `call_type`.
    pub fn new(call_type: CallType, options: EncodeOptions) -> ParquetEncoder {
        let spool = Spool::new(options.sort_buffer_bytes.min(STREAM_MEMORY_BYTES), options.spill_dir.clone());
        let state = match writer(spool, call_type, &options) {
            Ok(writer) => State::Streaming(Box::new(Stream {
                writer,
                batch: Batch::new(call_type, &options),
                held: Held::default(),
                released_key: i64::MIN,
            })),
            // Making a writer fails only on a bad schema, which is ours; sorting mode
            // reports the same error again at `finish`.
            Err(_) => State::Sorting(Box::new(SortedRows::new(options.clone(), Vec::new()))),
        };
        ParquetEncoder { call_type, options, rows: 0, raw_bytes: 0, state }
    }

    fn columns(&self) -> u64 {
        self.call_type.columns().len() as u64
    }

    /// Whether rows are still encoded as they come (`true`), or held to be sorted
    /// when the file is finished because a call came older than a row already
    /// encoded (`false`; see the type's docs).
    pub fn is_streaming(&self) -> bool {
        matches!(self.state, State::Streaming(_))
    }

    /// The row as compact binary for sorting: per column a tag (0 null, 1 value),
    /// then an i64 (little-endian) for a timestamp, or a u32 length and the bytes.
    fn encode_row(call: &Call, out: &mut Vec<u8>) {
        for value in call.row().values() {
            match value {
                Value::Null => out.push(0),
                Value::Timestamp(t) => push_micros(out, t.as_micros()),
                Value::Text(s) => push_text(out, &s),
                Value::Json(o) => push_text(out, o.as_str()),
            }
        }
    }

    /// Leaves streaming: reads back what was written and sorts from now on.
    fn switch_to_sorting(&mut self) -> Result<(), EncodeError> {
        let State::Streaming(mut stream) = std::mem::replace(&mut self.state, State::Broken) else {
            return Ok(());
        };
        let mut sorted = SortedRows::new(self.options.clone(), Vec::new());
        // The held rows come after the file's in the order they came (the sort is
        // stable), so take them out before the file is finished.
        let mut held = std::mem::take(&mut stream.held);
        let reader = match stream.finish()? {
            SpoolReader::Memory(chunks) => {
                let bytes: bytes::Bytes = chunks.concat().into();
                ParquetRecordBatchReaderBuilder::try_new(bytes).and_then(|b| b.build())
            }
            SpoolReader::File(file) => ParquetRecordBatchReaderBuilder::try_new(file).and_then(|b| b.build()),
        }
        .map_err(parquet_error)?;
        let mut row = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| EncodeError::write(FileFormat::Parquet, e))?;
            for i in 0..batch.num_rows() {
                row.clear();
                let key = batch_row(&batch, i, &mut row);
                sorted.push(key, |out| out.extend_from_slice(&row))?;
            }
        }
        held.drain(|key, bytes| sorted.push(key, |out| out.extend_from_slice(bytes)))?;
        self.state = State::Sorting(Box::new(sorted));
        Ok(())
    }
}

/// The bytes of a row as [`ParquetEncoder::encode_row`] writes it: a tag per value,
/// eight bytes per timestamp, a length and the bytes per text. At least the row's
/// plain-encoded size in Parquet (a definition level, eight bytes per timestamp,
/// four bytes of length and the bytes per text).
fn raw_row_bytes(call: &Call) -> u64 {
    call.row()
        .values()
        .map(|value| match value {
            Value::Null => 1,
            Value::Timestamp(_) => 9,
            Value::Text(s) => 5 + s.len() as u64,
            Value::Json(o) => 5 + o.as_str().len() as u64,
        })
        .sum()
}

/// `bytes` with an eighth more: what pages of `bytes` plain-encoded bytes take at
/// most once compressed (Snappy and Zstandard grow data that does not compress by
/// far less).
fn with_slack(bytes: u64) -> u64 {
    bytes + bytes.div_ceil(8)
}

/// At most how large the footer (file metadata, column and offset indexes, the
/// Arrow schema) of a file of `rows` rows and about `bytes` bytes of pages is:
/// a fixed part, and per column a part per row group and per page. Pages end at
/// 20,000 rows (arrow-rs' default page row count limit, checked every 1,024 rows)
/// or 1 MiB; statistics are truncated to 64 bytes. Linear in `rows` and `bytes`, so
/// that each row can carry its share ([`row_bytes_bound`]).
///
/// Row groups end at [`EncodeOptions::row_group_rows`] rows, or once their
/// estimated size reaches [`EncodeOptions::row_group_bytes`]: an estimate that is
/// at most the plain size of their rows with the compression slack, so the row
/// groups ended by size are at most `with_slack(raw)` / `row_group_bytes`, where
/// `raw` is the size of every row as [`ParquetEncoder::encode_row`] writes it.
fn footer_bound(columns: u64, rows: u64, raw: u64, bytes: u64, options: &EncodeOptions) -> u64 {
    let per_group = options.row_group_rows.clamp(1, 20_000) as u64;
    16 * 1024
        + columns * GROUP_FOOTER
        + (columns * GROUP_FOOTER * rows).div_ceil(per_group)
        + (columns * GROUP_FOOTER * with_slack(raw)).div_ceil(options.row_group_bytes.max(1) as u64)
        + (columns * PAGE_FOOTER * bytes).div_ceil(1 << 20)
}

/// Bytes per column and row group at most that no value accounts for: the column
/// chunk's metadata in the footer (statistics truncated to 64 bytes), its first
/// page's entries in the column and offset indexes, and its page headers and
/// dictionary page header.
const GROUP_FOOTER: u64 = 1024;

/// Footer bytes per column and page at most (a page's column and offset index
/// entries).
const PAGE_FOOTER: u64 = 256;

/// What a call adds to [`Encode::encoded_bytes`] of a Parquet file at most: its
/// plain size with the compression slack, and its share of the footer.
pub(crate) fn row_bytes_bound(call: &Call, options: &EncodeOptions) -> u64 {
    let raw = raw_row_bytes(call);
    let columns = call.row().columns().len() as u64;
    let per_group = options.row_group_rows.clamp(1, 20_000) as u64;
    with_slack(raw)
        + (columns * GROUP_FOOTER).div_ceil(per_group)
        + (columns * GROUP_FOOTER * with_slack(raw)).div_ceil(options.row_group_bytes.max(1) as u64)
        + (columns * PAGE_FOOTER * with_slack(raw)).div_ceil(1 << 20)
        + 2
}

fn push_micros(out: &mut Vec<u8>, micros: i64) {
    out.push(1);
    out.extend_from_slice(&micros.to_le_bytes());
}

fn push_text(out: &mut Vec<u8>, s: &str) {
    out.push(1);
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Encodes row `i` of a batch read back from Parquet as [`ParquetEncoder::encode_row`]
/// would, and returns its sort key.
fn batch_row(batch: &RecordBatch, i: usize, out: &mut Vec<u8>) -> i64 {
    let mut key = i64::MIN;
    for (c, column) in batch.columns().iter().enumerate() {
        if column.is_null(i) {
            out.push(0);
        } else if let Some(times) = column.as_primitive_opt::<TimestampMicrosecondType>() {
            let micros = times.value(i);
            if c == RECEIVED_AT_COLUMN {
                key = micros;
            }
            push_micros(out, micros);
        } else {
            push_text(out, column.as_string::<i32>().value(i));
        }
    }
    key
}

/// The Arrow schema of a call type's table.
pub(crate) fn schema(call_type: CallType) -> SchemaRef {
    let fields: Vec<Field> = call_type
        .columns()
        .iter()
        .map(|c| match c.kind {
            ColumnKind::Timestamp => {
                Field::new(c.name, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true)
            }
            ColumnKind::Text => Field::new(c.name, DataType::Utf8, true),
            ColumnKind::Json => Field::new(c.name, DataType::Utf8, true).with_extension_type(Json::default()),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn properties(call_type: CallType, options: &EncodeOptions) -> WriterProperties {
    let compression = match options.compression {
        Compression::Snappy => parquet::basic::Compression::SNAPPY,
        Compression::Zstd(level) => parquet::basic::Compression::ZSTD(
            ZstdLevel::try_new(level).unwrap_or_else(|_| ZstdLevel::default()),
        ),
        Compression::None => parquet::basic::Compression::UNCOMPRESSED,
    };
    let sort_key =
        SortingColumn { column_idx: RECEIVED_AT_COLUMN as i32, descending: false, nulls_first: true };
    let mut builder = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(options.row_group_rows))
        .set_sorting_columns(Some(vec![sort_key]));
    for column in call_type.columns() {
        let path = ColumnPath::from(column.name);
        // Dictionaries pay off only for the few low-cardinality columns; ids, JSON and
        // timestamps are (nearly) unique per row. Min/max of JSON text helps no reader.
        let dictionary = matches!(column.name, "event" | "event_text" | "name" | "object_type_id");
        builder = builder.set_column_dictionary_enabled(path.clone(), dictionary);
        if column.kind == ColumnKind::Json {
            builder = builder.set_column_statistics_enabled(path, EnabledStatistics::None);
        }
    }
    builder.build()
}

fn writer<W: Write + Send>(
    out: W,
    call_type: CallType,
    options: &EncodeOptions,
) -> Result<ArrowWriter<W>, EncodeError> {
    let writer_options = ArrowWriterOptions::new().with_properties(properties(call_type, options));
    ArrowWriter::try_new_with_options(out, schema(call_type), writer_options).map_err(parquet_error)
}

/// One column's values for the batch being built.
enum ColumnBuilder {
    Timestamp(TimestampMicrosecondBuilder),
    Text(StringBuilder),
}

/// The rows gathered for the next Arrow batch.
struct Batch {
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    rows: usize,
    /// The bytes of the rows gathered, as [`ParquetEncoder::encode_row`] wrote them.
    raw: usize,
    /// The writer's estimate of the encoded size of the row group in progress, as
    /// of the last batch handed to it.
    group_bytes: usize,
    /// [`EncodeOptions::row_group_bytes`].
    group_limit: usize,
}

impl Batch {
    fn new(call_type: CallType, options: &EncodeOptions) -> Batch {
        let columns = call_type
            .columns()
            .iter()
            .map(|c| match c.kind {
                ColumnKind::Timestamp => ColumnBuilder::Timestamp(
                    TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC"),
                ),
                ColumnKind::Text | ColumnKind::Json => {
                    ColumnBuilder::Text(StringBuilder::with_capacity(BATCH_ROWS, 0))
                }
            })
            .collect();
        Batch {
            schema: schema(call_type),
            columns,
            rows: 0,
            raw: 0,
            group_bytes: 0,
            group_limit: options.row_group_bytes.max(1),
        }
    }

    /// The bytes of the rows gathered and not yet handed to the writer, as
    /// [`ParquetEncoder::encode_row`] would write them, at most.
    fn raw_bytes(&self) -> u64 {
        self.raw as u64
    }

    /// Adds a row encoded by [`ParquetEncoder::encode_row`]; `None` if malformed.
    fn push_encoded(&mut self, bytes: &[u8]) -> Option<()> {
        let mut row = RowBytes(bytes);
        for column in &mut self.columns {
            let present = row.present()?;
            match column {
                ColumnBuilder::Timestamp(b) if present => b.append_value(row.micros()?),
                ColumnBuilder::Text(b) if present => b.append_value(row.text()?),
                ColumnBuilder::Timestamp(b) => b.append_null(),
                ColumnBuilder::Text(b) => b.append_null(),
            }
        }
        self.rows += 1;
        self.raw += bytes.len();
        Some(())
    }

    /// Hands the gathered rows to the writer as one batch.
    fn flush<W: Write + Send>(&mut self, writer: &mut ArrowWriter<W>) -> Result<(), EncodeError> {
        if self.rows == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
                    ColumnBuilder::Text(b) => {
                        // `finish` leaves an empty builder; give the next batch room
                        // for as much text as this one had, so it does not regrow.
                        let bytes = b.values_slice().len();
                        let full =
                            std::mem::replace(b, StringBuilder::with_capacity(BATCH_ROWS, bytes + bytes / 8));
                        let mut full = full;
                        Arc::new(full.finish())
                    }
                }
            })
            .collect();
        self.rows = 0;
        self.raw = 0;
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| EncodeError::write(FileFormat::Parquet, e))?;
        writer.write(&batch).map_err(parquet_error)?;
        self.group_bytes = writer.in_progress_size();
        Ok(())
    }

    /// Hands the batch to the writer when it is full, and ends the row group when
    /// it has reached [`EncodeOptions::row_group_bytes`]: the writer's estimate of
    /// the batches it has, plus the plain size of the rows gathered here (never
    /// less than their encoded size). So a row group is at most the limit and the
    /// last row past it.
    fn flush_if_full<W: Write + Send>(&mut self, writer: &mut ArrowWriter<W>) -> Result<(), EncodeError> {
        if self.group_bytes + self.raw >= self.group_limit {
            self.flush(writer)?;
            writer.flush().map_err(parquet_error)?;
            self.group_bytes = 0;
            Ok(())
        } else if self.rows >= BATCH_ROWS {
            self.flush(writer)
        } else {
            Ok(())
        }
    }
}

/// Reads the binary rows [`ParquetEncoder::encode_row`] writes.
struct RowBytes<'a>(&'a [u8]);

impl<'a> RowBytes<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    /// The next value's tag: true when it is not null.
    fn present(&mut self) -> Option<bool> {
        Some(self.take(1)?[0] == 1)
    }

    fn micros(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<&'a str> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }
}

fn parquet_error(e: parquet::errors::ParquetError) -> EncodeError {
    EncodeError::write(FileFormat::Parquet, e)
}

/// Where the Parquet file goes while it is being streamed: memory up to a limit,
/// then an anonymous temporary file.
struct Spool {
    /// What is written, in chunks (so the file never needs one big allocation).
    memory: crate::ChunkWriter,
    memory_len: usize,
    limit: usize,
    file: Option<BufWriter<File>>,
    spill_dir: Option<std::path::PathBuf>,
}

enum SpoolReader {
    Memory(Vec<bytes::Bytes>),
    File(File),
}

impl Spool {
    fn new(limit: usize, spill_dir: Option<std::path::PathBuf>) -> Spool {
        Spool { memory: crate::ChunkWriter::default(), memory_len: 0, limit, file: None, spill_dir }
    }

    fn into_reader(self) -> Result<SpoolReader, EncodeError> {
        match self.file {
            None => Ok(SpoolReader::Memory(self.memory.into_chunks())),
            Some(file) => Ok(SpoolReader::File(crate::rows::rewind(file)?)),
        }
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.memory_len + buf.len() > self.limit {
            let file = crate::rows::temp_file_in(self.spill_dir.as_deref())?;
            let mut file = BufWriter::with_capacity(1 << 20, file);
            for chunk in std::mem::take(&mut self.memory).into_chunks() {
                file.write_all(&chunk)?;
            }
            self.memory_len = 0;
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write(buf),
            None => {
                self.memory.write_all(buf)?;
                self.memory_len += buf.len();
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl Encode for ParquetEncoder {
    fn call_type(&self) -> CallType {
        self.call_type
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    fn encoded_bytes(&self) -> u64 {
        match &self.state {
            State::Streaming(stream) => {
                let written = stream.writer.bytes_written() as u64;
                let pending = stream.writer.in_progress_size() as u64
                    + stream.held.bytes.len() as u64
                    + stream.batch.raw_bytes();
                let bytes = written + with_slack(pending);
                bytes + footer_bound(self.columns(), self.rows, self.raw_bytes, bytes, &self.options)
            }
            State::Sorting(sorted) => {
                let bytes = with_slack(sorted.total_bytes());
                bytes + footer_bound(self.columns(), self.rows, self.raw_bytes, bytes, &self.options)
            }
            State::Broken => 0,
        }
    }

    fn write(&mut self, call: &Call) -> Result<(), EncodeError> {
        if call.call_type() != self.call_type {
            return Err(EncodeError::WrongCallType { expected: self.call_type, found: call.call_type() });
        }
        let key = crate::sort_key(call);
        if let State::Streaming(stream) = &self.state
            && key < stream.released_key
        {
            self.switch_to_sorting()?;
        }
        let len = match &mut self.state {
            State::Streaming(stream) => {
                let result = stream.hold(key, call, &self.options);
                if result.is_err() {
                    self.state = State::Broken;
                }
                result? as u64
            }
            State::Sorting(sorted) => {
                let before = sorted.total_bytes();
                sorted.push(key, |out| ParquetEncoder::encode_row(call, out))?;
                sorted.total_bytes() - before
            }
            State::Broken => return Err(broken()),
        };
        self.rows += 1;
        self.raw_bytes += len;
        Ok(())
    }

    fn release_buffers(&mut self) -> Result<(), EncodeError> {
        let released = match &mut self.state {
            State::Streaming(stream) => stream.release_buffers(self.call_type, &self.options),
            State::Sorting(sorted) => sorted.release_buffers(),
            State::Broken => return Err(broken()),
        };
        if released.is_err() {
            self.state = State::Broken;
        }
        released
    }

    fn finish<W: Write + Send>(self, mut out: W) -> Result<W, EncodeError> {
        match self.state {
            State::Streaming(stream) => {
                let fail = |e: io::Error| EncodeError::write(FileFormat::Parquet, e);
                match stream.finish()? {
                    SpoolReader::Memory(chunks) => {
                        for chunk in chunks {
                            out.write_all(&chunk).map_err(fail)?;
                        }
                    }
                    SpoolReader::File(mut file) => {
                        io::copy(&mut file, &mut out).map_err(fail)?;
                    }
                }
                out.flush().map_err(fail)?;
                Ok(out)
            }
            State::Sorting(sorted) => {
                let mut writer = writer(out, self.call_type, &self.options)?;
                let mut batch = Batch::new(self.call_type, &self.options);
                sorted.drain(|bytes| {
                    batch.push_encoded(bytes).ok_or_else(malformed)?;
                    batch.flush_if_full(&mut writer)
                })?;
                batch.flush(&mut writer)?;
                writer.into_inner().map_err(parquet_error)
            }
            State::Broken => Err(broken()),
        }
    }

    fn finish_to_file(self) -> Result<File, EncodeError> {
        match self.state {
            State::Streaming(stream) => match stream.finish()? {
                SpoolReader::File(file) => Ok(file),
                SpoolReader::Memory(chunks) => {
                    let mut out = BufWriter::new(crate::rows::temp_file(&self.options)?);
                    for chunk in chunks {
                        out.write_all(&chunk).map_err(|source| EncodeError::Spill { source })?;
                    }
                    crate::rows::rewind(out)
                }
            },
            state => {
                let file = crate::rows::temp_file(&self.options)?;
                let encoder = ParquetEncoder { state, ..self };
                crate::rows::rewind(encoder.finish(BufWriter::with_capacity(1 << 20, file))?)
            }
        }
    }

    fn finish_to_chunks(self) -> Result<Vec<bytes::Bytes>, EncodeError> {
        match self.state {
            State::Streaming(stream) => match stream.finish()? {
                SpoolReader::Memory(chunks) => Ok(chunks),
                SpoolReader::File(file) => crate::rows::read_chunks(file),
            },
            state => {
                let encoder = ParquetEncoder { state, ..self };
                Ok(encoder.finish(crate::ChunkWriter::default())?.into_chunks())
            }
        }
    }
}

fn broken() -> EncodeError {
    EncodeError::write(FileFormat::Parquet, "an earlier write failed; the file cannot be finished")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn spool_spills_past_its_limit() {
        let mut spool = Spool::new(10, None);
        spool.write_all(b"0123456789").unwrap();
        assert!(spool.file.is_none());
        spool.write_all(b"abc").unwrap();
        assert!(spool.file.is_some());
        let SpoolReader::File(mut file) = spool.into_reader().unwrap() else { panic!("expected a file") };
        let mut back = String::new();
        file.read_to_string(&mut back).unwrap();
        assert_eq!(back, "0123456789abc");
    }
}
