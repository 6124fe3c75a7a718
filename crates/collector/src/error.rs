//! [`ApiError`]: what the collector answers when it does not take a request.

use cdp_calls::CallError;

/// Why a request was not taken: each variant has its HTTP status and a JSON body
/// (`{"error": {"code": …, "message": …, "index": …}}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No valid write key: 401.
    #[error("a valid write key is required (HTTP Basic, the key as user name)")]
    Unauthorized,
    /// No such endpoint: 404.
    #[error("no endpoint {path}")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The endpoint does not take this method: 405.
    #[error("{method} is not allowed here")]
    MethodNotAllowed {
        /// The method used.
        method: String,
    },
    /// The body or a call is larger than allowed: 413.
    #[error("{what} is {bytes} bytes, over the limit of {limit}{}", at(*index))]
    TooLarge {
        /// What is too large (`the body`, `the call`).
        what: &'static str,
        /// Its size (for a body cut off while reading, at least this).
        bytes: usize,
        /// The limit.
        limit: usize,
        /// The index of the call in the batch.
        index: Option<usize>,
    },
    /// The body is not valid JSON, or a call is not valid: 400.
    #[error("{message}{}", at(*index))]
    BadRequest {
        /// What is wrong.
        message: String,
        /// The index of the call in the batch, when one call is at fault.
        index: Option<usize>,
    },
    /// The calls could not be made durable (the spool is full or failing, or the
    /// writer stopped): 503, and nothing of the request was kept.
    #[error("the calls could not be stored: {message}")]
    Unavailable {
        /// Why.
        message: String,
    },
}

fn at(index: Option<usize>) -> String {
    index.map_or_else(String::new, |i| format!(" (call {i} of the batch)"))
}

impl ApiError {
    /// The error for a call that cannot be read or is invalid.
    pub fn from_call_error(error: CallError, index: Option<usize>) -> ApiError {
        match error {
            CallError::TooLarge { bytes, limit } => {
                ApiError::TooLarge { what: "the call", bytes, limit, index }
            }
            other => ApiError::BadRequest { message: other.to_string(), index },
        }
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Unauthorized => 401,
            ApiError::NotFound { .. } => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::TooLarge { .. } => 413,
            ApiError::BadRequest { .. } => 400,
            ApiError::Unavailable { .. } => 503,
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
            ApiError::Unavailable { .. } => "unavailable",
        }
    }

    /// The JSON body of the answer.
    pub fn to_json(&self) -> String {
        let index = match self {
            ApiError::TooLarge { index, .. } | ApiError::BadRequest { index, .. } => *index,
            _ => None,
        };
        serde_json::json!({"error": {"code": self.code(), "message": self.to_string(), "index": index}})
            .to_string()
    }
}
