//! The HTTP server and the task that owns the bucket writer.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use cdp_bucket::{BucketError, BucketWriter, Clock, SyncReport};
use cdp_calls::Call;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::decode::{Endpoint, MAX_BATCH_BYTES, decode, decompress};
use crate::{ApiError, CollectorError};

/// The settings of a collector.
#[derive(Clone)]
#[non_exhaustive]
pub struct CollectorConfig {
    /// The write keys accepted (as the HTTP Basic user name). At least one.
    pub write_keys: Vec<String>,
    /// The most bytes of a body after decompression. Default: 500 KB.
    pub max_body_bytes: usize,
    /// How often the writer's [`BucketWriter::tick`] runs (publishing ended
    /// windows, syncing the spool). Default: 1 second.
    pub tick: Duration,
    /// How long a graceful shutdown waits for requests in flight. Default: 30 s.
    pub drain_timeout: Duration,
}

impl std::fmt::Debug for CollectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectorConfig")
            .field("write_keys", &format_args!("[{} redacted]", self.write_keys.len()))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("tick", &self.tick)
            .field("drain_timeout", &self.drain_timeout)
            .finish()
    }
}

impl CollectorConfig {
    /// Settings accepting these write keys, with the defaults.
    pub fn new(write_keys: impl IntoIterator<Item = impl Into<String>>) -> CollectorConfig {
        CollectorConfig {
            write_keys: write_keys.into_iter().map(Into::into).collect(),
            max_body_bytes: MAX_BATCH_BYTES,
            tick: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(30),
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
    writer: BucketWriter,
    clock: Arc<dyn Clock>,
}

impl Collector {
    /// Binds the listening socket. The writer is the one calls go to; `clock`
    /// stamps `receivedAt` (use the writer's).
    pub async fn bind(
        addr: SocketAddr,
        config: CollectorConfig,
        writer: BucketWriter,
        clock: Arc<dyn Clock>,
    ) -> Result<Collector, CollectorError> {
        if config.write_keys.is_empty() || config.write_keys.iter().any(String::is_empty) {
            return Err(CollectorError::NoWriteKey);
        }
        let listener =
            TcpListener::bind(addr).await.map_err(|source| CollectorError::Bind { addr, source })?;
        Ok(Collector { listener, config, writer, clock })
    }

    /// The address it listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound socket has an address")
    }

    /// Serves until `shutdown` completes; then stops accepting, lets requests in
    /// flight finish (up to the drain timeout), and shuts the writer down, which
    /// publishes the open window.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<Shutdown, CollectorError> {
        let Collector { listener, config, writer, clock } = self;
        let (to_writer, from_handlers) = mpsc::channel::<Append>(1024);
        let writer_task = tokio::spawn(writer_loop(writer, from_handlers, config.tick));
        let state = Arc::new(State { config: config.clone(), clock, to_writer });
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let state = state.clone();
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, request).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        tracing::info!("shutting down: draining requests in flight");
        if tokio::time::timeout(config.drain_timeout, graceful.shutdown()).await.is_err() {
            tracing::warn!("requests still in flight after the drain timeout; closing");
        }
        drop(state);
        let published =
            writer_task.await.map_err(|e| CollectorError::WriterTask { message: e.to_string() })??;
        Ok(Shutdown { published })
    }
}

struct State {
    config: CollectorConfig,
    clock: Arc<dyn Clock>,
    to_writer: mpsc::Sender<Append>,
}

/// Calls for the writer, and where to say how it went.
struct Append {
    calls: Vec<Call>,
    reply: oneshot::Sender<Result<(), String>>,
}

/// Owns the writer: appends what handlers send (requests waiting together are
/// appended as one spool record, one `fsync`), ticks it, and shuts it down when
/// every handler is gone.
async fn writer_loop(
    mut writer: BucketWriter,
    mut requests: mpsc::Receiver<Append>,
    tick: Duration,
) -> Result<Vec<SyncReport>, CollectorError> {
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    /// At most this many calls go into one group append.
    const GROUP_CALLS: usize = 20_000;
    loop {
        tokio::select! {
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
                let outcome = match &result {
                    Ok(appended) => {
                        for report in &appended.published {
                            tracing::debug!(position = %report.position, "published during append");
                        }
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                };
                for reply in replies {
                    let _ = reply.send(outcome.clone());
                }
                if let Err(e @ BucketError::PositionConflict { .. }) = result {
                    tracing::error!(error = %e, "the bucket writer stopped");
                }
            }
            _ = ticker.tick() => {
                if let Err(e) = writer.tick().await {
                    if e.is_transient() {
                        tracing::warn!(error = %e, "publishing failed; will retry");
                    } else {
                        tracing::error!(error = %e, "the bucket writer failed");
                    }
                }
            }
        }
    }
    writer.shutdown().await.map_err(CollectorError::Writer)
}

