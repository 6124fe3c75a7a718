//! What an operator sees: `/metrics` scraped around a known load, and slow clients
//! over real sockets that are cut off without holding up the others.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use cdp_encode::FileFormat;
use common::{KEY, client, start_collector, track};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The samples of a text exposition: `name{labels}` to value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (key, value) = line.rsplit_once(' ').unwrap();
            (key.to_owned(), value.parse().unwrap())
        })
        .collect()
}

async fn scrape(http: &reqwest::Client, url: &str) -> BTreeMap<String, f64> {
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    samples(&response.text().await.unwrap())
}

/// What grew between two scrapes, for every series that did.
fn growth(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter(|(key, _)| !key.contains("_bucket{") && !key.contains("_sum") && !key.ends_with("_count"))
        .filter(|(key, _)| key.contains("_total"))
        .map(|(key, value)| (key.clone(), value - before.get(key).copied().unwrap_or(0.0)))
        .filter(|(_, grew)| *grew != 0.0)
        .collect()
}

fn spool_bytes_on_disk(dir: &Path) -> f64 {
    std::fs::read_dir(dir.join("spool"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".spool"))
        .map(|e| e.metadata().unwrap().len() as f64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_known_load_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(dir.path(), FileFormat::Json, |w| w, |c| c).await;
    let http = client();
    let metrics = c.url("/metrics");
    let before = scrape(&http, &metrics).await;
    assert_eq!(before["cdp_collector_spool_bytes"], 0.0);

    // The load, one request after another.
    for i in 0..5 {
        let response = http
            .post(c.url("/v1/track"))
            .basic_auth(KEY, Some(""))
            .json(&track(&format!("t{i}")))
            .send()
            .await;
        assert_eq!(response.unwrap().status(), 200);
    }
    let mut no_event = track("no-event");
    no_event.as_object_mut().unwrap().remove("event");
    let permissive = json!({"batch": [
        track("b1"),
        {"type": "identify", "messageId": "b2", "userId": "u"},
        {"type": "identify", "messageId": "L".repeat(101), "userId": "u"},
        no_event,
        {"type": "page", "messageId": "b3", "anonymousId": "a", "name": "Home"},
    ]});
    let response = http.post(c.url("/v1/batch")).basic_auth(KEY, Some("")).json(&permissive).send().await;
    assert_eq!(response.unwrap().status(), 200);
    let strict = json!({"batch": [track("s1"), {"type": "group", "messageId": "s2", "userId": "u"}]});
    let response = http
        .post(c.url("/v1/batch"))
        .basic_auth(KEY, Some(""))
        .header("x-strict-mode", "1")
        .json(&strict)
        .send()
        .await;
    assert_eq!(response.unwrap().status(), 400);
    let response = http.post(c.url("/v1/track")).basic_auth("nope", Some("")).json(&track("x")).send().await;
    assert_eq!(response.unwrap().status(), 401);
    assert_eq!(http.get(c.url("/wp-admin")).send().await.unwrap().status(), 404);

    let after = scrape(&http, &metrics).await;
    let expected: BTreeMap<String, f64> = [
        (r#"cdp_collector_requests_total{route="/v1/track",status="200"}"#, 5.0),
        (r#"cdp_collector_requests_total{route="/v1/track",status="401"}"#, 1.0),
        (r#"cdp_collector_requests_total{route="/v1/batch",status="200"}"#, 1.0),
        (r#"cdp_collector_requests_total{route="/v1/batch",status="400"}"#, 1.0),
        (r#"cdp_collector_requests_total{route="other",status="404"}"#, 1.0),
        // The first scrape, answered before the second.
        (r#"cdp_collector_requests_total{route="/metrics",status="200"}"#, 1.0),
        (r#"cdp_collector_calls_accepted_total{type="track"}"#, 6.0),
        (r#"cdp_collector_calls_accepted_total{type="identify"}"#, 1.0),
        (r#"cdp_collector_calls_accepted_total{type="page"}"#, 1.0),
        (r#"cdp_collector_calls_rejected_total{type="identify",reason="message_id_too_long"}"#, 1.0),
        (r#"cdp_collector_calls_rejected_total{type="track",reason="missing_field"}"#, 1.0),
        (r#"cdp_collector_calls_rejected_total{type="group",reason="missing_field"}"#, 1.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(growth(&before, &after), expected);
    // Latency: one observation per request of the route.
    assert_eq!(after[r#"cdp_collector_request_duration_seconds_count{route="/v1/track"}"#], 6.0);
    assert!(after[r#"cdp_collector_request_duration_seconds_sum{route="/v1/track"}"#] > 0.0);
    // The spool: one record per append (the requests came one at a time), and
    // exactly the bytes of its files.
    assert_eq!(after["cdp_collector_spool_records"], 6.0);
    assert_eq!(after["cdp_collector_spool_bytes"], spool_bytes_on_disk(dir.path()));
    assert!(after["cdp_collector_open_window_age_seconds"] >= 0.0);
    assert_eq!(after["cdp_collector_positions_published_total"], 0.0);
    assert_eq!(after["cdp_collector_last_publish_timestamp_seconds"], 0.0);
    assert_eq!(after["cdp_collector_rejected_calls_unwritten_total"], 0.0);
    // OpenMetrics for a scraper that asks for it.
    let response = http
        .get(&metrics)
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    assert!(response.text().await.unwrap().ends_with("# EOF\n"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_what_was_published() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(dir.path(), FileFormat::Json, |w| w.with_interval(Duration::from_secs(1)), |c| c)
        .await;
    let http = client();
    let response = http.post(c.url("/v1/track")).basic_auth(KEY, Some("")).json(&track("p1")).send().await;
    assert_eq!(response.unwrap().status(), 200);
    // The window ends within a second; the writer's tick (every second) publishes it.
    let started = Instant::now();
    let after = loop {
        let now = scrape(&http, &c.url("/metrics")).await;
        if now["cdp_collector_positions_published_total"] > 0.0 || started.elapsed() > Duration::from_secs(10)
        {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(after["cdp_collector_positions_published_total"], 1.0);
    let published_at = after["cdp_collector_last_publish_timestamp_seconds"];
    let unix_now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(published_at > unix_now - 30.0 && published_at <= unix_now + 1.0, "{published_at} vs {unix_now}");
    assert!(after["cdp_collector_last_publish_duration_seconds"] > 0.0);
    assert_eq!(after["cdp_collector_spool_bytes"], 0.0);
    assert_eq!(after["cdp_collector_spool_records"], 0.0);
    assert_eq!(after["cdp_collector_open_window_age_seconds"], 0.0);
    let (shutdown, got) = c.stop().await;
    assert!(shutdown.published.is_empty(), "published before the shutdown");
    assert_eq!(got.into_iter().collect::<Vec<_>>(), [("p1".to_owned(), 1)]);
    assert!(dir.path().join("bucket").join("web.events.1.track.json").exists());
}

/// Reads until the server closes the connection; returns what it sent and when
/// it closed, or `None` if it was still open after `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<(String, Instant)> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Some((String::from_utf8_lossy(&got).into_owned(), Instant::now()));
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `bytes` one at a time, `every` apart, until the server closes the
/// connection; returns how many it took.
async fn trickle(stream: &mut TcpStream, bytes: &[u8], every: Duration) -> usize {
    for (sent, byte) in bytes.iter().enumerate() {
        if stream.write_all(&[*byte]).await.is_err() {
            return sent;
        }
        tokio::time::sleep(every).await;
    }
    bytes.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_at_their_timeouts_while_others_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_secs(1);
    let c = start_collector(
        dir.path(),
        FileFormat::Json,
        |w| w,
        |mut c| {
            c.header_timeout = timeout;
            c.body_timeout = timeout;
            c
        },
    )
    .await;
    let addr = c.addr;
    let body = track("slow-body").to_string();
    let auth = "Authorization: Basic dGVzdC13cml0ZS1rZXk6\r\n"; // test-write-key:

    // Headers at one byte every 100 ms: far more than a second to send them all.
    let slow_headers = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("POST /v1/track HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 2\r\n\r\n{{}}");
        let started = Instant::now();
        let sent = trickle(&mut stream, request.as_bytes(), Duration::from_millis(100)).await;
        let closed = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        (sent, request.len(), started, closed)
    });
    // Headers at once, then the body at one byte every 100 ms.
    let slow_body = tokio::spawn({
        let body = body.clone();
        async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST /v1/track HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let started = Instant::now();
            let (mut read, mut write) = stream.into_split();
            let writer = tokio::spawn(async move {
                for byte in body.as_bytes() {
                    if write.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
            let mut answer = Vec::new();
            let read_all = tokio::time::timeout(Duration::from_secs(5), read.read_to_end(&mut answer)).await;
            writer.abort();
            (started, read_all.is_ok(), String::from_utf8_lossy(&answer).into_owned(), Instant::now())
        }
    });
    // A connection that sends nothing at all.
    let idle = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        (started, read_until_closed(&mut stream, Duration::from_secs(5)).await)
    });

    // Meanwhile, ordinary clients are answered at once.
    let http = client();
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let started = Instant::now();
        let response = http
            .post(c.url("/v1/track"))
            .basic_auth(KEY, Some(""))
            .json(&track(&format!("fast{i}")))
            .send()
            .await;
        assert_eq!(response.unwrap().status(), 200);
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(slowest < timeout, "an ordinary request waited {slowest:?} behind slow clients");

    let (sent, total, started, closed) = slow_headers.await.unwrap();
    let (_, closed_at) = closed.expect("the slow-headers connection was closed");
    assert!(sent < total, "the whole request went through ({sent} of {total} bytes)");
    let took = closed_at - started;
    assert!(took >= timeout && took < timeout * 3, "closed after {took:?}");

    let (started, closed, answer, closed_at) = slow_body.await.unwrap();
    assert!(closed, "the slow-body connection was closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"timeout""#), "{answer}");
    let took = closed_at - started;
    assert!(took >= timeout && took < timeout * 3, "closed after {took:?}");

    let (started, closed) = idle.await.unwrap();
    let (said, closed_at) = closed.expect("the idle connection was closed");
    let took = closed_at - started;
    assert!(took >= timeout && took < timeout * 3, "closed after {took:?} having said {said:?}");

    let (_, got) = c.stop().await;
    assert_eq!(got.len(), 20, "only the ordinary calls were kept: {got:?}");
    assert!(!got.contains_key("slow-body"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_one_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_secs(1);
    let c = start_collector(
        dir.path(),
        FileFormat::Json,
        |w| w,
        |mut c| {
            c.max_connections = 2;
            c.header_timeout = timeout;
            c
        },
    )
    .await;
    // Two idle connections take both places.
    let idle_1 = TcpStream::connect(c.addr).await.unwrap();
    let idle_2 = TcpStream::connect(c.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let http = client();
    let started = Instant::now();
    let response =
        http.post(c.url("/v1/track")).basic_auth(KEY, Some("")).json(&track("waited")).send().await;
    assert_eq!(response.unwrap().status(), 200);
    // Answered once the idle ones reached their header timeout, not before.
    let waited = started.elapsed();
    assert!(waited >= timeout - Duration::from_millis(300) && waited < timeout * 4, "waited {waited:?}");
    drop((idle_1, idle_2));
    let (_, got) = c.stop().await;
    assert_eq!(got.len(), 1);
}

/// The system clock, but reading it on the collector's writer thread takes
/// `delay` while `slow` is set: a writer that cannot keep up.
#[derive(Debug)]
struct SlowWriterClock {
    slow: std::sync::atomic::AtomicBool,
    delay: Duration,
}

impl cdp_bucket::Clock for SlowWriterClock {
    fn now(&self) -> cdp_calls::Timestamp {
        let on_writer = std::thread::current().name() == Some("cdp-writer");
        if on_writer && self.slow.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(self.delay);
        }
        cdp_bucket::SystemClock.now()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_writer_falls_behind_requests_wait_then_get_503_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(SlowWriterClock {
        slow: std::sync::atomic::AtomicBool::new(false),
        delay: Duration::from_millis(1500),
    });
    let c = common::start_collector_with_clock(
        dir.path(),
        FileFormat::Json,
        clock.clone(),
        |w| w,
        |mut c| {
            c.max_queued_calls = 5;
            c.queue_timeout = Duration::from_millis(300);
            c
        },
    )
    .await;
    let http = client();
    let batch = |tag: &str, n: usize| json!({ "batch": (0..n).map(|i| track(&format!("{tag}-{i}"))).collect::<Vec<_>>() });
    clock.slow.store(true, std::sync::atomic::Ordering::SeqCst);
    // Five calls take every place while the writer works on them for 1.5 s.
    let first = tokio::spawn({
        let (http, url, body) = (http.clone(), c.url("/v1/batch"), batch("first", 5));
        async move { http.post(url).basic_auth(KEY, Some("")).json(&body).send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The next request waits for room (back-pressure), then is refused after the
    // queue timeout with 503 and Retry-After, long before the writer is done.
    let started = Instant::now();
    let busy =
        http.post(c.url("/v1/batch")).basic_auth(KEY, Some("")).json(&batch("busy", 2)).send().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(1200),
        "waited {waited:?}"
    );
    let body: serde_json::Value = busy.json().await.unwrap();
    assert_eq!(body["code"], "busy", "{body}");
    assert_eq!(first.await.unwrap(), 200);
    // Once the writer has caught up, the retry is taken.
    clock.slow.store(false, std::sync::atomic::Ordering::SeqCst);
    let retried =
        http.post(c.url("/v1/batch")).basic_auth(KEY, Some("")).json(&batch("busy", 2)).send().await.unwrap();
    assert_eq!(retried.status(), 200);
    let (_, got) = c.stop().await;
    let want: BTreeMap<String, usize> =
        ["first-0", "first-1", "first-2", "first-3", "first-4", "busy-0", "busy-1"]
            .iter()
            .map(|id| (id.to_string(), 1))
            .collect();
    assert_eq!(got, want, "what was acknowledged, once; nothing of the refused request");
}
