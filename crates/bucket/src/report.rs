//! What a sync published: [`SyncReport`] and [`FileReport`].

use std::fmt;

use cdp_calls::{CallType, Timestamp};

use crate::Position;

/// The span of receive times a sync covers: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// The first instant inside the window.
    pub start: Timestamp,
    /// The first instant after it.
    pub end: Timestamp,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// How a file of a sync got into the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Published {
    /// This writer created the object.
    Created,
    /// The object was there already with identical bytes: it was published before a
    /// crash or an interrupted attempt.
    AlreadyPresent,
}

/// One file of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The call type of its rows.
    pub call_type: CallType,
    /// How many rows (calls) it holds.
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its full path in the store.
    pub object: String,
    /// How it was published.
    pub published: Published,
}

/// One sync: a position, the window it covers, and one file per call type that had
/// calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// The sync's position.
    pub position: Position,
    /// The receive times it covers. A sync made early (a file reached its size
    /// limit, or a shutdown) ends at the time it was made.
    pub window: Window,
    /// The files, in call-type order.
    pub files: Vec<FileReport>,
    /// Whether the sync was sealed before the writer last started (published while
    /// recovering, or retried after a store error).
    pub recovered: bool,
}

impl SyncReport {
    /// The number of calls in all files.
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// The bytes of all files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}
