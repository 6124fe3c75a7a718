//! [`RowStream`]: the rows of one query, pulled one at a time.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use cdp_rows::{Columns, Value};
use futures::Stream;

use crate::SourceError;

/// One row as a source hands it over: one [`Value`] per column, in column order.
pub type Values = Vec<Value<'static>>;

/// The boxed stream behind a [`RowStream`].
type BoxedRows = Pin<Box<dyn Stream<Item = Result<Values, SourceError>> + Send + 'static>>;

/// One row as [`RowStream::next_with`] lends it: its values (borrowing the source's
/// buffers where the source reads in place), or the row's error.
pub(crate) type RowRef<'s, 'v> = Result<&'s [Value<'v>], SourceError>;

/// Rows a source reads in place: each row's values are lent to a visitor, borrowing
/// the driver's buffers, instead of being copied into a [`Values`] of their own.
pub(crate) trait RowsInPlace: Send {
    /// Polls for the next row. When one is ready, `visit` is called once with its
    /// values or its error and the result is `Ready(Some(()))`; `Ready(None)` after
    /// the last row or a fatal error (which is visited first). Pending rows lose
    /// nothing when the caller stops polling.
    fn poll_row(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        visit: &mut dyn FnMut(RowRef<'_, '_>),
    ) -> Poll<Option<()>>;

    /// Polls for the rows that are ready, at most `max` and at least one, not yet
    /// decoded; `Ready(None)` after the last row or a fatal error. A fatal error is the
    /// batch's last item.
    fn poll_batch(self: Pin<&mut Self>, cx: &mut Context<'_>, max: usize) -> Poll<Option<RowBatch>>;
}

/// Rows read but not yet decoded, which decode on any thread ([`RowBatch::for_each`]).
pub(crate) trait RawRows: Send {
    /// How many rows there are (a fatal error at the end is not a row).
    fn rows(&self) -> usize;
    /// Whether the batch ends with an error that ended the query.
    fn ends_with_error(&self) -> bool;
    /// Decodes each row in turn and lends it to `visit`, then the fatal error if
    /// there is one; `first_row` is the number of rows the stream read before the
    /// batch (row errors count from it).
    fn visit(self: Box<Self>, first_row: u64, visit: &mut dyn FnMut(RowRef<'_, '_>));
}

/// Rows of a [`RowStream`] read together ([`RowStream::next_batch`]): moved to
/// another task or thread, they are decoded there, in order, by
/// [`RowBatch::for_each`], so that reading from the database and decoding rows can go
/// on at the same time. Rows, errors and counts are those [`RowStream::next`] would
/// give one at a time.
pub struct RowBatch {
    rows: BatchRows,
    /// The rows the stream had read before this batch.
    first_row: u64,
}

/// The rows of a [`RowBatch`].
enum BatchRows {
    /// Rows from a source that hands over [`Values`].
    Owned(Vec<Result<Values, SourceError>>),
    /// Rows a source decodes in place.
    Raw(Box<dyn RawRows>),
}

impl RowBatch {
    /// A batch of rows a source decodes in place.
    pub(crate) fn raw(rows: impl RawRows + 'static) -> RowBatch {
        RowBatch { rows: BatchRows::Raw(Box::new(rows)), first_row: 0 }
    }

    /// How many rows the batch holds: rows that decode and rows that give a row
    /// error, not an error that ended the query.
    pub fn rows(&self) -> usize {
        match &self.rows {
            BatchRows::Owned(items) => items.iter().filter(|item| !is_fatal(item)).count(),
            BatchRows::Raw(raw) => raw.rows(),
        }
    }

    /// Whether the batch ends with an error that ended the query (nothing follows
    /// it).
    pub fn ends_with_error(&self) -> bool {
        match &self.rows {
            BatchRows::Owned(items) => items.last().is_some_and(is_fatal),
            BatchRows::Raw(raw) => raw.ends_with_error(),
        }
    }

