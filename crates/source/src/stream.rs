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
    rows: BoxedRows,
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
            rows: Box::pin(rows),
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
}

impl Stream for RowStream {
    type Item = Result<Values, SourceError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let item = std::task::ready!(this.rows.as_mut().poll_next(cx));
        match &item {
            None => this.done = true,
            Some(Ok(_)) => this.rows_read += 1,
            Some(Err(e)) if e.is_row_error() => this.rows_read += 1,
            Some(Err(_)) => this.done = true,
        }
        Poll::Ready(item)
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

    #[test]
    fn ends_after_a_fatal_error_but_not_after_a_row_error() {
        let value_error = || SourceError::Value {
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
            rows_read: 2,
            source: None,
        };
        let items = vec![
            Ok(vec![Value::Int(1)]),
            Err(value_error()),
            Ok(vec![Value::Int(3)]),
            Err(fatal),
            Ok(vec![Value::Int(4)]),
        ];
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
}
