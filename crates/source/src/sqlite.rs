//! [`SqliteSource`]: queries a SQLite database file, opened read-only, on a blocking
//! thread that hands rows over through a bounded channel.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use cdp_calls::Timestamp;
use cdp_query::Dialect;
use cdp_rows::{Columns, Date, Value};
use futures::Stream;
use rusqlite::types::ValueRef;
use rusqlite::{InterruptHandle, OpenFlags};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::{RowStream, Source, SourceError, Values};

/// Rows the channel between the SQLite thread and the reader holds when none is set.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 1024;
/// The statement timeout when none is set: 10 minutes.
pub const DEFAULT_SQLITE_STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a query waits for a lock held by a writer when none is set: 5 seconds.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Options for a [`SqliteSource`].
///
/// ```
/// use std::time::Duration;
/// use cdp_source::SqliteOptions;
///
/// let options = SqliteOptions::new()
///     .channel_capacity(256)
///     .statement_timeout(Duration::from_secs(60))
///     .declared_types(false);
/// assert_eq!(options.get_channel_capacity(), 256);
/// ```
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    channel_capacity: usize,
    statement_timeout: Duration,
    busy_timeout: Duration,
    declared_types: bool,
}

impl SqliteOptions {
    /// The defaults: a channel of [`DEFAULT_CHANNEL_CAPACITY`] rows, a statement
    /// timeout of [`DEFAULT_SQLITE_STATEMENT_TIMEOUT`], a busy timeout of
    /// [`DEFAULT_BUSY_TIMEOUT`], declared types on.
    pub fn new() -> SqliteOptions {
        SqliteOptions {
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            statement_timeout: DEFAULT_SQLITE_STATEMENT_TIMEOUT,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            declared_types: true,
        }
    }

    /// How many rows the SQLite thread may read ahead of the reader (at least 1): the
    /// bound on the rows a query holds in memory.
    pub fn channel_capacity(mut self, rows: usize) -> SqliteOptions {
        self.channel_capacity = rows.max(1);
        self
    }

    /// How long one query may run, including the time its rows take to be read; then
    /// it is interrupted and the stream ends with [`SourceError::Timeout`]. Zero means
    /// no limit.
    pub fn statement_timeout(mut self, timeout: Duration) -> SqliteOptions {
        self.statement_timeout = timeout;
        self
    }

    /// How long a query waits when another connection holds a write lock.
    pub fn busy_timeout(mut self, timeout: Duration) -> SqliteOptions {
        self.busy_timeout = timeout;
        self
    }

    /// Whether a column's declared type refines its values (on by default; see the
    /// crate docs, "SQLite values"): `BOOLEAN` columns give booleans, `JSON` columns
    /// JSON, `DATE`/`DATETIME`/`TIMESTAMP` columns dates and timestamps.
    pub fn declared_types(mut self, on: bool) -> SqliteOptions {
        self.declared_types = on;
        self
    }

    /// The channel's capacity in rows.
    pub fn get_channel_capacity(&self) -> usize {
        self.channel_capacity
    }

    /// The statement timeout (zero: none).
    pub fn get_statement_timeout(&self) -> Duration {
        self.statement_timeout
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions::new()
    }
}

/// A SQLite database file as a reverse-ETL source, the embedded default.
///
/// The file is opened read-only (`SQLITE_OPEN_READONLY`, and `PRAGMA query_only` as a
/// second guard), once per query, on a blocking thread
/// ([`tokio::task::spawn_blocking`]); rows cross to the reader through a channel of
/// [`SqliteOptions::channel_capacity`] rows, so memory stays bounded however many rows
/// the query returns. A Tokio runtime is needed to run queries.
///
/// See the crate docs for an example.
pub struct SqliteSource {
    name: Arc<str>,
    path: PathBuf,
    options: SqliteOptions,
}

