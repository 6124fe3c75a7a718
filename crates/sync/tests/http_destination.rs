//! The HTTP destination against a real HTTP server on loopback, scripted per test,
//! which records every request it gets. Assertions are on what the server received.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdp_calls::{Call, JsonObject, MAX_CALL_BYTES};
use cdp_sync::http::{EU_BASE_URL, HttpConfig, HttpConfigError, HttpDestination, Region, US_BASE_URL};
use cdp_sync::{Delivery, Destination, DestinationError, Rejection};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

const KEY: &str = "test-key-123";
/// `Basic ` and base64 of `test-key-123:`, worked out by hand.
const EXPECTED_AUTHORIZATION: &str = "Basic dGVzdC1rZXktMTIzOg==";

/// One request as the server got it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    authorization: Option<String>,
    strict_mode: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
    at: Instant,
}

impl Received {
    /// The calls of the body, which must be exactly `{"batch":[…]}`.
    fn calls(&self) -> Vec<Value> {
        let body: Value = serde_json::from_slice(&self.body).expect("the body is JSON");
        let object = body.as_object().expect("the body is an object");
        assert_eq!(object.len(), 1, "the body has only `batch`: {body}");
        object["batch"].as_array().expect("`batch` is an array").clone()
    }

    fn message_ids(&self) -> Vec<String> {
        self.calls().iter().map(|c| c["messageId"].as_str().expect("messageId").to_owned()).collect()
    }
}

