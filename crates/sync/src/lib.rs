//! Reverse ETL runs: scheduled syncs that read rows from a database, map each row
//! to a call and deliver the calls to the HTTP ingestion API, the bucket export or
//! an NDJSON stream, with per-row errors and run history.
//!
//! (Being built: see the project's issues.)
#![cfg_attr(docsrs, feature(doc_cfg))]

mod destination;
pub mod http;

pub use crate::destination::{Delivery, Destination, DestinationError, Rejection};
