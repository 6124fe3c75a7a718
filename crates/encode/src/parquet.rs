//! Apache Parquet through arrow-rs: `TIMESTAMP(MICROS, UTC)` timestamps, UTF-8 text,
//! and JSON-annotated UTF-8 for nested objects.

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::extension::Json;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use cdp_calls::{Call, CallType, ColumnKind, RECEIVED_AT_COLUMN, Value};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::ZstdLevel;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::{Compression, Encode, EncodeError, EncodeOptions, FileFormat, Pending, encode_common};

/// Rows collected into one Arrow batch before it goes to the Parquet writer; the
/// writer gathers batches into row groups of [`EncodeOptions::row_group_rows`].
const BATCH_ROWS: usize = 8 * 1024;

/// Encodes calls as Apache Parquet (`.parquet`).
///
/// Columns are the type's warehouse columns, all optional: timestamps as
/// `TIMESTAMP(MICROS, isAdjustedToUTC=true)`, ids and names as UTF-8 strings, and
/// `traits`, `properties` and `context` as UTF-8 strings with the Parquet `JSON`
/// logical type. Row groups hold at most [`EncodeOptions::row_group_rows`] rows;
/// every row group records that it is sorted by `received_at` (ascending, nulls
/// first) in its sorting-columns metadata. Pages are Snappy-compressed unless
/// [`EncodeOptions::compression`] says otherwise.
///
/// ```
/// use cdp_calls::{Call, CallType};
/// use cdp_encode::{Encode, EncodeOptions, ParquetEncoder};
///
/// let mut enc = ParquetEncoder::new(CallType::Identify, EncodeOptions::default());
/// enc.write(Call::identify("u1").with_message_id("m1"))?;
/// let bytes = enc.finish_to_vec()?;
/// assert_eq!(&bytes[..4], b"PAR1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ParquetEncoder {
    pending: Pending,
}

impl ParquetEncoder {
    /// An encoder for calls of `call_type`.
    pub fn new(call_type: CallType, options: EncodeOptions) -> ParquetEncoder {
        ParquetEncoder { pending: Pending::new(call_type, options) }
    }

    /// The row as compact binary: per column a tag (0 null, 1 value), then an i64
    /// (little-endian) for a timestamp, or a u32 length and the UTF-8 bytes.
    fn encode_row(call: &Call, out: &mut Vec<u8>) {
        let row = call.row();
        let text = |out: &mut Vec<u8>, s: &str| {
            out.push(1);
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        for value in row.values() {
            match value {
                Value::Null => out.push(0),
                Value::Timestamp(t) => {
                    out.push(1);
                    out.extend_from_slice(&t.as_micros().to_le_bytes());
                }
                Value::Text(s) => text(out, &s),
                Value::Json(o) => text(out, o.as_str()),
            }
        }
    }
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

/// One column's values for the batch being built.
enum ColumnBuilder {
    Timestamp(TimestampMicrosecondBuilder),
    Text(StringBuilder),
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

impl ColumnBuilder {
    fn new(kind: ColumnKind) -> ColumnBuilder {
        match kind {
            ColumnKind::Timestamp => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC"))
            }
            ColumnKind::Text | ColumnKind::Json => ColumnBuilder::Text(StringBuilder::with_capacity(BATCH_ROWS, 0)),
        }
    }

    fn append(&mut self, row: &mut RowBytes<'_>) -> Option<()> {
        let present = row.present()?;
        match self {
            ColumnBuilder::Timestamp(b) if present => b.append_value(row.micros()?),
            ColumnBuilder::Text(b) if present => b.append_value(row.text()?),
            ColumnBuilder::Timestamp(b) => b.append_null(),
            ColumnBuilder::Text(b) => b.append_null(),
        }
        Some(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
            ColumnBuilder::Text(b) => Arc::new(b.finish()),
        }
    }
}

fn parquet_error(e: parquet::errors::ParquetError) -> EncodeError {
    EncodeError::write(FileFormat::Parquet, e)
}

impl Encode for ParquetEncoder {
    encode_common!();

    fn finish<W: Write + Send>(self, out: W) -> Result<W, EncodeError> {
        let call_type = self.pending.call_type;
        let schema = schema(call_type);
        let options =
            ArrowWriterOptions::new().with_properties(properties(call_type, self.pending.rows.options()));
        let mut writer =
            ArrowWriter::try_new_with_options(out, schema.clone(), options).map_err(parquet_error)?;
        let mut builders: Vec<ColumnBuilder> =
            call_type.columns().iter().map(|c| ColumnBuilder::new(c.kind)).collect();
        let mut batched = 0usize;
        let flush = |builders: &mut Vec<ColumnBuilder>, writer: &mut ArrowWriter<W>| {
            let arrays = builders.iter_mut().map(ColumnBuilder::finish).collect();
            let batch = RecordBatch::try_new(schema.clone(), arrays)
                .map_err(|e| EncodeError::write(FileFormat::Parquet, e))?;
            writer.write(&batch).map_err(parquet_error)
        };
        self.pending.rows.drain(|bytes| {
            let mut row = RowBytes(bytes);
            for builder in &mut builders {
                builder.append(&mut row).ok_or_else(|| {
                    EncodeError::write(FileFormat::Parquet, "internal error: a buffered row is malformed")
                })?;
            }
            batched += 1;
            if batched == BATCH_ROWS {
                flush(&mut builders, &mut writer)?;
                batched = 0;
            }
            Ok(())
        })?;
        if batched > 0 {
            flush(&mut builders, &mut writer)?;
        }
        writer.into_inner().map_err(parquet_error)
    }
}
