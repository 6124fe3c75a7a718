//! [`SyncError`] (the whole sync cannot be mapped) and [`RowError`] (one row cannot).

use std::fmt;

use cdp_calls::{CallError, CallType, TimestampError};

/// Why a result set's columns cannot be mapped at all: an error for the whole sync,
/// found from the column names alone, before any row is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// More columns than [`crate::MAX_COLUMNS`].
    #[error("the query returns {count} columns, over the limit of {limit}")]
    TooManyColumns {
        /// How many columns the query returns.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A column name longer than [`crate::MAX_NAME_CHARS`] characters.
    #[error("column {index} `{column}` has a name of {chars} characters, over the limit of {limit}")]
    NameTooLong {
        /// The name as returned.
        column: String,
        /// 1-based position of the column.
        index: usize,
        /// Its length in characters.
        chars: usize,
        /// The limit.
        limit: usize,
    },
    /// A column name that is empty, or has an empty part between dots (`a..b`, `.a`,
    /// `a.`).
    #[error("column {index} `{column}` has an empty name or an empty part between dots")]
    EmptyName {
        /// The name as returned.
        column: String,
        /// 1-based position of the column.
        index: usize,
    },
    /// Two columns set the same field (`userId` and `USERID`, or `email` twice).
    #[error("columns `{first}` and `{second}` both set `{field}`")]
    SameField {
        /// The earlier column, as returned.
        first: String,
        /// The later column, as returned.
        second: String,
        /// The field both set, as a dotted wire path (`traits.email`).
        field: String,
    },
    /// One column sets a field and another sets a field nested inside it (`a` and
    /// `a.b`, or `context` and `context.ip`).
    #[error("column `{inner}` sets `{inner_field}`, inside `{outer_field}` which column `{outer}` sets")]
    NestedInsideField {
        /// The column that sets the outer field, as returned.
        outer: String,
        /// The outer field (`traits.a`).
        outer_field: String,
        /// The column that sets a field inside it, as returned.
        inner: String,
        /// The inner field (`traits.a.b`).
        inner_field: String,
    },
    /// A column an alias call has no place for: alias calls carry only `userId`,
    /// `previousId`, `messageId`, `timestamp` and `context`.
    #[error(
        "column `{column}` has no place in an {call_type} call, which takes only userId, previousId, \
         messageId, timestamp and context"
    )]
    NoPlace {
        /// The name as returned.
        column: String,
        /// The sync's call type.
        call_type: CallType,
    },
}

/// Why one row could not become a call. The row is skipped and the run goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RowErrorReason {
    /// The row has a different number of values than the result has columns.
    #[error("the row has {found} values, but the result has {expected} columns")]
    ColumnCount {
        /// How many columns the result has.
        expected: usize,
        /// How many values the row has.
        found: usize,
    },
    /// The row is not of the result set the mapper was built for (its column names
    /// differ).
    #[error("the row's columns are not those of the result set the mapper was built for")]
    ColumnsDiffer,
    /// A value has a type its field cannot take (a boolean `userId`, a number as
    /// `context`).
    #[error("`{field}` must be {expected}, found {found}")]
    InvalidType {
        /// The field, as a dotted wire path (`userId`, `traits.relationshipAttributes`).
        field: &'static str,
        /// What it must be (`text or a number`).
        expected: &'static str,
        /// The kind of value found ([`crate::Value::kind`]).
        found: &'static str,
    },
    /// The `timestamp` column's value is not a timestamp.
    #[error(
        "`timestamp` must be RFC 3339 text, Unix seconds or milliseconds, or a database timestamp; \
         found {found} {value}{}",
        detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
    )]
    InvalidTimestamp {
        /// The kind of value found.
        found: &'static str,
        /// The value, as JSON (cut to 100 characters).
        value: String,
        /// What is wrong with text that looks like a timestamp, if that is the problem.
        detail: Option<TimestampError>,
    },
    /// The group's `objectTypeId` is not a positive integer.
    #[error("`objectTypeId` must be a positive integer, found {found} {value}")]
    InvalidObjectTypeId {
        /// The kind of value found.
        found: &'static str,
        /// The value, as JSON (cut to 100 characters).
        value: String,
    },
    /// A JSON value is not valid JSON.
    #[error("invalid JSON: {message}")]
    InvalidJson {
        /// What the JSON parser found wrong.
        message: String,
    },
    /// An array nests deeper than the limit.
    #[error("arrays nest deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// One value is larger than [`crate::MAX_VALUE_BYTES`] as JSON.
    #[error("the value is {bytes} bytes as JSON, over the limit of {limit}")]
    ValueTooLarge {
        /// Its size, or for a value too large to write, at least this size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The whole row is larger than [`crate::MAX_RECORD_BYTES`] as JSON.
    #[error("the row is {bytes} bytes as JSON, over the limit of {limit}")]
    RecordTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The call made from the row is not valid: a required field is missing (`userId`
    /// or `anonymousId`, `event`, `groupId`, `name`, `previousId`), a semantic event
    /// lacks a field, the `messageId` is too long, or the call is over 32 KiB when
    /// that limit is on.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The database returned a value the source could not read (an unknown type, a
    /// value out of range).
    #[error("the value cannot be read: {message}")]
    Unreadable {
        /// What the source said.
        message: String,
    },
    /// A diff sync's primary key is NULL or empty on this row: the row is not sent.
    #[error("the primary key `{column}` is NULL or empty")]
    MissingKey {
        /// The primary key column, as the sync names it.
        column: String,
    },
    /// A diff sync's primary key is on more than one row of the result: none of those
    /// rows is sent, and the key keeps what the last successful run saw of it.
    #[error("the primary key `{column}` is also on row {other_row} (rows with duplicate keys are not sent)")]
    DuplicateKey {
        /// The primary key column, as the sync names it.
        column: String,
        /// Another row with the same key.
        other_row: u64,
    },
    /// The destination refused the call for good (the HTTP API answered 400 for it
    /// alone): the row was read and mapped, but not delivered.
    #[error("the destination refused the call{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Rejected {
        /// The HTTP status, when the destination speaks HTTP.
        status: Option<u16>,
        /// What the destination said.
        message: String,
    },
}

