//! The writer's behaviour: windows, early syncs, shutdown, refused batches, spool
//! damage, resumed windows, store outages and durability settings.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cdp_bucket::{
    Bucket, BucketError, BucketWriter, Clock, Durability, Id, ManualClock, SyncReport, WriterConfig,
};
use cdp_calls::{Call, CallType, Timestamp};
use cdp_encode::FileFormat;
use common::{call, json_ids, objects};
use object_store::memory::InMemory;
use object_store::path::Path;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
}

impl Setup {
    fn new(now: &str) -> Setup {
        Setup { dir: tempfile::tempdir().unwrap(), clock: Arc::new(ManualClock::new(ts(now))) }
    }

    fn bucket(&self) -> Bucket {
        Bucket::local(self.dir.path().join("bucket")).unwrap()
    }

    fn spool(&self) -> std::path::PathBuf {
        self.dir.path().join("spool")
    }

    fn config(&self) -> WriterConfig {
        WriterConfig::new(Id::new("i").unwrap(), Id::new("a").unwrap(), FileFormat::Json)
            .with_spool_dir(self.spool())
    }

    async fn open(&self, config: WriterConfig) -> (BucketWriter, cdp_bucket::Recovery) {
        let clock: Arc<dyn Clock> = self.clock.clone();
        BucketWriter::open(self.bucket(), config, clock).await.unwrap()
    }

    /// Call ids per position, in file order (call types in order).
    async fn by_position(&self) -> Vec<(u64, Vec<String>)> {
        let mut out: Vec<(u64, Vec<String>)> = Vec::new();
        for (name, bytes) in objects(&self.bucket()).await {
            let position = cdp_bucket::ObjectName::parse(&name).unwrap().position.get();
            match out.iter_mut().find(|(p, _)| *p == position) {
                Some((_, ids)) => ids.extend(json_ids(&bytes)),
                None => out.push((position, json_ids(&bytes))),
            }
        }
        out.sort();
        out
    }

    fn segments(&self) -> Vec<std::path::PathBuf> {
        let mut out: Vec<_> = std::fs::read_dir(self.spool())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("segment-"))
            .collect();
        out.sort();
        out
    }
}

fn tracks(ids: &[&str]) -> Vec<Call> {
    ids.iter().map(|id| call(CallType::Track, id)).collect()
}

#[tokio::test]
async fn a_window_holds_the_calls_received_from_its_start_until_before_its_end() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    let (mut w, _) = s.open(s.config()).await;
    w.append(tracks(&["early"])).await.unwrap();
    s.clock.set(ts("2026-11-22T10:09:59.999999Z"));
    let appended = w.append(tracks(&["last"])).await.unwrap();
    assert!(appended.published.is_empty());
    assert_eq!(
        (appended.window.start, appended.window.end),
        (ts("2026-11-22T10:00:00Z"), ts("2026-11-22T10:10:00Z"))
    );
    // A call at exactly the end belongs to the next window; taking it publishes the first.
    s.clock.set(ts("2026-11-22T10:10:00Z"));
    let appended = w.append(tracks(&["next"])).await.unwrap();
    // The append sealed the first window, which is published in the background
    // (the append does not wait for it); `tick` waits for it.
    let published = [appended.published, w.tick().await.unwrap()].concat();
    assert_eq!(published.len(), 1);
    let report: &SyncReport = &published[0];
    assert_eq!((report.position.get(), report.rows()), (1, 2));
    assert_eq!(
        (report.window.start, report.window.end),
        (ts("2026-11-22T10:00:00Z"), ts("2026-11-22T10:10:00Z"))
    );
    assert_eq!(appended.window.start, ts("2026-11-22T10:10:00Z"));
    // Nothing is published before the window ends.
    s.clock.set(ts("2026-11-22T10:19:59Z"));
    assert!(w.tick().await.unwrap().is_empty());
    s.clock.set(ts("2026-11-22T10:20:00Z"));
    assert_eq!(w.tick().await.unwrap()[0].position.get(), 2);
    assert_eq!(s.by_position().await, [(1, vec!["early".into(), "last".into()]), (2, vec!["next".into()])]);
}

