//! Limits: 128 KiB per value and 512 KiB per record as JSON, the optional 32 KiB per
//! call, and the cap on records per run. Sizes are worked out with serde_json.

mod common;

use cdp_calls::{CallError, CallType};
use cdp_rows::{
    Columns, DEFAULT_MAX_RECORDS, MAX_RECORD_BYTES, MAX_VALUE_BYTES, MappingOptions, RecordCap,
    RowErrorReason, RowMapper, Value,
};
use common::*;
use serde_json::json;

fn json_len(value: &serde_json::Value) -> usize {
    serde_json::to_string(value).unwrap().len()
}

#[test]
fn a_value_over_128_kib_as_json_is_a_row_error() {
    assert_eq!(MAX_VALUE_BYTES, 131_072);
    // A string of n plain characters is n + 2 bytes as JSON.
    let fits = "x".repeat(131_070);
    assert_eq!(json_len(&json!(fits)), MAX_VALUE_BYTES);
    ok(map(CallType::Identify, vec![("userId", Value::from("u1")), ("bio", Value::from(fits.as_str()))]));

    let over = "x".repeat(131_071);
    let e = err(map(
        CallType::Identify,
        vec![("userId", Value::from("u1")), ("bio", Value::from(over.as_str()))],
    ));
    assert_eq!(e.column.as_deref(), Some("bio"));
    assert_eq!(e.reason, RowErrorReason::ValueTooLarge { bytes: 131_073, limit: MAX_VALUE_BYTES });

    // Escapes count: 65,536 quotes are 131,074 bytes as JSON.
    let quotes = "\"".repeat(65_536);
    assert_eq!(json_len(&json!(quotes)), 131_074);
    let e = err(map(
        CallType::Identify,
        vec![("userId", Value::from("u1")), ("q", Value::from(quotes.as_str()))],
    ));
    assert_eq!(e.reason, RowErrorReason::ValueTooLarge { bytes: 131_074, limit: MAX_VALUE_BYTES });

    // Reserved fields too.
    let e = err(map(CallType::Identify, vec![("USERID", Value::from(over.as_str()))]));
    assert_eq!(e.column.as_deref(), Some("USERID"));
    assert_eq!(e.reason.code(), "value_too_large");
}

#[test]
fn a_record_over_512_kib_as_json_is_a_row_error() {
    assert_eq!(MAX_RECORD_BYTES, 524_288);
    let row = |extra: usize| {
        let lens = [131_061, 131_061, 131_061, 131_062 + extra];
        let texts: Vec<String> = lens.iter().map(|&n| "x".repeat(n)).collect();
        let record = json!({"userId": "u1", "a": texts[0], "b": texts[1], "c": texts[2], "d": texts[3]});
        (texts, json_len(&record))
    };
    let (texts, size) = row(0);
    assert_eq!(size, MAX_RECORD_BYTES, "the test row is exactly at the limit");
    let pairs = |texts: &[String]| {
        let mut pairs = vec![("userId", Value::from("u1"))];
        for (name, text) in ["a", "b", "c", "d"].into_iter().zip(texts) {
            pairs.push((name, Value::from(text.clone())));
        }
        pairs
    };
    ok(map(CallType::Identify, pairs(&texts)));

    let (texts, size) = row(1);
    assert_eq!(size, MAX_RECORD_BYTES + 1);
    let e = err(map(CallType::Identify, pairs(&texts)));
    assert_eq!(e.column, None);
    assert_eq!(
        e.reason,
        RowErrorReason::RecordTooLarge { bytes: MAX_RECORD_BYTES + 1, limit: MAX_RECORD_BYTES }
    );
}

#[test]
fn the_32_kib_call_limit_is_optional() {
    // {"type":"identify","messageId":<26 characters>,"userId":"u1","traits":{"t":"x…"}}
    let call_len = |n: usize| {
        json_len(&json!({
            "type": "identify", "messageId": "0".repeat(26), "userId": "u1", "traits": {"t": "x".repeat(n)}
        }))
    };
    let at_limit = 32_768 - call_len(0);
    assert_eq!(call_len(at_limit), cdp_calls::MAX_CALL_BYTES);
    let row = |n: usize| vec![("userId", Value::from("u1")), ("t", Value::from("x".repeat(n)))];
    let limited = || MappingOptions::new("s", CallType::Identify).limit_call_size(true);

    let call = ok(map_with(limited(), row(at_limit)));
    assert_eq!(call.to_json().len(), 32_768);
    let e = err(map_with(limited(), row(at_limit + 1)));
    assert_eq!(e.reason, RowErrorReason::Call(CallError::TooLarge { bytes: 32_769, limit: 32_768 }));
    // Without the limit (the bucket and NDJSON destinations), the same row maps.
    ok(map(CallType::Identify, row(at_limit + 1)));
    ok(map(CallType::Identify, row(100_000)));
}

#[test]
fn the_record_cap_stops_the_run_and_says_where() {
    assert_eq!(DEFAULT_MAX_RECORDS, 30_000_000);
    assert_eq!(RecordCap::default().limit(), 30_000_000);

    let columns = Columns::new(["userId"]);
    let mut mapper = RowMapper::new(MappingOptions::new("s", CallType::Identify), &columns, at(RUN_START))
        .expect("columns map");
    // Five rows, the second one bad; a cap of three.
    let rows = [Value::from("u1"), Value::Null, Value::from("u3"), Value::from("u4"), Value::from("u5")];
    let mut cap = RecordCap::new(3);
    let (mut calls, mut errors, mut capped) = (Vec::new(), Vec::new(), None);
    for value in rows {
        let row_number = match cap.admit() {
            Ok(n) => n,
            Err(reached) => {
                capped = Some(reached);
                break;
            }
        };
        match mapper.map_values(row_number, std::slice::from_ref(&value)) {
            Ok(call) => calls.push(call.user_id.unwrap()),
            Err(e) => errors.push(e.row_number),
        }
    }
    // Row errors count as records: rows 1-3 were read, 4 and 5 were not.
    assert_eq!(calls, ["u1", "u3"]);
    assert_eq!(errors, [2]);
    let reached = capped.expect("the cap was reached");
    assert_eq!((reached.limit, reached.first_row_not_read), (3, 4));
    assert_eq!(
        reached.to_string(),
        "the run reached its cap of 3 records: row 4 and any rows after it were not read"
    );
    assert!(cap.is_full());
    assert_eq!(cap.records(), 3);
    assert!(cap.admit().is_err(), "the cap stays full");
    assert_eq!(cap.records(), 3);
}
