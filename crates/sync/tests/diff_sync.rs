//! Diff syncs (`mode = "diff"`) end to end: inserts, updates and deletes send exactly
//! the added, changed and delete calls; an unchanged table sends nothing; a failed
//! run (the destination failing halfway) or a crash before the snapshot is replaced
//! sends the same changes again, with the same `messageId`s; duplicate and NULL keys
//! are row errors; mapping errors are not deletes; previews change nothing; the
//! bucket destination publishes a run's changes as its position.
//!
//! The scenario runs on SQLite and on PostgreSQL (the latter needs the server `bash
//! .ci/test` starts, which sets `CDP_TEST_POSTGRES_URL`; without it that test fails).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cdp_bucket::{Clock, ManualClock};
use cdp_sync::{Config, Outcome, RunErrorKind, Runner};
use serde_json::Value;

fn ts(s: &str) -> cdp_calls::Timestamp {
    s.parse().unwrap()
}

/// Where the test table lives.
enum Db {
    /// An SQLite file (its schema is `main`).
    Sqlite(PathBuf),
    /// A schema of its own on the PostgreSQL test server.
    #[cfg(feature = "postgres")]
    Postgres(String),
}

impl Db {
    async fn exec(&self, sql: &str) {
        match self {
            Db::Sqlite(path) => rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap(),
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => {
                let (client, connection) =
                    tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                client.batch_execute(sql).await.unwrap();
            }
        }
    }

    fn schema(&self) -> &str {
        match self {
            Db::Sqlite(_) => "main",
            #[cfg(feature = "postgres")]
            Db::Postgres(schema) => schema,
        }
    }

    fn source(&self) -> String {
        match self {
            Db::Sqlite(_) => "kind = \"sqlite\"\npath = \"app.sqlite\"".into(),
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => format!("kind = \"postgres\"\nurl = \"{}\"", postgres_url()),
        }
    }

    async fn sqlite(dir: &Path) -> Db {
        let db = Db::Sqlite(dir.join("app.sqlite"));
        db.exec("CREATE TABLE people (id INTEGER, email TEXT, plan TEXT, seen TEXT);").await;
        db
    }
}

#[cfg(feature = "postgres")]
fn postgres_url() -> String {
    std::env::var("CDP_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "CDP_TEST_POSTGRES_URL is not set: this test needs the PostgreSQL server that `bash .ci/test` \
             installs and starts on loopback. Run it with `bash .ci/test`."
        )
    })
}

/// A configuration with the sync `people`: an identify diff sync of `query` (where
/// `S` is the schema) into `destination` (`out`: NDJSON `calls.ndjson`; `lake`: a
/// bucket; `api`: HTTP at `api_url`), with `extra` sync settings.
fn config(dir: &Path, db: &Db, query: &str, destination: &str, extra: &str, api_url: &str) -> Config {
    let query = query.replace("S.", &format!("{}.", db.schema()));
    let text = format!(
        r#"
        state_dir = "state"
        [sources.app]
        {source}
        [destinations.out]
        kind = "ndjson"
        path = "calls.ndjson"
        [destinations.lake]
        kind = "bucket"
        bucket = "bucket"
        format = "json"
        integration = "retl"
        action = "people"
        spool = "spool"
        [destinations.api]
        kind = "http"
        base_url = "{api_url}"
        api_key_env = "API_KEY"
        [[syncs]]
        name = "people"
        type = "identify"
        source = "app"
        destination = "{destination}"
        query = '''{query}'''
        every = "10m"
        mode = "diff"
        primary_key = "userId"
        {extra}
        "#,
        source = db.source(),
    );
    let env = |name: &str| (name == "API_KEY").then(|| "key".to_owned());
    Config::parse(&text, dir, &env).unwrap()
}

const PEOPLE: &str = "SELECT id AS userId, email, plan, seen AS timestamp FROM S.people ORDER BY id";

async fn runner(config: Config, clock: &Arc<ManualClock>) -> Runner {
    Runner::new(config, clock.clone() as Arc<dyn Clock>).await.unwrap()
}