#[tokio::test]
async fn the_interval_is_configurable() {
    let s = Setup::new("2026-11-22T10:03:30Z");
    let (mut w, _) = s.open(s.config().with_interval(Duration::from_secs(60))).await;
    let appended = w.append(tracks(&["x"])).await.unwrap();
    assert_eq!(
        (appended.window.start, appended.window.end),
        (ts("2026-11-22T10:03:00Z"), ts("2026-11-22T10:04:00Z"))
    );
    s.clock.set(ts("2026-11-22T10:04:00Z"));
    assert_eq!(w.tick().await.unwrap().len(), 1);
    let err = BucketWriter::open(s.bucket(), s.config().with_interval(Duration::ZERO), s.clock.clone()).await;
    assert!(matches!(err, Err(BucketError::InvalidConfig { setting: "interval", .. })));
}

#[tokio::test]
async fn a_file_about_to_pass_max_file_bytes_makes_an_early_sync() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    let max = 4096;
    let (mut w, _) = s.open(s.config().with_max_file_bytes(max)).await;
    let mut all = Vec::new();
    let mut reports = Vec::new();
    for batch in 0..20 {
        s.clock.advance(Duration::from_secs(1));
        let ids: Vec<String> = (0..3).map(|i| format!("b{batch}-{i}")).collect();
        all.extend(ids.clone());
        let calls = ids.iter().map(|id| call(CallType::Track, id)).collect();
        reports.extend(w.append(calls).await.unwrap().published);
    }
    reports.extend(w.shutdown().await.unwrap());
    assert!(reports.len() >= 4, "several early syncs: {}", reports.len());
    for (i, report) in reports.iter().enumerate() {
        assert_eq!(report.position.get(), i as u64 + 1);
        assert!(report.bytes() <= max, "sync {} has {} bytes", report.position, report.bytes());
        // Early syncs end when they are made; the next goes on from there.
        if let Some(next) = reports.get(i + 1) {
            assert_eq!(report.window.end, next.window.start);
            assert!(report.window.end < ts("2026-11-22T10:10:00Z"));
        }
    }
    let published: Vec<String> = s.by_position().await.into_iter().flat_map(|(_, ids)| ids).collect();
    assert_eq!(published, all);
}

/// Message ids of a published file, read with the `csv` crate or the `parquet`
/// crate's row reader (JSON: serde_json).
fn file_ids(format: FileFormat, bytes: &bytes::Bytes) -> Vec<String> {
    match format {
        FileFormat::Json => json_ids(bytes),
        FileFormat::Csv => {
            let mut reader = csv::Reader::from_reader(bytes.as_ref());
            let id = reader.headers().unwrap().iter().position(|h| h == "id").unwrap();
            reader.records().map(|r| r.unwrap()[id].to_owned()).collect()
        }
        FileFormat::Parquet => {
            use parquet::file::reader::{FileReader, SerializedFileReader};
            let reader = SerializedFileReader::new(bytes.clone()).unwrap();
            reader
                .get_row_iter(None)
                .unwrap()
                .map(|row| {
                    let row = row.unwrap();
                    let (_, id) = row.get_column_iter().find(|(name, _)| name.as_str() == "id").unwrap();
                    id.to_string().trim_matches('"').to_owned()
                })
                .collect()
        }
    }
}