    /// Decodes the rows in order and lends each to `read`: its values (borrowing the
    /// batch's buffers where the source reads in place) or its error, then the error
    /// that ended the query, if one did.
    ///
    /// ```
    /// use cdp_rows::{Columns, Value};
    /// use cdp_source::RowStream;
    ///
    /// # futures::executor::block_on(async {
    /// let rows = futures::stream::iter((1..=5).map(|n| Ok(vec![Value::Int(n)])));
    /// let mut stream = RowStream::new("example", Columns::new(["n"]), rows);
    /// let mut sum = 0;
    /// while let Some(batch) = stream.next_batch(2).await {
    ///     assert!(batch.rows() <= 2);
    ///     batch.for_each(|row| {
    ///         if let Ok([Value::Int(n)]) = row {
    ///             sum += n;
    ///         }
    ///     });
    /// }
    /// assert_eq!((sum, stream.rows_read()), (15, 5));
    /// # });
    /// ```
    pub fn for_each(self, mut read: impl FnMut(Result<&[Value<'_>], SourceError>)) {
        match self.rows {
            BatchRows::Owned(items) => {
                for item in items {
                    match item {
                        Ok(values) => read(Ok(&values)),
                        Err(e) => read(Err(e)),
                    }
                }
            }
            BatchRows::Raw(raw) => raw.visit(self.first_row, &mut |row| read(row)),
        }
    }
}

impl fmt::Debug for RowBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowBatch")
            .field("rows", &self.rows())
            .field("ends_with_error", &self.ends_with_error())
            .finish_non_exhaustive()
    }
}

/// Whether an item is an error that ended the query.
fn is_fatal<V>(item: &Result<V, SourceError>) -> bool {
    item.as_ref().is_err_and(|e| !e.is_row_error())
}

/// Where a [`RowStream`]'s rows come from.
enum Rows {
    /// Rows that arrive as [`Values`] of their own.
    Owned(BoxedRows),
    /// Rows read in place ([`RowsInPlace`]).
    InPlace(Pin<Box<dyn RowsInPlace>>),
}

/// The result of one query: its [`Columns`], known before any row, then its rows, one
/// at a time.
///
/// Rows are produced as they are read, never collected: a source holds at most a
/// small, fixed number of rows ahead of the reader (PostgreSQL: what the driver has
/// read from one network buffer; SQLite: the bounded channel of
/// [`crate::SqliteOptions::channel_capacity`] rows). When the reader stops pulling, the
/// database stops sending.
///
/// Reading ends with `None` after the last row, or after an error that ends the
/// query; a [`SourceError::Value`] error concerns one row and reading can go on
/// ([`SourceError::is_row_error`]). Dropping the stream early cancels the query and
/// closes its connection. A `RowStream` is `Send`, so it can move into a spawned task;
/// it also implements [`futures::Stream`].
///
/// ```
/// use cdp_rows::{Columns, Value};
/// use cdp_source::RowStream;
///
/// # futures::executor::block_on(async {
/// // Any source can build one from its columns and a stream of rows.
/// let rows = futures::stream::iter(vec![Ok(vec![Value::Int(1)]), Ok(vec![Value::Int(2)])]);
/// let mut stream = RowStream::new("example", Columns::new(["n"]), rows);
/// assert_eq!(stream.columns().names(), ["n"]);
/// let mut sum = 0;
/// while let Some(row) = stream.next().await {
///     if let Value::Int(n) = row?[0] {
///         sum += n;
///     }
/// }
/// assert_eq!((sum, stream.rows_read()), (3, 2));
/// # Ok::<(), cdp_source::SourceError>(())
/// # }).unwrap();
/// ```
pub struct RowStream {
    source_name: Arc<str>,
    columns: Columns,
    rows: Rows,
    rows_read: u64,
    done: bool,
}

impl RowStream {
    /// A stream of `rows` under `columns`, from the source called `source_name`.
    ///
    /// This is how a source builds its result; every row must have one value per
    /// column. After the inner stream yields an error that is not a row error
    /// ([`SourceError::is_row_error`]), the `RowStream` ends without polling it again.
    pub fn new<S>(source_name: impl Into<Arc<str>>, columns: Columns, rows: S) -> RowStream
    where
        S: Stream<Item = Result<Values, SourceError>> + Send + 'static,
    {
        RowStream {
            source_name: source_name.into(),
            columns,
            rows: Rows::Owned(Box::pin(rows)),
            rows_read: 0,
            done: false,
        }
    }

    /// A stream of rows read in place, for sources whose values can borrow the
    /// driver's buffers ([`RowStream::next_with`] then copies nothing).
    pub(crate) fn in_place(
        source_name: impl Into<Arc<str>>,
        columns: Columns,
        rows: impl RowsInPlace + 'static,
    ) -> RowStream {
        RowStream {
            source_name: source_name.into(),
            columns,
            rows: Rows::InPlace(Box::pin(rows)),
            rows_read: 0,
            done: false,
        }
    }

