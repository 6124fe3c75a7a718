//! The SQLite source: storage classes and declared types, read-only, missing files,
//! timeouts, bad text.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use cdp_calls::Timestamp;
use cdp_rows::{Date, Value};
use cdp_source::{Dialect, Source, SourceError, SqliteOptions, SqliteSource};
use common::{read_all, read_ok};

/// A database file written with rusqlite directly.
fn database(dir: &Path, sql: &str) -> std::path::PathBuf {
    let path = dir.join("test.db");
    rusqlite::Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    path
}

fn ts(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

#[tokio::test]
async fn every_storage_class_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, anything);
         INSERT INTO t VALUES (1, 9223372036854775807, 0.1, 'héllo ✓', x'00ff10', 42);
         INSERT INTO t VALUES (2, -9223372036854775808, -1e308, '', x'', 'text');
         INSERT INTO t VALUES (3, NULL, NULL, NULL, NULL, 2.5);
         INSERT INTO t VALUES (4, 0, 9e999, 'x', NULL, x'01');",
    );
    let source = SqliteSource::open("test-sqlite", &path, SqliteOptions::new()).unwrap();
    assert_eq!(source.name(), "test-sqlite");
    assert_eq!(source.dialect(), Dialect::SQLite);
    let mut stream =
        source.query("SELECT i, r, s, b, anything, i + 1 AS expr FROM t ORDER BY id").await.unwrap();
    assert_eq!(stream.columns().names(), ["i", "r", "s", "b", "anything", "expr"]);
    let rows = read_ok(&mut stream).await;
    assert_eq!(
        rows,
        vec![
            vec![
                Value::Int(i64::MAX),
                Value::Float(0.1),
                Value::from("héllo ✓"),
                Value::Bytes(vec![0, 255, 16].into()),
                Value::Int(42),
                // i64::MAX + 1 overflows into a REAL in SQLite.
                Value::Float(9.223372036854776e18),
            ],
            vec![
                Value::Int(i64::MIN),
                Value::Float(-1e308),
                Value::from(""),
                Value::Bytes(vec![].into()),
                Value::from("text"),
                Value::Int(i64::MIN + 1),
            ],
            vec![Value::Null, Value::Null, Value::Null, Value::Null, Value::Float(2.5), Value::Null],
            vec![
                Value::Int(0),
                Value::Float(f64::INFINITY),
                Value::from("x"),
                Value::Null,
                Value::Bytes(vec![1].into()),
                Value::Int(1),
            ],
        ]
    );
}