#[tokio::test]
async fn max_file_bytes_is_a_hard_limit_in_every_format_with_or_without_a_spool() {
    // Batches of 1 to 700 calls whose text escapes and quotes (JSON strings,
    // CSV fields) and does not compress, and one call larger than the limit on its
    // own: no file passes the limit but that call's, alone in its file; every call
    // is published once; the files are not cut absurdly early.
    let noisy = |seed: usize, len: usize| -> String {
        const PIECES: [&str; 8] = ["\"", "\\", "\n", ",", "a", "é", "€", "{"];
        (0..len).map(|i| PIECES[(i * 7 + seed * 13 + i / 3) % PIECES.len()]).collect()
    };
    for format in FileFormat::ALL {
        for spool in [true, false] {
            let s = Setup::new("2026-11-22T10:03:00Z");
            let max: u64 = 256 * 1024;
            // Parquet: small row groups, so that most of a file is encoded (exact)
            // well before the limit; what is not is counted uncompressed.
            let mut config = WriterConfig::new(Id::new("i").unwrap(), Id::new("a").unwrap(), format)
                .with_max_file_bytes(max)
                .with_encode_options(cdp_encode::EncodeOptions::default().with_row_group_rows(100));
            if spool {
                config = config.with_spool_dir(s.spool());
            }
            let (mut w, _) = s.open(config).await;
            let mut sent = Vec::new();
            let mut n = 0;
            for batch in 0..40 {
                let size = [1, 700, 37, 250, 5][batch % 5];
                let mut calls = Vec::new();
                for _ in 0..size {
                    let id = format!("c{n}");
                    let mut text = noisy(n, n % 400);
                    if n == 1_500 {
                        text = noisy(n, 300_000);
                    }
                    let payload =
                        cdp_calls::JsonObject::from_json(&serde_json::json!({ "t": text }).to_string())
                            .unwrap();
                    calls.push(call(CallType::Track, &id).with_payload(payload));
                    sent.push(id);
                    n += 1;
                }
                w.append(calls).await.unwrap();
            }
            w.shutdown().await.unwrap();
            let what = format!("{format} spool={spool}");
            let mut seen = Vec::new();
            let mut sizes = Vec::new();
            for (name, bytes) in objects(&s.bucket()).await {
                let ids = file_ids(format, &bytes);
                let len = bytes.len() as u64;
                if ids.contains(&"c1500".to_string()) {
                    assert_eq!(ids.len(), 1, "{what}: the call larger than the limit is alone in {name}");
                    // (Compressed, the Parquet file may end up smaller: its size is
                    // not known before it is encoded.)
                    assert!(len > max || format == FileFormat::Parquet, "{what}: {len}");
                } else {
                    assert!(len <= max, "{what}: {name} has {len} bytes, more than {max}");
                    sizes.push(len);
                }
                seen.extend(ids);
            }
            seen.sort();
            sent.sort();
            assert_eq!(seen, sent, "{what}: every call once");
            sizes.sort_unstable();
            let median = sizes[sizes.len() / 2];
            // Text formats are exact; Parquet's bound counts what is not encoded yet
            // (up to a row group, the rows held back to be put in order, and the
            // footer's share of every row group) as if it did not compress, which
            // for this text (it compresses about tenfold) and 100-row groups is
            // most of a small file. (At the default 256 MiB the slack is a few
            // row groups in a file of hundreds.)
            let least = if format == FileFormat::Parquet { max / 16 } else { max / 2 };
            assert!(sizes.len() >= 2 && median > least, "{what}: files of {sizes:?} bytes");
        }
    }
}

#[tokio::test]
async fn shutdown_publishes_the_open_window() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    let (mut w, _) = s.open(s.config()).await;
    w.append(vec![call(CallType::Identify, "i1"), call(CallType::Alias, "a1")]).await.unwrap();
    s.clock.set(ts("2026-11-22T10:04:00Z"));
    let reports = w.shutdown().await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (reports[0].window.start, reports[0].window.end),
        (ts("2026-11-22T10:00:00Z"), ts("2026-11-22T10:04:00Z"))
    );
    // Files in name order: alias, then identify.
    assert_eq!(s.by_position().await, [(1, vec!["a1".into(), "i1".into()])]);
    assert!(s.segments().is_empty(), "the spool is empty after a clean shutdown");
}

