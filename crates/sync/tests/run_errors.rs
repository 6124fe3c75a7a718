//! Typed run failures and sync setup, on the embedded SQLite source (and a test HTTP
//! server): each kind of failure comes back as a `RunError` and is recorded in the
//! history with its kind next to its message; history files written before kinds
//! were recorded still read; column conflicts are found when a sync is set up, from
//! the result's column names without reading a row, and cost no failed run; a sync
//! that is not set up does not stop the others.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cdp_bucket::{Clock, ManualClock};
use cdp_query::Dialect;
use cdp_rows::{Columns, SyncError, Value};
use cdp_source::{RowStream, Source, SourceError};
use cdp_sync::{
    Config, DestinationError, Outcome, RunError, RunErrorKind, RunRecord, Runner, RunnerError, Scheduler,
};

fn ts(s: &str) -> cdp_calls::Timestamp {
    s.parse().unwrap()
}

/// A SQLite database of three people; `updated_at` in Unix seconds.
fn database(dir: &Path) {
    let db = rusqlite::Connection::open(dir.join("app.sqlite")).unwrap();
    db.execute_batch(
        "CREATE TABLE people (id INTEGER, email TEXT, updated_at INTEGER);
         INSERT INTO people VALUES (1, 'ada@example.com', 1763888400),
                                   (2, 'bob@example.com', 1763888400),
                                   (3, 'cy@example.com', 1763888400);",
    )
    .unwrap();
}

/// A configuration with a sync `people` running `query` into `destination` (`out`:
/// NDJSON; `api`: the HTTP API at `api_url`), and a sync `others` that always works.
fn config(dir: &Path, query: &str, destination: &str, api_url: &str) -> Config {
    let text = format!(
        r#"
        state_dir = "state"
        [sources.app]
        kind = "sqlite"
        path = "app.sqlite"
        [destinations.out]
        kind = "ndjson"
        path = "calls.ndjson"
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
        [[syncs]]
        name = "others"
        type = "identify"
        source = "app"
        destination = "out"
        query = "SELECT id AS userId, email FROM people WHERE updated_at > {{{{last_sync_time}}}}"
        every = "10m"
        "#
    );
    let env = |name: &str| (name == "API_KEY").then(|| "secret-key".to_owned());
    Config::parse(&text, dir, &env).unwrap()
}

const QUERY: &str =
    "SELECT id AS userId, email FROM people WHERE updated_at > {{last_sync_time}} ORDER BY id";

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")))
}

async fn runner(dir: &Path, query: &str) -> Runner {
    Runner::new(config(dir, query, "out", "http://127.0.0.1:9/v1"), clock() as Arc<dyn Clock>).await.unwrap()
}

