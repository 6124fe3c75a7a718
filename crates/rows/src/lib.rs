//! Reverse-ETL row-to-call mapping: database values, reserved fields, nesting, limits and row errors.
//!
//! (Being built: see the project's issues.)
#![cfg_attr(docsrs, feature(doc_cfg))]