#[tokio::test]
async fn a_batch_with_an_invalid_call_is_refused_whole() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    let (mut w, _) = s.open(s.config()).await;
    let mut no_event = call(CallType::Track, "bad");
    if let cdp_calls::Body::Track(t) = &mut no_event.body {
        t.event = None;
    }
    let err = w.append(vec![call(CallType::Track, "good-but-refused"), no_event]).await.unwrap_err();
    match err {
        BucketError::InvalidCall { index, source } => {
            assert_eq!(index, 1);
            assert!(matches!(source, cdp_calls::CallError::MissingField { field: "event", .. }));
        }
        other => panic!("{other}"),
    }
    w.append(tracks(&["kept"])).await.unwrap();
    w.shutdown().await.unwrap();
    assert_eq!(s.by_position().await, [(1, vec!["kept".into()])]);
}

#[tokio::test]
async fn what_calls_lack_is_filled_from_the_writers_clock() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    let (mut w, _) = s.open(s.config()).await;
    w.append(vec![Call::track("u1", "Signed Up")]).await.unwrap();
    w.shutdown().await.unwrap();
    let all = objects(&s.bucket()).await;
    let row: serde_json::Value = serde_json::from_slice(&all["i.a.1.track.json"]).unwrap();
    assert_eq!(row["received_at"], "2026-11-22T10:03:00.000Z");
    assert_eq!(row["timestamp"], "2026-11-22T10:03:00.000Z");
    assert_eq!(row["id"].as_str().unwrap().len(), 26, "a ULID messageId");
}

/// Appends three batches and "crashes" (drops the writer without a shutdown).
async fn three_batches_then_crash(s: &Setup) -> u64 {
    let (mut w, _) = s.open(s.config()).await;
    w.append(tracks(&["b1-0", "b1-1"])).await.unwrap();
    w.append(tracks(&["b2-0", "b2-1"])).await.unwrap();
    let before_third = std::fs::metadata(&s.segments()[0]).unwrap().len();
    w.append(tracks(&["b3-0", "b3-1"])).await.unwrap();
    drop(w);
    before_third
}

#[tokio::test]
async fn a_truncated_spool_tail_is_cut_back_and_reported() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    let before_third = three_batches_then_crash(&s).await;
    let segment = s.segments().remove(0);
    let full = std::fs::metadata(&segment).unwrap().len();
    // Torn in the middle of the third batch.
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(full - 7).unwrap();
    let (w, recovery) = s.open(s.config()).await;
    assert_eq!(recovery.repairs.len(), 1);
    let repair = &recovery.repairs[0];
    assert_eq!(
        (repair.path.as_path(), repair.kept_bytes, repair.cut_bytes),
        (segment.as_path(), before_third, full - 7 - before_third)
    );
    assert_eq!(recovery.resumed_calls, 4);
    w.shutdown().await.unwrap();
    assert_eq!(
        s.by_position().await,
        [(1, vec!["b1-0".into(), "b1-1".into(), "b2-0".into(), "b2-1".into()])]
    );
}

#[tokio::test]
async fn a_corrupted_spool_record_is_cut_with_everything_after_it() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    three_batches_then_crash(&s).await;
    let segment = s.segments().remove(0);
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.windows(4).position(|w| w == b"b2-0").unwrap();
    bytes[at] = b'X';
    std::fs::write(&segment, &bytes).unwrap();
    let (w, recovery) = s.open(s.config()).await;
    assert_eq!(recovery.repairs.len(), 1);
    assert!(recovery.repairs[0].reason.contains("checksum"), "{}", recovery.repairs[0].reason);
    assert_eq!(recovery.resumed_calls, 2);
    w.shutdown().await.unwrap();
    assert_eq!(s.by_position().await, [(1, vec!["b1-0".into(), "b1-1".into()])]);
}

