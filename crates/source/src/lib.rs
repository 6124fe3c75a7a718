//! Reverse-ETL sources: PostgreSQL and SQLite rows streamed as cdp-rows values.
//!
//! (Being built: see the project's issues.)
#![cfg_attr(docsrs, feature(doc_cfg))]