impl SqliteSource {
    /// A source called `name` for the SQLite database at `path`. The file is opened
    /// read-only once now to check it is there and is a database: a missing file or
    /// another kind of file is a [`SourceError::Connect`] error. This does blocking
    /// file I/O.
    pub fn open(
        name: impl Into<String>,
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<SqliteSource, SourceError> {
        let name: String = name.into();
        if name.is_empty() {
            return Err(SourceError::Config {
                source_name: name,
                reason: "a source needs a name".to_owned(),
            });
        }
        let source = SqliteSource { name: name.into(), path: path.as_ref().to_owned(), options };
        let connection = source.connect()?;
        connection
            .query_row("PRAGMA schema_version", [], |row| row.get::<_, i64>(0))
            .map_err(|e| source.connect_error(e.to_string(), Some(Box::new(e))))?;
        Ok(source)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options queries run with.
    pub fn options(&self) -> &SqliteOptions {
        &self.options
    }

    /// Opens the file read-only.
    fn connect(&self) -> Result<rusqlite::Connection, SourceError> {
        match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.connect_error("no such file".to_owned(), Some(Box::new(e))));
            }
            Err(e) => return Err(self.connect_error(e.to_string(), Some(Box::new(e)))),
            Ok(meta) if meta.is_dir() => return Err(self.connect_error("it is a directory".to_owned(), None)),
            Ok(_) => {}
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = rusqlite::Connection::open_with_flags(&self.path, flags)
            .map_err(|e| self.connect_error(e.to_string(), Some(Box::new(e))))?;
        connection
            .busy_timeout(self.options.busy_timeout)
            .and_then(|()| connection.pragma_update(None, "query_only", true))
            .map_err(|e| self.connect_error(e.to_string(), Some(Box::new(e))))?;
        Ok(connection)
    }

    fn connect_error(&self, reason: String, source: Option<crate::error::BoxError>) -> SourceError {
        SourceError::Connect {
            source_name: self.name.to_string(),
            target: self.path.display().to_string(),
            reason,
            source,
        }
    }
}

#[async_trait]
impl Source for SqliteSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn dialect(&self) -> Dialect {
        Dialect::SQLite
    }

    async fn query(&self, sql: &str) -> Result<RowStream, SourceError> {
        let (columns, rows) = self.start(sql).await?;
        Ok(RowStream::new(self.name.clone(), columns, rows))
    }

    /// Prepares `sql` on a read-only connection of its own (on a blocking thread) and
    /// returns the statement's column names; nothing is stepped.
    async fn columns(&self, sql: &str) -> Result<Vec<String>, SourceError> {
        let source = self.same();
        let sql = sql.to_owned();
        tokio::task::spawn_blocking(move || source.prepared_columns(&sql))
            .await
            .map_err(|_| worker_stopped(&self.name, 0))?
    }
}

impl SqliteSource {
    /// The same source, for a blocking thread.
    fn same(&self) -> SqliteSource {
        SqliteSource { name: self.name.clone(), path: self.path.clone(), options: self.options.clone() }
    }

    /// The column names of `sql`, prepared but not stepped. Blocking.
    fn prepared_columns(&self, sql: &str) -> Result<Vec<String>, SourceError> {
        let connection = self.connect()?;
        let statement = connection.prepare(sql).map_err(|e| SourceError::Query {
            source_name: self.name.to_string(),
            code: None,
            reason: e.to_string(),
            rows_read: 0,
            query_id: None,
            source: Some(Box::new(e)),
        })?;
        Ok(statement.column_names().map(str::to_owned).collect())
    }

    /// Starts the worker for `sql` and waits until the query is prepared.
    async fn start(&self, sql: &str) -> Result<(Columns, SqliteRows), SourceError> {
        let (header_tx, header_rx) = oneshot::channel();
        let (row_tx, row_rx) = mpsc::channel(self.options.channel_capacity);
        let timed_out = Arc::new(AtomicBool::new(false));
        let worker = Worker { source: self.same(), sql: sql.to_owned(), timed_out: timed_out.clone() };
        tokio::task::spawn_blocking(move || worker.run(header_tx, row_tx));
        let header = header_rx.await.map_err(|_| worker_stopped(&self.name, 0))??;
        let interrupt = Arc::new(header.interrupt);
        let timeout = self.options.statement_timeout;
        let timer = (!timeout.is_zero()).then(|| {
            let interrupt = interrupt.clone();
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                timed_out.store(true, Ordering::SeqCst);
                interrupt.interrupt();
            })
        });
        let rows = SqliteRows {
            name: self.name.clone(),
            receiver: row_rx,
            interrupt,
            timer,
            rows_read: 0,
            done: false,
        };
        Ok((header.columns, rows))
    }
}

