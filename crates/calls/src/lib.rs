//! Customer-data calls, as the Segment spec and the Customer.io Data Pipelines API
//! define them: `identify`, `track`, `page`, `screen`, `group` and `alias`.
//!
//! This crate is the call model shared by both pipelines of cdp-warehouse. It reads
//! and writes calls as JSON, checks them, stamps them as a receiver does, and shows
//! each one as a row of its warehouse table. It pulls in no file format, object
//! store or database.
//!
//! ```
//! use cdp_calls::ndjson::CallReader;
//! use cdp_calls::{CallType, Timestamp, Value};
//!
//! let input = r#"{"type":"track","userId":7,"event":"Order Completed","properties":{"total":42},"timestamp":"2026-11-22T11:00:00+01:00"}
//! {"type":"alias","previousId":"anon-1"}
//! "#;
//! let received: Timestamp = "2026-11-22T10:00:01Z".parse()?;
//! let mut calls = CallReader::with_received_at(input.as_bytes(), received);
//!
//! // A good line: typed, completed and valid.
//! let call = calls.next().unwrap()?;
//! assert_eq!(call.call_type(), CallType::Track);
//! assert_eq!(call.user_id.as_deref(), Some("7"));
//! assert_eq!(call.received_at, Some(received));
//! assert!(call.message_id.is_some(), "a ULID is assigned");
//!
//! // Its warehouse row: the event slug and the stringified properties.
//! let row = call.row();
//! assert_eq!(row.get("event"), Some(Value::Text("order_completed".into())));
//! assert_eq!(row.get("timestamp"), Some(Value::Timestamp("2026-11-22T10:00:00Z".parse()?)));
//!
//! // A bad line: reported with its number and reason, and reading goes on.
//! let err = calls.next().unwrap().unwrap_err();
//! assert_eq!(err.to_string(), "line 2: alias call is missing required field `userId`");
//! assert!(calls.next().is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`ndjson::ParallelCallReader`] reads the same stream on several threads (blocks
//! of whole lines parsed side by side and handed back in order), with exactly the
//! calls and errors [`ndjson::CallReader`] gives.
//!
//! # Decisions where the spec is silent
//! - An empty string counts as absent for every required field.
//! - `null` is the same as an absent field when reading.
//! - `previousId` accepts numbers like the other ids.
//! - Fields a type does not have (`traits` on a track call) are unknown fields and
//!   pass through in [`Call::extra`]; they do not appear in warehouse rows.
//! - Semantic event names match exactly (case and spacing as listed).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod call;
mod error;
mod json;
pub mod ndjson;
mod row;
mod scan;
mod semantic;
mod slug;
mod stamp;
mod time;
mod validate;
mod wire;

pub use call::{Alias, Body, Call, CallType, Extra, Group, Identify, Page, Screen, Track, UnknownCallType};
pub use error::CallError;
pub use json::{JsonObject, JsonObjectError, compact_json};
pub use row::{Column, ColumnKind, RECEIVED_AT_COLUMN, Value, WarehouseRow};
pub use semantic::SemanticEvent;
pub use slug::{event_slug, push_event_slug};
pub use stamp::corrected_timestamp;
pub use time::{Timestamp, TimestampError, TimestampText};
pub use validate::{MAX_CALL_BYTES, MAX_MESSAGE_ID_CHARS};
pub use wire::{escaped_len as json_string_len, push_json_string};

/// Re-exported so that users can build raw values for [`Extra`] without naming
/// serde_json's version themselves.
pub use serde_json::value::RawValue;