/// The NDJSON calls delivered so far.
fn delivered(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("calls.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What a call says, short: `identify 2 pro`, `track 3 User Deleted`.
fn summary(call: &Value) -> String {
    let user = call["userId"].as_str().unwrap_or("-");
    match call["type"].as_str().unwrap() {
        "identify" => format!("identify {user} {}", call["traits"]["plan"].as_str().unwrap_or("-")),
        "group" => format!("group {user} {} {}", call["groupId"].as_str().unwrap(), call["traits"]["name"]),
        "track" => format!("track {user} {} {}", call["event"].as_str().unwrap(), call["properties"]),
        other => other.to_owned(),
    }
}

/// Runs the sync; returns its record and the calls it delivered (NDJSON).
async fn run(runner: &Runner, dir: &Path) -> (cdp_sync::RunRecord, Vec<Value>) {
    let before = delivered(dir).len();
    let report = runner.run("people").await.unwrap();
    (report.record, delivered(dir).split_off(before))
}

fn summaries(calls: &[Value]) -> Vec<String> {
    calls.iter().map(summary).collect()
}

fn counts(record: &cdp_sync::RunRecord) -> (Option<u64>, Option<u64>, Option<u64>) {
    (record.added, record.changed, record.deleted)
}

/// Inserts, updates, deletes, and runs in between: exactly the expected calls.
async fn edits_send_exactly_what_changed(dir: &Path, db: &Db) {
    let s = db.schema();
    db.exec(&format!(
        "INSERT INTO {s}.people VALUES (1, 'ada@example.com', 'pro', '2026-11-20T10:00:00Z'),
           (2, 'bob@example.com', 'free', '2026-11-20T10:00:00Z'),
           (3, 'cy@example.com', 'free', '2026-11-20T10:00:00Z');"
    ))
    .await;
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner =
        runner(config(dir, db, PEOPLE, "out", "on_delete = \"event\"", "http://127.0.0.1:9"), &clock).await;

    // First run: every row is new.
    let (record, calls) = run(&runner, dir).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.error);
    assert_eq!(summaries(&calls), ["identify 1 pro", "identify 2 free", "identify 3 free"]);
    assert_eq!((record.rows_read, record.calls_delivered, record.row_errors), (3, 3, 0));
    assert_eq!(counts(&record), (Some(3), Some(0), Some(0)));
    assert!(runner.state().snapshot_path("people").exists());

    // Nothing changed: nothing sent (the calls' messageIds and receivedAt would differ).
    clock.set(ts("2026-11-23T10:10:00Z"));
    let (record, calls) = run(&runner, dir).await;
    assert!(calls.is_empty(), "{calls:?}");
    assert_eq!((record.rows_read, record.calls_delivered), (3, 0));
    assert_eq!(counts(&record), (Some(0), Some(0), Some(0)));

    // An update, a delete and an insert: in key order.
    db.exec(&format!(
        "UPDATE {s}.people SET plan = 'pro' WHERE id = 2;
         DELETE FROM {s}.people WHERE id = 3;
         INSERT INTO {s}.people VALUES (4, 'dee@example.com', 'free', '2026-11-21T10:00:00Z');"
    ))
    .await;
    clock.set(ts("2026-11-23T10:20:00Z"));
    let (record, calls) = run(&runner, dir).await;
    assert_eq!(
        summaries(&calls),
        ["identify 2 pro", "track 3 User Deleted null", "identify 4 free"],
        "{calls:#?}"
    );
    assert_eq!(counts(&record), (Some(1), Some(1), Some(1)));
    assert_eq!(record.calls_delivered, 3);
    // The changed row keeps its timestamp; every call is stamped as received now.
    assert_eq!(calls[0]["timestamp"], "2026-11-20T10:00:00.000Z");
    assert!(calls.iter().all(|c| c["receivedAt"] == "2026-11-23T10:20:00.000Z"), "{calls:#?}");

    // And again: nothing.
    clock.set(ts("2026-11-23T10:30:00Z"));
    let (record, calls) = run(&runner, dir).await;
    assert!(calls.is_empty(), "{calls:?}");
    assert_eq!(counts(&record), (Some(0), Some(0), Some(0)));

    // The history shows the three counts of every run.
    let history: Vec<_> = runner.history("people").unwrap().iter().map(counts).collect();
    assert_eq!(
        history,
        [
            (Some(3), Some(0), Some(0)),
            (Some(0), Some(0), Some(0)),
            (Some(1), Some(1), Some(1)),
            (Some(0), Some(0), Some(0))
        ]
    );
}

#[tokio::test]
async fn sqlite_edits_send_exactly_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path()).await;
    edits_send_exactly_what_changed(dir.path(), &db).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_edits_send_exactly_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Postgres("diff_sync_edits".into());
    db.exec(
        "DROP SCHEMA IF EXISTS diff_sync_edits CASCADE; CREATE SCHEMA diff_sync_edits;
         CREATE TABLE diff_sync_edits.people (id int8 PRIMARY KEY, email text, plan text, seen text);",
    )
    .await;
    edits_send_exactly_what_changed(dir.path(), &db).await;
}

