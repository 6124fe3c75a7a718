//! Fault injection with real processes: a writer process is killed with SIGKILL
//! while appending, and again while publishing, then restarted. Afterwards the
//! bucket holds every acknowledged call exactly once, with dense positions.
//!
//! This test binary is its own child: run with `CDP_CRASH_CHILD` set, it is a
//! writer process (see [`child`]); without, it runs the scenarios.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cdp_bucket::{Bucket, BucketWriter, Clock, Id, SystemClock, WriterConfig};
use cdp_calls::CallType;
use cdp_encode::FileFormat;
use object_store::local::LocalFileSystem;

const CHILD: &str = "CDP_CRASH_CHILD";
const BATCH: usize = 20;

fn main() {
    match std::env::var(CHILD) {
        Ok(mode) => child(&mode),
        Err(_) => {
            killed_while_appending_and_while_publishing();
            println!("test crash::killed_while_appending_and_while_publishing ... ok");
            local_bucket_killed_again_and_again();
            println!("test crash::local_bucket_killed_again_and_again ... ok");
        }
    }
}

/// The writer process. Environment: `CDP_CRASH_BUCKET`, `CDP_CRASH_SPOOL`,
/// `CDP_CRASH_RUN` (a tag for call ids), `CDP_CRASH_PUT_DELAY_MS`.
///
/// Mode `write`: appends batches of calls forever, printing `ack <run>-<batch>`
/// after each `append` returns, and publishing (`publishing` / `published`) every
/// tenth batch. Mode `finish`: opens (recovering), prints what it recovered, and
/// shuts down, publishing everything.
fn child(mode: &str) {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let delay = Duration::from_millis(var("CDP_CRASH_PUT_DELAY_MS").parse().unwrap());
    // A local directory bucket (files written straight from disk), or the same
    // directory through object_store with slow puts.
    let bucket = if std::env::var("CDP_CRASH_LOCAL").is_ok() {
        Bucket::local(var("CDP_CRASH_BUCKET")).unwrap()
    } else {
        let store = LocalFileSystem::new_with_prefix(var("CDP_CRASH_BUCKET")).unwrap();
        let store = common::SlowPuts { inner: store, delay, fail_puts: Default::default() };
        Bucket::new(Arc::new(store), object_store::path::Path::default())
    };
    let config = WriterConfig::new(Id::new("crash").unwrap(), Id::new("test").unwrap(), FileFormat::Json)
        .with_spool_dir(var("CDP_CRASH_SPOOL"))
        .with_interval(Duration::from_secs(3600));
    let run = var("CDP_CRASH_RUN");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (mut writer, recovery) = BucketWriter::open(bucket, config, clock).await.unwrap();
        println!("recovered {} republished {}", recovery.resumed_calls, recovery.republished.len());
        if mode == "finish" {
            let reports = writer.shutdown().await.unwrap();
            println!("finished {}", reports.len());
            return;
        }
        for batch in 0.. {
            let calls = (0..BATCH)
                .map(|i| common::call(CallType::ALL[i % 6], &format!("{run}-{batch}-{i}")))
                .collect();
            writer.append(calls).await.unwrap();
            println!("ack {run}-{batch}");
            if batch % 10 == 9 {
                println!("publishing");
                writer.sync_now().await.unwrap();
                println!("published");
            }
        }
    });
}

struct Dirs {
    _root: tempfile::TempDir,
    bucket: PathBuf,
    spool: PathBuf,
}

fn spawn(dirs: &Dirs, mode: &str, run: &str, put_delay_ms: u64) -> (Child, BufReader<ChildStdout>) {
    spawn_with(dirs, mode, run, put_delay_ms, false)
}

fn spawn_with(
    dirs: &Dirs,
    mode: &str,
    run: &str,
    put_delay_ms: u64,
    local: bool,
) -> (Child, BufReader<ChildStdout>) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    if local {
        command.env("CDP_CRASH_LOCAL", "1");
    }
    let mut child = command
        .env(CHILD, mode)
        .env("CDP_CRASH_BUCKET", &dirs.bucket)
        .env("CDP_CRASH_SPOOL", &dirs.spool)
        .env("CDP_CRASH_RUN", run)
        .env("CDP_CRASH_PUT_DELAY_MS", put_delay_ms.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

/// Reads the child's lines until `stop` says so; returns the acknowledged batches.
fn read_until(out: &mut BufReader<ChildStdout>, mut stop: impl FnMut(&str, usize) -> bool) -> Vec<String> {
    let mut acked = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the child ended early");
        let line = line.trim_end();
        if let Some(batch) = line.strip_prefix("ack ") {
            acked.push(batch.to_owned());
        }
        if stop(line, acked.len()) {
            return acked;
        }
    }
}

fn sigkill(mut child: Child) {
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed");
}

