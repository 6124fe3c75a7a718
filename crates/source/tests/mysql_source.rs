//! The MySQL source against a real server (the MariaDB test server that `bash .ci/test`
//! starts; `CDP_TEST_MYSQL_URL` and `CDP_TEST_MYSQL_PASSWORD`): the session settings,
//! the read-only transaction, the statement timeout, a slow reader past the server's
//! `net_write_timeout`, errors that name the source and keep the server's code, and
//! cancelling by dropping the stream.
#![cfg(feature = "mysql")]

mod common;

use std::time::{Duration, Instant};

use cdp_rows::Value;
use cdp_source::{CheckStep, Dialect, MysqlOptions, MysqlSource, Source, SourceError};
use common::mysql::{admin, exec, mysql_password, mysql_source, mysql_url};
use common::{read_all, read_ok};
use futures::StreamExt as _;
use mysql_async::prelude::Queryable;

/// Runs `sql` on `source` and returns the error it ends with, from `query` or from
/// the stream (with no row before it).
async fn query_error(source: &MysqlSource, sql: &str) -> SourceError {
    match source.query(sql).await {
        Err(e) => e,
        Ok(mut stream) => {
            let rows = read_all(&mut stream).await;
            assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
            rows.into_iter().next().unwrap().unwrap_err()
        }
    }
}

