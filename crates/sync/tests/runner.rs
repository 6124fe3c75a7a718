//! The runner and scheduler on the embedded SQLite source: runs, row errors and
//! their CSV, state, history, schedules, skipping, enabling, previews and the
//! bucket destination.

use std::path::Path;
use std::sync::Arc;

use cdp_bucket::{Clock, ManualClock};
use cdp_sync::{Config, Outcome, Runner, RunnerError, Scheduler};

fn ts(s: &str) -> cdp_calls::Timestamp {
    s.parse().unwrap()
}

/// A SQLite database of people; `updated_at` in Unix seconds.
fn database(dir: &Path) {
    let db = rusqlite::Connection::open(dir.join("app.sqlite")).unwrap();
    db.execute_batch(
        "CREATE TABLE people (id INTEGER, email TEXT, plan TEXT, meta TEXT, updated_at INTEGER);
         INSERT INTO people VALUES
           (1, 'ada@example.com', 'pro', '{\"city\":\"Paris\"}', 1763888400),
           (2, 'bob@example.com', 'free', NULL, 1763888400),
           (NULL, 'nobody@example.com', 'free', NULL, 1763888400),
           (4, 'dee@example.com', 'pro', 'not json', 1763888400);",
    )
    .unwrap();
}

fn config(dir: &Path, extra: &str) -> Config {
    let text = format!(
        r#"
        state_dir = "state"
        [sources.app]
        kind = "sqlite"
        path = "app.sqlite"
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
        [[syncs]]
        name = "people"
        description = "People updated since the last run"
        type = "identify"
        source = "app"
        destination = "out"
        query = "SELECT id AS userId, email, plan, meta AS address FROM people WHERE updated_at > {{{{last_sync_time}}}} ORDER BY rowid"
        every = "10m"
        {extra}
        "#
    );
    Config::parse(&text, dir, &|_| None).unwrap()
}

async fn make_runner(dir: &Path, clock: &Arc<ManualClock>, extra: &str) -> Runner {
    Runner::new(config(dir, extra), clock.clone() as Arc<dyn Clock>).await.unwrap()
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn set_updated(dir: &Path, id: i64, at: i64) {
    let db = rusqlite::Connection::open(dir.join("app.sqlite")).unwrap();
    db.execute("UPDATE people SET updated_at = ?1 WHERE id = ?2", (at, id)).unwrap();
}

#[tokio::test]
async fn a_run_delivers_every_row_and_records_row_errors() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = make_runner(dir.path(), &clock, "").await;
    let run = runner.run("people").await.unwrap().record;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.error);
    assert_eq!((run.run, run.rows_read, run.calls_delivered, run.row_errors), (1, 4, 3, 1));
    assert_eq!(run.last_sync_time, 0, "the first run renders last_sync_time as 0");

    let calls = lines(&dir.path().join("calls.ndjson"));
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0]["type"], "identify");
    assert_eq!(calls[0]["userId"], "1");
    // A JSON object in text becomes a nested object; other text stays text.
    assert_eq!(
        calls[0]["traits"],
        serde_json::json!({"email": "ada@example.com", "plan": "pro", "address": {"city": "Paris"}})
    );
    assert_eq!(calls[2]["traits"]["address"], "not json");
    // Stamped as received by the run, with a deterministic messageId.
    assert_eq!(calls[0]["receivedAt"], "2026-11-23T10:00:00.000Z");
    assert_eq!(calls[0]["messageId"].as_str().unwrap().len(), 26);

    // The row without an identity is a row error, in the run's CSV file.
    let csv_path = run.row_errors_file.clone().unwrap();
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 1);
    assert_eq!(&records[0][0], "3", "row number");
    assert!(records[0][3].contains("userId"), "{:?}", &records[0]);
    assert!(records[0][4].contains("nobody@example.com"), "the row's values");

    // State: last_sync_time is the run's start; the history has the run.
    assert_eq!(runner.state().load("people").unwrap().last_sync_time, ts("2026-11-23T10:00:00Z").as_secs());
    assert_eq!(runner.history("people").unwrap(), [run]);
}