/// The record of run `run` of `sync` as it is on disk, as JSON.
fn record_json(dir: &Path, sync: &str, run: u64) -> serde_json::Value {
    let path = dir.join("state").join(sync).join("runs").join(format!("{run:08}.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Checks what a failed run left: the typed error's kind, the record's kind and
/// message, the history file, and `last_sync_time` unmoved.
fn assert_failed(dir: &Path, runner: &Runner, record: &RunRecord, error: &RunError, kind: RunErrorKind) {
    assert_eq!(record.outcome, Outcome::Failed, "{record:?}");
    assert_eq!(error.kind(), kind, "{error:?}");
    assert_eq!(record.error_kind, Some(kind));
    assert_eq!(record.error.as_deref(), Some(error.to_string().as_str()));
    let history = runner.history("people").unwrap();
    assert_eq!(history.last(), Some(record), "the history holds the record");
    let on_disk = record_json(dir, "people", record.run);
    assert_eq!(on_disk["error_kind"], kind.as_str(), "{on_disk}");
    assert_eq!(on_disk["error"], record.error.as_deref().unwrap());
    assert_eq!(runner.state().load("people").unwrap().last_sync_time, 0, "last_sync_time stays");
}

#[tokio::test]
async fn a_query_that_cannot_be_rendered_for_the_run_is_a_render_failure() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let query = "SELECT id AS userId, email FROM people WHERE updated_at > '{{last_sync_time_iso}}'";
    let runner = runner(dir.path(), query).await;
    // A state whose last_sync_time RFC 3339 cannot write (past the year 9999).
    let mut state = runner.state().load("people").unwrap();
    state.last_sync_time = 300_000_000_000;
    runner.state().save("people", &state).unwrap();
    let report = runner.run("people").await.unwrap();
    let error = report.error.as_ref().expect("failed");
    assert!(matches!(error, RunError::Render(_)), "{error:?}");
    assert!(report.record.error.as_deref().unwrap().contains("last_sync_time_iso"), "{:?}", report.record);
    assert_eq!(report.record.error_kind, Some(RunErrorKind::Render));
    assert_eq!(record_json(dir.path(), "people", 1)["error_kind"], "render");
    assert_eq!(runner.state().load("people").unwrap().last_sync_time, 300_000_000_000);
}

#[tokio::test]
async fn a_source_error_mid_stream_is_a_source_failure() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    // SQLite fails on the third row (an integer overflow) after two rows went out (no
    // ORDER BY: a sort would compute every row before the first).
    let query = "SELECT id AS userId, email, CASE WHEN id = 3 THEN abs(-9223372036854775808) END AS boom \
                 FROM people WHERE updated_at > {{last_sync_time}}";
    let runner = runner(dir.path(), query).await;
    assert!(runner.setup_error("people").is_none());
    let report = runner.run("people").await.unwrap();
    let error = report.error.as_ref().expect("failed");
    match error {
        RunError::Source(source) => {
            assert!(matches!(**source, SourceError::Query { rows_read: 2, .. }), "{source:?}");
            assert!(source.to_string().contains("integer overflow"), "{source}");
        }
        other => panic!("expected a source error, got {other:?}"),
    }
    assert_eq!(report.record.rows_read, 2);
    assert_failed(dir.path(), &runner, &report.record, error, RunErrorKind::Source);
}

#[tokio::test]
async fn columns_that_stop_mapping_after_setup_are_a_mapping_failure() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let runner = runner(dir.path(), "SELECT * FROM people WHERE updated_at > {{last_sync_time}}").await;
    assert!(runner.setup_error("people").is_none(), "the columns map when the sync is set up");
    // The table gains a column whose name nests inside another's.
    rusqlite::Connection::open(dir.path().join("app.sqlite"))
        .unwrap()
        .execute_batch("ALTER TABLE people ADD COLUMN \"email.domain\" TEXT")
        .unwrap();
    let report = runner.run("people").await.unwrap();
    let error = report.error.as_ref().expect("failed");
    assert!(matches!(error, RunError::Mapping(SyncError::NestedInsideField { .. })), "{error:?}");
    assert!(error.to_string().contains("email.domain"), "{error}");
    assert_eq!(report.record.rows_read, 0, "found before any row");
    assert_failed(dir.path(), &runner, &report.record, error, RunErrorKind::Mapping);
}

/// An HTTP server that answers every request with `status`; counts the requests.
fn http_server(status: u16, requests: Arc<AtomicUsize>) -> String {
    common::http_server(move |_| {
        requests.fetch_add(1, Ordering::SeqCst);
        (status, r#"{"error":"boom"}"#.to_owned())
    })
}

#[tokio::test]
async fn an_http_destination_answering_500_is_a_destination_failure() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let requests = Arc::new(AtomicUsize::new(0));
    let api_url = http_server(500, requests.clone());
    let runner = Runner::new(config(dir.path(), QUERY, "api", &api_url), clock() as Arc<dyn Clock>)
        .await
        .unwrap()
        .with_http_retries(3, Duration::from_millis(10));
    let report = runner.run("people").await.unwrap();
    let error = report.error.as_ref().expect("failed");
    assert!(
        matches!(error, RunError::Destination(DestinationError::Http { status: Some(500), .. })),
        "{error:?}"
    );
    let message = report.record.error.as_deref().unwrap();
    assert!(message.starts_with("destination api: ") && message.contains("500"), "{message}");
    assert!(!message.contains("secret-key"), "{message}");
    assert_eq!(requests.load(Ordering::SeqCst), 3, "three attempts");
    assert_failed(dir.path(), &runner, &report.record, error, RunErrorKind::Destination);
}