#[tokio::test]
async fn group_syncs_send_object_deleted_with_the_object_type() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Sqlite(dir.path().join("app.sqlite"));
    db.exec(
        "CREATE TABLE companies (id TEXT, owner TEXT, name TEXT, kind INTEGER);
         INSERT INTO companies VALUES ('acme', 'u1', 'Acme', 2), ('bolt', 'u2', 'Bolt', NULL);",
    )
    .await;
    let query = "SELECT id AS groupId, owner AS userId, name, kind AS objectTypeId FROM S.companies";
    let mut config = config(dir.path(), &db, query, "out", "on_delete = \"event\"", "http://127.0.0.1:9");
    config.syncs[0].call_type = cdp_calls::CallType::Group;
    config.syncs[0].mode =
        cdp_sync::SyncMode::Diff { primary_key: "GROUPID".into(), on_delete: cdp_sync::OnDelete::Event };
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = runner(config, &clock).await;
    let (_, calls) = run(&runner, dir.path()).await;
    assert_eq!(summaries(&calls), ["group u1 acme \"Acme\"", "group u2 bolt \"Bolt\""]);
    db.exec("DELETE FROM companies;").await;
    clock.set(ts("2026-11-23T10:10:00Z"));
    let (record, calls) = run(&runner, dir.path()).await;
    assert_eq!(
        summaries(&calls),
        [
            r#"track u1 Object Deleted {"objectId":"acme","objectTypeId":"2"}"#,
            r#"track u2 Object Deleted {"objectId":"bolt","objectTypeId":"1"}"#,
        ]
    );
    assert_eq!(counts(&record), (Some(0), Some(0), Some(2)));
}

#[tokio::test]
async fn with_on_delete_ignore_a_deleted_key_sends_nothing_and_comes_back_as_new() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path()).await;
    db.exec("INSERT INTO people VALUES (1, 'a@x', 'pro', NULL), (2, 'b@x', 'free', NULL);").await;
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = runner(config(dir.path(), &db, PEOPLE, "out", "", "http://127.0.0.1:9"), &clock).await;
    assert_eq!(run(&runner, dir.path()).await.1.len(), 2);
    db.exec("DELETE FROM people WHERE id = 2;").await;
    let (record, calls) = run(&runner, dir.path()).await;
    assert!(calls.is_empty(), "{calls:?}");
    assert_eq!(counts(&record), (Some(0), Some(0), Some(1)));
    db.exec("INSERT INTO people VALUES (2, 'b@x', 'free', NULL);").await;
    let (record, calls) = run(&runner, dir.path()).await;
    assert_eq!(summaries(&calls), ["identify 2 free"]);
    assert_eq!(counts(&record), (Some(1), Some(0), Some(0)));
}

