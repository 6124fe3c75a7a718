//! [`RunError`]: why a run failed or did not run, typed; [`RunErrorKind`]: its kind,
//! as the run history records it.

use std::fmt;

use cdp_query::QueryError;
use cdp_rows::{CapReached, SyncError};
use cdp_source::SourceError;
use serde::{Deserialize, Serialize};

use crate::{DestinationError, StateError};

/// Why a run of a sync failed, or did not run.
///
/// [`crate::Runner::run`] returns it typed, with its source, in
/// [`crate::RunReport::error`]; the run history keeps its message
/// ([`crate::RunRecord::error`]) and its kind ([`crate::RunRecord::error_kind`],
/// [`RunError::kind`]). A failed run leaves `last_sync_time` where it was, so the next
/// run reads the same rows again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The query could not be rendered for this run (the checks at setup rendered it
    /// with other times): a `{{last_sync_time_iso}}` or `{{sync_started_at_iso}}`
    /// whose time RFC 3339 cannot write, a helper given a parameter of the wrong type.
    #[error("the query cannot be rendered for this run:\n{0}")]
    Render(#[source] Box<QueryError>),
    /// The source failed: connecting, running the query, or reading its rows (a row
    /// whose value cannot be read is a row error instead, and the run goes on).
    #[error(transparent)]
    Source(Box<SourceError>),
    /// The result's columns cannot be mapped to calls (two columns setting the same
    /// field, too many columns, …), found when the run's query started, before any row
    /// was read. Columns are checked when a sync is set up, so this is a result that
    /// changed since (a table that gained a column behind `SELECT *`, a template
    /// branch that selects other columns).
    #[error("the query's columns cannot be mapped: {0}")]
    Mapping(#[source] SyncError),
    /// The destination failed: it could not be opened, or it kept failing until its
    /// retries ran out, or it answered with an error no retry can fix.
    #[error("destination {0}")]
    Destination(#[source] DestinationError),
    /// The run reached its record cap ([`crate::Runner::with_max_records`], 30,000,000
    /// by default): no row past it was delivered (a few batches past it may have been
    /// read ahead), and the run fails. Narrow the query (compare a
    /// timestamp with `{{last_sync_time}}`).
    #[error("{0}; narrow the query, e.g. compare a timestamp column with {{{{last_sync_time}}}}")]
    RecordCap(#[source] CapReached),
    /// Every row was read and delivered, but the sync's state (its new
    /// `last_sync_time`) could not be saved: the next run reads the same rows again.
    #[error("the run's calls were delivered, but its new last_sync_time could not be saved: {0}")]
    State(#[source] StateError),
    /// A diff sync's primary key is not a column of the result (see
    /// [`crate::SyncMode::Diff`] for how names match).
    #[error("the primary key `{primary_key}` is not a column of the result (its columns: {})", columns.join(", "))]
    PrimaryKey {
        /// The primary key, as the sync names it.
        primary_key: String,
        /// The result's columns.
        columns: Vec<String>,
    },
    /// A diff sync's snapshot could not be read or written (a damaged snapshot, a
    /// full disk): the snapshot stays as it was, so the next run diffs against the same
    /// base.
    #[error(transparent)]
    Diff(crate::diff::DiffError),
    /// A diff sync with `on_delete = "event"` had rows that could not be read (their
    /// keys are unknown) and keys that look deleted: those keys may be on the unreadable
    /// rows, so no delete event was sent and the run fails as a destination failure
    /// would (the destination is not finished: a bucket publishes nothing, calls an
    /// HTTP destination already sent in full batches stay sent), keeping the snapshot:
    /// the next run sends the same changes again. Fix the values the source cannot
    /// read.
    #[error(
        "{unreadable} rows could not be read, so the {deleted} keys that look deleted may be on them: \
         no delete event was sent and the snapshot is kept"
    )]
    DeletesHeldBack {
        /// Rows that could not be read.
        unreadable: u64,
        /// Keys that looked deleted.
        deleted: u64,
    },
    /// The process stopped while the run was going (a crash, a kill): only ever read
    /// back from the history.
    #[error("the run did not finish: the process stopped while it was going")]
    Interrupted,
    /// The previous run of the sync was still going: this one was skipped.
    #[error("the previous run of this sync was still going")]
    PreviousRunGoing,
}

impl RunError {
    /// The error's kind, as the run history records it.
    pub fn kind(&self) -> RunErrorKind {
        match self {
            RunError::Render(_) => RunErrorKind::Render,
            RunError::Source(_) => RunErrorKind::Source,
            RunError::Mapping(_) => RunErrorKind::Mapping,
            RunError::Destination(_) => RunErrorKind::Destination,
            RunError::RecordCap(_) => RunErrorKind::RecordCap,
            RunError::State(_) => RunErrorKind::State,
            RunError::PrimaryKey { .. } => RunErrorKind::Mapping,
            RunError::Diff(_) | RunError::DeletesHeldBack { .. } => RunErrorKind::Diff,
            RunError::Interrupted => RunErrorKind::Interrupted,
            RunError::PreviousRunGoing => RunErrorKind::PreviousRunGoing,
        }
    }
}

impl From<SourceError> for RunError {
    fn from(error: SourceError) -> RunError {
        RunError::Source(Box::new(error))
    }
}

impl From<DestinationError> for RunError {
    fn from(error: DestinationError) -> RunError {
        RunError::Destination(error)
    }
}

impl From<crate::diff::DiffError> for RunError {
    fn from(error: crate::diff::DiffError) -> RunError {
        RunError::Diff(error)
    }
}

impl From<CapReached> for RunError {
    fn from(error: CapReached) -> RunError {
        RunError::RecordCap(error)
    }
}

/// The kind of a [`RunError`], as the run history records it next to the message: a
/// stable snake_case name (`"source"`, `"record_cap"`, …) that scripts can match on.
///
/// A kind this version does not know (written by a later one) reads back as
/// [`RunErrorKind::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunErrorKind {
    /// `render`: [`RunError::Render`].
    Render,
    /// `source`: [`RunError::Source`].
    Source,
    /// `mapping`: [`RunError::Mapping`].
    Mapping,
    /// `destination`: [`RunError::Destination`].
    Destination,
    /// `record_cap`: [`RunError::RecordCap`].
    RecordCap,
    /// `state`: [`RunError::State`].
    State,
    /// `interrupted`: [`RunError::Interrupted`].
    Interrupted,
    /// `diff`: [`RunError::Diff`] and [`RunError::DeletesHeldBack`].
    Diff,
    /// `previous_run_going`: [`RunError::PreviousRunGoing`] (a skipped run).
    PreviousRunGoing,
    /// `other`: a kind this version does not know.
    #[serde(other)]
    Other,
}

impl RunErrorKind {
    /// The stable snake_case name: `render`, `source`, `mapping`, `destination`,
    /// `record_cap`, `state`, `interrupted`, `diff`, `previous_run_going` or `other`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunErrorKind::Render => "render",
            RunErrorKind::Source => "source",
            RunErrorKind::Mapping => "mapping",
            RunErrorKind::Destination => "destination",
            RunErrorKind::RecordCap => "record_cap",
            RunErrorKind::State => "state",
            RunErrorKind::Interrupted => "interrupted",
            RunErrorKind::Diff => "diff",
            RunErrorKind::PreviousRunGoing => "previous_run_going",
            RunErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for RunErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_stable_snake_case_names_and_unknown_ones_read_as_other() {
        for kind in [
            RunErrorKind::Render,
            RunErrorKind::Source,
            RunErrorKind::Mapping,
            RunErrorKind::Destination,
            RunErrorKind::RecordCap,
            RunErrorKind::State,
            RunErrorKind::Interrupted,
            RunErrorKind::Diff,
            RunErrorKind::PreviousRunGoing,
            RunErrorKind::Other,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<RunErrorKind>(&json).unwrap(), kind);
        }
        assert_eq!(serde_json::from_str::<RunErrorKind>("\"quota\"").unwrap(), RunErrorKind::Other);
        assert_eq!(RunError::Interrupted.kind().as_str(), "interrupted");
    }
}