#[tokio::test]
async fn incremental_runs_send_only_rows_updated_since_the_last_successful_start() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = make_runner(dir.path(), &clock, "").await;
    assert_eq!(runner.run("people").await.unwrap().record.rows_read, 4);
    // Two rows change after the first run started.
    set_updated(dir.path(), 2, ts("2026-11-23T10:05:00Z").as_secs());
    set_updated(dir.path(), 4, ts("2026-11-23T10:06:00Z").as_secs());
    clock.set(ts("2026-11-23T10:10:00Z"));
    let second = runner.run("people").await.unwrap().record;
    assert_eq!(
        (second.rows_read, second.calls_delivered, second.last_sync_time),
        (2, 2, ts("2026-11-23T10:00:00Z").as_secs())
    );
    clock.set(ts("2026-11-23T10:20:00Z"));
    let third = runner.run("people").await.unwrap().record;
    assert_eq!(third.rows_read, 0, "unchanged rows are not sent again");
    let ids: Vec<String> = lines(&dir.path().join("calls.ndjson"))
        .iter()
        .map(|c| c["userId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["1", "2", "4", "2", "4"]);
}

#[tokio::test]
async fn a_failed_run_does_not_move_last_sync_time() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let extra = r#"
        [[syncs]]
        name = "broken"
        type = "identify"
        source = "app"
        destination = "nowhere"
        query = "SELECT id AS userId FROM people WHERE updated_at > {{last_sync_time}}"
        every = "10m"
        [destinations.nowhere]
        kind = "ndjson"
        path = "missing-dir/calls.ndjson"
    "#;
    let runner = make_runner(dir.path(), &clock, extra).await;
    let run = runner.run("broken").await.unwrap().record;
    assert_eq!(run.outcome, Outcome::Failed);
    assert!(run.error.as_deref().unwrap().contains("missing-dir"), "{:?}", run.error);
    assert_eq!(runner.state().load("broken").unwrap().last_sync_time, 0);
    // The destination comes back: the next run reads the same rows again.
    std::fs::create_dir(dir.path().join("missing-dir")).unwrap();
    clock.set(ts("2026-11-23T10:10:00Z"));
    let again = runner.run("broken").await.unwrap().record;
    assert_eq!((again.outcome, again.last_sync_time, again.rows_read), (Outcome::Succeeded, 0, 4));
}

#[tokio::test]
async fn the_scheduler_runs_syncs_every_every_from_their_start() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let extra = r#"
        [[syncs]]
        name = "later"
        type = "identify"
        source = "app"
        destination = "out"
        query = "SELECT id AS userId FROM people WHERE id = 1 AND updated_at > {{last_sync_time}}"
        every = "1h"
        start = "2026-11-23T10:30:00Z"
    "#;
    let mut scheduler = Scheduler::new(Arc::new(make_runner(dir.path(), &clock, extra).await));
    scheduler.tick().await.unwrap();
    scheduler.wait_idle().await.unwrap();
    assert_eq!(scheduler.runner().history("people").unwrap().len(), 1, "due at once");
    assert_eq!(scheduler.runner().history("later").unwrap().len(), 0, "not before its start");
    assert_eq!(scheduler.next_due("people"), Some(ts("2026-11-23T10:10:00Z")));
    for (at, people, later) in [
        ("2026-11-23T10:09:59Z", 1, 0),
        ("2026-11-23T10:10:00Z", 2, 0),
        ("2026-11-23T10:30:00Z", 3, 1),
        ("2026-11-23T11:29:00Z", 4, 1),
        ("2026-11-23T11:30:00Z", 5, 2),
    ] {
        clock.set(ts(at));
        scheduler.tick().await.unwrap();
        scheduler.wait_idle().await.unwrap();
        let runner = scheduler.runner();
        assert_eq!(runner.history("people").unwrap().len(), people, "people at {at}");
        assert_eq!(runner.history("later").unwrap().len(), later, "later at {at}");
    }
    // Missed due times are not made up for: one run, then the grid goes on.
    clock.set(ts("2026-11-23T13:05:00Z"));
    scheduler.tick().await.unwrap();
    scheduler.wait_idle().await.unwrap();
    assert_eq!(scheduler.runner().history("people").unwrap().len(), 6);
    assert_eq!(scheduler.next_due("people"), Some(ts("2026-11-23T13:10:00Z")));
}

#[tokio::test]
async fn a_run_due_while_the_previous_one_is_going_is_skipped_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = Arc::new(make_runner(dir.path(), &clock, "").await);
    // Another process (cron, say) holds the sync's run lock.
    let held = runner.state().try_lock("people").unwrap().unwrap();
    let mut scheduler = Scheduler::new(runner.clone());
    scheduler.tick().await.unwrap();
    let records = scheduler.wait_idle().await.unwrap();
    assert_eq!(records[0].outcome, Outcome::Skipped);
    assert!(records[0].error.as_deref().unwrap().contains("still going"));
    drop(held);
    clock.set(ts("2026-11-23T10:10:00Z"));
    scheduler.tick().await.unwrap();
    let records = scheduler.wait_idle().await.unwrap();
    assert_eq!(records[0].outcome, Outcome::Succeeded);
    let outcomes: Vec<Outcome> = runner.history("people").unwrap().iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Skipped, Outcome::Succeeded]);
    // The skipped run did not move last_sync_time: the successful run read every row.
    assert_eq!(runner.history("people").unwrap()[1].rows_read, 4);
}

