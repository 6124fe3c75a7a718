//! cdp-warehouse moves customer-data calls (the Segment spec's `identify`, `track`,
//! `page`, `screen`, `group` and `alias`) between a product and its data warehouse.
//!
//! This facade re-exports the focused crates under short names, so one dependency
//! brings them all:
//!
//! - [`calls`] (`cdp-calls`): the call model, validation, stamping, the NDJSON
//!   reader and the warehouse row view.
//! - [`encode`] (`cdp-encode`): deterministic JSON, CSV and Parquet encoders.
//! - [`bucket`] (`cdp-bucket`): the bucket export writer (sync windows, positions,
//!   durable spool, create-only publishing, recovery) on `object_store`.
//! - [`collector`] (`cdp-collector`): the HTTP tracking API in front of the writer.
//! - [`query`] (`cdp-query`): reverse-ETL query templating and checks.
//! - [`rows`] (`cdp-rows`): reverse-ETL row-to-call mapping and row errors.
//! - [`source`] (`cdp-source`): PostgreSQL, SQLite, Snowflake and MySQL sources.
//! - [`sync`] (`cdp-sync`): the reverse-ETL runner, scheduler and destinations.
//!
//! # Cargo features
//! Each pipeline is a feature, and so is each cloud store and each source, so that a
//! build has only what it uses. The default is everything but `snowflake`, `mysql`
//! and `ssh`.
//!
//! | feature | brings |
//! |---|---|
//! | `export` | `encode`, `bucket`, `collector`: the bucket export |
//! | `reverse-etl` | `query`, `rows`, `source`, `sync` (and `bucket`, `encode`): reverse ETL |
//! | `s3`, `gcs`, `azure` | buckets on Amazon S3, Google Cloud Storage, Azure Blob Storage (local directories need none) |
//! | `postgres`, `sqlite`, `snowflake`, `mysql` | that source (each turns `reverse-etl` on) |
//! | `ssh` | SSH tunnels for PostgreSQL and MySQL sources |
//!
//! An embedder that only exports to a local directory depends on
//! `cdp-warehouse = { version = "0.1", default-features = false, features = ["export"] }`
//! and builds no HTTP client, TLS library or database driver. A bucket URL or source
//! kind whose feature is off is an error naming the feature.
//!
//! ```
//! use cdp_warehouse::calls::ndjson::CallReader;
//! use cdp_warehouse::encode::{Encode, EncodeOptions, FileEncoder, FileFormat};
//!
//! let input = r#"{"type":"identify","userId":"u1","traits":{"plan":"pro"},"receivedAt":"2026-11-22T10:00:00Z"}"#;
//! let mut file = None;
//! for call in CallReader::new(input.as_bytes()) {
//!     let call = call?;
//!     file.get_or_insert_with(|| FileEncoder::new(FileFormat::Json, call.call_type(), EncodeOptions::default()))
//!         .write(&call)?;
//! }
//! let bytes = file.unwrap().finish_to_vec()?;
//! let row: serde_json::Value = serde_json::from_slice(&bytes)?;
//! assert_eq!(row["user_id"], "u1");
//! assert_eq!(row["traits"]["plan"], "pro");
//! assert_eq!(row["received_at"], "2026-11-22T10:00:00.000Z");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "export", feature = "reverse-etl"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "export", feature = "reverse-etl"))))]
pub use cdp_bucket as bucket;
pub use cdp_calls as calls;
#[cfg(feature = "export")]
#[cfg_attr(docsrs, doc(cfg(feature = "export")))]
pub use cdp_collector as collector;
#[cfg(any(feature = "export", feature = "reverse-etl"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "export", feature = "reverse-etl"))))]
pub use cdp_encode as encode;
#[cfg(feature = "reverse-etl")]
#[cfg_attr(docsrs, doc(cfg(feature = "reverse-etl")))]
pub use cdp_query as query;
#[cfg(feature = "reverse-etl")]
#[cfg_attr(docsrs, doc(cfg(feature = "reverse-etl")))]
pub use cdp_rows as rows;
#[cfg(feature = "reverse-etl")]
#[cfg_attr(docsrs, doc(cfg(feature = "reverse-etl")))]
pub use cdp_source as source;
#[cfg(feature = "reverse-etl")]
#[cfg_attr(docsrs, doc(cfg(feature = "reverse-etl")))]
pub use cdp_sync as sync;