    /// The result's column names, in order.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// The name of the source that runs the query.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// How many rows have been read so far, counting rows that gave a
    /// [`SourceError::Value`] error.
    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }

    /// The next row; `None` after the last row or after an error that ended the query.
    pub async fn next(&mut self) -> Option<Result<Values, SourceError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The next row, lent to `read` rather than handed over: `read` gets the row's
    /// values or its error, and what it returns is the result; `None` after the last
    /// row or after an error that ended the query. Rows, errors and counts are those
    /// of [`RowStream::next`], but a source that reads in place (PostgreSQL) lends
    /// values that borrow its buffers, so text, JSON and bytes are not copied.
    ///
    /// The future loses nothing when dropped before it is ready: `read` is only
    /// called once a row is there.
    ///
    /// ```
    /// use cdp_rows::{Columns, Value};
    /// use cdp_source::RowStream;
    ///
    /// # futures::executor::block_on(async {
    /// let rows = futures::stream::iter(vec![Ok(vec![Value::from("ada")]), Ok(vec![Value::from("grace")])]);
    /// let mut stream = RowStream::new("example", Columns::new(["name"]), rows);
    /// let mut lengths = Vec::new();
    /// while let Some(length) = stream.next_with(|row| row.map(|values| values.len())).await {
    ///     lengths.push(length?);
    /// }
    /// assert_eq!((lengths, stream.rows_read()), (vec![1, 1], 2));
    /// # Ok::<(), cdp_source::SourceError>(())
    /// # }).unwrap();
    /// ```
    pub async fn next_with<T>(
        &mut self,
        read: impl FnOnce(Result<&[Value<'_>], SourceError>) -> T,
    ) -> Option<T> {
        let mut read = Some(read);
        std::future::poll_fn(|cx| self.poll_with(cx, &mut read)).await
    }

    /// The rows that are ready, at most `max` (at least one, waiting for it),
    /// together, not yet decoded: decode them with [`RowBatch::for_each`], on this
    /// task or another; `None` after the last row or after an error that ended the
    /// query (a batch's last item). The batch's rows count as read.
    ///
    /// A batch goes as soon as the source has no more rows ready, so a slow source's
    /// rows are not held back. Rows are only taken from what the source has already
    /// received: its bound on the rows held ahead is unchanged.
    pub async fn next_batch(&mut self, max: usize) -> Option<RowBatch> {
        let max = max.max(1);
        let mut batch = std::future::poll_fn(|cx| self.poll_batch(cx, max)).await?;
        batch.first_row = self.rows_read;
        self.rows_read += batch.rows() as u64;
        if batch.ends_with_error() {
            self.done = true;
        }
        Some(batch)
    }

    /// Polls for a batch of at most `max` rows.
    fn poll_batch(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<Option<RowBatch>> {
        if self.done {
            return Poll::Ready(None);
        }
        match &mut self.rows {
            Rows::Owned(rows) => {
                let mut items = Vec::new();
                while items.len() < max {
                    match rows.as_mut().poll_next(cx) {
                        Poll::Pending if items.is_empty() => return Poll::Pending,
                        Poll::Pending => break,
                        Poll::Ready(None) => {
                            self.done = true;
                            break;
                        }
                        Poll::Ready(Some(item)) => {
                            let fatal = is_fatal(&item);
                            items.push(item);
                            if fatal {
                                break;
                            }
                        }
                    }
                }
                if items.is_empty() {
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(RowBatch { rows: BatchRows::Owned(items), first_row: 0 }))
            }
            Rows::InPlace(rows) => {
                let batch = std::task::ready!(rows.as_mut().poll_batch(cx, max));
                if batch.is_none() {
                    self.done = true;
                }
                Poll::Ready(batch)
            }
        }
    }

    /// Polls for the next row and, when it is ready, lends it to the reader in
    /// `read` (taken).
    fn poll_with<T, F: FnOnce(RowRef<'_, '_>) -> T>(
        &mut self,
        cx: &mut Context<'_>,
        read: &mut Option<F>,
    ) -> Poll<Option<T>> {
        if self.done {
            return Poll::Ready(None);
        }
        let (rows_read, done) = (&mut self.rows_read, &mut self.done);
        match &mut self.rows {
            Rows::Owned(rows) => {
                let item = std::task::ready!(rows.as_mut().poll_next(cx));
                let Some(item) = item else {
                    *done = true;
                    return Poll::Ready(None);
                };
                count(&item, rows_read, done);
                let Some(read) = read.take() else { return Poll::Ready(None) };
                Poll::Ready(Some(match item {
                    Ok(values) => read(Ok(&values)),
                    Err(e) => read(Err(e)),
                }))
            }
            Rows::InPlace(rows) => {
                let mut out = None;
                let polled = std::task::ready!(rows.as_mut().poll_row(cx, &mut |item| {
                    count(&item, rows_read, done);
                    if let Some(read) = read.take() {
                        out = Some(read(item));
                    }
                }));
                if polled.is_none() {
                    *done = true;
                }
                Poll::Ready(out)
            }
        }
    }
}

/// Counts a row that was read, or ends the stream after a fatal error.
fn count<V>(item: &Result<V, SourceError>, rows_read: &mut u64, done: &mut bool) {
    match item {
        Ok(_) => *rows_read += 1,
        Err(e) if e.is_row_error() => *rows_read += 1,
        Err(_) => *done = true,
    }
}

impl Stream for RowStream {
    type Item = Result<Values, SourceError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match &mut this.rows {
            Rows::Owned(rows) => {
                let item = std::task::ready!(rows.as_mut().poll_next(cx));
                match &item {
                    None => this.done = true,
                    Some(item) => count(item, &mut this.rows_read, &mut this.done),
                }
                Poll::Ready(item)
            }
            Rows::InPlace(_) => {
                let mut own = Some(|item: RowRef<'_, '_>| {
                    item.map(|values| values.iter().cloned().map(Value::into_owned).collect())
                });
                this.poll_with(cx, &mut own)
            }
        }
    }
}

impl fmt::Debug for RowStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowStream")
            .field("source_name", &self.source_name)
            .field("columns", &self.columns)
            .field("rows_read", &self.rows_read)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn row_stream_is_send() {
        assert_send::<RowStream>();
    }

    /// A row, a row error (row 2), a row, a fatal error saying `fatal_rows_read` rows
    /// were read, and a row after it (`last`) that must never be read.
    fn row_error_then_fatal(
        fatal_rows_read: u64,
        last: i64,
    ) -> Vec<Result<Vec<Value<'static>>, SourceError>> {
        let row_error = SourceError::Value {
            source_name: "s".into(),
            row: 2,
            column: "c".into(),
            column_index: 0,
            type_name: "date".into(),
            reason: "out of range".into(),
        };
        let fatal = SourceError::Connection {
            source_name: "s".into(),
            reason: "gone".into(),
            rows_read: fatal_rows_read,
            source: None,
        };
        vec![
            Ok(vec![Value::Int(1)]),
            Err(row_error),
            Ok(vec![Value::Int(3)]),
            Err(fatal),
            Ok(vec![Value::Int(last)]),
        ]
    }

