//! Helpers shared by the integration tests: build a mapper, map one row, look at
//! the call as JSON (parsed back with serde_json, an independent reader).
#![allow(dead_code, unreachable_pub)]

use cdp_calls::{Call, CallType, Timestamp};
use cdp_rows::{Columns, MappingOptions, RowError, RowMapper, SyncError, Value};

/// The run start every test uses unless it says otherwise.
pub const RUN_START: &str = "2026-11-22T10:00:00Z";

pub fn at(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub fn try_mapper(options: MappingOptions, names: &[&str]) -> Result<RowMapper, SyncError> {
    RowMapper::new(options, &Columns::new(names.iter().copied()), at(RUN_START))
}

pub fn mapper(options: MappingOptions, names: &[&str]) -> RowMapper {
    try_mapper(options, names).unwrap_or_else(|e| panic!("{names:?}: {e}"))
}

/// Maps one row given as `(name, value)` pairs, as row 1, with default options.
pub fn map(call_type: CallType, pairs: Vec<(&str, Value<'_>)>) -> Result<Call, RowError> {
    map_with(MappingOptions::new("test sync", call_type), pairs)
}

pub fn map_with(options: MappingOptions, pairs: Vec<(&str, Value<'_>)>) -> Result<Call, RowError> {
    let (names, values): (Vec<&str>, Vec<Value<'_>>) = pairs.into_iter().unzip();
    mapper(options, &names).map_values(1, &values)
}

pub fn ok(result: Result<Call, RowError>) -> Call {
    result.unwrap_or_else(|e| panic!("expected a call: {e}"))
}

pub fn err(result: Result<Call, RowError>) -> RowError {
    match result {
        Ok(call) => panic!("expected a row error, got {}", call.to_json()),
        Err(e) => e,
    }
}

/// The call's wire JSON, parsed by serde_json.
pub fn wire(call: &Call) -> serde_json::Value {
    serde_json::from_str(&call.to_json()).expect("a call writes valid JSON")
}

/// The call's wire JSON without its `messageId` (checked by its own tests).
pub fn wire_without_id(call: &Call) -> serde_json::Value {
    let mut v = wire(call);
    v.as_object_mut().expect("an object").remove("messageId");
    v
}

/// The payload (`traits` or `properties`) parsed by serde_json.
pub fn payload(call: &Call) -> serde_json::Value {
    let object = call.traits().or(call.properties()).expect("the call has a payload");
    serde_json::from_str(object.as_str()).expect("valid JSON")
}

/// One value mapped into the traits of an identify call under `v`, as JSON.
pub fn value_json(value: Value<'_>) -> serde_json::Value {
    let call = ok(map(CallType::Identify, vec![("userId", Value::from("u1")), ("v", value)]));
    payload(&call)["v"].clone()
}

/// One value's raw JSON text inside the traits, as the mapper wrote it.
pub fn value_text(value: Value<'_>) -> String {
    let call = ok(map(CallType::Identify, vec![("userId", Value::from("u1")), ("v", value)]));
    let traits = call.traits().expect("traits").as_str().to_owned();
    let inner = traits.strip_prefix("{\"v\":").and_then(|t| t.strip_suffix('}'));
    inner.unwrap_or_else(|| panic!("unexpected traits {traits}")).to_owned()
}
