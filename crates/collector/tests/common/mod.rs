//! A collector on loopback for the tests, a real HTTP client, and reading the bucket.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cdp_bucket::{Bucket, BucketWriter, Clock, Id, SystemClock, WriterConfig};
use cdp_collector::{Collector, CollectorConfig, Shutdown};
use cdp_encode::FileFormat;
use tokio::sync::oneshot;

pub const KEY: &str = "test-write-key";

/// The HTTP client needs a TLS provider installed even for plain HTTP.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

pub struct Running {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Shutdown>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Shuts the collector down, which publishes the open window.
    pub async fn shutdown(self) -> Shutdown {
        self.stop.send(()).unwrap();
        self.task.await.unwrap()
    }

    /// Shuts the collector down and reads the bucket (JSON files).
    pub async fn stop(self) -> (Shutdown, BTreeMap<String, usize>) {
        let bucket = self.dir.join("bucket");
        (self.shutdown().await, bucket_ids(&bucket))
    }
}

/// A collector with a JSON bucket and a spool under `dir`.
pub async fn start(dir: &Path) -> Running {
    start_with(dir, |c| c).await
}

pub async fn start_with(dir: &Path, config: impl FnOnce(WriterConfig) -> WriterConfig) -> Running {
    start_collector(dir, FileFormat::Json, config, |c| c).await
}

/// A collector writing `format` under `dir` (bucket, spool, rejected calls in
/// `spool/rejected`), with both changes to the defaults applied.
pub async fn start_collector(
    dir: &Path,
    format: FileFormat,
    writer_config: impl FnOnce(WriterConfig) -> WriterConfig,
    collector_config: impl FnOnce(CollectorConfig) -> CollectorConfig,
) -> Running {
    start_collector_with_clock(dir, format, Arc::new(SystemClock), writer_config, collector_config).await
}

/// [`start_collector`] with the clock the writer and the handlers read.
#[allow(dead_code)]
pub async fn start_collector_with_clock(
    dir: &Path,
    format: FileFormat,
    clock: Arc<dyn Clock>,
    writer_config: impl FnOnce(WriterConfig) -> WriterConfig,
    collector_config: impl FnOnce(CollectorConfig) -> CollectorConfig,
) -> Running {
    let writer_config = writer_config(
        WriterConfig::new(Id::new("web").unwrap(), Id::new("events").unwrap(), format)
            .with_spool_dir(dir.join("spool")),
    );
    let collector = Collector::bind(
        "127.0.0.1:0".parse().unwrap(),
        collector_config(CollectorConfig::new([KEY, "second-key"])),
    )
    .await
    .unwrap();
    let bucket = Bucket::local(dir.join("bucket")).unwrap();
    let (writer, _) = BucketWriter::open(bucket, writer_config, clock.clone()).await.unwrap();
    let addr = collector.local_addr();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        collector
            .serve(writer, clock, async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
    });
    Running { addr, dir: dir.to_owned(), stop, task }
}

/// The lines of the rejected-calls file of a collector started under `dir`.
pub fn rejected_lines(dir: &Path) -> Vec<serde_json::Value> {
    match std::fs::read_to_string(dir.join("spool").join("rejected").join(cdp_collector::REJECTED_FILE)) {
        Ok(text) => text.lines().map(|l| serde_json::from_str(l).unwrap()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}

/// Every `id` in the bucket's JSON files, with how often it appears.
pub fn bucket_ids(dir: &Path) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for row in bucket_rows(dir) {
        *ids.entry(row["id"].as_str().unwrap().to_owned()).or_insert(0) += 1;
    }
    ids
}

/// Every row of the bucket's JSON files.
pub fn bucket_rows(dir: &Path) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return rows };
    for entry in entries {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if cdp_bucket::ObjectName::parse(&name).is_none() {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            rows.push(serde_json::from_str(line).unwrap());
        }
    }
    rows
}

/// A track call with this `messageId`.
pub fn track(id: &str) -> serde_json::Value {
    serde_json::json!({"type": "track", "messageId": id, "userId": "u1", "event": "Order Completed", "properties": {"total": 1}})
}
