//! End to end against a real MySQL-protocol server (the MariaDB test server that `bash
//! .ci/test` starts, with `CDP_TEST_MYSQL_URL` and `CDP_TEST_MYSQL_PASSWORD`): a
//! `kind = "mysql"` source read through the runner, as `reverse_etl once` does, into
//! NDJSON: every type into traits, the reference query's `UNIX_TIMESTAMP(updated_at) >
//! {{last_sync_time}}` window, a zero date as a row error, a timeout as a failed run.
#![cfg(feature = "mysql")]

use std::path::Path;
use std::sync::Arc;

use cdp_bucket::{Clock, ManualClock};
use cdp_sync::{Config, Outcome, Runner};
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

fn ts(s: &str) -> cdp_calls::Timestamp {
    s.parse().unwrap()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need the MySQL test server that `bash .ci/test` installs and \
             starts on loopback (crates/source/tests/mysql/start.sh). Run them with `bash .ci/test`."
        )
    })
}

/// Runs SQL (several statements) on the test server.
async fn sql(statements: &str) {
    let opts =
        mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&env("CDP_TEST_MYSQL_URL")).unwrap())
            .pass(Some(env("CDP_TEST_MYSQL_PASSWORD")))
            .prefer_socket(false);
    let mut conn = mysql_async::Conn::new(opts).await.unwrap();
    conn.query_drop(statements).await.unwrap_or_else(|e| panic!("{statements}: {e}"));
    conn.disconnect().await.unwrap();
}

/// A `people` table of its own per test, holding the common types.
async fn people_table(table: &str) {
    sql(&format!(
        r#"
        DROP TABLE IF EXISTS {table};
        CREATE TABLE {table} (
            id BIGINT UNSIGNED PRIMARY KEY, tiny TINYINT, big BIGINT UNSIGNED, ratio FLOAT, score DOUBLE,
            balance DECIMAL(30, 4), active TINYINT(1), name VARCHAR(40), bio TEXT, plan ENUM('free', 'pro'),
            tags SET('a', 'b', 'c'), prefs JSON, avatar BLOB, born DATE, wakes TIME, seen DATETIME(3),
            updated_at TIMESTAMP(3) NULL, flag BIT(1), mask BIT(16), year_joined YEAR
        ) CHARACTER SET utf8mb4;
        SET time_zone = '+00:00';
        INSERT INTO {table} VALUES
          (1, -7, 18446744073709551615, 0.5, 2.25, 12345678901234567890.1234, 1, 'Ada', 'héllo ✓', 'pro',
           'a,c', '{{"theme": "dark", "n": [1, 2]}}', X'00FF', '1815-12-10', '-01:30:00', '2026-11-22 09:00:00.5',
           '2026-11-23 09:00:00', b'1', b'0000000100000001', 2001),
          (2, NULL, NULL, NULL, NULL, NULL, 0, 'Bob', NULL, 'free', '', NULL, NULL, NULL, NULL, NULL,
           '2026-11-23 09:00:00', b'0', NULL, NULL);
        "#
    ))
    .await;
}

fn config(dir: &Path, query: &str, timeout: &str) -> Config {
    config_with(dir, query, timeout, "")
}

/// The configuration with `source_extra` lines in the source's table.
fn config_with(dir: &Path, query: &str, timeout: &str, source_extra: &str) -> Config {
    let text = format!(
        r#"
        state_dir = "state"
        [sources.shop]
        kind = "mysql"
        url = "{url}"
        password_env = "SHOP_DB_PASSWORD"
        statement_timeout = "{timeout}"
        {source_extra}
        [destinations.out]
        kind = "ndjson"
        path = "calls.ndjson"
        [[syncs]]
        name = "people"
        type = "identify"
        source = "shop"
        destination = "out"
        query = """{query}"""
        every = "1m"
        "#,
        url = env("CDP_TEST_MYSQL_URL"),
    );
    let password = env("CDP_TEST_MYSQL_PASSWORD");
    Config::parse(&text, dir, &|name| (name == "SHOP_DB_PASSWORD").then(|| password.clone())).unwrap()
}

