//! Reserved fields per call type (SPEC section 5): they set the call's fields, match
//! without regard to case, and everything else goes into `traits` or `properties`,
//! named as returned (or lower-cased on request).

mod common;

use cdp_calls::CallType;
use cdp_rows::{MappingOptions, SyncError, Value};
use common::*;
use serde_json::json;

fn ts() -> Value<'static> {
    Value::Timestamp(at("2026-11-22T09:00:00Z"))
}

#[test]
fn identify_reserved_fields_set_the_call_and_the_rest_are_traits() {
    let call = ok(map(
        CallType::Identify,
        vec![
            ("userId", Value::from("u1")),
            ("anonymousId", Value::from("a1")),
            ("groupId", Value::from("g1")),
            ("integrations", Value::json(r#"{"All":false,"Mixpanel":true}"#)),
            ("messageId", Value::from("m-1")),
            ("timestamp", ts()),
            ("context", Value::json(r#"{"ip":"203.0.113.9"}"#)),
            ("email", Value::from("ada@example.com")),
            ("event", Value::from("not reserved for identify")),
            ("objectTypeId", Value::Int(3)),
        ],
    ));
    assert_eq!(
        wire(&call),
        json!({
            "type": "identify",
            "messageId": "m-1",
            "userId": "u1",
            "anonymousId": "a1",
            "traits": {"email": "ada@example.com", "event": "not reserved for identify", "objectTypeId": 3},
            "context": {"ip": "203.0.113.9"},
            "integrations": {"All": false, "Mixpanel": true},
            "timestamp": "2026-11-22T09:00:00.000Z",
            // identify has no groupId field: it passes through as an unknown field.
            "groupId": "g1",
        })
    );
}

#[test]
fn group_reserved_fields() {
    let call = ok(map(
        CallType::Group,
        vec![
            ("userId", Value::from("u1")),
            ("groupId", Value::Int(77)),
            ("objectTypeId", Value::Int(2)),
            ("name", Value::from("Acme")),
        ],
    ));
    assert_eq!(
        wire_without_id(&call),
        json!({"type": "group", "userId": "u1", "groupId": "77", "traits": {"objectTypeId": "2", "name": "Acme"}})
    );
}

#[test]
fn track_page_and_screen_reserved_fields() {
    let call = ok(map(
        CallType::Track,
        vec![
            ("anonymousId", Value::from("a1")),
            ("event", Value::from("Order Completed")),
            ("name", Value::from("a property for track")),
            ("total", Value::decimal("59.90")),
        ],
    ));
    assert_eq!(
        wire_without_id(&call),
        json!({
            "type": "track", "anonymousId": "a1", "event": "Order Completed",
            "properties": {"name": "a property for track", "total": 59.90},
        })
    );
    for (call_type, type_name) in [(CallType::Page, "page"), (CallType::Screen, "screen")] {
        let call = ok(map(
            call_type,
            vec![
                ("userId", Value::Int(5)),
                ("name", Value::from("Pricing")),
                ("event", Value::from("Viewed")),
                ("url", Value::from("https://example.com/pricing")),
            ],
        ));
        assert_eq!(
            wire_without_id(&call),
            json!({
                "type": type_name, "userId": "5", "name": "Pricing",
                "properties": {"url": "https://example.com/pricing"},
                // page and screen have no event field: it passes through.
                "event": "Viewed",
            }),
            "{type_name}"
        );
    }
}

#[test]
fn alias_takes_only_its_reserved_fields() {
    let call = ok(map(
        CallType::Alias,
        vec![
            ("userId", Value::from("u1")),
            ("previousId", Value::from("anon-9")),
            ("timestamp", ts()),
            ("context.ip", Value::from("203.0.113.9")),
        ],
    ));
    assert_eq!(
        wire_without_id(&call),
        json!({
            "type": "alias", "userId": "u1", "previousId": "anon-9",
            "context": {"ip": "203.0.113.9"}, "timestamp": "2026-11-22T09:00:00.000Z",
        })
    );
    for extra in ["email", "anonymousId", "integrations", "integrations.All"] {
        let e = try_mapper(MappingOptions::new("s", CallType::Alias), &["userId", "previousId", extra])
            .unwrap_err();
        assert_eq!(e, SyncError::NoPlace { column: extra.to_owned(), call_type: CallType::Alias }, "{extra}");
    }
}

#[test]
fn reserved_names_match_without_regard_to_case() {
    for name in ["userId", "USERID", "userid", "UserID"] {
        let call = ok(map(CallType::Identify, vec![(name, Value::from("u1")), ("EMAIL", Value::from("e"))]));
        assert_eq!(call.user_id.as_deref(), Some("u1"), "{name}");
        assert_eq!(payload(&call), json!({"EMAIL": "e"}), "{name}: other names are kept as returned");
    }
    let call = ok(map(
        CallType::Track,
        vec![
            ("ANONYMOUSID", Value::from("a")),
            ("EVENT", Value::from("Signed Up")),
            ("TIMESTAMP", Value::Int(1_795_341_600)),
            ("MESSAGEID", Value::from("m")),
            ("CONTEXT.IP", Value::from("203.0.113.9")),
            ("Integrations.All", Value::Bool(false)),
        ],
    ));
    assert_eq!(
        wire(&call),
        json!({
            "type": "track", "messageId": "m", "anonymousId": "a", "event": "Signed Up",
            "context": {"ip": "203.0.113.9"}, "integrations": {"All": false},
            "timestamp": "2026-11-22T10:00:00.000Z",
        })
    );
    let call = ok(map(CallType::Group, vec![("USERID", Value::from("u")), ("GROUPID", Value::from("g"))]));
    assert_eq!(call.group_id(), Some("g"));
    let call = ok(map(CallType::Page, vec![("USERID", Value::from("u")), ("NAME", Value::from("Home"))]));
    assert_eq!(call.name(), Some("Home"));
    let call = ok(map(CallType::Alias, vec![("USERID", Value::from("u")), ("PREVIOUSID", Value::from("p"))]));
    assert_eq!(call.previous_id(), Some("p"));
}

#[test]
fn lowercasing_applies_to_other_names_only() {
    let options = MappingOptions::new("s", CallType::Identify).lowercase_names(true);
    let call = ok(map_with(
        options,
        vec![
            ("USERID", Value::from("u1")),
            ("EMAIL", Value::from("ada@example.com")),
            ("First_Name", Value::from("Ada")),
            ("ADDRESS.CITY", Value::from("Paris")),
            ("CONTEXT.USERAGENT", Value::from("curl")),
            ("CONTEXT.DEVICE.TOKEN", Value::from("tok")),
            ("CONTEXT.CUSTOM_KEY", Value::from("x")),
        ],
    ));
    assert_eq!(call.user_id.as_deref(), Some("u1"));
    assert_eq!(
        payload(&call),
        json!({"email": "ada@example.com", "first_name": "Ada", "address": {"city": "Paris"}})
    );
    let context: serde_json::Value = serde_json::from_str(call.context.as_ref().unwrap().as_str()).unwrap();
    // The reserved context keys take their spelling; other names are lower-cased.
    assert_eq!(context, json!({"userAgent": "curl", "device": {"token": "tok"}, "custom_key": "x"}));
}

#[test]
fn without_lowercasing_context_keys_keep_their_case_except_reserved_ones() {
    let call = ok(map(
        CallType::Identify,
        vec![
            ("userId", Value::from("u1")),
            ("CONTEXT.IP", Value::from("203.0.113.9")),
            ("context.Locale", Value::from("fr-FR")),
            ("context.Custom", Value::from("kept")),
        ],
    ));
    let context: serde_json::Value = serde_json::from_str(call.context.as_ref().unwrap().as_str()).unwrap();
    assert_eq!(context, json!({"ip": "203.0.113.9", "locale": "fr-FR", "Custom": "kept"}));
}

#[test]
fn mapper_reports_where_each_column_lands() {
    let m = mapper(
        MappingOptions::new("s", CallType::Track).lowercase_names(true),
        &["USERID", "EVENT", "CART.TOTAL", "context.ip", "integrations.All", "messageId", "timestamp"],
    );
    assert_eq!(
        m.fields(),
        [
            "userId",
            "event",
            "properties.cart.total",
            "context.ip",
            "integrations.All",
            "messageId",
            "timestamp"
        ]
    );
    assert!(m.missing_required_fields().is_empty());
    let m = mapper(MappingOptions::new("s", CallType::Page), &["email"]);
    assert_eq!(m.missing_required_fields(), ["userId or anonymousId", "name"]);
    let m = mapper(MappingOptions::new("s", CallType::Alias), &["userId"]);
    assert_eq!(m.missing_required_fields(), ["previousId"]);
}

#[test]
fn whole_context_and_integrations_must_be_objects() {
    let e = err(map(
        CallType::Identify,
        vec![("userId", Value::from("u")), ("context", Value::from("not an object"))],
    ));
    assert_eq!(e.column.as_deref(), Some("context"));
    assert_eq!(e.to_string(), "row 1, column `context`: `context` must be a JSON object, found text");
    let e = err(map(
        CallType::Identify,
        vec![("userId", Value::from("u")), ("integrations", Value::json("[true]"))],
    ));
    assert_eq!(
        e.to_string(),
        "row 1, column `integrations`: `integrations` must be a JSON object, found JSON array"
    );
    // Text holding an object is parsed; null leaves the field out.
    let call = ok(map(
        CallType::Identify,
        vec![("userId", Value::from("u")), ("context", Value::from("{\"ip\": \"203.0.113.9\"}"))],
    ));
    assert_eq!(call.context.as_ref().unwrap().as_str(), r#"{"ip":"203.0.113.9"}"#);
    let call = ok(map(CallType::Identify, vec![("userId", Value::from("u")), ("context", Value::Null)]));
    assert_eq!(call.context, None);
}

#[test]
fn reserved_text_fields_take_text_or_numbers() {
    let call =
        ok(map(CallType::Track, vec![("userId", Value::decimal("1001.000")), ("event", Value::Int(404))]));
    assert_eq!((call.user_id.as_deref(), call.event()), (Some("1001"), Some("404")));
    let call = ok(map(CallType::Identify, vec![("userId", Value::Float(12.5))]));
    assert_eq!(call.user_id.as_deref(), Some("12.5"));
    let call = ok(map(CallType::Identify, vec![("userId", Value::UInt(u64::MAX))]));
    assert_eq!(call.user_id.as_deref(), Some("18446744073709551615"));
    for bad in [Value::Bool(true), Value::json("{}"), Value::Array(vec![]), Value::Float(f64::NAN)] {
        let kind = bad.kind();
        let e = err(map(CallType::Identify, vec![("USERID", bad)]));
        assert_eq!(e.column.as_deref(), Some("USERID"), "{kind}");
        assert!(matches!(e.reason, cdp_rows::RowErrorReason::InvalidType { field: "userId", .. }), "{e}");
    }
}
