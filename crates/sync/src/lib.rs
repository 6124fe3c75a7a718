//! Reverse-ETL runner: scheduled syncs, state, run history and destinations (HTTP API, bucket, NDJSON).
//!
//! (Being built: see the project's issues.)
#![cfg_attr(docsrs, feature(doc_cfg))]
