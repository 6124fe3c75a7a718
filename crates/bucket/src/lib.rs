//! Bucket export writer for customer-data calls: positions, sync windows, a durable spool and create-only publishing on object_store.
//!
//! (Being built: see the project's issues.)
#![cfg_attr(docsrs, feature(doc_cfg))]
