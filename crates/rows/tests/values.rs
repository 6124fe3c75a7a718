//! The value type: every kind a database returns, written as JSON by the rules in the
//! crate docs. Expected values are written by hand and compared after parsing the
//! mapper's output with serde_json.

mod common;

use cdp_calls::CallType;
use cdp_rows::{Date, RowErrorReason, Time, Value};
use common::*;
use serde_json::json;

#[test]
fn null_bool_and_integers() {
    assert_eq!(value_json(Value::Null), json!(null));
    assert_eq!(value_json(Value::Bool(true)), json!(true));
    assert_eq!(value_json(Value::Bool(false)), json!(false));
    assert_eq!(value_json(Value::Int(-42)), json!(-42));
    assert_eq!(value_json(Value::Int(i64::MIN)), json!(i64::MIN));
    assert_eq!(value_json(Value::UInt(u64::MAX)), json!(u64::MAX));
    assert_eq!(value_json(Value::from(7_u8)), json!(7));
    assert_eq!(value_json(Value::from(-7_i16)), json!(-7));
    assert_eq!(value_json(Value::from(i128::from(u64::MAX) + 1)), json!("18446744073709551616"));
}

#[test]
fn floats_are_shortest_and_non_finite_floats_are_strings() {
    assert_eq!(value_text(Value::Float(0.1)), "0.1");
    assert_eq!(value_json(Value::Float(-2.5e-8)), json!(-2.5e-8));
    assert_eq!(value_json(Value::Float(1e300)), json!(1e300));
    assert_eq!(value_text(Value::from(0.1_f32)), "0.1", "an f32 keeps its own shortest form");
    assert_eq!(value_json(Value::Float(f64::NAN)), json!("NaN"));
    assert_eq!(value_json(Value::Float(f64::INFINITY)), json!("Infinity"));
    assert_eq!(value_json(Value::Float(f64::NEG_INFINITY)), json!("-Infinity"));
}

#[test]
fn decimals_are_numbers_when_they_fit_exactly() {
    // Integers in i64/u64 range, whatever their spelling.
    assert_eq!(value_text(Value::decimal("42")), "42");
    assert_eq!(value_text(Value::decimal("42.000")), "42.000", "the scale is kept");
    assert_eq!(value_json(Value::decimal("42.000")), json!(42.0));
    assert_eq!(value_json(Value::decimal("18446744073709551615")), json!(u64::MAX));
    assert_eq!(value_json(Value::decimal("-9223372036854775808")), json!(i64::MIN));
    assert_eq!(value_json(Value::decimal("1.5E+3")), json!(1500.0));
    // Values that a double gives back exactly in its shortest form.
    assert_eq!(value_json(Value::decimal("19.99")), json!(19.99));
    assert_eq!(value_json(Value::decimal("-0.000123")), json!(-0.000123));
    assert_eq!(value_json(Value::decimal("1234567890.12345")), json!(1234567890.12345));
    // Text that is a decimal but not JSON is tidied, not quoted.
    assert_eq!(value_text(Value::decimal("+7")), "7");
    assert_eq!(value_text(Value::decimal(".5")), "0.5");
    assert_eq!(value_text(Value::decimal("007.25")), "7.25");
}

#[test]
fn decimals_that_do_not_fit_are_strings_of_the_text_as_given() {
    for text in [
        "18446744073709551616",                      // u64::MAX + 1
        "-9223372036854775809",                      // i64::MIN - 1
        "0.1000000000000000000001",                  // more digits than a double holds
        "12345678901234567.5",                       // likewise
        "1e400",                                     // beyond a double
        "1e-400",                                    // below a double
        "99999999999999999999999999999999999999.99", // NUMBER(40,2)
        "NaN",                                       // PostgreSQL numeric specials
        "Infinity",
        "-Infinity",
    ] {
        assert_eq!(value_json(Value::decimal(text)), json!(text), "{text}");
    }
}

#[test]
fn text_bytes_dates_and_times() {
    assert_eq!(value_json(Value::from("say \"hi\"\n\u{1}é")), json!("say \"hi\"\n\u{1}é"));
    // base64 of "hello" is aGVsbG8= (RFC 4648 test vectors use the same alphabet).
    assert_eq!(value_json(Value::from(b"hello".to_vec())), json!("aGVsbG8="));
    assert_eq!(value_json(Value::bytes(&[0xfb, 0xff][..])), json!("+/8="));
    assert_eq!(value_json(Value::from(Vec::<u8>::new())), json!(""));
    assert_eq!(value_json(Value::from(Date::from_ymd(2024, 2, 29).unwrap())), json!("2024-02-29"));
    assert_eq!(value_json(Value::from(Date::from_ymd(1, 1, 1).unwrap())), json!("0001-01-01"));
    assert_eq!(value_json(Value::from(Date::from_days_since_unix_epoch(-1).unwrap())), json!("1969-12-31"));
    assert_eq!(value_json(Value::from(Time::from_hms_micro(23, 59, 59, 0).unwrap())), json!("23:59:59"));
    assert_eq!(value_json(Value::from(Time::from_hms_micro(7, 0, 1, 5_000).unwrap())), json!("07:00:01.005"));
    assert_eq!(
        value_json(Value::from(Time::from_micros_since_midnight(3_600_000_001).unwrap())),
        json!("01:00:00.000001")
    );
    assert!(Date::from_ymd(10_000, 1, 1).is_none());
    assert!(Date::from_ymd(2026, 4, 31).is_none());
    assert!(Time::from_micros_since_midnight(86_400_000_000).is_none());
}