#[tokio::test]
async fn declared_types_refine_values_and_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE t (id INTEGER, active BOOLEAN, doc JSON, day DATE, at DATETIME, stamp TIMESTAMP);
         INSERT INTO t VALUES (1, 1, '{\"a\": [1, 2]}', '2026-11-22', '2026-11-22 10:00:00', '2026-11-22T10:00:00.250+01:00');
         INSERT INTO t VALUES (2, 0, '[1, 2]', '2024-02-29', '2026-11-22T10:00:00.123456', '2026-11-22 10:00:00Z');
         INSERT INTO t VALUES (3, 2, 'not json', 'yesterday', 1795341600, 12.5);
         INSERT INTO t VALUES (4, NULL, NULL, '2025-02-29', '2026-11-22 10:00', NULL);",
    );
    let source = SqliteSource::open("test-sqlite", &path, SqliteOptions::new()).unwrap();
    let sql = "SELECT active, doc, day, at, stamp, active AS a2 FROM t ORDER BY id";
    let mut stream = source.query(sql).await.unwrap();
    let rows = read_ok(&mut stream).await;
    let date = |y, m, d| Value::Date(Date::from_ymd(y, m, d).unwrap());
    assert_eq!(
        rows,
        vec![
            vec![
                Value::Bool(true),
                Value::json("{\"a\": [1, 2]}"),
                date(2026, 11, 22),
                Value::TimestampWithoutZone(ts("2026-11-22T10:00:00Z")),
                Value::Timestamp(ts("2026-11-22T09:00:00.250Z")),
                Value::Bool(true),
            ],
            vec![
                Value::Bool(false),
                Value::json("[1, 2]"),
                date(2024, 2, 29),
                Value::TimestampWithoutZone(ts("2026-11-22T10:00:00.123456Z")),
                Value::Timestamp(ts("2026-11-22T10:00:00Z")),
                Value::Bool(false),
            ],
            // Values that do not fit the declared type stay as stored.
            vec![
                Value::Int(2),
                Value::json("not json"),
                Value::from("yesterday"),
                Value::Int(1_795_341_600),
                Value::Float(12.5),
                Value::Int(2),
            ],
            vec![
                Value::Null,
                Value::Null,
                Value::from("2025-02-29"),
                Value::from("2026-11-22 10:00"),
                Value::Null,
                Value::Null
            ],
        ]
    );

    // Expressions have no declared type; and the rule can be turned off.
    let mut stream =
        source.query("SELECT active + 0 AS n, day || '' AS d FROM t WHERE id = 1").await.unwrap();
    assert_eq!(read_ok(&mut stream).await, vec![vec![Value::Int(1), Value::from("2026-11-22")]]);
    let plain = SqliteSource::open("test-sqlite", &path, SqliteOptions::new().declared_types(false)).unwrap();
    let mut stream = plain.query(sql).await.unwrap();
    let rows = read_ok(&mut stream).await;
    assert_eq!(
        rows[0],
        vec![
            Value::Int(1),
            Value::from("{\"a\": [1, 2]}"),
            Value::from("2026-11-22"),
            Value::from("2026-11-22 10:00:00"),
            Value::from("2026-11-22T10:00:00.250+01:00"),
            Value::Int(1),
        ]
    );
}

#[tokio::test]
async fn the_file_is_opened_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);");
    let source = SqliteSource::open("test-sqlite", &path, SqliteOptions::new()).unwrap();
    for sql in [
        "INSERT INTO t VALUES (2) RETURNING x",
        "DELETE FROM t",
        "CREATE TABLE u (x INTEGER)",
        "UPDATE t SET x = 3",
        "DROP TABLE t",
        "PRAGMA user_version = 7",
    ] {
        let error = match source.query(sql).await {
            Err(e) => e,
            Ok(mut stream) => {
                let rows = read_all(&mut stream).await;
                assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
                rows.into_iter().next().unwrap().unwrap_err()
            }
        };
        assert!(matches!(error, SourceError::Query { .. }), "{sql}: {error:?}");
        let text = error.to_string();
        assert!(text.starts_with("source `test-sqlite`: query failed: "), "{text}");
        assert!(text.contains("readonly database"), "{sql}: {text}");
    }
    // Read back independently: nothing changed.
    let check = rusqlite::Connection::open(&path).unwrap();
    let (count, sum, version): (i64, i64, i64) = check
        .query_row(
            "SELECT count(*), sum(x), (SELECT user_version FROM pragma_user_version) FROM t",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((count, sum, version), (1, 1, 0));
}

#[tokio::test]
async fn a_missing_file_is_a_clear_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.db");
    let error = SqliteSource::open("test-sqlite", &path, SqliteOptions::new()).unwrap_err();
    assert!(matches!(error, SourceError::Connect { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("source `test-sqlite`: cannot connect to {}: no such file", path.display())
    );
    assert!(!path.exists());

    // A file that is not a database.
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are not the tables you are looking for, not at all, not even one").unwrap();
    let error = SqliteSource::open("test-sqlite", &path, SqliteOptions::new()).unwrap_err();
    assert!(error.to_string().contains("file is not a database"), "{error}");

    // A file removed after the source was built.
    let path = database(dir.path(), "CREATE TABLE t (x INTEGER)");
    let source = SqliteSource::open("test-sqlite", &path, SqliteOptions::new()).unwrap();
    std::fs::remove_file(&path).unwrap();
    let error = source.query("SELECT 1").await.unwrap_err();
    assert!(error.to_string().ends_with(": no such file"), "{error}");
}

#[tokio::test]
async fn text_that_is_not_utf8_is_a_row_error_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE t (id INTEGER, name TEXT);
         INSERT INTO t VALUES (1, 'ok'), (2, CAST(x'41ff42' AS TEXT)), (3, 'fine');",
    );
    let source = SqliteSource::open("test-sqlite", &path, SqliteOptions::new()).unwrap();
    let mut stream = source.query("SELECT id, name FROM t ORDER BY id").await.unwrap();
    let rows = read_all(&mut stream).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].as_ref().unwrap(), &vec![Value::Int(1), Value::from("ok")]);
    let error = rows[1].as_ref().unwrap_err();
    assert!(error.is_row_error());
    assert_eq!(
        error.to_string(),
        "source `test-sqlite`: row 2, column `name` (TEXT): text is not valid UTF-8 (at byte 1)"
    );
    assert_eq!(rows[2].as_ref().unwrap(), &vec![Value::Int(3), Value::from("fine")]);
}

