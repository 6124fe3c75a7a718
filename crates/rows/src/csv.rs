//! Writing [`RowError`]s as a CSV file.

use std::io;

use crate::RowError;

/// The header of a row-error CSV file.
pub const ROW_ERROR_CSV_HEADER: [&str; 5] = ["row_number", "column", "code", "reason", "values"];

/// Writes row errors as an RFC 4180 CSV file: a header row
/// ([`ROW_ERROR_CSV_HEADER`]), then one record per error with its row number, the
/// column as the database named it (empty when none), the reason's
/// [`code`](crate::RowErrorReason::code), the reason as a sentence, and the row's
/// values as a JSON object.
///
/// ```
/// use cdp_rows::{RowErrorCsvWriter, RowError, RowErrorReason};
///
/// let error = RowError {
///     row_number: 3,
///     column: Some("AGE".into()),
///     reason: RowErrorReason::ValueTooLarge { bytes: 200_000, limit: 131_072 },
///     values: r#"{"AGE":"…"}"#.into(),
/// };
/// let mut csv = RowErrorCsvWriter::new(Vec::new())?;
/// csv.write(&error)?;
/// let text = String::from_utf8(csv.finish()?).unwrap();
/// assert_eq!(
///     text,
///     "row_number,column,code,reason,values\n\
///      3,AGE,value_too_large,\"the value is 200000 bytes as JSON, over the limit of 131072\",\"{\"\"AGE\"\":\"\"…\"\"}\"\n"
/// );
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct RowErrorCsvWriter<W: io::Write> {
    inner: csv::Writer<W>,
}

impl<W: io::Write> RowErrorCsvWriter<W> {
    /// Starts a file on `writer` and writes the header.
    pub fn new(writer: W) -> io::Result<Self> {
        let mut inner = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(writer);
        inner.write_record(ROW_ERROR_CSV_HEADER)?;
        Ok(RowErrorCsvWriter { inner })
    }

    /// Writes one error.
    pub fn write(&mut self, error: &RowError) -> io::Result<()> {
        let row_number = error.row_number.to_string();
        let reason = error.reason.to_string();
        let column = error.column.as_deref().unwrap_or_default();
        self.inner.write_record([
            row_number.as_str(),
            column,
            error.reason.code(),
            reason.as_str(),
            &error.values,
        ])?;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        self.inner.into_inner().map_err(|e| e.into_error())
    }
}

/// Writes `errors` as a complete CSV file to `writer` (see [`RowErrorCsvWriter`]).
pub fn write_row_errors_csv<'e, W, I>(writer: W, errors: I) -> io::Result<W>
where
    W: io::Write,
    I: IntoIterator<Item = &'e RowError>,
{
    let mut csv = RowErrorCsvWriter::new(writer)?;
    for error in errors {
        csv.write(error)?;
    }
    csv.finish()
}
