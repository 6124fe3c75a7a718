//! `messageId`: taken from a column when there is one, else the deterministic ULID of
//! SPEC section 5, computed here independently from the documented encoding.

mod common;

use cdp_calls::{CallType, Timestamp};
use cdp_rows::{Columns, MappingOptions, RowMapper, Value};
use common::*;

fn id_of(sync: &str, call_type: CallType, run_start: &str, pairs: Vec<(&str, Value<'_>)>) -> String {
    let (names, values): (Vec<&str>, Vec<Value<'_>>) = pairs.into_iter().unzip();
    let options = MappingOptions::new(sync, call_type);
    let mut mapper = RowMapper::new(options, &Columns::new(names), at(run_start)).expect("columns map");
    mapper.map_values(1, &values).expect("a call").message_id.expect("an id")
}

fn identify(pairs: Vec<(&str, Value<'_>)>) -> String {
    id_of("people", CallType::Identify, RUN_START, pairs)
}

fn len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The documented encoding (module `cdp_rows::message_id`), written out by hand.
fn expected_id(sync: &str, call_type: &str, names: &[&str], body: &[u8], at: Timestamp) -> String {
    let mut header = b"cdp-rows/messageId/v1".to_vec();
    len_prefixed(&mut header, sync.as_bytes());
    len_prefixed(&mut header, call_type.as_bytes());
    header.extend_from_slice(&(names.len() as u64).to_le_bytes());
    for name in names {
        len_prefixed(&mut header, name.as_bytes());
    }
    let seed = xxhash_rust::xxh3::xxh3_64(&header);
    let hash = xxhash_rust::xxh3::xxh3_128_with_seed(body, seed);
    let random = hash & ((1u128 << 80) - 1);
    ulid::Ulid::from_parts(at.as_millis() as u64, random).to_string()
}

#[test]
fn the_id_follows_the_documented_encoding() {
    let ts = at("2026-11-22T09:59:00.123Z");
    let id = identify(vec![
        ("userId", Value::from("u1")),
        ("n", Value::Int(-5)),
        ("timestamp", Value::Timestamp(ts)),
        ("ok", Value::Bool(true)),
        ("none", Value::Null),
        ("tags", Value::Array(vec![Value::from("a"), Value::UInt(7)])),
    ]);
    let mut body = Vec::new();
    body.push(6);
    len_prefixed(&mut body, b"u1");
    body.push(2);
    body.extend_from_slice(&(-5_i64).to_le_bytes());
    body.push(10);
    body.extend_from_slice(&ts.as_micros().to_le_bytes());
    body.extend_from_slice(&[1, 1]);
    body.push(0);
    body.push(13);
    body.extend_from_slice(&2_u64.to_le_bytes());
    body.push(6);
    len_prefixed(&mut body, b"a");
    body.push(3);
    body.extend_from_slice(&7_u64.to_le_bytes());
    let want =
        expected_id("people", "identify", &["userId", "n", "timestamp", "ok", "none", "tags"], &body, ts);
    assert_eq!(id, want);
    // The time part is the row's timestamp, in milliseconds.
    let parsed = ulid::Ulid::from_string(&id).expect("a ULID");
    assert_eq!(parsed.timestamp_ms(), 1_795_341_540_123);
}

#[test]
fn the_same_row_gets_the_same_id_across_runs() {
    let row = || {
        vec![
            ("userId", Value::from("u1")),
            ("email", Value::from("ada@example.com")),
            ("timestamp", Value::Int(1_795_341_600)),
        ]
    };
    let first = id_of("people", CallType::Identify, "2026-11-22T10:00:00Z", row());
    let overlapping_run = id_of("people", CallType::Identify, "2026-11-22T10:10:00Z", row());
    assert_eq!(first, overlapping_run, "a row re-read by an overlapping window deduplicates");
    assert_eq!(ulid::Ulid::from_string(&first).unwrap().timestamp_ms(), 1_795_341_600_000);
}

#[test]
fn any_change_gives_a_different_id() {
    let base = identify(vec![("userId", Value::from("u1")), ("n", Value::Int(1))]);
    let changes = [
        identify(vec![("userId", Value::from("u2")), ("n", Value::Int(1))]),
        identify(vec![("userId", Value::from("u1")), ("n", Value::Int(2))]),
        identify(vec![("userId", Value::from("u1")), ("n", Value::from("1"))]),
        identify(vec![("userId", Value::from("u1")), ("n", Value::UInt(1))]),
        identify(vec![("userId", Value::from("u1")), ("n", Value::Float(1.0))]),
        identify(vec![("userId", Value::from("u1")), ("n", Value::decimal("1"))]),
        identify(vec![("userId", Value::from("u1")), ("n", Value::Null)]),
        identify(vec![("userId", Value::from("u1")), ("N", Value::Int(1))]),
        identify(vec![("userId", Value::from("u1")), ("n", Value::Int(1)), ("m", Value::Null)]),
        id_of(
            "other sync",
            CallType::Identify,
            RUN_START,
            vec![("userId", Value::from("u1")), ("n", Value::Int(1))],
        ),
        id_of(
            "people",
            CallType::Group,
            RUN_START,
            vec![("userId", Value::from("u1")), ("n", Value::Int(1)), ("groupId", Value::from("g"))],
        ),
    ];
    for (i, other) in changes.iter().enumerate() {
        assert_ne!(&base, other, "change {i}");
    }
    // Length prefixes keep shifted text apart: ("ab", "c") is not ("a", "bc").
    let ab_c = identify(vec![("userId", Value::from("ab")), ("x", Value::from("c"))]);
    let a_bc = identify(vec![("userId", Value::from("a")), ("x", Value::from("bc"))]);
    assert_ne!(ab_c, a_bc);
}

#[test]
fn rows_without_a_timestamp_take_the_run_start() {
    let row = || vec![("userId", Value::from("u1"))];
    let id = id_of("people", CallType::Identify, "2026-11-22T10:00:00Z", row());
    assert_eq!(ulid::Ulid::from_string(&id).unwrap().timestamp_ms(), 1_795_341_600_000);
    let later = id_of("people", CallType::Identify, "2026-11-22T10:10:00Z", row());
    assert_ne!(id, later);
}

#[test]
fn a_message_id_column_is_used_when_set() {
    let call =
        ok(map(CallType::Identify, vec![("userId", Value::from("u1")), ("MESSAGEID", Value::from("m-42"))]));
    assert_eq!(call.message_id.as_deref(), Some("m-42"));
    let call =
        ok(map(CallType::Identify, vec![("userId", Value::from("u1")), ("messageId", Value::Int(42))]));
    assert_eq!(call.message_id.as_deref(), Some("42"));
    // Null or empty: the deterministic id.
    for empty in [Value::Null, Value::from("")] {
        let call = ok(map(CallType::Identify, vec![("userId", Value::from("u1")), ("messageId", empty)]));
        assert_eq!(call.message_id.as_ref().map(String::len), Some(26));
    }
    // Over 100 characters: a row error on that column.
    let long = "m".repeat(101);
    let e =
        err(map(CallType::Identify, vec![("userId", Value::from("u1")), ("messageId", Value::from(long))]));
    assert_eq!(e.column.as_deref(), Some("messageId"));
    assert_eq!(e.reason.code(), "message_id_too_long");
}

#[test]
fn the_public_helper_agrees_with_the_mapper() {
    let columns = ["userId".to_owned(), "plan".to_owned()];
    let values = [Value::from("u1"), Value::from("pro")];
    let helper =
        cdp_rows::message_id::message_id("people", CallType::Identify, &columns, &values, at(RUN_START));
    let mapped = identify(vec![("userId", Value::from("u1")), ("plan", Value::from("pro"))]);
    assert_eq!(helper, mapped);
}
