//! A fleet on one bucket: three collector processes, each with its own action id
//! and its own spool, behind a round-robin "load balancer" (the clients), all
//! writing to one S3 bucket (moto, started by `bash .ci/test`). One collector is
//! killed with SIGKILL under load and restarted with the same action id and
//! spool; then all three stop with SIGTERM.
//!
//! The bucket is then read back with plain S3 requests (no `object_store`, no
//! `cdp-bucket`): every call that got a `200` is in it exactly once, under the
//! action id of the collector that acknowledged it; nothing is in it that was not
//! sent; every name parses as `<integration>.<action>.<position>.<type>.<ext>`;
//! each action's positions are dense from 1; and, the bucket being versioned,
//! every object has exactly one version (nothing was overwritten).
//!
//! A second test gives two collectors the same action id by mistake: the one that
//! loses position 1 stops and fails its health check.
//!
//! This test binary is also the collector: run with `CDP_FLEET_CHILD` set (by the
//! test itself), its one test serves as a collector process instead.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::BufRead;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use cdp_bucket::{Bucket, BucketWriter, Clock, Durability, Id, SystemClock, WriterConfig};
use cdp_collector::{Collector, CollectorConfig};
use cdp_encode::FileFormat;
use reqwest::header::AUTHORIZATION;

/// Set in a collector process: `<listen address> <action id> <spool dir> <bucket URL>`.
const CHILD: &str = "CDP_FLEET_CHILD";
/// This test's name, which a collector process runs.
const TEST: &str = "three_collectors_on_one_bucket_one_killed_and_restarted";
/// The integration id all three share.
const INTEGRATION: &str = "web";
/// The action ids, one per collector.
const ACTIONS: [&str; 3] = ["collector-a", "collector-b", "collector-c"];
/// The collector that is killed and restarted.
const KILLED: usize = 1;
/// The prefix of the objects in the bucket (the path part of the bucket URL).
const PREFIX: &str = "fleet";
/// The sync interval of every collector: several positions per collector.
const INTERVAL: Duration = Duration::from_secs(2);
/// Concurrent clients, and calls per batch.
const CLIENTS: usize = 6;
const BATCH: u64 = 40;

#[test]
fn three_collectors_on_one_bucket_one_killed_and_restarted() {
    if let Ok(settings) = std::env::var(CHILD) {
        collector_process(&settings);
        return;
    }
    fleet();
}