#[tokio::test]
async fn reaching_the_record_cap_is_a_record_cap_failure() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let runner = runner(dir.path(), QUERY).await.with_max_records(2);
    let report = runner.run("people").await.unwrap();
    let error = report.error.as_ref().expect("failed");
    assert!(
        matches!(error, RunError::RecordCap(cap) if cap.limit == 2 && cap.first_row_not_read == 3),
        "{error:?}"
    );
    assert!(error.to_string().contains("cap of 2 records"), "{error}");
    assert_eq!(report.record.rows_read, 2);
    assert_failed(dir.path(), &runner, &report.record, error, RunErrorKind::RecordCap);
    // With room for every row, the same run succeeds.
    let runner = runner.with_max_records(3);
    let report = runner.run("people").await.unwrap();
    assert_eq!((report.record.outcome, report.record.rows_read), (Outcome::Succeeded, 3), "{report:?}");
    assert_eq!((report.error.is_none(), report.record.error_kind), (true, None));
}

#[tokio::test]
async fn a_state_that_cannot_be_saved_is_a_state_failure() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let runner = runner(dir.path(), QUERY).await;
    // The temporary file the new state is written to cannot be created (a directory
    // is in its place; root is not stopped by permissions, this stops anyone).
    let blocker = dir.path().join("state/people/.state.json.tmp");
    std::fs::create_dir_all(blocker.join("x")).unwrap();
    let report = runner.run("people").await.unwrap();
    let error = report.error.as_ref().expect("failed");
    assert!(matches!(error, RunError::State(_)), "{error:?}");
    assert!(error.to_string().contains("could not be saved"), "{error}");
    assert_eq!((report.record.rows_read, report.record.calls_delivered), (3, 3), "the calls went out");
    assert_failed(dir.path(), &runner, &report.record, error, RunErrorKind::State);
    // Once it can be saved, the next run reads the same rows again.
    std::fs::remove_dir_all(&blocker).unwrap();
    let report = runner.run("people").await.unwrap();
    assert_eq!((report.record.outcome, report.record.rows_read), (Outcome::Succeeded, 3));
}

#[tokio::test]
async fn a_skipped_run_is_recorded_with_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let runner = runner(dir.path(), QUERY).await;
    let held = runner.state().try_lock("people").unwrap().expect("free");
    let report = runner.run("people").await.unwrap();
    drop(held);
    assert_eq!(report.record.outcome, Outcome::Skipped);
    assert!(matches!(report.error, Some(RunError::PreviousRunGoing)), "{report:?}");
    assert_eq!(report.record.error_kind, Some(RunErrorKind::PreviousRunGoing));
    assert_eq!(record_json(dir.path(), "people", 1)["error_kind"], "previous_run_going");
}

