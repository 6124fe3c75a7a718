//! One conformance suite, run against every backend: a local directory,
//! `object_store`'s in-memory store, an S3-compatible server (moto) and Azure Blob
//! Storage's emulator (Azurite), both started on loopback by `bash .ci/test`. Backend
//! differences are parameters, not skips. (Google Cloud Storage has no emulator in the
//! package registries that takes `object_store`'s create-only puts: see the README.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cdp_bucket::{BucketError, BucketWriter, Clock, Id, ManualClock, Published, WriterConfig};
use cdp_calls::{Call, CallType, Timestamp};
use cdp_encode::{Encode, EncodeOptions, FileEncoder, FileFormat};
#[cfg(feature = "azure")]
use common::azure_backend;
use common::{Backend, Local, Memory, call, calls_of_every_type, json_ids, objects, positions, s3_backend};
use object_store::{PutMode, PutOptions};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn config(action: &str, format: FileFormat, spool: &std::path::Path) -> WriterConfig {
    WriterConfig::new(Id::new("2184").unwrap(), Id::new(action).unwrap(), format).with_spool_dir(spool)
}

async fn open(
    backend: &dyn Backend,
    config: WriterConfig,
    clock: &Arc<ManualClock>,
) -> Result<BucketWriter, BucketError> {
    let clock: Arc<dyn Clock> = clock.clone();
    BucketWriter::open(backend.bucket(), config, clock).await.map(|(w, _)| w)
}

/// The file of one type, encoded as the writer must encode it.
fn expected_file(format: FileFormat, calls: &[Call], call_type: CallType) -> Vec<u8> {
    let mut encoder = FileEncoder::new(format, call_type, EncodeOptions::default());
    for call in calls.iter().filter(|c| c.call_type() == call_type) {
        encoder.write(call).unwrap();
    }
    encoder.finish_to_vec().unwrap()
}

/// Object names follow `<prefix><integration>.<action>.<position>.<type>.<ext>`;
/// one sync writes one file per type that had calls, all with its position, and
/// the files hold exactly the window's calls.
async fn naming(backend: &dyn Backend) {
    let spools = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-22T10:03:00Z")));
    for (action, format) in
        [("a-json", FileFormat::Json), ("a_csv", FileFormat::Csv), ("a-pq", FileFormat::Parquet)]
    {
        clock.set(ts("2026-11-22T10:03:00Z"));
        let mut writer =
            open(backend, config(action, format, &spools.path().join(action)), &clock).await.unwrap();
        let calls = calls_of_every_type(action, 2);
        // Only five types: alias has no calls in this window, so it gets no file.
        let without_alias: Vec<Call> =
            calls.iter().filter(|c| c.call_type() != CallType::Alias).cloned().collect();
        writer.append(without_alias.clone()).await.unwrap();
        clock.set(ts("2026-11-22T10:10:00Z"));
        let reports = writer.tick().await.unwrap();
        assert_eq!(reports.len(), 1);
        let report = &reports[0];
        assert_eq!(report.position.get(), 1);
        assert_eq!(
            (report.window.start, report.window.end),
            (ts("2026-11-22T10:00:00Z"), ts("2026-11-22T10:10:00Z"))
        );
        let prefix = backend.bucket().prefix().to_string();
        let mut want_names = Vec::new();
        for (file, call_type) in
            report.files.iter().zip(CallType::ALL.into_iter().filter(|t| *t != CallType::Alias))
        {
            let name = format!("2184.{action}.1.{call_type}.{}", format.extension());
            let full = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            assert_eq!((file.call_type, file.object.as_str(), file.rows), (call_type, full.as_str(), 2));
            assert_eq!(file.published, Published::Created);
            want_names.push(name);
        }
        let all = objects(&backend.bucket()).await;
        let mut got_names: Vec<&String> =
            all.keys().filter(|k| k.starts_with(&format!("2184.{action}."))).collect();
        got_names.sort();
        want_names.sort();
        assert_eq!(got_names, want_names.iter().collect::<Vec<_>>());
        for file in &report.files {
            let name = file.object.rsplit('/').next().unwrap();
            let bytes = &all[name];
            assert_eq!(bytes.len() as u64, file.bytes);
            assert_eq!(bytes.as_ref(), expected_file(format, &without_alias, file.call_type).as_slice());
        }
        writer.shutdown().await.unwrap();
    }
}

