//! [`ApiError`]: what the collector answers when it does not take a request.

use serde::Serialize;

use crate::Rejected;

/// Why a request was not taken: each variant has its HTTP status and a JSON body
/// with top-level `code` and `message` (what the Segment and Customer.io SDKs
/// read), plus `errors: [{index, code, message}]` when calls are at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No valid write key: 401.
    #[error("a valid write key is required (HTTP Basic with the key as user name, or Bearer)")]
    Unauthorized,
    /// No such endpoint: 404.
    #[error("no endpoint {path}")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The endpoint does not take this method: 405, with an `Allow` header.
    #[error("{method} is not allowed here; use {allow}")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The methods the endpoint takes (the `Allow` header).
        allow: &'static str,
    },
    /// The body is larger than allowed: 400 (the SDKs retry a 413, and a body
    /// this size fails every time).
    #[error("{what} is {bytes} bytes, over the limit of {limit}")]
    TooLarge {
        /// What is too large (`the body`, `the decompressed body`).
        what: &'static str,
        /// Its size (for a body cut off while reading, at least this).
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The body cannot be read: not JSON, not an object, not gzip as it says: 400.
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
    },
    /// In strict mode (`X-Strict-Mode: 1`), calls of the request are invalid: 400,
    /// and nothing of the request was kept.
    #[error("{} of {total} calls invalid (strict mode): nothing was kept; the first, call {}: {}",
        errors.len(), errors[0].index, errors[0].message)]
    InvalidCalls {
        /// Every invalid call. Never empty.
        errors: Vec<CallFailure>,
        /// The number of calls in the request.
        total: usize,
    },
    /// The client sent its headers or body too slowly: 408, and the connection
    /// is closed.
    #[error("the request {what} did not arrive within {seconds} s")]
    Timeout {
        /// `headers` or `body`.
        what: &'static str,
        /// The timeout.
        seconds: u64,
    },
    /// The calls could not be made durable (the spool is full or failing, or the
    /// writer stopped): 503, and nothing of the request was kept.
    #[error("the calls could not be stored: {message}")]
    Unavailable {
        /// Why.
        message: String,
    },
    /// Clients outpace the writer: the request waited
    /// [`crate::CollectorConfig::queue_timeout`] for room among the queued calls.
    /// 503 with `Retry-After: 1`; nothing of the request was kept.
    #[error("the collector is busy: {message}")]
    Busy {
        /// What is full.
        message: String,
    },
}

/// One call of a request that is not valid, as an answer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CallFailure {
    /// Its index in the batch (0 for a single call).
    pub index: usize,
    /// What is wrong, as a stable name ([`cdp_calls::CallError::code`]).
    pub code: &'static str,
    /// What is wrong, in words.
    pub message: String,
}

impl From<&Rejected> for CallFailure {
    fn from(rejected: &Rejected) -> CallFailure {
        CallFailure {
            index: rejected.index,
            code: rejected.error.code(),
            message: rejected.error.to_string(),
        }
    }
}

/// An answer's body: `{"code", "message", "errors"?}`.
#[derive(Serialize)]
struct Body<'a> {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [CallFailure]>,
}

impl ApiError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Unauthorized => 401,
            ApiError::NotFound { .. } => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::TooLarge { .. } | ApiError::BadRequest { .. } | ApiError::InvalidCalls { .. } => 400,
            ApiError::Timeout { .. } => 408,
            ApiError::Unavailable { .. } | ApiError::Busy { .. } => 503,
        }
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound { .. } => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::InvalidCalls { .. } => "invalid_calls",
            ApiError::Timeout { .. } => "timeout",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Busy { .. } => "busy",
        }
    }

    /// The JSON body of the answer: `{"code", "message"}`, and `errors` listing
    /// the calls at fault for [`ApiError::InvalidCalls`].
    pub fn to_json(&self) -> String {
        let errors = match self {
            ApiError::InvalidCalls { errors, .. } => Some(errors.as_slice()),
            _ => None,
        };
        body_json(self.code(), self.to_string(), errors)
    }
}

/// The body of a permissive answer: `{"success": true}`, and the calls dropped
/// from it when there are any.
pub(crate) fn success_json(dropped: &[CallFailure]) -> String {
    #[derive(Serialize)]
    struct Success<'a> {
        success: bool,
        #[serde(skip_serializing_if = "<[CallFailure]>::is_empty")]
        errors: &'a [CallFailure],
    }
    serde_json::to_string(&Success { success: true, errors: dropped }).unwrap_or_default()
}

fn body_json(code: &'static str, message: String, errors: Option<&[CallFailure]>) -> String {
    serde_json::to_string(&Body { code, message, errors }).unwrap_or_default()
}
