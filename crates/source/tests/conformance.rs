//! One conformance suite run against every source: what the runner relies on, with
//! backend differences as parameters, never skips. PostgreSQL needs the test server,
//! Snowflake (with the `snowflake` feature) the Snowflake test front, MySQL (with the
//! `mysql` feature) the MariaDB test server (`bash .ci/test` starts all three).

mod common;

use std::sync::Arc;

use cdp_rows::Value;
use cdp_source::{Dialect, PostgresOptions, Source, SourceError, SqliteOptions, SqliteSource};
use common::{read_all, read_ok};

/// A source under test and what differs between backends.
struct Backend {
    source: Arc<dyn Source>,
    dialect: Dialect,
    /// Unquoted column names come back upper case (Snowflake), not as written.
    upper_case_names: bool,
    /// The source itself refuses writes (a read-only transaction). Snowflake has none:
    /// there a role with `SELECT` only keeps writes out (the source's docs), and the
    /// runner's query check refuses them before any source runs.
    refuses_writes: bool,
    /// Rows of a result far larger than what the test reads before dropping it (the
    /// Snowflake front writes out every row of a result before answering, so less).
    big: u64,
    /// Keeps the SQLite file alive.
    _dir: Option<tempfile::TempDir>,
    /// How the backend counts from 1 to n (`counting` unless it needs another way).
    counting: fn(u64) -> String,
}

impl Backend {
    /// The names `SELECT 1 AS a, 'x' AS "B", NULL AS c, 'é' AS "d.e"` gives its columns.
    fn names(&self) -> [&'static str; 4] {
        if self.upper_case_names { ["A", "B", "C", "d.e"] } else { ["a", "B", "c", "d.e"] }
    }
}

async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conformance.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE conformance_t (x INTEGER)")
        .unwrap();
    #[allow(unused_mut)]
    let mut backends = vec![
        Backend {
            source: Arc::new(SqliteSource::open("conformance", &path, SqliteOptions::new()).unwrap()),
            dialect: Dialect::SQLite,
            upper_case_names: false,
            refuses_writes: true,
            big: 10_000_000,
            _dir: Some(dir),
            counting,
        },
        Backend {
            source: Arc::new(
                cdp_source::PostgresSource::new(
                    "conformance",
                    &common::postgres_url(),
                    PostgresOptions::new(),
                )
                .unwrap(),
            ),
            dialect: Dialect::PostgreSQL,
            upper_case_names: false,
            refuses_writes: true,
            big: 10_000_000,
            _dir: None,
            counting,
        },
    ];
    #[cfg(feature = "snowflake")]
    {
        let user = common::snowflake::new_user("CDP_CONFORMANCE").await;
        let options = common::snowflake::options(&user);
        backends.push(Backend {
            source: Arc::new(cdp_source::SnowflakeSource::new("conformance", options).unwrap()),
            dialect: Dialect::Snowflake,
            upper_case_names: true,
            refuses_writes: false,
            big: 100_000,
            _dir: None,
            counting,
        });
    }
    #[cfg(feature = "mysql")]
    {
        common::mysql::exec("CREATE TABLE IF NOT EXISTS conformance_t (x INTEGER)").await;
        backends.push(Backend {
            source: Arc::new(
                cdp_source::MysqlSource::new(
                    "conformance",
                    &common::mysql::mysql_url(),
                    cdp_source::MysqlOptions::new().password(common::mysql::mysql_password()),
                )
                .unwrap(),
            ),
            dialect: Dialect::MySQL,
            upper_case_names: false,
            refuses_writes: true,
            big: 10_000_000,
            _dir: None,
            counting: mariadb_counting,
        });
    }
    backends
}

/// `SELECT x FROM` 1..=n, in both dialects.
fn counting(n: u64) -> String {
    format!("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) SELECT x FROM c")
}

/// `SELECT x FROM` 1..=n on MariaDB, from its sequence engine: a recursive `WITH` stops
/// at `max_recursive_iterations` (1,000 by default) and is computed whole before its
/// first row, where `seq_1_to_n` streams (`seq` is `BIGINT UNSIGNED`, hence the cast).
#[cfg(feature = "mysql")]
fn mariadb_counting(n: u64) -> String {
    format!("SELECT CAST(seq AS SIGNED) AS x FROM seq_1_to_{n}")
}

