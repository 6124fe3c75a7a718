//! HTTP collector for customer-data calls: the Segment / Customer.io Data Pipelines API in front of the bucket export writer.
//!
//! (Being built: see the project's issues.)
#![cfg_attr(docsrs, feature(doc_cfg))]