#[tokio::test]
async fn duplicate_and_null_keys_are_row_errors_and_mapping_errors_are_not_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path()).await;
    db.exec(
        "INSERT INTO people VALUES (1, 'a@x', 'pro', '2026-11-20T10:00:00Z'), (2, 'b@x', 'free', '2026-11-20T10:00:00Z'),
           (3, 'c@x', 'free', '2026-11-20T10:00:00Z'), (3, 'c2@x', 'free', '2026-11-20T10:00:00Z'),
           (NULL, 'n@x', 'free', '2026-11-20T10:00:00Z');",
    )
    .await;
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let query = "SELECT id AS userId, email, plan, seen AS timestamp FROM S.people ORDER BY rowid";
    let runner =
        runner(config(dir.path(), &db, query, "out", "on_delete = \"event\"", "http://127.0.0.1:9"), &clock)
            .await;
    let (record, calls) = run(&runner, dir.path()).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.error);
    assert_eq!(summaries(&calls), ["identify 1 pro", "identify 2 free"]);
    assert_eq!((record.rows_read, record.calls_delivered, record.row_errors), (5, 2, 3));
    let csv = std::fs::read_to_string(record.row_errors_file.as_ref().expect("a row-error file")).unwrap();
    let mut reasons: Vec<(String, String, String)> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_owned(), r[2].to_owned(), r[3].to_owned())
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{csv}");
    assert_eq!((reasons[0].0.as_str(), reasons[0].1.as_str()), ("3", "duplicate_key"), "{csv}");
    assert!(reasons[0].2.contains("`userId` is also on row 4"), "{csv}");
    assert_eq!((reasons[1].0.as_str(), reasons[1].1.as_str()), ("4", "duplicate_key"), "{csv}");
    assert!(reasons[1].2.contains("also on row 3"), "{csv}");
    // A NULL userId cannot make an identify call at all: the mapping's row error.
    assert_eq!((reasons[2].0.as_str(), reasons[2].1.as_str()), ("5", "missing_identity"), "{csv}");

    // Row 2 now fails to map (a timestamp that is not one): a row error, not a delete.
    db.exec("UPDATE people SET seen = 'garbage' WHERE id = 2; DELETE FROM people WHERE email = 'c2@x';")
        .await;
    clock.set(ts("2026-11-23T10:10:00Z"));
    let (record, calls) = run(&runner, dir.path()).await;
    assert_eq!(summaries(&calls), ["identify 3 free"], "the duplicate was fixed: now sent");
    assert_eq!(counts(&record), (Some(1), Some(0), Some(0)));
    assert_eq!(record.row_errors, 2, "row 2's timestamp and the NULL key");

    // Row 2 fixed as it was: nothing to send (its snapshot entry was kept).
    db.exec("UPDATE people SET seen = '2026-11-20T10:00:00Z' WHERE id = 2;").await;
    clock.set(ts("2026-11-23T10:20:00Z"));
    let (record, calls) = run(&runner, dir.path()).await;
    assert!(calls.is_empty(), "{calls:?}");
    assert_eq!(counts(&record), (Some(0), Some(0), Some(0)));
}

#[tokio::test]
async fn a_null_or_empty_key_in_another_column_is_a_missing_key_row_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path()).await;
    db.exec(
        "INSERT INTO people VALUES (1, 'a@x', 'pro', NULL), (2, NULL, 'free', NULL), (3, '', 'free', NULL);",
    )
    .await;
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let mut config = config(dir.path(), &db, PEOPLE, "out", "", "http://127.0.0.1:9");
    config.syncs[0].mode =
        cdp_sync::SyncMode::Diff { primary_key: "email".into(), on_delete: cdp_sync::OnDelete::Ignore };
    let runner = runner(config, &clock).await;
    let (record, calls) = run(&runner, dir.path()).await;
    assert_eq!(summaries(&calls), ["identify 1 pro"]);
    assert_eq!((record.outcome, record.row_errors, record.added), (Outcome::Succeeded, 2, Some(1)));
    let csv = std::fs::read_to_string(record.row_errors_file.unwrap()).unwrap();
    let codes: Vec<String> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| format!("{} {}", &r.as_ref().unwrap()[0], &r.as_ref().unwrap()[2]))
        .collect();
    assert_eq!(codes, ["2 missing_key", "3 missing_key"], "{csv}");
    assert!(csv.contains("the primary key `email` is NULL or empty"), "{csv}");
}

#[tokio::test]
async fn a_primary_key_that_is_not_a_column_is_found_at_setup_and_costs_no_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path()).await;
    db.exec("INSERT INTO people VALUES (1, 'a@x', 'pro', NULL);").await;
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let mut config = config(dir.path(), &db, PEOPLE, "out", "", "http://127.0.0.1:9");
    config.syncs[0].mode =
        cdp_sync::SyncMode::Diff { primary_key: "id".into(), on_delete: cdp_sync::OnDelete::Ignore };
    let runner = runner(config, &clock).await;
    let error = runner.setup_error("people").expect("not set up");
    assert!(error.is_setup_error() && error.sync() == Some("people"), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("`id`") && message.contains("userId, email, plan, timestamp"), "{message}");
    assert!(matches!(runner.run("people").await, Err(cdp_sync::RunnerError::PrimaryKey { .. })));
    assert!(matches!(runner.preview("people", 5).await, Err(cdp_sync::RunnerError::PrimaryKey { .. })));
    assert!(runner.history("people").unwrap().is_empty(), "no run recorded");
    assert!(!runner.state().snapshot_path("people").exists());
}