#[tokio::test]
async fn the_open_window_resumes_after_a_crash() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    three_batches_then_crash(&s).await;
    s.clock.set(ts("2026-11-22T10:05:00Z"));
    let (mut w, recovery) = s.open(s.config()).await;
    assert_eq!((recovery.resumed_calls, recovery.repairs.len(), recovery.republished.len()), (6, 0, 0));
    assert_eq!(w.window().start, ts("2026-11-22T10:00:00Z"));
    w.append(tracks(&["after"])).await.unwrap();
    s.clock.set(ts("2026-11-22T10:10:00Z"));
    let report = w.tick().await.unwrap().remove(0);
    assert_eq!((report.position.get(), report.rows()), (1, 7));
    assert_eq!(report.window.start, ts("2026-11-22T10:00:00Z"));
}

#[tokio::test]
async fn a_store_outage_keeps_the_calls_and_publishing_is_retried_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let fail = Arc::new(AtomicBool::new(false));
    let store = common::SlowPuts { inner: InMemory::new(), delay: Duration::ZERO, fail_puts: fail.clone() };
    let bucket = Bucket::new(Arc::new(store), Path::from("out"));
    let clock = Arc::new(ManualClock::new(ts("2026-11-22T10:03:00Z")));
    let config = WriterConfig::new(Id::new("i").unwrap(), Id::new("a").unwrap(), FileFormat::Csv)
        .with_spool_dir(dir.path().join("spool"));
    let (mut w, _) = BucketWriter::open(bucket.clone(), config, clock.clone()).await.unwrap();
    w.append(tracks(&["one"])).await.unwrap();
    fail.store(true, Ordering::SeqCst);
    clock.set(ts("2026-11-22T10:10:00Z"));
    let err = w.tick().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    // Calls keep coming meanwhile, and the next window is sealed too.
    w.append(tracks(&["two"])).await.unwrap();
    clock.set(ts("2026-11-22T10:20:00Z"));
    assert!(w.tick().await.is_err());
    assert!(objects(&bucket).await.is_empty());
    fail.store(false, Ordering::SeqCst);
    let reports = w.tick().await.unwrap();
    let positions: Vec<(u64, bool)> = reports.iter().map(|r| (r.position.get(), r.recovered)).collect();
    assert_eq!(positions, [(1, false), (2, false)]);
    let names: Vec<String> = objects(&bucket).await.into_keys().collect();
    assert_eq!(names, ["i.a.1.track.csv", "i.a.2.track.csv"]);
}

#[tokio::test]
async fn every_durability_setting_publishes_the_same() {
    for durability in
        [Durability::EveryAppend, Durability::Interval(Duration::from_millis(5)), Durability::Never]
    {
        let s = Setup::new("2026-11-22T10:03:00Z");
        let (mut w, _) = s.open(s.config().with_durability(durability)).await;
        for i in 0..5 {
            w.append(tracks(&[&format!("d{i}")])).await.unwrap();
            std::thread::sleep(Duration::from_millis(2));
            w.tick().await.unwrap();
        }
        w.shutdown().await.unwrap();
        let ids: Vec<String> = s.by_position().await.into_iter().flat_map(|(_, ids)| ids).collect();
        assert_eq!(ids, ["d0", "d1", "d2", "d3", "d4"], "{durability:?}");
    }
}

#[tokio::test]
async fn without_a_spool_the_writer_works_in_memory() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    let mut config = s.config();
    config.spool_dir = None;
    let (mut w, _) = s.open(config).await;
    w.append(tracks(&["m1", "m2"])).await.unwrap();
    w.shutdown().await.unwrap();
    assert_eq!(s.by_position().await, [(1, vec!["m1".into(), "m2".into()])]);
    assert!(!s.spool().exists());
}

#[tokio::test]
async fn a_spool_serves_one_writer_at_a_time() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    let (_w, _) = s.open(s.config()).await;
    let clock: Arc<dyn Clock> = s.clock.clone();
    let second = BucketWriter::open(s.bucket(), s.config(), clock).await;
    assert!(matches!(second, Err(BucketError::SpoolLocked { .. })), "{second:?}");
}