impl fmt::Debug for SqliteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteSource")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("options", &self.options)
            .finish()
    }
}

impl fmt::Display for SqliteSource {
    /// `SQLite source "demo" (/path/to/demo.db)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SQLite source `{}` ({})", self.name, self.path.display())
    }
}

/// The error when the worker thread went away without saying why.
fn worker_stopped(name: &str, rows_read: u64) -> SourceError {
    SourceError::Connection {
        source_name: name.to_owned(),
        reason: "the SQLite worker thread stopped before the end of the rows".to_owned(),
        rows_read,
        source: None,
    }
}

/// What the worker sends once the query is prepared.
struct Header {
    columns: Columns,
    interrupt: InterruptHandle,
}

/// What the worker sends for each row, then at the end.
enum Message {
    /// A row, or the error of one of its values.
    Row(Result<Values, SourceError>),
    /// The query failed; nothing follows.
    Failed(SourceError),
    /// The last row was sent.
    Done,
}

/// How a column's declared type refines its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Declared {
    /// Values as stored.
    Plain,
    /// `BOOL…`: integers 0 and 1 are booleans.
    Boolean,
    /// `JSON`, `JSONB`: text is JSON.
    Json,
    /// `…DATE…`, `…TIMESTAMP…`: text in ISO form is a date or timestamp.
    Temporal,
}

impl Declared {
    fn of(declared_type: Option<&str>) -> Declared {
        let Some(declared) = declared_type else { return Declared::Plain };
        let declared = declared.trim().to_ascii_uppercase();
        if declared.contains("BOOL") {
            Declared::Boolean
        } else if declared == "JSON" || declared == "JSONB" {
            Declared::Json
        } else if declared.contains("DATE") || declared.contains("TIMESTAMP") {
            Declared::Temporal
        } else {
            Declared::Plain
        }
    }
}

/// A prepared query's columns, as the worker converts them.
struct Described {
    columns: Columns,
    declared: Vec<Declared>,
    declared_types: Vec<Option<String>>,
}

/// The blocking side of one query.
struct Worker {
    source: SqliteSource,
    sql: String,
    timed_out: Arc<AtomicBool>,
}

impl Worker {
    fn run(self, header_tx: oneshot::Sender<Result<Header, SourceError>>, row_tx: mpsc::Sender<Message>) {
        let connection = match self.source.connect() {
            Ok(c) => c,
            Err(e) => {
                let _ = header_tx.send(Err(e));
                return;
            }
        };
        let mut statement = match connection.prepare(&self.sql) {
            Ok(s) => s,
            Err(e) => {
                let _ = header_tx.send(Err(self.query_error(e, 0)));
                return;
            }
        };
        let columns = Columns::new(statement.column_names());
        let declared_types: Vec<Option<String>> =
            statement.columns().map(|c| c.decl_type().map(str::to_owned)).collect();
        let declared: Vec<Declared> = if self.source.options.declared_types {
            declared_types.iter().map(|d| Declared::of(d.as_deref())).collect()
        } else {
            vec![Declared::Plain; columns.len()]
        };
        let described = Described { columns: columns.clone(), declared, declared_types };
        let header = Header { columns: columns.clone(), interrupt: connection.get_interrupt_handle() };
        if header_tx.send(Ok(header)).is_err() {
            return;
        }
        let mut rows = match statement.query([]) {
            Ok(rows) => rows,
            Err(e) => {
                let _ = row_tx.blocking_send(Message::Failed(self.query_error(e, 0)));
                return;
            }
        };
        let mut rows_read = 0_u64;
        loop {
            let message = match rows.next() {
                Ok(Some(row)) => {
                    rows_read += 1;
                    Message::Row(self.convert(row, rows_read, &described))
                }
                Ok(None) => Message::Done,
                Err(e) => Message::Failed(self.query_error(e, rows_read)),
            };
            let last = !matches!(message, Message::Row(_));
            // A closed channel means the reader dropped the stream: stop reading.
            if row_tx.blocking_send(message).is_err() || last {
                return;
            }
        }
    }