/// Positions run densely from 1: empty windows use none, and numbering goes on
/// across restarts, from the spool's record or, for a new spool, from the bucket.
async fn dense_positions_across_restarts(backend: &dyn Backend) {
    let spools = tempfile::tempdir().unwrap();
    let spool_a = spools.path().join("a");
    let clock = Arc::new(ManualClock::new(ts("2026-11-22T10:03:00Z")));
    let mut writer = open(backend, config("dense", FileFormat::Json, &spool_a), &clock).await.unwrap();
    writer.append(vec![call(CallType::Track, "w1")]).await.unwrap();
    clock.set(ts("2026-11-22T10:10:00Z"));
    assert_eq!(writer.tick().await.unwrap()[0].position.get(), 1);
    // An empty window: nothing published, no position used.
    clock.set(ts("2026-11-22T10:20:00Z"));
    assert!(writer.tick().await.unwrap().is_empty());
    writer.append(vec![call(CallType::Page, "w3")]).await.unwrap();
    clock.set(ts("2026-11-22T10:30:00Z"));
    assert_eq!(writer.tick().await.unwrap()[0].position.get(), 2);
    writer.append(vec![call(CallType::Identify, "w4")]).await.unwrap();
    assert_eq!(writer.shutdown().await.unwrap()[0].position.get(), 3);

    // The same spool: numbering goes on from its record.
    let mut writer = open(backend, config("dense", FileFormat::Json, &spool_a), &clock).await.unwrap();
    assert_eq!(writer.next_position().get(), 4);
    writer.append(vec![call(CallType::Track, "w5")]).await.unwrap();
    assert_eq!(writer.shutdown().await.unwrap()[0].position.get(), 4);

    // A new spool (a fresh machine): one past the highest position in the bucket.
    let mut writer =
        open(backend, config("dense", FileFormat::Json, &spools.path().join("b")), &clock).await.unwrap();
    assert_eq!(writer.next_position().get(), 5);
    writer.append(vec![call(CallType::Track, "w6")]).await.unwrap();
    assert_eq!(writer.shutdown().await.unwrap()[0].position.get(), 5);

    // Another action of the same integration is numbered on its own.
    let mut writer =
        open(backend, config("other", FileFormat::Json, &spools.path().join("c")), &clock).await.unwrap();
    assert_eq!(writer.next_position().get(), 1);
    writer.append(vec![call(CallType::Track, "o1")]).await.unwrap();
    writer.shutdown().await.unwrap();

    let all = objects(&backend.bucket()).await;
    assert_eq!(positions(all.keys(), "2184", "dense"), [1, 2, 3, 4, 5]);
    assert_eq!(positions(all.keys(), "2184", "other"), [1]);
    let ids: Vec<String> =
        all.iter().filter(|(k, _)| k.contains(".dense.")).flat_map(|(_, v)| json_ids(v)).collect();
    let mut ids = ids;
    ids.sort();
    assert_eq!(ids, ["w1", "w3", "w4", "w5", "w6"]);
}