/// Rows `u1`, `u2`, … one at a time; after `pause_after` rows it waits until told to
/// go on. Its columns come from `columns` (no row).
#[derive(Debug)]
struct Paused {
    pause_after: u64,
    rows: u64,
    go_on: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl Source for Paused {
    fn name(&self) -> &str {
        "paused"
    }

    fn dialect(&self) -> Dialect {
        Dialect::SQLite
    }

    async fn query(&self, _sql: &str) -> Result<RowStream, SourceError> {
        let (pause_after, total, go_on) = (self.pause_after, self.rows, self.go_on.clone());
        let rows = futures::stream::unfold(0_u64, move |n| {
            let go_on = go_on.clone();
            async move {
                if n == total {
                    return None;
                }
                if n == pause_after {
                    go_on.notified().await;
                }
                Some((Ok(vec![Value::from(format!("u{n}"))]), n + 1))
            }
        });
        Ok(RowStream::new("paused", Columns::new(["userId"]), rows))
    }

    async fn columns(&self, _sql: &str) -> Result<Vec<String>, SourceError> {
        Ok(vec!["userId".to_owned()])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_going_shows_its_progress_and_is_interrupted_in_the_history_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let go_on = Arc::new(tokio::sync::Notify::new());
    let source = Paused { pause_after: 5, rows: 8, go_on: go_on.clone() };
    let sources = BTreeMap::from([("app".to_owned(), Arc::new(source) as Arc<dyn Source>)]);
    let config = config(dir.path(), "SELECT id AS userId FROM people", "out", "http://127.0.0.1:9/v1");
    let runner = Arc::new(Runner::with_sources(config, clock() as Arc<dyn Clock>, sources).await.unwrap());
    assert!(runner.progress("people").is_none());
    let running = tokio::spawn({
        let runner = runner.clone();
        async move { runner.run("people").await }
    });
    let mut progress = None;
    for _ in 0..200 {
        progress = runner.progress("people").filter(|p| p.rows_read == 5);
        if progress.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let progress = progress.expect("the run shows its progress");
    assert_eq!((progress.run, progress.calls_delivered, progress.row_errors), (1, 5, 0));
    // While it goes, a process that died now would leave this record.
    let going = runner.history("people").unwrap();
    assert_eq!(going.len(), 1);
    assert_eq!((going[0].outcome, going[0].error_kind), (Outcome::Failed, Some(RunErrorKind::Interrupted)));
    assert!(going[0].error.as_deref().unwrap().contains("did not finish"));
    go_on.notify_one();
    let report = running.await.unwrap().unwrap();
    assert_eq!((report.record.outcome, report.record.rows_read), (Outcome::Succeeded, 8));
    assert!(runner.progress("people").is_none(), "no run is going");
    assert_eq!(runner.history("people").unwrap()[0].error_kind, None);
}

#[tokio::test]
async fn history_written_before_kinds_were_recorded_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let runs = dir.path().join("state/people/runs");
    std::fs::create_dir_all(&runs).unwrap();
    // Records as the previous version wrote them: no `error_kind`.
    std::fs::write(
        runs.join("00000001.json"),
        r#"{
  "run": 1,
  "sync": "people",
  "started_at": "2026-11-22T10:00:00Z",
  "finished_at": "2026-11-22T10:00:01.500Z",
  "last_sync_time": 0,
  "rows_read": 3,
  "calls_delivered": 0,
  "row_errors": 0,
  "row_errors_file": null,
  "outcome": "failed",
  "error": "destination api: https://cdp.customer.io/v1/batch gave up after 8 attempts"
}"#,
    )
    .unwrap();
    std::fs::write(
        runs.join("00000002.json"),
        r#"{"run": 2, "sync": "people", "started_at": "2026-11-22T10:10:00Z",
            "finished_at": "2026-11-22T10:10:02Z", "last_sync_time": 0, "rows_read": 3,
            "calls_delivered": 3, "row_errors": 0, "row_errors_file": null,
            "outcome": "succeeded", "error": null}"#,
    )
    .unwrap();
    let runner = runner(dir.path(), QUERY).await;
    let history = runner.history("people").unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!((history[0].outcome, history[0].error_kind), (Outcome::Failed, None));
    assert!(history[0].error.as_deref().unwrap().contains("gave up after 8 attempts"));
    assert_eq!((history[1].outcome, history[1].error_kind), (Outcome::Succeeded, None));
    // New runs go on from there, with their kinds.
    let report = runner.with_max_records(1).run("people").await.unwrap();
    assert_eq!(report.record.run, 3);
    assert_eq!(report.record.error_kind, Some(RunErrorKind::RecordCap));
    assert_eq!(record_json(dir.path(), "people", 3)["error_kind"], "record_cap");
}

/// Setup errors say the sync, both columns and the rule.
fn assert_column_conflict(error: &RunnerError, columns: [&str; 2], rule: &str) {
    assert!(matches!(error, RunnerError::Columns { sync, .. } if sync == "people"), "{error:?}");
    assert!(error.is_setup_error());
    assert_eq!(error.sync(), Some("people"));
    let text = error.to_string();
    assert!(text.starts_with("sync \"people\": the query's columns cannot be mapped: "), "{text}");
    for column in columns {
        assert!(text.contains(&format!("`{column}`")), "{column} in {text}");
    }
    assert!(text.contains(rule), "{rule:?} in {text}");
}