/// The writer's futures can move between threads, so it can live in a spawned task.
#[tokio::test]
async fn the_writers_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let s = Setup::new("2026-11-22T10:03:00Z");
    let (mut w, _) = s.open(s.config()).await;
    let append = w.append(Vec::new());
    assert_send(&append);
    append.await.unwrap();
    let tick = w.tick();
    assert_send(&tick);
    tick.await.unwrap();
    let open = BucketWriter::open(s.bucket(), s.config(), s.clock.clone());
    assert_send(&open);
    let shutdown = w.shutdown();
    assert_send(&shutdown);
    shutdown.await.unwrap();
}

/// A local bucket is written straight from disk: temporary files a crash leaves
/// behind are swept on the next start, and anything already under a file's name
/// (even a directory) is never replaced.
#[tokio::test]
async fn local_buckets_sweep_temporary_files_and_never_replace_a_name() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    let bucket_dir = s.dir.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir).unwrap();
    let stray = bucket_dir.join(".i.a.2.track.json.999-0.tmp");
    let other = bucket_dir.join(".x.y.1.track.json.999-0.tmp");
    std::fs::write(&stray, b"half").unwrap();
    std::fs::write(&other, b"not ours").unwrap();
    let (mut w, _) = s.open(s.config()).await;
    assert!(!stray.exists(), "our temporary file is swept");
    assert!(other.exists(), "another action's is left alone");

    w.append(vec![call(CallType::Track, "t1")]).await.unwrap();
    std::fs::create_dir_all(bucket_dir.join("i.a.1.track.json")).unwrap();
    let err = w.sync_now().await.unwrap_err();
    assert!(matches!(err, BucketError::PositionConflict { .. }), "{err}");
    assert!(bucket_dir.join("i.a.1.track.json").is_dir(), "left as it was");
    let names: Vec<String> = std::fs::read_dir(&bucket_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with(".i.a.")), "no temporary file is left: {names:?}");
}

/// A crash between sealing a sync and recording its position: the next start
/// brings the record up to date, so the position is never handed out twice.
#[tokio::test]
async fn a_position_sealed_but_not_recorded_is_not_handed_out_again() {
    let dir = tempfile::tempdir().unwrap();
    let fail = Arc::new(AtomicBool::new(false));
    let store =
        Arc::new(common::SlowPuts { inner: InMemory::new(), delay: Duration::ZERO, fail_puts: fail.clone() });
    let clock = Arc::new(ManualClock::new(ts("2026-11-22T10:03:00Z")));
    let config = WriterConfig::new(Id::new("i").unwrap(), Id::new("a").unwrap(), FileFormat::Json)
        .with_spool_dir(dir.path().join("spool"));
    let open = || async {
        let bucket = Bucket::new(store.clone(), Path::from("out"));
        BucketWriter::open(bucket, config.clone(), clock.clone()).await.unwrap().0
    };
    let mut w = open().await;
    w.append(tracks(&["one"])).await.unwrap();
    assert_eq!(w.sync_now().await.unwrap()[0].position.get(), 1);
    // Position 2 is sealed, but the store is down; then the process dies, and (as if
    // it died before writing it) the spool's record still says 1.
    w.append(tracks(&["two"])).await.unwrap();
    fail.store(true, Ordering::SeqCst);
    assert!(w.sync_now().await.is_err());
    drop(w);
    std::fs::write(dir.path().join("spool/POSITION"), "1\n").unwrap();
    fail.store(false, Ordering::SeqCst);

    let mut w = open().await; // publishes position 2 from the spool
    assert_eq!(w.next_position().get(), 3);
    w.append(tracks(&["three"])).await.unwrap();
    drop(w); // another crash, with a window open
    let w = open().await;
    assert_eq!(w.next_position().get(), 3, "position 2 is taken");
    let reports = w.shutdown().await.unwrap();
    assert_eq!(reports[0].position.get(), 3);
}