/// Two collectors given the same action id by mistake, on one bucket: both
/// number from 1, so the second to publish finds position 1 taken with other
/// bytes. Its writer stops (its calls stay in its spool) and its `/health` fails,
/// so that a load balancer takes it out; the other goes on.
#[test]
fn collectors_sharing_an_action_id_the_second_stops_and_fails_its_health_check() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let http = common::client();
        let mut running = Vec::new();
        for n in 0..2 {
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let config =
                WriterConfig::new(Id::new("web").unwrap(), Id::new("same").unwrap(), FileFormat::Json)
                    .with_spool_dir(dir.path().join(format!("spool-{n}")))
                    .with_interval(Duration::from_secs(1));
            let mut collector_config = CollectorConfig::new([common::KEY]);
            collector_config.tick = Duration::from_millis(100);
            let collector = Collector::bind("127.0.0.1:0".parse().unwrap(), collector_config).await.unwrap();
            let addr = collector.local_addr();
            let bucket = Bucket::local(dir.path().join("bucket")).unwrap();
            let (writer, _) = BucketWriter::open(bucket, config, clock.clone()).await.unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(collector.serve(writer, clock, async { stopped.await.unwrap_or(()) }));
            running.push((addr, stop, task));
        }
        let health = |addr: SocketAddr| {
            let http = http.clone();
            async move {
                let response = http.get(format!("http://{addr}/health")).send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            }
        };
        for (n, (addr, _, _)) in running.iter().enumerate() {
            assert_eq!(health(*addr).await, (200, r#"{"status":"ok"}"#.to_owned()));
            let sent = http
                .post(format!("http://{addr}/v1/track"))
                .basic_auth(common::KEY, Some(""))
                .json(&common::track(&format!("from-{n}")))
                .send()
                .await
                .unwrap();
            assert_eq!(sent.status(), 200);
        }
        // Both publish position 1 once their windows end; one finds it taken.
        let deadline = Instant::now() + Duration::from_secs(10);
        let (winner, loser) = loop {
            let states = [health(running[0].0).await, health(running[1].0).await];
            match (states[0].0, states[1].0) {
                (200, 503) => break (0, 1),
                (503, 200) => break (1, 0),
                (200, 200) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                _ => panic!("expected one collector to stop, found {states:?}"),
            }
        };
        let (status, body) = health(running[loser].0).await;
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!((status, body["status"].as_str()), (503, Some("stopped")), "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("position conflict") && message.contains("web.same.1.track.json"),
            "{message}"
        );
        let refused = http
            .post(format!("http://{}/v1/track", running[loser].0))
            .basic_auth(common::KEY, Some(""))
            .json(&common::track("refused"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 503);
        assert_eq!(health(running[winner].0).await.0, 200);

        let mut results = Vec::new();
        for (_, stop, task) in running {
            stop.send(()).unwrap();
            results.push(task.await.unwrap());
        }
        assert!(results[winner].is_ok());
        let error = results[loser].as_ref().unwrap_err().to_string();
        assert!(error.contains("stopped"), "{error}");
        // The bucket holds the winner's call alone; the loser's stays in its spool.
        let ids = common::bucket_ids(&dir.path().join("bucket"));
        assert_eq!(ids.keys().collect::<Vec<_>>(), [&format!("from-{winner}")]);
        let spool = std::fs::read_dir(dir.path().join(format!("spool-{loser}"))).unwrap();
        assert!(
            spool.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().ends_with(".spool")),
            "the stopped collector keeps its calls in its spool"
        );
    });
}

/// The `object_store` settings for the S3-compatible server at `endpoint`.
fn s3_options(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("aws_endpoint", endpoint.to_owned()),
        ("aws_allow_http", "true".into()),
        ("aws_region", "us-east-1".into()),
        ("aws_access_key_id", "testing".into()),
        ("aws_secret_access_key", "testing".into()),
    ]
}

/// The S3-compatible server started by `bash .ci/test` (moto on loopback).
fn s3_endpoint() -> String {
    std::env::var("CDP_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "CDP_TEST_S3_ENDPOINT is not set: this test needs the S3-compatible server that \
             `bash .ci/test` installs and starts on loopback (moto). Run it with \
             `bash .ci/test cargo test -p cdp-collector --all-features --test fleet`, or start \
             `moto_server -H 127.0.0.1 -p 5055` and set CDP_TEST_S3_ENDPOINT=http://127.0.0.1:5055"
        )
    })
}

/// One collector of the fleet, as an operator runs it: JSON files every
/// [`INTERVAL`], the spool forced to disk before each answer
/// (`Durability::EveryAppend`: a `200` means the calls are durably spooled),
/// SIGTERM to stop (which publishes the open window).
fn collector_process(settings: &str) {
    let [addr, action, spool, url] = settings.split(' ').collect::<Vec<_>>()[..] else {
        panic!("{CHILD} is not `<addr> <action> <spool> <bucket URL>`: {settings:?}");
    };
    let addr: SocketAddr = addr.parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut collector_config = CollectorConfig::new([common::KEY]);
        collector_config.tick = Duration::from_millis(250);
        let collector = Collector::bind(addr, collector_config).await.unwrap();
        let bucket = Bucket::from_url_with_options(url, s3_options(&s3_endpoint())).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let config =
            WriterConfig::new(Id::new(INTEGRATION).unwrap(), Id::new(action).unwrap(), FileFormat::Json)
                .with_spool_dir(spool)
                .with_interval(INTERVAL)
                .with_durability(Durability::EveryAppend);
        let (writer, recovery) = BucketWriter::open(bucket, config, clock.clone()).await.unwrap();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        println!(
            "ready {action}: resumed {} calls, republished {} syncs, next position {}",
            recovery.resumed_calls,
            recovery.republished.len(),
            recovery.next_position.map_or(0, |p| p.get()),
        );
        let done = collector
            .serve(writer, clock, async move {
                term.recv().await;
            })
            .await
            .unwrap();
        eprintln!("{action}: stopped, {} syncs published on the way out", done.published.len());
    });
}