/// Waits up to 10 seconds for `sql` (on an admin connection) to return a count of 0.
async fn eventually_none(sql: &str) -> bool {
    let mut admin = admin().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let count: Option<i64> = admin.query_first(sql).await.unwrap();
        if count == Some(0) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn queries_run_read_only_in_utc_under_the_timeouts() {
    let source = mysql_source(MysqlOptions::new().statement_timeout(Duration::from_secs(90)));
    assert_eq!((source.name(), source.dialect()), ("test-mysql", Dialect::MySQL));
    source.check().await.unwrap();
    let mut stream = source
        .query(
            "SELECT @@session.time_zone AS tz, @@session.max_statement_time AS st, \
             @@session.net_write_timeout AS nwt, @@session.tx_read_only AS ro, \
             @@in_transaction AS in_tx",
        )
        .await
        .unwrap();
    assert_eq!(stream.columns().names(), ["tz", "st", "nwt", "ro", "in_tx"]);
    assert_eq!(
        read_ok(&mut stream).await,
        vec![vec![Value::from("+00:00"), Value::Float(90.0), Value::UInt(90), Value::Int(1), Value::UInt(1)]]
    );

    // A fraction of a second is kept; the write timeout stays at least the server's 60 s.
    let source = mysql_source(MysqlOptions::new().statement_timeout(Duration::from_millis(2500)));
    let mut stream = source
        .query("SELECT @@session.max_statement_time AS st, @@session.net_write_timeout AS nwt")
        .await
        .unwrap();
    assert_eq!(read_ok(&mut stream).await, vec![vec![Value::Float(2.5), Value::UInt(60)]]);
}

#[tokio::test]
async fn the_read_only_transaction_refuses_writes_that_slip_past_the_checks() {
    exec(
        "DROP TABLE IF EXISTS src_readonly; CREATE TABLE src_readonly (x INT); \
         DROP SEQUENCE IF EXISTS src_readonly_seq; CREATE SEQUENCE src_readonly_seq; \
         DROP FUNCTION IF EXISTS src_readonly_writes; \
         CREATE FUNCTION src_readonly_writes() RETURNS INT MODIFIES SQL DATA \
             BEGIN INSERT INTO src_readonly VALUES (1); RETURN 1; END",
    )
    .await;
    let source = mysql_source(MysqlOptions::new());
    let read_only = "ERROR 1792 (25006): Cannot execute statement in a READ ONLY transaction";
    let writes = [
        ("SELECT src_readonly_writes() AS x", "1792", read_only),
        ("INSERT INTO src_readonly VALUES (2)", "1792", read_only),
        ("UPDATE src_readonly SET x = 3", "1792", read_only),
        ("DELETE FROM src_readonly", "1792", read_only),
        ("SELECT NEXTVAL(src_readonly_seq) AS n", "1792", read_only),
        ("SELECT x FROM src_readonly FOR UPDATE", "1792", read_only),
        // DDL commits the transaction first; the session is read-only too, so it is
        // refused all the same.
        ("CREATE TABLE src_readonly_u (x INT)", "1792", read_only),
        ("DROP TABLE src_readonly", "1792", read_only),
        ("CREATE TEMPORARY TABLE src_readonly_tmp (x INT)", "1792", read_only),
        // Prepared statements hold one statement.
        (
            "SELECT 1; INSERT INTO src_readonly VALUES (4)",
            "1064",
            "ERROR 1064 (42000): You have an error in your SQL syntax",
        ),
    ];
    for (sql, code, message) in writes {
        let error = query_error(&source, sql).await;
        assert!(matches!(error, SourceError::Query { .. }), "{sql}: {error:?}");
        assert_eq!(error.code(), Some(code), "{sql}: {error}");
        assert!(
            error.to_string().starts_with(&format!("source `test-mysql`: query failed: {message}")),
            "{sql}: {error}"
        );
    }
    let mut admin = admin().await;
    let count: Option<i64> = admin.query_first("SELECT COUNT(*) FROM src_readonly").await.unwrap();
    assert_eq!(count, Some(0), "nothing was written");
    let tables: Option<i64> = admin
        .query_first("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'src_readonly_u'")
        .await
        .unwrap();
    assert_eq!(tables, Some(0), "nothing was created");
    let next: Option<i64> = admin.query_first("SELECT NEXTVAL(src_readonly_seq)").await.unwrap();
    assert_eq!(next, Some(1), "the sequence did not move");
}

#[tokio::test]
async fn the_statement_timeout_cancels_a_slow_query() {
    let source = mysql_source(MysqlOptions::new().statement_timeout(Duration::from_secs(1)));
    let started = Instant::now();
    let error = query_error(&source, "SELECT SLEEP(5) AS slept").await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    match &error {
        SourceError::Timeout { source_name, timeout, rows_read, .. } => {
            assert_eq!(
                (source_name.as_str(), *timeout, *rows_read),
                ("test-mysql", Duration::from_secs(1), 0)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "source `test-mysql`: the query was cancelled after the statement timeout of 1s"
    );
    let cause = std::error::Error::source(&error).expect("the server's error").to_string();
    assert!(cause.contains("1969") && cause.contains("max_statement_time exceeded"), "{cause}");
    // The source is fine afterwards.
    source.check().await.unwrap();
}

/// The server's global `net_write_timeout` is lowered to 2 seconds for this test (every
/// new session starts with it) and restored afterwards.
struct LowNetWriteTimeout;

impl LowNetWriteTimeout {
    async fn set() -> LowNetWriteTimeout {
        exec("SET GLOBAL net_write_timeout = 2").await;
        LowNetWriteTimeout
    }

    async fn restore(self) {
        exec("SET GLOBAL net_write_timeout = 60").await;
        std::mem::forget(self);
    }
}

impl Drop for LowNetWriteTimeout {
    fn drop(&mut self) {
        // A failed assertion: restore the setting on a runtime of its own.
        let _ = std::thread::spawn(|| {
            tokio::runtime::Runtime::new().unwrap().block_on(exec("SET GLOBAL net_write_timeout = 60"))
        })
        .join();
    }
}

/// Rows far larger than the socket buffers on both sides (about 40 MB), so that the
/// server is left blocked writing while the reader pauses.
const WIDE_ROWS: &str = "SELECT seq, REPEAT('x', 400) AS pad FROM seq_1_to_100000";

#[tokio::test]
async fn a_reader_that_pauses_longer_than_the_servers_net_write_timeout_still_gets_its_rows() {
    let low = LowNetWriteTimeout::set().await;

    // Without the source's session setting, the server gives up on a reader that
    // pauses for 4 s: the test's conditions are real.
    let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&mysql_url()).unwrap())
        .pass(Some(mysql_password()))
        .prefer_socket(false);
    let mut plain = mysql_async::Conn::new(opts).await.unwrap();
    let timeout: Option<u64> = plain.query_first("SELECT @@session.net_write_timeout").await.unwrap();
    assert_eq!(timeout, Some(2));
    let mut rows = plain.query_stream::<mysql_async::Row, _>(WIDE_ROWS).await.unwrap();
    assert!(rows.next().await.unwrap().is_ok());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut plain_read = 1_u64;
    let mut plain_error = None;
    while let Some(row) = rows.next().await {
        match row {
            Ok(_) => plain_read += 1,
            Err(e) => {
                plain_error = Some(e);
                break;
            }
        }
    }
    assert!(plain_error.is_some() && plain_read < 100_000, "read {plain_read} rows without an error");
    drop(rows);
    drop(plain);

    // The source sets the session's net_write_timeout to at least its statement
    // timeout (and at least 60 s): the same pause costs nothing.
    let source = mysql_source(MysqlOptions::new().statement_timeout(Duration::from_secs(30)));
    let mut stream = source.query(WIDE_ROWS).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap()[0], Value::UInt(1));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut read = 1_u64;
    while let Some(row) = stream.next().await {
        let row = row.unwrap_or_else(|e| panic!("after {read} rows: {e}"));
        read += 1;
        assert_eq!(row[0], Value::UInt(read));
    }
    assert_eq!(read, 100_000);
    low.restore().await;
}