#[tokio::test]
async fn names_dialects_and_check() {
    for backend in backends().await {
        assert_eq!(backend.source.name(), "conformance");
        assert_eq!(backend.source.dialect(), backend.dialect);
        backend.source.check().await.unwrap();
    }
}

#[tokio::test]
async fn columns_come_first_in_order_and_then_rows() {
    for backend in backends().await {
        let mut stream =
            backend.source.query("SELECT 1 AS a, 'x' AS \"B\", NULL AS c, 'é' AS \"d.e\"").await.unwrap();
        assert_eq!(stream.columns().names(), backend.names(), "{:?}", backend.dialect);
        assert_eq!(stream.source_name(), "conformance");
        let rows = read_ok(&mut stream).await;
        assert_eq!(rows, vec![vec![Value::Int(1), Value::from("x"), Value::Null, Value::from("é")]]);
        assert_eq!(stream.rows_read(), 1);
        assert!(stream.next().await.is_none(), "the stream stays ended");
    }
}

#[tokio::test]
async fn an_empty_result_still_has_its_columns() {
    for backend in backends().await {
        let mut stream = backend.source.query("SELECT 1 AS a, 2 AS b WHERE 1 = 0").await.unwrap();
        let names = if backend.upper_case_names { ["A", "B"] } else { ["a", "b"] };
        assert_eq!(stream.columns().names(), names, "{:?}", backend.dialect);
        assert!(read_all(&mut stream).await.is_empty());
    }
}

#[tokio::test]
async fn many_rows_stream_in_order() {
    for backend in backends().await {
        let mut stream = backend.source.query(&(backend.counting)(100_000)).await.unwrap();
        let mut expected = 1;
        while let Some(row) = stream.next().await {
            assert_eq!(row.unwrap(), vec![Value::Int(expected)]);
            expected += 1;
        }
        assert_eq!((expected, stream.rows_read()), (100_001, 100_000));
    }
}

#[tokio::test]
async fn syntax_errors_and_writes_are_query_errors_naming_the_source() {
    for backend in backends().await {
        let error = backend.source.query("SELEC 1").await.unwrap_err();
        assert!(matches!(error, SourceError::Query { rows_read: 0, .. }), "{error:?}");
        assert_eq!(error.source_name(), "conformance");
        assert!(error.to_string().starts_with("source `conformance`: query failed: "), "{error}");

        let writes: &[&str] = if backend.refuses_writes {
            &["INSERT INTO conformance_t VALUES (1)", "CREATE TABLE conformance_u (x INTEGER)"]
        } else {
            &[]
        };
        for sql in writes {
            let error = match backend.source.query(sql).await {
                Err(e) => e,
                Ok(mut stream) => stream.next().await.expect("an error").unwrap_err(),
            };
            assert!(matches!(error, SourceError::Query { .. }), "{:?} {sql}: {error:?}", backend.dialect);
            assert!(!error.is_row_error());
        }

        // (Snowflake refuses several statements while MULTI_STATEMENT_COUNT is 1, its
        // default; the test front fails them too, in its own words.)
        let error = backend.source.query("SELECT 1; SELECT 2").await.unwrap_err();
        assert!(matches!(error, SourceError::Query { .. }), "{:?}: {error:?}", backend.dialect);
    }
}

#[tokio::test]
async fn a_dropped_stream_leaves_the_source_usable() {
    for backend in backends().await {
        let mut stream = backend.source.query(&(backend.counting)(backend.big)).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), vec![Value::Int(1)]);
        drop(stream);
        let mut stream = backend.source.query(&(backend.counting)(3)).await.unwrap();
        assert_eq!(read_ok(&mut stream).await.len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_run_concurrently_from_spawned_tasks() {
    for backend in backends().await {
        let tasks: Vec<_> = (1..=4_u64)
            .map(|i| {
                let source = backend.source.clone();
                let sql = (backend.counting)(1000 * i);
                tokio::spawn(async move {
                    let mut stream = source.query(&sql).await?;
                    let mut n = 0;
                    while let Some(row) = stream.next().await {
                        row?;
                        n += 1;
                    }
                    Ok::<_, SourceError>(n)
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().unwrap(), 1000 * (i as u64 + 1));
        }
    }
}