#[tokio::test]
async fn a_diff_syncs_query_is_not_warned_about_last_sync_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path()).await;
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = runner(config(dir.path(), &db, PEOPLE, "out", "", "http://127.0.0.1:9"), &clock).await;
    assert!(runner.warnings("people").is_empty(), "{:?}", runner.warnings("people"));
    runner.shutdown().await.unwrap();
    let mut cursor = config(dir.path(), &db, PEOPLE, "out", "", "http://127.0.0.1:9");
    cursor.syncs[0].mode = cdp_sync::SyncMode::Cursor;
    let runner = Runner::new(cursor, clock.clone() as Arc<dyn Clock>).await.unwrap();
    assert!(runner.warnings("people").iter().any(|w| w.message().contains("last_sync_time")));
}

/// A copy of the sync's state files (snapshot and state), to put back.
fn save_state(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    ["state/people/snapshot.diff", "state/people/state.json"]
        .iter()
        .map(|p| (dir.join(p), std::fs::read(dir.join(p)).unwrap()))
        .collect()
}

#[tokio::test]
async fn a_crash_before_the_snapshot_is_replaced_sends_the_same_changes_with_the_same_message_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path()).await;
    db.exec(
        "INSERT INTO people VALUES (1, 'a@x', 'pro', '2026-11-20T10:00:00Z'), (2, 'b@x', 'free', '2026-11-20T10:00:00Z'),
           (3, 'c@x', 'free', '2026-11-20T10:00:00Z');",
    )
    .await;
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner =
        runner(config(dir.path(), &db, PEOPLE, "out", "on_delete = \"event\"", "http://127.0.0.1:9"), &clock)
            .await;
    run(&runner, dir.path()).await;
    db.exec(
        "UPDATE people SET plan = 'pro' WHERE id = 2; DELETE FROM people WHERE id = 3;
         INSERT INTO people VALUES (4, 'd@x', 'free', '2026-11-21T10:00:00Z');",
    )
    .await;
    let saved = save_state(dir.path());
    clock.set(ts("2026-11-23T10:10:00Z"));
    let (_, first) = run(&runner, dir.path()).await;
    assert_eq!(first.len(), 3);
    // The process "died" after delivering, before the snapshot and state were replaced.
    for (path, bytes) in &saved {
        std::fs::write(path, bytes).unwrap();
    }
    clock.set(ts("2026-11-23T10:20:00Z"));
    let (_, again) = run(&runner, dir.path()).await;
    let ids = |calls: &[Value]| {
        calls.iter().map(|c| c["messageId"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(summaries(&again), summaries(&first));
    assert_eq!(ids(&again), ids(&first), "rows with a timestamp and delete events keep their messageIds");
    // Once committed, nothing more.
    clock.set(ts("2026-11-23T10:30:00Z"));
    assert!(run(&runner, dir.path()).await.1.is_empty());
}

/// An HTTP API that answers the first `ok_first` batches with 200 and the others
/// with 500 until `healed` is set; keeps the messageIds of the batches it took.
struct Api {
    url: String,
    taken: Arc<std::sync::Mutex<Vec<String>>>,
    requests: Arc<AtomicUsize>,
    healed: Arc<std::sync::atomic::AtomicBool>,
}

fn api(ok_first: usize) -> Api {
    let taken = Arc::new(std::sync::Mutex::new(Vec::new()));
    let requests = Arc::new(AtomicUsize::new(0));
    let healed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (t, r, h) = (taken.clone(), requests.clone(), healed.clone());
    let url = common::http_server(move |body| {
        let n = r.fetch_add(1, Ordering::SeqCst);
        if n >= ok_first && !h.load(Ordering::SeqCst) {
            return (500, r#"{"error":"boom"}"#.to_owned());
        }
        let batch: Value = serde_json::from_slice(body).unwrap();
        let mut taken = t.lock().unwrap();
        for call in batch["batch"].as_array().unwrap() {
            taken.push(call["messageId"].as_str().unwrap().to_owned());
        }
        (200, "{}".to_owned())
    });
    Api { url, taken, requests, healed }
}

#[tokio::test]
async fn a_destination_failing_halfway_leaves_the_snapshot_and_the_next_run_sends_the_same_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path()).await;
    // 40 rows of about 20 KB: two or more HTTP batches of at most 475,000 bytes.
    let filler = "x".repeat(20_000);
    let mut insert = String::from("INSERT INTO people VALUES ");
    for id in 1..=40 {
        insert.push_str(&format!(
            "{}({id}, '{filler}', 'pro', '2026-11-20T10:00:00Z')",
            if id > 1 { "," } else { "" }
        ));
    }
    db.exec(&format!("{insert};")).await;
    let api = api(1);
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = runner(config(dir.path(), &db, PEOPLE, "api", "", &api.url), &clock)
        .await
        .with_http_retries(2, Duration::from_millis(5));
    let report = runner.run("people").await.unwrap();
    assert_eq!(report.record.outcome, Outcome::Failed);
    assert_eq!(report.record.error_kind, Some(RunErrorKind::Destination));
    assert_eq!((report.record.added, report.record.changed, report.record.deleted), (None, None, None));
    let first: Vec<String> = api.taken.lock().unwrap().clone();
    assert!(
        !first.is_empty() && first.len() < 40,
        "the first batch went through, then it failed: {}",
        first.len()
    );
    assert!(!runner.state().snapshot_path("people").exists(), "no snapshot before a run succeeds");

    api.healed.store(true, Ordering::SeqCst);
    clock.set(ts("2026-11-23T10:10:00Z"));
    let report = runner.run("people").await.unwrap();
    assert_eq!(report.record.outcome, Outcome::Succeeded, "{:?}", report.record.error);
    assert_eq!((report.record.calls_delivered, report.record.added), (40, Some(40)));
    let all: Vec<String> = api.taken.lock().unwrap().clone();
    let second: BTreeSet<&String> = all[first.len()..].iter().collect();
    assert_eq!(second.len(), 40);
    assert!(first.iter().all(|id| second.contains(id)), "the same changes, with the same messageIds");

    // A change, with the API failing again: the snapshot stays, the change comes again.
    let snapshot = std::fs::read(runner.state().snapshot_path("people")).unwrap();
    db.exec("UPDATE people SET plan = 'free' WHERE id = 7;").await;
    api.healed.store(false, Ordering::SeqCst);
    clock.set(ts("2026-11-23T10:20:00Z"));
    let report = runner.run("people").await.unwrap();
    assert_eq!(report.record.outcome, Outcome::Failed);
    assert_eq!(
        std::fs::read(runner.state().snapshot_path("people")).unwrap(),
        snapshot,
        "the snapshot is kept"
    );
    api.healed.store(true, Ordering::SeqCst);
    clock.set(ts("2026-11-23T10:30:00Z"));
    let before = api.taken.lock().unwrap().len();
    let report = runner.run("people").await.unwrap();
    assert_eq!((report.record.calls_delivered, report.record.changed), (1, Some(1)));
    assert_eq!(api.taken.lock().unwrap().len(), before + 1);
    assert!(api.requests.load(Ordering::SeqCst) > 3);
}

#[tokio::test]
async fn a_preview_shows_the_changes_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path()).await;
    db.exec("INSERT INTO people VALUES (1, 'a@x', 'pro', NULL), (2, 'b@x', 'free', NULL), (3, 'c@x', 'free', NULL);")
        .await;
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner =
        runner(config(dir.path(), &db, PEOPLE, "out", "on_delete = \"event\"", "http://127.0.0.1:9"), &clock)
            .await;
    // Before the first run: every row would be added.
    let preview = runner.preview("people", 2).await.unwrap();
    let diff = preview.diff.as_ref().expect("a diff preview");
    assert_eq!((diff.added, diff.changed, diff.deleted), (3, 0, 0));
    assert_eq!(diff.added_calls.len(), 2, "the first 2 of each");
    assert!(!runner.state().snapshot_path("people").exists(), "no snapshot written");
    run(&runner, dir.path()).await;
    let snapshot = std::fs::read(runner.state().snapshot_path("people")).unwrap();
    db.exec(
        "UPDATE people SET plan = 'pro' WHERE id = 2; DELETE FROM people WHERE id = 3;
         INSERT INTO people VALUES (4, 'd@x', 'free', NULL), (5, 'e@x', 'free', NULL);",
    )
    .await;
    let delivered_before = delivered(dir.path()).len();
    let preview = runner.preview("people", 10).await.unwrap();
    let diff = preview.diff.as_ref().expect("a diff preview");
    assert_eq!((diff.added, diff.changed, diff.deleted, diff.unchanged), (2, 1, 1, 1));
    assert_eq!(diff.added_calls.iter().map(|c| c.user_id.clone().unwrap()).collect::<Vec<_>>(), ["4", "5"]);
    assert_eq!(diff.changed_calls[0].user_id.as_deref(), Some("2"));
    assert_eq!(diff.deleted_keys, ["3"]);
    assert_eq!(diff.deleted_calls[0].event(), Some("User Deleted"));
    assert_eq!(preview.calls.len(), 4);
    assert_eq!(delivered(dir.path()).len(), delivered_before, "nothing delivered");
    assert_eq!(
        std::fs::read(runner.state().snapshot_path("people")).unwrap(),
        snapshot,
        "the snapshot is untouched"
    );
    assert_eq!(runner.history("people").unwrap().len(), 1, "no run recorded");
    // The run then sends what the preview showed.
    let (_, calls) = run(&runner, dir.path()).await;
    assert_eq!(
        summaries(&calls),
        ["identify 2 pro", "track 3 User Deleted null", "identify 4 free", "identify 5 free"]
    );
}