/// Nothing is ever overwritten: the store refuses a create-only put on an existing
/// object, and the writer stops with a conflict naming it, leaving it as it was
/// and keeping its own calls in the spool.
async fn refuses_overwrite(backend: &dyn Backend) {
    let spools = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-22T10:03:00Z")));
    let mut writer =
        open(backend, config("ow", FileFormat::Json, &spools.path().join("s")), &clock).await.unwrap();
    assert_eq!(writer.next_position().get(), 1);

    // Someone else's object appears where position 1's track file goes.
    let bucket = backend.bucket();
    let path = bucket.prefix().clone().join("2184.ow.1.track.json");
    let theirs = Bytes::from_static(b"{\"id\":\"not ours\"}\n");
    bucket.store().put_opts(&path, theirs.clone().into(), PutOptions::from(PutMode::Create)).await.unwrap();
    // The store itself refuses to replace it.
    let again = bucket.store().put_opts(&path, Bytes::from_static(b"x").into(), PutMode::Create.into()).await;
    assert!(matches!(again, Err(object_store::Error::AlreadyExists { .. })), "{again:?}");

    writer.append(vec![call(CallType::Track, "mine")]).await.unwrap();
    let err = writer.sync_now().await.unwrap_err();
    match &err {
        BucketError::PositionConflict { object, position } => {
            assert_eq!((object.as_str(), position.get()), (path.as_ref(), 1));
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let shown = err.to_string();
    assert!(shown.contains(path.as_ref()), "{shown}");
    // It stays as it was, and the writer takes nothing more.
    assert_eq!(objects(&bucket).await["2184.ow.1.track.json"], theirs);
    assert!(matches!(
        writer.append(vec![call(CallType::Track, "later")]).await,
        Err(BucketError::Stopped { .. })
    ));
    assert!(matches!(writer.tick().await, Err(BucketError::Stopped { .. })));
    drop(writer);
    // Its call is still in its spool: a restart finds it and stops again.
    let reopened = open(backend, config("ow", FileFormat::Json, &spools.path().join("s")), &clock).await;
    assert!(matches!(reopened, Err(BucketError::PositionConflict { .. })), "{reopened:?}");
    assert_eq!(objects(&bucket).await.len(), 1);
}

/// A file already published with identical bytes (before a crash) counts as
/// published; the rest of the sync is published around it.
async fn recovers_identical_bytes(backend: &dyn Backend) {
    let spools = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-22T10:03:00Z")));
    for format in FileFormat::ALL {
        let action = format!("same-{format}");
        let mut writer =
            open(backend, config(&action, format, &spools.path().join(&action)), &clock).await.unwrap();
        let calls = calls_of_every_type("r", 3);
        // The track and group files were published by an earlier attempt.
        let bucket = backend.bucket();
        for call_type in [CallType::Track, CallType::Group] {
            let path =
                bucket.prefix().clone().join(format!("2184.{action}.1.{call_type}.{}", format.extension()));
            let bytes = Bytes::from(expected_file(format, &calls, call_type));
            bucket.store().put_opts(&path, bytes.into(), PutMode::Create.into()).await.unwrap();
        }
        writer.append(calls.clone()).await.unwrap();
        let report = writer.shutdown().await.unwrap().remove(0);
        for file in &report.files {
            let want = if matches!(file.call_type, CallType::Track | CallType::Group) {
                Published::AlreadyPresent
            } else {
                Published::Created
            };
            assert_eq!(file.published, want, "{}", file.object);
        }
        assert_eq!(report.files.len(), 6);
        let all = objects(&bucket).await;
        for call_type in CallType::ALL {
            let name = format!("2184.{action}.1.{call_type}.{}", format.extension());
            assert_eq!(all[&name].as_ref(), expected_file(format, &calls, call_type).as_slice(), "{name}");
        }
    }
}

/// A second writer on the same integration and action gets a conflict and
/// overwrites nothing.
async fn detects_conflict(backend: &dyn Backend) {
    let spools = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-22T10:03:00Z")));
    let mut first =
        open(backend, config("twice", FileFormat::Json, &spools.path().join("1")), &clock).await.unwrap();
    let mut second =
        open(backend, config("twice", FileFormat::Json, &spools.path().join("2")), &clock).await.unwrap();
    assert_eq!((first.next_position().get(), second.next_position().get()), (1, 1));
    first.append(vec![call(CallType::Track, "first")]).await.unwrap();
    first.sync_now().await.unwrap();
    let before = objects(&backend.bucket()).await;

    second.append(vec![call(CallType::Track, "second"), call(CallType::Page, "second-page")]).await.unwrap();
    let err = second.sync_now().await.unwrap_err();
    assert!(matches!(err, BucketError::PositionConflict { .. }), "{err}");
    assert!(matches!(
        second.append(vec![call(CallType::Track, "x")]).await,
        Err(BucketError::Stopped { .. })
    ));
    // Nothing of the first writer was touched, and the second published nothing.
    assert_eq!(objects(&backend.bucket()).await, before);
    assert_eq!(json_ids(&before["2184.twice.1.track.json"]), ["first"]);
    // The first writer goes on.
    first.append(vec![call(CallType::Track, "first-2")]).await.unwrap();
    assert_eq!(first.shutdown().await.unwrap()[0].position.get(), 2);
}

macro_rules! suite {
    ($($name:ident),*) => {
        mod local {
            use super::*;
            $(#[tokio::test] async fn $name() { super::$name(&Local(tempfile::tempdir().unwrap())).await; })*
        }
        mod memory {
            use super::*;
            $(#[tokio::test] async fn $name() { super::$name(&Memory(Arc::new(Default::default()))).await; })*
        }
        mod s3 {
            use super::*;
            $(#[tokio::test] async fn $name() { super::$name(&s3_backend()).await; })*
        }
        #[cfg(feature = "azure")]
        mod azure {
            use super::*;
            $(#[tokio::test] async fn $name() { super::$name(&azure_backend()).await; })*
        }
    };
}

suite!(
    naming,
    dense_positions_across_restarts,
    refuses_overwrite,
    recovers_identical_bytes,
    detects_conflict
);

#[test]
fn suite_uses_the_default_interval_of_ten_minutes() {
    let config = config("x", FileFormat::Json, std::path::Path::new("spool"));
    assert_eq!(config.interval, Duration::from_secs(600));
}
