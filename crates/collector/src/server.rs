//! The HTTP server and the task that owns the bucket writer.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use cdp_bucket::{BucketError, BucketWriter, Clock, SyncReport};
use cdp_calls::{Call, Timestamp};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue,
    RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::decode::{Decoded, Endpoint, MAX_BATCH_BYTES, decode, decompress};
use crate::error::{CallFailure, success_json};
use crate::metrics::Metrics;
use crate::rejected::{RejectedConfig, RejectedLog};
use crate::{ApiError, CollectorError, Rejected};

/// The settings of a collector.
#[derive(Clone)]
#[non_exhaustive]
pub struct CollectorConfig {
    /// The write keys accepted (as the HTTP Basic user name, or a Bearer token).
    /// At least one, none empty.
    pub write_keys: Vec<String>,
    /// The most bytes of a body after decompression. Default: 500 KB.
    pub max_body_bytes: usize,
    /// Where calls dropped from permissive requests are written. Default: the
    /// writer's spool directory's `rejected` folder; without a spool, only logged.
    pub rejected: Option<RejectedConfig>,
    /// How long a client may take to send a request's headers, counted from
    /// the connection's start or the end of its last answer (so it also closes
    /// idle keep-alive connections). Default: 10 s.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body once its headers
    /// are in. Default: 30 s.
    pub body_timeout: Duration,
    /// The most client connections open at once; more wait in the listen
    /// backlog. Default: 1,024.
    pub max_connections: usize,
    /// How often the writer's [`BucketWriter::tick`] runs (publishing ended
    /// windows, syncing the spool). Default: 1 second.
    pub tick: Duration,
    /// How long a graceful shutdown waits for requests in flight. Default: 30 s.
    pub drain_timeout: Duration,
    /// The most calls accepted and waiting for the writer (to be spooled) at
    /// once: memory stays bounded when clients outpace the writer. A request
    /// waits for room (back-pressure) up to [`CollectorConfig::queue_timeout`].
    /// Default: 200,000.
    pub max_queued_calls: usize,
    /// How long a request waits for room among the queued calls before it is
    /// answered 503 with `Retry-After: 1` (the SDKs retry it). Default: 10 s.
    pub queue_timeout: Duration,
}

impl std::fmt::Debug for CollectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectorConfig")
            .field("write_keys", &format_args!("[{} redacted]", self.write_keys.len()))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("rejected", &self.rejected)
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_connections", &self.max_connections)
            .field("tick", &self.tick)
            .field("drain_timeout", &self.drain_timeout)
            .field("max_queued_calls", &self.max_queued_calls)
            .field("queue_timeout", &self.queue_timeout)
            .finish()
    }
}

impl CollectorConfig {
    /// Settings accepting these write keys, with the defaults.
    pub fn new(write_keys: impl IntoIterator<Item = impl Into<String>>) -> CollectorConfig {
        CollectorConfig {
            write_keys: write_keys.into_iter().map(Into::into).collect(),
            max_body_bytes: MAX_BATCH_BYTES,
            rejected: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            tick: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(30),
            max_queued_calls: 200_000,
            queue_timeout: Duration::from_secs(10),
        }
    }

    /// Checks the settings without touching anything: at least one write key and
    /// none empty, and limits and timeouts above zero. [`Collector::bind`] checks
    /// them too; call this first to refuse bad settings before creating a spool.
    pub fn check(&self) -> Result<(), CollectorError> {
        if self.write_keys.is_empty() || self.write_keys.iter().any(|k| k.trim().is_empty()) {
            return Err(CollectorError::NoWriteKey);
        }
        let zero = [
            ("max_body_bytes", self.max_body_bytes == 0),
            ("max_connections", self.max_connections == 0),
            ("header_timeout", self.header_timeout.is_zero()),
            ("body_timeout", self.body_timeout.is_zero()),
            ("tick", self.tick.is_zero()),
            ("max_queued_calls", self.max_queued_calls == 0),
            ("queue_timeout", self.queue_timeout.is_zero()),
        ];
        match zero.iter().find(|(_, is_zero)| *is_zero) {
            Some((setting, _)) => {
                Err(CollectorError::Setting { setting, message: "must be above zero".into() })
            }
            None => Ok(()),
        }
    }
}