#[tokio::test]
async fn a_bucket_destination_publishes_a_diff_runs_changes_as_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path()).await;
    db.exec("INSERT INTO people VALUES (1, 'a@x', 'pro', NULL), (2, 'b@x', 'free', NULL), (3, 'c@x', 'free', NULL);")
        .await;
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = runner(config(dir.path(), &db, PEOPLE, "lake", "", "http://127.0.0.1:9"), &clock).await;
    assert_eq!(runner.run("people").await.unwrap().record.calls_delivered, 3);
    db.exec("UPDATE people SET plan = 'pro' WHERE id = 3;").await;
    clock.set(ts("2026-11-23T10:10:00Z"));
    let record = runner.run("people").await.unwrap().record;
    assert_eq!((record.calls_delivered, record.changed), (1, Some(1)));
    runner.shutdown().await.unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("bucket"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["retl.people.1.identify.json", "retl.people.2.identify.json"]);
    let second = std::fs::read_to_string(dir.path().join("bucket/retl.people.2.identify.json")).unwrap();
    let rows: Vec<Value> = second.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["user_id"], "3");
}

mod property {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// One edit of the table: set key `k`'s plan to `v` (insert or update), or delete it.
    #[derive(Debug, Clone)]
    enum Edit {
        Set(u8, u8),
        Delete(u8),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![(0u8..8, 0u8..3).prop_map(|(k, v)| Edit::Set(k, v)), (0u8..8).prop_map(Edit::Delete)]
    }

