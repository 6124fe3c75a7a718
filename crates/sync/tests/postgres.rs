//! End to end against a real PostgreSQL server (started by `bash .ci/test`, which
//! sets `CDP_TEST_POSTGRES_URL`): every type into calls, incremental syncs,
//! failures, overlapping windows, skipped runs, and the HTTP destination.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdp_bucket::{Clock, ManualClock};
use cdp_sync::{Config, Outcome, Runner, Scheduler};
use common::http_server;
use serde_json::{Value, json};

fn ts(s: &str) -> cdp_calls::Timestamp {
    s.parse().unwrap()
}

fn postgres_url() -> String {
    std::env::var("CDP_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "CDP_TEST_POSTGRES_URL is not set: these tests need the PostgreSQL server that `bash .ci/test` \
             installs and starts on loopback. Run them with `bash .ci/test`."
        )
    })
}

/// Runs SQL on the test server.
async fn sql(statements: &str) {
    let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(statements).await.unwrap();
}

/// A schema of its own per test, with a `people` table holding every common type.
async fn people_table(schema: &str) {
    sql(&format!(
        r#"
        DROP SCHEMA IF EXISTS {schema} CASCADE;
        CREATE SCHEMA {schema};
        CREATE TYPE {schema}.plan AS ENUM ('free', 'pro');
        CREATE TABLE {schema}.people (
            id int8 PRIMARY KEY, small int2, medium int4, ratio float4, score float8, balance numeric(20, 4),
            active bool, name text, nick varchar(20), code char(3), prefs json, meta jsonb,
            born date, wakes time, seen timestamp, updated_at timestamptz, uid uuid, avatar bytea,
            plan {schema}.plan, tags text[], lucky int4[]
        );
        INSERT INTO {schema}.people VALUES
          (1, 7, 70000, 0.5, 2.25, 12345.6789, true, 'Ada', 'ada', 'AAA', '{{"theme":"dark"}}', '{{"a":{{"b":1}}}}',
           '1815-12-10', '06:30:00', '2026-11-22 09:00:00', '2026-11-23T09:00:00Z',
           '123e4567-e89b-12d3-a456-426614174000', '\x00ff', 'pro', ARRAY['x','y'], ARRAY[3,7]),
          (2, NULL, NULL, NULL, NULL, NULL, NULL, 'Bob', NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, '2026-11-23T09:00:00Z', NULL, NULL, 'free', NULL, NULL),
          (3, 1, 2, 3, 4, 5, false, 'Cy', 'cy', 'CCC', '[]', '{{}}',
           '2000-01-01', '00:00:00', '1999-12-31 23:59:59.5', '2026-11-23T09:00:00Z',
           '00000000-0000-0000-0000-000000000000', '', 'free', ARRAY[]::text[], ARRAY[NULL, 1]);
        "#
    ))
    .await;
}

fn config(dir: &Path, schema: &str, query: &str, destination: &str, extra: &str) -> Config {
    let text = format!(
        r#"
        state_dir = "state"
        [sources.pg]
        kind = "postgres"
        url = "{url}"
        statement_timeout = "1m"
        [destinations.out]
        kind = "ndjson"
        path = "calls.ndjson"
        {extra}
        [[syncs]]
        name = "people"
        type = "identify"
        source = "pg"
        destination = "{destination}"
        query = """{query}"""
        every = "1m"
        "#,
        url = postgres_url(),
        query = query.replace("{schema}", schema),
    );
    Config::parse(&text, dir, &|name| (name == "API_KEY").then(|| "secret-key".to_owned())).unwrap()
}

const INCREMENTAL: &str = r#"SELECT id AS "userId", small, medium, ratio, score, balance, active, name, nick, code,
    prefs, meta, born, wakes, seen, updated_at, uid, avatar, plan, tags, lucky
  FROM {schema}.people WHERE updated_at > to_timestamp({{last_sync_time}}) ORDER BY id"#;