    #[test]
    fn ends_after_a_fatal_error_but_not_after_a_row_error() {
        let items = row_error_then_fatal(2, 4);
        let mut stream = RowStream::new("s", Columns::new(["c"]), futures::stream::iter(items));
        futures::executor::block_on(async {
            assert!(stream.next().await.unwrap().is_ok());
            assert!(stream.next().await.unwrap().unwrap_err().is_row_error());
            assert!(stream.next().await.unwrap().is_ok());
            assert!(!stream.next().await.unwrap().unwrap_err().is_row_error());
            assert!(stream.next().await.is_none());
            assert!(stream.next().await.is_none());
        });
        assert_eq!(stream.rows_read(), 3);
    }

    #[test]
    fn batches_give_the_rows_errors_and_counts_of_single_rows() {
        let items = row_error_then_fatal(3, 5);
        let mut stream = RowStream::new("s", Columns::new(["c"]), futures::stream::iter(items));
        let mut seen = Vec::new();
        let mut shapes = Vec::new();
        futures::executor::block_on(async {
            while let Some(batch) = stream.next_batch(2).await {
                shapes.push((batch.rows(), batch.ends_with_error()));
                batch.for_each(|row| {
                    seen.push(match row {
                        Ok([Value::Int(n)]) => format!("row {n}"),
                        Ok(_) => "other".to_owned(),
                        Err(e) if e.is_row_error() => "row error".to_owned(),
                        Err(_) => "fatal".to_owned(),
                    })
                });
            }
            assert!(stream.next_batch(2).await.is_none());
        });
        assert_eq!(seen, ["row 1", "row error", "row 3", "fatal"]);
        assert_eq!(shapes, [(2, false), (1, true)]);
        assert_eq!(stream.rows_read(), 3);
    }
}
