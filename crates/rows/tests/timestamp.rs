//! The `timestamp` column: RFC 3339 text, Unix seconds or milliseconds as numbers,
//! and database timestamps are accepted; anything else is a row error.

mod common;

use cdp_calls::{CallType, TimestampError};
use cdp_rows::{Date, RowErrorReason, Value};
use common::*;

fn timestamp_of(value: Value<'_>) -> Result<Option<String>, cdp_rows::RowError> {
    map(CallType::Identify, vec![("userId", Value::from("u1")), ("timestamp", value)])
        .map(|call| call.timestamp.map(|t| t.to_string()))
}

#[test]
fn rfc3339_text_in_any_offset() {
    for (text, want) in [
        ("2026-11-22T10:00:00Z", "2026-11-22T10:00:00.000Z"),
        ("2026-11-22T11:30:00.123+01:30", "2026-11-22T10:00:00.123Z"),
        ("2026-11-22 05:00:00-05:00", "2026-11-22T10:00:00.000Z"),
        ("2026-11-22T10:00:00.123456789Z", "2026-11-22T10:00:00.123456Z"),
    ] {
        assert_eq!(timestamp_of(Value::from(text)).unwrap().as_deref(), Some(want), "{text}");
    }
}

#[test]
fn sql_text_without_a_zone_is_utc() {
    // SQLite's datetime() and CURRENT_TIMESTAMP: no zone, taken as UTC.
    assert_eq!(
        timestamp_of(Value::from("2026-11-22 10:00:00")).unwrap().as_deref(),
        Some("2026-11-22T10:00:00.000Z")
    );
    assert_eq!(
        timestamp_of(Value::from("2026-11-22T10:00:00.5")).unwrap().as_deref(),
        Some("2026-11-22T10:00:00.500Z")
    );
}

#[test]
fn unix_seconds_and_milliseconds() {
    // 1,795,341,600 s after 1970 is 2026-11-22T10:00:00Z (20,779 days and 10 hours).
    assert_eq!(20_779 * 86_400 + 10 * 3600, 1_795_341_600);
    let want = Some("2026-11-22T10:00:00.000Z");
    assert_eq!(timestamp_of(Value::Int(1_795_341_600)).unwrap().as_deref(), want);
    assert_eq!(timestamp_of(Value::UInt(1_795_341_600)).unwrap().as_deref(), want);
    assert_eq!(timestamp_of(Value::Int(1_795_341_600_000)).unwrap().as_deref(), want);
    assert_eq!(timestamp_of(Value::decimal("1795341600")).unwrap().as_deref(), want);
    assert_eq!(timestamp_of(Value::Float(1_795_341_600.0)).unwrap().as_deref(), want);
    // Fractions: kept to the microsecond.
    assert_eq!(
        timestamp_of(Value::decimal("1795341600.1234569")).unwrap().as_deref(),
        Some("2026-11-22T10:00:00.123456Z"),
        "decimals are exact and truncated"
    );
    assert_eq!(
        timestamp_of(Value::Float(1_795_341_600.25)).unwrap().as_deref(),
        Some("2026-11-22T10:00:00.250Z")
    );
    assert_eq!(
        timestamp_of(Value::decimal("1795341600250.5")).unwrap().as_deref(),
        Some("2026-11-22T10:00:00.250500Z")
    );
    // Before 1970.
    assert_eq!(timestamp_of(Value::Int(-86_400)).unwrap().as_deref(), Some("1969-12-31T00:00:00.000Z"));
}

#[test]
fn database_timestamps() {
    let t = at("2026-11-22T10:00:00.000001Z");
    assert_eq!(timestamp_of(Value::Timestamp(t)).unwrap(), Some(t.to_string()));
    assert_eq!(timestamp_of(Value::TimestampWithoutZone(t)).unwrap(), Some(t.to_string()));
}

#[test]
fn null_leaves_the_timestamp_unset() {
    assert_eq!(timestamp_of(Value::Null).unwrap(), None);
}

#[test]
fn anything_else_is_a_row_error() {
    let cases = [
        (Value::from("yesterday"), "text", Some(TimestampError::Shape)),
        (Value::from("1795341600"), "text", Some(TimestampError::Shape)),
        (Value::from(""), "text", Some(TimestampError::Shape)),
        (Value::from("2026-13-01T00:00:00Z"), "text", Some(TimestampError::OutOfRange { part: "month" })),
        (Value::Bool(true), "boolean", None),
        (Value::from(Date::from_ymd(2026, 11, 22).unwrap()), "date", None),
        (Value::Float(f64::NAN), "float", None),
        (Value::Int(i64::MAX), "integer", None),
        (Value::decimal("1e30"), "decimal", None),
        (Value::json("\"2026-11-22T10:00:00Z\""), "JSON", None),
    ];
    for (value, found, detail) in cases {
        let shown = format!("{value:?}");
        let e = timestamp_of(value).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("timestamp"), "{shown}");
        match &e.reason {
            RowErrorReason::InvalidTimestamp { found: f, detail: d, .. } => {
                assert_eq!((*f, d), (found, &detail), "{shown}");
            }
            other => panic!("{shown}: {other:?}"),
        }
    }
    let e = timestamp_of(Value::from("yesterday")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "row 1, column `timestamp`: `timestamp` must be RFC 3339 text, Unix seconds or milliseconds, or a \
         database timestamp; found text \"yesterday\" (expected an RFC 3339 timestamp like \
         2026-11-22T10:00:00.000Z)"
    );
}
