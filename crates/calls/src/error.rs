//! [`CallError`]: why a call could not be read or is not valid.

use crate::{CallType, SemanticEvent, TimestampError};

/// Why a call could not be read, or is not a valid call.
///
/// Every variant names the field at fault, so a caller can point a user at it; the
/// NDJSON reader adds the line number ([`crate::ndjson::LineError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The text is not valid JSON.
    #[error("invalid JSON at column {column}: {message}")]
    InvalidJson {
        /// 1-based line within the text (1 for a single NDJSON line).
        line: usize,
        /// 1-based column of the problem within that line.
        column: usize,
        /// What the JSON parser found wrong.
        message: String,
    },
    /// The text is valid JSON, but not an object.
    #[error("expected a JSON object, found {found}")]
    NotAnObject {
        /// What was found: `array`, `string`, `number`, `boolean` or `null`.
        found: &'static str,
    },
    /// There is no `type` field.
    #[error("missing field `type`")]
    MissingType,
    /// `type` is not one of the six call types.
    #[error("unknown call type {value:?}: expected identify, track, page, screen, group or alias")]
    UnknownType {
        /// The type as given.
        value: String,
    },
    /// A field has the wrong JSON type.
    #[error("field `{field}` must be {expected}, found {found}")]
    InvalidField {
        /// The wire name of the field (`userId`).
        field: &'static str,
        /// What it must be (`a string or number`).
        expected: &'static str,
        /// The JSON type found (`array`).
        found: &'static str,
    },
    /// A timestamp field is not RFC 3339 text.
    #[error("field `{field}` is not an RFC 3339 timestamp ({value:?}): {reason}")]
    InvalidTimestamp {
        /// The wire name of the field (`sentAt`).
        field: &'static str,
        /// The text as given.
        value: String,
        /// What is wrong with it.
        reason: TimestampError,
    },
    /// A field the call's type requires is absent, null or empty.
    #[error("{call_type} call is missing required field `{field}`")]
    MissingField {
        /// The call's type.
        call_type: CallType,
        /// The wire name of the field (`event`).
        field: &'static str,
    },
    /// Neither `userId` nor `anonymousId` is set.
    #[error("{call_type} call needs `userId` or `anonymousId`")]
    MissingIdentity {
        /// The call's type.
        call_type: CallType,
    },
    /// A semantic event lacks a field its action needs.
    #[error("semantic event {event_name:?} is missing required field `{field}`")]
    SemanticEventField {
        /// The recognised event.
        event: SemanticEvent,
        /// The event name as sent.
        event_name: String,
        /// The dotted path of the missing field (`context.device.token`).
        field: &'static str,
    },
    /// `messageId` is longer than [`crate::MAX_MESSAGE_ID_CHARS`].
    #[error("`messageId` has {chars} characters, over the limit of {limit}")]
    MessageIdTooLong {
        /// Its length in characters.
        chars: usize,
        /// The limit.
        limit: usize,
    },
    /// The call's compact JSON is larger than [`crate::MAX_CALL_BYTES`].
    #[error("call is {bytes} bytes as compact JSON, over the limit of {limit}")]
    TooLarge {
        /// Its size, or for a line cut off while reading, at least this size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

impl CallError {
    /// A short machine-readable name of the problem, stable across releases: what
    /// an API answer's `code` and a metric's `reason` label carry.
    ///
    /// ```
    /// use cdp_calls::{Call, CallError};
    ///
    /// let error = Call::parse_json(r#"{"type":"track","userId":"u1"}"#)?.validate().unwrap_err();
    /// assert_eq!(error.code(), "missing_field");
    /// # Ok::<(), CallError>(())
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            CallError::InvalidJson { .. } => "invalid_json",
            CallError::NotAnObject { .. } => "not_an_object",
            CallError::MissingType => "missing_type",
            CallError::UnknownType { .. } => "unknown_type",
            CallError::InvalidField { .. } => "invalid_field",
            CallError::InvalidTimestamp { .. } => "invalid_timestamp",
            CallError::MissingField { .. } => "missing_field",
            CallError::MissingIdentity { .. } => "missing_identity",
            CallError::SemanticEventField { .. } => "semantic_event_field",
            CallError::MessageIdTooLong { .. } => "message_id_too_long",
            CallError::TooLarge { .. } => "too_large",
        }
    }
}