#[tokio::test]
async fn server_errors_keep_their_code_and_message_and_name_the_source() {
    let source = mysql_source(MysqlOptions::new());
    let error = query_error(&source, "SELECT x FROM src_no_such_table").await;
    assert_eq!(error.code(), Some("1146"));
    assert_eq!(
        error.to_string(),
        "source `test-mysql`: query failed: ERROR 1146 (42S02): Table 'cdp_test.src_no_such_table' doesn't exist"
    );
    let error = query_error(&source, "SELEC 1").await;
    assert_eq!((error.code(), error.source_name()), (Some("1064"), "test-mysql"));

    // An error after rows were read says how many.
    let mut stream = source
        .query("SELECT s.seq AS n, (SELECT t.seq FROM seq_1_to_2 t WHERE s.seq >= 1000) AS x FROM seq_1_to_2000 s")
        .await
        .unwrap();
    let rows = read_all(&mut stream).await;
    let (last, good) = rows.split_last().unwrap();
    assert_eq!(good.len(), 999);
    assert!(good.iter().all(Result::is_ok));
    let error = last.as_ref().unwrap_err();
    assert!(matches!(error, SourceError::Query { rows_read: 999, .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "source `test-mysql`: query failed after 999 rows: ERROR 1242 (21000): Subquery returns more than 1 row"
    );
}

#[tokio::test]
async fn connect_errors_name_the_target_and_never_the_password() {
    let url = mysql_url();
    let wrong =
        MysqlSource::new("test-mysql", &url, MysqlOptions::new().password("wrong-secret-password")).unwrap();
    let error = wrong.check().await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, SourceError::Login { .. }), "{error:?}");
    assert_eq!(error.check_step(), CheckStep::DatabaseLogin);
    assert!(
        text.starts_with(&format!(
            "source `test-mysql`: cannot connect to {}: the database refused the login: ERROR 1045 (28000): \
             Access denied for user 'cdp'@",
            wrong.target()
        )),
        "{text}"
    );
    assert!(!text.contains("secret") && !format!("{error:?}").contains("wrong-secret"), "{text}");

    // A database the user may not use (or that does not exist: the server does not
    // say which to a user without rights on it) is a refused login too.
    let base = url.rsplit_once('/').unwrap().0;
    let missing = MysqlSource::new(
        "test-mysql",
        &format!("{base}/cdp_no_such_db"),
        MysqlOptions::new().password(mysql_password()),
    )
    .unwrap();
    let error = missing.check().await.unwrap_err();
    assert!(matches!(error, SourceError::Login { .. }), "{error:?}");
    assert!(error.to_string().contains("ERROR 1044 (42000): Access denied for user 'cdp'@"), "{error}");
    assert!(error.to_string().contains("to database 'cdp_no_such_db'"), "{error}");

    // Nothing listens.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let nobody = MysqlSource::new(
        "test-mysql",
        &format!("mysql://cdp@127.0.0.1:{closed}/cdp_test"),
        MysqlOptions::new(),
    )
    .unwrap();
    let error = nobody.check().await.unwrap_err();
    assert!(matches!(error, SourceError::Connect { .. }), "{error:?}");
    assert!(error.to_string().contains("Connection refused"), "{error}");

    // Something listens and never answers: the connect timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let source = MysqlSource::new(
        "test-mysql",
        &format!("mysql://cdp@127.0.0.1:{port}/cdp_test"),
        MysqlOptions::new().connect_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let started = Instant::now();
    let error = source.check().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        error.to_string(),
        format!(
            "source `test-mysql`: cannot connect to 127.0.0.1:{port}/cdp_test as cdp: no answer within the connect timeout of 300ms"
        )
    );
    drop(silent);
}

