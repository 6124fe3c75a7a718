//! An HTTP collector for customer-data calls: the Segment / Customer.io Data
//! Pipelines tracking API in front of the bucket export writer, so existing SDKs
//! can send to a self-hosted data-out pipeline.
//!
//! ```
//! use std::sync::Arc;
//!
//! use cdp_bucket::{Bucket, BucketWriter, Clock, Id, SystemClock, WriterConfig};
//! use cdp_collector::{Collector, CollectorConfig};
//! use cdp_encode::FileFormat;
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! // Bind first: bad settings or a busy address are refused before anything is
//! // created on disk.
//! let collector = Collector::bind("127.0.0.1:0".parse()?, CollectorConfig::new(["my-write-key"])).await?;
//! let url = format!("http://{}/v1/track", collector.local_addr());
//!
//! let clock: Arc<dyn Clock> = Arc::new(SystemClock);
//! let config = WriterConfig::new(Id::new("web")?, Id::new("events")?, FileFormat::Parquet)
//!     .with_spool_dir(dir.path().join("spool"));
//! let bucket = Bucket::from_url(dir.path().join("bucket").to_str().unwrap())?; // or s3://…, gs://…, az://…
//! let (writer, _recovery) = BucketWriter::open(bucket, config, clock.clone()).await?;
//!
//! // Serve until told to stop (a real server waits for SIGTERM or Ctrl-C).
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(collector.serve(writer, clock, async { stopped.await.unwrap_or(()) }));
//!
//! // Any Segment-compatible SDK can send to it; here, a plain HTTP client.
//! # let _ = rustls::crypto::ring::default_provider().install_default();
//! let response = reqwest::Client::new()
//!     .post(&url)
//!     .basic_auth("my-write-key", Some(""))
//!     .body(r#"{"userId":"u1","event":"Order Completed","properties":{"total":42}}"#)
//!     .send()
//!     .await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.text().await?, r#"{"success":true}"#);
//!
//! // Shutting down publishes the open window.
//! stop.send(()).unwrap();
//! let done = server.await??;
//! assert_eq!(done.published[0].files[0].object, "web.events.1.track.parquet");
//! # Ok(()) }
//! ```
//!
//! # The API
//! - `POST /v1/identify`, `/v1/track`, `/v1/page`, `/v1/screen`, `/v1/group`,
//!   `/v1/alias`: one call; its type is the path's.
//! - `POST /v1/batch` (also `/v1/import`): `{"batch": [...], "context"?,
//!   "integrations"?, "sentAt"?}`; each item carries its `type`.
//! - `GET /health`: `{"status":"ok"}`; once the bucket writer has stopped (a
//!   position conflict: another writer exports the same integration and action),
//!   `503 {"status":"stopped","message"}`, so that a load balancer in front of
//!   several collectors stops sending calls to this one (they would all get `503`).
//! - `GET /metrics`: the metrics below, in the Prometheus text format
//!   (OpenMetrics when the scraper asks for it). Not authenticated: keep the
//!   port where only your scraper and your SDKs reach it, or put a proxy in front.
//!
//! Requests authenticate with HTTP Basic, a write key as the user name (the
//! password is not checked), or with `Authorization: Bearer <write key>` (as
//! `customerio-cdp-analytics` sends for `pk_…` keys); keys are compared in
//! constant time. A body may be gzip-encoded (`Content-Encoding: gzip`).
//!
//! # Permissive and strict
//! By default a request is taken **permissively**, as Segment's and Customer.io's
//! hosted APIs do: each call that fails validation (a missing `event`, more than
//! 32 KiB, a `messageId` over 100 characters, an unknown `type`, …) is dropped
//! alone and the valid calls of the same batch are kept. The answer is
//! `200 {"success":true}` once every valid call is in the spool, with
//! `"errors": [{"index", "code", "message"}]` listing the calls dropped, if any.
//! Every dropped call is counted (`cdp_collector_calls_rejected_total`), logged,
//! and written with its reason to the rejected-calls file ([`RejectedConfig`]).
//!
//! With `X-Strict-Mode: 1` on the request, any invalid call refuses the whole
//! request: `400` with every invalid call in `errors`, and nothing is kept.
//!
//! A call is measured as the client sent it: at most 32 KiB of compact JSON
//! before the collector merges the batch's fields into it or stamps it. A body is
//! at most 500 KB after gzip decoding.
//!
//! # Answers
//! | status | when | `code` |
//! |---|---|---|
//! | 200 | the valid calls are in the spool | — (`{"success":true}`) |
//! | 400 | unreadable body (not JSON, not gzip as it says, no `batch`), a body over 500 KB, or in strict mode an invalid call | `bad_request`, `too_large`, `invalid_calls` |
//! | 401 | no valid write key | `unauthorized` |
//! | 404 / 405 | no such endpoint / wrong method (with `Allow`) | `not_found`, `method_not_allowed` |
//! | 408 | the body did not arrive within the body timeout (the connection is closed) | `timeout` |
//! | 503 | the spool cannot take the calls; nothing of the request was kept | `unavailable` |
//!
//! Every error body is JSON with top-level `code` and `message` (what the SDKs
//! read). A body over the limit gets `400`, not `413`: the SDKs retry a `413`,
//! and a request that large fails every time.
//!
//! # Slow or hostile clients
//! A client must send a request's headers within
//! [`CollectorConfig::header_timeout`] (also the keep-alive idle time) and its body
//! within [`CollectorConfig::body_timeout`], or its connection is closed; at most
//! [`CollectorConfig::max_connections`] connections are served at once. A client
//! trickling bytes holds one connection until its timeout and nothing else.
//!
//! # What happens to each call
//! - A batch's `context` and `integrations` are merged into each item key by key
//!   (the item's own keys win; values are not merged deeper), and its `sentAt`
//!   applies to items without one.
//! - `receivedAt` is the collector's clock, whatever the client sent; the
//!   `timestamp` is corrected for the client's clock skew; a ULID `messageId` is
//!   assigned when absent ([`cdp_calls::Call::stamp_received`]).
//! - Calls of requests that arrive together are appended to the spool as one
//!   record, with one `fsync` when the durability asks for one (group commit).
//!
//! # Metrics
//! `cdp_collector_requests_total{route,status}`,
//! `cdp_collector_request_duration_seconds{route}` (histogram),
//! `cdp_collector_calls_accepted_total{type}`,
//! `cdp_collector_calls_rejected_total{type,reason}` (`reason` is
//! [`cdp_calls::CallError::code`]), `cdp_collector_rejected_calls_unwritten_total`,
//! `cdp_collector_open_connections`, `cdp_collector_spool_bytes`,
//! `cdp_collector_spool_records`, `cdp_collector_encoding_backlog_calls`,
//! `cdp_collector_open_window_age_seconds`,
//! `cdp_collector_last_publish_timestamp_seconds`,
//! `cdp_collector_last_publish_duration_seconds`,
//! `cdp_collector_positions_published_total`. `route` is one of the paths above or
//! `other`, so that scanners cannot grow the series without bound.
//!
//! # Shutdown
//! [`Collector::serve`] returns after its shutdown future completes: it stops
//! accepting connections, lets requests in flight finish, and shuts the writer
//! down, which publishes the open window.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod decode;
mod error;
mod metrics;
mod rejected;
mod server;

use std::net::SocketAddr;

pub use crate::decode::{Decoded, Endpoint, MAX_BATCH_BYTES, Rejected, compact_len, decode, decompress};
pub use crate::error::{ApiError, CallFailure};
pub use crate::rejected::{REJECTED_FILE, RejectedConfig};
pub use crate::server::{Collector, CollectorConfig, Shutdown};

/// Why the collector could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// No write key is configured (or an empty one).
    #[error("at least one non-empty write key is required")]
    NoWriteKey,
    /// A setting is out of range.
    #[error("the setting {setting} {message}")]
    Setting {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The bucket writer failed while shutting down; the calls stay in its spool.
    #[error("the bucket writer failed: {0}")]
    Writer(#[source] cdp_bucket::BucketError),
    /// The writer's task ended abnormally.
    #[error("the writer task failed: {message}")]
    WriterTask {
        /// What happened.
        message: String,
    },
}