/// What the server does with a request.
enum Reply {
    /// Answer with a status, headers and a body.
    Status(u16, Vec<(&'static str, String)>, String),
    /// Close the connection without answering.
    HangUp,
}

fn ok() -> Reply {
    Reply::Status(200, Vec::new(), "{}".to_owned())
}

fn status(code: u16) -> Reply {
    Reply::Status(code, Vec::new(), format!("status {code}"))
}

type Script = dyn Fn(usize, &Received) -> Reply + Send + Sync;

struct TestServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// A server that answers request number `n` (from 0) with `script(n, &request)`.
    async fn start(script: impl Fn(usize, &Received) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let log = Arc::clone(&received);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let log = Arc::clone(&log);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let log = Arc::clone(&log);
                        let script = Arc::clone(&script);
                        async move { answer(request, &log, &*script).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestServer { addr, received, task }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Quick retries, so that tests run fast.
    fn config(&self) -> HttpConfig {
        HttpConfig::custom(self.base_url(), KEY)
            .with_initial_backoff(Duration::from_millis(5))
            .with_max_backoff(Duration::from_millis(20))
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    request: Request<Incoming>,
    log: &Mutex<Vec<Received>>,
    script: &Script,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let header = |name: &str| request.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let mut received = Received {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        authorization: header("authorization"),
        strict_mode: header("x-strict-mode"),
        content_type: header("content-type"),
        body: Vec::new(),
        at: Instant::now(),
    };
    received.body = request.into_body().collect().await.map_err(std::io::Error::other)?.to_bytes().to_vec();
    let reply = {
        let mut log = log.lock().unwrap();
        log.push(received.clone());
        script(log.len() - 1, &received)
    };
    match reply {
        Reply::Status(code, headers, body) => {
            let mut response = Response::builder().status(code);
            for (name, value) in headers {
                response = response.header(name, value);
            }
            Ok(response.body(Full::new(Bytes::from(body))).unwrap())
        }
        Reply::HangUp => Err(std::io::Error::other("hanging up")),
    }
}

/// A track call with the given `messageId` and about `size` bytes of JSON.
fn call(message_id: &str, size: usize) -> Call {
    let call = Call::track("user-1", "Order Completed").with_message_id(message_id);
    let filler = size.saturating_sub(call.compact_json_len() + 30);
    let properties = format!(r#"{{"note":"{}"}}"#, "x".repeat(filler));
    call.with_payload(JsonObject::from_json(&properties).unwrap())
}

/// Sends `calls` (row numbers from 1) and finishes, collecting the rejections.
async fn run(destination: &mut HttpDestination, calls: &[Call]) -> Result<Vec<Rejection>, DestinationError> {
    let mut rejections = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        rejections.extend(destination.send(Delivery { row_number: i as u64 + 1, call: call.clone() }).await?);
    }
    rejections.extend(destination.finish().await?);
    Ok(rejections)
}

fn ids(calls: &[Call]) -> Vec<String> {
    calls.iter().map(|c| c.message_id.clone().unwrap()).collect()
}

#[tokio::test]
async fn sends_basic_auth_strict_mode_and_the_calls_in_one_batch() {
    let server = TestServer::start(|_, _| ok()).await;
    let mut destination = HttpDestination::new("cio", server.config()).unwrap();
    let calls: Vec<Call> = (0..3).map(|i| call(&format!("m-{i}"), 200)).collect();

    let rejections = run(&mut destination, &calls).await.unwrap();

    assert!(rejections.is_empty());
    let received = server.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/batch");
    assert_eq!(request.authorization.as_deref(), Some(EXPECTED_AUTHORIZATION));
    assert_eq!(request.strict_mode.as_deref(), Some("1"));
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    let expected: Vec<Value> = calls.iter().map(|c| serde_json::from_str(&c.to_json()).unwrap()).collect();
    assert_eq!(request.calls(), expected);
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let server = TestServer::start(|n, _| match n {
        0 => Reply::Status(429, vec![("retry-after", "1".to_owned())], "slow down".to_owned()),
        _ => ok(),
    })
    .await;
    let mut destination = HttpDestination::new("cio", server.config()).unwrap();
    let calls = [call("m-0", 100), call("m-1", 100)];

    let rejections = run(&mut destination, &calls).await.unwrap();

    assert!(rejections.is_empty());
    let received = server.received();
    assert_eq!(received.len(), 2);
    let gap = received[1].at - received[0].at;
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}, before the 1 s asked");
    assert_eq!(received[0].body, received[1].body);
    assert_eq!(received[1].message_ids(), ids(&calls));
}

#[tokio::test]
async fn honours_retry_after_as_an_http_date_on_503() {
    let server = TestServer::start(move |n, _| match n {
        0 => {
            // Three seconds ahead, cut to the second: at least two seconds away.
            let at = chrono::Utc::now() + chrono::Duration::seconds(3);
            let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            Reply::Status(503, vec![("retry-after", date)], String::new())
        }
        _ => ok(),
    })
    .await;
    let mut destination = HttpDestination::new("cio", server.config()).unwrap();

    run(&mut destination, &[call("m-0", 100)]).await.unwrap();

    let received = server.received();
    assert_eq!(received.len(), 2);
    let gap = received[1].at - received[0].at;
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
}

#[tokio::test]
async fn retries_server_errors_and_timeouts_then_succeeds() {
    let server = TestServer::start(|n, _| match n {
        0 => status(500),
        1 => status(503),
        2 => status(408),
        3 => Reply::Status(429, Vec::new(), String::new()),
        4 => status(409),
        _ => ok(),
    })
    .await;
    let mut destination = HttpDestination::new("cio", server.config()).unwrap();
    let calls = [call("m-0", 100), call("m-1", 100)];

    let rejections = run(&mut destination, &calls).await.unwrap();

    assert!(rejections.is_empty());
    let received = server.received();
    assert_eq!(received.len(), 6);
    assert!(received.iter().all(|r| r.body == received[0].body), "each retry sends the same batch");
    assert_eq!(received[5].message_ids(), ids(&calls));
}

#[tokio::test]
async fn retries_a_connection_closed_without_answer() {
    let server = TestServer::start(|n, _| if n == 0 { Reply::HangUp } else { ok() }).await;
    let mut destination = HttpDestination::new("cio", server.config()).unwrap();
    let calls = [call("m-0", 100)];

    run(&mut destination, &calls).await.unwrap();

    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].message_ids(), ids(&calls));
}

#[tokio::test]
async fn retries_run_out_with_the_last_status() {
    let server = TestServer::start(|n, _| if n < 2 { status(500) } else { status(503) }).await;
    let mut destination = HttpDestination::new("cio", server.config().with_max_attempts(4)).unwrap();

    let err = run(&mut destination, &[call("m-0", 100)]).await.unwrap_err();

    let DestinationError::Http { destination: name, status, message } = &err else { panic!("{err:?}") };
    assert_eq!((name.as_str(), *status), ("cio", Some(503)));
    assert!(message.contains("4 attempts") && message.contains("503"), "{message}");
    assert_eq!(server.received().len(), 4);
}

#[tokio::test]
async fn transport_errors_running_out_fail_without_a_status() {
    // A port that nothing listens on: bind one, then let it go.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let config = HttpConfig::custom(format!("http://{addr}/v1"), KEY)
        .with_max_attempts(2)
        .with_initial_backoff(Duration::from_millis(1));
    let mut destination = HttpDestination::new("cio", config).unwrap();

    let err = run(&mut destination, &[call("m-0", 100)]).await.unwrap_err();

    assert!(matches!(err, DestinationError::Http { status: None, .. }), "{err:?}");
}

#[tokio::test]
async fn a_401_fails_at_once() {
    let server = TestServer::start(|_, _| Reply::Status(401, Vec::new(), "bad key".to_owned())).await;
    let mut destination = HttpDestination::new("cio", server.config()).unwrap();

    let err = run(&mut destination, &[call("m-0", 100), call("m-1", 100)]).await.unwrap_err();

    let DestinationError::Http { status, message, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*status, Some(401));
    assert!(message.contains("bad key"), "{message}");
    assert_eq!(server.received().len(), 1, "no retry, no split");
    // The batch is gone: finishing again sends nothing.
    assert!(destination.finish().await.unwrap().is_empty());
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn other_client_errors_and_redirects_fail_at_once() {
    for code in [403, 404, 422, 301, 307] {
        let server = TestServer::start(move |_, _| {
            Reply::Status(code, vec![("location", "http://127.0.0.1:9/elsewhere".to_owned())], String::new())
        })
        .await;
        let mut destination = HttpDestination::new("cio", server.config()).unwrap();
        let err = run(&mut destination, &[call("m-0", 100)]).await.unwrap_err();
        assert!(
            matches!(err, DestinationError::Http { status: Some(s), .. } if s == code),
            "{code}: {err:?}"
        );
        assert_eq!(server.received().len(), 1, "{code}");
    }
}

/// Answers 400 to any batch holding a call whose `messageId` starts with `bad-`.
fn refuse_bad_calls(_: usize, request: &Received) -> Reply {
    match request.message_ids().into_iter().find(|id| id.starts_with("bad-")) {
        Some(id) => Reply::Status(400, Vec::new(), format!("{{\"error\":\"invalid call {id}\"}}")),
        None => ok(),
    }
}

#[tokio::test]
async fn a_400_is_split_down_to_the_bad_calls() {
    let server = TestServer::start(refuse_bad_calls).await;
    let mut destination = HttpDestination::new("cio", server.config()).unwrap();
    let calls: Vec<Call> = (0..23)
        .map(|i| call(&if i == 5 || i == 17 { format!("bad-{i}") } else { format!("ok-{i}") }, 300))
        .collect();

    let rejections = run(&mut destination, &calls).await.unwrap();

    // The two bad calls come back, with their rows, the status and the message.
    let summary: Vec<_> =
        rejections.iter().map(|r| (r.row_number, r.message_id.as_deref().unwrap(), r.status)).collect();
    assert_eq!(summary, [(6, "bad-5", Some(400)), (18, "bad-17", Some(400))]);
    assert_eq!(rejections[0].message, r#"{"error":"invalid call bad-5"}"#);
    assert_eq!(rejections[1].message, r#"{"error":"invalid call bad-17"}"#);

    let received = server.received();
    assert_eq!(received[0].message_ids(), ids(&calls), "first, one batch of everything");
    // Every good call delivered exactly once, in order; no bad call in a delivered batch.
    let delivered: Vec<String> =
        received.iter().filter(|r| refuse_bad_calls(0, r).is_ok()).flat_map(|r| r.message_ids()).collect();
    let good: Vec<String> = ids(&calls).into_iter().filter(|id| id.starts_with("ok-")).collect();
    assert_eq!(delivered, good);
    // The bad calls were each isolated in a batch of their own.
    let alone: Vec<Vec<String>> = received
        .iter()
        .map(Received::message_ids)
        .filter(|ids| ids.len() == 1 && ids[0].starts_with("bad-"))
        .collect();
    assert_eq!(alone, [["bad-5"], ["bad-17"]]);
    // Every request was well-formed and authenticated.
    assert!(received.iter().all(|r| r.authorization.as_deref() == Some(EXPECTED_AUTHORIZATION)));
    // Halving 23 calls: never more requests than 2 per level per bad call, plus the first.
    assert!(received.len() <= 1 + 2 * 2 * 5, "{} requests", received.len());
}

impl Reply {
    fn is_ok(&self) -> bool {
        matches!(self, Reply::Status(200, ..))
    }
}

#[tokio::test]
async fn a_lone_bad_call_is_rejected_and_the_rest_of_the_run_goes_on() {
    let server = TestServer::start(refuse_bad_calls).await;
    let mut destination = HttpDestination::new("cio", server.config()).unwrap();
    let calls = [call("bad-0", 100)];
    let rejections = run(&mut destination, &calls).await.unwrap();
    assert_eq!(rejections.len(), 1);
    assert_eq!((rejections[0].row_number, rejections[0].status), (1, Some(400)));
    assert_eq!(server.received().len(), 1);

    let rejections = run(&mut destination, &[call("ok-1", 100)]).await.unwrap();
    assert!(rejections.is_empty());
    assert_eq!(server.received()[1].message_ids(), ["ok-1"]);
}

#[tokio::test]
async fn batches_are_as_full_as_475000_bytes_allow() {
    let server = TestServer::start(|_, _| ok()).await;
    let mut destination = HttpDestination::new("cio", server.config()).unwrap();
    // Sizes vary so that batches do not all end the same way.
    let calls: Vec<Call> = (0..3000).map(|i| call(&format!("m-{i:05}"), 700 + (i * 37) % 200)).collect();

    let rejections = run(&mut destination, &calls).await.unwrap();

    assert!(rejections.is_empty());
    let received = server.received();
    assert!(received.len() >= 5, "{} requests", received.len());
    let mut next = 0;
    for (i, request) in received.iter().enumerate() {
        assert!(request.body.len() <= 475_000, "request {i} is {} bytes", request.body.len());
        let got = request.message_ids();
        assert_eq!(got, ids(&calls[next..next + got.len()]), "request {i}: calls in order");
        next += got.len();
        if let Some(following) = calls.get(next) {
            let with_next = request.body.len() + 1 + following.compact_json_len();
            assert!(
                with_next > 475_000,
                "request {i} ({} bytes) had room for the next call",
                request.body.len()
            );
        }
    }
    assert_eq!(next, calls.len(), "every call exactly once");
}

#[tokio::test]
async fn a_smaller_batch_limit_is_kept() {
    let server = TestServer::start(|_, _| ok()).await;
    let config = server.config().with_max_batch_bytes(40_000);
    let mut destination = HttpDestination::new("cio", config).unwrap();
    let calls: Vec<Call> = (0..100).map(|i| call(&format!("m-{i:03}"), 1000)).collect();
    run(&mut destination, &calls).await.unwrap();
    let received = server.received();
    assert!(received.iter().all(|r| r.body.len() <= 40_000));
    assert_eq!(received.iter().flat_map(Received::message_ids).collect::<Vec<_>>(), ids(&calls));
    assert_eq!(received.len(), 3);
}

/// A track call of exactly `len` bytes of JSON.
fn call_of_len(message_id: &str, len: usize) -> Call {
    let empty = call(message_id, 0);
    let filler = len - empty.compact_json_len();
    let call = Call::track("user-1", "Order Completed").with_message_id(message_id);
    let call =
        call.with_payload(JsonObject::from_json(&format!(r#"{{"note":"{}"}}"#, "x".repeat(filler))).unwrap());
    assert_eq!(call.compact_json_len(), len);
    call
}

#[tokio::test]
async fn a_batch_fills_up_to_the_last_byte_and_no_further() {
    // `{"batch":[` (10 bytes), 39 calls of 999 bytes and 38 commas make 39,009
    // bytes; with a comma, a call of 988 bytes and `]}`, exactly 40,000 bytes.
    for (last, expected_first_batch) in [(988, 40), (989, 39)] {
        let server = TestServer::start(|_, _| ok()).await;
        let mut destination =
            HttpDestination::new("cio", server.config().with_max_batch_bytes(40_000)).unwrap();
        let mut calls: Vec<Call> = (0..39).map(|i| call_of_len(&format!("m-{i:02}"), 999)).collect();
        calls.push(call_of_len("m-39", last));
        calls.push(call_of_len("m-40", 500));

        run(&mut destination, &calls).await.unwrap();

        let received = server.received();
        assert_eq!(received[0].calls().len(), expected_first_batch, "last call of {last} bytes");
        assert!(received[0].body.len() <= 40_000);
        if expected_first_batch == 40 {
            assert_eq!(received[0].body.len(), 40_000);
        }
        assert_eq!(received.iter().flat_map(Received::message_ids).collect::<Vec<_>>(), ids(&calls));
    }
}

#[tokio::test]
async fn a_call_over_32_kib_is_rejected_without_being_sent() {
    let server = TestServer::start(|_, _| ok()).await;
    let mut destination = HttpDestination::new("cio", server.config()).unwrap();
    let big = call("big", MAX_CALL_BYTES + 100);
    assert!(big.compact_json_len() > MAX_CALL_BYTES);
    let just_fits = call("fits", MAX_CALL_BYTES);
    assert!(just_fits.compact_json_len() <= MAX_CALL_BYTES);

    let rejections = run(&mut destination, &[call("m-0", 100), big, just_fits]).await.unwrap();

    assert_eq!(rejections.len(), 1);
    assert_eq!((rejections[0].row_number, rejections[0].message_id.as_deref()), (2, Some("big")));
    assert_eq!(rejections[0].status, None);
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message_ids(), ["m-0", "fits"]);
}

#[tokio::test]
async fn a_custom_base_url_with_a_path_is_used() {
    let server = TestServer::start(|_, _| ok()).await;
    let config = HttpConfig::custom(format!("http://{}/ingest/v1/", server.addr), KEY);
    let mut destination = HttpDestination::new("cio", config).unwrap();
    run(&mut destination, &[call("m-0", 100)]).await.unwrap();
    assert_eq!(server.received()[0].path, "/ingest/v1/batch");
}

#[test]
fn regions_give_their_batch_urls() {
    let url = |config: HttpConfig| HttpDestination::new("cio", config).unwrap().batch_url().to_owned();
    assert_eq!(url(HttpConfig::us(KEY)), "https://cdp.customer.io/v1/batch");
    assert_eq!(url(HttpConfig::eu(KEY)), "https://cdp-eu.customer.io/v1/batch");
    assert_eq!(
        url(HttpConfig::custom("https://example.com/api/v1", KEY)),
        "https://example.com/api/v1/batch"
    );
    assert_eq!(Region::Us.base_url(), US_BASE_URL);
    assert_eq!(Region::Eu.base_url(), EU_BASE_URL);
    assert_eq!("EU".parse::<Region>().unwrap(), Region::Eu);
    assert_eq!("us".parse::<Region>().unwrap(), Region::Us);
    assert_eq!("http://h:1/v1".parse::<Region>().unwrap(), Region::Custom("http://h:1/v1".to_owned()));
    assert!("mars".parse::<Region>().is_err());
}

#[test]
fn bad_options_are_refused() {
    let err = |config: HttpConfig| HttpDestination::new("cio", config).unwrap_err();
    assert!(matches!(err(HttpConfig::custom("ftp://h/v1", KEY)), HttpConfigError::InvalidBaseUrl { .. }));
    assert!(matches!(err(HttpConfig::custom("h/v1", KEY)), HttpConfigError::InvalidBaseUrl { .. }));
    assert!(matches!(err(HttpConfig::us("")), HttpConfigError::EmptyApiKey));
    assert!(matches!(
        err(HttpConfig::us(KEY).with_max_batch_bytes(10_000)),
        HttpConfigError::BatchTooSmall { .. }
    ));
    assert!(matches!(err(HttpConfig::us(KEY).with_max_attempts(0)), HttpConfigError::NoAttempts));
}

#[tokio::test]
async fn the_api_key_is_never_shown() {
    let secret_key = "sk-very-secret-0123";
    let credentials = "c2stdmVyeS1zZWNyZXQtMDEyMzo="; // base64("sk-very-secret-0123:")
    // A server that echoes the Authorization header back in its 401.
    let server = TestServer::start(|_, request| {
        Reply::Status(401, Vec::new(), format!("unknown credentials {:?}", request.authorization))
    })
    .await;
    let config = HttpConfig::custom(server.base_url(), secret_key);
    assert!(!format!("{config:?}").contains(secret_key));
    let mut destination = HttpDestination::new("cio", config).unwrap();

    let err = run(&mut destination, &[call("m-0", 100)]).await.unwrap_err();

    assert_eq!(server.received()[0].authorization.as_deref(), Some(format!("Basic {credentials}").as_str()));
    for shown in [format!("{destination:?}"), format!("{err:?}"), err.to_string()] {
        assert!(!shown.contains(secret_key) && !shown.contains(credentials), "{shown}");
    }
    assert!(err.to_string().contains("[redacted]"), "{err}");
    let config_err = HttpDestination::new("cio", HttpConfig::custom("nope", secret_key)).unwrap_err();
    assert!(!format!("{config_err:?} {config_err}").contains(secret_key));
}

/// A log sink for tracing's fmt subscriber.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn retries_splits_and_rejections_are_logged_without_the_key() {
    let secret_key = "sk-very-secret-0123";
    let credentials = "c2stdmVyeS1zZWNyZXQtMDEyMzo=";
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Every error answer echoes the Authorization header.
    let server = TestServer::start(|n, request| {
        let echo = format!("{:?}", request.authorization);
        if n == 0 {
            Reply::Status(500, Vec::new(), echo)
        } else if request.message_ids().iter().any(|id| id.starts_with("bad-")) {
            Reply::Status(400, Vec::new(), echo)
        } else {
            ok()
        }
    })
    .await;
    let config =
        HttpConfig::custom(server.base_url(), secret_key).with_initial_backoff(Duration::from_millis(1));
    let mut destination = HttpDestination::new("cio", config).unwrap();

    let rejections = run(&mut destination, &[call("ok-0", 100), call("bad-1", 100)]).await.unwrap();

    assert_eq!(rejections.len(), 1);
    assert!(!rejections[0].message.contains(credentials), "{}", rejections[0].message);
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for event in ["retrying", "splitting", "call refused", "batch delivered"] {
        assert!(logs.contains(event), "no {event:?} event in:\n{logs}");
    }
    assert!(!logs.contains(secret_key) && !logs.contains(credentials), "{logs}");
}