#[tokio::test]
async fn a_dropped_stream_ends_the_query_on_the_server() {
    let source = mysql_source(MysqlOptions::new());
    let mut stream =
        source.query("SELECT seq, 'src_drop_marker' AS marker FROM seq_1_to_100000000").await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap()[0], Value::UInt(1));
    drop(stream);
    let running = "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                   WHERE INFO LIKE '%src_drop_marker%' AND INFO NOT LIKE '%PROCESSLIST%'";
    assert!(eventually_none(running).await, "the query still runs on the server");
    // The source is fine afterwards.
    let mut stream = source.query("SELECT 1 AS one").await.unwrap();
    assert_eq!(read_ok(&mut stream).await, vec![vec![Value::Int(1)]]);
}

#[tokio::test]
async fn a_connection_killed_mid_stream_ends_the_query_with_an_error() {
    let source = mysql_source(MysqlOptions::new());
    let mut stream = source
        .query("SELECT seq, CONNECTION_ID() AS id, REPEAT('y', 200) AS pad FROM seq_1_to_10000000")
        .await
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    let Value::UInt(id) = first[1] else { panic!("{first:?}") };
    let mut admin = admin().await;
    admin.query_drop(format!("KILL CONNECTION {id}")).await.unwrap();
    let mut error = None;
    while let Some(row) = stream.next().await {
        if let Err(e) = row {
            error = Some(e);
            break;
        }
    }
    let error = error.expect("an error before the end");
    assert!(matches!(error, SourceError::Connection { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with("source `test-mysql`: connection lost after "), "{text}");
    // The socket closed mid-packet, or MariaDB's last words (`ERROR 1927 (70100):
    // Connection was killed`) arrived first.
    assert!(text.contains("the server closed the connection") || text.contains("ERROR 1927"), "{text}");
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn columns_come_from_the_prepared_statement_without_running_the_query() {
    let source = mysql_source(MysqlOptions::new());
    // Running this query takes 5 seconds: the columns come at once, from the answer to
    // the prepare, spelled as written.
    let sql = "SELECT SLEEP(5) AS slept, 1 AS userId, 2 AS USERID, 3 AS `a.b`";
    let started = Instant::now();
    assert_eq!(source.columns(sql).await.unwrap(), ["slept", "userId", "USERID", "a.b"]);
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    let stream = source.query("SELECT 1 AS userId, 2 AS USERID").await.unwrap();
    assert_eq!(stream.columns().names(), ["userId", "USERID"]);
    drop(stream);
    // An unknown table is the server's error, with its number.
    let error = source.columns("SELECT * FROM no_such_table_for_columns").await.unwrap_err();
    assert_eq!(error.code(), Some("1146"));
    assert!(error.to_string().starts_with("source `test-mysql`: query failed: ERROR 1146"), "{error}");
}
