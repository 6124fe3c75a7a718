//! The collector process is killed with SIGKILL under load from concurrent
//! clients, then restarted. Every call that got a 200 reaches the bucket exactly
//! once, and no call reaches it twice.
//!
//! This test binary is its own child: run with `CDP_COLLECTOR_CHILD` set, it is a
//! collector process; without, it runs the scenario.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdp_bucket::{Bucket, BucketWriter, Clock, Id, SystemClock, WriterConfig};
use cdp_collector::{Collector, CollectorConfig};
use cdp_encode::FileFormat;

const CHILD: &str = "CDP_COLLECTOR_CHILD";

fn main() {
    match std::env::var(CHILD) {
        Ok(addr) => child(addr.parse().unwrap()),
        Err(_) => {
            killed_under_load_then_restarted();
            println!("test crash::killed_under_load_then_restarted ... ok");
        }
    }
}

/// A collector on `addr` with its bucket and spool in `CDP_COLLECTOR_DIR`; 2-second
/// windows so that syncs happen under load; SIGTERM shuts it down gracefully.
fn child(addr: SocketAddr) {
    let dir = std::path::PathBuf::from(std::env::var("CDP_COLLECTOR_DIR").unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let config = WriterConfig::new(Id::new("web").unwrap(), Id::new("events").unwrap(), FileFormat::Json)
            .with_spool_dir(dir.join("spool"))
            .with_interval(Duration::from_secs(2));
        let bucket = Bucket::local(dir.join("bucket")).unwrap();
        let (writer, recovery) = BucketWriter::open(bucket, config, clock.clone()).await.unwrap();
        eprintln!(
            "child: resumed {} calls, republished {}",
            recovery.resumed_calls,
            recovery.republished.len()
        );
        let collector = Collector::bind(addr, CollectorConfig::new([common::KEY])).await.unwrap();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        println!("listening");
        collector
            .serve(writer, clock, async move {
                term.recv().await;
            })
            .await
            .unwrap();
    });
}

fn spawn(addr: SocketAddr, dir: &Path) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, addr.to_string())
        .env("CDP_COLLECTOR_DIR", dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for "listening".
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "listening");
    child
}

fn killed_under_load_then_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let next = Arc::new(AtomicU64::new(0));

    let mut child = spawn(addr, dir.path());
    // Four concurrent clients, each sending 50-call batches as fast as it can.
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (acked, refused, running, next) = (acked.clone(), refused.clone(), running.clone(), next.clone());
            runtime.spawn(async move {
                let http = common::client();
                while running.load(Ordering::SeqCst) {
                    let first = next.fetch_add(50, Ordering::SeqCst);
                    let ids: Vec<String> = (first..first + 50).map(|i| format!("c{i}")).collect();
                    let batch = serde_json::json!({"batch": ids.iter().map(|id| common::track(id)).collect::<Vec<_>>()});
                    let sent = http
                        .post(format!("http://{addr}/v1/batch"))
                        .basic_auth(common::KEY, Some(""))
                        .json(&batch)
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == 200 => acked.lock().unwrap().extend(ids),
                        _ => {
                            refused.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(2500));
    let acked_before_kill = acked.lock().unwrap().len();
    child.kill().unwrap(); // SIGKILL, with requests in flight
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut child = spawn(addr, dir.path());
    std::thread::sleep(Duration::from_millis(2500));
    running.store(false, Ordering::SeqCst);
    runtime.block_on(async {
        for client in clients {
            client.await.unwrap();
        }
    });
    // A graceful stop publishes the open window.
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());

    let acked = acked.lock().unwrap().clone();
    assert!(acked_before_kill > 0 && acked.len() > acked_before_kill, "load before and after the kill");
    assert!(refused.load(Ordering::SeqCst) > 0, "some requests failed while the collector was down");
    let in_bucket = common::bucket_ids(&dir.path().join("bucket"));
    let doubled: Vec<_> = in_bucket.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "calls in the bucket twice: {doubled:?}");
    let missing: Vec<_> = acked.iter().filter(|id| !in_bucket.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged calls missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    println!(
        "{} calls acknowledged ({} before the kill), {} in the bucket, none twice; {} requests failed",
        acked.len(),
        acked_before_kill,
        in_bucket.len(),
        refused.load(Ordering::SeqCst)
    );
}
