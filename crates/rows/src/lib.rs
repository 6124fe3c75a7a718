//! Reverse ETL, row to call: each row a sync's query returns becomes one call of the
//! sync's type, as SPEC section 5 ("Row to call", "Limits") says.
//!
//! A source turns database values into [`Value`]s; the runner builds one
//! [`RowMapper`] per result set from its [`Columns`] (which is when problems with the
//! whole sync are found, [`SyncError`]), then maps each row, with its row number, into
//! a [`cdp_calls::Call`] or a [`RowError`]. Row errors never stop the run; they are
//! collected and can be written as a CSV file. A [`RecordCap`] bounds the rows read in
//! one run.
//!
//! # Recipe: a sync run
//! ```
//! use cdp_calls::{CallType, Timestamp};
//! use cdp_rows::{Columns, MappingOptions, RecordCap, RowMapper, Value, write_row_errors_csv};
//!
//! // A Snowflake query: SELECT ID AS userId, EMAIL, PLAN, OBJECT_CONSTRUCT(...) AS "address", ...
//! let columns = Columns::new(["USERID", "EMAIL", "PLAN", "address", "context.ip", "UPDATED_AT"]);
//! let rows = vec![
//!     vec![
//!         Value::from(42),
//!         Value::from("ada@example.com"),
//!         Value::from("pro"),
//!         Value::from("{\n  \"city\": \"Paris\"\n}"), // OBJECT_CONSTRUCT arrives as text
//!         Value::from("203.0.113.9"),
//!         Value::TimestampWithoutZone("2026-11-22T09:30:00Z".parse()?),
//!     ],
//!     vec![Value::Null, Value::from("nobody@example.com"), Value::Null, Value::Null, Value::Null, Value::Null],
//! ];
//!
//! // Once per result set: plan the columns (sync-level errors come out here).
//! let run_started: Timestamp = "2026-11-22T10:00:00Z".parse()?;
//! let options = MappingOptions::new("people", CallType::Identify).lowercase_names(true);
//! let mut mapper = RowMapper::new(options, &columns, run_started)?;
//!
//! // Then row by row: a call, or a row error; the run goes on either way.
//! let mut cap = RecordCap::default(); // 30,000,000 rows per run
//! let (mut calls, mut errors) = (Vec::new(), Vec::new());
//! for values in &rows {
//!     let Ok(row_number) = cap.admit() else { break }; // at the cap: stop reading, report
//!     match mapper.map_values(row_number, values) {
//!         Ok(call) => calls.push(call),
//!         Err(error) => errors.push(error),
//!     }
//! }
//!
//! let call = &calls[0];
//! assert_eq!(call.user_id.as_deref(), Some("42"));
//! let traits: serde_json::Value = serde_json::from_str(call.traits().unwrap().as_str())?;
//! assert_eq!(
//!     traits,
//!     serde_json::json!({
//!         "email": "ada@example.com",
//!         "plan": "pro",
//!         "address": { "city": "Paris" },
//!         "updated_at": "2026-11-22T09:30:00.000Z",
//!     })
//! );
//! assert_eq!(call.context.as_ref().unwrap().as_str(), r#"{"ip":"203.0.113.9"}"#);
//! assert_eq!(call.message_id.as_ref().unwrap().len(), 26, "a deterministic ULID");
//!
//! assert_eq!(errors[0].row_number, 2);
//! assert_eq!(errors[0].to_string(), "row 2: identify call needs `userId` or `anonymousId`");
//! let csv = String::from_utf8(write_row_errors_csv(Vec::new(), &errors)?).unwrap();
//! assert!(csv.starts_with("row_number,column,code,reason,values\n2,,missing_identity,"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where columns go
//! - **Reserved fields** (SPEC section 5) set the call's fields; their names match
//!   without regard to ASCII case (`USERID`, `userid` and `userId` are all `userId`):
//!   - identify, group: `userId`, `anonymousId`, `groupId`, `integrations`,
//!     `messageId`, `timestamp`, `context` and `context.*`; group also `objectTypeId`.
//!     An identify call has no `groupId` field, so that column becomes an unknown
//!     top-level field `groupId`, passed through.
//!   - track, page, screen: `userId`, `anonymousId`, `event`, `integrations`,
//!     `messageId`, `timestamp`, `context` and `context.*`; page and screen also
//!     `name`. Their `event` becomes an unknown top-level field `event`.
//!   - alias: `userId`, `previousId`, `messageId`, `timestamp`, `context` and
//!     `context.*`. An alias call has no traits or properties, so **any other column is
//!     a sync error** ([`SyncError::NoPlace`]) rather than being dropped.
//!   - `integrations.*` columns set keys of `integrations`, kept as returned (`All`).
//! - **Everything else** goes into `traits` (identify, group) or `properties`
//!   (track, page, screen), named exactly as returned, or lower-cased (Unicode) when
//!   [`MappingOptions::lowercase_names`] is set. Only whole names are reserved:
//!   `traits`, `type` or `userId.x` are ordinary names that land in the payload.
//! - **Dots nest**, to any depth: `cart.product_name` is
//!   `{"cart":{"product_name":…}}`; `context.device.token` is inside `context`. Keys
//!   appear in the order their columns first appear. Under `context`, the reserved
//!   keys of SPEC section 1 (`ip`, `library`, `page`, `device`, `os`, `app`, `locale`,
//!   `userAgent`, `campaign`, `traits`) match without regard to case and take that
//!   spelling (`CONTEXT.USERAGENT` is `context.userAgent`); deeper names follow the
//!   payload rule.
//! - **group**: `objectTypeId` is written into the traits as a stringified positive
//!   integer (`3`, `3.0` and `"3"` become `"3"`; null stays null, which means type 1);
//!   anything else is a row error. `relationshipAttributes` (matched without regard
//!   to case, written with that spelling) must be a JSON object, text holding one, or
//!   null, and stays an object inside the traits; `relationshipAttributes.role` nests
//!   into it.
//! - `context` and `integrations` as whole columns must be JSON objects (or text
//!   holding one); null leaves them out.
//!
//! # Sync errors (before any row)
//! More than [`MAX_COLUMNS`] columns; a name over [`MAX_NAME_CHARS`] characters; an
//! empty name or an empty part between dots (`a..b`); two columns landing on the
//! same field (`userId` and `USERID`; `EMAIL` and `email` with lower-casing on), or
//! one inside another's (`a` and `a.b`, `context` and `context.ip`); for alias, a
//! column it has no place for. The conflict checks compare the fields after case
//! matching and lower-casing.
//!
//! # Values as JSON
//! - NULL is `null` inside objects; it leaves a reserved field unset.
//! - Booleans and integers stay booleans and numbers. Floats are written in their
//!   shortest round-trip form; NaN and ±infinity, which JSON cannot hold, become the
//!   strings `"NaN"`, `"Infinity"`, `"-Infinity"` (as PostgreSQL's `to_json` does).
//! - **Exact decimals** ([`Value::Decimal`]) are JSON numbers when they *fit
//!   exactly*: an integer from `i64::MIN` to `u64::MAX` (after a zero fraction or an
//!   exponent: `42.000`, `1.5E+3`), or a value of at most 15 significant digits
//!   within 10^±300, which every reader's double holds and prints back exactly
//!   (`19.99`, `0.1`). The number keeps
//!   the text as given (`42.000` stays `42.000`) unless that is not JSON (`+7`,
//!   `.5`, `5.` become `7`, `0.5`, `5`). Anything else (`0.1000000000000000000001`,
//!   `10.523345114076148`, `1e400`, `NaN`) is the JSON string of the text as given,
//!   so no digit is lost.
//! - Text is a JSON string, except as below. Bytes are standard base64 with padding.
//!   Dates are `YYYY-MM-DD`; times `HH:MM:SS` with `.mmm` or `.uuuuuu` when they have
//!   a fraction.
//! - **Timestamps** with a zone are written as RFC 3339 UTC (`2026-11-22T10:00:00.000Z`,
//!   milliseconds, microseconds when present), as cdp-calls writes timestamps.
//!   **Timestamps without a zone are taken as UTC**.
//! - JSON values are checked and compacted (key order, duplicates, number spelling
//!   kept); a JSON object nests as an object. Invalid JSON is a row error. Arrays are
//!   JSON arrays of their elements (nesting at most 128 deep).
//! - **When text is parsed as JSON**: a text value that, after trimming JSON white
//!   space, starts with `{` and ends with `}`, and parses as JSON, becomes that object
//!   (compacted). This is how Snowflake's `OBJECT_CONSTRUCT` and MySQL's
//!   `json_object` often arrive. Text that does not parse (`{not json}`) stays a
//!   string, and no other text is parsed: `[1,2]`, `42` and `true` stay strings. The
//!   rule applies to a column's own value, not to elements of arrays, and not to
//!   reserved fields that take text (`userId`, `event`, …). It can be turned off with
//!   [`MappingOptions::parse_json_text`], except for `context`, `integrations` and
//!   `relationshipAttributes`, which must be objects and so are always parsed.
//! - Values that set `userId`, `anonymousId`, `groupId`, `previousId`, `event`,
//!   `name` or `messageId` must be text or numbers; numbers become their decimal
//!   strings (a decimal with a zero fraction its integer digits). Empty text counts as
//!   absent, as in cdp-calls.
//!
//! # `timestamp`
//! Accepted: a database timestamp (with or without zone); RFC 3339 text (any
//! offset); the SQL text form without a zone (`2026-11-22 10:00:00[.fff]`, SQLite's
//! `datetime()`), taken as UTC; and numbers (integers, floats, decimals) of Unix time:
//! **seconds when the magnitude is below 10^11 (the year 5138), milliseconds from
//! there on** (so millisecond values before 1973-03-03 are misread as seconds).
//! Fractions are kept to the microsecond: truncated for decimals, rounded for floats.
//! NULL leaves `timestamp` unset. Anything else (other text, dates, booleans, numeric
//! text) is a row error. The call's `timestamp` is the row's; `originalTimestamp` and
//! `receivedAt` are for the runner to stamp ([`cdp_calls::Call::stamp_received`]).
//!
//! # `messageId`
//! Taken from the `messageId` column when there is one and its value is not null or
//! empty. Otherwise a ULID: its time part is the row's `timestamp`, or the run's
//! start when the row has none; its random part is 80 bits of the XXH3-128 hash of
//! the sync name, the call type, the column names and every value of the row, each
//! length-prefixed and type-tagged (the exact encoding is versioned and documented on
//! the `message_id` module; it does not depend on the platform or crate version). The
//! same row in the same sync thus always gets the same id, and any change of value,
//! type or column gives a different one. Rows without a `timestamp` get ids that
//! differ from run to run (the run's start differs); give rows a timestamp to make
//! re-read rows deduplicate across runs.
//!
//! # Limits and row errors
//! - A value over [`MAX_VALUE_BYTES`] (128 KiB) as JSON, or a row over
//!   [`MAX_RECORD_BYTES`] (512 KiB) as the JSON object of column name to value, is a
//!   row error.
//! - With [`MappingOptions::limit_call_size`] (for the HTTP destination), a call over
//!   [`cdp_calls::MAX_CALL_BYTES`] (32 KiB) as compact JSON is a row error. The size is
//!   that of the call as mapped; stamping adds `receivedAt` and `originalTimestamp`
//!   (under 80 bytes), which the 475,000-byte batch limit leaves room for.
//! - Missing required fields (`userId` or `anonymousId`; `event` for track, `name` for
//!   page and screen, `groupId` for group, `userId` and `previousId` for alias) and
//!   semantic events without their fields are row errors, checked by
//!   [`cdp_calls::Call::validate`].
//! - A [`RowError`] has the row number, the column at fault (when one is), a
//!   structured [`RowErrorReason`], and the row's values as JSON.
//!   [`RowErrorCsvWriter`] writes them as CSV.
//!
//! # At the record cap
//! A run reads at most [`RecordCap::limit`] rows (30,000,000 by default); every row
//! read counts, call or row error. The runner asks [`RecordCap::admit`] before
//! mapping each row; when the cap is full it gets [`CapReached`] (the limit and the
//! first row not read) instead, and then:
//! - it stops reading (the query is not drained) and delivers the calls mapped so far;
//! - it records the run as **capped**, with the `CapReached` message, next to its
//!   counts and row errors;
//! - it does not advance `last_sync_time`, since rows past the cap were not read: the
//!   next run reads them again (and re-reads the first rows, whose deterministic
//!   message ids let them be deduplicated). A query that always returns more rows than
//!   the cap needs a narrower `WHERE` or a higher cap.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cap;
mod csv;
mod decimal;
mod error;
mod mapper;
pub mod message_id;
mod plan;
mod render;
mod row;
mod time;
mod value;

pub use cap::{CapReached, DEFAULT_MAX_RECORDS, RecordCap};
pub use csv::{ROW_ERROR_CSV_HEADER, RowErrorCsvWriter, write_row_errors_csv};
pub use error::{RowError, RowErrorReason, SyncError};
pub use mapper::{MAX_COLUMNS, MAX_NAME_CHARS, MAX_RECORD_BYTES, MAX_VALUE_BYTES, MappingOptions, RowMapper};
pub use row::{Columns, Row};
pub use value::{Date, Time, Value};