fn calls(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("calls.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_becomes_a_trait_and_incremental_runs_send_only_what_changed() {
    people_table("sync_people").await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    // The reference query's shape (aliases keep their case on MySQL).
    let query = "SELECT id AS userId, tiny, big, ratio, score, balance, active, name, bio, plan, tags, prefs, \
                 avatar, born, wakes, seen, updated_at, flag, mask, year_joined, \
                 JSON_OBJECT('role', 'admin', 'since', year_joined) AS relationship \
                 FROM sync_people WHERE UNIX_TIMESTAMP(updated_at) > {{last_sync_time}} ORDER BY id";
    let runner = Runner::new(config(dir.path(), query, "1m"), clock.clone() as Arc<dyn Clock>).await.unwrap();

    let first = runner.run("people").await.unwrap().record;
    assert_eq!(
        (first.outcome, first.rows_read, first.calls_delivered, first.row_errors),
        (Outcome::Succeeded, 2, 2, 0),
        "{:?}",
        first.error
    );
    let sent = calls(dir.path());
    assert_eq!(sent[0]["type"], "identify");
    assert_eq!(sent[0]["userId"], "1");
    assert_eq!(
        sent[0]["traits"],
        json!({
            "tiny": -7, "big": 18446744073709551615_u64, "ratio": 0.5, "score": 2.25,
            "balance": "12345678901234567890.1234", "active": true, "name": "Ada", "bio": "héllo ✓",
            "plan": "pro", "tags": "a,c", "prefs": {"theme": "dark", "n": [1, 2]}, "avatar": "AP8=",
            "born": "1815-12-10", "wakes": "-01:30:00", "seen": "2026-11-22T09:00:00.500Z",
            "updated_at": "2026-11-23T09:00:00.000Z", "flag": true, "mask": 257, "year_joined": 2001,
            "relationship": {"role": "admin", "since": 2001}
        })
    );
    assert_eq!(sent[0]["timestamp"], "2026-11-23T10:00:00.000Z", "no timestamp column: the run's start");
    assert_eq!(sent[1]["userId"], "2");
    assert_eq!(sent[1]["traits"]["active"], false);
    assert_eq!(sent[1]["traits"]["big"], Value::Null);
    assert_eq!(sent[1]["traits"]["tags"], "");

    // A row updated after the first run started is sent by the next run, alone.
    sql("SET time_zone = '+00:00'; UPDATE sync_people SET name = 'Bobby', updated_at = '2026-11-23 10:05:00' WHERE id = 2")
        .await;
    clock.set(ts("2026-11-23T10:10:00Z"));
    let second = runner.run("people").await.unwrap().record;
    assert_eq!((second.rows_read, second.last_sync_time), (1, ts("2026-11-23T10:00:00Z").as_secs()));
    clock.set(ts("2026-11-23T10:20:00Z"));
    assert_eq!(runner.run("people").await.unwrap().record.rows_read, 0);
    let names: Vec<Value> = calls(dir.path()).iter().map(|c| c["traits"]["name"].clone()).collect();
    assert_eq!(names, [json!("Ada"), json!("Bob"), json!("Bobby")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_date_is_a_row_error_and_the_rest_is_delivered() {
    sql("DROP TABLE IF EXISTS sync_zero; CREATE TABLE sync_zero (id INT, born DATE); SET SESSION sql_mode = ''; \
         INSERT INTO sync_zero VALUES (1, '2000-01-01'), (2, '0000-00-00'), (3, NULL)")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let query = "SELECT id AS userId, born FROM sync_zero ORDER BY id";
    let runner = Runner::new(config(dir.path(), query, "1m"), clock as Arc<dyn Clock>).await.unwrap();
    let run = runner.run("people").await.unwrap().record;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.error);
    assert_eq!((run.rows_read, run.calls_delivered, run.row_errors), (3, 2, 1));
    let mut csv = csv::Reader::from_path(run.row_errors_file.unwrap()).unwrap();
    let record = csv.records().next().unwrap().unwrap();
    let line = record.iter().collect::<Vec<_>>().join(" | ");
    assert!(line.contains('2') && line.contains("born") && line.contains("0000-00-00"), "{line}");
    let ids: Vec<Value> = calls(dir.path()).iter().map(|c| c["userId"].clone()).collect();
    assert_eq!(ids, [json!("1"), json!("3")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_the_statement_timeout_fails_the_run_and_keeps_last_sync_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let query = "SELECT 1 AS userId, SLEEP(5) AS slept WHERE {{last_sync_time}} >= 0";
    let runner = Runner::new(config(dir.path(), query, "1s"), clock as Arc<dyn Clock>).await.unwrap();
    let run = runner.run("people").await.unwrap().record;
    assert_eq!(run.outcome, Outcome::Failed);
    let error = run.error.unwrap();
    assert!(error.contains("source `shop`") && error.contains("statement timeout of 1s"), "{error}");
    assert!(!error.contains(&env("CDP_TEST_MYSQL_PASSWORD")), "{error}");
    assert_eq!(run.last_sync_time, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_ca_file_connects_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("../source/tests/data/test-ca.pem");
    let query = "SELECT 'tls-user' AS userId, VARIABLE_VALUE AS tls FROM information_schema.SESSION_STATUS \
                 WHERE VARIABLE_NAME = 'Ssl_version' AND {{last_sync_time}} >= 0";
    let extra = format!("tls_ca_file = \"{}\"", ca.display());
    let runner =
        Runner::new(config_with(dir.path(), query, "1m", &extra), clock as Arc<dyn Clock>).await.unwrap();
    let run = runner.run("people").await.unwrap().record;
    assert_eq!((run.outcome, run.calls_delivered), (Outcome::Succeeded, 1), "{:?}", run.error);
    let sent = calls(dir.path());
    let version = sent[0]["traits"]["tls"].as_str().unwrap().to_owned();
    assert!(version.starts_with("TLSv1."), "{version}");
}