fn calls(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("calls.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_becomes_a_trait_and_incremental_runs_send_only_what_changed() {
    let schema = "sync_incremental";
    people_table(schema).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner =
        Runner::new(config(dir.path(), schema, INCREMENTAL, "out", ""), clock.clone() as Arc<dyn Clock>)
            .await
            .unwrap();

    // The first run sends every row.
    let first = runner.run("people").await.unwrap().record;
    assert_eq!(
        (first.outcome, first.rows_read, first.calls_delivered, first.row_errors),
        (Outcome::Succeeded, 3, 3, 0)
    );
    let sent = calls(dir.path());
    assert_eq!(sent[0]["userId"], "1");
    assert_eq!(
        sent[0]["traits"],
        json!({
            "small": 7, "medium": 70000, "ratio": 0.5, "score": 2.25, "balance": 12345.6789, "active": true,
            "name": "Ada", "nick": "ada", "code": "AAA", "prefs": {"theme": "dark"}, "meta": {"a": {"b": 1}},
            "born": "1815-12-10", "wakes": "06:30:00", "seen": "2026-11-22T09:00:00.000Z",
            "updated_at": "2026-11-23T09:00:00.000Z", "uid": "123e4567-e89b-12d3-a456-426614174000",
            "avatar": "AP8=", "plan": "pro", "tags": ["x", "y"], "lucky": [3, 7]
        })
    );
    assert_eq!(sent[1]["traits"]["small"], Value::Null);
    assert_eq!(sent[1]["traits"]["plan"], "free");
    assert_eq!(sent[2]["traits"]["seen"], "1999-12-31T23:59:59.500Z");
    assert_eq!(sent[2]["traits"]["lucky"], json!([null, 1]));
    assert_eq!(sent[2]["traits"]["prefs"], json!([]));

    // Rows updated after the first run started are sent by the next run ...
    sql(&format!(
        "UPDATE {schema}.people SET name = 'Bobby', updated_at = '2026-11-23T10:05:00Z' WHERE id = 2"
    ))
    .await;
    clock.set(ts("2026-11-23T10:10:00Z"));
    let second = runner.run("people").await.unwrap().record;
    assert_eq!((second.rows_read, second.last_sync_time), (1, ts("2026-11-23T10:00:00Z").as_secs()));
    // ... and unchanged rows are not sent again.
    clock.set(ts("2026-11-23T10:20:00Z"));
    assert_eq!(runner.run("people").await.unwrap().record.rows_read, 0);
    let names: Vec<Value> = calls(dir.path()).iter().map(|c| c["traits"]["name"].clone()).collect();
    assert_eq!(names, [json!("Ada"), json!("Bob"), json!("Cy"), json!("Bobby")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_destination_leaves_last_sync_time_unchanged() {
    let schema = "sync_failing";
    people_table(schema).await;
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(0));
    let count = seen.clone();
    let base_url = http_server(move |_| {
        *count.lock().unwrap() += 1;
        (401, r#"{"error":"bad key"}"#.to_owned())
    });
    let extra =
        format!("[destinations.api]\nkind = \"http\"\nbase_url = \"{base_url}\"\napi_key_env = \"API_KEY\"");
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner =
        Runner::new(config(dir.path(), schema, INCREMENTAL, "api", &extra), clock.clone() as Arc<dyn Clock>)
            .await
            .unwrap();
    let run = runner.run("people").await.unwrap().record;
    assert_eq!(run.outcome, Outcome::Failed);
    assert!(run.error.as_deref().unwrap().contains("401"), "{:?}", run.error);
    assert!(!run.error.as_deref().unwrap().contains("secret-key"));
    assert_eq!(*seen.lock().unwrap(), 1, "the batch was sent once: a 401 is not retried");
    assert_eq!(runner.state().load("people").unwrap().last_sync_time, 0);
    clock.set(ts("2026-11-23T10:10:00Z"));
    let again = runner.run("people").await.unwrap().record;
    assert_eq!((again.last_sync_time, again.rows_read), (0, 3), "the same rows are read again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_api_refuses_becomes_a_row_error_and_the_rest_is_delivered() {
    let schema = "sync_http";
    people_table(schema).await;
    let dir = tempfile::tempdir().unwrap();
    // The API refuses any batch holding Bob (row 2) with a 400; the destination
    // splits the batch down to him.
    let delivered = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = delivered.clone();
    let base_url = http_server(move |body| {
        let batch: Value = serde_json::from_slice(body).unwrap();
        let ids: Vec<String> = batch["batch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["userId"].as_str().unwrap().to_owned())
            .collect();
        if ids.iter().any(|id| id == "2") {
            (400, r#"{"error":"traits.name is not allowed"}"#.to_owned())
        } else {
            record.lock().unwrap().extend(ids);
            (200, "{}".to_owned())
        }
    });
    let extra =
        format!("[destinations.api]\nkind = \"http\"\nbase_url = \"{base_url}\"\napi_key_env = \"API_KEY\"");
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = Runner::new(config(dir.path(), schema, INCREMENTAL, "api", &extra), clock as Arc<dyn Clock>)
        .await
        .unwrap();
    let run = runner.run("people").await.unwrap().record;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.error);
    assert_eq!((run.rows_read, run.calls_delivered, run.row_errors), (3, 2, 1));
    assert_eq!(*delivered.lock().unwrap(), ["1", "3"]);
    let mut csv = csv::Reader::from_path(run.row_errors_file.unwrap()).unwrap();
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!((&rows[0][0], &rows[0][2]), ("2", "rejected"));
    assert!(rows[0][3].contains("400") && rows[0][3].contains("not allowed"), "{:?}", rows[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_windows_give_identical_message_ids() {
    let schema = "sync_overlap";
    people_table(schema).await;
    let dir = tempfile::tempdir().unwrap();
    // Reads an hour back from last_sync_time: the second run sees the same rows.
    let query = r#"SELECT id AS "userId", name, updated_at AS timestamp FROM {schema}.people
        WHERE updated_at > to_timestamp({{last_sync_time}} - 3600) ORDER BY id"#;
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T09:30:00Z")));
    let runner = Runner::new(config(dir.path(), schema, query, "out", ""), clock.clone() as Arc<dyn Clock>)
        .await
        .unwrap();
    assert_eq!(runner.run("people").await.unwrap().record.rows_read, 3);
    clock.set(ts("2026-11-23T09:45:00Z"));
    assert_eq!(runner.run("people").await.unwrap().record.rows_read, 3);
    let sent = calls(dir.path());
    let ids: Vec<&str> = sent.iter().map(|c| c["messageId"].as_str().unwrap()).collect();
    assert_eq!(ids[..3], ids[3..], "the same rows get the same messageIds");
    let distinct: std::collections::BTreeSet<&str> = ids[..3].iter().copied().collect();
    assert_eq!(distinct.len(), 3);
    // A changed value gives another id.
    sql(&format!("UPDATE {schema}.people SET name = 'Ada Lovelace' WHERE id = 1")).await;
    clock.set(ts("2026-11-23T10:00:00Z"));
    runner.run("people").await.unwrap();
    let sent = calls(dir.path());
    assert_ne!(sent[6]["messageId"], sent[0]["messageId"]);
    assert_eq!(sent[7]["messageId"], sent[1]["messageId"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_due_while_a_slow_query_is_going_is_skipped() {
    let schema = "sync_slow";
    people_table(schema).await;
    let dir = tempfile::tempdir().unwrap();
    let query = r#"SELECT id AS "userId", pg_sleep(1.5)::text AS slept FROM {schema}.people
        WHERE updated_at > to_timestamp({{last_sync_time}}) AND id = 1"#;
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = Arc::new(
        Runner::new(config(dir.path(), schema, query, "out", ""), clock.clone() as Arc<dyn Clock>)
            .await
            .unwrap(),
    );
    let mut scheduler = Scheduler::new(runner.clone());
    assert!(scheduler.tick().await.unwrap().is_empty(), "the first run starts");
    tokio::time::sleep(Duration::from_millis(200)).await;
    clock.set(ts("2026-11-23T10:01:00Z")); // due again while the query sleeps
    let skipped = scheduler.tick().await.unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].outcome, Outcome::Skipped);
    // A run started by hand meanwhile (cron) is skipped too.
    assert_eq!(runner.run("people").await.unwrap().record.outcome, Outcome::Skipped);
    let finished = scheduler.wait_idle().await.unwrap();
    assert_eq!((finished[0].outcome, finished[0].rows_read), (Outcome::Succeeded, 1));
    let outcomes: BTreeMap<u64, Outcome> =
        runner.history("people").unwrap().iter().map(|r| (r.run, r.outcome)).collect();
    assert_eq!(outcomes.values().filter(|o| **o == Outcome::Skipped).count(), 2);
    assert_eq!(outcomes.values().filter(|o| **o == Outcome::Succeeded).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_read_ahead_in_batches_keep_their_order() {
    // Many batches of rows (the run reads ahead on a task of its own): every row
    // arrives, in the query's order.
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let many = r#"SELECT i AS "userId", 'n' || i AS name FROM generate_series(1, 5000) AS i ORDER BY i"#;
    let runner =
        Runner::new(config(dir.path(), "unused", many, "out", ""), clock as Arc<dyn Clock>).await.unwrap();
    let record = runner.run("people").await.unwrap().record;
    assert_eq!((record.outcome, record.rows_read, record.calls_delivered), (Outcome::Succeeded, 5000, 5000));
    let sent = calls(dir.path());
    let ids: Vec<&str> = sent.iter().map(|c| c["userId"].as_str().unwrap()).collect();
    let names: Vec<&str> = sent.iter().map(|c| c["traits"]["name"].as_str().unwrap()).collect();
    assert_eq!(ids, (1..=5000).map(|i| i.to_string()).collect::<Vec<_>>());
    assert_eq!(names, (1..=5000).map(|i| format!("n{i}")).collect::<Vec<_>>());
}

/// Active queries on the test server whose text holds `marker` (other than this one).
async fn active_queries(marker: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' \
             AND query LIKE '%' || $1 || '%'",
            &[&marker],
        )
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_run_stops_reading_and_cancels_the_query() {
    // A query that sends a row a millisecond for 100 s; the run is dropped after 1.5 s
    // (its rows are read on a task of its own, which must stop too).
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let slow = r#"SELECT /* cdp_dropped_run */ i AS "userId" FROM generate_series(1, 100000) AS i,
        LATERAL (SELECT pg_sleep(0.001 + 0 * i)) AS s"#;
    let runner =
        Runner::new(config(dir.path(), "unused", slow, "out", ""), clock as Arc<dyn Clock>).await.unwrap();
    {
        let run = runner.run("people");
        tokio::pin!(run);
        let going = tokio::select! {
            ended = &mut run => panic!("the slow run should still be going after 1.5 s: {ended:?}"),
            going = async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                active_queries("cdp_dropped_run").await
            } => going,
        };
        assert_eq!(going, 1, "the slow run's query should be running on the server");
    } // The run is dropped here.
    let mut left = i64::MAX;
    for _ in 0..100 {
        left = active_queries("cdp_dropped_run").await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "the dropped run's query is still running on the server after 5 s");
}