    /// The calls a run should send going from the table `old` to `new`: the set
    /// difference of the two, as summaries.
    fn expected(old: &BTreeMap<u8, u8>, new: &BTreeMap<u8, u8>) -> BTreeSet<String> {
        let mut calls = BTreeSet::new();
        for (k, v) in new {
            if old.get(k) != Some(v) {
                calls.insert(format!("identify {k} plan{v}"));
            }
        }
        for k in old.keys().filter(|k| !new.contains_key(k)) {
            calls.insert(format!("track {k} User Deleted null"));
        }
        calls
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// For random sequences of table edits, each run sends exactly the set
        /// difference of the table at the last run and the table now.
        #[test]
        fn the_calls_sent_are_the_difference_of_consecutive_tables(
            steps in proptest::collection::vec(proptest::collection::vec(edit(), 0..6), 1..5)
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let db = Db::sqlite(dir.path()).await;
                let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
                let runner = runner(
                    config(dir.path(), &db, PEOPLE, "out", "on_delete = \"event\"", "http://127.0.0.1:9"),
                    &clock,
                )
                .await;
                let mut table = BTreeMap::new();
                let mut last = BTreeMap::new();
                for (i, edits) in steps.iter().enumerate() {
                    for edit in edits {
                        match *edit {
                            Edit::Set(k, v) => {
                                db.exec(&format!("DELETE FROM people WHERE id = {k};
                                    INSERT INTO people VALUES ({k}, 'p{k}@x', 'plan{v}', NULL);")).await;
                                table.insert(k, v);
                            }
                            Edit::Delete(k) => {
                                db.exec(&format!("DELETE FROM people WHERE id = {k};")).await;
                                table.remove(&k);
                            }
                        }
                    }
                    clock.set(ts("2026-11-23T10:00:00Z").checked_add_micros(600_000_000 * (i as i64 + 1)).unwrap());
                    let (record, calls) = run(&runner, dir.path()).await;
                    prop_assert_eq!(record.outcome, Outcome::Succeeded);
                    let sent: BTreeSet<String> = summaries(&calls).into_iter().collect();
                    prop_assert_eq!(sent.len(), calls.len(), "no call twice");
                    prop_assert_eq!(&sent, &expected(&last, &table), "step {}", i);
                    last = table.clone();
                }
                Ok(())
            })?;
        }
    }
}

