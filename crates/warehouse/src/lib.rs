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
//! - [`source`] (`cdp-source`): PostgreSQL and SQLite sources.
//! - [`sync`] (`cdp-sync`): the reverse-ETL runner, scheduler and destinations.
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

pub use cdp_bucket as bucket;
pub use cdp_calls as calls;
pub use cdp_collector as collector;
pub use cdp_encode as encode;
pub use cdp_query as query;
pub use cdp_rows as rows;
pub use cdp_source as source;
pub use cdp_sync as sync;