/// What a collector did, once it has shut down.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Shutdown {
    /// The syncs published while draining (the open window, and anything left).
    pub published: Vec<SyncReport>,
}

/// A collector bound to its address, ready to [`Collector::serve`].
#[derive(Debug)]
pub struct Collector {
    listener: TcpListener,
    config: CollectorConfig,
}

impl Collector {
    /// Checks the settings ([`CollectorConfig::check`]) and binds the listening
    /// socket. Nothing else is opened or created.
    pub async fn bind(addr: SocketAddr, config: CollectorConfig) -> Result<Collector, CollectorError> {
        config.check()?;
        let listener =
            TcpListener::bind(addr).await.map_err(|source| CollectorError::Bind { addr, source })?;
        Ok(Collector { listener, config })
    }

    /// The address it listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound socket has an address")
    }

    /// Serves until `shutdown` completes, sending calls to `writer` and stamping
    /// them with `clock` (use the writer's); then stops accepting, lets requests
    /// in flight finish (up to the drain timeout), and shuts the writer down,
    /// which publishes the open window.
    pub async fn serve(
        self,
        writer: BucketWriter,
        clock: Arc<dyn Clock>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Shutdown, CollectorError> {
        let Collector { listener, mut config } = self;
        if config.rejected.is_none() {
            config.rejected =
                writer.config().spool_dir.as_ref().map(|dir| RejectedConfig::new(dir.join("rejected")));
        }
        let metrics = Arc::new(Metrics::new());
        let (to_writer, from_handlers) = mpsc::channel::<Append>(1024);
        // The writer runs on a thread of its own (its spool writes and fsyncs are
        // blocking I/O), with a runtime of its own for the object store's puts; its
        // files are encoded on threads of their own. Handlers only wait for its answer.
        let (writer_done, writer_task) = oneshot::channel();
        let loop_clock = clock.clone();
        let loop_metrics = metrics.clone();
        let writer_stopped = Arc::new(OnceLock::new());
        let loop_stopped = writer_stopped.clone();
        let tick = config.tick;
        std::thread::Builder::new()
            .name("cdp-writer".into())
            .spawn(move || {
                let result = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime.block_on(writer_loop(
                        writer,
                        from_handlers,
                        tick,
                        loop_clock,
                        loop_metrics,
                        loop_stopped,
                    )),
                    Err(e) => {
                        Err(CollectorError::WriterTask { message: format!("cannot start its runtime: {e}") })
                    }
                };
                let _ = writer_done.send(result);
            })
            .map_err(|e| CollectorError::WriterTask {
                message: format!("cannot start the writer thread: {e}"),
            })?;
        let rejected = config.rejected.clone().map(|c| Arc::new(Mutex::new(RejectedLog::new(c))));
        let queued = Arc::new(Semaphore::new(config.max_queued_calls.min(Semaphore::MAX_PERMITS)));
        let state = Arc::new(State {
            config: config.clone(),
            clock,
            to_writer,
            queued,
            metrics,
            rejected,
            writer_stopped,
        });
        let graceful = GracefulShutdown::new();
        let permits = Arc::new(Semaphore::new(config.max_connections));
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(config.header_timeout);
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                () = &mut shutdown => break,
            };
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let service_state = state.clone();
            let service = hyper::service::service_fn(move |request| {
                let state = service_state.clone();
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
            });
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            let metrics = state.metrics.clone();
            metrics.connection_opened();
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                metrics.connection_closed();
                drop(permit);
            });
        }
        drop(listener);
        tracing::info!("shutting down: draining requests in flight");
        if tokio::time::timeout(config.drain_timeout, graceful.shutdown()).await.is_err() {
            tracing::warn!("requests still in flight after the drain timeout; closing");
        }
        drop(state);
        let published = writer_task.await.map_err(|_| CollectorError::WriterTask {
            message: "the writer thread ended abnormally".into(),
        })??;
        Ok(Shutdown { published })
    }
}

struct State {
    config: CollectorConfig,
    clock: Arc<dyn Clock>,
    to_writer: mpsc::Sender<Append>,
    /// Room for calls waiting for the writer, one permit per call.
    queued: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    rejected: Option<Arc<Mutex<RejectedLog>>>,
    /// Why the bucket writer stopped, once it has: `/health` then fails, so that a
    /// load balancer sends the calls to the other collectors.
    writer_stopped: Arc<OnceLock<String>>,
}

