//! Reverse-ETL query templating (handlebars) and read-only checks in the source's SQL dialect (sqlparser).
//!
//! (Being built: see the project's issues.)
#![cfg_attr(docsrs, feature(doc_cfg))]
