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
//! let clock: Arc<dyn Clock> = Arc::new(SystemClock);
//! let config = WriterConfig::new(Id::new("web")?, Id::new("events")?, FileFormat::Parquet)
//!     .with_spool_dir(dir.path().join("spool"));
//! let bucket = Bucket::from_url(dir.path().join("bucket").to_str().unwrap())?; // or s3://…, gs://…, az://…
//! let (writer, _recovery) = BucketWriter::open(bucket, config, clock.clone()).await?;
//! let collector = Collector::bind("127.0.0.1:0".parse()?, CollectorConfig::new(["my-write-key"]), writer, clock).await?;
//! let url = format!("http://{}/v1/track", collector.local_addr());
//!
//! // Serve until told to stop (a real server waits for SIGTERM or Ctrl-C).
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(collector.serve(async { stopped.await.unwrap_or(()) }));
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
//! - `GET /health`: `{"status":"ok"}`.
//!
//! Requests authenticate with HTTP Basic, a write key as the user name (the
//! password is not checked); keys are compared in constant time. A body may be
//! gzip-encoded (`Content-Encoding: gzip`).
//!
//! Answers: `200 {}` once every call of the request is in the writer's spool;
//! `400` for invalid JSON or an invalid call; `401` without a valid key; `413` for a
//! body over 500 KB or a call over 32 KiB (both after decompression); `503` when
//! the spool cannot take the calls. Errors are JSON,
//! `{"error": {"code", "message", "index"}}`, `index` naming the call of a batch
//! at fault. A request is taken whole or not at all.
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
//! # Shutdown
//! [`Collector::serve`] returns after its shutdown future completes: it stops
//! accepting connections, lets requests in flight finish, and shuts the writer
//! down, which publishes the open window.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod decode;
mod error;
mod server;

use std::net::SocketAddr;

pub use crate::decode::{Endpoint, MAX_BATCH_BYTES, decode, decompress};
pub use crate::error::ApiError;
pub use crate::server::{Collector, CollectorConfig, Shutdown};

/// Why the collector could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// No write key is configured (or an empty one).
    #[error("at least one non-empty write key is required")]
    NoWriteKey,
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