/// Every call id in the bucket, with how often it appears, and the positions.
fn bucket_contents(dir: &Path) -> (BTreeMap<String, usize>, Vec<u64>) {
    let mut ids = BTreeMap::new();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if cdp_bucket::ObjectName::parse(&name).is_none() {
            continue;
        }
        for id in common::json_ids(&std::fs::read(entry.path()).unwrap()) {
            *ids.entry(id).or_insert(0) += 1;
        }
        names.push(name);
    }
    (ids, common::positions(&names, "crash", "test"))
}

/// Checks the bucket against the acknowledged batches: each call once, dense
/// positions, an empty spool. Returns (calls in the bucket, positions).
fn check_exactly_once(dirs: &Dirs, acked: &[String]) -> (usize, usize) {
    let (ids, positions) = bucket_contents(&dirs.bucket);
    for batch in acked {
        for i in 0..BATCH {
            let id = format!("{batch}-{i}");
            assert_eq!(ids.get(&id), Some(&1), "acknowledged call {id}");
        }
    }
    let doubled: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "calls published twice: {doubled:?}");
    let want: Vec<u64> = (1..=positions.len() as u64).collect();
    assert_eq!(positions, want, "dense positions");
    let left: Vec<_> = std::fs::read_dir(&dirs.spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("segment-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let temp: Vec<_> = std::fs::read_dir(&dirs.bucket)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(temp.is_empty(), "{temp:?}");
    (ids.len(), positions.len())
}

/// A local directory bucket, files written straight from disk: killed six times,
/// right after acknowledgements and right as publishing starts.
fn local_bucket_killed_again_and_again() {
    let root = tempfile::tempdir().unwrap();
    let dirs = Dirs { bucket: root.path().join("bucket"), spool: root.path().join("spool"), _root: root };
    let mut acked = Vec::new();
    for (cycle, kill_after) in [7usize, 0, 13, 0, 4, 0].into_iter().enumerate() {
        let (child, mut out) = spawn_with(&dirs, "write", &format!("l{cycle}"), 0, true);
        if kill_after == 0 {
            // As publishing starts: encoding and linking the files.
            acked.extend(read_until(&mut out, |line, _| line == "publishing"));
        } else {
            acked.extend(read_until(&mut out, |_, n| n == kill_after));
        }
        sigkill(child);
    }
    let (mut child, mut out) = spawn_with(&dirs, "finish", "end", 0, true);
    read_until(&mut out, |line, _| line.starts_with("finished"));
    assert!(child.wait().unwrap().success());
    let (calls, positions) = check_exactly_once(&dirs, &acked);
    println!(
        "local bucket: {} acknowledged calls, {calls} in the bucket, each once, in positions 1..={positions}",
        acked.len() * BATCH
    );
}

fn killed_while_appending_and_while_publishing() {
    let root = tempfile::tempdir().unwrap();
    let dirs = Dirs { bucket: root.path().join("bucket"), spool: root.path().join("spool"), _root: root };
    std::fs::create_dir_all(&dirs.bucket).unwrap();
    let mut acked = Vec::new();

    // 1. Killed while appending: right after an acknowledgement, with the next
    //    batch on its way into the spool, past a publish or two.
    let (child, mut out) = spawn(&dirs, "write", "a", 0);
    acked.extend(read_until(&mut out, |_, n| n == 25));
    sigkill(child);

    // 2. Restarted, then killed while publishing: puts take 300 ms each, and the
    //    kill comes 450 ms into a sync of six files.
    let (child, mut out) = spawn(&dirs, "write", "b", 300);
    acked.extend(read_until(&mut out, |line, _| line == "publishing"));
    std::thread::sleep(Duration::from_millis(450));
    sigkill(child);
    let (published_before, _) = bucket_contents(&dirs.bucket);
    assert!(
        published_before.keys().any(|id| id.starts_with("b-")),
        "the kill came in the middle of publishing: some of run b's files are out"
    );

    // 3. Restarted again: appends a little, killed while appending.
    let (child, mut out) = spawn(&dirs, "write", "c", 0);
    acked.extend(read_until(&mut out, |_, n| n == 3));
    sigkill(child);

    // 4. A last start recovers and shuts down cleanly.
    let (mut child, mut out) = spawn(&dirs, "finish", "d", 0);
    read_until(&mut out, |line, _| line.starts_with("finished"));
    assert!(child.wait().unwrap().success());

    // Every acknowledged call is there exactly once, nothing twice (calls in flight
    // at a kill may or may not be), dense positions, an empty spool.
    let (calls, positions) = check_exactly_once(&dirs, &acked);
    assert!(positions >= 4, "several syncs happened: {positions}");
    println!(
        "{} acknowledged calls, {calls} calls in the bucket, each once, in positions 1..={positions}",
        acked.len() * BATCH
    );
}