mod unreadable {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use cdp_query::Dialect;
    use cdp_rows::{Columns, Value as RowValue};
    use cdp_source::{RowStream, Source, SourceError};

    use super::*;

    /// A source whose rows the test sets: `Some(id)` is a row `(userId)`, `None` a
    /// row whose value the source cannot read.
    #[derive(Debug, Default)]
    struct Rows(Mutex<Vec<Option<&'static str>>>);

    #[async_trait]
    impl Source for Rows {
        fn name(&self) -> &str {
            "app"
        }

        fn dialect(&self) -> Dialect {
            Dialect::SQLite
        }

        async fn query(&self, _sql: &str) -> Result<RowStream, SourceError> {
            let rows: Vec<_> = self
                .0
                .lock()
                .unwrap()
                .iter()
                .enumerate()
                .map(|(i, row)| match row {
                    Some(id) => Ok(vec![RowValue::from(*id)]),
                    None => Err(SourceError::Value {
                        source_name: "app".into(),
                        row: i as u64 + 1,
                        column: "userId".into(),
                        column_index: 0,
                        type_name: "mystery".into(),
                        reason: "cannot be read".into(),
                    }),
                })
                .collect();
            Ok(RowStream::new("app", Columns::new(["userId"]), futures::stream::iter(rows)))
        }

        async fn columns(&self, _sql: &str) -> Result<Vec<String>, SourceError> {
            Ok(vec!["userId".to_owned()])
        }
    }

    #[tokio::test]
    async fn with_unreadable_rows_no_delete_event_is_sent_and_the_snapshot_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::Sqlite(dir.path().join("app.sqlite"));
        let rows = Arc::new(Rows::default());
        *rows.0.lock().unwrap() = vec![Some("u1"), Some("u2"), Some("u3")];
        let config = config(
            dir.path(),
            &db,
            "SELECT userId FROM t",
            "out",
            "on_delete = \"event\"",
            "http://127.0.0.1:9",
        );
        let sources = BTreeMap::from([("app".to_owned(), rows.clone() as Arc<dyn Source>)]);
        let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
        let runner = Runner::with_sources(config, clock.clone() as Arc<dyn Clock>, sources).await.unwrap();
        assert_eq!(run(&runner, dir.path()).await.1.len(), 3);
        let snapshot = std::fs::read(runner.state().snapshot_path("people")).unwrap();

        // u2 is unreadable (its key unknown), u3 is gone, u4 is new: no delete event
        // (u3 might be the unreadable row); the run fails as a destination failure
        // would (the NDJSON destination is not finished), and the snapshot stays.
        *rows.0.lock().unwrap() = vec![Some("u1"), None, Some("u4")];
        clock.set(ts("2026-11-23T10:10:00Z"));
        let (record, calls) = run(&runner, dir.path()).await;
        assert!(!summaries(&calls).iter().any(|c| c.contains("Deleted")), "{calls:?}");
        assert_eq!((record.outcome, record.error_kind), (Outcome::Failed, Some(RunErrorKind::Diff)));
        assert!(record.error.as_deref().unwrap().contains("no delete event was sent"), "{:?}", record.error);
        assert_eq!((record.row_errors, record.deleted), (1, None));
        assert_eq!(std::fs::read(runner.state().snapshot_path("people")).unwrap(), snapshot);

        // Readable again: u2 is unchanged, u3's delete and u4 are sent.
        *rows.0.lock().unwrap() = vec![Some("u1"), Some("u2"), Some("u4")];
        clock.set(ts("2026-11-23T10:20:00Z"));
        let (record, calls) = run(&runner, dir.path()).await;
        assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.error);
        assert_eq!(summaries(&calls), ["track u3 User Deleted null", "identify u4 -"]);
    }
}
