//! One run, one position: syncs sharing a bucket destination never mix in a
//! position, and a run that fails publishes nothing (its next run's rows appear
//! once).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cdp_bucket::{Clock, ManualClock};
use cdp_query::Dialect;
use cdp_rows::{Columns, Value};
use cdp_source::{RowStream, Source, SourceError};
use cdp_sync::{Config, Outcome, Runner};

/// Rows per run: more than one batch of the destination (500), so that a run
/// appends to the writer more than once.
const ROWS: u64 = 1_200;

/// People (`FROM people`) or events (`FROM events`), a row every few rows with a
/// pause so that runs of both overlap; fails with a connection error after
/// `fail_after` rows when that is set (0: never).
#[derive(Debug, Default)]
struct Generated {
    fail_after: AtomicU64,
}

#[async_trait]
impl Source for Generated {
    fn name(&self) -> &str {
        "gen"
    }

    fn dialect(&self) -> Dialect {
        Dialect::PostgreSQL
    }

    async fn query(&self, sql: &str) -> Result<RowStream, SourceError> {
        let people = sql.contains("FROM people");
        let columns =
            if people { Columns::new(["userId", "email"]) } else { Columns::new(["userId", "event"]) };
        let fail_after = self.fail_after.load(Ordering::SeqCst);
        let rows = futures::stream::unfold(0_u64, move |n| async move {
            if n == ROWS {
                return None;
            }
            if fail_after > 0 && n == fail_after {
                let error = SourceError::Connection {
                    source_name: "gen".into(),
                    reason: "the connection was reset".into(),
                    rows_read: n,
                    source: None,
                };
                return Some((Err(error), ROWS));
            }
            if n % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let second =
                if people { Value::from(format!("p{n}@example.com")) } else { Value::from("Ordered") };
            Some((Ok(vec![Value::from(format!("u{n}")), second]), n + 1))
        });
        Ok(RowStream::new("gen", columns, rows))
    }
}

fn config(dir: &Path) -> Config {
    let text = r#"
        state_dir = "state"
        [sources.gen]
        kind = "sqlite"
        path = "unused.sqlite"
        [destinations.lake]
        kind = "bucket"
        bucket = "bucket"
        format = "json"
        integration = "retl"
        action = "lake"
        spool = "spool"
        [[syncs]]
        name = "people"
        type = "identify"
        source = "gen"
        destination = "lake"
        query = "SELECT id AS \"userId\", email FROM people WHERE updated_at > {{last_sync_time}}"
        every = "10m"
        [[syncs]]
        name = "orders"
        type = "track"
        source = "gen"
        destination = "lake"
        query = "SELECT id AS \"userId\", event FROM events WHERE updated_at > {{last_sync_time}}"
        every = "10m"
    "#;
    Config::parse(text, dir, &|_| None).unwrap()
}

/// The bucket's files by position: (call type, the ids in the file).
fn positions(dir: &Path) -> BTreeMap<u64, Vec<(String, Vec<String>)>> {
    let mut out: BTreeMap<u64, Vec<(String, Vec<String>)>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir.join("bucket")) else { return out };
    for entry in entries {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(object) = cdp_bucket::ObjectName::parse(&name) else { continue };
        let text = std::fs::read_to_string(dir.join("bucket").join(&name)).unwrap();
        let users = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["user_id"].as_str().unwrap().to_owned()
            })
            .collect();
        out.entry(object.position.get()).or_default().push((object.call_type.as_str().to_owned(), users));
    }
    out
}

fn spool_segments(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("spool"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("segment-"))
        .count()
}

fn all_users() -> Vec<String> {
    let mut users: Vec<String> = (0..ROWS).map(|n| format!("u{n}")).collect();
    users.sort();
    users
}

async fn runner(dir: &Path, source: Arc<Generated>, clock: Arc<ManualClock>) -> Runner {
    let sources = BTreeMap::from([("gen".to_owned(), source as Arc<dyn Source>)]);
    Runner::with_sources(config(dir), clock as Arc<dyn Clock>, sources).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_sharing_a_bucket_destination_each_publish_their_runs_as_positions_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(Generated::default());
    let clock = Arc::new(ManualClock::new("2026-11-30T10:00:00Z".parse().unwrap()));
    let runner = runner(dir.path(), source, clock).await;
    let (people, orders) = tokio::join!(runner.run("people"), runner.run("orders"));
    for run in [people.unwrap().record, orders.unwrap().record] {
        assert_eq!((run.outcome, run.calls_delivered), (Outcome::Succeeded, ROWS), "{:?}", run.error);
    }
    runner.shutdown().await.unwrap();
    let got = positions(dir.path());
    assert_eq!(got.len(), 2, "{got:?}");
    let mut kinds: Vec<&str> = Vec::new();
    for files in got.values() {
        // One run: one call type, every row once.
        assert_eq!(files.len(), 1, "runs mixed in a position: {files:?}");
        let (kind, users) = &files[0];
        let mut users = users.clone();
        users.sort();
        assert_eq!(users, all_users());
        kinds.push(kind);
    }
    kinds.sort();
    assert_eq!(kinds, ["identify", "track"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_halfway_publishes_nothing_and_the_next_runs_rows_appear_once() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(Generated::default());
    let clock = Arc::new(ManualClock::new("2026-11-30T10:00:00Z".parse().unwrap()));
    let runner = runner(dir.path(), source.clone(), clock.clone()).await;

    // Fails after 700 rows: 500 of them were appended to the writer already.
    source.fail_after.store(700, Ordering::SeqCst);
    let failed = runner.run("people").await.unwrap().record;
    assert_eq!(failed.outcome, Outcome::Failed);
    assert!(failed.error.as_deref().unwrap_or_default().contains("reset"), "{:?}", failed.error);
    assert_eq!(runner.state().load("people").unwrap().last_sync_time, 0, "last_sync_time stays");
    assert_eq!(spool_segments(dir.path()), 0, "the failed run's calls were taken back");

    // The next run reads the same rows again; they appear once.
    source.fail_after.store(0, Ordering::SeqCst);
    clock.set("2026-11-30T10:10:00Z".parse().unwrap());
    let run = runner.run("people").await.unwrap().record;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.error);
    runner.shutdown().await.unwrap();
    let got = positions(dir.path());
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), [1]);
    let mut users = got[&1][0].1.clone();
    users.sort();
    assert_eq!(users, all_users());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_dropped_midway_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(Generated::default());
    let clock = Arc::new(ManualClock::new("2026-11-30T10:00:00Z".parse().unwrap()));
    {
        let runner = runner(dir.path(), source.clone(), clock.clone()).await;
        // A run whose task is dropped after some rows (cancelled), with calls in
        // the spool by then.
        let run = runner.run("people");
        let _ = tokio::time::timeout(Duration::from_millis(30), run).await;
        drop(runner);
    }
    // Nothing of it is left to publish, now or after a restart.
    let runner = runner(dir.path(), source, clock).await;
    assert_eq!(spool_segments(dir.path()), 0);
    let run = runner.run("people").await.unwrap().record;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.error);
    runner.shutdown().await.unwrap();
    let got = positions(dir.path());
    assert_eq!(got.len(), 1, "{got:?}");
    let mut users = got.values().next().unwrap()[0].1.clone();
    users.sort();
    assert_eq!(users, all_users());
}