impl RowErrorReason {
    /// A short, stable code for the reason, for filtering and counting
    /// (`missing_field`, `invalid_timestamp`, …).
    pub fn code(&self) -> &'static str {
        match self {
            RowErrorReason::ColumnCount { .. } => "column_count",
            RowErrorReason::ColumnsDiffer => "columns_differ",
            RowErrorReason::InvalidType { .. } => "invalid_type",
            RowErrorReason::InvalidTimestamp { .. } => "invalid_timestamp",
            RowErrorReason::InvalidObjectTypeId { .. } => "invalid_object_type_id",
            RowErrorReason::InvalidJson { .. } => "invalid_json",
            RowErrorReason::TooDeep { .. } => "too_deep",
            RowErrorReason::ValueTooLarge { .. } => "value_too_large",
            RowErrorReason::RecordTooLarge { .. } => "record_too_large",
            RowErrorReason::Rejected { .. } => "rejected",
            RowErrorReason::MissingKey { .. } => "missing_key",
            RowErrorReason::DuplicateKey { .. } => "duplicate_key",
            RowErrorReason::Unreadable { .. } => "unreadable",
            RowErrorReason::Call(e) => match e {
                CallError::MissingField { .. } => "missing_field",
                CallError::MissingIdentity { .. } => "missing_identity",
                CallError::SemanticEventField { .. } => "semantic_event_field",
                CallError::MessageIdTooLong { .. } => "message_id_too_long",
                CallError::TooLarge { .. } => "call_too_large",
                _ => "invalid_call",
            },
        }
    }
}

/// A row that could not become a call: where it is, why, and what it held.
///
/// Row errors are collected while the run goes on, and can be written out as a CSV
/// file ([`crate::RowErrorCsvWriter`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based number of the row in the query's result.
    pub row_number: u64,
    /// The column at fault as the database returned its name, when one is (`None` for
    /// a missing field or a call-wide problem).
    pub column: Option<Box<str>>,
    /// Why the row could not be mapped.
    pub reason: RowErrorReason,
    /// The row's values as a compact JSON object of column name to value, in column
    /// order. Values are written as in calls (timestamps as RFC 3339 text, bytes as
    /// base64) but text is never parsed; a value over 1 KiB as JSON is cut to a
    /// string of the first 1 KiB of its text (or of its JSON) followed by `…`.
    pub values: Box<str>,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}", self.row_number)?;
        if let Some(column) = &self.column {
            write!(f, ", column `{column}`")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for RowError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.reason)
    }
}