#[tokio::test]
async fn column_conflicts_are_found_at_setup_without_reading_a_row_and_cost_no_run() {
    for (query, columns, rule) in [
        // Reserved names match without regard to case. Reading the first row of this
        // query fails (an integer overflow): the conflict is found without it.
        (
            "SELECT id AS userId, id AS USERID, abs(-9223372036854775808) AS boom FROM people \
             WHERE updated_at > {{last_sync_time}}",
            ["userId", "USERID"],
            "two columns cannot set the same field; reserved names such as userId match without regard to case",
        ),
        // A dot nests: `a.b` would go inside `a`.
        (
            "SELECT id AS userId, email AS a, email AS \"a.b\" FROM people WHERE updated_at > {{last_sync_time}}",
            ["a", "a.b"],
            "a dot in a column name nests, so no column can set a field inside the field another column sets",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        database(dir.path());
        let runner = runner(dir.path(), query).await;
        let error = runner.setup_error("people").expect("not set up");
        assert_column_conflict(&error, columns, rule);
        let listed = runner.setup_errors();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].to_string(), error.to_string());
        // Its run and preview refuse with the same error, and record nothing.
        let run = runner.run("people").await.unwrap_err();
        assert_column_conflict(&run, columns, rule);
        let preview = runner.preview("people", 5).await.unwrap_err();
        assert_column_conflict(&preview, columns, rule);
        assert!(runner.history("people").unwrap().is_empty(), "no run recorded");
        assert!(!dir.path().join("state/people/runs").exists());
        // The other sync runs.
        let others = runner.run("others").await.unwrap();
        assert_eq!((others.record.outcome, others.record.calls_delivered), (Outcome::Succeeded, 3));
    }
}

#[tokio::test]
async fn without_column_checks_a_conflict_is_found_before_the_first_run_and_costs_no_run() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let query = "SELECT id AS userId, id AS USERID FROM people WHERE updated_at > {{last_sync_time}}";
    let config = config(dir.path(), query, "out", "http://127.0.0.1:9/v1");
    let runner = Runner::without_column_checks(config, clock() as Arc<dyn Clock>).await.unwrap();
    assert!(runner.setup_error("people").is_none(), "not asked yet");
    let error = runner.run("people").await.unwrap_err();
    assert_column_conflict(&error, ["userId", "USERID"], "reserved names such as userId");
    assert!(runner.setup_error("people").is_some(), "kept");
    assert!(runner.history("people").unwrap().is_empty());
}

#[tokio::test]
async fn a_source_that_cannot_answer_at_setup_is_asked_again_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // The database exists, but not its table yet: the columns cannot be read.
    rusqlite::Connection::open(dir.path().join("app.sqlite"))
        .unwrap()
        .execute_batch("CREATE TABLE x (y)")
        .unwrap();
    let runner = runner(dir.path(), "SELECT id AS userId, id AS USERID FROM people").await;
    assert!(runner.setup_error("people").is_none());
    std::fs::remove_file(dir.path().join("app.sqlite")).unwrap();
    database(dir.path());
    let error = runner.run("people").await.unwrap_err();
    assert_column_conflict(&error, ["userId", "USERID"], "reserved names such as userId");
    assert!(runner.history("people").unwrap().is_empty());
}

#[tokio::test]
async fn a_sync_that_is_not_set_up_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let runner =
        Arc::new(runner(dir.path(), "DELETE FROM people WHERE updated_at > {{last_sync_time}}").await);
    let error = runner.setup_error("people").expect("not set up");
    assert!(matches!(error, RunnerError::Query { .. }), "{error:?}");
    assert!(error.to_string().contains("read-only"), "{error}");
    assert!(runner.preview("others", 2).await.unwrap().calls.len() == 2);
    assert!(runner.history("people").unwrap().is_empty());
    // The scheduler runs the others, and leaves it out.
    let mut scheduler = Scheduler::new(runner.clone());
    assert!(scheduler.tick().await.unwrap().is_empty());
    let records = scheduler.wait_idle().await.unwrap();
    assert_eq!(
        records.iter().map(|r| (r.sync.as_str(), r.outcome)).collect::<Vec<_>>(),
        [("others", Outcome::Succeeded)]
    );
    assert!(scheduler.next_due("people").is_none());
    assert!(runner.history("people").unwrap().is_empty());
}