/// Calls for the writer, and where to say how it went.
struct Append {
    calls: Vec<Call>,
    reply: oneshot::Sender<Result<(), String>>,
}

/// Owns the writer: appends what handlers send (requests waiting together are
/// appended as one spool record, one `fsync`), ticks it, and shuts it down when
/// every handler is gone. Records in `stopped` why the writer stopped, if it does.
async fn writer_loop(
    mut writer: BucketWriter,
    mut requests: mpsc::Receiver<Append>,
    tick: Duration,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    stopped: Arc<OnceLock<String>>,
) -> Result<Vec<SyncReport>, CollectorError> {
    // The writer stops on a position conflict (and on errors that leave its files
    // incomplete); every call after that answers `Stopped`, so a tick finds out.
    let note_stop = |e: &BucketError| {
        if matches!(e, BucketError::PositionConflict { .. } | BucketError::Stopped { .. }) {
            let _ = stopped.set(e.to_string());
        }
    };
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    /// At most this many calls go into one group append.
    const GROUP_CALLS: usize = 20_000;
    loop {
        let started = Instant::now();
        // Replies go out after the metrics are updated, so that a scrape after an
        // answer sees the calls in the spool.
        let (published, replies, outcome) = tokio::select! {
            request = requests.recv() => {
                let Some(first) = request else { break };
                let mut calls = first.calls;
                let mut replies = vec![first.reply];
                while calls.len() < GROUP_CALLS {
                    match requests.try_recv() {
                        Ok(next) => {
                            calls.extend(next.calls);
                            replies.push(next.reply);
                        }
                        Err(_) => break,
                    }
                }
                let result = writer.append(calls).await;
                let outcome = result.as_ref().map(|_| ()).map_err(ToString::to_string);
                let published = match result {
                    Ok(appended) => appended.published,
                    Err(e @ BucketError::PositionConflict { .. }) => {
                        tracing::error!(error = %e, "the bucket writer stopped");
                        note_stop(&e);
                        Vec::new()
                    }
                    Err(e) => {
                        note_stop(&e);
                        Vec::new()
                    }
                };
                (published, replies, outcome)
            }
            _ = ticker.tick() => match writer.tick_in_background().await {
                Ok(published) => (published, Vec::new(), Ok(())),
                Err(e) => {
                    note_stop(&e);
                    if e.is_transient() {
                        tracing::warn!(error = %e, "publishing failed; will retry");
                    } else {
                        tracing::error!(error = %e, "the bucket writer failed");
                    }
                    (Vec::new(), Vec::new(), Ok(()))
                }
            }
        };
        metrics.writer(&writer, clock.now(), &published, started.elapsed());
        for reply in replies {
            let _ = reply.send(outcome.clone());
        }
    }
    writer.shutdown().await.map_err(CollectorError::Writer)
}

/// The route label of a path: the endpoints by name, anything else `other`.
fn route_label(path: &str) -> &'static str {
    const ROUTES: [&str; 10] = [
        "/v1/identify",
        "/v1/track",
        "/v1/page",
        "/v1/screen",
        "/v1/group",
        "/v1/alias",
        "/v1/batch",
        "/v1/import",
        "/health",
        "/metrics",
    ];
    let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
    ROUTES.into_iter().find(|r| *r == path).unwrap_or("other")
}

async fn handle(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let route = route_label(request.uri().path());
    let response = match route_request(state, route, request).await {
        Ok(response) => response,
        Err(error) => {
            if error.status() >= 500 {
                tracing::warn!(error = %error, "request refused");
            }
            error_response(&error)
        }
    };
    state.metrics.request(route, response.status().as_u16(), started.elapsed());
    response
}