/// A collector process; killed (SIGKILL) when dropped unless it has exited.
struct Process {
    child: Child,
    action: &'static str,
}

impl Process {
    /// Starts the collector `n` on `addr` and waits until it serves. Returns it
    /// and its recovery line.
    fn start(n: usize, addr: SocketAddr, spool: &Path, url: &str) -> (Process, String) {
        let action = ACTIONS[n];
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, format!("{addr} {action} {} {url}", spool.display()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Forward its stdout (the test harness's lines too) and find "ready".
        let stdout = child.stdout.take().unwrap();
        let (lines, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness's "test … " precedes it on the same line.
                if let Some(at) = line.find("ready ") {
                    let _ = lines.send(line[at..].to_owned());
                }
            }
        });
        let process = Process { child, action };
        let line = ready
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("collector {action} did not start: {e}"));
        (process, line)
    }

    fn sigkill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and waits for a clean exit.
    fn sigterm(mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM {}", self.child.id());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "collector {} exited with {exit} after SIGTERM", self.action);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Three free loopback addresses in the range reserved for this test's collectors.
fn free_addrs() -> Vec<SocketAddr> {
    let addrs: Vec<SocketAddr> = (18300..18400)
        .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        .filter(|addr| TcpListener::bind(addr).is_ok())
        .take(3)
        .collect();
    assert_eq!(addrs.len(), 3, "three free ports between 18300 and 18399");
    addrs
}

/// What the clients saw.
#[derive(Default)]
struct Ledger {
    /// Each acknowledged `messageId`, with the collector that acknowledged it.
    acked: HashMap<String, usize>,
    /// `messageId`s sent in requests that got no `200` (refused, or the answer
    /// lost): each may be in the bucket at most once.
    unacked: HashSet<String>,
    /// The type each sent `messageId` was sent as.
    sent_type: HashMap<String, &'static str>,
    failed_requests: u64,
}

fn fleet() {
    let started = Instant::now();
    let endpoint = s3_endpoint();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let http = common::client();
    let name = format!(
        "cdp-fleet-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
    );
    runtime.block_on(create_versioned_bucket(&http, &endpoint, &name));
    let url = format!("s3://{name}/{PREFIX}");
    // Here rather than in the collectors, so that a build without S3 says so.
    if let Err(e) = Bucket::from_url_with_options(&url, s3_options(&endpoint)) {
        panic!("{url}: {e} (this test needs cdp-collector's `s3` feature, on by default)");
    }

    let dir = tempfile::tempdir().unwrap();
    let spools: Vec<PathBuf> = ACTIONS.iter().map(|a| dir.path().join(a).join("spool")).collect();
    let addrs = free_addrs();
    let mut processes: Vec<Option<Process>> = Vec::new();
    for n in 0..3 {
        let (process, line) = Process::start(n, addrs[n], &spools[n], &url);
        eprintln!("{line}");
        processes.push(Some(process));
    }

    // The clients: each batch goes to the next collector in turn, as a
    // round-robin load balancer sends it. A batch without a `200` is not sent
    // again (its ids count as unacknowledged); the next one goes to the next
    // collector.
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let running = Arc::new(AtomicBool::new(true));
    let next_id = Arc::new(AtomicU64::new(0));
    let turn = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (ledger, running, next_id, turn) =
                (ledger.clone(), running.clone(), next_id.clone(), turn.clone());
            let (http, addrs) = (http.clone(), addrs.clone());
            runtime.spawn(async move {
                while running.load(Ordering::SeqCst) {
                    let target = (turn.fetch_add(1, Ordering::SeqCst) % 3) as usize;
                    let first = next_id.fetch_add(BATCH, Ordering::SeqCst);
                    let calls: Vec<(String, &'static str)> = (first..first + BATCH)
                        .map(|i| (format!("m{i}"), if i % 4 == 0 { "identify" } else { "track" }))
                        .collect();
                    let batch: Vec<serde_json::Value> = calls
                        .iter()
                        .map(|(id, kind)| match *kind {
                            "identify" => serde_json::json!({
                                "type": "identify", "messageId": id, "userId": format!("u{}", first % 97),
                                "traits": {"plan": "pro"}
                            }),
                            _ => common::track(id),
                        })
                        .collect();
                    let sent = http
                        .post(format!("http://{}/v1/batch", addrs[target]))
                        .basic_auth(common::KEY, Some(""))
                        .json(&serde_json::json!({ "batch": batch }))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    let acked = match sent {
                        Ok(response) if response.status() == 200 => {
                            let body = response.text().await;
                            // A 200 whose body is lost counts as unacknowledged.
                            match body {
                                Ok(body) => {
                                    assert_eq!(body, r#"{"success":true}"#, "every call is valid");
                                    true
                                }
                                Err(_) => false,
                            }
                        }
                        _ => false,
                    };
                    {
                        let mut ledger = ledger.lock().unwrap();
                        for (id, kind) in &calls {
                            ledger.sent_type.insert(id.clone(), kind);
                        }
                        if acked {
                            ledger.acked.extend(calls.into_iter().map(|(id, _)| (id, target)));
                        } else {
                            ledger.unacked.extend(calls.into_iter().map(|(id, _)| id));
                            ledger.failed_requests += 1;
                        }
                    }
                    if !acked {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        })
        .collect();

    let acked_by =
        |ledger: &Mutex<Ledger>, n: usize| ledger.lock().unwrap().acked.values().filter(|t| **t == n).count();
    // Long enough for the first windows to end and be published.
    std::thread::sleep(Duration::from_millis(3500));
    let before_kill = acked_by(&ledger, KILLED);
    processes[KILLED].take().unwrap().sigkill(); // with requests in flight
    let killed_at = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let (process, recovery) = Process::start(KILLED, addrs[KILLED], &spools[KILLED], &url);
    eprintln!("restarted: {recovery}");
    processes[KILLED] = Some(process);
    std::thread::sleep(Duration::from_millis(4000));
    running.store(false, Ordering::SeqCst);
    runtime.block_on(async {
        for client in clients {
            client.await.unwrap();
        }
    });
    let after_restart = acked_by(&ledger, KILLED) - before_kill;
    // A graceful stop publishes each open window.
    for process in &mut processes {
        process.take().unwrap().sigterm();
    }

    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    let objects = runtime.block_on(read_bucket(&http, &endpoint, &name));
    check(&ledger, &objects, before_kill, after_restart);
    eprintln!("killed at {killed_at:?}; whole test {:?}", started.elapsed());
}

/// One object of the bucket, read back.
struct Object {
    key: String,
    versions: usize,
    rows: Vec<serde_json::Value>,
}

/// A file name taken apart, without `cdp-bucket`'s parser:
/// `<integration>.<action>.<position>.<type>.<ext>`.
#[derive(Debug)]
struct Name<'a> {
    integration: &'a str,
    action: &'a str,
    position: u64,
    call_type: &'a str,
    ext: &'a str,
}

fn parse_name(key: &str) -> Option<Name<'_>> {
    let file = key.strip_prefix(PREFIX)?.strip_prefix('/')?;
    let [integration, action, position, call_type, ext] = file.split('.').collect::<Vec<_>>()[..] else {
        return None;
    };
    let id =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let decimal =
        !position.is_empty() && position.bytes().all(|b| b.is_ascii_digit()) && !position.starts_with('0');
    let types = ["identify", "track", "page", "screen", "group", "alias"];
    let known = types.contains(&call_type) && ["json", "csv", "parquet"].contains(&ext);
    if !(id(integration) && id(action) && decimal && known) {
        return None;
    }
    Some(Name { integration, action, position: position.parse().ok()?, call_type, ext })
}

/// The assertions, and a summary of what was measured.
fn check(ledger: &Ledger, objects: &[Object], before_kill: usize, after_restart: usize) {
    assert!(!ledger.acked.is_empty(), "no call was acknowledged");
    for (n, action) in ACTIONS.iter().enumerate() {
        assert!(ledger.acked.values().any(|t| *t == n), "collector {action} acknowledged nothing");
    }
    assert!(
        before_kill > 0 && after_restart > 0,
        "the killed collector took calls before ({before_kill}) and after ({after_restart}) its restart"
    );
    assert!(ledger.failed_requests > 0, "some requests failed while a collector was down");

    // Every name parses; one version each (create-only: nothing overwritten).
    let mut positions: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    let mut seen: HashMap<&str, Vec<&str>> = HashMap::new(); // id -> actions of the files it is in
    for object in objects {
        let name =
            parse_name(&object.key).unwrap_or_else(|| panic!("not an export file name: {}", object.key));
        assert_eq!(name.integration, INTEGRATION, "{}", object.key);
        assert_eq!(name.ext, "json", "{}", object.key);
        assert!(ACTIONS.contains(&name.action), "an unknown action id: {}", object.key);
        assert_eq!(object.versions, 1, "{} was written {} times", object.key, object.versions);
        assert!(!object.rows.is_empty(), "{} is empty", object.key);
        positions.entry(name.action).or_default().insert(name.position);
        for row in &object.rows {
            let id =
                row["id"].as_str().unwrap_or_else(|| panic!("a row of {} without an id: {row}", object.key));
            let sent_as =
                ledger.sent_type.get(id).unwrap_or_else(|| panic!("{id} in {} was never sent", object.key));
            assert_eq!(*sent_as, name.call_type, "{id} was sent as {sent_as} but is in {}", object.key);
            seen.entry(id).or_default().push(name.action);
        }
    }

    // Dense positions per action: 1..=n, each with at least one file.
    for action in ACTIONS {
        let have: Vec<u64> = positions.get(action).map(|p| p.iter().copied().collect()).unwrap_or_default();
        let dense: Vec<u64> = (1..=have.len() as u64).collect();
        assert_eq!(have, dense, "the positions of {action} are not 1..=n");
        assert!(have.len() >= 2, "{action} published {} positions; expected several", have.len());
    }

    // Exactly once: nothing twice, every acknowledged call present, under the
    // action id of the collector that acknowledged it.
    let twice: Vec<_> = seen.iter().filter(|(_, actions)| actions.len() > 1).take(5).collect();
    let twice_count = seen.values().filter(|actions| actions.len() > 1).count();
    assert!(twice.is_empty(), "{twice_count} calls in the bucket more than once, e.g. {twice:?}");
    let missing: Vec<_> = ledger.acked.keys().filter(|id| !seen.contains_key(id.as_str())).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged calls missing from the bucket, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    for (id, n) in &ledger.acked {
        assert_eq!(seen[id.as_str()], [ACTIONS[*n]], "{id} was acknowledged by {}", ACTIONS[*n]);
    }
    let unacked_in_bucket = ledger.unacked.iter().filter(|id| seen.contains_key(id.as_str())).count();
    assert_eq!(seen.len(), ledger.acked.len() + unacked_in_bucket);

    let per_action: Vec<String> = ACTIONS
        .iter()
        .map(|a| {
            let acked = ledger.acked.values().filter(|t| ACTIONS[**t] == *a).count();
            format!("{a}: {acked} acknowledged, positions 1..={}", positions.get(a).map_or(0, BTreeSet::len))
        })
        .collect();
    eprintln!(
        "fleet: {} calls acknowledged ({} by the killed collector before the kill, {} after its restart), \
         {} unacknowledged of which {} in the bucket ({} requests failed); {} calls in the bucket, \
         {} files; {}; 0 lost, 0 twice, 0 overwritten",
        ledger.acked.len(),
        before_kill,
        after_restart,
        ledger.unacked.len(),
        unacked_in_bucket,
        ledger.failed_requests,
        seen.len(),
        objects.len(),
        per_action.join("; "),
    );
}

/// The `Authorization` header of the test's own S3 requests. moto checks no
/// signature, but answers a request without one as an anonymous caller, who may
/// not read the objects the collectors put as the `testing` account.
const MOTO_AUTH: &str = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, \
                         SignedHeaders=host, Signature=0";

/// Creates a bucket with versioning on, with plain S3 requests, so that an
/// overwrite would leave a second version behind.
async fn create_versioned_bucket(http: &reqwest::Client, endpoint: &str, name: &str) {
    let created = http
        .put(format!("{endpoint}/{name}"))
        .header(AUTHORIZATION, MOTO_AUTH)
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot reach the S3-compatible server at {endpoint}: {e}"));
    assert_eq!(created.status(), 200, "creating bucket {name}: {}", created.text().await.unwrap());
    let versioning = concat!(
        r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
        "<Status>Enabled</Status></VersioningConfiguration>"
    );
    let enabled = http
        .put(format!("{endpoint}/{name}?versioning"))
        .header(AUTHORIZATION, MOTO_AUTH)
        .body(versioning)
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), 200, "enabling versioning on {name}: {}", enabled.text().await.unwrap());
    let status = http
        .get(format!("{endpoint}/{name}?versioning"))
        .header(AUTHORIZATION, MOTO_AUTH)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(status.contains("<Status>Enabled</Status>"), "versioning of {name}: {status}");
}

/// The text of each `<tag>…</tag>` in `xml`, in order (enough for S3's listings,
/// whose keys here need no unescaping).
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let end = after.find(&close).unwrap_or_else(|| panic!("<{tag}> not closed in {xml}"));
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

/// Every object under [`PREFIX`] with its versions (S3 `ListObjectVersions`) and
/// its rows (each latest version read with `GetObject`, parsed as NDJSON).
async fn read_bucket(http: &reqwest::Client, endpoint: &str, name: &str) -> Vec<Object> {
    let mut versions: BTreeMap<String, usize> = BTreeMap::new();
    let mut markers = String::new();
    loop {
        let listing = http
            .get(format!("{endpoint}/{name}?versions&prefix={PREFIX}/{markers}"))
            .header(AUTHORIZATION, MOTO_AUTH)
            .send()
            .await
            .unwrap();
        assert_eq!(listing.status(), 200);
        let xml = listing.text().await.unwrap();
        assert!(elements(&xml, "DeleteMarker").is_empty(), "nothing is ever deleted: {xml}");
        for version in elements(&xml, "Version") {
            *versions.entry(elements(version, "Key")[0].to_owned()).or_default() += 1;
        }
        if elements(&xml, "IsTruncated") != ["true"] {
            break;
        }
        let key = elements(&xml, "NextKeyMarker")[0];
        let version = elements(&xml, "NextVersionIdMarker")[0];
        markers = format!("&key-marker={key}&version-id-marker={version}");
    }
    let mut objects = Vec::new();
    for (key, versions) in versions {
        let response = http
            .get(format!("{endpoint}/{name}/{key}"))
            .header(AUTHORIZATION, MOTO_AUTH)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {key}");
        let text = response.text().await.unwrap();
        let rows = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{key}: {e}: {line}")))
            .collect();
        objects.push(Object { key, versions, rows });
    }
    objects
}