#[tokio::test]
async fn disabled_syncs_do_not_run_and_resume_from_their_last_sync_time() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = Arc::new(make_runner(dir.path(), &clock, "").await);
    let mut scheduler = Scheduler::new(runner.clone());
    scheduler.tick().await.unwrap();
    scheduler.wait_idle().await.unwrap();
    runner.set_enabled("people", false).unwrap();
    assert!(!runner.is_enabled("people").unwrap());
    for at in ["2026-11-23T10:10:00Z", "2026-11-23T10:20:00Z", "2026-11-23T10:30:00Z"] {
        clock.set(ts(at));
        scheduler.tick().await.unwrap();
        scheduler.wait_idle().await.unwrap();
    }
    assert_eq!(runner.history("people").unwrap().len(), 1, "no runs while disabled");
    set_updated(dir.path(), 1, ts("2026-11-23T10:25:00Z").as_secs());
    runner.set_enabled("people", true).unwrap();
    clock.set(ts("2026-11-23T10:31:00Z"));
    scheduler.tick().await.unwrap();
    let records = scheduler.wait_idle().await.unwrap();
    assert_eq!(records[0].last_sync_time, ts("2026-11-23T10:00:00Z").as_secs());
    assert_eq!(records[0].rows_read, 1, "only what changed since the last successful run");
    // Disabled in the configuration, enabled in the state directory.
    drop((scheduler, runner)); // releases the bucket destination's spool
    let off = make_runner(dir.path(), &clock, "enabled = false").await;
    assert!(off.is_enabled("people").unwrap(), "the state directory's setting wins");
}

#[tokio::test]
async fn a_preview_maps_the_first_rows_and_delivers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = make_runner(dir.path(), &clock, "").await;
    let preview = runner.preview("people", 3).await.unwrap();
    assert!(preview.sql.contains("LIMIT 3"), "{}", preview.sql);
    assert_eq!(preview.columns, ["userId", "email", "plan", "address"]);
    assert_eq!(preview.fields, ["userId", "traits.email", "traits.plan", "traits.address"]);
    assert_eq!(preview.calls.len(), 2);
    assert_eq!(preview.row_errors.len(), 1);
    assert_eq!(preview.row_errors[0].row_number, 3);
    assert!(!dir.path().join("calls.ndjson").exists(), "nothing delivered");
    assert_eq!(runner.state().load("people").unwrap().last_sync_time, 0, "no state changed");
    assert!(runner.history("people").unwrap().is_empty());
}

#[tokio::test]
async fn a_bucket_destination_publishes_each_run_as_one_position() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let mut config = config(dir.path(), "");
    config.syncs[0].destination = "lake".into();
    let runner = Runner::new(config, clock.clone() as Arc<dyn Clock>).await.unwrap();
    assert_eq!(runner.run("people").await.unwrap().record.calls_delivered, 3);
    set_updated(dir.path(), 1, ts("2026-11-23T10:05:00Z").as_secs());
    clock.set(ts("2026-11-23T10:10:00Z"));
    assert_eq!(runner.run("people").await.unwrap().record.calls_delivered, 1);
    runner.shutdown().await.unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("bucket"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["retl.people.1.identify.json", "retl.people.2.identify.json"]);
    let second = std::fs::read_to_string(dir.path().join("bucket/retl.people.2.identify.json")).unwrap();
    let row: serde_json::Value = serde_json::from_str(second.lines().next().unwrap()).unwrap();
    assert_eq!(row["user_id"], "1");
}

#[tokio::test]
async fn a_query_that_fails_its_checks_is_not_set_up() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    let mut config = config(dir.path(), "");
    config.syncs[0].query = "DELETE FROM people WHERE updated_at > {{last_sync_time}}".into();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = Runner::new(config, clock).await.unwrap();
    let err = runner.setup_error("people").expect("not set up");
    let text = err.to_string();
    assert!(text.contains("people") && text.contains("read-only"), "{text}");
    // Running it gives the same error and records nothing.
    let err = runner.run("people").await.unwrap_err();
    assert!(matches!(err, RunnerError::Query { .. }), "{err:?}");
    assert!(runner.history("people").unwrap().is_empty());
}