async fn route_request(
    state: &State,
    route: &'static str,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let read_only = |request: &Request<Incoming>| {
        if request.method() == Method::GET || request.method() == Method::HEAD {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed { method: request.method().to_string(), allow: "GET, HEAD" })
        }
    };
    match route {
        "/health" => {
            read_only(&request)?;
            return Ok(match state.writer_stopped.get() {
                None => response(StatusCode::OK, "application/json", r#"{"status":"ok"}"#.into()),
                Some(reason) => {
                    let body = serde_json::json!({"status": "stopped", "message": reason}).to_string();
                    response(StatusCode::SERVICE_UNAVAILABLE, "application/json", body)
                }
            });
        }
        "/metrics" => {
            read_only(&request)?;
            let openmetrics = request
                .headers()
                .get(ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("application/openmetrics-text"));
            let content_type = if openmetrics {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            } else {
                "text/plain; version=0.0.4; charset=utf-8"
            };
            return Ok(response(StatusCode::OK, content_type, state.metrics.encode()));
        }
        _ => {}
    }
    let path = request.uri().path();
    let endpoint = Endpoint::from_path(path).ok_or_else(|| ApiError::NotFound { path: path.to_owned() })?;
    if request.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed { method: request.method().to_string(), allow: "POST" });
    }
    authorize(&state.config.write_keys, request.headers().get(AUTHORIZATION))?;
    let strict = request
        .headers()
        .get("x-strict-mode")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v.trim(), "1" | "true"));
    let limit = state.config.max_body_bytes;
    if let Some(length) =
        request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        && length > limit
    {
        return Err(ApiError::TooLarge { what: "the body", bytes: length, limit });
    }
    let gzip = match request.headers().get(CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?").trim()) {
        None | Some("identity") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") => true,
        Some(other) => {
            return Err(ApiError::BadRequest {
                message: format!("unsupported Content-Encoding {other:?}: send gzip or nothing"),
            });
        }
    };
    let timeout = state.config.body_timeout;
    let body = tokio::time::timeout(timeout, Limited::new(request.into_body(), limit).collect())
        .await
        .map_err(|_| ApiError::Timeout { what: "body", seconds: timeout.as_secs() })?
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                ApiError::TooLarge { what: "the body", bytes: limit + 1, limit }
            } else {
                ApiError::BadRequest { message: format!("reading the body failed: {e}") }
            }
        })?
        .to_bytes();
    let now = state.clock.now();
    let Decoded { calls, rejected } = if gzip {
        decode(endpoint, &decompress(&body, true, limit)?, now)?
    } else {
        decode(endpoint, &body, now)?
    };
    let failures: Vec<CallFailure> = rejected.iter().map(CallFailure::from).collect();
    if strict && !rejected.is_empty() {
        for call in &rejected {
            state.metrics.rejected(call.call_type, call.error.code());
        }
        return Err(ApiError::InvalidCalls { errors: failures, total: calls.len() + rejected.len() });
    }
    if !calls.is_empty() {
        let types: Vec<_> = calls.iter().map(Call::call_type).collect();
        // Room among the calls waiting for the writer, or 503 after a while.
        let wanted = u32::try_from(calls.len().min(state.config.max_queued_calls)).unwrap_or(u32::MAX);
        let room = tokio::time::timeout(state.config.queue_timeout, state.queued.acquire_many(wanted)).await;
        let _room = match room {
            Ok(Ok(permits)) => permits,
            Ok(Err(_)) => return Err(ApiError::Unavailable { message: "the writer has shut down".into() }),
            Err(_) => {
                return Err(ApiError::Busy {
                    message: format!(
                        "{} calls are waiting to be stored, the most this collector queues; retry later",
                        state.config.max_queued_calls
                    ),
                });
            }
        };
        let (reply, answer) = oneshot::channel();
        let gone = || ApiError::Unavailable { message: "the writer has shut down".into() };
        state.to_writer.send(Append { calls, reply }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?.map_err(|message| ApiError::Unavailable { message })?;
        for call_type in types {
            state.metrics.accepted(call_type);
        }
    }
    if !rejected.is_empty() {
        keep_rejected(state, now, route, rejected).await;
    }
    Ok(response(StatusCode::OK, "application/json", success_json(&failures)))
}