#[tokio::test]
async fn spool_usage_counts_the_records_and_bytes_not_yet_published() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    let on_disk = |s: &Setup| s.segments().iter().map(|p| std::fs::metadata(p).unwrap().len()).sum::<u64>();
    let (mut w, _) = s.open(s.config()).await;
    assert_eq!(w.spool_usage(), cdp_bucket::SpoolUsage::default());
    for batch in [&["a", "b"][..], &["c"], &["d", "e", "f"]] {
        w.append(tracks(batch)).await.unwrap();
    }
    let usage = w.spool_usage();
    assert_eq!((usage.records, usage.bytes), (3, on_disk(&s)));
    // After a crash the recovered segment counts the same.
    drop(w);
    let (mut w, recovery) = s.open(s.config()).await;
    assert_eq!(recovery.resumed_calls, 6);
    assert_eq!(w.spool_usage(), usage);
    w.append(tracks(&["g"])).await.unwrap();
    assert_eq!(w.spool_usage().records, 4);
    // Once the window is published, nothing is left.
    s.clock.advance(Duration::from_secs(600));
    w.tick().await.unwrap();
    assert_eq!(w.spool_usage(), cdp_bucket::SpoolUsage::default());
    assert_eq!(on_disk(&s), 0);
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn discarded_calls_are_never_published_and_the_window_goes_on() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    let (mut w, _) = s.open(s.config()).await;
    w.append(tracks(&["taken-back-1", "taken-back-2"])).await.unwrap();
    assert_eq!(w.discard_open().unwrap(), 2);
    assert!(s.segments().is_empty(), "the spool segment is gone");
    assert_eq!(w.discard_open().unwrap(), 0);
    w.append(tracks(&["kept"])).await.unwrap();
    // What a crashed unit left is discarded after the restart too.
    drop(w);
    let (mut w, recovery) = s.open(s.config()).await;
    assert_eq!(recovery.resumed_calls, 1);
    w.append(tracks(&["kept-after-restart"])).await.unwrap();
    w.sync_now().await.unwrap();
    w.append(tracks(&["left-by-a-crash"])).await.unwrap();
    drop(w);
    let (mut w, recovery) = s.open(s.config()).await;
    assert_eq!(recovery.resumed_calls, 1);
    assert_eq!(w.discard_open().unwrap(), 1);
    w.shutdown().await.unwrap();
    assert_eq!(s.by_position().await, [(1, vec!["kept".into(), "kept-after-restart".into()])]);
    assert!(s.segments().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_do_not_wait_for_the_files_to_be_encoded() {
    let s = Setup::new("2026-11-22T10:03:00Z");
    let calls = |prefix: &str, n: usize| -> Vec<Call> {
        (0..n).map(|i| call(CallType::Track, &format!("{prefix}{i}"))).collect()
    };
    // No fsync: what is timed here is encoding, not the disk.
    let config = WriterConfig::new(Id::new("i").unwrap(), Id::new("a").unwrap(), FileFormat::Parquet)
        .with_spool_dir(s.spool())
        .with_durability(Durability::Never);
    let (mut w, _) = s.open(config).await;
    // A batch whose Parquet row groups take a while to encode (a second or more):
    // the append returns
    // once it is spooled, with the calls still to be encoded on the file's thread.
    w.append(calls("big", 90_000)).await.unwrap();
    let backlog = w.encoding_backlog();
    assert!(backlog > 45_000, "the append waited for the encoding: {backlog} calls left");
    // Small appends meanwhile are answered once spooled, while the big batch is
    // still being encoded (they queue behind it: the queue is counted in calls).
    for small in calls("small", 20).chunks(1) {
        w.append(small.to_vec()).await.unwrap();
        assert!(w.encoding_backlog() > 0, "an append waited for the encoding to finish");
    }
    // Publishing waits for the encoding: every call is in the file.
    let reports = w.shutdown().await.unwrap();
    assert_eq!(reports.iter().map(SyncReport::rows).sum::<u64>(), 90_020);
}