#[tokio::test]
async fn the_statement_timeout_interrupts_a_slow_query() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), "CREATE TABLE t (x INTEGER)");
    let options = SqliteOptions::new().statement_timeout(Duration::from_millis(200));
    let source = SqliteSource::open("test-sqlite", &path, options).unwrap();
    let started = Instant::now();
    let mut stream = source
        .query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000000) SELECT count(*) FROM c")
        .await
        .unwrap();
    let error = stream.next().await.expect("an error").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(matches!(error, SourceError::Timeout { rows_read: 0, .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "source `test-sqlite`: the query was cancelled after the statement timeout of 200ms"
    );
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn errors_before_rows_come_from_query() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), "CREATE TABLE t (x INTEGER)");
    let source = SqliteSource::open("test-sqlite", &path, SqliteOptions::new()).unwrap();
    let error = source.query("SELECT * FROM missing").await.unwrap_err();
    assert_eq!(error.to_string(), "source `test-sqlite`: query failed: no such table: missing");
    let error = source.query("SELECT 1; SELECT 2").await.unwrap_err();
    assert!(error.to_string().contains("Multiple statements provided"), "{error}");
    let error = source.query("SELECT ?1").await;
    match error {
        Err(e) => assert!(matches!(e, SourceError::Query { .. })),
        Ok(mut stream) => assert!(matches!(stream.next().await, Some(Err(SourceError::Query { .. })))),
    }
}

#[test]
fn debug_and_display_name_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), "CREATE TABLE t (x INTEGER)");
    let source = SqliteSource::open("demo", &path, SqliteOptions::new()).unwrap();
    assert_eq!(source.to_string(), format!("SQLite source `demo` ({})", path.display()));
    assert!(format!("{source:?}").starts_with("SqliteSource { name: \"demo\""));
}

#[tokio::test]
async fn columns_come_from_the_prepared_statement_without_reading_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(
        dir.path(),
        "CREATE TABLE people (id INTEGER, email TEXT);
         INSERT INTO people VALUES (1, 'ada@example.com'), (2, 'bob@example.com');",
    );
    let source = SqliteSource::open("test-sqlite", &path, SqliteOptions::new()).unwrap();
    // Reading the first row of this query fails (an integer overflow): the columns
    // come without a row being read, spelled as the query gives them.
    let sql = "SELECT id AS userId, email AS \"USERID\", abs(-9223372036854775808) AS \"a.b\" FROM people";
    let mut stream = source.query(sql).await.unwrap();
    let first = stream.next().await.expect("an error").unwrap_err();
    assert!(first.to_string().contains("integer overflow"), "{first}");
    assert_eq!(source.columns(sql).await.unwrap(), ["userId", "USERID", "a.b"]);
    // Through the trait object too, as a runner holds it.
    let shared: std::sync::Arc<dyn Source> = std::sync::Arc::new(source);
    assert_eq!(shared.columns("SELECT 1 AS n").await.unwrap(), ["n"]);
    // An unknown table is the query's error, naming the source.
    let error = shared.columns("SELECT x FROM nowhere").await.unwrap_err();
    assert!(matches!(error, SourceError::Query { .. }), "{error:?}");
    assert_eq!(error.to_string(), "source `test-sqlite`: query failed: no such table: nowhere");
}