    /// One row's values.
    fn convert(
        &self,
        row: &rusqlite::Row<'_>,
        row_number: u64,
        described: &Described,
    ) -> Result<Values, SourceError> {
        let mut values = Vec::with_capacity(described.declared.len());
        for (index, declared) in described.declared.iter().enumerate() {
            let value =
                row.get_ref(index).map_err(|e| e.to_string()).and_then(|v| convert_value(v, *declared));
            match value {
                Ok(value) => values.push(value),
                Err(reason) => {
                    return Err(SourceError::Value {
                        source_name: self.source.name.to_string(),
                        row: row_number,
                        column: described.columns.name(index).unwrap_or_default().to_owned(),
                        column_index: index,
                        type_name: described
                            .declared_types
                            .get(index)
                            .cloned()
                            .flatten()
                            .unwrap_or_else(|| "no declared type".to_owned()),
                        reason,
                    });
                }
            }
        }
        Ok(values)
    }

    fn query_error(&self, e: rusqlite::Error, rows_read: u64) -> SourceError {
        let source_name = self.source.name.to_string();
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
            && self.timed_out.load(Ordering::SeqCst)
        {
            return SourceError::Timeout {
                source_name,
                timeout: self.source.options.statement_timeout,
                rows_read,
                source: Some(Box::new(e)),
            };
        }
        SourceError::Query {
            source_name,
            code: None,
            reason: e.to_string(),
            rows_read,
            query_id: None,
            source: Some(Box::new(e)),
        }
    }
}

/// One SQLite value, by its storage class and the column's declared type.
fn convert_value(value: ValueRef<'_>, declared: Declared) -> Result<Value<'static>, String> {
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => match (declared, i) {
            (Declared::Boolean, 0) => Value::Bool(false),
            (Declared::Boolean, 1) => Value::Bool(true),
            _ => Value::Int(i),
        },
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Blob(b) => Value::Bytes(Cow::Owned(b.to_vec())),
        ValueRef::Text(bytes) => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| format!("text is not valid UTF-8 (at byte {})", e.valid_up_to()))?;
            match declared {
                Declared::Json => Value::Json(Cow::Owned(text.to_owned())),
                Declared::Temporal => {
                    temporal(text).unwrap_or_else(|| Value::Text(Cow::Owned(text.to_owned())))
                }
                Declared::Plain | Declared::Boolean => Value::Text(Cow::Owned(text.to_owned())),
            }
        }
    })
}

/// Text in a `DATE`/`DATETIME`/`TIMESTAMP` column: `YYYY-MM-DD` is a date; an RFC 3339
/// timestamp with `Z` or an offset is a timestamp; the same without a zone
/// (`2026-11-22 10:00:00`, SQLite's `datetime()`) is a timestamp without zone.
/// Anything else stays text.
fn temporal(text: &str) -> Option<Value<'static>> {
    let t = text.trim();
    if t.len() == 10 {
        let (y, m, d) = (t.get(..4)?, t.get(5..7)?, t.get(8..)?);
        if t.as_bytes()[4] != b'-' || t.as_bytes()[7] != b'-' {
            return None;
        }
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !(all_digits(y) && all_digits(m) && all_digits(d)) {
            return None;
        }
        return Date::from_ymd(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?).map(Value::Date);
    }
    if t.len() < 19 {
        return None;
    }
    if let Ok(ts) = Timestamp::parse_rfc3339(t) {
        return Some(Value::Timestamp(ts));
    }
    Timestamp::parse_rfc3339(&format!("{t}Z")).ok().map(Value::TimestampWithoutZone)
}

