//! [`BucketError`]: what can go wrong while exporting.

use std::path::PathBuf;

use cdp_calls::{CallError, CallType};
use cdp_encode::EncodeError;

use crate::Position;

/// Why the bucket writer could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BucketError {
    /// The bucket URL or directory cannot be used.
    #[error("bucket {url}: {reason}")]
    InvalidBucket {
        /// The URL or directory as given (without credentials).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The bucket URL names a cloud store this build does not have: cdp-bucket was
    /// built without the cargo feature that brings it.
    #[error(
        "bucket {url}: `{scheme}://` buckets need cdp-bucket's `{feature}` feature, which this \
         build does not have (the `{feature}` feature of cdp-collector, cdp-sync and \
         cdp-warehouse turns it on)"
    )]
    BackendNotBuilt {
        /// The URL (without credentials or query).
        url: String,
        /// Its scheme (`s3`, `gs`, `az`, `abfss`, `https`, …).
        scheme: String,
        /// The cargo feature that brings the store (`s3`, `gcs` or `azure`).
        feature: &'static str,
    },
    /// A setting is out of range.
    #[error("invalid writer setting `{setting}`: {reason}")]
    InvalidConfig {
        /// The setting (`interval`, `max_file_bytes`, …).
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A call of the batch is not valid; nothing of the batch was kept.
    #[error("call {index} of the batch: {source}")]
    InvalidCall {
        /// The 0-based index of the call in the batch given to `append`.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: CallError,
    },
    /// The local spool could not take the calls (disk full, permissions, …);
    /// nothing of the batch was kept.
    #[error("spool {}: {source}", path.display())]
    Spool {
        /// The spool file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Another writer holds the spool directory.
    #[error("spool {} is in use by another writer", dir.display())]
    SpoolLocked {
        /// The spool directory.
        dir: PathBuf,
    },
    /// The spool holds a record that checks out but cannot be read back (written by
    /// an incompatible version, or damaged in a way the checksum did not catch).
    #[error("spool file {} is damaged at byte {offset}: {reason}", path.display())]
    SpoolCorrupt {
        /// The spool file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Encoding a file failed.
    #[error("encoding the {call_type} file failed: {source}")]
    Encode {
        /// The file's call type.
        call_type: CallType,
        /// The encoder's error.
        #[source]
        source: EncodeError,
    },
    /// The object store failed (network, permissions, …). Publishing is retried
    /// on the next `tick`, `append` or `shutdown`; the calls stay in the spool.
    #[error("object store {operation} of {object} failed: {source}")]
    Store {
        /// `put`, `get` or `list`.
        operation: &'static str,
        /// The object (or prefix) concerned.
        object: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// Writing a file into a local directory bucket failed (disk full, …).
    /// Publishing is retried like a store error.
    #[error("local bucket file {}: {source}", path.display())]
    Local {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The object of this position is already in the bucket with other bytes:
    /// another writer exports the same (integration, action). The writer stops and
    /// writes nothing more; its calls stay in its spool.
    #[error(
        "position conflict: {object} already exists with different contents; another writer \
         exports the same integration and action (position {position}); stopping"
    )]
    PositionConflict {
        /// The object's full path in the store.
        object: String,
        /// The position the writer tried to publish.
        position: Position,
    },
    /// The writer stopped after an earlier error and takes no more calls.
    #[error("the writer has stopped: {reason}")]
    Stopped {
        /// The error that stopped it.
        reason: String,
    },
}

impl BucketError {
    /// Whether retrying later may succeed (an object store outage), as opposed to a
    /// problem that needs a person (a conflict, bad settings, a damaged spool).
    pub fn is_transient(&self) -> bool {
        matches!(self, BucketError::Store { .. } | BucketError::Local { .. })
    }
}