/// Counts, logs and writes the calls dropped from a permissive request.
async fn keep_rejected(state: &State, now: Timestamp, route: &'static str, rejected: Vec<Rejected>) {
    for call in &rejected {
        state.metrics.rejected(call.call_type, call.error.code());
    }
    let first = &rejected[0];
    let Some(log) = state.rejected.clone() else {
        for call in &rejected {
            tracing::warn!(route, index = call.index, reason = %call.error, call = %call.call, "call dropped");
        }
        return;
    };
    tracing::warn!(
        route,
        dropped = rejected.len(),
        first_index = first.index,
        first_reason = %first.error,
        "calls dropped from a request; written to the rejected-calls file"
    );
    let count = rejected.len() as u64;
    let written = tokio::task::spawn_blocking(move || {
        let mut log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.write(now, route, &rejected).map_err(|e| (e, rejected))
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err((error, rejected))) => {
            state.metrics.rejected_unwritten(count);
            for call in &rejected {
                tracing::error!(%error, route, index = call.index, reason = %call.error, call = %call.call,
                    "call dropped; the rejected-calls file cannot be written");
            }
        }
        Err(e) => {
            state.metrics.rejected_unwritten(count);
            tracing::error!(error = %e, "writing the rejected-calls file failed");
        }
    }
}

/// Checks the credentials: HTTP Basic with a write key as the user name (the
/// password is not checked), or `Bearer <key>`. Keys are compared in constant
/// time.
fn authorize(keys: &[String], header: Option<&HeaderValue>) -> Result<(), ApiError> {
    let value = header.and_then(|v| v.to_str().ok()).ok_or(ApiError::Unauthorized)?.trim();
    let (scheme, credentials) = value.split_once(' ').ok_or(ApiError::Unauthorized)?;
    let credentials = credentials.trim();
    let decoded;
    let key: &[u8] = if scheme.eq_ignore_ascii_case("basic") {
        decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .map_err(|_| ApiError::Unauthorized)?;
        match decoded.iter().position(|&b| b == b':') {
            Some(colon) => &decoded[..colon],
            None => &decoded[..],
        }
    } else if scheme.eq_ignore_ascii_case("bearer") {
        credentials.as_bytes()
    } else {
        return Err(ApiError::Unauthorized);
    };
    // Compare with every key, without stopping at a match.
    let mut found = subtle::Choice::from(0);
    for known in keys {
        found |= known.as_bytes().ct_eq(key);
    }
    if bool::from(found) { Ok(()) } else { Err(ApiError::Unauthorized) }
}

fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn error_response(error: &ApiError) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(error.status()).expect("a valid status");
    let mut response = response(status, "application/json", error.to_json());
    let headers = response.headers_mut();
    match error {
        ApiError::Unauthorized => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        }
        ApiError::MethodNotAllowed { allow, .. } => {
            headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        ApiError::Timeout { .. } => {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        ApiError::Busy { .. } => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(text: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[test]
    fn write_keys_are_the_basic_user_name_or_the_bearer_token() {
        let keys = vec!["key-one".to_owned(), "pk_us_key-two".to_owned()];
        assert_eq!(authorize(&keys, Some(&basic("key-one:"))), Ok(()));
        assert_eq!(authorize(&keys, Some(&basic("pk_us_key-two:"))), Ok(()));
        assert_eq!(authorize(&keys, Some(&basic("pk_us_key-two"))), Ok(()));
        assert_eq!(authorize(&keys, Some(&basic("key-one:any password"))), Ok(()));
        for bad in ["key-three:", "key-on:", "key-one-more:", ":key-one", ""] {
            assert_eq!(authorize(&keys, Some(&basic(bad))), Err(ApiError::Unauthorized), "{bad:?}");
        }
        assert_eq!(authorize(&keys, None), Err(ApiError::Unauthorized));
        for good in ["Bearer pk_us_key-two", "bearer key-one", "Bearer  key-one "] {
            assert_eq!(authorize(&keys, Some(&HeaderValue::from_static(good))), Ok(()), "{good}");
        }
        for bad in [
            "Bearer key-on",
            "Bearer",
            "Bearer ",
            "Token key-one",
            "key-one",
            "Basic %%%",
            "Basic a2V5LW9uZTo= x",
        ] {
            assert_eq!(
                authorize(&keys, Some(&HeaderValue::from_static(bad))),
                Err(ApiError::Unauthorized),
                "{bad}"
            );
        }
    }

    #[test]
    fn routes_are_labelled_by_name_and_the_rest_is_other() {
        assert_eq!(route_label("/v1/track"), "/v1/track");
        assert_eq!(route_label("/v1/batch/"), "/v1/batch");
        assert_eq!(route_label("/metrics"), "/metrics");
        assert_eq!(route_label("/v1/tracks"), "other");
        assert_eq!(route_label("/"), "other");
        assert_eq!(route_label("/wp-login.php"), "other");
    }
}