#[test]
fn timestamps_are_rfc3339_utc() {
    let zoned = at("2026-11-22T11:30:00.25+01:00");
    assert_eq!(value_json(Value::Timestamp(zoned)), json!("2026-11-22T10:30:00.250Z"));
    // Without a zone, the reading is taken as UTC.
    let naive = at("2026-11-22T11:30:00.000001Z");
    assert_eq!(value_json(Value::TimestampWithoutZone(naive)), json!("2026-11-22T11:30:00.000001Z"));
}

#[test]
fn json_values_are_checked_and_compacted() {
    assert_eq!(
        value_text(Value::json("{ \"a\" : [1, 2.50, {\"b\": null}] }")),
        r#"{"a":[1,2.50,{"b":null}]}"#
    );
    assert_eq!(value_json(Value::json(" [1, \"x\"] ")), json!([1, "x"]));
    assert_eq!(value_json(Value::json("\"just text\"")), json!("just text"));
    assert_eq!(value_json(Value::json("3.25")), json!(3.25));
    assert_eq!(value_json(Value::json("null")), json!(null));

    let e =
        err(map(CallType::Identify, vec![("userId", Value::from("u1")), ("prefs", Value::json("{\"a\":"))]));
    assert_eq!(e.column.as_deref(), Some("prefs"));
    assert!(matches!(e.reason, RowErrorReason::InvalidJson { .. }), "{e}");
}

#[test]
fn arrays_hold_any_values() {
    let array = Value::Array(vec![
        Value::Int(1),
        Value::from("{\"not\":\"parsed\"}"),
        Value::Timestamp(at("2026-01-01T00:00:00Z")),
        Value::Array(vec![Value::Null, Value::Bool(true)]),
        Value::json("{\"k\": 1}"),
        Value::decimal("0.30"),
    ]);
    assert_eq!(
        value_json(array),
        json!([1, "{\"not\":\"parsed\"}", "2026-01-01T00:00:00.000Z", [null, true], {"k": 1}, 0.30])
    );
    assert_eq!(value_json(Value::Array(Vec::new())), json!([]));

    let mut deep = Value::Null;
    for _ in 0..200 {
        deep = Value::Array(vec![deep]);
    }
    let e = err(map(CallType::Identify, vec![("userId", Value::from("u1")), ("deep", deep)]));
    assert_eq!(e.reason, RowErrorReason::TooDeep { limit: 128 });
}

#[test]
fn text_holding_a_json_object_becomes_an_object() {
    assert_eq!(value_json(Value::from("{\"a\":1}")), json!({"a": 1}));
    assert_eq!(value_json(Value::from("  {\n  \"a\": {\"b\": [true]}\n}\n")), json!({"a": {"b": [true]}}));
    // Only objects, and only valid ones.
    assert_eq!(value_json(Value::from("{not json}")), json!("{not json}"));
    assert_eq!(value_json(Value::from("{\"a\":1} trailing")), json!("{\"a\":1} trailing"));
    assert_eq!(value_json(Value::from("[1,2]")), json!("[1,2]"));
    assert_eq!(value_json(Value::from("42")), json!("42"));
    assert_eq!(value_json(Value::from("true")), json!("true"));
    assert_eq!(value_json(Value::from("")), json!(""));
}

#[test]
fn text_parsing_can_be_turned_off() {
    let options = cdp_rows::MappingOptions::new("s", CallType::Identify).parse_json_text(false);
    let call = ok(map_with(options, vec![("userId", Value::from("u1")), ("v", Value::from("{\"a\":1}"))]));
    assert_eq!(payload(&call), json!({"v": "{\"a\":1}"}));
}

#[test]
fn rows_and_columns_carry_values() {
    let row = cdp_rows::Row::from_pairs([("userId", Value::from("u1")), ("n", Value::from(Some(3_i64)))]);
    assert_eq!(row.columns().names(), ["userId", "n"]);
    assert_eq!(row.get("n"), Some(&Value::Int(3)));
    assert_eq!(row.get("missing"), None);
    let owned: cdp_rows::Row<'static> = row.clone().into_owned();
    assert_eq!(owned.values(), row.values());
    assert_eq!(Value::from(None::<&str>), Value::Null);
    assert_eq!(Value::from("x").kind(), "text");
    assert_eq!(Value::TimestampWithoutZone(at(RUN_START)).kind(), "timestamp without zone");
}