async fn handle(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    match route(state, request).await {
        Ok(response) => response,
        Err(error) => {
            if error.status() >= 500 {
                tracing::warn!(error = %error, "request refused");
            }
            json_response(StatusCode::from_u16(error.status()).expect("a valid status"), error.to_json())
        }
    }
}

async fn route(state: &State, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, ApiError> {
    let path = request.uri().path();
    if path == "/health" {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return Err(ApiError::MethodNotAllowed { method: request.method().to_string() });
        }
        return Ok(json_response(StatusCode::OK, r#"{"status":"ok"}"#.into()));
    }
    let endpoint = Endpoint::from_path(path).ok_or_else(|| ApiError::NotFound { path: path.to_owned() })?;
    if request.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed { method: request.method().to_string() });
    }
    authorize(&state.config.write_keys, request.headers().get(AUTHORIZATION))?;
    let limit = state.config.max_body_bytes;
    if let Some(length) =
        request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        && length > limit
    {
        return Err(ApiError::TooLarge { what: "the body", bytes: length, limit, index: None });
    }
    let gzip = match request.headers().get(CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?").trim()) {
        None | Some("identity") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") => true,
        Some(other) => {
            return Err(ApiError::BadRequest {
                message: format!("unsupported Content-Encoding {other:?}: send gzip or nothing"),
                index: None,
            });
        }
    };
    let body = Limited::new(request.into_body(), limit).collect().await.map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            ApiError::TooLarge { what: "the body", bytes: limit + 1, limit, index: None }
        } else {
            ApiError::BadRequest { message: format!("reading the body failed: {e}"), index: None }
        }
    })?;
    let body = body.to_bytes();
    let now = state.clock.now();
    let calls = if gzip {
        decode(endpoint, &decompress(&body, true, limit)?, now)?
    } else {
        decode(endpoint, &body, now)?
    };
    let (reply, answer) = oneshot::channel();
    state
        .to_writer
        .send(Append { calls, reply })
        .await
        .map_err(|_| ApiError::Unavailable { message: "the writer has shut down".into() })?;
    match answer.await {
        Ok(Ok(())) => Ok(json_response(StatusCode::OK, "{}".into())),
        Ok(Err(message)) => Err(ApiError::Unavailable { message }),
        Err(_) => Err(ApiError::Unavailable { message: "the writer has shut down".into() }),
    }
}

/// Checks HTTP Basic credentials: the user name must be one of the write keys
/// (compared in constant time); the password is not checked.
fn authorize(keys: &[String], header: Option<&hyper::header::HeaderValue>) -> Result<(), ApiError> {
    let encoded = header
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .ok_or(ApiError::Unauthorized)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| ApiError::Unauthorized)?;
    let user = match decoded.iter().position(|&b| b == b':') {
        Some(colon) => &decoded[..colon],
        None => &decoded[..],
    };
    // Compare with every key, without stopping at a match.
    let mut found = subtle::Choice::from(0);
    for key in keys {
        found |= key.as_bytes().ct_eq(user);
    }
    if bool::from(found) { Ok(()) } else { Err(ApiError::Unauthorized) }
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(hyper::header::WWW_AUTHENTICATE, hyper::header::HeaderValue::from_static("Basic"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(text: &str) -> hyper::header::HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        hyper::header::HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[test]
    fn write_keys_are_the_basic_user_name() {
        let keys = vec!["key-one".to_owned(), "key-two".to_owned()];
        assert_eq!(authorize(&keys, Some(&basic("key-one:"))), Ok(()));
        assert_eq!(authorize(&keys, Some(&basic("key-two:"))), Ok(()));
        assert_eq!(authorize(&keys, Some(&basic("key-two"))), Ok(()));
        for bad in ["key-three:", "key-on:", "key-one-more:", ":key-one", ""] {
            assert_eq!(authorize(&keys, Some(&basic(bad))), Err(ApiError::Unauthorized), "{bad:?}");
        }
        assert_eq!(authorize(&keys, None), Err(ApiError::Unauthorized));
        let bearer = hyper::header::HeaderValue::from_static("Bearer key-one");
        assert_eq!(authorize(&keys, Some(&bearer)), Err(ApiError::Unauthorized));
        let garbage = hyper::header::HeaderValue::from_static("Basic %%%");
        assert_eq!(authorize(&keys, Some(&garbage)), Err(ApiError::Unauthorized));
    }
}
