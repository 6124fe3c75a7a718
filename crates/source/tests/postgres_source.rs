//! The PostgreSQL source against a real server: the read-only transaction, the
//! statement timeout, errors that name the source and never show a password,
//! cancelling by dropping the stream.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cdp_rows::Value;
use cdp_source::{Dialect, PostgresOptions, PostgresSource, Source, SourceError};
use common::{admin, fresh_schema, postgres_source, postgres_url, read_all, read_ok};

/// Waits up to 10 seconds for `sql` (on the admin connection) to return a row.
async fn eventually(client: &tokio_postgres::Client, sql: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !client.query(sql, &[]).await.unwrap().is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn queries_run_read_only_with_the_statement_timeout() {
    let source = postgres_source(PostgresOptions::new().statement_timeout(Duration::from_secs(90)));
    assert_eq!(source.name(), "test-pg");
    assert_eq!(source.dialect(), Dialect::PostgreSQL);
    source.check().await.unwrap();
    let mut stream = source
        .query(
            "SELECT current_setting('transaction_read_only') AS ro, current_setting('statement_timeout') AS st, \
             current_setting('application_name') AS app",
        )
        .await
        .unwrap();
    assert_eq!(
        read_ok(&mut stream).await,
        vec![vec![Value::from("on"), Value::from("90s"), Value::from("cdp-warehouse")]]
    );
}

#[tokio::test]
async fn the_read_only_transaction_refuses_writes_that_slip_past_the_checks() {
    let admin = admin().await;
    fresh_schema(&admin, "src_readonly").await;
    admin
        .batch_execute(
            "CREATE TABLE src_readonly.t (x int);
             CREATE SEQUENCE src_readonly.s;
             CREATE FUNCTION src_readonly.writes() RETURNS int LANGUAGE sql
                 AS 'INSERT INTO src_readonly.t VALUES (1) RETURNING x';",
        )
        .await
        .unwrap();
    let source = postgres_source(PostgresOptions::new());
    let writes = [
        ("SELECT src_readonly.writes() AS x", "25006", "cannot execute INSERT in a read-only transaction"),
        (
            "WITH w AS (INSERT INTO src_readonly.t VALUES (2) RETURNING x) SELECT x FROM w",
            "25006",
            // The server's own words for a data-modifying WITH.
            "cannot execute SELECT in a read-only transaction",
        ),
        ("SELECT nextval('src_readonly.s')", "25006", "cannot execute nextval() in a read-only transaction"),
        ("DELETE FROM src_readonly.t", "25006", "cannot execute DELETE in a read-only transaction"),
        (
            "CREATE TABLE src_readonly.u (x int)",
            "25006",
            "cannot execute CREATE TABLE in a read-only transaction",
        ),
        (
            "WITH x AS (SELECT set_config('transaction_read_only', 'off', false)) SELECT * FROM x",
            "25001",
            "transaction read-write mode must be set before any query",
        ),
        (
            "SELECT 1; INSERT INTO src_readonly.t VALUES (3)",
            "42601",
            "cannot insert multiple commands into a prepared statement",
        ),
    ];
    for (sql, code, message) in writes {
        // The error may come from `query` or from the stream: either way, no row.
        let error = match source.query(sql).await {
            Err(e) => e,
            Ok(mut stream) => {
                let rows = read_all(&mut stream).await;
                assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
                rows.into_iter().next().unwrap().unwrap_err()
            }
        };
        assert!(matches!(error, SourceError::Query { .. }), "{sql}: {error:?}");
        assert_eq!(error.code(), Some(code), "{sql}: {error}");
        assert!(error.to_string().contains(message), "{sql}: {error}");
        assert!(error.to_string().starts_with("source `test-pg`: query failed: ERROR "), "{error}");
    }
    let count: i64 = admin.query_one("SELECT count(*) FROM src_readonly.t", &[]).await.unwrap().get(0);
    assert_eq!(count, 0, "nothing was written");
    let (last, called): (i64, bool) = admin
        .query_one("SELECT last_value, is_called FROM src_readonly.s", &[])
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!((last, called), (1, false), "the sequence did not move");
}

#[tokio::test]
async fn the_statement_timeout_cancels_a_slow_query() {
    let source = postgres_source(PostgresOptions::new().statement_timeout(Duration::from_millis(300)));
    let started = Instant::now();
    let error = match source.query("SELECT pg_sleep(5) AS slept").await {
        Err(e) => e,
        Ok(mut stream) => stream.next().await.expect("an error").unwrap_err(),
    };
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    match &error {
        SourceError::Timeout { source_name, timeout, rows_read, .. } => {
            assert_eq!(
                (source_name.as_str(), *timeout, *rows_read),
                ("test-pg", Duration::from_millis(300), 0)
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "source `test-pg`: the query was cancelled after the statement timeout of 300ms"
    );
}

#[tokio::test]
async fn the_statement_timeout_covers_a_slow_reader() {
    let source = postgres_source(PostgresOptions::new().statement_timeout(Duration::from_secs(1)));
    // A join of two small series streams its 20,000,000 rows without materializing them.
    let mut stream = source
        .query("SELECT a * 10000 + b AS n FROM generate_series(1, 2000) a, generate_series(1, 10000) b")
        .await
        .unwrap();
    let first = stream.next().await.unwrap();
    assert!(first.is_ok(), "{first:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let error = loop {
        match stream.next().await {
            Some(Ok(_)) => continue,
            Some(Err(e)) => break e,
            None => panic!("the query finished despite the timeout"),
        }
    };
    match error {
        SourceError::Timeout { rows_read, .. } => {
            assert!((1..20_000_000).contains(&rows_read), "{rows_read}")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(stream.next().await.is_none(), "the stream ends after the timeout");
}

#[tokio::test]
async fn query_errors_name_the_source_and_say_where() {
    let source = postgres_source(PostgresOptions::new());
    let error = source.query("SELECT * FROM src_no_such_schema.t").await.unwrap_err();
    assert_eq!(error.code(), Some("42P01"));
    assert_eq!(
        error.to_string(),
        "source `test-pg`: query failed: ERROR 42P01: relation \"src_no_such_schema.t\" does not exist (at character 15)"
    );
    let error = source.query("SELEC 1").await.unwrap_err();
    assert_eq!(error.code(), Some("42601"));
    assert!(error.to_string().contains("syntax error at or near \"SELEC\""), "{error}");

    // An error while rows are computed comes from the stream, after the rows before it.
    let mut stream = source.query("SELECT 10 / (3 - g) AS x FROM generate_series(1, 5) g").await.unwrap();
    let rows = read_all(&mut stream).await;
    assert_eq!(rows[0].as_ref().unwrap(), &vec![Value::Int(5)]);
    assert_eq!(rows[1].as_ref().unwrap(), &vec![Value::Int(10)]);
    match &rows[2] {
        Err(error @ SourceError::Query { rows_read: 2, .. }) => {
            assert_eq!(error.code(), Some("22012"));
            assert_eq!(
                error.to_string(),
                "source `test-pg`: query failed after 2 rows: ERROR 22012: division by zero"
            );
        }
        other => panic!("expected a division by zero, got {other:?}"),
    }
    assert_eq!(rows.len(), 3);

    // Parameters cannot be given.
    let error = source.query("SELECT $1::int AS x").await.unwrap_err();
    assert!(matches!(error, SourceError::Query { .. }), "{error:?}");
}

#[tokio::test]
async fn connection_errors_name_the_source_and_target() {
    let url = postgres_url();
    let bad_port = url.replacen(&format!(":{}/", port_of(&url)), ":1/", 1);
    let source = PostgresSource::new("bad-port", &bad_port, PostgresOptions::new()).unwrap();
    let error = source.query("SELECT 1").await.unwrap_err();
    assert!(matches!(error, SourceError::Connect { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with(
            "source `bad-port`: cannot connect to 127.0.0.1:1/cdp_test as cdp: error connecting to server"
        ),
        "{text}"
    );
    assert!(source.check().await.is_err());

    let bad_db = format!("{}/src_no_such_database", url.rsplit_once('/').unwrap().0);
    let source = PostgresSource::new("bad-db", &bad_db, PostgresOptions::new()).unwrap();
    let text = source.query("SELECT 1").await.unwrap_err().to_string();
    assert!(text.starts_with("source `bad-db`: cannot connect to "), "{text}");
    assert!(text.contains("FATAL 3D000: database \"src_no_such_database\" does not exist"), "{text}");
}

/// The port in a `postgres://user@host:port/db` URL.
fn port_of(url: &str) -> String {
    let after_host = url.rsplit_once('@').unwrap().1;
    after_host.split(['/', '?']).next().unwrap().rsplit_once(':').unwrap().1.to_owned()
}

/// Gives the role `src_pw_user` a password and makes the server ask for it over TCP
/// (a `scram-sha-256` line for that role only, first in `pg_hba.conf`).
async fn password_protected_role(admin: &tokio_postgres::Client) {
    admin
        .batch_execute(
            "DO $$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'src_pw_user') THEN
                     CREATE ROLE src_pw_user LOGIN;
                 END IF;
             END $$;
             SET password_encryption = 'scram-sha-256';
             ALTER ROLE src_pw_user PASSWORD 'right-horse-battery';",
        )
        .await
        .unwrap();
    let line = "host all src_pw_user 127.0.0.1/32 scram-sha-256";
    let (file, hba): (String, String) = admin
        .query_one("SELECT current_setting('hba_file'), pg_read_file(current_setting('hba_file'))", &[])
        .await
        .map(|row| (row.get(0), row.get(1)))
        .unwrap();
    if !hba.lines().any(|l| l == line) {
        // COPY writes one row per line, escaping only tabs and backslashes, which the
        // file must not hold. The content is read first: COPY empties the file as it
        // opens it. The server keeps using the rules it loaded until the reload.
        assert!(!hba.contains('\t') && !hba.contains('\\'), "pg_hba.conf has tabs or backslashes");
        assert!(hba.lines().any(|l| l.starts_with("host")), "pg_hba.conf has host lines: {hba}");
        let lines: Vec<String> = std::iter::once(line).chain(hba.lines()).map(quote).collect();
        let sql = format!(
            "COPY (SELECT l FROM unnest(ARRAY[{}]::text[]) WITH ORDINALITY AS x(l, n) ORDER BY n) TO {}",
            lines.join(", "),
            quote(&file)
        );
        admin.batch_execute(&sql).await.unwrap();
        let written: String =
            admin.query_one("SELECT pg_read_file(current_setting('hba_file'))", &[]).await.unwrap().get(0);
        assert_eq!(written.lines().skip(1).collect::<Vec<_>>(), hba.lines().collect::<Vec<_>>());
    }
    admin.batch_execute("SELECT pg_reload_conf()").await.unwrap();
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[tokio::test]
async fn passwords_never_appear_in_errors_or_debug_output() {
    let admin = admin().await;
    password_protected_role(&admin).await;
    let url = postgres_url();
    let as_role = url.replacen("postgres://cdp@", "postgres://src_pw_user@", 1);
    assert_ne!(as_role, url, "the test URL has the form postgres://cdp@host:port/db");

    // Wait for the reload: without a password the server now refuses.
    let source = PostgresSource::new("pw-test", &as_role, PostgresOptions::new()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = loop {
        match source.query("SELECT 1").await {
            Err(e) => break e,
            Ok(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Ok(_) => panic!("the server does not ask src_pw_user for a password"),
        }
    };
    assert!(error.to_string().contains("password missing"), "{error}");

    let secret = "wrong-staple-secret";
    let source = PostgresSource::new("pw-test", &as_role, PostgresOptions::new().password(secret)).unwrap();
    let error = source.query("SELECT 1").await.unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("source `pw-test`: cannot connect to 127.0.0.1:"), "{text}");
    assert!(
        text.contains("28P01") && text.contains("password authentication failed for user \"src_pw_user\""),
        "{text}"
    );
    let mut all = vec![text, format!("{error:?}"), format!("{source:?}"), source.to_string()];
    let mut cause = std::error::Error::source(&error);
    while let Some(c) = cause {
        all.push(c.to_string());
        all.push(format!("{c:?}"));
        cause = c.source();
    }

    // A password inside the URL is hidden as well.
    let in_url = as_role.replacen("src_pw_user@", &format!("src_pw_user:{secret}@"), 1);
    let source = PostgresSource::new("pw-test", &in_url, PostgresOptions::new()).unwrap();
    let error = source.query("SELECT 1").await.unwrap_err();
    all.extend([error.to_string(), format!("{error:?}"), format!("{source:?}"), source.to_string()]);
    for text in &all {
        assert!(!text.contains(secret), "the password shows in: {text}");
    }

    // The right password, given apart from the URL, logs in.
    let source =
        PostgresSource::new("pw-test", &in_url, PostgresOptions::new().password("right-horse-battery"))
            .unwrap();
    let mut stream = source.query("SELECT current_user::text AS u").await.unwrap();
    assert_eq!(read_ok(&mut stream).await, vec![vec![Value::from("src_pw_user")]]);
    assert!(!format!("{source:?}").contains("right-horse-battery"));
}

#[tokio::test]
async fn dropping_the_stream_cancels_the_query_and_closes_its_connection() {
    let admin = admin().await;
    let source = postgres_source(PostgresOptions::new());
    let mut stream = source
        .query("SELECT g, 'src_drop_marker' AS marker FROM generate_series(1, 50000000) g")
        .await
        .unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    let running = "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%src_drop_marker%' \
                   AND query NOT LIKE '%pg_stat_activity%'";
    assert!(eventually(&admin, running).await, "the query runs while the stream is held");
    drop(stream);
    let gone = format!("SELECT 1 WHERE NOT EXISTS ({running})");
    assert!(eventually(&admin, &gone).await, "the backend went away after the stream was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_serves_concurrent_queries_from_spawned_tasks() {
    let source: Arc<dyn Source> = Arc::new(postgres_source(PostgresOptions::new()));
    let mut tasks = Vec::new();
    for i in 0..6_i64 {
        let source = source.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream =
                source.query(&format!("SELECT g * {i} AS v FROM generate_series(1, 1000) g")).await?;
            let mut sum = 0;
            while let Some(row) = stream.next().await {
                if let Value::Int(v) = row?[0] {
                    sum += v;
                }
            }
            Ok::<_, SourceError>(sum)
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap(), 500_500 * i as i64);
    }
}

#[tokio::test]
async fn columns_come_from_the_prepared_statement_without_running_the_query() {
    let source = postgres_source(PostgresOptions::new());
    // Running this query takes 5 seconds and then fails (a division by zero): the
    // columns come at once, from the statement's description.
    let sql = "SELECT pg_sleep(5) AS slept, 1 AS \"userId\", 2 AS USERID, 1 / 0 AS \"a.b\"";
    let started = Instant::now();
    assert_eq!(source.columns(sql).await.unwrap(), ["slept", "userId", "userid", "a.b"]);
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    // The same names the query's stream has.
    let stream = source.query("SELECT 1 AS \"userId\", 2 AS USERID").await.unwrap();
    assert_eq!(stream.columns().names(), ["userId", "userid"]);
    drop(stream);
    // An unknown table is the query's error, with its SQLSTATE.
    let error = source.columns("SELECT * FROM src_no_such_schema.t").await.unwrap_err();
    assert_eq!(error.code(), Some("42P01"));
    assert!(error.to_string().starts_with("source `test-pg`: query failed: ERROR 42P01"), "{error}");
}