/// The reading side of one query.
struct SqliteRows {
    name: Arc<str>,
    receiver: mpsc::Receiver<Message>,
    interrupt: Arc<InterruptHandle>,
    timer: Option<JoinHandle<()>>,
    rows_read: u64,
    done: bool,
}

impl SqliteRows {
    fn finish(&mut self) {
        self.done = true;
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }
}

impl Stream for SqliteRows {
    type Item = Result<Values, SourceError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match std::task::ready!(this.receiver.poll_recv(cx)) {
            Some(Message::Row(row)) => {
                this.rows_read += 1;
                Poll::Ready(Some(row))
            }
            Some(Message::Failed(error)) => {
                this.finish();
                Poll::Ready(Some(Err(error)))
            }
            Some(Message::Done) => {
                this.finish();
                Poll::Ready(None)
            }
            None => {
                this.finish();
                Poll::Ready(Some(Err(worker_stopped(&this.name, this.rows_read))))
            }
        }
    }
}

impl Drop for SqliteRows {
    fn drop(&mut self) {
        if !self.done {
            // Stops a query still running on the worker thread.
            self.interrupt.interrupt();
        }
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_worker_reads_no_further_ahead_than_the_channel_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bounded.db");
        rusqlite::Connection::open(&path).unwrap().execute_batch("CREATE TABLE t (x int)").unwrap();
        let source = SqliteSource::open("bounded", &path, SqliteOptions::new().channel_capacity(8)).unwrap();
        let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT x FROM c";
        let (columns, mut rows) = source.start(sql).await.unwrap();
        assert_eq!(columns.names(), ["x"]);
        // Nothing is read: the worker fills the channel, then waits.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(rows.receiver.len(), 8);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(rows.receiver.len(), 8);
        // Reading frees room for exactly as many rows as were taken.
        let mut sum = 0_i64;
        let mut count = 0_i64;
        while let Some(row) = futures::StreamExt::next(&mut rows).await {
            let Value::Int(x) = row.unwrap()[0] else { panic!("an integer") };
            sum += x;
            count += 1;
            assert!(rows.receiver.len() <= 8);
        }
        assert_eq!((count, sum), (200_000, 20_000_100_000));
    }

    #[test]
    fn declared_types() {
        assert_eq!(Declared::of(Some("boolean")), Declared::Boolean);
        assert_eq!(Declared::of(Some("BOOL")), Declared::Boolean);
        assert_eq!(Declared::of(Some("json")), Declared::Json);
        assert_eq!(Declared::of(Some("DATETIME")), Declared::Temporal);
        assert_eq!(Declared::of(Some("timestamp with time zone")), Declared::Temporal);
        assert_eq!(Declared::of(Some("date")), Declared::Temporal);
        assert_eq!(Declared::of(Some("TEXT")), Declared::Plain);
        assert_eq!(Declared::of(Some("jsonish")), Declared::Plain);
        assert_eq!(Declared::of(None), Declared::Plain);
    }

    #[test]
    fn temporal_text() {
        let ts = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
        assert_eq!(temporal("2026-11-22"), Some(Value::Date(Date::from_ymd(2026, 11, 22).unwrap())));
        assert_eq!(
            temporal("2026-11-22 10:00:00"),
            Some(Value::TimestampWithoutZone(ts("2026-11-22T10:00:00Z")))
        );
        assert_eq!(
            temporal("2026-11-22T10:00:00.250+01:00"),
            Some(Value::Timestamp(ts("2026-11-22T09:00:00.250Z")))
        );
        assert_eq!(temporal("2026-02-30"), None);
        assert_eq!(temporal("yesterday"), None);
        assert_eq!(temporal("2026-11-22 10:00"), None);
        assert_eq!(temporal("２０２６-11-22"), None);
    }
}
